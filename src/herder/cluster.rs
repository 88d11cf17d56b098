//! The herder: the one owner of connector lifecycle decisions on a worker
//! (Java's `DistributedHerder` / `StandaloneHerder`, as one type).
//!
//! # Design
//!
//! State lives in the stores (config, status, offsets); the herder keeps only
//! what it needs to notice changes. Every mutation — a REST write or a
//! reconciliation pass — runs under one async mutex (`op`), the equivalent of
//! Java's single herder thread, so two requests can never interleave their
//! config-topic write sequences.
//!
//! A background loop reconciles whenever the config topic changes, the group
//! assigns work, a connector asks for new task configs, or a second passes:
//! it compares what *should* run here (the assignment ∩ the config snapshot,
//! with target states) with what *does* run, and starts, stops, restarts or
//! re-targets instances until they agree. Because reconciliation only reads
//! the stores, it is idempotent, and a missed notification is healed by the
//! next pass.
//!
//! Membership is pluggable: standalone owns everything; distributed mode owns
//! what the Kafka group leader assigned (see `crate::group`). Only the leader
//! writes the config topic's connector and task records: on a follower, a
//! leader-only REST write fails with [`HerderError::request_target`], which
//! the REST layer forwards to the leader (a restart that only the owner of a
//! connector or task can do goes to the leader, then to the owner), and task
//! configs that a follower's connector generates go to the leader's internal
//! endpoint, signed with the session key the leader keeps fresh
//! (`super::signing`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use connect_api::config::Props;
use connect_api::connector::ConnectorKind;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::api::*;
use super::connector_config;
use super::signing::{verify, RequestSignature, SessionKey, SigningSettings};
use crate::group::assignor::Owners;
use crate::logging::Loggers;
use crate::plugins::Plugins;
use crate::rest::client::{send_to_worker, TASK_CONFIGS_TIMEOUT};
use crate::storage::config_store::{ConfigEvent, ConfigStore, RestartRequest};
use crate::storage::offset_store::OffsetStore;
use crate::storage::status_store::{State, StatusStore};
use crate::worker::{sink_task, TaskId, Worker};

/// What this worker owns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ownership {
    /// `None` means "everything" (standalone).
    pub connectors: Option<BTreeSet<String>>,
    pub tasks: Option<BTreeSet<TaskId>>,
    pub leader: bool,
    pub leader_url: String,
    pub generation: i32,
    /// The group negotiated the `sessioned` protocol: internal requests
    /// are signed (crate::herder::signing).
    pub signed: bool,
    /// On the leader: who runs every connector and task, and their URLs,
    /// for requests only the owner can answer.
    pub owners: Option<Arc<Owners>>,
}

impl Ownership {
    pub fn everything() -> Self {
        Ownership {
            connectors: None,
            tasks: None,
            leader: true,
            leader_url: String::new(),
            generation: 0,
            signed: false,
            owners: None,
        }
    }

    fn owns_connector(&self, name: &str) -> bool {
        self.connectors.as_ref().is_none_or(|c| c.contains(name))
    }

    fn owns_task(&self, id: &TaskId) -> bool {
        self.tasks.as_ref().is_none_or(|t| t.contains(id))
    }
}

/// What a running instance was started with, to notice changes.
#[derive(Debug, Clone, PartialEq)]
struct Started {
    connector_config: Props,
    task_config: Props,
    task_generation: u64,
}

#[derive(Default)]
struct HerderState {
    connectors: HashMap<String, Props>,
    tasks: HashMap<TaskId, Started>,
    /// Connector config used the last time this herder generated task configs.
    generated_from: HashMap<String, Props>,
    /// Target state each running connector was last brought to.
    targets: HashMap<String, TargetState>,
    reconfigure: BTreeSet<String>,
}

/// Everything the herder is built from.
pub struct HerderParts {
    pub worker: Arc<Worker>,
    pub config: Arc<ConfigStore>,
    pub offsets: Arc<OffsetStore>,
    pub status: Arc<StatusStore>,
    pub loggers: Arc<Loggers>,
    pub info: ServerInfo,
    pub topic_tracking: bool,
    pub topic_tracking_reset: bool,
    pub signing: SigningSettings,
}

pub struct ConnectHerder {
    worker: Arc<Worker>,
    config: Arc<ConfigStore>,
    offsets: Arc<OffsetStore>,
    status: Arc<StatusStore>,
    loggers: Arc<Loggers>,
    plugins: &'static Plugins,
    info: ServerInfo,
    topic_tracking: bool,
    topic_tracking_reset: bool,
    signing: SigningSettings,
    op: tokio::sync::Mutex<HerderState>,
    ownership: Mutex<Option<Ownership>>,
    ownership_changed: watch::Sender<u64>,
    started: AtomicBool,
    /// Asks the group member to rejoin (new/deleted connector, task commit).
    rejoin: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn store_err(e: impl std::fmt::Display) -> HerderError {
    HerderError::internal(format!(
        "Failed to write to config topic; this may be due to a transient error and the request can be safely retried: {e}"
    ))
}

impl ConnectHerder {
    pub fn new(parts: HerderParts) -> Arc<ConnectHerder> {
        let (ownership_changed, _) = watch::channel(0);
        Arc::new(ConnectHerder {
            worker: parts.worker,
            config: parts.config,
            offsets: parts.offsets,
            status: parts.status,
            loggers: parts.loggers,
            plugins: Plugins::get(),
            info: parts.info,
            topic_tracking: parts.topic_tracking,
            topic_tracking_reset: parts.topic_tracking_reset,
            signing: parts.signing,
            op: tokio::sync::Mutex::new(HerderState::default()),
            ownership: Mutex::new(None),
            ownership_changed,
            started: AtomicBool::new(false),
            rejoin: Mutex::new(None),
        })
    }

