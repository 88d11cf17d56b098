//! The MongoDB source's changelog output (`output.format.value=changelog`)
//! against the changelog normalizer, on the real broker: one history of
//! inserts, updates (also identical-value ones), replaces, deletes and
//! re-inserts goes (a) through the source's upsert output and the
//! normalizer and (b) through the source's own envelope; both changelogs
//! must agree record by record on key bytes, `op`, `before` and `after`, and
//! both fold to MongoDB's final state.
//!
//! Also `errors.tolerance` for events the changelog output cannot convert
//! (no pre-image): `none` fails the task before the event, `all` routes it
//! to the dead letter queue (or, without one, to the log and a heartbeat
//! marker) and moves on.

#![allow(clippy::unwrap_used)] // tests panic on unexpected states by design

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::mongo::Mongo;
use common::*;
use connect_mongodb::bsonx;
use futures::StreamExt;
use mongodb::bson::{doc, Document};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value as Json};

const STRING: &str = "org.apache.kafka.connect.storage.StringConverter";

fn source_config(uri: &str, db: &str, coll: &str, prefix: &str, extra: &[(&str, &str)]) -> Json {
    let mut c = json!({
        "connector.class": "com.mongodb.kafka.connect.MongoSourceConnector",
        "connection.uri": uri,
        "tasks.max": "1",
        "database": db,
        "collection": coll,
        "topic.prefix": prefix,
        "key.converter": STRING,
        "value.converter": STRING,
        "poll.await.time.ms": "200",
    });
    for (k, v) in extra {
        c[*k] = json!(v);
    }
    c
}

async fn task_state(w: &TestWorker, name: &str) -> (String, String) {
    let (_, body) = w
        .call("GET", &format!("/connectors/{name}/status"), None)
        .await;
    let t = &body["tasks"][0];
    (
        t["state"].as_str().unwrap_or("").to_string(),
        t["trace"].as_str().unwrap_or("").to_string(),
    )
}

async fn running(w: &TestWorker, name: &str) {
    eventually(Duration::from_secs(60), || async {
        task_state(w, name).await.0 == "RUNNING"
    })
    .await;
}

async fn progress(w: &TestWorker, name: &str) -> Json {
    w.call("GET", &format!("/connectors/{name}/progress"), None)
        .await
        .1
}

async fn stream_phase(w: &TestWorker, name: &str) {
    eventually(Duration::from_secs(60), || async {
        let p = progress(w, name).await;
        p["progress"]["phase"] == "stream"
    })
    .await;
}

/// The stored stream offset's resume token JSON.
async fn stored_token(w: &TestWorker, name: &str) -> Option<String> {
    let body = w
        .call("GET", &format!("/connectors/{name}/offsets"), None)
        .await
        .1;
    body["offsets"].as_array()?.iter().find_map(|o| {
        let p = &o["partition"];
        (p.get("snapshot").is_none() && p.get("chunk").is_none())
            .then(|| o["offset"]["_id"].as_str().map(str::to_string))
            .flatten()
    })
}

/// One changelog record, parsed.
#[derive(Debug, Clone)]
struct Envelope {
    key: String,
    op: String,
    before: Json,
    after: Json,
    source: Json,
}

/// Every committed record of a topic as (key, value). The normalizer
/// writes in transactions, so the end is found by the consumer's position
/// (which moves past commit markers), not by the last record's offset.
fn read_committed(topic: &str) -> Vec<(String, Option<Vec<u8>>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
        return Vec::new();
    };
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in parts {
        let Ok((_, high)) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)) else {
            return Vec::new();
        };
        ends.insert(p, high);
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    if ends.is_empty() {
        return Vec::new();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            out.push((key, m.payload().map(<[u8]>::to_vec)));
            continue;
        }
        let pos = consumer.position().unwrap();
        let done = ends.iter().all(|(p, end)| {
            *end == 0
                || matches!(
                    pos.find_partition(topic, *p).map(|e| e.offset()),
                    Some(Offset::Offset(o)) if o >= *end
                )
        });
        if done || std::time::Instant::now() > deadline {
            return out;
        }
    }
}

fn envelopes(topic: &str) -> Vec<Envelope> {
    read_committed(topic)
        .into_iter()
        .filter_map(|(key, value)| {
            let v: Json = serde_json::from_slice(&value?).unwrap();
            Some(Envelope {
                key,
                op: v["op"].as_str().unwrap_or("?").to_string(),
                before: v["before"].clone(),
                after: v["after"].clone(),
                source: v["source"].clone(),
            })
        })
        .collect()
}

