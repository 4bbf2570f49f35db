//! The Raft log store: openraft's [`RaftLogStorage`] over [`SegmentedLog`] files.
//!
//! Every entry not yet purged is kept in memory as well as on disk, so reads (replication to
//! followers, applying to the state machine) never touch the disk. Memory is bounded by the
//! snapshot policy: entries are purged once a snapshot covers them (see
//! [`MetaConfig`](crate::MetaConfig); with the defaults at most
//! [`LOG_CACHE_BYTES_WORST_DEFAULT`](crate::config::LOG_CACHE_BYTES_WORST_DEFAULT)).
//!
//! All disk writes go through one writer thread, in the order they were issued (openraft
//! requires serialized log I/O). The writer batches the appends it finds queued, writes them,
//! fsyncs once, and only then calls each append's [`LogFlushed`] callback: an entry is never
//! reported durable before its fsync returned. (openraft 0.9 waits for each append before the
//! next, so here a batch is usually one append; commands are grouped into entries above Raft,
//! in `proposal`.) The queue to the writer is unbounded for that reason: openraft keeps at most
//! one append outstanding, and committed-id updates are coalesced by the writer. The vote is saved before
//! `save_vote` returns; truncation and purge complete before their calls return; the committed
//! log id is written behind, at most every [`COMMITTED_WRITE_INTERVAL_MS`] and when the store
//! closes (it is only a hint; losing the newest value in a crash means the node re-applies less
//! on restart and learns the rest from the leader). Writing it on every commit would put two
//! more fsyncs (file and directory) on the path of every append.
//!
//! If an fsync fails, or a write fails for any reason but a full disk, the store is
//! poisoned: the failed append's callback gets the error and every later write is refused,
//! because the page cache can no longer be trusted. Restart the node to recover from the files.
//!
//! A write that finds the disk full (ENOSPC, EDQUOT) is not an error to openraft — openraft
//! treats every storage error as fatal and stops the Raft node for good — but a stall: the
//! writer undoes it (an append: the log is reopened from its files, which cuts the torn record
//! and checks every CRC, and any whole record of the failed append is removed; the state file:
//! its temporary copy is removed) and retries it, with every later write queued behind it in
//! order, after a pause growing from [`LOG_WRITE_NO_SPACE_RETRY_MIN_MS`] to
//! [`LOG_WRITE_NO_SPACE_RETRY_MAX_MS`]. Meanwhile the append's callback is not called, so the
//! entries are not reported durable and this node does not count towards committing them;
//! proposals through it time out; a vote it must save waits. [`StoreHealth`] reports the stall
//! (`/ready` says 503), logged once when it starts and once when it ends. When space returns
//! the queued writes complete and the node carries on without a restart.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;
use std::time::Instant;

use openraft::storage::LogFlushed;
use openraft::storage::RaftLogStorage;
use openraft::AnyError;
use openraft::LogState;
use openraft::RaftLogReader;
use openraft::StorageIOError;
use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::limits::COMMITTED_WRITE_INTERVAL_MS;
use crate::limits::LOG_ENTRY_BYTES_MAX;
use crate::limits::LOG_SEGMENT_BYTES_MAX;
use crate::limits::LOG_WRITE_NO_SPACE_PROBE_BYTES_MIN;
use crate::limits::LOG_WRITE_NO_SPACE_RETRY_MAX_MS;
use crate::limits::LOG_WRITE_NO_SPACE_RETRY_MIN_MS;
use crate::log_segments::is_out_of_space;
use crate::log_segments::PersistedState;
use crate::log_segments::SegmentedLog;
use crate::types::Entry;
use crate::types::LogId;
use crate::types::StorageError;
use crate::types::TypeConfig;
use crate::types::Vote;

/// How often [`WriterJoin::wait`] checks whether the writer thread has exited.
const WRITER_EXIT_POLL_MS: u64 = 2;

/// Writer operations queued for the writer thread, at most this many handled per batch.
const WRITER_BATCH_OPS_MAX: usize = 1_024;

/// In-memory state shared by the store and its readers.
#[derive(Debug, Default)]
struct Cache {
    entries: BTreeMap<u64, Entry>,
    state: PersistedState,
    poisoned: Option<String>,
    /// Set while writes wait for disk space (the cause).
    stalled: Option<String>,
}

/// Whether the log store can write: a cheap handle for readiness checks.
#[derive(Debug, Clone)]
pub struct StoreHealth {
    cache: Arc<Mutex<Cache>>,
}

