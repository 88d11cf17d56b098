//! A client for Confluent-compatible schema registries (Confluent Schema
//! Registry, Apicurio's `/apis/ccompat/v7`, Karapace, Redpanda), with the
//! caches that keep the converter's steady state off the network.
//!
//! Why not the `schema_registry_converter` crate (6.0): it would fit the wire
//! format, but
//! * its encoders take `apache_avro` values, so every record would be
//!   converted Connect → `apache_avro::types::Value` → bytes; the Connect
//!   mapping needs schema properties (`connect.type`, `connect.name`, …) that
//!   `apache_avro` drops for primitive types, so we encode directly;
//! * its caches are keyed and filled internally (and remember failures),
//!   so we could neither count requests, nor bound the caches by
//!   `schemas.cache.config`, nor tell a retriable registry failure (5xx,
//!   429, network) from a rejected schema (409/422) with the subject and the
//!   registry's message attached, as `ConnectError` needs;
//! * it brings `reqwest` and a second TLS stack into a workspace that already
//!   has hyper 1 and rustls.
//!
//! The REST calls are the ones Confluent's Java client makes:
//! `POST /subjects/{s}/versions` (register), `POST /subjects/{s}` (lookup),
//! `GET /subjects/{s}/versions/latest`, `GET /schemas/ids/{id}`.

pub mod http;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use connect_api::ConnectError;
use hyper::Method;
use serde_json::{json, Value as J};

pub use http::{Endpoint, TransportError};

/// A failed registry call, with what was being done and for which subject.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No HTTP answer from any configured URL.
    #[error("Schema registry unreachable while {action} for subject \"{subject}\": {source}")]
    Unavailable {
        action: String,
        subject: String,
        #[source]
        source: TransportError,
    },
    /// The registry answered with an error status.
    #[error("Schema registry rejected {action} for subject \"{subject}\" (HTTP {status}, error code {code}): {message}")]
    Rejected {
        action: String,
        subject: String,
        status: u16,
        code: i64,
        message: String,
    },
    /// A 2xx answer we could not read.
    #[error("Schema registry sent an unreadable answer while {action} for subject \"{subject}\": {detail}")]
    BadResponse {
        action: String,
        subject: String,
        detail: String,
    },
}

impl RegistryError {
    /// Network failures, timeouts, 5xx, 408 and 429 may pass on retry; a
    /// failed TLS handshake (untrusted or mismatched certificate) will not.
    pub fn is_retriable(&self) -> bool {
        match self {
            RegistryError::Unavailable { source, .. } => !matches!(source, TransportError::Tls(..)),
            RegistryError::Rejected { status, .. } => {
                *status >= 500 || *status == 429 || *status == 408
            }
            RegistryError::BadResponse { .. } => false,
        }
    }

    /// The HTTP status, when the registry answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Retriable failures are retried by the worker; 401/403 and TLS
    /// handshake failures mean the converter's credentials or trust are
    /// wrong for every record, so the task fails; any other rejection (409 incompatible, 422 invalid, 404 not
    /// found) concerns this record's schema, so `errors.tolerance` applies.
    pub fn into_connect(self) -> ConnectError {
        let message = self.to_string();
        if self.is_retriable() {
            ConnectError::Retriable(message)
        } else if matches!(self.status(), Some(401 | 403))
            || matches!(
                self,
                RegistryError::Unavailable {
                    source: TransportError::Tls(..),
                    ..
                }
            )
        {
            ConnectError::Fatal(message)
        } else {
            ConnectError::Data(message)
        }
    }
}

impl From<RegistryError> for ConnectError {
    fn from(e: RegistryError) -> Self {
        e.into_connect()
    }
}

/// The latest version of a subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    pub id: i32,
    pub version: i32,
    pub schema: Arc<str>,
}

/// Settings of a [`RegistryClient`].
#[derive(Debug, Clone)]
pub struct RegistryClientConfig {
    pub urls: Vec<String>,
    /// `user:password` for `basic.auth.credentials.source=USER_INFO`.
    pub user_info: Option<String>,
    /// Use the `user:password` part of each URL (`...source=URL`).
    pub url_credentials: bool,
    pub request_timeout: Duration,
    /// Bound of each cache (Java's `max.schemas.per.subject` role).
    pub cache_capacity: usize,
    /// `schema.registry.ssl.*` settings with the prefix removed; used when a
    /// URL is `https` (see [`http::tls_connector`]).
    pub ssl: std::collections::BTreeMap<String, String>,
}

/// Subject → (schema text → id). Keyed so that a lookup borrows `&str`s.
type IdCache = HashMap<String, HashMap<Arc<str>, i32>>;

