//! Schema'd output (`output.format.key` / `output.format.value` = `schema`):
//! Connect structs that the AvroConverter (or any schema'd converter)
//! writes, with **one evolving, backward-compatible schema per collection**.
//!
//! # Three value modes, as in the official connector
//!
//! * `output.schema.value` (Avro schema JSON): the value is mapped onto that
//!   schema field by field ([`explicit`]); a string field receives the
//!   value's JSON (`output.json.formatter`) when it is not a string.
//! * `output.schema.infer.value=true`: the schema is inferred ([`infer`]).
//! * neither: the official default change-stream schema, whose
//!   document-bearing fields are JSON strings.
//!
//! Change events keep the official schema'd layout (record `ChangeStream`:
//! `_id`, `operationType`, `fullDocumentBeforeChange`, `fullDocument`,
//! `ns{db,coll}`, `to{db,coll}`, `documentKey`, `updateDescription{...}`,
//! `clusterTime`, `wallTime`, `txnNumber`, `lsid{id,uid}`); with inference
//! only `fullDocument` carries the inferred record, the other
//! document-bearing fields stay JSON strings as in the official schema.
//! With `publish.full.document.only=true` the value is the inferred
//! document record itself. Keys (`output.format.key=schema`) are the
//! inferred record `{_id: <mapped _id>}` unless `output.schema.key` names
//! a schema; the official default key schema would map the change event's
//! resume token, which breaks compaction and joins.
//!
//! # Inference: a lattice that only climbs legal steps
//!
//! Per collection (per topic) we keep one [`infer::DocShape`]: the union of
//! every field seen so far, in first-seen order, each **optional with a
//! null default**. A field's shape is a set of *members*, written as the
//! field's type when there is one member and as the Avro union
//! `["null", m1, m2, ...]` (a Connect `io.confluent.connect.avro.Union`)
//! otherwise. Folding a document in can only:
//!
//! 1. add a field (optional, default null) — readers of the new version
//!    fill it with null for old data;
//! 2. widen a number member int → long → double — Avro's own promotions;
//! 3. add a member to the field's union — a reader union that contains
//!    every writer branch reads the old data;
//! 4. do 1–3 inside a nested record or an array's element type.
//!
//! So version N+1 reads everything written with version N: the registry's
//! BACKWARD check passes by construction. Nothing is ever removed, renamed
//! or narrowed, and `long → string` style changes never happen.
//!
//! A union can hold one member per Avro type. Where a value has the same
//! Avro type as an existing member but another meaning (a date where
//! numbers were — both `long` —, an ObjectId where strings were), it goes
//! to the fallback member `io.connectd.mongodb.ExtendedJson{json}`, the
//! value as canonical extended JSON v2. Because the fallback is a named
//! record, it is never confused with a real string.
//!
//! # BSON → Avro mapping
//!
//! | BSON | Avro (Connect) |
//! |---|---|
//! | double / int32 / int64 | `double` / `int` / `long` (widened as above) |
//! | string, symbol | `string` |
//! | boolean | `boolean` |
//! | document | nested record, full name `<base>.<field>.<field>...` (stable per path) |
//! | array | `array` of the union of its elements' shapes; elements of an empty or all-null array are `["null"]` until one is seen |
//! | ObjectId | `string` (24 hex digits), `connect.name` `io.connectd.mongodb.ObjectId` |
//! | Decimal128 | `string` (its exact decimal text, e.g. `"1.50"`, `"NaN"`), `connect.name` `io.connectd.mongodb.Decimal128` |
//! | date | `long` `timestamp-millis` (Connect `Timestamp`) |
//! | timestamp | record `io.connectd.mongodb.BsonTimestamp{t: long, i: long}` |
//! | binary (subtype 4, 16 bytes) | `string` (RFC 4122 form), `connect.name` `io.connectd.mongodb.UUID` |
//! | other binary | `bytes` |
//! | regex | record `io.connectd.mongodb.BsonRegex{pattern, options}` |
//! | min/max key, JavaScript, DBPointer | `io.connectd.mongodb.ExtendedJson{json}` |
//! | null, undefined, missing | null (all three read the same) |
//!
//! Decimal128 is a string and not Connect's `Decimal` because a Connect
//! decimal has one fixed scale per schema while Decimal128 values of one
//! field carry any exponent (and NaN/±Infinity): a scale change would be an
//! incompatible schema change and a fixed scale would round.
//!
//! Field names that are not Avro names are sanitized (see
//! [`infer::sanitize`]); the original name is kept in the record's
//! `connect.parameters` (`io.connectd.mongodb.field.<avro>`) so it survives
//! restarts.
//!
//! # State across restarts
//!
//! The first record of a topic loads the latest version of the subject
//! `<topic>-value` (and `<topic>-key`; TopicNameStrategy) from the schema
//! registry and continues inference from it. The registry comes from the
//! connector's `value.converter.schema.registry.url` (with
//! `value.converter.basic.auth.user.info`), else `output.schema.registry.url`.
//! Without a registry each task starts from an empty shape, which a
//! registry set to BACKWARD may then reject; a warning says so.

