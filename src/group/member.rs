//! The worker's group membership loop (contract §3.1, §3.6).
//!
//! # Design
//!
//! [`GroupMember::spawn`] starts one named, cancellable tokio task that owns a
//! single TCP connection to the group coordinator and drives the classic
//! JoinGroup → SyncGroup → Heartbeat cycle with protocol type `connect`:
//!
//! ```text
//!   discover ──► [eager: revoke all, wait ack] ──► JoinGroup ──► (leader: assign)
//!      ▲                                                              │
//!      │                                                          SyncGroup
//!      │                                                              │
//!      └── coordinator lost ◄── heartbeat every interval ◄── emit Assigned
//!                                   │        ▲
//!           rejoin on: REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION,
//!           UNKNOWN_MEMBER_ID, request_rejoin(), the scheduled delay
//!           expiring, or (cooperative) the herder acknowledging revocations
//! ```
//!
//! The herder stays in charge of *work*; the member is in charge of
//! *membership*. They meet at three points:
//!
//! * [`GroupListener::metadata`] supplies the REST URL and config offset at
//!   every join. The member itself tracks the **allocation** (what the group
//!   gave it, with cooperative deltas merged: keep − revoked + new) and
//!   reports that, so the leader always sees exactly what the protocol
//!   handed out; the listener's `allocation` field is ignored.
//! * [`GroupListener::config_view`] is awaited on the leader only, to assign
//!   from an up-to-date config snapshot.
//! * [`GroupEvent`]s go out through a bounded channel. Events that require
//!   the herder to stop work carry a [`RebalanceAck`]: the member does not
//!   proceed until the herder calls [`RebalanceAck::done`] or drops the ack.
//!   This is what makes rebalancing safe without a shared thread: under eager
//!   rebalancing everything is stopped *before* JoinGroup; under cooperative
//!   rebalancing revoked work is stopped *before* the follow-up JoinGroup,
//!   so the leader never hands a task to a new owner while the old one may
//!   still run it. While waiting for a cooperative ack the member keeps
//!   heartbeating, so slow task shutdown does not cost the membership.
//!
//! Other behaviour:
//! * `delay_ms > 0` in an assignment schedules a rejoin at now + delay.
//! * A `CONFIG_MISMATCH` assignment (or one computed at a newer config offset
//!   than the herder has) is delivered as-is; the herder reads the config
//!   topic to its end and calls [`GroupHandle::request_rejoin`]. As a safety
//!   net the member rejoins by itself after `mismatch_rejoin_ms`.
//! * If the coordinator stays unreachable for one heartbeat interval while
//!   the member holds an assignment, it emits `Revoked` (coordinator lost) and
//!   forgets its allocation, like the Java worker.
//! * The leader keeps its [`Assignor`] (cooperative leader state) for the
//!   member's lifetime; the assignor forgets stale state by itself when
//!   another member led in between.
//! * On cancellation the member sends LeaveGroup so the group rebalances at
//!   once instead of after the session timeout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::assignor::{AssignmentRequest, Assignor, ClusterConfigView, Owners};
use super::client::{BrokerConnection, ClientError, JoinParams};
use super::protocol::{Assignment, ConnectProtocol, TaskId, WorkerMetadata, PROTOCOL_TYPE};
use crate::spawn::spawn_named;
use std::collections::BTreeSet;

/// Membership settings (worker config `group.id`, timeouts, `connect.protocol`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConfig {
    /// Comma-separated `host:port` bootstrap list.
    pub bootstrap: String,
    /// Worker `group.id`.
    pub group_id: String,
    /// Client id sent in request headers (`connect-<host:port>` by default).
    pub client_id: String,
    /// `session.timeout.ms` (default 10 000).
    pub session_timeout_ms: i32,
    /// `rebalance.timeout.ms` (default 60 000).
    pub rebalance_timeout_ms: i32,
    /// `heartbeat.interval.ms` (default 3 000).
    pub heartbeat_interval_ms: u64,
    /// `connect.protocol` (default sessioned).
    pub protocol: ConnectProtocol,
    /// `scheduled.rebalance.max.delay.ms` used when this member leads (default 300 000).
    pub scheduled_rebalance_max_delay_ms: i32,
    /// Per-request timeout for non-blocking APIs (`request.timeout.ms`-like, default 40 000).
    pub request_timeout_ms: u64,
    /// Back-off between retries after errors (`retry.backoff.ms`, default 100).
    pub retry_backoff_ms: u64,
    /// Safety-net rejoin after a CONFIG_MISMATCH assignment if the herder does
    /// not request one (default 3 000, `worker.sync.timeout.ms`).
    pub mismatch_rejoin_ms: u64,
}

