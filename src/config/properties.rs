//! Java `.properties` files and standalone connector files.
//!
//! [`parse`] implements `java.util.Properties.load` exactly: `#`/`!`
//! comment lines, `=`, `:` or whitespace between key and value, leading
//! whitespace ignored, backslash line continuation (the continued line's
//! leading whitespace is dropped; a comment marker there is ordinary text),
//! the escapes `\t \n \r \f \uXXXX` (any other `\x` is `x`, which is how
//! separators are escaped in keys), and the last duplicate wins.
//!
//! Encoding: the Java worker loads files with `Utils.loadProps`, which calls
//! `Properties.load(InputStream)`, and that reads **ISO-8859-1**, not UTF-8
//! (the UTF-8 default of Java 9 applies to resource bundles only). So
//! [`load_properties_file`] decodes bytes as Latin-1, which makes a file mean
//! the same to both workers; non-ASCII text should be written as `\uXXXX`.
//! `FileConfigProvider` on the other hand uses a UTF-8 `Reader`; it calls
//! [`parse`] on the decoded text.
//!
//! [`load_connector_file`] mirrors `ConnectStandalone.parseConnectorConfigurationFile`:
//! it tries, in order, a flat JSON object of string values, a JSON
//! `CreateConnectorRequest` (`{"name":..,"config":{..},"initial_state":..}`),
//! and finally a `.properties` file.

use std::path::Path;

use connect_api::config::Props;
use serde_json::Value as Json;
use thiserror::Error;

use crate::herder::api::TargetState;

/// Why a properties or connector file could not be read.
#[derive(Debug, Error)]
pub enum PropertiesError {
    #[error("could not read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Java: `IllegalArgumentException: Malformed \uxxxx encoding.`
    #[error("malformed \\uxxxx encoding in line {line}")]
    MalformedUnicode { line: usize },
    #[error("{0}")]
    Connector(String),
}

/// Parses properties text (already decoded), with `Properties.load(Reader)` semantics.
pub fn parse(text: &str) -> Result<Props, PropertiesError> {
    let chars: Vec<char> = text.chars().collect();
    parse_chars(&chars)
}

/// Parses raw bytes as ISO-8859-1, like `Properties.load(InputStream)`.
pub fn parse_latin1(bytes: &[u8]) -> Result<Props, PropertiesError> {
    let chars: Vec<char> = bytes.iter().map(|b| char::from(*b)).collect();
    parse_chars(&chars)
}

/// Reads a `.properties` file as the Java worker does (`Utils.loadProps`).
pub fn load_properties_file(path: impl AsRef<Path>) -> Result<Props, PropertiesError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| PropertiesError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_latin1(&bytes)
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\u{c}'
}

/// Splits input into logical lines exactly like the JDK 9+ `Properties.LineReader`.
/// Returns each logical line with the 1-based number of the natural line it starts on.
///
/// Two JDK details matter: a `#`/`!` starts a comment whenever the logical
/// line is still empty, so also on a continued line after a lone `\`; and a
/// continuation backslash right before end of input yields a line (maybe
/// empty) while one followed by anything (even `\r\n` or a blank) does not.
fn logical_lines(input: &[char]) -> Vec<(usize, Vec<char>)> {
    let mut out = Vec::new();
    let mut buf: Vec<char> = Vec::new();
    let mut start_line = 1;
    let mut line_no = 1;
    let mut skip_ws = true;
    let mut is_comment = false;
    let mut appended_line_begin = false;
    let mut preceding_backslash = false;
    let mut skip_lf = false;
    // A continuation was just taken and nothing has been read since.
    let mut continuation_pending = false;
    for &c in input {
        continuation_pending = false;
        if skip_lf {
            skip_lf = false;
            if c == '\n' {
                continue;
            }
        }
        if c == '\n' || c == '\r' {
            // Counted here so errors can name the natural line.
            line_no += 1;
        }
        if skip_ws {
            if is_ws(c) {
                continue;
            }
            if !appended_line_begin && (c == '\r' || c == '\n') {
                if c == '\r' {
                    skip_lf = true;
                }
                start_line = line_no;
                continue;
            }
            skip_ws = false;
            appended_line_begin = false;
        }
        if buf.is_empty() && !is_comment && (c == '#' || c == '!') {
            is_comment = true;
            continue;
        }
        if c != '\n' && c != '\r' {
            if !is_comment {
                buf.push(c);
                preceding_backslash = c == '\\' && !preceding_backslash;
            }
            continue;
        }
        // End of a natural line.
        if c == '\r' {
            skip_lf = true;
        }
        if is_comment || buf.is_empty() {
            is_comment = false;
            skip_ws = true;
            buf.clear();
            start_line = line_no;
            continue;
        }
        if preceding_backslash {
            // Continuation: drop the backslash, skip the next line's indentation.
            buf.pop();
            skip_ws = true;
            appended_line_begin = true;
            preceding_backslash = false;
            continuation_pending = true;
        } else {
            out.push((start_line, std::mem::take(&mut buf)));
            skip_ws = true;
            start_line = line_no;
        }
    }
    if continuation_pending || (!buf.is_empty() && !is_comment) {
        if preceding_backslash {
            buf.pop();
        }
        out.push((start_line, buf));
    }
    out
}

