//! Helpers shared by the transforms: which half of the record a `$Key` or
//! `$Value` variant works on, Java's `Requirements` checks and messages, a
//! small per-transform schema cache, and config parsing.

use std::sync::Mutex;

use connect_api::config::ParsedConfig;
use connect_api::data::java;
use connect_api::{
    ConfigDef, ConnectError, ConnectRecord, ConnectResult, Props, SchemaBuilder, SchemaRef, Struct,
    Value,
};

/// The record half a transform variant operates on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    Key,
    Value,
}

impl Operand {
    pub(crate) fn schema(self, record: &ConnectRecord) -> Option<&SchemaRef> {
        match self {
            Operand::Key => record.key_schema.as_ref(),
            Operand::Value => record.value_schema.as_ref(),
        }
    }

    pub(crate) fn value(self, record: &ConnectRecord) -> &Value {
        match self {
            Operand::Key => &record.key,
            Operand::Value => &record.value,
        }
    }

    /// Replaces the operand's schema and value, keeping everything else.
    pub(crate) fn set(
        self,
        mut record: ConnectRecord,
        schema: Option<SchemaRef>,
        value: Value,
    ) -> ConnectRecord {
        match self {
            Operand::Key => {
                record.key_schema = schema;
                record.key = value;
            }
            Operand::Value => {
                record.value_schema = schema;
                record.value = value;
            }
        }
        record
    }
}

/// Java's `requireMap`: schemaless data must be a map.
pub(crate) fn require_map<'a>(
    value: &'a Value,
    purpose: &str,
) -> ConnectResult<&'a [(Value, Value)]> {
    match value {
        Value::Map(entries) => Ok(entries),
        other => Err(ConnectError::data(format!(
            "Only Map objects supported in absence of schema for [{purpose}], found: {}",
            java::class_name(other)
        ))),
    }
}

/// Java's `requireStruct`: schema'd data must be a struct.
pub(crate) fn require_struct<'a>(value: &'a Value, purpose: &str) -> ConnectResult<&'a Struct> {
    match value {
        Value::Struct(s) => Ok(s),
        other => Err(ConnectError::data(format!(
            "Only Struct objects supported for [{purpose}], found: {}",
            java::class_name(other)
        ))),
    }
}

/// Looks up a string key in map entries.
pub(crate) fn map_get<'a>(entries: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// `HashMap.put` on map entries: replaces in place or appends.
pub(crate) fn map_put(entries: &mut Vec<(Value, Value)>, key: &str, value: Value) {
    match entries.iter_mut().find(|(k, _)| k.as_str() == Some(key)) {
        Some(slot) => slot.1 = value,
        None => entries.push((Value::String(key.to_string()), value)),
    }
}

/// A struct field's value; with `with_default`, a null takes the field's
/// default (Java's `Struct.get` versus `getWithoutDefault`).
pub(crate) fn field_value(st: &Struct, name: &str, with_default: bool) -> Value {
    let Some(field) = st.schema.field(name) else {
        return Value::Null;
    };
    let v = &st.values[field.index];
    match (&field.schema.default_value, v.is_null() && with_default) {
        (Some(default), true) => default.clone(),
        _ => v.clone(),
    }
}

/// Java's `Struct.put` check: a required field may not be set to null.
pub(crate) fn check_required(schema: &SchemaRef, field: &str, value: &Value) -> ConnectResult<()> {
    if value.is_null() && !schema.optional {
        return Err(ConnectError::data(format!(
            "Invalid value: null used for required field: \"{field}\", schema type: {}",
            schema.schema_type.java_name()
        )));
    }
    Ok(())
}

/// Java's `SchemaUtil.copySchemaBasics`: name, version, doc and parameters.
pub(crate) fn copy_schema_basics(
    source: &connect_api::Schema,
    mut builder: SchemaBuilder,
) -> SchemaBuilder {
    if let Some(name) = &source.name {
        builder = builder.name(name.clone());
    }
    if let Some(version) = source.version {
        builder = builder.version(version);
    }
    if let Some(doc) = &source.doc {
        builder = builder.doc(doc.clone());
    }
    for (k, v) in &source.parameters {
        builder = builder.parameter(k.clone(), v.clone());
    }
    builder
}

