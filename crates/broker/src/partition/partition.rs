//! One partition replica hosted by this broker: its log, its leadership as the metadata says,
//! its idempotent producer state and its high watermark.
//!
//! Every method here is synchronous and may block on file I/O (fsync with `flush.messages=1`,
//! opening and recovering a log, retention, compaction): the async callers run them through
//! `tokio::task::spawn_blocking` (see [`crate::partition::manager`]). The state is behind one
//! `std::sync::Mutex`, so an append's producer check, the append and the high watermark update
//! are one step. Under `flush.messages=1` an append then waits for its fsync *outside* the lock
//! (group commit, `sluice_log::SyncWait`): the appends that arrive meanwhile share the next
//! fdatasync, and the high watermark counts the leader's own replica only up to what is
//! synced, so consumers never read an unsynced record of such a topic. Reads copy [`FileRegion`]s out under the lock and read the bytes after
//! releasing it.
//!
//! The high watermark is also published on a `watch` channel: fetches that wait for data
//! (long poll) and acks=all produces wait on it instead of polling. It is published under the
//! partition's lock, so it changes in append order and, whenever the lock is free, holds the
//! log's high watermark. The log end offset has a channel of its own, which followers' fetches
//! wait on (they copy what is not committed yet).
//!
//! As leader, a replica serves its followers' fetches ([`Partition::read_for_follower`]): each
//! fetch records the follower's progress, may advance the high watermark, and says whether the
//! follower's log diverged. As follower, it appends what the replica fetcher copied
//! ([`Partition::append_as_follower`]) and truncates where the leader says its log diverged.
//! The rules themselves are the pure functions of [`crate::partition::replica`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use sluice_log::batch::{compute_crc, BatchHeader};
use sluice_log::config::BATCH_HEADER_BYTES;
use sluice_log::validate::{stamp_log_append_time, validate_produced, ValidationPolicy};
use sluice_log::{FileRegion, Log, LogConfig, LogError, MessageTimestampType, SyncWait};
use sluice_meta::BrokerId;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::PartitionError;
use crate::kafka_code;
use crate::partition::damage::{damaged_batch_offset, Damage, DamageState};
use crate::partition::producer_state::{ActiveProducer, ProducerBatch, ProducerStates, SequenceCheck};
use crate::partition::replica::{self, FollowerProgress};

/// Name of the file in a partition directory that records which topic id the directory
/// belongs to (Kafka's `partition.metadata`), so a topic deleted and re-created under the same
/// name never reuses the old data.
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// The leadership of a partition as the metadata view has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// Current leader, `None` when offline.
    pub leader: Option<BrokerId>,
    /// Current leader epoch (stamped on every batch this broker appends as leader).
    pub leader_epoch: i32,
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// In-sync replicas.
    pub isr: Vec<BrokerId>,
    /// Bumped on every leader or ISR change; ISR proposals carry it.
    pub partition_epoch: i32,
    /// `min.insync.replicas` in force for the topic (its override, else the broker's).
    pub min_insync_replicas: i32,
    /// `replica.lag.time.max.ms` in force for the topic (its override, else the broker's).
    pub replica_lag_time_ms: i64,
}

impl Leadership {
    /// Whether `broker` leads the partition.
    pub fn is_leader(&self, broker: BrokerId) -> bool {
        self.leader == Some(broker)
    }
}

/// What a follower's fetch got from the leader's replica.
#[derive(Debug, Clone)]
pub struct FollowerRead {
    /// Whole batches from the fetch offset (possibly above the high watermark), as stored.
    pub regions: Vec<FileRegion>,
    /// Bytes in `regions`.
    pub bytes: u64,
    /// High watermark after this fetch's progress was counted.
    pub high_watermark: i64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// The diverging epoch and its end offset on the leader, when the follower must truncate.
    pub diverging: Option<(i32, i64)>,
    /// The follower qualifies for the ISR but is not in it: the leader should propose it.
    pub isr_change_wanted: bool,
}

/// An ISR change the leader should propose (Kafka's AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    /// Leader epoch the proposal is computed under.
    pub leader_epoch: i32,
    /// Partition epoch it is computed from.
    pub partition_epoch: i32,
    /// The ISR wanted.
    pub isr: Vec<BrokerId>,
}

/// Where a follower fetches from next: its log end offset and the epoch of its last batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    /// The follower's log end offset (the next offset to fetch).
    pub fetch_offset: i64,
    /// Epoch of the last batch in its log (`-1` when empty).
    pub last_fetched_epoch: i32,
    /// The leader epoch the follower knows.
    pub current_leader_epoch: i32,
    /// Log start offset.
    pub log_start_offset: i64,
}

/// Milliseconds on a monotonic clock (since the first call in this process): follower lag is
/// measured with it, so a wall-clock step never drops or keeps a replica.
pub fn monotonic_ms() -> i64 {
    static START: OnceLock<Instant> = OnceLock::new();
    i64::try_from(START.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// Where an accepted produce landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Offset of the first record (the original one for a duplicate).
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// Whether the batch was a retried duplicate that was not appended again.
    pub duplicate: bool,
    /// The time stamped on the batches of a `LogAppendTime` topic, else -1 (Produce's
    /// `log_append_time_ms`).
    pub log_append_time_ms: i64,
}

/// What a read returned: whole batches as file regions, and the offsets a fetch reports.
#[derive(Debug, Clone)]
pub struct ReadOutcome {
    /// Whole batches, in offset order.
    pub regions: Vec<FileRegion>,
    /// Bytes in `regions`.
    pub bytes: u64,
    /// High watermark at the time of the read.
    pub high_watermark: i64,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Leader epoch at the time of the read.
    pub leader_epoch: i32,
}

struct State {
    /// `None` once the partition is closed (deleted topic, shutdown).
    log: Option<Log>,
    leadership: Leadership,
    producers: ProducerStates,
    followers: BTreeMap<BrokerId, FollowerProgress>,
    /// (log start, high watermark, log end) at the last checkpoint: an idle partition is not
    /// checkpointed again (each checkpoint costs two fsyncs).
    checkpointed: Option<(i64, i64, i64)>,
    /// The log end offset when this broker last took the partition's leadership (Kafka's
    /// leader epoch start offset). A new leader's high watermark can lag what the old leader
    /// acknowledged until its followers fetch from it; until it reaches this offset, a
    /// client's ListOffsets that depends on it is answered OFFSET_NOT_AVAILABLE (retriable)
    /// instead of an offset below records already acknowledged.
    epoch_start_offset: i64,
}

/// A partition replica on this broker.
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub index: i32,
    /// Topic id the data belongs to.
    pub topic_id: Uuid,
    /// This broker's id.
    local_broker: BrokerId,
    dir: PathBuf,
    state: Mutex<State>,
    high_watermark: watch::Sender<i64>,
    log_end: watch::Sender<i64>,
    /// Whether this broker leads the partition and it is open; kept beside the state so that
    /// waiters on the high-watermark channel can read it without the partition's lock (an
    /// append publishes under that lock).
    leading: AtomicBool,
    /// Whether appends may wait for a disk sync (`flush.messages` or `flush.ms` set): under
    /// `flush.ms` an append may hold the lock for the sync, under `flush.messages=1` it waits
    /// for group commit after releasing it; either way nothing on the async runtime may wait
    /// for such an append. Kept beside the state, like `leading`, so it is read without the
    /// lock.
    syncs_on_append: AtomicBool,
    /// The metadata no longer assigns this replica here and it is about to be deleted: its
    /// fetcher stops at once ([`Partition::retire`]), before the slower close and delete.
    retired: AtomicBool,
    /// Told the duration of each segment sync of the log, across reopens
    /// ([`Partition::observe_syncs`]).
    sync_observer: std::sync::OnceLock<sluice_log::SyncObserver>,
    /// A batch found damaged in this replica's log and its repair (`crate::partition::damage`).
    /// Its own lock, never held while taking the state's: `/ready` and the repair task read it
    /// without waiting for an fsync under the state's lock.
    damage: Mutex<Option<Damage>>,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition").field("topic", &self.topic).field("index", &self.index).finish()
    }
}

impl Partition {
    /// Opens (recovering if needed) the log in `dir` and rebuilds the producer state from it.
    #[allow(clippy::too_many_arguments)] // identity, placement and settings, each needed once
    /// Blocking.
    pub fn open(
        dir: &Path,
        topic: &str,
        index: i32,
        topic_id: Uuid,
        local_broker: BrokerId,
        config: LogConfig,
        leadership: Leadership,
    ) -> Result<Partition, PartitionError> {
        let syncs_on_append = AtomicBool::new(config.flush != sluice_log::FlushPolicy::Os);
        // The broker's data-directory lock keeps other processes out, and the partition manager
        // opens each partition once: the log needs no lock file (one descriptor fewer each).
        let mut log = Log::open_without_lock(dir, config)?;
        write_partition_metadata(dir, topic_id)?;
        let producers = rebuild_producer_states(&log)?;
        // A partition this broker leads alone has everything it appended in sync.
        let mut state = State {
            log: None,
            leadership,
            producers,
            followers: BTreeMap::new(),
            checkpointed: None,
            epoch_start_offset: log.log_end_offset(),
        };
        seed_followers(&mut state, log.high_watermark(), local_broker);
        let high_watermark = advance_high_watermark(&mut log, &state, local_broker);
        let log_end = log.log_end_offset();
        state.log = Some(log);
        let leading = AtomicBool::new(state.leadership.is_leader(local_broker));
        tracing::info!(topic, partition = index, high_watermark, producers = state.producers.len(), "partition open");
        Ok(Partition {
            topic: topic.to_string(),
            index,
            topic_id,
            local_broker,
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
            high_watermark: watch::channel(high_watermark).0,
            log_end: watch::channel(log_end).0,
            leading,
            syncs_on_append,
            retired: AtomicBool::new(false),
            sync_observer: std::sync::OnceLock::new(),
            damage: Mutex::new(None),
        })
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A receiver of high watermark changes. It also wakes (with the same value) when the
    /// partition's leadership changes or it closes, so waiters re-check.
    pub fn watch_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// A receiver of log end offset changes (appends, truncation); also woken on leadership
    /// changes and close. Followers' fetches wait on it.
    pub fn watch_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
    }

    /// The log end offset as last published (the value [`Partition::watch_log_end`] holds).
    pub fn log_end_now(&self) -> i64 {
        *self.log_end.borrow()
    }

