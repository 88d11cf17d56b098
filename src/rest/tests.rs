//! HTTP mapping tests: every route, status code, body shape and error case, run
//! through [`handle`] against [`FakeHerder`], plus one test over a real socket.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use connect_api::config::{ConfigValueInfo, Props};
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use serde_json::{json, Value as Json};

use super::*;
use crate::herder::api::*;

/// An in-memory herder that exists ONLY to test the HTTP mapping of the REST
/// layer: it answers with plausible data and the Java error messages, and
/// records the arguments it was called with. The real herders are tested in
/// the integration tests.
#[derive(Default)]
struct FakeHerder {
    inner: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    connectors: BTreeMap<String, FakeConnector>,
    /// Names for which status lookups answer 404 (as right after creation).
    no_status: Vec<String>,
    health_status: Option<u16>,
    /// A log of calls with their interesting arguments.
    calls: Vec<String>,
    last_patch: Option<BTreeMap<String, Option<String>>>,
    last_offsets: Option<ConnectorOffsets>,
    last_validate: Option<(String, Props)>,
    /// Makes `server_info` slow, to have a request in flight at shutdown.
    server_info_delay: Option<std::time::Duration>,
    /// Makes leader-only writes (here: delete) answer "not the leader; it
    /// is at this URL".
    leader_url: Option<String>,
}

struct FakeConnector {
    config: Props,
    target: TargetState,
    tasks: usize,
}

fn kind_of(config: &Props) -> String {
    match config.get("connector.class") {
        Some(c) if c.contains("Sink") => "sink".into(),
        Some(_) => "source".into(),
        None => "unknown".into(),
    }
}

impl FakeHerder {
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.inner.lock().expect("fake herder lock")
    }

    fn add(&self, name: &str, class: &str, tasks: usize) {
        let mut config = Props::new();
        config.insert("connector.class".into(), class.into());
        config.insert("name".into(), name.into());
        config.insert("tasks.max".into(), tasks.to_string());
        self.lock().connectors.insert(
            name.into(),
            FakeConnector {
                config,
                target: TargetState::Started,
                tasks,
            },
        );
    }

    fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    fn info(name: &str, c: &FakeConnector) -> ConnectorInfo {
        ConnectorInfo {
            name: name.into(),
            config: c.config.clone(),
            tasks: (0..c.tasks)
                .map(|t| ConnectorTaskId {
                    connector: name.into(),
                    task: t as u32,
                })
                .collect(),
            kind: kind_of(&c.config),
        }
    }

    fn not_found(name: &str) -> HerderError {
        HerderError::not_found(format!("Connector {name} not found"))
    }

    fn status(&self, name: &str, restarting: bool) -> HerderResult<ConnectorStateInfo> {
        let st = self.lock();
        let c = st
            .connectors
            .get(name)
            .filter(|_| !st.no_status.iter().any(|n| n == name))
            .ok_or_else(|| {
                HerderError::not_found(format!("No status found for connector {name}"))
            })?;
        let state = |s: &str| {
            if restarting {
                "RESTARTING".to_string()
            } else {
                s.to_string()
            }
        };
        Ok(ConnectorStateInfo {
            name: name.into(),
            connector: ConnectorState {
                state: state("RUNNING"),
                worker_id: "w1:8083".into(),
                trace: None,
            },
            tasks: (0..c.tasks)
                .map(|t| TaskState {
                    id: t as u32,
                    state: if t == 1 {
                        state("FAILED")
                    } else {
                        state("RUNNING")
                    },
                    worker_id: "w1:8083".into(),
                    trace: (t == 1).then(|| "boom".to_string()),
                })
                .collect(),
            kind: kind_of(&c.config),
        })
    }
}

