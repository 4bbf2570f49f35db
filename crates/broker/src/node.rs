//! One broker process: binds its listeners, starts the metadata node, registers, opens its
//! partitions, serves Kafka clients and the admin page, and shuts all of it down in order.
//!
//! Start order, and why:
//! 0. Lock the data directory (`<data>/.lock`, see [`crate::data_dir`]) before touching
//!    anything in it: a second broker on the same directory is refused with one line naming
//!    the holder, and never reaches its files.
//! 1. Bind the Kafka, Raft and admin listeners first, so port 0 works (tests) and the default
//!    voter list can name the Raft address actually bound.
//! 2. Serve the admin page (`/health` answers 200 from here on, `/ready` 503 until the
//!    partitions of step 3 are open) and
//!    start the metadata node (`<data>/meta`).
//! 3. Register this broker (retrying until the group has a leader) and wait until the
//!    registration is applied here. The view is then current: everything committed before the
//!    registration is in it. Only now may partition directories the view does not know be
//!    deleted (topics deleted while the broker was down), and the partitions be opened.
//!    From registration on, heartbeat the metadata leader every
//!    `broker.heartbeat.interval.ms`, or be fenced after `broker.session.timeout.ms`.
//! 4. Serve Kafka clients; keep partitions, group shards and replica fetchers in step with every
//!    applied view; propose ISR changes for partitions led here; run maintenance (retention,
//!    compaction, due flushes, checkpoints) on a timer; retry partitions that failed to open.
//!    `/ready` answers 200 while every assigned partition is open and writable.
//!
//! Shutdown (SIGTERM): controlled shutdown first, as Kafka's — stop heartbeating and ask the
//! controller to fence this broker, which moves its leaderships to other ISR members, so
//! clients get retriable NOT_LEADER_OR_FOLLOWER and find the new leaders while this broker
//! still answers. Then stop accepting clients and drain connections, stop the fetchers and
//! background tasks, close every log cleanly (flush and clean-shutdown marker), stop the
//! metadata node.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_meta::{parse_join, parse_voters, BrokerId, Command, CommandOutcome, InternalTls, MetaConfig, MetaNode};
use tokio::net::TcpListener;
use tokio::sync::watch;
use uuid::Uuid;

use crate::admin_http::{self, Readiness};
use crate::broker::{Broker, TopicDefaults};
use crate::config::BrokerConfig;
use crate::coordinator::CoordinatorConfig;
use crate::data_dir::DataDirLock;
use crate::dispatch::Dispatcher;
use crate::error::BrokerError;
use crate::partition::{BrokerTopicDefaults, PartitionManager};
use crate::replication::ReplicationConfig;
use crate::security::listener::{resolve_listeners, ListenerSpec, DEFAULT_LISTENER_NAME};
use crate::security::sasl::SaslConfig;
use crate::security::session::{ListenerInfo, Principal};
use crate::security::tls::{ClientAuth, TlsSettings, TlsSource};
use crate::security::SecurityProtocol;
use crate::server::Server;

/// Default Raft listener port.
pub const RAFT_PORT_DEFAULT: u16 = 9093;
/// Default admin HTTP port.
pub const ADMIN_PORT_DEFAULT: u16 = 9644;

/// How long the broker keeps trying to register before giving up, in milliseconds. A cluster
/// whose voters start one by one needs a quorum first; two minutes covers a slow rollout.
pub const REGISTRATION_TIMEOUT_MS: u64 = 120_000;

/// Pause between registration attempts, in milliseconds.
pub const REGISTRATION_RETRY_MS: u64 = 200;

/// Interval of the flush timer, in milliseconds: logs with `flush.ms` are synced within this
/// much after their interval passes, even when idle.
pub const FLUSH_CHECK_INTERVAL_MS: u64 = 1_000;

/// Interval between retention and compaction passes, in milliseconds (Kafka's
/// `log.retention.check.interval.ms` is 5 minutes; a shorter one frees disk sooner at the cost
/// of a directory scan per partition).
pub const RETENTION_CHECK_INTERVAL_MS: u64 = 60_000;

/// Interval between high-watermark checkpoints, in milliseconds (Kafka's
/// `replica.high.watermark.checkpoint.interval.ms`).
pub const CHECKPOINT_INTERVAL_MS: u64 = 5_000;

/// Longest a controlled shutdown waits for the controller to move this broker's leaderships,
/// in milliseconds (Kafka retries for `controlled.shutdown.max.retries` × backoff). After it
/// the broker stops anyway; the controller fences it once its session times out.
pub const CONTROLLED_SHUTDOWN_TIMEOUT_MS: u64 = 5_000;

