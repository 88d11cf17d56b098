//! `ConfigDef`: each configuration key declared once (type, default,
//! importance, documentation, validator), driving parsing, validation and the
//! REST `config/validate` and plugin-config output.
//!
//! Error texts follow the Java worker's wording, because users and tooling
//! match on them (`Missing required configuration "x" which has no default
//! value.`, `Invalid value y for configuration x: ...`).

use std::collections::BTreeMap;
use std::fmt;

use indexmap::IndexMap;
use serde::Serialize;

use crate::error::ConnectError;

/// A string-to-string configuration map, as stored in the config topic.
pub type Props = BTreeMap<String, String>;

/// The value type of a key (Java's `ConfigDef.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Importance {
    High,
    Medium,
    Low,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Width {
    None,
    Short,
    Medium,
    Long,
}

/// A key's default.
#[derive(Debug, Clone, PartialEq)]
pub enum Default {
    /// No default: the key is required.
    Required,
    /// The default is null (the key is optional and absent means "unset").
    Null,
    /// A default in its string form (lists comma-separated), parsed like user input.
    Value(String),
}

/// A parsed, typed configuration value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    Boolean(bool),
    String(String),
    Int(i32),
    Short(i16),
    Long(i64),
    Double(f64),
    List(Vec<String>),
    Class(String),
    Password(Password),
}

/// A secret. Its `Debug` and `Display` never print the value.
#[derive(Clone, PartialEq)]
pub struct Password(pub String);

impl Password {
    pub const HIDDEN: &'static str = "[hidden]";
    pub fn value(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::HIDDEN)
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::HIDDEN)
    }
}

/// A check applied after parsing (Java's `ConfigDef.Validator`).
#[derive(Clone)]
pub enum Validator {
    /// Numeric range, inclusive; either bound may be open.
    Range {
        min: Option<f64>,
        max: Option<f64>,
    },
    /// One of the given strings.
    OneOf {
        values: Vec<&'static str>,
        case_insensitive: bool,
    },
    NonEmptyString,
    /// Any other rule; the error is the text after "Invalid value X for configuration Y: ".
    Custom(fn(&ConfigValue) -> Result<(), String>),
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Validator::Range { min, max } => write!(f, "Range({min:?}, {max:?})"),
            Validator::OneOf { values, .. } => write!(f, "OneOf({values:?})"),
            Validator::NonEmptyString => f.write_str("NonEmptyString"),
            Validator::Custom(_) => f.write_str("Custom"),
        }
    }
}

impl Validator {
    pub fn at_least(min: f64) -> Self {
        Validator::Range {
            min: Some(min),
            max: None,
        }
    }

    pub fn between(min: f64, max: f64) -> Self {
        Validator::Range {
            min: Some(min),
            max: Some(max),
        }
    }

