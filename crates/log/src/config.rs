//! Per-log configuration and the crate's named limits.
//!
//! Every limit carries its unit last. Defaults follow Kafka's topic-level defaults so that a
//! Kafka operator finds what they expect; the Kafka config name is given in each field's doc.

use crate::error::{LogError, Result};

/// Size of a RecordBatch v2 header in bytes: everything before the first record.
pub const BATCH_HEADER_BYTES: usize = 61;

/// Hard upper bound on [`LogConfig::batch_bytes_max`], in bytes. A batch is held in memory
/// whole while it is validated and (for compaction) decompressed, so this bounds the memory one
/// append can pin. Kafka allows up to 2 GiB; nobody should want a single batch above this.
pub const BATCH_BYTES_MAX_LIMIT: usize = 256 * 1024 * 1024;

/// Hard upper bound on [`LogConfig::segment_bytes`], in bytes. Offset-index entries store the
/// file position as a `u32`, and Kafka caps `segment.bytes` at `i32::MAX`; a segment may
/// exceed `segment_bytes` by at most one batch, which must still fit a `u32` position.
pub const SEGMENT_BYTES_LIMIT: u64 = i32::MAX as u64;

/// Width of one offset-index entry in bytes: relative offset (u32) + file position (u32).
pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;

/// Width of one time-index entry in bytes: timestamp (i64) + relative offset (u32).
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

/// Hard upper bound on [`LogConfig::index_bytes_max`], in bytes: an index is memory-mapped
/// whole, so this bounds the address space per segment.
pub const INDEX_BYTES_LIMIT: usize = 512 * 1024 * 1024;

/// Upper bound on the bytes a compressed batch may expand to when the cleaner decompresses it,
/// in bytes. A producer could store a decompression bomb; the cleaner keeps such a batch whole
/// instead of expanding it without bound.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Size of the read buffer used when recovery scans a segment, in bytes.
pub const RECOVERY_READ_BUFFER_BYTES: usize = 1024 * 1024;

/// Most bytes one produce's batches for one partition may take after the leader re-encodes
/// them for the topic's `compression.type`, in bytes. Each batch is at most `batch_bytes_max`
/// after re-encoding anyway; this bounds a request of many small batches that each expand (a
/// gzip batch of zeros stored `uncompressed`), which would otherwise hold their whole expanded
/// size in memory at once. Producers send one batch per partition per request (Kafka requires
/// it), so only a request built to amplify memory meets it; it is refused with
/// MESSAGE_TOO_LARGE, as Kafka refuses a batch that recompression made too large.
pub const RECOMPRESSED_RECORDS_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Rolled segments whose background sync (flush policy `Os`) may be in flight at once. A roll
/// beyond this waits for the oldest, so a burst of tiny segments cannot pile up threads and
/// unsynced data.
pub const ROLL_SYNCS_IN_FLIGHT_MAX: usize = 4;

const _: () = assert!(BATCH_BYTES_MAX_LIMIT as u64 <= SEGMENT_BYTES_LIMIT);
const _: () = assert!(INDEX_BYTES_LIMIT / OFFSET_INDEX_ENTRY_BYTES <= u32::MAX as usize);
const _: () = assert!(BATCH_HEADER_BYTES < RECOVERY_READ_BUFFER_BYTES);
// One batch that decompresses to the limit, stored uncompressed, fits.
const _: () = assert!(DECOMPRESSED_BATCH_BYTES_MAX + BATCH_HEADER_BYTES <= RECOMPRESSED_RECORDS_BYTES_MAX);

/// When appended data is forced to stable storage. Each mode's promise is written in
/// `docs/design/log-format.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Every append is synced before it is acknowledged (Kafka `flush.messages=1`): `append`
    /// returns, and the `SyncWait` of `append_unsynced` ends, only once an `fdatasync` of the
    /// segment covers it. One sync covers every append written while the previous one ran
    /// (group commit, `crate::commit`). An acknowledged batch survives power loss of this
    /// machine.
    EveryBatch,
    /// `fdatasync` when the oldest unflushed append is at least this many milliseconds old,
    /// checked on every append and on [`crate::Log::flush_if_due`] (Kafka `flush.ms`). At most
    /// that window of acknowledged data (plus the time until the next call) is lost on power
    /// loss.
    IntervalMs(u64),
    /// Never `fdatasync` on the append path; the OS writes back dirty pages on its own schedule
    /// and segments are synced when they roll and on close (Kafka's default). Durability of
    /// acknowledged data across power loss comes from replication.
    Os,
}

