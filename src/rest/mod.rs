//! The REST server: Kafka Connect's public HTTP API (contract §1) on hyper 1.x.
//!
//! [`handle`] turns one request into one response and is what tests call;
//! [`serve`] accepts HTTP/1.1 connections and feeds them to it until cancelled.
//! The layer is a thin translation onto [`Herder`]: routing lives in
//! [`routes`], the resources in [`handlers`], the error body in [`error`].
//!
//! Order of checks for each request, mirroring Jersey: CORS headers are
//! computed first; then an unknown path → 404; OPTIONS → 204 with `Allow`;
//! a method the path does not take → 405; for resources that consume JSON a
//! `Content-Type` other than `application/json` → 415 (a request without a
//! Content-Type is accepted); a body over [`RestConfig::max_body_bytes`] → 413;
//! then the resource runs. Every response is `application/json`.

pub mod client;
pub mod cors;
pub mod error;
pub mod handlers;
pub mod routes;

#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::herder::api::Herder;
use crate::logging::Loggers;
use cors::Cors;
use error::{empty_response, ApiError};
use handlers::{consumes_body, dispatch, Call};
use routes::{Query, Route};

/// How long in-flight requests may run after shutdown starts; Java's REST
/// server uses the same 60 s graceful stop timeout.
pub const GRACEFUL_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Default request body limit. Connector configs are small; 10 MiB leaves room
/// for large offset alterations while bounding memory per request.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// REST settings taken from the worker config.
#[derive(Debug, Clone)]
pub struct RestConfig {
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// `access.control.allow.origin`; blank disables CORS.
    pub cors_allow_origin: String,
    /// `access.control.allow.methods`; blank means Jetty's `GET,POST,HEAD`.
    pub cors_allow_methods: String,
    /// This worker's advertised URL (e.g. `http://10.0.0.1:8083/`); the base of
    /// `Location` headers when a request carries no `Host`.
    pub advertised_url: String,
    /// False when `admin.listeners` is set to an empty string: `/admin/**` is 404.
    pub admin_enabled: bool,
}

impl Default for RestConfig {
    fn default() -> Self {
        RestConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            cors_allow_origin: String::new(),
            cors_allow_methods: String::new(),
            advertised_url: String::new(),
            admin_enabled: true,
        }
    }
}

/// What every request handler shares.
pub struct RestState {
    herder: Arc<dyn Herder>,
    loggers: Arc<Loggers>,
    config: RestConfig,
    cors: Option<Cors>,
}

impl RestState {
    pub fn new(herder: Arc<dyn Herder>, loggers: Arc<Loggers>, config: RestConfig) -> RestState {
        let cors = Cors::new(&config.cors_allow_origin, &config.cors_allow_methods);
        RestState {
            herder,
            loggers,
            config,
            cors,
        }
    }

    pub fn herder(&self) -> &Arc<dyn Herder> {
        &self.herder
    }

    pub fn loggers(&self) -> &Arc<Loggers> {
        &self.loggers
    }

    pub fn config(&self) -> &RestConfig {
        &self.config
    }
}

/// Serves HTTP/1.1 on `listener` until `cancel` fires. Then it stops
/// accepting, asks every connection to finish its current request and close,
/// and waits for them up to [`GRACEFUL_SHUTDOWN_TIMEOUT`] before aborting the rest.
pub async fn serve(
    listener: TcpListener,
    state: Arc<RestState>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            // Reap finished connection tasks so the set does not grow forever.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let state = state.clone();
                    let cancel = cancel.clone();
                    connections.spawn(async move {
                        serve_connection(stream, state, cancel).await;
                        tracing::trace!(%peer, "connection closed");
                    });
                }
                Err(e) => {
                    // Usually transient (e.g. out of file descriptors): back off
                    // briefly instead of spinning or giving up the listener.
                    tracing::warn!(error = %e, "failed to accept a REST connection");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            },
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(GRACEFUL_SHUTDOWN_TIMEOUT + Duration::from_secs(1), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "REST requests still running after the shutdown timeout; aborting them"
        );
        connections.shutdown().await;
    }
    Ok(())
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    state: Arc<RestState>,
    cancel: CancellationToken,
) {
    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(&state, req).await) }
    });
    let mut builder = http1::Builder::new();
    // The timer enables hyper's header read timeout (30 s by default), so a
    // client that never finishes its headers cannot hold a task forever.
    builder.timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "REST connection error");
            }
        }
        _ = cancel.cancelled() => {
            // Finish the request in flight (if any), then close.
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(GRACEFUL_SHUTDOWN_TIMEOUT, conn).await {
                Ok(Err(e)) => tracing::debug!(error = %e, "REST connection error during shutdown"),
                Ok(Ok(())) => {}
                Err(_) => tracing::warn!("REST request did not finish within the shutdown timeout"),
            }
        }
    }
}

/// Answers one request. Never fails: every problem becomes a JSON error body,
/// including a panic in a handler (500, like Java's catch-all mapper).
pub async fn handle<B>(state: &RestState, req: Request<B>) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let cors_headers = state
        .cors
        .as_ref()
        .map(|c| c.response_headers(&method, req.headers()))
        .unwrap_or_default();
    let mut resp = match AssertUnwindSafe(route_request(state, req))
        .catch_unwind()
        .await
    {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => e.into_response(),
        Err(_) => {
            tracing::error!(%method, %path, "REST handler panicked");
            ApiError::internal("Internal server error").into_response()
        }
    };
    for (name, value) in cors_headers {
        resp.headers_mut().append(name, value);
    }
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "REST request");
    resp
}

