//! Membership against a real Kafka broker. Needs `KAFKA_BOOTSTRAP`; without
//! it these tests FAIL (never silently pass): run
//! `eval "$(scripts/dev-env.sh up)"` first.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::assignor::ClusterConfigView;
use super::client::BrokerConnection;
use super::member::{GroupEvent, GroupHandle, GroupListener, GroupMember, MemberConfig};
use super::protocol::{Assignment, ConnectProtocol, TaskId, WorkerMetadata};

fn bootstrap() -> String {
    match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(b) if !b.trim().is_empty() => b,
        _ => panic!(
            "KAFKA_BOOTSTRAP is not set: these group-membership tests need a real Kafka broker. \
             Run `eval \"$(scripts/dev-env.sh up)\"` in the repository root, then re-run the tests."
        ),
    }
}

fn unique_group() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("g-{}-{nanos:x}", std::process::id())
}

struct FakeHerder {
    url: String,
    view: Mutex<ClusterConfigView>,
}

impl FakeHerder {
    fn view(&self) -> ClusterConfigView {
        self.view.lock().expect("view lock").clone()
    }
}

impl GroupListener for FakeHerder {
    fn metadata(&self) -> WorkerMetadata {
        WorkerMetadata {
            url: self.url.clone(),
            config_offset: self.view().config_offset,
            allocation: None,
        }
    }

    fn config_view(&self) -> BoxFuture<'static, ClusterConfigView> {
        let v = self.view();
        async move { v }.boxed()
    }
}

fn fake_view() -> ClusterConfigView {
    ClusterConfigView {
        config_offset: 12,
        connectors: [("alpha".to_string(), 3), ("beta".to_string(), 2)].into(),
    }
}

struct TestMember {
    handle: Option<GroupHandle>,
    events: mpsc::Receiver<GroupEvent>,
    /// Latest merged allocation and whether we led that round.
    allocation: Option<Assignment>,
    generation: i32,
    is_leader: bool,
    protocol: Option<ConnectProtocol>,
    /// CONFIG_MISMATCH assignments seen.
    mismatches: usize,
    listener: Arc<FakeHerder>,
}

fn start(group: &str, name: &str, protocol: ConnectProtocol) -> TestMember {
    start_with_offset(group, name, protocol, fake_view().config_offset)
}

fn start_with_offset(
    group: &str,
    name: &str,
    protocol: ConnectProtocol,
    config_offset: i64,
) -> TestMember {
    let mut cfg = MemberConfig::new(bootstrap(), group, format!("connect-{name}"));
    cfg.protocol = protocol;
    cfg.heartbeat_interval_ms = 300;
    cfg.session_timeout_ms = 6_000;
    cfg.rebalance_timeout_ms = 10_000;
    cfg.scheduled_rebalance_max_delay_ms = 0;
    cfg.request_timeout_ms = 5_000;
    cfg.mismatch_rejoin_ms = 200;
    let listener = Arc::new(FakeHerder {
        url: format!("http://{name}:8083/"),
        view: Mutex::new(ClusterConfigView {
            config_offset,
            ..fake_view()
        }),
    });
    let (tx, rx) = mpsc::channel(16);
    let handle = GroupMember::spawn(cfg, listener.clone(), tx, CancellationToken::new());
    TestMember {
        handle: Some(handle),
        events: rx,
        allocation: None,
        generation: -1,
        is_leader: false,
        protocol: None,
        mismatches: 0,
        listener,
    }
}

impl TestMember {
    /// Applies one event like a herder would (acks complete on drop).
    fn apply(&mut self, ev: GroupEvent) {
        match ev {
            GroupEvent::Assigned {
                generation,
                is_leader,
                allocation,
                assignment,
                protocol,
                ..
            } => {
                self.protocol = Some(protocol);
                if assignment.failed() {
                    self.mismatches += 1;
                }
                self.generation = generation;
                self.is_leader = is_leader;
                self.allocation = Some(allocation);
            }
            GroupEvent::Revoked { .. } => self.allocation = None,
            GroupEvent::Error(e) => panic!("group error: {e}"),
        }
    }

    fn owned(&self) -> (BTreeSet<String>, BTreeSet<TaskId>) {
        self.allocation
            .as_ref()
            .map(|a| (a.connectors.clone(), a.tasks.clone()))
            .unwrap_or_default()
    }
}

