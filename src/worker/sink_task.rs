//! The sink-task runtime: consume → converters → transforms → `put`, the
//! consumer-group offset commit, and the [`SinkRuntime`] services a sink task
//! may use (seek, pause/resume, topic creation, Kafka transactions, and
//! reading any partition's committed records outside the group, e.g. to
//! restore task state from a topic).
//!
//! # Offset commit ordering
//!
//! Sink offsets live in the consumer group (`connect-{name}` unless
//! `consumer.override.group.id`), never in the worker's offsets topic. The
//! runtime tracks `current`: per partition, the offset after the last record
//! handed to a *successful* `put` (records dropped by a transform or sent to
//! the dead letter queue count as handed over, so they are not re-read). Every
//! `offset.flush.interval.ms` it calls `pre_commit(current)` and commits what
//! the task returns, clamped to `current`: an offset beyond what `put` was
//! given is never committed, so a crash can duplicate the records of the last
//! interval but never lose one. A failed `put` stops commits for the rest of
//! the run (the task fails; the records since the last commit are read again
//! after a restart). A task that writes through
//! [`SinkRuntime::commit_transaction`] returns an empty map from
//! `pre_commit`, and then this loop commits nothing outside the transaction.
//!
//! # Rebalances
//!
//! librdkafka runs the rebalance callbacks synchronously inside the consumer's
//! poll, where the (async) task cannot be called. So the callbacks do only
//! what must happen at that instant and leave the rest to the loop:
//! * before a revocation, the callback commits the offsets the task last
//!   declared safe (`pre_commit`'s clamped result) for the revoked partitions,
//!   so the next owner starts after them; records put since that `pre_commit`
//!   may be delivered again to the next owner (at-least-once, as in Java when
//!   a revocation interrupts a flush interval);
//! * after an assignment, it pauses the new partitions the task or the
//!   target state wants paused, before any fetch starts.
//!
//! Both queue an event; the loop handles events before delivering any record
//! received after them, so the task sees `close` before records of the new
//! assignment and `open` before the first record of a partition. A record of
//! a partition that is no longer assigned is never delivered.
//!
//! # Seeks and transactions
//!
//! `seek`, `pause` and `resume` from the task are recorded and applied by the
//! loop before the next batch; records of a partition with a pending seek are
//! discarded (librdkafka also drops what it had fetched before the seek). A
//! failed [`SinkRuntime::commit_transaction`] aborts the transaction and
//! queues seeks of every assigned partition to its committed offset, so the
//! task sees the uncommitted records again, in order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use connect_api::config::Props;
use connect_api::connector::{
    ConsumedRecord, OutputRecord, PartitionChunk, SinkRuntime, TopicSpec,
};
use connect_api::data::Headers;
use connect_api::error::{ConnectError, ConnectResult};
use connect_api::record::{ConnectRecord, SinkRecord, TopicPartition};
use connect_api::{Converter, HeaderConverter, SinkTask, SinkTaskContext};
use futures::FutureExt;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, ConsumerGroupMetadata, Rebalance,
    StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header as KHeader, Headers as _, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, ClientContext, Offset, Timestamp, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::errors::{ErrorPolicy, Stage};
use super::source_task::TaskListener;
use super::transforms::TransformChain;
use crate::herder::api::TargetState;
use crate::storage::topics;

/// Records handed to one `put` at most.
const MAX_BATCH: usize = 500;
/// Timeout of the blocking Kafka calls (commits, offset fetches, transactions).
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
/// librdkafka's `RD_KAFKA_OFFSET_BEGINNING`, for partitions without a
/// committed offset when rewinding (Connect consumers default to `earliest`).
const OFFSET_BEGINNING: i64 = -2;

/// The `__connect.errors.*` header names of Java's `DeadLetterQueueReporter`.
pub mod dlq_headers {
    pub const TOPIC: &str = "__connect.errors.topic";
    pub const PARTITION: &str = "__connect.errors.partition";
    pub const OFFSET: &str = "__connect.errors.offset";
    pub const CONNECTOR: &str = "__connect.errors.connector.name";
    pub const TASK: &str = "__connect.errors.task.id";
    pub const STAGE: &str = "__connect.errors.stage";
    pub const CLASS: &str = "__connect.errors.class.name";
    pub const EXCEPTION: &str = "__connect.errors.exception.class.name";
    pub const MESSAGE: &str = "__connect.errors.exception.message";
    pub const STACKTRACE: &str = "__connect.errors.exception.stacktrace";
}

/// What a sink task consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    Topics(Vec<String>),
    /// A Java regex over whole topic names.
    Regex(String),
}

/// The sink-only keys of a connector config (contract §5.4).
#[derive(Debug, Clone)]
pub struct SinkSettings {
    pub subscription: Subscription,
    pub dlq_topic: Option<String>,
    pub dlq_replication_factor: i16,
    pub dlq_context_headers: bool,
}

impl SinkSettings {
    pub fn from_props(props: &Props) -> ConnectResult<SinkSettings> {
        let get = |k: &str| {
            props
                .get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let topics: Vec<String> = get("topics")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let regex = get("topics.regex");
        let subscription = match (topics.is_empty(), regex) {
            (false, None) => Subscription::Topics(topics),
            (true, Some(r)) => {
                regex::Regex::new(&r)
                    .map_err(|e| ConnectError::config("topics.regex", r.clone(), e.to_string()))?;
                Subscription::Regex(r)
            }
            (false, Some(_)) => {
                return Err(ConnectError::fatal(
                    "topics and topics.regex are mutually exclusive options, but both are set.",
                ))
            }
            (true, None) => {
                return Err(ConnectError::fatal(
                    "Must configure one of topics or topics.regex",
                ))
            }
        };
        let dlq_topic = get("errors.deadletterqueue.topic.name");
        if let (Some(dlq), Subscription::Topics(t)) = (&dlq_topic, &subscription) {
            if t.contains(dlq) {
                return Err(ConnectError::config(
                    "errors.deadletterqueue.topic.name",
                    dlq.clone(),
                    format!(
                        "The DLQ topic '{dlq}' may not be included in the list of topics ('topics={}') consumed by the connector",
                        t.join(",")
                    ),
                ));
            }
        }
        let rf = match get("errors.deadletterqueue.topic.replication.factor") {
            None => 3,
            Some(v) => v.parse::<i16>().map_err(|_| {
                ConnectError::config(
                    "errors.deadletterqueue.topic.replication.factor",
                    v.clone(),
                    "Not a number of type SHORT",
                )
            })?,
        };
        Ok(SinkSettings {
            subscription,
            dlq_topic,
            dlq_replication_factor: rf,
            dlq_context_headers: get("errors.deadletterqueue.context.headers.enable")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }
}

/// The consumer group of a sink connector: `connect-{name}` unless the
/// connector sets `consumer.override.group.id`.
pub fn sink_group(name: &str, connector: &Props) -> String {
    connector
        .get("consumer.override.group.id")
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| format!("connect-{name}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_string(),
        partition,
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| tp(e.topic(), e.partition()))
        .collect()
}

fn tpl_of<'a>(parts: impl IntoIterator<Item = &'a TopicPartition>) -> TopicPartitionList {
    let mut l = TopicPartitionList::new();
    for p in parts {
        l.add_partition(&p.topic, p.partition);
    }
    l
}

fn offsets_tpl(offsets: &HashMap<TopicPartition, i64>) -> ConnectResult<TopicPartitionList> {
    let mut l = TopicPartitionList::new();
    for (p, o) in offsets {
        l.add_partition_offset(&p.topic, p.partition, Offset::Offset(*o))
            .map_err(|e| ConnectError::fatal(format!("offset list: {e}")))?;
    }
    Ok(l)
}

/// A rebalance seen by the consumer callbacks, for the loop to act on.
#[derive(Debug)]
enum Rebalanced {
    Assigned(Vec<TopicPartition>),
    Revoked(Vec<TopicPartition>),
}

/// State shared by the loop, the rebalance callbacks and the task's
/// [`SinkRuntime`] handle. Held only for short, non-blocking updates.
#[derive(Default)]
struct SharedState {
    assigned: BTreeSet<TopicPartition>,
    /// Bounded by the number of rebalances between two loop iterations.
    events: Vec<Rebalanced>,
    /// The offsets `pre_commit` last declared safe (clamped), committed by
    /// the revocation callback.
    committable: HashMap<TopicPartition, i64>,
    /// Seeks not yet applied (task requests, transaction rewinds).
    seeks: HashMap<TopicPartition, i64>,
    /// Partitions the task paused.
    task_paused: BTreeSet<TopicPartition>,
    /// The target state is PAUSED: every partition is paused.
    all_paused: bool,
    /// The pause set changed since the loop last applied it.
    pause_dirty: bool,
}

impl SharedState {
    fn should_pause(&self, p: &TopicPartition) -> bool {
        self.all_paused || self.task_paused.contains(p)
    }
}

#[derive(Default)]
pub struct Shared(Mutex<SharedState>);

/// The consumer's context: the rebalance callbacks.
pub struct SinkConsumerContext {
    shared: Arc<Shared>,
    name: String,
}

impl ClientContext for SinkConsumerContext {}

impl ConsumerContext for SinkConsumerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let revoked = partitions_of(list);
        let mut commit = TopicPartitionList::new();
        {
            let mut st = lock(&self.shared.0);
            for p in &revoked {
                if let Some(o) = st.committable.remove(p) {
                    let _ = commit.add_partition_offset(&p.topic, p.partition, Offset::Offset(o));
                }
                st.assigned.remove(p);
                st.seeks.remove(p);
            }
            st.events.push(Rebalanced::Revoked(revoked));
        }
        // Commit before the partitions go, so the next owner starts after
        // every record this task declared done.
        if commit.count() > 0 {
            if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
                tracing::warn!(task = %self.name, error = %e, "committing offsets of revoked partitions failed; the next owner may see some records again");
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(list) = rebalance else {
            return;
        };
        let assigned = partitions_of(list);
        let pause = {
            let mut st = lock(&self.shared.0);
            st.assigned.extend(assigned.iter().cloned());
            let pause: Vec<TopicPartition> = assigned
                .iter()
                .filter(|p| st.should_pause(p))
                .cloned()
                .collect();
            st.events.push(Rebalanced::Assigned(assigned));
            pause
        };
        // Pause before the first fetch, so a paused task gets no record.
        if !pause.is_empty() {
            if let Err(e) = consumer.pause(&tpl_of(&pause)) {
                tracing::warn!(task = %self.name, error = %e, "pausing newly assigned partitions failed");
            }
        }
    }
}

pub type SinkConsumer = StreamConsumer<SinkConsumerContext>;

/// librdkafka settings of a sink task's clients.
pub struct SinkClients {
    pub admin: BTreeMap<String, String>,
    /// The worker's producer settings with the connector's overrides,
    /// for the transactional producer.
    pub producer: BTreeMap<String, String>,
    pub transactional_id: String,
    /// The task consumer's settings (worker `consumer.*` with the
    /// connector's overrides); the base of the group-less reader behind
    /// [`SinkRuntime::read_partition`].
    pub consumer: BTreeMap<String, String>,
}

/// Creates the task's consumer (not subscribed yet).
pub fn create_consumer(
    settings: &BTreeMap<String, String>,
    name: &str,
) -> ConnectResult<(Arc<SinkConsumer>, Arc<Shared>)> {
    let shared = Arc::new(Shared::default());
    let mut cfg = ClientConfig::new();
    for (k, v) in settings {
        cfg.set(k, v);
    }
    let consumer: SinkConsumer = cfg
        .create_with_context(SinkConsumerContext {
            shared: Arc::clone(&shared),
            name: name.to_string(),
        })
        .map_err(|e| ConnectError::fatal(format!("creating the consumer of task {name}: {e}")))?;
    Ok((Arc::new(consumer), shared))
}

/// Writes records that failed conversion or transformation to
/// `errors.deadletterqueue.topic.name` (Java's `DeadLetterQueueReporter`).
pub struct DeadLetterQueue {
    pub producer: FutureProducer,
    pub topic: String,
    pub replication_factor: i16,
    pub context_headers: bool,
    pub connector: String,
    pub task_id: u32,
    pub admin: BTreeMap<String, String>,
}

impl DeadLetterQueue {
    /// Creates the topic (one partition) if it is missing, as Java does at
    /// task start.
    async fn ensure_topic(&self) -> ConnectResult<()> {
        let admin = topics::admin(&self.admin).map_err(|e| ConnectError::fatal(e.to_string()))?;
        topics::create_if_missing(
            &admin,
            &self.topic,
            Some(1),
            Some(self.replication_factor),
            &[],
        )
        .await
        .map_err(|e| {
            ConnectError::fatal(format!(
                "creating the dead letter queue topic {}: {e}",
                self.topic
            ))
        })
    }

