//! The config topic (contract §2.2): connector configs, task configs and their
//! commit records, target states, restart requests and cluster log levels.
//!
//! Task configs are *staged* by `task-{name}-{n}` records and only take effect
//! when the matching `commit-{name}` record arrives; a commit whose staged set
//! is incomplete (possible after compaction) marks the connector inconsistent
//! until a complete set is committed. This is what lets a leader replace a
//! connector's tasks atomically without transactions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use connect_api::config::Props;
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, watch};

use super::kafka_log::{LogError, LogRecord};
use super::log::Log;
use crate::herder::api::TargetState;
use crate::herder::signing::SessionKey;
use base64::Engine;

/// A restart request read from the config topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartRequest {
    pub connector: String,
    pub include_tasks: bool,
    pub only_failed: bool,
}

impl RestartRequest {
    /// Java's ranking: a request with more impact replaces a pending one.
    pub fn impact(&self) -> u8 {
        match (self.only_failed, self.include_tasks) {
            (true, false) => 0,
            (true, true) => 1,
            (false, false) => 2,
            (false, true) => 3,
        }
    }
}

/// Records that ask for an action rather than change state. They are acted on
/// only when read after start-up, never replayed from history.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigEvent {
    Restart(RestartRequest),
    LoggerLevel { namespace: String, level: String },
}

/// The materialized content of the config topic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterConfigState {
    /// Next offset to read (last consumed + 1); -1 before anything was read.
    pub offset: i64,
    pub connectors: BTreeMap<String, Props>,
    pub target_states: BTreeMap<String, TargetState>,
    /// Committed task configs by connector, indexed by task number.
    pub tasks: BTreeMap<String, Vec<Props>>,
    pub inconsistent: BTreeSet<String>,
    /// Bumped at every commit of a connector's task configs.
    pub task_generation: BTreeMap<String, u64>,
    /// The newest `session-key` record: the key internal requests are
    /// signed with (crate::herder::signing).
    pub session_key: Option<SessionKey>,
    staged: BTreeMap<String, BTreeMap<u32, Props>>,
}

impl ClusterConfigState {
    pub fn target_state(&self, name: &str) -> TargetState {
        self.target_states
            .get(name)
            .copied()
            .unwrap_or(TargetState::Started)
    }

    pub fn task_count(&self, name: &str) -> u32 {
        self.tasks.get(name).map_or(0, |t| t.len() as u32)
    }

    pub fn task_config(&self, name: &str, task: u32) -> Option<&Props> {
        self.tasks.get(name).and_then(|t| t.get(task as usize))
    }

