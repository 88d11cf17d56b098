//! The Debezium envelope (`before`, `after`, `source`, `op`, `ts_ms`,
//! `ts_us`, `ts_ns`, `transaction`) and its serializations, plus the stored
//! form of a document.
//!
//! Documents are stored self-describing, so a stored `before` can be rebuilt
//! in any output format without the input's converter, and byte-stable for
//! equal inputs, so "identical" is a byte comparison: a tag byte, then
//! either the raw text (`T`, or `O` when it is one JSON object: a string
//! value with the plain optional string schema, the MongoDB source's JSON
//! documents, kept as-is to avoid escaping every document twice) or JsonConverter-with-schemas bytes (`J`: anything
//! else, exactly what Connect's JsonConverter reads back).
//!
//! Schema'd outputs (JSON with schemas, Avro) are built as one Connect struct
//! named `<ns>.Envelope` (version 2), `<ns>` = the input topic as an Avro
//! namespace, and serialized by the project's JsonConverter or AvroConverter,
//! so the bytes and the registered schema are what Connect with Debezium
//! would produce. Schemaless JSON is assembled from JsonConverter pieces so
//! that JSON documents can be nested as objects (Flink's `debezium-json`
//! maps columns from them); JSON with schemas nests them too, as structs
//! with a schema inferred from each event's images (`crate::infer`).

use std::sync::{Arc, Mutex};

use connect_api::data::{Schema, SchemaBuilder, SchemaType, Struct};
use connect_api::{
    ConnectError, ConnectResult, Converter, Headers, Props, SchemaAndValue, SchemaRef, Value,
};
use connect_converters::{AvroConverter, JsonConverter};

use crate::{DocumentEncoding, Event, OutputFormat};

/// Debezium's semantic name for JSON text.
pub const JSON_SCHEMA_NAME: &str = "io.debezium.data.Json";
pub const SOURCE_SCHEMA_NAME: &str = "io.connectd.normalizer.Source";
pub const BLOCK_SCHEMA_NAME: &str = "event.block";
const ENVELOPE_VERSION: i32 = 2;
/// Stored document: raw text of a plain optional string.
const DOC_TEXT: u8 = b'T';
/// Same, and the text is one JSON object (checked once, on input).
const DOC_OBJECT: u8 = b'O';
/// Stored document: JsonConverter with schemas.
const DOC_JSON: u8 = b'J';

fn is_plain_optional_string(s: &Schema) -> bool {
    s.schema_type == SchemaType::String
        && s.optional
        && s.name.is_none()
        && s.version.is_none()
        && s.doc.is_none()
        && s.default_value.is_none()
        && s.parameters.is_empty()
}

/// Whether `s` is one JSON object (cheap check, nothing is built).
fn is_json_object(s: &str) -> bool {
    s.trim_start().starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
}

/// Where an input record came from, for the `source` block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceInfo {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The input record's timestamp (ms).
    pub timestamp: Option<i64>,
    pub snapshot: bool,
    pub db: Option<String>,
    pub collection: Option<String>,
    /// MongoDB cluster time as `seconds:increment`.
    pub cluster_time: Option<String>,
}

fn json_converter(schemas: bool) -> ConnectResult<JsonConverter> {
    let mut c = JsonConverter::new();
    let mut props = Props::new();
    props.insert("schemas.enable".into(), schemas.to_string());
    Converter::configure(&mut c, &props, false)?;
    Ok(c)
}

/// `topic` as an Avro namespace: each dot-separated part a valid name.
pub fn avro_namespace(topic: &str) -> String {
    topic
        .split('.')
        .map(connect_converters::avro::avro_name)
        .collect::<Vec<_>>()
        .join(".")
}

/// How one image is represented in a schema'd envelope.
enum Image {
    /// A struct with the input's schema (not yet renamed).
    Typed(Struct),
    Json(String),
}

/// Envelope schemas for one (namespace, image schema).
struct EnvelopeSchemas {
    ns: String,
    /// The input struct schema, `None` for JSON-text images. Kept so the
    /// cache key's allocation stays alive.
    input: Option<SchemaRef>,
    /// `<ns>.Value` (typed) or optional `io.debezium.data.Json` string.
    image: SchemaRef,
    envelope: SchemaRef,
}

/// Serializes events and stored documents.
pub struct EnvelopeEncoder {
    connector: String,
    /// `source.connector`: which connector wrote the envelope.
    source_connector: String,
    format: OutputFormat,
    document: DocumentEncoding,
    /// Stored documents (schemas on).
    state_codec: JsonConverter,
    /// Plain JSON pieces (schemas off).
    plain: JsonConverter,
    /// Schema'd JSON output.
    json_out: JsonConverter,
    avro: Option<AvroConverter>,
    source_schema: SchemaRef,
    block_schema: SchemaRef,
    json_image: SchemaRef,
    /// The schema of `DOC_TEXT` documents.
    text_schema: SchemaRef,
    /// A handful of entries per task (one per input topic and schema
    /// version), so a linear scan is cheaper than hashing schemas.
    envelopes: Mutex<Vec<Arc<EnvelopeSchemas>>>,
}

