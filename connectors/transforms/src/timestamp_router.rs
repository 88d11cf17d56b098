//! `TimestampRouter`: renames the topic from a format string with
//! `${topic}` and `${timestamp}` placeholders, the timestamp rendered in UTC
//! with a `java.text.SimpleDateFormat` pattern.

use connect_api::config::{ConfigType, Default as ConfigDefault, Importance};
use connect_api::data::java::DateFormat;
use connect_api::{ConfigDef, ConnectError, ConnectRecord, ConnectResult, Props, Transform};

use crate::util::{describe, parse_config};

const TOPIC_FORMAT: &str = "topic.format";
const TIMESTAMP_FORMAT: &str = "timestamp.format";

/// The timestamp router.
#[derive(Debug)]
pub struct TimestampRouter {
    topic_format: String,
    /// `None` only before `configure` succeeds.
    timestamp_format: Option<DateFormat>,
}

impl Default for TimestampRouter {
    fn default() -> Self {
        TimestampRouter {
            topic_format: "${topic}-${timestamp}".into(),
            timestamp_format: DateFormat::new("yyyyMMdd").ok(),
        }
    }
}

impl TimestampRouter {
    pub fn definition() -> ConfigDef {
        ConfigDef::new()
            .key(TOPIC_FORMAT, ConfigType::String, ConfigDefault::Value("${topic}-${timestamp}".into()), Importance::High, "The new topic name, where <code>${topic}</code> and <code>${timestamp}</code> stand for the original topic and the formatted record timestamp.")
            .key(TIMESTAMP_FORMAT, ConfigType::String, ConfigDefault::Value("yyyyMMdd".into()), Importance::High, "A <code>java.text.SimpleDateFormat</code> pattern for the timestamp, applied in UTC.")
    }
}

impl Transform for TimestampRouter {
    fn configure(&mut self, props: &Props) -> ConnectResult<()> {
        let c = parse_config(&Self::definition(), props)?;
        self.topic_format = c.string(TOPIC_FORMAT).unwrap_or_default().to_string();
        let pattern = c.string(TIMESTAMP_FORMAT).unwrap_or_default();
        // Java only notices a bad pattern on the first record; failing here is earlier and clearer.
        self.timestamp_format = Some(
            DateFormat::new(pattern)
                .map_err(|e| ConnectError::config(TIMESTAMP_FORMAT, pattern, e))?,
        );
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        Self::definition()
    }

    fn apply(&self, mut record: ConnectRecord) -> ConnectResult<Option<ConnectRecord>> {
        let Some(ts) = record.timestamp else {
            return Err(ConnectError::data(format!(
                "Timestamp missing on record: {}",
                describe(&record)
            )));
        };
        let format = self
            .timestamp_format
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("TimestampRouter has no valid timestamp.format"))?;
        let formatted = format.format(ts);
        record.topic = self
            .topic_format
            .replace("${topic}", &record.topic)
            .replace("${timestamp}", &formatted);
        Ok(Some(record))
    }
}
