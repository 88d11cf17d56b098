//! `org.apache.kafka.connect.json.JsonConverter`.
//!
//! With `schemas.enable=true` every key or value is an envelope
//! `{"schema":...,"payload":...}`; with it off the payload stands alone and
//! reading infers types (integers as int64, other numbers as float64, objects
//! as string-keyed maps). Output is byte-identical to the Java converter.

pub mod escape;
mod parse;
mod read;
mod write;

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use connect_api::config::{
    ConfigKey, ConfigType, Default as ConfigDefault, Importance, Validator, Width,
};
use connect_api::{
    ConfigDef, ConnectError, ConnectResult, Converter, HeaderConverter, Headers, Props,
    SchemaAndValue, SchemaRef, Value,
};

use crate::cache::LruCache;
use crate::{converter_config_def, props_with_type};
use write::WriteOptions;

pub const SCHEMAS_ENABLE_CONFIG: &str = "schemas.enable";
pub const SCHEMAS_CACHE_SIZE_CONFIG: &str = "schemas.cache.size";
pub const DECIMAL_FORMAT_CONFIG: &str = "decimal.format";
pub const REPLACE_NULL_WITH_DEFAULT_CONFIG: &str = "replace.null.with.default";

const ENVELOPE_ERROR: &str = "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.";

/// Java wraps Jackson's parse failure in this message (the cause follows it).
fn serialization_error(cause: String) -> ConnectError {
    ConnectError::data(format!(
        "Converting byte[] to Kafka Connect data failed due to serialization error: {cause}"
    ))
}

/// How `Decimal` values are written (`decimal.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalFormat {
    /// The unscaled two's-complement bytes, base64-encoded (the default).
    Base64,
    /// A JSON number in `BigDecimal.toString()` form.
    Numeric,
}

/// A schema's JSON text, with the schema it was made from.
type CachedSchemaJson = (SchemaRef, Arc<[u8]>);

/// The JSON converter. One instance serves keys, values or headers.
#[derive(Debug)]
pub struct JsonConverter {
    schemas_enabled: bool,
    options: WriteOptions,
    /// Serialized schema JSON per schema allocation. The cached `SchemaRef`
    /// keeps the allocation alive so its address cannot be reused.
    schema_json: RwLock<LruCache<usize, CachedSchemaJson>>,
    /// Parsed schemas keyed by their JSON text.
    schemas: RwLock<LruCache<Box<[u8]>, Option<SchemaRef>>>,
}

impl Default for JsonConverter {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonConverter {
    /// A converter with the Java defaults (schemas enabled, BASE64 decimals).
    pub fn new() -> Self {
        Self::with_settings(true, 1000, DecimalFormat::Base64, true)
    }

    fn with_settings(
        schemas_enabled: bool,
        cache_size: usize,
        decimal_format: DecimalFormat,
        replace_null_with_default: bool,
    ) -> Self {
        JsonConverter {
            schemas_enabled,
            options: WriteOptions {
                decimal_format,
                replace_null_with_default,
            },
            schema_json: RwLock::new(LruCache::new(cache_size)),
            schemas: RwLock::new(LruCache::new(cache_size)),
        }
    }

    /// The converter's `ConfigDef` (Java's `JsonConverterConfig.configDef()`).
    pub fn definition() -> ConfigDef {
        converter_config_def()
            .define(
                ConfigKey::new(
                    SCHEMAS_ENABLE_CONFIG,
                    ConfigType::Boolean,
                    ConfigDefault::Value("true".into()),
                    Importance::High,
                    "Whether each serialized key and value carries its schema in a {\"schema\":...,\"payload\":...} envelope.",
                )
                .group("Schemas", 0, Width::Medium, "Enable Schemas"),
            )
            .define(
                ConfigKey::new(
                    SCHEMAS_CACHE_SIZE_CONFIG,
                    ConfigType::Int,
                    ConfigDefault::Value("1000".into()),
                    Importance::High,
                    "How many schemas this converter instance keeps cached.",
                )
                .group("Schemas", 1, Width::Medium, "Schema Cache Size"),
            )
            .define(
                ConfigKey::new(
                    DECIMAL_FORMAT_CONFIG,
                    ConfigType::String,
                    ConfigDefault::Value("BASE64".into()),
                    Importance::Low,
                    "How decimals are serialized, case-insensitively either 'BASE64' (the default) or 'NUMERIC'.",
                )
                .validator(Validator::one_of_ignore_case(&["BASE64", "NUMERIC"]))
                .group("Serialization", 0, Width::Medium, "Decimal Format"),
            )
            .define(
                ConfigKey::new(
                    REPLACE_NULL_WITH_DEFAULT_CONFIG,
                    ConfigType::Boolean,
                    ConfigDefault::Value("true".into()),
                    Importance::Low,
                    "When true, a null field that has a default value is written and read as that default; when false, it stays null.",
                )
                .group("Serialization", 1, Width::Medium, "Replace null with default"),
            )
    }

