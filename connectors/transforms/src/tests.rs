//! Behaviour tests for every transform and predicate: schema'd and
//! schemaless paths, configuration errors, and the Java error messages.

#![allow(clippy::unwrap_used)]

use connect_api::data::logical;
use connect_api::record::SinkRecord;
use connect_api::{
    ConnectRecord, Props, Schema, SchemaBuilder, SchemaRef, SchemaType, Struct, Value,
};

use super::*;

fn props(kv: &[(&str, &str)]) -> Props {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn transform(class_alias: &str, kv: &[(&str, &str)]) -> Box<dyn Transform> {
    let plugin = transform_plugins()
        .into_iter()
        .find(|p| p.aliases.contains(&class_alias))
        .unwrap_or_else(|| panic!("no plugin {class_alias}"));
    let mut t = (plugin.new)();
    t.configure(&props(kv)).unwrap();
    t
}

fn configure_err(class_alias: &str, kv: &[(&str, &str)]) -> String {
    let plugin = transform_plugins()
        .into_iter()
        .find(|p| p.aliases.contains(&class_alias))
        .unwrap();
    let mut t = (plugin.new)();
    t.configure(&props(kv)).unwrap_err().to_string()
}

fn prim(t: SchemaType) -> SchemaRef {
    Schema::primitive(t, false)
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| (Value::from(*k), v.clone()))
            .collect(),
    )
}

fn value_record(schema: Option<SchemaRef>, value: Value) -> ConnectRecord {
    ConnectRecord {
        topic: "orders".into(),
        kafka_partition: Some(3),
        value_schema: schema,
        value,
        timestamp: Some(1_709_214_306_789),
        ..Default::default()
    }
}

fn apply(t: &dyn Transform, r: ConnectRecord) -> ConnectRecord {
    t.apply(r).unwrap().unwrap()
}

fn person() -> (SchemaRef, Struct) {
    let schema = SchemaBuilder::struct_()
        .name("person")
        .field("id", prim(SchemaType::Int64))
        .field("name", Schema::primitive(SchemaType::String, true))
        .field(
            "age",
            SchemaBuilder::int32()
                .optional()
                .default_value(Value::Int32(18))
                .build(),
        )
        .build();
    let st = Struct::new(schema.clone())
        .with("id", Value::Int64(7))
        .with("name", Value::from("ann"));
    (schema, st)
}

#[test]
fn plugins_have_java_class_names() {
    let classes: Vec<&str> = transform_plugins().iter().map(|p| p.class).collect();
    for c in [
        "org.apache.kafka.connect.transforms.InsertField$Value",
        "org.apache.kafka.connect.transforms.Cast$Key",
        "org.apache.kafka.connect.transforms.RegexRouter",
        "org.apache.kafka.connect.transforms.Filter",
    ] {
        assert!(classes.contains(&c), "{c}");
    }
    let preds: Vec<&str> = predicate_plugins().iter().map(|p| p.class).collect();
    assert!(preds.contains(&"org.apache.kafka.connect.transforms.predicates.TopicNameMatches"));
    for p in transform_plugins() {
        let _ = (p.new)().config_def();
    }
}

#[test]
fn insert_field_schemaless_and_schemad() {
    let t = transform(
        "InsertField$Value",
        &[
            ("topic.field", "t!"),
            ("partition.field", "p"),
            ("timestamp.field", "ts?"),
            ("static.field", "s"),
            ("static.value", "v"),
        ],
    );
    let out = apply(
        t.as_ref(),
        value_record(None, map(&[("a", Value::Int32(1))])),
    );
    assert_eq!(
        out.value,
        map(&[
            ("a", Value::Int32(1)),
            ("t", Value::from("orders")),
            ("p", Value::Int32(3)),
            ("ts", Value::Int64(1_709_214_306_789)),
            ("s", Value::from("v")),
        ])
    );
    let (schema, st) = person();
    let out = apply(t.as_ref(), value_record(Some(schema), Value::Struct(st)));
    let s = out.value_schema.clone().unwrap();
    assert_eq!(s.name.as_deref(), Some("person"));
    let names: Vec<&str> = s.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["id", "name", "age", "t", "p", "ts", "s"]);
    assert!(!s.field("t").unwrap().schema.optional);
    assert!(s.field("ts").unwrap().schema.is_logical(logical::TIMESTAMP));
    let v = out.value.as_struct().unwrap();
    assert_eq!(v.get("age"), Some(&Value::Int32(18)));
    assert_eq!(v.get("ts"), Some(&Value::Timestamp(1_709_214_306_789)));
    // Null values pass through untouched.
    let tomb = apply(t.as_ref(), value_record(None, Value::Null));
    assert_eq!(tomb.value, Value::Null);
    let err = t.apply(value_record(None, Value::from("x"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Only Map objects supported in absence of schema for [field insertion], found: java.lang.String"
    );
    let err = t
        .apply(value_record(
            Some(prim(SchemaType::String)),
            Value::from("x"),
        ))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Only Struct objects supported for [field insertion], found: java.lang.String"
    );
}

