//! Hand-over between connectd and the real Java Kafka Connect worker (3.9.2)
//! on the same group and internal topics, in both directions: the second
//! worker must see the first one's connector (same config, target state and
//! stored offset) and its task must continue the VerifiableSource sequence
//! exactly where the first one's committed offset ends: no gap, and after a
//! graceful stop no duplicate either. And both at once in one group, the
//! Java worker leading: connectd's forwarded creates and signed task configs
//! are accepted by the Java leader.
//!
//! Needs the broker (`eval "$(scripts/dev-env.sh up)"`) and a JDK + Maven (or
//! the jars cached by `scripts/java-connect.sh fetch`); without them the
//! tests fail, they never pass vacuously.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::java::{free_port, require_java, JavaWorker};
use common::*;
use serde_json::{json, Value as Json};

const THROUGHPUT: &str = "200";

/// Worker settings shared by both workers: JsonConverter without schemas,
/// so data values are bare seqnos; 1 s offset flushes.
const EXTRA: &[(&str, &str)] = &[
    ("offset.flush.interval.ms", "1000"),
    ("key.converter.schemas.enable", "false"),
    ("value.converter.schemas.enable", "false"),
];

fn connector_config(topic: &str) -> Json {
    json!({
        "connector.class": "org.apache.kafka.connect.tools.VerifiableSourceConnector",
        "tasks.max": "1",
        "topic": topic,
        "throughput": THROUGHPUT,
        // connectd's VerifiableSourceTask prints a line per record unless told
        // not to; the Java task ignores the key (it logs to its log file).
        "verifiable.print": "false",
    })
}

/// What `GET /connectors/{name}/config` must return on either worker.
fn expected_config(name: &str, topic: &str) -> Json {
    let mut c = connector_config(topic);
    c["name"] = json!(name);
    c
}

fn java_props(cluster: &Cluster, port: u16) -> BTreeMap<String, String> {
    let listeners = format!("http://127.0.0.1:{port}");
    let mut extra: Vec<(&str, &str)> = EXTRA.to_vec();
    extra.push(("listeners", &listeners));
    cluster.props(&extra)
}

/// The data topic's values (bare seqnos), in partition/offset order.
fn seqnos(topic: &str) -> Vec<i64> {
    let mut recs = read_topic(topic);
    recs.sort_by_key(|r| (r.partition, r.offset));
    recs.iter()
        .map(|r| {
            let v = r.value_json();
            v.as_i64()
                .unwrap_or_else(|| panic!("data value is not a bare seqno: {v}"))
        })
        .collect()
}

