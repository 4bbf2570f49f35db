//! Errors at the crate boundary.
//!
//! - [`CommandError`]: a command reached the state machine and was rejected by validation. It is
//!   part of the replicated result (every node computes the same one) and maps onto a Kafka error
//!   code for the broker's responses.
//! - [`MetaError`]: what the node API ([`MetaNode`](crate::MetaNode)) returns: a rejection, or a
//!   reason the command could not be committed (no leader, timeout, shutdown, storage failure).
//! - [`StoreError`]: opening the on-disk log store or snapshot failed.
//!
//! Each variant's doc says whether retrying can help and what the operator should do.

use std::io;
use std::path::PathBuf;

use serde::Deserialize;
use serde::Serialize;
use uuid::Uuid;

use crate::view::BrokerId;

/// Kafka protocol error codes used by this crate (numbers from Kafka's `Errors.java`).
pub mod kafka_code {
    /// UNKNOWN_SERVER_ERROR
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    /// UNKNOWN_TOPIC_OR_PARTITION
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// NOT_LEADER_OR_FOLLOWER
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    /// REQUEST_TIMED_OUT
    pub const REQUEST_TIMED_OUT: i16 = 7;
    /// INVALID_TOPIC_EXCEPTION
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    /// TOPIC_ALREADY_EXISTS
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    /// INVALID_PARTITIONS
    pub const INVALID_PARTITIONS: i16 = 37;
    /// INVALID_REPLICATION_FACTOR
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    /// INVALID_CONFIG
    pub const INVALID_CONFIG: i16 = 40;
    /// NOT_CONTROLLER
    pub const NOT_CONTROLLER: i16 = 41;
    /// INVALID_REQUEST
    pub const INVALID_REQUEST: i16 = 42;
    /// FENCED_LEADER_EPOCH
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    /// UNKNOWN_LEADER_EPOCH
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    /// STALE_BROKER_EPOCH
    pub const STALE_BROKER_EPOCH: i16 = 77;
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE
    pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: i16 = 83;
    /// INVALID_UPDATE_VERSION
    pub const INVALID_UPDATE_VERSION: i16 = 95;
    /// UNKNOWN_TOPIC_ID
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    /// BROKER_ID_NOT_REGISTERED
    pub const BROKER_ID_NOT_REGISTERED: i16 = 102;
    /// INELIGIBLE_REPLICA
    pub const INELIGIBLE_REPLICA: i16 = 107;
    /// INVALID_REPLICA_ASSIGNMENT
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    /// NO_REASSIGNMENT_IN_PROGRESS
    pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
    /// RESOURCE_NOT_FOUND
    pub const RESOURCE_NOT_FOUND: i16 = 91;
}

