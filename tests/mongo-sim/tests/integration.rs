//! Integration tests driving the simulator (or a real replica set named by
//! MONGODB_URI) with the official Rust driver.

mod common;

use common::{unique_db, Target};
use futures::{StreamExt, TryStreamExt};
use mongodb::bson::{doc, Bson, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType};
use mongodb::options::FullDocumentBeforeChangeType;
use std::time::Duration;

async fn next_event(
    cs: &mut mongodb::change_stream::ChangeStream<ChangeStreamEvent<Document>>,
) -> ChangeStreamEvent<Document> {
    tokio::time::timeout(Duration::from_secs(10), cs.next())
        .await
        .expect("event within 10s")
        .expect("stream open")
        .expect("event")
}

#[tokio::test]
async fn hello_reports_replica_set_primary() {
    let t = Target::new().await;
    let hello = t
        .client
        .database("admin")
        .run_command(doc! {"hello": 1})
        .await
        .unwrap();
    assert_eq!(hello.get_bool("isWritablePrimary"), Ok(true));
    assert!(hello.get_str("setName").is_ok());
    assert!(hello.get_document("topologyVersion").is_ok());
    assert!(hello.get_i32("maxWireVersion").unwrap() >= 21);
    t.shutdown().await;
}

#[tokio::test]
async fn resume_after_close_connection() {
    let t = Target::new().await;
    let coll = t
        .client
        .database(&unique_db("resume"))
        .collection::<Document>("c");
    coll.insert_one(doc! {"_id": 0}).await.unwrap();
    let mut cs = coll.watch().await.unwrap();
    // The next getMore drops the connection; the driver must resume.
    t.client
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": {"times": 1},
            "data": {"failCommands": ["getMore"], "closeConnection": true},
        })
        .await
        .unwrap();
    for i in 1..=3 {
        coll.insert_one(doc! {"_id": i}).await.unwrap();
    }
    for i in 1..=3 {
        let ev = next_event(&mut cs).await;
        assert_eq!(ev.operation_type, OperationType::Insert);
        assert_eq!(ev.document_key.unwrap().get_i32("_id"), Ok(i));
    }
    t.shutdown().await;
}

#[tokio::test]
async fn history_lost_after_truncation() {
    let t = Target::new().await;
    if !t.sim_only("simTruncateOplog") {
        return;
    }
    let coll = t
        .client
        .database(&unique_db("lost"))
        .collection::<Document>("c");
    let mut cs = coll.watch().await.unwrap();
    coll.insert_one(doc! {"_id": 1}).await.unwrap();
    let first = next_event(&mut cs).await;
    drop(cs);
    for i in 2..10 {
        coll.insert_one(doc! {"_id": i}).await.unwrap();
    }
    let r = t
        .client
        .database("admin")
        .run_command(doc! {"simTruncateOplog": 1, "keepLast": 2})
        .await
        .unwrap();
    assert!(r.get_i64("removed").unwrap() > 0);
    let err = coll
        .watch()
        .resume_after(first.id)
        .await
        .expect_err("resume point is gone");
    match *err.kind {
        mongodb::error::ErrorKind::Command(ref c) => {
            assert_eq!(c.code, 286);
            assert_eq!(c.code_name, "ChangeStreamHistoryLost");
        }
        ref other => panic!("unexpected error {other:?}"),
    }
    assert!(!err.contains_label("ResumableChangeStreamError"));
    t.shutdown().await;
}

#[tokio::test]
async fn bounded_oplog_loses_history() {
    let t = Target::with_options(mongo_sim::Options {
        oplog_max_events: Some(5),
        ..Default::default()
    })
    .await;
    if !t.sim_only("--oplog-max-events") {
        return;
    }
    let coll = t
        .client
        .database(&unique_db("bounded"))
        .collection::<Document>("c");
    let mut cs = coll.watch().await.unwrap();
    coll.insert_one(doc! {"_id": 0}).await.unwrap();
    let tok = next_event(&mut cs).await.id;
    drop(cs);
    for i in 1..20 {
        coll.insert_one(doc! {"_id": i}).await.unwrap();
    }
    let err = coll.watch().resume_after(tok).await.unwrap_err();
    assert!(
        matches!(*err.kind, mongodb::error::ErrorKind::Command(ref c) if c.code == 286),
        "{err}"
    );
    t.shutdown().await;
}

