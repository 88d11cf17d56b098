//! AvroConverter against a live Confluent-compatible registry (Apicurio's
//! ccompat API started by `scripts/dev-env.sh up`): auto-registration and
//! read-back, subject name strategies, an incompatible change rejected with
//! the subject named, the steady state sending no request, and an external
//! decode of our bytes by Python's confluent-kafka `AvroDeserializer` and
//! `fastavro`.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use connect_api::data::{logical, Decimal};
use connect_api::{
    ConnectError, Converter, Headers, Props, SchemaBuilder, SchemaRef, Struct, Value,
};
use connect_converters::AvroConverter;

fn registry_url() -> String {
    std::env::var("SCHEMA_REGISTRY_URL").unwrap_or_else(|_| {
        panic!(
            "SCHEMA_REGISTRY_URL is not set: start the test registry with \
             `eval \"$(scripts/dev-env.sh up)\"` (Apicurio Registry, Confluent API at \
             http://127.0.0.1:8081/apis/ccompat/v7)"
        )
    })
}

/// A prefix unique to this run: the registry keeps subjects while it runs.
fn unique(prefix: &str) -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{n}")
}

fn converter(extra: &[(&str, &str)], is_key: bool) -> AvroConverter {
    let mut props = Props::new();
    props.insert("schema.registry.url".into(), registry_url());
    for (k, v) in extra {
        props.insert((*k).into(), (*v).into());
    }
    let mut c = AvroConverter::new();
    c.configure(&props, is_key).unwrap();
    c
}

fn order_schema(name: &str) -> SchemaRef {
    SchemaBuilder::struct_()
        .name(name)
        .field("id", SchemaBuilder::int64().build())
        .field("name", SchemaBuilder::string().build())
        .field("price", logical::decimal(2).build())
        .field("at", logical::timestamp().build())
        .field("day", logical::date().build())
        .field("qty", SchemaBuilder::int16().build())
        .field(
            "tags",
            SchemaBuilder::array(SchemaBuilder::string().build()).build(),
        )
        .field("note", SchemaBuilder::string().optional().build())
        .build()
}

fn order_value(schema: &SchemaRef) -> Value {
    Value::Struct(
        Struct::new(schema.clone())
            .with("id", Value::Int64(42))
            .with("name", Value::from("widget ✓"))
            .with("price", Value::Decimal(Decimal::from_i128(12_345, 2)))
            .with("at", Value::Timestamp(1_700_000_000_123))
            .with("day", Value::Date(19_700))
            .with("qty", Value::Int16(-7))
            .with(
                "tags",
                Value::Array(vec![Value::from("a"), Value::from("b")]),
            ),
    )
}

