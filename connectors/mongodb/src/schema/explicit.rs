//! Mapping a BSON value onto a schema given in the config
//! (`output.schema.key` / `output.schema.value`), as the official
//! connector does: fields by name; a string field takes any non-string
//! value as JSON (`output.json.formatter`), so the official default schema's
//! document-bearing string fields hold JSON; numbers convert between
//! widths; anything that cannot be represented is null. A null in a
//! required field is left for the converter to reject, so the worker's
//! `errors.tolerance` decides, instead of publishing a made-up value.

use connect_api::data::{logical, Schema, SchemaType, Struct, Value};
use connect_converters::avro::data::AVRO_TYPE_UNION;
use mongodb::bson::Bson;

use crate::bsonx;
use crate::config::Formatter;

/// The Connect value of `v` under `schema`.
pub fn to_schema(v: Option<&Bson>, schema: &connect_api::SchemaRef, f: Formatter) -> Value {
    let Some(v) = v.filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) else {
        return schema.default_value.clone().unwrap_or(Value::Null);
    };
    convert(v, schema, f).unwrap_or(Value::Null)
}

fn number(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(n) => Some(*n),
        _ => None,
    }
}

fn integer(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(d) if d.fract() == 0.0 => Some(*d as i64),
        Bson::Boolean(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn convert(v: &Bson, schema: &connect_api::SchemaRef, f: Formatter) -> Option<Value> {
    let s: &Schema = schema;
    Some(match s.schema_type {
        SchemaType::Struct if s.name.as_deref() == Some(AVRO_TYPE_UNION) => {
            // The first member the value converts to without loss.
            let mut out = Struct::new(schema.clone());
            let i = s.fields.iter().position(|m| fits(v, &m.schema))?;
            out.values[i] = convert(v, &s.fields[i].schema, f)?;
            Value::Struct(out)
        }
        SchemaType::Struct => {
            let d = v.as_document()?;
            let mut out = Struct::new(schema.clone());
            for field in &s.fields {
                out.values[field.index] = to_schema(d.get(&field.name), &field.schema, f);
            }
            Value::Struct(out)
        }
        SchemaType::String => match v {
            Bson::String(x) | Bson::Symbol(x) => Value::String(x.clone()),
            Bson::ObjectId(o) => Value::String(o.to_hex()),
            other => Value::String(bsonx::to_json(other, f).to_string()),
        },
        SchemaType::Boolean => Value::Boolean(v.as_bool()?),
        SchemaType::Int8 => Value::Int8(i8::try_from(integer(v)?).ok()?),
        SchemaType::Int16 => Value::Int16(i16::try_from(integer(v)?).ok()?),
        SchemaType::Int32 => Value::Int32(i32::try_from(integer(v)?).ok()?),
        SchemaType::Int64 if s.is_logical(logical::TIMESTAMP) => match v {
            Bson::DateTime(d) => Value::Timestamp(d.timestamp_millis()),
            other => Value::Timestamp(integer(other)?),
        },
        SchemaType::Int64 => match v {
            Bson::DateTime(d) => Value::Int64(d.timestamp_millis()),
            other => Value::Int64(integer(other)?),
        },
        SchemaType::Float32 => Value::Float32(number(v)? as f32),
        SchemaType::Float64 => Value::Float64(number(v)?),
        SchemaType::Bytes => match v {
            Bson::Binary(b) => Value::Bytes(b.bytes.clone()),
            Bson::ObjectId(o) => Value::Bytes(o.bytes().to_vec()),
            _ => return None,
        },
        SchemaType::Array => {
            let items = s.value_schema.as_ref()?;
            let a = v.as_array()?;
            Value::Array(a.iter().map(|x| to_schema(Some(x), items, f)).collect())
        }
        SchemaType::Map => {
            let vs = s.value_schema.as_ref()?;
            let d = v.as_document()?;
            Value::Map(
                d.iter()
                    .map(|(k, x)| (Value::String(k.clone()), to_schema(Some(x), vs, f)))
                    .collect(),
            )
        }
    })
}

/// Whether `v` converts to `schema` as itself (for picking a union member).
fn fits(v: &Bson, schema: &Schema) -> bool {
    match schema.schema_type {
        SchemaType::Struct | SchemaType::Map => v.as_document().is_some(),
        SchemaType::Array => v.as_array().is_some(),
        SchemaType::String => matches!(v, Bson::String(_) | Bson::Symbol(_)),
        SchemaType::Boolean => matches!(v, Bson::Boolean(_)),
        SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 => matches!(v, Bson::Int32(_)),
        SchemaType::Int64 => matches!(v, Bson::Int32(_) | Bson::Int64(_) | Bson::DateTime(_)),
        SchemaType::Float32 | SchemaType::Float64 => number(v).is_some(),
        SchemaType::Bytes => matches!(v, Bson::Binary(_)),
    }
}
