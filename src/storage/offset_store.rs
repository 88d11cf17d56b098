//! Source offsets (contract §2.3): the offsets topic in distributed mode, the
//! Java-compatible offsets file in standalone mode.
//!
//! Keys are the JSON array `[connector, partition]`. Java looks offsets up by
//! the exact key bytes, and compaction works on bytes too, so:
//! - reading matches keys by meaning (a canonical, key-sorted partition), so
//!   a partition written with any key order is found;
//! - writing reuses the exact bytes last seen for that partition, so our
//!   update and Java's land on the same compaction key; a partition never seen
//!   is written with its keys in Java `HashMap` iteration order, the order a
//!   Java connector's `HashMap` partition serializes in.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use connect_api::error::{ConnectError, ConnectResult};
use connect_api::record::OffsetMap;
use connect_api::OffsetReader;
use serde_json::Value as Json;

use super::file_offsets::FileOffsetStore;
use super::kafka_log::{LogError, LogRecord};
use super::log::Log;

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    partition: OffsetMap,
    key_bytes: Vec<u8>,
    offset: Option<OffsetMap>,
}

/// Offsets by connector, then by canonical partition.
#[derive(Debug, Default)]
pub struct OffsetState {
    connectors: HashMap<String, HashMap<String, Entry>>,
}

/// The canonical text of a partition: keys sorted, compact JSON.
pub fn canonical(partition: &OffsetMap) -> String {
    let mut keys: Vec<&String> = partition.keys().collect();
    keys.sort();
    let sorted: serde_json::Map<String, Json> = keys
        .into_iter()
        .map(|k| (k.clone(), partition[k].clone()))
        .collect();
    Json::Object(sorted).to_string()
}

/// Java's `String.hashCode` over UTF-16 code units.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The iteration order of a `java.util.HashMap` filled with `keys` in order:
/// by bucket (spread hash masked by the table size), insertion order within a
/// bucket.
pub fn java_hashmap_order(partition: &OffsetMap) -> OffsetMap {
    let n = partition.len();
    let mut cap = 16usize;
    while n * 4 > cap * 3 {
        cap *= 2;
    }
    let mut entries: Vec<(usize, usize, &String)> = partition
        .keys()
        .enumerate()
        .map(|(i, k)| {
            let h = java_string_hash(k);
            let spread = (h ^ ((h as u32) >> 16) as i32) as u32 as usize;
            (spread & (cap - 1), i, k)
        })
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(|(_, _, k)| (k.clone(), partition[k].clone()))
        .collect()
}

/// Key bytes for a partition never seen before.
pub fn key_bytes(connector: &str, partition: &OffsetMap) -> Vec<u8> {
    let ordered = java_hashmap_order(partition);
    Json::Array(vec![
        Json::String(connector.to_string()),
        Json::Object(ordered),
    ])
    .to_string()
    .into_bytes()
}

