//! The source-task runtime: poll → transforms → converters → produce, and the
//! offset commit that makes restarts lose nothing.
//!
//! # Offset commit ordering
//!
//! A source offset may be stored only once every record up to it, in the
//! same source partition, is durably in Kafka; otherwise a restart would skip
//! a record that was never written. We get that ordering from one rule: the
//! *acker* awaits delivery results strictly in submission order. When the
//! acker has seen record N acknowledged, every record before N (of any
//! partition) has been acknowledged or has failed, so "the latest
//! acknowledged offset per source partition" is always committable. Records
//! dropped by a transform are pushed through the acker too, so their offsets
//! advance in order.
//!
//! A failed delivery stops offsets of that run from advancing past it: with
//! `errors.tolerance=none` the task fails (Java behaviour); with `all` the
//! record is logged and skipped, as Java does since KIP-779.
//!
//! The committer writes committable offsets every `offset.flush.interval.ms`
//! and once more at stop, after the producer has flushed and the acker has
//! drained, so a graceful stop duplicates nothing and a crash duplicates at
//! most the records of the last unflushed interval.
//!
//! `poll` runs only against cancellation and target-state changes in
//! `select!`, never against acks or timers, so a connector's in-flight
//! `poll` (e.g. a MongoDB getMore) is not dropped on every acknowledgement.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use connect_api::config::Props;
use connect_api::data::{Headers, SchemaRef, Value};
use connect_api::error::ConnectError;
use connect_api::record::{OffsetMap, SourceRecord};
use connect_api::{CommitRequester, Converter, HeaderConverter, SourceTask, SourceTaskContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KHeader, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::delivery::{TaskProducer, TaskProducerContext};
use super::errors::{ErrorPolicy, Stage};
use super::transforms::TransformChain;
use crate::herder::api::TargetState;
use crate::spawn::spawn_named;
use crate::storage::offset_store::{canonical, OffsetStore};

/// How a task reports its life to the worker (which writes the status topic).
pub trait TaskListener: Send + Sync {
    fn on_running(&self);
    fn on_paused(&self);
    fn on_failure(&self, error: &ConnectError);
    fn on_first_write(&self, topic: &str);
}

/// Everything a source task needs to run.
pub struct SourceTaskRun {
    pub connector: String,
    pub task_id: u32,
    pub task: Box<dyn SourceTask>,
    pub props: Props,
    pub pipeline: Pipeline,
    pub offsets: Arc<OffsetStore>,
    pub context: SourceTaskContext,
    /// The same signal as `context.commits`, seen from the committer's side.
    pub commit_requests: Arc<CommitSignal>,
    pub flush_interval: Duration,
    pub flush_timeout: Duration,
    pub target: watch::Receiver<TargetState>,
    pub cancel: CancellationToken,
}

/// Record processing between `poll` and the producer: shared by reference
/// while the task itself is borrowed mutably for `poll`.
pub struct Pipeline {
    pub transforms: TransformChain,
    pub key_converter: Box<dyn Converter>,
    pub value_converter: Box<dyn Converter>,
    pub header_converter: Box<dyn HeaderConverter>,
    pub producer: Arc<TaskProducer>,
    pub errors: ErrorPolicy,
    pub listener: Arc<dyn TaskListener>,
}

/// Offsets acknowledged but not yet written, by canonical partition.
type Committable = Arc<Mutex<HashMap<String, (OffsetMap, OffsetMap)>>>;

struct Pending {
    partition: OffsetMap,
    offset: OffsetMap,
    /// Whether the record holds a slot in [`super::delivery::Acks`] (it
    /// went to the producer, or failed to and was tolerated): the acker
    /// then takes the next outcome before the offset may advance.
    sent: bool,
}

/// Bound on records produced but not yet acknowledged; the poll loop waits
/// when it is reached, so memory stays bounded when Kafka is slow.
const MAX_IN_FLIGHT: usize = 16_384;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SourceTaskRun {
    fn name(&self) -> String {
        format!("{}|task-{}", self.connector, self.task_id)
    }

    /// Runs the task until it is cancelled or fails. Statuses are reported
    /// through the listener; the return value is the failure, if any.
    pub async fn run(mut self) -> Result<(), ConnectError> {
        let name = self.name();
        if let Err(e) = self
            .task
            .start(self.context.clone(), self.props.clone())
            .await
        {
            self.pipeline.listener.on_failure(&e);
            return Err(e);
        }
        let committable: Committable = Arc::default();
        let failed: Arc<Mutex<Option<ConnectError>>> = Arc::default();
        let run_cancel = self.cancel.child_token();
        let (pending_tx, pending_rx) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
        let acker = spawn_named(
            format!("acker-{name}"),
            acker(
                pending_rx,
                Arc::clone(self.pipeline.producer.context()),
                Arc::clone(&committable),
                Arc::clone(&failed),
                self.pipeline.errors.clone(),
                run_cancel.clone(),
            ),
        );
        let flusher_cancel = CancellationToken::new();
        let flusher = spawn_named(
            format!("offset-committer-{name}"),
            periodic_flush(
                Arc::clone(&self.offsets),
                self.connector.clone(),
                Arc::clone(&committable),
                self.flush_interval,
                self.flush_timeout,
                Arc::clone(&self.commit_requests),
                flusher_cancel.clone(),
            ),
        );

        let result = self.poll_loop(&pending_tx, &run_cancel).await;
        // The acker's failure is the cause: it records it before it stops,
        // so a poll loop that then finds the acker gone reports only that.
        let result = match lock(&failed).take() {
            Some(e) => Err(e),
            None => result,
        };

        // Stop: the task first, so it releases its resources, then drain what
        // was produced and store the final offsets.
        if let Err(e) = self.task.stop().await {
            tracing::warn!(task = %name, error = %e, "task stop failed");
        }
        drop(pending_tx);
        let producer = Arc::clone(&self.pipeline.producer);
        let flush_timeout = self.flush_timeout;
        let _ = tokio::task::spawn_blocking(move || producer.flush(flush_timeout)).await;
        if tokio::time::timeout(self.flush_timeout, acker)
            .await
            .is_err()
        {
            tracing::warn!(task = %name, "records still unacknowledged at stop; their offsets are not committed");
        }
        flusher_cancel.cancel();
        let _ = flusher.await;
        match flush_offsets(
            &self.offsets,
            &self.connector,
            &committable,
            self.flush_timeout,
        )
        .await
        {
            Ok(n) if n > 0 => {
                let _ = self.task.commit().await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(task = %name, error = %e, "final offset commit failed; records since the last commit will be re-delivered")
            }
        }
        if let Err(e) = &result {
            self.pipeline.listener.on_failure(e);
        }
        result
    }

    async fn poll_loop(
        &mut self,
        pending: &mpsc::Sender<Pending>,
        cancel: &CancellationToken,
    ) -> Result<(), ConnectError> {
        let mut target = self.target.clone();
        let mut seen_topics: HashSet<String> = HashSet::new();
        let mut reported = None;
        loop {
            let state = *target.borrow_and_update();
            if reported != Some(state) {
                match state {
                    TargetState::Started => self.pipeline.listener.on_running(),
                    _ => self.pipeline.listener.on_paused(),
                }
                reported = Some(state);
            }
            if state != TargetState::Started {
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    r = target.changed() => if r.is_err() { return Ok(()) },
                }
                continue;
            }
            let batch = tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                r = target.changed() => { if r.is_err() { return Ok(()) } continue; }
                b = self.task.poll() => b,
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) if e.is_retriable() => {
                    tracing::warn!(task = %self.name(), error = %e, "retriable poll failure; polling again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            for record in batch {
                self.pipeline
                    .send(record, pending, &mut seen_topics)
                    .await?;
            }
        }
    }
}