    pub fn config_store(&self) -> &Arc<ConfigStore> {
        &self.config
    }

    pub fn set_rejoin_hook(&self, hook: Arc<dyn Fn() + Send + Sync>) {
        *lock(&self.rejoin) = Some(hook);
    }

    fn request_rejoin(&self) {
        if let Some(h) = lock(&self.rejoin).clone() {
            h();
        }
    }

    /// Installs a new assignment (from the group, or "everything").
    pub fn set_ownership(&self, o: Ownership) {
        self.worker.set_generation(o.generation);
        *lock(&self.ownership) = Some(o);
        self.ownership_changed.send_modify(|v| *v += 1);
    }

    pub fn ownership(&self) -> Option<Ownership> {
        lock(&self.ownership).clone()
    }

    pub fn mark_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    fn require_leader(&self) -> HerderResult<()> {
        match lock(&self.ownership).as_ref() {
            Some(o) if o.leader => Ok(()),
            Some(o) if !o.leader_url.is_empty() => Err(HerderError::request_target(&o.leader_url)),
            _ => Err(HerderError::conflict(
                "Cannot complete request momentarily due to no known leader URL, likely because a rebalance was underway.",
            )),
        }
    }

    /// The leader writes a session key when there is none or the current
    /// one must be rotated; followers read it from the config topic.
    async fn ensure_session_key(&self) {
        let now = now_ms();
        let current = self.config.lock().session_key.clone();
        if current.is_some_and(|k| !k.needs_rotation(&self.signing, now)) {
            return;
        }
        match SessionKey::generate(&self.signing, now) {
            Ok(key) => {
                if let Err(e) = self.config.put_session_key(&key).await {
                    tracing::error!(error = %e, "writing a new session key failed; will retry");
                } else {
                    tracing::info!(algorithm = %key.algorithm, "wrote a new session key for internal requests");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot generate a session key"),
        }
    }

    /// A follower's new task configs go to the leader, which alone writes
    /// the config topic (Java's `POST /connectors/{name}/tasks`), signed when
    /// the group uses the `sessioned` protocol.
    async fn send_task_configs_to_leader(
        &self,
        name: &str,
        configs: &[Props],
        own: &Ownership,
    ) -> Result<(), String> {
        if own.leader_url.is_empty() {
            return Err("no known leader URL (a rebalance is under way)".into());
        }
        let body = serde_json::to_vec(configs).map_err(|e| e.to_string())?;
        let mut headers = vec![("content-type", "application/json".to_string())];
        if own.signed {
            let key =
                self.config.lock().session_key.clone().ok_or(
                    "no session key read from the config topic yet; the leader writes one",
                )?;
            for (h, v) in key.sign(&self.signing.signature_algorithm, &body)? {
                headers.push((h, v));
            }
        }
        let url = format!(
            "{}/connectors/{}/tasks?forward=true",
            own.leader_url.trim_end_matches('/'),
            crate::rest::routes::encode_segment(name)
        );
        let resp = send_to_worker(
            hyper::Method::POST,
            &url,
            Some(body),
            &headers,
            TASK_CONFIGS_TIMEOUT,
        )
        .await?;
        if (200..300).contains(&resp.status) {
            Ok(())
        } else {
            Err(format!(
                "POST {url} answered {}: {}",
                resp.status,
                resp.message()
            ))
        }
    }

    fn kind_of(&self, props: &Props) -> Option<ConnectorKind> {
        props
            .get("connector.class")
            .and_then(|c| self.plugins.connector(c))
            .map(|p| p.kind)
    }

    fn type_of(&self, props: &Props) -> String {
        self.kind_of(props)
            .map_or("unknown", ConnectorKind::as_str)
            .to_string()
    }

    fn snapshot_connector(&self, name: &str) -> HerderResult<Props> {
        self.config
            .lock()
            .connectors
            .get(name)
            .cloned()
            .ok_or_else(|| HerderError::not_found(format!("Connector {name} not found")))
    }

    fn info_of(&self, name: &str) -> HerderResult<ConnectorInfo> {
        let snap = self.config.lock();
        let config = snap
            .connectors
            .get(name)
            .cloned()
            .ok_or_else(|| HerderError::not_found(format!("Connector {name} not found")))?;
        let tasks = (0..snap.task_count(name))
            .map(|task| ConnectorTaskId {
                connector: name.to_string(),
                task,
            })
            .collect();
        drop(snap);
        Ok(ConnectorInfo {
            name: name.to_string(),
            kind: self.type_of(&config),
            config,
            tasks,
        })
    }

    // ---------------------------------------------------------------- loop

    /// Runs the reconcile loop until cancelled, then stops every instance.
    pub async fn run(
        self: Arc<Self>,
        mut reconfigure: mpsc::Receiver<String>,
        mut events: mpsc::Receiver<ConfigEvent>,
        cancel: CancellationToken,
    ) {
        let mut config_changed = self.config.subscribe();
        let mut owner_changed = self.ownership_changed.subscribe();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                r = config_changed.changed() => if r.is_err() { break },
                r = owner_changed.changed() => if r.is_err() { break },
                Some(name) = reconfigure.recv() => {
                    self.op.lock().await.reconfigure.insert(name);
                }
                Some(ev) = events.recv() => self.handle_event(ev).await,
                _ = tick.tick() => {}
            }
            self.reconcile().await;
        }
        self.worker.shutdown().await;
    }