/// Everything a broker process needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Broker id and Raft node id.
    pub node_id: BrokerId,
    /// Data directory: `meta/` for the Raft group, `logs/` for partitions.
    pub data_dir: PathBuf,
    /// Kafka listener and its limits.
    pub kafka: BrokerConfig,
    /// `host:port` clients are told to connect to; defaults to the bound Kafka address.
    pub advertise: Option<String>,
    /// `host:port` other brokers fetch from (the Kafka listener as they reach it); defaults to
    /// the advertised address. Differs when clients and brokers see the broker under different
    /// addresses (e.g. clients outside a container network, brokers inside it).
    pub replication_advertise: Option<String>,
    /// `--inter-broker-listener-name`: the listener other brokers dial this one at (its
    /// advertised endpoint becomes the replication address) and, when it is an SSL one, TLS
    /// with this broker's certificate when dialing theirs. `None`: the default listener.
    pub inter_broker_listener: Option<String>,
    /// Rack of this broker (`--rack`), carried in its registration: placement and KIP-392
    /// fetch-from-follower use it.
    pub rack: Option<String>,
    /// Raft listener address.
    pub raft_listen: SocketAddr,
    /// `host:port` the other metadata nodes dial to reach this node's Raft listener, for a
    /// node that is not in `voters` (a voter's address is its `voters` entry); defaults to the
    /// bound Raft address.
    pub raft_advertise: Option<String>,
    /// `--voters` list; defaults to this node alone at its bound Raft address unless `join` is
    /// given. A node not in the list joins the group as a learner through the listed voters
    /// (and the `join` members) on its first start.
    pub voters: Option<String>,
    /// `--join` list: Raft addresses of running members (voters or learners) through which
    /// this node joins the group as a learner on its first start; no `voters` needed then.
    pub join: Option<String>,
    /// Admin HTTP listener address.
    pub admin_listen: SocketAddr,
    /// Topic defaults.
    pub defaults: TopicDefaults,
    /// See [`RETENTION_CHECK_INTERVAL_MS`].
    pub retention_check_interval_ms: u64,
    /// Consumer-group coordinator settings (`__consumer_offsets`, group limits).
    pub coordinator: CoordinatorConfig,
    /// Replication settings (lag time, follower fetch wait and backoff).
    pub replication: ReplicationConfig,
    /// Kafka's `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: u64,
    /// Kafka's `broker.session.timeout.ms`, enforced while this node is the metadata leader.
    pub broker_session_timeout_ms: u64,
    /// Kafka's `auto.leader.rebalance.enable`: while this node is the metadata leader, it gives
    /// leaderships back to preferred replicas that are in sync again.
    pub auto_leader_rebalance: bool,
    /// Requests slower than this are logged, in milliseconds; 0 = off (see
    /// [`crate::config::SLOW_REQUEST_MS_DEFAULT`]).
    pub slow_request_ms: u64,
    /// Named listeners beside the default one, as Kafka's three settings give them
    /// (`--listeners`, `--advertised-listeners`, `--listener-security-protocol-map`); resolved
    /// and checked at start.
    pub listeners: ListenerFlags,
    /// Certificate, key and CA files of the TLS listeners (`--ssl-*`).
    pub tls: Option<TlsSettings>,
    /// `--internal-tls`: mutual TLS on the Raft port with the `tls` files (certificate, key
    /// and CA all required).
    pub internal_tls: bool,
    /// `--internal-tls-allowed-principals`: with `internal_tls`, the only certificate subjects
    /// accepted on the Raft port; empty: any certificate of the CA.
    pub internal_tls_allowed_principals: Vec<Principal>,
    /// SASL mechanisms and session lifetime on SASL listeners.
    pub sasl: SaslConfig,
    /// Whether requests are checked against ACLs, and who is a super user.
    pub authorizer: crate::security::authorizer::AuthorizerConfig,
}

/// The three listener settings as given (each a comma-separated list; empty: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerFlags {
    /// `NAME://host:port,...`
    pub listeners: String,
    /// `NAME://host:port,...`
    pub advertised: String,
    /// `NAME:PROTOCOL,...`
    pub protocol_map: String,
}

