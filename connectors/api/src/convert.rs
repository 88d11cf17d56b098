//! Converters between Connect data and the bytes stored in Kafka.

use async_trait::async_trait;

use crate::config::{ConfigDef, Props};
use crate::data::{Headers, SchemaAndValue, SchemaRef, Value};
use crate::error::ConnectResult;

/// Turns Connect values into record keys or values and back (Java's `Converter`).
///
/// The methods are async because a registry-backed converter may have to
/// register or fetch a schema; implementations cache so the steady state
/// never awaits I/O.
// `from_connect` mirrors Java's method name, not a `From`-style constructor.
#[allow(clippy::wrong_self_convention)]
#[async_trait]
pub trait Converter: Send + Sync {
    /// Reads the converter's settings (prefix removed). `is_key` tells whether
    /// it converts record keys or values.
    fn configure(&mut self, props: &Props, is_key: bool) -> ConnectResult<()>;
    fn config_def(&self) -> ConfigDef;
    async fn from_connect(
        &self,
        topic: &str,
        headers: &mut Headers,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> ConnectResult<Option<Vec<u8>>>;
    async fn to_connect(
        &self,
        topic: &str,
        headers: &Headers,
        bytes: Option<&[u8]>,
    ) -> ConnectResult<SchemaAndValue>;
}

/// Converts header values (Java's `HeaderConverter`).
#[allow(clippy::wrong_self_convention)]
pub trait HeaderConverter: Send + Sync {
    fn configure(&mut self, props: &Props) -> ConnectResult<()>;
    fn config_def(&self) -> ConfigDef;
    fn from_connect_header(
        &self,
        topic: &str,
        key: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> ConnectResult<Option<Vec<u8>>>;
    fn to_connect_header(
        &self,
        topic: &str,
        key: &str,
        bytes: Option<&[u8]>,
    ) -> ConnectResult<SchemaAndValue>;
}
