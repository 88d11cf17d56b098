//! Connect schemas ↔ Avro schemas, following Confluent's `AvroData`
//! (schema-registry `avro-data`, `io.confluent.connect.avro.AvroData`).
//!
//! The rules that shape the registered text, and so must match Java exactly:
//! * structs become records; an unnamed struct is
//!   `io.confluent.connect.avro.ConnectDefault`, further unnamed ones in the
//!   same schema `ConnectDefault2`, `ConnectDefault3`, … in pre-order;
//! * Connect metadata goes into properties, in this order: `connect.doc`,
//!   `connect.version`, `connect.parameters`, `connect.default`,
//!   `connect.name`, `connect.type` (only when `connect.meta.data=true`);
//! * int8/int16 are `int` with `connect.type`; Decimal is `bytes` with
//!   `scale`, `precision` (from `connect.decimal.precision`, default 64) and
//!   `logicalType: decimal`; Date `int`/`date`, Time `int`/`time-millis`,
//!   Timestamp `long`/`timestamp-millis`;
//! * an optional schema is the union `["null", T]`, or `[T, "null"]` when it
//!   has a default; an optional record field without a default gets
//!   `"default": null`;
//! * a map whose key is not a required string is an array of
//!   `io.confluent.connect.avro.MapEntry` records (`key`, `value`).
//!
//! Identical Connect schemas used twice are converted once, so the second
//! use is written as a name reference.

use std::sync::Arc;

use connect_api::data::logical;
use connect_api::{
    ConnectError, ConnectResult, Schema, SchemaBuilder, SchemaRef, SchemaType, Value,
};
use serde_json::{Map, Value as J};

use super::schema::{split_name, AvroSchema, Enum, Field, Fixed, Names, Primitive, Props, Record};

pub const NAMESPACE: &str = "io.confluent.connect.avro";
pub const DEFAULT_SCHEMA_NAME: &str = "ConnectDefault";
pub const DEFAULT_SCHEMA_FULL_NAME: &str = "io.confluent.connect.avro.ConnectDefault";
pub const MAP_ENTRY_TYPE_NAME: &str = "MapEntry";
pub const KEY_FIELD: &str = "key";
pub const VALUE_FIELD: &str = "value";
pub const CONNECT_NAME_PROP: &str = "connect.name";
pub const CONNECT_DOC_PROP: &str = "connect.doc";
pub const CONNECT_VERSION_PROP: &str = "connect.version";
pub const CONNECT_DEFAULT_VALUE_PROP: &str = "connect.default";
pub const CONNECT_PARAMETERS_PROP: &str = "connect.parameters";
pub const CONNECT_INTERNAL_TYPE_NAME: &str = "connect.internal.type";
pub const CONNECT_TYPE_PROP: &str = "connect.type";
pub const AVRO_RECORD_DOC_PROP: &str = "io.confluent.connect.avro.record.doc";
pub const AVRO_ENUM_DOC_PREFIX_PROP: &str = "io.confluent.connect.avro.enum.doc.";
pub const AVRO_FIELD_DOC_PREFIX_PROP: &str = "io.confluent.connect.avro.field.doc.";
pub const AVRO_FIELD_DEFAULT_FLAG_PROP: &str = "io.confluent.connect.avro.field.default";
pub const AVRO_ENUM_DEFAULT_PREFIX_PROP: &str = "io.confluent.connect.avro.enum.default.";
pub const AVRO_TYPE_UNION: &str = "io.confluent.connect.avro.Union";
pub const AVRO_TYPE_ENUM: &str = "io.confluent.connect.avro.Enum";
pub const CONNECT_AVRO_FIXED_SIZE_PROP: &str = "connect.fixed.size";
pub const CONNECT_AVRO_DECIMAL_PRECISION_PROP: &str = "connect.decimal.precision";
pub const CONNECT_AVRO_DECIMAL_PRECISION_DEFAULT: i64 = 64;
const AVRO_PROP: &str = "avro";
const LOGICAL_TYPE_PROP: &str = "logicalType";

/// The `AvroDataConfig` settings that change the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvroDataConfig {
    /// `connect.meta.data` (default true).
    pub connect_meta_data: bool,
    /// `enhanced.avro.schema.support` (default false): Connect strings
    /// carrying `io.confluent.connect.avro.Enum` parameters become Avro
    /// enums, and union members are named by full name.
    pub enhanced_schema_support: bool,
}

impl Default for AvroDataConfig {
    fn default() -> Self {
        AvroDataConfig {
            connect_meta_data: true,
            enhanced_schema_support: false,
        }
    }
}

fn data_err(msg: impl Into<String>) -> ConnectError {
    ConnectError::data(msg)
}

/// Per-conversion state (Java's `FromConnectContext`).
#[derive(Default)]
struct FromConnectContext {
    /// Required schemas already converted, so reuse becomes a name reference.
    schema_map: Vec<(Schema, AvroSchema)>,
    default_name_index: usize,
}

impl FromConnectContext {
    fn name_or_default(&mut self, name: Option<&str>) -> (Option<String>, String) {
        match name {
            Some(n) => {
                let (ns, simple) = split_name(n);
                (ns.map(str::to_string), simple.to_string())
            }
            None => {
                self.default_name_index += 1;
                let suffix = if self.default_name_index > 1 {
                    self.default_name_index.to_string()
                } else {
                    String::new()
                };
                (
                    Some(NAMESPACE.to_string()),
                    format!("{DEFAULT_SCHEMA_NAME}{suffix}"),
                )
            }
        }
    }
}

