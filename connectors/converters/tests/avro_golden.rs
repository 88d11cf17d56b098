//! Golden tests: the Avro schema text generated for Connect schemas must be
//! byte-identical to what Confluent's `AvroData.fromConnectSchema(...)
//! .toString()` produces, since the registry identifies schemas by text and
//! consumers compare them. Expected texts live in `tests/golden/avro/*.avsc`
//! and were written by reading AvroData (property order, `ConnectDefault`
//! numbering, namespace inheritance, defaults, unions).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use connect_api::data::{logical, Decimal};
use connect_api::{SchemaBuilder, SchemaRef, Struct, Value};
use connect_converters::avro::schema::parse;
use connect_converters::avro::AvroDataConfig;

fn golden(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/avro")
        .join(format!("{name}.avsc"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim_end()
        .to_string()
}

fn check_with(cfg: AvroDataConfig, name: &str, schema: &SchemaRef) {
    let text = cfg.from_connect_schema(schema).unwrap().to_json_string();
    assert_eq!(text, golden(name), "golden {name}");
    // Independent validity check with the Apache Avro Rust implementation.
    apache_avro::Schema::parse_str(&text).unwrap_or_else(|e| panic!("{name}: {e}: {text}"));
    // And our parser reads it back to the same text.
    assert_eq!(parse(&text).unwrap().0.to_json_string(), text);
}

fn check(name: &str, schema: &SchemaRef) {
    check_with(AvroDataConfig::default(), name, schema);
}

fn s(b: SchemaBuilder) -> SchemaRef {
    b.build()
}

#[test]
fn primitives() {
    check("int8", &s(SchemaBuilder::int8()));
    check("int16", &s(SchemaBuilder::int16()));
    check("int32", &s(SchemaBuilder::int32()));
    check("int64", &s(SchemaBuilder::int64()));
    check("float32", &s(SchemaBuilder::float32()));
    check("float64", &s(SchemaBuilder::float64()));
    check("boolean", &s(SchemaBuilder::boolean()));
    check("string", &s(SchemaBuilder::string()));
    check("bytes", &s(SchemaBuilder::bytes()));
    check("optional_int32", &s(SchemaBuilder::int32().optional()));
}

#[test]
fn logical_types() {
    check("decimal", &s(logical::decimal(2)));
    check(
        "decimal_precision",
        &s(logical::decimal(3).parameter("connect.decimal.precision", "10")),
    );
    check("date", &s(logical::date()));
    check("time", &s(logical::time()));
    check("timestamp", &s(logical::timestamp()));
}

#[test]
fn unnamed_struct_with_every_type() {
    let nested = s(SchemaBuilder::struct_().field("a", s(SchemaBuilder::int32())));
    let opt_nested = s(SchemaBuilder::struct_()
        .field("b", s(SchemaBuilder::string()))
        .optional());
    let schema = s(SchemaBuilder::struct_()
        .field("i8", s(SchemaBuilder::int8()))
        .field("i16", s(SchemaBuilder::int16()))
        .field("i32", s(SchemaBuilder::int32()))
        .field("i64", s(SchemaBuilder::int64()))
        .field("f32", s(SchemaBuilder::float32()))
        .field("f64", s(SchemaBuilder::float64()))
        .field("b", s(SchemaBuilder::boolean()))
        .field("s", s(SchemaBuilder::string()))
        .field("by", s(SchemaBuilder::bytes()))
        .field("opt_s", s(SchemaBuilder::string().optional()))
        .field(
            "dflt_i",
            s(SchemaBuilder::int32().default_value(Value::Int32(42))),
        )
        .field(
            "opt_dflt_s",
            s(SchemaBuilder::string()
                .optional()
                .default_value(Value::from("x"))),
        )
        .field("arr", s(SchemaBuilder::array(s(SchemaBuilder::string()))))
        .field(
            "map",
            s(SchemaBuilder::map(
                s(SchemaBuilder::string()),
                s(SchemaBuilder::int64()),
            )),
        )
        .field(
            "imap",
            s(SchemaBuilder::map(
                s(SchemaBuilder::int32()),
                s(SchemaBuilder::string()),
            )),
        )
        .field("nested", nested)
        .field("opt_nested", opt_nested)
        .field("dec", s(logical::decimal(2)))
        .field("date", s(logical::date()))
        .field("time", s(logical::time()))
        .field("ts", s(logical::timestamp()))
        .field("opt_ts", s(logical::timestamp().optional())));
    check("unnamed_struct_all_types", &schema);
}

fn person() -> SchemaRef {
    let address = s(SchemaBuilder::struct_()
        .name("com.example.Address")
        .field("street", s(SchemaBuilder::string()))
        .field("zip", s(SchemaBuilder::string().optional())));
    s(SchemaBuilder::struct_()
        .name("com.example.Person")
        .version(2)
        .doc("A person")
        .parameter("owner", "team-a")
        .field("name", s(SchemaBuilder::string()))
        .field("age", s(SchemaBuilder::int32().optional()))
        .field("address", address.clone())
        .field(
            "tags",
            s(SchemaBuilder::array(s(SchemaBuilder::string().optional()))),
        )
        // The same schema again is written as a name reference.
        .field("billing", address))
}

#[test]
fn named_structs_metadata_and_reuse() {
    check("named_struct", &person());
    check_with(
        AvroDataConfig {
            connect_meta_data: false,
            enhanced_schema_support: false,
        },
        "named_struct_no_meta",
        &person(),
    );
}

#[test]
fn namespaces_are_inherited_or_reset() {
    let schema = s(SchemaBuilder::struct_().name("com.x.Outer").field(
        "inner",
        s(SchemaBuilder::struct_()
            .name("Inner")
            .field("v", s(SchemaBuilder::int32()))),
    ));
    check("namespace_handling", &schema);
}

#[test]
fn maps_with_non_string_keys() {
    check(
        "map_int_key",
        &s(SchemaBuilder::map(
            s(SchemaBuilder::int32()),
            s(SchemaBuilder::string().optional()),
        )),
    );
    check(
        "map_named",
        &s(
            SchemaBuilder::map(s(SchemaBuilder::int64()), s(SchemaBuilder::int32()))
                .name("com.example.Counts"),
        ),
    );
    check(
        "map_optional_string_key",
        &s(SchemaBuilder::map(
            s(SchemaBuilder::string().optional()),
            s(SchemaBuilder::int64()),
        )),
    );
}

#[test]
fn defaults_of_every_kind() {
    let point_base = SchemaBuilder::struct_()
        .name("com.example.Point")
        .field("x", s(SchemaBuilder::int32()))
        .field("y", s(SchemaBuilder::int32()));
    let point_value = Struct::new(point_base.clone().build())
        .with("x", Value::Int32(1))
        .with("y", Value::Int32(2));
    let schema = s(SchemaBuilder::struct_()
        .name("com.example.Defaults")
        .field(
            "point",
            s(point_base.default_value(Value::Struct(point_value))),
        )
        .field(
            "raw",
            s(SchemaBuilder::bytes().default_value(Value::Bytes(vec![0x00, 0xff, 0x41]))),
        )
        .field(
            "price",
            s(logical::decimal(2).default_value(Value::Decimal(Decimal::from_i128(0, 2)))),
        )
        .field(
            "ratio",
            s(SchemaBuilder::float32().default_value(Value::Float32(1.5))),
        )
        .field(
            "big",
            s(SchemaBuilder::int64().default_value(Value::Int64(1_234_567_890_123))),
        )
        .field(
            "flag",
            s(SchemaBuilder::boolean().default_value(Value::Boolean(true))),
        )
        .field(
            "small",
            s(SchemaBuilder::int8().default_value(Value::Int8(-3))),
        )
        .field(
            "list",
            s(SchemaBuilder::array(s(SchemaBuilder::int32()))
                .default_value(Value::Array(vec![Value::Int32(1), Value::Int32(2)]))),
        ));
    check("defaults", &schema);
}

#[test]
fn connect_unions() {
    let union = |optional: bool| {
        let b = SchemaBuilder::struct_()
            .name("io.confluent.connect.avro.Union")
            .field("int", s(SchemaBuilder::int32().optional()))
            .field("string", s(SchemaBuilder::string().optional()));
        s(if optional { b.optional() } else { b })
    };
    let schema = s(SchemaBuilder::struct_()
        .name("com.example.WithUnion")
        .field("u", union(false))
        .field("ou", union(true)));
    check("union", &schema);
}

#[test]
fn enums_with_enhanced_support() {
    let schema = s(SchemaBuilder::string()
        .name("com.example.Color")
        .parameter("io.confluent.connect.avro.Enum", "com.example.Color")
        .parameter("io.confluent.connect.avro.Enum.RED", "RED")
        .parameter("io.confluent.connect.avro.Enum.GREEN", "GREEN"));
    check_with(
        AvroDataConfig {
            connect_meta_data: true,
            enhanced_schema_support: true,
        },
        "enum_enhanced",
        &schema,
    );
}
