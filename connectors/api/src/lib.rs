//! The public contract between the `connectd` worker and its plugins.
//!
//! This crate mirrors the Java `connect-api` artifact: the Connect data model
//! ([`data`]), source and sink records ([`record`]), the plugin traits
//! ([`connector`], [`convert`], [`transform`]), configuration definitions
//! ([`config`]) and the error type ([`error`]). It has no Kafka or MongoDB
//! dependency so that plugins can be tested without either, and so that the
//! worker is the only place that knows how records reach Kafka.

pub mod config;
pub mod connector;
pub mod convert;
pub mod data;
pub mod error;
pub mod plugin;
pub mod record;
pub mod transform;

pub use config::{ConfigDef, ConfigKey, ConfigType, Importance, ParsedConfig, Props};
pub use connector::{
    CommitRequester, Connector, ConnectorContext, ConnectorKind, ConsumedRecord, OffsetReader,
    OutputRecord, PartitionChunk, SinkRuntime, SinkTask, SinkTaskContext, SourceTask,
    SourceTaskContext, TopicSpec,
};
pub use convert::{Converter, HeaderConverter};
pub use data::{
    Field, Header, Headers, Schema, SchemaAndValue, SchemaBuilder, SchemaRef, SchemaType, Struct,
    Value,
};
pub use error::{ConnectError, ConnectResult};
pub use record::{ConnectRecord, OffsetMap, SinkRecord, SourceRecord, TopicPartition};
pub use transform::{Predicate, Transform};
