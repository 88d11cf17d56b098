//! The MongoDB source connector end to end: a real Kafka broker
//! (`eval "$(scripts/dev-env.sh up)"`) and MongoDB — the replica set in
//! `MONGODB_URI` when set, otherwise an in-process `mongo-sim`. Each test
//! checks MongoDB's final state against the state rebuilt from the topic
//! (fold by `_id`: last write wins, deletes remove). Tests that need
//! simulator-only commands print why they skip against a real server.

#![allow(clippy::unwrap_used)] // tests panic on unexpected states by design

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::mongo::*;
use common::*;
use mongodb::bson::{doc, Document};
use serde_json::{json, Value as Json};

const STRING: &str = "org.apache.kafka.connect.storage.StringConverter";

fn config(uri: &str, prefix: &str, extra: &[(&str, &str)]) -> Json {
    let mut c = json!({
        "connector.class": "com.mongodb.kafka.connect.MongoSourceConnector",
        "connection.uri": uri,
        "tasks.max": "1",
        "topic.prefix": prefix,
        "key.converter": STRING,
        "value.converter": STRING,
        "change.stream.full.document": "updateLookup",
        "poll.await.time.ms": "200",
    });
    for (k, v) in extra {
        c[*k] = json!(v);
    }
    c
}

async fn running(w: &TestWorker, name: &str, tasks: usize) {
    eventually(Duration::from_secs(60), || async {
        let (code, body) = w
            .call("GET", &format!("/connectors/{name}/status"), None)
            .await;
        code == 200
            && body["tasks"]
                .as_array()
                .is_some_and(|t| t.len() == tasks && t.iter().all(|t| t["state"] == "RUNNING"))
    })
    .await;
}

async fn progress(w: &TestWorker, name: &str) -> Json {
    w.call("GET", &format!("/connectors/{name}/progress"), None)
        .await
        .1
}

async fn snapshot_finished(w: &TestWorker, name: &str) -> Json {
    let mut last = Json::Null;
    for _ in 0..600 {
        last = progress(w, name).await;
        let p = &last["progress"];
        if p["chunks_total"].as_u64().is_some_and(|t| t > 0)
            && p["chunks_done"] == p["chunks_total"]
            && p["phase"] == "stream"
        {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("snapshot of {name} did not finish: {last}");
}

/// Snapshot of several collections with mixed `_id` types, split in many
/// chunks over two tasks, while a writer inserts, updates and deletes.
/// The topic must rebuild the final state, and no document inserted during
/// the snapshot may appear twice (exact handoff).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_with_concurrent_writes_two_tasks() {
    let mongo = Mongo::start().await;
    let db = unique("snap").replace('-', "_");
    let colls = ["a", "b", "c"];
    for c in colls {
        insert(&mongo, &db, c, mixed_docs(1500, 200, c)).await;
    }
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let name = unique("mongo-snap");
    let prefix = unique("p");

    // The writer runs from before the connector starts until after its snapshot.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, db, stop) = (mongo.client.clone(), db.clone(), stop.clone());
        tokio::spawn(async move {
            let mut k = 0i64;
            while !stop.load(Ordering::SeqCst) {
                let c = client
                    .database(&db)
                    .collection::<Document>(["a", "b", "c"][k as usize % 3]);
                c.insert_one(doc! {"_id": format!("new-{k:06}"), "n": -1, "v": k})
                    .await
                    .unwrap();
                c.update_one(doc! {"n": (k * 7) % 1500}, doc! {"$inc": {"v": 1}})
                    .await
                    .unwrap();
                if k % 5 == 0 {
                    c.delete_one(doc! {"n": (k * 13) % 1500 + 1}).await.unwrap();
                }
                k += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            k
        })
    };

    let cfg = config(
        &mongo.uri,
        &prefix,
        &[
            ("database", &db),
            ("startup.mode", "copy_existing"),
            ("tasks.max", "2"),
            ("snapshot.parallelism", "2"),
            ("snapshot.chunk.size.mb", "0.03"),
        ],
    );
    let started = std::time::Instant::now();
    w.create_connector(&name, &cfg).await;
    running(&w, &name, 2).await;
    let done = snapshot_finished(&w, &name).await;
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let writes = writer.await.unwrap();
    let total = done["progress"]["chunks_total"].as_u64().unwrap();
    assert!(total >= 9, "expected several chunks per collection: {done}");
    assert_eq!(
        done["progress"]["tasks"].as_array().map(Vec::len),
        Some(2),
        "{done}"
    );

    for c in colls {
        let topic = format!("{prefix}.{db}.{c}");
        converges(&mongo, &topic, &db, c, Duration::from_secs(60)).await;
        // Exact handoff: each document inserted during the run is published
        // once, as a snapshot read or as a stream insert, never both.
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for ch in changes(&topic) {
            if ch.id.starts_with("\"new-") && (ch.op == "read" || ch.op == "insert") {
                *seen.entry(ch.id).or_default() += 1;
            }
        }
        let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            dups.is_empty(),
            "{topic}: published twice at the handoff: {dups:?}"
        );
        assert!(!seen.is_empty(), "{topic}: no concurrent inserts observed");
    }
    eprintln!("snapshot: {total} chunks, 4500 docs + {writes} concurrent write rounds, snapshot phase {elapsed:?}; progress {done}");
    w.shutdown().await;
}

