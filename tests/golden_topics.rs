//! Internal-topic records of connectd compared with those of the real Java
//! worker (tests/golden/java-3.9, captured by scripts/capture-java-golden.sh
//! from Apache Kafka Connect 3.9.2).
//!
//! The worker is driven through the same scenario as the capture (connector
//! `v`, a VerifiableSourceConnector at throughput 10): create, running, pause,
//! resume, stop, offsets alter/reset while stopped, resume, restart
//! `?includeTasks=true` (plus the plain connector and task restarts the capture
//! also issues), delete. The new records of the config, offsets and status
//! topics are attributed to the step after which they were first seen, as
//! the capture does, and compared with Java's:
//!
//! (a) every key written by both lands in the same PARTITION (the 25-partition
//!     offsets topic and 5-partition status topic make this a real check of
//!     the murmur2 partitioner);
//! (b) fixed-shape values are byte-identical after normalizing the fields that
//!     vary between runs (worker id, generation, timestamps, seqnos, topic);
//! (c) connector and task configs are the same JSON objects modulo the data
//!     topic name;
//! (d) per step, the config-topic records (key and normalized value) come in
//!     the same order, each status key goes through the same states, and the
//!     offsets topic holds the same kinds of records.
//!
//! The data topic name is unique per run (it appears in the status-topic key,
//! which is therefore compared with the name normalized and without a
//! partition check); the connector name `v` is the capture's so that the keys,
//! and so the partitions, are the same.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::*;
use serde_json::{json, Value as Json};

const GOLDEN_TOPICS: &str = include_str!("golden/java-3.9/topics.jsonl");
const NAME: &str = "v";
const TOPIC_PLACEHOLDER: &str = "<data-topic>";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Internal {
    Config,
    Offsets,
    Status,
}

/// One internal-topic record, from the golden file or from our topics.
#[derive(Debug, Clone)]
struct TopicRec {
    step: String,
    topic: Internal,
    partition: i32,
    key: String,
    value: Option<String>,
}

fn golden_records() -> Vec<TopicRec> {
    GOLDEN_TOPICS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let r: Json = serde_json::from_str(l).expect("golden line is JSON");
            let topic_name = r["topic"].as_str().expect("topic");
            let topic = if topic_name.ends_with("-configs") {
                Internal::Config
            } else if topic_name.ends_with("-offsets") {
                Internal::Offsets
            } else if topic_name.ends_with("-status") {
                Internal::Status
            } else {
                panic!("unexpected topic in golden file: {topic_name}")
            };
            TopicRec {
                step: r["step"].as_str().expect("step").to_string(),
                topic,
                partition: r["partition"].as_i64().expect("partition") as i32,
                key: r["key"]
                    .as_str()
                    .expect("golden records all have keys")
                    .to_string(),
                value: r["value"].as_str().map(str::to_string),
            }
        })
        .collect()
}

/// Reads the new records of our three internal topics after each step.
struct Dumper {
    topics: [(Internal, String); 3],
    seen: HashSet<(Internal, i32, i64)>,
    out: Vec<TopicRec>,
}

impl Dumper {
    fn new(cluster: &Cluster) -> Self {
        Dumper {
            topics: [
                (Internal::Config, cluster.config_topic.clone()),
                (Internal::Offsets, cluster.offsets_topic.clone()),
                (Internal::Status, cluster.status_topic.clone()),
            ],
            seen: HashSet::new(),
            out: Vec::new(),
        }
    }

    fn dump(&mut self, step: &str) {
        let mut new = Vec::new();
        for (kind, topic) in &self.topics {
            for r in read_topic(topic) {
                if self.seen.insert((*kind, r.partition, r.offset)) {
                    new.push((*kind, r));
                }
            }
        }
        new.sort_by_key(|(k, r)| (*k, r.partition, r.offset));
        self.out.extend(new.into_iter().map(|(topic, r)| TopicRec {
            step: step.to_string(),
            topic,
            partition: r.partition,
            key: r.key_str(),
            value: r.value_str(),
        }));
    }
}

// ---------------------------------------------------------------------------
// Normalization helpers.

/// Internal-topic JSON must be compact (no whitespace): re-serializing the
/// parsed value (order preserved) gives the same text.
fn assert_compact(what: &str, raw: &str) -> Json {
    let v: Json = serde_json::from_str(raw)
        .unwrap_or_else(|e| panic!("{what}: value is not JSON ({e}): {raw}"));
    assert_eq!(
        serde_json::to_string(&v).expect("serialize"),
        raw,
        "{what}: value is not compact JSON"
    );
    v
}

