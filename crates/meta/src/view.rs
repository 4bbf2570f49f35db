//! The metadata view: what the Raft group agrees on, as plain data.
//!
//! [`MetadataView`] is the state machine's content. It is changed only by
//! [`MetadataView::apply`](crate::commands) and read by the broker through
//! [`MetaNode::view`](crate::MetaNode::view) or a subscription. Ordered maps keep its
//! serialization (and therefore snapshots) deterministic.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::Serialize;
use uuid::Uuid;

use crate::topic_config::TopicConfig;

/// Kafka broker id (Kafka uses a signed 32-bit integer on the wire).
pub type BrokerId = i32;

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRecord {
    /// Broker id.
    pub broker_id: BrokerId,
    /// Random id chosen by the broker process at start; a new value means the broker restarted.
    pub incarnation_id: Uuid,
    /// Bumped on every registration with a new incarnation; commands about a broker carry the
    /// epoch they saw, so a command about a previous incarnation is rejected.
    pub broker_epoch: i64,
    /// `host:port` Kafka clients connect to.
    pub kafka_addr: String,
    /// `host:port` other brokers reach this broker's Kafka listener at: followers fetch from
    /// here (`--replication-advertise`; by default the same as `kafka_addr`).
    pub internal_addr: String,
    /// Rack, if configured (`--rack`): placement puts a partition's replicas on distinct racks,
    /// and consumers on this rack may fetch from this broker (KIP-392).
    pub rack: Option<String>,
    /// A fenced broker leads no partition and is not placed on by new topics.
    pub fenced: bool,
    /// Advertised `host:port` by listener name (`--listeners`, since format version 6): a
    /// client is told the brokers' endpoints on the listener it came in on. Empty for a
    /// broker registered by an older version, whose `kafka_addr` serves every listener.
    pub listeners: BTreeMap<String, String>,
}

impl BrokerRecord {
    /// The `host:port` clients on listener `listener` are told for this broker: its endpoint of
    /// that name; `kafka_addr` for a broker registered without named listeners (an older
    /// version); `None` if it has listeners but not this one (Kafka leaves it out).
    pub fn endpoint(&self, listener: &str) -> Option<&str> {
        if self.listeners.is_empty() {
            return Some(&self.kafka_addr);
        }
        self.listeners.get(listener).map(String::as_str)
    }
}

/// One partition's replicas and leadership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// Partition index within its topic.
    pub partition: u32,
    /// Assigned replicas; the first is the preferred leader.
    pub replicas: Vec<BrokerId>,
    /// In-sync replicas (a subset of `replicas`, never empty).
    pub isr: Vec<BrokerId>,
    /// Current leader; `None` when no in-sync replica is live (offline partition).
    pub leader: Option<BrokerId>,
    /// Bumped on every leader change (Kafka's leader epoch, KIP-101).
    pub leader_epoch: i32,
    /// Bumped on every change of leader or ISR; ISR proposals carry it for optimistic
    /// concurrency (Kafka's partition epoch).
    pub partition_epoch: i32,
}

/// An in-progress reassignment of one partition (Kafka's KIP-455). While it lasts the
/// partition's `replicas` are [`Reassignment::full_replicas`] (the target first, then the
/// replicas being removed), so the adding replicas are followers that fetch from the leader and
/// join the ISR like any other; once every target replica is in the ISR the state machine
/// completes it (`replicas := target`, `ISR := target`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassignment {
    /// The replicas before the reassignment, in their order; a cancel restores them.
    pub original: Vec<BrokerId>,
    /// The replicas asked for, preferred leader first.
    pub target: Vec<BrokerId>,
}

impl Reassignment {
    /// Replicas being added: `target − original`, in target order.
    pub fn adding(&self) -> Vec<BrokerId> {
        self.target.iter().copied().filter(|b| !self.original.contains(b)).collect()
    }

    /// Replicas being removed: `original − target`, in original order.
    pub fn removing(&self) -> Vec<BrokerId> {
        self.original.iter().copied().filter(|b| !self.target.contains(b)).collect()
    }

    /// The replica set during the move: the target, then the replicas being removed.
    pub fn full_replicas(&self) -> Vec<BrokerId> {
        let mut full = self.target.clone();
        full.extend(self.removing());
        full
    }
}

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// Topic name.
    pub name: String,
    /// Topic id (UUID, as in Kafka's metadata v10+).
    pub topic_id: Uuid,
    /// Replication factor new partitions get.
    pub replication_factor: u16,
    /// Config overrides as given (string form), for DescribeConfigs.
    pub config_overrides: BTreeMap<String, String>,
    /// Resolved typed config (defaults plus overrides).
    pub config: TopicConfig,
    /// Partitions, indexed by partition number.
    pub partitions: Vec<PartitionRecord>,
}

