//! `org.apache.kafka.connect.storage.StringConverter`: values as their Java
//! `toString()` text in the configured character set; reads give an optional
//! string schema.

use std::sync::LazyLock;

use async_trait::async_trait;
use connect_api::config::{ConfigKey, ConfigType, Default as ConfigDefault, Importance, Width};
use connect_api::data::java;
use connect_api::{
    ConfigDef, ConnectError, ConnectResult, Converter, HeaderConverter, Headers, Props, Schema,
    SchemaAndValue, SchemaRef, SchemaType, Value,
};

use crate::{converter_config_def, props_with_type};

pub const ENCODING_CONFIG: &str = "converter.encoding";

static OPTIONAL_STRING: LazyLock<SchemaRef> =
    LazyLock::new(|| Schema::primitive(SchemaType::String, true));

/// The character sets Java guarantees on every platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Charset {
    #[default]
    Utf8,
    Ascii,
    Latin1,
    /// Java's "UTF-16": big-endian, written with a byte-order mark.
    Utf16,
    Utf16Be,
    Utf16Le,
}

impl Charset {
    fn from_name(name: &str) -> Option<Charset> {
        Some(match name.to_ascii_uppercase().replace('_', "-").as_str() {
            "UTF-8" | "UTF8" | "UNICODE-1-1-UTF-8" => Charset::Utf8,
            "US-ASCII" | "ASCII" | "ISO646-US" | "646" | "ASCII7" => Charset::Ascii,
            "ISO-8859-1" | "ISO8859-1" | "LATIN1" | "L1" | "ISO-LATIN-1" | "8859-1" | "CP819"
            | "IBM819" => Charset::Latin1,
            "UTF-16" | "UTF16" => Charset::Utf16,
            "UTF-16BE" | "UTF16BE" | "X-UTF-16BE" | "UNICODEBIGUNMARKED" => Charset::Utf16Be,
            "UTF-16LE" | "UTF16LE" | "X-UTF-16LE" | "UNICODELITTLEUNMARKED" => Charset::Utf16Le,
            _ => return None,
        })
    }

    /// Unmappable characters become `?`, as `String.getBytes(charset)` does.
    fn encode(self, s: &str) -> Vec<u8> {
        match self {
            Charset::Utf8 => s.as_bytes().to_vec(),
            Charset::Ascii => s
                .chars()
                .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
                .collect(),
            Charset::Latin1 => s
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect(),
            Charset::Utf16 => {
                let mut out = vec![0xfe, 0xff];
                out.extend(s.encode_utf16().flat_map(u16::to_be_bytes));
                out
            }
            Charset::Utf16Be => s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            Charset::Utf16Le => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        }
    }

    /// Malformed input becomes U+FFFD, as `new String(bytes, charset)` does.
    fn decode(self, bytes: &[u8]) -> String {
        let utf16 = |bytes: &[u8], big_endian: bool| {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| match (c, big_endian) {
                    ([a, b], true) => u16::from_be_bytes([*a, *b]),
                    ([a, b], false) => u16::from_le_bytes([*a, *b]),
                    _ => 0xfffd,
                })
                .collect();
            String::from_utf16_lossy(&units)
        };
        match self {
            // `from_utf8` validates a word at a time; the lossy decoder
            // walks bytes, several times slower on kilobyte values.
            Charset::Utf8 => match std::str::from_utf8(bytes) {
                Ok(text) => text.to_owned(),
                Err(_) => String::from_utf8_lossy(bytes).into_owned(),
            },
            Charset::Ascii => bytes
                .iter()
                .map(|b| {
                    if b.is_ascii() {
                        char::from(*b)
                    } else {
                        '\u{fffd}'
                    }
                })
                .collect(),
            Charset::Latin1 => bytes.iter().map(|b| char::from(*b)).collect(),
            Charset::Utf16 => match bytes {
                [0xff, 0xfe, rest @ ..] => utf16(rest, false),
                [0xfe, 0xff, rest @ ..] => utf16(rest, true),
                _ => utf16(bytes, true),
            },
            Charset::Utf16Be => utf16(bytes, true),
            Charset::Utf16Le => utf16(bytes, false),
        }
    }
}

/// The string converter.
#[derive(Debug, Clone, Default)]
pub struct StringConverter {
    charset: Charset,
}

impl StringConverter {
    /// Java's `StringConverterConfig.configDef()`.
    pub fn definition() -> ConfigDef {
        let mut encoding = ConfigKey::new(
            ENCODING_CONFIG,
            ConfigType::String,
            ConfigDefault::Value("UTF-8".into()),
            Importance::High,
            "The Java character set name used to turn strings into bytes and back.",
        );
        // Java gives this key a width and display name but no group.
        encoding.width = Width::Medium;
        encoding.display_name = "Encoding".into();
        converter_config_def().define(encoding)
    }

    fn configure_props(&mut self, props: &Props) -> ConnectResult<()> {
        let parsed = Self::definition().parse(props)?;
        let name = parsed.string(ENCODING_CONFIG).unwrap_or("UTF-8");
        self.charset = Charset::from_name(name).ok_or_else(|| {
            ConnectError::config(ENCODING_CONFIG, name, "Unsupported character set")
        })?;
        Ok(())
    }

