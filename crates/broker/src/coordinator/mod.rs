//! The consumer-group coordinator, as in Kafka: offsets and group metadata are records in the
//! internal compacted topic `__consumer_offsets`, and the coordinator of a group is the leader
//! of partition `murmur2(group) % partitions` of that topic.
//!
//! - [`records`] — the keys and values of `__consumer_offsets` in Kafka's layout.
//! - [`shard`] — one loaded partition: its groups (the pure `sluice-group` state machines),
//!   their offsets, the writes, the timers.
//! - This module — which partitions this broker coordinates: the topic is created on the first
//!   FindCoordinator (as Kafka does), a partition is loaded when this broker becomes its leader
//!   (its records replayed into groups and offsets) and unloaded when it stops being it.
//!   Requests for a partition being loaded get COORDINATOR_LOAD_IN_PROGRESS, for one led
//!   elsewhere NOT_COORDINATOR.
//!
//! Nothing here is specific to a single node: leadership comes from the metadata view, so when
//! followers replicate `__consumer_offsets` the new leader loads the partition and carries on.
//!
//! Kafka itself places groups by `abs(groupId.hashCode()) % partitions` (Java's string hash);
//! Sluice uses murmur2 (masked positive, as the producer partitioner). Clients never compute
//! this — they ask FindCoordinator — so the choice is not visible on the wire.

pub mod lag;
pub mod lag_history;
pub mod records;
pub mod shard;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use sluice_group::{ErrorCode, GroupConfig};
use sluice_meta::{BrokerId, MetadataView};

use crate::partition::PartitionManager;
pub use shard::{CommitPartition, CommitRequest, ListedGroup, Shard, ShardConfig};

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Partitions of `__consumer_offsets` when it is created (Kafka's
/// `offsets.topic.num.partitions`). Fixed once the topic exists: changing it would move groups
/// between partitions. More partitions spread coordinators over more brokers; each costs a
/// directory, two index files and a timer task.
pub const OFFSETS_TOPIC_PARTITIONS_DEFAULT: u32 = 50;

/// Replication factor of `__consumer_offsets` (Kafka's `offsets.topic.replication.factor`),
/// lowered to the number of live brokers when the topic is created.
pub const OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT: u16 = 3;

/// Segment size of `__consumer_offsets`, in bytes (Kafka's `offsets.topic.segment.bytes`):
/// small segments let compaction reclaim superseded commits sooner.
pub const OFFSETS_TOPIC_SEGMENT_BYTES: i32 = 100 * 1024 * 1024;

/// Largest metadata string of one committed offset, in bytes (Kafka's
/// `offset.metadata.max.bytes`); larger gets OFFSET_METADATA_TOO_LARGE and is not stored.
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;

/// How long an Empty group's offsets are kept, in minutes (Kafka's
/// `offsets.retention.minutes`, 7 days).
pub const OFFSETS_RETENTION_MINUTES_DEFAULT: i64 = 7 * 24 * 60;

/// Interval between offset-expiry passes of a shard, in milliseconds (Kafka's
/// `offsets.retention.check.interval.ms`).
pub const OFFSETS_RETENTION_CHECK_INTERVAL_MS_DEFAULT: i64 = 600_000;

const _: () = assert!(OFFSETS_TOPIC_PARTITIONS_DEFAULT > 0);
const _: () = assert!(OFFSET_METADATA_BYTES_MAX < i16::MAX as usize);

/// The coordinator's settings (broker flags).
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// See [`OFFSETS_TOPIC_PARTITIONS_DEFAULT`].
    pub offsets_topic_partitions: u32,
    /// See [`OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT`].
    pub offsets_topic_replication_factor: u16,
    /// Shard settings: group limits, offset retention.
    pub shard: ShardConfig,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            offsets_topic_partitions: OFFSETS_TOPIC_PARTITIONS_DEFAULT,
            offsets_topic_replication_factor: OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT,
            shard: ShardConfig {
                group: GroupConfig::default(),
                offsets_retention_ms: OFFSETS_RETENTION_MINUTES_DEFAULT * 60_000,
                offsets_retention_check_interval_ms: OFFSETS_RETENTION_CHECK_INTERVAL_MS_DEFAULT,
            },
        }
    }
}

