//! What the REST layer asks of a herder, and the JSON shapes it answers with.
//!
//! The types serialize to exactly the Java worker's REST bodies (contract §1),
//! so the REST layer is a thin translation from HTTP to these calls.

use std::collections::BTreeMap;

use async_trait::async_trait;
use connect_api::config::{ConfigValueInfo, Props};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A failure with the HTTP status the Java worker would answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct HerderError {
    pub status: u16,
    pub message: String,
    /// Set when only another worker can do this (the leader, or the owner
    /// of a connector or task) and its REST URL is known: the REST layer
    /// forwards the request there (contract §1.2).
    pub forward_to: Option<String>,
}

impl HerderError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        HerderError {
            status,
            message: message.into(),
            forward_to: None,
        }
    }
    /// Only the worker at `url` can answer this request (Java's
    /// `RequestTargetException`); answered with 409 where it is not forwarded.
    pub fn request_target(url: &str) -> Self {
        HerderError {
            forward_to: Some(url.to_string()),
            ..Self::conflict(
                "Cannot complete request because of a conflicting operation (e.g. worker rebalance)",
            )
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }
}

pub type HerderResult<T> = Result<T, HerderError>;

/// Target state of a connector, as stored in the config topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TargetState {
    Started,
    Paused,
    Stopped,
}

impl TargetState {
    /// Parses `initial_state` of a create request (case-insensitive).
    pub fn from_initial_state(s: &str) -> Option<TargetState> {
        match s.to_ascii_uppercase().as_str() {
            "RUNNING" => Some(TargetState::Started),
            "PAUSED" => Some(TargetState::Paused),
            "STOPPED" => Some(TargetState::Stopped),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub version: String,
    pub commit: String,
    pub kafka_cluster_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorTaskId {
    pub connector: String,
    pub task: u32,
}

/// `GET /connectors/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorInfo {
    pub name: String,
    pub config: Props,
    pub tasks: Vec<ConnectorTaskId>,
    #[serde(rename = "type")]
    pub kind: String,
}

/// One entry of `GET /connectors/{name}/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub id: ConnectorTaskId,
    pub config: Props,
}

/// The state of a connector or task in REST status bodies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorState {
    pub state: String,
    pub worker_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    pub id: u32,
    pub state: String,
    pub worker_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trace: Option<String>,
}

/// `GET /connectors/{name}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorStateInfo {
    pub name: String,
    pub connector: ConnectorState,
    pub tasks: Vec<TaskState>,
    #[serde(rename = "type")]
    pub kind: String,
}

/// One partition/offset pair of the offsets API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorOffset {
    pub partition: serde_json::Map<String, Json>,
    pub offset: Option<serde_json::Map<String, Json>>,
}

/// `GET /connectors/{name}/offsets`, and the body of PATCH.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorOffsets {
    pub offsets: Vec<ConnectorOffset>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    #[serde(rename = "class")]
    pub class_name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `definition` of ConfigInfos and one element of `GET /connector-plugins/{p}/config`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigKeyInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub config_type: String,
    pub required: bool,
    pub default_value: Option<String>,
    pub importance: String,
    pub documentation: String,
    pub group: Option<String>,
    pub width: String,
    pub display_name: String,
    pub dependents: Vec<String>,
    pub order: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigInfo {
    pub definition: Option<ConfigKeyInfo>,
    pub value: ConfigValueInfo,
}

/// `PUT /connector-plugins/{p}/config/validate`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigInfos {
    pub name: String,
    pub error_count: usize,
    pub groups: Vec<String>,
    pub configs: Vec<ConfigInfo>,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerHealth {
    pub status: String,
    pub message: String,
    /// The HTTP status to answer with (200, 503 or 500); not serialized.
    #[serde(skip)]
    pub http_status: u16,
}

/// Extension endpoint `GET /connectors/{name}/progress`: free-form per connector.
pub type Progress = Json;

/// The operations the REST API needs. Implemented by the standalone and the
/// distributed herder; every method answers as the Java worker would.
#[async_trait]
pub trait Herder: Send + Sync {
    async fn server_info(&self) -> ServerInfo;
    async fn health(&self) -> WorkerHealth;
    async fn connectors(&self) -> Vec<String>;
    async fn connector_info(&self, name: &str) -> HerderResult<ConnectorInfo>;
    async fn connector_config(&self, name: &str) -> HerderResult<Props>;
    /// Creates or replaces a connector. `allow_replace=false` answers 409 for an
    /// existing name (POST); returns whether it was created.
    async fn put_connector_config(
        &self,
        name: &str,
        config: Props,
        allow_replace: bool,
        initial_state: Option<TargetState>,
    ) -> HerderResult<(bool, ConnectorInfo)>;
    /// Merges a partial config: `None` values remove keys.
    async fn patch_connector_config(
        &self,
        name: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> HerderResult<ConnectorInfo>;
    async fn delete_connector(&self, name: &str) -> HerderResult<()>;
    async fn connector_status(&self, name: &str) -> HerderResult<ConnectorStateInfo>;
    async fn task_status(&self, name: &str, task: u32) -> HerderResult<TaskState>;
    async fn task_configs(&self, name: &str) -> HerderResult<Vec<TaskInfo>>;
    /// Returns `None` for the plain restart (204), or the 202 body.
    async fn restart_connector(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> HerderResult<Option<ConnectorStateInfo>>;
    async fn restart_task(&self, name: &str, task: u32) -> HerderResult<()>;
    async fn pause_connector(&self, name: &str) -> HerderResult<()>;
    async fn resume_connector(&self, name: &str) -> HerderResult<()>;
    async fn stop_connector(&self, name: &str) -> HerderResult<()>;
    async fn connector_topics(&self, name: &str) -> HerderResult<Vec<String>>;
    async fn reset_connector_topics(&self, name: &str) -> HerderResult<()>;
    async fn connector_offsets(&self, name: &str) -> HerderResult<ConnectorOffsets>;
    async fn alter_connector_offsets(
        &self,
        name: &str,
        offsets: ConnectorOffsets,
    ) -> HerderResult<Message>;
    async fn reset_connector_offsets(&self, name: &str) -> HerderResult<Message>;
    async fn connector_progress(&self, name: &str) -> HerderResult<Progress>;
    async fn plugins(&self, connectors_only: bool) -> Vec<PluginInfo>;
    async fn plugin_config(&self, plugin: &str) -> HerderResult<Vec<ConfigKeyInfo>>;
    async fn validate_config(&self, plugin: &str, config: Props) -> HerderResult<ConfigInfos>;
    /// `PUT /admin/loggers/{ns}?scope=cluster`: records the level in the
    /// config topic; every worker (this one too) applies it when it reads it.
    async fn set_cluster_log_level(&self, namespace: &str, level: &str) -> HerderResult<()>;
    /// Internal `POST /connectors/{name}/tasks`: a follower's new task
    /// configs (a JSON array of maps, `body` as received so that its
    /// signature can be checked), written by the leader.
    async fn put_task_configs_internal(
        &self,
        name: &str,
        body: &[u8],
        signature: &super::signing::RequestSignature,
    ) -> HerderResult<()>;
}