    /// Applies one record; returns an action event when the record is one.
    pub fn apply(&mut self, rec: &LogRecord) -> Option<ConfigEvent> {
        self.offset = rec.offset + 1;
        let key = String::from_utf8_lossy(rec.key.as_deref()?).into_owned();
        let value: Option<Json> = match rec.value.as_deref() {
            None => None,
            Some(bytes) => match serde_json::from_slice(bytes) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::error!(%key, error = %e, "ignoring config record whose value is not JSON");
                    return None;
                }
            },
        };
        if let Some(name) = key.strip_prefix("target-state-") {
            match value {
                None => {
                    self.target_states.remove(name);
                }
                Some(v) => match parse_target_state(&v) {
                    Some(s) => {
                        self.target_states.insert(name.to_string(), s);
                    }
                    None => {
                        tracing::error!(%key, "ignoring target state record with an unknown state")
                    }
                },
            }
        } else if let Some(name) = key.strip_prefix("connector-") {
            match value.as_ref().and_then(properties) {
                Some(props) => {
                    self.connectors.insert(name.to_string(), props);
                }
                None => {
                    self.connectors.remove(name);
                    self.target_states.remove(name);
                    self.tasks.remove(name);
                    self.staged.remove(name);
                    self.inconsistent.remove(name);
                }
            }
        } else if let Some(rest) = key.strip_prefix("task-") {
            let Some((name, n)) = split_task_key(rest) else {
                tracing::error!(%key, "ignoring task config record with a malformed key");
                return None;
            };
            if let Some(props) = value.as_ref().and_then(properties) {
                self.staged.entry(name).or_default().insert(n, props);
            }
        } else if let Some(name) = key.strip_prefix("commit-") {
            let count = value
                .as_ref()
                .and_then(|v| v.get("tasks"))
                .and_then(Json::as_u64)
                .unwrap_or(0) as u32;
            self.apply_commit(name, count);
        } else if let Some(name) = key.strip_prefix("restart-connector-") {
            let v = value?;
            return Some(ConfigEvent::Restart(RestartRequest {
                connector: name.to_string(),
                include_tasks: v
                    .get("include-tasks")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
                only_failed: v
                    .get("only-failed")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
            }));
        } else if let Some(ns) = key.strip_prefix("logger-cluster-") {
            let level = value?.get("level")?.as_str()?.to_string();
            return Some(ConfigEvent::LoggerLevel {
                namespace: ns.to_string(),
                level,
            });
        } else if key == "session-key" {
            match value.as_ref().map(parse_session_key) {
                Some(Some(k)) => self.session_key = Some(k),
                Some(None) => {
                    tracing::error!("ignoring a session-key record that lacks key, algorithm or creation-timestamp")
                }
                // Java ignores a null session key too.
                None => {}
            }
        } else if key.starts_with("tasks-fencing-") {
            // Exactly-once source fencing is not implemented; these records
            // are understood and deliberately ignored.
        } else {
            tracing::warn!(%key, "ignoring config record with an unknown key");
        }
        None
    }

    fn apply_commit(&mut self, name: &str, count: u32) {
        if !self.connectors.contains_key(name) {
            // Java ignores a commit for a connector with no config.
            self.staged.remove(name);
            return;
        }
        let staged = self.staged.remove(name).unwrap_or_default();
        let previous = self.tasks.remove(name).unwrap_or_default();
        let mut tasks = Vec::with_capacity(count as usize);
        let mut complete = true;
        for n in 0..count {
            match staged.get(&n).or_else(|| previous.get(n as usize)) {
                Some(p) => tasks.push(p.clone()),
                None => {
                    complete = false;
                    break;
                }
            }
        }
        if complete {
            self.inconsistent.remove(name);
            self.tasks.insert(name.to_string(), tasks);
        } else {
            tracing::warn!(connector = name, "task config commit is missing staged task configs; the connector's tasks stay stopped until new task configs are committed");
            self.inconsistent.insert(name.to_string());
        }
        *self.task_generation.entry(name.to_string()).or_default() += 1;
    }
}

/// `task-{name}-{n}` → (name, n): the last `-` separates the task number, so
/// connector names may contain `-`.
pub fn split_task_key(rest: &str) -> Option<(String, u32)> {
    let (name, n) = rest.rsplit_once('-')?;
    Some((name.to_string(), n.parse().ok()?))
}

