//! Golden tests: expected bytes derived by hand from Java's `asJsonSchema`
//! and `convertToJson` (key order type, items/keys+values/fields, optional,
//! name, version, doc, parameters, default, then `field` for struct fields).

use super::*;
use connect_api::data::logical;
use connect_api::data::Decimal;
use connect_api::{Schema, SchemaBuilder, SchemaType, Struct};

fn props(kv: &[(&str, &str)]) -> Props {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn converter(kv: &[(&str, &str)]) -> JsonConverter {
    let mut c = JsonConverter::new();
    Converter::configure(&mut c, &props(kv), false).unwrap();
    c
}

fn json(c: &JsonConverter, schema: &SchemaRef, value: Value) -> String {
    let bytes = c.serialize(Some(schema), &value).unwrap().unwrap();
    String::from_utf8(bytes).unwrap()
}

fn prim(t: SchemaType) -> SchemaRef {
    Schema::primitive(t, false)
}

#[test]
fn struct_envelope_matches_java_key_order() {
    let c = converter(&[]);
    let schema = SchemaBuilder::struct_()
        .name("r")
        .field("id", prim(SchemaType::Int32))
        .build();
    let value = Value::Struct(Struct::new(schema.clone()).with("id", Value::Int32(1)));
    assert_eq!(
        json(&c, &schema, value.clone()),
        r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false,"name":"r"},"payload":{"id":1}}"#
    );
    // Second call is served from the schema cache and must be identical.
    assert_eq!(
        json(&c, &schema, value),
        r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false,"name":"r"},"payload":{"id":1}}"#
    );
}

#[test]
fn every_primitive_type() {
    let c = converter(&[]);
    let cases: Vec<(SchemaType, Value, &str)> = vec![
        (
            SchemaType::Int8,
            Value::Int8(-12),
            r#"{"schema":{"type":"int8","optional":false},"payload":-12}"#,
        ),
        (
            SchemaType::Int16,
            Value::Int16(300),
            r#"{"schema":{"type":"int16","optional":false},"payload":300}"#,
        ),
        (
            SchemaType::Int32,
            Value::Int32(70000),
            r#"{"schema":{"type":"int32","optional":false},"payload":70000}"#,
        ),
        (
            SchemaType::Int64,
            Value::Int64(i64::MIN),
            r#"{"schema":{"type":"int64","optional":false},"payload":-9223372036854775808}"#,
        ),
        (
            SchemaType::Float32,
            Value::Float32(1.5),
            r#"{"schema":{"type":"float","optional":false},"payload":1.5}"#,
        ),
        (
            SchemaType::Float64,
            Value::Float64(1.0),
            r#"{"schema":{"type":"double","optional":false},"payload":1.0}"#,
        ),
        (
            SchemaType::Float64,
            Value::Float64(1e10),
            r#"{"schema":{"type":"double","optional":false},"payload":1.0E10}"#,
        ),
        (
            SchemaType::Float64,
            Value::Float64(0.0001),
            r#"{"schema":{"type":"double","optional":false},"payload":1.0E-4}"#,
        ),
        (
            SchemaType::Float64,
            Value::Float64(f64::NAN),
            r#"{"schema":{"type":"double","optional":false},"payload":"NaN"}"#,
        ),
        (
            SchemaType::Boolean,
            Value::Boolean(true),
            r#"{"schema":{"type":"boolean","optional":false},"payload":true}"#,
        ),
        (
            SchemaType::String,
            Value::from("a\"b\\c\n\u{1}\u{1f}é/"),
            r#"{"schema":{"type":"string","optional":false},"payload":"a\"b\\c\n\u0001\u001Fé/"}"#,
        ),
        (
            SchemaType::Bytes,
            Value::Bytes(vec![1, 2, 3]),
            r#"{"schema":{"type":"bytes","optional":false},"payload":"AQID"}"#,
        ),
    ];
    for (t, v, expected) in cases {
        assert_eq!(json(&c, &prim(t), v), expected);
    }
}

