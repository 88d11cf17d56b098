//! The reference Java Kafka Connect worker (Apache Kafka 3.9.2, started by
//! `scripts/java-connect.sh`) as a test peer. [`JavaWorker`] is a guard: the
//! JVM is killed when it is dropped, also when the test panics.
//!
//! Java and Maven are required: a missing JDK or a failed jar download makes
//! the test fail with a clear message, never pass silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{http, http_raw, write_props};

/// The repository root (the root package's manifest directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    repo_root().join("scripts/java-connect.sh")
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// Panics with an explanation unless `java` runs and the Connect jars are
/// (or can be) fetched into the cache.
pub fn require_java() {
    let java = Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        java.is_ok_and(|s| s.success()),
        "interop tests need a JDK 17 on PATH (`java -version` failed): apt-get install openjdk-17-jdk-headless"
    );
    let out = Command::new(script())
        .arg("fetch")
        .output()
        .unwrap_or_else(|e| panic!("running {} fetch: {e}", script().display()));
    assert!(
        out.status.success(),
        "fetching the Java Connect jars failed (needs Maven and Maven Central, or a filled ~/.cache/connectd):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running Java Connect worker (distributed mode).
pub struct JavaWorker {
    pub pid: u32,
    pub base: String,
    pub log: PathBuf,
    stopped: bool,
}

impl JavaWorker {
    /// Writes `props` to `dir/java-worker.properties` and starts the worker;
    /// `props` must contain `listeners=http://127.0.0.1:<port>`. Returns
    /// once the herder serves requests (an unknown connector gives 404).
    pub async fn start(dir: &Path, props: &BTreeMap<String, String>) -> JavaWorker {
        require_java();
        let listener = props
            .get("listeners")
            .expect("Java worker props need `listeners`");
        let base = listener
            .split(',')
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        let path = write_props(dir, "java-worker.properties", props);
        let log = dir.join("java-worker.log");
        let out = Command::new(script())
            .arg("start")
            .arg(&path)
            .arg(&log)
            .output()
            .unwrap_or_else(|e| panic!("running {} start: {e}", script().display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let pid: u32 = stdout
            .trim()
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "java-connect.sh start failed (status {}):\nstdout: {stdout}\nstderr: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        let w = JavaWorker {
            pid,
            base,
            log,
            stopped: false,
        };
        w.wait_ready(Duration::from_secs(120)).await;
        w
    }

    pub fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
            && !std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
    }

    /// The last lines of the worker log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    async fn wait_ready(&self, timeout: Duration) {
        let start = Instant::now();
        let hostport = self.base.trim_start_matches("http://").to_string();
        loop {
            assert!(
                self.alive(),
                "the Java worker exited during start-up; log tail:\n{}",
                self.log_tail()
            );
            // Jetty answers an HTML 404 before the REST resources are
            // registered; the herder is ready once the 404 is Connect's JSON.
            if tokio::net::TcpStream::connect(&hostport).await.is_ok() {
                let (code, _, body) = http_raw(
                    &self.base,
                    "GET",
                    "/connectors/__probe__",
                    None,
                    "application/json",
                )
                .await;
                if code == 404 && body.contains("\"error_code\":404") {
                    return;
                }
            }
            assert!(
                start.elapsed() < timeout,
                "the Java worker did not become ready within {timeout:?}; log tail:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        http(
            &self.base,
            method,
            path,
            body.map(|b| b.to_string()).as_deref(),
            "application/json",
        )
        .await
    }

    /// Graceful stop: SIGTERM, then wait (the script SIGKILLs after 60 s).
    pub fn stop(&mut self) {
        let status = Command::new(script())
            .arg("stop")
            .arg(self.pid.to_string())
            .arg("60")
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "java-connect.sh stop {} failed",
            self.pid
        );
        assert!(
            !self.alive(),
            "the Java worker (pid {}) is still alive after stop",
            self.pid
        );
        self.stopped = true;
    }
}

impl Drop for JavaWorker {
    fn drop(&mut self) {
        if !self.stopped && self.alive() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(self.pid.to_string())
                .status();
        }
    }
}