impl OffsetState {
    /// Applies one offsets record; keys that are not `[string, object]` are ignored.
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Ok(Json::Array(parts)) = serde_json::from_slice::<Json>(key) else {
            tracing::debug!("ignoring offsets record whose key is not a JSON array");
            return;
        };
        let [Json::String(connector), Json::Object(partition)] = parts.as_slice() else {
            return;
        };
        let offset = match value {
            None => None,
            Some(v) => match serde_json::from_slice::<Json>(v) {
                Ok(Json::Object(o)) => Some(o),
                Ok(Json::Null) => None,
                _ => {
                    tracing::warn!(%connector, "ignoring offsets record whose value is not a JSON object");
                    return;
                }
            },
        };
        self.connectors
            .entry(connector.clone())
            .or_default()
            .insert(
                canonical(partition),
                Entry {
                    partition: partition.clone(),
                    key_bytes: key.to_vec(),
                    offset,
                },
            );
    }

    pub fn get(&self, connector: &str, partition: &OffsetMap) -> Option<OffsetMap> {
        self.connectors
            .get(connector)?
            .get(&canonical(partition))?
            .offset
            .clone()
    }

    /// Partitions whose latest offset is not a tombstone.
    pub fn partitions(&self, connector: &str) -> Vec<(OffsetMap, OffsetMap)> {
        let mut out: Vec<_> = self
            .connectors
            .get(connector)
            .map(|m| {
                m.values()
                    .filter_map(|e| e.offset.clone().map(|o| (e.partition.clone(), o)))
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by_key(|(p, _)| canonical(p));
        out
    }

    fn key_for(&self, connector: &str, partition: &OffsetMap) -> Vec<u8> {
        self.connectors
            .get(connector)
            .and_then(|m| m.get(&canonical(partition)))
            .map(|e| e.key_bytes.clone())
            .unwrap_or_else(|| key_bytes(connector, partition))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OffsetStoreError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("writing the offsets file: {0}")]
    File(String),
}

enum Backend {
    Log(Log),
    File(Mutex<FileOffsetStore>),
}

/// The offsets store of a worker.
pub struct OffsetStore {
    backend: Backend,
    state: Arc<Mutex<OffsetState>>,
}

/// The state and its apply callback, created before the log.
pub fn offset_state() -> (
    Arc<Mutex<OffsetState>>,
    impl FnMut(LogRecord) + Send + 'static,
) {
    let state = Arc::new(Mutex::new(OffsetState::default()));
    let s = Arc::clone(&state);
    let apply = move |rec: LogRecord| {
        if let (Some(k), Ok(mut st)) = (rec.key.as_deref(), s.lock()) {
            st.apply(k, rec.value.as_deref());
        }
    };
    (state, apply)
}

impl OffsetStore {
    pub fn with_log(log: Log, state: Arc<Mutex<OffsetState>>) -> Self {
        OffsetStore {
            backend: Backend::Log(log),
            state,
        }
    }

    /// Opens (or creates) the standalone offsets file.
    pub fn with_file(path: &Path) -> Result<Self, OffsetStoreError> {
        let file =
            FileOffsetStore::open(path).map_err(|e| OffsetStoreError::File(e.to_string()))?;
        let mut state = OffsetState::default();
        for (k, v) in file.entries() {
            state.apply(&k, v.as_deref());
        }
        Ok(OffsetStore {
            backend: Backend::File(Mutex::new(file)),
            state: Arc::new(Mutex::new(state)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OffsetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn read_to_end(&self) -> Result<(), OffsetStoreError> {
        match &self.backend {
            Backend::Log(l) => Ok(l.read_to_end(Duration::from_secs(30)).await?),
            Backend::File(_) => Ok(()),
        }
    }

    pub fn get(&self, connector: &str, partition: &OffsetMap) -> Option<OffsetMap> {
        self.lock().get(connector, partition)
    }

    pub fn partitions(&self, connector: &str) -> Vec<(OffsetMap, OffsetMap)> {
        self.lock().partitions(connector)
    }

    /// Writes offsets (`None` = reset) and returns once they are durable.
    pub async fn set(
        &self,
        connector: &str,
        offsets: &[(OffsetMap, Option<OffsetMap>)],
    ) -> Result<(), OffsetStoreError> {
        let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = {
            let st = self.lock();
            offsets
                .iter()
                .map(|(p, o)| {
                    let v = o
                        .as_ref()
                        .map(|o| Json::Object(o.clone()).to_string().into_bytes());
                    (st.key_for(connector, p), v)
                })
                .collect()
        };
        match &self.backend {
            Backend::Log(l) => {
                l.send_all(&records).await?;
                // Apply locally too: the reader will apply the same records
                // again, which is idempotent, but tasks restarting right away
                // must not see stale offsets.
                let mut st = self.lock();
                for (k, v) in &records {
                    st.apply(k, v.as_deref());
                }
            }
            Backend::File(f) => {
                let mut file = f.lock().unwrap_or_else(|p| p.into_inner());
                file.put_all(records.clone())
                    .map_err(|e| OffsetStoreError::File(e.to_string()))?;
                let mut st = self.lock();
                for (k, v) in &records {
                    st.apply(k, v.as_deref());
                }
            }
        }
        Ok(())
    }
}

/// The offsets one connector's tasks may read.
pub struct ConnectorOffsetReader {
    pub store: Arc<OffsetStore>,
    pub connector: String,
}

#[async_trait]
impl OffsetReader for ConnectorOffsetReader {
    async fn offsets(&self, partitions: &[OffsetMap]) -> ConnectResult<Vec<Option<OffsetMap>>> {
        self.store
            .read_to_end()
            .await
            .map_err(|e| ConnectError::retriable(format!("reading offsets: {e}")))?;
        Ok(partitions
            .iter()
            .map(|p| self.store.get(&self.connector, p))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Json) -> OffsetMap {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn key_bytes_match_the_contract_example() {
        let p = map(json!({"filename": "/tmp/in.txt"}));
        assert_eq!(
            key_bytes("file-source", &p),
            b"[\"file-source\",{\"filename\":\"/tmp/in.txt\"}]".to_vec()
        );
    }

    #[test]
    fn java_hashmap_order_is_by_bucket() {
        // "b".hashCode()=98 -> bucket 2, "a"=97 -> bucket 1, "id"=3355 -> bucket 11 (3355 & 15)
        let p = map(json!({"id": 1, "b": 2, "a": 3}));
        let ordered: Vec<String> = java_hashmap_order(&p).keys().cloned().collect();
        assert_eq!(ordered, vec!["a", "b", "id"]);
        assert_eq!(java_string_hash("server"), -905826493);
    }

    #[test]
    fn lookups_match_by_meaning_and_writes_reuse_seen_bytes() {
        let mut st = OffsetState::default();
        let java_key = br#"["c",{"z":1,"a":"x"}]"#;
        st.apply(java_key, Some(br#"{"pos":5}"#));
        let p = map(json!({"a": "x", "z": 1}));
        assert_eq!(st.get("c", &p), Some(map(json!({"pos": 5}))));
        assert_eq!(st.key_for("c", &p), java_key.to_vec());
        st.apply(java_key, None);
        assert_eq!(st.get("c", &p), None);
        assert!(
            st.partitions("c").is_empty(),
            "tombstoned partitions are not listed"
        );
    }

    #[test]
    fn malformed_keys_are_ignored() {
        let mut st = OffsetState::default();
        st.apply(b"not json", Some(b"{}"));
        st.apply(br#"["c",null]"#, Some(b"{}"));
        st.apply(br#"{"a":1}"#, Some(b"{}"));
        assert!(st.partitions("c").is_empty());
    }
}
