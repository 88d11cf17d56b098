//! The inference lattice: a [`DocShape`] is the union of every document of
//! a collection seen so far, and [`FieldShape::merge`] only ever moves it up
//! the lattice, one Avro-legal step at a time (see the module comment of
//! [`crate::schema`] for the rules and why each step is backward compatible).

use std::sync::Arc;

use connect_api::data::{logical, Schema, SchemaBuilder, SchemaRef, SchemaType, Struct, Value};
use connect_converters::avro::data::{AvroDataConfig, AVRO_TYPE_UNION};
use mongodb::bson::{spec::BinarySubtype, Bson, Document};

/// Connect names of the fixed representations (Avro full names).
pub const OBJECT_ID: &str = "io.connectd.mongodb.ObjectId";
pub const DECIMAL128: &str = "io.connectd.mongodb.Decimal128";
pub const UUID: &str = "io.connectd.mongodb.UUID";
pub const BSON_TIMESTAMP: &str = "io.connectd.mongodb.BsonTimestamp";
pub const BSON_REGEX: &str = "io.connectd.mongodb.BsonRegex";
pub const EXTENDED_JSON: &str = "io.connectd.mongodb.ExtendedJson";
/// Record parameter holding a field's original (BSON) name when the Avro
/// name had to differ; `connect.parameters` carries it through the registry.
pub const FIELD_NAME_PARAM: &str = "io.connectd.mongodb.field.";
/// Path segment of an array's element records (no sanitized field name
/// can be equal to it, see [`segment`]).
const ITEMS: &str = "__items";

/// One representation a field can take. Each maps to one Avro union member.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Boolean,
    Int32,
    Int64,
    Double,
    String,
    ObjectId,
    Decimal128,
    Uuid,
    DateTime,
    Binary,
    Timestamp,
    Regex,
    /// The fallback: canonical extended JSON of the value.
    Json,
    Document(DocShape),
    Array(Box<FieldShape>),
}

/// Kinds sharing a slot share an Avro type (or union member name), so a
/// union can hold at most one kind per slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Boolean,
    Number,
    String,
    Bytes,
    Timestamp,
    Regex,
    Json,
    Document,
    Array,
}

impl Kind {
    fn slot(&self) -> Slot {
        match self {
            Kind::Boolean => Slot::Boolean,
            Kind::Int32 | Kind::Int64 | Kind::Double | Kind::DateTime => Slot::Number,
            Kind::String | Kind::ObjectId | Kind::Decimal128 | Kind::Uuid => Slot::String,
            Kind::Binary => Slot::Bytes,
            Kind::Timestamp => Slot::Timestamp,
            Kind::Regex => Slot::Regex,
            Kind::Json => Slot::Json,
            Kind::Document(_) => Slot::Document,
            Kind::Array(_) => Slot::Array,
        }
    }

    /// Rank in the numeric promotion chain int → long → double.
    fn numeric_rank(&self) -> Option<u8> {
        match self {
            Kind::Int32 => Some(0),
            Kind::Int64 => Some(1),
            Kind::Double => Some(2),
            _ => None,
        }
    }
}

/// The kind of a scalar BSON value (`None` for null, documents and arrays).
pub fn scalar_kind(v: &Bson) -> Option<Kind> {
    Some(match v {
        Bson::Null | Bson::Undefined | Bson::Document(_) | Bson::Array(_) => return None,
        Bson::Boolean(_) => Kind::Boolean,
        Bson::Int32(_) => Kind::Int32,
        Bson::Int64(_) => Kind::Int64,
        Bson::Double(_) => Kind::Double,
        Bson::String(_) | Bson::Symbol(_) => Kind::String,
        Bson::ObjectId(_) => Kind::ObjectId,
        Bson::Decimal128(_) => Kind::Decimal128,
        Bson::Binary(b) if b.subtype == BinarySubtype::Uuid && b.bytes.len() == 16 => Kind::Uuid,
        Bson::Binary(_) => Kind::Binary,
        Bson::DateTime(_) => Kind::DateTime,
        Bson::Timestamp(_) => Kind::Timestamp,
        Bson::RegularExpression(_) => Kind::Regex,
        Bson::MinKey
        | Bson::MaxKey
        | Bson::JavaScriptCode(_)
        | Bson::JavaScriptCodeWithScope(_)
        | Bson::DbPointer(_) => Kind::Json,
    })
}

/// The representations a field has taken; empty while only nulls were seen.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldShape {
    pub members: Vec<Kind>,
}

/// One field of a document record.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldEntry {
    /// The field's name in MongoDB.
    pub bson: String,
    /// Its Avro name: [`sanitize`]d, unique within the record.
    pub avro: String,
    pub shape: FieldShape,
}

/// A document record: its Avro full name (stable per path) and fields in
/// the order first seen.
#[derive(Debug, Clone, PartialEq)]
pub struct DocShape {
    pub name: String,
    pub fields: Vec<FieldEntry>,
}