fn source_schema() -> SchemaRef {
    let s = || Schema::primitive(SchemaType::String, false);
    let os = || Schema::primitive(SchemaType::String, true);
    SchemaBuilder::struct_()
        .name(SOURCE_SCHEMA_NAME)
        .field("version", s())
        .field("connector", s())
        .field("name", s())
        .field("ts_ms", Schema::primitive(SchemaType::Int64, false))
        .field("snapshot", os())
        .field("db", os())
        .field("collection", os())
        .field("topic", s())
        .field("partition", Schema::primitive(SchemaType::Int32, false))
        .field("offset", Schema::primitive(SchemaType::Int64, false))
        .field("cluster_time", os())
        .field("ord", Schema::primitive(SchemaType::Int32, true))
        .build()
}

fn block_schema() -> SchemaRef {
    SchemaBuilder::struct_()
        .name(BLOCK_SCHEMA_NAME)
        .optional()
        .field("id", Schema::primitive(SchemaType::String, false))
        .field("total_order", Schema::primitive(SchemaType::Int64, false))
        .field(
            "data_collection_order",
            Schema::primitive(SchemaType::Int64, false),
        )
        .build()
}

impl EnvelopeEncoder {
    pub fn new(
        connector: &str,
        format: OutputFormat,
        document: DocumentEncoding,
        avro_props: &Props,
    ) -> ConnectResult<Self> {
        let avro = match format {
            OutputFormat::Avro => {
                let mut a = AvroConverter::new();
                Converter::configure(&mut a, avro_props, false)?;
                Some(a)
            }
            OutputFormat::Json { .. } => None,
        };
        Ok(EnvelopeEncoder {
            connector: connector.to_string(),
            source_connector: "normalizer".to_string(),
            format,
            document,
            state_codec: json_converter(true)?,
            plain: json_converter(false)?,
            json_out: json_converter(true)?,
            avro,
            source_schema: source_schema(),
            block_schema: block_schema(),
            json_image: SchemaBuilder::string()
                .name(JSON_SCHEMA_NAME)
                .version(1)
                .optional()
                .build(),
            text_schema: Schema::primitive(SchemaType::String, true),
            envelopes: Mutex::new(Vec::new()),
        })
    }

    /// The stored form of an input value (never called for tombstones).
    pub fn encode_doc(&self, schema: Option<&SchemaRef>, value: &Value) -> ConnectResult<Vec<u8>> {
        if let (Some(s), Value::String(text)) = (schema, value) {
            if is_plain_optional_string(s) {
                let mut out = Vec::with_capacity(text.len() + 1);
                // The tag depends only on the text, so equal documents stay
                // byte-equal whatever the output format.
                out.push(if is_json_object(text) {
                    DOC_OBJECT
                } else {
                    DOC_TEXT
                });
                out.extend_from_slice(text.as_bytes());
                return Ok(out);
            }
        }
        let json = self
            .state_codec
            .serialize(schema, value)?
            .ok_or_else(|| ConnectError::data("a null document cannot be stored"))?;
        let mut out = Vec::with_capacity(json.len() + 1);
        out.push(DOC_JSON);
        out.extend_from_slice(&json);
        Ok(out)
    }

    fn decode_doc(&self, bytes: &[u8]) -> ConnectResult<SchemaAndValue> {
        match bytes.split_first() {
            Some((&(DOC_TEXT | DOC_OBJECT), text)) => {
                let text = std::str::from_utf8(text)
                    .map_err(|e| ConnectError::fatal(format!("stored document: {e}")))?;
                Ok(SchemaAndValue::new(
                    Some(self.text_schema.clone()),
                    Value::String(text.to_string()),
                ))
            }
            Some((&DOC_JSON, json)) => self.state_codec.deserialize(Some(json)),
            _ => Err(ConnectError::fatal(
                "stored document has an unknown encoding (state written by another version?)",
            )),
        }
    }