pub mod explicit;
pub mod infer;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connect_api::config::Props;
use connect_api::data::{Schema, SchemaBuilder, SchemaRef, SchemaType, Struct, Value};
use connect_converters::avro::data::AvroDataConfig;
use connect_converters::avro::schema as avro_schema;
use connect_converters::registry::{RegistryClient, RegistryClientConfig};
use mongodb::bson::{Bson, Document};

use crate::bsonx;
use crate::config::Formatter;
use crate::error::MongoError;
use infer::DocShape;

/// The connectd key for the registry URL when the connector's own config
/// has no `value.converter.schema.registry.url`.
pub const REGISTRY_URL_KEY: &str = "output.schema.registry.url";

/// How the value is shaped.
#[derive(Debug, Clone)]
enum ValueMode {
    Infer,
    Explicit(SchemaRef),
    /// The official default change-stream schema (documents as strings),
    /// built once: the converter caches its Avro form per schema `Arc`.
    Default(SchemaRef),
}

#[derive(Debug, Clone)]
enum KeyMode {
    Infer,
    Explicit(SchemaRef),
}

/// An inferred record and the Connect schema of its current version.
#[derive(Debug)]
struct Inferred {
    shape: DocShape,
    schema: SchemaRef,
    /// The change-event envelope around `schema` (value of non-full-doc events).
    envelope: Option<SchemaRef>,
}

impl Inferred {
    fn new(shape: DocShape, with_envelope: bool) -> Self {
        let schema = shape.connect_schema();
        let envelope = with_envelope.then(|| envelope_schema(&shape.name, Some(&schema)));
        Inferred {
            shape,
            schema,
            envelope,
        }
    }

    /// Folds a document in; rebuilds the schemas only when the shape changed,
    /// so the steady state reuses one `Arc` (and the converter's caches).
    fn merge(&mut self, d: &Document) {
        if self.shape.merge(d) {
            self.schema = self.shape.connect_schema();
            if self.envelope.is_some() {
                self.envelope = Some(envelope_schema(&self.shape.name, Some(&self.schema)));
            }
        }
    }
}

#[derive(Debug, Default)]
struct TopicState {
    value: Option<Inferred>,
    key: Option<Inferred>,
}

/// Schema'd key and value production for one task.
pub struct SchemaOutput {
    value: ValueMode,
    key: KeyMode,
    full_document_only: bool,
    formatter: Formatter,
    registry: Option<Arc<RegistryClient>>,
    topics: Mutex<HashMap<String, TopicState>>,
}

impl std::fmt::Debug for SchemaOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaOutput")
            .field("value", &self.value)
            .field("key", &self.key)
            .field("registry", &self.registry.is_some())
            .finish()
    }
}

fn config_err(key: &str, message: impl Into<String>) -> MongoError {
    MongoError::Config {
        key: key.into(),
        message: message.into(),
    }
}

