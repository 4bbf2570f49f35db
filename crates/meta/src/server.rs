//! The server side of Raft RPC: accepts peer connections and hands their requests to the
//! local Raft node.
//!
//! listener → connection task (with internal TLS: the handshake, see [`crate::tls`]; then
//! hello, then request/response loop) → `Raft::{append_entries,
//! vote, install_snapshot}` or a forwarded proposal → response frame.
//!
//! A connection is closed, with a log line, on: a failed or slow TLS handshake (no client
//! certificate, one not chaining to the CA, a principal not allowed, nothing within
//! [`INTERNAL_TLS_HANDSHAKE_TIMEOUT_MS`](crate::limits::INTERNAL_TLS_HANDSHAKE_TIMEOUT_MS)) when
//! internal TLS is on, a frame over the size limit, an undecodable
//! frame, a hello for another node id or protocol version, a snapshot chunk beyond
//! [`SNAPSHOT_BYTES_MAX`], or the node being isolated by its [`NetworkSwitch`]. Connections
//! beyond [`RPC_INBOUND_CONNECTIONS_MAX`] are closed on accept.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::limits::PROPOSAL_COMMANDS_MAX;
use crate::limits::PROPOSE_TIMEOUT_MS;
use crate::limits::RPC_INBOUND_CONNECTIONS_MAX;
use crate::limits::SNAPSHOT_BYTES_MAX;
use crate::liveness::Liveness;
use crate::membership;
use crate::network::NetworkSwitch;
use crate::proposal::Batcher;
use crate::proposal::ProposeFailure;
use crate::rpc;
use crate::rpc::ForwardError;
use crate::rpc::FrameError;
use crate::rpc::GroupStatus;
use crate::rpc::RpcConnection;
use crate::rpc::RpcRequest;
use crate::rpc::RpcResponse;
use crate::state_machine::StateMachineStore;
use crate::tls;
use crate::tls::InternalTls;
use crate::types::NodeId;
use crate::types::Raft;
use crate::view::BrokerId;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_PAUSE_MS: u64 = 10;

/// Characters of an unexpected request quoted in a log line (a command can be 64 KiB).
const LOGGED_REQUEST_CHARS_MAX: usize = 200;

/// What a connection task needs.
#[derive(Clone)]
pub(crate) struct ServerContext {
    pub node_id: NodeId,
    pub raft: Raft,
    pub switch: NetworkSwitch,
    pub batcher: Batcher,
    /// Heartbeats recorded while this node leads.
    pub liveness: Liveness,
    /// Mutual TLS required of every connection, if configured.
    pub tls: Option<InternalTls>,
    /// The applied metadata, for [`RpcRequest::GroupStatus`].
    pub state_machine: StateMachineStore,
    /// Whether Raft requests (AppendEntries, Vote, InstallSnapshot) reach the local Raft node.
    pub raft_gate: RaftGate,
    /// This node's cluster id once known, for [`RpcRequest::GroupStatus`].
    pub cluster_id: Arc<OnceLock<String>>,
}

/// Closed while a voter with empty storage asks the others whether the group already knows
/// it ([`crate::bootstrap`]): until then it must neither vote nor take a log, since it may be
/// a voter whose vote and log were lost. Raft requests are answered `Refused` (the caller
/// treats the node as unreachable); everything else is served.
#[derive(Debug, Clone)]
pub(crate) struct RaftGate(Arc<AtomicBool>);

impl RaftGate {
    /// A gate, open or closed.
    pub fn new(open: bool) -> RaftGate {
        RaftGate(Arc::new(AtomicBool::new(open)))
    }

    /// Lets Raft requests through from now on.
    pub fn open(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_open(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Accepts connections until `shutdown` turns true; then drops every connection.
pub(crate) async fn serve(listener: TcpListener, context: ServerContext, mut shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(RPC_INBOUND_CONNECTIONS_MAX));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a Raft connection failed");
                tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS)).await;
                continue;
            }
        };
        if context.switch.is_isolated() {
            tracing::debug!(%peer, "dropping inbound connection: node isolated");
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = RPC_INBOUND_CONNECTIONS_MAX, "too many Raft connections; closing");
            continue;
        };
        let context = context.clone();
        connections.spawn(async move {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::warn!(%peer, %error, "closed Raft connection");
                return;
            }
            let stream = match tls::accept(stream, context.tls.as_ref()).await {
                Ok(stream) => stream,
                Err(reason) => {
                    tracing::warn!(%peer, %reason, "Raft connection refused: TLS handshake failed");
                    return;
                }
            };
            if let Err(reason) = serve_connection(stream, &context).await {
                tracing::warn!(%peer, %reason, "closed Raft connection");
            }
            drop(permit);
        });
    }
    connections.shutdown().await;
    tracing::debug!(node_id = context.node_id, "Raft server stopped");
}

/// Serves one connection until it closes or misbehaves; returns why it ended.
async fn serve_connection(stream: tls::RpcStream, context: &ServerContext) -> Result<(), String> {
    let mut connection = rpc::framed(stream);
    let from = handshake(&mut connection, context).await?;
    loop {
        let request = match rpc::receive_message::<RpcRequest>(&mut connection).await {
            Ok(request) => request,
            Err(FrameError::Closed) => return Ok(()),
            Err(error) => return Err(format!("from node {from}: {error}")),
        };
        if context.switch.is_isolated() {
            return Err("node isolated".to_string());
        }
        let response = handle(request, context).await?;
        rpc::send_message(&mut connection, &response).await.map_err(|e| e.to_string())?;
    }
}

