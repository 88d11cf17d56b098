//! BSON helpers: MongoDB's total order over values (to place an `_id` in a
//! chunk's `[min, max)` range whatever its type), the three JSON flavours of
//! `output.json.formatter`, and resume-token encoding.

use std::cmp::Ordering;

use mongodb::bson::{Bson, Document, RawBsonRef, RawDocument, Timestamp};
use serde_json::{json, Value as Json};

use crate::config::Formatter;

/// Rank of a type in MongoDB's comparison order (numbers compare across types).
fn rank(b: &Bson) -> u8 {
    match b {
        Bson::MinKey => 1,
        Bson::Null | Bson::Undefined => 2,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 3,
        Bson::String(_) | Bson::Symbol(_) => 4,
        Bson::Document(_) => 5,
        Bson::Array(_) => 6,
        Bson::Binary(_) => 7,
        Bson::ObjectId(_) => 8,
        Bson::Boolean(_) => 9,
        Bson::DateTime(_) => 10,
        Bson::Timestamp(_) => 11,
        Bson::RegularExpression(_) => 12,
        Bson::DbPointer(_) => 13,
        Bson::JavaScriptCode(_) => 14,
        Bson::JavaScriptCodeWithScope(_) => 15,
        Bson::MaxKey => 100,
    }
}

