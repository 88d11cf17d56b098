//! Apache Kafka's `org.apache.kafka.connect.file.FileStreamSinkConnector`
//! (alias `FileStreamSink`): writes the string form of each record value,
//! one per line, to `file` (standard output when unset), as Java's does.
//!
//! The file is opened for appending, so a restart continues it. Lines are
//! buffered and written in `pre_commit` (and at stop), before the runtime
//! commits the offsets: a committed offset never covers a line that is only
//! in this process's buffer. A full buffer is written early, always whole
//! lines, so a killed worker never leaves half a line for the restarted one
//! to continue.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;

use async_trait::async_trait;
use connect_api::config::{ConfigDef, ConfigType, Default as Dflt, Importance, Props};
use connect_api::connector::ConnectorKind;
use connect_api::data::java::to_java_string;
use connect_api::error::{ConnectError, ConnectResult};
use connect_api::plugin::{ConnectorPlugin, TaskFactory};
use connect_api::record::{OffsetMap, SinkRecord, TopicPartition};
use connect_api::{Connector, ConnectorContext, SinkTask, SinkTaskContext};

pub const CLASS: &str = "org.apache.kafka.connect.file.FileStreamSinkConnector";
pub const TASK_CLASS: &str = "org.apache.kafka.connect.file.FileStreamSinkTask";

pub fn plugin() -> ConnectorPlugin {
    ConnectorPlugin {
        class: CLASS,
        aliases: &["FileStreamSink"],
        version: super::VERSION,
        kind: ConnectorKind::Sink,
        new_connector: || Box::new(FileStreamSinkConnector::default()),
        task_class: TASK_CLASS,
        new_task: TaskFactory::Sink(|| Box::new(FileStreamSinkTask::default())),
        progress: None,
    }
}

fn definition() -> ConfigDef {
    ConfigDef::new().key(
        "file",
        ConfigType::String,
        Dflt::Null,
        Importance::High,
        "Destination filename. If not specified, the standard output will be used",
    )
}

#[derive(Default)]
pub struct FileStreamSinkConnector {
    props: Props,
}

#[async_trait]
impl Connector for FileStreamSinkConnector {
    fn version(&self) -> &str {
        super::VERSION
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Sink
    }
    fn config_def(&self) -> ConfigDef {
        definition()
    }
    async fn start(&mut self, _ctx: ConnectorContext, props: Props) -> ConnectResult<()> {
        self.props = props;
        Ok(())
    }
    /// Every task gets the same config, as in Java.
    async fn task_configs(&self, max_tasks: usize) -> ConnectResult<Vec<Props>> {
        Ok(vec![self.props.clone(); max_tasks])
    }
    async fn stop(&mut self) -> ConnectResult<()> {
        Ok(())
    }
    /// Java's returns true: it keeps no offsets outside Kafka.
    async fn alter_offsets(
        &self,
        _props: &Props,
        _offsets: &[(OffsetMap, Option<OffsetMap>)],
    ) -> ConnectResult<bool> {
        Ok(true)
    }
}

/// Lines buffered before a write (whole lines only).
const BUFFER: usize = 64 * 1024;

#[derive(Default)]
pub struct FileStreamSinkTask {
    filename: Option<String>,
    out: Option<Box<dyn Write + Send>>,
    buf: Vec<u8>,
}

impl FileStreamSinkTask {
    fn flush(&mut self) -> ConnectResult<()> {
        if let Some(out) = self.out.as_mut() {
            let r = out.write_all(&self.buf).and_then(|()| out.flush());
            self.buf.clear();
            r.map_err(|e| {
                ConnectError::fatal(format!(
                    "Couldn't write to {}: {e}",
                    self.filename.as_deref().unwrap_or("stdout")
                ))
            })?;
        }
        Ok(())
    }
}

#[async_trait]
impl SinkTask for FileStreamSinkTask {
    async fn start(&mut self, _ctx: SinkTaskContext, props: Props) -> ConnectResult<()> {
        self.filename = props
            .get("file")
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty());
        let sink: Box<dyn Write + Send> = match &self.filename {
            None => Box::new(std::io::stdout()),
            Some(f) => {
                let file: File = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(f)
                    .map_err(|e| {
                        ConnectError::fatal(format!(
                            "Couldn't find or create file '{f}' for FileStreamSinkTask: {e}"
                        ))
                    })?;
                Box::new(file)
            }
        };
        self.out = Some(sink);
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> ConnectResult<()> {
        if self.out.is_none() {
            return Err(ConnectError::fatal("FileStreamSinkTask is not started"));
        }
        for r in records {
            // Java: PrintStream.println(record.value()), i.e. String.valueOf.
            self.buf
                .extend_from_slice(to_java_string(&r.record.value).as_bytes());
            self.buf.push(b'\n');
            if self.buf.len() >= BUFFER {
                self.flush()?;
            }
        }
        Ok(())
    }

    async fn pre_commit(
        &mut self,
        current: &HashMap<TopicPartition, i64>,
    ) -> ConnectResult<HashMap<TopicPartition, i64>> {
        self.flush()?;
        Ok(current.clone())
    }

    async fn stop(&mut self) -> ConnectResult<()> {
        let r = self.flush();
        self.out = None;
        r
    }
}