    /// Applies a full config, including `converter.type` (Java's `configure(Map)`).
    pub fn configure_props(&mut self, props: &Props) -> ConnectResult<()> {
        let parsed = Self::definition().parse(props)?;
        let decimal_format = match parsed.string(DECIMAL_FORMAT_CONFIG) {
            Some(f) if f.eq_ignore_ascii_case("NUMERIC") => DecimalFormat::Numeric,
            _ => DecimalFormat::Base64,
        };
        let cache_size = parsed.int(SCHEMAS_CACHE_SIZE_CONFIG).unwrap_or(1000).max(0) as usize;
        *self = Self::with_settings(
            parsed.bool(SCHEMAS_ENABLE_CONFIG).unwrap_or(true),
            cache_size,
            decimal_format,
            parsed
                .bool(REPLACE_NULL_WITH_DEFAULT_CONFIG)
                .unwrap_or(true),
        );
        Ok(())
    }

    /// Serializes a value (Java's `fromConnectData`). A null value without a
    /// schema is a tombstone and yields no bytes.
    pub fn serialize(
        &self,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> ConnectResult<Option<Vec<u8>>> {
        if schema.is_none() && value.is_null() {
            return Ok(None);
        }
        if !self.schemas_enabled {
            let mut out = Vec::with_capacity(output_hint(value));
            self.options
                .write_value(&mut out, schema.map(|s| s.as_ref()), value)?;
            return Ok(Some(out));
        }
        let schema_json = match schema {
            Some(s) => Some(self.schema_json(s)?),
            None => None,
        };
        let mut out = Vec::with_capacity(
            schema_json.as_ref().map_or(0, |s| s.len()) + 32 + output_hint(value),
        );
        out.extend_from_slice(b"{\"schema\":");
        match &schema_json {
            Some(json) => out.extend_from_slice(json),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"payload\":");
        self.options
            .write_value(&mut out, schema.map(|s| s.as_ref()), value)?;
        out.push(b'}');
        Ok(Some(out))
    }

    /// The JSON form of a schema (Java's `asJsonSchema`), cached per allocation.
    fn schema_json(&self, schema: &SchemaRef) -> ConnectResult<Arc<[u8]>> {
        let key = Arc::as_ptr(schema) as usize;
        if let Ok(cache) = self.schema_json.read() {
            if let Some((_, json)) = cache.get(&key) {
                return Ok(json);
            }
        }
        let mut out = Vec::with_capacity(256);
        self.options.write_schema(&mut out, Some(schema), None)?;
        let json: Arc<[u8]> = out.into();
        if let Ok(mut cache) = self.schema_json.write() {
            cache.put(key, (schema.clone(), json.clone()));
        }
        Ok(json)
    }

    /// The schema a JSON schema text describes, cached by that text.
    fn schema_from_text(&self, raw: &[u8]) -> ConnectResult<Option<SchemaRef>> {
        if raw == b"null" {
            return Ok(None);
        }
        if let Some(schema) = self.schemas.read().ok().and_then(|c| c.get(raw)) {
            return Ok(schema);
        }
        let node = parse::parse(raw)
            .map_err(serialization_error)?
            .unwrap_or(parse::Node::Null);
        let schema = read::to_schema(&node, self.options.replace_null_with_default)?;
        if let Ok(mut cache) = self.schemas.write() {
            cache.put(raw.into(), schema.clone());
        }
        Ok(schema)
    }

    /// Deserializes bytes (Java's `toConnectData`). No bytes is a tombstone.
    pub fn deserialize(&self, bytes: Option<&[u8]>) -> ConnectResult<SchemaAndValue> {
        let Some(bytes) = bytes else {
            return Ok(SchemaAndValue::null());
        };
        let parsed = if self.schemas_enabled {
            parse::parse_envelope(bytes)
        } else {
            parse::parse(bytes)
        };
        let node = parsed.map_err(serialization_error)?;
        let replace = self.options.replace_null_with_default;
        if !self.schemas_enabled {
            let value = read::to_value(None, node.as_ref(), replace)?;
            return Ok(SchemaAndValue::new(None, value));
        }
        let envelope = match &node {
            Some(parse::Node::Object(o))
                if o.entries.len() == 2
                    && o.get("schema").is_some()
                    && o.get("payload").is_some() =>
            {
                o
            }
            _ => return Err(ConnectError::data(ENVELOPE_ERROR)),
        };
        let schema = match envelope.get("schema") {
            Some(parse::Node::Raw(raw)) => self.schema_from_text(raw)?,
            Some(other) => read::to_schema(other, replace)?,
            None => None,
        };
        let value = read::to_value(schema.as_ref(), envelope.get("payload"), replace)?;
        Ok(SchemaAndValue::new(schema, value))
    }
}

#[async_trait]
impl Converter for JsonConverter {
    fn configure(&mut self, props: &Props, is_key: bool) -> ConnectResult<()> {
        self.configure_props(&props_with_type(
            props,
            if is_key { "key" } else { "value" },
        ))
    }