/// An Avro name for a MongoDB field name: characters outside
/// `[A-Za-z0-9_]` become `_`, and a leading digit (or an empty name) gets a
/// `_` prefix.
pub fn sanitize(name: &str) -> String {
    connect_converters::avro::avro_name(name)
}

const AVRO_RESERVED: &[&str] = &[
    "null", "boolean", "int", "long", "float", "double", "bytes", "string", "record", "enum",
    "array", "map", "fixed", "union",
];

/// A record-name segment for an Avro field name: never an Avro type name,
/// never one of the fixed records' short names, never [`ITEMS`].
fn segment(avro_field: &str) -> String {
    let reserved = AVRO_RESERVED.contains(&avro_field)
        || ["BsonTimestamp", "BsonRegex", "ExtendedJson", ITEMS].contains(&avro_field);
    if reserved {
        format!("{avro_field}_")
    } else {
        avro_field.to_string()
    }
}

impl FieldShape {
    /// Folds one value in; true when the shape (hence the schema) changed.
    /// `base` is the record name a document at this position gets.
    pub fn merge(&mut self, v: &Bson, base: &str) -> bool {
        match v {
            Bson::Null | Bson::Undefined => false,
            Bson::Document(d) => {
                if let Some(Kind::Document(ds)) = self.member_mut(Slot::Document) {
                    return ds.merge(d);
                }
                let mut ds = DocShape::new(base.to_string());
                ds.merge(d);
                self.members.push(Kind::Document(ds));
                true
            }
            Bson::Array(items) => {
                let items_base = format!("{base}.{ITEMS}");
                if let Some(Kind::Array(shape)) = self.member_mut(Slot::Array) {
                    let mut changed = false;
                    for item in items {
                        changed |= shape.merge(item, &items_base);
                    }
                    return changed;
                }
                let mut shape = FieldShape::default();
                for item in items {
                    shape.merge(item, &items_base);
                }
                self.members.push(Kind::Array(Box::new(shape)));
                true
            }
            scalar => {
                let Some(k) = scalar_kind(scalar) else {
                    return false;
                };
                self.merge_kind(k)
            }
        }
    }

    fn merge_kind(&mut self, k: Kind) -> bool {
        let slot = k.slot();
        let Some(m) = self.member_mut(slot) else {
            self.members.push(k);
            return true;
        };
        if *m == k {
            return false;
        }
        if let (Some(have), Some(new)) = (m.numeric_rank(), k.numeric_rank()) {
            if new > have {
                *m = k;
                return true;
            }
            return false;
        }
        // Same Avro type, different meaning (a date where numbers were, an
        // ObjectId where strings were): the value goes to the fallback.
        if self.member_mut(Slot::Json).is_some() {
            return false;
        }
        self.members.push(Kind::Json);
        true
    }

    fn member_mut(&mut self, slot: Slot) -> Option<&mut Kind> {
        self.members.iter_mut().find(|m| m.slot() == slot)
    }

    /// The member a value is written to (its index), after [`Self::merge`].
    fn member_for(&self, v: &Bson) -> Option<usize> {
        let pos = |slot: Slot| self.members.iter().position(|m| m.slot() == slot);
        let json = || pos(Slot::Json);
        match v {
            Bson::Null | Bson::Undefined => None,
            Bson::Document(_) => pos(Slot::Document).or_else(json),
            Bson::Array(_) => pos(Slot::Array).or_else(json),
            scalar => {
                let k = scalar_kind(scalar)?;
                match pos(k.slot()) {
                    Some(i) => {
                        let m = &self.members[i];
                        let fits = *m == k
                            || matches!((m.numeric_rank(), k.numeric_rank()), (Some(a), Some(b)) if a >= b);
                        if fits {
                            Some(i)
                        } else {
                            json()
                        }
                    }
                    None => json(),
                }
            }
        }
    }
}

impl FieldShape {
    /// Folds another shape of the same field in (the union of both), by the
    /// rules [`Self::merge`] applies to values: a member of a new slot is
    /// added, numbers widen to the higher rank, records and arrays merge
    /// recursively, and a kind of an occupied slot with another meaning adds
    /// the fallback. `self`'s members keep their kinds and order, so when
    /// `self` is a registered version the result reads its data. `base` is
    /// the record name of a document at this position. True when changed.
    pub fn merge_shape(&mut self, other: &FieldShape, base: &str) -> bool {
        let mut changed = false;
        for k in &other.members {
            changed |= self.merge_member(k, base);
        }
        changed
    }

    fn merge_member(&mut self, k: &Kind, base: &str) -> bool {
        let Some(m) = self.member_mut(k.slot()) else {
            let mut k = k.clone();
            rebase_kind(&mut k, base);
            self.members.push(k);
            return true;
        };
        match (m, k) {
            (Kind::Document(mine), Kind::Document(theirs)) => mine.merge_shape(theirs),
            (Kind::Array(mine), Kind::Array(theirs)) => {
                mine.merge_shape(theirs, &format!("{base}.{ITEMS}"))
            }
            _ => self.merge_kind(k.clone()),
        }
    }

