//! Sluice's client: a Kafka-protocol producer, consumer and admin over tokio.
//!
//! It speaks only the Kafka wire protocol (through `sluice-proto`), so it works against Sluice,
//! Apache Kafka and Redpanda alike. Follow a request from the application to the socket:
//!
//! 1. [`producer`] / [`consumer`] / [`admin`] — what the application calls;
//! 2. [`cluster`] — the shared view of the cluster: bootstrap, the metadata cache (which
//!    broker leads which partition), one connection per broker, and the retry loop (backoff
//!    with jitter, [`backoff`]) with metadata refreshes on leadership errors;
//! 3. [`connection`] — one TCP connection: ApiVersions negotiation, pipelined requests matched
//!    by correlation id, a timeout on every request, closed for good on any failure (the
//!    cluster dials a new one: reconnect);
//! 4. `sluice-proto` — frames, request/response codecs behind its length guard, record batches.
//!
//! [`group`] is the consumer-group protocol under [`Consumer::subscribe`] and the commits (the
//! coordinator, JoinGroup/SyncGroup with the range and roundrobin assignors, heartbeats,
//! committed offsets); [`admin`] lists, describes and deletes groups, reports their lag and
//! resets their offsets. [`retry`] builds the retry-then-dead-letter pattern on top of the
//! consumer and producer, committing only what was handled or dead-lettered.
//! [`error::ClientError`] is the one error type; each variant says whether it is retriable.

pub mod admin;
pub mod backoff;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod group;
pub mod producer;
pub mod retry;
pub mod sasl;
pub mod tls;

pub use admin::{Admin, QuorumInfo, QuorumMember};
pub use cluster::Cluster;
pub use config::ClientConfig;
pub use consumer::{
    Consumer, ConsumerConfig, ConsumerRecord, GroupGeneration, ListenerFuture, OffsetReset, PendingCommit,
    RebalanceListener, SeekTo, TopicPartition,
};
pub use error::{ClientError, Result};
pub use group::Assignor;
pub use producer::{
    Acks, Delivery, Producer, ProducerConfig, ProducerRecord, RecordMetadata, BATCH_SIZE_MAX_BYTES_DEFAULT,
};
pub use sasl::{SaslCredentials, SaslMechanism};
pub use sluice_proto::records::Compression;
pub use tls::TlsSettings;