#[async_trait]
impl Herder for FakeHerder {
    async fn server_info(&self) -> ServerInfo {
        let delay = self.lock().server_info_delay;
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        ServerInfo {
            version: "3.9.0".into(),
            commit: "abc".into(),
            kafka_cluster_id: Some("cluster".into()),
        }
    }
    async fn health(&self) -> WorkerHealth {
        match self.lock().health_status {
            Some(503) => WorkerHealth {
                status: "starting".into(),
                message: "Worker is still starting up.".into(),
                http_status: 503,
            },
            _ => WorkerHealth {
                status: "healthy".into(),
                message: "Worker has completed startup and is ready to handle requests.".into(),
                http_status: 200,
            },
        }
    }
    async fn connectors(&self) -> Vec<String> {
        self.lock().connectors.keys().cloned().collect()
    }
    async fn connector_info(&self, name: &str) -> HerderResult<ConnectorInfo> {
        let st = self.lock();
        let c = st
            .connectors
            .get(name)
            .ok_or_else(|| Self::not_found(name))?;
        Ok(Self::info(name, c))
    }
    async fn connector_config(&self, name: &str) -> HerderResult<Props> {
        let st = self.lock();
        let c = st
            .connectors
            .get(name)
            .ok_or_else(|| Self::not_found(name))?;
        Ok(c.config.clone())
    }
    async fn put_connector_config(
        &self,
        name: &str,
        config: Props,
        allow_replace: bool,
        initial_state: Option<TargetState>,
    ) -> HerderResult<(bool, ConnectorInfo)> {
        let mut st = self.lock();
        st.calls.push(format!(
            "put {name} replace={allow_replace} state={initial_state:?}"
        ));
        if !config.contains_key("connector.class") {
            return Err(HerderError::bad_request(
                "Connector config {} contains no connector type",
            ));
        }
        let exists = st.connectors.contains_key(name);
        if exists && !allow_replace {
            return Err(HerderError::conflict(format!(
                "Connector {name} already exists"
            )));
        }
        let tasks = st.connectors.get(name).map_or(0, |c| c.tasks);
        let c = FakeConnector {
            config,
            target: initial_state.unwrap_or(TargetState::Started),
            tasks,
        };
        let info = Self::info(name, &c);
        st.connectors.insert(name.into(), c);
        Ok((!exists, info))
    }
    async fn patch_connector_config(
        &self,
        name: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> HerderResult<ConnectorInfo> {
        let mut st = self.lock();
        st.last_patch = Some(patch.clone());
        let c = st
            .connectors
            .get_mut(name)
            .ok_or_else(|| Self::not_found(name))?;
        for (k, v) in patch {
            match v {
                Some(v) => c.config.insert(k, v),
                None => c.config.remove(&k),
            };
        }
        Ok(Self::info(name, c))
    }
    async fn delete_connector(&self, name: &str) -> HerderResult<()> {
        if let Some(url) = self.lock().leader_url.clone() {
            return Err(HerderError::request_target(&url));
        }
        self.lock()
            .connectors
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| Self::not_found(name))
    }
    async fn connector_status(&self, name: &str) -> HerderResult<ConnectorStateInfo> {
        self.status(name, false)
    }
    async fn task_status(&self, name: &str, task: u32) -> HerderResult<TaskState> {
        let status = self.status(name, false).map_err(|_| {
            HerderError::not_found(format!("No status found for task {name}-{task}"))
        })?;
        status
            .tasks
            .into_iter()
            .find(|t| t.id == task)
            .ok_or_else(|| {
                HerderError::not_found(format!("No status found for task {name}-{task}"))
            })
    }
    async fn task_configs(&self, name: &str) -> HerderResult<Vec<TaskInfo>> {
        let st = self.lock();
        let c = st
            .connectors
            .get(name)
            .ok_or_else(|| Self::not_found(name))?;
        Ok((0..c.tasks)
            .map(|t| {
                let mut config = Props::new();
                config.insert("task.class".into(), "FakeTask".into());
                config.insert("n".into(), t.to_string());
                TaskInfo {
                    id: ConnectorTaskId {
                        connector: name.into(),
                        task: t as u32,
                    },
                    config,
                }
            })
            .collect())
    }
    async fn restart_connector(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> HerderResult<Option<ConnectorStateInfo>> {
        self.lock().calls.push(format!(
            "restart {name} tasks={include_tasks} failed={only_failed}"
        ));
        if !self.lock().connectors.contains_key(name) {
            return Err(HerderError::not_found(format!("Unknown connector: {name}")));
        }
        if include_tasks || only_failed {
            self.status(name, true).map(Some)
        } else {
            Ok(None)
        }
    }
    async fn restart_task(&self, name: &str, task: u32) -> HerderResult<()> {
        let st = self.lock();
        let c = st
            .connectors
            .get(name)
            .ok_or_else(|| HerderError::not_found(format!("Unknown connector: {name}")))?;
        if task as usize >= c.tasks {
            return Err(HerderError::not_found(format!(
                "Unknown task: {name}-{task}"
            )));
        }
        Ok(())
    }
    async fn pause_connector(&self, name: &str) -> HerderResult<()> {
        self.set_target(name, TargetState::Paused)
    }
    async fn resume_connector(&self, name: &str) -> HerderResult<()> {
        self.set_target(name, TargetState::Started)
    }
    async fn stop_connector(&self, name: &str) -> HerderResult<()> {
        self.set_target(name, TargetState::Stopped)
    }
    async fn connector_topics(&self, name: &str) -> HerderResult<Vec<String>> {
        self.connector_config(name)
            .await
            .map(|_| vec!["t1".into(), "t2".into()])
    }
    async fn reset_connector_topics(&self, name: &str) -> HerderResult<()> {
        self.connector_config(name).await.map(|_| ())
    }
    async fn connector_offsets(&self, name: &str) -> HerderResult<ConnectorOffsets> {
        self.connector_config(name).await?;
        Ok(ConnectorOffsets {
            offsets: vec![ConnectorOffset {
                partition: json!({"filename": "/in.txt"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                offset: json!({"position": 30}).as_object().cloned(),
            }],
        })
    }
    async fn alter_connector_offsets(
        &self,
        name: &str,
        offsets: ConnectorOffsets,
    ) -> HerderResult<Message> {
        self.require_stopped(name)?;
        self.lock().last_offsets = Some(offsets);
        Ok(Message {
            message: "The offsets for this connector have been altered successfully".into(),
        })
    }
    async fn reset_connector_offsets(&self, name: &str) -> HerderResult<Message> {
        self.require_stopped(name)?;
        Ok(Message {
            message: "The offsets for this connector have been reset successfully".into(),
        })
    }
    async fn connector_progress(&self, name: &str) -> HerderResult<Progress> {
        self.connector_config(name).await?;
        Ok(json!({"records": 5}))
    }
    async fn plugins(&self, connectors_only: bool) -> Vec<PluginInfo> {
        let mut out = vec![
            PluginInfo {
                class_name: "FileStreamSinkConnector".into(),
                kind: "sink".into(),
                version: Some("3.9.0".into()),
            },
            PluginInfo {
                class_name: "FileStreamSourceConnector".into(),
                kind: "source".into(),
                version: None,
            },
        ];
        if !connectors_only {
            out.push(PluginInfo {
                class_name: "InsertField".into(),
                kind: "transformation".into(),
                version: None,
            });
        }
        out
    }
    async fn plugin_config(&self, plugin: &str) -> HerderResult<Vec<ConfigKeyInfo>> {
        if plugin != "FileStreamSource" {
            return Err(HerderError::not_found(format!("Unknown plugin {plugin}.")));
        }
        Ok(vec![key_info("file")])
    }
    async fn validate_config(&self, plugin: &str, config: Props) -> HerderResult<ConfigInfos> {
        let class = config.get("connector.class").cloned().unwrap_or_default();
        self.lock().last_validate = Some((plugin.into(), config.clone()));
        Ok(ConfigInfos {
            name: class,
            error_count: 0,
            groups: vec!["Common".into()],
            configs: vec![ConfigInfo {
                definition: Some(key_info("file")),
                value: ConfigValueInfo {
                    name: "file".into(),
                    value: config.get("file").cloned(),
                    recommended_values: vec![],
                    errors: vec![],
                    visible: true,
                },
            }],
        })
    }

    async fn set_cluster_log_level(&self, namespace: &str, level: &str) -> HerderResult<()> {
        self.lock().calls.push(format!(
            "cluster-log-level {namespace} {}",
            level.to_ascii_uppercase()
        ));
        Ok(())
    }
    async fn put_task_configs_internal(
        &self,
        name: &str,
        body: &[u8],
        signature: &crate::herder::signing::RequestSignature,
    ) -> HerderResult<()> {
        self.lock().calls.push(format!(
            "task-configs {name} {} {:?} {:?}",
            String::from_utf8_lossy(body),
            signature.signature,
            signature.algorithm
        ));
        Ok(())
    }
}

impl FakeHerder {
    fn set_target(&self, name: &str, target: TargetState) -> HerderResult<()> {
        let mut st = self.lock();
        let c = st
            .connectors
            .get_mut(name)
            .ok_or_else(|| HerderError::not_found(format!("Unknown connector {name}")))?;
        c.target = target;
        Ok(())
    }

    fn require_stopped(&self, name: &str) -> HerderResult<()> {
        let st = self.lock();
        let c = st
            .connectors
            .get(name)
            .ok_or_else(|| Self::not_found(name))?;
        if c.target != TargetState::Stopped {
            return Err(HerderError::bad_request(format!(
                "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
            )));
        }
        Ok(())
    }
}

fn key_info(name: &str) -> ConfigKeyInfo {
    ConfigKeyInfo {
        name: name.into(),
        config_type: "STRING".into(),
        required: true,
        default_value: None,
        importance: "HIGH".into(),
        documentation: "doc".into(),
        group: Some("Common".into()),
        width: "MEDIUM".into(),
        display_name: "File".into(),
        dependents: vec![],
        order: 1,
    }
}

fn key_info_json() -> Json {
    json!({"name":"file","type":"STRING","required":true,"default_value":null,"importance":"HIGH",
           "documentation":"doc","group":"Common","width":"MEDIUM","display_name":"File",
           "dependents":[],"order":1})
}

// ---------------------------------------------------------------- helpers

struct Harness {
    fake: Arc<FakeHerder>,
    state: RestState,
}

fn harness_with(config: RestConfig) -> Harness {
    let fake = Arc::new(FakeHerder::default());
    let state = RestState::new(fake.clone(), Loggers::for_tests(), config);
    Harness { fake, state }
}

fn harness() -> Harness {
    harness_with(RestConfig::default())
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    raw: Bytes,
}

impl Answer {
    fn json(&self) -> Json {
        serde_json::from_slice(&self.raw).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.raw)
            )
        })
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {:?}", self.json());
        assert_eq!(
            self.json(),
            json!({"error_code": status, "message": message})
        );
    }
}

