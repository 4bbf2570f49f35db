//! The Sluice broker's data plane, following a request from the socket to the segment file.
//!
//! 1. [`server`] — the Kafka listener; one task per connection, a bounded number of them.
//! 2. [`connection`] — reads frames (bounded buffer, bounded in-flight requests), answers them
//!    in request order (appending the next produce requests while earlier ones wait for their
//!    syncs and followers), closes the connection on protocol errors.
//! 3. [`dispatch`] — checks the api and version against the supported table
//!    ([`api_versions`]), decodes the request with `sluice-proto`, calls the handler.
//! 4. [`handlers`] — one module per api family: produce, fetch (long poll), list offsets,
//!    producer ids, metadata (auto topic creation), topic admin, configs, groups and offsets.
//!    They convert wire types to plain values and call the metadata node, the partitions or
//!    the group coordinator.
//! 5. [`partition`] — the replicas this broker hosts: a `sluice-log` log each, leadership from
//!    the metadata view, idempotent producer state, the high watermark; pure decision functions
//!    for replication; every blocking step on tokio's blocking pool.
//!
//! Invariants of the data plane:
//! - **The runtime never waits on the disk.** Every `sluice_log::Log` call (append with its
//!   fsync, read, open and recovery, retention, compaction, close) and every wait for a
//!   partition's lock runs on tokio's blocking pool (`partition::blocking`).
//! - **One lock per partition covers the producer-sequence check, the append and the high
//!   watermark update**, so a duplicate can never be appended twice.
//! - **A refused produce appends nothing**: leadership, acks, producer sequence and (for
//!   idempotent batches) framing and CRC are checked before the log, which validates every batch
//!   before writing any.
//! - **Consumers never see data above the high watermark**, and batches go out exactly as stored
//!   (`pread` of file regions into the response; never decoded or re-encoded).
//! - **Data is deleted only on the metadata's word**: a partition directory goes when a view
//!   applied after this broker's registration no longer assigns it here, or when it holds
//!   another topic id than the topic of that name (`partition.metadata`).
//! - **Every wait is bounded and woken, not polled**: fetch long polls and acks=all wait on the
//!   partition's high-watermark `watch` channel with a deadline.
//!
//! - **No module reaches up into the handlers**: the coordinator and the replica fetcher use
//!   the partition layer (reading regions, waiting for the high watermark), never `handlers`.
//!
//! Beside the data path, [`coordinator`] is the consumer-group coordinator: the
//! `__consumer_offsets` partitions this broker leads, each replayed into `sluice-group` state
//! machines and written back as Kafka's offset and group records
//! (`docs/design/consumer-offsets.md`).
//!
//! Around them: [`node`] wires a broker process (listeners, metadata node, registration,
//! reconciliation and maintenance tasks, shutdown order), [`broker`] is the state handlers
//! share, [`admin_http`] serves `/health` and `/ready`, [`cli`] holds the flags and
//! [`config_file`] the `--config` file and `--print-config` behind them, [`probe`] the
//! `sluice-broker probe` health check (a client of `admin_http`, no broker started). [`config`]
//! holds the network limits, each with its reason; `main` stays thin and calls [`run`] with a
//! shutdown future, as the tests do.

pub mod admin_http;
pub mod api_versions;
pub mod broker;
pub mod cli;
pub mod cluster_health;
pub mod config;
pub mod config_file;
pub mod connection;
pub mod console;
pub mod coordinator;
pub mod data_dir;
pub mod dispatch;
pub mod error;
pub mod handlers;
pub mod kafka_code;
pub mod metrics;
pub mod node;
pub mod partition;
pub mod probe;
pub mod quota;
pub mod replication;
pub mod request_scope;
pub mod security;
pub mod server;
pub mod voters;

pub use config::BrokerConfig;
pub use error::{BrokerError, PartitionError};
pub use node::{run, Node, NodeConfig};
pub use server::Server;
