//! The transactional producer behind [`SinkRuntime::commit_transaction`].
//!
//! A transaction only needs one answer: did every record of it reach the
//! broker. So there is no per-record delivery future (rdkafka's
//! `FutureProducer` completes a boxed one-shot channel per record and wakes
//! an async task for each, which cost about a tenth of the normalizer's
//! CPU); the producer's polling thread only keeps the first failure of the
//! current transaction and counts deliveries, and the whole transaction
//! (send, wait for the deliveries, offsets, commit) runs as one call on a
//! blocking thread.
//!
//! The wait is ours, not `Producer::flush`: rdkafka's flush of a producer
//! whose events another thread serves polls in slices of 100 ms that always
//! run to their end, which made every transaction last at least 100 ms.
//!
//! [`SinkRuntime::commit_transaction`]: connect_api::connector::SinkRuntime::commit_transaction

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use connect_api::connector::OutputRecord;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, TopicPartitionList};

use crate::producer::{PolledProducer, QUEUE_FULL_RETRY};

/// A sink task's transactional producer.
pub type TxnProducer = PolledProducer<TxnContext>;

/// The outcome of the current transaction's records so far.
#[derive(Default)]
struct Tally {
    /// Records sent and not yet acknowledged.
    outstanding: usize,
    /// The first delivery failure.
    failure: Option<KafkaError>,
}

/// Tallies the deliveries of the current transaction.
#[derive(Default)]
pub struct TxnContext {
    tally: Mutex<Tally>,
    settled: Condvar,
}

impl TxnContext {
    fn tally(&self) -> MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until every record sent is acknowledged or failed; the first
    /// failure, or a timeout, is the error.
    fn settle(&self, timeout: Duration) -> Result<(), KafkaError> {
        let deadline = Instant::now() + timeout;
        let mut tally = self.tally();
        while tally.outstanding > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
            }
            tally = self
                .settled
                .wait_timeout(tally, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        tally.failure.take().map_or(Ok(()), Err)
    }
}

impl ClientContext for TxnContext {}

impl ProducerContext for TxnContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let mut tally = self.tally();
        tally.outstanding = tally.outstanding.saturating_sub(1);
        if let Err((e, _)) = result {
            tally.failure.get_or_insert_with(|| e.clone());
        }
        if tally.outstanding == 0 {
            self.settled.notify_all();
        }
    }
}

/// One transaction: every record, then the consumer offsets (KIP-447 group
/// metadata included), then the commit. Blocking; the caller aborts on error.
pub fn run(
    producer: &TxnProducer,
    records: &[OutputRecord],
    offsets: Option<&(TopicPartitionList, ConsumerGroupMetadata)>,
    timeout: Duration,
) -> Result<(), KafkaError> {
    // Starts from a zero tally: `settle` took the last commit's, `abort`
    // cleared a failed one's.
    let ctx = producer.context();
    producer.begin_transaction()?;
    for r in records {
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&r.topic).headers(headers);
        rec.key = r.key.as_deref();
        rec.payload = r.value.as_deref();
        rec.partition = r.partition;
        // Counted before the send: the acknowledgement may come first.
        ctx.tally().outstanding += 1;
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    std::thread::sleep(QUEUE_FULL_RETRY);
                }
                Err((e, _)) => {
                    ctx.tally().outstanding -= 1;
                    return Err(e);
                }
            }
        }
    }
    // Every record acknowledged (or failed) before the offsets join the
    // transaction, so a delivery failure is reported as itself.
    ctx.settle(timeout)?;
    if let Some((list, meta)) = offsets {
        producer.send_offsets_to_transaction(list, meta, timeout)?;
    }
    // rdkafka's commit flushes first; with every delivery in, that returns
    // at once unless librdkafka has not yet released the last reports.
    let deadline = Instant::now() + RELEASE_WAIT;
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(50));
    }
    producer.commit_transaction(timeout)
}

/// How long to wait for librdkafka to release acknowledged records before
/// committing (it happens right after their reports are handled).
const RELEASE_WAIT: Duration = Duration::from_millis(20);

/// Aborts the current transaction and waits for the reports of its purged
/// records, so that none of them is counted against the next transaction.
pub fn abort(producer: &TxnProducer, timeout: Duration) -> Result<(), KafkaError> {
    producer.abort_transaction(timeout)?;
    let ctx = producer.context();
    // The purge failures are the abort's, not news.
    let _ = ctx.settle(timeout);
    *ctx.tally() = Tally::default();
    Ok(())
}
