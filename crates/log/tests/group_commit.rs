//! Group commit under `flush.messages=1` (`FlushPolicy::EveryBatch`): appends made while a
//! sync runs share the next one, each append's wait ends only once a sync covers its bytes, a
//! failed sync fails every append it had to cover, and rolls and truncations in the middle of
//! pending syncs neither lose a waiter nor leave one hanging.
//!
//! The log is shared as the broker shares it: behind a mutex, appended under it with
//! [`Log::append_unsynced`], waited for after releasing it. Syncs are told to an observer;
//! tests that need a sync to stay in flight hold the observer (it runs on the syncing thread
//! before the sync is published).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_log::testing::batch;
use sluice_log::{AppendInfo, Fault, FlushPolicy, Log, LogConfig, LogError, SyncCause, SyncWait};

/// Longest a test waits for something that must happen; reaching it fails the test instead of
/// hanging it.
const WAIT_MAX: Duration = Duration::from_secs(20);

fn every_batch() -> LogConfig {
    LogConfig { flush: FlushPolicy::EveryBatch, segment_bytes: 1 << 20, retention_ms: None, ..LogConfig::default() }
}

fn one_record(value: &str) -> Vec<u8> {
    batch(0, &[(None, Some(value.as_bytes()))], 1_000)
}

fn append_unsynced(log: &Mutex<Log>, value: &str) -> (AppendInfo, SyncWait) {
    log.lock().unwrap().append_unsynced(&mut one_record(value), 0).unwrap()
}

/// An observer that holds the first policy sync until `release` is sent, after telling
/// `entered`; every later sync passes. Counts policy syncs in `policy_syncs`.
struct Gate {
    entered: Receiver<()>,
    release: Sender<()>,
    policy_syncs: Arc<Mutex<usize>>,
}

fn gated_observer(log: &mut Log) -> Gate {
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let policy_syncs = Arc::new(Mutex::new(0));
    let counted = Arc::clone(&policy_syncs);
    log.observe_syncs(Arc::new(move |cause: SyncCause, _: Duration| {
        if cause != SyncCause::Policy {
            return;
        }
        let first = {
            let mut count = counted.lock().unwrap();
            *count += 1;
            *count == 1
        };
        if first {
            entered_tx.send(()).unwrap();
            release_rx.lock().unwrap().recv_timeout(WAIT_MAX).expect("the test releases the first sync");
        }
    }));
    Gate { entered, release, policy_syncs }
}

/// Appends one record and waits for its sync on a thread of its own; the result arrives on
/// the returned channel with the append's last offset.
fn append_on_thread(log: &Arc<Mutex<Log>>, value: &str) -> (i64, Receiver<Result<(), LogError>>) {
    let (info, wait) = append_unsynced(log, value);
    let (tx, rx) = channel();
    std::thread::spawn(move || tx.send(wait.wait()).unwrap());
    (info.last_offset, rx)
}

/// A log whose first policy sync is running and held by the gate: one append (`value`, offset
/// 0) was written and its syncing thread is inside the observer. The test releases it with
/// `gate.release`; `first` then gets the append's result.
struct HeldSync {
    _dir: tempfile::TempDir,
    log: Arc<Mutex<Log>>,
    gate: Gate,
    first: Receiver<Result<(), LogError>>,
}

fn held_first_sync(value: &str) -> HeldSync {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), every_batch()).unwrap();
    let gate = gated_observer(&mut log);
    let log = Arc::new(Mutex::new(log));
    let (offset, first) = append_on_thread(&log, value);
    assert_eq!(offset, 0);
    gate.entered.recv_timeout(WAIT_MAX).unwrap();
    HeldSync { _dir: dir, log, gate, first }
}

