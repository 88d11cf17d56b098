//! Kafka records in the official connector's default shapes (landscape doc
//! §2.1): key = the `documentKey` as JSON (or `{"_id": <resume token>}`),
//! value = the change event as JSON in the configured flavour, or the bare
//! `fullDocument` with `publish.full.document.only`. Snapshot reads look
//! like the official connector's copied records (`_id.copyingData: true`).
//! Metadata travels as headers: `mongodb.db`, `mongodb.coll`,
//! `mongodb.operation`, `mongodb.source` (`snapshot`|`stream`) and
//! `mongodb.cluster.time`.

use connect_api::data::{Headers, Schema, SchemaType, Value};
use connect_api::record::{ConnectRecord, OffsetMap, SourceRecord};
use mongodb::bson::{doc, Bson, Document, RawDocument};

use crate::bsonx;
use crate::changelog::Change;
use crate::config::{Format, Formatter, MongoConfig};
use crate::error::{ConversionError, MongoError};

fn encode(cfg: &MongoConfig, d: &Document, format: Format) -> Value {
    match format {
        Format::Json => Value::String(bsonx::doc_json(d, cfg.formatter)),
        // A document always serialises; an empty value is the conservative fallback.
        Format::Bson => Value::Bytes(mongodb::bson::to_vec(d).unwrap_or_default()),
        // Schema'd output goes through `encoded`; JSON keeps a record if not.
        Format::Schema => Value::String(bsonx::doc_json(d, cfg.formatter)),
    }
}

fn schema(format: Format) -> connect_api::SchemaRef {
    // Built once: a schema per record was an allocation per key and value.
    static STRING: std::sync::OnceLock<connect_api::SchemaRef> = std::sync::OnceLock::new();
    static BYTES: std::sync::OnceLock<connect_api::SchemaRef> = std::sync::OnceLock::new();
    match format {
        Format::Json | Format::Schema => STRING
            .get_or_init(|| Schema::primitive(SchemaType::String, true))
            .clone(),
        Format::Bson => BYTES
            .get_or_init(|| Schema::primitive(SchemaType::Bytes, true))
            .clone(),
    }
}

/// Where a namespace's records go: (topic, db, coll).
pub type Ns<'a> = (&'a str, &'a str, &'a str);

/// Schema and value of a key (`is_key`) or value document in its format;
/// `output.format.*=schema` goes through [`crate::schema::SchemaOutput`].
fn encoded(
    cfg: &MongoConfig,
    d: &Document,
    is_key: bool,
    (topic, db, coll): Ns<'_>,
) -> (connect_api::SchemaRef, Value) {
    let format = if is_key {
        cfg.key_format
    } else {
        cfg.value_format
    };
    match (format, cfg.schema_output.as_deref()) {
        (Format::Schema, Some(out)) if is_key => out.key(topic, db, coll, d),
        (Format::Schema, Some(out)) => out.value(topic, db, coll, d),
        _ => (schema(format), encode(cfg, d, format)),
    }
}

fn headers(db: &str, coll: &str, op: &str, source: &str, cluster_time: Option<String>) -> Headers {
    // One shared schema: building it per header was several allocations per record.
    static STRING: std::sync::OnceLock<connect_api::SchemaRef> = std::sync::OnceLock::new();
    let s = || {
        Some(
            STRING
                .get_or_init(|| Schema::primitive(SchemaType::String, false))
                .clone(),
        )
    };
    let mut h = Headers(Vec::with_capacity(5));
    h.add("mongodb.db", s(), Value::String(db.into()));
    h.add("mongodb.coll", s(), Value::String(coll.into()));
    h.add("mongodb.operation", s(), Value::String(op.into()));
    h.add("mongodb.source", s(), Value::String(source.into()));
    if let Some(t) = cluster_time {
        h.add("mongodb.cluster.time", s(), Value::String(t));
    }
    h
}

/// A copied document already written as JSON key and value (the fast path
/// of both snapshot readers).
fn json_snapshot_record(
    (topic, db, coll): Ns<'_>,
    partition: &OffsetMap,
    offset: OffsetMap,
    key: Value,
    value: Value,
) -> SourceRecord {
    SourceRecord {
        source_partition: partition.clone(),
        source_offset: offset,
        record: ConnectRecord {
            topic: topic.to_string(),
            key_schema: Some(schema(Format::Json)),
            key,
            value_schema: Some(schema(Format::Json)),
            value,
            headers: headers(db, coll, "read", "snapshot", None),
            ..Default::default()
        },
    }
}

