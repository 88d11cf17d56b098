//! Requests from this worker to another worker's REST API: a follower's task
//! configs to the leader, and user requests only the leader can answer
//! (contract §1.2), over the same small HTTP/1 client the schema registry
//! client uses.

use std::time::Duration;

use bytes::Bytes;
use connect_converters::registry::http::{self, Endpoint};
use hyper::Method;

/// How long a forwarded user request may take (Java's forwarding waits as
/// long as its own REST request timeout, 90 s; the client waits anyway).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a follower waits for the leader to take its task configs. The
/// follower's reconciliation pass waits for it, so a leader that does not
/// answer must not hold the pass long; it is retried on the next pass.
pub const TASK_CONFIGS_TIMEOUT: Duration = Duration::from_secs(10);

/// Another worker's answer.
#[derive(Debug)]
pub struct WorkerResponse {
    pub status: u16,
    pub body: Bytes,
}

impl WorkerResponse {
    /// The `message` of a Connect error body, or the body as text.
    pub fn message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|j| {
                j.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// Sends one request to `url` (another worker's advertised URL plus path and
/// query); an error is an I/O failure, never an HTTP status.
pub async fn send_to_worker(
    method: Method,
    url: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<WorkerResponse, String> {
    let ep = Endpoint::parse(url)?;
    if ep.tls {
        return Err(format!(
            "{url}: HTTPS between workers is not supported yet; advertise an http listener"
        ));
    }
    // `Endpoint` keeps the URL's path as its base; the request goes to
    // exactly that path, plus the query string.
    let query = match url.split_once('?') {
        Some((_, q)) => format!("?{q}"),
        None => String::new(),
    };
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = http::send(&ep, None, method, &query, body, &headers, timeout)
        .await
        .map_err(|e| e.to_string())?;
    Ok(WorkerResponse {
        status: resp.status,
        body: resp.body,
    })
}
