//! One function per resource: parse the body and parameters the way the Java
//! worker's JAX-RS resources do, call the herder, and shape the answer.
//!
//! Deliberate differences from Java (all are client errors that Java reports as
//! 500 because Jackson mapping failures and NPEs fall into its catch-all):
//! malformed JSON, a body of the wrong JSON type, an unknown field in a create
//! request, a missing `config`, and an invalid `initial_state` all answer 400.

use std::collections::BTreeMap;

use bytes::Bytes;
use connect_api::config::{ConfigValueInfo, Props};
use http_body_util::Full;
use hyper::header::{HeaderValue, LOCATION};
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::error::{empty_response, json_response, ApiError};
use super::routes::{encode_segment, Query, Route};
use super::RestState;
use crate::herder::api::{ConfigInfo, ConfigInfos, ConnectorOffset, ConnectorOffsets, TargetState};
use crate::herder::signing::{RequestSignature, ALGORITHM_HEADER, SIGNATURE_HEADER};
use crate::logging::{LoggerError, Loggers};

type Resp = Response<Full<Bytes>>;
type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The longest connector name accepted on create/put. Java has no limit, but a
/// name ends up in Kafka record keys, consumer group ids (`connect-{name}`) and
/// transactional ids, and 255 keeps every derived identifier well within
/// Kafka's 32 KiB string limits and common file-name limits.
pub const MAX_CONNECTOR_NAME_CHARS: usize = 255;

const NULL_VALUE_MESSAGE: &str = "Null value can not be supplied as the configuration value.";

/// Everything a handler needs besides the route.
pub struct Call<'a> {
    pub state: &'a RestState,
    pub method: Method,
    pub query: Query,
    /// `http://host:port`, the base for `Location` headers.
    pub base_url: String,
    /// The request body, read only for the resources that consume one.
    pub body: Bytes,
    /// The signature headers of an internal request.
    pub signature: RequestSignature,
}

/// Whether `method` on `route` consumes a JSON body (and so checks Content-Type).
pub fn consumes_body(route: &Route, method: &Method) -> bool {
    match route {
        Route::Connectors | Route::ConnectorTasks(_) => method == Method::POST,
        Route::ConnectorConfig(_) => method == Method::PUT || method == Method::PATCH,
        Route::ConnectorOffsets(_) => method == Method::PATCH,
        Route::PluginValidate(_) | Route::Logger(_) => method == Method::PUT,
        _ => false,
    }
}

/// The KIP-507 signature headers of a request, if it has them.
pub fn request_signature(headers: &hyper::HeaderMap) -> RequestSignature {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    RequestSignature {
        signature: get(SIGNATURE_HEADER),
        algorithm: get(ALGORITHM_HEADER),
    }
}

