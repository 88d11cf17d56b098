//! BSON helpers: MongoDB's total order over values (to place an `_id` in a
//! chunk's `[min, max)` range whatever its type), the three JSON flavours of
//! `output.json.formatter`, and resume-token encoding.

use std::cmp::Ordering;

use mongodb::bson::{Bson, Document, Timestamp};
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

pub fn doc_json(d: &Document, f: Formatter) -> String {
    // Walk the document in place: wrapping it in a `Bson` would deep-copy
    // every record's document once more (the snapshot's hot path).
    let fields = |conv: fn(&Bson) -> Json| -> Json {
        Json::Object(d.iter().map(|(k, v)| (k.clone(), conv(v))).collect())
    };
    match f {
        Formatter::Extended => to_json(&Bson::Document(d.clone()), f),
        Formatter::Default => fields(legacy),
        Formatter::Simplified => fields(simplified),
    }
    .to_string()
}

/// A resume token as the JSON string stored in offsets (`{"_data": "82..."}`).
pub fn token_json(token: &Document) -> String {
    Bson::Document(token.clone())
        .into_relaxed_extjson()
        .to_string()
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
