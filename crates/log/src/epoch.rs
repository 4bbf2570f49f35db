//! Leader-epoch cache (KIP-101): which leader epoch started at which offset, so that a follower
//! can ask "where did your log end for my last epoch" and truncate exactly the divergent tail.
//!
//! Stored in `leader-epoch-checkpoint` in Kafka's own text format:
//! ```text
//! 0                  format version
//! 2                  number of entries
//! 0 0                epoch start_offset
//! 3 1200
//! ```
//! The file is rewritten atomically on every change (changes are rare: one per leader
//! election). A missing or unreadable file is rebuilt from the `partition_leader_epoch` field of
//! the batches on disk, which carry the same information.

use std::path::{Path, PathBuf};

use crate::checkpoint::write_atomically;
use crate::error::Result;

pub(crate) const EPOCH_FILE: &str = "leader-epoch-checkpoint";

/// Most entries the checkpoint file may hold; more means the file is not ours.
const EPOCH_ENTRIES_MAX: usize = 1_000_000;

/// One leader epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// First offset appended by a leader of this epoch.
    pub start_offset: i64,
}

/// The leader-epoch lineage of one log.
#[derive(Debug)]
pub struct LeaderEpochCache {
    dir: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint; `None` if it is missing or unreadable (the caller rebuilds).
    pub(crate) fn load(dir: &Path) -> Option<LeaderEpochCache> {
        let text = std::fs::read_to_string(dir.join(EPOCH_FILE)).ok()?;
        let entries = parse(&text);
        if entries.is_none() {
            tracing::warn!(dir = %dir.display(), "leader-epoch checkpoint unreadable; rebuilding from batches");
        }
        Some(LeaderEpochCache { dir: dir.to_path_buf(), entries: entries? })
    }

    pub(crate) fn empty(dir: &Path) -> LeaderEpochCache {
        LeaderEpochCache { dir: dir.to_path_buf(), entries: Vec::new() }
    }

    /// All entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The newest epoch, if any batch was ever appended with one.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`, if it is newer than the latest. Returns
    /// whether the cache changed (the caller persists it).
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 {
            return false;
        }
        match self.entries.last() {
            Some(last) if epoch <= last.epoch => false,
            _ => {
                self.entries.push(EpochEntry { epoch, start_offset });
                true
            }
        }
    }

    /// KIP-101 lookup for OffsetForLeaderEpoch: the largest epoch not above `epoch`, and the
    /// offset where it ended (the start of the next epoch, or `log_end_offset` for the latest).
    /// `None` when `epoch` is older than every entry.
    pub fn end_offset_for_epoch(&self, epoch: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        let i = self.entries.iter().rposition(|e| e.epoch <= epoch)?;
        let end = self.entries.get(i + 1).map_or(log_end_offset, |next| next.start_offset);
        Some((self.entries[i].epoch, end))
    }

    /// Drops epochs that start at or after `offset` (the log was truncated there).
    pub(crate) fn truncate_from_end(&mut self, offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < offset);
        before != self.entries.len()
    }

    /// Moves the lineage's start up to `offset` (old segments were deleted).
    pub(crate) fn truncate_from_start(&mut self, offset: i64) -> bool {
        let covering = self.entries.iter().rposition(|e| e.start_offset <= offset);
        match covering {
            Some(i) if i > 0 || self.entries[0].start_offset < offset => {
                self.entries.drain(..i);
                self.entries[0].start_offset = offset;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    pub(crate) fn persist(&self) -> Result<()> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        write_atomically(&self.dir, EPOCH_FILE, text.as_bytes())
    }
}

fn parse(text: &str) -> Option<Vec<EpochEntry>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let n: usize = lines.next()?.trim().parse().ok()?;
    if n > EPOCH_ENTRIES_MAX {
        return None;
    }
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let mut parts = lines.next()?.split_whitespace();
        let epoch: i32 = parts.next()?.parse().ok()?;
        let start_offset: i64 = parts.next()?.parse().ok()?;
        if let Some(prev) = entries.last() {
            let prev: &EpochEntry = prev;
            if epoch <= prev.epoch || start_offset < prev.start_offset {
                return None;
            }
        }
        entries.push(EpochEntry { epoch, start_offset });
    }
    // A file cut short inside its last line ("3 1200" cut to "3 12") still parses line by
    // line: only a final newline and nothing after the counted entries proves it is whole.
    if !text.ends_with('\n') || lines.next().is_some() {
        return None;
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_follow_kip_101() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochCache::empty(dir.path());
        assert!(c.assign(0, 0));
        assert!(c.assign(2, 100));
        assert!(!c.assign(1, 150));
        assert!(c.assign(5, 300));
        assert_eq!(c.end_offset_for_epoch(0, 400), Some((0, 100)));
        assert_eq!(c.end_offset_for_epoch(1, 400), Some((0, 100)));
        assert_eq!(c.end_offset_for_epoch(3, 400), Some((2, 300)));
        assert_eq!(c.end_offset_for_epoch(9, 400), Some((5, 400)));
        c.persist().unwrap();
        let loaded = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(loaded.entries(), c.entries());
        assert!(c.truncate_from_end(300));
        assert_eq!(c.latest_epoch(), Some(2));
        assert!(c.truncate_from_start(150));
        assert_eq!(c.entries(), &[EpochEntry { epoch: 2, start_offset: 150 }]);
        assert_eq!(c.end_offset_for_epoch(0, 400), None);
    }

    #[test]
    fn damaged_file_is_refused() {
        assert!(parse("0\n2\n1 10\n").is_none());
        assert!(parse("0\n2\n3 10\n1 20\n").is_none());
        assert!(parse("0\n99999999999\n").is_none());
        assert_eq!(parse("0\n1\n4 7\n").unwrap(), vec![EpochEntry { epoch: 4, start_offset: 7 }]);
        assert!(parse("0\n2\n1 10\n3 12").is_none(), "cut inside the last line");
        assert!(parse("0\n1\n1 10\n3 1200\n").is_none(), "more lines than counted");
    }

    #[test]
    fn every_truncation_of_a_file_is_refused() {
        // Goal: a checkpoint cut at any byte (a damaged disk; writes are atomic renames) is
        // refused and rebuilt from the batches, never read as a different lineage.
        let whole = "0\n3\n1 10\n3 1200\n7 45000\n";
        for len in 0..whole.len() {
            assert!(parse(&whole[..len]).is_none(), "a file cut to {len} bytes parsed: {:?}", &whole[..len]);
        }
        assert_eq!(parse(whole).unwrap().len(), 3);
    }
}
