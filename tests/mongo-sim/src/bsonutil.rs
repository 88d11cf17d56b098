//! BSON helpers: MongoDB's canonical total order, numeric arithmetic across
//! int/long/double/decimal, dotted-path access and type aliases.
//!
//! The order follows the server's "canonical type" ranking so that mixed `_id`
//! types sort exactly as in a real `_id` index:
//! MinKey < null < numbers < string/symbol < object < array < binData <
//! ObjectId < bool < date < timestamp < regex < MaxKey.

use bson::{Bson, Document};
use std::cmp::Ordering;

/// Canonical type rank used by the server for cross-type comparison.
pub fn type_rank(b: &Bson) -> u8 {
    match b {
        Bson::MinKey => 1,
        Bson::Null | Bson::Undefined => 5,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 10,
        Bson::String(_) | Bson::Symbol(_) => 15,
        Bson::Document(_) => 20,
        Bson::Array(_) => 25,
        Bson::Binary(_) => 30,
        Bson::ObjectId(_) => 35,
        Bson::Boolean(_) => 40,
        Bson::DateTime(_) => 45,
        Bson::Timestamp(_) => 47,
        Bson::RegularExpression(_) => 50,
        Bson::DbPointer(_) => 55,
        Bson::JavaScriptCode(_) => 60,
        Bson::JavaScriptCodeWithScope(_) => 65,
        Bson::MaxKey => 127,
    }
}

/// Numeric value as f64 (decimal128 is parsed from its string form; precision
/// loss is acceptable for a test simulator).
pub fn as_f64(b: &Bson) -> Option<f64> {
    match b {
        Bson::Int32(i) => Some(*i as f64),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        Bson::Decimal128(d) => d.to_string().parse::<f64>().ok(),
        _ => None,
    }
}

pub fn as_i64(b: &Bson) -> Option<i64> {
    match b {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        Bson::Double(d) if d.fract() == 0.0 => Some(*d as i64),
        _ => None,
    }
}

pub fn is_number(b: &Bson) -> bool {
    matches!(
        b,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_)
    )
}

