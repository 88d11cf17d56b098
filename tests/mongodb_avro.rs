//! MongoDB documents as Avro (`output.format.*=schema` with inference and
//! the AvroConverter), end to end: a real Kafka broker and the Apicurio
//! registry (`eval "$(scripts/dev-env.sh up)"`), and MongoDB — the replica
//! set in `MONGODB_URI` when set, otherwise an in-process `mongo-sim`.
//!
//! Every record is decoded outside the project by `tests/avro_check.py`
//! (confluent-kafka's AvroDeserializer with its SchemaRegistryClient, and
//! fastavro, which must agree) and compared with the source document under
//! the mapping documented in `docs/avro.md`; every version of the subjects
//! must pass the registry's BACKWARD compatibility check.

#![allow(clippy::unwrap_used)] // tests panic on unexpected states by design

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::mongo::*;
use common::*;
use connect_mongodb::schema::infer::{sanitize, uuid_string};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, oid::ObjectId, Binary, Bson, Decimal128, Document, Regex, Timestamp};
use serde_json::{json, Value as Json};

const AVRO: &str = "io.confluent.connect.avro.AvroConverter";

fn registry_url() -> String {
    std::env::var("SCHEMA_REGISTRY_URL").unwrap_or_else(|_| {
        panic!("SCHEMA_REGISTRY_URL is not set: start the test services with `eval \"$(scripts/dev-env.sh up)\"`")
    })
}

fn config(uri: &str, prefix: &str, db: &str, coll: &str, extra: &[(&str, &str)]) -> Json {
    let reg = registry_url();
    let mut c = json!({
        "connector.class": "com.mongodb.kafka.connect.MongoSourceConnector",
        "connection.uri": uri,
        "database": db,
        "collection": coll,
        "tasks.max": "1",
        "topic.prefix": prefix,
        "startup.mode": "copy_existing",
        "change.stream.full.document": "updateLookup",
        "poll.await.time.ms": "200",
        "output.format.key": "schema",
        "output.format.value": "schema",
        "output.schema.infer.value": "true",
        "key.converter": AVRO,
        "key.converter.schema.registry.url": reg,
        "value.converter": AVRO,
        "value.converter.schema.registry.url": reg,
    });
    for (k, v) in extra {
        c[*k] = json!(v);
    }
    c
}

async fn delete(w: &TestWorker, name: &str) {
    let (code, resp) = w.call("DELETE", &format!("/connectors/{name}"), None).await;
    assert_eq!(code, 204, "delete {name}: {resp}");
}

/// Fails with the task's trace when the connector's task failed.
async fn task_state(w: &TestWorker, name: &str) -> Json {
    w.call("GET", &format!("/connectors/{name}/status"), None)
        .await
        .1
}

