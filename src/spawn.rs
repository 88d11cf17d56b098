//! Named task spawning. Every background task of the worker goes through
//! here, so logs and panics name the task and nothing runs anonymously.

use std::future::Future;

use tokio::task::JoinHandle;
use tracing::Instrument;

/// Spawns `fut` on the runtime inside a tracing span named after the task.
/// Cancellation is the caller's: pass the future a `CancellationToken`.
pub fn spawn_named<F>(name: impl Into<String>, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let name = name.into();
    let span = tracing::info_span!("task", name = %name);
    tokio::spawn(fut.instrument(span))
}