impl Harness {
    async fn send(&self, req: Request<Full<Bytes>>) -> Answer {
        let resp = handle(&self.state, req).await;
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = resp
            .into_body()
            .collect()
            .await
            .expect("infallible body")
            .to_bytes();
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "every response is JSON"
        );
        Answer {
            status,
            headers,
            raw,
        }
    }

    async fn call(&self, method: &str, uri: &str, body: Option<&str>) -> Answer {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "worker1:8083");
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        let req = b
            .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
            .expect("valid request");
        self.send(req).await
    }

    async fn get(&self, uri: &str) -> Answer {
        self.call("GET", uri, None).await
    }
}

fn create_body(name: &str) -> String {
    json!({"name": name, "config": {"connector.class": "FileStreamSource", "tasks.max": 1}})
        .to_string()
}

// ---------------------------------------------------------------- root, health

#[tokio::test]
async fn root_and_health() {
    let h = harness();
    let a = h.get("/").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"version":"3.9.0","commit":"abc","kafka_cluster_id":"cluster"})
    );

    let a = h.get("/health").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"status":"healthy","message":"Worker has completed startup and is ready to handle requests."})
    );
    h.fake.lock().health_status = Some(503);
    let a = h.get("/health").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.json()["status"], "starting");
}

#[tokio::test]
async fn head_is_get_without_semantics_change() {
    let h = harness();
    let a = h.call("HEAD", "/", None).await;
    assert_eq!(a.status, StatusCode::OK);
}

// ---------------------------------------------------------------- routing errors