    pub fn one_of(values: &[&'static str]) -> Self {
        Validator::OneOf {
            values: values.to_vec(),
            case_insensitive: false,
        }
    }

    pub fn one_of_ignore_case(values: &[&'static str]) -> Self {
        Validator::OneOf {
            values: values.to_vec(),
            case_insensitive: true,
        }
    }

    fn check(&self, value: &ConfigValue) -> Result<(), String> {
        match self {
            Validator::Range { min, max } => {
                let n = match value {
                    ConfigValue::Int(v) => f64::from(*v),
                    ConfigValue::Short(v) => f64::from(*v),
                    ConfigValue::Long(v) => *v as f64,
                    ConfigValue::Double(v) => *v,
                    _ => return Ok(()),
                };
                if let Some(min) = min {
                    if n < *min {
                        return Err(format!("Value must be at least {}", fmt_num(*min)));
                    }
                }
                if let Some(max) = max {
                    if n > *max {
                        return Err(format!("Value must be no more than {}", fmt_num(*max)));
                    }
                }
                Ok(())
            }
            Validator::OneOf {
                values,
                case_insensitive,
            } => {
                let s = match value {
                    ConfigValue::String(s) | ConfigValue::Class(s) => s.as_str(),
                    _ => return Ok(()),
                };
                let ok = values.iter().any(|v| {
                    if *case_insensitive {
                        v.eq_ignore_ascii_case(s)
                    } else {
                        *v == s
                    }
                });
                if ok {
                    Ok(())
                } else {
                    Err(format!("String must be one of: {}", values.join(", ")))
                }
            }
            Validator::NonEmptyString => match value {
                ConfigValue::String(s) if s.is_empty() => {
                    Err("String must be non-empty".to_string())
                }
                _ => Ok(()),
            },
            Validator::Custom(f) => f(value),
        }
    }
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e18 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// One declared key.
#[derive(Debug, Clone)]
pub struct ConfigKey {
    pub name: String,
    pub config_type: ConfigType,
    pub default: Default,
    pub importance: Importance,
    pub documentation: String,
    pub group: Option<String>,
    pub order_in_group: i32,
    pub width: Width,
    pub display_name: String,
    pub dependents: Vec<String>,
    pub validator: Option<Validator>,
    pub recommended_values: Vec<String>,
}

impl ConfigKey {
    pub fn new(
        name: &str,
        config_type: ConfigType,
        default: Default,
        importance: Importance,
        documentation: &str,
    ) -> Self {
        ConfigKey {
            name: name.to_string(),
            config_type,
            default,
            importance,
            documentation: documentation.to_string(),
            group: None,
            order_in_group: -1,
            width: Width::None,
            display_name: name.to_string(),
            dependents: Vec::new(),
            validator: None,
            recommended_values: Vec::new(),
        }
    }

    pub fn validator(mut self, v: Validator) -> Self {
        if let Validator::OneOf { values, .. } = &v {
            self.recommended_values = values.iter().map(|s| s.to_string()).collect();
        }
        self.validator = Some(v);
        self
    }

    pub fn group(mut self, group: &str, order: i32, width: Width, display_name: &str) -> Self {
        self.group = Some(group.to_string());
        self.order_in_group = order;
        self.width = width;
        self.display_name = display_name.to_string();
        self
    }

    pub fn required(&self) -> bool {
        self.default == Default::Required
    }

    /// Parses one raw string as this key's type.
    pub fn parse_value(&self, raw: &str) -> Result<ConfigValue, String> {
        let t = raw.trim();
        Ok(match self.config_type {
            ConfigType::Boolean => {
                if t.eq_ignore_ascii_case("true") {
                    ConfigValue::Boolean(true)
                } else if t.eq_ignore_ascii_case("false") {
                    ConfigValue::Boolean(false)
                } else {
                    return Err("Expected value to be either true or false".into());
                }
            }
            ConfigType::String => ConfigValue::String(t.to_string()),
            ConfigType::Password => ConfigValue::Password(Password(raw.to_string())),
            ConfigType::Class => ConfigValue::Class(t.to_string()),
            ConfigType::Int => ConfigValue::Int(
                t.parse()
                    .map_err(|_| "Not a number of type INT".to_string())?,
            ),
            ConfigType::Short => ConfigValue::Short(
                t.parse()
                    .map_err(|_| "Not a number of type SHORT".to_string())?,
            ),
            ConfigType::Long => ConfigValue::Long(
                t.parse()
                    .map_err(|_| "Not a number of type LONG".to_string())?,
            ),
            ConfigType::Double => ConfigValue::Double(
                t.parse()
                    .map_err(|_| "Not a number of type DOUBLE".to_string())?,
            ),
            ConfigType::List => ConfigValue::List(if t.is_empty() {
                Vec::new()
            } else {
                t.split(',').map(|s| s.trim().to_string()).collect()
            }),
        })
    }
}

/// What validation reports for one key (Java's `ConfigValueInfo`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigValueInfo {
    pub name: String,
    pub value: Option<String>,
    pub recommended_values: Vec<String>,
    pub errors: Vec<String>,
    pub visible: bool,
}

/// A set of declared keys, in declaration order.
#[derive(Debug, Clone, Default)]
pub struct ConfigDef {
    keys: IndexMap<String, ConfigKey>,
}

/// Every problem found in a config, not just the first.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<(String, String)>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msgs: Vec<&str> = self.0.iter().map(|(_, m)| m.as_str()).collect();
        f.write_str(&msgs.join("\n"))
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigErrors> for ConnectError {
    fn from(e: ConfigErrors) -> Self {
        ConnectError::Fatal(e.to_string())
    }
}

impl ConfigDef {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key; a later definition of the same name replaces the earlier one.
    pub fn define(mut self, key: ConfigKey) -> Self {
        self.keys.insert(key.name.clone(), key);
        self
    }

    /// Shorthand for the common case.
    pub fn key(
        self,
        name: &str,
        config_type: ConfigType,
        default: Default,
        importance: Importance,
        documentation: &str,
    ) -> Self {
        self.define(ConfigKey::new(
            name,
            config_type,
            default,
            importance,
            documentation,
        ))
    }

    /// Adds all keys of `other` that this definition does not already have.
    pub fn merge(mut self, other: &ConfigDef) -> Self {
        for (name, key) in &other.keys {
            self.keys.entry(name.clone()).or_insert_with(|| key.clone());
        }
        self
    }

    /// The same keys with `prefix` prepended and `group` set, for transform
    /// and predicate aliases in connector validation.
    pub fn embed(&self, prefix: &str, group: &str) -> ConfigDef {
        let mut out = ConfigDef::new();
        for (i, key) in self.keys.values().enumerate() {
            let mut k = key.clone();
            k.name = format!("{prefix}{}", key.name);
            k.group = Some(group.to_string());
            k.order_in_group = i as i32 + 1;
            out.keys.insert(k.name.clone(), k);
        }
        out
    }

    pub fn keys(&self) -> impl Iterator<Item = &ConfigKey> {
        self.keys.values()
    }

    pub fn get(&self, name: &str) -> Option<&ConfigKey> {
        self.keys.get(name)
    }

    fn value_of(key: &ConfigKey, props: &Props) -> Result<Option<ConfigValue>, String> {
        match props.get(&key.name) {
            Some(raw) => key
                .parse_value(raw)
                .map(Some)
                .map_err(|m| format!("Invalid value {raw} for configuration {}: {m}", key.name)),
            None => match &key.default {
                Default::Required => Err(format!(
                    "Missing required configuration \"{}\" which has no default value.",
                    key.name
                )),
                Default::Null => Ok(None),
                Default::Value(d) => key.parse_value(d).map(Some).map_err(|m| {
                    format!("Invalid default {d} for configuration {}: {m}", key.name)
                }),
            },
        }
    }

    fn check(key: &ConfigKey, value: &Option<ConfigValue>, props: &Props) -> Result<(), String> {
        if let (Some(v), Some(validator)) = (value, &key.validator) {
            validator.check(v).map_err(|m| {
                let shown = match (v, props.get(&key.name)) {
                    (ConfigValue::Password(_), _) => Password::HIDDEN.to_string(),
                    (_, Some(raw)) => raw.clone(),
                    (_, None) => key_default_text(key).unwrap_or_default(),
                };
                format!("Invalid value {shown} for configuration {}: {m}", key.name)
            })?;
        }
        Ok(())
    }

    /// Parses `props`, returning every error at once.
    pub fn parse(&self, props: &Props) -> Result<ParsedConfig, ConfigErrors> {
        let mut values = BTreeMap::new();
        let mut errors = Vec::new();
        for key in self.keys.values() {
            match Self::value_of(key, props) {
                Ok(v) => match Self::check(key, &v, props) {
                    Ok(()) => {
                        if let Some(v) = v {
                            values.insert(key.name.clone(), v);
                        }
                    }
                    Err(e) => errors.push((key.name.clone(), e)),
                },
                Err(e) => errors.push((key.name.clone(), e)),
            }
        }
        if errors.is_empty() {
            Ok(ParsedConfig {
                values,
                originals: props.clone(),
            })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Validation output for every declared key, in declaration order, with
    /// passwords shown as `[hidden]` (Java's `ConfigDef.validate`).
    pub fn validate(&self, props: &Props) -> Vec<ConfigValueInfo> {
        self.keys
            .values()
            .map(|key| {
                let mut errors = Vec::new();
                let parsed = Self::value_of(key, props);
                let value = match &parsed {
                    Ok(Some(v)) => Some(display_value(v)),
                    Ok(None) => None,
                    Err(_) => props.get(&key.name).map(|raw| {
                        if key.config_type == ConfigType::Password {
                            Password::HIDDEN.to_string()
                        } else {
                            raw.clone()
                        }
                    }),
                };
                match parsed {
                    Ok(v) => {
                        if let Err(e) = Self::check(key, &v, props) {
                            errors.push(e);
                        }
                    }
                    Err(e) => errors.push(e),
                }
                ConfigValueInfo {
                    name: key.name.clone(),
                    value,
                    recommended_values: key.recommended_values.clone(),
                    errors,
                    visible: true,
                }
            })
            .collect()
    }
}

/// The string form of a key's default as the REST API shows it.
pub fn key_default_text(key: &ConfigKey) -> Option<String> {
    match &key.default {
        Default::Required | Default::Null => None,
        Default::Value(d) => match key.parse_value(d) {
            Ok(v) => Some(display_value(&v)),
            Err(_) => Some(d.clone()),
        },
    }
}

/// The string form of a parsed value as the REST validate output shows it.
pub fn display_value(v: &ConfigValue) -> String {
    match v {
        ConfigValue::Boolean(b) => b.to_string(),
        ConfigValue::String(s) | ConfigValue::Class(s) => s.clone(),
        ConfigValue::Int(n) => n.to_string(),
        ConfigValue::Short(n) => n.to_string(),
        ConfigValue::Long(n) => n.to_string(),
        ConfigValue::Double(n) => format!("{n:?}"),
        ConfigValue::List(l) => l.join(","),
        ConfigValue::Password(_) => Password::HIDDEN.to_string(),
    }
}

/// A parsed config: typed values of declared keys plus the original map,
/// which keeps keys the definition does not own (they pass through).
#[derive(Debug, Clone, PartialEq, std::default::Default)]
pub struct ParsedConfig {
    values: BTreeMap<String, ConfigValue>,
    originals: Props,
}

impl ParsedConfig {
    pub fn originals(&self) -> &Props {
        &self.originals
    }

    pub fn get(&self, name: &str) -> Option<&ConfigValue> {
        self.values.get(name)
    }

    pub fn string(&self, name: &str) -> Option<&str> {
        match self.values.get(name) {
            Some(ConfigValue::String(s)) | Some(ConfigValue::Class(s)) => Some(s),
            Some(ConfigValue::Password(p)) => Some(p.value()),
            _ => None,
        }
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.values.get(name) {
            Some(ConfigValue::Boolean(b)) => Some(*b),
            _ => None,
        }
    }

    pub fn int(&self, name: &str) -> Option<i32> {
        match self.values.get(name) {
            Some(ConfigValue::Int(v)) => Some(*v),
            Some(ConfigValue::Short(v)) => Some((*v).into()),
            _ => None,
        }
    }

    pub fn long(&self, name: &str) -> Option<i64> {
        match self.values.get(name) {
            Some(ConfigValue::Long(v)) => Some(*v),
            Some(ConfigValue::Int(v)) => Some((*v).into()),
            Some(ConfigValue::Short(v)) => Some((*v).into()),
            _ => None,
        }
    }

    pub fn double(&self, name: &str) -> Option<f64> {
        match self.values.get(name) {
            Some(ConfigValue::Double(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        match self.values.get(name) {
            Some(ConfigValue::List(l)) => l.clone(),
            _ => Vec::new(),
        }
    }

    /// Original keys that start with `prefix`, with the prefix removed.
    pub fn with_prefix(&self, prefix: &str) -> Props {
        originals_with_prefix(&self.originals, prefix)
    }
}

/// Keys of `props` that start with `prefix`, with the prefix removed.
pub fn originals_with_prefix(props: &Props, prefix: &str) -> Props {
    props
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|s| (s.to_string(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> ConfigDef {
        ConfigDef::new()
            .key(
                "name",
                ConfigType::String,
                Default::Required,
                Importance::High,
                "n",
            )
            .define(
                ConfigKey::new(
                    "tasks.max",
                    ConfigType::Int,
                    Default::Value("1".into()),
                    Importance::High,
                    "t",
                )
                .validator(Validator::at_least(1.0)),
            )
            .key(
                "secret",
                ConfigType::Password,
                Default::Null,
                Importance::Low,
                "s",
            )
            .key(
                "list",
                ConfigType::List,
                Default::Value("a, b".into()),
                Importance::Low,
                "l",
            )
    }

    fn props(kv: &[(&str, &str)]) -> Props {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parse_reports_every_error_with_java_wording() {
        let err = def().parse(&props(&[("tasks.max", "x")])).unwrap_err();
        assert_eq!(
            err.0,
            vec![
                (
                    "name".to_string(),
                    "Missing required configuration \"name\" which has no default value."
                        .to_string()
                ),
                (
                    "tasks.max".to_string(),
                    "Invalid value x for configuration tasks.max: Not a number of type INT"
                        .to_string()
                ),
            ]
        );
        let err = def()
            .parse(&props(&[("name", "a"), ("tasks.max", "0")]))
            .unwrap_err();
        assert_eq!(
            err.0[0].1,
            "Invalid value 0 for configuration tasks.max: Value must be at least 1"
        );
    }

    #[test]
    fn parse_applies_defaults_and_keeps_unknown_keys() {
        let p = def()
            .parse(&props(&[("name", "a"), ("extra", "x")]))
            .unwrap();
        assert_eq!(p.int("tasks.max"), Some(1));
        assert_eq!(p.list("list"), vec!["a", "b"]);
        assert_eq!(p.string("secret"), None);
        assert_eq!(p.originals().get("extra").map(String::as_str), Some("x"));
    }

    #[test]
    fn validate_hides_passwords_and_lists_all_keys() {
        let v = def().validate(&props(&[("secret", "hunter2")]));
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].errors.len(), 1);
        let secret = v.iter().find(|c| c.name == "secret").unwrap();
        assert_eq!(secret.value.as_deref(), Some("[hidden]"));
        assert!(format!("{:?}", Password("hunter2".into())).contains("hidden"));
    }
}