async fn route_request<B>(
    state: &RestState,
    req: Request<B>,
) -> Result<Response<Full<Bytes>>, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let route = Route::parse(req.uri().path())
        .filter(|r| state.config.admin_enabled || !r.is_admin())
        .ok_or_else(ApiError::unknown_path)?;
    if req.method() == Method::OPTIONS {
        let mut resp = empty_response(StatusCode::NO_CONTENT);
        if let Ok(v) = HeaderValue::from_str(&route.allow_header()) {
            resp.headers_mut().insert(ALLOW, v);
        }
        return Ok(resp);
    }
    // Jersey answers HEAD with the GET resource; hyper drops the body for HEAD.
    let method = if req.method() == Method::HEAD {
        Method::GET
    } else {
        req.method().clone()
    };
    if !route.methods().contains(&method) {
        return Err(ApiError::method_not_allowed(route.allow_header()));
    }
    let query = Query::parse(req.uri().query());
    let base_url = base_url(&req, &state.config.advertised_url);
    let signature = handlers::request_signature(req.headers());
    let target = ForwardTarget {
        path: req.uri().path().to_string(),
        raw_query: req.uri().query().map(str::to_string),
        authorization: req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    let body = if consumes_body(&route, &method) {
        check_content_type(&req)?;
        read_body(req, state.config.max_body_bytes).await?
    } else {
        Bytes::new()
    };
    let call = Call {
        state,
        method,
        query,
        base_url,
        body,
        signature,
    };
    match dispatch(&call, route).await {
        Err(e) if e.forward_to.is_some() => forward(&call, &target, e).await,
        answer => answer,
    }
}

/// What a forwarded request repeats of the original besides method and body.
struct ForwardTarget {
    /// Still percent-encoded.
    path: String,
    raw_query: Option<String>,
    authorization: Option<String>,
}

/// Sends a request only the leader can answer to the leader, and passes its
/// answer back (contract §1.2). A request comes at most two hops: the first
/// worker forwards with `forward=true`, which lets the next forward once more
/// (the leader may have changed meanwhile) with `forward=false`; a worker
/// that gets `forward=false` and still is not the leader answers 409.
async fn forward(
    call: &Call<'_>,
    target: &ForwardTarget,
    e: ApiError,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let next = match call.query.first("forward") {
        None => "true",
        Some(v) if v.eq_ignore_ascii_case("true") => "false",
        Some(_) => {
            return Err(ApiError {
                forward_to: None,
                ..e
            })
        }
    };
    let Some(leader) = e.forward_to.as_deref() else {
        return Err(e);
    };
    let mut query: Vec<&str> = target
        .raw_query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some("forward"))
        .collect();
    let forward_param = format!("forward={next}");
    query.push(&forward_param);
    let url = format!(
        "{}{}?{}",
        leader.trim_end_matches('/'),
        target.path,
        query.join("&")
    );
    let mut headers = vec![
        ("accept", "application/json".to_string()),
        ("user-agent", "kafka-connect".to_string()),
    ];
    if !call.body.is_empty() {
        headers.push(("content-type", "application/json".to_string()));
    }
    if let Some(auth) = &target.authorization {
        headers.push(("authorization", auth.clone()));
    }
    let body = (!call.body.is_empty()).then(|| call.body.to_vec());
    tracing::debug!(method = %call.method, %url, "forwarding a request only the leader can answer");
    let resp = client::send_to_worker(
        call.method.clone(),
        &url,
        body,
        &headers,
        client::FORWARD_TIMEOUT,
    )
    .await
    .map_err(|e| ApiError::internal(format!("IO Error trying to forward REST request: {e}")))?;
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_client_error() || status.is_server_error() {
        return Err(ApiError::new(status, resp.message()));
    }
    if !status.is_success() {
        return Err(ApiError::internal(format!(
            "Unexpected status code when handling forwarded request: {}",
            resp.status
        )));
    }
    if status == StatusCode::NO_CONTENT || resp.body.is_empty() {
        return Ok(empty_response(status));
    }
    let mut answer = error::raw_response(status, resp.body.clone());
    if status == StatusCode::CREATED {
        // The Location names this worker, as for a request it answered itself.
        let name = serde_json::from_slice::<serde_json::Value>(&resp.body)
            .ok()
            .and_then(|j| j.get("name").and_then(|n| n.as_str()).map(str::to_string));
        if let Some(name) = name {
            let location = format!(
                "{}/connectors/{}",
                call.base_url,
                routes::encode_segment(&name)
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                answer.headers_mut().insert(hyper::header::LOCATION, v);
            }
        }
    }
    Ok(answer)
}

/// `application/json`, any parameters (`charset=utf-8`), case-insensitive. A
/// missing Content-Type is accepted, as Jersey does.
fn check_content_type<B>(req: &Request<B>) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(CONTENT_TYPE) else {
        return Ok(());
    };
    let media = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/json") => Ok(()),
        _ => Err(ApiError::unsupported_media_type()),
    }
}

async fn read_body<B>(req: Request<B>, limit: usize) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // Refuse early when the client announces a body that is too large.
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::payload_too_large(limit))
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "Failed to read the request body: {e}"
        ))),
    }
}

/// `http://host:port` of the request (as Jersey's base URI), from the Host
/// header or an absolute request URI, else the advertised URL.
fn base_url<B>(req: &Request<B>, advertised: &str) -> String {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match host {
        Some(host) => format!("http://{host}"),
        None => advertised.trim_end_matches('/').to_string(),
    }
}
