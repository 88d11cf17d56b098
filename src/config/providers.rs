//! Config providers: `${alias:[path:]key}` references in worker and
//! connector configs, resolved from files, directories or the environment.
//!
//! Declared in the worker config exactly as for the Java worker:
//!
//! ```properties
//! config.providers=file,env,directory
//! config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
//! config.providers.file.param.allowed.paths=/etc/connect/secrets
//! config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
//! config.providers.env.param.allowlist.pattern=MONGO_.*
//! config.providers.directory.class=org.apache.kafka.common.config.provider.DirectoryConfigProvider
//! ```
//!
//! Resolution follows Java's `ConfigTransformer`: references match
//! `\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}`; a reference to an alias that is not
//! configured, or to a key the provider does not have (missing key, path
//! outside `allowed.paths`, env var outside `allowlist.pattern`), is left
//! unchanged. Provider failures (an unreadable file, a path given to the env
//! provider) are errors, as Java's `ConfigException`s are.
//!
//! Only the three built-in providers exist; a connector config can never
//! declare providers (CVE-2024-31141): only the worker config does.
//! Resolved values are secrets: nothing here logs or echoes them.
//!
//! Differences from Java: aliases in `config.providers` are trimmed (Java
//! silently ignores ` env` in `file, env`), and `allowlist.pattern` uses Rust
//! `regex` syntax, which agrees with Java's for ordinary patterns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use connect_api::config::Props;
use regex::Regex;
use thiserror::Error;

use super::properties;

/// Java's `ConfigTransformer.DEFAULT_PATTERN`.
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}").unwrap_or_else(|e| {
        // The pattern is a constant; failing to compile it is a programming error.
        panic!("invalid reference pattern: {e}")
    })
});

pub const FILE_PROVIDER_CLASS: &str = "org.apache.kafka.common.config.provider.FileConfigProvider";
pub const DIRECTORY_PROVIDER_CLASS: &str =
    "org.apache.kafka.common.config.provider.DirectoryConfigProvider";
pub const ENV_PROVIDER_CLASS: &str = "org.apache.kafka.common.config.provider.EnvVarConfigProvider";

/// Why providers could not be set up or a reference could not be resolved.
/// Messages follow Java's `ConfigException` texts and never contain values.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ProviderError {
    /// Setting up a provider from the worker config failed.
    #[error("Invalid value {value} for configuration {key}: {message}")]
    Config {
        key: String,
        value: String,
        message: String,
    },
    /// A provider could not serve a lookup.
    #[error("{0}")]
    Lookup(String),
}

/// True if `value` contains a `${alias:[path:]key}` reference.
pub fn has_references(value: &str) -> bool {
    REFERENCE.is_match(value)
}

#[derive(Debug, Clone)]
enum Provider {
    File { allowed: Option<Vec<PathBuf>> },
    Directory { allowed: Option<Vec<PathBuf>> },
    Env { vars: BTreeMap<String, String> },
}

/// The providers a worker config declares.
#[derive(Debug, Clone, Default)]
pub struct ConfigProviders {
    providers: BTreeMap<String, Provider>,
}

/// One `${alias:path:key}` occurrence.
struct Reference {
    alias: String,
    path: String,
    key: String,
}

fn reference(c: &regex::Captures<'_>) -> Reference {
    let get = |i| c.get(i).map(|m| m.as_str().to_string()).unwrap_or_default();
    Reference {
        alias: get(1),
        path: get(3),
        key: get(4),
    }
}

impl ConfigProviders {
    /// No providers: every reference stays as it is.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets up the providers declared in (unresolved) worker properties.
    pub fn from_worker_props(props: &Props) -> Result<Self, ProviderError> {
        // Java snapshots the environment when the provider is created.
        let env: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self::from_props_with_env(props, &env)
    }

