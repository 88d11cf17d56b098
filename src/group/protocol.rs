//! Wire codec for the Connect group subprotocols (contract §3.2–§3.4).
//!
//! Two records travel through the Kafka group coordinator as opaque bytes:
//!
//! * [`WorkerMetadata`]: what a member sends in JoinGroup for each offered
//!   subprotocol (v0 `default`, v1 `compatible`, v2 `sessioned`).
//! * [`Assignment`]: what the leader sends each member through SyncGroup
//!   (v0 for eager, v1/v2 for incremental cooperative).
//!
//! All integers are big-endian; strings are INT16-length-prefixed UTF-8;
//! arrays are INT32-count-prefixed (−1 = null where nullable). Readers accept
//! any version ≥ 0 and parse only the fields they know; missing trailing
//! fields take their defaults (null allocation, empty revocations, delay 0).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// The Connect group protocol type sent in JoinGroup/SyncGroup.
pub const PROTOCOL_TYPE: &str = "connect";

/// Task index on the wire that stands for the connector instance itself.
const CONNECTOR_TASK: i32 = -1;

/// Which Connect subprotocol a worker offers (`connect.protocol`) or the group negotiated.
/// The default is `sessioned`, like the Java worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum ConnectProtocol {
    /// `default`, version 0: eager stop-the-world rebalancing.
    Eager,
    /// `compatible`, version 1: incremental cooperative rebalancing (KIP-415).
    Compatible,
    /// `sessioned`, version 2: cooperative plus request signing (KIP-507).
    #[default]
    Sessioned,
}

impl ConnectProtocol {
    /// Subprotocol name as it appears in JoinGroup.
    pub fn name(self) -> &'static str {
        match self {
            ConnectProtocol::Eager => "default",
            ConnectProtocol::Compatible => "compatible",
            ConnectProtocol::Sessioned => "sessioned",
        }
    }

    /// Version number written in metadata and assignment headers.
    pub fn version(self) -> i16 {
        match self {
            ConnectProtocol::Eager => 0,
            ConnectProtocol::Compatible => 1,
            ConnectProtocol::Sessioned => 2,
        }
    }

    /// Parses a subprotocol name returned by the coordinator.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "default" => Some(ConnectProtocol::Eager),
            "compatible" => Some(ConnectProtocol::Compatible),
            "sessioned" => Some(ConnectProtocol::Sessioned),
            _ => None,
        }
    }

    /// Parses a `connect.protocol` worker setting (`eager`, `compatible`, `sessioned`).
    pub fn from_config(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "eager" => Some(ConnectProtocol::Eager),
            "compatible" => Some(ConnectProtocol::Compatible),
            "sessioned" => Some(ConnectProtocol::Sessioned),
            _ => None,
        }
    }

    /// Subprotocols offered in JoinGroup, in preference order.
    pub fn offered(self) -> &'static [ConnectProtocol] {
        match self {
            ConnectProtocol::Eager => &[ConnectProtocol::Eager],
            ConnectProtocol::Compatible => &[ConnectProtocol::Compatible, ConnectProtocol::Eager],
            ConnectProtocol::Sessioned => &[
                ConnectProtocol::Sessioned,
                ConnectProtocol::Compatible,
                ConnectProtocol::Eager,
            ],
        }
    }

    /// True for the incremental cooperative subprotocols (v1, v2).
    pub fn is_cooperative(self) -> bool {
        !matches!(self, ConnectProtocol::Eager)
    }
}

impl fmt::Display for ConnectProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A connector task id: connector name plus 0-based task index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    /// Connector name.
    pub connector: String,
    /// Task index.
    pub task: u32,
}

impl TaskId {
    /// Builds a task id.
    pub fn new(connector: impl Into<String>, task: u32) -> Self {
        Self {
            connector: connector.into(),
            task,
        }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.connector, self.task)
    }
}

