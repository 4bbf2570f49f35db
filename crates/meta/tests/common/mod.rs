//! A test cluster of real metadata nodes on 127.0.0.1 ephemeral ports, each with its own data
//! directory, talking over real TCP. Nodes can be stopped, restarted on the same port and data
//! directory, and isolated with their network switch.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use openraft::ServerState;
use sluice_meta::AppliedView;
use sluice_meta::Command;
use sluice_meta::InternalTls;
use sluice_meta::MetaConfig;
use sluice_meta::MetaNode;
use sluice_meta::NodeId;
use tempfile::TempDir;
use tokio::net::TcpListener;
use uuid::Uuid;

/// Test timing: short enough that elections take well under a second.
pub const HEARTBEAT_INTERVAL_MS: u64 = 50;
pub const ELECTION_TIMEOUT_MIN_MS: u64 = 300;
pub const ELECTION_TIMEOUT_MAX_MS: u64 = 600;

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub struct Cluster {
    pub data: TempDir,
    pub addrs: BTreeMap<NodeId, SocketAddr>,
    pub voters: BTreeMap<NodeId, String>,
    pub nodes: BTreeMap<NodeId, Arc<MetaNode>>,
    /// Internal TLS per node (`MetaConfig::internal_tls`); a node not listed uses plain TCP.
    pub internal_tls: BTreeMap<NodeId, InternalTls>,
    tune: fn(&mut MetaConfig),
}

pub fn no_tuning(_: &mut MetaConfig) {}

impl Cluster {
    /// Starts `voter_count` voters (ids 1..=voter_count) with default test timing.
    pub async fn start(voter_count: u64) -> Cluster {
        Cluster::start_tuned(voter_count, no_tuning).await
    }

    /// Starts `voter_count` voters, applying `tune` to every node's configuration.
    pub async fn start_tuned(voter_count: u64, tune: fn(&mut MetaConfig)) -> Cluster {
        Cluster::start_with_tls(voter_count, tune, BTreeMap::new()).await
    }

    /// Starts `voter_count` voters, each with its entry of `internal_tls` (if any).
    pub async fn start_with_tls(
        voter_count: u64,
        tune: fn(&mut MetaConfig),
        internal_tls: BTreeMap<NodeId, InternalTls>,
    ) -> Cluster {
        init_tracing();
        let mut listeners = BTreeMap::new();
        for id in 1..=voter_count {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listeners.insert(id, listener);
        }
        let addrs: BTreeMap<NodeId, SocketAddr> =
            listeners.iter().map(|(id, l)| (*id, l.local_addr().unwrap())).collect();
        let voters = addrs.iter().map(|(id, a)| (*id, a.to_string())).collect();
        let mut cluster =
            Cluster { data: TempDir::new().unwrap(), addrs, voters, nodes: BTreeMap::new(), internal_tls, tune };
        // All at once, as a cluster's voters start: a voter with empty storage asks the others
        // whether the group exists before it creates it, and waits for those not answering.
        let starts = listeners.into_iter().map(|(id, listener)| {
            let config = cluster.config(id);
            async move { (id, MetaNode::start_with_listener(config, listener).await.unwrap()) }
        });
        for (id, node) in futures::future::join_all(starts).await {
            cluster.nodes.insert(id, Arc::new(node));
        }
        cluster
    }

    pub fn config(&self, id: NodeId) -> MetaConfig {
        let addr = self.addrs[&id];
        let mut config = MetaConfig::new(id, self.data.path().join(format!("node-{id}")), addr, self.voters.clone());
        config.heartbeat_interval_ms = HEARTBEAT_INTERVAL_MS;
        config.election_timeout_min_ms = ELECTION_TIMEOUT_MIN_MS;
        config.election_timeout_max_ms = ELECTION_TIMEOUT_MAX_MS;
        config.internal_tls = self.internal_tls.get(&id).cloned();
        (self.tune)(&mut config);
        config
    }

    pub fn node(&self, id: NodeId) -> Arc<MetaNode> {
        self.nodes.get(&id).unwrap_or_else(|| panic!("node {id} is not running")).clone()
    }

