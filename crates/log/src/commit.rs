//! Group commit: one `fdatasync` of the active segment covers every append written before it
//! started (flush policy [`FlushPolicy::EveryBatch`](crate::FlushPolicy::EveryBatch), Kafka's
//! `flush.messages=1`).
//!
//! The log writes an append into the page cache under its owner's lock and hands back a
//! [`SyncWait`]; the caller releases the lock and waits, so appends keep arriving while a sync
//! runs. Whoever waits first for bytes not yet synced becomes the *syncer*: it takes the log
//! end written so far as its target, syncs a shared handle of the active segment without any
//! lock held, publishes the new synced end and wakes the others. A waiter whose target is
//! already covered returns at once; one that arrived while the sync ran waits for it and then
//! syncs everything that piled up meanwhile, in one call. So a partition pays one fsync per
//! round of concurrent appends, not one per append.
//!
//! Rules that keep it correct:
//! - `written` and `file` change only under the log's owner lock (`&mut Log`), together, so a
//!   syncer's (target, file) pair always names a file that holds every byte below the target
//!   not synced yet. A roll syncs the sealed segment whole before the new one becomes the
//!   active file ([`GroupCommit::covered`]), so a target in a rolled segment is covered even
//!   when the syncer in flight syncs the old file or none syncs it at all.
//! - `synced` only grows, except when the log is truncated: the log first syncs everything
//!   written ([`GroupCommit::sync_written`]) with no syncer in flight, then resets both ends and
//!   bumps the `generation`; a waiter from an earlier generation had its bytes synced before
//!   the cut and returns.
//! - A failed sync poisons the log for good (until it is reopened): the cause is kept here,
//!   every waiter not covered before the failure gets [`LogError::Poisoned`], never success,
//!   and the log refuses every later write.

use std::fs::File;
use std::path::PathBuf;
#[cfg(any(test, feature = "fault-injection"))]
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::error::{LogError, Result};
use crate::log::{timed_sync, SyncCause, SyncObserver};

/// The group-commit state of one log, shared by the log and its [`SyncWait`]s.
pub(crate) struct GroupCommit {
    dir: PathBuf,
    state: Mutex<CommitState>,
    /// Signalled whenever a sync ends (successful or not) and when the log resets the ends.
    changed: Condvar,
    /// Told the duration of every sync of the log's segments, here and by the log itself
    /// (one observation per `fdatasync`/`fsync`; [`crate::Log::observe_syncs`]).
    observer: Mutex<Option<SyncObserver>>,
    /// [`crate::Fault::FailNextSync`]: the next sync of the active segment fails.
    #[cfg(any(test, feature = "fault-injection"))]
    fail_next_sync: AtomicBool,
}

struct CommitState {
    /// Log end offset of the last append that waits for a sync (offsets below are written).
    written: i64,
    /// Offset below which everything written is synced.
    synced: i64,
    /// A syncer is running `fdatasync` now (outside this lock).
    syncing: bool,
    /// The active segment's file: what a syncer syncs.
    file: Arc<File>,
    /// Bumped when the log is truncated and the ends are reset.
    generation: u64,
    /// Why the log refuses writes: a sync (or another write) failed. Permanent.
    failure: Option<String>,
}