    /// As [`Self::from_worker_props`], with the environment given (for tests).
    pub fn from_props_with_env(
        props: &Props,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ProviderError> {
        let mut providers = BTreeMap::new();
        let Some(list) = props.get("config.providers") else {
            return Ok(Self::none());
        };
        for alias in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let class_key = format!("config.providers.{alias}.class");
            // Java skips an alias without a class setting.
            let Some(class) = props.get(&class_key) else {
                tracing::warn!(
                    alias,
                    "config provider has no {class_key} setting; ignoring it"
                );
                continue;
            };
            let params = connect_api::config::originals_with_prefix(
                props,
                &format!("config.providers.{alias}.param."),
            );
            let class = class.trim();
            // The Java class name, or its simple name as a convenience.
            let simple = class
                .strip_prefix("org.apache.kafka.common.config.provider.")
                .unwrap_or(class);
            let provider = match simple {
                "FileConfigProvider" => Provider::File {
                    allowed: allowed_paths(params.get("allowed.paths"))?,
                },
                "DirectoryConfigProvider" => Provider::Directory {
                    allowed: allowed_paths(params.get("allowed.paths"))?,
                },
                "EnvVarConfigProvider" => {
                    let pattern = params.get("allowlist.pattern").map(String::as_str).unwrap_or(".*");
                    // Java uses Matcher.matches(): the whole name must match.
                    let re = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| ProviderError::Config {
                        key: format!("config.providers.{alias}.param.allowlist.pattern"),
                        value: pattern.to_string(),
                        message: format!("not a valid regular expression: {e}"),
                    })?;
                    let vars = env
                        .iter()
                        .filter(|(k, _)| re.is_match(k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    Provider::Env { vars }
                }
                _ => {
                    return Err(ProviderError::Config {
                        key: class_key.clone(),
                        value: class.to_string(),
                        message: format!(
                            "Could not load config provider class or one of its dependencies \
                             (supported: {FILE_PROVIDER_CLASS}, {DIRECTORY_PROVIDER_CLASS}, {ENV_PROVIDER_CLASS})"
                        ),
                    })
                }
            };
            providers.insert(alias.to_string(), provider);
        }
        Ok(ConfigProviders { providers })
    }

    /// The configured aliases.
    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Replaces every resolvable reference in every value.
    pub fn resolve(&self, props: &Props) -> Result<Props, ProviderError> {
        if self.providers.is_empty() {
            return Ok(props.clone());
        }
        // Gather the keys wanted per alias and path, then ask each provider once per path.
        let mut wanted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for value in props.values() {
            for c in REFERENCE.captures_iter(value) {
                let r = reference(&c);
                if self.providers.contains_key(&r.alias) {
                    wanted.entry((r.alias, r.path)).or_default().insert(r.key);
                }
            }
        }
        if wanted.is_empty() {
            return Ok(props.clone());
        }
        let mut found: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
        for ((alias, path), keys) in wanted {
            let Some(p) = self.providers.get(&alias) else {
                continue;
            };
            let data = p.get(&path, &keys)?;
            found.insert((alias, path), data);
        }
        Ok(props
            .iter()
            .map(|(k, v)| (k.clone(), replace(v, &found)))
            .collect())
    }

    /// Resolves references in a single value.
    pub fn resolve_value(&self, value: &str) -> Result<String, ProviderError> {
        let mut one = Props::new();
        one.insert(String::new(), value.to_string());
        Ok(self.resolve(&one)?.remove("").unwrap_or_default())
    }
}

fn replace(value: &str, found: &BTreeMap<(String, String), BTreeMap<String, String>>) -> String {
    REFERENCE
        .replace_all(value, |c: &regex::Captures<'_>| {
            let r = reference(c);
            found
                .get(&(r.alias, r.path))
                .and_then(|data| data.get(&r.key))
                .cloned()
                .unwrap_or_else(|| c[0].to_string())
        })
        .into_owned()
}

/// `allowed.paths`: comma-separated absolute paths that must exist.
fn allowed_paths(value: Option<&String>) -> Result<Option<Vec<PathBuf>>, ProviderError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for raw in value.split(',') {
        let p = normalize(Path::new(raw));
        if !p.is_absolute() {
            return Err(ProviderError::Lookup(format!(
                "Path {} is not absolute",
                p.display()
            )));
        }
        if !p.exists() {
            return Err(ProviderError::Lookup(format!(
                "Path {} does not exist",
                p.display()
            )));
        }
        out.push(p);
    }
    Ok(Some(out))
}

