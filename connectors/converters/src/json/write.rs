//! Connect data to JSON bytes, written straight into a buffer.
//!
//! The output must be byte-identical to Java's JsonConverter (Jackson with
//! default settings): compact, keys in the order `asJsonSchema` inserts them,
//! numbers as `Double.toString`/`Float.toString`, bytes as padded base64,
//! NaN and infinities as quoted strings, and Jackson's string escapes.

use connect_api::data::java;
use connect_api::data::logical::{DATE, DECIMAL, DECIMAL_SCALE, TIME, TIMESTAMP};
use connect_api::{ConnectError, ConnectResult, Schema, SchemaType, Value};

use super::DecimalFormat;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// The settings that change how values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteOptions {
    pub decimal_format: DecimalFormat,
    pub replace_null_with_default: bool,
}

/// Appends `s` as a JSON string literal, escaping as Jackson does: the two
/// mandatory characters, `\b \t \n \f \r` by name, other controls as `\u00XX`
/// with upper-case hex, and everything else (including non-ASCII) raw.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        let i = super::escape::next_escape(bytes, start);
        out.extend_from_slice(&bytes[start..i]);
        let Some(&b) = bytes.get(i) else { break };
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            _ => &[],
        };
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.push(b'"');
}

fn write_f64(out: &mut Vec<u8>, v: f64) {
    let s = java::double_to_string(v);
    if v.is_finite() {
        out.extend_from_slice(s.as_bytes());
    } else {
        // Jackson quotes non-numeric numbers by default (QUOTE_NON_NUMERIC_NUMBERS).
        write_str(out, &s);
    }
}

fn write_f32(out: &mut Vec<u8>, v: f32) {
    let s = java::float_to_string(v);
    if v.is_finite() {
        out.extend_from_slice(s.as_bytes());
    } else {
        write_str(out, &s);
    }
}

fn write_int(out: &mut Vec<u8>, v: impl std::fmt::Display) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{v}");
}

fn invalid_type(schema: &Schema, value: &Value) -> ConnectError {
    ConnectError::data(format!(
        "Invalid type for {}: class {}",
        schema.schema_type.java_name(),
        java::class_name(value)
    ))
}

/// The schema's `scale` parameter, as `Decimal.scale(schema)` reads it.
pub(crate) fn decimal_scale(schema: &Schema) -> ConnectResult<i32> {
    let scale = schema
        .parameters
        .get(DECIMAL_SCALE)
        .ok_or_else(|| ConnectError::data("Invalid Decimal schema: scale parameter not found."))?;
    scale.parse().map_err(|_| {
        ConnectError::data(format!(
            "Invalid scale parameter found in Decimal schema: For input string: \"{scale}\""
        ))
    })
}

