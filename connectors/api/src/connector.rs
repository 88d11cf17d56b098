//! Connectors and their tasks.
//!
//! A [`Connector`] runs once per connector in the worker that owns it: it reads
//! the connector config and splits the work into task configs. Tasks do the
//! data movement; a source task is polled by the worker's source runtime, a
//! sink task is fed by its sink runtime.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigDef, ConfigValueInfo, Props};
use crate::error::{ConnectError, ConnectResult};
use crate::record::{OffsetMap, SinkRecord, SourceRecord, TopicPartition};

/// Whether a connector reads from or writes to Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectorKind {
    Source,
    Sink,
}

impl ConnectorKind {
    /// The lower-case name the REST API prints in `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Source => "source",
            ConnectorKind::Sink => "sink",
        }
    }
}

/// Reads committed source offsets (Java's `OffsetStorageReader`).
#[async_trait]
pub trait OffsetReader: Send + Sync {
    /// The latest committed offset of each partition, `None` where there is none.
    async fn offsets(&self, partitions: &[OffsetMap]) -> ConnectResult<Vec<Option<OffsetMap>>>;

    async fn offset(&self, partition: &OffsetMap) -> ConnectResult<Option<OffsetMap>> {
        let mut all = self.offsets(std::slice::from_ref(partition)).await?;
        Ok(all.pop().flatten())
    }
}

/// What the worker offers a running connector (Java's `ConnectorContext`).
pub trait ConnectorHost: Send + Sync {
    /// Asks the worker to call `task_configs` again and reconfigure the tasks.
    fn request_task_reconfiguration(&self);
    /// Fails the connector from a background activity.
    fn raise_error(&self, error: ConnectError);
}

/// Context handed to [`Connector::start`].
#[derive(Clone)]
pub struct ConnectorContext {
    pub name: String,
    pub host: Arc<dyn ConnectorHost>,
    /// Source connectors may read committed offsets to plan their tasks.
    pub offsets: Option<Arc<dyn OffsetReader>>,
    /// Cancelled when the connector is stopped; background work must end then.
    pub cancel: CancellationToken,
}

/// A connector class (Java's `Connector`).
#[async_trait]
pub trait Connector: Send + Sync {
    fn version(&self) -> &str;
    fn kind(&self) -> ConnectorKind;
    fn config_def(&self) -> ConfigDef;

    /// Validates a config; the default runs the [`ConfigDef`] checks. Override
    /// to add cross-field or connectivity checks, keeping every finding.
    async fn validate(&self, props: &Props) -> Vec<ConfigValueInfo> {
        self.config_def().validate(props)
    }

    async fn start(&mut self, ctx: ConnectorContext, props: Props) -> ConnectResult<()>;

    /// Splits the work into at most `max_tasks` task configs.
    async fn task_configs(&self, max_tasks: usize) -> ConnectResult<Vec<Props>>;

    async fn stop(&mut self) -> ConnectResult<()>;

    /// Called on alter/reset of offsets while the connector is stopped; `Ok(true)`
    /// means the connector also handled offsets it keeps outside Kafka.
    async fn alter_offsets(
        &self,
        _props: &Props,
        _offsets: &[(OffsetMap, Option<OffsetMap>)],
    ) -> ConnectResult<bool> {
        Ok(false)
    }
}

/// Lets a source task ask for its acknowledged offsets to be committed now
/// instead of at the next `offset.flush.interval.ms` tick.
pub trait CommitRequester: Send + Sync {
    /// Commits the offsets of every record acknowledged so far, soon and in
    /// the background. Records not yet acknowledged by Kafka are not
    /// covered: a task waiting for one offset to be durable calls this again
    /// while it polls [`OffsetReader`] for it. Cheap when nothing is pending.
    fn request_commit(&self);
}

/// Context handed to [`SourceTask::start`].
#[derive(Clone)]
pub struct SourceTaskContext {
    pub connector: String,
    pub task_id: u32,
    pub offsets: Arc<dyn OffsetReader>,
    pub commits: Arc<dyn CommitRequester>,
    /// Cancelled when the task is stopped.
    pub cancel: CancellationToken,
}

/// A source task (Java's `SourceTask`).
///
/// The runtime calls `poll` in a loop. `poll` must be cancel-safe: on stop the
/// runtime drops a pending `poll` future, so records must not be lost if it is
/// dropped before it returns (keep them in `self` until returned).
#[async_trait]
pub trait SourceTask: Send {
    async fn start(&mut self, ctx: SourceTaskContext, props: Props) -> ConnectResult<()>;

    /// Returns the next records; an empty batch when there is nothing yet.
    async fn poll(&mut self) -> ConnectResult<Vec<SourceRecord>>;

    /// Called after the worker has durably stored the offsets of every record
    /// acknowledged so far.
    async fn commit(&mut self) -> ConnectResult<()> {
        Ok(())
    }

    async fn stop(&mut self) -> ConnectResult<()>;
}

