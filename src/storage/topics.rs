//! Creating and checking the internal topics at start-up (contract §2.1).
//!
//! The worker refuses to start on an internal topic that is not compacted, or
//! on a config topic with more than one partition: both would silently lose
//! connector configs or offsets later, which is worse than not starting.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::kafka_log::base_client_config;

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("creating an admin client: {0}")]
    Client(KafkaError),
    #[error("describing topic {topic}: {source}")]
    Describe { topic: String, source: KafkaError },
    #[error("creating topic {topic}: {source}")]
    Create { topic: String, source: KafkaError },
    #[error("internal topic '{topic}' (set by {key}) has cleanup.policy={policy}, but it must be 'compact' or the worker would lose data once old segments are deleted; change the topic's cleanup.policy to compact or point {key} at another topic")]
    NotCompacted {
        topic: String,
        key: String,
        policy: String,
    },
    #[error("config topic '{topic}' has {partitions} partitions, but it must have exactly 1 so that config records stay totally ordered; point config.storage.topic at a topic with one partition")]
    ConfigTopicPartitions { topic: String, partitions: usize },
}

/// What an internal topic must look like.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    /// The worker key that names it, for error messages.
    pub key: String,
    /// -1 means the broker default.
    pub partitions: i32,
    pub replication_factor: i32,
    /// Extra topic configs (`<prefix>.*` settings); cleanup.policy is forced.
    pub configs: BTreeMap<String, String>,
    pub compacted: bool,
    pub single_partition: bool,
}

pub fn admin(
    client: &BTreeMap<String, String>,
) -> Result<AdminClient<DefaultClientContext>, TopicError> {
    base_client_config(client)
        .create()
        .map_err(TopicError::Client)
}

/// Number of partitions of `topic`, or `None` if it does not exist.
pub fn partition_count(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<Option<usize>, TopicError> {
    // Ask for all topics: a metadata request naming a missing topic would
    // auto-create it with the broker's defaults (not compacted) on brokers
    // with auto.create.topics.enable.
    let md = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(30))
        .map_err(|source| TopicError::Describe {
            topic: topic.to_string(),
            source,
        })?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().len()))
}

/// Creates the topic if it is missing and checks it if it exists.
pub async fn ensure_topic(
    admin: &AdminClient<DefaultClientContext>,
    spec: &TopicSpec,
) -> Result<(), TopicError> {
    let existing = partition_count(admin, &spec.name)?;
    let partitions = match existing {
        Some(n) => n,
        None => {
            let mut configs: Vec<(String, String)> = spec
                .configs
                .iter()
                .filter(|(k, _)| k.as_str() != "cleanup.policy")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if spec.compacted {
                configs.push(("cleanup.policy".into(), "compact".into()));
            }
            let rf = i16::try_from(spec.replication_factor).ok();
            create_if_missing(admin, &spec.name, Some(spec.partitions), rf, &configs).await?;
            partition_count(admin, &spec.name)?.unwrap_or(0)
        }
    };
    if spec.single_partition && partitions > 1 {
        return Err(TopicError::ConfigTopicPartitions {
            topic: spec.name.clone(),
            partitions,
        });
    }
    if spec.compacted {
        check_compacted(admin, spec).await?;
    }
    Ok(())
}

async fn check_compacted(
    admin: &AdminClient<DefaultClientContext>,
    spec: &TopicSpec,
) -> Result<(), TopicError> {
    let res = admin
        .describe_configs(
            &[ResourceSpecifier::Topic(&spec.name)],
            &AdminOptions::new(),
        )
        .await
        .map_err(|source| TopicError::Describe {
            topic: spec.name.clone(),
            source,
        })?;
    for r in res {
        // Java skips the check when the policy cannot be described; so do we.
        let Ok(resource) = r else { continue };
        if let Some(entry) = resource.get("cleanup.policy") {
            let policy = entry.value.clone().unwrap_or_default();
            let parts: Vec<&str> = policy.split(',').map(str::trim).collect();
            if parts != ["compact"] {
                return Err(TopicError::NotCompacted {
                    topic: spec.name.clone(),
                    key: spec.key.clone(),
                    policy,
                });
            }
        }
    }
    Ok(())
}

/// Creates a topic for a connector (a sink's dead letter queue, or a topic a
/// sink task asks for) unless it exists; an existing topic is left exactly
/// as it is. `None` partitions or replication factor mean the broker's
/// defaults (KIP-464). Configs are passed through unchanged, so a caller can
/// ask for `cleanup.policy=delete` or `compact` explicitly.
pub async fn create_if_missing(
    admin: &AdminClient<DefaultClientContext>,
    name: &str,
    partitions: Option<i32>,
    replication_factor: Option<i16>,
    configs: &[(String, String)],
) -> Result<(), TopicError> {
    if partition_count(admin, name)?.is_some() {
        return Ok(());
    }
    let mut nt = NewTopic::new(
        name,
        partitions.unwrap_or(-1),
        TopicReplication::Fixed(replication_factor.map_or(-1, i32::from)),
    );
    for (k, v) in configs {
        nt = nt.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&[nt], &opts)
        .await
        .map_err(|source| TopicError::Create {
            topic: name.to_string(),
            source,
        })?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(TopicError::Create {
                    topic: name.to_string(),
                    source: KafkaError::AdminOp(code),
                })
            }
        }
    }
    tracing::info!(topic = %name, "created topic");
    // Metadata propagation is asynchronous; wait until the topic is visible
    // so that a producer's first send does not race it.
    for _ in 0..100 {
        if partition_count(admin, name)?.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
