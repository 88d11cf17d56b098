//! A minimal Kafka client for the group coordinator APIs, speaking the wire
//! protocol over a tokio `TcpStream` with `kafka-protocol` message types.
//!
//! rdkafka cannot join a group whose protocol type is `connect`, so this is
//! the smallest client that can: ApiVersions (to pick versions both sides
//! support), FindCoordinator, JoinGroup, SyncGroup, Heartbeat and LeaveGroup.
//! One [`BrokerConnection`] is one TCP connection with strictly sequential
//! request/response exchanges (no pipelining), which is all a group member
//! needs: the membership loop owns its coordinator connection.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, RequestHeader, ResponseHeader, SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response frame we accept (group responses are small).
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Errors talking to a Kafka broker. Each names the API and, for broker-side
/// errors, the Kafka error code name.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TCP connect failed.
    #[error("connecting to Kafka broker {addr}: {source}")]
    Connect {
        /// Broker address.
        addr: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// No bootstrap broker could be reached.
    #[error(
        "no Kafka broker in bootstrap list '{bootstrap}' could be reached; last error: {last}"
    )]
    NoBroker {
        /// Bootstrap list.
        bootstrap: String,
        /// Last error seen.
        last: String,
    },
    /// I/O failure during an exchange; the connection is unusable.
    #[error("{api} request to Kafka broker {addr} failed: {source}")]
    Io {
        /// API name.
        api: &'static str,
        /// Broker address.
        addr: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// No response within the request timeout; the connection is unusable.
    #[error("{api} request to Kafka broker {addr} timed out after {timeout:?}")]
    Timeout {
        /// API name.
        api: &'static str,
        /// Broker address.
        addr: String,
        /// Timeout used.
        timeout: Duration,
    },
    /// Encoding a request or decoding a response failed.
    #[error("{what} {api} message for Kafka broker {addr}: {message}")]
    Codec {
        /// `encoding` or `decoding`.
        what: &'static str,
        /// API name.
        api: &'static str,
        /// Broker address.
        addr: String,
        /// Detail.
        message: String,
    },
    /// The broker and this client share no version of an API.
    #[error("Kafka broker {addr} supports {api} versions {broker_min}..={broker_max}, this client needs {min}..={max}")]
    UnsupportedVersion {
        /// API name.
        api: &'static str,
        /// Broker address.
        addr: String,
        /// Broker minimum.
        broker_min: i16,
        /// Broker maximum.
        broker_max: i16,
        /// Our minimum.
        min: i16,
        /// Our maximum.
        max: i16,
    },
    /// The broker answered with an error code.
    #[error("{api} failed with Kafka error {name} ({code}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// API name.
        api: &'static str,
        /// Kafka error code.
        code: i16,
        /// Kafka error code name, e.g. `REBALANCE_IN_PROGRESS`.
        name: String,
        /// Broker-provided error message, if any.
        message: Option<String>,
    },
}

impl ClientError {
    fn kafka(api: &'static str, code: i16, message: Option<&StrBytes>) -> Self {
        ClientError::Kafka {
            api,
            code,
            name: error_name(code),
            message: message.map(|m| m.as_str().to_string()),
        }
    }

    /// The Kafka error, if the broker returned one.
    pub fn kafka_error(&self) -> Option<ResponseError> {
        match self {
            ClientError::Kafka { code, .. } => ResponseError::try_from_code(*code),
            _ => None,
        }
    }

    /// True when the coordinator must be looked up again (it moved, is
    /// unavailable, or the connection to it broke).
    pub fn needs_rediscovery(&self) -> bool {
        match self {
            ClientError::Kafka { .. } => matches!(
                self.kafka_error(),
                Some(ResponseError::NotCoordinator)
                    | Some(ResponseError::CoordinatorNotAvailable)
                    | Some(ResponseError::CoordinatorLoadInProgress)
            ),
            ClientError::Connect { .. }
            | ClientError::NoBroker { .. }
            | ClientError::Io { .. }
            | ClientError::Timeout { .. }
            | ClientError::Codec { .. } => true,
            ClientError::UnsupportedVersion { .. } => false,
        }
    }
}

/// `NotCoordinator` → `NOT_COORDINATOR`; unknown codes → `UNKNOWN_<code>`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_{c}"),
        Some(e) => {
            let camel = format!("{e:?}");
            let mut out = String::with_capacity(camel.len() + 8);
            for (i, ch) in camel.chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(ch.to_ascii_uppercase());
            }
            out
        }
    }
}