/// Per key, the envelopes in order (each topic keeps a key's order).
fn by_key(envs: &[Envelope]) -> BTreeMap<String, Vec<Envelope>> {
    let mut m: BTreeMap<String, Vec<Envelope>> = BTreeMap::new();
    for e in envs {
        m.entry(e.key.clone()).or_default().push(e.clone());
    }
    m
}

/// The state a changelog folds to, keyed like `Mongo::state`.
fn fold(envs: &[Envelope]) -> BTreeMap<String, Json> {
    let mut m = BTreeMap::new();
    for e in envs {
        let key: Json = serde_json::from_str(&e.key).unwrap();
        let id = key["_id"].to_string();
        match e.op.as_str() {
            "c" | "r" | "u" => {
                m.insert(id, e.after.clone());
            }
            "d" => {
                m.remove(&id);
            }
            other => panic!("unexpected op {other}"),
        }
    }
    m
}

async fn create_with_images(mongo: &Mongo, db: &str, coll: &str) {
    mongo
        .client
        .database(db)
        .run_command(doc! {"create": coll, "changeStreamPreAndPostImages": {"enabled": true}})
        .await
        .expect("create with changeStreamPreAndPostImages");
}

/// The same history through source(upsert) → normalizer and through
/// source(changelog): equal record by record, both equal to MongoDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn source_envelope_equals_the_normalizer_changelog() {
    let mongo = Mongo::start().await;
    let db = unique("env").replace('-', "_");
    let coll = "orders";
    create_with_images(&mongo, &db, coll).await;
    let c = mongo.client.database(&db).collection::<Document>(coll);
    // Existing documents: snapshot reads (`r`) on both paths.
    for i in 0..5 {
        c.insert_one(doc! {"_id": i, "v": i, "tag": "seed"})
            .await
            .unwrap();
    }
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let (pa, pb) = (unique("pa"), unique("pb"));
    let upsert = unique("src-upsert");
    let changelog = unique("src-changelog");
    let norm = unique("norm");
    let images = [
        ("startup.mode", "copy_existing"),
        ("change.stream.full.document", "whenAvailable"),
    ];
    let mut a_extra = images.to_vec();
    a_extra.extend([
        ("publish.full.document.only", "true"),
        ("publish.full.document.only.tombstone.on.delete", "true"),
    ]);
    w.create_connector(
        &upsert,
        &source_config(&mongo.uri, &db, coll, &pa, &a_extra),
    )
    .await;
    let mut b_extra = images.to_vec();
    b_extra.extend([
        ("output.format.value", "changelog"),
        ("change.stream.full.document.before.change", "whenAvailable"),
    ]);
    w.create_connector(
        &changelog,
        &source_config(&mongo.uri, &db, coll, &pb, &b_extra),
    )
    .await;
    let input = format!("{pa}.{db}.{coll}");
    // A consumer subscribed to a missing topic only sees it at its next
    // metadata refresh (minutes): create it first.
    create_topic(&input, 1).await;
    let state_dir = temp_dir("norm-state");
    w.create_connector(
        &norm,
        &json!({
            "connector.class": "ChangelogNormalizer",
            "tasks.max": "1",
            "topics": input,
            "key.converter": STRING,
            "value.converter": STRING,
            "state.dir": state_dir.to_string_lossy(),
        }),
    )
    .await;
    for n in [&upsert, &changelog, &norm] {
        running(&w, n).await;
    }
    stream_phase(&w, &upsert).await;
    stream_phase(&w, &changelog).await;

    // The history. `expected_u` counts the updates that change a document.
    let mut expected_u = 0;
    for i in 5..10 {
        c.insert_one(doc! {"_id": i, "v": i}).await.unwrap();
    }
    for i in 0..10 {
        c.update_one(doc! {"_id": i}, doc! {"$inc": {"v": 100}})
            .await
            .unwrap();
        expected_u += 1;
    }
    // Identical values: MongoDB writes no oplog entry, so neither path sees
    // a change (and the source would skip before == after if it did).
    for i in 0..3 {
        let r = c
            .update_one(doc! {"_id": i}, doc! {"$set": {"v": i + 100}})
            .await
            .unwrap();
        assert_eq!(r.modified_count, 0, "an identical $set modifies nothing");
    }
    // An identical replacement is no change either; dropping a field is.
    let r = c
        .replace_one(doc! {"_id": 5}, doc! {"_id": 5, "v": 105})
        .await
        .unwrap();
    assert_eq!(
        r.modified_count, 0,
        "an identical replacement modifies nothing"
    );
    c.replace_one(doc! {"_id": 1}, doc! {"_id": 1, "v": 101})
        .await
        .unwrap();
    c.replace_one(doc! {"_id": 2}, doc! {"_id": 2, "w": "replaced"})
        .await
        .unwrap();
    expected_u += 2;
    for i in [3, 4, 7] {
        c.delete_one(doc! {"_id": i}).await.unwrap();
    }
    c.insert_one(doc! {"_id": 3, "v": "again"}).await.unwrap();
    c.update_one(doc! {"_id": 3}, doc! {"$set": {"n": {"deep": [1, 2]}}})
        .await
        .unwrap();
    expected_u += 1;
    c.delete_one(doc! {"_id": 3}).await.unwrap();
    c.insert_one(doc! {"_id": 3, "v": "third"}).await.unwrap();

    // 5 reads, 5 + 2 inserts, expected_u updates, 4 deletes.
    let total = 5 + 7 + expected_u + 4;
    let mongo_state = mongo.state(&db, coll).await;
    let a_topic = format!("{input}.changelog");
    let b_topic = format!("{pb}.{db}.{coll}");
    let mut last = (0, 0);
    for _ in 0..60 {
        last = (envelopes(&a_topic).len(), envelopes(&b_topic).len());
        if last.0 >= total && last.1 >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A moment for anything extra (there must be nothing).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a = envelopes(&a_topic);
    let b = envelopes(&b_topic);
    let ops = |v: &[Envelope]| {
        v.iter()
            .map(|e| format!("{}:{}", e.key, e.op))
            .collect::<Vec<_>>()
    };
    eprintln!("normalizer: {:?}\nsource:     {:?}", ops(&a), ops(&b));
    assert_eq!(
        (a.len(), b.len()),
        (total, total),
        "normalizer / source changelog sizes (expected {total}), last seen {last:?}"
    );
    let count = |v: &[Envelope], op: &str| v.iter().filter(|e| e.op == op).count();
    for op in ["r", "c", "u", "d"] {
        assert_eq!(count(&a, op), count(&b, op), "count of op {op}");
    }
    assert_eq!(count(&b, "u"), expected_u);
    assert_eq!(count(&b, "r"), 5);

    let (ka, kb) = (by_key(&a), by_key(&b));
    assert_eq!(
        ka.keys().collect::<Vec<_>>(),
        kb.keys().collect::<Vec<_>>(),
        "key bytes"
    );
    for (key, ea) in &ka {
        let eb = &kb[key];
        assert_eq!(ea.len(), eb.len(), "records of key {key}");
        for (x, y) in ea.iter().zip(eb) {
            assert_eq!(x.op, y.op, "op of {key}");
            // Compact JSON text with preserved field order: byte-equal images.
            assert_eq!(
                x.before.to_string(),
                y.before.to_string(),
                "before of {key}"
            );
            assert_eq!(x.after.to_string(), y.after.to_string(), "after of {key}");
            for f in ["db", "collection", "snapshot"] {
                assert_eq!(x.source[f], y.source[f], "source.{f} of {key}");
            }
            if x.op != "r" {
                for f in ["cluster_time", "ts_ms", "ord"] {
                    assert_eq!(x.source[f], y.source[f], "source.{f} of {key}");
                }
            }
            // Where they must differ: who wrote it, and the normalizer's
            // input position (the source has none yet).
            assert_eq!(x.source["connector"], "normalizer");
            assert_eq!(y.source["connector"], "mongodb");
            assert_eq!(x.source["topic"], json!(input));
            assert_eq!(y.source["topic"], json!(b_topic));
            assert_eq!(
                (y.source["partition"].clone(), y.source["offset"].clone()),
                (json!(-1), json!(-1))
            );
        }
    }
    assert_eq!(
        fold(&a),
        mongo_state,
        "normalizer changelog folds to MongoDB"
    );
    assert_eq!(fold(&b), mongo_state, "source changelog folds to MongoDB");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changelog_output_needs_pre_and_post_images() {
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    for extra in [
        vec![("change.stream.full.document", "updateLookup")],
        vec![("change.stream.full.document.before.change", "whenAvailable")],
    ] {
        let mut cfg = source_config(
            "mongodb://127.0.0.1:1/?replicaSet=rs0",
            "d",
            "c",
            "p",
            &extra,
        );
        cfg["output.format.value"] = json!("changelog");
        let body = json!({"name": unique("bad"), "config": cfg});
        let (code, resp) = w.call("POST", "/connectors", Some(&body)).await;
        assert_eq!(code, 400, "{resp}");
        let msg = resp.to_string();
        assert!(
            msg.contains("change.stream.full.document.before.change")
                && msg.contains("change.stream.full.document=")
                && msg.contains("changelog"),
            "{msg}"
        );
    }
    w.shutdown().await;
}

/// Tokens (as stored in offsets) of the next `n` events of a collection.
async fn tokens_of(
    stream: &mut mongodb::change_stream::ChangeStream<
        mongodb::change_stream::event::ChangeStreamEvent<Document>,
    >,
    n: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let ev = stream.next().await.unwrap().unwrap();
        let raw = mongodb::bson::to_document(&ev.id).unwrap();
        out.push(bsonx::token_json(&raw));
    }
    out
}

