//! Parsed JSON to Connect schemas and values (Java's `asConnectSchema` and
//! `convertToConnect`).
//!
//! Java reads payload nodes with Jackson's lenient accessors: an `int32`
//! field holding text reads as 0, a `boolean` holding a number as false, a
//! `string` holding a number as null. Those outcomes are reproduced so that
//! data accepted by a Java worker is accepted, with the same values, here.

use base64::Engine;
use connect_api::data::logical::{DATE, DECIMAL, TIME, TIMESTAMP};
use connect_api::data::Decimal;
use connect_api::{
    ConnectError, ConnectResult, SchemaBuilder, SchemaRef, SchemaType, Struct, Value,
};

use super::parse::Node;
use super::write::decimal_scale;
use crate::number::{long_value, minimal_twos_complement, parse_decimal};

const MILLIS_PER_DAY: i64 = 86_400_000;

fn number_text<'n>(node: &'n Node<'_>) -> Option<&'n str> {
    match node {
        Node::Number { text, .. } => Some(text),
        _ => None,
    }
}

/// Jackson's `isInt()`: an integral literal that fits in 32 bits.
fn as_int(node: &Node<'_>) -> Option<i32> {
    match node {
        Node::Number {
            text,
            integral: true,
        } => text.parse().ok(),
        _ => None,
    }
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Reads a schema node; JSON `null` means "no schema".
pub(crate) fn to_schema(
    node: &Node<'_>,
    replace_null_with_default: bool,
) -> ConnectResult<Option<SchemaRef>> {
    let Node::Object(obj) = node else {
        if matches!(node, Node::Null) {
            return Ok(None);
        }
        return Err(ConnectError::data("Schema must contain 'type' field"));
    };
    let Some(Node::String(type_name)) = obj.get("type") else {
        return Err(ConnectError::data("Schema must contain 'type' field"));
    };
    let nested = |n: Option<&Node<'_>>| -> ConnectResult<Option<SchemaRef>> {
        match n {
            None => Ok(None),
            Some(n) => to_schema(n, replace_null_with_default),
        }
    };
    let schema_type = SchemaType::from_json_name(type_name)
        .ok_or_else(|| ConnectError::data(format!("Unknown schema type: {type_name}")))?;
    let mut builder = match schema_type {
        SchemaType::Array => {
            let items = nested(obj.get("items"))?.ok_or_else(|| {
                ConnectError::data("Array schema did not specify the element type")
            })?;
            SchemaBuilder::array(items)
        }
        SchemaType::Map => {
            let keys = nested(obj.get("keys"))?
                .ok_or_else(|| ConnectError::data("Map schema did not specify the key type"))?;
            let values = nested(obj.get("values"))?
                .ok_or_else(|| ConnectError::data("Map schema did not specify the value type"))?;
            SchemaBuilder::map(keys, values)
        }
        SchemaType::Struct => {
            let Some(Node::Array(fields)) = obj.get("fields") else {
                return Err(ConnectError::data(
                    "Struct schema's \"fields\" argument is not an array.",
                ));
            };
            let mut b = SchemaBuilder::struct_();
            let mut seen = std::collections::HashSet::new();
            for field in fields {
                let name = match field {
                    Node::Object(f) => match f.get("field") {
                        Some(Node::String(name)) => Some(name),
                        _ => None,
                    },
                    _ => None,
                }
                .ok_or_else(|| {
                    ConnectError::data("Struct schema's field name not specified properly")
                })?;
                if !seen.insert(name.to_string()) {
                    return Err(ConnectError::data(format!(
                        "Cannot create field because of field name duplication {name}"
                    )));
                }
                let field_schema = to_schema(field, replace_null_with_default)?
                    .ok_or_else(|| ConnectError::data("Schema must contain 'type' field"))?;
                b = b.field(name.to_string(), field_schema);
            }
            b
        }
        other => SchemaBuilder::new(other),
    };
    if let Some(Node::Bool(true)) = obj.get("optional") {
        builder = builder.optional();
    }
    if let Some(Node::String(name)) = obj.get("name") {
        builder = builder.name(name.to_string());
    }
    if let Some(node @ Node::Number { integral: true, .. }) = obj.get("version") {
        builder = builder.version(number_text(node).map(long_value).unwrap_or(0) as i32);
    }
    if let Some(Node::String(doc)) = obj.get("doc") {
        builder = builder.doc(doc.to_string());
    }
    if let Some(Node::Object(params)) = obj.get("parameters") {
        for (k, v) in &params.entries {
            let Node::String(v) = v else {
                return Err(ConnectError::data(
                    "Schema parameters must have string values.",
                ));
            };
            builder = builder.parameter(k.to_string(), v.to_string());
        }
    }
    match obj.get("default") {
        None => Ok(Some(builder.build())),
        Some(default_node) => {
            let without_default = builder.clone().build();
            let default = to_value(
                Some(&without_default),
                Some(default_node),
                replace_null_with_default,
            )?;
            if !default.is_null() {
                builder = builder.default_value(default);
            }
            Ok(Some(builder.build()))
        }
    }
}