impl NodeConfig {
    /// Defaults for `node_id` with data in `data_dir` (the flags' defaults).
    pub fn new(node_id: BrokerId, data_dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            node_id,
            data_dir: data_dir.into(),
            kafka: BrokerConfig::default(),
            advertise: None,
            replication_advertise: None,
            inter_broker_listener: None,
            rack: None,
            raft_listen: SocketAddr::from(([127, 0, 0, 1], RAFT_PORT_DEFAULT)),
            raft_advertise: None,
            voters: None,
            join: None,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], ADMIN_PORT_DEFAULT)),
            defaults: TopicDefaults::default(),
            retention_check_interval_ms: RETENTION_CHECK_INTERVAL_MS,
            coordinator: CoordinatorConfig::default(),
            replication: ReplicationConfig::default(),
            broker_heartbeat_interval_ms: sluice_meta::liveness::BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT,
            broker_session_timeout_ms: sluice_meta::liveness::BROKER_SESSION_TIMEOUT_MS_DEFAULT,
            auto_leader_rebalance: true,
            slow_request_ms: crate::config::SLOW_REQUEST_MS_DEFAULT,
            listeners: ListenerFlags::default(),
            tls: None,
            internal_tls: false,
            internal_tls_allowed_principals: Vec::new(),
            sasl: SaslConfig::default(),
            authorizer: crate::security::authorizer::AuthorizerConfig::default(),
        }
    }

    /// The same, with every listener on an ephemeral port of 127.0.0.1 (tests), and the group
    /// settings tests want: no initial rebalance delay, sessions down to 100 ms, and five
    /// `__consumer_offsets` partitions (so a test does not create fifty).
    pub fn ephemeral(node_id: BrokerId, data_dir: impl Into<PathBuf>) -> NodeConfig {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = NodeConfig::new(node_id, data_dir);
        config.kafka.listen_address = any;
        config.raft_listen = any;
        config.admin_listen = any;
        config.coordinator.offsets_topic_partitions = 5;
        config.coordinator.shard.group.initial_rebalance_delay_ms = 0;
        config.coordinator.shard.group.session_timeout_min_ms = 100;
        config
    }
}

/// A started broker, not yet serving Kafka clients.
pub struct Node {
    config: NodeConfig,
    broker: Arc<Broker>,
    meta: Arc<MetaNode>,
    kafka: Server,
    /// The named listeners' servers (`--listeners`), with the names they advertise.
    extra_listeners: Vec<(String, Server)>,
    /// Re-reads the TLS files when they change (while the node runs).
    _tls_watch: Vec<AbortOnDrop>,
    admin_addr: SocketAddr,
    /// Stops the admin listener (dropping it does too, if `start` fails half-way).
    admin_stop: watch::Sender<bool>,
    admin_task: tokio::task::JoinHandle<()>,
    /// Heartbeats to the metadata leader, from registration until shutdown.
    heartbeat_task: AbortOnDrop,
    /// Held until the node has stopped; see [`crate::data_dir`].
    data_dir_lock: DataDirLock,
}

/// A background task that ends when its handle is dropped (a node dropped without serving
/// must not keep heartbeating).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("node_id", &self.config.node_id).field("kafka", &self.kafka_addr()).finish()
    }
}

/// The addresses a started node listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeAddresses {
    /// Kafka listener.
    pub kafka: SocketAddr,
    /// Raft listener.
    pub raft: SocketAddr,
    /// Admin HTTP listener.
    pub admin: SocketAddr,
}

struct ReadyFlag {
    broker: watch::Sender<Option<Arc<Broker>>>,
    /// Set once `start` has opened the assigned partitions and built the Kafka server.
    started: std::sync::atomic::AtomicBool,
}

impl Readiness for ReadyFlag {
    fn broker(&self) -> Option<Arc<Broker>> {
        self.broker.borrow().clone()
    }

    fn metrics(&self) -> Option<String> {
        let broker = self.broker.borrow().clone()?;
        let view = broker.view();
        Some(broker.metrics.render(&broker.partitions, &broker.meta, &view, broker.node_id))
    }

    fn unready_reasons(&self) -> Vec<String> {
        let Some(broker) = self.broker.borrow().clone() else {
            return vec!["metadata: starting".to_string()];
        };
        let mut reasons = Vec::new();
        if !self.started.load(std::sync::atomic::Ordering::Acquire) {
            reasons.push("starting: registering and opening the assigned partitions".to_string());
        }
        if !broker.is_registered() {
            reasons.push("metadata: this broker is not registered yet".to_string());
        }
        if !broker.meta.has_quorum() {
            reasons.push("metadata: no Raft leader with a quorum known".to_string());
        }
        if let Some(problem) = broker.meta.storage_problem() {
            reasons.push(format!("metadata: {problem}"));
        }
        reasons.extend(broker.partitions.unready_reasons());
        reasons
    }
}

/// Starts and serves a broker until `shutdown` completes: what `main` calls.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<(), BrokerError> {
    let node = Node::start(config).await?;
    node.serve(shutdown).await
}

