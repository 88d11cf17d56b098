//! `errors.tolerance`, `errors.retry.timeout`, `errors.retry.delay.max.ms`
//! and `errors.log.enable` for conversion and transform failures (Java's
//! `RetryWithToleranceOperator`).
//!
//! Only retriable failures are retried, with exponential backoff capped at the
//! max delay, until the retry timeout. A failure that remains is either
//! tolerated (`all`: the record is skipped and logged, never silently) or
//! fails the task (`none`).

use std::future::Future;
use std::time::{Duration, Instant};

use connect_api::config::{ConfigType, Default as Dflt, Importance, Validator};
use connect_api::error::ConnectError;
use connect_api::{ConfigDef, ConfigKey, ParsedConfig};

/// Where in the pipeline a failure happened, for logs and traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Transformation,
    KeyConverter,
    ValueConverter,
    HeaderConverter,
    Producer,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Transformation => "TRANSFORMATION",
            Stage::KeyConverter => "KEY_CONVERTER",
            Stage::ValueConverter => "VALUE_CONVERTER",
            Stage::HeaderConverter => "HEADER_CONVERTER",
            Stage::Producer => "KAFKA_PRODUCE",
        }
    }
}

/// The error-handling settings of one connector.
#[derive(Debug, Clone)]
pub struct ErrorPolicy {
    pub tolerate_all: bool,
    pub log_enable: bool,
    pub log_include_messages: bool,
    /// `None` = retry forever (`-1`).
    pub retry_timeout: Option<Duration>,
    pub retry_delay_max: Duration,
}

impl std::default::Default for ErrorPolicy {
    fn default() -> Self {
        ErrorPolicy {
            tolerate_all: false,
            log_enable: false,
            log_include_messages: false,
            retry_timeout: Some(Duration::ZERO),
            retry_delay_max: Duration::from_millis(60_000),
        }
    }
}

/// The `errors.*` keys every connector accepts (contract §5.3).
pub fn config_def() -> ConfigDef {
    let group = |k: ConfigKey, order: i32, display: &str| {
        k.group(
            "Error Handling",
            order,
            connect_api::config::Width::Medium,
            display,
        )
    };
    ConfigDef::new()
        .define(group(
            ConfigKey::new("errors.retry.timeout", ConfigType::Long, Dflt::Value("0".into()), Importance::Medium,
                "How long, in milliseconds, a failed operation is retried; 0 means no retries and -1 retries forever.")
                .validator(Validator::at_least(-1.0)),
            1, "Retry Timeout for Errors"))
        .define(group(
            ConfigKey::new("errors.retry.delay.max.ms", ConfigType::Long, Dflt::Value("60000".into()), Importance::Medium,
                "The longest wait, in milliseconds, between two retries of a failed operation.")
                .validator(Validator::at_least(1.0)),
            2, "Maximum Delay Between Retries for Errors"))
        .define(group(
            ConfigKey::new("errors.tolerance", ConfigType::String, Dflt::Value("none".into()), Importance::Medium,
                "Whether a record that fails conversion or transformation fails the task ('none') or is skipped and logged ('all').")
                .validator(Validator::one_of_ignore_case(&["none", "all"])),
            3, "Error Tolerance"))
        .define(group(
            ConfigKey::new("errors.log.enable", ConfigType::Boolean, Dflt::Value("false".into()), Importance::Medium,
                "Log every tolerated failure with the operation and record that caused it."),
            4, "Log Errors"))
        .define(group(
            ConfigKey::new("errors.log.include.messages", ConfigType::Boolean, Dflt::Value("false".into()), Importance::Medium,
                "Include the record's topic, partition and offset (not its content) in error logs."),
            5, "Log Error Details"))
}

