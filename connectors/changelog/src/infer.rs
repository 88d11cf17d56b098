//! A Connect schema inferred from schemaless JSON documents, for JSON output
//! with schemas.
//!
//! Why: JsonConverter with `schemas.enable=true` needs a schema for every
//! value. Without one, a JSON document can only be written as JSON text
//! (`io.debezium.data.Json`), and consumers that map the envelope's `before`
//! / `after` to columns (Flink's `debezium-json` with `schema-include=true`)
//! reject text where they expect an object. So each event's images get a
//! struct schema inferred from the images themselves: every field optional,
//! integers `int64`, other numbers `float64`, arrays typed by the merge of
//! their elements, `null` an optional string. The schema describes that one
//! event; it changes when the documents' shapes do.
//!
//! Values that no single Connect type describes (an array of numbers and
//! strings, a field that is a string in `before` and an object in `after`)
//! have no schema: [`infer`] returns `None` and the caller keeps the JSON
//! text image for that event.

use connect_api::data::{SchemaBuilder, SchemaType, Struct};
use connect_api::{SchemaRef, Value};
use serde_json::Value as Json;

/// The type of one JSON value, as far as the documents seen show it.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// Only `null` seen: any type fits.
    Null,
    Bool,
    Int,
    Float,
    Str,
    Array(Box<Shape>),
    Object(Vec<(String, Shape)>),
}

