//! Update operators, replacement and upsert document construction.

use crate::bsonutil::{as_i64, bson_eq, cmp_bson, is_number, num_add, num_mul};
use crate::error::{CmdError, CmdResult};
use bson::{Bson, Document};
use std::cmp::Ordering;

/// Set `val` at a dotted `path`, creating intermediate documents (and padding
/// arrays with null for numeric components) the way `$set` does.
pub fn set_path(doc: &mut Document, path: &str, val: Bson) -> CmdResult<()> {
    let parts: Vec<&str> = path.split('.').collect();
    set_in_doc(doc, &parts, val, path)
}

fn set_in_doc(doc: &mut Document, parts: &[&str], val: Bson, full: &str) -> CmdResult<()> {
    if parts.len() == 1 {
        doc.insert(parts[0], val);
        return Ok(());
    }
    if !doc.contains_key(parts[0]) {
        doc.insert(parts[0], Document::new());
    }
    match doc.get_mut(parts[0]) {
        Some(child) => set_in_value(child, &parts[1..], val, full),
        None => Ok(()),
    }
}

fn set_in_value(cur: &mut Bson, parts: &[&str], val: Bson, full: &str) -> CmdResult<()> {
    match cur {
        Bson::Document(d) => set_in_doc(d, parts, val, full),
        Bson::Array(a) => {
            let idx: usize = parts[0].parse().map_err(|_| {
                CmdError::new(
                    28,
                    format!(
                        "Cannot create field '{}' in element {{{}: {:?}}}",
                        parts[0], full, a
                    ),
                )
            })?;
            while a.len() <= idx {
                a.push(Bson::Null);
            }
            if parts.len() == 1 {
                a[idx] = val;
                Ok(())
            } else {
                if !matches!(a[idx], Bson::Document(_) | Bson::Array(_)) {
                    a[idx] = Bson::Document(Document::new());
                }
                set_in_value(&mut a[idx], &parts[1..], val, full)
            }
        }
        other => Err(CmdError::new(
            28,
            format!(
                "Cannot create field '{}' in element {{{}: {}}}",
                parts[0],
                full.split('.').next().unwrap_or(full),
                crate::bsonutil::short_json(other)
            ),
        )),
    }
}

pub fn unset_path(doc: &mut Document, path: &str) {
    let parts: Vec<&str> = path.split('.').collect();
    fn rec(cur: &mut Bson, parts: &[&str]) {
        match cur {
            Bson::Document(d) => {
                if parts.len() == 1 {
                    d.remove(parts[0]);
                } else if let Some(c) = d.get_mut(parts[0]) {
                    rec(c, &parts[1..]);
                }
            }
            Bson::Array(a) => {
                if let Ok(i) = parts[0].parse::<usize>() {
                    if parts.len() == 1 {
                        // $unset on an array element sets it to null.
                        if i < a.len() {
                            a[i] = Bson::Null;
                        }
                    } else if let Some(c) = a.get_mut(i) {
                        rec(c, &parts[1..]);
                    }
                }
            }
            _ => {}
        }
    }
    if parts.len() == 1 {
        doc.remove(parts[0]);
    } else if let Some(c) = doc.get_mut(parts[0]) {
        rec(c, &parts[1..]);
    }
}

