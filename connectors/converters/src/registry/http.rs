//! The registry's HTTP transport: one HTTP/1.1 request per connection over
//! hyper's client connection API.
//!
//! Why no pool: the converter caches every answer, so the registry is asked
//! once per new schema, not per record; a fresh connection per request keeps
//! this code free of pool state and of stale-connection retries.
//!
//! `https` URLs use rustls (ring provider). Trust comes from the Mozilla
//! roots (`webpki-roots`) unless a PEM truststore is configured, which then
//! replaces them, as a Java truststore replaces the JVM's `cacerts`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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
    /// `https`.
    pub tls: bool,
}

impl Endpoint {
    pub fn parse(raw: &str) -> Result<Endpoint, String> {
        let url = url::Url::parse(raw.trim()).map_err(|e| format!("{raw}: {e}"))?;
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(format!("{raw}: unsupported scheme {other}")),
        };
        let host = url
            .host_str()
            .ok_or_else(|| format!("{raw}: no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
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
            tls,
        })
    }
}

/// Reads a PEM setting: inline text (`...certificates`, `...key`) wins over
/// a file (`...location`).
fn pem_source(
    ssl: &BTreeMap<String, String>,
    inline: &str,
    location: &str,
) -> Result<Option<Vec<u8>>, String> {
    if let Some(text) = ssl.get(inline).filter(|t| !t.trim().is_empty()) {
        return Ok(Some(text.as_bytes().to_vec()));
    }
    match ssl.get(location).filter(|l| !l.trim().is_empty()) {
        Some(path) => std::fs::read(path.trim())
            .map(Some)
            .map_err(|e| format!("cannot read {path}: {e}")),
        None => Ok(None),
    }
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no PEM certificate found"));
    }
    Ok(certs)
}

/// Builds the TLS client from the `schema.registry.ssl.*` settings (prefix
/// removed). Honoured: `truststore.type=PEM` with `truststore.location` or
/// `truststore.certificates`; `keystore.type=PEM` with `keystore.location`
/// (key and chain in one file) or `keystore.certificate.chain` +
/// `keystore.key`. JKS/PKCS12 stores and encrypted keys are refused, since
/// silently ignoring them would weaken what the user configured.
pub fn tls_connector(ssl: &BTreeMap<String, String>) -> Result<TlsConnector, String> {
    let store_type = |key: &str| {
        ssl.get(key)
            .map(|t| t.trim().to_ascii_uppercase())
            .unwrap_or_else(|| "JKS".into())
    };
    let mut roots = rustls::RootCertStore::empty();
    match pem_source(ssl, "truststore.certificates", "truststore.location")? {
        Some(pem) => {
            if ssl.contains_key("truststore.location") && store_type("truststore.type") != "PEM" {
                return Err("schema.registry.ssl.truststore.type must be PEM (JKS and PKCS12 truststores are not supported; export the certificates to PEM)".into());
            }
            for cert in certificates(&pem, "schema.registry.ssl.truststore")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("schema.registry.ssl.truststore: {e}"))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    if ssl.get("key.password").is_some_and(|p| !p.is_empty()) {
        return Err(
            "schema.registry.ssl.key.password: encrypted private keys are not supported".into(),
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let chain_inline = pem_source(ssl, "keystore.certificate.chain", "keystore.location")?;
    let key_inline = pem_source(ssl, "keystore.key", "keystore.location")?;
    let config = match (chain_inline, key_inline) {
        (Some(chain), Some(key)) => {
            if ssl.contains_key("keystore.location") && store_type("keystore.type") != "PEM" {
                return Err("schema.registry.ssl.keystore.type must be PEM (JKS and PKCS12 keystores are not supported)".into());
            }
            let chain = certificates(&chain, "schema.registry.ssl.keystore")?;
            let key = PrivateKeyDer::from_pem_slice(&key)
                .map_err(|e| format!("schema.registry.ssl.keystore key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("schema.registry.ssl.keystore: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(config)))
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
    #[error("TLS handshake with {0} failed: {1}")]
    Tls(String, String),
}

/// An HTTP answer: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

/// Sends one request. `headers` (e.g. a complete `Authorization` value, or
/// another `Content-Type` than the registry's) replace the defaults; `tls`
/// is required for `https` endpoints. The worker's requests to other workers
/// use it too.
pub async fn send(
    ep: &Endpoint,
    tls: Option<&TlsConnector>,
    method: Method,
    path_and_query: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Response, TransportError> {
    let exchange = async {
        let stream = TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .map_err(|e| TransportError::Connect(ep.url.clone(), e.to_string()))?;
        // Requests are small and answered at once; Nagle would only add delay.
        let _ = stream.set_nodelay(true);
        if !ep.tls {
            return exchange(ep, stream, method, path_and_query, body, headers).await;
        }
        let connector =
            tls.ok_or_else(|| TransportError::Tls(ep.url.clone(), "no TLS configuration".into()))?;
        let name = ServerName::try_from(ep.host.clone())
            .map_err(|e| TransportError::Tls(ep.url.clone(), e.to_string()))?;
        let stream = connector
            .connect(name, stream)
            .await
            .map_err(|e| TransportError::Tls(ep.url.clone(), e.to_string()))?;
        exchange(ep, stream, method, path_and_query, body, headers).await
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| TransportError::Timeout(ep.url.clone(), timeout))?
}

async fn exchange<S>(
    ep: &Endpoint,
    stream: S,
    method: Method,
    path_and_query: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> Result<Response, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http_err = |e: &dyn std::fmt::Display| TransportError::Http(ep.url.clone(), e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http_err(&e))?;
    // The connection task ends when `sender` is dropped after the answer.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let default_port = if ep.tls { 443 } else { 80 };
    let host = if ep.host.contains(':') {
        format!("[{}]", ep.host)
    } else {
        ep.host.clone()
    };
    let host_header = if ep.port == default_port {
        host
    } else {
        format!("{host}:{}", ep.port)
    };
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{}{}", ep.base_path, path_and_query))
        .header(HOST, host_header)
        .header(ACCEPT, ACCEPT_ALL);
    if body.is_some() {
        req = req.header(CONTENT_TYPE, CONTENT_TYPE_V1);
    }
    let mut req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| http_err(&e))?;
    for (name, value) in headers {
        let name = hyper::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| http_err(&format!("header {name}: {e}")))?;
        let value = hyper::header::HeaderValue::from_str(value)
            .map_err(|e| http_err(&format!("header {name}: {e}")))?;
        req.headers_mut().insert(name, value);
    }
    let resp = sender.send_request(req).await.map_err(|e| http_err(&e))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| http_err(&e))?
        .to_bytes();
    Ok(Response { status, body })
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
        let e = Endpoint::parse("https://sr.example.com").unwrap();
        assert_eq!((e.port, e.tls), (443, true));
    }

    fn tls_error(ssl: &BTreeMap<String, String>) -> String {
        match tls_connector(ssl) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn tls_settings_are_checked() {
        let mut ssl = BTreeMap::new();
        assert!(tls_connector(&ssl).is_ok(), "default roots");
        ssl.insert(
            "truststore.location".to_string(),
            "/nonexistent.jks".to_string(),
        );
        assert!(tls_error(&ssl).contains("cannot read"));
        let dir = std::env::temp_dir().join(format!("connectd-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = dir.join("store.jks");
        std::fs::write(&store, b"not pem").unwrap();
        ssl.insert("truststore.location".into(), store.display().to_string());
        assert!(tls_error(&ssl).contains("must be PEM"));
        ssl.insert("truststore.type".into(), "PEM".into());
        assert!(tls_error(&ssl).contains("no PEM certificate"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
