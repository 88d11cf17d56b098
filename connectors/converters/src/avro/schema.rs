//! A small Avro schema model: parsed from the registry's schema text and
//! written back in exactly the JSON form Java's `Schema.toString()` produces.
//!
//! Why our own model instead of `apache_avro::Schema`: the Connect mapping
//! lives in schema *properties* (`connect.type` on an `int`, `connect.name`
//! and `connect.parameters` on primitives), which `apache_avro` drops for
//! primitive types, and the registry identifies schemas by their text, so
//! the text must match Java's property order byte for byte (Confluent's
//! AvroConverter registers `Schema.toString()`).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value as J};

/// Ordered schema properties (`serde_json` keeps insertion order here).
pub type Props = Map<String, J>;

/// The eight Avro primitive types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Primitive {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
}

impl Primitive {
    pub fn name(self) -> &'static str {
        match self {
            Primitive::Null => "null",
            Primitive::Boolean => "boolean",
            Primitive::Int => "int",
            Primitive::Long => "long",
            Primitive::Float => "float",
            Primitive::Double => "double",
            Primitive::Bytes => "bytes",
            Primitive::String => "string",
        }
    }

    fn from_name(name: &str) -> Option<Primitive> {
        Some(match name {
            "null" => Primitive::Null,
            "boolean" => Primitive::Boolean,
            "int" => Primitive::Int,
            "long" => Primitive::Long,
            "float" => Primitive::Float,
            "double" => Primitive::Double,
            "bytes" => Primitive::Bytes,
            "string" => Primitive::String,
            _ => return None,
        })
    }
}

/// A record field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub schema: AvroSchema,
    pub doc: Option<String>,
    /// The field default as Avro JSON (`Some(J::Null)` is a null default).
    pub default: Option<J>,
}

/// A record schema. `name` is the full name (namespace included).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: String,
    pub doc: Option<String>,
    pub fields: Vec<Field>,
    pub props: Props,
}

impl Record {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Enum {
    pub name: String,
    pub doc: Option<String>,
    pub symbols: Vec<String>,
    pub default: Option<String>,
    pub props: Props,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fixed {
    pub name: String,
    pub size: usize,
    pub props: Props,
}

/// An Avro schema. Named types are shared (`Arc`) so that a type used twice
/// is written once and referenced by name afterwards, as Java does.
#[derive(Debug, Clone, PartialEq)]
pub enum AvroSchema {
    Primitive(Primitive, Props),
    Array(Box<AvroSchema>, Props),
    Map(Box<AvroSchema>, Props),
    Union(Vec<AvroSchema>),
    Record(Arc<Record>),
    Enum(Arc<Enum>),
    Fixed(Arc<Fixed>),
    /// A reference to a named type by full name, used for recursive types
    /// while parsing; resolved through [`Names`].
    Ref(String),
}

/// Named types of a parsed schema, by full name.
pub type Names = HashMap<String, AvroSchema>;

impl AvroSchema {
    pub fn primitive(p: Primitive) -> AvroSchema {
        AvroSchema::Primitive(p, Props::new())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, AvroSchema::Primitive(Primitive::Null, _))
    }

    /// The schema's own properties (unions and references have none).
    pub fn props(&self) -> Option<&Props> {
        match self {
            AvroSchema::Primitive(_, p) | AvroSchema::Array(_, p) | AvroSchema::Map(_, p) => {
                Some(p)
            }
            AvroSchema::Record(r) => Some(&r.props),
            AvroSchema::Enum(e) => Some(&e.props),
            AvroSchema::Fixed(f) => Some(&f.props),
            AvroSchema::Union(_) | AvroSchema::Ref(_) => None,
        }
    }

    pub fn prop(&self, key: &str) -> Option<&J> {
        self.props().and_then(|p| p.get(key))
    }

    pub fn prop_str(&self, key: &str) -> Option<&str> {
        self.prop(key).and_then(J::as_str)
    }

    /// The full name of a named type.
    pub fn full_name(&self) -> Option<&str> {
        match self {
            AvroSchema::Record(r) => Some(&r.name),
            AvroSchema::Enum(e) => Some(&e.name),
            AvroSchema::Fixed(f) => Some(&f.name),
            AvroSchema::Ref(n) => Some(n),
            _ => None,
        }
    }

