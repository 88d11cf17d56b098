//! `output.format.value=changelog`: the source writes the Debezium envelope
//! itself, from the change stream's pre-images (`fullDocumentBeforeChange`)
//! and post-images (`fullDocument`), with the same builder as the changelog
//! normalizer (crate `connect-changelog`). For the same changes the two
//! paths write the same key, `op`, `before` and `after` bytes; `source`
//! differs where it must (see docs/mongodb-source.md, "Changelog output").
//!
//! Images are the documents as JSON text in `output.json.formatter`'s
//! flavour, exactly the value the source writes with
//! `publish.full.document.only=true`, which is what the normalizer stores
//! and nests; so `before`/`after` are byte-equal between the paths.
//!
//! Rules (each has a test):
//!
//! | event | record |
//! |---|---|
//! | snapshot copy | `r`, `after` |
//! | insert | `c`, `after` = `fullDocument` |
//! | update / replace | `u`, `before` = pre-image, `after` = post-image; nothing when the two are byte-equal (the normalizer skips an identical value too) |
//! | update whose looked-up post-image is null (`updateLookup`: deleted since) | nothing, logged and counted; the later delete carries the document |
//! | delete | `d`, `before` = pre-image (+ tombstone with `output.changelog.tombstones.on.delete`) |
//! | missing pre-image (`whenAvailable` on a collection without `changeStreamPreAndPostImages`), missing post-image under `whenAvailable` | a [`ConversionError`]: never an invented image |
//! | other events (DDL, drop, rename) | nothing, as with `publish.full.document.only` |

use std::time::{SystemTime, UNIX_EPOCH};

use connect_api::data::{Schema, SchemaType, Value};
use connect_api::{ConnectResult, Props, SchemaRef};
use connect_changelog::{DocumentEncoding, EnvelopeEncoder, Event, OutputFormat, SourceInfo};
use mongodb::bson::{Bson, Document};

use crate::bsonx;
use crate::config::Formatter;
use crate::error::ConversionError;
use crate::progress;

/// The `source.connector` of envelopes the MongoDB source writes.
pub const SOURCE_CONNECTOR: &str = "mongodb";

/// Builds envelope values for one connector's records.
pub struct ChangelogOutput {
    encoder: EnvelopeEncoder,
    /// The schema of the images handed to the encoder: the plain optional
    /// string of the source's JSON values, so the encoder stores them as the
    /// normalizer stores the same values read from Kafka.
    text: SchemaRef,
    pub tombstones: bool,
    /// For the progress counters.
    connector: String,
}

impl std::fmt::Debug for ChangelogOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangelogOutput")
            .field("format", &self.encoder.format())
            .field("tombstones", &self.tombstones)
            .finish_non_exhaustive()
    }
}

