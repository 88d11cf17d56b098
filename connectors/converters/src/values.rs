//! Connect's `Values` text format, used by `SimpleHeaderConverter`.
//!
//! Writing: strings and bytes (base64) are bare at the top level and quoted
//! inside arrays, maps and structs; dates use ISO-8601 forms. Reading infers a
//! schema: `true`/`false`, the smallest integer type that fits, `float32` when
//! a fraction fits one (else `float64`, else a decimal), ISO dates and times,
//! and `[...]`/`{...}` with a common element schema. Anything else is a string.
//! The tokenizer mirrors Java's quirks on purpose (no unescaping inside quotes,
//! trailing tokens after a top-level number ignored) so headers written by
//! Java workers read back with the same schema and value.

use connect_api::data::java;
use connect_api::data::logical::{self, DATE, DECIMAL, TIME, TIMESTAMP};
use connect_api::{Schema, SchemaBuilder, SchemaRef, SchemaType, Value};

use crate::number::{parse_decimal, split_number};

const MILLIS_PER_DAY: i64 = 86_400_000;

/// `Values.convertToString(schema, value)`; `None` for a null value.
pub fn convert_to_string(value: &Value) -> Option<String> {
    if value.is_null() {
        return None;
    }
    let mut out = String::new();
    append(&mut out, value, false);
    Some(out)
}

fn append(out: &mut String, value: &Value, embedded: bool) {
    match value {
        Value::String(s) => {
            if embedded {
                out.push('"');
                out.push_str(&s.replace('\\', "\\\\").replace('"', "\\\""));
                out.push('"');
            } else {
                out.push_str(s);
            }
        }
        Value::Bytes(b) => {
            if embedded {
                out.push('"');
            }
            out.push_str(&java::base64_encode(b));
            if embedded {
                out.push('"');
            }
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                append(out, item, true);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                append(out, k, true);
                out.push(':');
                append(out, v, true);
            }
            out.push('}');
        }
        Value::Struct(st) => {
            out.push('{');
            for (i, f) in st.schema.fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                append(out, &Value::String(f.name.clone()), true);
                out.push(':');
                // Struct.get applies the field's default to a null value.
                let v = &st.values[f.index];
                let v = match (&f.schema.default_value, v.is_null()) {
                    (Some(d), true) => d,
                    _ => v,
                };
                append(out, v, true);
            }
            out.push('}');
        }
        Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => out.push_str(
            &java::iso_date_string(java::temporal_millis(value).unwrap_or(0)),
        ),
        // null, numbers (incl. BigDecimal), booleans: their toString.
        other => out.push_str(&java::to_java_string(other)),
    }
}

/// A parsed value with its inferred schema (`None` for a null literal).
pub type Parsed = Option<(SchemaRef, Value)>;

/// `Values.parseString(text)`. `Err` carries the Java `DataException` message.
pub fn parse_string(text: &str) -> Result<Parsed, String> {
    if text.is_empty() {
        return Ok(Some((
            primitive(SchemaType::String),
            Value::String(String::new()),
        )));
    }
    let mut parser = ValueParser {
        tokens: Tokenizer::new(text),
    };
    parser.parse(false)
}

fn primitive(t: SchemaType) -> SchemaRef {
    Schema::primitive(t, false)
}

fn is_blank(s: &str) -> bool {
    java::trim(s).is_empty()
}

/// Java's `Values.Parser`: splits on unescaped `: , { } [ ] "`, one token per delimiter.
struct Tokenizer {
    original: String,
    chars: Vec<char>,
    index: usize,
    next_token: Option<String>,
    previous_token: Option<String>,
}

impl Tokenizer {
    fn new(original: &str) -> Self {
        Tokenizer {
            original: original.to_string(),
            chars: original.chars().collect(),
            index: 0,
            next_token: None,
            previous_token: None,
        }
    }

    fn substring(&self, start: usize, end: usize) -> String {
        self.chars[start..end].iter().collect()
    }