#[test]
fn logical_types() {
    let c = converter(&[]);
    let dec = logical::decimal(2).build();
    let value = Value::Decimal(Decimal::from_i128(12345, 2));
    assert_eq!(
        json(&c, &dec, value.clone()),
        r#"{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},"payload":"MDk="}"#
    );
    let numeric = converter(&[("decimal.format", "numeric")]);
    assert_eq!(
        json(&numeric, &dec, value),
        r#"{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},"payload":123.45}"#
    );
    let wrong_scale = c
        .serialize(Some(&dec), &Value::Decimal(Decimal::from_i128(1, 3)))
        .unwrap_err();
    assert_eq!(
        wrong_scale.to_string(),
        "Decimal value has mismatching scale for given Decimal schema. Schema has scale 2, value has scale 3."
    );
    assert_eq!(
        json(&c, &logical::date().build(), Value::Date(19782)),
        r#"{"schema":{"type":"int32","optional":false,"name":"org.apache.kafka.connect.data.Date","version":1},"payload":19782}"#
    );
    assert_eq!(
        json(&c, &logical::time().build(), Value::Time(49_506_789)),
        r#"{"schema":{"type":"int32","optional":false,"name":"org.apache.kafka.connect.data.Time","version":1},"payload":49506789}"#
    );
    assert_eq!(
        json(
            &c,
            &logical::timestamp().build(),
            Value::Timestamp(1_709_214_306_789)
        ),
        r#"{"schema":{"type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1},"payload":1709214306789}"#
    );
    let err = c
        .serialize(Some(&logical::date().build()), &Value::Int32(1))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid type for Date, expected Date but was class java.lang.Integer"
    );
}

#[test]
fn arrays_maps_and_nested_structs() {
    let c = converter(&[]);
    let arr = SchemaBuilder::array(Schema::primitive(SchemaType::String, true)).build();
    assert_eq!(
        json(&c, &arr, Value::Array(vec![Value::from("a"), Value::Null])),
        r#"{"schema":{"type":"array","items":{"type":"string","optional":true},"optional":false},"payload":["a",null]}"#
    );
    let string_map = SchemaBuilder::map(prim(SchemaType::String), prim(SchemaType::Int64)).build();
    assert_eq!(
        json(
            &c,
            &string_map,
            Value::Map(vec![
                (Value::from("a"), Value::Int64(1)),
                (Value::from("b"), Value::Int64(2))
            ])
        ),
        r#"{"schema":{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"int64","optional":false},"optional":false},"payload":{"a":1,"b":2}}"#
    );
    let int_map = SchemaBuilder::map(prim(SchemaType::Int32), prim(SchemaType::String))
        .optional()
        .build();
    assert_eq!(
        json(
            &c,
            &int_map,
            Value::Map(vec![(Value::Int32(1), Value::from("x"))])
        ),
        r#"{"schema":{"type":"map","keys":{"type":"int32","optional":false},"values":{"type":"string","optional":false},"optional":true},"payload":[[1,"x"]]}"#
    );
    let inner = SchemaBuilder::struct_()
        .name("inner")
        .version(3)
        .doc("nested")
        .optional()
        .field("f", Schema::primitive(SchemaType::Float32, true))
        .build();
    let outer = SchemaBuilder::struct_()
        .field("in", inner.clone())
        .field(
            "tags",
            SchemaBuilder::array(prim(SchemaType::Int16)).build(),
        )
        .build();
    let value = Struct::new(outer.clone())
        .with(
            "in",
            Value::Struct(Struct::new(inner).with("f", Value::Float32(2.5))),
        )
        .with("tags", Value::Array(vec![Value::Int16(7)]));
    assert_eq!(
        json(&c, &outer, Value::Struct(value)),
        concat!(
            r#"{"schema":{"type":"struct","fields":["#,
            r#"{"type":"struct","fields":[{"type":"float","optional":true,"field":"f"}],"optional":true,"name":"inner","version":3,"doc":"nested","field":"in"},"#,
            r#"{"type":"array","items":{"type":"int16","optional":false},"optional":false,"field":"tags"}"#,
            r#"],"optional":false},"payload":{"in":{"f":2.5},"tags":[7]}}"#
        )
    );
}

