//! Limits and timeouts of a group, each a named constant with its unit last.
//!
//! The defaults are Kafka's broker defaults where Kafka has one (`group.min.session.timeout.ms`,
//! `group.max.session.timeout.ms`, `group.initial.rebalance.delay.ms`), so that clients configured
//! for Kafka behave the same here. [`GroupConfig`] carries the values a broker may override.

/// Smallest session timeout a member may ask for (Kafka `group.min.session.timeout.ms`).
/// Shorter sessions detect failures sooner but make a GC pause or slow network look like a crash,
/// which costs a rebalance of the whole group.
pub const SESSION_TIMEOUT_MIN_MS_DEFAULT: i32 = 6_000;

/// Largest session timeout a member may ask for (Kafka `group.max.session.timeout.ms`). A crashed
/// member's partitions stay unconsumed for up to this long.
pub const SESSION_TIMEOUT_MAX_MS_DEFAULT: i32 = 1_800_000;

/// How long an Empty group waits for more members before completing its first join phase
/// (Kafka `group.initial.rebalance.delay.ms`). It is extended, up to the rebalance timeout, each
/// time another member arrives in a new group's first rebalance. Costs: a group of one waits
/// this long for its first assignment. Tests use 0.
pub const INITIAL_REBALANCE_DELAY_MS_DEFAULT: i32 = 3_000;

/// Most members (and, separately, most members awaiting their MEMBER_ID_REQUIRED rejoin) a group
/// holds (Kafka `group.max.size`, whose default is unbounded). Every member costs its protocol
/// metadata in memory and in the group record; a group larger than its topic's partition count
/// has idle members, so a thousand is generous.
pub const GROUP_SIZE_MAX_DEFAULT: usize = 1_000;

/// How long a member that joined during this rebalance may wait for its JoinGroup response
/// before it is dropped (Kafka's `NewMemberJoinTimeoutMs`). New members cannot heartbeat (they
/// have no member id yet), so without this a client that gave up would stay forever.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i32 = 300_000;

const _: () = assert!(SESSION_TIMEOUT_MIN_MS_DEFAULT > 0);
const _: () = assert!(SESSION_TIMEOUT_MIN_MS_DEFAULT <= SESSION_TIMEOUT_MAX_MS_DEFAULT);
const _: () = assert!(INITIAL_REBALANCE_DELAY_MS_DEFAULT >= 0);
const _: () = assert!(GROUP_SIZE_MAX_DEFAULT > 0);
// A new member must outlive the longest session a peer may be waited for during a rebalance.
const _: () = assert!(NEW_MEMBER_JOIN_TIMEOUT_MS >= SESSION_TIMEOUT_MIN_MS_DEFAULT);

/// Per-broker group settings. `Default` gives Kafka's defaults; tests set
/// `initial_rebalance_delay_ms` to 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// JoinGroup with a session timeout below this gets INVALID_SESSION_TIMEOUT (26).
    pub session_timeout_min_ms: i32,
    /// JoinGroup with a session timeout above this gets INVALID_SESSION_TIMEOUT (26).
    pub session_timeout_max_ms: i32,
    /// See [`INITIAL_REBALANCE_DELAY_MS_DEFAULT`].
    pub initial_rebalance_delay_ms: i32,
    /// See [`GROUP_SIZE_MAX_DEFAULT`]; joins beyond it get GROUP_MAX_SIZE_REACHED (81).
    pub group_size_max: usize,
    /// See [`NEW_MEMBER_JOIN_TIMEOUT_MS`].
    pub new_member_join_timeout_ms: i32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            session_timeout_min_ms: SESSION_TIMEOUT_MIN_MS_DEFAULT,
            session_timeout_max_ms: SESSION_TIMEOUT_MAX_MS_DEFAULT,
            initial_rebalance_delay_ms: INITIAL_REBALANCE_DELAY_MS_DEFAULT,
            group_size_max: GROUP_SIZE_MAX_DEFAULT,
            new_member_join_timeout_ms: NEW_MEMBER_JOIN_TIMEOUT_MS,
        }
    }
}
