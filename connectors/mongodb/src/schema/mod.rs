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
//! # One lattice for every writer: merging through the registry
//!
//! Several tasks write one collection's subject (chunks of one collection
//! spread over `tasks.max` tasks, the stream task, a restarted connector),
//! each inferring from the documents it sees. When a task's shape changes
//! it does not register its own version: it reads the subject's latest
//! version, merges its shape into it ([`infer::DocShape::merge_shape`], the
//! union by the same rules), registers the merge, and retries from a fresh
//! read when another writer got in first ([`publish`]). Its records are
//! then written with the merged schema, a superset of what it has seen.
//! The first record of a subject in a task does the same, which is how a
//! restart continues from the registry, for every subject name strategy:
//! the subject comes from the side's converter settings
//! (`<side>.converter.<side>.subject.name.strategy`) and the record name.
//!
//! The registry is the side's converter's (`key.converter.` /
//! `value.converter.schema.registry.url`, with its basic auth and TLS
//! settings), else the value converter's, else `output.schema.registry.url`.
//! Without one, each task infers alone from an empty shape, which a
//! registry set to BACKWARD may then reject; a warning says so.

pub mod explicit;
pub mod infer;
pub mod publish;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connect_api::config::Props;
use connect_api::data::{Schema, SchemaBuilder, SchemaRef, SchemaType, Struct, Value};
use connect_converters::avro::data::AvroDataConfig;
use connect_converters::avro::schema as avro_schema;
use connect_converters::registry::{RegistryClient, RegistryClientConfig};
use mongodb::bson::{Bson, Document};
use publish::{Layout, Publish, SideRegistry};

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
    /// The registry subject of the written schema (envelope or document).
    subject: String,
    /// Whether the shape went through the registry: the first record of a
    /// subject merges with the registered version even when its own
    /// fields add nothing.
    published: bool,
}

impl Inferred {
    fn new(shape: DocShape, with_envelope: bool, subject: String) -> Self {
        let schema = shape.connect_schema();
        let envelope = with_envelope.then(|| envelope_schema(&shape.name, Some(&schema)));
        Inferred {
            shape,
            schema,
            envelope,
            subject,
            published: false,
        }
    }

    fn layout(&self) -> Layout {
        if self.envelope.is_some() {
            Layout::Envelope
        } else {
            Layout::Document
        }
    }

    /// Folds a document in; when the shape changed, merges it with the
    /// registry's latest version ([`publish`]) and rebuilds the schemas.
    /// Unchanged shapes reuse one `Arc` (and the converter's caches).
    fn merge(&mut self, d: Option<&Document>, registry: Option<&SideRegistry>) {
        let changed = d.is_some_and(|d| self.shape.merge(d));
        let Some(registry) = registry else {
            if changed {
                self.rebuild();
            }
            return;
        };
        if !changed && self.published {
            return;
        }
        let job = Publish {
            registry: registry.clone(),
            subject: self.subject.clone(),
            local: self.shape.clone(),
            layout: self.layout(),
            schema_of: registered_schema,
        };
        match job.run_blocking() {
            Ok(merged) => {
                if !self.published {
                    tracing::info!(
                        subject = %self.subject,
                        "schema inference joined the subject's registered versions"
                    );
                }
                self.shape = merged;
            }
            Err(e @ publish::PublishError::Foreign { .. }) => {
                tracing::warn!(subject = %self.subject, "{e}")
            }
            // Writing on with the local schema: the converter registers it
            // and reports the registry's answer if it is refused.
            Err(e) => tracing::error!(
                subject = %self.subject,
                "could not merge the inferred schema with the registry's latest version: {e}"
            ),
        }
        self.published = true;
        self.rebuild();
    }

    fn rebuild(&mut self) {
        self.schema = self.shape.connect_schema();
        if self.envelope.is_some() {
            self.envelope = Some(envelope_schema(&self.shape.name, Some(&self.schema)));
        }
    }
}