/// `status-topic-{topic}:connector-{name}` with the topic replaced.
fn normalize_key(key: &str) -> String {
    match key
        .strip_prefix("status-topic-")
        .and_then(|r| r.split_once(":connector-"))
    {
        Some((_, conn)) => format!("status-topic-{TOPIC_PLACEHOLDER}:connector-{conn}"),
        None => key.to_string(),
    }
}

/// Connector/task config value: the properties with `topic` replaced, as a
/// sorted map (Java writes them in HashMap order).
fn normalize_properties(what: &str, raw: &str) -> BTreeMap<String, String> {
    let v = assert_compact(what, raw);
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {raw}"));
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        ["properties"],
        "{what}: {raw}"
    );
    obj["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: properties is not an object: {raw}"))
        .iter()
        .map(|(k, v)| {
            let s = v
                .as_str()
                .unwrap_or_else(|| panic!("{what}: property {k} is not a string: {raw}"));
            let s = if k == "topic" { TOPIC_PLACEHOLDER } else { s };
            (k.clone(), s.to_string())
        })
        .collect()
}

/// Status value with `worker_id` and `generation` replaced, keeping field
/// order, so the result can be compared as text.
fn normalize_status(what: &str, raw: &str) -> String {
    let mut v = assert_compact(what, raw);
    let obj = v
        .as_object_mut()
        .unwrap_or_else(|| panic!("{what}: not an object: {raw}"));
    assert!(
        obj.get("worker_id")
            .and_then(Json::as_str)
            .is_some_and(|w| !w.is_empty()),
        "{what}: worker_id: {raw}"
    );
    assert!(
        obj.get("generation").is_some_and(Json::is_i64),
        "{what}: generation: {raw}"
    );
    obj.insert("worker_id".into(), json!("<worker>"));
    obj.insert("generation".into(), json!(0));
    v.to_string()
}

/// KIP-558 topic value with the topic name and discovery time replaced.
fn normalize_topic_status(what: &str, raw: &str) -> String {
    let mut v = assert_compact(what, raw);
    let t = v
        .get_mut("topic")
        .and_then(Json::as_object_mut)
        .unwrap_or_else(|| panic!("{what}: no topic object: {raw}"));
    assert!(
        t.get("discoverTimestamp").is_some_and(Json::is_i64),
        "{what}: discoverTimestamp: {raw}"
    );
    t.insert("name".into(), json!(TOPIC_PLACEHOLDER));
    t.insert("discoverTimestamp".into(), json!(0));
    v.to_string()
}

/// Offset value `{"seqno":N}`; the seqno is kept only where the scenario
/// fixes it (the altered offset), elsewhere it depends on timing.
fn normalize_offset(what: &str, raw: &str, keep_seqno: bool) -> String {
    let mut v = assert_compact(what, raw);
    let obj = v
        .as_object_mut()
        .unwrap_or_else(|| panic!("{what}: not an object: {raw}"));
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["seqno"], "{what}: {raw}");
    assert!(
        obj["seqno"].is_i64(),
        "{what}: seqno is not an integer: {raw}"
    );
    if !keep_seqno {
        obj.insert("seqno".into(), json!("<n>"));
    }
    v.to_string()
}

/// A record reduced to what must match Java: normalized key and value
/// (`None` for a tombstone). Config and task properties are rendered as
/// sorted JSON so they compare as objects.
fn normalize(r: &TopicRec) -> (String, Option<String>) {
    let key = normalize_key(&r.key);
    let what = format!("{} {:?} {}", r.step, r.topic, r.key);
    let Some(raw) = r.value.as_deref() else {
        return (key, None);
    };
    let value = match r.topic {
        Internal::Config if key.starts_with("connector-") || key.starts_with("task-") => {
            serde_json::to_string(&normalize_properties(&what, raw)).expect("serialize")
        }
        // commit, target-state and restart values have no variable field:
        // byte-identical.
        Internal::Config => {
            assert_compact(&what, raw);
            raw.to_string()
        }
        Internal::Status if key.starts_with("status-topic-") => normalize_topic_status(&what, raw),
        Internal::Status => normalize_status(&what, raw),
        Internal::Offsets => normalize_offset(&what, raw, r.step == "offsets-stopped"),
    };
    (key, Some(value))
}

fn of_step<'a>(
    recs: &'a [TopicRec],
    step: &'a str,
    topic: Internal,
) -> impl Iterator<Item = &'a TopicRec> + 'a {
    recs.iter()
        .filter(move |r| r.step == step && r.topic == topic)
}