    /// Java's `Schema.getType().getName()`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AvroSchema::Primitive(p, _) => p.name(),
            AvroSchema::Array(..) => "array",
            AvroSchema::Map(..) => "map",
            AvroSchema::Union(_) => "union",
            AvroSchema::Record(_) => "record",
            AvroSchema::Enum(_) => "enum",
            AvroSchema::Fixed(_) => "fixed",
            AvroSchema::Ref(_) => "ref",
        }
    }

    /// Java's `AvroSchema.name()`, used by the record-name subject
    /// strategies: the full name of named types, the type name otherwise.
    pub fn subject_name(&self) -> &str {
        self.full_name().unwrap_or_else(|| self.type_name())
    }

    /// Follows a [`AvroSchema::Ref`] through `names`.
    pub fn resolve<'a>(&'a self, names: &'a Names) -> &'a AvroSchema {
        match self {
            AvroSchema::Ref(n) => names.get(n).unwrap_or(self),
            _ => self,
        }
    }

    /// The schema text exactly as Java's `Schema.toString()` writes it.
    pub fn to_json_string(&self) -> String {
        let mut out = String::with_capacity(256);
        let mut w = JsonWriter {
            out: &mut out,
            written: Vec::new(),
            space: None,
        };
        w.schema(self);
        out
    }
}

/// Splits a full name into (namespace, simple name).
pub fn split_name(full: &str) -> (Option<&str>, &str) {
    match full.rfind('.') {
        Some(i) => (Some(&full[..i]), &full[i + 1..]),
        None => (None, full),
    }
}

/// Writes JSON in the order of Avro Java's `Schema.toJson` (type, name,
/// namespace, doc, fields/symbols/size/items/values, then properties), with
/// later uses of an already written named type written as a name reference.
struct JsonWriter<'a> {
    out: &'a mut String,
    written: Vec<String>,
    /// The enclosing namespace (Java's `Names.space()`).
    space: Option<String>,
}

impl JsonWriter<'_> {
    fn string(&mut self, s: &str) {
        // serde_json escapes exactly what Jackson escapes for schema texts
        // (quotes, backslashes, control characters); it cannot fail on a str.
        self.out
            .push_str(&serde_json::to_string(s).unwrap_or_default());
    }

    fn key(&mut self, k: &str) {
        self.string(k);
        self.out.push(':');
    }

    fn json(&mut self, v: &J) {
        self.out
            .push_str(&serde_json::to_string(v).unwrap_or_default());
    }

    fn props(&mut self, props: &Props) {
        for (k, v) in props {
            self.out.push(',');
            self.key(k);
            self.json(v);
        }
    }

    /// Java's `writeNameRef`: true when the named type was already written.
    fn name_ref(&mut self, full: &str) -> bool {
        if !self.written.iter().any(|n| n == full) {
            return false;
        }
        let (ns, simple) = split_name(full);
        if ns.is_some() && ns == self.space.as_deref() {
            self.string(simple);
        } else {
            self.string(full);
        }
        true
    }

    /// Java's `Name.writeName`: name, then namespace unless inherited.
    fn name(&mut self, full: &str) {
        let (ns, simple) = split_name(full);
        self.out.push(',');
        self.key("name");
        self.string(simple);
        match ns {
            Some(ns) if Some(ns) != self.space.as_deref() => {
                self.out.push(',');
                self.key("namespace");
                self.string(ns);
            }
            None if self.space.is_some() => {
                self.out.push(',');
                self.key("namespace");
                self.string("");
            }
            _ => {}
        }
        self.written.push(full.to_string());
    }

    fn schema(&mut self, s: &AvroSchema) {
        match s {
            AvroSchema::Primitive(p, props) => {
                if props.is_empty() {
                    self.string(p.name());
                } else {
                    self.out.push('{');
                    self.key("type");
                    self.string(p.name());
                    self.props(props);
                    self.out.push('}');
                }
            }
            AvroSchema::Array(items, props) => {
                self.out.push('{');
                self.key("type");
                self.string("array");
                self.out.push(',');
                self.key("items");
                self.schema(items);
                self.props(props);
                self.out.push('}');
            }
            AvroSchema::Map(values, props) => {
                self.out.push('{');
                self.key("type");
                self.string("map");
                self.out.push(',');
                self.key("values");
                self.schema(values);
                self.props(props);
                self.out.push('}');
            }
            AvroSchema::Union(members) => {
                self.out.push('[');
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.schema(m);
                }
                self.out.push(']');
            }
            AvroSchema::Ref(name) => {
                if !self.name_ref(name) {
                    self.string(name);
                }
            }
            AvroSchema::Record(r) => {
                if self.name_ref(&r.name) {
                    return;
                }
                let saved = self.space.clone();
                self.out.push('{');
                self.key("type");
                self.string("record");
                self.name(&r.name);
                self.space = split_name(&r.name).0.map(str::to_string);
                if let Some(doc) = &r.doc {
                    self.out.push(',');
                    self.key("doc");
                    self.string(doc);
                }
                self.out.push(',');
                self.key("fields");
                self.out.push('[');
                for (i, f) in r.fields.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.out.push('{');
                    self.key("name");
                    self.string(&f.name);
                    self.out.push(',');
                    self.key("type");
                    self.schema(&f.schema);
                    if let Some(doc) = &f.doc {
                        self.out.push(',');
                        self.key("doc");
                        self.string(doc);
                    }
                    if let Some(d) = &f.default {
                        self.out.push(',');
                        self.key("default");
                        self.json(d);
                    }
                    self.out.push('}');
                }
                self.out.push(']');
                self.props(&r.props);
                self.out.push('}');
                self.space = saved;
            }
            AvroSchema::Enum(e) => {
                if self.name_ref(&e.name) {
                    return;
                }
                self.out.push('{');
                self.key("type");
                self.string("enum");
                self.name(&e.name);
                if let Some(doc) = &e.doc {
                    self.out.push(',');
                    self.key("doc");
                    self.string(doc);
                }
                self.out.push(',');
                self.key("symbols");
                self.json(&J::Array(
                    e.symbols.iter().map(|s| J::String(s.clone())).collect(),
                ));
                if let Some(d) = &e.default {
                    self.out.push(',');
                    self.key("default");
                    self.string(d);
                }
                self.props(&e.props);
                self.out.push('}');
            }
            AvroSchema::Fixed(f) => {
                if self.name_ref(&f.name) {
                    return;
                }
                self.out.push('{');
                self.key("type");
                self.string("fixed");
                self.name(&f.name);
                self.out.push(',');
                self.key("size");
                self.out.push_str(&f.size.to_string());
                self.props(&f.props);
                self.out.push('}');
            }
        }
    }
}