fn parse_chars(input: &[char]) -> Result<Props, PropertiesError> {
    let mut props = Props::new();
    for (line, l) in logical_lines(input) {
        let limit = l.len();
        let mut key_len = 0;
        let mut value_start = limit;
        let mut has_sep = false;
        let mut preceding_backslash = false;
        while key_len < limit {
            let c = l[key_len];
            if (c == '=' || c == ':') && !preceding_backslash {
                value_start = key_len + 1;
                has_sep = true;
                break;
            } else if is_ws(c) && !preceding_backslash {
                value_start = key_len + 1;
                break;
            }
            preceding_backslash = c == '\\' && !preceding_backslash;
            key_len += 1;
        }
        while value_start < limit {
            let c = l[value_start];
            if !is_ws(c) {
                if !has_sep && (c == '=' || c == ':') {
                    has_sep = true;
                } else {
                    break;
                }
            }
            value_start += 1;
        }
        let key = unescape(&l[..key_len], line)?;
        let value = unescape(&l[value_start.min(limit)..], line)?;
        props.insert(key, value);
    }
    Ok(props)
}

/// `Properties.loadConvert`: backslash escapes, with `\uXXXX` as UTF-16 code units.
fn unescape(s: &[char], line: usize) -> Result<String, PropertiesError> {
    let mut units: Vec<u16> = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c != '\\' {
            let mut b = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut b));
            continue;
        }
        let Some(&e) = s.get(i) else {
            // A lone trailing backslash (only reachable at end of input) is dropped.
            break;
        };
        i += 1;
        match e {
            'u' => {
                if i + 4 > s.len() {
                    return Err(PropertiesError::MalformedUnicode { line });
                }
                let mut v: u16 = 0;
                for &h in &s[i..i + 4] {
                    let d = h
                        .to_digit(16)
                        .ok_or(PropertiesError::MalformedUnicode { line })?;
                    v = (v << 4) | d as u16;
                }
                i += 4;
                units.push(v);
            }
            't' => units.push(u16::from(b'\t')),
            'r' => units.push(u16::from(b'\r')),
            'n' => units.push(u16::from(b'\n')),
            'f' => units.push(0x0c),
            other => {
                let mut b = [0u16; 2];
                units.extend_from_slice(other.encode_utf16(&mut b));
            }
        }
    }
    // Java strings may hold unpaired surrogates; they cannot live in a Rust
    // string, and Java's own UTF-8 encoder would turn them into '?' anyway.
    Ok(String::from_utf16_lossy(&units))
}

/// A connector read from a standalone command-line file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorFile {
    pub name: String,
    /// Always contains `name`.
    pub config: Props,
    /// `initial_state` of a JSON `CreateConnectorRequest` file, if given.
    pub initial_state: Option<TargetState>,
}

/// Reads a connector file given on the standalone command line; see the module docs.
pub fn load_connector_file(path: impl AsRef<Path>) -> Result<ConnectorFile, PropertiesError> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| PropertiesError::Io {
        path: shown.clone(),
        source,
    })?;
    parse_connector_file(&bytes, &shown)
}