#[test]
fn defaults_and_null_handling() {
    let field = SchemaBuilder::string()
        .optional()
        .doc("the doc")
        .default_value(Value::from("d"))
        .build();
    let schema = SchemaBuilder::struct_().field("s", field).build();
    let value = Value::Struct(Struct::new(schema.clone()));
    let c = converter(&[]);
    assert_eq!(
        json(&c, &schema, value.clone()),
        r#"{"schema":{"type":"struct","fields":[{"type":"string","optional":true,"doc":"the doc","default":"d","field":"s"}],"optional":false},"payload":{"s":"d"}}"#
    );
    let keep_null = converter(&[("replace.null.with.default", "false")]);
    assert_eq!(
        json(&keep_null, &schema, value),
        r#"{"schema":{"type":"struct","fields":[{"type":"string","optional":true,"doc":"the doc","default":"d","field":"s"}],"optional":false},"payload":{"s":null}}"#
    );
    // Tombstones: no schema and no value gives no bytes; an optional schema gives a null payload.
    assert_eq!(c.serialize(None, &Value::Null).unwrap(), None);
    let opt = Schema::primitive(SchemaType::Int32, true);
    assert_eq!(
        json(&c, &opt, Value::Null),
        r#"{"schema":{"type":"int32","optional":true},"payload":null}"#
    );
    let err = c
        .serialize(Some(&prim(SchemaType::Int32)), &Value::Null)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Conversion error: null value for field that is required and has no default value"
    );
    let err = c
        .serialize(Some(&prim(SchemaType::Int32)), &Value::Int64(1))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid type for INT32: class java.lang.Long"
    );
    let other = SchemaBuilder::struct_()
        .field("x", prim(SchemaType::Int8))
        .build();
    let err = c
        .serialize(Some(&schema), &Value::Struct(Struct::new(other)))
        .unwrap_err();
    assert_eq!(err.to_string(), "Mismatching schema.");
}