/// A registry client. Cheap to share behind an `Arc`; all caches are
/// internal and bounded, and every call counts toward [`Self::request_count`].
pub struct RegistryClient {
    endpoints: Vec<Endpoint>,
    tls: Option<tokio_rustls::TlsConnector>,
    user_info_auth: Option<String>,
    url_credentials: bool,
    timeout: Duration,
    capacity: usize,
    next_endpoint: AtomicUsize,
    requests: AtomicU64,
    ids: RwLock<IdCache>,
    schemas: RwLock<HashMap<i32, Arc<str>>>,
    versions: RwLock<HashMap<(String, i32), Option<i32>>>,
    latest: RwLock<HashMap<String, Latest>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials and TLS state stay out of logs.
        f.debug_struct("RegistryClient")
            .field(
                "endpoints",
                &self.endpoints.iter().map(|e| &e.url).collect::<Vec<_>>(),
            )
            .field("requests", &self.request_count())
            .finish_non_exhaustive()
    }
}

/// Percent-encodes a subject for a URL path segment (`/` becomes `%2F`).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn bad(action: &str, subject: &str, detail: impl Into<String>) -> RegistryError {
    RegistryError::BadResponse {
        action: action.to_string(),
        subject: subject.to_string(),
        detail: detail.into(),
    }
}

fn int_field(body: &J, key: &str) -> Option<i32> {
    body.get(key)
        .and_then(J::as_i64)
        .and_then(|v| i32::try_from(v).ok())
}

