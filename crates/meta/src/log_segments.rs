//! The Raft log on disk: segment files of framed entries plus the Raft state file. Synchronous;
//! driven by the log store's writer thread.
//!
//! # Layout of `<data_dir>/log/`
//!
//! - `<first index, 20 digits>.seg`: a segment. A [file header](crate::frame) with magic
//!   `SLUICElg`, then one [record](crate::frame) per Raft entry, payload = postcard of
//!   `openraft::Entry<TypeConfig>`, indexes consecutive starting at the file name's index.
//!   The newest segment is the active one; a segment is rolled once it passes
//!   [`LOG_SEGMENT_BYTES_MAX`], and the old one is fsynced first, so only the newest segment
//!   can ever hold unsynced bytes.
//! - `raft-state`: file header with magic `SLUICEvt`, then one record holding postcard of
//!   [`PersistedState`] (vote, committed log id, last purged log id). Replaced atomically
//!   (temp file, fsync, rename, fsync directory), so it is never torn.
//!
//! # Crash semantics
//!
//! Appends are written and then fsynced; only after the fsync is an append reported durable.
//! On open, every record of every segment is checked (length bound, CRC-32, decode, index
//! sequence). In the newest segment the first record that is incomplete, announces an
//! impossible length or fails its CRC is cut off with everything after it (a torn write; those
//! entries were never reported durable). A bad record in an older segment, a bad header, a
//! record whose CRC matches but which does not decode (format mismatch), or a hole in the
//! indexes is corruption: opening fails with [`StoreError::Corrupt`] rather than silently
//! losing acknowledged entries.
//! If the committed log id lies beyond the recovered log, it is lowered to the last entry.

use std::collections::BTreeMap;
use std::fs;
use std::fs::File;
use std::fs::OpenOptions;
use std::io;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use serde::Deserialize;
use serde::Serialize;

use crate::durable;
use crate::error::StoreError;
use crate::frame;
use crate::frame::RecordRead;
use crate::limits::LOG_ENTRY_BYTES_MAX;
use crate::limits::LOG_SEGMENT_BYTES_MAX;
use crate::types::Entry;
use crate::types::LogId;
use crate::types::Vote;

/// Name of the Raft state file.
pub const RAFT_STATE_FILE: &str = "raft-state";

/// Largest segment file accepted on open: the roll size plus one maximal entry.
const SEGMENT_FILE_BYTES_MAX: usize =
    LOG_SEGMENT_BYTES_MAX as usize + LOG_ENTRY_BYTES_MAX + frame::RECORD_HEADER_BYTES + frame::FILE_HEADER_BYTES;

/// The Raft state that is not log entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedState {
    /// The vote (term and voted-for / leader); must survive a crash.
    pub vote: Option<Vote>,
    /// Last committed log id known to this node; a hint that lets a restarted node re-apply
    /// committed entries before hearing from the leader.
    pub committed: Option<LogId>,
    /// Entries up to this id were purged (they are in the snapshot).
    pub last_purged: Option<LogId>,
}

/// What [`SegmentedLog::open`] found on disk.
#[derive(Debug)]
pub struct Recovered {
    /// Vote, committed, purged.
    pub state: PersistedState,
    /// Entries after `last_purged`, in index order.
    pub entries: Vec<Entry>,
}

struct ActiveSegment {
    base: u64,
    file: File,
    len_bytes: u64,
}

/// Segment files of one Raft log.
pub struct SegmentedLog {
    dir: PathBuf,
    /// Roll size; [`LOG_SEGMENT_BYTES_MAX`] except in tests that want many segments.
    segment_bytes_max: u64,
    /// Base index of every segment file, ascending.
    bases: Vec<u64>,
    active: Option<ActiveSegment>,
    /// Where each entry on disk lives: index → (segment base, byte offset).
    positions: BTreeMap<u64, (u64, u64)>,
}

impl std::fmt::Debug for SegmentedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentedLog").field("dir", &self.dir).field("bases", &self.bases).finish()
    }
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.seg"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

