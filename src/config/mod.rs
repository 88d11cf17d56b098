//! Worker-side configuration: reading Java `.properties` and standalone
//! connector files ([`properties`]), the worker config itself ([`worker`]),
//! and config providers that resolve `${alias:[path:]key}` references
//! ([`providers`]).
//!
//! Everything here mirrors the Java worker's behaviour closely enough that a
//! `connect-distributed.properties` or `connect-standalone.properties` file
//! written for Apache Kafka Connect means the same thing to `connectd`.

pub mod properties;
pub mod providers;
pub mod worker;

pub use properties::{load_connector_file, load_properties_file, ConnectorFile, PropertiesError};
pub use providers::{has_references, ConfigProviders, ProviderError};
pub use worker::{Client, Listener, Mode, WorkerConfig, WorkerConfigError};

#[cfg(test)]
pub(crate) mod test_util {
    //! A throwaway directory for tests (the crate has no `tempfile` dependency).
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> Self {
            static N: AtomicU64 = AtomicU64::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let dir = std::env::temp_dir()
                .join(format!("connectd-{tag}-{}-{n}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }

        pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, contents).expect("write temp file");
            p
        }
    }

    /// A config map from literal pairs.
    pub fn props(pairs: &[(&str, &str)]) -> connect_api::config::Props {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
