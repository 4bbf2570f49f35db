//! Goal: show that the on-disk Raft log survives restarts and detects damage.
//! Method: write entries through the real `LogStore`, close it (waiting for its writer thread),
//! damage the segment file the way a crash or a bad disk would (cut it mid-record, flip a
//! byte, break the header), reopen, and check what the store recovers.

use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use openraft::storage::RaftLogStorage;
use openraft::storage::RaftLogStorageExt;
use openraft::CommittedLeaderId;
use openraft::EntryPayload;
use openraft::RaftLogReader;
use sluice_meta::types::Entry;
use sluice_meta::types::LogId;
use sluice_meta::types::Proposal;
use sluice_meta::types::Vote;
use sluice_meta::Command;
use sluice_meta::LogStore;
use sluice_meta::StoreError;

fn log_id(index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

fn entry(index: u64) -> Entry {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(Proposal {
            commands: vec![Command::DeleteTopic { name: format!("topic-{index}") }],
        }),
    }
}

async fn close(store: LogStore) {
    let writer = store.writer_join();
    drop(store);
    assert!(writer.wait(Duration::from_secs(5)).await, "writer thread stops after the store is dropped");
}

async fn write_entries(dir: &Path, indexes: std::ops::RangeInclusive<u64>) {
    let mut store = LogStore::open(dir).unwrap();
    store.blocking_append(indexes.map(entry)).await.unwrap();
    close(store).await;
}

fn segment_file(dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    segments.pop().expect("a segment file")
}

async fn last_index(store: &mut LogStore) -> Option<u64> {
    store.get_log_state().await.unwrap().last_log_id.map(|id| id.index)
}

#[tokio::test]
async fn entries_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 1..=50).await;
    let mut store = LogStore::open(dir.path()).unwrap();
    let entries = store.try_get_log_entries(1..=50).await.unwrap();
    assert_eq!(entries, (1..=50).map(entry).collect::<Vec<_>>());
}

#[tokio::test]
async fn torn_tail_is_truncated_and_the_log_continues() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 1..=10).await;
    let segment = segment_file(dir.path());
    let len = std::fs::metadata(&segment).unwrap().len();
    // A crash in the middle of writing the last record.
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(len - 3).unwrap();

    let mut store = LogStore::open(dir.path()).unwrap();
    assert_eq!(last_index(&mut store).await, Some(9), "the torn entry is dropped");
    store.blocking_append([entry(10), entry(11)]).await.unwrap();
    close(store).await;

    let mut store = LogStore::open(dir.path()).unwrap();
    let entries = store.try_get_log_entries(1..=11).await.unwrap();
    assert_eq!(entries, (1..=11).map(entry).collect::<Vec<_>>(), "appends after recovery are clean");
}

#[tokio::test]
async fn corrupted_tail_entry_is_detected_by_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 1..=10).await;
    let segment = segment_file(dir.path());
    let mut bytes = std::fs::read(&segment).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40; // one flipped bit in the last entry's payload; its length stays valid
    std::fs::write(&segment, &bytes).unwrap();

    let mut store = LogStore::open(dir.path()).unwrap();
    assert_eq!(last_index(&mut store).await, Some(9));
    let entries = store.try_get_log_entries(1..=10).await.unwrap();
    assert_eq!(entries, (1..=9).map(entry).collect::<Vec<_>>());
    close(store).await;
    let repaired = std::fs::metadata(&segment).unwrap().len();
    assert!(repaired < bytes.len() as u64, "the damaged record was cut off the file");
}

#[tokio::test]
async fn damaged_file_header_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 1..=3).await;
    let segment = segment_file(dir.path());
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();
    let error = LogStore::open(dir.path()).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
}

#[tokio::test]
async fn vote_committed_truncation_and_purge_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let vote = Vote::new_committed(3, 2);
    {
        let mut store = LogStore::open(dir.path()).unwrap();
        store.blocking_append((1..=20).map(entry)).await.unwrap();
        store.save_vote(&vote).await.unwrap();
        store.truncate(log_id(15)).await.unwrap();
        store.purge(log_id(5)).await.unwrap();
        store.save_committed(Some(log_id(12))).await.unwrap();
        close(store).await;
    }
    let mut store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.read_vote().await.unwrap(), Some(vote));
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(12)));
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(5)));
    assert_eq!(state.last_log_id, Some(log_id(14)));
    let entries = store.try_get_log_entries(0..100).await.unwrap();
    assert_eq!(entries, (6..=14).map(entry).collect::<Vec<_>>());
}