/// A copied document; `ns` is its topic (`cfg.topic`, computed once per
/// chunk), database and collection.
///
/// # Errors
/// With `output.format.value=changelog`, the envelope could not be built.
pub fn snapshot_record(
    cfg: &MongoConfig,
    ns: Ns<'_>,
    d: Document,
    partition: &OffsetMap,
    offset: OffsetMap,
) -> Result<SourceRecord, MongoError> {
    let (topic, db, coll) = ns;
    let id = d.get("_id").cloned().unwrap_or(Bson::Null);
    if let Some(ch) = &cfg.changelog {
        // The key the upsert output gives the same copy.
        let (key_schema, key) = encoded(cfg, &snapshot_key(cfg, id), true, ns);
        let value = ch
            .snapshot(topic, db, coll, bsonx::doc_json(&d, cfg.formatter))
            .map_err(|e| {
                MongoError::Fatal(format!(
                    "building the changelog envelope of a document copied from {db}.{coll}: {e}"
                ))
            })?;
        return Ok(SourceRecord {
            source_partition: partition.clone(),
            source_offset: offset,
            record: ConnectRecord {
                topic: topic.to_string(),
                key_schema: Some(key_schema),
                key,
                value_schema: Some(schema(Format::Json)),
                value: Value::String(value),
                headers: headers(db, coll, "read", "snapshot", None),
                ..Default::default()
            },
        });
    }
    if cfg.formatter != Formatter::Extended
        && cfg.key_format == Format::Json
        && cfg.value_format == Format::Json
    {
        let (key, value) = snapshot_json(cfg, db, coll, &d, &id);
        return Ok(json_snapshot_record(ns, partition, offset, key, value));
    }
    let key = snapshot_key(cfg, id.clone());
    let value = if cfg.full_document_only {
        d
    } else {
        doc! {
            "_id": {"_id": id.clone(), "copyingData": true},
            "operationType": "insert",
            "ns": {"db": db, "coll": coll},
            "documentKey": {"_id": id},
            "fullDocument": d,
        }
    };
    let (key_schema, key) = encoded(cfg, &key, true, ns);
    let (value_schema, value) = encoded(cfg, &value, false, ns);
    Ok(SourceRecord {
        source_partition: partition.clone(),
        source_offset: offset,
        record: ConnectRecord {
            topic: topic.to_string(),
            key_schema: Some(key_schema),
            key,
            value_schema: Some(value_schema),
            value,
            headers: headers(db, coll, "read", "snapshot", None),
            ..Default::default()
        },
    })
}

/// The key document of a copied document: its `_id`, or the official
/// connector's `{_id: {_id, copyingData: true}}`.
fn snapshot_key(cfg: &MongoConfig, id: Bson) -> Document {
    if cfg.document_key_as_key {
        doc! {"_id": id}
    } else {
        doc! {"_id": {"_id": id, "copyingData": true}}
    }
}

/// Key and value of a copied document as JSON text, written directly (the
/// snapshot's hot path with `output.format.*=json`): the `_id` is formatted
/// once and the envelope is never built as a document, so the copied
/// document is not cloned. The bytes equal encoding the built documents
/// (tested).
fn snapshot_json(
    cfg: &MongoConfig,
    db: &str,
    coll: &str,
    d: &Document,
    id: &Bson,
) -> (Value, Value) {
    let mut id_json = String::with_capacity(32);
    bsonx::write_json(&mut id_json, id, cfg.formatter);
    let written: Result<_, std::convert::Infallible> =
        snapshot_envelope(cfg, db, coll, &id_json, 1024, |out| {
            bsonx::write_doc(out, d, cfg.formatter);
            Ok(())
        });
    match written {
        Ok(kv) => kv,
        Err(never) => match never {},
    }
}

/// [`snapshot_json`] for a raw (undecoded) document.
fn snapshot_json_raw(
    cfg: &MongoConfig,
    db: &str,
    coll: &str,
    d: &RawDocument,
) -> Result<(Value, Value), mongodb::bson::raw::Error> {
    let mut id_json = String::with_capacity(32);
    match d.get("_id")? {
        Some(id) => bsonx::write_raw_json(&mut id_json, id, cfg.formatter)?,
        None => id_json.push_str("null"),
    }
    snapshot_envelope(cfg, db, coll, &id_json, d.as_bytes().len(), |out| {
        bsonx::write_raw_doc(out, d, cfg.formatter)
    })
}

