//! Membership changes (add a learner, promote it to voter, remove a voter), run on the leader.
//!
//! Any node accepts a change: a follower forwards it to the leader over the Raft RPC
//! connection, like a proposal, so the broker and the CLI need not know who leads.

use std::collections::BTreeSet;
use std::time::Duration;
use std::time::Instant;

use openraft::error::ChangeMembershipError;
use openraft::error::ClientWriteError;
use openraft::error::RaftError;
use openraft::ChangeMembers;
use serde::Deserialize;
use serde::Serialize;

use crate::limits::MEMBERSHIP_SETTLE_WAIT_MS;
use crate::limits::PROPOSE_RETRY_PAUSE_MS;
use crate::types::Node;
use crate::types::NodeId;
use crate::types::Raft;

/// A membership change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add `node_id` (Raft address `addr`) as a learner; completes once it has caught up.
    AddLearner {
        /// The new node.
        node_id: NodeId,
        /// Its Raft listener address.
        addr: String,
    },
    /// Make `node_id` a voter; with `addr`, first add it as a learner and wait for it.
    AddVoter {
        /// The node.
        node_id: NodeId,
        /// Its address, if it is not a learner yet.
        addr: Option<String>,
    },
    /// Remove voter (or learner) `node_id` from the group.
    RemoveNode {
        /// The node.
        node_id: NodeId,
    },
}

/// Why a membership change did not happen on the node asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipFailure {
    /// That node is not the leader. Nothing changed: retry on the leader.
    NotLeader {
        /// The leader it knows of.
        leader: Option<NodeId>,
        /// That leader's Raft address.
        leader_addr: Option<String>,
    },
    /// openraft refused the change (another change still in progress after the settle wait,
    /// unknown node, no voter left). Retriable only in the first case.
    Refused(String),
    /// That node's Raft stopped. The change may or may not have happened: read the metrics.
    Stopped(String),
}

fn failure(error: RaftError<NodeId, ClientWriteError<NodeId, Node>>) -> MembershipFailure {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => MembershipFailure::NotLeader {
            leader: forward.leader_id,
            leader_addr: forward.leader_node.map(|node| node.addr),
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(change)) => {
            MembershipFailure::Refused(change.to_string())
        }
        RaftError::Fatal(fatal) => MembershipFailure::Stopped(fatal.to_string()),
    }
}

/// Runs `change` on the local Raft node (which must be the leader). A change that finds the
/// previous one still settling (openraft's `InProgress`: its final log entry is not committed
/// yet) is retried for up to [`MEMBERSHIP_SETTLE_WAIT_MS`].
pub(crate) async fn change_local(raft: &Raft, change: MembershipChange) -> Result<(), MembershipFailure> {
    let deadline = Instant::now() + Duration::from_millis(MEMBERSHIP_SETTLE_WAIT_MS);
    loop {
        match change_once(raft, change.clone()).await {
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(_))))
                if Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(PROPOSE_RETRY_PAUSE_MS)).await;
            }
            result => return result.map_err(failure),
        }
    }
}

async fn change_once(
    raft: &Raft,
    change: MembershipChange,
) -> Result<(), RaftError<NodeId, ClientWriteError<NodeId, Node>>> {
    match change {
        MembershipChange::AddLearner { node_id, addr } => {
            raft.add_learner(node_id, Node { addr }, true).await?;
        }
        MembershipChange::AddVoter { node_id, addr } => {
            if let Some(addr) = addr {
                raft.add_learner(node_id, Node { addr }, true).await?;
            }
            let change = ChangeMembers::AddVoterIds(BTreeSet::from([node_id]));
            raft.change_membership(change, false).await?;
        }
        MembershipChange::RemoveNode { node_id } => {
            let voters = ChangeMembers::RemoveVoters(BTreeSet::from([node_id]));
            let is_voter = raft.metrics().borrow().membership_config.membership().voter_ids().any(|id| id == node_id);
            let change = if is_voter { voters } else { ChangeMembers::RemoveNodes(BTreeSet::from([node_id])) };
            raft.change_membership(change, false).await?;
        }
    }
    Ok(())
}
