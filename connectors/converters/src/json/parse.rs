//! A JSON reader that keeps numbers as their source text.
//!
//! `serde_json` (without `arbitrary_precision`, which would change number
//! handling for the whole workspace) rounds big numbers to `f64`, but Java's
//! JsonConverter reads floats as `BigDecimal` and big integers exactly, and
//! decimals must round-trip digit for digit. Objects also remember their
//! source bytes so parsed schemas can be cached by their text.

use std::borrow::Cow;

/// Jackson's default `StreamReadConstraints` nesting limit.
const MAX_DEPTH: usize = 1000;

/// Bytes that end the fast scan of a string: the quote, a backslash, controls.
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = true;
        i += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// A parsed JSON value borrowing from the input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    Null,
    Bool(bool),
    /// The number's text as written; `integral` when it has no fraction or exponent.
    Number {
        text: &'a str,
        integral: bool,
    },
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Object<'a>),
    /// A syntax-checked value kept as source text (see [`parse_envelope`]).
    Raw(&'a [u8]),
}

/// A JSON object: entries in order, duplicate keys collapsed (last value wins,
/// first position kept, as Jackson's `ObjectNode` does).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Object<'a> {
    pub entries: Vec<(Cow<'a, str>, Node<'a>)>,
    /// The object's source text, used as a schema cache key.
    pub raw: &'a [u8],
}

impl<'a> Object<'a> {
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl Node<'_> {
    /// Jackson's `JsonNodeType` name, used in error messages.
    pub fn node_type(&self) -> &'static str {
        match self {
            Node::Null => "NULL",
            Node::Bool(_) => "BOOLEAN",
            Node::Number { .. } => "NUMBER",
            Node::String(_) => "STRING",
            Node::Array(_) => "ARRAY",
            Node::Object(_) | Node::Raw(_) => "OBJECT",
        }
    }
}

/// Parses the first JSON value in `input`. Like Jackson's `readTree`, content
/// after it is ignored and empty input yields `None`.
pub(crate) fn parse(input: &[u8]) -> Result<Option<Node<'_>>, String> {
    Parser {
        input,
        pos: 0,
        raw_key: None,
    }
    .document()
}

/// Like [`parse`], but the top-level `"schema"` member is only checked and
/// returned as [`Node::Raw`]: schemas repeat on every record, so the caller
/// looks the text up in its cache before building a tree.
pub(crate) fn parse_envelope(input: &[u8]) -> Result<Option<Node<'_>>, String> {
    Parser {
        input,
        pos: 0,
        raw_key: Some("schema"),
    }
    .document()
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    /// A top-level object member whose value is kept as raw text.
    raw_key: Option<&'static str>,
}

