//! Java's `SingleFieldPath`: a field reference, either a plain top-level name
//! (`field.syntax.version=V1`) or a dotted path into nested structs and maps
//! (`V2`), where backticks quote names that contain dots.

use connect_api::config::{ConfigKey, ConfigType, Default as ConfigDefault, Importance, Validator};
use connect_api::{ConfigDef, ConnectError, ConnectResult, Field, Schema, Struct, Value};

use crate::util::{field_value, map_get};

pub const FIELD_SYNTAX_VERSION: &str = "field.syntax.version";

/// Adds the `field.syntax.version` key (Java's `FieldSyntaxVersion.appendConfigTo`).
pub fn append_config(def: ConfigDef) -> ConfigDef {
    def.define(
        ConfigKey::new(
            FIELD_SYNTAX_VERSION,
            ConfigType::String,
            ConfigDefault::Value("V1".into()),
            Importance::High,
            "How field paths are read. V1: a name at the root of the struct or map. V2: dotted paths reach nested fields; wrap a name containing dots in backticks, e.g. \"`foo.bar`.baz\".",
        )
        .validator(Validator::one_of_ignore_case(&["V1", "V2"])),
    )
}

/// A parsed field path: one step in V1, one or more in V2.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath {
    steps: Vec<String>,
}

impl FieldPath {
    /// Parses `path` in the given syntax (`V1` or `V2`, any case).
    pub fn new(path: &str, version: &str) -> ConnectResult<FieldPath> {
        if version.eq_ignore_ascii_case("V2") {
            Ok(FieldPath {
                steps: parse_v2(path)?,
            })
        } else {
            Ok(FieldPath {
                steps: vec![path.to_string()],
            })
        }
    }

    fn split(&self) -> (&[String], &str) {
        match self.steps.split_last() {
            Some((last, init)) => (init, last.as_str()),
            None => (&[], ""),
        }
    }

    /// The field the path names in `schema`, if every step exists.
    pub fn field_from<'a>(&self, schema: &'a Schema) -> Option<&'a Field> {
        let (init, last) = self.split();
        let mut current = schema;
        for step in init {
            current = &current.field(step)?.schema;
        }
        current.field(last)
    }

    /// The value at the path in a struct; null when a step is missing or null.
    pub fn value_from_struct(&self, st: &Struct, with_default: bool) -> ConnectResult<Value> {
        let (init, last) = self.split();
        let mut current = st.clone();
        for step in init {
            if current.schema.field(step).is_none() {
                return Ok(Value::Null);
            }
            match field_value(&current, step, true) {
                Value::Null => return Ok(Value::Null),
                Value::Struct(s) => current = s,
                other => {
                    return Err(ConnectError::data(format!(
                        "Only Struct objects supported for [nested field access], found: {}",
                        connect_api::data::java::class_name(&other)
                    )))
                }
            }
        }
        Ok(field_value(&current, last, with_default))
    }

    /// The value at the path in a map; null when a step is missing or null.
    pub fn value_from_map(&self, entries: &[(Value, Value)]) -> ConnectResult<Value> {
        let (init, last) = self.split();
        let mut current = entries;
        for step in init {
            match map_get(current, step) {
                None | Some(Value::Null) => return Ok(Value::Null),
                Some(Value::Map(m)) => current = m,
                Some(other) => {
                    return Err(ConnectError::data(format!(
                        "Only Map objects supported in absence of schema for [nested field access], found: {}",
                        connect_api::data::java::class_name(other)
                    )))
                }
            }
        }
        Ok(map_get(current, last).cloned().unwrap_or(Value::Null))
    }
}

fn incomplete_backtick(path: &str, at: usize) -> ConnectError {
    ConnectError::fatal(format!(
        "Incomplete backtick pair in path: [{path}], consider adding a backslash before backtick at position {at} to escape it"
    ))
}

/// Splits a V2 path on dots; a step starting with a backtick runs to the
/// next backtick that is followed by a dot or ends the path (`\`` escapes).
fn parse_v2(path: &str) -> ConnectResult<Vec<String>> {
    let chars: Vec<char> = path.chars().collect();
    let find = |from: usize, c: char| {
        chars[from.min(chars.len())..]
            .iter()
            .position(|x| *x == c)
            .map(|p| p + from)
    };
    let mut steps = Vec::new();
    let mut idx = 0;
    while idx < chars.len() {
        if chars[idx] != '`' {
            let start = idx;
            match find(idx, '.') {
                Some(dot) => {
                    steps.push(chars[start..dot].iter().collect());
                    idx = dot + 1;
                }
                None => {
                    steps.push(chars[start..].iter().collect());
                    idx = chars.len();
                }
            }
            continue;
        }
        let backtick_at = idx;
        idx += 1;
        let mut field = String::new();
        let mut start = idx;
        loop {
            let Some(close) = find(idx, '`') else {
                return Err(incomplete_backtick(path, backtick_at));
            };
            idx = close;
            let escaped = chars[idx - 1] == '\\';
            if idx >= chars.len() - 1 {
                if escaped {
                    return Err(incomplete_backtick(path, backtick_at));
                }
                field.extend(&chars[start..idx]);
                steps.push(std::mem::take(&mut field));
                idx += 1;
                break;
            }
            if chars[idx + 1] != '.' {
                idx += 1;
                continue;
            }
            if escaped {
                field.extend(&chars[start..idx - 1]);
                field.push('`');
                idx += 1;
                start = idx;
                continue;
            }
            field.extend(&chars[start..idx]);
            steps.push(std::mem::take(&mut field));
            idx += 2;
            break;
        }
    }
    if path.ends_with('.') {
        steps.push(String::new());
    }
    Ok(steps)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn steps(p: &str) -> Vec<String> {
        FieldPath::new(p, "v2").unwrap().steps
    }

    #[test]
    fn v2_paths_split_on_dots_and_honour_backticks() {
        assert_eq!(steps("a.b.c"), ["a", "b", "c"]);
        assert_eq!(steps("`foo.bar`.baz"), ["foo.bar", "baz"]);
        assert_eq!(steps("a."), ["a", ""]);
        assert_eq!(steps("`a\\`.b`.c"), ["a`.b", "c"]);
        assert_eq!(steps("`x`"), ["x"]);
        assert!(FieldPath::new("`abc", "V2")
            .unwrap_err()
            .to_string()
            .contains("Incomplete backtick pair"));
        assert_eq!(FieldPath::new("a.b", "V1").unwrap().steps, ["a.b"]);
    }
}