/// Pumps events from all members until `done` holds (checked after each event).
async fn pump_until(
    members: &mut [&mut TestMember],
    what: &str,
    done: impl Fn(&[&mut TestMember]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(members) {
        let next = futures::future::select_all(
            members
                .iter_mut()
                .enumerate()
                .map(|(i, m)| Box::pin(async move { (i, m.events.recv().await) })),
        );
        let ((i, ev), _, _) = match tokio::time::timeout_at(deadline, next).await {
            Ok(r) => r,
            Err(_) => panic!("timed out waiting for: {what}"),
        };
        let ev = ev.unwrap_or_else(|| panic!("member {i} stopped while waiting for: {what}"));
        members[i].apply(ev);
    }
}

fn all_work() -> (BTreeSet<String>, BTreeSet<TaskId>) {
    let v = fake_view();
    (v.connectors.keys().cloned().collect(), v.tasks())
}

fn balanced_disjoint_complete(a: &TestMember, b: &TestMember) -> bool {
    let (ac, at) = a.owned();
    let (bc, bt) = b.owned();
    let (cs, ts) = all_work();
    let union_c: BTreeSet<_> = ac.union(&bc).cloned().collect();
    let union_t: BTreeSet<_> = at.union(&bt).cloned().collect();
    ac.is_disjoint(&bc)
        && at.is_disjoint(&bt)
        && union_c == cs
        && union_t == ts
        && ac.len().abs_diff(bc.len()) <= 1
        && at.len().abs_diff(bt.len()) <= 1
}

async fn two_members_scenario(protocol: ConnectProtocol) {
    let group = unique_group();
    let mut m1 = start(&group, "w1", protocol);
    pump_until(&mut [&mut m1], "first member gets everything", |ms| {
        ms[0].is_leader && ms[0].owned() == all_work()
    })
    .await;

    let mut m2 = start(&group, "w2", protocol);
    pump_until(
        &mut [&mut m1, &mut m2],
        "balanced disjoint assignment",
        |ms| {
            ms[0].generation == ms[1].generation
                && ms[0].generation > 0
                && balanced_disjoint_complete(ms[0], ms[1])
        },
    )
    .await;
    assert_eq!(m1.mismatches + m2.mismatches, 0);
    let leaders = [m1.is_leader, m2.is_leader];
    assert_eq!(
        leaders.iter().filter(|l| **l).count(),
        1,
        "exactly one leader"
    );

    if let Some(h) = m1.handle.take() {
        h.leave().await;
    }
    pump_until(&mut [&mut m2], "second member gets everything", |ms| {
        ms[0].is_leader && ms[0].owned() == all_work()
    })
    .await;
    if let Some(h) = m2.handle.take() {
        h.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessioned_two_members_balance_and_failover() {
    two_members_scenario(ConnectProtocol::Sessioned).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_two_members_balance_and_failover() {
    two_members_scenario(ConnectProtocol::Eager).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_protocols_negotiate_compatible() {
    let group = unique_group();
    let mut m1 = start(&group, "w1", ConnectProtocol::Sessioned);
    pump_until(&mut [&mut m1], "first member joins", |ms| {
        ms[0].allocation.is_some()
    })
    .await;
    let mut m2 = start(&group, "w2", ConnectProtocol::Compatible);
    pump_until(&mut [&mut m1, &mut m2], "balanced under compatible", |ms| {
        ms[0].generation == ms[1].generation && balanced_disjoint_complete(ms[0], ms[1])
    })
    .await;
    assert_eq!(m1.protocol, Some(ConnectProtocol::Compatible));
    assert_eq!(m2.protocol, Some(ConnectProtocol::Compatible));
    for m in [&mut m1, &mut m2] {
        if let Some(h) = m.handle.take() {
            h.leave().await;
        }
    }
}

#[tokio::test]
async fn api_versions_and_coordinator_lookup() {
    let mut conn =
        BrokerConnection::connect_any(&bootstrap(), "connectd-test", Duration::from_secs(5))
            .await
            .expect("connect to bootstrap broker");
    let v = conn
        .version_for(kafka_protocol::messages::ApiKey::JoinGroup)
        .expect("JoinGroup version");
    assert!(v >= 4, "JoinGroup v{v}");
    // On a freshly started broker __consumer_offsets is still being created,
    // so the first lookups answer COORDINATOR_NOT_AVAILABLE; a member treats
    // that as "rediscover and retry", and so does this test (bounded).
    let group = unique_group();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let coord = loop {
        match conn.find_coordinator(&group).await {
            Ok(c) => break c,
            Err(e) if e.needs_rediscovery() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("find coordinator: {e}"),
        }
    };
    assert!(coord.port > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_rejoin_starts_a_new_generation_and_keeps_work() {
    let group = unique_group();
    let mut m1 = start(&group, "w1", ConnectProtocol::Sessioned);
    pump_until(&mut [&mut m1], "first member gets everything", |ms| {
        ms[0].owned() == all_work()
    })
    .await;
    let first = m1.generation;
    if let Some(h) = m1.handle.as_ref() {
        h.request_rejoin();
    }
    pump_until(&mut [&mut m1], "a later generation", |ms| {
        ms[0].generation > first
    })
    .await;
    assert_eq!(m1.owned(), all_work());
    if let Some(h) = m1.handle.take() {
        h.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_mismatch_then_catch_up() {
    let group = unique_group();
    let mut m1 = start(&group, "w1", ConnectProtocol::Sessioned);
    pump_until(&mut [&mut m1], "first member gets everything", |ms| {
        ms[0].owned() == all_work()
    })
    .await;
    // w2 has read further in the config topic than the leader.
    let ahead = fake_view().config_offset + 8;
    let mut m2 = start_with_offset(&group, "w2", ConnectProtocol::Sessioned, ahead);
    pump_until(&mut [&mut m1, &mut m2], "CONFIG_MISMATCH on both", |ms| {
        ms[0].mismatches > 0 && ms[1].mismatches > 0
    })
    .await;
    // Cooperative: the leader keeps its work through a failed round.
    assert_eq!(m1.owned(), all_work());
    // The leader's herder catches up; the safety-net rejoin completes the round.
    m1.listener.view.lock().expect("view lock").config_offset = ahead;
    pump_until(
        &mut [&mut m1, &mut m2],
        "balanced after catching up",
        |ms| ms[0].generation == ms[1].generation && balanced_disjoint_complete(ms[0], ms[1]),
    )
    .await;
    for m in [&mut m1, &mut m2] {
        if let Some(h) = m.handle.take() {
            h.leave().await;
        }
    }
}