impl StoreHealth {
    /// Why the store cannot write now, if it cannot: poisoned (until restart) or waiting for
    /// disk space (until there is space).
    pub fn write_refusal(&self) -> Option<String> {
        let cache = self.cache.lock().expect("log cache lock poisoned");
        match (&cache.poisoned, &cache.stalled) {
            (Some(reason), _) => Some(format!("Raft log refuses writes after an I/O failure: {reason}")),
            (None, Some(reason)) => Some(format!("Raft log waits for disk space: {reason}")),
            (None, None) => None,
        }
    }
}

type Reply = oneshot::Sender<Result<(), String>>;

enum WriteOp {
    Append {
        records: Vec<(u64, Vec<u8>)>,
        callback: LogFlushed<TypeConfig>,
    },
    /// Write the state file; reply once durable (`None`: write behind, coalesced).
    SaveState {
        state: PersistedState,
        reply: Option<Reply>,
    },
    Truncate {
        index: u64,
        reply: Reply,
    },
    Purge {
        state: PersistedState,
        index: u64,
        reply: Reply,
    },
}

/// The on-disk Raft log store. Cheap to clone a [`LogReader`] from.
pub struct LogStore {
    cache: Arc<Mutex<Cache>>,
    ops: mpsc::Sender<WriteOp>,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

/// Reads entries from the in-memory copy of the log (used by replication tasks).
#[derive(Debug, Clone)]
pub struct LogReader {
    cache: Arc<Mutex<Cache>>,
}

/// Waits for a closed log store's writer thread to finish its last writes.
#[derive(Debug, Clone)]
pub struct WriterJoin(Arc<Mutex<Option<JoinHandle<()>>>>);

impl WriterJoin {
    /// Waits up to `timeout` for the writer thread to exit (it exits once the store is
    /// dropped and its queued writes are done). Returns whether it exited.
    pub async fn wait(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let finished = self.0.lock().expect("writer join lock").as_ref().is_none_or(|h| h.is_finished());
            if finished {
                if let Some(handle) = self.0.lock().expect("writer join lock").take() {
                    if handle.join().is_err() {
                        tracing::error!("Raft log writer thread panicked");
                    }
                }
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(WRITER_EXIT_POLL_MS)).await;
        }
    }
}

impl LogStore {
    /// Opens the log in `dir` (created if missing), recovering a torn tail.
    pub fn open(dir: &Path) -> Result<LogStore, StoreError> {
        LogStore::open_with_segment_bytes(dir, LOG_SEGMENT_BYTES_MAX)
    }

    /// Like [`LogStore::open`], rolling segments at `segment_bytes_max` (clamped to at most
    /// [`LOG_SEGMENT_BYTES_MAX`]). Tests use small segments to exercise rolling and purging.
    pub fn open_with_segment_bytes(dir: &Path, segment_bytes_max: u64) -> Result<LogStore, StoreError> {
        let (segments, recovered) = SegmentedLog::open(dir, segment_bytes_max)?;
        tracing::info!(
            dir = %dir.display(),
            entries = recovered.entries.len(),
            last_purged = ?recovered.state.last_purged,
            "opened Raft log"
        );
        let cache = Cache {
            entries: recovered.entries.into_iter().map(|e| (e.log_id.index, e)).collect(),
            state: recovered.state,
            poisoned: None,
            stalled: None,
        };
        let cache = Arc::new(Mutex::new(cache));
        let (ops, receiver) = mpsc::channel();
        let writer_cache = cache.clone();
        let handle = std::thread::Builder::new()
            .name("raft-log-writer".to_string())
            .spawn(move || run_writer(segments, receiver, writer_cache))
            .map_err(|e| StoreError::io("spawn writer thread for", dir, e))?;
        Ok(LogStore { cache, ops, writer: Arc::new(Mutex::new(Some(handle))) })
    }

    /// A handle that says whether the store can write.
    pub fn health(&self) -> StoreHealth {
        StoreHealth { cache: self.cache.clone() }
    }

    /// A handle to wait for the writer thread after the store is dropped.
    pub fn writer_join(&self) -> WriterJoin {
        WriterJoin(self.writer.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().expect("log cache lock poisoned")
    }

    // `StorageError` is openraft's error type, which the trait methods must return.
    #[allow(clippy::result_large_err)]
    fn check_poisoned(&self) -> Result<(), StorageError> {
        match &self.lock().poisoned {
            Some(reason) => Err(write_error(&StoreError::Poisoned(reason.clone()))),
            None => Ok(()),
        }
    }

    #[allow(clippy::result_large_err)]
    fn send(&self, op: WriteOp) -> Result<(), StorageError> {
        self.ops.send(op).map_err(|_| write_error(&StoreError::Poisoned("writer thread stopped".to_string())))
    }

    async fn send_and_wait(&self, op: impl FnOnce(Reply) -> WriteOp) -> Result<(), StorageError> {
        let (reply, done) = oneshot::channel();
        self.send(op(reply))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(write_error(&StoreError::Poisoned(reason))),
            Err(_) => Err(write_error(&StoreError::Poisoned("writer thread stopped".to_string()))),
        }
    }
}