/// A command was rejected by the state machine. Nothing changed; every replica rejected it the
/// same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CommandError {
    /// No topic has this name. Not retriable (unless the topic is being created concurrently).
    #[error("unknown topic {name:?}")]
    UnknownTopic {
        /// The name asked for.
        name: String,
    },
    /// No topic has this id (it was deleted, possibly re-created under a new id). Not
    /// retriable: the caller must refresh its metadata.
    #[error("unknown topic id {topic_id}")]
    UnknownTopicId {
        /// The id asked for.
        topic_id: Uuid,
    },
    /// The topic exists but has no such partition. Not retriable.
    #[error("topic {topic_id} has no partition {partition}")]
    UnknownPartition {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index asked for.
        partition: u32,
    },
    /// A topic with this name (or id) already exists. Not retriable.
    #[error("topic {name:?} already exists")]
    TopicAlreadyExists {
        /// The name (or the id, when the id collided).
        name: String,
    },
    /// The topic name breaks Kafka's naming rules. Not retriable.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName {
        /// The name given.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// Partition count out of range, or not larger than the current count. Not retriable.
    #[error("invalid partition count {requested}: {reason}")]
    InvalidPartitionCount {
        /// Count asked for.
        requested: u32,
        /// Why it is refused.
        reason: String,
    },
    /// Replication factor below 1 or above the number of live brokers. Retriable once more
    /// brokers are registered and unfenced.
    #[error("replication factor {requested} invalid with {live_brokers} live brokers")]
    InvalidReplicationFactor {
        /// Factor asked for.
        requested: u16,
        /// Live (registered, unfenced) brokers at apply time.
        live_brokers: usize,
    },
    /// Unknown config key or out-of-range value. Not retriable.
    #[error("invalid config {key}={value:?}: {reason}")]
    InvalidConfig {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// Malformed request (empty ISR, ISR without its leader, oversized address). Not retriable.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
    /// The broker id has never registered. Not retriable until it registers.
    #[error("broker {broker_id} is not registered")]
    UnknownBroker {
        /// The broker id.
        broker_id: BrokerId,
    },
    /// The broker registered again since the proposer read its epoch. Not retriable: the
    /// proposer must re-read the broker's current epoch.
    #[error("broker {broker_id} epoch {proposed} is stale (current {current})")]
    StaleBrokerEpoch {
        /// The broker id.
        broker_id: BrokerId,
        /// Epoch in the command.
        proposed: i64,
        /// Epoch in the state machine.
        current: i64,
    },
    /// The proposer of a partition change is not the partition's leader. Retriable after a
    /// metadata refresh (leadership moved).
    #[error("broker {proposer} is not the leader of {topic_id}/{partition} (leader {leader:?})")]
    NotPartitionLeader {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: u32,
        /// Current leader, if any.
        leader: Option<BrokerId>,
        /// Who proposed the change.
        proposer: BrokerId,
    },
    /// The proposal carries an older leader epoch than the partition's: a stale leader. Not
    /// retriable by that leader; it has been replaced.
    #[error("leader epoch {proposed} is fenced (current {current})")]
    FencedLeaderEpoch {
        /// Leader epoch in the command.
        proposed: i32,
        /// Current leader epoch.
        current: i32,
    },
    /// The proposal carries a newer leader epoch than the state machine knows. Retriable: the
    /// proposer saw a change this node has not applied yet (cannot happen on a single log).
    #[error("leader epoch {proposed} is unknown (current {current})")]
    UnknownLeaderEpoch {
        /// Leader epoch in the command.
        proposed: i32,
        /// Current leader epoch.
        current: i32,
    },
    /// The partition changed since the proposer read it (partition epoch mismatch). Not
    /// retriable as is: re-read the partition and propose again.
    #[error("partition epoch {proposed} is stale (current {current})")]
    StalePartitionEpoch {
        /// Partition epoch in the command.
        proposed: i32,
        /// Current partition epoch.
        current: i32,
    },
    /// A broker named in a new ISR or as leader is not a replica, or is fenced. Not retriable
    /// as is.
    #[error("broker {broker_id} is not an eligible replica: {reason}")]
    IneligibleReplica {
        /// The broker.
        broker_id: BrokerId,
        /// Why it is not eligible.
        reason: String,
    },
    /// No in-sync, live replica can lead the partition (unclean election is not done).
    /// Retriable once an ISR member comes back.
    #[error("no eligible leader for {topic_id}/{partition}")]
    NoEligibleLeader {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: u32,
    },
    /// The producer id space is used up (after 2^63 ids). Not retriable; operator action.
    #[error("producer ids exhausted")]
    ProducerIdsExhausted,
    /// A reassignment's target replicas are empty, repeat a broker or name an unregistered one,
    /// or a cancel would leave no in-sync replica of the original assignment. Not retriable
    /// with the same request (a cancel is, once an original replica is back in the ISR).
    #[error("invalid replica assignment: {reason}")]
    InvalidReplicaAssignment {
        /// What is wrong.
        reason: String,
    },
    /// A cancel for a partition that is not being reassigned. Not retriable.
    #[error("no reassignment in progress for topic {topic_id} partition {partition}")]
    NoReassignmentInProgress {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: u32,
    },
    /// A security record (a SCRAM credential) that does not exist. Not retriable.
    #[error("{what} not found")]
    ResourceNotFound {
        /// What was looked for.
        what: String,
    },
}

