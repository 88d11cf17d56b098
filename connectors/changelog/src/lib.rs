//! The Debezium changelog envelope, written by two connectors: the changelog
//! normalizer (from an upsert topic plus its per-key state) and the MongoDB
//! source (from change events with pre- and post-images). One builder, so
//! that for the same changes both write the same `before`, `after` and `op`
//! in the same bytes; only the `source` block says which of them wrote it.
//!
//! * [`Event`]: what one change becomes (create, update, delete, or nothing).
//! * [`envelope`]: the stored form of a document and the envelope in JSON
//!   (with or without schemas) or Avro.

pub mod envelope;
mod infer;

pub use envelope::{EnvelopeEncoder, SourceInfo};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How the envelope is serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Debezium JSON, as Connect's JsonConverter writes it.
    Json { schemas: bool },
    /// Confluent Avro through the schema registry (AvroConverter).
    Avro,
}

/// How `before` / `after` carry the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentEncoding {
    /// Typed images when the input value has a struct schema; JSON documents
    /// as nested objects in schemaless JSON; otherwise JSON text.
    Auto,
    /// Always JSON text (`io.debezium.data.Json`), the Debezium MongoDB shape.
    String,
}

/// What one change of a key becomes in the changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<D> {
    /// First appearance of the key: `op` `c`, or `r` when `snapshot`.
    Create { after: D, snapshot: bool },
    /// Changed value: `op` `u` with the full previous and new documents.
    Update { before: D, after: D },
    /// Delete of a known key: `op` `d` with the full deleted document.
    Delete { before: D },
    /// The value equals the previous one: nothing is emitted.
    SkippedIdentical,
    /// A delete for a key that has no known document: nothing is emitted
    /// (counted, because it usually means state was lost or input reordered).
    SkippedUnknownDelete,
}
