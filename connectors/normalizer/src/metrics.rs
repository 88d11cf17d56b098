//! Counters per connector, shown by `GET /connectors/{name}/progress`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// What the normalizer did, counted only for committed batches.
#[derive(Debug, Default)]
pub struct Metrics {
    pub created: AtomicU64,
    pub read: AtomicU64,
    pub updated: AtomicU64,
    pub deleted: AtomicU64,
    pub skipped_identical: AtomicU64,
    /// Deletes of keys with no stored document (state lost, or the source
    /// deleted something it never published).
    pub skipped_unknown_delete: AtomicU64,
    /// Records without key bytes: they cannot be normalized.
    pub skipped_null_key: AtomicU64,
    /// Input records re-applied to state without emitting (crash gap).
    pub replayed: AtomicU64,
    /// Keys restored from the state topic.
    pub restored_keys: AtomicU64,
}

/// Counts of one batch, added to [`Metrics`] once the batch is committed.
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchCounts {
    pub created: u64,
    pub read: u64,
    pub updated: u64,
    pub deleted: u64,
    pub skipped_identical: u64,
    pub skipped_unknown_delete: u64,
    pub skipped_null_key: u64,
}

impl Metrics {
    pub fn add(&self, c: &BatchCounts) {
        let add = |a: &AtomicU64, n: u64| {
            a.fetch_add(n, Ordering::Relaxed);
        };
        add(&self.created, c.created);
        add(&self.read, c.read);
        add(&self.updated, c.updated);
        add(&self.deleted, c.deleted);
        add(&self.skipped_identical, c.skipped_identical);
        add(&self.skipped_unknown_delete, c.skipped_unknown_delete);
        add(&self.skipped_null_key, c.skipped_null_key);
    }

    pub fn to_json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "created": g(&self.created),
            "read": g(&self.read),
            "updated": g(&self.updated),
            "deleted": g(&self.deleted),
            "skipped_identical": g(&self.skipped_identical),
            "skipped_unknown_delete": g(&self.skipped_unknown_delete),
            "skipped_null_key": g(&self.skipped_null_key),
            "replayed": g(&self.replayed),
            "restored_keys": g(&self.restored_keys),
        })
    }
}

fn registry() -> &'static Mutex<HashMap<String, Arc<Metrics>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<Metrics>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The counters of a connector, shared by its tasks in this worker.
pub fn for_connector(name: &str) -> Arc<Metrics> {
    registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(name.to_string())
        .or_default()
        .clone()
}

/// The plugin's progress hook.
pub fn progress(name: &str) -> Option<serde_json::Value> {
    registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(name)
        .map(|m| m.to_json())
}