fn missing_name(shown: &str) -> PropertiesError {
    PropertiesError::Connector(format!(
        "Connector configuration at '{shown}' is missing the mandatory 'name' configuration"
    ))
}

/// Jackson's coercion of a scalar to `String`: numbers and booleans become
/// their text; `null` stays null; arrays and objects do not fit.
enum Scalar {
    Text(String),
    Null,
}

fn scalar(v: &Json) -> Option<Scalar> {
    match v {
        Json::String(s) => Some(Scalar::Text(s.clone())),
        Json::Number(n) => Some(Scalar::Text(n.to_string())),
        Json::Bool(b) => Some(Scalar::Text(b.to_string())),
        Json::Null => Some(Scalar::Null),
        Json::Array(_) | Json::Object(_) => None,
    }
}

/// A JSON object as `Map<String,String>`, or `None` if a value is not a scalar.
/// Null values are an error: the worker cannot store them.
fn string_map(
    obj: &serde_json::Map<String, Json>,
    shown: &str,
) -> Option<Result<Props, PropertiesError>> {
    let mut out = Props::new();
    for (k, v) in obj {
        match scalar(v)? {
            Scalar::Text(s) => {
                out.insert(k.clone(), s);
            }
            Scalar::Null => {
                return Some(Err(PropertiesError::Connector(format!(
                    "Connector configuration at '{shown}' has a null value for '{k}'"
                ))))
            }
        }
    }
    Some(Ok(out))
}

