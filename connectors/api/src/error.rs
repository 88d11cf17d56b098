//! The one error type that crosses the plugin boundary.
//!
//! The worker decides what to do with a failure from its variant: a
//! [`ConnectError::Retriable`] is retried with backoff, a [`ConnectError::Data`]
//! is eligible for `errors.tolerance=all` (log, dead letter queue), and
//! everything else fails the connector or task with the message as its trace.

use thiserror::Error;

/// Result alias used by every plugin trait.
pub type ConnectResult<T> = Result<T, ConnectError>;

/// A failure reported by a connector, task, converter or transform.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ConnectError {
    /// A configuration value is missing or invalid.
    #[error("Invalid value {value} for configuration {key}: {message}")]
    Config {
        key: String,
        value: String,
        message: String,
    },
    /// A transient failure: the same call may succeed later.
    #[error("{0}")]
    Retriable(String),
    /// One record could not be converted or transformed; other records may be fine.
    #[error("{0}")]
    Data(String),
    /// Anything else: the connector or task cannot continue.
    #[error("{0}")]
    Fatal(String),
}

impl ConnectError {
    pub fn config(
        key: impl Into<String>,
        value: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConnectError::Config {
            key: key.into(),
            value: value.into(),
            message: message.into(),
        }
    }

    pub fn data(message: impl Into<String>) -> Self {
        ConnectError::Data(message.into())
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        ConnectError::Fatal(message.into())
    }

    pub fn retriable(message: impl Into<String>) -> Self {
        ConnectError::Retriable(message.into())
    }

    pub fn is_retriable(&self) -> bool {
        matches!(self, ConnectError::Retriable(_))
    }

    /// The Java class name that the REST status `trace` starts with, so that
    /// tooling which greps traces for exception names keeps working.
    pub fn java_class(&self) -> &'static str {
        match self {
            ConnectError::Config { .. } => "org.apache.kafka.common.config.ConfigException",
            ConnectError::Retriable(_) => "org.apache.kafka.connect.errors.RetriableException",
            ConnectError::Data(_) => "org.apache.kafka.connect.errors.DataException",
            ConnectError::Fatal(_) => "org.apache.kafka.connect.errors.ConnectException",
        }
    }
}