fn num(b: &Bson) -> f64 {
    match b {
        Bson::Int32(v) => f64::from(*v),
        Bson::Int64(v) => *v as f64,
        Bson::Double(v) => *v,
        // Decimal128 has no arithmetic in bson 2; its string form parses for
        // ordinary values, which is all an `_id` range check needs.
        Bson::Decimal128(d) => d.to_string().parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// MongoDB's comparison of two values (the order of the `_id` index).
pub fn cmp(a: &Bson, b: &Bson) -> Ordering {
    let (ra, rb) = (rank(a), rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Bson::Int64(x), Bson::Int64(y)) => x.cmp(y),
        (Bson::Int32(x), Bson::Int32(y)) => x.cmp(y),
        _ if ra == 3 => num(a).partial_cmp(&num(b)).unwrap_or(Ordering::Equal),
        (Bson::String(x), Bson::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Bson::Document(x), Bson::Document(y)) => {
            for ((ka, va), (kb, vb)) in x.iter().zip(y.iter()) {
                let o = rank(va)
                    .cmp(&rank(vb))
                    .then_with(|| ka.cmp(kb))
                    .then_with(|| cmp(va, vb));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Bson::Array(x), Bson::Array(y)) => {
            for (va, vb) in x.iter().zip(y.iter()) {
                let o = cmp(va, vb);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
            .then_with(|| u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then_with(|| x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.cmp(y),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => {
            (x.time, x.increment).cmp(&(y.time, y.increment))
        }
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// Whether `id` lies in `[min, max)`.
pub fn in_range(id: &Bson, min: &Bson, max: &Bson) -> bool {
    cmp(id, min) != Ordering::Less
        && (matches!(max, Bson::MaxKey) || cmp(id, max) == Ordering::Less)
}

/// JSON of a value in the configured flavour.
pub fn to_json(b: &Bson, f: Formatter) -> Json {
    match f {
        Formatter::Extended => b.clone().into_canonical_extjson(),
        Formatter::Default => legacy(b),
        Formatter::Simplified => simplified(b),
    }
}

/// Legacy strict extended JSON (the Java driver's `JsonMode.STRICT`).
fn legacy(b: &Bson) -> Json {
    match b {
        Bson::Document(d) => Json::Object(d.iter().map(|(k, v)| (k.clone(), legacy(v))).collect()),
        Bson::Array(a) => Json::Array(a.iter().map(legacy).collect()),
        Bson::Int64(n) => json!({"$numberLong": n.to_string()}),
        Bson::DateTime(d) => json!({"$date": d.timestamp_millis()}),
        other => other.clone().into_relaxed_extjson(),
    }
}

/// Relaxed JSON with the common wrapped types flattened to strings.
fn simplified(b: &Bson) -> Json {
    match b {
        Bson::Document(d) => {
            Json::Object(d.iter().map(|(k, v)| (k.clone(), simplified(v))).collect())
        }
        Bson::Array(a) => Json::Array(a.iter().map(simplified).collect()),
        Bson::ObjectId(o) => Json::String(o.to_hex()),
        Bson::DateTime(d) => d
            .try_to_rfc3339_string()
            .map_or_else(|_| json!(d.timestamp_millis()), Json::String),
        Bson::Decimal128(d) => Json::String(d.to_string()),
        Bson::Int64(n) => json!(n),
        Bson::Binary(bin) => match Bson::Binary(bin.clone()).into_relaxed_extjson() {
            Json::Object(m) => m
                .get("$binary")
                .and_then(|v| v.get("base64"))
                .cloned()
                .unwrap_or(Json::Null),
            other => other,
        },
        other => other.clone().into_relaxed_extjson(),
    }
}

/// A document as JSON text in the configured flavour.
///
/// `Default` and `Simplified` are written straight from the BSON into one
/// `String`: building a `serde_json::Value` tree first cost an allocation per
/// field and key and was the largest item of the snapshot's CPU profile. The
/// text is byte-identical to serialising [`to_json`]'s value with serde_json
/// (compact, keys in document order); types without a direct case go through
/// that path for their own subtree.
pub fn doc_json(d: &Document, f: Formatter) -> String {
    match f {
        Formatter::Extended => to_json(&Bson::Document(d.clone()), f).to_string(),
        _ => {
            let mut out = String::with_capacity(256);
            write_doc(&mut out, d, f);
            out
        }
    }
}

/// Appends `d` as JSON (`Default` or `Simplified`; see [`doc_json`]).
pub fn write_doc(out: &mut String, d: &Document, f: Formatter) {
    write_members(out, d, |out, v| {
        write_json(out, v, f);
        true
    });
}

/// Appends `{"k":v,...}` with `value` writing each value; stops (returning
/// `false`) at the first value it refuses.
fn write_members(
    out: &mut String,
    d: &Document,
    mut value: impl FnMut(&mut String, &Bson) -> bool,
) -> bool {
    out.push('{');
    for (i, (k, v)) in d.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(out, k);
        out.push(':');
        if !value(out, v) {
            return false;
        }
    }
    out.push('}');
    true
}

/// Appends one value as JSON (`Default` or `Simplified`; see [`doc_json`]).
pub fn write_json(out: &mut String, b: &Bson, f: Formatter) {
    use std::fmt::Write as _;
    // `write!` into a String cannot fail.
    match (b, f) {
        (Bson::Document(d), _) => write_doc(out, d, f),
        (Bson::Array(a), _) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, v, f);
            }
            out.push(']');
        }
        (Bson::String(s), _) => write_json_str(out, s),
        (Bson::Int32(n), _) => {
            let _ = write!(out, "{n}");
        }
        (Bson::Boolean(v), _) => out.push_str(if *v { "true" } else { "false" }),
        (Bson::Null, _) => out.push_str("null"),
        (Bson::Int64(n), Formatter::Default) => {
            let _ = write!(out, "{{\"$numberLong\":\"{n}\"}}");
        }
        (Bson::Int64(n), _) => {
            let _ = write!(out, "{n}");
        }
        (Bson::DateTime(d), Formatter::Default) => {
            let _ = write!(out, "{{\"$date\":{}}}", d.timestamp_millis());
        }
        (Bson::ObjectId(o), Formatter::Default) => {
            let _ = write!(out, "{{\"$oid\":\"{}\"}}", o.to_hex());
        }
        (Bson::ObjectId(o), _) => {
            let _ = write!(out, "\"{}\"", o.to_hex());
        }
        (Bson::Timestamp(t), Formatter::Default) => {
            let _ = write!(
                out,
                "{{\"$timestamp\":{{\"t\":{},\"i\":{}}}}}",
                t.time, t.increment
            );
        }
        (other, _) => {
            let _ = write!(out, "{}", to_json(other, f));
        }
    }
}

/// Appends a raw (undecoded) document as JSON: the same bytes as
/// [`write_doc`] on its decoded form, without building a `Document` (the
/// snapshot reads documents raw; decoding and dropping an owned `Document`
/// cost more than writing its JSON).
///
/// # Errors
/// Malformed BSON; `out` then holds a partial text and must be discarded.
pub fn write_raw_doc(
    out: &mut String,
    d: &RawDocument,
    f: Formatter,
) -> Result<(), mongodb::bson::raw::Error> {
    out.push('{');
    for (i, el) in d.iter().enumerate() {
        let (k, v) = el?;
        if i > 0 {
            out.push(',');
        }
        write_json_str(out, k);
        out.push(':');
        write_raw_json(out, v, f)?;
    }
    out.push('}');
    Ok(())
}

/// Appends one raw value as JSON (see [`write_raw_doc`]).
///
/// # Errors
/// Malformed BSON.
pub fn write_raw_json(
    out: &mut String,
    b: RawBsonRef<'_>,
    f: Formatter,
) -> Result<(), mongodb::bson::raw::Error> {
    use std::fmt::Write as _;
    match (b, f) {
        (RawBsonRef::Document(d), _) => write_raw_doc(out, d, f)?,
        (RawBsonRef::Array(a), _) => {
            out.push('[');
            for (i, v) in a.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_raw_json(out, v?, f)?;
            }
            out.push(']');
        }
        (RawBsonRef::String(s), _) => write_json_str(out, s),
        (RawBsonRef::Int32(n), _) => write_json(out, &Bson::Int32(n), f),
        (RawBsonRef::Int64(n), _) => write_json(out, &Bson::Int64(n), f),
        (RawBsonRef::Boolean(v), _) => write_json(out, &Bson::Boolean(v), f),
        (RawBsonRef::Null, _) => out.push_str("null"),
        (RawBsonRef::ObjectId(o), _) => write_json(out, &Bson::ObjectId(o), f),
        (RawBsonRef::DateTime(d), _) => write_json(out, &Bson::DateTime(d), f),
        (RawBsonRef::Timestamp(t), _) => write_json(out, &Bson::Timestamp(t), f),
        (RawBsonRef::Double(v), _) => write_json(out, &Bson::Double(v), f),
        (other, _) => {
            // Rare types: decode just this value and take the general path.
            let owned = Bson::try_from(other)?;
            let _ = write!(out, "{}", to_json(&owned, f));
        }
    }
    Ok(())
}

/// Appends `s` as a JSON string literal, escaped exactly as serde_json
/// escapes it (`"`, `\\`, control characters; nothing else).
pub fn write_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        let i = connect_converters::json::escape::next_escape(bytes, start);
        // Escaped bytes are ASCII, so `i` is a char boundary.
        out.push_str(&s[start..i]);
        let Some(&b) = bytes.get(i) else { break };
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            _ => "",
        };
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push('"');
}

/// `b` as relaxed extended JSON text, byte-identical to
/// `b.clone().into_relaxed_extjson().to_string()`. Documents of strings,
/// integers, booleans, nulls, ObjectIds and timestamps (copied documents'
/// `_id`s, resume tokens, cluster times) are written directly: going
/// through `serde_json::Value` cost ~5 % of an Avro snapshot. Anything else
/// takes that slower route.
pub fn relaxed_json(b: &Bson) -> String {
    let mut out = String::with_capacity(64);
    if write_relaxed_simple(&mut out, b) {
        out
    } else {
        b.clone().into_relaxed_extjson().to_string()
    }
}

/// Writes the types [`relaxed_json`] handles directly; `false` (with `out`
/// partly written) for any other.
fn write_relaxed_simple(out: &mut String, b: &Bson) -> bool {
    use std::fmt::Write as _;
    match b {
        Bson::String(s) => write_json_str(out, s),
        Bson::Int32(i) => {
            let _ = write!(out, "{i}");
        }
        Bson::Int64(i) => {
            let _ = write!(out, "{i}");
        }
        Bson::Boolean(v) => out.push_str(if *v { "true" } else { "false" }),
        Bson::Null => out.push_str("null"),
        Bson::ObjectId(o) => {
            out.push_str("{\"$oid\":\"");
            out.push_str(&o.to_hex());
            out.push_str("\"}");
        }
        Bson::Timestamp(t) => {
            let _ = write!(
                out,
                "{{\"$timestamp\":{{\"t\":{},\"i\":{}}}}}",
                t.time, t.increment
            );
        }
        Bson::Document(d) => return write_relaxed_doc(out, d),
        _ => return false,
    }
    true
}

fn write_relaxed_doc(out: &mut String, d: &Document) -> bool {
    write_members(out, d, write_relaxed_simple)
}

/// A resume token as the JSON string stored in offsets (`{"_data": "82..."}`).
pub fn token_json(token: &Document) -> String {
    let mut out = String::with_capacity(64);
    if write_relaxed_doc(&mut out, token) {
        out
    } else {
        Bson::Document(token.clone())
            .into_relaxed_extjson()
            .to_string()
    }
}

/// Parses a stored token back into its document.
pub fn token_from_json(s: &str) -> Option<Document> {
    let v: Json = serde_json::from_str(s).ok()?;
    match Bson::try_from(v).ok()? {
        Bson::Document(d) => Some(d),
        _ => None,
    }
}

/// The cluster time a resume token encodes: `_data` starts with the
/// KeyString type byte 0x82 then the timestamp's seconds and increment as
/// big-endian 32-bit integers (mongod's format, and mongo-sim's).
pub fn token_time(token: &Document) -> Option<Timestamp> {
    let data = token.get_str("_data").ok()?;
    if data.len() < 18 || !data[..2].eq_ignore_ascii_case("82") {
        return None;
    }
    let time = u32::from_str_radix(&data[2..10], 16).ok()?;
    let increment = u32::from_str_radix(&data[10..18], 16).ok()?;
    Some(Timestamp { time, increment })
}

pub fn ts_key(t: Timestamp) -> (u32, u32) {
    (t.time, t.increment)
}

pub fn ts_string(t: Timestamp) -> String {
    format!("{}:{}", t.time, t.increment)
}

/// The `mongodb.cluster.time` header text, as mongosh prints a timestamp.
/// Not `secs:inc`: a header is read back through Connect's
/// `Values.parseString` (SimpleHeaderConverter, the default), which turns
/// `1710000000:1` into the integer 1710000000 and drops the increment,
/// while this form stays a string.
pub fn ts_header(t: Timestamp) -> String {
    format!("Timestamp({}, {})", t.time, t.increment)
}

pub fn ts_parse(s: &str) -> Option<Timestamp> {
    let (a, b) = s.split_once(':')?;
    Some(Timestamp {
        time: a.parse().ok()?,
        increment: b.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, oid::ObjectId};

    #[test]
    fn mixed_types_follow_mongodb_order() {
        let mut v = [
            Bson::ObjectId(ObjectId::new()),
            Bson::String("a".into()),
            Bson::Int64(5),
            Bson::Double(2.5),
            Bson::Int32(3),
            Bson::Document(doc! {"x": 1}),
            Bson::MinKey,
            Bson::Null,
        ];
        v.sort_by(cmp);
        let ranks: Vec<u8> = v.iter().map(rank).collect();
        assert_eq!(ranks, vec![1, 2, 3, 3, 3, 4, 5, 8]);
        assert_eq!(v[2], Bson::Double(2.5));
        assert!(in_range(
            &Bson::Int32(7),
            &Bson::MinKey,
            &Bson::String("b".into())
        ));
        assert!(!in_range(
            &Bson::String("b".into()),
            &Bson::MinKey,
            &Bson::String("b".into())
        ));
        assert!(in_range(
            &Bson::String("z".into()),
            &Bson::String("b".into()),
            &Bson::MaxKey
        ));
    }

    #[test]
    fn formatters() {
        let d = doc! {"n": 5_i64, "i": 3, "t": mongodb::bson::DateTime::from_millis(1000)};
        assert_eq!(
            doc_json(&d, Formatter::Default),
            r#"{"n":{"$numberLong":"5"},"i":3,"t":{"$date":1000}}"#
        );
        assert_eq!(
            doc_json(&d, Formatter::Simplified),
            r#"{"n":5,"i":3,"t":"1970-01-01T00:00:01Z"}"#
        );
        assert!(doc_json(&d, Formatter::Extended).contains(r#""i":{"$numberInt":"3"}"#));
    }

    /// The direct writer must produce the same bytes as serialising the
    /// `serde_json::Value` of the same flavour (the format users consume).
    #[test]
    fn direct_writer_matches_value_serialisation() {
        use mongodb::bson::{Binary, Decimal128, Regex};
        let d = doc! {
            "_id": ObjectId::parse_str("65f0c0ffee0000000000a001").expect("oid"),
            "s": "plain", "esc": "q\"b\\n\nt\tc\u{1}\u{1f}\u{7f}/é😀\r\u{8}\u{c}",
            "i": -7, "l": 9_007_199_254_740_993_i64, "d": 1.5, "d0": 3.0, "nan": f64::NAN, "inf": f64::NEG_INFINITY,
            "b": true, "n": Bson::Null, "t": mongodb::bson::DateTime::from_millis(1_700_000_000_123),
            "neg": mongodb::bson::DateTime::from_millis(-5),
            "ts": Timestamp { time: 7, increment: 9 },
            "arr": [1, "x", {"k": [2_i64]}, [], {}],
            "bin": Binary { subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "re": Regex { pattern: "a.*".into(), options: "xi".into() },
            "dec": "1.25".parse::<Decimal128>().expect("decimal"),
            "min": Bson::MinKey, "max": Bson::MaxKey, "und": Bson::Undefined,
            "sub": {"\"k\"": {"$oid": "x"}, "": 0},
        };
        for f in [Formatter::Default, Formatter::Simplified] {
            let via_value =
                Json::Object(d.iter().map(|(k, v)| (k.clone(), to_json(v, f))).collect())
                    .to_string();
            assert_eq!(doc_json(&d, f), via_value, "{f:?}");
        }
        for f in [Formatter::Default, Formatter::Simplified] {
            let raw = mongodb::bson::RawDocumentBuf::from_document(&d).expect("raw");
            let mut out = String::new();
            write_raw_doc(&mut out, &raw, f).expect("valid bson");
            assert_eq!(out, doc_json(&d, f), "raw {f:?}");
        }
        let mut out = String::new();
        write_json_str(&mut out, "a\u{0}b");
        assert_eq!(out, serde_json::to_string("a\u{0}b").expect("json"));
    }

    #[test]
    fn relaxed_json_matches_the_bson_crate() {
        use mongodb::bson::DateTime;
        let oid = ObjectId::parse_str("65f0c0ffee0000000000a001").expect("oid");
        let cases = [
            Bson::Document(doc! {"_id": 7, "copyingData": true}),
            Bson::Document(doc! {"_id": i64::MIN, "copyingData": true}),
            Bson::Document(doc! {"_id": oid, "copyingData": true}),
            Bson::Document(doc! {"_id": "q\"b\\n\nt\u{1}é😀", "x": Bson::Null, "n": {"a": [1]}}),
            Bson::Document(doc! {"_data": "8265F0C0FF000000012B0429296E1404"}),
            Bson::Document(doc! {"": {"\"k\"": false}}),
            Bson::Timestamp(Timestamp {
                time: 1_710_000_000,
                increment: 3,
            }),
            Bson::Document(doc! {"_id": 1.5}),
            Bson::Document(doc! {"_id": DateTime::from_millis(1_700_000_000_123)}),
            Bson::Int64(-1),
            Bson::String(String::new()),
        ];
        for b in cases {
            assert_eq!(
                relaxed_json(&b),
                b.clone().into_relaxed_extjson().to_string(),
                "{b:?}"
            );
        }
    }

    #[test]
    fn token_roundtrip_and_time() {
        let t = doc! {"_data": "8200000010000000020100"};
        assert_eq!(token_from_json(&token_json(&t)), Some(t.clone()));
        assert_eq!(
            token_time(&t),
            Some(Timestamp {
                time: 16,
                increment: 2
            })
        );
    }
}