/// Waits until `topic` holds at least `n` records; panics with the
/// connector status when it does not.
async fn wait_records(w: &TestWorker, name: &str, topic: &str, n: usize) {
    for _ in 0..600 {
        if try_read_topic(topic).map(|r| r.len()).unwrap_or(0) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let have = try_read_topic(topic).map(|r| r.len()).unwrap_or(0);
    panic!(
        "{topic}: {have} of {n} records; status {}",
        task_state(w, name).await
    );
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn helper() -> String {
    format!("{}/tests/avro_check.py", env!("CARGO_MANIFEST_DIR"))
}

/// Every record of `topic`, decoded by both Python decoders.
fn decode_all(topic: &str, count: usize) -> Vec<Json> {
    let out = Command::new(python())
        .args([
            helper(),
            "decode".into(),
            kafka_bootstrap(),
            registry_url(),
            topic.into(),
            count.to_string(),
        ])
        .output()
        .expect("run tests/avro_check.py (python3 with scripts/requirements-test.txt)");
    assert!(
        out.status.success(),
        "avro_check.py decode {topic}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Asks the registry whether each version of `subject` is BACKWARD
/// compatible with the previous one; returns the number of versions.
fn backward_versions(subject: &str) -> u64 {
    let out = Command::new(python())
        .args([helper(), "compat".into(), registry_url(), subject.into()])
        .output()
        .expect("run tests/avro_check.py");
    assert!(
        out.status.success(),
        "avro_check.py compat {subject}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Json = serde_json::from_slice(&out.stdout).expect("JSON");
    r["versions"].as_u64().expect("versions")
}

/// Sets `BACKWARD` on subjects before anything is registered: the
/// registry's default (`NONE` in Apicurio) would accept any version, and
/// the compatibility of each registration is what is under test.
async fn enforce_backward(subjects: &[String]) {
    let client = connect_converters::registry::RegistryClient::new(
        connect_converters::registry::RegistryClientConfig {
            urls: vec![registry_url()],
            user_info: None,
            url_credentials: false,
            request_timeout: Duration::from_secs(30),
            cache_capacity: 10,
            ssl: BTreeMap::new(),
        },
    )
    .unwrap();
    for s in subjects {
        client.set_compatibility(s, "BACKWARD").await.unwrap();
    }
}

fn num(j: &Json) -> Option<f64> {
    j.as_f64()
}

/// Whether the decoded `j` is the source value `b` under the documented
/// mapping (docs/avro.md). Null and absent read the same.
fn same(b: &Bson, j: &Json) -> bool {
    // The fallback member: {"json": <canonical extended JSON>}.
    if let Some(text) = j
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("json"))
        .and_then(Json::as_str)
    {
        if !matches!(b, Bson::Document(d) if d.len() == 1 && d.contains_key("json")) {
            let parsed: Json = serde_json::from_str(text).unwrap();
            return Bson::try_from(parsed)
                .map(|p| p.into_canonical_extjson() == b.clone().into_canonical_extjson())
                .unwrap_or(false);
        }
    }
    match b {
        Bson::Null | Bson::Undefined => j.is_null(),
        Bson::Int32(n) => num(j) == Some(f64::from(*n)),
        Bson::Int64(n) => num(j) == Some(*n as f64),
        Bson::Double(n) => num(j) == Some(*n),
        Bson::String(s) | Bson::Symbol(s) => j.as_str() == Some(s),
        Bson::Boolean(x) => j.as_bool() == Some(*x),
        Bson::ObjectId(o) => j.as_str() == Some(o.to_hex().as_str()),
        Bson::Decimal128(d) => j.as_str() == Some(d.to_string().as_str()),
        Bson::DateTime(d) => j.as_i64() == Some(d.timestamp_millis()),
        Bson::Timestamp(t) => {
            j["t"].as_u64() == Some(u64::from(t.time))
                && j["i"].as_u64() == Some(u64::from(t.increment))
        }
        Bson::Binary(bin) if bin.subtype == BinarySubtype::Uuid && bin.bytes.len() == 16 => {
            j.as_str() == Some(uuid_string(&bin.bytes).as_str())
        }
        Bson::Binary(bin) => {
            j.as_str()
                == Some(
                    base64::engine::general_purpose::STANDARD
                        .encode(&bin.bytes)
                        .as_str(),
                )
        }
        Bson::RegularExpression(r) => {
            j["pattern"].as_str() == Some(r.pattern.as_str())
                && j["options"].as_str() == Some(r.options.as_str())
        }
        Bson::Array(a) => j
            .as_array()
            .is_some_and(|x| x.len() == a.len() && a.iter().zip(x).all(|(b, j)| same(b, j))),
        Bson::Document(d) => same_doc(d, j),
        _ => false,
    }
}

fn same_doc(d: &Document, j: &Json) -> bool {
    let Some(o) = j.as_object() else {
        return false;
    };
    let fields_match = d
        .iter()
        .all(|(k, v)| same(v, o.get(&sanitize(k)).unwrap_or(&Json::Null)));
    // Fields the record has beyond the document must be null (fields the
    // collection's other documents brought in).
    let names: Vec<String> = d.keys().map(|k| sanitize(k)).collect();
    let extra_null = o
        .iter()
        .all(|(k, v)| v.is_null() || names.iter().any(|n| n == k));
    fields_match && extra_null
}

fn id_of(d: &Document) -> String {
    id_key(d.get("_id").unwrap())
}

/// Documents whose fields appear, change type, nest and un-nest; and one of
/// every BSON type of the mapping table.
fn snapshot_docs() -> Vec<Document> {
    vec![
        doc! {"_id": 1, "name": "ada", "qty": 1},
        doc! {"_id": 2, "name": "bob", "qty": 2_i64, "tags": ["x", "y"]},
        doc! {"_id": 3, "addr": {"city": "Paris", "zip": 75001}, "tags": []},
        doc! {"_id": 4, "qty": 2.5, "addr": "un-nested, now a string", "tags": [1, "mixed", {"k": true}]},
        doc! {
            "_id": ObjectId::parse_str("65f0c0ffee0000000000a001").unwrap(),
            "when": mongodb::bson::DateTime::from_millis(1_700_000_000_123),
            "price": "19.99".parse::<Decimal128>().unwrap(),
            "ts": Timestamp { time: 1_700_000_000, increment: 7 },
            "blob": Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2, 255] },
            "uid": Binary { subtype: BinarySubtype::Uuid, bytes: (1u8..=16).collect() },
            "re": Regex { pattern: "^a.*z$".into(), options: "i".into() },
            "lo": Bson::MinKey,
            "hi": Bson::MaxKey,
            "flag": true,
            "odd-name": 5,
        },
        doc! {"_id": "str-id", "qty": mongodb::bson::DateTime::from_millis(5), "name": null},
    ]
}

/// Changes streamed after the snapshot: a field turns into a document, a
/// nested record grows, a number becomes a string, a document field is set.
fn stream_docs() -> Vec<Document> {
    vec![
        doc! {"_id": 10, "qty": {"value": 3, "unit": "kg"}},
        doc! {"_id": 11, "addr": {"city": "Lyon", "geo": {"lat": 45.7, "lon": 4.8}}},
        doc! {"_id": 12, "qty": "twelve", "tags": [[1, 2], "nested arrays"]},
        doc! {"_id": 13, "name": "new field after snapshot", "added": {"deep": {"er": 1}}},
    ]
}

/// Compares every decoded record with the versions of its document.
fn check_records(records: &[Json], versions: &BTreeMap<String, Vec<Document>>, envelope: bool) {
    for r in records {
        let value = if envelope {
            assert!(r["value"]["operationType"].is_string(), "{r}");
            assert!(r["value"]["ns"]["db"].is_string(), "{r}");
            &r["value"]["fullDocument"]
        } else {
            &r["value"]
        };
        let key = &r["key"];
        let id = versions
            .iter()
            .find(|(_, vs)| same(vs[0].get("_id").unwrap(), &key["_id"]))
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| panic!("no source document for key {key}"));
        let vs = &versions[&id];
        assert!(
            vs.iter().any(|d| same_doc(d, value)),
            "record {r}\nmatches no version of document {id}: {vs:?}"
        );
    }
}

async fn current(mongo: &Mongo, db: &str, coll: &str, id: &Bson) -> Document {
    mongo
        .client
        .database(db)
        .collection::<Document>(coll)
        .find_one(doc! {"_id": id.clone()})
        .await
        .unwrap()
        .unwrap()
}

/// Snapshot and stream of an evolving collection with
/// `publish.full.document.only=true`: values are the documents themselves.
/// Then a new connector on the same topic (a restart without stored
/// offsets) continues the schema from the registry: a document whose
/// field types alone would narrow the schema must still register.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evolving_documents_snapshot_stream_and_restart() {
    let mongo = Mongo::start().await;
    let db = unique("avro").replace('-', "_");
    let coll = "evolve";
    let snap = snapshot_docs();
    insert(&mongo, &db, coll, snap.clone()).await;
    let mut versions: BTreeMap<String, Vec<Document>> = BTreeMap::new();
    for d in &snap {
        versions.entry(id_of(d)).or_default().push(d.clone());
    }

    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let name = unique("mongo-avro");
    let prefix = unique("av");
    let topic = format!("{prefix}.{db}.{coll}");
    let cfg = config(
        &mongo.uri,
        &prefix,
        &db,
        coll,
        &[("publish.full.document.only", "true")],
    );
    enforce_backward(&[format!("{topic}-value"), format!("{topic}-key")]).await;
    w.create_connector(&name, &cfg).await;
    wait_records(&w, &name, &topic, snap.len()).await;

    let c = mongo.client.database(&db).collection::<Document>(coll);
    let stream = stream_docs();
    for d in &stream {
        c.insert_one(d.clone()).await.unwrap();
        versions.entry(id_of(d)).or_default().push(d.clone());
    }
    // An update that nests a scalar field's sibling and un-nests another.
    c.update_one(
        doc! {"_id": 3},
        doc! {"$set": {"addr": 42, "extra": {"a": [1.5]}}},
    )
    .await
    .unwrap();
    let after = current(&mongo, &db, coll, &Bson::Int32(3)).await;
    versions.entry("3".into()).or_default().push(after);
    let total = snap.len() + stream.len() + 1;
    wait_records(&w, &name, &topic, total).await;

    let records = decode_all(&topic, total);
    assert_eq!(records.len(), total);
    check_records(&records, &versions, false);
    let value_versions = backward_versions(&format!("{topic}-value"));
    assert!(
        value_versions >= 5,
        "the value schema evolved only {value_versions} times"
    );
    backward_versions(&format!("{topic}-key"));

    // Restart from the registry: a fresh connector with the same topic.
    delete(&w, &name).await;
    let name2 = unique("mongo-avro-restart");
    let mut cfg2 = cfg.clone();
    cfg2["startup.mode"] = json!("latest");
    w.create_connector(&name2, &cfg2).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Alone, these values would give `qty` and `addr` narrower types than
    // the registered unions, which BACKWARD forbids; continued from the
    // registry they only add the field `late`.
    let late = doc! {"_id": 20, "qty": 1, "addr": "x", "late": true};
    c.insert_one(late.clone()).await.unwrap();
    versions.entry("20".into()).or_default().push(late);
    wait_records(&w, &name2, &topic, total + 1).await;
    let records = decode_all(&topic, total + 1);
    check_records(&records, &versions, false);
    let last = records.last().unwrap();
    assert_eq!(last["value"]["late"], json!(true), "{last}");
    assert!(
        last["value"].as_object().unwrap().contains_key("odd_name"),
        "the restarted schema lost fields: {last}"
    );
    assert_eq!(
        backward_versions(&format!("{topic}-value")),
        value_versions + 1
    );
    w.shutdown().await;
}