    /// Writes the original bytes, headers and timestamp, plus the context
    /// headers when enabled; returns once Kafka acknowledged the record, so
    /// the offset of a bad record never moves past an unwritten DLQ record.
    async fn report(
        &self,
        m: &OwnedMessage,
        stage: Stage,
        class: &str,
        error: &ConnectError,
    ) -> ConnectResult<()> {
        let mut headers = OwnedHeaders::new();
        if let Some(hs) = m.headers() {
            for h in hs.iter() {
                headers = headers.insert(KHeader {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        if self.context_headers {
            let partition = m.partition().to_string();
            let offset = m.offset().to_string();
            let task = self.task_id.to_string();
            let message = error.to_string();
            let trace = format!("{}: {message}", error.java_class());
            for (k, v) in [
                (dlq_headers::TOPIC, m.topic()),
                (dlq_headers::PARTITION, partition.as_str()),
                (dlq_headers::OFFSET, offset.as_str()),
                (dlq_headers::CONNECTOR, self.connector.as_str()),
                (dlq_headers::TASK, task.as_str()),
                (dlq_headers::STAGE, stage.as_str()),
                (dlq_headers::CLASS, class),
                (dlq_headers::EXCEPTION, error.java_class()),
                (dlq_headers::MESSAGE, message.as_str()),
                (dlq_headers::STACKTRACE, trace.as_str()),
            ] {
                headers = headers.insert(KHeader {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
        }
        let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).headers(headers);
        if let Some(k) = m.key() {
            fr = fr.key(k);
        }
        if let Some(v) = m.payload() {
            fr = fr.payload(v);
        }
        if let Some(ts) = m.timestamp().to_millis() {
            fr = fr.timestamp(ts);
        }
        self.producer
            .send(fr, KAFKA_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(|(e, _)| {
                ConnectError::fatal(format!(
                    "writing the record at {}-{} offset {} to the dead letter queue {}: {e}",
                    m.topic(),
                    m.partition(),
                    m.offset(),
                    self.topic
                ))
            })
    }
}

/// Conversion and transformation between the consumer and `put`.
pub struct SinkPipeline {
    pub transforms: TransformChain,
    /// Converter class names, for dead-letter context headers.
    pub key_converter: (String, Box<dyn Converter>),
    pub value_converter: (String, Box<dyn Converter>),
    pub header_converter: (String, Box<dyn HeaderConverter>),
    pub errors: ErrorPolicy,
    pub dlq: Option<DeadLetterQueue>,
    pub listener: Arc<dyn TaskListener>,
}

impl SinkPipeline {
    /// Turns a consumed record into the record `put` gets; `Ok(None)` when a
    /// transform dropped it or a tolerated failure sent it to the DLQ.
    async fn to_sink_record(&self, m: &OwnedMessage) -> ConnectResult<Option<SinkRecord>> {
        let topic = m.topic();
        let mut headers = Headers::new();
        if let Some(hs) = m.headers() {
            for h in hs.iter() {
                match self
                    .header_converter
                    .1
                    .to_connect_header(topic, h.key, h.value)
                {
                    Ok(sv) => headers.add(h.key, sv.schema, sv.value),
                    Err(e) => {
                        return self
                            .fail(m, Stage::HeaderConverter, &self.header_converter.0, e)
                            .await
                    }
                }
            }
        }
        let key = {
            let conv = &*self.key_converter.1;
            let h = &headers;
            self.errors
                .retry(|| conv.to_connect(topic, h, m.key()))
                .await
        };
        let key = match key {
            Ok(k) => k,
            Err(e) => {
                return self
                    .fail(m, Stage::KeyConverter, &self.key_converter.0, e)
                    .await
            }
        };
        let value = {
            let conv = &*self.value_converter.1;
            let h = &headers;
            self.errors
                .retry(|| conv.to_connect(topic, h, m.payload()))
                .await
        };
        let value = match value {
            Ok(v) => v,
            Err(e) => {
                return self
                    .fail(m, Stage::ValueConverter, &self.value_converter.0, e)
                    .await
            }
        };
        let (timestamp, timestamp_type) = match m.timestamp() {
            Timestamp::NotAvailable => (None, 0),
            Timestamp::CreateTime(t) => (Some(t), 1),
            Timestamp::LogAppendTime(t) => (Some(t), 2),
        };
        let record = SinkRecord {
            record: ConnectRecord {
                topic: topic.to_string(),
                kafka_partition: Some(m.partition()),
                key_schema: key.schema,
                key: key.value,
                value_schema: value.schema,
                value: value.value,
                timestamp,
                headers,
            },
            kafka_offset: m.offset(),
            timestamp_type,
            raw_key: m.key().map(<[u8]>::to_vec),
            raw_value: m.payload().map(<[u8]>::to_vec),
        };
        if self.transforms.is_empty() {
            return Ok(Some(record));
        }
        let mut delay = Duration::from_millis(300);
        let start = std::time::Instant::now();
        loop {
            match self.transforms.apply_sink(record.clone()) {
                Ok(r) => return Ok(r),
                Err((_, e))
                    if e.is_retriable()
                        && self
                            .errors
                            .retry_timeout
                            .is_none_or(|t| start.elapsed() + delay <= t) =>
                {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.errors.retry_delay_max);
                }
                Err((class, e)) => return self.fail(m, Stage::Transformation, &class, e).await,
            }
        }
    }

    /// A record failed for good: fail the task (`errors.tolerance=none`) or
    /// send it to the DLQ (`all`), never skipping it without a trace.
    async fn fail(
        &self,
        m: &OwnedMessage,
        stage: Stage,
        class: &str,
        e: ConnectError,
    ) -> ConnectResult<Option<SinkRecord>> {
        if !self.errors.tolerate_all {
            return Err(ConnectError::fatal(format!(
                "Tolerance exceeded in error handler: {} stage with class {class} failed for the record at topic '{}', partition {}, offset {}: {e}",
                stage.as_str(),
                m.topic(),
                m.partition(),
                m.offset()
            )));
        }
        match &self.dlq {
            Some(dlq) => {
                if self.errors.log_enable {
                    tracing::error!(stage = stage.as_str(), topic = m.topic(), partition = m.partition(), offset = m.offset(), error = %e, "error tolerated; the record goes to the dead letter queue");
                }
                dlq.report(m, stage, class, &e).await?;
            }
            None => {
                // No DLQ: the log line is the only trace of the skipped record.
                tracing::warn!(stage = stage.as_str(), topic = m.topic(), partition = m.partition(), offset = m.offset(), error = %e, "error tolerated; skipping the record (no dead letter queue configured)");
            }
        }
        Ok(None)
    }
}

/// Everything a sink task needs to run.
pub struct SinkTaskRun {
    pub connector: String,
    pub task_id: u32,
    pub task: Box<dyn SinkTask>,
    pub props: Props,
    pub subscription: Subscription,
    pub consumer: Arc<SinkConsumer>,
    pub shared: Arc<Shared>,
    pub runtime: Arc<KafkaSinkRuntime>,
    pub pipeline: SinkPipeline,
    pub flush_interval: Duration,
    pub target: watch::Receiver<TargetState>,
    pub cancel: CancellationToken,
}

/// Per-run bookkeeping of the loop.
#[derive(Default)]
struct Progress {
    /// Next offset after the records handed to a successful `put`.
    current: HashMap<TopicPartition, i64>,
    /// What the group holds, as far as this loop committed it.
    last_committed: HashMap<TopicPartition, i64>,
    /// A record received after a rebalance event; delivered after the event
    /// is handled.
    carry: Option<OwnedMessage>,
    /// Set when `put` failed: nothing is committed any more in this run.
    poisoned: bool,
}

impl SinkTaskRun {
    fn name(&self) -> String {
        format!("{}|task-{}", self.connector, self.task_id)
    }

    /// Runs the task until it is cancelled or fails. Statuses are reported
    /// through the listener; the return value is the failure, if any.
    pub async fn run(mut self) -> Result<(), ConnectError> {
        let name = self.name();
        let mut progress = Progress::default();
        let started = match self.start().await {
            Ok(()) => true,
            Err(e) => {
                self.pipeline.listener.on_failure(&e);
                self.release(false).await;
                return Err(e);
            }
        };
        let result = self.consume_loop(&mut progress).await;
        // Stop, as Java does: commit, close the partitions, stop the task.
        if started {
            if result.is_ok() && !progress.poisoned {
                self.commit(&mut progress).await;
            }
            let assigned: Vec<TopicPartition> =
                lock(&self.shared.0).assigned.iter().cloned().collect();
            if let Err(e) = self.task.close(&assigned).await {
                tracing::warn!(task = %name, error = %e, "closing partitions failed");
            }
            self.release(true).await;
        }
        if let Err(e) = &result {
            self.pipeline.listener.on_failure(e);
        }
        result
    }

    async fn start(&mut self) -> ConnectResult<()> {
        if let Some(dlq) = &self.pipeline.dlq {
            dlq.ensure_topic().await?;
        }
        let ctx = SinkTaskContext {
            connector: self.connector.clone(),
            task_id: self.task_id,
            cancel: self.cancel.clone(),
            runtime: Arc::clone(&self.runtime) as Arc<dyn SinkRuntime>,
        };
        self.task.start(ctx, self.props.clone()).await?;
        let r = match &self.subscription {
            Subscription::Topics(t) => {
                let refs: Vec<&str> = t.iter().map(String::as_str).collect();
                self.consumer.subscribe(&refs)
            }
            // librdkafka treats a leading `^` as a regex; Java matches the
            // whole name, hence the anchors.
            Subscription::Regex(r) => self.consumer.subscribe(&[&format!("^({r})$")]),
        };
        r.map_err(|e| ConnectError::fatal(format!("subscribing: {e}")))
    }

    /// Stops the task and closes the consumer (which leaves the group).
    async fn release(&mut self, stop_task: bool) {
        if stop_task {
            if let Err(e) = self.task.stop().await {
                tracing::warn!(task = %self.name(), error = %e, "task stop failed");
            }
        }
        self.runtime.drop_producer().await;
        self.consumer.unsubscribe();
    }

    async fn consume_loop(&mut self, progress: &mut Progress) -> ConnectResult<()> {
        let consumer = Arc::clone(&self.consumer);
        let mut target = self.target.clone();
        let mut reported = None;
        let mut tick = tokio::time::interval(self.flush_interval);
        // After a long `put`, one commit catches up; missed ticks do not burst.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let state = *target.borrow_and_update();
            if reported != Some(state) {
                let mut st = lock(&self.shared.0);
                st.all_paused = state != TargetState::Started;
                st.pause_dirty = true;
                drop(st);
                match state {
                    TargetState::Started => self.pipeline.listener.on_running(),
                    _ => self.pipeline.listener.on_paused(),
                }
                reported = Some(state);
            }
            self.handle_events(progress).await?;
            self.apply_requests(progress);

            let mut batch = Vec::new();
            if let Some(m) = progress.carry.take() {
                batch.push(m);
            } else {
                let received = tokio::select! {
                    _ = self.cancel.cancelled() => return Ok(()),
                    r = target.changed() => { if r.is_err() { return Ok(()) } continue; }
                    _ = tick.tick() => {
                        self.commit(progress).await;
                        continue;
                    }
                    // Wake up regularly so seeks and pauses requested from
                    // outside `put` are applied without a new record.
                    _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                    m = consumer.recv() => m,
                };
                match received {
                    Ok(m) => {
                        let m = m.detach();
                        if self.has_events() {
                            progress.carry = Some(m);
                            continue;
                        }
                        batch.push(m);
                    }
                    Err(e) => {
                        tracing::warn!(task = %self.name(), error = %e, "consumer error");
                        continue;
                    }
                }
            }
            // Take what is already fetched, without waiting, up to a batch.
            while batch.len() < MAX_BATCH {
                match consumer.recv().now_or_never() {
                    Some(Ok(m)) => {
                        let m = m.detach();
                        if self.has_events() {
                            progress.carry = Some(m);
                            break;
                        }
                        batch.push(m);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(task = %self.name(), error = %e, "consumer error");
                        break;
                    }
                    None => break,
                }
            }
            self.deliver(batch, progress).await?;
            if tick_due(&mut tick) {
                self.commit(progress).await;
            }
        }
    }

    fn has_events(&self) -> bool {
        !lock(&self.shared.0).events.is_empty()
    }

    /// Calls `open`/`close` for the rebalances seen since the last call.
    async fn handle_events(&mut self, progress: &mut Progress) -> ConnectResult<()> {
        let events = std::mem::take(&mut lock(&self.shared.0).events);
        for ev in events {
            match ev {
                Rebalanced::Assigned(parts) => {
                    tracing::info!(task = %self.name(), partitions = ?parts, "partitions assigned");
                    self.task.open(&parts).await?;
                }
                Rebalanced::Revoked(parts) => {
                    tracing::info!(task = %self.name(), partitions = ?parts, "partitions revoked");
                    for p in &parts {
                        progress.current.remove(p);
                        progress.last_committed.remove(p);
                    }
                    if progress
                        .carry
                        .as_ref()
                        .is_some_and(|m| parts.contains(&tp(m.topic(), m.partition())))
                    {
                        progress.carry = None;
                    }
                    self.task.close(&parts).await?;
                }
            }
        }
        Ok(())
    }

    /// Applies seeks and pause/resume requests.
    fn apply_requests(&mut self, progress: &mut Progress) {
        let (seeks, pause, resume) = {
            let mut st = lock(&self.shared.0);
            let seeks: Vec<(TopicPartition, i64)> = st
                .seeks
                .iter()
                .filter(|(p, _)| st.assigned.contains(*p))
                .map(|(p, o)| (p.clone(), *o))
                .collect();
            let (pause, resume) = if st.pause_dirty {
                st.pause_dirty = false;
                let (p, r): (Vec<_>, Vec<_>) = st
                    .assigned
                    .iter()
                    .cloned()
                    .partition(|p| st.should_pause(p));
                (p, r)
            } else {
                (Vec::new(), Vec::new())
            };
            (seeks, pause, resume)
        };
        for (p, offset) in seeks {
            match self.consumer.seek(
                &p.topic,
                p.partition,
                Offset::from_raw(offset),
                Duration::from_secs(10),
            ) {
                Ok(()) => {
                    let mut st = lock(&self.shared.0);
                    // A newer request for the partition stays pending.
                    if st.seeks.get(&p) == Some(&offset) {
                        st.seeks.remove(&p);
                    }
                    drop(st);
                    if offset >= 0 {
                        progress.current.insert(p.clone(), offset);
                    } else {
                        progress.current.remove(&p);
                    }
                    if progress
                        .carry
                        .as_ref()
                        .is_some_and(|m| tp(m.topic(), m.partition()) == p)
                    {
                        progress.carry = None;
                    }
                }
                // Typically: the partition is assigned but its fetcher has
                // not started yet. The seek stays pending (and records of
                // the partition are held back) until it succeeds.
                Err(e) => {
                    tracing::debug!(task = %self.name(), partition = ?p, error = %e, "seek not applied yet; retrying")
                }
            }
        }
        if !pause.is_empty() {
            if let Err(e) = self.consumer.pause(&tpl_of(&pause)) {
                tracing::warn!(task = %self.name(), error = %e, "pausing partitions failed");
            }
        }
        if !resume.is_empty() {
            if let Err(e) = self.consumer.resume(&tpl_of(&resume)) {
                tracing::warn!(task = %self.name(), error = %e, "resuming partitions failed");
            }
        }
    }

    /// Converts, transforms and `put`s one batch; advances `current` only
    /// after `put` succeeded.
    async fn deliver(
        &mut self,
        batch: Vec<OwnedMessage>,
        progress: &mut Progress,
    ) -> ConnectResult<()> {
        let mut records = Vec::with_capacity(batch.len());
        let mut next: HashMap<TopicPartition, i64> = HashMap::new();
        {
            // Records of revoked partitions or of partitions about to be
            // repositioned are not delivered.
            let keep: Vec<bool> = {
                let st = lock(&self.shared.0);
                batch
                    .iter()
                    .map(|m| {
                        let p = tp(m.topic(), m.partition());
                        st.assigned.contains(&p) && !st.seeks.contains_key(&p)
                    })
                    .collect()
            };
            for (m, keep) in batch.iter().zip(keep) {
                if !keep {
                    continue;
                }
                if let Some(r) = self.pipeline.to_sink_record(m).await? {
                    records.push(r);
                }
                next.insert(tp(m.topic(), m.partition()), m.offset() + 1);
            }
        }
        if next.is_empty() {
            return Ok(());
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.task.put(records.clone()).await {
                Ok(()) => break,
                Err(e) if e.is_retriable() => {
                    // A rewind (failed transaction) re-delivers the records
                    // itself; otherwise Java's rule: retry the same batch.
                    if !lock(&self.shared.0).seeks.is_empty() {
                        tracing::info!(task = %self.name(), error = %e, "put failed; re-reading from the committed offsets");
                        return Ok(());
                    }
                    tracing::warn!(task = %self.name(), error = %e, "retriable put failure; retrying the batch");
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    progress.poisoned = true;
                    return Err(e);
                }
            }
        }
        // A seek requested during `put` wins over the delivered position.
        let st = lock(&self.shared.0);
        for (p, o) in next {
            if !st.seeks.contains_key(&p) {
                progress.current.insert(p, o);
            }
        }
        Ok(())
    }

    /// `pre_commit`, then commits what it returned (clamped to `current`).
    /// Failures are logged; the next interval tries again.
    async fn commit(&mut self, progress: &mut Progress) {
        if progress.current.is_empty() || progress.poisoned {
            return;
        }
        let safe = match self.task.pre_commit(&progress.current).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(task = %self.name(), error = %e, "pre_commit failed; offsets not committed this time");
                return;
            }
        };
        let mut changed: HashMap<TopicPartition, i64> = HashMap::new();
        {
            let mut st = lock(&self.shared.0);
            for (p, offset) in safe {
                let Some(cur) = progress.current.get(&p) else {
                    continue;
                };
                if !st.assigned.contains(&p) {
                    continue;
                }
                let offset = offset.min(*cur);
                st.committable.insert(p.clone(), offset);
                if progress.last_committed.get(&p) != Some(&offset) {
                    changed.insert(p, offset);
                }
            }
        }
        if changed.is_empty() {
            return;
        }
        let tpl = match offsets_tpl(&changed) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(task = %self.name(), error = %e, "offset commit skipped");
                return;
            }
        };
        let consumer = Arc::clone(&self.consumer);
        match tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync)).await {
            Ok(Ok(())) => progress.last_committed.extend(changed),
            Ok(Err(e)) => {
                tracing::warn!(task = %self.name(), error = %e, "offset commit failed; it will be retried at the next interval")
            }
            Err(e) => tracing::warn!(task = %self.name(), error = %e, "offset commit failed"),
        }
    }
}

