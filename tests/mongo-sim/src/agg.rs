//! Aggregation: expressions and the document-transforming pipeline stages.
//! Stages that need collection access ($collStats, $out) or the change
//! stream are handled by the command layer before this module runs.

use crate::bsonutil::{as_f64, as_i64, bson_eq, cmp_bson, is_number, num_add, num_mul, type_name};
use crate::error::{CmdError, CmdResult};
use bson::{Bson, Document};
use std::cmp::Ordering;

pub fn truthy(b: &Bson) -> bool {
    match b {
        Bson::Boolean(x) => *x,
        Bson::Null | Bson::Undefined => false,
        v if is_number(v) => as_f64(v).is_some_and(|x| x != 0.0),
        _ => true,
    }
}

fn field_path(root: &Bson, path: &str) -> Bson {
    let mut cur = vec![root.clone()];
    let mut was_array = false;
    for p in path.split('.') {
        let mut next = Vec::new();
        for c in cur {
            match c {
                Bson::Document(d) => {
                    if let Some(v) = d.get(p) {
                        next.push(v.clone());
                    }
                }
                Bson::Array(a) => {
                    was_array = true;
                    let mut sub = Vec::new();
                    for e in a {
                        if let Bson::Document(d) = e {
                            if let Some(v) = d.get(p) {
                                sub.push(v.clone());
                            }
                        }
                    }
                    next.push(Bson::Array(sub));
                }
                _ => {}
            }
        }
        cur = next;
    }
    let _ = was_array;
    cur.into_iter().next().unwrap_or(Bson::Undefined)
}

/// Evaluate an aggregation expression against `root` with `$$` variables.
pub fn eval_expr(root: &Bson, e: &Bson, vars: &Document) -> CmdResult<Bson> {
    match e {
        Bson::String(s) if s.starts_with("$$") => {
            let name = &s[2..];
            let (var, rest) = match name.split_once('.') {
                Some((v, r)) => (v, Some(r)),
                None => (name, None),
            };
            let base = match var {
                "ROOT" | "CURRENT" => root.clone(),
                "NOW" => Bson::DateTime(bson::DateTime::now()),
                "REMOVE" => Bson::Undefined,
                v => vars
                    .get(v)
                    .cloned()
                    .or_else(|| crate::bsonutil::let_var(v))
                    .ok_or_else(|| {
                        CmdError::new(17276, format!("Use of undefined variable: {v}"))
                    })?,
            };
            Ok(match rest {
                Some(r) => field_path(&base, r),
                None => base,
            })
        }
        Bson::String(s) if s.starts_with('$') => Ok(field_path(root, &s[1..])),
        Bson::Array(a) => Ok(Bson::Array(
            a.iter()
                .map(|x| eval_expr(root, x, vars))
                .collect::<CmdResult<Vec<_>>>()?,
        )),
        Bson::Document(d) => {
            if d.len() == 1 {
                if let Some((k, arg)) = d.iter().next() {
                    if k.starts_with('$') {
                        return eval_op(root, k, arg, vars);
                    }
                }
            }
            let mut out = Document::new();
            for (k, v) in d {
                let r = eval_expr(root, v, vars)?;
                if !matches!(r, Bson::Undefined) {
                    out.insert(k, r);
                }
            }
            Ok(Bson::Document(out))
        }
        other => Ok(other.clone()),
    }
}

fn args(root: &Bson, arg: &Bson, vars: &Document) -> CmdResult<Vec<Bson>> {
    match arg {
        Bson::Array(a) => a.iter().map(|x| eval_expr(root, x, vars)).collect(),
        other => Ok(vec![eval_expr(root, other, vars)?]),
    }
}

fn nullish(b: &Bson) -> bool {
    matches!(b, Bson::Null | Bson::Undefined)
}