/// Parses an Avro schema given in the config into its Connect form.
fn parse_avro(key: &str, text: &str) -> Result<SchemaRef, MongoError> {
    let fix = "give the schema as Avro schema JSON text, e.g. {\"type\":\"record\",\"name\":\"V\",\"fields\":[{\"name\":\"_id\",\"type\":\"string\"}]}";
    let (avro, names) = avro_schema::parse(text)
        .map_err(|e| config_err(key, format!("not a valid Avro schema ({}); {fix}", e.0)))?;
    let schema = AvroDataConfig::default()
        .to_connect_schema(&avro, &names, None)
        .map_err(|e| config_err(key, format!("the Avro schema has no Connect form: {e}")))?;
    if schema.schema_type != SchemaType::Struct {
        return Err(config_err(
            key,
            format!(
                "the schema must be an Avro record, not {:?}; {fix}",
                schema.schema_type
            ),
        ));
    }
    Ok(schema)
}

/// A registry client from the connector's converter settings or
/// [`REGISTRY_URL_KEY`].
fn registry_from(props: &Props) -> Result<Option<Arc<RegistryClient>>, MongoError> {
    let (key, raw) = match props.get("value.converter.schema.registry.url") {
        Some(u) if !u.trim().is_empty() => ("value.converter.schema.registry.url", u),
        _ => match props.get(REGISTRY_URL_KEY) {
            Some(u) if !u.trim().is_empty() => (REGISTRY_URL_KEY, u),
            _ => return Ok(None),
        },
    };
    let urls = raw
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect();
    let user_info = props
        .get("value.converter.basic.auth.user.info")
        .filter(|_| {
            props
                .get("value.converter.basic.auth.credentials.source")
                .is_some_and(|s| s.eq_ignore_ascii_case("USER_INFO"))
        })
        .cloned();
    let ssl: BTreeMap<String, String> = props
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("value.converter.schema.registry.ssl.")
                .map(|s| (s.to_string(), v.clone()))
        })
        .collect();
    RegistryClient::new(RegistryClientConfig {
        urls,
        user_info,
        url_credentials: false,
        request_timeout: Duration::from_secs(30),
        cache_capacity: 1000,
        ssl,
    })
    .map(|c| Some(Arc::new(c)))
    .map_err(|e| {
        config_err(
            key,
            format!("{e}; give one or more http(s) URLs, comma-separated"),
        )
    })
}

impl SchemaOutput {
    /// `None` when neither key nor value is schema'd.
    pub fn from_props(
        props: &Props,
        key_schema: bool,
        value_schema: bool,
        full_document_only: bool,
        formatter: Formatter,
    ) -> Result<Option<SchemaOutput>, MongoError> {
        if !key_schema && !value_schema {
            return Ok(None);
        }
        let text = |k: &str| props.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
        let infer = props
            .get("output.schema.infer.value")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let value = match (infer, text("output.schema.value")) {
            (true, _) => ValueMode::Infer,
            (false, Some(t)) => ValueMode::Explicit(parse_avro("output.schema.value", t)?),
            (false, None) if value_schema && full_document_only => {
                return Err(config_err(
                    "output.schema.value",
                    "output.format.value=schema with publish.full.document.only=true needs a schema for the document: set output.schema.infer.value=true, or give output.schema.value",
                ))
            }
            (false, None) => {
                ValueMode::Default(envelope_schema("io.connectd.mongodb.ChangeStream", None))
            }
        };
        let key = match text("output.schema.key") {
            Some(t) => KeyMode::Explicit(parse_avro("output.schema.key", t)?),
            None => KeyMode::Infer,
        };
        let registry = registry_from(props)?;
        let infers = (value_schema && matches!(value, ValueMode::Infer))
            || (key_schema && matches!(key, KeyMode::Infer));
        if infers && registry.is_none() {
            tracing::warn!(
                "schema inference without a schema registry URL (value.converter.schema.registry.url or {REGISTRY_URL_KEY}): inferred schemas restart empty after a restart, and a registry set to BACKWARD may reject them"
            );
        }
        Ok(Some(SchemaOutput {
            value,
            key,
            full_document_only,
            formatter,
            registry,
            topics: Mutex::new(HashMap::new()),
        }))
    }