/// `errors.tolerance=none` (default): an update without a pre-image fails
/// the task, naming the namespace, the `_id` and the cause; the stored
/// offset is the event before it, and a restart fails on it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unconvertible_event_fails_the_task_before_its_offset() {
    let mongo = Mongo::start().await;
    let db = unique("tol").replace('-', "_");
    // No changeStreamPreAndPostImages: whenAvailable gives no pre-image.
    let c = mongo.client.database(&db).collection::<Document>("plain");
    c.insert_one(doc! {"_id": "first"}).await.unwrap();
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let name = unique("tol-none");
    let prefix = unique("p");
    let cfg = source_config(
        &mongo.uri,
        &db,
        "plain",
        &prefix,
        &[
            ("startup.mode", "copy_existing"),
            ("output.format.value", "changelog"),
            ("change.stream.full.document", "updateLookup"),
            ("change.stream.full.document.before.change", "whenAvailable"),
        ],
    );
    w.create_connector(&name, &cfg).await;
    running(&w, &name).await;
    stream_phase(&w, &name).await;
    let mut watch = c.watch().await.unwrap();
    c.insert_one(doc! {"_id": "a", "v": 1}).await.unwrap();
    c.update_one(doc! {"_id": "a"}, doc! {"$set": {"v": 2}})
        .await
        .unwrap();
    let tokens = tokens_of(&mut watch, 2).await;
    eventually(Duration::from_secs(30), || async {
        task_state(&w, &name).await.0 == "FAILED"
    })
    .await;
    let trace = task_state(&w, &name).await.1;
    for needed in [
        format!("{db}.plain"),
        "\"a\"".to_string(),
        "pre-image".to_string(),
        "errors.tolerance".to_string(),
    ] {
        assert!(trace.contains(&needed), "trace lacks {needed}: {trace}");
    }
    let topic = format!("{prefix}.{db}.plain");
    let published = envelopes(&topic);
    assert_eq!(
        published.iter().map(|e| e.op.as_str()).collect::<Vec<_>>(),
        ["r", "c"],
        "the copied document and the insert only"
    );
    // Offsets are flushed every 500 ms; the insert's is the last one.
    eventually(Duration::from_secs(10), || async {
        stored_token(&w, &name).await.as_deref() == Some(tokens[0].as_str())
    })
    .await;
    // A restart reads the failing event again and fails again.
    let (code, _) = w
        .call("POST", &format!("/connectors/{name}/tasks/0/restart"), None)
        .await;
    assert!(code < 300, "restart: {code}");
    eventually(Duration::from_secs(30), || async {
        let (state, trace) = task_state(&w, &name).await;
        state == "FAILED" && trace.contains("pre-image")
    })
    .await;
    assert_eq!(stored_token(&w, &name).await, Some(tokens[0].clone()));
    assert_eq!(envelopes(&topic).len(), 2);
    w.shutdown().await;
}

