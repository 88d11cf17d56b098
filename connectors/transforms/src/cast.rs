//! `Cast$Key` / `Cast$Value`: casts fields, or the whole key or value, to
//! another primitive type. Integers, floats, booleans and strings cast to
//! one another; bytes cast only to string (base64); logical dates and times
//! cast as their underlying numbers, or to string in ISO-8601 form.

use connect_api::config::{
    ConfigKey, ConfigType, ConfigValue, Default as ConfigDefault, Importance, Validator,
};
use connect_api::data::java;
use connect_api::data::logical::{DATE, TIME, TIMESTAMP};
use connect_api::{
    ConfigDef, ConnectError, ConnectRecord, ConnectResult, Props, Schema, SchemaBuilder, SchemaRef,
    SchemaType, Struct, Transform, Value,
};

use crate::util::{
    copy_schema_basics, field_value, java_split, map_put, parse_config, require_map,
    require_struct, Operand, SchemaCache,
};

const SPEC: &str = "spec";
const REPLACE_NULL_WITH_DEFAULT: &str = "replace.null.with.default";
const PURPOSE: &str = "cast types";
const INPUT_TYPES: &str = "[INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING, BYTES]";
const OUTPUT_TYPES: &str = "[INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING]";

fn java_type(name: &str) -> Option<SchemaType> {
    use SchemaType::*;
    Some(match name.trim().to_ascii_uppercase().as_str() {
        "INT8" => Int8,
        "INT16" => Int16,
        "INT32" => Int32,
        "INT64" => Int64,
        "FLOAT32" => Float32,
        "FLOAT64" => Float64,
        "BOOLEAN" => Boolean,
        "STRING" => String,
        "BYTES" => Bytes,
        "ARRAY" => Array,
        "MAP" => Map,
        "STRUCT" => Struct,
        _ => return None,
    })
}

fn valid_output(t: SchemaType) -> Result<SchemaType, String> {
    if t.is_primitive() && t != SchemaType::Bytes {
        Ok(t)
    } else {
        Err(format!(
            "Cast transformation does not support casting to {}; supported types are {OUTPUT_TYPES}",
            t.java_name()
        ))
    }
}

/// The parsed spec: either one whole-value cast or per-field casts.
#[derive(Debug, Clone, PartialEq, Default)]
struct Casts {
    whole: Option<SchemaType>,
    /// Per-field casts in spec order (a later entry for the same field wins).
    fields: Vec<(String, SchemaType)>,
}

impl Casts {
    fn field(&self, name: &str) -> Option<SchemaType> {
        self.fields.iter().find(|(f, _)| f == name).map(|(_, t)| *t)
    }
}

fn parse_spec(mappings: &[String]) -> Result<Casts, String> {
    let mut casts = Casts::default();
    for mapping in mappings {
        match java_split(mapping, ':').as_slice() {
            [t] => {
                let t = java_type(t)
                    .ok_or_else(|| format!("Invalid type found in casting spec: {}", t.trim()))?;
                casts.whole = Some(valid_output(t)?);
            }
            [field, t] => {
                let t = java_type(t)
                    .ok_or_else(|| format!("Invalid type found in casting spec: {}", t.trim()))?;
                let (field, t) = (field.trim().to_string(), valid_output(t)?);
                casts.fields.retain(|(f, _)| *f != field);
                casts.fields.push((field, t));
            }
            _ => return Err(format!("Invalid rename mapping: {mapping}")),
        }
    }
    if casts.whole.is_some() && mappings.len() > 1 {
        return Err(
            "Cast transformations that specify a type to cast the entire value to may only specify a single cast in their spec"
                .into(),
        );
    }
    Ok(casts)
}

fn validate_spec(value: &ConfigValue) -> Result<(), String> {
    match value {
        ConfigValue::List(l) if l.is_empty() => {
            Err("Must specify at least one field to cast.".into())
        }
        ConfigValue::List(l) => parse_spec(l).map(|_| ()),
        _ => Ok(()),
    }
}

/// The cast transform.
#[derive(Debug)]
pub struct Cast {
    operand: Operand,
    casts: Casts,
    replace_null_with_default: bool,
    cache: SchemaCache,
}

impl Cast {
    pub fn new(operand: Operand) -> Self {
        Cast {
            operand,
            casts: Casts::default(),
            replace_null_with_default: true,
            cache: SchemaCache::default(),
        }
    }