impl Pipeline {
    async fn send(
        &self,
        record: SourceRecord,
        pending: &mpsc::Sender<Pending>,
        seen_topics: &mut HashSet<String>,
    ) -> Result<(), ConnectError> {
        let SourceRecord {
            source_partition,
            source_offset,
            record,
        } = record;
        // Errors name the topic the connector chose; transforms may change
        // it, so it is kept aside only when there are any (no copy per
        // record otherwise).
        let original_topic = (!self.transforms.is_empty()).then(|| record.topic.clone());
        let transformed = match &original_topic {
            None => Some(record),
            Some(context) => {
                let input = record;
                self.errors
                    .execute(Stage::Transformation, context, || {
                        let r = self.transforms.apply(input.clone());
                        async move { r }
                    })
                    .await?
                    .flatten()
            }
        };
        let Some(mut record) = transformed else {
            // Dropped (or tolerated): its offset still advances, in order.
            return self
                .push(pending, source_partition, source_offset, false)
                .await;
        };

        let topic = std::mem::take(&mut record.topic);
        let context: &str = original_topic.as_deref().unwrap_or(&topic);
        let headers = std::mem::take(&mut record.headers);
        let Some((key, headers)) = self
            .convert(
                Stage::KeyConverter,
                context,
                &*self.key_converter,
                &topic,
                headers,
                record.key_schema.as_ref(),
                &record.key,
            )
            .await?
        else {
            return self
                .push(pending, source_partition, source_offset, false)
                .await;
        };
        let Some((value, headers)) = self
            .convert(
                Stage::ValueConverter,
                context,
                &*self.value_converter,
                &topic,
                headers,
                record.value_schema.as_ref(),
                &record.value,
            )
            .await?
        else {
            return self
                .push(pending, source_partition, source_offset, false)
                .await;
        };
        let mut kheaders = None;
        if !headers.is_empty() {
            let mut owned = OwnedHeaders::new_with_capacity(headers.len());
            for h in headers.iter() {
                let bytes = match self.header_converter.from_connect_header(
                    &topic,
                    &h.key,
                    h.schema.as_ref(),
                    &h.value,
                ) {
                    Ok(b) => b,
                    Err(e) => {
                        self.errors.tolerate(Stage::HeaderConverter, context, e)?;
                        return self
                            .push(pending, source_partition, source_offset, false)
                            .await;
                    }
                };
                owned = owned.insert(KHeader {
                    key: &h.key,
                    value: bytes.as_deref(),
                });
            }
            kheaders = Some(owned);
        }

        let acks = &self.producer.context().acks;
        let seq = acks.register();
        let mut fr: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(&topic, seq);
        if let Some(k) = key.as_deref() {
            fr = fr.key(k);
        }
        if let Some(v) = value.as_deref() {
            fr = fr.payload(v);
        }
        if let Some(p) = record.kafka_partition {
            fr = fr.partition(p);
        }
        if let Some(ts) = record.timestamp {
            fr = fr.timestamp(ts);
        }
        if let Some(h) = kheaders {
            fr = fr.headers(h);
        }
        loop {
            match self.producer.send(fr) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // librdkafka's queue is full: give the network a moment.
                    fr = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    // Never sent: its slot is filled here, as delivered, so
                    // the acker moves past it (in order) if it is tolerated.
                    acks.settle(seq, Ok(()));
                    self.errors.tolerate(
                        Stage::Producer,
                        context,
                        ConnectError::fatal(format!("producing to topic {topic}: {e}")),
                    )?;
                    return self
                        .push(pending, source_partition, source_offset, true)
                        .await;
                }
            }
        }
        if !seen_topics.contains(&topic) {
            self.listener.on_first_write(&topic);
            seen_topics.insert(topic);
        }
        self.push(pending, source_partition, source_offset, true)
            .await
    }

    /// Runs one converter under the error policy; `None` = tolerated failure.
    #[allow(clippy::too_many_arguments)]
    async fn convert(
        &self,
        stage: Stage,
        context: &str,
        converter: &dyn Converter,
        topic: &str,
        headers: Headers,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> Result<Option<(Option<Vec<u8>>, Headers)>, ConnectError> {
        // Retries reuse the one header set, as Java's retry operator passes
        // the same Headers object again; no copy per record.
        let headers = tokio::sync::Mutex::new(headers);
        let bytes = self
            .errors
            .execute(stage, context, || {
                let headers = &headers;
                async move {
                    let mut h = headers.lock().await;
                    converter.from_connect(topic, &mut h, schema, value).await
                }
            })
            .await?;
        Ok(bytes.map(|b| (b, headers.into_inner())))
    }

    async fn push(
        &self,
        pending: &mpsc::Sender<Pending>,
        partition: OffsetMap,
        offset: OffsetMap,
        sent: bool,
    ) -> Result<(), ConnectError> {
        pending
            .send(Pending {
                partition,
                offset,
                sent,
            })
            .await
            .map_err(|_| ConnectError::fatal("the delivery tracker stopped unexpectedly"))
    }
}