impl Node {
    /// Binds the listeners, starts the metadata node, registers, opens the partitions.
    pub async fn start(config: NodeConfig) -> Result<Node, BrokerError> {
        // Before anything reads or writes the data directory: one process per directory.
        let data_dir_lock = DataDirLock::acquire(&config.data_dir, config.node_id)?;
        let bind = |address: SocketAddr| async move {
            TcpListener::bind(address).await.map_err(|source| BrokerError::Bind { address, source })
        };
        let kafka_listener = bind(config.kafka.listen_address).await?;
        let invalid = |reason: String| BrokerError::InvalidConfig { reason };
        let listener_specs = resolve_listeners(
            &config.listeners.listeners,
            &config.listeners.advertised,
            &config.listeners.protocol_map,
        )
        .map_err(invalid)?;
        // One TLS configuration per protocol: client certificates (`--ssl-client-auth`) apply
        // to SSL listeners only; SASL_SSL clients authenticate with SASL (as Kafka applies
        // `ssl.client.auth` to SASL_SSL listeners only when set for that listener by name).
        let mut tls_sources: Vec<(SecurityProtocol, Arc<TlsSource>)> = Vec::new();
        for protocol in [SecurityProtocol::Ssl, SecurityProtocol::SaslSsl] {
            if !listener_specs.iter().any(|spec| spec.protocol == protocol) {
                continue;
            }
            let Some(settings) = &config.tls else {
                return Err(invalid("an SSL or SASL_SSL listener needs --ssl-certificate and --ssl-key".into()));
            };
            let mut settings = settings.clone();
            if protocol == SecurityProtocol::SaslSsl {
                settings.client_auth = ClientAuth::None;
            }
            let source = TlsSource::open(settings).map_err(|error| invalid(error.to_string()))?;
            tls_sources.push((protocol, source));
        }
        let internal_tls = internal_tls(&config).map_err(invalid)?;
        let mut extra_bound = Vec::with_capacity(listener_specs.len());
        for spec in &listener_specs {
            extra_bound.push(bind(spec.address).await?);
        }
        let raft_listener = bind(config.raft_listen).await?;
        let admin = bind(config.admin_listen).await?;
        if config.advertise.is_none() && config.kafka.listen_address.ip().is_unspecified() {
            return Err(BrokerError::InvalidConfig {
                reason: format!(
                    "listening on {} needs --advertise: clients cannot connect to an unspecified address",
                    config.kafka.listen_address
                ),
            });
        }
        config.coordinator.validate().map_err(|reason| BrokerError::InvalidConfig { reason })?;
        validate_liveness(&config).map_err(|reason| BrokerError::InvalidConfig { reason })?;
        if let Some(voters) = &config.voters {
            let node_id = u64::try_from(config.node_id).unwrap_or(u64::MAX);
            let raft_addr = local_addr(&raft_listener, config.raft_listen);
            crate::voters::check_own_entry(node_id, &parse_voters(voters).map_err(BrokerError::Meta)?, raft_addr)
                .map_err(|reason| BrokerError::InvalidConfig { reason })?;
        }
        let admin_addr = local_addr(&admin, config.admin_listen);
        let kafka_addr = local_addr(&kafka_listener, config.kafka.listen_address);
        let raft_addr = local_addr(&raft_listener, config.raft_listen);
        // The banner: once the directory is this node's and the configuration holds, so a
        // broker refused at start prints its one line and nothing else.
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            node_id = config.node_id,
            kafka = %kafka_addr,
            raft = %raft_addr,
            admin = %admin_addr,
            data_dir = %config.data_dir.display(),
            "sluice-broker starting"
        );
        crate::partition::raise_open_file_limit();
        let ready = Arc::new(ReadyFlag { broker: watch::channel(None).0, started: false.into() });
        let (admin_stop, admin_stopped) = watch::channel(false);
        tracing::info!(address = %admin_addr, "admin listener ready");
        let admin_task = tokio::spawn(admin_http::serve(admin, ready.clone(), stopped(admin_stopped)));
        let node_id = u64::try_from(config.node_id)
            .map_err(|_| BrokerError::InvalidConfig { reason: format!("negative node id {}", config.node_id) })?;
        let join_addrs = config.join.as_deref().map(parse_join).transpose().map_err(BrokerError::Meta)?;
        // With --join alone there is no voter list: the membership comes from the log, and the
        // cluster id from the member joined through.
        let voters_text = match (&config.voters, &join_addrs) {
            (Some(voters), _) => Some(voters.clone()),
            (None, None) => Some(format!("{node_id}@{raft_addr}")),
            (None, Some(_)) => None,
        };
        let voters =
            voters_text.as_deref().map(parse_voters).transpose().map_err(BrokerError::Meta)?.unwrap_or_default();
        let joins = !voters.contains_key(&node_id);
        if joins && config.raft_advertise.is_none() && raft_addr.ip().is_unspecified() {
            return Err(BrokerError::InvalidConfig {
                reason: format!(
                    "node {node_id} is not in --voters, so it joins as a learner and needs --raft-advertise: \
                     the members cannot dial its Raft listener at {raft_addr}"
                ),
            });
        }
        let mut meta_config = MetaConfig::new(node_id, config.data_dir.join("meta"), raft_addr, voters);
        meta_config.cluster_id = voters_text.as_deref().map(cluster_id);
        if joins {
            meta_config.join = true;
            meta_config.join_addrs = join_addrs.unwrap_or_default();
            if let Some(addr) = &config.raft_advertise {
                meta_config.advertise_addr = addr.clone();
            }
        }
        meta_config.broker_session_timeout_ms = Some(config.broker_session_timeout_ms);
        meta_config.auto_leader_rebalance = config.auto_leader_rebalance;
        meta_config.unclean_leader_election = config.defaults.unclean_leader_election;
        meta_config.internal_tls = internal_tls;
        let meta =
            Arc::new(MetaNode::start_with_listener(meta_config, raft_listener).await.map_err(BrokerError::Meta)?);
        let Some(cluster_id) = meta.cluster_id() else {
            return Err(invalid(
                "the cluster id is unknown (the member joined through knew none, or this broker joined \
                 before it kept one on disk): start it with the cluster's --voters"
                    .to_string(),
            ));
        };
        let partitions = Arc::new(PartitionManager::new(
            config.node_id,
            config.data_dir.join("logs"),
            BrokerTopicDefaults {
                min_insync_replicas: config.defaults.min_insync_replicas,
                replica_lag_time_ms: config.replication.replica_lag_time_ms,
            },
        ));
        let mut replication = config.replication.clone();
        let inter_broker = inter_broker(&config, &listener_specs, &extra_bound).map_err(invalid)?;
        replication.tls = inter_broker.as_ref().and_then(|(_, tls)| tls.clone());
        let broker = Arc::new(Broker::new(
            config.node_id,
            cluster_id,
            Arc::clone(&meta),
            Arc::clone(&partitions),
            config.defaults.clone(),
            config.coordinator.clone(),
            replication,
        ));
        ready.broker.send_replace(Some(Arc::clone(&broker)));
        let advertise = config.advertise.clone().unwrap_or_else(|| kafka_addr.to_string());
        let replication_advertise = config
            .replication_advertise
            .clone()
            .or_else(|| inter_broker.map(|(address, _)| address))
            .unwrap_or_else(|| advertise.clone());
        let mut endpoints = std::collections::BTreeMap::from([(DEFAULT_LISTENER_NAME.to_string(), advertise.clone())]);
        for (spec, bound) in listener_specs.iter().zip(&extra_bound) {
            let address = spec.advertised.clone().unwrap_or_else(|| local_addr(bound, spec.address).to_string());
            endpoints.insert(spec.name.clone(), address);
        }
        register(&broker, &advertise, &replication_advertise, config.rack.clone(), endpoints).await?;
        let heartbeat_task =
            AbortOnDrop(tokio::spawn(heartbeat(Arc::clone(&broker), config.broker_heartbeat_interval_ms)));
        let view = broker.meta.view();
        let deleted = partitions.delete_orphans(&view.view).await.map_err(BrokerError::Partition)?;
        if deleted > 0 {
            tracing::warn!(deleted, "deleted partition directories of topics deleted while the broker was down");
        }
        broker.apply_view(&view.view).await;
        let dispatcher = Arc::new(
            Dispatcher::new(Arc::clone(&broker))
                .with_slow_request_ms(config.slow_request_ms)
                .with_sasl(config.sasl.clone())
                .with_authorizer(config.authorizer.clone()),
        );
        let kafka = Server::from_listener(kafka_listener, config.kafka.clone(), Arc::clone(&dispatcher))?;
        let mut extra_listeners = Vec::with_capacity(listener_specs.len());
        for (spec, bound) in listener_specs.into_iter().zip(extra_bound) {
            let info = ListenerInfo { name: spec.name.clone(), protocol: spec.protocol };
            let tls = tls_sources.iter().find(|(p, _)| *p == spec.protocol).map(|(_, source)| Arc::clone(source));
            let server = Server::from_listener(bound, config.kafka.clone(), Arc::clone(&dispatcher))?
                .with_security(info, tls)?;
            extra_listeners.push((spec.name, server));
        }
        let tls_watch: Vec<AbortOnDrop> =
            tls_sources.into_iter().map(|(_, source)| AbortOnDrop(tokio::spawn(source.watch()))).collect();
        let failed = partitions.failed_to_open().len();
        tracing::info!(open = partitions.all().len(), failed, "assigned partitions opened");
        ready.started.store(true, std::sync::atomic::Ordering::Release);
        Ok(Node {
            config,
            broker,
            meta,
            kafka,
            extra_listeners,
            _tls_watch: tls_watch,
            admin_addr,
            admin_stop,
            admin_task,
            heartbeat_task,
            data_dir_lock,
        })
    }

    /// The Kafka listener address.
    pub fn kafka_addr(&self) -> SocketAddr {
        self.kafka.local_addr()
    }

    /// The address of the named listener `name` (`--listeners`), if there is one.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.extra_listeners.iter().find(|(n, _)| n == name).map(|(_, server)| server.local_addr())
    }

    /// Every named listener (`--listeners`) and its bound address.
    pub fn listener_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.extra_listeners.iter().map(|(name, server)| (name.clone(), server.local_addr())).collect()
    }

    /// Every bound address.
    pub fn addresses(&self) -> NodeAddresses {
        NodeAddresses { kafka: self.kafka.local_addr(), raft: self.meta.local_addr(), admin: self.admin_addr }
    }

    /// The handlers' shared state (tests inspect partitions through it).
    pub fn broker(&self) -> Arc<Broker> {
        Arc::clone(&self.broker)
    }

    /// Serves until `shutdown` completes, then shuts down in order.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), BrokerError> {
        let (stop_sender, stop) = watch::channel(false);
        let reconciler = tokio::spawn(follow_metadata(Arc::clone(&self.broker), stopped(stop.clone())));
        let maintenance = tokio::spawn(maintain(
            Arc::clone(&self.broker.partitions),
            self.config.retention_check_interval_ms,
            stopped(stop.clone()),
        ));
        let isr = tokio::spawn(crate::replication::isr::run(Arc::clone(&self.broker), stopped(stop.clone())));
        let repair = tokio::spawn(crate::replication::repair::run(Arc::clone(&self.broker), stopped(stop.clone())));
        let lag = tokio::spawn(crate::coordinator::lag::run(Arc::clone(&self.broker), stopped(stop.clone())));
        let broker = Arc::clone(&self.broker);
        let heartbeat_task = self.heartbeat_task;
        // The named listeners stop with the default one.
        let (listeners_stop, listeners_stopped) = watch::channel(false);
        let extra: Vec<_> = self
            .extra_listeners
            .into_iter()
            .map(|(_, server)| tokio::spawn(server.serve(stopped(listeners_stopped.clone()))))
            .collect();
        let shutdown = async move {
            shutdown.await;
            drop(heartbeat_task);
            controlled_shutdown(&broker).await;
        };
        let served = self.kafka.serve(shutdown).await;
        let _ = listeners_stop.send(true);
        for server in extra {
            if let Ok(Err(error)) = server.await {
                tracing::warn!(%error, "listener stopped with an error");
            }
        }
        // Each step says what it waits for, so a slow shutdown shows where it is.
        tracing::info!("shutdown: stopping replica fetchers and background tasks (metadata, maintenance, ISR, admin)");
        let _ = stop_sender.send(true);
        let _ = self.admin_stop.send(true);
        self.broker.fetchers.stop_all();
        for task in [reconciler, maintenance, isr, repair, lag, self.admin_task] {
            if let Err(error) = task.await {
                tracing::error!(%error, "background task failed");
            }
        }
        tracing::info!("shutdown: unloading consumer groups");
        self.broker.groups.unload_all().await;
        tracing::info!(partitions = self.broker.partitions.all().len(), "shutdown: flushing and closing partitions");
        self.broker.partitions.close_all().await;
        tracing::info!("shutdown: stopping the metadata node");
        if let Err(error) = self.meta.shutdown().await {
            tracing::warn!(%error, "metadata node shutdown");
        }
        tracing::info!("broker stopped");
        // Only now may another process open the directory.
        drop(self.data_dir_lock);
        served
    }
}