impl MemberConfig {
    /// Config with the Java worker's defaults.
    pub fn new(
        bootstrap: impl Into<String>,
        group_id: impl Into<String>,
        client_id: impl Into<String>,
    ) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            group_id: group_id.into(),
            client_id: client_id.into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 60_000,
            heartbeat_interval_ms: 3_000,
            protocol: ConnectProtocol::Sessioned,
            scheduled_rebalance_max_delay_ms: 300_000,
            request_timeout_ms: 40_000,
            retry_backoff_ms: 100,
            mismatch_rejoin_ms: 3_000,
        }
    }
}

/// How the herder plugs into the membership loop.
pub trait GroupListener: Send + Sync + 'static {
    /// Current metadata to send in JoinGroup: REST URL and config offset.
    /// (`allocation` is ignored; the member reports the allocation it tracks.)
    fn metadata(&self) -> WorkerMetadata;
    /// Called on the leader only: the config view to assign from (may refresh
    /// by reading the config topic to its end first).
    fn config_view(&self) -> BoxFuture<'static, ClusterConfigView>;
}

/// Completion handle for events that require the herder to stop work first.
/// Call [`RebalanceAck::done`] (or just drop it) once the work is stopped.
#[derive(Debug)]
pub struct RebalanceAck(Option<oneshot::Sender<()>>);

impl RebalanceAck {
    fn new() -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Self(Some(tx)), rx)
    }

    /// Signals that the revoked work has been stopped.
    pub fn done(mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Why work was revoked outside a cooperative assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// Eager rebalance: everything is stopped before rejoining.
    EagerRebalance,
    /// The coordinator was unreachable for a heartbeat interval.
    CoordinatorLost,
    /// The group downgraded to eager while we held cooperative work.
    ProtocolDowngrade,
}

/// What the membership loop tells the herder.
// One event per rebalance: the size difference between variants is irrelevant,
// and unboxed fields keep pattern matching in the herder simple.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum GroupEvent {
    /// A rebalance completed.
    ///
    /// Under cooperative protocols `assignment` is the delta: stop
    /// `assignment.revoked_*`, start `assignment.connectors/tasks`, keep the
    /// rest; `allocation` is the merged full set after this round. Under
    /// eager both are the full set. If `assignment.failed()` or the herder is
    /// behind `assignment.config_offset`, read the config topic to its end
    /// and call [`GroupHandle::request_rejoin`].
    Assigned {
        /// Generation id.
        generation: i32,
        /// Our member id.
        member_id: String,
        /// Leader's member id.
        leader_id: String,
        /// Leader's REST URL.
        leader_url: String,
        /// True on the leader.
        is_leader: bool,
        /// Negotiated subprotocol.
        protocol: ConnectProtocol,
        /// The assignment as received (delta under cooperative).
        assignment: Assignment,
        /// Everything this member now owns.
        allocation: Assignment,
        /// Leader only: the owner of every connector and task.
        owners: Option<Arc<Owners>>,
        /// Must be completed once revoked work is stopped (cooperative); the
        /// follow-up rejoin waits for it. Harmless to drop otherwise.
        ack: RebalanceAck,
    },
    /// Stop this work now (eager revoke-all, coordinator lost, downgrade).
    /// The member waits for `ack` before joining again.
    Revoked {
        /// Connectors to stop.
        connectors: BTreeSet<String>,
        /// Tasks to stop.
        tasks: BTreeSet<TaskId>,
        /// Why.
        reason: RevokeReason,
        /// Complete once stopped.
        ack: RebalanceAck,
    },
    /// A non-retriable-looking error; the member keeps retrying with back-off.
    Error(String),
}