impl WriteOptions {
    /// Writes `value` described by `schema` (Java's `convertToJson`).
    pub(crate) fn write_value(
        &self,
        out: &mut Vec<u8>,
        schema: Option<&Schema>,
        value: &Value,
    ) -> ConnectResult<()> {
        if value.is_null() {
            let Some(schema) = schema else {
                out.extend_from_slice(b"null");
                return Ok(());
            };
            if let (Some(default), true) = (&schema.default_value, self.replace_null_with_default) {
                return self.write_value(out, Some(schema), default);
            }
            if schema.optional {
                out.extend_from_slice(b"null");
                return Ok(());
            }
            return Err(ConnectError::data(
                "Conversion error: null value for field that is required and has no default value",
            ));
        }
        let Some(schema) = schema else {
            return self.write_schemaless(out, value);
        };
        if let Some(name) = &schema.name {
            if self.write_logical(out, schema, name, value)? {
                return Ok(());
            }
        }
        match (schema.schema_type, value) {
            (SchemaType::Int8, Value::Int8(v)) => write_int(out, v),
            (SchemaType::Int16, Value::Int16(v)) => write_int(out, v),
            (SchemaType::Int32, Value::Int32(v)) => write_int(out, v),
            (SchemaType::Int64, Value::Int64(v)) => write_int(out, v),
            (SchemaType::Float32, Value::Float32(v)) => write_f32(out, *v),
            (SchemaType::Float64, Value::Float64(v)) => write_f64(out, *v),
            (SchemaType::Boolean, Value::Boolean(v)) => {
                out.extend_from_slice(if *v { b"true" } else { b"false" })
            }
            (SchemaType::String, Value::String(s)) => write_str(out, s),
            (SchemaType::Bytes, Value::Bytes(b)) => write_str(out, &java::base64_encode(b)),
            (SchemaType::Bytes, other) => {
                return Err(ConnectError::data(format!(
                    "Invalid type for bytes type: class {}",
                    java::class_name(other)
                )))
            }
            (SchemaType::Array, Value::Array(items)) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_value(out, schema.value_schema.as_deref(), item)?;
                }
                out.push(b']');
            }
            (SchemaType::Map, Value::Map(entries)) => {
                let object_mode = schema
                    .key_schema
                    .as_ref()
                    .is_some_and(|k| k.schema_type == SchemaType::String);
                self.write_map(
                    out,
                    object_mode,
                    schema.key_schema.as_deref(),
                    schema.value_schema.as_deref(),
                    entries,
                )?;
            }
            (SchemaType::Struct, Value::Struct(st)) => {
                if !std::ptr::eq(st.schema.as_ref(), schema) && *st.schema != *schema {
                    return Err(ConnectError::data("Mismatching schema."));
                }
                out.push(b'{');
                for (i, field) in schema.fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(out, &field.name);
                    out.push(b':');
                    self.write_value(out, Some(&field.schema), &st.values[field.index])?;
                }
                out.push(b'}');
            }
            (_, other) => return Err(invalid_type(schema, other)),
        }
        Ok(())
    }

    /// Handles the logical types; returns false when the name is not one of them.
    fn write_logical(
        &self,
        out: &mut Vec<u8>,
        schema: &Schema,
        name: &str,
        value: &Value,
    ) -> ConnectResult<bool> {
        let kind = match name {
            DECIMAL => "Decimal",
            DATE => "Date",
            TIME => "Time",
            TIMESTAMP => "Timestamp",
            _ => return Ok(false),
        };
        if name == DECIMAL {
            let Value::Decimal(d) = value else {
                return Err(ConnectError::data(format!(
                    "Invalid type for Decimal, expected BigDecimal but was class {}",
                    java::class_name(value)
                )));
            };
            match self.decimal_format {
                DecimalFormat::Numeric => {
                    out.extend_from_slice(java::decimal_to_string(d).as_bytes())
                }
                DecimalFormat::Base64 => {
                    let scale = decimal_scale(schema)?;
                    if d.scale != scale {
                        return Err(ConnectError::data(format!(
                            "Decimal value has mismatching scale for given Decimal schema. Schema has scale {scale}, value has scale {}.",
                            d.scale
                        )));
                    }
                    write_str(out, &java::base64_encode(&d.unscaled));
                }
            }
            return Ok(true);
        }
        let Some(millis) = java::temporal_millis(value) else {
            return Err(ConnectError::data(format!(
                "Invalid type for {kind}, expected Date but was class {}",
                java::class_name(value)
            )));
        };
        match name {
            DATE => {
                if millis.rem_euclid(MILLIS_PER_DAY) != 0 {
                    return Err(ConnectError::data(
                        "Kafka Connect Date type should not have any time fields set to non-zero values.",
                    ));
                }
                write_int(out, (millis / MILLIS_PER_DAY) as i32);
            }
            TIME => {
                if !(0..=MILLIS_PER_DAY).contains(&millis) {
                    return Err(ConnectError::data(
                        "Kafka Connect Time type should not have any date fields set to non-zero values.",
                    ));
                }
                write_int(out, millis as i32);
            }
            _ => write_int(out, millis),
        }
        Ok(true)
    }

    fn write_map(
        &self,
        out: &mut Vec<u8>,
        object_mode: bool,
        key_schema: Option<&Schema>,
        value_schema: Option<&Schema>,
        entries: &[(Value, Value)],
    ) -> ConnectResult<()> {
        out.push(if object_mode { b'{' } else { b'[' });
        for (i, (k, v)) in entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if object_mode {
                // Jackson uses the key node's text: a string key is itself, a null key "null".
                match k {
                    Value::String(s) => write_str(out, s),
                    other => {
                        let mut key = Vec::new();
                        self.write_value(&mut key, key_schema, other)?;
                        write_str(out, &String::from_utf8_lossy(&key));
                    }
                }
                out.push(b':');
                self.write_value(out, value_schema, v)?;
            } else {
                out.push(b'[');
                self.write_value(out, key_schema, k)?;
                out.push(b',');
                self.write_value(out, value_schema, v)?;
                out.push(b']');
            }
        }
        out.push(if object_mode { b'}' } else { b']' });
        Ok(())
    }

    /// A value without a schema: its type comes from its variant, as Java
    /// infers it from the object's class.
    fn write_schemaless(&self, out: &mut Vec<u8>, value: &Value) -> ConnectResult<()> {
        match value {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Int8(v) => write_int(out, v),
            Value::Int16(v) => write_int(out, v),
            Value::Int32(v) => write_int(out, v),
            Value::Int64(v) => write_int(out, v),
            Value::Float32(v) => write_f32(out, *v),
            Value::Float64(v) => write_f64(out, *v),
            Value::Boolean(v) => out.extend_from_slice(if *v { b"true" } else { b"false" }),
            Value::String(s) => write_str(out, s),
            Value::Bytes(b) => write_str(out, &java::base64_encode(b)),
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_schemaless(out, item)?;
                }
                out.push(b']');
            }
            Value::Map(entries) => {
                let object_mode = entries.iter().all(|(k, _)| matches!(k, Value::String(_)));
                self.write_map(out, object_mode, None, None, entries)?;
            }
            // Java compares the struct's schema with the absent one and fails.
            Value::Struct(_) => return Err(ConnectError::data("Mismatching schema.")),
            Value::Decimal(_) | Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => {
                return Err(ConnectError::data(format!(
                    "Java class class {} does not have corresponding schema type.",
                    java::class_name(value)
                )))
            }
        }
        Ok(())
    }

    /// Writes a schema as `asJsonSchema` builds it; `field` is appended last
    /// when the schema belongs to a struct field.
    pub(crate) fn write_schema(
        &self,
        out: &mut Vec<u8>,
        schema: Option<&Schema>,
        field: Option<&str>,
    ) -> ConnectResult<()> {
        let Some(schema) = schema else {
            out.extend_from_slice(b"null");
            return Ok(());
        };
        out.extend_from_slice(b"{\"type\":");
        write_str(out, schema.schema_type.json_name());
        match schema.schema_type {
            SchemaType::Array => {
                out.extend_from_slice(b",\"items\":");
                self.write_schema(out, schema.value_schema.as_deref(), None)?;
            }
            SchemaType::Map => {
                out.extend_from_slice(b",\"keys\":");
                self.write_schema(out, schema.key_schema.as_deref(), None)?;
                out.extend_from_slice(b",\"values\":");
                self.write_schema(out, schema.value_schema.as_deref(), None)?;
            }
            SchemaType::Struct => {
                out.extend_from_slice(b",\"fields\":[");
                for (i, f) in schema.fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_schema(out, Some(&f.schema), Some(&f.name))?;
                }
                out.push(b']');
            }
            _ => {}
        }
        out.extend_from_slice(if schema.optional {
            b",\"optional\":true"
        } else {
            b",\"optional\":false"
        });
        if let Some(name) = &schema.name {
            out.extend_from_slice(b",\"name\":");
            write_str(out, name);
        }
        if let Some(version) = schema.version {
            out.extend_from_slice(b",\"version\":");
            write_int(out, version);
        }
        if let Some(doc) = &schema.doc {
            out.extend_from_slice(b",\"doc\":");
            write_str(out, doc);
        }
        if !schema.parameters.is_empty() {
            out.extend_from_slice(b",\"parameters\":{");
            for (i, (k, v)) in schema.parameters.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_str(out, v);
            }
            out.push(b'}');
        }
        if let Some(default) = &schema.default_value {
            out.extend_from_slice(b",\"default\":");
            self.write_value(out, Some(schema), default)?;
        }
        if let Some(field) = field {
            out.extend_from_slice(b",\"field\":");
            write_str(out, field);
        }
        out.push(b'}');
        Ok(())
    }
}
