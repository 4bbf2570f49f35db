//! Log compaction (`cleanup.policy=compact`): keep the newest record of every key.
//!
//! *When* a log is compacted is Kafka's rule, decided by the pure [`plan_cleaning`] from what
//! the log holds in memory (segment sizes, offsets and timestamps; no file is read):
//! - The *clean* part lies below the cleaner checkpoint (`Log::cleaned_to`, where the last pass
//!   stopped); the *dirty* part runs from there to the *first uncleanable offset*: the base of
//!   the active segment, of the first segment not wholly below the high watermark, or of the
//!   first dirty segment holding a record younger than `min_compaction_lag_ms`, whichever comes
//!   first. The active segment is never compacted.
//! - A pass is due when the dirty bytes are more than `min_cleanable_dirty_ratio` of the clean
//!   and dirty bytes together (strictly more, as Kafka), or when there are dirty bytes and the
//!   oldest first-batch timestamp of a dirty sealed segment is older than
//!   `max_compaction_lag_ms` (the active segment of a compacted log also rolls at that age:
//!   `LogConfig::segment_ms_max`). [`Log::compact_if_due`] asks the plan, [`Log::compact`]
//!   runs a pass regardless.
//!
//! A pass works like Kafka's cleaner, simplified to one log at a time:
//! 1. The *cleanable* range is every segment below the first uncleanable offset.
//! 2. Scan it oldest first and build a map key → newest offset, within
//!    `cleaner_dedupe_bytes_max`; the pass cleans as many whole segments as the map covered,
//!    and moves the cleaner checkpoint to the end of them.
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
use crate::config::{LogConfig, BATCH_HEADER_BYTES};
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

/// What the cleaner knows of one segment when it decides: nothing it must read a file for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    /// First offset the segment may hold.
    pub base_offset: i64,
    /// Last offset it holds + 1 (its base offset when empty).
    pub next_offset: i64,
    /// Bytes of its `.log` file.
    pub bytes: u64,
    /// Max-timestamp of its first batch, `None` when empty.
    pub first_batch_timestamp: Option<i64>,
    /// Newest batch max-timestamp in it, -1 when empty or without timestamps.
    pub max_timestamp: i64,
}

/// Why a compaction pass is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactionDue {
    /// The dirty bytes are more than `min.cleanable.dirty.ratio` of the cleanable log.
    DirtyRatio,
    /// A dirty record is older than `max.compaction.lag.ms`.
    MaxCompactionLag,
}

/// The cleaner's view of a log at one moment ([`plan_cleaning`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleaningPlan {
    /// First offset not compacted yet: the cleaner checkpoint, at least the log start.
    pub first_dirty_offset: i64,
    /// First offset a pass may not rewrite (see the module docs).
    pub first_uncleanable_offset: i64,
    /// Bytes of the segments wholly below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of the other segments below the first uncleanable offset.
    pub dirty_bytes: u64,
    /// Why a pass is due; `None` when it is not.
    pub due: Option<CompactionDue>,
}

/// Decides, as Kafka's cleaner manager does, which part of a log is dirty and whether a pass
/// is due (see the module docs). `segments` are in offset order, the active one last; `now_ms`
/// is the log's clock. Pure.
pub(crate) fn plan_cleaning(
    segments: &[SegmentSummary],
    log_start_offset: i64,
    cleaned_to: i64,
    high_watermark: i64,
    now_ms: i64,
    config: &LogConfig,
) -> CleaningPlan {
    let active = segments.last().expect("at least one segment");
    let first_dirty_offset = cleaned_to.clamp(log_start_offset, active.next_offset);
    let dirty_sealed = || segments[..segments.len() - 1].iter().filter(move |s| s.next_offset > first_dirty_offset);
    let min_lag_ms = i64::try_from(config.min_compaction_lag_ms).unwrap_or(i64::MAX);
    let too_young = |s: &SegmentSummary| min_lag_ms > 0 && s.max_timestamp > now_ms.saturating_sub(min_lag_ms);
    let first_uncleanable_offset = segments
        .iter()
        .find(|s| s.base_offset == active.base_offset || s.next_offset > high_watermark)
        .map_or(active.base_offset, |s| s.base_offset)
        .min(dirty_sealed().find(|s| too_young(s)).map_or(i64::MAX, |s| s.base_offset));
    let clean_bytes: u64 = segments.iter().filter(|s| s.next_offset <= first_dirty_offset).map(|s| s.bytes).sum();
    let dirty_bytes: u64 = dirty_sealed().filter(|s| s.base_offset < first_uncleanable_offset).map(|s| s.bytes).sum();
    let max_lag_ms = i64::try_from(config.max_compaction_lag_ms).unwrap_or(i64::MAX);
    let oldest_dirty_ms = dirty_sealed().filter_map(|s| s.first_batch_timestamp).filter(|&t| t > 0).min();
    let lagging = oldest_dirty_ms.is_some_and(|t| t < now_ms.saturating_sub(max_lag_ms));
    let total_bytes = clean_bytes + dirty_bytes;
    let due = if !config.cleanup_policy.compacts() || dirty_bytes == 0 {
        None
    } else if dirty_bytes as f64 / total_bytes as f64 > config.min_cleanable_dirty_ratio {
        Some(CompactionDue::DirtyRatio)
    } else if lagging {
        Some(CompactionDue::MaxCompactionLag)
    } else {
        None
    };
    CleaningPlan { first_dirty_offset, first_uncleanable_offset, clean_bytes, dirty_bytes, due }
}

