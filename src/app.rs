//! Assembles a worker from its config: REST listener, stores, worker, herder
//! and (in distributed mode) group membership. Used by `main` and by tests,
//! which start workers in-process on port 0.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use connect_api::config::Props;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::properties::ConnectorFile;
use crate::config::worker::{librdkafka_config, Client, Mode, WorkerConfig};
use crate::group::{
    ClusterConfigView, ConnectProtocol, GroupEvent, GroupHandle, GroupListener, GroupMember,
    MemberConfig, WorkerMetadata,
};
use crate::herder::api::{Herder, HerderError, ServerInfo};
use crate::herder::cluster::{ConnectHerder, HerderParts, Ownership};
use crate::herder::signing::SigningSettings;
use crate::logging::Loggers;
use crate::rest::{RestConfig, RestState};
use crate::spawn::spawn_named;
use crate::storage::config_store::{config_state, ConfigStore};
use crate::storage::kafka_log::{KafkaLog, LogClients, LogError};
use crate::storage::log::{Log, MemoryLog};
use crate::storage::offset_store::{offset_state, OffsetStore, OffsetStoreError};
use crate::storage::status_store::{status_state, StatusStore};
use crate::storage::topics::{self, TopicError, TopicSpec};
use crate::worker::{Worker, WorkerSettings};

/// The Connect REST contract version this worker implements; tools such as
/// kcctl read `version` from `GET /` to decide which endpoints exist.
pub const CONNECT_COMPAT_VERSION: &str = "3.9.0";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("binding the REST listener {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("a start-up step panicked: {0}")]
    Join(String),
    #[error("the worker config has no REST listener")]
    NoListener,
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Offsets(#[from] OffsetStoreError),
    #[error("creating connector {name} from its file: {source}")]
    Connector { name: String, source: HerderError },
}

/// A running worker.
pub struct WorkerHandle {
    pub url: String,
    pub port: u16,
    pub herder: Arc<ConnectHerder>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    group: Option<Arc<GroupHandle>>,
}

impl WorkerHandle {
    /// Stops tasks gracefully (final offset flush), leaves the group and
    /// closes the REST server.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        drop(self.group);
    }

    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

struct Membership {
    herder: Arc<ConnectHerder>,
    url: String,
}

impl GroupListener for Membership {
    fn metadata(&self) -> WorkerMetadata {
        WorkerMetadata {
            url: self.url.clone(),
            config_offset: self.herder.config_store().lock().offset,
            allocation: None,
        }
    }

    fn config_view(&self) -> BoxFuture<'static, ClusterConfigView> {
        let herder = Arc::clone(&self.herder);
        async move {
            if let Err(e) = herder.config_store().read_to_end().await {
                tracing::warn!(error = %e, "reading the config topic before assigning failed");
            }
            let snap = herder.config_store().snapshot();
            ClusterConfigView {
                config_offset: snap.offset,
                connectors: snap
                    .connectors
                    .keys()
                    .map(|n| (n.clone(), snap.task_count(n)))
                    .collect(),
            }
        }
        .boxed()
    }
}

fn topic_spec(key: &str, t: crate::config::worker::TopicSettings, single: bool) -> TopicSpec {
    TopicSpec {
        name: t.topic,
        key: key.to_string(),
        partitions: if single { 1 } else { t.partitions },
        replication_factor: i32::from(t.replication_factor),
        configs: t.configs.into_iter().collect(),
        compacted: true,
        single_partition: single,
    }
}

/// Task producer settings: the worker's `producer.*` keys over Java
/// Connect's defaults (acks=all, idempotence off, one request in flight,
/// unbounded delivery timeout).
///
/// Idempotence stays off by default, as in Java: librdkafka's idempotent
/// producer (2.12 here, 2.16 in confluent-kafka-python alike) busy-polls its
/// broker socket with a zero timeout while it waits for acknowledgements.
/// Measured on 200k x 1 KB records: 270k-790k poll calls and ~40% more CPU
/// idempotent, ~2k non-idempotent; in the MongoDB snapshot benchmark that
/// spinning broker thread was a third of the worker's CPU. One request in
/// flight keeps retries in order without it; `producer.enable.idempotence=true`
/// turns it on.
fn producer_settings(cfg: &WorkerConfig) -> BTreeMap<String, String> {
    cfg.to_librdkafka(Client::Producer)
}

