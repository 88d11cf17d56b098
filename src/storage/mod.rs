//! Kafka-backed (and standalone in-memory/file) stores for connector configs,
//! source offsets and statuses, byte-compatible with the Java worker.

pub mod config_store;
pub mod file_offsets;
pub mod kafka_log;
pub mod log;
pub mod offset_store;
pub mod status_store;
pub mod topics;