    /// Renames the records under this field for its (new) position `base`.
    fn rebase(&mut self, base: &str) {
        for m in &mut self.members {
            rebase_kind(m, base);
        }
    }
}

fn rebase_kind(k: &mut Kind, base: &str) {
    match k {
        Kind::Document(ds) => ds.rebase(base.to_string()),
        Kind::Array(items) => items.rebase(&format!("{base}.{ITEMS}")),
        _ => {}
    }
}

impl DocShape {
    pub fn new(name: String) -> Self {
        DocShape {
            name,
            fields: Vec::new(),
        }
    }

    /// Folds one document in; true when the shape changed. A field seen
    /// only as null (or absent) adds nothing: absent and null read the same.
    pub fn merge(&mut self, d: &Document) -> bool {
        let mut changed = false;
        // Documents of a collection mostly list their fields in one order:
        // try the field after the previous match before scanning.
        let mut hint = 0;
        for (k, v) in d {
            let found = match self.fields.get(hint) {
                Some(f) if f.bson == *k => Some(hint),
                _ => self.fields.iter().position(|f| f.bson == *k),
            };
            if let Some(i) = found {
                hint = i + 1;
                // Only documents and arrays need a record name; building it
                // for every scalar would allocate per field per document.
                let base = if matches!(v, Bson::Document(_) | Bson::Array(_)) {
                    format!("{}.{}", self.name, segment(&self.fields[i].avro))
                } else {
                    String::new()
                };
                changed |= self.fields[i].shape.merge(v, &base);
                continue;
            }
            let avro = self.unique_avro_name(k);
            let base = format!("{}.{}", self.name, segment(&avro));
            let mut shape = FieldShape::default();
            if shape.merge(v, &base) {
                self.fields.push(FieldEntry {
                    bson: k.clone(),
                    avro,
                    shape,
                });
                changed = true;
            }
        }
        changed
    }

    /// Folds another shape of the same collection in: the union of the
    /// fields (matched by their MongoDB name), each merged by
    /// [`FieldShape::merge_shape`]. `self`'s names, field order and members
    /// win, and `other`'s new fields are appended (renamed when their Avro
    /// name is taken), so merging into the registry's latest version gives
    /// a version that reads it: the BACKWARD rules of the module comment.
    /// Idempotent (`a.merge_shape(&a)` changes nothing); the result of
    /// `a ∪ b` and `b ∪ a` has the same fields and members, in another order,
    /// except where both hold one Avro type with two meanings (a date and a
    /// number): the side merged into keeps its kind and the other's values
    /// go to the fallback. True when `self` changed.
    pub fn merge_shape(&mut self, other: &DocShape) -> bool {
        let mut changed = false;
        for f in &other.fields {
            if f.shape.members.is_empty() {
                continue;
            }
            if let Some(i) = self.fields.iter().position(|e| e.bson == f.bson) {
                let base = format!("{}.{}", self.name, segment(&self.fields[i].avro));
                changed |= self.fields[i].shape.merge_shape(&f.shape, &base);
                continue;
            }
            let avro = if self.fields.iter().any(|e| e.avro == f.avro) {
                self.unique_avro_name(&f.bson)
            } else {
                f.avro.clone()
            };
            let mut shape = f.shape.clone();
            shape.rebase(&format!("{}.{}", self.name, segment(&avro)));
            self.fields.push(FieldEntry {
                bson: f.bson.clone(),
                avro,
                shape,
            });
            changed = true;
        }
        changed
    }

    /// Gives this record the full name `name` and its nested records the
    /// names derived from it, as inference would have named them there.
    fn rebase(&mut self, name: String) {
        for f in &mut self.fields {
            f.shape.rebase(&format!("{name}.{}", segment(&f.avro)));
        }
        self.name = name;
    }

    fn unique_avro_name(&self, bson: &str) -> String {
        let base = sanitize(bson);
        let taken = |n: &str| self.fields.iter().any(|f| f.avro == n);
        if !taken(&base) {
            return base;
        }
        (2..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| !taken(n))
            .unwrap_or(base)
    }

    /// The Connect struct schema (required; nested records are optional).
    pub fn connect_schema(&self) -> SchemaRef {
        Arc::new(self.struct_builder().build_schema())
    }

    fn struct_builder(&self) -> SchemaBuilder {
        let mut b = SchemaBuilder::struct_().name(self.name.clone());
        for f in &self.fields {
            if f.avro != f.bson {
                b = b.parameter(format!("{FIELD_NAME_PARAM}{}", f.avro), f.bson.clone());
            }
        }
        for f in &self.fields {
            b = b.field(f.avro.clone(), f.shape.connect_schema());
        }
        b
    }

    /// The Connect value of a document under this shape (after merging it).
    pub fn encode(&self, schema: &SchemaRef, d: &Document) -> Value {
        let mut s = Struct::new(schema.clone());
        for (f, cf) in self.fields.iter().zip(schema.fields.iter()) {
            if let Some(v) = d.get(&f.bson) {
                s.values[cf.index] = f.shape.encode(&cf.schema, v);
            }
        }
        Value::Struct(s)
    }
}