#[test]
fn concurrent_appends_share_fdatasyncs_and_each_returns_only_once_covered() {
    // Goal: with many producers appending at once, one fdatasync covers every append written
    // while the previous one ran: fewer syncs than appends, and no append's wait ends before a
    // sync covered its records (the durable end is past them when it returns).
    // Method: 8 threads × 25 appends through a shared log; the observer makes each sync take
    // 2 ms longer (a slow disk), so appends pile up behind it.
    const THREADS: usize = 8;
    const APPENDS_PER_THREAD: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), every_batch()).unwrap();
    let policy_syncs = Arc::new(Mutex::new(0usize));
    let counted = Arc::clone(&policy_syncs);
    log.observe_syncs(Arc::new(move |cause: SyncCause, _: Duration| {
        if cause == SyncCause::Policy {
            *counted.lock().unwrap() += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
    }));
    let log = Arc::new(Mutex::new(log));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..APPENDS_PER_THREAD {
                    let (info, wait) = append_unsynced(&log, &format!("producer-{t}-record-{i}"));
                    wait.wait().unwrap();
                    let durable = log.lock().unwrap().durable_end_offset();
                    assert!(
                        durable > info.last_offset,
                        "acknowledged offset {} above durable end {durable}",
                        info.last_offset
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let appends = THREADS * APPENDS_PER_THREAD;
    let syncs = *policy_syncs.lock().unwrap();
    assert!(syncs >= 1 && syncs < appends, "{syncs} fdatasyncs for {appends} appends");
    let log = log.lock().unwrap();
    assert_eq!(log.log_end_offset(), appends as i64);
    assert_eq!(log.durable_end_offset(), appends as i64);
}

#[test]
fn appends_behind_a_running_sync_wait_for_it_and_then_share_one() {
    // Goal: an append written while a sync runs is not covered by it (its wait goes on), and
    // every append that piled up behind that sync is covered by exactly one more fdatasync.
    // Method: the first sync is held in the observer while three more appends are written.
    let HeldSync { _dir, log, gate, first } = held_first_sync("first");
    let behind: Vec<_> = (0..3).map(|i| append_on_thread(&log, &format!("behind-{i}"))).collect();
    assert_eq!(log.lock().unwrap().durable_end_offset(), 0, "nothing is synced while the first sync runs");
    for (_, result) in &behind {
        assert!(result.recv_timeout(Duration::from_millis(50)).is_err(), "an uncovered append waits");
    }
    gate.release.send(()).unwrap();
    first.recv_timeout(WAIT_MAX).unwrap().unwrap();
    for (_, result) in behind {
        result.recv_timeout(WAIT_MAX).unwrap().unwrap();
    }
    assert_eq!(*gate.policy_syncs.lock().unwrap(), 2, "one sync for the first append, one for the three behind it");
    assert_eq!(log.lock().unwrap().durable_end_offset(), 4);
}

#[test]
fn a_failed_group_fsync_fails_every_append_it_covered_and_poisons_the_log() {
    // Goal: when the fdatasync that had to cover several appends fails, every one of them gets
    // the error (none is acknowledged), the log refuses all later writes, and nothing beyond
    // the last successful sync counts as durable; the append synced before stays acknowledged.
    // Method: the first sync is held; three appends pile up behind it; the next sync is made
    // to fail; then the first sync is released.
    let HeldSync { _dir, log, gate, first } = held_first_sync("synced");
    log.lock().unwrap().inject_fault(Fault::FailNextSync);
    let behind: Vec<_> = (0..3).map(|i| append_on_thread(&log, &format!("lost-{i}"))).collect();
    gate.release.send(()).unwrap();
    first.recv_timeout(WAIT_MAX).unwrap().expect("the append synced before the failure is acknowledged");
    for (offset, result) in behind {
        let error = result.recv_timeout(WAIT_MAX).unwrap().expect_err("an append the failed sync covered");
        assert!(matches!(error, LogError::Poisoned { .. }), "offset {offset}: {error}");
    }
    let mut log = log.lock().unwrap();
    assert_eq!(log.durable_end_offset(), 1, "only the first append is durable");
    assert!(log.write_refusal().unwrap().contains("failed fsync"));
    let refused = log.append(&mut one_record("after"), 0).unwrap_err();
    assert!(matches!(refused, LogError::Poisoned { .. }), "{refused}");
    assert!(matches!(log.check_writable(), Err(LogError::Poisoned { .. })));
}

#[test]
fn a_roll_covers_appends_waiting_in_the_sealed_segment_and_later_ones_sync_the_new_one() {
    // Goal: a roll syncs the sealed segment, so appends in it waiting for group commit are
    // acknowledged even while an older sync is still in flight; appends to the new segment
    // are synced through the new segment's file.
    // Method: the first sync is held; an append lands behind it; the log rolls; then another
    // append lands in the new segment; then the first sync is released.
    let HeldSync { _dir, log, gate, first } = held_first_sync("first");
    let (_, sealed) = append_on_thread(&log, "in-the-sealed-segment");
    log.lock().unwrap().roll().unwrap();
    sealed.recv_timeout(WAIT_MAX).unwrap().expect("the roll's sync covers the sealed segment");
    assert_eq!(log.lock().unwrap().segment_base_offsets(), vec![0, 2]);
    let (new_offset, new_segment) = append_on_thread(&log, "in-the-new-segment");
    assert_eq!(new_offset, 2);
    assert!(new_segment.recv_timeout(Duration::from_millis(50)).is_err(), "not covered by the roll");
    gate.release.send(()).unwrap();
    first.recv_timeout(WAIT_MAX).unwrap().unwrap();
    new_segment.recv_timeout(WAIT_MAX).unwrap().unwrap();
    let mut log = log.lock().unwrap();
    assert_eq!(log.durable_end_offset(), 3);
    // The log still works as one: the next append syncs and reads back.
    log.append(&mut one_record("after"), 0).unwrap();
    assert_eq!(log.read(0, 1 << 20, 4).unwrap().next_offset, 4);
}

#[test]
fn a_truncation_syncs_and_answers_pending_appends_before_it_cuts() {
    // Goal: a truncation (a follower whose log diverged) never leaves a waiter hanging: what
    // was written is synced and its waiters answered before the cut, and appends after the
    // cut are group-committed from the new log end.
    // Method: two appends written but not waited for, then a truncation below both.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), every_batch()).unwrap();
    log.append(&mut one_record("kept"), 0).unwrap();
    let (_, a) = log.append_unsynced(&mut one_record("cut-a"), 0).unwrap();
    let (_, b) = log.append_unsynced(&mut one_record("cut-b"), 0).unwrap();
    assert_eq!(log.durable_end_offset(), 1);
    assert_eq!(log.truncate_to(1).unwrap(), 1);
    a.wait().unwrap();
    b.wait().unwrap();
    assert_eq!(log.durable_end_offset(), 1);
    let (info, wait) = log.append_unsynced(&mut one_record("new"), 0).unwrap();
    assert_eq!((info.first_offset, log.durable_end_offset()), (1, 1), "written, not yet synced");
    wait.wait().unwrap();
    assert_eq!(log.durable_end_offset(), 2);
}

#[test]
fn other_flush_policies_never_wait_and_count_everything_durable() {
    // Goal: group commit is for flush.messages=1 only: under flush.ms and the OS policy an
    // append has nothing to wait for and the durable end is the log end (as before).
    for flush in [FlushPolicy::Os, FlushPolicy::IntervalMs(60_000)] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), LogConfig { flush, ..every_batch() }).unwrap();
        let (_, wait) = log.append_unsynced(&mut one_record("x"), 0).unwrap();
        assert!(!wait.is_pending(), "{flush:?}");
        wait.wait().unwrap();
        assert_eq!(log.durable_end_offset(), 1, "{flush:?}");
    }
}