fn join_name(ns: Option<&str>, simple: &str) -> String {
    match ns {
        Some(ns) if !ns.is_empty() => format!("{ns}.{simple}"),
        _ => simple.to_string(),
    }
}

fn is_union_schema(s: &Schema) -> bool {
    s.schema_type == SchemaType::Struct && s.name.as_deref() == Some(AVRO_TYPE_UNION)
}

fn is_enum_schema(s: &Schema) -> bool {
    s.schema_type == SchemaType::String && s.parameters.contains_key(AVRO_TYPE_ENUM)
}

fn is_fixed_schema(s: &Schema) -> bool {
    s.schema_type == SchemaType::Bytes
        && s.name.is_some()
        && s.parameters.contains_key(CONNECT_AVRO_FIXED_SIZE_PROP)
}

fn is_string_keyed_map(s: &Schema) -> bool {
    s.key_schema
        .as_ref()
        .is_some_and(|k| k.schema_type == SchemaType::String && !k.optional)
}

/// Java's `nonOptional(schema)`.
fn non_optional(s: &Schema) -> Schema {
    let mut s = s.clone();
    s.optional = false;
    s
}

// Method names mirror Java's AvroData (`fromConnectSchema`, `toConnectSchema`).
#[allow(clippy::wrong_self_convention)]
impl AvroDataConfig {
    /// The Avro schema for a Connect schema (Java's `fromConnectSchema`).
    pub fn from_connect_schema(&self, schema: &Schema) -> ConnectResult<AvroSchema> {
        self.from_connect(schema, &mut FromConnectContext::default(), false)
    }

