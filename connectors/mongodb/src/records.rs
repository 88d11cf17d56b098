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

#[cfg(test)]
mod tests {
    use super::*;
    use connect_api::config::Props;
    use mongodb::bson::oid::ObjectId;
    use mongodb::bson::Timestamp;

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

        let snap = snapshot_record(
            &c,
            "shop",
            "orders",
            full,
            &OffsetMap::new(),
            OffsetMap::new(),
        );
        let v = s(&snap.record.value);
        assert_eq!(v["_id"]["copyingData"], true);
        assert_eq!(v["operationType"], "insert");
        assert_eq!(
            s(&snap.record.key),
            serde_json::json!({"_id": {"$oid": "65f0c0ffee0000000000a001"}})
        );
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
