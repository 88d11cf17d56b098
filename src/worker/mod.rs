//! The worker: starts, stops and tracks the connector and task instances this
//! process owns, and reports every state change to the status store.
//!
//! The herder decides *what* runs here; the worker only knows *how*. Each
//! instance runs in a named tokio task under its own cancellation token, and
//! status records are written in order by one status-writer task, so that
//! RUNNING can never overtake the FAILED that followed it.

pub mod delivery;
pub mod errors;
pub mod sink_task;
pub mod source_task;
pub mod transaction;
pub mod transforms;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connect_api::config::{originals_with_prefix, Props};
use connect_api::connector::{CommitRequester, ConnectorHost, ConnectorKind};
use connect_api::error::{ConnectError, ConnectResult};
use connect_api::plugin::TaskFactory;
use connect_api::{Connector, ConnectorContext, Converter, HeaderConverter, SourceTaskContext};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::providers::has_references;
pub use crate::config::worker::OverridePolicy;
use crate::herder::api::TargetState;
use crate::plugins::Plugins;
use crate::producer::{AckContext, AckedProducer};
use crate::spawn::spawn_named;
use crate::storage::offset_store::{ConnectorOffsetReader, OffsetStore};
use crate::storage::status_store::{State, Status, StatusStore, TopicStatus};
use errors::ErrorPolicy;
use source_task::{now_ms, CommitSignal, Pipeline, SourceTaskRun, TaskListener};
use transforms::TransformChain;

/// Resolves `${provider:path:key}` references in a config at use.
pub type Resolver = Arc<dyn Fn(&Props) -> Result<Props, String> + Send + Sync>;
/// Maps Java client settings to librdkafka settings.
pub type ClientMapper = Arc<dyn Fn(&Props) -> BTreeMap<String, String> + Send + Sync>;

/// What the worker needs from the worker config.
#[derive(Clone)]
pub struct WorkerSettings {
    /// `host:port` written as `worker_id` in statuses.
    pub worker_id: String,
    /// librdkafka settings for connector producers (bootstrap and `producer.*`).
    pub producer: BTreeMap<String, String>,
    pub key_converter: (String, Props),
    pub value_converter: (String, Props),
    pub header_converter: (String, Props),
    pub offset_flush_interval: Duration,
    pub offset_flush_timeout: Duration,
    pub graceful_timeout: Duration,
    pub topic_tracking: bool,
    pub override_policy: OverridePolicy,
    pub resolver: Resolver,
    pub client_mapper: ClientMapper,
    /// librdkafka settings for sink-task consumers (bootstrap and `consumer.*`).
    pub consumer: BTreeMap<String, String>,
    /// librdkafka settings for connector admin clients (DLQ and task topics).
    pub admin: BTreeMap<String, String>,
    /// Maps `consumer.override.*` keys (Java names) to librdkafka settings.
    pub consumer_mapper: ClientMapper,
    /// The worker's `consumer.max.poll.records`, which no librdkafka setting
    /// carries (see `sink_task::MAX_POLL_RECORDS`).
    pub max_poll_records: Option<String>,
    /// The worker's `group.id` (distributed mode), part of sink tasks'
    /// `transactional.id`.
    pub group_id: Option<String>,
}

pub use crate::group::TaskId;

enum StatusUpdate {
    Connector(String, Status, bool),
    Task(TaskId, Status, bool),
    Topic(TopicStatus),
    /// Answered once every earlier update is written.
    Barrier(tokio::sync::oneshot::Sender<()>),
    /// Ends the writer after every earlier update is written.
    Close,
}

struct RunningConnector {
    connector: Box<dyn Connector>,
    kind: ConnectorKind,
    started: bool,
    cancel: CancellationToken,
    failed: bool,
    /// The PAUSED/STOPPED target last reported, so a repeated target (every
    /// reconcile re-applies it) writes no status record again.
    halted_as: Option<TargetState>,
}

struct RunningTask {
    cancel: CancellationToken,
    target: watch::Sender<TargetState>,
    handle: JoinHandle<()>,
}

/// The instances running in this process.
pub struct Worker {
    settings: WorkerSettings,
    plugins: &'static Plugins,
    offsets: Arc<OffsetStore>,
    status: Arc<StatusStore>,
    generation: AtomicI32,
    connectors: tokio::sync::Mutex<HashMap<String, RunningConnector>>,
    tasks: Mutex<HashMap<TaskId, RunningTask>>,
    status_tx: mpsc::Sender<StatusUpdate>,
    reconfigure_tx: mpsc::Sender<String>,
}