#[tokio::test]
async fn pre_and_post_images() {
    let t = Target::new().await;
    let db = t.client.database(&unique_db("images"));
    db.run_command(doc! {"create": "c", "changeStreamPreAndPostImages": {"enabled": true}})
        .await
        .unwrap();
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! {"_id": 1, "v": 1}).await.unwrap();
    let mut cs = coll
        .watch()
        .full_document_before_change(FullDocumentBeforeChangeType::Required)
        .await
        .unwrap();
    coll.update_one(doc! {"_id": 1}, doc! {"$set": {"v": 2}})
        .await
        .unwrap();
    coll.delete_one(doc! {"_id": 1}).await.unwrap();
    let up = next_event(&mut cs).await;
    assert_eq!(up.operation_type, OperationType::Update);
    assert_eq!(up.full_document_before_change.unwrap().get_i32("v"), Ok(1));
    let desc = up.update_description.unwrap();
    assert_eq!(desc.updated_fields.get_i32("v"), Ok(2));
    let del = next_event(&mut cs).await;
    assert_eq!(del.operation_type, OperationType::Delete);
    assert_eq!(del.full_document_before_change.unwrap().get_i32("v"), Ok(2));
    t.shutdown().await;
}

#[tokio::test]
async fn database_and_cluster_streams() {
    let t = Target::new().await;
    let (d1, d2) = (unique_db("dbs1"), unique_db("dbs2"));
    let mut db_cs = t.client.database(&d1).watch().await.unwrap();
    let mut cl_cs = t.client.watch().await.unwrap();
    t.client
        .database(&d1)
        .collection::<Document>("a")
        .insert_one(doc! {"x": 1})
        .await
        .unwrap();
    t.client
        .database(&d1)
        .collection::<Document>("b")
        .insert_one(doc! {"x": 2})
        .await
        .unwrap();
    t.client
        .database(&d2)
        .collection::<Document>("c")
        .insert_one(doc! {"x": 3})
        .await
        .unwrap();
    let a = next_event(&mut db_cs).await;
    let b = next_event(&mut db_cs).await;
    assert_eq!(a.ns.as_ref().unwrap().coll.as_deref(), Some("a"));
    assert_eq!(b.ns.as_ref().unwrap().coll.as_deref(), Some("b"));
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let e = next_event(&mut cl_cs).await;
        let ns = e.ns.unwrap();
        if ns.db == d1 || ns.db == d2 {
            seen.push(format!("{}.{}", ns.db, ns.coll.unwrap_or_default()));
        }
    }
    assert_eq!(
        seen,
        vec![format!("{d1}.a"), format!("{d1}.b"), format!("{d2}.c")]
    );
    t.shutdown().await;
}

#[tokio::test]
async fn mixed_id_types_sort_and_range_reads() {
    let t = Target::new().await;
    let coll = t
        .client
        .database(&unique_db("mixed"))
        .collection::<Document>("c");
    let oid = mongodb::bson::oid::ObjectId::new();
    let ids: Vec<Bson> = vec![
        Bson::Boolean(true),
        Bson::ObjectId(oid),
        Bson::String("b".into()),
        Bson::Int64(3),
        Bson::Double(2.5),
        Bson::Int32(1),
        Bson::String("a".into()),
        Bson::Document(doc! {"k": 1}),
        Bson::Null,
        Bson::DateTime(mongodb::bson::DateTime::from_millis(0)),
    ];
    for id in &ids {
        coll.insert_one(doc! {"_id": id.clone()}).await.unwrap();
    }
    let got: Vec<Bson> = coll
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .await
        .unwrap()
        .map_ok(|d| d.get("_id").cloned().unwrap())
        .try_collect()
        .await
        .unwrap();
    let want = vec![
        Bson::Null,
        Bson::Int32(1),
        Bson::Double(2.5),
        Bson::Int64(3),
        Bson::String("a".into()),
        Bson::String("b".into()),
        Bson::Document(doc! {"k": 1}),
        Bson::ObjectId(oid),
        Bson::Boolean(true),
        Bson::DateTime(mongodb::bson::DateTime::from_millis(0)),
    ];
    assert_eq!(got, want);
    // [2, "b") on the _id index: 2.5, 3, "a".
    let range: Vec<Bson> = coll
        .find(doc! {})
        .min(doc! {"_id": 2})
        .max(doc! {"_id": "b"})
        .hint(mongodb::options::Hint::Keys(doc! {"_id": 1}))
        .await
        .unwrap()
        .map_ok(|d| d.get("_id").cloned().unwrap())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        range,
        vec![Bson::Double(2.5), Bson::Int64(3), Bson::String("a".into())]
    );
    t.shutdown().await;
}