fn eval_op(root: &Bson, op: &str, arg: &Bson, vars: &Document) -> CmdResult<Bson> {
    let a = || args(root, arg, vars);
    Ok(match op {
        "$literal" => arg.clone(),
        "$add" | "$multiply" => {
            let mut acc = if op == "$add" {
                Bson::Int32(0)
            } else {
                Bson::Int32(1)
            };
            for v in a()? {
                if nullish(&v) {
                    return Ok(Bson::Null);
                }
                if let (Bson::DateTime(dt), true) = (&v, op == "$add") {
                    let ms = as_i64(&acc).unwrap_or(0);
                    acc = Bson::DateTime(bson::DateTime::from_millis(dt.timestamp_millis() + ms));
                    continue;
                }
                if let Bson::DateTime(dt) = &acc {
                    acc = Bson::DateTime(bson::DateTime::from_millis(
                        dt.timestamp_millis() + as_i64(&v).unwrap_or(0),
                    ));
                    continue;
                }
                acc = if op == "$add" {
                    num_add(&acc, &v)
                } else {
                    num_mul(&acc, &v)
                }
                .ok_or_else(|| {
                    CmdError::type_mismatch(format!(
                        "{op} only supports numeric types, not {}",
                        type_name(&v)
                    ))
                })?;
            }
            acc
        }
        "$subtract" => {
            let v = a()?;
            if v.len() != 2 || v.iter().any(nullish) {
                return Ok(Bson::Null);
            }
            num_add(
                &v[0],
                &num_mul(&v[1], &Bson::Int32(-1)).unwrap_or(Bson::Null),
            )
            .unwrap_or(Bson::Null)
        }
        "$divide" => {
            let v = a()?;
            match (v.first().and_then(as_f64), v.get(1).and_then(as_f64)) {
                (Some(x), Some(y)) if y != 0.0 => Bson::Double(x / y),
                (Some(_), Some(_)) => return Err(CmdError::new(2, "can't $divide by zero")),
                _ => Bson::Null,
            }
        }
        "$mod" => {
            let v = a()?;
            match (v.first().and_then(as_i64), v.get(1).and_then(as_i64)) {
                (Some(x), Some(y)) if y != 0 => Bson::Int64(x % y),
                _ => Bson::Null,
            }
        }
        "$abs" => {
            let v = a()?;
            match v.first() {
                Some(Bson::Int32(i)) => Bson::Int32(i.abs()),
                Some(Bson::Int64(i)) => Bson::Int64(i.abs()),
                Some(Bson::Double(d)) => Bson::Double(d.abs()),
                _ => Bson::Null,
            }
        }
        "$concat" => {
            let mut s = String::new();
            for v in a()? {
                match v {
                    Bson::String(x) => s.push_str(&x),
                    _ => return Ok(Bson::Null),
                }
            }
            Bson::String(s)
        }
        "$toLower" | "$toUpper" | "$toString" => {
            let v = a()?.into_iter().next().unwrap_or(Bson::Null);
            let s = match v {
                Bson::String(s) => s,
                Bson::Null | Bson::Undefined => {
                    return Ok(if op == "$toString" {
                        Bson::Null
                    } else {
                        Bson::String(String::new())
                    })
                }
                Bson::ObjectId(o) => o.to_hex(),
                other => crate::bsonutil::short_json(&other),
            };
            Bson::String(match op {
                "$toLower" => s.to_lowercase(),
                "$toUpper" => s.to_uppercase(),
                _ => s,
            })
        }
        "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" | "$cmp" => {
            let v = a()?;
            let (x, y) = (
                v.first().cloned().unwrap_or(Bson::Null),
                v.get(1).cloned().unwrap_or(Bson::Null),
            );
            let x = if matches!(x, Bson::Undefined) {
                Bson::Null
            } else {
                x
            };
            let y = if matches!(y, Bson::Undefined) {
                Bson::Null
            } else {
                y
            };
            let o = cmp_bson(&x, &y);
            match op {
                "$eq" => Bson::Boolean(o == Ordering::Equal),
                "$ne" => Bson::Boolean(o != Ordering::Equal),
                "$gt" => Bson::Boolean(o == Ordering::Greater),
                "$gte" => Bson::Boolean(o != Ordering::Less),
                "$lt" => Bson::Boolean(o == Ordering::Less),
                "$lte" => Bson::Boolean(o != Ordering::Greater),
                _ => Bson::Int32(match o {
                    Ordering::Less => -1,
                    Ordering::Equal => 0,
                    Ordering::Greater => 1,
                }),
            }
        }
        "$and" => Bson::Boolean(a()?.iter().all(truthy)),
        "$or" => Bson::Boolean(a()?.iter().any(truthy)),
        "$not" => Bson::Boolean(!a()?.first().is_some_and(truthy)),
        "$cond" => {
            let (c, t, f) = match arg {
                Bson::Array(v) if v.len() == 3 => (v[0].clone(), v[1].clone(), v[2].clone()),
                Bson::Document(d) => (
                    d.get("if").cloned().unwrap_or(Bson::Null),
                    d.get("then").cloned().unwrap_or(Bson::Null),
                    d.get("else").cloned().unwrap_or(Bson::Null),
                ),
                _ => return Err(CmdError::bad_value("$cond needs 3 arguments")),
            };
            if truthy(&eval_expr(root, &c, vars)?) {
                eval_expr(root, &t, vars)?
            } else {
                eval_expr(root, &f, vars)?
            }
        }
        "$ifNull" => {
            let v = a()?;
            let n = v.len();
            for (i, x) in v.into_iter().enumerate() {
                if !nullish(&x) || i + 1 == n {
                    return Ok(x);
                }
            }
            Bson::Null
        }
        "$size" => match a()?.into_iter().next() {
            Some(Bson::Array(x)) => Bson::Int32(x.len() as i32),
            _ => {
                return Err(CmdError::new(
                    17124,
                    "The argument to $size must be an array",
                ))
            }
        },
        "$isArray" => Bson::Boolean(matches!(a()?.first(), Some(Bson::Array(_)))),
        "$arrayElemAt" => {
            let v = a()?;
            match (v.first(), v.get(1).and_then(as_i64)) {
                (Some(Bson::Array(x)), Some(i)) => {
                    let idx = if i < 0 { x.len() as i64 + i } else { i };
                    x.get(idx as usize).cloned().unwrap_or(Bson::Undefined)
                }
                _ => Bson::Null,
            }
        }
        "$first" | "$last" => match a()?.into_iter().next() {
            Some(Bson::Array(x)) => {
                let e = if op == "$first" { x.first() } else { x.last() };
                e.cloned().unwrap_or(Bson::Undefined)
            }
            _ => Bson::Null,
        },
        "$in" => {
            let v = a()?;
            match v.get(1) {
                Some(Bson::Array(x)) => Bson::Boolean(x.iter().any(|e| bson_eq(e, &v[0]))),
                _ => {
                    return Err(CmdError::new(
                        40081,
                        "$in requires an array as a second argument",
                    ))
                }
            }
        }
        "$concatArrays" => {
            let mut out = Vec::new();
            for v in a()? {
                match v {
                    Bson::Array(x) => out.extend(x),
                    _ => return Ok(Bson::Null),
                }
            }
            Bson::Array(out)
        }
        "$type" => Bson::String(match a()?.into_iter().next() {
            Some(Bson::Undefined) | None => "missing".into(),
            Some(v) => type_name(&v).into(),
        }),
        "$sum" | "$avg" | "$min" | "$max" => {
            let v = a()?;
            let items: Vec<Bson> = if v.len() == 1 {
                match &v[0] {
                    Bson::Array(x) => x.clone(),
                    o => vec![o.clone()],
                }
            } else {
                v
            };
            let mut acc = Accum::new(op);
            for i in items {
                acc.add(&i);
            }
            acc.finish()
        }
        "$toInt" | "$toLong" | "$toDouble" => {
            let v = a()?.into_iter().next().unwrap_or(Bson::Null);
            match (op, as_f64(&v)) {
                (_, None) => Bson::Null,
                ("$toInt", Some(x)) => Bson::Int32(x as i32),
                ("$toLong", Some(x)) => Bson::Int64(x as i64),
                (_, Some(x)) => Bson::Double(x),
            }
        }
        "$getField" => {
            let (field, input) = match arg {
                Bson::Document(d) => (
                    d.get("field").cloned().unwrap_or(Bson::Null),
                    d.get("input")
                        .cloned()
                        .unwrap_or(Bson::String("$$CURRENT".into())),
                ),
                other => (other.clone(), Bson::String("$$CURRENT".into())),
            };
            let f = eval_expr(root, &field, vars)?;
            let i = eval_expr(root, &input, vars)?;
            match (f, i) {
                (Bson::String(f), Bson::Document(d)) => {
                    d.get(&f).cloned().unwrap_or(Bson::Undefined)
                }
                _ => Bson::Null,
            }
        }
        "$rand" => {
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1;
            let mut r = XorShift(seed);
            r.next_u64();
            Bson::Double((r.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
        }
        "$setField" | "$unsetField" => {
            let d = match arg {
                Bson::Document(d) => d,
                _ => {
                    return Err(CmdError::new(
                        4161100,
                        format!("{op} only supports an object as its argument"),
                    ))
                }
            };
            let field = match eval_expr(root, d.get("field").unwrap_or(&Bson::Null), vars)? {
                Bson::String(s) => s,
                _ => {
                    return Err(CmdError::new(
                        4161106,
                        format!("{op} requires 'field' to evaluate to type String"),
                    ))
                }
            };
            let input = eval_expr(root, d.get("input").unwrap_or(&Bson::Null), vars)?;
            let value = if op == "$unsetField" {
                Bson::Undefined
            } else {
                eval_expr(root, d.get("value").unwrap_or(&Bson::Null), vars)?
            };
            match input {
                Bson::Document(mut doc) => {
                    if matches!(value, Bson::Undefined) {
                        doc.remove(&field);
                    } else {
                        doc.insert(field, value);
                    }
                    Bson::Document(doc)
                }
                Bson::Null | Bson::Undefined => Bson::Null,
                _ => {
                    return Err(CmdError::new(
                        4161105,
                        format!("{op} requires 'input' to evaluate to type Object"),
                    ))
                }
            }
        }
        "$objectToArray" => match a()?.into_iter().next() {
            Some(Bson::Document(d)) => Bson::Array(
                d.into_iter()
                    .map(|(k, v)| {
                        let mut e = Document::new();
                        e.insert("k", k);
                        e.insert("v", v);
                        Bson::Document(e)
                    })
                    .collect(),
            ),
            _ => Bson::Null,
        },
        "$let" => {
            let d = match arg {
                Bson::Document(d) => d,
                _ => return Err(CmdError::bad_value("$let needs an object")),
            };
            let mut nv = vars.clone();
            if let Ok(vs) = d.get_document("vars") {
                for (k, v) in vs {
                    nv.insert(k, eval_expr(root, v, vars)?);
                }
            }
            eval_expr(root, d.get("in").unwrap_or(&Bson::Null), &nv)?
        }
        _ => {
            return Err(CmdError::new(
                168,
                format!("Unrecognized expression '{op}'"),
            ))
        }
    })
}

/// Accumulator for $group and the array forms of $sum/$avg/$min/$max.
pub struct Accum {
    op: String,
    val: Bson,
    count: i64,
    items: Vec<Bson>,
    set: bool,
}

impl Accum {
    pub fn new(op: &str) -> Self {
        Accum {
            op: op.to_string(),
            val: match op {
                "$sum" | "$avg" => Bson::Int32(0),
                _ => Bson::Null,
            },
            count: 0,
            items: Vec::new(),
            set: false,
        }
    }
    pub fn add(&mut self, v: &Bson) {
        let missing = matches!(v, Bson::Undefined);
        match self.op.as_str() {
            "$sum" | "$avg" if is_number(v) => {
                self.val = num_add(&self.val, v).unwrap_or(Bson::Null);
                self.count += 1;
            }
            "$min" | "$max" if !nullish(v) => {
                let want = if self.op == "$min" {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
                if !self.set || cmp_bson(v, &self.val) == want {
                    self.val = v.clone();
                    self.set = true;
                }
            }
            "$first" if !self.set => {
                self.val = if missing { Bson::Null } else { v.clone() };
                self.set = true;
            }
            "$last" => self.val = if missing { Bson::Null } else { v.clone() },
            "$push" if !missing => self.items.push(v.clone()),
            "$addToSet" if !missing && !self.items.iter().any(|x| bson_eq(x, v)) => {
                self.items.push(v.clone())
            }
            "$count" => self.count += 1,
            _ => {}
        }
    }
    pub fn finish(self) -> Bson {
        match self.op.as_str() {
            "$avg" => {
                if self.count == 0 {
                    Bson::Null
                } else {
                    Bson::Double(as_f64(&self.val).unwrap_or(0.0) / self.count as f64)
                }
            }
            "$push" | "$addToSet" => Bson::Array(self.items),
            "$count" => Bson::Int32(self.count as i32),
            _ => self.val,
        }
    }
}

fn stage_doc<'a>(name: &str, v: &'a Bson) -> CmdResult<&'a Document> {
    match v {
        Bson::Document(d) => Ok(d),
        _ => Err(CmdError::new(
            15942,
            format!("{name} specification must be an object"),
        )),
    }
}

/// Apply a single-document stage (used by pipeline updates and by the
/// stages that map documents one to one).
pub fn apply_simple_stage(doc: Document, stage: &Document) -> CmdResult<Document> {
    let (name, spec) = stage.iter().next().ok_or_else(|| {
        CmdError::new(
            40323,
            "A pipeline stage specification object must contain exactly one field.",
        )
    })?;
    let root = Bson::Document(doc.clone());
    let vars = Document::new();
    match name.as_str() {
        "$set" | "$addFields" => {
            let mut out = doc;
            for (k, v) in stage_doc(name, spec)? {
                let r = eval_expr(&root, v, &vars)?;
                if matches!(r, Bson::Undefined) {
                    crate::update::unset_path(&mut out, k);
                } else {
                    crate::update::set_path(&mut out, k, r)?;
                }
            }
            Ok(out)
        }
        "$unset" => {
            let mut out = doc;
            match spec {
                Bson::String(s) => crate::update::unset_path(&mut out, s),
                Bson::Array(a) => {
                    for f in a {
                        if let Bson::String(s) = f {
                            crate::update::unset_path(&mut out, s);
                        }
                    }
                }
                _ => {
                    return Err(CmdError::new(
                        31002,
                        "$unset specification must be a string or an array",
                    ))
                }
            }
            Ok(out)
        }
        "$project" => crate::query::project(&doc, stage_doc(name, spec)?),
        "$replaceRoot" | "$replaceWith" => {
            let e = if name == "$replaceRoot" {
                stage_doc(name, spec)?
                    .get("newRoot")
                    .cloned()
                    .unwrap_or(Bson::Null)
            } else {
                spec.clone()
            };
            match eval_expr(&root, &e, &vars)? {
                Bson::Document(d) => Ok(d),
                other => Err(CmdError::new(40228, format!("'newRoot' expression must evaluate to an object, but resulting value was: {}. Type of resulting value: '{}'.", crate::bsonutil::short_json(&other), type_name(&other)))),
            }
        }
        _ => Err(CmdError::new(
            40324,
            format!("Unrecognized pipeline stage name: '{name}'"),
        )),
    }
}

/// Simple deterministic PRNG for $sample (no external dependency needed).
pub struct XorShift(pub u64);
impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Run the in-memory stages over `docs`.
pub fn run_pipeline(
    mut docs: Vec<Document>,
    pipeline: &[Document],
    vars: &Document,
) -> CmdResult<Vec<Document>> {
    for stage in pipeline {
        let (name, spec) = stage.iter().next().ok_or_else(|| {
            CmdError::new(
                40323,
                "A pipeline stage specification object must contain exactly one field.",
            )
        })?;
        docs = match name.as_str() {
            "$match" => {
                let f = stage_doc(name, spec)?;
                let mut out = Vec::new();
                for d in docs {
                    if crate::query::matches(&d, f)? {
                        out.push(d);
                    }
                }
                out
            }
            "$set" | "$addFields" | "$unset" | "$project" | "$replaceRoot" | "$replaceWith" => {
                let mut out = Vec::with_capacity(docs.len());
                if vars.is_empty() {
                    for d in docs {
                        out.push(apply_simple_stage(d, stage)?);
                    }
                } else {
                    for d in docs {
                        out.push(apply_stage_with_vars(d, name, spec, vars)?);
                    }
                }
                out
            }
            "$sort" => {
                let s = stage_doc(name, spec)?;
                docs.sort_by(|a, b| crate::query::cmp_by_sort(a, b, s));
                docs
            }
            "$limit" => {
                let n = as_i64(spec).ok_or_else(|| {
                    CmdError::new(15957, "the limit must be specified as a number")
                })?;
                docs.truncate(n.max(0) as usize);
                docs
            }
            "$skip" => {
                let n = as_i64(spec)
                    .ok_or_else(|| CmdError::new(15972, "Argument to $skip must be a number"))?;
                docs.into_iter().skip(n.max(0) as usize).collect()
            }
            "$count" => {
                let f = match spec {
                    Bson::String(s) => s.clone(),
                    _ => {
                        return Err(CmdError::new(
                            40156,
                            "the count field must be a non-empty string",
                        ))
                    }
                };
                if docs.is_empty() {
                    Vec::new()
                } else {
                    let mut d = Document::new();
                    d.insert(f, Bson::Int32(docs.len() as i32));
                    vec![d]
                }
            }
            "$group" => group(docs, stage_doc(name, spec)?, vars)?,
            "$unwind" => {
                let (path, keep_empty) = match spec {
                    Bson::String(s) => (s.clone(), false),
                    Bson::Document(d) => (
                        d.get_str("path").unwrap_or("").to_string(),
                        d.get_bool("preserveNullAndEmptyArrays").unwrap_or(false),
                    ),
                    _ => {
                        return Err(CmdError::new(
                            15981,
                            "expected a string or object as specification for $unwind stage",
                        ))
                    }
                };
                let p = path.trim_start_matches('$');
                let mut out = Vec::new();
                for d in docs {
                    match crate::bsonutil::get_path(&d, p).cloned() {
                        Some(Bson::Array(a)) if !a.is_empty() => {
                            for e in a {
                                let mut n = d.clone();
                                crate::update::set_path(&mut n, p, e)?;
                                out.push(n);
                            }
                        }
                        Some(Bson::Array(_)) | Some(Bson::Null) | None => {
                            if keep_empty {
                                out.push(d)
                            }
                        }
                        Some(_) => out.push(d),
                    }
                }
                out
            }
            "$sample" => {
                let n = stage_doc(name, spec)?
                    .get("size")
                    .and_then(as_i64)
                    .unwrap_or(0)
                    .max(0) as usize;
                let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (docs.len() as u64 + 1));
                // Partial Fisher-Yates: n random distinct documents.
                let len = docs.len();
                for i in 0..n.min(len) {
                    let j = i + (rng.next_u64() as usize) % (len - i);
                    docs.swap(i, j);
                }
                docs.truncate(n);
                docs
            }
            "$bucketAuto" => bucket_auto(docs, stage_doc(name, spec)?)?,
            other => {
                return Err(CmdError::new(
                    40324,
                    format!("Unrecognized pipeline stage name: '{other}'"),
                ))
            }
        };
    }
    Ok(docs)
}

