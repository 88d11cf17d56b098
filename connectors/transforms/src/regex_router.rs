//! `RegexRouter`: renames the topic when the whole topic name matches a
//! regular expression, using Java's replacement syntax (`$1`, `${name}`,
//! `\$` for a literal dollar).

use connect_api::config::{
    ConfigKey, ConfigType, ConfigValue, Default as ConfigDefault, Importance, Validator,
};
use connect_api::{ConfigDef, ConnectError, ConnectRecord, ConnectResult, Props, Transform};
use regex::{Captures, Regex};

use crate::util::parse_config;

const REGEX: &str = "regex";
const REPLACEMENT: &str = "replacement";

/// Compiles a Java pattern for `Matcher.matches()` (anchored) and for
/// `replaceFirst` (unanchored). Rust's regex syntax covers the common Java
/// constructs; look-around and back-references are rejected as invalid.
pub(crate) fn compile_java_regex(pattern: &str) -> Result<(Regex, Regex), String> {
    let find = Regex::new(pattern).map_err(|e| e.to_string())?;
    let full = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| e.to_string())?;
    Ok((full, find))
}

fn validate_regex(value: &ConfigValue) -> Result<(), String> {
    match value {
        ConfigValue::String(s) => compile_java_regex(s)
            .map(|_| ())
            .map_err(|e| format!("Invalid regex: {e}")),
        _ => Ok(()),
    }
}

/// One piece of a parsed Java replacement string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
    Named(String),
}

/// Parses Java's `Matcher.appendReplacement` syntax against a pattern's groups.
fn parse_replacement(replacement: &str, regex: &Regex) -> Result<Vec<Piece>, String> {
    let group_count = regex.captures_len() - 1;
    let chars: Vec<char> = replacement.chars().collect();
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let c = chars
                    .get(i + 1)
                    .ok_or("character to be escaped is missing")?;
                literal.push(*c);
                i += 2;
            }
            '$' => {
                i += 1;
                let Some(&next) = chars.get(i) else {
                    return Err("Illegal group reference: group index is missing".into());
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                if next == '{' {
                    let end = chars[i..]
                        .iter()
                        .position(|c| *c == '}')
                        .ok_or("named capturing group is missing trailing '}'")?;
                    let name: String = chars[i + 1..i + end].iter().collect();
                    if regex.capture_names().flatten().all(|n| n != name) {
                        return Err(format!("No group with name {{{name}}}"));
                    }
                    pieces.push(Piece::Named(name));
                    i += end + 1;
                } else {
                    let mut group = next.to_digit(10).ok_or("Illegal group reference")? as usize;
                    i += 1;
                    // Java takes further digits only while the number stays a valid group.
                    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                        let longer = group * 10 + d as usize;
                        if longer > group_count {
                            break;
                        }
                        group = longer;
                        i += 1;
                    }
                    if group > group_count {
                        return Err(format!("No group {group}"));
                    }
                    pieces.push(Piece::Group(group));
                }
            }
            c => {
                literal.push(c);
                i += 1;
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

fn expand(pieces: &[Piece], caps: &Captures<'_>, out: &mut String) {
    for p in pieces {
        match p {
            Piece::Literal(s) => out.push_str(s),
            Piece::Group(g) => out.push_str(caps.get(*g).map_or("", |m| m.as_str())),
            Piece::Named(n) => out.push_str(caps.name(n).map_or("", |m| m.as_str())),
        }
    }
}

/// The regex router.
#[derive(Debug, Default)]
pub struct RegexRouter {
    regex: Option<(Regex, Regex)>,
    replacement: Vec<Piece>,
}

impl RegexRouter {
    pub fn definition() -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::new(
                    REGEX,
                    ConfigType::String,
                    ConfigDefault::Required,
                    Importance::High,
                    "Regular expression the whole topic name must match.",
                )
                .validator(Validator::Custom(validate_regex)),
            )
            .key(
                REPLACEMENT,
                ConfigType::String,
                ConfigDefault::Required,
                Importance::High,
                "The new topic name; $1, ${name} refer to groups of the regular expression.",
            )
    }
}

impl Transform for RegexRouter {
    fn configure(&mut self, props: &Props) -> ConnectResult<()> {
        let c = parse_config(&Self::definition(), props)?;
        let pattern = c.string(REGEX).unwrap_or_default();
        let (full, find) = compile_java_regex(pattern)
            .map_err(|e| ConnectError::config(REGEX, pattern, format!("Invalid regex: {e}")))?;
        let replacement = c.string(REPLACEMENT).unwrap_or_default();
        self.replacement = parse_replacement(replacement, &find)
            .map_err(|e| ConnectError::config(REPLACEMENT, replacement, e))?;
        self.regex = Some((full, find));
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        Self::definition()
    }

    fn apply(&self, mut record: ConnectRecord) -> ConnectResult<Option<ConnectRecord>> {
        let Some((full, find)) = &self.regex else {
            return Ok(Some(record));
        };
        if !full.is_match(&record.topic) {
            return Ok(Some(record));
        }
        // Java calls replaceFirst after matches(): the first match found from the start is replaced.
        if let Some(caps) = find.captures(&record.topic) {
            let Some(m) = caps.get(0) else {
                return Ok(Some(record));
            };
            let mut topic = String::with_capacity(record.topic.len());
            topic.push_str(&record.topic[..m.start()]);
            expand(&self.replacement, &caps, &mut topic);
            topic.push_str(&record.topic[m.end()..]);
            record.topic = topic;
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn java_replacement_syntax() {
        let re = Regex::new("(a)(b)?(?P<n>c)").unwrap();
        let p = parse_replacement("x$1$12\\$${n}", &re).unwrap();
        assert_eq!(
            p,
            vec![
                Piece::Literal("x".into()),
                Piece::Group(1),
                Piece::Group(1),
                Piece::Literal("2$".into()),
                Piece::Named("n".into()),
            ]
        );
        assert_eq!(parse_replacement("$4", &re).unwrap_err(), "No group 4");
        assert!(parse_replacement("$x", &re).is_err());
        assert!(parse_replacement("a\\", &re).is_err());
    }
}
