//! The changelog normalizer: a sink connector that reads upsert topics
//! (key = document id, value = the whole document, null value = delete, as
//! the MongoDB source writes with `publish.full.document.only=true` and
//! `publish.full.document.only.tombstone.on.delete=true`) and writes, for
//! each, a changelog topic in the Debezium envelope with full `before` and
//! `after` images, exactly what Flink's `ChangelogNormalize` would derive,
//! so consumers need no per-key state of their own.
//!
//! * [`fold`]: the per-key rules, a pure function.
//! * [`envelope`]: the Debezium envelope in JSON or Avro.
//! * [`store`]: one embedded store per input partition (fjall).
//! * [`task`]: the exactly-once loop and recovery (design in its docs).

pub mod config;
pub mod connector;
pub mod envelope;
pub mod error;
pub mod fold;
mod infer;
pub mod metrics;
pub mod store;
pub mod task;

use connect_api::plugin::{ConnectorPlugin, TaskFactory};
use connect_api::ConnectorKind;

pub use connector::NormalizerConnector;
pub use error::NormalizerError;
pub use task::NormalizerTask;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const CLASS: &str = "io.connectd.normalizer.ChangelogNormalizerConnector";
pub const TASK_CLASS: &str = "io.connectd.normalizer.ChangelogNormalizerTask";

/// The connector's registry entry.
pub fn plugin() -> ConnectorPlugin {
    ConnectorPlugin {
        class: CLASS,
        aliases: &["ChangelogNormalizer"],
        version: VERSION,
        kind: ConnectorKind::Sink,
        new_connector: || Box::new(NormalizerConnector::default()),
        task_class: TASK_CLASS,
        new_task: TaskFactory::Sink(|| Box::new(NormalizerTask::default())),
        progress: Some(metrics::progress),
    }
}