    fn source_struct(&self, src: &SourceInfo) -> Value {
        // The MongoDB source writes `Timestamp(secs, inc)`.
        let parts = src.cluster_time.as_deref().and_then(|t| {
            t.strip_prefix("Timestamp(")?
                .strip_suffix(')')?
                .split_once(',')
                .map(|(s, i)| (s.trim(), i.trim()))
        });
        let (ts_ms, ord) = match parts {
            Some((secs, inc)) => (
                secs.parse::<i64>().ok().map(|s| s * 1000),
                inc.parse::<i32>().ok(),
            ),
            None => (None, None),
        };
        let opt = |v: &Option<String>| v.clone().map(Value::String).unwrap_or(Value::Null);
        Value::Struct(
            Struct::new(self.source_schema.clone())
                .with("version", Value::String(crate::VERSION.into()))
                .with("connector", Value::String(self.source_connector.clone()))
                .with("name", Value::String(self.connector.clone()))
                .with("ts_ms", Value::Int64(ts_ms.or(src.timestamp).unwrap_or(0)))
                .with(
                    "snapshot",
                    Value::String(if src.snapshot { "true" } else { "false" }.into()),
                )
                .with("db", opt(&src.db))
                .with("collection", opt(&src.collection))
                .with("topic", Value::String(src.topic.clone()))
                .with("partition", Value::Int32(src.partition))
                .with("offset", Value::Int64(src.offset))
                .with("cluster_time", opt(&src.cluster_time))
                .with("ord", ord.map(Value::Int32).unwrap_or(Value::Null)),
        )
    }

    /// The document as JSON text (for string images).
    fn json_text(&self, sv: &SchemaAndValue) -> ConnectResult<String> {
        if let Value::String(s) = &sv.value {
            return Ok(s.clone());
        }
        let bytes = self
            .plain
            .serialize(sv.schema.as_ref(), &sv.value)?
            .unwrap_or_else(|| b"null".to_vec());
        String::from_utf8(bytes).map_err(|e| ConnectError::data(e.to_string()))
    }

    fn image(&self, sv: SchemaAndValue) -> ConnectResult<Image> {
        if self.document == DocumentEncoding::Auto {
            if let (Some(schema), Value::Struct(st)) = (&sv.schema, &sv.value) {
                if schema.schema_type == SchemaType::Struct {
                    return Ok(Image::Typed(st.clone()));
                }
            }
        }
        Ok(Image::Json(self.json_text(&sv)?))
    }

