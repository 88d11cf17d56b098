//! Value matching as the unified test format defines it: `$$` operators,
//! numeric types compared by value, extra fields permitted only in root
//! documents.

use crate::bsonutil::{as_f64, is_number};
use bson::{Bson, Document};
use std::collections::HashMap;

/// Values entities resolve to for `$$matchesEntity` / `$$sessionLsid`.
pub type EntityValues = HashMap<String, Bson>;

fn type_ok(actual: &Bson, alias: &str) -> bool {
    let n = crate::bsonutil::type_name(actual);
    match alias {
        "number" => is_number(actual),
        "binData" => matches!(actual, Bson::Binary(_)),
        other => n == other,
    }
}

/// Match `actual` against `expected`. `root` permits extra fields.
pub fn matches(
    expected: &Bson,
    actual: Option<&Bson>,
    root: bool,
    ents: &EntityValues,
    path: &str,
) -> Result<(), String> {
    if let Bson::Document(ed) = expected {
        if ed.len() == 1 {
            let (k, v) = ed
                .iter()
                .next()
                .map(|(k, v)| (k.as_str(), v))
                .unwrap_or(("", &Bson::Null));
            if k.starts_with("$$") {
                return special(k, v, actual, root, ents, path);
            }
        }
    }
    let Some(actual) = actual else {
        return Err(format!("{path}: expected {expected} but field is missing"));
    };
    match (expected, actual) {
        (Bson::Document(ed), Bson::Document(ad)) => match_doc(ed, ad, root, ents, path),
        (Bson::Array(ea), Bson::Array(aa)) => {
            if ea.len() != aa.len() {
                return Err(format!(
                    "{path}: expected array of {} items, got {}: {}",
                    ea.len(),
                    aa.len(),
                    Bson::Array(aa.clone())
                ));
            }
            for (i, (e, a)) in ea.iter().zip(aa.iter()).enumerate() {
                matches(e, Some(a), false, ents, &format!("{path}.{i}"))?;
            }
            Ok(())
        }
        (e, a) if is_number(e) && is_number(a) => {
            if as_f64(e) == as_f64(a) {
                Ok(())
            } else {
                Err(format!("{path}: expected {e}, got {a}"))
            }
        }
        (e, a) => {
            if e == a {
                Ok(())
            } else {
                Err(format!("{path}: expected {e}, got {a}"))
            }
        }
    }
}

pub fn match_doc(
    ed: &Document,
    ad: &Document,
    root: bool,
    ents: &EntityValues,
    path: &str,
) -> Result<(), String> {
    for (k, ev) in ed {
        matches(ev, ad.get(k), false, ents, &format!("{path}.{k}"))?;
    }
    if !root {
        for k in ad.keys() {
            if !ed.contains_key(k) {
                return Err(format!("{path}: unexpected field '{k}' in {ad}"));
            }
        }
    }
    Ok(())
}

fn special(
    op: &str,
    arg: &Bson,
    actual: Option<&Bson>,
    root: bool,
    ents: &EntityValues,
    path: &str,
) -> Result<(), String> {
    match op {
        "$$exists" => {
            let want = arg.as_bool().unwrap_or(true);
            if actual.is_some() == want {
                Ok(())
            } else {
                Err(format!("{path}: $$exists {want} but got {actual:?}"))
            }
        }
        "$$type" => {
            let a = actual.ok_or_else(|| format!("{path}: $$type but missing"))?;
            let ok = match arg {
                Bson::String(s) => type_ok(a, s),
                Bson::Array(v) => v.iter().any(|s| s.as_str().is_some_and(|s| type_ok(a, s))),
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                Err(format!("{path}: expected type {arg}, got {a}"))
            }
        }
        "$$unsetOrMatches" => match actual {
            None => Ok(()),
            Some(a) => matches(arg, Some(a), root, ents, path),
        },
        "$$matchesEntity" => {
            let id = arg.as_str().unwrap_or("");
            let e = ents
                .get(id)
                .ok_or_else(|| format!("{path}: unknown entity {id}"))?;
            matches(e, actual, root, ents, path)
        }
        "$$sessionLsid" => {
            let id = arg.as_str().unwrap_or("");
            let e = ents
                .get(&format!("{id}#lsid"))
                .ok_or_else(|| format!("{path}: unknown session {id}"))?;
            matches(e, actual, false, ents, path)
        }
        "$$lte" => {
            let (e, a) = (as_f64(arg), actual.and_then(as_f64));
            match (e, a) {
                (Some(e), Some(a)) if a <= e => Ok(()),
                _ => Err(format!("{path}: expected <= {arg}, got {actual:?}")),
            }
        }
        "$$matchAsRoot" => matches(arg, actual, true, ents, path),
        "$$matchAsDocument" => {
            let s = actual
                .and_then(Bson::as_str)
                .ok_or_else(|| format!("{path}: $$matchAsDocument needs a string"))?;
            let v: serde_json::Value =
                serde_json::from_str(s).map_err(|e| format!("{path}: {e}"))?;
            let b = Bson::try_from(v).map_err(|e| format!("{path}: {e}"))?;
            matches(arg, Some(&b), false, ents, path)
        }
        "$$matchesHexBytes" => {
            let want = arg.as_str().unwrap_or("").to_lowercase();
            match actual {
                Some(Bson::Binary(b)) => {
                    let got: String = b.bytes.iter().map(|x| format!("{x:02x}")).collect();
                    if got == want {
                        Ok(())
                    } else {
                        Err(format!("{path}: bytes differ"))
                    }
                }
                _ => Err(format!("{path}: expected binary")),
            }
        }
        other => Err(format!("{path}: unsupported special operator {other}")),
    }
}