    /// The high watermark as last published (the value [`Partition::watch_high_watermark`]
    /// holds).
    pub fn high_watermark_now(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// This broker's id.
    pub fn local_broker(&self) -> BrokerId {
        self.local_broker
    }

    /// The current partition epoch (bumped by every leader, ISR or replica change).
    pub fn partition_epoch(&self) -> i32 {
        self.lock().leadership.partition_epoch
    }

    /// The current leadership.
    pub fn leadership(&self) -> Leadership {
        self.lock().leadership.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under this lock leaves the log in a state the log itself guards (every write
        // is validated first); go on with it rather than poison every later request.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies a leadership change from the metadata. Wakes waiters so they re-check.
    pub fn set_leadership(&self, leadership: Leadership) {
        let mut state = self.lock();
        if state.leadership == leadership {
            return;
        }
        let new_term =
            state.leadership.leader != leadership.leader || state.leadership.leader_epoch != leadership.leader_epoch;
        // A follower outside the ISR must earn its place with a fetch made under this
        // partition epoch. Its record from before may describe a log it no longer has: a
        // reassignment that removed it (its log is deleted) and added it back, where this
        // broker may not even see the view in between (views are applied latest-first). Kept,
        // such a record made the leader take an empty replica into the ISR at once and a move
        // complete onto it.
        let (replicas, isr) = (&leadership.replicas, &leadership.isr);
        let new_epoch = state.leadership.partition_epoch != leadership.partition_epoch;
        state.followers.retain(|broker, _| replicas.contains(broker) && (isr.contains(broker) || !new_epoch));
        state.leadership = leadership;
        self.leading.store(state.log.is_some() && state.leadership.is_leader(self.local_broker), Ordering::Release);
        if new_term {
            // Progress recorded under another leadership says nothing about this one.
            let high_watermark = state.log.as_ref().map_or(0, Log::high_watermark);
            seed_followers(&mut state, high_watermark, self.local_broker);
            state.epoch_start_offset = state.log.as_ref().map_or(0, Log::log_end_offset);
            if state.leadership.is_leader(self.local_broker) {
                tracing::info!(
                    topic = self.topic,
                    partition = self.index,
                    leader_epoch = state.leadership.leader_epoch,
                    high_watermark,
                    "leading partition"
                );
            }
        }
        self.log_end.send_modify(|_| {});
        if let Some(mut log) = state.log.take() {
            let high_watermark = advance_high_watermark(&mut log, &state, self.local_broker);
            state.log = Some(log);
            self.high_watermark.send_replace(high_watermark);
        } else {
            self.high_watermark.send_modify(|_| {});
        }
    }

    /// Reopens the log with a new configuration (a topic config changed). Blocking.
    pub fn reconfigure(&self, config: LogConfig) -> Result<(), PartitionError> {
        let mut state = self.lock();
        if state.log.is_none() {
            return Ok(());
        }
        let log = state.log.take().expect("checked above");
        log.close()?;
        self.syncs_on_append.store(config.flush != sluice_log::FlushPolicy::Os, Ordering::Release);
        let mut log = Log::open_without_lock(&self.dir, config)?;
        if let Some(observer) = self.sync_observer.get() {
            log.observe_syncs(observer.clone());
        }
        state.log = Some(log);
        Ok(())
    }

    /// Tells `observer` how long each segment sync of this partition's log takes, from now on
    /// and after a reconfiguration reopens the log (the first observer is kept). Blocking: takes
    /// the partition's lock.
    pub fn observe_syncs(&self, observer: sluice_log::SyncObserver) {
        if self.sync_observer.set(observer.clone()).is_err() {
            return;
        }
        if let Some(log) = self.lock().log.as_mut() {
            log.observe_syncs(observer);
        }
    }

    /// Whether an append may wait for an fsync (`flush.messages` or `flush.ms` set; Kafka's
    /// default leaves syncing to the OS). Such appends get a blocking-pool task each, so that
    /// several partitions' inline `flush.ms` syncs overlap (`flush.messages=1` waits come after
    /// the append, [`Partition::finish_sync`], and concurrent appends to one partition share
    /// a sync), and a fetch of such a partition never reads inline. Lock-free.
    pub fn syncs_on_append(&self) -> bool {
        self.syncs_on_append.load(Ordering::Acquire)
    }

    /// Appends a producer's batches as leader. Checks every record (Kafka's `LogValidator`
    /// rules), leadership and the producer sequence first; nothing is appended on any error.
    /// `records` may be replaced: re-encoded for the topic's `compression.type`. Blocking:
    /// under `flush.messages=1` it returns only once a group-commit fsync covered the records
    /// (an error, never success, if that fsync failed).
    pub fn append(&self, records: &mut Vec<u8>, acks_all: bool) -> Result<Appended, PartitionError> {
        let (appended, sync) = self.append_unsynced(records, acks_all)?;
        self.finish_sync(sync)?;
        Ok(appended)
    }

    /// [`Partition::append`] without the wait for its sync: returns as soon as the batches
    /// are in the log, with what [`Partition::finish_sync`] waits on. The records must not be
    /// acknowledged before that wait succeeds (under `flush.messages=1` the high watermark
    /// stays below them until then). A connection appends its next produce request meanwhile,
    /// so that one group-commit fsync covers them both. Blocking (validation, the append).
    pub fn append_unsynced(
        &self,
        records: &mut Vec<u8>,
        acks_all: bool,
    ) -> Result<(Appended, SyncWait), PartitionError> {
        let log_append_time_ms = self.validate_produced(records)?;
        let mut state = self.lock();
        check_leader(&state, self.local_broker)?;
        self.check_log_whole()?;
        if acks_all {
            // Only ISR members caught up within the lag time count: a follower that stopped
            // fetching leaves the ISR once the controller commits the change, but if it cannot
            // (the metadata group lost its quorum with the same failure), writes that could not
            // be replicated are refused here rather than left to time out.
            let in_sync = replica::caught_up_isr(
                self.local_broker,
                &state.leadership.isr,
                &state.followers,
                monotonic_ms(),
                state.leadership.replica_lag_time_ms,
            );
            if !replica::enough_replicas_for_acks_all(&in_sync, state.leadership.min_insync_replicas) {
                return Err(PartitionError::NotEnoughReplicas);
            }
        }
        // A log whose sync failed refuses everything, retries reported as duplicates included:
        // the batch a retry repeats may be the one whose sync failed.
        state.log.as_ref().ok_or(PartitionError::NotLeader)?.check_writable()?;
        let batches = producer_batches(records)?;
        for batch in &batches {
            match state.producers.check(batch) {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate { first_offset, last_offset } => {
                    let log = state.log.as_ref().ok_or(PartitionError::NotLeader)?;
                    let appended = Appended {
                        base_offset: first_offset,
                        last_offset,
                        log_start_offset: log.log_start_offset(),
                        duplicate: true,
                        log_append_time_ms: -1,
                    };
                    // The original may still be waiting for its sync: so does its retry.
                    return Ok((appended, log.sync_wait_through(last_offset + 1)));
                }
                SequenceCheck::OutOfOrder { expected } => {
                    return Err(PartitionError::OutOfOrderSequence { expected, received: batch.base_sequence })
                }
                SequenceCheck::FencedEpoch { current } => {
                    return Err(PartitionError::InvalidProducerEpoch { current, received: batch.producer_epoch })
                }
            }
        }
        let leader_epoch = state.leadership.leader_epoch;
        let mut log = state.log.take().ok_or(PartitionError::NotLeader)?;
        let appended = log.append_unsynced(records, leader_epoch);
        let (info, sync) = match appended {
            Ok(appended) => appended,
            Err(error) => {
                state.log = Some(log);
                return Err(error.into());
            }
        };
        let mut next_offset = info.first_offset;
        for batch in &batches {
            let last_offset = next_offset + i64::from(batch.last_offset_delta);
            state.producers.record(batch, next_offset, last_offset);
            next_offset = last_offset + 1;
        }
        let high_watermark = advance_high_watermark(&mut log, &state, self.local_broker);
        let log_start_offset = log.log_start_offset();
        self.log_end.send_replace(log.log_end_offset());
        state.log = Some(log);
        // Published before the lock is released, so the channel sees high watermarks in lock
        // order. Published after it, two appends could publish out of order and move the
        // channel back below a batch already committed: an acks=all produce would then wait
        // for the next append, or for its whole timeout when none comes.
        self.high_watermark.send_if_modified(|current| {
            let changed = *current != high_watermark;
            *current = high_watermark;
            changed
        });
        drop(state);
        let appended = Appended {
            base_offset: info.first_offset,
            last_offset: info.last_offset,
            log_start_offset,
            duplicate: false,
            log_append_time_ms,
        };
        Ok((appended, sync))
    }

    /// Waits for the sync of an [`Partition::append_unsynced`] (nothing to wait for unless
    /// the flush policy syncs appends), then moves the high watermark on. Group commit: the
    /// wait is outside the partition's lock, so the appends arriving meanwhile share the next
    /// fdatasync; the high watermark (capped at what is synced) moves on after it. An error
    /// (never success) if that fsync failed. Blocking.
    pub fn finish_sync(&self, sync: SyncWait) -> Result<(), PartitionError> {
        if sync.is_pending() {
            sync.wait()?;
            self.publish_high_watermark();
        }
        Ok(())
    }

    /// Advances the high watermark once a group commit synced this replica's appends, and
    /// publishes it under the lock (so the channel sees high watermarks in lock order, as
    /// [`Partition::append_unsynced`] explains). Blocking: takes the partition's lock.
    fn publish_high_watermark(&self) {
        let mut state = self.lock();
        let Some(mut log) = state.log.take() else { return };
        let high_watermark = advance_high_watermark(&mut log, &state, self.local_broker);
        state.log = Some(log);
        self.high_watermark.send_if_modified(|current| {
            let changed = *current != high_watermark;
            *current = high_watermark;
            changed
        });
    }

    /// Checks a producer's batches down to every record against the topic's rules
    /// ([`sluice_log::validate`]), which also re-encodes them for the topic's `compression.type`
    /// (followers copy the re-encoded bytes), and stamps the
    /// leader's clock on a `LogAppendTime` topic. Runs outside the partition's lock (only the
    /// rules are read under it), so decoding, decompressing and re-encoding one produce does
    /// not hold up the partition's other appends and reads. Returns the time stamped, or -1.
    fn validate_produced(&self, records: &mut Vec<u8>) -> Result<i64, PartitionError> {
        let policy = {
            let state = self.lock();
            check_leader(&state, self.local_broker)?;
            ValidationPolicy::for_config(state.log.as_ref().ok_or(PartitionError::NotLeader)?.config())
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
        if let Some(stored) = validate_produced(records, &policy, now_ms)? {
            *records = stored;
        }
        if policy.timestamp_type == MessageTimestampType::LogAppendTime {
            stamp_log_append_time(records, now_ms);
            return Ok(now_ms);
        }
        Ok(-1)
    }

    /// Reads committed batches from `offset` (up to the high watermark), at most `max_bytes`
    /// but at least one batch if any is there. `current_leader_epoch` (`-1` = not given) is
    /// checked against ours (KIP-320). Cheap: no file data is read here.
    ///
    /// With `follower_may_serve` (a consumer's Fetch v11+, KIP-392) a follower replica serves
    /// the read too, up to the high watermark it learned from the leader — never above it, so a
    /// consumer there sees only committed records, a little later than at the leader. An offset
    /// above this replica's log end is OFFSET_OUT_OF_RANGE (the consumer asks the leader again);
    /// one between its high watermark and log end reads nothing yet.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: u64,
        current_leader_epoch: i32,
        follower_may_serve: bool,
    ) -> Result<ReadOutcome, PartitionError> {
        let state = self.lock();
        if !(follower_may_serve && serves_as_follower(&state, self.local_broker)) {
            check_leader(&state, self.local_broker)?;
        }
        check_leader_epoch(&state.leadership, current_leader_epoch)?;
        self.check_log_whole()?;
        let log = state.log.as_ref().ok_or(PartitionError::NotLeader)?;
        let high_watermark = log.high_watermark();
        let result = log.read(offset, max_bytes, high_watermark)?;
        Ok(ReadOutcome {
            regions: result.regions,
            bytes: result.bytes,
            high_watermark,
            log_start_offset: log.log_start_offset(),
            leader_epoch: state.leadership.leader_epoch,
        })
    }

    /// KIP-392: the in-sync follower on the consumer's rack a consumer fetching `fetch_offset`
    /// here should be sent to, chosen from `on_client_rack` (live replicas on that rack, in
    /// replica order) by [`replica::preferred_read_replica`]; `None` when this broker does not
    /// lead, the consumer's `current_leader_epoch` is not this leader's (the read then answers
    /// with the epoch error, so a stale consumer is fenced before it is sent anywhere), or none
    /// qualifies. Cheap: progress in memory, under the partition's lock.
    pub fn preferred_read_replica(
        &self,
        on_client_rack: &[BrokerId],
        fetch_offset: i64,
        current_leader_epoch: i32,
    ) -> Option<BrokerId> {
        if on_client_rack.is_empty() {
            return None;
        }
        let state = self.lock();
        check_leader(&state, self.local_broker).ok()?;
        check_leader_epoch(&state.leadership, current_leader_epoch).ok()?;
        replica::preferred_read_replica(
            self.local_broker,
            on_client_rack,
            &state.leadership.isr,
            &state.followers,
            fetch_offset,
        )
    }

    /// Reads batches from `offset` up to the log end, not the high watermark, as leader: the
    /// group coordinator's replay of `__consumer_offsets` (see `coordinator::shard::replay` for
    /// why). Never serves clients. At most `max_bytes` but at least one batch if any is there.
    /// Cheap: no file data is read here.
    pub fn read_to_log_end(&self, offset: i64, max_bytes: u64) -> Result<ReadOutcome, PartitionError> {
        let state = self.lock();
        check_leader(&state, self.local_broker)?;
        let log = state.log.as_ref().ok_or(PartitionError::NotLeader)?;
        let result = log.read(offset, max_bytes, log.log_end_offset())?;
        Ok(ReadOutcome {
            regions: result.regions,
            bytes: result.bytes,
            high_watermark: log.high_watermark(),
            log_start_offset: log.log_start_offset(),
            leader_epoch: state.leadership.leader_epoch,
        })
    }

    /// Serves a follower's fetch as leader (Kafka's `Partition.fetchRecords` for a replica):
    /// checks leadership and the follower's leader epoch, detects divergence, records the
    /// follower's progress (which may advance the high watermark, waking acks=all produces),
    /// and reads from `fetch_offset` up to the log end. Cheap: no file data is read here.
    #[allow(clippy::too_many_arguments)]
    pub fn read_for_follower(
        &self,
        follower: BrokerId,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        current_leader_epoch: i32,
        max_bytes: u64,
        arrived_partition_epoch: i32,
    ) -> Result<FollowerRead, PartitionError> {
        let mut state = self.lock();
        check_leader(&state, self.local_broker)?;
        check_leader_epoch(&state.leadership, current_leader_epoch)?;
        if state.leadership.partition_epoch != arrived_partition_epoch {
            // The assignment changed while this fetch waited here: its offset was chosen under
            // the old one (maybe by a replica since removed and added back empty), so it is not
            // this follower's progress now. Answered at once, without records; the follower
            // fetches again with what it knows.
            return Err(PartitionError::AssignmentChanged);
        }
        if !state.leadership.replicas.contains(&follower) || follower == self.local_broker {
            return Err(PartitionError::NotLeader);
        }
        self.check_log_whole()?;
        let mut log = state.log.take().ok_or(PartitionError::NotLeader)?;
        let log_end = log.log_end_offset();
        let leader_epoch = state.leadership.leader_epoch;
        let diverging =
            replica::divergence(log.leader_epochs().entries(), leader_epoch, log_end, fetch_offset, last_fetched_epoch);
        let log_start = log.log_start_offset();
        if diverging.is_none() && (fetch_offset < log_start || fetch_offset > log_end) {
            state.log = Some(log);
            let error = sluice_log::LogError::OffsetOutOfRange { offset: fetch_offset, log_start, log_end };
            return Err(PartitionError::Log(error));
        }
        if diverging.is_none() {
            let previous = state.followers.get(&follower).copied();
            let progress = replica::follower_fetched(previous, fetch_offset, log_end, monotonic_ms());
            state.followers.insert(follower, progress);
        }
        let high_watermark = advance_high_watermark(&mut log, &state, self.local_broker);
        let read = match diverging {
            Some(_) => None,
            None => Some(log.read(fetch_offset, max_bytes, log_end)),
        };
        let log_start_offset = log.log_start_offset();
        state.log = Some(log);
        self.high_watermark.send_if_modified(|current| {
            let changed = *current != high_watermark;
            *current = high_watermark;
            changed
        });
        // Joining, or an ISR member fetching below the high watermark: it lost committed records
        // (it cut a damaged batch, `crate::partition::damage`) and must leave at once.
        let in_isr = state.leadership.isr.contains(&follower);
        let isr_change_wanted = diverging.is_none() && (in_isr != (fetch_offset >= high_watermark));
        let (regions, bytes) = match read.transpose()? {
            Some(result) => (result.regions, result.bytes),
            None => (Vec::new(), 0),
        };
        Ok(FollowerRead { regions, bytes, high_watermark, log_start_offset, diverging, isr_change_wanted })
    }

    /// The ISR this leader should propose now, if it differs from the current one (followers
    /// lagging past `replica.lag.time.max.ms` leave, caught-up `live` replicas join).
    pub fn isr_proposal(&self, live: &[BrokerId]) -> Option<IsrProposal> {
        let state = self.lock();
        if check_leader(&state, self.local_broker).is_err() {
            return None;
        }
        let log = state.log.as_ref()?;
        let leadership = &state.leadership;
        let isr = replica::desired_isr(&replica::IsrCheck {
            leader: self.local_broker,
            replicas: &leadership.replicas,
            isr: &leadership.isr,
            followers: &state.followers,
            high_watermark: log.high_watermark(),
            now_ms: monotonic_ms(),
            replica_lag_time_ms: leadership.replica_lag_time_ms,
            live,
        })?;
        Some(IsrProposal { leader_epoch: leadership.leader_epoch, partition_epoch: leadership.partition_epoch, isr })
    }

    /// Where the replica fetcher fetches from next; `None` when this broker leads the
    /// partition or it is closed.
    pub fn fetch_position(&self) -> Option<FetchPosition> {
        if self.retired.load(Ordering::Acquire) {
            return None;
        }
        let state = self.lock();
        if state.leadership.is_leader(self.local_broker) {
            return None;
        }
        let log = state.log.as_ref()?;
        Some(FetchPosition {
            fetch_offset: log.log_end_offset(),
            last_fetched_epoch: log.leader_epochs().entries().last().map_or(-1, |entry| entry.epoch),
            current_leader_epoch: state.leadership.leader_epoch,
            log_start_offset: log.log_start_offset(),
        })
    }

    /// Appends batches copied from the leader (follower side): offsets and epochs as the
    /// leader assigned them; the producer state follows, so this replica can lead with the
    /// same idempotence state. Then the high watermark becomes the leader's, bounded by what
    /// this log holds. `leader_epoch` is the epoch the fetch was made under: if this replica's
    /// leadership changed since, nothing is appended. `fetch_offset` is where the fetch asked
    /// from: if the log end moved since (the repair of a damaged batch cut the log meanwhile),
    /// nothing is appended either — the log accepts gaps (compaction leaves them), so the
    /// records would otherwise land above a hole. Blocking.
    pub fn append_as_follower(
        &self,
        records: &[u8],
        leader_high_watermark: i64,
        leader_log_start: i64,
        leader_epoch: i32,
        fetch_offset: i64,
    ) -> Result<(), PartitionError> {
        let mut state = self.lock();
        if state.leadership.is_leader(self.local_broker) || state.leadership.leader_epoch != leader_epoch {
            return Err(PartitionError::NotLeader);
        }
        let mut log = state.log.take().ok_or(PartitionError::NotLeader)?;
        if !records.is_empty() && log.log_end_offset() != fetch_offset {
            let log_end = log.log_end_offset();
            state.log = Some(log);
            return Err(LogError::NonContiguous { base_offset: fetch_offset, log_end }.into());
        }
        if !records.is_empty() {
            if let Err(error) = log.append_replicated(records) {
                state.log = Some(log);
                return Err(error.into());
            }
            for header in batch_headers(records) {
                let batch = ProducerBatch {
                    producer_id: header.producer_id,
                    producer_epoch: header.producer_epoch,
                    base_sequence: header.base_sequence,
                    last_offset_delta: header.last_offset_delta,
                    max_timestamp: header.max_timestamp,
                };
                state.producers.record(&batch, header.base_offset, header.last_offset());
            }
        }
        log.set_high_watermark(leader_high_watermark.min(log.log_end_offset()));
        let high_watermark = log.high_watermark();
        // The leader's DeleteRecords (or retention) moved its log start: follow, up to what
        // this replica knows is committed (Kafka's follower does the same).
        let log_start = leader_log_start.min(high_watermark);
        if log_start > log.log_start_offset() {
            if let Err(error) = log.delete_records_before(log_start) {
                state.log = Some(log);
                return Err(error.into());
            }
        }
        self.log_end.send_replace(log.log_end_offset());
        state.log = Some(log);
        self.high_watermark.send_if_modified(|current| {
            let changed = *current != high_watermark;
            *current = high_watermark;
            changed
        });
        Ok(())
    }

    /// Truncates a follower's log where the leader said it diverged (KIP-101/KIP-320), or,
    /// when the follower is below the leader's log start, empties it and starts at
    /// `leader_log_start`. The producer state is rebuilt from what remains. Blocking.
    pub fn truncate_as_follower(&self, truncation: Truncation, leader_epoch: i32) -> Result<i64, PartitionError> {
        let mut state = self.lock();
        if state.leadership.is_leader(self.local_broker) || state.leadership.leader_epoch != leader_epoch {
            return Err(PartitionError::NotLeader);
        }
        let mut log = state.log.take().ok_or(PartitionError::NotLeader)?;
        let before = log.log_end_offset();
        let result = match truncation {
            Truncation::Diverged { epoch, end_offset } => {
                let own = log.end_offset_for_epoch(epoch);
                let offset = replica::truncation_offset((epoch, end_offset), own, log.log_start_offset(), before);
                log.truncate_to(offset).map(|_| ())
            }
            Truncation::StartAt(offset) => log.truncate_fully_and_start_at(offset),
            Truncation::To(offset) => log.truncate_to(offset).map(|_| ()),
        };
        let outcome = result.map_err(PartitionError::from).and_then(|()| {
            state.producers = rebuild_producer_states(&log)?;
            Ok(log.log_end_offset())
        });
        let log_end = log.log_end_offset();
        state.log = Some(log);
        if let Ok(after) = outcome {
            tracing::warn!(
                topic = self.topic,
                partition = self.index,
                ?truncation,
                log_end_before = before,
                log_end_after = after,
                "follower truncated its log to the leader's"
            );
        }
        self.log_end.send_replace(log_end);
        outcome
    }

    /// Records that a read from `fetch_offset` of this replica's log found a damaged batch
    /// (`error` is [`PartitionError::DamagedBatch`]; other errors are ignored). The first
    /// report logs one ERROR line naming the partition, the offset and the segment file;
    /// `crate::replication::repair` takes it from there. Returns whether this is new damage
    /// (then the repair task should be woken). Blocking (takes the state's lock).
    pub fn report_damage(&self, fetch_offset: i64, error: &PartitionError) -> bool {
        let PartitionError::DamagedBatch { intact_end, claimed_offset, .. } = error else { return false };
        let offset = damaged_batch_offset(fetch_offset, *intact_end);
        let file = {
            let state = self.lock();
            let Some(log) = state.log.as_ref() else { return false };
            let base = log.segment_base_offsets().into_iter().rfind(|base| *base <= offset).unwrap_or(0);
            self.dir.join(format!("{base:020}.log")).display().to_string()
        };
        let mut damage = lock_damage(&self.damage);
        if damage.is_some() {
            return false;
        }
        tracing::error!(
            topic = self.topic,
            partition = self.index,
            offset,
            claimed_offset,
            file,
            "a batch of this replica's log fails its CRC-32C: never served; this replica hands the \
             partition over and refetches it from the new leader"
        );
        *damage = Some(Damage { offset, file, state: DamageState::Found, offline: false });
        true
    }

    /// The damaged batch being repaired here, if any. Lock-free with respect to the state.
    pub fn damage(&self) -> Option<Damage> {
        lock_damage(&self.damage).clone()
    }

    /// Marks the damage as stuck (offline: no other replica can take over) or not.
    pub fn set_damage_offline(&self, offline: bool) {
        if let Some(damage) = lock_damage(&self.damage).as_mut() {
            damage.offline = offline;
        }
    }

    /// The repair is complete: the log holds again what it held before the cut.
    pub fn clear_damage(&self) {
        if let Some(damage) = lock_damage(&self.damage).take() {
            tracing::info!(
                topic = self.topic,
                partition = self.index,
                offset = damage.offset,
                file = damage.file,
                "damaged batch repaired from the leader"
            );
        }
    }

    /// Cuts this follower's log at `offset`, the damaged batch's, so that the replica fetcher
    /// copies it again from the leader; logs one WARN line naming the partition, the offset,
    /// the file and the high watermark (the cut may go below it: those records are on the
    /// leader and come back with the refetch). Refused as leader. Blocking.
    pub fn truncate_damaged(&self, offset: i64) -> Result<(), PartitionError> {
        let (high_watermark, leader_epoch) = {
            let state = self.lock();
            let log = state.log.as_ref().ok_or(PartitionError::NotLeader)?;
            (log.high_watermark(), state.leadership.leader_epoch)
        };
        let file = self.damage().map(|damage| damage.file).unwrap_or_default();
        tracing::warn!(
            topic = self.topic,
            partition = self.index,
            offset,
            file,
            high_watermark,
            "cutting this replica's log below a damaged batch to refetch it from the leader"
        );
        self.truncate_as_follower(Truncation::To(offset), leader_epoch)?;
        if let Some(damage) = lock_damage(&self.damage).as_mut() {
            damage.state = DamageState::Repairing { until: high_watermark.max(offset) };
        }
        Ok(())
    }

    /// Refuses to serve, append, or answer for its offsets (ListOffsets, OffsetForLeaderEpoch,
    /// DeleteRecords) while this replica's log is cut for a repair (it lacks committed records
    /// until the refetch is done): it is then elected only by accident — before the new leader
    /// dropped it from the ISR — and hands the leadership over again. Followers fetching from
    /// it get KAFKA_STORAGE_ERROR, never a log end that would make them truncate.
    fn check_log_whole(&self) -> Result<(), PartitionError> {
        match lock_damage(&self.damage).as_ref() {
            Some(Damage { state: DamageState::Repairing { until }, offset, .. }) => {
                let reason = format!(
                    "the log was cut at offset {offset} to repair a damaged batch and holds committed \
                     records again only from {until} on: not served here"
                );
                let source = std::io::Error::other(reason);
                Err(PartitionError::Io { path: self.dir.clone(), source })
            }
            _ => Ok(()),
        }
    }

    /// Waits until the high watermark reaches `offset`, or `wait` passes (REQUEST_TIMED_OUT, or
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR is smaller than `min.insync.replicas`
    /// then), or the partition closes or loses its leadership (NOT_LEADER_OR_FOLLOWER).
    /// Reached with an ISR below `min.insync.replicas` (it shrank after the append) is
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND too, as in Kafka.
    pub async fn wait_for_high_watermark(&self, offset: i64, wait: Duration) -> Result<(), i16> {
        let mut high_watermark = self.watch_high_watermark();
        // The `Ref` that `wait_for` returns holds the channel's read lock: drop it before taking
        // the partition's lock below, or an append (which publishes under that lock) deadlocks.
        // Losing the leadership (or closing) ends the wait at once: the channel is woken then,
        // and the client retries at the new leader instead of waiting out its timeout.
        let leading = || self.leading.load(Ordering::Acquire);
        let reached = tokio::time::timeout(wait, high_watermark.wait_for(|hw| *hw >= offset || !leading()))
            .await
            .map(|found| found.map(|hw| *hw >= offset));
        if matches!(reached, Ok(Ok(false))) {
            return Err(kafka_code::NOT_LEADER_OR_FOLLOWER);
        }
        let enough_replicas = || {
            let leadership = self.leadership();
            replica::enough_replicas_for_acks_all(&leadership.isr, leadership.min_insync_replicas)
        };
        match reached {
            Ok(Ok(_)) if enough_replicas() => Ok(()),
            Ok(Ok(_)) => Err(kafka_code::NOT_ENOUGH_REPLICAS_AFTER_APPEND),
            Ok(Err(_)) => Err(kafka_code::NOT_LEADER_OR_FOLLOWER),
            Err(_) if !enough_replicas() => Err(kafka_code::NOT_ENOUGH_REPLICAS_AFTER_APPEND),
            Err(_) => Err(kafka_code::REQUEST_TIMED_OUT),
        }
    }

    /// ListOffsets: `-2` earliest, `-1` latest (the high watermark), `-3` the first record
    /// with the largest timestamp, `-4` the earliest offset kept locally (the log start: there
    /// is no tiered storage), `-5` the latest tiered offset ((-1, -1, -1): nothing is tiered,
    /// as Kafka answers without remote storage), otherwise the first record at or after the
    /// timestamp; (-1, -1, -1) when there is none below the high watermark. Returns (offset,
    /// timestamp, leader epoch of that offset). Blocking (may read one batch).
    pub fn offset_for(&self, timestamp: i64, current_leader_epoch: i32) -> Result<(i64, i64, i32), PartitionError> {
        let state = self.lock();
        check_leader(&state, self.local_broker)?;
        check_leader_epoch(&state.leadership, current_leader_epoch)?;
        self.check_log_whole()?;
        let log = state.log.as_ref().ok_or(PartitionError::NotLeader)?;
        let epoch_of = |offset: i64| {
            log.leader_epochs()
                .entries()
                .iter()
                .rev()
                .find(|entry| entry.start_offset <= offset)
                .map_or(state.leadership.leader_epoch, |entry| entry.epoch)
        };
        // As Kafka: while this leader's high watermark is below where its leadership began,
        // "latest" (and a lookup that finds nothing below it) would answer an offset below
        // records the previous leader acknowledged; the client retries instead.
        let high_watermark = log.high_watermark();
        let not_available =
            || PartitionError::OffsetNotAvailable { high_watermark, epoch_start: state.epoch_start_offset };
        let available = high_watermark >= state.epoch_start_offset;
        Ok(match timestamp {
            EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => {
                let offset = log.log_start_offset();
                (offset, -1, epoch_of(offset))
            }
            LATEST_TIMESTAMP if !available => return Err(not_available()),
            LATEST_TIMESTAMP => (high_watermark, -1, state.leadership.leader_epoch),
            LATEST_TIERED_TIMESTAMP => (-1, -1, -1),
            MAX_TIMESTAMP => match log.offset_of_max_timestamp()? {
                Some((offset, found)) if offset < high_watermark => (offset, found, epoch_of(offset)),
                _ if !available => return Err(not_available()),
                _ => (-1, -1, -1),
            },
            timestamp => match log.offset_for_timestamp(timestamp)? {
                Some((offset, found)) if offset < high_watermark => (offset, found, epoch_of(offset)),
                _ if !available => return Err(not_available()),
                _ => (-1, -1, -1),
            },
        })
    }

    /// ListOffsets from the debugging replica id: this replica's own log start (`-2`, `-4`) or
    /// log end (`-1`), leader or follower; other timestamps are answered as a leader would.
    pub fn local_offset_for(&self, timestamp: i64) -> Result<(i64, i64, i32), PartitionError> {
        let state = self.lock();
        let log = state.log.as_ref().ok_or(PartitionError::NotLeader)?;
        let epoch = log.leader_epochs().entries().last().map_or(-1, |entry| entry.epoch);
        match timestamp {
            EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => Ok((log.log_start_offset(), -1, epoch)),
            LATEST_TIMESTAMP => Ok((log.log_end_offset(), -1, epoch)),
            _ => {
                drop(state);
                self.offset_for(timestamp, -1)
            }
        }
    }

    /// DeleteRecords on the leader: moves the log start to `offset`, or to the high watermark
    /// for [`DELETE_TO_HIGH_WATERMARK`]; above the high watermark is `OffsetOutOfRange`.
    /// Followers follow through the log start in their fetch answers
    /// ([`Partition::append_as_follower`]). Returns the new log start (Kafka's low watermark
    /// as this replica sees it). Blocking (deletes segment files).
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, PartitionError> {
        let mut state = self.lock();
        check_leader(&state, self.local_broker)?;
        self.check_log_whole()?;
        let log = state.log.as_mut().ok_or(PartitionError::NotLeader)?;
        let offset = if offset == DELETE_TO_HIGH_WATERMARK { log.high_watermark() } else { offset };
        Ok(log.delete_records_before(offset)?)
    }

    /// OffsetForLeaderEpoch: where `epoch` ended in this log, as (epoch, end offset); see
    /// [`replica::end_offset_for`].
    pub fn end_offset_for_epoch(&self, epoch: i32, current_leader_epoch: i32) -> Result<(i32, i64), PartitionError> {
        let state = self.lock();
        check_leader(&state, self.local_broker)?;
        check_leader_epoch(&state.leadership, current_leader_epoch)?;
        self.check_log_whole()?;
        let log = state.log.as_ref().ok_or(PartitionError::NotLeader)?;
        Ok(replica::end_offset_for(
            log.leader_epochs().entries(),
            state.leadership.leader_epoch,
            log.log_end_offset(),
            epoch,
        ))
    }

    /// Periodic work: a due flush always; retention and compaction, and the checkpoint (with
    /// the closing of sealed segments' descriptors unused since the last one), when `work`
    /// says. Blocking.
    pub fn maintain(&self, work: Maintenance) -> Result<(), PartitionError> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(log) = state.log.as_mut() else { return Ok(()) };
        log.flush_if_due()?;
        if work.retention {
            log.apply_retention()?;
            // Only when due by the topic's dirty ratio or maximum compaction lag (deciding
            // reads nothing); a pass reads every cleanable segment to build its key map.
            log.compact_if_due()?;
        }
        if work.checkpoint {
            // Sealed segments read since the last pass keep their descriptors; others close.
            log.release_unused_files();
        }
        let offsets = Some((log.log_start_offset(), log.high_watermark(), log.log_end_offset()));
        if work.checkpoint && state.checkpointed != offsets {
            log.checkpoint()?;
            state.checkpointed = offsets;
        }
        Ok(())
    }

    /// Why the log refuses appends, if it does (`/ready` names it). A log that found the disk
    /// full first probes whether there is space again, so that an idle partition recovers
    /// too. Blocking.
    pub fn write_refusal(&self) -> Option<String> {
        let mut state = self.lock();
        let log = state.log.as_mut()?;
        if let Err(error) = log.probe_space() {
            return Some(error.to_string());
        }
        log.write_refusal()
    }

    /// Closes the log cleanly (flush, clean-shutdown marker). Later calls fail with
    /// NOT_LEADER_OR_FOLLOWER. Blocking.
    /// Stops following: the fetcher leaves this replica out from its next fetch on. Called
    /// for every replica a view removes before any of them is closed and deleted, so that no
    /// fetch of a log about to be deleted reaches the leader while the others are being
    /// deleted (the leader would count it as this broker's progress, maybe under a later
    /// assignment that adds the replica back empty).
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    pub fn close(&self) -> Result<(), PartitionError> {
        let mut state = self.lock();
        let log = state.log.take();
        self.leading.store(false, Ordering::Release);
        drop(state);
        self.high_watermark.send_modify(|_| {});
        self.log_end.send_modify(|_| {});
        match log {
            Some(log) => log.close().map_err(PartitionError::from),
            None => Ok(()),
        }
    }

    /// Log start offset, log end offset and bytes on disk (for metrics). Takes the lock.
    pub fn log_stats(&self) -> Option<(i64, i64, u64)> {
        let state = self.lock();
        state.log.as_ref().map(|log| (log.log_start_offset(), log.log_end_offset(), log.size_bytes()))
    }

    /// The idempotent producers with state here, by producer id (DescribeProducers). Only the
    /// leader answers, as in Kafka.
    pub fn active_producers(&self) -> Result<Vec<ActiveProducer>, PartitionError> {
        let state = self.lock();
        check_leader(&state, self.local_broker)?;
        Ok(state.producers.active())
    }

    /// Bytes of the log's segment files (DescribeLogDirs); `None` while the log is not open.
    pub fn size_bytes(&self) -> Option<u64> {
        self.lock().log.as_ref().map(|log| log.size_bytes())
    }

    /// Log end offset, high watermark and log start offset (for tests and the admin page).
    pub fn offsets(&self) -> Option<(i64, i64, i64)> {
        let state = self.lock();
        state.log.as_ref().map(|log| (log.log_end_offset(), log.high_watermark(), log.log_start_offset()))
    }
}

/// Which periodic work a maintenance pass does besides due flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Maintenance {
    /// Apply retention and compact.
    pub retention: bool,
    /// Write the checkpoint (high watermark, recovery point).
    pub checkpoint: bool,
}

/// How a follower's log is cut back to the leader's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// The leader answered a fetch with a diverging epoch and its end offset there.
    Diverged {
        /// Diverging epoch.
        epoch: i32,
        /// Where it ends on the leader.
        end_offset: i64,
    },
    /// The follower is below the leader's log start: empty the log and start here.
    StartAt(i64),
    /// Cut at this offset (the follower is past the leader's log end and no epoch says where
    /// they diverged: keep only what the leader committed).
    To(i64),
}