/// Whether the interval's next tick is already due (consumes it if so), so
/// a steady stream of records does not starve the periodic commit.
fn tick_due(tick: &mut tokio::time::Interval) -> bool {
    tick.tick().now_or_never().is_some()
}

/// The [`SinkRuntime`] a sink task gets in its context.
pub struct KafkaSinkRuntime {
    consumer: Arc<SinkConsumer>,
    shared: Arc<Shared>,
    clients: SinkClients,
    name: String,
    /// Created by the first `commit_transaction`.
    producer: tokio::sync::Mutex<Option<FutureProducer>>,
    /// Set after a fatal transaction failure: this run makes no new producer.
    fenced: std::sync::atomic::AtomicBool,
    /// Created by the first `read_partition`. The mutex also serializes
    /// reads (each one re-assigns the reader's single partition); its owned
    /// guard goes to the blocking thread, so a caller that gives up cannot
    /// let a second read use the consumer while the first still polls it.
    reader: Arc<tokio::sync::Mutex<Option<BaseConsumer>>>,
}

impl KafkaSinkRuntime {
    pub fn new(
        consumer: Arc<SinkConsumer>,
        shared: Arc<Shared>,
        clients: SinkClients,
        name: String,
    ) -> Self {
        KafkaSinkRuntime {
            consumer,
            shared,
            clients,
            name,
            producer: tokio::sync::Mutex::new(None),
            fenced: std::sync::atomic::AtomicBool::new(false),
            reader: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// The consumer behind `read_partition`: the task consumer's connection
    /// and security settings, but not its group (it must not join the task's
    /// group nor commit there), manual assignment, and `read_committed` so
    /// that aborted batches of the state topic's transactions are never seen.
    fn reader_config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        for (k, v) in &self.clients.consumer {
            if READER_DROPPED_KEYS.contains(&k.as_str()) {
                continue;
            }
            cfg.set(k, v);
        }
        let client_id = self
            .clients
            .consumer
            .get("client.id")
            .map_or_else(|| format!("connector-consumer-{}", self.name), Clone::clone);
        // librdkafka's assign() needs a group id although nothing joins or
        // commits: with manual assignment and no commits the group is never
        // created on the broker. Its own name keeps it apart from the task's.
        cfg.set(
            "group.id",
            format!(
                "{}-reader",
                self.clients
                    .consumer
                    .get("group.id")
                    .map_or("connectd", String::as_str)
            ),
        )
        .set("client.id", format!("{client_id}-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A start below the log start (retention) reads from the first
        // record that is still there.
        .set("auto.offset.reset", "earliest")
        // The end of a read is detected by librdkafka's EOF, which in
        // read_committed mode fires at the last stable offset.
        .set("enable.partition.eof", "true");
        cfg
    }

    fn create_reader(&self) -> ConnectResult<BaseConsumer> {
        self.reader_config().create().map_err(|e| {
            ConnectError::fatal(format!(
                "creating the partition reader of task {}: {e}",
                self.name
            ))
        })
    }

    async fn drop_producer(&self) {
        if let Some(p) = self.producer.lock().await.take() {
            let _ = tokio::task::spawn_blocking(move || drop(p)).await;
        }
    }

    async fn transactional_producer(&self) -> ConnectResult<FutureProducer> {
        if self.fenced.load(std::sync::atomic::Ordering::Acquire) {
            return Err(ConnectError::fatal(format!(
                "the transactional producer of {} failed fatally (fenced by a newer instance?); the task must be restarted",
                self.name
            )));
        }
        let mut guard = self.producer.lock().await;
        if let Some(p) = guard.as_ref() {
            return Ok(p.clone());
        }
        let mut cfg = ClientConfig::new();
        for (k, v) in &self.clients.producer {
            // librdkafka derives the message timeout from the transaction
            // timeout; an explicit larger one would be rejected.
            if k == "message.timeout.ms" || k == "delivery.timeout.ms" {
                continue;
            }
            cfg.set(k, v);
        }
        cfg.set("transactional.id", &self.clients.transactional_id)
            .set("enable.idempotence", "true")
            .set("acks", "all");
        let producer: FutureProducer = cfg.create().map_err(|e| {
            ConnectError::fatal(format!(
                "creating the transactional producer of {}: {e}",
                self.name
            ))
        })?;
        let p = producer.clone();
        // init_transactions fences an older instance with the same id and
        // aborts its open transaction.
        blocking(move || p.init_transactions(KAFKA_TIMEOUT))
            .await
            .map_err(|e| {
                ConnectError::fatal(format!(
                    "initializing transactions (transactional.id {}): {e}; the broker must support transactions",
                    self.clients.transactional_id
                ))
            })?;
        *guard = Some(producer.clone());
        Ok(producer)
    }

    async fn committed_raw(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> ConnectResult<HashMap<TopicPartition, i64>> {
        if partitions.is_empty() {
            return Ok(HashMap::new());
        }
        let consumer = Arc::clone(&self.consumer);
        let list = tpl_of(&partitions);
        let got = blocking(move || consumer.committed_offsets(list, KAFKA_TIMEOUT))
            .await
            .map_err(|e| ConnectError::retriable(format!("fetching committed offsets: {e}")))?;
        Ok(got
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((tp(e.topic(), e.partition()), o)),
                _ => None,
            })
            .collect())
    }

    /// After an aborted transaction: re-read every assigned partition from
    /// its committed offset.
    async fn rewind(&self) {
        let assigned: Vec<TopicPartition> = lock(&self.shared.0).assigned.iter().cloned().collect();
        match self.committed_raw(assigned.clone()).await {
            Ok(committed) => {
                let mut st = lock(&self.shared.0);
                for p in assigned {
                    let o = committed.get(&p).copied().unwrap_or(OFFSET_BEGINNING);
                    st.seeks.insert(p, o);
                }
            }
            Err(e) => {
                // Without the committed offsets the position cannot be made
                // right; failing the task makes the restart re-read them.
                tracing::error!(task = %self.name, error = %e, "cannot rewind after an aborted transaction");
            }
        }
    }

    async fn run_transaction(
        &self,
        producer: &FutureProducer,
        records: Vec<OutputRecord>,
        offsets: Option<(TopicPartitionList, ConsumerGroupMetadata)>,
    ) -> Result<(), KafkaError> {
        producer.begin_transaction()?;
        let mut deliveries = Vec::with_capacity(records.len());
        for r in &records {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(KHeader {
                    key: k,
                    value: v.as_deref(),
                });
            }
            let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&r.topic).headers(headers);
            if let Some(k) = r.key.as_deref() {
                fr = fr.key(k);
            }
            if let Some(v) = r.value.as_deref() {
                fr = fr.payload(v);
            }
            if let Some(p) = r.partition {
                fr = fr.partition(p);
            }
            deliveries.push(producer.send(fr, KAFKA_TIMEOUT));
        }
        for d in futures::future::join_all(deliveries).await {
            d.map_err(|(e, _)| e)?;
        }
        if let Some((list, meta)) = offsets {
            let p = producer.clone();
            blocking(move || p.send_offsets_to_transaction(&list, &meta, KAFKA_TIMEOUT)).await?;
        }
        let p = producer.clone();
        blocking(move || p.commit_transaction(KAFKA_TIMEOUT)).await
    }
}

