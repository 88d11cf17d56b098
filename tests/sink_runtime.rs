//! The sink runtime end to end on a real broker, through Apache Kafka's
//! FileStreamSink: delivery in order, the sink offsets REST API (GET, PATCH,
//! DELETE), topics.regex discovery, the dead letter queue with its context
//! headers, errors.tolerance=none, and no loss across kill -9.
//! (Kafka transactions through `SinkRuntime::commit_transaction` are tested
//! in `src/worker/sink_task.rs` with a test-only sink task.)

#![allow(clippy::unwrap_used)] // tests panic on unexpected states by design

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::json;

const STRING: &str = "org.apache.kafka.connect.storage.StringConverter";
const JSON: &str = "org.apache.kafka.connect.json.JsonConverter";

fn produce(topic: &str, partition: i32, values: &[String]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .create()
        .unwrap();
    for v in values {
        loop {
            match p.send(
                BaseRecord::<(), String>::to(topic)
                    .partition(partition)
                    .payload(v),
            ) {
                Ok(()) => break,
                Err(_) => {
                    p.poll(Duration::from_millis(50));
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

async fn wait_lines(path: &Path, at_least: usize) {
    eventually(Duration::from_secs(60), || async move {
        lines(path).len() >= at_least
    })
    .await;
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

async fn status(w: &TestWorker, name: &str) -> serde_json::Value {
    w.call("GET", &format!("/connectors/{name}/status"), None)
        .await
        .1
}

async fn wait_task_state(w: &TestWorker, name: &str, state: &str) -> serde_json::Value {
    let mut last = json!(null);
    for _ in 0..300 {
        last = status(w, name).await;
        if last["tasks"][0]["state"] == state {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("task of {name} did not reach {state}: {last}");
}

fn file_sink(topic: &str, file: &Path) -> serde_json::Value {
    json!({
        "connector.class": "FileStreamSink",
        "tasks.max": "1",
        "topics": topic,
        "file": file.to_string_lossy(),
        "value.converter": STRING,
        "key.converter": STRING,
    })
}

fn values(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

async fn offsets(w: &TestWorker, name: &str) -> serde_json::Value {
    let (code, body) = w
        .call("GET", &format!("/connectors/{name}/offsets"), None)
        .await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn stop(w: &TestWorker, name: &str) {
    let (code, body) = w
        .call("PUT", &format!("/connectors/{name}/stop"), None)
        .await;
    assert_eq!(code, 204, "{body}");
    eventually(Duration::from_secs(30), || async {
        let s = status(w, name).await;
        s["connector"]["state"] == "STOPPED" && s["tasks"].as_array().is_some_and(|t| t.is_empty())
    })
    .await;
}

async fn resume(w: &TestWorker, name: &str) {
    let (code, body) = w
        .call("PUT", &format!("/connectors/{name}/resume"), None)
        .await;
    assert_eq!(code, 202, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sink_writes_records_in_order_and_sink_offsets_api_works() {
    let w = Cluster::new().start(&[]).await;
    let topic = unique("sink-in");
    let name = unique("file-sink");
    let dir = temp_dir("sink");
    let file = dir.join("out.txt");
    create_topic(&topic, 1).await;
    let first = values("v", 0..100);
    produce(&topic, 0, &first);
    create(&w, &name, file_sink(&topic, &file)).await;
    wait_task_state(&w, &name, "RUNNING").await;
    wait_lines(&file, 100).await;
    assert_eq!(lines(&file), first, "every value, once, in order");

    // The committed offset appears in the REST form of sink offsets.
    let expected = json!({"offsets":[{"partition":{"kafka_topic": topic, "kafka_partition": 0},"offset":{"kafka_offset": 100}}]});
    eventually(Duration::from_secs(30), || async {
        offsets(&w, &name).await == expected
    })
    .await;

    // Alter and reset only when STOPPED (Java's 400 otherwise).
    let patch = json!({"offsets":[{"partition":{"kafka_topic": topic, "kafka_partition": "0"},"offset":{"kafka_offset": "50"}}]});
    let (code, body) = w
        .call(
            "PATCH",
            &format!("/connectors/{name}/offsets"),
            Some(&patch),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Connectors must be in the STOPPED state"),
        "{body}"
    );

    stop(&w, &name).await;
    // Bad bodies are 400 with a reason.
    for bad in [
        json!({"offsets":[{"partition":{"kafka_partition": 0},"offset":{"kafka_offset": 1}}]}),
        json!({"offsets":[{"partition":{"kafka_topic": topic, "kafka_partition": "x"},"offset":{"kafka_offset": 1}}]}),
        json!({"offsets":[{"partition":{"kafka_topic": topic, "kafka_partition": 0},"offset":{"kafka_offset": "y"}}]}),
        json!({"offsets":[{"partition":{"kafka_topic": topic, "kafka_partition": 0},"offset":{"wrong": 1}}]}),
        json!({"offsets":[]}),
    ] {
        let (code, body) = w
            .call("PATCH", &format!("/connectors/{name}/offsets"), Some(&bad))
            .await;
        assert_eq!(code, 400, "{bad} -> {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A null offset resets that partition (Java's deleteConsumerGroupOffsets).
    let null_reset = json!({"offsets":[{"partition":{"kafka_topic": topic, "kafka_partition": 0},"offset": null}]});
    let (code, body) = w
        .call(
            "PATCH",
            &format!("/connectors/{name}/offsets"),
            Some(&null_reset),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(offsets(&w, &name).await, json!({"offsets": []}));

    let (code, body) = w
        .call(
            "PATCH",
            &format!("/connectors/{name}/offsets"),
            Some(&patch),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    // FileStreamSink's alterOffsets returns true, as in Java.
    assert_eq!(
        body["message"],
        "The offsets for this connector have been altered successfully"
    );
    assert_eq!(
        offsets(&w, &name).await,
        json!({"offsets":[{"partition":{"kafka_topic": topic, "kafka_partition": 0},"offset":{"kafka_offset": 50}}]})
    );

    // Resumed, the task starts at the altered offset.
    resume(&w, &name).await;
    wait_lines(&file, 150).await;
    let all = lines(&file);
    assert_eq!(all.len(), 150);
    assert_eq!(all[100..], first[50..]);

    // DELETE removes the group: the task starts from the beginning.
    stop(&w, &name).await;
    let (code, body) = w
        .call("DELETE", &format!("/connectors/{name}/offsets"), None)
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["message"],
        "The offsets for this connector have been reset successfully"
    );
    assert_eq!(offsets(&w, &name).await, json!({"offsets": []}));
    // Resetting a group that no longer exists is also a success.
    let (code, body) = w
        .call("DELETE", &format!("/connectors/{name}/offsets"), None)
        .await;
    assert_eq!(code, 200, "{body}");
    resume(&w, &name).await;
    wait_lines(&file, 250).await;
    assert_eq!(lines(&file)[150..], first[..]);
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_regex_picks_up_a_topic_created_later() {
    // Java's metadata.max.age.ms paces the discovery of new matching topics.
    let w = Cluster::new()
        .start(&[("consumer.metadata.max.age.ms", "1000")])
        .await;
    let prefix = unique("rx");
    let name = unique("regex-sink");
    let file = temp_dir("sink").join("out.txt");
    let t1 = format!("{prefix}-a");
    create_topic(&t1, 1).await;
    produce(&t1, 0, &values("a", 0..5));
    let mut config = file_sink("unused", &file);
    let obj = config.as_object_mut().unwrap();
    obj.remove("topics");
    obj.insert("topics.regex".into(), json!(format!("{prefix}-.*")));
    create(&w, &name, config).await;
    wait_lines(&file, 5).await;

    let t2 = format!("{prefix}-b");
    create_topic(&t2, 1).await;
    produce(&t2, 0, &values("b", 0..5));
    wait_lines(&file, 10).await;
    let all = lines(&file);
    assert_eq!(all[..5], values("a", 0..5)[..]);
    assert_eq!(all[5..], values("b", 0..5)[..]);
    // A topic that does not match the whole regex is not consumed.
    let other = format!("x{prefix}-c");
    create_topic(&other, 1).await;
    produce(&other, 0, &values("c", 0..1));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(lines(&file).len(), 10);
    w.shutdown().await;
}

/// Records of `topic` with their headers as strings.
fn read_with_headers(topic: &str) -> Vec<(Option<String>, BTreeMap<String, String>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", unique("hdr-reader"))
        .create()
        .unwrap();
    let (_, high) = c
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while (out.len() as i64) < high && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let mut h = BTreeMap::new();
            if let Some(hs) = m.headers() {
                for x in hs.iter() {
                    h.insert(
                        x.key.to_string(),
                        String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                    );
                }
            }
            out.push((
                m.payload().map(|v| String::from_utf8_lossy(v).into_owned()),
                h,
            ));
        }
    }
    out
}

fn json_sink(topic: &str, file: &Path, extra: serde_json::Value) -> serde_json::Value {
    let mut c = file_sink(topic, file);
    c["value.converter"] = json!(JSON);
    c["value.converter.schemas.enable"] = json!("false");
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_record_goes_to_the_dlq_with_context_headers() {
    let w = Cluster::new().start(&[]).await;
    let topic = unique("dlq-in");
    let dlq = unique("dlq");
    let name = unique("dlq-sink");
    let file = temp_dir("sink").join("out.txt");
    create_topic(&topic, 1).await;
    produce(
        &topic,
        0,
        &[
            "\"a\"".to_string(),
            "not json".to_string(),
            "\"c\"".to_string(),
        ],
    );
    create(
        &w,
        &name,
        json_sink(
            &topic,
            &file,
            json!({
                "errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": dlq,
                "errors.deadletterqueue.topic.replication.factor": "1",
                "errors.deadletterqueue.context.headers.enable": "true",
            }),
        ),
    )
    .await;
    wait_lines(&file, 2).await;
    assert_eq!(lines(&file), vec!["a", "c"]);
    eventually(Duration::from_secs(30), || async {
        try_read_topic(&dlq).is_ok_and(|r| r.len() == 1)
    })
    .await;
    let recs = read_with_headers(&dlq);
    assert_eq!(recs.len(), 1);
    let (value, h) = &recs[0];
    assert_eq!(value.as_deref(), Some("not json"), "the raw bytes");
    assert_eq!(h["__connect.errors.topic"], topic);
    assert_eq!(h["__connect.errors.partition"], "0");
    assert_eq!(h["__connect.errors.offset"], "1");
    assert_eq!(h["__connect.errors.connector.name"], name);
    assert_eq!(h["__connect.errors.task.id"], "0");
    assert_eq!(h["__connect.errors.stage"], "VALUE_CONVERTER");
    assert_eq!(h["__connect.errors.class.name"], JSON);
    assert!(
        h["__connect.errors.exception.class.name"].starts_with("org.apache.kafka.connect.errors.")
    );
    assert!(!h["__connect.errors.exception.message"].is_empty());
    assert!(h.contains_key("__connect.errors.exception.stacktrace"));
    // The bad record's offset is committed too: it is not retried.
    eventually(Duration::from_secs(30), || async {
        offsets(&w, &name).await["offsets"][0]["offset"]["kafka_offset"] == 3
    })
    .await;
    assert_eq!(status(&w, &name).await["tasks"][0]["state"], "RUNNING");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_without_context_headers_and_tolerance_without_dlq() {
    let w = Cluster::new().start(&[]).await;
    // A failing transform (ExtractField on a non-struct value) goes to the DLQ
    // without context headers, keeping the record's own headers.
    let topic = unique("dlq2-in");
    let dlq = unique("dlq2");
    let name = unique("dlq2-sink");
    let file = temp_dir("sink").join("out.txt");
    create_topic(&topic, 1).await;
    produce(
        &topic,
        0,
        &[
            "{\"f\":\"x\"}".to_string(),
            "\"plain\"".to_string(),
            "{\"f\":\"y\"}".to_string(),
        ],
    );
    create(
        &w,
        &name,
        json_sink(
            &topic,
            &file,
            json!({
                "errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": dlq,
                "errors.deadletterqueue.topic.replication.factor": "1",
                "transforms": "ex",
                "transforms.ex.type": "org.apache.kafka.connect.transforms.ExtractField$Value",
                "transforms.ex.field": "f",
            }),
        ),
    )
    .await;
    wait_lines(&file, 2).await;
    assert_eq!(lines(&file), vec!["x", "y"]);
    eventually(Duration::from_secs(30), || async {
        try_read_topic(&dlq).is_ok_and(|r| r.len() == 1)
    })
    .await;
    let recs = read_with_headers(&dlq);
    assert_eq!(recs[0].0.as_deref(), Some("\"plain\""));
    assert!(
        recs[0]
            .1
            .keys()
            .all(|k| !k.starts_with("__connect.errors.")),
        "{:?}",
        recs[0].1
    );

    // errors.tolerance=all without a DLQ: skipped (and logged), the task runs on.
    let topic2 = unique("tol-in");
    let name2 = unique("tol-sink");
    let file2 = temp_dir("sink").join("out.txt");
    create_topic(&topic2, 1).await;
    produce(
        &topic2,
        0,
        &["\"a\"".to_string(), "bad".to_string(), "\"c\"".to_string()],
    );
    create(
        &w,
        &name2,
        json_sink(&topic2, &file2, json!({"errors.tolerance": "all"})),
    )
    .await;
    wait_lines(&file2, 2).await;
    assert_eq!(lines(&file2), vec!["a", "c"]);
    assert_eq!(status(&w, &name2).await["tasks"][0]["state"], "RUNNING");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tolerance_none_fails_the_task_naming_the_record() {
    let w = Cluster::new().start(&[]).await;
    let topic = unique("none-in");
    let name = unique("none-sink");
    let file = temp_dir("sink").join("out.txt");
    create_topic(&topic, 1).await;
    produce(
        &topic,
        0,
        &[
            "\"a\"".to_string(),
            "not json".to_string(),
            "\"c\"".to_string(),
        ],
    );
    create(&w, &name, json_sink(&topic, &file, json!({}))).await;
    let st = wait_task_state(&w, &name, "FAILED").await;
    let trace = st["tasks"][0]["trace"].as_str().unwrap();
    assert!(trace.contains("Tolerance exceeded"), "{trace}");
    assert!(
        trace.contains(&format!("topic '{topic}'"))
            && trace.contains("partition 0")
            && trace.contains("offset 1"),
        "{trace}"
    );
    // Nothing after the bad record was written, and the good one before it
    // may be (it was put before the failure) but never "c".
    assert!(!lines(&file).contains(&"c".to_string()));
    // The bad record's offset was not committed.
    let committed = offsets(&w, &name).await;
    assert!(
        committed["offsets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["offset"]["kafka_offset"].as_i64().unwrap() <= 1),
        "{committed}"
    );
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sink_configs_are_refused_with_a_reason() {
    let w = Cluster::new().start(&[]).await;
    let file = temp_dir("sink").join("out.txt");
    let topic = unique("self");
    let mut both = file_sink("t1", &file);
    both["topics.regex"] = json!("t.*");
    let mut neither = file_sink("t1", &file);
    neither.as_object_mut().unwrap().remove("topics");
    let mut bad_regex = neither.clone();
    bad_regex["topics.regex"] = json!("(");
    let dlq_is_input = json_sink(
        &topic,
        &file,
        json!({"errors.deadletterqueue.topic.name": topic}),
    );
    for (config, reason) in [
        (both, "mutually exclusive"),
        (neither, "Must configure one of topics or topics.regex"),
        (bad_regex, "topics.regex"),
        (dlq_is_input, "may not be included in the list of topics"),
    ] {
        let name = unique("bad");
        let (code, body) = w
            .call(
                "POST",
                "/connectors",
                Some(&json!({"name": name, "config": config})),
            )
            .await;
        assert_eq!(code, 400, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(reason),
            "{reason}: {body}"
        );
        // The validate endpoint reports the same finding.
        let (code, body) = w
            .call(
                "PUT",
                "/connector-plugins/FileStreamSink/config/validate",
                Some(&config),
            )
            .await;
        assert_eq!(code, 200, "{body}");
        assert!(body["error_count"].as_i64().unwrap() >= 1, "{body}");
    }
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_resumes_from_committed_offsets() {
    let dir = temp_dir("sink-restart");
    let cluster = Cluster::new();
    let port = 19000 + (std::process::id() % 1000) as u16;
    let listeners = format!("http://127.0.0.1:{port}");
    let props = cluster.write_props(
        &dir,
        &[
            ("listeners", &listeners),
            ("offset.flush.interval.ms", "500"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let topic = unique("seq-in");
    let name = unique("restart-sink");
    let file = dir.join("out.txt");
    create_topic(&topic, 1).await;
    let total = 6000;
    let all_values = values("s", 0..total);

    // A producer writes throughout, so the kill lands mid-stream.
    let producer_topic = topic.clone();
    let producer_values = all_values.clone();
    let producer = std::thread::spawn(move || {
        for chunk in producer_values.chunks(200) {
            produce(&producer_topic, 0, chunk);
            std::thread::sleep(Duration::from_millis(100));
        }
    });

    let mut w1 = spawn_worker(&props, &dir.join("w1.log"));
    eventually(Duration::from_secs(60), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
            && http(&base, "GET", "/health", None, "application/json")
                .await
                .0
                == 200
    })
    .await;
    let create = json!({"name": name, "config": file_sink(&topic, &file)});
    eventually(Duration::from_secs(30), || async {
        http(
            &base,
            "POST",
            "/connectors",
            Some(&create.to_string()),
            "application/json",
        )
        .await
        .0 == 201
    })
    .await;
    wait_lines(&file, 1500).await;
    w1.kill().expect("kill -9");
    let _ = w1.wait();
    let before_kill = lines(&file).len();

    let mut w2 = spawn_worker(&props, &dir.join("w2.log"));
    producer.join().unwrap();
    eventually(Duration::from_secs(90), || async {
        let l = lines(&file);
        l.last() == all_values.last()
    })
    .await;
    // A graceful stop commits everything: the third run adds nothing.
    sigterm(&mut w2);
    let after_term = lines(&file);
    let mut w3 = spawn_worker(&props, &dir.join("w3.log"));
    tokio::time::sleep(Duration::from_secs(8)).await;
    sigterm(&mut w3);
    let final_lines = lines(&file);
    assert_eq!(
        final_lines, after_term,
        "a graceful restart re-delivered records"
    );

    // No loss; duplicates only from the interval not yet committed at the
    // kill, and the records after it appear exactly once, in order.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &final_lines {
        *counts.entry(l.as_str()).or_default() += 1;
    }
    let missing: Vec<&String> = all_values
        .iter()
        .filter(|v| !counts.contains_key(v.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "lost: {:?}",
        &missing[..missing.len().min(10)]
    );
    let dups = final_lines.len() - total;
    assert!(dups <= before_kill, "{dups} duplicates");
    // The second run's output is the topic from some point p ≤ the last line
    // before the kill, in order.
    let tail = &final_lines[before_kill..];
    let start: usize = tail[0].trim_start_matches("s-").parse().unwrap();
    assert!(start < before_kill + 1, "the restart skipped records");
    assert_eq!(
        tail,
        &all_values[start..],
        "after the restart: in order, once"
    );
    eprintln!(
        "lines {} duplicates {dups} (kill after {before_kill})",
        final_lines.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_delivery_and_resume_continues() {
    let w = Cluster::new().start(&[]).await;
    let topic = unique("pause-in");
    let name = unique("pause-sink");
    let file = temp_dir("sink").join("out.txt");
    create_topic(&topic, 1).await;
    produce(&topic, 0, &values("p", 0..10));
    create(&w, &name, file_sink(&topic, &file)).await;
    wait_lines(&file, 10).await;
    let (code, body) = w
        .call("PUT", &format!("/connectors/{name}/pause"), None)
        .await;
    assert_eq!(code, 202, "{body}");
    wait_task_state(&w, &name, "PAUSED").await;
    produce(&topic, 0, &values("p", 10..20));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(lines(&file).len(), 10, "a paused task received records");
    resume(&w, &name).await;
    wait_task_state(&w, &name, "RUNNING").await;
    wait_lines(&file, 20).await;
    assert_eq!(lines(&file), values("p", 0..20));
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tasks_share_the_partitions_through_rebalances() {
    let w = Cluster::new().start(&[]).await;
    let topic = unique("multi-in");
    let name = unique("multi-sink");
    let file = temp_dir("sink").join("out.txt");
    create_topic(&topic, 4).await;
    for p in 0..4 {
        produce(&topic, p, &values(&format!("m{p}"), 0..50));
    }
    let mut c = file_sink(&topic, &file);
    c["tasks.max"] = json!("2");
    create(&w, &name, c).await;
    wait_lines(&file, 200).await;
    // More records after both tasks joined (and the group rebalanced).
    for p in 0..4 {
        produce(&topic, p, &values(&format!("m{p}"), 50..100));
    }
    wait_lines(&file, 400).await;
    let all = lines(&file);
    // Per partition: in order, without a gap; across a rebalance a partition
    // may be re-read from its last commit (a step back), never skip ahead.
    for p in 0..4 {
        let prefix = format!("m{p}-");
        let seqs: Vec<i64> = all
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(seqs.first(), Some(&0), "partition {p}");
        for w in seqs.windows(2) {
            assert!(
                w[1] <= w[0] + 1,
                "partition {p} skipped from {} to {}",
                w[0],
                w[1]
            );
        }
        let distinct: std::collections::BTreeSet<i64> = seqs.iter().copied().collect();
        assert_eq!(distinct.len(), 100, "partition {p} lost records");
    }
    let st = status(&w, &name).await;
    assert_eq!(st["tasks"].as_array().unwrap().len(), 2, "{st}");
    eventually(Duration::from_secs(30), || async {
        let o = offsets(&w, &name).await;
        o["offsets"]
            .as_array()
            .is_some_and(|a| a.len() == 4 && a.iter().all(|e| e["offset"]["kafka_offset"] == 100))
    })
    .await;
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_of_a_group_with_members_cannot_be_modified() {
    let w = Cluster::new().start(&[]).await;
    let topic = unique("busy-in");
    let name = unique("busy-sink");
    let group = unique("busy-group");
    let file = temp_dir("sink").join("out.txt");
    create_topic(&topic, 1).await;
    produce(&topic, 0, &values("b", 0..3));
    let mut c = file_sink(&topic, &file);
    c["consumer.override.group.id"] = json!(group);
    create(&w, &name, c).await;
    wait_lines(&file, 3).await;
    // The override names the group the REST API reads.
    eventually(Duration::from_secs(30), || async {
        offsets(&w, &name).await["offsets"][0]["offset"]["kafka_offset"] == 3
    })
    .await;
    stop(&w, &name).await;

    // Another member joins the group: Kafka refuses changes to its offsets.
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    member.subscribe(&[&topic]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while member.assignment().unwrap().count() == 0 {
        assert!(std::time::Instant::now() < deadline, "never assigned");
        let _ = member.poll(Duration::from_millis(100));
    }
    let patch = json!({"offsets":[{"partition":{"kafka_topic": topic, "kafka_partition": 0},"offset":{"kafka_offset": 1}}]});
    let null_reset = json!({"offsets":[{"partition":{"kafka_topic": topic, "kafka_partition": 0},"offset": null}]});
    for (method, body) in [
        ("PATCH", Some(&patch)),
        ("PATCH", Some(&null_reset)),
        ("DELETE", None),
    ] {
        let (code, resp) = w
            .call(method, &format!("/connectors/{name}/offsets"), body)
            .await;
        assert_eq!(code, 500, "{method} {body:?}: {resp}");
        assert!(resp["message"].as_str().unwrap().contains(&group), "{resp}");
        // Keep the member alive in the group.
        let _ = member.poll(Duration::from_millis(10));
    }
    assert_eq!(
        offsets(&w, &name).await["offsets"][0]["offset"]["kafka_offset"],
        3,
        "the offsets did not change"
    );
    drop(member);
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncreatable_dlq_topic_fails_the_task_at_start() {
    // The default DLQ replication factor (3) cannot be met by the one-broker
    // test cluster: the task fails at start and says why, instead of losing
    // bad records later.
    let w = Cluster::new().start(&[]).await;
    let topic = unique("nodlq-in");
    let dlq = unique("nodlq");
    let name = unique("nodlq-sink");
    let file = temp_dir("sink").join("out.txt");
    create_topic(&topic, 1).await;
    create(
        &w,
        &name,
        json_sink(
            &topic,
            &file,
            json!({"errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq}),
        ),
    )
    .await;
    let st = wait_task_state(&w, &name, "FAILED").await;
    let trace = st["tasks"][0]["trace"].as_str().unwrap();
    assert!(
        trace.contains("dead letter queue topic") && trace.contains(&dlq),
        "{trace}"
    );
    w.shutdown().await;
}

/// Starts a worker process serving `port`, waits for its REST API.
async fn worker_process(props: &Path, log: &Path, port: u16) -> std::process::Child {
    let child = spawn_worker(props, log);
    let base = format!("http://127.0.0.1:{port}");
    eventually(Duration::from_secs(60), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
            && http(&base, "GET", "/health", None, "application/json")
                .await
                .0
                == 200
    })
    .await;
    child
}

/// Creates a FileStreamSink through a worker process's REST API.
async fn create_via(port: u16, name: &str, config: serde_json::Value) {
    let base = format!("http://127.0.0.1:{port}");
    let create = json!({"name": name, "config": config}).to_string();
    eventually(Duration::from_secs(30), || async {
        http(
            &base,
            "POST",
            "/connectors",
            Some(&create),
            "application/json",
        )
        .await
        .0 == 201
    })
    .await;
}

/// kill -9 of the worker while its sink task consumes a steady stream, then
/// a restart: the time from the restart to the first new line of output,
/// with the consumer's default session timeout (45 s). `static_prefix` sets
/// the worker's `consumer.group.instance.id` (static membership).
async fn recovery_after_kill_9(static_prefix: Option<&str>, port_base: u16) -> Duration {
    let dir = temp_dir("sink-recovery");
    let port = port_base + (std::process::id() % 1000) as u16;
    let listeners = format!("http://127.0.0.1:{port}");
    let mut extra = vec![
        ("listeners", listeners.as_str()),
        ("offset.flush.interval.ms", "1000"),
    ];
    if let Some(prefix) = static_prefix {
        extra.push(("consumer.group.instance.id", prefix));
    }
    let props = Cluster::new().write_props(&dir, &extra);
    let topic = unique("recover-in");
    let name = unique("recover-sink");
    let file = dir.join("out.txt");
    create_topic(&topic, 2).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (producer_topic, producer_stop) = (topic.clone(), std::sync::Arc::clone(&stop));
    let producer = std::thread::spawn(move || {
        let mut i = 0;
        while !producer_stop.load(std::sync::atomic::Ordering::Acquire) {
            for p in 0..2 {
                produce(&producer_topic, p, &values(&format!("r{p}"), i..i + 10));
            }
            i += 10;
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut w1 = worker_process(&props, &dir.join("w1.log"), port).await;
    create_via(port, &name, file_sink(&topic, &file)).await;
    wait_lines(&file, 200).await;
    // Let the consumer settle and commit.
    tokio::time::sleep(Duration::from_secs(3)).await;
    w1.kill().expect("kill -9");
    let _ = w1.wait();
    let before = lines(&file).len();
    let restarted = std::time::Instant::now();
    let mut w2 = spawn_worker(&props, &dir.join("w2.log"));
    eventually(Duration::from_secs(120), || async {
        lines(&file).len() > before
    })
    .await;
    let recovery = restarted.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Release);
    producer.join().unwrap();
    sigterm(&mut w2);
    eprintln!(
        "recovery after kill -9 (static membership: {}): {:.1}s",
        static_prefix.is_some(),
        recovery.as_secs_f64()
    );
    recovery
}

/// Issue 6 targets recovery under 30 s after kill -9. With static
/// membership the restarted task takes its partitions back at once, without
/// waiting for the dead consumer's session (45 s by default) to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_membership_recovers_from_kill_9_within_30s() {
    let recovery = recovery_after_kill_9(Some("connectd"), 17000).await;
    assert!(
        recovery < Duration::from_secs(30),
        "recovery took {recovery:?}"
    );
}

/// The same with the default (dynamic) membership: the restarted task
/// removes the member its killed run left in the group instead of waiting
/// the 45 s of that member's session (it took 44.9-45.3 s before it did).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_from_kill_9_within_30s_without_static_membership() {
    let recovery = recovery_after_kill_9(None, 16000).await;
    assert!(
        recovery < Duration::from_secs(30),
        "recovery took {recovery:?}"
    );
}

/// A sink whose input topic does not exist yet waits for it with one clear
/// WARN naming the topic (not librdkafka's ERROR), then consumes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_input_topic_is_one_warning_and_picked_up_once_created() {
    let dir = temp_dir("sink-missing");
    let port = 15000 + (std::process::id() % 1000) as u16;
    let listeners = format!("http://127.0.0.1:{port}");
    let props = Cluster::new().write_props(
        &dir,
        &[
            ("listeners", &listeners),
            ("consumer.metadata.max.age.ms", "1000"),
        ],
    );
    let topic = unique("later-in");
    let name = unique("later-sink");
    let file = dir.join("out.txt");
    let log = dir.join("w.log");
    let mut w = worker_process(&props, &log, port).await;
    create_via(port, &name, file_sink(&topic, &file)).await;
    // Several metadata refreshes while the topic is missing.
    tokio::time::sleep(Duration::from_secs(6)).await;
    create_topic(&topic, 1).await;
    produce(&topic, 0, &values("l", 0..5));
    wait_lines(&file, 5).await;
    sigterm(&mut w);
    assert_eq!(lines(&file), values("l", 0..5));
    let text = std::fs::read_to_string(&log).unwrap();
    let about: Vec<&str> = text.lines().filter(|l| l.contains(&topic)).collect();
    let waits = about
        .iter()
        .filter(|l| l.contains("WARN") && l.contains("does not exist (yet)"))
        .count();
    assert_eq!(
        waits,
        1,
        "one warning naming the topic:\n{}",
        about.join("\n")
    );
    assert!(
        !text.contains("Subscribed topic not available")
            && !text.lines().any(|l| l.contains("ERROR")),
        "no error for a missing input topic:\n{text}"
    );
}