    fn mark(&self) -> usize {
        self.index - self.next_token.as_ref().map_or(0, |t| t.chars().count())
    }

    fn rewind_to(&mut self, position: usize) {
        self.index = position;
        self.next_token = None;
        self.previous_token = None;
    }

    fn can_consume_next_token(&self) -> bool {
        self.index < self.chars.len()
    }

    fn has_next(&self) -> bool {
        self.next_token.is_some() || self.can_consume_next_token()
    }

    fn next(&mut self) -> String {
        let token = match self.next_token.take() {
            Some(t) => t,
            None => self.consume_next_token(),
        };
        self.previous_token = Some(token.clone());
        token
    }

    fn next_n(&mut self, n: usize) -> Option<String> {
        let start = self.mark();
        for _ in 0..n {
            if !self.has_next() {
                self.rewind_to(start);
                return None;
            }
            self.next();
        }
        Some(self.substring(start, self.index))
    }

    fn consume_next_token(&mut self) -> String {
        let mut escaped = false;
        let start = self.index;
        while self.can_consume_next_token() {
            match self.chars[self.index] {
                '\\' => escaped = !escaped,
                ':' | ',' | '{' | '}' | '[' | ']' | '"' => {
                    if !escaped {
                        if start < self.index {
                            return self.substring(start, self.index);
                        }
                        self.index += 1;
                        return self.substring(start, start + 1);
                    }
                    escaped = false;
                }
                _ => escaped = false,
            }
            self.index += 1;
        }
        self.substring(start, self.index)
    }

    fn previous(&self) -> Option<&str> {
        self.previous_token.as_deref()
    }

    fn is_next(&mut self, expected: &str) -> bool {
        if self.next_token.is_none() {
            if !self.has_next() {
                return false;
            }
            self.next_token = Some(self.consume_next_token());
        }
        while self.next_token.as_deref().is_some_and(is_blank) && self.can_consume_next_token() {
            self.next_token = Some(self.consume_next_token());
        }
        self.next_token.as_deref().map(java::trim) == Some(expected)
    }

    fn can_consume(&mut self, expected: &str) -> bool {
        if self.is_next(expected) {
            self.next_token = None;
            true
        } else {
            false
        }
    }
}

struct ValueParser {
    tokens: Tokenizer,
}

impl ValueParser {
    fn can_parse_single_token_literal(&mut self, embedded: bool, literal: &str) -> bool {
        let start = self.tokens.mark();
        if self.tokens.can_consume(literal) && (embedded || !self.tokens.has_next()) {
            return true;
        }
        self.tokens.rewind_to(start);
        false
    }

    fn parse(&mut self, embedded: bool) -> Result<Parsed, String> {
        if !self.tokens.has_next() {
            return Ok(None);
        }
        if embedded && self.tokens.can_consume("\"") {
            return Ok(Some(self.parse_quoted_string()));
        }
        if self.can_parse_single_token_literal(embedded, "null") {
            return Ok(None);
        }
        if self.can_parse_single_token_literal(embedded, "true") {
            return Ok(Some((primitive(SchemaType::Boolean), Value::Boolean(true))));
        }
        if self.can_parse_single_token_literal(embedded, "false") {
            return Ok(Some((
                primitive(SchemaType::Boolean),
                Value::Boolean(false),
            )));
        }
        let start = self.tokens.mark();
        let nested = if self.tokens.can_consume("[") {
            Some(self.parse_array())
        } else if self.tokens.can_consume("{") {
            Some(self.parse_map())
        } else {
            None
        };
        match nested {
            Some(Ok(parsed)) => return Ok(parsed),
            // Not a valid array or map: start over and read it as a plain token.
            Some(Err(_)) => self.tokens.rewind_to(start),
            None => {}
        }
        let token = self.tokens.next();
        if is_blank(&token) {
            return Ok(Some((primitive(SchemaType::String), Value::String(token))));
        }
        self.parse_next_token(embedded, java::trim(&token))
    }