#[test]
fn insert_field_offset_needs_a_sink_record() {
    let t = transform("InsertField$Value", &[("offset.field", "off")]);
    let err = t.apply(value_record(None, map(&[]))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Only SinkRecord supported for [field insertion], found: org.apache.kafka.connect.source.SourceRecord"
    );
    let sink = SinkRecord {
        record: value_record(None, map(&[])),
        kafka_offset: 42,
        ..Default::default()
    };
    let out = t.apply_sink(sink).unwrap().unwrap();
    assert_eq!(out.record.value, map(&[("off", Value::Int64(42))]));
    assert_eq!(out.kafka_offset, 42);
    // Transforms without offset handling use the default apply_sink.
    let f = transform("Filter", &[]);
    assert!(f.apply_sink(SinkRecord::default()).unwrap().is_none());
}

#[test]
fn insert_field_bad_config() {
    assert_eq!(
        configure_err("InsertField$Value", &[]),
        "No field insertion configured"
    );
    assert_eq!(
        configure_err("InsertField$Key", &[("static.field", "s")]),
        "Invalid value null for configuration static.value: No value specified for static field: s"
    );
    let (schema, st) = person();
    let t = transform("InsertField$Value", &[("topic.field", "id")]);
    let err = t
        .apply(value_record(Some(schema), Value::Struct(st)))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Cannot create field because of field name duplication id"
    );
}

#[test]
fn replace_field_filters_and_renames() {
    let t = transform(
        "ReplaceField$Value",
        &[("exclude", "age"), ("renames", "name:full_name")],
    );
    let out = apply(
        t.as_ref(),
        value_record(
            None,
            map(&[
                ("id", Value::Int32(1)),
                ("name", Value::from("a")),
                ("age", Value::Int32(3)),
            ]),
        ),
    );
    assert_eq!(
        out.value,
        map(&[("id", Value::Int32(1)), ("full_name", Value::from("a"))])
    );
    let (schema, st) = person();
    let out = apply(t.as_ref(), value_record(Some(schema), Value::Struct(st)));
    let v = out.value.as_struct().unwrap();
    let names: Vec<&str> = v.schema.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["id", "full_name"]);
    assert_eq!(v.get("full_name"), Some(&Value::from("ann")));
    assert_eq!(v.schema.name.as_deref(), Some("person"));
    let include = transform("ReplaceField$Key", &[("whitelist", "id")]);
    let mut r = value_record(None, Value::Null);
    r.key = map(&[("id", Value::Int32(1)), ("x", Value::Int32(2))]);
    assert_eq!(
        apply(include.as_ref(), r).key,
        map(&[("id", Value::Int32(1))])
    );
    let err = configure_err("ReplaceField$Value", &[("renames", "a:b,c")]);
    assert_eq!(
        err,
        "Invalid value a:b,c for configuration renames: Invalid rename mapping: c"
    );
}

#[test]
fn extract_field_both_paths_and_nested() {
    let t = transform("ExtractField$Value", &[("field", "name")]);
    let out = apply(
        t.as_ref(),
        value_record(None, map(&[("name", Value::from("a"))])),
    );
    assert_eq!(out.value, Value::from("a"));
    assert_eq!(out.value_schema, None);
    let (schema, st) = person();
    let out = apply(
        t.as_ref(),
        value_record(Some(schema.clone()), Value::Struct(st.clone())),
    );
    assert_eq!(out.value, Value::from("ann"));
    assert_eq!(out.value_schema.unwrap().schema_type, SchemaType::String);
    let age = transform("ExtractField$Value", &[("field", "age")]);
    assert_eq!(
        apply(
            age.as_ref(),
            value_record(Some(schema.clone()), Value::Struct(st.clone()))
        )
        .value,
        Value::Int32(18)
    );
    let raw = transform(
        "ExtractField$Value",
        &[("field", "age"), ("replace.null.with.default", "false")],
    );
    assert_eq!(
        apply(
            raw.as_ref(),
            value_record(Some(schema.clone()), Value::Struct(st.clone()))
        )
        .value,
        Value::Null
    );
    let unknown = transform("ExtractField$Value", &[("field", "nope")]);
    let err = unknown
        .apply(value_record(
            Some(schema.clone()),
            Value::Struct(st.clone()),
        ))
        .unwrap_err();
    assert_eq!(err.to_string(), "Unknown field: nope");

    let outer = SchemaBuilder::struct_().field("p", schema).build();
    let nested = Value::Struct(Struct::new(outer.clone()).with("p", Value::Struct(st)));
    let v2 = transform(
        "ExtractField$Value",
        &[("field", "p.name"), ("field.syntax.version", "v2")],
    );
    assert_eq!(
        apply(v2.as_ref(), value_record(Some(outer), nested)).value,
        Value::from("ann")
    );
    let inner = map(&[("k", Value::Int64(5))]);
    assert_eq!(
        apply(
            transform(
                "ExtractField$Value",
                &[("field", "a.k"), ("field.syntax.version", "V2")]
            )
            .as_ref(),
            value_record(None, map(&[("a", inner)]))
        )
        .value,
        Value::Int64(5)
    );
    assert!(configure_err("ExtractField$Value", &[])
        .contains("Missing required configuration \"field\""));
    assert!(configure_err(
        "ExtractField$Value",
        &[("field", "a"), ("field.syntax.version", "V3")]
    )
    .contains("field.syntax.version"));
}

