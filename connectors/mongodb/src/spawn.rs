//! Named task spawning (the connector crate cannot use the worker's helper):
//! every background task runs inside a tracing span that names it, so logs
//! and panics say which task they come from. Cancellation is the caller's:
//! each spawned future watches a `CancellationToken`.

use std::future::Future;

use tokio::task::JoinHandle;
use tracing::Instrument;

pub fn spawn_named<F>(name: impl Into<String>, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let name = name.into();
    let span = tracing::info_span!("task", name = %name);
    tokio::spawn(fut.instrument(span))
}
