//! Goal: show that the Raft log store survives a full disk without stopping: an append that
//! finds no space is neither acknowledged nor turned into a storage error (which openraft
//! treats as fatal), the store reports the stall, and the same append completes by itself once
//! space is freed — with the log on disk intact and every entry present exactly once.
//! Method: the real `LogStore` on a small tmpfs mounted for the test (skipped, with one printed
//! line, where mounting is not permitted); a ballast file fills the tmpfs; an entry larger than
//! any slack left in the segment's last page is appended and polled; the ballast is deleted;
//! the store is closed and reopened.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openraft::storage::RaftLogStorage;
use openraft::storage::RaftLogStorageExt;
use openraft::CommittedLeaderId;
use openraft::EntryPayload;
use openraft::RaftLogReader;
use sluice_meta::types::Entry;
use sluice_meta::types::LogId;
use sluice_meta::types::Proposal;
use sluice_meta::Command;
use sluice_meta::LogStore;

/// Size of the tmpfs.
const TMPFS_BYTES: u64 = 2 * 1024 * 1024;

/// Topic-name bytes of the entry appended on the full disk: many pages, more than any slack.
const LARGE_NAME_BYTES: usize = 48 * 1024;

struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(path: &Path) -> Option<Tmpfs> {
    std::fs::create_dir_all(path).unwrap();
    let output = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_BYTES}"), "tmpfs"])
        .arg(path)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!("skipped: cannot mount a tmpfs here ({})", String::from_utf8_lossy(&output.stderr).trim());
        return None;
    }
    Some(Tmpfs(path.to_path_buf()))
}

fn entry(index: u64, name: String) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Proposal { commands: vec![Command::DeleteTopic { name }] }),
    }
}

fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    while file.write(&[0u8; 4096]).is_ok_and(|n| n > 0) {}
    while file.write(&[0u8; 64]).is_ok_and(|n| n > 0) {}
}

#[tokio::test]
async fn an_append_on_a_full_disk_waits_and_completes_when_space_returns() {
    let temp = tempfile::tempdir().unwrap();
    let Some(tmpfs) = mount_tmpfs(&temp.path().join("disk")) else { return };
    let dir = tmpfs.0.join("log");
    let mut store = LogStore::open(&dir).unwrap();
    let health = store.health();
    store.blocking_append((1..=5).map(|i| entry(i, format!("topic-{i}")))).await.unwrap();
    let ballast = tmpfs.0.join("ballast");
    fill(&ballast);

    let large = "x".repeat(LARGE_NAME_BYTES);
    let mut append = Box::pin(store.blocking_append([entry(6, large.clone())]));
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut append).await.is_err(),
        "the append must wait, neither succeed nor fail"
    );
    let refusal = health.write_refusal().expect("the store reports the stall");
    assert!(refusal.contains("waits for disk space"), "{refusal}");

    std::fs::remove_file(&ballast).unwrap();
    tokio::time::timeout(Duration::from_secs(10), append).await.expect("the append completes").unwrap();
    assert_eq!(health.write_refusal(), None);
    store.blocking_append([entry(7, "after".to_string())]).await.unwrap();

    let writer = store.writer_join();
    drop(store);
    assert!(writer.wait(Duration::from_secs(5)).await);
    let mut reopened = LogStore::open(&dir).unwrap();
    let entries = reopened.try_get_log_entries(0..100).await.unwrap();
    let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
    assert_eq!(indexes, (1..=7).collect::<Vec<_>>());
    assert_eq!(entries[5], entry(6, large));
    assert_eq!(reopened.get_log_state().await.unwrap().last_log_id.map(|id| id.index), Some(7));
}