#[test]
fn value_to_key_copies_fields() {
    let t = transform("ValueToKey", &[("fields", "id,age")]);
    let (schema, st) = person();
    let out = apply(t.as_ref(), value_record(Some(schema), Value::Struct(st)));
    let key = out.key.as_struct().unwrap();
    assert_eq!(key.get("id"), Some(&Value::Int64(7)));
    assert_eq!(key.get("age"), Some(&Value::Int32(18)));
    assert_eq!(out.key_schema.unwrap().fields.len(), 2);
    let out = apply(
        t.as_ref(),
        value_record(None, map(&[("id", Value::Int32(1))])),
    );
    assert_eq!(
        out.key,
        map(&[("id", Value::Int32(1)), ("age", Value::Null)])
    );
    let bad = transform("ValueToKey", &[("fields", "missing")]);
    let (schema, st) = person();
    assert_eq!(
        bad.apply(value_record(Some(schema), Value::Struct(st)))
            .unwrap_err()
            .to_string(),
        "Field does not exist: missing"
    );
    let err = t.apply(value_record(None, Value::Null)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Only Map objects supported in absence of schema for [copying fields from value to key], found: null"
    );
    assert_eq!(
        configure_err("ValueToKey", &[("fields", "")]),
        "Invalid value  for configuration fields: Empty list"
    );
}

#[test]
fn hoist_field_wraps_values() {
    let t = transform("HoistField$Key", &[("field", "wrapped")]);
    let mut r = value_record(None, Value::Null);
    r.key = Value::Int32(5);
    assert_eq!(
        apply(t.as_ref(), r.clone()).key,
        map(&[("wrapped", Value::Int32(5))])
    );
    r.key_schema = Some(prim(SchemaType::Int32));
    let out = apply(t.as_ref(), r.clone());
    assert_eq!(
        out.key.as_struct().unwrap().get("wrapped"),
        Some(&Value::Int32(5))
    );
    assert_eq!(
        out.key_schema
            .unwrap()
            .field("wrapped")
            .unwrap()
            .schema
            .schema_type,
        SchemaType::Int32
    );
    r.key = Value::Null;
    assert!(t
        .apply(r)
        .unwrap_err()
        .to_string()
        .contains("null used for required field: \"wrapped\""));
    assert!(configure_err("HoistField$Value", &[]).contains("\"field\""));
}

#[test]
fn cast_fields_and_whole_values() {
    let t = transform(
        "Cast$Value",
        &[("spec", "id:string,age:float64,missing:int8")],
    );
    let (schema, st) = person();
    let out = apply(t.as_ref(), value_record(Some(schema), Value::Struct(st)));
    let s = out.value_schema.unwrap();
    assert_eq!(
        s.field("id").unwrap().schema.schema_type,
        SchemaType::String
    );
    let age = &s.field("age").unwrap().schema;
    assert_eq!(
        (age.schema_type, age.optional, age.default_value.clone()),
        (SchemaType::Float64, true, Some(Value::Float64(18.0)))
    );
    let v = out.value.as_struct().unwrap();
    assert_eq!(v.get("id"), Some(&Value::from("7")));
    assert_eq!(v.get("age"), Some(&Value::Float64(18.0)));
    // Schemaless: every spec'd field is put, even when absent (as null).
    let out = apply(
        t.as_ref(),
        value_record(None, map(&[("id", Value::Int64(3))])),
    );
    assert_eq!(
        out.value,
        map(&[
            ("id", Value::from("3")),
            ("age", Value::Null),
            ("missing", Value::Null)
        ])
    );
    let whole = transform("Cast$Key", &[("spec", "int32")]);
    let mut r = value_record(None, Value::Null);
    r.key = Value::Int64(70000);
    r.key_schema = Some(logical::timestamp().optional().build());
    r.key = Value::Timestamp(70000);
    let out = apply(whole.as_ref(), r);
    assert_eq!(out.key, Value::Int32(70000));
    let ks = out.key_schema.unwrap();
    assert_eq!((ks.schema_type, ks.optional), (SchemaType::Int32, true));
    let to_string = transform("Cast$Value", &[("spec", "string")]);
    let out = apply(
        to_string.as_ref(),
        value_record(Some(logical::date().build()), Value::Date(19782)),
    );
    assert_eq!(out.value, Value::from("2024-02-29"));
    assert!(configure_err("Cast$Value", &[("spec", "")])
        .contains("Must specify at least one field to cast."));
    assert!(configure_err("Cast$Value", &[("spec", "a:bytes")])
        .contains("does not support casting to BYTES"));
}

