//! One loaded partition of `__consumer_offsets`: the groups whose coordinator it makes this
//! broker, their committed offsets, and the runtime around their pure state machines.
//!
//! Everything a shard knows is behind one async mutex. A request takes it, gives its event to
//! the group ([`sluice_group::Group::handle`]), and performs the returned actions in order while
//! still holding it: a `PersistGroup` is appended to the partition (and its outcome given back
//! to the group) before the next action, and an offset commit is appended before the offsets
//! in memory change. So the order of the log is the order of the state, and a response that
//! depends on a write is sent only once the write is acknowledged. Responses travel through a
//! `oneshot` per request ([`RequestId`]), because a JoinGroup or SyncGroup may be answered by a
//! later event (another member's join, the end of the join phase, a timer).
//!
//! Each shard runs one timer task: it sleeps until the earliest group deadline
//! ([`sluice_group::Group::next_deadline_ms`]) or the next offset-expiry pass, and is woken
//! whenever a request may have moved a deadline. It ends when the shard is unloaded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_group::{
    validate_offset_commit_without_group, Action, ErrorCode, Event, Group, GroupConfig, GroupDescription, GroupState,
    RequestId, Response,
};
use sluice_proto::records::{build_record_batch, decode_record_batches, BatchOptions, ProducedRecord};
use tokio::sync::{oneshot, watch, Mutex, Notify};

use crate::coordinator::records::{self, OffsetValue, RecordKey};
use crate::error::PartitionError;
use crate::kafka_code;
use crate::partition::{blocking, Partition};

/// Bytes read from the partition per step while loading it, in bytes. Larger steps load a big
/// partition with fewer lock round trips; each step's bytes are held in memory once.
pub const LOAD_READ_BYTES: u64 = 4 * 1024 * 1024;

/// Longest a write to `__consumer_offsets` waits for the high watermark, in milliseconds
/// (Kafka's `offsets.commit.timeout.ms`). Past it a commit gets REQUEST_TIMED_OUT-turned-
/// COORDINATOR_NOT_AVAILABLE and the client retries.
pub const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;

/// What a shard needs to know besides its partition.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// Limits and timeouts of every group.
    pub group: GroupConfig,
    /// `offsets.retention.minutes`, in milliseconds: how long the offsets of an Empty group are
    /// kept after it became Empty.
    pub offsets_retention_ms: i64,
    /// Interval between offset-expiry passes, in milliseconds.
    pub offsets_retention_check_interval_ms: i64,
}

/// A group and its committed offsets.
#[derive(Debug)]
struct GroupEntry {
    group: Group,
    offsets: BTreeMap<(String, i32), OffsetValue>,
}

#[derive(Debug, Default)]
struct ShardState {
    groups: HashMap<String, GroupEntry>,
    responders: HashMap<RequestId, oneshot::Sender<Response>>,
    /// Time of the next offset-expiry pass, milliseconds since the Unix epoch.
    next_expiry_ms: i64,
}

/// One offset to commit, or the error it already has (unknown partition, metadata too large).
#[derive(Debug, Clone)]
pub struct CommitPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The value to store, or the partition's error code.
    pub value: Result<OffsetValue, i16>,
}

