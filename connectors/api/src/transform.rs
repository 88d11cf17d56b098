//! Single message transforms and their predicates.

use crate::config::{ConfigDef, Props};
use crate::error::ConnectResult;
use crate::record::{ConnectRecord, SinkRecord};

/// A single message transform (Java's `Transformation`).
///
/// `apply` is synchronous and must not block: it runs on the task's hot path.
/// Returning `Ok(None)` drops the record.
pub trait Transform: Send + Sync {
    /// Reads the transform's settings (the `transforms.<alias>.` prefix removed).
    fn configure(&mut self, props: &Props) -> ConnectResult<()>;
    fn config_def(&self) -> ConfigDef;
    fn apply(&self, record: ConnectRecord) -> ConnectResult<Option<ConnectRecord>>;

    /// Applies the transform to a record a sink task is about to receive.
    ///
    /// Java transforms can see that a record is a `SinkRecord` and read its
    /// Kafka offset (`InsertField`'s `offset.field`); sink runtimes call this
    /// instead of [`Transform::apply`] so such transforms can do the same. The
    /// default keeps the sink-only parts and transforms the inner record.
    fn apply_sink(&self, record: SinkRecord) -> ConnectResult<Option<SinkRecord>> {
        let SinkRecord {
            record: inner,
            kafka_offset,
            timestamp_type,
            raw_key,
            raw_value,
        } = record;
        Ok(self.apply(inner)?.map(|record| SinkRecord {
            record,
            kafka_offset,
            timestamp_type,
            raw_key,
            raw_value,
        }))
    }
}

/// A condition that decides whether a transform applies (Java's `Predicate`).
pub trait Predicate: Send + Sync {
    fn configure(&mut self, props: &Props) -> ConnectResult<()>;
    fn config_def(&self) -> ConfigDef;
    fn test(&self, record: &ConnectRecord) -> bool;
}