/// Key and value JSON of a copied document around its `_id` JSON;
/// `write_doc` appends the document itself.
fn snapshot_envelope<E>(
    cfg: &MongoConfig,
    db: &str,
    coll: &str,
    id_json: &str,
    doc_len: usize,
    write_doc: impl FnOnce(&mut String) -> Result<(), E>,
) -> Result<(Value, Value), E> {
    let key = if cfg.document_key_as_key {
        format!("{{\"_id\":{id_json}}}")
    } else {
        format!("{{\"_id\":{{\"_id\":{id_json},\"copyingData\":true}}}}")
    };
    // JSON text is about as long as the BSON plus the envelope; sizing it
    // up front avoids regrowing (and copying) the ~1 KB string per record.
    let mut v = String::with_capacity(doc_len + doc_len / 4 + 160 + 2 * id_json.len());
    if cfg.full_document_only {
        write_doc(&mut v)?;
    } else {
        v.push_str("{\"_id\":{\"_id\":");
        v.push_str(id_json);
        v.push_str(",\"copyingData\":true},\"operationType\":\"insert\",\"ns\":{\"db\":");
        bsonx::write_json_str(&mut v, db);
        v.push_str(",\"coll\":");
        bsonx::write_json_str(&mut v, coll);
        v.push_str("},\"documentKey\":{\"_id\":");
        v.push_str(id_json);
        v.push_str("},\"fullDocument\":");
        write_doc(&mut v)?;
        v.push('}');
    }
    Ok((Value::String(key), Value::String(v)))
}

/// A copied document as read from the server, undecoded (the snapshot's
/// hot path): with JSON output its key and value are written straight from
/// the BSON; other formats decode it and take [`snapshot_record`].
///
/// # Errors
/// A document that is not valid BSON.
pub fn snapshot_record_raw(
    cfg: &MongoConfig,
    ns: Ns<'_>,
    d: &RawDocument,
    partition: &OffsetMap,
    offset: OffsetMap,
) -> Result<SourceRecord, MongoError> {
    let (_, db, coll) = ns;
    let bad = |e: mongodb::bson::raw::Error| {
        MongoError::Fatal(format!("a document of {db}.{coll} is not valid BSON: {e}"))
    };
    if cfg.formatter != Formatter::Extended
        && cfg.key_format == Format::Json
        && cfg.value_format == Format::Json
        && cfg.changelog.is_none()
    {
        let (key, value) = snapshot_json_raw(cfg, db, coll, d).map_err(bad)?;
        return Ok(json_snapshot_record(ns, partition, offset, key, value));
    }
    let doc = Document::try_from(d).map_err(bad)?;
    snapshot_record(cfg, ns, doc, partition, offset)
}

/// A change event, or `None` when the configuration publishes nothing for it
/// (e.g. a delete with `publish.full.document.only` and no tombstones).
pub fn event_record(
    cfg: &MongoConfig,
    ev: &Document,
    partition: &OffsetMap,
    offset: OffsetMap,
) -> Option<SourceRecord> {
    let ns = ev.get_document("ns").ok();
    let db = ns
        .and_then(|n| n.get_str("db").ok())
        .unwrap_or_default()
        .to_string();
    let coll = ns.and_then(|n| n.get_str("coll").ok()).map(str::to_string);
    let op = ev.get_str("operationType").unwrap_or_default().to_string();
    let token = ev.get_document("_id").cloned().unwrap_or_default();
    let key = match ev.get_document("documentKey") {
        Ok(k) if cfg.document_key_as_key => k.clone(),
        _ => doc! {"_id": token},
    };
    let topic = cfg.topic(&db, coll.as_deref());
    let target = (
        topic.as_str(),
        db.as_str(),
        coll.as_deref().unwrap_or_default(),
    );
    let (value_schema, value) = if cfg.full_document_only {
        match (op.as_str(), ev.get("fullDocument")) {
            (_, Some(Bson::Document(fd))) => {
                let (s, v) = encoded(cfg, fd, false, target);
                (Some(s), v)
            }
            ("delete", _) if cfg.tombstone_on_delete => (None, Value::Null),
            _ => return None,
        }
    } else {
        let (s, v) = encoded(cfg, ev, false, target);
        (Some(s), v)
    };
    let (key_schema, key) = encoded(cfg, &key, true, target);
    let cluster_time = ev.get_timestamp("clusterTime").ok().map(bsonx::ts_header);
    let coll_name = coll.clone().unwrap_or_default();
    Some(SourceRecord {
        source_partition: partition.clone(),
        source_offset: offset,
        record: ConnectRecord {
            topic,
            key_schema: Some(key_schema),
            key,
            value_schema,
            value,
            timestamp: ev
                .get_datetime("wallTime")
                .ok()
                .map(|d| d.timestamp_millis()),
            headers: headers(&db, &coll_name, &op, "stream", cluster_time),
            ..Default::default()
        },
    })
}

