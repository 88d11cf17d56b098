//! The source runtime end to end on a real broker: transforms and predicates,
//! error tolerance, config providers, standalone mode with its offsets file,
//! and the start-up checks on internal topics.

#![allow(clippy::unwrap_used)] // tests panic on unexpected states by design

mod common;

use std::time::Duration;

use common::*;
use connectd::app::{self, AppError};
use connectd::config::properties::ConnectorFile;
use connectd::config::worker::{Mode, WorkerConfig};
use connectd::storage::topics::TopicError;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use serde_json::json;

fn verifiable(topic: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut c = json!({
        "connector.class": "org.apache.kafka.connect.tools.VerifiableSourceConnector",
        "tasks.max": "1",
        "topic": topic,
        "throughput": "200",
        "verifiable.print": "false",
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

async fn create(w: &TestWorker, name: &str, config: serde_json::Value) {
    let (code, body) = w
        .call(
            "POST",
            "/connectors",
            Some(&json!({"name": name, "config": config})),
        )
        .await;
    assert_eq!(code, 201, "{body}");
}

async fn task_state(w: &TestWorker, name: &str) -> (String, Option<String>) {
    let (_, st) = w
        .call("GET", &format!("/connectors/{name}/status"), None)
        .await;
    (
        st["tasks"][0]["state"].as_str().unwrap_or("").to_string(),
        st["tasks"][0]["trace"].as_str().map(str::to_string),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transforms_predicates_and_converters_shape_the_records() {
    let w = Cluster::new().start(&[]).await;
    let topic = unique("tx");
    let name = unique("tx");
    create(
        &w,
        &name,
        verifiable(
            &topic,
            json!({
                "transforms": "hoist,insert,route",
                "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
                "transforms.hoist.field": "seq",
                "transforms.insert.type": "org.apache.kafka.connect.transforms.InsertField$Value",
                "transforms.insert.static.field": "origin",
                "transforms.insert.static.value": "connectd",
                "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
                "transforms.route.regex": "(.*)",
                "transforms.route.replacement": "$1-routed",
                "transforms.route.predicate": "never",
                "transforms.route.negate": "true",
                "predicates": "never",
                "predicates.never.type": "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
                "predicates.never.pattern": "no-such-topic",
            }),
        ),
    )
    .await;
    let routed = format!("{topic}-routed");
    eventually(Duration::from_secs(30), || async {
        try_read_topic(&routed).is_ok_and(|r| r.len() >= 5)
    })
    .await;
    let recs = read_topic(&routed);
    let first = recs
        .iter()
        .find(|r| r.value_json()["payload"]["seq"] == 0)
        .expect("seqno 0 routed");
    assert_eq!(
        first.value_json(),
        json!({"schema": {"type": "struct", "fields": [
                {"type": "int64", "optional": false, "field": "seq"},
                {"type": "string", "optional": true, "field": "origin"}], "optional": false},
            "payload": {"seq": 0, "origin": "connectd"}}),
        "JsonConverter with schemas.enable writes the Java envelope"
    );
    assert_eq!(
        first.key_str(),
        r#"{"schema":{"type":"int32","optional":false},"payload":0}"#
    );
    assert!(
        try_read_topic(&topic).map_or(true, |r| r.is_empty()),
        "nothing may reach the un-routed topic"
    );
    w.shutdown().await;
}

/// Waits until the connector's committed offset is past `seqno`.
async fn offsets_pass_seqno(w: &TestWorker, name: &str, seqno: i64, timeout: Duration) {
    eventually(timeout, || async {
        let (_, o) = w
            .call("GET", &format!("/connectors/{name}/offsets"), None)
            .await;
        o["offsets"][0]["offset"]["seqno"]
            .as_i64()
            .is_some_and(|s| s > seqno)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_tolerance_none_fails_the_task_and_all_skips_records() {
    let w = Cluster::new().start(&[]).await;
    // InsertField on a bare int64 value fails for every record.
    let failing = json!({
        "transforms": "insert",
        "transforms.insert.type": "org.apache.kafka.connect.transforms.InsertField$Value",
        "transforms.insert.static.field": "origin",
        "transforms.insert.static.value": "x",
    });
    let strict = unique("strict");
    let strict_topic = unique("strict");
    create(&w, &strict, verifiable(&strict_topic, failing.clone())).await;
    let trace = failed_trace(&w, &strict, Duration::from_secs(30)).await;
    assert!(
        trace.contains("Tolerance exceeded") && trace.contains("TRANSFORMATION"),
        "{trace}"
    );
    assert!(
        trace.starts_with("org.apache.kafka.connect.errors."),
        "trace names a Java exception class: {trace}"
    );

    let lenient = unique("lenient");
    let mut cfg = failing;
    cfg["errors.tolerance"] = json!("all");
    cfg["errors.log.enable"] = json!("true");
    create(&w, &lenient, verifiable(&unique("lenient"), cfg)).await;
    // Skipped records still advance the offsets, in order.
    offsets_pass_seqno(&w, &lenient, 50, Duration::from_secs(30)).await;
    assert_eq!(task_state(&w, &lenient).await.0, "RUNNING");

    // Restarting the failed task brings it back (and it fails again, visibly).
    let (code, _) = w
        .call(
            "POST",
            &format!("/connectors/{strict}/restart?includeTasks=true&onlyFailed=true"),
            None,
        )
        .await;
    assert_eq!(code, 202);
    w.shutdown().await;
}

/// A topic whose `max.message.bytes` no record fits: the broker refuses
/// every produce request, so each record's delivery report is an error.
async fn topic_refusing_every_record(topic: &str) {
    create_topic_with(topic, 1, &[("max.message.bytes", "1")]).await;
}

/// Waits for the connector's task to fail and returns its trace.
async fn failed_trace(w: &TestWorker, name: &str, timeout: Duration) -> String {
    eventually(timeout, || async {
        task_state(w, name).await.0 == "FAILED"
    })
    .await;
    task_state(w, name)
        .await
        .1
        .expect("a FAILED task has a trace")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_kafka_refuses_fail_the_task_or_are_skipped_in_order() {
    let w = Cluster::new().start(&[]).await;
    let strict = unique("refused-strict");
    let strict_topic = unique("refused-strict");
    topic_refusing_every_record(&strict_topic).await;
    create(&w, &strict, verifiable(&strict_topic, json!({}))).await;
    let trace = failed_trace(&w, &strict, Duration::from_secs(60)).await;
    assert!(
        trace.contains("Kafka did not acknowledge a record"),
        "{trace}"
    );
    // Nothing was written, so no offset may have been committed.
    let (_, o) = w
        .call("GET", &format!("/connectors/{strict}/offsets"), None)
        .await;
    assert_eq!(o["offsets"], json!([]), "{o}");

    let lenient = unique("refused-lenient");
    let lenient_topic = unique("refused-lenient");
    topic_refusing_every_record(&lenient_topic).await;
    create(
        &w,
        &lenient,
        verifiable(&lenient_topic, json!({"errors.tolerance": "all"})),
    )
    .await;
    // Every record is refused and tolerated; the offsets still advance.
    offsets_pass_seqno(&w, &lenient, 50, Duration::from_secs(60)).await;
    assert_eq!(task_state(&w, &lenient).await.0, "RUNNING");
    assert!(read_topic(&lenient_topic).is_empty());
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_references_are_resolved_at_use_and_stored_raw() {
    let dir = temp_dir("prov");
    let topic = unique("secret-topic");
    std::fs::write(dir.join("conn.properties"), format!("topic.name={topic}\n")).unwrap();
    let w = Cluster::new()
        .start(&[
            ("config.providers", "file"),
            (
                "config.providers.file.class",
                "org.apache.kafka.common.config.provider.FileConfigProvider",
            ),
        ])
        .await;
    let name = unique("prov");
    let reference = format!(
        "${{file:{}:topic.name}}",
        dir.join("conn.properties").display()
    );
    create(&w, &name, verifiable(&reference, json!({}))).await;
    eventually(Duration::from_secs(30), || async {
        try_read_topic(&topic).is_ok_and(|r| r.len() >= 3)
    })
    .await;
    let (_, cfg) = w
        .call("GET", &format!("/connectors/{name}/config"), None)
        .await;
    assert_eq!(
        cfg["topic"],
        reference.as_str(),
        "the REST API shows the reference, not the secret"
    );
    let (_, tasks) = w
        .call("GET", &format!("/connectors/{name}/tasks"), None)
        .await;
    assert_eq!(
        tasks[0]["config"]["topic"],
        reference.as_str(),
        "task configs keep the reference"
    );
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_resumes_from_its_offsets_file() {
    let dir = temp_dir("standalone");
    let topic = unique("sa");
    let props = [
        ("bootstrap.servers", kafka_bootstrap()),
        (
            "key.converter",
            "org.apache.kafka.connect.json.JsonConverter".to_string(),
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter".to_string(),
        ),
        ("value.converter.schemas.enable", "false".to_string()),
        (
            "offset.storage.file.filename",
            dir.join("offsets").display().to_string(),
        ),
        ("offset.flush.interval.ms", "300".to_string()),
        ("listeners", "http://127.0.0.1:0".to_string()),
    ];
    let props: std::collections::BTreeMap<String, String> =
        props.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let connector = || ConnectorFile {
        name: "sa".into(),
        config: [
            ("name", "sa"),
            ("connector.class", "VerifiableSource"),
            ("tasks.max", "1"),
            ("topic", topic.as_str()),
            ("throughput", "300"),
            ("verifiable.print", "false"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        initial_state: None,
    };
    let seqnos = || -> Vec<i64> {
        try_read_topic(&topic)
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.value_json().as_i64())
            .collect()
    };

    let cfg = WorkerConfig::from_props(Mode::Standalone, props.clone()).unwrap();
    let h = app::start(cfg, vec![connector()], loggers())
        .await
        .expect("standalone worker starts");
    eventually(Duration::from_secs(30), || async { seqnos().len() >= 300 }).await;
    // There is no leader to send task configs to; the internal endpoint
    // refuses them, as Java's standalone worker does.
    let (code, body) = http(
        &format!("http://127.0.0.1:{}", h.port),
        "POST",
        "/connectors/sa/tasks",
        Some(r#"[{"task.class":"forged"}]"#),
        "application/json",
    )
    .await;
    assert_eq!(code, 500, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("standalone mode does not support externally setting task configurations"),
        "{body}"
    );
    h.shutdown().await;
    let first_run = seqnos();
    let last = *first_run.iter().max().unwrap();
    assert!(dir.join("offsets").exists(), "offsets file written");

    let cfg = WorkerConfig::from_props(Mode::Standalone, props).unwrap();
    let h = app::start(cfg, vec![connector()], loggers())
        .await
        .expect("standalone worker restarts");
    eventually(Duration::from_secs(30), || async {
        seqnos().len() >= first_run.len() + 100
    })
    .await;
    h.shutdown().await;
    let all = seqnos();
    let second: Vec<i64> = all[first_run.len()..].to_vec();
    assert_eq!(
        second[0],
        last + 1,
        "the second run resumes right after the last record (graceful stop flushed offsets)"
    );
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        all.len(),
        "no duplicates across a graceful restart"
    );
    assert_eq!(
        *sorted.last().unwrap() as usize + 1,
        sorted.len(),
        "no gaps"
    );
}

async fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .create()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_on_unsafe_internal_topics() {
    let admin = admin().await;
    let opts = AdminOptions::new();

    // An existing, non-compacted config topic.
    let cluster = Cluster::new();
    admin
        .create_topics(
            &[
                NewTopic::new(&cluster.config_topic, 1, TopicReplication::Fixed(1))
                    .set("cleanup.policy", "delete"),
            ],
            &opts,
        )
        .await
        .unwrap();
    let cfg = WorkerConfig::from_props(Mode::Distributed, cluster.props(&[])).unwrap();
    match app::start(cfg, vec![], loggers()).await {
        Err(AppError::Topic(TopicError::NotCompacted { topic, key, policy })) => {
            assert_eq!(
                (topic.as_str(), key.as_str(), policy.as_str()),
                (
                    cluster.config_topic.as_str(),
                    "config.storage.topic",
                    "delete"
                )
            );
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a worker started on a non-compacted config topic"),
    }

    // A compacted config topic with two partitions.
    let cluster = Cluster::new();
    admin
        .create_topics(
            &[
                NewTopic::new(&cluster.config_topic, 2, TopicReplication::Fixed(1))
                    .set("cleanup.policy", "compact"),
            ],
            &opts,
        )
        .await
        .unwrap();
    let cfg = WorkerConfig::from_props(Mode::Distributed, cluster.props(&[])).unwrap();
    match app::start(cfg, vec![], loggers()).await {
        Err(e @ AppError::Topic(TopicError::ConfigTopicPartitions { .. })) => {
            assert!(e.to_string().contains("exactly 1"), "{e}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a worker started on a two-partition config topic"),
    }
}