#[test]
fn regex_router_full_match_and_java_groups() {
    let t = transform(
        "RegexRouter",
        &[("regex", "(.*)-(v\\d+)"), ("replacement", "$2_$1")],
    );
    assert_eq!(
        apply(
            t.as_ref(),
            value_record(None, Value::Null).with_topic("orders-v2")
        )
        .topic,
        "v2_orders"
    );
    // No full match: the topic is kept.
    assert_eq!(
        apply(
            t.as_ref(),
            value_record(None, Value::Null).with_topic("orders")
        )
        .topic,
        "orders"
    );
    let partial = transform("RegexRouter", &[("regex", "a|ab"), ("replacement", "X")]);
    // Java: matches() succeeds on "ab", then replaceFirst replaces the first match "a".
    assert_eq!(
        apply(
            partial.as_ref(),
            value_record(None, Value::Null).with_topic("ab")
        )
        .topic,
        "Xb"
    );
    assert!(
        configure_err("RegexRouter", &[("regex", "("), ("replacement", "x")])
            .contains("Invalid regex")
    );
    assert!(
        configure_err("RegexRouter", &[("regex", "a"), ("replacement", "$3")])
            .contains("No group 3")
    );
}

trait WithTopic {
    fn with_topic(self, topic: &str) -> ConnectRecord;
}

impl WithTopic for ConnectRecord {
    fn with_topic(mut self, topic: &str) -> ConnectRecord {
        self.topic = topic.into();
        self
    }
}

#[test]
fn timestamp_router_formats_in_utc() {
    let t = transform("TimestampRouter", &[]);
    assert_eq!(
        apply(t.as_ref(), value_record(None, Value::Null)).topic,
        "orders-20240229"
    );
    let t = transform(
        "TimestampRouter",
        &[
            ("topic.format", "${timestamp}/${topic}"),
            ("timestamp.format", "yyyy-MM-dd'T'HH"),
        ],
    );
    assert_eq!(
        apply(t.as_ref(), value_record(None, Value::Null)).topic,
        "2024-02-29T13/orders"
    );
    let mut r = value_record(None, Value::Null);
    r.timestamp = None;
    assert!(t
        .apply(r)
        .unwrap_err()
        .to_string()
        .starts_with("Timestamp missing on record: ConnectRecord{topic='orders'"));
    assert!(
        configure_err("TimestampRouter", &[("timestamp.format", "yyyy-bb")])
            .contains("Illegal pattern character 'b'")
    );
}

#[test]
fn filter_drops_everything() {
    let t = transform("Filter", &[]);
    assert!(t.apply(value_record(None, Value::Null)).unwrap().is_none());
}

fn predicate(alias: &str, kv: &[(&str, &str)]) -> Result<Box<dyn Predicate>, String> {
    let plugin = predicate_plugins()
        .into_iter()
        .find(|p| p.aliases.contains(&alias))
        .unwrap();
    let mut p = (plugin.new)();
    p.configure(&props(kv)).map_err(|e| e.to_string())?;
    Ok(p)
}

#[test]
fn predicates() {
    let p = predicate("TopicNameMatches", &[("pattern", "ord.*")]).unwrap();
    assert!(p.test(&value_record(None, Value::Null)));
    assert!(!p.test(&value_record(None, Value::Null).with_topic("xorders")));
    assert!(predicate("TopicNameMatches", &[("pattern", "(")])
        .err()
        .unwrap()
        .contains("Invalid regex"));
    assert!(predicate("TopicNameMatches", &[("pattern", "")])
        .err()
        .unwrap()
        .contains("String must be non-empty"));

    let h = predicate("HasHeaderKey", &[("name", "trace")]).unwrap();
    let mut r = value_record(None, Value::from("x"));
    assert!(!h.test(&r));
    r.headers.add("trace", None, Value::from("1"));
    assert!(h.test(&r));
    assert!(predicate("HasHeaderKey", &[])
        .err()
        .unwrap()
        .contains("\"name\""));

    let t = predicate("RecordIsTombstone", &[]).unwrap();
    assert!(!t.test(&r));
    assert!(t.test(&value_record(None, Value::Null)));
}
