//! `sluice-group`: the consumer-group coordinator of Kafka's classic group protocol
//! (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, and the group side of OffsetCommit), as pure
//! logic.
//!
//! Like openraft's engine, a [`Group`] takes [`Event`]s and returns [`Action`]s. It does no I/O,
//! reads no clock (time arrives as `now_ms` with each event), draws no random numbers (new member
//! ids are `<client_id>-<suffix>` from a suffix the broker supplies), and spawns nothing. The
//! broker owns the sockets, the group table, the timer that sends [`Event::Tick`] at
//! [`Group::next_deadline_ms`], and the writes to `__consumer_offsets` that
//! [`Action::PersistGroup`] asks for. Requests that cannot be answered yet (JoinGroup during the
//! join phase, SyncGroup before the leader's assignment is durable) are parked under the
//! broker's [`RequestId`] and answered by a later call; every request gets exactly one
//! [`Action::Respond`].
//!
//! # States and transitions
//!
//! ```text
//!                 first JoinGroup                     join phase ends
//!   +-------+  (initial delay starts)  +--------------------+  (generation + 1)  +---------------------+
//!   | Empty |------------------------->| PreparingRebalance |------------------->| CompletingRebalance |
//!   +-------+                          +--------------------+                    +---------------------+
//!     |  ^   join phase ends with no members  |   ^   ^                               |     |
//!     |  +------------------------------------+   |   |  join / leave / expiry /      |     | leader's SyncGroup
//!     |           (generation + 1)                |   +--- sync timeout / persist ----+     | persisted
//!     |                                           |        failure                          v
//!     | DeleteGroups                              |                                    +--------+
//!     v                                           +--- new or changed member joins, ---| Stable |
//!   +------+                                           leader rejoins, leave, expiry,  +--------+
//!   | Dead |  <- Unload (from any state)               sync timeout
//!   +------+
//! ```
//!
//! - **Empty → PreparingRebalance**: a member is admitted. The join phase is the *initial
//!   delay* (`group.initial.rebalance.delay.ms`): it ends at its deadline only, and while the
//!   group is new (generation 0) each step that saw a newcomer is followed by another, within the
//!   rebalance timeout. So a group of one gets its assignment after the delay, not after a
//!   session timeout.
//! - **Stable / CompletingRebalance → PreparingRebalance**: a new member joins, a member rejoins
//!   with different metadata, the leader rejoins, a member leaves or its session expires, members
//!   never sent SyncGroup within the rebalance timeout, or the assignment could not be
//!   persisted. Parked SyncGroups get REBALANCE_IN_PROGRESS; heartbeats get REBALANCE_IN_PROGRESS
//!   from now on, which makes clients rejoin.
//! - **PreparingRebalance → CompletingRebalance**: every member (and every member id handed out
//!   with MEMBER_ID_REQUIRED) has rejoined, or the largest rebalance timeout passed. Dynamic
//!   members that did not rejoin are removed; static ones stay (their session decides). The
//!   generation increases, the protocol is selected (the one every member supports that most
//!   members prefer), and each parked JoinGroup is answered; the leader's answer lists every
//!   member's metadata for the selected protocol, for its client-side assignor (range,
//!   roundrobin, cooperative-sticky: the coordinator never reads the bytes).
//! - **PreparingRebalance → Empty**: the phase ends with nobody left (generation + 1, the
//!   emptied record is persisted, [`Action::GroupEmptied`]).
//! - **CompletingRebalance → Stable**: the leader's SyncGroup assignment is persisted and the
//!   broker reports [`Event::PersistCompleted`]; every parked SyncGroup gets its member's bytes.
//! - **Empty → Dead** on DeleteGroups; **any → Dead** on [`Event::Unload`].
//!
//! Static membership (`group.instance.id`): a static member that comes back without a member id
//! takes its old place under a new id. In Stable, if the selected protocol would not change, that
//! happens without a rebalance: the record naming the new id is persisted and the JoinGroup is
//! answered when [`Event::PersistCompleted`] says it is durable (undone if it failed, as in
//! Kafka). Whatever the old id had parked is answered FENCED_INSTANCE_ID, and so is every later
//! request that uses the old id with that instance id, so of two processes sharing an instance id
//! the older one is fenced.
//!
//! Persistence: every [`Action::PersistGroup`] carries a [`PersistId`]; the broker appends the
//! record to `__consumer_offsets` and reports the outcome with the same id. The leader's
//! assignment and static replacements wait for it; outcomes nothing waits for are ignored.
//!
//! # What the broker does around a group
//!
//! - Keeps `group id → Group`. A JoinGroup with an empty member id for an unknown group creates
//!   it ([`Group::new`]); any other JoinGroup, SyncGroup or Heartbeat for an unknown group gets
//!   UNKNOWN_MEMBER_ID, a LeaveGroup UNKNOWN_MEMBER_ID per member, an OffsetCommit
//!   [`validate_offset_commit_without_group`] (as Kafka does). On [`Action::GroupDead`] it drops
//!   the group; a later JoinGroup creates a fresh one.
//! - Maps wire versions: JoinGroup v0 has no rebalance timeout (use the session timeout), v4+
//!   sets `require_known_member_id`, v5+ carries the instance id, v9+ sets
//!   `supports_skip_assignment`; LeaveGroup v0–v2 is a batch of one whose member code becomes
//!   the top-level code; SyncGroup v5+ carries protocol type and name.
//! - Supplies `member_id_suffix` (a UUID), runs a timer for [`Group::next_deadline_ms`], performs
//!   actions in order, and reports every persist. Checks whether committed partitions exist.
//! - Loads groups with [`Group::load`] when it becomes coordinator, and sends [`Event::Unload`]
//!   when it stops being one.
//!
//! Architecture invariants: this crate knows nothing of sockets, tokio, the log or Raft, and
//! holds no clock; it decides, the broker acts. Checked after every event in debug builds
//! ([`Group::check_invariants`]): Empty and Dead groups have no members and the other states
//! have some; the leader is a member; at most one member holds each instance id; in Stable every
//! member has an assignment; parked JoinGroups exist only in PreparingRebalance and parked
//! SyncGroups only in CompletingRebalance. The generation never decreases.

mod config;
mod group;
mod join;
mod rebalance;
mod sync;
mod timers;
mod types;

pub use config::{
    GroupConfig, GROUP_SIZE_MAX_DEFAULT, INITIAL_REBALANCE_DELAY_MS_DEFAULT, NEW_MEMBER_JOIN_TIMEOUT_MS,
    SESSION_TIMEOUT_MAX_MS_DEFAULT, SESSION_TIMEOUT_MIN_MS_DEFAULT,
};
pub use group::{Group, GroupState, LoadError};
pub use types::{
    Action, ErrorCode, Event, GroupDescription, GroupRecord, Heartbeat, JoinGroup, JoinResponse, JoinedMember,
    LeaveGroup, LeaveMemberResult, LeaveResponse, MemberDescription, MemberIdentity, MemberRecord, OffsetCommit,
    PersistId, Protocol, RequestId, Response, SyncGroup, SyncResponse,
};

/// The group side of an OffsetCommit for a group the broker does not have: Kafka creates an
/// Empty group for a "simple" commit (generation < 0) and refuses any other with
/// ILLEGAL_GENERATION (the member belongs to a group that no longer exists).
pub fn validate_offset_commit_without_group(generation_id: i32) -> ErrorCode {
    if generation_id < 0 {
        ErrorCode::NONE
    } else {
        ErrorCode::ILLEGAL_GENERATION
    }
}

#[cfg(test)]
mod tests;
