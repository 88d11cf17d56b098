//! Shared harness for the worker's integration tests: endpoints from the
//! environment (`eval "$(scripts/dev-env.sh up)"`), unique names, in-process
//! and out-of-process workers, a minimal HTTP client and a topic reader.
#![allow(dead_code)]

pub mod mongo;

pub mod java;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use connectd::app::{self, WorkerHandle};
use connectd::config::worker::{Mode, WorkerConfig};
use connectd::logging::Loggers;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn kafka_bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| {
        panic!("KAFKA_BOOTSTRAP is not set: start the test services with `eval \"$(scripts/dev-env.sh up)\"`")
    })
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        t % 1_000_000_000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn temp_dir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Distributed worker properties with unique group and topics.
pub struct Cluster {
    pub group: String,
    pub config_topic: String,
    pub offsets_topic: String,
    pub status_topic: String,
}

impl Cluster {
    pub fn new() -> Self {
        let group = unique("g");
        Cluster {
            config_topic: format!("{group}-configs"),
            offsets_topic: format!("{group}-offsets"),
            status_topic: format!("{group}-status"),
            group,
        }
    }

    pub fn props(&self, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut p: BTreeMap<String, String> = [
            ("bootstrap.servers", kafka_bootstrap()),
            ("group.id", self.group.clone()),
            ("config.storage.topic", self.config_topic.clone()),
            ("offset.storage.topic", self.offsets_topic.clone()),
            ("status.storage.topic", self.status_topic.clone()),
            ("config.storage.replication.factor", "1".into()),
            ("offset.storage.replication.factor", "1".into()),
            ("status.storage.replication.factor", "1".into()),
            ("offset.storage.partitions", "5".into()),
            ("status.storage.partitions", "2".into()),
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter".into(),
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter".into(),
            ),
            ("listeners", "http://127.0.0.1:0".into()),
            ("offset.flush.interval.ms", "500".into()),
            ("scheduled.rebalance.max.delay.ms", "0".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        p
    }

    pub async fn start(&self, extra: &[(&str, &str)]) -> TestWorker {
        let cfg = WorkerConfig::from_props(Mode::Distributed, self.props(extra))
            .expect("valid worker config");
        TestWorker::start(cfg).await
    }

    /// A further worker of the group (not its leader).
    pub async fn start_member(&self, extra: &[(&str, &str)]) -> TestWorker {
        let cfg = WorkerConfig::from_props(Mode::Distributed, self.props(extra))
            .expect("valid worker config");
        TestWorker::start_member(cfg).await
    }

    /// Writes the properties to a file, for workers started as processes.
    pub fn write_props(&self, dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
        write_props(dir, "worker.properties", &self.props(extra))
    }
}

pub fn write_props(dir: &Path, name: &str, props: &BTreeMap<String, String>) -> PathBuf {
    let path = dir.join(name);
    let text: String = props.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&path, text).expect("write properties");
    path
}

/// Logs to stderr when `TEST_LOG` is set (e.g. `TEST_LOG=info`).
pub fn loggers() -> std::sync::Arc<Loggers> {
    static L: std::sync::OnceLock<std::sync::Arc<Loggers>> = std::sync::OnceLock::new();
    L.get_or_init(|| match std::env::var("TEST_LOG") {
        Ok(level) => Loggers::init(&level),
        Err(_) => Loggers::for_tests(),
    })
    .clone()
}

/// An in-process worker.
pub struct TestWorker {
    pub handle: WorkerHandle,
    pub base: String,
}

impl TestWorker {
    /// Starts a worker that leads its group (the first one); returns once
    /// it does, as distributed workers serve writes from then on.
    pub async fn start(cfg: WorkerConfig) -> TestWorker {
        Self::start_until(cfg, Duration::from_secs(30), |o| o.leader).await
    }

    /// Starts a worker that joins a group another worker leads; returns
    /// once it has its first assignment.
    pub async fn start_member(cfg: WorkerConfig) -> TestWorker {
        Self::start_until(cfg, Duration::from_secs(60), |_| true).await
    }

    async fn start_until(
        cfg: WorkerConfig,
        timeout: Duration,
        ready: fn(&connectd::herder::cluster::Ownership) -> bool,
    ) -> TestWorker {
        let handle = app::start(cfg, vec![], loggers())
            .await
            .expect("worker starts");
        let base = format!("http://127.0.0.1:{}", handle.port);
        let w = TestWorker { handle, base };
        eventually(timeout, || async {
            w.handle.herder.ownership().is_some_and(|o| ready(&o))
        })
        .await;
        w
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<&Json>) -> (u16, Json) {
        http(
            &self.base,
            method,
            path,
            body.map(|b| b.to_string()).as_deref(),
            "application/json",
        )
        .await
    }