/// Copies whole batches from the segment files into one buffer, as stored (`pread`), and
/// checks every batch's CRC-32C before anything is sent: a batch damaged on disk below the
/// recovery point (where opening the log trusts the files) is an I/O error
/// (KAFKA_STORAGE_ERROR for that partition, logged by the caller), never bytes for a consumer
/// or a follower. Blocking. Used by consumer and replica fetches and the group coordinator's
/// loading.
pub fn read_regions(regions: &[FileRegion], bytes: u64) -> Result<bytes::Bytes, PartitionError> {
    match read_regions_intact(regions, bytes)? {
        (records, None) => Ok(records),
        (_, Some(damaged)) => Err(damaged),
    }
}

/// [`read_regions`] for a fetch: the intact batches before a damaged one are still returned
/// (a consumer gets everything up to the damaged batch, then the error at its offset), with
/// the [`PartitionError::DamagedBatch`] found after them. Blocking.
pub fn read_regions_intact(
    regions: &[FileRegion],
    bytes: u64,
) -> Result<(bytes::Bytes, Option<PartitionError>), PartitionError> {
    let mut buffer = bytes::BytesMut::zeroed(usize::try_from(bytes).unwrap_or(usize::MAX));
    let mut position = 0usize;
    for region in regions {
        let len = region.len as usize;
        region
            .read_into(&mut buffer[position..position + len])
            .map_err(|source| PartitionError::Io { path: "segment".into(), source })?;
        position += len;
    }
    if let Some((position, claimed_offset)) = sluice_log::batch::first_damaged_batch(&buffer) {
        let intact_end = batch_headers(&buffer[..position]).last().map(|header| header.last_offset() + 1);
        buffer.truncate(position);
        return Ok((
            buffer.freeze(),
            Some(PartitionError::DamagedBatch { position, bytes, claimed_offset, intact_end }),
        ));
    }
    Ok((buffer.freeze(), None))
}