/// What a change event becomes.
#[derive(Debug)]
pub enum Change {
    /// An envelope, and whether a tombstone follows it.
    Envelope { value: String, tombstone: bool },
    /// Nothing is published (why is in the counters and logs).
    Nothing,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl ChangelogOutput {
    /// # Errors
    /// The encoder's converters reject their settings.
    pub fn new(
        connector: &str,
        schemas: bool,
        document: DocumentEncoding,
        tombstones: bool,
    ) -> ConnectResult<Self> {
        let encoder = EnvelopeEncoder::new(
            connector,
            OutputFormat::Json { schemas },
            document,
            &Props::new(),
        )?
        .with_source_connector(SOURCE_CONNECTOR);
        Ok(ChangelogOutput {
            encoder,
            text: Schema::primitive(SchemaType::String, true),
            tombstones,
            connector: connector.to_string(),
        })
    }

    fn image(&self, json: String) -> ConnectResult<Vec<u8>> {
        self.encoder
            .encode_doc(Some(&self.text), &Value::String(json))
    }

    fn encode(&self, ev: &Event<Vec<u8>>, src: &SourceInfo) -> ConnectResult<Option<String>> {
        let bytes = self.encoder.encode_json(ev, src, now_ns())?;
        // The JSON encoders only ever write UTF-8.
        Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// The envelope of a copied document (`op` `r`).
    ///
    /// # Errors
    /// The envelope could not be built (a converter error).
    pub fn snapshot(
        &self,
        topic: &str,
        db: &str,
        coll: &str,
        doc_json: String,
    ) -> ConnectResult<String> {
        let ev = Event::Create {
            after: self.image(doc_json)?,
            snapshot: true,
        };
        let src = SourceInfo {
            topic: topic.to_string(),
            partition: -1,
            offset: -1,
            // Unlike the normalizer, no Kafka record timestamp exists yet:
            // the read time stands in for it.
            timestamp: Some(now_ns() / 1_000_000),
            snapshot: true,
            db: Some(db.to_string()),
            collection: Some(coll.to_string()),
            cluster_time: None,
        };
        self.encode(&ev, &src)?
            .ok_or_else(|| connect_api::ConnectError::data("a snapshot read produced no envelope"))
    }

    /// The envelope of a change event, or why it cannot be built.
    pub fn event(
        &self,
        topic: &str,
        ev: &Document,
        formatter: Formatter,
        post_image_mode: Option<&str>,
    ) -> Result<Change, ConversionError> {
        let ns = ev.get_document("ns").ok();
        let db = ns.and_then(|n| n.get_str("db").ok()).unwrap_or_default();
        let coll = ns.and_then(|n| n.get_str("coll").ok()).unwrap_or_default();
        let op = ev.get_str("operationType").unwrap_or_default();
        let fail = |cause: String| ConversionError::of_event(ev, cause);
        let image = |field: &str| -> Result<Option<Vec<u8>>, ConversionError> {
            match ev.get(field) {
                Some(Bson::Document(d)) => self
                    .image(bsonx::doc_json(d, formatter))
                    .map(Some)
                    .map_err(|e| fail(format!("storing `{field}`: {e}"))),
                _ => Ok(None),
            }
        };
        let no_pre_image = || {
            fail(format!(
                "the event has no pre-image (fullDocumentBeforeChange); enable \
                 changeStreamPreAndPostImages on {db}.{coll} (collMod) before its changes \
                 happen, or set change.stream.full.document.before.change=required to fail \
                 at the server instead"
            ))
        };
        let event = match op {
            "insert" => match image("fullDocument")? {
                Some(after) => Event::Create {
                    after,
                    snapshot: false,
                },
                None => return Err(fail("an insert without fullDocument".into())),
            },
            "update" | "replace" => {
                let Some(after) = image("fullDocument")? else {
                    if post_image_mode == Some("updateLookup") {
                        // The document was deleted before the lookup; its
                        // delete event follows with the pre-image.
                        progress::incr(&self.connector, "changelog_skipped_no_post_image");
                        tracing::warn!(ns = %format!("{db}.{coll}"), id = %id_json(ev), "update skipped: its looked-up post-image is null (the document was deleted since); the delete event follows");
                        return Ok(Change::Nothing);
                    }
                    return Err(fail(format!(
                        "the {op} event has no post-image (fullDocument); enable \
                         changeStreamPreAndPostImages on {db}.{coll} (collMod), or use \
                         change.stream.full.document=updateLookup"
                    )));
                };
                let Some(before) = image("fullDocumentBeforeChange")? else {
                    return Err(no_pre_image());
                };
                if before == after {
                    progress::incr(&self.connector, "changelog_skipped_identical");
                    Event::SkippedIdentical
                } else {
                    Event::Update { before, after }
                }
            }
            "delete" => match image("fullDocumentBeforeChange")? {
                Some(before) => Event::Delete { before },
                None => return Err(no_pre_image()),
            },
            _ => return Ok(Change::Nothing),
        };
        let src = SourceInfo {
            topic: topic.to_string(),
            partition: -1,
            offset: -1,
            timestamp: ev
                .get_datetime("wallTime")
                .ok()
                .map(|d| d.timestamp_millis()),
            snapshot: false,
            db: Some(db.to_string()),
            collection: Some(coll.to_string()),
            cluster_time: ev.get_timestamp("clusterTime").ok().map(bsonx::ts_header),
        };
        let tombstone = self.tombstones && matches!(event, Event::Delete { .. });
        match self
            .encode(&event, &src)
            .map_err(|e| fail(format!("building the envelope: {e}")))?
        {
            Some(value) => Ok(Change::Envelope { value, tombstone }),
            None => Ok(Change::Nothing),
        }
    }
}

/// The event's `documentKey._id` as relaxed extended JSON, for messages.
pub fn id_json(ev: &Document) -> String {
    ev.get_document("documentKey")
        .ok()
        .and_then(|k| k.get("_id"))
        .map_or_else(|| "(none)".to_string(), bsonx::relaxed_json)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, Timestamp};
    use serde_json::Value as Json;

    const TOPIC: &str = "p.shop.orders";

    fn event(op: &str, pre: Option<Document>, post: Option<Bson>) -> Document {
        let mut e = doc! {
            "_id": {"_data": "8265F0"}, "operationType": op,
            "clusterTime": Timestamp { time: 1_710_000_000, increment: 7 },
            "wallTime": mongodb::bson::DateTime::from_millis(1_710_000_000_123),
            "ns": {"db": "shop", "coll": "orders"}, "documentKey": {"_id": 42},
        };
        if let Some(p) = post {
            e.insert("fullDocument", p);
        }
        if let Some(p) = pre {
            e.insert("fullDocumentBeforeChange", p);
        }
        e
    }

    fn out(schemas: bool) -> ChangelogOutput {
        ChangelogOutput::new("src", schemas, DocumentEncoding::Auto, true).unwrap()
    }

    fn envelope(c: Change) -> (Json, bool) {
        match c {
            Change::Envelope { value, tombstone } => {
                (serde_json::from_str(&value).unwrap(), tombstone)
            }
            Change::Nothing => panic!("no envelope"),
        }
    }

    /// What the normalizer writes for the same change: its encoder fed the
    /// source's upsert values (the documents as JSON strings).
    fn normalizer_bytes(schemas: bool, before: &Document, after: &Document) -> Json {
        let enc = EnvelopeEncoder::new(
            "norm",
            OutputFormat::Json { schemas },
            DocumentEncoding::Auto,
            &Props::new(),
        )
        .unwrap();
        let text = Schema::primitive(SchemaType::String, true);
        let stored = |d: &Document| {
            enc.encode_doc(
                Some(&text),
                &Value::String(bsonx::doc_json(d, Formatter::Default)),
            )
            .unwrap()
        };
        let src = SourceInfo {
            topic: TOPIC.into(),
            partition: 0,
            offset: 9,
            timestamp: None,
            snapshot: false,
            db: Some("shop".into()),
            collection: Some("orders".into()),
            cluster_time: Some("Timestamp(1710000000, 7)".into()),
        };
        let ev = Event::Update {
            before: stored(before),
            after: stored(after),
        };
        serde_json::from_slice(&enc.encode_json(&ev, &src, 1).unwrap().unwrap()).unwrap()
    }

    /// Drops what legitimately differs: who wrote it, where the input was,
    /// and the processing time.
    fn comparable(mut v: Json) -> Json {
        let body = if v.get("payload").is_some() {
            &mut v["payload"]
        } else {
            &mut v
        };
        for f in ["ts_ms", "ts_us", "ts_ns"] {
            body[f] = Json::Null;
        }
        for f in ["connector", "name", "topic", "partition", "offset"] {
            body["source"][f] = Json::Null;
        }
        v
    }

    #[test]
    fn same_envelope_as_the_normalizer_with_and_without_schemas() {
        let pre = doc! {"_id": 42, "qty": 1_i64, "tags": ["a"], "at": mongodb::bson::DateTime::from_millis(5)};
        let post = doc! {"_id": 42, "qty": 2_i64, "tags": ["a", "b"], "at": mongodb::bson::DateTime::from_millis(5)};
        for schemas in [false, true] {
            let (mine, _) = envelope(
                out(schemas)
                    .event(
                        TOPIC,
                        &event(
                            "update",
                            Some(pre.clone()),
                            Some(Bson::Document(post.clone())),
                        ),
                        Formatter::Default,
                        Some("whenAvailable"),
                    )
                    .unwrap(),
            );
            let theirs = normalizer_bytes(schemas, &pre, &post);
            assert_eq!(
                comparable(mine.clone()).to_string(),
                comparable(theirs).to_string(),
                "schemas={schemas}"
            );
            let body = if schemas { &mine["payload"] } else { &mine };
            assert_eq!(body["source"]["connector"], "mongodb");
            assert_eq!(body["source"]["name"], "src");
            assert_eq!(body["source"]["ts_ms"], 1_710_000_000_000i64);
            assert_eq!(body["source"]["ord"], 7);
        }
    }

    #[test]
    fn ops_images_and_tombstones() {
        let o = out(false);
        let d = |v: i32| doc! {"_id": 42, "v": v};
        let (c, t) = envelope(
            o.event(
                TOPIC,
                &event("insert", None, Some(Bson::Document(d(1)))),
                Formatter::Default,
                Some("updateLookup"),
            )
            .unwrap(),
        );
        assert_eq!(
            (c["op"].as_str(), c["before"].is_null(), t),
            (Some("c"), true, false)
        );
        assert_eq!(c["after"], serde_json::json!({"_id": 42, "v": 1}));
        let (u, _) = envelope(
            o.event(
                TOPIC,
                &event("replace", Some(d(1)), Some(Bson::Document(d(2)))),
                Formatter::Default,
                Some("updateLookup"),
            )
            .unwrap(),
        );
        assert_eq!(u["op"], "u");
        assert_eq!(
            (u["before"]["v"].as_i64(), u["after"]["v"].as_i64()),
            (Some(1), Some(2))
        );
        let (del, t) = envelope(
            o.event(
                TOPIC,
                &event("delete", Some(d(2)), None),
                Formatter::Default,
                Some("updateLookup"),
            )
            .unwrap(),
        );
        assert_eq!(
            (del["op"].as_str(), del["after"].is_null(), t),
            (Some("d"), true, true)
        );
        assert_eq!(del["before"]["v"], 2);
        let snap: Json = serde_json::from_str(
            &o.snapshot(TOPIC, "shop", "orders", r#"{"_id":7}"#.into())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (snap["op"].as_str(), snap["source"]["snapshot"].as_str()),
            (Some("r"), Some("true"))
        );
    }

    #[test]
    fn identical_images_and_vanished_documents_publish_nothing() {
        let o = out(false);
        let d = doc! {"_id": 42, "v": 1};
        let same = o
            .event(
                TOPIC,
                &event("update", Some(d.clone()), Some(Bson::Document(d.clone()))),
                Formatter::Default,
                Some("whenAvailable"),
            )
            .unwrap();
        assert!(matches!(same, Change::Nothing), "{same:?}");
        // updateLookup found nothing: deleted since, the delete follows.
        let gone = o
            .event(
                TOPIC,
                &event("update", Some(d.clone()), Some(Bson::Null)),
                Formatter::Default,
                Some("updateLookup"),
            )
            .unwrap();
        assert!(matches!(gone, Change::Nothing), "{gone:?}");
        let ddl = o
            .event(
                TOPIC,
                &event("drop", None, None),
                Formatter::Default,
                Some("updateLookup"),
            )
            .unwrap();
        assert!(matches!(ddl, Change::Nothing));
        let counts = progress::counts("src");
        assert!(counts["changelog_skipped_identical"] >= 1, "{counts:?}");
        assert!(counts["changelog_skipped_no_post_image"] >= 1, "{counts:?}");
    }

    #[test]
    fn missing_images_are_errors_not_inventions() {
        let o = out(false);
        let d = doc! {"_id": 42, "v": 1};
        for (ev, needle) in [
            (
                event("update", None, Some(Bson::Document(d.clone()))),
                "pre-image",
            ),
            (
                event(
                    "update",
                    Some(Document::new()),
                    Some(Bson::Document(d.clone())),
                )
                .tap_remove(),
                "pre-image",
            ),
            (event("delete", None, None), "pre-image"),
            (
                event("update", Some(d.clone()), Some(Bson::Null)),
                "post-image",
            ),
        ] {
            let e = o
                .event(TOPIC, &ev, Formatter::Default, Some("whenAvailable"))
                .unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("shop.orders") && msg.contains("_id 42") && msg.contains(needle),
                "{msg}"
            );
        }
    }

    trait TapRemove {
        fn tap_remove(self) -> Self;
    }
    impl TapRemove for Document {
        /// A null pre-image, as `whenAvailable` sends when none is stored.
        fn tap_remove(mut self) -> Self {
            self.insert("fullDocumentBeforeChange", Bson::Null);
            self
        }
    }
}