    fn schemas_for(&self, ns: &str, input: Option<&SchemaRef>) -> Arc<EnvelopeSchemas> {
        let same = |e: &EnvelopeSchemas| {
            e.ns == ns
                && match (&e.input, input) {
                    (None, None) => true,
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b) || **a == **b,
                    _ => false,
                }
        };
        // A poisoned lock only means another thread panicked mid-lookup; the
        // cache is still a valid list.
        let mut cache = self
            .envelopes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = cache.iter().find(|e| same(e)) {
            return e.clone();
        }
        let image = match input {
            Some(s) => {
                let mut renamed = (**s).clone();
                renamed.name = Some(format!("{ns}.Value"));
                renamed.optional = true;
                Arc::new(renamed)
            }
            None => self.json_image.clone(),
        };
        let envelope = self.build_envelope_schema(ns, &image);
        let entry = Arc::new(EnvelopeSchemas {
            ns: ns.to_string(),
            input: input.cloned(),
            image,
            envelope,
        });
        cache.push(entry.clone());
        entry
    }

    fn build_envelope_schema(&self, ns: &str, image: &SchemaRef) -> SchemaRef {
        SchemaBuilder::struct_()
            .name(format!("{ns}.Envelope"))
            .version(ENVELOPE_VERSION)
            .field("before", image.clone())
            .field("after", image.clone())
            .field("source", self.source_schema.clone())
            .field("op", Schema::primitive(SchemaType::String, false))
            .field("ts_ms", Schema::primitive(SchemaType::Int64, true))
            .field("ts_us", Schema::primitive(SchemaType::Int64, true))
            .field("ts_ns", Schema::primitive(SchemaType::Int64, true))
            .field("transaction", self.block_schema.clone())
            .build()
    }

    /// The envelope schema used for documents of `input_topic` with this
    /// value schema (`None` or a non-struct schema: JSON-text images).
    pub fn envelope_schema(
        &self,
        input_topic: &str,
        value_schema: Option<&SchemaRef>,
    ) -> SchemaRef {
        let typed = value_schema.filter(|s| {
            s.schema_type == SchemaType::Struct && self.document == DocumentEncoding::Auto
        });
        self.schemas_for(&avro_namespace(input_topic), typed)
            .envelope
            .clone()
    }

    /// The same encoder, naming `kind` as `source.connector` (the
    /// normalizer's default is `normalizer`).
    #[must_use]
    pub fn with_source_connector(mut self, kind: &str) -> Self {
        self.source_connector = kind.to_string();
        self
    }

    /// The serialization this encoder writes.
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// Serializes the event for `output_topic`; `None` for skipped inputs.
    /// `now_ns` is the processing time (nanoseconds since the epoch).
    pub async fn encode(
        &self,
        output_topic: &str,
        event: &Event<Vec<u8>>,
        src: &SourceInfo,
        now_ns: i64,
    ) -> ConnectResult<Option<Vec<u8>>> {
        let Some((op, before, after)) = parts(event) else {
            return Ok(None);
        };
        match &self.avro {
            Some(avro) => {
                let (schema, value) = self.schema_envelope(op, before, after, src, now_ns)?;
                avro.from_connect(output_topic, &mut Headers::new(), Some(&schema), &value)
                    .await
            }
            None => self
                .encode_json_parts(op, before, after, src, now_ns)
                .map(Some),
        }
    }

    /// [`Self::encode`] for the JSON formats, without awaiting (the MongoDB
    /// source builds records synchronously).
    ///
    /// # Errors
    /// An Avro encoder (it needs the registry), or a stored document that
    /// cannot be decoded.
    pub fn encode_json(
        &self,
        event: &Event<Vec<u8>>,
        src: &SourceInfo,
        now_ns: i64,
    ) -> ConnectResult<Option<Vec<u8>>> {
        if self.avro.is_some() {
            return Err(ConnectError::config(
                "output.format",
                "avro",
                "the synchronous envelope encoder writes JSON only",
            ));
        }
        let Some((op, before, after)) = parts(event) else {
            return Ok(None);
        };
        self.encode_json_parts(op, before, after, src, now_ns)
            .map(Some)
    }

    fn encode_json_parts(
        &self,
        op: &str,
        before: Option<&Vec<u8>>,
        after: Option<&Vec<u8>>,
        src: &SourceInfo,
        now_ns: i64,
    ) -> ConnectResult<Vec<u8>> {
        if self.format == (OutputFormat::Json { schemas: false }) {
            let (before, after) = (before.map(Vec::as_slice), after.map(Vec::as_slice));
            return self.plain_envelope(op, before, after, src, now_ns);
        }
        if self.document == DocumentEncoding::Auto {
            let (b, a) = (before.map(Vec::as_slice), after.map(Vec::as_slice));
            if let Some(bytes) = self.inferred_envelope(op, b, a, src, now_ns)? {
                return Ok(bytes);
            }
        }
        let (schema, value) = self.schema_envelope(op, before, after, src, now_ns)?;
        Ok(self
            .json_out
            .serialize(Some(&schema), &value)?
            .unwrap_or_default())
    }

    fn schema_envelope(
        &self,
        op: &str,
        before: Option<&Vec<u8>>,
        after: Option<&Vec<u8>>,
        src: &SourceInfo,
        now_ns: i64,
    ) -> ConnectResult<(SchemaRef, Value)> {
        let before = before.map(|b| self.decode_doc(b)).transpose()?;
        let after = after.map(|a| self.decode_doc(a)).transpose()?;
        self.struct_envelope(op, before, after, src, now_ns)
    }

    /// Schemaless Debezium JSON, field order as the struct envelope's.
    fn plain_envelope(
        &self,
        op: &str,
        before: Option<&[u8]>,
        after: Option<&[u8]>,
        src: &SourceInfo,
        now_ns: i64,
    ) -> ConnectResult<Vec<u8>> {
        // One allocation: both images plus the source block and the tail.
        let images = before.map_or(4, <[u8]>::len) + after.map_or(4, <[u8]>::len);
        let mut out = Vec::with_capacity(images + 512);
        out.extend_from_slice(b"{\"before\":");
        self.plain_image(&mut out, before)?;
        out.extend_from_slice(b",\"after\":");
        self.plain_image(&mut out, after)?;
        out.extend_from_slice(b",\"source\":");
        let source = self
            .plain
            .serialize(Some(&self.source_schema), &self.source_struct(src))?
            .unwrap_or_default();
        out.extend_from_slice(&source);
        let (ms, us) = (now_ns / 1_000_000, now_ns / 1_000);
        out.extend_from_slice(
            format!(
                ",\"op\":\"{op}\",\"ts_ms\":{ms},\"ts_us\":{us},\"ts_ns\":{now_ns},\"transaction\":null}}"
            )
            .as_bytes(),
        );
        Ok(out)
    }

    fn plain_image(&self, out: &mut Vec<u8>, stored: Option<&[u8]>) -> ConnectResult<()> {
        let Some(stored) = stored else {
            out.extend_from_slice(b"null");
            return Ok(());
        };
        // A JSON document (the MongoDB source's value) nests as an object,
        // straight from the stored text.
        if let (Some((&DOC_OBJECT, text)), DocumentEncoding::Auto) =
            (stored.split_first(), self.document)
        {
            out.extend_from_slice(text.trim_ascii());
            return Ok(());
        }
        let sv = self.decode_doc(stored)?;
        match (&sv.value, self.document) {
            (_, DocumentEncoding::Auto) if !matches!(sv.value, Value::String(_)) => {
                let bytes = self
                    .plain
                    .serialize(sv.schema.as_ref(), &sv.value)?
                    .unwrap_or_else(|| b"null".to_vec());
                out.extend_from_slice(&bytes);
            }
            _ => {
                let text = self.json_text(&sv)?;
                let quoted =
                    serde_json::to_vec(&text).map_err(|e| ConnectError::data(e.to_string()))?;
                out.extend_from_slice(&quoted);
            }
        }
        Ok(())
    }

    fn struct_envelope(
        &self,
        op: &str,
        before: Option<SchemaAndValue>,
        after: Option<SchemaAndValue>,
        src: &SourceInfo,
        now_ns: i64,
    ) -> ConnectResult<(SchemaRef, Value)> {
        let ns = avro_namespace(&src.topic);
        let mut before = before.map(|b| self.image(b)).transpose()?;
        let mut after = after.map(|a| self.image(a)).transpose()?;
        // The envelope has one image type; the newest document decides it.
        let input_schema = match (&before, &after) {
            (_, Some(Image::Typed(a))) => Some(a.schema.clone()),
            (Some(Image::Typed(b)), None) => Some(b.schema.clone()),
            _ => None,
        };
        // A document that changed between typed and untyped (input format
        // changed mid-stream) cannot share a struct type: fall back to text.
        let mixed = matches!(
            (&before, &after),
            (Some(Image::Typed(_)), Some(Image::Json(_)))
                | (Some(Image::Json(_)), Some(Image::Typed(_)))
        );
        let input_schema = if mixed { None } else { input_schema };
        if mixed {
            before = before.map(|i| self.to_json_image(i)).transpose()?;
            after = after.map(|i| self.to_json_image(i)).transpose()?;
        }
        let schemas = self.schemas_for(&ns, input_schema.as_ref());
        let to_value = |img: Option<Image>| -> Value {
            match img {
                None => Value::Null,
                Some(Image::Json(s)) => Value::String(s),
                Some(Image::Typed(st)) => Value::Struct(project(&st, &schemas.image)),
            }
        };
        let env = self.envelope_value(
            &schemas.envelope,
            op,
            to_value(before),
            to_value(after),
            src,
            now_ns,
        );
        Ok((schemas.envelope.clone(), env))
    }

    fn envelope_value(
        &self,
        envelope: &SchemaRef,
        op: &str,
        before: Value,
        after: Value,
        src: &SourceInfo,
        now_ns: i64,
    ) -> Value {
        let (ms, us) = (now_ns / 1_000_000, now_ns / 1_000);
        Value::Struct(
            Struct::new(envelope.clone())
                .with("before", before)
                .with("after", after)
                .with("source", self.source_struct(src))
                .with("op", Value::String(op.into()))
                .with("ts_ms", Value::Int64(ms))
                .with("ts_us", Value::Int64(us))
                .with("ts_ns", Value::Int64(now_ns)),
        )
    }

    /// JSON with schemas for stored JSON-object documents (the MongoDB
    /// source's values): struct images with a schema inferred from this
    /// event's documents (`crate::infer`), so that consumers which map
    /// `before` / `after` to columns (Flink's `debezium-json` with
    /// `schema-include=true`) get objects rather than JSON text. `None` when
    /// an image is not a stored JSON object or no Connect schema fits both:
    /// the caller writes JSON-text images then.
    fn inferred_envelope(
        &self,
        op: &str,
        before: Option<&[u8]>,
        after: Option<&[u8]>,
        src: &SourceInfo,
        now_ns: i64,
    ) -> ConnectResult<Option<Vec<u8>>> {
        // Some(None): no image; None: an image that is not a JSON object.
        let parse = |stored: Option<&[u8]>| -> Option<Option<serde_json::Value>> {
            match stored {
                None => Some(None),
                Some(b) => match b.split_first() {
                    Some((&DOC_OBJECT, text)) => serde_json::from_slice(text).ok().map(Some),
                    _ => None,
                },
            }
        };
        let (Some(before), Some(after)) = (parse(before), parse(after)) else {
            return Ok(None);
        };
        let docs: Vec<&serde_json::Value> = before.iter().chain(after.iter()).collect();
        let ns = avro_namespace(&src.topic);
        let Some((image, mut values)) = crate::infer::infer(&docs, &format!("{ns}.Value")) else {
            return Ok(None);
        };
        // `values` follows `docs`: [before?, after?].
        let after_v = after.as_ref().and_then(|_| values.pop());
        let before_v = before.as_ref().and_then(|_| values.pop());
        let envelope = self.build_envelope_schema(&ns, &image);
        let value = self.envelope_value(
            &envelope,
            op,
            before_v.unwrap_or(Value::Null),
            after_v.unwrap_or(Value::Null),
            src,
            now_ns,
        );
        self.json_out.serialize(Some(&envelope), &value)
    }

    fn to_json_image(&self, img: Image) -> ConnectResult<Image> {
        match img {
            Image::Json(s) => Ok(Image::Json(s)),
            Image::Typed(st) => Ok(Image::Json(self.json_text(&SchemaAndValue::new(
                Some(st.schema.clone()),
                Value::Struct(st),
            ))?)),
        }
    }
}