/// The config-topic records of a step in order. `session-key` is skipped:
/// the Java leader writes one for request signing (KIP-507) and connectd
/// does not (it has a single-language group here and signs nothing).
fn config_sequence(recs: &[TopicRec], step: &str) -> Vec<(String, Option<String>)> {
    of_step(recs, step, Internal::Config)
        .filter(|r| r.key != "session-key")
        .map(normalize)
        .collect()
}

/// Each status key's values in a step, in order, with consecutive repeats
/// collapsed: the Java worker writes the same tombstone up to four times on
/// delete (once from the herder, again from each rebalance's clean-up),
/// which is redundant, not part of the contract.
fn status_sequences(recs: &[TopicRec], step: &str) -> BTreeMap<String, Vec<Option<String>>> {
    let mut out: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for r in of_step(recs, step, Internal::Status) {
        let (k, v) = normalize(r);
        if is_unassigned(&v) {
            continue;
        }
        let seq = out.entry(k).or_default();
        if seq.last() != Some(&v) {
            seq.push(v);
        }
    }
    out
}

/// UNASSIGNED records are left out of the comparison. Java writes one
/// whenever an instance is shut down on a worker (`onShutdown`), also right
/// before the instance is deleted (stop, delete: a tombstone follows) or
/// restarted (RESTARTING follows). connectd writes UNASSIGNED only when work
/// is revoked or the worker shuts down; in these steps the next record
/// supersedes it at once, so readers end in the same state.
fn is_unassigned(v: &Option<String>) -> bool {
    v.as_deref()
        .is_some_and(|v| v.starts_with(r#"{"state":"UNASSIGNED","#))
}

/// In the restart step, the `?includeTasks=true` restart (RESTARTING then
/// RUNNING, checklist item 10) is compared exactly; the plain connector and
/// task restarts issued after it differ: Java restarts the connector without
/// a restart plan (UNASSIGNED, RUNNING), connectd also writes RESTARTING.
/// Their final state is compared by [`final_states`].
fn first_restart_cycle(
    seqs: &BTreeMap<String, Vec<Option<String>>>,
) -> BTreeMap<String, Vec<Option<String>>> {
    seqs.iter()
        .map(|(k, seq)| {
            let end = seq
                .iter()
                .position(|v| {
                    v.as_deref()
                        .is_some_and(|v| v.starts_with(r#"{"state":"RUNNING","#))
                })
                .map_or(seq.len(), |i| i + 1);
            (k.clone(), seq[..end].to_vec())
        })
        .collect()
}

/// The state each status key is left in at the end of a step.
fn final_states(seqs: &BTreeMap<String, Vec<Option<String>>>) -> BTreeMap<String, Option<String>> {
    seqs.iter()
        .filter_map(|(k, seq)| Some((k.clone(), seq.last()?.clone())))
        .collect()
}

/// The distinct normalized offset records of a step. How many flushes land
/// in a step depends on timing, so only their shape is compared.
fn offset_kinds(recs: &[TopicRec], step: &str) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for r in of_step(recs, step, Internal::Offsets) {
        let n = normalize(r);
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The scenario.

fn status_is(body: &Json, connector: &str, task: Option<&str>, ntasks: usize) -> bool {
    body["connector"]["state"] == connector
        && body["tasks"].as_array().is_some_and(|t| {
            t.len() == ntasks && task.is_none_or(|s| t.iter().all(|t| t["state"] == s))
        })
}

async fn until_status(w: &TestWorker, connector: &str, task: Option<&str>, ntasks: usize) {
    let path = format!("/connectors/{NAME}/status");
    let start = std::time::Instant::now();
    loop {
        let (code, body) = w.call("GET", &path, None).await;
        if code == 200 && status_is(&body, connector, task, ntasks) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "connector {NAME} did not reach {connector}/{task:?} x{ntasks}; last status {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn expect(
    w: &TestWorker,
    method: &str,
    path: &str,
    body: Option<&Json>,
    status: u16,
) -> Json {
    let (code, resp) = w.call(method, path, body).await;
    assert_eq!(code, status, "{method} {path}: {resp}");
    resp
}

async fn sleep_s(s: u64) {
    tokio::time::sleep(Duration::from_secs(s)).await;
}

/// Runs the capture's scenario against our worker; returns our records.
async fn run_scenario() -> Vec<TopicRec> {
    let cluster = Cluster::new();
    let w = cluster
        .start(&[
            ("offset.storage.partitions", "25"),
            ("status.storage.partitions", "5"),
            ("offset.flush.interval.ms", "1000"),
        ])
        .await;
    let data_topic = unique("golden-verifiable");
    let cfg = json!({
        "connector.class": "org.apache.kafka.connect.tools.VerifiableSourceConnector",
        "tasks.max": "1",
        "topic": data_topic,
        "throughput": "10",
    });
    let mut d = Dumper::new(&cluster);
    let c = format!("/connectors/{NAME}");
    d.dump("start");

    expect(
        &w,
        "POST",
        "/connectors",
        Some(&json!({"name": NAME, "config": cfg})),
        201,
    )
    .await;
    expect(
        &w,
        "POST",
        "/connectors",
        Some(&json!({"name": NAME, "config": cfg})),
        409,
    )
    .await;
    until_status(&w, "RUNNING", Some("RUNNING"), 1).await;
    d.dump("create");

    sleep_s(3).await; // at least one offset flush (offset.flush.interval.ms=1000)
    let alter0 = json!({"offsets": [{"partition": {"id": 0}, "offset": {"seqno": 0}}]});
    expect(&w, "PATCH", &format!("{c}/offsets"), Some(&alter0), 400).await;
    d.dump("running");

    expect(&w, "PUT", &format!("{c}/pause"), None, 202).await;
    until_status(&w, "PAUSED", Some("PAUSED"), 1).await;
    sleep_s(2).await;
    d.dump("pause");

    expect(&w, "PUT", &format!("{c}/resume"), None, 202).await;
    until_status(&w, "RUNNING", Some("RUNNING"), 1).await;
    sleep_s(2).await;
    d.dump("resume");

    expect(&w, "PUT", &format!("{c}/stop"), None, 204).await;
    until_status(&w, "STOPPED", None, 0).await;
    sleep_s(2).await;
    d.dump("stop");

    expect(
        &w,
        "PATCH",
        &format!("{c}/offsets"),
        Some(&json!({"offsets": []})),
        400,
    )
    .await;
    let alter5 = json!({"offsets": [{"partition": {"id": 0}, "offset": {"seqno": 5}}]});
    expect(&w, "PATCH", &format!("{c}/offsets"), Some(&alter5), 200).await;
    let got = expect(&w, "GET", &format!("{c}/offsets"), None, 200).await;
    assert_eq!(
        got,
        json!({"offsets": [{"partition": {"id": 0}, "offset": {"seqno": 5}}]})
    );
    expect(&w, "DELETE", &format!("{c}/offsets"), None, 200).await;
    let got = expect(&w, "GET", &format!("{c}/offsets"), None, 200).await;
    assert_eq!(got, json!({"offsets": []}));
    d.dump("offsets-stopped");

    expect(&w, "PUT", &format!("{c}/resume"), None, 202).await;
    until_status(&w, "RUNNING", Some("RUNNING"), 1).await;
    sleep_s(2).await;
    d.dump("resume-after-stop");

    let body = expect(
        &w,
        "POST",
        &format!("{c}/restart?includeTasks=true"),
        None,
        202,
    )
    .await;
    assert!(
        status_is(&body, "RESTARTING", Some("RESTARTING"), 1),
        "restart answer: {body}"
    );
    until_status(&w, "RUNNING", Some("RUNNING"), 1).await;
    sleep_s(2).await;
    expect(&w, "POST", &format!("{c}/restart"), None, 204).await;
    expect(&w, "POST", &format!("{c}/tasks/0/restart"), None, 204).await;
    expect(&w, "POST", &format!("{c}/tasks/9/restart"), None, 404).await;
    expect(
        &w,
        "POST",
        "/connectors/nope/restart?includeTasks=true",
        None,
        404,
    )
    .await;
    sleep_s(2).await;
    d.dump("restart");

    expect(&w, "DELETE", &c, None, 204).await;
    eventually(Duration::from_secs(30), || async {
        w.call("GET", &c, None).await.0 == 404
    })
    .await;
    sleep_s(3).await;
    d.dump("delete");

    w.shutdown().await;
    d.out
}

const STEPS: &[&str] = &[
    "start",
    "create",
    "running",
    "pause",
    "resume",
    "stop",
    "offsets-stopped",
    "resume-after-stop",
    "restart",
    "delete",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_topics_match_java_golden() {
    let java = golden_records();
    let ours = run_scenario().await;
    let dump = |recs: &[TopicRec]| -> String {
        recs.iter()
            .map(|r| {
                format!(
                    "  {:<18} {:?} p{} {} = {:?}\n",
                    r.step, r.topic, r.partition, r.key, r.value
                )
            })
            .collect()
    };
    let ours_text = dump(&ours);
    let mut failures: Vec<String> = Vec::new();

    // (a) Same key, same partition (murmur2 of the key bytes).
    let mut java_partition: BTreeMap<(Internal, &str), i32> = BTreeMap::new();
    for r in &java {
        java_partition.insert((r.topic, r.key.as_str()), r.partition);
    }
    let mut shared: BTreeMap<(Internal, String), i32> = BTreeMap::new();
    for r in &ours {
        if let Some(&p) = java_partition.get(&(r.topic, r.key.as_str())) {
            if p != r.partition {
                failures.push(format!(
                    "{:?} key {}: partition {} (Java: {p})",
                    r.topic, r.key, r.partition
                ));
            }
            shared.insert((r.topic, r.key.clone()), p);
        }
    }
    for (topic, key) in [
        (Internal::Config, "connector-v"),
        (Internal::Config, "task-v-0"),
        (Internal::Config, "commit-v"),
        (Internal::Config, "target-state-v"),
        (Internal::Config, "restart-connector-v"),
        (Internal::Offsets, r#"["v",{"id":0}]"#),
        (Internal::Status, "status-connector-v"),
        (Internal::Status, "status-task-v-0"),
    ] {
        if !shared.contains_key(&(topic, key.to_string())) {
            failures.push(format!(
                "we wrote no {topic:?} record with key {key} (Java did)"
            ));
        }
    }
    // Non-trivial partitions (the config topic has one): offsets key on 3 of
    // 25, status keys on 0 and 4 of 5.
    assert_eq!(java_partition[&(Internal::Offsets, r#"["v",{"id":0}]"#)], 3);
    assert_eq!(java_partition[&(Internal::Status, "status-connector-v")], 4);
    assert_eq!(java_partition[&(Internal::Status, "status-task-v-0")], 0);

    // Offset keys are exactly `["v",{"id":0}]` (the bytes Java looks up).
    for r in ours.iter().filter(|r| r.topic == Internal::Offsets) {
        if r.key != r#"["v",{"id":0}]"# {
            failures.push(format!("offset key {} is not [\"v\",{{\"id\":0}}]", r.key));
        }
    }

    // (b)-(d) Per step.
    for step in STEPS {
        let (jc, oc) = (config_sequence(&java, step), config_sequence(&ours, step));
        if jc != oc {
            failures.push(format!(
                "step {step}: config records differ\n    Java: {jc:?}\n    ours: {oc:?}"
            ));
        }
        let (js, os) = (status_sequences(&java, step), status_sequences(&ours, step));
        if final_states(&js) != final_states(&os) {
            failures.push(format!(
                "step {step}: status keys end in different states\n    Java: {:?}\n    ours: {:?}",
                final_states(&js),
                final_states(&os)
            ));
        }
        let (js, os) = if *step == "restart" {
            (first_restart_cycle(&js), first_restart_cycle(&os))
        } else {
            (js, os)
        };
        if js != os {
            failures.push(format!(
                "step {step}: status records differ\n    Java: {js:?}\n    ours: {os:?}"
            ));
        }
        let (jo, oo) = (offset_kinds(&java, step), offset_kinds(&ours, step));
        // The altered offset and the reset tombstone are fixed by the
        // scenario: exactly these records, in this order.
        if *step == "offsets-stopped" {
            let seq: Vec<_> = of_step(&ours, step, Internal::Offsets)
                .map(normalize)
                .collect();
            let jseq: Vec<_> = of_step(&java, step, Internal::Offsets)
                .map(normalize)
                .collect();
            if seq != jseq {
                failures.push(format!(
                    "step {step}: offsets differ\n    Java: {jseq:?}\n    ours: {seq:?}"
                ));
            }
        } else if oo.iter().any(|o| !jo.contains(o)) {
            failures.push(format!(
                "step {step}: offset records of a kind Java does not write: {oo:?} (Java: {jo:?})"
            ));
        }
    }
    // While the task runs for 3 s with 1 s flushes, offsets are committed.
    if offset_kinds(&ours, "running").is_empty() {
        failures.push("no offsets were committed while the task ran for 3 s".into());
    }

    assert!(
        failures.is_empty(),
        "{} difference(s) from the Java golden records:\n- {}\n\nour records:\n{ours_text}",
        failures.len(),
        failures.join("\n- ")
    );
}
