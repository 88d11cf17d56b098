//! `io.confluent.connect.avro.AvroConverter`: Connect data as Avro in the
//! Confluent wire format (magic byte 0, 4-byte big-endian schema id, Avro
//! binary datum), with schemas registered in a Confluent-compatible registry.
//!
//! The Connect ↔ Avro schema mapping is Confluent's `AvroData` ([`data`]),
//! so the registered schema texts are the ones a Java worker would register
//! and existing consumers see identical schemas.
//!
//! Settings (prefix `key.converter.` / `value.converter.` removed):
//!
//! | key | honoured |
//! |---|---|
//! | `schema.registry.url` (comma-separated) | yes: tried in turn on network failure; `http` and `https` |
//! | `auto.register.schemas` (true) | yes (`POST /subjects/{s}/versions`; false: lookup `POST /subjects/{s}`) |
//! | `use.latest.version` (false) | yes: writes with the subject's latest schema, fields matched by name, missing ones from Avro defaults |
//! | `latest.compatibility.strict` (true) | yes: the latest schema must be able to read data written with the record's own schema (Avro resolution rules, [`compat`]), else a data error naming the subject |
//! | `key.subject.name.strategy` / `value.subject.name.strategy` | yes: TopicNameStrategy, RecordNameStrategy, TopicRecordNameStrategy (Confluent class or simple name) |
//! | `basic.auth.credentials.source` (URL) + `basic.auth.user.info` | yes: USER_INFO and URL; SASL_INHERIT is refused |
//! | `schemas.cache.config` (1000) | yes: bounds the schema caches |
//! | `max.schemas.per.subject` (1000) | yes: bounds the registry client's caches |
//! | `connect.meta.data` (true) | yes |
//! | `enhanced.avro.schema.support` (false) | yes: Avro enums from/to Connect strings with enum parameters, full-name union members |
//! | `normalize.schemas` (false) | yes: passed as `?normalize=true` |
//! | `schema.registry.ssl.*` | PEM trust and key stores: `truststore.type=PEM` + `truststore.location`/`truststore.certificates`, `keystore.type=PEM` + `keystore.location` or `keystore.certificate.chain` + `keystore.key`; JKS/PKCS12 and `key.password` are refused; other keys (protocols, cipher suites, `endpoint.identification.algorithm`) are accepted and ignored |
//!
//! Schemaless data (no Connect schema) is written, as in Java, as the
//! `io.confluent.connect.avro.Anything` record ([`anything`]) and read back
//! without a schema.

pub mod anything;
pub mod codec;
pub mod compat;
pub mod data;
pub mod schema;
pub mod subject;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use connect_api::config::{
    ConfigKey, ConfigType, ConfigValue, Default as ConfigDefault, Importance, Validator,
};
use connect_api::{
    ConfigDef, ConnectError, ConnectResult, Converter, Headers, Props, SchemaAndValue, SchemaRef,
    Value,
};

use crate::cache::LruCache;
use crate::registry::{RegistryClient, RegistryClientConfig};
use crate::{converter_config_def, props_with_type};
use codec::{Decoder, Encoder, Reader};
pub use data::AvroDataConfig;

/// A valid Avro name (`[A-Za-z_][A-Za-z0-9_]*`) for an arbitrary string:
/// other characters become `_`, and an empty name or one starting with a
/// digit gets a `_` prefix. Used for names derived from data (MongoDB field
/// names, topic parts), which may contain anything.
pub fn avro_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}
use schema::{AvroSchema, Names};
pub use subject::SubjectNameStrategy;