/// Change events keep the official schema'd layout, with the inferred
/// document in `fullDocument`; updates and deletes are decoded too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_events_with_inferred_full_document() {
    let mongo = Mongo::start().await;
    let db = unique("avroev").replace('-', "_");
    let coll = "events";
    let snap = snapshot_docs();
    insert(&mongo, &db, coll, snap.clone()).await;
    let mut versions: BTreeMap<String, Vec<Document>> = BTreeMap::new();
    for d in &snap {
        versions.entry(id_of(d)).or_default().push(d.clone());
    }
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let name = unique("mongo-avro-ev");
    let prefix = unique("ave");
    let topic = format!("{prefix}.{db}.{coll}");
    enforce_backward(&[format!("{topic}-value"), format!("{topic}-key")]).await;
    w.create_connector(&name, &config(&mongo.uri, &prefix, &db, coll, &[]))
        .await;
    wait_records(&w, &name, &topic, snap.len()).await;

    let c = mongo.client.database(&db).collection::<Document>(coll);
    for d in stream_docs() {
        c.insert_one(d.clone()).await.unwrap();
        versions.entry(id_of(&d)).or_default().push(d);
    }
    c.update_one(
        doc! {"_id": 1},
        doc! {"$set": {"name": {"first": "Ada", "last": "L"}}},
    )
    .await
    .unwrap();
    versions
        .entry("1".into())
        .or_default()
        .push(current(&mongo, &db, coll, &Bson::Int32(1)).await);
    c.delete_one(doc! {"_id": 2}).await.unwrap();
    let total = snap.len() + stream_docs().len() + 2;
    wait_records(&w, &name, &topic, total).await;
    let records = decode_all(&topic, total);

    let (with_doc, deletes): (Vec<Json>, Vec<Json>) = records
        .into_iter()
        .partition(|r| !r["value"]["fullDocument"].is_null());
    check_records(&with_doc, &versions, true);
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    let del = &deletes[0]["value"];
    assert_eq!(del["operationType"], "delete");
    assert_eq!(del["documentKey"], r#"{"_id":2}"#);
    assert_eq!(deletes[0]["key"]["_id"], json!(2));
    let upd = with_doc
        .iter()
        .find(|r| r["value"]["operationType"] == "update")
        .expect("update event");
    assert_eq!(upd["value"]["fullDocument"]["name"]["first"], "Ada");
    assert!(upd["value"]["updateDescription"]["updatedFields"]
        .as_str()
        .is_some_and(|s| s.contains("first")));
    assert!(backward_versions(&format!("{topic}-value")) >= 5);
    backward_versions(&format!("{topic}-key"));
    w.shutdown().await;
}