/// Awaits deliveries in submission order and records committable offsets.
async fn acker(
    mut rx: mpsc::Receiver<Pending>,
    producer: Arc<TaskProducerContext>,
    committable: Committable,
    failed: Arc<Mutex<Option<ConnectError>>>,
    errors: ErrorPolicy,
    run_cancel: CancellationToken,
) {
    // Sources usually repeat one partition; remembering its canonical key
    // avoids sorting and serializing the map for every record.
    let mut last_key: Option<(OffsetMap, String)> = None;
    while let Some(p) = rx.recv().await {
        if p.sent {
            let outcome = producer.acks.next().await.map_err(|e| {
                ConnectError::fatal(format!("Kafka did not acknowledge a record: {e}"))
            });
            if let Err(e) = outcome {
                if let Err(fatal) = errors.tolerate(Stage::Producer, "", e) {
                    *lock(&failed) = Some(fatal);
                    run_cancel.cancel();
                    // Nothing after a lost record may be committed.
                    return;
                }
            }
        }
        if p.partition.is_empty() && p.offset.is_empty() {
            continue;
        }
        if last_key.as_ref().is_none_or(|(m, _)| *m != p.partition) {
            last_key = Some((p.partition.clone(), canonical(&p.partition)));
        }
        let Some((_, key)) = &last_key else { continue };
        let mut c = lock(&committable);
        match c.get_mut(key) {
            Some(entry) => entry.1 = p.offset,
            None => {
                c.insert(key.clone(), (p.partition, p.offset));
            }
        }
    }
}

