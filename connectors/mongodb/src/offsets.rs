//! Source partitions and offsets, as stored in Connect's offsets topic.
//!
//! | what | partition | offset |
//! |---|---|---|
//! | change stream | `{"ns": <offset.partition.name or hosts/db.coll>}` | `{"_id": "<resume token JSON>", "gen": g}` (+ `"heartbeat": "true"`) |
//! | snapshot plan | `{"ns": <same>, "snapshot": "plan"}` | `{"plan": "<plan JSON>", "gen": g}` |
//! | a task's snapshot run | `{"ns": <same>, "snapshot": "task-<i>"}` | `{"gen": g, "chunks": "<n,n,...>"}` |
//! | one chunk | `{"ns": "db.coll", "chunk": "<n>"}` | `{"gen": g, "done": "false", "copy": "true"}` while copying, `{"gen": g, "done": "true", "high": "<secs>:<inc>"}` once finished |
//!
//! The stream offset keeps the official connector's `_id` field (a resume
//! token as a JSON string), so an offset written by either can be read by a
//! human the same way. `gen` is the snapshot generation the offset belongs
//! to: a re-snapshot after an expired token starts generation g+1, which
//! supersedes the older stream offset and chunk offsets without deleting them.

use connect_api::record::OffsetMap;
use serde_json::{json, Value as Json};

fn map(v: Json) -> OffsetMap {
    match v {
        Json::Object(m) => m,
        _ => OffsetMap::new(),
    }
}

pub fn stream_partition(name: &str) -> OffsetMap {
    map(json!({"ns": name}))
}

pub fn plan_partition(name: &str) -> OffsetMap {
    map(json!({"ns": name, "snapshot": "plan"}))
}

/// Written (and committed) by a task before it emits any chunk record, so
/// that a later run knows which chunks may have been partly published.
pub fn task_partition(name: &str, index: u32) -> OffsetMap {
    map(json!({"ns": name, "snapshot": format!("task-{index}")}))
}

pub fn task_offset(gen: u64, chunks: &str) -> OffsetMap {
    map(json!({"gen": gen, "chunks": chunks}))
}

pub fn chunk_partition(db: &str, coll: &str, n: usize) -> OffsetMap {
    map(json!({"ns": format!("{db}.{coll}"), "chunk": n.to_string()}))
}

pub fn stream_offset(token_json: &str, gen: u64, heartbeat: bool) -> OffsetMap {
    let mut m = map(json!({"_id": token_json, "gen": gen}));
    if heartbeat {
        m.insert("heartbeat".into(), json!("true"));
    }
    m
}

pub fn plan_offset(plan_json: &str, gen: u64) -> OffsetMap {
    map(json!({"plan": plan_json, "gen": gen}))
}

pub fn chunk_copying(gen: u64) -> OffsetMap {
    map(json!({"gen": gen, "done": "false", "copy": "true"}))
}

pub fn chunk_done(gen: u64, high: Option<&str>) -> OffsetMap {
    let mut m = map(json!({"gen": gen, "done": "true"}));
    if let Some(h) = high {
        m.insert("high".into(), json!(h));
    }
    m
}

pub fn gen_of(o: &OffsetMap) -> u64 {
    o.get("gen").and_then(Json::as_u64).unwrap_or(0)
}

/// `Some(high)` when the chunk offset records a finished chunk of `gen`
/// (`high` is empty for at-least-once chunks).
pub fn chunk_finished(o: &OffsetMap, gen: u64) -> Option<String> {
    (gen_of(o) == gen && o.get("done").and_then(Json::as_str) == Some("true")).then(|| {
        o.get("high")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let o = chunk_done(3, Some("10:2"));
        assert_eq!(chunk_finished(&o, 3).as_deref(), Some("10:2"));
        assert_eq!(chunk_finished(&o, 4), None);
        assert_eq!(chunk_finished(&chunk_copying(3), 3), None);
        let s = stream_offset("{\"_data\":\"82\"}", 1, true);
        assert_eq!(gen_of(&s), 1);
        assert_eq!(s.get("heartbeat"), Some(&json!("true")));
        assert_eq!(
            chunk_partition("a", "b", 7),
            map(json!({"ns": "a.b", "chunk": "7"}))
        );
    }
}
