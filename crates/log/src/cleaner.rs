//! Log compaction (`cleanup.policy=compact`): keep the newest record of every key.
//!
//! A pass works like Kafka's cleaner, simplified to one log at a time:
//! 1. The *cleanable* range is every segment before the active one that lies wholly below the
//!    high watermark.
//! 2. Scan it oldest first and build a map key → newest offset, within
//!    `cleaner_dedupe_bytes_max`; the pass cleans as many whole segments as the map covered.
//! 3. Rewrite each of those segments into `<base>.log.cleaned`, keeping a record if it has no
//!    key, or no newer record of its key exists in the map, and — for a tombstone (null value)
//!    — only while its batch is younger than `delete_retention_ms`. Offsets never change: a
//!    batch keeps its base offset, last offset delta, timestamps and producer fields; only the
//!    kept records (raw bytes, unchanged) are re-compressed with the batch's own codec and the
//!    CRC recomputed. A batch with every record kept is copied byte for byte; an empty one is
//!    dropped; a control batch, or one that cannot be decompressed within
//!    [`DECOMPRESSED_BATCH_BYTES_MAX`](crate::config::DECOMPRESSED_BATCH_BYTES_MAX), is kept whole.
//! 4. Swap: fsync the cleaned file, unlink the old indexes, rename the cleaned file over the
//!    old `.log`, fsync the directory, then rebuild the indexes. A crash at any step leaves
//!    either the old or the new `.log` with no index (rebuilt on open) or a `.cleaned` file
//!    (deleted on open). Readers holding the old file keep reading it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};

use crate::batch::{compute_crc, verify_stored, BatchHeader, LOG_OVERHEAD_BYTES};
use crate::checkpoint::sync_dir;
use crate::config::BATCH_HEADER_BYTES;
use crate::error::{LogError, Result};
use crate::log::Log;
use crate::records::{compress, parse_records, records_section};
use crate::segment::{file_name, Segment};

/// Bytes the key map is charged per entry beyond the key itself (offset, hash slot, vector
/// header), so that its budget tracks real memory.
const MAP_ENTRY_OVERHEAD_BYTES: usize = 48;

/// What a compaction pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactionOutcome {
    /// Segments rewritten.
    pub segments_cleaned: usize,
    /// Records dropped (superseded or expired tombstones).
    pub records_removed: u64,
    /// Bytes of the cleaned segments before the pass.
    pub bytes_before: u64,
    /// Bytes of the same segments after it.
    pub bytes_after: u64,
}

impl Log {
    /// Offset below which compaction may rewrite data: the base of the first segment that is
    /// active or not wholly below the high watermark.
    pub fn first_uncleanable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        let active_base = *self.segments().keys().next_back().expect("at least one segment");
        self.segments()
            .values()
            .find(|s| s.base_offset == active_base || s.next_offset() > hw)
            .map_or(active_base, |s| s.base_offset)
    }

    /// Runs one compaction pass (no-op unless the cleanup policy compacts).
    pub fn compact(&mut self) -> Result<CompactionOutcome> {
        self.check_writable()?;
        let mut outcome = CompactionOutcome::default();
        if !self.config().cleanup_policy.compacts() {
            return Ok(outcome);
        }
        let uncleanable = self.first_uncleanable_offset();
        let candidates: Vec<i64> = self.segments().range(..uncleanable).map(|(b, _)| *b).collect();
        let (map, covered) = self.build_key_map(&candidates)?;
        let now = self.clock_now_ms();
        for base in candidates.into_iter().take(covered) {
            let (removed, before, after) = self.clean_segment(base, &map, now)?;
            if removed > 0 {
                outcome.segments_cleaned += 1;
                outcome.records_removed += removed;
                outcome.bytes_before += before;
                outcome.bytes_after += after;
            }
        }
        if outcome.segments_cleaned > 0 {
            tracing::info!(dir = %self.dir().display(), ?outcome, "compacted log");
        }
        Ok(outcome)
    }

    /// Maps key → newest offset over `bases`; returns how many leading segments it covers.
    fn build_key_map(&self, bases: &[i64]) -> Result<(HashMap<Vec<u8>, i64>, usize)> {
        let mut map: HashMap<Vec<u8>, i64> = HashMap::new();
        let mut used = 0usize;
        let budget = self.config().cleaner_dedupe_bytes_max;
        for (i, base) in bases.iter().enumerate() {
            let seg = &self.segments()[base];
            let mut complete = true;
            for_each_batch(self, seg, |batch, header| {
                if header.is_control() {
                    return true;
                }
                let Ok(section) = records_section(batch, header) else {
                    return true;
                };
                let Ok(records) = parse_records(&section, header.record_count) else {
                    return true;
                };
                for r in records {
                    let Some(key) = r.key else { continue };
                    let offset = header.base_offset + i64::from(r.offset_delta);
                    if let Some(o) = map.get_mut(key) {
                        *o = offset;
                    } else {
                        used += key.len() + MAP_ENTRY_OVERHEAD_BYTES;
                        if used > budget {
                            complete = false;
                            return false;
                        }
                        map.insert(key.to_vec(), offset);
                    }
                }
                true
            })?;
            if !complete {
                return Ok((map, i));
            }
        }
        Ok((map, bases.len()))
    }

    /// Rewrites one segment; returns (records removed, bytes before, bytes after).
    fn clean_segment(&mut self, base: i64, map: &HashMap<Vec<u8>, i64>, now_ms: i64) -> Result<(u64, u64, u64)> {
        let dir = self.dir().to_path_buf();
        let delete_retention_ms = self.config().delete_retention_ms as i64;
        let cleaned_path = dir.join(format!("{}.cleaned", file_name(base, "log")));
        let io = |e| LogError::io(&cleaned_path, e);
        let seg = &self.segments()[&base];
        let before = seg.size();
        let mut out = BufWriter::new(File::create(&cleaned_path).map_err(io)?);
        let mut removed = 0u64;
        let mut write_error = None;
        for_each_batch(self, seg, |batch, header| {
            let kept = match retained_batch(batch, header, map, now_ms, delete_retention_ms) {
                Retained::All => Some(std::borrow::Cow::Borrowed(batch)),
                Retained::Rebuilt(bytes, dropped) => {
                    removed += dropped;
                    Some(std::borrow::Cow::Owned(bytes))
                }
                Retained::None(dropped) => {
                    removed += dropped;
                    None
                }
            };
            if let Some(b) = kept {
                if let Err(e) = out.write_all(&b) {
                    write_error = Some(e);
                    return false;
                }
            }
            true
        })?;
        if let Some(e) = write_error {
            return Err(io(e));
        }
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        if removed == 0 {
            drop(file);
            fs::remove_file(&cleaned_path).map_err(io)?;
            return Ok((0, before, before));
        }
        file.sync_data().map_err(io)?;
        let after = file.metadata().map_err(io)?.len();
        drop(file);

        // Swap. The old segment's File stays open in any reader still holding it.
        self.replace_segment(base, None);
        let log_path = dir.join(file_name(base, "log"));
        for ext in ["index", "timeindex"] {
            let p = dir.join(file_name(base, ext));
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(&p, e)),
            }
        }
        fs::rename(&cleaned_path, &log_path).map_err(|e| LogError::io(&log_path, e))?;
        sync_dir(&dir)?;
        if after == 0 {
            fs::remove_file(&log_path).map_err(|e| LogError::io(&log_path, e))?;
            sync_dir(&dir)?;
            return Ok((removed, before, 0));
        }
        let config = self.config().clone();
        let (segment, cut) = Segment::recover(&dir, base, &config, false).map_err(|e| LogError::io(&log_path, e))?;
        if cut != 0 {
            return Err(LogError::Damaged { dir, reason: format!("cleaned segment {base} failed validation") });
        }
        segment.sync_all().map_err(|e| LogError::io(&log_path, e))?;
        self.replace_segment(base, Some(segment));
        Ok((removed, before, after))
    }
}