fn fixed_struct(name: &str, fields: &[(&str, SchemaRef)]) -> SchemaBuilder {
    fields
        .iter()
        .fold(SchemaBuilder::struct_().name(name), |b, (n, s)| {
            b.field(*n, s.clone())
        })
}

fn kind_schema(k: &Kind) -> SchemaRef {
    let b = match k {
        Kind::Boolean => SchemaBuilder::boolean(),
        Kind::Int32 => SchemaBuilder::int32(),
        Kind::Int64 => SchemaBuilder::int64(),
        Kind::Double => SchemaBuilder::float64(),
        Kind::String => SchemaBuilder::string(),
        Kind::ObjectId => SchemaBuilder::string().name(OBJECT_ID),
        Kind::Decimal128 => SchemaBuilder::string().name(DECIMAL128),
        Kind::Uuid => SchemaBuilder::string().name(UUID),
        Kind::DateTime => logical::timestamp(),
        Kind::Binary => SchemaBuilder::bytes(),
        Kind::Timestamp => {
            let l = Schema::primitive(SchemaType::Int64, false);
            fixed_struct(BSON_TIMESTAMP, &[("t", l.clone()), ("i", l)])
        }
        Kind::Regex => {
            let s = Schema::primitive(SchemaType::String, false);
            fixed_struct(BSON_REGEX, &[("pattern", s.clone()), ("options", s)])
        }
        Kind::Json => fixed_struct(
            EXTENDED_JSON,
            &[("json", Schema::primitive(SchemaType::String, false))],
        ),
        Kind::Document(ds) => ds.struct_builder(),
        Kind::Array(items) => SchemaBuilder::array(items.connect_schema()),
    };
    b.optional().build()
}

impl FieldShape {
    /// One member: that member's optional schema; otherwise an optional
    /// Connect union (`io.confluent.connect.avro.Union`), which AvroData
    /// writes as the Avro union `["null", member, ...]`.
    pub fn connect_schema(&self) -> SchemaRef {
        if self.members.len() == 1 {
            return kind_schema(&self.members[0]);
        }
        let data = AvroDataConfig::default();
        let mut b = SchemaBuilder::struct_().name(AVRO_TYPE_UNION).optional();
        for m in &self.members {
            let s = kind_schema(m);
            b = b.field(data.union_member_field_name_connect(&s), s);
        }
        b.build()
    }

    /// The Connect value of `v` under this shape and its schema.
    pub fn encode(&self, schema: &SchemaRef, v: &Bson) -> Value {
        let Some(i) = self.member_for(v) else {
            return Value::Null;
        };
        if self.members.len() == 1 {
            return encode_kind(&self.members[0], schema, v);
        }
        let member = &schema.fields[i];
        let mut s = Struct::new(schema.clone());
        s.values[i] = encode_kind(&self.members[i], &member.schema, v);
        Value::Struct(s)
    }
}

/// Canonical extended JSON (v2) of a value: the fallback representation.
pub fn extended_json(v: &Bson) -> String {
    v.clone().into_canonical_extjson().to_string()
}

fn encode_kind(k: &Kind, schema: &SchemaRef, v: &Bson) -> Value {
    let json = |schema: &SchemaRef| {
        let mut s = Struct::new(schema.clone());
        s.values[0] = Value::String(extended_json(v));
        Value::Struct(s)
    };
    match (k, v) {
        (Kind::Json, _) => json(schema),
        (Kind::Boolean, Bson::Boolean(b)) => Value::Boolean(*b),
        (Kind::Int32, Bson::Int32(n)) => Value::Int32(*n),
        (Kind::Int64, Bson::Int32(n)) => Value::Int64(i64::from(*n)),
        (Kind::Int64, Bson::Int64(n)) => Value::Int64(*n),
        (Kind::Double, Bson::Int32(n)) => Value::Float64(f64::from(*n)),
        // Avro's own long → double promotion: exact up to 2^53.
        (Kind::Double, Bson::Int64(n)) => Value::Float64(*n as f64),
        (Kind::Double, Bson::Double(n)) => Value::Float64(*n),
        (Kind::String, Bson::String(s) | Bson::Symbol(s)) => Value::String(s.clone()),
        (Kind::ObjectId, Bson::ObjectId(o)) => Value::String(o.to_hex()),
        (Kind::Decimal128, Bson::Decimal128(d)) => Value::String(d.to_string()),
        (Kind::Uuid, Bson::Binary(b)) => Value::String(uuid_string(&b.bytes)),
        (Kind::DateTime, Bson::DateTime(d)) => Value::Timestamp(d.timestamp_millis()),
        (Kind::Binary, Bson::Binary(b)) => Value::Bytes(b.bytes.clone()),
        (Kind::Timestamp, Bson::Timestamp(t)) => {
            let mut s = Struct::new(schema.clone());
            s.values[0] = Value::Int64(i64::from(t.time));
            s.values[1] = Value::Int64(i64::from(t.increment));
            Value::Struct(s)
        }
        (Kind::Regex, Bson::RegularExpression(r)) => {
            let mut s = Struct::new(schema.clone());
            s.values[0] = Value::String(r.pattern.clone());
            s.values[1] = Value::String(r.options.clone());
            Value::Struct(s)
        }
        (Kind::Document(ds), Bson::Document(d)) => ds.encode(schema, d),
        (Kind::Array(items), Bson::Array(a)) => {
            let Some(item_schema) = schema.value_schema.as_ref() else {
                return Value::Null;
            };
            Value::Array(a.iter().map(|x| items.encode(item_schema, x)).collect())
        }
        // member_for never picks a member that does not fit; a null keeps
        // the record writable should that ever change.
        _ => Value::Null,
    }
}

