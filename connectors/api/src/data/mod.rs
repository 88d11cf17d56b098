//! The Connect data model: schemas, values, structs and headers.
//!
//! A [`Value`] is dynamically typed. A [`Schema`] describes it when the data is
//! schema'd (JsonConverter with `schemas.enable=true`, Avro); schemaless data
//! carries `None` as its schema and is interpreted by the value's own variant.
//! Logical types (Decimal, Date, Time, Timestamp) have their own value variants
//! so that converters never have to guess them from a name.

mod header;
pub mod java;
pub mod logical;
mod schema;
mod value;

pub use header::{Header, Headers};
pub use schema::{Field, Schema, SchemaBuilder, SchemaRef, SchemaType};
pub use value::{Decimal, Struct, Value};

/// A value together with its optional schema, as a converter returns it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchemaAndValue {
    pub schema: Option<SchemaRef>,
    pub value: Value,
}

impl SchemaAndValue {
    pub fn new(schema: Option<SchemaRef>, value: Value) -> Self {
        SchemaAndValue { schema, value }
    }

    /// The null value with no schema (Java's `SchemaAndValue.NULL`).
    pub fn null() -> Self {
        SchemaAndValue::default()
    }
}