#[tokio::test]
async fn split_vector_chunks_cover_all_documents() {
    let t = Target::new().await;
    let dbn = unique_db("split");
    let db = t.client.database(&dbn);
    let coll = db.collection::<Document>("c");
    let pad = "x".repeat(1000);
    let docs: Vec<Document> = (0..3000).map(|i| doc! {"_id": i, "pad": &pad}).collect();
    coll.insert_many(docs).await.unwrap();
    let r = t
        .client
        .database("admin")
        .run_command(doc! {
            "splitVector": format!("{dbn}.c"),
            "keyPattern": {"_id": 1},
            "maxChunkSize": 1,
        })
        .await
        .unwrap();
    let keys: Vec<Bson> = r
        .get_array("splitKeys")
        .unwrap()
        .iter()
        .map(|k| k.as_document().unwrap().get("_id").cloned().unwrap())
        .collect();
    // ~3 MB in 1 MB chunks split at half size: several split points.
    assert!(keys.len() >= 4, "split keys {keys:?}");
    let mut bounds = vec![Bson::MinKey];
    bounds.extend(keys);
    bounds.push(Bson::MaxKey);
    let mut total = 0u64;
    for w in bounds.windows(2) {
        let n = coll
            .find(doc! {})
            .min(doc! {"_id": w[0].clone()})
            .max(doc! {"_id": w[1].clone()})
            .hint(mongodb::options::Hint::Keys(doc! {"_id": 1}))
            .await
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len();
        assert!(n > 0);
        total += n as u64;
    }
    assert_eq!(total, 3000);
    t.shutdown().await;
}

#[tokio::test]
async fn step_down_and_drop_connections() {
    let t = Target::new().await;
    if !t.sim_only("replSetStepDown / simDropConnections") {
        return;
    }
    let admin = t.client.database("admin");
    let before = admin.run_command(doc! {"hello": 1}).await.unwrap();
    admin
        .run_command(doc! {"replSetStepDown": 0.5})
        .await
        .unwrap();
    let db = t.client.database(&unique_db("stepdown"));
    // Route to the (now secondary) node explicitly; a primary-only command
    // would just wait in server selection until the step-up.
    let nearest = mongodb::options::SelectionCriteria::ReadPreference(
        mongodb::options::ReadPreference::Nearest {
            options: Default::default(),
        },
    );
    let during = admin
        .run_command(doc! {"hello": 1})
        .selection_criteria(nearest.clone())
        .await
        .unwrap();
    assert_eq!(during.get_bool("isWritablePrimary"), Ok(false));
    assert_eq!(during.get_bool("secondary"), Ok(true));
    let err = db
        .run_command(doc! {"insert": "c", "documents": [{"x": 1}]})
        .selection_criteria(nearest)
        .await
        .unwrap_err();
    assert!(
        matches!(*err.kind, mongodb::error::ErrorKind::Command(ref c) if c.code == 10107),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let after = admin.run_command(doc! {"hello": 1}).await.unwrap();
    assert_eq!(after.get_bool("isWritablePrimary"), Ok(true));
    let c0 = before
        .get_document("topologyVersion")
        .unwrap()
        .get_i64("counter")
        .unwrap();
    let c1 = after
        .get_document("topologyVersion")
        .unwrap()
        .get_i64("counter")
        .unwrap();
    assert!(c1 >= c0 + 2);
    // Retryable writes ride over the step-down and a dropped connection.
    db.collection::<Document>("c")
        .insert_one(doc! {"x": 2})
        .await
        .unwrap();
    let _ = admin.run_command(doc! {"simDropConnections": 1}).await;
    db.collection::<Document>("c")
        .insert_one(doc! {"x": 3})
        .await
        .unwrap();
    assert_eq!(
        db.collection::<Document>("c")
            .count_documents(doc! {})
            .await
            .unwrap(),
        2
    );
    t.shutdown().await;
}

#[tokio::test]
async fn get_more_waits_for_events_without_polling() {
    let t = Target::new().await;
    let coll = t
        .client
        .database(&unique_db("await"))
        .collection::<Document>("c");
    let mut cs = coll
        .watch()
        .max_await_time(Duration::from_millis(2000))
        .await
        .unwrap();
    let c2 = coll.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        c2.insert_one(doc! {"_id": 1}).await.unwrap();
    });
    let start = std::time::Instant::now();
    let ev = next_event(&mut cs).await;
    assert_eq!(ev.operation_type, OperationType::Insert);
    // Woken by the commit, not by the 2s await timeout.
    assert!(start.elapsed() < Duration::from_millis(1500));
    writer.await.unwrap();
    t.shutdown().await;
}