/// Starts a worker. `connector_files` are standalone-mode connector configs.
pub async fn start(
    cfg: WorkerConfig,
    connector_files: Vec<ConnectorFile>,
    loggers: Arc<Loggers>,
) -> Result<WorkerHandle, AppError> {
    let cancel = CancellationToken::new();
    let listener = cfg
        .listeners()
        .first()
        .cloned()
        .ok_or(AppError::NoListener)?;
    let host = if listener.host.is_empty() {
        "0.0.0.0".to_string()
    } else {
        listener.host.clone()
    };
    let addr = format!("{host}:{}", listener.port);
    let tcp = TcpListener::bind(&addr)
        .await
        .map_err(|source| AppError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let port = tcp.local_addr().map(|a| a.port()).unwrap_or(listener.port);
    let worker_id = cfg.worker_id(port);
    let url = cfg.rest_url(port);

    let admin_cfg = cfg.internal_librdkafka(Client::Admin);
    let admin = topics::admin(&admin_cfg)?;
    // Metadata calls block; run them off the async workers.
    let (admin, cluster_id) = tokio::task::spawn_blocking(move || {
        let id = admin.inner().fetch_cluster_id(Duration::from_secs(10));
        (admin, id)
    })
    .await
    .map_err(|e| AppError::Join(e.to_string()))?;

    let (config_parts, offsets, status_log, status_state_arc) = match cfg.mode() {
        Mode::Distributed => {
            let group = cfg.group_id().unwrap_or_default().to_string();
            let prefix = if cfg.client_id().is_empty() {
                group.clone()
            } else {
                format!("{group}-{}", cfg.client_id())
            };
            let (Some(ct), Some(ot), Some(st)) =
                (cfg.config_topic(), cfg.offsets_topic(), cfg.status_topic())
            else {
                return Err(AppError::NoListener);
            };
            let specs = [
                topic_spec("config.storage.topic", ct, true),
                topic_spec("offset.storage.topic", ot, false),
                topic_spec("status.storage.topic", st, false),
            ];
            for s in &specs {
                topics::ensure_topic(&admin, s).await?;
            }
            let client = LogClients {
                producer: cfg.internal_librdkafka(Client::Producer),
                consumer: cfg.internal_librdkafka(Client::Consumer),
            };
            let parts = config_state();
            let applier = parts.applier;
            let config_log = KafkaLog::start(
                &client,
                &format!("{prefix}-configs"),
                &specs[0].name,
                move |r| applier.apply(r),
                cancel.child_token(),
            )?;
            let (ostate, oapply) = offset_state();
            let offsets_log = KafkaLog::start(
                &client,
                &format!("{prefix}-offsets"),
                &specs[1].name,
                oapply,
                cancel.child_token(),
            )?;
            let (sstate, sapply) = status_state();
            let status_log = KafkaLog::start(
                &client,
                &format!("{prefix}-statuses"),
                &specs[2].name,
                sapply,
                cancel.child_token(),
            )?;
            let offsets = OffsetStore::with_log(Log::Kafka(Arc::new(offsets_log)), ostate);
            (
                (
                    Log::Kafka(Arc::new(config_log)),
                    parts.state,
                    parts.changed,
                    parts.events,
                    parts.started,
                ),
                offsets,
                Log::Kafka(Arc::new(status_log)),
                sstate,
            )
        }
        Mode::Standalone => {
            let parts = config_state();
            let applier = parts.applier;
            let config_log = MemoryLog::new("config", move |r| applier.apply(r));
            let (sstate, sapply) = status_state();
            let status_log = MemoryLog::new("status", sapply);
            let path = cfg.offset_storage_file().unwrap_or_default();
            let offsets = OffsetStore::with_file(&path)?;
            (
                (
                    Log::Memory(Arc::new(config_log)),
                    parts.state,
                    parts.changed,
                    parts.events,
                    parts.started,
                ),
                offsets,
                Log::Memory(Arc::new(status_log)),
                sstate,
            )
        }
    };
    let (config_log, config_state_arc, config_changed, config_events, events_started) =
        config_parts;
    let config = Arc::new(ConfigStore::new(
        config_log,
        config_state_arc,
        config_changed,
    ));
    let offsets = Arc::new(offsets);
    let status = Arc::new(StatusStore::new(status_log, status_state_arc));
    // Read everything before acting (contract: read to end at start-up).
    config.read_to_end().await?;
    offsets.read_to_end().await?;
    status.read_to_end().await?;
    events_started.store(true, std::sync::atomic::Ordering::Release);

    let (reconfigure_tx, reconfigure_rx) = mpsc::channel(256);
    let providers = cfg.providers().clone();
    let settings = WorkerSettings {
        worker_id: worker_id.clone(),
        producer: producer_settings(&cfg),
        key_converter: (cfg.key_converter().class, cfg.key_converter().props),
        value_converter: (cfg.value_converter().class, cfg.value_converter().props),
        header_converter: (cfg.header_converter().class, cfg.header_converter().props),
        offset_flush_interval: cfg.offset_flush_interval(),
        offset_flush_timeout: cfg.offset_flush_timeout(),
        graceful_timeout: cfg.task_shutdown_graceful_timeout(),
        topic_tracking: cfg.topic_tracking_enable(),
        override_policy: cfg.override_policy(),
        resolver: Arc::new(move |p: &Props| providers.resolve(p).map_err(|e| e.to_string())),
        client_mapper: Arc::new(|p: &Props| librdkafka_config(Client::Producer, p)),
        consumer: cfg.to_librdkafka(Client::Consumer),
        admin: cfg.to_librdkafka(Client::Admin),
        consumer_mapper: Arc::new(|p: &Props| librdkafka_config(Client::Consumer, p)),
        max_poll_records: cfg
            .client_props(Client::Consumer)
            .get("max.poll.records")
            .cloned(),
        group_id: cfg.group_id().map(str::to_string),
    };
    let worker = Worker::new(
        settings,
        Arc::clone(&offsets),
        Arc::clone(&status),
        reconfigure_tx,
    );
    let herder = ConnectHerder::new(HerderParts {
        worker,
        config: Arc::clone(&config),
        offsets,
        status,
        loggers: Arc::clone(&loggers),
        info: ServerInfo {
            version: CONNECT_COMPAT_VERSION.to_string(),
            commit: format!("connectd-{}", env!("CARGO_PKG_VERSION")),
            kafka_cluster_id: cluster_id,
        },
        topic_tracking: cfg.topic_tracking_enable(),
        topic_tracking_reset: cfg.topic_tracking_allow_reset(),
        signing: SigningSettings {
            key_ttl_ms: i64::try_from(cfg.inter_worker_key_ttl().as_millis()).unwrap_or(i64::MAX),
            key_algorithm: cfg.inter_worker_key_generation_algorithm().to_string(),
            key_bits: cfg
                .inter_worker_key_size()
                .and_then(|b| u32::try_from(b).ok()),
            signature_algorithm: cfg.inter_worker_signature_algorithm().to_string(),
            verification_algorithms: cfg.inter_worker_verification_algorithms(),
        },
    });

    let mut tasks = Vec::new();
    let herder_cancel = cancel.child_token();
    tasks.push(spawn_named(
        "herder",
        Arc::clone(&herder).run(reconfigure_rx, config_events, herder_cancel),
    ));

    let mut group = None;
    match cfg.mode() {
        Mode::Standalone => {
            herder.set_ownership(Ownership::everything());
            for f in connector_files {
                herder
                    .put_connector_config(&f.name, f.config, false, f.initial_state)
                    .await
                    .map_err(|source| AppError::Connector {
                        name: f.name.clone(),
                        source,
                    })?;
            }
        }
        Mode::Distributed => {
            let mut mc = MemberConfig::new(
                cfg.bootstrap_servers(),
                cfg.group_id().unwrap_or_default(),
                if cfg.client_id().is_empty() {
                    format!("connect-{worker_id}")
                } else {
                    cfg.client_id().to_string()
                },
            );
            mc.session_timeout_ms = cfg.session_timeout().as_millis() as i32;
            mc.rebalance_timeout_ms = cfg.rebalance_timeout().as_millis() as i32;
            mc.heartbeat_interval_ms = cfg.heartbeat_interval().as_millis() as u64;
            mc.scheduled_rebalance_max_delay_ms =
                cfg.scheduled_rebalance_max_delay().as_millis() as i32;
            mc.protocol = ConnectProtocol::from_config(
                &format!("{:?}", cfg.connect_protocol()).to_lowercase(),
            )
            .unwrap_or(ConnectProtocol::Sessioned);
            let (ev_tx, ev_rx) = mpsc::channel(16);
            let handle = Arc::new(GroupMember::spawn(
                mc,
                Arc::new(Membership {
                    herder: Arc::clone(&herder),
                    url: url.clone(),
                }),
                ev_tx,
                cancel.child_token(),
            ));
            let h = Arc::clone(&handle);
            herder.set_rejoin_hook(Arc::new(move || h.request_rejoin()));
            tasks.push(spawn_named(
                "group-events",
                group_events(
                    Arc::clone(&herder),
                    Arc::clone(&handle),
                    ev_rx,
                    cancel.child_token(),
                ),
            ));
            group = Some(handle);
        }
    }
    herder.mark_started();

    let rest_state = Arc::new(RestState::new(
        Arc::clone(&herder) as Arc<dyn Herder>,
        loggers,
        RestConfig {
            cors_allow_origin: cfg.access_control_allow_origin().to_string(),
            cors_allow_methods: cfg.access_control_allow_methods().to_string(),
            advertised_url: url.clone(),
            ..RestConfig::default()
        },
    ));
    let rest_cancel = cancel.child_token();
    tasks.push(spawn_named("rest-server", async move {
        if let Err(e) = crate::rest::serve(tcp, rest_state, rest_cancel).await {
            tracing::error!(error = %e, "REST server failed");
        }
    }));

    tracing::info!(%url, %worker_id, "worker started");
    Ok(WorkerHandle {
        url,
        port,
        herder,
        cancel,
        tasks,
        group,
    })
}

/// Applies group membership events to the herder.
async fn group_events(
    herder: Arc<ConnectHerder>,
    handle: Arc<GroupHandle>,
    mut rx: mpsc::Receiver<GroupEvent>,
    cancel: CancellationToken,
) {
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => return,
            e = rx.recv() => match e { Some(e) => e, None => return },
        };
        match ev {
            GroupEvent::Assigned {
                generation,
                is_leader,
                leader_url,
                protocol,
                assignment,
                allocation,
                owners,
                ack,
                ..
            } => {
                let behind = herder.config_store().lock().offset < assignment.config_offset;
                if assignment.failed() || behind {
                    if let Err(e) = herder.config_store().read_to_end().await {
                        tracing::warn!(error = %e, "catching up with the config topic failed");
                    }
                    if assignment.failed() {
                        ack.done();
                        handle.request_rejoin();
                        continue;
                    }
                }
                herder.set_ownership(Ownership {
                    connectors: Some(allocation.connectors.clone()),
                    tasks: Some(allocation.tasks.clone()),
                    leader: is_leader,
                    leader_url,
                    generation,
                    signed: protocol == ConnectProtocol::Sessioned,
                    owners,
                });
                herder.reconcile().await;
                ack.done();
            }
            GroupEvent::Revoked {
                connectors,
                tasks,
                ack,
                reason,
            } => {
                tracing::info!(
                    ?reason,
                    connectors = connectors.len(),
                    tasks = tasks.len(),
                    "work revoked"
                );
                let mut own = herder.ownership().unwrap_or_default();
                if let Some(c) = own.connectors.as_mut() {
                    c.retain(|n| !connectors.contains(n));
                }
                if let Some(t) = own.tasks.as_mut() {
                    t.retain(|id| !tasks.contains(id));
                }
                own.leader = false;
                herder.set_ownership(own);
                herder.reconcile().await;
                ack.done();
            }
            GroupEvent::Error(e) => tracing::warn!(error = %e, "group membership error; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::worker::Mode;

    fn settings(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut p: connect_api::config::Props = [
            ("bootstrap.servers", "b:9092"),
            ("group.id", "g"),
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("config.storage.topic", "c"),
            ("offset.storage.topic", "o"),
            ("status.storage.topic", "s"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        producer_settings(&WorkerConfig::from_props(Mode::Distributed, p).unwrap())
    }

    #[test]
    fn task_producers_get_java_connects_defaults() {
        let p = settings(&[]);
        assert_eq!(p["enable.idempotence"], "false");
        assert_eq!(p["max.in.flight.requests.per.connection"], "1");
        assert_eq!(p["acks"], "all");
        assert_eq!(p["message.timeout.ms"], "2147483647");
    }

    #[test]
    fn the_users_choices_win_and_librdkafka_accepts_them() {
        let p = settings(&[
            ("producer.enable.idempotence", "true"),
            ("producer.max.in.flight.requests.per.connection", "5"),
        ]);
        assert_eq!(p["enable.idempotence"], "true");
        assert_eq!(p["max.in.flight.requests.per.connection"], "5");
        let mut cfg = rdkafka::ClientConfig::new();
        for (k, v) in &p {
            cfg.set(k, v);
        }
        let created: Result<rdkafka::producer::BaseProducer, _> = cfg.create();
        assert!(created.is_ok(), "{:?}", created.err());
    }
}
