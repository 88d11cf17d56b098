//! The connector's configuration: every key declared once, with its docs.
//!
//! `topics` / `topics.regex` and the other sink keys belong to the worker's
//! sink config and are not repeated here.

use connect_api::config::{
    ConfigKey, ConfigType, Default as ConfigDefault, Importance, ParsedConfig, Validator,
};
use connect_api::{ConfigDef, ConnectError, ConnectResult, Props};

pub const OUTPUT_TOPIC: &str = "output.topic";
pub const OUTPUT_TOPIC_PARTITIONS: &str = "output.topic.partitions";
pub const OUTPUT_TOPIC_REPLICATION: &str = "output.topic.replication.factor";
pub const OUTPUT_FORMAT: &str = "output.format";
pub const OUTPUT_JSON_SCHEMAS: &str = "output.json.schemas.enable";
pub const OUTPUT_DOCUMENT_ENCODING: &str = "output.document.encoding";
pub const OUTPUT_TOMBSTONES: &str = "output.tombstones.on.delete";
pub const SCHEMA_REGISTRY_URL: &str = "schema.registry.url";
/// Further AvroConverter settings, passed on without this prefix.
pub const OUTPUT_AVRO_PREFIX: &str = "output.avro.";
pub const STATE_DIR: &str = "state.dir";
pub const STATE_CACHE_BYTES: &str = "state.cache.bytes";
pub const STATE_TOPIC_ENABLE: &str = "state.topic.enable";
pub const STATE_TOPIC: &str = "state.topic";
pub const STATE_TOPIC_REPLICATION: &str = "state.topic.replication.factor";
pub const STATE_REBUILD_FROM_INPUT: &str = "state.rebuild.from.input";

pub use connect_changelog::{DocumentEncoding, OutputFormat};

/// The parsed configuration of a normalizer task.
#[derive(Debug, Clone)]
pub struct NormalizerConfig {
    pub output_topic: String,
    pub output_partitions: Option<i32>,
    pub output_replication: Option<i16>,
    pub format: OutputFormat,
    pub document: DocumentEncoding,
    pub tombstones: bool,
    /// Props for the AvroConverter (registry URL and `output.avro.*`).
    pub avro_props: Props,
    pub state_dir: String,
    pub state_cache_bytes: u64,
    /// `None` when the state topic is disabled.
    pub state_topic: Option<String>,
    pub state_replication: Option<i16>,
    pub rebuild_from_input: bool,
}

fn key(name: &str, t: ConfigType, default: &str, imp: Importance, doc: &str) -> ConfigKey {
    ConfigKey::new(name, t, ConfigDefault::Value(default.into()), imp, doc)
}

/// The connector's `ConfigDef`.
pub fn config_def() -> ConfigDef {
    use ConfigType::*;
    use Importance::*;
    ConfigDef::new()
        .define(key(OUTPUT_TOPIC, String, "${topic}.changelog", High,
            "Name of the changelog topic written for each input topic; ${topic} is replaced by the input topic name. Records go to the same partition number as their input record, so the topic is created (cleanup.policy=delete) with the input's partition count."))
        .define(key(OUTPUT_TOPIC_PARTITIONS, Int, "-1", Low,
            "Partitions of a changelog topic that does not exist yet; -1 copies the input topic's partition count. Must not be smaller than the input's, since each record keeps its partition number.")
            .validator(Validator::at_least(-1.0)))
        .define(key(OUTPUT_TOPIC_REPLICATION, Short, "-1", Low,
            "Replication factor of created changelog topics; -1 uses the broker default."))
        .define(key(OUTPUT_FORMAT, String, "json", High,
            "Serialization of the Debezium envelope: 'json' (as Connect's JsonConverter writes it) or 'avro' (Confluent wire format through the schema registry, subjects <output topic>-value, record <input topic>.Envelope).")
            .validator(Validator::one_of(&["json", "avro"])))
        .define(key(OUTPUT_JSON_SCHEMAS, Boolean, "false", Medium,
            "With output.format=json: wrap each envelope as {\"schema\":...,\"payload\":...} like JsonConverter with schemas.enable=true (Flink's debezium-json.schema-include=true)."))
        .define(key(OUTPUT_DOCUMENT_ENCODING, String, "auto", Medium,
            "How before/after carry the document. 'auto': a struct with the input's value schema (record <input topic>.Value) when the input has one, for JSON documents (JSON objects without a struct schema, like the MongoDB source's values) a nested object in JSON output, with schemas.enable a struct schema inferred from each event's images (record <input topic>.Value; JSON text when no Connect type fits them), JSON text (io.debezium.data.Json) otherwise and in Avro. 'string': always JSON text, the Debezium MongoDB connector's shape.")
            .validator(Validator::one_of(&["auto", "string"])))
        .define(key(OUTPUT_TOMBSTONES, Boolean, "false", Low,
            "Also write a tombstone (null value) after each delete event, as Debezium does for compacted topics. Off because the changelog topic must not be compacted."))
        .define(key(SCHEMA_REGISTRY_URL, List, "", Medium,
            "Schema registry URLs for output.format=avro. Other AvroConverter settings can be given with the prefix output.avro."))
        .define(key(STATE_DIR, String, "normalizer-state", High,
            "Local directory for the per-partition state stores (one subdirectory per connector and input partition). Must survive restarts for fast recovery; when it is lost, state is rebuilt from the state topic.")
            .validator(Validator::NonEmptyString))
        .define(key(STATE_CACHE_BYTES, Long, "33554432", Low,
            "Block cache of each partition's state store, in bytes.")
            .validator(Validator::at_least(0.0)))
        .define(key(STATE_TOPIC_ENABLE, Boolean, "true", High,
            "Write every state change to a compacted state topic in the same Kafka transaction as the changelog records, so a lost state directory can be rebuilt exactly. Without it, lost local state stops the task unless state.rebuild.from.input is set."))
        .define(key(STATE_TOPIC, String, "${connector}.${topic}.state", Medium,
            "Name of the compacted state topic of each input topic; ${connector} and ${topic} are replaced. Partition p holds the keys of input partition p."))
        .define(key(STATE_TOPIC_REPLICATION, Short, "-1", Low,
            "Replication factor of created state topics; -1 uses the broker default."))
        .define(key(STATE_REBUILD_FROM_INPUT, Boolean, "false", Low,
            "When local state is missing and there is no state topic, rebuild it by replaying the input topic from its beginning without emitting. Exact only if no input record was ever compacted or deleted by retention; otherwise later updates get a wrong 'before'. Off by default so that this never happens silently."))
}