struct Host {
    name: String,
    reconfigure: mpsc::Sender<String>,
    worker: std::sync::Weak<Worker>,
}

impl ConnectorHost for Host {
    fn request_task_reconfiguration(&self) {
        // Requests are idempotent, so a full queue can drop one safely.
        let _ = self.reconfigure.try_send(self.name.clone());
    }
    fn raise_error(&self, error: ConnectError) {
        if let Some(w) = self.worker.upgrade() {
            w.report_connector(&self.name, State::Failed, Some(trace_of(&error)));
        }
    }
}

/// The `trace` text of a failure: Java tooling expects an exception class first.
pub fn trace_of(e: &ConnectError) -> String {
    format!("{}: {e}", e.java_class())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Worker {
    /// Creates the worker and its status writer. `reconfigure_tx` receives the
    /// names of connectors that asked for new task configs.
    pub fn new(
        settings: WorkerSettings,
        offsets: Arc<OffsetStore>,
        status: Arc<StatusStore>,
        reconfigure_tx: mpsc::Sender<String>,
    ) -> Arc<Worker> {
        let (status_tx, status_rx) = mpsc::channel(4096);
        spawn_named(
            "status-writer",
            status_writer(Arc::clone(&status), status_rx),
        );
        Arc::new(Worker {
            settings,
            plugins: Plugins::get(),
            offsets,
            status,
            generation: AtomicI32::new(0),
            connectors: tokio::sync::Mutex::new(HashMap::new()),
            tasks: Mutex::new(HashMap::new()),
            status_tx,
            reconfigure_tx,
        })
    }

    pub fn settings(&self) -> &WorkerSettings {
        &self.settings
    }

    pub fn set_generation(&self, generation: i32) {
        self.generation.store(generation, Ordering::Release);
    }

    fn status(&self, state: State, trace: Option<String>) -> Status {
        Status {
            state,
            trace,
            worker_id: self.settings.worker_id.clone(),
            generation: self.generation.load(Ordering::Acquire),
        }
    }

    fn send_status(&self, update: StatusUpdate) {
        if self.status_tx.try_send(update).is_err() {
            tracing::warn!("status update queue full; a status change was not recorded");
        }
    }

    pub fn report_connector(&self, name: &str, state: State, trace: Option<String>) {
        let safe = matches!(state, State::Failed | State::Unassigned);
        self.send_status(StatusUpdate::Connector(
            name.to_string(),
            self.status(state, trace),
            safe,
        ));
    }

    pub fn report_task(&self, id: &TaskId, state: State, trace: Option<String>) {
        let safe = matches!(state, State::Failed | State::Unassigned);
        self.send_status(StatusUpdate::Task(
            id.clone(),
            self.status(state, trace),
            safe,
        ));
    }

    /// Waits until every queued status update has been written.
    pub async fn flush_status(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.status_tx.send(StatusUpdate::Barrier(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    pub fn resolve(&self, props: &Props) -> ConnectResult<Props> {
        (self.settings.resolver)(props).map_err(ConnectError::fatal)
    }

    pub fn running_tasks(&self) -> Vec<TaskId> {
        let mut v: Vec<TaskId> = lock(&self.tasks).keys().cloned().collect();
        v.sort();
        v
    }

    /// Creates (and, unless paused or stopped, starts) a connector instance.
    pub async fn start_connector(self: &Arc<Self>, name: &str, raw: &Props, target: TargetState) {
        let mut map = self.connectors.lock().await;
        if map.contains_key(name) {
            return;
        }
        let class = raw.get("connector.class").cloned().unwrap_or_default();
        let Some(plugin) = self.plugins.connector(&class) else {
            let e = ConnectError::fatal(format!(
                "Failed to find any class that implements Connector and which name matches {class}"
            ));
            self.report_connector(name, State::Failed, Some(trace_of(&e)));
            return;
        };
        let cancel = CancellationToken::new();
        let mut rc = RunningConnector {
            connector: (plugin.new_connector)(),
            kind: plugin.kind,
            started: false,
            cancel,
            failed: false,
            halted_as: None,
        };
        self.apply_connector_target(name, raw, &mut rc, target)
            .await;
        map.insert(name.to_string(), rc);
    }

    async fn apply_connector_target(
        self: &Arc<Self>,
        name: &str,
        raw: &Props,
        rc: &mut RunningConnector,
        target: TargetState,
    ) {
        match target {
            TargetState::Started => {
                // A FAILED connector stays failed until it is restarted
                // (restart replaces the instance), as in the Java worker.
                if rc.started || rc.failed {
                    return;
                }
                let props = match self.resolve(raw) {
                    Ok(p) => p,
                    Err(e) => {
                        rc.failed = true;
                        self.report_connector(name, State::Failed, Some(trace_of(&e)));
                        return;
                    }
                };
                rc.cancel = CancellationToken::new();
                let ctx = ConnectorContext {
                    name: name.to_string(),
                    host: Arc::new(Host {
                        name: name.to_string(),
                        reconfigure: self.reconfigure_tx.clone(),
                        worker: Arc::downgrade(self),
                    }),
                    offsets: Some(Arc::new(ConnectorOffsetReader {
                        store: Arc::clone(&self.offsets),
                        connector: name.to_string(),
                    })),
                    cancel: rc.cancel.clone(),
                };
                match rc.connector.start(ctx, props).await {
                    Ok(()) => {
                        rc.started = true;
                        rc.failed = false;
                        rc.halted_as = None;
                        self.report_connector(name, State::Running, None);
                    }
                    Err(e) => {
                        rc.failed = true;
                        tracing::error!(connector = name, error = %e, "connector failed to start");
                        self.report_connector(name, State::Failed, Some(trace_of(&e)));
                    }
                }
            }
            TargetState::Paused | TargetState::Stopped => {
                if rc.started {
                    rc.cancel.cancel();
                    if let Err(e) = rc.connector.stop().await {
                        tracing::warn!(connector = name, error = %e, "connector stop failed");
                    }
                    rc.started = false;
                }
                // Like Java's WorkerConnector, report only a transition.
                if rc.halted_as == Some(target) {
                    return;
                }
                rc.halted_as = Some(target);
                let state = if target == TargetState::Paused {
                    State::Paused
                } else {
                    State::Stopped
                };
                self.report_connector(name, state, None);
            }
        }
    }

    pub async fn set_connector_target(
        self: &Arc<Self>,
        name: &str,
        raw: &Props,
        target: TargetState,
    ) {
        let mut map = self.connectors.lock().await;
        if let Some(rc) = map.get_mut(name) {
            self.apply_connector_target(name, raw, rc, target).await;
        }
    }

    /// Stops and forgets a connector instance (revocation, deletion, shutdown).
    pub async fn stop_connector(&self, name: &str, report_unassigned: bool) {
        let rc = self.connectors.lock().await.remove(name);
        if let Some(mut rc) = rc {
            rc.cancel.cancel();
            if rc.started {
                if let Err(e) = rc.connector.stop().await {
                    tracing::warn!(connector = name, error = %e, "connector stop failed");
                }
            }
            if report_unassigned {
                self.report_connector(name, State::Unassigned, None);
            }
        }
    }

    /// Asks a running connector for its task configs, adding `task.class`.
    /// `None` when the connector is not running here or not started.
    pub async fn task_configs(&self, name: &str, raw: &Props) -> Option<ConnectResult<Vec<Props>>> {
        let map = self.connectors.lock().await;
        let rc = map.get(name)?;
        if !rc.started || rc.failed {
            return None;
        }
        let max_tasks = raw
            .get("tasks.max")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let class = raw.get("connector.class").cloned().unwrap_or_default();
        let task_class = self
            .plugins
            .connector(&class)
            .map(|p| p.task_class)
            .unwrap_or_default();
        let enforce = raw
            .get("tasks.max.enforce")
            .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
        Some(rc.connector.task_configs(max_tasks).await.and_then(|configs| {
            if enforce && configs.len() > max_tasks {
                return Err(ConnectError::fatal(format!(
                    "The connector {name} has generated {} tasks, which is greater than {max_tasks}, the maximum number of tasks it is configured to create.",
                    configs.len()
                )));
            }
            Ok(configs
                .into_iter()
                .map(|mut p| {
                    // Secrets stay references in the config topic: a task key
                    // whose connector value was a `${provider:...}` reference
                    // is written back in its raw form (Java's reverse transform).
                    for (k, v) in p.iter_mut() {
                        if let Some(raw_v) = raw.get(k).filter(|r| has_references(r)) {
                            v.clone_from(raw_v);
                        }
                    }
                    p.insert("task.class".into(), task_class.to_string());
                    if rc.kind == ConnectorKind::Sink {
                        for k in ["topics", "topics.regex"] {
                            if let Some(v) = raw.get(k) {
                                p.insert(k.into(), v.clone());
                            }
                        }
                    }
                    p
                })
                .collect())
        }))
    }

    fn converter(
        &self,
        connector: &Props,
        key: &str,
        worker: &(String, Props),
        is_key: bool,
    ) -> ConnectResult<Box<dyn Converter>> {
        let (class, props) = match connector.get(key) {
            Some(c) => (
                c.clone(),
                originals_with_prefix(connector, &format!("{key}.")),
            ),
            None => worker.clone(),
        };
        let mut conv = self.plugins.converter(&class).ok_or_else(|| {
            ConnectError::fatal(format!(
                "Invalid value {class} for configuration {key}: Class {class} could not be found."
            ))
        })?;
        conv.configure(&props, is_key)?;
        Ok(conv)
    }

    fn header_converter(&self, connector: &Props) -> ConnectResult<Box<dyn HeaderConverter>> {
        let (class, props) = match connector.get("header.converter") {
            Some(c) => (
                c.clone(),
                originals_with_prefix(connector, "header.converter."),
            ),
            None => self.settings.header_converter.clone(),
        };
        let mut conv = self
            .plugins
            .header_converter(&class)
            .ok_or_else(|| ConnectError::fatal(format!("Invalid value {class} for configuration header.converter: Class {class} could not be found.")))?;
        conv.configure(&props)?;
        Ok(conv)
    }

    /// A task's producer settings: the worker's, then the connector's
    /// allowed `producer.override.*`, then the task's client id.
    fn producer_config(&self, id: &TaskId, connector: &Props) -> rdkafka::ClientConfig {
        let mut cfg = rdkafka::ClientConfig::new();
        cfg.set("acks", "all").set("partitioner", "murmur2_random");
        for (k, v) in &self.settings.producer {
            cfg.set(k, v);
        }
        let overrides = originals_with_prefix(connector, "producer.override.");
        for (k, v) in (self.settings.client_mapper)(&overrides) {
            if self.settings.override_policy.allows(&k) {
                cfg.set(k, v);
            }
        }
        cfg.set(
            "client.id",
            format!("connector-producer-{}-{}", id.connector, id.task),
        );
        cfg
    }

    fn producer_error(id: &TaskId, e: &rdkafka::error::KafkaError) -> ConnectError {
        ConnectError::fatal(format!(
            "creating the producer of task {}-{}: {e}",
            id.connector, id.task
        ))
    }

    /// The producer of a sink task's dead letter queue.
    fn producer(&self, id: &TaskId, connector: &Props) -> ConnectResult<AckedProducer> {
        self.producer_config(id, connector)
            .create_with_context(AckContext)
            .map_err(|e| Self::producer_error(id, &e))
    }

    /// The producer of a source task, acknowledging in submission order.
    fn source_producer(
        &self,
        id: &TaskId,
        connector: &Props,
    ) -> ConnectResult<Arc<delivery::TaskProducer>> {
        self.producer_config(id, connector)
            .create_with_context(delivery::TaskProducerContext::default())
            .map(Arc::new)
            .map_err(|e| Self::producer_error(id, &e))
    }

    /// Starts a task with its committed config; reports FAILED on any error.
    pub fn start_task(
        self: &Arc<Self>,
        id: TaskId,
        raw_task: &Props,
        raw_connector: &Props,
        target: TargetState,
    ) {
        if lock(&self.tasks).contains_key(&id) {
            return;
        }
        let cancel = CancellationToken::new();
        let (target_tx, target_rx) = watch::channel(target);
        let run = match self.build_task_run(&id, raw_task, raw_connector, target_rx, cancel.clone())
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(task = %format!("{}-{}", id.connector, id.task), error = %e, "task failed to start");
                self.report_task(&id, State::Failed, Some(trace_of(&e)));
                return;
            }
        };
        // Java log context: `[name|task-0]`.
        let name = format!("{}|task-{}", id.connector, id.task);
        let handle = spawn_named(name, async move {
            let _ = match run {
                TaskRun::Source(r) => r.run().await,
                TaskRun::Sink(r) => r.run().await,
            };
        });
        lock(&self.tasks).insert(
            id,
            RunningTask {
                cancel,
                target: target_tx,
                handle,
            },
        );
    }

    fn build_task_run(
        self: &Arc<Self>,
        id: &TaskId,
        raw_task: &Props,
        raw_connector: &Props,
        target: watch::Receiver<TargetState>,
        cancel: CancellationToken,
    ) -> ConnectResult<TaskRun> {
        let task_class = raw_task.get("task.class").cloned().unwrap_or_default();
        let plugin = self
            .plugins
            .connector_by_task_class(&task_class)
            .ok_or_else(|| ConnectError::fatal(format!("Failed to find any class that implements Task and which name matches {task_class}")))?;
        match plugin.new_task {
            TaskFactory::Source(new_task) => self
                .build_source_run(id, new_task, raw_task, raw_connector, target, cancel)
                .map(|r| TaskRun::Source(Box::new(r))),
            TaskFactory::Sink(new_task) => self
                .build_sink_run(id, new_task, raw_task, raw_connector, target, cancel)
                .map(|r| TaskRun::Sink(Box::new(r))),
        }
    }

    /// librdkafka settings of a sink task's consumer: Java's defaults for a
    /// Connect sink consumer, then the worker's `consumer.*`, then the
    /// connector's `consumer.override.*` as far as the override policy allows.
    fn sink_consumer_settings(&self, id: &TaskId, connector: &Props) -> BTreeMap<String, String> {
        let mut cfg = BTreeMap::new();
        // Java's consumer reads uncommitted data unless told otherwise
        // (librdkafka's default is read_committed).
        cfg.insert(
            "isolation.level".to_string(),
            "read_uncommitted".to_string(),
        );
        cfg.extend(self.settings.consumer.clone());
        let overrides = originals_with_prefix(connector, "consumer.override.");
        for (k, v) in (self.settings.consumer_mapper)(&overrides) {
            if self.settings.override_policy.allows(&k) {
                cfg.insert(k, v);
            }
        }
        let max_poll_records = overrides
            .get(sink_task::MAX_POLL_RECORDS)
            .filter(|_| {
                self.settings
                    .override_policy
                    .allows(sink_task::MAX_POLL_RECORDS)
            })
            .or(self.settings.max_poll_records.as_ref());
        if let Some(v) = max_poll_records {
            cfg.insert(sink_task::MAX_POLL_RECORDS.to_string(), v.clone());
        }
        // Java's metadata.max.age.ms also paces topics.regex discovery; in
        // librdkafka that is topic.metadata.refresh.interval.ms.
        if let Some(age) = cfg.get("metadata.max.age.ms").cloned() {
            cfg.insert("topic.metadata.refresh.interval.ms".to_string(), age);
        }
        // Offsets are committed by the runtime only (see sink_task.rs).
        cfg.insert("enable.auto.commit".to_string(), "false".to_string());
        cfg.insert(
            "group.id".to_string(),
            sink_task::sink_group(&id.connector, connector),
        );
        cfg.insert(
            "client.id".to_string(),
            format!("connector-consumer-{}-{}", id.connector, id.task),
        );
        cfg
    }

    fn build_sink_run(
        self: &Arc<Self>,
        id: &TaskId,
        new_task: fn() -> Box<dyn connect_api::SinkTask>,
        raw_task: &Props,
        raw_connector: &Props,
        target: watch::Receiver<TargetState>,
        cancel: CancellationToken,
    ) -> ConnectResult<sink_task::SinkTaskRun> {
        let connector = self.resolve(raw_connector)?;
        let props = self.resolve(raw_task)?;
        let parsed = errors::config_def()
            .parse(&connector)
            .map_err(|e| ConnectError::fatal(e.to_string()))?;
        let sink = sink_task::SinkSettings::from_props(&connector)?;
        let name = format!("{}-{}", id.connector, id.task);
        let consumer_settings = self.sink_consumer_settings(id, &connector);
        let (consumer, shared) = sink_task::create_consumer(&consumer_settings, &name, id.task)?;
        let mut producer = self.settings.producer.clone();
        let overrides = originals_with_prefix(&connector, "producer.override.");
        for (k, v) in (self.settings.client_mapper)(&overrides) {
            if self.settings.override_policy.allows(&k) {
                producer.insert(k, v);
            }
        }
        let transactional_id = match &self.settings.group_id {
            Some(g) => format!("connect-{g}-{}-{}", id.connector, id.task),
            None => format!("connect-{}-{}", id.connector, id.task),
        };
        let dlq = match &sink.dlq_topic {
            Some(topic) => Some(sink_task::DeadLetterQueue {
                producer: self.producer(id, &connector)?,
                topic: topic.clone(),
                replication_factor: sink.dlq_replication_factor,
                context_headers: sink.dlq_context_headers,
                connector: id.connector.clone(),
                task_id: id.task,
                admin: self.settings.admin.clone(),
            }),
            None => None,
        };
        let runtime = Arc::new(sink_task::KafkaSinkRuntime::new(
            Arc::clone(&consumer),
            Arc::clone(&shared),
            sink_task::SinkClients {
                admin: self.settings.admin.clone(),
                producer,
                transactional_id,
                consumer: consumer_settings,
            },
            name,
        ));
        let class_of = |key: &str, worker: &(String, Props)| {
            connector
                .get(key)
                .cloned()
                .unwrap_or_else(|| worker.0.clone())
        };
        Ok(sink_task::SinkTaskRun {
            connector: id.connector.clone(),
            task_id: id.task,
            task: new_task(),
            props,
            subscription: sink.subscription,
            consumer,
            shared,
            runtime,
            pipeline: sink_task::SinkPipeline {
                transforms: TransformChain::from_config(&connector, self.plugins)?,
                key_converter: (
                    class_of("key.converter", &self.settings.key_converter),
                    self.converter(
                        &connector,
                        "key.converter",
                        &self.settings.key_converter,
                        true,
                    )?,
                ),
                value_converter: (
                    class_of("value.converter", &self.settings.value_converter),
                    self.converter(
                        &connector,
                        "value.converter",
                        &self.settings.value_converter,
                        false,
                    )?,
                ),
                header_converter: (
                    class_of("header.converter", &self.settings.header_converter),
                    self.header_converter(&connector)?,
                ),
                errors: ErrorPolicy::from_config(&parsed),
                dlq,
                listener: Arc::new(TaskStatusListener {
                    id: id.clone(),
                    worker: Arc::downgrade(self),
                }),
            },
            flush_interval: self.settings.offset_flush_interval,
            target,
            cancel,
        })
    }

    fn build_source_run(
        self: &Arc<Self>,
        id: &TaskId,
        new_task: fn() -> Box<dyn connect_api::SourceTask>,
        raw_task: &Props,
        raw_connector: &Props,
        target: watch::Receiver<TargetState>,
        cancel: CancellationToken,
    ) -> ConnectResult<SourceTaskRun> {
        let connector = self.resolve(raw_connector)?;
        let props = self.resolve(raw_task)?;
        let parsed = errors::config_def()
            .parse(&connector)
            .map_err(|e| ConnectError::fatal(e.to_string()))?;
        let commit_requests = Arc::new(CommitSignal::default());
        let offsets_reader = Arc::new(ConnectorOffsetReader {
            store: Arc::clone(&self.offsets),
            connector: id.connector.clone(),
        });
        Ok(SourceTaskRun {
            connector: id.connector.clone(),
            task_id: id.task,
            task: new_task(),
            props,
            pipeline: Pipeline {
                transforms: TransformChain::from_config(&connector, self.plugins)?,
                key_converter: self.converter(
                    &connector,
                    "key.converter",
                    &self.settings.key_converter,
                    true,
                )?,
                value_converter: self.converter(
                    &connector,
                    "value.converter",
                    &self.settings.value_converter,
                    false,
                )?,
                header_converter: self.header_converter(&connector)?,
                producer: self.source_producer(id, &connector)?,
                errors: ErrorPolicy::from_config(&parsed),
                listener: Arc::new(TaskStatusListener {
                    id: id.clone(),
                    worker: Arc::downgrade(self),
                }),
            },
            offsets: Arc::clone(&self.offsets),
            context: SourceTaskContext {
                connector: id.connector.clone(),
                task_id: id.task,
                offsets: offsets_reader,
                commits: Arc::clone(&commit_requests) as Arc<dyn CommitRequester>,
                cancel: cancel.clone(),
            },
            commit_requests,
            flush_interval: self.settings.offset_flush_interval,
            flush_timeout: self.settings.offset_flush_timeout,
            target,
            cancel,
        })
    }

    pub fn set_task_target(&self, id: &TaskId, target: TargetState) {
        if let Some(t) = lock(&self.tasks).get(id) {
            let _ = t.target.send(target);
        }
    }

    /// Stops tasks, waiting in total at most `task.shutdown.graceful.timeout.ms`.
    pub async fn stop_tasks(&self, ids: &[TaskId], report_unassigned: bool) {
        let stopping: Vec<(TaskId, RunningTask)> = {
            let mut map = lock(&self.tasks);
            ids.iter()
                .filter_map(|id| map.remove(id).map(|t| (id.clone(), t)))
                .collect()
        };
        for (_, t) in &stopping {
            t.cancel.cancel();
        }
        let deadline = tokio::time::Instant::now() + self.settings.graceful_timeout;
        for (id, t) in stopping {
            let abort = t.handle.abort_handle();
            if tokio::time::timeout_at(deadline, t.handle).await.is_err() {
                tracing::error!(task = %format!("{}-{}", id.connector, id.task), "task did not stop within task.shutdown.graceful.timeout.ms; abandoning it");
                abort.abort();
            }
            if report_unassigned {
                self.report_task(&id, State::Unassigned, None);
            }
        }
    }

    /// Stops everything, writes the final statuses and ends the status writer.
    pub async fn shutdown(&self) {
        let ids = self.running_tasks();
        self.stop_tasks(&ids, true).await;
        let names: Vec<String> = self.connectors.lock().await.keys().cloned().collect();
        for n in names {
            self.stop_connector(&n, true).await;
        }
        self.flush_status().await;
        let _ = self.status_tx.send(StatusUpdate::Close).await;
    }
}

/// A task ready to run, of either kind.
enum TaskRun {
    Source(Box<SourceTaskRun>),
    Sink(Box<sink_task::SinkTaskRun>),
}

struct TaskStatusListener {
    id: TaskId,
    worker: std::sync::Weak<Worker>,
}

impl TaskListener for TaskStatusListener {
    fn on_running(&self) {
        if let Some(w) = self.worker.upgrade() {
            w.report_task(&self.id, State::Running, None);
        }
    }
    fn on_paused(&self) {
        if let Some(w) = self.worker.upgrade() {
            w.report_task(&self.id, State::Paused, None);
        }
    }
    fn on_failure(&self, error: &ConnectError) {
        tracing::error!(task = %format!("{}-{}", self.id.connector, self.id.task), error = %error, "task failed");
        if let Some(w) = self.worker.upgrade() {
            w.report_task(&self.id, State::Failed, Some(trace_of(error)));
        }
    }
    fn on_first_write(&self, topic: &str) {
        if let Some(w) = self.worker.upgrade() {
            if w.settings.topic_tracking && !w.status.has_topic(&self.id.connector, topic) {
                w.send_status(StatusUpdate::Topic(TopicStatus {
                    topic: topic.to_string(),
                    connector: self.id.connector.clone(),
                    task: self.id.task,
                    discover_timestamp: now_ms(),
                }));
            }
        }
    }
}

/// Writes status updates in order. It is not tied to the worker's
/// cancellation token: the UNASSIGNED records written while tasks stop at
/// shutdown must still land, so it ends on [`StatusUpdate::Close`] (sent by
/// [`Worker::shutdown`]) or when the worker is dropped.
async fn status_writer(status: Arc<StatusStore>, mut rx: mpsc::Receiver<StatusUpdate>) {
    while let Some(update) = rx.recv().await {
        let update = match update {
            StatusUpdate::Barrier(tx) => {
                let _ = tx.send(());
                continue;
            }
            StatusUpdate::Close => return,
            u => u,
        };
        for attempt in 0..5 {
            let r = match &update {
                StatusUpdate::Barrier(_) | StatusUpdate::Close => Ok(()),
                StatusUpdate::Connector(n, s, true) => {
                    status.put_connector_safe(n, s.clone()).await
                }
                StatusUpdate::Connector(n, s, false) => status.put_connector(n, s.clone()).await,
                StatusUpdate::Task(id, s, true) => {
                    status
                        .put_task_safe(&id.connector, id.task, s.clone())
                        .await
                }
                StatusUpdate::Task(id, s, false) => {
                    status.put_task(&id.connector, id.task, s.clone()).await
                }
                StatusUpdate::Topic(t) => status.put_topic(t.clone()).await,
            };
            match r {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "writing a status record failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
            }
        }
    }
}
