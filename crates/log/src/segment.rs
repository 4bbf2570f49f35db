//! One segment: a `.log` file of consecutive record batches plus its offset and time indexes.
//!
//! A segment is named by its base offset, 20 digits: `00000000000000001234.log`. Every batch in
//! it has `base_offset >= segment base`, offsets strictly increase from batch to batch, and no
//! batch's last offset is more than `i32::MAX` above the base (index entries store it relative
//! as `u32`). Positions fit a `u32` because a segment never exceeds
//! [`SEGMENT_BYTES_LIMIT`](crate::config::SEGMENT_BYTES_LIMIT) plus one batch.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::batch::{verify_stored, BatchHeader, ValidBatch, LOG_OVERHEAD_BYTES};
use crate::config::{LogConfig, BATCH_BYTES_MAX_LIMIT, BATCH_HEADER_BYTES, RECOVERY_READ_BUFFER_BYTES};
use crate::index::{OffsetIndex, TimeIndex};
use crate::log::Clock;

/// Largest distance from a segment's base offset to any offset in it.
pub(crate) const RELATIVE_OFFSET_MAX: i64 = i32::MAX as i64;

pub(crate) fn file_name(base_offset: i64, extension: &str) -> String {
    format!("{base_offset:020}.{extension}")
}

/// What [`Segment::scan`] found: the segment up to its last valid batch, not yet cut.
#[derive(Debug)]
pub(crate) struct Scan {
    /// The segment, accounting for the valid batches only (`size` is where a cut would go).
    pub segment: Segment,
    /// Length of the `.log` file as found.
    pub file_bytes: u64,
    /// The base offset of the first batch when it lies below the offset in the file name.
    pub first_batch_below_name: Option<i64>,
}

/// A byte range of a segment file holding whole batches.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub position: u64,
    pub len: u64,
    pub next_offset: i64,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: i64,
    dir: PathBuf,
    /// The `.log` file, opened on first use ([`Segment::file`]): a sealed segment holds no
    /// descriptor until something reads it, and gives its descriptor up when it rolls.
    file: OnceLock<Arc<File>>,
    /// Whether [`Segment::file`] was called since the last [`Segment::release_file_if_unused`].
    file_used: AtomicBool,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// Last offset in the segment + 1, or the base offset when empty.
    next_offset: i64,
    /// Largest batch max-timestamp, or -1 when empty.
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    /// Max-timestamp of the first batch; the age `segment_ms` is measured from.
    first_batch_timestamp: Option<i64>,
    bytes_since_index_entry: u64,
    index_interval_bytes: u64,
    /// Wall-clock time this process created or opened the segment.
    opened_at_ms: i64,
    /// How much earlier than the segment age limit this segment rolls, in milliseconds: drawn
    /// once when the segment is created or opened (`segment.jitter.ms`).
    pub(crate) roll_jitter_ms: u64,
}

