//! The changelog normalizer on a real broker through the worker's sink
//! runtime: an upsert topic with inserts, updates, identical updates,
//! deletes and re-inserts becomes a Debezium changelog that a
//! `read_committed` consumer sees exactly once (no gap, no duplicate) and
//! equal, event for event, to an independent oracle, across `kill -9` of the
//! worker while input is still arriving, also when the normalizer's local
//! state directory is deleted before each restart (the state is then rebuilt
//! from the compacted state topic through `SinkRuntime::read_partition`).

#![allow(clippy::unwrap_used)] // tests panic on unexpected states by design

mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value as Json};

const STRING: &str = "org.apache.kafka.connect.storage.StringConverter";
const PARTITIONS: i32 = 3;

/// One upsert: key, document (None = tombstone), partition.
#[derive(Clone, Debug)]
struct Upsert {
    partition: i32,
    key: String,
    doc: Option<String>,
}

/// A seeded history: inserts, updates, identical re-writes, deletes (also
/// of unknown keys) and re-inserts.
fn history(len: usize, keys: u64) -> Vec<Upsert> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut live: HashMap<u64, String> = HashMap::new();
    (0..len)
        .map(|i| {
            let k = next() % keys;
            let roll = next() % 100;
            let doc = if roll < 15 {
                None
            } else if roll < 30 && live.contains_key(&k) {
                live.get(&k).cloned()
            } else {
                Some(format!("{{\"_id\": {k}, \"v\": {i}}}"))
            };
            match &doc {
                Some(d) => live.insert(k, d.clone()),
                None => live.remove(&k),
            };
            Upsert {
                partition: (k % PARTITIONS as u64) as i32,
                key: format!("{{\"_id\": {k}}}"),
                doc,
            }
        })
        .collect()
}

