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
//! librdkafka runs the rebalance callback inside the consumer's poll, where
//! the (async) task cannot be called, and the rebalance waits (up to
//! `max.poll.interval.ms`) until the application calls (incremental_)assign or
//! unassign. So the callback never blocks and never calls the task:
//! * an assignment is applied at once, the new partitions the task or the
//!   target state wants paused are paused before any fetch starts, and an
//!   `Assigned` event is queued;
//! * a revocation is only queued. The loop then does what Java's
//!   `WorkerSinkTask` does in `onPartitionsRevoked`: `pre_commit` with the
//!   current offsets of the revoked partitions, a synchronous commit of what
//!   it returned (clamped as below), `close(partitions)`, and only then the
//!   unassign that lets the rebalance go on. The next owner therefore starts
//!   exactly after what the task declared flushed. Lost partitions (the
//!   session expired) are closed without a commit, as in Java.
//!
//! The callback wakes the loop, which handles events before delivering any
//! record received after them, so the task sees `close` before records of the
//! new assignment and `open` before the first record of a partition. A record
//! of a partition that is no longer assigned is never delivered. Once the run
//! is over (`closing`), the callback unassigns at once, so that closing the
//! consumer, which serves the last revocation, never waits for the loop.
//!
//! The consumer uses `partition.assignment.strategy=cooperative-sticky`
//! unless configured: a rebalance then revokes only the partitions that move,
//! and the other tasks of the group keep consuming meanwhile. Java clients of
//! Kafka 3.x list `RangeAssignor, CooperativeStickyAssignor` by default, so a
//! group shared with Java workers agrees on cooperative-sticky.
//!
//! Records received while events are queued are carried over them. Whether a
//! carried record is kept is decided when it arrives, from the assignment at
//! that instant, never by the partition names of the queued events: a
//! revocation followed by a re-assignment of the same partition must not
//! drop the first record of the new assignment. (It did while the callback
//! completed revocations itself, which let librdkafka re-assign before the
//! loop saw the revocation: the record was skipped, never delivered.)
//!
//! A group that must also admit Java consumers configured with only eager
//! assignors (e.g. `RangeAssignor` alone) needs
//! `consumer.partition.assignment.strategy` set accordingly; both protocols
//! are handled here.
//!
//! Every librdkafka call that can block (seek, commit, unassign, closing the
//! consumer) runs on tokio's blocking pool, never on an async worker thread.
//!
//! # Static membership
//!
//! Opt-in (see [`static_instance_id`]): with a `group.instance.id`, a task
//! restarted after `kill -9` gets its partitions back as soon as it rejoins,
//! instead of after the dead consumer's `session.timeout.ms` (45 s by
//! default). When another instance joins with the same id (two workers
//! briefly running the task during a Connect rebalance), librdkafka fences
//! this one (`FENCED_INSTANCE_ID`, fatal): the task stops without committing
//! and without failing, so it is not restarted against its successor. An
//! exactly-once task is still protected by its transactional id: the
//! successor's producer fences the old one, and the old member's group
//! metadata no longer matches (KIP-447).
//!
//! # Restart after a crash
//!
//! Without static membership, a task consumer killed without leaving the
//! group stays a member until its session times out (45 s by default), and
//! the restarted task gets no partitions until then. So before subscribing,
//! a task removes the members that carry its own `client.id` (see
//! [`remove_stale_members`]): the restart rebalance then completes at once.
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
    BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KHeader, Headers as _, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::Producer;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Offset, Timestamp, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::errors::{ErrorPolicy, Stage};
use super::source_task::TaskListener;
use super::transaction::{self, TxnContext, TxnProducer};
use super::transforms::TransformChain;
use crate::herder::api::TargetState;
use crate::producer::{AckedProducer, Outgoing};
use crate::storage::topics;

/// Java's `max.poll.records`: the most records handed to one `put`. Kept
/// under its Java name in the consumer settings (librdkafka has no such
/// setting; [`create_consumer`] leaves it out) and read by the task loop.
pub const MAX_POLL_RECORDS: &str = "max.poll.records";
/// Java's default `max.poll.records`.
const DEFAULT_MAX_POLL_RECORDS: usize = 500;
/// Timeout of the blocking Kafka calls (commits, offset fetches, transactions).
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
/// The sink consumer's assignor unless configured (module comment).
pub const DEFAULT_ASSIGNOR: &str = "cooperative-sticky";
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

/// A rebalance seen by the consumer callback, for the loop to act on.
#[derive(Debug)]
enum Rebalanced {
    Assigned(Vec<TopicPartition>),
    Revoked {
        partitions: Vec<TopicPartition>,
        /// The session expired: the partitions may already have another
        /// owner, so nothing is committed for them.
        lost: bool,
        /// What still has to be called to let the rebalance go on.
        unassign: Unassign,
    },
}

/// The librdkafka call that completes a revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unassign {
    /// Already done by the callback.
    Done,
    /// Eager protocol: `unassign()` (everything was revoked).
    Eager,
    /// Cooperative protocol: `incremental_unassign(partitions)`.
    Incremental,
}

/// Completes a revocation. Not blocking for long (it waits for librdkafka's
/// main thread only), but still kept off the async workers by callers.
fn unassign<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    partitions: &[TopicPartition],
    how: Unassign,
) -> Result<(), KafkaError> {
    match how {
        Unassign::Done => Ok(()),
        Unassign::Eager => consumer.unassign(),
        Unassign::Incremental => consumer.incremental_unassign(&tpl_of(partitions)),
    }
}

/// State shared by the loop, the rebalance callbacks and the task's
/// [`SinkRuntime`] handle. Held only for short, non-blocking updates.
#[derive(Default)]
struct SharedState {
    assigned: BTreeSet<TopicPartition>,
    /// Bounded by the number of rebalances between two loop iterations
    /// (a revocation holds the rebalance until the loop handled it).
    events: Vec<Rebalanced>,
    /// The loop is over: the callback completes revocations itself.
    closing: bool,
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

/// The state, and the wake-up of the loop when the callback queued an event.
#[derive(Default)]
pub struct Shared(Mutex<SharedState>, tokio::sync::Notify);

/// The consumer's context: the rebalance callbacks.
pub struct SinkConsumerContext {
    shared: Arc<Shared>,
    name: String,
}

impl ClientContext for SinkConsumerContext {
    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka reports a missing subscribed topic once per topic (and
        // again only if its error changes); the consumer picks the topic up
        // when it is created, so this is a wait, not a failure.
        if let Some(topic) = missing_topic(&error, reason) {
            tracing::warn!(task = %self.name, topic, "input topic {topic} does not exist (yet); the task waits for it and consumes it once it is created");
            return;
        }
        tracing::error!(task = %self.name, error = %error, "consumer error: {reason}");
    }
}

/// The topic of librdkafka's "Subscribed topic not available: <topic>: ..."
/// consumer error.
fn missing_topic<'a>(error: &KafkaError, reason: &'a str) -> Option<&'a str> {
    let code = error.rdkafka_error_code()?;
    if code != RDKafkaErrorCode::UnknownTopicOrPartition && code != RDKafkaErrorCode::UnknownTopic {
        return None;
    }
    let rest = reason.strip_prefix("Subscribed topic not available: ")?;
    Some(rest.split_once(": ").map_or(rest, |(t, _)| t))
}