    async fn handle_event(&self, ev: ConfigEvent) {
        match ev {
            ConfigEvent::Restart(req) => self.execute_restart(&req).await,
            ConfigEvent::LoggerLevel { namespace, level } => {
                if let Err(e) = self.loggers.set(&namespace, &level) {
                    tracing::warn!(%namespace, %level, error = %e, "ignoring cluster log level");
                }
            }
        }
    }

    /// Brings the running instances in line with the config and ownership.
    pub async fn reconcile(&self) {
        let Some(own) = self.ownership() else { return };
        let mut st = self.op.lock().await;
        if own.leader && own.signed {
            self.ensure_session_key().await;
        }
        let snap = self.config.snapshot();

        // Connectors.
        let running: Vec<String> = st.connectors.keys().cloned().collect();
        for name in running {
            let keep = own.owns_connector(&name) && snap.connectors.contains_key(&name);
            let changed = snap.connectors.get(&name) != st.connectors.get(&name);
            if !keep || changed {
                let deleted = !snap.connectors.contains_key(&name);
                self.worker.stop_connector(&name, !deleted).await;
                st.connectors.remove(&name);
                st.targets.remove(&name);
                if deleted {
                    st.generated_from.remove(&name);
                }
            }
        }
        for (name, props) in &snap.connectors {
            if !own.owns_connector(name) {
                continue;
            }
            let target = snap.target_state(name);
            // Resuming asks the connector for task configs again (Java: the
            // owner re-requests them), which is how a STOPPED connector gets
            // its tasks back.
            if st
                .targets
                .insert(name.clone(), target)
                .is_some_and(|prev| prev != target)
                && target == TargetState::Started
            {
                st.reconfigure.insert(name.clone());
            }
            if st.connectors.contains_key(name) {
                self.worker.set_connector_target(name, props, target).await;
            } else {
                self.worker.start_connector(name, props, target).await;
                st.connectors.insert(name.clone(), props.clone());
            }
            // Task configs: generated by the connector's owner, written by the leader.
            if target == TargetState::Started {
                let requested = st.reconfigure.remove(name);
                let config_changed = st.generated_from.get(name) != Some(props);
                if requested || config_changed {
                    if let Some(result) = self.worker.task_configs(name, props).await {
                        match result {
                            Ok(configs) => {
                                let committed = snap.tasks.get(name).cloned().unwrap_or_default();
                                let differs =
                                    configs != committed || snap.inconsistent.contains(name);
                                let must_write = differs
                                    || (config_changed && st.generated_from.contains_key(name));
                                if must_write {
                                    if own.leader {
                                        if let Err(e) =
                                            self.config.put_task_configs(name, &configs).await
                                        {
                                            tracing::error!(connector = %name, error = %e, "writing task configs failed; will retry");
                                            st.reconfigure.insert(name.clone());
                                            continue;
                                        }
                                        self.request_rejoin();
                                    } else if let Err(e) =
                                        self.send_task_configs_to_leader(name, &configs, &own).await
                                    {
                                        tracing::warn!(connector = %name, leader = %own.leader_url, error = %e, "sending new task configs to the leader failed; will retry");
                                        st.reconfigure.insert(name.clone());
                                        continue;
                                    }
                                }
                                st.generated_from.insert(name.clone(), props.clone());
                            }
                            Err(e) => {
                                tracing::error!(connector = %name, error = %e, "connector failed to generate task configs");
                                self.worker.report_connector(
                                    name,
                                    State::Failed,
                                    Some(crate::worker::trace_of(&e)),
                                );
                                st.generated_from.insert(name.clone(), props.clone());
                            }
                        }
                    }
                }
            }
        }

        // Tasks: what should run here, with which configs.
        let snap = self.config.snapshot();
        let mut wanted: BTreeMap<TaskId, Started> = BTreeMap::new();
        for (name, tasks) in &snap.tasks {
            if snap.inconsistent.contains(name) || snap.target_state(name) == TargetState::Stopped {
                continue;
            }
            let Some(cprops) = snap.connectors.get(name) else {
                continue;
            };
            for (i, t) in tasks.iter().enumerate() {
                let id = TaskId {
                    connector: name.clone(),
                    task: i as u32,
                };
                if own.owns_task(&id) {
                    wanted.insert(
                        id,
                        Started {
                            connector_config: cprops.clone(),
                            task_config: t.clone(),
                            task_generation: snap.task_generation.get(name).copied().unwrap_or(0),
                        },
                    );
                }
            }
        }
        let to_stop: Vec<TaskId> = st
            .tasks
            .iter()
            .filter(|(id, s)| wanted.get(*id) != Some(*s))
            .map(|(id, _)| id.clone())
            .collect();
        if !to_stop.is_empty() {
            // Tasks revoked from this worker report UNASSIGNED; tasks that are
            // re-configured or whose task set shrank or was deleted do not
            // (their status moves on, or the leader tombstones it).
            let (restart, gone): (Vec<TaskId>, Vec<TaskId>) =
                to_stop.into_iter().partition(|id| wanted.contains_key(id));
            let (removed, revoked): (Vec<TaskId>, Vec<TaskId>) = gone
                .into_iter()
                .partition(|id| id.task >= snap.task_count(&id.connector));
            self.worker.stop_tasks(&revoked, true).await;
            self.worker.stop_tasks(&removed, false).await;
            self.worker.stop_tasks(&restart, false).await;
            for id in revoked.iter().chain(removed.iter()).chain(restart.iter()) {
                st.tasks.remove(id);
            }
        }
        for (id, s) in wanted {
            let target = snap.target_state(&id.connector);
            match st.tasks.entry(id) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    self.worker.set_task_target(e.key(), target)
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    self.worker.start_task(
                        e.key().clone(),
                        &s.task_config,
                        &s.connector_config,
                        target,
                    );
                    e.insert(s);
                }
            }
        }