    fn parse_next_token(&mut self, embedded: bool, token: &str) -> Result<Parsed, String> {
        let first = token.chars().next().unwrap_or(' ');
        if first.is_ascii_digit() {
            if let Some(temporal) = self.parse_multiple_tokens_as_temporal(token) {
                return Ok(Some(temporal));
            }
        }
        if first.is_ascii_digit() || first == '+' || first == '-' {
            if let Some(number) = parse_as_number(token) {
                return Ok(Some(number));
            }
        }
        if embedded {
            return Err("Failed to parse embedded value".into());
        }
        Ok(Some((
            primitive(SchemaType::String),
            Value::String(self.tokens.original.clone()),
        )))
    }

    fn parse_quoted_string(&mut self) -> (SchemaRef, Value) {
        let mut content = String::new();
        while self.tokens.has_next() {
            if self.tokens.can_consume("\"") {
                break;
            }
            content.push_str(&self.tokens.next());
        }
        parse_as_temporal(&content)
            .unwrap_or_else(|| (primitive(SchemaType::String), Value::String(content)))
    }

    fn parse_multiple_tokens_as_temporal(&mut self, token: &str) -> Option<(SchemaRef, Value)> {
        // An unescaped colon is a delimiter, so a time or timestamp arrives as five tokens.
        let position = self.tokens.mark();
        if let Some(remainder) = self.tokens.next_n(4) {
            if let Some(t) = parse_as_temporal(&format!("{token}{remainder}")) {
                return Some(t);
            }
        }
        self.tokens.rewind_to(position);
        parse_as_temporal(token)
    }

    fn parse_array(&mut self) -> Result<Parsed, String> {
        let original = self.tokens.original.clone();
        let mut result = Vec::new();
        let mut merger = SchemaMerger::default();
        while self.tokens.has_next() {
            if self.tokens.can_consume("]") {
                let schema = match merger.common {
                    Some(common) => {
                        result = result
                            .into_iter()
                            .map(|v| align(&common, v))
                            .collect::<Result<_, _>>()?;
                        SchemaBuilder::array(common).build()
                    }
                    None => SchemaBuilder::new(SchemaType::Array).build(),
                };
                return Ok(Some((schema, Value::Array(result))));
            }
            if self.tokens.can_consume(",") {
                return Err(format!(
                    "Unable to parse an empty array element: {original}"
                ));
            }
            let element = self.parse(true)?;
            merger.merge(element.as_ref().map(|(s, _)| s));
            result.push(element.map(|(_, v)| v).unwrap_or(Value::Null));
            let position = self.tokens.mark();
            if self.tokens.can_consume("]") {
                self.tokens.rewind_to(position);
            } else if !self.tokens.can_consume(",") {
                return Err("Array elements missing ',' delimiter".into());
            }
        }
        if self.tokens.previous() == Some(",") {
            return Err(format!("Array is missing element after ',': {original}"));
        }
        Err(format!("Array is missing terminating ']': {original}"))
    }