/// Task-consumer settings the group-less reader must not inherit: the group
/// (joining it would take partitions from the task), its commit and
/// rebalance settings, and the keys `reader_config` sets itself.
const READER_DROPPED_KEYS: &[&str] = &[
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.remote.assignor",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "auto.commit.interval.ms",
    "client.id",
    "isolation.level",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "enable.partition.eof",
];

/// Idle time after which a `read_partition` that has not reached the end
/// gives up (the broker stopped answering).
const READ_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One `read_partition` on the reader, on a blocking thread: checks that the
/// partition exists, takes the last stable offset as the end, assigns the
/// partition at `from` and reads until `max_records` or the end.
fn read_chunk(
    reader: &BaseConsumer,
    topic: &str,
    partition: i32,
    from: i64,
    max_records: usize,
) -> ConnectResult<PartitionChunk> {
    let name = format!("{topic}-{partition}");
    let md = reader
        .fetch_metadata(Some(topic), KAFKA_TIMEOUT)
        .map_err(|e| ConnectError::retriable(format!("reading {name}: fetching metadata: {e}")))?;
    let partitions = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .filter(|t| t.error().is_none())
        .map_or(0, |t| t.partitions().len());
    if partitions == 0 {
        return Err(ConnectError::fatal(format!(
            "cannot read {name}: topic {topic} does not exist"
        )));
    }
    if partition < 0 || partition as usize >= partitions {
        return Err(ConnectError::fatal(format!(
            "cannot read {name}: topic {topic} has {partitions} partitions"
        )));
    }
    // A read_committed client's ListOffsets answers the last stable offset
    // as the high mark: everything below it is decided (committed or
    // aborted), so the read below always reaches it.
    let (low, end) = reader
        .fetch_watermarks(topic, partition, KAFKA_TIMEOUT)
        .map_err(|e| {
            ConnectError::retriable(format!("reading {name}: fetching its end offset: {e}"))
        })?;
    let start = from.max(low);
    if start >= end || max_records == 0 {
        return Ok(PartitionChunk {
            records: Vec::new(),
            next_offset: start.max(from),
            end_offset: end,
        });
    }
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(start))
        .map_err(|e| ConnectError::fatal(format!("reading {name}: {e}")))?;
    reader
        .assign(&list)
        .map_err(|e| ConnectError::retriable(format!("reading {name}: assigning it: {e}")))?;
    let mut records = Vec::new();
    let mut next = start;
    let mut idle_since = std::time::Instant::now();
    let outcome = loop {
        if records.len() >= max_records {
            break Ok(());
        }
        match reader.poll(Duration::from_millis(200)) {
            None => {
                if idle_since.elapsed() > READ_IDLE_TIMEOUT {
                    break Err(ConnectError::retriable(format!(
                        "reading {name}: no progress at offset {next} for {}s (end {end})",
                        READ_IDLE_TIMEOUT.as_secs()
                    )));
                }
            }
            Some(Ok(m)) => {
                idle_since = std::time::Instant::now();
                // Left-overs of an earlier assignment are not ours.
                if m.topic() != topic || m.partition() != partition || m.offset() < next {
                    continue;
                }
                next = m.offset() + 1;
                records.push(ConsumedRecord {
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                });
            }
            Some(Err(KafkaError::PartitionEOF(p))) if p == partition => {
                // Everything committed below the fetch position has been
                // delivered, and the fetch position is at least `end`: what
                // lies between `next` and `end` is markers and aborted data.
                next = next.max(end);
                break Ok(());
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => {
                break Err(ConnectError::retriable(format!(
                    "reading {name} at offset {next}: {e}"
                )))
            }
        }
    };
    // Stop fetching: a reader left assigned would keep prefetching.
    if let Err(e) = reader.unassign() {
        tracing::warn!(partition = %name, error = %e, "unassigning the partition reader failed");
    }
    match outcome {
        // A read cut short still hands over what it got, so a caller paging
        // through a large topic keeps its progress.
        Err(e) if records.is_empty() => Err(e),
        _ => Ok(PartitionChunk {
            records,
            next_offset: next,
            end_offset: end,
        }),
    }
}

