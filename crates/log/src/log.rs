//! [`Log`]: one partition's log, a sequence of segments plus its checkpoints.
//!
//! Invariants (checked by the model tests):
//! - there is always at least one segment; the last one is the *active* segment, the only one
//!   appended to;
//! - segments are ordered by base offset, and each segment's offsets lie below the next
//!   segment's base offset;
//! - `log_start_offset <= high_watermark <= log_end_offset`;
//! - every byte below the recovery point is synced, and its segment has sane indexes.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::batch::{assign_offsets, validate_batches, BatchHeader, Origin, ValidBatch};
use crate::checkpoint::{sync_dir, Checkpoint};
use crate::commit::{GroupCommit, SyncWait};
use crate::config::{FlushPolicy, LogConfig, ROLL_SYNCS_IN_FLIGHT_MAX};
use crate::epoch::LeaderEpochCache;
use crate::error::{is_out_of_space, LogError, Result};
use crate::records::{parse_records, records_section};
use crate::segment::{file_name, Segment};

const LOCK_FILE: &str = ".lock";

/// Bytes [`Log::probe_space`] writes (and cuts off again) to see whether a full disk has space
/// again. A failed write that is cut back frees the few blocks it took, so a probe of one page
/// would report space that no real batch fits in; 1 MiB is a batch of common size with room
/// to spare. Costs one unsynced 1 MiB write per probe (per refusing log, once a second).
pub const SPACE_PROBE_BYTES: usize = 1024 * 1024;

/// Why a log synced its data to disk, as [`SyncObserver`] is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncCause {
    /// The topic's flush policy (`flush.messages` / `flush.ms`) synced the active segment.
    Policy,
    /// A segment rolled and was synced (in the background under the `Os` policy).
    Roll,
    /// [`Log::flush`]: everything synced at once (shutdown, truncation, an explicit flush).
    Flush,
}

impl SyncCause {
    /// The cause as a short label (`policy`, `roll`, `flush`).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncCause::Policy => "policy",
            SyncCause::Roll => "roll",
            SyncCause::Flush => "flush",
        }
    }
}

/// Told the duration of every `fdatasync`/`fsync` of a segment the log makes, with its cause
/// (the broker feeds its fsync latency histogram with it). Called on the syncing thread, right
/// after the call returns, successful or not; it must be cheap.
pub type SyncObserver = Arc<dyn Fn(SyncCause, std::time::Duration) + Send + Sync>;

/// Runs `sync` and tells `observer` (if any) how long it took.
pub(crate) fn timed_sync<T>(observer: Option<&SyncObserver>, cause: SyncCause, sync: impl FnOnce() -> T) -> T {
    let Some(observer) = observer else { return sync() };
    let started = std::time::Instant::now();
    let outcome = sync();
    observer(cause, started.elapsed());
    outcome
}

/// Source of "now" in milliseconds since the Unix epoch; tests substitute a manual clock.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Current time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Largest batch max-timestamp among the appended batches.
    pub max_timestamp: i64,
    /// Number of batches appended.
    pub batches: usize,
    /// Bytes appended.
    pub bytes: usize,
}

/// A run of whole batches in a segment file, ready to be sent without re-encoding. It holds
/// the file open, so it stays readable even if retention deletes the segment meanwhile.
#[derive(Debug, Clone)]
pub struct FileRegion {
    /// The segment file.
    pub file: Arc<File>,
    /// Byte position of the first batch in the file.
    pub position: u64,
    /// Length in bytes (whole batches).
    pub len: u64,
}

impl FileRegion {
    /// Reads the region into `buf`, which must be exactly `len` bytes long.
    pub fn read_into(&self, buf: &mut [u8]) -> std::io::Result<()> {
        assert_eq!(buf.len() as u64, self.len, "buffer must match the region length");
        self.file.read_exact_at(buf, self.position)
    }

    /// Reads the region into a new vector.
    pub fn to_vec(&self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.len as usize];
        self.read_into(&mut buf)?;
        Ok(buf)
    }
}

/// The answer to [`Log::read`].
#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    /// File regions to send, in offset order.
    pub regions: Vec<FileRegion>,
    /// Total bytes in `regions`.
    pub bytes: u64,
    /// Offset just after the last batch returned (the next offset to fetch), or the requested
    /// offset when nothing was returned.
    pub next_offset: i64,
}

impl ReadResult {
    /// Reads every region into one buffer (tests and small reads; the broker sends regions).
    pub fn to_vec(&self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.bytes as usize);
        for r in &self.regions {
            out.extend_from_slice(&r.to_vec()?);
        }
        Ok(out)
    }
}

/// What a retention pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes freed.
    pub bytes_deleted: u64,
}

/// Failures tests can inject (feature `fault-injection`).
#[cfg(any(test, feature = "fault-injection"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next fsync of segment data fails with an I/O error.
    FailNextSync,
    /// The next segment write stops half-way with ENOSPC, leaving a partial batch on disk.
    NoSpaceOnNextWrite,
}

type PendingSync = (i64, JoinHandle<std::io::Result<()>>);

/// One partition's log. Not thread-safe by itself: the broker wraps it in a lock and copies
/// [`FileRegion`]s out to read them without holding the lock.
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    clock: Arc<dyn Clock>,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    high_watermark: i64,
    recovery_point: i64,
    epochs: LeaderEpochCache,
    /// When the oldest append not yet synced happened, for `FlushPolicy::IntervalMs`.
    unsynced_since_ms: Option<i64>,
    /// Background syncs of rolled segments (flush policy `Os`): (segment end offset, job).
    pending_syncs: Vec<PendingSync>,
    /// Group commit of appends under `FlushPolicy::EveryBatch`, shared with the appenders'
    /// [`SyncWait`]s; also holds why the log is poisoned, since a sync outside the log's lock
    /// may be what poisons it.
    commit: Arc<GroupCommit>,
    /// Set while writes fail for lack of space (the cause); cleared by the next write that
    /// succeeds. Not a poisoning: nothing partial stays on disk.
    out_of_space: Option<String>,
    /// Offset below which the cleaner has compacted the log (Kafka's cleaner checkpoint, the
    /// first dirty offset): what lies below is clean, what lies from it up to the first
    /// uncleanable offset is dirty. Kept in memory only, so a reopened log counts as all dirty
    /// and is compacted once in full.
    cleaned_to: i64,
    /// The lock file's descriptor, holding the lock while the log is open (none when the
    /// caller guarantees exclusive use: [`Log::open_without_lock`]).
    _lock: Option<File>,
    #[cfg(any(test, feature = "fault-injection"))]
    fault: Option<Fault>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start_offset)
            .field("log_end_offset", &self.log_end_offset())
            .field("high_watermark", &self.high_watermark)
            .field("segments", &self.segments.len())
            .finish()
    }
}

