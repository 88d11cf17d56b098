//! `org.apache.kafka.connect.converters.ByteArrayConverter`: passes bytes
//! through unchanged; only `bytes` schemas and byte-array values are accepted.

use std::sync::LazyLock;

use async_trait::async_trait;
use connect_api::data::java;
use connect_api::{
    ConfigDef, ConnectError, ConnectResult, Converter, HeaderConverter, Headers, Props, Schema,
    SchemaAndValue, SchemaRef, SchemaType, Value,
};

use crate::converter_config_def;

static OPTIONAL_BYTES: LazyLock<SchemaRef> =
    LazyLock::new(|| Schema::primitive(SchemaType::Bytes, true));

/// The pass-through converter. It has no settings beyond `converter.type`,
/// which, as in Java, it does not even validate.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteArrayConverter;

impl ByteArrayConverter {
    fn serialize(schema: Option<&SchemaRef>, value: &Value) -> ConnectResult<Option<Vec<u8>>> {
        if let Some(s) = schema {
            if s.schema_type != SchemaType::Bytes {
                return Err(ConnectError::data(format!(
                    "Invalid schema type for ByteArrayConverter: {}",
                    s.schema_type.java_name()
                )));
            }
        }
        match value {
            Value::Null => Ok(None),
            Value::Bytes(b) => Ok(Some(b.clone())),
            other => Err(ConnectError::data(format!(
                "ByteArrayConverter is not compatible with objects of type class {}",
                java::class_name(other)
            ))),
        }
    }

    fn deserialize(bytes: Option<&[u8]>) -> SchemaAndValue {
        let value = bytes.map_or(Value::Null, |b| Value::Bytes(b.to_vec()));
        SchemaAndValue::new(Some(OPTIONAL_BYTES.clone()), value)
    }
}

#[async_trait]
impl Converter for ByteArrayConverter {
    fn configure(&mut self, _props: &Props, _is_key: bool) -> ConnectResult<()> {
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        converter_config_def()
    }

    async fn from_connect(
        &self,
        _topic: &str,
        _headers: &mut Headers,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> ConnectResult<Option<Vec<u8>>> {
        Self::serialize(schema, value)
    }

    async fn to_connect(
        &self,
        _topic: &str,
        _headers: &Headers,
        bytes: Option<&[u8]>,
    ) -> ConnectResult<SchemaAndValue> {
        Ok(Self::deserialize(bytes))
    }
}

impl HeaderConverter for ByteArrayConverter {
    fn configure(&mut self, _props: &Props) -> ConnectResult<()> {
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        converter_config_def()
    }

    fn from_connect_header(
        &self,
        _topic: &str,
        _key: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> ConnectResult<Option<Vec<u8>>> {
        Self::serialize(schema, value)
    }

    fn to_connect_header(
        &self,
        _topic: &str,
        _key: &str,
        bytes: Option<&[u8]>,
    ) -> ConnectResult<SchemaAndValue> {
        Ok(Self::deserialize(bytes))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_bytes_through_and_rejects_other_types() {
        let c = ByteArrayConverter;
        let mut h = Headers::new();
        let out = c
            .from_connect("t", &mut h, None, &Value::Bytes(vec![1, 2]))
            .await
            .unwrap();
        assert_eq!(out, Some(vec![1, 2]));
        assert_eq!(
            c.from_connect("t", &mut h, None, &Value::Null)
                .await
                .unwrap(),
            None
        );
        let err = c
            .from_connect("t", &mut h, None, &Value::from("x"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ByteArrayConverter is not compatible with objects of type class java.lang.String"
        );
        let s = Schema::primitive(SchemaType::String, false);
        let err = c
            .from_connect("t", &mut h, Some(&s), &Value::Bytes(vec![]))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid schema type for ByteArrayConverter: STRING"
        );
        let back = c.to_connect("t", &h, Some(&[9])).await.unwrap();
        assert_eq!(back.value, Value::Bytes(vec![9]));
        assert!(back.schema.unwrap().optional);
        assert_eq!(
            HeaderConverter::to_connect_header(&c, "t", "k", None)
                .unwrap()
                .value,
            Value::Null
        );
    }
}