/// Runs the resource. `method` is already known to be allowed for `route`
/// (HEAD arrives here as GET).
pub async fn dispatch(call: &Call<'_>, route: Route) -> Result<Resp> {
    let herder = &call.state.herder;
    let m = &call.method;
    Ok(match route {
        Route::Root => json_response(StatusCode::OK, &herder.server_info().await),
        Route::Health => {
            let health = herder.health().await;
            let status = StatusCode::from_u16(health.http_status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            json_response(status, &health)
        }
        Route::Connectors if m == Method::GET => list_connectors(call).await?,
        Route::Connectors => create_connector(call).await?,
        Route::Connector(name) if m == Method::DELETE => {
            herder.delete_connector(&name).await?;
            empty_response(StatusCode::NO_CONTENT)
        }
        Route::Connector(name) => ok(&herder.connector_info(&name).await?),
        Route::ConnectorConfig(name) if m == Method::PUT => put_config(call, &name).await?,
        Route::ConnectorConfig(name) if m == Method::PATCH => {
            let patch = parse_patch(&parse_json(&call.body)?)?;
            ok(&herder.patch_connector_config(&name, patch).await?)
        }
        Route::ConnectorConfig(name) => ok(&herder.connector_config(&name).await?),
        Route::ConnectorStatus(name) => ok(&herder.connector_status(&name).await?),
        Route::ConnectorRestart(name) => {
            let include_tasks = call.query.bool("includeTasks", false);
            let only_failed = call.query.bool("onlyFailed", false);
            match herder
                .restart_connector(&name, include_tasks, only_failed)
                .await?
            {
                None => empty_response(StatusCode::NO_CONTENT),
                Some(info) => json_response(StatusCode::ACCEPTED, &info),
            }
        }
        Route::ConnectorPause(name) => {
            herder.pause_connector(&name).await?;
            empty_response(StatusCode::ACCEPTED)
        }
        Route::ConnectorResume(name) => {
            herder.resume_connector(&name).await?;
            empty_response(StatusCode::ACCEPTED)
        }
        Route::ConnectorStop(name) => {
            herder.stop_connector(&name).await?;
            empty_response(StatusCode::NO_CONTENT)
        }
        Route::ConnectorTasks(name) if m == Method::POST => {
            herder
                .put_task_configs_internal(&name, &call.body, &call.signature)
                .await?;
            empty_response(StatusCode::NO_CONTENT)
        }
        Route::ConnectorTasks(name) => ok(&herder.task_configs(&name).await?),
        Route::ConnectorTasksConfig(name) => {
            // Deprecated map form: "{name}-{n}" -> config, in task order.
            let tasks = herder.task_configs(&name).await?;
            let map: Map<String, Json> = tasks
                .into_iter()
                .map(|t| {
                    let config = Json::Object(
                        t.config
                            .into_iter()
                            .map(|(k, v)| (k, Json::String(v)))
                            .collect(),
                    );
                    (format!("{}-{}", t.id.connector, t.id.task), config)
                })
                .collect();
            ok(&map)
        }
        Route::TaskStatus(name, task) => ok(&herder.task_status(&name, task_index(&task)?).await?),
        Route::TaskRestart(name, task) => {
            herder.restart_task(&name, task_index(&task)?).await?;
            empty_response(StatusCode::NO_CONTENT)
        }
        Route::ConnectorTopics(name) => {
            let topics = herder.connector_topics(&name).await?;
            ok(&serde_json::json!({ name: { "topics": topics } }))
        }
        Route::ConnectorTopicsReset(name) => {
            herder.reset_connector_topics(&name).await?;
            empty_response(StatusCode::ACCEPTED)
        }
        Route::ConnectorOffsets(name) if m == Method::PATCH => {
            let offsets = parse_offsets(&call.body)?;
            ok(&herder.alter_connector_offsets(&name, offsets).await?)
        }
        Route::ConnectorOffsets(name) if m == Method::DELETE => {
            ok(&herder.reset_connector_offsets(&name).await?)
        }
        Route::ConnectorOffsets(name) => ok(&herder.connector_offsets(&name).await?),
        Route::ConnectorProgress(name) => ok(&herder.connector_progress(&name).await?),
        Route::Plugins => {
            let connectors_only = call.query.bool("connectorsOnly", true);
            ok(&herder.plugins(connectors_only).await)
        }
        Route::PluginConfig(plugin) => ok(&herder.plugin_config(&plugin).await?),
        Route::PluginValidate(plugin) => validate(call, &plugin).await?,
        Route::Loggers => ok(&call.state.loggers.get_all()),
        Route::Logger(name) if m == Method::PUT => set_logger(call, &name).await?,
        Route::Logger(name) => match call.state.loggers.get(&name) {
            Some(level) => ok(&level),
            None => return Err(ApiError::not_found(format!("Logger {name} not found."))),
        },
    })
}

fn ok<T: serde::Serialize + ?Sized>(value: &T) -> Resp {
    json_response(StatusCode::OK, value)
}

/// A task index path parameter; one that is not an integer is an unknown path,
/// as when Jersey cannot convert a path parameter.
fn task_index(raw: &str) -> Result<u32> {
    raw.parse().map_err(|_| ApiError::unknown_path())
}

/// `GET /connectors[?expand=status&expand=info]`.
async fn list_connectors(call: &Call<'_>) -> Result<Resp> {
    let herder = &call.state.herder;
    let names = herder.connectors().await;
    let expand: Vec<&str> = call.query.all("expand").collect();
    if expand.is_empty() {
        return Ok(ok(&names));
    }
    let mut out = Map::new();
    'connectors: for name in names {
        let mut entry = Map::new();
        for kind in &expand {
            let value = if kind.eq_ignore_ascii_case("status") {
                ("status", herder.connector_status(&name).await.map(to_json))
            } else if kind.eq_ignore_ascii_case("info") {
                ("info", herder.connector_info(&name).await.map(to_json))
            } else {
                // Unknown expansions are ignored, as in Java.
                continue;
            };
            match value {
                (key, Ok(v)) => {
                    entry.insert(key.to_string(), v?);
                }
                // The connector went away (or has no status yet) while we looked
                // it up: leave it out, like Java.
                (_, Err(e)) if e.status == 404 => continue 'connectors,
                (_, Err(e)) => return Err(e.into()),
            }
        }
        out.insert(name, Json::Object(entry));
    }
    Ok(ok(&out))
}