/// With Java's default `offset.flush.interval.ms` (60 s) the snapshot must
/// not sit idle until the first periodic commit: the task waits for its
/// snapshot marker to be durable and asks the worker to commit it now.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_starts_without_waiting_for_the_offset_flush_interval() {
    let mongo = Mongo::start().await;
    let db = unique("flush").replace('-', "_");
    insert(&mongo, &db, "c", mixed_docs(200, 20, "f")).await;
    let cluster = Cluster::new();
    let w = cluster
        .start(&[("offset.flush.interval.ms", "60000")])
        .await;
    let name = unique("mongo-flush");
    let prefix = unique("p");
    let cfg = config(
        &mongo.uri,
        &prefix,
        &[
            ("database", &db),
            ("collection", "c"),
            ("startup.mode", "copy_existing"),
        ],
    );
    let started = std::time::Instant::now();
    w.create_connector(&name, &cfg).await;
    // Well under the 60 s interval: a snapshot that waited for the periodic
    // commit could not converge in time.
    converges(
        &mongo,
        &format!("{prefix}.{db}.c"),
        &db,
        "c",
        Duration::from_secs(30),
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(30),
        "snapshot took {elapsed:?}"
    );
    w.shutdown().await;
}

/// An idle watched collection still advances its stored offset: heartbeats
/// carry the postBatchResumeToken while other collections change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn heartbeats_advance_offset_of_idle_collection() {
    let mongo = Mongo::start().await;
    let db = unique("hb").replace('-', "_");
    insert(&mongo, &db, "idle", mixed_docs(3, 10, "i")).await;
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let name = unique("mongo-hb");
    let prefix = unique("p");
    let hb_topic = unique("hb");
    let cfg = config(
        &mongo.uri,
        &prefix,
        &[
            ("database", &db),
            ("collection", "idle"),
            ("heartbeat.interval.ms", "300"),
            ("heartbeat.topic.name", &hb_topic),
        ],
    );
    w.create_connector(&name, &cfg).await;
    running(&w, &name, 1).await;
    let busy = mongo.client.database(&db).collection::<Document>("busy");
    let offset_of = |body: Json| -> Option<String> {
        body["offsets"]
            .as_array()?
            .iter()
            .find_map(|o| o["offset"]["_id"].as_str().map(str::to_string))
    };
    let mut tokens = Vec::new();
    for i in 0..40 {
        busy.insert_one(doc! {"i": i}).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(t) = offset_of(
            w.call("GET", &format!("/connectors/{name}/offsets"), None)
                .await
                .1,
        ) {
            if tokens.last() != Some(&t) {
                tokens.push(t);
            }
        }
        if tokens.len() >= 3 {
            break;
        }
    }
    assert!(
        tokens.len() >= 3,
        "the stored offset did not advance on an idle collection: {tokens:?}"
    );
    let hb = try_read_topic(&hb_topic).unwrap_or_default();
    assert!(
        hb.len() >= 2 && hb.iter().all(|r| r.value.is_none()),
        "heartbeat records: {}",
        hb.len()
    );
    assert!(try_read_topic(&format!("{prefix}.{db}.idle"))
        .unwrap_or_default()
        .is_empty());
    w.shutdown().await;
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