impl Log {
    /// The cleaner's view of this log now ([`plan_cleaning`]).
    pub fn cleaning_plan(&self) -> CleaningPlan {
        let segments: Vec<SegmentSummary> = self
            .segments()
            .values()
            .map(|s| SegmentSummary {
                base_offset: s.base_offset,
                next_offset: s.next_offset(),
                bytes: s.size(),
                first_batch_timestamp: s.first_batch_timestamp(),
                max_timestamp: s.max_timestamp(),
            })
            .collect();
        plan_cleaning(
            &segments,
            self.log_start_offset(),
            self.cleaned_to(),
            self.high_watermark(),
            self.clock_now_ms(),
            self.config(),
        )
    }

    /// Offset below which compaction may rewrite data: the base of the active segment, of the
    /// first segment not wholly below the high watermark, or of the first dirty segment with a
    /// record younger than `min_compaction_lag_ms`, whichever comes first.
    pub fn first_uncleanable_offset(&self) -> i64 {
        self.cleaning_plan().first_uncleanable_offset
    }

    /// Runs a compaction pass if one is due by Kafka's rules (dirty ratio, maximum lag; see
    /// the module docs); `None` when none is. Cheap when none is due: nothing is read.
    pub fn compact_if_due(&mut self) -> Result<Option<CompactionOutcome>> {
        self.check_writable()?;
        // Every maintenance tick asks every log: one that never compacts skips the plan (and
        // its per-segment summary).
        if !self.config().cleanup_policy.compacts() {
            return Ok(None);
        }
        match self.cleaning_plan().due {
            Some(due) => {
                tracing::debug!(dir = %self.dir().display(), ?due, "compaction due");
                self.compact().map(Some)
            }
            None => Ok(None),
        }
    }

    /// Runs one compaction pass now, due or not (no-op unless the cleanup policy compacts).
    /// Records younger than `min_compaction_lag_ms` and the active segment are never touched.
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
        let cleaned_to = candidates.get(covered).copied().unwrap_or(uncleanable);
        for base in candidates.into_iter().take(covered) {
            let (removed, before, after) = self.clean_segment(base, &map, now)?;
            if removed > 0 {
                outcome.segments_cleaned += 1;
                outcome.records_removed += removed;
                outcome.bytes_before += before;
                outcome.bytes_after += after;
            }
        }
        self.set_cleaned_to(self.cleaned_to().max(cleaned_to));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CleanupPolicy;

    const NOW_MS: i64 = 10_000_000;

    fn compacted(config: LogConfig) -> LogConfig {
        LogConfig { cleanup_policy: CleanupPolicy::Compact, ..config }
    }

    /// Segments of `bytes` each, ten offsets apiece from 0, the last one active; each with
    /// records stamped `age_ms[i]` before [`NOW_MS`].
    fn segments(sizes_and_ages: &[(u64, i64)]) -> Vec<SegmentSummary> {
        sizes_and_ages
            .iter()
            .enumerate()
            .map(|(i, &(bytes, age_ms))| SegmentSummary {
                base_offset: i as i64 * 10,
                next_offset: i as i64 * 10 + 10,
                bytes,
                first_batch_timestamp: Some(NOW_MS - age_ms),
                max_timestamp: NOW_MS - age_ms,
            })
            .collect()
    }

