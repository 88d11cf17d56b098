//! Cross-origin support with the behaviour of Jetty 9's `CrossOriginFilter`,
//! which the Java worker installs when `access.control.allow.origin` is set.
//!
//! Jetty defaults that Kafka does not override: allowed headers
//! `X-Requested-With,Content-Type,Accept,Origin`, credentials allowed, preflight
//! max age 1800 s, and preflights passed on to the resource (so the OPTIONS
//! answer itself comes from the normal routing).

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::Method;

const DEFAULT_METHODS: &str = "GET,POST,HEAD";
const ALLOWED_HEADERS: [&str; 4] = ["X-Requested-With", "Content-Type", "Accept", "Origin"];
const PREFLIGHT_MAX_AGE_SECS: &str = "1800";

/// The parsed CORS settings.
#[derive(Debug, Clone)]
pub struct Cors {
    any_origin: bool,
    origins: Vec<String>,
    methods: Vec<String>,
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// `*` in an allowed origin matches any run of characters (Jetty turns the
/// pattern into a regex the same way).
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = match parts.split_first() {
        Some(x) => x,
        None => return text.is_empty(),
    };
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

impl Cors {
    /// `None` when `allow_origin` is blank (CORS disabled, as in Java).
    pub fn new(allow_origin: &str, allow_methods: &str) -> Option<Cors> {
        if allow_origin.trim().is_empty() {
            return None;
        }
        let origins = split_list(allow_origin);
        let methods = if allow_methods.trim().is_empty() {
            split_list(DEFAULT_METHODS)
        } else {
            split_list(allow_methods)
        };
        Some(Cors {
            any_origin: origins.iter().any(|o| o == "*"),
            origins,
            methods,
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        if self.any_origin {
            return true;
        }
        // The Origin header may list several space-separated origins.
        origin.split(' ').filter(|o| !o.is_empty()).any(|o| {
            self.origins.iter().any(|allowed| {
                if allowed.contains('*') {
                    wildcard_match(allowed, o)
                } else {
                    allowed == o
                }
            })
        })
    }

    /// The headers to add to the response of this request (empty when the
    /// request is not cross-origin or is not allowed).
    pub fn response_headers(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::new();
        let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
            return out;
        };
        if !self.origin_allowed(origin) {
            return out;
        }
        let requested_method = headers
            .get("access-control-request-method")
            .and_then(|v| v.to_str().ok());
        let preflight = method == Method::OPTIONS && requested_method.is_some();
        if preflight {
            // Jetty compares the requested method case-sensitively.
            if !requested_method.is_some_and(|m| self.methods.iter().any(|a| a == m)) {
                return out;
            }
            let requested_headers = headers
                .get_all("access-control-request-headers")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|h| !h.is_empty());
            let headers_ok = requested_headers
                .into_iter()
                .all(|h| ALLOWED_HEADERS.iter().any(|a| a.eq_ignore_ascii_case(h)));
            if !headers_ok {
                return out;
            }
        }
        let mut push = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                out.push((HeaderName::from_static(name), v));
            }
        };
        push("access-control-allow-origin", origin);
        if !self.any_origin {
            push("vary", "Origin");
        }
        push("access-control-allow-credentials", "true");
        if preflight {
            push("access-control-max-age", PREFLIGHT_MAX_AGE_SECS);
            push("access-control-allow-methods", &self.methods.join(","));
            push("access-control-allow-headers", &ALLOWED_HEADERS.join(","));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match(
            "http://*.example.com",
            "http://a.example.com"
        ));
        assert!(wildcard_match(
            "http://*.example.com",
            "http://a.b.example.com"
        ));
        assert!(!wildcard_match(
            "http://*.example.com",
            "http://example.org"
        ));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("a*b*c", "aXbYc"));
        assert!(!wildcard_match("a*b*c", "aXcYb"));
        assert!(!wildcard_match("ab*b", "ab"));
    }

    #[test]
    fn disabled_when_blank() {
        assert!(Cors::new("  ", "GET").is_none());
    }
}