/// Checks the relations between the liveness and replication timings.
fn validate_liveness(config: &NodeConfig) -> Result<(), String> {
    let heartbeat = config.broker_heartbeat_interval_ms;
    let session = config.broker_session_timeout_ms;
    let fetch_wait = i64::from(config.replication.fetch_wait_ms);
    if heartbeat == 0 || session < heartbeat.saturating_mul(2) {
        return Err(format!(
            "--broker-session-timeout-ms ({session}) must be at least twice --broker-heartbeat-interval-ms ({heartbeat}), which must be positive"
        ));
    }
    if fetch_wait <= 0 || fetch_wait.saturating_mul(2) > config.replication.replica_lag_time_ms {
        return Err(format!(
            "--replica-fetch-wait-max-ms ({fetch_wait}) must be positive and at most half --replica-lag-time-max-ms ({})",
            config.replication.replica_lag_time_ms
        ));
    }
    Ok(())
}

/// Completes when `stop` says so or its sender is gone.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// `--inter-broker-listener-name` resolved: the listener's advertised endpoint (what other
/// brokers dial) and the TLS settings this broker dials theirs with (an SSL listener); `None`
/// for the default listener. Kafka's `inter.broker.listener.name`, which must name the same
/// listener on every broker.
fn inter_broker(
    config: &NodeConfig,
    specs: &[ListenerSpec],
    bound: &[TcpListener],
) -> Result<Option<(String, Option<TlsSettings>)>, String> {
    let Some(name) = config.inter_broker_listener.as_deref().map(str::to_ascii_uppercase) else {
        return Ok(None);
    };
    if name == DEFAULT_LISTENER_NAME {
        return Ok(None);
    }
    let Some((spec, listener)) = specs.iter().zip(bound).find(|(spec, _)| spec.name == name) else {
        return Err(format!("--inter-broker-listener-name {name} is not one of --listeners"));
    };
    let address = spec.advertised.clone().unwrap_or_else(|| local_addr(listener, spec.address).to_string());
    let tls = match spec.protocol {
        SecurityProtocol::Plaintext => None,
        SecurityProtocol::Ssl => {
            let settings =
                config.tls.clone().ok_or("an SSL inter-broker listener needs --ssl-certificate and --ssl-key")?;
            if settings.ca.is_none() {
                return Err(
                    "an SSL inter-broker listener needs --ssl-ca: brokers check each other's certificates".into()
                );
            }
            Some(settings)
        }
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
            return Err(format!(
                "--inter-broker-listener-name {name}: brokers do not log in with SASL; \
                 use an SSL listener (brokers authenticate with their certificates) or a PLAINTEXT one"
            ))
        }
    };
    Ok(Some((address, tls)))
}