/// A schema text the parser rejects.
#[derive(Debug, thiserror::Error)]
#[error("invalid Avro schema: {0}")]
pub struct SchemaParseError(pub String);

fn perr(msg: impl Into<String>) -> SchemaParseError {
    SchemaParseError(msg.into())
}

/// Parses a schema text (as the registry returns it) into a schema and the
/// table of its named types.
pub fn parse(text: &str) -> Result<(AvroSchema, Names), SchemaParseError> {
    let json: J = serde_json::from_str(text).map_err(|e| perr(e.to_string()))?;
    let mut names = Names::new();
    let schema = parse_node(&json, None, &mut names, &mut Vec::new())?;
    Ok((schema, names))
}

/// Keys that are part of a type's definition, not properties.
const RESERVED: &[&str] = &[
    "type",
    "name",
    "namespace",
    "doc",
    "fields",
    "symbols",
    "items",
    "values",
    "size",
    "default",
    "aliases",
    "order",
];

fn props_of(obj: &Map<String, J>) -> Props {
    obj.iter()
        .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn full_name(obj: &Map<String, J>, space: Option<&str>) -> Result<String, SchemaParseError> {
    let name = obj
        .get("name")
        .and_then(J::as_str)
        .ok_or_else(|| perr("named type without a name"))?;
    if name.contains('.') {
        return Ok(name.to_string());
    }
    let ns = match obj.get("namespace").and_then(J::as_str) {
        Some(ns) => Some(ns),
        None => space,
    };
    Ok(match ns {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_string(),
    })
}

fn parse_node(
    json: &J,
    space: Option<&str>,
    names: &mut Names,
    defining: &mut Vec<String>,
) -> Result<AvroSchema, SchemaParseError> {
    match json {
        J::String(name) => parse_name_ref(name, space, names, defining),
        J::Array(members) => Ok(AvroSchema::Union(
            members
                .iter()
                .map(|m| parse_node(m, space, names, defining))
                .collect::<Result<_, _>>()?,
        )),
        J::Object(obj) => {
            let ty = obj
                .get("type")
                .ok_or_else(|| perr("schema object without \"type\""))?;
            let ty = match ty {
                J::String(t) => t.as_str(),
                // {"type": {...}} or {"type": [...]}: a wrapped schema.
                other => return parse_node(other, space, names, defining),
            };
            if let Some(p) = Primitive::from_name(ty) {
                return Ok(AvroSchema::Primitive(p, props_of(obj)));
            }
            match ty {
                "array" => {
                    let items = obj
                        .get("items")
                        .ok_or_else(|| perr("array without items"))?;
                    Ok(AvroSchema::Array(
                        Box::new(parse_node(items, space, names, defining)?),
                        props_of(obj),
                    ))
                }
                "map" => {
                    let values = obj
                        .get("values")
                        .ok_or_else(|| perr("map without values"))?;
                    Ok(AvroSchema::Map(
                        Box::new(parse_node(values, space, names, defining)?),
                        props_of(obj),
                    ))
                }
                "record" | "error" => {
                    let name = full_name(obj, space)?;
                    let inner_space = split_name(&name).0.map(str::to_string);
                    defining.push(name.clone());
                    let mut fields = Vec::new();
                    for f in obj
                        .get("fields")
                        .and_then(J::as_array)
                        .ok_or_else(|| perr(format!("record {name} without fields")))?
                    {
                        let fo = f
                            .as_object()
                            .ok_or_else(|| perr("record field is not an object"))?;
                        let fname = fo
                            .get("name")
                            .and_then(J::as_str)
                            .ok_or_else(|| perr("record field without a name"))?;
                        let ftype = fo
                            .get("type")
                            .ok_or_else(|| perr(format!("field {fname} without a type")))?;
                        fields.push(Field {
                            name: fname.to_string(),
                            schema: parse_node(ftype, inner_space.as_deref(), names, defining)?,
                            doc: fo.get("doc").and_then(J::as_str).map(str::to_string),
                            default: fo.get("default").cloned(),
                        });
                    }
                    defining.pop();
                    let schema = AvroSchema::Record(Arc::new(Record {
                        name: name.clone(),
                        doc: obj.get("doc").and_then(J::as_str).map(str::to_string),
                        fields,
                        props: props_of(obj),
                    }));
                    names.insert(name, schema.clone());
                    Ok(schema)
                }
                "enum" => {
                    let name = full_name(obj, space)?;
                    let symbols = obj
                        .get("symbols")
                        .and_then(J::as_array)
                        .ok_or_else(|| perr(format!("enum {name} without symbols")))?
                        .iter()
                        .map(|s| s.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| perr(format!("enum {name} has a non-string symbol")))?;
                    let schema = AvroSchema::Enum(Arc::new(Enum {
                        name: name.clone(),
                        doc: obj.get("doc").and_then(J::as_str).map(str::to_string),
                        symbols,
                        default: obj.get("default").and_then(J::as_str).map(str::to_string),
                        props: props_of(obj),
                    }));
                    names.insert(name, schema.clone());
                    Ok(schema)
                }
                "fixed" => {
                    let name = full_name(obj, space)?;
                    let size = obj
                        .get("size")
                        .and_then(J::as_u64)
                        .ok_or_else(|| perr(format!("fixed {name} without a size")))?;
                    let schema = AvroSchema::Fixed(Arc::new(Fixed {
                        name: name.clone(),
                        size: usize::try_from(size).map_err(|_| perr("fixed size too large"))?,
                        props: props_of(obj),
                    }));
                    names.insert(name, schema.clone());
                    Ok(schema)
                }
                other => parse_name_ref(other, space, names, defining),
            }
        }
        other => Err(perr(format!("unexpected JSON in schema: {other}"))),
    }
}

fn parse_name_ref(
    name: &str,
    space: Option<&str>,
    names: &Names,
    defining: &[String],
) -> Result<AvroSchema, SchemaParseError> {
    if let Some(p) = Primitive::from_name(name) {
        return Ok(AvroSchema::primitive(p));
    }
    let mut candidates = Vec::with_capacity(2);
    if !name.contains('.') {
        if let Some(ns) = space.filter(|s| !s.is_empty()) {
            candidates.push(format!("{ns}.{name}"));
        }
    }
    candidates.push(name.to_string());
    for c in &candidates {
        if let Some(s) = names.get(c) {
            return Ok(s.clone());
        }
        if defining.iter().any(|d| d == c) {
            return Ok(AvroSchema::Ref(c.clone()));
        }
    }
    Err(perr(format!("unknown type name {name}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_write_round_trip_java_text() {
        let text = r#"{"type":"record","name":"A","namespace":"ns","fields":[{"name":"a","type":{"type":"int","connect.type":"int8"}},{"name":"b","type":["null",{"type":"record","name":"B","fields":[{"name":"x","type":"string"}]}],"default":null},{"name":"c","type":"B"},{"name":"d","type":{"type":"record","name":"C","namespace":"other","fields":[{"name":"y","type":"ns.B"}]}}],"connect.name":"ns.A"}"#;
        let (schema, names) = parse(text).unwrap();
        assert_eq!(schema.to_json_string(), text);
        assert!(names.contains_key("ns.B"));
        assert!(names.contains_key("other.C"));
    }

    #[test]
    fn recursive_types_parse_as_references() {
        let text = r#"{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"],"default":null}]}"#;
        let (schema, names) = parse(text).unwrap();
        assert_eq!(schema.to_json_string(), text);
        let AvroSchema::Record(r) = &schema else {
            panic!()
        };
        let AvroSchema::Union(m) = &r.fields[0].schema else {
            panic!()
        };
        assert_eq!(m[1], AvroSchema::Ref("L".into()));
        assert!(matches!(m[1].resolve(&names), AvroSchema::Record(_)));
    }
}