/// RFC 4122 text form of 16 bytes.
pub fn uuid_string(b: &[u8]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    if h.len() != 32 {
        return h;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Why a registry schema cannot seed the inference.
#[derive(Debug, Clone, PartialEq)]
pub struct NotInferred(pub String);

/// Rebuilds a shape from the Connect form of a schema this module wrote
/// (read back from the registry), so inference continues from it.
pub fn doc_from_connect(s: &Schema) -> Result<DocShape, NotInferred> {
    if s.schema_type != SchemaType::Struct {
        return Err(NotInferred(format!(
            "expected a record, found {:?}",
            s.schema_type
        )));
    }
    let name = s.name.clone().unwrap_or_default();
    let mut fields = Vec::with_capacity(s.fields.len());
    for f in &s.fields {
        let bson = s
            .parameters
            .get(&format!("{FIELD_NAME_PARAM}{}", f.name))
            .cloned()
            .unwrap_or_else(|| f.name.clone());
        fields.push(FieldEntry {
            bson,
            avro: f.name.clone(),
            shape: field_from_connect(&f.schema)?,
        });
    }
    Ok(DocShape { name, fields })
}

fn field_from_connect(s: &Schema) -> Result<FieldShape, NotInferred> {
    if s.schema_type == SchemaType::Struct && s.name.as_deref() == Some(AVRO_TYPE_UNION) {
        let members = s
            .fields
            .iter()
            .map(|f| kind_from_connect(&f.schema))
            .collect::<Result<_, _>>()?;
        return Ok(FieldShape { members });
    }
    Ok(FieldShape {
        members: vec![kind_from_connect(s)?],
    })
}

fn kind_from_connect(s: &Schema) -> Result<Kind, NotInferred> {
    let name = s.name.as_deref();
    Ok(match (s.schema_type, name) {
        (SchemaType::Boolean, _) => Kind::Boolean,
        (SchemaType::Int32, None) => Kind::Int32,
        (SchemaType::Int64, Some(logical::TIMESTAMP)) => Kind::DateTime,
        (SchemaType::Int64, None) => Kind::Int64,
        (SchemaType::Float64, None) => Kind::Double,
        (SchemaType::String, Some(OBJECT_ID)) => Kind::ObjectId,
        (SchemaType::String, Some(DECIMAL128)) => Kind::Decimal128,
        (SchemaType::String, Some(UUID)) => Kind::Uuid,
        (SchemaType::String, None) => Kind::String,
        (SchemaType::Bytes, None) => Kind::Binary,
        (SchemaType::Struct, Some(BSON_TIMESTAMP)) => Kind::Timestamp,
        (SchemaType::Struct, Some(BSON_REGEX)) => Kind::Regex,
        (SchemaType::Struct, Some(EXTENDED_JSON)) => Kind::Json,
        (SchemaType::Struct, Some(AVRO_TYPE_UNION)) if s.fields.is_empty() => {
            return Err(NotInferred("an empty union outside an array".into()))
        }
        (SchemaType::Struct, _) => Kind::Document(doc_from_connect(s)?),
        (SchemaType::Array, _) => {
            let items = s
                .value_schema
                .as_ref()
                .ok_or_else(|| NotInferred("an array without items".into()))?;
            let shape = if items.schema_type == SchemaType::Struct
                && items.name.as_deref() == Some(AVRO_TYPE_UNION)
                && items.fields.is_empty()
            {
                FieldShape::default()
            } else {
                field_from_connect(items)?
            };
            Kind::Array(Box::new(shape))
        }
        (t, n) => {
            return Err(NotInferred(format!(
                "type {t:?}{} is not one connectd infers",
                n.map(|n| format!(" named {n}")).unwrap_or_default()
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, oid::ObjectId, Binary, Decimal128, Regex, Timestamp};

    fn shape_of(docs: &[Document]) -> DocShape {
        let mut s = DocShape::new("t.c".into());
        for d in docs {
            s.merge(d);
        }
        s
    }

    fn members(s: &DocShape, f: &str) -> Vec<Kind> {
        s.fields
            .iter()
            .find(|e| e.bson == f)
            .map(|e| e.shape.members.clone())
            .unwrap_or_default()
    }

    #[test]
    fn numbers_widen_int_long_double_and_never_narrow() {
        let s = shape_of(&[doc! {"n": 1}]);
        assert_eq!(members(&s, "n"), vec![Kind::Int32]);
        let s = shape_of(&[doc! {"n": 1}, doc! {"n": 2_i64}]);
        assert_eq!(members(&s, "n"), vec![Kind::Int64]);
        let s = shape_of(&[doc! {"n": 1}, doc! {"n": 2.5}, doc! {"n": 3_i64}]);
        assert_eq!(members(&s, "n"), vec![Kind::Double]);
    }

    #[test]
    fn same_avro_type_other_meaning_falls_back_to_json() {
        let s = shape_of(&[
            doc! {"a": 1_i64},
            doc! {"a": mongodb::bson::DateTime::from_millis(5)},
        ]);
        assert_eq!(members(&s, "a"), vec![Kind::Int64, Kind::Json]);
        let s = shape_of(&[doc! {"a": "x"}, doc! {"a": ObjectId::new()}]);
        assert_eq!(members(&s, "a"), vec![Kind::String, Kind::Json]);
    }

    #[test]
    fn scalar_then_document_then_array_become_union_members() {
        let s = shape_of(&[
            doc! {"a": 1},
            doc! {"a": {"b": "x"}},
            doc! {"a": [1, 2]},
            doc! {"a": "s"},
        ]);
        let m = members(&s, "a");
        assert_eq!(m.len(), 4);
        assert_eq!(m[0], Kind::Int32);
        assert!(matches!(&m[1], Kind::Document(d) if d.name == "t.c.a" && d.fields[0].bson == "b"));
        assert!(matches!(&m[2], Kind::Array(items) if items.members == vec![Kind::Int32]));
        assert_eq!(m[3], Kind::String);
    }

    #[test]
    fn nulls_add_nothing_and_new_fields_append() {
        let mut s = shape_of(&[doc! {"a": 1}]);
        assert!(!s.merge(&doc! {"a": null, "b": null}));
        assert!(s.merge(&doc! {"b": true}));
        assert_eq!(
            s.fields.iter().map(|f| f.avro.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(!s.merge(&doc! {"b": false, "a": 7}));
    }

    #[test]
    fn mixed_arrays_get_a_union_of_element_kinds() {
        let s = shape_of(&[doc! {"xs": [1, "a", {"k": 1}, null]}]);
        let Kind::Array(items) = &members(&s, "xs")[0] else {
            panic!("not an array")
        };
        assert_eq!(items.members.len(), 3);
        let Kind::Document(d) = &items.members[2] else {
            panic!("no document member")
        };
        assert_eq!(d.name, "t.c.xs.__items");
    }

    #[test]
    fn names_are_sanitized_and_unique() {
        let s = shape_of(&[doc! {"a-b": 1, "a_b": 2, "1x": 3, "é": 4}]);
        let names: Vec<_> = s.fields.iter().map(|f| f.avro.as_str()).collect();
        assert_eq!(names, ["a_b", "a_b_2", "_1x", "_"]);
        let schema = s.connect_schema();
        assert_eq!(
            schema
                .parameters
                .get("io.connectd.mongodb.field.a_b")
                .map(String::as_str),
            Some("a-b")
        );
        assert_eq!(segment("int"), "int_");
    }

    #[test]
    fn each_bson_type_maps_to_its_documented_representation() {
        let oid = ObjectId::parse_str("65f0c0ffee0000000000a001").expect("oid");
        let uuid = Binary {
            subtype: BinarySubtype::Uuid,
            bytes: (0u8..16).collect(),
        };
        let d = doc! {
            "oid": oid,
            "dec": Decimal128::from_bytes([0; 16]),
            "date": mongodb::bson::DateTime::from_millis(1_700_000_000_123),
            "ts": Timestamp { time: 7, increment: 9 },
            "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2] },
            "uuid": uuid,
            "re": Regex { pattern: "^a".into(), options: "i".into() },
            "min": Bson::MinKey,
            "max": Bson::MaxKey,
            "b": true,
            "sym": Bson::Symbol("s".into()),
        };
        let s = shape_of(std::slice::from_ref(&d));
        let schema = s.connect_schema();
        let Value::Struct(v) = s.encode(&schema, &d) else {
            panic!("not a struct")
        };
        let field = |n: &str| v.get(n).cloned().expect("field");
        let sname = |n: &str| schema.field(n).and_then(|f| f.schema.name.clone());
        assert_eq!(
            field("oid"),
            Value::String("65f0c0ffee0000000000a001".into())
        );
        assert_eq!(sname("oid").as_deref(), Some(OBJECT_ID));
        assert_eq!(sname("dec").as_deref(), Some(DECIMAL128));
        assert!(matches!(field("dec"), Value::String(s) if s.starts_with('0')));
        assert_eq!(field("date"), Value::Timestamp(1_700_000_000_123));
        assert_eq!(sname("date").as_deref(), Some(logical::TIMESTAMP));
        let Value::Struct(ts) = field("ts") else {
            panic!("ts")
        };
        assert_eq!(ts.get("t"), Some(&Value::Int64(7)));
        assert_eq!(ts.get("i"), Some(&Value::Int64(9)));
        assert_eq!(field("bin"), Value::Bytes(vec![1, 2]));
        assert_eq!(
            field("uuid"),
            Value::String("00010203-0405-0607-0809-0a0b0c0d0e0f".into())
        );
        let Value::Struct(re) = field("re") else {
            panic!("re")
        };
        assert_eq!(re.get("pattern"), Some(&Value::String("^a".into())));
        let Value::Struct(min) = field("min") else {
            panic!("min")
        };
        assert_eq!(
            min.get("json"),
            Some(&Value::String(r#"{"$minKey":1}"#.into()))
        );
        assert_eq!(sname("max").as_deref(), Some(EXTENDED_JSON));
        assert_eq!(field("b"), Value::Boolean(true));
        assert_eq!(field("sym"), Value::String("s".into()));
    }

    #[test]
    fn union_values_pick_their_member_and_fallback_holds_extended_json() {
        let docs = [
            doc! {"a": 1_i64},
            doc! {"a": mongodb::bson::DateTime::from_millis(5)},
            doc! {"a": {"x": 1}},
        ];
        let s = shape_of(&docs);
        let schema = s.connect_schema();
        let a = |d: &Document| match s.encode(&schema, d) {
            Value::Struct(v) => v.get("a").cloned().expect("a"),
            _ => panic!("struct"),
        };
        let Value::Struct(u) = a(&docs[0]) else {
            panic!("union")
        };
        assert_eq!(u.schema.name.as_deref(), Some(AVRO_TYPE_UNION));
        assert_eq!(u.get("long"), Some(&Value::Int64(1)));
        let Value::Struct(u) = a(&docs[1]) else {
            panic!("union")
        };
        let Some(Value::Struct(j)) = u.get("ExtendedJson") else {
            panic!("fallback member: {u:?}")
        };
        assert_eq!(
            j.get("json"),
            Some(&Value::String(r#"{"$date":{"$numberLong":"5"}}"#.into()))
        );
        let Value::Struct(u) = a(&docs[2]) else {
            panic!("union")
        };
        assert!(matches!(u.get("a"), Some(Value::Struct(_))));
    }

    /// A shape's registered form, parsed back as Avro.
    fn avro(
        s: &DocShape,
    ) -> (
        connect_converters::avro::schema::AvroSchema,
        connect_converters::avro::schema::Names,
    ) {
        let text = AvroDataConfig::default()
            .from_connect_schema(&s.connect_schema())
            .expect("avro")
            .to_json_string();
        connect_converters::avro::schema::parse(&text).expect("valid Avro")
    }

    /// Whether `reader` reads data written with `writer` (Avro resolution).
    fn reads(reader: &DocShape, writer: &DocShape) -> Result<(), String> {
        let (r, rn) = avro(reader);
        let (w, wn) = avro(writer);
        connect_converters::avro::compat::check(&r, &rn, &w, &wn)
    }

    /// Fields sorted by name and members by slot, recursively: the shape
    /// with order ignored.
    fn unordered(s: &DocShape) -> DocShape {
        fn field(f: &FieldShape) -> FieldShape {
            let mut members: Vec<Kind> = f
                .members
                .iter()
                .map(|k| match k {
                    Kind::Document(d) => Kind::Document(unordered(d)),
                    Kind::Array(items) => Kind::Array(Box::new(field(items))),
                    k => k.clone(),
                })
                .collect();
            members.sort_by_key(|k| k.slot() as u8);
            FieldShape { members }
        }
        let mut fields: Vec<FieldEntry> = s
            .fields
            .iter()
            .map(|f| FieldEntry {
                bson: f.bson.clone(),
                avro: f.avro.clone(),
                shape: field(&f.shape),
            })
            .collect();
        fields.sort_by(|a, b| a.bson.cmp(&b.bson));
        DocShape {
            name: s.name.clone(),
            fields,
        }
    }

    fn chunk_a() -> Vec<Document> {
        vec![
            doc! {"_id": 1, "n": 1, "sub": {"x": 1, "deep": {"p": 1}}, "xs": [1, {"k": 1}]},
            doc! {"_id": 2, "n": 2, "only_a": "a", "mixed": 5},
        ]
    }

    fn chunk_b() -> Vec<Document> {
        vec![
            doc! {"_id": "s", "n": 2_i64, "sub": {"y": "a", "deep": {"p": 2.5, "q": true}}, "xs": ["s", {"j": "x"}]},
            doc! {"_id": "t", "n": 3.5, "only_b": [true], "mixed": {"now": "a record"}},
        ]
    }

    #[test]
    fn merge_is_the_union_of_fields_with_widened_types() {
        let (a, b) = (shape_of(&chunk_a()), shape_of(&chunk_b()));
        let mut m = a.clone();
        assert!(m.merge_shape(&b));
        // The same as inferring every document of both chunks in order.
        let all: Vec<Document> = chunk_a().into_iter().chain(chunk_b()).collect();
        assert_eq!(m, shape_of(&all));
        let names: Vec<&str> = m.fields.iter().map(|f| f.bson.as_str()).collect();
        assert_eq!(
            names,
            ["_id", "n", "sub", "xs", "only_a", "mixed", "only_b"]
        );
        assert_eq!(members(&m, "_id"), vec![Kind::Int32, Kind::String]);
        assert_eq!(members(&m, "n"), vec![Kind::Double]);
        let Kind::Document(sub) = &members(&m, "sub")[0] else {
            panic!("sub is a record")
        };
        assert_eq!(sub.name, "t.c.sub");
        let sub_fields: Vec<&str> = sub.fields.iter().map(|f| f.bson.as_str()).collect();
        assert_eq!(sub_fields, ["x", "deep", "y"]);
        let Kind::Document(deep) = &sub.fields[1].shape.members[0] else {
            panic!("deep is a record")
        };
        assert_eq!(deep.fields[0].shape.members, vec![Kind::Double]);
        assert_eq!(deep.fields[1].shape.members, vec![Kind::Boolean]);
        let Kind::Array(items) = &members(&m, "xs")[0] else {
            panic!("xs is an array")
        };
        assert_eq!(items.members.len(), 3, "{items:?}");
        let Kind::Document(item) = &items.members[1] else {
            panic!("record items")
        };
        assert_eq!(item.name, "t.c.xs.__items");
        assert_eq!(item.fields.len(), 2);
        let mixed = members(&m, "mixed");
        assert!(
            matches!(mixed.as_slice(), [Kind::Int32, Kind::Document(d)] if d.name == "t.c.mixed")
        );
        // The union reads the data of both sides.
        reads(&m, &a).expect("reads a");
        reads(&m, &b).expect("reads b");
    }

    #[test]
    fn merge_is_idempotent_and_absorbs_its_parts() {
        let (a, b) = (shape_of(&chunk_a()), shape_of(&chunk_b()));
        let mut aa = a.clone();
        assert!(!aa.merge_shape(&a));
        assert_eq!(aa, a);
        let mut m = a.clone();
        m.merge_shape(&b);
        let once = m.clone();
        assert!(!m.merge_shape(&a));
        assert!(!m.merge_shape(&b));
        assert!(!m.merge_shape(&once));
        assert_eq!(m, once);
        // Merging into an empty shape copies.
        let mut e = DocShape::new("t.c".into());
        assert!(e.merge_shape(&a));
        assert_eq!(e, a);
    }

    #[test]
    fn merge_commutes_up_to_order() {
        let (a, b) = (shape_of(&chunk_a()), shape_of(&chunk_b()));
        let mut ab = a.clone();
        ab.merge_shape(&b);
        let mut ba = b.clone();
        ba.merge_shape(&a);
        assert_ne!(ab, ba, "field order differs: the test must compare sets");
        assert_eq!(unordered(&ab), unordered(&ba));
        // Either result reads the other's data: the same schema, reordered.
        reads(&ab, &ba).expect("ab reads ba");
        reads(&ba, &ab).expect("ba reads ab");
    }

    #[test]
    fn merge_renames_a_clashing_field_and_its_records() {
        let a = shape_of(&[doc! {"a-b": {"x": 1}}]);
        let b = shape_of(&[doc! {"a_b": {"y": "s"}, "a-b": {"z": true}}]);
        let mut m = a.clone();
        m.merge_shape(&b);
        let names: Vec<(&str, &str)> = m
            .fields
            .iter()
            .map(|f| (f.bson.as_str(), f.avro.as_str()))
            .collect();
        assert_eq!(names, [("a-b", "a_b"), ("a_b", "a_b_2")]);
        let Kind::Document(renamed) = &m.fields[1].shape.members[0] else {
            panic!("record")
        };
        assert_eq!(renamed.name, "t.c.a_b_2");
        // Two records of one name would not be valid Avro.
        reads(&m, &a).expect("reads a");
    }

    #[test]
    fn merge_keeps_the_registered_meaning_of_a_shared_avro_type() {
        let registered = shape_of(&[doc! {"d": mongodb::bson::DateTime::from_millis(1)}]);
        let local = shape_of(&[doc! {"d": 7_i64}]);
        let mut m = registered.clone();
        m.merge_shape(&local);
        assert_eq!(members(&m, "d"), vec![Kind::DateTime, Kind::Json]);
        reads(&m, &registered).expect("reads the registered version");
        // A local number is written to the fallback, not as a date.
        let d = doc! {"d": 7_i64};
        let schema = m.connect_schema();
        let Value::Struct(v) = m.encode(&schema, &d) else {
            panic!("struct")
        };
        let Some(Value::Struct(u)) = v.get("d") else {
            panic!("union")
        };
        assert!(u.get("ExtendedJson").is_some(), "{u:?}");
    }

    #[test]
    fn shape_survives_a_trip_through_connect_schema() {
        let s = shape_of(&[
            doc! {"a-b": 1, "n": {"x": [1, "y"], "e": []}, "t": Timestamp { time: 1, increment: 2 }},
            doc! {"n": 5, "u": Bson::MaxKey},
        ]);
        let back = doc_from_connect(&s.connect_schema()).expect("rebuilt");
        assert_eq!(back, s);
    }
}