/// Entry point of the membership loop.
#[derive(Debug)]
pub struct GroupMember;

impl GroupMember {
    /// Spawns the membership task (named `group-member:<group>`). It stops
    /// and sends LeaveGroup when `cancel` (or [`GroupHandle::leave`]) fires.
    pub fn spawn(
        config: MemberConfig,
        listener: Arc<dyn GroupListener>,
        events: mpsc::Sender<GroupEvent>,
        cancel: CancellationToken,
    ) -> GroupHandle {
        let cancel = cancel.child_token();
        let rejoin = Arc::new(Notify::new());
        let name = format!("group-member:{}/{}", config.group_id, config.client_id);
        let runner = Runner {
            assignor: Assignor::new(config.scheduled_rebalance_max_delay_ms),
            cfg: config,
            listener,
            events,
            cancel: cancel.clone(),
            rejoin: rejoin.clone(),
            conn: None,
            member_id: String::new(),
            generation: -1,
            protocol: None,
            allocation: None,
            last_completed_generation: -1,
            coordinator_lost_since: None,
            failures: 0,
        };
        let task = spawn_named(&name, runner.run());
        GroupHandle {
            cancel,
            rejoin,
            task,
        }
    }
}

/// Control handle for a running member.
#[derive(Debug)]
pub struct GroupHandle {
    cancel: CancellationToken,
    rejoin: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl GroupHandle {
    /// Asks the member to rejoin the group (new connector, deletion, task-config
    /// commit, caught up after a config mismatch). Coalesces repeated calls.
    pub fn request_rejoin(&self) {
        self.rejoin.notify_one();
    }

    /// Sends LeaveGroup and waits for the task to finish.
    pub async fn leave(self) {
        self.cancel.cancel();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "group member task ended abnormally");
        }
    }

    /// True once the task has exited.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// What to do after a failed step.
enum Step {
    Rejoin(String),
    Rediscover(String),
    Fatal(String),
    Stop,
}

struct Plan {
    rejoin_at: Option<Instant>,
    ack: Option<oneshot::Receiver<()>>,
    rejoin_after_ack: bool,
}

struct Runner {
    cfg: MemberConfig,
    listener: Arc<dyn GroupListener>,
    events: mpsc::Sender<GroupEvent>,
    cancel: CancellationToken,
    rejoin: Arc<Notify>,
    conn: Option<BrokerConnection>,
    member_id: String,
    generation: i32,
    /// Protocol negotiated in the last completed join.
    protocol: Option<ConnectProtocol>,
    /// Merged assignment this member holds.
    allocation: Option<Assignment>,
    last_completed_generation: i32,
    coordinator_lost_since: Option<Instant>,
    assignor: Assignor,
    /// Consecutive failures, for back-off.
    failures: u32,
}

/// Cooperative merge (§3.6): keep what we held minus what is revoked, plus
/// the newly assigned delta. Header fields come from the new assignment.
pub fn merge_cooperative(previous: Option<&Assignment>, delta: &Assignment) -> Assignment {
    let mut full = delta.clone();
    if let Some(prev) = previous {
        full.connectors.extend(
            prev.connectors
                .iter()
                .filter(|c| !delta.revoked_connectors.contains(*c))
                .cloned(),
        );
        full.tasks.extend(
            prev.tasks
                .iter()
                .filter(|t| !delta.revoked_tasks.contains(*t))
                .cloned(),
        );
    }
    full
}

/// Cap of the retry back-off.
const MAX_BACKOFF_MS: u64 = 10_000;