fn apply_stage_with_vars(
    doc: Document,
    name: &str,
    spec: &Bson,
    vars: &Document,
) -> CmdResult<Document> {
    let root = Bson::Document(doc.clone());
    match name {
        "$set" | "$addFields" => {
            let mut out = doc;
            for (k, v) in stage_doc(name, spec)? {
                let r = eval_expr(&root, v, vars)?;
                crate::update::set_path(&mut out, k, r)?;
            }
            Ok(out)
        }
        "$project" => {
            // Only expression-valued fields are computed; numbers/bools are
            // inclusion/exclusion flags handled by `project`.
            let mut computed = Document::new();
            for (k, v) in stage_doc(name, spec)? {
                if matches!(v, Bson::String(_) | Bson::Document(_) | Bson::Array(_)) {
                    computed.insert(k, eval_expr(&root, v, vars)?);
                }
            }
            let mut d = crate::query::project(&doc, &strip_computed(stage_doc(name, spec)?))?;
            for (k, v) in computed {
                if !matches!(v, Bson::Undefined) {
                    d.insert(k, v);
                }
            }
            Ok(d)
        }
        _ => {
            let mut st = Document::new();
            st.insert(name, spec.clone());
            apply_simple_stage(doc, &st)
        }
    }
}

fn strip_computed(p: &Document) -> Document {
    let mut out = Document::new();
    let mut any_incl = false;
    for (k, v) in p {
        match v {
            Bson::String(_) | Bson::Document(_) | Bson::Array(_) => any_incl = true,
            _ => {
                out.insert(k, v.clone());
            }
        }
    }
    if any_incl && out.iter().all(|(k, _)| k == "_id") {
        out.insert("__sim_none__", 1);
    }
    out
}

