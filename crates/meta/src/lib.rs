//! `sluice-meta`: the control plane of Sluice — cluster metadata replicated by one openraft
//! group.
//!
//! The group holds what brokers must agree on: registered brokers and their fencing, topics
//! (UUID ids, configs), partition replicas, leaders, leader and partition epochs, ISRs, and
//! producer-id blocks. It knows nothing of record data.
//!
//! # Following a command through the crate
//!
//! broker → [`MetaNode::propose`] → (on a follower: forwarded over the Raft RPC connection to
//! the leader, [`proposal`]) → `Raft::client_write` → [`log_store`] (appended, fsynced, then
//! acknowledged) → replicated by [`network`] to the [`server`] of each peer → committed →
//! [`state_machine`] applies it with the pure logic in [`commands`] to the [`view`] →
//! published to subscribers ([`subscription`]) → [`Proposed`] returned to the caller.
//!
//! # Modules
//!
//! - [`commands`], [`view`], [`placement`], [`topic_config`]: the deterministic state machine
//!   logic — no I/O, no clock, no randomness; tested without Raft.
//! - [`types`]: the openraft type configuration.
//! - [`log_store`] over [`log_segments`] and [`frame`]: the Raft log and vote on disk.
//! - [`state_machine`]: applying entries, snapshots on disk, publishing the view.
//! - [`rpc`], [`network`], [`server`], [`proposal`]: Raft RPC over TCP and proposal forwarding.
//! - [`node`]: wiring; [`config`]: configuration and the `--voters` parser.
//! - [`limits`]: every bound, with its unit.
//!
//! # On disk (`<data_dir>/`)
//!
//! - `log/<first index>.seg`: Raft log segments, `log/raft-state`: vote, committed, purged.
//! - `snapshot/snapshot`: the latest snapshot.
//!
//! Every file starts with a 16-byte header (magic, version, CRC-32) and holds records framed
//! as `len u32 | crc32 u32 | postcard payload`; see [`frame`], [`log_segments`] and
//! [`state_machine`] for the crash semantics, and `docs/design/meta.md` for the byte layout.
//!
//! # Measured figures
//!
//! Figures are filled in from `examples/meta_bench.rs`; see `docs/design/meta.md`.

pub mod commands;
pub mod config;
mod durable;
pub mod error;
pub mod frame;
pub mod limits;
pub mod log_segments;
pub mod log_store;
pub mod network;
pub mod node;
pub mod placement;
mod proposal;
pub mod rpc;
mod server;
pub mod state_machine;
pub mod subscription;
pub mod topic_config;
pub mod types;
pub mod view;

pub use commands::Command;
pub use commands::CommandOutcome;
pub use config::parse_voters;
pub use config::MetaConfig;
pub use error::CommandError;
pub use error::MetaError;
pub use error::StoreError;
pub use log_store::LogStore;
pub use network::NetworkSwitch;
pub use node::MetaNode;
pub use node::Proposed;
pub use state_machine::StateMachineStore;
pub use subscription::AppliedView;
pub use subscription::MetadataEvent;
pub use topic_config::CleanupPolicy;
pub use topic_config::TopicConfig;
pub use types::NodeId;
pub use types::TypeConfig;
pub use view::BrokerId;
pub use view::BrokerRecord;
pub use view::MetadataView;
pub use view::PartitionRecord;
pub use view::TopicRecord;