#[test]
fn schemas_disabled_writes_bare_payloads() {
    let c = converter(&[("schemas.enable", "false")]);
    let schema = SchemaBuilder::struct_()
        .name("r")
        .field("id", prim(SchemaType::Int32))
        .build();
    let value = Value::Struct(Struct::new(schema.clone()).with("id", Value::Int32(1)));
    assert_eq!(json(&c, &schema, value), r#"{"id":1}"#);
    assert_eq!(
        json(&c, &Schema::primitive(SchemaType::Int32, true), Value::Null),
        "null"
    );
    assert_eq!(c.serialize(None, &Value::Null).unwrap(), None);
    let map = Value::Map(vec![
        (Value::from("a"), Value::Float64(2.0)),
        (Value::from("b"), Value::Array(vec![])),
    ]);
    assert_eq!(
        c.serialize(None, &map).unwrap().unwrap(),
        br#"{"a":2.0,"b":[]}"#
    );
    let mixed = Value::Map(vec![(Value::Int64(1), Value::Boolean(true))]);
    assert_eq!(
        c.serialize(None, &mixed).unwrap().unwrap(),
        br#"[[1,true]]"#
    );
    assert_eq!(to_json_bytes(&map).unwrap(), br#"{"a":2.0,"b":[]}"#);
    let err = c.serialize(None, &Value::Timestamp(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Java class class java.util.Date does not have corresponding schema type."
    );
    // With schemas enabled, schemaless values get a null schema.
    let enveloped = converter(&[]);
    assert_eq!(
        enveloped.serialize(None, &map).unwrap().unwrap(),
        br#"{"schema":null,"payload":{"a":2.0,"b":[]}}"#
    );
}

#[test]
fn round_trips_schemad_data() {
    let c = converter(&[]);
    let numeric = converter(&[("decimal.format", "NUMERIC")]);
    let inner = SchemaBuilder::struct_()
        .optional()
        .field("x", prim(SchemaType::Int64))
        .build();
    let schema = SchemaBuilder::struct_()
        .name("com.example.Rec")
        .version(2)
        .doc("a record")
        .parameter("p1", "v1")
        .parameter("a0", "v0")
        .field("i8", prim(SchemaType::Int8))
        .field("i16", prim(SchemaType::Int16))
        .field("i32", prim(SchemaType::Int32))
        .field("i64", prim(SchemaType::Int64))
        .field("f32", prim(SchemaType::Float32))
        .field("f64", prim(SchemaType::Float64))
        .field("b", prim(SchemaType::Boolean))
        .field("s", prim(SchemaType::String))
        .field("bytes", prim(SchemaType::Bytes))
        .field("dec", logical::decimal(3).build())
        .field("date", logical::date().build())
        .field("time", logical::time().optional().build())
        .field("ts", logical::timestamp().build())
        .field(
            "arr",
            SchemaBuilder::array(prim(SchemaType::String)).build(),
        )
        .field(
            "smap",
            SchemaBuilder::map(
                prim(SchemaType::String),
                Schema::primitive(SchemaType::Int32, true),
            )
            .build(),
        )
        .field(
            "imap",
            SchemaBuilder::map(prim(SchemaType::Int16), prim(SchemaType::Boolean)).build(),
        )
        .field("inner", inner.clone())
        .field(
            "opt",
            SchemaBuilder::int32()
                .optional()
                .default_value(Value::Int32(42))
                .build(),
        )
        .build();
    let value = Value::Struct(
        Struct::new(schema.clone())
            .with("i8", Value::Int8(-1))
            .with("i16", Value::Int16(-300))
            .with("i32", Value::Int32(123_456))
            .with("i64", Value::Int64(i64::MAX))
            .with("f32", Value::Float32(3.25))
            .with("f64", Value::Float64(-1.0e-7))
            .with("b", Value::Boolean(false))
            .with("s", Value::from("ünïcode \"q\""))
            .with("bytes", Value::Bytes(vec![0, 255, 7]))
            .with("dec", Value::Decimal(Decimal::from_i128(-1_234_567, 3)))
            .with("date", Value::Date(-3))
            .with("time", Value::Null)
            .with("ts", Value::Timestamp(-5))
            .with(
                "arr",
                Value::Array(vec![Value::from("x"), Value::from("y")]),
            )
            .with(
                "smap",
                Value::Map(vec![
                    (Value::from("k"), Value::Null),
                    (Value::from("j"), Value::Int32(2)),
                ]),
            )
            .with(
                "imap",
                Value::Map(vec![(Value::Int16(9), Value::Boolean(true))]),
            )
            .with(
                "inner",
                Value::Struct(Struct::new(inner).with("x", Value::Int64(5))),
            )
            .with("opt", Value::Int32(7)),
    );
    for conv in [&c, &numeric] {
        let bytes = conv.serialize(Some(&schema), &value).unwrap().unwrap();
        let back = conv.deserialize(Some(&bytes)).unwrap();
        assert_eq!(back.schema.as_deref(), Some(schema.as_ref()));
        assert_eq!(back.value, value);
        // Reading twice hits the parsed-schema cache.
        assert_eq!(conv.deserialize(Some(&bytes)).unwrap(), back);
        // Re-serializing the parsed data gives the same bytes.
        assert_eq!(
            conv.serialize(back.schema.as_ref(), &back.value)
                .unwrap()
                .unwrap(),
            bytes
        );
    }
}

#[test]
fn reads_java_envelopes_and_reports_java_errors() {
    let c = converter(&[]);
    let read = |s: &str| c.deserialize(Some(s.as_bytes()));
    let sv =
        read(r#"{ "schema": { "type": "boolean", "default": true }, "payload": null }"#).unwrap();
    assert_eq!(sv.value, Value::Boolean(true));
    let sv = read(r#"{"schema":{"type":"int32","optional":true},"payload":null}"#).unwrap();
    assert_eq!(sv.value, Value::Null);
    let sv = read(r#"{"schema":null,"payload":{"a":1,"b":[1.5,"x"],"c":null}}"#).unwrap();
    assert_eq!(sv.schema, None);
    assert_eq!(
        sv.value,
        Value::Map(vec![
            (Value::from("a"), Value::Int64(1)),
            (
                Value::from("b"),
                Value::Array(vec![Value::Float64(1.5), Value::from("x")])
            ),
            (Value::from("c"), Value::Null),
        ])
    );
    let envelope_error = "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.";
    for bad in [
        r#"{"a":1}"#,
        r#"{"schema":null}"#,
        r#"{"schema":null,"payload":1,"x":2}"#,
        "[]",
        "",
    ] {
        assert_eq!(read(bad).unwrap_err().to_string(), envelope_error, "{bad}");
    }
    let err = read("{nope").unwrap_err().to_string();
    assert!(err.starts_with(
        "Converting byte[] to Kafka Connect data failed due to serialization error: "
    ));
    let err = read(r#"{"schema":{"type":"int32"},"payload":null}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid null value for required INT32 field"
    );
    let err = read(r#"{"schema":{"type":"struct","fields":[]},"payload":[1]}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Structs should be encoded as JSON objects, but found ARRAY"
    );
    let err = read(r#"{"schema":{"type":"nope"},"payload":1}"#).unwrap_err();
    assert_eq!(err.to_string(), "Unknown schema type: nope");
    let err = read(r#"{"schema":{"optional":true},"payload":1}"#).unwrap_err();
    assert_eq!(err.to_string(), "Schema must contain 'type' field");
    let err = read(
        r#"{"schema":{"type":"map","keys":{"type":"int8"},"values":{"type":"int8"}},"payload":{}}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Maps with non-string fields should be encoded as JSON array of tuples, but found OBJECT"
    );
    // Jackson's lenient accessors: a float payload for int32 truncates, text reads as 0.
    assert_eq!(
        read(r#"{"schema":{"type":"int32"},"payload":12.9}"#)
            .unwrap()
            .value,
        Value::Int32(12)
    );
    assert_eq!(
        read(r#"{"schema":{"type":"int32"},"payload":"x"}"#)
            .unwrap()
            .value,
        Value::Int32(0)
    );
    // NUMERIC decimals keep their written scale.
    let sv = read(r#"{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}},"payload":1.50}"#)
        .unwrap();
    assert_eq!(sv.value, Value::Decimal(Decimal::from_i128(150, 2)));
}

#[test]
fn schemaless_reading() {
    let c = converter(&[("schemas.enable", "false")]);
    let sv = c
        .deserialize(Some(
            br#"{"n":12345678901,"f":1e2,"s":"x","o":{"k":[true]}}"#,
        ))
        .unwrap();
    assert_eq!(sv.schema, None);
    assert_eq!(
        sv.value,
        Value::Map(vec![
            (Value::from("n"), Value::Int64(12_345_678_901)),
            (Value::from("f"), Value::Float64(100.0)),
            (Value::from("s"), Value::from("x")),
            (
                Value::from("o"),
                Value::Map(vec![(
                    Value::from("k"),
                    Value::Array(vec![Value::Boolean(true)])
                )])
            ),
        ])
    );
    assert_eq!(c.deserialize(Some(b"")).unwrap(), SchemaAndValue::null());
    assert_eq!(c.deserialize(None).unwrap(), SchemaAndValue::null());
    assert_eq!(
        c.deserialize(Some(b"null")).unwrap(),
        SchemaAndValue::null()
    );
    let v = from_json_value(&serde_json::json!({"a": [1, 2.5, null]}));
    assert_eq!(to_json_value(&v), serde_json::json!({"a": [1, 2.5, null]}));
}

#[test]
fn config_is_validated_with_java_keys() {
    let mut c = JsonConverter::new();
    let err =
        Converter::configure(&mut c, &props(&[("decimal.format", "HEX")]), false).unwrap_err();
    assert!(err.to_string().contains("decimal.format"), "{err}");
    let err = c.configure_props(&Props::new()).unwrap_err();
    assert!(err.to_string().contains("converter.type"), "{err}");
    let def = JsonConverter::definition();
    let names: Vec<&str> = def.keys().map(|k| k.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "converter.type",
            "schemas.enable",
            "schemas.cache.size",
            "decimal.format",
            "replace.null.with.default"
        ]
    );
    let mut h = JsonConverter::new();
    HeaderConverter::configure(&mut h, &props(&[("schemas.enable", "false")])).unwrap();
    let out = h
        .from_connect_header("t", "k", Some(&prim(SchemaType::String)), &Value::from("v"))
        .unwrap();
    assert_eq!(out.as_deref(), Some(&b"\"v\""[..]));
    assert_eq!(
        h.to_connect_header("t", "k", Some(b"\"v\"")).unwrap().value,
        Value::from("v")
    );
}

#[tokio::test]
async fn converter_trait_delegates() {
    let c = converter(&[]);
    let mut headers = Headers::new();
    let schema = prim(SchemaType::String);
    let bytes = c
        .from_connect("t", &mut headers, Some(&schema), &Value::from("x"))
        .await
        .unwrap();
    assert_eq!(
        bytes.as_deref(),
        Some(&br#"{"schema":{"type":"string","optional":false},"payload":"x"}"#[..])
    );
    let back = c.to_connect("t", &headers, bytes.as_deref()).await.unwrap();
    assert_eq!(back.value, Value::from("x"));
}

/// Assertions carried over from Java's `JsonConverterTest`.
#[test]
fn java_converter_test_cases() {
    let c = converter(&[]);
    let read = |s: &str| c.deserialize(Some(s.as_bytes())).unwrap();
    assert_eq!(
        read(r#"{ "schema": { "type": "int8" }, "payload": 0012 }"#).value,
        Value::Int8(12)
    );
    assert_eq!(
        read(r#"{ "schema": { "type": "int64" }, "payload": 00000123456789 }"#).value,
        Value::Int64(123_456_789)
    );
    assert_eq!(
        read(r#"{ "schema": { "type": "float" }, "payload": 12.34 }"#).value,
        Value::Float32(12.34)
    );
    assert_eq!(
        read(r#"{ "schema": { "type": "bytes" }, "payload": "dGVzdC1zdHJpbmc=" }"#).value,
        Value::Bytes(b"test-string".to_vec())
    );
    let non_string_keys = read(
        r#"{ "schema": { "type": "map", "keys": { "type" : "int32" }, "values": { "type" : "int32" } }, "payload": [ [1, 12], [2, 15] ] }"#,
    );
    assert_eq!(
        non_string_keys.value,
        Value::Map(vec![
            (Value::Int32(1), Value::Int32(12)),
            (Value::Int32(2), Value::Int32(15))
        ])
    );
    let optional_field = read(
        r#"{ "schema": { "type": "struct", "fields": [{ "field":"optional", "type": "string", "optional": true }, {  "field": "required", "type": "string" }] }, "payload": { "required": "required" } }"#,
    );
    let expected_schema = SchemaBuilder::struct_()
        .field("optional", Schema::primitive(SchemaType::String, true))
        .field("required", prim(SchemaType::String))
        .build();
    assert_eq!(optional_field.schema.as_ref(), Some(&expected_schema));
    assert_eq!(
        optional_field.value,
        Value::Struct(Struct::new(expected_schema).with("required", Value::from("required")))
    );
    let dec = |payload: &str, scale: i32| {
        read(&format!(
            r#"{{ "schema": {{ "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1, "parameters": {{ "scale": "{scale}" }} }}, "payload": {payload} }}"#
        ))
    };
    // base64 of {0, -100}: the two's complement of 156.
    let sv = dec("\"AJw=\"", 2);
    assert_eq!(
        sv.schema.as_deref(),
        Some(logical::decimal(2).build().as_ref())
    );
    assert_eq!(sv.value, Value::Decimal(Decimal::from_i128(156, 2)));
    assert_eq!(
        dec("1.5600", 4).value,
        Value::Decimal(Decimal::from_i128(15600, 4))
    );
    assert_eq!(
        dec("1.23456789123456789", 17).value,
        Value::Decimal(Decimal::from_i128(123_456_789_123_456_789, 17))
    );
    let null_schema =
        |payload: &str| read(&format!(r#"{{ "schema": null, "payload": {payload} }}"#));
    assert_eq!(null_schema("null"), SchemaAndValue::null());
    assert_eq!(null_schema("12").value, Value::Int64(12));
    assert_eq!(null_schema("12.24").value, Value::Float64(12.24));
    assert_eq!(
        null_schema(r#"[1, "2", 3]"#).value,
        Value::Array(vec![Value::Int64(1), Value::from("2"), Value::Int64(3)])
    );
    assert!(c
        .serialize(Some(&prim(SchemaType::Float64)), &Value::Boolean(true))
        .is_err());
    let numeric = converter(&[("decimal.format", "NUMERIC")]);
    assert_eq!(
        json(
            &numeric,
            &logical::decimal(4).build(),
            Value::Decimal(Decimal::from_i128(15600, 4))
        ),
        r#"{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"4"}},"payload":1.5600}"#
    );
    assert_eq!(
        json(
            &c,
            &logical::timestamp().build(),
            Value::Timestamp(4_000_000_000)
        ),
        r#"{"schema":{"type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1},"payload":4000000000}"#
    );
}