/// Java's `Path.normalize()`: drops `.` and folds `..` lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    out.iter().collect()
}

/// `AllowedPaths.parseUntrustedPath`: `None` if outside the allowed roots.
fn untrusted_path(path: &str, allowed: &Option<Vec<PathBuf>>) -> Option<PathBuf> {
    match allowed {
        None => Some(PathBuf::from(path)),
        Some(roots) => {
            let p = normalize(Path::new(path));
            roots.iter().any(|r| p.starts_with(r)).then_some(p)
        }
    }
}

impl Provider {
    fn get(
        &self,
        path: &str,
        keys: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        match self {
            Provider::Env { vars } => {
                if !path.is_empty() {
                    return Err(ProviderError::Lookup(format!(
                        "Path is not supported for EnvVarConfigProvider, invalid value '{path}'"
                    )));
                }
                Ok(vars
                    .iter()
                    .filter(|(k, _)| keys.contains(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect())
            }
            Provider::File { allowed } => {
                if path.is_empty() {
                    return Ok(BTreeMap::new());
                }
                let Some(file) = untrusted_path(path, allowed) else {
                    tracing::warn!(path, "config provider path is not in allowed.paths");
                    return Ok(BTreeMap::new());
                };
                // FileConfigProvider reads UTF-8 (a Reader), unlike worker files.
                let text = std::fs::read(&file)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        ProviderError::Lookup(format!("Could not read properties from file {path}"))
                    })?;
                let all = properties::parse(&text).map_err(|_| {
                    ProviderError::Lookup(format!("Could not read properties from file {path}"))
                })?;
                Ok(all.into_iter().filter(|(k, _)| keys.contains(k)).collect())
            }
            Provider::Directory { allowed } => {
                if path.is_empty() {
                    return Ok(BTreeMap::new());
                }
                let Some(dir) = untrusted_path(path, allowed) else {
                    tracing::warn!(path, "config provider path is not in allowed.paths");
                    return Ok(BTreeMap::new());
                };
                if !dir.is_dir() {
                    tracing::warn!(path, "config provider path is not a directory");
                    return Ok(BTreeMap::new());
                }
                let listing = std::fs::read_dir(&dir).map_err(|_| {
                    ProviderError::Lookup(format!("Could not list directory {}", dir.display()))
                })?;
                let mut out = BTreeMap::new();
                for entry in listing {
                    let entry = entry.map_err(|_| {
                        ProviderError::Lookup(format!("Could not list directory {}", dir.display()))
                    })?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let file = entry.path();
                    // Files.isRegularFile follows symlinks (Kubernetes secrets are symlinks).
                    if !keys.contains(&name) || !file.is_file() {
                        continue;
                    }
                    let bytes = std::fs::read(&file).map_err(|_| {
                        ProviderError::Lookup(format!(
                            "Could not read file {} for property {name}",
                            file.display()
                        ))
                    })?;
                    out.insert(name, String::from_utf8_lossy(&bytes).into_owned());
                }
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::test_util::{props, TempDir};

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        props(pairs)
    }

    fn worker(extra: &[(&str, &str)]) -> Props {
        let mut p = props(&[
            ("config.providers", "file,env,directory"),
            ("config.providers.file.class", FILE_PROVIDER_CLASS),
            ("config.providers.env.class", ENV_PROVIDER_CLASS),
            ("config.providers.directory.class", DIRECTORY_PROVIDER_CLASS),
        ]);
        p.extend(props(extra));
        p
    }

    #[test]
    fn detects_references() {
        assert!(has_references("${file:/a:b}"));
        assert!(has_references("x${env:HOME}y"));
        assert!(!has_references("${nocolon}"));
        assert!(!has_references("plain"));
    }

    #[test]
    fn file_provider_resolves_keys_and_leaves_unknowns() {
        let dir = TempDir::new("prov");
        let f = dir.write("s.properties", "db.password=s3cr\\u00e9t\nuser = bob\n");
        let f = f.display().to_string();
        let cp = ConfigProviders::from_props_with_env(&worker(&[]), &env(&[])).unwrap();
        let input = props(&[
            ("a", &format!("${{file:{f}:db.password}}")),
            (
                "b",
                &format!("u=${{file:{f}:user}};p=${{file:{f}:db.password}}"),
            ),
            ("missing.key", &format!("${{file:{f}:nope}}")),
            ("unknown.alias", "${vault:/x:y}"),
            ("plain", "v"),
        ]);
        let out = cp.resolve(&input).unwrap();
        assert_eq!(out["a"], "s3crét");
        assert_eq!(out["b"], "u=bob;p=s3crét");
        assert_eq!(out["missing.key"], input["missing.key"]);
        assert_eq!(out["unknown.alias"], "${vault:/x:y}");
        assert_eq!(out["plain"], "v");
        // A file that cannot be read is an error naming the path only.
        let err = cp.resolve_value("${file:/no/such/file:k}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Could not read properties from file /no/such/file"
        );
    }

    #[test]
    fn allowed_paths_restrict_and_block_traversal() {
        let dir = TempDir::new("prov");
        let sub = dir.path().join("ok");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("s.properties"), "k=v\n").unwrap();
        std::fs::write(dir.path().join("outside.properties"), "k=secret\n").unwrap();
        let cp = ConfigProviders::from_props_with_env(
            &worker(&[(
                "config.providers.file.param.allowed.paths",
                &sub.display().to_string(),
            )]),
            &env(&[]),
        )
        .unwrap();
        let ok = format!("${{file:{}/s.properties:k}}", sub.display());
        assert_eq!(cp.resolve_value(&ok).unwrap(), "v");
        let escape = format!("${{file:{}/../outside.properties:k}}", sub.display());
        assert_eq!(cp.resolve_value(&escape).unwrap(), escape);
        // allowed.paths entries must be absolute and exist.
        let err = ConfigProviders::from_props_with_env(
            &worker(&[("config.providers.file.param.allowed.paths", "relative/dir")]),
            &env(&[]),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "Path relative/dir is not absolute");
        let err = ConfigProviders::from_props_with_env(
            &worker(&[("config.providers.file.param.allowed.paths", "/no/such/dir")]),
            &env(&[]),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "Path /no/such/dir does not exist");
    }

    #[test]
    fn env_provider_with_allowlist() {
        let e = env(&[("MONGO_PASSWORD", "pw"), ("HOME", "/root")]);
        let cp = ConfigProviders::from_props_with_env(
            &worker(&[("config.providers.env.param.allowlist.pattern", "MONGO_.*")]),
            &e,
        )
        .unwrap();
        assert_eq!(cp.resolve_value("${env:MONGO_PASSWORD}").unwrap(), "pw");
        assert_eq!(cp.resolve_value("${env:HOME}").unwrap(), "${env:HOME}");
        // The pattern must match the whole name.
        let cp2 = ConfigProviders::from_props_with_env(
            &worker(&[("config.providers.env.param.allowlist.pattern", "MONGO")]),
            &e,
        )
        .unwrap();
        assert_eq!(
            cp2.resolve_value("${env:MONGO_PASSWORD}").unwrap(),
            "${env:MONGO_PASSWORD}"
        );
        let err = cp
            .resolve_value("${env:some/path:MONGO_PASSWORD}")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Path is not supported for EnvVarConfigProvider, invalid value 'some/path'"
        );
        let err = ConfigProviders::from_props_with_env(
            &worker(&[("config.providers.env.param.allowlist.pattern", "(")]),
            &e,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with(
            "Invalid value ( for configuration config.providers.env.param.allowlist.pattern"
        ));
    }