fn to_json<T: serde::Serialize>(value: T) -> Result<Json> {
    serde_json::to_value(value)
        .map_err(|e| ApiError::internal(format!("Failed to serialize the response: {e}")))
}

/// `POST /connectors`.
async fn create_connector(call: &Call<'_>) -> Result<Resp> {
    let body = parse_json(&call.body)?;
    let Json::Object(obj) = body else {
        return Err(ApiError::bad_request(
            "The request body must be a JSON object with 'name' and 'config'",
        ));
    };
    if let Some(field) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "config" | "initial_state"))
    {
        return Err(ApiError::bad_request(format!(
            "Unrecognized field \"{field}\" in the request body; the known fields are \"name\", \"config\" and \"initial_state\""
        )));
    }
    // A missing name becomes "" (then rejected), and the name is trimmed.
    let name = match obj.get("name") {
        None | Some(Json::Null) => String::new(),
        Some(v) => scalar_string(v)
            .ok_or_else(|| ApiError::bad_request("The 'name' field must be a string"))?
            .trim()
            .to_string(),
    };
    let initial_state = match obj.get("initial_state") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(TargetState::from_initial_state(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid initial_state '{s}'; the valid values are RUNNING, PAUSED and STOPPED"
            ))
        })?),
        Some(_) => {
            return Err(ApiError::bad_request(
                "The 'initial_state' field must be a string",
            ))
        }
    };
    let config = match obj.get("config") {
        None | Some(Json::Null) => {
            return Err(ApiError::bad_request(
                "The request body contains no 'config'",
            ))
        }
        Some(c) => c,
    };
    validate_name(&name)?;
    let props = connector_props(&name, parse_props(config)?)?;
    let (_, info) = call
        .state
        .herder
        .put_connector_config(&name, props, false, initial_state)
        .await?;
    created(&call.base_url, &name, &info)
}

/// `PUT /connectors/{name}/config`.
async fn put_config(call: &Call<'_>, name: &str) -> Result<Resp> {
    let body = parse_json(&call.body)?;
    validate_name(name)?;
    let props = connector_props(name, parse_props(&body)?)?;
    let (was_created, info) = call
        .state
        .herder
        .put_connector_config(name, props, true, None)
        .await?;
    if was_created {
        created(&call.base_url, name, &info)
    } else {
        Ok(ok(&info))
    }
}

/// 201 with an absolute `Location` (Jersey resolves it against the request URL).
fn created<T: serde::Serialize>(base_url: &str, name: &str, body: &T) -> Result<Resp> {
    let mut resp = json_response(StatusCode::CREATED, body);
    let location = format!("{base_url}/connectors/{}", encode_segment(name));
    let value = HeaderValue::from_str(&location)
        .map_err(|_| ApiError::internal("Could not build the Location header"))?;
    resp.headers_mut().insert(LOCATION, value);
    Ok(resp)
}