/// An output field of $group: name, accumulator, input expression.
type GroupField = (String, Accum, Bson);

fn group(docs: Vec<Document>, spec: &Document, vars: &Document) -> CmdResult<Vec<Document>> {
    let id_expr = spec
        .get("_id")
        .ok_or_else(|| CmdError::new(15955, "a group specification must include an _id"))?;
    let mut groups: Vec<(Bson, Vec<GroupField>)> = Vec::new();
    let mut index: std::collections::BTreeMap<crate::bsonutil::Key, usize> = Default::default();
    for d in docs {
        let root = Bson::Document(d);
        let mut key = eval_expr(&root, id_expr, vars)?;
        if matches!(key, Bson::Undefined) {
            key = Bson::Null;
        }
        let gi = match index.get(&crate::bsonutil::Key(key.clone())) {
            Some(i) => *i,
            None => {
                let mut accs = Vec::new();
                for (f, a) in spec {
                    if f == "_id" {
                        continue;
                    }
                    let ad = stage_doc("accumulator", a)?;
                    let (op, e) = ad.iter().next().ok_or_else(|| {
                        CmdError::new(40234, "accumulator must be an object with one field")
                    })?;
                    accs.push((f.clone(), Accum::new(op), e.clone()));
                }
                groups.push((key.clone(), accs));
                index.insert(crate::bsonutil::Key(key), groups.len() - 1);
                groups.len() - 1
            }
        };
        for (_, acc, e) in groups[gi].1.iter_mut() {
            let v = if acc.op == "$count" {
                Bson::Null
            } else {
                eval_expr(&root, e, vars)?
            };
            acc.add(&v);
        }
    }
    Ok(groups
        .into_iter()
        .map(|(k, accs)| {
            let mut d = Document::new();
            d.insert("_id", k);
            for (f, a, _) in accs {
                d.insert(f, a.finish());
            }
            d
        })
        .collect())
}

