//! The one error type of the client.
//!
//! Every variant says whether trying again may help ([`ClientError::is_retriable`]) and what the
//! caller can do. The client itself retries retriable failures (with backoff, within the
//! request's retry budget and deadline); an error that reaches the application has either used
//! up that budget or needs a different input.

use std::time::Duration;

use sluice_proto::kafka_protocol::error::ResponseError;
use sluice_proto::ProtoError;

/// Errors from the Sluice client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// None of the bootstrap servers accepted a connection. Retriable: the cluster may be
    /// starting; check the addresses if it persists.
    #[error("no broker reachable at {bootstrap}: {reason}")]
    NoBrokerReachable {
        /// The bootstrap list as configured.
        bootstrap: String,
        /// The last connection error.
        reason: String,
    },

    /// A socket error on a broker connection (refused, reset, closed mid-request). The
    /// connection is dropped and redialled on the next request. Retriable.
    #[error("connection to {broker} failed: {source}")]
    Io {
        /// The broker address.
        broker: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },

    /// A request got no answer within its timeout. Retriable; the connection is dropped (the
    /// answer, if it ever comes, cannot be matched any more).
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        after: Duration,
    },

    /// The broker answered with a Kafka error code. Retriable exactly when Kafka's client
    /// treats the code as retriable (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION,
    /// LEADER_NOT_AVAILABLE, REQUEST_TIMED_OUT, ...); otherwise the input must change.
    #[error("{context}: {error:?} (code {code}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The decoded error.
        error: ResponseError,
        /// The raw code.
        code: i16,
        /// What was being done (topic, partition, api).
        context: String,
        /// The broker's error message, if it sent one.
        message: Option<String>,
    },

    /// The topic does not exist (after the metadata retries). Not retriable by the client:
    /// create the topic, or fix its name.
    #[error("unknown topic {topic:?}")]
    UnknownTopic {
        /// The topic name.
        topic: String,
    },

    /// The partition number is outside the topic. Not retriable: fix the partition.
    #[error("topic {topic:?} has no partition {partition} (it has {partition_count})")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        partition_count: i32,
    },

    /// The broker does not implement a version of this api the client speaks. Not retriable:
    /// upgrade the broker or the client.
    #[error("broker {broker} does not support a usable version of {api}")]
    UnsupportedApi {
        /// The broker address.
        broker: String,
        /// The api name.
        api: String,
    },

    /// Framing, encoding or decoding failed (including a corrupt fetched batch). Retriable only
    /// for a corrupt record batch (a refetch may be intact); otherwise a client or broker bug.
    #[error(transparent)]
    Protocol(#[from] ProtoError),

    /// A record is larger than the producer's batch, request or buffer limit. Not retriable:
    /// send smaller records or raise the limit.
    #[error("record of {record_bytes} bytes exceeds the {limit_name} of {limit_bytes} bytes")]
    RecordTooLarge {
        /// The record's estimated encoded size.
        record_bytes: usize,
        /// Which limit.
        limit_name: &'static str,
        /// Its value.
        limit_bytes: usize,
    },

    /// A configuration value is invalid. Not retriable: fix the configuration.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },

    /// The producer or consumer was closed, or its background task ended. Not retriable: create
    /// a new one.
    #[error("{what} is closed")]
    Closed {
        /// Which component.
        what: &'static str,
    },

    /// A record could not be delivered; the producer gave up after its retries or delivery
    /// timeout. Shared by every record of the failed batch. Retriable as its cause is (sending
    /// the record again may succeed).
    #[error("delivery failed: {0}")]
    Delivery(std::sync::Arc<ClientError>),

    /// An offset commit was refused because this member's generation is over: the group
    /// rebalanced (ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS), the coordinator no longer knows
    /// the member (UNKNOWN_MEMBER_ID: its session expired), or another instance took its static
    /// id (FENCED_INSTANCE_ID). Not retriable as is: the partitions may already belong to
    /// another member. The next `poll` rejoins the group; records consumed since the last
    /// successful commit may be delivered again (at least once).
    #[error("commit for group {group:?} failed: {error:?} (code {code}); the group rebalanced, poll to rejoin")]
    CommitFailed {
        /// The group.
        group: String,
        /// The decoded Kafka error.
        error: ResponseError,
        /// The raw code.
        code: i16,
    },

    /// An operation that needs a group without active members (an offset reset, a delete) was
    /// refused because the group has members. Not retriable until the group's consumers stop
    /// (or their sessions expire): then the group is Empty.
    #[error("group {group:?} has {members} active member(s) (state {state}); stop its consumers first")]
    GroupNotEmpty {
        /// The group.
        group: String,
        /// Its state as the coordinator reports it (`Stable`, `PreparingRebalance`, ...).
        state: String,
        /// Members at the time of the check.
        members: usize,
    },

    /// The call is not possible in the consumer's current state: `poll` inside a rebalance
    /// callback, `assign` while subscribed, a group operation without `group_id`, committing
    /// while the member is between generations. Not retriable as is: change the call.
    #[error("invalid state: {reason}")]
    InvalidState {
        /// What is wrong.
        reason: String,
    },

    /// TLS could not be set up: a certificate file unreadable or invalid, or a refused
    /// handshake. Not retriable: the configuration or the broker's certificate must change.
    #[error("TLS: {reason}")]
    Tls {
        /// What failed.
        reason: String,
    },

    /// The broker refused some of the ACL bindings of one CreateAcls or DeleteAcls: one
    /// [`ClientError::Kafka`] per refused binding (or delete filter), with its code, the
    /// broker's message and the binding in its context. The other bindings were created
    /// (removed). Retriable when every refusal is (creating an existing binding again is
    /// harmless).
    #[error("{} ACL {action}(s) refused: {}", .failures.len(), join_errors(.failures))]
    AclsRefused {
        /// `creation` or `removal`.
        action: &'static str,
        /// One error per refused binding, in request order.
        failures: Vec<ClientError>,
    },

    /// The broker's answer does not match the request (a missing partition, a wrong
    /// correlation id). The connection is dropped. Retriable: a new connection usually helps;
    /// if not, report a broker bug.
    #[error("unexpected response: {reason}")]
    UnexpectedResponse {
        /// What did not match.
        reason: String,
    },
}

