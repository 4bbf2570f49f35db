//! What every request handler shares: this broker's identity, the metadata node, the
//! partitions it hosts, the topic defaults, and its block of producer ids.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_meta::limits::PROPOSE_TIMEOUT_MS;
use sluice_meta::{BrokerId, Command, CommandOutcome, MetaError, MetaNode, MetadataView, Proposed};

use crate::coordinator::{CoordinatorConfig, GroupCoordinator, OFFSETS_TOPIC};
use crate::partition::PartitionManager;
use crate::replication::throttle::ReplicationThrottle;
use crate::replication::{ReplicaFetchers, ReplicationConfig};

/// Broker-wide defaults for topics created without explicit values (Kafka's broker configs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDefaults {
    /// `num.partitions`: partitions of an auto-created topic or a CreateTopics request with
    /// `num_partitions = -1` (Kafka's default 1).
    pub partitions: u32,
    /// `default.replication.factor` (Kafka's default 1).
    pub replication_factor: u16,
    /// `auto.create.topics.enable`: Metadata requests for an unknown topic create it (Kafka's
    /// default true), unless the client asks not to (`allow_auto_topic_creation`, v4+).
    pub auto_create_topics: bool,
    /// `min.insync.replicas` of topics that do not set their own (Kafka's default 1).
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable` of topics that do not set their own (Kafka's default
    /// false); applied by the controller while this node is the metadata leader.
    pub unclean_leader_election: bool,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        TopicDefaults {
            partitions: 1,
            replication_factor: 1,
            auto_create_topics: true,
            min_insync_replicas: 1,
            unclean_leader_election: false,
        }
    }
}

/// Whether `command` changes a topic as an operator would (create, delete, add partitions,
/// alter configs): such changes are logged, once, by the broker that proposed them.
fn is_topic_change(command: &Command) -> bool {
    matches!(
        command,
        Command::CreateTopic { .. }
            | Command::DeleteTopic { .. }
            | Command::CreatePartitions { .. }
            | Command::AlterTopicConfigs { .. }
    )
}

/// One info line for a committed topic change.
fn log_topic_change(command: &Command, outcome: &CommandOutcome) {
    match (command, outcome) {
        (
            Command::CreateTopic { name, replication_factor, configs, .. },
            CommandOutcome::TopicCreated { topic_id, partitions },
        ) => tracing::info!(
            topic = %name,
            %topic_id,
            partitions = partitions.len(),
            replication_factor,
            ?configs,
            "created topic"
        ),
        (Command::DeleteTopic { name }, CommandOutcome::TopicDeleted { topic_id }) => {
            tracing::info!(topic = %name, %topic_id, "deleted topic")
        }
        (Command::CreatePartitions { name, partition_count }, CommandOutcome::PartitionsCreated { partitions, .. }) => {
            tracing::info!(topic = %name, added = partitions.len(), partition_count, "added partitions")
        }
        (Command::AlterTopicConfigs { name, set, delete }, CommandOutcome::TopicConfigsAltered { .. }) => {
            tracing::info!(topic = %name, ?set, ?delete, "altered topic configs")
        }
        _ => {}
    }
}

/// The producer ids this broker may hand out: `next .. end` of a block the metadata gave it.
#[derive(Debug, Default)]
struct ProducerIdBlock {
    next: i64,
    end: i64,
}

/// The state shared by all handlers of one broker.
#[derive(Debug)]
pub struct Broker {
    /// This broker's id.
    pub node_id: BrokerId,
    /// Cluster id reported to clients.
    pub cluster_id: String,
    /// The metadata Raft node.
    pub meta: Arc<MetaNode>,
    /// The partition replicas hosted here.
    pub partitions: Arc<PartitionManager>,
    /// Topic defaults.
    pub defaults: TopicDefaults,
    /// Replication settings (DescribeConfigs reports them).
    pub replication: ReplicationConfig,
    /// Prometheus metrics (`/metrics` on the admin listener).
    pub metrics: crate::metrics::Metrics,
    /// Epoch of this broker's registration (`-1` until registered).
    broker_epoch: AtomicI64,
    producer_ids: tokio::sync::Mutex<ProducerIdBlock>,
    /// The consumer-group coordinator (the `__consumer_offsets` partitions led here).
    pub groups: GroupCoordinator,
    /// The last consumer lag refresh and each group's recent lag (the web console's).
    pub lag_history: crate::coordinator::lag_history::LagHistory,
    /// Bytes of fetch responses being read or written, broker-wide (see
    /// [`FETCH_MEMORY_BYTES_MAX`](crate::handlers::fetch::FETCH_MEMORY_BYTES_MAX)).
    pub fetch_memory: Arc<tokio::sync::Semaphore>,
    /// The follower side of replication: one fetcher per leader broker.
    pub fetchers: ReplicaFetchers,
    /// The replication throttle, shared with the fetchers (`crate::replication::throttle`).
    pub throttle: Arc<ReplicationThrottle>,
    /// Woken when a follower's fetch shows that an ISR should change (see
    /// [`crate::replication::isr`]).
    pub isr_changes: tokio::sync::Notify,
    /// Woken when a read finds a damaged batch in a partition's log (see
    /// [`crate::replication::repair`]).
    pub storage_repairs: tokio::sync::Notify,
    /// Client-quota rates (`crate::quota`); the dispatcher records produce and fetch bytes here.
    pub quotas: crate::quota::QuotaManager,
}

impl Broker {
    /// A broker context; [`Broker::set_broker_epoch`] once registered.
    pub fn new(
        node_id: BrokerId,
        cluster_id: String,
        meta: Arc<MetaNode>,
        partitions: Arc<PartitionManager>,
        defaults: TopicDefaults,
        coordinator: CoordinatorConfig,
        replication: ReplicationConfig,
    ) -> Broker {
        let fetch_memory_bytes = crate::handlers::fetch::FETCH_MEMORY_BYTES_MAX;
        let fetch_memory = Arc::new(tokio::sync::Semaphore::new(fetch_memory_bytes));
        let throttled_bytes = crate::replication::throttle::ThrottledBytes::default();
        let throttle = Arc::new(ReplicationThrottle::new(node_id, throttled_bytes.clone()));
        let metrics = crate::metrics::Metrics::for_partitions(
            partitions.isr_changes.clone(),
            partitions.log_syncs.clone(),
            throttled_bytes,
        );
        metrics.watch_budget("fetch", Arc::clone(&fetch_memory), fetch_memory_bytes);
        meta.observe_apply(metrics.meta_apply_observer());
        Broker {
            fetchers: ReplicaFetchers::new(node_id, replication.clone(), Arc::clone(&throttle)),
            throttle,
            replication,
            metrics,
            isr_changes: tokio::sync::Notify::new(),
            storage_repairs: tokio::sync::Notify::new(),
            quotas: crate::quota::QuotaManager::new(),
            groups: GroupCoordinator::new(node_id, coordinator),
            lag_history: Default::default(),
            node_id,
            cluster_id,
            meta,
            partitions,
            defaults,
            broker_epoch: AtomicI64::new(-1),
            producer_ids: tokio::sync::Mutex::new(ProducerIdBlock::default()),
            fetch_memory,
        }
    }

    /// Records the epoch this broker's registration got.
    pub fn set_broker_epoch(&self, epoch: i64) {
        self.broker_epoch.store(epoch, Ordering::Release);
    }

    /// The epoch of this broker's registration (`-1` before it is applied).
    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(Ordering::Acquire)
    }

    /// Whether the registration was applied.
    pub fn is_registered(&self) -> bool {
        self.broker_epoch.load(Ordering::Acquire) >= 0
    }

    /// The latest applied metadata view on this node.
    pub fn view(&self) -> Arc<MetadataView> {
        Arc::clone(&self.meta.view().view)
    }

    /// Proposes `command`, waits until this node has applied it, and brings the local
    /// partitions in line, so a client answered after this sees the change here.
    pub async fn propose_and_apply(&self, command: Command) -> Result<Proposed, MetaError> {
        let topic_change = is_topic_change(&command).then(|| command.clone());
        let proposed = self.meta.propose(command).await?;
        if let Some(command) = &topic_change {
            log_topic_change(command, &proposed.outcome);
        }
        let applied = self.meta.wait_applied(proposed.log_index, Duration::from_millis(PROPOSE_TIMEOUT_MS)).await?;
        self.apply_view(&applied.view).await;
        Ok(proposed)
    }

    /// Brings this broker in line with `view`: the partitions hosted (opened, closed, their
    /// leadership), the group coordinator's shards, and the replica fetchers.
    pub async fn apply_view(&self, view: &MetadataView) {
        self.partitions.reconcile(view).await;
        self.groups.sync(view, &self.partitions).await;
        self.throttle.update(view);
        self.fetchers.sync(view, &self.partitions);
    }

    /// Creates `__consumer_offsets` if it does not exist yet (Kafka creates it on the first
    /// FindCoordinator), with the coordinator's partition count and a replication factor of at
    /// most the live brokers. Another broker creating it at the same time is fine.
    pub async fn ensure_offsets_topic(&self) -> Result<(), MetaError> {
        let view = self.view();
        if view.topics.contains_key(OFFSETS_TOPIC) {
            return Ok(());
        }
        let config = self.groups.config();
        let live = u16::try_from(view.live_brokers().len()).unwrap_or(u16::MAX).max(1);
        let replication_factor = config.offsets_topic_replication_factor.min(live);
        let command = Command::CreateTopic {
            name: OFFSETS_TOPIC.to_string(),
            topic_id: uuid::Uuid::new_v4(),
            partition_count: config.offsets_topic_partitions,
            replication_factor,
            configs: config.offsets_topic_configs(replication_factor),
        };
        match self.propose_and_apply(command).await {
            Ok(_) => Ok(()), // logged as any created topic
            Err(MetaError::Rejected(sluice_meta::CommandError::TopicAlreadyExists { .. })) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// A fresh producer id, taking a new block from the metadata when this one is used up.
    pub async fn next_producer_id(&self) -> Result<i64, MetaError> {
        let mut block = self.producer_ids.lock().await;
        if block.next >= block.end {
            let broker_epoch = self.broker_epoch.load(Ordering::Acquire);
            let proposed =
                self.meta.propose(Command::AllocateProducerIds { broker_id: self.node_id, broker_epoch }).await?;
            match proposed.outcome {
                CommandOutcome::ProducerIdsAllocated { first_producer_id, count } => {
                    block.next = first_producer_id;
                    block.end = first_producer_id + i64::from(count);
                }
                other => return Err(MetaError::Stopped(format!("unexpected outcome {other:?}"))),
            }
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}
