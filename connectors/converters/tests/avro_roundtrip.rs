//! Property tests: random Connect schemas and values go Connect → Avro
//! schema text + Avro binary → Connect and come back equal, for every
//! Connect type and logical type. A small seeded generator keeps the runs
//! reproducible without a property-testing dependency; each datum is also
//! decoded by `apache_avro` as an independent check of the binary.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use connect_api::data::{logical, Decimal};
use connect_api::{Schema, SchemaBuilder, SchemaRef, SchemaType, Struct, Value};
use connect_converters::avro::codec::{Decoder, Encoder, Reader};
use connect_converters::avro::schema::{parse, Names};
use connect_converters::avro::AvroDataConfig;

/// xorshift64*: tiny, seeded, good enough for shapes and values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn string(&mut self) -> String {
        let len = self.below(12) as usize;
        (0..len)
            .map(|_| match self.below(6) {
                0 => 'é',
                1 => '"',
                2 => '猫',
                _ => char::from(b'a' + self.below(26) as u8),
            })
            .collect()
    }
    fn bytes(&mut self) -> Vec<u8> {
        let len = self.below(10) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

struct Gen {
    rng: Rng,
    names: usize,
    unnamed_entry_map: bool,
}

impl Gen {
    fn fresh_name(&mut self) -> String {
        self.names += 1;
        format!("gen.ns{}.S{}", self.names % 3, self.names)
    }

    fn primitive(&mut self) -> SchemaBuilder {
        match self.rng.below(13) {
            0 => SchemaBuilder::int8(),
            1 => SchemaBuilder::int16(),
            2 => SchemaBuilder::int32(),
            3 => SchemaBuilder::int64(),
            4 => SchemaBuilder::float32(),
            5 => SchemaBuilder::float64(),
            6 => SchemaBuilder::boolean(),
            7 => SchemaBuilder::string(),
            8 => SchemaBuilder::bytes(),
            9 => {
                let b = logical::decimal(self.rng.below(6) as i32);
                if self.rng.chance(30) {
                    b.parameter("connect.decimal.precision", "20")
                } else {
                    b
                }
            }
            10 => logical::date(),
            11 => logical::time(),
            _ => logical::timestamp(),
        }
    }

    fn schema(&mut self, depth: usize) -> SchemaRef {
        let kind = if depth >= 3 { 0 } else { self.rng.below(6) };
        let mut b = match kind {
            0 | 1 => {
                let b = self.primitive();
                if self.rng.chance(20) {
                    let d = self.value_of(&b.clone().build(), 9);
                    b.default_value(d)
                } else {
                    b
                }
            }
            2 => SchemaBuilder::array(self.schema(depth + 1)),
            3 => {
                let string_keys = self.rng.chance(50);
                if string_keys {
                    SchemaBuilder::map(SchemaBuilder::string().build(), self.schema(depth + 1))
                } else {
                    let mut key = self.schema(depth + 1);
                    if key.schema_type == SchemaType::String && !key.optional {
                        // A required string key makes an Avro map, whose keys
                        // have no schema: a key default could not survive
                        // (Java loses it too).
                        key = SchemaBuilder::string().build();
                    }
                    let value = self.schema(depth + 1);
                    let b = SchemaBuilder::map(key, value);
                    // Two different unnamed MapEntry records in one schema
                    // are a redefinition Avro (and Java) refuse.
                    if self.unnamed_entry_map || self.rng.chance(50) {
                        b.name(self.fresh_name())
                    } else {
                        self.unnamed_entry_map = true;
                        b
                    }
                }
            }
            _ => {
                let mut b = SchemaBuilder::struct_();
                if self.rng.chance(50) {
                    b = b.name(self.fresh_name());
                    if self.rng.chance(30) {
                        b = b.version(self.rng.below(5) as i32 + 1).doc("generated");
                    }
                    if self.rng.chance(30) {
                        b = b.parameter("k", "v");
                    }
                }
                for i in 0..self.rng.below(4) + 1 {
                    b = b.field(format!("f{i}"), self.schema(depth + 1));
                }
                b
            }
        };
        if self.rng.chance(30) {
            b = b.optional();
        }
        b.build()
    }

    fn value_of(&mut self, s: &SchemaRef, depth: usize) -> Value {
        let has_default = s.default_value.is_some();
        if s.optional && !has_default && depth < 9 && self.rng.chance(20) {
            return Value::Null;
        }
        let r = &mut self.rng;
        match s.name.as_deref() {
            Some(logical::DECIMAL) => {
                let scale = s.parameters["scale"].parse().unwrap();
                let v = (r.next() as i64 >> r.below(60)) as i128;
                return Value::Decimal(Decimal::from_i128(v, scale));
            }
            Some(logical::DATE) => return Value::Date(r.below(40_000) as i32 - 20_000),
            Some(logical::TIME) => return Value::Time(r.below(86_400_000) as i32),
            Some(logical::TIMESTAMP) => return Value::Timestamp(r.next() as i64 >> 20),
            _ => {}
        }
        match s.schema_type {
            SchemaType::Int8 => Value::Int8(r.next() as i8),
            SchemaType::Int16 => Value::Int16(r.next() as i16),
            SchemaType::Int32 => Value::Int32(r.next() as i32),
            SchemaType::Int64 => Value::Int64(r.next() as i64),
            SchemaType::Float32 => Value::Float32((r.next() as i32) as f32 / 8.0),
            SchemaType::Float64 => Value::Float64((r.next() as i64) as f64 / 1024.0),
            SchemaType::Boolean => Value::Boolean(r.chance(50)),
            SchemaType::String => Value::String(r.string()),
            SchemaType::Bytes => Value::Bytes(r.bytes()),
            SchemaType::Array => {
                let elem = s.value_schema.clone().unwrap();
                let n = self.rng.below(4);
                Value::Array((0..n).map(|_| self.value_of(&elem, depth + 1)).collect())
            }
            SchemaType::Map => {
                let (k, v) = (
                    s.key_schema.clone().unwrap(),
                    s.value_schema.clone().unwrap(),
                );
                let n = self.rng.below(4);
                Value::Map(
                    (0..n)
                        .map(|_| (self.value_of(&k, depth + 1), self.value_of(&v, depth + 1)))
                        .collect(),
                )
            }
            SchemaType::Struct => {
                let mut st = Struct::new(s.clone());
                for f in &s.fields {
                    st.values[f.index] = self.value_of(&f.schema, depth + 1);
                }
                Value::Struct(st)
            }
        }
    }
}

/// Encodes, decodes, and checks schema and value equality.
fn round_trip(cfg: AvroDataConfig, schema: &SchemaRef, value: &Value) {
    let avro = cfg.from_connect_schema(schema).unwrap();
    let text = avro.to_json_string();
    let mut bytes = Vec::new();
    Encoder {
        names: &Names::new(),
        config: cfg,
    }
    .write(&mut bytes, schema, &avro, value)
    .unwrap_or_else(|e| panic!("encode {value:?} with {text}: {e}"));

    let (writer, names) = parse(&text).unwrap();
    let back_schema = cfg.to_connect_schema(&writer, &names, None).unwrap();
    assert_eq!(&back_schema, schema, "schema round trip of {text}");
    let mut reader = Reader::new(&bytes);
    let back = Decoder {
        names: &names,
        config: cfg,
    }
    .read(&mut reader, &back_schema, &writer)
    .unwrap_or_else(|e| panic!("decode with {text}: {e}"));
    assert_eq!(reader.remaining(), 0, "trailing bytes for {text}");
    assert_eq!(&back, value, "value round trip with {text}");

    // An independent decoder must read the same bytes to the end.
    let apache = apache_avro::Schema::parse_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let mut slice = &bytes[..];
    apache_avro::reader::datum::GenericDatumReader::builder(&apache)
        .build()
        .and_then(|r| r.read_value(&mut slice))
        .unwrap_or_else(|e| panic!("apache_avro decode with {text}: {e}"));
    assert!(slice.is_empty(), "apache_avro left bytes for {text}");
}

#[test]
fn random_schemas_and_values_round_trip() {
    for seed in 1..=400u64 {
        let mut g = Gen {
            rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            names: 0,
            unnamed_entry_map: false,
        };
        let schema = g.schema(0);
        for _ in 0..3 {
            let value = g.value_of(&schema, 0);
            if value.is_null() {
                continue; // a top-level null is a tombstone, not a datum
            }
            round_trip(AvroDataConfig::default(), &schema, &value);
        }
    }
}

#[test]
fn every_logical_type_round_trips_at_extremes() {
    let cfg = AvroDataConfig::default();
    let cases: Vec<(SchemaRef, Value)> = vec![
        (
            logical::decimal(0).build(),
            Value::Decimal(Decimal::from_i128(i128::MAX, 0)),
        ),
        (
            logical::decimal(9).build(),
            Value::Decimal(Decimal::from_i128(i128::MIN, 9)),
        ),
        (
            logical::decimal(2).build(),
            Value::Decimal(Decimal::from_i128(-1, 2)),
        ),
        (logical::date().build(), Value::Date(i32::MIN)),
        (logical::time().build(), Value::Time(86_399_999)),
        (logical::timestamp().build(), Value::Timestamp(i64::MIN)),
        (logical::timestamp().build(), Value::Timestamp(i64::MAX)),
        (SchemaBuilder::int8().build(), Value::Int8(i8::MIN)),
        (SchemaBuilder::int16().build(), Value::Int16(i16::MAX)),
        (
            SchemaBuilder::float64().build(),
            Value::Float64(f64::INFINITY),
        ),
        (SchemaBuilder::string().build(), Value::from("")),
    ];
    for (s, v) in cases {
        round_trip(cfg, &s, &v);
    }
}

#[test]
fn connect_unions_and_enums_round_trip() {
    // Reading back, Java (and we) flag the union's `null` field default as
    // an Avro-originated default; the Connect side starts with the flag so
    // the round trip is exact.
    let union = SchemaBuilder::struct_()
        .name("io.confluent.connect.avro.Union")
        .parameter("io.confluent.connect.avro.field.default", "true")
        .field("int", SchemaBuilder::int32().optional().build())
        .field("string", SchemaBuilder::string().optional().build())
        .optional()
        .build();
    let rec = SchemaBuilder::struct_()
        .name("com.example.U")
        .field("u", union.clone())
        .build();
    for member in [
        Some(("int", Value::Int32(7))),
        Some(("string", Value::from("x"))),
        None,
    ] {
        let mut u = Struct::new(union.clone());
        let value = match member {
            Some((f, v)) => {
                u.put(f, v);
                Value::Struct(u)
            }
            None => Value::Null,
        };
        let v = Value::Struct(Struct::new(rec.clone()).with("u", value));
        round_trip(AvroDataConfig::default(), &rec, &v);
    }

    let color = SchemaBuilder::string()
        .name("com.example.Color")
        .parameter("io.confluent.connect.avro.Enum", "com.example.Color")
        .parameter("io.confluent.connect.avro.Enum.RED", "RED")
        .parameter("io.confluent.connect.avro.Enum.GREEN", "GREEN")
        .build();
    let enhanced = AvroDataConfig {
        connect_meta_data: true,
        enhanced_schema_support: true,
    };
    round_trip(enhanced, &color, &Value::from("GREEN"));
}

#[test]
fn foreign_avro_schemas_map_like_java() {
    // A schema written by a plain Avro producer: field defaults without
    // connect.default get the `field.default` flag, names come from records.
    let text = r#"{"type":"record","name":"Ev","namespace":"x","fields":[{"name":"n","type":"int","default":5},{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},{"name":"f","type":{"type":"fixed","name":"F","size":2}},{"name":"u","type":["null","string","long"]}]}"#;
    let (avro, names) = parse(text).unwrap();
    let cfg = AvroDataConfig::default();
    let s = cfg.to_connect_schema(&avro, &names, Some(3)).unwrap();
    assert_eq!(s.name.as_deref(), Some("x.Ev"));
    assert_eq!(s.version, Some(3));
    let n = &s.field("n").unwrap().schema;
    assert_eq!(n.default_value, Some(Value::Int32(5)));
    assert_eq!(
        n.parameters
            .get("io.confluent.connect.avro.field.default")
            .map(String::as_str),
        Some("true")
    );
    let e = &s.field("e").unwrap().schema;
    assert_eq!(e.schema_type, SchemaType::String);
    assert_eq!(e.parameters["io.confluent.connect.avro.Enum"], "x.E");
    let f = &s.field("f").unwrap().schema;
    assert_eq!(f.parameters["connect.fixed.size"], "2");
    let u = &s.field("u").unwrap().schema;
    assert_eq!(u.name.as_deref(), Some("io.confluent.connect.avro.Union"));
    assert!(u.optional);
    let fields: Vec<&str> = u.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(fields, ["string", "long"]);

    // Datum: n=5, e=B, f=[1,2], u=long 9.
    let bytes = [10u8, 2, 1, 2, 4, 18];
    let v = Decoder {
        names: &names,
        config: cfg,
    }
    .read(&mut Reader::new(&bytes), &s, &avro)
    .unwrap();
    let Value::Struct(st) = v else { panic!() };
    assert_eq!(st.get("n"), Some(&Value::Int32(5)));
    assert_eq!(st.get("e"), Some(&Value::from("B")));
    assert_eq!(st.get("f"), Some(&Value::Bytes(vec![1, 2])));
    let Some(Value::Struct(us)) = st.get("u") else {
        panic!()
    };
    assert_eq!(us.get("long"), Some(&Value::Int64(9)));
}

#[test]
fn null_handling_matches_java() {
    let cfg = AvroDataConfig::default();
    let s = SchemaBuilder::struct_()
        .field("req", SchemaBuilder::int32().build())
        .build();
    let avro = cfg.from_connect_schema(&s).unwrap();
    let mut out = Vec::new();
    let err = Encoder {
        names: &Names::new(),
        config: cfg,
    }
    .write(&mut out, &s, &avro, &Value::Struct(Struct::new(s.clone())))
    .unwrap_err();
    assert!(err.to_string().contains("non-optional"), "{err}");
    let _: Arc<Schema> = s;
}