fn check(api: &'static str, code: i16, message: Option<&StrBytes>) -> Result<(), ClientError> {
    if code == 0 {
        Ok(())
    } else {
        Err(ClientError::kafka(api, code, message))
    }
}

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id.
    pub member_id: String,
    /// The `client.id` the member joined with.
    pub client_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
}

/// A coordinator (or any broker) address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// Node id (−1 for bootstrap addresses).
    pub node_id: i32,
    /// Host name.
    pub host: String,
    /// Port.
    pub port: i32,
}

impl BrokerAddress {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A member of a JoinGroup response (only the leader gets them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Raw metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// A successful JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// Generation id.
    pub generation_id: i32,
    /// Chosen subprotocol name.
    pub protocol_name: String,
    /// Leader member id.
    pub leader: String,
    /// Our member id.
    pub member_id: String,
    /// All members with metadata (leader only; empty for followers).
    pub members: Vec<JoinedMember>,
}

/// Parameters of a JoinGroup request.
#[derive(Debug, Clone)]
pub struct JoinParams<'a> {
    /// Group id.
    pub group_id: &'a str,
    /// Our member id ("" on first join).
    pub member_id: &'a str,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Protocol type (`connect`).
    pub protocol_type: &'a str,
    /// (name, metadata) in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// Why we are joining (v8+).
    pub reason: Option<&'a str>,
}

/// Our supported version range per API (what the code below handles).
fn our_versions(api: ApiKey) -> (i16, i16) {
    match api {
        ApiKey::ApiVersions => (0, 3),
        ApiKey::FindCoordinator => (0, 4),
        // v4 introduced MEMBER_ID_REQUIRED; older would still work but we keep ≥ 1
        // so the rebalance timeout is honoured.
        ApiKey::JoinGroup => (1, 9),
        ApiKey::SyncGroup => (0, 5),
        ApiKey::Heartbeat => (0, 4),
        ApiKey::LeaveGroup => (0, 5),
        ApiKey::OffsetDelete => (0, 0),
        ApiKey::DescribeGroups => (0, 5),
        _ => (0, 0),
    }
}

fn api_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::DescribeGroups => "DescribeGroups",
        _ => "Kafka",
    }
}

/// One TCP connection to a broker.
#[derive(Debug)]
pub struct BrokerConnection {
    stream: TcpStream,
    addr: String,
    client_id: String,
    next_correlation_id: i32,
    /// Broker-supported (min, max) per API key.
    broker_versions: BTreeMap<i16, (i16, i16)>,
    request_timeout: Duration,
}