pub const SCHEMA_REGISTRY_URL_CONFIG: &str = "schema.registry.url";
pub const AUTO_REGISTER_SCHEMAS_CONFIG: &str = "auto.register.schemas";
pub const USE_LATEST_VERSION_CONFIG: &str = "use.latest.version";
pub const LATEST_COMPATIBILITY_STRICT_CONFIG: &str = "latest.compatibility.strict";
pub const KEY_SUBJECT_NAME_STRATEGY_CONFIG: &str = "key.subject.name.strategy";
pub const VALUE_SUBJECT_NAME_STRATEGY_CONFIG: &str = "value.subject.name.strategy";
pub const BASIC_AUTH_CREDENTIALS_SOURCE_CONFIG: &str = "basic.auth.credentials.source";
pub const BASIC_AUTH_USER_INFO_CONFIG: &str = "basic.auth.user.info";
pub const SCHEMAS_CACHE_CONFIG: &str = "schemas.cache.config";
pub const MAX_SCHEMAS_PER_SUBJECT_CONFIG: &str = "max.schemas.per.subject";
pub const CONNECT_META_DATA_CONFIG: &str = "connect.meta.data";
pub const ENHANCED_AVRO_SCHEMA_SUPPORT_CONFIG: &str = "enhanced.avro.schema.support";
pub const NORMALIZE_SCHEMAS_CONFIG: &str = "normalize.schemas";

const TOPIC_NAME_STRATEGY: &str = "io.confluent.kafka.serializers.subject.TopicNameStrategy";
const MAGIC_BYTE: u8 = 0;
/// How long one registry request may take before it counts as a network
/// failure (retriable).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The parsed latest schema of a subject (`use.latest.version`).
type LatestSchema = Arc<(AvroSchema, Names)>;

/// The id a schema is written with on one topic.
#[derive(Debug)]
struct TopicId {
    topic: Box<str>,
    id: i32,
    latest: Option<LatestSchema>,
}

/// A Connect schema converted for writing, shared by all records that use
/// the same `SchemaRef`.
#[derive(Debug)]
struct WriterEntry {
    /// Keeps the allocation alive so its address (the cache key) is not
    /// reused; `None` for the schemaless (Anything) entry.
    _schema: Option<SchemaRef>,
    avro: AvroSchema,
    text: Arc<str>,
    /// Per topic: the schema id, and the latest registered schema when
    /// `use.latest.version` writes with it instead of `avro`.
    ids: RwLock<Vec<TopicId>>,
    /// Size of the last value written with this schema: the next output
    /// buffer starts that large, so a ~1 KB record is not regrown (and
    /// copied) on the way (that regrowth was ~2 % of an Avro snapshot).
    last_len: AtomicUsize,
}

/// A writer schema fetched by id.
#[derive(Debug)]
struct ReaderEntry {
    avro: AvroSchema,
    names: Names,
    text: Arc<str>,
    /// The writer schema is `io.confluent.connect.avro.Anything`: the data
    /// is schemaless.
    anything: bool,
    /// Per topic (the subject, hence the registry version, depends on it).
    connect: RwLock<Vec<(Box<str>, SchemaRef)>>,
}

#[derive(Debug)]
struct Settings {
    client: Arc<RegistryClient>,
    data: AvroDataConfig,
    auto_register: bool,
    use_latest: bool,
    latest_strict: bool,
    normalize: bool,
    strategy: SubjectNameStrategy,
    writers: RwLock<LruCache<usize, Arc<WriterEntry>>>,
    /// The entry for schemaless values.
    anything: WriterEntry,
    readers: RwLock<LruCache<i32, Arc<ReaderEntry>>>,
}

/// The Avro converter. One instance converts either keys or values.
#[derive(Debug, Default)]
pub struct AvroConverter {
    is_key: bool,
    settings: Option<Settings>,
}

fn data_err(msg: impl Into<String>) -> ConnectError {
    ConnectError::data(msg)
}