    #[test]
    fn directory_provider_reads_files() {
        let dir = TempDir::new("prov");
        dir.write("mongo_password", "pw\n");
        std::fs::create_dir_all(dir.path().join("subdir")).unwrap();
        let d = dir.path().display().to_string();
        let cp = ConfigProviders::from_props_with_env(&worker(&[]), &env(&[])).unwrap();
        assert_eq!(
            cp.resolve_value(&format!("${{directory:{d}:mongo_password}}"))
                .unwrap(),
            "pw\n"
        );
        let r = format!("${{directory:{d}:subdir}}");
        assert_eq!(cp.resolve_value(&r).unwrap(), r);
        let r = "${directory:/no/such/dir:x}";
        assert_eq!(cp.resolve_value(r).unwrap(), r);
    }

    #[test]
    fn provider_declaration_errors_and_skips() {
        let err = ConfigProviders::from_props_with_env(
            &props(&[
                ("config.providers", "v"),
                ("config.providers.v.class", "com.example.Vault"),
            ]),
            &env(&[]),
        )
        .unwrap_err();
        assert!(err
            .to_string()
            .starts_with("Invalid value com.example.Vault for configuration config.providers.v.class: Could not load config provider class"));
        // An alias without a class is ignored, as in Java; so its references stay.
        let cp =
            ConfigProviders::from_props_with_env(&props(&[("config.providers", "x")]), &env(&[]))
                .unwrap();
        assert!(cp.is_empty());
        assert_eq!(cp.resolve_value("${x:k}").unwrap(), "${x:k}");
        // Aliases are trimmed.
        let cp = ConfigProviders::from_props_with_env(
            &props(&[
                ("config.providers", "file, env"),
                ("config.providers.env.class", ENV_PROVIDER_CLASS),
            ]),
            &env(&[("A", "1")]),
        )
        .unwrap();
        assert_eq!(cp.aliases().collect::<Vec<_>>(), vec!["env"]);
        assert_eq!(cp.resolve_value("${env:A}").unwrap(), "1");
    }

