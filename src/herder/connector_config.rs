//! The framework keys every connector config has (Java's `ConnectorConfig`,
//! `SourceConnectorConfig`), and the validation that merges them with the
//! connector's own keys, its transforms and predicates into `ConfigInfos`.

use connect_api::config::{
    key_default_text, ConfigType, ConfigValueInfo, Default as Dflt, Importance, Props, Validator,
    Width,
};
use connect_api::connector::ConnectorKind;
use connect_api::{ConfigDef, ConfigKey};

use super::api::{ConfigInfo, ConfigInfos, ConfigKeyInfo};
use crate::plugins::Plugins;
use crate::worker::{errors, transforms};

/// Longest connector name accepted; longer names cannot be used as Kafka
/// client ids and status keys comfortably.
pub const MAX_NAME_LEN: usize = 255;

fn name_ok(v: &connect_api::config::ConfigValue) -> Result<(), String> {
    if let connect_api::config::ConfigValue::String(s) = v {
        if s.is_empty() {
            return Err("String may not be empty".into());
        }
        if s.chars().any(char::is_control) {
            return Err(
                "String may not contain control sequences but had the following ASCII chars: "
                    .to_string()
                    + &s.chars()
                        .filter(|c| c.is_control())
                        .map(|c| (c as u32).to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
            );
        }
        if s.contains('/') {
            return Err("Connector names may not contain '/'".into());
        }
        if s.len() > MAX_NAME_LEN {
            return Err(format!(
                "Connector names may be at most {MAX_NAME_LEN} characters long"
            ));
        }
    }
    Ok(())
}

/// Java's `ConnectorConfig` keys (group "Common").
pub fn common_def() -> ConfigDef {
    let common = |k: ConfigKey, order: i32, width: Width, display: &str| {
        k.group("Common", order, width, display)
    };
    ConfigDef::new()
        .define(common(
            ConfigKey::new("name", ConfigType::String, Dflt::Required, Importance::High,
                "Globally unique name to use for this connector.")
                .validator(Validator::Custom(name_ok)),
            1, Width::Medium, "Connector name"))
        .define(common(
            ConfigKey::new("connector.class", ConfigType::String, Dflt::Required, Importance::High,
                "Name or alias of the class for this connector. Must be a subclass of org.apache.kafka.connect.connector.Connector. If the connector is org.apache.kafka.connect.file.FileStreamSinkConnector, you can either specify this full name, or use \"FileStreamSink\" or \"FileStreamSinkConnector\" to make the configuration a bit shorter"),
            2, Width::Long, "Connector class"))
        .define(common(
            ConfigKey::new("tasks.max", ConfigType::Int, Dflt::Value("1".into()), Importance::High,
                "Maximum number of tasks to use for this connector.")
                .validator(Validator::at_least(1.0)),
            3, Width::Short, "Tasks max"))
        .define(common(
            ConfigKey::new("tasks.max.enforce", ConfigType::Boolean, Dflt::Value("true".into()), Importance::Low,
                "(Deprecated) Whether to fail a connector that generates more tasks than tasks.max."),
            4, Width::Short, "Enforce tasks max"))
        .define(common(
            ConfigKey::new("key.converter", ConfigType::Class, Dflt::Null, Importance::Low,
                "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka. This controls the format of the keys in messages written to or read from Kafka; it overrides the worker's setting."),
            5, Width::Short, "Key converter class"))
        .define(common(
            ConfigKey::new("value.converter", ConfigType::Class, Dflt::Null, Importance::Low,
                "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka. This controls the format of the values in messages written to or read from Kafka; it overrides the worker's setting."),
            6, Width::Short, "Value converter class"))
        .define(common(
            ConfigKey::new("header.converter", ConfigType::Class, Dflt::Null, Importance::Low,
                "HeaderConverter class used to convert between Kafka Connect format and the serialized form that is written to Kafka; it overrides the worker's setting."),
            7, Width::Short, "Header converter class"))
        .define(common(
            ConfigKey::new("config.action.reload", ConfigType::String, Dflt::Value("restart".into()), Importance::Low,
                "What to do when a config provider reports that a value changed: 'restart' the connector or do 'none'.")
                .validator(Validator::one_of_ignore_case(&["none", "restart"])),
            8, Width::Medium, "Reload Action"))
}

/// Java's `SourceConnectorConfig` additions that this worker honours or
/// reports (exactly-once keys are accepted so configs written for Java run).
pub fn source_def() -> ConfigDef {
    let eos = |k: ConfigKey, order: i32, display: &str| {
        k.group("Exactly Once Support", order, Width::Medium, display)
    };
    ConfigDef::new()
        .define(eos(
            ConfigKey::new("exactly.once.support", ConfigType::String, Dflt::Value("requested".into()), Importance::Medium,
                "Whether exactly-once delivery is 'requested' or 'required'. connectd does not offer exactly-once source delivery yet, so 'required' fails validation.")
                .validator(Validator::one_of_ignore_case(&["requested", "required"])),
            1, "Exactly once support"))
        .define(eos(
            ConfigKey::new("transaction.boundary", ConfigType::String, Dflt::Value("poll".into()), Importance::Medium,
                "Transaction boundaries for exactly-once source delivery ('poll', 'interval' or 'connector'); ignored while exactly-once is not enabled.")
                .validator(Validator::one_of_ignore_case(&["poll", "interval", "connector"])),
            2, "Transaction Boundary"))
        .define(
            ConfigKey::new("offsets.storage.topic", ConfigType::String, Dflt::Null, Importance::Low,
                "A separate offsets topic for this connector. Not supported by connectd yet: offsets always go to the worker's offsets topic.")
                .group("offsets.topic", 1, Width::Long, "Offsets topic"),
        )
        .define(
            ConfigKey::new("topic.creation.groups", ConfigType::List, Dflt::Value(String::new()), Importance::Low,
                "Groups of configurations for topics created by source connectors.")
                .group("Topic Creation", 1, Width::Long, "Topic Creation Groups"),
        )
}

fn key_info(k: &ConfigKey) -> ConfigKeyInfo {
    let name = |t: &str| t.to_string();
    ConfigKeyInfo {
        name: k.name.clone(),
        config_type: serde_json::to_value(k.config_type)
            .ok()
            .and_then(|v| v.as_str().map(name))
            .unwrap_or_default(),
        required: k.required(),
        default_value: match k.config_type {
            ConfigType::Password if key_default_text(k).is_some() => Some("[hidden]".into()),
            _ => key_default_text(k),
        },
        importance: serde_json::to_value(k.importance)
            .ok()
            .and_then(|v| v.as_str().map(name))
            .unwrap_or_default(),
        documentation: k.documentation.clone(),
        group: k.group.clone(),
        width: serde_json::to_value(k.width)
            .ok()
            .and_then(|v| v.as_str().map(name))
            .unwrap_or_default(),
        display_name: k.display_name.clone(),
        dependents: k.dependents.clone(),
        order: k.order_in_group,
    }
}

/// `GET /connector-plugins/{p}/config`: the plugin's own keys.
pub fn describe(def: &ConfigDef) -> Vec<ConfigKeyInfo> {
    def.keys().map(key_info).collect()
}

/// The framework definition for a connector kind.
/// The sink-only keys (Java's `SinkConnectorConfig`, contract §5.4).
pub fn sink_def() -> ConfigDef {
    let dlq = |k: ConfigKey, order: i32, display: &str| {
        k.group("Error Handling", order, Width::Medium, display)
    };
    ConfigDef::new()
        .define(
            ConfigKey::new("topics", ConfigType::List, Dflt::Value(String::new()), Importance::High,
                "List of topics to consume, separated by commas")
                .group("Common", 4, Width::Long, "Topics"),
        )
        .define(
            ConfigKey::new("topics.regex", ConfigType::String, Dflt::Value(String::new()), Importance::High,
                "Regular expression giving topics to consume. Under the hood, the regex is compiled to a java.util.regex.Pattern. Only one of topics or topics.regex should be specified.")
                .group("Common", 4, Width::Long, "Topics regex"),
        )
        .define(dlq(
            ConfigKey::new("errors.deadletterqueue.topic.name", ConfigType::String, Dflt::Value(String::new()), Importance::Medium,
                "The name of the topic to be used as the dead letter queue (DLQ) for messages that result in an error when processed by this sink connector, or its transformations or converters. The topic name is blank by default, which means that no messages are to be recorded in the DLQ."),
            6, "Dead Letter Queue Topic Name"))
        .define(dlq(
            ConfigKey::new("errors.deadletterqueue.topic.replication.factor", ConfigType::Short, Dflt::Value("3".into()), Importance::Medium,
                "Replication factor used to create the dead letter queue topic when it doesn't already exist."),
            7, "Dead Letter Queue Topic Replication Factor"))
        .define(dlq(
            ConfigKey::new("errors.deadletterqueue.context.headers.enable", ConfigType::Boolean, Dflt::Value("false".into()), Importance::Medium,
                "If true, add headers containing error context to the messages written to the dead letter queue. To avoid clashing with headers from the original record, all error context header keys, all error context header keys will start with __connect.errors."),
            8, "Enable Error Context Headers"))
}

pub fn framework_def(kind: ConnectorKind) -> ConfigDef {
    let mut def = common_def().merge(&errors::config_def());
    match kind {
        ConnectorKind::Source => def = def.merge(&source_def()),
        ConnectorKind::Sink => def = def.merge(&sink_def()),
    }
    def
}

/// Builds ConfigInfos from the framework keys, the transform/predicate keys
/// and the connector's own validation (contract §1.4.15).
pub async fn validate(
    plugins: &Plugins,
    class: &str,
    props: &Props,
    connector_def: &ConfigDef,
    connector_values: Vec<ConfigValueInfo>,
    kind: ConnectorKind,
) -> ConfigInfos {
    let (tdef, terrors) = transforms::validate(props, plugins);
    let fdef = framework_def(kind).merge(&tdef);
    let mut values = fdef.validate(props);
    for (key, msg) in terrors {
        if let Some(v) = values.iter_mut().find(|v| v.name == key) {
            v.errors.push(msg);
        } else {
            values.push(ConfigValueInfo {
                name: key,
                value: None,
                recommended_values: vec![],
                errors: vec![msg],
                visible: true,
            });
        }
    }
    if kind == ConnectorKind::Source
        && props
            .get("exactly.once.support")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("required"))
    {
        if let Some(v) = values.iter_mut().find(|v| v.name == "exactly.once.support") {
            v.errors
                .push("This worker does not have exactly-once source support enabled.".into());
        }
    }
    if kind == ConnectorKind::Sink {
        // The cross-field checks of the sink runtime, reported on the keys
        // they concern, so a bad sink config is refused at creation.
        if let Err(e) = crate::worker::sink_task::SinkSettings::from_props(props) {
            let key = match &e {
                connect_api::error::ConnectError::Config { key, .. } => key.clone(),
                _ => "topics".to_string(),
            };
            let msg = e.to_string();
            if let Some(v) = values.iter_mut().find(|v| v.name == key) {
                if !v.errors.contains(&msg) {
                    v.errors.push(msg);
                }
            }
        }
    }
    let mut configs: Vec<ConfigInfo> = Vec::new();
    let mut groups: Vec<String> = Vec::new();
    let mut push_group = |g: &Option<String>| {
        if let Some(g) = g {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
    };
    for v in values {
        let def = fdef.get(&v.name);
        if let Some(d) = def {
            push_group(&d.group);
        }
        configs.push(ConfigInfo {
            definition: def.map(key_info),
            value: v,
        });
    }
    for v in connector_values {
        if configs.iter().any(|c| c.value.name == v.name) {
            continue;
        }
        let def = connector_def.get(&v.name);
        if let Some(d) = def {
            push_group(&d.group);
        }
        configs.push(ConfigInfo {
            definition: def.map(key_info),
            value: v,
        });
    }
    let error_count = configs.iter().map(|c| c.value.errors.len()).sum();
    ConfigInfos {
        name: class.to_string(),
        error_count,
        groups,
        configs,
    }
}

/// The 400 message for an invalid config.
pub fn invalid_message(infos: &ConfigInfos) -> String {
    let errors: Vec<String> = infos
        .configs
        .iter()
        .flat_map(|c| c.value.errors.iter().cloned())
        .collect();
    let kind = infos.name.rsplit('.').next().unwrap_or(&infos.name);
    format!(
        "Connector configuration is invalid and contains the following {} error(s):\n{}\nYou can also find the above list of errors at the endpoint `/connector-plugins/{kind}/config/validate`",
        errors.len(),
        errors.join("\n")
    )
}