#[tokio::test]
async fn registers_reads_back_and_caches() {
    let topic = unique("avro-it-");
    let c = converter(&[], false);
    let client = c.registry_client().unwrap();
    let schema = order_schema("com.example.Order");
    let value = order_value(&schema);

    let bytes = c
        .from_connect(&topic, &mut Headers::new(), Some(&schema), &value)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bytes[0], 0, "magic byte");
    let id = i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);

    // Registered under <topic>-value, with exactly the text we generate.
    let latest = client.latest(&format!("{topic}-value")).await.unwrap();
    assert_eq!(latest.id, id);
    assert_eq!(latest.version, 1);
    assert_eq!(
        latest.schema.as_ref(),
        c.avro_schema_text(&schema).unwrap().as_str()
    );

    // A fresh converter reads it back by id. Like Java, a schema without
    // connect.version gets the subject version (1) as its Connect version.
    let reader = converter(&[], false);
    let back = reader
        .to_connect(&topic, &Headers::new(), Some(&bytes))
        .await
        .unwrap();
    let back_schema = back.schema.clone().unwrap();
    let mut expected = (*schema).clone();
    expected.version = Some(1);
    assert_eq!(*back_schema, expected);
    let (Value::Struct(b), Value::Struct(v)) = (&back.value, &value) else {
        panic!("{back:?}")
    };
    assert_eq!(b.values, v.values);

    // Steady state: no request for a known schema, written or read, even
    // through an equal schema in a new allocation.
    let (w0, r0) = (
        client.request_count(),
        reader.registry_client().unwrap().request_count(),
    );
    for _ in 0..3 {
        let again = c
            .from_connect(&topic, &mut Headers::new(), Some(&schema), &value)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again, bytes);
        let copy: SchemaRef = Arc::new((*schema).clone());
        c.from_connect(
            &topic,
            &mut Headers::new(),
            Some(&copy),
            &order_value(&copy),
        )
        .await
        .unwrap();
        reader
            .to_connect(&topic, &Headers::new(), Some(&bytes))
            .await
            .unwrap();
    }
    assert_eq!(
        client.request_count(),
        w0,
        "writer sent requests in steady state"
    );
    assert_eq!(
        reader.registry_client().unwrap().request_count(),
        r0,
        "reader sent requests in steady state"
    );

    // Null: a tombstone for an optional schema, a data error otherwise.
    let opt = SchemaBuilder::string().optional().build();
    assert_eq!(
        c.from_connect(&topic, &mut Headers::new(), Some(&opt), &Value::Null)
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        c.from_connect(&topic, &mut Headers::new(), Some(&schema), &Value::Null)
            .await,
        Err(ConnectError::Data(_))
    ));
    let bad = reader
        .to_connect(&topic, &Headers::new(), Some(&[1, 0, 0, 0, 1]))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("Unknown magic byte"), "{bad}");

    external_decode(&topic, &bytes);

    // Schemaless data goes through Confluent's Anything record.
    let schemaless = Value::Map(vec![
        (
            Value::from("k"),
            Value::Array(vec![Value::Int64(1), Value::Null]),
        ),
        (Value::Int32(2), Value::Float64(0.5)),
    ]);
    let loose_topic = format!("{topic}-schemaless");
    let raw = c
        .from_connect(&loose_topic, &mut Headers::new(), None, &schemaless)
        .await
        .unwrap()
        .unwrap();
    let latest = client
        .latest(&format!("{loose_topic}-value"))
        .await
        .unwrap();
    assert!(
        latest.schema.contains("\"name\":\"Anything\""),
        "{}",
        latest.schema
    );
    let back = reader
        .to_connect(&loose_topic, &Headers::new(), Some(&raw))
        .await
        .unwrap();
    assert_eq!(back.schema, None);
    assert_eq!(back.value, schemaless);
}

#[tokio::test]
async fn subject_name_strategies() {
    let topic = unique("avro-sns-");
    let record = format!("com.example.{}.Order", unique("r"));
    let schema = order_schema(&record);
    let value = order_value(&schema);
    let cases = [
        (
            "io.confluent.kafka.serializers.subject.TopicNameStrategy",
            true,
            format!("{topic}-key"),
        ),
        (
            "io.confluent.kafka.serializers.subject.RecordNameStrategy",
            false,
            record.clone(),
        ),
        (
            "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
            false,
            format!("{topic}-{record}"),
        ),
    ];
    for (strategy, is_key, subject) in cases {
        let key = if is_key {
            "key.subject.name.strategy"
        } else {
            "value.subject.name.strategy"
        };
        let c = converter(&[(key, strategy)], is_key);
        let bytes = c
            .from_connect(&topic, &mut Headers::new(), Some(&schema), &value)
            .await
            .unwrap()
            .unwrap();
        let latest = c.registry_client().unwrap().latest(&subject).await.unwrap();
        assert_eq!(
            latest.id,
            i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]),
            "{strategy}"
        );
        let back = c
            .to_connect(&topic, &Headers::new(), Some(&bytes))
            .await
            .unwrap();
        assert_eq!(back.schema.unwrap().name.as_deref(), Some(record.as_str()));
    }
}