    pub fn definition() -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::new(
                    SPEC,
                    ConfigType::List,
                    ConfigDefault::Required,
                    Importance::High,
                    "Either field1:type,field2:type pairs casting fields of a struct or map, or a single type casting the whole value. Types: int8, int16, int32, int64, float32, float64, boolean, string; bytes can only become string.",
                )
                .validator(Validator::Custom(validate_spec)),
            )
            .key(REPLACE_NULL_WITH_DEFAULT, ConfigType::Boolean, ConfigDefault::Value("true".into()), Importance::Medium, "When true, null fields that have a default take the default before casting; when false they stay null.")
    }

    fn updated_schema(&self, schema: &Schema) -> ConnectResult<SchemaRef> {
        let mut builder = if let Some(t) = self.casts.whole {
            copy_schema_basics(schema, SchemaBuilder::new(t))
        } else {
            let mut b = copy_schema_basics(schema, SchemaBuilder::struct_());
            for f in &schema.fields {
                let field_schema = match self.casts.field(&f.name) {
                    None => f.schema.clone(),
                    Some(t) => {
                        let mut fb = SchemaBuilder::new(t);
                        if f.schema.optional {
                            fb = fb.optional();
                        }
                        if let Some(d) = &f.schema.default_value {
                            fb = fb.default_value(cast_value(Some(&f.schema), d, t)?);
                        }
                        fb.build()
                    }
                };
                b = b.field(f.name.clone(), field_schema);
            }
            b
        };
        if schema.optional {
            builder = builder.optional();
        }
        if let Some(d) = &schema.default_value {
            let target = builder.clone().build_schema().schema_type;
            builder = builder.default_value(cast_value(Some(schema), d, target)?);
        }
        Ok(builder.build())
    }
}

/// Java's `castValueToType`.
fn cast_value(schema: Option<&Schema>, value: &Value, target: SchemaType) -> ConnectResult<Value> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let inferred = match schema {
        Some(s) => s.schema_type,
        None => match value {
            Value::Decimal(_) | Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => {
                return Err(ConnectError::data(format!(
                    "Cast transformation was passed a value of type class {} which is not supported by Connect's data API",
                    java::class_name(value)
                )))
            }
            v => v.schema_type().unwrap_or(SchemaType::String),
        },
    };
    if !inferred.is_primitive() {
        return Err(ConnectError::data(format!(
            "Cast transformation does not support casting from {}; supported types are {INPUT_TYPES}",
            inferred.java_name()
        )));
    }
    // Logical dates and times cast as their encoded numbers, except to string.
    let encoded;
    let value = match (schema.and_then(|s| s.name.as_deref()), target) {
        (Some(DATE | TIME | TIMESTAMP), t) if t != SchemaType::String => {
            encoded = match value {
                Value::Date(d) => Value::Int32(*d),
                Value::Time(t) => Value::Int32(*t),
                Value::Timestamp(t) => Value::Int64(*t),
                other => other.clone(),
            };
            &encoded
        }
        _ => value,
    };
    let out_of_range = || {
        ConnectError::data(format!(
            "Value ({}) was out of range for requested data type",
            java::to_java_string(value)
        ))
    };
    let unexpected = || {
        ConnectError::data(format!(
            "Unexpected type in Cast transformation: class {}",
            java::class_name(value)
        ))
    };
    let number = Number::of(value);
    Ok(match target {
        SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64 => {
            let n: i64 = match (value, number) {
                (_, Some(n)) => match target {
                    SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 => n.int_value(),
                    _ => n.long_value(),
                },
                (Value::Boolean(b), _) => i64::from(*b),
                (Value::String(s), _) => {
                    let parsed = match target {
                        SchemaType::Int8 => s.parse::<i8>().map(i64::from).ok(),
                        SchemaType::Int16 => s.parse::<i16>().map(i64::from).ok(),
                        SchemaType::Int32 => s.parse::<i32>().map(i64::from).ok(),
                        _ => s.parse::<i64>().ok(),
                    };
                    parsed.ok_or_else(out_of_range)?
                }
                _ => return Err(unexpected()),
            };
            match target {
                SchemaType::Int8 => Value::Int8(n as i8),
                SchemaType::Int16 => Value::Int16(n as i16),
                SchemaType::Int32 => Value::Int32(n as i32),
                _ => Value::Int64(n),
            }
        }
        SchemaType::Float32 | SchemaType::Float64 => {
            let f: f64 = match (value, number) {
                (_, Some(n)) if target == SchemaType::Float32 => f64::from(n.float_value()),
                (_, Some(n)) => n.double_value(),
                (Value::Boolean(b), _) => f64::from(u8::from(*b)),
                (Value::String(s), _) => parse_java_float(s).ok_or_else(out_of_range)?,
                _ => return Err(unexpected()),
            };
            if target == SchemaType::Float32 {
                Value::Float32(f as f32)
            } else {
                Value::Float64(f)
            }
        }
        SchemaType::Boolean => Value::Boolean(match (value, number) {
            (_, Some(n)) => n.long_value() != 0,
            (Value::Boolean(b), _) => *b,
            (Value::String(s), _) => s.eq_ignore_ascii_case("true"),
            _ => return Err(unexpected()),
        }),
        SchemaType::String => Value::String(match value {
            Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => {
                java::iso_date_string(java::temporal_millis(value).unwrap_or(0))
            }
            Value::Bytes(b) => java::base64_encode(b),
            other => java::to_java_string(other),
        }),
        other => {
            return Err(ConnectError::data(format!(
                "{} is not supported in the Cast transformation.",
                other.java_name()
            )))
        }
    })
}

