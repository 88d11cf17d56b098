//! `ExtractField$Key` / `ExtractField$Value`: replaces the key or value with
//! one of its fields (a nested one with `field.syntax.version=V2`). Null
//! values pass through.

use connect_api::config::{ConfigType, Default as ConfigDefault, Importance};
use connect_api::{ConfigDef, ConnectError, ConnectRecord, ConnectResult, Props, Transform, Value};

use crate::field_path::{self, FieldPath, FIELD_SYNTAX_VERSION};
use crate::util::{parse_config, require_map, require_struct, Operand};

const FIELD: &str = "field";
const REPLACE_NULL_WITH_DEFAULT: &str = "replace.null.with.default";
const PURPOSE: &str = "field extraction";

/// The extract-field transform.
#[derive(Debug)]
pub struct ExtractField {
    operand: Operand,
    original_path: String,
    path: FieldPath,
    replace_null_with_default: bool,
}

impl ExtractField {
    pub fn new(operand: Operand) -> Self {
        ExtractField {
            operand,
            original_path: String::new(),
            path: FieldPath::default(),
            replace_null_with_default: true,
        }
    }

    pub fn definition() -> ConfigDef {
        field_path::append_config(
            ConfigDef::new()
                .key(FIELD, ConfigType::String, ConfigDefault::Required, Importance::Medium, "Name (or, with V2 syntax, path) of the field to extract.")
                .key(REPLACE_NULL_WITH_DEFAULT, ConfigType::Boolean, ConfigDefault::Value("true".into()), Importance::Medium, "When true, a null field that has a default yields the default; when false it yields null."),
        )
    }
}

impl Transform for ExtractField {
    fn configure(&mut self, props: &Props) -> ConnectResult<()> {
        let c = parse_config(&Self::definition(), props)?;
        self.original_path = c.string(FIELD).unwrap_or_default().to_string();
        self.path = FieldPath::new(
            &self.original_path,
            c.string(FIELD_SYNTAX_VERSION).unwrap_or("V1"),
        )?;
        self.replace_null_with_default = c.bool(REPLACE_NULL_WITH_DEFAULT).unwrap_or(true);
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        Self::definition()
    }

    fn apply(&self, record: ConnectRecord) -> ConnectResult<Option<ConnectRecord>> {
        let value = self.operand.value(&record);
        let Some(schema) = self.operand.schema(&record) else {
            let extracted = match value {
                Value::Null => Value::Null,
                v => self.path.value_from_map(require_map(v, PURPOSE)?)?,
            };
            return Ok(Some(self.operand.set(record, None, extracted)));
        };
        let st = match value {
            Value::Null => None,
            v => Some(require_struct(v, PURPOSE)?),
        };
        let field = self
            .path
            .field_from(schema)
            .ok_or_else(|| ConnectError::data(format!("Unknown field: {}", self.original_path)))?;
        let field_schema = field.schema.clone();
        let extracted = match st {
            None => Value::Null,
            Some(st) => self
                .path
                .value_from_struct(st, self.replace_null_with_default)?,
        };
        Ok(Some(self.operand.set(
            record,
            Some(field_schema),
            extracted,
        )))
    }
}
