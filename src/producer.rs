//! Kafka producers whose events a polling thread of our own serves.
//!
//! rdkafka's `ThreadedProducer` (and `FutureProducer`, which is built on it)
//! serves delivery reports by calling `poll(100 ms)` in a loop, and that
//! `poll` rounds the time left down to whole milliseconds: once less than a
//! millisecond is left, it calls librdkafka with a zero timeout over and
//! over until the window ends (librdkafka fixed the same rounding in its own
//! main loop, confluentinc/librdkafka#4671). Every producer so spun about 1 %
//! of a core while idle (a worker has at least three, for its config, offset
//! and status topics); under the normalizer the polling threads took 7 % of
//! the worker's CPU samples, 3 % with this module.
//!
//! [`PolledProducer`] polls in windows of one second, so the rounded tail
//! costs a thousandth of a core; a delivery report still wakes the thread at
//! once, the window only bounds how long a dropped producer lives on. When
//! the last handle is dropped the thread is told to stop and is not waited
//! for: it finishes its window and destroys the client itself, so no caller
//! (often an async one) blocks on librdkafka's shutdown.
//!
//! [`AckContext`] gives each record its own acknowledgement, for the few
//! places that wait on single records (internal topics, dead letter queue).

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::oneshot;

/// How long one `poll` call of the polling thread may wait for events.
const POLL_WINDOW: Duration = Duration::from_secs(1);

/// How long to wait before offering again a record refused with
/// `QueueFull` (the polling thread drains the queue as the broker
/// acknowledges).
pub(crate) const QUEUE_FULL_RETRY: Duration = Duration::from_millis(2);

/// A producer whose delivery reports and errors a dedicated thread serves.
/// Cloning shares the producer; it derefs to rdkafka's [`BaseProducer`].
pub struct PolledProducer<C: ProducerContext + 'static> {
    producer: Arc<BaseProducer<C>>,
    _stop: Arc<StopOnDrop>,
}

/// Tells the polling thread to stop when the last handle goes.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

impl<C: ProducerContext + 'static> Clone for PolledProducer<C> {
    fn clone(&self) -> Self {
        PolledProducer {
            producer: Arc::clone(&self.producer),
            _stop: Arc::clone(&self._stop),
        }
    }
}

impl<C: ProducerContext + 'static> Deref for PolledProducer<C> {
    type Target = BaseProducer<C>;

    fn deref(&self) -> &BaseProducer<C> {
        &self.producer
    }
}

impl<C: ProducerContext + 'static> FromClientConfigAndContext<C> for PolledProducer<C> {
    fn from_config_and_context(config: &ClientConfig, context: C) -> KafkaResult<Self> {
        let producer = Arc::new(BaseProducer::from_config_and_context(config, context)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (polled, stopped) = (Arc::clone(&producer), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("producer-poll".into())
            .spawn(move || {
                while !stopped.load(Ordering::Acquire) {
                    polled.poll(POLL_WINDOW);
                }
            })
            .map_err(|e| {
                KafkaError::ClientCreation(format!("starting the producer's polling thread: {e}"))
            })?;
        Ok(PolledProducer {
            producer,
            _stop: Arc::new(StopOnDrop(stop)),
        })
    }
}

/// A record's acknowledgement: `Ok` once the broker has it.
pub type Ack = oneshot::Receiver<KafkaResult<()>>;

/// Delivers each record's outcome to its own [`Ack`].
#[derive(Default)]
pub struct AckContext;

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<oneshot::Sender<KafkaResult<()>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Self::DeliveryOpaque) {
        // A dropped receiver means nobody waits for this record any more.
        let _ = ack.send(result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone()));
    }
}

/// A producer that acknowledges records one by one.
pub type AckedProducer = PolledProducer<AckContext>;

/// One record for [`AckedProducer::enqueue`].
#[derive(Default)]
pub struct Outgoing<'a> {
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: Option<OwnedHeaders>,
    pub timestamp: Option<i64>,
}

impl AckedProducer {
    /// Queues `record` for `topic`, waiting (without blocking the runtime)
    /// while librdkafka's queue is full, for at most `timeout`. The returned
    /// [`Ack`] resolves with the broker's answer.
    pub async fn enqueue(
        &self,
        topic: &str,
        record: Outgoing<'_>,
        timeout: Duration,
    ) -> KafkaResult<Ack> {
        let deadline = Instant::now() + timeout;
        loop {
            let (tx, rx) = oneshot::channel();
            let mut r = BaseRecord::with_opaque_to(topic, Box::new(tx));
            if let Some(k) = record.key {
                r = r.key(k);
            }
            if let Some(p) = record.payload {
                r = r.payload(p);
            }
            if let Some(h) = &record.headers {
                r = r.headers(h.clone());
            }
            if let Some(ts) = record.timestamp {
                r = r.timestamp(ts);
            }
            match self.send(r) {
                Ok(()) => return Ok(rx),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if Instant::now() < deadline =>
                {
                    tokio::time::sleep(QUEUE_FULL_RETRY).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// [`Self::enqueue`], then waits for the acknowledgement.
    pub async fn send_acked(
        &self,
        topic: &str,
        record: Outgoing<'_>,
        timeout: Duration,
    ) -> KafkaResult<()> {
        settled(self.enqueue(topic, record, timeout).await?).await
    }
}

/// Waits for an acknowledgement. A report that never comes (the producer
/// was destroyed first) is a failure, not a success.
pub async fn settled(ack: Ack) -> KafkaResult<()> {
    ack.await.unwrap_or(Err(KafkaError::Canceled))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn producer(bootstrap: &str) -> AckedProducer {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("message.timeout.ms", "2000")
            .create_with_context(AckContext)
            .unwrap()
    }

    /// A record that cannot be delivered (no broker) resolves its ack with
    /// the error instead of hanging or reporting success.
    #[tokio::test]
    async fn undeliverable_record_acks_with_an_error() {
        let p = producer("127.0.0.1:1");
        let out = Outgoing {
            payload: Some(b"v"),
            ..Outgoing::default()
        };
        let err = p
            .send_acked("t", out, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut)
            ),
            "{err:?}"
        );
    }

    /// The polling thread keeps the client while any handle is left and
    /// lets it go (destroying it) within a poll window after the last one.
    #[test]
    fn polling_thread_releases_the_client_after_the_last_handle() {
        let p = producer("127.0.0.1:1");
        let client = Arc::downgrade(&p.producer);
        let q = p.clone();
        drop(p);
        std::thread::sleep(POLL_WINDOW * 2);
        assert!(
            client.upgrade().is_some(),
            "a clone still holds the producer"
        );
        drop(q);
        let deadline = Instant::now() + POLL_WINDOW * 5;
        while client.upgrade().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            client.upgrade().is_none(),
            "the polling thread kept the client"
        );
    }
}
