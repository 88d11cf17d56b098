//! `org.apache.kafka.connect.storage.SimpleHeaderConverter`, the worker's
//! default header converter: header values as `Values` text in UTF-8, read
//! back with an inferred schema, falling back to raw bytes when unparseable.

use std::sync::LazyLock;

use connect_api::{
    ConfigDef, ConnectResult, HeaderConverter, Props, Schema, SchemaAndValue, SchemaRef,
    SchemaType, Value,
};

use crate::values;

static BYTES: LazyLock<SchemaRef> = LazyLock::new(|| Schema::primitive(SchemaType::Bytes, false));

/// The simple header converter. It has no configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimpleHeaderConverter;

impl HeaderConverter for SimpleHeaderConverter {
    fn configure(&mut self, _props: &Props) -> ConnectResult<()> {
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
    }

    fn from_connect_header(
        &self,
        _topic: &str,
        _key: &str,
        _schema: Option<&SchemaRef>,
        value: &Value,
    ) -> ConnectResult<Option<Vec<u8>>> {
        Ok(values::convert_to_string(value).map(String::into_bytes))
    }

    fn to_connect_header(
        &self,
        _topic: &str,
        _key: &str,
        bytes: Option<&[u8]>,
    ) -> ConnectResult<SchemaAndValue> {
        let Some(bytes) = bytes else {
            return Ok(SchemaAndValue::null());
        };
        let text = String::from_utf8_lossy(bytes);
        Ok(match values::parse_string(&text) {
            Ok(Some((schema, value))) => SchemaAndValue::new(Some(schema), value),
            Ok(None) => SchemaAndValue::null(),
            // Java logs a warning and keeps the raw bytes.
            Err(_) => SchemaAndValue::new(Some(BYTES.clone()), Value::Bytes(bytes.to_vec())),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_common_header_values() {
        let c = SimpleHeaderConverter;
        for v in [
            Value::Int8(5),
            Value::Boolean(false),
            Value::from("some text"),
            Value::Int64(1_700_000_000_000),
            Value::Array(vec![Value::from("a"), Value::from("b")]),
        ] {
            let bytes = c.from_connect_header("t", "k", None, &v).unwrap();
            let back = c.to_connect_header("t", "k", bytes.as_deref()).unwrap();
            assert_eq!(back.value, v);
        }
        assert_eq!(
            c.from_connect_header("t", "k", None, &Value::Null).unwrap(),
            None
        );
        assert_eq!(
            c.to_connect_header("t", "k", None).unwrap(),
            SchemaAndValue::null()
        );
        assert_eq!(
            c.to_connect_header("t", "k", Some(b"null")).unwrap(),
            SchemaAndValue::null()
        );
        let s = c.to_connect_header("t", "k", Some(b"42")).unwrap();
        assert_eq!(s.schema.unwrap().schema_type, SchemaType::Int8);
    }
}
