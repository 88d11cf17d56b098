//! The transform chain of a connector: `transforms=a,b` with
//! `transforms.<a>.type`, optional `transforms.<a>.predicate` and
//! `transforms.<a>.negate`, and `predicates=p` with `predicates.<p>.type`.

use connect_api::config::{originals_with_prefix, ConfigType, Default as Dflt, Importance, Props};
use connect_api::error::{ConnectError, ConnectResult};
use connect_api::record::{ConnectRecord, SinkRecord};
use connect_api::{ConfigDef, Predicate, Transform};

use crate::plugins::Plugins;

struct Step {
    alias: String,
    /// The configured class, named in dead-letter-queue context headers.
    class: String,
    transform: Box<dyn Transform>,
    predicate: Option<(Box<dyn Predicate>, bool)>,
}

/// Configured transforms, applied in order.
#[derive(Default)]
pub struct TransformChain {
    steps: Vec<Step>,
}

fn list(props: &Props, key: &str) -> Vec<String> {
    props
        .get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the transform and predicate aliases of a connector config and
/// returns the extra ConfigDef (per-alias keys, for validation output) and
/// every problem found.
pub fn validate(props: &Props, plugins: &Plugins) -> (ConfigDef, Vec<(String, String)>) {
    let mut def = ConfigDef::new()
        .key(
            "transforms",
            ConfigType::List,
            Dflt::Value(String::new()),
            Importance::Low,
            "Aliases of the transformations to apply to records, in order.",
        )
        .key(
            "predicates",
            ConfigType::List,
            Dflt::Value(String::new()),
            Importance::Low,
            "Aliases of the predicates that transformations may refer to.",
        );
    let mut errors = Vec::new();
    let transforms = list(props, "transforms");
    let predicates = list(props, "predicates");
    for (i, a) in transforms.iter().enumerate() {
        if transforms[..i].contains(a) {
            errors.push((
                "transforms".into(),
                format!(
                    "Invalid value {} for configuration transforms: Duplicate alias provided.",
                    props.get("transforms").cloned().unwrap_or_default()
                ),
            ));
        }
    }
    for alias in &transforms {
        let type_key = format!("transforms.{alias}.type");
        match props.get(&type_key) {
            None => errors.push((type_key.clone(), format!("Missing required configuration \"{type_key}\" which has no default value."))),
            Some(class) => match plugins.transform(class) {
                None => errors.push((type_key.clone(), format!("Invalid value {class} for configuration {type_key}: Class {class} could not be found."))),
                Some(p) => {
                    let mut t = (p.new)();
                    let group = format!("Transforms: {alias}");
                    def = def.merge(&t.config_def().embed(&format!("transforms.{alias}."), &group));
                    if let Err(e) = t.configure(&originals_with_prefix(props, &format!("transforms.{alias}."))) {
                        errors.push((type_key.clone(), e.to_string()));
                    }
                }
            },
        }
        if let Some(pred) = props.get(&format!("transforms.{alias}.predicate")) {
            if !predicates.contains(pred) {
                let key = format!("transforms.{alias}.predicate");
                errors.push((key.clone(), format!("Invalid value {pred} for configuration {key}: There is no predicate with alias '{pred}'")));
            }
        }
    }
    for alias in &predicates {
        let type_key = format!("predicates.{alias}.type");
        match props.get(&type_key) {
            None => errors.push((type_key.clone(), format!("Missing required configuration \"{type_key}\" which has no default value."))),
            Some(class) => match plugins.predicate(class) {
                None => errors.push((type_key.clone(), format!("Invalid value {class} for configuration {type_key}: Class {class} could not be found."))),
                Some(p) => {
                    let mut pr = (p.new)();
                    let group = format!("Predicates: {alias}");
                    def = def.merge(&pr.config_def().embed(&format!("predicates.{alias}."), &group));
                    if let Err(e) = pr.configure(&originals_with_prefix(props, &format!("predicates.{alias}."))) {
                        errors.push((type_key.clone(), e.to_string()));
                    }
                }
            },
        }
    }
    (def, errors)
}

impl TransformChain {
    /// Builds the chain from a connector config.
    pub fn from_config(props: &Props, plugins: &Plugins) -> ConnectResult<TransformChain> {
        let mut steps = Vec::new();
        for alias in list(props, "transforms") {
            let prefix = format!("transforms.{alias}.");
            let class = props.get(&format!("{prefix}type")).ok_or_else(|| {
                ConnectError::fatal(format!(
                    "Missing required configuration \"{prefix}type\" which has no default value."
                ))
            })?;
            let plugin = plugins.transform(class).ok_or_else(|| {
                ConnectError::fatal(format!("Invalid value {class} for configuration {prefix}type: Class {class} could not be found."))
            })?;
            let mut transform = (plugin.new)();
            transform.configure(&originals_with_prefix(props, &prefix))?;
            let predicate = match props.get(&format!("{prefix}predicate")) {
                None => None,
                Some(p) => {
                    let pprefix = format!("predicates.{p}.");
                    let pclass = props.get(&format!("{pprefix}type")).ok_or_else(|| {
                        ConnectError::fatal(format!(
                            "There is no predicate with alias '{p}' (transform '{alias}')"
                        ))
                    })?;
                    let pplugin = plugins.predicate(pclass).ok_or_else(|| {
                        ConnectError::fatal(format!("Invalid value {pclass} for configuration {pprefix}type: Class {pclass} could not be found."))
                    })?;
                    let mut pred = (pplugin.new)();
                    pred.configure(&originals_with_prefix(props, &pprefix))?;
                    let negate = props
                        .get(&format!("{prefix}negate"))
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
                    Some((pred, negate))
                }
            };
            steps.push(Step {
                alias,
                class: class.clone(),
                transform,
                predicate,
            });
        }
        Ok(TransformChain { steps })
    }

    /// Applies every step to a record bound for a sink task (through
    /// [`Transform::apply_sink`], so sink-aware transforms see the Kafka
    /// offset). On failure the error comes with the failing step's class.
    pub fn apply_sink(
        &self,
        mut record: SinkRecord,
    ) -> Result<Option<SinkRecord>, (String, ConnectError)> {
        for step in &self.steps {
            if let Some((pred, negate)) = &step.predicate {
                if pred.test(&record.record) == *negate {
                    continue;
                }
            }
            match step.transform.apply_sink(record) {
                Ok(Some(r)) => record = r,
                Ok(None) => return Ok(None),
                Err(e) => {
                    let e = match e {
                        ConnectError::Retriable(m) => ConnectError::Retriable(m),
                        other => ConnectError::data(format!(
                            "transform '{}' failed: {other}",
                            step.alias
                        )),
                    };
                    return Err((step.class.clone(), e));
                }
            }
        }
        Ok(Some(record))
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Applies every step; `Ok(None)` means a transform dropped the record.
    pub fn apply(&self, mut record: ConnectRecord) -> ConnectResult<Option<ConnectRecord>> {
        for step in &self.steps {
            if let Some((pred, negate)) = &step.predicate {
                if pred.test(&record) == *negate {
                    continue;
                }
            }
            match step.transform.apply(record) {
                Ok(Some(r)) => record = r,
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(match e {
                        ConnectError::Retriable(m) => ConnectError::Retriable(m),
                        other => ConnectError::data(format!(
                            "transform '{}' failed: {other}",
                            step.alias
                        )),
                    })
                }
            }
        }
        Ok(Some(record))
    }
}
