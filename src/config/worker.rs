//! The worker configuration (`connect-standalone.properties` /
//! `connect-distributed.properties`), declared as a [`ConfigDef`] with the
//! Java worker's keys, types and defaults (contract §5.1, §5.2), and typed
//! accessors for everything the worker needs.
//!
//! Loading follows Java's `WorkerConfig`: config providers declared in the
//! worker properties are set up first and every `${alias:[path:]key}`
//! reference in the worker properties is resolved, then the result is parsed.
//! Connector configs are *not* resolved here: the worker resolves them when a
//! connector or task starts, with [`WorkerConfig::providers`].
//!
//! # Kafka clients
//! [`WorkerConfig::client_props`] gives the Java-level settings of a
//! connector's clients, built as Java's `Worker` builds them:
//! * producers: framework defaults, then `producer.*` (prefix stripped);
//! * consumers: framework defaults, then `consumer.*`;
//! * admin clients: every unprefixed worker key except those starting with
//!   `producer.`, `consumer.`, `admin.` or `config.providers`, then `admin.*`
//!   (Java passes unprefixed keys to admin clients for backwards compatibility;
//!   the Java admin client ignores the ones it does not know, and so does our
//!   librdkafka mapping).
//!
//! [`librdkafka_config`] then maps Java client keys to librdkafka keys: keys
//! that librdkafka spells the same way pass through, renamed ones are renamed
//! (`sasl.mechanism` -> `sasl.mechanisms`, `fetch.max.wait.ms` ->
//! `fetch.wait.max.ms`, `delivery.timeout.ms` -> `message.timeout.ms`, ...),
//! `sasl.jaas.config` is unpacked into `sasl.username`/`sasl.password` (PLAIN,
//! SCRAM), Kerberos principal/keytab or OAuth client credentials, PEM and
//! PKCS#12 key material maps to `ssl.*` locations, and everything without a
//! librdkafka equivalent (serializers, interceptors, `max.block.ms`, JKS
//! stores, ...) is dropped with a debug log naming the key, never the value.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use connect_api::config::{
    originals_with_prefix, ConfigDef, ConfigKey, ConfigType, ConfigValue, Default, Importance,
    ParsedConfig, Props, Validator,
};
use thiserror::Error;

use super::providers::{ConfigProviders, ProviderError};

/// How the worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Standalone,
    Distributed,
}

/// A kind of Kafka client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Producer,
    Consumer,
    Admin,
}

/// A bad worker config. The message is one line naming the key and the problem.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum WorkerConfigError {
    #[error("invalid worker config: {0}")]
    Invalid(String),
    #[error("invalid worker config: {0}")]
    Provider(#[from] ProviderError),
}

/// A REST listener (`listeners`, `admin.listeners`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Always `http` for now.
    pub protocol: String,
    /// Empty means all interfaces (Java binds the default interface).
    pub host: String,
    /// 0 asks the OS for a free port (useful in tests).
    pub port: u16,
}

impl Listener {
    /// Parses `proto://host:port` like Java's `RestServer.createConnector`.
    pub fn parse(s: &str) -> Result<Listener, String> {
        let s = s.trim();
        let (proto, rest) = s.split_once("://").ok_or_else(|| {
            "Listener doesn't have the right format (protocol://hostname:port).".to_string()
        })?;
        // Java's pattern: `\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+)` for the part after `://`.
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
            "Listener doesn't have the right format (protocol://hostname:port).".to_string()
        })?;
        let host = host.strip_prefix('[').unwrap_or(host);
        let host = host.strip_suffix(']').unwrap_or(host);
        let host_ok = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-%._:".contains(c));
        let port_ok = !port.is_empty()
            && port
                .trim_start_matches('-')
                .chars()
                .all(|c| c.is_ascii_digit());
        if !host_ok || !port_ok {
            return Err(
                "Listener doesn't have the right format (protocol://hostname:port).".to_string(),
            );
        }
        let protocol = proto.to_ascii_lowercase();
        match protocol.as_str() {
            "http" => {}
            "https" => {
                return Err(format!(
                    "HTTPS listener {s} is not supported yet by connectd; use an http:// listener"
                ))
            }
            _ => return Err("Listener protocol must be either \"http\" or \"https\".".to_string()),
        }
        let port: u16 = port
            .parse()
            .map_err(|_| format!("Listener port {port} is not between 0 and 65535"))?;
        Ok(Listener {
            protocol,
            host: host.to_string(),
            port,
        })
    }
}

/// `connect.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectProtocol {
    Eager,
    Compatible,
    Sessioned,
}

/// `exactly.once.source.support`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExactlyOnceSourceSupport {
    Disabled,
    Preparing,
    Enabled,
}

impl ExactlyOnceSourceSupport {
    /// Whether the leader writes to the config topic with a transactional producer.
    pub fn uses_transactional_leader(self) -> bool {
        self != ExactlyOnceSourceSupport::Disabled
    }
}

/// `connector.client.config.override.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverridePolicy {
    All,
    None,
    Principal,
}

impl OverridePolicy {
    /// Whether a connector may set this client key through `*.override.*`.
    pub fn allows(self, client_key: &str) -> bool {
        match self {
            OverridePolicy::All => true,
            OverridePolicy::None => false,
            OverridePolicy::Principal => matches!(
                client_key,
                "sasl.jaas.config" | "sasl.mechanism" | "security.protocol"
            ),
        }
    }

    fn parse(s: &str) -> Option<OverridePolicy> {
        // The alias, the simple class name or the full Java class name.
        let simple = s
            .strip_prefix("org.apache.kafka.connect.connector.policy.")
            .unwrap_or(s);
        let simple = simple
            .strip_suffix("ConnectorClientConfigOverridePolicy")
            .unwrap_or(simple);
        match simple {
            "All" => Some(OverridePolicy::All),
            "None" => Some(OverridePolicy::None),
            "Principal" => Some(OverridePolicy::Principal),
            _ => None,
        }
    }
}

/// An internal topic: name, creation settings and extra topic configs.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSettings {
    pub topic: String,
    /// -1 means the broker default. Always 1 for the config topic.
    pub partitions: i32,
    /// -1 means the broker default.
    pub replication_factor: i16,
    /// Other `<prefix>.*` keys, passed as topic configs at creation
    /// (`cleanup.policy` is removed: compaction is forced).
    pub configs: Props,
}

/// A converter class and its prefixed settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ConverterConfig {
    pub class: String,
    pub props: Props,
}

/// MAC algorithms the worker can sign and verify internal requests with.
pub const SUPPORTED_MAC_ALGORITHMS: &[&str] = &["HmacSHA256"];

/// A parsed, validated worker config.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    mode: Mode,
    parsed: ParsedConfig,
    raw: Props,
    providers: ConfigProviders,
    listeners: Vec<Listener>,
    admin_listeners: Option<Vec<Listener>>,
    /// Host to advertise when neither `rest.advertised.host.name` nor the listener names one.
    local_host: String,
}

fn k(name: &str, t: ConfigType, d: Default, i: Importance, doc: &str) -> ConfigKey {
    ConfigKey::new(name, t, d, i, doc)
}

fn v(s: &str) -> Default {
    Default::Value(s.to_string())
}

fn check_partitions(v: &ConfigValue) -> Result<(), String> {
    match v {
        ConfigValue::Int(n) if *n != -1 && *n < 1 => {
            Err("Number of partitions must be positive, or -1 to use the broker's default".into())
        }
        _ => Ok(()),
    }
}

fn check_replication_factor(v: &ConfigValue) -> Result<(), String> {
    match v {
        ConfigValue::Short(n) if *n != -1 && *n < 1 => Err("Replication factor must be positive and not larger than the number of brokers in the Kafka cluster, or -1 to use the broker's default".into()),
        _ => Ok(()),
    }
}

fn check_listeners(v: &ConfigValue) -> Result<(), String> {
    match v {
        ConfigValue::List(items) if items.is_empty() => Err(
            "at least one URL is expected, ex: http://localhost:8080,https://localhost:8443."
                .into(),
        ),
        ConfigValue::List(items) if items.iter().any(|i| i.trim().is_empty()) => {
            Err("Empty URL found when parsing listeners list.".into())
        }
        _ => Ok(()),
    }
}

fn check_admin_listeners(v: &ConfigValue) -> Result<(), String> {
    match v {
        ConfigValue::List(items)
            if items.len() > 1 && items.iter().any(|i| i.trim().is_empty()) =>
        {
            Err("Empty URL found when parsing admin.listeners list.".into())
        }
        _ => Ok(()),
    }
}

fn check_policy(v: &ConfigValue) -> Result<(), String> {
    match v {
        ConfigValue::String(s) if OverridePolicy::parse(s).is_none() => Err(
            "must be All, None or Principal (or the Java class name of one of these policies)"
                .into(),
        ),
        _ => Ok(()),
    }
}

fn check_connect_protocol(v: &ConfigValue) -> Result<(), String> {
    match v {
        ConfigValue::String(s)
            if !["eager", "compatible", "sessioned"]
                .iter()
                .any(|p| p.eq_ignore_ascii_case(s)) =>
        {
            Err("Invalid Connect protocol compatibility".into())
        }
        _ => Ok(()),
    }
}

fn unsupported_mac(a: &str) -> bool {
    !SUPPORTED_MAC_ALGORITHMS.contains(&a)
}

fn mac_error() -> String {
    format!(
        "the algorithm is not supported by this worker; the supported algorithms are: {}",
        SUPPORTED_MAC_ALGORITHMS.join(", ")
    )
}

fn check_mac(v: &ConfigValue) -> Result<(), String> {
    match v {
        ConfigValue::String(s) if unsupported_mac(s) => Err(mac_error()),
        _ => Ok(()),
    }
}

fn check_verification_macs(v: &ConfigValue) -> Result<(), String> {
    match v {
        ConfigValue::List(l) if l.is_empty() => {
            Err("At least one signature verification algorithm must be provided".into())
        }
        ConfigValue::List(l) if l.iter().any(|a| unsupported_mac(a)) => Err(mac_error()),
        _ => Ok(()),
    }
}

