//! The query language: filter matching, projection and sort.

use crate::bsonutil::{as_f64, as_i64, bson_eq, cmp_bson, get_path, matches_type, type_rank};
use crate::error::{CmdError, CmdResult};
use bson::{Bson, Document};
use std::cmp::Ordering;

/// Collect the values a dotted path reaches, traversing arrays the way the
/// server does: an array is both a value itself and, at the end of the path,
/// a set of candidate element values.
fn resolve(cur: &Bson, parts: &[&str], expand_last: bool, out: &mut Vec<Bson>) {
    if parts.is_empty() {
        out.push(cur.clone());
        if expand_last {
            if let Bson::Array(a) = cur {
                out.extend(a.iter().cloned());
            }
        }
        return;
    }
    match cur {
        Bson::Document(d) => {
            if let Some(v) = d.get(parts[0]) {
                resolve(v, &parts[1..], expand_last, out);
            }
        }
        Bson::Array(a) => {
            if let Ok(i) = parts[0].parse::<usize>() {
                if let Some(v) = a.get(i) {
                    resolve(v, &parts[1..], expand_last, out);
                }
            }
            for e in a {
                if let Bson::Document(_) = e {
                    resolve(e, parts, expand_last, out);
                }
            }
        }
        _ => {}
    }
}

pub fn values_at(doc: &Document, path: &str, expand: bool) -> Vec<Bson> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut out = Vec::new();
    if let Some(v) = doc.get(parts[0]) {
        resolve(v, &parts[1..], expand, &mut out);
    }
    out
}

/// Does `doc` match the query `filter`?
pub fn matches(doc: &Document, filter: &Document) -> CmdResult<bool> {
    for (k, v) in filter {
        if !match_top(doc, k, v)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn as_array<'a>(v: &'a Bson, op: &str) -> CmdResult<&'a Vec<Bson>> {
    match v {
        Bson::Array(a) => Ok(a),
        _ => Err(CmdError::bad_value(format!("{op} needs an array"))),
    }
}