    fn from_connect(
        &self,
        schema: &Schema,
        ctx: &mut FromConnectContext,
        ignore_optional: bool,
    ) -> ConnectResult<AvroSchema> {
        if !is_union_schema(schema) && !schema.optional {
            if let Some((_, cached)) = ctx.schema_map.iter().find(|(s, _)| s == schema) {
                return Ok(cached.clone());
            }
        }
        let mut connect_type = None;
        let mut props = Props::new();
        let base = match schema.schema_type {
            SchemaType::Int8 => {
                connect_type = Some("int8");
                BaseKind::Primitive(Primitive::Int)
            }
            SchemaType::Int16 => {
                connect_type = Some("int16");
                BaseKind::Primitive(Primitive::Int)
            }
            SchemaType::Int32 => BaseKind::Primitive(Primitive::Int),
            SchemaType::Int64 => BaseKind::Primitive(Primitive::Long),
            SchemaType::Float32 => BaseKind::Primitive(Primitive::Float),
            SchemaType::Float64 => BaseKind::Primitive(Primitive::Double),
            SchemaType::Boolean => BaseKind::Primitive(Primitive::Boolean),
            SchemaType::String => {
                if self.enhanced_schema_support && is_enum_schema(schema) {
                    let prefix = format!("{AVRO_TYPE_ENUM}.");
                    let symbols = schema
                        .parameters
                        .keys()
                        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
                        .collect();
                    let (_, name) = ctx.name_or_default(schema.name.as_deref());
                    BaseKind::Enum {
                        name: schema.parameters[AVRO_TYPE_ENUM].clone(),
                        doc: schema
                            .parameters
                            .get(&format!("{AVRO_ENUM_DOC_PREFIX_PROP}{name}"))
                            .cloned(),
                        default: schema
                            .parameters
                            .get(&format!("{AVRO_ENUM_DEFAULT_PREFIX_PROP}{name}"))
                            .cloned(),
                        symbols,
                    }
                } else {
                    BaseKind::Primitive(Primitive::String)
                }
            }
            SchemaType::Bytes => {
                let kind = if is_fixed_schema(schema) {
                    let (ns, name) = ctx.name_or_default(schema.name.as_deref());
                    let size = schema.parameters[CONNECT_AVRO_FIXED_SIZE_PROP]
                        .parse::<usize>()
                        .map_err(|_| data_err("connect.fixed.size must be an integer"))?;
                    BaseKind::Fixed {
                        name: join_name(ns.as_deref(), &name),
                        size,
                    }
                } else {
                    BaseKind::Primitive(Primitive::Bytes)
                };
                if schema.is_logical(logical::DECIMAL) {
                    let scale = decimal_scale(schema)?;
                    props.insert("scale".into(), J::from(scale));
                    props.insert("precision".into(), J::from(decimal_precision(schema)?));
                }
                kind
            }
            SchemaType::Array => {
                let items = schema
                    .value_schema
                    .as_ref()
                    .ok_or_else(|| data_err("array schema without an element schema"))?;
                BaseKind::Array(self.from_connect(items, ctx, false)?)
            }
            SchemaType::Map => {
                let (key, value) = match (&schema.key_schema, &schema.value_schema) {
                    (Some(k), Some(v)) => (k, v),
                    _ => return Err(data_err("map schema without key or value schema")),
                };
                if is_string_keyed_map(schema) {
                    BaseKind::Map(self.from_connect(value, ctx, false)?)
                } else {
                    let mut entry_props = Props::new();
                    let name = match &schema.name {
                        None => format!("{NAMESPACE}.{MAP_ENTRY_TYPE_NAME}"),
                        Some(n) => {
                            let (ns, simple) = ctx.name_or_default(Some(n));
                            entry_props.insert(
                                CONNECT_INTERNAL_TYPE_NAME.into(),
                                J::from(MAP_ENTRY_TYPE_NAME),
                            );
                            join_name(ns.as_deref(), &simple)
                        }
                    };
                    let fields = vec![
                        self.record_field(KEY_FIELD, key, None, ctx)?,
                        self.record_field(VALUE_FIELD, value, None, ctx)?,
                    ];
                    BaseKind::Array(AvroSchema::Record(Arc::new(Record {
                        name,
                        doc: None,
                        fields,
                        props: entry_props,
                    })))
                }
            }
            SchemaType::Struct => {
                if is_union_schema(schema) {
                    let mut members = Vec::with_capacity(schema.fields.len() + 1);
                    if schema.optional {
                        members.push(AvroSchema::primitive(Primitive::Null));
                    }
                    for f in &schema.fields {
                        members.push(self.from_connect(&non_optional(&f.schema), ctx, true)?);
                    }
                    BaseKind::Union(members)
                } else if schema.optional {
                    let inner = self.from_connect(&non_optional(schema), ctx, false)?;
                    BaseKind::Union(vec![AvroSchema::primitive(Primitive::Null), inner])
                } else {
                    let (ns, name) = ctx.name_or_default(schema.name.as_deref());
                    let doc = schema.parameters.get(AVRO_RECORD_DOC_PROP).cloned();
                    let mut fields = Vec::with_capacity(schema.fields.len());
                    for f in &schema.fields {
                        let doc = schema
                            .parameters
                            .get(&format!("{AVRO_FIELD_DOC_PREFIX_PROP}{}", f.name))
                            .cloned();
                        fields.push(self.record_field(&f.name, &f.schema, doc, ctx)?);
                    }
                    BaseKind::Record {
                        name: join_name(ns.as_deref(), &name),
                        doc,
                        fields,
                    }
                }
            }
        };

        let final_schema = if let BaseKind::Union(members) = base {
            // Unions carry no properties in Avro, so the metadata is dropped
            // (it lives on the member), exactly as in Java.
            AvroSchema::Union(members)
        } else {
            if self.connect_meta_data {
                if let Some(doc) = &schema.doc {
                    props.insert(CONNECT_DOC_PROP.into(), J::from(doc.as_str()));
                }
                if let Some(v) = schema.version {
                    props.insert(CONNECT_VERSION_PROP.into(), J::from(v));
                }
                let params: Map<String, J> = schema
                    .parameters
                    .iter()
                    .filter(|(k, _)| k.as_str() != AVRO_FIELD_DEFAULT_FLAG_PROP)
                    .map(|(k, v)| (k.clone(), J::from(v.as_str())))
                    .collect();
                if !params.is_empty() {
                    props.insert(CONNECT_PARAMETERS_PROP.into(), J::Object(params));
                }
                if let Some(d) = &schema.default_value {
                    if !schema.parameters.contains_key(AVRO_FIELD_DEFAULT_FLAG_PROP) {
                        props.insert(
                            CONNECT_DEFAULT_VALUE_PROP.into(),
                            default_from_connect(schema, d)?,
                        );
                    }
                }
                if let Some(name) = &schema.name {
                    props.insert(CONNECT_NAME_PROP.into(), J::from(name.as_str()));
                }
                if let Some(t) = connect_type {
                    props.insert(CONNECT_TYPE_PROP.into(), J::from(t));
                }
            }
            // Java's LogicalTypes.addToSchema appends `logicalType` (and
            // re-adds precision/scale, already present with equal values).
            let logical_type = match schema.name.as_deref() {
                Some(n) if n.eq_ignore_ascii_case(logical::DECIMAL) => {
                    // Avro cannot express scale > precision or a negative
                    // scale; Java then keeps only the legacy property, which
                    // is the same `logicalType` text.
                    Some("decimal")
                }
                Some(n) if n.eq_ignore_ascii_case(logical::TIME) => Some("time-millis"),
                Some(n) if n.eq_ignore_ascii_case(logical::TIMESTAMP) => Some("timestamp-millis"),
                Some(n) if n.eq_ignore_ascii_case(logical::DATE) => Some("date"),
                _ => None,
            };
            if let Some(lt) = logical_type {
                props.insert(LOGICAL_TYPE_PROP.into(), J::from(lt));
            }
            for (k, v) in &schema.parameters {
                if k.starts_with(AVRO_PROP) {
                    props.insert(k.clone(), J::from(v.as_str()));
                }
            }
            let base_schema = base.build(props);
            if ignore_optional {
                base_schema
            } else {
                maybe_make_optional(schema, base_schema)
            }
        };
        if !schema.optional {
            ctx.schema_map.push((schema.clone(), final_schema.clone()));
        }
        Ok(final_schema)
    }

    /// Java's `addAvroRecordField`.
    fn record_field(
        &self,
        name: &str,
        schema: &Schema,
        doc: Option<String>,
        ctx: &mut FromConnectContext,
    ) -> ConnectResult<Field> {
        let mut default = match &schema.default_value {
            Some(d) => Some(default_from_connect(schema, d)?),
            None if schema.optional => Some(J::Null),
            None => None,
        };
        let avro = self.from_connect(schema, ctx, false)?;
        // Java's Schema.Field rejects a default that does not fit the
        // field's type and AvroData then drops it; do the same.
        if let Some(d) = &default {
            if !default_fits(&avro, d) {
                default = None;
            }
        }
        Ok(Field {
            name: name.to_string(),
            schema: avro,
            doc,
            default,
        })
    }
}

