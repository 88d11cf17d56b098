//! Errors of this crate; they cross into the worker as [`ConnectError`].

use connect_api::ConnectError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NormalizerError {
    /// The embedded store failed (I/O, corruption detected by the engine).
    #[error("state store {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: fjall::Error,
    },
    #[error("state store {path}: {message}")]
    StoreIo { path: String, message: String },
    /// The local store holds something this version cannot read.
    #[error("state store {path} is corrupt: {message}")]
    Corrupt { path: String, message: String },
    /// State cannot be restored without risking a wrong changelog.
    #[error("cannot restore normalizer state for {partition}: {message}")]
    Recovery { partition: String, message: String },
}

impl From<NormalizerError> for ConnectError {
    fn from(e: NormalizerError) -> Self {
        // None of these heal by retrying the same call: the task must stop
        // (and be restarted) rather than emit a changelog from bad state.
        ConnectError::fatal(e.to_string())
    }
}