#[tokio::test]
async fn unknown_paths_are_404() {
    let h = harness();
    for path in [
        "/nope",
        "/connectors/a/b/c",
        "/connectors/a/tasks/0",
        "/admin",
        "/connector-plugins/x",
    ] {
        h.get(path).await.assert_error(404, "HTTP 404 Not Found");
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let h = harness();
    let a = h.call("DELETE", "/connectors", None).await;
    a.assert_error(405, "HTTP 405 Method Not Allowed");
    assert_eq!(a.header("allow"), Some("GET,POST,HEAD,OPTIONS"));
    h.call("GET", "/connectors/a/pause", None)
        .await
        .assert_error(405, "HTTP 405 Method Not Allowed");
    h.call("POST", "/admin/loggers/x", None)
        .await
        .assert_error(405, "HTTP 405 Method Not Allowed");
}

#[tokio::test]
async fn options_lists_methods() {
    let h = harness();
    let a = h.call("OPTIONS", "/connectors/a/config", None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(a.header("allow"), Some("GET,PUT,PATCH,HEAD,OPTIONS"));
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let h = harness();
    let req = Request::builder()
        .method("POST")
        .uri("/connectors")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(create_body("a"))))
        .expect("request");
    h.send(req)
        .await
        .assert_error(415, "HTTP 415 Unsupported Media Type");
    // Parameters and case do not matter; a missing Content-Type is accepted.
    for ct in [Some("Application/JSON; charset=utf-8"), None] {
        let mut b = Request::builder().method("PUT").uri("/connectors/a/config");
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        let req = b
            .body(Full::new(Bytes::from(r#"{"connector.class":"X"}"#)))
            .expect("request");
        let a = h.send(req).await;
        assert!(a.status.is_success(), "{ct:?}: {}", a.status);
    }
}

#[tokio::test]
async fn oversized_body_is_413() {
    let h = harness_with(RestConfig {
        max_body_bytes: 64,
        ..RestConfig::default()
    });
    let big = json!({"connector.class": "X".repeat(100)}).to_string();
    let a = h.call("PUT", "/connectors/a/config", Some(&big)).await;
    a.assert_error(413, "Request body is larger than the maximum of 64 bytes");
    assert_eq!(a.header("connection"), Some("close"));
    // Without Content-Length (streamed body) the limit still applies.
    let stream = http_body_util::StreamBody::new(futures::stream::iter(
        (0..10).map(|_| Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from(vec![b' '; 20])))),
    ));
    let req = Request::builder()
        .method("PUT")
        .uri("/connectors/a/config")
        .body(stream)
        .expect("request");
    let resp = handle(&h.state, req).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn malformed_json_is_400() {
    let h = harness();
    for (method, uri) in [
        ("POST", "/connectors"),
        ("PUT", "/connectors/a/config"),
        ("PATCH", "/connectors/a/config"),
        ("PATCH", "/connectors/a/offsets"),
        ("PUT", "/connector-plugins/X/config/validate"),
        ("PUT", "/admin/loggers/x"),
    ] {
        let a = h.call(method, uri, Some("{not json")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{method} {uri}");
        let msg = a.json()["message"].as_str().unwrap_or_default().to_string();
        assert!(msg.contains("line 1 column 2"), "{method} {uri}: {msg}");
        assert_eq!(a.json()["error_code"], 400);
    }
}

#[tokio::test]
async fn admin_disabled_hides_loggers() {
    let h = harness_with(RestConfig {
        admin_enabled: false,
        ..RestConfig::default()
    });
    h.get("/admin/loggers")
        .await
        .assert_error(404, "HTTP 404 Not Found");
    h.get("/admin/loggers/root")
        .await
        .assert_error(404, "HTTP 404 Not Found");
}

// ---------------------------------------------------------------- connectors

#[tokio::test]
async fn create_connector_201_with_location() {
    let h = harness();
    let a = h
        .call(
            "POST",
            "/connectors",
            Some(r#"{"name":"  file-source ","config":{"connector.class":"FileStreamSource","tasks.max":1,"flag":true,"ratio":1.5},"initial_state":"paused"}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        a.header("location"),
        Some("http://worker1:8083/connectors/file-source")
    );
    assert_eq!(
        a.json(),
        json!({"name":"file-source","config":{"connector.class":"FileStreamSource","tasks.max":"1",
               "flag":"true","ratio":"1.5","name":"file-source"},"tasks":[],"type":"source"})
    );
    assert_eq!(
        h.fake.calls(),
        vec!["put file-source replace=false state=Some(Paused)".to_string()]
    );

    // Existing name: 409 from the herder, passed through.
    h.call("POST", "/connectors", Some(&create_body("file-source")))
        .await
        .assert_error(409, "Connector file-source already exists");
}

#[tokio::test]
async fn create_location_is_encoded_and_falls_back_to_advertised_url() {
    let h = harness_with(RestConfig {
        advertised_url: "http://10.0.0.1:8083/".into(),
        ..RestConfig::default()
    });
    let req = Request::builder()
        .method("POST")
        .uri("/connectors")
        .body(Full::new(Bytes::from(create_body("a b%c"))))
        .expect("request");
    let a = h.send(req).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        a.header("location"),
        Some("http://10.0.0.1:8083/connectors/a%20b%25c")
    );
}

#[tokio::test]
async fn create_name_rules() {
    let h = harness();
    let a = h
        .call(
            "POST",
            "/connectors",
            Some(r#"{"name":"a","config":{"connector.class":"X","name":"b"}}"#),
        )
        .await;
    a.assert_error(
        400,
        "Connector name configuration (b) doesn't match connector name in the URL (a)",
    );
    h.call(
        "POST",
        "/connectors",
        Some(r#"{"config":{"connector.class":"X"}}"#),
    )
    .await
    .assert_error(400, "Connector name must not be empty");
    h.call("POST", "/connectors", Some(&create_body("   ")))
        .await
        .assert_error(400, "Connector name must not be empty");
    h.call("POST", "/connectors", Some(&create_body("a/b")))
        .await
        .assert_error(400, "Connector name must not contain '/'");
    h.call("POST", "/connectors", Some(&create_body("a\u{7}b")))
        .await
        .assert_error(
            400,
            "Connector name must not contain ISO control characters",
        );
    h.call("POST", "/connectors", Some(&create_body(&"x".repeat(256))))
        .await
        .assert_error(400, "Connector name must be at most 255 characters long");
    let a = h
        .call("POST", "/connectors", Some(&create_body(&"é".repeat(255))))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "255 characters are fine");
    assert!(
        h.fake.calls().len() == 1,
        "invalid names never reach the herder"
    );
}

#[tokio::test]
async fn create_body_errors() {
    let h = harness();
    h.call(
        "POST",
        "/connectors",
        Some(r#"{"name":"a","config":{"connector.class":"X","file":null,"topic":null}}"#),
    )
    .await
    .assert_error(
        400,
        "Connector configuration is invalid and contains the following 2 error(s):\n\
         Invalid value null for configuration file: Null value can not be supplied as the configuration value.\n\
         Invalid value null for configuration topic: Null value can not be supplied as the configuration value.\n\
         You can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`",
    );
    h.call("POST", "/connectors", Some(r#"{"name":"a"}"#))
        .await
        .assert_error(400, "The request body contains no 'config'");
    h.call(
        "POST",
        "/connectors",
        Some(r#"{"name":"a","config":{"connector.class":"X"},"initial_state":"RUN"}"#),
    )
    .await
    .assert_error(
        400,
        "Invalid initial_state 'RUN'; the valid values are RUNNING, PAUSED and STOPPED",
    );
    h.call(
        "POST",
        "/connectors",
        Some(r#"{"name":"a","config":{"connector.class":"X"},"extra":1}"#),
    )
    .await
    .assert_error(
        400,
        "Unrecognized field \"extra\" in the request body; the known fields are \"name\", \"config\" and \"initial_state\"",
    );
    h.call(
        "POST",
        "/connectors",
        Some(r#"{"name":"a","config":{"k":[1]}}"#),
    )
    .await
    .assert_error(
        400,
        "The value of configuration 'k' must be a string, number or boolean",
    );
    h.call("POST", "/connectors", Some("[]"))
        .await
        .assert_error(
            400,
            "The request body must be a JSON object with 'name' and 'config'",
        );
    // A herder validation error is passed through unchanged.
    h.call("POST", "/connectors", Some(r#"{"name":"a","config":{}}"#))
        .await
        .assert_error(400, "Connector config {} contains no connector type");
}

#[tokio::test]
async fn list_connectors_plain_and_expanded() {
    let h = harness();
    assert_eq!(h.get("/connectors").await.json(), json!([]));
    h.fake.add("a", "FileStreamSource", 1);
    h.fake.add("b", "FileStreamSink", 0);
    h.fake.lock().no_status.push("b".into());
    let a = h.get("/connectors/").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), json!(["a", "b"]));

    let a = h.get("/connectors?expand=status&expand=INFO").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"a": {
            "status": {"name":"a","connector":{"state":"RUNNING","worker_id":"w1:8083"},
                       "tasks":[{"id":0,"state":"RUNNING","worker_id":"w1:8083"}],"type":"source"},
            "info": {"name":"a","config":{"connector.class":"FileStreamSource","name":"a","tasks.max":"1"},
                     "tasks":[{"connector":"a","task":0}],"type":"source"}}})
    );
    // "info" alone keeps b (its info exists); unknown expansions give empty objects.
    let a = h.get("/connectors?expand=info").await;
    assert_eq!(a.json().as_object().map(|o| o.len()), Some(2));
    assert_eq!(
        h.get("/connectors?expand=bogus").await.json(),
        json!({"a":{}, "b":{}})
    );
}

#[tokio::test]
async fn get_connector_and_config() {
    let h = harness();
    h.fake.add("my conn/x", "FileStreamSource", 2);
    let a = h.get("/connectors/my%20conn%2Fx").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"name":"my conn/x","config":{"connector.class":"FileStreamSource","name":"my conn/x","tasks.max":"2"},
               "tasks":[{"connector":"my conn/x","task":0},{"connector":"my conn/x","task":1}],"type":"source"})
    );
    let a = h.get("/connectors/my%20conn%2Fx/config").await;
    assert_eq!(
        a.json(),
        json!({"connector.class":"FileStreamSource","name":"my conn/x","tasks.max":"2"})
    );
    h.get("/connectors/nope")
        .await
        .assert_error(404, "Connector nope not found");
    h.get("/connectors/nope/config")
        .await
        .assert_error(404, "Connector nope not found");
}

#[tokio::test]
async fn put_config_creates_then_updates() {
    let h = harness();
    let a = h
        .call(
            "PUT",
            "/connectors/c1/config",
            Some(r#"{"connector.class":"FileStreamSink","tasks.max":2}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        a.header("location"),
        Some("http://worker1:8083/connectors/c1")
    );
    assert_eq!(
        a.json(),
        json!({"name":"c1","config":{"connector.class":"FileStreamSink","tasks.max":"2","name":"c1"},
               "tasks":[],"type":"sink"})
    );
    let a = h
        .call(
            "PUT",
            "/connectors/c1/config",
            Some(r#"{"connector.class":"FileStreamSink","name":"c1"}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.header("location").is_none());
    assert_eq!(
        a.json()["config"],
        json!({"connector.class":"FileStreamSink","name":"c1"})
    );
    assert_eq!(
        h.fake.calls(),
        vec![
            "put c1 replace=true state=None".to_string(),
            "put c1 replace=true state=None".to_string()
        ]
    );

    h.call(
        "PUT",
        "/connectors/c1/config",
        Some(r#"{"connector.class":"X","name":"c2"}"#),
    )
    .await
    .assert_error(
        400,
        "Connector name configuration (c2) doesn't match connector name in the URL (c1)",
    );
    h.call(
        "PUT",
        "/connectors/a%2Fb/config",
        Some(r#"{"connector.class":"X"}"#),
    )
    .await
    .assert_error(400, "Connector name must not contain '/'");
    h.call(
        "PUT",
        "/connectors/a%0Ab/config",
        Some(r#"{"connector.class":"X"}"#),
    )
    .await
    .assert_error(
        400,
        "Connector name must not contain ISO control characters",
    );
    let a = h
        .call(
            "PUT",
            "/connectors/c1/config",
            Some(r#"{"connector.class":"X","x":null}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let msg = a.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(msg.starts_with(
        "Connector configuration is invalid and contains the following 1 error(s):\n"
    ));
    assert!(
        msg.contains("configuration x: Null value can not be supplied as the configuration value.")
    );
    // A null `name` is simply replaced by the URL name.
    let a = h
        .call(
            "PUT",
            "/connectors/c1/config",
            Some(r#"{"connector.class":"X","name":null}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["config"]["name"], "c1");
    h.call("PUT", "/connectors/c1/config", Some(r#""str""#))
        .await
        .assert_error(
            400,
            "The connector configuration must be a JSON object of string values",
        );
}

#[tokio::test]
async fn patch_config() {
    let h = harness();
    h.fake.add("p", "FileStreamSource", 0);
    let a = h
        .call(
            "PATCH",
            "/connectors/p/config",
            Some(r#"{"tasks.max":null,"file":"/x","n":3}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"name":"p","config":{"connector.class":"FileStreamSource","file":"/x","n":"3","name":"p"},
               "tasks":[],"type":"source"})
    );
    let patch = h.fake.lock().last_patch.clone().expect("patched");
    assert_eq!(patch.get("tasks.max"), Some(&None));
    assert_eq!(patch.get("n"), Some(&Some("3".to_string())));
    h.call("PATCH", "/connectors/q/config", Some("{}"))
        .await
        .assert_error(404, "Connector q not found");
    h.call("PATCH", "/connectors/p/config", Some("[1]"))
        .await
        .assert_error(400, "The configuration patch must be a JSON object");
}

#[tokio::test]
async fn delete_connector() {
    let h = harness();
    h.fake.add("d", "FileStreamSource", 0);
    let a = h.call("DELETE", "/connectors/d", None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(a.raw.is_empty());
    h.call("DELETE", "/connectors/d", None)
        .await
        .assert_error(404, "Connector d not found");
}

#[tokio::test]
async fn status_and_task_status() {
    let h = harness();
    h.fake.add("s", "FileStreamSource", 2);
    let a = h.get("/connectors/s/status").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"name":"s","connector":{"state":"RUNNING","worker_id":"w1:8083"},
               "tasks":[{"id":0,"state":"RUNNING","worker_id":"w1:8083"},
                        {"id":1,"state":"FAILED","worker_id":"w1:8083","trace":"boom"}],
               "type":"source"})
    );
    let a = h.get("/connectors/s/tasks/1/status").await;
    assert_eq!(
        a.json(),
        json!({"id":1,"state":"FAILED","worker_id":"w1:8083","trace":"boom"})
    );
    h.get("/connectors/s/tasks/7/status")
        .await
        .assert_error(404, "No status found for task s-7");
    h.get("/connectors/s/tasks/x/status")
        .await
        .assert_error(404, "HTTP 404 Not Found");
    h.get("/connectors/zz/status")
        .await
        .assert_error(404, "No status found for connector zz");
}

#[tokio::test]
async fn tasks_and_tasks_config() {
    let h = harness();
    h.fake.add("t", "FileStreamSource", 2);
    let a = h.get("/connectors/t/tasks").await;
    assert_eq!(
        a.json(),
        json!([{"id":{"connector":"t","task":0},"config":{"n":"0","task.class":"FakeTask"}},
               {"id":{"connector":"t","task":1},"config":{"n":"1","task.class":"FakeTask"}}])
    );
    let a = h.get("/connectors/t/tasks-config").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"t-0":{"n":"0","task.class":"FakeTask"},"t-1":{"n":"1","task.class":"FakeTask"}})
    );
    h.get("/connectors/u/tasks")
        .await
        .assert_error(404, "Connector u not found");
    h.get("/connectors/u/tasks-config")
        .await
        .assert_error(404, "Connector u not found");
}

#[tokio::test]
async fn restarts() {
    let h = harness();
    h.fake.add("r", "FileStreamSource", 2);
    let a = h.call("POST", "/connectors/r/restart", None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(a.raw.is_empty());
    let a = h
        .call(
            "POST",
            "/connectors/r/restart?includeTasks=TRUE&onlyFailed=false",
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(a.json()["connector"]["state"], "RESTARTING");
    assert_eq!(a.json()["tasks"][1]["state"], "RESTARTING");
    let a = h
        .call("POST", "/connectors/r/restart?onlyFailed=true", None)
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(
        h.fake.calls(),
        vec![
            "restart r tasks=false failed=false".to_string(),
            "restart r tasks=true failed=false".to_string(),
            "restart r tasks=false failed=true".to_string()
        ]
    );
    h.call("POST", "/connectors/x/restart", None)
        .await
        .assert_error(404, "Unknown connector: x");

    let a = h.call("POST", "/connectors/r/tasks/1/restart", None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    h.call("POST", "/connectors/r/tasks/2/restart", None)
        .await
        .assert_error(404, "Unknown task: r-2");
}

#[tokio::test]
async fn pause_resume_stop() {
    let h = harness();
    h.fake.add("c", "FileStreamSource", 1);
    for (path, status, target) in [
        ("pause", StatusCode::ACCEPTED, TargetState::Paused),
        ("resume", StatusCode::ACCEPTED, TargetState::Started),
        ("stop", StatusCode::NO_CONTENT, TargetState::Stopped),
    ] {
        let a = h.call("PUT", &format!("/connectors/c/{path}"), None).await;
        assert_eq!(a.status, status, "{path}");
        assert!(a.raw.is_empty());
        assert_eq!(h.fake.lock().connectors["c"].target, target);
        h.call("PUT", &format!("/connectors/x/{path}"), None)
            .await
            .assert_error(404, "Unknown connector x");
    }
}

#[tokio::test]
async fn topics() {
    let h = harness();
    h.fake.add("c", "FileStreamSource", 1);
    let a = h.get("/connectors/c/topics").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), json!({"c":{"topics":["t1","t2"]}}));
    let a = h.call("PUT", "/connectors/c/topics/reset", None).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert!(a.raw.is_empty());
    h.get("/connectors/x/topics")
        .await
        .assert_error(404, "Connector x not found");
}

#[tokio::test]
async fn offsets() {
    let h = harness();
    h.fake.add("o", "FileStreamSource", 1);
    let a = h.get("/connectors/o/offsets").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"offsets":[{"partition":{"filename":"/in.txt"},"offset":{"position":30}}]})
    );
    let body = r#"{"offsets":[{"partition":{"kafka_topic":"t","kafka_partition":0},"offset":{"kafka_offset":"5"}},
                               {"partition":{"f":"x"},"offset":null}]}"#;
    let a = h.call("PATCH", "/connectors/o/offsets", Some(body)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json()["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("Connectors must be in the STOPPED state")));
    if let Some(c) = h.fake.lock().connectors.get_mut("o") {
        c.target = TargetState::Stopped;
    }
    let a = h.call("PATCH", "/connectors/o/offsets", Some(body)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"message":"The offsets for this connector have been altered successfully"})
    );
    let sent = h.fake.lock().last_offsets.clone().expect("altered");
    assert_eq!(sent.offsets.len(), 2);
    assert_eq!(sent.offsets[1].offset, None);
    for empty in [r#"{"offsets":[]}"#, "{}", r#"{"offsets":null}"#] {
        h.call("PATCH", "/connectors/o/offsets", Some(empty))
            .await
            .assert_error(
                400,
                "Partitions / offsets need to be provided for an alter offsets request",
            );
    }
    let a = h.call("DELETE", "/connectors/o/offsets", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"message":"The offsets for this connector have been reset successfully"})
    );
    h.get("/connectors/x/offsets")
        .await
        .assert_error(404, "Connector x not found");
}

#[tokio::test]
async fn progress_extension() {
    let h = harness();
    h.fake.add("c", "FileStreamSource", 1);
    let a = h.get("/connectors/c/progress").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), json!({"records":5}));
    h.get("/connectors/x/progress")
        .await
        .assert_error(404, "Connector x not found");
}