/// The shape of a base schema before its properties are known.
enum BaseKind {
    Primitive(Primitive),
    Array(AvroSchema),
    Map(AvroSchema),
    Union(Vec<AvroSchema>),
    Record {
        name: String,
        doc: Option<String>,
        fields: Vec<Field>,
    },
    Enum {
        name: String,
        doc: Option<String>,
        default: Option<String>,
        symbols: Vec<String>,
    },
    Fixed {
        name: String,
        size: usize,
    },
}

impl BaseKind {
    fn build(self, props: Props) -> AvroSchema {
        match self {
            BaseKind::Primitive(p) => AvroSchema::Primitive(p, props),
            BaseKind::Array(items) => AvroSchema::Array(Box::new(items), props),
            BaseKind::Map(values) => AvroSchema::Map(Box::new(values), props),
            BaseKind::Union(m) => AvroSchema::Union(m),
            BaseKind::Record { name, doc, fields } => AvroSchema::Record(Arc::new(Record {
                name,
                doc,
                fields,
                props,
            })),
            BaseKind::Enum {
                name,
                doc,
                default,
                symbols,
            } => AvroSchema::Enum(Arc::new(Enum {
                name,
                doc,
                symbols,
                default,
                props,
            })),
            BaseKind::Fixed { name, size } => {
                AvroSchema::Fixed(Arc::new(Fixed { name, size, props }))
            }
        }
    }
}

fn maybe_make_optional(schema: &Schema, base: AvroSchema) -> AvroSchema {
    if !schema.optional {
        return base;
    }
    let null = AvroSchema::primitive(Primitive::Null);
    if schema.default_value.is_some() {
        AvroSchema::Union(vec![base, null])
    } else {
        AvroSchema::Union(vec![null, base])
    }
}

fn decimal_scale(schema: &Schema) -> ConnectResult<i64> {
    match schema.parameters.get(logical::DECIMAL_SCALE) {
        Some(s) => s
            .parse()
            .map_err(|_| data_err(format!("Invalid Decimal scale parameter: {s}"))),
        None => Ok(0),
    }
}

fn decimal_precision(schema: &Schema) -> ConnectResult<i64> {
    match schema.parameters.get(CONNECT_AVRO_DECIMAL_PRECISION_PROP) {
        Some(s) => s
            .parse()
            .map_err(|_| data_err(format!("Invalid connect.decimal.precision: {s}"))),
        None => Ok(CONNECT_AVRO_DECIMAL_PRECISION_DEFAULT),
    }
}

/// Bytes as Avro's JSON form: one char per byte (ISO-8859-1).
pub fn bytes_to_json(b: &[u8]) -> J {
    J::String(b.iter().map(|&c| char::from(c)).collect())
}