fn optional_positive<T: TryFrom<i64> + Copy>(v: i64) -> Option<T> {
    if v > 0 {
        T::try_from(v).ok()
    } else {
        None
    }
}

impl NormalizerConfig {
    pub fn parse(props: &Props) -> ConnectResult<Self> {
        let p: ParsedConfig = config_def().parse(props)?;
        let s = |k: &str| p.string(k).unwrap_or_default().to_string();
        let format = match p.string(OUTPUT_FORMAT) {
            Some("avro") => OutputFormat::Avro,
            _ => OutputFormat::Json {
                schemas: p.bool(OUTPUT_JSON_SCHEMAS).unwrap_or(false),
            },
        };
        let urls = p.list(SCHEMA_REGISTRY_URL);
        if format == OutputFormat::Avro && urls.is_empty() {
            return Err(ConnectError::config(
                SCHEMA_REGISTRY_URL,
                "",
                "output.format=avro needs schema.registry.url",
            ));
        }
        let mut avro_props = p.with_prefix(OUTPUT_AVRO_PREFIX);
        avro_props.insert(SCHEMA_REGISTRY_URL.to_string(), urls.join(","));
        let short = |k: &str| {
            p.get(k).and_then(|v| match v {
                connect_api::config::ConfigValue::Short(n) => optional_positive(i64::from(*n)),
                _ => None,
            })
        };
        Ok(NormalizerConfig {
            output_topic: s(OUTPUT_TOPIC),
            output_partitions: optional_positive(i64::from(
                p.int(OUTPUT_TOPIC_PARTITIONS).unwrap_or(-1),
            )),
            output_replication: short(OUTPUT_TOPIC_REPLICATION),
            format,
            document: match p.string(OUTPUT_DOCUMENT_ENCODING) {
                Some("string") => DocumentEncoding::String,
                _ => DocumentEncoding::Auto,
            },
            tombstones: p.bool(OUTPUT_TOMBSTONES).unwrap_or(false),
            avro_props,
            state_dir: s(STATE_DIR),
            state_cache_bytes: u64::try_from(p.long(STATE_CACHE_BYTES).unwrap_or(0)).unwrap_or(0),
            state_topic: p
                .bool(STATE_TOPIC_ENABLE)
                .unwrap_or(true)
                .then(|| s(STATE_TOPIC)),
            state_replication: short(STATE_TOPIC_REPLICATION),
            rebuild_from_input: p.bool(STATE_REBUILD_FROM_INPUT).unwrap_or(false),
        })
    }

    /// The changelog topic for an input topic.
    pub fn output_topic_for(&self, input: &str) -> String {
        self.output_topic.replace("${topic}", input)
    }

    /// The state topic for an input topic, if enabled.
    pub fn state_topic_for(&self, connector: &str, input: &str) -> Option<String> {
        self.state_topic.as_ref().map(|t| {
            t.replace("${connector}", connector)
                .replace("${topic}", input)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_templates() {
        let c = NormalizerConfig::parse(&Props::new()).unwrap();
        assert_eq!(c.output_topic_for("m.db.c"), "m.db.c.changelog");
        assert_eq!(
            c.state_topic_for("n1", "m.db.c").unwrap(),
            "n1.m.db.c.state"
        );
        assert_eq!(c.format, OutputFormat::Json { schemas: false });
        assert_eq!(c.output_partitions, None);
        let mut p = Props::new();
        p.insert(STATE_TOPIC_ENABLE.into(), "false".into());
        assert!(NormalizerConfig::parse(&p)
            .unwrap()
            .state_topic_for("n", "t")
            .is_none());
    }

    #[test]
    fn avro_needs_a_registry() {
        let mut p = Props::new();
        p.insert(OUTPUT_FORMAT.into(), "avro".into());
        let e = NormalizerConfig::parse(&p).unwrap_err();
        assert!(e.to_string().contains("schema.registry.url"), "{e}");
        p.insert(SCHEMA_REGISTRY_URL.into(), "http://127.0.0.1:8081".into());
        p.insert("output.avro.auto.register.schemas".into(), "false".into());
        let c = NormalizerConfig::parse(&p).unwrap();
        assert_eq!(c.avro_props.get("auto.register.schemas").unwrap(), "false");
        assert_eq!(
            c.avro_props.get(SCHEMA_REGISTRY_URL).unwrap(),
            "http://127.0.0.1:8081"
        );
    }

    #[test]
    fn every_key_is_declared_once_with_docs() {
        let def = config_def();
        let names: Vec<_> = def.keys().map(|k| k.name.clone()).collect();
        let mut dedup = names.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(names.len(), dedup.len());
        assert!(def.keys().all(|k| !k.documentation.is_empty()));
    }
}
