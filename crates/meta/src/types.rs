//! The openraft type configuration of the metadata group.

use std::io::Cursor;

use serde::Deserialize;
use serde::Serialize;

use crate::commands::Command;
use crate::commands::CommandOutcome;
use crate::error::CommandError;

/// Raft node id. Sluice uses the broker id as node id (a non-negative `i32` widened).
pub type NodeId = u64;

/// Address book entry of a node: `addr` is the `host:port` of its Raft listener.
pub type Node = openraft::BasicNode;

/// The application data of one Raft entry: commands gathered by the proposal batcher,
/// applied in order, each with its own result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The commands, in the order they are applied.
    pub commands: Vec<Command>,
}

/// What applying one log entry produced, returned to the proposers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalReply {
    /// One result per command of the entry; empty for Raft-internal entries (blank and
    /// membership entries), which carry no command.
    pub results: Vec<Result<CommandOutcome, CommandError>>,
}

openraft::declare_raft_types!(
    /// The type configuration of the metadata Raft group.
    pub TypeConfig:
        D = Proposal,
        R = ProposalReply,
        NodeId = NodeId,
        Node = Node,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The Raft handle of the metadata group.
pub type Raft = openraft::Raft<TypeConfig>;
/// A Raft log id (term, leader, index).
pub type LogId = openraft::LogId<NodeId>;
/// A Raft vote.
pub type Vote = openraft::Vote<NodeId>;
/// A Raft log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// Storage error as openraft expects it.
pub type StorageError = openraft::StorageError<NodeId>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
/// Membership as stored with its log id.
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
/// Raft metrics.
pub type RaftMetrics = openraft::RaftMetrics<NodeId, Node>;