impl BrokerConnection {
    /// Connects and negotiates API versions.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        request_timeout: Duration,
    ) -> Result<Self, ClientError> {
        let stream = tokio::time::timeout(request_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Connect {
                addr: addr.to_string(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            })?
            .map_err(|source| ClientError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let mut conn = Self {
            stream,
            addr: addr.to_string(),
            client_id: client_id.to_string(),
            next_correlation_id: 0,
            broker_versions: BTreeMap::new(),
            request_timeout,
        };
        conn.api_versions().await?;
        Ok(conn)
    }

    /// Tries each `host:port` of a comma-separated bootstrap list in turn.
    pub async fn connect_any(
        bootstrap: &str,
        client_id: &str,
        request_timeout: Duration,
    ) -> Result<Self, ClientError> {
        let mut last = String::from("empty bootstrap list");
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match Self::connect(addr, client_id, request_timeout).await {
                Ok(c) => return Ok(c),
                Err(e) => last = e.to_string(),
            }
        }
        Err(ClientError::NoBroker {
            bootstrap: bootstrap.to_string(),
            last,
        })
    }

    /// A connection to the coordinator of `group_id`, found through the
    /// bootstrap list.
    pub async fn to_coordinator(
        bootstrap: &str,
        group_id: &str,
        client_id: &str,
        request_timeout: Duration,
    ) -> Result<Self, ClientError> {
        let mut conn = Self::connect_any(bootstrap, client_id, request_timeout).await?;
        let coordinator = conn.find_coordinator(group_id).await?;
        Self::connect(&coordinator.addr(), client_id, request_timeout).await
    }

    /// Address this connection talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The version we will use for `api`.
    pub fn version_for(&self, api: ApiKey) -> Result<i16, ClientError> {
        let (min, max) = our_versions(api);
        let (bmin, bmax) = self
            .broker_versions
            .get(&(api as i16))
            .copied()
            .unwrap_or((-1, -1));
        let v = max.min(bmax);
        if bmax < 0 || v < min.max(bmin) {
            return Err(ClientError::UnsupportedVersion {
                api: api_name(api),
                addr: self.addr.clone(),
                broker_min: bmin,
                broker_max: bmax,
                min,
                max,
            });
        }
        Ok(v)
    }

    async fn api_versions(&mut self) -> Result<(), ClientError> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("connectd"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        // v3 is flexible; a broker that does not support it answers UNSUPPORTED_VERSION
        // with its supported ranges in a v0 body, so fall back to v0 then.
        let resp = match self.send(req.clone(), 3, self.request_timeout).await {
            Ok(r) if r.error_code == ResponseError::UnsupportedVersion.code() => {
                self.send(req, 0, self.request_timeout).await?
            }
            Ok(r) => r,
            // A broker that cannot parse v3 answers with a v0 body we cannot decode as v3.
            Err(ClientError::Codec { .. }) => self.send(req, 0, self.request_timeout).await?,
            Err(e) => return Err(e),
        };
        check("ApiVersions", resp.error_code, None)?;
        self.broker_versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    /// Sends one request and waits for its response.
    async fn send<R: Request>(
        &mut self,
        req: R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        let api = ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions);
        let name = api_name(api);
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        let codec = |what: &'static str, addr: &str, e: anyhow::Error| ClientError::Codec {
            what,
            api: name,
            addr: addr.to_string(),
            message: e.to_string(),
        };
        let mut body = BytesMut::with_capacity(256);
        body.extend_from_slice(&[0, 0, 0, 0]);
        header
            .encode(&mut body, R::header_version(version))
            .map_err(|e| codec("encoding", &self.addr, e))?;
        req.encode(&mut body, version)
            .map_err(|e| codec("encoding", &self.addr, e))?;
        let size = (body.len() - 4) as i32;
        body[..4].copy_from_slice(&size.to_be_bytes());

        let io = |addr: &str, source| ClientError::Io {
            api: name,
            addr: addr.to_string(),
            source,
        };
        let exchange = async {
            self.stream
                .write_all(&body)
                .await
                .map_err(|e| io(&self.addr, e))?;
            let mut len = [0u8; 4];
            self.stream
                .read_exact(&mut len)
                .await
                .map_err(|e| io(&self.addr, e))?;
            let len = i32::from_be_bytes(len);
            if len < 0 || len as usize > MAX_FRAME {
                return Err(ClientError::Codec {
                    what: "decoding",
                    api: name,
                    addr: self.addr.clone(),
                    message: format!("invalid response frame size {len}"),
                });
            }
            let mut frame = vec![0u8; len as usize];
            self.stream
                .read_exact(&mut frame)
                .await
                .map_err(|e| io(&self.addr, e))?;
            Ok::<_, ClientError>(Bytes::from(frame))
        };
        let mut frame = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                api: name,
                addr: self.addr.clone(),
                timeout,
            })??;
        let resp_header = ResponseHeader::decode(&mut frame, api.response_header_version(version))
            .map_err(|e| codec("decoding", &self.addr, e))?;
        if resp_header.correlation_id != correlation_id {
            return Err(ClientError::Codec {
                what: "decoding",
                api: name,
                addr: self.addr.clone(),
                message: format!(
                    "correlation id mismatch: sent {correlation_id}, got {}",
                    resp_header.correlation_id
                ),
            });
        }
        R::Response::decode(&mut frame, version).map_err(|e| codec("decoding", &self.addr, e))
    }

    /// OffsetDelete (KIP-496), sent to the group's coordinator: removes the
    /// group's committed offsets of these partitions. librdkafka's Rust
    /// binding has no admin call for it; the sink offsets REST API needs it
    /// to reset single partitions, as Java's `deleteConsumerGroupOffsets`.
    pub async fn offset_delete(
        &mut self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<(), ClientError> {
        use kafka_protocol::messages::offset_delete_request::{
            OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
        };
        use kafka_protocol::messages::{OffsetDeleteRequest, TopicName};
        let v = self.version_for(ApiKey::OffsetDelete)?;
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            by_topic.entry(t.as_str()).or_default().push(*p);
        }
        let topics = by_topic
            .into_iter()
            .map(|(t, ps)| {
                OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_string(t.to_string())))
                    .with_partitions(
                        ps.into_iter()
                            .map(|p| {
                                OffsetDeleteRequestPartition::default().with_partition_index(p)
                            })
                            .collect(),
                    )
            })
            .collect();
        let req = OffsetDeleteRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group_id.to_string())))
            .with_topics(topics);
        let resp = self.send(req, v, self.request_timeout).await?;
        check("OffsetDelete", resp.error_code, None)?;
        for t in &resp.topics {
            for p in &t.partitions {
                check("OffsetDelete", p.error_code, None)?;
            }
        }
        Ok(())
    }

    /// DescribeGroups for one group, sent to its coordinator: its members
    /// (none for an unknown or empty group).
    pub async fn describe_group(
        &mut self,
        group_id: &str,
    ) -> Result<Vec<GroupMember>, ClientError> {
        use kafka_protocol::messages::DescribeGroupsRequest;
        let v = self.version_for(ApiKey::DescribeGroups)?;
        let req = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from_string(group_id.to_string()))]);
        let resp = self.send(req, v, self.request_timeout).await?;
        let mut members = Vec::new();
        for g in &resp.groups {
            check("DescribeGroups", g.error_code, None)?;
            members.extend(g.members.iter().map(|m| GroupMember {
                member_id: m.member_id.as_str().to_string(),
                client_id: m.client_id.as_str().to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.as_str().to_string()),
            }));
        }
        Ok(members)
    }

    /// Finds the group coordinator for `group_id`.
    pub async fn find_coordinator(&mut self, group_id: &str) -> Result<BrokerAddress, ClientError> {
        let v = self.version_for(ApiKey::FindCoordinator)?;
        let mut req = FindCoordinatorRequest::default().with_key_type(0);
        if v >= 4 {
            req = req.with_coordinator_keys(vec![StrBytes::from_string(group_id.to_string())]);
        } else {
            req = req.with_key(StrBytes::from_string(group_id.to_string()));
        }
        let resp: FindCoordinatorResponse = self.send(req, v, self.request_timeout).await?;
        if v >= 4 {
            let c = resp
                .coordinators
                .first()
                .ok_or_else(|| ClientError::Codec {
                    what: "decoding",
                    api: "FindCoordinator",
                    addr: self.addr.clone(),
                    message: "response has no coordinator entry".into(),
                })?;
            check("FindCoordinator", c.error_code, c.error_message.as_ref())?;
            Ok(BrokerAddress {
                node_id: c.node_id.0,
                host: c.host.as_str().to_string(),
                port: c.port,
            })
        } else {
            check(
                "FindCoordinator",
                resp.error_code,
                resp.error_message.as_ref(),
            )?;
            Ok(BrokerAddress {
                node_id: resp.node_id.0,
                host: resp.host.as_str().to_string(),
                port: resp.port,
            })
        }
    }

    /// One JoinGroup exchange. MEMBER_ID_REQUIRED is returned as an error
    /// carrying nothing; use [`BrokerConnection::join_group_with_member_id`]
    /// which handles it.
    async fn join_group_once(&mut self, p: &JoinParams<'_>) -> Result<JoinOutcome, ClientError> {
        let v = self.version_for(ApiKey::JoinGroup)?;
        let protocols = p
            .protocols
            .iter()
            .map(|(name, md)| {
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_metadata(md.clone())
            })
            .collect();
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(p.group_id.to_string())))
            .with_session_timeout_ms(p.session_timeout_ms)
            .with_rebalance_timeout_ms(p.rebalance_timeout_ms)
            .with_member_id(StrBytes::from_string(p.member_id.to_string()))
            .with_group_instance_id(None)
            .with_protocol_type(StrBytes::from_string(p.protocol_type.to_string()))
            .with_protocols(protocols)
            .with_reason(p.reason.map(|r| StrBytes::from_string(r.to_string())));
        // The broker holds JoinGroup until the rebalance completes.
        let timeout =
            Duration::from_millis(p.rebalance_timeout_ms.max(0) as u64) + self.request_timeout;
        let resp = self.send(req, v, timeout).await?;
        if resp.error_code == ResponseError::MemberIdRequired.code() {
            return Ok(JoinOutcome::MemberIdRequired(
                resp.member_id.as_str().to_string(),
            ));
        }
        check("JoinGroup", resp.error_code, None)?;
        Ok(JoinOutcome::Joined(JoinResult {
            generation_id: resp.generation_id,
            protocol_name: resp
                .protocol_name
                .as_ref()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            leader: resp.leader.as_str().to_string(),
            member_id: resp.member_id.as_str().to_string(),
            members: resp
                .members
                .iter()
                .map(|m| JoinedMember {
                    member_id: m.member_id.as_str().to_string(),
                    metadata: m.metadata.clone(),
                })
                .collect(),
        }))
    }

    /// JoinGroup, transparently re-joining once with the coordinator-assigned
    /// member id on MEMBER_ID_REQUIRED (KIP-394).
    pub async fn join_group(&mut self, p: &JoinParams<'_>) -> Result<JoinResult, ClientError> {
        match self.join_group_once(p).await? {
            JoinOutcome::Joined(r) => Ok(r),
            JoinOutcome::MemberIdRequired(id) => {
                tracing::debug!(member_id = %id, "coordinator assigned member id; rejoining with it");
                let p2 = JoinParams {
                    member_id: &id,
                    ..p.clone()
                };
                match self.join_group_once(&p2).await? {
                    JoinOutcome::Joined(r) => Ok(r),
                    JoinOutcome::MemberIdRequired(_) => Err(ClientError::kafka(
                        "JoinGroup",
                        ResponseError::MemberIdRequired.code(),
                        None,
                    )),
                }
            }
        }
    }

    /// SyncGroup; the leader passes every member's assignment, followers none.
    #[allow(clippy::too_many_arguments)]
    pub async fn sync_group(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        protocol_type: &str,
        protocol_name: &str,
        assignments: Vec<(String, Bytes)>,
        rebalance_timeout_ms: i32,
    ) -> Result<Bytes, ClientError> {
        let v = self.version_for(ApiKey::SyncGroup)?;
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group_id.to_string())))
            .with_generation_id(generation_id)
            .with_member_id(StrBytes::from_string(member_id.to_string()))
            .with_group_instance_id(None)
            .with_protocol_type(Some(StrBytes::from_string(protocol_type.to_string())))
            .with_protocol_name(Some(StrBytes::from_string(protocol_name.to_string())))
            .with_assignments(
                assignments
                    .into_iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(m))
                            .with_assignment(a)
                    })
                    .collect(),
            );
        // Followers wait at the broker until the leader's SyncGroup arrives.
        let timeout =
            Duration::from_millis(rebalance_timeout_ms.max(0) as u64) + self.request_timeout;
        let resp = self.send(req, v, timeout).await?;
        check("SyncGroup", resp.error_code, None)?;
        Ok(resp.assignment)
    }

    /// Heartbeat for the current generation.
    pub async fn heartbeat(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
    ) -> Result<(), ClientError> {
        let v = self.version_for(ApiKey::Heartbeat)?;
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group_id.to_string())))
            .with_generation_id(generation_id)
            .with_member_id(StrBytes::from_string(member_id.to_string()))
            .with_group_instance_id(None);
        let resp = self.send(req, v, self.request_timeout).await?;
        check("Heartbeat", resp.error_code, None)
    }

    /// Leaves the group.
    pub async fn leave_group(
        &mut self,
        group_id: &str,
        member_id: &str,
        reason: &str,
    ) -> Result<(), ClientError> {
        let v = self.version_for(ApiKey::LeaveGroup)?;
        let mut req = LeaveGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group_id.to_string())));
        if v >= 3 {
            req = req.with_members(vec![MemberIdentity::default()
                .with_member_id(StrBytes::from_string(member_id.to_string()))
                .with_group_instance_id(None)
                .with_reason(Some(StrBytes::from_string(reason.to_string())))]);
        } else {
            req = req.with_member_id(StrBytes::from_string(member_id.to_string()));
        }
        let resp = self.send(req, v, self.request_timeout).await?;
        check("LeaveGroup", resp.error_code, None)?;
        for m in &resp.members {
            check("LeaveGroup", m.error_code, None)?;
        }
        Ok(())
    }
}

enum JoinOutcome {
    Joined(JoinResult),
    MemberIdRequired(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafka_style() {
        assert_eq!(error_name(16), "NOT_COORDINATOR");
        assert_eq!(error_name(27), "REBALANCE_IN_PROGRESS");
        assert_eq!(error_name(79), "MEMBER_ID_REQUIRED");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(9999), "UNKNOWN_9999");
        let e = ClientError::kafka("Heartbeat", 16, None);
        assert_eq!(
            e.to_string(),
            "Heartbeat failed with Kafka error NOT_COORDINATOR (16)"
        );
        assert!(e.needs_rediscovery());
        assert!(!ClientError::kafka("Heartbeat", 27, None).needs_rediscovery());
    }
}