/// What retention does with old data (Kafka `cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// Delete whole segments by age and size.
    Delete,
    /// Keep the newest record per key (log compaction).
    Compact,
    /// Both: compact, and delete by age and size.
    CompactDelete,
}

impl CleanupPolicy {
    /// Whether segments are deleted by retention.ms / retention.bytes.
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }
    /// Whether the cleaner compacts this log.
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }
}

/// Which timestamp records carry (Kafka `message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageTimestampType {
    /// The producer's timestamp is kept, within `message.timestamp.before.max.ms` /
    /// `message.timestamp.after.max.ms` of the broker's clock (`CreateTime`, the default).
    CreateTime,
    /// The leader stamps its clock on every batch it appends (`LogAppendTime`).
    LogAppendTime,
}

/// The codec the leader stores produced batches with (Kafka `compression.type`, with
/// `compression.{gzip,lz4,zstd}.level`). Every variant but `Producer` re-encodes a batch whose
/// codec differs; a batch already in the topic's codec is kept as produced, whatever level it
/// was compressed at (as Kafka does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// Keep each batch as the producer compressed it (`producer`, the default).
    Producer,
    /// Store records uncompressed (`uncompressed`).
    Uncompressed,
    /// gzip at `level` (`compression.gzip.level`: 1 to 9, or -1 for the codec's default, 6).
    Gzip {
        /// The deflate level.
        level: i32,
    },
    /// snappy, in the xerial framing Kafka's clients write (no level).
    Snappy,
    /// lz4 frames at `level` (`compression.lz4.level`: 1 to 17, default 9).
    Lz4 {
        /// The lz4 frame level (above 12 lz4 uses its highest).
        level: u32,
    },
    /// zstd at `level` (`compression.zstd.level`: -131072 to 22, default 3).
    Zstd {
        /// The zstd level.
        level: i32,
    },
}

impl CompressionType {
    /// The codec batches are stored in, or `None` for `Producer` (whatever was produced).
    pub fn codec(self) -> Option<crate::batch::Codec> {
        use crate::batch::Codec;
        match self {
            CompressionType::Producer => None,
            CompressionType::Uncompressed => Some(Codec::None),
            CompressionType::Gzip { .. } => Some(Codec::Gzip),
            CompressionType::Snappy => Some(Codec::Snappy),
            CompressionType::Lz4 { .. } => Some(Codec::Lz4),
            CompressionType::Zstd { .. } => Some(Codec::Zstd),
        }
    }
}