/// The connector's tasks, asserting that every one is RUNNING (none
/// failed on a registry rejection).
async fn all_running(w: &TestWorker, name: &str, tasks: usize) {
    let status = task_state(w, name).await;
    let states: Vec<&str> = status["tasks"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["state"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(states.len(), tasks, "{status}");
    assert!(states.iter().all(|s| *s == "RUNNING"), "{status}");
}

/// Documents whose shape depends on their `_id` range, so that the chunks
/// read by different tasks (chunk n goes to task n % 2) infer different,
/// conflicting shapes at the same time: `n` is an int in one range and a
/// long or double in the next, `a` is a record here and a string there, `s`
/// a string and an int. String `_id`s at the end make the key a union too.
fn chunked_docs() -> Vec<Document> {
    let pad = "p".repeat(300);
    let mut docs: Vec<Document> = (0..720)
        .map(|i: i32| {
            let mut d = match (i / 40) % 6 {
                0 => doc! {"_id": i, "n": i, "a": {"x": i}, "s": "str"},
                1 => doc! {"_id": i, "n": i64::from(i), "a": {"x": i64::from(i), "y": "s"}, "b": true},
                2 => doc! {"_id": i, "n": f64::from(i) + 0.5, "a": "a string", "arr": [1, "x"]},
                3 => doc! {"_id": i, "n": i, "d": mongodb::bson::DateTime::from_millis(i64::from(i)), "a": {"z": [1.5]}, "s": 5},
                4 => doc! {"_id": i, "n": i64::from(i), "o": ObjectId::new(), "arr": [{"k": i}], "b": "not a bool"},
                _ => doc! {"_id": i, "n": null, "a": [1, 2], "nested": {"deep": {"v": i}}},
            };
            d.insert("pad", pad.clone());
            d
        })
        .collect();
    docs.extend((0..60).map(|i| {
        doc! {"_id": format!("k{i:03}"), "n": format!("n as text {i}"), "s": {"sub": i}, "pad": pad.clone()}
    }));
    docs
}

/// Chunks of one collection spread over two tasks, each reading two chunks
/// at once, infer different shapes concurrently; the stream task adds more.
/// Every task merges its shape with the registry's latest version before
/// registering, so no task fails, every version is BACKWARD compatible,
/// and every record decodes to its source document.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_sharing_a_collection_merge_their_schemas() {
    let mongo = Mongo::start().await;
    let db = unique("avrotasks").replace('-', "_");
    let coll = "chunks";
    let snap = chunked_docs();
    insert(&mongo, &db, coll, snap.clone()).await;
    let mut versions: BTreeMap<String, Vec<Document>> = BTreeMap::new();
    for d in &snap {
        versions.entry(id_of(d)).or_default().push(d.clone());
    }

    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let name = unique("mongo-avro-tasks");
    let prefix = unique("avt");
    let topic = format!("{prefix}.{db}.{coll}");
    let cfg = config(
        &mongo.uri,
        &prefix,
        &db,
        coll,
        &[
            ("publish.full.document.only", "true"),
            ("tasks.max", "2"),
            ("snapshot.parallelism", "2"),
            ("snapshot.chunk.size.mb", "0.02"),
        ],
    );
    enforce_backward(&[format!("{topic}-value"), format!("{topic}-key")]).await;
    w.create_connector(&name, &cfg).await;
    wait_records(&w, &name, &topic, snap.len()).await;
    all_running(&w, &name, 2).await;

    let c = mongo.client.database(&db).collection::<Document>(coll);
    let stream = [
        doc! {"_id": 5000, "n": {"val": 1}, "fresh": [true]},
        doc! {"_id": "z-stream", "a": {"x": 2.5, "w": "new"}, "s": [1]},
    ];
    for d in &stream {
        c.insert_one(d.clone()).await.unwrap();
        versions.entry(id_of(d)).or_default().push(d.clone());
    }
    c.update_one(
        doc! {"_id": 3},
        doc! {"$set": {"a": {"v": "set"}, "n": 7_i64}},
    )
    .await
    .unwrap();
    versions
        .entry("3".into())
        .or_default()
        .push(current(&mongo, &db, coll, &Bson::Int32(3)).await);
    let total = snap.len() + stream.len() + 1;
    wait_records(&w, &name, &topic, total).await;
    all_running(&w, &name, 2).await;

    let records = decode_all(&topic, total);
    assert_eq!(records.len(), total);
    check_records(&records, &versions, false);
    // Records written by both tasks: the schema ids differ per version, and
    // several versions were needed.
    let value_versions = backward_versions(&format!("{topic}-value"));
    assert!(value_versions >= 2, "{value_versions} value versions");
    backward_versions(&format!("{topic}-key"));
    w.shutdown().await;
}

/// A restart continues the schema from the registry under
/// RecordNameStrategy (values) and TopicRecordNameStrategy (keys): the
/// subjects are named after the records, not the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_continues_record_name_strategy_subjects() {
    let mongo = Mongo::start().await;
    let db = unique("avrorns").replace('-', "_");
    let coll = "named";
    let snap = snapshot_docs();
    insert(&mongo, &db, coll, snap.clone()).await;
    let mut versions: BTreeMap<String, Vec<Document>> = BTreeMap::new();
    for d in &snap {
        versions.entry(id_of(d)).or_default().push(d.clone());
    }
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let name = unique("mongo-avro-rns");
    let prefix = unique("avr");
    let topic = format!("{prefix}.{db}.{coll}");
    let cfg = config(
        &mongo.uri,
        &prefix,
        &db,
        coll,
        &[
            ("publish.full.document.only", "true"),
            (
                "value.converter.value.subject.name.strategy",
                "io.confluent.kafka.serializers.subject.RecordNameStrategy",
            ),
            (
                "key.converter.key.subject.name.strategy",
                "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
            ),
        ],
    );
    let record = format!("io.connectd.mongodb.{db}.{coll}");
    let value_subject = record.clone();
    let key_subject = format!("{topic}-{record}_Key");
    enforce_backward(&[value_subject.clone(), key_subject.clone()]).await;
    w.create_connector(&name, &cfg).await;
    wait_records(&w, &name, &topic, snap.len()).await;
    let value_versions = backward_versions(&value_subject);
    let key_versions = backward_versions(&key_subject);
    assert!(value_versions >= 3, "{value_versions}");
    assert!(key_versions >= 2, "{key_versions}");

    delete(&w, &name).await;
    let name2 = unique("mongo-avro-rns-restart");
    let mut cfg2 = cfg.clone();
    cfg2["startup.mode"] = json!("latest");
    w.create_connector(&name2, &cfg2).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Alone these would register narrower `qty`, `addr` and `_id` types
    // than the registered unions, which BACKWARD refuses.
    let late = doc! {"_id": 20, "qty": 1, "addr": "x", "late": true};
    let c = mongo.client.database(&db).collection::<Document>(coll);
    c.insert_one(late.clone()).await.unwrap();
    versions.entry("20".into()).or_default().push(late);
    let total = snap.len() + 1;
    wait_records(&w, &name2, &topic, total).await;
    all_running(&w, &name2, 1).await;
    let records = decode_all(&topic, total);
    check_records(&records, &versions, false);
    let last = records.last().unwrap();
    assert_eq!(last["value"]["late"], json!(true), "{last}");
    assert!(
        last["value"].as_object().unwrap().contains_key("odd_name"),
        "the restarted schema lost fields: {last}"
    );
    assert_eq!(backward_versions(&value_subject), value_versions + 1);
    // The key adds nothing: the restarted task writes the registered version.
    assert_eq!(backward_versions(&key_subject), key_versions);
    assert!(
        records[..snap.len()]
            .iter()
            .any(|r| r["key_id"] == last["key_id"]),
        "the key of the restarted task must reuse a registered schema: {last}"
    );
    w.shutdown().await;
}

