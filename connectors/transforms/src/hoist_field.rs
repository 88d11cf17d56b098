//! `HoistField$Key` / `HoistField$Value`: wraps the key or value in a struct
//! (with a schema) or a map (without) holding it under one field name.

use connect_api::config::{ConfigType, Default as ConfigDefault, Importance};
use connect_api::{
    ConfigDef, ConnectRecord, ConnectResult, Props, SchemaBuilder, Struct, Transform, Value,
};

use crate::util::{check_required, parse_config, Operand, SchemaCache};

const FIELD: &str = "field";

/// The hoist-field transform.
#[derive(Debug)]
pub struct HoistField {
    operand: Operand,
    field: String,
    cache: SchemaCache,
}

impl HoistField {
    pub fn new(operand: Operand) -> Self {
        HoistField {
            operand,
            field: String::new(),
            cache: SchemaCache::default(),
        }
    }

    pub fn definition() -> ConfigDef {
        ConfigDef::new().key(
            FIELD,
            ConfigType::String,
            ConfigDefault::Required,
            Importance::Medium,
            "Name of the single field of the struct or map that wraps the original data.",
        )
    }
}

impl Transform for HoistField {
    fn configure(&mut self, props: &Props) -> ConnectResult<()> {
        let c = parse_config(&Self::definition(), props)?;
        self.field = c.string(FIELD).unwrap_or_default().to_string();
        self.cache = SchemaCache::default();
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        Self::definition()
    }

    fn apply(&self, record: ConnectRecord) -> ConnectResult<Option<ConnectRecord>> {
        let value = self.operand.value(&record).clone();
        let Some(schema) = self.operand.schema(&record).cloned() else {
            let map = Value::Map(vec![(Value::String(self.field.clone()), value)]);
            return Ok(Some(self.operand.set(record, None, map)));
        };
        check_required(&schema, &self.field, &value)?;
        let updated = self.cache.get_or_build(&schema, || {
            Ok(SchemaBuilder::struct_()
                .field(self.field.clone(), schema.clone())
                .build())
        })?;
        let st = Struct::new(updated.clone()).with(&self.field, value);
        Ok(Some(self.operand.set(
            record,
            Some(updated),
            Value::Struct(st),
        )))
    }
}