#[tokio::test]
async fn incompatible_change_is_rejected_with_the_subject() {
    let topic = unique("avro-compat-");
    let subject = format!("{topic}-value");
    let c = converter(&[], false);
    let client = c.registry_client().unwrap();
    let v1 = SchemaBuilder::struct_()
        .name("com.example.Evolving")
        .field("a", SchemaBuilder::int32().build())
        .build();
    c.from_connect(
        &topic,
        &mut Headers::new(),
        Some(&v1),
        &Value::Struct(Struct::new(v1.clone()).with("a", Value::Int32(1))),
    )
    .await
    .unwrap();
    client
        .set_compatibility(&subject, "BACKWARD")
        .await
        .unwrap();

    // Adding an optional field is backward compatible.
    let v2 = SchemaBuilder::struct_()
        .name("com.example.Evolving")
        .field("a", SchemaBuilder::int32().build())
        .field("b", SchemaBuilder::string().optional().build())
        .build();
    c.from_connect(
        &topic,
        &mut Headers::new(),
        Some(&v2),
        &Value::Struct(Struct::new(v2.clone()).with("a", Value::Int32(2))),
    )
    .await
    .unwrap();

    // Changing a field's type is not.
    let v3 = SchemaBuilder::struct_()
        .name("com.example.Evolving")
        .field("a", SchemaBuilder::string().build())
        .build();
    let err = c
        .from_connect(
            &topic,
            &mut Headers::new(),
            Some(&v3),
            &Value::Struct(Struct::new(v3.clone()).with("a", Value::from("x"))),
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConnectError::Data(_)), "{err:?}");
    assert!(msg.contains(&subject), "{msg}");
    assert!(msg.contains("HTTP 409"), "{msg}");

    // Without auto-registration an unknown schema is a data error too.
    let lookup_only = converter(&[("auto.register.schemas", "false")], false);
    let err = lookup_only
        .from_connect(
            &topic,
            &mut Headers::new(),
            Some(&v3),
            &Value::Struct(Struct::new(v3.clone()).with("a", Value::from("x"))),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Data(_)), "{err:?}");
    assert!(err.to_string().contains(&subject), "{err}");

    // use.latest.version writes with the latest registered schema (v2).
    let latest = converter(
        &[
            ("use.latest.version", "true"),
            ("auto.register.schemas", "false"),
        ],
        false,
    );
    let bytes = latest
        .from_connect(
            &topic,
            &mut Headers::new(),
            Some(&v2),
            &Value::Struct(Struct::new(v2.clone()).with("a", Value::Int32(3))),
        )
        .await
        .unwrap()
        .unwrap();
    let l = client.latest(&subject).await.unwrap();
    assert_eq!(
        i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]),
        l.id
    );
}

/// Decodes our bytes with Python's confluent-kafka AvroDeserializer (through
/// the same registry) and with fastavro, when both are installed.
fn external_decode(topic: &str, bytes: &[u8]) {
    let script = r#"
import io, json, sys
try:
    import fastavro
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import SerializationContext, MessageField
except ImportError as e:
    print(json.dumps({"skip": str(e)}))
    sys.exit(0)
url, topic, data = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
sr = SchemaRegistryClient({"url": url})
d = AvroDeserializer(sr)(data, SerializationContext(topic, MessageField.VALUE))
sid = int.from_bytes(data[1:5], "big")
schema = fastavro.parse_schema(json.loads(sr.get_schema(sid).schema_str))
f = fastavro.schemaless_reader(io.BytesIO(data[5:]), schema)
def norm(r):
    return {"id": r["id"], "name": r["name"], "price": str(r["price"]),
            "at": r["at"].timestamp(), "day": r["day"].isoformat(),
            "qty": r["qty"], "tags": r["tags"], "note": r["note"]}
print(json.dumps({"confluent": norm(d), "fastavro": norm(f)}))
"#;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let out = match Command::new("python3")
        .args(["-c", script, &registry_url(), topic, &hex])
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("external decode skipped: python3 not runnable: {e}");
            return;
        }
    };
    assert!(
        out.status.success(),
        "python decode failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    if let Some(reason) = j.get("skip") {
        eprintln!(
            "external decode skipped: {reason} (pip install -r scripts/requirements-test.txt)"
        );
        return;
    }
    let expected = serde_json::json!({
        "id": 42, "name": "widget ✓", "price": "123.45", "at": 1_700_000_000.123,
        "day": "2023-12-09", "qty": -7, "tags": ["a", "b"], "note": null
    });
    assert_eq!(j["confluent"], expected, "confluent-kafka AvroDeserializer");
    assert_eq!(j["fastavro"], expected, "fastavro");
}
