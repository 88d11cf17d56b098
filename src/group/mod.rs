//! Worker group membership (contract §3): the Connect group protocol spoken
//! directly against the Kafka group coordinator.
//!
//! * [`protocol`]: codec for member metadata and assignments.
//! * [`assignor`]: the leader's eager and incremental cooperative assignment.
//! * [`client`]: a minimal Kafka client for the coordinator APIs.
//! * [`member`]: the membership loop the herder plugs into.

pub mod assignor;
pub mod client;
pub mod member;
pub mod protocol;

#[cfg(test)]
mod integration_tests;

pub use assignor::{AssignError, Assignor, ClusterConfigView, GroupAssignment, Owners};
pub use client::ClientError;
pub use member::{
    merge_cooperative, GroupEvent, GroupHandle, GroupListener, GroupMember, MemberConfig,
    RebalanceAck, RevokeReason,
};
pub use protocol::{Allocation, Assignment, ConnectProtocol, TaskId, WorkerMetadata};
