//! Goal: show that the segmented on-disk log agrees with a trivial in-memory model through any
//! sequence of appends, truncations, purges and restarts, including across segment rolls, and
//! that damage inside a sealed (older) segment is refused rather than silently dropped.
//! Method: a seeded random walk (deterministic, so a failure reproduces) over the real
//! `LogStore` with 512-byte segments, checked against a `BTreeMap` after every step.

use std::collections::BTreeMap;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use openraft::storage::RaftLogStorage;
use openraft::storage::RaftLogStorageExt;
use openraft::CommittedLeaderId;
use openraft::EntryPayload;
use openraft::RaftLogReader;
use rand::rngs::StdRng;
use rand::Rng;
use rand::SeedableRng;
use sluice_meta::types::Entry;
use sluice_meta::types::LogId;
use sluice_meta::types::Proposal;
use sluice_meta::Command;
use sluice_meta::LogStore;
use sluice_meta::StoreError;

const SEGMENT_BYTES: u64 = 512;

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: EntryPayload::Normal(Proposal {
            commands: vec![Command::DeleteTopic { name: format!("topic-{term}-{index}") }],
        }),
    }
}

async fn close(store: LogStore) {
    let writer = store.writer_join();
    drop(store);
    assert!(writer.wait(Duration::from_secs(5)).await);
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    segments
}

#[derive(Default)]
struct Model {
    entries: BTreeMap<u64, Entry>,
    purged: Option<LogId>,
    term: u64,
}

impl Model {
    fn next_index(&self) -> u64 {
        self.entries.keys().next_back().map(|i| i + 1).or(self.purged.map(|p| p.index + 1)).unwrap_or(0)
    }
}

async fn check(store: &mut LogStore, model: &Model, step: usize) {
    let state = store.get_log_state().await.unwrap();
    let expected_last = model.entries.values().next_back().map(|e| e.log_id).or(model.purged);
    assert_eq!(state.last_log_id, expected_last, "step {step}: last log id");
    assert_eq!(state.last_purged_log_id, model.purged, "step {step}: purged");
    let entries = store.try_get_log_entries(0..u64::MAX).await.unwrap();
    assert_eq!(entries, model.entries.values().cloned().collect::<Vec<_>>(), "step {step}: entries");
}

#[tokio::test]
async fn random_operations_match_the_model_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(0x5eed_3e7a);
    let mut store = LogStore::open_with_segment_bytes(dir.path(), SEGMENT_BYTES).unwrap();
    let mut model = Model { term: 1, ..Model::default() };
    let mut max_segments = 0;
    for step in 0..400 {
        match rng.gen_range(0..100) {
            0..=54 => {
                let start = model.next_index();
                let count = rng.gen_range(1..=6);
                let batch: Vec<Entry> = (start..start + count).map(|i| entry(model.term, i)).collect();
                for e in &batch {
                    model.entries.insert(e.log_id.index, e.clone());
                }
                store.blocking_append(batch).await.unwrap();
            }
            55..=69 if !model.entries.is_empty() => {
                // A new leader overwrote the tail: truncate, and later appends use a new term.
                let indexes: Vec<u64> = model.entries.keys().copied().collect();
                let since = indexes[rng.gen_range(0..indexes.len())];
                let log_id = model.entries[&since].log_id;
                model.entries.split_off(&since);
                model.term += 1;
                store.truncate(log_id).await.unwrap();
            }
            70..=84 if !model.entries.is_empty() => {
                let indexes: Vec<u64> = model.entries.keys().copied().collect();
                let upto = indexes[rng.gen_range(0..indexes.len())];
                let log_id = model.entries[&upto].log_id;
                model.entries = model.entries.split_off(&(upto + 1));
                model.purged = Some(log_id);
                store.purge(log_id).await.unwrap();
            }
            _ => {
                close(store).await;
                store = LogStore::open_with_segment_bytes(dir.path(), SEGMENT_BYTES).unwrap();
            }
        }
        check(&mut store, &model, step).await;
        max_segments = max_segments.max(segments(dir.path()).len());
    }
    close(store).await;
    let mut store = LogStore::open_with_segment_bytes(dir.path(), SEGMENT_BYTES).unwrap();
    check(&mut store, &model, usize::MAX).await;
    assert!(max_segments >= 3, "the walk exercised segment rolling ({max_segments} segments at most)");
}

#[tokio::test]
async fn purge_deletes_whole_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open_with_segment_bytes(dir.path(), SEGMENT_BYTES).unwrap();
    store.blocking_append((1..=100).map(|i| entry(1, i))).await.unwrap();
    let before = segments(dir.path()).len();
    assert!(before >= 4, "small segments roll: {before}");
    store.purge(entry(1, 60).log_id).await.unwrap();
    let after = segments(dir.path()).len();
    assert!(after < before, "purging frees disk ({before} -> {after} segments)");
    close(store).await;
    let mut store = LogStore::open_with_segment_bytes(dir.path(), SEGMENT_BYTES).unwrap();
    let entries = store.try_get_log_entries(0..1000).await.unwrap();
    assert_eq!(entries, (61..=100).map(|i| entry(1, i)).collect::<Vec<_>>());
}

#[tokio::test]
async fn damage_inside_a_sealed_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open_with_segment_bytes(dir.path(), SEGMENT_BYTES).unwrap();
    store.blocking_append((1..=40).map(|i| entry(1, i))).await.unwrap();
    close(store).await;
    let first = segments(dir.path()).remove(0);
    let mut bytes = std::fs::read(&first).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&first, &bytes).unwrap();
    let error = LogStore::open_with_segment_bytes(dir.path(), SEGMENT_BYTES).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
}

#[tokio::test]
async fn a_failed_write_poisons_the_store() {
    // The directory disappears under a running store (a lost mount): the next segment roll
    // cannot create its file. The append must fail, and every later write must be refused,
    // because the store can no longer vouch for what is on disk.
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let mut store = LogStore::open_with_segment_bytes(&log_dir, SEGMENT_BYTES).unwrap();
    store.blocking_append((1..=5).map(|i| entry(1, i))).await.unwrap();
    std::fs::remove_dir_all(&log_dir).unwrap();
    let failed = store.blocking_append((6..=60).map(|i| entry(1, i))).await;
    assert!(failed.is_err(), "an append that could not be written was reported durable");
    let refused = store.blocking_append([entry(1, 61)]).await;
    assert!(refused.is_err(), "a poisoned store accepted a write");
    assert!(store.save_vote(&sluice_meta::types::Vote::new(2, 1)).await.is_err());
    close(store).await;
}
