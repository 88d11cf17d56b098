//! Process logging and the runtime log-level registry behind `/admin/loggers`.
//!
//! The Java worker changes log4j logger levels at run time (KIP-495). Here the
//! global `tracing` subscriber has an [`EnvFilter`] wrapped in a
//! [`reload`](tracing_subscriber::reload) layer, and every change through
//! [`Loggers::set`] rebuilds that filter from the registry kept in this module.
//!
//! # Mapping Java logger names to tracing
//!
//! * A logger name is used **verbatim as a tracing target prefix**: setting
//!   `connectd::rest` to `DEBUG` adds the directive `connectd::rest=debug`, which
//!   `EnvFilter` applies to every target that starts with that string (the
//!   namespace and its children, as log4j does). Java-style dotted names such as
//!   `org.apache.kafka.connect` are accepted and stored, but only match tracing
//!   targets spelled the same way (events bridged from the `log` crate keep their
//!   module path, e.g. `rdkafka::client`).
//! * `root` is the default directive (a bare level), i.e. every target that no
//!   more specific logger covers.
//! * log4j level names map to tracing levels: `OFF`→off, `FATAL` and `ERROR`→error,
//!   `WARN`→warn, `INFO`→info, `DEBUG`→debug, `TRACE` and `ALL`→trace. The REST
//!   API reports back the log4j name that was set (so `FATAL` stays `FATAL`).
//! * A logger "exists" (for `GET /admin/loggers/{name}`) when it is `root` or has
//!   an explicitly set level; tracing has no registry of instantiated loggers the
//!   way log4j does, so other names answer not found.
//! * Names that the `EnvFilter` directive syntax cannot carry (empty, or
//!   containing whitespace, control characters or any of `=,[]{}"`) are refused.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Registry;

/// The logger name that stands for the default level.
pub const ROOT_LOGGER: &str = "root";

/// One entry of `GET /admin/loggers`: the log4j level name and when it was last
/// changed through the API (epoch milliseconds), or `null` if never.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggerLevel {
    pub level: String,
    pub last_modified: Option<u64>,
}

/// Why a level change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoggerError {
    /// Not one of the log4j level names; the REST layer answers 404 (Java quirk).
    #[error("invalid log level '{0}'.")]
    InvalidLevel(String),
    /// A name that cannot be expressed as a tracing filter directive.
    #[error("Invalid logger name '{0}': it must be non-empty and contain no whitespace, control characters or any of =,[]{{}}\"")]
    InvalidName(String),
}

/// A log4j level name, normalised to upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Log4jLevel {
    Off,
    Fatal,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
    All,
}

impl Log4jLevel {
    fn parse(s: &str) -> Option<Log4jLevel> {
        Some(match s.to_ascii_uppercase().as_str() {
            "OFF" => Log4jLevel::Off,
            "FATAL" => Log4jLevel::Fatal,
            "ERROR" => Log4jLevel::Error,
            "WARN" => Log4jLevel::Warn,
            "INFO" => Log4jLevel::Info,
            "DEBUG" => Log4jLevel::Debug,
            "TRACE" => Log4jLevel::Trace,
            "ALL" => Log4jLevel::All,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Log4jLevel::Off => "OFF",
            Log4jLevel::Fatal => "FATAL",
            Log4jLevel::Error => "ERROR",
            Log4jLevel::Warn => "WARN",
            Log4jLevel::Info => "INFO",
            Log4jLevel::Debug => "DEBUG",
            Log4jLevel::Trace => "TRACE",
            Log4jLevel::All => "ALL",
        }
    }

    /// The `EnvFilter` level keyword.
    fn tracing_level(self) -> &'static str {
        match self {
            Log4jLevel::Off => "off",
            Log4jLevel::Fatal | Log4jLevel::Error => "error",
            Log4jLevel::Warn => "warn",
            Log4jLevel::Info => "info",
            Log4jLevel::Debug => "debug",
            Log4jLevel::Trace | Log4jLevel::All => "trace",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    level: Log4jLevel,
    last_modified: Option<u64>,
}

#[derive(Debug)]
struct State {
    root: Entry,
    /// Explicitly set loggers (never contains `root`).
    loggers: BTreeMap<String, Entry>,
}

impl State {
    /// The `EnvFilter` directive string equivalent to this registry.
    fn directives(&self) -> String {
        let mut out = String::from(self.root.level.tracing_level());
        for (name, entry) in &self.loggers {
            out.push(',');
            out.push_str(name);
            out.push('=');
            out.push_str(entry.level.tracing_level());
        }
        out
    }
}

/// The runtime log-level registry. Cheap to share behind an `Arc`.
pub struct Loggers {
    state: Mutex<State>,
    /// `None` when no global subscriber was installed (tests, or a second `init`).
    handle: Option<reload::Handle<EnvFilter, Registry>>,
}

impl std::fmt::Debug for Loggers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loggers")
            .field("directives", &self.directives())
            .field("installed", &self.handle.is_some())
            .finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "=,[]{}\"".contains(c))
}