/// Rejects names that cannot work as a connector name (create and put only).
pub fn validate_name(name: &str) -> Result<()> {
    let problem = if name.trim().is_empty() {
        "must not be empty".to_string()
    } else if name.chars().count() > MAX_CONNECTOR_NAME_CHARS {
        format!("must be at most {MAX_CONNECTOR_NAME_CHARS} characters long")
    } else if name.contains('/') {
        "must not contain '/'".to_string()
    } else if name.chars().any(char::is_control) {
        "must not contain ISO control characters".to_string()
    } else {
        return Ok(());
    };
    Err(ApiError::bad_request(format!("Connector name {problem}")))
}

/// A config map as Jackson reads `Map<String,String>`: strings as is, numbers and
/// booleans as their text, nulls reported separately (they fail validation
/// later, with a per-key error), objects and arrays refused.
struct ParsedProps {
    props: Props,
    null_keys: Vec<String>,
    /// Java's `Map.toString()` of the body, for the "no connector type" message.
    display: String,
}

fn parse_props(value: &Json) -> Result<ParsedProps> {
    let Json::Object(obj) = value else {
        return Err(ApiError::bad_request(
            "The connector configuration must be a JSON object of string values",
        ));
    };
    let mut props = Props::new();
    let mut null_keys = Vec::new();
    let mut shown = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        match v {
            Json::Null => {
                null_keys.push(k.clone());
                shown.push(format!("{k}=null"));
            }
            other => {
                let s = scalar_string(other).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "The value of configuration '{k}' must be a string, number or boolean"
                    ))
                })?;
                shown.push(format!("{k}={s}"));
                props.insert(k.clone(), s);
            }
        }
    }
    Ok(ParsedProps {
        props,
        null_keys,
        display: format!("{{{}}}", shown.join(", ")),
    })
}

/// The name rule of create and put: a `name` in the config must equal the
/// connector name; an absent (or null) one is filled in. Other null values are
/// refused with Java's validation wording, naming each key.
fn connector_props(name: &str, parsed: ParsedProps) -> Result<Props> {
    let ParsedProps {
        mut props,
        null_keys,
        ..
    } = parsed;
    match props.get("name") {
        Some(included) if included != name => {
            return Err(ApiError::bad_request(format!(
                "Connector name configuration ({included}) doesn't match connector name in the URL ({name})"
            )))
        }
        Some(_) => {}
        None => {
            props.insert("name".to_string(), name.to_string());
        }
    }
    let nulls: Vec<&String> = null_keys.iter().filter(|k| k.as_str() != "name").collect();
    if !nulls.is_empty() {
        let mut msg = format!(
            "Connector configuration is invalid and contains the following {} error(s):",
            nulls.len()
        );
        for k in nulls {
            msg.push_str(&format!(
                "\nInvalid value null for configuration {k}: {NULL_VALUE_MESSAGE}"
            ));
        }
        msg.push_str("\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`");
        return Err(ApiError::bad_request(msg));
    }
    Ok(props)
}

/// PATCH bodies: JSON null removes the key.
fn parse_patch(value: &Json) -> Result<BTreeMap<String, Option<String>>> {
    let Json::Object(obj) = value else {
        return Err(ApiError::bad_request(
            "The configuration patch must be a JSON object",
        ));
    };
    obj.iter()
        .map(|(k, v)| match v {
            Json::Null => Ok((k.clone(), None)),
            other => scalar_string(other)
                .map(|s| (k.clone(), Some(s)))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                    "The value of configuration '{k}' must be a string, number, boolean or null"
                ))
                }),
        })
        .collect()
}

/// Jackson's coercion of a scalar to `String`.
fn scalar_string(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Null | Json::Array(_) | Json::Object(_) => None,
    }
}

