//! The status topic (contract §2.4): connector and task states, and the topics
//! each connector has used (KIP-558).
//!
//! Status is written by the worker that runs the instance. FAILED and
//! UNASSIGNED use "safe" writes that do not overwrite a newer generation's
//! status written by another worker, so a slow worker that lost an instance in
//! a rebalance cannot mask the new owner's RUNNING.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value as Json};

use super::config_store::split_task_key;
use super::kafka_log::{LogError, LogRecord};
use super::log::Log;

/// One status entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub state: State,
    pub trace: Option<String>,
    pub worker_id: String,
    pub generation: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Unassigned,
    Running,
    Paused,
    Failed,
    Restarting,
    Stopped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unassigned => "UNASSIGNED",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Failed => "FAILED",
            State::Restarting => "RESTARTING",
            State::Stopped => "STOPPED",
        }
    }

    fn parse(s: &str) -> Option<State> {
        Some(match s {
            "UNASSIGNED" => State::Unassigned,
            "RUNNING" => State::Running,
            "PAUSED" => State::Paused,
            "FAILED" => State::Failed,
            "RESTARTING" => State::Restarting,
            "STOPPED" => State::Stopped,
            _ => return None,
        })
    }
}

/// A topic a connector has produced to or consumed from.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicStatus {
    pub topic: String,
    pub connector: String,
    pub task: u32,
    pub discover_timestamp: i64,
}

#[derive(Debug, Default)]
pub struct StatusState {
    pub connectors: HashMap<String, Status>,
    pub tasks: HashMap<(String, u32), Status>,
    pub topics: HashMap<String, BTreeMap<String, TopicStatus>>,
}

pub mod records {
    use super::*;

    pub fn connector_key(name: &str) -> Vec<u8> {
        format!("status-connector-{name}").into_bytes()
    }

    pub fn task_key(name: &str, task: u32) -> Vec<u8> {
        format!("status-task-{name}-{task}").into_bytes()
    }

    pub fn topic_key(topic: &str, connector: &str) -> Vec<u8> {
        format!("status-topic-{topic}:connector-{connector}").into_bytes()
    }

    pub fn status_value(s: &Status) -> Vec<u8> {
        json!({
            "state": s.state.as_str(),
            "trace": s.trace,
            "worker_id": s.worker_id,
            "generation": s.generation,
        })
        .to_string()
        .into_bytes()
    }

    pub fn topic_value(t: &TopicStatus) -> Vec<u8> {
        json!({"topic": {
            "name": t.topic,
            "connector": t.connector,
            "task": t.task,
            "discoverTimestamp": t.discover_timestamp,
        }})
        .to_string()
        .into_bytes()
    }
}

fn parse_status(v: &Json) -> Option<Status> {
    Some(Status {
        state: State::parse(v.get("state")?.as_str()?)?,
        trace: v.get("trace").and_then(Json::as_str).map(str::to_string),
        worker_id: v.get("worker_id")?.as_str()?.to_string(),
        generation: v.get("generation").and_then(Json::as_i64).unwrap_or(0) as i32,
    })
}

