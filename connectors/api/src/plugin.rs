//! Plugin descriptors. The worker's registry is a static list of these, keyed
//! by the Java class names users already paste into configs, plus aliases.

use crate::connector::{Connector, ConnectorKind, SinkTask, SourceTask};
use crate::convert::{Converter, HeaderConverter};
use crate::transform::{Predicate, Transform};

/// Creates a task instance of a connector.
#[derive(Clone, Copy)]
pub enum TaskFactory {
    Source(fn() -> Box<dyn SourceTask>),
    Sink(fn() -> Box<dyn SinkTask>),
}

/// A connector plugin.
#[derive(Clone, Copy)]
pub struct ConnectorPlugin {
    pub class: &'static str,
    pub aliases: &'static [&'static str],
    pub version: &'static str,
    pub kind: ConnectorKind,
    pub new_connector: fn() -> Box<dyn Connector>,
    /// The class name written into task configs as `task.class`.
    pub task_class: &'static str,
    pub new_task: TaskFactory,
    /// Connector-specific progress (e.g. snapshot chunks done/total) for
    /// `GET /connectors/{name}/progress`, by connector name; `None` when the
    /// plugin reports none.
    pub progress: Option<fn(&str) -> Option<serde_json::Value>>,
}

/// A converter plugin.
#[derive(Clone, Copy)]
pub struct ConverterPlugin {
    pub class: &'static str,
    pub aliases: &'static [&'static str],
    pub version: &'static str,
    pub new: fn() -> Box<dyn Converter>,
    /// Some converters are header converters too (String, JSON, ByteArray).
    pub new_header: Option<fn() -> Box<dyn HeaderConverter>>,
}

/// A header-converter-only plugin (e.g. SimpleHeaderConverter).
#[derive(Clone, Copy)]
pub struct HeaderConverterPlugin {
    pub class: &'static str,
    pub aliases: &'static [&'static str],
    pub version: &'static str,
    pub new: fn() -> Box<dyn HeaderConverter>,
}

/// A transform plugin. Key/Value variants are separate plugins, as in Java
/// (`...InsertField$Value`).
#[derive(Clone, Copy)]
pub struct TransformPlugin {
    pub class: &'static str,
    pub aliases: &'static [&'static str],
    pub version: &'static str,
    pub new: fn() -> Box<dyn Transform>,
}

/// A predicate plugin.
#[derive(Clone, Copy)]
pub struct PredicatePlugin {
    pub class: &'static str,
    pub aliases: &'static [&'static str],
    pub version: &'static str,
    pub new: fn() -> Box<dyn Predicate>,
}