/// Avro's JSON bytes back to bytes; `None` if a char is above U+00FF.
pub fn bytes_from_json(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

fn float_json(v: f32) -> J {
    // Java writes a float default with Float.toString; going through the
    // shortest decimal text keeps 0.1f as 0.1 rather than 0.10000000149.
    connect_api::data::java::float_to_string(v)
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(J::Null, J::Number)
}

/// Java's `defaultValueFromConnect`: a Connect value as Avro default JSON.
pub fn default_from_connect(schema: &Schema, value: &Value) -> ConnectResult<J> {
    let bad = || {
        data_err(format!(
            "Invalid type used for default value of {} field: {}",
            schema.schema_type.java_name(),
            value.type_name()
        ))
    };
    Ok(match (schema.schema_type, value) {
        (_, Value::Null) => J::Null,
        (SchemaType::Int8, Value::Int8(v)) => J::from(*v),
        (SchemaType::Int16, Value::Int16(v)) => J::from(*v),
        (SchemaType::Int32, Value::Int32(v) | Value::Date(v) | Value::Time(v)) => J::from(*v),
        (SchemaType::Int64, Value::Int64(v) | Value::Timestamp(v)) => J::from(*v),
        (SchemaType::Float32, Value::Float32(v)) => float_json(*v),
        (SchemaType::Float64, Value::Float64(v)) => {
            serde_json::Number::from_f64(*v).map_or(J::Null, J::Number)
        }
        (SchemaType::Boolean, Value::Boolean(v)) => J::Bool(*v),
        (SchemaType::String, Value::String(v)) => J::from(v.as_str()),
        (SchemaType::Bytes, Value::Bytes(b)) => bytes_to_json(b),
        (SchemaType::Bytes, Value::Decimal(d)) => bytes_to_json(&d.unscaled),
        (SchemaType::Array, Value::Array(items)) => {
            let elem = schema.value_schema.as_ref().ok_or_else(bad)?;
            J::Array(
                items
                    .iter()
                    .map(|i| default_from_connect(elem, i))
                    .collect::<ConnectResult<_>>()?,
            )
        }
        (SchemaType::Map, Value::Map(entries)) => {
            let (ks, vs) = match (&schema.key_schema, &schema.value_schema) {
                (Some(k), Some(v)) => (k, v),
                _ => return Err(bad()),
            };
            if is_string_keyed_map(schema) {
                let mut obj = Map::new();
                for (k, v) in entries {
                    let k = k.as_str().ok_or_else(bad)?;
                    obj.insert(k.to_string(), default_from_connect(vs, v)?);
                }
                J::Object(obj)
            } else {
                J::Array(
                    entries
                        .iter()
                        .map(|(k, v)| {
                            Ok(J::Array(vec![
                                default_from_connect(ks, k)?,
                                default_from_connect(vs, v)?,
                            ]))
                        })
                        .collect::<ConnectResult<_>>()?,
                )
            }
        }
        (SchemaType::Struct, Value::Struct(s)) => {
            let union = is_union_schema(schema);
            let mut obj = Map::new();
            for f in &schema.fields {
                let v = default_from_connect(&f.schema, &s.values[f.index])?;
                if union {
                    return Ok(v);
                }
                obj.insert(f.name.clone(), v);
            }
            J::Object(obj)
        }
        _ => return Err(bad()),
    })
}

/// Whether a default is valid for a schema (Avro Java's default validation;
/// a union's default must match its first member).
fn default_fits(schema: &AvroSchema, d: &J) -> bool {
    match schema {
        AvroSchema::Primitive(p, _) => match p {
            Primitive::Null => d.is_null(),
            Primitive::Boolean => d.is_boolean(),
            Primitive::Int => d.as_i64().is_some_and(|v| i32::try_from(v).is_ok()),
            Primitive::Long => d.is_i64() || d.is_u64(),
            Primitive::Float | Primitive::Double => d.is_number(),
            Primitive::Bytes | Primitive::String => d.is_string(),
        },
        AvroSchema::Array(items, _) => d
            .as_array()
            .is_some_and(|a| a.iter().all(|i| default_fits(items, i))),
        AvroSchema::Map(values, _) => d
            .as_object()
            .is_some_and(|o| o.values().all(|v| default_fits(values, v))),
        AvroSchema::Union(m) => m.first().is_some_and(|f| default_fits(f, d)),
        AvroSchema::Record(r) => d.as_object().is_some_and(|o| {
            r.fields.iter().all(|f| match o.get(&f.name) {
                Some(v) => default_fits(&f.schema, v),
                None => f.default.is_some(),
            })
        }),
        AvroSchema::Enum(e) => d.as_str().is_some_and(|s| e.symbols.iter().any(|x| x == s)),
        AvroSchema::Fixed(f) => d
            .as_str()
            .and_then(bytes_from_json)
            .is_some_and(|b| b.len() == f.size),
        AvroSchema::Ref(_) => true,
    }
}

/// Per-conversion state for Avro → Connect.
struct ToConnectContext<'a> {
    names: &'a Names,
    depth: usize,
}

/// Deeper nesting than this is a recursive Avro type, which Connect's
/// immutable schemas cannot express.
const MAX_DEPTH: usize = 64;

#[allow(clippy::wrong_self_convention)]
impl AvroDataConfig {
    /// The Connect schema for a writer schema (Java's `toConnectSchema`).
    /// `version` is the registry version, used when the schema carries no
    /// `connect.version`.
    pub fn to_connect_schema(
        &self,
        avro: &AvroSchema,
        names: &Names,
        version: Option<i32>,
    ) -> ConnectResult<SchemaRef> {
        let mut ctx = ToConnectContext { names, depth: 0 };
        Ok(Arc::new(
            self.to_connect(avro, false, None, version, &mut ctx)?,
        ))
    }

    fn to_connect(
        &self,
        avro: &AvroSchema,
        force_optional: bool,
        field_default: Option<&J>,
        version: Option<i32>,
        ctx: &mut ToConnectContext<'_>,
    ) -> ConnectResult<Schema> {
        ctx.depth += 1;
        if ctx.depth > MAX_DEPTH {
            return Err(data_err(
                "Recursive Avro schemas cannot be converted to Connect schemas",
            ));
        }
        let result = self.to_connect_inner(avro, force_optional, field_default, version, ctx);
        ctx.depth -= 1;
        result
    }

