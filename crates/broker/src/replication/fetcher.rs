//! The follower side of replication: one fetcher task per leader broker.
//!
//! [`ReplicaFetchers::sync`] runs after every reconciliation with the metadata view: it groups
//! the partitions this broker follows by their leader and gives each leader's task its current
//! list (starting a task for a new leader, stopping the task of a leader nothing is followed
//! from any more). A task loops:
//!
//! 1. read each partition's fetch position (log end, epoch of the last batch, leader epoch;
//!    in memory, on the task itself);
//! 2. send one Fetch (version [`REPLICA_FETCH_VERSION`], `replica_id` = this broker) for all of
//!    them to the leader, which holds it up to `replica.fetch.wait.max.ms` for new data;
//! 3. for each partition, on the blocking pool: append the batches as they are
//!    (`Partition::append_as_follower`, which also takes the leader's high watermark), or
//!    truncate where the leader reports a diverging epoch, or below its log start;
//!    Partitions held back by the replication throttle ([`crate::replication::throttle`]) are
//!    left out of the request while the follower side is over its cap (a request left with
//!    none is not sent: the task pauses `replica.fetch.backoff.ms`), and the bytes appended
//!    for throttled partitions are counted against it;
//! 4. on an error (connection, NOT_LEADER_OR_FOLLOWER while the metadata catches up, …) pause
//!    `replica.fetch.backoff.ms` and go on.
//!
//! A fetch made under one leader epoch never appends under another: the partition refuses
//! batches whose fetch named an epoch it no longer has.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_meta::{BrokerId, MetadataView};
use sluice_proto::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use sluice_proto::kafka_protocol::messages::fetch_response::PartitionData;
use sluice_proto::kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use sluice_proto::kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::kafka_code;
use crate::partition::{blocking, FetchPosition, Partition, PartitionManager, Truncation};
use crate::replication::connection::BrokerConnection;
use crate::replication::throttle::{ReplicationThrottle, Side};
use crate::replication::{ReplicationConfig, REPLICA_FETCH_PARTITION_BYTES_MAX, REPLICA_FETCH_RESPONSE_BYTES_MAX};

/// Fetch version followers send: the newest this broker serves that names topics by name and
/// carries the replica id, `last_fetched_epoch` and the diverging epoch (KIP-320).
pub const REPLICA_FETCH_VERSION: i16 = 12;

/// Time a follower's fetch may take beyond its wait at the leader, in milliseconds, before the
/// connection is given up (a leader that stopped answering, e.g. a paused process).
pub const REPLICA_FETCH_TIMEOUT_SLACK_MS: u64 = 2_500;

struct FetcherHandle {
    address: String,
    partitions: watch::Sender<Vec<Arc<Partition>>>,
    task: JoinHandle<()>,
}

/// The fetcher tasks of this broker, one per leader it follows partitions from.
pub struct ReplicaFetchers {
    local_broker: BrokerId,
    config: ReplicationConfig,
    throttle: Arc<ReplicationThrottle>,
    fetchers: Mutex<HashMap<BrokerId, FetcherHandle>>,
}

impl std::fmt::Debug for ReplicaFetchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaFetchers").field("local_broker", &self.local_broker).finish()
    }
}