impl Runner {
    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.request_timeout_ms)
    }

    fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.cfg.heartbeat_interval_ms.max(1))
    }

    async fn run(mut self) {
        tracing::info!(
            group = %self.cfg.group_id,
            protocol = %self.cfg.protocol,
            "starting group membership"
        );
        let mut reason = String::from("initial join");
        // Steady state to resume after a coordinator reconnect, when our
        // generation may still be valid (the next heartbeat tells).
        let mut resume: Option<Plan> = None;
        loop {
            if self.cancel.is_cancelled() {
                break;
            }
            if self.conn.is_none() {
                match self.discover().await {
                    Ok(conn) => {
                        self.conn = Some(conn);
                        self.coordinator_lost_since = None;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "group coordinator discovery failed");
                        if !self.on_coordinator_unreachable().await || !self.backoff().await {
                            break;
                        }
                        continue;
                    }
                }
            }
            // Work revoked while the coordinator was away: a rejoin is needed.
            let resumed = resume.take().filter(|_| self.allocation.is_some());
            let mut plan = match resumed {
                Some(plan) => plan,
                None => match self.join_and_sync(&reason).await {
                    Ok(plan) => plan,
                    Err(step) => match self.handle_step(step).await {
                        Some(r) => {
                            reason = r;
                            continue;
                        }
                        None => break,
                    },
                },
            };
            let step = self.steady(&mut plan).await;
            if matches!(step, Step::Rediscover(_)) {
                resume = Some(plan);
            }
            match self.handle_step(step).await {
                Some(r) => reason = r,
                None => break,
            }
        }
        self.leave().await;
    }

    /// Applies a step's side effects; `None` means stop.
    async fn handle_step(&mut self, step: Step) -> Option<String> {
        match step {
            Step::Stop => None,
            Step::Rejoin(r) => Some(r),
            Step::Rediscover(r) => {
                tracing::info!(reason = %r, "lost the group coordinator; rediscovering");
                self.conn = None;
                self.coordinator_lost_since.get_or_insert_with(Instant::now);
                if !self.backoff().await {
                    return None;
                }
                Some(r)
            }
            Step::Fatal(msg) => {
                tracing::error!(error = %msg, "group membership error; retrying");
                if !self.emit(GroupEvent::Error(msg.clone())).await || !self.backoff().await {
                    return None;
                }
                Some(msg)
            }
        }
    }

    /// Maps a client error to the next step, updating member state.
    fn classify(&mut self, e: ClientError) -> Step {
        match e.kafka_error() {
            Some(ResponseError::RebalanceInProgress) => Step::Rejoin(e.to_string()),
            Some(ResponseError::IllegalGeneration) => Step::Rejoin(e.to_string()),
            Some(ResponseError::UnknownMemberId) => {
                self.member_id.clear();
                self.generation = -1;
                Step::Rejoin(e.to_string())
            }
            _ if e.needs_rediscovery() => Step::Rediscover(e.to_string()),
            _ => Step::Fatal(e.to_string()),
        }
    }

    async fn discover(&mut self) -> Result<BrokerConnection, ClientError> {
        let timeout = self.request_timeout();
        let mut boot =
            BrokerConnection::connect_any(&self.cfg.bootstrap, &self.cfg.client_id, timeout)
                .await?;
        let coord = boot.find_coordinator(&self.cfg.group_id).await?;
        tracing::debug!(coordinator = %coord.addr(), node = coord.node_id, "found group coordinator");
        if coord.addr() == boot.addr() {
            return Ok(boot);
        }
        BrokerConnection::connect(&coord.addr(), &self.cfg.client_id, timeout).await
    }

    /// Revokes the assignment once the coordinator has been unreachable for a
    /// heartbeat interval. Returns false if cancelled.
    async fn on_coordinator_unreachable(&mut self) -> bool {
        let since = *self.coordinator_lost_since.get_or_insert_with(Instant::now);
        if since.elapsed() < self.heartbeat_interval() {
            return true;
        }
        match self.allocation.take() {
            Some(a) if !a.failed() && !a.is_empty() => {
                tracing::info!(
                    unreachable_ms = since.elapsed().as_millis() as u64,
                    "group coordinator unreachable; revoking assignment"
                );
                self.revoke_and_wait(a.connectors, a.tasks, RevokeReason::CoordinatorLost)
                    .await
            }
            _ => true,
        }
    }

    /// Emits `Revoked` and waits for the ack (bounded by the rebalance timeout).
    async fn revoke_and_wait(
        &mut self,
        connectors: BTreeSet<String>,
        tasks: BTreeSet<TaskId>,
        reason: RevokeReason,
    ) -> bool {
        let (ack, rx) = RebalanceAck::new();
        if !self
            .emit(GroupEvent::Revoked {
                connectors,
                tasks,
                reason,
                ack,
            })
            .await
        {
            return false;
        }
        let limit = Duration::from_millis(self.cfg.rebalance_timeout_ms.max(0) as u64);
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            r = tokio::time::timeout(limit, rx) => {
                if r.is_err() {
                    tracing::warn!(?reason, "herder did not acknowledge revocation within the rebalance timeout; continuing");
                }
                true
            }
        }
    }

    async fn join_and_sync(&mut self, reason: &str) -> Result<Plan, Step> {
        // Eager: stop everything before joining (onJoinPrepare).
        let effective = self.protocol.unwrap_or(self.cfg.protocol);
        if !effective.is_cooperative() {
            if let Some(a) = self.allocation.take() {
                if !a.failed()
                    && !a.is_empty()
                    && !self
                        .revoke_and_wait(a.connectors, a.tasks, RevokeReason::EagerRebalance)
                        .await
                {
                    return Err(Step::Stop);
                }
            }
        }

        let md = self.listener.metadata();
        let protocols: Vec<(String, Bytes)> = self
            .cfg
            .protocol
            .offered()
            .iter()
            .map(|p| {
                let m = WorkerMetadata {
                    url: md.url.clone(),
                    config_offset: md.config_offset,
                    allocation: if p.is_cooperative() {
                        self.allocation.clone()
                    } else {
                        None
                    },
                };
                (p.name().to_string(), m.encode(*p))
            })
            .collect();
        tracing::info!(
            group = %self.cfg.group_id,
            member_id = %self.member_id,
            %reason,
            config_offset = md.config_offset,
            "joining group"
        );
        let params = JoinParams {
            group_id: &self.cfg.group_id,
            member_id: &self.member_id,
            session_timeout_ms: self.cfg.session_timeout_ms,
            rebalance_timeout_ms: self.cfg.rebalance_timeout_ms,
            protocol_type: PROTOCOL_TYPE,
            protocols,
            reason: Some(reason),
        };
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Step::Rediscover("no coordinator connection".into()))?;
        let joined = tokio::select! {
            _ = self.cancel.cancelled() => return Err(Step::Stop),
            r = conn.join_group(&params) => r,
        };
        let joined = match joined {
            Ok(j) => j,
            Err(e) => return Err(self.classify(e)),
        };
        self.member_id = joined.member_id.clone();
        self.generation = joined.generation_id;
        let protocol = ConnectProtocol::from_name(&joined.protocol_name).ok_or_else(|| {
            Step::Fatal(format!(
                "JoinGroup chose unknown Connect subprotocol '{}'",
                joined.protocol_name
            ))
        })?;
        let is_leader = joined.leader == joined.member_id;
        tracing::info!(
            generation = joined.generation_id,
            member_id = %joined.member_id,
            leader = %joined.leader,
            %protocol,
            is_leader,
            members = joined.members.len(),
            "joined group"
        );

        let mut owners = None;
        let mut assignments = Vec::new();
        if is_leader {
            let mut members = BTreeMap::new();
            for m in &joined.members {
                let (_, md) = WorkerMetadata::decode(&m.metadata).map_err(|e| {
                    Step::Fatal(format!(
                        "decoding metadata of group member {}: {e}",
                        m.member_id
                    ))
                })?;
                members.insert(m.member_id.clone(), md);
            }
            let view = tokio::select! {
                _ = self.cancel.cancelled() => return Err(Step::Stop),
                v = self.listener.config_view() => v,
            };
            let out = self
                .assignor
                .assign(&AssignmentRequest {
                    leader_id: &joined.leader,
                    protocol,
                    members: &members,
                    config: &view,
                    generation: joined.generation_id,
                    last_completed_generation: self.last_completed_generation,
                    now: Instant::now().into_std(),
                })
                .map_err(|e| Step::Fatal(e.to_string()))?;
            for (member, a) in &out.assignments {
                tracing::info!(
                    generation = joined.generation_id,
                    %member,
                    error = a.error,
                    connectors = ?a.connectors,
                    tasks = ?a.tasks.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    revoked_connectors = ?a.revoked_connectors,
                    revoked_tasks = ?a.revoked_tasks.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    delay_ms = a.delay_ms,
                    "leader assigned"
                );
                assignments.push((member.clone(), a.encode(protocol.version())));
            }
            owners = Some(Arc::new(out.owners));
        }

        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Step::Rediscover("no coordinator connection".into()))?;
        let synced = tokio::select! {
            _ = self.cancel.cancelled() => return Err(Step::Stop),
            r = conn.sync_group(
                &self.cfg.group_id,
                joined.generation_id,
                &joined.member_id,
                PROTOCOL_TYPE,
                &joined.protocol_name,
                assignments,
                self.cfg.rebalance_timeout_ms,
            ) => r,
        };
        let bytes = match synced {
            Ok(b) => b,
            Err(e) => return Err(self.classify(e)),
        };
        if bytes.is_empty() {
            return Err(Step::Rejoin(
                "SyncGroup returned an empty assignment".into(),
            ));
        }
        let (_, assignment) = Assignment::decode(&bytes)
            .map_err(|e| Step::Fatal(format!("decoding SyncGroup assignment: {e}")))?;
        self.complete(protocol, is_leader, owners, assignment).await
    }

    /// Merges the new assignment, emits `Assigned`, and plans the steady state.
    async fn complete(
        &mut self,
        protocol: ConnectProtocol,
        is_leader: bool,
        owners: Option<Arc<Owners>>,
        assignment: Assignment,
    ) -> Result<Plan, Step> {
        let full = if protocol.is_cooperative() {
            merge_cooperative(self.allocation.as_ref(), &assignment)
        } else {
            // Downgraded from cooperative without an eager revoke: stop the old set first.
            if let Some(prev) = self.allocation.take() {
                if !prev.failed()
                    && !prev.is_empty()
                    && !self
                        .revoke_and_wait(
                            prev.connectors,
                            prev.tasks,
                            RevokeReason::ProtocolDowngrade,
                        )
                        .await
                {
                    return Err(Step::Stop);
                }
            }
            assignment.clone()
        };
        self.allocation = Some(full.clone());
        self.protocol = Some(protocol);
        self.last_completed_generation = self.generation;
        self.failures = 0;
        tracing::info!(
            generation = self.generation,
            member_id = %self.member_id,
            leader = %assignment.leader,
            error = assignment.error,
            config_offset = assignment.config_offset,
            assigned_connectors = ?assignment.connectors,
            assigned_tasks = ?assignment.tasks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            revoked_connectors = ?assignment.revoked_connectors,
            revoked_tasks = ?assignment.revoked_tasks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            delay_ms = assignment.delay_ms,
            total_connectors = full.connectors.len(),
            total_tasks = full.tasks.len(),
            "received assignment"
        );

        let now = Instant::now();
        let mut rejoin_at = None;
        if assignment.delay_ms > 0 {
            rejoin_at = Some(now + Duration::from_millis(assignment.delay_ms as u64));
        }
        if assignment.failed() {
            let at = now + Duration::from_millis(self.cfg.mismatch_rejoin_ms);
            rejoin_at = Some(rejoin_at.map_or(at, |r: Instant| r.min(at)));
        }
        let rejoin_after_ack = protocol.is_cooperative() && assignment.has_revocations();
        let (ack, rx) = RebalanceAck::new();
        let event = GroupEvent::Assigned {
            generation: self.generation,
            member_id: self.member_id.clone(),
            leader_id: assignment.leader.clone(),
            leader_url: assignment.leader_url.clone(),
            is_leader,
            protocol,
            assignment,
            allocation: full,
            owners,
            ack,
        };
        if !self.emit(event).await {
            return Err(Step::Stop);
        }
        Ok(Plan {
            rejoin_at,
            ack: rejoin_after_ack.then_some(rx),
            rejoin_after_ack,
        })
    }

    /// Heartbeats until something requires a rejoin.
    async fn steady(&mut self, plan: &mut Plan) -> Step {
        let interval = self.heartbeat_interval();
        let mut next_heartbeat = Instant::now() + interval;
        loop {
            let rejoin_at = plan.rejoin_at;
            let waiting_ack = plan.ack.is_some();
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Step::Stop,
                _ = self.rejoin.notified() => return Step::Rejoin("rejoin requested by the herder".into()),
                _ = async {
                    match plan.ack.as_mut() {
                        Some(rx) => { let _ = rx.await; }
                        None => std::future::pending::<()>().await,
                    }
                }, if waiting_ack => {
                    plan.ack = None;
                    if plan.rejoin_after_ack {
                        return Step::Rejoin("revoked work stopped; follow-up rebalance".into());
                    }
                }
                _ = tokio::time::sleep_until(rejoin_at.unwrap_or(next_heartbeat)), if rejoin_at.is_some() => {
                    return Step::Rejoin("scheduled rebalance delay expired".into());
                }
                _ = tokio::time::sleep_until(next_heartbeat) => {
                    let Some(conn) = self.conn.as_mut() else {
                        return Step::Rediscover("no coordinator connection".into());
                    };
                    let r = conn
                        .heartbeat(&self.cfg.group_id, self.generation, &self.member_id)
                        .await;
                    match r {
                        Ok(()) => {
                            self.failures = 0;
                            next_heartbeat = Instant::now() + interval;
                        }
                        Err(e) => {
                            tracing::info!(error = %e, "heartbeat requires rejoin");
                            return self.classify(e);
                        }
                    }
                }
            }
        }
    }

    async fn emit(&self, event: GroupEvent) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            r = self.events.send(event) => {
                if r.is_err() {
                    tracing::warn!("group event receiver dropped; stopping membership");
                }
                r.is_ok()
            }
        }
    }

    /// Sleeps `retry_backoff_ms`, doubling per consecutive failure up to 10 s
    /// (reset by a completed rebalance); false if cancelled.
    async fn backoff(&mut self) -> bool {
        let base = self.cfg.retry_backoff_ms.max(1);
        let d = Duration::from_millis(
            base.saturating_mul(1u64 << self.failures.min(16))
                .min(MAX_BACKOFF_MS.max(base)),
        );
        self.failures = self.failures.saturating_add(1);
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    async fn leave(&mut self) {
        if self.member_id.is_empty() {
            tracing::info!("group membership stopped (never joined)");
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            tracing::info!("group membership stopped without a coordinator connection; the session will expire");
            return;
        };
        match conn
            .leave_group(
                &self.cfg.group_id,
                &self.member_id,
                "the worker is shutting down",
            )
            .await
        {
            Ok(()) => tracing::info!(member_id = %self.member_id, "left group"),
            Err(e) => tracing::warn!(member_id = %self.member_id, error = %e, "LeaveGroup failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooperative_merge_keeps_minus_revoked_plus_new() {
        let prev = Assignment {
            leader: "old".into(),
            connectors: ["a".to_string(), "b".to_string()].into(),
            tasks: [TaskId::new("a", 0), TaskId::new("b", 0)].into(),
            ..Assignment::default()
        };
        let delta = Assignment {
            leader: "new".into(),
            config_offset: 9,
            connectors: ["c".to_string()].into(),
            tasks: [TaskId::new("c", 0)].into(),
            revoked_connectors: ["b".to_string()].into(),
            revoked_tasks: [TaskId::new("b", 0)].into(),
            ..Assignment::default()
        };
        let full = merge_cooperative(Some(&prev), &delta);
        assert_eq!(full.leader, "new");
        assert_eq!(full.config_offset, 9);
        assert_eq!(full.connectors, ["a".to_string(), "c".to_string()].into());
        assert_eq!(
            full.tasks,
            [TaskId::new("a", 0), TaskId::new("c", 0)].into()
        );
        assert_eq!(merge_cooperative(None, &delta).connectors, delta.connectors);
    }

    #[test]
    fn ack_completes_on_done_or_drop() {
        let (ack, mut rx) = RebalanceAck::new();
        ack.done();
        assert_eq!(rx.try_recv(), Ok(()));
        let (ack, mut rx) = RebalanceAck::new();
        drop(ack);
        assert!(rx.try_recv().is_err());
    }
}