fn cmp_numbers(a: &Bson, b: &Bson) -> Ordering {
    // Exact integer comparison when both are integral, so large longs keep order.
    if let (Some(x), Some(y)) = (int_of(a), int_of(b)) {
        return x.cmp(&y);
    }
    let x = as_f64(a).unwrap_or(f64::NAN);
    let y = as_f64(b).unwrap_or(f64::NAN);
    // The server sorts NaN below every other number.
    match (x.is_nan(), y.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}

fn int_of(b: &Bson) -> Option<i64> {
    match b {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        _ => None,
    }
}

/// Total order over BSON values as the server compares them.
pub fn cmp_bson(a: &Bson, b: &Bson) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        _ if ra == 10 => cmp_numbers(a, b),
        (Bson::String(x), Bson::String(y)) => cmp_str(x, y),
        (Bson::String(x), Bson::Symbol(y))
        | (Bson::Symbol(x), Bson::String(y))
        | (Bson::Symbol(x), Bson::Symbol(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Bson::Document(x), Bson::Document(y)) => cmp_docs(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let o = cmp_bson(p, q);
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
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => x
            .pattern
            .cmp(&y.pattern)
            .then_with(|| x.options.cmp(&y.options)),
        (Bson::JavaScriptCode(x), Bson::JavaScriptCode(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// Documents compare field by field: first by value type rank, then field
/// name, then value; a shorter prefix sorts first.
pub fn cmp_docs(x: &Document, y: &Document) -> Ordering {
    let mut ix = x.iter();
    let mut iy = y.iter();
    loop {
        match (ix.next(), iy.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((ka, va)), Some((kb, vb))) => {
                let o = type_rank(va)
                    .cmp(&type_rank(vb))
                    .then_with(|| ka.cmp(kb))
                    .then_with(|| cmp_bson(va, vb));
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// Equality as used by queries ($eq): same canonical value.
pub fn bson_eq(a: &Bson, b: &Bson) -> bool {
    type_rank(a) == type_rank(b) && cmp_bson(a, b) == Ordering::Equal
}

/// A BSON value wrapped for use as a BTreeMap key in `_id` order.
#[derive(Clone, Debug)]
pub struct Key(pub Bson);

impl PartialEq for Key {
    fn eq(&self, o: &Self) -> bool {
        cmp_bson(&self.0, &o.0) == Ordering::Equal
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Key {
    fn cmp(&self, o: &Self) -> Ordering {
        cmp_bson(&self.0, &o.0)
    }
}

/// Server type alias names as accepted by `$type`.
pub fn type_name(b: &Bson) -> &'static str {
    match b {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Binary(_) => "binData",
        Bson::Undefined => "undefined",
        Bson::ObjectId(_) => "objectId",
        Bson::Boolean(_) => "bool",
        Bson::DateTime(_) => "date",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::DbPointer(_) => "dbPointer",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::Symbol(_) => "symbol",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Timestamp(_) => "timestamp",
        Bson::Int64(_) => "long",
        Bson::Decimal128(_) => "decimal",
        Bson::MinKey => "minKey",
        Bson::MaxKey => "maxKey",
    }
}

pub fn type_number(b: &Bson) -> i32 {
    match b {
        Bson::Double(_) => 1,
        Bson::String(_) => 2,
        Bson::Document(_) => 3,
        Bson::Array(_) => 4,
        Bson::Binary(_) => 5,
        Bson::Undefined => 6,
        Bson::ObjectId(_) => 7,
        Bson::Boolean(_) => 8,
        Bson::DateTime(_) => 9,
        Bson::Null => 10,
        Bson::RegularExpression(_) => 11,
        Bson::DbPointer(_) => 12,
        Bson::JavaScriptCode(_) => 13,
        Bson::Symbol(_) => 14,
        Bson::JavaScriptCodeWithScope(_) => 15,
        Bson::Int32(_) => 16,
        Bson::Timestamp(_) => 17,
        Bson::Int64(_) => 18,
        Bson::Decimal128(_) => 19,
        Bson::MinKey => -1,
        Bson::MaxKey => 127,
    }
}

/// Does `v` match a `$type` specifier (number or alias, incl. "number")?
pub fn matches_type(v: &Bson, spec: &Bson) -> bool {
    match spec {
        Bson::String(s) if s == "number" => is_number(v),
        Bson::String(s) => type_name(v) == s,
        other => as_i64(other).is_some_and(|n| type_number(v) as i64 == n),
    }
}

/// Get a (non-array-traversing) value at a dotted path; numeric components
/// index into arrays.
pub fn get_path<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut cur = doc.get(first)?;
    for p in parts {
        cur = match cur {
            Bson::Document(d) => d.get(p)?,
            Bson::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Arithmetic with MongoDB's type promotion: int+int stays int unless it
/// overflows (then long), anything with a double is double.
pub fn num_add(a: &Bson, b: &Bson) -> Option<Bson> {
    Some(match (a, b) {
        (Bson::Int32(x), Bson::Int32(y)) => match x.checked_add(*y) {
            Some(v) => Bson::Int32(v),
            None => Bson::Int64(*x as i64 + *y as i64),
        },
        (Bson::Int32(_) | Bson::Int64(_), Bson::Int32(_) | Bson::Int64(_)) => {
            Bson::Int64(as_i64(a)?.wrapping_add(as_i64(b)?))
        }
        (Bson::Decimal128(_), _) | (_, Bson::Decimal128(_)) => {
            let s = as_f64(a)? + as_f64(b)?;
            Bson::Decimal128(s.to_string().parse().ok()?)
        }
        _ => Bson::Double(as_f64(a)? + as_f64(b)?),
    })
}

pub fn num_mul(a: &Bson, b: &Bson) -> Option<Bson> {
    Some(match (a, b) {
        (Bson::Int32(x), Bson::Int32(y)) => match x.checked_mul(*y) {
            Some(v) => Bson::Int32(v),
            None => Bson::Int64(*x as i64 * *y as i64),
        },
        (Bson::Int32(_) | Bson::Int64(_), Bson::Int32(_) | Bson::Int64(_)) => {
            Bson::Int64(as_i64(a)?.wrapping_mul(as_i64(b)?))
        }
        _ => Bson::Double(as_f64(a)? * as_f64(b)?),
    })
}

/// Approximate size of a document when serialised (exact via to_vec).
///
/// Computed from the BSON layout rather than by serialising: it runs for
/// every document written and every batch built, so it must not allocate.
pub fn doc_size(d: &Document) -> usize {
    5 + d
        .iter()
        .map(|(k, v)| 2 + k.len() + value_size(v))
        .sum::<usize>()
}

fn array_size(a: &[Bson]) -> usize {
    5 + a
        .iter()
        .enumerate()
        .map(|(i, v)| 2 + decimal_digits(i) + value_size(v))
        .sum::<usize>()
}

fn decimal_digits(mut i: usize) -> usize {
    let mut n = 1;
    while i >= 10 {
        i /= 10;
        n += 1;
    }
    n
}

fn value_size(v: &Bson) -> usize {
    match v {
        Bson::Double(_) | Bson::Int64(_) | Bson::DateTime(_) | Bson::Timestamp(_) => 8,
        Bson::Int32(_) => 4,
        Bson::Decimal128(_) => 16,
        Bson::String(s) | Bson::Symbol(s) | Bson::JavaScriptCode(s) => 5 + s.len(),
        Bson::Document(d) => doc_size(d),
        Bson::Array(a) => array_size(a),
        Bson::Binary(b) => {
            // Subtype 2 (old binary) carries an extra inner length.
            let extra = if u8::from(b.subtype) == 2 { 4 } else { 0 };
            5 + extra + b.bytes.len()
        }
        Bson::ObjectId(_) => 12,
        Bson::Boolean(_) => 1,
        Bson::Null | Bson::Undefined | Bson::MinKey | Bson::MaxKey => 0,
        Bson::RegularExpression(r) => r.pattern.len() + 1 + r.options.len() + 1,
        Bson::JavaScriptCodeWithScope(c) => 4 + 5 + c.code.len() + doc_size(&c.scope),
        Bson::DbPointer(_) => 5 + 12 + 16,
    }
}

/// Shape a value as MongoDB prints it in error messages (relaxed JSON-ish).
pub fn short_json(b: &Bson) -> String {
    b.clone().into_relaxed_extjson().to_string()
}

// ------------------------------------------------------------------ per-command context
//
// `let` variables and a collation apply to the whole command being executed.
// Commands run synchronously on one thread while holding the state lock, so a
// thread-local is the least intrusive way to reach the matcher/expression
// code without threading parameters through every call.

thread_local! {
    static LET_VARS: std::cell::RefCell<Document> = std::cell::RefCell::new(Document::new());
    static CASE_INSENSITIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Restores the previous per-command context when dropped.
pub struct ExecGuard {
    prev_vars: Document,
    prev_ci: bool,
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.prev_vars);
        LET_VARS.with(|l| *l.borrow_mut() = v);
        CASE_INSENSITIVE.with(|c| c.set(self.prev_ci));
    }
}

/// Install `let` variables and a collation (strength 1/2 = case-insensitive
/// string comparison) for the duration of the returned guard.
pub fn exec_context(let_vars: Option<&Document>, collation: Option<&Document>) -> ExecGuard {
    let prev_vars = LET_VARS.with(|l| l.borrow().clone());
    let prev_ci = CASE_INSENSITIVE.with(|c| c.get());
    if let Some(v) = let_vars {
        LET_VARS.with(|l| *l.borrow_mut() = v.clone());
    }
    if let Some(c) = collation {
        let strength = c.get("strength").and_then(as_i64).unwrap_or(3);
        let simple = c.get_str("locale").map(|l| l == "simple").unwrap_or(true);
        CASE_INSENSITIVE.with(|ci| ci.set(!simple && strength <= 2));
    }
    ExecGuard { prev_vars, prev_ci }
}

pub fn let_var(name: &str) -> Option<Bson> {
    LET_VARS.with(|l| l.borrow().get(name).cloned())
}

fn cmp_str(x: &str, y: &str) -> Ordering {
    if CASE_INSENSITIVE.with(|c| c.get()) {
        x.to_lowercase().cmp(&y.to_lowercase())
    } else {
        x.as_bytes().cmp(y.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn doc_size_matches_serialised_length() {
        let d = doc! {
            "_id": bson::oid::ObjectId::new(), "s": "héllo", "i": 1, "l": 2i64, "f": 1.5,
            "a": [1, "x", {"y": null}, [true]], "d": {"t": bson::Timestamp{time: 1, increment: 2}},
            "b": bson::Binary{subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3]},
            "r": bson::Regex{pattern: "a+".into(), options: "i".into()}, "dt": bson::DateTime::now(),
            "big": (0..12).map(Bson::Int32).collect::<Vec<_>>(),
        };
        assert_eq!(doc_size(&d), bson::to_vec(&d).unwrap().len());
    }

    #[test]
    fn canonical_order_across_types() {
        let mut v = [
            Bson::Boolean(false),
            Bson::String("a".into()),
            Bson::Int64(2),
            Bson::Double(1.5),
            Bson::Null,
            Bson::MinKey,
            Bson::MaxKey,
            Bson::Document(doc! {}),
        ];
        v.sort_by(cmp_bson);
        assert_eq!(v[0], Bson::MinKey);
        assert_eq!(v[1], Bson::Null);
        assert_eq!(v[2], Bson::Double(1.5));
        assert_eq!(v[3], Bson::Int64(2));
        assert_eq!(v[4], Bson::String("a".into()));
        assert_eq!(v[7], Bson::MaxKey);
        assert!(bson_eq(&Bson::Int32(3), &Bson::Double(3.0)));
    }
}