impl GroupCommit {
    /// State for a log whose bytes below `log_end` are all synced, appending to `file`.
    pub(crate) fn new(dir: PathBuf, log_end: i64, file: Arc<File>) -> GroupCommit {
        GroupCommit {
            dir,
            state: Mutex::new(CommitState {
                written: log_end,
                synced: log_end,
                syncing: false,
                file,
                generation: 0,
                failure: None,
            }),
            changed: Condvar::new(),
            observer: Mutex::new(None),
            #[cfg(any(test, feature = "fault-injection"))]
            fail_next_sync: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CommitState> {
        // Nothing panics while holding the lock; a poisoned mutex still holds consistent state.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn observe(&self, observer: SyncObserver) {
        *self.observer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(observer);
    }

    /// The sync observer, if one was set.
    pub(crate) fn observer(&self) -> Option<SyncObserver> {
        self.observer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    #[cfg(any(test, feature = "fault-injection"))]
    pub(crate) fn fail_next_sync(&self) {
        self.fail_next_sync.store(true, Ordering::Release);
    }

    /// `fdatasync`s `file` for the flush policy, timed for the observer (and failing on
    /// purpose when a test asked for it).
    pub(crate) fn sync_file(&self, file: &File) -> std::io::Result<()> {
        let observer = self.observer();
        #[cfg(any(test, feature = "fault-injection"))]
        if self.fail_next_sync.swap(false, Ordering::AcqRel) {
            return timed_sync(observer.as_ref(), SyncCause::Policy, || {
                Err(std::io::Error::other("injected fsync failure"))
            });
        }
        timed_sync(observer.as_ref(), SyncCause::Policy, || file.sync_data())
    }

    /// The log wrote up to `log_end` (an append under `EveryBatch`): the returned wait ends
    /// once a sync covers it.
    pub(crate) fn written(self: &Arc<Self>, log_end: i64) -> SyncWait {
        let mut state = self.lock();
        state.written = state.written.max(log_end);
        SyncWait { pending: Some((Arc::clone(self), log_end, state.generation)) }
    }

    /// Everything below `log_end` is synced by other means (a roll synced the sealed segment,
    /// a flush synced every segment): waiters covered by it return.
    pub(crate) fn covered(&self, log_end: i64) {
        let mut state = self.lock();
        state.synced = state.synced.max(log_end);
        state.written = state.written.max(state.synced);
        drop(state);
        self.changed.notify_all();
    }

    /// The active segment is now `file` (a roll). Call only once every byte in the previous
    /// active segment is covered.
    pub(crate) fn switch_file(&self, file: Arc<File>) {
        self.lock().file = file;
    }

    /// Offset below which every appended byte is synced.
    pub(crate) fn synced(&self) -> i64 {
        self.lock().synced
    }

    /// Why the log refuses writes, if a sync or a write failed.
    pub(crate) fn failure(&self) -> Option<String> {
        self.lock().failure.clone()
    }

    /// The log cannot trust its page cache any more (`what` failed with `e`): every later
    /// write is refused and every waiter not covered yet gets the error.
    pub(crate) fn poison(&self, what: &str, e: &std::io::Error) -> LogError {
        let cause = format!("{what}: {e}");
        tracing::error!(dir = %self.dir.display(), error = %e, "{what} failed; the log refuses further writes");
        let mut state = self.lock();
        state.failure.get_or_insert(cause.clone());
        drop(state);
        self.changed.notify_all();
        LogError::Poisoned { dir: self.dir.clone(), cause }
    }

    /// Syncs everything written so far and waits until no sync is in flight (the log calls
    /// this before it truncates, holding itself, so no new sync can start after). Errors if
    /// the log is poisoned.
    pub(crate) fn sync_written(&self) -> Result<()> {
        let (target, generation) = {
            let state = self.lock();
            (state.written, state.generation)
        };
        self.wait_for(target, generation)?;
        // A sync with an older target may still run (a roll covered everything meanwhile).
        let mut state = self.lock();
        while state.syncing {
            state = self.changed.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        Ok(())
    }

    /// After a truncation: the log ends at `log_end` in `file`, all of it synced (the caller
    /// ran [`GroupCommit::sync_written`] first and held the log since). Waiters of earlier
    /// appends return.
    pub(crate) fn reset(&self, log_end: i64, file: Arc<File>) {
        let mut state = self.lock();
        assert!(!state.syncing, "the log is reset only after its syncs settled");
        state.written = log_end;
        state.synced = log_end;
        state.file = file;
        state.generation += 1;
        drop(state);
        self.changed.notify_all();
    }

    /// Waits until a sync covers `target` (written in `generation`), syncing itself when no
    /// one else is.
    fn wait_for(&self, target: i64, generation: u64) -> Result<()> {
        let mut state = self.lock();
        loop {
            if state.generation != generation || state.synced >= target {
                return Ok(());
            }
            if let Some(cause) = &state.failure {
                return Err(LogError::Poisoned { dir: self.dir.clone(), cause: cause.clone() });
            }
            if state.syncing {
                state = self.changed.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            }
            // Become the syncer for everything written so far.
            state.syncing = true;
            let sync_target = state.written;
            let file = Arc::clone(&state.file);
            drop(state);
            let outcome = self.sync_file(&file);
            if let Err(e) = &outcome {
                self.poison("fdatasync", e);
            }
            state = self.lock();
            state.syncing = false;
            // No reset happens while a sync runs (`sync_written` waits for it); the check keeps
            // a stale target from ever counting in a newer generation.
            if outcome.is_ok() && state.generation == generation {
                state.synced = state.synced.max(sync_target);
            }
            self.changed.notify_all();
        }
    }
}

/// What an append must wait for before it may be acknowledged: the sync that makes its bytes
/// durable under `flush.messages=1` (nothing under the other policies). Wait without holding
/// the lock that guards the log, so that other appends join the same sync.
#[must_use = "an append is durable only once its SyncWait returned Ok"]
pub struct SyncWait {
    /// (the log's commit state, the log end to cover, its generation); `None`: nothing to wait.
    pending: Option<(Arc<GroupCommit>, i64, u64)>,
}

impl SyncWait {
    /// Nothing to wait for (the flush policy does not sync appends).
    pub fn none() -> SyncWait {
        SyncWait { pending: None }
    }

    /// Blocks until the append's bytes are synced. [`LogError::Poisoned`] if the sync that
    /// had to cover them failed (or an earlier one did): the append must not be acknowledged.
    pub fn wait(self) -> Result<()> {
        match self.pending {
            Some((commit, target, generation)) => commit.wait_for(target, generation),
            None => Ok(()),
        }
    }

    /// Whether waiting may block (the flush policy syncs appends).
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}

impl std::fmt::Debug for SyncWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncWait").field("target", &self.pending.as_ref().map(|(_, target, _)| *target)).finish()
    }
}