fn produce(topic: &str, records: &[Upsert]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .create()
        .unwrap();
    for r in records {
        loop {
            let mut rec = BaseRecord::<String, String>::to(topic)
                .partition(r.partition)
                .key(&r.key);
            if let Some(d) = &r.doc {
                rec = rec.payload(d);
            }
            match p.send(rec) {
                Ok(()) => break,
                Err(_) => {
                    p.poll(Duration::from_millis(50));
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

/// Everything a `read_committed` consumer sees in `topic` right now
/// (positions move past transaction markers, so read until the position,
/// not the last record, reaches the end).
fn read_committed(topic: &str) -> Vec<(i32, Vec<u8>, Json)> {
    try_read_committed(topic).unwrap_or_else(|e| panic!("reading {topic}: {e}"))
}

/// As [`read_committed`]; an error when the topic does not exist yet.
fn try_read_committed(topic: &str) -> Result<Vec<(i32, Vec<u8>, Json)>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        ends.insert(p, high);
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push((
                m.partition(),
                m.key().unwrap_or_default().to_vec(),
                serde_json::from_slice(m.payload().unwrap()).unwrap(),
            ));
            continue;
        }
        let pos = consumer.position().unwrap();
        let done = ends.iter().all(|(p, end)| {
            matches!(
                pos.find_partition(topic, *p).map(|e| e.offset()),
                Some(Offset::Offset(o)) if o >= *end
            ) || *end == 0
        });
        if done {
            return Ok(out);
        }
        assert!(Instant::now() < deadline, "timed out reading {topic}");
    }
}

/// The changelog the normalizer must produce for one partition.
fn expected(history: &[Upsert], partition: i32) -> Vec<(Vec<u8>, String, Json, Json)> {
    let mut state: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    let j = |s: &str| serde_json::from_str::<Json>(s).unwrap();
    for r in history.iter().filter(|r| r.partition == partition) {
        let key = r.key.clone().into_bytes();
        match (&r.doc, state.get(&r.key).cloned()) {
            (Some(d), None) => {
                out.push((key, "c".to_string(), Json::Null, j(d)));
                state.insert(r.key.clone(), d.clone());
            }
            (Some(d), Some(old)) if &old != d => {
                out.push((key, "u".to_string(), j(&old), j(d)));
                state.insert(r.key.clone(), d.clone());
            }
            (Some(_), Some(_)) | (None, None) => {}
            (None, Some(old)) => {
                out.push((key, "d".to_string(), j(&old), Json::Null));
                state.remove(&r.key);
            }
        }
    }
    out
}

async fn wait_http(base: &str, port: u16) {
    eventually(Duration::from_secs(60), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
            && http(base, "GET", "/health", None, "application/json")
                .await
                .0
                == 200
    })
    .await;
}

fn output_count(topic: &str) -> usize {
    try_read_committed(topic).map_or(0, |v| v.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changelog_exactly_once_across_kill_9() {
    kill_9_run(false, 20000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changelog_exactly_once_across_kill_9_with_the_state_dir_deleted() {
    kill_9_run(true, 21000).await;
}

/// Chunks of input held back until every kill is done, so each kill lands
/// while input is still arriving.
const HELD_BACK_CHUNKS: usize = 15;

/// Normalizes a seeded history while it is produced, kills the worker with
/// -9 twice (deleting the state directory before each restart when
/// `lose_state`), and checks the `read_committed` output against the oracle.
async fn kill_9_run(lose_state: bool, port_base: u16) {
    let dir = temp_dir("normalizer");
    let cluster = Cluster::new();
    let port = port_base + (std::process::id() % 1000) as u16;
    let listeners = format!("http://127.0.0.1:{port}");
    let props = cluster.write_props(&dir, &[("listeners", &listeners)]);
    let base = format!("http://127.0.0.1:{port}");
    let input = unique("upserts");
    let output = format!("{input}.changelog");
    create_topic(&input, PARTITIONS).await;
    let changes = history(3000, 150);
    let want: Vec<_> = (0..PARTITIONS).map(|p| expected(&changes, p)).collect();
    let total: usize = want.iter().map(Vec::len).sum();

    // Input keeps arriving, so the kills land mid-stream: the last chunks
    // wait for the kills to be over.
    let producer_topic = input.clone();
    let producer_changes = changes.clone();
    let kills_done = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(AtomicUsize::new(0));
    let (done, count) = (Arc::clone(&kills_done), Arc::clone(&produced));
    let producer = std::thread::spawn(move || {
        let chunks: Vec<_> = producer_changes.chunks(50).collect();
        let n = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            while i + HELD_BACK_CHUNKS >= n && !done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(50));
            }
            produce(&producer_topic, chunk);
            count.fetch_add(chunk.len(), Ordering::Release);
            std::thread::sleep(Duration::from_millis(250));
        }
    });

    let config = json!({
        "connector.class": "ChangelogNormalizer",
        "tasks.max": "1",
        "topics": input,
        "key.converter": STRING,
        "value.converter": STRING,
        "state.dir": dir.join("state").to_string_lossy(),
        "output.topic.partitions": PARTITIONS.to_string(),
    });
    let create = json!({"name": unique("normalizer"), "config": config}).to_string();
    let mut worker = spawn_worker(&props, &dir.join("w0.log"));
    wait_http(&base, port).await;
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
    for (i, at_least) in [total / 5, total / 3].into_iter().enumerate() {
        let out = output.clone();
        eventually(Duration::from_secs(120), || {
            let out = out.clone();
            async move { output_count(&out) >= at_least }
        })
        .await;
        worker.kill().expect("kill -9");
        let _ = worker.wait();
        let at = produced.load(Ordering::Acquire);
        assert!(at < changes.len(), "kill {i} after all input was produced");
        if lose_state {
            let state = dir.join("state");
            assert!(state.is_dir(), "no state directory at {}", state.display());
            std::fs::remove_dir_all(&state).unwrap();
        }
        worker = spawn_worker(&props, &dir.join(format!("w{}.log", i + 1)));
        wait_http(&base, port).await;
    }
    kills_done.store(true, Ordering::Release);
    producer.join().unwrap();
    let out = output.clone();
    eventually(Duration::from_secs(180), || {
        let out = out.clone();
        async move { output_count(&out) >= total }
    })
    .await;
    // Give a duplicate, if any, time to show up before checking.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = read_committed(&output);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(worker.id().to_string())
        .status();
    let _ = worker.wait();

    if lose_state {
        // Each restart found no local state for any partition and rebuilt it
        // from the state topic (not from the input, and not empty).
        for log in ["w1.log", "w2.log"] {
            let text = std::fs::read_to_string(dir.join(log)).unwrap();
            let restored = text.matches("state restored from the state topic").count();
            assert_eq!(restored, PARTITIONS as usize, "{log}:\n{text}");
        }
    }

    for p in 0..PARTITIONS {
        let events: Vec<(Vec<u8>, String, Json, Json)> = got
            .iter()
            .filter(|(part, _, _)| *part == p)
            .map(|(_, k, v)| {
                assert_eq!(v["source"]["partition"], p, "same partition as the input");
                (
                    k.clone(),
                    v["op"].as_str().unwrap().to_string(),
                    v["before"].clone(),
                    v["after"].clone(),
                )
            })
            .collect();
        let w = &want[p as usize];
        assert_eq!(events.len(), w.len(), "partition {p}: gap or duplicate");
        for (i, (g, e)) in events.iter().zip(w).enumerate() {
            assert_eq!(g, e, "partition {p}, event {i}");
        }
    }
}