    /// The latest registered schema of a subject as Connect schema, `None`
    /// when the subject has none (or no registry is configured).
    ///
    /// Records are built in synchronous code that may run on the async
    /// runtime, so the one request per subject and task runs on its own
    /// thread with its own small runtime instead of blocking a runtime
    /// worker inside `block_on`.
    fn registered(&self, subject: &str) -> Option<SchemaRef> {
        let client = self.registry.clone()?;
        let subj = subject.to_string();
        let fetched = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            match rt.block_on(client.latest(&subj)) {
                Ok(l) => Ok(Some(l.schema.to_string())),
                Err(e) if e.status() == Some(404) => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        })
        .join()
        .unwrap_or_else(|_| Err("the registry lookup thread panicked".into()));
        let text = match fetched {
            Ok(Some(t)) => t,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(
                    subject,
                    "cannot load the registered schema, inference starts empty: {e}"
                );
                return None;
            }
        };
        let parsed = avro_schema::parse(&text)
            .map_err(|e| e.0)
            .and_then(|(a, n)| {
                AvroDataConfig::default()
                    .to_connect_schema(&a, &n, None)
                    .map_err(|e| e.to_string())
            });
        match parsed {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(subject, "the registered schema cannot seed inference: {e}");
                None
            }
        }
    }

    /// A document shape seeded from the registry, else empty; `field`
    /// names the envelope field holding the document (`fullDocument`).
    fn seed(&self, subject: &str, name: String, field: Option<&str>) -> DocShape {
        let Some(s) = self.registered(subject) else {
            return DocShape::new(name);
        };
        let doc = match field {
            Some(f) => s.field(f).map(|f| f.schema.as_ref()),
            None => Some(s.as_ref()),
        };
        match doc.map(infer::doc_from_connect) {
            Some(Ok(shape)) => {
                tracing::info!(
                    subject,
                    "schema inference continues from the registry's latest version"
                );
                shape
            }
            Some(Err(e)) => {
                tracing::warn!(subject, "the registered schema was not inferred by connectd ({}), inference starts empty", e.0);
                DocShape::new(name)
            }
            None => DocShape::new(name),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TopicState>> {
        // A panic while holding the lock leaves the shapes consistent (they
        // change only by whole merges), so a poisoned lock is still usable.
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key of a record: `key_doc` is `{_id: ...}` (or the resume token).
    pub fn key(&self, topic: &str, db: &str, coll: &str, key_doc: &Document) -> (SchemaRef, Value) {
        if let KeyMode::Explicit(s) = &self.key {
            return (
                s.clone(),
                explicit::to_schema(Some(&Bson::Document(key_doc.clone())), s, self.formatter),
            );
        }
        let mut topics = self.lock();
        let st = topics.entry(topic.to_string()).or_default();
        let inferred = st.key.get_or_insert_with(|| {
            let shape = self.seed(
                &format!("{topic}-key"),
                format!("{}_Key", base_name(db, coll)),
                None,
            );
            Inferred::new(shape, false)
        });
        inferred.merge(key_doc);
        let v = inferred.shape.encode(&inferred.schema, key_doc);
        (inferred.schema.clone(), v)
    }

    /// The value of a record: the bare document with
    /// `publish.full.document.only`, else the change event `ev` (snapshot
    /// reads come as the official connector's copy events).
    pub fn value(&self, topic: &str, db: &str, coll: &str, ev: &Document) -> (SchemaRef, Value) {
        match &self.value {
            ValueMode::Explicit(s) => (
                s.clone(),
                explicit::to_schema(Some(&Bson::Document(ev.clone())), s, self.formatter),
            ),
            ValueMode::Default(schema) => {
                let v = self.envelope_value(schema, ev, None);
                (schema.clone(), v)
            }
            ValueMode::Infer => {
                let mut topics = self.lock();
                let st = topics.entry(topic.to_string()).or_default();
                let envelope = !self.full_document_only;
                let inferred = st.value.get_or_insert_with(|| {
                    let shape = self.seed(
                        &format!("{topic}-value"),
                        base_name(db, coll),
                        envelope.then_some("fullDocument"),
                    );
                    Inferred::new(shape, envelope)
                });
                if !envelope {
                    inferred.merge(ev);
                    let v = inferred.shape.encode(&inferred.schema, ev);
                    return (inferred.schema.clone(), v);
                }
                let full = ev.get_document("fullDocument").ok();
                if let Some(d) = full {
                    inferred.merge(d);
                }
                let (Some(schema), doc_schema) =
                    (inferred.envelope.clone(), inferred.schema.clone())
                else {
                    return (inferred.schema.clone(), Value::Null);
                };
                let full_value = full.map(|d| inferred.shape.encode(&doc_schema, d));
                let v = self.envelope_value(&schema, ev, full_value);
                (schema, v)
            }
        }
    }

    /// The envelope struct of a change event; `full` is the inferred
    /// `fullDocument`, or `None` to write it as a JSON string.
    fn envelope_value(&self, schema: &SchemaRef, ev: &Document, full: Option<Value>) -> Value {
        let json = |b: &Bson| Value::String(bsonx::to_json(b, self.formatter).to_string());
        let mut s = Struct::new(schema.clone());
        let mut put = |name: &str, v: Value| {
            s.put(name, v);
        };
        if let Some(id) = ev.get("_id") {
            put(
                "_id",
                Value::String(id.clone().into_relaxed_extjson().to_string()),
            );
        }
        if let Ok(op) = ev.get_str("operationType") {
            put("operationType", Value::String(op.to_string()));
        }
        if let Some(b) = ev
            .get("fullDocumentBeforeChange")
            .filter(|b| !matches!(b, Bson::Null))
        {
            put("fullDocumentBeforeChange", json(b));
        }
        match (full, ev.get("fullDocument")) {
            (Some(v), _) => put("fullDocument", v),
            (None, Some(b))
                if !matches!(b, Bson::Null) && schema_is_string(schema, "fullDocument") =>
            {
                put("fullDocument", json(b))
            }
            _ => {}
        }
        let ns_schema = namespace_schema();
        for name in ["ns", "to"] {
            if let Ok(ns) = ev.get_document(name) {
                let mut n = Struct::new(ns_schema.clone());
                if let Ok(db) = ns.get_str("db") {
                    n.put("db", Value::String(db.to_string()));
                }
                if let Ok(c) = ns.get_str("coll") {
                    n.put("coll", Value::String(c.to_string()));
                }
                put(name, Value::Struct(n));
            }
        }
        if let Some(k) = ev.get("documentKey") {
            put("documentKey", json(k));
        }
        if let Ok(ud) = ev.get_document("updateDescription") {
            put("updateDescription", update_description(ud, self.formatter));
        }
        if let Some(t) = ev.get("clusterTime") {
            put(
                "clusterTime",
                Value::String(t.clone().into_relaxed_extjson().to_string()),
            );
        }
        if let Ok(w) = ev.get_datetime("wallTime") {
            put("wallTime", Value::Int64(w.timestamp_millis()));
        }
        match ev.get("txnNumber") {
            Some(Bson::Int64(n)) => put("txnNumber", Value::Int64(*n)),
            Some(Bson::Int32(n)) => put("txnNumber", Value::Int64(i64::from(*n))),
            _ => {}
        }
        if let Ok(l) = ev.get_document("lsid") {
            let mut ls = Struct::new(lsid_schema());
            if let Some(id) = l.get("id") {
                ls.put("id", json(id));
            }
            if let Some(uid) = l.get("uid") {
                ls.put("uid", json(uid));
            }
            put("lsid", Value::Struct(ls));
        }
        Value::Struct(s)
    }
}

fn schema_is_string(s: &Schema, field: &str) -> bool {
    s.field(field)
        .is_some_and(|f| f.schema.schema_type == SchemaType::String)
}

/// Avro name segment for a database or collection name.
fn name_segment(s: &str) -> String {
    infer::sanitize(s)
}

/// Record full name of a collection's documents.
pub fn base_name(db: &str, coll: &str) -> String {
    format!(
        "io.connectd.mongodb.{}.{}",
        name_segment(db),
        name_segment(coll)
    )
}

fn opt_string() -> SchemaRef {
    Schema::primitive(SchemaType::String, true)
}

fn namespace_schema() -> SchemaRef {
    SchemaBuilder::struct_()
        .name("io.connectd.mongodb.Namespace")
        .optional()
        .field("db", opt_string())
        .field("coll", opt_string())
        .build()
}

fn lsid_schema() -> SchemaRef {
    SchemaBuilder::struct_()
        .name("io.connectd.mongodb.Lsid")
        .optional()
        .field("id", opt_string())
        .field("uid", opt_string())
        .build()
}

fn truncated_schema() -> SchemaRef {
    SchemaBuilder::struct_()
        .name("io.connectd.mongodb.TruncatedArray")
        .optional()
        .field("field", opt_string())
        .field("newSize", Schema::primitive(SchemaType::Int32, true))
        .build()
}

fn update_description_schema() -> SchemaRef {
    SchemaBuilder::struct_()
        .name("io.connectd.mongodb.UpdateDescription")
        .optional()
        .field("updatedFields", opt_string())
        .field(
            "removedFields",
            SchemaBuilder::array(opt_string()).optional().build(),
        )
        .field(
            "truncatedArrays",
            SchemaBuilder::array(truncated_schema()).optional().build(),
        )
        .field("disambiguatedPaths", opt_string())
        .build()
}

fn update_description(ud: &Document, f: Formatter) -> Value {
    let mut s = Struct::new(update_description_schema());
    if let Ok(u) = ud.get_document("updatedFields") {
        s.put("updatedFields", Value::String(bsonx::doc_json(u, f)));
    }
    if let Ok(r) = ud.get_array("removedFields") {
        let names = r
            .iter()
            .map(|b| match b {
                Bson::String(s) => Value::String(s.clone()),
                other => Value::String(other.to_string()),
            })
            .collect();
        s.put("removedFields", Value::Array(names));
    }
    if let Ok(t) = ud.get_array("truncatedArrays") {
        let ts = truncated_schema();
        let items = t
            .iter()
            .filter_map(Bson::as_document)
            .map(|d| {
                let mut x = Struct::new(ts.clone());
                if let Ok(field) = d.get_str("field") {
                    x.put("field", Value::String(field.to_string()));
                }
                if let Some(n) = d.get("newSize").and_then(|n| match n {
                    Bson::Int32(n) => Some(*n),
                    Bson::Int64(n) => i32::try_from(*n).ok(),
                    _ => None,
                }) {
                    x.put("newSize", Value::Int32(n));
                }
                Value::Struct(x)
            })
            .collect();
        s.put("truncatedArrays", Value::Array(items));
    }
    if let Ok(d) = ud.get_document("disambiguatedPaths") {
        s.put("disambiguatedPaths", Value::String(bsonx::doc_json(d, f)));
    }
    Value::Struct(s)
}

/// The official change-event layout; `full` is the inferred document
/// schema, `None` for the default schema's JSON-string `fullDocument`.
fn envelope_schema(doc_name: &str, full: Option<&SchemaRef>) -> SchemaRef {
    let full_schema = match full {
        Some(s) => Arc::new(s.to_optional()),
        None => opt_string(),
    };
    let name = if full.is_some() {
        format!("{doc_name}_ChangeStream")
    } else {
        doc_name.to_string()
    };
    SchemaBuilder::struct_()
        .name(name)
        .field("_id", opt_string())
        .field("operationType", opt_string())
        .field("fullDocumentBeforeChange", opt_string())
        .field("fullDocument", full_schema)
        .field("ns", namespace_schema())
        .field("to", namespace_schema())
        .field("documentKey", opt_string())
        .field("updateDescription", update_description_schema())
        .field("clusterTime", opt_string())
        .field("wallTime", Schema::primitive(SchemaType::Int64, true))
        .field("txnNumber", Schema::primitive(SchemaType::Int64, true))
        .field("lsid", lsid_schema())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_converters::avro::compat;
    use mongodb::bson::doc;

    fn props(kv: &[(&str, &str)]) -> Props {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn output(kv: &[(&str, &str)], full_only: bool) -> SchemaOutput {
        SchemaOutput::from_props(&props(kv), true, true, full_only, Formatter::Default)
            .expect("valid")
            .expect("schema output")
    }

    fn avro_text(s: &SchemaRef) -> String {
        AvroDataConfig::default()
            .from_connect_schema(s)
            .expect("avro")
            .to_json_string()
    }

    #[test]
    fn invalid_output_schema_value_names_the_key_and_the_fix() {
        let e = SchemaOutput::from_props(
            &props(&[("output.schema.value", "{not json")]),
            false,
            true,
            false,
            Formatter::Default,
        )
        .expect_err("invalid");
        let msg = e.to_string();
        assert!(msg.contains("output.schema.value"), "{msg}");
        assert!(msg.contains("Avro schema JSON"), "{msg}");
        let e = SchemaOutput::from_props(&props(&[]), false, true, true, Formatter::Default)
            .expect_err("full doc only needs a schema");
        assert!(e.to_string().contains("output.schema.infer.value=true"));
    }

    #[test]
    fn every_new_version_is_backward_compatible_with_the_previous() {
        let o = output(&[("output.schema.infer.value", "true")], true);
        let docs = [
            doc! {"_id": 1, "a": 1},
            doc! {"_id": 2, "a": 2_i64, "b": "x"},
            doc! {"_id": 3, "a": 2.5, "n": {"x": 1}},
            doc! {"_id": 4, "a": "now a string", "n": {"y": [1, "z"]}},
            doc! {"_id": 5, "a": {"nested": true}, "n": 7},
            doc! {"_id": 6, "a": mongodb::bson::DateTime::from_millis(1), "n": null, "e": []},
            doc! {"_id": 7, "e": [{"k": 1}], "b": mongodb::bson::oid::ObjectId::new()},
        ];
        let mut prev: Option<String> = None;
        let mut versions = 0;
        for d in &docs {
            let (s, _) = o.value("t", "db", "c", d);
            let text = avro_text(&s);
            if prev.as_deref() != Some(text.as_str()) {
                versions += 1;
                if let Some(p) = &prev {
                    let (w, wn) = avro_schema::parse(p).expect("writer");
                    let (r, rn) = avro_schema::parse(&text).expect("reader");
                    let res = compat::check(&r, &rn, &w, &wn);
                    assert!(res.is_ok(), "{p}\n  ->\n{text}\n{res:?}");
                }
                prev = Some(text);
            }
        }
        assert_eq!(versions, docs.len());
    }

    #[test]
    fn inferred_state_survives_the_registry_text_round_trip() {
        // What a restart does: Avro text from the registry → Connect → shape.
        let o = output(&[("output.schema.infer.value", "true")], false);
        let docs = [
            doc! {"_id": 1, "a-b": 1, "e": [], "n": {"x": [1, "y", {"z": 1}]}},
            doc! {"_id": mongodb::bson::oid::ObjectId::new(), "n": 5, "m": mongodb::bson::Bson::MaxKey},
            doc! {"_id": "s", "t": mongodb::bson::Timestamp { time: 1, increment: 2 }, "d": mongodb::bson::DateTime::from_millis(3)},
        ];
        let mut schema = None;
        for d in &docs {
            let ev = doc! {"operationType": "insert", "fullDocument": d.clone()};
            schema = Some(o.value("t", "db", "c", &ev).0);
        }
        let text = avro_text(&schema.expect("schema"));
        let (a, n) = avro_schema::parse(&text).expect("parse");
        let back = AvroDataConfig::default()
            .to_connect_schema(&a, &n, None)
            .expect("connect");
        let full = back.field("fullDocument").expect("fullDocument");
        let rebuilt = infer::doc_from_connect(&full.schema).expect("rebuilt");
        let topics = o.lock();
        let kept = &topics
            .get("t")
            .and_then(|t| t.value.as_ref())
            .expect("state")
            .shape;
        assert_eq!(&rebuilt, kept, "{text}");
    }

    #[test]
    fn change_events_follow_the_official_layout() {
        let o = output(&[("output.schema.infer.value", "true")], false);
        let ev = doc! {
            "_id": {"_data": "82AB"}, "operationType": "update",
            "ns": {"db": "shop", "coll": "orders"}, "documentKey": {"_id": 1},
            "fullDocument": {"_id": 1, "qty": 4},
            "updateDescription": {"updatedFields": {"qty": 4}, "removedFields": ["x"], "truncatedArrays": []},
            "clusterTime": mongodb::bson::Timestamp { time: 5, increment: 1 },
        };
        let (s, v) = o.value("t", "shop", "orders", &ev);
        assert_eq!(
            s.name.as_deref(),
            Some("io.connectd.mongodb.shop.orders_ChangeStream")
        );
        let Value::Struct(v) = v else {
            panic!("struct")
        };
        assert_eq!(
            v.get("operationType"),
            Some(&Value::String("update".into()))
        );
        let Some(Value::Struct(fd)) = v.get("fullDocument") else {
            panic!("inferred fullDocument")
        };
        assert_eq!(fd.get("qty"), Some(&Value::Int32(4)));
        assert_eq!(
            v.get("documentKey"),
            Some(&Value::String(r#"{"_id":1}"#.into()))
        );
        let (ks, k) = o.key("t", "shop", "orders", &doc! {"_id": 1});
        assert_eq!(
            ks.name.as_deref(),
            Some("io.connectd.mongodb.shop.orders_Key")
        );
        let Value::Struct(k) = k else { panic!("key") };
        assert_eq!(k.get("_id"), Some(&Value::Int32(1)));
        // The Avro text is valid and registers as one schema.
        avro_schema::parse(&avro_text(&s)).expect("parses");
    }

    #[test]
    fn default_value_mode_writes_documents_as_json_strings() {
        let o = output(&[], false);
        let ev = doc! {"_id": {"_data": "82AB"}, "operationType": "insert", "fullDocument": {"_id": 1, "a": 2_i64}};
        let (s1, _) = o.value("t", "d", "c", &ev);
        let (s2, v) = o.value("t", "d", "c", &ev);
        // One schema instance: the converter caches its Avro form per Arc.
        assert!(Arc::ptr_eq(&s1, &s2));
        let Value::Struct(v) = v else {
            panic!("struct")
        };
        assert_eq!(
            v.get("fullDocument"),
            Some(&Value::String(
                r#"{"_id":1,"a":{"$numberLong":"2"}}"#.into()
            ))
        );
    }

    #[test]
    fn explicit_value_schema_is_used_as_given() {
        let o = output(
            &[(
                "output.schema.value",
                r#"{"type":"record","name":"V","fields":[{"name":"_id","type":"long"},{"name":"name","type":["null","string"],"default":null},{"name":"tags","type":["null","string"],"default":null}]}"#,
            )],
            true,
        );
        let (s, v) = o.value(
            "t",
            "d",
            "c",
            &doc! {"_id": 3, "name": "Ada", "tags": ["a"]},
        );
        assert_eq!(s.name.as_deref(), Some("V"));
        let Value::Struct(v) = v else {
            panic!("struct")
        };
        assert_eq!(v.get("_id"), Some(&Value::Int64(3)));
        assert_eq!(v.get("name"), Some(&Value::String("Ada".into())));
        assert_eq!(v.get("tags"), Some(&Value::String(r#"["a"]"#.into())));
    }
}
