//! MongoDB helpers for the connector's integration tests: a server (the
//! replica set in `MONGODB_URI`, or an in-process `mongo-sim`), and the
//! comparison of MongoDB's state with the state rebuilt from a topic.

use std::collections::BTreeMap;
use std::time::Duration;

use connect_mongodb::bsonx;
use connect_mongodb::config::Formatter;
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;
use serde_json::Value as Json;

use super::{try_read_topic, Rec};

/// A MongoDB to test against.
pub struct Mongo {
    pub uri: String,
    pub client: Client,
    /// The in-process simulator, when `MONGODB_URI` is unset.
    pub sim: Option<mongo_sim::ServerHandle>,
}

impl Mongo {
    pub async fn start() -> Mongo {
        let (uri, sim) = match std::env::var("MONGODB_URI") {
            Ok(uri) if !uri.is_empty() => (uri, None),
            _ => {
                let h = mongo_sim::Server::start(mongo_sim::Options::default())
                    .await
                    .expect("start mongo-sim");
                (h.uri(), Some(h))
            }
        };
        let client = Client::with_uri_str(&uri).await.expect("mongodb client");
        Mongo { uri, client, sim }
    }

    pub fn is_sim(&self) -> bool {
        self.sim.is_some()
    }

    /// Simulator-only: keep only the newest `keep` oplog entries.
    pub async fn truncate_oplog(&self, keep: i64) {
        let r = self
            .client
            .database("admin")
            .run_command(doc! {"simTruncateOplog": 1, "keepLast": keep})
            .await
            .expect("simTruncateOplog");
        eprintln!("oplog truncated: {r}");
    }

    /// Every document of a collection, keyed like the topic's records.
    pub async fn state(&self, db: &str, coll: &str) -> BTreeMap<String, Json> {
        let docs: Vec<Document> = self
            .client
            .database(db)
            .collection::<Document>(coll)
            .find(doc! {})
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("read all");
        docs.into_iter()
            .map(|d| {
                let id = d.get("_id").cloned().unwrap_or(Bson::Null);
                (id_key(&id), json(&d))
            })
            .collect()
    }
}

fn json(d: &Document) -> Json {
    serde_json::from_str(&bsonx::doc_json(d, Formatter::Default)).expect("json")
}

/// The fold key of an `_id` (its JSON in the connector's default flavour).
pub fn id_key(id: &Bson) -> String {
    bsonx::to_json(id, Formatter::Default).to_string()
}

/// One record of a MongoDB topic decoded (StringConverter key and value).
#[derive(Debug, Clone)]
pub struct Change {
    /// JSON of the documentKey `_id`.
    pub id: String,
    /// `read` for snapshot records, else the event's operationType.
    pub op: String,
    /// The document after the change (None for deletes / missing images).
    pub doc: Option<Json>,
}

pub fn decode(r: &Rec) -> Change {
    let key: Json = serde_json::from_str(&r.key_str())
        .unwrap_or_else(|e| panic!("key is not JSON ({e}): {}", r.key_str()));
    let id = key.get("_id").cloned().unwrap_or(Json::Null).to_string();
    let Some(v) = r.value_str() else {
        return Change {
            id,
            op: "tombstone".into(),
            doc: None,
        };
    };
    let v: Json = serde_json::from_str(&v).expect("value is JSON");
    let op = if v["_id"]["copyingData"] == Json::Bool(true) {
        "read".to_string()
    } else {
        v["operationType"].as_str().unwrap_or("?").to_string()
    };
    let doc = v.get("fullDocument").filter(|d| d.is_object()).cloned();
    Change { id, op, doc }
}

pub fn changes(topic: &str) -> Vec<Change> {
    try_read_topic(topic)
        .unwrap_or_default()
        .iter()
        .map(decode)
        .collect()
}

/// The state rebuilt from a topic: last write wins, deletes remove.
pub fn fold(changes: &[Change]) -> BTreeMap<String, Json> {
    let mut m = BTreeMap::new();
    for c in changes {
        match (c.op.as_str(), &c.doc) {
            ("delete" | "tombstone", _) => {
                m.remove(&c.id);
            }
            (_, Some(d)) => {
                m.insert(c.id.clone(), d.clone());
            }
            _ => {}
        }
    }
    m
}

/// Waits until the topic rebuilds exactly MongoDB's state of `db.coll`;
/// panics with the difference otherwise.
pub async fn converges(mongo: &Mongo, topic: &str, db: &str, coll: &str, timeout: Duration) {
    let start = std::time::Instant::now();
    loop {
        let want = mongo.state(db, coll).await;
        let got = fold(&changes(topic));
        if want == got {
            return;
        }
        if start.elapsed() > timeout {
            let missing: Vec<_> = want
                .keys()
                .filter(|k| !got.contains_key(*k))
                .take(5)
                .collect();
            let extra: Vec<_> = got
                .keys()
                .filter(|k| !want.contains_key(*k))
                .take(5)
                .collect();
            let differ: Vec<_> = want
                .iter()
                .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
                .map(|(k, v)| (k, v, got.get(k)))
                .take(3)
                .collect();
            panic!(
                "{topic}: topic state differs from {db}.{coll} after {timeout:?}: {} docs in MongoDB, {} from the topic; missing {missing:?}; extra {extra:?}; differing {differ:?}",
                want.len(),
                got.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Documents of about `size` bytes with `_id`s of mixed types.
pub fn mixed_docs(n: usize, size: usize, tag: &str) -> Vec<Document> {
    let pad = "x".repeat(size);
    // Numeric ids differ per tag so that batches with different tags can share a collection.
    let base = tag.bytes().map(usize::from).sum::<usize>() * 100_000;
    (0..n)
        .map(|i| {
            let id = match i % 5 {
                0 => Bson::Int32((base + i) as i32),
                1 => Bson::Int64((base + i) as i64 * 1_000_000_007),
                2 => Bson::String(format!("{tag}-{i:06}")),
                3 => Bson::ObjectId(mongodb::bson::oid::ObjectId::new()),
                _ => Bson::Document(doc! {"k": i as i32, "t": tag}),
            };
            doc! {"_id": id, "n": i as i64, "v": 0, "pad": &pad}
        })
        .collect()
}

pub async fn insert(mongo: &Mongo, db: &str, coll: &str, docs: Vec<Document>) {
    for part in docs.chunks(1000) {
        mongo
            .client
            .database(db)
            .collection::<Document>(coll)
            .insert_many(part.to_vec())
            .await
            .expect("insert_many");
    }
}