impl ClientError {
    /// Whether the same operation may succeed if tried again later unchanged.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::NoBrokerReachable { .. }
            | ClientError::Io { .. }
            | ClientError::Timeout { .. }
            | ClientError::UnexpectedResponse { .. } => true,
            ClientError::Kafka { error, .. } => error.is_retriable(),
            ClientError::Protocol(error) => error.is_retriable(),
            ClientError::Delivery(cause) => cause.is_retriable(),
            ClientError::AclsRefused { failures, .. } => failures.iter().all(ClientError::is_retriable),
            ClientError::UnknownTopic { .. }
            | ClientError::Tls { .. }
            | ClientError::UnknownPartition { .. }
            | ClientError::UnsupportedApi { .. }
            | ClientError::RecordTooLarge { .. }
            | ClientError::InvalidConfig { .. }
            | ClientError::Closed { .. }
            | ClientError::CommitFailed { .. }
            | ClientError::GroupNotEmpty { .. }
            | ClientError::InvalidState { .. } => false,
        }
    }

    /// Whether the metadata cache should be refreshed before a retry: the leader moved, the
    /// topic or partition is new, or the connection failed.
    pub fn invalidates_metadata(&self) -> bool {
        match self {
            ClientError::Kafka { error, .. } => matches!(
                error,
                ResponseError::NotLeaderOrFollower
                    | ResponseError::UnknownTopicOrPartition
                    | ResponseError::LeaderNotAvailable
                    | ResponseError::FencedLeaderEpoch
                    | ResponseError::UnknownLeaderEpoch
                    | ResponseError::NotEnoughReplicas
                    | ResponseError::KafkaStorageError
                    | ResponseError::NotController
            ),
            ClientError::Io { .. } | ClientError::Timeout { .. } | ClientError::NoBrokerReachable { .. } => true,
            _ => false,
        }
    }

    /// Whether a group request should look its coordinator up again before a retry: the broker
    /// is not (or no longer) the group's coordinator, or the connection to it failed.
    /// COORDINATOR_LOAD_IN_PROGRESS is retriable but keeps the coordinator: it is the right
    /// broker, still loading the group.
    pub fn invalidates_coordinator(&self) -> bool {
        match self {
            ClientError::Kafka { error, .. } => {
                matches!(error, ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable)
            }
            ClientError::Io { .. } | ClientError::Timeout { .. } | ClientError::NoBrokerReachable { .. } => true,
            _ => false,
        }
    }

    /// The error for a non-zero Kafka error code.
    pub fn kafka(code: i16, context: impl Into<String>, message: Option<String>) -> ClientError {
        let error = ResponseError::try_from_code(code).unwrap_or(ResponseError::Unknown(code));
        ClientError::Kafka { error, code, context: context.into(), message }
    }

    /// `Ok(())` for code 0, the Kafka error otherwise.
    pub fn check(code: i16, context: impl FnOnce() -> String) -> Result<(), ClientError> {
        if code == 0 {
            Ok(())
        } else {
            Err(ClientError::kafka(code, context(), None))
        }
    }
}

/// `errors`' messages joined by `; `.
fn join_errors(errors: &[ClientError]) -> String {
    errors.iter().map(ClientError::to_string).collect::<Vec<_>>().join("; ")
}

/// Result with [`ClientError`].
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
