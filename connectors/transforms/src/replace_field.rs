//! `ReplaceField$Key` / `ReplaceField$Value`: drops, keeps or renames fields
//! of a struct or map. `exclude` wins over `include`; the pre-3.0 names
//! `blacklist`/`whitelist` are still read when the new ones are unset.

use std::collections::{HashMap, HashSet};

use connect_api::config::{
    ConfigKey, ConfigType, ConfigValue, Default as ConfigDefault, Importance, Validator,
};
use connect_api::{
    ConfigDef, ConnectRecord, ConnectResult, Props, Schema, SchemaBuilder, SchemaRef, Struct,
    Transform, Value,
};

use crate::util::{
    add_field, copy_schema_basics, field_value, java_split, parse_config, require_map,
    require_struct, Operand, SchemaCache,
};

const EXCLUDE: &str = "exclude";
const INCLUDE: &str = "include";
const RENAMES: &str = "renames";
const BLACKLIST: &str = "blacklist";
const WHITELIST: &str = "whitelist";
const REPLACE_NULL_WITH_DEFAULT: &str = "replace.null.with.default";
const PURPOSE: &str = "field replacement";

fn parse_renames(mappings: &[String]) -> Result<HashMap<String, String>, String> {
    let mut renames = HashMap::new();
    for mapping in mappings {
        match java_split(mapping, ':').as_slice() {
            [from, to] => {
                renames.insert(from.to_string(), to.to_string());
            }
            _ => return Err(format!("Invalid rename mapping: {mapping}")),
        }
    }
    Ok(renames)
}

fn validate_renames(value: &ConfigValue) -> Result<(), String> {
    match value {
        ConfigValue::List(l) => parse_renames(l).map(|_| ()),
        _ => Ok(()),
    }
}

/// The replace-field transform.
#[derive(Debug)]
pub struct ReplaceField {
    operand: Operand,
    exclude: HashSet<String>,
    include: HashSet<String>,
    renames: HashMap<String, String>,
    reverse_renames: HashMap<String, String>,
    replace_null_with_default: bool,
    cache: SchemaCache,
}

impl ReplaceField {
    pub fn new(operand: Operand) -> Self {
        ReplaceField {
            operand,
            exclude: HashSet::new(),
            include: HashSet::new(),
            renames: HashMap::new(),
            reverse_renames: HashMap::new(),
            replace_null_with_default: true,
            cache: SchemaCache::default(),
        }
    }

    pub fn definition() -> ConfigDef {
        let empty = || ConfigDefault::Value(String::new());
        ConfigDef::new()
            .key(EXCLUDE, ConfigType::List, empty(), Importance::Medium, "Fields to drop. Takes precedence over the fields to include.")
            .key(INCLUDE, ConfigType::List, empty(), Importance::Medium, "Fields to keep. When set, every other field is dropped.")
            .define(
                ConfigKey::new(RENAMES, ConfigType::List, empty(), Importance::Medium, "Field renames as colon-separated pairs, e.g. <code>foo:bar,abc:xyz</code>.")
                    .validator(Validator::Custom(validate_renames)),
            )
            .key(REPLACE_NULL_WITH_DEFAULT, ConfigType::Boolean, ConfigDefault::Value("true".into()), Importance::Medium, "When true, null fields that have a default take the default; when false they stay null.")
            .key(BLACKLIST, ConfigType::List, ConfigDefault::Null, Importance::Low, "Deprecated synonym of exclude, read only when exclude is empty.")
            .key(WHITELIST, ConfigType::List, ConfigDefault::Null, Importance::Low, "Deprecated synonym of include, read only when include is empty.")
    }

    fn keep(&self, name: &str) -> bool {
        !self.exclude.contains(name) && (self.include.is_empty() || self.include.contains(name))
    }

    fn renamed<'a>(&'a self, name: &'a str) -> &'a str {
        self.renames.get(name).map_or(name, String::as_str)
    }

    fn updated_schema(&self, schema: &Schema) -> ConnectResult<SchemaRef> {
        let mut builder = copy_schema_basics(schema, SchemaBuilder::struct_());
        for f in schema.fields.iter().filter(|f| self.keep(&f.name)) {
            builder = add_field(builder, self.renamed(&f.name), f.schema.clone())?;
        }
        Ok(builder.build())
    }
}

impl Transform for ReplaceField {
    fn configure(&mut self, props: &Props) -> ConnectResult<()> {
        let c = parse_config(&Self::definition(), props)?;
        let pick = |new: &str, old: &str| {
            let v = c.list(new);
            if v.is_empty() {
                c.list(old)
            } else {
                v
            }
        };
        self.exclude = pick(EXCLUDE, BLACKLIST).into_iter().collect();
        self.include = pick(INCLUDE, WHITELIST).into_iter().collect();
        // The validator has already accepted the mappings.
        self.renames = parse_renames(&c.list(RENAMES)).unwrap_or_default();
        self.reverse_renames = self
            .renames
            .iter()
            .map(|(k, v)| (v.clone(), k.clone()))
            .collect();
        self.replace_null_with_default = c.bool(REPLACE_NULL_WITH_DEFAULT).unwrap_or(true);
        self.cache = SchemaCache::default();
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        Self::definition()
    }

    fn apply(&self, record: ConnectRecord) -> ConnectResult<Option<ConnectRecord>> {
        let value = self.operand.value(&record);
        if value.is_null() {
            return Ok(Some(record));
        }
        if self.operand.schema(&record).is_none() {
            let entries = require_map(value, PURPOSE)?
                .iter()
                .filter_map(|(k, v)| match k.as_str() {
                    Some(name) if self.keep(name) => {
                        Some((Value::String(self.renamed(name).to_string()), v.clone()))
                    }
                    Some(_) => None,
                    // Non-string keys cannot be named in the config; they pass through unless an include list is set.
                    None => self.include.is_empty().then(|| (k.clone(), v.clone())),
                })
                .collect();
            return Ok(Some(self.operand.set(record, None, Value::Map(entries))));
        }
        let st = require_struct(value, PURPOSE)?;
        let schema = self
            .cache
            .get_or_build(&st.schema, || self.updated_schema(&st.schema))?;
        let mut updated = Struct::new(schema.clone());
        for f in &schema.fields {
            let original = self
                .reverse_renames
                .get(&f.name)
                .map_or(f.name.as_str(), String::as_str);
            updated.values[f.index] = field_value(st, original, self.replace_null_with_default);
        }
        Ok(Some(self.operand.set(
            record,
            Some(schema),
            Value::Struct(updated),
        )))
    }
}