/// Errors decoding Connect group records.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// The buffer ended before a required field.
    #[error("truncated Connect {record}: needed {needed} more bytes for {field}")]
    Truncated {
        /// Record being decoded (`member metadata` or `assignment`).
        record: &'static str,
        /// Field being read.
        field: &'static str,
        /// Bytes missing.
        needed: usize,
    },
    /// The header carried a negative version.
    #[error("unsupported Connect {record} version {version}")]
    UnsupportedVersion {
        /// Record being decoded.
        record: &'static str,
        /// Version found.
        version: i16,
    },
    /// A string was not UTF-8.
    #[error("invalid UTF-8 in Connect {record} field {field}")]
    InvalidUtf8 {
        /// Record being decoded.
        record: &'static str,
        /// Field being read.
        field: &'static str,
    },
    /// A length or task id was out of range.
    #[error("invalid value {value} for Connect {record} field {field}")]
    InvalidValue {
        /// Record being decoded.
        record: &'static str,
        /// Field being read.
        field: &'static str,
        /// Offending value.
        value: i64,
    },
}

/// What a member reports about itself in JoinGroup (§3.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkerMetadata {
    /// Advertised REST URL, e.g. `http://10.0.0.1:8083/`.
    pub url: String,
    /// Config-log position (next offset to read; −1 for an empty topic).
    pub config_offset: i64,
    /// The member's current (merged) assignment; `None` when it has none.
    /// Only carried by v1/v2 metadata.
    pub allocation: Option<Allocation>,
}

/// A member's current assignment as embedded in its metadata. It has the
/// same wire layout as an [`Assignment`]; only `connectors` and `tasks` carry
/// meaning for the leader.
pub type Allocation = Assignment;

/// What the leader hands a member in SyncGroup (§3.4).
///
/// Under eager rebalancing `connectors`/`tasks` are the member's full
/// assignment. Under cooperative rebalancing they are the *delta* newly
/// assigned this round, and `revoked_*` lists what the member must stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// 0 = [`Assignment::NO_ERROR`], 1 = [`Assignment::CONFIG_MISMATCH`].
    pub error: i16,
    /// The leader's member id.
    pub leader: String,
    /// The leader's REST URL.
    pub leader_url: String,
    /// Config offset the assignment was computed at.
    pub config_offset: i64,
    /// Assigned connectors (task −1 on the wire).
    pub connectors: BTreeSet<String>,
    /// Assigned tasks.
    pub tasks: BTreeSet<TaskId>,
    /// Connectors to stop (v1+).
    pub revoked_connectors: BTreeSet<String>,
    /// Tasks to stop (v1+).
    pub revoked_tasks: BTreeSet<TaskId>,
    /// Milliseconds until a scheduled follow-up rebalance (0 = none; v1+).
    pub delay_ms: i32,
}

impl Default for Assignment {
    fn default() -> Self {
        Self {
            error: Self::NO_ERROR,
            leader: String::new(),
            leader_url: String::new(),
            config_offset: -1,
            connectors: BTreeSet::new(),
            tasks: BTreeSet::new(),
            revoked_connectors: BTreeSet::new(),
            revoked_tasks: BTreeSet::new(),
            delay_ms: 0,
        }
    }
}

impl Assignment {
    /// Error code: assignment is valid.
    pub const NO_ERROR: i16 = 0;
    /// Error code: the leader's config is behind a member's; members must catch up and rejoin.
    pub const CONFIG_MISMATCH: i16 = 1;

    /// True when the leader reported an error.
    pub fn failed(&self) -> bool {
        self.error != Self::NO_ERROR
    }

    /// True when nothing is assigned (revocations are not considered).
    pub fn is_empty(&self) -> bool {
        self.connectors.is_empty() && self.tasks.is_empty()
    }

    /// True when something is revoked.
    pub fn has_revocations(&self) -> bool {
        !self.revoked_connectors.is_empty() || !self.revoked_tasks.is_empty()
    }