        if own.leader {
            self.cleanup_statuses(&snap).await;
        }
    }

    /// Leader duty: tombstone statuses of deleted connectors and removed tasks.
    async fn cleanup_statuses(&self, snap: &crate::storage::config_store::ClusterConfigState) {
        let stale: Vec<(String, Option<u32>)> = {
            let st = self.status.lock();
            let mut v: Vec<(String, Option<u32>)> = st
                .connectors
                .keys()
                .filter(|n| !snap.connectors.contains_key(*n))
                .map(|n| (n.clone(), None))
                .collect();
            v.extend(
                st.tasks
                    .keys()
                    .filter(|(n, t)| *t >= snap.task_count(n) || !snap.connectors.contains_key(n))
                    .map(|(n, t)| (n.clone(), Some(*t))),
            );
            v
        };
        for (name, task) in stale {
            let r = match task {
                None => self.status.delete_connector(&name).await,
                Some(t) => self.status.delete_task(&name, t).await,
            };
            if let Err(e) = r {
                tracing::warn!(connector = %name, error = %e, "removing a stale status failed");
            }
        }
        // Java (AbstractHerder.onDeletion) also tombstones the active topics
        // (KIP-558) of a deleted connector.
        let stale_topics: Vec<String> = {
            let st = self.status.lock();
            st.topics
                .iter()
                .filter(|(n, t)| !t.is_empty() && !snap.connectors.contains_key(*n))
                .map(|(n, _)| n.clone())
                .collect()
        };
        for name in stale_topics {
            if let Err(e) = self.status.reset_topics(&name).await {
                tracing::warn!(connector = %name, error = %e, "removing stale topic statuses failed");
            }
        }
    }

    /// Acts on a restart record for the instances this worker owns.
    async fn execute_restart(&self, req: &RestartRequest) {
        let Some(own) = self.ownership() else { return };
        let mut st = self.op.lock().await;
        let snap = self.config.snapshot();
        let Some(props) = snap.connectors.get(&req.connector).cloned() else {
            return;
        };
        let failed = |s: Option<State>| s == Some(State::Failed);
        let conn_state = self.status.connector(&req.connector).map(|s| s.state);
        if own.owns_connector(&req.connector) && (!req.only_failed || failed(conn_state)) {
            self.worker.stop_connector(&req.connector, false).await;
            self.worker
                .report_connector(&req.connector, State::Restarting, None);
            self.worker
                .start_connector(&req.connector, &props, snap.target_state(&req.connector))
                .await;
            st.connectors.insert(req.connector.clone(), props.clone());
            // A (re)started connector is asked for task configs, as Java does.
            st.reconfigure.insert(req.connector.clone());
        }
        if req.include_tasks {
            let statuses: HashMap<u32, State> = self
                .status
                .tasks(&req.connector)
                .into_iter()
                .map(|(n, s)| (n, s.state))
                .collect();
            for n in 0..snap.task_count(&req.connector) {
                let id = TaskId {
                    connector: req.connector.clone(),
                    task: n,
                };
                if !own.owns_task(&id) || (req.only_failed && !failed(statuses.get(&n).copied())) {
                    continue;
                }
                self.worker
                    .stop_tasks(std::slice::from_ref(&id), false)
                    .await;
                st.tasks.remove(&id);
                self.worker.report_task(&id, State::Restarting, None);
            }
        }
        drop(st);
        self.reconcile().await;
    }

    fn state_info(&self, name: &str) -> HerderResult<ConnectorStateInfo> {
        let config = self.snapshot_connector(name).ok();
        let connector = self.status.connector(name).ok_or_else(|| {
            HerderError::not_found(format!("No status found for connector {name}"))
        })?;
        let tasks = self
            .status
            .tasks(name)
            .into_iter()
            .map(|(id, s)| TaskState {
                id,
                state: s.state.as_str().to_string(),
                worker_id: s.worker_id,
                trace: s.trace.filter(|t| !t.is_empty()),
            })
            .collect();
        Ok(ConnectorStateInfo {
            name: name.to_string(),
            connector: ConnectorState {
                state: connector.state.as_str().to_string(),
                worker_id: connector.worker_id,
                trace: connector.trace.filter(|t| !t.is_empty()),
            },
            tasks,
            kind: config.map_or_else(|| "unknown".to_string(), |c| self.type_of(&c)),
        })
    }

    async fn validate_inner(&self, config: &Props) -> HerderResult<(ConfigInfos, ConnectorKind)> {
        let class = config.get("connector.class").ok_or_else(|| {
            HerderError::bad_request(format!(
                "Connector config {} contains no connector type",
                fmt_props(config)
            ))
        })?;
        let plugin = self.plugins.connector(class).ok_or_else(|| {
            HerderError::internal(format!(
                "Failed to find any class that implements Connector and which name matches {class}, available connectors are: {}",
                self.plugins.connector_classes().join(", ")
            ))
        })?;
        let connector = (plugin.new_connector)();
        let def = connector.config_def();
        let values = connector.validate(config).await;
        let infos =
            connector_config::validate(self.plugins, class, config, &def, values, plugin.kind)
                .await;
        Ok((infos, plugin.kind))
    }
}

