//! What goes in ([`Event`]) and what comes out ([`Action`]) of a [`crate::Group`], plus the group
//! record the broker persists. Field names follow Kafka's message schemas so the broker's
//! conversion to and from `kafka-protocol` types is a field-by-field copy.

use bytes::Bytes;

/// A Kafka error code as it appears on the wire. Only the codes this crate produces are named;
/// the broker owns every other (for example NOT_COORDINATOR when it does not lead the
/// `__consumer_offsets` partition, or COORDINATOR_LOAD_IN_PROGRESS while loading it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub i16);

impl ErrorCode {
    /// Success.
    pub const NONE: ErrorCode = ErrorCode(0);
    /// The group was deleted or unloaded while the request was being handled; the client looks
    /// the coordinator up again and retries.
    pub const COORDINATOR_NOT_AVAILABLE: ErrorCode = ErrorCode(15);
    /// This broker stopped coordinating the group (answered to requests parked at unload).
    pub const NOT_COORDINATOR: ErrorCode = ErrorCode(16);
    /// The request names a generation other than the group's current one; the client rejoins.
    pub const ILLEGAL_GENERATION: ErrorCode = ErrorCode(22);
    /// The member's protocol type differs from the group's, or it shares no protocol with every
    /// member, or SyncGroup names another protocol. Not retriable without a configuration change.
    pub const INCONSISTENT_GROUP_PROTOCOL: ErrorCode = ErrorCode(23);
    /// The member id is not (or no longer) in the group; the client rejoins with an empty id.
    pub const UNKNOWN_MEMBER_ID: ErrorCode = ErrorCode(25);
    /// The session timeout is outside the broker's configured bounds; a client configuration error.
    pub const INVALID_SESSION_TIMEOUT: ErrorCode = ErrorCode(26);
    /// The group is rebalancing; the client rejoins (JoinGroup) to take part.
    pub const REBALANCE_IN_PROGRESS: ErrorCode = ErrorCode(27);
    /// DeleteGroups on a group that still has members.
    pub const NON_EMPTY_GROUP: ErrorCode = ErrorCode(68);
    /// DeleteGroups on a group that is already gone.
    pub const GROUP_ID_NOT_FOUND: ErrorCode = ErrorCode(69);
    /// JoinGroup v4+ without a member id: the response carries the id to rejoin with.
    pub const MEMBER_ID_REQUIRED: ErrorCode = ErrorCode(79);
    /// The group holds `group_size_max` members already; not retriable until members leave.
    pub const GROUP_MAX_SIZE_REACHED: ErrorCode = ErrorCode(81);
    /// Another process took over this group.instance.id; this one must shut down (fatal).
    pub const FENCED_INSTANCE_ID: ErrorCode = ErrorCode(82);
}

/// An opaque id the broker gives each request so that a response produced later (a parked
/// JoinGroup or SyncGroup) can be routed back to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Names one [`Action::PersistGroup`] so that its outcome ([`Event::PersistCompleted`]) finds
/// what was waiting for it. Unique within one [`crate::Group`] object only: outcomes of a group
/// the broker dropped (after [`Action::GroupDead`]) must not be delivered to a successor with
/// the same group id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersistId(pub u64);

/// One (protocol name, metadata) pair of a JoinGroup, in the member's order of preference. For
/// consumers the name is the assignor (`range`, `roundrobin`, `cooperative-sticky`) and the
/// metadata its subscription; the coordinator never looks inside the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

/// JoinGroup (all versions; the broker fills v0's missing rebalance timeout with the session
/// timeout, as Kafka does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroup {
    pub request_id: RequestId,
    /// Empty for a member that has no id yet.
    pub member_id: String,
    /// group.instance.id of a static member (JoinGroup v5+).
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// A unique string the broker supplies (a UUID in production) from which a new member id is
    /// made as `<client_id>-<suffix>`; the group itself has no source of randomness.
    pub member_id_suffix: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    /// JoinGroup v4+: the client understands MEMBER_ID_REQUIRED, so a new dynamic member is given
    /// its id first and admitted only when it rejoins with it.
    pub require_known_member_id: bool,
    /// JoinGroup v9+: the client understands `skip_assignment`, so a restarted static leader can
    /// be told it leads without running its assignor.
    pub supports_skip_assignment: bool,
}

/// SyncGroup. Only the leader's carries assignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    pub request_id: RequestId,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    /// SyncGroup v5+; checked against the group's when present.
    pub protocol_type: Option<String>,
    /// SyncGroup v5+; checked against the group's when present.
    pub protocol_name: Option<String>,
    /// (member id, assignment bytes) from the leader's assignor.
    pub assignments: Vec<(String, Bytes)>,
}

/// Heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub request_id: RequestId,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
}

/// One member named by a LeaveGroup (v3+ batches; the broker turns v0–v2's single member id
/// into a batch of one and answers those versions with that member's code as the top-level
/// code). An empty member id with an instance id removes that static member (administrative
/// removal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberIdentity {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// LeaveGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroup {
    pub request_id: RequestId,
    pub members: Vec<MemberIdentity>,
}

/// The group part of an OffsetCommit's validation. Generation -1 with an empty member id and no
/// instance id is a "simple" commit from a client that does not use group management; it is
/// allowed only while the group is Empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommit {
    pub request_id: RequestId,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
}

/// Everything that can happen to a group. Time passes only through the `now_ms` given with each
/// event; `Tick` exists so timers fire when no request arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Join(JoinGroup),
    Sync(SyncGroup),
    Heartbeat(Heartbeat),
    Leave(LeaveGroup),
    /// Validate the group side of an OffsetCommit (generation, member); the answer is a
    /// [`Response::OffsetCommit`]. Partition existence is the broker's check.
    ValidateOffsetCommit(OffsetCommit),
    /// Fire due timers: sessions, the end of the join phase, the initial delay, the sync deadline.
    Tick,
    /// The outcome of the [`Action::PersistGroup`] named `persist_id`: `error_code` is NONE when
    /// the record is durable, or the error to give the waiting members (Kafka's translation of
    /// the append error: COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, REBALANCE_IN_PROGRESS for a
    /// timeout, UNKNOWN_SERVER_ERROR for a record too large). Outcomes nothing waits for any
    /// more (the group moved on) are ignored.
    PersistCompleted {
        persist_id: PersistId,
        error_code: ErrorCode,
    },
    /// DeleteGroups for this group.
    Delete {
        request_id: RequestId,
    },
    /// This broker stopped coordinating the group (it lost leadership of the
    /// `__consumer_offsets` partition): parked requests get NOT_COORDINATOR, the group is Dead.
    Unload,
}

/// What the broker must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `response` to the request `request_id`. Every request gets exactly one.
    Respond { request_id: RequestId, response: Response },
    /// Append this group record to `__consumer_offsets`, then report the outcome with
    /// [`Event::PersistCompleted`] carrying the same `persist_id`. The leader's SyncGroup and a
    /// static member's replacement wait for it; the record of an emptied group does not (its
    /// outcome is ignored, as Kafka only logs a failure there).
    PersistGroup { persist_id: PersistId, record: GroupRecord },
    /// The group has no members now: committed offsets start to age (`offsets.retention.minutes`).
    GroupEmptied,
    /// The group is gone (deleted or unloaded); the broker drops it from its table.
    GroupDead,
}

/// A typed response; the broker copies it into the `kafka-protocol` message of the request's
/// version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Join(JoinResponse),
    Sync(SyncResponse),
    Heartbeat { error_code: ErrorCode },
    Leave(LeaveResponse),
    OffsetCommit { error_code: ErrorCode },
    Delete { error_code: ErrorCode },
}

/// JoinGroup response. `members` is filled only for the leader: every member's metadata for the
/// selected protocol, which the leader's assignor consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    pub error_code: ErrorCode,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub members: Vec<JoinedMember>,
    /// JoinGroup v9+: the receiver leads but must not run its assignor (the group is Stable).
    pub skip_assignment: bool,
}

impl JoinResponse {
    /// An error response as Kafka sends it: generation -1, no protocol, no leader.
    pub fn error(member_id: &str, error_code: ErrorCode) -> JoinResponse {
        JoinResponse {
            error_code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_owned(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// SyncGroup response: this member's assignment bytes, exactly as the leader sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    pub error_code: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub fn error(error_code: ErrorCode) -> SyncResponse {
        SyncResponse { error_code, protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// LeaveGroup response: a top-level code and one code per named member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveResponse {
    pub error_code: ErrorCode,
    pub members: Vec<LeaveMemberResult>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveMemberResult {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error_code: ErrorCode,
}

/// The durable form of a group (Kafka's GroupMetadataValue): written to `__consumer_offsets`
/// under the group's key, and read back by [`crate::Group::load`] when this broker becomes
/// coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub protocol_type: Option<String>,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberRecord>,
}

/// One member of a [`GroupRecord`]. `subscription` is its metadata for the selected protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A snapshot for DescribeGroups. As in Kafka, the protocol and each member's metadata and
/// assignment are given only when the group is Stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub state: crate::GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}
