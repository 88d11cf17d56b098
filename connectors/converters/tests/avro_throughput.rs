//! Encode/decode throughput of the Avro codec on ~1 KB documents, without
//! the registry (ids are cached in the steady state). Not a timed test:
//! run with `cargo test --release -p connect-converters --test
//! avro_throughput -- --ignored --nocapture` and read the printed rates.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use connect_api::data::{logical, Decimal};
use connect_api::{SchemaBuilder, Struct, Value};
use connect_converters::avro::codec::{Decoder, Encoder, Reader};
use connect_converters::avro::schema::{parse, Names};
use connect_converters::avro::AvroDataConfig;

#[test]
#[ignore]
fn codec_throughput_on_1kb_documents() {
    let cfg = AvroDataConfig::default();
    let item = SchemaBuilder::struct_()
        .name("bench.Item")
        .field("sku", SchemaBuilder::string().build())
        .field("qty", SchemaBuilder::int32().build())
        .field("price", logical::decimal(2).optional().build())
        .build();
    let schema = SchemaBuilder::struct_()
        .name("bench.Doc")
        .field("_id", SchemaBuilder::string().build())
        .field("name", SchemaBuilder::string().optional().build())
        .field("at", logical::timestamp().optional().build())
        .field("n", SchemaBuilder::int64().optional().build())
        .field("score", SchemaBuilder::float64().optional().build())
        .field(
            "tags",
            SchemaBuilder::array(SchemaBuilder::string().build())
                .optional()
                .build(),
        )
        .field(
            "items",
            SchemaBuilder::array(item.clone()).optional().build(),
        )
        .field("note", SchemaBuilder::string().optional().build())
        .build();
    let items: Vec<Value> = (0..8)
        .map(|i| {
            Value::Struct(
                Struct::new(item.clone())
                    .with("sku", Value::from(format!("SKU-{i:08}")))
                    .with("qty", Value::Int32(i))
                    .with(
                        "price",
                        Value::Decimal(Decimal::from_i128(1999 + i128::from(i), 2)),
                    ),
            )
        })
        .collect();
    let doc = Value::Struct(
        Struct::new(schema.clone())
            .with("_id", Value::from("65a1b2c3d4e5f60718293a4b"))
            .with("name", Value::from("a document of about one kilobyte"))
            .with("at", Value::Timestamp(1_700_000_000_000))
            .with("n", Value::Int64(123_456_789))
            .with("score", Value::Float64(0.75))
            .with(
                "tags",
                Value::Array((0..10).map(|i| Value::from(format!("tag-{i}"))).collect()),
            )
            .with("items", Value::Array(items))
            .with("note", Value::from("x".repeat(500))),
    );
    let avro = cfg.from_connect_schema(&schema).unwrap();
    let enc = Encoder {
        names: &Names::new(),
        config: cfg,
    };
    let mut out = Vec::new();
    enc.write(&mut out, &schema, &avro, &doc).unwrap();
    println!("datum size {} bytes", out.len());

    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        let mut buf = Vec::with_capacity(1024);
        enc.write(&mut buf, &schema, &avro, &doc).unwrap();
        std::hint::black_box(buf);
    }
    let enc_s = t.elapsed().as_secs_f64();
    let (writer, names) = parse(&avro.to_json_string()).unwrap();
    let cs = cfg.to_connect_schema(&writer, &names, None).unwrap();
    let dec = Decoder {
        names: &names,
        config: cfg,
    };
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(dec.read(&mut Reader::new(&out), &cs, &writer).unwrap());
    }
    let dec_s = t.elapsed().as_secs_f64();
    println!(
        "encode: {:.2} CPU-s per million docs; decode: {:.2} CPU-s per million docs",
        enc_s * 1e6 / n as f64,
        dec_s * 1e6 / n as f64
    );
}
