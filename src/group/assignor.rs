//! The leader's assignment of connectors and tasks to workers (contract §3.5).
//!
//! # Design
//!
//! The assignor is pure, synchronous code: it takes every member's decoded
//! [`WorkerMetadata`], the leader's [`ClusterConfigView`], the negotiated
//! [`ConnectProtocol`] and the generation numbers, and returns one
//! [`Assignment`] per member. It performs no I/O, and time enters only through
//! [`AssignmentRequest::now`], so every rebalance scenario is unit-testable.
//!
//! Two strategies exist:
//!
//! * **Eager** (`default`, v0). Every member has already stopped everything
//!   before joining, so the leader computes a full assignment from scratch:
//!   connector names and member ids sorted, one circular iterator over the
//!   members, first over all connectors, then (continuing the same iterator)
//!   over all tasks by connector then task index.
//!
//! * **Incremental cooperative** (`compatible`/`sessioned`, KIP-415). Members
//!   keep running their work across rebalances and report it in their
//!   metadata (`allocation`). The leader diffs that against the config and
//!   against its *own memory of the previous round*, kept in [`Assignor`]
//!   between rebalances (and forgotten when the generation it computed is not
//!   the generation this member last completed, i.e. when another member led
//!   in between or a sync failed):
//!   - *deleted* = previous − configured, revoked from whoever runs them;
//!   - *duplicated* = run by more than one member, revoked from all of them
//!     (they come back as *created* in the follow-up round);
//!   - *lost* = previous − active − deleted: the owner vanished. If every
//!     previous member is still present, the loss is an artefact of a failed
//!     round and the work is reassigned at once; likewise when
//!     `scheduled.rebalance.max.delay.ms` is 0. Otherwise the leader starts
//!     (or continues) a countdown and tells every member the remaining delay,
//!     hoping the owner comes back; on expiry lost work goes round-robin to
//!     members that were empty during the countdown, or is treated as new.
//!   - *created* = configured − previous − active, assigned to the least
//!     loaded members (connectors and tasks balanced separately).
//!   - *load-balancing revocations* (only while no delay is active): members
//!     over ⌊total/members⌋ (+1 for the remainder) lose the excess; it comes
//!     back as *created* in the follow-up round that the revoked members
//!     trigger by rejoining. Two revoking rounds in a row are throttled with
//!     an exponential backoff (1 ms × 40ⁿ, capped at the max delay) so a
//!     flapping group does not revoke forever.
//!
//!   Each member receives only its delta (new work + revocations + delay).
//!   Members merge deltas into their running set (see `member.rs`).
//!
//! In both modes, if the leader's config view is older than the newest
//! offset any member reports, every member gets `CONFIG_MISMATCH` and must
//! catch up and rejoin.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::protocol::{Assignment, ConnectProtocol, TaskId, WorkerMetadata};

/// The leader's view of the connector configuration used to assign work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterConfigView {
    /// Config-topic position this view reflects (next offset to read; −1 = empty topic).
    pub config_offset: i64,
    /// Connector name → number of task configs committed for it.
    pub connectors: BTreeMap<String, u32>,
}

impl ClusterConfigView {
    /// All configured tasks, sorted by connector then index.
    pub fn tasks(&self) -> BTreeSet<TaskId> {
        self.connectors
            .iter()
            .flat_map(|(c, n)| (0..*n).map(move |i| TaskId::new(c.clone(), i)))
            .collect()
    }
}

/// Everything the leader needs for one assignment round.
#[derive(Debug, Clone, Copy)]
pub struct AssignmentRequest<'a> {
    /// The leader's (our) member id.
    pub leader_id: &'a str,
    /// Negotiated subprotocol.
    pub protocol: ConnectProtocol,
    /// Member id → decoded metadata, for every member of this generation.
    pub members: &'a BTreeMap<String, WorkerMetadata>,
    /// Leader's config view (already refreshed if it was behind).
    pub config: &'a ClusterConfigView,
    /// Generation being assigned.
    pub generation: i32,
    /// Last generation this member completed a SyncGroup for (−1 if none).
    pub last_completed_generation: i32,
    /// Current time (monotonic) for delay bookkeeping.
    pub now: Instant,
}

/// Result of an assignment round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupAssignment {
    /// Member id → assignment to send in SyncGroup.
    pub assignments: BTreeMap<String, Assignment>,
    /// Who runs what after this round (leader-only knowledge for request forwarding).
    pub owners: Owners,
}

/// Owner of each connector and task after a round, with member URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owners {
    /// Connector → member id.
    pub connectors: BTreeMap<String, String>,
    /// Task → member id.
    pub tasks: BTreeMap<TaskId, String>,
    /// Member id → REST URL.
    pub urls: BTreeMap<String, String>,
}

impl Owners {
    /// REST URL of the member that owns `connector`, if any.
    pub fn connector_owner_url(&self, connector: &str) -> Option<&str> {
        let member = self.connectors.get(connector)?;
        self.urls.get(member).map(String::as_str)
    }

