//! What the broker receives about applied metadata: the latest view (a `watch` channel) and
//! the stream of individual changes (a `broadcast` channel).
//!
//! The view is the source of truth; events are a convenience for reacting to a change without
//! diffing views. A subscriber that falls more than
//! [`CHANGE_EVENTS_BUFFERED_MAX`](crate::limits::CHANGE_EVENTS_BUFFERED_MAX) events behind, or
//! that sees [`MetadataEvent::SnapshotInstalled`], must resynchronise from the view.

use std::sync::Arc;

use crate::commands::Command;
use crate::commands::CommandOutcome;
use crate::error::CommandError;
use crate::view::MetadataView;

/// The metadata view as of one applied log index. Cheap to clone (the view is shared).
#[derive(Debug, Clone, Default)]
pub struct AppliedView {
    /// Index of the last log entry applied to `view`; `None` before anything was applied.
    pub applied_index: Option<u64>,
    /// The view.
    pub view: Arc<MetadataView>,
}

/// One change applied to the state machine, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
// One event per metadata command, a few per second at most: boxing the command would cost an
// allocation each for no gain.
#[allow(clippy::large_enum_variant)]
pub enum MetadataEvent {
    /// A command was applied (or rejected; then the view did not change).
    Applied {
        /// Index of the log entry that carried it.
        log_index: u64,
        /// Its position among the commands batched into that entry (0 for the first).
        position: u32,
        /// The command.
        command: Command,
        /// What it did.
        result: Result<CommandOutcome, CommandError>,
    },
    /// The whole view was replaced by a snapshot from the leader, up to `log_index`. Events
    /// before it were skipped; re-read the view.
    SnapshotInstalled {
        /// Last log index covered by the snapshot.
        log_index: u64,
    },
}
