//! Sparse, fixed-width, memory-mapped index files.
//!
//! Both indexes of a segment are preallocated to `index_bytes_max` while the segment is active,
//! so appending an entry is a store into the mapping, and trimmed to their used length when the
//! segment rolls or the log closes (the used length is then the file length).
//!
//! ```text
//! offset index (.index), 8 bytes per entry, big-endian:
//!   relative_offset u32   base offset of an indexed batch minus the segment's base offset
//!   position        u32   byte position of that batch in the .log file
//! time index (.timeindex), 12 bytes per entry, big-endian:
//!   timestamp       i64   largest batch max-timestamp seen in the segment up to this entry
//!   relative_offset u32   base offset of the batch where that maximum was reached
//! ```
//! The preallocated tail of an index is sparse: its pages get disk blocks only when first
//! written. A store into a mapped page that the file system cannot back (a full disk) kills
//! the process with SIGBUS, so [`IndexFile::push`] first backs the page an entry lands in with
//! a `pwrite` of zeros ([`INDEX_BACKING_BYTES`] at a time), which fails with ENOSPC instead;
//! the entry is then skipped (an index is sparse anyway: a lookup scans forward from the entry
//! before).
//!
//! Entries are strictly increasing in both fields (time index: non-decreasing offset, strictly
//! increasing timestamp). An index is a cache: recovery rebuilds it from the `.log` file, and
//! a file that breaks these rules is rebuilt instead of trusted.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};

use crate::batch::{be_i32, be_i64};
use crate::config::{OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES};

/// Bytes of an index file backed by one `pwrite` of zeros before entries are stored into
/// them through the mapping: the common page size. Larger pages are backed a part at a time
/// (the file system allocates the whole page on the first part).
pub(crate) const INDEX_BACKING_BYTES: usize = 4096;

/// One memory-mapped index file of fixed-width entries. It holds no file descriptor: the
/// mapping stays valid after the descriptor that made it is closed, and the rare steps that
/// need the file (backing a new page, resizing, syncing) open it by path. A broker with
/// thousands of partitions would otherwise hold two descriptors per segment for its indexes.
#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    mmap: Option<MmapMut>,
    width: usize,
    entries: usize,
    capacity_entries: usize,
    /// Bytes from the start known to have disk blocks (a multiple of [`INDEX_BACKING_BYTES`]).
    backed_bytes: usize,
}

