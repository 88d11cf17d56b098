//! `connect-mongodb`: a MongoDB source connector for `connectd`.
//!
//! It captures every document and every change of the selected collections
//! into Kafka, in order per document:
//!
//! * a **chunked, parallel, resumable snapshot** ([`plan`], [`handoff`]):
//!   collections are cut into `_id` ranges, read `snapshot.parallelism` at a
//!   time per task and spread over `tasks.max` tasks; each finished chunk is
//!   recorded in the Connect offsets, so a restart re-reads only unfinished
//!   chunks;
//! * an **exact snapshot/stream handoff** (Flink CDC's watermark design, see
//!   [`handoff`]): no change is lost or published twice at the boundary;
//! * a **resumable change stream** ([`stream`]) with heartbeats, spec-conform
//!   retries and an explicit policy for expired resume tokens.
//!
//! **Delivery guarantee**: every change is published at least once; at the
//! snapshot/stream boundary exactly once with `snapshot.handoff=exact`.
//! Duplicates come only from replaying records after a crash whose offsets
//! were not yet flushed (Connect's usual at-least-once).
//!
//! **Offsets**: see [`offsets`] — the stream partition and offset keep the
//! official connector's `{"ns": ...}` / `{"_id": <token JSON>}` shape.
//!
//! Records keep the official connector's default shapes ([`records`]), and
//! its config keys work unchanged ([`config`]); its class name
//! `com.mongodb.kafka.connect.MongoSourceConnector` is an alias of ours.

pub mod bsonx;
pub mod changelog;
pub mod config;
pub mod connector;
pub mod error;
pub mod handoff;
pub mod offsets;
pub mod plan;
pub mod progress;
pub mod records;
pub mod schema;
pub mod spawn;
pub mod stream;
pub mod task;

use connect_api::connector::ConnectorKind;
use connect_api::plugin::{ConnectorPlugin, TaskFactory};

pub use config::{CLASS, OFFICIAL_CLASS, TASK_CLASS};
pub use connector::MongoSourceConnector;
pub use task::MongoSourceTask;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The plugin descriptor the worker registers.
pub fn plugin() -> ConnectorPlugin {
    ConnectorPlugin {
        class: CLASS,
        aliases: &[OFFICIAL_CLASS],
        version: VERSION,
        kind: ConnectorKind::Source,
        new_connector: || Box::new(MongoSourceConnector::default()),
        task_class: TASK_CLASS,
        new_task: TaskFactory::Source(|| Box::new(MongoSourceTask::default())),
        progress: Some(progress::get),
    }
}
