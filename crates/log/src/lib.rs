//! `sluice-log`: the storage engine of one partition.
//!
//! A partition's log is a directory of segments. Each segment is a `.log` file of Kafka
//! RecordBatch v2 batches stored exactly as producers sent them (so a fetch is a copy of file
//! bytes), with a sparse offset index and time index beside it. The data path of an append:
//!
//! [`Log::append`] → [`batch`] validation (framing, magic, size, CRC-32C) → offsets assigned by
//! rewriting the batch header → [`segment`] write (one `pwrite`), index entries → flush policy.
//!
//! A read ([`Log::read`]) returns [`FileRegion`]s — (file, position, length) of whole batches —
//! that the broker sends without decoding. Retention deletes whole segments; compaction
//! ([`Log::compact`]) rewrites old segments keeping the newest record per key; recovery on open
//! re-validates everything written since the last flush.
//!
//! Architecture invariants: this crate is synchronous and knows nothing of the network, of
//! tokio, of replication or of the cluster; the broker drives it. Byte layouts of every file
//! are documented in the module docs and in `docs/design/log-format.md`.

pub mod batch;
mod checkpoint;
mod cleaner;
mod commit;
pub mod config;
pub mod epoch;
mod error;
mod index;
mod log;
pub mod recompress;
mod records;
pub mod segment;
pub mod testing;
pub mod validate;

pub use cleaner::{CleaningPlan, CompactionDue, CompactionOutcome};
pub use commit::SyncWait;
pub use config::{CleanupPolicy, CompressionType, FlushPolicy, LogConfig, MessageTimestampType};
pub use epoch::{EpochEntry, LeaderEpochCache};
pub use error::{is_out_of_space, LogError, Result};
#[cfg(any(test, feature = "fault-injection"))]
pub use log::Fault;
pub use log::{AppendInfo, Clock, FileRegion, Log, ReadResult, RetentionOutcome, SyncCause, SyncObserver, SystemClock};