impl CoordinatorConfig {
    /// Checks the relations between the settings.
    pub fn validate(&self) -> Result<(), String> {
        let group = &self.shard.group;
        if self.offsets_topic_partitions == 0 || self.offsets_topic_replication_factor == 0 {
            return Err("the offsets topic needs at least one partition and one replica".into());
        }
        if group.session_timeout_min_ms <= 0 || group.session_timeout_min_ms > group.session_timeout_max_ms {
            return Err(format!(
                "group session timeout bounds {}..{} ms are not a range of positive values",
                group.session_timeout_min_ms, group.session_timeout_max_ms
            ));
        }
        if group.initial_rebalance_delay_ms < 0 || group.group_size_max == 0 || self.shard.offsets_retention_ms <= 0 {
            return Err("the initial rebalance delay must be >= 0, the group size and offset retention > 0".into());
        }
        Ok(())
    }

    /// The topic configs `__consumer_offsets` is created with.
    /// `replication_factor` is the one it is created with: from 3 replicas on, a commit must be
    /// on 2 of them (`min.insync.replicas` 2), so one broker lost loses no acknowledged commit
    /// and one broker down still takes commits.
    pub fn offsets_topic_configs(&self, replication_factor: u16) -> BTreeMap<String, String> {
        let mut configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), OFFSETS_TOPIC_SEGMENT_BYTES.to_string()),
            // A commit is acknowledged only once it is on the leader's disk (and, with
            // followers, in the ISR): losing the page cache must not lose acknowledged commits.
            ("flush.messages".to_string(), "1".to_string()),
        ]);
        if replication_factor >= 3 {
            configs.insert("min.insync.replicas".to_string(), "2".to_string());
        }
        configs
    }
}

/// Where a group's requests go on this broker.
#[derive(Debug, Clone)]
enum Slot {
    /// This broker leads the partition and is replaying it (under this leader epoch).
    Loading(i32),
    /// Loaded: requests go to the shard.
    Ready(Arc<Shard>),
}

/// The coordinator of the groups whose `__consumer_offsets` partitions this broker leads.
#[derive(Debug)]
pub struct GroupCoordinator {
    local_broker: BrokerId,
    config: CoordinatorConfig,
    slots: RwLock<HashMap<i32, Slot>>,
    /// Serializes [`GroupCoordinator::sync`] runs.
    syncing: tokio::sync::Mutex<()>,
}

/// The partition of `__consumer_offsets` that holds `group_id`, for a topic of `partitions`.
pub fn partition_for(group_id: &str, partitions: usize) -> i32 {
    let hash = sluice_proto::murmur2(group_id.as_bytes()) & 0x7fff_ffff;
    // Partition counts fit i32 (the metadata bounds them), so the remainder does too.
    (hash as u64 % partitions.max(1) as u64) as i32
}

