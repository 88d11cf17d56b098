//! Converters between Connect data and Kafka bytes, under the Java class
//! names users already configure: `JsonConverter`, `StringConverter`,
//! `ByteArrayConverter`, Confluent's `AvroConverter` (with a schema registry
//! client, [`registry`]), and the worker's default header converter
//! `SimpleHeaderConverter`.

pub mod avro;
mod byte_array;
mod cache;
pub mod json;
mod number;
pub mod registry;
mod simple_header;
mod string;
pub mod values;

use connect_api::config::{ConfigKey, ConfigType, Default as ConfigDefault, Importance, Validator};
use connect_api::plugin::{ConverterPlugin, HeaderConverterPlugin};
use connect_api::{ConfigDef, Converter, HeaderConverter, Props};

pub use avro::AvroConverter;
pub use byte_array::ByteArrayConverter;
pub use json::JsonConverter;
pub use simple_header::SimpleHeaderConverter;
pub use string::StringConverter;

/// The version reported for every plugin of this crate.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `converter.type`: how a converter instance is used (`key`, `value`, `header`).
pub const TYPE_CONFIG: &str = "converter.type";

/// Java's `ConverterConfig.newConfigDef()`: the key every converter config has.
pub(crate) fn converter_config_def() -> ConfigDef {
    ConfigDef::new().define(
        ConfigKey::new(
            TYPE_CONFIG,
            ConfigType::String,
            ConfigDefault::Required,
            Importance::Low,
            "Whether this converter instance handles record keys, record values or headers.",
        )
        .validator(Validator::one_of(&["key", "value", "header"])),
    )
}

/// `props` with `converter.type` set, as Java's `configure(Map, boolean)` does.
pub(crate) fn props_with_type(props: &Props, converter_type: &str) -> Props {
    let mut props = props.clone();
    props.insert(TYPE_CONFIG.to_string(), converter_type.to_string());
    props
}

fn new_json() -> Box<dyn Converter> {
    Box::new(JsonConverter::new())
}
fn new_json_header() -> Box<dyn HeaderConverter> {
    Box::new(JsonConverter::new())
}
fn new_string() -> Box<dyn Converter> {
    Box::new(StringConverter::default())
}
fn new_string_header() -> Box<dyn HeaderConverter> {
    Box::new(StringConverter::default())
}
fn new_byte_array() -> Box<dyn Converter> {
    Box::new(ByteArrayConverter)
}
fn new_byte_array_header() -> Box<dyn HeaderConverter> {
    Box::new(ByteArrayConverter)
}
fn new_avro() -> Box<dyn Converter> {
    Box::new(AvroConverter::new())
}
fn new_simple_header() -> Box<dyn HeaderConverter> {
    Box::new(SimpleHeaderConverter)
}

/// Every converter of this crate. Aliases follow Java's plugin aliasing: the
/// simple class name and the name without its `Converter` suffix.
pub fn converter_plugins() -> Vec<ConverterPlugin> {
    vec![
        ConverterPlugin {
            class: "org.apache.kafka.connect.json.JsonConverter",
            aliases: &["JsonConverter", "Json"],
            version: VERSION,
            new: new_json,
            new_header: Some(new_json_header),
        },
        ConverterPlugin {
            class: "org.apache.kafka.connect.storage.StringConverter",
            aliases: &["StringConverter", "String"],
            version: VERSION,
            new: new_string,
            new_header: Some(new_string_header),
        },
        ConverterPlugin {
            class: "org.apache.kafka.connect.converters.ByteArrayConverter",
            aliases: &["ByteArrayConverter", "ByteArray"],
            version: VERSION,
            new: new_byte_array,
            new_header: Some(new_byte_array_header),
        },
        ConverterPlugin {
            class: "io.confluent.connect.avro.AvroConverter",
            aliases: &["AvroConverter", "Avro"],
            version: VERSION,
            new: new_avro,
            new_header: None,
        },
    ]
}

/// Header converters that are not also data converters.
pub fn header_converter_plugins() -> Vec<HeaderConverterPlugin> {
    vec![HeaderConverterPlugin {
        class: "org.apache.kafka.connect.storage.SimpleHeaderConverter",
        aliases: &["SimpleHeaderConverter", "Simple"],
        version: VERSION,
        new: new_simple_header,
    }]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plugins_are_listed_under_java_names() {
        let classes: Vec<&str> = converter_plugins().iter().map(|p| p.class).collect();
        assert!(classes.contains(&"org.apache.kafka.connect.json.JsonConverter"));
        assert!(classes.contains(&"io.confluent.connect.avro.AvroConverter"));
        assert!(converter_plugins()
            .iter()
            .filter(|p| p.class != "io.confluent.connect.avro.AvroConverter")
            .all(|p| p.new_header.is_some()));
        let h = header_converter_plugins();
        assert_eq!(
            h[0].class,
            "org.apache.kafka.connect.storage.SimpleHeaderConverter"
        );
        for p in converter_plugins() {
            let c = (p.new)();
            assert!(c.config_def().get(TYPE_CONFIG).is_some());
        }
    }
}