    // Goal: min.cleanable.dirty.ratio as Kafka applies it: a pass is due only when dirty bytes
    // are strictly more than the ratio of clean + dirty bytes; the active segment counts in
    // neither.
    #[test]
    fn a_pass_is_due_above_the_dirty_ratio_only() {
        // Clean: segments 0 and 1 (below offset 20); dirty: 2; active: 3.
        let log = segments(&[(600, 0), (400, 0), (400, 0), (1_000_000, 0)]);
        let plan = |ratio| {
            let config = compacted(LogConfig { min_cleanable_dirty_ratio: ratio, ..LogConfig::default() });
            plan_cleaning(&log, 0, 20, 40, NOW_MS, &config)
        };
        let at_default = plan(0.5);
        assert_eq!((at_default.first_dirty_offset, at_default.first_uncleanable_offset), (20, 30));
        assert_eq!((at_default.clean_bytes, at_default.dirty_bytes), (1000, 400));
        assert_eq!(at_default.due, None, "400 / 1400 is not above 0.5");
        assert_eq!(plan(0.25).due, Some(CompactionDue::DirtyRatio));
        let log = segments(&[(400, 0), (400, 0), (1, 0)]);
        let config = compacted(LogConfig { min_cleanable_dirty_ratio: 0.5, ..LogConfig::default() });
        assert_eq!(plan_cleaning(&log, 0, 10, 30, NOW_MS, &config).due, None, "exactly the ratio: not due");
        // Never compacted: everything below the active segment is dirty.
        assert_eq!(plan_cleaning(&log, 0, i64::MIN, 30, NOW_MS, &config).due, Some(CompactionDue::DirtyRatio));
        // A log that does not compact is never due.
        let deleting = LogConfig { min_cleanable_dirty_ratio: 0.0, ..LogConfig::default() };
        assert_eq!(plan_cleaning(&log, 0, i64::MIN, 30, NOW_MS, &deleting).due, None);
    }

    // Goal: min.compaction.lag.ms: the first dirty segment holding a record younger than the
    // lag, and everything after it, is uncleanable; the high watermark and the active segment
    // bound the cleanable range too.
    #[test]
    fn records_younger_than_the_minimum_lag_are_uncleanable() {
        let log = segments(&[(100, 90_000), (100, 50_000), (100, 10_000), (100, 0)]);
        let plan = |lag_ms, high_watermark| {
            let config = compacted(LogConfig { min_compaction_lag_ms: lag_ms, ..LogConfig::default() });
            plan_cleaning(&log, 0, i64::MIN, high_watermark, NOW_MS, &config).first_uncleanable_offset
        };
        assert_eq!(plan(0, 40), 30, "without a lag: up to the active segment");
        assert_eq!(plan(60_000, 40), 10, "segment 1 holds a record 50 s old");
        assert_eq!(plan(20_000, 40), 20);
        assert_eq!(plan(100_000, 40), 0, "nothing is old enough");
        assert_eq!(plan(0, 15), 10, "segment 1 is not wholly below the high watermark");
        // A clean segment (below the checkpoint) does not make the dirty ones uncleanable.
        let config = compacted(LogConfig { min_compaction_lag_ms: 60_000, ..LogConfig::default() });
        let log = segments(&[(100, 0), (100, 90_000), (100, 0)]);
        assert_eq!(plan_cleaning(&log, 0, 10, 30, NOW_MS, &config).first_uncleanable_offset, 20);
    }

    // Goal: max.compaction.lag.ms makes a pass due below the dirty ratio once the oldest
    // dirty record is older than the lag, and only when there is something dirty.
    #[test]
    fn a_dirty_record_older_than_the_maximum_lag_makes_a_pass_due() {
        let log = segments(&[(10_000, 0), (100, 70_000), (100, 0)]);
        let plan = |max_lag_ms| {
            let config = compacted(LogConfig { max_compaction_lag_ms: max_lag_ms, ..LogConfig::default() });
            plan_cleaning(&log, 0, 10, 30, NOW_MS, &config).due
        };
        assert_eq!(plan(i64::MAX as u64), None, "100 / 10100 is below the ratio");
        assert_eq!(plan(80_000), None, "the oldest dirty record is 70 s old");
        assert_eq!(plan(60_000), Some(CompactionDue::MaxCompactionLag));
        let config = compacted(LogConfig { max_compaction_lag_ms: 1, ..LogConfig::default() });
        assert_eq!(plan_cleaning(&log, 0, 20, 30, NOW_MS, &config).due, None, "nothing dirty");
    }
}