    #[test]
    fn pattern_matches_java_captures() {
        // Expected output from java.util.regex with the same pattern.
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str, &'a str)]);
        let cases: &[Case<'_>] = &[
            ("${a:b:c:d}", &[("a", "b", "c:d")]),
            ("${a:b}", &[("a", "", "b")]),
            ("x${a::b}y${c:d:e}", &[("a", "", "b"), ("c", "d", "e")]),
            ("${:x}", &[("", "", "x")]),
            ("${a:}", &[("a", "", "")]),
            ("${a:b:}", &[("a", "b", "")]),
            ("${${a:b}:c}", &[("${a", "", "b")]),
            (
                "${file:C:\\x.properties:key}",
                &[("file", "C", "\\x.properties:key")],
            ),
            ("${a}b:c}", &[]),
        ];
        for (input, expected) in cases {
            let got: Vec<(String, String, String)> = REFERENCE
                .captures_iter(input)
                .map(|c| {
                    let r = reference(&c);
                    (r.alias, r.path, r.key)
                })
                .collect();
            let expected: Vec<(String, String, String)> = expected
                .iter()
                .map(|(a, p, k)| (a.to_string(), p.to_string(), k.to_string()))
                .collect();
            assert_eq!(got, expected, "{input}");
        }
    }

    #[test]
    fn pattern_splits_like_java() {
        // `${a:b:c:d}`: path "b", key "c:d".
        let c = REFERENCE.captures("${a:b:c:d}").unwrap();
        let r = reference(&c);
        assert_eq!(
            (r.alias.as_str(), r.path.as_str(), r.key.as_str()),
            ("a", "b", "c:d")
        );
        let c = REFERENCE.captures("${a:b}").unwrap();
        let r = reference(&c);
        assert_eq!(
            (r.alias.as_str(), r.path.as_str(), r.key.as_str()),
            ("a", "", "b")
        );
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/../x")), PathBuf::from("/x"));
        assert_eq!(normalize(Path::new("a/../../b")), PathBuf::from("../b"));
    }
}