    fn to_connect_inner(
        &self,
        avro: &AvroSchema,
        force_optional: bool,
        field_default: Option<&J>,
        version: Option<i32>,
        ctx: &mut ToConnectContext<'_>,
    ) -> ConnectResult<Schema> {
        let avro = avro.resolve(ctx.names);
        let connect_type = avro.prop_str(CONNECT_TYPE_PROP);
        let logical_type = avro.prop_str(LOGICAL_TYPE_PROP);
        let mut b = match avro {
            AvroSchema::Primitive(p, _) => match p {
                Primitive::Boolean => SchemaBuilder::boolean(),
                Primitive::Bytes => bytes_builder(avro, logical_type)?,
                Primitive::Double => SchemaBuilder::float64(),
                Primitive::Float => SchemaBuilder::float32(),
                Primitive::Int => match (connect_type, logical_type) {
                    (None, None) => SchemaBuilder::int32(),
                    (_, Some(lt)) if lt.eq_ignore_ascii_case("date") => logical::date(),
                    (_, Some(lt)) if lt.eq_ignore_ascii_case("time-millis") => logical::time(),
                    (_, Some(_)) => SchemaBuilder::int32(),
                    (Some("int8"), None) => SchemaBuilder::int8(),
                    (Some("int16"), None) => SchemaBuilder::int16(),
                    (Some(_), None) => {
                        return Err(data_err(
                            "Connect type annotation for Avro int field is null",
                        ))
                    }
                },
                Primitive::Long => match logical_type {
                    Some(lt) if lt.eq_ignore_ascii_case("timestamp-millis") => logical::timestamp(),
                    _ => SchemaBuilder::int64(),
                },
                Primitive::String => SchemaBuilder::string(),
                Primitive::Null => {
                    return Err(data_err(
                        "Standalone null schemas are not supported by this converter",
                    ))
                }
            },
            AvroSchema::Fixed(f) => bytes_builder(avro, logical_type)?
                .parameter(CONNECT_AVRO_FIXED_SIZE_PROP, f.size.to_string()),
            AvroSchema::Array(items, _) => {
                let items = items.resolve(ctx.names);
                match items {
                    AvroSchema::Record(entry) if is_map_entry(entry) => {
                        let (Some(k), Some(v), 2) = (
                            entry.field(KEY_FIELD),
                            entry.field(VALUE_FIELD),
                            entry.fields.len(),
                        ) else {
                            return Err(data_err("Found map encoded as array of key-value pairs, but array elements do not match the expected format."));
                        };
                        // Java converts key and value as top-level schemas.
                        let ks = self.to_connect(&k.schema, false, None, None, ctx)?;
                        let vs = self.to_connect(&v.schema, false, None, None, ctx)?;
                        SchemaBuilder::map(Arc::new(ks), Arc::new(vs))
                    }
                    _ => {
                        let elem = self.to_connect(items, false, None, None, ctx)?;
                        SchemaBuilder::array(Arc::new(elem))
                    }
                }
            }
            AvroSchema::Map(values, _) => {
                let vs = self.to_connect(values, false, None, None, ctx)?;
                SchemaBuilder::map(Schema::primitive(SchemaType::String, false), Arc::new(vs))
            }
            AvroSchema::Record(r) => {
                let mut b = SchemaBuilder::struct_();
                if self.connect_meta_data {
                    if let Some(doc) = &r.doc {
                        b = b.parameter(AVRO_RECORD_DOC_PROP, doc.clone());
                    }
                }
                for f in &r.fields {
                    if self.connect_meta_data {
                        if let Some(doc) = &f.doc {
                            b = b.parameter(
                                format!("{AVRO_FIELD_DOC_PREFIX_PROP}{}", f.name),
                                doc.clone(),
                            );
                        }
                    }
                    let fs = self.to_connect(&f.schema, false, f.default.as_ref(), None, ctx)?;
                    b = b.field(f.name.clone(), Arc::new(fs));
                }
                b
            }
            AvroSchema::Enum(e) => {
                let mut b = SchemaBuilder::string();
                let (_, simple) = split_name(&e.name);
                if self.connect_meta_data {
                    if let Some(doc) = &e.doc {
                        b = b
                            .parameter(format!("{AVRO_ENUM_DOC_PREFIX_PROP}{simple}"), doc.clone());
                    }
                    if let Some(d) = &e.default {
                        b = b.parameter(
                            format!("{AVRO_ENUM_DEFAULT_PREFIX_PROP}{simple}"),
                            d.clone(),
                        );
                    }
                }
                b = b.parameter(AVRO_TYPE_ENUM, e.name.clone());
                for s in &e.symbols {
                    b = b.parameter(format!("{AVRO_TYPE_ENUM}.{s}"), s.clone());
                }
                b
            }
            AvroSchema::Union(members) => {
                if members.len() == 2 && members.iter().any(AvroSchema::is_null) {
                    if let Some(m) = members.iter().find(|m| !m.is_null()) {
                        return self.to_connect(m, true, None, None, ctx);
                    }
                }
                let mut b = SchemaBuilder::struct_().name(AVRO_TYPE_UNION);
                let mut seen: Vec<String> = Vec::new();
                for m in members {
                    if m.is_null() {
                        b = b.optional();
                        continue;
                    }
                    let name = self.union_member_field_name(m.resolve(ctx.names));
                    if seen.contains(&name) {
                        return Err(data_err(
                            "Multiple union schemas map to the Connect union field name",
                        ));
                    }
                    seen.push(name.clone());
                    let ms = self.to_connect(m, true, None, None, ctx)?;
                    b = b.field(name, Arc::new(ms));
                }
                b
            }
            AvroSchema::Ref(n) => return Err(data_err(format!("Unknown Avro type name {n}"))),
        };

        if self.connect_meta_data {
            if let Some(doc) = avro.prop_str(CONNECT_DOC_PROP) {
                b = b.doc(doc);
            }
        }
        let version_prop = match avro.prop(CONNECT_VERSION_PROP) {
            Some(v) => Some(
                v.as_i64()
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| data_err(format!("Invalid Connect version found: {v}")))?,
            ),
            None => version,
        };
        let mut schema = b.build_schema();
        if let Some(v) = version_prop.filter(|v| *v >= 0) {
            match schema.version {
                Some(existing) if existing != v => {
                    return Err(data_err(format!("Mismatched versions: version already added to SchemaBuilder ({existing}) differs from version in source schema ({v})")));
                }
                _ => schema.version = Some(v),
            }
        }
        if self.connect_meta_data {
            if let Some(params) = avro.prop(CONNECT_PARAMETERS_PROP) {
                let obj = params.as_object().ok_or_else(|| {
                    data_err(format!(
                        "Expected JSON object for schema parameters but found: {params}"
                    ))
                })?;
                for (k, v) in obj {
                    let v = v.as_str().ok_or_else(|| {
                        data_err(format!(
                            "Expected schema parameter values to be strings but found: {v}"
                        ))
                    })?;
                    schema.parameters.insert(k.clone(), v.to_string());
                }
            }
        }
        if let Some(props) = avro.props() {
            for (k, v) in props {
                if k.starts_with(AVRO_PROP) {
                    let text = match v {
                        J::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    schema.parameters.insert(k.clone(), text);
                }
            }
        }
        let connect_default = avro.prop(CONNECT_DEFAULT_VALUE_PROP);
        let default_json = match field_default {
            None => connect_default,
            Some(d) => {
                if self.connect_meta_data && connect_default.is_none() {
                    schema
                        .parameters
                        .insert(AVRO_FIELD_DEFAULT_FLAG_PROP.into(), "true".into());
                }
                Some(d)
            }
        };
        if let Some(d) = default_json {
            // Java logs and ignores a default it cannot convert.
            if let Ok(v) = default_from_avro(&schema, avro, d, ctx.names, self) {
                if !v.is_null() {
                    schema.default_value = Some(v);
                }
            }
        }
        let name = match avro.prop(CONNECT_NAME_PROP) {
            Some(J::String(n)) => Some(n.clone()),
            Some(other) => return Err(data_err(format!("Invalid schema name: {other}"))),
            None => avro.full_name().map(str::to_string),
        };
        if let Some(name) = name.filter(|n| !n.starts_with(DEFAULT_SCHEMA_FULL_NAME)) {
            match &schema.name {
                Some(existing) if *existing != name => {
                    return Err(data_err(format!("Mismatched names: name already added to SchemaBuilder ({existing}) differs from name in source schema ({name})")));
                }
                _ => schema.name = Some(name),
            }
        }
        if force_optional {
            schema.optional = true;
        }
        Ok(schema)
    }