/// The Connect schema registered for a shape: the document record or the
/// change-event envelope around it.
fn registered_schema(shape: &DocShape, layout: Layout) -> SchemaRef {
    let doc = shape.connect_schema();
    match layout {
        Layout::Document => doc,
        Layout::Envelope => envelope_schema(&shape.name, Some(&doc)),
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
    key_registry: Option<SideRegistry>,
    value_registry: Option<SideRegistry>,
    topics: Mutex<HashMap<String, TopicState>>,
}

impl std::fmt::Debug for SchemaOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaOutput")
            .field("value", &self.value)
            .field("key", &self.key)
            .field("key_registry", &self.key_registry.is_some())
            .field("value_registry", &self.value_registry.is_some())
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

/// One side's registry: the side's converter settings, else the value
/// converter's URL, else [`REGISTRY_URL_KEY`].
fn registry_from(props: &Props, side: &str) -> Result<Option<SideRegistry>, MongoError> {
    let own = format!("{side}.converter.schema.registry.url");
    let candidates = [
        own.as_str(),
        "value.converter.schema.registry.url",
        REGISTRY_URL_KEY,
    ];
    let Some((key, raw)) = candidates.iter().find_map(|k| {
        props
            .get(*k)
            .filter(|u| !u.trim().is_empty())
            .map(|u| (*k, u))
    }) else {
        return Ok(None);
    };
    // Credentials and TLS come from the converter whose URL is used.
    let auth_side = key
        .split('.')
        .next()
        .filter(|_| key != REGISTRY_URL_KEY)
        .unwrap_or("value");
    let urls = raw
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect();
    let user_info = publish::converter_prop(props, auth_side, "basic.auth.user.info")
        .filter(|_| {
            publish::converter_prop(props, auth_side, "basic.auth.credentials.source")
                .is_some_and(|s| s.eq_ignore_ascii_case("USER_INFO"))
        })
        .map(str::to_string);
    let ssl_prefix = format!("{auth_side}.converter.schema.registry.ssl.");
    let ssl: BTreeMap<String, String> = props
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(&ssl_prefix)
                .map(|s| (s.to_string(), v.clone()))
        })
        .collect();
    let client = RegistryClient::new(RegistryClientConfig {
        urls,
        user_info,
        url_credentials: false,
        request_timeout: Duration::from_secs(30),
        cache_capacity: 1000,
        ssl,
    })
    .map_err(|e| {
        config_err(
            key,
            format!("{e}; give one or more http(s) URLs, comma-separated"),
        )
    })?;
    let (data, strategy, normalize, register) =
        publish::side_settings(props, side, key == REGISTRY_URL_KEY)
            .map_err(|(k, m)| config_err(&k, m))?;
    Ok(Some(SideRegistry {
        client: Arc::new(client),
        data,
        strategy,
        normalize,
        register,
    }))
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
        let key_registry = registry_from(props, "key")?;
        let value_registry = registry_from(props, "value")?;
        let infers = (value_schema && matches!(value, ValueMode::Infer))
            || (key_schema && matches!(key, KeyMode::Infer));
        if infers && value_registry.is_none() {
            tracing::warn!(
                "schema inference without a schema registry URL (value.converter.schema.registry.url or {REGISTRY_URL_KEY}): inferred schemas restart empty after a restart, and a registry set to BACKWARD may reject them"
            );
        }
        Ok(Some(SchemaOutput {
            value,
            key,
            full_document_only,
            formatter,
            key_registry,
            value_registry,
            topics: Mutex::new(HashMap::new()),
        }))
    }

    /// The subject a side's converter writes a record named `record` to
    /// (TopicNameStrategy without a registry: only a label then).
    fn subject(&self, topic: &str, is_key: bool, record: &str) -> String {
        let registry = if is_key {
            &self.key_registry
        } else {
            &self.value_registry
        };
        registry
            .as_ref()
            .map(|r| r.subject(topic, is_key, record))
            .unwrap_or_else(|| format!("{topic}-{}", if is_key { "key" } else { "value" }))
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
            let name = format!("{}_Key", base_name(db, coll));
            let subject = self.subject(topic, true, &name);
            Inferred::new(DocShape::new(name), false, subject)
        });
        inferred.merge(Some(key_doc), self.key_registry.as_ref());
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
                    let name = base_name(db, coll);
                    let record = if envelope {
                        format!("{name}_ChangeStream")
                    } else {
                        name.clone()
                    };
                    let subject = self.subject(topic, false, &record);
                    Inferred::new(DocShape::new(name), envelope, subject)
                });
                let registry = self.value_registry.as_ref();
                if !envelope {
                    inferred.merge(Some(ev), registry);
                    let v = inferred.shape.encode(&inferred.schema, ev);
                    return (inferred.schema.clone(), v);
                }
                let full = ev.get_document("fullDocument").ok();
                // A delete has no document, but as a subject's first record
                // it still needs the registered version to write with.
                inferred.merge(full, registry);
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
        let json = |b: &Bson| Value::String(json_text(b, self.formatter));
        let mut s = Struct::new(schema.clone());
        let mut put = |name: &str, v: Value| {
            s.put(name, v);
        };
        if let Some(id) = ev.get("_id") {
            put("_id", Value::String(bsonx::relaxed_json(id)));
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
        for name in ["ns", "to"] {
            if let Ok(ns) = ev.get_document(name) {
                // The envelope's own field schema: building one per record
                // cost several allocations.
                let ns_schema = schema
                    .field(name)
                    .map(|f| f.schema.clone())
                    .unwrap_or_else(namespace_schema);
                let mut n = Struct::new(ns_schema);
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
            put("clusterTime", Value::String(bsonx::relaxed_json(t)));
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

/// A value's JSON text in the formatter's form. The non-canonical
/// formatters are written straight into the string, which is the same text
/// as building the JSON tree first (the JSON snapshot path relies on this
/// too) without the tree's allocations.
fn json_text(b: &Bson, f: Formatter) -> String {
    match f {
        Formatter::Extended => bsonx::to_json(b, f).to_string(),
        _ => {
            let mut out = String::with_capacity(64);
            bsonx::write_json(&mut out, b, f);
            out
        }
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