impl StatusState {
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        let key = String::from_utf8_lossy(key);
        let parsed: Option<Json> = value.and_then(|v| serde_json::from_slice(v).ok());
        if let Some(name) = key.strip_prefix("status-connector-") {
            match parsed.as_ref().and_then(parse_status) {
                Some(s) => {
                    self.connectors.insert(name.to_string(), s);
                }
                None => {
                    self.connectors.remove(name);
                }
            }
        } else if let Some(rest) = key.strip_prefix("status-task-") {
            let Some((name, n)) = split_task_key(rest) else {
                return;
            };
            match parsed.as_ref().and_then(parse_status) {
                Some(s) => {
                    let id = (name, n);
                    if let Some(cur) = self.tasks.get(&id) {
                        // A stale UNASSIGNED from a previous owner must not hide
                        // the RUNNING the new owner wrote.
                        if s.state == State::Unassigned
                            && cur.state == State::Running
                            && cur.generation >= s.generation
                        {
                            return;
                        }
                    }
                    self.tasks.insert(id, s);
                }
                None => {
                    self.tasks.remove(&(name, n));
                }
            }
        } else if let Some(rest) = key.strip_prefix("status-topic-") {
            let Some((topic, connector)) = rest.split_once(":connector-") else {
                return;
            };
            match parsed.as_ref().and_then(|v| v.get("topic")) {
                Some(t) => {
                    let ts = TopicStatus {
                        topic: topic.to_string(),
                        connector: connector.to_string(),
                        task: t.get("task").and_then(Json::as_u64).unwrap_or(0) as u32,
                        discover_timestamp: t
                            .get("discoverTimestamp")
                            .and_then(Json::as_i64)
                            .unwrap_or(0),
                    };
                    self.topics
                        .entry(connector.to_string())
                        .or_default()
                        .insert(topic.to_string(), ts);
                }
                None => {
                    if let Some(m) = self.topics.get_mut(connector) {
                        m.remove(topic);
                    }
                }
            }
        }
    }

    /// Java's safe-write rule.
    fn safe_to_write(cur: Option<&Status>, new: &Status) -> bool {
        match cur {
            None => true,
            Some(c) => c.worker_id == new.worker_id || c.generation <= new.generation,
        }
    }
}

/// The status store of a worker.
pub struct StatusStore {
    log: Log,
    state: Arc<Mutex<StatusState>>,
}

pub fn status_state() -> (
    Arc<Mutex<StatusState>>,
    impl FnMut(LogRecord) + Send + 'static,
) {
    let state = Arc::new(Mutex::new(StatusState::default()));
    let s = Arc::clone(&state);
    let apply = move |rec: LogRecord| {
        if let (Some(k), Ok(mut st)) = (rec.key.as_deref(), s.lock()) {
            st.apply(k, rec.value.as_deref());
        }
    };
    (state, apply)
}

impl StatusStore {
    pub fn new(log: Log, state: Arc<Mutex<StatusState>>) -> Self {
        StatusStore { log, state }
    }

