//! Path and query parsing: which resource a request path names.
//!
//! The raw path is split on `/` first and each segment is percent-decoded
//! afterwards, as JAX-RS does for `@PathParam`, so `%2F` inside a connector name
//! stays inside that name. One trailing slash is ignored (`/connectors/` lists
//! connectors, as Jersey matches it).

use hyper::Method;

/// A resource of the REST API, with its decoded path parameters. The method is
/// checked separately so that a known path with a wrong method gives 405.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Root,
    Health,
    Connectors,
    Connector(String),
    ConnectorConfig(String),
    ConnectorStatus(String),
    ConnectorRestart(String),
    ConnectorPause(String),
    ConnectorResume(String),
    ConnectorStop(String),
    ConnectorTasks(String),
    ConnectorTasksConfig(String),
    /// The task index is kept as text: a non-integer is a 404 (Jersey cannot
    /// convert the path parameter), decided when the route is handled.
    TaskStatus(String, String),
    TaskRestart(String, String),
    ConnectorTopics(String),
    ConnectorTopicsReset(String),
    ConnectorOffsets(String),
    ConnectorProgress(String),
    Plugins,
    PluginConfig(String),
    PluginValidate(String),
    Loggers,
    Logger(String),
}

impl Route {
    /// Maps a raw (still percent-encoded) request path to a route.
    pub fn parse(raw_path: &str) -> Option<Route> {
        let path = raw_path.strip_prefix('/')?;
        let path = if path.len() > 1 {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        };
        if path.is_empty() {
            return Some(Route::Root);
        }
        let segs: Vec<String> = path.split('/').map(|s| percent_decode(s, false)).collect();
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        let name = |i: usize| s[i].to_string();
        Some(match s.as_slice() {
            ["health"] => Route::Health,
            ["connectors"] => Route::Connectors,
            ["connectors", _] => Route::Connector(name(1)),
            ["connectors", _, "config"] => Route::ConnectorConfig(name(1)),
            ["connectors", _, "status"] => Route::ConnectorStatus(name(1)),
            ["connectors", _, "restart"] => Route::ConnectorRestart(name(1)),
            ["connectors", _, "pause"] => Route::ConnectorPause(name(1)),
            ["connectors", _, "resume"] => Route::ConnectorResume(name(1)),
            ["connectors", _, "stop"] => Route::ConnectorStop(name(1)),
            ["connectors", _, "tasks"] => Route::ConnectorTasks(name(1)),
            ["connectors", _, "tasks-config"] => Route::ConnectorTasksConfig(name(1)),
            ["connectors", _, "tasks", _, "status"] => Route::TaskStatus(name(1), name(3)),
            ["connectors", _, "tasks", _, "restart"] => Route::TaskRestart(name(1), name(3)),
            ["connectors", _, "topics"] => Route::ConnectorTopics(name(1)),
            ["connectors", _, "topics", "reset"] => Route::ConnectorTopicsReset(name(1)),
            ["connectors", _, "offsets"] => Route::ConnectorOffsets(name(1)),
            ["connectors", _, "progress"] => Route::ConnectorProgress(name(1)),
            ["connector-plugins"] => Route::Plugins,
            ["connector-plugins", _, "config"] => Route::PluginConfig(name(1)),
            ["connector-plugins", _, "config", "validate"] => Route::PluginValidate(name(1)),
            ["admin", "loggers"] => Route::Loggers,
            ["admin", "loggers", _] => Route::Logger(name(2)),
            _ => return None,
        })
    }

    /// The methods this resource accepts (HEAD and OPTIONS are added by the caller).
    pub fn methods(&self) -> &'static [Method] {
        const GET: &[Method] = &[Method::GET];
        const PUT: &[Method] = &[Method::PUT];
        const POST: &[Method] = &[Method::POST];
        match self {
            Route::Root
            | Route::Health
            | Route::ConnectorStatus(_)
            | Route::ConnectorTasksConfig(_)
            | Route::TaskStatus(..)
            | Route::ConnectorTopics(_)
            | Route::ConnectorProgress(_)
            | Route::Plugins
            | Route::PluginConfig(_)
            | Route::Loggers => GET,
            // POST is the internal endpoint for a follower's task configs.
            Route::Connectors | Route::ConnectorTasks(_) => &[Method::GET, Method::POST],
            Route::Connector(_) => &[Method::GET, Method::DELETE],
            Route::ConnectorConfig(_) => &[Method::GET, Method::PUT, Method::PATCH],
            Route::ConnectorRestart(_) | Route::TaskRestart(..) => POST,
            Route::ConnectorPause(_)
            | Route::ConnectorResume(_)
            | Route::ConnectorStop(_)
            | Route::ConnectorTopicsReset(_)
            | Route::PluginValidate(_) => PUT,
            Route::ConnectorOffsets(_) => &[Method::GET, Method::PATCH, Method::DELETE],
            Route::Logger(_) => &[Method::GET, Method::PUT],
        }
    }

    /// The `Allow` header value for this resource.
    pub fn allow_header(&self) -> String {
        let mut names: Vec<&str> = self.methods().iter().map(Method::as_str).collect();
        if self.methods().contains(&Method::GET) {
            names.push("HEAD");
        }
        names.push("OPTIONS");
        names.join(",")
    }

    /// Whether the resource is one of the admin endpoints (`admin.listeners`).
    pub fn is_admin(&self) -> bool {
        matches!(self, Route::Loggers | Route::Logger(_))
    }
}

/// Decodes `%XX` escapes (and `+` as a space in query strings). Malformed escapes
/// are kept literally; bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h << 4) | l);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decoded query parameters in request order (repeated names are kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k, true), percent_decode(v, true))
            })
            .collect();
        Query(pairs)
    }

    /// The first value of `name`, as JAX-RS injects a single-valued parameter.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, for list-valued parameters such as `expand`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean with Java's `Boolean.valueOf` semantics: only a case-insensitive
    /// `true` is true; an absent parameter takes `default`.
    pub fn bool(&self, name: &str, default: bool) -> bool {
        self.first(name)
            .map_or(default, |v| v.eq_ignore_ascii_case("true"))
    }
}

/// Percent-encodes one path segment (everything but RFC 3986 `pchar` characters),
/// for the `Location` header.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