async fn handshake(connection: &mut RpcConnection, context: &ServerContext) -> Result<NodeId, String> {
    let hello = rpc::receive_message::<RpcRequest>(connection).await.map_err(|e| format!("hello: {e}"))?;
    let refusal = match hello {
        RpcRequest::Hello { protocol_version, from, to } => {
            if protocol_version != rpc::RPC_PROTOCOL_VERSION {
                format!("protocol version {protocol_version}, expected {}", rpc::RPC_PROTOCOL_VERSION)
            } else if to != context.node_id && to != rpc::ANY_NODE {
                format!("caller {from} dialed node {to}, this is node {}", context.node_id)
            } else {
                rpc::send_message(connection, &RpcResponse::HelloOk).await.map_err(|e| e.to_string())?;
                return Ok(from);
            }
        }
        other => {
            let mut described = format!("{other:?}");
            described.truncate(LOGGED_REQUEST_CHARS_MAX);
            format!("expected hello, got {described}")
        }
    };
    // Best effort: the refusal tells the caller why before the connection closes.
    let _ = rpc::send_message(connection, &RpcResponse::Refused { reason: refusal.clone() }).await;
    Err(refusal)
}

async fn handle(request: RpcRequest, context: &ServerContext) -> Result<RpcResponse, String> {
    let raft_request =
        matches!(request, RpcRequest::AppendEntries(_) | RpcRequest::Vote(_) | RpcRequest::InstallSnapshot(_));
    if raft_request && !context.raft_gate.is_open() {
        let reason = "not taking part in Raft yet: asking the voters whether the group knows this node".to_string();
        return Ok(RpcResponse::Refused { reason });
    }
    Ok(match request {
        RpcRequest::Hello { .. } => return Err("second hello on one connection".to_string()),
        RpcRequest::AppendEntries(request) => RpcResponse::AppendEntries(context.raft.append_entries(request).await),
        RpcRequest::Vote(request) => RpcResponse::Vote(context.raft.vote(request).await),
        RpcRequest::InstallSnapshot(request) => {
            let end = request.offset.saturating_add(request.data.len() as u64);
            if end > SNAPSHOT_BYTES_MAX as u64 {
                return Err(format!("snapshot chunk ends at byte {end}, beyond {SNAPSHOT_BYTES_MAX}"));
            }
            RpcResponse::InstallSnapshot(context.raft.install_snapshot(request).await)
        }
        RpcRequest::ChangeMembership(change) => {
            RpcResponse::ChangeMembership(membership::change_local(&context.raft, change).await)
        }
        RpcRequest::ProposeBatch(commands) => {
            if commands.len() > PROPOSAL_COMMANDS_MAX {
                return Err(format!("batch of {} commands exceeds {PROPOSAL_COMMANDS_MAX}", commands.len()));
            }
            let timeout = Duration::from_millis(PROPOSE_TIMEOUT_MS);
            let proposals = commands.into_iter().map(|command| async {
                context.batcher.propose(command, timeout).await.map_err(ProposeFailure::into_forward_error)
            });
            RpcResponse::ProposeBatch(futures::future::join_all(proposals).await)
        }
        RpcRequest::BrokerHeartbeat { broker_id, broker_epoch } => {
            RpcResponse::BrokerHeartbeat(match not_leader(&context.raft, context.node_id) {
                None => {
                    context.liveness.record_heartbeat(broker_id, broker_epoch);
                    Ok(())
                }
                Some(error) => Err(error),
            })
        }
        RpcRequest::DescribeQuorum => RpcResponse::DescribeQuorum(match membership::quorum_state(&context.raft) {
            Some(state) => Ok(state),
            None => Err(not_leader(&context.raft, context.node_id)
                .unwrap_or(ForwardError::NotLeader { leader: None, leader_addr: None })),
        }),
        RpcRequest::GroupStatus { node_id } => RpcResponse::GroupStatus(group_status(context, node_id).await),
        RpcRequest::Propose(command) => {
            let proposed = context.batcher.propose(command, Duration::from_millis(PROPOSE_TIMEOUT_MS)).await;
            RpcResponse::Propose(proposed.map_err(ProposeFailure::into_forward_error))
        }
    })
}

/// What this node knows of the group, for node `asker` (see [`crate::bootstrap`]).
async fn group_status(context: &ServerContext, asker: NodeId) -> GroupStatus {
    let initialized = context.raft.is_initialized().await.unwrap_or(false);
    let voters = if initialized {
        context.raft.metrics().borrow().membership_config.membership().voter_ids().collect()
    } else {
        Vec::new()
    };
    let registered = BrokerId::try_from(asker)
        .is_ok_and(|broker_id| context.state_machine.view().view.brokers.contains_key(&broker_id));
    GroupStatus { initialized, voters, registered, cluster_id: context.cluster_id.get().cloned() }
}

/// `None` when `node_id` leads; otherwise the NotLeader answer naming the leader it knows of.
pub(crate) fn not_leader(raft: &Raft, node_id: NodeId) -> Option<ForwardError> {
    let metrics = raft.metrics();
    let metrics = metrics.borrow();
    match metrics.current_leader {
        Some(leader) if leader == node_id => None,
        leader => Some(ForwardError::NotLeader {
            leader,
            leader_addr: leader
                .and_then(|id| metrics.membership_config.membership().get_node(&id).map(|node| node.addr.clone())),
        }),
    }
}