    pub fn lock(&self) -> MutexGuard<'_, StatusState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn read_to_end(&self) -> Result<(), LogError> {
        self.log.read_to_end(Duration::from_secs(30)).await
    }

    async fn write(&self, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<(), LogError> {
        // Apply locally first so this worker's REST view is current even
        // before the write comes back through the reader.
        self.lock().apply(&key, value.as_deref());
        self.log.send(&key, value.as_deref()).await
    }

    pub async fn put_connector(&self, name: &str, status: Status) -> Result<(), LogError> {
        self.write(
            records::connector_key(name),
            Some(records::status_value(&status)),
        )
        .await
    }

    pub async fn put_connector_safe(&self, name: &str, status: Status) -> Result<(), LogError> {
        let ok = StatusState::safe_to_write(self.lock().connectors.get(name), &status);
        if ok {
            self.put_connector(name, status).await
        } else {
            Ok(())
        }
    }

    pub async fn put_task(&self, name: &str, task: u32, status: Status) -> Result<(), LogError> {
        self.write(
            records::task_key(name, task),
            Some(records::status_value(&status)),
        )
        .await
    }

    pub async fn put_task_safe(
        &self,
        name: &str,
        task: u32,
        status: Status,
    ) -> Result<(), LogError> {
        let ok =
            StatusState::safe_to_write(self.lock().tasks.get(&(name.to_string(), task)), &status);
        if ok {
            self.put_task(name, task, status).await
        } else {
            Ok(())
        }
    }

    pub async fn delete_connector(&self, name: &str) -> Result<(), LogError> {
        self.write(records::connector_key(name), None).await
    }

    pub async fn delete_task(&self, name: &str, task: u32) -> Result<(), LogError> {
        self.write(records::task_key(name, task), None).await
    }

    pub fn connector(&self, name: &str) -> Option<Status> {
        self.lock().connectors.get(name).cloned()
    }

    /// Task statuses of a connector, sorted by task id.
    pub fn tasks(&self, name: &str) -> Vec<(u32, Status)> {
        let st = self.lock();
        let mut v: Vec<(u32, Status)> = st
            .tasks
            .iter()
            .filter(|((c, _), _)| c == name)
            .map(|((_, n), s)| (*n, s.clone()))
            .collect();
        v.sort_by_key(|(n, _)| *n);
        v
    }

    pub fn topics(&self, name: &str) -> Vec<String> {
        self.lock()
            .topics
            .get(name)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn has_topic(&self, connector: &str, topic: &str) -> bool {
        self.lock()
            .topics
            .get(connector)
            .is_some_and(|m| m.contains_key(topic))
    }

    pub async fn put_topic(&self, t: TopicStatus) -> Result<(), LogError> {
        self.write(
            records::topic_key(&t.topic, &t.connector),
            Some(records::topic_value(&t)),
        )
        .await
    }

    pub async fn reset_topics(&self, connector: &str) -> Result<(), LogError> {
        for topic in self.topics(connector) {
            self.write(records::topic_key(&topic, connector), None)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(state: State, worker: &str, generation: i32) -> Status {
        Status {
            state,
            trace: None,
            worker_id: worker.into(),
            generation,
        }
    }

    #[test]
    fn status_bytes_match_the_java_worker() {
        assert_eq!(
            records::status_value(&st(State::Running, "10.0.0.1:8083", 7)),
            br#"{"state":"RUNNING","trace":null,"worker_id":"10.0.0.1:8083","generation":7}"#
                .to_vec()
        );
        let t = TopicStatus {
            topic: "lines".into(),
            connector: "file-source".into(),
            task: 0,
            discover_timestamp: 1700000000000,
        };
        assert_eq!(
            records::topic_value(&t),
            br#"{"topic":{"name":"lines","connector":"file-source","task":0,"discoverTimestamp":1700000000000}}"#.to_vec()
        );
        assert_eq!(
            records::topic_key("lines", "file-source"),
            b"status-topic-lines:connector-file-source"
        );
    }

    #[test]
    fn stale_unassigned_does_not_hide_running() {
        let mut s = StatusState::default();
        s.apply(
            b"status-task-my-conn-0",
            Some(&records::status_value(&st(State::Running, "b", 5))),
        );
        s.apply(
            b"status-task-my-conn-0",
            Some(&records::status_value(&st(State::Unassigned, "a", 4))),
        );
        assert_eq!(s.tasks[&("my-conn".to_string(), 0)].state, State::Running);
        s.apply(b"status-task-my-conn-0", None);
        assert!(s.tasks.is_empty());
    }

    #[test]
    fn safe_write_rules() {
        let cur = st(State::Running, "b", 5);
        assert!(StatusState::safe_to_write(None, &st(State::Failed, "a", 1)));
        assert!(!StatusState::safe_to_write(
            Some(&cur),
            &st(State::Unassigned, "a", 4)
        ));
        assert!(StatusState::safe_to_write(
            Some(&cur),
            &st(State::Unassigned, "b", 4)
        ));
        assert!(StatusState::safe_to_write(
            Some(&cur),
            &st(State::Unassigned, "a", 5)
        ));
    }

    #[test]
    fn topic_records_parse_and_tombstone() {
        let mut s = StatusState::default();
        let t = TopicStatus {
            topic: "a.b".into(),
            connector: "c".into(),
            task: 1,
            discover_timestamp: 5,
        };
        s.apply(
            &records::topic_key(&t.topic, "c"),
            Some(&records::topic_value(&t)),
        );
        assert!(s.topics["c"].contains_key("a.b"));
        s.apply(&records::topic_key(&t.topic, "c"), None);
        assert!(s.topics["c"].is_empty());
    }
}