    fn parse_map(&mut self) -> Result<Parsed, String> {
        let original = self.tokens.original.clone();
        let mut result: Vec<(Value, Value)> = Vec::new();
        let mut keys = SchemaMerger::default();
        let mut values = SchemaMerger::default();
        while self.tokens.has_next() {
            if self.tokens.can_consume("}") {
                let schema = match (keys.common, values.common) {
                    (Some(k), Some(v)) => {
                        result = result
                            .into_iter()
                            .map(|(key, val)| Ok((align(&k, key)?, align(&v, val)?)))
                            .collect::<Result<_, String>>()?;
                        SchemaBuilder::map(k, v).build()
                    }
                    (Some(k), None) => {
                        result = result
                            .into_iter()
                            .map(|(key, val)| Ok((align(&k, key)?, val)))
                            .collect::<Result<_, String>>()?;
                        let mut s = SchemaBuilder::new(SchemaType::Map).build_schema();
                        s.key_schema = Some(k);
                        s.into()
                    }
                    _ => SchemaBuilder::new(SchemaType::Map).build(),
                };
                return Ok(Some((schema, Value::Map(result))));
            }
            if self.tokens.can_consume(",") {
                return Err(format!(
                    "Unable to parse a map entry with no key or value: {original}"
                ));
            }
            let key = match self.parse(true)? {
                Some((s, v)) if !v.is_null() => (s, v),
                _ => return Err(format!("Map entry may not have a null key: {original}")),
            };
            if !self.tokens.can_consume(":") {
                return Err(format!(
                    "Map entry is missing ':' at {} in {original}",
                    self.tokens.index
                ));
            }
            let value = self.parse(true)?;
            keys.merge(Some(&key.0));
            values.merge(value.as_ref().map(|(s, _)| s));
            let value = value.map(|(_, v)| v).unwrap_or(Value::Null);
            match result.iter_mut().find(|(k, _)| *k == key.1) {
                Some(slot) => slot.1 = value,
                None => result.push((key.1, value)),
            }
            self.tokens.can_consume(",");
        }
        if self.tokens.previous() == Some(",") {
            return Err(format!("Map is missing element after ',': {original}"));
        }
        Err(format!("Map is missing terminating '}}': {original}"))
    }
}

/// Java's `SchemaMerger`: the narrowest schema all elements widen to, if any.
#[derive(Default)]
struct SchemaMerger {
    common: Option<SchemaRef>,
    incompatible: bool,
}

impl SchemaMerger {
    fn merge(&mut self, latest: Option<&SchemaRef>) {
        let Some(latest) = latest else { return };
        if self.incompatible {
            return;
        }
        self.common = match self.common.take() {
            None => Some(latest.clone()),
            Some(prev) => merge_schemas(&prev, latest),
        };
        self.incompatible = self.common.is_none();
    }
}

fn numeric_rank(t: SchemaType) -> Option<u8> {
    Some(match t {
        SchemaType::Int8 => 0,
        SchemaType::Int16 => 1,
        SchemaType::Int32 => 2,
        SchemaType::Int64 => 3,
        SchemaType::Float32 => 4,
        SchemaType::Float64 => 5,
        _ => return None,
    })
}

fn merge_schemas(previous: &SchemaRef, new: &SchemaRef) -> Option<SchemaRef> {
    if previous.schema_type != new.schema_type {
        let (p, n) = (
            numeric_rank(previous.schema_type)?,
            numeric_rank(new.schema_type)?,
        );
        return Some(if n > p { new.clone() } else { previous.clone() });
    }
    if previous.optional == new.optional {
        return Some(if previous.optional {
            previous.clone()
        } else {
            new.clone()
        });
    }
    (previous == new).then(|| previous.clone())
}