/// Configuration of one partition log.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Roll the active segment when appending would make it larger than this, in bytes
    /// (`segment.bytes`, default 1 GiB).
    pub segment_bytes: u64,
    /// Roll the active segment when its first batch is older than this, in milliseconds
    /// (`segment.ms`, default 7 days).
    pub segment_ms: u64,
    /// Largest random amount subtracted from the segment age limit (`segment_ms`, see
    /// [`LogConfig::segment_ms_max`]) for each new segment, in milliseconds
    /// (`segment.jitter.ms`, default 0): each segment draws its own jitter in
    /// `[0, min(segment_jitter_ms, age limit))` when it is created or opened, so that segments
    /// of many partitions created together do not all roll at the same moment.
    pub segment_jitter_ms: u64,
    /// Bytes appended between two offset-index entries (`index.interval.bytes`, default 4096).
    pub index_interval_bytes: u32,
    /// Preallocated size of each index file, in bytes (`segment.index.bytes`, default 10 MiB).
    /// A segment rolls when either index is full.
    pub index_bytes_max: usize,
    /// Largest accepted batch, in bytes including its 12-byte offset and length prefix
    /// (`max.message.bytes`, default 1 MiB + 12).
    pub batch_bytes_max: usize,
    /// Delete segments whose newest timestamp is older than this, in milliseconds; `None`
    /// keeps data forever (`retention.ms`, default 7 days).
    pub retention_ms: Option<u64>,
    /// Delete old segments while the log is larger than this, in bytes; `None` is unlimited
    /// (`retention.bytes`, default unlimited).
    pub retention_bytes: Option<u64>,
    /// Delete or compact (`cleanup.policy`, default delete).
    pub cleanup_policy: CleanupPolicy,
    /// How long a tombstone survives compaction, in milliseconds after its batch's newest
    /// timestamp (`delete.retention.ms`, default 1 day).
    pub delete_retention_ms: u64,
    /// A record is not compacted until its segment's newest timestamp is at least this old, in
    /// milliseconds (`min.compaction.lag.ms`, default 0).
    pub min_compaction_lag_ms: u64,
    /// A compacted log whose oldest uncompacted record is older than this is compacted even
    /// below `min_cleanable_dirty_ratio`, and its active segment rolls at this age, in
    /// milliseconds (`max.compaction.lag.ms`, default `i64::MAX`: never).
    pub max_compaction_lag_ms: u64,
    /// Compact only when the bytes not yet compacted are more than this fraction of the
    /// cleanable log (`min.cleanable.dirty.ratio`, default 0.5).
    pub min_cleanable_dirty_ratio: f64,
    /// Memory the cleaner may use for its key → offset map, in bytes
    /// (`log.cleaner.dedupe.buffer.size`, default 128 MiB). A pass cleans as many whole
    /// segments as fit.
    pub cleaner_dedupe_bytes_max: usize,
    /// When data is synced to disk.
    pub flush: FlushPolicy,
    /// The codec a leader stores produced batches with (`compression.type`, default
    /// `producer`).
    pub compression: CompressionType,
    /// Whose clock timestamps records (`message.timestamp.type`, default `CreateTime`).
    pub message_timestamp_type: MessageTimestampType,
    /// With `CreateTime`, refuse a record whose timestamp is more than this many milliseconds
    /// before the leader's clock (`message.timestamp.before.max.ms`, falling back to the
    /// deprecated `message.timestamp.difference.max.ms`; default `i64::MAX`, no limit).
    pub message_timestamp_before_max_ms: i64,
    /// With `CreateTime`, refuse a record whose timestamp is more than this many milliseconds
    /// after the leader's clock (`message.timestamp.after.max.ms`, falling back to the
    /// deprecated `message.timestamp.difference.max.ms`; default `i64::MAX`, no limit, as in
    /// Kafka 3.x).
    pub message_timestamp_after_max_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_jitter_ms: 0,
            index_interval_bytes: 4096,
            index_bytes_max: 10 * 1024 * 1024,
            batch_bytes_max: 1024 * 1024 + 12,
            retention_ms: Some(7 * 24 * 60 * 60 * 1000),
            retention_bytes: None,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX as u64,
            min_cleanable_dirty_ratio: 0.5,
            cleaner_dedupe_bytes_max: 128 * 1024 * 1024,
            flush: FlushPolicy::Os,
            compression: CompressionType::Producer,
            message_timestamp_type: MessageTimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
        }
    }
}

