//! Membership changes (add a learner, promote it to voter, demote a voter, remove a node), run
//! on the leader through openraft's joint consensus.
//!
//! Any node accepts a change: a follower forwards it to the leader over the Raft RPC
//! connection, like a proposal, so the broker and the CLI need not know who leads.
//!
//! Every change is idempotent where Kafka's KIP-853 tool would retry it: adding a node that is
//! already a learner or voter, promoting a voter, or demoting a learner changes nothing and
//! succeeds, so a caller that lost the answer (a leader change, a timeout) simply asks again.

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
    /// Make voter `node_id` a learner: it no longer votes or counts for the quorum, but keeps
    /// receiving the log (a broker that keeps serving without a vote).
    RemoveVoter {
        /// The node.
        node_id: NodeId,
    },
    /// Remove voter or learner `node_id` from the group: it stops receiving the log.
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
    // Only the leader's membership is authoritative: elsewhere the role is unknown, and openraft
    // answers ForwardToLeader whatever the change.
    let is_leader = {
        let metrics = raft.metrics();
        let metrics = metrics.borrow();
        metrics.current_leader == Some(metrics.id)
    };
    let role = if is_leader { role_of(raft, node_id_of(&change)) } else { Role::Unknown };
    match change {
        MembershipChange::AddLearner { node_id, addr } => {
            if matches!(role, Role::Absent | Role::Unknown) {
                raft.add_learner(node_id, Node { addr }, true).await?;
            }
        }
        MembershipChange::AddVoter { node_id, addr } => {
            if role == Role::Voter {
                return Ok(());
            }
            if let (Some(addr), Role::Absent | Role::Unknown) = (addr, role) {
                raft.add_learner(node_id, Node { addr }, true).await?;
            }
            let change = ChangeMembers::AddVoterIds(BTreeSet::from([node_id]));
            raft.change_membership(change, false).await?;
        }
        MembershipChange::RemoveVoter { node_id } => {
            if matches!(role, Role::Voter | Role::Unknown) {
                // `retain`: the removed voter stays a learner and keeps receiving the log.
                raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([node_id])), true).await?;
            }
        }
        MembershipChange::RemoveNode { node_id } => match role {
            Role::Voter | Role::Unknown => {
                raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([node_id])), false).await?;
            }
            Role::Learner => {
                raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([node_id])), false).await?;
            }
            Role::Absent => {}
        },
    }
    Ok(())
}

/// A node's place in the membership as this node last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Votes and counts for the quorum.
    Voter,
    /// Receives the log without a vote.
    Learner,
    /// Not in the membership.
    Absent,
    /// This node does not lead, so its view of the membership is not authoritative.
    Unknown,
}

fn node_id_of(change: &MembershipChange) -> NodeId {
    match change {
        MembershipChange::AddLearner { node_id, .. }
        | MembershipChange::AddVoter { node_id, .. }
        | MembershipChange::RemoveVoter { node_id }
        | MembershipChange::RemoveNode { node_id } => *node_id,
    }
}

/// `node_id`'s role in the latest membership `raft` knows (during a joint change, a voter of
/// either configuration is a voter).
pub(crate) fn role_of(raft: &Raft, node_id: NodeId) -> Role {
    let metrics = raft.metrics();
    let metrics = metrics.borrow();
    let membership = metrics.membership_config.membership();
    if membership.voter_ids().any(|id| id == node_id) {
        Role::Voter
    } else if membership.get_node(&node_id).is_some() {
        Role::Learner
    } else {
        Role::Absent
    }
}

/// The metadata quorum as its leader sees it (Kafka's DescribeQuorum).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumState {
    /// The leader that answered.
    pub leader_id: NodeId,
    /// Its Raft term (Kafka's leader epoch of the metadata partition).
    pub term: u64,
    /// Index of the last entry applied on the leader (committed; Kafka's high watermark).
    pub applied_index: Option<u64>,
    /// Voters first, then learners, each in id order.
    pub members: Vec<QuorumMember>,
}

/// One member of the metadata group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumMember {
    /// Its node (broker) id.
    pub node_id: NodeId,
    /// Its Raft address.
    pub addr: String,
    /// Voter or learner.
    pub role: Role,
    /// Index of the last entry the leader knows it holds (its own last log index for the
    /// leader; `None` while nothing is known, e.g. right after an election).
    pub matched_index: Option<u64>,
}

/// The quorum from `raft`'s metrics; `None` unless this node leads.
pub(crate) fn quorum_state(raft: &Raft) -> Option<QuorumState> {
    let metrics = raft.metrics();
    let metrics = metrics.borrow();
    if metrics.current_leader != Some(metrics.id) {
        return None;
    }
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let matched = |id: NodeId| {
        if id == metrics.id {
            return metrics.last_log_index;
        }
        metrics.replication.as_ref().and_then(|replication| replication.get(&id).copied().flatten()).map(|l| l.index)
    };
    let mut members: Vec<QuorumMember> = membership
        .nodes()
        .map(|(id, node)| QuorumMember {
            node_id: *id,
            addr: node.addr.clone(),
            role: if voters.contains(id) { Role::Voter } else { Role::Learner },
            matched_index: matched(*id),
        })
        .collect();
    members.sort_by_key(|member| (member.role != Role::Voter, member.node_id));
    Some(QuorumState {
        leader_id: metrics.id,
        term: metrics.current_term,
        applied_index: metrics.last_applied.map(|l| l.index),
        members,
    })
}
