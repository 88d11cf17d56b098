//! Delivery acknowledgements of a source task's records, in submission order.
//!
//! The offset-commit design (`source_task.rs`) needs every record's outcome
//! in the order the records were sent. rdkafka's `FutureProducer` provides
//! that with a boxed one-shot channel per record, completed on the
//! producer's polling thread and awaited by the acker: two allocations, a
//! future poll and a wake-up per record, several per cent of a snapshot's
//! CPU. Here a record's delivery opaque is its sequence number; the polling
//! thread writes the outcome into that record's slot and wakes the acker,
//! which takes slots strictly in sequence.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;
use tokio::sync::Notify;

use crate::producer::PolledProducer;

/// What Kafka said about one record.
pub type Outcome = Result<(), KafkaError>;

/// A task's producer: a record's delivery opaque is its sequence number
/// from [`Acks::register`].
pub type TaskProducer = PolledProducer<TaskProducerContext>;

/// The slots of the records sent and not yet taken by the acker.
#[derive(Default)]
pub struct Acks {
    slots: Mutex<Slots>,
    ready: Notify,
}

#[derive(Default)]
struct Slots {
    /// Sequence number of `outcomes[0]`.
    first: usize,
    outcomes: VecDeque<Option<Outcome>>,
}

impl Acks {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves the next sequence number. Called before the record is
    /// handed to the producer, so its outcome always has a slot.
    pub fn register(&self) -> usize {
        let mut s = self.slots();
        s.outcomes.push_back(None);
        s.first + s.outcomes.len() - 1
    }

    /// Records the outcome of `seq` and wakes the acker.
    pub fn settle(&self, seq: usize, outcome: Outcome) {
        {
            let mut s = self.slots();
            let first = s.first;
            if let Some(slot) = seq.checked_sub(first).and_then(|i| s.outcomes.get_mut(i)) {
                *slot = Some(outcome);
            }
        }
        self.ready.notify_one();
    }

    /// The outcome of the oldest registered record not yet taken, once it
    /// is known. One consumer (the acker) calls this, once per registered
    /// record, in order.
    pub async fn next(&self) -> Outcome {
        loop {
            {
                let mut s = self.slots();
                if matches!(s.outcomes.front(), Some(Some(_))) {
                    s.first += 1;
                    if let Some(Some(outcome)) = s.outcomes.pop_front() {
                        return outcome;
                    }
                }
            }
            // A settle between the check and here leaves a permit, so this
            // returns at once and the loop looks again.
            self.ready.notified().await;
        }
    }
}

/// Producer context that files each delivery report under its record's
/// sequence number.
#[derive(Default)]
pub struct TaskProducerContext {
    pub acks: Acks,
}

impl ClientContext for TaskProducerContext {}

impl ProducerContext for TaskProducerContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.clone()),
        };
        self.acks.settle(seq, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn outcomes_are_taken_in_sequence_whatever_order_they_settle_in() {
        let acks = Arc::new(Acks::default());
        let seqs: Vec<usize> = (0..4).map(|_| acks.register()).collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
        acks.settle(
            2,
            Err(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageTimedOut,
            )),
        );
        acks.settle(1, Ok(()));
        // The oldest (0) is not known yet: nothing may be taken.
        let waiting = tokio::time::timeout(Duration::from_millis(50), acks.next()).await;
        assert!(waiting.is_err(), "took an outcome before record 0 settled");
        let taker = {
            let acks = Arc::clone(&acks);
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..4 {
                    got.push(acks.next().await.is_ok());
                }
                got
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        acks.settle(0, Ok(()));
        std::thread::spawn({
            let acks = Arc::clone(&acks);
            move || acks.settle(3, Ok(()))
        })
        .join()
        .expect("settle from another thread");
        let got = tokio::time::timeout(Duration::from_secs(5), taker)
            .await
            .expect("all four taken")
            .expect("taker");
        assert_eq!(got, [true, true, false, true]);
        // Numbering continues after the taken ones.
        assert_eq!(acks.register(), 4);
        // A settle for an unknown or already taken record changes nothing.
        acks.settle(0, Err(KafkaError::Canceled));
        acks.settle(99, Err(KafkaError::Canceled));
        acks.settle(4, Ok(()));
        assert!(acks.next().await.is_ok());
    }
}