impl ReplicaFetchers {
    /// No fetchers until the first [`ReplicaFetchers::sync`].
    pub fn new(
        local_broker: BrokerId,
        config: ReplicationConfig,
        throttle: Arc<ReplicationThrottle>,
    ) -> ReplicaFetchers {
        ReplicaFetchers { local_broker, config, throttle, fetchers: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BrokerId, FetcherHandle>> {
        self.fetchers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Gives every leader's fetcher the partitions followed from it now.
    pub fn sync(&self, view: &MetadataView, partitions: &PartitionManager) {
        let mut by_leader: HashMap<BrokerId, Vec<Arc<Partition>>> = HashMap::new();
        for (leader, partition) in partitions.followed() {
            by_leader.entry(leader).or_default().push(partition);
        }
        let mut fetchers = self.lock();
        fetchers.retain(|leader, handle| {
            let keep = by_leader.contains_key(leader)
                && view.brokers.get(leader).is_some_and(|broker| broker.internal_addr == handle.address);
            if !keep {
                handle.task.abort();
            }
            keep
        });
        for (leader, list) in by_leader {
            if let Some(handle) = fetchers.get(&leader) {
                handle.partitions.send_if_modified(|current| {
                    let changed = !same_partitions(current, &list);
                    *current = list;
                    changed
                });
                continue;
            }
            let Some(broker) = view.brokers.get(&leader) else { continue };
            let (sender, receiver) = watch::channel(list);
            let fetcher = Fetcher {
                local_broker: self.local_broker,
                leader,
                address: broker.internal_addr.clone(),
                config: self.config.clone(),
                throttle: Arc::clone(&self.throttle),
            };
            tracing::info!(leader, address = broker.internal_addr, "replica fetcher started");
            let task = tokio::spawn(fetcher.run(receiver));
            fetchers.insert(leader, FetcherHandle { address: broker.internal_addr.clone(), partitions: sender, task });
        }
    }

    /// Stops every fetcher (shutdown).
    pub fn stop_all(&self) {
        for (_, handle) in self.lock().drain() {
            handle.task.abort();
        }
    }
}

fn same_partitions(a: &[Arc<Partition>], b: &[Arc<Partition>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
}

/// One leader's fetcher.
struct Fetcher {
    local_broker: BrokerId,
    leader: BrokerId,
    address: String,
    config: ReplicationConfig,
    throttle: Arc<ReplicationThrottle>,
}

/// What to do with one partition after a fetch.
enum Step {
    Append { records: bytes::Bytes, high_watermark: i64, log_start: i64 },
    Truncate(Truncation),
    Backoff,
}

impl Fetcher {
    async fn run(self, mut partitions: watch::Receiver<Vec<Arc<Partition>>>) {
        let mut connection: Option<BrokerConnection> = None;
        let backoff = Duration::from_millis(self.config.fetch_backoff_ms);
        loop {
            // In memory, under each partition's lock only: no hand-off to the blocking pool.
            let positions = positions_of(&partitions.borrow_and_update());
            if positions.is_empty() {
                // Nothing to fetch (all partitions closed or led here now): wait for a change.
                if partitions.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let positions: Vec<_> = positions
                .into_iter()
                .filter(|(partition, _)| !self.throttle.follower_holds_back(&partition.topic, partition.index))
                .collect();
            if positions.is_empty() {
                // Every partition is held back by the replication throttle.
                tokio::time::sleep(backoff).await;
                continue;
            }
            let connected = match connection.take() {
                Some(connection) => Ok(connection),
                None => BrokerConnection::connect(&self.address, self.local_broker, self.config.tls.as_ref()).await,
            };
            let mut open = match connected {
                Ok(open) => open,
                Err(error) => {
                    tracing::debug!(leader = self.leader, %error, "cannot reach the leader");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            let request = self.request(&positions);
            let timeout = Duration::from_millis(
                u64::try_from(self.config.fetch_wait_ms).unwrap_or(0) + REPLICA_FETCH_TIMEOUT_SLACK_MS,
            );
            let response: FetchResponse = match open.call(ApiKey::Fetch, REPLICA_FETCH_VERSION, &request, timeout).await
            {
                Ok(response) => response,
                Err(error) => {
                    tracing::debug!(leader = self.leader, %error, "replica fetch failed");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            connection = Some(open);
            if response.error_code != kafka_code::NONE {
                tracing::warn!(leader = self.leader, error_code = response.error_code, "replica fetch refused");
                tokio::time::sleep(backoff).await;
                continue;
            }
            let leader = self.leader;
            let throttle = Arc::clone(&self.throttle);
            // Appends (and a roll's directory sync) are disk work: one blocking hop for them all.
            let applied = blocking(move || Ok(apply_response(leader, positions, response, &throttle))).await;
            if !matches!(applied, Ok(true)) {
                tokio::time::sleep(backoff).await;
            }
        }
    }

    fn request(&self, positions: &[(Arc<Partition>, FetchPosition)]) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (partition, position) in positions {
            let fetch = FetchPartition::default()
                .with_partition(partition.index)
                .with_current_leader_epoch(position.current_leader_epoch)
                .with_fetch_offset(position.fetch_offset)
                .with_last_fetched_epoch(position.last_fetched_epoch)
                .with_log_start_offset(position.log_start_offset)
                .with_partition_max_bytes(REPLICA_FETCH_PARTITION_BYTES_MAX);
            match topics.last_mut().filter(|topic| topic.topic.0.as_str() == partition.topic) {
                Some(topic) => topic.partitions.push(fetch),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(partition.topic.clone())))
                        .with_partitions(vec![fetch]),
                ),
            }
        }
        FetchRequest::default()
            .with_replica_id(self.local_broker.into())
            .with_max_wait_ms(self.config.fetch_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(REPLICA_FETCH_RESPONSE_BYTES_MAX)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics)
    }
}

/// The fetch position of every partition still followed (sorted by topic, so a request lists
/// each topic once).
fn positions_of(list: &[Arc<Partition>]) -> Vec<(Arc<Partition>, FetchPosition)> {
    let mut positions: Vec<(Arc<Partition>, FetchPosition)> =
        list.iter().filter_map(|partition| partition.fetch_position().map(|p| (Arc::clone(partition), p))).collect();
    positions.sort_by(|a, b| (a.0.topic.as_str(), a.0.index).cmp(&(b.0.topic.as_str(), b.0.index)));
    positions
}

/// What the leader's answer for one partition asks of it.
fn step_for(position: &FetchPosition, data: &PartitionData) -> Step {
    match data.error_code {
        kafka_code::NONE if data.diverging_epoch.epoch >= 0 => Step::Truncate(Truncation::Diverged {
            epoch: data.diverging_epoch.epoch,
            end_offset: data.diverging_epoch.end_offset,
        }),
        kafka_code::NONE => Step::Append {
            records: data.records.clone().unwrap_or_default(),
            high_watermark: data.high_watermark,
            log_start: data.log_start_offset,
        },
        kafka_code::OFFSET_OUT_OF_RANGE if position.fetch_offset < data.log_start_offset => {
            Step::Truncate(Truncation::StartAt(data.log_start_offset))
        }
        // Above the leader's log end with no epoch to tell where the logs diverged: keep only
        // what is committed.
        kafka_code::OFFSET_OUT_OF_RANGE if data.high_watermark >= 0 => {
            Step::Truncate(Truncation::To(data.high_watermark))
        }
        _ => Step::Backoff,
    }
}

/// Applies a fetch response to the partitions it answers. Blocking. Returns whether every
/// partition went well (else the fetcher pauses before the next fetch).
fn apply_response(
    leader: BrokerId,
    positions: Vec<(Arc<Partition>, FetchPosition)>,
    response: FetchResponse,
    throttle: &ReplicationThrottle,
) -> bool {
    let mut by_key: HashMap<(&str, i32), &PartitionData> = HashMap::new();
    for topic in &response.responses {
        for data in &topic.partitions {
            by_key.insert((topic.topic.0.as_str(), data.partition_index), data);
        }
    }
    let mut all_well = true;
    for (partition, position) in &positions {
        let Some(data) = by_key.get(&(partition.topic.as_str(), partition.index)) else { continue };
        let epoch = position.current_leader_epoch;
        let result = match step_for(position, data) {
            Step::Append { records, high_watermark, log_start } => {
                if !records.is_empty() && throttle.follower_throttles(&partition.topic, partition.index) {
                    throttle.record(Side::Follower, records.len() as u64);
                }
                partition.append_as_follower(&records, high_watermark, log_start, epoch, position.fetch_offset)
            }
            Step::Truncate(truncation) => partition.truncate_as_follower(truncation, epoch).map(|_| ()),
            Step::Backoff => {
                tracing::debug!(
                    leader,
                    topic = partition.topic,
                    partition = partition.index,
                    error_code = data.error_code,
                    "leader refused the partition's fetch"
                );
                all_well = false;
                continue;
            }
        };
        if let Err(error) = result {
            all_well = false;
            tracing::warn!(leader, topic = partition.topic, partition = partition.index, %error, "replicating failed");
        }
    }
    all_well
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(error_code: i16, high_watermark: i64, log_start_offset: i64) -> PartitionData {
        PartitionData::default()
            .with_error_code(error_code)
            .with_high_watermark(high_watermark)
            .with_log_start_offset(log_start_offset)
    }

    fn empty_replica() -> FetchPosition {
        FetchPosition { fetch_offset: 0, last_fetched_epoch: -1, current_leader_epoch: 3, log_start_offset: 0 }
    }

    // Goal: a replica rebuilt from an empty disk fetches from offset 0; when the leader's
    // retention (or DeleteRecords) moved its log start past 0, the OFFSET_OUT_OF_RANGE answer
    // makes the follower empty its log and start at the leader's log start, not back off
    // forever; an empty replica the leader still serves from 0 appends what it gets.
    #[test]
    fn an_empty_replica_starts_at_the_leaders_log_start() {
        let moved = answer(kafka_code::OFFSET_OUT_OF_RANGE, 900, 500);
        assert!(matches!(step_for(&empty_replica(), &moved), Step::Truncate(Truncation::StartAt(500))));

        let from_zero = answer(kafka_code::NONE, 900, 0);
        assert!(matches!(
            step_for(&empty_replica(), &from_zero),
            Step::Append { high_watermark: 900, log_start: 0, .. }
        ));

        // Past the leader's log end (not below its start): keep only what is committed.
        let ahead = FetchPosition { fetch_offset: 1_000, ..empty_replica() };
        assert!(matches!(
            step_for(&ahead, &answer(kafka_code::OFFSET_OUT_OF_RANGE, 900, 0)),
            Step::Truncate(Truncation::To(900))
        ));
    }
}
