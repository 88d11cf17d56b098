//! Publishing inferred versions through the schema registry, so that every
//! writer of a subject — the tasks sharing a collection's chunks, the stream
//! task, a restarted connector — climbs one lattice together.
//!
//! A task that infers a new local version does not register it as it is:
//! other tasks may have registered versions it has not seen, and its own
//! version may then be narrower somewhere (an `int` where the registry holds
//! `long`), which a BACKWARD registry rejects. Instead it reads the
//! subject's latest version, merges its local shape into it
//! ([`DocShape::merge_shape`]: the union, the registered side's names and
//! kinds first), and registers the result — a superset of both, so it reads
//! the latest version's data and represents every document the task has
//! seen. Another writer may register between the read and the write; the
//! registry then rejects the merge (409) if it does not read the newer
//! version, and the task reads again and retries, a bounded number of times.
//!
//! The task then writes with the merged schema. Its converter registers the
//! same text, which the registry answers with the existing id without a
//! compatibility check, so the id in each record is the id of the schema
//! the record was encoded with, even when newer versions exist.

use std::sync::Arc;
use std::time::Duration;

use connect_api::config::Props;
use connect_api::data::SchemaRef;
use connect_converters::avro::data::AvroDataConfig;
use connect_converters::avro::schema as avro_schema;
use connect_converters::avro::SubjectNameStrategy;
use connect_converters::registry::{RegistryClient, RegistryError};

use super::infer::{self, DocShape};

/// How many times a merged version is re-merged after the registry
/// rejected it because another writer registered first.
pub const MAX_ATTEMPTS: u32 = 10;

/// Why a merged version could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error("the latest version of subject \"{subject}\" was not inferred by connectd ({why}); inference continues from the task's own schema")]
    Foreign { subject: String, why: String },
    #[error("the inferred schema has no Avro form: {0}")]
    Avro(String),
    #[error("subject \"{subject}\": gave up after {attempts} attempts to register a merged version while other writers kept registering versions in between; last: {last}")]
    Exhausted {
        subject: String,
        attempts: u32,
        last: String,
    },
    #[error("the schema registry thread failed: {0}")]
    Thread(String),
}

/// One side's (key or value) view of the registry: the subjects its
/// converter writes, and whether to register merged versions there.
#[derive(Debug, Clone)]
pub struct SideRegistry {
    pub client: Arc<RegistryClient>,
    pub data: AvroDataConfig,
    pub strategy: SubjectNameStrategy,
    pub normalize: bool,
    /// Register merged versions (the side's converter is the AvroConverter
    /// with `auto.register.schemas`); otherwise only read the latest one.
    pub register: bool,
}

impl SideRegistry {
    /// The subject of a record of `topic` whose schema is named `record`.
    pub fn subject(&self, topic: &str, is_key: bool, record: &str) -> String {
        self.strategy.subject(topic, is_key, record)
    }
}

/// The converter setting `key` of one side (`key.converter.` /
/// `value.converter.`).
pub fn converter_prop<'a>(props: &'a Props, side: &str, key: &str) -> Option<&'a str> {
    props
        .get(&format!("{side}.converter.{key}"))
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
}

/// Settings of one side beyond the client: `(data, strategy, normalize,
/// register)`, read like the AvroConverter reads them. `explicit_url` says
/// the registry was named by the connector's own config.
pub fn side_settings(
    props: &Props,
    side: &str,
    explicit_url: bool,
) -> Result<(AvroDataConfig, SubjectNameStrategy, bool, bool), (String, String)> {
    let flag = |key: &str, default: bool| {
        converter_prop(props, side, key)
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(default)
    };
    let strategy_key = format!("{side}.converter.{side}.subject.name.strategy");
    let strategy = match props.get(&strategy_key).map(|s| s.trim()) {
        None | Some("") => SubjectNameStrategy::TopicName,
        Some(class) => SubjectNameStrategy::from_class(class).ok_or_else(|| {
            (
                strategy_key.clone(),
                format!("unknown subject name strategy {class}; use TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy"),
            )
        })?,
    };
    let data = AvroDataConfig {
        connect_meta_data: flag("connect.meta.data", true),
        enhanced_schema_support: flag("enhanced.avro.schema.support", false),
    };
    // Only an AvroConverter registers what we register; a converter set at
    // the worker level is not visible here, so a registry URL given to the
    // connector stands for it.
    let avro = match props.get(&format!("{side}.converter")) {
        Some(c) => c.contains("AvroConverter"),
        None => explicit_url,
    };
    let register =
        avro && flag("auto.register.schemas", true) && !flag("use.latest.version", false);
    Ok((data, strategy, flag("normalize.schemas", false), register))
}