fn write_error(error: &(impl std::error::Error + 'static)) -> StorageError {
    StorageIOError::write_logs(AnyError::new(error)).into()
}

fn read_entries(cache: &Mutex<Cache>, range: impl RangeBounds<u64>) -> Vec<Entry> {
    let cache = cache.lock().expect("log cache lock poisoned");
    cache.entries.range(range).map(|(_, e)| e.clone()).collect()
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_entries(&self.cache, range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_entries(&self.cache, range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let cache = self.lock();
        let last_purged_log_id = cache.state.last_purged;
        let last_log_id = cache.entries.last_key_value().map(|(_, e)| e.log_id).or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader { cache: self.cache.clone() }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.check_poisoned()?;
        let state = {
            let mut cache = self.lock();
            cache.state.vote = Some(*vote);
            cache.state.clone()
        };
        self.send_and_wait(|reply| WriteOp::SaveState { state, reply: Some(reply) })
            .await
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.lock().state.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.check_poisoned()?;
        let state = {
            let mut cache = self.lock();
            cache.state.committed = committed;
            cache.state.clone()
        };
        self.send(WriteOp::SaveState { state, reply: None })
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.lock().state.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        self.check_poisoned()?;
        let mut records = Vec::new();
        let mut cache = self.lock();
        for entry in entries {
            let payload = postcard::to_allocvec(&entry).map_err(|e| write_error(&e))?;
            if payload.len() > LOG_ENTRY_BYTES_MAX {
                return Err(write_error(&std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("entry of {} bytes exceeds {LOG_ENTRY_BYTES_MAX}", payload.len()),
                )));
            }
            records.push((entry.log_id.index, payload));
            cache.entries.insert(entry.log_id.index, entry);
        }
        drop(cache);
        self.send(WriteOp::Append { records, callback })
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.check_poisoned()?;
        self.lock().entries.split_off(&log_id.index);
        self.send_and_wait(|reply| WriteOp::Truncate { index: log_id.index, reply }).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.check_poisoned()?;
        let state = {
            let mut cache = self.lock();
            let keep = cache.entries.split_off(&(log_id.index + 1));
            cache.entries = keep;
            cache.state.last_purged = Some(log_id);
            cache.state.clone()
        };
        self.send_and_wait(|reply| WriteOp::Purge { state, index: log_id.index, reply }).await
    }
}

/// The writer thread: executes queued writes in order until the store is dropped.
fn run_writer(mut log: SegmentedLog, receiver: mpsc::Receiver<WriteOp>, cache: Arc<Mutex<Cache>>) {
    let mut poisoned: Option<String> = None;
    // The newest state whose only change is the committed id, not yet written.
    let mut behind: Option<PersistedState> = None;
    let mut last_behind_write = Instant::now();
    let interval = Duration::from_millis(COMMITTED_WRITE_INTERVAL_MS);
    // Writes refused for lack of space, in order, retried before anything newer.
    let mut waiting: Vec<WriteOp> = Vec::new();
    // While out of space: the pause before the next retry.
    let mut retry_pause: Option<Duration> = None;
    loop {
        let timeout = match (retry_pause, &behind) {
            (Some(pause), _) => Some(pause),
            (None, Some(_)) => Some(interval.saturating_sub(last_behind_write.elapsed())),
            (None, None) => None,
        };
        let first = match timeout {
            Some(timeout) => match receiver.recv_timeout(timeout) {
                Ok(op) => Some(op),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                // The store is gone; writes still waiting for space were never acknowledged.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
            None => match receiver.recv() {
                Ok(op) => Some(op),
                Err(_) => break,
            },
        };
        if retry_pause.is_some() && !has_room(&mut log, &waiting) {
            // Still full: wait longer, keeping what arrived in order behind the stalled ops.
            waiting.extend(first);
            retry_pause = Some(next_retry_pause(retry_pause));
            continue;
        }
        let mut batch: Vec<WriteOp> = std::mem::take(&mut waiting);
        batch.extend(first);
        while !batch.is_empty() && batch.len() < WRITER_BATCH_OPS_MAX {
            match receiver.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if retry_pause.is_some() {
            // There is room again: the stall ends before this batch answers the writes that
            // waited, so whoever they wake sees the store healthy (set again below if the
            // space is gone again).
            cache.lock().expect("log cache lock poisoned").stalled = None;
        }
        let mut result = match run_batch(&mut log, batch, &mut poisoned, &mut behind) {
            BatchEnd::Done(result) => {
                if retry_pause.take().is_some() {
                    tracing::info!("Raft log writes succeed again: disk space is available");
                }
                result
            }
            BatchEnd::OutOfSpace { error, remaining } => {
                if retry_pause.is_none() {
                    tracing::error!(%error, "Raft log write found no space left; writes wait and are retried until there is space");
                }
                cache.lock().expect("log cache lock poisoned").stalled = Some(error.to_string());
                retry_pause = Some(next_retry_pause(retry_pause));
                waiting = remaining;
                Ok(())
            }
        };
        if result.is_ok() && poisoned.is_none() && retry_pause.is_none() && last_behind_write.elapsed() >= interval {
            if let Some(state) = behind.take() {
                last_behind_write = Instant::now();
                result = match log.save_state(&state) {
                    // Only a hint: kept and written with the next state change.
                    Err(error) if is_out_of_space(&error) => {
                        behind = Some(state);
                        Ok(())
                    }
                    other => other,
                };
            }
        }
        if let Err(error) = result {
            tracing::error!(%error, "Raft log write failed; the log store refuses further writes");
            let reason = error.to_string();
            cache.lock().expect("log cache lock poisoned").poisoned = Some(reason.clone());
            poisoned = Some(reason);
            for op in waiting.drain(..) {
                fail_op(op, &error.to_string());
            }
        }
    }
    if let (Some(state), None) = (behind, &poisoned) {
        if let Err(error) = log.save_state(&state) {
            tracing::error!(%error, "writing the committed log id at shutdown failed");
        }
    }
    tracing::debug!("Raft log writer stopped");
}

/// Whether the disk has room for the first waiting write (an append's records, or a state
/// file). An error other than a full disk is left for the write itself to meet.
fn has_room(log: &mut SegmentedLog, waiting: &[WriteOp]) -> bool {
    let bytes = match waiting.first() {
        Some(WriteOp::Append { records, .. }) => {
            records.iter().map(|(_, payload)| payload.len() + crate::frame::RECORD_HEADER_BYTES).sum()
        }
        _ => LOG_WRITE_NO_SPACE_PROBE_BYTES_MIN,
    };
    log.has_room_for(bytes.max(LOG_WRITE_NO_SPACE_PROBE_BYTES_MIN)).unwrap_or(true)
}

/// The pause before the next retry while out of space: doubling, within the limits.
fn next_retry_pause(previous: Option<Duration>) -> Duration {
    let min = Duration::from_millis(LOG_WRITE_NO_SPACE_RETRY_MIN_MS);
    let max = Duration::from_millis(LOG_WRITE_NO_SPACE_RETRY_MAX_MS);
    previous.map_or(min, |pause| (pause * 2).min(max))
}

/// How a batch of writes ended.
enum BatchEnd {
    /// Every op ran (the result says whether the last write failed, poisoning the store).
    Done(std::io::Result<()>),
    /// An op found no space: it was undone, and it and the ops after it are to be retried in
    /// order. Appends before it were fsynced and reported durable.
    OutOfSpace { error: std::io::Error, remaining: Vec<WriteOp> },
}

/// Runs one batch: appends are written as they come and fsynced together; their callbacks run
/// only after that fsync. Ops that must be durable on return first flush pending appends.
/// A committed-only state change is left in `behind` for the caller to write later.
fn run_batch(
    log: &mut SegmentedLog,
    batch: Vec<WriteOp>,
    poisoned: &mut Option<String>,
    behind: &mut Option<PersistedState>,
) -> BatchEnd {
    let mut pending: Vec<LogFlushed<TypeConfig>> = Vec::new();
    let mut result = Ok(());
    let mut ops = batch.into_iter();
    while let Some(op) = ops.next() {
        if let Some(reason) = poisoned.clone().or_else(|| result.as_ref().err().map(|e: &std::io::Error| e.to_string()))
        {
            fail_op(op, &reason);
            continue;
        }
        let (op, outcome) = run_op(log, op, &mut pending, behind);
        match outcome {
            Err(error) if is_out_of_space(&error) => {
                // Appends written before this op are whole on disk: make them durable now.
                let flushed = flush(log, &mut pending);
                let undone = match (&op, flushed) {
                    (_, Err(error)) => Err(error),
                    (Some(WriteOp::Append { records, .. }), Ok(())) => {
                        let first = records.first().map(|(index, _)| *index).unwrap_or_default();
                        log.recover_failed_append(first).map_err(std::io::Error::other)
                    }
                    (_, Ok(())) => Ok(()),
                };
                if let Err(undo_error) = undone {
                    result = Err(undo_error);
                    if let Some(op) = op {
                        fail_op(op, &format!("{error}"));
                    }
                    continue;
                }
                let remaining = op.into_iter().chain(ops).collect();
                return BatchEnd::OutOfSpace { error, remaining };
            }
            outcome => result = outcome,
        }
    }
    if result.is_ok() {
        result = flush(log, &mut pending);
    }
    if let Err(error) = &result {
        for callback in pending.drain(..) {
            callback.log_io_completed(Err(std::io::Error::new(error.kind(), error.to_string())));
        }
    }
    BatchEnd::Done(result)
}

/// Runs one op. Out of space, the op comes back unanswered (to be retried); otherwise it has
/// been answered (or its append callback is in `pending`) and `None` comes back.
fn run_op(
    log: &mut SegmentedLog,
    op: WriteOp,
    pending: &mut Vec<LogFlushed<TypeConfig>>,
    behind: &mut Option<PersistedState>,
) -> (Option<WriteOp>, std::io::Result<()>) {
    let retry_or_answer = |op: WriteOp, outcome: std::io::Result<()>, reply: fn(WriteOp, &std::io::Result<()>)| {
        if outcome.as_ref().is_err_and(is_out_of_space) {
            (Some(op), outcome)
        } else {
            reply(op, &outcome);
            (None, outcome)
        }
    };
    match op {
        WriteOp::Append { records, callback } => match log.append(&records) {
            Err(error) if is_out_of_space(&error) => (Some(WriteOp::Append { records, callback }), Err(error)),
            outcome => {
                pending.push(callback);
                (None, outcome)
            }
        },
        WriteOp::SaveState { state, reply: None } => {
            *behind = Some(state);
            (None, Ok(()))
        }
        WriteOp::SaveState { state, reply: Some(reply) } => {
            // The state carries the newest committed id too, so nothing stays behind.
            *behind = None;
            let outcome = flush(log, pending).and_then(|()| log.save_state(&state));
            retry_or_answer(WriteOp::SaveState { state, reply: Some(reply) }, outcome, answer_op)
        }
        WriteOp::Truncate { index, reply } => {
            let outcome = flush(log, pending).and_then(|()| log.truncate_from(index));
            retry_or_answer(WriteOp::Truncate { index, reply }, outcome, answer_op)
        }
        WriteOp::Purge { state, index, reply } => {
            *behind = None;
            let outcome =
                flush(log, pending).and_then(|()| log.save_state(&state)).and_then(|()| log.purge_upto(index));
            retry_or_answer(WriteOp::Purge { state, index, reply }, outcome, answer_op)
        }
    }
}

/// Answers an op that carries a reply.
fn answer_op(op: WriteOp, outcome: &std::io::Result<()>) {
    match op {
        WriteOp::SaveState { reply: Some(reply), .. }
        | WriteOp::Truncate { reply, .. }
        | WriteOp::Purge { reply, .. } => answer(reply, outcome),
        WriteOp::SaveState { reply: None, .. } | WriteOp::Append { .. } => {}
    }
}

/// Fsyncs pending appends, then reports them durable.
fn flush(log: &mut SegmentedLog, pending: &mut Vec<LogFlushed<TypeConfig>>) -> std::io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    log.sync()?;
    for callback in pending.drain(..) {
        callback.log_io_completed(Ok(()));
    }
    Ok(())
}

fn answer(reply: Reply, outcome: &std::io::Result<()>) {
    // The caller may have given up waiting; nothing to do then.
    let _ = reply.send(outcome.as_ref().map(|_| ()).map_err(|e| e.to_string()));
}

fn fail_op(op: WriteOp, reason: &str) {
    let error = || std::io::Error::other(format!("log store poisoned: {reason}"));
    match op {
        WriteOp::Append { callback, .. } => callback.log_io_completed(Err(error())),
        WriteOp::SaveState { reply: Some(reply), .. }
        | WriteOp::Truncate { reply, .. }
        | WriteOp::Purge { reply, .. } => answer(reply, &Err(error())),
        WriteOp::SaveState { reply: None, .. } => {}
    }
}