#[tokio::test]
async fn split_large_events() {
    let t = Target::new().await;
    let db = t.client.database(&unique_db("split_ev"));
    db.run_command(doc! {"create": "c", "changeStreamPreAndPostImages": {"enabled": true}})
        .await
        .unwrap();
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! {"_id": 1, "s": "a".repeat(9 << 20)})
        .await
        .unwrap();
    let mut cs = coll
        .watch()
        .pipeline(vec![doc! {"$changeStreamSplitLargeEvent": {}}])
        .full_document_before_change(FullDocumentBeforeChangeType::Required)
        .await
        .unwrap()
        .with_type::<Document>();
    coll.replace_one(doc! {"_id": 1}, doc! {"s": "b".repeat(9 << 20)})
        .await
        .unwrap();
    let mut frags = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), cs.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let se = ev.get_document("splitEvent").unwrap().clone();
        frags.push(ev);
        if se.get_i32("fragment") == se.get_i32("of") {
            break;
        }
    }
    assert!(frags.len() >= 2);
    assert!(frags.iter().any(|f| f.contains_key("fullDocument")));
    assert!(frags
        .iter()
        .any(|f| f.contains_key("fullDocumentBeforeChange")));
    t.shutdown().await;
}

#[tokio::test]
async fn unknown_resume_tokens() {
    let t = Target::new().await;
    if !t.sim_only("simulator resume-token format") {
        return;
    }
    let coll = t
        .client
        .database(&unique_db("tokens"))
        .collection::<Document>("c");
    let mut cs = coll.watch().await.unwrap();
    coll.insert_one(doc! {"_id": 1}).await.unwrap();
    let tok = next_event(&mut cs).await.id;
    coll.insert_one(doc! {"_id": 2}).await.unwrap();
    // Same format, a cluster time inside the window that no event has.
    let data: String = mongodb::bson::to_document(&tok)
        .unwrap()
        .get_str("_data")
        .unwrap()
        .to_string();
    // A token in the future is accepted (the stream waits for it).
    let future = format!("{}FFFFFFF0{}", &data[..10], &data[18..]);
    coll.watch()
        .resume_after(
            mongodb::bson::from_document::<mongodb::change_stream::event::ResumeToken>(
                doc! {"_data": future},
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let code = |e: &mongodb::error::Error| match *e.kind {
        mongodb::error::ErrorKind::Command(ref c) => c.code,
        _ => 0,
    };
    // A past time that matches no event: 280 ChangeStreamFatalError inside
    // the window, 286 ChangeStreamHistoryLost before it.
    let past = format!("{}00000001{}", &data[..10], &data[18..]);
    let err2 = coll
        .watch()
        .resume_after(
            mongodb::bson::from_document::<mongodb::change_stream::event::ResumeToken>(
                doc! {"_data": past},
            )
            .unwrap(),
        )
        .await;
    if let Err(e) = err2 {
        assert!(code(&e) == 280 || code(&e) == 286, "{e}");
    }
    let bad = coll
        .watch()
        .resume_after(
            mongodb::bson::from_document::<mongodb::change_stream::event::ResumeToken>(
                doc! {"_data": "not-a-token"},
            )
            .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&bad), 260);
    t.shutdown().await;
}

#[tokio::test]
async fn aggregation_stages_and_stats() {
    let t = Target::new().await;
    let dbn = unique_db("agg");
    let coll = t.client.database(&dbn).collection::<Document>("c");
    let docs: Vec<Document> = (0..100)
        .map(|i| doc! {"_id": i, "g": i % 3, "v": i})
        .collect();
    coll.insert_many(docs).await.unwrap();
    let run = |p: Vec<Document>| {
        let coll = coll.clone();
        async move {
            coll.aggregate(p)
                .await
                .unwrap()
                .try_collect::<Vec<_>>()
                .await
                .unwrap()
        }
    };
    let sample = run(vec![doc! {"$sample": {"size": 10}}]).await;
    assert_eq!(sample.len(), 10);
    let buckets = run(vec![
        doc! {"$bucketAuto": {"groupBy": "$_id", "buckets": 4}},
    ])
    .await;
    assert_eq!(buckets.len(), 4);
    let counted: i32 = buckets.iter().map(|b| b.get_i32("count").unwrap()).sum();
    assert_eq!(counted, 100);
    let groups = run(vec![
        doc! {"$group": {"_id": "$g", "n": {"$sum": 1}, "max": {"$max": "$v"}}},
        doc! {"$sort": {"_id": 1}},
    ])
    .await;
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[0].get_i32("n"), Ok(34));
    assert_eq!(groups[0].get_i32("max"), Ok(99));
    let stats = run(vec![doc! {"$collStats": {"storageStats": {}}}]).await;
    let ss = stats[0].get_document("storageStats").unwrap();
    let count = match ss.get("count") {
        Some(Bson::Int32(n)) => *n as i64,
        Some(Bson::Int64(n)) => *n,
        other => panic!("count {other:?}"),
    };
    assert_eq!(count, 100);
    let ds = t
        .client
        .database(&dbn)
        .run_command(doc! {"dataSize": format!("{dbn}.c")})
        .await
        .unwrap();
    assert!(ds.get("size").is_some());
    t.shutdown().await;
}

