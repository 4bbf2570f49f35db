//! The client side of Raft RPC: one TCP connection per peer, dialed lazily, redialed after a
//! failure (no more often than every [`RPC_RECONNECT_BACKOFF_MS`]), every call bounded by a
//! timeout. A failed or timed-out call drops the connection, so a late response can never be
//! matched to the next request. With internal TLS ([`InternalTls`]) every dial does the client
//! handshake (this node's certificate, the peer's checked against the CA) before the hello.
//!
//! [`NetworkSwitch`] cuts a node off for tests and operations: while it is open, the node
//! neither dials nor serves peers, and drops the connections it has. The RPCs that do flow
//! always travel over real TCP.

use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Context;
use std::task::Poll;
use std::time::Duration;
use std::time::Instant;

use openraft::error::InstallSnapshotError;
use openraft::error::NetworkError;
use openraft::error::RPCError;
use openraft::error::RaftError;
use openraft::error::RemoteError;
use openraft::error::Timeout;
use openraft::error::Unreachable;
use openraft::network::RPCOption;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::InstallSnapshotRequest;
use openraft::raft::InstallSnapshotResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use openraft::RPCTypes;
use openraft::RaftNetwork;
use openraft::RaftNetworkFactory;
use tokio::io::AsyncRead;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;

use crate::limits::RPC_CONNECT_TIMEOUT_MS;
use crate::limits::RPC_RECONNECT_BACKOFF_MS;
use crate::limits::RPC_TIMEOUT_MS_MAX;
use crate::rpc;
use crate::rpc::RpcConnection;
use crate::rpc::RpcRequest;
use crate::rpc::RpcResponse;
use crate::tls;
use crate::tls::InternalTls;
use crate::types::Node;
use crate::types::NodeId;
use crate::types::TypeConfig;

/// A switch that isolates a node from its peers (both directions) while it is open.
#[derive(Debug, Clone, Default)]
pub struct NetworkSwitch {
    isolated: Arc<AtomicBool>,
}

impl NetworkSwitch {
    /// Cut the node off: no dialing, inbound connections are dropped.
    pub fn isolate(&self) {
        tracing::warn!("network switch: node isolated");
        self.isolated.store(true, Ordering::SeqCst);
    }

    /// Reconnect the node.
    pub fn heal(&self) {
        tracing::warn!("network switch: node reconnected");
        self.isolated.store(false, Ordering::SeqCst);
    }

    /// Whether the node is cut off.
    pub fn is_isolated(&self) -> bool {
        self.isolated.load(Ordering::SeqCst)
    }
}

/// Why a call failed before a response arrived.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection could be made (refused, isolated, backing off); nothing was sent.
    /// Retriable: after the reconnect backoff.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The request may have been sent but no response came in time. Retriable only if the
    /// request is idempotent (Raft RPCs are; a forwarded proposal may have been applied).
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The connection broke after the request may have been sent. Retriable like `Timeout`.
    #[error("network: {0}")]
    Network(String),
}

/// A connection to one peer, reused across calls.
#[derive(Debug)]
pub struct PeerClient {
    from: NodeId,
    target: NodeId,
    addr: String,
    switch: NetworkSwitch,
    tls: Option<InternalTls>,
    connection: Option<RpcConnection>,
    last_failure: Option<Instant>,
}

impl PeerClient {
    /// A client for `target` at `addr` over plain TCP; nothing is dialed until the first call.
    pub fn new(from: NodeId, target: NodeId, addr: String, switch: NetworkSwitch) -> PeerClient {
        PeerClient { from, target, addr, switch, tls: None, connection: None, last_failure: None }
    }

    /// The same client dialing with the internal TLS setup `tls` (plain TCP with `None`).
    pub fn with_tls(mut self, tls: Option<InternalTls>) -> PeerClient {
        self.tls = tls;
        self.connection = None;
        self
    }