/// `Float.parseFloat`/`Double.parseDouble`: surrounding whitespace and a
/// trailing type suffix (`f`, `d`) are accepted.
fn parse_java_float(s: &str) -> Option<f64> {
    let t = java::trim(s);
    let t = t.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(t);
    match t {
        "NaN" => Some(f64::NAN),
        "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ if t
            .bytes()
            .all(|b| b.is_ascii_digit() || b".+-eE".contains(&b)) =>
        {
            t.parse().ok()
        }
        _ => None,
    }
}

/// A Java `Number`, with its narrowing conversions.
#[derive(Debug, Clone, Copy)]
enum Number {
    Integer(i64),
    Float(f64),
    /// A `BigDecimal` whose unscaled value fits in 128 bits.
    Decimal(i128, i32),
}

impl Number {
    fn of(v: &Value) -> Option<Number> {
        Some(match v {
            Value::Float32(f) => Number::Float(f64::from(*f)),
            Value::Float64(f) => Number::Float(*f),
            Value::Decimal(d) => match d.unscaled_i128() {
                Some(u) => Number::Decimal(u, d.scale),
                None => Number::Float(java::decimal_to_string(d).parse().ok()?),
            },
            other => Number::Integer(other.as_i64()?),
        })
    }

    /// `intValue()`: floats truncate and saturate to 32 bits, integers wrap.
    fn int_value(self) -> i64 {
        match self {
            Number::Float(f) => i64::from(f as i32),
            other => i64::from(other.long_value() as i32),
        }
    }

    fn long_value(self) -> i64 {
        match self {
            Number::Integer(i) => i,
            Number::Float(f) => f as i64,
            Number::Decimal(u, scale) if scale >= 0 => {
                let divisor = 10i128.checked_pow(scale as u32);
                divisor.map_or(0, |d| (u / d) as i64)
            }
            Number::Decimal(u, scale) => 10i128
                .checked_pow(scale.unsigned_abs())
                .map_or(0, |m| u.wrapping_mul(m) as i64),
        }
    }

    fn double_value(self) -> f64 {
        match self {
            Number::Integer(i) => i as f64,
            Number::Float(f) => f,
            Number::Decimal(u, scale) => {
                format!("{u}e{}", -i64::from(scale)).parse().unwrap_or(0.0)
            }
        }
    }

    fn float_value(self) -> f32 {
        match self {
            Number::Decimal(u, scale) => {
                format!("{u}e{}", -i64::from(scale)).parse().unwrap_or(0.0)
            }
            Number::Integer(i) => i as f32,
            Number::Float(f) => f as f32,
        }
    }
}

impl Transform for Cast {
    fn configure(&mut self, props: &Props) -> ConnectResult<()> {
        let c = parse_config(&Self::definition(), props)?;
        self.casts = parse_spec(&c.list(SPEC)).map_err(ConnectError::fatal)?;
        self.replace_null_with_default = c.bool(REPLACE_NULL_WITH_DEFAULT).unwrap_or(true);
        self.cache = SchemaCache::default();
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        Self::definition()
    }