fn bucket_auto(mut docs: Vec<Document>, spec: &Document) -> CmdResult<Vec<Document>> {
    let group_by = spec.get("groupBy").cloned().unwrap_or(Bson::Null);
    let buckets = spec.get("buckets").and_then(as_i64).unwrap_or(1).max(1) as usize;
    let mut keyed: Vec<(Bson, Document)> = Vec::with_capacity(docs.len());
    for d in docs.drain(..) {
        let k = eval_expr(&Bson::Document(d.clone()), &group_by, &Document::new())?;
        keyed.push((k, d));
    }
    keyed.sort_by(|a, b| cmp_bson(&a.0, &b.0));
    let n = keyed.len();
    let mut out = Vec::new();
    if n == 0 {
        return Ok(out);
    }
    let per = n.div_ceil(buckets);
    let mut i = 0;
    while i < n {
        let mut end = (i + per).min(n);
        // Equal keys never straddle a boundary.
        while end < n && cmp_bson(&keyed[end].0, &keyed[end - 1].0) == Ordering::Equal {
            end += 1;
        }
        let max = if end < n {
            keyed[end].0.clone()
        } else {
            keyed[end - 1].0.clone()
        };
        let mut d = Document::new();
        let mut id = Document::new();
        id.insert("min", keyed[i].0.clone());
        id.insert("max", max);
        d.insert("_id", id);
        d.insert("count", Bson::Int32((end - i) as i32));
        out.push(d);
        i = end;
    }
    Ok(out)
}