/// Runs a blocking librdkafka call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(KafkaError::Canceled))
}

#[async_trait]
impl SinkRuntime for KafkaSinkRuntime {
    fn seek(&self, offsets: HashMap<TopicPartition, i64>) {
        lock(&self.shared.0).seeks.extend(offsets);
    }

    async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> ConnectResult<HashMap<TopicPartition, i64>> {
        self.committed_raw(partitions.to_vec()).await
    }

    fn pause(&self, partitions: &[TopicPartition]) {
        let mut st = lock(&self.shared.0);
        st.task_paused.extend(partitions.iter().cloned());
        st.pause_dirty = true;
    }

    fn resume(&self, partitions: &[TopicPartition]) {
        let mut st = lock(&self.shared.0);
        for p in partitions {
            st.task_paused.remove(p);
        }
        st.pause_dirty = true;
    }

    async fn ensure_topics(&self, specs: &[TopicSpec]) -> ConnectResult<()> {
        let admin =
            topics::admin(&self.clients.admin).map_err(|e| ConnectError::fatal(e.to_string()))?;
        for s in specs {
            topics::create_if_missing(
                &admin,
                &s.name,
                s.partitions,
                s.replication_factor,
                &s.configs,
            )
            .await
            .map_err(|e| ConnectError::fatal(e.to_string()))?;
        }
        Ok(())
    }

    async fn partition_count(&self, topic: &str) -> ConnectResult<Option<i32>> {
        let admin = self.clients.admin.clone();
        let name = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let admin = topics::admin(&admin)?;
            topics::partition_count(&admin, &name)
        })
        .await
        .map_err(|e| ConnectError::fatal(format!("describing topic {topic}: {e}")))?
        .map_err(|e| ConnectError::retriable(e.to_string()))?
        .map(|n| {
            i32::try_from(n)
                .map_err(|_| ConnectError::fatal(format!("topic {topic} has {n} partitions")))
        })
        .transpose()
    }

    async fn read_partition(
        &self,
        partition: &TopicPartition,
        from: i64,
        max_records: usize,
    ) -> ConnectResult<PartitionChunk> {
        let mut guard = Arc::clone(&self.reader).lock_owned().await;
        if guard.is_none() {
            *guard = Some(self.create_reader()?);
        }
        let topic = partition.topic.clone();
        let p = partition.partition;
        tokio::task::spawn_blocking(move || match guard.as_ref() {
            Some(reader) => read_chunk(reader, &topic, p, from, max_records),
            None => Err(ConnectError::fatal("the partition reader is gone")),
        })
        .await
        .map_err(|e| {
            ConnectError::fatal(format!(
                "reading {}-{}: the reader thread failed: {e}",
                partition.topic, partition.partition
            ))
        })?
    }

    async fn commit_transaction(
        &self,
        records: Vec<OutputRecord>,
        offsets: HashMap<TopicPartition, i64>,
    ) -> ConnectResult<()> {
        let offsets = if offsets.is_empty() {
            None
        } else {
            // KIP-447: the group metadata lets the coordinator fence a
            // zombie that lost the partitions in a rebalance.
            let meta = self.consumer.group_metadata().ok_or_else(|| {
                ConnectError::retriable("the consumer has not joined its group yet")
            })?;
            Some((offsets_tpl(&offsets)?, meta))
        };
        let producer = self.transactional_producer().await?;
        let result = self.run_transaction(&producer, records, offsets).await;
        let Err(e) = result else {
            return Ok(());
        };
        // Fenced (a newer instance with the same transactional.id exists) or
        // otherwise unusable: the failure itself may look abortable (e.g.
        // purged deliveries), so librdkafka's fatal state decides too.
        let mut fatal = matches!(&e, KafkaError::Transaction(t) if t.is_fatal())
            || producer.client().fatal_error().is_some();
        if !fatal {
            let p = producer.clone();
            if let Err(abort) = blocking(move || p.abort_transaction(KAFKA_TIMEOUT)).await {
                tracing::warn!(task = %self.name, error = %abort, "aborting the transaction failed");
                fatal = true;
            }
        }
        if fatal {
            // The task fails; only its restart creates a new producer, so a
            // fenced zombie never fences the instance that replaced it.
            self.fenced
                .store(true, std::sync::atomic::Ordering::Release);
            self.drop_producer().await;
        }
        self.rewind().await;
        let msg = format!("the transaction of {} was not committed: {e}", self.name);
        Err(if fatal {
            ConnectError::fatal(msg)
        } else {
            ConnectError::retriable(msg)
        })
    }
}

/// A failure of the sink offsets REST operations (contract §1.4.14).
#[derive(Debug, thiserror::Error)]
pub enum SinkOffsetsError {
    /// The request body is wrong (400).
    #[error("{0}")]
    BadRequest(String),
    /// Kafka refused or failed (500).
    #[error("{0}")]
    Kafka(String),
}

fn group_client(
    settings: &BTreeMap<String, String>,
    group: &str,
) -> Result<BaseConsumer, SinkOffsetsError> {
    let mut cfg = ClientConfig::new();
    for (k, v) in settings {
        cfg.set(k, v);
    }
    // The client never joins the group: it only reads or writes the
    // group's committed offsets, as Java's admin client does.
    cfg.set("group.id", group)
        .set("enable.auto.commit", "false");
    cfg.create()
        .map_err(|e| SinkOffsetsError::Kafka(format!("creating a client for group {group}: {e}")))
}

/// The committed offsets of a sink connector's group, over every partition
/// of every topic in the cluster, sorted by topic and partition.
pub async fn group_offsets(
    settings: &BTreeMap<String, String>,
    group: &str,
) -> Result<Vec<(TopicPartition, i64)>, SinkOffsetsError> {
    let client = group_client(settings, group)?;
    let group = group.to_string();
    tokio::task::spawn_blocking(move || {
        let md = client
            .fetch_metadata(None, KAFKA_TIMEOUT)
            .map_err(|e| SinkOffsetsError::Kafka(format!("listing topics: {e}")))?;
        let mut all = TopicPartitionList::new();
        for t in md.topics() {
            for p in t.partitions() {
                all.add_partition(t.name(), p.id());
            }
        }
        let got = client.committed_offsets(all, KAFKA_TIMEOUT).map_err(|e| {
            SinkOffsetsError::Kafka(format!(
                "reading the committed offsets of group {group}: {e}"
            ))
        })?;
        let mut out: Vec<(TopicPartition, i64)> = got
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((tp(e.topic(), e.partition()), o)),
                _ => None,
            })
            .collect();
        out.sort();
        Ok(out)
    })
    .await
    .map_err(|e| SinkOffsetsError::Kafka(e.to_string()))?
}