    /// Java's `unionMemberFieldName` for an Avro member.
    pub fn union_member_field_name(&self, member: &AvroSchema) -> String {
        match member {
            AvroSchema::Record(_)
            | AvroSchema::Enum(_)
            | AvroSchema::Fixed(_)
            | AvroSchema::Ref(_) => {
                let full = member.full_name().unwrap_or_default();
                if self.enhanced_schema_support {
                    full.to_string()
                } else {
                    split_name(full).1.to_string()
                }
            }
            other => other.type_name().to_string(),
        }
    }

    /// Java's `unionMemberFieldName` for a Connect member schema.
    pub fn union_member_field_name_connect(&self, s: &Schema) -> String {
        if s.schema_type == SchemaType::Struct || is_enum_schema(s) || is_fixed_schema(s) {
            let full = s.name.as_deref().unwrap_or_default();
            if self.enhanced_schema_support {
                full.to_string()
            } else {
                split_name(full).1.to_string()
            }
        } else {
            match s.schema_type {
                SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 => "int",
                SchemaType::Int64 => "long",
                SchemaType::Float32 => "float",
                SchemaType::Float64 => "double",
                SchemaType::Boolean => "boolean",
                SchemaType::String => "string",
                SchemaType::Bytes => "bytes",
                SchemaType::Array => "array",
                SchemaType::Map => "map",
                SchemaType::Struct => "record",
            }
            .to_string()
        }
    }
}

fn bytes_builder(avro: &AvroSchema, logical_type: Option<&str>) -> ConnectResult<SchemaBuilder> {
    if !logical_type.is_some_and(|lt| lt.eq_ignore_ascii_case("decimal")) {
        return Ok(SchemaBuilder::bytes());
    }
    // Avro's scale is optional and defaults to 0.
    let scale = avro
        .prop("scale")
        .and_then(J::as_i64)
        .and_then(|s| i32::try_from(s).ok())
        .unwrap_or(0);
    let mut b = logical::decimal(scale);
    if let Some(p) = avro.prop("precision") {
        let p = p.as_i64().ok_or_else(|| {
            data_err("precision property must be a JSON Integer. https://avro.apache.org/docs/1.9.1/spec.html#Decimal")
        })?;
        if p != CONNECT_AVRO_DECIMAL_PRECISION_DEFAULT {
            b = b.parameter(CONNECT_AVRO_DECIMAL_PRECISION_PROP, p.to_string());
        }
    }
    Ok(b)
}

fn is_map_entry(r: &Record) -> bool {
    r.name == format!("{NAMESPACE}.{MAP_ENTRY_TYPE_NAME}")
        || r.props.get(CONNECT_INTERNAL_TYPE_NAME).and_then(J::as_str) == Some(MAP_ENTRY_TYPE_NAME)
}

