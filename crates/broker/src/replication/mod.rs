//! Replication between brokers, on Kafka's ISR model: followers pull, the leader decides.
//!
//! - [`fetcher`]: the follower side. One task per leader broker copies every partition this
//!   broker follows from there with one Fetch request (replica id set, Kafka's
//!   `ReplicaFetcherThread`), appends the leader's batches unchanged, truncates where the
//!   leader reports a diverging epoch, and learns the high watermark.
//! - [`isr`]: the leader side's proposals. Partitions led here propose ISR changes (followers
//!   lagging past `replica.lag.time.max.ms` leave, caught-up ones join) to the metadata group
//!   as `ChangeIsr`, fenced by leader and partition epochs (Kafka's AlterPartition).
//! - [`repair`]: a replica whose own log holds a damaged batch hands its leadership to another
//!   ISR member, cuts the batch off and refetches it (rules in [`crate::partition::damage`]).
//! - [`throttle`]: the replication throttle (Kafka's `*.replication.throttled.rate` and
//!   `*.replication.throttled.replicas`), shared by the fetchers and the Fetch handler.
//! - [`connection`]: a plain Kafka-protocol request/response connection to another broker.
//!
//! The leader's side of a fetch (progress, high watermark, divergence) is in
//! `Partition::read_for_follower`, reached through the Fetch handler like any client request;
//! the rules are the pure functions of [`crate::partition::replica`]. Leadership itself (who
//! leads, the epochs, the ISR) comes only from the metadata view: this module never decides
//! it, it proposes.

pub mod connection;
pub mod fetcher;
pub mod isr;
pub mod repair;
pub mod throttle;

pub use fetcher::ReplicaFetchers;

/// Replication settings (broker flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// Kafka's `replica.lag.time.max.ms`: a follower not caught up for this long, in
    /// milliseconds, leaves the ISR.
    pub replica_lag_time_ms: i64,
    /// Kafka's `replica.fetch.wait.max.ms`: how long a follower's fetch waits at the leader for
    /// new data, in milliseconds. Must stay well below `replica_lag_time_ms`.
    pub fetch_wait_ms: i32,
    /// Kafka's `replica.fetch.backoff.ms`: pause after a failed fetch, in milliseconds.
    pub fetch_backoff_ms: u64,
    /// How this broker dials the others' inter-broker listener: `None` in plain TCP, else in
    /// TLS with this certificate (an SSL `--inter-broker-listener-name`).
    pub tls: Option<crate::security::tls::TlsSettings>,
}

/// Kafka's `replica.fetch.wait.max.ms` default, in milliseconds.
pub const REPLICA_FETCH_WAIT_MS_DEFAULT: i32 = 500;

/// `replica.fetch.backoff.ms` here, in milliseconds. Kafka's is 1 s; a failover should not
/// wait that long for followers to find the new leader.
pub const REPLICA_FETCH_BACKOFF_MS_DEFAULT: u64 = 100;

/// Kafka's `replica.fetch.max.bytes`: bytes one partition contributes to a follower's fetch
/// (at least one batch is always sent).
pub const REPLICA_FETCH_PARTITION_BYTES_MAX: i32 = 1024 * 1024;

/// Kafka's `replica.fetch.response.max.bytes`: bytes of records in one follower fetch response.
pub const REPLICA_FETCH_RESPONSE_BYTES_MAX: i32 = 10 * 1024 * 1024;

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            replica_lag_time_ms: crate::partition::replica::REPLICA_LAG_TIME_MS_DEFAULT,
            fetch_wait_ms: REPLICA_FETCH_WAIT_MS_DEFAULT,
            fetch_backoff_ms: REPLICA_FETCH_BACKOFF_MS_DEFAULT,
            tls: None,
        }
    }
}

const _: () =
    assert!((REPLICA_FETCH_WAIT_MS_DEFAULT as i64) * 10 <= crate::partition::replica::REPLICA_LAG_TIME_MS_DEFAULT);
const _: () = assert!(REPLICA_FETCH_PARTITION_BYTES_MAX <= REPLICA_FETCH_RESPONSE_BYTES_MAX);