impl SinkConsumerContext {
    fn on_assign(
        &self,
        consumer: &BaseConsumer<Self>,
        list: &TopicPartitionList,
        cooperative: bool,
    ) {
        let assigned = partitions_of(list);
        let applied = if cooperative {
            consumer.incremental_assign(list)
        } else {
            consumer.assign(list)
        };
        if let Err(e) = applied {
            tracing::error!(task = %self.name, error = %e, partitions = ?assigned, "applying the assignment failed");
            return;
        }
        let pause = {
            let mut st = lock(&self.shared.0);
            st.assigned.extend(assigned.iter().cloned());
            let pause: Vec<TopicPartition> = assigned
                .iter()
                .filter(|p| st.should_pause(p))
                .cloned()
                .collect();
            if !st.closing {
                st.events.push(Rebalanced::Assigned(assigned));
            }
            pause
        };
        self.shared.1.notify_one();
        // Pause before the first fetch, so a paused task gets no record.
        if !pause.is_empty() {
            if let Err(e) = consumer.pause(&tpl_of(&pause)) {
                tracing::warn!(task = %self.name, error = %e, "pausing newly assigned partitions failed");
            }
        }
    }

    fn on_revoke(&self, consumer: &BaseConsumer<Self>, list: &TopicPartitionList, how: Unassign) {
        let revoked = partitions_of(list);
        let lost = consumer.assignment_lost();
        let mut st = lock(&self.shared.0);
        for p in &revoked {
            st.assigned.remove(p);
            st.seeks.remove(p);
        }
        if st.closing || how == Unassign::Done {
            drop(st);
            // Nobody handles events any more (the stop already committed and
            // closed), or the unassign must happen now.
            if let Err(e) = unassign(consumer, &revoked, how) {
                tracing::warn!(task = %self.name, error = %e, "releasing revoked partitions failed");
            }
            return;
        }
        st.events.push(Rebalanced::Revoked {
            partitions: revoked,
            lost,
            unassign: how,
        });
        drop(st);
        self.shared.1.notify_one();
    }
}

impl ConsumerContext for SinkConsumerContext {
    // Replaces rdkafka's default, which would call assign/unassign right
    // away: a revocation is completed by the loop (module comment).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        list: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.on_assign(consumer, list, cooperative)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let how = if cooperative {
                    Unassign::Incremental
                } else {
                    Unassign::Eager
                };
                self.on_revoke(consumer, list, how)
            }
            other => {
                // As rdkafka's default: give everything up; the next
                // rebalance assigns again.
                tracing::warn!(task = %self.name, error = ?other, "rebalance error; releasing the assignment");
                let all: Vec<TopicPartition> =
                    lock(&self.shared.0).assigned.iter().cloned().collect();
                if let Err(e) = consumer.unassign() {
                    tracing::warn!(task = %self.name, error = %e, "releasing the assignment failed");
                }
                let mut st = lock(&self.shared.0);
                for p in &all {
                    st.assigned.remove(p);
                    st.seeks.remove(p);
                }
                if !st.closing && !all.is_empty() {
                    st.events.push(Rebalanced::Revoked {
                        partitions: all,
                        lost: true,
                        unassign: Unassign::Done,
                    });
                }
                drop(st);
                self.shared.1.notify_one();
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

/// The task consumer's `group.instance.id`: static membership (KIP-345) is
/// opt-in. A configured `group.instance.id` (worker `consumer.*` or the
/// connector's `consumer.override.*`) is the prefix, and each task gets
/// `{prefix}-{task}`, so the tasks of one connector never fence each other
/// and a task keeps its identity across restarts and workers. Off by default
/// because a static member does not leave the group when it stops: its
/// partitions wait for `session.timeout.ms` when the task count goes down,
/// and the sink offsets REST API refuses to alter the group's offsets until
/// then after a stop.
pub fn static_instance_id(settings: &BTreeMap<String, String>, task_id: u32) -> Option<String> {
    settings
        .get("group.instance.id")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(|prefix| format!("{prefix}-{task_id}"))
}

/// Timeout of each request of the look for leftover members.
const STALE_MEMBER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the look for leftover members may delay a task's start in all.
const STALE_MEMBER_BUDGET: Duration = Duration::from_secs(10);

/// Removes the members an earlier run of this task left in its group, and
/// returns how many.
///
/// A consumer killed without leaving (`kill -9`, a lost machine) stays a
/// member until its `session.timeout.ms` (45 s by default) runs out, and the
/// rebalance that would give its partitions to the restarted task waits for
/// it. Members of this task are recognised by the task consumer's
/// `client.id`, which the worker sets to `connector-consumer-{name}-{task}`
/// (one per task); as the task has not joined yet, every such member is a
/// leftover, or a zombie run on a worker that lost the task, which the
/// Connect assignment says must stop anyway. Static members are not touched
/// (their successor takes their place by itself). Skipped on non-plaintext
/// listeners, which this minimal client cannot speak: there the group falls
/// back to the session timeout, as without this step.
pub async fn remove_stale_members(
    consumer: &BTreeMap<String, String>,
) -> Result<usize, crate::group::client::ClientError> {
    use crate::group::client::BrokerConnection;
    let get = |k: &str| consumer.get(k).map(String::as_str).unwrap_or_default();
    let (group, client_id, bootstrap) =
        (get("group.id"), get("client.id"), get("bootstrap.servers"));
    let plaintext = matches!(
        get("security.protocol").to_ascii_uppercase().as_str(),
        "" | "PLAINTEXT"
    );
    if group.is_empty() || client_id.is_empty() || !plaintext {
        return Ok(0);
    }
    let mut conn =
        BrokerConnection::to_coordinator(bootstrap, group, client_id, STALE_MEMBER_TIMEOUT).await?;
    let stale: Vec<String> = conn
        .describe_group(group)
        .await?
        .into_iter()
        .filter(|m| m.client_id == client_id && m.group_instance_id.is_none())
        .map(|m| m.member_id)
        .collect();
    for member in &stale {
        conn.leave_group(group, member, "left behind by an earlier run of this task")
            .await?;
    }
    Ok(stale.len())
}

/// The task's `max.poll.records`; an error names a value that is not a
/// positive integer, as Java's config validation does.
pub fn max_poll_records(settings: &BTreeMap<String, String>) -> ConnectResult<usize> {
    match settings.get(MAX_POLL_RECORDS) {
        None => Ok(DEFAULT_MAX_POLL_RECORDS),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(ConnectError::fatal(format!(
                "Invalid value {v} for configuration {MAX_POLL_RECORDS}: Value must be at least 1"
            ))),
        },
    }
}