/// Converts a payload node; `None` is an absent struct field.
pub(crate) fn to_value(
    schema: Option<&SchemaRef>,
    node: Option<&Node<'_>>,
    replace_null_with_default: bool,
) -> ConnectResult<Value> {
    let Some(schema) = schema else {
        return Ok(match node {
            None => Value::Null,
            Some(n) => schemaless(n),
        });
    };
    let node = match node {
        None | Some(Node::Null) => {
            if let (Some(default), true) = (&schema.default_value, replace_null_with_default) {
                return Ok(default.clone());
            }
            if schema.optional {
                return Ok(Value::Null);
            }
            return Err(ConnectError::data(format!(
                "Invalid null value for required {} field",
                schema.schema_type.java_name()
            )));
        }
        Some(n) => n,
    };
    if let Some(name) = schema.name.as_deref() {
        if let Some(v) = logical(schema, name, node)? {
            return Ok(v);
        }
    }
    let long = || number_text(node).map(long_value).unwrap_or(0);
    let float = || {
        number_text(node)
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok(match schema.schema_type {
        SchemaType::Boolean => Value::Boolean(matches!(node, Node::Bool(true))),
        SchemaType::Int8 => Value::Int8(long() as i8),
        SchemaType::Int16 => Value::Int16(long() as i16),
        SchemaType::Int32 => Value::Int32(long() as i32),
        SchemaType::Int64 => Value::Int64(long()),
        SchemaType::Float32 => Value::Float32(
            number_text(node)
                .and_then(|t| t.parse::<f32>().ok())
                .unwrap_or(0.0),
        ),
        SchemaType::Float64 => Value::Float64(float()),
        SchemaType::String => match node {
            Node::String(s) => Value::String(s.to_string()),
            _ => Value::Null,
        },
        SchemaType::Bytes => match node {
            Node::String(s) => Value::Bytes(
                decode_base64(s).ok_or_else(|| ConnectError::data("Invalid bytes field"))?,
            ),
            _ => Value::Null,
        },
        SchemaType::Array => {
            let elem = schema.value_schema.as_ref();
            let items: Vec<Value> = match node {
                Node::Array(items) => items
                    .iter()
                    .map(|n| to_value(elem, Some(n), replace_null_with_default))
                    .collect::<ConnectResult<_>>()?,
                // Jackson iterates an object's values; scalars have none.
                Node::Object(o) => o
                    .entries
                    .iter()
                    .map(|(_, n)| to_value(elem, Some(n), replace_null_with_default))
                    .collect::<ConnectResult<_>>()?,
                _ => Vec::new(),
            };
            Value::Array(items)
        }
        SchemaType::Map => to_map(
            schema.key_schema.as_ref(),
            schema.value_schema.as_ref(),
            node,
            replace_null_with_default,
        )?,
        SchemaType::Struct => {
            let Node::Object(obj) = node else {
                return Err(ConnectError::data(format!(
                    "Structs should be encoded as JSON objects, but found {}",
                    node.node_type()
                )));
            };
            let mut st = Struct::new(schema.clone());
            for field in &schema.fields {
                let v = to_value(
                    Some(&field.schema),
                    obj.get(&field.name),
                    replace_null_with_default,
                )?;
                if v.is_null() && !field.schema.optional {
                    return Err(ConnectError::data(format!(
                        "Invalid value: null used for required field: \"{}\", schema type: {}",
                        field.name,
                        field.schema.schema_type.java_name()
                    )));
                }
                st.values[field.index] = v;
            }
            Value::Struct(st)
        }
    })
}

fn to_map(
    key_schema: Option<&SchemaRef>,
    value_schema: Option<&SchemaRef>,
    node: &Node<'_>,
    replace_null_with_default: bool,
) -> ConnectResult<Value> {
    let string_keys = key_schema.is_none_or(|k| k.schema_type == SchemaType::String);
    let mut entries = Vec::new();
    if string_keys {
        let Node::Object(obj) = node else {
            return Err(ConnectError::data(format!(
                "Maps with string fields should be encoded as JSON objects, but found {}",
                node.node_type()
            )));
        };
        for (k, v) in &obj.entries {
            entries.push((
                Value::String(k.to_string()),
                to_value(value_schema, Some(v), replace_null_with_default)?,
            ));
        }
    } else {
        let Node::Array(items) = node else {
            return Err(ConnectError::data(format!(
                "Maps with non-string fields should be encoded as JSON array of tuples, but found {}",
                node.node_type()
            )));
        };
        for entry in items {
            let Node::Array(pair) = entry else {
                return Err(ConnectError::data(format!(
                    "Found invalid map entry instead of array tuple: {}",
                    entry.node_type()
                )));
            };
            if pair.len() != 2 {
                return Err(ConnectError::data(format!(
                    "Found invalid map entry, expected length 2 but found :{}",
                    pair.len()
                )));
            }
            entries.push((
                to_value(key_schema, Some(&pair[0]), replace_null_with_default)?,
                to_value(value_schema, Some(&pair[1]), replace_null_with_default)?,
            ));
        }
    }
    Ok(Value::Map(entries))
}

/// Schemaless JSON: integers read as int64, other numbers as float64,
/// objects as maps with string keys.
fn schemaless(node: &Node<'_>) -> Value {
    match node {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Boolean(*b),
        Node::Number {
            text,
            integral: true,
        } => Value::Int64(long_value(text)),
        Node::Number { text, .. } => Value::Float64(text.parse().unwrap_or(0.0)),
        Node::String(s) => Value::String(s.to_string()),
        Node::Array(items) => Value::Array(items.iter().map(schemaless).collect()),
        Node::Object(o) => Value::Map(
            o.entries
                .iter()
                .map(|(k, v)| (Value::String(k.to_string()), schemaless(v)))
                .collect(),
        ),
        // Raw text only stands for an envelope's schema, never for data; read it anyway.
        Node::Raw(raw) => super::parse::parse(raw)
            .ok()
            .flatten()
            .map_or(Value::Null, |n| schemaless(&n)),
    }
}

/// The logical types; `None` when `name` is not one of them.
fn logical(schema: &SchemaRef, name: &str, node: &Node<'_>) -> ConnectResult<Option<Value>> {
    Ok(Some(match name {
        DECIMAL => match node {
            Node::Number { text, .. } => Value::Decimal(
                parse_decimal(text).ok_or_else(|| ConnectError::data("Invalid bytes for Decimal field"))?,
            ),
            Node::String(s) => {
                let invalid = || ConnectError::data("Invalid bytes for Decimal field");
                let bytes = decode_base64(s).filter(|b| !b.is_empty()).ok_or_else(invalid)?;
                let scale = decimal_scale(schema).map_err(|_| invalid())?;
                Value::Decimal(Decimal {
                    unscaled: minimal_twos_complement(bytes),
                    scale,
                })
            }
            other => {
                return Err(ConnectError::data(format!(
                    "Invalid type for Decimal, underlying representation should be numeric or bytes but was {}",
                    other.node_type()
                )))
            }
        },
        DATE => Value::Date(as_int(node).ok_or_else(|| {
            ConnectError::data(format!(
                "Invalid type for Date, underlying representation should be integer but was {}",
                node.node_type()
            ))
        })?),
        TIME => {
            let ms = as_int(node).ok_or_else(|| {
                ConnectError::data(format!(
                    "Invalid type for Time, underlying representation should be integer but was {}",
                    node.node_type()
                ))
            })?;
            if ms < 0 || i64::from(ms) > MILLIS_PER_DAY {
                return Err(ConnectError::data(
                    "Time values must use number of milliseconds greater than 0 and less than 86400000",
                ));
            }
            Value::Time(ms)
        }
        TIMESTAMP => match node {
            Node::Number { text, integral: true } => Value::Timestamp(long_value(text)),
            other => {
                return Err(ConnectError::data(format!(
                    "Invalid type for Timestamp, underlying representation should be integral but was {}",
                    other.node_type()
                )))
            }
        },
        _ => return Ok(None),
    }))
}
