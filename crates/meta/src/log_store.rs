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
//! If a write or fsync fails, the store is poisoned: the failed append's callback gets the
//! error and every later write is refused, because the page cache can no longer be trusted.
//! Restart the node to recover from the files.

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
    loop {
        let first = if behind.is_some() {
            match receiver.recv_timeout(interval.saturating_sub(last_behind_write.elapsed())) {
                Ok(op) => Some(op),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match receiver.recv() {
                Ok(op) => Some(op),
                Err(_) => break,
            }
        };
        let mut batch: Vec<WriteOp> = first.into_iter().collect();
        while !batch.is_empty() && batch.len() < WRITER_BATCH_OPS_MAX {
            match receiver.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut result = run_batch(&mut log, batch, &mut poisoned, &mut behind);
        if result.is_ok() && poisoned.is_none() && last_behind_write.elapsed() >= interval {
            if let Some(state) = behind.take() {
                result = log.save_state(&state);
                last_behind_write = Instant::now();
            }
        }
        if let Err(error) = result {
            tracing::error!(%error, "Raft log write failed; the log store refuses further writes");
            let reason = error.to_string();
            cache.lock().expect("log cache lock poisoned").poisoned = Some(reason.clone());
            poisoned = Some(reason);
        }
    }
    if let (Some(state), None) = (behind, &poisoned) {
        if let Err(error) = log.save_state(&state) {
            tracing::error!(%error, "writing the committed log id at shutdown failed");
        }
    }
    tracing::debug!("Raft log writer stopped");
}

/// Runs one batch: appends are written as they come and fsynced together; their callbacks run
/// only after that fsync. Ops that must be durable on return first flush pending appends.
/// A committed-only state change is left in `behind` for the caller to write later.
fn run_batch(
    log: &mut SegmentedLog,
    batch: Vec<WriteOp>,
    poisoned: &mut Option<String>,
    behind: &mut Option<PersistedState>,
) -> std::io::Result<()> {
    let mut pending: Vec<LogFlushed<TypeConfig>> = Vec::new();
    let mut result = Ok(());
    for op in batch {
        if let Some(reason) = poisoned.clone().or_else(|| result.as_ref().err().map(|e: &std::io::Error| e.to_string()))
        {
            fail_op(op, &reason);
            continue;
        }
        result = match op {
            WriteOp::Append { records, callback } => {
                pending.push(callback);
                log.append(&records)
            }
            WriteOp::SaveState { state, reply: None } => {
                *behind = Some(state);
                Ok(())
            }
            WriteOp::SaveState { state, reply: Some(reply) } => {
                // The state carries the newest committed id too, so nothing stays behind.
                *behind = None;
                let outcome = flush(log, &mut pending).and_then(|()| log.save_state(&state));
                answer(reply, &outcome);
                outcome
            }
            WriteOp::Truncate { index, reply } => {
                let outcome = flush(log, &mut pending).and_then(|()| log.truncate_from(index));
                answer(reply, &outcome);
                outcome
            }
            WriteOp::Purge { state, index, reply } => {
                *behind = None;
                let outcome =
                    flush(log, &mut pending).and_then(|()| log.save_state(&state)).and_then(|()| log.purge_upto(index));
                answer(reply, &outcome);
                outcome
            }
        };
    }
    if result.is_ok() {
        result = flush(log, &mut pending);
    }
    if let Err(error) = &result {
        for callback in pending.drain(..) {
            callback.log_io_completed(Err(std::io::Error::new(error.kind(), error.to_string())));
        }
    }
    result
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