/// The records of a change event: none, one, or (a changelog delete with
/// tombstones) two.
///
/// # Errors
/// The configured output cannot represent the event (see
/// [`crate::changelog`]); what happens then is `errors.tolerance`'s call.
pub fn event_records(
    cfg: &MongoConfig,
    ev: &Document,
    partition: &OffsetMap,
    offset: OffsetMap,
) -> Result<Vec<SourceRecord>, ConversionError> {
    let Some(ch) = &cfg.changelog else {
        return Ok(event_record(cfg, ev, partition, offset)
            .into_iter()
            .collect());
    };
    let ns = ev.get_document("ns").ok();
    let db = ns.and_then(|n| n.get_str("db").ok()).unwrap_or_default();
    let coll = ns.and_then(|n| n.get_str("coll").ok());
    let topic = cfg.topic(db, coll);
    let (value, tombstone) =
        match ch.event(&topic, ev, cfg.formatter, cfg.full_document.as_deref())? {
            Change::Envelope { value, tombstone } => (value, tombstone),
            Change::Nothing => return Ok(Vec::new()),
        };
    let op = ev.get_str("operationType").unwrap_or_default();
    let coll = coll.unwrap_or_default();
    let key = event_key(cfg, ev);
    let (key_schema, key) = encoded(cfg, &key, true, (&topic, db, coll));
    let cluster_time = ev.get_timestamp("clusterTime").ok().map(bsonx::ts_header);
    let record = |value_schema, value| SourceRecord {
        source_partition: partition.clone(),
        source_offset: offset.clone(),
        record: ConnectRecord {
            topic: topic.clone(),
            key_schema: Some(key_schema.clone()),
            key: key.clone(),
            value_schema,
            value,
            timestamp: ev
                .get_datetime("wallTime")
                .ok()
                .map(|d| d.timestamp_millis()),
            headers: headers(db, coll, op, "stream", cluster_time.clone()),
            ..Default::default()
        },
    };
    let mut out = vec![record(Some(schema(Format::Json)), Value::String(value))];
    if tombstone {
        out.push(record(None, Value::Null));
    }
    Ok(out)
}

fn event_key(cfg: &MongoConfig, ev: &Document) -> Document {
    match ev.get_document("documentKey") {
        Ok(k) if cfg.document_key_as_key => k.clone(),
        _ => doc! {"_id": ev.get_document("_id").cloned().unwrap_or_default()},
    }
}