impl<'a> Parser<'a> {
    fn document(mut self) -> Result<Option<Node<'a>>, String> {
        self.skip_ws();
        if self.pos >= self.input.len() {
            return Ok(None);
        }
        self.value(0).map(Some)
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.input.get(self.pos) {
            self.pos += 1;
        }
    }

    fn error(&self, what: &str) -> String {
        let consumed = &self.input[..self.pos.min(self.input.len())];
        let line = consumed.iter().filter(|b| **b == b'\n').count() + 1;
        let column = consumed.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        format!("{what} at [line: {line}, column: {column}]")
    }

    fn unexpected(&self) -> String {
        match self.input.get(self.pos) {
            None => self.error("Unexpected end-of-input"),
            Some(&c) => self.error(&format!(
                "Unexpected character ('{}' (code {c}))",
                char::from(c).escape_default()
            )),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, String> {
        if depth > MAX_DEPTH {
            return Err(self.error(&format!(
                "Document nesting depth ({depth}) exceeds the maximum allowed ({MAX_DEPTH})"
            )));
        }
        match self.input.get(self.pos) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Node::String),
            Some(b't') => self.literal("true", Node::Bool(true)),
            Some(b'f') => self.literal("false", Node::Bool(false)),
            Some(b'n') => self.literal("null", Node::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.unexpected()),
        }
    }

    /// Checks the syntax of one value without building it.
    fn skip(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(self.error(&format!(
                "Document nesting depth ({depth}) exceeds the maximum allowed ({MAX_DEPTH})"
            )));
        }
        let (close, is_object) = match self.input.get(self.pos) {
            Some(b'{') => (b'}', true),
            Some(b'[') => (b']', false),
            _ => return self.value(depth).map(|_| ()),
        };
        self.pos += 1;
        self.skip_ws();
        if self.input.get(self.pos) == Some(&close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            if is_object {
                if self.input.get(self.pos) != Some(&b'"') {
                    return Err(self.unexpected());
                }
                self.string()?;
                self.skip_ws();
                if self.input.get(self.pos) != Some(&b':') {
                    return Err(self.unexpected());
                }
                self.pos += 1;
                self.skip_ws();
            }
            self.skip(depth + 1)?;
            self.skip_ws();
            match self.input.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(c) if *c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn literal(&mut self, word: &str, node: Node<'a>) -> Result<Node<'a>, String> {
        if self.input[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(node)
        } else {
            Err(self.error("Unrecognized token"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.input.get(self.pos) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Node<'a>, String> {
        let start = self.pos;
        if self.input[self.pos] == b'-' {
            self.pos += 1;
        }
        // Leading zeros are accepted: the converter enables ALLOW_LEADING_ZEROS_FOR_NUMBERS.
        if self.digits() == 0 {
            return Err(self.error("Expected digit after minus sign"));
        }
        let mut integral = true;
        if self.input.get(self.pos) == Some(&b'.') {
            integral = false;
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("Decimal point not followed by a digit"));
            }
        }
        if let Some(b'e' | b'E') = self.input.get(self.pos) {
            integral = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.input.get(self.pos) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("Exponent indicator not followed by a digit"));
            }
        }
        let text = std::str::from_utf8(&self.input[start..self.pos])
            .map_err(|_| self.error("Invalid number"))?;
        Ok(Node::Number { text, integral })
    }

    fn string(&mut self) -> Result<Cow<'a, str>, String> {
        self.pos += 1; // opening quote
        let start = self.pos;
        // Fast path: no escapes, borrow the input.
        let rest = &self.input[self.pos..];
        self.pos += rest
            .iter()
            .position(|&b| SPECIAL[usize::from(b)])
            .unwrap_or(rest.len());
        match self.input.get(self.pos) {
            Some(b'"') => {
                let s = std::str::from_utf8(&self.input[start..self.pos])
                    .map_err(|_| self.error("Invalid UTF-8 in string"))?;
                self.pos += 1;
                return Ok(Cow::Borrowed(s));
            }
            Some(b'\\') | None => {}
            Some(_) => return Err(self.error("Illegal unquoted character in string")),
        }
        let mut buf: Vec<u8> = self.input[start..self.pos].to_vec();
        loop {
            let Some(&b) = self.input.get(self.pos) else {
                return Err(self.error("Unexpected end-of-input in a String value"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.input.get(self.pos) else {
                        return Err(
                            self.error("Unexpected end-of-input in character escape sequence")
                        );
                    };
                    self.pos += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.error("Unrecognized character escape")),
                    };
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
                0x00..=0x1f => return Err(self.error("Illegal unquoted character in string")),
                _ => buf.push(b),
            }
        }
        String::from_utf8(buf)
            .map(Cow::Owned)
            .map_err(|_| self.error("Invalid UTF-8 in string"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let hex = self
            .input
            .get(self.pos..self.pos + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.error("Unexpected character in unicode escape"))?;
        self.pos += 4;
        Ok(hex)
    }

    fn unicode_escape(&mut self) -> Result<char, String> {
        let first = self.hex4()?;
        if (0xd800..0xdc00).contains(&first) && self.input[self.pos..].starts_with(b"\\u") {
            let save = self.pos;
            self.pos += 2;
            let second = self.hex4()?;
            if (0xdc00..0xe000).contains(&second) {
                let c = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
                return Ok(char::from_u32(c).unwrap_or('\u{fffd}'));
            }
            self.pos = save;
        }
        // A lone surrogate cannot live in a Rust string; it becomes U+FFFD.
        Ok(char::from_u32(first).unwrap_or('\u{fffd}'))
    }

    fn array(&mut self, depth: usize) -> Result<Node<'a>, String> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.input.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Node::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.input.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Node::Array(items));
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Node<'a>, String> {
        let start = self.pos;
        self.pos += 1;
        let mut entries: Vec<(Cow<'a, str>, Node<'a>)> = Vec::new();
        // Duplicate detection is a linear scan for small objects; large ones get a hash index.
        let mut index: Option<std::collections::HashMap<Cow<'a, str>, usize>> = None;
        self.skip_ws();
        if self.input.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Node::Object(Object {
                entries,
                raw: &self.input[start..self.pos],
            }));
        }
        loop {
            self.skip_ws();
            if self.input.get(self.pos) != Some(&b'"') {
                return Err(self.unexpected());
            }
            let key = self.string()?;
            self.skip_ws();
            if self.input.get(self.pos) != Some(&b':') {
                return Err(self.unexpected());
            }
            self.pos += 1;
            self.skip_ws();
            let value = if depth == 0 && self.raw_key.is_some_and(|k| k == key) {
                let start = self.pos;
                self.skip(depth + 1)?;
                Node::Raw(&self.input[start..self.pos])
            } else {
                self.value(depth + 1)?
            };
            if index.is_none() && entries.len() >= 32 {
                index = Some(
                    entries
                        .iter()
                        .enumerate()
                        .map(|(i, (k, _))| (k.clone(), i))
                        .collect(),
                );
            }
            let existing = match &index {
                Some(idx) => idx.get(&key).copied(),
                None => entries.iter().position(|(k, _)| *k == key),
            };
            match existing {
                Some(i) => entries[i].1 = value,
                None => {
                    if let Some(idx) = &mut index {
                        idx.insert(key.clone(), entries.len());
                    }
                    entries.push((key, value));
                }
            }
            self.skip_ws();
            match self.input.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Node::Object(Object {
                        entries,
                        raw: &self.input[start..self.pos],
                    }));
                }
                _ => return Err(self.unexpected()),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_and_keeps_number_text() {
        let n = parse(br#" {"a": [1, -2.50, 1e3, "x\u00e9\n"], "b": null, "a": true} trailing"#)
            .unwrap()
            .unwrap();
        let Node::Object(o) = n else { panic!() };
        assert_eq!(o.entries.len(), 2);
        assert_eq!(o.get("a"), Some(&Node::Bool(true)));
        assert!(o.raw.ends_with(b"true}"));
        let n = parse(br#"[1, -2.50, 1e3, "x\u00e9\n", 007]"#)
            .unwrap()
            .unwrap();
        let Node::Array(items) = n else { panic!() };
        assert_eq!(
            items[1],
            Node::Number {
                text: "-2.50",
                integral: false
            }
        );
        assert_eq!(
            items[2],
            Node::Number {
                text: "1e3",
                integral: false
            }
        );
        assert_eq!(items[3], Node::String("xé\n".into()));
        assert_eq!(
            items[4],
            Node::Number {
                text: "007",
                integral: true
            }
        );
    }

    #[test]
    fn reports_errors_and_empty_input() {
        assert_eq!(parse(b"  ").unwrap(), None);
        assert!(parse(b"{\"a\":}")
            .unwrap_err()
            .contains("Unexpected character ('}'"));
        assert!(parse(b"[1,").unwrap_err().contains("end-of-input"));
        assert!(parse(b"tru").is_err());
        let deep = "[".repeat(1100);
        assert!(parse(deep.as_bytes())
            .unwrap_err()
            .contains("nesting depth"));
    }
}
