//! The static plugin registry.
//!
//! Plugins are compiled in. Each is found by the Java class name users
//! already paste into configs (e.g. `org.apache.kafka.connect.json.JsonConverter`),
//! by its simple name, or by an alias; for connectors also by the simple name
//! without the `Connector` suffix, as the Java worker allows.

pub mod file_sink;
pub mod verifiable;

use std::sync::OnceLock;

use connect_api::plugin::{
    ConnectorPlugin, ConverterPlugin, HeaderConverterPlugin, PredicatePlugin, TransformPlugin,
};
use connect_api::{Converter, HeaderConverter};

/// Every plugin this build knows.
pub struct Plugins {
    pub connectors: Vec<ConnectorPlugin>,
    pub converters: Vec<ConverterPlugin>,
    pub header_converters: Vec<HeaderConverterPlugin>,
    pub transforms: Vec<TransformPlugin>,
    pub predicates: Vec<PredicatePlugin>,
}

/// The version every built-in plugin reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn simple_name(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

fn matches(class: &str, aliases: &[&str], name: &str) -> bool {
    class == name || simple_name(class) == name || aliases.contains(&name)
}

impl Plugins {
    /// The registry of this build.
    pub fn get() -> &'static Plugins {
        static PLUGINS: OnceLock<Plugins> = OnceLock::new();
        PLUGINS.get_or_init(|| Plugins {
            connectors: vec![
                file_sink::plugin(),
                verifiable::plugin(),
                connect_mongodb::plugin(),
                connect_normalizer::plugin(),
            ],
            converters: connect_converters::converter_plugins(),
            header_converters: connect_converters::header_converter_plugins(),
            transforms: connect_transforms::transform_plugins(),
            predicates: connect_transforms::predicate_plugins(),
        })
    }

    pub fn connector(&self, name: &str) -> Option<&ConnectorPlugin> {
        self.connectors.iter().find(|p| {
            matches(p.class, p.aliases, name)
                || simple_name(p.class).strip_suffix("Connector") == Some(name)
        })
    }

    pub fn connector_by_task_class(&self, task_class: &str) -> Option<&ConnectorPlugin> {
        self.connectors.iter().find(|p| p.task_class == task_class)
    }

    pub fn converter(&self, name: &str) -> Option<Box<dyn Converter>> {
        self.converters
            .iter()
            .find(|p| matches(p.class, p.aliases, name))
            .map(|p| (p.new)())
    }

    pub fn header_converter(&self, name: &str) -> Option<Box<dyn HeaderConverter>> {
        if let Some(p) = self
            .header_converters
            .iter()
            .find(|p| matches(p.class, p.aliases, name))
        {
            return Some((p.new)());
        }
        self.converters
            .iter()
            .find(|p| matches(p.class, p.aliases, name))
            .and_then(|p| p.new_header.map(|f| f()))
    }

    pub fn transform(&self, name: &str) -> Option<&TransformPlugin> {
        self.transforms
            .iter()
            .find(|p| matches(p.class, p.aliases, name))
    }

    pub fn predicate(&self, name: &str) -> Option<&PredicatePlugin> {
        self.predicates
            .iter()
            .find(|p| matches(p.class, p.aliases, name))
    }

    /// Connector class names, for the "available connectors are" message.
    pub fn connector_classes(&self) -> Vec<&'static str> {
        self.connectors.iter().map(|p| p.class).collect()
    }
}