impl LogConfig {
    /// Checks every value against its documented range.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(LogError::InvalidConfig(what));
        if self.segment_bytes < BATCH_HEADER_BYTES as u64 || self.segment_bytes > SEGMENT_BYTES_LIMIT {
            return bad(format!(
                "segment_bytes {} outside [{BATCH_HEADER_BYTES}, {SEGMENT_BYTES_LIMIT}]",
                self.segment_bytes
            ));
        }
        if self.segment_ms == 0 {
            return bad("segment_ms must be positive".into());
        }
        if self.index_interval_bytes == 0 {
            return bad("index_interval_bytes must be positive".into());
        }
        let entry_lcm = OFFSET_INDEX_ENTRY_BYTES * TIME_INDEX_ENTRY_BYTES;
        if self.index_bytes_max < entry_lcm || self.index_bytes_max > INDEX_BYTES_LIMIT {
            return bad(format!("index_bytes_max {} outside [{entry_lcm}, {INDEX_BYTES_LIMIT}]", self.index_bytes_max));
        }
        if self.batch_bytes_max < BATCH_HEADER_BYTES || self.batch_bytes_max > BATCH_BYTES_MAX_LIMIT {
            return bad(format!(
                "batch_bytes_max {} outside [{BATCH_HEADER_BYTES}, {BATCH_BYTES_MAX_LIMIT}]",
                self.batch_bytes_max
            ));
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return bad(format!("min_cleanable_dirty_ratio {} outside [0, 1]", self.min_cleanable_dirty_ratio));
        }
        if self.max_compaction_lag_ms == 0 {
            return bad("max_compaction_lag_ms must be positive".into());
        }
        if self.cleaner_dedupe_bytes_max == 0 {
            return bad("cleaner_dedupe_bytes_max must be positive".into());
        }
        if self.message_timestamp_before_max_ms < 0 || self.message_timestamp_after_max_ms < 0 {
            return bad("message timestamp bounds must not be negative".into());
        }
        if let FlushPolicy::IntervalMs(0) = self.flush {
            return bad("flush interval must be positive (use EveryBatch for 0)".into());
        }
        Ok(())
    }

    /// Index file size actually used: `index_bytes_max` rounded down to whole entries.
    pub(crate) fn offset_index_bytes(&self) -> usize {
        self.index_bytes_max / OFFSET_INDEX_ENTRY_BYTES * OFFSET_INDEX_ENTRY_BYTES
    }

    pub(crate) fn time_index_bytes(&self) -> usize {
        self.index_bytes_max / TIME_INDEX_ENTRY_BYTES * TIME_INDEX_ENTRY_BYTES
    }

    /// The age at which the active segment rolls, in milliseconds: `segment_ms`, or
    /// `max_compaction_lag_ms` when that is shorter on a compacted log (as Kafka does, so the
    /// active segment's records become compactable within the lag).
    pub fn segment_ms_max(&self) -> u64 {
        if self.cleanup_policy.compacts() {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }

    /// A roll jitter for a new segment from the random `draw`: `draw` modulo
    /// `min(segment_jitter_ms, segment_ms_max)`, or 0 without jitter (Kafka's
    /// `randomSegmentJitter`).
    pub(crate) fn roll_jitter_ms(&self, draw: u64) -> u64 {
        match self.segment_jitter_ms.min(self.segment_ms_max()) {
            0 => 0,
            range => draw % range,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        LogConfig::default().validate().unwrap();
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let mut c = LogConfig { segment_bytes: 10, ..LogConfig::default() };
        assert!(c.validate().is_err());
        c.segment_bytes = SEGMENT_BYTES_LIMIT + 1;
        assert!(c.validate().is_err());
        let c = LogConfig { batch_bytes_max: BATCH_BYTES_MAX_LIMIT + 1, ..LogConfig::default() };
        assert!(c.validate().is_err());
        let c = LogConfig { flush: FlushPolicy::IntervalMs(0), ..LogConfig::default() };
        assert!(c.validate().is_err());
        let c = LogConfig { min_cleanable_dirty_ratio: 1.5, ..LogConfig::default() };
        assert!(c.validate().is_err());
        let c = LogConfig { max_compaction_lag_ms: 0, ..LogConfig::default() };
        assert!(c.validate().is_err());
    }

    // Goal: Kafka's segment jitter: none by default; otherwise the draw folded into
    // [0, min(segment.jitter.ms, segment.ms)).
    #[test]
    fn roll_jitter_is_below_the_smaller_of_jitter_and_segment_age() {
        let c = LogConfig { segment_ms: 1_000, ..LogConfig::default() };
        assert_eq!(c.roll_jitter_ms(u64::MAX), 0);
        let c = LogConfig { segment_ms: 1_000, segment_jitter_ms: 300, ..LogConfig::default() };
        assert_eq!(c.roll_jitter_ms(1_234), 34);
        assert!((0..10_000u64).map(|draw| c.roll_jitter_ms(draw.wrapping_mul(0x9e37_79b9_7f4a_7c15))).all(|j| j < 300));
        let c = LogConfig { segment_ms: 100, segment_jitter_ms: 300, ..LogConfig::default() };
        assert_eq!(c.roll_jitter_ms(250), 50);
    }

    // Goal: a compacted log's active segment rolls by max.compaction.lag.ms when that is
    // shorter than segment.ms (Kafka's maxSegmentMs); a deleting log ignores the lag.
    #[test]
    fn compacted_logs_roll_by_the_maximum_compaction_lag() {
        let c = LogConfig { segment_ms: 60_000, max_compaction_lag_ms: 5_000, ..LogConfig::default() };
        assert_eq!(c.segment_ms_max(), 60_000);
        let c = LogConfig { cleanup_policy: CleanupPolicy::Compact, ..c };
        assert_eq!(c.segment_ms_max(), 5_000);
        let c = LogConfig { max_compaction_lag_ms: 600_000, ..c };
        assert_eq!(c.segment_ms_max(), 60_000);
    }
}