impl ErrorPolicy {
    pub fn from_config(c: &ParsedConfig) -> Self {
        let timeout = c.long("errors.retry.timeout").unwrap_or(0);
        ErrorPolicy {
            tolerate_all: c
                .string("errors.tolerance")
                .is_some_and(|s| s.eq_ignore_ascii_case("all")),
            log_enable: c.bool("errors.log.enable").unwrap_or(false),
            log_include_messages: c.bool("errors.log.include.messages").unwrap_or(false),
            retry_timeout: if timeout < 0 {
                None
            } else {
                Some(Duration::from_millis(timeout as u64))
            },
            retry_delay_max: Duration::from_millis(
                c.long("errors.retry.delay.max.ms").unwrap_or(60_000).max(1) as u64,
            ),
        }
    }

    /// Runs `op`, retrying retriable failures. `Ok(None)` means the failure
    /// was tolerated and the record must be skipped. `topic` names the
    /// record's topic in logs (a borrowed name: nothing is formatted on the
    /// success path, which runs for every record).
    pub async fn execute<T, F, Fut>(
        &self,
        stage: Stage,
        topic: &str,
        op: F,
    ) -> Result<Option<T>, ConnectError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ConnectError>>,
    {
        match self.retry(op).await {
            Ok(v) => Ok(Some(v)),
            Err(e) => self.tolerate(stage, topic, e).map(|()| None),
        }
    }

    /// Runs `op`, retrying retriable failures within the retry timeout, and
    /// returns the last failure as it is, for callers that report it
    /// themselves (the sink runtime's dead letter queue needs the error).
    pub async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T, ConnectError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ConnectError>>,
    {
        let start = Instant::now();
        let mut delay = Duration::from_millis(300);
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let may_retry = e.is_retriable()
                        && self
                            .retry_timeout
                            .is_none_or(|t| start.elapsed() + delay <= t);
                    if may_retry {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(self.retry_delay_max);
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Decides a final failure: skip (logged) or fail.
    pub fn tolerate(&self, stage: Stage, topic: &str, e: ConnectError) -> Result<(), ConnectError> {
        if self.tolerate_all {
            if self.log_enable {
                if self.log_include_messages {
                    tracing::error!(stage = stage.as_str(), %topic, error = %e, "error tolerated; skipping the record");
                } else {
                    tracing::error!(stage = stage.as_str(), error = %e, "error tolerated; skipping the record");
                }
            } else {
                tracing::debug!(stage = stage.as_str(), error = %e, "error tolerated; skipping the record");
            }
            Ok(())
        } else {
            Err(ConnectError::fatal(format!(
                "Tolerance exceeded in error handler: {} stage failed: {e}",
                stage.as_str()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn retriable_errors_are_retried_until_success() {
        let p = ErrorPolicy {
            retry_timeout: Some(Duration::from_secs(5)),
            retry_delay_max: Duration::from_millis(1),
            ..Default::default()
        };
        let calls = AtomicU32::new(0);
        let r = p
            .execute(Stage::ValueConverter, "", || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(ConnectError::retriable("try again"))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(r, Ok(Some(7)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn tolerance_none_fails_and_all_skips() {
        let none = ErrorPolicy::default();
        let r: Result<Option<()>, _> = none
            .execute(Stage::Transformation, "", || async {
                Err(ConnectError::data("bad"))
            })
            .await;
        let msg = r.unwrap_err().to_string();
        assert!(
            msg.contains("Tolerance exceeded")
                && msg.contains("TRANSFORMATION")
                && msg.contains("bad"),
            "{msg}"
        );
        let all = ErrorPolicy {
            tolerate_all: true,
            ..Default::default()
        };
        let r: Result<Option<()>, _> = all
            .execute(Stage::Transformation, "", || async {
                Err(ConnectError::data("bad"))
            })
            .await;
        assert_eq!(r, Ok(None));
    }

    #[tokio::test]
    async fn non_retriable_errors_are_not_retried() {
        let p = ErrorPolicy {
            retry_timeout: None,
            tolerate_all: true,
            ..Default::default()
        };
        let calls = AtomicU32::new(0);
        let r: Result<Option<()>, _> = p
            .execute(Stage::KeyConverter, "", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ConnectError::data("bad"))
            })
            .await;
        assert_eq!(r, Ok(None));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