/// Java's `RestServerConfig.ResponseHttpHeadersValidator`.
fn check_response_headers(v: &ConfigValue) -> Result<(), String> {
    let ConfigValue::String(s) = v else {
        return Ok(());
    };
    if s.trim().is_empty() {
        return Ok(());
    }
    for rule in csv_split(s) {
        let rule = rule.trim();
        let Some((action, header)) = rule.split_once(char::is_whitespace) else {
            return Err(format!(
                "Invalid format of header config '{rule}'. Expected: '[action] [header name]:[header value]'"
            ));
        };
        if !["set", "add", "setDate", "addDate"]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(action.trim()))
        {
            return Err(format!(
                "Invalid header config action: '{}'. Expected one of [set, add, setDate, addDate]",
                action.trim()
            ));
        }
        let parts: Vec<&str> = header.trim().split(':').collect();
        if parts.len() != 2 {
            return Err(format!(
                "Invalid format of header name and header value pair '{}'. Expected: '[header name]:[header value]'",
                header.trim()
            ));
        }
        let name = parts[0].trim();
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(format!(
                "Invalid header name '{name}'. The '[header name]' cannot contain whitespace"
            ));
        }
    }
    Ok(())
}

/// Comma-separated values where a double-quoted part may contain commas (Jetty's `csvSplit`).
fn csv_split(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Keys of both modes (Java's `WorkerConfig.baseConfigDef`).
fn base_def() -> ConfigDef {
    use ConfigType::*;
    use Importance::*;
    let def = ConfigDef::new()
        .define(k("bootstrap.servers", List, v("localhost:9092"), High,
            "Kafka brokers (host:port, comma-separated) to bootstrap from; used by the worker's own clients and, unless overridden, by connector clients."))
        .define(k("client.dns.lookup", String, v("use_all_dns_ips"), Medium,
            "How clients use the DNS lookups of bootstrap and broker host names.")
            .validator(Validator::one_of(&["use_all_dns_ips", "resolve_canonical_bootstrap_servers_only"])))
        .define(k("key.converter", Class, Default::Required, High,
            "Converter for record keys between Connect data and bytes in Kafka; its settings go under the key.converter. prefix. Connectors may override it."))
        .define(k("value.converter", Class, Default::Required, High,
            "Converter for record values between Connect data and bytes in Kafka; its settings go under the value.converter. prefix. Connectors may override it."))
        .define(k("task.shutdown.graceful.timeout.ms", Long, v("5000"), Low,
            "How long to wait for tasks to stop cleanly, in total across all tasks rather than per task.")
            .validator(Validator::at_least(0.0)))
        .define(k("offset.flush.interval.ms", Long, v("60000"), Low,
            "How often source task offsets are committed.")
            .validator(Validator::at_least(0.0)))
        .define(k("offset.flush.timeout.ms", Long, v("5000"), Low,
            "How long an offset commit may wait for outstanding records to be flushed before it is abandoned and retried at the next interval.")
            .validator(Validator::at_least(0.0)))
        .define(k("plugin.path", List, Default::Null, Low,
            "Directories searched for plugins. Kept for compatibility; connectd's plugins are built in. Config provider references are not resolved here."))
        .define(k("plugin.discovery", String, v("hybrid_warn"), Low,
            "How plugins are discovered (only_scan, hybrid_warn, hybrid_fail, service_load). Accepted for compatibility.")
            .validator(Validator::one_of_ignore_case(&["only_scan", "hybrid_warn", "hybrid_fail", "service_load"])))
        .define(k("metrics.sample.window.ms", Long, v("30000"), Low,
            "Window over which metric samples are computed.")
            .validator(Validator::at_least(0.0)))
        .define(k("metrics.num.samples", Int, v("2"), Low,
            "Number of samples kept to compute metrics.")
            .validator(Validator::at_least(1.0)))
        .define(k("metrics.recording.level", String, v("INFO"), Low,
            "Highest recording level of metrics.")
            .validator(Validator::one_of(&["INFO", "DEBUG"])))
        .define(k("metric.reporters", List, v(""), Low,
            "Metric reporter classes. Accepted for compatibility; not used."))
        .define(k("header.converter", Class, v("org.apache.kafka.connect.storage.SimpleHeaderConverter"), Low,
            "Converter for record header values; its settings go under the header.converter. prefix."))
        .define(k("config.providers", List, v(""), Low,
            "Aliases of config providers, each set up with config.providers.<alias>.class and config.providers.<alias>.param.*, which resolve ${alias:[path:]key} references."))
        .define(k("connector.client.config.override.policy", String, v("All"), Medium,
            "Which client settings connectors may override with producer.override.*, consumer.override.* and admin.override.*: All, None, or Principal (only sasl.jaas.config, sasl.mechanism and security.protocol).")
            .validator(Validator::Custom(check_policy)))
        .define(k("topic.creation.enable", Boolean, v("true"), Low,
            "Whether source connectors with topic.creation.* settings may create the topics they write to."))
        .define(k("topic.tracking.enable", Boolean, v("true"), Low,
            "Whether the set of topics each connector uses is tracked."))
        .define(k("topic.tracking.allow.reset", Boolean, v("true"), Low,
            "Whether users may reset a connector's tracked topics through the REST API."))
        // REST server (Java's RestServerConfig).
        .define(k("listeners", List, v("http://:8083"), Low,
            "URLs the REST API listens on, comma-separated, as protocol://host:port. An empty host binds all interfaces.")
            .validator(Validator::Custom(check_listeners)))
        .define(k("rest.advertised.host.name", String, Default::Null, Low,
            "Host name given to other workers to reach this one, if different from the listener's."))
        .define(k("rest.advertised.port", Int, Default::Null, Low,
            "Port given to other workers to reach this one, if different from the listener's.")
            .validator(Validator::between(0.0, 65535.0)))
        .define(k("rest.advertised.listener", String, Default::Null, Low,
            "Protocol (http or https) of the URL given to other workers."))
        .define(k("access.control.allow.origin", String, v(""), Low,
            "Value of the Access-Control-Allow-Origin header for REST responses; empty disables cross-origin access, * allows any origin."))
        .define(k("access.control.allow.methods", String, v(""), Low,
            "Value of the Access-Control-Allow-Methods header for cross-origin requests; empty means GET, POST and HEAD."))
        .define(k("response.http.headers.config", String, v(""), Low,
            "Headers added to REST responses: comma-separated rules '[set|add|setDate|addDate] Name:Value'.")
            .validator(Validator::Custom(check_response_headers)))
        .define(k("ssl.client.auth", String, v("none"), Low,
            "Whether HTTPS listeners require client certificates (required, requested, none).")
            .validator(Validator::one_of(&["required", "requested", "none"])))
        .define(k("rest.extension.classes", List, v(""), Low,
            "REST extension classes. Accepted for compatibility; not supported."))
        .define(k("admin.listeners", List, Default::Null, Low,
            "URLs for the admin REST endpoints (loggers). Unset means the regular listeners; empty disables them.")
            .validator(Validator::Custom(check_admin_listeners)));
    ssl_client_keys(def)
}

/// Java's `ConfigDef.withClientSslSupport()` for the worker's own clients.
fn ssl_client_keys(def: ConfigDef) -> ConfigDef {
    use ConfigType::*;
    use Importance::*;
    def.define(k("ssl.protocol", String, v("TLSv1.3"), Medium, "TLS protocol used to create SSL contexts."))
        .define(k("ssl.provider", String, Default::Null, Medium, "Security provider for SSL connections (Java only; ignored)."))
        .define(k("ssl.cipher.suites", List, Default::Null, Low, "Cipher suites allowed for TLS connections."))
        .define(k("ssl.enabled.protocols", List, v("TLSv1.2,TLSv1.3"), Medium, "TLS protocols enabled for connections."))
        .define(k("ssl.keystore.type", String, v("JKS"), Medium, "Format of the key store: JKS, PKCS12 or PEM. librdkafka reads PKCS12 and PEM only."))
        .define(k("ssl.keystore.location", String, Default::Null, High, "Location of the key store holding the client certificate."))
        .define(k("ssl.keystore.password", Password, Default::Null, High, "Password of the key store."))
        .define(k("ssl.key.password", Password, Default::Null, High, "Password of the private key."))
        .define(k("ssl.keystore.key", Password, Default::Null, High, "Private key in PEM form, inline."))
        .define(k("ssl.keystore.certificate.chain", Password, Default::Null, High, "Certificate chain in PEM form, inline."))
        .define(k("ssl.truststore.certificates", Password, Default::Null, High, "Trusted certificates in PEM form, inline."))
        .define(k("ssl.truststore.type", String, v("JKS"), Medium, "Format of the trust store: JKS, PKCS12 or PEM. librdkafka reads PEM only."))
        .define(k("ssl.truststore.location", String, Default::Null, High, "Location of the trust store."))
        .define(k("ssl.truststore.password", Password, Default::Null, High, "Password of the trust store."))
        .define(k("ssl.keymanager.algorithm", String, v("SunX509"), Low, "Key manager algorithm (Java only; ignored)."))
        .define(k("ssl.trustmanager.algorithm", String, v("PKIX"), Low, "Trust manager algorithm (Java only; ignored)."))
        .define(k("ssl.endpoint.identification.algorithm", String, v("https"), Low, "How the broker host name is checked against its certificate: https, or empty to skip the check."))
        .define(k("ssl.secure.random.implementation", String, Default::Null, Low, "SecureRandom implementation (Java only; ignored)."))
        .define(k("ssl.engine.factory.class", Class, Default::Null, Low, "Custom SSL engine factory (Java only; not supported)."))
}

/// Java's `ConfigDef.withClientSaslSupport()` (distributed mode).
fn sasl_client_keys(def: ConfigDef) -> ConfigDef {
    use ConfigType::*;
    use Importance::*;
    def.define(k("sasl.kerberos.service.name", String, Default::Null, Medium, "Kerberos principal name the brokers run as."))
        .define(k("sasl.kerberos.kinit.cmd", String, v("/usr/bin/kinit"), Low, "Kerberos kinit command path."))
        .define(k("sasl.kerberos.ticket.renew.window.factor", Double, v("0.8"), Low, "Fraction of the ticket lifetime after which it is renewed."))
        .define(k("sasl.kerberos.ticket.renew.jitter", Double, v("0.05"), Low, "Random jitter added to the renewal time."))
        .define(k("sasl.kerberos.min.time.before.relogin", Long, v("60000"), Low, "Minimum time between refresh attempts."))
        .define(k("sasl.login.refresh.window.factor", Double, v("0.8"), Low, "Fraction of a credential's lifetime after which it is refreshed.")
            .validator(Validator::between(0.5, 1.0)))
        .define(k("sasl.login.refresh.window.jitter", Double, v("0.05"), Low, "Random jitter added to the refresh time.")
            .validator(Validator::between(0.0, 0.25)))
        .define(k("sasl.login.refresh.min.period.seconds", Short, v("60"), Low, "Minimum time between credential refreshes.")
            .validator(Validator::between(0.0, 900.0)))
        .define(k("sasl.login.refresh.buffer.seconds", Short, v("300"), Low, "Time before expiry at which a credential is refreshed.")
            .validator(Validator::between(0.0, 3600.0)))
        .define(k("sasl.mechanism", String, v("GSSAPI"), Medium, "SASL mechanism for client connections (GSSAPI, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)."))
        .define(k("sasl.jaas.config", Password, Default::Null, Medium, "JAAS login context for SASL, e.g. a PlainLoginModule line with username and password."))
        .define(k("sasl.client.callback.handler.class", Class, Default::Null, Medium, "SASL client callback handler (Java only; not supported)."))
        .define(k("sasl.login.callback.handler.class", Class, Default::Null, Medium, "SASL login callback handler (Java only; not supported)."))
        .define(k("sasl.login.class", Class, Default::Null, Medium, "SASL login class (Java only; not supported)."))
        .define(k("sasl.login.connect.timeout.ms", Int, Default::Null, Low, "Connect timeout of the OAuth token endpoint."))
        .define(k("sasl.login.read.timeout.ms", Int, Default::Null, Low, "Read timeout of the OAuth token endpoint."))
        .define(k("sasl.login.retry.backoff.max.ms", Long, v("10000"), Low, "Maximum backoff between OAuth login attempts."))
        .define(k("sasl.login.retry.backoff.ms", Long, v("100"), Low, "Initial backoff between OAuth login attempts."))
        .define(k("sasl.oauthbearer.scope.claim.name", String, v("scope"), Low, "Name of the OAuth scope claim."))
        .define(k("sasl.oauthbearer.sub.claim.name", String, v("sub"), Low, "Name of the OAuth subject claim."))
        .define(k("sasl.oauthbearer.token.endpoint.url", String, Default::Null, Medium, "OAuth/OIDC token endpoint."))
        .define(k("sasl.oauthbearer.jwks.endpoint.url", String, Default::Null, Medium, "OAuth JWKS endpoint (broker side; ignored)."))
        .define(k("sasl.oauthbearer.jwks.endpoint.refresh.ms", Long, v("3600000"), Low, "JWKS refresh interval (broker side; ignored)."))
        .define(k("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", Long, v("10000"), Low, "JWKS maximum retry backoff (broker side; ignored)."))
        .define(k("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", Long, v("100"), Low, "JWKS initial retry backoff (broker side; ignored)."))
        .define(k("sasl.oauthbearer.clock.skew.seconds", Int, v("30"), Low, "Allowed clock skew for OAuth tokens."))
        .define(k("sasl.oauthbearer.expected.audience", List, Default::Null, Low, "Expected OAuth audiences (broker side; ignored)."))
        .define(k("sasl.oauthbearer.expected.issuer", String, Default::Null, Low, "Expected OAuth issuer (broker side; ignored)."))
        .define(k("sasl.oauthbearer.header.urlencode", Boolean, v("false"), Low, "Whether OAuth client credentials are URL-encoded in the token request."))
}

/// Distributed-only keys (Java's `DistributedConfig`).
fn distributed_def() -> ConfigDef {
    use ConfigType::*;
    use Importance::*;
    let def = base_def()
        .define(k("group.id", String, Default::Required, High,
            "Name of the Connect cluster this worker belongs to; workers with the same group.id share connectors and tasks."))
        .define(k("session.timeout.ms", Int, v("10000"), High,
            "How long the group coordinator waits for a heartbeat before it drops the worker and rebalances.")
            .validator(Validator::at_least(1.0)))
        .define(k("rebalance.timeout.ms", Int, v("60000"), High,
            "How long each worker may take to rejoin the group during a rebalance.")
            .validator(Validator::at_least(1.0)))
        .define(k("heartbeat.interval.ms", Int, v("3000"), High,
            "How often the worker heartbeats to the group coordinator; keep it well below session.timeout.ms.")
            .validator(Validator::at_least(1.0)))
        .define(k("exactly.once.source.support", String, v("disabled"), High,
            "Exactly-once support for source connectors: disabled, preparing (rolling upgrade step) or enabled.")
            .validator(Validator::one_of_ignore_case(&["disabled", "preparing", "enabled"])))
        .define(k("metadata.max.age.ms", Long, v("300000"), Low,
            "How often cluster metadata is refreshed even without changes.")
            .validator(Validator::at_least(0.0)))
        .define(k("client.id", String, v(""), Low,
            "Part of the client ids of the worker's own clients (<group.id>-<client.id>-configs etc.)."))
        .define(k("send.buffer.bytes", Int, v("131072"), Medium,
            "TCP send buffer size; -1 uses the OS default.")
            .validator(Validator::at_least(-1.0)))
        .define(k("receive.buffer.bytes", Int, v("32768"), Medium,
            "TCP receive buffer size; -1 uses the OS default.")
            .validator(Validator::at_least(-1.0)))
        .define(k("reconnect.backoff.ms", Long, v("50"), Low,
            "Initial wait before reconnecting to a broker.")
            .validator(Validator::at_least(0.0)))
        .define(k("reconnect.backoff.max.ms", Long, v("1000"), Low,
            "Maximum wait before reconnecting to a broker.")
            .validator(Validator::at_least(0.0)))
        .define(k("socket.connection.setup.timeout.ms", Long, v("10000"), Low,
            "How long to wait for a broker connection to be established.")
            .validator(Validator::at_least(0.0)))
        .define(k("socket.connection.setup.timeout.max.ms", Long, v("30000"), Low,
            "Maximum connection setup timeout after backoff.")
            .validator(Validator::at_least(0.0)))
        .define(k("retry.backoff.ms", Long, v("100"), Low,
            "Initial wait before retrying a failed request.")
            .validator(Validator::at_least(0.0)))
        .define(k("retry.backoff.max.ms", Long, v("1000"), Low,
            "Maximum wait before retrying a failed request.")
            .validator(Validator::at_least(0.0)))
        .define(k("request.timeout.ms", Int, v("40000"), Medium,
            "How long a client waits for a broker response.")
            .validator(Validator::at_least(0.0)))
        .define(k("connections.max.idle.ms", Long, v("540000"), Medium,
            "Idle connections are closed after this long."))
        .define(k("security.protocol", String, v("PLAINTEXT"), Medium,
            "Protocol used to reach the brokers: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")
            .validator(Validator::one_of_ignore_case(&["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])));
    sasl_client_keys(def)
        .define(k("worker.sync.timeout.ms", Int, v("3000"), Medium,
            "How long a worker that is behind on the config topic waits to catch up before it leaves the group."))
        .define(k("worker.unsync.backoff.ms", Int, v("300000"), Medium,
            "How long a worker that could not catch up stays out of the group before rejoining."))
        .define(k("offset.storage.topic", String, Default::Required, High,
            "Topic holding source connector offsets."))
        .define(k("offset.storage.partitions", Int, v("25"), Low,
            "Partitions of the offsets topic when the worker creates it; -1 uses the broker default.")
            .validator(Validator::Custom(check_partitions)))
        .define(k("offset.storage.replication.factor", Short, v("3"), Low,
            "Replication factor of the offsets topic when the worker creates it; -1 uses the broker default.")
            .validator(Validator::Custom(check_replication_factor)))
        .define(k("config.storage.topic", String, Default::Required, High,
            "Topic holding connector and task configurations; it always has a single partition."))
        .define(k("config.storage.replication.factor", Short, v("3"), Low,
            "Replication factor of the config topic when the worker creates it; -1 uses the broker default.")
            .validator(Validator::Custom(check_replication_factor)))
        .define(k("status.storage.topic", String, Default::Required, High,
            "Topic holding connector and task statuses."))
        .define(k("status.storage.partitions", Int, v("5"), Low,
            "Partitions of the status topic when the worker creates it; -1 uses the broker default.")
            .validator(Validator::Custom(check_partitions)))
        .define(k("status.storage.replication.factor", Short, v("3"), Low,
            "Replication factor of the status topic when the worker creates it; -1 uses the broker default.")
            .validator(Validator::Custom(check_replication_factor)))
        .define(k("connect.protocol", String, v("sessioned"), Low,
            "Group protocol: eager, compatible (incremental cooperative) or sessioned (cooperative with signed internal requests).")
            .validator(Validator::Custom(check_connect_protocol)))
        .define(k("scheduled.rebalance.max.delay.ms", Int, v("300000"), Low,
            "How long the leader waits for departed workers to come back before reassigning their connectors and tasks.")
            .validator(Validator::between(0.0, f64::from(i32::MAX))))
        .define(k("inter.worker.key.ttl.ms", Int, v("3600000"), Low,
            "Lifetime of the session key that signs internal requests.")
            .validator(Validator::between(0.0, f64::from(i32::MAX))))
        .define(k("inter.worker.key.generation.algorithm", String, v("HmacSHA256"), Low,
            "Algorithm used to generate session keys.")
            .validator(Validator::Custom(check_mac)))
        .define(k("inter.worker.key.size", Int, Default::Null, Low,
            "Session key size in bits; unset uses the algorithm's default.")
            .validator(Validator::at_least(40.0)))
        .define(k("inter.worker.signature.algorithm", String, v("HmacSHA256"), Low,
            "Algorithm used to sign internal requests.")
            .validator(Validator::Custom(check_mac)))
        .define(k("inter.worker.verification.algorithms", List, v("HmacSHA256"), Low,
            "Algorithms accepted when verifying internal requests; must include inter.worker.signature.algorithm.")
            .validator(Validator::Custom(check_verification_macs)))
        .define(k("metadata.recovery.strategy", String, v("none"), Low,
            "What clients do when all known brokers are unavailable: none or rebootstrap.")
            .validator(Validator::one_of_ignore_case(&["none", "rebootstrap"])))
}

/// Standalone-only keys (Java's `StandaloneConfig`).
fn standalone_def() -> ConfigDef {
    base_def().define(k(
        "offset.storage.file.filename",
        ConfigType::String,
        Default::Required,
        Importance::High,
        "File holding source connector offsets, in the Java worker's format.",
    ))
}

fn invalid(msg: impl Into<String>) -> WorkerConfigError {
    WorkerConfigError::Invalid(msg.into())
}

impl WorkerConfig {
    /// Every key the worker understands in `mode`, in declaration order.
    pub fn config_def(mode: Mode) -> ConfigDef {
        match mode {
            Mode::Standalone => standalone_def(),
            Mode::Distributed => distributed_def(),
        }
    }

    /// Resolves provider references in `props`, then parses and validates them.
    pub fn from_props(mode: Mode, props: Props) -> Result<WorkerConfig, WorkerConfigError> {
        let providers = ConfigProviders::from_worker_props(&props)?;
        Self::with_providers(mode, props, providers)
    }

    /// As [`Self::from_props`] with providers already set up (tests inject an environment).
    pub fn with_providers(
        mode: Mode,
        raw: Props,
        providers: ConfigProviders,
    ) -> Result<WorkerConfig, WorkerConfigError> {
        let resolved = providers.resolve(&raw)?;
        if raw.get("plugin.path") != resolved.get("plugin.path") {
            tracing::warn!("config provider references are not supported in plugin.path; the raw value is used");
        }
        for removed in ["internal.key.converter", "internal.value.converter"] {
            if resolved
                .keys()
                .any(|k| k == removed || k.starts_with(&format!("{removed}.")))
            {
                tracing::warn!(
                    "{removed} was removed in Kafka 3.0 and has no effect; internal topics always use JSON without schemas"
                );
            }
        }
        let parsed =
            Self::config_def(mode)
                .parse(&resolved)
                .map_err(|e| match e.0.into_iter().next() {
                    Some((_, msg)) => invalid(msg),
                    None => invalid("unknown error"),
                })?;
        // Java parses listeners when the REST server starts; we fail early instead.
        let listeners = parsed
            .list("listeners")
            .iter()
            .map(|l| Listener::parse(l))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("Invalid value for configuration listeners: {e}")))?;
        let admin_listeners = match parsed.get("admin.listeners") {
            None => None,
            Some(_) => Some(
                parsed
                    .list("admin.listeners")
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| Listener::parse(l))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        invalid(format!(
                            "Invalid value for configuration admin.listeners: {e}"
                        ))
                    })?,
            ),
        };
        if let Some(l) = parsed.string("rest.advertised.listener") {
            if l.eq_ignore_ascii_case("https") {
                return Err(invalid(
                    "Invalid value https for configuration rest.advertised.listener: HTTPS is not supported yet by connectd",
                ));
            } else if !l.eq_ignore_ascii_case("http") && !l.is_empty() {
                return Err(invalid(format!(
                    "Invalid value {l} for configuration rest.advertised.listener: must be http or https"
                )));
            }
        }
        if mode == Mode::Distributed {
            let sig = parsed
                .string("inter.worker.signature.algorithm")
                .unwrap_or_default();
            if !parsed
                .list("inter.worker.verification.algorithms")
                .iter()
                .any(|a| a == sig)
            {
                return Err(invalid(format!(
                    "Invalid value {sig} for configuration inter.worker.signature.algorithm: Signature algorithm must be present in inter.worker.verification.algorithms list"
                )));
            }
        }
        let needs_local_host = parsed
            .string("rest.advertised.host.name")
            .is_none_or(str::is_empty)
            && listeners.first().is_some_and(|l| l.host.is_empty());
        let local_host = if needs_local_host {
            local_host_address()
        } else {
            String::new()
        };
        Ok(WorkerConfig {
            mode,
            parsed,
            raw,
            providers,
            listeners,
            admin_listeners,
            local_host,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The properties after provider resolution (Java's `originals()`).
    pub fn props(&self) -> &Props {
        self.parsed.originals()
    }

    /// The properties as written, references unresolved.
    pub fn raw_props(&self) -> &Props {
        &self.raw
    }

    pub fn parsed(&self) -> &ParsedConfig {
        &self.parsed
    }

    /// The worker's config providers, for resolving connector configs at start.
    pub fn providers(&self) -> &ConfigProviders {
        &self.providers
    }

    fn string(&self, key: &str) -> &str {
        self.parsed.string(key).unwrap_or("")
    }

    fn millis(&self, key: &str) -> Duration {
        Duration::from_millis(self.parsed.long(key).unwrap_or(0).max(0) as u64)
    }

    /// `bootstrap.servers`, comma-joined.
    pub fn bootstrap_servers(&self) -> String {
        self.parsed.list("bootstrap.servers").join(",")
    }

    /// `group.id` (distributed mode only).
    pub fn group_id(&self) -> Option<&str> {
        self.parsed.string("group.id")
    }

    /// `client.id` (distributed; empty when unset).
    pub fn client_id(&self) -> &str {
        self.string("client.id")
    }

    fn topic(&self, prefix: &str, partitions: Option<&str>) -> Option<TopicSettings> {
        let topic = self.parsed.string(&format!("{prefix}topic"))?.to_string();
        let mut configs = originals_with_prefix(self.props(), prefix);
        if prefix == "config.storage." && configs.contains_key("partitions") {
            tracing::warn!(
                "ignoring config.storage.partitions: the config topic always has 1 partition"
            );
        }
        if configs.remove("cleanup.policy").is_some() {
            tracing::warn!("ignoring {prefix}cleanup.policy: internal topics are always compacted");
        }
        for k in ["topic", "partitions", "replication.factor"] {
            configs.remove(k);
        }
        Some(TopicSettings {
            topic,
            partitions: partitions.and_then(|p| self.parsed.int(p)).unwrap_or(1),
            replication_factor: match self.parsed.get(&format!("{prefix}replication.factor")) {
                Some(ConfigValue::Short(n)) => *n,
                _ => 3,
            },
            configs,
        })
    }

    /// The config topic (distributed). Partitions are always 1.
    pub fn config_topic(&self) -> Option<TopicSettings> {
        self.topic("config.storage.", None)
    }

    pub fn offsets_topic(&self) -> Option<TopicSettings> {
        self.topic("offset.storage.", Some("offset.storage.partitions"))
    }

    pub fn status_topic(&self) -> Option<TopicSettings> {
        self.topic("status.storage.", Some("status.storage.partitions"))
    }

    /// `offset.storage.file.filename` (standalone).
    pub fn offset_storage_file(&self) -> Option<PathBuf> {
        self.parsed
            .string("offset.storage.file.filename")
            .map(PathBuf::from)
    }

    fn converter(&self, key: &str) -> ConverterConfig {
        ConverterConfig {
            class: self.string(key).to_string(),
            props: originals_with_prefix(self.props(), &format!("{key}.")),
        }
    }

    pub fn key_converter(&self) -> ConverterConfig {
        self.converter("key.converter")
    }

    pub fn value_converter(&self) -> ConverterConfig {
        self.converter("value.converter")
    }

    pub fn header_converter(&self) -> ConverterConfig {
        self.converter("header.converter")
    }

    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// `None`: admin endpoints on the regular listeners; empty: disabled.
    pub fn admin_listeners(&self) -> Option<&[Listener]> {
        self.admin_listeners.as_deref()
    }

    /// Host given to other workers: `rest.advertised.host.name`, else the
    /// first listener's host, else this machine's address (as Jetty reports it).
    pub fn advertised_host(&self) -> String {
        if let Some(h) = self
            .parsed
            .string("rest.advertised.host.name")
            .filter(|h| !h.is_empty())
        {
            return h.to_string();
        }
        match self.listeners.first() {
            Some(l) if !l.host.is_empty() => l.host.clone(),
            _ => self.local_host.clone(),
        }
    }

    /// Port given to other workers: `rest.advertised.port`, else the first
    /// listener's port, else `bound_port` (the port actually bound, for port 0).
    pub fn advertised_port(&self, bound_port: u16) -> u16 {
        if let Some(p) = self.parsed.int("rest.advertised.port") {
            return p as u16;
        }
        match self.listeners.first() {
            Some(l) if l.port > 0 => l.port,
            _ => bound_port,
        }
    }

    /// The worker id written in status records: `host:port`.
    pub fn worker_id(&self, bound_port: u16) -> String {
        format!(
            "{}:{}",
            self.advertised_host(),
            self.advertised_port(bound_port)
        )
    }

    /// The URL other workers use to reach this one, with a trailing slash.
    pub fn rest_url(&self, bound_port: u16) -> String {
        let host = self.advertised_host();
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        format!("http://{host}:{}/", self.advertised_port(bound_port))
    }

    pub fn access_control_allow_origin(&self) -> &str {
        self.string("access.control.allow.origin")
    }

    pub fn access_control_allow_methods(&self) -> &str {
        self.string("access.control.allow.methods")
    }

    /// `response.http.headers.config` rules, already validated.
    pub fn response_http_headers(&self) -> Vec<String> {
        csv_split(self.string("response.http.headers.config"))
    }

    pub fn offset_flush_interval(&self) -> Duration {
        self.millis("offset.flush.interval.ms")
    }

    pub fn offset_flush_timeout(&self) -> Duration {
        self.millis("offset.flush.timeout.ms")
    }

    pub fn task_shutdown_graceful_timeout(&self) -> Duration {
        self.millis("task.shutdown.graceful.timeout.ms")
    }

    /// Distributed-only durations; defaults apply in standalone mode.
    pub fn session_timeout(&self) -> Duration {
        self.millis_or("session.timeout.ms", 10_000)
    }

    pub fn heartbeat_interval(&self) -> Duration {
        self.millis_or("heartbeat.interval.ms", 3_000)
    }

    pub fn rebalance_timeout(&self) -> Duration {
        self.millis_or("rebalance.timeout.ms", 60_000)
    }

    pub fn scheduled_rebalance_max_delay(&self) -> Duration {
        self.millis_or("scheduled.rebalance.max.delay.ms", 300_000)
    }

    pub fn worker_sync_timeout(&self) -> Duration {
        self.millis_or("worker.sync.timeout.ms", 3_000)
    }

    pub fn worker_unsync_backoff(&self) -> Duration {
        self.millis_or("worker.unsync.backoff.ms", 300_000)
    }

    pub fn inter_worker_key_ttl(&self) -> Duration {
        self.millis_or("inter.worker.key.ttl.ms", 3_600_000)
    }

    pub fn inter_worker_signature_algorithm(&self) -> &str {
        self.parsed
            .string("inter.worker.signature.algorithm")
            .unwrap_or("HmacSHA256")
    }

    pub fn inter_worker_key_generation_algorithm(&self) -> &str {
        self.parsed
            .string("inter.worker.key.generation.algorithm")
            .unwrap_or("HmacSHA256")
    }

    pub fn inter_worker_verification_algorithms(&self) -> Vec<String> {
        match self.parsed.get("inter.worker.verification.algorithms") {
            Some(_) => self.parsed.list("inter.worker.verification.algorithms"),
            None => vec!["HmacSHA256".to_string()],
        }
    }

    /// `inter.worker.key.size` in bits, if set.
    pub fn inter_worker_key_size(&self) -> Option<i32> {
        self.parsed.int("inter.worker.key.size")
    }

    fn millis_or(&self, key: &str, default: u64) -> Duration {
        match self.parsed.long(key) {
            Some(n) => Duration::from_millis(n.max(0) as u64),
            None => Duration::from_millis(default),
        }
    }

    pub fn connect_protocol(&self) -> ConnectProtocol {
        match self
            .string("connect.protocol")
            .to_ascii_lowercase()
            .as_str()
        {
            "eager" => ConnectProtocol::Eager,
            "compatible" => ConnectProtocol::Compatible,
            _ => ConnectProtocol::Sessioned,
        }
    }

    /// Always `Disabled` in standalone mode.
    pub fn exactly_once_source_support(&self) -> ExactlyOnceSourceSupport {
        match self
            .string("exactly.once.source.support")
            .to_ascii_lowercase()
            .as_str()
        {
            "enabled" => ExactlyOnceSourceSupport::Enabled,
            "preparing" => ExactlyOnceSourceSupport::Preparing,
            _ => ExactlyOnceSourceSupport::Disabled,
        }
    }

    pub fn override_policy(&self) -> OverridePolicy {
        OverridePolicy::parse(self.string("connector.client.config.override.policy"))
            .unwrap_or(OverridePolicy::All)
    }

    pub fn topic_creation_enable(&self) -> bool {
        self.parsed.bool("topic.creation.enable").unwrap_or(true)
    }

    pub fn topic_tracking_enable(&self) -> bool {
        self.parsed.bool("topic.tracking.enable").unwrap_or(true)
    }

    pub fn topic_tracking_allow_reset(&self) -> bool {
        self.parsed
            .bool("topic.tracking.allow.reset")
            .unwrap_or(true)
    }

    /// `config.providers` aliases as written.
    pub fn config_providers(&self) -> Vec<String> {
        self.parsed.list("config.providers")
    }

    /// Java-level settings for a connector's client of kind `client`, before
    /// per-connector settings (client.id, group.id, `*.override.*`). See the module docs.
    pub fn client_props(&self, client: Client) -> Props {
        let mut out = Props::new();
        out.insert("bootstrap.servers".into(), self.bootstrap_servers());
        match client {
            Client::Producer => {
                for (k, v) in [
                    ("enable.idempotence", "false"),
                    ("acks", "all"),
                    ("max.in.flight.requests.per.connection", "1"),
                    ("delivery.timeout.ms", "2147483647"),
                ] {
                    out.insert(k.into(), v.into());
                }
                out.extend(originals_with_prefix(self.props(), "producer."));
            }
            Client::Consumer => {
                out.insert("enable.auto.commit".into(), "false".into());
                out.insert("auto.offset.reset".into(), "earliest".into());
                out.extend(originals_with_prefix(self.props(), "consumer."));
            }
            Client::Admin => {
                out.extend(
                    self.props()
                        .iter()
                        .filter(|(k, _)| {
                            !k.starts_with("admin.")
                                && !k.starts_with("producer.")
                                && !k.starts_with("consumer.")
                                && !k.starts_with("config.providers")
                        })
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
                out.extend(originals_with_prefix(self.props(), "admin."));
            }
        }
        out
    }

    /// librdkafka settings for a connector client (see [`librdkafka_config`]).
    pub fn to_librdkafka(&self, client: Client) -> BTreeMap<String, String> {
        librdkafka_config(client, &self.client_props(client))
    }

    /// librdkafka settings for the worker's own clients (internal topics).
    /// Java gives them every unprefixed worker setting; producers get
    /// idempotence off and an unbounded delivery timeout. Unlike Java, the
    /// consumer does not get the worker's `group.id` (it only assigns
    /// partitions and must never commit offsets into the Connect group).
    pub fn internal_librdkafka(&self, client: Client) -> BTreeMap<String, String> {
        let mut java: Props = self
            .props()
            .iter()
            .filter(|(k, _)| !k.starts_with("config.providers"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        java.insert("bootstrap.servers".into(), self.bootstrap_servers());
        match client {
            Client::Producer => {
                java.insert("enable.idempotence".into(), "false".into());
                java.insert("delivery.timeout.ms".into(), "2147483647".into());
            }
            Client::Consumer => {
                java.remove("group.id");
                java.insert("enable.auto.commit".into(), "false".into());
            }
            Client::Admin => {}
        }
        librdkafka_config(client, &java)
    }
}

/// This machine's address as Java's `InetAddress.getLocalHost().getHostAddress()` gives it.
fn local_host_address() -> String {
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string());
    match (name.as_str(), 0).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .map(|a| a.ip().to_string())
                .unwrap_or(name)
        }
        Err(_) => name,
    }
}

/// Which librdkafka key a Java client key becomes, for keys that map one to one.
fn simple_mapping(client: Client, key: &str) -> Option<&'static str> {
    let common = match key {
        "bootstrap.servers" => Some("bootstrap.servers"),
        "client.id" => Some("client.id"),
        "client.rack" => Some("client.rack"),
        "client.dns.lookup" => Some("client.dns.lookup"),
        "metadata.max.age.ms" => Some("metadata.max.age.ms"),
        "connections.max.idle.ms" => Some("connections.max.idle.ms"),
        "reconnect.backoff.ms" => Some("reconnect.backoff.ms"),
        "reconnect.backoff.max.ms" => Some("reconnect.backoff.max.ms"),
        "retry.backoff.ms" => Some("retry.backoff.ms"),
        "retry.backoff.max.ms" => Some("retry.backoff.max.ms"),
        "socket.connection.setup.timeout.ms" => Some("socket.connection.setup.timeout.ms"),
        "sasl.mechanism" => Some("sasl.mechanisms"),
        "sasl.kerberos.service.name" => Some("sasl.kerberos.service.name"),
        "sasl.kerberos.kinit.cmd" => Some("sasl.kerberos.kinit.cmd"),
        "sasl.kerberos.min.time.before.relogin" => Some("sasl.kerberos.min.time.before.relogin"),
        "sasl.oauthbearer.token.endpoint.url" => Some("sasl.oauthbearer.token.endpoint.url"),
        "ssl.truststore.certificates" => Some("ssl.ca.pem"),
        "ssl.keystore.certificate.chain" => Some("ssl.certificate.pem"),
        "ssl.keystore.key" => Some("ssl.key.pem"),
        "ssl.key.password" => Some("ssl.key.password"),
        _ => None,
    };
    if common.is_some() {
        return common;
    }
    match client {
        Client::Producer => match key {
            "acks" => Some("acks"),
            "enable.idempotence" => Some("enable.idempotence"),
            "max.in.flight.requests.per.connection" => {
                Some("max.in.flight.requests.per.connection")
            }
            "batch.size" => Some("batch.size"),
            "compression.type" => Some("compression.type"),
            "retries" => Some("retries"),
            "request.timeout.ms" => Some("request.timeout.ms"),
            "transactional.id" => Some("transactional.id"),
            "transaction.timeout.ms" => Some("transaction.timeout.ms"),
            "max.request.size" => Some("message.max.bytes"),
            _ => None,
        },
        Client::Consumer => match key {
            "group.id" => Some("group.id"),
            "group.instance.id" => Some("group.instance.id"),
            "group.protocol" => Some("group.protocol"),
            "enable.auto.commit" => Some("enable.auto.commit"),
            "auto.commit.interval.ms" => Some("auto.commit.interval.ms"),
            "session.timeout.ms" => Some("session.timeout.ms"),
            "heartbeat.interval.ms" => Some("heartbeat.interval.ms"),
            "max.poll.interval.ms" => Some("max.poll.interval.ms"),
            "fetch.min.bytes" => Some("fetch.min.bytes"),
            "fetch.max.bytes" => Some("fetch.max.bytes"),
            "fetch.max.wait.ms" => Some("fetch.wait.max.ms"),
            "max.partition.fetch.bytes" => Some("max.partition.fetch.bytes"),
            "isolation.level" => Some("isolation.level"),
            "check.crcs" => Some("check.crcs"),
            "allow.auto.create.topics" => Some("allow.auto.create.topics"),
            _ => None,
        },
        Client::Admin => None,
    }
}

fn clamp_num(v: &str, min: i64, max: i64) -> Option<String> {
    v.trim()
        .parse::<i64>()
        .ok()
        .map(|n| n.clamp(min, max).to_string())
}

/// Maps Java client settings to librdkafka settings; see the module docs.
/// Producers also get `partitioner=murmur2_random`, Java's partitioning of
/// keyed records (the contract requires it for internal topics, and it
/// keeps connector records in the partitions the Java worker would pick).
/// A producer with `transactional.id` gets idempotence on and a message
/// timeout no longer than its transaction timeout, as librdkafka requires.
pub fn librdkafka_config(client: Client, java: &Props) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if client == Client::Producer {
        out.insert("partitioner".to_string(), "murmur2_random".to_string());
    }
    let get = |k: &str| java.get(k).map(|v| v.trim().to_string());
    for (key, value) in java {
        let value = value.trim();
        if let Some(target) = simple_mapping(client, key) {
            let value = if key == "bootstrap.servers" {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                value.to_string()
            };
            out.insert(target.to_string(), value);
            continue;
        }
        let mapped: Option<(&str, String)> =
            match (client, key.as_str()) {
                (_, "security.protocol") => Some(("security.protocol", value.to_ascii_lowercase())),
                (_, "send.buffer.bytes") => clamp_num(value, 0, i64::from(i32::MAX))
                    .map(|v| ("socket.send.buffer.bytes", v)),
                (_, "receive.buffer.bytes") => clamp_num(value, 0, i64::from(i32::MAX))
                    .map(|v| ("socket.receive.buffer.bytes", v)),
                (_, "ssl.endpoint.identification.algorithm") => Some((
                    "ssl.endpoint.identification.algorithm",
                    if value.is_empty() {
                        "none".into()
                    } else {
                        value.to_ascii_lowercase()
                    },
                )),
                (Client::Producer, "delivery.timeout.ms") => {
                    clamp_num(value, 0, i64::from(i32::MAX)).map(|v| ("message.timeout.ms", v))
                }
                (Client::Producer, "linger.ms") => {
                    clamp_num(value, 0, 900_000).map(|v| ("linger.ms", v))
                }
                (Client::Producer, "buffer.memory") => value.parse::<i64>().ok().map(|b| {
                    (
                        "queue.buffering.max.kbytes",
                        (b / 1024).clamp(1, i64::from(i32::MAX)).to_string(),
                    )
                }),
                (
                    Client::Producer,
                    "compression.gzip.level" | "compression.lz4.level" | "compression.zstd.level",
                ) => {
                    let codec = key
                        .trim_start_matches("compression.")
                        .trim_end_matches(".level");
                    (get("compression.type").as_deref() == Some(codec))
                        .then(|| ("compression.level", value.to_string()))
                }
                (Client::Consumer, "auto.offset.reset") => Some((
                    "auto.offset.reset",
                    if value == "none" {
                        "error".into()
                    } else {
                        value.to_string()
                    },
                )),
                (Client::Consumer, "partition.assignment.strategy") => {
                    let names: Vec<&str> = value
                        .split(',')
                        .map(str::trim)
                        .filter_map(|c| match c.rsplit('.').next().unwrap_or(c) {
                            "RangeAssignor" => Some("range"),
                            "RoundRobinAssignor" => Some("roundrobin"),
                            "CooperativeStickyAssignor" => Some("cooperative-sticky"),
                            _ => None,
                        })
                        .collect();
                    (!names.is_empty()).then(|| ("partition.assignment.strategy", names.join(",")))
                }
                _ => None,
            };
        match mapped {
            Some((k, v)) => {
                out.insert(k.to_string(), v);
            }
            None if matches!(
                key.as_str(),
                "sasl.jaas.config"
                    | "ssl.keystore.location"
                    | "ssl.keystore.password"
                    | "ssl.keystore.type"
                    | "ssl.truststore.location"
                    | "ssl.truststore.password"
                    | "ssl.truststore.type"
            ) => {} // handled below, together with related keys
            None => {
                tracing::debug!(key = %key, "Java client setting has no librdkafka equivalent; dropped")
            }
        }
    }
    // Key material: librdkafka reads PEM files and PKCS#12 key stores, not JKS.
    let ks_type = get("ssl.keystore.type")
        .unwrap_or_else(|| "JKS".into())
        .to_ascii_uppercase();
    if let Some(loc) = get("ssl.keystore.location") {
        match ks_type.as_str() {
            "PKCS12" => {
                out.insert("ssl.keystore.location".into(), loc);
                if let Some(p) = get("ssl.keystore.password") {
                    out.insert("ssl.keystore.password".into(), p);
                }
            }
            "PEM" => {
                // A PEM key store holds the key and its chain; OpenSSL picks each out of the same file.
                out.insert("ssl.certificate.location".into(), loc.clone());
                out.insert("ssl.key.location".into(), loc);
            }
            _ => tracing::warn!(
                "ssl.keystore.location of type {ks_type} cannot be used with librdkafka; use PKCS12 or PEM"
            ),
        }
    }
    let ts_type = get("ssl.truststore.type")
        .unwrap_or_else(|| "JKS".into())
        .to_ascii_uppercase();
    if let Some(loc) = get("ssl.truststore.location") {
        if ts_type == "PEM" {
            out.insert("ssl.ca.location".into(), loc);
        } else {
            tracing::warn!(
                "ssl.truststore.location of type {ts_type} cannot be used with librdkafka; use ssl.truststore.type=PEM"
            );
        }
    }
    if client == Client::Producer && out.contains_key("transactional.id") {
        // librdkafka refuses a transactional producer whose idempotence is off
        // or whose message timeout exceeds the transaction timeout; Java's
        // exactly-once task producers force idempotence on in the same way.
        out.insert("enable.idempotence".into(), "true".into());
        let txn_timeout = out
            .get("transaction.timeout.ms")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(60_000);
        let msg_timeout = out
            .get("message.timeout.ms")
            .and_then(|v| v.parse::<i64>().ok());
        if msg_timeout.is_none_or(|m| m > txn_timeout) {
            out.insert("message.timeout.ms".into(), txn_timeout.to_string());
        }
    }
    if let Some(jaas) = java.get("sasl.jaas.config") {
        match jaas_to_librdkafka(jaas) {
            Ok(settings) => {
                let oauth = settings.contains_key("sasl.oauthbearer.client.id");
                out.extend(settings);
                if oauth && out.contains_key("sasl.oauthbearer.token.endpoint.url") {
                    out.insert("sasl.oauthbearer.method".into(), "oidc".into());
                }
            }
            Err(why) => tracing::warn!("sasl.jaas.config cannot be used: {why}"),
        }
    }
    out
}

/// Reads the login module and options of a JAAS config line:
/// `<module> <flag> key="value" key2=value2;`.
fn parse_jaas(s: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let mut chars = s.trim().chars().peekable();
    let word = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == ';' || c == '=' {
                break;
            }
            w.push(c);
            chars.next();
        }
        w
    };
    let module = word(&mut chars);
    let flag = word(&mut chars);
    if module.is_empty()
        || !["required", "requisite", "sufficient", "optional"]
            .contains(&flag.to_ascii_lowercase().as_str())
    {
        return Err("expected '<LoginModule> <flag> key=value ...;'".into());
    }
    let mut options = BTreeMap::new();
    loop {
        let key = word(&mut chars);
        if key.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("option {key} has no value"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    _ => value.push(c),
                }
            }
            if !closed {
                return Err(format!("option {key} has an unterminated quoted value"));
            }
        } else {
            value = word(&mut chars);
        }
        options.insert(key, value);
    }
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
    if chars.next() != Some(';') {
        return Err("the login module entry must end with ';'".into());
    }
    Ok((module, options))
}

