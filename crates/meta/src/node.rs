//! [`MetaNode`]: one running member of the metadata Raft group, wired from the log store, the
//! state machine, the network and the RPC server. This is the API the broker uses.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::time::Duration;
use std::time::Instant;

use openraft::error::InitializeError;
use openraft::error::RaftError;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bootstrap;
use crate::bootstrap::BootstrapDecision;
use crate::commands::Command;
use crate::commands::CommandOutcome;
use crate::config::MetaConfig;
use crate::durable;
use crate::error::MetaError;
use crate::forward::ForwardFailure;
use crate::forward::Forwarder;
use crate::limits::CLUSTER_ID_BYTES_MAX;
use crate::limits::COMMAND_BYTES_MAX;
use crate::limits::JOIN_RETRY_PAUSE_MS;
use crate::limits::JOIN_TIMEOUT_MS;
use crate::limits::MEMBERSHIP_CHANGE_TIMEOUT_MS;
use crate::limits::PROPOSE_RETRY_PAUSE_MS;
use crate::limits::PROPOSE_TIMEOUT_MS;
use crate::liveness;
use crate::liveness::Liveness;
use crate::log_store::LogStore;
use crate::log_store::StoreHealth;
use crate::log_store::WriterJoin;
use crate::membership;
use crate::membership::MembershipChange;
use crate::membership::MembershipFailure;
use crate::membership::QuorumState;
use crate::membership::Role;
use crate::network::NetworkFactory;
use crate::network::NetworkSwitch;
use crate::network::PeerClient;
use crate::proposal::Batcher;
use crate::proposal::ProposeFailure;
use crate::rpc::ForwardError;
use crate::rpc::ProposeReply;
use crate::rpc::RpcRequest;
use crate::rpc::RpcResponse;
use crate::rpc::ANY_NODE;
use crate::server;
use crate::server::RaftGate;
use crate::server::ServerContext;
use crate::state_machine::StateMachineStore;
use crate::subscription::AppliedView;
use crate::subscription::MetadataEvent;
use crate::types::Node;
use crate::types::NodeId;
use crate::types::Raft;
use crate::types::RaftMetrics;
use crate::view::BrokerId;

/// Time [`MetaNode::shutdown`] waits for the log writer thread to finish its last fsync.
const SHUTDOWN_WRITER_WAIT_MS: u64 = 5_000;

/// File under the data directory holding the cluster id a node adopted when it joined through
/// `--join` (see [`MetaConfig::cluster_id`]); written once, atomically, before the join.
const CLUSTER_ID_FILE: &str = "cluster_id";

/// A committed and applied command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposed {
    /// Log index of the command; [`MetaNode::wait_applied`] with it makes a node's view
    /// include the command.
    pub log_index: u64,
    /// What the command did.
    pub outcome: CommandOutcome,
}

/// A running metadata Raft node.
pub struct MetaNode {
    config: MetaConfig,
    raft: Raft,
    state_machine: StateMachineStore,
    switch: NetworkSwitch,
    forwarder: Forwarder,
    local_addr: SocketAddr,
    shutdown_sender: watch::Sender<bool>,
    server: Mutex<Option<JoinHandle<()>>>,
    batcher: Batcher,
    batcher_task: JoinHandle<()>,
    writer: WriterJoin,
    liveness: Liveness,
    controller_task: Option<JoinHandle<()>>,
    /// Connection to the leader for this node's broker heartbeats (leader id, client).
    heartbeat_client: tokio::sync::Mutex<Option<(NodeId, PeerClient)>>,
    store_health: StoreHealth,
    /// The cluster id: configured, read from [`CLUSTER_ID_FILE`], or adopted while joining.
    cluster_id: Arc<OnceLock<String>>,
}

impl std::fmt::Debug for MetaNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaNode").field("node_id", &self.config.node_id).field("local_addr", &self.local_addr).finish()
    }
}

impl MetaNode {
    /// Starts a node: binds `config.listen_addr`, opens the stores under `config.data_dir`,
    /// and, for an initial voter with empty storage, bootstraps the group with `config.voters`;
    /// a node not among them with empty storage and `config.join` first joins the group as a
    /// learner through them and `config.join_addrs` (and fails to start if it cannot within
    /// [`JOIN_TIMEOUT_MS`]). A node with storage ignores both lists: its membership is in its
    /// log.
    pub async fn start(config: MetaConfig) -> Result<MetaNode, MetaError> {
        let listener = TcpListener::bind(config.listen_addr).await?;
        MetaNode::start_with_listener(config, listener).await
    }