/// Java's `SchemaBuilder.field` duplicate check.
pub(crate) fn add_field(
    builder: SchemaBuilder,
    name: &str,
    schema: SchemaRef,
) -> ConnectResult<SchemaBuilder> {
    if builder.clone().build_schema().field(name).is_some() {
        return Err(ConnectError::data(format!(
            "Cannot create field because of field name duplication {name}"
        )));
    }
    Ok(builder.field(name.to_string(), schema))
}

/// Parses a transform config, reporting every problem at once.
pub(crate) fn parse_config(def: &ConfigDef, props: &Props) -> ConnectResult<ParsedConfig> {
    Ok(def.parse(props)?)
}

/// Java's `String.split(":")`: trailing empty parts are dropped.
pub(crate) fn java_split(s: &str, sep: char) -> Vec<&str> {
    if !s.contains(sep) {
        return vec![s];
    }
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

/// Caches the updated schema a transform derives from an input schema
/// (Java keeps an LRU of 16 per transform instance).
#[derive(Debug, Default)]
pub(crate) struct SchemaCache {
    entries: Mutex<Vec<(SchemaRef, SchemaRef)>>,
}

const SCHEMA_CACHE_SIZE: usize = 16;

impl SchemaCache {
    pub(crate) fn get_or_build(
        &self,
        key: &SchemaRef,
        build: impl FnOnce() -> ConnectResult<SchemaRef>,
    ) -> ConnectResult<SchemaRef> {
        if let Ok(entries) = self.entries.lock() {
            // Records usually share one schema allocation, so pointer equality hits first.
            if let Some((_, v)) = entries.iter().find(|(k, _)| std::sync::Arc::ptr_eq(k, key)) {
                return Ok(v.clone());
            }
            if let Some((_, v)) = entries.iter().find(|(k, _)| k == key) {
                return Ok(v.clone());
            }
        }
        let built = build()?;
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= SCHEMA_CACHE_SIZE {
                entries.remove(0);
            }
            entries.push((key.clone(), built.clone()));
        }
        Ok(built)
    }
}

/// A short rendering of a record for error messages (Java prints `toString()`).
pub(crate) fn describe(record: &ConnectRecord) -> String {
    format!(
        "ConnectRecord{{topic='{}', kafkaPartition={}, key={}, keySchema={}, value={}, valueSchema={}, timestamp={}}}",
        record.topic,
        record.kafka_partition.map_or("null".to_string(), |p| p.to_string()),
        java::to_java_string(&record.key),
        record.key_schema.as_ref().map_or("null".to_string(), |s| format!("Schema{{{}}}", s.schema_type.java_name())),
        java::to_java_string(&record.value),
        record.value_schema.as_ref().map_or("null".to_string(), |s| format!("Schema{{{}}}", s.schema_type.java_name())),
        record.timestamp.map_or("null".to_string(), |t| t.to_string()),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use connect_api::{Schema, SchemaType};

    #[test]
    fn split_like_java() {
        assert_eq!(java_split("a:b", ':'), vec!["a", "b"]);
        assert_eq!(java_split("a:", ':'), vec!["a"]);
        assert_eq!(java_split(":b", ':'), vec!["", "b"]);
        assert_eq!(java_split("a:b:c", ':'), vec!["a", "b", "c"]);
        assert_eq!(java_split("", ':'), vec![""]);
        assert!(java_split(":", ':').is_empty());
    }

    #[test]
    fn cache_returns_built_schema_once() {
        let cache = SchemaCache::default();
        let key = Schema::primitive(SchemaType::Int8, false);
        let a = cache
            .get_or_build(&key, || Ok(Schema::primitive(SchemaType::Int16, false)))
            .unwrap();
        let b = cache
            .get_or_build(&key, || panic!("should be cached"))
            .unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b));
    }
}