    /// Encodes at the given record version (0 = eager layout, ≥ 1 = cooperative layout).
    pub fn encode(&self, version: i16) -> Bytes {
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i16(version);
        buf.put_i16(self.error);
        put_string(&mut buf, &self.leader);
        put_string(&mut buf, &self.leader_url);
        buf.put_i64(self.config_offset);
        put_conn_assign(&mut buf, &self.connectors, &self.tasks);
        if version >= 1 {
            put_conn_assign(&mut buf, &self.revoked_connectors, &self.revoked_tasks);
            buf.put_i32(self.delay_ms);
        }
        buf.freeze()
    }

    /// Decodes any version ≥ 0, returning the header version and the record.
    pub fn decode(bytes: &[u8]) -> Result<(i16, Assignment), ProtocolError> {
        let mut r = Reader::new(bytes, "assignment");
        let version = r.i16("version")?;
        if version < 0 {
            return Err(ProtocolError::UnsupportedVersion {
                record: "assignment",
                version,
            });
        }
        Self::decode_body(&mut r).map(|a| (version, a))
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Assignment, ProtocolError> {
        let error = r.i16("error")?;
        let leader = r.string("leader")?;
        let leader_url = r.string("leader_url")?;
        let config_offset = r.i64("config_offset")?;
        let (connectors, tasks) = r.conn_assign("assignment")?;
        // Tolerate missing trailing fields (v0 records, or older writers).
        let (revoked_connectors, revoked_tasks) = if r.remaining() > 0 {
            r.conn_assign("revoked")?
        } else {
            Default::default()
        };
        let delay_ms = if r.remaining() > 0 {
            r.i32("delay")?
        } else {
            0
        };
        Ok(Assignment {
            error,
            leader,
            leader_url,
            config_offset,
            connectors,
            tasks,
            revoked_connectors,
            revoked_tasks,
            delay_ms,
        })
    }
}

impl WorkerMetadata {
    /// Encodes the metadata for one subprotocol. Eager (v0) omits the allocation;
    /// v1/v2 embed the allocation encoded with the same version.
    pub fn encode(&self, protocol: ConnectProtocol) -> Bytes {
        let version = protocol.version();
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i16(version);
        put_string(&mut buf, &self.url);
        buf.put_i64(self.config_offset);
        if version >= 1 {
            match &self.allocation {
                Some(a) => {
                    let encoded = a.encode(version);
                    buf.put_i32(encoded.len() as i32);
                    buf.put_slice(&encoded);
                }
                None => buf.put_i32(-1),
            }
        }
        buf.freeze()
    }