/// The dead letter queue record of an event that could not be converted,
/// as the official source connector writes it: key and value are the key
/// document and the change event as relaxed extended JSON strings, with the
/// event's offset (so the stored position moves past it). With
/// `context_headers`, `__connect.errors.*` headers say where it was going
/// and why it failed.
pub fn dlq_record(
    cfg: &MongoConfig,
    task_id: u32,
    dlq_topic: &str,
    ev: &Document,
    err: &ConversionError,
    partition: &OffsetMap,
    offset: OffsetMap,
) -> SourceRecord {
    let relaxed = |d: &Document| Bson::Document(d.clone()).into_relaxed_extjson().to_string();
    let ns = ev.get_document("ns").ok();
    let db = ns.and_then(|n| n.get_str("db").ok()).unwrap_or_default();
    let coll = ns.and_then(|n| n.get_str("coll").ok());
    let mut h = Headers::new();
    if cfg.errors.dlq_context_headers {
        let s = || Some(Schema::primitive(SchemaType::String, false));
        let mut add = |k: &str, v: String| h.add(k, s(), Value::String(v));
        add("__connect.errors.topic", cfg.topic(db, coll));
        add("__connect.errors.connector.name", cfg.name.clone());
        add("__connect.errors.task.id", task_id.to_string());
        add("__connect.errors.stage", "TASK_POLL".into());
        add("__connect.errors.class.name", crate::TASK_CLASS.into());
        add(
            "__connect.errors.exception.class.name",
            "io.connectd.mongodb.ConversionError".into(),
        );
        add("__connect.errors.exception.message", err.to_string());
        add("mongodb.ns", err.ns.clone());
        add("mongodb.operation", err.op.clone());
    }
    SourceRecord {
        source_partition: partition.clone(),
        source_offset: offset,
        record: ConnectRecord {
            topic: dlq_topic.to_string(),
            key_schema: Some(Schema::primitive(SchemaType::String, false)),
            key: Value::String(relaxed(&event_key(cfg, ev))),
            value_schema: Some(Schema::primitive(SchemaType::String, false)),
            value: Value::String(relaxed(ev)),
            headers: h,
            ..Default::default()
        },
    }
}