    fn apply(&self, record: ConnectRecord) -> ConnectResult<Option<ConnectRecord>> {
        let value = self.operand.value(&record);
        if value.is_null() {
            return Ok(Some(record));
        }
        let Some(schema) = self.operand.schema(&record).cloned() else {
            if let Some(t) = self.casts.whole {
                let cast = cast_value(None, value, t)?;
                return Ok(Some(self.operand.set(record, None, cast)));
            }
            let original = require_map(value, PURPOSE)?;
            let mut updated = original.to_vec();
            for (field, t) in &self.casts.fields {
                let current = crate::util::map_get(original, field)
                    .cloned()
                    .unwrap_or(Value::Null);
                map_put(&mut updated, field, cast_value(None, &current, *t)?);
            }
            return Ok(Some(self.operand.set(record, None, Value::Map(updated))));
        };
        let updated_schema = self
            .cache
            .get_or_build(&schema, || self.updated_schema(&schema))?;
        if let Some(t) = self.casts.whole {
            let cast = cast_value(Some(&schema), value, t)?;
            return Ok(Some(self.operand.set(record, Some(updated_schema), cast)));
        }
        let st = require_struct(value, PURPOSE)?;
        let mut updated = Struct::new(updated_schema.clone());
        for f in &st.schema.fields {
            let original = field_value(st, &f.name, self.replace_null_with_default);
            let v = match self.casts.field(&f.name) {
                Some(t) => cast_value(Some(&f.schema), &original, t)?,
                None => original,
            };
            updated.put(&f.name, v);
        }
        Ok(Some(self.operand.set(
            record,
            Some(updated_schema),
            Value::Struct(updated),
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing_matches_java_messages() {
        let spec = |s: &[&str]| parse_spec(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(spec(&["int8"]).unwrap().whole, Some(SchemaType::Int8));
        assert_eq!(spec(&["a:float64", "b: string"]).unwrap().fields.len(), 2);
        assert_eq!(
            spec(&["a:int9"]).unwrap_err(),
            "Invalid type found in casting spec: int9"
        );
        assert_eq!(
            spec(&["bytes"]).unwrap_err(),
            "Cast transformation does not support casting to BYTES; supported types are [INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING]"
        );
        assert!(spec(&["int8", "a:int16"])
            .unwrap_err()
            .contains("may only specify a single cast"));
        assert_eq!(
            spec(&["a:b:c"]).unwrap_err(),
            "Invalid rename mapping: a:b:c"
        );
    }

    #[test]
    fn number_conversions_follow_java() {
        assert_eq!(
            cast_value(None, &Value::Int64(300), SchemaType::Int8).unwrap(),
            Value::Int8(44)
        );
        assert_eq!(
            cast_value(None, &Value::Float64(1e20), SchemaType::Int32).unwrap(),
            Value::Int32(i32::MAX)
        );
        assert_eq!(
            cast_value(None, &Value::from("12"), SchemaType::Int16).unwrap(),
            Value::Int16(12)
        );
        assert_eq!(
            cast_value(None, &Value::from("300"), SchemaType::Int8)
                .unwrap_err()
                .to_string(),
            "Value (300) was out of range for requested data type"
        );
        assert_eq!(
            cast_value(None, &Value::from("TRUE"), SchemaType::Boolean).unwrap(),
            Value::Boolean(true)
        );
        assert_eq!(
            cast_value(None, &Value::Int32(0), SchemaType::Boolean).unwrap(),
            Value::Boolean(false)
        );
        assert_eq!(
            cast_value(None, &Value::Float64(1e10), SchemaType::String).unwrap(),
            Value::from("1.0E10")
        );
        assert_eq!(
            cast_value(None, &Value::from("1.5f"), SchemaType::Float32).unwrap(),
            Value::Float32(1.5)
        );
        assert_eq!(
            cast_value(None, &Value::Bytes(vec![104, 105]), SchemaType::String).unwrap(),
            Value::from("aGk=")
        );
        let dec = Value::Decimal(connect_api::data::Decimal::from_i128(-12345, 2));
        let dec_schema = connect_api::data::logical::decimal(2).build();
        assert_eq!(
            cast_value(Some(&dec_schema), &dec, SchemaType::Int32).unwrap(),
            Value::Int32(-123)
        );
        assert_eq!(
            cast_value(Some(&dec_schema), &dec, SchemaType::Float64).unwrap(),
            Value::Float64(-123.45)
        );
        assert!(cast_value(None, &Value::Bytes(vec![1]), SchemaType::Int8)
            .unwrap_err()
            .to_string()
            .contains("Unexpected type"));
        assert!(cast_value(None, &Value::Array(vec![]), SchemaType::Int8)
            .unwrap_err()
            .to_string()
            .starts_with("Cast transformation does not support casting from ARRAY"));
    }
}