// ---------------------------------------------------------------- plugins

#[tokio::test]
async fn plugins() {
    let h = harness();
    let a = h.get("/connector-plugins").await;
    assert_eq!(
        a.json(),
        json!([{"class":"FileStreamSinkConnector","type":"sink","version":"3.9.0"},
               {"class":"FileStreamSourceConnector","type":"source"}])
    );
    let a = h.get("/connector-plugins?connectorsOnly=false").await;
    assert_eq!(a.json().as_array().map(Vec::len), Some(3));
    // Boolean.valueOf: anything but "true" is false.
    let a = h.get("/connector-plugins?connectorsOnly=yes").await;
    assert_eq!(a.json().as_array().map(Vec::len), Some(3));

    let a = h.get("/connector-plugins/FileStreamSource/config").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), json!([key_info_json()]));
    h.get("/connector-plugins/Nope/config")
        .await
        .assert_error(404, "Unknown plugin Nope.");
}

#[tokio::test]
async fn validate() {
    let h = harness();
    let a = h
        .call(
            "PUT",
            "/connector-plugins/FileStreamSource/config/validate",
            Some(r#"{"connector.class":"org.example.FileStreamSourceConnector","file":"/in","tasks.max":2}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"name":"org.example.FileStreamSourceConnector","error_count":0,"groups":["Common"],
               "configs":[{"definition":key_info_json(),
                           "value":{"name":"file","value":"/in","recommended_values":[],"errors":[],"visible":true}}]})
    );
    let (plugin, props) = h.fake.lock().last_validate.clone().expect("validated");
    assert_eq!(plugin, "FileStreamSource");
    assert_eq!(props.get("tasks.max").map(String::as_str), Some("2"));

    h.call(
        "PUT",
        "/connector-plugins/FileStreamSink/config/validate",
        Some(r#"{"connector.class":"FileStreamSourceConnector"}"#),
    )
    .await
    .assert_error(
        400,
        "Included connector type FileStreamSourceConnector does not match request type FileStreamSink",
    );
    h.call(
        "PUT",
        "/connector-plugins/X/config/validate",
        Some(r#"{"topic":"t","tasks.max":1}"#),
    )
    .await
    .assert_error(
        400,
        "Connector config {topic=t, tasks.max=1} contains no connector type",
    );

    // Null values: an error on the known key, and a definition-less entry otherwise.
    let a = h
        .call(
            "PUT",
            "/connector-plugins/FileStreamSourceConnector/config/validate",
            Some(r#"{"connector.class":"FileStreamSource","file":null,"other":null}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["error_count"], 2);
    assert_eq!(
        v["configs"][0]["value"]["errors"],
        json!(["Null value can not be supplied as the configuration value."])
    );
    assert_eq!(
        v["configs"][1],
        json!({"definition":null,"value":{"name":"other","value":null,"recommended_values":[],
               "errors":["Null value can not be supplied as the configuration value."],"visible":true}})
    );
}

// ---------------------------------------------------------------- loggers

#[tokio::test]
async fn loggers() {
    let h = harness();
    let a = h.get("/admin/loggers").await;
    assert_eq!(
        a.json(),
        json!({"root":{"level":"INFO","last_modified":null}})
    );
    h.get("/admin/loggers/connectd")
        .await
        .assert_error(404, "Logger connectd not found.");

    let a = h
        .call(
            "PUT",
            "/admin/loggers/connectd::rest",
            Some(r#"{"level":"debug"}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), json!(["connectd::rest"]));
    let a = h
        .call(
            "PUT",
            "/admin/loggers/connectd?scope=worker",
            Some(r#"{"level":"WARN"}"#),
        )
        .await;
    assert_eq!(a.json(), json!(["connectd", "connectd::rest"]));
    let a = h.get("/admin/loggers/connectd::rest").await;
    assert_eq!(a.json()["level"], "WARN");
    assert!(a.json()["last_modified"].is_u64());
    let all = h.get("/admin/loggers").await.json();
    assert_eq!(
        all.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec![
            "connectd".to_string(),
            "connectd::rest".to_string(),
            "root".to_string()
        ])
    );
    assert_eq!(
        h.state.loggers().directives(),
        "info,connectd=warn,connectd::rest=warn"
    );

    // cluster scope: recorded through the herder (the config topic), 204;
    // this worker applies it only when it reads the record back.
    let before = h.get("/admin/loggers/root").await.json()["level"].clone();
    let a = h
        .call(
            "PUT",
            "/admin/loggers/root?scope=cluster",
            Some(r#"{"level":"error"}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(a.raw.is_empty());
    assert!(h
        .fake
        .lock()
        .calls
        .contains(&"cluster-log-level root ERROR".to_string()));
    assert_eq!(h.get("/admin/loggers/root").await.json()["level"], before);
    let a = h
        .call(
            "PUT",
            "/admin/loggers/root?scope=cluster",
            Some(r#"{"level":"LOUD"}"#),
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::NOT_FOUND,
        "an invalid level is refused before writing"
    );

    // Unknown scope falls back to worker.
    let a = h
        .call(
            "PUT",
            "/admin/loggers/x?scope=galaxy",
            Some(r#"{"level":"TRACE"}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), json!(["x"]));

    h.call("PUT", "/admin/loggers/x", Some(r#"{"level":"LOUD"}"#))
        .await
        .assert_error(404, "invalid log level 'LOUD'.");
    h.call("PUT", "/admin/loggers/x", Some(r#"{"lvl":"INFO"}"#))
        .await
        .assert_error(
            400,
            "Desired 'level' parameter was not specified in request.",
        );
    h.call("PUT", "/admin/loggers/x", Some(r#"{"level":null}"#))
        .await
        .assert_error(
            400,
            "Desired 'level' parameter was not specified in request.",
        );
    let a = h
        .call("PUT", "/admin/loggers/a%3Db", Some(r#"{"level":"INFO"}"#))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

// ---------------------------------------------------------------- CORS

fn cors_harness(methods: &str) -> Harness {
    harness_with(RestConfig {
        cors_allow_origin: "http://ui.example.com,http://*.test".into(),
        cors_allow_methods: methods.into(),
        ..RestConfig::default()
    })
}

async fn preflight(h: &Harness, origin: &str, method: &str, headers: Option<&str>) -> Answer {
    let mut b = Request::builder()
        .method("OPTIONS")
        .uri("/connectors")
        .header("origin", origin)
        .header("access-control-request-method", method);
    if let Some(hs) = headers {
        b = b.header("access-control-request-headers", hs);
    }
    h.send(b.body(Full::new(Bytes::new())).expect("request"))
        .await
}

#[tokio::test]
async fn cors_preflight_and_simple() {
    let h = cors_harness("");
    let a = preflight(
        &h,
        "http://ui.example.com",
        "POST",
        Some("content-type, accept"),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("http://ui.example.com")
    );
    assert_eq!(
        a.header("access-control-allow-methods"),
        Some("GET,POST,HEAD")
    );
    assert_eq!(
        a.header("access-control-allow-headers"),
        Some("X-Requested-With,Content-Type,Accept,Origin")
    );
    assert_eq!(a.header("access-control-max-age"), Some("1800"));
    assert_eq!(a.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(a.header("vary"), Some("Origin"));

    // Default methods do not include PUT; a foreign origin gets nothing.
    let a = preflight(&h, "http://ui.example.com", "PUT", None).await;
    assert!(a.header("access-control-allow-origin").is_none());
    let a = preflight(&h, "http://evil.com", "GET", None).await;
    assert!(a.header("access-control-allow-origin").is_none());
    let a = preflight(&h, "http://ui.example.com", "GET", Some("X-Custom")).await;
    assert!(a.header("access-control-allow-origin").is_none());
    // Wildcard origin patterns.
    let a = preflight(&h, "http://a.b.test", "GET", None).await;
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("http://a.b.test")
    );

    // Simple request: origin echoed, no preflight headers.
    let req = Request::builder()
        .uri("/")
        .header("origin", "http://ui.example.com")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let a = h.send(req).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("http://ui.example.com")
    );
    assert!(a.header("access-control-allow-methods").is_none());

    // Configured methods replace the default.
    let h = cors_harness("GET,PUT,DELETE");
    let a = preflight(&h, "http://ui.example.com", "PUT", None).await;
    assert_eq!(
        a.header("access-control-allow-methods"),
        Some("GET,PUT,DELETE")
    );

    // Any origin: no Vary.
    let h = harness_with(RestConfig {
        cors_allow_origin: "*".into(),
        ..RestConfig::default()
    });
    let a = preflight(&h, "http://x", "GET", None).await;
    assert_eq!(a.header("access-control-allow-origin"), Some("http://x"));
    assert!(a.header("vary").is_none());
}

#[tokio::test]
async fn cors_disabled_adds_nothing() {
    let h = harness();
    let a = preflight(&h, "http://ui.example.com", "GET", None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(a.header("access-control-allow-origin").is_none());
}

// ---------------------------------------------------------------- routing units

#[test]
fn route_parsing() {
    use routes::Route as R;
    assert_eq!(R::parse("/"), Some(R::Root));
    assert_eq!(R::parse("/connectors/"), Some(R::Connectors));
    assert_eq!(
        R::parse("/connectors/a%2Fb"),
        Some(R::Connector("a/b".into()))
    );
    assert_eq!(
        R::parse("/connectors/a+b/"),
        Some(R::Connector("a+b".into()))
    );
    assert_eq!(
        R::parse("/connectors/x/tasks/3/restart"),
        Some(R::TaskRestart("x".into(), "3".into()))
    );
    assert_eq!(
        R::parse("/connector-plugins/p/config/validate"),
        Some(R::PluginValidate("p".into()))
    );
    assert_eq!(
        R::parse("/admin/loggers/org.apache"),
        Some(R::Logger("org.apache".into()))
    );
    assert_eq!(R::parse("/connectors/x/y"), None);
    assert_eq!(R::parse("no-slash"), None);
    assert_eq!(routes::percent_decode("a%zz%4", false), "a%zz%4");
    assert_eq!(routes::percent_decode("a+b%20c", true), "a b c");
    let q = routes::Query::parse(Some("expand=status&expand=info&x&y=%41"));
    assert_eq!(q.all("expand").collect::<Vec<_>>(), vec!["status", "info"]);
    assert_eq!(q.first("x"), Some(""));
    assert_eq!(q.first("y"), Some("A"));
    assert_eq!(routes::encode_segment("a b/ç"), "a%20b%2F%C3%A7");
}

#[test]
fn herder_error_status_mapping() {
    let e: error::ApiError = HerderError::new(409, "c").into();
    assert_eq!(e.status, StatusCode::CONFLICT);
    let e: error::ApiError = HerderError::new(200, "odd").into();
    assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    let e: error::ApiError = HerderError::new(7, "odd").into();
    assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
}

/// A herder whose every call panics, to prove a panic becomes a 500 body.
struct PanickingHerder;

#[async_trait]
impl Herder for PanickingHerder {
    async fn server_info(&self) -> ServerInfo {
        panic!("boom")
    }
    async fn set_cluster_log_level(&self, _: &str, _: &str) -> HerderResult<()> {
        panic!("boom")
    }
    async fn put_task_configs_internal(
        &self,
        _: &str,
        _: &[u8],
        _: &crate::herder::signing::RequestSignature,
    ) -> HerderResult<()> {
        panic!("boom")
    }
    async fn health(&self) -> WorkerHealth {
        panic!("boom")
    }
    async fn connectors(&self) -> Vec<String> {
        panic!("boom")
    }
    async fn connector_info(&self, _: &str) -> HerderResult<ConnectorInfo> {
        panic!("boom")
    }
    async fn connector_config(&self, _: &str) -> HerderResult<Props> {
        panic!("boom")
    }
    async fn put_connector_config(
        &self,
        _: &str,
        _: Props,
        _: bool,
        _: Option<TargetState>,
    ) -> HerderResult<(bool, ConnectorInfo)> {
        panic!("boom")
    }
    async fn patch_connector_config(
        &self,
        _: &str,
        _: BTreeMap<String, Option<String>>,
    ) -> HerderResult<ConnectorInfo> {
        panic!("boom")
    }
    async fn delete_connector(&self, _: &str) -> HerderResult<()> {
        panic!("boom")
    }
    async fn connector_status(&self, _: &str) -> HerderResult<ConnectorStateInfo> {
        panic!("boom")
    }
    async fn task_status(&self, _: &str, _: u32) -> HerderResult<TaskState> {
        panic!("boom")
    }
    async fn task_configs(&self, _: &str) -> HerderResult<Vec<TaskInfo>> {
        panic!("boom")
    }
    async fn restart_connector(
        &self,
        _: &str,
        _: bool,
        _: bool,
    ) -> HerderResult<Option<ConnectorStateInfo>> {
        panic!("boom")
    }
    async fn restart_task(&self, _: &str, _: u32) -> HerderResult<()> {
        panic!("boom")
    }
    async fn pause_connector(&self, _: &str) -> HerderResult<()> {
        panic!("boom")
    }
    async fn resume_connector(&self, _: &str) -> HerderResult<()> {
        panic!("boom")
    }
    async fn stop_connector(&self, _: &str) -> HerderResult<()> {
        panic!("boom")
    }
    async fn connector_topics(&self, _: &str) -> HerderResult<Vec<String>> {
        panic!("boom")
    }
    async fn reset_connector_topics(&self, _: &str) -> HerderResult<()> {
        panic!("boom")
    }
    async fn connector_offsets(&self, _: &str) -> HerderResult<ConnectorOffsets> {
        panic!("boom")
    }
    async fn alter_connector_offsets(&self, _: &str, _: ConnectorOffsets) -> HerderResult<Message> {
        panic!("boom")
    }
    async fn reset_connector_offsets(&self, _: &str) -> HerderResult<Message> {
        panic!("boom")
    }
    async fn connector_progress(&self, _: &str) -> HerderResult<Progress> {
        panic!("boom")
    }
    async fn plugins(&self, _: bool) -> Vec<PluginInfo> {
        panic!("boom")
    }
    async fn plugin_config(&self, _: &str) -> HerderResult<Vec<ConfigKeyInfo>> {
        panic!("boom")
    }
    async fn validate_config(&self, _: &str, _: Props) -> HerderResult<ConfigInfos> {
        panic!("boom")
    }
}

#[tokio::test]
async fn handler_panic_is_500() {
    let state = RestState::new(
        Arc::new(PanickingHerder),
        Loggers::for_tests(),
        RestConfig::default(),
    );
    let h = Harness {
        fake: Arc::new(FakeHerder::default()),
        state,
    };
    h.get("/").await.assert_error(500, "Internal server error");
}

// ---------------------------------------------------------------- real socket

async fn raw_http(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn serves_over_tcp_and_stops_on_cancel() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = Arc::new(FakeHerder::default());
    fake.add("tcp", "FileStreamSource", 1);
    let state = Arc::new(RestState::new(
        fake.clone(),
        Loggers::for_tests(),
        RestConfig::default(),
    ));
    let cancel = CancellationToken::new();
    let server = tokio::spawn(serve(listener, state, cancel.clone()));

    let resp = raw_http(
        addr,
        "GET /connectors/tcp/status HTTP/1.1\r\nHost: h:1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(
        resp.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{resp}"
    );
    assert!(resp.contains(r#""name":"tcp""#), "{resp}");

    let body = create_body("new");
    let resp = raw_http(
        addr,
        &format!(
            "POST /connectors HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 201 Created\r\n"), "{resp}");
    assert!(
        resp.to_ascii_lowercase()
            .contains("location: http://h:1/connectors/new"),
        "{resp}"
    );

    // HEAD answers headers only.
    let resp = raw_http(
        addr,
        "HEAD / HTTP/1.1\r\nHost: h:1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(resp.ends_with("\r\n\r\n"), "no body after HEAD: {resp}");

    // A request in flight when shutdown starts still gets its answer.
    fake.lock().server_info_delay = Some(std::time::Duration::from_millis(300));
    let in_flight = tokio::spawn(raw_http(addr, "GET / HTTP/1.1\r\nHost: h:1\r\n\r\n"));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    // An idle keep-alive connection must not hold up shutdown.
    let idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    cancel.cancel();
    let done = tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .expect("serve stops promptly after cancel")
        .expect("no panic");
    assert!(done.is_ok());
    let resp = in_flight.await.expect("no panic");
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(resp.contains(r#""version":"3.9.0""#), "{resp}");
    drop(idle);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

// ---------------------------------------------------------------- internal endpoints

/// A follower's `POST /connectors/{name}/tasks` reaches the herder with its
/// exact body and its KIP-507 headers (the herder checks the signature); the
/// same path still answers GET with the task list.
#[tokio::test]
async fn internal_task_configs_reach_the_herder_with_body_and_signature() {
    let h = harness();
    let body = r#"[{"task.class":"X","k":"v"}]"#;
    let req = Request::builder()
        .method("POST")
        .uri("/connectors/a%2Fb/tasks?forward=true")
        .header("host", "worker1:8083")
        .header("content-type", "application/json")
        .header("X-Connect-Authorization", "c2ln")
        .header("X-Connect-Request-Signature-Algorithm", "HmacSHA256")
        .body(Full::new(Bytes::from(body)))
        .expect("valid request");
    let a = h.send(req).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(h.fake.lock().calls.contains(&format!(
        "task-configs a/b {body} Some(\"c2ln\") Some(\"HmacSHA256\")"
    )));
    let a = h.call("POST", "/connectors/a/tasks", Some("[]")).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(h
        .fake
        .lock()
        .calls
        .contains(&"task-configs a [] None None".to_string()));
    let a = h.call("PUT", "/connectors/a/tasks", Some("[]")).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.header("allow"), Some("GET,POST,HEAD,OPTIONS"));
}

/// A follower forwards a leader-only write to the leader's URL with
/// `forward=true`, the original query and `Authorization`; it turns a
/// redirect or an unreachable leader into 500 and does not forward a request
/// that says `forward=false`.
#[tokio::test]
async fn leader_only_writes_are_forwarded_and_forwarding_failures_are_500() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let leader = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let leader_url = format!("http://{}/", leader.local_addr().unwrap());
    let seen = tokio::spawn(async move {
        let (mut conn, _) = leader.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = conn.read(&mut buf).await.unwrap();
        conn.write_all(b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    let h = harness();
    h.fake.lock().leader_url = Some(leader_url);
    let req = Request::builder()
        .method("DELETE")
        .uri("/connectors/a%2Fb?x=1")
        .header("host", "worker1:8083")
        .header("authorization", "Basic dTpw")
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    h.send(req).await.assert_error(
        500,
        "Unexpected status code when handling forwarded request: 302",
    );
    let request = seen.await.unwrap();
    let head = request.lines().next().unwrap_or_default();
    assert_eq!(head, "DELETE /connectors/a%2Fb?x=1&forward=true HTTP/1.1");
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: basic dtpw"),
        "{request}"
    );

    h.call("DELETE", "/connectors/a?forward=false", None)
        .await
        .assert_error(
            409,
            "Cannot complete request because of a conflicting operation (e.g. worker rebalance)",
        );

    h.fake.lock().leader_url = Some("http://127.0.0.1:1/".into());
    let a = h.call("DELETE", "/connectors/a", None).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    let message = a.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.starts_with("IO Error trying to forward REST request: ")
            && message.contains("127.0.0.1:1"),
        "{message}"
    );
}