fn match_top(doc: &Document, k: &str, v: &Bson) -> CmdResult<bool> {
    match k {
        "$and" => {
            for f in as_array(v, k)? {
                if !matches(doc, sub_doc(f)?)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        "$or" => {
            for f in as_array(v, k)? {
                if matches(doc, sub_doc(f)?)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        "$nor" => {
            for f in as_array(v, k)? {
                if matches(doc, sub_doc(f)?)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        "$comment" => Ok(true),
        "$expr" => {
            let r = crate::agg::eval_expr(&Bson::Document(doc.clone()), v, &Document::new())?;
            Ok(crate::agg::truthy(&r))
        }
        _ if k.starts_with('$') => Err(CmdError::bad_value(format!(
            "unknown top level operator: {k}"
        ))),
        _ => match_field(doc, k, v),
    }
}

fn sub_doc(b: &Bson) -> CmdResult<&Document> {
    match b {
        Bson::Document(d) => Ok(d),
        _ => Err(CmdError::bad_value("$and/$or/$nor entries must be objects")),
    }
}

fn is_operator_doc(v: &Bson) -> bool {
    matches!(v, Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')))
}

fn match_field(doc: &Document, path: &str, cond: &Bson) -> CmdResult<bool> {
    if let Bson::Document(ops) = cond {
        if is_operator_doc(cond) {
            let options = ops.get_str("$options").unwrap_or("");
            for (op, arg) in ops {
                if op == "$options" {
                    continue;
                }
                if !match_op(doc, path, op, arg, options)? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
    }
    if let Bson::RegularExpression(re) = cond {
        return regex_match_path(doc, path, &re.pattern, &re.options);
    }
    Ok(eq_path(doc, path, cond))
}

fn eq_path(doc: &Document, path: &str, val: &Bson) -> bool {
    let vals = values_at(doc, path, true);
    if matches!(val, Bson::Null) && (vals.is_empty() || path_has_missing(doc, path)) {
        return true;
    }
    vals.iter().any(|x| bson_eq(x, val))
}

/// For `{a.b: null}`: true when some array element on the path lacks the field.
fn path_has_missing(doc: &Document, path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    fn walk(cur: &Bson, parts: &[&str]) -> bool {
        if parts.is_empty() {
            return false;
        }
        match cur {
            Bson::Document(d) => match d.get(parts[0]) {
                None => true,
                Some(v) => walk(v, &parts[1..]),
            },
            Bson::Array(a) => a
                .iter()
                .any(|e| matches!(e, Bson::Document(_)) && walk(e, parts)),
            _ => false,
        }
    }
    walk(&Bson::Document(doc.clone()), &parts)
}

fn regex_match_path(doc: &Document, path: &str, pat: &str, opts: &str) -> CmdResult<bool> {
    let re = build_regex(pat, opts)?;
    Ok(values_at(doc, path, true).iter().any(|v| match v {
        Bson::String(s) | Bson::Symbol(s) => re.is_match(s),
        Bson::RegularExpression(r) => r.pattern == pat && r.options == opts,
        _ => false,
    }))
}

pub fn build_regex(pat: &str, opts: &str) -> CmdResult<regex::Regex> {
    let mut b = regex::RegexBuilder::new(pat);
    b.case_insensitive(opts.contains('i'))
        .multi_line(opts.contains('m'))
        .dot_matches_new_line(opts.contains('s'))
        .ignore_whitespace(opts.contains('x'));
    b.build()
        .map_err(|e| CmdError::new(51091, format!("Regular expression is invalid: {e}")))
}

fn cmp_op(v: &Bson, arg: &Bson, pred: fn(Ordering) -> bool) -> bool {
    // Comparisons only match within the same canonical type bracket.
    if type_rank(v) != type_rank(arg) {
        return matches!(arg, Bson::MinKey | Bson::MaxKey) && pred(cmp_bson(v, arg));
    }
    pred(cmp_bson(v, arg))
}

fn in_list(vals: &[Bson], list: &[Bson], missing_is_null: bool) -> CmdResult<bool> {
    for item in list {
        match item {
            Bson::RegularExpression(re) => {
                let r = build_regex(&re.pattern, &re.options)?;
                if vals
                    .iter()
                    .any(|v| matches!(v, Bson::String(s) if r.is_match(s)))
                {
                    return Ok(true);
                }
            }
            Bson::Null if missing_is_null && vals.is_empty() => return Ok(true),
            _ => {
                if vals.iter().any(|v| bson_eq(v, item)) {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

fn match_op(doc: &Document, path: &str, op: &str, arg: &Bson, options: &str) -> CmdResult<bool> {
    let vals = || values_at(doc, path, true);
    Ok(match op {
        "$eq" => eq_path(doc, path, arg),
        "$ne" => !eq_path(doc, path, arg),
        "$gt" => vals()
            .iter()
            .any(|v| cmp_op(v, arg, |o| o == Ordering::Greater)),
        "$gte" => vals()
            .iter()
            .any(|v| cmp_op(v, arg, |o| o != Ordering::Less)),
        "$lt" => vals()
            .iter()
            .any(|v| cmp_op(v, arg, |o| o == Ordering::Less)),
        "$lte" => vals()
            .iter()
            .any(|v| cmp_op(v, arg, |o| o != Ordering::Greater)),
        "$in" => in_list(&vals(), as_array(arg, op)?, true)?,
        "$nin" => !in_list(&vals(), as_array(arg, op)?, true)?,
        "$exists" => {
            let want = crate::agg::truthy(arg);
            let has = !values_at(doc, path, false).is_empty();
            has == want
        }
        "$type" => {
            let vs = values_at(doc, path, true);
            match arg {
                Bson::Array(specs) => vs.iter().any(|v| specs.iter().any(|s| matches_type(v, s))),
                s => vs.iter().any(|v| matches_type(v, s)),
            }
        }
        "$not" => match arg {
            Bson::RegularExpression(re) => !regex_match_path(doc, path, &re.pattern, &re.options)?,
            Bson::Document(d) => !match_field(doc, path, &Bson::Document(d.clone()))?,
            _ => return Err(CmdError::bad_value("$not needs a regex or a document")),
        },
        "$regex" => {
            let (pat, o) = match arg {
                Bson::String(s) => (s.clone(), options.to_string()),
                Bson::RegularExpression(r) => (
                    r.pattern.clone(),
                    if options.is_empty() {
                        r.options.clone()
                    } else {
                        options.to_string()
                    },
                ),
                _ => return Err(CmdError::bad_value("$regex has to be a string")),
            };
            regex_match_path(doc, path, &pat, &o)?
        }
        "$size" => {
            let n = as_i64(arg).ok_or_else(|| CmdError::bad_value("$size needs a number"))?;
            values_at(doc, path, false)
                .iter()
                .any(|v| matches!(v, Bson::Array(a) if a.len() as i64 == n))
        }
        "$all" => {
            let list = as_array(arg, op)?;
            if list.is_empty() {
                return Ok(false);
            }
            let vs = vals();
            list.iter().all(|item| match item {
                Bson::Document(d) if d.contains_key("$elemMatch") => match_op(
                    doc,
                    path,
                    "$elemMatch",
                    d.get("$elemMatch").unwrap_or(&Bson::Null),
                    "",
                )
                .unwrap_or(false),
                _ => vs.iter().any(|v| bson_eq(v, item)),
            })
        }
        "$elemMatch" => {
            let cond = match arg {
                Bson::Document(d) => d,
                _ => return Err(CmdError::bad_value("$elemMatch needs an Object")),
            };
            let op_style = is_operator_doc(arg)
                && !cond
                    .keys()
                    .any(|k| matches!(k.as_str(), "$and" | "$or" | "$nor" | "$expr"));
            let mut found = false;
            for v in values_at(doc, path, false) {
                if let Bson::Array(items) = v {
                    for e in items {
                        let ok = if op_style {
                            let mut w = Document::new();
                            w.insert("x", e.clone());
                            match_field(&w, "x", arg)?
                        } else if let Bson::Document(ed) = &e {
                            matches(ed, cond)?
                        } else {
                            false
                        };
                        if ok {
                            found = true;
                            break;
                        }
                    }
                }
            }
            found
        }
        "$mod" => {
            let a = as_array(arg, op)?;
            let (d, r) = match (a.first().and_then(as_f64), a.get(1).and_then(as_f64)) {
                (Some(d), Some(r)) if d != 0.0 => (d as i64, r as i64),
                _ => {
                    return Err(CmdError::bad_value(
                        "malformed mod, divisor and remainder required",
                    ))
                }
            };
            vals()
                .iter()
                .any(|v| as_f64(v).is_some_and(|x| (x as i64) % d == r))
        }
        "$comment" => true,
        _ => return Err(CmdError::bad_value(format!("unknown operator: {op}"))),
    })
}

/// Sort key comparison for a sort spec `{field: 1|-1, ...}`.
pub fn cmp_by_sort(a: &Document, b: &Document, sort: &Document) -> Ordering {
    for (k, dir) in sort {
        let desc = as_f64(dir).is_some_and(|d| d < 0.0);
        let va = sort_value(a, k, desc);
        let vb = sort_value(b, k, desc);
        let mut o = cmp_bson(&va, &vb);
        if desc {
            o = o.reverse();
        }
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn sort_value(d: &Document, path: &str, desc: bool) -> Bson {
    let vals = values_at(d, path, false);
    let mut cands: Vec<Bson> = Vec::new();
    for v in vals {
        match v {
            Bson::Array(a) if a.is_empty() => cands.push(Bson::Undefined),
            Bson::Array(a) => cands.extend(a),
            other => cands.push(other),
        }
    }
    if cands.is_empty() {
        return Bson::Null;
    }
    let pick = if desc {
        Ordering::Greater
    } else {
        Ordering::Less
    };
    let mut best = cands[0].clone();
    for c in cands.into_iter().skip(1) {
        if cmp_bson(&c, &best) == pick {
            best = c;
        }
    }
    best
}

/// Apply a find projection.
pub fn project(doc: &Document, proj: &Document) -> CmdResult<Document> {
    if proj.is_empty() {
        return Ok(doc.clone());
    }
    let mut inclusion: Option<bool> = None;
    let mut id_flag: Option<bool> = None;
    let mut computed: Vec<(String, Bson)> = Vec::new();
    for (k, v) in proj {
        let flag = match v {
            Bson::Boolean(b) => Some(*b),
            v if crate::bsonutil::is_number(v) => Some(as_f64(v).unwrap_or(0.0) != 0.0),
            _ => None,
        };
        match flag {
            Some(f) if k == "_id" => id_flag = Some(f),
            Some(f) => {
                if inclusion.is_some_and(|i| i != f) {
                    return Err(CmdError::new(
                        31254,
                        format!("Cannot do exclusion on field {k} in inclusion projection"),
                    ));
                }
                inclusion = Some(f);
            }
            None => {
                inclusion.get_or_insert(true);
                computed.push((k.clone(), v.clone()));
            }
        }
    }
    let include = inclusion.unwrap_or(false);
    let mut out;
    if include {
        out = Document::new();
        if id_flag != Some(false) {
            if let Some(id) = doc.get("_id") {
                out.insert("_id", id.clone());
            }
        }
        let paths: Vec<&str> = proj
            .iter()
            .filter(|(k, v)| {
                k.as_str() != "_id"
                    && !matches!(v, Bson::Document(_) | Bson::String(_) | Bson::Array(_))
            })
            .map(|(k, _)| k.as_str())
            .collect();
        include_paths(doc, &paths, &mut out);
        let root = Bson::Document(doc.clone());
        for (k, v) in computed {
            let val = if let Bson::Document(d) = &v {
                if let Some(sl) = d.get("$slice") {
                    slice_field(doc, &k, sl)
                } else if let Some(em) = d.get("$elemMatch") {
                    elem_match_field(doc, &k, em)?
                } else {
                    Some(crate::agg::eval_expr(&root, &v, &Document::new())?)
                }
            } else {
                Some(crate::agg::eval_expr(&root, &v, &Document::new())?)
            };
            if let Some(val) = val {
                crate::update::set_path(&mut out, &k, val).ok();
            }
        }
    } else {
        out = doc.clone();
        for (k, _) in proj {
            if k == "_id" && id_flag != Some(false) {
                continue;
            }
            crate::update::unset_path(&mut out, k);
        }
    }
    Ok(out)
}

fn slice_field(doc: &Document, k: &str, sl: &Bson) -> Option<Bson> {
    let v = get_path(doc, k)?;
    let a = match v {
        Bson::Array(a) => a,
        other => return Some(other.clone()),
    };
    let (skip, n) = match sl {
        Bson::Array(p) if p.len() == 2 => (as_i64(&p[0])?, as_i64(&p[1])?),
        other => {
            let n = as_i64(other)?;
            if n < 0 {
                (n, -n)
            } else {
                (0, n)
            }
        }
    };
    let len = a.len() as i64;
    let start = if skip < 0 {
        (len + skip).max(0)
    } else {
        skip.min(len)
    };
    let end = (start + n).min(len);
    Some(Bson::Array(a[start as usize..end as usize].to_vec()))
}

fn elem_match_field(doc: &Document, k: &str, em: &Bson) -> CmdResult<Option<Bson>> {
    let cond = match em {
        Bson::Document(d) => d,
        _ => return Ok(None),
    };
    if let Some(Bson::Array(a)) = doc.get(k) {
        for e in a {
            if let Bson::Document(ed) = e {
                if matches(ed, cond)? {
                    return Ok(Some(Bson::Array(vec![e.clone()])));
                }
            }
        }
    }
    Ok(None)
}

fn include_paths(src: &Document, paths: &[&str], out: &mut Document) {
    // Keep the source field order, as the server does.
    for (k, v) in src {
        let mut whole = false;
        let mut subs: Vec<&str> = Vec::new();
        for p in paths {
            if *p == k {
                whole = true;
            } else if let Some(rest) = p.strip_prefix(k.as_str()).and_then(|r| r.strip_prefix('.'))
            {
                subs.push(rest);
            }
        }
        if whole {
            out.insert(k, v.clone());
        } else if !subs.is_empty() {
            match v {
                Bson::Document(d) => {
                    let mut o = Document::new();
                    include_paths(d, &subs, &mut o);
                    out.insert(k, o);
                }
                Bson::Array(a) => {
                    let mut arr = Vec::new();
                    for e in a {
                        if let Bson::Document(d) = e {
                            let mut o = Document::new();
                            include_paths(d, &subs, &mut o);
                            arr.push(Bson::Document(o));
                        }
                    }
                    out.insert(k, arr);
                }
                _ => {}
            }
        }
    }
}