/// The stored resume token falls out of the oplog while the worker is down
/// (simulator-only `simTruncateOplog`): `fail` fails the task and says what
/// happened and the two ways out; `skip` continues from now (the gap's
/// documents are missing, everything after arrives); `resnapshot` copies the
/// current state again, so the topic rebuilds MongoDB's state exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_resume_token_under_each_policy() {
    let mongo = Mongo::start().await;
    if !mongo.is_sim() {
        eprintln!("skipping expired_resume_token_under_each_policy: needs the simulator-only simTruncateOplog command to expire a token on demand");
        return;
    }
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let prefix = unique("p");
    let policies = ["fail", "skip", "resnapshot"];
    let mut dbs = Vec::new();
    for p in policies {
        let db = unique(&format!("exp_{p}")).replace('-', "_");
        let cfg = config(
            &mongo.uri,
            &prefix,
            &[("database", &db), ("resume.token.expired.policy", p)],
        );
        w.create_connector(&format!("{db}-c"), &cfg).await;
        running(&w, &format!("{db}-c"), 1).await;
        dbs.push(db);
    }
    // With startup.mode=latest a document is captured only once the stream
    // is open: insert until each topic shows some, instead of guessing a delay.
    let mut published_before: Vec<String> = Vec::new();
    for db in &dbs {
        let c = mongo.client.database(db).collection::<Document>("t");
        let topic = format!("{prefix}.{db}.t");
        let mut i = 0;
        while changes(&topic).len() < 3 {
            assert!(i < 300, "{topic}: the stream never published");
            c.insert_one(doc! {"_id": format!("before-{i}")})
                .await
                .unwrap();
            i += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        published_before.push(fold(&changes(&topic)).keys().next().cloned().unwrap());
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // offsets flushed
    w.shutdown().await;

    for (db, before) in dbs.iter().zip(&published_before) {
        let c = mongo.client.database(db).collection::<Document>("t");
        for i in 0..20 {
            c.insert_one(doc! {"_id": format!("gap-{i}")})
                .await
                .unwrap();
        }
        // A document the topic already has, deleted inside the lost window.
        let id: String = serde_json::from_str(before).unwrap();
        c.delete_one(doc! {"_id": id}).await.unwrap();
    }
    mongo.truncate_oplog(3).await;

    let w = cluster.start(&[]).await;
    // fail
    let fail = format!("{}-c", dbs[0]);
    eventually(Duration::from_secs(60), || async {
        task_state(&w, &fail).await.0 == "FAILED"
    })
    .await;
    let trace = task_state(&w, &fail).await.1;
    for needle in [
        "no longer in the oplog",
        "resume.token.expired.policy=resnapshot",
        "resume.token.expired.policy=skip",
    ] {
        assert!(trace.contains(needle), "trace lacks `{needle}`: {trace}");
    }
    // skip: new writes arrive, the gap does not.
    let skip_db = &dbs[1];
    running(&w, &format!("{skip_db}-c"), 1).await;
    // The task continues from the position it finds when it handles the
    // error; writes before that belong to the gap. Write until they arrive.
    let c = mongo.client.database(skip_db).collection::<Document>("t");
    let topic = format!("{prefix}.{skip_db}.t");
    let mut i = 0;
    while fold(&changes(&topic))
        .keys()
        .filter(|k| k.contains("after-"))
        .count()
        < 3
    {
        assert!(i < 300, "{topic}: nothing published after skipping the gap");
        c.insert_one(doc! {"_id": format!("after-{i}")})
            .await
            .unwrap();
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = fold(&changes(&topic));
    assert!(
        got.keys().all(|k| !k.contains("gap-")),
        "skip must not invent the gap's documents"
    );
    // resnapshot: the topic rebuilds the current state, gap included.
    let re_db = &dbs[2];
    let c = mongo.client.database(re_db).collection::<Document>("t");
    eventually(Duration::from_secs(60), || async {
        progress(&w, &format!("{re_db}-c")).await["progress"]["phase"] == "stream"
    })
    .await;
    for i in 0..5 {
        c.insert_one(doc! {"_id": format!("after-{i}")})
            .await
            .unwrap();
    }
    // Every current document is republished (gap inserts included). A
    // delete inside the lost window cannot be recovered by any re-snapshot
    // (the document is gone and its change is gone from the oplog), so the
    // rebuilt state keeps exactly that one stale document (documented).
    let topic = format!("{prefix}.{re_db}.t");
    let want = mongo.state(re_db, "t").await;
    eventually(Duration::from_secs(60), || async {
        let got = fold(&changes(&topic));
        want.iter().all(|(k, v)| got.get(k) == Some(v)) && got.len() == want.len() + 1
    })
    .await;
    let got = fold(&changes(&topic));
    let stale: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert_eq!(
        stale,
        vec![&published_before[2]],
        "only the document deleted inside the lost window may be stale"
    );
    w.shutdown().await;
}

/// Regex selection: only `keep*` collections are captured, including one
/// created after the connector started; others never reach Kafka.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regex_selection_picks_up_later_collections() {
    let mongo = Mongo::start().await;
    let db = unique("rx").replace('-', "_");
    insert(&mongo, &db, "keep_1", mixed_docs(200, 50, "k")).await;
    insert(&mongo, &db, "skip_1", mixed_docs(50, 50, "s")).await;
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let name = unique("mongo-rx");
    let prefix = unique("p");
    let cfg = config(
        &mongo.uri,
        &prefix,
        &[
            ("database.include.list", &db),
            ("collection.include.list", &format!("{db}\\.keep.*")),
            ("collection.exclude.list", &format!("{db}\\.keep_no")),
            ("snapshot.mode", "initial"),
        ],
    );
    w.create_connector(&name, &cfg).await;
    running(&w, &name, 1).await;
    snapshot_finished(&w, &name).await;
    insert(&mongo, &db, "keep_late", mixed_docs(30, 50, "l")).await;
    insert(&mongo, &db, "keep_no", mixed_docs(5, 50, "n")).await;
    insert(&mongo, &db, "skip_1", mixed_docs(5, 50, "s2")).await;
    mongo
        .client
        .database(&db)
        .collection::<Document>("keep_1")
        .update_many(doc! {}, doc! {"$set": {"v": 9}})
        .await
        .unwrap();
    converges(
        &mongo,
        &format!("{prefix}.{db}.keep_1"),
        &db,
        "keep_1",
        Duration::from_secs(60),
    )
    .await;
    converges(
        &mongo,
        &format!("{prefix}.{db}.keep_late"),
        &db,
        "keep_late",
        Duration::from_secs(60),
    )
    .await;
    for c in ["skip_1", "keep_no"] {
        assert!(
            changes(&format!("{prefix}.{db}.{c}")).is_empty(),
            "{c} must not be captured"
        );
    }
    w.shutdown().await;
}

/// Chunk-done markers on the heartbeat topic, per chunk number.
fn chunk_markers(topic: &str) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for r in try_read_topic(topic).unwrap_or_default() {
        if let Ok(k) = serde_json::from_str::<Json>(&r.key_str()) {
            if let Some(n) = k["chunk"].as_u64() {
                *m.entry(n).or_default() += 1;
            }
        }
    }
    m
}