/// The whole replicated cluster metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataView {
    /// Registered brokers by id.
    pub brokers: BTreeMap<BrokerId, BrokerRecord>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicRecord>,
    /// Topic name by topic id.
    pub topic_names: BTreeMap<Uuid, String>,
    /// First producer id of the next block to hand out.
    pub next_producer_id: i64,
    /// Epoch the next (re-)registration gets.
    pub next_broker_epoch: i64,
    /// In-progress reassignments by topic id and partition (since format version 4).
    pub reassignments: BTreeMap<Uuid, BTreeMap<u32, Reassignment>>,
    /// SCRAM credentials, ACLs and client quotas (since format version 6).
    pub security: crate::security::SecurityState,
    /// Dynamic broker configs (since format version 7).
    pub broker_configs: crate::broker_config::BrokerConfigs,
}

impl TopicRecord {
    /// `min.insync.replicas` in force: the topic's override, else `broker_default` (the
    /// broker's flag, Kafka's `STATIC_BROKER_CONFIG`).
    pub fn min_insync_replicas(&self, broker_default: i32) -> i32 {
        self.overridden(crate::topic_config::MIN_INSYNC_REPLICAS, self.config.min_insync_replicas, broker_default)
    }

    /// `unclean.leader.election.enable` in force: the topic's override, else `broker_default`.
    pub fn unclean_leader_election(&self, broker_default: bool) -> bool {
        self.overridden(
            crate::topic_config::UNCLEAN_LEADER_ELECTION_ENABLE,
            self.config.unclean_leader_election_enable,
            broker_default,
        )
    }

    /// `replica.lag.time.max.ms` in force: the topic's override, else `broker_default`.
    pub fn replica_lag_time_max_ms(&self, broker_default: i64) -> i64 {
        self.overridden(
            crate::topic_config::REPLICA_LAG_TIME_MAX_MS,
            self.config.replica_lag_time_max_ms,
            broker_default,
        )
    }

    fn overridden<T>(&self, key: &str, typed: T, broker_default: T) -> T {
        if self.config_overrides.contains_key(key) {
            typed
        } else {
            broker_default
        }
    }
}

impl MetadataView {
    /// The topic with this id.
    pub fn topic_by_id(&self, topic_id: Uuid) -> Option<&TopicRecord> {
        self.topic_names.get(&topic_id).and_then(|name| self.topics.get(name))
    }

    /// Ids of registered brokers that are not fenced, ascending.
    pub fn live_brokers(&self) -> Vec<BrokerId> {
        self.brokers.values().filter(|b| !b.fenced).map(|b| b.broker_id).collect()
    }

    /// The rack of every registered broker that has one (placement spreads replicas over them).
    pub fn racks(&self) -> BTreeMap<BrokerId, String> {
        self.brokers.values().filter_map(|b| Some((b.broker_id, b.rack.clone()?))).collect()
    }

    /// Whether `broker_id` is registered and not fenced.
    pub fn is_live(&self, broker_id: BrokerId) -> bool {
        self.brokers.get(&broker_id).is_some_and(|b| !b.fenced)
    }

    /// The in-progress reassignment of a partition, if any.
    pub fn reassignment(&self, topic_id: Uuid, partition: u32) -> Option<&Reassignment> {
        self.reassignments.get(&topic_id).and_then(|partitions| partitions.get(&partition))
    }

    /// Partitions each broker leads, counting only partitions with a leader.
    pub fn leader_counts(&self) -> BTreeMap<BrokerId, usize> {
        let mut counts = BTreeMap::new();
        for partition in self.topics.values().flat_map(|t| &t.partitions) {
            if let Some(leader) = partition.leader {
                *counts.entry(leader).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Partition replicas each broker hosts.
    pub fn replica_counts(&self) -> BTreeMap<BrokerId, usize> {
        let mut counts = BTreeMap::new();
        for partition in self.topics.values().flat_map(|t| &t.partitions) {
            for replica in &partition.replicas {
                *counts.entry(*replica).or_insert(0) += 1;
            }
        }
        counts
    }
}