/// Calls `f(batch_bytes, header)` for every batch of `seg`, verifying each CRC first; stops
/// when `f` returns false.
fn for_each_batch(log: &Log, seg: &Segment, mut f: impl FnMut(&[u8], &BatchHeader) -> bool) -> Result<()> {
    let io = |e| LogError::io(log.dir(), e);
    let mut position = 0;
    while let Some(h) = seg.header_at(position).map_err(io)? {
        let batch = seg.batch_at(position, &h).map_err(io)?;
        if !verify_stored(&batch) {
            return Err(LogError::Damaged {
                dir: log.dir().to_path_buf(),
                reason: format!("batch at offset {} of segment {} fails its CRC", h.base_offset, seg.base_offset),
            });
        }
        if !f(&batch, &h) {
            break;
        }
        position += h.total_bytes() as u64;
    }
    Ok(())
}

enum Retained {
    All,
    Rebuilt(Vec<u8>, u64),
    None(u64),
}

fn retained_batch(
    batch: &[u8],
    header: &BatchHeader,
    map: &HashMap<Vec<u8>, i64>,
    now_ms: i64,
    delete_retention_ms: i64,
) -> Retained {
    if header.is_control() {
        return Retained::All;
    }
    let Ok(section) = records_section(batch, header) else {
        return Retained::All;
    };
    let Ok(records) = parse_records(&section, header.record_count) else {
        return Retained::All;
    };
    let tombstones_expired = header.max_timestamp.saturating_add(delete_retention_ms) < now_ms;
    let keep: Vec<bool> = records
        .iter()
        .map(|r| {
            let offset = header.base_offset + i64::from(r.offset_delta);
            match r.key {
                None => true,
                Some(key) => {
                    let newest = map.get(key).is_none_or(|&o| o <= offset);
                    newest && !(r.value_is_null && tombstones_expired)
                }
            }
        })
        .collect();
    let kept = keep.iter().filter(|k| **k).count();
    let dropped = (records.len() - kept) as u64;
    if dropped == 0 {
        return Retained::All;
    }
    if kept == 0 {
        return Retained::None(dropped);
    }
    let mut raw = Vec::with_capacity(section.len());
    for (r, _) in records.iter().zip(&keep).filter(|(_, k)| **k) {
        raw.extend_from_slice(r.bytes);
    }
    let Some(codec) = header.codec() else {
        return Retained::All;
    };
    let Ok(body) = compress(codec, &raw) else {
        return Retained::All;
    };
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + body.len());
    out.extend_from_slice(&batch[..BATCH_HEADER_BYTES]);
    out.extend_from_slice(&body);
    let batch_length = (out.len() - LOG_OVERHEAD_BYTES) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[57..61].copy_from_slice(&(kept as i32).to_be_bytes());
    let crc = compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    debug_assert!(verify_stored(&out));
    Retained::Rebuilt(out, dropped)
}
