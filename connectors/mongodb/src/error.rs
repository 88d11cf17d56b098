//! Errors of the MongoDB connector. Each says what was being done and why
//! it failed; [`MongoError::into_connect`] maps them onto the worker's
//! retry/fail decision.

use connect_api::ConnectError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MongoError {
    #[error("invalid value for {key}: {message}")]
    Config { key: String, message: String },
    #[error("{action} failed: {source}")]
    Mongo {
        action: String,
        #[source]
        source: mongodb::error::Error,
    },
    #[error("{0}")]
    HistoryLost(String),
    #[error("{0}")]
    Fatal(String),
}

/// A change event or document that the configured output cannot represent
/// (governed by `errors.tolerance`).
#[derive(Debug, Error, Clone)]
#[error("converting the {op} event of {ns} (document _id {id}) failed: {cause}")]
pub struct ConversionError {
    /// `db.coll`.
    pub ns: String,
    /// The document `_id` as relaxed extended JSON.
    pub id: String,
    pub op: String,
    pub cause: String,
}

impl ConversionError {
    pub fn of_event(ev: &mongodb::bson::Document, cause: String) -> Self {
        let ns = ev.get_document("ns").ok();
        let db = ns.and_then(|n| n.get_str("db").ok()).unwrap_or_default();
        let coll = ns.and_then(|n| n.get_str("coll").ok()).unwrap_or_default();
        ConversionError {
            ns: format!("{db}.{coll}"),
            id: crate::changelog::id_json(ev),
            op: ev.get_str("operationType").unwrap_or_default().to_string(),
            cause,
        }
    }
}

impl From<ConversionError> for MongoError {
    fn from(e: ConversionError) -> Self {
        MongoError::Fatal(e.to_string())
    }
}

impl MongoError {
    pub fn mongo(action: impl Into<String>, source: mongodb::error::Error) -> Self {
        MongoError::Mongo {
            action: action.into(),
            source,
        }
    }

    pub fn into_connect(self) -> ConnectError {
        match self {
            MongoError::Config { key, message } => ConnectError::config(key, "", message),
            other => ConnectError::fatal(other.to_string()),
        }
    }
}

/// Server error code of a driver error, if it carries one.
pub fn code(e: &mongodb::error::Error) -> Option<i32> {
    use mongodb::error::ErrorKind;
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

/// The change-streams specification's resumable errors: any network error,
/// the `ResumableChangeStreamError` label, and (for servers that predate
/// labels) a fixed list of codes.
pub fn is_resumable(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    if matches!(
        e.kind.as_ref(),
        ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::ServerSelection { .. }
    ) {
        return true;
    }
    if e.contains_label("ResumableChangeStreamError") || e.contains_label("RetryableWriteError") {
        return true;
    }
    if e.contains_label("NonResumableChangeStreamError") {
        return false;
    }
    matches!(
        code(e),
        Some(
            6 | 7
                | 43
                | 63
                | 89
                | 91
                | 133
                | 150
                | 189
                | 234
                | 262
                | 9001
                | 10107
                | 11600
                | 11602
                | 13388
                | 13435
                | 13436
        )
    )
}

/// 286 ChangeStreamHistoryLost and 280 ChangeStreamFatalError ("resume token
/// not found"): the stored position is no longer in the oplog.
pub fn is_history_lost(e: &mongodb::error::Error) -> bool {
    matches!(code(e), Some(286 | 280))
}