impl IndexFile {
    /// Opens (creating if needed) an index file whose current length counts its entries. A
    /// trailing partial entry is dropped. When `preallocate_bytes` is given the file is grown to
    /// that size and mapped for appends.
    pub(crate) fn open(path: &Path, width: usize, preallocate_bytes: Option<usize>) -> io::Result<IndexFile> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let len = file.metadata()?.len() as usize;
        let entries = len / width;
        let mut index = IndexFile {
            path: path.to_path_buf(),
            mmap: None,
            width,
            entries,
            capacity_entries: entries,
            backed_bytes: 0,
        };
        match preallocate_bytes {
            Some(bytes) => index.resize_with(&file, bytes.max(entries * width))?,
            None => index.remap(&file, len - len % width)?,
        }
        Ok(index)
    }

    /// The index file, opened again for a step that needs it (never created: a segment whose
    /// files were removed gets an error, not a new empty file).
    fn reopen(&self) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(&self.path)
    }

    fn remap(&mut self, file: &File, len: usize) -> io::Result<()> {
        self.mmap = None;
        if len == 0 {
            self.capacity_entries = 0;
            return Ok(());
        }
        // SAFETY: the file is private to this log (its directory is locked against a second
        // process: by the log's lock file, or by the broker's data-directory lock; and this
        // struct is the only writer in this one); no other code truncates it
        // while it is mapped, since every resize goes through `resize`, which unmaps first.
        #[allow(unsafe_code)]
        let mmap = unsafe { MmapOptions::new().len(len).map_mut(file)? };
        self.capacity_entries = len / self.width;
        self.mmap = Some(mmap);
        Ok(())
    }

    /// Sets the file length to `bytes` (whole entries) and maps it.
    pub(crate) fn resize(&mut self, bytes: usize) -> io::Result<()> {
        let file = self.reopen()?;
        self.resize_with(&file, bytes)
    }

    fn resize_with(&mut self, file: &File, bytes: usize) -> io::Result<()> {
        let bytes = bytes - bytes % self.width;
        if let Some(m) = &self.mmap {
            m.flush()?;
        }
        self.mmap = None;
        file.set_len(bytes as u64)?;
        self.entries = self.entries.min(bytes / self.width);
        // The pages holding entries have blocks; beyond them nothing is assumed.
        self.backed_bytes = (self.entries * self.width).next_multiple_of(INDEX_BACKING_BYTES);
        self.remap(file, bytes)
    }

    /// Shrinks the file to the entries in use; called when a segment rolls or the log closes.
    pub(crate) fn trim(&mut self) -> io::Result<()> {
        self.resize(self.entries * self.width)
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.capacity_entries
    }

    pub(crate) fn entry(&self, i: usize) -> &[u8] {
        assert!(i < self.entries, "index entry {i} out of {}", self.entries);
        let m = self.mmap.as_ref().expect("an index with entries is mapped");
        &m[i * self.width..(i + 1) * self.width]
    }

    /// Appends one entry. The caller checks `is_full` first. Fails (storing nothing) when the
    /// entry's page cannot be given disk blocks, for example on a full disk.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        assert_eq!(bytes.len(), self.width);
        assert!(!self.is_full(), "push into a full index {}", self.path.display());
        let at = self.entries * self.width;
        self.back_through(at + self.width)?;
        let m = self.mmap.as_mut().expect("an index with capacity is mapped");
        m[at..at + self.width].copy_from_slice(bytes);
        self.entries += 1;
        Ok(())
    }

    /// Gives disk blocks to the file up to `end` (within its length) by writing zeros past the
    /// entries, so that stores through the mapping cannot fault. Opens the file only when a new
    /// page needs blocks (once per [`INDEX_BACKING_BYTES`] of entries).
    fn back_through(&mut self, end: usize) -> io::Result<()> {
        if self.backed_bytes >= end {
            return Ok(());
        }
        let file = self.reopen()?;
        let file_len = self.capacity_entries * self.width;
        while self.backed_bytes < end {
            let chunk_end = (self.backed_bytes + INDEX_BACKING_BYTES).min(file_len);
            let zeros = [0u8; INDEX_BACKING_BYTES];
            file.write_all_at(&zeros[..chunk_end - self.backed_bytes], self.backed_bytes as u64)?;
            self.backed_bytes += INDEX_BACKING_BYTES;
        }
        Ok(())
    }

    /// Forgets entries from `n` on.
    pub(crate) fn truncate_entries(&mut self, n: usize) {
        self.entries = self.entries.min(n);
    }

    /// Makes the mapped entries durable.
    pub(crate) fn sync(&self) -> io::Result<()> {
        if let Some(m) = &self.mmap {
            m.flush()?;
        }
        self.reopen()?.sync_data()
    }
}

/// The offset index of one segment.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    pub(crate) file: IndexFile,
}

impl OffsetIndex {
    pub(crate) fn open(path: &Path, preallocate_bytes: Option<usize>) -> io::Result<Self> {
        Ok(OffsetIndex { file: IndexFile::open(path, OFFSET_INDEX_ENTRY_BYTES, preallocate_bytes)? })
    }

    pub(crate) fn get(&self, i: usize) -> (u32, u32) {
        let e = self.file.entry(i);
        (be_i32(e, 0) as u32, be_i32(e, 4) as u32)
    }

    pub(crate) fn push(&mut self, relative_offset: u32, position: u32) -> io::Result<()> {
        let mut e = [0u8; OFFSET_INDEX_ENTRY_BYTES];
        e[..4].copy_from_slice(&relative_offset.to_be_bytes());
        e[4..].copy_from_slice(&position.to_be_bytes());
        self.file.push(&e)
    }