    fn serialize(&self, value: &Value) -> Option<Vec<u8>> {
        match value {
            Value::Null => None,
            Value::String(s) => Some(self.charset.encode(s)),
            other => Some(self.charset.encode(&java::to_java_string(other))),
        }
    }

    fn deserialize(&self, bytes: Option<&[u8]>) -> SchemaAndValue {
        let value = bytes.map_or(Value::Null, |b| Value::String(self.charset.decode(b)));
        SchemaAndValue::new(Some(OPTIONAL_STRING.clone()), value)
    }
}

#[async_trait]
impl Converter for StringConverter {
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
        _schema: Option<&SchemaRef>,
        value: &Value,
    ) -> ConnectResult<Option<Vec<u8>>> {
        Ok(self.serialize(value))
    }

    async fn to_connect(
        &self,
        _topic: &str,
        _headers: &Headers,
        bytes: Option<&[u8]>,
    ) -> ConnectResult<SchemaAndValue> {
        Ok(self.deserialize(bytes))
    }
}

impl HeaderConverter for StringConverter {
    fn configure(&mut self, props: &Props) -> ConnectResult<()> {
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
        _schema: Option<&SchemaRef>,
        value: &Value,
    ) -> ConnectResult<Option<Vec<u8>>> {
        Ok(self.serialize(value))
    }

    fn to_connect_header(
        &self,
        _topic: &str,
        _key: &str,
        bytes: Option<&[u8]>,
    ) -> ConnectResult<SchemaAndValue> {
        Ok(self.deserialize(bytes))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use connect_api::data::Decimal;
    use connect_api::{SchemaBuilder, Struct};

    fn props(kv: &[(&str, &str)]) -> Props {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn values_are_written_as_java_to_string() {
        let mut c = StringConverter::default();
        Converter::configure(&mut c, &Props::new(), false).unwrap();
        let mut h = Headers::new();
        let st = SchemaBuilder::struct_()
            .field("a", Schema::primitive(SchemaType::Int32, false))
            .field("b", Schema::primitive(SchemaType::String, true))
            .build();
        let cases = [
            (Value::from("héllo"), "héllo"),
            (Value::Int64(-5), "-5"),
            (Value::Float64(1e10), "1.0E10"),
            (Value::Float32(0.5), "0.5"),
            (Value::Boolean(true), "true"),
            (Value::Decimal(Decimal::from_i128(12345, 2)), "123.45"),
            (
                Value::Array(vec![Value::Int32(1), Value::Int32(2)]),
                "[1, 2]",
            ),
            (
                Value::Struct(Struct::new(st).with("a", Value::Int32(1))),
                "Struct{a=1}",
            ),
            (Value::Timestamp(0), "Thu Jan 01 00:00:00 UTC 1970"),
        ];
        for (v, s) in cases {
            let out = c.from_connect("t", &mut h, None, &v).await.unwrap();
            assert_eq!(out.as_deref(), Some(s.as_bytes()));
        }
        assert_eq!(
            c.from_connect("t", &mut h, None, &Value::Null)
                .await
                .unwrap(),
            None
        );
        let back = c
            .to_connect("t", &h, Some("héllo".as_bytes()))
            .await
            .unwrap();
        assert_eq!(back.value, Value::from("héllo"));
        assert!(back.schema.unwrap().optional);
        let null = c.to_connect("t", &h, None).await.unwrap();
        assert_eq!(null.value, Value::Null);
        assert!(null.schema.is_some());
    }

    #[tokio::test]
    async fn other_encodings_and_bad_names() {
        let mut c = StringConverter::default();
        Converter::configure(&mut c, &props(&[(ENCODING_CONFIG, "UTF-16LE")]), true).unwrap();
        let mut h = Headers::new();
        let out = c
            .from_connect("t", &mut h, None, &Value::from("ab"))
            .await
            .unwrap();
        assert_eq!(out, Some(vec![b'a', 0, b'b', 0]));
        assert_eq!(
            c.to_connect("t", &h, Some(&[b'a', 0])).await.unwrap().value,
            Value::from("a")
        );
        Converter::configure(&mut c, &props(&[(ENCODING_CONFIG, "iso-8859-1")]), true).unwrap();
        let out = c
            .from_connect("t", &mut h, None, &Value::from("é€"))
            .await
            .unwrap();
        assert_eq!(out, Some(vec![0xe9, b'?']));
        let err = Converter::configure(&mut c, &props(&[(ENCODING_CONFIG, "klingon")]), true)
            .unwrap_err();
        assert!(err.to_string().contains("converter.encoding"));
        assert_eq!(Charset::Utf16.encode("a"), vec![0xfe, 0xff, 0, b'a']);
        assert_eq!(Charset::Utf16.decode(&[0xff, 0xfe, b'a', 0]), "a");
    }

    #[test]
    fn utf8_decoding_keeps_valid_text_and_replaces_malformed_bytes() {
        let text = "{\"name\":\"Zoë 東京\"}".repeat(40);
        assert_eq!(Charset::Utf8.decode(text.as_bytes()), text);
        // A truncated sequence in the middle, as Java's decoder maps it.
        assert_eq!(Charset::Utf8.decode(b"ab\xe6\x9dcd"), "ab\u{fffd}cd");
        assert_eq!(Charset::Utf8.decode(b"\xff"), "\u{fffd}");
    }
}