fn lock_damage(damage: &Mutex<Option<Damage>>) -> MutexGuard<'_, Option<Damage>> {
    damage.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts a leadership's follower records: each other ISR member counts as caught up now and
/// at the high watermark, so it keeps its place for one lag time even if it never fetches
/// (then it leaves), and holds the high watermark where it is until it fetches.
fn seed_followers(state: &mut State, high_watermark: i64, local_broker: BrokerId) {
    state.followers.clear();
    if !state.leadership.is_leader(local_broker) {
        return;
    }
    let now = monotonic_ms();
    for replica in state.leadership.isr.iter().filter(|r| **r != local_broker) {
        let seeded = FollowerProgress {
            log_end_offset: high_watermark,
            last_caught_up_ms: now,
            // Never reached: the first fetch counts as caught up only if it asks for the log end.
            last_fetch_leader_log_end: i64::MAX,
            last_fetch_ms: now,
        };
        state.followers.insert(*replica, seeded);
    }
}

/// The headers of the whole batches in `records` (already validated by the log).
fn batch_headers(records: &[u8]) -> impl Iterator<Item = BatchHeader> + '_ {
    let mut position = 0;
    std::iter::from_fn(move || {
        let header = records.get(position..).and_then(BatchHeader::parse)?;
        position += header.total_bytes();
        Some(header)
    })
}

