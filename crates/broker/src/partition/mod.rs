//! The partition layer: the replicas this broker hosts, each a `sluice-log` log plus the
//! replication state the metadata gives it (leader, leader epoch, replicas, ISR) and the state
//! the leader keeps itself (high watermark, idempotent producers).
//!
//! - [`partition`]: one replica, its lock and its blocking operations.
//! - [`manager`]: the set of replicas, reconciled with the metadata view.
//! - [`replica`]: pure replication rules: high watermark, ISR, follower progress, divergence
//!   and truncation points.
//! - [`damage`]: pure rules for a batch damaged in this replica's own log: hand the
//!   partition over, cut the log below the batch, refetch (issue 12).
//! - [`producer_state`]: pure idempotent-producer sequence checks.
//! - [`open_retry`]: partitions that failed to open, retried with backoff.
//! - [`log_config`]: topic config → log config.

pub mod damage;
pub mod log_config;
pub mod manager;
pub mod open_retry;
#[allow(clippy::module_inception)]
pub mod partition;
pub mod producer_state;
pub mod replica;

pub use manager::{
    blocking, partitions_within, raise_open_file_limit, BrokerTopicDefaults, IsrChangeCounters, LogSyncTimes,
    PartitionManager, FILE_DESCRIPTORS_PER_PARTITION,
};
pub use partition::{
    Appended, FetchPosition, FollowerRead, IsrProposal, Leadership, Partition, ReadOutcome, Truncation,
};
