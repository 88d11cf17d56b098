//! Error types. `CmdError` is a server-side command failure that is turned
//! into an `{ok: 0, code, codeName, errmsg, errorLabels}` reply; `Error` is
//! the library-level error for starting/running the server.

use bson::{doc, Document};

/// A command failure as the server reports it on the wire.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code_name} ({code}): {msg}")]
pub struct CmdError {
    pub code: i32,
    pub code_name: &'static str,
    pub msg: String,
    pub labels: Vec<String>,
    /// Extra reply fields (e.g. keyPattern/keyValue of a duplicate key);
    /// boxed to keep `CmdResult` small.
    pub extra: Option<Box<Document>>,
}

impl CmdError {
    pub fn new(code: i32, msg: impl Into<String>) -> Self {
        // The server attaches this label to every error in its
        // NonResumableChangeStreamError category.
        let labels = if matches!(code, 280 | 286) {
            vec!["NonResumableChangeStreamError".to_string()]
        } else {
            Vec::new()
        };
        CmdError {
            code,
            code_name: code_name(code),
            msg: msg.into(),
            labels,
            extra: None,
        }
    }
    pub fn bad_value(msg: impl Into<String>) -> Self {
        Self::new(2, msg)
    }
    pub fn failed_to_parse(msg: impl Into<String>) -> Self {
        Self::new(9, msg)
    }
    pub fn type_mismatch(msg: impl Into<String>) -> Self {
        Self::new(14, msg)
    }
    pub fn with_label(mut self, l: &str) -> Self {
        self.labels.push(l.to_string());
        self
    }
    pub fn to_reply(&self) -> Document {
        let mut d =
            doc! {"ok": 0.0, "errmsg": &self.msg, "code": self.code, "codeName": &self.code_name};
        if !self.labels.is_empty() {
            d.insert("errorLabels", self.labels.clone());
        }
        if let Some(x) = &self.extra {
            d.extend((**x).clone());
        }
        d
    }
}

pub type CmdResult<T> = std::result::Result<T, CmdError>;

/// Library errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    #[error("bson encode error: {0}")]
    BsonSer(#[from] bson::ser::Error),
    #[error("bson decode error: {0}")]
    BsonDe(#[from] bson::de::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Server error code names (subset of mongo's error_codes.yml that the
/// simulator can produce or that fail points commonly inject).
pub fn code_name(code: i32) -> &'static str {
    match code {
        1 => "InternalError",
        2 => "BadValue",
        4 => "NoSuchKey",
        6 => "HostUnreachable",
        7 => "HostNotFound",
        9 => "FailedToParse",
        11 => "UserNotFound",
        13 => "Unauthorized",
        14 => "TypeMismatch",
        20 => "IllegalOperation",
        26 => "NamespaceNotFound",
        27 => "IndexNotFound",
        28 => "PathNotViable",
        40 => "ConflictingUpdateOperators",
        43 => "CursorNotFound",
        48 => "NamespaceExists",
        50 => "MaxTimeMSExpired",
        52 => "DollarPrefixedFieldName",
        59 => "CommandNotFound",
        66 => "ImmutableField",
        72 => "InvalidOptions",
        73 => "InvalidNamespace",
        85 => "IndexOptionsConflict",
        86 => "IndexKeySpecsConflict",
        89 => "NetworkTimeout",
        91 => "ShutdownInProgress",
        96 => "OperationFailed",
        112 => "WriteConflict",
        115 => "CommandNotSupported",
        133 => "FailedToSatisfyReadPreference",
        134 => "ReadConcernMajorityNotAvailableYet",
        150 => "StaleEpoch",
        167 => "OplogQueryMinTsMissing",
        175 => "QueryPlanKilled",
        189 => "PrimarySteppedDown",
        216 => "ElectionInProgress",
        234 => "RetryChangeStream",
        237 => "CursorKilled",
        251 => "NoSuchTransaction",
        260 => "InvalidResumeToken",
        262 => "ExceededTimeLimit",
        263 => "OperationNotSupportedInTransaction",
        280 => "ChangeStreamFatalError",
        286 => "ChangeStreamHistoryLost",
        9001 => "SocketException",
        10107 => "NotWritablePrimary",
        10334 => "BSONObjectTooLarge",
        11000 => "DuplicateKey",
        11600 => "InterruptedAtShutdown",
        11601 => "Interrupted",
        11602 => "InterruptedDueToReplStateChange",
        13297 => "DatabaseDifferCase",
        13388 => "StaleConfig",
        13435 => "NotPrimaryNoSecondaryOk",
        13436 => "NotPrimaryOrSecondary",
        63 => "StaleShardVersion",
        121 => "DocumentValidationFailure",
        31082 => "SSLHandshakeFailed",
        _ => "Location",
    }
}