/// RecordBatch v2's magic byte, the only format this broker accepts.
const BATCH_MAGIC: i8 = 2;

/// ListOffsets' special timestamp for the earliest offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets' special timestamp for the latest offset.
pub const LATEST_TIMESTAMP: i64 = -1;
/// ListOffsets' special timestamp (v7+) for the first record with the largest timestamp.
pub const MAX_TIMESTAMP: i64 = -3;
/// ListOffsets' special timestamp (v8+, KIP-405) for the earliest offset in local storage.
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
/// ListOffsets' special timestamp (v9+, KIP-1005) for the latest offset in tiered storage.
pub const LATEST_TIERED_TIMESTAMP: i64 = -5;
/// DeleteRecords' offset meaning "up to the high watermark" (Kafka's
/// `DeleteRecordsRequest.HIGH_WATERMARK`).
pub const DELETE_TO_HIGH_WATERMARK: i64 = -1;

fn check_leader(state: &State, local_broker: BrokerId) -> Result<(), PartitionError> {
    if state.log.is_none() || state.leadership.leader != Some(local_broker) {
        return Err(PartitionError::NotLeader);
    }
    Ok(())
}

/// Whether this broker holds an open follower replica of a partition that has a leader: such
/// a replica may serve consumers up to its high watermark (KIP-392).
fn serves_as_follower(state: &State, local_broker: BrokerId) -> bool {
    state.log.is_some()
        && state.leadership.leader.is_some_and(|leader| leader != local_broker)
        && state.leadership.replicas.contains(&local_broker)
}