/// A task's request for an early offset commit ([`CommitRequester`]).
/// `Notify` keeps at most one pending wake-up, so a burst of requests costs
/// one commit.
#[derive(Default)]
pub struct CommitSignal(tokio::sync::Notify);

impl CommitRequester for CommitSignal {
    fn request_commit(&self) {
        self.0.notify_one();
    }
}

async fn periodic_flush(
    offsets: Arc<OffsetStore>,
    connector: String,
    committable: Committable,
    interval: Duration,
    timeout: Duration,
    requests: Arc<CommitSignal>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
            _ = requests.0.notified() => {}
        }
        if let Err(e) = flush_offsets(&offsets, &connector, &committable, timeout).await {
            tracing::warn!(connector = %connector, error = %e, "offset commit failed; it will be retried at the next interval");
        }
    }
}

/// Writes the committable offsets; on failure they are kept for the next try.
async fn flush_offsets(
    offsets: &OffsetStore,
    connector: &str,
    committable: &Committable,
    timeout: Duration,
) -> Result<usize, String> {
    let batch: HashMap<String, (OffsetMap, OffsetMap)> = std::mem::take(&mut *lock(committable));
    if batch.is_empty() {
        return Ok(0);
    }
    let entries: Vec<(OffsetMap, Option<OffsetMap>)> = batch
        .values()
        .map(|(p, o)| (p.clone(), Some(o.clone())))
        .collect();
    let result = match tokio::time::timeout(timeout, offsets.set(connector, &entries)).await {
        Ok(Ok(())) => Ok(entries.len()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("timed out after {timeout:?}")),
    };
    if result.is_err() {
        let mut c = lock(committable);
        for (k, v) in batch {
            // A newer offset acknowledged meanwhile wins over the failed one.
            c.entry(k).or_insert(v);
        }
    }
    result
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
