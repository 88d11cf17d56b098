//! A deterministic test source with the config keys and record shapes of
//! Kafka's `VerifiableSourceConnector`, so that one connector config runs on
//! the Java worker and on connectd and their outputs can be compared.
//!
//! Each task `id` writes to `topic` records with key `id` (int32) and value
//! `seqno` (int64), source partition `{"id": id}` and offset `{"seqno": n}`,
//! resuming after the stored offset, at most `throughput` records per second
//! (negative = unthrottled). Like Java's, it prints one JSON line per record on
//! stdout, which system tests read to verify delivery; unlike Java's, it does
//! not also print a line per acknowledged record. The connectd-only key
//! `verifiable.print=false` turns the printing off (the Java task ignores it).

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use connect_api::config::{ConfigDef, Props};
use connect_api::connector::ConnectorKind;
use connect_api::data::{Schema, SchemaRef, SchemaType, Value};
use connect_api::error::{ConnectError, ConnectResult};
use connect_api::plugin::{ConnectorPlugin, TaskFactory};
use connect_api::record::{ConnectRecord, OffsetMap, SourceRecord};
use connect_api::{Connector, ConnectorContext, SourceTask, SourceTaskContext};
use serde_json::json;

pub const CLASS: &str = "org.apache.kafka.connect.tools.VerifiableSourceConnector";
pub const TASK_CLASS: &str = "org.apache.kafka.connect.tools.VerifiableSourceTask";

pub fn plugin() -> ConnectorPlugin {
    ConnectorPlugin {
        class: CLASS,
        aliases: &[],
        version: super::VERSION,
        kind: ConnectorKind::Source,
        new_connector: || Box::new(VerifiableSourceConnector::default()),
        task_class: TASK_CLASS,
        new_task: TaskFactory::Source(|| Box::new(VerifiableSourceTask::default())),
        progress: None,
    }
}

#[derive(Default)]
pub struct VerifiableSourceConnector {
    props: Props,
}

#[async_trait]
impl Connector for VerifiableSourceConnector {
    fn version(&self) -> &str {
        super::VERSION
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Source
    }
    fn config_def(&self) -> ConfigDef {
        // Java's declares no keys; the task reads `topic`, `throughput` and `id`.
        ConfigDef::new()
    }
    async fn start(&mut self, _ctx: ConnectorContext, props: Props) -> ConnectResult<()> {
        self.props = props;
        Ok(())
    }
    async fn task_configs(&self, max_tasks: usize) -> ConnectResult<Vec<Props>> {
        Ok((0..max_tasks)
            .map(|i| {
                let mut p = self.props.clone();
                p.insert("id".into(), i.to_string());
                p
            })
            .collect())
    }
    async fn stop(&mut self) -> ConnectResult<()> {
        Ok(())
    }
}

pub struct VerifiableSourceTask {
    name: String,
    id: i32,
    topic: String,
    partition: OffsetMap,
    seqno: i64,
    starting_seqno: i64,
    throughput: i64,
    print: bool,
    started: Instant,
    key_schema: SchemaRef,
    value_schema: SchemaRef,
}

impl Default for VerifiableSourceTask {
    fn default() -> Self {
        VerifiableSourceTask {
            name: String::new(),
            id: 0,
            topic: String::new(),
            partition: OffsetMap::new(),
            seqno: 0,
            starting_seqno: 0,
            throughput: -1,
            print: true,
            started: Instant::now(),
            key_schema: Schema::primitive(SchemaType::Int32, false),
            value_schema: Schema::primitive(SchemaType::Int64, false),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[async_trait]
impl SourceTask for VerifiableSourceTask {
    async fn start(&mut self, ctx: SourceTaskContext, props: Props) -> ConnectResult<()> {
        let invalid = || {
            ConnectError::fatal("Invalid VerifiableSourceTask configuration: 'id' and 'throughput' must be integers and 'topic' must be set")
        };
        self.name = props.get("name").cloned().unwrap_or_default();
        self.id = props
            .get("id")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(invalid)?;
        self.topic = props.get("topic").cloned().ok_or_else(invalid)?;
        self.throughput = props
            .get("throughput")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(invalid)?;
        self.print = props
            .get("verifiable.print")
            .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
        self.partition = json!({"id": self.id})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let previous = ctx.offsets.offset(&self.partition).await?;
        self.seqno = previous
            .and_then(|o| o.get("seqno").and_then(serde_json::Value::as_i64))
            .map_or(0, |s| s + 1);
        self.starting_seqno = self.seqno;
        self.started = Instant::now();
        tracing::info!(task = self.id, topic = %self.topic, seqno = self.seqno, "VerifiableSourceTask started");
        Ok(())
    }

    async fn poll(&mut self) -> ConnectResult<Vec<SourceRecord>> {
        if self.throughput == 0 {
            // Java's throttler blocks until stopped at throughput 0.
            std::future::pending::<()>().await;
        }
        if self.throughput > 0 {
            let sent = (self.seqno - self.starting_seqno) as f64;
            let due = self.started + Duration::from_secs_f64(sent / self.throughput as f64);
            let now = Instant::now();
            if due > now + Duration::from_millis(2) {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let time_ms = now_ms();
        if self.print {
            let line = json!({"name": self.name, "task": self.id, "topic": self.topic, "time_ms": time_ms, "seqno": self.seqno});
            let mut out = std::io::stdout().lock();
            // stdout is a best-effort trace; a closed pipe must not fail the task.
            let _ = writeln!(out, "{line}");
        }
        let record = SourceRecord {
            source_partition: self.partition.clone(),
            source_offset: std::iter::once((
                "seqno".to_string(),
                serde_json::Value::from(self.seqno),
            ))
            .collect(),
            record: ConnectRecord {
                topic: self.topic.clone(),
                key_schema: Some(self.key_schema.clone()),
                key: Value::Int32(self.id),
                value_schema: Some(self.value_schema.clone()),
                value: Value::Int64(self.seqno),
                ..Default::default()
            },
        };
        self.seqno += 1;
        Ok(vec![record])
    }

    async fn stop(&mut self) -> ConnectResult<()> {
        Ok(())
    }
}