/// A record on the heartbeat topic that only carries an offset.
pub fn marker_record(
    cfg: &MongoConfig,
    key: String,
    partition: OffsetMap,
    offset: OffsetMap,
) -> SourceRecord {
    SourceRecord {
        source_partition: partition,
        source_offset: offset,
        record: ConnectRecord {
            topic: cfg.heartbeat_topic.clone(),
            key_schema: Some(Schema::primitive(SchemaType::String, true)),
            key: Value::String(key),
            value_schema: None,
            value: Value::Null,
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_api::config::Props;
    use mongodb::bson::oid::ObjectId;
    use mongodb::bson::{RawDocumentBuf, Timestamp};

    fn cfg(kv: &[(&str, &str)]) -> MongoConfig {
        let p: Props = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        MongoConfig::parse(&p).expect("valid config")
    }

    fn s(v: &Value) -> serde_json::Value {
        match v {
            Value::String(s) => serde_json::from_str(s).expect("json"),
            other => panic!("not a string: {other:?}"),
        }
    }

    fn event(op: &str, full: Option<Document>) -> Document {
        let id = ObjectId::parse_str("65f0c0ffee0000000000a001").expect("oid");
        let mut e = doc! {
            "_id": {"_data": "8265F0"}, "operationType": op,
            "clusterTime": Timestamp { time: 1_710_000_000, increment: 1 },
            "ns": {"db": "shop", "coll": "orders"}, "documentKey": {"_id": id},
        };
        if let Some(f) = full {
            e.insert("fullDocument", f);
        }
        e
    }

    /// The cluster-time header must reach a sink as the same string through
    /// the default header converter (which parses header text).
    #[test]
    fn cluster_time_header_survives_the_simple_header_converter() {
        use connect_api::HeaderConverter;
        let c = cfg(&[("topic.prefix", "p")]);
        let r = event_record(
            &c,
            &event("insert", Some(doc! {"_id": 1})),
            &OffsetMap::new(),
            OffsetMap::new(),
        )
        .expect("record");
        let h = r
            .record
            .headers
            .last_with_name("mongodb.cluster.time")
            .expect("header");
        let conv = connect_converters::SimpleHeaderConverter;
        let bytes = conv
            .from_connect_header("p.shop.orders", &h.key, h.schema.as_ref(), &h.value)
            .expect("serialize")
            .expect("bytes");
        let back = conv
            .to_connect_header("p.shop.orders", &h.key, Some(&bytes))
            .expect("parse");
        assert_eq!(back.value, Value::String("Timestamp(1710000000, 1)".into()));
    }

    #[test]
    fn official_default_shapes() {
        let c = cfg(&[("topic.prefix", "p")]);
        let full = doc! {"_id": ObjectId::parse_str("65f0c0ffee0000000000a001").expect("oid"), "qty": 3_i64};
        let r = event_record(
            &c,
            &event("insert", Some(full.clone())),
            &OffsetMap::new(),
            OffsetMap::new(),
        )
        .expect("record");
        assert_eq!(r.record.topic, "p.shop.orders");
        assert_eq!(
            s(&r.record.key),
            serde_json::json!({"_id": {"$oid": "65f0c0ffee0000000000a001"}})
        );
        let v = s(&r.record.value);
        assert_eq!(v["operationType"], "insert");
        assert_eq!(
            v["fullDocument"]["qty"],
            serde_json::json!({"$numberLong": "3"})
        );
        assert_eq!(
            v["clusterTime"],
            serde_json::json!({"$timestamp": {"t": 1_710_000_000u32, "i": 1}})
        );

        let topic = c.topic("shop", Some("orders"));
        let snap = snapshot_record(
            &c,
            (&topic, "shop", "orders"),
            full,
            &OffsetMap::new(),
            OffsetMap::new(),
        )
        .expect("record");
        let v = s(&snap.record.value);
        assert_eq!(v["_id"]["copyingData"], true);
        assert_eq!(v["operationType"], "insert");
        assert_eq!(
            s(&snap.record.key),
            serde_json::json!({"_id": {"$oid": "65f0c0ffee0000000000a001"}})
        );
    }

    /// The direct snapshot writer emits the same bytes as building the key
    /// and value documents and encoding them, for every shape and flavour.
    #[test]
    fn snapshot_direct_json_is_byte_identical() {
        let d = doc! {"_id": ObjectId::parse_str("65f0c0ffee0000000000a001").expect("oid"),
        "n": 5_i64, "s": "a\"b", "arr": [1, {"x": mongodb::bson::DateTime::from_millis(9)}]};
        for f in [
            "com.mongodb.kafka.connect.source.json.formatter.DefaultJson",
            "com.mongodb.kafka.connect.source.json.formatter.SimplifiedJson",
        ] {
            for (kk, fo) in [("true", "false"), ("false", "false"), ("true", "true")] {
                let c = cfg(&[
                    ("output.json.formatter", f),
                    ("change.stream.document.key.as.key", kk),
                    ("publish.full.document.only", fo),
                ]);
                let id = d.get("_id").cloned().expect("id");
                let key = if kk == "true" {
                    doc! {"_id": id.clone()}
                } else {
                    doc! {"_id": {"_id": id.clone(), "copyingData": true}}
                };
                let value = if fo == "true" {
                    d.clone()
                } else {
                    doc! {"_id": {"_id": id.clone(), "copyingData": true}, "operationType": "insert",
                    "ns": {"db": "sh\"op", "coll": "orders"}, "documentKey": {"_id": id.clone()},
                    "fullDocument": d.clone()}
                };
                let built = (
                    encode(&c, &key, Format::Json),
                    encode(&c, &value, Format::Json),
                );
                assert_eq!(
                    snapshot_json(&c, "sh\"op", "orders", &d, &id),
                    built,
                    "{f} key.as.key={kk} full.only={fo}"
                );
                let raw = RawDocumentBuf::from_document(&d).expect("raw");
                assert_eq!(
                    snapshot_json_raw(&c, "sh\"op", "orders", &raw).expect("valid"),
                    built,
                    "raw {f} key.as.key={kk} full.only={fo}"
                );
            }
        }
    }

    #[test]
    fn full_document_only_and_tombstones() {
        let c = cfg(&[("publish.full.document.only", "true")]);
        assert!(event_record(
            &c,
            &event("delete", None),
            &OffsetMap::new(),
            OffsetMap::new()
        )
        .is_none());
        let r = event_record(
            &c,
            &event("update", Some(doc! {"_id": 1, "a": 2})),
            &OffsetMap::new(),
            OffsetMap::new(),
        )
        .expect("record");
        assert_eq!(s(&r.record.value), serde_json::json!({"_id": 1, "a": 2}));
        let c = cfg(&[
            ("publish.full.document.only", "true"),
            ("publish.full.document.only.tombstone.on.delete", "true"),
        ]);
        let r = event_record(
            &c,
            &event("delete", None),
            &OffsetMap::new(),
            OffsetMap::new(),
        )
        .expect("tombstone");
        assert_eq!(r.record.value, Value::Null);
    }

    #[test]
    fn key_can_be_the_resume_token() {
        let c = cfg(&[("change.stream.document.key.as.key", "false")]);
        let r = event_record(
            &c,
            &event("delete", None),
            &OffsetMap::new(),
            OffsetMap::new(),
        )
        .expect("record");
        assert_eq!(
            s(&r.record.key),
            serde_json::json!({"_id": {"_data": "8265F0"}})
        );
    }
}
