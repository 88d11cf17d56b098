//! `$changeStreamSplitLargeEvent` end to end: with
//! `change.stream.split.large.events=true` the connector asks the server to
//! split oversized change events and publishes each event once, joined back
//! together, and its stored offset only ever points at complete events.
//!
//! MongoDB splits at 16 MiB; the simulator's test knob
//! `simSetSplitEventThreshold` lowers that to a few KiB so the test uses
//! small documents. Against a real replica set (`MONGODB_URI`) the test
//! skips (it would need events larger than 16 MiB).

#![allow(clippy::unwrap_used)] // tests panic on unexpected states by design

mod common;

use std::time::Duration;

use common::mongo::*;
use common::*;
use mongodb::bson::{doc, Document};
use serde_json::{json, Value as Json};

const STRING: &str = "org.apache.kafka.connect.storage.StringConverter";
/// Events above this are split by the simulator (fragments ≤ this size).
const SPLIT_AT: i64 = 8192;

fn config(uri: &str, prefix: &str, db: &str) -> Json {
    json!({
        "connector.class": "com.mongodb.kafka.connect.MongoSourceConnector",
        "connection.uri": uri,
        "tasks.max": "1",
        "topic.prefix": prefix,
        "key.converter": STRING,
        "value.converter": STRING,
        "database": db,
        "collection": "t",
        "startup.mode": "copy_existing",
        "change.stream.full.document": "updateLookup",
        "change.stream.split.large.events": "true",
        "poll.await.time.ms": "200",
    })
}

async fn snapshot_finished(w: &TestWorker, name: &str) {
    eventually(Duration::from_secs(60), || async {
        let (_, p) = w
            .call("GET", &format!("/connectors/{name}/progress"), None)
            .await;
        let p = &p["progress"];
        p["phase"] == "stream"
            && p["chunks_total"].as_u64().is_some_and(|t| t > 0)
            && p["chunks_done"] == p["chunks_total"]
    })
    .await;
}

/// The stored stream offset's resume token (JSON), if any.
async fn stream_token(w: &TestWorker, name: &str) -> Option<String> {
    let (_, body) = w
        .call("GET", &format!("/connectors/{name}/offsets"), None)
        .await;
    body["offsets"].as_array()?.iter().find_map(|o| {
        let p = &o["partition"];
        (p.get("snapshot").is_none() && p.get("chunk").is_none())
            .then(|| o["offset"]["_id"].as_str().map(str::to_string))
            .flatten()
    })
}

/// Round `r` of large updates: every document's field `r` is set to ~2.5 KB,
/// so each update event (updateDescription + looked-up fullDocument) exceeds
/// [`SPLIT_AT`] and arrives in two fragments. The same field each round keeps
/// the looked-up document below the fragment size (a single field larger
/// than a fragment fails the stream, as on a real server).
async fn large_updates(mongo: &Mongo, db: &str, n: i32, r: i32) {
    let c = mongo.client.database(db).collection::<Document>("t");
    for i in 0..n {
        let big = format!("{r}{}", "y".repeat(2500));
        c.update_one(doc! {"_id": i}, doc! {"$set": {"r": big}})
            .await
            .unwrap();
    }
}

fn values(topic: &str) -> Vec<Json> {
    try_read_topic(topic)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.value_str())
        .map(|v| serde_json::from_str(&v).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn split_large_events_are_reassembled_and_resumed_whole() {
    let mongo = Mongo::start().await;
    if !mongo.is_sim() {
        eprintln!("skipping split_large_events_are_reassembled_and_resumed_whole: needs the simulator's simSetSplitEventThreshold (a real server splits only events above 16 MiB)");
        return;
    }
    let admin = mongo.client.database("admin");
    admin
        .run_command(doc! {"simSetSplitEventThreshold": 1, "bytes": SPLIT_AT})
        .await
        .unwrap();
    let db = unique("split").replace('-', "_");
    let n = 12;
    let docs: Vec<Document> = (0..n)
        .map(|i| doc! {"_id": i, "base": "x".repeat(3000)})
        .collect();
    mongo
        .client
        .database(&db)
        .collection::<Document>("t")
        .insert_many(docs)
        .await
        .unwrap();

    // The knob really splits: a raw stream with the stage sees fragments.
    let mut raw = mongo
        .client
        .database(&db)
        .collection::<Document>("t")
        .watch()
        .pipeline(vec![doc! {"$changeStreamSplitLargeEvent": {}}])
        .full_document(mongodb::options::FullDocumentType::UpdateLookup)
        .await
        .unwrap()
        .with_type::<Document>();

    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let name = unique("mongo-split");
    let prefix = unique("p");
    let topic = format!("{prefix}.{db}.t");
    let (code, resp) = w
        .call(
            "POST",
            "/connectors",
            Some(&json!({"name": name, "config": config(&mongo.uri, &prefix, &db)})),
        )
        .await;
    assert_eq!(code, 201, "{resp}");
    snapshot_finished(&w, &name).await;

    large_updates(&mongo, &db, n, 1).await;
    let (mut fragments, mut seen) = (0, Vec::new());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fragments < 2 * n && std::time::Instant::now() < deadline {
        if let Some(ev) = raw.next_if_any().await.unwrap() {
            if ev.get_document("splitEvent").is_ok() {
                fragments += 1;
            }
            seen.push(ev.get_str("operationType").unwrap_or("-").to_string());
        }
    }
    assert_eq!(
        fragments,
        2 * n,
        "each update splits into two fragments; saw {seen:?}"
    );
    drop(raw);

    converges(&mongo, &topic, &db, "t", Duration::from_secs(60)).await;
    let updates: Vec<Json> = values(&topic)
        .into_iter()
        .filter(|v| v["operationType"] == "update")
        .collect();
    assert_eq!(updates.len(), n as usize, "one record per split event");
    for u in &updates {
        assert!(u.get("splitEvent").is_none(), "fragment marker leaked: {u}");
        assert!(
            u["updateDescription"]["updatedFields"]["r"].is_string()
                && u["fullDocument"]["r"].is_string()
                && u["ns"]["coll"] == "t",
            "fields of both fragments are in one record: {}",
            &u.to_string()[..300]
        );
    }

    // The stored offset is the last complete event's token: the `_id` of the
    // last published record (which is its last fragment's token).
    let last_id = updates.last().unwrap()["_id"].clone();
    eventually(Duration::from_secs(20), || async {
        stream_token(&w, &name)
            .await
            .and_then(|t| serde_json::from_str::<Json>(&t).ok())
            .is_some_and(|t| t == last_id)
    })
    .await;

    // Restart: the stream resumes after the last complete event — nothing is
    // published twice, and the next split events arrive whole.
    w.shutdown().await;
    let w = cluster.start(&[]).await;
    large_updates(&mongo, &db, n, 2).await;
    converges(&mongo, &topic, &db, "t", Duration::from_secs(60)).await;
    let updates: Vec<Json> = values(&topic)
        .into_iter()
        .filter(|v| v["operationType"] == "update")
        .collect();
    assert_eq!(
        updates.len(),
        2 * n as usize,
        "after the restart each split event is published exactly once"
    );
    let mut tokens: Vec<String> = updates.iter().map(|u| u["_id"].to_string()).collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 2 * n as usize, "no event published twice");
    w.shutdown().await;
    admin
        .run_command(doc! {"simSetSplitEventThreshold": 1, "bytes": 0})
        .await
        .unwrap();
}