    /// Decodes any version ≥ 0, returning the header version and the record.
    pub fn decode(bytes: &[u8]) -> Result<(i16, WorkerMetadata), ProtocolError> {
        let mut r = Reader::new(bytes, "member metadata");
        let version = r.i16("version")?;
        if version < 0 {
            return Err(ProtocolError::UnsupportedVersion {
                record: "member metadata",
                version,
            });
        }
        let url = r.string("url")?;
        let config_offset = r.i64("config_offset")?;
        let allocation = if version >= 1 && r.remaining() > 0 {
            match r.nullable_bytes("allocation")? {
                Some(b) => Some(Assignment::decode(b)?.1),
                None => None,
            }
        } else {
            None
        };
        Ok((
            version,
            WorkerMetadata {
                url,
                config_offset,
                allocation,
            },
        ))
    }
}

fn put_string(buf: &mut BytesMut, s: &str) {
    // Names and URLs are far below i16::MAX; truncation would be a caller bug.
    let len = s.len().min(i16::MAX as usize);
    buf.put_i16(len as i16);
    buf.put_slice(&s.as_bytes()[..len]);
}

/// Writes an `ARRAY<ConnAssign>` grouped by connector (sorted), with −1 first.
fn put_conn_assign(buf: &mut BytesMut, connectors: &BTreeSet<String>, tasks: &BTreeSet<TaskId>) {
    let mut grouped: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for c in connectors {
        grouped.entry(c.as_str()).or_default().push(CONNECTOR_TASK);
    }
    for t in tasks {
        grouped
            .entry(t.connector.as_str())
            .or_default()
            .push(t.task.min(i32::MAX as u32) as i32);
    }
    buf.put_i32(grouped.len() as i32);
    for (connector, ids) in grouped {
        put_string(buf, connector);
        buf.put_i32(ids.len() as i32);
        for id in ids {
            buf.put_i32(id);
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    record: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], record: &'static str) -> Self {
        Self { buf, record }
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(ProtocolError::Truncated {
                record: self.record,
                field,
                needed: n - self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ProtocolError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, ProtocolError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, ProtocolError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    fn string(&mut self, field: &'static str) -> Result<String, ProtocolError> {
        let len = self.i16(field)?;
        if len < 0 {
            return Err(ProtocolError::InvalidValue {
                record: self.record,
                field,
                value: len.into(),
            });
        }
        let raw = self.take(len as usize, field)?;
        String::from_utf8(raw.to_vec()).map_err(|_| ProtocolError::InvalidUtf8 {
            record: self.record,
            field,
        })
    }

    fn nullable_bytes(&mut self, field: &'static str) -> Result<Option<&'a [u8]>, ProtocolError> {
        let len = self.i32(field)?;
        if len < 0 {
            return Ok(None);
        }
        self.take(len as usize, field).map(Some)
    }

    /// Reads a nullable `ARRAY<ConnAssign>`; null decodes as empty.
    fn conn_assign(
        &mut self,
        field: &'static str,
    ) -> Result<(BTreeSet<String>, BTreeSet<TaskId>), ProtocolError> {
        let mut connectors = BTreeSet::new();
        let mut tasks = BTreeSet::new();
        let count = self.i32(field)?;
        for _ in 0..count.max(0) {
            let connector = self.string(field)?;
            let n = self.i32(field)?;
            for _ in 0..n.max(0) {
                let id = self.i32(field)?;
                if id == CONNECTOR_TASK {
                    connectors.insert(connector.clone());
                } else if id >= 0 {
                    tasks.insert(TaskId::new(connector.clone(), id as u32));
                } else {
                    return Err(ProtocolError::InvalidValue {
                        record: self.record,
                        field,
                        value: id.into(),
                    });
                }
            }
        }
        Ok((connectors, tasks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://10.0.0.1:8083/";

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
            .collect()
    }

    fn url_bytes() -> String {
        URL.bytes().map(|b| format!("{b:02x} ")).collect()
    }

    #[test]
    fn golden_v2_metadata_37_bytes() {
        let md = WorkerMetadata {
            url: URL.into(),
            config_offset: 5,
            allocation: None,
        };
        let bytes = md.encode(ConnectProtocol::Sessioned);
        let expected = hex(
            "00 02 00 15 68 74 74 70 3a 2f 2f 31 30 2e 30 2e 30 2e 31 3a 38 30 38 33 2f \
             00 00 00 00 00 00 00 05 ff ff ff ff",
        );
        assert_eq!(bytes.len(), 37);
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(WorkerMetadata::decode(&expected).expect("decode"), (2, md));
    }

    #[test]
    fn golden_v0_metadata_33_bytes() {
        let md = WorkerMetadata {
            url: URL.into(),
            config_offset: 5,
            allocation: None,
        };
        let bytes = md.encode(ConnectProtocol::Eager);
        let expected = hex(&format!(
            "00 00 00 15 {} 00 00 00 00 00 00 00 05",
            url_bytes()
        ));
        assert_eq!(bytes.len(), 33);
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(WorkerMetadata::decode(&expected).expect("decode"), (0, md));
    }

    fn golden_assignment() -> Assignment {
        Assignment {
            leader: "connect-1-8f1c".into(),
            leader_url: URL.into(),
            config_offset: 5,
            connectors: ["file-source".to_string()].into(),
            tasks: [TaskId::new("file-source", 0)].into(),
            ..Assignment::default()
        }
    }

    #[test]
    fn golden_v2_assignment() {
        let leader: String = "connect-1-8f1c"
            .bytes()
            .map(|b| format!("{b:02x} "))
            .collect();
        let fs: String = "file-source".bytes().map(|b| format!("{b:02x} ")).collect();
        let expected = hex(&format!(
            "00 02 00 00 00 0e {leader} 00 15 {} 00 00 00 00 00 00 00 05 \
             00 00 00 01 00 0b {fs} 00 00 00 02 ff ff ff ff 00 00 00 00 \
             00 00 00 00 00 00 00 00",
            url_bytes()
        ));
        let a = golden_assignment();
        assert_eq!(&a.encode(2)[..], &expected[..]);
        assert_eq!(Assignment::decode(&expected).expect("decode"), (2, a));
    }

    #[test]
    fn v0_assignment_readable_with_defaults() {
        let a = golden_assignment();
        let bytes = a.encode(0);
        let (v, back) = Assignment::decode(&bytes).expect("decode");
        assert_eq!(v, 0);
        assert_eq!(back, a);
        assert_eq!(back.delay_ms, 0);
        assert!(back.revoked_tasks.is_empty());
    }

    #[test]
    fn round_trips_all_versions() {
        let mut a = golden_assignment();
        a.tasks.insert(TaskId::new("file-source", 3));
        a.tasks.insert(TaskId::new("other", 1));
        a.revoked_connectors.insert("gone".into());
        a.revoked_tasks.insert(TaskId::new("gone", 0));
        a.delay_ms = 1234;
        a.error = Assignment::CONFIG_MISMATCH;
        for v in [1, 2, 7] {
            assert_eq!(
                Assignment::decode(&a.encode(v)).expect("decode"),
                (v, a.clone())
            );
        }
        let md = WorkerMetadata {
            url: URL.into(),
            config_offset: -1,
            allocation: Some(a.clone()),
        };
        for p in [ConnectProtocol::Compatible, ConnectProtocol::Sessioned] {
            let (v, back) = WorkerMetadata::decode(&md.encode(p)).expect("decode");
            assert_eq!(v, p.version());
            assert_eq!(back, md);
        }
        // v0 drops the allocation.
        let (_, back) = WorkerMetadata::decode(&md.encode(ConnectProtocol::Eager)).expect("decode");
        assert_eq!(back.allocation, None);
    }

    #[test]
    fn future_version_with_trailing_fields_parses_known_part() {
        let md = WorkerMetadata {
            url: URL.into(),
            config_offset: 9,
            allocation: None,
        };
        let mut bytes = md.encode(ConnectProtocol::Sessioned).to_vec();
        bytes[1] = 3;
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(WorkerMetadata::decode(&bytes).expect("decode"), (3, md));
        // v1 header without the allocation field at all.
        let mut short = hex(&format!(
            "00 01 00 15 {} 00 00 00 00 00 00 00 05",
            url_bytes()
        ));
        let (v, m) = WorkerMetadata::decode(&short).expect("decode");
        assert_eq!((v, m.allocation), (1, None));
        short[1] = 0xff;
        short[0] = 0xff;
        assert!(matches!(
            WorkerMetadata::decode(&short),
            Err(ProtocolError::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn truncated_input_is_an_error() {
        let bytes = golden_assignment().encode(1);
        for cut in [0, 1, 5, 20, bytes.len() - 20] {
            assert!(Assignment::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn protocol_names() {
        assert_eq!(
            ConnectProtocol::Sessioned
                .offered()
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>(),
            ["sessioned", "compatible", "default"]
        );
        for p in [
            ConnectProtocol::Eager,
            ConnectProtocol::Compatible,
            ConnectProtocol::Sessioned,
        ] {
            assert_eq!(ConnectProtocol::from_name(p.name()), Some(p));
        }
        assert_eq!(
            ConnectProtocol::from_config("EAGER"),
            Some(ConnectProtocol::Eager)
        );
    }
}