    /// The node this client dials.
    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Sends `request` and waits up to `timeout` for the response.
    pub async fn call(&mut self, request: &RpcRequest, timeout: Duration) -> Result<RpcResponse, CallError> {
        if self.switch.is_isolated() {
            self.connection = None;
            return Err(CallError::Unreachable("this node is isolated".to_string()));
        }
        if self.connection.as_mut().is_some_and(is_closed_by_peer) {
            // The peer closed this idle connection (it restarted, or it dropped us). Sending on
            // it would fail *after* the request might count as sent; redial instead.
            self.connection = None;
        }
        if self.connection.is_none() {
            let connection = self.connect().await.inspect_err(|_| self.last_failure = Some(Instant::now()))?;
            self.connection = Some(connection);
        }
        let connection = self.connection.as_mut().expect("connected above");
        let exchange = async {
            rpc::send_message(connection, request).await.map_err(|e| CallError::Network(e.to_string()))?;
            rpc::receive_message::<RpcResponse>(connection).await.map_err(|e| CallError::Network(e.to_string()))
        };
        let result = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout(timeout)),
        };
        if result.is_err() {
            // The stream may hold a half-read or late response: never reuse it.
            self.connection = None;
        }
        result
    }

    async fn connect(&mut self) -> Result<RpcConnection, CallError> {
        if let Some(at) = self.last_failure {
            if at.elapsed() < Duration::from_millis(RPC_RECONNECT_BACKOFF_MS) {
                return Err(CallError::Unreachable(format!("backing off after a failed dial of {}", self.addr)));
            }
        }
        let connect_timeout = Duration::from_millis(RPC_CONNECT_TIMEOUT_MS);
        let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(&self.addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(CallError::Unreachable(format!("dial {}: {error}", self.addr))),
            Err(_) => return Err(CallError::Unreachable(format!("dial {} timed out", self.addr))),
        };
        stream.set_nodelay(true).map_err(|e| CallError::Unreachable(e.to_string()))?;
        let stream = match tls::connect(stream, &self.addr, self.tls.as_ref()).await {
            Ok(stream) => stream,
            Err(reason) => {
                tracing::info!(target_node = self.target, addr = %self.addr, %reason, "Raft connection refused by TLS");
                return Err(CallError::Unreachable(format!("{}: {reason}", self.addr)));
            }
        };
        let mut connection = rpc::framed(stream);
        let hello = RpcRequest::Hello { protocol_version: rpc::RPC_PROTOCOL_VERSION, from: self.from, to: self.target };
        let handshake = async {
            rpc::send_message(&mut connection, &hello).await.map_err(|e| e.to_string())?;
            rpc::receive_message::<RpcResponse>(&mut connection).await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(connect_timeout, handshake).await {
            Ok(Ok(RpcResponse::HelloOk)) => {
                tracing::debug!(target_node = self.target, addr = %self.addr, "connected to peer");
                Ok(connection)
            }
            Ok(Ok(RpcResponse::Refused { reason })) => Err(CallError::Unreachable(format!("refused: {reason}"))),
            Ok(Ok(other)) => Err(CallError::Unreachable(format!("unexpected hello answer {other:?}"))),
            Ok(Err(reason)) => Err(CallError::Unreachable(format!("hello with {}: {reason}", self.addr))),
            Err(_) => Err(CallError::Unreachable(format!("hello with {} timed out", self.addr))),
        }
    }

    fn rpc_error<E: std::error::Error>(&self, error: CallError, action: RPCTypes) -> RPCError<NodeId, Node, E> {
        match error {
            CallError::Unreachable(reason) => RPCError::Unreachable(Unreachable::new(&std::io::Error::other(reason))),
            CallError::Timeout(timeout) => {
                RPCError::Timeout(Timeout { action, id: self.from, target: self.target, timeout })
            }
            CallError::Network(reason) => RPCError::Network(NetworkError::new(&std::io::Error::other(reason))),
        }
    }

    fn unexpected<E: std::error::Error>(&mut self, response: RpcResponse) -> RPCError<NodeId, Node, E> {
        if let RpcResponse::Refused { reason } = response {
            // The peer does not take part in Raft yet (a voter with empty storage still asking
            // whether the group knows it): unreachable for now, tried again like a dead peer.
            let reason = format!("node {} refused: {reason}", self.target);
            return RPCError::Unreachable(Unreachable::new(&std::io::Error::other(reason)));
        }
        tracing::warn!(target_node = self.target, ?response, "peer answered with the wrong message type");
        self.connection = None;
        let reason = format!("unexpected response from node {}", self.target);
        RPCError::Network(NetworkError::new(&std::io::Error::other(reason)))
    }
}