/// Parses the start-up level spec: comma-separated, a bare level sets `root`,
/// `name=LEVEL` sets a logger (not counted as modified through the API). Parts
/// that do not parse are returned so the caller can report them.
fn parse_spec(spec: &str) -> (State, Vec<String>) {
    let mut state = State {
        root: Entry {
            level: Log4jLevel::Info,
            last_modified: None,
        },
        loggers: BTreeMap::new(),
    };
    let mut rejected = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            None => match Log4jLevel::parse(part) {
                Some(level) => state.root.level = level,
                None => rejected.push(part.to_string()),
            },
            Some((name, level)) => match (Log4jLevel::parse(level.trim()), valid_name(name.trim()))
            {
                (Some(level), true) if name.trim() != ROOT_LOGGER => {
                    state.loggers.insert(
                        name.trim().to_string(),
                        Entry {
                            level,
                            last_modified: None,
                        },
                    );
                }
                (Some(level), true) => state.root.level = level,
                _ => rejected.push(part.to_string()),
            },
        }
    }
    (state, rejected)
}

impl Loggers {
    /// Installs the global subscriber (human-readable lines with the target, on
    /// stderr) whose filter this registry controls. `default_level` is a log4j
    /// or tracing level (`INFO`, `debug`), optionally followed by
    /// `,target=LEVEL` parts. If a global subscriber is already installed the
    /// registry still works but changes no output.
    pub fn init(default_level: &str) -> Arc<Loggers> {
        let (state, rejected) = parse_spec(default_level);
        // The directives are built from validated parts, so this parse only fails
        // on a bug; fall back to the root level rather than losing all logs.
        let filter = EnvFilter::try_new(state.directives())
            .unwrap_or_else(|_| EnvFilter::new(state.root.level.tracing_level()));
        let (layer, handle) = reload::Layer::new(filter);
        let installed = Registry::default()
            .with(layer)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    // Colour codes only for a terminal, not for log files.
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_target(true),
            )
            .try_init()
            .is_ok();
        if !rejected.is_empty() {
            tracing::warn!(parts = ?rejected, "ignoring unparsable parts of the log level setting");
        }
        Arc::new(Loggers {
            state: Mutex::new(state),
            handle: installed.then_some(handle),
        })
    }

    /// A registry that installs nothing, so any number of tests can have one.
    pub fn for_tests() -> Arc<Loggers> {
        Arc::new(Loggers {
            state: Mutex::new(parse_spec("INFO").0),
            handle: None,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated in a
        // way that matters (each update is a single insert), so keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this registry controls the global subscriber's filter.
    pub fn is_installed(&self) -> bool {
        self.handle.is_some()
    }

    /// The current `EnvFilter` directives (for diagnostics and tests).
    pub fn directives(&self) -> String {
        self.lock().directives()
    }

    /// Every explicitly set logger plus `root`, sorted by name.
    pub fn get_all(&self) -> BTreeMap<String, LoggerLevel> {
        let state = self.lock();
        let mut out: BTreeMap<String, LoggerLevel> = state
            .loggers
            .iter()
            .map(|(name, e)| (name.clone(), to_level(e)))
            .collect();
        out.insert(ROOT_LOGGER.to_string(), to_level(&state.root));
        out
    }

    /// One logger, or `None` if it is neither `root` nor explicitly set.
    pub fn get(&self, name: &str) -> Option<LoggerLevel> {
        let state = self.lock();
        if name == ROOT_LOGGER {
            return Some(to_level(&state.root));
        }
        state.loggers.get(name).map(to_level)
    }

    /// Checks a logger name and level without applying them (cluster scope is
    /// applied when the config-topic record is read back).
    pub fn validate(name: &str, level: &str) -> Result<(), LoggerError> {
        Log4jLevel::parse(level).ok_or_else(|| LoggerError::InvalidLevel(level.into()))?;
        if !valid_name(name) {
            return Err(LoggerError::InvalidName(name.to_string()));
        }
        Ok(())
    }

    /// Sets `name` and every known logger under it (prefix match, like log4j's
    /// namespace) to `level`, and returns the sorted names that changed. For
    /// `root` every known logger changes, as in the Java worker.
    pub fn set(&self, name: &str, level: &str) -> Result<Vec<String>, LoggerError> {
        let parsed =
            Log4jLevel::parse(level).ok_or_else(|| LoggerError::InvalidLevel(level.into()))?;
        if !valid_name(name) {
            return Err(LoggerError::InvalidName(name.to_string()));
        }
        let entry = Entry {
            level: parsed,
            last_modified: Some(now_ms()),
        };
        let mut state = self.lock();
        let mut affected = Vec::new();
        if name == ROOT_LOGGER {
            state.root = entry;
            affected.push(ROOT_LOGGER.to_string());
            for (n, e) in state.loggers.iter_mut() {
                *e = entry;
                affected.push(n.clone());
            }
        } else {
            for (n, e) in state.loggers.iter_mut() {
                if n.starts_with(name) {
                    *e = entry;
                    affected.push(n.clone());
                }
            }
            if !state.loggers.contains_key(name) {
                state.loggers.insert(name.to_string(), entry);
                affected.push(name.to_string());
            }
        }
        affected.sort();
        let directives = state.directives();
        // Reload while still holding the lock so concurrent changes apply in order.
        if let Some(handle) = &self.handle {
            match EnvFilter::try_new(&directives) {
                Ok(filter) => {
                    if let Err(e) = handle.reload(filter) {
                        tracing::warn!(error = %e, "could not reload the log filter");
                    }
                }
                Err(e) => tracing::warn!(error = %e, %directives, "could not build the log filter"),
            }
        }
        drop(state);
        tracing::info!(
            logger = name,
            level = parsed.name(),
            ?affected,
            "changed log level"
        );
        Ok(affected)
    }
}

fn to_level(e: &Entry) -> LoggerLevel {
    LoggerLevel {
        level: e.level.name().to_string(),
        last_modified: e.last_modified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_list_only_root() {
        let l = Loggers::for_tests();
        let all = l.get_all();
        assert_eq!(all.len(), 1);
        assert_eq!(
            all.get("root"),
            Some(&LoggerLevel {
                level: "INFO".into(),
                last_modified: None
            })
        );
        assert_eq!(l.get("connectd"), None);
        assert_eq!(l.directives(), "info");
    }

    #[test]
    fn set_namespace_changes_children_and_directives() {
        let l = Loggers::for_tests();
        assert_eq!(
            l.set("connectd::rest::x", "trace"),
            Ok(vec!["connectd::rest::x".to_string()])
        );
        assert_eq!(
            l.set("connectd::herder", "WARN"),
            Ok(vec!["connectd::herder".to_string()])
        );
        assert_eq!(
            l.set("connectd::rest", "Debug"),
            Ok(vec![
                "connectd::rest".to_string(),
                "connectd::rest::x".to_string()
            ])
        );
        let got = l.get("connectd::rest::x").expect("set");
        assert_eq!(got.level, "DEBUG");
        assert!(got.last_modified.is_some());
        assert_eq!(
            l.directives(),
            "info,connectd::herder=warn,connectd::rest=debug,connectd::rest::x=debug"
        );
        let root = l.set("root", "fatal").expect("valid");
        assert_eq!(
            root,
            vec![
                "connectd::herder",
                "connectd::rest",
                "connectd::rest::x",
                "root"
            ]
        );
        assert_eq!(l.get("root").map(|r| r.level), Some("FATAL".to_string()));
        assert!(l.directives().starts_with("error,"));
    }

    #[test]
    fn rejects_bad_levels_and_names() {
        let l = Loggers::for_tests();
        assert_eq!(
            l.set("a", "verbose"),
            Err(LoggerError::InvalidLevel("verbose".into()))
        );
        assert_eq!(
            l.set("a=b", "info"),
            Err(LoggerError::InvalidName("a=b".into()))
        );
        assert_eq!(
            l.set("", "info"),
            Err(LoggerError::InvalidName(String::new()))
        );
        assert_eq!(l.get_all().len(), 1);
    }

    /// The only test that installs the global subscriber (one per process).
    #[test]
    fn init_installs_a_reloadable_filter() {
        let l = Loggers::init("warn,connectd::init_quiet=error");
        assert!(l.is_installed());
        assert!(!tracing::enabled!(target: "connectd::init_test", tracing::Level::DEBUG));
        l.set("connectd::init_test", "DEBUG").expect("valid");
        assert!(tracing::enabled!(target: "connectd::init_test::x", tracing::Level::DEBUG));
        assert!(!tracing::enabled!(target: "connectd::init_quiet", tracing::Level::WARN));
        assert!(!tracing::enabled!(target: "connectd::other", tracing::Level::INFO));
        assert!(tracing::enabled!(target: "connectd::other", tracing::Level::WARN));
        // A second init cannot take over the global subscriber but still works.
        let again = Loggers::init("info");
        assert!(!again.is_installed());
        assert_eq!(again.set("x", "info"), Ok(vec!["x".to_string()]));
    }

    #[test]
    fn start_up_spec() {
        let (s, rejected) = parse_spec("warn, connectd::rest=DEBUG, bogus, x=nope, ALL");
        assert_eq!(s.root.level, Log4jLevel::All);
        assert_eq!(rejected, vec!["bogus".to_string(), "x=nope".to_string()]);
        assert_eq!(s.directives(), "trace,connectd::rest=debug");
    }

    #[test]
    fn directives_parse_as_env_filter() {
        let l = Loggers::for_tests();
        l.set("org.apache.kafka.connect", "ALL").expect("valid");
        l.set("connectd::rest", "OFF").expect("valid");
        assert!(EnvFilter::try_new(l.directives()).is_ok());
    }
}