    /// The last entry whose relative offset is at most `relative_offset`.
    pub(crate) fn lookup(&self, relative_offset: u32) -> Option<(u32, u32)> {
        let n = self.file.entries();
        // Index of the first entry greater than the target.
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.get(mid).0 <= relative_offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo > 0).then(|| self.get(lo - 1))
    }

    /// The last entry whose position is at most `position`.
    pub(crate) fn lookup_position(&self, position: u64) -> Option<(u32, u32)> {
        let (mut lo, mut hi) = (0usize, self.file.entries());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if u64::from(self.get(mid).1) <= position {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo > 0).then(|| self.get(lo - 1))
    }

    /// Whether the entries obey the index rules for a segment of `segment_bytes` bytes.
    pub(crate) fn is_sane(&self, segment_bytes: u64) -> bool {
        let mut previous: Option<(u32, u32)> = None;
        for i in 0..self.file.entries() {
            let (rel, pos) = self.get(i);
            if u64::from(pos) >= segment_bytes {
                return false;
            }
            if let Some((prel, ppos)) = previous {
                if rel <= prel || pos <= ppos {
                    return false;
                }
            }
            previous = Some((rel, pos));
        }
        true
    }
}

/// The time index of one segment.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    pub(crate) file: IndexFile,
}

impl TimeIndex {
    pub(crate) fn open(path: &Path, preallocate_bytes: Option<usize>) -> io::Result<Self> {
        Ok(TimeIndex { file: IndexFile::open(path, TIME_INDEX_ENTRY_BYTES, preallocate_bytes)? })
    }

    pub(crate) fn get(&self, i: usize) -> (i64, u32) {
        let e = self.file.entry(i);
        (be_i64(e, 0), be_i32(e, 8) as u32)
    }

    pub(crate) fn last(&self) -> Option<(i64, u32)> {
        let n = self.file.entries();
        (n > 0).then(|| self.get(n - 1))
    }

    pub(crate) fn push(&mut self, timestamp: i64, relative_offset: u32) -> io::Result<()> {
        let mut e = [0u8; TIME_INDEX_ENTRY_BYTES];
        e[..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..].copy_from_slice(&relative_offset.to_be_bytes());
        self.file.push(&e)
    }

    /// The last entry whose timestamp is below `timestamp`: every batch up to its offset has a
    /// smaller max-timestamp, so a search for `timestamp` may start there.
    pub(crate) fn lookup_below(&self, timestamp: i64) -> Option<(i64, u32)> {
        let n = self.file.entries();
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.get(mid).0 < timestamp {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo > 0).then(|| self.get(lo - 1))
    }

    pub(crate) fn is_sane(&self, relative_offset_end: u64) -> bool {
        let mut previous: Option<(i64, u32)> = None;
        for i in 0..self.file.entries() {
            let (ts, rel) = self.get(i);
            if u64::from(rel) >= relative_offset_end {
                return false;
            }
            if let Some((pts, prel)) = previous {
                if ts <= pts || rel < prel {
                    return false;
                }
            }
            previous = Some((ts, rel));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_push_lookup_trim_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::open(&path, Some(800)).unwrap();
        for i in 0..10u32 {
            idx.push(i * 10, i * 1000).unwrap();
        }
        assert_eq!(idx.lookup(0), Some((0, 0)));
        assert_eq!(idx.lookup(55), Some((50, 5000)));
        assert_eq!(idx.lookup(1_000_000), Some((90, 9000)));
        assert!(idx.is_sane(10_000));
        assert!(!idx.is_sane(9000));
        idx.file.trim().unwrap();
        drop(idx);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 80);
        let idx = OffsetIndex::open(&path, None).unwrap();
        assert_eq!(idx.file.entries(), 10);
        assert_eq!(idx.lookup(95), Some((90, 9000)));
    }

    #[test]
    fn time_index_lookup_below() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TimeIndex::open(&dir.path().join("0.timeindex"), Some(120)).unwrap();
        idx.push(100, 0).unwrap();
        idx.push(200, 5).unwrap();
        idx.push(300, 9).unwrap();
        assert_eq!(idx.lookup_below(100), None);
        assert_eq!(idx.lookup_below(101), Some((100, 0)));
        assert_eq!(idx.lookup_below(300), Some((200, 5)));
        assert!(idx.is_sane(10));
        assert!(!idx.is_sane(9));
        idx.file.truncate_entries(1);
        assert_eq!(idx.last(), Some((100, 0)));
    }

    #[test]
    fn empty_index_maps_nothing_and_reports_full() {
        let dir = tempfile::tempdir().unwrap();
        let idx = OffsetIndex::open(&dir.path().join("0.index"), None).unwrap();
        assert_eq!(idx.file.entries(), 0);
        assert!(idx.file.is_full());
        assert_eq!(idx.lookup(3), None);
    }
}