/// Creates the task's consumer (not subscribed yet).
pub fn create_consumer(
    settings: &BTreeMap<String, String>,
    name: &str,
    task_id: u32,
) -> ConnectResult<(Arc<SinkConsumer>, Arc<Shared>)> {
    let shared = Arc::new(Shared::default());
    let mut cfg = ClientConfig::new();
    // Explicit settings (worker `consumer.*`, connector overrides) win.
    cfg.set("partition.assignment.strategy", DEFAULT_ASSIGNOR);
    max_poll_records(settings)?;
    for (k, v) in settings
        .iter()
        .filter(|(k, _)| k.as_str() != MAX_POLL_RECORDS)
    {
        cfg.set(k, v);
    }
    if let Some(id) = static_instance_id(settings, task_id) {
        cfg.set("group.instance.id", id);
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
    pub producer: AckedProducer,
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
        let record = Outgoing {
            key: m.key(),
            payload: m.payload(),
            headers: Some(headers),
            timestamp: m.timestamp().to_millis(),
        };
        self.producer
            .send_acked(&self.topic, record, KAFKA_TIMEOUT)
            .await
            .map_err(|e| {
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

/// Ends event handling by the loop (`closing`): from here on the rebalance
/// callback completes revocations itself. Returns the revocations the loop
/// had not completed yet.
fn close_events(shared: &Shared) -> Vec<(Vec<TopicPartition>, Unassign)> {
    let mut st = lock(&shared.0);
    st.closing = true;
    std::mem::take(&mut st.events)
        .into_iter()
        .filter_map(|e| match e {
            Rebalanced::Revoked {
                partitions,
                unassign,
                ..
            } => Some((partitions, unassign)),
            Rebalanced::Assigned(_) => None,
        })
        .collect()
}

/// Completes revocations the loop did not: each would hold the group's
/// rebalance, and this consumer's close, forever.
fn release_revoked(
    consumer: &SinkConsumer,
    pending: Vec<(Vec<TopicPartition>, Unassign)>,
    name: &str,
) {
    for (partitions, how) in pending {
        if let Err(e) = unassign(consumer, &partitions, how) {
            tracing::warn!(task = %name, error = %e, "releasing revoked partitions failed");
        }
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

/// A run dropped before it finished (its future cancelled, e.g. by a runtime
/// shutdown, or a failing test) never reached `release`: the loop is gone,
/// and a revocation it did not complete would make closing the consumer
/// wait forever. This completes them, on the dropping thread because
/// nothing else is left to do it (librdkafka answers unassigns locally, so
/// the wait is short).
impl Drop for SinkTaskRun {
    fn drop(&mut self) {
        if lock(&self.shared.0).closing {
            return;
        }
        let pending = close_events(&self.shared);
        release_revoked(&self.consumer, pending, &self.name());
    }
}

impl SinkTaskRun {
    fn name(&self) -> String {
        format!("{}|task-{}", self.connector, self.task_id)
    }

    /// Runs the task until it is cancelled or fails. Statuses are reported
    /// through the listener; the return value is the failure, if any.
    pub async fn run(mut self) -> Result<(), ConnectError> {
        let result = self.run_task().await;
        let consumer = Arc::clone(&self.consumer);
        // The task (and its runtime handle on the consumer) goes first, so
        // that the close below is the last reference.
        drop(self);
        // Closing leaves the group and serves the last revocation: librdkafka
        // blocks meanwhile, which must not hold an async worker thread.
        if let Err(e) = tokio::task::spawn_blocking(move || drop(consumer)).await {
            tracing::warn!(error = %e, "closing the sink consumer failed");
        }
        result
    }

    async fn run_task(&mut self) -> Result<(), ConnectError> {
        let name = self.name();
        let mut progress = Progress::default();
        if let Err(e) = self.start().await {
            self.pipeline.listener.on_failure(&e);
            self.release(false).await;
            return Err(e);
        }
        let mut result = self.consume_loop(&mut progress).await;
        // Stop, as Java does: finish pending revocations, commit, close the
        // partitions, stop the task.
        if result.is_ok() && !progress.poisoned {
            result = self.handle_events(&mut progress).await;
        }
        if result.is_ok() && !progress.poisoned {
            self.commit(&mut progress, None).await;
        }
        let assigned: Vec<TopicPartition> = lock(&self.shared.0).assigned.iter().cloned().collect();
        if let Err(e) = self.task.close(&assigned).await {
            tracing::warn!(task = %name, error = %e, "closing partitions failed");
        }
        self.release(true).await;
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
        if static_instance_id(&self.runtime.clients.consumer, self.task_id).is_none() {
            let removed = tokio::time::timeout(
                STALE_MEMBER_BUDGET,
                remove_stale_members(&self.runtime.clients.consumer),
            );
            match removed.await {
                Err(_) => {
                    tracing::warn!(task = %self.name(), budget = ?STALE_MEMBER_BUDGET, "looking for group members an earlier run of this task left behind took too long; if it was killed, its partitions come back after session.timeout.ms");
                }
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    tracing::info!(task = %self.name(), members = n, "removed group members an earlier run of this task left behind (killed without leaving); its partitions come back without waiting for their session timeout");
                }
                Ok(Err(e)) => {
                    tracing::warn!(task = %self.name(), error = %e, "could not look for group members an earlier run of this task left behind; if it was killed, its partitions come back after session.timeout.ms");
                }
            }
        }
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

    /// Stops the task and unsubscribes; from here on the rebalance callback
    /// completes revocations itself. The consumer is closed by `run`.
    async fn release(&mut self, stop_task: bool) {
        if stop_task {
            if let Err(e) = self.task.stop().await {
                tracing::warn!(task = %self.name(), error = %e, "task stop failed");
            }
        }
        self.runtime.drop_producer().await;
        let pending = close_events(&self.shared);
        let consumer = Arc::clone(&self.consumer);
        let name = self.name();
        let done = tokio::task::spawn_blocking(move || {
            release_revoked(&consumer, pending, &name);
            consumer.unsubscribe();
        })
        .await;
        if let Err(e) = done {
            tracing::warn!(task = %self.name(), error = %e, "unsubscribing failed");
        }
    }

    async fn consume_loop(&mut self, progress: &mut Progress) -> ConnectResult<()> {
        let consumer = Arc::clone(&self.consumer);
        let shared = Arc::clone(&self.shared);
        let mut target = self.target.clone();
        let mut reported = None;
        let max_batch = max_poll_records(&self.runtime.clients.consumer)?;
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
            self.apply_requests(progress).await;

            let mut batch = Vec::new();
            if let Some(m) = progress.carry.take() {
                batch.push(m);
            } else {
                let received = tokio::select! {
                    _ = self.cancel.cancelled() => return Ok(()),
                    r = target.changed() => { if r.is_err() { return Ok(()) } continue; }
                    _ = tick.tick() => {
                        self.commit(progress, None).await;
                        continue;
                    }
                    // A rebalance event: handled at the top of the loop.
                    _ = shared.1.notified() => continue,
                    // Wake up regularly so seeks and pauses requested from
                    // outside `put` are applied without a new record.
                    _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                    m = consumer.recv() => m,
                };
                match received {
                    Ok(m) => {
                        let m = m.detach();
                        if self.has_events() {
                            self.carry(progress, m);
                            continue;
                        }
                        batch.push(m);
                    }
                    Err(e) => {
                        if let Some(end) = self.consumer_error(&e, progress) {
                            return end;
                        }
                        continue;
                    }
                }
            }
            // Take what is already fetched, without waiting, up to a batch.
            while batch.len() < max_batch {
                match consumer.recv().now_or_never() {
                    Some(Ok(m)) => {
                        let m = m.detach();
                        if self.has_events() {
                            self.carry(progress, m);
                            break;
                        }
                        batch.push(m);
                    }
                    Some(Err(e)) => {
                        if let Some(end) = self.consumer_error(&e, progress) {
                            return end;
                        }
                        break;
                    }
                    None => break,
                }
            }
            self.deliver(batch, progress).await?;
            if tick_due(&mut tick) {
                self.commit(progress, None).await;
            }
        }
    }

    fn has_events(&self) -> bool {
        !lock(&self.shared.0).events.is_empty()
    }

    /// Keeps a record received after a rebalance event for after the event.
    /// Whether it belongs to the current assignment is decided now: the
    /// callback updates `assigned` when librdkafka rebalances, so a record of
    /// a partition assigned at this instant comes from that assignment, even
    /// if the queued events still revoke (and re-assign) the partition.
    fn carry(&self, progress: &mut Progress, m: OwnedMessage) {
        if lock(&self.shared.0)
            .assigned
            .contains(&tp(m.topic(), m.partition()))
        {
            progress.carry = Some(m);
        }
    }

    /// Logs a consumer error; `Some` ends the loop with that result.
    fn consumer_error(&self, e: &KafkaError, progress: &mut Progress) -> Option<ConnectResult<()>> {
        match e {
            // Another consumer joined with this task's group.instance.id: the
            // task runs elsewhere now (e.g. on the new owner during a Connect
            // rebalance). This instance stops without committing (it no
            // longer may) and without failing, so it is not restarted in a
            // loop against its successor.
            KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::FencedInstanceId) => {
                tracing::warn!(task = %self.name(), "another instance of this task joined the group with the same group.instance.id; this one stops");
                progress.poisoned = true;
                Some(Ok(()))
            }
            KafkaError::MessageConsumptionFatal(code) => {
                progress.poisoned = true;
                Some(Err(ConnectError::fatal(format!(
                    "the consumer of task {} failed fatally: {code}",
                    self.name()
                ))))
            }
            // A missing input topic was already reported once, by the
            // consumer context, with its name.
            _ if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition) => {
                tracing::debug!(task = %self.name(), error = %e, "consumer error");
                None
            }
            _ => {
                tracing::warn!(task = %self.name(), error = %e, "consumer error");
                None
            }
        }
    }

    /// Calls `open`/`close` for the rebalances seen since the last call, and
    /// completes revocations (module comment). One event at a time: after a
    /// failure the rest stays queued, and `release` completes its
    /// revocations.
    async fn handle_events(&mut self, progress: &mut Progress) -> ConnectResult<()> {
        loop {
            let ev = {
                let mut st = lock(&self.shared.0);
                if st.events.is_empty() {
                    return Ok(());
                }
                st.events.remove(0)
            };
            match ev {
                Rebalanced::Assigned(parts) => {
                    tracing::info!(task = %self.name(), partitions = ?parts, "partitions assigned");
                    self.task.open(&parts).await?;
                }
                Rebalanced::Revoked {
                    partitions,
                    lost,
                    unassign: how,
                } => {
                    tracing::info!(task = %self.name(), partitions = ?partitions, lost, "partitions revoked");
                    // The carried record is not dropped by partition name:
                    // it may belong to a later assignment of the same
                    // partition (`carry`, `deliver` check that).
                    // Java's order: pre_commit, commit, close, then the
                    // partitions go. Lost ones may have a new owner already.
                    if !lost {
                        self.commit(progress, Some(&partitions)).await;
                    }
                    for p in &partitions {
                        progress.current.remove(p);
                        progress.last_committed.remove(p);
                    }
                    let closed = self.task.close(&partitions).await;
                    let consumer = Arc::clone(&self.consumer);
                    let released = blocking(move || unassign(&*consumer, &partitions, how)).await;
                    if let Err(e) = released {
                        tracing::warn!(task = %self.name(), error = %e, "releasing revoked partitions failed");
                    }
                    closed?;
                }
            }
        }
    }

    /// Applies seeks and pause/resume requests.
    async fn apply_requests(&mut self, progress: &mut Progress) {
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
        let seeks = if seeks.is_empty() {
            Vec::new()
        } else {
            // seek waits up to its timeout for the fetcher: a blocking thread.
            let consumer = Arc::clone(&self.consumer);
            tokio::task::spawn_blocking(move || {
                seeks
                    .into_iter()
                    .map(|(p, offset)| {
                        let r = consumer.seek(
                            &p.topic,
                            p.partition,
                            Offset::from_raw(offset),
                            Duration::from_secs(10),
                        );
                        (p, offset, r)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default()
        };
        for (p, offset, r) in seeks {
            match r {
                Ok(()) => {
                    let mut st = lock(&self.shared.0);
                    // A newer request for the partition stays pending, and
                    // so does one of a partition revoked meanwhile.
                    if st.seeks.get(&p) == Some(&offset) {
                        st.seeks.remove(&p);
                    }
                    if !st.assigned.contains(&p) {
                        continue;
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
            match self.task.put(&records).await {
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

    /// `pre_commit` with the current offsets (of every assigned partition,
    /// or of `only`: the partitions being revoked), then commits what it
    /// returned, clamped to `current`. Failures are logged; the next interval
    /// tries again.
    async fn commit(&mut self, progress: &mut Progress, only: Option<&[TopicPartition]>) {
        if progress.poisoned {
            return;
        }
        let offered: HashMap<TopicPartition, i64> = match only {
            None => progress.current.clone(),
            Some(parts) => parts
                .iter()
                .filter_map(|p| progress.current.get(p).map(|o| (p.clone(), *o)))
                .collect(),
        };
        if offered.is_empty() {
            return;
        }
        let safe = match self.task.pre_commit(&offered).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(task = %self.name(), error = %e, "pre_commit failed; offsets not committed this time");
                return;
            }
        };
        let mut changed: HashMap<TopicPartition, i64> = HashMap::new();
        {
            let st = lock(&self.shared.0);
            for (p, offset) in safe {
                let Some(cur) = offered.get(&p) else {
                    continue;
                };
                // Revoked partitions are still librdkafka's until the loop
                // unassigns them; otherwise only what is still assigned.
                if only.is_none() && !st.assigned.contains(&p) {
                    continue;
                }
                let offset = offset.min(*cur);
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
            Ok(Err(e)) if only.is_some() => {
                tracing::warn!(task = %self.name(), error = %e, "committing offsets of revoked partitions failed; the next owner may see some records again")
            }
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
    producer: tokio::sync::Mutex<Option<TxnProducer>>,
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

    async fn transactional_producer(&self) -> ConnectResult<TxnProducer> {
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
        let producer: TxnProducer =
            cfg.create_with_context(TxnContext::default())
                .map_err(|e| {
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
}

/// Task-consumer settings the group-less reader must not inherit: the group
/// (joining it would take partitions from the task), its commit and
/// rebalance settings, and the keys `reader_config` sets itself.
const READER_DROPPED_KEYS: &[&str] = &[
    MAX_POLL_RECORDS,
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
        let p = producer.clone();
        let result =
            blocking(move || transaction::run(&p, &records, offsets.as_ref(), KAFKA_TIMEOUT)).await;
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
            if let Err(abort) = blocking(move || transaction::abort(&p, KAFKA_TIMEOUT)).await {
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
        BrokerConnection::to_coordinator(&bootstrap, group, "connectd-sink-offsets", KAFKA_TIMEOUT)
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
    use rdkafka::producer::{FutureProducer, FutureRecord};
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
        async fn put(&mut self, records: &[SinkRecord]) -> ConnectResult<()> {
            self.puts.fetch_add(1, Ordering::SeqCst);
            let Some(rt) = self.runtime.clone() else {
                return Err(ConnectError::fatal("not started"));
            };
            let mut offsets = HashMap::new();
            let mut out = Vec::new();
            for r in records {
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
        test_run_in(
            task,
            input,
            listener,
            &unique("sink-test-group"),
            Duration::from_millis(200),
        )
    }

    /// `test_run` in a given group, with a given offset flush interval.
    fn test_run_in(
        task: Box<dyn SinkTask>,
        input: &str,
        listener: Arc<NoListener>,
        group: &str,
        flush_interval: Duration,
    ) -> (
        SinkTaskRun,
        Arc<KafkaSinkRuntime>,
        CancellationToken,
        watch::Sender<TargetState>,
    ) {
        test_run_with(task, input, listener, group, flush_interval, &[])
    }

    /// `test_run_in` with more consumer settings.
    fn test_run_with(
        task: Box<dyn SinkTask>,
        input: &str,
        listener: Arc<NoListener>,
        group: &str,
        flush_interval: Duration,
        extra: &[(&str, &str)],
    ) -> (
        SinkTaskRun,
        Arc<KafkaSinkRuntime>,
        CancellationToken,
        watch::Sender<TargetState>,
    ) {
        let mut admin = BTreeMap::new();
        admin.insert("bootstrap.servers".to_string(), bootstrap());
        let mut consumer_cfg = admin.clone();
        consumer_cfg.insert("group.id".into(), group.to_string());
        for (k, v) in extra {
            consumer_cfg.insert(k.to_string(), v.to_string());
        }
        consumer_cfg.insert("enable.auto.commit".into(), "false".into());
        consumer_cfg.insert("auto.offset.reset".into(), "earliest".into());
        consumer_cfg.insert("isolation.level".into(), "read_committed".into());
        let (consumer, shared) = create_consumer(&consumer_cfg, "sink-test", 0).unwrap();
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
            flush_interval,
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
        async fn put(&mut self, records: &[SinkRecord]) -> ConnectResult<()> {
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

    /// A record the broker refuses (larger than the topic's
    /// `max.message.bytes`) fails its transaction as retriable, naming the
    /// cause; the abort leaves the producer usable for the next one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_the_broker_refuses_aborts_its_transaction_and_the_next_one_commits() {
        let rt = services_runtime();
        let (small, out) = (unique("txn-refusing"), unique("txn-accepting"));
        let spec = |name: &str, configs: Vec<(String, String)>| TopicSpec {
            name: name.to_string(),
            partitions: Some(1),
            replication_factor: Some(1),
            configs,
        };
        rt.ensure_topics(&[
            // Room for the transaction markers the coordinator writes (a
            // topic that refuses even those keeps the transaction open for
            // ever), not for the records below.
            spec(&small, vec![("max.message.bytes".into(), "512".into())]),
            spec(&out, vec![]),
        ])
        .await
        .unwrap();
        let record = |topic: &str, v: &str| OutputRecord {
            topic: topic.to_string(),
            partition: Some(0),
            key: None,
            value: Some(v.as_bytes().to_vec()),
            headers: vec![],
        };
        // One good record and many refused ones in the same transaction:
        // nothing of it may become visible, and the error says why.
        let mut refused = vec![record(&out, "lost-with-its-transaction")];
        let big = "x".repeat(4096);
        refused.extend((0..50).map(|i| record(&small, &format!("too large {i} {big}"))));
        let e = rt
            .commit_transaction(refused, HashMap::new())
            .await
            .unwrap_err();
        assert!(e.is_retriable(), "{e:?}");
        assert!(e.to_string().contains("was not committed"), "{e}");
        assert!(e.to_string().to_lowercase().contains("too large"), "{e}");
        // The aborted transaction's reports do not leak into the next one.
        rt.commit_transaction(vec![record(&out, "next")], HashMap::new())
            .await
            .unwrap();
        assert_eq!(
            read_values(&out, "read_committed", Duration::from_secs(2)),
            vec!["next"]
        );
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
        let (consumer, shared) = create_consumer(&consumer_cfg, "sink-read", 0).unwrap();
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

    /// One record as a test task saw it: (task, partition, offset).
    type Seen = (u32, i32, i64);

    /// Test-only sink that writes only at `pre_commit` time, as a sink
    /// buffering into files or batches would: `put` buffers, `pre_commit`
    /// "flushes" the buffer of the offered partitions to `flushed` and
    /// returns the offsets after what it flushed, `close` drops the buffer
    /// of the closed partitions (their records come again to the next owner).
    struct FlushAtPreCommit {
        id: u32,
        buffer: Vec<Seen>,
        put: Arc<Mutex<Vec<Seen>>>,
        flushed: Arc<Mutex<Vec<Seen>>>,
    }

    /// Task 0, and the log of the records it was given.
    fn recording_task() -> (Box<FlushAtPreCommit>, Arc<Mutex<Vec<Seen>>>) {
        let put = Arc::new(Mutex::new(Vec::new()));
        let task = Box::new(FlushAtPreCommit {
            id: 0,
            buffer: Vec::new(),
            put: Arc::clone(&put),
            flushed: Arc::new(Mutex::new(Vec::new())),
        });
        (task, put)
    }

    #[async_trait]
    impl SinkTask for FlushAtPreCommit {
        async fn start(&mut self, _ctx: SinkTaskContext, _props: Props) -> ConnectResult<()> {
            Ok(())
        }
        async fn put(&mut self, records: &[SinkRecord]) -> ConnectResult<()> {
            for r in records {
                let seen = (
                    self.id,
                    r.record.kafka_partition.unwrap_or(-1),
                    r.kafka_offset,
                );
                lock(&self.put).push(seen);
                self.buffer.push(seen);
            }
            Ok(())
        }
        async fn pre_commit(
            &mut self,
            current: &HashMap<TopicPartition, i64>,
        ) -> ConnectResult<HashMap<TopicPartition, i64>> {
            let mut safe = HashMap::new();
            let (flush, keep): (Vec<Seen>, Vec<Seen>) = self
                .buffer
                .drain(..)
                .partition(|(_, p, _)| current.keys().any(|tp| tp.partition == *p));
            self.buffer = keep;
            for (task, p, o) in flush {
                lock(&self.flushed).push((task, p, o));
                let next = safe
                    .entry(TopicPartition {
                        topic: current
                            .keys()
                            .next()
                            .map(|t| t.topic.clone())
                            .unwrap_or_default(),
                        partition: p,
                    })
                    .or_insert(o + 1);
                *next = (*next).max(o + 1);
            }
            Ok(safe)
        }
        async fn close(&mut self, partitions: &[TopicPartition]) -> ConnectResult<()> {
            self.buffer
                .retain(|(_, p, _)| !partitions.iter().any(|tp| tp.partition == *p));
            Ok(())
        }
        async fn stop(&mut self) -> ConnectResult<()> {
            Ok(())
        }
    }

    fn produce_to(topic: &str, partition: i32, values: std::ops::Range<usize>) {
        use rdkafka::producer::{BaseProducer, BaseRecord};
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .create()
            .unwrap();
        for i in values {
            let v = format!("p{partition}-{i}");
            p.send(
                BaseRecord::<(), str>::to(topic)
                    .partition(partition)
                    .payload(v.as_str()),
            )
            .map_err(|(e, _)| e)
            .unwrap();
        }
        p.flush(Duration::from_secs(30)).unwrap();
    }

    /// Java's `WorkerSinkTask` calls `preCommit` and commits what it returns
    /// before revoked partitions go: the next owner starts exactly after what
    /// the first task flushed, so no record is put twice and none is lost,
    /// although no periodic commit ever ran.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revocation_commits_what_pre_commit_flushed_and_the_next_owner_continues_there() {
        const PARTITIONS: i32 = 4;
        const FIRST: usize = 50;
        const SECOND: usize = 30;
        let input = topic_with_partitions("revoke-in", PARTITIONS).await;
        let topic = input.clone();
        tokio::task::spawn_blocking(move || {
            for p in 0..PARTITIONS {
                produce_to(&topic, p, 0..FIRST);
            }
        })
        .await
        .unwrap();
        let group = unique("revoke-group");
        let put = Arc::new(Mutex::new(Vec::new()));
        let flushed = Arc::new(Mutex::new(Vec::new()));
        // No periodic commit during the test: only revocations and the final
        // stops commit.
        let never = Duration::from_secs(3600);
        let task = |id| {
            Box::new(FlushAtPreCommit {
                id,
                buffer: Vec::new(),
                put: Arc::clone(&put),
                flushed: Arc::clone(&flushed),
            })
        };
        let listener = Arc::new(NoListener(Mutex::new(Vec::new())));
        let (run_a, _, cancel_a, _target_a) =
            test_run_in(task(0), &input, Arc::clone(&listener), &group, never);
        let a = tokio::spawn(run_a.run());
        let total_first = PARTITIONS as usize * FIRST;
        wait_for("task 0 to get every record", || {
            lock(&put).len() >= total_first
        })
        .await;
        assert!(
            lock(&flushed).is_empty(),
            "nothing is flushed before a pre_commit"
        );

        // A second member: the group moves some partitions to it.
        let (run_b, _, cancel_b, _target_b) =
            test_run_in(task(1), &input, Arc::clone(&listener), &group, never);
        let b = tokio::spawn(run_b.run());
        wait_for("the revocation to flush task 0's records", || {
            !lock(&flushed).is_empty()
        })
        .await;
        let topic = input.clone();
        tokio::task::spawn_blocking(move || {
            for p in 0..PARTITIONS {
                produce_to(&topic, p, FIRST..FIRST + SECOND);
            }
        })
        .await
        .unwrap();
        let total = PARTITIONS as usize * (FIRST + SECOND);
        wait_for("both tasks to get the new records", || {
            let seen: std::collections::BTreeSet<(i32, i64)> =
                lock(&put).iter().map(|(_, p, o)| (*p, *o)).collect();
            seen.len() >= total
        })
        .await;
        // Let a duplicate, if any, arrive.
        tokio::time::sleep(Duration::from_secs(2)).await;
        cancel_b.cancel();
        cancel_a.cancel();
        a.await.unwrap().unwrap();
        b.await.unwrap().unwrap();
        assert!(lock(&listener.0).is_empty(), "{:?}", lock(&listener.0));

        let put = lock(&put).clone();
        let flushed = lock(&flushed).clone();
        let by_task = |t: u32| put.iter().filter(|(id, _, _)| *id == t).count();
        assert!(
            by_task(0) > 0 && by_task(1) > 0,
            "the rebalance gave task 1 partitions (task 0: {}, task 1: {})",
            by_task(0),
            by_task(1)
        );
        for (name, seen) in [("put", &put), ("flushed", &flushed)] {
            for p in 0..PARTITIONS {
                let offsets: Vec<i64> = seen
                    .iter()
                    .filter(|(_, q, _)| *q == p)
                    .map(|(_, _, o)| *o)
                    .collect();
                let expected: Vec<i64> = (0..(FIRST + SECOND) as i64).collect();
                assert_eq!(
                    offsets, expected,
                    "{name} of partition {p}: every record once, in order ({seen:?})"
                );
            }
        }
    }

    /// Static membership: when a second instance of a task joins with the
    /// same `group.instance.id` (two workers briefly running the task during
    /// a Connect rebalance), the first is fenced and stops cleanly (no
    /// failure, so no restart loop), and the second consumes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fenced_static_member_stops_cleanly_and_its_successor_consumes() {
        let input = topic_with_partitions("fence-in", 1).await;
        let topic = input.clone();
        tokio::task::spawn_blocking(move || produce_to(&topic, 0, 0..10))
            .await
            .unwrap();
        let group = unique("fence-group");
        let prefix = unique("instance");
        let put = Arc::new(Mutex::new(Vec::new()));
        let flushed = Arc::new(Mutex::new(Vec::new()));
        let task = |id| {
            Box::new(FlushAtPreCommit {
                id,
                buffer: Vec::new(),
                put: Arc::clone(&put),
                flushed: Arc::clone(&flushed),
            })
        };
        let static_id = [("group.instance.id", prefix.as_str())];
        let first_listener = Arc::new(NoListener(Mutex::new(Vec::new())));
        let (run_a, _, _cancel_a, _target_a) = test_run_with(
            task(0),
            &input,
            Arc::clone(&first_listener),
            &group,
            Duration::from_millis(200),
            &static_id,
        );
        let a = tokio::spawn(run_a.run());
        wait_for("the first instance to consume", || lock(&put).len() >= 10).await;
        let second_listener = Arc::new(NoListener(Mutex::new(Vec::new())));
        let (run_b, _, cancel_b, _target_b) = test_run_with(
            task(1),
            &input,
            Arc::clone(&second_listener),
            &group,
            Duration::from_millis(200),
            &static_id,
        );
        let b = tokio::spawn(run_b.run());
        // The first instance ends by itself, without a failure.
        let ended = tokio::time::timeout(Duration::from_secs(60), a)
            .await
            .expect("the fenced instance stops");
        assert!(ended.unwrap().is_ok(), "a fenced instance does not fail");
        assert!(
            lock(&first_listener.0).is_empty(),
            "{:?}",
            lock(&first_listener.0)
        );
        let topic = input.clone();
        tokio::task::spawn_blocking(move || produce_to(&topic, 0, 10..15))
            .await
            .unwrap();
        wait_for("the successor to consume the new records", || {
            lock(&put).iter().any(|(id, _, o)| *id == 1 && *o == 14)
        })
        .await;
        cancel_b.cancel();
        b.await.unwrap().unwrap();
        assert!(lock(&second_listener.0).is_empty());
    }

    /// Joins `group` as a consumer holding partition 0 of `topic`, with a
    /// 45 s session, and disappears without leaving: what a task consumer
    /// killed with `kill -9` leaves behind. Made by hand because an rdkafka
    /// consumer in this process cannot be killed without it leaving.
    async fn join_and_vanish(group: &str, client_id: &str, topic: &str) -> String {
        use crate::group::client::{BrokerConnection, JoinParams};
        let timeout = Duration::from_secs(10);
        let mut conn = BrokerConnection::to_coordinator(&bootstrap(), group, client_id, timeout)
            .await
            .unwrap();
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as i16).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        // ConsumerProtocolSubscription v0: version, topics, no user data.
        let mut subscription = 0i16.to_be_bytes().to_vec();
        subscription.extend_from_slice(&1i32.to_be_bytes());
        string(&mut subscription, topic);
        subscription.extend_from_slice(&(-1i32).to_be_bytes());
        let joined = conn
            .join_group(&JoinParams {
                group_id: group,
                member_id: "",
                session_timeout_ms: 45_000,
                rebalance_timeout_ms: 10_000,
                protocol_type: "consumer",
                protocols: vec![(DEFAULT_ASSIGNOR.to_string(), subscription.into())],
                reason: None,
            })
            .await
            .unwrap();
        // ConsumerProtocolAssignment v0: partition 0 of the topic to this
        // member (the leader, as it joined alone).
        let mut assignment = 0i16.to_be_bytes().to_vec();
        assignment.extend_from_slice(&1i32.to_be_bytes());
        string(&mut assignment, topic);
        assignment.extend_from_slice(&1i32.to_be_bytes());
        assignment.extend_from_slice(&0i32.to_be_bytes());
        assignment.extend_from_slice(&(-1i32).to_be_bytes());
        let assignments = joined
            .members
            .iter()
            .map(|m| (m.member_id.clone(), bytes::Bytes::from(assignment.clone())))
            .collect();
        conn.sync_group(
            group,
            joined.generation_id,
            &joined.member_id,
            "consumer",
            &joined.protocol_name,
            assignments,
            10_000,
        )
        .await
        .unwrap();
        joined.member_id
    }

    async fn group_members(group: &str) -> Vec<crate::group::client::GroupMember> {
        use crate::group::client::BrokerConnection;
        let timeout = Duration::from_secs(10);
        let mut conn =
            BrokerConnection::to_coordinator(&bootstrap(), group, "members-test", timeout)
                .await
                .unwrap();
        conn.describe_group(group).await.unwrap()
    }

    /// A task restarted after `kill -9` gets its partition back at once: it
    /// removes the member its killed run left behind instead of waiting
    /// 45 s for that member's session to expire.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_task_does_not_wait_for_the_member_its_killed_run_left() {
        let input = input_topic(&["v"; 5]).await;
        let group = unique("restart-group");
        let client_id = format!("{}-0", unique("connector-consumer-restart"));
        let dead = join_and_vanish(&group, &client_id, &input).await;
        assert!(group_members(&group)
            .await
            .iter()
            .any(|m| m.member_id == dead));
        let (task, put) = recording_task();
        let listener = Arc::new(NoListener(Mutex::new(Vec::new())));
        let (run, _, cancel, _target) = test_run_with(
            task,
            &input,
            Arc::clone(&listener),
            &group,
            Duration::from_millis(200),
            &[("client.id", client_id.as_str())],
        );
        let started = std::time::Instant::now();
        let handle = tokio::spawn(run.run());
        wait_for("the restarted task to consume", || lock(&put).len() >= 5).await;
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_secs(30),
            "the restarted task waited {waited:?} for its partition, as long as the dead member's session"
        );
        let members = group_members(&group).await;
        assert!(members.iter().all(|m| m.member_id != dead), "{members:?}");
        cancel.cancel();
        handle.await.unwrap().unwrap();
        assert!(lock(&listener.0).is_empty(), "{:?}", lock(&listener.0));
    }

    /// A bootstrap address that passes librdkafka's connections on to the
    /// broker but never answers the worker's own protocol client, recognised
    /// by the software name in its first request (ApiVersions). Returns the
    /// address and how many connections it stalled.
    async fn proxy_stalling_our_client() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stalled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&stalled);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let mut len = [0u8; 4];
                    if client.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut request = vec![0u8; u32::from_be_bytes(len) as usize];
                    if client.read_exact(&mut request).await.is_err() {
                        return;
                    }
                    if request.windows(8).any(|w| w == b"connectd") {
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        // Hold the connection open, unanswered.
                        let _ = client.read_to_end(&mut Vec::new()).await;
                        return;
                    }
                    let Ok(mut broker) = tokio::net::TcpStream::connect(bootstrap()).await else {
                        return;
                    };
                    if broker.write_all(&len).await.is_err()
                        || broker.write_all(&request).await.is_err()
                    {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                });
            }
        });
        (addr, stalled)
    }

    /// The look for leftover members is best effort: when the coordinator
    /// cannot be reached by it (here: its requests are never answered), the
    /// task starts and consumes anyway, delayed by at most that request's
    /// timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_starts_when_its_look_for_leftover_members_fails() {
        let input = input_topic(&["v"; 5]).await;
        let group = unique("unanswered-group");
        let (proxy, stalled) = proxy_stalling_our_client().await;
        let (task, put) = recording_task();
        let listener = Arc::new(NoListener(Mutex::new(Vec::new())));
        let client_id = format!("{}-0", unique("connector-consumer-unanswered"));
        let (run, _, cancel, _target) = test_run_with(
            task,
            &input,
            Arc::clone(&listener),
            &group,
            Duration::from_millis(200),
            &[
                ("client.id", client_id.as_str()),
                ("bootstrap.servers", proxy.as_str()),
            ],
        );
        let started = std::time::Instant::now();
        let handle = tokio::spawn(run.run());
        wait_for("the task to consume", || lock(&put).len() >= 5).await;
        let waited = started.elapsed();
        assert!(
            stalled.load(std::sync::atomic::Ordering::SeqCst) >= 1,
            "the look for leftover members never reached the proxy"
        );
        assert!(
            waited >= STALE_MEMBER_TIMEOUT
                && waited < STALE_MEMBER_BUDGET + Duration::from_secs(15),
            "the task consumed after {waited:?}"
        );
        cancel.cancel();
        handle.await.unwrap().unwrap();
        assert!(lock(&listener.0).is_empty(), "{:?}", lock(&listener.0));
    }

    /// Only members with the task's own client id are removed: another
    /// task's member of the same group stays, and a task without a client id
    /// or on a listener this client cannot speak removes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_tasks_own_leftover_members_are_removed() {
        let input = topic_with_partitions("stale-in", 1).await;
        let group = unique("stale-group");
        let base = unique("connector-consumer-stale");
        let (task0, task1) = (format!("{base}-0"), format!("{base}-1"));
        let dead = join_and_vanish(&group, &task0, &input).await;
        let mut settings = BTreeMap::from([
            ("bootstrap.servers".to_string(), bootstrap()),
            ("group.id".to_string(), group.clone()),
            ("client.id".to_string(), task1.clone()),
        ]);
        assert_eq!(remove_stale_members(&settings).await.unwrap(), 0);
        settings.remove("client.id");
        assert_eq!(remove_stale_members(&settings).await.unwrap(), 0);
        assert!(group_members(&group)
            .await
            .iter()
            .any(|m| m.member_id == dead));
        settings.insert("client.id".into(), task0.clone());
        settings.insert("security.protocol".into(), "SASL_SSL".into());
        assert_eq!(remove_stale_members(&settings).await.unwrap(), 0);
        settings.insert("security.protocol".into(), "plaintext".into());
        assert_eq!(remove_stale_members(&settings).await.unwrap(), 1);
        let members = group_members(&group).await;
        assert!(members.iter().all(|m| m.member_id != dead), "{members:?}");
        settings.insert("bootstrap.servers".into(), "127.0.0.1:1".into());
        let e = remove_stale_members(&settings).await.unwrap_err();
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    }

    /// Records the size of every `put`.
    struct BatchSizes(Arc<Mutex<Vec<usize>>>);

    #[async_trait]
    impl SinkTask for BatchSizes {
        async fn start(&mut self, _ctx: SinkTaskContext, _props: Props) -> ConnectResult<()> {
            Ok(())
        }
        async fn put(&mut self, records: &[SinkRecord]) -> ConnectResult<()> {
            if !records.is_empty() {
                lock(&self.0).push(records.len());
            }
            Ok(())
        }
        async fn stop(&mut self) -> ConnectResult<()> {
            Ok(())
        }
    }

    /// `max.poll.records` (Java's consumer setting, which librdkafka lacks)
    /// bounds every `put`, and the consumer is created with it set.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn max_poll_records_bounds_each_put() {
        let input = input_topic(&["v"; 20]).await;
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let listener = Arc::new(NoListener(Mutex::new(Vec::new())));
        let (run, _, cancel, _target) = test_run_with(
            Box::new(BatchSizes(Arc::clone(&sizes))),
            &input,
            Arc::clone(&listener),
            &unique("max-poll-group"),
            Duration::from_millis(200),
            &[(MAX_POLL_RECORDS, "3")],
        );
        let handle = tokio::spawn(run.run());
        wait_for("20 records", || lock(&sizes).iter().sum::<usize>() >= 20).await;
        cancel.cancel();
        handle.await.unwrap().unwrap();
        let sizes = lock(&sizes).clone();
        assert!(sizes.iter().all(|n| *n <= 3), "{sizes:?}");
        assert!(
            sizes.contains(&3),
            "batches are filled up to the limit: {sizes:?}"
        );
        assert!(lock(&listener.0).is_empty(), "{:?}", lock(&listener.0));
    }

    #[test]
    fn max_poll_records_must_be_a_positive_integer() {
        let with = |v: &str| BTreeMap::from([(MAX_POLL_RECORDS.to_string(), v.to_string())]);
        assert_eq!(max_poll_records(&BTreeMap::new()).unwrap(), 500);
        assert_eq!(max_poll_records(&with(" 2000 ")).unwrap(), 2000);
        for bad in ["0", "-1", "many"] {
            let e = max_poll_records(&with(bad)).unwrap_err().to_string();
            assert!(
                e.contains(&format!(
                    "Invalid value {bad} for configuration max.poll.records"
                )),
                "{e}"
            );
            assert!(create_consumer(&with(bad), "bad", 0).is_err());
        }
    }

    /// A run whose future is dropped before it finishes (a runtime shutdown,
    /// a failing test) still lets its consumer close: the close's last
    /// revocation is completed instead of waiting forever for the gone loop,
    /// and the member leaves the group.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_run_still_lets_its_consumer_close_and_leave() {
        let input = input_topic(&["v"; 5]).await;
        let group = unique("dropped-group");
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (run, runtime, _cancel, _target) = test_run_in(
            Box::new(BatchSizes(Arc::clone(&sizes))),
            &input,
            Arc::new(NoListener(Mutex::new(Vec::new()))),
            &group,
            Duration::from_millis(200),
        );
        let handle = tokio::spawn(run.run());
        wait_for("the records", || lock(&sizes).iter().sum::<usize>() >= 5).await;
        handle.abort();
        assert!(handle.await.unwrap_err().is_cancelled());
        // The last handle on the consumer closes it; on a plain thread, so
        // that a hang fails this test instead of the runtime's shutdown.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(runtime);
            let _ = tx.send(());
        });
        let closed = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .unwrap();
        assert!(
            closed.is_ok(),
            "closing the consumer of a dropped run hangs"
        );
        // librdkafka does not wait for the LeaveGroup answer; well within
        // the 45 s session, so the member left rather than expired.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let members = group_members(&group).await;
            if members.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the closed consumer is still a member: {members:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