impl Log {
    /// Opens (or creates) the log in `dir` with the wall clock. See [`Log::open_with_clock`].
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        Self::open_with_clock(dir, config, Arc::new(SystemClock))
    }

    /// [`Log::open`] without the log's own lock file, for a caller that guarantees by other
    /// means that nothing else opens `dir` while this log is open: the broker, which holds its
    /// data directory's lock and opens each partition's log once. Saves the descriptor the
    /// lock holds — a broker hosting thousands of partitions counts them.
    pub fn open_without_lock(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        Self::open_in(dir.as_ref(), config, Arc::new(SystemClock), false)
    }

    /// Opens (or creates) the log in `dir`. After a clean shutdown the segments are opened as
    /// they are; otherwise every batch from the recovery point on is re-validated, a torn or
    /// corrupt tail is cut off and indexes are rebuilt. A second open of the same directory,
    /// in this process or another, fails while this log is open (its lock file).
    pub fn open_with_clock(dir: impl AsRef<Path>, config: LogConfig, clock: Arc<dyn Clock>) -> Result<Log> {
        Self::open_in(dir.as_ref(), config, clock, true)
    }

    fn open_in(dir: &Path, config: LogConfig, clock: Arc<dyn Clock>, take_lock: bool) -> Result<Log> {
        config.validate()?;
        let dir = dir.to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| LogError::io(&dir, e))?;
        let lock = if take_lock {
            let lock_path = dir.join(LOCK_FILE);
            let lock = File::create(&lock_path).map_err(|e| LogError::io(&lock_path, e))?;
            lock.try_lock().map_err(|_| LogError::Damaged {
                dir: dir.clone(),
                reason: "the log is open in another process or handle".into(),
            })?;
            Some(lock)
        } else {
            None
        };

        let bases = scan_directory(&dir)?;
        let checkpoint = Checkpoint::read(&dir);
        let mut segments = BTreeMap::new();
        let last_base = bases.last().copied();
        let clean = match (&checkpoint, last_base) {
            (Some(cp), Some(last)) if cp.clean_shutdown && cp.active_segment_base == last => {
                let len = fs::metadata(dir.join(file_name(last, "log"))).map(|m| m.len()).ok();
                len == Some(cp.active_segment_bytes)
            }
            _ => false,
        };
        let recovery_point = match (&checkpoint, clean) {
            (Some(cp), true) => cp.log_end_offset,
            (Some(cp), false) => cp.recovery_point,
            (None, _) => i64::MIN,
        };
        if !clean && !bases.is_empty() {
            tracing::info!(dir = %dir.display(), recovery_point, "log was not shut down cleanly; recovering");
        }
        let mut truncated_at: Option<i64> = None;
        for (i, &base) in bases.iter().enumerate() {
            let path = dir.join(file_name(base, "log"));
            if truncated_at.is_some() {
                tracing::warn!(segment = %path.display(), "deleting a segment after a truncated one");
                fs::remove_file(&path).map_err(|e| LogError::io(&path, e))?;
                let _ = fs::remove_file(dir.join(file_name(base, "index")));
                let _ = fs::remove_file(dir.join(file_name(base, "timeindex")));
                continue;
            }
            let active = i + 1 == bases.len();
            let next_base = bases.get(i + 1).copied();
            let needs_recovery = !clean && next_base.is_none_or(|nb| nb > recovery_point);
            let io = |e| LogError::io(&path, e);
            let trusted =
                if needs_recovery { None } else { Segment::open_trusted(&dir, base, &config, active).map_err(io)? };
            let segment = match trusted {
                Some(s) => s,
                None => {
                    if !needs_recovery {
                        tracing::warn!(segment = %path.display(), "segment indexes are damaged; rebuilding");
                    }
                    let mut scan = Segment::scan(&dir, base, &config).map_err(io)?;
                    let lost_offsets = check_recoverable(&dir, &path, &scan, next_base, recovery_point)?;
                    scan.segment.finish_recovery(scan.file_bytes, active).map_err(io)?;
                    if lost_offsets && !active {
                        // As Kafka: batches after a lost one are not kept, so the log stays
                        // contiguous for the replication protocol (followers fetch them again).
                        tracing::warn!(segment = %path.display(), "records of a sealed segment were lost; deleting the segments after it");
                        truncated_at = Some(scan.segment.next_offset());
                    }
                    scan.segment
                }
            };
            if next_base.is_some_and(|nb| segment.next_offset() > nb) {
                return Err(LogError::Damaged { dir, reason: format!("segment {base} overlaps the next segment") });
            }
            segments.insert(base, segment);
        }
        if let Some((_, seg)) = segments.iter_mut().next_back() {
            if truncated_at.is_some() {
                seg.unseal(&config).map_err(|e| LogError::io(&dir, e))?;
            }
        } else {
            let start = checkpoint.map_or(0, |cp| cp.log_start_offset.max(0));
            let s = Segment::create(&dir, start, &config).map_err(|e| LogError::io(&dir, e))?;
            segments.insert(start, s);
        }

        // Everything below the log end counts as synced: by the clean shutdown, or by the sync
        // below before `open` returns.
        let active = segments.values().next_back().expect("at least one segment");
        let active_file = Arc::clone(active.file().map_err(|e| LogError::io(&dir, e))?);
        let commit = Arc::new(GroupCommit::new(dir.clone(), active.next_offset(), active_file));
        let mut log = Log {
            dir: dir.clone(),
            config,
            clock,
            segments,
            log_start_offset: 0,
            high_watermark: 0,
            recovery_point: 0,
            epochs: LeaderEpochCache::empty(&dir),
            unsynced_since_ms: None,
            pending_syncs: Vec::new(),
            commit,
            out_of_space: None,
            cleaned_to: i64::MIN,
            _lock: lock,
            #[cfg(any(test, feature = "fault-injection"))]
            fault: None,
        };
        let first_base = *log.segments.keys().next().expect("at least one segment");
        let leo = log.log_end_offset();
        // Compaction may empty and delete the first segments without moving the log start, so
        // the checkpointed start may lie below the first segment; reads skip the gap.
        log.log_start_offset = checkpoint.map_or(first_base, |cp| cp.log_start_offset).clamp(0, leo);
        log.high_watermark =
            checkpoint.map_or(log.log_start_offset, |cp| cp.high_watermark).clamp(log.log_start_offset, leo);
        log.load_epochs()?;
        if !clean {
            log.active().sync_data().map_err(|e| LogError::io(&dir, e))?;
            sync_dir(&dir)?;
        }
        log.recovery_point = leo;
        // From here on a crash must not look like a clean shutdown (unsynced: see
        // `Checkpoint::write_unsynced` for why that suffices).
        log.checkpoint_state(false).write_unsynced(&log.dir)?;
        Ok(log)
    }

    fn load_epochs(&mut self) -> Result<()> {
        let leo = self.log_end_offset();
        let mut changed = false;
        self.epochs = match LeaderEpochCache::load(&self.dir) {
            Some(c) => c,
            None => {
                let mut c = LeaderEpochCache::empty(&self.dir);
                for seg in self.segments.values() {
                    let mut position = 0;
                    while let Some(h) = seg.header_at(position).map_err(|e| LogError::io(&self.dir, e))? {
                        c.assign(h.partition_leader_epoch, h.base_offset);
                        position += h.total_bytes() as u64;
                    }
                }
                changed = !c.entries().is_empty();
                c
            }
        };
        changed |= self.epochs.truncate_from_end(leo);
        if changed {
            self.epochs.persist()?;
        }
        Ok(())
    }

    fn active(&self) -> &Segment {
        self.segments.values().next_back().expect("at least one segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments.values_mut().next_back().expect("at least one segment")
    }

    /// Directory of this log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration the log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// First offset the log holds.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// Highest offset known replicated to every in-sync replica, plus one.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// Sets the high watermark (clamped to `[log_start, log_end]`). It is made durable by the
    /// next [`Log::checkpoint`], [`Log::flush`] or [`Log::close`].
    pub fn set_high_watermark(&mut self, offset: i64) {
        self.high_watermark = offset.clamp(self.log_start_offset, self.log_end_offset());
    }

    /// Total bytes of all segment files.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    /// The leader-epoch lineage (KIP-101).
    pub fn leader_epochs(&self) -> &LeaderEpochCache {
        &self.epochs
    }

    /// OffsetForLeaderEpoch: the largest epoch not above `epoch` and its end offset.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for_epoch(epoch, self.log_end_offset())
    }

    /// Makes a failure happen on purpose (tests).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn inject_fault(&mut self, fault: Fault) {
        match fault {
            Fault::FailNextSync => self.commit.fail_next_sync(),
            Fault::NoSpaceOnNextWrite => self.fault = Some(fault),
        }
    }

    /// [`LogError::Poisoned`] if an fsync (or a write) failed since the log was opened: it
    /// refuses every write until it is reopened.
    pub fn check_writable(&self) -> Result<()> {
        match self.commit.failure() {
            Some(cause) => Err(LogError::Poisoned { dir: self.dir.clone(), cause }),
            None => Ok(()),
        }
    }

    fn poison(&mut self, what: &str, e: std::io::Error) -> LogError {
        self.commit.poison(what, &e)
    }

    /// Offset below which every appended record is synced to disk under
    /// `FlushPolicy::EveryBatch` (group commit may not have synced the latest appends yet);
    /// the log end offset under the other policies, which never wait for a sync to
    /// acknowledge. The broker caps the high watermark with it, so consumers never read a
    /// record of a `flush.messages=1` topic before it is synced (as before group commit).
    pub fn durable_end_offset(&self) -> i64 {
        let leo = self.log_end_offset();
        match self.config.flush {
            FlushPolicy::EveryBatch => self.commit.synced().min(leo),
            FlushPolicy::IntervalMs(_) | FlushPolicy::Os => leo,
        }
    }

    /// Appends batches from a producer (leader side). Every batch is validated (framing,
    /// magic, size, CRC-32C) before anything is written; offsets are then assigned by
    /// rewriting each batch's `base_offset` and `partition_leader_epoch` in `records`. Under
    /// `FlushPolicy::EveryBatch` it returns once the batches are synced; see
    /// [`Log::append_unsynced`] for the form that lets concurrent appends share one sync.
    pub fn append(&mut self, records: &mut [u8], leader_epoch: i32) -> Result<AppendInfo> {
        let (info, wait) = self.append_unsynced(records, leader_epoch)?;
        wait.wait()?;
        Ok(info)
    }

    /// [`Log::append`] without waiting for the flush policy's sync: the batches are written
    /// (readable below [`Log::durable_end_offset`] only once synced) and the returned
    /// [`SyncWait`] ends when a sync covers them. Wait for it after releasing the lock that
    /// guards the log, so that appends arriving meanwhile join the same `fdatasync` (group
    /// commit); acknowledge the append only if it returns `Ok`.
    pub fn append_unsynced(&mut self, records: &mut [u8], leader_epoch: i32) -> Result<(AppendInfo, SyncWait)> {
        self.check_writable()?;
        let batches = validate_batches(records, self.config.batch_bytes_max, Origin::Client)?;
        let first_offset = self.log_end_offset();
        let mut next = first_offset;
        for b in &batches {
            assign_offsets(&mut records[b.position..], next, leader_epoch);
            next += i64::from(b.header.last_offset_delta) + 1;
        }
        let (info, wait) = self.append_valid(records, &batches, first_offset, next - 1)?;
        if self.epochs.assign(leader_epoch, first_offset) {
            self.epochs.persist()?;
        }
        Ok((info, wait))
    }

    /// Appends batches copied from the leader (follower side): offsets are already assigned
    /// and the first batch must start at or after the log end (after compaction on the leader
    /// there may be gaps, never overlaps). Synced per the flush policy before it returns (a
    /// follower's appends to one partition come one at a time, so there is nothing to group).
    pub fn append_replicated(&mut self, records: &[u8]) -> Result<AppendInfo> {
        self.check_writable()?;
        let batches = validate_batches(records, self.config.batch_bytes_max, Origin::Replica)?;
        let leo = self.log_end_offset();
        let first = batches[0].header.base_offset;
        if first < leo {
            return Err(LogError::NonContiguous { base_offset: first, log_end: leo });
        }
        let last = batches.last().expect("validated batches are non-empty").header.last_offset();
        let (info, wait) = self.append_valid(records, &batches, first, last)?;
        wait.wait()?;
        let mut changed = false;
        for b in &batches {
            changed |= self.epochs.assign(b.header.partition_leader_epoch, b.header.base_offset);
        }
        if changed {
            self.epochs.persist()?;
        }
        Ok(info)
    }

    fn append_valid(
        &mut self,
        buf: &[u8],
        batches: &[ValidBatch],
        first_offset: i64,
        last_offset: i64,
    ) -> Result<(AppendInfo, SyncWait)> {
        let now = self.clock.now_ms();
        let incoming_timestamp = batches.iter().map(|b| b.header.max_timestamp).max().unwrap_or(-1);
        if self.active().needs_roll(buf.len() as u64, last_offset, incoming_timestamp, now, &self.config) {
            self.roll_at(first_offset)?;
        }
        if let Err(e) = self.write_active(buf, batches) {
            return Err(self.write_failed(e));
        }
        self.space_is_back("segment write");
        let wait = self.after_append(now)?;
        let info = AppendInfo {
            first_offset,
            last_offset,
            max_timestamp: batches.iter().map(|b| b.header.max_timestamp).max().unwrap_or(-1),
            batches: batches.len(),
            bytes: buf.len(),
        };
        Ok((info, wait))
    }

    fn write_active(&mut self, buf: &[u8], batches: &[ValidBatch]) -> std::io::Result<()> {
        #[cfg(any(test, feature = "fault-injection"))]
        if self.fault == Some(Fault::NoSpaceOnNextWrite) {
            self.fault = None;
            self.active_mut().write_torn_for_test(&buf[..buf.len() / 2])?;
            return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
        }
        self.active_mut().append(buf, batches)
    }

    /// A segment write failed. Out of space: the partial write is cut off and the tail
    /// checked, and the append is refused without poisoning the log (it retries with the next
    /// append). Any other error, or a tail that does not check out, poisons the log.
    fn write_failed(&mut self, e: std::io::Error) -> LogError {
        if !is_out_of_space(&e) {
            return self.poison("segment write", e);
        }
        if let Err(cut) = self.active_mut().discard_unaccounted_tail() {
            return self.poison("cutting a failed write back", cut);
        }
        self.out_of_space("segment write", &e)
    }

    /// Records that `what` found no space; logs once per episode, not per refused append.
    fn out_of_space(&mut self, what: &str, e: &std::io::Error) -> LogError {
        let cause = format!("{what}: {e}");
        if self.out_of_space.is_none() {
            tracing::error!(dir = %self.dir.display(), error = %e, "{what} found no space left; appends are refused until there is space");
        }
        self.out_of_space = Some(cause.clone());
        LogError::OutOfSpace { dir: self.dir.clone(), cause }
    }

    fn space_is_back(&mut self, what: &str) {
        if self.out_of_space.take().is_some() {
            tracing::info!(dir = %self.dir.display(), "{what} succeeded: space is available again; appends resumed");
        }
    }

    /// Why the log refuses appends now, if it does: a failed fsync (until reopened) or no
    /// space (until a write or [`Log::probe_space`] succeeds).
    pub fn write_refusal(&self) -> Option<String> {
        self.commit
            .failure()
            .map(|cause| format!("refuses writes after a failed fsync: {cause}"))
            .or_else(|| self.out_of_space.as_ref().map(|cause| format!("no space left: {cause}")))
    }

    /// Why the log cannot append now for lack of space, if it cannot.
    pub fn out_of_space_cause(&self) -> Option<&str> {
        self.out_of_space.as_deref()
    }

    /// For a log that found no space: whether its active segment can grow by
    /// [`SPACE_PROBE_BYTES`] now
    /// (writes zeros past the end and cuts them off). Clears the condition when it can, so
    /// that a log nobody writes to stops reporting a full disk once space returns.
    pub fn probe_space(&mut self) -> Result<bool> {
        if self.out_of_space.is_none() {
            return Ok(true);
        }
        self.check_writable()?;
        let grew = self.active().can_grow_by(SPACE_PROBE_BYTES).map_err(|e| LogError::io(&self.dir, e))?;
        if grew {
            self.space_is_back("space probe");
        }
        Ok(grew)
    }

    /// What acknowledging the records below `end` must wait for: under `EveryBatch`, a sync
    /// that covers them (at once if one has); nothing under the other policies. For an answer
    /// about records already in the log, such as a retried batch found to be a duplicate,
    /// whose original append may still be waiting for its sync.
    pub fn sync_wait_through(&self, end: i64) -> SyncWait {
        match self.config.flush {
            FlushPolicy::EveryBatch => self.commit.written(end.min(self.log_end_offset())),
            FlushPolicy::IntervalMs(_) | FlushPolicy::Os => SyncWait::none(),
        }
    }

    /// The flush policy's part of an append: under `EveryBatch` the append waits for group
    /// commit (the returned wait); under `IntervalMs` a due sync runs here, under the lock.
    fn after_append(&mut self, now: i64) -> Result<SyncWait> {
        match self.config.flush {
            FlushPolicy::EveryBatch => Ok(self.commit.written(self.log_end_offset())),
            FlushPolicy::IntervalMs(ms) => {
                let since = *self.unsynced_since_ms.get_or_insert(now);
                if now - since >= ms as i64 {
                    self.sync_active()?;
                }
                Ok(SyncWait::none())
            }
            FlushPolicy::Os => self.reap_pending_syncs(false).map(|()| SyncWait::none()),
        }
    }

    /// Syncs the active segment for `flush.ms` (under the log's lock).
    fn sync_active(&mut self) -> Result<()> {
        let leo = self.log_end_offset();
        if let Err(e) = self.active().file().and_then(|file| self.commit.sync_file(file)) {
            return Err(self.poison("fdatasync", e));
        }
        self.commit.covered(leo);
        self.unsynced_since_ms = None;
        Ok(())
    }

    /// Closes the descriptors of sealed segments that nothing used since the last call: a
    /// sealed segment's `.log` file is opened when something reads it (a consumer catching up,
    /// compaction, an epoch-cache rebuild), and called periodically this closes it again
    /// once the reader has moved on, so an idle log holds one descriptor (its active
    /// segment's) however much of it was read. Readers still holding the file keep it open
    /// until they finish. Returns how many descriptors were closed.
    pub fn release_unused_files(&mut self) -> usize {
        let sealed = self.segments.len().saturating_sub(1);
        self.segments
            .values_mut()
            .take(sealed)
            .map(Segment::release_file_if_unused)
            .filter(|&released| released)
            .count()
    }

    /// Syncs if the flush policy's interval has passed; the broker calls this from a timer so
    /// that an idle log also meets its `IntervalMs` promise.
    pub fn flush_if_due(&mut self) -> Result<()> {
        self.check_writable()?;
        if let (FlushPolicy::IntervalMs(ms), Some(since)) = (self.config.flush, self.unsynced_since_ms) {
            if self.clock.now_ms() - since >= ms as i64 {
                self.sync_active()?;
            }
        }
        self.reap_pending_syncs(false)
    }

    /// Waits for (or polls) background syncs of rolled segments and advances the recovery
    /// point past the ones that finished, in order.
    fn reap_pending_syncs(&mut self, wait: bool) -> Result<()> {
        while let Some((_, job)) = self.pending_syncs.first() {
            if !wait && !job.is_finished() {
                break;
            }
            self.join_oldest_sync()?;
        }
        Ok(())
    }

    /// Waits for the oldest background sync; on success the recovery point passes its segment.
    fn join_oldest_sync(&mut self) -> Result<()> {
        let (end_offset, job) = self.pending_syncs.remove(0);
        match job.join() {
            Ok(Ok(())) => {
                self.recovery_point = self.recovery_point.max(end_offset);
                Ok(())
            }
            Ok(Err(e)) => Err(self.poison("background segment sync", e)),
            Err(_) => Err(self.poison("background segment sync", std::io::Error::other("sync thread panicked"))),
        }
    }

    /// Starts a new active segment at the log end (no-op if the active segment is empty).
    pub fn roll(&mut self) -> Result<()> {
        self.check_writable()?;
        if self.active().is_empty() {
            return Ok(());
        }
        let leo = self.log_end_offset();
        self.roll_at(leo)
    }

    fn roll_at(&mut self, new_base: i64) -> Result<()> {
        let dir = self.dir.clone();
        let sealed_end = self.log_end_offset();
        let flush = self.config.flush;
        let sealed = self.active_mut();
        sealed.seal().map_err(|e| LogError::io(&dir, e))?;
        let sealed_base = sealed.base_offset;
        match flush {
            FlushPolicy::Os => {
                // Like Kafka, sync the rolled segment off the append path.
                let file = Arc::clone(sealed.file().map_err(|e| LogError::io(&dir, e))?);
                let index_paths =
                    [dir.join(file_name(sealed_base, "index")), dir.join(file_name(sealed_base, "timeindex"))];
                let observer = self.commit.observer();
                let job = std::thread::Builder::new()
                    .name("sluice-log-sync".into())
                    .spawn(move || {
                        timed_sync(observer.as_ref(), SyncCause::Roll, || file.sync_data())?;
                        for p in index_paths {
                            match File::open(&p) {
                                Ok(f) => f.sync_data()?,
                                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                                Err(e) => return Err(e),
                            }
                        }
                        Ok(())
                    })
                    .map_err(|e| LogError::io(&dir, e))?;
                self.pending_syncs.push((sealed_end, job));
                if self.pending_syncs.len() > ROLL_SYNCS_IN_FLIGHT_MAX {
                    self.join_oldest_sync()?;
                }
            }
            FlushPolicy::EveryBatch | FlushPolicy::IntervalMs(_) => {
                if let Err(e) =
                    timed_sync(self.commit.observer().as_ref(), SyncCause::Roll, || self.active().sync_all())
                {
                    return Err(self.poison("segment sync on roll", e));
                }
                self.recovery_point = sealed_end;
                self.unsynced_since_ms = None;
                // Appends waiting for a sync of the sealed segment are covered.
                self.commit.covered(sealed_end);
            }
        }
        // The sealed segment's descriptor closes once its background sync (if any) ends; a
        // reader opens it again.
        self.active_mut().release_file();
        let segment = match Segment::create(&dir, new_base, &self.config) {
            Ok(segment) => segment,
            // The sealed segment stays active; the next append rolls again.
            Err(e) if is_out_of_space(&e) => return Err(self.out_of_space("creating a segment", &e)),
            Err(e) => return Err(LogError::io(&dir, e)),
        };
        let new_file = Arc::clone(segment.file().map_err(|e| LogError::io(&dir, e))?);
        self.segments.insert(new_base, segment);
        self.commit.switch_file(new_file);
        sync_dir(&dir)?;
        tracing::debug!(dir = %dir.display(), new_base, "rolled segment");
        self.write_checkpoint(false)
    }

    /// Returns whole batches starting with the one that holds `from_offset`: at most
    /// `max_bytes` of them, but always at least one batch if any is readable (so a consumer
    /// never stalls on a batch larger than its limit), and none whose last offset is at or
    /// above `upper_bound` (the high watermark for consumers, the log end for replicas).
    /// `OffsetOutOfRange` below the log start or above the log end.
    pub fn read(&self, from_offset: i64, max_bytes: u64, upper_bound: i64) -> Result<ReadResult> {
        let leo = self.log_end_offset();
        if from_offset < self.log_start_offset || from_offset > leo {
            return Err(LogError::OffsetOutOfRange {
                offset: from_offset,
                log_start: self.log_start_offset,
                log_end: leo,
            });
        }
        let upper = upper_bound.min(leo);
        let mut result = ReadResult { next_offset: from_offset, ..ReadResult::default() };
        if from_offset >= upper {
            return Ok(result);
        }
        let start_base = self.segments.range(..=from_offset).next_back().map_or(i64::MIN, |(b, _)| *b);
        let mut cursor = from_offset;
        for seg in self.segments.range(start_base..).map(|(_, s)| s) {
            let io = |e| LogError::io(&self.dir, e);
            let Some((position, header)) = seg.find_batch(cursor).map_err(io)? else {
                continue;
            };
            let remaining = max_bytes.saturating_sub(result.bytes);
            let Some(span) =
                seg.span_from(position, header, remaining, upper, result.regions.is_empty()).map_err(io)?
            else {
                break;
            };
            result.bytes += span.len;
            result.next_offset = span.next_offset;
            cursor = span.next_offset;
            let file = Arc::clone(seg.file().map_err(io)?);
            result.regions.push(FileRegion { file, position: span.position, len: span.len });
            if span.position + span.len < seg.size() {
                break;
            }
        }
        Ok(result)
    }

    /// The first record whose timestamp is at least `timestamp`, as (offset, timestamp);
    /// `None` if every record is older (Kafka's ListOffsets by timestamp).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        let io = |e| LogError::io(&self.dir, e);
        for seg in self.segments.values().filter(|s| s.max_timestamp() >= timestamp) {
            let start = seg.time_search_start(timestamp).max(self.log_start_offset);
            let Some((mut position, mut header)) = seg.find_batch(start).map_err(io)? else {
                continue;
            };
            loop {
                if header.max_timestamp >= timestamp && header.last_offset() >= self.log_start_offset {
                    let batch = seg.batch_at(position, &header).map_err(io)?;
                    return Ok(Some(first_record_at_or_after(&batch, &header, timestamp, self.log_start_offset)));
                }
                position += header.total_bytes() as u64;
                match seg.header_at(position).map_err(io)? {
                    Some(h) => header = h,
                    None => break,
                }
            }
        }
        Ok(None)
    }

    /// The first record carrying the largest timestamp in the log, as (offset, timestamp);
    /// `None` for a log without records (Kafka's ListOffsets max-timestamp query, v7+). Every
    /// segment keeps its largest timestamp, and no record is newer than their maximum, so the
    /// first record at or after it is the first record carrying it: on a tie the earliest, as
    /// Kafka answers.
    pub fn offset_of_max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        let max_timestamp = self.segments.values().map(|seg| seg.max_timestamp()).max().unwrap_or(-1);
        if max_timestamp < 0 {
            return Ok(None);
        }
        self.offset_for_timestamp(max_timestamp)
    }

    /// Calls `f` with the header of every batch from the one holding `from_offset` on (for
    /// rebuilding producer state). Stops early when `f` returns false.
    pub fn for_each_batch_header(&self, from_offset: i64, mut f: impl FnMut(&BatchHeader) -> bool) -> Result<()> {
        let io = |e| LogError::io(&self.dir, e);
        let start_base = self.segments.range(..=from_offset).next_back().map_or(i64::MIN, |(b, _)| *b);
        for seg in self.segments.range(start_base..).map(|(_, s)| s) {
            let Some((mut position, _)) = seg.find_batch(from_offset).map_err(io)? else {
                continue;
            };
            while let Some(h) = seg.header_at(position).map_err(io)? {
                if !f(&h) {
                    return Ok(());
                }
                position += h.total_bytes() as u64;
            }
        }
        Ok(())
    }

    /// Removes everything from the batch holding `offset` on, so the log ends at or before
    /// `offset` (follower divergence, KIP-101). Returns the new log end offset.
    pub fn truncate_to(&mut self, offset: i64) -> Result<i64> {
        self.check_writable()?;
        if offset >= self.log_end_offset() {
            return Ok(self.log_end_offset());
        }
        if offset <= self.log_start_offset {
            self.truncate_fully_and_start_at(offset.max(0))?;
            return Ok(self.log_end_offset());
        }
        // Appends still waiting for group commit are synced (and answered) before the cut; the
        // group-commit ends follow the new log end however the cut ends, even if it fails half
        // way (otherwise the old synced end would count new appends below it as synced).
        self.commit.sync_written()?;
        let outcome = self.cut_to(offset);
        self.reset_commit();
        outcome
    }

    /// [`Log::truncate_to`] once the pending syncs are settled.
    fn cut_to(&mut self, offset: i64) -> Result<i64> {
        self.reap_pending_syncs(true)?;
        let dir = self.dir.clone();
        let later: Vec<i64> = self.segments.range(offset + 1..).map(|(b, _)| *b).collect();
        let removed_any = !later.is_empty();
        for base in later {
            let seg = self.segments.remove(&base).expect("listed");
            seg.delete().map_err(|e| LogError::io(&dir, e))?;
        }
        let config = self.config.clone();
        if self.segments.is_empty() {
            // Compaction had emptied (and deleted) every segment at or below `offset`.
            let seg = Segment::create(&dir, offset, &config).map_err(|e| LogError::io(&dir, e))?;
            self.segments.insert(offset, seg);
        }
        let active = self.active_mut();
        if removed_any {
            active.unseal(&config).map_err(|e| LogError::io(&dir, e))?;
        }
        if let Err(e) = active.truncate_to(offset) {
            return Err(self.poison("truncate", e));
        }
        sync_dir(&dir)?;
        let leo = self.log_end_offset();
        if self.epochs.truncate_from_end(leo) {
            self.epochs.persist()?;
        }
        self.high_watermark = self.high_watermark.min(leo);
        self.recovery_point = self.recovery_point.min(leo);
        self.cleaned_to = self.cleaned_to.min(leo);
        self.write_checkpoint(false)?;
        tracing::info!(dir = %dir.display(), requested = offset, log_end = leo, "truncated log");
        Ok(leo)
    }

    /// Deletes every segment and starts an empty log at `offset` (a follower too far behind,
    /// or a replica re-created from scratch).
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<()> {
        self.check_writable()?;
        self.commit.sync_written()?;
        let outcome = self.start_at(offset);
        self.reset_commit();
        outcome
    }

    /// After a truncation (finished or failed half way, with every earlier append synced):
    /// the group-commit ends restart at the log end, in the active segment.
    fn reset_commit(&mut self) {
        let Some(active) = self.segments.values().next_back() else {
            return;
        };
        let next_offset = active.next_offset();
        match active.file().map(Arc::clone) {
            Ok(file) => self.commit.reset(next_offset, file),
            // A sealed segment that became active again and cannot be opened: no append may
            // land anywhere else, so the log refuses writes from here on.
            Err(e) => {
                self.poison("opening the active segment", e);
            }
        }
    }

    /// [`Log::truncate_fully_and_start_at`] once the pending syncs are settled.
    fn start_at(&mut self, offset: i64) -> Result<()> {
        self.reap_pending_syncs(true)?;
        let dir = self.dir.clone();
        for (_, seg) in std::mem::take(&mut self.segments) {
            seg.delete().map_err(|e| LogError::io(&dir, e))?;
        }
        let seg = Segment::create(&dir, offset, &self.config).map_err(|e| LogError::io(&dir, e))?;
        self.segments.insert(offset, seg);
        sync_dir(&dir)?;
        self.log_start_offset = offset;
        self.high_watermark = offset;
        self.recovery_point = offset;
        self.cleaned_to = offset;
        self.epochs.clear();
        self.epochs.persist()?;
        self.write_checkpoint(false)
    }

    /// Deletes whole segments that are past retention (age or total size), oldest first, but
    /// never data at or above the high watermark. Advances the log start offset.
    pub fn apply_retention(&mut self) -> Result<RetentionOutcome> {
        self.check_writable()?;
        let mut outcome = RetentionOutcome::default();
        if !self.config.cleanup_policy.deletes() {
            return Ok(outcome);
        }
        let now = self.clock.now_ms();
        let mut total = self.size_bytes();
        let mut doomed = Vec::new();
        for seg in self.segments.values() {
            let below_hw = seg.next_offset() <= self.high_watermark && !seg.is_empty();
            let expired = self
                .config
                .retention_ms
                .is_some_and(|ms| seg.max_timestamp() >= 0 && seg.max_timestamp() < now - ms as i64);
            let oversized = self.config.retention_bytes.is_some_and(|limit| total.saturating_sub(seg.size()) >= limit);
            if !(below_hw && (expired || oversized)) {
                break;
            }
            total -= seg.size();
            doomed.push(seg.base_offset);
        }
        if doomed.is_empty() {
            return Ok(outcome);
        }
        if doomed.last() == self.segments.keys().next_back() {
            // Everything is past retention: roll so that an (empty) active segment remains.
            let leo = self.log_end_offset();
            self.roll_at(leo)?;
        }
        self.reap_pending_syncs(true)?;
        let dir = self.dir.clone();
        for base in doomed {
            let seg = self.segments.remove(&base).expect("listed");
            outcome.segments_deleted += 1;
            outcome.bytes_deleted += seg.size();
            seg.delete().map_err(|e| LogError::io(&dir, e))?;
        }
        sync_dir(&dir)?;
        let first = *self.segments.keys().next().expect("the active segment remains");
        self.log_start_offset = self.log_start_offset.max(first);
        self.high_watermark = self.high_watermark.max(self.log_start_offset);
        if self.epochs.truncate_from_start(self.log_start_offset) {
            self.epochs.persist()?;
        }
        self.write_checkpoint(false)?;
        tracing::info!(dir = %dir.display(), deleted = outcome.segments_deleted, log_start = self.log_start_offset, "retention deleted segments");
        Ok(outcome)
    }

    /// Kafka's DeleteRecords: moves the log start offset up to `offset` and deletes the
    /// segments that lie wholly below it. Records below the new start are never served again,
    /// even those that share a batch with the first kept one (reads start at the batch that
    /// holds the log start, as Kafka's do; clients skip the records below their fetch
    /// offset). `offset` above the high watermark is `OffsetOutOfRange`; at or below the
    /// current start it changes nothing. Durable when it returns: the checkpoint holding the
    /// new start is written before the segments are deleted. Returns the log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64> {
        self.check_writable()?;
        if offset > self.high_watermark || offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset(),
            });
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        self.log_start_offset = offset;
        self.write_checkpoint(false)?;
        let doomed: Vec<i64> = self
            .segments
            .iter()
            .filter(|(_, seg)| seg.next_offset() <= offset && !seg.is_empty())
            .map(|(base, _)| *base)
            .collect();
        if !doomed.is_empty() {
            if doomed.last() == self.segments.keys().next_back() {
                // Every record is deleted: roll so that an (empty) active segment remains.
                let leo = self.log_end_offset();
                self.roll_at(leo)?;
            }
            self.reap_pending_syncs(true)?;
            let dir = self.dir.clone();
            for base in &doomed {
                let seg = self.segments.remove(base).expect("listed");
                seg.delete().map_err(|e| LogError::io(&dir, e))?;
            }
            sync_dir(&dir)?;
        }
        if self.epochs.truncate_from_start(self.log_start_offset) {
            self.epochs.persist()?;
        }
        tracing::info!(
            dir = %self.dir.display(),
            log_start = self.log_start_offset,
            segments_deleted = doomed.len(),
            "records deleted below the new log start"
        );
        Ok(self.log_start_offset)
    }

    /// Writes the high watermark, log start and recovery point to the checkpoint file.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.reap_pending_syncs(false)?;
        self.write_checkpoint(false)
    }

    /// From now on, tells `observer` how long each segment sync takes (see [`SyncObserver`]).
    pub fn observe_syncs(&mut self, observer: SyncObserver) {
        self.commit.observe(observer);
    }

    /// Syncs every segment and index and advances the recovery point to the log end.
    pub fn flush(&mut self) -> Result<()> {
        self.sync_segments()?;
        self.write_checkpoint(false)
    }

    /// [`Log::flush`] without the checkpoint write: what [`Log::close`] needs, since it writes
    /// the clean-shutdown checkpoint right after (one atomic replace, two fsyncs, fewer).
    fn sync_segments(&mut self) -> Result<()> {
        self.check_writable()?;
        self.reap_pending_syncs(true)?;
        let rp = self.recovery_point;
        let bases: Vec<i64> =
            self.segments.iter().filter(|(_, s)| s.next_offset() > rp || s.is_empty()).map(|(b, _)| *b).collect();
        for base in bases {
            let segment = &self.segments[&base];
            if let Err(e) = timed_sync(self.commit.observer().as_ref(), SyncCause::Flush, || segment.sync_all()) {
                return Err(self.poison("flush", e));
            }
        }
        self.unsynced_since_ms = None;
        self.recovery_point = self.log_end_offset();
        self.commit.covered(self.recovery_point);
        Ok(())
    }

    /// Flushes everything, trims the active segment's indexes and writes the clean-shutdown
    /// checkpoint, so the next open skips recovery.
    pub fn close(mut self) -> Result<()> {
        self.check_writable()?;
        self.sync_segments()?;
        let dir = self.dir.clone();
        let active = self.active_mut();
        active.seal().map_err(|e| LogError::io(&dir, e))?;
        active.sync_all().map_err(|e| LogError::io(&dir, e))?;
        self.write_checkpoint(true)
    }

    fn write_checkpoint(&self, clean_shutdown: bool) -> Result<()> {
        self.checkpoint_state(clean_shutdown).write(&self.dir)
    }

    fn checkpoint_state(&self, clean_shutdown: bool) -> Checkpoint {
        let active = self.active();
        Checkpoint {
            clean_shutdown,
            log_start_offset: self.log_start_offset,
            recovery_point: self.recovery_point,
            high_watermark: self.high_watermark,
            log_end_offset: self.log_end_offset(),
            active_segment_base: active.base_offset,
            active_segment_bytes: active.size(),
        }
    }

    pub(crate) fn clock_now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The cleaner checkpoint (see the field); `i64::MIN` before the first compaction.
    pub(crate) fn cleaned_to(&self) -> i64 {
        self.cleaned_to
    }

    pub(crate) fn set_cleaned_to(&mut self, offset: i64) {
        self.cleaned_to = offset;
    }

    pub(crate) fn segments(&self) -> &BTreeMap<i64, Segment> {
        &self.segments
    }

    pub(crate) fn replace_segment(&mut self, base: i64, segment: Option<Segment>) {
        match segment {
            Some(s) => {
                self.segments.insert(base, s);
            }
            None => {
                self.segments.remove(&base);
            }
        }
    }
}