/// `PATCH /connectors/{name}/offsets`.
fn parse_offsets(body: &Bytes) -> Result<ConnectorOffsets> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        offsets: Option<Vec<ConnectorOffset>>,
    }
    let parsed: Body = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid request body: {e}")))?;
    match parsed.offsets {
        Some(offsets) if !offsets.is_empty() => Ok(ConnectorOffsets { offsets }),
        _ => Err(ApiError::bad_request(
            "Partitions / offsets need to be provided for an alter offsets request",
        )),
    }
}

/// `PUT /connector-plugins/{plugin}/config/validate`.
async fn validate(call: &Call<'_>, plugin: &str) -> Result<Resp> {
    let parsed = parse_props(&parse_json(&call.body)?)?;
    let Some(class) = parsed.props.get("connector.class").cloned() else {
        return Err(ApiError::bad_request(format!(
            "Connector config {} contains no connector type",
            parsed.display
        )));
    };
    if !normalized_plugin_name(&class).ends_with(normalized_plugin_name(plugin)) {
        return Err(ApiError::bad_request(format!(
            "Included connector type {class} does not match request type {plugin}"
        )));
    }
    let mut infos = call
        .state
        .herder
        .validate_config(plugin, parsed.props)
        .await?;
    add_null_errors(&mut infos, &parsed.null_keys);
    Ok(ok(&infos))
}

/// Works for simple and fully qualified class names, as in Java.
fn normalized_plugin_name(name: &str) -> &str {
    name.strip_suffix("Connector").unwrap_or(name)
}

/// The herder never sees null values (configs are string maps), so the REST
/// layer adds Java's per-key error for them, with a `null` definition when the
/// connector does not define the key.
fn add_null_errors(infos: &mut ConfigInfos, null_keys: &[String]) {
    for key in null_keys {
        match infos.configs.iter_mut().find(|c| &c.value.name == key) {
            Some(existing) => {
                existing.value.value = None;
                existing.value.errors.push(NULL_VALUE_MESSAGE.to_string());
            }
            None => infos.configs.push(ConfigInfo {
                definition: None,
                value: ConfigValueInfo {
                    name: key.clone(),
                    value: None,
                    recommended_values: Vec::new(),
                    errors: vec![NULL_VALUE_MESSAGE.to_string()],
                    visible: true,
                },
            }),
        }
        infos.error_count += 1;
    }
}

/// `PUT /admin/loggers/{logger}[?scope=worker|cluster]`.
async fn set_logger(call: &Call<'_>, name: &str) -> Result<Resp> {
    let body = parse_json(&call.body)?;
    let Json::Object(obj) = body else {
        return Err(ApiError::bad_request(
            "The request body must be a JSON object such as {\"level\":\"DEBUG\"}",
        ));
    };
    let level = match obj.get("level") {
        None | Some(Json::Null) => {
            return Err(ApiError::bad_request(
                "Desired 'level' parameter was not specified in request.",
            ))
        }
        Some(v) => scalar_string(v)
            .ok_or_else(|| ApiError::bad_request("The 'level' field must be a string"))?,
    };
    let scope = call
        .query
        .first("scope")
        .unwrap_or("worker")
        .to_ascii_lowercase();
    let to_api = |e: LoggerError| match e {
        // Java answers 404 for an invalid level (a quirk we keep).
        LoggerError::InvalidLevel(_) => ApiError::not_found(e.to_string()),
        LoggerError::InvalidName(_) => ApiError::bad_request(e.to_string()),
    };
    if scope == "cluster" {
        // Java writes `logger-cluster-{namespace}` to the config topic; every
        // worker, this one included, applies it when it reads the record.
        Loggers::validate(name, &level).map_err(to_api)?;
        call.state
            .herder
            .set_cluster_log_level(name, &level)
            .await?;
        Ok(empty_response(StatusCode::NO_CONTENT))
    } else {
        // "worker" and unknown scopes (Java falls back to worker for those).
        let affected = call.state.loggers.set(name, &level).map_err(to_api)?;
        Ok(ok(&affected))
    }
}

/// Parses a JSON body; malformed JSON is a 400 with the parser's message.
fn parse_json(body: &Bytes) -> Result<Json> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON in request body: {e}")))
}