/// Eight writers of one subject, each with a local shape the others lack
/// or hold narrower (`n` an int here, a long or a double there, a string
/// once), publish at the same moment: each reads the latest version, merges,
/// and retries when another registered first. All succeed, every version
/// is BACKWARD compatible, and the final version reads every writer's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_merge_through_the_registry() {
    use connect_converters::avro::{compat, schema as avro_schema, AvroDataConfig};
    use connect_converters::registry::{RegistryClient, RegistryClientConfig};
    use connect_mongodb::schema::infer::DocShape;
    use connect_mongodb::schema::publish::{registered_shape, Layout, Publish, SideRegistry};

    let subject = format!("{}-value", unique("merge-race"));
    let client = std::sync::Arc::new(
        RegistryClient::new(RegistryClientConfig {
            urls: vec![registry_url()],
            user_info: None,
            url_credentials: false,
            request_timeout: Duration::from_secs(30),
            cache_capacity: 100,
            ssl: BTreeMap::new(),
        })
        .unwrap(),
    );
    client
        .set_compatibility(&subject, "BACKWARD")
        .await
        .unwrap();
    let registry = SideRegistry {
        client,
        data: AvroDataConfig::default(),
        strategy: connect_converters::avro::SubjectNameStrategy::TopicName,
        normalize: false,
        register: true,
    };
    let locals: Vec<DocShape> = (0..8)
        .map(|i: i32| {
            let n = match i % 4 {
                0 => Bson::Int32(i),
                1 => Bson::Int64(i64::from(i)),
                2 => Bson::Double(f64::from(i)),
                _ => Bson::String(format!("n{i}")),
            };
            let mut shape = DocShape::new("io.connectd.test.Race".into());
            shape.merge(
                &doc! {"_id": i, "n": n, format!("f{i}"): i, "sub": {format!("g{i}"): "x", "k": i}},
            );
            shape
        })
        .collect();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(locals.len()));
    let writers: Vec<_> = locals
        .iter()
        .cloned()
        .map(|local| {
            let (registry, subject, barrier) = (registry.clone(), subject.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                Publish {
                    registry,
                    subject,
                    local,
                    layout: Layout::Document,
                    schema_of: |s, _| s.connect_schema(),
                }
                .run_blocking()
            })
        })
        .collect();
    for (i, w) in writers.into_iter().enumerate() {
        let merged = w.join().unwrap();
        let merged = merged.unwrap_or_else(|e| panic!("writer {i}: {e}"));
        let mut check = merged.clone();
        assert!(
            !check.merge_shape(&locals[i]),
            "writer {i} writes with a schema that lacks its own shape"
        );
    }
    let versions = backward_versions(&subject);
    assert!(versions >= 2, "{versions}");

    let latest = registry.client.latest_uncached(&subject).await.unwrap();
    let final_shape = registered_shape(&latest.schema, Layout::Document).unwrap();
    let text = |s: &DocShape| {
        AvroDataConfig::default()
            .from_connect_schema(&s.connect_schema())
            .unwrap()
            .to_json_string()
    };
    let (r, rn) = avro_schema::parse(&latest.schema).unwrap();
    for (i, local) in locals.iter().enumerate() {
        let (w, wn) = avro_schema::parse(&text(local)).unwrap();
        compat::check(&r, &rn, &w, &wn)
            .unwrap_or_else(|e| panic!("the final version cannot read writer {i}: {e}"));
        let mut all = final_shape.clone();
        assert!(
            !all.merge_shape(local),
            "the final version lacks writer {i}'s shape"
        );
    }
}

/// A malformed `output.schema.value` is reported by config validation on
/// that key, with the fix, before any task runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_output_schema_value_is_reported_on_its_key() {
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let mut cfg = config(
        "mongodb://127.0.0.1:1/?replicaSet=rs0",
        "p",
        "d",
        "c",
        &[("output.schema.infer.value", "false")],
    );
    cfg["output.schema.value"] = json!("{\"type\": \"record\", \"name\": ");
    let (code, body) = w
        .call(
            "PUT",
            "/connector-plugins/com.mongodb.kafka.connect.MongoSourceConnector/config/validate",
            Some(&cfg),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let errors: Vec<String> = body["configs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["value"]["name"] == "output.schema.value")
        .flat_map(|c| c["value"]["errors"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("Avro schema JSON")),
        "no error on output.schema.value: {body}"
    );
    w.shutdown().await;
}
