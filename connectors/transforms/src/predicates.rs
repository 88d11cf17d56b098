//! The predicates: `TopicNameMatches` (the whole topic matches a regular
//! expression), `HasHeaderKey` (a header with the name exists) and
//! `RecordIsTombstone` (the value is null).

use connect_api::config::{
    ConfigKey, ConfigType, ConfigValue, Default as ConfigDefault, Importance, Validator,
};
use connect_api::{ConfigDef, ConnectError, ConnectRecord, ConnectResult, Predicate, Props};
use regex::Regex;

use crate::regex_router::compile_java_regex;
use crate::util::parse_config;

const PATTERN: &str = "pattern";
const NAME: &str = "name";

fn validate_pattern(value: &ConfigValue) -> Result<(), String> {
    match value {
        ConfigValue::String(s) if s.is_empty() => Err("String must be non-empty".into()),
        ConfigValue::String(s) => compile_java_regex(s)
            .map(|_| ())
            .map_err(|e| format!("Invalid regex: {e}")),
        _ => Ok(()),
    }
}

/// True when the record's whole topic name matches `pattern`.
#[derive(Debug, Default)]
pub struct TopicNameMatches {
    pattern: Option<Regex>,
}

impl TopicNameMatches {
    pub fn definition() -> ConfigDef {
        ConfigDef::new().define(
            ConfigKey::new(
                PATTERN,
                ConfigType::String,
                ConfigDefault::Required,
                Importance::Medium,
                "A Java regular expression the whole topic name must match.",
            )
            .validator(Validator::Custom(validate_pattern)),
        )
    }
}

impl Predicate for TopicNameMatches {
    fn configure(&mut self, props: &Props) -> ConnectResult<()> {
        let c = parse_config(&Self::definition(), props)?;
        let pattern = c.string(PATTERN).unwrap_or_default();
        let (full, _) = compile_java_regex(pattern).map_err(|e| {
            ConnectError::config(
                PATTERN,
                pattern,
                format!("entry must be a Java-compatible regular expression: {e}"),
            )
        })?;
        self.pattern = Some(full);
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        Self::definition()
    }

    fn test(&self, record: &ConnectRecord) -> bool {
        self.pattern
            .as_ref()
            .is_some_and(|p| p.is_match(&record.topic))
    }
}

/// True when the record has at least one header named `name`.
#[derive(Debug, Default)]
pub struct HasHeaderKey {
    name: String,
}

impl HasHeaderKey {
    pub fn definition() -> ConfigDef {
        ConfigDef::new().define(
            ConfigKey::new(
                NAME,
                ConfigType::String,
                ConfigDefault::Required,
                Importance::Medium,
                "The header name to look for.",
            )
            .validator(Validator::NonEmptyString),
        )
    }
}

impl Predicate for HasHeaderKey {
    fn configure(&mut self, props: &Props) -> ConnectResult<()> {
        let c = parse_config(&Self::definition(), props)?;
        self.name = c.string(NAME).unwrap_or_default().to_string();
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        Self::definition()
    }

    fn test(&self, record: &ConnectRecord) -> bool {
        record.headers.contains(&self.name)
    }
}

/// True when the record's value is null.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn configure(&mut self, _props: &Props) -> ConnectResult<()> {
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
    }

    fn test(&self, record: &ConnectRecord) -> bool {
        record.value.is_null()
    }
}