/// librdkafka settings equivalent to a JAAS login module entry.
fn jaas_to_librdkafka(jaas: &str) -> Result<BTreeMap<String, String>, String> {
    let (module, opts) = parse_jaas(jaas)?;
    let simple = module.rsplit('.').next().unwrap_or(&module).to_string();
    let mut out = BTreeMap::new();
    let mut copy = |from: &str, to: &str| {
        if let Some(v) = opts.get(from) {
            out.insert(to.to_string(), v.clone());
        }
    };
    match simple.as_str() {
        "PlainLoginModule" | "ScramLoginModule" => {
            copy("username", "sasl.username");
            copy("password", "sasl.password");
        }
        "Krb5LoginModule" => {
            copy("principal", "sasl.kerberos.principal");
            copy("keyTab", "sasl.kerberos.keytab");
        }
        "OAuthBearerLoginModule" => {
            copy("clientId", "sasl.oauthbearer.client.id");
            copy("clientSecret", "sasl.oauthbearer.client.secret");
            copy("scope", "sasl.oauthbearer.scope");
        }
        // CVE-2023-25194 / CVE-2025-27818: never honour JNDI or LDAP login modules.
        "JndiLoginModule" | "LdapLoginModule" => {
            return Err(format!("login module {module} is not allowed"));
        }
        _ => return Err(format!("login module {module} is not supported")),
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::providers::{ENV_PROVIDER_CLASS, FILE_PROVIDER_CLASS};
    use crate::config::test_util::{props, TempDir};

    fn distributed(extra: &[(&str, &str)]) -> Props {
        let mut p = props(&[
            ("bootstrap.servers", "broker1:9092, broker2:9092"),
            ("group.id", "connect-cluster"),
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("key.converter.schemas.enable", "true"),
            ("config.storage.topic", "connect-configs"),
            ("offset.storage.topic", "connect-offsets"),
            ("status.storage.topic", "connect-status"),
            ("listeners", "http://127.0.0.1:8083"),
        ]);
        p.extend(props(extra));
        p
    }

    fn standalone(extra: &[(&str, &str)]) -> Props {
        let mut p = props(&[
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("offset.storage.file.filename", "/tmp/connect.offsets"),
            ("listeners", "http://localhost:0"),
        ]);
        p.extend(props(extra));
        p
    }

    fn load(mode: Mode, p: Props) -> Result<WorkerConfig, WorkerConfigError> {
        WorkerConfig::with_providers(mode, p, ConfigProviders::none())
    }

    fn err(mode: Mode, p: Props) -> String {
        let e = load(mode, p).expect_err("should be rejected").to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }

    #[test]
    fn distributed_defaults_and_accessors() {
        let c = load(Mode::Distributed, distributed(&[])).unwrap();
        assert_eq!(c.bootstrap_servers(), "broker1:9092,broker2:9092");
        assert_eq!(c.group_id(), Some("connect-cluster"));
        assert_eq!(c.client_id(), "");
        let cfg = c.config_topic().unwrap();
        assert_eq!(
            (cfg.topic.as_str(), cfg.partitions, cfg.replication_factor),
            ("connect-configs", 1, 3)
        );
        let off = c.offsets_topic().unwrap();
        assert_eq!((off.partitions, off.replication_factor), (25, 3));
        let st = c.status_topic().unwrap();
        assert_eq!((st.partitions, st.replication_factor), (5, 3));
        assert_eq!(c.offset_flush_interval(), Duration::from_secs(60));
        assert_eq!(c.offset_flush_timeout(), Duration::from_secs(5));
        assert_eq!(c.task_shutdown_graceful_timeout(), Duration::from_secs(5));
        assert_eq!(c.session_timeout(), Duration::from_secs(10));
        assert_eq!(c.heartbeat_interval(), Duration::from_secs(3));
        assert_eq!(c.rebalance_timeout(), Duration::from_secs(60));
        assert_eq!(c.scheduled_rebalance_max_delay(), Duration::from_secs(300));
        assert_eq!(c.connect_protocol(), ConnectProtocol::Sessioned);
        assert_eq!(
            c.exactly_once_source_support(),
            ExactlyOnceSourceSupport::Disabled
        );
        assert_eq!(c.override_policy(), OverridePolicy::All);
        assert!(
            c.topic_creation_enable()
                && c.topic_tracking_enable()
                && c.topic_tracking_allow_reset()
        );
        assert_eq!(
            c.key_converter().class,
            "org.apache.kafka.connect.json.JsonConverter"
        );
        assert_eq!(
            c.key_converter().props,
            props(&[("schemas.enable", "true")])
        );
        assert_eq!(
            c.header_converter().class,
            "org.apache.kafka.connect.storage.SimpleHeaderConverter"
        );
        assert_eq!(c.worker_id(0), "127.0.0.1:8083");
        assert_eq!(c.rest_url(0), "http://127.0.0.1:8083/");
        assert_eq!(c.admin_listeners(), None);
        assert_eq!(c.access_control_allow_origin(), "");
        assert_eq!(c.inter_worker_signature_algorithm(), "HmacSHA256");
        assert_eq!(c.offset_storage_file(), None);
    }

    #[test]
    fn standalone_accessors_and_advertised_address() {
        let c = load(
            Mode::Standalone,
            standalone(&[
                ("rest.advertised.host.name", "worker-1"),
                ("rest.advertised.port", "9999"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.offset_storage_file(),
            Some(PathBuf::from("/tmp/connect.offsets"))
        );
        assert_eq!(c.group_id(), None);
        assert!(c.config_topic().is_none());
        assert_eq!(c.worker_id(41234), "worker-1:9999");
        let c = load(Mode::Standalone, standalone(&[])).unwrap();
        // Port 0: the bound port is advertised.
        assert_eq!(c.worker_id(41234), "localhost:41234");
        assert_eq!(c.rest_url(41234), "http://localhost:41234/");
        let c = load(
            Mode::Standalone,
            standalone(&[("listeners", "HTTP://:8083")]),
        )
        .unwrap();
        assert!(!c.advertised_host().is_empty());
        assert_eq!(c.listeners()[0].host, "");
        // Distributed-only keys are not declared in standalone mode.
        assert!(WorkerConfig::config_def(Mode::Standalone)
            .get("group.id")
            .is_none());
        assert!(WorkerConfig::config_def(Mode::Distributed)
            .get("offset.storage.file.filename")
            .is_none());
    }

    #[test]
    fn missing_required_keys() {
        let mut p = distributed(&[]);
        p.remove("group.id");
        assert_eq!(
            err(Mode::Distributed, p),
            "invalid worker config: Missing required configuration \"group.id\" which has no default value."
        );
        let mut p = distributed(&[]);
        p.remove("config.storage.topic");
        assert!(err(Mode::Distributed, p).contains("\"config.storage.topic\""));
        let mut p = standalone(&[]);
        p.remove("offset.storage.file.filename");
        assert!(err(Mode::Standalone, p).contains("\"offset.storage.file.filename\""));
        // Declaration order decides which error is reported first, as in Java.
        assert_eq!(
            err(Mode::Distributed, Props::new()),
            "invalid worker config: Missing required configuration \"key.converter\" which has no default value."
        );
    }

    #[test]
    fn invalid_values() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("connect.protocol", "fast")], "Invalid value fast for configuration connect.protocol: Invalid Connect protocol compatibility"),
            (&[("connector.client.config.override.policy", "Some")], "Invalid value Some for configuration connector.client.config.override.policy: must be All, None or Principal"),
            (&[("exactly.once.source.support", "on")], "Invalid value on for configuration exactly.once.source.support: String must be one of: disabled, preparing, enabled"),
            (&[("inter.worker.key.size", "8")], "Invalid value 8 for configuration inter.worker.key.size: Value must be at least 40"),
            (&[("metrics.recording.level", "TRACE")], "Invalid value TRACE for configuration metrics.recording.level"),
            (&[("offset.storage.partitions", "0")], "Invalid value 0 for configuration offset.storage.partitions: Number of partitions must be positive"),
            (&[("status.storage.replication.factor", "-2")], "Invalid value -2 for configuration status.storage.replication.factor: Replication factor must be positive"),
            (&[("session.timeout.ms", "abc")], "Invalid value abc for configuration session.timeout.ms: Not a number of type INT"),
            (&[("heartbeat.interval.ms", "0")], "Invalid value 0 for configuration heartbeat.interval.ms: Value must be at least 1"),
            (&[("topic.creation.enable", "yes")], "Invalid value yes for configuration topic.creation.enable: Expected value to be either true or false"),
            (&[("listeners", "https://:8443")], "HTTPS listener https://:8443 is not supported yet"),
            (&[("listeners", "ftp://:21")], "Listener protocol must be either \"http\" or \"https\"."),
            (&[("listeners", "localhost:8083")], "Listener doesn't have the right format (protocol://hostname:port)."),
            (&[("listeners", "http://:99999")], "Listener port 99999 is not between 0 and 65535"),
            (&[("listeners", "")], "Invalid value  for configuration listeners: at least one URL is expected"),
            (&[("admin.listeners", "http://x")], "Invalid value for configuration admin.listeners: Listener doesn't have the right format"),
            (&[("rest.advertised.listener", "https")], "rest.advertised.listener: HTTPS is not supported yet"),
            (&[("inter.worker.signature.algorithm", "HmacMD5")], "Invalid value HmacMD5 for configuration inter.worker.signature.algorithm: the algorithm is not supported"),
            (&[("inter.worker.verification.algorithms", "")], "At least one signature verification algorithm must be provided"),
            (&[("response.http.headers.config", "sett X-A:b")], "Invalid header config action: 'sett'"),
            (&[("response.http.headers.config", "set X-A")], "Invalid format of header name and header value pair 'X-A'"),
            (&[("client.dns.lookup", "default")], "Invalid value default for configuration client.dns.lookup"),
            (&[("security.protocol", "TLS")], "Invalid value TLS for configuration security.protocol"),
        ];
        for (extra, expected) in cases {
            let e = err(Mode::Distributed, distributed(extra));
            assert!(e.starts_with("invalid worker config: "), "{e}");
            assert!(e.contains(expected), "{extra:?}: got {e}");
        }
    }

    #[test]
    fn accepted_variants() {
        let c = load(
            Mode::Distributed,
            distributed(&[
                ("connect.protocol", "COMPATIBLE"),
                ("connector.client.config.override.policy", "org.apache.kafka.connect.connector.policy.PrincipalConnectorClientConfigOverridePolicy"),
                ("exactly.once.source.support", "Enabled"),
                ("security.protocol", "sasl_ssl"),
                ("offset.storage.partitions", "-1"),
                ("offset.storage.replication.factor", "-1"),
                ("admin.listeners", ""),
                ("response.http.headers.config", "add X-Frame-Options:DENY, \"set Cache-Control:no-cache, no-store\""),
                ("plugin.discovery", "ONLY_SCAN"),
                ("rest.advertised.listener", "http"),
            ]),
        )
        .unwrap();
        assert_eq!(c.connect_protocol(), ConnectProtocol::Compatible);
        assert_eq!(c.override_policy(), OverridePolicy::Principal);
        assert!(OverridePolicy::Principal.allows("sasl.jaas.config"));
        assert!(!OverridePolicy::Principal.allows("acks"));
        assert!(!OverridePolicy::None.allows("acks"));
        assert_eq!(
            c.exactly_once_source_support(),
            ExactlyOnceSourceSupport::Enabled
        );
        assert_eq!(c.offsets_topic().unwrap().partitions, -1);
        assert_eq!(c.offsets_topic().unwrap().replication_factor, -1);
        assert_eq!(c.admin_listeners(), Some(&[][..]));
        assert_eq!(c.response_http_headers().len(), 2);
        for alias in ["None", "AllConnectorClientConfigOverridePolicy"] {
            assert!(load(
                Mode::Standalone,
                standalone(&[("connector.client.config.override.policy", alias)])
            )
            .is_ok());
        }
    }

    #[test]
    fn topic_settings_pass_extra_configs_and_drop_cleanup_policy() {
        let c = load(
            Mode::Distributed,
            distributed(&[
                ("config.storage.partitions", "7"),
                ("config.storage.cleanup.policy", "delete"),
                ("offset.storage.min.insync.replicas", "2"),
            ]),
        )
        .unwrap();
        let cfg = c.config_topic().unwrap();
        assert_eq!(cfg.partitions, 1);
        assert!(cfg.configs.is_empty());
        assert_eq!(
            c.offsets_topic().unwrap().configs,
            props(&[("min.insync.replicas", "2")])
        );
    }

    #[test]
    fn worker_properties_resolve_provider_references() {
        let dir = TempDir::new("worker");
        let f = dir.write("secrets.properties", "group=from-file\n");
        let mut p = distributed(&[
            ("config.providers", "file,env"),
            ("config.providers.file.class", FILE_PROVIDER_CLASS),
            ("config.providers.env.class", ENV_PROVIDER_CLASS),
            ("producer.sasl.jaas.config", "${env:JAAS}"),
        ]);
        p.insert(
            "group.id".into(),
            format!("${{file:{}:group}}", f.display()),
        );
        let env = props(&[("JAAS", "x")]);
        let providers = ConfigProviders::from_props_with_env(&p, &env).unwrap();
        let c = WorkerConfig::with_providers(Mode::Distributed, p.clone(), providers).unwrap();
        assert_eq!(c.group_id(), Some("from-file"));
        assert_eq!(c.client_props(Client::Producer)["sasl.jaas.config"], "x");
        assert!(c.raw_props()["group.id"].starts_with("${file:"));
        assert_eq!(c.config_providers(), vec!["file", "env"]);
        // Provider set-up errors are worker config errors.
        let mut bad = distributed(&[
            ("config.providers", "v"),
            ("config.providers.v.class", "x.Vault"),
        ]);
        bad.remove("listeners");
        let e = WorkerConfig::from_props(Mode::Distributed, bad)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("invalid worker config: Invalid value x.Vault for configuration config.providers.v.class"), "{e}");
    }

    #[test]
    fn client_props_follow_java_prefix_rules() {
        let c = load(
            Mode::Distributed,
            distributed(&[
                ("producer.linger.ms", "5"),
                ("consumer.max.poll.records", "10"),
                ("admin.request.timeout.ms", "1000"),
                ("security.protocol", "SASL_SSL"),
            ]),
        )
        .unwrap();
        let prod = c.client_props(Client::Producer);
        assert_eq!(prod["linger.ms"], "5");
        assert_eq!(prod["acks"], "all");
        assert!(!prod.contains_key("security.protocol"));
        let cons = c.client_props(Client::Consumer);
        assert_eq!(cons["max.poll.records"], "10");
        assert_eq!(cons["auto.offset.reset"], "earliest");
        let admin = c.client_props(Client::Admin);
        assert_eq!(admin["security.protocol"], "SASL_SSL");
        assert_eq!(admin["request.timeout.ms"], "1000");
        assert!(!admin.contains_key("producer.linger.ms"));
        assert!(!admin.keys().any(|k| k.starts_with("admin.")));
    }

    #[test]
    fn librdkafka_mapping() {
        let java = props(&[
            ("bootstrap.servers", "a:1, b:2"),
            ("acks", "all"),
            ("linger.ms", "10000000"),
            ("batch.size", "32768"),
            ("compression.type", "zstd"),
            ("compression.zstd.level", "5"),
            ("compression.gzip.level", "9"),
            ("delivery.timeout.ms", "9223372036854775807"),
            ("max.block.ms", "9223372036854775807"),
            (
                "key.serializer",
                "org.apache.kafka.common.serialization.ByteArraySerializer",
            ),
            ("interceptor.classes", "x.Y"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="p\"w";"#,
            ),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", "/etc/ca.pem"),
            ("ssl.endpoint.identification.algorithm", ""),
            ("send.buffer.bytes", "-1"),
            ("buffer.memory", "33554432"),
        ]);
        let r = librdkafka_config(Client::Producer, &java);
        let expect = |k: &str| r.get(k).map(String::as_str);
        assert_eq!(expect("bootstrap.servers"), Some("a:1,b:2"));
        assert_eq!(expect("partitioner"), Some("murmur2_random"));
        assert_eq!(expect("acks"), Some("all"));
        assert_eq!(expect("linger.ms"), Some("900000"));
        assert_eq!(expect("batch.size"), Some("32768"));
        assert_eq!(expect("compression.level"), Some("5"));
        assert_eq!(expect("message.timeout.ms"), Some("2147483647"));
        assert_eq!(expect("security.protocol"), Some("sasl_ssl"));
        assert_eq!(expect("sasl.mechanisms"), Some("PLAIN"));
        assert_eq!(expect("sasl.username"), Some("alice"));
        assert_eq!(expect("sasl.password"), Some("p\"w"));
        assert_eq!(expect("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(
            expect("ssl.endpoint.identification.algorithm"),
            Some("none")
        );
        assert_eq!(expect("socket.send.buffer.bytes"), Some("0"));
        assert_eq!(expect("queue.buffering.max.kbytes"), Some("32768"));
        for dropped in [
            "max.block.ms",
            "key.serializer",
            "interceptor.classes",
            "sasl.jaas.config",
            "delivery.timeout.ms",
        ] {
            assert!(!r.contains_key(dropped), "{dropped} should be dropped");
        }

        let java = props(&[
            ("group.id", "connect-x"),
            ("fetch.max.wait.ms", "100"),
            ("auto.offset.reset", "none"),
            ("partition.assignment.strategy", "org.apache.kafka.clients.consumer.CooperativeStickyAssignor,org.apache.kafka.clients.consumer.StickyAssignor"),
            ("max.poll.records", "10"),
            ("acks", "1"),
        ]);
        let r = librdkafka_config(Client::Consumer, &java);
        assert_eq!(r["group.id"], "connect-x");
        assert_eq!(r["fetch.wait.max.ms"], "100");
        assert_eq!(r["auto.offset.reset"], "error");
        assert_eq!(r["partition.assignment.strategy"], "cooperative-sticky");
        assert!(
            !r.contains_key("max.poll.records")
                && !r.contains_key("acks")
                && !r.contains_key("partitioner")
        );
    }

    #[test]
    fn transactional_producer_is_made_valid_for_librdkafka() {
        let java = props(&[
            ("enable.idempotence", "false"),
            ("delivery.timeout.ms", "2147483647"),
            ("transactional.id", "connect-cluster-src-0"),
        ]);
        let r = librdkafka_config(Client::Producer, &java);
        assert_eq!(r["enable.idempotence"], "true");
        assert_eq!(r["message.timeout.ms"], "60000");
        let mut java = java;
        java.insert("transaction.timeout.ms".into(), "900000".into());
        java.insert("delivery.timeout.ms".into(), "120000".into());
        let r = librdkafka_config(Client::Producer, &java);
        assert_eq!(r["message.timeout.ms"], "120000");
    }

    #[test]
    fn quickstart_style_file_end_to_end() {
        let text = "# A distributed worker\n\
                    bootstrap.servers=localhost:9092\n\
                    group.id=connect-cluster\n\
                    key.converter=org.apache.kafka.connect.json.JsonConverter\n\
                    value.converter=org.apache.kafka.connect.json.JsonConverter\n\
                    key.converter.schemas.enable=true\n\
                    value.converter.schemas.enable=true\n\
                    offset.storage.topic=connect-offsets\n\
                    offset.storage.replication.factor=1\n\
                    config.storage.topic=connect-configs\n\
                    config.storage.replication.factor=1\n\
                    status.storage.topic=connect-status\n\
                    status.storage.replication.factor=1\n\
                    offset.flush.interval.ms=10000\n\
                    listeners=HTTP://:8083\n\
                    plugin.path=/usr/share/java,\\\n    /opt/connectors\n";
        let props = crate::config::properties::parse(text).unwrap();
        let c = load(Mode::Distributed, props).unwrap();
        assert_eq!(c.offset_flush_interval(), Duration::from_secs(10));
        assert_eq!(c.config_topic().unwrap().replication_factor, 1);
        assert_eq!(c.value_converter().props["schemas.enable"], "true");
        assert_eq!(c.listeners()[0].port, 8083);
        assert_eq!(
            c.parsed().list("plugin.path"),
            vec!["/usr/share/java", "/opt/connectors"]
        );
    }

    #[test]
    fn jaas_variants() {
        let kerberos = r#"com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab="/etc/k.keytab" principal="connect@EXAMPLE.COM";"#;
        let r = jaas_to_librdkafka(kerberos).unwrap();
        assert_eq!(r["sasl.kerberos.keytab"], "/etc/k.keytab");
        assert_eq!(r["sasl.kerberos.principal"], "connect@EXAMPLE.COM");
        let oauth = props(&[
            ("sasl.oauthbearer.token.endpoint.url", "https://idp/token"),
            ("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=app clientSecret=\"s\" ;"),
        ]);
        let r = librdkafka_config(Client::Admin, &oauth);
        assert_eq!(r["sasl.oauthbearer.method"], "oidc");
        assert_eq!(r["sasl.oauthbearer.client.id"], "app");
        assert_eq!(r["sasl.oauthbearer.client.secret"], "s");
        assert!(jaas_to_librdkafka(
            "com.sun.security.auth.module.JndiLoginModule required user.provider.url=\"ldap://x\";"
        )
        .unwrap_err()
        .contains("not allowed"));
        assert!(jaas_to_librdkafka("x.Plain required username=\"a\"").is_err());
        assert!(jaas_to_librdkafka("PlainLoginModule").is_err());
        assert!(jaas_to_librdkafka("a.PlainLoginModule required username=\"a;").is_err());
    }

    #[test]
    fn ssl_keystores() {
        let r = librdkafka_config(
            Client::Admin,
            &props(&[
                ("ssl.keystore.type", "PKCS12"),
                ("ssl.keystore.location", "/k.p12"),
                ("ssl.keystore.password", "pw"),
                ("ssl.truststore.location", "/t.jks"),
            ]),
        );
        assert_eq!(r["ssl.keystore.location"], "/k.p12");
        assert_eq!(r["ssl.keystore.password"], "pw");
        assert!(!r.contains_key("ssl.ca.location"));
        let r = librdkafka_config(
            Client::Admin,
            &props(&[
                ("ssl.keystore.type", "PEM"),
                ("ssl.keystore.location", "/k.pem"),
                ("ssl.key.password", "kp"),
            ]),
        );
        assert_eq!(r["ssl.certificate.location"], "/k.pem");
        assert_eq!(r["ssl.key.location"], "/k.pem");
        assert_eq!(r["ssl.key.password"], "kp");
        let r = librdkafka_config(
            Client::Admin,
            &props(&[("ssl.keystore.location", "/k.jks")]),
        );
        assert!(r.is_empty());
    }

    #[test]
    fn worker_clients_for_internal_topics() {
        let c = load(
            Mode::Distributed,
            distributed(&[("security.protocol", "SSL"), ("producer.acks", "1")]),
        )
        .unwrap();
        let p = c.internal_librdkafka(Client::Producer);
        assert_eq!(p["enable.idempotence"], "false");
        assert_eq!(p["message.timeout.ms"], "2147483647");
        assert_eq!(p["security.protocol"], "ssl");
        assert_eq!(p["partitioner"], "murmur2_random");
        assert!(!p.contains_key("acks"));
        let cons = c.internal_librdkafka(Client::Consumer);
        assert!(!cons.contains_key("group.id"));
        assert_eq!(cons["enable.auto.commit"], "false");
        let prod = c.to_librdkafka(Client::Producer);
        assert_eq!(prod["acks"], "1");
        assert_eq!(prod["max.in.flight.requests.per.connection"], "1");
        assert_eq!(prod["bootstrap.servers"], "broker1:9092,broker2:9092");
    }

    #[test]
    fn listener_parsing() {
        assert_eq!(
            Listener::parse("http://[::1]:8083").unwrap(),
            Listener {
                protocol: "http".into(),
                host: "::1".into(),
                port: 8083
            }
        );
        assert_eq!(Listener::parse("HTTP://:0").unwrap().port, 0);
        assert!(Listener::parse("http://host:-1").is_err());
        assert!(Listener::parse("http://ho st:1").is_err());
    }
}
