//! Single message transforms and predicates under the Java class names users
//! already configure (`org.apache.kafka.connect.transforms.InsertField$Value`
//! and so on), with short aliases (`InsertField$Value`).
//!
//! Each transform handles schema'd data (structs) and schemaless data (maps),
//! declares the Java config keys and defaults, and fails with the Java error
//! messages for common misuse.

mod cast;
mod extract_field;
mod field_path;
mod filter;
mod hoist_field;
mod insert_field;
mod predicates;
mod regex_router;
mod replace_field;
mod timestamp_router;
mod util;
mod value_to_key;

use connect_api::plugin::{PredicatePlugin, TransformPlugin};
use connect_api::{Predicate, Transform};

pub use cast::Cast;
pub use extract_field::ExtractField;
pub use filter::Filter;
pub use hoist_field::HoistField;
pub use insert_field::InsertField;
pub use predicates::{HasHeaderKey, RecordIsTombstone, TopicNameMatches};
pub use regex_router::RegexRouter;
pub use replace_field::ReplaceField;
pub use timestamp_router::TimestampRouter;
pub use util::Operand;
pub use value_to_key::ValueToKey;

/// The version reported for every plugin of this crate.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Declares a `$Key`/`$Value` pair of plugins for a transform built with `new(Operand)`.
macro_rules! keyed {
    ($ty:ident, $name:literal) => {
        [
            TransformPlugin {
                class: concat!("org.apache.kafka.connect.transforms.", $name, "$Key"),
                aliases: &[concat!($name, "$Key")],
                version: VERSION,
                new: || -> Box<dyn Transform> { Box::new($ty::new(Operand::Key)) },
            },
            TransformPlugin {
                class: concat!("org.apache.kafka.connect.transforms.", $name, "$Value"),
                aliases: &[concat!($name, "$Value")],
                version: VERSION,
                new: || -> Box<dyn Transform> { Box::new($ty::new(Operand::Value)) },
            },
        ]
    };
}

/// Declares a plugin for a transform without variants, built with `Default`.
macro_rules! single {
    ($ty:ident, $name:literal) => {
        TransformPlugin {
            class: concat!("org.apache.kafka.connect.transforms.", $name),
            aliases: &[$name],
            version: VERSION,
            new: || -> Box<dyn Transform> { Box::new($ty::default()) },
        }
    };
}

/// Every transform of this crate.
pub fn transform_plugins() -> Vec<TransformPlugin> {
    let mut plugins = Vec::new();
    plugins.extend(keyed!(Cast, "Cast"));
    plugins.extend(keyed!(ExtractField, "ExtractField"));
    plugins.extend(keyed!(HoistField, "HoistField"));
    plugins.extend(keyed!(InsertField, "InsertField"));
    plugins.extend(keyed!(ReplaceField, "ReplaceField"));
    plugins.push(single!(Filter, "Filter"));
    plugins.push(single!(RegexRouter, "RegexRouter"));
    plugins.push(single!(TimestampRouter, "TimestampRouter"));
    plugins.push(single!(ValueToKey, "ValueToKey"));
    plugins
}

macro_rules! predicate {
    ($ty:ident, $name:literal) => {
        PredicatePlugin {
            class: concat!("org.apache.kafka.connect.transforms.predicates.", $name),
            aliases: &[$name],
            version: VERSION,
            new: || -> Box<dyn Predicate> { Box::new($ty::default()) },
        }
    };
}

/// Every predicate of this crate.
pub fn predicate_plugins() -> Vec<PredicatePlugin> {
    vec![
        predicate!(HasHeaderKey, "HasHeaderKey"),
        predicate!(RecordIsTombstone, "RecordIsTombstone"),
        predicate!(TopicNameMatches, "TopicNameMatches"),
    ]
}

#[cfg(test)]
mod tests;