fn shape(v: &Json) -> Option<Shape> {
    Some(match v {
        Json::Null => Shape::Null,
        Json::Bool(_) => Shape::Bool,
        // Integers beyond i64 only fit a double.
        Json::Number(n) if n.is_i64() => Shape::Int,
        Json::Number(_) => Shape::Float,
        Json::String(_) => Shape::Str,
        Json::Array(items) => {
            let mut elem = Shape::Null;
            for item in items {
                elem = merge(elem, shape(item)?)?;
            }
            Shape::Array(Box::new(elem))
        }
        Json::Object(fields) => Shape::Object(
            fields
                .iter()
                .map(|(k, v)| Some((k.clone(), shape(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

/// The narrowest shape describing values of both shapes; `None` if none.
fn merge(a: Shape, b: Shape) -> Option<Shape> {
    Some(match (a, b) {
        (Shape::Null, s) | (s, Shape::Null) => s,
        (Shape::Int, Shape::Float) | (Shape::Float, Shape::Int) => Shape::Float,
        (Shape::Array(x), Shape::Array(y)) => Shape::Array(Box::new(merge(*x, *y)?)),
        (Shape::Object(mut xs), Shape::Object(ys)) => {
            for (k, y) in ys {
                match xs.iter_mut().find(|(name, _)| *name == k) {
                    Some((_, x)) => *x = merge(std::mem::replace(x, Shape::Null), y)?,
                    None => xs.push((k, y)),
                }
            }
            Shape::Object(xs)
        }
        (x, y) if x == y => x,
        _ => return None,
    })
}

fn schema_of(s: &Shape, name: Option<&str>) -> SchemaRef {
    let b = match s {
        Shape::Null | Shape::Str => SchemaBuilder::string(),
        Shape::Bool => SchemaBuilder::boolean(),
        Shape::Int => SchemaBuilder::int64(),
        Shape::Float => SchemaBuilder::float64(),
        Shape::Array(elem) => SchemaBuilder::array(schema_of(elem, None)),
        Shape::Object(fields) => fields.iter().fold(SchemaBuilder::struct_(), |b, (k, f)| {
            b.field(k.clone(), schema_of(f, None))
        }),
    };
    match name {
        Some(n) => b.name(n).optional().build(),
        None => b.optional().build(),
    }
}

/// `v` as a Connect value of `schema` (one that [`infer`] built for it).
fn value_of(v: &Json, schema: &SchemaRef) -> Value {
    match (v, schema.schema_type) {
        (Json::Bool(b), _) => Value::Boolean(*b),
        (Json::Number(n), SchemaType::Int64) => n.as_i64().map_or(Value::Null, Value::Int64),
        (Json::Number(n), _) => n.as_f64().map_or(Value::Null, Value::Float64),
        (Json::String(s), _) => Value::String(s.clone()),
        (Json::Array(items), _) => match &schema.value_schema {
            Some(elem) => Value::Array(items.iter().map(|i| value_of(i, elem)).collect()),
            None => Value::Null,
        },
        (Json::Object(fields), SchemaType::Struct) => {
            let mut st = Struct::new(schema.clone());
            for f in &schema.fields {
                st.values[f.index] = fields
                    .get(&f.name)
                    .map_or(Value::Null, |x| value_of(x, &f.schema));
            }
            Value::Struct(st)
        }
        _ => Value::Null,
    }
}

/// One struct schema named `name` for all `docs` (JSON objects), and each
/// document as a value of it. `None` when a document is not an object or
/// when no Connect type describes some field in all of them.
pub fn infer(docs: &[&Json], name: &str) -> Option<(SchemaRef, Vec<Value>)> {
    let mut merged = Shape::Object(Vec::new());
    for d in docs {
        if !d.is_object() {
            return None;
        }
        merged = merge(merged, shape(d)?)?;
    }
    let schema = schema_of(&merged, Some(name));
    let values = docs.iter().map(|d| value_of(d, &schema)).collect();
    Some((schema, values))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field<'a>(s: &'a SchemaRef, name: &str) -> &'a SchemaRef {
        &s.field(name).unwrap().schema
    }

    #[test]
    fn before_and_after_share_one_struct_with_every_field_optional() {
        let before =
            json!({"_id": 1, "qty": 2, "customer": {"name": "a"}, "items": [{"price": 1}]});
        let after = json!({"_id": 1, "status": "replaced", "items": [{"price": 1.5, "sku": "x"}]});
        let (schema, values) = infer(&[&before, &after], "t.Value").unwrap();
        assert_eq!(schema.name.as_deref(), Some("t.Value"));
        assert!(schema.optional);
        assert_eq!(schema.schema_type, SchemaType::Struct);
        let names: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["_id", "qty", "customer", "items", "status"]);
        assert!(schema.fields.iter().all(|f| f.schema.optional));
        assert_eq!(field(&schema, "_id").schema_type, SchemaType::Int64);
        assert_eq!(field(&schema, "customer").schema_type, SchemaType::Struct);
        // 1 and 1.5 in the same array field: a double.
        let item = field(&schema, "items").value_schema.clone().unwrap();
        assert_eq!(field(&item, "price").schema_type, SchemaType::Float64);
        assert_eq!(field(&item, "sku").schema_type, SchemaType::String);
        let after_v = values[1].as_struct().unwrap();
        assert_eq!(after_v.get("qty"), Some(&Value::Null));
        assert_eq!(
            after_v.get("status"),
            Some(&Value::String("replaced".into()))
        );
        let Some(Value::Array(items)) = values[0].as_struct().unwrap().get("items") else {
            panic!("items is not an array");
        };
        assert_eq!(
            items[0].as_struct().unwrap().get("price"),
            Some(&Value::Float64(1.0))
        );
    }

    #[test]
    fn extended_json_and_nulls_get_types() {
        let doc = json!({"_id": {"$oid": "65a1"}, "note": null, "tags": [], "big": 18446744073709551615u64});
        let (schema, values) = infer(&[&doc], "t.Value").unwrap();
        let id = field(&schema, "_id");
        assert_eq!(id.schema_type, SchemaType::Struct);
        assert_eq!(field(id, "$oid").schema_type, SchemaType::String);
        assert_eq!(field(&schema, "note").schema_type, SchemaType::String);
        assert_eq!(field(&schema, "big").schema_type, SchemaType::Float64);
        assert_eq!(
            values[0].as_struct().unwrap().get("note"),
            Some(&Value::Null)
        );
    }

    #[test]
    fn values_no_connect_type_describes_have_no_schema() {
        assert!(infer(&[&json!({"a": [1, "x"]})], "t.Value").is_none());
        assert!(infer(&[&json!({"a": "x"}), &json!({"a": {"b": 1}})], "t.Value").is_none());
        assert!(infer(&[&json!([1, 2])], "t.Value").is_none());
    }
}
