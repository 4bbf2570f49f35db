//! The one error type of the crate boundary.
//!
//! Each variant says who can do what about it: a *client* error is the caller's input and
//! maps to a Kafka error code with nothing written; a *storage* error is the machine's and
//! needs an operator.

use std::io;
use std::path::PathBuf;

/// Errors returned by [`crate::Log`].
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A batch failed validation (truncated, bad magic, bad length, bad field). Client error,
    /// not retriable as is; Kafka code CORRUPT_MESSAGE (2) or INVALID_RECORD (87). Nothing was
    /// written.
    #[error("invalid record batch at byte {position}: {reason}")]
    InvalidBatch {
        /// Byte position of the offending batch within the appended buffer.
        position: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The CRC-32C of a batch does not match its contents. Client error (the producer may
    /// retry: the bytes were damaged in flight); Kafka code CORRUPT_MESSAGE (2). Nothing was
    /// written.
    #[error("record batch at byte {position} fails its CRC-32C (stored {stored:#010x}, computed {computed:#010x})")]
    CorruptBatch {
        /// Byte position of the batch within the appended buffer.
        position: usize,
        /// CRC carried by the batch.
        stored: u32,
        /// CRC computed over its bytes.
        computed: u32,
    },
    /// A batch's records break one of Kafka's `LogValidator` rules: they do not decode
    /// (CORRUPT_MESSAGE), or the topic does not accept them (INVALID_RECORD, INVALID_TIMESTAMP);
    /// see [`crate::validate`]. Client error, not retriable as is. Nothing was written.
    #[error("record batch at byte {position} refused: {reason}")]
    RecordsRefused {
        /// Byte position of the batch within the appended buffer.
        position: usize,
        /// Which Kafka error it is.
        kind: crate::validate::Refusal,
        /// What is wrong, in a sentence.
        reason: String,
        /// The offending records, at most [`crate::validate::RECORD_ERRORS_MAX`].
        record_errors: Vec<crate::validate::RecordError>,
    },
    /// A batch is larger than the log's `batch_bytes_max`. Client error, not retriable;
    /// Kafka code MESSAGE_TOO_LARGE (10). Nothing was written.
    #[error("record batch of {size} bytes exceeds the limit of {limit} bytes")]
    BatchTooLarge {
        /// Size of the batch in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The requested offset is below the log start or above the log end. The client should
    /// reset its position (Kafka code OFFSET_OUT_OF_RANGE, 1).
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// First offset the log holds.
        log_start: i64,
        /// Next offset the log will assign.
        log_end: i64,
    },
    /// A replicated append does not continue the log (its base offset is below the log end,
    /// or its offsets go backwards). The follower must truncate first; not retriable as is.
    #[error("replicated batch with base offset {base_offset} does not continue the log at {log_end}")]
    NonContiguous {
        /// Base offset of the batch that was refused.
        base_offset: i64,
        /// Log end offset at the time.
        log_end: i64,
    },
    /// An earlier fsync failed, so the page cache can no longer be trusted to hold what was
    /// written. The log refuses all writes until it is closed and reopened (which re-validates
    /// the data on disk). Operator action: check the disk, then restart the broker.
    #[error("log at {dir} refuses writes after a failed fsync: {cause}")]
    Poisoned {
        /// Directory of the log.
        dir: PathBuf,
        /// The original failure, as text.
        cause: String,
    },
    /// The disk (or the user's quota) is full: ENOSPC or EDQUOT on a write. Nothing was
    /// appended — a partial write was cut off and the log's tail checked — and the log is not
    /// poisoned: it takes appends again as soon as there is space. Retriable; Kafka code
    /// KAFKA_STORAGE_ERROR (56). Operator action: free space (retention, delete topics, grow
    /// the volume).
    #[error("no space left for the log at {dir}: {cause}")]
    OutOfSpace {
        /// Directory of the log.
        dir: PathBuf,
        /// The failed operation and the OS error, as text.
        cause: String,
    },
    /// An I/O operation failed. Usually not retriable: the operator must look at the disk (a
    /// segment write on a full disk is [`LogError::OutOfSpace`] instead).
    /// A failed fsync also poisons the log (see [`LogError::Poisoned`]).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// File or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A configuration value is out of its documented range. Caller error.
    #[error("invalid log configuration: {0}")]
    InvalidConfig(String),
    /// Data on disk is unusable in a way recovery cannot repair on its own (for example a
    /// checkpoint that names an offset the log does not have). Operator action required.
    #[error("log at {dir} is damaged: {reason}")]
    Damaged {
        /// Directory of the log.
        dir: PathBuf,
        /// What was found.
        reason: String,
    },
}

impl LogError {
    /// The Kafka protocol error code that best describes this error to a client.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            LogError::InvalidBatch { .. } => 87, // INVALID_RECORD
            LogError::CorruptBatch { .. } => 2,  // CORRUPT_MESSAGE
            LogError::RecordsRefused { kind, .. } => kind.kafka_error_code(),
            LogError::BatchTooLarge { .. } => 10,   // MESSAGE_TOO_LARGE
            LogError::OffsetOutOfRange { .. } => 1, // OFFSET_OUT_OF_RANGE
            LogError::NonContiguous { .. } => 1,
            LogError::InvalidConfig(_) => 40, // INVALID_CONFIG
            LogError::Poisoned { .. }
            | LogError::OutOfSpace { .. }
            | LogError::Io { .. }
            | LogError::Damaged { .. } => 56, // KAFKA_STORAGE_ERROR
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        LogError::Io { path: path.into(), source }
    }
}

/// Whether `error` means the disk or the quota is full (ENOSPC, EDQUOT): a refusal the log
/// recovers from once space returns, unlike a failed fsync.
pub fn is_out_of_space(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

/// Result alias for this crate.
pub type Result<T, E = LogError> = std::result::Result<T, E>;
