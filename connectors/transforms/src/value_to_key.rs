//! `ValueToKey`: replaces the record key with a struct or map of the named
//! fields copied from the value.

use connect_api::config::{
    ConfigKey, ConfigType, ConfigValue, Default as ConfigDefault, Importance, Validator,
};
use connect_api::{
    ConfigDef, ConnectError, ConnectRecord, ConnectResult, Props, SchemaBuilder, Struct, Transform,
    Value,
};

use crate::util::{
    add_field, field_value, map_get, parse_config, require_map, require_struct, SchemaCache,
};

const FIELDS: &str = "fields";
const REPLACE_NULL_WITH_DEFAULT: &str = "replace.null.with.default";
const PURPOSE: &str = "copying fields from value to key";

fn non_empty_list(value: &ConfigValue) -> Result<(), String> {
    match value {
        ConfigValue::List(l) if l.is_empty() => Err("Empty list".into()),
        _ => Ok(()),
    }
}

/// The value-to-key transform.
#[derive(Debug, Default)]
pub struct ValueToKey {
    fields: Vec<String>,
    replace_null_with_default: bool,
    cache: SchemaCache,
}

impl ValueToKey {
    pub fn definition() -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::new(FIELDS, ConfigType::List, ConfigDefault::Required, Importance::High, "Names of the value fields that form the new key.")
                    .validator(Validator::Custom(non_empty_list)),
            )
            .key(REPLACE_NULL_WITH_DEFAULT, ConfigType::Boolean, ConfigDefault::Value("true".into()), Importance::Medium, "When true, null fields that have a default take the default; when false they stay null.")
    }
}

impl Transform for ValueToKey {
    fn configure(&mut self, props: &Props) -> ConnectResult<()> {
        let c = parse_config(&Self::definition(), props)?;
        self.fields = c.list(FIELDS);
        self.replace_null_with_default = c.bool(REPLACE_NULL_WITH_DEFAULT).unwrap_or(true);
        self.cache = SchemaCache::default();
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        Self::definition()
    }

    fn apply(&self, mut record: ConnectRecord) -> ConnectResult<Option<ConnectRecord>> {
        if record.value_schema.is_none() {
            let entries = require_map(&record.value, PURPOSE)?;
            let key = self
                .fields
                .iter()
                .map(|f| {
                    (
                        Value::String(f.clone()),
                        map_get(entries, f).cloned().unwrap_or(Value::Null),
                    )
                })
                .collect();
            record.key_schema = None;
            record.key = Value::Map(key);
            return Ok(Some(record));
        }
        let value = require_struct(&record.value, PURPOSE)?;
        let key_schema = self.cache.get_or_build(&value.schema, || {
            let mut builder = SchemaBuilder::struct_();
            for f in &self.fields {
                let from = value
                    .schema
                    .field(f)
                    .ok_or_else(|| ConnectError::data(format!("Field does not exist: {f}")))?;
                builder = add_field(builder, f, from.schema.clone())?;
            }
            Ok(builder.build())
        })?;
        let mut key = Struct::new(key_schema.clone());
        for f in &self.fields {
            key.put(f, field_value(value, f, self.replace_null_with_default));
        }
        record.key_schema = Some(key_schema);
        record.key = Value::Struct(key);
        Ok(Some(record))
    }
}