/// Which registered Connect schema holds the document: the schema itself,
/// or its `fullDocument` field (the change-event envelope).
#[derive(Debug, Clone, Copy)]
pub enum Layout {
    Document,
    Envelope,
}

/// A merged version to publish from a task's local shape.
pub struct Publish {
    pub registry: SideRegistry,
    pub subject: String,
    pub local: DocShape,
    pub layout: Layout,
    /// The Connect schema the converter derives the registered text from.
    pub schema_of: fn(&DocShape, Layout) -> SchemaRef,
}

impl Publish {
    /// Merges and registers on a thread of its own: records are built in
    /// synchronous code that may run on a runtime worker, where blocking on
    /// a future would stall (or, on a current-thread runtime, deadlock).
    /// Returns the shape to write with.
    pub fn run_blocking(self) -> Result<DocShape, PublishError> {
        std::thread::Builder::new()
            .name("schema-publish".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| PublishError::Thread(e.to_string()))?;
                rt.block_on(self.run())
            })
            .map_err(|e| PublishError::Thread(e.to_string()))?
            .join()
            .unwrap_or_else(|_| Err(PublishError::Thread("it panicked".into())))
    }

    async fn run(self) -> Result<DocShape, PublishError> {
        let client = &self.registry.client;
        let mut local = self.local.clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let latest = match client.latest_uncached(&self.subject).await {
                Ok(l) => Some(l),
                Err(e) if e.status() == Some(404) => None,
                Err(e) => return Err(e.into()),
            };
            let read_version = latest.as_ref().map_or(0, |l| l.version);
            let merged = match &latest {
                None => local.clone(),
                Some(l) => {
                    let mut registered = self.shape_of(&l.schema)?;
                    registered.merge_shape(&local);
                    registered
                }
            };
            if !self.registry.register {
                return Ok(merged);
            }
            let text: Arc<str> = Arc::from(
                self.registry
                    .data
                    .from_connect_schema(&(self.schema_of)(&merged, self.layout))
                    .map_err(|e| PublishError::Avro(e.to_string()))?
                    .to_json_string(),
            );
            let retry_why = match client
                .register(&self.subject, &text, self.registry.normalize)
                .await
            {
                Ok(_) => {
                    // Versions registered between our read and our write
                    // passed the registry's check against their own
                    // predecessors, not against ours: ours may lack one of
                    // their fields (dropping an optional field is BACKWARD
                    // compatible). Fold them in and register again, so the
                    // latest version always holds every writer's fields.
                    let missed = self.missed_versions(&text, read_version).await?;
                    let mut grown = merged.clone();
                    let mut changed = false;
                    for shape in &missed {
                        changed |= grown.merge_shape(shape);
                    }
                    if changed {
                        local = grown;
                        format!(
                            "{} versions registered meanwhile hold fields the merge lacks",
                            missed.len()
                        )
                    } else {
                        // The registry answers a text it already holds with
                        // that older version's id, registering nothing, so
                        // a newer version without our fields may still be
                        // the latest (seen in CI with eight concurrent
                        // writers). Return only once the latest holds them.
                        let latest = client.latest_uncached(&self.subject).await?;
                        let mut latest_shape = self.shape_of(&latest.schema)?;
                        if !latest_shape.merge_shape(&merged) {
                            return Ok(merged);
                        }
                        local = merged;
                        format!(
                            "the latest version (v{}) lacks fields of this writer",
                            latest.version
                        )
                    }
                }
                // 409: incompatible with a version registered after our read.
                Err(e) if e.status() == Some(409) => e.to_string(),
                Err(e) => return Err(e.into()),
            };
            if attempt >= MAX_ATTEMPTS {
                return Err(PublishError::Exhausted {
                    subject: self.subject.clone(),
                    attempts: attempt,
                    last: retry_why,
                });
            }
            tracing::info!(
                subject = %self.subject,
                attempt,
                "another writer registered a version first ({retry_why}); merging with it again"
            );
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    fn shape_of(&self, text: &str) -> Result<DocShape, PublishError> {
        registered_shape(text, self.layout).map_err(|why| PublishError::Foreign {
            subject: self.subject.clone(),
            why,
        })
    }

    /// The shapes of the versions registered after `read_version` and
    /// before our schema `text` (none when ours came right after it, or
    /// when it was already registered).
    async fn missed_versions(
        &self,
        text: &Arc<str>,
        read_version: i32,
    ) -> Result<Vec<DocShape>, PublishError> {
        let client = &self.registry.client;
        let (_, mine) = client
            .lookup(&self.subject, text, self.registry.normalize)
            .await?;
        let mut shapes = Vec::new();
        for v in (read_version + 1)..mine {
            match client.subject_version(&self.subject, v).await {
                Ok(l) => shapes.push(self.shape_of(&l.schema)?),
                // Deleted meanwhile: nothing to keep.
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(shapes)
    }
}

/// A short, growing, jittered pause, so that tasks racing on one subject
/// spread out instead of colliding again.
fn backoff(attempt: u32) -> Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos() % 50))
        .unwrap_or(0);
    Duration::from_millis(20 * u64::from(attempt.min(10)) + jitter)
}