impl SegmentedLog {
    /// Opens (creating if needed) the log in `dir`, recovering from a torn tail. Segments roll
    /// at `segment_bytes_max`, at most [`LOG_SEGMENT_BYTES_MAX`].
    pub fn open(dir: &Path, segment_bytes_max: u64) -> Result<(SegmentedLog, Recovered), StoreError> {
        let segment_bytes_max = segment_bytes_max.clamp(frame::FILE_HEADER_BYTES as u64 + 1, LOG_SEGMENT_BYTES_MAX);
        fs::create_dir_all(dir).map_err(|e| StoreError::io("create directory", dir, e))?;
        let mut state = read_state(dir)?;
        let mut bases = list_segments(dir)?;
        let mut log = SegmentedLog {
            dir: dir.to_path_buf(),
            segment_bytes_max,
            bases: Vec::new(),
            active: None,
            positions: BTreeMap::new(),
        };
        let mut entries = Vec::new();
        let mut next_index: Option<u64> = None;
        let last_base = bases.last().copied();
        for base in bases.drain(..) {
            let is_last = Some(base) == last_base;
            if let Some(expected) = next_index {
                let purged_index = state.last_purged.map(|id| id.index);
                // A gap is allowed only where the entries in between were purged.
                if base != expected && purged_index.is_none_or(|p| base > p + 1) {
                    return Err(StoreError::Corrupt {
                        path: segment_path(dir, base),
                        reason: format!("hole in the log: expected index {expected}"),
                    });
                }
            }
            let Some(len_bytes) = log.recover_segment(base, is_last, &mut entries)? else {
                continue;
            };
            next_index = Some(entries.last().map_or(base, |e: &Entry| e.log_id.index + 1));
            log.bases.push(base);
            if is_last {
                let path = segment_path(dir, base);
                let file = OpenOptions::new().append(true).open(&path).map_err(|e| StoreError::io("open", &path, e))?;
                log.active = Some(ActiveSegment { base, file, len_bytes });
            }
        }
        let purged_index = state.last_purged.map(|id| id.index);
        entries.retain(|e| purged_index.is_none_or(|p| e.log_id.index > p));
        let last = entries.last().map(|e| e.log_id).or(state.last_purged);
        if let (Some(committed), last) = (state.committed, last) {
            if last.is_none_or(|l| committed.index > l.index) {
                tracing::warn!(?committed, ?last, "committed log id beyond the recovered log; lowering it");
                state.committed = last;
            }
        }
        Ok((log, Recovered { state, entries }))
    }