impl RegistryClient {
    pub fn new(config: RegistryClientConfig) -> Result<RegistryClient, String> {
        if config.urls.is_empty() {
            return Err("no schema registry URL given".into());
        }
        let endpoints = config
            .urls
            .iter()
            .map(|u| Endpoint::parse(u))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = if endpoints.iter().any(|e| e.tls) {
            Some(http::tls_connector(&config.ssl)?)
        } else {
            None
        };
        let user_info_auth = config.user_info.as_ref().map(|ui| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(ui.as_bytes())
            )
        });
        Ok(RegistryClient {
            endpoints,
            tls,
            user_info_auth,
            url_credentials: config.url_credentials,
            timeout: config.request_timeout,
            capacity: config.cache_capacity.max(1),
            next_endpoint: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            ids: RwLock::new(HashMap::new()),
            schemas: RwLock::new(HashMap::new()),
            versions: RwLock::new(HashMap::new()),
            latest: RwLock::new(HashMap::new()),
        })
    }

    /// How many HTTP requests this client has sent (tests use it to show
    /// that the steady state sends none).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The cached id of a schema under a subject, without any I/O.
    pub fn cached_id(&self, subject: &str, schema: &str) -> Option<i32> {
        self.ids
            .read()
            .ok()?
            .get(subject)
            .and_then(|m| m.get(schema).copied())
    }

    fn remember_id(&self, subject: &str, schema: &Arc<str>, id: i32) {
        if let Ok(mut ids) = self.ids.write() {
            if ids.len() >= self.capacity && !ids.contains_key(subject) {
                ids.clear();
            }
            let per_subject = ids.entry(subject.to_string()).or_default();
            if per_subject.len() >= self.capacity {
                per_subject.clear();
            }
            per_subject.insert(schema.clone(), id);
        }
        self.remember_schema(id, schema);
    }

    fn remember_schema(&self, id: i32, schema: &Arc<str>) {
        if let Ok(mut s) = self.schemas.write() {
            // Bounded by clearing: a registry id space larger than the
            // cache means the working set does not fit anyway.
            if s.len() >= self.capacity && !s.contains_key(&id) {
                s.clear();
            }
            s.insert(id, schema.clone());
        }
    }

    /// Sends a request, trying each configured URL in turn on network
    /// failure (as Java's `RestService` does), starting after the last one
    /// that failed.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<J>,
        action: &str,
        subject: &str,
    ) -> Result<J, RegistryError> {
        let body = body.map(|b| b.to_string().into_bytes());
        let n = self.endpoints.len();
        let start = self.next_endpoint.load(Ordering::Relaxed);
        let mut last_err = None;
        for i in 0..n {
            let idx = (start + i) % n;
            let ep = &self.endpoints[idx];
            let url_auth = if self.url_credentials {
                ep.user_info.as_ref().map(|ui| {
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(ui.as_bytes())
                    )
                })
            } else {
                None
            };
            let auth = self.user_info_auth.as_deref().or(url_auth.as_deref());
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("authorization", a)).into_iter().collect();
            self.requests.fetch_add(1, Ordering::Relaxed);
            let sent = http::send(
                ep,
                self.tls.as_ref(),
                method.clone(),
                path,
                body.clone(),
                &headers,
                self.timeout,
            );
            match sent.await {
                Ok(resp) => {
                    let parsed: Option<J> = serde_json::from_slice(&resp.body).ok();
                    if (200..300).contains(&resp.status) {
                        return parsed.ok_or_else(|| {
                            bad(action, subject, String::from_utf8_lossy(&resp.body))
                        });
                    }
                    let (code, message) = match &parsed {
                        Some(j) => (
                            j.get("error_code")
                                .and_then(J::as_i64)
                                .unwrap_or(i64::from(resp.status)),
                            j.get("message")
                                .and_then(J::as_str)
                                .map(str::to_string)
                                .unwrap_or_else(|| j.to_string()),
                        ),
                        None => (
                            i64::from(resp.status),
                            String::from_utf8_lossy(&resp.body).into_owned(),
                        ),
                    };
                    return Err(RegistryError::Rejected {
                        action: action.to_string(),
                        subject: subject.to_string(),
                        status: resp.status,
                        code,
                        message,
                    });
                }
                Err(e) => {
                    tracing::warn!(url = %ep.url, error = %e, "schema registry request failed");
                    self.next_endpoint.store((idx + 1) % n, Ordering::Relaxed);
                    last_err = Some(e);
                }
            }
        }
        Err(RegistryError::Unavailable {
            action: action.to_string(),
            subject: subject.to_string(),
            source: last_err.unwrap_or_else(|| {
                TransportError::Connect("schema registry".into(), "no URL configured".into())
            }),
        })
    }

    /// Registers a schema under a subject (or finds it registered) and
    /// returns its id; cached per (subject, schema text).
    pub async fn register(
        &self,
        subject: &str,
        schema: &Arc<str>,
        normalize: bool,
    ) -> Result<i32, RegistryError> {
        if let Some(id) = self.cached_id(subject, schema) {
            return Ok(id);
        }
        let action = "registering a schema";
        let path = format!(
            "/subjects/{}/versions{}",
            encode_segment(subject),
            if normalize { "?normalize=true" } else { "" }
        );
        let body = self
            .call(
                Method::POST,
                &path,
                Some(json!({ "schema": schema.as_ref() })),
                action,
                subject,
            )
            .await?;
        let id = int_field(&body, "id").ok_or_else(|| bad(action, subject, body.to_string()))?;
        self.remember_id(subject, schema, id);
        Ok(id)
    }

    /// Finds the id and version of a schema already registered under a
    /// subject (`auto.register.schemas=false`); cached.
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &Arc<str>,
        normalize: bool,
    ) -> Result<(i32, i32), RegistryError> {
        let action = "looking up a schema";
        let path = format!(
            "/subjects/{}?deleted=false{}",
            encode_segment(subject),
            if normalize { "&normalize=true" } else { "" }
        );
        let body = self
            .call(
                Method::POST,
                &path,
                Some(json!({ "schema": schema.as_ref() })),
                action,
                subject,
            )
            .await?;
        let (Some(id), Some(version)) = (int_field(&body, "id"), int_field(&body, "version"))
        else {
            return Err(bad(action, subject, body.to_string()));
        };
        self.remember_id(subject, schema, id);
        if let Ok(mut v) = self.versions.write() {
            if v.len() >= self.capacity {
                v.clear();
            }
            v.insert((subject.to_string(), id), Some(version));
        }
        Ok((id, version))
    }

    /// The latest version of a subject (`use.latest.version`); cached for
    /// the client's life, as Java's default `latest.cache.ttl.sec=-1` does.
    pub async fn latest(&self, subject: &str) -> Result<Latest, RegistryError> {
        if let Some(l) = self
            .latest
            .read()
            .ok()
            .and_then(|m| m.get(subject).cloned())
        {
            return Ok(l);
        }
        self.latest_uncached(subject).await
    }

    /// The latest version of a subject as the registry has it now, past the
    /// cache of [`Self::latest`] (which it refreshes): for writers that
    /// merge their schema into whatever other writers registered meanwhile.
    pub async fn latest_uncached(&self, subject: &str) -> Result<Latest, RegistryError> {
        let latest = self.fetch_version(subject, "latest").await?;
        if let Ok(mut m) = self.latest.write() {
            if m.len() >= self.capacity {
                m.clear();
            }
            m.insert(subject.to_string(), latest.clone());
        }
        Ok(latest)
    }

    /// Version `version` of a subject (`GET /subjects/{s}/versions/{v}`).
    pub async fn subject_version(
        &self,
        subject: &str,
        version: i32,
    ) -> Result<Latest, RegistryError> {
        self.fetch_version(subject, &version.to_string()).await
    }

    async fn fetch_version(&self, subject: &str, version: &str) -> Result<Latest, RegistryError> {
        let action = if version == "latest" {
            "fetching the latest schema".to_string()
        } else {
            format!("fetching schema version {version}")
        };
        let action = action.as_str();
        let path = format!("/subjects/{}/versions/{version}", encode_segment(subject));
        let body = self.call(Method::GET, &path, None, action, subject).await?;
        let (Some(id), Some(version), Some(text)) = (
            int_field(&body, "id"),
            int_field(&body, "version"),
            body.get("schema").and_then(J::as_str),
        ) else {
            return Err(bad(action, subject, body.to_string()));
        };
        let latest = Latest {
            id,
            version,
            schema: Arc::from(text),
        };
        self.remember_schema(id, &latest.schema);
        Ok(latest)
    }

    /// The schema text of an id; cached (ids are immutable).
    pub async fn schema_by_id(&self, id: i32) -> Result<Arc<str>, RegistryError> {
        if let Some(s) = self.schemas.read().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(s);
        }
        let action = format!("fetching schema id {id}");
        let subject = format!("(schema id {id})");
        let body = self
            .call(
                Method::GET,
                &format!("/schemas/ids/{id}"),
                None,
                &action,
                &subject,
            )
            .await?;
        let text: Arc<str> = body
            .get("schema")
            .and_then(J::as_str)
            .map(Arc::from)
            .ok_or_else(|| bad(&action, &subject, body.to_string()))?;
        self.remember_schema(id, &text);
        Ok(text)
    }

    /// Sets a subject's compatibility level (`PUT /config/{s}`), e.g.
    /// `BACKWARD`; used by tests and by sources that manage their subjects.
    pub async fn set_compatibility(&self, subject: &str, level: &str) -> Result<(), RegistryError> {
        let path = format!("/config/{}", encode_segment(subject));
        self.call(
            Method::PUT,
            &path,
            Some(json!({ "compatibility": level })),
            "setting the compatibility level",
            subject,
        )
        .await
        .map(|_| ())
    }

    /// The version of schema `id` under `subject`, `None` when the schema
    /// is not registered there (written under another subject); cached.
    pub async fn version_of(
        &self,
        subject: &str,
        id: i32,
        schema: &Arc<str>,
    ) -> Result<Option<i32>, RegistryError> {
        let key = (subject.to_string(), id);
        if let Some(v) = self.versions.read().ok().and_then(|m| m.get(&key).copied()) {
            return Ok(v);
        }
        let version = match self.lookup(subject, schema, false).await {
            Ok((_, v)) => Some(v),
            Err(e) if e.status() == Some(404) => None,
            Err(e) => return Err(e),
        };
        if let Ok(mut m) = self.versions.write() {
            if m.len() >= self.capacity {
                m.clear();
            }
            m.insert(key, version);
        }
        Ok(version)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rejected(status: u16) -> RegistryError {
        RegistryError::Rejected {
            action: "registering a schema".into(),
            subject: "t-value".into(),
            status,
            code: i64::from(status),
            message: "boom".into(),
        }
    }

    #[test]
    fn errors_are_classified() {
        assert!(matches!(
            rejected(503).into_connect(),
            ConnectError::Retriable(_)
        ));
        assert!(matches!(
            rejected(429).into_connect(),
            ConnectError::Retriable(_)
        ));
        assert!(matches!(
            rejected(401).into_connect(),
            ConnectError::Fatal(_)
        ));
        assert!(matches!(
            rejected(403).into_connect(),
            ConnectError::Fatal(_)
        ));
        for s in [404, 409, 422] {
            assert!(matches!(rejected(s).into_connect(), ConnectError::Data(_)));
        }
        let msg = rejected(409).into_connect().to_string();
        assert!(msg.contains("\"t-value\"") && msg.contains("boom"), "{msg}");
        let unreachable = RegistryError::Unavailable {
            action: "x".into(),
            subject: "s".into(),
            source: TransportError::Connect("http://h".into(), "refused".into()),
        };
        assert!(matches!(
            unreachable.into_connect(),
            ConnectError::Retriable(_)
        ));
    }

    #[test]
    fn subjects_are_path_encoded() {
        assert_eq!(encode_segment("a/b c-value"), "a%2Fb%20c-value");
        assert_eq!(encode_segment("com.example.Rec"), "com.example.Rec");
    }

    #[tokio::test]
    async fn unreachable_registry_is_retriable_and_counted() {
        // Port 9 (discard) on loopback is closed on test machines.
        let client = RegistryClient::new(RegistryClientConfig {
            urls: vec!["http://127.0.0.1:9".into(), "http://127.0.0.1:9/x".into()],
            user_info: None,
            url_credentials: false,
            request_timeout: Duration::from_secs(5),
            cache_capacity: 10,
            ssl: Default::default(),
        })
        .unwrap();
        let err = client.schema_by_id(1).await.unwrap_err();
        assert!(err.is_retriable(), "{err}");
        assert_eq!(client.request_count(), 2);
    }
}
