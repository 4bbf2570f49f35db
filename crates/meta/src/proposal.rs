//! Getting a command committed from any node: write locally on the leader, or forward to the
//! leader over the Raft RPC connection.
//!
//! A proposal is retried automatically only when it certainly was not committed: the node
//! asked is not the leader, or the leader could not be dialed. When a forwarded request was sent
//! but its answer was lost (timeout, broken connection) the caller gets an error and decides;
//! commands are built so that a retry is recognisable (duplicate topic name, stale epoch).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use openraft::error::ClientWriteError;
use openraft::error::RaftError;

use crate::commands::Command;
use crate::error::MetaError;
use crate::limits::COMMAND_BYTES_MAX;
use crate::limits::FORWARD_CONNECTIONS_PER_PEER_MAX;
use crate::network::CallError;
use crate::network::NetworkSwitch;
use crate::network::PeerClient;
use crate::rpc::ForwardError;
use crate::rpc::ProposeReply;
use crate::rpc::RpcRequest;
use crate::rpc::RpcResponse;
use crate::types::NodeId;
use crate::types::Raft;

/// Writes `command` through the local Raft node, waiting up to `timeout` for it to be applied.
/// Commands over [`COMMAND_BYTES_MAX`] are refused before they reach the log: an entry the log
/// store cannot frame would be a storage error, which stops the Raft node.
pub(crate) async fn propose_local(
    raft: &Raft,
    command: Command,
    timeout: Duration,
) -> Result<ProposeReply, ForwardError> {
    let bytes = postcard::to_allocvec(&command).map(|encoded| encoded.len()).unwrap_or(usize::MAX);
    if bytes > COMMAND_BYTES_MAX {
        return Err(ForwardError::Refused(format!("command of {bytes} bytes exceeds {COMMAND_BYTES_MAX}")));
    }
    match tokio::time::timeout(timeout, raft.client_write(command)).await {
        Err(_) => Err(ForwardError::Timeout),
        Ok(Ok(response)) => Ok(ProposeReply { log_index: response.log_id.index, reply: response.data }),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => Err(ForwardError::NotLeader {
            leader: forward.leader_id,
            leader_addr: forward.leader_node.map(|node| node.addr),
        }),
        Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(error)))) => {
            Err(ForwardError::Refused(error.to_string()))
        }
        Ok(Err(RaftError::Fatal(fatal))) => Err(ForwardError::Stopped(fatal.to_string())),
    }
}

/// How a forwarding attempt ended without a reply.
pub(crate) enum ForwardFailure {
    /// Certainly not committed (leader unreachable or no longer leader): try again.
    Retry,
    /// May or may not have been committed, or cannot succeed: give up with this error.
    GiveUp(MetaError),
}

/// Pooled connections to leaders for forwarded proposals.
#[derive(Debug)]
pub(crate) struct Forwarder {
    node_id: NodeId,
    switch: NetworkSwitch,
    idle: Mutex<BTreeMap<(NodeId, String), Vec<PeerClient>>>,
}

impl Forwarder {
    pub(crate) fn new(node_id: NodeId, switch: NetworkSwitch) -> Forwarder {
        Forwarder { node_id, switch, idle: Mutex::new(BTreeMap::new()) }
    }

    /// Sends `command` to `leader` at `addr` and waits up to `timeout` for its reply.
    pub(crate) async fn forward(
        &self,
        leader: NodeId,
        addr: &str,
        command: &Command,
        timeout: Duration,
    ) -> Result<ProposeReply, ForwardFailure> {
        let key = (leader, addr.to_string());
        let pooled = self.idle.lock().expect("forward pool lock").get_mut(&key).and_then(Vec::pop);
        let mut client =
            pooled.unwrap_or_else(|| PeerClient::new(self.node_id, leader, addr.to_string(), self.switch.clone()));
        let result = client.call(&RpcRequest::Propose(command.clone()), timeout).await;
        let reply = match result {
            Ok(RpcResponse::Propose(reply)) => reply,
            Ok(other) => {
                let reason = format!("unexpected answer {other:?}");
                return Err(ForwardFailure::GiveUp(MetaError::Forward { leader, reason }));
            }
            Err(CallError::Unreachable(reason)) => {
                tracing::debug!(leader, %reason, "leader unreachable for forwarding");
                return Err(ForwardFailure::Retry);
            }
            Err(CallError::Timeout(_)) => {
                return Err(ForwardFailure::GiveUp(MetaError::Timeout {
                    operation: "forwarded proposal",
                    timeout_ms: timeout.as_millis() as u64,
                }))
            }
            Err(CallError::Network(reason)) => {
                return Err(ForwardFailure::GiveUp(MetaError::Forward { leader, reason }))
            }
        };
        let mut idle = self.idle.lock().expect("forward pool lock");
        let slot = idle.entry(key).or_default();
        if slot.len() < FORWARD_CONNECTIONS_PER_PEER_MAX {
            slot.push(client);
        }
        drop(idle);
        match reply {
            Ok(reply) => Ok(reply),
            Err(ForwardError::NotLeader { .. }) => Err(ForwardFailure::Retry),
            Err(ForwardError::Timeout) => Err(ForwardFailure::GiveUp(MetaError::Timeout {
                operation: "proposal on the leader",
                timeout_ms: timeout.as_millis() as u64,
            })),
            Err(ForwardError::Stopped(reason)) | Err(ForwardError::Refused(reason)) => {
                Err(ForwardFailure::GiveUp(MetaError::Forward { leader, reason }))
            }
        }
    }
}