    /// REST URL of the member that owns `task`, if any.
    pub fn task_owner_url(&self, task: &TaskId) -> Option<&str> {
        let member = self.tasks.get(task)?;
        self.urls.get(member).map(String::as_str)
    }
}

/// Why an assignment could not be computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssignError {
    /// JoinGroup returned no members.
    #[error("cannot assign connectors and tasks: the group has no members")]
    NoMembers,
    /// The leader id is not among the members.
    #[error("cannot assign connectors and tasks: leader {0} is not among the group members")]
    LeaderNotMember(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ConnectorsAndTasks {
    connectors: BTreeSet<String>,
    tasks: BTreeSet<TaskId>,
}

impl ConnectorsAndTasks {
    fn is_empty(&self) -> bool {
        self.connectors.is_empty() && self.tasks.is_empty()
    }

    fn minus(&self, other: &ConnectorsAndTasks) -> ConnectorsAndTasks {
        ConnectorsAndTasks {
            connectors: self
                .connectors
                .difference(&other.connectors)
                .cloned()
                .collect(),
            tasks: self.tasks.difference(&other.tasks).cloned().collect(),
        }
    }

    fn intersect(&self, other: &ConnectorsAndTasks) -> ConnectorsAndTasks {
        ConnectorsAndTasks {
            connectors: self
                .connectors
                .intersection(&other.connectors)
                .cloned()
                .collect(),
            tasks: self.tasks.intersection(&other.tasks).cloned().collect(),
        }
    }

    fn extend(&mut self, other: &ConnectorsAndTasks) {
        self.connectors.extend(other.connectors.iter().cloned());
        self.tasks.extend(other.tasks.iter().cloned());
    }
}

/// One worker's load during computation; lists keep insertion order.
#[derive(Debug, Clone)]
struct WorkerLoad {
    worker: String,
    connectors: Vec<String>,
    tasks: Vec<TaskId>,
}

impl WorkerLoad {
    fn is_empty(&self) -> bool {
        self.connectors.is_empty() && self.tasks.is_empty()
    }

    fn remove(&mut self, what: &ConnectorsAndTasks) {
        self.connectors.retain(|c| !what.connectors.contains(c));
        self.tasks.retain(|t| !what.tasks.contains(t));
    }
}

/// Leader-side assignor with the state incremental cooperative rebalancing
/// carries between rounds. Keep one per member for the member's lifetime.
#[derive(Debug, Clone)]
pub struct Assignor {
    max_delay_ms: i32,
    previous_assignment: ConnectorsAndTasks,
    previous_revocation: ConnectorsAndTasks,
    revoked_in_previous: bool,
    candidate_workers: Vec<String>,
    scheduled_rebalance: Option<Instant>,
    delay_ms: i32,
    previous_generation: i32,
    previous_members: BTreeSet<String>,
    successive_revoking_rounds: u32,
}

impl Assignor {
    /// Creates an assignor; `scheduled_rebalance_max_delay_ms` is the worker's
    /// `scheduled.rebalance.max.delay.ms` (default 300 000; 0 = reassign lost work at once).
    pub fn new(scheduled_rebalance_max_delay_ms: i32) -> Self {
        Self {
            max_delay_ms: scheduled_rebalance_max_delay_ms.max(0),
            previous_assignment: ConnectorsAndTasks::default(),
            previous_revocation: ConnectorsAndTasks::default(),
            revoked_in_previous: false,
            candidate_workers: Vec::new(),
            scheduled_rebalance: None,
            delay_ms: 0,
            previous_generation: -1,
            previous_members: BTreeSet::new(),
            successive_revoking_rounds: 0,
        }
    }

    /// Computes every member's assignment for this round.
    pub fn assign(&mut self, req: &AssignmentRequest<'_>) -> Result<GroupAssignment, AssignError> {
        let max_offset = req
            .members
            .values()
            .map(|m| m.config_offset)
            .max()
            .ok_or(AssignError::NoMembers)?;
        let leader_url = req
            .members
            .get(req.leader_id)
            .map(|m| m.url.clone())
            .ok_or_else(|| AssignError::LeaderNotMember(req.leader_id.to_string()))?;
        let urls: BTreeMap<String, String> = req
            .members
            .iter()
            .map(|(id, m)| (id.clone(), m.url.clone()))
            .collect();
        let template = Assignment {
            leader: req.leader_id.to_string(),
            leader_url,
            ..Assignment::default()
        };

        if req.config.config_offset < max_offset {
            tracing::info!(
                leader_offset = req.config.config_offset,
                max_offset,
                "leader config is behind a member; assigning CONFIG_MISMATCH so members re-sync"
            );
            let failed = Assignment {
                error: Assignment::CONFIG_MISMATCH,
                config_offset: max_offset,
                ..template
            };
            return Ok(GroupAssignment {
                assignments: req
                    .members
                    .keys()
                    .map(|id| (id.clone(), failed.clone()))
                    .collect(),
                owners: Owners {
                    urls,
                    ..Owners::default()
                },
            });
        }
        let template = Assignment {
            config_offset: req.config.config_offset,
            ..template
        };
        let mut result = if req.protocol.is_cooperative() {
            self.assign_cooperative(req, &template)
        } else {
            assign_eager(req, &template)
        };
        result.owners.urls = urls;
        Ok(result)
    }

    fn assign_cooperative(
        &mut self,
        req: &AssignmentRequest<'_>,
        template: &Assignment,
    ) -> GroupAssignment {
        let now = req.now;
        if self.previous_generation != req.last_completed_generation {
            tracing::debug!(
                previous_generation = self.previous_generation,
                last_completed = req.last_completed_generation,
                "forgetting previous assignment view after a generation gap"
            );
            self.previous_assignment = ConnectorsAndTasks::default();
        }

        let configured = ConnectorsAndTasks {
            connectors: req.config.connectors.keys().cloned().collect(),
            tasks: req.config.tasks(),
        };
        let member_assignments: BTreeMap<String, ConnectorsAndTasks> = req
            .members
            .iter()
            .map(|(id, md)| {
                let cat = md
                    .allocation
                    .as_ref()
                    .map(|a| ConnectorsAndTasks {
                        connectors: a.connectors.clone(),
                        tasks: a.tasks.clone(),
                    })
                    .unwrap_or_default();
                (id.clone(), cat)
            })
            .collect();
        let mut active = ConnectorsAndTasks::default();
        for cat in member_assignments.values() {
            active.extend(cat);
        }

        // A revocation from the previous round that did not take effect:
        // trust what members actually run.
        if !self.previous_revocation.is_empty() {
            if !self.previous_revocation.intersect(&active).is_empty() {
                self.previous_assignment = active.clone();
            }
            self.previous_revocation = ConnectorsAndTasks::default();
        }

        let deleted = self.previous_assignment.minus(&configured);
        let duplicated = duplicated(&member_assignments);
        let lost = self.previous_assignment.minus(&active).minus(&deleted);
        let created = configured.minus(&self.previous_assignment).minus(&active);
        tracing::debug!(
            ?deleted,
            ?duplicated,
            ?lost,
            ?created,
            "cooperative assignment sets"
        );

        let current: Vec<WorkerLoad> = worker_loads(&member_assignments, &deleted);
        let mut to_revoke: BTreeMap<String, ConnectorsAndTasks> = BTreeMap::new();
        for (id, cat) in &member_assignments {
            let mut r = cat.intersect(&deleted);
            r.extend(&cat.intersect(&duplicated));
            if !r.is_empty() {
                to_revoke.entry(id.clone()).or_default().extend(&r);
            }
        }
        let mut next = worker_loads(&member_assignments, &ConnectorsAndTasks::default());
        for w in &mut next {
            if let Some(r) = to_revoke.get(&w.worker) {
                w.remove(r);
            }
        }

        let lost_to_reassign = self.handle_lost(&lost, &mut next, now);

        if self.delay_ms == 0 {
            let lb = load_balancing_revocations(&configured, &next);
            if self.revoked_in_previous && !lb.is_empty() {
                self.successive_revoking_rounds = self.successive_revoking_rounds.saturating_add(1);
                self.delay_ms = backoff_ms(self.successive_revoking_rounds, self.max_delay_ms);
                if self.delay_ms != 0 {
                    self.scheduled_rebalance =
                        Some(now + Duration::from_millis(self.delay_ms as u64));
                    tracing::info!(
                        delay_ms = self.delay_ms,
                        "successive revoking rebalances; postponing load-balancing revocations"
                    );
                } else {
                    apply_revocations(&mut to_revoke, &mut next, &lb);
                }
            } else if !lb.is_empty() {
                apply_revocations(&mut to_revoke, &mut next, &lb);
                self.revoked_in_previous = true;
            } else if self.revoked_in_previous {
                self.revoked_in_previous = false;
                self.successive_revoking_rounds = 0;
            }
        } else {
            self.revoked_in_previous = false;
        }

        let mut to_assign = created;
        to_assign.extend(&lost_to_reassign);
        assign_connectors(&mut next, &to_assign.connectors);
        assign_tasks(&mut next, &to_assign.tasks);

        // Remember what the cluster runs after this round, minus revocations,
        // plus lost work still waiting for its owner.
        let mut prev = ConnectorsAndTasks::default();
        for w in &next {
            prev.connectors.extend(w.connectors.iter().cloned());
            prev.tasks.extend(w.tasks.iter().cloned());
        }
        for r in to_revoke.values() {
            prev = prev.minus(r);
            self.previous_revocation.extend(r);
        }
        prev.extend(&lost);
        self.previous_assignment = prev;
        self.previous_generation = req.generation;
        self.previous_members = req.members.keys().cloned().collect();

        let current_by_worker: BTreeMap<&str, &WorkerLoad> =
            current.iter().map(|w| (w.worker.as_str(), w)).collect();
        let mut out = GroupAssignment::default();
        for w in &next {
            let cur = current_by_worker.get(w.worker.as_str());
            let revoked = to_revoke.get(&w.worker).cloned().unwrap_or_default();
            let mut a = Assignment {
                delay_ms: self.delay_ms,
                revoked_connectors: revoked.connectors.clone(),
                revoked_tasks: revoked.tasks.clone(),
                ..template.clone()
            };
            for c in &w.connectors {
                if !cur.is_some_and(|cur| cur.connectors.contains(c)) {
                    a.connectors.insert(c.clone());
                }
                if !revoked.connectors.contains(c) {
                    out.owners.connectors.insert(c.clone(), w.worker.clone());
                }
            }
            for t in &w.tasks {
                if !cur.is_some_and(|cur| cur.tasks.contains(t)) {
                    a.tasks.insert(t.clone());
                }
                if !revoked.tasks.contains(t) {
                    out.owners.tasks.insert(t.clone(), w.worker.clone());
                }
            }
            out.assignments.insert(w.worker.clone(), a);
        }
        out
    }

    /// Decides what to do with lost work; returns what to reassign as new
    /// this round (possibly after assigning some directly to candidates).
    fn handle_lost(
        &mut self,
        lost: &ConnectorsAndTasks,
        next: &mut [WorkerLoad],
        now: Instant,
    ) -> ConnectorsAndTasks {
        if lost.is_empty() && !self.revoked_in_previous {
            self.reset_delay();
            return ConnectorsAndTasks::default();
        }
        let present: BTreeSet<&str> = next.iter().map(|w| w.worker.as_str()).collect();
        let all_previous_present = self
            .previous_members
            .iter()
            .all(|m| present.contains(m.as_str()));
        if self.scheduled_rebalance.is_none() && all_previous_present {
            if !lost.is_empty() {
                tracing::info!(
                    ?lost,
                    "no member left the group; reassigning missing work immediately"
                );
            }
            return lost.clone();
        }
        if self.max_delay_ms == 0 {
            tracing::info!(
                ?lost,
                "scheduled rebalance delay is 0; reassigning lost work immediately"
            );
            return lost.clone();
        }
        match self.scheduled_rebalance {
            Some(at) if now >= at => {
                let candidates: Vec<usize> = self
                    .candidate_workers
                    .iter()
                    .filter_map(|c| next.iter().position(|w| &w.worker == c))
                    .collect();
                let mut reassign = ConnectorsAndTasks::default();
                if candidates.is_empty() {
                    tracing::info!(
                        ?lost,
                        "scheduled rebalance delay expired; lost work becomes new work"
                    );
                    reassign = lost.clone();
                } else {
                    tracing::info!(
                        ?lost,
                        "scheduled rebalance delay expired; giving lost work to new members"
                    );
                    for (i, c) in lost.connectors.iter().enumerate() {
                        next[candidates[i % candidates.len()]]
                            .connectors
                            .push(c.clone());
                    }
                    for (i, t) in lost.tasks.iter().enumerate() {
                        next[candidates[i % candidates.len()]].tasks.push(t.clone());
                    }
                }
                self.reset_delay();
                self.revoked_in_previous = false;
                reassign
            }
            scheduled => {
                for w in next.iter().filter(|w| w.is_empty()) {
                    if !self.candidate_workers.contains(&w.worker) {
                        self.candidate_workers.push(w.worker.clone());
                    }
                }
                self.delay_ms = match scheduled {
                    Some(at) => {
                        let left = at.saturating_duration_since(now).as_millis();
                        left.min(self.max_delay_ms as u128) as i32
                    }
                    None => self.max_delay_ms,
                };
                self.scheduled_rebalance = Some(now + Duration::from_millis(self.delay_ms as u64));
                tracing::info!(
                    delay_ms = self.delay_ms,
                    ?lost,
                    "members left the group; holding their work for the scheduled rebalance delay"
                );
                ConnectorsAndTasks::default()
            }
        }
    }

    fn reset_delay(&mut self) {
        self.candidate_workers.clear();
        self.scheduled_rebalance = None;
        self.delay_ms = 0;
    }
}

fn duplicated(members: &BTreeMap<String, ConnectorsAndTasks>) -> ConnectorsAndTasks {
    let mut seen = ConnectorsAndTasks::default();
    let mut dup = ConnectorsAndTasks::default();
    for cat in members.values() {
        for c in &cat.connectors {
            if !seen.connectors.insert(c.clone()) {
                dup.connectors.insert(c.clone());
            }
        }
        for t in &cat.tasks {
            if !seen.tasks.insert(t.clone()) {
                dup.tasks.insert(t.clone());
            }
        }
    }
    dup
}

fn worker_loads(
    members: &BTreeMap<String, ConnectorsAndTasks>,
    exclude: &ConnectorsAndTasks,
) -> Vec<WorkerLoad> {
    members
        .iter()
        .map(|(id, cat)| WorkerLoad {
            worker: id.clone(),
            connectors: cat
                .connectors
                .difference(&exclude.connectors)
                .cloned()
                .collect(),
            tasks: cat.tasks.difference(&exclude.tasks).cloned().collect(),
        })
        .collect()
}

fn apply_revocations(
    to_revoke: &mut BTreeMap<String, ConnectorsAndTasks>,
    next: &mut [WorkerLoad],
    lb: &BTreeMap<String, ConnectorsAndTasks>,
) {
    for (worker, r) in lb {
        to_revoke.entry(worker.clone()).or_default().extend(r);
    }
    for w in next {
        if let Some(r) = lb.get(&w.worker) {
            w.remove(r);
        }
    }
}

/// Revokes work from over-loaded workers down to a perfectly balanced share.
fn load_balancing_revocations(
    configured: &ConnectorsAndTasks,
    workers: &[WorkerLoad],
) -> BTreeMap<String, ConnectorsAndTasks> {
    let mut out: BTreeMap<String, ConnectorsAndTasks> = BTreeMap::new();
    if workers.iter().all(WorkerLoad::is_empty) || configured.is_empty() {
        return out;
    }
    for (w, revoked) in excess(configured.connectors.len(), workers, |w| &w.connectors) {
        out.entry(w).or_default().connectors.extend(revoked);
    }
    for (w, revoked) in excess(configured.tasks.len(), workers, |w| &w.tasks) {
        out.entry(w).or_default().tasks.extend(revoked);
    }
    out
}

fn excess<T: Clone>(
    total: usize,
    workers: &[WorkerLoad],
    items: impl Fn(&WorkerLoad) -> &Vec<T>,
) -> Vec<(String, Vec<T>)> {
    let n = workers.len();
    let min = total / n;
    let extra = total % n;
    let at_min = workers.iter().filter(|w| items(w).len() == min).count();
    let at_extra = workers.iter().filter(|w| items(w).len() == min + 1).count();
    if at_extra == extra && at_min + at_extra == n {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut extras_given = 0;
    for w in workers {
        let have = items(w).len();
        if have <= min {
            continue;
        }
        let allowed = if extras_given < extra {
            extras_given += 1;
            if have == min + 1 {
                continue;
            }
            min + 1
        } else {
            min
        };
        let revoked: Vec<T> = items(w).iter().take(have - allowed).cloned().collect();
        out.push((w.worker.clone(), revoked));
    }
    out
}

/// Round-robin over the least-loaded workers (by connector count).
fn assign_connectors(workers: &mut [WorkerLoad], connectors: &BTreeSet<String>) {
    workers.sort_by_key(|w| w.connectors.len());
    level_fill(workers, connectors.iter().cloned(), |w| &mut w.connectors);
}

/// Round-robin over the least-loaded workers (by task count).
fn assign_tasks(workers: &mut [WorkerLoad], tasks: &BTreeSet<TaskId>) {
    workers.sort_by_key(|w| w.tasks.len());
    level_fill(workers, tasks.iter().cloned(), |w| &mut w.tasks);
}

/// `workers` must be sorted ascending by the load `items` measures. Fills
/// the lowest level across all workers at it, then the next, and so on.
fn level_fill<T>(
    workers: &mut [WorkerLoad],
    mut load: impl Iterator<Item = T>,
    items: impl Fn(&mut WorkerLoad) -> &mut Vec<T>,
) {
    let Some(mut item) = load.next() else {
        return;
    };
    if workers.is_empty() {
        return;
    }
    loop {
        let first = items(&mut workers[0]).len();
        let up_to = (0..workers.len())
            .find(|&i| items(&mut workers[i]).len() > first)
            .unwrap_or(workers.len());
        for w in workers[..up_to].iter_mut() {
            items(w).push(item);
            match load.next() {
                Some(i) => item = i,
                None => return,
            }
        }
    }
}

/// Exponential backoff between successive revoking rounds: 1 ms × 40ⁿ capped
/// at `max_ms`; always 0 when `max_ms` is 0.
fn backoff_ms(attempts: u32, max_ms: i32) -> i32 {
    if max_ms <= 1 {
        return max_ms.max(0);
    }
    let exp_max = (max_ms as f64).ln() / 40f64.ln();
    let exp = (attempts as f64).min(exp_max);
    let term = 40f64.powf(exp) as i64;
    term.min(max_ms as i64) as i32
}

fn assign_eager(req: &AssignmentRequest<'_>, template: &Assignment) -> GroupAssignment {
    let members: Vec<&String> = req.members.keys().collect();
    let mut out = GroupAssignment::default();
    for m in &members {
        out.assignments.insert((*m).clone(), template.clone());
    }
    let mut it = members.iter().cycle();
    for c in req.config.connectors.keys() {
        if let Some(m) = it.next() {
            if let Some(a) = out.assignments.get_mut(*m) {
                a.connectors.insert(c.clone());
            }
            out.owners.connectors.insert(c.clone(), (*m).clone());
        }
    }
    for t in req.config.tasks() {
        if let Some(m) = it.next() {
            if let Some(a) = out.assignments.get_mut(*m) {
                a.tasks.insert(t.clone());
            }
            out.owners.tasks.insert(t, (*m).clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(offset: i64, connectors: &[(&str, u32)]) -> ClusterConfigView {
        ClusterConfigView {
            config_offset: offset,
            connectors: connectors
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
        }
    }

    /// A simulated cluster: members keep their merged allocation like real workers.
    struct Sim {
        assignor: Assignor,
        protocol: ConnectProtocol,
        held: BTreeMap<String, Assignment>,
        generation: i32,
        last_completed: i32,
        now: Instant,
    }

    impl Sim {
        fn new(protocol: ConnectProtocol, max_delay: i32) -> Self {
            Self {
                assignor: Assignor::new(max_delay),
                protocol,
                held: BTreeMap::new(),
                generation: 0,
                last_completed: -1,
                now: Instant::now(),
            }
        }

        fn join(&mut self, id: &str) {
            self.held.insert(id.to_string(), Assignment::default());
        }

        fn leave(&mut self, id: &str) {
            self.held.remove(id);
        }

        fn advance(&mut self, ms: u64) {
            self.now += Duration::from_millis(ms);
        }

        /// Runs one round (leader = first member), applies the deltas, returns the raw result.
        fn round(&mut self, cfg: &ClusterConfigView) -> GroupAssignment {
            self.generation += 1;
            let members: BTreeMap<String, WorkerMetadata> = self
                .held
                .iter()
                .map(|(id, a)| {
                    let md = WorkerMetadata {
                        url: format!("http://{id}:8083/"),
                        config_offset: cfg.config_offset,
                        allocation: (!a.is_empty()).then(|| a.clone()),
                    };
                    (id.clone(), md)
                })
                .collect();
            let leader = members.keys().next().expect("members").clone();
            let out = self
                .assignor
                .assign(&AssignmentRequest {
                    leader_id: &leader,
                    protocol: self.protocol,
                    members: &members,
                    config: cfg,
                    generation: self.generation,
                    last_completed_generation: self.last_completed,
                    now: self.now,
                })
                .expect("assign");
            // Wire round trip, then merge like a member does.
            for (id, a) in &out.assignments {
                let (_, a) = Assignment::decode(&a.encode(self.protocol.version())).expect("codec");
                let held = self.held.get_mut(id).expect("member");
                if self.protocol.is_cooperative() {
                    for c in &a.revoked_connectors {
                        held.connectors.remove(c);
                    }
                    for t in &a.revoked_tasks {
                        held.tasks.remove(t);
                    }
                    held.connectors.extend(a.connectors.iter().cloned());
                    held.tasks.extend(a.tasks.iter().cloned());
                } else {
                    *held = a.clone();
                }
            }
            self.last_completed = self.generation;
            out
        }

        fn counts(&self) -> BTreeMap<String, (usize, usize)> {
            self.held
                .iter()
                .map(|(id, a)| (id.clone(), (a.connectors.len(), a.tasks.len())))
                .collect()
        }

        /// Every configured item held exactly once.
        fn assert_complete(&self, cfg: &ClusterConfigView) {
            let mut cs = Vec::new();
            let mut ts = Vec::new();
            for a in self.held.values() {
                cs.extend(a.connectors.iter().cloned());
                ts.extend(a.tasks.iter().cloned());
            }
            cs.sort();
            ts.sort();
            assert_eq!(cs, cfg.connectors.keys().cloned().collect::<Vec<_>>());
            assert_eq!(ts, cfg.tasks().into_iter().collect::<Vec<_>>());
        }
    }

    fn balanced(counts: &BTreeMap<String, (usize, usize)>) -> bool {
        let cs: Vec<usize> = counts.values().map(|c| c.0).collect();
        let ts: Vec<usize> = counts.values().map(|c| c.1).collect();
        let spread = |v: &[usize]| v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0);
        spread(&cs) <= 1 && spread(&ts) <= 1
    }

    #[test]
    fn single_member_gets_everything_both_modes() {
        let cfg = view(7, &[("a", 2), ("b", 1)]);
        for p in [ConnectProtocol::Eager, ConnectProtocol::Sessioned] {
            let mut sim = Sim::new(p, 300_000);
            sim.join("m1");
            let out = sim.round(&cfg);
            let a = &out.assignments["m1"];
            assert_eq!(a.leader, "m1");
            assert_eq!(a.leader_url, "http://m1:8083/");
            assert_eq!(a.config_offset, 7);
            assert_eq!(a.delay_ms, 0);
            assert!(!a.failed());
            sim.assert_complete(&cfg);
            assert_eq!(out.owners.connector_owner_url("a"), Some("http://m1:8083/"));
        }
    }

    #[test]
    fn eager_round_robin_continues_iterator_over_tasks() {
        let cfg = view(1, &[("a", 2), ("b", 2)]);
        let mut sim = Sim::new(ConnectProtocol::Eager, 0);
        for m in ["m1", "m2", "m3"] {
            sim.join(m);
        }
        let out = sim.round(&cfg);
        let m1 = &out.assignments["m1"];
        let m2 = &out.assignments["m2"];
        let m3 = &out.assignments["m3"];
        assert_eq!(m1.connectors, ["a".to_string()].into());
        assert_eq!(m2.connectors, ["b".to_string()].into());
        assert!(m3.connectors.is_empty());
        // tasks continue at m3: a-0→m3, a-1→m1, b-0→m2, b-1→m3
        assert_eq!(m3.tasks, [TaskId::new("a", 0), TaskId::new("b", 1)].into());
        assert_eq!(m1.tasks, [TaskId::new("a", 1)].into());
        assert_eq!(m2.tasks, [TaskId::new("b", 0)].into());
        assert!(balanced(&sim.counts()));
    }

    #[test]
    fn cooperative_new_group_of_three_is_balanced() {
        let cfg = view(3, &[("a", 4), ("b", 3), ("c", 1)]);
        let mut sim = Sim::new(ConnectProtocol::Compatible, 300_000);
        for m in ["m1", "m2", "m3"] {
            sim.join(m);
        }
        sim.round(&cfg);
        sim.assert_complete(&cfg);
        assert!(balanced(&sim.counts()), "{:?}", sim.counts());
    }

    #[test]
    fn member_joins_revocation_then_reassignment() {
        let cfg = view(3, &[("a", 4), ("b", 2)]);
        let mut sim = Sim::new(ConnectProtocol::Sessioned, 300_000);
        sim.join("m1");
        sim.round(&cfg);
        sim.join("m2");
        // Round 1: m1 is asked to give up its excess; m2 receives nothing yet.
        let out = sim.round(&cfg);
        let r1 = &out.assignments["m1"];
        assert_eq!(r1.revoked_connectors.len(), 1);
        assert_eq!(r1.revoked_tasks.len(), 3);
        assert!(out.assignments["m2"].is_empty());
        assert_eq!(sim.counts()["m1"], (1, 3));
        // Follow-up round (the revoked member rejoins): the freed work goes to m2.
        let out = sim.round(&cfg);
        assert!(!out.assignments["m1"].has_revocations());
        assert_eq!(out.assignments["m2"].connectors.len(), 1);
        assert_eq!(out.assignments["m2"].tasks.len(), 3);
        sim.assert_complete(&cfg);
        assert!(balanced(&sim.counts()));
        // And it is stable afterwards.
        let out = sim.round(&cfg);
        assert!(out
            .assignments
            .values()
            .all(|a| a.is_empty() && !a.has_revocations()));
    }

    #[test]
    fn member_leaves_lost_work_held_for_delay_then_reassigned() {
        let cfg = view(3, &[("a", 3), ("b", 3)]);
        let mut sim = Sim::new(ConnectProtocol::Sessioned, 10_000);
        sim.join("m1");
        sim.join("m2");
        sim.round(&cfg);
        sim.assert_complete(&cfg);
        let m2_had = sim.counts()["m2"];
        sim.leave("m2");
        // m2's work is lost: held for the delay.
        let out = sim.round(&cfg);
        assert_eq!(out.assignments["m1"].delay_ms, 10_000);
        assert!(out.assignments["m1"].is_empty());
        sim.advance(4_000);
        let out = sim.round(&cfg);
        assert_eq!(out.assignments["m1"].delay_ms, 6_000);
        assert!(out.assignments["m1"].is_empty());
        // Delay expired: lost work comes back to the survivor.
        sim.advance(6_000);
        let out = sim.round(&cfg);
        assert_eq!(out.assignments["m1"].delay_ms, 0);
        assert_eq!(out.assignments["m1"].connectors.len(), m2_had.0);
        assert_eq!(out.assignments["m1"].tasks.len(), m2_had.1);
        sim.assert_complete(&cfg);
    }

    #[test]
    fn lost_work_goes_to_member_that_joined_during_delay() {
        let cfg = view(3, &[("a", 3), ("b", 3)]);
        let mut sim = Sim::new(ConnectProtocol::Sessioned, 10_000);
        sim.join("m1");
        sim.join("m2");
        sim.round(&cfg);
        let m2_had = sim.counts()["m2"];
        sim.leave("m2");
        sim.round(&cfg);
        sim.join("m3"); // the replacement, with a new member id
        sim.advance(2_000);
        let out = sim.round(&cfg);
        assert_eq!(out.assignments["m3"].delay_ms, 8_000);
        assert!(out.assignments["m3"].is_empty());
        sim.advance(8_000);
        sim.round(&cfg);
        assert_eq!(sim.counts()["m3"], m2_had);
        sim.assert_complete(&cfg);
    }

    #[test]
    fn member_leaves_with_zero_delay_is_reassigned_at_once() {
        let cfg = view(3, &[("a", 3), ("b", 3)]);
        let mut sim = Sim::new(ConnectProtocol::Sessioned, 0);
        sim.join("m1");
        sim.join("m2");
        sim.round(&cfg);
        sim.leave("m1");
        let out = sim.round(&cfg);
        assert_eq!(out.assignments["m2"].delay_ms, 0);
        sim.assert_complete(&cfg);
    }

    #[test]
    fn connector_deleted_is_revoked() {
        let cfg = view(3, &[("a", 2), ("b", 2)]);
        let mut sim = Sim::new(ConnectProtocol::Sessioned, 300_000);
        sim.join("m1");
        sim.join("m2");
        sim.round(&cfg);
        let cfg2 = view(4, &[("a", 2)]);
        let out = sim.round(&cfg2);
        let mut revoked_c = BTreeSet::new();
        let mut revoked_t = BTreeSet::new();
        for a in out.assignments.values() {
            revoked_c.extend(a.revoked_connectors.iter().cloned());
            revoked_t.extend(a.revoked_tasks.iter().cloned());
            assert_eq!(a.config_offset, 4);
        }
        assert_eq!(revoked_c, ["b".to_string()].into());
        assert_eq!(revoked_t, [TaskId::new("b", 0), TaskId::new("b", 1)].into());
        sim.assert_complete(&cfg2);
        // Follow-up round rebalances what remains without touching anything else.
        sim.round(&cfg2);
        sim.assert_complete(&cfg2);
        assert!(balanced(&sim.counts()));
    }

    #[test]
    fn new_connector_and_task_count_change_are_assigned() {
        let cfg = view(3, &[("a", 2)]);
        let mut sim = Sim::new(ConnectProtocol::Sessioned, 300_000);
        sim.join("m1");
        sim.join("m2");
        sim.round(&cfg);
        let cfg2 = view(5, &[("a", 1), ("b", 3)]);
        sim.round(&cfg2);
        sim.round(&cfg2);
        sim.assert_complete(&cfg2);
        assert!(balanced(&sim.counts()), "{:?}", sim.counts());
    }

    #[test]
    fn duplicated_work_is_revoked_from_all_holders_then_reassigned_once() {
        let cfg = view(3, &[("a", 1)]);
        let mut sim = Sim::new(ConnectProtocol::Sessioned, 300_000);
        sim.join("m1");
        sim.join("m2");
        sim.round(&cfg);
        // Both claim everything (e.g. a partition healed).
        let all = sim.held.values().fold(Assignment::default(), |mut acc, a| {
            acc.connectors.extend(a.connectors.iter().cloned());
            acc.tasks.extend(a.tasks.iter().cloned());
            acc
        });
        for a in sim.held.values_mut() {
            a.connectors = all.connectors.clone();
            a.tasks = all.tasks.clone();
        }
        let out = sim.round(&cfg);
        assert!(out
            .assignments
            .values()
            .all(|a| a.revoked_connectors.contains("a")));
        sim.round(&cfg);
        sim.assert_complete(&cfg);
    }

    #[test]
    fn config_mismatch_when_leader_is_behind() {
        let cfg = view(3, &[("a", 1)]);
        for p in [ConnectProtocol::Eager, ConnectProtocol::Sessioned] {
            let mut assignor = Assignor::new(0);
            let members: BTreeMap<String, WorkerMetadata> = [("m1", 3), ("m2", 9)]
                .into_iter()
                .map(|(id, off)| {
                    (
                        id.to_string(),
                        WorkerMetadata {
                            url: format!("http://{id}/"),
                            config_offset: off,
                            allocation: None,
                        },
                    )
                })
                .collect();
            let out = assignor
                .assign(&AssignmentRequest {
                    leader_id: "m1",
                    protocol: p,
                    members: &members,
                    config: &cfg,
                    generation: 1,
                    last_completed_generation: -1,
                    now: Instant::now(),
                })
                .expect("assign");
            for a in out.assignments.values() {
                assert_eq!(a.error, Assignment::CONFIG_MISMATCH);
                assert_eq!(a.config_offset, 9);
                assert!(a.is_empty());
                assert_eq!(a.leader_url, "http://m1/");
            }
        }
    }

    #[test]
    fn leader_must_be_member() {
        let members = BTreeMap::from([("m1".to_string(), WorkerMetadata::default())]);
        let err = Assignor::new(0).assign(&AssignmentRequest {
            leader_id: "zz",
            protocol: ConnectProtocol::Sessioned,
            members: &members,
            config: &ClusterConfigView::default(),
            generation: 1,
            last_completed_generation: -1,
            now: Instant::now(),
        });
        assert_eq!(err, Err(AssignError::LeaderNotMember("zz".into())));
    }

    #[test]
    fn generation_gap_forgets_previous_view() {
        // A leader that did not complete the previous generation must not treat
        // its stale memory as the truth (no spurious lost work / delay).
        let cfg = view(3, &[("a", 2)]);
        let mut sim = Sim::new(ConnectProtocol::Sessioned, 300_000);
        sim.join("m1");
        sim.join("m2");
        sim.round(&cfg);
        sim.leave("m2");
        sim.last_completed = 42; // someone else led in between
        let out = sim.round(&cfg);
        assert_eq!(out.assignments["m1"].delay_ms, 0);
        sim.assert_complete(&cfg);
    }

    #[test]
    fn backoff_sequence() {
        assert_eq!(backoff_ms(1, 300_000), 40);
        assert_eq!(backoff_ms(2, 300_000), 1_600);
        assert_eq!(backoff_ms(3, 300_000), 64_000);
        assert_eq!(backoff_ms(4, 300_000), 300_000);
        assert_eq!(backoff_ms(9, 0), 0);
    }
}