fn first_record_at_or_after(batch: &[u8], header: &BatchHeader, timestamp: i64, log_start: i64) -> (i64, i64) {
    const LOG_APPEND_TIME_FLAG: i16 = 1 << 3;
    let fallback = (header.base_offset.max(log_start), header.max_timestamp);
    if header.attributes & LOG_APPEND_TIME_FLAG != 0 {
        return fallback;
    }
    let Ok(section) = records_section(batch, header) else {
        return fallback;
    };
    let Ok(records) = parse_records(&section, header.record_count) else {
        return fallback;
    };
    records
        .iter()
        .map(|r| (header.base_offset + i64::from(r.offset_delta), header.base_timestamp + r.timestamp_delta))
        .find(|&(offset, ts)| ts >= timestamp && offset >= log_start)
        .unwrap_or(fallback)
}

/// Decides whether the cut a [`Segment::scan`] calls for may be made; returns whether it
/// loses offsets (rather than junk after the last batch, which a segment whose batches reach
/// the next segment's base can only have).
///
/// Refuses a recovery that would lose data that was synced: a segment whose first batch lies
/// below its file name (renamed or copied by hand: no crash writes that), or a cut that loses
/// offsets below the recovery point, where every byte was fsynced before the checkpoint said
/// so — damage there is the disk's, not a crash's, and cutting would silently drop
/// acknowledged records in the middle of the log and every segment after them. Nothing has
/// been changed on disk when this refuses. Without a checkpoint the recovery point is unknown
/// (`i64::MIN`) and recovery truncates, as Kafka's does.
fn check_recoverable(
    dir: &Path,
    path: &Path,
    scan: &crate::segment::Scan,
    next_base: Option<i64>,
    recovery_point: i64,
) -> Result<bool> {
    let damaged = |reason: String| Err(LogError::Damaged { dir: dir.to_path_buf(), reason });
    let segment = &scan.segment;
    if let Some(first) = scan.first_batch_below_name {
        return damaged(format!(
            "segment file {} is named for offset {} but its first batch starts at offset {first}; \
             rename it to {} or remove the partition directory to re-replicate it",
            path.display(),
            segment.base_offset,
            file_name(first, "log")
        ));
    }
    let first_lost = segment.next_offset();
    let lost_offsets = scan.file_bytes > segment.size() && next_base != Some(first_lost);
    if lost_offsets && first_lost < recovery_point {
        return damaged(format!(
            "segment file {} fails validation at byte {} (offset {first_lost}), below the recovery \
             point {recovery_point}: data that was synced is damaged. Nothing was changed; remove \
             the partition directory to re-replicate it from the leader",
            path.display(),
            segment.size()
        ));
    }
    Ok(lost_offsets)
}

/// Lists segment base offsets and removes leftovers of interrupted operations: temporary
/// checkpoint files, unfinished cleaner output, and index files whose segment is gone.
fn scan_directory(dir: &Path) -> Result<Vec<i64>> {
    let mut bases = Vec::new();
    let mut index_files = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| LogError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.ends_with(".tmp") || name.ends_with(".cleaned") {
            tracing::info!(file = %path.display(), "removing leftover of an interrupted operation");
            fs::remove_file(&path).map_err(|e| LogError::io(&path, e))?;
        } else if let Some(stem) = name.strip_suffix(".log") {
            if let Some(base) = parse_base(stem) {
                bases.push(base);
            }
        } else if let Some(stem) = name.strip_suffix(".index").or_else(|| name.strip_suffix(".timeindex")) {
            if let Some(base) = parse_base(stem) {
                index_files.push((base, path));
            }
        }
    }
    bases.sort_unstable();
    for (base, path) in index_files {
        if bases.binary_search(&base).is_err() {
            fs::remove_file(&path).map_err(|e| LogError::io(&path, e))?;
        }
    }
    Ok(bases)
}

fn parse_base(stem: &str) -> Option<i64> {
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok()).flatten()
}