/// Java's `Map.toString()` form, used in "contains no connector type".
fn fmt_props(p: &Props) -> String {
    let inner: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", inner.join(", "))
}

const ALTER_NOT_STOPPED: &str = "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint";

#[async_trait]
impl Herder for ConnectHerder {
    async fn server_info(&self) -> ServerInfo {
        self.info.clone()
    }

    async fn health(&self) -> WorkerHealth {
        if !self.started.load(Ordering::Acquire) {
            return WorkerHealth {
                status: "starting".into(),
                message: "Worker is still starting up.".into(),
                http_status: 503,
            };
        }
        match tokio::time::timeout(Duration::from_secs(10), self.op.lock()).await {
            Ok(_) => WorkerHealth {
                status: "healthy".into(),
                message: "Worker has completed startup and is ready to handle requests.".into(),
                http_status: 200,
            },
            Err(_) => WorkerHealth {
                status: "unhealthy".into(),
                message: "Worker was unable to handle this request and may be unable to handle other requests.".into(),
                http_status: 500,
            },
        }
    }

    async fn connectors(&self) -> Vec<String> {
        self.config.lock().connectors.keys().cloned().collect()
    }

    async fn connector_info(&self, name: &str) -> HerderResult<ConnectorInfo> {
        self.info_of(name)
    }

    async fn connector_config(&self, name: &str) -> HerderResult<Props> {
        self.snapshot_connector(name)
    }

    async fn put_connector_config(
        &self,
        name: &str,
        mut config: Props,
        allow_replace: bool,
        initial_state: Option<TargetState>,
    ) -> HerderResult<(bool, ConnectorInfo)> {
        match config.get("name") {
            Some(n) if n != name => {
                return Err(HerderError::bad_request(format!(
                    "Connector name configuration ({n}) doesn't match connector name in the URL ({name})"
                )))
            }
            Some(_) => {}
            None => {
                config.insert("name".into(), name.to_string());
            }
        }
        let (infos, _) = self.validate_inner(&config).await?;
        if infos.error_count > 0 {
            return Err(HerderError::bad_request(connector_config::invalid_message(
                &infos,
            )));
        }
        let _guard = self.op.lock().await;
        self.require_leader()?;
        self.config.read_to_end().await.map_err(store_err)?;
        let exists = self.config.lock().connectors.contains_key(name);
        if exists && !allow_replace {
            return Err(HerderError::conflict(format!(
                "Connector {name} already exists"
            )));
        }
        let target = if exists { None } else { initial_state };
        self.config
            .put_connector(name, &config, target)
            .await
            .map_err(store_err)?;
        if !exists {
            self.request_rejoin();
        }
        drop(_guard);
        Ok((!exists, self.info_of(name)?))
    }