/// `op`, `before`, `after` of an event; `None` for the skipped ones.
#[allow(clippy::type_complexity)]
fn parts(event: &Event<Vec<u8>>) -> Option<(&'static str, Option<&Vec<u8>>, Option<&Vec<u8>>)> {
    match event {
        Event::Create { after, snapshot } => {
            Some((if *snapshot { "r" } else { "c" }, None, Some(after)))
        }
        Event::Update { before, after } => Some(("u", Some(before), Some(after))),
        Event::Delete { before } => Some(("d", Some(before), None)),
        Event::SkippedIdentical | Event::SkippedUnknownDelete => None,
    }
}

/// `st` re-expressed with `target` (same fields by name): renames the record
/// and, after a schema change, re-encodes an older `before` with the current
/// schema so both images share one type. Missing fields take their default.
fn project(st: &Struct, target: &SchemaRef) -> Struct {
    let mut out = Struct::new(target.clone());
    for f in &target.fields {
        let v = st
            .get(&f.name)
            .cloned()
            .or_else(|| f.schema.default_value.clone())
            .unwrap_or(Value::Null);
        out.values[f.index] = v;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOPIC: &str = "mongo.shop.orders";

    fn src() -> SourceInfo {
        SourceInfo {
            topic: TOPIC.into(),
            partition: 2,
            offset: 41,
            timestamp: Some(1_700_000_000_123),
            snapshot: false,
            db: Some("shop".into()),
            collection: Some("orders".into()),
            cluster_time: Some("Timestamp(1700000000, 3)".into()),
        }
    }

    fn enc(format: OutputFormat, document: DocumentEncoding) -> EnvelopeEncoder {
        EnvelopeEncoder::new("norm", format, document, &Props::new()).unwrap()
    }

    fn string_doc(e: &EnvelopeEncoder, text: &str) -> Vec<u8> {
        e.encode_doc(
            Some(&Schema::primitive(SchemaType::String, true)),
            &Value::String(text.into()),
        )
        .unwrap()
    }

    async fn json_of(e: &EnvelopeEncoder, ev: &Event<Vec<u8>>) -> serde_json::Value {
        let bytes = e
            .encode("out", ev, &src(), 1_700_000_100_000_000_000)
            .await
            .unwrap()
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn namespaces_are_valid_avro_names() {
        assert_eq!(avro_namespace("mongo.shop.orders"), "mongo.shop.orders");
        assert_eq!(avro_namespace("my-topic.1x"), "my_topic._1x");
    }

    #[tokio::test]
    async fn schemaless_json_nests_documents_for_flink() {
        let e = enc(
            OutputFormat::Json { schemas: false },
            DocumentEncoding::Auto,
        );
        let before = string_doc(&e, r#"{"_id": 1, "qty": 2}"#);
        let after = string_doc(&e, r#"{"_id": 1, "qty": 3}"#);
        let v = json_of(&e, &Event::Update { before, after }).await;
        assert_eq!(v["op"], "u");
        assert_eq!(v["before"], json!({"_id": 1, "qty": 2}));
        assert_eq!(v["after"], json!({"_id": 1, "qty": 3}));
        assert_eq!(v["ts_ms"], 1_700_000_100_000i64);
        assert_eq!(v["ts_ns"], 1_700_000_100_000_000_000i64);
        assert_eq!(
            v["source"],
            json!({"version": crate::VERSION, "connector": "normalizer", "name": "norm",
                   "ts_ms": 1_700_000_000_000i64, "snapshot": "false", "db": "shop",
                   "collection": "orders", "topic": TOPIC, "partition": 2, "offset": 41,
                   "cluster_time": "Timestamp(1700000000, 3)", "ord": 3})
        );
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "before",
                "after",
                "source",
                "op",
                "ts_ms",
                "ts_us",
                "ts_ns",
                "transaction"
            ]
        );
        // A read of a new key while snapshotting, and a delete.
        let doc = string_doc(&e, r#"{"_id": 2}"#);
        let r = json_of(
            &e,
            &Event::Create {
                after: doc.clone(),
                snapshot: true,
            },
        )
        .await;
        assert_eq!((r["op"].as_str(), r["before"].is_null()), (Some("r"), true));
        let d = json_of(&e, &Event::Delete { before: doc }).await;
        assert_eq!((d["op"].as_str(), d["after"].is_null()), (Some("d"), true));
        assert_eq!(d["before"], json!({"_id": 2}));
    }

    #[tokio::test]
    async fn string_encoding_is_the_debezium_mongodb_shape() {
        let e = enc(
            OutputFormat::Json { schemas: false },
            DocumentEncoding::String,
        );
        let after = string_doc(&e, r#"{"_id": 1}"#);
        let v = json_of(
            &e,
            &Event::Create {
                after,
                snapshot: false,
            },
        )
        .await;
        assert_eq!(v["after"], json!(r#"{"_id": 1}"#));
        assert_eq!(v["op"], "c");
    }

    #[tokio::test]
    async fn json_with_schemas_carries_the_envelope_schema() {
        let e = enc(OutputFormat::Json { schemas: true }, DocumentEncoding::Auto);
        let before = string_doc(&e, r#"{"_id": 1, "qty": 2}"#);
        let after = string_doc(&e, r#"{"_id": 1, "qty": 3}"#);
        let v = json_of(&e, &Event::Update { before, after }).await;
        let schema = &v["schema"];
        assert_eq!(schema["name"], "mongo.shop.orders.Envelope");
        assert_eq!(schema["version"], 2);
        let fields: Vec<&str> = schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "before",
                "after",
                "source",
                "op",
                "ts_ms",
                "ts_us",
                "ts_ns",
                "transaction"
            ]
        );
        // JSON documents get a struct schema inferred from the event's images.
        for image in [&schema["fields"][0], &schema["fields"][1]] {
            assert_eq!(image["name"], "mongo.shop.orders.Value");
            assert_eq!(image["type"], "struct");
            assert_eq!(image["optional"], true);
            assert_eq!(image["fields"][1]["field"], "qty");
            assert_eq!(image["fields"][1]["type"], "int64");
        }
        assert_eq!(schema["fields"][3]["optional"], false);
        assert_eq!(schema["fields"][2]["name"], SOURCE_SCHEMA_NAME);
        assert_eq!(schema["fields"][7]["name"], BLOCK_SCHEMA_NAME);
        let p = &v["payload"];
        assert_eq!(p["before"], json!({"_id": 1, "qty": 2}));
        assert_eq!(p["after"], json!({"_id": 1, "qty": 3}));
        assert_eq!(p["op"], "u");
        assert_eq!(p["source"]["offset"], 41);
    }

    /// Flink's `debezium-json` (`schema-include=true`) reads `payload.before`
    /// and `payload.after` as rows: JSON text there fails the job
    /// ("Fail to deserialize at field: after", TextNode is not an ObjectNode),
    /// which is what JSON-text images of the MongoDB source's documents did.
    #[tokio::test]
    async fn json_with_schemas_nests_json_documents_as_structs_for_flink() {
        let e = enc(OutputFormat::Json { schemas: true }, DocumentEncoding::Auto);
        let before = string_doc(
            &e,
            r#"{"_id": {"$oid": "65a1"}, "qty": 2, "items": [{"price": 1}]}"#,
        );
        let after = string_doc(&e, r#"{"_id": {"$oid": "65a1"}, "status": "replaced"}"#);
        let v = json_of(&e, &Event::Update { before, after }).await;
        let p = &v["payload"];
        assert!(p["before"].is_object() && p["after"].is_object(), "{p}");
        assert_eq!(p["before"]["_id"], json!({"$oid": "65a1"}));
        assert_eq!(p["before"]["items"], json!([{"price": 1}]));
        // One image schema for both: the union of their fields, so a field
        // missing from one image is null there.
        assert_eq!(p["before"]["status"], json!(null));
        assert_eq!(p["after"]["qty"], json!(null));
        assert_eq!(p["after"]["status"], "replaced");
        let after_only = string_doc(&e, r#"{"_id": 7}"#);
        let created = json_of(
            &e,
            &Event::Create {
                after: after_only,
                snapshot: true,
            },
        )
        .await;
        assert_eq!(created["payload"]["before"], json!(null));
        assert_eq!(created["payload"]["after"], json!({"_id": 7}));
        assert_eq!(created["payload"]["op"], "r");
        let deleted = json_of(
            &e,
            &Event::Delete {
                before: string_doc(&e, r#"{"_id": 7}"#),
            },
        )
        .await;
        assert_eq!(deleted["payload"]["before"], json!({"_id": 7}));
        assert_eq!(deleted["payload"]["after"], json!(null));
    }

    #[tokio::test]
    async fn json_with_schemas_keeps_text_images_when_no_schema_fits() {
        let e = enc(OutputFormat::Json { schemas: true }, DocumentEncoding::Auto);
        // A field that is a string before and an object after.
        let before = string_doc(&e, r#"{"_id": 1, "a": "x"}"#);
        let after = string_doc(&e, r#"{"_id": 1, "a": {"b": 1}}"#);
        let v = json_of(&e, &Event::Update { before, after }).await;
        assert_eq!(v["schema"]["fields"][0]["name"], JSON_SCHEMA_NAME);
        assert_eq!(v["payload"]["before"], r#"{"_id": 1, "a": "x"}"#);
        assert_eq!(v["payload"]["after"], r#"{"_id": 1, "a": {"b": 1}}"#);
        // output.document.encoding=string: always text (the Debezium MongoDB shape).
        let e = enc(
            OutputFormat::Json { schemas: true },
            DocumentEncoding::String,
        );
        let after = string_doc(&e, r#"{"_id": 1}"#);
        let v = json_of(
            &e,
            &Event::Create {
                after,
                snapshot: false,
            },
        )
        .await;
        assert_eq!(v["schema"]["fields"][1]["name"], JSON_SCHEMA_NAME);
        assert_eq!(v["payload"]["after"], r#"{"_id": 1}"#);
    }

    fn order_schema(with_name: bool) -> SchemaRef {
        let mut b = SchemaBuilder::struct_()
            .name("io.example.Order")
            .field("id", Schema::primitive(SchemaType::Int64, false));
        if with_name {
            b = b.field("name", Schema::primitive(SchemaType::String, true));
        }
        b.build()
    }

    #[tokio::test]
    async fn typed_input_gives_value_records_and_projects_old_befores() {
        let e = enc(OutputFormat::Json { schemas: true }, DocumentEncoding::Auto);
        let old = order_schema(false);
        let new = order_schema(true);
        let before = e
            .encode_doc(
                Some(&old),
                &Value::Struct(Struct::new(old.clone()).with("id", Value::Int64(7))),
            )
            .unwrap();
        let after = e
            .encode_doc(
                Some(&new),
                &Value::Struct(
                    Struct::new(new.clone())
                        .with("id", Value::Int64(7))
                        .with("name", Value::String("x".into())),
                ),
            )
            .unwrap();
        let v = json_of(&e, &Event::Update { before, after }).await;
        let before_schema = &v["schema"]["fields"][0];
        assert_eq!(before_schema["name"], "mongo.shop.orders.Value");
        assert_eq!(before_schema["type"], "struct");
        let mut after_schema = v["schema"]["fields"][1].clone();
        after_schema["field"] = json!("before");
        assert_eq!(after_schema, *before_schema);
        // The older before is re-expressed with the current schema.
        assert_eq!(v["payload"]["before"], json!({"id": 7, "name": null}));
        assert_eq!(v["payload"]["after"], json!({"id": 7, "name": "x"}));
    }

    #[test]
    fn avro_records_are_named_as_in_the_reference() {
        let e = enc(OutputFormat::Json { schemas: true }, DocumentEncoding::Auto);
        let mut avro = AvroConverter::new();
        let mut props = Props::new();
        props.insert("schema.registry.url".into(), "http://127.0.0.1:1".into());
        Converter::configure(&mut avro, &props, false).unwrap();
        let typed = e.envelope_schema(TOPIC, Some(&order_schema(true)));
        let text = avro.avro_schema_text(&typed).unwrap();
        let s: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(s["name"], "Envelope");
        assert_eq!(s["namespace"], TOPIC);
        assert_eq!(s["fields"][0]["name"], "before");
        assert_eq!(s["fields"][0]["default"], serde_json::Value::Null);
        let before = &s["fields"][0]["type"];
        assert_eq!(before[0], "null");
        // Record `Value` in the enclosing namespace, i.e. `<topic>.Value`.
        assert_eq!(before[1]["name"], "Value");
        assert!(before[1]["namespace"].is_null() || before[1]["namespace"] == TOPIC);
        assert_eq!(before[1]["connect.name"], format!("{TOPIC}.Value"));
        // `after` refers to the same record by name (Materialize's same-type
        // rule); a relative name resolves in the enclosing namespace.
        let after = &s["fields"][1]["type"];
        assert_eq!(after[0], "null");
        assert!(
            after[1] == "Value" || after[1] == format!("{TOPIC}.Value"),
            "{after}"
        );
        assert_eq!(s["fields"][3]["type"], "string");
        let untyped = avro
            .avro_schema_text(&e.envelope_schema(TOPIC, None))
            .unwrap();
        let u: serde_json::Value = serde_json::from_str(&untyped).unwrap();
        assert_eq!(u["fields"][0]["type"][1]["type"], "string");
        assert_eq!(u["fields"][0]["type"][1]["connect.name"], JSON_SCHEMA_NAME);
    }
}