    /// `POST /connectors`; anything but 201 fails the test.
    pub async fn create_connector(&self, name: &str, config: &Json) {
        let body = serde_json::json!({"name": name, "config": config});
        let (code, resp) = self.call("POST", "/connectors", Some(&body)).await;
        assert_eq!(code, 201, "create {name}: {resp}");
    }

    pub async fn shutdown(self) {
        self.handle.shutdown().await;
    }
}

/// A VerifiableSource connector config (one task, 50 records/s to `topic`).
pub fn verifiable_source(topic: &str) -> Json {
    serde_json::json!({
        "connector.class": "org.apache.kafka.connect.tools.VerifiableSourceConnector",
        "tasks.max": "1",
        "topic": topic,
        "throughput": "50",
        "verifiable.print": "false",
    })
}

/// Polls `cond` every 100 ms until it holds, or panics after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < timeout,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A minimal HTTP/1.1 client (one request per connection) that returns the
/// status and the body as JSON (`Json::Null` for an empty body).
pub async fn http(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    content_type: &str,
) -> (u16, Json) {
    let (status, _, text) = http_raw(base, method, path, body, content_type).await;
    let json = if text.trim().is_empty() {
        Json::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: body is not JSON ({e}): {text}"))
    };
    (status, json)
}

/// Returns status, headers (lower-cased names) and body text.
pub async fn http_raw(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    content_type: &str,
) -> (u16, BTreeMap<String, String>, String) {
    http_with_headers(base, method, path, body, &[("Content-Type", content_type)]).await
}

/// [`http_raw`] with any request headers.
pub async fn http_with_headers(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, BTreeMap<String, String>, String) {
    let hostport = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = tokio::net::TcpStream::connect(hostport)
        .await
        .expect("connect to worker");
    let body = body.unwrap_or("");
    let headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // A server may answer (413) and close before reading a large body; the
    // answer is still readable, so a failed write is not an error here.
    let _ = s.write_all(req.as_bytes()).await;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read response");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, headers, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One record read back from a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl Rec {
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(self.key.as_deref().unwrap_or_default()).into_owned()
    }
    pub fn value_str(&self) -> Option<String> {
        self.value
            .as_deref()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
    pub fn value_json(&self) -> Json {
        self.value.as_deref().map_or(Json::Null, |v| {
            serde_json::from_slice(v).expect("JSON value")
        })
    }
}

/// Reads every record currently in `topic` (all partitions, up to the end).
pub fn read_topic(topic: &str) -> Vec<Rec> {
    try_read_topic(topic).unwrap_or_else(|e| panic!("reading topic {topic}: {e}"))
}

/// As [`read_topic`], but an error (e.g. the topic does not exist yet) is returned.
pub fn try_read_topic(topic: &str) -> Result<Vec<Rec>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| e.to_string())?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut ends = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        let (_, high) = consumer
            .fetch_watermarks(topic, *p, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        ends.insert(*p, high);
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut pos: BTreeMap<i32, i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ends
        .iter()
        .any(|(p, e)| pos.get(p).copied().unwrap_or(0) < *e)
    {
        if Instant::now() > deadline {
            return Err("timed out reading to the end".into());
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            pos.insert(m.partition(), m.offset() + 1);
            out.push(Rec {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
            });
        }
    }
    Ok(out)
}

/// Creates a topic (replication factor 1) that must not exist yet.
pub async fn create_topic(topic: &str, partitions: i32) {
    create_topic_with(topic, partitions, &[]).await;
}

/// [`create_topic`] with topic configs.
pub async fn create_topic_with(topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .create()
        .expect("admin client");
    let results = admin
        .create_topics(
            &[configs.iter().fold(
                NewTopic::new(topic, partitions, TopicReplication::Fixed(1)),
                |t, (k, v)| t.set(k, v),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

/// Starts `connectd distributed <props>` as a process (for kill -9 tests),
/// its log in `log`.
pub fn spawn_worker(props: &Path, log: &Path) -> std::process::Child {
    let log = std::fs::File::create(log).expect("log file");
    std::process::Command::new(connectd_bin())
        .arg("distributed")
        .arg(props)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn connectd")
}

/// Sends SIGTERM and waits (30 s at most) for the worker to exit.
pub fn sigterm(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    for _ in 0..300 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("worker did not exit within 30 s of SIGTERM");
}

/// The path of the built `connectd` binary.
pub fn connectd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_connectd"))
}

pub fn json(s: &str) -> Json {
    serde_json::from_str(s).expect("valid JSON literal")
}