fn parse_connector_file(bytes: &[u8], shown: &str) -> Result<ConnectorFile, PropertiesError> {
    // Jackson's readValue ignores anything after the first JSON value; so do we.
    let first = serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Json>()
        .next();
    if let Some(Ok(Json::Object(obj))) = first {
        // 1. A flat object of strings is the connector config itself.
        if let Some(config) = string_map(&obj, shown) {
            let config = config?;
            let name = config
                .get("name")
                .cloned()
                .ok_or_else(|| missing_name(shown))?;
            return Ok(ConnectorFile {
                name,
                config,
                initial_state: None,
            });
        }
        // 2. A CreateConnectorRequest; unknown fields are ignored as in Java.
        let name = match obj.get("name").map(scalar) {
            None | Some(Some(Scalar::Null)) => None,
            Some(Some(Scalar::Text(s))) => Some(s),
            Some(None) => {
                return Err(PropertiesError::Connector(format!(
                    "Connector configuration at '{shown}' has a 'name' that is not a string"
                )))
            }
        };
        let mut config = match obj.get("config") {
            Some(Json::Object(c)) => string_map(c, shown).unwrap_or_else(|| {
                Err(PropertiesError::Connector(format!(
                    "Connector configuration at '{shown}' has a 'config' value that is not a string"
                )))
            })?,
            _ => {
                return Err(PropertiesError::Connector(format!(
                    "Connector configuration at '{shown}' has no 'config' object"
                )))
            }
        };
        let initial_state = match obj.get("initial_state") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(TargetState::from_initial_state(s).ok_or_else(|| {
                PropertiesError::Connector(format!(
                    "Connector configuration at '{shown}' has an invalid initial_state '{s}' \
                     (expected RUNNING, PAUSED or STOPPED)"
                ))
            })?),
            Some(_) => {
                return Err(PropertiesError::Connector(format!(
                    "Connector configuration at '{shown}' has an initial_state that is not a string"
                )))
            }
        };
        let name = match (name, config.get("name")) {
            (Some(n), Some(c)) if &n != c => {
                return Err(PropertiesError::Connector(format!(
                    "Connector name configuration in 'config' doesn't match the one specified in 'name' at '{shown}'"
                )))
            }
            (Some(n), _) => n,
            (None, _) => return Err(missing_name(shown)),
        };
        config.insert("name".to_string(), name.clone());
        return Ok(ConnectorFile {
            name,
            config,
            initial_state,
        });
    }
    // 3. Anything that is not a JSON object is read as a properties file.
    let config = parse_latin1(bytes)?;
    let name = config
        .get("name")
        .cloned()
        .ok_or_else(|| missing_name(shown))?;
    Ok(ConnectorFile {
        name,
        config,
        initial_state: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::test_util::TempDir;

    fn p(text: &str) -> Props {
        parse(text).expect("parses")
    }

    fn kv(pairs: &[(&str, &str)]) -> Props {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn separators_and_whitespace() {
        assert_eq!(
            p("a=1\nb:2\nc 3\n  d = 4 \ne\t:\t5\nf==6\ng  :=7\nh\n"),
            kv(&[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "4 "),
                ("e", "5"),
                ("f", "=6"),
                ("g", "=7"),
                ("h", "")
            ])
        );
        // Whitespace then '=' counts as one separator; a second '=' is value.
        assert_eq!(p("k = = v"), kv(&[("k", "= v")]));
        assert_eq!(p("k\u{c}v"), kv(&[("k", "v")]));
    }

    #[test]
    fn comments_and_blank_lines() {
        assert_eq!(
            p("# c1\n! c2\n   # indented comment\n\n   \na=1 # not a comment\n"),
            kv(&[("a", "1 # not a comment")])
        );
        // A comment line ending in a backslash does not continue.
        assert_eq!(p("# comment \\\na=1"), kv(&[("a", "1")]));
    }

    #[test]
    fn continuation_lines() {
        assert_eq!(
            p("a=one, \\\n    two, \\\n\tthree\n"),
            kv(&[("a", "one, two, three")])
        );
        // A continued line starting with '#' is not a comment...
        assert_eq!(p("a=x\\\n  #y"), kv(&[("a", "x#y")]));
        // ...unless the logical line is still empty (JDK 9+).
        assert_eq!(p("\\\n#comment\nb=1"), kv(&[("b", "1")]));
        // A continuation right at end of input gives an empty key, as in Java.
        assert_eq!(p("a=1\n\\\n"), kv(&[("a", "1"), ("", "")]));
        assert_eq!(p("a=1\n\\\r\n"), kv(&[("a", "1")]));
        // An even number of backslashes is an escaped backslash, not a continuation.
        assert_eq!(p("a=x\\\\\nb=y"), kv(&[("a", "x\\"), ("b", "y")]));
        // An empty continued line ends the value.
        assert_eq!(p("a=x\\\n\nb=y"), kv(&[("a", "x"), ("b", "y")]));
        // A trailing backslash at end of input is dropped.
        assert_eq!(p("a=x\\"), kv(&[("a", "x")]));
        // Continuation in the key.
        assert_eq!(p("ke\\\n  y=v"), kv(&[("key", "v")]));
    }

    #[test]
    fn line_endings() {
        assert_eq!(
            p("a=1\r\nb=2\rc=3\n"),
            kv(&[("a", "1"), ("b", "2"), ("c", "3")])
        );
        assert_eq!(p("a=x\\\r\n  y"), kv(&[("a", "xy")]));
    }

    #[test]
    fn escapes() {
        assert_eq!(
            p(r"a=\t\n\r\f\\\q\u0041\u00e9"),
            kv(&[("a", "\t\n\r\u{c}\\qAé")])
        );
        assert_eq!(
            p(r"key\=with\:seps\ and\ space = v"),
            kv(&[("key=with:seps and space", "v")])
        );
        assert_eq!(p(r"a=\uD83D\uDE00"), kv(&[("a", "😀")]));
        assert!(matches!(
            parse("x=1\nb=\\u12G4"),
            Err(PropertiesError::MalformedUnicode { line: 2 })
        ));
        assert!(matches!(
            parse("b=\\u12"),
            Err(PropertiesError::MalformedUnicode { .. })
        ));
    }

    #[test]
    fn duplicates_last_wins_and_empty_input() {
        assert_eq!(p("a=1\na=2"), kv(&[("a", "2")]));
        assert_eq!(p(""), Props::new());
        assert_eq!(p("\n\n# only comments"), Props::new());
    }

    #[test]
    fn latin1_bytes_like_java_input_stream() {
        // 0xE9 is 'é' in ISO-8859-1.
        assert_eq!(parse_latin1(b"a=caf\xe9").unwrap(), kv(&[("a", "café")]));
        // UTF-8 bytes are read as two Latin-1 characters, exactly as Java does.
        assert_eq!(parse_latin1("a=é".as_bytes()).unwrap(), kv(&[("a", "Ã©")]));
    }

    #[test]
    fn worker_file_from_disk() {
        let dir = TempDir::new("props");
        let f = dir.write(
            "w.properties",
            "bootstrap.servers=localhost:9092\nkey.converter=org.apache.kafka.connect.json.JsonConverter\n",
        );
        let props = load_properties_file(&f).unwrap();
        assert_eq!(props["bootstrap.servers"], "localhost:9092");
        let err = load_properties_file(dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().starts_with("could not read "), "{err}");
    }

    #[test]
    fn connector_file_properties() {
        let dir = TempDir::new("conn");
        let f = dir.write(
            "c.properties",
            "name=local-file-source\nconnector.class=FileStreamSource\ntasks.max=1\n",
        );
        let c = load_connector_file(&f).unwrap();
        assert_eq!(c.name, "local-file-source");
        assert_eq!(c.config["tasks.max"], "1");
        assert_eq!(c.initial_state, None);
        let f = dir.write("bad.properties", "connector.class=X\n");
        let err = load_connector_file(&f).unwrap_err().to_string();
        assert!(
            err.contains("is missing the mandatory 'name' configuration"),
            "{err}"
        );
    }

    #[test]
    fn connector_file_flat_json() {
        let c = parse_connector_file(
            br#"{"name":"a","connector.class":"X","tasks.max":2,"flag":true}"#,
            "f.json",
        )
        .unwrap();
        assert_eq!(c.name, "a");
        assert_eq!(c.config["tasks.max"], "2");
        assert_eq!(c.config["flag"], "true");
        let err = parse_connector_file(br#"{"connector.class":"X"}"#, "f.json").unwrap_err();
        assert!(err.to_string().contains("missing the mandatory 'name'"));
        let err = parse_connector_file(br#"{"name":"a","x":null}"#, "f.json").unwrap_err();
        assert!(err.to_string().contains("null value for 'x'"));
    }

    #[test]
    fn connector_file_create_request_json() {
        let c = parse_connector_file(
            br#"{"name":"a","config":{"connector.class":"X"},"initial_state":"paused","extra":[1]}"#,
            "f.json",
        )
        .unwrap();
        assert_eq!(c.name, "a");
        assert_eq!(c.config["name"], "a");
        assert_eq!(c.initial_state, Some(TargetState::Paused));

        let c = parse_connector_file(br#"{"name":"a","config":{"name":"a"}}"#, "f.json").unwrap();
        assert_eq!(c.initial_state, None);
        // Trailing content after the JSON value is ignored, as Jackson does.
        let c =
            parse_connector_file(br#"{"name":"a","config":{"n":3}} trailing"#, "f.json").unwrap();
        assert_eq!(c.config, kv(&[("n", "3"), ("name", "a")]));
        // Not a JSON object: read as properties, like Java.
        let err = parse_connector_file(b"[1,2]", "f.json").unwrap_err();
        assert!(
            err.to_string().contains("missing the mandatory 'name'"),
            "{err}"
        );

        let err =
            parse_connector_file(br#"{"name":"a","config":{"name":"b"}}"#, "f.json").unwrap_err();
        assert!(err.to_string().contains("doesn't match"), "{err}");
        let err = parse_connector_file(br#"{"config":{"a":"b"}}"#, "f.json").unwrap_err();
        assert!(
            err.to_string().contains("missing the mandatory 'name'"),
            "{err}"
        );
        let err = parse_connector_file(
            br#"{"name":"a","config":{}, "initial_state":"GO"}"#,
            "f.json",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("invalid initial_state 'GO'"),
            "{err}"
        );
        let err = parse_connector_file(br#"{"name":"a","other":{}}"#, "f.json").unwrap_err();
        assert!(err.to_string().contains("no 'config' object"), "{err}");
    }
}