    /// Reads and checks one segment, appending its entries; truncates a bad tail of the last
    /// segment. Returns the valid length, or `None` if the (last) segment was an unfinished
    /// creation and has been removed.
    fn recover_segment(
        &mut self,
        base: u64,
        is_last: bool,
        entries: &mut Vec<Entry>,
    ) -> Result<Option<u64>, StoreError> {
        let path = segment_path(&self.dir, base);
        let bytes = durable::read_bounded(&path, SEGMENT_FILE_BYTES_MAX)
            .map_err(|e| StoreError::io("read", &path, e))?
            .unwrap_or_default();
        if bytes.len() < frame::FILE_HEADER_BYTES && is_last {
            tracing::warn!(path = %path.display(), "removing segment with an unfinished header");
            fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, e))?;
            durable::sync_dir(&self.dir).map_err(|e| StoreError::io("sync directory", &self.dir, e))?;
            return Ok(None);
        }
        frame::check_file_header(&bytes, frame::LOG_SEGMENT_MAGIC, &path)?;
        let mut offset = frame::FILE_HEADER_BYTES;
        let mut expected = base;
        loop {
            let problem = match frame::read_record(&bytes, offset, LOG_ENTRY_BYTES_MAX) {
                RecordRead::End => break,
                RecordRead::Invalid { reason } => reason,
                RecordRead::Valid { payload, next_offset } => match postcard::from_bytes::<Entry>(payload) {
                    // The checksum matched, so these are the bytes that were written: a format
                    // mismatch, not a torn write. Refuse rather than drop acknowledged entries.
                    Err(error) => {
                        return Err(StoreError::Corrupt {
                            path,
                            reason: format!("entry at byte {offset} has a valid checksum but does not decode: {error}"),
                        });
                    }
                    Ok(entry) if entry.log_id.index != expected => {
                        return Err(StoreError::Corrupt {
                            path,
                            reason: format!("entry index {} where {expected} was expected", entry.log_id.index),
                        });
                    }
                    Ok(entry) => {
                        self.positions.insert(expected, (base, offset as u64));
                        entries.push(entry);
                        expected += 1;
                        offset = next_offset;
                        continue;
                    }
                },
            };
            if !is_last {
                return Err(StoreError::Corrupt { path, reason: format!("at byte {offset}: {problem}") });
            }
            tracing::warn!(
                path = %path.display(),
                offset,
                dropped_bytes = bytes.len() - offset,
                problem = %problem,
                "truncating torn or corrupt tail of the Raft log"
            );
            let file = OpenOptions::new().write(true).open(&path).map_err(|e| StoreError::io("open", &path, e))?;
            file.set_len(offset as u64).map_err(|e| StoreError::io("truncate", &path, e))?;
            file.sync_all().map_err(|e| StoreError::io("sync", &path, e))?;
            break;
        }
        Ok(Some(offset as u64))
    }

    /// Writes `(index, payload)` records after the last entry. Not durable until [`Self::sync`].
    pub fn append(&mut self, records: &[(u64, Vec<u8>)]) -> io::Result<()> {
        let mut buffer = Vec::new();
        for (index, payload) in records {
            let contiguous = self.positions.last_key_value().map(|(last, _)| last + 1) == Some(*index)
                || self
                    .active
                    .as_ref()
                    .is_some_and(|a| a.len_bytes == frame::FILE_HEADER_BYTES as u64 && a.base == *index);
            let full = self.active.as_ref().is_none_or(|a| a.len_bytes >= self.segment_bytes_max);
            if full || !contiguous {
                self.write_active(&mut buffer)?;
                self.roll(*index)?;
            }
            let active = self.active.as_mut().expect("rolled above");
            self.positions.insert(*index, (active.base, active.len_bytes + buffer.len() as u64));
            frame::encode_record(payload, &mut buffer);
            // Account the bytes now so that the roll decision sees them.
            if buffer.len() as u64 + active.len_bytes >= self.segment_bytes_max {
                self.write_active(&mut buffer)?;
            }
        }
        self.write_active(&mut buffer)
    }

    fn write_active(&mut self, buffer: &mut Vec<u8>) -> io::Result<()> {
        if buffer.is_empty() {
            return Ok(());
        }
        let active = self.active.as_mut().expect("records are only buffered for an active segment");
        active.file.write_all(buffer)?;
        active.len_bytes += buffer.len() as u64;
        buffer.clear();
        Ok(())
    }

    /// Starts a new segment whose first entry is `base`, after making the old one durable.
    fn roll(&mut self, base: u64) -> io::Result<()> {
        if let Some(old) = self.active.take() {
            if old.len_bytes == frame::FILE_HEADER_BYTES as u64 {
                // An empty segment (left by a truncation) would otherwise sit before a gap.
                drop(old.file);
                fs::remove_file(segment_path(&self.dir, old.base))?;
                self.bases.retain(|b| *b != old.base);
            } else {
                // A failed fsync is never mistaken for a full disk (see `is_out_of_space`).
                old.file.sync_all().map_err(fsync_failed)?;
            }
        }
        let path = segment_path(&self.dir, base);
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&path)?;
        file.write_all(&frame::file_header(frame::LOG_SEGMENT_MAGIC))?;
        file.sync_all()?;
        durable::sync_dir(&self.dir)?;
        self.bases.retain(|b| *b < base);
        self.bases.push(base);
        self.active = Some(ActiveSegment { base, file, len_bytes: frame::FILE_HEADER_BYTES as u64 });
        Ok(())
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.active {
            Some(active) => active.file.sync_data().map_err(fsync_failed),
            None => Ok(()),
        }
    }

    /// Whether the active segment can grow by `bytes` now: writes that many zeros at its end
    /// and cuts them off again. Lets a writer waiting for disk space test for it without
    /// tearing and recovering the log on every try.
    pub fn has_room_for(&mut self, bytes: usize) -> io::Result<bool> {
        let Some(active) = &self.active else { return Ok(true) };
        let grown = std::os::unix::fs::FileExt::write_all_at(&active.file, &vec![0u8; bytes], active.len_bytes);
        active.file.set_len(active.len_bytes)?;
        match grown {
            Ok(()) => Ok(true),
            Err(error) if is_out_of_space(&error) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// After an append from `first_index` on failed for lack of space: reopens the log from its
    /// files (recovery cuts a torn record and checks every record's CRC), removes any entry of
    /// the failed append that reached the disk whole, and checks that the log still holds the
    /// entry before `first_index` if it did before. The log is then as before the append, and
    /// the append can be retried. An error means the log cannot be trusted (poison it).
    pub fn recover_failed_append(&mut self, first_index: u64) -> Result<(), StoreError> {
        let previous = first_index.checked_sub(1).filter(|index| self.positions.contains_key(index));
        let (mut fresh, _) = SegmentedLog::open(&self.dir, self.segment_bytes_max)?;
        fresh.truncate_from(first_index).map_err(|e| StoreError::io("truncate", &self.dir, e))?;
        let last = fresh.positions.last_key_value().map(|(index, _)| *index);
        if previous.is_some_and(|index| last != Some(index)) || last.is_some_and(|index| index >= first_index) {
            return Err(StoreError::Corrupt {
                path: self.dir.clone(),
                reason: format!("after a failed append at {first_index} the log ends at {last:?}, not {previous:?}"),
            });
        }
        *self = fresh;
        Ok(())
    }

    /// Removes the entry at `index` and every later one, durably.
    pub fn truncate_from(&mut self, index: u64) -> io::Result<()> {
        let Some(&(base, offset)) = self.positions.get(&index) else {
            return Ok(());
        };
        self.sync()?;
        self.active = None;
        for later in self.bases.iter().copied().filter(|b| *b > base) {
            fs::remove_file(segment_path(&self.dir, later))?;
        }
        self.bases.retain(|b| *b <= base);
        let path = segment_path(&self.dir, base);
        let file = OpenOptions::new().append(true).open(&path)?;
        file.set_len(offset)?;
        file.sync_all()?;
        durable::sync_dir(&self.dir)?;
        self.positions.split_off(&index);
        self.active = Some(ActiveSegment { base, file, len_bytes: offset });
        Ok(())
    }

    /// Deletes segment files holding only entries up to `index` (inclusive).
    pub fn purge_upto(&mut self, index: u64) -> io::Result<()> {
        let last_on_disk = self.positions.last_key_value().map(|(i, _)| *i);
        let mut removed = false;
        for (position, base) in self.bases.clone().into_iter().enumerate() {
            let last_in_segment = match self.bases.get(position + 1) {
                Some(next) => next.saturating_sub(1),
                None => last_on_disk.unwrap_or(base),
            };
            if last_in_segment > index || (base > index) {
                break;
            }
            if self.active.as_ref().is_some_and(|a| a.base == base) {
                self.active = None;
            }
            fs::remove_file(segment_path(&self.dir, base))?;
            self.bases.retain(|b| *b != base);
            removed = true;
        }
        let keep = self.positions.split_off(&(index + 1));
        self.positions = keep;
        if removed {
            durable::sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Replaces the Raft state file atomically and durably. Out of space, the temporary file
    /// is removed again (the old state file is untouched) and the call can be retried.
    pub fn save_state(&self, state: &PersistedState) -> io::Result<()> {
        let payload = postcard::to_allocvec(state).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut bytes = frame::file_header(frame::RAFT_STATE_MAGIC).to_vec();
        frame::encode_record(&payload, &mut bytes);
        let written = durable::write_atomically(&self.dir, RAFT_STATE_FILE, &bytes);
        if written.as_ref().is_err_and(is_out_of_space) {
            let _ = durable::remove_if_exists(&durable::tmp_path(&self.dir, RAFT_STATE_FILE));
        }
        written
    }
}

/// Whether a write failed because the disk or the quota is full (ENOSPC, EDQUOT). Such a
/// write can be undone and retried; a failed fsync cannot (its errors are re-kinded by
/// [`fsync_failed`] so that they never match here).
pub fn is_out_of_space(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

/// An fsync error, kept apart from a full disk: after a failed fsync the page cache cannot be
/// trusted, whatever the reason (ext4 and NFS can report ENOSPC from fsync after dropping the
/// data).
fn fsync_failed(error: io::Error) -> io::Error {
    io::Error::other(format!("fsync failed: {error}"))
}

fn read_state(dir: &Path) -> Result<PersistedState, StoreError> {
    let tmp = durable::tmp_path(dir, RAFT_STATE_FILE);
    durable::remove_if_exists(&tmp).map_err(|e| StoreError::io("remove", &tmp, e))?;
    let path = dir.join(RAFT_STATE_FILE);
    let bytes_max = frame::FILE_HEADER_BYTES + frame::RECORD_HEADER_BYTES + LOG_ENTRY_BYTES_MAX;
    let Some(bytes) = durable::read_bounded(&path, bytes_max).map_err(|e| StoreError::io("read", &path, e))? else {
        return Ok(PersistedState::default());
    };
    frame::check_file_header(&bytes, frame::RAFT_STATE_MAGIC, &path)?;
    let corrupt = |reason: String| StoreError::Corrupt { path: path.clone(), reason };
    match frame::read_record(&bytes, frame::FILE_HEADER_BYTES, LOG_ENTRY_BYTES_MAX) {
        RecordRead::Valid { payload, .. } => postcard::from_bytes(payload).map_err(|e| corrupt(e.to_string())),
        RecordRead::End => Err(corrupt("no state record".to_string())),
        RecordRead::Invalid { reason } => Err(corrupt(reason)),
    }
}

fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut bases = Vec::new();
    for item in fs::read_dir(dir).map_err(|e| StoreError::io("list", dir, e))? {
        let item = item.map_err(|e| StoreError::io("list", dir, e))?;
        if let Some(base) = item.file_name().to_str().and_then(parse_segment_name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}