impl GroupCoordinator {
    /// A coordinator with nothing loaded; [`GroupCoordinator::sync`] loads what this broker leads.
    pub fn new(local_broker: BrokerId, config: CoordinatorConfig) -> GroupCoordinator {
        GroupCoordinator {
            local_broker,
            config,
            slots: RwLock::new(HashMap::new()),
            syncing: tokio::sync::Mutex::new(()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// The shard coordinating `group_id`, or the error its requests get: COORDINATOR_NOT_AVAILABLE
    /// before `__consumer_offsets` exists, NOT_COORDINATOR when another broker leads the
    /// partition, COORDINATOR_LOAD_IN_PROGRESS while it loads here.
    pub fn shard_for(&self, view: &MetadataView, group_id: &str) -> Result<Arc<Shard>, i16> {
        let Some(topic) = view.topics.get(OFFSETS_TOPIC) else {
            return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE.0);
        };
        let index = partition_for(group_id, topic.partitions.len());
        let slots = self.slots.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        match slots.get(&index) {
            Some(Slot::Ready(shard)) => Ok(Arc::clone(shard)),
            Some(Slot::Loading(_)) => Err(COORDINATOR_LOAD_IN_PROGRESS),
            // The view already names this broker but the partition is not open and loaded yet
            // (the view is applied before the partitions are reconciled with it): the client
            // must wait, not look elsewhere. librdkafka's AdminClient crashes on a
            // NOT_COORDINATOR from the broker FindCoordinator just named.
            None if topic.partitions.get(index as usize).is_some_and(|p| p.leader == Some(self.local_broker)) => {
                Err(COORDINATOR_LOAD_IN_PROGRESS)
            }
            None => Err(ErrorCode::NOT_COORDINATOR.0),
        }
    }

    /// Every loaded shard (ListGroups).
    pub fn shards(&self) -> Vec<Arc<Shard>> {
        let slots = self.slots.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots
            .values()
            .filter_map(|slot| match slot {
                Slot::Ready(shard) => Some(Arc::clone(shard)),
                Slot::Loading(_) => None,
            })
            .collect()
    }

    /// Whether any partition this broker leads is still loading (ListGroups reports it).
    pub fn is_loading(&self) -> bool {
        let slots = self.slots.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.values().any(|slot| matches!(slot, Slot::Loading(_)))
    }

    /// Loads the `__consumer_offsets` partitions `view` says this broker leads (and whose
    /// replicas are open), and unloads the ones it no longer leads or leads under a new epoch.
    /// Called after every reconciliation of the partitions.
    pub async fn sync(&self, view: &MetadataView, partitions: &PartitionManager) {
        let _running = self.syncing.lock().await;
        let led: HashMap<i32, i32> = view
            .topics
            .get(OFFSETS_TOPIC)
            .map(|topic| {
                topic
                    .partitions
                    .iter()
                    .filter(|p| p.leader == Some(self.local_broker))
                    .map(|p| (p.partition as i32, p.leader_epoch))
                    .collect()
            })
            .unwrap_or_default();
        let current: Vec<(i32, Slot)> = {
            let slots = self.slots.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            slots.iter().map(|(index, slot)| (*index, slot.clone())).collect()
        };
        for (index, slot) in current {
            let epoch = match &slot {
                Slot::Loading(epoch) => *epoch,
                Slot::Ready(shard) => shard.leader_epoch,
            };
            if led.get(&index) != Some(&epoch) {
                self.slots.write().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&index);
                if let Slot::Ready(shard) = slot {
                    shard.unload().await;
                }
            }
        }
        let mut to_load = Vec::new();
        {
            let mut slots = self.slots.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            for (&index, &epoch) in &led {
                if slots.contains_key(&index) {
                    continue;
                }
                let Some(partition) = partitions.get(OFFSETS_TOPIC, index) else { continue };
                slots.insert(index, Slot::Loading(epoch));
                to_load.push((index, epoch, partition));
            }
        }
        // Loading is sequential: on one node every partition replays from the same disk.
        for (index, epoch, partition) in to_load {
            match Shard::load(index, epoch, partition, self.config.shard.clone()).await {
                Ok(shard) => {
                    let mut slots = self.slots.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                    slots.insert(index, Slot::Ready(shard));
                }
                Err(error) => {
                    tracing::error!(partition = index, %error, "cannot load consumer offsets partition; retrying on the next view");
                    self.slots.write().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&index);
                }
            }
        }
    }

    /// Unloads every shard (shutdown): parked requests get NOT_COORDINATOR.
    pub async fn unload_all(&self) {
        let _running = self.syncing.lock().await;
        let shards: Vec<Slot> = {
            let mut slots = self.slots.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            slots.drain().map(|(_, slot)| slot).collect()
        };
        for slot in shards {
            if let Slot::Ready(shard) = slot {
                shard.unload().await;
            }
        }
    }
}

/// COORDINATOR_LOAD_IN_PROGRESS: the partition is being replayed; retriable.
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_spread_over_the_partitions_and_stay_put() {
        assert_eq!(partition_for("g", 50), partition_for("g", 50));
        let used: std::collections::BTreeSet<i32> =
            (0..500).map(|i| partition_for(&format!("group-{i}"), 50)).collect();
        assert!(used.len() > 40, "500 groups used only {} of 50 partitions", used.len());
        assert!(used.iter().all(|p| (0..50).contains(p)));
        assert_eq!(partition_for("anything", 1), 0);
    }
}