/// `kill -9` of the worker process mid-snapshot and again mid-stream, while a
/// writer keeps changing the collection: nothing is lost, and the restart
/// re-reads only chunks whose completion was not yet committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_snapshot_and_mid_stream_loses_nothing() {
    let mongo = Mongo::start().await;
    let db = unique("k9").replace('-', "_");
    insert(&mongo, &db, "t", mixed_docs(12_000, 300, "k")).await;
    let dir = temp_dir("mongo-k9");
    let cluster = Cluster::new();
    let port = 19000 + (std::process::id() % 1000) as u16;
    let base = format!("http://127.0.0.1:{port}");
    let props = cluster.write_props(
        &dir,
        &[("listeners", &base), ("offset.flush.interval.ms", "500")],
    );
    let name = unique("mongo-k9");
    let prefix = unique("p");
    let hb = unique("hb");
    let topic = format!("{prefix}.{db}.t");

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, db, stop) = (mongo.client.clone(), db.clone(), stop.clone());
        tokio::spawn(async move {
            let c = client.database(&db).collection::<Document>("t");
            let mut k = 0i64;
            while !stop.load(Ordering::SeqCst) {
                c.insert_one(doc! {"_id": format!("w-{k:06}"), "n": -1, "v": k})
                    .await
                    .unwrap();
                c.update_one(
                    doc! {"_id": format!("w-{:06}", k / 2)},
                    doc! {"$inc": {"v": 100}},
                )
                .await
                .unwrap();
                if k % 7 == 0 {
                    c.delete_one(doc! {"_id": format!("w-{:06}", k / 3)})
                        .await
                        .unwrap();
                }
                k += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let up = || async {
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
    };
    let mut w1 = spawn_worker(&props, &dir.join("w1.log"));
    up().await;
    let cfg = config(
        &mongo.uri,
        &prefix,
        &[
            ("database", &db),
            ("collection", "t"),
            ("startup.mode", "copy_existing"),
            ("snapshot.parallelism", "1"),
            ("snapshot.chunk.size.mb", "0.04"),
            ("heartbeat.topic.name", &hb),
        ],
    );
    let body = json!({"name": name, "config": cfg}).to_string();
    eventually(Duration::from_secs(30), || async {
        http(
            &base,
            "POST",
            "/connectors",
            Some(&body),
            "application/json",
        )
        .await
        .0 == 201
    })
    .await;
    eventually(Duration::from_secs(90), || async {
        chunk_markers(&hb).len() >= 20
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    w1.kill().expect("kill -9");
    let _ = w1.wait();
    let done_before = chunk_markers(&hb).len();

    let mut w2 = spawn_worker(&props, &dir.join("w2.log"));
    up().await;
    let mut last = Json::Null;
    for _ in 0..1200 {
        last = http(
            &base,
            "GET",
            &format!("/connectors/{name}/progress"),
            None,
            "application/json",
        )
        .await
        .1;
        let p = &last["progress"];
        if p["phase"] == "stream"
            && p["chunks_total"].as_u64().is_some_and(|t| t > 0)
            && p["chunks_done"] == p["chunks_total"]
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = &last["progress"];
    let (total, skipped) = (
        p["chunks_total"].as_u64().unwrap() as usize,
        p["chunks_skipped_from_offsets"].as_u64().unwrap() as usize,
    );
    let markers = chunk_markers(&hb);
    let rereads: usize = markers.values().map(|c| c - 1).sum();
    assert_eq!(markers.len(), total, "every chunk finished");
    assert!(
        skipped >= 1 && skipped <= done_before,
        "restart skipped {skipped} chunks, {done_before} were done before the kill"
    );
    assert!(
        rereads <= done_before - skipped,
        "re-read {rereads} finished chunks; only the {} uncommitted ones may be",
        done_before - skipped
    );

    // Mid-stream.
    tokio::time::sleep(Duration::from_secs(3)).await;
    w2.kill().expect("kill -9");
    let _ = w2.wait();
    let mut w3 = spawn_worker(&props, &dir.join("w3.log"));
    up().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    converges(&mongo, &topic, &db, "t", Duration::from_secs(90)).await;
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(w3.id().to_string())
        .status();
    let _ = w3.wait();
    eprintln!("kill -9: {total} chunks, {done_before} done before the kill, {skipped} skipped on restart, {rereads} re-read; records {}", changes(&topic).len());
}

/// Connection drops, resumable server errors and a step-down, injected with
/// fail points while changes keep coming: the stream resumes from its last
/// token each time (the task never fails) and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_survives_dropped_connections_and_step_down() {
    let mongo = Mongo::start().await;
    if !mongo.is_sim() {
        eprintln!("skipping stream_survives_dropped_connections_and_step_down: fail points, simDropConnections and timed step-downs are simulator-only here");
        return;
    }
    let db = unique("fp").replace('-', "_");
    insert(&mongo, &db, "t", mixed_docs(100, 50, "f")).await;
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let name = unique("mongo-fp");
    let prefix = unique("p");
    let cfg = config(
        &mongo.uri,
        &prefix,
        &[
            ("database", &db),
            ("collection", "t"),
            ("startup.mode", "copy_existing"),
        ],
    );
    w.create_connector(&name, &cfg).await;
    running(&w, &name, 1).await;
    snapshot_finished(&w, &name).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, db, stop) = (mongo.client.clone(), db.clone(), stop.clone());
        tokio::spawn(async move {
            let c = client.database(&db).collection::<Document>("t");
            let mut k = 0i64;
            while !stop.load(Ordering::SeqCst) {
                // Writes fail while the node is stepped down; retry them.
                while c
                    .insert_one(doc! {"_id": format!("s-{k:05}"), "v": k})
                    .await
                    .is_err()
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let _ = c
                    .update_one(
                        doc! {"_id": format!("s-{:05}", k / 2)},
                        doc! {"$inc": {"v": 1}},
                    )
                    .await;
                k += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let admin = mongo.client.database("admin");
    let app = format!("connectd-{name}");
    let faults = [
        doc! {"configureFailPoint": "failCommand", "mode": {"times": 2}, "data": {"failCommands": ["getMore"], "closeConnection": true, "appName": &app}},
        doc! {"configureFailPoint": "failCommand", "mode": {"times": 3}, "data": {"failCommands": ["getMore", "aggregate"], "errorCode": 11602, "errorLabels": ["ResumableChangeStreamError"], "appName": &app}},
        doc! {"simDropConnections": 1},
        doc! {"replSetStepDown": 1},
    ];
    for f in faults {
        tokio::time::sleep(Duration::from_millis(700)).await;
        // simDropConnections also drops this client's own connection.
        let r = admin.run_command(f.clone()).await;
        eprintln!(
            "fault {f}: {}",
            r.map_or_else(|e| e.to_string(), |d| d.to_string())
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    converges(
        &mongo,
        &format!("{prefix}.{db}.t"),
        &db,
        "t",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(task_state(&w, &name).await.0, "RUNNING");
    w.shutdown().await;
}