/// Whether an idle connection has been closed (or written to) by the peer. An idle connection
/// must have nothing to read: any byte, end of stream or error means it cannot be used. One
/// read is polled without waiting: on TLS it also consumes what is not application data (a
/// TLS 1.3 server's session tickets arrive after the handshake) and stays pending.
fn is_closed_by_peer(connection: &mut RpcConnection) -> bool {
    if !connection.read_buffer().is_empty() {
        return true;
    }
    let mut probe = [0u8; 1];
    let mut buffer = ReadBuf::new(&mut probe);
    let mut context = Context::from_waker(std::task::Waker::noop());
    !matches!(Pin::new(connection.get_mut()).poll_read(&mut context, &mut buffer), Poll::Pending)
}

fn rpc_timeout(option: &RPCOption) -> Duration {
    option.hard_ttl().min(Duration::from_millis(RPC_TIMEOUT_MS_MAX))
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let request = RpcRequest::AppendEntries(request);
        match self.call(&request, rpc_timeout(&option)).await {
            Ok(RpcResponse::AppendEntries(Ok(response))) => Ok(response),
            Ok(RpcResponse::AppendEntries(Err(error))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, error)))
            }
            Ok(other) => Err(self.unexpected(other)),
            Err(error) => Err(self.rpc_error(error, RPCTypes::AppendEntries)),
        }
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>> {
        let request = RpcRequest::InstallSnapshot(request);
        match self.call(&request, rpc_timeout(&option)).await {
            Ok(RpcResponse::InstallSnapshot(Ok(response))) => Ok(response),
            Ok(RpcResponse::InstallSnapshot(Err(error))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, error)))
            }
            Ok(other) => Err(self.unexpected(other)),
            Err(error) => Err(self.rpc_error(error, RPCTypes::InstallSnapshot)),
        }
    }

    async fn vote(
        &mut self,
        request: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let request = RpcRequest::Vote(request);
        match self.call(&request, rpc_timeout(&option)).await {
            Ok(RpcResponse::Vote(Ok(response))) => Ok(response),
            Ok(RpcResponse::Vote(Err(error))) => Err(RPCError::RemoteError(RemoteError::new(self.target, error))),
            Ok(other) => Err(self.unexpected(other)),
            Err(error) => Err(self.rpc_error(error, RPCTypes::Vote)),
        }
    }
}

/// Makes [`PeerClient`]s for openraft.
#[derive(Debug, Clone)]
pub struct NetworkFactory {
    node_id: NodeId,
    switch: NetworkSwitch,
    tls: Option<InternalTls>,
}

impl NetworkFactory {
    /// A factory for node `node_id`, obeying `switch`, dialing plain TCP.
    pub fn new(node_id: NodeId, switch: NetworkSwitch) -> NetworkFactory {
        NetworkFactory { node_id, switch, tls: None }
    }

    /// The same factory, its clients dialing with the internal TLS setup `tls`.
    pub fn with_tls(mut self, tls: Option<InternalTls>) -> NetworkFactory {
        self.tls = tls;
        self
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerClient {
        PeerClient::new(self.node_id, target, node.addr.clone(), self.switch.clone()).with_tls(self.tls.clone())
    }
}
