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
use mongodb::bson::{doc, Bson, Document};

use crate::bsonx;
use crate::config::{Format, MongoConfig};

fn encode(cfg: &MongoConfig, d: &Document, format: Format) -> Value {
    match format {
        Format::Json => Value::String(bsonx::doc_json(d, cfg.formatter)),
        // A document always serialises; an empty value is the conservative fallback.
        Format::Bson => Value::Bytes(mongodb::bson::to_vec(d).unwrap_or_default()),
    }
}

fn schema(format: Format) -> connect_api::SchemaRef {
    match format {
        Format::Json => Schema::primitive(SchemaType::String, true),
        Format::Bson => Schema::primitive(SchemaType::Bytes, true),
    }
}

fn headers(db: &str, coll: &str, op: &str, source: &str, cluster_time: Option<String>) -> Headers {
    let s = || Some(Schema::primitive(SchemaType::String, false));
    let mut h = Headers::new();
    h.add("mongodb.db", s(), Value::String(db.into()));
    h.add("mongodb.coll", s(), Value::String(coll.into()));
    h.add("mongodb.operation", s(), Value::String(op.into()));
    h.add("mongodb.source", s(), Value::String(source.into()));
    if let Some(t) = cluster_time {
        h.add("mongodb.cluster.time", s(), Value::String(t));
    }
    h
}

/// A copied document.
pub fn snapshot_record(
    cfg: &MongoConfig,
    db: &str,
    coll: &str,
    d: Document,
    partition: &OffsetMap,
    offset: OffsetMap,
) -> SourceRecord {
    let id = d.get("_id").cloned().unwrap_or(Bson::Null);
    let key = if cfg.document_key_as_key {
        doc! {"_id": id.clone()}
    } else {
        doc! {"_id": {"_id": id.clone(), "copyingData": true}}
    };
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
    SourceRecord {
        source_partition: partition.clone(),
        source_offset: offset,
        record: ConnectRecord {
            topic: cfg.topic(db, Some(coll)),
            key_schema: Some(schema(cfg.key_format)),
            key: encode(cfg, &key, cfg.key_format),
            value_schema: Some(schema(cfg.value_format)),
            value: encode(cfg, &value, cfg.value_format),
            headers: headers(db, coll, "read", "snapshot", None),
            ..Default::default()
        },
    }
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
    let (value, value_doc) = if cfg.full_document_only {
        match (op.as_str(), ev.get("fullDocument")) {
            (_, Some(Bson::Document(fd))) => (encode(cfg, fd, cfg.value_format), true),
            ("delete", _) if cfg.tombstone_on_delete => (Value::Null, false),
            _ => return None,
        }
    } else {
        (encode(cfg, ev, cfg.value_format), true)
    };
    let cluster_time = ev.get_timestamp("clusterTime").ok().map(bsonx::ts_string);
    let coll_name = coll.clone().unwrap_or_default();
    Some(SourceRecord {
        source_partition: partition.clone(),
        source_offset: offset,
        record: ConnectRecord {
            topic: cfg.topic(&db, coll.as_deref()),
            key_schema: Some(schema(cfg.key_format)),
            key: encode(cfg, &key, cfg.key_format),
            value_schema: value_doc.then(|| schema(cfg.value_format)),
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