fn properties(v: &Json) -> Option<Props> {
    let obj = v.get("properties")?.as_object()?;
    Some(
        obj.iter()
            .map(|(k, v)| {
                let s = match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect(),
    )
}

fn parse_session_key(v: &Json) -> Option<SessionKey> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(v.get("key")?.as_str()?)
        .ok()?;
    Some(SessionKey {
        key,
        algorithm: v.get("algorithm")?.as_str()?.to_string(),
        created_ms: v.get("creation-timestamp")?.as_i64()?,
    })
}

fn parse_target_state(v: &Json) -> Option<TargetState> {
    let s = v
        .get("state.v2")
        .and_then(Json::as_str)
        .or_else(|| v.get("state").and_then(Json::as_str))?;
    match s {
        "STARTED" => Some(TargetState::Started),
        "PAUSED" => Some(TargetState::Paused),
        "STOPPED" => Some(TargetState::Stopped),
        _ => None,
    }
}

/// Serialized records, byte-compatible with the Java worker.
pub mod records {
    use super::*;

    fn bytes(v: &Json) -> Vec<u8> {
        // serde_json writes compact JSON with keys in insertion order, which is
        // the order Java's struct schemas give.
        serde_json::to_vec(v).unwrap_or_default()
    }

    pub fn connector_key(name: &str) -> Vec<u8> {
        format!("connector-{name}").into_bytes()
    }
    pub fn properties_value(props: &Props) -> Vec<u8> {
        bytes(&json!({ "properties": props }))
    }
    pub fn target_state_key(name: &str) -> Vec<u8> {
        format!("target-state-{name}").into_bytes()
    }
    pub fn target_state_value(state: TargetState) -> Vec<u8> {
        // STOPPED is written as PAUSED in `state` for readers older than KIP-875.
        let (v1, v2) = match state {
            TargetState::Started => ("STARTED", "STARTED"),
            TargetState::Paused => ("PAUSED", "PAUSED"),
            TargetState::Stopped => ("PAUSED", "STOPPED"),
        };
        bytes(&json!({ "state": v1, "state.v2": v2 }))
    }
    pub fn task_key(name: &str, task: u32) -> Vec<u8> {
        format!("task-{name}-{task}").into_bytes()
    }
    pub fn commit_key(name: &str) -> Vec<u8> {
        format!("commit-{name}").into_bytes()
    }
    pub fn commit_value(tasks: u32) -> Vec<u8> {
        bytes(&json!({ "tasks": tasks }))
    }
    pub fn restart_key(name: &str) -> Vec<u8> {
        format!("restart-connector-{name}").into_bytes()
    }
    pub fn restart_value(include_tasks: bool, only_failed: bool) -> Vec<u8> {
        bytes(&json!({ "include-tasks": include_tasks, "only-failed": only_failed }))
    }
    pub fn logger_key(namespace: &str) -> Vec<u8> {
        format!("logger-cluster-{namespace}").into_bytes()
    }
    pub fn logger_value(level: &str) -> Vec<u8> {
        bytes(&json!({ "level": level }))
    }
    pub const SESSION_KEY_KEY: &[u8] = b"session-key";
    pub fn session_key_value(key: &SessionKey) -> Vec<u8> {
        bytes(&json!({
            "key": base64::engine::general_purpose::STANDARD.encode(&key.key),
            "algorithm": key.algorithm,
            "creation-timestamp": key.created_ms,
        }))
    }
}

/// The config topic: a log plus its materialized state.
pub struct ConfigStore {
    log: Log,
    state: Arc<Mutex<ClusterConfigState>>,
    changed: watch::Receiver<u64>,
}

/// Builds the apply callback shared by the Kafka and memory logs. Events are
/// forwarded only after `started` is set, so history is never replayed.
pub struct ConfigApplier {
    state: Arc<Mutex<ClusterConfigState>>,
    changed: watch::Sender<u64>,
    events: mpsc::Sender<ConfigEvent>,
    started: Arc<std::sync::atomic::AtomicBool>,
}

impl ConfigApplier {
    pub fn apply(&self, rec: LogRecord) {
        let event = match self.state.lock() {
            Ok(mut s) => s.apply(&rec),
            Err(_) => return,
        };
        if let Some(ev) = event {
            if self.started.load(std::sync::atomic::Ordering::Acquire) {
                // Bounded: a burst of restart requests beyond the buffer is
                // dropped with a warning rather than blocking the reader.
                if self.events.try_send(ev).is_err() {
                    tracing::warn!(
                        "config event queue full; dropping a restart or log-level request"
                    );
                }
            }
        }
        self.changed.send_modify(|v| *v += 1);
    }
}

/// Handles the store gives its owner.
pub struct ConfigStoreParts {
    pub applier: ConfigApplier,
    pub state: Arc<Mutex<ClusterConfigState>>,
    pub changed: watch::Receiver<u64>,
    pub events: mpsc::Receiver<ConfigEvent>,
    pub started: Arc<std::sync::atomic::AtomicBool>,
}

/// Creates the shared state and the apply callback before the log exists.
pub fn config_state() -> ConfigStoreParts {
    let state = Arc::new(Mutex::new(ClusterConfigState {
        offset: -1,
        ..Default::default()
    }));
    let (changed_tx, changed) = watch::channel(0);
    let (events_tx, events) = mpsc::channel(1024);
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    ConfigStoreParts {
        applier: ConfigApplier {
            state: Arc::clone(&state),
            changed: changed_tx,
            events: events_tx,
            started: Arc::clone(&started),
        },
        state,
        changed,
        events,
        started,
    }
}

const READ_TIMEOUT: Duration = Duration::from_secs(30);

impl ConfigStore {
    pub fn new(
        log: Log,
        state: Arc<Mutex<ClusterConfigState>>,
        changed: watch::Receiver<u64>,
    ) -> Self {
        ConfigStore {
            log,
            state,
            changed,
        }
    }

    pub fn snapshot(&self) -> ClusterConfigState {
        self.lock().clone()
    }

    pub fn lock(&self) -> MutexGuard<'_, ClusterConfigState> {
        // A poisoned lock means a panic while applying a record; the state is
        // still the last fully applied one, so keep using it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.clone()
    }

    pub async fn read_to_end(&self) -> Result<(), LogError> {
        self.log.read_to_end(READ_TIMEOUT).await
    }

    /// Writes a connector config, preceded by its target state when given.
    pub async fn put_connector(
        &self,
        name: &str,
        props: &Props,
        target: Option<TargetState>,
    ) -> Result<(), LogError> {
        let mut batch = Vec::new();
        if let Some(t) = target {
            batch.push((
                records::target_state_key(name),
                Some(records::target_state_value(t)),
            ));
        }
        batch.push((
            records::connector_key(name),
            Some(records::properties_value(props)),
        ));
        self.log.send_all(&batch).await?;
        self.read_to_end().await
    }

    pub async fn remove_connector(&self, name: &str) -> Result<(), LogError> {
        self.log
            .send_all(&[
                (records::connector_key(name), None),
                (records::target_state_key(name), None),
            ])
            .await?;
        self.read_to_end().await
    }

    /// The task-config write sequence of contract §2.2.
    pub async fn put_task_configs(&self, name: &str, tasks: &[Props]) -> Result<(), LogError> {
        self.read_to_end().await?;
        let batch: Vec<_> = tasks
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    records::task_key(name, i as u32),
                    Some(records::properties_value(p)),
                )
            })
            .collect();
        if !batch.is_empty() {
            self.log.send_all(&batch).await?;
            self.read_to_end().await?;
        }
        self.log
            .send(
                &records::commit_key(name),
                Some(&records::commit_value(tasks.len() as u32)),
            )
            .await?;
        self.read_to_end().await
    }

    pub async fn put_target_state(&self, name: &str, state: TargetState) -> Result<(), LogError> {
        self.log
            .send(
                &records::target_state_key(name),
                Some(&records::target_state_value(state)),
            )
            .await?;
        self.read_to_end().await
    }

    pub async fn put_restart_request(&self, req: &RestartRequest) -> Result<(), LogError> {
        self.log
            .send(
                &records::restart_key(&req.connector),
                Some(&records::restart_value(req.include_tasks, req.only_failed)),
            )
            .await
    }

    /// Writes a new session key (leader only) and reads it back.
    pub async fn put_session_key(&self, key: &SessionKey) -> Result<(), LogError> {
        self.log
            .send(
                records::SESSION_KEY_KEY,
                Some(&records::session_key_value(key)),
            )
            .await?;
        self.read_to_end().await
    }

    pub async fn put_logger_level(&self, namespace: &str, level: &str) -> Result<(), LogError> {
        self.log
            .send(
                &records::logger_key(namespace),
                Some(&records::logger_value(level)),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(offset: i64, key: &str, value: Option<&[u8]>) -> LogRecord {
        LogRecord {
            partition: 0,
            offset,
            key: Some(key.as_bytes().to_vec()),
            value: value.map(<[u8]>::to_vec),
        }
    }

    fn props(kv: &[(&str, &str)]) -> Props {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn record_bytes_match_the_java_worker() {
        assert_eq!(records::commit_value(1), b"{\"tasks\":1}");
        assert_eq!(
            records::target_state_value(TargetState::Stopped),
            b"{\"state\":\"PAUSED\",\"state.v2\":\"STOPPED\"}"
        );
        assert_eq!(
            records::target_state_value(TargetState::Started),
            b"{\"state\":\"STARTED\",\"state.v2\":\"STARTED\"}"
        );
        assert_eq!(
            records::restart_value(true, false),
            b"{\"include-tasks\":true,\"only-failed\":false}"
        );
        assert_eq!(
            records::properties_value(&props(&[("name", "a"), ("connector.class", "X")])),
            b"{\"properties\":{\"connector.class\":\"X\",\"name\":\"a\"}}"
        );
    }

    #[test]
    fn session_key_records_round_trip_in_the_java_workers_format() {
        let key = SessionKey {
            key: vec![1, 2, 3, 250],
            algorithm: "HmacSHA256".into(),
            created_ms: 1_700_000_000_000,
        };
        assert_eq!(
            records::session_key_value(&key),
            br#"{"key":"AQID+g==","algorithm":"HmacSHA256","creation-timestamp":1700000000000}"#
        );
        let mut s = ClusterConfigState::default();
        s.apply(&rec(
            0,
            "session-key",
            Some(&records::session_key_value(&key)),
        ));
        assert_eq!(s.session_key.as_ref(), Some(&key));
        // A malformed record and a tombstone leave the key in place.
        s.apply(&rec(1, "session-key", Some(br#"{"key":"AQID+g=="}"#)));
        s.apply(&rec(2, "session-key", None));
        assert_eq!(s.session_key, Some(key));
    }

    #[test]
    fn task_configs_apply_only_at_commit_and_names_may_contain_dashes() {
        let mut s = ClusterConfigState::default();
        s.apply(&rec(
            0,
            "connector-my-conn",
            Some(&records::properties_value(&props(&[("a", "1")]))),
        ));
        s.apply(&rec(
            1,
            "task-my-conn-0",
            Some(&records::properties_value(&props(&[("t", "0")]))),
        ));
        s.apply(&rec(
            2,
            "task-my-conn-1",
            Some(&records::properties_value(&props(&[("t", "1")]))),
        ));
        assert_eq!(
            s.task_count("my-conn"),
            0,
            "staged configs are not visible before the commit"
        );
        s.apply(&rec(3, "commit-my-conn", Some(&records::commit_value(2))));
        assert_eq!(s.task_count("my-conn"), 2);
        assert_eq!(s.task_config("my-conn", 1), Some(&props(&[("t", "1")])));
        assert_eq!(s.offset, 4);
    }

    #[test]
    fn incomplete_commit_marks_connector_inconsistent() {
        let mut s = ClusterConfigState::default();
        s.apply(&rec(
            0,
            "connector-c",
            Some(&records::properties_value(&props(&[]))),
        ));
        s.apply(&rec(
            1,
            "task-c-1",
            Some(&records::properties_value(&props(&[]))),
        ));
        s.apply(&rec(2, "commit-c", Some(&records::commit_value(2))));
        assert!(s.inconsistent.contains("c"));
        assert_eq!(s.task_count("c"), 0);
    }

    #[test]
    fn delete_and_target_state_v2() {
        let mut s = ClusterConfigState::default();
        s.apply(&rec(
            0,
            "connector-c",
            Some(&records::properties_value(&props(&[]))),
        ));
        s.apply(&rec(
            1,
            "target-state-c",
            Some(&records::target_state_value(TargetState::Stopped)),
        ));
        assert_eq!(s.target_state("c"), TargetState::Stopped);
        s.apply(&rec(2, "target-state-c", Some(b"{\"state\":\"PAUSED\"}")));
        assert_eq!(
            s.target_state("c"),
            TargetState::Paused,
            "v1-only records are read"
        );
        s.apply(&rec(3, "connector-c", None));
        assert!(!s.connectors.contains_key("c"));
        assert_eq!(s.target_state("c"), TargetState::Started);
    }

    #[test]
    fn restart_and_logger_records_are_events() {
        let mut s = ClusterConfigState::default();
        assert_eq!(
            s.apply(&rec(
                0,
                "restart-connector-c",
                Some(&records::restart_value(true, true))
            )),
            Some(ConfigEvent::Restart(RestartRequest {
                connector: "c".into(),
                include_tasks: true,
                only_failed: true
            }))
        );
        assert!(matches!(
            s.apply(&rec(
                1,
                "logger-cluster-org.x",
                Some(&records::logger_value("DEBUG"))
            )),
            Some(ConfigEvent::LoggerLevel { .. })
        ));
    }
}
