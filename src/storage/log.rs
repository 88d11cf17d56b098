//! The log behind a store: a Kafka topic in distributed mode, or an in-memory
//! log in standalone mode (the Java worker's `Memory*BackingStore`s), with the
//! same interface so that each store's record format is written once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::kafka_log::{KafkaLog, LogError, LogRecord};

type Apply = Box<dyn FnMut(LogRecord) + Send>;

/// An in-memory log: a write is applied at once, so it is always "read to end".
pub struct MemoryLog {
    topic: String,
    inner: Mutex<(i64, Apply)>,
}

impl MemoryLog {
    pub fn new(topic: &str, apply: impl FnMut(LogRecord) + Send + 'static) -> Self {
        MemoryLog {
            topic: topic.to_string(),
            inner: Mutex::new((0, Box::new(apply))),
        }
    }

    fn append(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<(), LogError> {
        let mut guard = self.inner.lock().map_err(|_| LogError::Stopped {
            topic: self.topic.clone(),
        })?;
        let (next, apply) = &mut *guard;
        let offset = *next;
        *next += 1;
        apply(LogRecord {
            partition: 0,
            offset,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
        });
        Ok(())
    }
}

/// Either kind of log.
#[derive(Clone)]
pub enum Log {
    Kafka(Arc<KafkaLog>),
    Memory(Arc<MemoryLog>),
}

impl Log {
    pub async fn send(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), LogError> {
        match self {
            Log::Kafka(k) => k.send(Some(key), value).await,
            Log::Memory(m) => m.append(Some(key), value),
        }
    }

    pub async fn send_all(&self, records: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), LogError> {
        match self {
            Log::Kafka(k) => k.send_all(records).await,
            Log::Memory(m) => {
                for (k, v) in records {
                    m.append(Some(k), v.as_deref())?;
                }
                Ok(())
            }
        }
    }

    pub async fn read_to_end(&self, timeout: Duration) -> Result<(), LogError> {
        match self {
            Log::Kafka(k) => k.read_to_end(timeout).await,
            Log::Memory(_) => Ok(()),
        }
    }
}
