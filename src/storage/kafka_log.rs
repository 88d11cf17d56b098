//! `KafkaLog`: the one primitive behind the three internal topics (Java's
//! `KafkaBasedLog`).
//!
//! A log is a producer plus a group-less consumer that is assigned every
//! partition of one topic from the beginning and keeps tailing it. Each record
//! read is handed to the owner's `apply` callback, in partition order. Because
//! every worker reads every record, the in-memory views built by `apply` are
//! the same on every worker once each has read to the end.
//!
//! "Read to end" is the barrier the herder uses before acting: it fetches the
//! end offsets of all partitions and waits until the reader has consumed up to
//! them. A write is acknowledged by the broker before `send` returns, so a
//! write followed by `read_to_end` is visible in the local view.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::producer::{settled, AckContext, AckedProducer, Outgoing};

/// How long a write may wait for room in the producer's queue.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// One record of an internal topic as the reader sees it.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("creating a Kafka client for topic {topic}: {source}")]
    Client { topic: String, source: KafkaError },
    #[error("reading metadata of topic {topic}: {source}")]
    Metadata { topic: String, source: KafkaError },
    #[error("topic {topic} does not exist")]
    NoSuchTopic { topic: String },
    #[error("writing to topic {topic}: {source}")]
    Write { topic: String, source: KafkaError },
    #[error("reading topic {topic} to its end timed out after {timeout:?}")]
    ReadTimeout { topic: String, timeout: Duration },
    #[error("starting the reader thread of topic {topic}: {source}")]
    Thread {
        topic: String,
        source: std::io::Error,
    },
    #[error("the reader of topic {topic} has stopped")]
    Stopped { topic: String },
}

/// librdkafka settings for a log's producer and consumer (each gets only the
/// keys meant for its kind of client).
#[derive(Debug, Clone, Default)]
pub struct LogClients {
    pub producer: BTreeMap<String, String>,
    pub consumer: BTreeMap<String, String>,
}

/// A producer plus a tailing reader of one topic.
pub struct KafkaLog {
    topic: String,
    producer: AckedProducer,
    consumer: Arc<BaseConsumer>,
    partitions: Vec<i32>,
    /// Next offset to read per partition, published by the reader thread.
    positions: watch::Receiver<BTreeMap<i32, i64>>,
    cancel: CancellationToken,
}

/// Client settings shared by the producer and the consumer of a log.
pub fn base_client_config(settings: &BTreeMap<String, String>) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    for (k, v) in settings {
        cfg.set(k, v);
    }
    cfg
}

