//! Snapshot progress per connector, shared by the tasks running in this
//! worker process and read by `GET /connectors/{name}/progress` through the
//! plugin's `progress` hook, and logged after every chunk.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use serde_json::{json, Value as Json};

#[derive(Debug, Clone)]
struct TaskProgress {
    phase: &'static str,
    chunks_total: usize,
    chunks_done: usize,
    /// Chunks found finished in the offsets at start (not read by this run).
    chunks_skipped: usize,
    docs: u64,
    started: Instant,
}

type Registry = Mutex<HashMap<String, HashMap<u32, TaskProgress>>>;
/// Event counters per connector (`errors_skipped`, ...), kept across task
/// restarts in this process.
type Counters = Mutex<HashMap<String, BTreeMap<&'static str, u64>>>;

fn counters() -> &'static Counters {
    static C: OnceLock<Counters> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// Adds one to a connector's counter `name` (shown by the progress endpoint).
pub fn incr(connector: &str, name: &'static str) {
    let mut g = counters()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *g.entry(connector.to_string())
        .or_default()
        .entry(name)
        .or_default() += 1;
}

/// A connector's counters.
pub fn counts(connector: &str) -> BTreeMap<&'static str, u64> {
    counters()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(connector)
        .cloned()
        .unwrap_or_default()
}

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Default::default)
}

fn with<F: FnOnce(&mut HashMap<String, HashMap<u32, TaskProgress>>)>(f: F) {
    // A poisoned lock only means a panic elsewhere while updating counters;
    // the counters are still usable.
    let mut g = registry()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut g);
}

pub fn start(connector: &str, task: u32, total: usize, skipped: usize) {
    with(|r| {
        r.entry(connector.to_string()).or_default().insert(
            task,
            TaskProgress {
                phase: if total > skipped {
                    "snapshot"
                } else {
                    "stream"
                },
                chunks_total: total,
                chunks_done: skipped,
                chunks_skipped: skipped,
                docs: 0,
                started: Instant::now(),
            },
        );
    });
}

pub fn chunk_done(connector: &str, task: u32, docs: u64) {
    with(|r| {
        if let Some(p) = r.get_mut(connector).and_then(|m| m.get_mut(&task)) {
            p.chunks_done += 1;
            p.docs += docs;
        }
    });
    if let Some(p) = get(connector) {
        tracing::info!(connector, chunks_done = %p["chunks_done"], chunks_total = %p["chunks_total"], docs_copied = %p["docs_copied"], docs_per_sec = %p["docs_per_sec"], eta_seconds = %p["eta_seconds"], "snapshot progress");
    }
}

pub fn phase(connector: &str, task: u32, phase: &'static str) {
    with(|r| {
        if let Some(p) = r.get_mut(connector).and_then(|m| m.get_mut(&task)) {
            p.phase = phase;
        }
    });
}

pub fn remove(connector: &str, task: u32) {
    with(|r| {
        if let Some(m) = r.get_mut(connector) {
            m.remove(&task);
            if m.is_empty() {
                r.remove(connector);
            }
        }
    });
}

/// Aggregated progress of a connector's tasks in this process, with its
/// event counters.
pub fn get(connector: &str) -> Option<Json> {
    let counts = counts(connector);
    let mut out = tasks_progress(connector);
    if out.is_none() && !counts.is_empty() {
        out = Some(json!({}));
    }
    if let Some(Json::Object(o)) = out.as_mut() {
        for (k, v) in counts {
            o.insert(k.to_string(), json!(v));
        }
    }
    out
}

fn tasks_progress(connector: &str) -> Option<Json> {
    let r = registry()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let m = r.get(connector)?;
    let total: usize = m.values().map(|p| p.chunks_total).sum();
    let done: usize = m.values().map(|p| p.chunks_done).sum();
    let skipped: usize = m.values().map(|p| p.chunks_skipped).sum();
    let docs: u64 = m.values().map(|p| p.docs).sum();
    let elapsed = m
        .values()
        .map(|p| p.started.elapsed().as_secs_f64())
        .fold(0.0, f64::max);
    let rate = if elapsed > 0.0 {
        docs as f64 / elapsed
    } else {
        0.0
    };
    let read_this_run = done.saturating_sub(skipped);
    let eta = if done >= total {
        Some(0.0)
    } else if read_this_run > 0 {
        Some(elapsed / read_this_run as f64 * (total - done) as f64)
    } else {
        None
    };
    let phase = if m.values().any(|p| p.phase == "snapshot") {
        "snapshot"
    } else {
        "stream"
    };
    let mut tasks: Vec<Json> = m
        .iter()
        .map(|(id, p)| json!({"id": id, "phase": p.phase, "chunks_done": p.chunks_done, "chunks_total": p.chunks_total, "docs_copied": p.docs}))
        .collect();
    tasks.sort_by_key(|t| t["id"].as_u64());
    Some(json!({
        "phase": phase,
        "chunks_done": done,
        "chunks_total": total,
        "chunks_skipped_from_offsets": skipped,
        "docs_copied": docs,
        "docs_per_sec": (rate * 10.0).round() / 10.0,
        "eta_seconds": eta.map(|e| (e * 10.0).round() / 10.0),
        "tasks": tasks,
    }))
}