/// The Raft port's TLS setup (`--internal-tls`), or why it cannot be built.
fn internal_tls(config: &NodeConfig) -> Result<Option<InternalTls>, String> {
    if !config.internal_tls {
        if !config.internal_tls_allowed_principals.is_empty() {
            return Err("--internal-tls-allowed-principals needs --internal-tls".into());
        }
        return Ok(None);
    }
    let settings = config.tls.as_ref().filter(|settings| {
        !settings.certificate.as_os_str().is_empty() && !settings.key.as_os_str().is_empty() && settings.ca.is_some()
    });
    let Some(settings) = settings else {
        return Err("--internal-tls needs --ssl-certificate, --ssl-key and --ssl-ca".into());
    };
    crate::security::tls::load_internal(settings, &config.internal_tls_allowed_principals)
        .map(Some)
        .map_err(|error| format!("--internal-tls: {error}"))
}

fn local_addr(listener: &TcpListener, configured: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(configured)
}

/// A cluster id every node computes alike from the same `--voters` list (Kafka's is a random
/// UUID stored by the controller; the metadata state machine has no field for one yet).
fn cluster_id(voters: &str) -> String {
    let hash = sluice_proto::murmur2(voters.as_bytes()) as u32;
    let hash2 = sluice_proto::murmur2(format!("sluice:{voters}").as_bytes()) as u32;
    format!("sluice-{hash:08x}{hash2:08x}")
}