/// The document shape of a registered schema text.
pub fn registered_shape(text: &str, layout: Layout) -> Result<DocShape, String> {
    let (avro, names) = avro_schema::parse(text).map_err(|e| e.0)?;
    let connect = AvroDataConfig::default()
        .to_connect_schema(&avro, &names, None)
        .map_err(|e| e.to_string())?;
    let doc = match layout {
        Layout::Document => connect.as_ref(),
        Layout::Envelope => connect
            .field("fullDocument")
            .map(|f| f.schema.as_ref())
            .ok_or_else(|| "a change event without fullDocument".to_string())?,
    };
    infer::doc_from_connect(doc).map_err(|e| e.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> Props {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const AVRO: &str = "io.confluent.connect.avro.AvroConverter";

    #[test]
    fn sides_follow_their_converter_settings() {
        let p = props(&[
            ("value.converter", AVRO),
            (
                "value.converter.value.subject.name.strategy",
                "io.confluent.kafka.serializers.subject.RecordNameStrategy",
            ),
            ("value.converter.normalize.schemas", "true"),
            ("value.converter.connect.meta.data", "false"),
            (
                "key.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
        ]);
        let (data, strategy, normalize, register) =
            side_settings(&p, "value", false).expect("valid");
        assert_eq!(strategy, SubjectNameStrategy::RecordName);
        assert!(normalize && register && !data.connect_meta_data);
        // A key converter that is not Avro registers nothing.
        let (_, strategy, _, register) = side_settings(&p, "key", false).expect("valid");
        assert_eq!(strategy, SubjectNameStrategy::TopicName);
        assert!(!register);
        // use.latest.version writes with the registered schema: read only.
        let p = props(&[
            ("value.converter", AVRO),
            ("value.converter.use.latest.version", "true"),
        ]);
        assert!(!side_settings(&p, "value", false).expect("valid").3);
        // No converter on the connector: the worker's, registering only when
        // the connector names the registry itself.
        assert!(side_settings(&props(&[]), "value", true).expect("valid").3);
        assert!(!side_settings(&props(&[]), "value", false).expect("valid").3);
    }

    #[test]
    fn an_unknown_strategy_names_its_key() {
        let p = props(&[("key.converter.key.subject.name.strategy", "Nope")]);
        let (key, message) = side_settings(&p, "key", false).expect_err("invalid");
        assert_eq!(key, "key.converter.key.subject.name.strategy");
        assert!(message.contains("RecordNameStrategy"), "{message}");
    }

    #[test]
    fn subjects_follow_the_strategy() {
        let (data, strategy, normalize, register) = side_settings(
            &props(&[(
                "key.converter.key.subject.name.strategy",
                "TopicRecordNameStrategy",
            )]),
            "key",
            true,
        )
        .expect("valid");
        let client = RegistryClient::new(connect_converters::registry::RegistryClientConfig {
            urls: vec!["http://127.0.0.1:1".into()],
            user_info: None,
            url_credentials: false,
            request_timeout: Duration::from_secs(1),
            cache_capacity: 1,
            ssl: Default::default(),
        })
        .expect("client");
        let r = SideRegistry {
            client: Arc::new(client),
            data,
            strategy,
            normalize,
            register,
        };
        assert_eq!(r.subject("t", true, "io.x.K"), "t-io.x.K");
    }
}