/// Java's `convertTo(schema, null, value)` for the conversions merging needs.
fn align(to: &Schema, value: Value) -> Result<Value, String> {
    if value.is_null() {
        return if to.optional {
            Ok(Value::Null)
        } else {
            Err("Unable to convert a null value to a schema that requires a value".into())
        };
    }
    let mismatch = |v: &Value| {
        format!(
            "Unable to convert {} ({}) to a number",
            java::to_java_string(v),
            java::class_name(v)
        )
    };
    let as_long = |v: &Value| -> Result<i64, String> {
        Ok(match v {
            Value::Float32(f) => *f as i64,
            Value::Float64(f) => *f as i64,
            Value::Decimal(d) => crate::number::long_value(&java::decimal_to_string(d)),
            other => other.as_i64().ok_or_else(|| mismatch(other))?,
        })
    };
    let as_double = |v: &Value| -> Result<f64, String> {
        Ok(match v {
            Value::Float32(f) => f64::from(*f),
            Value::Float64(f) => *f,
            Value::Decimal(d) => java::decimal_to_string(d).parse().unwrap_or(0.0),
            other => other.as_i64().ok_or_else(|| mismatch(other))? as f64,
        })
    };
    if let Some(name) = to.name.as_deref() {
        if [DATE, TIME, TIMESTAMP, DECIMAL].contains(&name) {
            let matches = matches!(
                (name, &value),
                (DATE, Value::Date(_))
                    | (TIME, Value::Time(_))
                    | (TIMESTAMP, Value::Timestamp(_))
                    | (DECIMAL, Value::Decimal(_))
            );
            return if matches {
                Ok(value)
            } else {
                Err(mismatch(&value))
            };
        }
    }
    Ok(match to.schema_type {
        SchemaType::Int8 => Value::Int8(as_long(&value)? as i8),
        SchemaType::Int16 => Value::Int16(as_long(&value)? as i16),
        SchemaType::Int32 => Value::Int32(as_long(&value)? as i32),
        SchemaType::Int64 => Value::Int64(as_long(&value)?),
        SchemaType::Float32 => Value::Float32(as_double(&value)? as f32),
        SchemaType::Float64 => Value::Float64(as_double(&value)?),
        SchemaType::String => Value::String(convert_to_string(&value).unwrap_or_default()),
        t if value.matches(t) => value,
        _ => return Err(mismatch(&value)),
    })
}

/// Java's `parseAsNumber`: the smallest integer type for integral values,
/// otherwise float32, float64 or a decimal, whichever holds it first.
fn parse_as_number(token: &str) -> Option<(SchemaRef, Value)> {
    let (negative, digits, scale) = split_number(token)?;
    let digits = digits.trim_start_matches('0');
    let integral_digits: Option<String> = if scale > 0 {
        let cut = digits.len().saturating_sub(scale as usize);
        digits[cut..]
            .bytes()
            .all(|b| b == b'0')
            .then(|| digits[..cut].to_string())
    } else if digits.is_empty() {
        Some(String::new())
    } else {
        Some(format!("{digits}{}", "0".repeat((-scale).min(40) as usize)))
    };
    if let Some(int_digits) = integral_digits {
        let magnitude: Option<i128> = if int_digits.is_empty() {
            Some(0)
        } else if int_digits.len() <= 20 {
            int_digits.parse().ok()
        } else {
            None
        };
        if let Some(v) = magnitude.map(|m| if negative { -m } else { m }) {
            if let Ok(v) = i64::try_from(v) {
                return Some(if let Ok(b) = i8::try_from(v) {
                    (primitive(SchemaType::Int8), Value::Int8(b))
                } else if let Ok(s) = i16::try_from(v) {
                    (primitive(SchemaType::Int16), Value::Int16(s))
                } else if let Ok(i) = i32::try_from(v) {
                    (primitive(SchemaType::Int32), Value::Int32(i))
                } else {
                    (primitive(SchemaType::Int64), Value::Int64(v))
                });
            }
        }
    }
    let decimal = parse_decimal(token)?;
    if decimal.scale != 0 {
        if let Some(f) = token.parse::<f32>().ok().filter(|f| f.is_finite()) {
            return Some((primitive(SchemaType::Float32), Value::Float32(f)));
        }
        if let Some(d) = token.parse::<f64>().ok().filter(|d| d.is_finite()) {
            return Some((primitive(SchemaType::Float64), Value::Float64(d)));
        }
    }
    Some((
        logical::decimal(decimal.scale).build(),
        Value::Decimal(decimal),
    ))
}

