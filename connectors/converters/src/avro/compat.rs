//! Avro schema resolution check: can data written with `writer` be read
//! with `reader`? (Java's `AvroSchema.isBackwardCompatible`, used by
//! `latest.compatibility.strict` to refuse writing with a latest schema that
//! cannot hold the record's own schema.)
//!
//! Follows the Avro specification's resolution rules: numeric promotions
//! (int→long→float→double), string↔bytes, record fields matched by name
//! (reader fields missing from the writer need a default), enums by symbol
//! (unless the reader has a default symbol), unions branch by branch, named
//! types by unqualified name.

use super::schema::{split_name, AvroSchema, Names, Primitive};

/// The first incompatibility found, as a readable path and reason.
pub fn check(
    reader: &AvroSchema,
    rnames: &Names,
    writer: &AvroSchema,
    wnames: &Names,
) -> Result<(), String> {
    Check {
        rnames,
        wnames,
        seen: Vec::new(),
    }
    .run(reader, writer, "")
}

struct Check<'a> {
    rnames: &'a Names,
    wnames: &'a Names,
    /// (reader, writer) named pairs under comparison, so recursive types end.
    seen: Vec<(String, String)>,
}

fn simple(name: &str) -> &str {
    split_name(name).1
}

impl Check<'_> {
    fn run(&mut self, reader: &AvroSchema, writer: &AvroSchema, path: &str) -> Result<(), String> {
        let reader = reader.resolve(self.rnames);
        let writer = writer.resolve(self.wnames);
        let fail = |why: &str| {
            Err(format!(
                "{}: {why} (reader {}, writer {})",
                if path.is_empty() { "/" } else { path },
                reader.type_name(),
                writer.type_name()
            ))
        };
        if let AvroSchema::Union(ws) = writer {
            for (i, w) in ws.iter().enumerate() {
                self.run(reader, w, &format!("{path}/{i}"))?;
            }
            return Ok(());
        }
        if let AvroSchema::Union(rs) = reader {
            let saved = self.seen.clone();
            for r in rs {
                if self.run(r, writer, path).is_ok() {
                    return Ok(());
                }
                self.seen = saved.clone();
            }
            return fail("no branch of the reader union reads the writer type");
        }
        match (reader, writer) {
            (AvroSchema::Primitive(r, _), AvroSchema::Primitive(w, _)) => {
                use Primitive as P;
                let ok = r == w
                    || matches!(
                        (w, r),
                        (P::Int, P::Long | P::Float | P::Double)
                            | (P::Long, P::Float | P::Double)
                            | (P::Float, P::Double)
                            | (P::String, P::Bytes)
                            | (P::Bytes, P::String)
                    );
                if ok {
                    Ok(())
                } else {
                    fail("types differ")
                }
            }
            (AvroSchema::Array(r, _), AvroSchema::Array(w, _)) => {
                self.run(r, w, &format!("{path}/items"))
            }
            (AvroSchema::Map(r, _), AvroSchema::Map(w, _)) => {
                self.run(r, w, &format!("{path}/values"))
            }
            (AvroSchema::Fixed(r), AvroSchema::Fixed(w)) => {
                if simple(&r.name) == simple(&w.name) && r.size == w.size {
                    Ok(())
                } else {
                    fail("fixed name or size differs")
                }
            }
            (AvroSchema::Enum(r), AvroSchema::Enum(w)) => {
                if simple(&r.name) != simple(&w.name) {
                    return fail("enum names differ");
                }
                match w.symbols.iter().find(|s| !r.symbols.contains(s)) {
                    Some(s) if r.default.is_none() => {
                        fail(&format!("reader enum lacks symbol {s}"))
                    }
                    _ => Ok(()),
                }
            }
            (AvroSchema::Record(r), AvroSchema::Record(w)) => {
                if simple(&r.name) != simple(&w.name) {
                    return fail("record names differ");
                }
                let key = (r.name.clone(), w.name.clone());
                if self.seen.contains(&key) {
                    return Ok(());
                }
                self.seen.push(key);
                for rf in &r.fields {
                    let fpath = format!("{path}/{}", rf.name);
                    match w.field(&rf.name) {
                        Some(wf) => self.run(&rf.schema, &wf.schema, &fpath)?,
                        None if rf.default.is_some() => {}
                        None => {
                            return Err(format!(
                            "{fpath}: reader field has no default and the writer has no such field"
                        ))
                        }
                    }
                }
                Ok(())
            }
            _ => fail("types differ"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::schema::parse;
    use super::*;

    fn compatible(reader: &str, writer: &str) -> Result<(), String> {
        let (r, rn) = parse(reader).unwrap();
        let (w, wn) = parse(writer).unwrap();
        check(&r, &rn, &w, &wn)
    }

    #[test]
    fn resolution_rules() {
        let rec = |fields: &str| format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#);
        // Promotion, added field with default, optional widening.
        assert!(compatible(
            &rec(r#"{"name":"a","type":"long"},{"name":"b","type":"string","default":"x"}"#),
            &rec(r#"{"name":"a","type":"int"}"#)
        )
        .is_ok());
        assert!(compatible(
            &rec(r#"{"name":"a","type":["null","int"]}"#),
            &rec(r#"{"name":"a","type":"int"}"#)
        )
        .is_ok());
        // Narrowing, a new required field, an optional writer into a required reader.
        assert!(compatible(
            &rec(r#"{"name":"a","type":"int"}"#),
            &rec(r#"{"name":"a","type":"long"}"#)
        )
        .is_err());
        let err = compatible(
            &rec(r#"{"name":"a","type":"int"},{"name":"b","type":"int"}"#),
            &rec(r#"{"name":"a","type":"int"}"#),
        )
        .unwrap_err();
        assert!(err.contains("/b"), "{err}");
        assert!(compatible(
            &rec(r#"{"name":"a","type":"int"}"#),
            &rec(r#"{"name":"a","type":["null","int"]}"#)
        )
        .is_err());
        // Enums and recursion.
        let e = |syms: &str| format!(r#"{{"type":"enum","name":"E","symbols":[{syms}]}}"#);
        assert!(compatible(&e(r#""A","B""#), &e(r#""A""#)).is_ok());
        assert!(compatible(&e(r#""A""#), &e(r#""A","B""#)).is_err());
        let list = r#"{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"],"default":null}]}"#;
        assert!(compatible(list, list).is_ok());
    }
}
