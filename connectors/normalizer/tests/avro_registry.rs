//! The Avro envelope against the live registry started by
//! `scripts/dev-env.sh up`: the schema registers under `<output>-value` and
//! the bytes decode (through the registry, by schema id) to the envelope
//! with the right record names, op and images.

#![allow(clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use connect_api::data::{Schema, SchemaBuilder, SchemaType, Struct};
use connect_api::{Converter, Headers, Props, Value};
use connect_converters::AvroConverter;
use connect_normalizer::config::{DocumentEncoding, OutputFormat};
use connect_normalizer::envelope::{EnvelopeEncoder, SourceInfo};
use connect_normalizer::fold::Event;

fn registry_url() -> String {
    std::env::var("SCHEMA_REGISTRY_URL").unwrap_or_else(|_| {
        panic!(
            "SCHEMA_REGISTRY_URL is not set: start the test registry with \
             `eval \"$(scripts/dev-env.sh up)\"`"
        )
    })
}

fn props() -> Props {
    let mut p = Props::new();
    p.insert("schema.registry.url".into(), registry_url());
    p
}

fn source(topic: &str) -> SourceInfo {
    SourceInfo {
        topic: topic.into(),
        partition: 0,
        offset: 9,
        timestamp: Some(1_700_000_000_000),
        snapshot: false,
        db: Some("shop".into()),
        collection: Some("orders".into()),
        cluster_time: Some("Timestamp(1700000000, 1)".into()),
    }
}

fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.as_struct().unwrap().get(name).unwrap()
}

#[tokio::test]
async fn avro_envelopes_register_and_decode() {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let input = format!("norm{n}.shop.orders");
    let output = format!("{input}.changelog");
    let enc =
        EnvelopeEncoder::new("norm", OutputFormat::Avro, DocumentEncoding::Auto, &props()).unwrap();
    let mut reader = AvroConverter::new();
    reader.configure(&props(), false).unwrap();

    // Typed documents (an input with a struct schema).
    let schema = SchemaBuilder::struct_()
        .name("io.example.Order")
        .field("id", Schema::primitive(SchemaType::Int64, false))
        .field("qty", Schema::primitive(SchemaType::Int32, true))
        .build();
    let doc = |qty: i32| {
        enc.encode_doc(
            Some(&schema),
            &Value::Struct(
                Struct::new(schema.clone())
                    .with("id", Value::Int64(1))
                    .with("qty", Value::Int32(qty)),
            ),
        )
        .unwrap()
    };
    let ev = Event::Update {
        before: doc(2),
        after: doc(3),
    };
    let bytes = enc
        .encode(&output, &ev, &source(&input), 1_700_000_000_000_000_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bytes[0], 0, "Confluent wire format");
    let back = reader
        .to_connect(&output, &Headers::new(), Some(&bytes))
        .await
        .unwrap();
    let s = back.schema.unwrap();
    assert_eq!(
        s.name.as_deref(),
        Some(format!("{input}.Envelope").as_str())
    );
    assert_eq!(field(&back.value, "op").as_str(), Some("u"));
    assert_eq!(field(field(&back.value, "before"), "qty"), &Value::Int32(2));
    assert_eq!(field(field(&back.value, "after"), "qty"), &Value::Int32(3));
    assert_eq!(
        s.field("after").unwrap().schema.name.as_deref(),
        Some(format!("{input}.Value").as_str())
    );
    assert_eq!(
        field(field(&back.value, "source"), "offset"),
        &Value::Int64(9)
    );

    // JSON-text documents (the MongoDB source) on another topic.
    let input2 = format!("{input}2");
    let text = enc
        .encode_doc(
            Some(&Schema::primitive(SchemaType::String, true)),
            &Value::String(r#"{"_id": 1}"#.into()),
        )
        .unwrap();
    let out2 = format!("{input2}.changelog");
    let bytes = enc
        .encode(
            &out2,
            &Event::Delete { before: text },
            &source(&input2),
            1_700_000_000_000_000_000,
        )
        .await
        .unwrap()
        .unwrap();
    let back = reader
        .to_connect(&out2, &Headers::new(), Some(&bytes))
        .await
        .unwrap();
    assert_eq!(field(&back.value, "op").as_str(), Some("d"));
    assert_eq!(field(&back.value, "before").as_str(), Some(r#"{"_id": 1}"#));
    assert!(field(&back.value, "after").is_null());
}
