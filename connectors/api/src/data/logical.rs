//! Names and parameters of Connect's logical types.

use super::schema::{SchemaBuilder, SchemaType};

pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
pub const DECIMAL_SCALE: &str = "scale";
pub const DATE: &str = "org.apache.kafka.connect.data.Date";
pub const TIME: &str = "org.apache.kafka.connect.data.Time";
pub const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";

/// Java's `Decimal.builder(scale)`.
pub fn decimal(scale: i32) -> SchemaBuilder {
    SchemaBuilder::new(SchemaType::Bytes)
        .name(DECIMAL)
        .version(1)
        .parameter(DECIMAL_SCALE, scale.to_string())
}

/// Java's `Date.builder()`.
pub fn date() -> SchemaBuilder {
    SchemaBuilder::new(SchemaType::Int32).name(DATE).version(1)
}

/// Java's `Time.builder()`.
pub fn time() -> SchemaBuilder {
    SchemaBuilder::new(SchemaType::Int32).name(TIME).version(1)
}

/// Java's `Timestamp.builder()`.
pub fn timestamp() -> SchemaBuilder {
    SchemaBuilder::new(SchemaType::Int64)
        .name(TIMESTAMP)
        .version(1)
}
