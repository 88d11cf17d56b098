//! The snapshot plan of a sharded collection follows its `config.chunks`
//! ranges. A single-node simulator is told about a sharded layout the way a
//! mongos would show it: the test writes `config.collections` (namespace,
//! uuid, shard key) and `config.chunks` (one document per range). Against a
//! real replica set (`MONGODB_URI`) the test skips: its config database
//! describes no shards and is not the test's to write.

#![allow(clippy::unwrap_used)] // tests panic on unexpected states by design

mod common;

use std::time::Duration;

use common::mongo::*;
use common::*;
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use serde_json::{json, Value as Json};

const STRING: &str = "org.apache.kafka.connect.storage.StringConverter";

fn uuid(n: u8) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Uuid,
        bytes: vec![n; 16],
    })
}

/// Describes `db.coll` as sharded on `key` with chunks split at `bounds`.
async fn shard(mongo: &Mongo, db: &str, coll: &str, n: u8, key: Document, bounds: &[Bson]) {
    let config = mongo.client.database("config");
    let ns = format!("{db}.{coll}");
    config
        .collection::<Document>("collections")
        .insert_one(doc! {"_id": &ns, "uuid": uuid(n), "key": key.clone(), "unique": false, "lastmodEpoch": mongodb::bson::oid::ObjectId::new()})
        .await
        .unwrap();
    let field = key.keys().next().unwrap().clone();
    let mut edges = vec![Bson::MinKey];
    edges.extend(bounds.iter().cloned());
    edges.push(Bson::MaxKey);
    // Inserted in reverse so the planner cannot rely on storage order.
    for (i, w) in edges.windows(2).enumerate().rev() {
        config
            .collection::<Document>("chunks")
            .insert_one(doc! {"uuid": uuid(n), "min": {&field: w[0].clone()}, "max": {&field: w[1].clone()},
            "shard": format!("shard{}", i % 2), "lastmod": mongodb::bson::Timestamp { time: 1, increment: i as u32 }})
            .await
            .unwrap();
    }
}

/// The stored plan's chunks: (collection, min, max) as canonical JSON values.
async fn plan_chunks(w: &TestWorker, name: &str) -> Vec<(String, Json, Json)> {
    let (_, body) = w
        .call("GET", &format!("/connectors/{name}/offsets"), None)
        .await;
    let plan = body["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o["offset"]["plan"].as_str().map(str::to_string))
        .expect("a stored plan");
    let plan: Json = serde_json::from_str(&plan).unwrap();
    plan["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let b = |k: &str| {
                serde_json::from_str::<Json>(c[k].as_str().unwrap()).unwrap()["v"].clone()
            };
            (c["coll"].as_str().unwrap().to_string(), b("min"), b("max"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sharded_collection_is_read_by_its_config_chunks() {
    let mongo = Mongo::start().await;
    if !mongo.is_sim() {
        eprintln!("skipping sharded_collection_is_read_by_its_config_chunks: a replica set's config database describes no shards, and writing one is simulator-only");
        return;
    }
    let db = unique("shard").replace('-', "_");
    for c in ["ranged", "hashed"] {
        let docs: Vec<Document> = (0..3000)
            .map(|i| doc! {"_id": i, "pad": "p".repeat(50)})
            .collect();
        insert(&mongo, &db, c, docs).await;
    }
    // Range-sharded on _id: four ranges, boundaries not in storage order.
    shard(
        &mongo,
        &db,
        "ranged",
        1,
        doc! {"_id": 1},
        &[Bson::Int32(700), Bson::Int32(1500), Bson::Int32(2600)],
    )
    .await;
    // Hashed on _id: chunk bounds are hashes, not _id values, so the
    // collection is split by size (one chunk at this size).
    shard(
        &mongo,
        &db,
        "hashed",
        2,
        doc! {"_id": "hashed"},
        &[Bson::Int64(-4_611_686_018_427_387_902), Bson::Int64(0)],
    )
    .await;

    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let name = unique("mongo-shard");
    let prefix = unique("p");
    let cfg = json!({
        "connector.class": "com.mongodb.kafka.connect.MongoSourceConnector",
        "connection.uri": mongo.uri, "tasks.max": "2", "topic.prefix": prefix,
        "key.converter": STRING, "value.converter": STRING,
        "database": db, "startup.mode": "copy_existing",
        "snapshot.chunk.size.mb": "64", "poll.await.time.ms": "200",
    });
    let (code, resp) = w
        .call(
            "POST",
            "/connectors",
            Some(&json!({"name": name, "config": cfg})),
        )
        .await;
    assert_eq!(code, 201, "{resp}");
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

    let chunks = plan_chunks(&w, &name).await;
    let ranged: Vec<(Json, Json)> = chunks
        .iter()
        .filter(|c| c.0 == "ranged")
        .map(|c| (c.1.clone(), c.2.clone()))
        .collect();
    let int = |n: i32| json!({"$numberInt": n.to_string()});
    assert_eq!(
        ranged,
        vec![
            (json!({"$minKey": 1}), int(700)),
            (int(700), int(1500)),
            (int(1500), int(2600)),
            (int(2600), json!({"$maxKey": 1})),
        ],
        "the ranged collection is read by its config.chunks ranges"
    );
    let hashed = chunks.iter().filter(|c| c.0 == "hashed").count();
    assert_eq!(
        hashed, 1,
        "a hashed shard key falls back to size-based splitting: {chunks:?}"
    );

    for c in ["ranged", "hashed"] {
        converges(
            &mongo,
            &format!("{prefix}.{db}.{c}"),
            &db,
            c,
            Duration::from_secs(60),
        )
        .await;
    }
    w.shutdown().await;
}