    async fn patch_connector_config(
        &self,
        name: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> HerderResult<ConnectorInfo> {
        let mut config = self.snapshot_connector(name)?;
        for (k, v) in patch {
            match v {
                Some(v) => {
                    config.insert(k, v);
                }
                None => {
                    config.remove(&k);
                }
            }
        }
        self.put_connector_config(name, config, true, None)
            .await
            .map(|(_, info)| info)
    }

    async fn delete_connector(&self, name: &str) -> HerderResult<()> {
        let _guard = self.op.lock().await;
        self.require_leader()?;
        self.config.read_to_end().await.map_err(store_err)?;
        self.snapshot_connector(name)?;
        self.config
            .remove_connector(name)
            .await
            .map_err(store_err)?;
        self.request_rejoin();
        Ok(())
    }

    async fn connector_status(&self, name: &str) -> HerderResult<ConnectorStateInfo> {
        self.state_info(name)
    }

    async fn task_status(&self, name: &str, task: u32) -> HerderResult<TaskState> {
        self.status
            .tasks(name)
            .into_iter()
            .find(|(n, _)| *n == task)
            .map(|(id, s)| TaskState {
                id,
                state: s.state.as_str().to_string(),
                worker_id: s.worker_id,
                trace: s.trace.filter(|t| !t.is_empty()),
            })
            .ok_or_else(|| {
                HerderError::not_found(format!("No status found for task {name}-{task}"))
            })
    }

    async fn task_configs(&self, name: &str) -> HerderResult<Vec<TaskInfo>> {
        let snap = self.config.lock();
        if !snap.connectors.contains_key(name) {
            return Err(HerderError::not_found(format!(
                "Connector {name} not found"
            )));
        }
        Ok(snap
            .tasks
            .get(name)
            .map(|tasks| {
                tasks
                    .iter()
                    .enumerate()
                    .map(|(i, c)| TaskInfo {
                        id: ConnectorTaskId {
                            connector: name.to_string(),
                            task: i as u32,
                        },
                        config: c.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn restart_connector(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> HerderResult<Option<ConnectorStateInfo>> {
        if self.snapshot_connector(name).is_err() {
            return Err(HerderError::not_found(format!("Unknown connector: {name}")));
        }
        let req = RestartRequest {
            connector: name.to_string(),
            include_tasks,
            only_failed,
        };
        if !include_tasks && !only_failed {
            let own = self.ownership().unwrap_or_default();
            if !own.owns_connector(name) {
                let owner = own
                    .owners
                    .as_ref()
                    .and_then(|o| o.connector_owner_url(name));
                return Err(not_owner(&own, owner));
            }
            self.execute_restart(&req).await;
            return Ok(None);
        }
        self.require_leader()?;
        let mut info = self.state_info(name).map_err(|_| {
            HerderError::not_found(format!("Status for connector {name} not found"))
        })?;
        if !only_failed || info.connector.state == "FAILED" {
            info.connector.state = "RESTARTING".into();
        }
        for t in &mut info.tasks {
            if !only_failed || t.state == "FAILED" {
                t.state = "RESTARTING".into();
            }
        }
        self.config
            .put_restart_request(&req)
            .await
            .map_err(store_err)?;
        Ok(Some(info))
    }

    async fn restart_task(&self, name: &str, task: u32) -> HerderResult<()> {
        let snap = self.config.snapshot();
        if !snap.connectors.contains_key(name) {
            return Err(HerderError::not_found(format!("Unknown connector: {name}")));
        }
        if task >= snap.task_count(name) {
            return Err(HerderError::not_found(format!(
                "Unknown task: {name}-{task}"
            )));
        }
        let id = TaskId {
            connector: name.to_string(),
            task,
        };
        let own = self.ownership().unwrap_or_default();
        if !own.owns_task(&id) {
            let owner = own.owners.as_ref().and_then(|o| o.task_owner_url(&id));
            return Err(not_owner(&own, owner));
        }
        {
            let mut st = self.op.lock().await;
            self.worker
                .stop_tasks(std::slice::from_ref(&id), false)
                .await;
            st.tasks.remove(&id);
        }
        self.reconcile().await;
        Ok(())
    }

    async fn pause_connector(&self, name: &str) -> HerderResult<()> {
        self.snapshot_connector(name)
            .map_err(|_| HerderError::not_found(format!("Unknown connector {name}")))?;
        self.config
            .put_target_state(name, TargetState::Paused)
            .await
            .map_err(store_err)
    }

    async fn resume_connector(&self, name: &str) -> HerderResult<()> {
        self.snapshot_connector(name)
            .map_err(|_| HerderError::not_found(format!("Unknown connector {name}")))?;
        self.config
            .put_target_state(name, TargetState::Started)
            .await
            .map_err(store_err)
    }

    async fn stop_connector(&self, name: &str) -> HerderResult<()> {
        self.snapshot_connector(name)
            .map_err(|_| HerderError::not_found(format!("Unknown connector {name}")))?;
        let _guard = self.op.lock().await;
        self.require_leader()?;
        self.config
            .put_task_configs(name, &[])
            .await
            .map_err(store_err)?;
        self.config
            .put_target_state(name, TargetState::Stopped)
            .await
            .map_err(store_err)?;
        self.request_rejoin();
        Ok(())
    }

    async fn connector_topics(&self, name: &str) -> HerderResult<Vec<String>> {
        if !self.topic_tracking {
            return Err(HerderError::new(403, "Topic tracking is disabled."));
        }
        Ok(self.status.topics(name))
    }

    async fn reset_connector_topics(&self, name: &str) -> HerderResult<()> {
        if !self.topic_tracking {
            return Err(HerderError::new(403, "Topic tracking is disabled."));
        }
        if !self.topic_tracking_reset {
            return Err(HerderError::new(403, "Topic tracking reset is disabled."));
        }
        self.snapshot_connector(name)?;
        self.status.reset_topics(name).await.map_err(store_err)
    }

    async fn connector_offsets(&self, name: &str) -> HerderResult<ConnectorOffsets> {
        let config = self.snapshot_connector(name)?;
        if self.kind_of(&config) == Some(ConnectorKind::Sink) {
            // Sink offsets are the consumer group's committed offsets.
            let group = sink_task::sink_group(name, &config);
            let offsets = sink_task::group_offsets(&self.worker.settings().consumer, &group)
                .await
                .map_err(|e| HerderError::internal(e.to_string()))?;
            return Ok(ConnectorOffsets {
                offsets: offsets
                    .into_iter()
                    .map(|(tp, o)| ConnectorOffset {
                        partition: sink_partition(&tp),
                        offset: Some(
                            [("kafka_offset".to_string(), serde_json::json!(o))]
                                .into_iter()
                                .collect(),
                        ),
                    })
                    .collect(),
            });
        }
        self.offsets.read_to_end().await.map_err(store_err)?;
        Ok(ConnectorOffsets {
            offsets: self
                .offsets
                .partitions(name)
                .into_iter()
                .map(|(partition, offset)| ConnectorOffset {
                    partition,
                    offset: Some(offset),
                })
                .collect(),
        })
    }

    async fn alter_connector_offsets(
        &self,
        name: &str,
        offsets: ConnectorOffsets,
    ) -> HerderResult<Message> {
        if offsets.offsets.is_empty() {
            return Err(HerderError::bad_request(
                "Partitions / offsets need to be provided for an alter offsets request",
            ));
        }
        self.modify_offsets(name, Some(offsets)).await
    }

    async fn reset_connector_offsets(&self, name: &str) -> HerderResult<Message> {
        self.modify_offsets(name, None).await
    }

    async fn connector_progress(&self, name: &str) -> HerderResult<Progress> {
        let info = self.state_info(name)?;
        let mut out = serde_json::json!({
            "name": name,
            "state": info.connector.state,
            "tasks": info.tasks.len(),
        });
        // Plugin-specific progress (e.g. MongoDB snapshot chunks), from the
        // tasks running in this worker.
        let hook = self
            .snapshot_connector(name)
            .ok()
            .and_then(|c| {
                c.get("connector.class")
                    .and_then(|k| self.plugins.connector(k))
            })
            .and_then(|p| p.progress);
        if let (Some(extra), Some(obj)) = (hook.and_then(|f| f(name)), out.as_object_mut()) {
            obj.insert("progress".into(), extra);
        }
        Ok(out)
    }

    async fn plugins(&self, connectors_only: bool) -> Vec<PluginInfo> {
        let p = self.plugins;
        let mut out = Vec::new();
        for kind in [ConnectorKind::Sink, ConnectorKind::Source] {
            for c in p.connectors.iter().filter(|c| c.kind == kind) {
                out.push(PluginInfo {
                    class_name: c.class.to_string(),
                    kind: kind.as_str().to_string(),
                    version: Some(c.version.to_string()),
                });
            }
        }
        if !connectors_only {
            let mut add = |class: &str, kind: &str, version: &str| {
                out.push(PluginInfo {
                    class_name: class.to_string(),
                    kind: kind.to_string(),
                    version: Some(version.to_string()),
                })
            };
            for t in &p.transforms {
                add(t.class, "transformation", t.version);
            }
            for t in &p.predicates {
                add(t.class, "predicate", t.version);
            }
            for t in &p.converters {
                add(t.class, "converter", t.version);
            }
            for t in &p.header_converters {
                add(t.class, "header_converter", t.version);
            }
            for t in p.converters.iter().filter(|c| c.new_header.is_some()) {
                add(t.class, "header_converter", t.version);
            }
        }
        out
    }

    async fn plugin_config(&self, plugin: &str) -> HerderResult<Vec<ConfigKeyInfo>> {
        let p = self.plugins;
        let def = if let Some(c) = p.connector(plugin) {
            let own = (c.new_connector)().config_def();
            own.merge(&connector_config::framework_def(c.kind))
        } else if let Some(t) = p.transform(plugin) {
            (t.new)().config_def()
        } else if let Some(t) = p.predicate(plugin) {
            (t.new)().config_def()
        } else if let Some(c) = p.converter(plugin) {
            c.config_def()
        } else if let Some(h) = p.header_converter(plugin) {
            h.config_def()
        } else {
            return Err(HerderError::not_found(format!("Unknown plugin {plugin}.")));
        };
        Ok(connector_config::describe(&def))
    }

    async fn validate_config(&self, plugin: &str, config: Props) -> HerderResult<ConfigInfos> {
        let class = config.get("connector.class").cloned().ok_or_else(|| {
            HerderError::bad_request(format!(
                "Connector config {} contains no connector type",
                fmt_props(&config)
            ))
        })?;
        let strip = |s: &str| s.strip_suffix("Connector").unwrap_or(s).to_string();
        if !strip(&class).ends_with(&strip(plugin)) {
            return Err(HerderError::bad_request(format!(
                "Included connector type {class} does not match request type {plugin}"
            )));
        }
        Ok(self.validate_inner(&config).await?.0)
    }

    async fn set_cluster_log_level(&self, namespace: &str, level: &str) -> HerderResult<()> {
        self.config
            .put_logger_level(namespace, level)
            .await
            .map_err(store_err)
    }

    async fn put_task_configs_internal(
        &self,
        name: &str,
        body: &[u8],
        signature: &RequestSignature,
    ) -> HerderResult<()> {
        let own = self.ownership();
        if own.as_ref().is_some_and(|o| o.connectors.is_none()) {
            return Err(HerderError::internal(
                "Kafka Connect in standalone mode does not support externally setting task configurations.",
            ));
        }
        if own.as_ref().is_some_and(|o| o.signed) {
            let key = self.config.lock().session_key.clone();
            verify(key.as_ref(), &self.signing, signature, body)?;
        }
        let configs: Vec<Props> = serde_json::from_slice(body).map_err(|e| {
            HerderError::bad_request(format!(
                "task configs must be a JSON array of objects with string values: {e}"
            ))
        })?;
        let _st = self.op.lock().await;
        // Not forwarded: the signature would not survive the hop. The
        // sender retries with the new leader's URL after the rebalance.
        self.require_leader().map_err(|e| HerderError {
            forward_to: None,
            ..e
        })?;
        let snap = self.config.snapshot();
        if !snap.connectors.contains_key(name) {
            return Err(HerderError::not_found(format!(
                "Connector {name} not found"
            )));
        }
        if snap.target_state(name) == TargetState::Stopped && !configs.is_empty() {
            return Err(HerderError::bad_request(format!(
                "Cannot submit non-empty set of task configs for stopped connector {name}"
            )));
        }
        self.config
            .put_task_configs(name, &configs)
            .await
            .map_err(store_err)?;
        self.request_rejoin();
        Ok(())
    }
}

/// A request only the owner of a connector or task can answer reached
/// another worker: a follower sends it to the leader, and the leader, which
/// knows every owner from its last assignment, to the owner (contract §1.2;
/// the REST layer does the forwarding).
fn not_owner(own: &Ownership, owner_url: Option<&str>) -> HerderError {
    let target = if own.leader {
        owner_url
    } else {
        Some(own.leader_url.as_str()).filter(|u| !u.is_empty())
    };
    match target {
        Some(url) => HerderError::request_target(url),
        None => HerderError::conflict(
            "Cannot complete request momentarily due to no known leader URL, likely because a rebalance was underway.",
        ),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The REST partition map of a sink offset.
fn sink_partition(
    tp: &connect_api::record::TopicPartition,
) -> serde_json::Map<String, serde_json::Value> {
    [
        ("kafka_topic".to_string(), serde_json::json!(tp.topic)),
        (
            "kafka_partition".to_string(),
            serde_json::json!(tp.partition),
        ),
    ]
    .into_iter()
    .collect()
}

impl ConnectHerder {
    /// Alters (PATCH) or resets (DELETE) a sink connector's consumer-group
    /// offsets; the caller has checked that the connector is STOPPED.
    async fn modify_sink_offsets(
        &self,
        name: &str,
        config: &Props,
        offsets: Option<ConnectorOffsets>,
    ) -> HerderResult<Message> {
        let group = sink_task::sink_group(name, config);
        let settings = self.worker.settings();
        let to_error = |e: sink_task::SinkOffsetsError| match e {
            sink_task::SinkOffsetsError::BadRequest(m) => HerderError::bad_request(m),
            sink_task::SinkOffsetsError::Kafka(m) => HerderError::internal(m),
        };
        let (entries, verb) = match &offsets {
            Some(o) => {
                let raw: Vec<_> = o
                    .offsets
                    .iter()
                    .map(|e| (e.partition.clone(), e.offset.clone()))
                    .collect();
                let parsed = sink_task::parse_sink_offsets(&raw).map_err(to_error)?;
                let (set, reset): (Vec<_>, Vec<_>) =
                    parsed.into_iter().partition(|(_, o)| o.is_some());
                let commit = set
                    .into_iter()
                    .filter_map(|(tp, o)| o.map(|o| (tp, o)))
                    .collect();
                sink_task::alter_group_offsets(&settings.consumer, &group, commit)
                    .await
                    .map_err(to_error)?;
                let reset: Vec<_> = reset.into_iter().map(|(tp, _)| tp).collect();
                sink_task::delete_partition_offsets(&settings.consumer, &group, &reset)
                    .await
                    .map_err(to_error)?;
                (raw, "altered")
            }
            None => {
                sink_task::delete_group(&settings.admin, &group)
                    .await
                    .map_err(to_error)?;
                (Vec::new(), "reset")
            }
        };
        let handled = match self
            .plugins
            .connector(config.get("connector.class").map_or("", String::as_str))
        {
            Some(p) => (p.new_connector)()
                .alter_offsets(config, &entries)
                .await
                .map_err(|e| {
                    HerderError::internal(format!(
                        "Failed to modify offsets for connector {name}: {e}"
                    ))
                })?,
            None => false,
        };
        Ok(Message {
            message: if handled {
                format!("The offsets for this connector have been {verb} successfully")
            } else {
                format!("The Connect framework-managed offsets for this connector have been {verb} successfully. However, if this connector manages offsets externally, they will need to be manually {verb} in the system that the connector uses.")
            },
        })
    }

    async fn modify_offsets(
        &self,
        name: &str,
        offsets: Option<ConnectorOffsets>,
    ) -> HerderResult<Message> {
        let _guard = self.op.lock().await;
        self.config.read_to_end().await.map_err(store_err)?;
        let config = self.snapshot_connector(name)?;
        self.require_leader()?;
        {
            let snap = self.config.lock();
            if snap.target_state(name) != TargetState::Stopped || snap.task_count(name) != 0 {
                return Err(HerderError::bad_request(
                    ALTER_NOT_STOPPED.replace("{name}", name),
                ));
            }
        }
        if self.kind_of(&config) == Some(ConnectorKind::Sink) {
            return self.modify_sink_offsets(name, &config, offsets).await;
        }
        self.offsets.read_to_end().await.map_err(store_err)?;
        let (entries, verb): (Vec<_>, &str) = match offsets {
            Some(o) => (
                o.offsets
                    .into_iter()
                    .map(|e| (e.partition, e.offset))
                    .collect(),
                "altered",
            ),
            None => (
                self.offsets
                    .partitions(name)
                    .into_iter()
                    .map(|(p, _)| (p, None))
                    .collect(),
                "reset",
            ),
        };
        let handled = match self
            .plugins
            .connector(config.get("connector.class").map_or("", String::as_str))
        {
            Some(p) => (p.new_connector)()
                .alter_offsets(&config, &entries)
                .await
                .map_err(|e| {
                    HerderError::internal(format!(
                        "Failed to modify offsets for connector {name}: {e}"
                    ))
                })?,
            None => false,
        };
        self.offsets.set(name, &entries).await.map_err(|e| {
            HerderError::internal(format!("Failed to write offsets for connector {name}: {e}"))
        })?;
        Ok(Message {
            message: if handled {
                format!("The offsets for this connector have been {verb} successfully")
            } else {
                format!("The Connect framework-managed offsets for this connector have been {verb} successfully. However, if this connector manages offsets externally, they will need to be manually {verb} in the system that the connector uses.")
            },
        })
    }
}