    fn config_def(&self) -> ConfigDef {
        Self::definition()
    }

    async fn from_connect(
        &self,
        _topic: &str,
        _headers: &mut Headers,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> ConnectResult<Option<Vec<u8>>> {
        self.serialize(schema, value)
    }

    async fn to_connect(
        &self,
        _topic: &str,
        _headers: &Headers,
        bytes: Option<&[u8]>,
    ) -> ConnectResult<SchemaAndValue> {
        self.deserialize(bytes)
    }
}

impl HeaderConverter for JsonConverter {
    fn configure(&mut self, props: &Props) -> ConnectResult<()> {
        // The worker sets converter.type=header; default it for callers that do not.
        let mut props = props.clone();
        props
            .entry(crate::TYPE_CONFIG.to_string())
            .or_insert_with(|| "header".to_string());
        self.configure_props(&props)
    }

    fn config_def(&self) -> ConfigDef {
        Self::definition()
    }

    fn from_connect_header(
        &self,
        _topic: &str,
        _key: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> ConnectResult<Option<Vec<u8>>> {
        self.serialize(schema, value)
    }

    fn to_connect_header(
        &self,
        _topic: &str,
        _key: &str,
        bytes: Option<&[u8]>,
    ) -> ConnectResult<SchemaAndValue> {
        self.deserialize(bytes)
    }
}

/// Schemaless JSON bytes of a value, exactly as the worker's internal
/// converter (JsonConverter with `schemas.enable=false`) writes them.
pub fn to_json_bytes(value: &Value) -> ConnectResult<Vec<u8>> {
    let options = WriteOptions {
        decimal_format: DecimalFormat::Base64,
        replace_null_with_default: true,
    };
    let mut out = Vec::with_capacity(64);
    options.write_value(&mut out, None, value)?;
    Ok(out)
}

/// A schemaless value as a `serde_json::Value`, for internal-topic payloads
/// (offsets, configs) that the worker handles as JSON trees.
///
/// Java refuses logical values without a schema; here they degrade gracefully
/// (decimals as their string form, temporal values as epoch numbers) because
/// this path has no caller that could report the error usefully.
pub fn to_json_value(value: &Value) -> serde_json::Value {
    use connect_api::data::java;
    use serde_json::Value as J;
    match value {
        Value::Null => J::Null,
        Value::Int8(v) => J::from(*v),
        Value::Int16(v) => J::from(*v),
        Value::Int32(v) => J::from(*v),
        Value::Int64(v) => J::from(*v),
        Value::Float32(v) => serde_json::Number::from_f64(f64::from(*v))
            .map(J::Number)
            .unwrap_or_else(|| J::String(java::float_to_string(*v))),
        Value::Float64(v) => serde_json::Number::from_f64(*v)
            .map(J::Number)
            .unwrap_or_else(|| J::String(java::double_to_string(*v))),
        Value::Boolean(b) => J::Bool(*b),
        Value::String(s) => J::String(s.clone()),
        Value::Bytes(b) => J::String(java::base64_encode(b)),
        Value::Array(items) => J::Array(items.iter().map(to_json_value).collect()),
        Value::Map(entries) => {
            if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
                J::Object(
                    entries
                        .iter()
                        .map(|(k, v)| {
                            (k.as_str().unwrap_or_default().to_string(), to_json_value(v))
                        })
                        .collect(),
                )
            } else {
                J::Array(
                    entries
                        .iter()
                        .map(|(k, v)| J::Array(vec![to_json_value(k), to_json_value(v)]))
                        .collect(),
                )
            }
        }
        Value::Struct(s) => J::Object(
            s.schema
                .fields
                .iter()
                .map(|f| (f.name.clone(), to_json_value(&s.values[f.index])))
                .collect(),
        ),
        Value::Decimal(d) => J::String(java::decimal_to_string(d)),
        Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => {
            J::from(java::temporal_millis(value).unwrap_or_default())
        }
    }
}

/// Reads a `serde_json::Value` the way the schemaless converter reads JSON:
/// integers as int64, other numbers as float64, objects as string-keyed maps.
pub fn from_json_value(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::Null,
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int64(i),
            None if n.is_u64() => Value::Int64(n.as_u64().unwrap_or_default() as i64),
            None => Value::Float64(n.as_f64().unwrap_or_default()),
        },
        J::String(s) => Value::String(s.clone()),
        J::Array(items) => Value::Array(items.iter().map(from_json_value).collect()),
        J::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (Value::String(k.clone()), from_json_value(v)))
                .collect(),
        ),
    }
}

/// A capacity guess for a value's JSON, so a large string (a MongoDB
/// document as JSON text, ~1 KB) is written without repeated regrowth.
fn output_hint(value: &Value) -> usize {
    match value {
        // Quotes plus some escapes.
        Value::String(s) => s.len() + s.len() / 8 + 16,
        // Base64.
        Value::Bytes(b) => b.len() / 3 * 4 + 16,
        _ => 128,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