impl CommandError {
    /// The Kafka protocol error code a broker should answer with.
    pub fn kafka_error_code(&self) -> i16 {
        use kafka_code::*;
        match self {
            CommandError::UnknownTopic { .. } | CommandError::UnknownPartition { .. } => UNKNOWN_TOPIC_OR_PARTITION,
            CommandError::UnknownTopicId { .. } => UNKNOWN_TOPIC_ID,
            CommandError::TopicAlreadyExists { .. } => TOPIC_ALREADY_EXISTS,
            CommandError::InvalidTopicName { .. } => INVALID_TOPIC_EXCEPTION,
            CommandError::InvalidPartitionCount { .. } => INVALID_PARTITIONS,
            CommandError::InvalidReplicationFactor { .. } => INVALID_REPLICATION_FACTOR,
            CommandError::InvalidConfig { .. } => INVALID_CONFIG,
            CommandError::InvalidRequest { .. } => INVALID_REQUEST,
            CommandError::UnknownBroker { .. } => BROKER_ID_NOT_REGISTERED,
            CommandError::StaleBrokerEpoch { .. } => STALE_BROKER_EPOCH,
            CommandError::NotPartitionLeader { .. } => NOT_LEADER_OR_FOLLOWER,
            CommandError::FencedLeaderEpoch { .. } => FENCED_LEADER_EPOCH,
            CommandError::UnknownLeaderEpoch { .. } => UNKNOWN_LEADER_EPOCH,
            CommandError::StalePartitionEpoch { .. } => INVALID_UPDATE_VERSION,
            CommandError::IneligibleReplica { .. } => INELIGIBLE_REPLICA,
            CommandError::NoEligibleLeader { .. } => ELIGIBLE_LEADERS_NOT_AVAILABLE,
            CommandError::ProducerIdsExhausted => UNKNOWN_SERVER_ERROR,
            CommandError::InvalidReplicaAssignment { .. } => INVALID_REPLICA_ASSIGNMENT,
            CommandError::NoReassignmentInProgress { .. } => NO_REASSIGNMENT_IN_PROGRESS,
            CommandError::ResourceNotFound { .. } => RESOURCE_NOT_FOUND,
        }
    }
}

/// Why a node API call failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The command was committed and applied, and the state machine rejected it. Retriable only
    /// where the inner error says so.
    #[error("command rejected: {0}")]
    Rejected(#[from] CommandError),
    /// No leader is known (election in progress, or this node is cut off). Retriable with
    /// backoff.
    #[error("no Raft leader known")]
    NoLeader,
    /// This operation must run on the leader and this node is not it. Retriable on the leader.
    #[error("not the Raft leader (leader is {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<u64>,
    },
    /// The operation did not finish in time. Retriable, but the command may have been applied:
    /// commands are designed so that a retry is detected (duplicate name, stale epoch).
    #[error("{operation} timed out after {timeout_ms} ms")]
    Timeout {
        /// What timed out.
        operation: &'static str,
        /// The limit that elapsed.
        timeout_ms: u64,
    },
    /// The encoded command exceeds [`COMMAND_BYTES_MAX`](crate::limits::COMMAND_BYTES_MAX). Not
    /// retriable.
    #[error("command of {bytes} bytes exceeds {bytes_max} bytes")]
    CommandTooLarge {
        /// Encoded size.
        bytes: usize,
        /// The limit.
        bytes_max: usize,
    },
    /// Forwarding to the leader failed after the request was sent (connection broke, leader
    /// stopped). Retriable, but like `Timeout` the command may have been applied.
    #[error("forwarding to leader {leader} failed: {reason}")]
    Forward {
        /// The leader dialed.
        leader: u64,
        /// What went wrong.
        reason: String,
    },
    /// A membership change was refused (e.g. another change in progress, unknown node).
    /// Retriable if another change was in progress; otherwise fix the request.
    #[error("membership change refused: {0}")]
    Membership(String),
    /// The Raft node has stopped (shutdown or fatal storage error). Not retriable: restart the
    /// node; check the log for a storage error first.
    #[error("Raft node stopped: {0}")]
    Stopped(String),
    /// Bad configuration (voter list, addresses). Not retriable: fix the configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// This node is listed in `--voters` and starts with empty metadata storage, but the group
    /// it belonged to still counts it as a voter: its vote and acknowledged log are lost, and
    /// voting again could elect a leader missing committed entries. Not retriable as is: the
    /// operator demotes it, starts it (it rejoins as a learner and rebuilds), and promotes it.
    #[error(
        "node {node_id} has empty metadata storage but the metadata group (asked node {via}) still counts it \
         as a voter, whose vote and log are lost: run `sluice cluster remove-voter {node_id}` against a \
         running broker, start this node again (it rejoins as a non-voter and rebuilds its replicas from \
         the leaders), then run `sluice cluster add-voter {node_id}`"
    )]
    LostVoter {
        /// This node.
        node_id: u64,
        /// The node that reported the group's voters.
        via: u64,
    },
    /// Opening or using local storage failed. Not retriable: the operator must check the disk.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Binding or accepting on the Raft listener failed. Not retriable as is.
    #[error("network: {0}")]
    Io(#[from] io::Error),
}