fn check_leader_epoch(leadership: &Leadership, requested: i32) -> Result<(), PartitionError> {
    if requested < 0 || requested == leadership.leader_epoch {
        Ok(())
    } else if requested < leadership.leader_epoch {
        Err(PartitionError::FencedLeaderEpoch)
    } else {
        Err(PartitionError::UnknownLeaderEpoch)
    }
}

/// Moves the log's high watermark as the leader's rules say and returns it. The leader's own
/// replica counts up to what it has synced under `flush.messages=1` (group commit acknowledges
/// an append only after its sync, and consumers never read an unsynced record there), up to
/// its log end otherwise.
fn advance_high_watermark(log: &mut Log, state: &State, local_broker: BrokerId) -> i64 {
    if state.leadership.leader == Some(local_broker) {
        let high_watermark = replica::high_watermark(
            local_broker,
            log.durable_end_offset(),
            &state.leadership.isr,
            &state.followers,
            log.high_watermark(),
        );
        log.set_high_watermark(high_watermark);
    }
    log.high_watermark()
}

/// The producer fields of every batch in a produce request's records.
///
/// For an idempotent batch the header decides whether the batch is a duplicate or out of
/// order, so it must be trusted before the log's own validation runs: its framing and CRC-32C
/// are checked here (Kafka validates records before producer state too). A corrupted retry is
/// thus CORRUPT_MESSAGE, never "a duplicate, already written". Batches without a producer id
/// are left to the log. Stops at broken framing in a plain batch; the log rejects it then.
fn producer_batches(records: &[u8]) -> Result<Vec<ProducerBatch>, LogError> {
    let mut batches = Vec::new();
    let mut position = 0;
    while position < records.len() {
        let Some(header) = records.get(position..).and_then(BatchHeader::parse) else { break };
        let total = header.total_bytes();
        let batch = ProducerBatch {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            last_offset_delta: header.last_offset_delta,
            max_timestamp: header.max_timestamp,
        };
        let framed = total >= BATCH_HEADER_BYTES;
        let Some(bytes) = records.get(position..position + total).filter(|_| framed) else {
            if batch.is_idempotent() {
                return Err(LogError::InvalidBatch { position, reason: "batch length outside the records" });
            }
            break;
        };
        if batch.is_idempotent() {
            if header.magic != BATCH_MAGIC {
                return Err(LogError::InvalidBatch { position, reason: "idempotent batch with magic other than 2" });
            }
            let computed = compute_crc(bytes);
            if computed != header.crc {
                return Err(LogError::CorruptBatch { position, stored: header.crc, computed });
            }
        }
        batches.push(batch);
        position += total;
    }
    Ok(batches)
}

/// Replays every batch header of the log into a fresh producer state.
fn rebuild_producer_states(log: &Log) -> Result<ProducerStates, LogError> {
    let mut states = ProducerStates::default();
    log.for_each_batch_header(log.log_start_offset(), |header| {
        let batch = ProducerBatch {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            last_offset_delta: header.last_offset_delta,
            max_timestamp: header.max_timestamp,
        };
        states.record(&batch, header.base_offset, header.last_offset());
        true
    })?;
    Ok(states)
}