    /// Starts a node that is not an initial voter, on a fresh port.
    pub async fn start_learner(&mut self, id: NodeId) -> Arc<MetaNode> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.addrs.insert(id, listener.local_addr().unwrap());
        let node = Arc::new(MetaNode::start_with_listener(self.config(id), listener).await.unwrap());
        self.nodes.insert(id, node.clone());
        node
    }

    /// Starts a node that is not an initial voter with `join` set: it asks the voters to add it
    /// as a learner, and its start returns once it has been added.
    pub async fn start_joiner(&mut self, id: NodeId) -> Arc<MetaNode> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.addrs.insert(id, listener.local_addr().unwrap());
        let mut config = self.config(id);
        config.join = true;
        let node = Arc::new(MetaNode::start_with_listener(config, listener).await.unwrap());
        self.nodes.insert(id, node.clone());
        node
    }

    /// Stops node `id` (Raft, server, log writer); its data directory stays.
    pub async fn stop(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).expect("node running");
        node.shutdown().await.unwrap();
    }

    /// Restarts node `id` on its old port and data directory.
    pub async fn restart(&mut self, id: NodeId) -> Arc<MetaNode> {
        self.try_restart(id, false).await.unwrap()
    }

    /// Restarts node `id` on its old port and data directory (with `join` set if asked), and
    /// returns its start's result.
    pub async fn try_restart(&mut self, id: NodeId, join: bool) -> Result<Arc<MetaNode>, sluice_meta::MetaError> {
        let listener = self.rebind(id).await;
        let mut config = self.config(id);
        config.join = join;
        let node = Arc::new(MetaNode::start_with_listener(config, listener).await?);
        self.nodes.insert(id, node.clone());
        Ok(node)
    }

    /// Deletes node `id`'s data directory (a disk replaced by an empty one); it must be stopped.
    pub fn wipe(&self, id: NodeId) {
        assert!(!self.nodes.contains_key(&id), "node {id} is running");
        std::fs::remove_dir_all(self.config(id).data_dir).unwrap();
    }

    /// Binds node `id`'s old address again (its previous listener may linger a moment).
    pub async fn rebind(&self, id: NodeId) -> TcpListener {
        let addr = self.addrs[&id];
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(error) if Instant::now() < deadline => {
                    tracing::debug!(%error, "port still busy; retrying");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("rebinding {addr}: {error}"),
            }
        };
        listener
    }

    pub async fn stop_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
    }

    /// Waits until the running nodes in `among` agree on one leader that is one of them.
    pub async fn wait_leader(&self, among: &[NodeId], timeout: Duration) -> NodeId {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(leader) = self.agreed_leader(among) {
                return leader;
            }
            assert!(Instant::now() < deadline, "no agreed leader among {among:?} within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn agreed_leader(&self, among: &[NodeId]) -> Option<NodeId> {
        let mut seen = None;
        for id in among {
            let metrics = self.node(*id).metrics().borrow().clone();
            let leader = metrics.current_leader?;
            if seen.is_some_and(|s| s != leader) || !among.contains(&leader) {
                return None;
            }
            seen = Some(leader);
        }
        let leader = seen?;
        let state = self.node(leader).metrics().borrow().state;
        (state == ServerState::Leader).then_some(leader)
    }

    pub fn running(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Waits until every node in `ids` has applied `log_index`; returns their views.
    pub async fn wait_applied(&self, ids: &[NodeId], log_index: u64) -> Vec<AppliedView> {
        let mut views = Vec::new();
        for id in ids {
            views.push(self.node(*id).wait_applied(log_index, Duration::from_secs(10)).await.unwrap());
        }
        views
    }
}

/// Waits up to `timeout` until `node` sees itself with `role` in the membership it knows.
pub async fn wait_role(node: &MetaNode, role: sluice_meta::Role, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while node.role() != role {
        assert!(Instant::now() < deadline, "node {} has role {:?}, not {role:?}", node.node_id(), node.role());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn register(broker_id: i32) -> Command {
    Command::RegisterBroker {
        broker_id,
        incarnation_id: Uuid::from_u128(0xb000 + broker_id as u128),
        kafka_addr: format!("127.0.0.1:{}", 19000 + broker_id),
        internal_addr: format!("127.0.0.1:{}", 19100 + broker_id),
        rack: None,
    }
}

pub fn create_topic(name: &str, partition_count: u32, replication_factor: u16) -> Command {
    Command::CreateTopic {
        name: name.to_string(),
        topic_id: Uuid::new_v4(),
        partition_count,
        replication_factor,
        configs: BTreeMap::new(),
    }
}

/// Registers brokers 1..=count through `node`; returns the log index of the last one.
pub async fn register_brokers(node: &MetaNode, count: i32) -> u64 {
    let mut last = 0;
    for broker_id in 1..=count {
        last = node.propose(register(broker_id)).await.unwrap().log_index;
    }
    last
}