fn int_of(v: Option<&serde_json::Value>) -> Option<i64> {
    match v? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// One REST offset entry: the partition map and the offset map (`None` =
/// reset).
pub type RestOffset = (
    serde_json::Map<String, serde_json::Value>,
    Option<serde_json::Map<String, serde_json::Value>>,
);

/// Parses the REST form of sink offsets: partitions
/// `{"kafka_topic":"t","kafka_partition":0}` (numbers or numeric strings)
/// with `{"kafka_offset":5}` or `null` (reset that partition).
pub fn parse_sink_offsets(
    entries: &[RestOffset],
) -> Result<Vec<(TopicPartition, Option<i64>)>, SinkOffsetsError> {
    let bad = |m: String| SinkOffsetsError::BadRequest(m);
    let mut out = Vec::with_capacity(entries.len());
    for (partition, offset) in entries {
        let topic = match partition.get("kafka_topic") {
            Some(serde_json::Value::String(t)) if !t.trim().is_empty() => t.clone(),
            Some(_) => return Err(bad("Kafka topic names must be valid strings that are not empty".into())),
            None => return Err(bad("The partition for a sink connector offset must contain the keys 'kafka_topic' and 'kafka_partition'".into())),
        };
        let raw_p = partition.get("kafka_partition").ok_or_else(|| {
            bad("The partition for a sink connector offset must contain the keys 'kafka_topic' and 'kafka_partition'".into())
        })?;
        let p = int_of(Some(raw_p))
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| bad(format!("Failed to parse the following Kafka partition value in the provided offsets: '{raw_p}'. Partition values for sink connectors need to be integers.")))?;
        let o = match offset {
            None => None,
            Some(map) => {
                let raw_o = map.get("kafka_offset").ok_or_else(|| {
                    bad("The offset for a sink connector should either be null or contain the key 'kafka_offset'".into())
                })?;
                let o = int_of(Some(raw_o)).ok_or_else(|| bad(format!("Failed to parse the following Kafka offset value in the provided offsets: '{raw_o}'. Offset values for sink connectors need to be integers.")))?;
                if o < 0 {
                    return Err(bad(format!(
                        "Kafka offsets must be non-negative, but {o} was provided"
                    )));
                }
                Some(o)
            }
        };
        out.push((tp(&topic, p), o));
    }
    Ok(out)
}

/// Commits offsets for a group outside any membership; Kafka refuses it
/// while the group has members (the connector's tasks have not stopped).
pub async fn alter_group_offsets(
    settings: &BTreeMap<String, String>,
    group: &str,
    offsets: HashMap<TopicPartition, i64>,
) -> Result<(), SinkOffsetsError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let client = group_client(settings, group)?;
    let list = offsets_tpl(&offsets).map_err(|e| SinkOffsetsError::Kafka(e.to_string()))?;
    let group = group.to_string();
    tokio::task::spawn_blocking(move || {
        client.commit(&list, CommitMode::Sync).map_err(|e| {
            SinkOffsetsError::Kafka(format!(
                "Failed to alter consumer group offsets for group {group}; the connector's tasks may not have stopped yet (the group must have no members): {e}"
            ))
        })
    })
    .await
    .map_err(|e| SinkOffsetsError::Kafka(e.to_string()))?
}