impl AvroConverter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The converter's `ConfigDef` (Java's `AvroConverterConfig`).
    pub fn definition() -> ConfigDef {
        let bool_key = |name: &str, default: &str, doc: &str| {
            ConfigKey::new(
                name,
                ConfigType::Boolean,
                ConfigDefault::Value(default.into()),
                Importance::Medium,
                doc,
            )
        };
        converter_config_def()
            .define(ConfigKey::new(
                SCHEMA_REGISTRY_URL_CONFIG,
                ConfigType::List,
                ConfigDefault::Required,
                Importance::High,
                "Comma-separated list of URLs for Schema Registry instances that can be used to register or look up schemas.",
            ))
            .define(bool_key(AUTO_REGISTER_SCHEMAS_CONFIG, "true", "Specify if the Serializer should attempt to register the Schema with Schema Registry"))
            .define(bool_key(USE_LATEST_VERSION_CONFIG, "false", "Specify if the Serializer should use the latest subject version for serialization"))
            .define(bool_key(LATEST_COMPATIBILITY_STRICT_CONFIG, "true", "If true, check the backward compatibility between the latest subject version and the schema of the object being serialized"))
            .define(bool_key(NORMALIZE_SCHEMAS_CONFIG, "false", "Whether to normalize schemas, which generally ignores ordering when it is not significant"))
            .define(bool_key(CONNECT_META_DATA_CONFIG, "true", "Toggle for enabling/disabling connect converter to add its meta data to the output schema or not"))
            .define(bool_key(ENHANCED_AVRO_SCHEMA_SUPPORT_CONFIG, "false", "Toggle for enabling/disabling enhanced avro schema support: Enum symbol preservation and Package Name awareness"))
            .define(ConfigKey::new(
                KEY_SUBJECT_NAME_STRATEGY_CONFIG,
                ConfigType::Class,
                ConfigDefault::Value(TOPIC_NAME_STRATEGY.into()),
                Importance::Medium,
                "Determines how to construct the subject name under which the key schema is registered with the schema registry.",
            ))
            .define(ConfigKey::new(
                VALUE_SUBJECT_NAME_STRATEGY_CONFIG,
                ConfigType::Class,
                ConfigDefault::Value(TOPIC_NAME_STRATEGY.into()),
                Importance::Medium,
                "Determines how to construct the subject name under which the value schema is registered with the schema registry.",
            ))
            .define(
                ConfigKey::new(
                    BASIC_AUTH_CREDENTIALS_SOURCE_CONFIG,
                    ConfigType::String,
                    ConfigDefault::Value("URL".into()),
                    Importance::Medium,
                    "Specify how to pick the credentials for Basic Auth header. The supported values are URL, USER_INFO and SASL_INHERIT",
                )
                .validator(Validator::one_of(&["URL", "USER_INFO", "SASL_INHERIT"])),
            )
            .define(ConfigKey::new(
                BASIC_AUTH_USER_INFO_CONFIG,
                ConfigType::Password,
                ConfigDefault::Value(String::new()),
                Importance::Medium,
                "Specify the user info for Basic Auth in the form of {username}:{password}",
            ))
            .define(
                ConfigKey::new(
                    SCHEMAS_CACHE_CONFIG,
                    ConfigType::Int,
                    ConfigDefault::Value("1000".into()),
                    Importance::Low,
                    "Size of the converted schema cache",
                )
                .validator(Validator::at_least(0.0)),
            )
            .define(
                ConfigKey::new(
                    MAX_SCHEMAS_PER_SUBJECT_CONFIG,
                    ConfigType::Int,
                    ConfigDefault::Value("1000".into()),
                    Importance::Low,
                    "Maximum number of schemas to create or cache locally.",
                )
                .validator(Validator::at_least(1.0)),
            )
    }

    /// Applies a full config including `converter.type`.
    pub fn configure_props(&mut self, props: &Props, is_key: bool) -> ConnectResult<()> {
        let parsed = Self::definition().parse(props)?;
        let urls = parsed.list(SCHEMA_REGISTRY_URL_CONFIG);
        let source = parsed
            .string(BASIC_AUTH_CREDENTIALS_SOURCE_CONFIG)
            .unwrap_or("URL")
            .to_string();
        let user_info = match parsed.get(BASIC_AUTH_USER_INFO_CONFIG) {
            Some(ConfigValue::Password(p)) if !p.value().is_empty() => Some(p.value().to_string()),
            _ => None,
        };
        let (user_info, url_credentials) = match source.as_str() {
            "USER_INFO" => {
                if user_info.is_none() {
                    return Err(ConnectError::config(
                        BASIC_AUTH_USER_INFO_CONFIG,
                        "",
                        "basic.auth.user.info must be set when basic.auth.credentials.source=USER_INFO",
                    ));
                }
                (user_info, false)
            }
            "URL" => (None, true),
            other => {
                return Err(ConnectError::config(
                    BASIC_AUTH_CREDENTIALS_SOURCE_CONFIG,
                    other,
                    "SASL_INHERIT is not supported by this worker",
                ))
            }
        };
        let strategy_key = if is_key {
            KEY_SUBJECT_NAME_STRATEGY_CONFIG
        } else {
            VALUE_SUBJECT_NAME_STRATEGY_CONFIG
        };
        let strategy_name = parsed.string(strategy_key).unwrap_or(TOPIC_NAME_STRATEGY);
        let strategy = SubjectNameStrategy::from_class(strategy_name).ok_or_else(|| {
            ConnectError::config(
                strategy_key,
                strategy_name,
                "Supported strategies are TopicNameStrategy, RecordNameStrategy and TopicRecordNameStrategy",
            )
        })?;
        let cache_size = parsed.int(SCHEMAS_CACHE_CONFIG).unwrap_or(1000).max(0) as usize;
        let per_subject = parsed
            .int(MAX_SCHEMAS_PER_SUBJECT_CONFIG)
            .unwrap_or(1000)
            .max(1) as usize;
        let client = RegistryClient::new(RegistryClientConfig {
            urls: urls.clone(),
            user_info,
            url_credentials,
            request_timeout: REQUEST_TIMEOUT,
            cache_capacity: per_subject,
            ssl: parsed.with_prefix("schema.registry.ssl."),
        })
        .map_err(|e| ConnectError::config(SCHEMA_REGISTRY_URL_CONFIG, urls.join(","), e))?;
        self.is_key = is_key;
        self.settings = Some(Settings {
            client: Arc::new(client),
            data: AvroDataConfig {
                connect_meta_data: parsed.bool(CONNECT_META_DATA_CONFIG).unwrap_or(true),
                enhanced_schema_support: parsed
                    .bool(ENHANCED_AVRO_SCHEMA_SUPPORT_CONFIG)
                    .unwrap_or(false),
            },
            auto_register: parsed.bool(AUTO_REGISTER_SCHEMAS_CONFIG).unwrap_or(true),
            use_latest: parsed.bool(USE_LATEST_VERSION_CONFIG).unwrap_or(false),
            latest_strict: parsed
                .bool(LATEST_COMPATIBILITY_STRICT_CONFIG)
                .unwrap_or(true),
            normalize: parsed.bool(NORMALIZE_SCHEMAS_CONFIG).unwrap_or(false),
            strategy,
            writers: RwLock::new(LruCache::new(cache_size)),
            anything: WriterEntry {
                _schema: None,
                avro: schema::parse(anything::ANYTHING_SCHEMA_TEXT)
                    .map_err(|e| ConnectError::fatal(e.to_string()))?
                    .0,
                text: Arc::from(anything::ANYTHING_SCHEMA_TEXT),
                ids: RwLock::new(Vec::new()),
                last_len: AtomicUsize::new(0),
            },
            readers: RwLock::new(LruCache::new(cache_size)),
        });
        Ok(())
    }

    fn settings(&self) -> ConnectResult<&Settings> {
        self.settings
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("AvroConverter used before configure()"))
    }

    /// The registry client (tests count its requests).
    pub fn registry_client(&self) -> Option<Arc<RegistryClient>> {
        self.settings.as_ref().map(|s| s.client.clone())
    }

    /// The Avro schema text this converter registers for a Connect schema.
    pub fn avro_schema_text(&self, schema: &SchemaRef) -> ConnectResult<String> {
        let data = self.settings.as_ref().map(|s| s.data).unwrap_or_default();
        Ok(data.from_connect_schema(schema)?.to_json_string())
    }

    fn subject(&self, st: &Settings, topic: &str, avro: &AvroSchema) -> String {
        st.strategy.subject(topic, self.is_key, avro.subject_name())
    }

    fn writer_entry(&self, st: &Settings, schema: &SchemaRef) -> ConnectResult<Arc<WriterEntry>> {
        let key = Arc::as_ptr(schema) as usize;
        if let Some(e) = st.writers.read().ok().and_then(|c| c.get(&key)) {
            return Ok(e);
        }
        let avro = st.data.from_connect_schema(schema)?;
        let text: Arc<str> = Arc::from(avro.to_json_string());
        let entry = Arc::new(WriterEntry {
            _schema: Some(schema.clone()),
            avro,
            text,
            ids: RwLock::new(Vec::new()),
            last_len: AtomicUsize::new(0),
        });
        if let Ok(mut c) = st.writers.write() {
            c.put(key, entry.clone());
        }
        Ok(entry)
    }

    /// The schema id (and the latest schema under `use.latest.version`) to
    /// write with on `topic`: from the entry's cache, else from the registry.
    async fn writer_id(
        &self,
        st: &Settings,
        entry: &WriterEntry,
        topic: &str,
    ) -> ConnectResult<(i32, Option<LatestSchema>)> {
        if let Ok(ids) = entry.ids.read() {
            if let Some(t) = ids.iter().find(|t| t.topic.as_ref() == topic) {
                return Ok((t.id, t.latest.clone()));
            }
        }
        let subject = self.subject(st, topic, &entry.avro);
        // Schemaless values always use the Anything schema itself.
        let (id, latest) = if st.use_latest && entry._schema.is_some() {
            let latest = st.client.latest(&subject).await?;
            let parsed = schema::parse(&latest.schema).map_err(|e| {
                data_err(format!(
                    "Latest schema of subject \"{subject}\" (id {}) cannot be read: {e}",
                    latest.id
                ))
            })?;
            if st.latest_strict {
                compat::check(&parsed.0, &parsed.1, &entry.avro, &Names::new()).map_err(|why| {
                    data_err(format!(
                        "Latest schema of subject \"{subject}\" (id {}, version {}) is not backward compatible with the record's schema {}: {why}. Set latest.compatibility.strict=false to disable this check",
                        latest.id, latest.version, entry.text
                    ))
                })?;
            }
            (latest.id, Some(Arc::new(parsed)))
        } else if st.auto_register {
            (
                st.client
                    .register(&subject, &entry.text, st.normalize)
                    .await?,
                None,
            )
        } else {
            (
                st.client
                    .lookup(&subject, &entry.text, st.normalize)
                    .await?
                    .0,
                None,
            )
        };
        if let Ok(mut ids) = entry.ids.write() {
            if !ids.iter().any(|t| t.topic.as_ref() == topic) {
                ids.push(TopicId {
                    topic: topic.into(),
                    id,
                    latest: latest.clone(),
                });
            }
        }
        Ok((id, latest))
    }

    async fn reader_entry(&self, st: &Settings, id: i32) -> ConnectResult<Arc<ReaderEntry>> {
        if let Some(e) = st.readers.read().ok().and_then(|c| c.get(&id)) {
            return Ok(e);
        }
        let text = st.client.schema_by_id(id).await?;
        let (avro, names) = schema::parse(&text).map_err(|e| {
            data_err(format!(
                "Schema id {id} from the registry cannot be read: {e}"
            ))
        })?;
        let entry = Arc::new(ReaderEntry {
            avro,
            names,
            anything: anything::is_anything(&text),
            text,
            connect: RwLock::new(Vec::new()),
        });
        if let Ok(mut c) = st.readers.write() {
            c.put(id, entry.clone());
        }
        Ok(entry)
    }

    /// The Connect schema of a writer schema read on `topic`. Like Java, a
    /// schema without `connect.version` gets the subject's registry version.
    async fn reader_schema(
        &self,
        st: &Settings,
        entry: &ReaderEntry,
        id: i32,
        topic: &str,
    ) -> ConnectResult<SchemaRef> {
        if let Ok(c) = entry.connect.read() {
            if let Some((_, s)) = c.iter().find(|(t, _)| t.as_ref() == topic) {
                return Ok(s.clone());
            }
        }
        let version = if entry
            .avro
            .resolve(&entry.names)
            .prop(data::CONNECT_VERSION_PROP)
            .is_some()
        {
            None
        } else {
            let subject = self.subject(st, topic, &entry.avro);
            st.client.version_of(&subject, id, &entry.text).await?
        };
        let schema = st
            .data
            .to_connect_schema(&entry.avro, &entry.names, version)?;
        if let Ok(mut c) = entry.connect.write() {
            if !c.iter().any(|(t, _)| t.as_ref() == topic) {
                c.push((topic.into(), schema.clone()));
            }
        }
        Ok(schema)
    }

    /// Java's `fromConnectData`.
    pub async fn serialize(
        &self,
        topic: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> ConnectResult<Option<Vec<u8>>> {
        let st = self.settings()?;
        let Some(schema) = schema else {
            if value.is_null() {
                return Ok(None);
            }
            let (id, _) = self.writer_id(st, &st.anything, topic).await?;
            let mut out = Vec::with_capacity(64);
            out.push(MAGIC_BYTE);
            out.extend_from_slice(&id.to_be_bytes());
            anything::write(&mut out, value).map_err(|e| {
                data_err(format!(
                    "Failed to serialize Avro data from topic {topic}: {e}"
                ))
            })?;
            return Ok(Some(out));
        };
        if value.is_null() {
            if schema.optional {
                return Ok(None);
            }
            return Err(data_err(format!(
                "Failed to serialize Avro data from topic {topic}: Found null value for non-optional schema"
            )));
        }
        let entry = self.writer_entry(st, schema)?;
        let (id, latest) = self.writer_id(st, &entry, topic).await?;
        let hint = entry.last_len.load(Ordering::Relaxed);
        let mut out = Vec::with_capacity(if hint > 0 { hint + hint / 8 } else { 256 });
        out.push(MAGIC_BYTE);
        out.extend_from_slice(&id.to_be_bytes());
        let empty = Names::new();
        let (avro, names) = match &latest {
            Some(l) => (&l.0, &l.1),
            None => (&entry.avro, &empty),
        };
        Encoder {
            names,
            config: st.data,
        }
        .write(&mut out, schema, avro, value)
        .map_err(|e| {
            data_err(format!(
                "Failed to serialize Avro data from topic {topic}: {e}"
            ))
        })?;
        entry.last_len.store(out.len(), Ordering::Relaxed);
        Ok(Some(out))
    }

    /// Java's `toConnectData`.
    pub async fn deserialize(
        &self,
        topic: &str,
        bytes: Option<&[u8]>,
    ) -> ConnectResult<SchemaAndValue> {
        let st = self.settings()?;
        let Some(bytes) = bytes else {
            return Ok(SchemaAndValue::null());
        };
        if bytes.len() < 5 || bytes[0] != MAGIC_BYTE {
            return Err(data_err(format!(
                "Failed to deserialize data for topic {topic} to Avro: Unknown magic byte!"
            )));
        }
        let id = i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        let entry = self.reader_entry(st, id).await?;
        let mut reader = Reader::new(&bytes[5..]);
        if entry.anything {
            let value = anything::read(&mut reader, 0).map_err(|e| {
                data_err(format!(
                    "Failed to deserialize data for topic {topic} to Avro: {e}"
                ))
            })?;
            return Ok(SchemaAndValue::new(None, value));
        }
        let schema = self.reader_schema(st, &entry, id, topic).await?;
        let value = Decoder {
            names: &entry.names,
            config: st.data,
        }
        .read(&mut reader, &schema, &entry.avro)
        .map_err(|e| {
            data_err(format!(
                "Failed to deserialize data for topic {topic} to Avro: {e}"
            ))
        })?;
        Ok(SchemaAndValue::new(Some(schema), value))
    }
}

#[async_trait]
impl Converter for AvroConverter {
    fn configure(&mut self, props: &Props, is_key: bool) -> ConnectResult<()> {
        self.configure_props(
            &props_with_type(props, if is_key { "key" } else { "value" }),
            is_key,
        )
    }

    fn config_def(&self) -> ConfigDef {
        Self::definition()
    }

    async fn from_connect(
        &self,
        topic: &str,
        _headers: &mut Headers,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> ConnectResult<Option<Vec<u8>>> {
        self.serialize(topic, schema, value).await
    }

    async fn to_connect(
        &self,
        topic: &str,
        _headers: &Headers,
        bytes: Option<&[u8]>,
    ) -> ConnectResult<SchemaAndValue> {
        self.deserialize(topic, bytes).await
    }
}