/// Key, value and headers of a record.
type WithHeaders = (Option<String>, Option<String>, BTreeMap<String, String>);

/// Headers and values of every record of a topic.
fn read_with_headers(topic: &str) -> Vec<WithHeaders> {
    let n = try_read_topic(topic).map(|r| r.len()).unwrap_or(0);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", unique("hdr"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let s = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            let mut h = BTreeMap::new();
            if let Some(hs) = m.headers() {
                for x in hs.iter() {
                    h.insert(x.key.to_string(), s(x.value).unwrap_or_default());
                }
            }
            out.push((s(m.key()), s(m.payload()), h));
        }
    }
    out
}

/// `errors.tolerance=all`: events without pre-images go to the dead letter
/// queue (raw event as extended JSON, context headers) or, without a DLQ,
/// only to the log and the counters; the task keeps running and the stored
/// offset moves past them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tolerated_events_go_to_the_dead_letter_queue_and_the_offset_moves_on() {
    let mongo = Mongo::start().await;
    let db = unique("dlq").replace('-', "_");
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let dlq = unique("dlq-topic");
    create_topic(&dlq, 1).await;
    let hb = unique("hb");
    let mut names = Vec::new();
    for (coll, with_dlq) in [("withdlq", true), ("nodlq", false)] {
        mongo
            .client
            .database(&db)
            .collection::<Document>(coll)
            .insert_one(doc! {"_id": 0})
            .await
            .unwrap();
        let name = unique(coll);
        let prefix = unique("p");
        let mut extra = vec![
            ("startup.mode", "copy_existing"),
            ("output.format.value", "changelog"),
            ("change.stream.full.document", "updateLookup"),
            ("change.stream.full.document.before.change", "whenAvailable"),
            ("errors.tolerance", "all"),
            ("errors.log.enable", "true"),
            ("heartbeat.topic.name", hb.as_str()),
        ];
        if with_dlq {
            extra.push(("errors.deadletterqueue.topic.name", dlq.as_str()));
            extra.push(("errors.deadletterqueue.context.headers.enable", "true"));
        }
        w.create_connector(
            &name,
            &source_config(&mongo.uri, &db, coll, &prefix, &extra),
        )
        .await;
        running(&w, &name).await;
        stream_phase(&w, &name).await;
        names.push((coll, name, prefix));
    }
    for (coll, name, prefix) in &names {
        let c = mongo.client.database(&db).collection::<Document>(coll);
        let mut watch = c.watch().await.unwrap();
        c.insert_one(doc! {"_id": 1, "v": 1}).await.unwrap();
        c.update_one(doc! {"_id": 1}, doc! {"$set": {"v": 2}})
            .await
            .unwrap();
        c.delete_one(doc! {"_id": 1}).await.unwrap();
        let tokens = tokens_of(&mut watch, 3).await;
        // The two unconvertible events are the last: the stored offset
        // reaches the delete's token only if they moved it.
        eventually(Duration::from_secs(30), || async {
            stored_token(&w, name).await.as_deref() == Some(tokens[2].as_str())
        })
        .await;
        assert_eq!(task_state(&w, name).await.0, "RUNNING");
        let topic = format!("{prefix}.{db}.{coll}");
        let published = envelopes(&topic);
        assert_eq!(
            published.iter().map(|e| e.op.as_str()).collect::<Vec<_>>(),
            ["r", "c"],
            "{coll}: only the copied document and the insert are changelog records"
        );
        // Seen once in CI (2026-11-23): `errors_skipped` read 1 while the
        // stored offset was already past both skipped events, and the DLQ
        // checks below passed. The counter is incremented before its record
        // is produced, so why the progress answer trailed is not known yet;
        // wait for it briefly rather than read it once.
        let mut p = Json::Null;
        for _ in 0..100 {
            p = progress(&w, name).await["progress"].clone();
            if p["errors_skipped"] == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(p["errors_skipped"], 2, "{coll}: {p}");
        if *coll == "withdlq" {
            assert_eq!(p["errors_dlq"], 2, "{p}");
        } else {
            assert!(p.get("errors_dlq").is_none(), "{p}");
        }
    }
    // The DLQ holds the two raw events of the first connector only.
    let recs = read_with_headers(&dlq);
    assert_eq!(recs.len(), 2, "{recs:?}");
    for ((key, value, headers), op) in recs.iter().zip(["update", "delete"]) {
        let key: Json = serde_json::from_str(key.as_deref().unwrap()).unwrap();
        assert_eq!(key, json!({"_id": 1}));
        let ev: Json = serde_json::from_str(value.as_deref().unwrap()).unwrap();
        assert_eq!(ev["operationType"], op);
        assert_eq!(ev["ns"], json!({"db": db, "coll": "withdlq"}));
        assert_eq!(ev["documentKey"], json!({"_id": 1}));
        assert!(ev["_id"]["_data"].is_string(), "{ev}");
        let (_, name, prefix) = &names[0];
        assert_eq!(
            headers["__connect.errors.topic"],
            format!("{prefix}.{db}.withdlq")
        );
        assert_eq!(&headers["__connect.errors.connector.name"], name);
        assert_eq!(headers["__connect.errors.task.id"], "0");
        let msg = &headers["__connect.errors.exception.message"];
        assert!(
            msg.contains(&format!("{db}.withdlq"))
                && msg.contains("pre-image")
                && msg.contains("_id 1"),
            "{msg}"
        );
    }
    // Without a DLQ the offsets travelled on heartbeat-topic markers.
    let markers = try_read_topic(&hb).unwrap_or_default();
    assert!(
        markers.iter().filter(|r| r.value.is_none()).count() >= 2,
        "heartbeat markers: {}",
        markers.len()
    );
    w.shutdown().await;
}