/// Registers this broker, retrying while the group has no leader, and waits until the
/// registration is applied on this node.
async fn register(
    broker: &Broker,
    kafka_addr: &str,
    replication_addr: &str,
    rack: Option<String>,
    listeners: std::collections::BTreeMap<String, String>,
) -> Result<(), BrokerError> {
    let incarnation_id = Uuid::new_v4();
    let deadline = Instant::now() + Duration::from_millis(REGISTRATION_TIMEOUT_MS);
    let command = Command::RegisterBrokerListeners {
        broker_id: broker.node_id,
        incarnation_id,
        kafka_addr: kafka_addr.to_string(),
        internal_addr: replication_addr.to_string(),
        rack,
        listeners,
    };
    loop {
        match broker.meta.propose(command.clone()).await {
            Ok(proposed) => {
                let applied = broker
                    .meta
                    .wait_applied(proposed.log_index, Duration::from_millis(REGISTRATION_TIMEOUT_MS))
                    .await
                    .map_err(BrokerError::Meta)?;
                let CommandOutcome::BrokerRegistered { broker_epoch } = proposed.outcome else {
                    return Err(BrokerError::Registration(format!("unexpected outcome {:?}", proposed.outcome)));
                };
                broker.set_broker_epoch(broker_epoch);
                tracing::info!(
                    broker_id = broker.node_id,
                    broker_epoch,
                    applied_index = applied.applied_index,
                    kafka_addr,
                    "broker registered"
                );
                return Ok(());
            }
            Err(error) if error.is_retriable() && Instant::now() < deadline => {
                tracing::info!(%error, "registration not possible yet; retrying");
                tokio::time::sleep(Duration::from_millis(REGISTRATION_RETRY_MS)).await;
            }
            Err(error) => return Err(BrokerError::Meta(error)),
        }
    }
}