impl KafkaLog {
    /// Starts reading `topic` from the beginning, calling `apply` for each record.
    ///
    /// `apply` runs on a dedicated blocking reader thread; it must be quick
    /// (update an in-memory view and notify).
    pub fn start(
        clients: &LogClients,
        client_id: &str,
        topic: &str,
        mut apply: impl FnMut(LogRecord) + Send + 'static,
        cancel: CancellationToken,
    ) -> Result<KafkaLog, LogError> {
        let err = |source| LogError::Client {
            topic: topic.to_string(),
            source,
        };
        let mut pcfg = base_client_config(&clients.producer);
        pcfg.set("client.id", client_id)
            // Internal records must land where Java puts them (murmur2 of the
            // key) or compaction and last-write-wins break on shared topics.
            .set("partitioner", "murmur2_random")
            .set("acks", "all")
            .set("enable.idempotence", "false")
            .set("linger.ms", "0");
        let producer: AckedProducer = pcfg.create_with_context(AckContext).map_err(err)?;

        let mut ccfg = base_client_config(&clients.consumer);
        ccfg.set("client.id", client_id)
            .set("group.id", format!("{client_id}-reader"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "50");
        let consumer: Arc<BaseConsumer> = Arc::new(ccfg.create().map_err(err)?);

        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .map_err(|source| LogError::Metadata {
                topic: topic.to_string(),
                source,
            })?;
        let partitions: Vec<i32> = md
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(LogError::NoSuchTopic {
                topic: topic.to_string(),
            });
        }
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)
                .map_err(err)?;
        }
        consumer.assign(&tpl).map_err(err)?;

        let (pos_tx, positions) = watch::channel(BTreeMap::new());
        let reader = Arc::clone(&consumer);
        let stop = cancel.clone();
        let topic_name = topic.to_string();
        // librdkafka's poll blocks a thread; a dedicated thread keeps the tokio
        // workers free and lets `apply` stay synchronous.
        std::thread::Builder::new()
            .name(format!("log-{topic}"))
            .spawn(move || {
                while !stop.is_cancelled() {
                    match reader.poll(Duration::from_millis(100)) {
                        None => {}
                        Some(Ok(m)) => {
                            let rec = LogRecord {
                                partition: m.partition(),
                                offset: m.offset(),
                                key: m.key().map(<[u8]>::to_vec),
                                value: m.payload().map(<[u8]>::to_vec),
                            };
                            let (p, next) = (rec.partition, rec.offset + 1);
                            apply(rec);
                            pos_tx.send_modify(|pos| {
                                pos.insert(p, next);
                            });
                        }
                        Some(Err(e)) => {
                            tracing::warn!(topic = %topic_name, error = %e, "error reading internal topic; retrying");
                        }
                    }
                }
            })
            .map_err(|source| LogError::Thread {
                topic: topic.to_string(),
                source,
            })?;

        Ok(KafkaLog {
            topic: topic.to_string(),
            producer,
            consumer,
            partitions,
            positions,
            cancel,
        })
    }

    /// Writes one record and waits for the broker's acknowledgement.
    pub async fn send(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<(), LogError> {
        let record = Outgoing {
            key,
            payload: value,
            ..Outgoing::default()
        };
        let ack = self
            .producer
            .enqueue(&self.topic, record, SEND_TIMEOUT)
            .await
            .map_err(|e| self.write_error(e))?;
        settled(ack).await.map_err(|e| self.write_error(e))
    }

    /// Writes several records in order and waits until all are acknowledged.
    pub async fn send_all(&self, records: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), LogError> {
        let mut pending = Vec::with_capacity(records.len());
        for (k, v) in records {
            let record = Outgoing {
                key: Some(k),
                payload: v.as_deref(),
                ..Outgoing::default()
            };
            let ack = self
                .producer
                .enqueue(&self.topic, record, SEND_TIMEOUT)
                .await
                .map_err(|e| self.write_error(e))?;
            pending.push(ack);
        }
        for ack in pending {
            settled(ack).await.map_err(|e| self.write_error(e))?;
        }
        Ok(())
    }

    fn write_error(&self, source: KafkaError) -> LogError {
        let topic = self.topic.clone();
        match source {
            // The producer went away before reporting the record.
            KafkaError::Canceled => LogError::Stopped { topic },
            source => LogError::Write { topic, source },
        }
    }

    /// Waits until every record written before this call has been applied.
    pub async fn read_to_end(&self, timeout: Duration) -> Result<(), LogError> {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.topic.clone();
        let parts = self.partitions.clone();
        // One ListOffsets request for all partitions. Asking partition by
        // partition (`fetch_watermarks`) cost a round trip each, and each
        // waited behind the reader's long-poll Fetch on the same broker
        // connection (fetch.wait.max.ms): ~50 ms x 25 partitions of the
        // offsets topic = 1.3 s per read, several reads per task start.
        let ends = tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            for p in &parts {
                tpl.add_partition_offset(&topic, *p, Offset::End)?;
            }
            let found = consumer.offsets_for_times(tpl, Duration::from_secs(30))?;
            found
                .elements()
                .iter()
                .map(|e| {
                    e.error()?;
                    match e.offset() {
                        Offset::Offset(end) => Ok((e.partition(), end)),
                        // No offset for "latest" only happens on an empty partition.
                        _ => Ok((e.partition(), 0)),
                    }
                })
                .collect::<Result<BTreeMap<i32, i64>, KafkaError>>()
        })
        .await
        .map_err(|_| LogError::Stopped {
            topic: self.topic.clone(),
        })?
        .map_err(|source| LogError::Metadata {
            topic: self.topic.clone(),
            source,
        })?;

        let mut rx = self.positions.clone();
        let reached = |pos: &BTreeMap<i32, i64>| {
            ends.iter()
                .all(|(p, end)| *end == 0 || pos.get(p).copied().unwrap_or(0) >= *end)
        };
        let wait = async {
            loop {
                if reached(&rx.borrow_and_update()) {
                    return Ok(());
                }
                if rx.changed().await.is_err() {
                    return Err(LogError::Stopped {
                        topic: self.topic.clone(),
                    });
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| LogError::ReadTimeout {
                topic: self.topic.clone(),
                timeout,
            })?
    }

    /// Stops the reader thread.
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Against a real broker (`KAFKA_BOOTSTRAP`; the tests fail without it).
#[cfg(test)]
mod broker_tests {
    use super::*;
    use rdkafka::admin::AdminClient;
    use rdkafka::client::DefaultClientContext;
    use std::sync::Mutex;

    fn clients() -> LogClients {
        let bootstrap = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| {
            panic!("KAFKA_BOOTSTRAP is not set: run `eval \"$(scripts/dev-env.sh up)\"` first")
        });
        let mut m = BTreeMap::new();
        m.insert("bootstrap.servers".to_string(), bootstrap);
        LogClients {
            producer: m.clone(),
            consumer: m,
        }
    }

    async fn topic(partitions: i32) -> String {
        let name = format!(
            "kafka-log-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        let admin: AdminClient<DefaultClientContext> =
            base_client_config(&clients().producer).create().unwrap();
        crate::storage::topics::create_if_missing(&admin, &name, Some(partitions), Some(1), &[])
            .await
            .unwrap();
        name
    }

    /// Read-your-writes over a many-partition topic (the offsets topic has
    /// 25): every record sent before `read_to_end` is applied when it
    /// returns, including partitions that stay empty.
    #[tokio::test]
    async fn read_to_end_sees_every_write_on_every_partition() {
        let topic = topic(25).await;
        type Seen = Arc<Mutex<Vec<(i32, Vec<u8>)>>>;
        let seen: Seen = Arc::default();
        let sink = Arc::clone(&seen);
        let log = KafkaLog::start(
            &clients(),
            "kafka-log-test",
            &topic,
            move |r| {
                sink.lock()
                    .unwrap()
                    .push((r.partition, r.key.unwrap_or_default()))
            },
            CancellationToken::new(),
        )
        .unwrap();
        // An empty topic is "at its end" at once.
        log.read_to_end(Duration::from_secs(30)).await.unwrap();
        assert!(seen.lock().unwrap().is_empty());
        for round in 0..3 {
            for i in 0..10 {
                let key = format!("k{round}-{i}");
                log.send(Some(key.as_bytes()), Some(b"v")).await.unwrap();
            }
            log.read_to_end(Duration::from_secs(30)).await.unwrap();
            let got = seen.lock().unwrap();
            assert_eq!(got.len(), (round + 1) * 10, "after round {round}");
            let last = format!("k{round}-9");
            assert!(got.iter().any(|(_, k)| k == last.as_bytes()));
        }
        let partitions: std::collections::HashSet<i32> =
            seen.lock().unwrap().iter().map(|(p, _)| *p).collect();
        assert!(partitions.len() > 1, "keys should spread over partitions");
    }
}
