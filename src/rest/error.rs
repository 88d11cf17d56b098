//! The single mapping from failures to the Java worker's error body
//! `{"error_code":N,"message":"…"}` (contract §1.1).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::herder::api::HerderError;

/// The media type of every response.
pub const APPLICATION_JSON: &str = "application/json";

/// A failed request: the HTTP status, which is also the `error_code`, and the message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// For 405: the methods the path accepts (`Allow` header, as Jersey sends).
    pub allow: Option<String>,
    /// For 413: the unread body makes the connection unusable for another request.
    pub close: bool,
    /// Only the leader at this URL can answer: forward the request there.
    pub forward_to: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            allow: None,
            close: false,
            forward_to: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// An unknown path, worded as Jersey does.
    pub fn unknown_path() -> Self {
        Self::not_found("HTTP 404 Not Found")
    }

    pub fn method_not_allowed(allow: String) -> Self {
        ApiError {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "HTTP 405 Method Not Allowed",
            )
        }
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "HTTP 415 Unsupported Media Type",
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        ApiError {
            close: true,
            ..Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body is larger than the maximum of {limit} bytes"),
            )
        }
    }

    /// The response carrying this error.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        #[derive(Serialize)]
        struct Body<'a> {
            error_code: u16,
            message: &'a str,
        }
        let body = Body {
            error_code: self.status.as_u16(),
            message: &self.message,
        };
        // Serializing a u16 and a str cannot fail; the fallback keeps the shape anyway.
        let bytes = serde_json::to_vec(&body)
            .unwrap_or_else(|_| br#"{"error_code":500,"message":"error"}"#.to_vec());
        let mut resp = raw_response(self.status, Bytes::from(bytes));
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            resp.headers_mut().insert(ALLOW, allow);
        }
        if self.close {
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

impl From<HerderError> for ApiError {
    fn from(e: HerderError) -> Self {
        // A herder that reports a status HTTP cannot carry is a bug; answer 500
        // like Java's catch-all mapper rather than panicking.
        let status = StatusCode::from_u16(e.status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError {
            forward_to: e.forward_to,
            ..ApiError::new(status, e.message)
        }
    }
}

/// A response with a JSON content type and the given body bytes.
pub fn raw_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(APPLICATION_JSON));
    resp
}

/// A JSON response; a value that cannot be serialized becomes a 500 error body.
pub fn json_response<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(bytes) => raw_response(status, Bytes::from(bytes)),
        Err(e) => {
            ApiError::internal(format!("Failed to serialize the response: {e}")).into_response()
        }
    }
}

/// A response with no body (202, 204).
pub fn empty_response(status: StatusCode) -> Response<Full<Bytes>> {
    raw_response(status, Bytes::new())
}