impl Segment {
    fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
        (
            dir.join(file_name(base_offset, "log")),
            dir.join(file_name(base_offset, "index")),
            dir.join(file_name(base_offset, "timeindex")),
        )
    }

    fn empty(
        dir: &Path,
        base_offset: i64,
        file: File,
        offset_index: OffsetIndex,
        time_index: TimeIndex,
        config: &LogConfig,
    ) -> Segment {
        Segment {
            base_offset,
            dir: dir.to_path_buf(),
            file: OnceLock::from(Arc::new(file)),
            file_used: AtomicBool::new(false),
            size: 0,
            offset_index,
            time_index,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            first_batch_timestamp: None,
            bytes_since_index_entry: 0,
            index_interval_bytes: u64::from(config.index_interval_bytes),
            opened_at_ms: crate::log::SystemClock.now_ms(),
            roll_jitter_ms: config.roll_jitter_ms(rand::random()),
        }
    }

    /// Creates a new, empty, active segment (replacing any files of the same name).
    pub(crate) fn create(dir: &Path, base_offset: i64, config: &LogConfig) -> io::Result<Segment> {
        let (log, index, time) = Self::paths(dir, base_offset);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&log)?;
        let _ = fs::remove_file(&index);
        let _ = fs::remove_file(&time);
        let offset_index = OffsetIndex::open(&index, Some(config.offset_index_bytes()))?;
        let time_index = TimeIndex::open(&time, Some(config.time_index_bytes()))?;
        Ok(Self::empty(dir, base_offset, file, offset_index, time_index, config))
    }

    /// Opens a segment whose data is trusted (below the recovery point, or after a clean
    /// shutdown). Returns `None` when its indexes or batch framing do not add up, in which
    /// case the caller recovers it instead.
    pub(crate) fn open_trusted(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        active: bool,
    ) -> io::Result<Option<Segment>> {
        let (log, index, time) = Self::paths(dir, base_offset);
        if !index.exists() || !time.exists() {
            return Ok(None);
        }
        let file = OpenOptions::new().read(true).write(true).open(&log)?;
        let size = file.metadata()?.len();
        let prealloc = |bytes| active.then_some(bytes);
        let offset_index = OffsetIndex::open(&index, prealloc(config.offset_index_bytes()))?;
        let time_index = TimeIndex::open(&time, prealloc(config.time_index_bytes()))?;
        let mut seg = Self::empty(dir, base_offset, file, offset_index, time_index, config);
        seg.size = size;
        if !seg.offset_index.is_sane(size) {
            return Ok(None);
        }
        // Walk the batch headers after the last index entry to find the end of the segment.
        let start = match seg.offset_index.file.entries() {
            0 => 0,
            n => {
                let (rel, pos) = seg.offset_index.get(n - 1);
                match seg.header_at(u64::from(pos))? {
                    Some(h) if h.base_offset == base_offset + i64::from(rel) => u64::from(pos),
                    _ => return Ok(None),
                }
            }
        };
        let mut position = start;
        let mut previous_last: Option<i64> = None;
        while position < size {
            let Some(h) = seg.header_at(position)? else {
                return Ok(None);
            };
            let total = h.total_bytes() as u64;
            let plausible = h.magic == 2
                && h.total_bytes() >= BATCH_HEADER_BYTES
                && position + total <= size
                && h.base_offset >= base_offset
                && h.last_offset_delta >= 0
                && h.last_offset() - base_offset <= RELATIVE_OFFSET_MAX
                && previous_last.is_none_or(|p| h.base_offset > p);
            if !plausible {
                return Ok(None);
            }
            seg.note_timestamp(&h);
            previous_last = Some(h.last_offset());
            position += total;
        }
        if let Some(last) = previous_last {
            seg.next_offset = last + 1;
        }
        seg.bytes_since_index_entry = size - start;
        if !seg.time_index.is_sane((seg.next_offset - base_offset) as u64) {
            return Ok(None);
        }
        if let Some((ts, rel)) = seg.time_index.last() {
            if ts > seg.max_timestamp {
                seg.max_timestamp = ts;
                seg.offset_of_max_timestamp = base_offset + i64::from(rel);
            }
        }
        if size > 0 {
            seg.first_batch_timestamp = seg.header_at(0)?.map(|h| h.max_timestamp);
        }
        if !active {
            seg.release_file();
        }
        Ok(Some(seg))
    }

    /// Opens a segment by scanning every batch and checking its CRC: indexes are rebuilt, and a
    /// torn or corrupt tail is cut off. Returns the segment and how many bytes were cut.
    pub(crate) fn recover(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        active: bool,
    ) -> io::Result<(Segment, u64)> {
        let mut scan = Self::scan(dir, base_offset, config)?;
        let cut = scan.segment.finish_recovery(scan.file_bytes, active)?;
        Ok((scan.segment, cut))
    }

    /// The first half of [`Segment::recover`]: reads every batch from the start, checks its
    /// CRC and order, and rebuilds the indexes up to the first batch that fails, without
    /// changing the `.log` file — so that the caller can refuse a cut that would lose synced
    /// data before anything is lost. [`Segment::finish_recovery`] cuts and seals.
    pub(crate) fn scan(dir: &Path, base_offset: i64, config: &LogConfig) -> io::Result<Scan> {
        let (log, index, time) = Self::paths(dir, base_offset);
        let file = OpenOptions::new().read(true).write(true).open(&log)?;
        let file_bytes = file.metadata()?.len();
        let _ = fs::remove_file(&index);
        let _ = fs::remove_file(&time);
        let offset_index = OffsetIndex::open(&index, Some(config.offset_index_bytes()))?;
        let time_index = TimeIndex::open(&time, Some(config.time_index_bytes()))?;
        let mut seg = Self::empty(dir, base_offset, file, offset_index, time_index, config);

        let file = Arc::clone(seg.file()?);
        let mut reader = BufReader::with_capacity(RECOVERY_READ_BUFFER_BYTES, &*file);
        let mut batch = Vec::new();
        let mut position = 0u64;
        let mut first_batch_below_name = None;
        loop {
            let mut prefix = [0u8; LOG_OVERHEAD_BYTES];
            if read_full(&mut reader, &mut prefix)? < LOG_OVERHEAD_BYTES {
                break;
            }
            let batch_length = i32::from_be_bytes(prefix[8..12].try_into().expect("4 bytes"));
            let total = LOG_OVERHEAD_BYTES as i64 + i64::from(batch_length);
            if total < BATCH_HEADER_BYTES as i64
                || total > BATCH_BYTES_MAX_LIMIT as i64
                || position + total as u64 > file_bytes
            {
                break;
            }
            batch.clear();
            batch.extend_from_slice(&prefix);
            batch.resize(total as usize, 0);
            if read_full(&mut reader, &mut batch[LOG_OVERHEAD_BYTES..])? < total as usize - LOG_OVERHEAD_BYTES {
                break;
            }
            if !verify_stored(&batch) {
                break;
            }
            let h = BatchHeader::parse(&batch).expect("verified batch has a header");
            if position == 0 && h.base_offset < base_offset {
                // A whole, valid batch below the file's name: no crash writes that.
                first_batch_below_name = Some(h.base_offset);
            }
            let in_order = h.base_offset >= seg.next_offset && h.last_offset() - base_offset <= RELATIVE_OFFSET_MAX;
            if !in_order || seg.index_full() {
                break;
            }
            seg.track_batch(position, &h);
            position += total as u64;
        }
        seg.size = position;
        Ok(Scan { segment: seg, file_bytes, first_batch_below_name })
    }

    /// The second half of [`Segment::recover`]: cuts the `.log` file (`file_bytes` long) to the
    /// batches the scan accepted, saying so in one log line, and seals the segment unless it
    /// is the active one. Returns how many bytes were cut.
    pub(crate) fn finish_recovery(&mut self, file_bytes: u64, active: bool) -> io::Result<u64> {
        let cut = file_bytes - self.size;
        if cut > 0 {
            let segment = self.dir.join(file_name(self.base_offset, "log"));
            tracing::warn!(segment = %segment.display(), valid_bytes = self.size, cut_bytes = cut, first_lost_offset = self.next_offset, "truncating a torn or corrupt segment tail");
            self.file()?.set_len(self.size)?;
            self.file()?.sync_data()?;
        }
        if !active {
            self.seal()?;
            self.release_file();
        }
        Ok(cut)
    }

    fn index_full(&self) -> bool {
        self.offset_index.file.is_full() || self.time_index.file.is_full()
    }

    fn note_timestamp(&mut self, h: &BatchHeader) {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.base_offset;
        }
    }

    /// Accounts for a batch written at `position`: indexes, timestamps, end offset.
    fn track_batch(&mut self, position: u64, h: &BatchHeader) {
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(h.max_timestamp);
        }
        self.note_timestamp(h);
        if self.bytes_since_index_entry > self.index_interval_bytes && !self.index_full() {
            let rel = (h.base_offset - self.base_offset) as u32;
            // An entry that cannot be stored (no disk space for its page) is skipped and
            // tried again with the next batch: lookups scan forward from the entry before.
            match self.offset_index.push(rel, position as u32) {
                Ok(()) => {
                    self.maybe_append_time_entry();
                    self.bytes_since_index_entry = 0;
                }
                Err(error) => tracing::debug!(segment = self.base_offset, %error, "offset index entry skipped"),
            }
        }
        self.bytes_since_index_entry += h.total_bytes() as u64;
        self.next_offset = h.last_offset() + 1;
    }

    fn maybe_append_time_entry(&mut self) {
        let newer = self.time_index.last().is_none_or(|(ts, _)| self.max_timestamp > ts);
        if self.max_timestamp >= 0 && newer && !self.time_index.file.is_full() {
            let rel = (self.offset_of_max_timestamp - self.base_offset) as u32;
            if let Err(error) = self.time_index.push(self.max_timestamp, rel) {
                tracing::debug!(segment = self.base_offset, %error, "time index entry skipped");
            }
        }
    }

    /// Whether appending `bytes` more, ending at `last_offset`, with batches whose newest
    /// timestamp is `incoming_timestamp`, requires a new segment first. Age is measured as
    /// Kafka does: incoming timestamp minus the first batch's timestamp, or wall-clock time
    /// since the segment was opened when the first batch has no timestamp; the segment rolls
    /// once its age passes the age limit ([`LogConfig::segment_ms_max`]) less its jitter.
    pub(crate) fn needs_roll(
        &self,
        bytes: u64,
        last_offset: i64,
        incoming_timestamp: i64,
        now_ms: i64,
        config: &LogConfig,
    ) -> bool {
        if self.size == 0 {
            return false;
        }
        let too_big = self.size + bytes > config.segment_bytes;
        let age_ms = match self.first_batch_timestamp {
            Some(first) if first >= 0 => incoming_timestamp.saturating_sub(first),
            _ => now_ms.saturating_sub(self.opened_at_ms),
        };
        let age_limit_ms = config.segment_ms_max().saturating_sub(self.roll_jitter_ms);
        let too_old = age_ms > i64::try_from(age_limit_ms).unwrap_or(i64::MAX);
        let offsets_overflow = last_offset - self.base_offset > RELATIVE_OFFSET_MAX;
        too_big || too_old || offsets_overflow || self.index_full()
    }

    /// Appends validated batches (already carrying their final offsets) as one write.
    pub(crate) fn append(&mut self, buf: &[u8], batches: &[ValidBatch]) -> io::Result<()> {
        self.file()?.write_all_at(buf, self.size)?;
        for b in batches {
            let mut h = b.header;
            h.base_offset = crate::batch::be_i64(&buf[b.position..], 0);
            self.track_batch(self.size + b.position as u64, &h);
        }
        self.size += buf.len() as u64;
        Ok(())
    }

    /// After a failed append: cuts the `.log` file back to the bytes accounted for (a write
    /// that failed part-way, for example on a full disk, may have left a partial batch), then
    /// checks that the file now ends exactly at the last accounted batch and that this batch
    /// reads back whole with a good CRC. An error means the segment cannot be trusted.
    pub(crate) fn discard_unaccounted_tail(&mut self) -> io::Result<()> {
        let file = self.file()?;
        file.set_len(self.size)?;
        let on_disk = file.metadata()?.len();
        if on_disk != self.size {
            return Err(io::Error::other(format!("segment is {on_disk} bytes after a cut to {}", self.size)));
        }
        if self.next_offset > self.base_offset {
            let last = self.next_offset - 1;
            let intact = match self.find_batch(last)? {
                Some((position, header)) if header.last_offset() == last => {
                    position + header.total_bytes() as u64 == self.size
                        && verify_stored(&self.batch_at(position, &header)?)
                }
                _ => false,
            };
            if !intact {
                return Err(io::Error::other(format!("the last batch (offset {last}) does not read back intact")));
            }
        }
        Ok(())
    }

    /// Writes `partial` past the accounted end without accounting it: a torn write, as a
    /// full disk leaves one (fault injection).
    #[cfg(any(test, feature = "fault-injection"))]
    pub(crate) fn write_torn_for_test(&self, partial: &[u8]) -> io::Result<()> {
        self.file()?.write_all_at(partial, self.size)
    }

    /// Whether the segment's file can grow by `bytes` now: writes that many zeros past its end
    /// and cuts them off again. Used to notice that a full disk has space again.
    pub(crate) fn can_grow_by(&self, bytes: usize) -> io::Result<bool> {
        let zeros = vec![0u8; bytes];
        let file = self.file()?;
        let grown = file.write_all_at(&zeros, self.size);
        file.set_len(self.size)?;
        match grown {
            Ok(()) => Ok(true),
            Err(error) if crate::error::is_out_of_space(&error) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Adds the final time-index entry and trims both indexes to their used length.
    pub(crate) fn seal(&mut self) -> io::Result<()> {
        self.maybe_append_time_entry();
        self.offset_index.file.trim()?;
        self.time_index.file.trim()
    }

    /// Makes the segment's data durable (not its indexes: they are rebuilt after a crash).
    pub(crate) fn sync_data(&self) -> io::Result<()> {
        self.file()?.sync_data()
    }

    /// Makes the segment and its indexes durable; used when it rolls or the log closes.
    pub(crate) fn sync_all(&self) -> io::Result<()> {
        self.file()?.sync_data()?;
        self.offset_index.file.sync()?;
        self.time_index.file.sync()
    }

    pub(crate) fn header_at(&self, position: u64) -> io::Result<Option<BatchHeader>> {
        if position + BATCH_HEADER_BYTES as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; BATCH_HEADER_BYTES];
        self.file()?.read_exact_at(&mut buf, position)?;
        Ok(BatchHeader::parse(&buf))
    }

    /// [`Segment::header_at`] for the read path: a header that cannot start a whole batch of
    /// this file (wrong magic, a length below the header's or running past the end) means the
    /// file is damaged where recovery did not look (trusted data below the last index entry):
    /// an `InvalidData` error, so the batch is never served.
    fn checked_header_at(&self, position: u64) -> io::Result<Option<BatchHeader>> {
        let Some(h) = self.header_at(position)? else {
            return Ok(None);
        };
        let whole = h.magic == 2
            && h.total_bytes() >= BATCH_HEADER_BYTES
            && position + h.total_bytes() as u64 <= self.size
            && h.last_offset_delta >= 0;
        if !whole {
            let segment = self.dir.join(file_name(self.base_offset, "log"));
            tracing::error!(segment = %segment.display(), position, "a batch header is damaged; the batch is not served");
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("segment file {} is damaged at byte {position}: not a whole batch header", segment.display()),
            ));
        }
        Ok(Some(h))
    }

    /// Reads the whole batch at `position`.
    pub(crate) fn batch_at(&self, position: u64, header: &BatchHeader) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; header.total_bytes()];
        self.file()?.read_exact_at(&mut buf, position)?;
        Ok(buf)
    }

    /// Position and header of the first batch whose last offset is at least `offset`.
    pub(crate) fn find_batch(&self, offset: i64) -> io::Result<Option<(u64, BatchHeader)>> {
        let mut position = 0u64;
        if offset > self.base_offset {
            let rel = (offset - self.base_offset).min(u32::MAX as i64) as u32;
            if let Some((entry_rel, entry_pos)) = self.offset_index.lookup(rel) {
                match self.header_at(u64::from(entry_pos))? {
                    Some(h) if h.base_offset == self.base_offset + i64::from(entry_rel) => {
                        position = u64::from(entry_pos)
                    }
                    _ => tracing::warn!(
                        segment = self.base_offset,
                        "offset index entry does not point at its batch; scanning the segment"
                    ),
                }
            }
        }
        while let Some(h) = self.checked_header_at(position)? {
            if h.last_offset() >= offset {
                return Ok(Some((position, h)));
            }
            position += h.total_bytes() as u64;
        }
        Ok(None)
    }

    /// Whole batches from `position` on: at most `max_bytes` (but at least one batch when
    /// `at_least_one`), none whose last offset reaches `upper_bound`.
    pub(crate) fn span_from(
        &self,
        position: u64,
        first: BatchHeader,
        max_bytes: u64,
        upper_bound: i64,
        at_least_one: bool,
    ) -> io::Result<Option<Span>> {
        let mut end = position;
        let mut next_offset = first.base_offset;
        let mut header = Some(first);
        // Jump with the offset index: an entry marks a batch start whose base offset bounds every
        // batch before it, so all batches between `position` and the furthest entry within both
        // limits are in the span without reading their headers.
        if let Some((rel, pos)) = self.offset_index.lookup_position(position.saturating_add(max_bytes)) {
            let (pos, base) = (u64::from(pos), self.base_offset + i64::from(rel));
            if pos > position && base <= upper_bound {
                if let Some(h) = self.header_at(pos)? {
                    if h.base_offset == base {
                        end = pos;
                        next_offset = base;
                        header = Some(h);
                    }
                }
            }
        }
        while let Some(h) = header {
            if h.last_offset() >= upper_bound {
                break;
            }
            let total = h.total_bytes() as u64;
            let fits = end - position + total <= max_bytes;
            let first_of_read = at_least_one && end == position;
            if !(fits || first_of_read) {
                break;
            }
            end += total;
            next_offset = h.last_offset() + 1;
            // A damaged header after whole batches ends the span there; the read that starts
            // at it (from `find_batch`) reports the damage.
            header = match self.checked_header_at(end) {
                Ok(next) => next,
                Err(_) => break,
            };
        }
        Ok((end > position).then_some(Span { position, len: end - position, next_offset }))
    }

    /// Cuts the segment so that it ends before the batch holding `offset` (batches are never
    /// split), then rebuilds its indexes from the remaining headers.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let cut = match self.find_batch(offset)? {
            Some((position, _)) => position,
            None => return Ok(()),
        };
        let file = self.file()?;
        file.set_len(cut)?;
        file.sync_data()?;
        self.size = cut;
        self.reindex_from_headers()
    }

    fn reindex_from_headers(&mut self) -> io::Result<()> {
        self.offset_index.file.truncate_entries(0);
        self.time_index.file.truncate_entries(0);
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = self.base_offset;
        self.first_batch_timestamp = None;
        self.bytes_since_index_entry = 0;
        let mut position = 0;
        while let Some(h) = self.header_at(position)? {
            self.track_batch(position, &h);
            position += h.total_bytes() as u64;
        }
        Ok(())
    }

    /// Reopens the indexes with room to append (a sealed segment becoming active again after
    /// truncation removed the segments after it).
    pub(crate) fn unseal(&mut self, config: &LogConfig) -> io::Result<()> {
        self.offset_index.file.resize(config.offset_index_bytes())?;
        self.time_index.file.resize(config.time_index_bytes())
    }

    /// Removes the segment's files. Readers holding its `File` can still finish.
    pub(crate) fn delete(self) -> io::Result<()> {
        let (log, index, time) = Self::paths(&self.dir, self.base_offset);
        drop(self);
        fs::remove_file(&log)?;
        for path in [index, time] {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// The time-index hint for a timestamp search: an offset before which no batch has a
    /// max-timestamp of `timestamp` or more.
    pub(crate) fn time_search_start(&self, timestamp: i64) -> i64 {
        self.time_index.lookup_below(timestamp).map_or(self.base_offset, |(_, rel)| self.base_offset + i64::from(rel))
    }

    /// The `.log` file, opened now if this segment has not opened it yet (opened for writing
    /// too: a sealed segment becomes active again when truncation removes the ones after it).
    pub(crate) fn file(&self) -> io::Result<&Arc<File>> {
        self.file_used.store(true, Ordering::Relaxed);
        if let Some(file) = self.file.get() {
            return Ok(file);
        }
        let (path, _, _) = Self::paths(&self.dir, self.base_offset);
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        // The log's lock serializes callers; were two to race, one descriptor is dropped.
        let _ = self.file.set(Arc::new(file));
        Ok(self.file.get().expect("set above"))
    }

    /// Closes this segment's descriptor for its `.log` file (readers holding the file keep
    /// it open until they finish); the next [`Segment::file`] opens it again. For sealed
    /// segments, so that a partition holds a descriptor for its active segment only.
    pub(crate) fn release_file(&mut self) {
        self.file = OnceLock::new();
    }

    /// Closes the descriptor if nothing used it since the last call (which reset the mark):
    /// called periodically for sealed segments, it closes what readers (a consumer catching
    /// up, compaction, an epoch-cache rebuild) opened once they have moved on. Returns whether
    /// a descriptor was closed.
    pub(crate) fn release_file_if_unused(&mut self) -> bool {
        if std::mem::take(self.file_used.get_mut()) || self.file.get().is_none() {
            return false;
        }
        self.release_file();
        true
    }
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }
    /// Max-timestamp of the first batch, or `None` when empty.
    pub(crate) fn first_batch_timestamp(&self) -> Option<i64> {
        self.first_batch_timestamp
    }

    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