#[tokio::test]
async fn legacy_op_query_handshake() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = Target::new().await;
    let Some(sim) = t.sim.as_ref() else {
        println!("skipping legacy_op_query_handshake: needs the simulator's port");
        return;
    };
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", sim.port()))
        .await
        .unwrap();
    let mut q = Vec::new();
    doc! {"isMaster": 1}.to_writer(&mut q).unwrap();
    let mut body = Vec::new();
    body.extend_from_slice(&0i32.to_le_bytes()); // flags
    body.extend_from_slice(b"admin.$cmd\0");
    body.extend_from_slice(&0i32.to_le_bytes()); // skip
    body.extend_from_slice(&(-1i32).to_le_bytes()); // return
    body.extend_from_slice(&q);
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + body.len()) as i32).to_le_bytes());
    msg.extend_from_slice(&7i32.to_le_bytes());
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(&2004i32.to_le_bytes());
    msg.extend_from_slice(&body);
    s.write_all(&msg).await.unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut rest = vec![0u8; i32::from_le_bytes(len) as usize - 4];
    s.read_exact(&mut rest).await.unwrap();
    assert_eq!(i32::from_le_bytes(rest[4..8].try_into().unwrap()), 7); // responseTo
    assert_eq!(i32::from_le_bytes(rest[8..12].try_into().unwrap()), 1); // OP_REPLY
    let reply = Document::from_reader(&rest[32..]).unwrap();
    assert_eq!(reply.get_bool("ismaster"), Ok(true));
    assert!(reply.get_str("setName").is_ok());
    t.shutdown().await;
}