/// The group side of an OffsetCommit.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// Group id.
    pub group_id: String,
    /// Member id (empty for a simple commit).
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// Generation (`-1` for a simple commit).
    pub generation_id: i32,
    /// The offsets, in request order.
    pub partitions: Vec<CommitPartition>,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer` for consumer groups; empty for groups of simple commits).
    pub protocol_type: String,
    /// State name as Kafka spells it.
    pub state: &'static str,
    /// Members now.
    pub members: usize,
    /// Generation id: one more after every completed rebalance.
    pub generation_id: i32,
}

/// One loaded `__consumer_offsets` partition.
#[derive(Debug)]
pub struct Shard {
    /// Index of the partition in `__consumer_offsets`.
    pub index: i32,
    /// The leader epoch under which it was loaded (a new epoch means a reload).
    pub leader_epoch: i32,
    partition: Arc<Partition>,
    config: ShardConfig,
    state: Mutex<ShardState>,
    next_request_id: AtomicU64,
    /// Wakes the timer task: a request may have moved a deadline.
    wake: Notify,
    /// Set when the shard is unloaded; ends the timer task.
    closed: watch::Sender<bool>,
}

/// Milliseconds since the Unix epoch: the clock groups and commit timestamps use.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

impl Shard {
    /// Reads the whole partition and rebuilds its groups and offsets, then starts the timer
    /// task. Blocking reads run on the blocking pool.
    pub async fn load(
        index: i32,
        leader_epoch: i32,
        partition: Arc<Partition>,
        config: ShardConfig,
    ) -> Result<Arc<Shard>, PartitionError> {
        let reader = Arc::clone(&partition);
        let replayed = blocking(move || replay(&reader)).await?;
        let now = now_ms();
        let mut groups = HashMap::new();
        for (group_id, (record, offsets)) in replayed {
            let group = match record {
                Some(record) => Group::load(group_id.clone(), config.group.clone(), now, &record).unwrap_or_else(|error| {
                    tracing::error!(group = group_id, %error, "stored group record is inconsistent; loading it as Empty");
                    Group::new(group_id.clone(), config.group.clone(), now)
                }),
                None => Group::new(group_id.clone(), config.group.clone(), now),
            };
            groups.insert(group_id, GroupEntry { group, offsets });
        }
        tracing::info!(partition = index, leader_epoch, groups = groups.len(), "consumer offsets partition loaded");
        let state = ShardState {
            groups,
            responders: HashMap::new(),
            next_expiry_ms: now.saturating_add(config.offsets_retention_check_interval_ms),
        };
        let shard = Arc::new(Shard {
            index,
            leader_epoch,
            partition,
            config,
            state: Mutex::new(state),
            next_request_id: AtomicU64::new(0),
            wake: Notify::new(),
            closed: watch::channel(false).0,
        });
        tokio::spawn(run_timers(Arc::clone(&shard)));
        Ok(shard)
    }

    /// Unloads the shard: every parked request gets NOT_COORDINATOR, every group is dropped,
    /// the timer task ends.
    pub async fn unload(&self) {
        let mut state = self.state.lock().await;
        let group_ids: Vec<String> = state.groups.keys().cloned().collect();
        for group_id in group_ids {
            let actions = match state.groups.get_mut(&group_id) {
                Some(entry) => entry.group.handle(now_ms(), Event::Unload),
                None => continue,
            };
            self.perform(&mut state, &group_id, actions).await;
        }
        state.groups.clear();
        state.responders.clear();
        self.closed.send_replace(true);
        tracing::info!(partition = self.index, "consumer offsets partition unloaded");
    }

    /// A fresh request id and the receiver of its response.
    fn register(&self, state: &mut ShardState) -> (RequestId, oneshot::Receiver<Response>) {
        let request_id = RequestId(self.next_request_id.fetch_add(1, Ordering::Relaxed));
        let (sender, receiver) = oneshot::channel();
        state.responders.insert(request_id, sender);
        (request_id, receiver)
    }

    /// Gives `make(request_id)` to the group `group_id` and waits for its response. With
    /// `create`, an unknown group is created first; otherwise an unknown group is
    /// UNKNOWN_MEMBER_ID (as Kafka answers SyncGroup, Heartbeat and LeaveGroup for a group it
    /// does not have). NOT_COORDINATOR if the shard is unloaded while the request is parked.
    pub async fn request(
        &self,
        group_id: &str,
        create: bool,
        make: impl FnOnce(RequestId) -> Event,
    ) -> Result<Response, ErrorCode> {
        let receiver = {
            let mut state = self.state.lock().await;
            if !state.groups.contains_key(group_id) {
                if !create {
                    return Err(ErrorCode::UNKNOWN_MEMBER_ID);
                }
                let group = Group::new(group_id, self.config.group.clone(), now_ms());
                state.groups.insert(group_id.to_string(), GroupEntry { group, offsets: BTreeMap::new() });
            }
            let (request_id, receiver) = self.register(&mut state);
            let event = make(request_id);
            let actions = state.groups.get_mut(group_id).expect("inserted above").group.handle(now_ms(), event);
            self.perform(&mut state, group_id, actions).await;
            receiver
        };
        // The group answers every request exactly once; a dropped sender means the shard was
        // unloaded with the request still parked.
        receiver.await.map_err(|_| ErrorCode::NOT_COORDINATOR)
    }

    /// Performs a group's actions in order, appending what it asks to persist and handing the
    /// outcome back to it before going on.
    async fn perform(&self, state: &mut ShardState, group_id: &str, actions: Vec<Action>) {
        let mut queue = VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Respond { request_id, response } => {
                    if let Some(responder) = state.responders.remove(&request_id) {
                        // The requester may have gone (connection closed); nothing to do.
                        let _ = responder.send(response);
                    }
                }
                Action::PersistGroup { persist_id, record } => {
                    let written =
                        self.append(vec![(records::group_key(group_id), Some(records::group_value(&record)))]).await;
                    let error_code = ErrorCode(written.err().map_or(kafka_code::NONE, group_write_error));
                    if let Some(entry) = state.groups.get_mut(group_id) {
                        queue.extend(entry.group.handle(now_ms(), Event::PersistCompleted { persist_id, error_code }));
                    }
                }
                Action::GroupEmptied => {
                    tracing::debug!(group = group_id, "group is empty; its offsets now age");
                }
                Action::GroupDead => {
                    state.groups.remove(group_id);
                }
            }
        }
        self.wake.notify_one();
    }

    /// Appends `(key, value)` records (a `None` value is a tombstone) as one batch and waits
    /// until they are committed. Returns the partition's Kafka error code on failure.
    async fn append(&self, entries: Vec<(Bytes, Option<Bytes>)>) -> Result<(), i16> {
        let timestamp_ms = now_ms();
        let produced: Vec<ProducedRecord> = entries
            .into_iter()
            .map(|(key, value)| ProducedRecord { key: Some(key), value, headers: Vec::new(), timestamp_ms })
            .collect();
        let batch = build_record_batch(&produced, &BatchOptions::default()).map_err(|error| {
            tracing::error!(%error, "cannot build a consumer offsets batch");
            kafka_code::UNKNOWN_SERVER_ERROR
        })?;
        let partition = Arc::clone(&self.partition);
        let appended = blocking(move || partition.append(&mut batch.to_vec(), true)).await.map_err(|error| {
            tracing::warn!(partition = self.index, %error, "consumer offsets append failed");
            error.kafka_error_code()
        })?;
        self.partition
            .wait_for_high_watermark(appended.last_offset + 1, Duration::from_millis(OFFSETS_COMMIT_TIMEOUT_MS))
            .await
    }

    /// Validates and stores an OffsetCommit; one error code per partition, in request order.
    pub async fn commit(&self, request: CommitRequest) -> Vec<i16> {
        let mut state = self.state.lock().await;
        let group_code = match state.groups.contains_key(&request.group_id) {
            true => {
                let (request_id, mut receiver) = self.register(&mut state);
                let event = Event::ValidateOffsetCommit(sluice_group::OffsetCommit {
                    request_id,
                    member_id: request.member_id.clone(),
                    group_instance_id: request.group_instance_id.clone(),
                    generation_id: request.generation_id,
                });
                let entry = state.groups.get_mut(&request.group_id).expect("checked above");
                let actions = entry.group.handle(now_ms(), event);
                self.perform(&mut state, &request.group_id, actions).await;
                match receiver.try_recv() {
                    Ok(Response::OffsetCommit { error_code }) => error_code,
                    _ => ErrorCode::COORDINATOR_NOT_AVAILABLE,
                }
            }
            false => validate_offset_commit_without_group(request.generation_id),
        };
        if group_code != ErrorCode::NONE {
            return vec![group_code.0; request.partitions.len()];
        }
        let valid: Vec<(String, i32, OffsetValue)> = request
            .partitions
            .iter()
            .filter_map(|p| p.value.as_ref().ok().map(|value| (p.topic.clone(), p.partition, value.clone())))
            .collect();
        let written = if valid.is_empty() {
            Ok(())
        } else {
            let entries = valid
                .iter()
                .map(|(topic, partition, value)| {
                    (records::offset_key(&request.group_id, topic, *partition), Some(records::offset_value(value)))
                })
                .collect();
            self.append(entries).await.map_err(commit_write_error)
        };
        if written.is_ok() && !valid.is_empty() {
            // A simple commit to an unknown group creates it Empty, as in Kafka.
            let config = self.config.group.clone();
            let entry = state.groups.entry(request.group_id.clone()).or_insert_with(|| GroupEntry {
                group: Group::new(request.group_id.clone(), config, now_ms()),
                offsets: BTreeMap::new(),
            });
            for (topic, partition, value) in valid {
                entry.offsets.insert((topic, partition), value);
            }
        }
        request
            .partitions
            .iter()
            .map(|p| match (&p.value, &written) {
                (Err(code), _) => *code,
                (Ok(_), Ok(())) => kafka_code::NONE,
                (Ok(_), Err(code)) => *code,
            })
            .collect()
    }

    /// Committed offsets of `group_id`: of the named partitions (`None` for a partition without
    /// one), or all of them when `partitions` is `None`.
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Vec<((String, i32), Option<OffsetValue>)> {
        let state = self.state.lock().await;
        let offsets = state.groups.get(group_id).map(|entry| &entry.offsets);
        match partitions {
            Some(wanted) => wanted
                .into_iter()
                .map(|key| {
                    let value = offsets.and_then(|offsets| offsets.get(&key).cloned());
                    (key, value)
                })
                .collect(),
            None => offsets.into_iter().flatten().map(|(key, value)| (key.clone(), Some(value.clone()))).collect(),
        }
    }

    /// Every committed offset of this shard's groups: (group, topic, partition, offset).
    pub async fn committed(&self) -> Vec<(String, String, i32, i64)> {
        let state = self.state.lock().await;
        state
            .groups
            .iter()
            .flat_map(|(group_id, entry)| {
                entry
                    .offsets
                    .iter()
                    .map(move |((topic, partition), value)| (group_id.clone(), topic.clone(), *partition, value.offset))
            })
            .collect()
    }

    /// Every group of this shard, with its state.
    pub async fn list(&self) -> Vec<ListedGroup> {
        let state = self.state.lock().await;
        state
            .groups
            .values()
            .map(|entry| ListedGroup {
                group_id: entry.group.group_id().to_string(),
                protocol_type: entry.group.protocol_type().unwrap_or("").to_string(),
                state: entry.group.state().as_str(),
                members: entry.group.member_count(),
                generation_id: entry.group.generation_id(),
            })
            .collect()
    }

    /// DescribeGroups for one group; `None` if this shard does not have it.
    pub async fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let mut state = self.state.lock().await;
        // Fire due timers first, so an expired member is not described as present.
        let actions = state.groups.get_mut(group_id)?.group.handle(now_ms(), Event::Tick);
        self.perform(&mut state, group_id, actions).await;
        state.groups.get(group_id).map(|entry| entry.group.describe())
    }

    /// DeleteGroups for one group: its offsets and metadata are tombstoned first, then the
    /// group goes. NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND if it is unknown.
    pub async fn delete_group(&self, group_id: &str) -> i16 {
        let mut state = self.state.lock().await;
        let Some(entry) = state.groups.get(group_id) else { return ErrorCode::GROUP_ID_NOT_FOUND.0 };
        if !matches!(entry.group.state(), GroupState::Empty) {
            return if entry.group.state() == GroupState::Dead {
                ErrorCode::GROUP_ID_NOT_FOUND.0
            } else {
                ErrorCode::NON_EMPTY_GROUP.0
            };
        }
        let mut tombstones: Vec<(Bytes, Option<Bytes>)> = entry
            .offsets
            .keys()
            .map(|(topic, partition)| (records::offset_key(group_id, topic, *partition), None))
            .collect();
        tombstones.push((records::group_key(group_id), None));
        if let Err(code) = self.append(tombstones).await {
            return commit_write_error(code);
        }
        let (request_id, mut receiver) = self.register(&mut state);
        let actions =
            state.groups.get_mut(group_id).expect("checked above").group.handle(now_ms(), Event::Delete { request_id });
        self.perform(&mut state, group_id, actions).await;
        state.groups.remove(group_id);
        match receiver.try_recv() {
            Ok(Response::Delete { error_code }) => error_code.0,
            _ => kafka_code::NONE,
        }
    }

    /// OffsetDelete: removes the named partitions' offsets of a group that does not consume
    /// them. Top-level code, then one code per partition.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
        subscribed: impl Fn(&GroupDescription, &str) -> bool,
    ) -> (i16, Vec<i16>) {
        let mut state = self.state.lock().await;
        let Some(entry) = state.groups.get(group_id) else {
            return (ErrorCode::GROUP_ID_NOT_FOUND.0, vec![kafka_code::NONE; partitions.len()]);
        };
        let description = entry.group.describe();
        let codes: Vec<i16> = partitions
            .iter()
            .map(|(topic, _)| {
                if entry.group.state() != GroupState::Empty && subscribed(&description, topic) {
                    GROUP_SUBSCRIBED_TO_TOPIC
                } else {
                    kafka_code::NONE
                }
            })
            .collect();
        let doomed: Vec<(String, i32)> = partitions
            .iter()
            .zip(&codes)
            .filter(|((topic, partition), code)| {
                **code == kafka_code::NONE && entry.offsets.contains_key(&(topic.clone(), *partition))
            })
            .map(|(key, _)| key.clone())
            .collect();
        if doomed.is_empty() {
            return (kafka_code::NONE, codes);
        }
        let tombstones =
            doomed.iter().map(|(topic, partition)| (records::offset_key(group_id, topic, *partition), None)).collect();
        if let Err(code) = self.append(tombstones).await {
            return (commit_write_error(code), codes);
        }
        if let Some(entry) = state.groups.get_mut(group_id) {
            for key in &doomed {
                entry.offsets.remove(key);
            }
        }
        (kafka_code::NONE, codes)
    }

    /// Fires due group timers and, when due, expires offsets of Empty groups. Returns the time
    /// of the next thing due.
    async fn tick(&self) -> i64 {
        let mut state = self.state.lock().await;
        let now = now_ms();
        let due: Vec<String> = state
            .groups
            .iter()
            .filter(|(_, entry)| entry.group.next_deadline_ms().is_some_and(|deadline| deadline <= now))
            .map(|(group_id, _)| group_id.clone())
            .collect();
        for group_id in due {
            if let Some(entry) = state.groups.get_mut(&group_id) {
                let actions = entry.group.handle(now, Event::Tick);
                self.perform(&mut state, &group_id, actions).await;
            }
        }
        if now >= state.next_expiry_ms {
            self.expire_offsets(&mut state, now).await;
            state.next_expiry_ms = now.saturating_add(self.config.offsets_retention_check_interval_ms);
        }
        let next_group = state.groups.values().filter_map(|entry| entry.group.next_deadline_ms()).min();
        next_group.map_or(state.next_expiry_ms, |deadline| deadline.min(state.next_expiry_ms))
    }

    /// Kafka's offset retention (KIP-211): the offsets of an Empty group expire
    /// `offsets_retention_ms` after it became Empty (for a group of simple commits, which has no
    /// protocol, after each offset's commit); an Empty group left without offsets is deleted.
    async fn expire_offsets(&self, state: &mut ShardState, now: i64) {
        let retention = self.config.offsets_retention_ms;
        let mut doomed_groups = Vec::new();
        let mut tombstones = Vec::new();
        let mut expired: Vec<(String, (String, i32))> = Vec::new();
        for (group_id, entry) in &state.groups {
            if entry.group.state() != GroupState::Empty {
                continue;
            }
            let mut expired_here = 0;
            for (key, value) in &entry.offsets {
                let since = match entry.group.protocol_type() {
                    Some(_) => entry.group.state_timestamp_ms(),
                    None => value.commit_timestamp_ms,
                };
                if since.saturating_add(retention) <= now {
                    tombstones.push((records::offset_key(group_id, &key.0, key.1), None));
                    expired.push((group_id.clone(), key.clone()));
                    expired_here += 1;
                }
            }
            if expired_here == entry.offsets.len() && entry.group.state_timestamp_ms().saturating_add(retention) <= now
            {
                tombstones.push((records::group_key(group_id), None));
                doomed_groups.push(group_id.clone());
            }
        }
        if tombstones.is_empty() {
            return;
        }
        if let Err(code) = self.append(tombstones).await {
            tracing::warn!(partition = self.index, code, "offset expiry could not be written; retrying next pass");
            return;
        }
        tracing::info!(
            partition = self.index,
            offsets = expired.len(),
            groups = doomed_groups.len(),
            "expired offsets"
        );
        for (group_id, key) in expired {
            if let Some(entry) = state.groups.get_mut(&group_id) {
                entry.offsets.remove(&key);
            }
        }
        for group_id in doomed_groups {
            state.groups.remove(&group_id);
        }
    }
}

/// GROUP_SUBSCRIBED_TO_TOPIC: OffsetDelete of a topic the group still consumes.
pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

/// Kafka's translation of an append error for a group write (GroupCoordinator
/// `storeGroup`): the member retries or rejoins.
fn group_write_error(code: i16) -> i16 {
    match code {
        kafka_code::UNKNOWN_TOPIC_OR_PARTITION | kafka_code::NOT_ENOUGH_REPLICAS => {
            ErrorCode::COORDINATOR_NOT_AVAILABLE.0
        }
        kafka_code::NOT_LEADER_OR_FOLLOWER | kafka_code::KAFKA_STORAGE_ERROR => ErrorCode::NOT_COORDINATOR.0,
        kafka_code::REQUEST_TIMED_OUT => ErrorCode::REBALANCE_IN_PROGRESS.0,
        _ => kafka_code::UNKNOWN_SERVER_ERROR,
    }
}

/// Kafka's translation of an append error for an offset commit (GroupMetadataManager
/// `storeOffsets`): retriable coordinator errors, or INVALID_COMMIT_OFFSET_SIZE for a batch
/// over the topic's size limit.
fn commit_write_error(code: i16) -> i16 {
    match code {
        kafka_code::UNKNOWN_TOPIC_OR_PARTITION | kafka_code::NOT_ENOUGH_REPLICAS | kafka_code::REQUEST_TIMED_OUT => {
            ErrorCode::COORDINATOR_NOT_AVAILABLE.0
        }
        kafka_code::NOT_LEADER_OR_FOLLOWER | kafka_code::KAFKA_STORAGE_ERROR => ErrorCode::NOT_COORDINATOR.0,
        kafka_code::MESSAGE_TOO_LARGE | kafka_code::CORRUPT_MESSAGE => INVALID_COMMIT_OFFSET_SIZE,
        other => other,
    }
}

/// INVALID_COMMIT_OFFSET_SIZE: the commit does not fit the offsets topic's batch limit.
pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;

/// What replaying a partition gives: per group, its latest record (if not deleted) and its
/// offsets.
type Replayed = HashMap<String, (Option<sluice_group::GroupRecord>, BTreeMap<(String, i32), OffsetValue>)>;

/// Reads every batch of the partition in order, up to its log end, and keeps the latest state
/// per key. A record that cannot be decoded is logged and skipped: one bad record must not make
/// the groups of a whole partition unavailable. Blocking.
///
/// Up to the log end, not the high watermark (as Kafka's classic `GroupMetadataManager` loads):
/// a leader that has just reopened its log knows only the high watermark of its last
/// checkpoint, which can be far below what was replicated and acknowledged before it stopped.
/// Replaying only up to it dropped acknowledged offset commits, and the group's committed
/// offsets went backwards (found by the chaos campaign: docs/reliability.md, "Bugs found").
/// Records above the high watermark are this leader's own appends; while it leads they are
/// never truncated, and if it loses the leadership the shard is unloaded and the new leader
/// replays its own log. The cost: a commit whose write timed out (its client got an error) is
/// visible after a reload, and lost again if this leader dies before a follower copies it.
fn replay(partition: &Partition) -> Result<Replayed, PartitionError> {
    let mut replayed: Replayed = HashMap::new();
    let (log_end, _, mut offset) = partition.offsets().ok_or(PartitionError::NotLeader)?;
    while offset < log_end {
        let read = partition.read_to_log_end(offset, LOAD_READ_BYTES)?;
        if read.regions.is_empty() {
            break;
        }
        let bytes = crate::partition::partition::read_regions(&read.regions, read.bytes)?;
        let decoded = decode_record_batches(&bytes).map_err(|error| PartitionError::Io {
            path: partition.dir().to_path_buf(),
            source: std::io::Error::other(error.to_string()),
        })?;
        let Some(last) = decoded.batches.last() else { break };
        let next = last.header.last_offset() + 1;
        for batch in &decoded.batches {
            for record in &batch.records {
                if record.offset < offset {
                    continue;
                }
                apply_record(&mut replayed, record.key.clone(), record.value.clone());
            }
        }
        offset = next;
    }
    Ok(replayed)
}

fn apply_record(replayed: &mut Replayed, key: Option<Bytes>, value: Option<Bytes>) {
    let Some(key) = key else { return };
    let parsed = match records::decode_key(key) {
        Ok(parsed) => parsed,
        Err(error) => {
            tracing::warn!(%error, "skipping a consumer offsets record with an unreadable key");
            return;
        }
    };
    let group_id = parsed.group().to_string();
    let entry = replayed.entry(group_id.clone()).or_default();
    match (parsed, value) {
        (RecordKey::Offset { topic, partition, .. }, None) => {
            entry.1.remove(&(topic, partition));
        }
        (RecordKey::Offset { topic, partition, .. }, Some(value)) => match records::decode_offset_value(value) {
            Ok(value) => {
                entry.1.insert((topic, partition), value);
            }
            Err(error) => tracing::warn!(%error, "skipping an unreadable offset record"),
        },
        (RecordKey::Group { .. }, None) => entry.0 = None,
        (RecordKey::Group { .. }, Some(value)) => match records::decode_group_value(value) {
            Ok(record) => entry.0 = Some(record),
            Err(error) => tracing::warn!(%error, "skipping an unreadable group record"),
        },
    }
    if entry.0.is_none() && entry.1.is_empty() {
        // Both tombstoned: the group is gone (a later record may bring it back).
        replayed.remove(&group_id);
    }
}

/// The timer task of a shard: ticks due groups, sleeping until the next deadline or a wake-up.
async fn run_timers(shard: Arc<Shard>) {
    let mut closed = shard.closed.subscribe();
    loop {
        if *closed.borrow() {
            return;
        }
        let next = shard.tick().await;
        let wait = Duration::from_millis(u64::try_from(next.saturating_sub(now_ms())).unwrap_or(0));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shard.wake.notified() => {}
            _ = closed.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Leadership;

    fn group_config() -> ShardConfig {
        ShardConfig {
            group: GroupConfig::default(),
            offsets_retention_ms: 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 60 * 1000,
        }
    }

    /// A leader of `__consumer_offsets` whose log holds commits above its high watermark, as
    /// after a restart: the checkpointed high watermark is older than the last acknowledged
    /// commits. Loading must still see them (the chaos campaign saw a group's committed offset
    /// go back from 1866 to 1810 when the coordinator reloaded only up to its stale HW).
    #[tokio::test]
    async fn load_replays_commits_above_a_stale_high_watermark() {
        let temp = tempfile::tempdir().unwrap();
        let leadership = Leadership {
            leader: Some(1),
            leader_epoch: 2,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            partition_epoch: 2,
            min_insync_replicas: 2,
            replica_lag_time_ms: 30_000,
        };
        let partition = Partition::open(
            temp.path(),
            crate::coordinator::OFFSETS_TOPIC,
            0,
            uuid::Uuid::new_v4(),
            1,
            sluice_log::LogConfig::default(),
            leadership,
        )
        .unwrap();
        let commit = |offset: i64| {
            let value = OffsetValue { offset, leader_epoch: -1, metadata: String::new(), commit_timestamp_ms: 1 };
            let record = ProducedRecord {
                key: Some(records::offset_key("group", "topic", 2)),
                value: Some(records::offset_value(&value)),
                headers: Vec::new(),
                timestamp_ms: 1,
            };
            build_record_batch(&[record], &BatchOptions::default()).unwrap().to_vec()
        };
        // Two commits appended as leader; followers 2 and 3 have not fetched them, so the high
        // watermark stays at 0, below both.
        partition.append(&mut commit(1810), false).unwrap();
        partition.append(&mut commit(1866), false).unwrap();
        let (log_end, high_watermark, _) = partition.offsets().unwrap();
        assert_eq!((log_end, high_watermark), (2, 0));

        let shard = Shard::load(0, 2, Arc::new(partition), group_config()).await.unwrap();
        let fetched = shard.fetch_offsets("group", Some(vec![("topic".to_string(), 2)])).await;
        assert_eq!(fetched[0].1.as_ref().map(|value| value.offset), Some(1866));
        shard.unload().await;
    }
}