pub fn get_path_mut<'a>(doc: &'a mut Document, path: &str) -> Option<&'a mut Bson> {
    let mut parts = path.split('.');
    let mut cur = doc.get_mut(parts.next()?)?;
    for p in parts {
        cur = match cur {
            Bson::Document(d) => d.get_mut(p)?,
            Bson::Array(a) => a.get_mut(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The three shapes an update can take.
pub enum UpdateKind<'a> {
    Operators(&'a Document),
    Replacement(&'a Document),
    Pipeline(&'a [Bson]),
}

pub fn classify(u: &Bson) -> CmdResult<UpdateKind<'_>> {
    match u {
        Bson::Document(d) => {
            if d.keys().next().is_some_and(|k| k.starts_with('$')) {
                Ok(UpdateKind::Operators(d))
            } else {
                Ok(UpdateKind::Replacement(d))
            }
        }
        Bson::Array(a) => Ok(UpdateKind::Pipeline(a)),
        _ => Err(CmdError::failed_to_parse(
            "Update argument must be either an object or an array",
        )),
    }
}

/// Validate a replacement document: no top-level `$` keys.
pub fn check_replacement(d: &Document) -> CmdResult<()> {
    for k in d.keys() {
        if k.starts_with('$') {
            return Err(CmdError::new(52, format!("The dollar ($) prefixed field '{k}' in '{k}' is not allowed in the context of an update's replacement document. Consider using an aggregation pipeline with $replaceWith.")));
        }
    }
    Ok(())
}

/// Apply an update to `old` (for an upsert insert, `old` is the seed document
/// built from the query and `inserting` is true). Returns the new document.
pub fn apply(old: &Document, kind: &UpdateKind<'_>, inserting: bool) -> CmdResult<Document> {
    apply_with_filters(old, kind, inserting, &[])
}

/// `apply` with `arrayFilters` for `$[<identifier>]` paths.
pub fn apply_with_filters(
    old: &Document,
    kind: &UpdateKind<'_>,
    inserting: bool,
    filters: &[Document],
) -> CmdResult<Document> {
    let new = match kind {
        UpdateKind::Replacement(r) => {
            check_replacement(r)?;
            let mut n = Document::new();
            if let Some(id) = old.get("_id") {
                n.insert("_id", id.clone());
            }
            for (k, v) in r.iter() {
                if k == "_id" {
                    if let Some(oid) = old.get("_id") {
                        if !bson_eq(oid, v) {
                            return Err(immutable_id(old, v));
                        }
                    }
                    n.insert("_id", v.clone());
                } else {
                    n.insert(k, v.clone());
                }
            }
            n
        }
        UpdateKind::Pipeline(stages) => {
            let mut d = old.clone();
            for s in stages.iter() {
                let sd = match s {
                    Bson::Document(sd) => sd,
                    _ => {
                        return Err(CmdError::failed_to_parse(
                            "pipeline stage must be an object",
                        ))
                    }
                };
                d = crate::agg::apply_simple_stage(d, sd)?;
            }
            // Stages that drop `_id` (e.g. $replaceRoot) keep the original one.
            if !d.contains_key("_id") {
                if let Some(id) = old.get("_id") {
                    let mut n = Document::new();
                    n.insert("_id", id.clone());
                    n.extend(d);
                    d = n;
                }
            }
            if let (Some(a), Some(b)) = (old.get("_id"), d.get("_id")) {
                if !bson_eq(a, b) {
                    return Err(immutable_id(old, b));
                }
            }
            d
        }
        UpdateKind::Operators(ops) => apply_ops(old, ops, inserting, filters)?,
    };
    Ok(new)
}

fn immutable_id(old: &Document, _new: &Bson) -> CmdError {
    let _ = old;
    CmdError::new(
        66,
        "Performing an update on the path '_id' would modify the immutable field '_id'",
    )
}

fn apply_ops(
    old: &Document,
    ops: &Document,
    inserting: bool,
    filters: &[Document],
) -> CmdResult<Document> {
    let mut d = old.clone();
    if ops.is_empty() {
        return Err(CmdError::failed_to_parse(
            "Update document requires atomic operators",
        ));
    }
    for (op, args) in ops {
        let args = match args {
            Bson::Document(a) => a,
            _ => {
                return Err(CmdError::failed_to_parse(format!(
                    "Modifiers operate on fields but we found type {} instead. For example: {{$mod: {{<field>: ...}}}} not {{{op}: {}}}",
                    crate::bsonutil::type_name(args),
                    crate::bsonutil::short_json(args)
                )))
            }
        };
        for (path, arg) in args {
            if path == "_id" && op != "$setOnInsert" {
                if let (Some(oid), "$set") = (old.get("_id"), op.as_str()) {
                    if bson_eq(oid, arg) {
                        continue;
                    }
                }
                if !(inserting && op == "$set") {
                    return Err(immutable_id(old, arg));
                }
            }
            if path.contains("$[") {
                for p in expand_path(&d, path, filters)? {
                    apply_one(&mut d, op, &p, arg, inserting)?;
                }
            } else {
                apply_one(&mut d, op, path, arg, inserting)?;
            }
        }
    }
    Ok(d)
}

fn numeric_err(op: &str, path: &str, d: &Document, v: &Bson) -> CmdError {
    let id = d
        .get("_id")
        .map(crate::bsonutil::short_json)
        .unwrap_or_default();
    CmdError::type_mismatch(format!(
        "Cannot apply {op} to a value of non-numeric type. {{_id: {id}}} has the field '{path}' of non-numeric type {}",
        crate::bsonutil::type_name(v)
    ))
}

fn apply_one(d: &mut Document, op: &str, path: &str, arg: &Bson, inserting: bool) -> CmdResult<()> {
    let cur = crate::bsonutil::get_path(d, path).cloned();
    match op {
        "$set" => set_path(d, path, arg.clone())?,
        "$setOnInsert" => {
            if inserting {
                set_path(d, path, arg.clone())?
            }
        }
        "$unset" => unset_path(d, path),
        "$inc" | "$mul" => {
            if !is_number(arg) {
                return Err(CmdError::type_mismatch(format!("Cannot {} with non-numeric argument: {{{path}: {}}}", &op[1..], crate::bsonutil::short_json(arg))));
            }
            let nv = match &cur {
                None => {
                    if op == "$inc" {
                        arg.clone()
                    } else {
                        num_mul(&Bson::Int32(0), arg).unwrap_or(Bson::Int32(0))
                    }
                }
                Some(v) if is_number(v) => {
                    let r = if op == "$inc" { num_add(v, arg) } else { num_mul(v, arg) };
                    r.ok_or_else(|| numeric_err(op, path, d, v))?
                }
                Some(v) => return Err(numeric_err(op, path, d, v)),
            };
            set_path(d, path, nv)?;
        }
        "$min" | "$max" => {
            let want = if op == "$min" { Ordering::Less } else { Ordering::Greater };
            match &cur {
                Some(v) if cmp_bson(arg, v) != want => {}
                _ => set_path(d, path, arg.clone())?,
            }
        }
        "$rename" => {
            let to = match arg {
                Bson::String(s) => s,
                _ => return Err(CmdError::bad_value("The 'to' field for $rename must be a string")),
            };
            if let Some(v) = cur {
                unset_path(d, path);
                set_path(d, to, v)?;
            }
        }
        "$currentDate" => set_path(d, path, Bson::DateTime(bson::DateTime::now()))?,
        "$push" | "$addToSet" => {
            let mut arr = match cur {
                None => Vec::new(),
                Some(Bson::Array(a)) => a,
                Some(other) => {
                    return Err(CmdError::bad_value(format!(
                        "The field '{path}' must be an array but is of type {} in document {{_id: {}}}",
                        crate::bsonutil::type_name(&other),
                        d.get("_id").map(crate::bsonutil::short_json).unwrap_or_default()
                    )))
                }
            };
            let (items, mods) = match arg {
                Bson::Document(m) if m.contains_key("$each") => match m.get("$each") {
                    Some(Bson::Array(e)) => (e.clone(), Some(m)),
                    _ => return Err(CmdError::bad_value("The argument to $each must be an array")),
                },
                other => (vec![other.clone()], None),
            };
            if op == "$addToSet" {
                for it in items {
                    if !arr.iter().any(|x| bson_eq(x, &it)) {
                        arr.push(it);
                    }
                }
            } else {
                let pos = mods.and_then(|m| m.get("$position")).and_then(as_i64);
                match pos {
                    Some(p) => {
                        let len = arr.len() as i64;
                        let at = if p < 0 { (len + p).max(0) } else { p.min(len) } as usize;
                        for (i, it) in items.into_iter().enumerate() {
                            arr.insert(at + i, it);
                        }
                    }
                    None => arr.extend(items),
                }
                if let Some(s) = mods.and_then(|m| m.get("$sort")) {
                    match s {
                        Bson::Document(sd) => arr.sort_by(|a, b| match (a, b) {
                            (Bson::Document(x), Bson::Document(y)) => crate::query::cmp_by_sort(x, y, sd),
                            _ => cmp_bson(a, b),
                        }),
                        other => {
                            let desc = as_i64(other).is_some_and(|v| v < 0);
                            arr.sort_by(|a, b| if desc { cmp_bson(b, a) } else { cmp_bson(a, b) });
                        }
                    }
                }
                if let Some(n) = mods.and_then(|m| m.get("$slice")).and_then(as_i64) {
                    if n >= 0 {
                        arr.truncate(n as usize);
                    } else {
                        let k = (-n) as usize;
                        if arr.len() > k {
                            arr = arr.split_off(arr.len() - k);
                        }
                    }
                }
            }
            set_path(d, path, Bson::Array(arr))?;
        }
        "$pull" | "$pullAll" => {
            if let Some(Bson::Array(a)) = cur {
                let kept: Vec<Bson> = if op == "$pullAll" {
                    let list = match arg {
                        Bson::Array(l) => l.clone(),
                        _ => return Err(CmdError::bad_value("$pullAll requires an array argument")),
                    };
                    a.into_iter().filter(|x| !list.iter().any(|y| bson_eq(x, y))).collect()
                } else {
                    let mut out = Vec::new();
                    for x in a {
                        if !pull_matches(&x, arg)? {
                            out.push(x);
                        }
                    }
                    out
                };
                set_path(d, path, Bson::Array(kept))?;
            }
        }
        "$pop" => {
            if let Some(Bson::Array(mut a)) = cur {
                if as_i64(arg).unwrap_or(1) < 0 {
                    if !a.is_empty() {
                        a.remove(0);
                    }
                } else {
                    a.pop();
                }
                set_path(d, path, Bson::Array(a))?;
            }
        }
        _ => return Err(CmdError::failed_to_parse(format!("Unknown modifier: {op}. Expected a valid update modifier or pipeline-style update specified as an array"))),
    }
    Ok(())
}

fn pull_matches(x: &Bson, cond: &Bson) -> CmdResult<bool> {
    match cond {
        Bson::Document(c) => {
            let op_style = c.keys().next().is_some_and(|k| k.starts_with('$'));
            if op_style {
                let mut w = Document::new();
                w.insert("x", x.clone());
                let mut f = Document::new();
                f.insert("x", cond.clone());
                crate::query::matches(&w, &f)
            } else if let Bson::Document(xd) = x {
                crate::query::matches(xd, c)
            } else {
                Ok(false)
            }
        }
        other => Ok(bson_eq(x, other)),
    }
}

/// Seed document for an upsert: the equality parts of the query.
pub fn upsert_seed(filter: &Document) -> CmdResult<Document> {
    let mut d = Document::new();
    fn walk(f: &Document, d: &mut Document) -> CmdResult<()> {
        for (k, v) in f {
            if k == "$and" {
                if let Bson::Array(a) = v {
                    for x in a {
                        if let Bson::Document(xd) = x {
                            walk(xd, d)?;
                        }
                    }
                }
                continue;
            }
            if k.starts_with('$') {
                continue;
            }
            match v {
                Bson::Document(od) if od.keys().next().is_some_and(|x| x.starts_with('$')) => {
                    if let Some(e) = od.get("$eq") {
                        set_path(d, k, e.clone())?;
                    }
                }
                Bson::RegularExpression(_) => {}
                other => set_path(d, k, other.clone())?,
            }
        }
        Ok(())
    }
    walk(filter, &mut d)?;
    Ok(d)
}

/// Ensure `_id` is the first field, generating an ObjectId when missing.
pub fn ensure_id_first(d: Document) -> Document {
    if d.keys().next().is_some_and(|k| k == "_id") {
        return d;
    }
    let mut out = Document::new();
    let id = d
        .get("_id")
        .cloned()
        .unwrap_or_else(|| Bson::ObjectId(bson::oid::ObjectId::new()));
    out.insert("_id", id);
    for (k, v) in d {
        if k != "_id" {
            out.insert(k, v);
        }
    }
    out
}

/// Expand `$[]` and `$[<id>]` components of an update path into concrete
/// paths, using `arrayFilters` for identifiers.
pub fn expand_path(doc: &Document, path: &str, filters: &[Document]) -> CmdResult<Vec<String>> {
    let mut cur: Vec<(String, Option<Bson>)> =
        vec![(String::new(), Some(Bson::Document(doc.clone())))];
    for part in path.split('.') {
        let mut next = Vec::new();
        for (prefix, val) in cur {
            let join = |k: &str| {
                if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                }
            };
            if let Some(ident) = part.strip_prefix("$[").and_then(|p| p.strip_suffix(']')) {
                let Some(Bson::Array(items)) = val else {
                    return Err(CmdError::bad_value(format!(
                        "The path '{prefix}' must exist in the document in order to apply array updates."
                    )));
                };
                let filter = if ident.is_empty() {
                    None
                } else {
                    Some(
                        filters
                            .iter()
                            .find(|f| f.keys().any(|k| k == ident || k.starts_with(&format!("{ident}."))))
                            .ok_or_else(|| {
                                CmdError::bad_value(format!(
                                    "No array filter found for identifier '{ident}' in path '{path}'"
                                ))
                            })?,
                    )
                };
                for (i, e) in items.into_iter().enumerate() {
                    let keep = match filter {
                        None => true,
                        Some(f) => {
                            let mut w = Document::new();
                            w.insert(ident, e.clone());
                            crate::query::matches(&w, f)?
                        }
                    };
                    if keep {
                        next.push((join(&i.to_string()), Some(e)));
                    }
                }
            } else {
                let child = match &val {
                    Some(Bson::Document(d)) => d.get(part).cloned(),
                    Some(Bson::Array(a)) => {
                        part.parse::<usize>().ok().and_then(|i| a.get(i).cloned())
                    }
                    _ => None,
                };
                next.push((join(part), child));
            }
        }
        cur = next;
    }
    Ok(cur.into_iter().map(|(p, _)| p).collect())
}