fn write_partition_metadata(dir: &Path, topic_id: Uuid) -> Result<(), PartitionError> {
    let path = dir.join(PARTITION_METADATA_FILE);
    if read_partition_metadata(dir) == Some(topic_id) {
        return Ok(());
    }
    let io = |source| PartitionError::Io { path: path.clone(), source };
    let tmp = dir.join(format!("{PARTITION_METADATA_FILE}.tmp"));
    std::fs::write(&tmp, format!("version: 0\ntopic_id: {topic_id}\n")).map_err(io)?;
    std::fs::File::open(&tmp).and_then(|file| file.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(())
}

/// The topic id a partition directory belongs to, if it says.
pub fn read_partition_metadata(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA_FILE)).ok()?;
    text.lines().find_map(|line| line.strip_prefix("topic_id: ")).and_then(|id| id.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::records::{build_record_batch, BatchOptions, ProducedRecord, ProducerIdentity};

    fn batch(producer_id: i64) -> Vec<u8> {
        let record = ProducedRecord { value: Some(bytes::Bytes::from_static(b"v")), ..ProducedRecord::default() };
        let producer = ProducerIdentity { producer_id, producer_epoch: 0, base_sequence: 0 };
        build_record_batch(&[record], &BatchOptions { producer, ..BatchOptions::default() }).unwrap().to_vec()
    }

    #[test]
    fn idempotent_batches_are_checked_before_their_header_is_trusted() {
        let good = batch(5);
        assert_eq!(producer_batches(&good).unwrap().len(), 1);
        let mut corrupt = good.clone();
        *corrupt.last_mut().unwrap() ^= 1;
        assert!(matches!(producer_batches(&corrupt), Err(LogError::CorruptBatch { .. })));
        assert!(matches!(producer_batches(&good[..good.len() - 1]), Err(LogError::InvalidBatch { .. })));
        // A batch length too small to hold a header.
        let mut short = good.clone();
        short[8..12].copy_from_slice(&0i32.to_be_bytes());
        assert!(matches!(producer_batches(&short), Err(LogError::InvalidBatch { .. })));
        // Plain batches are left to the log, whatever their state.
        let mut plain = batch(-1);
        *plain.last_mut().unwrap() ^= 1;
        assert_eq!(producer_batches(&plain).unwrap().len(), 1);
        assert!(producer_batches(&plain[..30]).unwrap().is_empty());
    }

    /// A batch of `records` records from producer 42, epoch 0, starting at `base_sequence`, as a
    /// producer sends it (offsets and leader epoch are the leader's to assign).
    fn producer_batch(base_sequence: i32, records: usize) -> Vec<u8> {
        let record = ProducedRecord { value: Some(bytes::Bytes::from_static(b"v")), ..ProducedRecord::default() };
        let producer = ProducerIdentity { producer_id: 42, producer_epoch: 0, base_sequence };
        build_record_batch(&vec![record; records], &BatchOptions { producer, ..BatchOptions::default() })
            .unwrap()
            .to_vec()
    }

    fn leadership(leader: BrokerId, leader_epoch: i32) -> Leadership {
        Leadership {
            leader: Some(leader),
            leader_epoch,
            replicas: vec![1, 2],
            isr: vec![1, 2],
            partition_epoch: leader_epoch,
            min_insync_replicas: 1,
            replica_lag_time_ms: 30_000,
        }
    }

    #[test]
    fn flush_messages_1_appends_share_fsyncs_and_are_committed_only_once_synced() {
        // Goal: under flush.messages=1 concurrent produces to one partition share fdatasyncs
        // (group commit: the append waits for its sync outside the partition's lock), every
        // append returns with its records synced and committed (the published high watermark
        // is past them), and the high watermark never counts an unsynced record.
        // Method: a partition led alone; 6 threads append 15 batches each while every sync
        // takes 2 ms longer (the observer sleeps), counting the policy syncs.
        const THREADS: usize = 6;
        const APPENDS_PER_THREAD: usize = 15;
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { flush: sluice_log::FlushPolicy::EveryBatch, ..LogConfig::default() };
        let alone = Leadership { replicas: vec![1], isr: vec![1], ..leadership(1, 1) };
        let partition =
            std::sync::Arc::new(Partition::open(dir.path(), "t", 0, Uuid::nil(), 1, config, alone).unwrap());
        let policy_syncs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&policy_syncs);
        partition.observe_syncs(std::sync::Arc::new(move |cause: sluice_log::SyncCause, _: Duration| {
            if cause == sluice_log::SyncCause::Policy {
                counted.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        }));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let partition = std::sync::Arc::clone(&partition);
                std::thread::spawn(move || {
                    for _ in 0..APPENDS_PER_THREAD {
                        let appended = partition.append(&mut batch(-1), false).unwrap();
                        assert!(partition.high_watermark_now() > appended.last_offset, "committed when acknowledged");
                        let state = partition.lock();
                        let log = state.log.as_ref().unwrap();
                        assert!(log.high_watermark() <= log.durable_end_offset(), "no unsynced record is committed");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let appends = THREADS * APPENDS_PER_THREAD;
        let syncs = policy_syncs.load(Ordering::Relaxed);
        assert!(syncs >= 1 && syncs < appends, "{syncs} fdatasyncs for {appends} appends");
        assert_eq!(partition.high_watermark_now(), appends as i64);
    }

    #[test]
    fn a_retried_duplicate_is_acknowledged_only_once_its_original_is_synced() {
        // Goal: under flush.messages=1, a retried batch found to be a duplicate is answered
        // only once a sync covers the original, which may still be waiting for its own (a
        // retry on a new connection while the first request waits). Method: append a
        // producer batch without waiting for its sync, append it again; the duplicate's wait
        // must be pending until a sync, and then the original's is covered too.
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { flush: sluice_log::FlushPolicy::EveryBatch, ..LogConfig::default() };
        let alone = Leadership { replicas: vec![1], isr: vec![1], ..leadership(1, 1) };
        let partition = Partition::open(dir.path(), "t", 0, Uuid::nil(), 1, config, alone).unwrap();
        let (original, original_sync) = partition.append_unsynced(&mut producer_batch(0, 3), false).unwrap();
        assert!(!original.duplicate && original_sync.is_pending());
        let (retry, retry_sync) = partition.append_unsynced(&mut producer_batch(0, 3), false).unwrap();
        assert!(retry.duplicate);
        assert_eq!((retry.base_offset, retry.last_offset), (original.base_offset, original.last_offset));
        assert!(retry_sync.is_pending(), "the original is not synced yet: neither is its retry");
        assert_eq!(partition.high_watermark_now(), 0, "nothing synced, nothing committed");
        partition.finish_sync(retry_sync).unwrap();
        assert_eq!(partition.high_watermark_now(), 3);
        partition.finish_sync(original_sync).unwrap();
        // Once synced, a retry has nothing to wait for.
        let (_, synced_retry) = partition.append_unsynced(&mut producer_batch(0, 3), false).unwrap();
        partition.finish_sync(synced_retry).unwrap();
    }

    #[test]
    fn a_new_leader_answers_offset_not_available_until_its_high_watermark_reaches_its_epoch_start() {
        // Goal: a broker that takes the leadership may know a high watermark below records the
        // previous leader acknowledged (a follower learns it one fetch late); until its
        // followers fetch from it, "latest" must not go back below them. Found by the netns
        // cluster test: a check right after a preferred-leader move read 1241 as the latest
        // offset of a partition whose record 1241 had been acknowledged 300 ms before. Kafka
        // answers OFFSET_NOT_AVAILABLE then (retriable).
        // Method: broker 1 leads epoch 1 with follower 2 in the ISR; 3 records, follower 2
        // fetches them (high watermark 3) and 2 more (the high watermark stays 3 until it
        // fetches again). A new leader epoch starts at log end 5 with the follower's progress
        // reset: latest and a timestamp lookup past the high watermark are refused, earliest
        // and a lookup below the high watermark are answered; once
        // the follower fetches at 5, latest is 5.
        let dir = tempfile::tempdir().unwrap();
        let partition =
            Partition::open(dir.path(), "t", 0, Uuid::nil(), 1, LogConfig::default(), leadership(1, 1)).unwrap();
        assert_eq!(partition.offset_for(LATEST_TIMESTAMP, -1).unwrap().0, 0, "epoch 1 starts at 0");
        partition.append(&mut producer_batch(0, 3), false).unwrap();
        partition.read_for_follower(2, 3, 1, 1, 1 << 20, partition.partition_epoch()).unwrap();
        assert_eq!(partition.offset_for(LATEST_TIMESTAMP, -1).unwrap().0, 3);
        partition.append(&mut producer_batch(3, 2), false).unwrap();
        assert_eq!(partition.offset_for(LATEST_TIMESTAMP, -1).unwrap().0, 3, "the follower has not fetched 3 and 4");

        partition.set_leadership(leadership(1, 2));
        let refused = |timestamp| {
            matches!(
                partition.offset_for(timestamp, -1),
                Err(PartitionError::OffsetNotAvailable { high_watermark: 3, epoch_start: 5 })
            )
        };
        assert!(refused(LATEST_TIMESTAMP), "latest: {:?}", partition.offset_for(LATEST_TIMESTAMP, -1));
        assert!(refused(i64::MAX), "a timestamp after every record");
        assert_eq!(partition.offset_for(EARLIEST_TIMESTAMP, -1).unwrap().0, 0);
        assert_eq!(partition.offset_for(0, -1).unwrap().0, 0, "found below the high watermark");
        assert_eq!(
            PartitionError::OffsetNotAvailable { high_watermark: 3, epoch_start: 5 }.kafka_error_code(),
            crate::kafka_code::OFFSET_NOT_AVAILABLE
        );

        partition.read_for_follower(2, 5, 1, 2, 1 << 20, partition.partition_epoch()).unwrap();
        assert_eq!(partition.offset_for(LATEST_TIMESTAMP, -1).unwrap().0, 5, "caught up: latest is answered");
    }

    #[test]
    fn a_replica_removed_and_added_back_starts_from_nothing() {
        // Goal: a follower that leaves the partition's replicas (a reassignment away) and is
        // added back under the same leader (a reassignment back) is not taken into the ISR on
        // the strength of what it fetched before it left: its log was deleted, so it must fetch
        // up to the log end again. Found by scripts/bench-reassign.sh: the leader's stale record
        // put an empty replica in the ISR within milliseconds and the move completed onto it.
        // Method: broker 1 leads, broker 2 fetches to the log end and is in the ISR; broker 2 is
        // removed from the replicas, then added back outside the ISR; the ISR proposal must
        // not add it until it fetches at the log end again. Then the same jump with the view
        // in between missed.
        let dir = tempfile::tempdir().unwrap();
        let partition =
            Partition::open(dir.path(), "t", 0, Uuid::nil(), 1, LogConfig::default(), leadership(1, 1)).unwrap();
        partition.append(&mut producer_batch(0, 3), false).unwrap();
        let log_end = 3;
        partition.read_for_follower(2, log_end, 1, 1, 1 << 20, partition.partition_epoch()).unwrap();
        let alone = Leadership { replicas: vec![1], isr: vec![1], partition_epoch: 2, ..leadership(1, 1) };
        partition.set_leadership(alone.clone());
        let back = Leadership { replicas: vec![1, 2], isr: vec![1], partition_epoch: 3, ..alone };
        partition.set_leadership(back);
        assert_eq!(partition.isr_proposal(&[1, 2]), None, "nothing fetched since it came back");
        partition.read_for_follower(2, 0, -1, 1, 1 << 20, partition.partition_epoch()).unwrap();
        assert_eq!(partition.isr_proposal(&[1, 2]), None, "behind: fetched from offset 0");
        partition.read_for_follower(2, log_end, 1, 1, 1 << 20, partition.partition_epoch()).unwrap();
        let joined = partition.isr_proposal(&[1, 2]).expect("caught up: it joins");
        assert_eq!(joined.isr, vec![1, 2]);
        // The same, with the view in between never seen (views are applied latest-first): from
        // in the ISR straight to a replica outside it under a later partition epoch.
        let in_isr = Leadership { replicas: vec![1, 2], isr: vec![1, 2], partition_epoch: 4, ..leadership(1, 1) };
        partition.set_leadership(in_isr.clone());
        partition.read_for_follower(2, log_end, 1, 1, 1 << 20, partition.partition_epoch()).unwrap();
        partition.set_leadership(Leadership { isr: vec![1], partition_epoch: 6, ..in_isr });
        assert_eq!(partition.isr_proposal(&[1, 2]), None, "its record is from before the move");
        // A fetch that arrived under partition epoch 4 and is read again (its long poll woken)
        // under 6 is answered at once and is not progress.
        assert!(matches!(
            partition.read_for_follower(2, log_end, 1, 1, 1 << 20, 4),
            Err(PartitionError::AssignmentChanged)
        ));
        assert_eq!(partition.isr_proposal(&[1, 2]), None, "a fetch chosen under the old assignment");
    }

    #[test]
    fn a_new_leader_dedupes_retries_of_the_last_five_batches_it_learned_by_replication() {
        // Goal: the idempotence state a follower builds from replicated batches is the leader's,
        // so after a failover a producer retrying any of its last five in-flight batches (the
        // clients' max.in.flight limit) gets the offsets they already have, and nothing is
        // appended twice. This is what makes a retry across a leader change safe; the
        // librdkafka duplicates of docs/reliability.md (B2) are a client that re-sends under a
        // new epoch, which no broker can dedupe. Method: broker 2 leads and takes seven
        // batches of producer 42; its stored bytes are appended on broker 1 as a follower;
        // broker 1 is elected; every batch is retried there.
        let leader_dir = tempfile::tempdir().unwrap();
        let follower_dir = tempfile::tempdir().unwrap();
        let open = |dir: &Path, local: BrokerId| {
            Partition::open(dir, "t", 0, Uuid::nil(), local, LogConfig::default(), leadership(2, 1)).unwrap()
        };
        let old_leader = open(leader_dir.path(), 2);
        let mut sent = Vec::new();
        let mut sequence = 0;
        for records in [3, 1, 2, 4, 1, 2, 3] {
            let batch = producer_batch(sequence, records);
            let appended = old_leader.append(&mut batch.clone(), false).unwrap();
            assert!(!appended.duplicate);
            sent.push((batch, appended.base_offset, appended.last_offset));
            sequence += records as i32;
        }
        let log_end = old_leader.log_end_now();
        let stored = old_leader.read_to_log_end(0, 1 << 20).unwrap();
        let stored = read_regions(&stored.regions, stored.bytes).unwrap();

        let follower = open(follower_dir.path(), 1);
        follower.append_as_follower(&stored, log_end, 0, 1, 0).unwrap();
        assert_eq!(follower.log_end_now(), log_end);
        follower.set_leadership(leadership(1, 2));

        // Each of the last five batches, retried (in any order) on the new leader: a duplicate
        // answered with its original offsets.
        for (batch, base_offset, last_offset) in sent[2..].iter().rev() {
            let appended = follower.append(&mut batch.clone(), true).unwrap();
            assert!(appended.duplicate, "the batch at {base_offset} was appended again");
            assert_eq!((appended.base_offset, appended.last_offset), (*base_offset, *last_offset));
        }
        assert_eq!(follower.log_end_now(), log_end, "no retry appended anything");
        // An older batch is past what any client may still have in flight: refused as out of
        // order (Kafka does the same), never appended.
        assert!(matches!(
            follower.append(&mut sent[1].0.clone(), true),
            Err(PartitionError::OutOfOrderSequence { expected, .. }) if expected == sequence
        ));
        // The producer's next batch continues the sequence on the new leader.
        let next = follower.append(&mut producer_batch(sequence, 1), true).unwrap();
        assert!(!next.duplicate);
        assert_eq!(next.base_offset, log_end);
    }

    #[test]
    fn a_batch_damaged_on_disk_is_never_served() {
        // Goal: a bit flipped in the records of a synced batch (opening the log trusts synced
        // segments and does not read their records) is caught by `read_regions`, the one
        // reader behind consumer fetches, follower fetches and the coordinator's loading:
        // KAFKA_STORAGE_ERROR naming the offset, never the damaged bytes.
        let dir = tempfile::tempdir().unwrap();
        let mut log = sluice_log::Log::open(dir.path(), sluice_log::LogConfig::default()).unwrap();
        for _ in 0..3 {
            log.append(&mut batch(-1), 0).unwrap();
        }
        log.close().unwrap();
        let segment = dir.path().join(format!("{:020}.log", 0));
        let mut bytes = std::fs::read(&segment).unwrap();
        let second = sluice_log::batch::BatchHeader::parse(&bytes).unwrap().total_bytes();
        bytes[2 * second - 2] ^= 0x10; // the last record byte of the second batch
        std::fs::write(&segment, bytes).unwrap();

        let log = sluice_log::Log::open(dir.path(), sluice_log::LogConfig::default()).unwrap();
        let first = log.read(0, 1 << 20, 1).unwrap();
        assert!(read_regions(&first.regions, first.bytes).is_ok(), "the batch before is served");
        let all = log.read(0, 1 << 20, 3).unwrap();
        let error = read_regions(&all.regions, all.bytes).unwrap_err();
        assert_eq!(error.kafka_error_code(), crate::kafka_code::KAFKA_STORAGE_ERROR);
        assert!(error.to_string().contains("batch at offset 1"), "{error}");
    }

    #[test]
    fn a_damaged_replica_cuts_below_the_batch_refetches_and_never_serves_a_cut_log() {
        // Goal (issue 12): the partition side of a repair. A read that finds a damaged batch
        // serves the intact batches before it and records the damage at the offset where they
        // end (not the damaged header's); as follower the replica cuts its log there — below
        // the high watermark — and the refetched batches complete it again; while it is cut it
        // refuses to serve or append if elected. Method: broker 1 leads a 5-batch log; a bit
        // of batch 2's records is flipped; a fetch from 0 reads it; broker 2 is elected; the
        // repair is driven step by step with `damage::repair_step`, the refetch copied from an
        // intact replica's bytes.
        use crate::partition::damage::{repair_step, DamageState, RepairCheck, RepairStep};
        let dir = tempfile::tempdir().unwrap();
        let mut alone = leadership(1, 1);
        alone.isr = vec![1];
        let partition = Partition::open(dir.path(), "t", 0, Uuid::nil(), 1, LogConfig::default(), alone).unwrap();
        for _ in 0..5 {
            partition.append(&mut batch(-1), false).unwrap();
        }
        let intact = partition.read(0, 1 << 20, -1, false).unwrap();
        let intact = read_regions(&intact.regions, intact.bytes).unwrap();
        let segment = dir.path().join(format!("{:020}.log", 0));
        let size = sluice_log::batch::BatchHeader::parse(&intact).unwrap().total_bytes();
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&segment).unwrap();
        let at = (3 * size - 2) as u64; // a record byte of the third batch (offset 2)
        let mut byte = [0u8];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut byte, at).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[byte[0] ^ 0x10], at).unwrap();

        let read = partition.read(0, 1 << 20, -1, false).unwrap();
        let (served, damaged) = read_regions_intact(&read.regions, read.bytes).unwrap();
        assert_eq!(served[..], intact[..2 * size], "the two batches before it are served");
        let damaged = damaged.expect("the damaged batch is found");
        assert_eq!(damaged.kafka_error_code(), crate::kafka_code::KAFKA_STORAGE_ERROR);
        assert!(partition.report_damage(0, &damaged));
        assert!(!partition.report_damage(0, &damaged), "reported once");
        let damage = partition.damage().unwrap();
        assert_eq!((damage.offset, damage.state.clone()), (2, DamageState::Found));
        assert!(damage.file.ends_with("00000000000000000000.log"), "{}", damage.file);
        let step = |partition: &Partition| {
            let leadership = partition.leadership();
            let check = RepairCheck {
                local: 1,
                leader: leadership.leader,
                replicas: &leadership.replicas,
                isr: &leadership.isr,
                live: &[1, 2],
                log_end: partition.log_end_now(),
            };
            repair_step(&partition.damage().unwrap(), &check)
        };
        assert_eq!(step(&partition), RepairStep::Offline, "alone in the ISR: stays, offline");
        partition.set_leadership(leadership(1, 1));
        assert_eq!(step(&partition), RepairStep::HandOver { to: 2 });

        // Broker 2 is elected; broker 1 cuts below the damaged batch (below its high
        // watermark, 5) and is refused as a source meanwhile.
        partition.set_leadership(leadership(2, 2));
        assert_eq!(step(&partition), RepairStep::Truncate { to: 2 });
        partition.truncate_damaged(2).unwrap();
        assert_eq!(partition.log_end_now(), 2);
        assert_eq!(partition.damage().unwrap().state, DamageState::Repairing { until: 5 });
        assert_eq!(step(&partition), RepairStep::Wait);
        partition.set_leadership(leadership(1, 3));
        let refused = partition.read(0, 1 << 20, -1, false).unwrap_err();
        assert_eq!(refused.kafka_error_code(), crate::kafka_code::KAFKA_STORAGE_ERROR);
        assert!(partition.append(&mut batch(-1), false).is_err(), "a cut log takes no appends");
        assert!(
            partition.read_for_follower(2, 5, 1, 3, 1 << 20, partition.partition_epoch()).is_err(),
            "nor serves followers"
        );
        assert_eq!(step(&partition), RepairStep::HandOver { to: 2 });

        // Broker 2 leads again; the refetch (the intact bytes from offset 2) completes the log.
        partition.set_leadership(leadership(2, 4));
        partition.append_as_follower(&intact[2 * size..], 5, 0, 4, 2).unwrap();
        assert_eq!(step(&partition), RepairStep::Done);
        partition.clear_damage();
        assert!(partition.damage().is_none());
        partition.set_leadership(leadership(1, 5));
        let repaired = partition.read(0, 1 << 20, -1, false).unwrap();
        assert_eq!(read_regions(&repaired.regions, repaired.bytes).unwrap()[..], intact[..]);
    }

    #[test]
    fn a_follower_append_from_a_position_the_log_left_is_refused() {
        // Goal: a fetch answer that arrives after the repair cut the log (the log accepts gaps,
        // which compaction leaves) must not land above a hole. Method: a follower at log end 3
        // gets batches fetched from offset 5.
        let dir = tempfile::tempdir().unwrap();
        let leader_dir = tempfile::tempdir().unwrap();
        let leader =
            Partition::open(leader_dir.path(), "t", 0, Uuid::nil(), 2, LogConfig::default(), leadership(2, 1)).unwrap();
        for _ in 0..6 {
            leader.append(&mut batch(-1), false).unwrap();
        }
        let stored = leader.read_to_log_end(0, 1 << 20).unwrap();
        let stored = read_regions(&stored.regions, stored.bytes).unwrap();
        let size = sluice_log::batch::BatchHeader::parse(&stored).unwrap().total_bytes();
        let follower =
            Partition::open(dir.path(), "t", 0, Uuid::nil(), 1, LogConfig::default(), leadership(2, 1)).unwrap();
        follower.append_as_follower(&stored[..3 * size], 3, 0, 1, 0).unwrap();
        let error = follower.append_as_follower(&stored[5 * size..], 6, 0, 1, 5).unwrap_err();
        assert!(matches!(error, PartitionError::Log(LogError::NonContiguous { .. })), "{error}");
        assert_eq!(follower.log_end_now(), 3);
    }

    #[test]
    fn a_follower_serves_consumers_up_to_its_high_watermark_and_the_leader_names_it_preferred() {
        // Goal (KIP-392): a follower replica answers a consumer's read (Fetch v11+) with
        // committed records only — never above the high watermark it learned from the leader —
        // with Kafka's errors for offsets it cannot serve and stale or future epochs; older
        // fetches still need the leader. The leader names an in-sync follower as the preferred
        // read replica only once it knows the follower has the offset asked for.
        // Method: broker 2 leads, broker 1 follows; three 2-record batches (offsets 0..6); the
        // follower copies all of them but learns a high watermark of 2.
        let leader_dir = tempfile::tempdir().unwrap();
        let follower_dir = tempfile::tempdir().unwrap();
        let outsider_dir = tempfile::tempdir().unwrap();
        let open = |dir: &Path, local: BrokerId| {
            Partition::open(dir, "t", 0, Uuid::nil(), local, LogConfig::default(), leadership(2, 1)).unwrap()
        };
        let leader = open(leader_dir.path(), 2);
        let mut first_batch_bytes = 0;
        for sequence in [0, 2, 4] {
            let batch = producer_batch(sequence, 2);
            if sequence == 0 {
                first_batch_bytes = batch.len() as u64;
            }
            leader.append(&mut batch.clone(), false).unwrap();
        }
        let stored = leader.read_to_log_end(0, 1 << 20).unwrap();
        let stored = read_regions(&stored.regions, stored.bytes).unwrap();
        let follower = open(follower_dir.path(), 1);
        follower.append_as_follower(&stored, 2, 0, 1, 0).unwrap();
        assert_eq!((follower.log_end_now(), follower.high_watermark_now()), (6, 2));

        // Up to the high watermark: exactly the first batch, whatever the budget.
        let read = follower.read(0, 1 << 20, 1, true).unwrap();
        assert_eq!((read.bytes, read.high_watermark), (first_batch_bytes, 2));
        // Between the high watermark and the log end: nothing yet, no error.
        assert_eq!(follower.read(2, 1 << 20, 1, true).unwrap().bytes, 0);
        assert_eq!(follower.read(6, 1 << 20, -1, true).unwrap().bytes, 0);
        // Above the log end: out of range (the consumer asks the leader).
        assert!(matches!(
            follower.read(7, 1 << 20, 1, true),
            Err(PartitionError::Log(LogError::OffsetOutOfRange { .. }))
        ));
        // Epochs are checked as at the leader.
        assert!(matches!(follower.read(0, 1 << 20, 0, true), Err(PartitionError::FencedLeaderEpoch)));
        assert!(matches!(follower.read(0, 1 << 20, 2, true), Err(PartitionError::UnknownLeaderEpoch)));
        // Fetch v10 and older, and the coordinator's reads: the leader only.
        assert!(matches!(follower.read(0, 1 << 20, 1, false), Err(PartitionError::NotLeader)));
        // A broker that holds no replica of the partition never serves it.
        let outsider =
            Partition::open(outsider_dir.path(), "t", 0, Uuid::nil(), 3, LogConfig::default(), leadership(2, 1))
                .unwrap();
        assert!(matches!(outsider.read(0, 1 << 20, 1, true), Err(PartitionError::NotLeader)));

        // The leader: before broker 1 fetched under this leadership it is known to hold only
        // the high watermark (0 here), so it is preferred for offset 0 but not for offset 1.
        assert_eq!(leader.preferred_read_replica(&[1], 0, 1), Some(1));
        assert_eq!(leader.preferred_read_replica(&[1], 1, -1), None);
        leader.read_for_follower(1, 6, 1, 1, 1 << 20, leader.partition_epoch()).unwrap();
        assert_eq!(leader.preferred_read_replica(&[1], 1, -1), Some(1));
        assert_eq!(leader.preferred_read_replica(&[1], 6, 1), Some(1));
        assert_eq!(leader.preferred_read_replica(&[1], 7, 1), None, "the follower lacks offset 7");
        assert_eq!(leader.preferred_read_replica(&[], 0, 1), None, "no replica on the consumer's rack");
        assert_eq!(follower.preferred_read_replica(&[1], 0, 1), None, "only a leader redirects");
        assert_eq!(leader.preferred_read_replica(&[1], 0, 0), None, "a stale epoch gets its error at the leader");
        assert_eq!(leader.preferred_read_replica(&[1], 0, 2), None, "so does a future one");
    }
}