/// Context handed to [`SinkTask::start`].
#[derive(Clone)]
pub struct SinkTaskContext {
    pub connector: String,
    pub task_id: u32,
    pub cancel: CancellationToken,
    /// The sink runtime's services (Java's `SinkTaskContext` methods, plus
    /// transactions for exactly-once sinks that write back to Kafka).
    pub runtime: Arc<dyn SinkRuntime>,
}

/// A record a sink task asks the runtime to write to Kafka, already
/// serialized (the task owns its output format, e.g. through a converter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord {
    pub topic: String,
    /// `None` lets the producer's partitioner choose from the key.
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A topic a sink task needs, created if missing (existing topics are left
/// as they are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    /// `None`: the broker's default.
    pub partitions: Option<i32>,
    /// `None`: the broker's default.
    pub replication_factor: Option<i16>,
    /// Topic configs, e.g. `cleanup.policy=compact`.
    pub configs: Vec<(String, String)>,
}

/// What the sink runtime offers a running sink task. The runtime owns every
/// Kafka client; the task stays Kafka-free and testable with a fake.
#[async_trait]
pub trait SinkRuntime: Send + Sync {
    /// Java's `SinkTaskContext.offset`: the next records delivered for these
    /// partitions start at these offsets (next offset to read). Takes effect
    /// before the next `put`.
    fn seek(&self, offsets: HashMap<TopicPartition, i64>);

    /// The consumer group's committed offsets (next offset to read) for these
    /// partitions; partitions with no committed offset are absent.
    async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> ConnectResult<HashMap<TopicPartition, i64>>;

    /// Pauses/resumes delivery for these partitions (Java's `pause`/`resume`).
    fn pause(&self, partitions: &[TopicPartition]);
    fn resume(&self, partitions: &[TopicPartition]);

    /// Creates the topics that do not exist yet.
    async fn ensure_topics(&self, topics: &[TopicSpec]) -> ConnectResult<()>;

    /// Exactly-once output: writes `records` and commits `offsets` (next
    /// offset to read, per input partition) for the task's consumer group in
    /// one Kafka transaction. On `Ok` both are durable and visible to
    /// `read_committed` consumers; on `Err` neither is, and the task must
    /// treat the batch as not processed (the runtime rewinds delivery to the
    /// committed offsets). A task that uses this returns an empty map from
    /// `pre_commit` so the runtime never commits offsets outside the
    /// transaction. Fails with a clear error when the worker cannot run
    /// transactions (e.g. the broker has no transaction coordinator).
    async fn commit_transaction(
        &self,
        records: Vec<OutputRecord>,
        offsets: HashMap<TopicPartition, i64>,
    ) -> ConnectResult<()>;

    /// The number of partitions of an existing topic, `None` when the topic
    /// does not exist. Lets a task create an output topic partitioned like its
    /// input. The default reports that the runtime cannot answer.
    async fn partition_count(&self, topic: &str) -> ConnectResult<Option<i32>> {
        Err(ConnectError::fatal(format!(
            "this sink runtime cannot describe topic {topic} (partition_count is not implemented)"
        )))
    }

    /// Reads committed records (`read_committed`) of one partition of any
    /// topic, outside the task's consumer group and without moving its
    /// positions: at most `max_records` records at or after offset `from`.
    /// Used to restore task state kept in a topic of its own. The default
    /// reports that the runtime cannot read topics.
    async fn read_partition(
        &self,
        partition: &TopicPartition,
        from: i64,
        max_records: usize,
    ) -> ConnectResult<PartitionChunk> {
        let _ = (from, max_records);
        Err(ConnectError::fatal(format!(
            "this sink runtime cannot read {}-{} (read_partition is not implemented)",
            partition.topic, partition.partition
        )))
    }
}

/// One record read back by [`SinkRuntime::read_partition`], as stored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// A page of [`SinkRuntime::read_partition`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionChunk {
    pub records: Vec<ConsumedRecord>,
    /// Where the next call should start (past skipped transaction markers,
    /// aborted and compacted-away records).
    pub next_offset: i64,
    /// The partition's last stable offset when the call was answered: the
    /// read is complete once `next_offset >= end_offset`.
    pub end_offset: i64,
}

/// A sink task (Java's `SinkTask`).
#[async_trait]
pub trait SinkTask: Send {
    async fn start(&mut self, ctx: SinkTaskContext, props: Props) -> ConnectResult<()>;
    async fn open(&mut self, _partitions: &[TopicPartition]) -> ConnectResult<()> {
        Ok(())
    }
    /// Hands over a batch. The runtime keeps the batch: after a retriable
    /// error it calls `put` again with the same records (Java's contract), so
    /// the task gets them borrowed and copies only what it keeps.
    async fn put(&mut self, records: &[SinkRecord]) -> ConnectResult<()>;
    /// Returns the offsets (next offset to read) that are safe to commit.
    async fn pre_commit(
        &mut self,
        current: &HashMap<TopicPartition, i64>,
    ) -> ConnectResult<HashMap<TopicPartition, i64>> {
        Ok(current.clone())
    }
    async fn close(&mut self, _partitions: &[TopicPartition]) -> ConnectResult<()> {
        Ok(())
    }
    async fn stop(&mut self) -> ConnectResult<()>;
}
