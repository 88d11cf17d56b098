//! Schemaless Connect data as Confluent's `io.confluent.connect.avro.Anything`
//! record: one optional field per value kind, exactly one of them set.
//!
//! Java's AvroConverter writes a value without a Connect schema this way
//! and reads this exact writer schema back as schemaless data, so we do the
//! same. Like Java, int8/int16 come back as int32, and structs and logical
//! values cannot be written without a schema.

use std::sync::OnceLock;

use connect_api::{ConnectError, ConnectResult, Value};

use super::codec::{write_bytes, write_long, Reader};

/// The text Java's `AvroData.ANYTHING_SCHEMA.toString()` produces.
pub const ANYTHING_SCHEMA_TEXT: &str = r#"{"type":"record","name":"Anything","namespace":"io.confluent.connect.avro","fields":[{"name":"boolean","type":["null","boolean"],"default":null},{"name":"bytes","type":["null","bytes"],"default":null},{"name":"double","type":["null","double"],"default":null},{"name":"float","type":["null","float"],"default":null},{"name":"int","type":["null","int"],"default":null},{"name":"long","type":["null","long"],"default":null},{"name":"string","type":["null","string"],"default":null},{"name":"array","type":["null",{"type":"array","items":"Anything"}],"default":null},{"name":"map","type":["null",{"type":"array","items":{"type":"record","name":"MapEntry","fields":[{"name":"key","type":"Anything"},{"name":"value","type":"Anything"}]}}],"default":null}]}"#;

/// Whether a writer schema text is the Anything schema. Compared after a
/// parse/write round trip so whitespace or key order from another writer
/// does not matter.
pub fn is_anything(text: &str) -> bool {
    static CANONICAL: OnceLock<String> = OnceLock::new();
    let canonical = CANONICAL.get_or_init(|| ANYTHING_SCHEMA_TEXT.to_string());
    text == canonical.as_str()
        || super::schema::parse(text)
            .map(|(s, _)| s.to_json_string() == *canonical)
            .unwrap_or(false)
}

const FIELDS: usize = 9;

fn slot(v: &Value) -> ConnectResult<Option<usize>> {
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::Boolean(_) => 0,
        Value::Bytes(_) => 1,
        Value::Float64(_) => 2,
        Value::Float32(_) => 3,
        Value::Int8(_) | Value::Int16(_) | Value::Int32(_) => 4,
        Value::Int64(_) => 5,
        Value::String(_) => 6,
        Value::Array(_) => 7,
        Value::Map(_) => 8,
        other => {
            return Err(ConnectError::data(format!(
                "Unknown Java type for schemaless data: {}",
                other.type_name()
            )))
        }
    }))
}

/// Appends `value` as an Anything record.
pub fn write(out: &mut Vec<u8>, value: &Value) -> ConnectResult<()> {
    let set = slot(value)?;
    for i in 0..FIELDS {
        if Some(i) != set {
            write_long(out, 0); // the union's null branch
            continue;
        }
        write_long(out, 1);
        match value {
            Value::Boolean(b) => out.push(u8::from(*b)),
            Value::Bytes(b) => write_bytes(out, b),
            Value::Float64(f) => out.extend_from_slice(&f.to_le_bytes()),
            Value::Float32(f) => out.extend_from_slice(&f.to_le_bytes()),
            Value::Int8(v) => write_long(out, i64::from(*v)),
            Value::Int16(v) => write_long(out, i64::from(*v)),
            Value::Int32(v) => write_long(out, i64::from(*v)),
            Value::Int64(v) => write_long(out, *v),
            Value::String(s) => write_bytes(out, s.as_bytes()),
            Value::Array(items) => {
                if !items.is_empty() {
                    write_long(out, items.len() as i64);
                    for item in items {
                        write(out, item)?;
                    }
                }
                out.push(0);
            }
            Value::Map(entries) => {
                if !entries.is_empty() {
                    write_long(out, entries.len() as i64);
                    for (k, v) in entries {
                        write(out, k)?;
                        write(out, v)?;
                    }
                }
                out.push(0);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads an Anything record; the first set field is the value.
pub fn read(r: &mut Reader<'_>, depth: usize) -> ConnectResult<Value> {
    if depth > 64 {
        return Err(ConnectError::data("Schemaless Avro data nested too deeply"));
    }
    let mut result = Value::Null;
    for i in 0..FIELDS {
        match r.long()? {
            0 => continue,
            1 => {}
            _ => return Err(ConnectError::data("Avro union index out of range")),
        }
        let v = match i {
            0 => Value::Boolean(r.take(1)?[0] != 0),
            1 => Value::Bytes(r.bytes()?.to_vec()),
            2 => {
                let b: [u8; 8] = r.take(8)?.try_into().map_err(|_| eof())?;
                Value::Float64(f64::from_le_bytes(b))
            }
            3 => {
                let b: [u8; 4] = r.take(4)?.try_into().map_err(|_| eof())?;
                Value::Float32(f32::from_le_bytes(b))
            }
            4 => Value::Int32(
                i32::try_from(r.long()?)
                    .map_err(|_| ConnectError::data("Avro int out of range"))?,
            ),
            5 => Value::Int64(r.long()?),
            6 => Value::String(
                std::str::from_utf8(r.bytes()?)
                    .map_err(|_| ConnectError::data("Avro string is not UTF-8"))?
                    .to_string(),
            ),
            7 => {
                let mut items = Vec::new();
                loop {
                    let n = r.block_count()?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        items.push(read(r, depth + 1)?);
                    }
                }
                Value::Array(items)
            }
            _ => {
                let mut entries = Vec::new();
                loop {
                    let n = r.block_count()?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        let k = read(r, depth + 1)?;
                        entries.push((k, read(r, depth + 1)?));
                    }
                }
                Value::Map(entries)
            }
        };
        // Java returns the first set field; later ones are still consumed.
        if result.is_null() {
            result = v;
        }
    }
    Ok(result)
}

fn eof() -> ConnectError {
    ConnectError::data("Avro datum ended early")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn schema_text_is_valid_and_canonical() {
        let (s, _) = super::super::schema::parse(ANYTHING_SCHEMA_TEXT).unwrap();
        assert_eq!(s.to_json_string(), ANYTHING_SCHEMA_TEXT);
        assert!(is_anything(ANYTHING_SCHEMA_TEXT));
        assert!(!is_anything("\"string\""));
    }

    #[test]
    fn values_round_trip() {
        let v = Value::Map(vec![
            (
                Value::from("a"),
                Value::Array(vec![Value::Int32(1), Value::Null, Value::Float64(2.5)]),
            ),
            (Value::Int64(7), Value::Boolean(true)),
            (Value::from("b"), Value::Bytes(vec![1, 2])),
        ]);
        let mut out = Vec::new();
        write(&mut out, &v).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(read(&mut r, 0).unwrap(), v);
        assert_eq!(r.remaining(), 0);
        assert!(write(&mut Vec::new(), &Value::Date(1)).is_err());
    }
}
