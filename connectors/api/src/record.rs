//! Records as they pass between tasks, transforms, converters and the worker.

use crate::data::{Headers, SchemaRef, Value};

/// A source partition or source offset: a JSON object with string keys and
/// primitive values, exactly what the Java worker stores in the offsets topic.
pub type OffsetMap = serde_json::Map<String, serde_json::Value>;

/// The part of a record that transforms see (Java's `ConnectRecord`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectRecord {
    pub topic: String,
    /// `None` lets the producer's partitioner choose (murmur2 of the key).
    pub kafka_partition: Option<i32>,
    pub key_schema: Option<SchemaRef>,
    pub key: Value,
    pub value_schema: Option<SchemaRef>,
    pub value: Value,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    pub headers: Headers,
}

impl ConnectRecord {
    pub fn new(topic: impl Into<String>, key: Value, value: Value) -> Self {
        ConnectRecord {
            topic: topic.into(),
            key,
            value,
            ..Default::default()
        }
    }
}

/// A record produced by a source task, with the position it came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceRecord {
    pub source_partition: OffsetMap,
    pub source_offset: OffsetMap,
    pub record: ConnectRecord,
}

/// A Kafka topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// A record delivered to a sink task.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SinkRecord {
    pub record: ConnectRecord,
    pub kafka_offset: i64,
    /// Kafka's timestamp type: 0 none, 1 create time, 2 log-append time.
    pub timestamp_type: i8,
    /// The original serialized key and value, for sinks that pass bytes through.
    pub raw_key: Option<Vec<u8>>,
    pub raw_value: Option<Vec<u8>>,
}
