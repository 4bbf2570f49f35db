//! Errors at the broker's boundaries: [`BrokerError`] stops the broker, [`PartitionError`]
//! fails one partition operation and becomes a Kafka error code.

use std::net::SocketAddr;

/// Errors that stop the broker (as opposed to [`crate::connection::ConnectionError`], which end
/// one connection).
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listen address could not be bound (in use, no permission, no such interface).
    /// Not retriable as is: the operator must free the port or pick another address.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address from the configuration.
        address: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },

    /// The configuration breaks a relation between limits (see [`crate::config`]).
    /// Not retriable: fix the configuration.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// Which relation is broken.
        reason: String,
    },

    /// The metadata node could not start or the broker could not register with it (bad voter
    /// list, damaged Raft directory, no quorum within the registration timeout). See the inner
    /// error for whether a restart can help.
    #[error("metadata: {0}")]
    Meta(sluice_meta::MetaError),

    /// The registration was answered with something other than a registration.
    #[error("registration: {0}")]
    Registration(String),

    /// The partition directories could not be read or cleaned at start. Operator action.
    #[error("partitions: {0}")]
    Partition(PartitionError),

    /// Another process (or another node in this one) holds the data directory's lock. Not
    /// retriable while it runs: stop it, or give this broker its own `--data-dir`.
    #[error("{}", crate::data_dir::locked_message(data_dir, *holder))]
    DataDirLocked {
        /// The data directory.
        data_dir: std::path::PathBuf,
        /// Who holds it, when its lock file names it.
        holder: Option<crate::data_dir::LockHolder>,
    },

    /// The data directory or its lock file could not be created or opened (permissions, a
    /// read-only or missing mount). Operator action.
    #[error("data directory: cannot use {path}: {source}")]
    DataDir {
        /// The directory or file.
        path: std::path::PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// Why a partition operation failed; each maps onto the Kafka error code the client gets.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// This broker does not lead the partition (any more), or it is closing. Retriable after a
    /// metadata refresh (NOT_LEADER_OR_FOLLOWER).
    #[error("not the leader of this partition")]
    NotLeader,
    /// The client's leader epoch is older than ours (FENCED_LEADER_EPOCH): refresh metadata.
    #[error("fenced leader epoch")]
    FencedLeaderEpoch,
    /// The client's leader epoch is newer than ours (UNKNOWN_LEADER_EPOCH): we lag the
    /// metadata; retriable.
    #[error("unknown leader epoch")]
    UnknownLeaderEpoch,
    /// acks=all with fewer in-sync replicas than `min.insync.replicas`. Retriable.
    #[error("fewer in-sync replicas than min.insync.replicas")]
    NotEnoughReplicas,
    /// A sequence gap for an idempotent producer. Not retriable as is: the producer must
    /// reset (librdkafka and the Java client bump the epoch).
    #[error("out of order sequence: expected {expected}, received {received}")]
    OutOfOrderSequence {
        /// The sequence that would have been accepted.
        expected: i32,
        /// The batch's first sequence.
        received: i32,
    },
    /// An idempotent producer with an older epoch than the partition knows (a zombie).
    #[error("producer epoch {received} is older than {current}")]
    InvalidProducerEpoch {
        /// The partition's epoch for the producer.
        current: i16,
        /// The batch's epoch.
        received: i16,
    },
    /// The log refused the operation (bad batch, offset out of range, storage failure).
    #[error(transparent)]
    Log(#[from] sluice_log::LogError),
    /// Reading or writing a partition's own files (not the log's) failed. Operator action.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A batch read back from this replica's own segment files fails its CRC-32C (or does not
    /// frame a whole batch): the disk damaged it. Never served; the replica hands the
    /// partition over and repairs itself (`crate::partition::damage`). Retriable by the client
    /// at the next leader (KAFKA_STORAGE_ERROR).
    #[error(
        "the stored batch at offset {claimed_offset} (byte {position} of a {bytes}-byte read) fails \
         its CRC-32C: the segment file is damaged, the batch is not served"
    )]
    DamagedBatch {
        /// Byte position of the damaged batch in the read.
        position: usize,
        /// Bytes read.
        bytes: u64,
        /// The base offset its (possibly damaged) header names; -1 when unreadable.
        claimed_offset: i64,
        /// The offset after the last intact batch before it in the read, if any.
        intact_end: Option<i64>,
    },
    /// A follower's fetch waited at the leader while the partition's assignment changed (a
    /// new partition epoch): its offset says nothing about the follower under the new one.
    /// Retriable at once (NOT_LEADER_OR_FOLLOWER; the follower fetches again).
    #[error("the partition's assignment changed while the fetch waited")]
    AssignmentChanged,
    /// ListOffsets on a new leader whose high watermark has not yet reached the offset its
    /// leadership began at (its followers have not fetched from it yet). Retriable
    /// (OFFSET_NOT_AVAILABLE), as Kafka answers.
    #[error("high watermark {high_watermark} below the leader epoch's start offset {epoch_start}")]
    OffsetNotAvailable {
        /// This leader's high watermark.
        high_watermark: i64,
        /// The log end offset when this broker took the leadership.
        epoch_start: i64,
    },
    /// A blocking task of the partition panicked or was cancelled (a bug).
    #[error("partition task failed: {0}")]
    Task(String),
}

impl PartitionError {
    /// The Kafka protocol error code for a client.
    pub fn kafka_error_code(&self) -> i16 {
        use crate::kafka_code::*;
        match self {
            PartitionError::NotLeader | PartitionError::AssignmentChanged => NOT_LEADER_OR_FOLLOWER,
            PartitionError::FencedLeaderEpoch => FENCED_LEADER_EPOCH,
            PartitionError::UnknownLeaderEpoch => UNKNOWN_LEADER_EPOCH,
            PartitionError::NotEnoughReplicas => NOT_ENOUGH_REPLICAS,
            PartitionError::OutOfOrderSequence { .. } => OUT_OF_ORDER_SEQUENCE_NUMBER,
            PartitionError::InvalidProducerEpoch { .. } => INVALID_PRODUCER_EPOCH,
            // The log says INVALID_RECORD (87) for framing errors; Kafka clients treat a
            // malformed batch as CORRUPT_MESSAGE, which the issue asks for too.
            PartitionError::Log(sluice_log::LogError::InvalidBatch { .. }) => CORRUPT_MESSAGE,
            PartitionError::Log(error) => error.kafka_error_code(),
            PartitionError::Io { .. } | PartitionError::DamagedBatch { .. } => KAFKA_STORAGE_ERROR,
            PartitionError::OffsetNotAvailable { .. } => OFFSET_NOT_AVAILABLE,
            PartitionError::Task(_) => UNKNOWN_SERVER_ERROR,
        }
    }
}