    /// Like [`MetaNode::start`], on an already bound listener (tests bind port 0 first).
    pub async fn start_with_listener(config: MetaConfig, listener: TcpListener) -> Result<MetaNode, MetaError> {
        let raft_config = Arc::new(config.raft_config()?);
        let log_store = LogStore::open(&config.data_dir.join("log"))?;
        let writer = log_store.writer_join();
        let store_health = log_store.health();
        let state_machine = StateMachineStore::open(&config.data_dir.join("snapshot"))?;
        let switch = NetworkSwitch::default();
        let network = NetworkFactory::new(config.node_id, switch.clone()).with_tls(config.internal_tls.clone());
        let raft = Raft::new(config.node_id, raft_config, network, log_store, state_machine.clone())
            .await
            .map_err(|e| MetaError::Stopped(e.to_string()))?;
        let initialized = raft.is_initialized().await.map_err(|e| MetaError::Stopped(e.to_string()))?;
        // A voter with empty storage takes no part in Raft until `bootstrap` knows it is not
        // a voter whose disk was lost.
        let raft_gate = RaftGate::new(initialized || !config.is_initial_voter());
        let cluster_id = Arc::new(OnceLock::new());
        if let Some(id) = config.cluster_id.clone().or(read_cluster_id(&config.data_dir)?) {
            let _ = cluster_id.set(id);
        }
        let local_addr = listener.local_addr()?;
        let (shutdown_sender, shutdown) = watch::channel(false);
        let (batcher, batcher_task) = Batcher::start(raft.clone());
        let liveness = Liveness::default();
        let context = ServerContext {
            node_id: config.node_id,
            raft: raft.clone(),
            switch: switch.clone(),
            batcher: batcher.clone(),
            liveness: liveness.clone(),
            tls: config.internal_tls.clone(),
            state_machine: state_machine.clone(),
            raft_gate: raft_gate.clone(),
            cluster_id: cluster_id.clone(),
        };
        let controller_task = config.broker_session_timeout_ms.map(|session_timeout_ms| {
            let mut stop = shutdown.clone();
            tokio::spawn(liveness::run_controller(
                config.node_id,
                raft.clone(),
                batcher.clone(),
                state_machine.clone(),
                liveness.clone(),
                liveness::ControllerSettings {
                    session_timeout_ms,
                    auto_leader_rebalance: config.auto_leader_rebalance,
                    unclean_leader_election: config.unclean_leader_election,
                },
                async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                },
            ))
        });
        let server = tokio::spawn(server::serve(listener, context, shutdown));
        let node = MetaNode {
            forwarder: Forwarder::new(config.node_id, switch.clone(), config.internal_tls.clone()),
            batcher,
            batcher_task,
            config,
            raft,
            state_machine,
            switch,
            local_addr,
            shutdown_sender,
            server: Mutex::new(Some(server)),
            writer,
            liveness,
            controller_task,
            heartbeat_client: tokio::sync::Mutex::new(None),
            store_health,
            cluster_id,
        };
        if let Err(error) = node.bootstrap(initialized, &raft_gate).await {
            // Stop the RPC server and Raft so that nothing keeps the listener or the stores.
            if let Err(stop_error) = node.shutdown().await {
                tracing::warn!(node_id = node.config.node_id, %stop_error, "stopping after a failed start");
            }
            return Err(error);
        }
        tracing::info!(node_id = node.config.node_id, addr = %node.local_addr, "metadata node started");
        Ok(node)
    }

    /// Brings a node with empty storage into the group: a node not in `--voters` joins as a
    /// learner (with `join`, through the voters and `--join` members); a voter first asks the other voters whether the group exists and
    /// knows it ([`bootstrap::probe`]), then creates the group (a first start), joins as a
    /// learner (its vote was removed after its disk was lost), or refuses to start (it is still
    /// a voter and has lost its vote and log). Opens `raft_gate` once Raft may run.
    async fn bootstrap(&self, initialized: bool, raft_gate: &RaftGate) -> Result<(), MetaError> {
        if initialized {
            return Ok(());
        }
        if !self.config.is_initial_voter() {
            return if self.config.join { self.join().await } else { Ok(()) };
        }
        let node_id = self.config.node_id;
        let peers = self
            .config
            .voters
            .iter()
            .filter(|(id, _)| **id != node_id)
            .map(|(id, addr)| self.peer_client(*id, addr.clone()))
            .collect();
        match bootstrap::probe(node_id, peers).await {
            BootstrapDecision::RefuseLostVoter { via } => Err(MetaError::LostVoter { node_id, via }),
            BootstrapDecision::Join { via } => {
                tracing::info!(
                    node_id,
                    via,
                    "empty storage, and the metadata group knows this node as a non-voter: rejoining as a learner"
                );
                raft_gate.open();
                self.join().await
            }
            BootstrapDecision::Initialize => {
                raft_gate.open();
                let members: BTreeMap<NodeId, Node> =
                    self.config.voters.iter().map(|(id, addr)| (*id, Node { addr: addr.clone() })).collect();
                match self.raft.initialize(members).await {
                    Ok(()) => Ok(()),
                    // Another voter's log reached us first: already part of the group.
                    Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
                    Err(error) => Err(MetaError::Config(format!("bootstrapping the voter group: {error}"))),
                }
            }
        }
    }

    /// Asks the group to add this node as a learner, through any of the initial voters or the
    /// `--join` members (a follower or learner answers with the leader, which is asked next),
    /// and waits until the leader has added it and it has caught up. A node without a cluster
    /// id first adopts the one of the member it asks. Gives up after [`JOIN_TIMEOUT_MS`].
    async fn join(&self) -> Result<(), MetaError> {
        let change =
            MembershipChange::AddLearner { node_id: self.config.node_id, addr: self.config.advertise_addr.clone() };
        let request = RpcRequest::ChangeMembership(change);
        let deadline = Instant::now() + Duration::from_millis(JOIN_TIMEOUT_MS);
        // A voter rejoining after its disk was lost is in `--voters` itself: ask only the others.
        let mut targets: Vec<(NodeId, String)> = self
            .config
            .voters
            .iter()
            .filter(|(id, _)| **id != self.config.node_id)
            .map(|(id, a)| (*id, a.clone()))
            .chain(self.config.join_addrs.iter().map(|addr| (ANY_NODE, addr.clone())))
            .collect();
        let mut last_problem = "no member answered".to_string();
        tracing::info!(node_id = self.config.node_id, addr = %self.config.advertise_addr, "joining the metadata group as a learner");
        while Instant::now() < deadline {
            let Some((target, addr)) = targets.first().cloned() else { break };
            targets.rotate_left(1);
            let mut client = self.peer_client(target, addr.clone());
            let remaining = deadline.saturating_duration_since(Instant::now());
            let timeout = remaining.min(Duration::from_millis(MEMBERSHIP_CHANGE_TIMEOUT_MS));
            let member = describe_member(target, &addr);
            if self.cluster_id.get().is_none() {
                if let Err(problem) = self.adopt_cluster_id(&mut client, &member, timeout).await {
                    last_problem = problem;
                    tokio::time::sleep(Duration::from_millis(JOIN_RETRY_PAUSE_MS)).await;
                    continue;
                }
            }
            match client.call(&request, timeout).await {
                Ok(RpcResponse::ChangeMembership(Ok(()))) => {
                    tracing::info!(node_id = self.config.node_id, via = %member, "joined the metadata group as a learner");
                    return Ok(());
                }
                Ok(RpcResponse::ChangeMembership(Err(MembershipFailure::NotLeader {
                    leader: Some(leader),
                    leader_addr: Some(leader_addr),
                }))) => {
                    // Ask the leader next.
                    targets.retain(|(id, _)| *id != leader);
                    targets.insert(0, (leader, leader_addr));
                    continue;
                }
                Ok(other) => last_problem = format!("{member} answered {other:?}"),
                Err(error) => last_problem = format!("{member}: {error}"),
            }
            tokio::time::sleep(Duration::from_millis(JOIN_RETRY_PAUSE_MS)).await;
        }
        Err(MetaError::Membership(format!(
            "could not join the metadata group through the voters or --join members within {JOIN_TIMEOUT_MS} ms: \
             {last_problem}"
        )))
    }

    /// Asks `member` (through `client`) for its group status; once it belongs to an
    /// initialized group, keeps its cluster id in [`CLUSTER_ID_FILE`] and takes it as this
    /// node's. A member that knows no cluster id (a metadata group without brokers) leaves this
    /// node without one. The error is the problem to report if the join fails.
    async fn adopt_cluster_id(&self, client: &mut PeerClient, member: &str, timeout: Duration) -> Result<(), String> {
        let request = RpcRequest::GroupStatus { node_id: self.config.node_id };
        let status = match client.call(&request, timeout).await {
            Ok(RpcResponse::GroupStatus(status)) => status,
            Ok(other) => return Err(format!("{member} answered {other:?}")),
            Err(error) => return Err(format!("{member}: {error}")),
        };
        if !status.initialized {
            return Err(format!("{member} is not a member of a running metadata group yet"));
        }
        let Some(id) = status.cluster_id else { return Ok(()) };
        if id.len() > CLUSTER_ID_BYTES_MAX {
            return Err(format!("{member} sent a cluster id of {} bytes", id.len()));
        }
        durable::write_atomically(&self.config.data_dir, CLUSTER_ID_FILE, id.as_bytes())
            .map_err(|error| format!("keeping the cluster id in {}: {error}", self.config.data_dir.display()))?;
        tracing::info!(node_id = self.config.node_id, cluster_id = %id, via = %member, "adopted the cluster id");
        let _ = self.cluster_id.set(id);
        Ok(())
    }

    /// The cluster id: [`MetaConfig::cluster_id`], else the one this node adopted when it
    /// joined through `--join`. `None` only in a group whose members were given none.
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id.get().cloned()
    }

    /// The metadata quorum as the leader sees it: asked of the leader when this node is not it.
    pub async fn describe_quorum(&self) -> Result<QuorumState, MetaError> {
        if let Some(state) = membership::quorum_state(&self.raft) {
            return Ok(state);
        }
        let Some(ForwardError::NotLeader { leader, leader_addr }) = server::not_leader(&self.raft, self.config.node_id)
        else {
            return Err(MetaError::NoLeader);
        };
        let (Some(leader), Some(addr)) = (leader, leader_addr) else { return Err(MetaError::NoLeader) };
        let mut client = self.peer_client(leader, addr);
        let timeout = Duration::from_millis(PROPOSE_TIMEOUT_MS);
        match client.call(&RpcRequest::DescribeQuorum, timeout).await {
            Ok(RpcResponse::DescribeQuorum(Ok(state))) => Ok(state),
            Ok(RpcResponse::DescribeQuorum(Err(ForwardError::NotLeader { leader, .. }))) => {
                Err(MetaError::NotLeader { leader })
            }
            Ok(other) => Err(MetaError::Forward { leader, reason: format!("unexpected answer {other:?}") }),
            Err(error) => Err(MetaError::Forward { leader, reason: error.to_string() }),
        }
    }

    /// This node's role in the membership it knows (a follower's view may trail the leader's).
    pub fn role(&self) -> Role {
        membership::role_of(&self.raft, self.config.node_id)
    }

    /// A client to the node `target` at `addr`, dialing with this node's internal TLS setup.
    fn peer_client(&self, target: NodeId, addr: String) -> PeerClient {
        PeerClient::new(self.config.node_id, target, addr, self.switch.clone())
            .with_tls(self.config.internal_tls.clone())
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    /// The address the Raft listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Proposes `command` through whichever node leads, and waits until it is committed and
    /// applied there. Gives up after [`PROPOSE_TIMEOUT_MS`].
    pub async fn propose(&self, command: Command) -> Result<Proposed, MetaError> {
        let bytes = postcard::to_allocvec(&command).map_err(|e| MetaError::Config(e.to_string()))?.len();
        if bytes > COMMAND_BYTES_MAX {
            return Err(MetaError::CommandTooLarge { bytes, bytes_max: COMMAND_BYTES_MAX });
        }
        let deadline = Instant::now() + Duration::from_millis(PROPOSE_TIMEOUT_MS);
        let mut last_leader = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(match last_leader {
                    Some(_) => MetaError::Timeout { operation: "proposal", timeout_ms: PROPOSE_TIMEOUT_MS },
                    None => MetaError::NoLeader,
                });
            }
            let attempt = match self.batcher.propose(command.clone(), remaining).await {
                Ok(reply) => return finish(reply),
                // This node's own Raft (or batcher) stopped: it is shutting down; retrying
                // elsewhere is not its job.
                Err(ProposeFailure::NotSubmitted(reason)) => return Err(MetaError::Stopped(reason)),
                Err(ProposeFailure::Answer(ForwardError::NotLeader {
                    leader: Some(leader),
                    leader_addr: Some(addr),
                })) if leader != self.config.node_id => {
                    last_leader = Some(leader);
                    self.forwarder.forward(leader, &addr, &command, remaining).await
                }
                Err(ProposeFailure::Answer(ForwardError::NotLeader { .. })) => Err(ForwardFailure::Retry),
                Err(ProposeFailure::Answer(ForwardError::Timeout)) => {
                    return Err(MetaError::Timeout { operation: "proposal", timeout_ms: PROPOSE_TIMEOUT_MS })
                }
                Err(ProposeFailure::Answer(ForwardError::Stopped(reason) | ForwardError::Refused(reason))) => {
                    return Err(MetaError::Stopped(reason))
                }
            };
            match attempt {
                Ok(reply) => return finish(reply),
                Err(ForwardFailure::GiveUp(error)) => return Err(error),
                Err(ForwardFailure::Retry) => tokio::time::sleep(Duration::from_millis(PROPOSE_RETRY_PAUSE_MS)).await,
            }
        }
    }

    /// Tells the metadata leader that broker `broker_id` (registration `broker_epoch`) is alive
    /// (Kafka's BrokerHeartbeat). Recorded locally when this node leads, else sent to the
    /// leader over the Raft RPC connection. Fails when no leader is known or it cannot be
    /// reached within `timeout`; the caller simply sends the next one.
    pub async fn heartbeat(&self, broker_id: BrokerId, broker_epoch: i64, timeout: Duration) -> Result<(), MetaError> {
        let Some(ForwardError::NotLeader { leader, leader_addr }) = server::not_leader(&self.raft, self.config.node_id)
        else {
            self.liveness.record_heartbeat(broker_id, broker_epoch);
            return Ok(());
        };
        let (Some(leader), Some(addr)) = (leader, leader_addr) else { return Err(MetaError::NoLeader) };
        let mut client = self.heartbeat_client.lock().await;
        if client.as_ref().is_none_or(|(target, _)| *target != leader) {
            *client = Some((leader, self.peer_client(leader, addr)));
        }
        let (_, peer) = client.as_mut().expect("set above");
        let request = RpcRequest::BrokerHeartbeat { broker_id, broker_epoch };
        match peer.call(&request, timeout).await {
            Ok(RpcResponse::BrokerHeartbeat(Ok(()))) => Ok(()),
            Ok(RpcResponse::BrokerHeartbeat(Err(ForwardError::NotLeader { leader, .. }))) => {
                Err(MetaError::NotLeader { leader })
            }
            Ok(other) => Err(MetaError::Forward { leader, reason: format!("unexpected answer {other:?}") }),
            Err(error) => Err(MetaError::Forward { leader, reason: error.to_string() }),
        }
    }

    /// The latest view applied on this node (it may trail the leader by a few entries; use
    /// [`MetaNode::wait_applied`] with a [`Proposed::log_index`] to read your writes).
    pub fn view(&self) -> AppliedView {
        self.state_machine.view()
    }

    /// A receiver that always holds the latest applied view; `changed()` wakes on each update.
    pub fn watch_view(&self) -> watch::Receiver<AppliedView> {
        self.state_machine.watch_view()
    }

    /// Has `observer` told how long each batch of committed entries takes to apply here (see
    /// [`crate::state_machine::ApplyObserver`]); only the first observer is kept.
    pub fn observe_apply(&self, observer: crate::state_machine::ApplyObserver) -> bool {
        self.state_machine.observe_apply(observer)
    }

    /// Every change applied on this node from now on, in log order.
    pub fn subscribe(&self) -> broadcast::Receiver<MetadataEvent> {
        self.state_machine.subscribe_events()
    }

    /// Waits until this node has applied `log_index`, and returns the view then.
    pub async fn wait_applied(&self, log_index: u64, timeout: Duration) -> Result<AppliedView, MetaError> {
        let mut receiver = self.watch_view();
        let waiting = async {
            receiver
                .wait_for(|view| view.applied_index.is_some_and(|index| index >= log_index))
                .await
                .map(|view| view.clone())
        };
        let result = tokio::time::timeout(timeout, waiting).await;
        match result {
            Ok(Ok(view)) => Ok(view),
            Ok(Err(_)) => Err(MetaError::Stopped("state machine closed".to_string())),
            Err(_) => Err(MetaError::Timeout { operation: "wait for apply", timeout_ms: timeout.as_millis() as u64 }),
        }
    }

    /// A linearizable read on the leader: confirms leadership with a quorum, waits until
    /// everything committed before the call is applied, and returns the view.
    pub async fn read_view_linearizable(&self) -> Result<AppliedView, MetaError> {
        let read_log_id = self.raft.ensure_linearizable().await.map_err(|error| match error {
            RaftError::APIError(_) => MetaError::NotLeader { leader: self.current_leader() },
            RaftError::Fatal(fatal) => MetaError::Stopped(fatal.to_string()),
        })?;
        match read_log_id {
            Some(id) => self.wait_applied(id.index, Duration::from_millis(PROPOSE_TIMEOUT_MS)).await,
            None => Ok(self.view()),
        }
    }

    /// Whether this node is the Raft leader now (the broker runs its controller duties —
    /// heartbeat deadlines, fencing — only while this holds).
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.config.node_id)
    }

    /// Waits until this node knows a leader (for readiness checks); returns its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId, MetaError> {
        let mut metrics = self.raft.metrics();
        let waiting = async {
            metrics.wait_for(|m| m.current_leader.is_some()).await.map(|m| m.current_leader.expect("waited for it"))
        };
        let result = tokio::time::timeout(timeout, waiting).await;
        match result {
            Ok(Ok(leader)) => Ok(leader),
            Ok(Err(_)) => Err(MetaError::Stopped("Raft metrics closed".to_string())),
            Err(_) => Err(MetaError::NoLeader),
        }
    }

    /// The leader this node knows of.
    pub fn current_leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Whether this node can serve metadata: it knows a leader and, when it is the leader
    /// itself, a quorum acknowledged it within the longest election timeout (openraft's
    /// `millis_since_quorum_ack`). An isolated leader keeps believing it leads — openraft does
    /// not step down without a quorum — but it can commit nothing, so it must not report
    /// itself ready. A single voter is its own quorum.
    pub fn has_quorum(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        match metrics.current_leader {
            None => false,
            Some(leader) if leader == self.config.node_id => {
                metrics.membership_config.membership().voter_ids().count() <= 1
                    || metrics.millis_since_quorum_ack.is_some_and(|ms| ms <= self.config.election_timeout_max_ms)
            }
            Some(_) => true,
        }
    }

    /// Why this node's Raft log cannot write now, if it cannot: waiting for disk space (it
    /// resumes by itself when there is space; see `log_store`) or poisoned by an I/O failure
    /// (restart the node). Readiness checks report it.
    pub fn storage_problem(&self) -> Option<String> {
        self.store_health.write_refusal()
    }

    /// openraft's metrics (state, term, leader, log indexes, membership, snapshot).
    pub fn metrics(&self) -> watch::Receiver<RaftMetrics> {
        self.raft.metrics()
    }

    /// Adds `node_id` at Raft address `addr` as a learner and waits until it has caught up.
    /// Runs on the leader; a follower forwards it there.
    pub async fn add_learner(&self, node_id: NodeId, addr: String) -> Result<(), MetaError> {
        self.change_membership(MembershipChange::AddLearner { node_id, addr }).await
    }

    /// Makes `node_id` a voter: adds it as a learner first if `addr` is given, waits for it to
    /// catch up, then changes the membership. Runs on the leader; a follower forwards it.
    pub async fn add_voter(&self, node_id: NodeId, addr: Option<String>) -> Result<(), MetaError> {
        self.change_membership(MembershipChange::AddVoter { node_id, addr }).await
    }

    /// Makes voter `node_id` a learner: it keeps receiving the log (and its broker keeps
    /// serving) without a vote. Runs on the leader; a follower forwards it.
    pub async fn remove_voter(&self, node_id: NodeId) -> Result<(), MetaError> {
        self.change_membership(MembershipChange::RemoveVoter { node_id }).await
    }

    /// Removes voter or learner `node_id` from the group (it stops receiving the log). Runs on
    /// the leader; a follower forwards it.
    pub async fn remove_node(&self, node_id: NodeId) -> Result<(), MetaError> {
        self.change_membership(MembershipChange::RemoveNode { node_id }).await
    }

    /// Runs a membership change on the leader, forwarding it there if this node is not it.
    /// Not retried automatically: a change interrupted by a leader change may or may not have
    /// happened; read [`MetaNode::metrics`] and call again.
    pub async fn change_membership(&self, change: MembershipChange) -> Result<(), MetaError> {
        let failure = match membership::change_local(&self.raft, change.clone()).await {
            Ok(()) => return Ok(()),
            Err(MembershipFailure::NotLeader { leader: Some(leader), leader_addr: Some(addr) })
                if leader != self.config.node_id =>
            {
                let mut client = self.peer_client(leader, addr);
                let timeout = Duration::from_millis(MEMBERSHIP_CHANGE_TIMEOUT_MS);
                match client.call(&RpcRequest::ChangeMembership(change), timeout).await {
                    Ok(RpcResponse::ChangeMembership(Ok(()))) => return Ok(()),
                    Ok(RpcResponse::ChangeMembership(Err(failure))) => failure,
                    Ok(other) => return Err(MetaError::Forward { leader, reason: format!("unexpected {other:?}") }),
                    Err(error) => return Err(MetaError::Forward { leader, reason: error.to_string() }),
                }
            }
            Err(failure) => failure,
        };
        Err(match failure {
            MembershipFailure::NotLeader { leader: Some(leader), .. } => MetaError::NotLeader { leader: Some(leader) },
            MembershipFailure::NotLeader { leader: None, .. } => MetaError::NoLeader,
            MembershipFailure::Refused(reason) => MetaError::Membership(reason),
            MembershipFailure::Stopped(reason) => MetaError::Stopped(reason),
        })
    }

    /// The switch that isolates this node from its peers (tests, drills).
    pub fn network_switch(&self) -> NetworkSwitch {
        self.switch.clone()
    }

    /// The underlying openraft handle, for operations this API does not cover.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Stops the node: Raft, the RPC server and its connections, and the log writer (after
    /// its last fsync). The data directory can then be opened again. Calls after the first
    /// only report that Raft is stopped.
    pub async fn shutdown(&self) -> Result<(), MetaError> {
        let raft_result = self.raft.shutdown().await;
        let _ = self.shutdown_sender.send(true);
        let server = self.server.lock().expect("server handle lock").take();
        if let Some(server) = server {
            let _ = server.await;
        }
        self.batcher_task.abort();
        if let Some(controller) = &self.controller_task {
            controller.abort();
        }
        if !self.writer.wait(Duration::from_millis(SHUTDOWN_WRITER_WAIT_MS)).await {
            tracing::warn!(node_id = self.config.node_id, "log writer did not stop in time");
        }
        tracing::info!(node_id = self.config.node_id, "metadata node stopped");
        raft_result.map_err(|e| MetaError::Stopped(e.to_string()))
    }
}

/// A join target in log lines and errors: its id when known, else its address alone.
fn describe_member(target: NodeId, addr: &str) -> String {
    if target == ANY_NODE {
        format!("member at {addr}")
    } else {
        format!("node {target} at {addr}")
    }
}

/// The cluster id kept in [`CLUSTER_ID_FILE`] under `data_dir`, if there is one.
fn read_cluster_id(data_dir: &std::path::Path) -> Result<Option<String>, MetaError> {
    let path = data_dir.join(CLUSTER_ID_FILE);
    let Some(bytes) = durable::read_bounded(&path, CLUSTER_ID_BYTES_MAX)? else { return Ok(None) };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| MetaError::Config(format!("{} is not UTF-8: remove it and start with --voters", path.display())))
}

fn finish(reply: ProposeReply) -> Result<Proposed, MetaError> {
    match reply.result {
        Ok(outcome) => Ok(Proposed { log_index: reply.log_index, outcome }),
        Err(error) => Err(MetaError::Rejected(error)),
    }
}