impl MetaError {
    /// Whether retrying the same call (after backoff) can succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            MetaError::Rejected(error) => matches!(
                error,
                CommandError::InvalidReplicationFactor { .. }
                    | CommandError::NotPartitionLeader { .. }
                    | CommandError::UnknownLeaderEpoch { .. }
                    | CommandError::NoEligibleLeader { .. }
            ),
            MetaError::NoLeader
            | MetaError::NotLeader { .. }
            | MetaError::Timeout { .. }
            | MetaError::Forward { .. } => true,
            MetaError::Membership(_) => true,
            MetaError::CommandTooLarge { .. }
            | MetaError::Stopped(_)
            | MetaError::Config(_)
            | MetaError::LostVoter { .. }
            | MetaError::Store(_)
            | MetaError::Io(_) => false,
        }
    }

    /// The Kafka protocol error code a broker should answer with.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            MetaError::Rejected(error) => error.kafka_error_code(),
            MetaError::NoLeader | MetaError::NotLeader { .. } | MetaError::Forward { .. } => kafka_code::NOT_CONTROLLER,
            MetaError::Timeout { .. } => kafka_code::REQUEST_TIMED_OUT,
            MetaError::CommandTooLarge { .. } => kafka_code::INVALID_REQUEST,
            _ => kafka_code::UNKNOWN_SERVER_ERROR,
        }
    }
}

/// Opening the on-disk Raft state failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O call failed. Not retriable without operator action (permissions, a failing
    /// disk). A full disk stalls the log store's writes instead (see `log_store`).
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file is damaged somewhere other than a torn tail (bad magic, unsupported version, a
    /// corrupt record followed by valid ones, a hole in log indexes). Not retriable: restore the
    /// node's Raft directory from a peer (delete it and let the node rejoin as a learner).
    #[error("corrupt {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An earlier fsync failed, so the page cache can no longer be trusted and the store
    /// refuses all writes. Not retriable: restart the node.
    #[error("log store poisoned by an earlier I/O failure: {0}")]
    Poisoned(String),
}

impl StoreError {
    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> StoreError {
        StoreError::Io { operation, path: path.into(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_errors_map_to_kafka_codes() {
        let topic_id = Uuid::nil();
        let cases = [
            (CommandError::UnknownTopic { name: "t".into() }, 3),
            (CommandError::TopicAlreadyExists { name: "t".into() }, 36),
            (CommandError::InvalidReplicationFactor { requested: 4, live_brokers: 3 }, 38),
            (CommandError::FencedLeaderEpoch { proposed: 1, current: 2 }, 74),
            (CommandError::StalePartitionEpoch { proposed: 1, current: 2 }, 95),
            (CommandError::UnknownTopicId { topic_id }, 100),
            (CommandError::NoEligibleLeader { topic_id, partition: 0 }, 83),
            (CommandError::InvalidReplicaAssignment { reason: "empty".into() }, 39),
            (CommandError::NoReassignmentInProgress { topic_id, partition: 0 }, 85),
        ];
        for (error, code) in cases {
            assert_eq!(error.kafka_error_code(), code, "{error}");
        }
        assert_eq!(MetaError::NoLeader.kafka_error_code(), 41);
        assert!(MetaError::NoLeader.is_retriable());
        assert!(!MetaError::Rejected(CommandError::ProducerIdsExhausted).is_retriable());
    }
}