async fn wait_records(topic: &str, at_least: usize, timeout: Duration) {
    let start = Instant::now();
    loop {
        let n = try_read_topic(topic).map_or(0, |r| r.len());
        if n >= at_least {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "{topic} holds {n} records, expected {at_least} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The last stored offset of task 0 of `name`, read from the offsets topic
/// by its exact key bytes `["name",{"id":0}]`.
fn committed_seqno(offsets_topic: &str, name: &str) -> i64 {
    let key = format!(r#"["{name}",{{"id":0}}]"#);
    let mut recs: Vec<Rec> = read_topic(offsets_topic)
        .into_iter()
        .filter(|r| r.key_str() == key)
        .collect();
    recs.sort_by_key(|r| r.offset);
    let last = recs
        .last()
        .unwrap_or_else(|| panic!("no offset record with key {key} in {offsets_topic}"));
    last.value_json()["seqno"].as_i64().unwrap_or_else(|| {
        panic!(
            "offset value is not {{\"seqno\":N}}: {:?}",
            last.value_str()
        )
    })
}

/// The seqnos are exactly 0, 1, 2, ... (no gap, no duplicate, no reorder).
fn assert_exact_sequence(what: &str, seq: &[i64]) {
    assert!(!seq.is_empty(), "{what}: no records");
    if let Some(i) = seq.iter().enumerate().position(|(i, s)| *s != i as i64) {
        let lo = i.saturating_sub(3);
        let hi = (i + 3).min(seq.len());
        panic!(
            "{what}: record #{i} has seqno {} (expected {i}); around it: {:?}; {} records, max {}",
            seq[i],
            &seq[lo..hi],
            seq.len(),
            seq.iter().max().copied().unwrap_or(-1)
        );
    }
}

/// Checks the hand-over: the first worker wrote `first` (0..=n, graceful
/// stop so its committed offset is its last record), and the second worker
/// continued at committed+1 with no gap.
fn assert_continues(
    first_worker: &str,
    second_worker: &str,
    first: &[i64],
    committed: i64,
    all: &[i64],
) {
    assert_exact_sequence(&format!("records of the {first_worker} worker"), first);
    let last = *first.last().expect("non-empty");
    assert_eq!(
        committed, last,
        "after a graceful stop the {first_worker} worker's committed offset should be its last record"
    );
    let second = &all[first.len()..];
    assert!(
        second.len() >= 100,
        "the {second_worker} worker produced only {} records",
        second.len()
    );
    assert_eq!(
        second[0],
        committed + 1,
        "the {second_worker} task must resume right after the stored offset {committed}"
    );
    assert_exact_sequence(
        &format!("records of the {first_worker} then the {second_worker} worker"),
        all,
    );
}

async fn until<F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Json
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (bool, Json)>,
{
    let start = Instant::now();
    loop {
        let (ok, last) = probe().await;
        if ok {
            return last;
        }
        assert!(
            start.elapsed() < timeout,
            "{what} not reached within {timeout:?}; last answer: {last}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Connector and its one task are in `state`, reported by the worker at
/// `base` (so a status left behind by the previous worker does not count).
fn states_are(st: &Json, state: &str, base: &str) -> bool {
    let owner = base.trim_start_matches("http://");
    st["connector"]["state"] == state
        && st["connector"]["worker_id"] == owner
        && st["tasks"]
            .as_array()
            .is_some_and(|t| t.len() == 1 && t[0]["state"] == state && t[0]["worker_id"] == owner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectd_hands_over_to_java() {
    require_java();
    let dir = temp_dir("interop-to-java");
    let cluster = Cluster::new();
    let name = unique("interop");
    let topic = unique("interop-data");
    let status_path = format!("/connectors/{name}/status");

    // connectd creates and runs the connector, then pauses it.
    let ours = cluster.start(EXTRA).await;
    let (code, body) = ours
        .call(
            "POST",
            "/connectors",
            Some(&json!({"name": name, "config": connector_config(&topic)})),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    until("RUNNING on connectd", Duration::from_secs(30), || async {
        let (_, st) = ours.call("GET", &status_path, None).await;
        (states_are(&st, "RUNNING", &ours.base), st)
    })
    .await;
    wait_records(&topic, 400, Duration::from_secs(30)).await;
    assert_eq!(
        ours.call("PUT", &format!("/connectors/{name}/pause"), None)
            .await
            .0,
        202
    );
    until("PAUSED on connectd", Duration::from_secs(30), || async {
        let (_, st) = ours.call("GET", &status_path, None).await;
        (states_are(&st, "PAUSED", &ours.base), st)
    })
    .await;
    ours.shutdown().await;
    let first = seqnos(&topic);
    let committed = committed_seqno(&cluster.offsets_topic, &name);

    // The Java worker takes over the same group and topics.
    let mut java = JavaWorker::start(&dir, &java_props(&cluster, free_port())).await;
    let ctx = |w: &JavaWorker| format!("\nJava log tail:\n{}", w.log_tail());
    let (code, list) = java.call("GET", "/connectors", None).await;
    assert_eq!(
        (code, &list),
        (200, &json!([name])),
        "Java lists the connector connectd created{}",
        ctx(&java)
    );
    let (code, cfg) = java
        .call("GET", &format!("/connectors/{name}/config"), None)
        .await;
    assert_eq!(code, 200, "{cfg}");
    assert_eq!(
        cfg,
        expected_config(&name, &topic),
        "Java reads the config connectd wrote"
    );
    // Java honours the PAUSED target state connectd wrote.
    until("PAUSED on Java", Duration::from_secs(60), || async {
        let (_, st) = java.call("GET", &status_path, None).await;
        (states_are(&st, "PAUSED", &java.base), st)
    })
    .await;
    // Java finds the offset connectd stored (same key bytes).
    let (code, offs) = java
        .call("GET", &format!("/connectors/{name}/offsets"), None)
        .await;
    assert_eq!(code, 200, "{offs}");
    assert_eq!(
        offs,
        json!({"offsets": [{"partition": {"id": 0}, "offset": {"seqno": committed}}]}),
        "Java reads the offset connectd committed"
    );

    assert_eq!(
        java.call("PUT", &format!("/connectors/{name}/resume"), None)
            .await
            .0,
        202
    );
    until("RUNNING on Java", Duration::from_secs(60), || async {
        let (_, st) = java.call("GET", &status_path, None).await;
        (states_are(&st, "RUNNING", &java.base), st)
    })
    .await;
    wait_records(&topic, first.len() + 400, Duration::from_secs(60)).await;
    java.stop();

    assert_continues("connectd", "Java", &first, committed, &seqnos(&topic));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_hands_over_to_connectd() {
    require_java();
    let dir = temp_dir("interop-from-java");
    let cluster = Cluster::new();
    let name = unique("interop");
    let topic = unique("interop-data");
    let status_path = format!("/connectors/{name}/status");

    // The Java worker creates the topics and the connector and runs it.
    let mut java = JavaWorker::start(&dir, &java_props(&cluster, free_port())).await;
    let (code, body) = java
        .call(
            "POST",
            "/connectors",
            Some(&json!({"name": name, "config": connector_config(&topic)})),
        )
        .await;
    assert_eq!(code, 201, "{body}\nJava log tail:\n{}", java.log_tail());
    until("RUNNING on Java", Duration::from_secs(60), || async {
        let (_, st) = java.call("GET", &status_path, None).await;
        (states_are(&st, "RUNNING", &java.base), st)
    })
    .await;
    wait_records(&topic, 400, Duration::from_secs(30)).await;
    java.stop();
    let first = seqnos(&topic);
    let committed = committed_seqno(&cluster.offsets_topic, &name);

    // connectd takes over.
    let ours = cluster.start(EXTRA).await;
    let (code, list) = ours.call("GET", "/connectors", None).await;
    assert_eq!(
        (code, &list),
        (200, &json!([name])),
        "connectd lists the connector Java created"
    );
    let (code, cfg) = ours
        .call("GET", &format!("/connectors/{name}/config"), None)
        .await;
    assert_eq!(code, 200, "{cfg}");
    assert_eq!(
        cfg,
        expected_config(&name, &topic),
        "connectd reads the config Java wrote"
    );
    until("RUNNING on connectd", Duration::from_secs(30), || async {
        let (_, st) = ours.call("GET", &status_path, None).await;
        (states_are(&st, "RUNNING", &ours.base), st)
    })
    .await;
    wait_records(&topic, first.len() + 400, Duration::from_secs(30)).await;
    ours.shutdown().await;

    assert_continues("Java", "connectd", &first, committed, &seqnos(&topic));
}

/// connectd as a follower of a Java leader in one group, both running: its
/// creates are forwarded to the Java worker's REST API, and the task configs
/// of the connectors the group gives it reach the Java leader signed with the
/// session key the Java leader wrote, so every connector runs, on both
/// workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connectd_follows_a_java_leader() {
    require_java();
    let dir = temp_dir("interop-mixed");
    let cluster = Cluster::new();
    let mut java = JavaWorker::start(&dir, &java_props(&cluster, free_port())).await;
    let ours = cluster.start_member(EXTRA).await;
    let ctx = |w: &JavaWorker| format!("\nJava log tail:\n{}", w.log_tail());
    assert!(
        !ours.handle.herder.ownership().unwrap().leader,
        "the Java worker, first in the group, leads it"
    );

    let names: Vec<String> = (0..4).map(|i| format!("{}-{i}", unique("mixed"))).collect();
    for name in &names {
        let (code, body) = ours
            .call(
                "POST",
                "/connectors",
                Some(&json!({"name": name, "config": connector_config(&format!("{name}-data"))})),
            )
            .await;
        assert_eq!(
            code,
            201,
            "create {name} through connectd: {body}{}",
            ctx(&java)
        );
    }
    let owners = until(
        "every connector RUNNING with its task, on both workers",
        Duration::from_secs(90),
        || async {
            let mut owners = std::collections::BTreeSet::new();
            let mut all = Vec::new();
            let mut running = true;
            for name in &names {
                let (_, st) = java
                    .call("GET", &format!("/connectors/{name}/status"), None)
                    .await;
                running &=
                    st["connector"]["state"] == "RUNNING" && st["tasks"][0]["state"] == "RUNNING";
                if let Some(w) = st["connector"]["worker_id"].as_str() {
                    owners.insert(w.to_string());
                }
                all.push(st);
            }
            (
                running && owners.len() == 2,
                json!({"owners": owners, "status": all}),
            )
        },
    )
    .await;
    assert!(
        owners["owners"]
            .as_array()
            .unwrap()
            .contains(&json!(ours.base.trim_start_matches("http://"))),
        "{owners}"
    );
    assert!(
        !java.log_tail().contains("invalid signature"),
        "{}",
        ctx(&java)
    );
    ours.shutdown().await;
    java.stop();
}