/// Sends a heartbeat to the metadata leader every `interval_ms`, until aborted. A failed one
/// (no leader known, leader unreachable) is logged at debug and followed by the next: the
/// session timeout allows several to be lost.
async fn heartbeat(broker: Arc<Broker>, interval_ms: u64) {
    let interval = Duration::from_millis(interval_ms);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        match broker.meta.heartbeat(broker.node_id, broker.broker_epoch(), interval * 2).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("heartbeats reach the metadata leader again");
            }
            Ok(()) => {}
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "heartbeat to the metadata leader failed");
            }
            Err(error) => tracing::debug!(%error, "heartbeat failed"),
        }
    }
}

/// Kafka's controlled shutdown: asks the controller to fence this broker, which moves every
/// leadership it holds to another live ISR member in one metadata command, and applies the
/// result here so its partitions stop taking writes as leader. Skipped when no other broker is
/// live (nothing could take over). Bounded by [`CONTROLLED_SHUTDOWN_TIMEOUT_MS`].
async fn controlled_shutdown(broker: &Broker) {
    let view = broker.view();
    let others = view.live_brokers().into_iter().any(|id| id != broker.node_id);
    let leads = view.leader_counts().get(&broker.node_id).copied().unwrap_or(0);
    if !others {
        return;
    }
    tracing::info!(leaderships = leads, "controlled shutdown: moving leaderships to other brokers");
    let command = Command::FenceBroker { broker_id: broker.node_id, broker_epoch: broker.broker_epoch() };
    let timeout = Duration::from_millis(CONTROLLED_SHUTDOWN_TIMEOUT_MS);
    match tokio::time::timeout(timeout, broker.propose_and_apply(command)).await {
        Ok(Ok(_)) => tracing::info!("controlled shutdown: leaderships moved"),
        Ok(Err(error)) => tracing::warn!(%error, "controlled shutdown: the controller did not fence this broker"),
        Err(_) => tracing::warn!(timeout_ms = CONTROLLED_SHUTDOWN_TIMEOUT_MS, "controlled shutdown timed out"),
    }
}

/// Reconciles the partitions with every applied view until `stop`.
async fn follow_metadata(broker: Arc<Broker>, stop: impl Future<Output = ()>) {
    let mut views = broker.meta.watch_view();
    tokio::pin!(stop);
    loop {
        let view = views.borrow_and_update().clone();
        broker.apply_view(&view.view).await;
        // Partitions that failed to open are tried again when due, without a view change.
        let retry = broker.partitions.next_open_retry();
        tokio::select! {
            changed = views.changed() => if changed.is_err() { return },
            () = sleep_until_some(retry) => {}
            () = &mut stop => return,
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Runs due flushes every [`FLUSH_CHECK_INTERVAL_MS`], checkpoints every
/// [`CHECKPOINT_INTERVAL_MS`], retention and compaction every `retention_interval_ms`.
async fn maintain(partitions: Arc<PartitionManager>, retention_interval_ms: u64, stop: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(Duration::from_millis(FLUSH_CHECK_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Instant::now();
    let mut last_checkpoint = start;
    let mut last_retention = start;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => return,
        }
        let now = Instant::now();
        let checkpoint = now.duration_since(last_checkpoint) >= Duration::from_millis(CHECKPOINT_INTERVAL_MS);
        let retention = now.duration_since(last_retention) >= Duration::from_millis(retention_interval_ms);
        if checkpoint {
            last_checkpoint = now;
        }
        if retention {
            last_retention = now;
        }
        partitions.maintain_all(crate::partition::partition::Maintenance { retention, checkpoint }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_tls_needs_certificate_key_and_ca() {
        let mut config = NodeConfig::new(1, "/nonexistent");
        assert!(internal_tls(&config).unwrap().is_none());
        config.internal_tls_allowed_principals = vec![Principal::user("CN=b1")];
        assert!(internal_tls(&config).unwrap_err().contains("needs --internal-tls"));
        config.internal_tls = true;
        let missing = "--internal-tls needs --ssl-certificate, --ssl-key and --ssl-ca";
        assert_eq!(internal_tls(&config).unwrap_err(), missing);
        config.tls = Some(TlsSettings {
            certificate: "/nonexistent/node.crt".into(),
            key: "/nonexistent/node.key".into(),
            ca: None,
            client_auth: ClientAuth::None,
        });
        assert_eq!(internal_tls(&config).unwrap_err(), missing);
        config.tls.as_mut().unwrap().ca = Some("/nonexistent/ca.crt".into());
        let error = internal_tls(&config).unwrap_err();
        assert!(error.starts_with("--internal-tls: /nonexistent/node.crt"), "{error}");
    }
}