/// Java's `parseAsTemporal`: the ISO-8601 time, timestamp and date forms,
/// chosen by length and parsed leniently (out-of-range fields roll over).
fn parse_as_temporal(token: &str) -> Option<(SchemaRef, Value)> {
    let token = token.replace("\\:", ":");
    let fields: &[(char, char)] = match token.chars().count() {
        13 => &[('H', ':'), ('m', ':'), ('s', '.'), ('S', 'Z')],
        24 => &[
            ('y', '-'),
            ('M', '-'),
            ('d', 'T'),
            ('H', ':'),
            ('m', ':'),
            ('s', '.'),
            ('S', 'Z'),
        ],
        10 => &[('y', '-'), ('M', '-'), ('d', '\0')],
        _ => return None,
    };
    let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut ms) =
        (1970i64, 1i64, 1i64, 0i64, 0i64, 0i64, 0i64);
    let mut rest = token.as_str();
    for (field, separator) in fields {
        let len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > 12 {
            return None;
        }
        let n: i64 = rest[..len].parse().ok()?;
        rest = &rest[len..];
        match field {
            'y' => y = n,
            'M' => mo = n,
            'd' => d = n,
            'H' => h = n,
            'm' => mi = n,
            's' => s = n,
            _ => ms = n,
        }
        if *separator != '\0' {
            rest = rest.strip_prefix(*separator)?;
        }
    }
    // Lenient calendar arithmetic: month 13 is January of the next year, and so on.
    let total_months = y * 12 + (mo - 1);
    let month = total_months.rem_euclid(12) as u32 + 1;
    let days = java::days_from_civil(total_months.div_euclid(12), month, 1) + (d - 1);
    let millis = days * MILLIS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1000 + ms;
    Some(match fields.len() {
        4 => (logical::time().build(), Value::Time(millis as i32)),
        7 => (logical::timestamp().build(), Value::Timestamp(millis)),
        _ => (
            logical::date().build(),
            Value::Date(millis.div_euclid(MILLIS_PER_DAY) as i32),
        ),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (SchemaRef, Value) {
        parse_string(text).unwrap().unwrap()
    }

    #[test]
    fn scalars_get_the_narrowest_schema() {
        assert_eq!(parsed("true").1, Value::Boolean(true));
        assert_eq!(parsed("12"), (primitive(SchemaType::Int8), Value::Int8(12)));
        assert_eq!(parsed("300").1, Value::Int16(300));
        assert_eq!(parsed("-70000").1, Value::Int32(-70000));
        assert_eq!(parsed("1.0").1, Value::Int8(1));
        assert_eq!(parsed("5000000000").1, Value::Int64(5_000_000_000));
        assert_eq!(parsed("1.5").1, Value::Float32(1.5));
        assert_eq!(parsed("1.5e300").1, Value::Float64(1.5e300));
        assert!(matches!(
            parsed("123456789012345678901234567890").1,
            Value::Decimal(_)
        ));
        assert_eq!(parsed("hello world").1, Value::from("hello world"));
        assert_eq!(parsed("").1, Value::from(""));
        assert_eq!(parsed("  ").1, Value::from("  "));
        assert_eq!(parse_string("null").unwrap(), None);
        assert_eq!(parsed("true}").1, Value::from("true}"));
    }

    #[test]
    fn temporal_forms_parse_in_utc() {
        assert_eq!(parsed("2024-02-29").1, Value::Date(19782));
        assert_eq!(parsed("00:00:01.500Z").1, Value::Time(1500));
        assert_eq!(
            parsed("2024-02-29T13:45:06.789Z").1,
            Value::Timestamp(1_709_214_306_789)
        );
        assert!(parsed("2024-02-29").0.is_logical(DATE));
    }

    #[test]
    fn arrays_and_maps_merge_element_schemas() {
        let (schema, value) = parsed("[1, 2.5, 3]");
        assert_eq!(
            schema.value_schema.as_ref().unwrap().schema_type,
            SchemaType::Float32
        );
        assert_eq!(
            value,
            Value::Array(vec![
                Value::Float32(1.0),
                Value::Float32(2.5),
                Value::Float32(3.0)
            ])
        );
        let (schema, value) = parsed("{\"a\":1,\"b\":\"x\"}");
        assert_eq!(
            schema.key_schema.as_ref().unwrap().schema_type,
            SchemaType::String
        );
        assert!(schema.value_schema.is_none());
        assert_eq!(
            value,
            Value::Map(vec![
                (Value::from("a"), Value::Int8(1)),
                (Value::from("b"), Value::from("x"))
            ])
        );
        // A null element cannot be aligned to a required schema: the whole text is a string.
        assert_eq!(parsed("[1,null]").1, Value::from("[1,null]"));
        assert_eq!(parsed("[1,2").1, Value::from("[1,2"));
        assert_eq!(parsed("[]").1, Value::Array(vec![]));
    }

    #[test]
    fn strings_render_like_java() {
        let v = Value::Array(vec![
            Value::from("a\"b"),
            Value::Int32(1),
            Value::Null,
            Value::Float64(2.0),
        ]);
        assert_eq!(convert_to_string(&v).unwrap(), r#"["a\"b",1,null,2.0]"#);
        assert_eq!(convert_to_string(&Value::from("plain")).unwrap(), "plain");
        assert_eq!(
            convert_to_string(&Value::Bytes(b"hi".to_vec())).unwrap(),
            "aGk="
        );
        assert_eq!(convert_to_string(&Value::Date(1)).unwrap(), "1970-01-02");
        assert_eq!(convert_to_string(&Value::Null), None);
        let m = Value::Map(vec![(Value::from("k"), Value::Boolean(true))]);
        assert_eq!(convert_to_string(&m).unwrap(), r#"{"k":true}"#);
        // And back again.
        assert_eq!(parsed(&convert_to_string(&m).unwrap()).1, m);
    }

    /// Cases carried over from Java's `ValuesTest`.
    #[test]
    fn java_values_test_cases() {
        for text in [
            "{foo: 3}",
            "{3: foo}",
            "[foo]",
            "null=",
            "true}",
            "false]",
            "{6:9 4:20}",
            "[0 1 2]",
            "{null: 3}",
            "\u{ffff}",
        ] {
            let (schema, value) = parsed(text);
            assert_eq!(
                (schema.schema_type, value),
                (SchemaType::String, Value::from(text)),
                "{text}"
            );
        }
        assert_eq!(parsed(" \t true \n").1, Value::Boolean(true));
        assert_eq!(parse_string("  null ").unwrap(), None);
        let (schema, value) = parsed("[true, false]");
        assert_eq!(
            schema.value_schema.as_ref().unwrap().schema_type,
            SchemaType::Boolean
        );
        assert_eq!(
            value,
            Value::Array(vec![Value::Boolean(true), Value::Boolean(false)])
        );
        let (schema, value) = parsed("{true: false, false: true}");
        assert_eq!(
            schema.key_schema.as_ref().unwrap().schema_type,
            SchemaType::Boolean
        );
        assert_eq!(
            value,
            Value::Map(vec![
                (Value::Boolean(true), Value::Boolean(false)),
                (Value::Boolean(false), Value::Boolean(true))
            ])
        );
        assert_eq!(parsed("{}").1, Value::Map(vec![]));
        let (schema, value) = parsed("{3: null}");
        assert_eq!(
            schema.key_schema.as_ref().unwrap().schema_type,
            SchemaType::Int8
        );
        assert_eq!(value, Value::Map(vec![(Value::Int8(3), Value::Null)]));
        let (schema, value) = parsed("[null]");
        assert!(schema.value_schema.is_none());
        assert_eq!(value, Value::Array(vec![Value::Null]));
        let tricky = "three\"blind\\\"mice";
        assert_eq!(
            convert_to_string(&Value::Array(vec![Value::from(tricky)])).unwrap(),
            "[\"three\\\"blind\\\\\\\"mice\"]"
        );
        assert_eq!(
            parsed("string with delimiters: <>?,./\\=+-!@#$%^&*(){}[]|;':").1,
            Value::from("string with delimiters: <>?,./\\=+-!@#$%^&*(){}[]|;':")
        );
    }
}
