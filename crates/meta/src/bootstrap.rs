//! What a voter starting with empty Raft storage does: create the group, join it as a learner,
//! or refuse to start.
//!
//! A node listed in `--voters` whose storage is empty is either one of the voters of a new
//! cluster starting for the first time, or a voter whose disk was replaced. The second must not
//! take part in Raft: it has forgotten its vote (it could vote twice in one term) and the log
//! entries it acknowledged (a majority counting it could elect a leader lacking a committed
//! entry). Before the node serves any Raft request it asks the other listed voters
//! ([`RpcRequest::GroupStatus`]) what they know:
//!
//! - a group exists and its metadata holds a registration of this node's broker id: the node
//!   ran in this group before, so its storage was lost. Still a voter there: refuse to start
//!   ([`BootstrapDecision::RefuseLostVoter`]; the operator demotes it first). No longer a
//!   voter: join as a learner like a new broker ([`BootstrapDecision::Join`]);
//! - otherwise (every peer uninitialized, unreachable, or initialized by a voter of the same
//!   first start that has not seen this node yet): initialize as on a first start
//!   ([`BootstrapDecision::Initialize`]).
//!
//! The registration is the evidence because only a node that was running registers its
//! broker, and the metadata never forgets a broker: at a cluster's first start the voters
//! initialize before any of them registers, so a slow voter of that start is never refused.
//! A voter whose disk is lost after it initialized but before its broker registered is not
//! recognized (it initializes as today); the window is the first seconds of a cluster's life.
//!
//! The decision is the pure [`decide`]; [`probe`] asks the peers, each answer bounded, all of
//! them within [`BOOTSTRAP_PROBE_TIMEOUT_MS`].

use std::time::Duration;
use std::time::Instant;

use crate::limits::BOOTSTRAP_PROBE_RETRY_PAUSE_MS;
use crate::limits::BOOTSTRAP_PROBE_TIMEOUT_MS;
use crate::network::PeerClient;
use crate::rpc::GroupStatus;
use crate::rpc::RpcRequest;
use crate::rpc::RpcResponse;
use crate::types::NodeId;

/// What a voter with empty storage does at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapDecision {
    /// No group knows this node: create it from `--voters` (a cluster's first start).
    Initialize,
    /// The group knows this node and no longer counts it as a voter: join as a learner and
    /// receive the log from the leader.
    Join {
        /// The node that said so.
        via: NodeId,
    },
    /// The group still counts this node as a voter, whose vote and log are lost: refuse to
    /// start until an operator has demoted it.
    RefuseLostVoter {
        /// The node that said so.
        via: NodeId,
    },
}

/// The decision for `node_id` from the answers received so far, or `None` while it depends on
/// peers that have not answered. `all_answered` says nobody is left to ask (or the time is up).
pub fn decide(node_id: NodeId, answers: &[(NodeId, GroupStatus)], all_answered: bool) -> Option<BootstrapDecision> {
    let knowing = answers.iter().find(|(_, status)| status.initialized && status.registered);
    match knowing {
        Some((via, status)) if status.voters.contains(&node_id) => {
            Some(BootstrapDecision::RefuseLostVoter { via: *via })
        }
        Some((via, _)) => Some(BootstrapDecision::Join { via: *via }),
        None if all_answered => Some(BootstrapDecision::Initialize),
        None => None,
    }
}

/// Asks every peer for its [`GroupStatus`] until [`decide`] can tell, retrying the unreachable
/// ones every [`BOOTSTRAP_PROBE_RETRY_PAUSE_MS`]; after [`BOOTSTRAP_PROBE_TIMEOUT_MS`] decides
/// from what it has. When every peer answers at once (a cluster's first start) this costs one
/// round trip.
pub(crate) async fn probe(node_id: NodeId, peers: Vec<PeerClient>) -> BootstrapDecision {
    let deadline = Instant::now() + Duration::from_millis(BOOTSTRAP_PROBE_TIMEOUT_MS);
    let mut waiting: Vec<PeerClient> = peers;
    let mut answers: Vec<(NodeId, GroupStatus)> = Vec::new();
    let request = RpcRequest::GroupStatus { node_id };
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let calls = waiting.iter_mut().map(|peer| {
            let request = &request;
            async move { (peer.target(), peer.call(request, remaining).await) }
        });
        let mut answered = Vec::new();
        for (peer, result) in futures::future::join_all(calls).await {
            match result {
                Ok(RpcResponse::GroupStatus(status)) => {
                    answered.push(peer);
                    answers.push((peer, status));
                }
                Ok(other) => {
                    tracing::warn!(node_id, peer, answer = ?other, "unexpected answer to a group status question")
                }
                Err(error) => tracing::debug!(node_id, peer, %error, "no group status yet"),
            }
        }
        waiting.retain(|peer| !answered.contains(&peer.target()));
        let out_of_time = Instant::now() + Duration::from_millis(BOOTSTRAP_PROBE_RETRY_PAUSE_MS) >= deadline;
        if let Some(decision) = decide(node_id, &answers, waiting.is_empty() || out_of_time) {
            if !waiting.is_empty() && decision == BootstrapDecision::Initialize {
                let silent: Vec<NodeId> = waiting.iter().map(PeerClient::target).collect();
                tracing::info!(
                    node_id,
                    ?silent,
                    "voters did not answer; creating the metadata group as on a first start"
                );
            }
            return decision;
        }
        tokio::time::sleep(Duration::from_millis(BOOTSTRAP_PROBE_RETRY_PAUSE_MS)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(initialized: bool, voters: &[NodeId], registered: bool) -> GroupStatus {
        GroupStatus { initialized, voters: voters.to_vec(), registered, cluster_id: None }
    }

    // Goal: a first start (peers uninitialized, or initialized by a voter of the same start
    // that has not seen this node register) initializes; a node the group knows is refused
    // while it is a voter and joins once demoted; unanswered peers keep the decision open
    // until the time is up.
    #[test]
    fn only_a_group_that_knows_the_node_stops_it_from_initializing() {
        let fresh = [(1, status(false, &[], false)), (2, status(false, &[], false))];
        assert_eq!(decide(3, &fresh, true), Some(BootstrapDecision::Initialize));
        assert_eq!(decide(3, &fresh[..1], false), None, "node 2 has not answered yet");
        assert_eq!(decide(3, &[], true), Some(BootstrapDecision::Initialize), "nobody reachable");

        let racing = [(1, status(true, &[1, 2, 3], false)), (2, status(false, &[], false))];
        assert_eq!(decide(3, &racing, true), Some(BootstrapDecision::Initialize), "same first start");

        let lost_voter = [(1, status(false, &[], false)), (2, status(true, &[1, 2, 3], true))];
        assert_eq!(decide(3, &lost_voter[..1], false), None);
        assert_eq!(decide(3, &lost_voter, false), Some(BootstrapDecision::RefuseLostVoter { via: 2 }));

        let demoted = [(2, status(true, &[1, 2], true))];
        assert_eq!(decide(3, &demoted, false), Some(BootstrapDecision::Join { via: 2 }), "decided without node 1");
    }
}