/// Java's `defaultValueFromAvro`: Avro default JSON as a Connect value.
fn default_from_avro(
    schema: &Schema,
    avro: &AvroSchema,
    d: &J,
    names: &Names,
    cfg: &AvroDataConfig,
) -> ConnectResult<Value> {
    let bad = || {
        data_err(format!(
            "Invalid default value {d} for {}",
            avro.type_name()
        ))
    };
    if d.is_null() {
        return Ok(Value::Null);
    }
    let avro = avro.resolve(names);
    let v = match avro {
        AvroSchema::Primitive(p, _) => match p {
            Primitive::Int => {
                let i = d.as_i64().ok_or_else(bad)?;
                match schema.schema_type {
                    SchemaType::Int8 => Value::Int8(i as i8),
                    SchemaType::Int16 => Value::Int16(i as i16),
                    _ => Value::Int32(i as i32),
                }
            }
            Primitive::Long => Value::Int64(d.as_i64().ok_or_else(bad)?),
            Primitive::Float => Value::Float32(d.as_f64().ok_or_else(bad)? as f32),
            Primitive::Double => Value::Float64(d.as_f64().ok_or_else(bad)?),
            Primitive::Boolean => Value::Boolean(d.as_bool().ok_or_else(bad)?),
            Primitive::Null => Value::Null,
            Primitive::String => Value::String(d.as_str().ok_or_else(bad)?.to_string()),
            Primitive::Bytes => Value::Bytes(d.as_str().and_then(bytes_from_json).ok_or_else(bad)?),
        },
        AvroSchema::Enum(_) => Value::String(d.as_str().ok_or_else(bad)?.to_string()),
        AvroSchema::Fixed(_) => Value::Bytes(d.as_str().and_then(bytes_from_json).ok_or_else(bad)?),
        AvroSchema::Array(items, _) => {
            let elem = schema.value_schema.as_ref().ok_or_else(bad)?;
            let arr = d.as_array().ok_or_else(bad)?;
            match (schema.schema_type, items.resolve(names)) {
                (SchemaType::Map, AvroSchema::Record(entry)) => {
                    // A MapEntry array default: [[k, v], ...] as Connect writes it.
                    let ks = schema.key_schema.as_ref().ok_or_else(bad)?;
                    let (kf, vf) = (
                        entry.field(KEY_FIELD).ok_or_else(bad)?,
                        entry.field(VALUE_FIELD).ok_or_else(bad)?,
                    );
                    let mut out = Vec::with_capacity(arr.len());
                    for pair in arr {
                        let pair = pair.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
                        out.push((
                            default_from_avro(ks, &kf.schema, &pair[0], names, cfg)?,
                            default_from_avro(elem, &vf.schema, &pair[1], names, cfg)?,
                        ));
                    }
                    Value::Map(out)
                }
                (_, items) => Value::Array(
                    arr.iter()
                        .map(|i| default_from_avro(elem, items, i, names, cfg))
                        .collect::<ConnectResult<_>>()?,
                ),
            }
        }
        AvroSchema::Map(values, _) => {
            let vs = schema.value_schema.as_ref().ok_or_else(bad)?;
            let obj = d.as_object().ok_or_else(bad)?;
            Value::Map(
                obj.iter()
                    .map(|(k, v)| {
                        Ok((
                            Value::String(k.clone()),
                            default_from_avro(vs, values, v, names, cfg)?,
                        ))
                    })
                    .collect::<ConnectResult<_>>()?,
            )
        }
        AvroSchema::Record(r) => {
            let obj = d.as_object().ok_or_else(bad)?;
            let schema_ref = Arc::new(schema.clone());
            let mut s = connect_api::Struct::new(schema_ref);
            for af in &r.fields {
                let Some(cf) = schema.field(&af.name) else {
                    continue;
                };
                let fv = match obj.get(&af.name) {
                    Some(j) => default_from_avro(&cf.schema, &af.schema, j, names, cfg)?,
                    None => Value::Null,
                };
                s.values[cf.index] = fv;
            }
            Value::Struct(s)
        }
        AvroSchema::Union(members) => {
            let first = members.first().ok_or_else(bad)?;
            if first.is_null() {
                Value::Null
            } else if is_union_schema(schema) {
                let fname = cfg.union_member_field_name(first.resolve(names));
                let f = schema.field(&fname).ok_or_else(bad)?;
                let inner = default_from_avro(&f.schema, first, d, names, cfg)?;
                let mut s = connect_api::Struct::new(Arc::new(schema.clone()));
                s.values[f.index] = inner;
                Value::Struct(s)
            } else {
                default_from_avro(schema, first, d, names, cfg)?
            }
        }
        AvroSchema::Ref(_) => return Err(bad()),
    };
    Ok(to_logical(schema, v))
}

/// Re-types a physical value as the logical value its schema names.
pub fn to_logical(schema: &Schema, v: Value) -> Value {
    match (schema.name.as_deref(), v) {
        (Some(logical::DECIMAL), Value::Bytes(b)) => {
            let scale = schema
                .parameters
                .get(logical::DECIMAL_SCALE)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            Value::Decimal(connect_api::data::Decimal {
                unscaled: minimal_twos_complement(b),
                scale,
            })
        }
        (Some(logical::DATE), Value::Int32(d)) => Value::Date(d),
        (Some(logical::TIME), Value::Int32(t)) => Value::Time(t),
        (Some(logical::TIMESTAMP), Value::Int64(t)) => Value::Timestamp(t),
        (_, v) => v,
    }
}

/// Drops redundant sign-extension bytes, as `BigInteger.toByteArray()`
/// would, so equal decimals compare equal whoever wrote them.
pub fn minimal_twos_complement(mut b: Vec<u8>) -> Vec<u8> {
    if b.is_empty() {
        return vec![0];
    }
    let mut start = 0;
    while start + 1 < b.len() {
        let (x, next) = (b[start], b[start + 1]);
        if (x == 0x00 && next & 0x80 == 0) || (x == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    b.drain(..start);
    b
}