#[test]
fn a_truncation_waits_for_a_sync_still_in_flight_after_a_roll_covered_everything() {
    // Goal: a truncation resets the group-commit ends only once no sync runs: a sync that
    // started before a roll (which covered everything since) must end first, so it can never
    // publish its old target over the truncated log.
    // Method: the first sync is held; another append lands and the log rolls (covering both);
    // a truncation then runs on another thread and must still be waiting; the sync is released.
    let HeldSync { _dir, log, gate, first } = held_first_sync("first");
    let (_, second) = append_on_thread(&log, "second");
    log.lock().unwrap().roll().unwrap();
    second.recv_timeout(WAIT_MAX).unwrap().unwrap();
    let truncating = Arc::clone(&log);
    let (done_tx, done) = channel();
    std::thread::spawn(move || done_tx.send(truncating.lock().unwrap().truncate_to(1).map(|_| ())).unwrap());
    assert!(done.recv_timeout(Duration::from_millis(100)).is_err(), "the truncation waits for the sync in flight");
    gate.release.send(()).unwrap();
    first.recv_timeout(WAIT_MAX).unwrap().unwrap();
    done.recv_timeout(WAIT_MAX).unwrap().unwrap();
    let mut log = log.lock().unwrap();
    assert_eq!((log.log_end_offset(), log.durable_end_offset()), (1, 1));
    let (info, wait) = log.append_unsynced(&mut one_record("after"), 0).unwrap();
    assert_eq!((info.first_offset, log.durable_end_offset()), (1, 1), "the new append is not counted as synced");
    wait.wait().unwrap();
    assert_eq!(log.durable_end_offset(), 2);
}
