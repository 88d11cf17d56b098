//! The registry's HTTP transport: one HTTP/1.1 request per connection over
//! hyper's client connection API.
//!
//! Why no pool: the converter caches every answer, so the registry is asked
//! once per new schema, not per record; a fresh connection per request keeps
//! this code free of pool state and of stale-connection retries.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What the Confluent clients send and accept.
const CONTENT_TYPE_V1: &str = "application/vnd.schemaregistry.v1+json";
const ACCEPT_ALL: &str =
    "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json";

/// One registry base URL, split for the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// The path prefix without a trailing slash (e.g. `/apis/ccompat/v7`).
    pub base_path: String,
    /// `user:password` from the URL (`basic.auth.credentials.source=URL`).
    pub user_info: Option<String>,
    /// The URL as configured, for error messages.
    pub url: String,
}

impl Endpoint {
    pub fn parse(raw: &str) -> Result<Endpoint, String> {
        let url = url::Url::parse(raw.trim()).map_err(|e| format!("{raw}: {e}"))?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(format!(
                    "{raw}: https registry URLs are not supported yet (schema.registry.ssl.* settings are accepted but not honoured)"
                ))
            }
            other => return Err(format!("{raw}: unsupported scheme {other}")),
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("{raw}: no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let user_info = if url.username().is_empty() {
            None
        } else {
            let user = percent_decode(url.username());
            let pass = url.password().map(percent_decode).unwrap_or_default();
            Some(format!("{user}:{pass}"))
        };
        Ok(Endpoint {
            host,
            port,
            base_path: url.path().trim_end_matches('/').to_string(),
            user_info,
            url: raw.trim().trim_end_matches('/').to_string(),
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("connection to {0} failed: {1}")]
    Connect(String, String),
    #[error("request to {0} timed out after {1:?}")]
    Timeout(String, Duration),
    #[error("HTTP exchange with {0} failed: {1}")]
    Http(String, String),
}

/// An HTTP answer: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

/// Sends one request. `auth` is a complete `Authorization` header value.
pub async fn send(
    ep: &Endpoint,
    method: Method,
    path_and_query: &str,
    body: Option<Vec<u8>>,
    auth: Option<&str>,
    timeout: Duration,
) -> Result<Response, TransportError> {
    let exchange = async {
        let stream = TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .map_err(|e| TransportError::Connect(ep.url.clone(), e.to_string()))?;
        // Requests are small and answered at once; Nagle would only add delay.
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| TransportError::Http(ep.url.clone(), e.to_string()))?;
        // The connection task ends when `sender` is dropped after the answer.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let host_header = if ep.host.contains(':') {
            format!("[{}]:{}", ep.host, ep.port)
        } else {
            format!("{}:{}", ep.host, ep.port)
        };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{}", ep.base_path, path_and_query))
            .header(HOST, host_header)
            .header(ACCEPT, ACCEPT_ALL);
        if body.is_some() {
            req = req.header(CONTENT_TYPE, CONTENT_TYPE_V1);
        }
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| TransportError::Http(ep.url.clone(), e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| TransportError::Http(ep.url.clone(), e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| TransportError::Http(ep.url.clone(), e.to_string()))?
            .to_bytes();
        Ok(Response { status, body })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| TransportError::Timeout(ep.url.clone(), timeout))?
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("http://u%40x:p%3Aw@127.0.0.1:8081/apis/ccompat/v7/").unwrap();
        assert_eq!(e.host, "127.0.0.1");
        assert_eq!(e.port, 8081);
        assert_eq!(e.base_path, "/apis/ccompat/v7");
        assert_eq!(e.user_info.as_deref(), Some("u@x:p:w"));
        let e = Endpoint::parse("http://localhost").unwrap();
        assert_eq!((e.port, e.base_path.as_str()), (80, ""));
        assert!(Endpoint::parse("ftp://x").is_err());
    }
}