/// Deletes the group's committed offsets of single partitions (the `null`
/// offsets of a PATCH); a missing group has nothing to delete.
pub async fn delete_partition_offsets(
    settings: &BTreeMap<String, String>,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<(), SinkOffsetsError> {
    use crate::group::client::BrokerConnection;
    use kafka_protocol::error::ResponseError;
    if partitions.is_empty() {
        return Ok(());
    }
    let bootstrap = settings
        .get("bootstrap.servers")
        .cloned()
        .unwrap_or_default();
    let kafka = |e: crate::group::client::ClientError| {
        SinkOffsetsError::Kafka(format!(
            "Failed to delete consumer group offsets for group {group}: {e}"
        ))
    };
    let mut conn =
        BrokerConnection::connect_any(&bootstrap, "connectd-sink-offsets", KAFKA_TIMEOUT)
            .await
            .map_err(kafka)?;
    let coordinator = match conn.find_coordinator(group).await {
        Ok(c) => c,
        Err(e) => return Err(kafka(e)),
    };
    let mut conn =
        BrokerConnection::connect(&coordinator.addr(), "connectd-sink-offsets", KAFKA_TIMEOUT)
            .await
            .map_err(kafka)?;
    let list: Vec<(String, i32)> = partitions
        .iter()
        .map(|p| (p.topic.clone(), p.partition))
        .collect();
    match conn.offset_delete(group, &list).await {
        Ok(()) => Ok(()),
        Err(e) if e.kafka_error() == Some(ResponseError::GroupIdNotFound) => Ok(()),
        Err(e) if e.kafka_error() == Some(ResponseError::GroupSubscribedToTopic) => {
            Err(SinkOffsetsError::Kafka(format!(
                "Failed to delete consumer group offsets for group {group}: the group is still subscribed to the topic, so the connector's tasks have not stopped yet"
            )))
        }
        Err(e) => Err(kafka(e)),
    }
}

/// Deletes a sink connector's consumer group; a missing group is success.
pub async fn delete_group(
    admin_settings: &BTreeMap<String, String>,
    group: &str,
) -> Result<(), SinkOffsetsError> {
    let admin =
        topics::admin(admin_settings).map_err(|e| SinkOffsetsError::Kafka(e.to_string()))?;
    let opts = rdkafka::admin::AdminOptions::new().operation_timeout(Some(KAFKA_TIMEOUT));
    let results = admin
        .delete_groups(&[group], &opts)
        .await
        .map_err(|e| SinkOffsetsError::Kafka(format!("deleting consumer group {group}: {e}")))?;
    for r in results {
        match r {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::GroupIdNotFound)) => {}
            Err((_, rdkafka::types::RDKafkaErrorCode::NonEmptyGroup)) => {
                return Err(SinkOffsetsError::Kafka(format!(
                    "Failed to reset consumer group offsets for group {group}: the group still has members, so the connector's tasks have not stopped yet"
                )))
            }
            Err((_, code)) => {
                return Err(SinkOffsetsError::Kafka(format!(
                    "deleting consumer group {group}: {code}"
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests panic on unexpected states by design
mod tests {
    use super::*;
    use crate::plugins::Plugins;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    #[test]
    fn sink_settings_follow_the_contract() {
        let props = |kv: &[(&str, &str)]| -> Props {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let s = SinkSettings::from_props(&props(&[("topics", "a, b")])).unwrap();
        assert_eq!(
            s.subscription,
            Subscription::Topics(vec!["a".into(), "b".into()])
        );
        assert_eq!(s.dlq_topic, None);
        assert_eq!(s.dlq_replication_factor, 3);
        let s = SinkSettings::from_props(&props(&[
            ("topics.regex", "t-.*"),
            ("errors.deadletterqueue.topic.name", "dlq"),
            ("errors.deadletterqueue.topic.replication.factor", "1"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
        ]))
        .unwrap();
        assert_eq!(s.subscription, Subscription::Regex("t-.*".into()));
        assert_eq!(s.dlq_topic.as_deref(), Some("dlq"));
        assert_eq!(s.dlq_replication_factor, 1);
        assert!(s.dlq_context_headers);
        for (bad, why) in [
            (props(&[]), "Must configure one of topics or topics.regex"),
            (
                props(&[("topics", "a"), ("topics.regex", "a")]),
                "mutually exclusive",
            ),
            (props(&[("topics.regex", "(")]), "topics.regex"),
            (
                props(&[("topics", "a"), ("errors.deadletterqueue.topic.name", "a")]),
                "DLQ topic",
            ),
            (
                props(&[
                    ("topics", "a"),
                    ("errors.deadletterqueue.topic.replication.factor", "x"),
                ]),
                "SHORT",
            ),
        ] {
            let e = SinkSettings::from_props(&bad).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        assert_eq!(sink_group("c", &props(&[])), "connect-c");
        assert_eq!(
            sink_group("c", &props(&[("consumer.override.group.id", "g")])),
            "g"
        );
    }

    #[test]
    fn sink_offsets_parse_numbers_strings_and_nulls() {
        let entry = |p: serde_json::Value, o: serde_json::Value| {
            (p.as_object().unwrap().clone(), o.as_object().cloned())
        };
        let parsed = parse_sink_offsets(&[
            entry(
                serde_json::json!({"kafka_topic":"t","kafka_partition":"2"}),
                serde_json::json!({"kafka_offset":"7"}),
            ),
            entry(
                serde_json::json!({"kafka_topic":"t","kafka_partition":0}),
                serde_json::Value::Null,
            ),
        ])
        .unwrap();
        assert_eq!(parsed, vec![(tp("t", 2), Some(7)), (tp("t", 0), None)]);
        for (p, o) in [
            (
                serde_json::json!({"kafka_partition":0}),
                serde_json::json!({"kafka_offset":1}),
            ),
            (
                serde_json::json!({"kafka_topic":"t"}),
                serde_json::json!({"kafka_offset":1}),
            ),
            (
                serde_json::json!({"kafka_topic":"t","kafka_partition":1.5}),
                serde_json::json!({"kafka_offset":1}),
            ),
            (
                serde_json::json!({"kafka_topic":"t","kafka_partition":0}),
                serde_json::json!({"kafka_offset":-1}),
            ),
            (
                serde_json::json!({"kafka_topic":"t","kafka_partition":0}),
                serde_json::json!({}),
            ),
        ] {
            let r = parse_sink_offsets(&[entry(p.clone(), o)]);
            assert!(
                matches!(r, Err(SinkOffsetsError::BadRequest(_))),
                "{p}: {r:?}"
            );
        }
    }

    fn bootstrap() -> String {
        std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| {
            panic!("KAFKA_BOOTSTRAP is not set: start the test services with `eval \"$(scripts/dev-env.sh up)\"`")
        })
    }

    fn unique(prefix: &str) -> String {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        format!("{prefix}-{}-{t}", std::process::id())
    }

    /// Test-only exactly-once sink: copies each value to `out` through
    /// `commit_transaction`; the first batch holding the value `abort` is
    /// written partly to a partition that does not exist, so that
    /// transaction fails and is aborted.
    struct TxnSink {
        out: String,
        runtime: Option<Arc<dyn SinkRuntime>>,
        aborted_once: Arc<AtomicBool>,
        puts: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl SinkTask for TxnSink {
        async fn start(&mut self, ctx: SinkTaskContext, _props: Props) -> ConnectResult<()> {
            ctx.runtime
                .ensure_topics(&[TopicSpec {
                    name: self.out.clone(),
                    partitions: Some(1),
                    replication_factor: Some(1),
                    configs: vec![("cleanup.policy".into(), "delete".into())],
                }])
                .await?;
            self.runtime = Some(ctx.runtime);
            Ok(())
        }
        async fn put(&mut self, records: Vec<SinkRecord>) -> ConnectResult<()> {
            self.puts.fetch_add(1, Ordering::SeqCst);
            let Some(rt) = self.runtime.clone() else {
                return Err(ConnectError::fatal("not started"));
            };
            let mut offsets = HashMap::new();
            let mut out = Vec::new();
            for r in &records {
                let poison = r.raw_value.as_deref() == Some(b"abort".as_slice())
                    && !self.aborted_once.load(Ordering::SeqCst);
                out.push(OutputRecord {
                    topic: self.out.clone(),
                    partition: Some(if poison { 99 } else { 0 }),
                    key: r.raw_key.clone(),
                    value: r.raw_value.clone(),
                    headers: vec![],
                });
                offsets.insert(
                    TopicPartition {
                        topic: r.record.topic.clone(),
                        partition: r.record.kafka_partition.unwrap_or(0),
                    },
                    r.kafka_offset + 1,
                );
            }
            let poisoned = out.iter().any(|o| o.partition == Some(99));
            let r = rt.commit_transaction(out, offsets).await;
            if poisoned {
                assert!(
                    r.is_err(),
                    "a write to a missing partition must fail the transaction"
                );
                self.aborted_once.store(true, Ordering::SeqCst);
            }
            r
        }
        async fn pre_commit(
            &mut self,
            _current: &HashMap<TopicPartition, i64>,
        ) -> ConnectResult<HashMap<TopicPartition, i64>> {
            // Offsets are committed inside the transactions only.
            Ok(HashMap::new())
        }
        async fn stop(&mut self) -> ConnectResult<()> {
            Ok(())
        }
    }

    struct NoListener(Mutex<Vec<String>>);
    impl TaskListener for NoListener {
        fn on_running(&self) {}
        fn on_paused(&self) {}
        fn on_failure(&self, error: &ConnectError) {
            lock(&self.0).push(error.to_string());
        }
        fn on_first_write(&self, _topic: &str) {}
    }

    fn produce(topic: &str, values: &[&str]) {
        use rdkafka::producer::{BaseProducer, BaseRecord};
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .create()
            .unwrap();
        for v in values {
            p.send(BaseRecord::<(), str>::to(topic).partition(0).payload(*v))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        p.flush(Duration::from_secs(30)).unwrap();
    }

    /// Values of partition 0 of `topic` as a consumer with this isolation
    /// level sees them, reading until `idle` passes without a new record.
    fn read_values(topic: &str, isolation: &str, idle: Duration) -> Vec<String> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("group.id", unique("reader"))
            .set("isolation.level", isolation)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut l = TopicPartitionList::new();
        l.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
        c.assign(&l).unwrap();
        let mut out = Vec::new();
        let mut last = std::time::Instant::now();
        while last.elapsed() < idle {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                last = std::time::Instant::now();
            }
        }
        out
    }

    /// A sink task run on the real broker with byte-array converters,
    /// consuming partition 0 of `input` in a fresh group.
    fn test_run(
        task: Box<dyn SinkTask>,
        input: &str,
        listener: Arc<NoListener>,
    ) -> (
        SinkTaskRun,
        Arc<KafkaSinkRuntime>,
        CancellationToken,
        watch::Sender<TargetState>,
    ) {
        let mut admin = BTreeMap::new();
        admin.insert("bootstrap.servers".to_string(), bootstrap());
        let mut consumer_cfg = admin.clone();
        consumer_cfg.insert("group.id".into(), unique("sink-test-group"));
        consumer_cfg.insert("enable.auto.commit".into(), "false".into());
        consumer_cfg.insert("auto.offset.reset".into(), "earliest".into());
        consumer_cfg.insert("isolation.level".into(), "read_committed".into());
        let (consumer, shared) = create_consumer(&consumer_cfg, "sink-test").unwrap();
        let runtime = Arc::new(KafkaSinkRuntime::new(
            Arc::clone(&consumer),
            Arc::clone(&shared),
            SinkClients {
                admin: admin.clone(),
                producer: admin,
                transactional_id: unique("connect-test-txn"),
                consumer: consumer_cfg,
            },
            "sink-test".into(),
        ));
        let plugins = Plugins::get();
        let conv = |is_key| {
            let mut c = plugins.converter("ByteArrayConverter").unwrap();
            c.configure(&Props::new(), is_key).unwrap();
            (
                "org.apache.kafka.connect.converters.ByteArrayConverter".to_string(),
                c,
            )
        };
        let mut header = plugins
            .header_converter("org.apache.kafka.connect.storage.SimpleHeaderConverter")
            .unwrap();
        header.configure(&Props::new()).unwrap();
        // The caller keeps the sender: a closed channel ends the run.
        let (target_tx, target) = watch::channel(TargetState::Started);
        let cancel = CancellationToken::new();
        let run = SinkTaskRun {
            connector: "sink-test".into(),
            task_id: 0,
            task,
            props: Props::new(),
            subscription: Subscription::Topics(vec![input.to_string()]),
            consumer,
            shared,
            runtime: Arc::clone(&runtime),
            pipeline: SinkPipeline {
                transforms: TransformChain::default(),
                key_converter: conv(true),
                value_converter: conv(false),
                header_converter: ("SimpleHeaderConverter".into(), header),
                errors: ErrorPolicy::default(),
                dlq: None,
                listener,
            },
            flush_interval: Duration::from_millis(200),
            target,
            cancel: cancel.clone(),
        };
        (run, runtime, cancel, target_tx)
    }

    async fn input_topic(values: &[&str]) -> String {
        let input = unique("sink-test-in");
        let mut admin = BTreeMap::new();
        admin.insert("bootstrap.servers".to_string(), bootstrap());
        let a = topics::admin(&admin).unwrap();
        topics::create_if_missing(&a, &input, Some(1), Some(1), &[])
            .await
            .unwrap();
        produce(&input, values);
        input
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transactions_commit_output_and_offsets_together_and_aborts_stay_invisible() {
        let out = unique("txn-out");
        let values = ["v0", "v1", "v2", "abort", "v4", "v5"];
        let input = input_topic(&values).await;
        let puts = Arc::new(AtomicUsize::new(0));
        let aborted = Arc::new(AtomicBool::new(false));
        let listener = Arc::new(NoListener(Mutex::new(Vec::new())));
        let (run, runtime, cancel, _target) = test_run(
            Box::new(TxnSink {
                out: out.clone(),
                runtime: None,
                aborted_once: Arc::clone(&aborted),
                puts: Arc::clone(&puts),
            }),
            &input,
            listener.clone(),
        );
        let handle = crate::spawn::spawn_named("txn-test", run.run());

        // The committed output: every input value exactly once, in order.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let seen = read_values(&out, "read_committed", Duration::from_millis(500));
            if seen.len() >= values.len() || std::time::Instant::now() > deadline {
                break;
            }
        }
        let committed = read_values(&out, "read_committed", Duration::from_secs(2));
        assert_eq!(committed, values, "read_committed sees each record once");
        assert!(
            aborted.load(Ordering::SeqCst),
            "the poisoned batch was aborted"
        );
        // The aborted attempt's records are in the log, hidden by the abort.
        let uncommitted = read_values(&out, "read_uncommitted", Duration::from_secs(2));
        assert!(
            uncommitted.len() > values.len(),
            "aborted records are in the log: {uncommitted:?}"
        );
        assert!(
            puts.load(Ordering::SeqCst) >= 2,
            "the batch was re-delivered"
        );
        // The input offsets were committed in the transaction.
        let c = runtime.committed(&[tp(&input, 0)]).await.unwrap();
        assert_eq!(c.get(&tp(&input, 0)), Some(&(values.len() as i64)));

        cancel.cancel();
        handle.await.unwrap().unwrap();
        assert!(lock(&listener.0).is_empty(), "{:?}", lock(&listener.0));
    }

    /// Fails `put` as told, counting every record it accepted.
    struct FlakySink {
        /// Errors returned by the next puts, in order.
        failures: Vec<ConnectError>,
        accepted: Arc<Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl SinkTask for FlakySink {
        async fn start(&mut self, _ctx: SinkTaskContext, _props: Props) -> ConnectResult<()> {
            Ok(())
        }
        async fn put(&mut self, records: Vec<SinkRecord>) -> ConnectResult<()> {
            if !self.failures.is_empty() {
                return Err(self.failures.remove(0));
            }
            let mut a = lock(&self.accepted);
            for r in records {
                a.push(
                    String::from_utf8_lossy(r.raw_value.as_deref().unwrap_or_default())
                        .into_owned(),
                );
            }
            Ok(())
        }
        async fn stop(&mut self) -> ConnectResult<()> {
            Ok(())
        }
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retriable_put_failure_redelivers_the_same_batch() {
        let values = ["a", "b", "c"];
        let input = input_topic(&values).await;
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let listener = Arc::new(NoListener(Mutex::new(Vec::new())));
        let (run, runtime, cancel, _target) = test_run(
            Box::new(FlakySink {
                failures: vec![
                    ConnectError::retriable("try later"),
                    ConnectError::retriable("again"),
                ],
                accepted: Arc::clone(&accepted),
            }),
            &input,
            listener.clone(),
        );
        let handle = crate::spawn::spawn_named("flaky-test", run.run());
        wait_for("the records", || lock(&accepted).len() >= values.len()).await;
        let committed = || async {
            runtime
                .committed(&[tp(&input, 0)])
                .await
                .unwrap()
                .get(&tp(&input, 0))
                .copied()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while committed().await != Some(3) {
            assert!(
                std::time::Instant::now() < deadline,
                "offsets not committed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cancel.cancel();
        handle.await.unwrap().unwrap();
        assert_eq!(*lock(&accepted), values, "each record once, in order");
        assert!(lock(&listener.0).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_put_fails_the_task_and_commits_nothing_after_it() {
        let input = input_topic(&["a", "b"]).await;
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let listener = Arc::new(NoListener(Mutex::new(Vec::new())));
        let (run, runtime, _cancel, _target) = test_run(
            Box::new(FlakySink {
                failures: vec![ConnectError::fatal("disk on fire")],
                accepted: Arc::clone(&accepted),
            }),
            &input,
            listener.clone(),
        );
        let consumer = Arc::clone(&run.consumer);
        let r = tokio::time::timeout(Duration::from_secs(60), run.run())
            .await
            .expect("the task fails");
        assert_eq!(r, Err(ConnectError::fatal("disk on fire")));
        assert_eq!(*lock(&listener.0), vec!["disk on fire".to_string()]);
        assert!(lock(&accepted).is_empty());
        drop(consumer);
        let c = runtime.committed(&[tp(&input, 0)]).await.unwrap();
        assert_eq!(c.get(&tp(&input, 0)), None, "nothing was committed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fenced_transactional_producer_fails_with_a_fatal_error() {
        let input = input_topic(&[]).await;
        let out = unique("fence-out");
        let listener = Arc::new(NoListener(Mutex::new(Vec::new())));
        let (_run_a, a, _c1, _t1) = test_run(
            Box::new(FlakySink {
                failures: vec![],
                accepted: Arc::default(),
            }),
            &input,
            listener.clone(),
        );
        let record = |v: &str| OutputRecord {
            topic: out.clone(),
            partition: Some(0),
            key: None,
            value: Some(v.as_bytes().to_vec()),
            headers: vec![],
        };
        a.ensure_topics(&[TopicSpec {
            name: out.clone(),
            partitions: Some(1),
            replication_factor: Some(1),
            configs: vec![],
        }])
        .await
        .unwrap();
        a.commit_transaction(vec![record("first")], HashMap::new())
            .await
            .unwrap();
        // A second runtime with the same transactional.id (a restarted or
        // zombie-replacing task) fences the first.
        let (_run_b, b_tmp, _c2, _t2) = test_run(
            Box::new(FlakySink {
                failures: vec![],
                accepted: Arc::default(),
            }),
            &input,
            listener.clone(),
        );
        let b = KafkaSinkRuntime::new(
            Arc::clone(&b_tmp.consumer),
            Arc::clone(&b_tmp.shared),
            SinkClients {
                admin: a.clients.admin.clone(),
                producer: a.clients.producer.clone(),
                transactional_id: a.clients.transactional_id.clone(),
                consumer: a.clients.consumer.clone(),
            },
            "sink-test-b".into(),
        );
        b.commit_transaction(vec![record("second")], HashMap::new())
            .await
            .unwrap();
        let e = a
            .commit_transaction(vec![record("zombie")], HashMap::new())
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectError::Fatal(_)), "{e:?}");
        assert!(e.to_string().contains("was not committed"), "{e}");
        // The zombie does not come back with a new producer (which would
        // fence the newer instance in turn).
        let e = a
            .commit_transaction(vec![record("zombie-again")], HashMap::new())
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectError::Fatal(_)), "{e:?}");
        b.commit_transaction(vec![record("third")], HashMap::new())
            .await
            .unwrap();
        let seen = read_values(&out, "read_committed", Duration::from_secs(2));
        assert_eq!(seen, vec!["first", "second", "third"]);
    }

    /// A runtime whose task consumer never subscribes: only the services
    /// (`read_partition`, `partition_count`) are used.
    fn services_runtime() -> KafkaSinkRuntime {
        let mut admin = BTreeMap::new();
        admin.insert("bootstrap.servers".to_string(), bootstrap());
        let mut consumer_cfg = admin.clone();
        consumer_cfg.insert("group.id".into(), unique("sink-read-group"));
        // The reader must read committed data even when the task consumer
        // reads uncommitted (the worker's default, as in Java).
        consumer_cfg.insert("isolation.level".into(), "read_uncommitted".into());
        let (consumer, shared) = create_consumer(&consumer_cfg, "sink-read").unwrap();
        KafkaSinkRuntime::new(
            consumer,
            shared,
            SinkClients {
                admin: admin.clone(),
                producer: admin,
                transactional_id: unique("connect-read-txn"),
                consumer: consumer_cfg,
            },
            "sink-read".into(),
        )
    }

    /// Sends `values` to partition 0 of `topic` in one transaction, committed
    /// or aborted.
    fn produce_txn(p: &FutureProducer, topic: &str, values: &[&str], commit: bool) {
        p.begin_transaction().unwrap();
        for v in values {
            let fr = FutureRecord::<str, str>::to(topic)
                .partition(0)
                .key(*v)
                .payload(*v);
            p.send_result(fr).map_err(|(e, _)| e).unwrap();
        }
        p.flush(KAFKA_TIMEOUT).unwrap();
        if commit {
            p.commit_transaction(KAFKA_TIMEOUT).unwrap();
        } else {
            p.abort_transaction(KAFKA_TIMEOUT).unwrap();
        }
    }

    fn txn_producer() -> FutureProducer {
        let p: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("transactional.id", unique("read-test-txn"))
            .create()
            .unwrap();
        p.init_transactions(KAFKA_TIMEOUT).unwrap();
        p
    }

    fn values_of(chunk: &PartitionChunk) -> Vec<String> {
        chunk
            .records
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
            .collect()
    }

    async fn topic_with_partitions(prefix: &str, partitions: i32) -> String {
        let name = unique(prefix);
        let mut admin = BTreeMap::new();
        admin.insert("bootstrap.servers".to_string(), bootstrap());
        let a = topics::admin(&admin).unwrap();
        topics::create_if_missing(&a, &name, Some(partitions), Some(1), &[])
            .await
            .unwrap();
        name
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_partition_returns_committed_records_only_and_stops_at_the_stable_end() {
        let topic = topic_with_partitions("read-part", 1).await;
        produce(&topic, &["plain0", "plain1"]);
        let tx = tokio::task::spawn_blocking(move || {
            let p = txn_producer();
            produce_txn(&p, &topic, &["c0", "c1"], true);
            produce_txn(&p, &topic, &["aborted0", "aborted1"], false);
            produce_txn(&p, &topic, &["c2"], true);
            // Left open: its records are above the last stable offset and
            // must neither be returned nor make the read wait for them.
            p.begin_transaction().unwrap();
            p.send_result(
                FutureRecord::<str, str>::to(&topic)
                    .partition(0)
                    .payload("open0"),
            )
            .map_err(|(e, _)| e)
            .unwrap();
            p.flush(KAFKA_TIMEOUT).unwrap();
            (p, topic)
        });
        let (open_txn, topic) = tx.await.unwrap();
        let rt = services_runtime();
        let tp0 = tp(&topic, 0);
        let expected = ["plain0", "plain1", "c0", "c1", "c2"];

        let started = std::time::Instant::now();
        let all = rt.read_partition(&tp0, 0, 1000).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the read waited for the open transaction: {:?}",
            started.elapsed()
        );
        assert_eq!(values_of(&all), expected);
        assert!(all.next_offset >= all.end_offset, "{all:?}");
        // Offsets: plain 0-1, c0-c1 2-3 + marker 4, aborted 5-6 + marker 7,
        // c2 8 + marker 9; the open transaction's record (10) is past the
        // stable end.
        assert_eq!(all.end_offset, 10, "{all:?}");
        let offsets: Vec<i64> = all.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![0, 1, 2, 3, 8]);

        // Paging with small chunks gives the same records, each once.
        let mut paged = Vec::new();
        let mut from = 0;
        let mut calls = 0;
        loop {
            let c = rt.read_partition(&tp0, from, 2).await.unwrap();
            assert!(c.records.len() <= 2, "{c:?}");
            assert!(
                c.next_offset > from || c.next_offset >= c.end_offset,
                "{c:?}"
            );
            paged.extend(values_of(&c));
            from = c.next_offset;
            calls += 1;
            assert!(calls < 20, "paging does not end: {c:?}");
            if from >= c.end_offset {
                break;
            }
        }
        assert_eq!(paged, expected);

        // Reading at the end answers at once with nothing.
        let c = rt.read_partition(&tp0, all.next_offset, 10).await.unwrap();
        assert!(c.records.is_empty(), "{c:?}");
        assert!(c.next_offset >= c.end_offset, "{c:?}");

        // Once the open transaction commits, its record is readable.
        let _ = tokio::task::spawn_blocking(move || open_txn.commit_transaction(KAFKA_TIMEOUT))
            .await
            .unwrap();
        let c = rt.read_partition(&tp0, all.next_offset, 10).await.unwrap();
        assert_eq!(values_of(&c), ["open0"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_partition_of_an_empty_topic_returns_nothing_at_once() {
        let topic = topic_with_partitions("read-empty", 2).await;
        let rt = services_runtime();
        let started = std::time::Instant::now();
        let c = rt.read_partition(&tp(&topic, 1), 0, 100).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(15));
        assert_eq!(
            c,
            PartitionChunk {
                records: vec![],
                next_offset: 0,
                end_offset: 0
            }
        );
        assert_eq!(rt.partition_count(&topic).await.unwrap(), Some(2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_partition_of_a_missing_topic_or_partition_fails_naming_it() {
        let rt = services_runtime();
        let missing = unique("read-missing");
        let e = rt
            .read_partition(&tp(&missing, 0), 0, 10)
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectError::Fatal(_)), "{e:?}");
        assert!(
            e.to_string().contains(&format!("{missing}-0"))
                && e.to_string().contains("does not exist"),
            "{e}"
        );
        assert_eq!(rt.partition_count(&missing).await.unwrap(), None);

        let topic = topic_with_partitions("read-one", 1).await;
        let e = rt.read_partition(&tp(&topic, 3), 0, 10).await.unwrap_err();
        assert!(
            e.to_string().contains(&format!("{topic}-3")) && e.to_string().contains("1 partitions"),
            "{e}"
        );
    }
}
