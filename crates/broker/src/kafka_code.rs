//! Kafka protocol error codes the broker answers with (numbers from Kafka's `Errors.java`).

/// UNKNOWN_SERVER_ERROR: a bug or an unexpected failure on the broker.
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
/// NONE
pub const NONE: i16 = 0;
/// OFFSET_OUT_OF_RANGE
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
/// CORRUPT_MESSAGE
pub const CORRUPT_MESSAGE: i16 = 2;
/// UNKNOWN_TOPIC_OR_PARTITION
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// LEADER_NOT_AVAILABLE
pub const LEADER_NOT_AVAILABLE: i16 = 5;
/// NOT_LEADER_OR_FOLLOWER
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// REQUEST_TIMED_OUT
pub const REQUEST_TIMED_OUT: i16 = 7;
/// MESSAGE_TOO_LARGE
pub const MESSAGE_TOO_LARGE: i16 = 10;
/// INVALID_TIMESTAMP: a record timestamp outside the topic's `message.timestamp.*` bounds.
pub const INVALID_TIMESTAMP: i16 = 32;
/// INVALID_RECORD: well-formed records the topic does not accept (e.g. no key on a compacted
/// topic).
pub const INVALID_RECORD: i16 = 87;
/// INVALID_TOPIC_EXCEPTION
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
/// NOT_ENOUGH_REPLICAS
pub const NOT_ENOUGH_REPLICAS: i16 = 19;
/// NOT_ENOUGH_REPLICAS_AFTER_APPEND
pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
/// INVALID_REQUIRED_ACKS
pub const INVALID_REQUIRED_ACKS: i16 = 21;
/// INVALID_REQUEST
pub const INVALID_REQUEST: i16 = 42;
/// INVALID_REPLICATION_FACTOR: a reassignment that changes the replica count when the request
/// (AlterPartitionReassignments v1, KIP-860) does not allow it.
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
/// INVALID_REPLICA_ASSIGNMENT: reassignment targets that are empty, repeat a broker or name an
/// unknown one.
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
/// INVALID_CONFIG
pub const INVALID_CONFIG: i16 = 40;
/// OUT_OF_ORDER_SEQUENCE_NUMBER
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
/// INVALID_PRODUCER_EPOCH
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
/// KAFKA_STORAGE_ERROR
pub const KAFKA_STORAGE_ERROR: i16 = 56;
/// FETCH_SESSION_ID_NOT_FOUND
pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
/// FENCED_LEADER_EPOCH
pub const FENCED_LEADER_EPOCH: i16 = 74;
/// UNKNOWN_LEADER_EPOCH
pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
/// OFFSET_NOT_AVAILABLE: a new leader's high watermark has not caught up yet (retriable).
pub const OFFSET_NOT_AVAILABLE: i16 = 78;
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED: the answer to transactional requests, which this
/// broker does not implement (no transaction coordinator).
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
/// UNSUPPORTED_VERSION
pub const UNSUPPORTED_VERSION: i16 = 35;
/// TOPIC_AUTHORIZATION_FAILED: the caller's ACLs do not allow the operation on the topic.
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
/// GROUP_AUTHORIZATION_FAILED: the caller's ACLs do not allow the operation on the group.
pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
/// CLUSTER_AUTHORIZATION_FAILED: the caller's ACLs do not allow the operation on the cluster.
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
/// UNKNOWN_TOPIC_ID
pub const UNKNOWN_TOPIC_ID: i16 = 100;
/// PREFERRED_LEADER_NOT_AVAILABLE
pub const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
/// ELIGIBLE_LEADERS_NOT_AVAILABLE
pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: i16 = 83;
/// ELECTION_NOT_NEEDED
pub const ELECTION_NOT_NEEDED: i16 = 84;
/// INCONSISTENT_CLUSTER_ID: a request names another cluster's id.
pub const INCONSISTENT_CLUSTER_ID: i16 = 104;
/// DUPLICATE_VOTER: AddRaftVoter for a node that already votes.
pub const DUPLICATE_VOTER: i16 = 126;
/// VOTER_NOT_FOUND: RemoveRaftVoter for a node that does not vote (or AddRaftVoter for a node
/// the group does not know and whose address the request does not give).
pub const VOTER_NOT_FOUND: i16 = 127;
/// UNSUPPORTED_SASL_MECHANISM: the handshake named a mechanism this broker does not offer.
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// ILLEGAL_SASL_STATE: a SASL request out of order, or on a listener without SASL.
pub const ILLEGAL_SASL_STATE: i16 = 34;
/// SASL_AUTHENTICATION_FAILED: wrong user, password or proof, or a malformed message.
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// RESOURCE_NOT_FOUND: e.g. deleting a SCRAM credential that does not exist.
pub const RESOURCE_NOT_FOUND: i16 = 91;
/// UNACCEPTABLE_CREDENTIAL: a SCRAM credential the broker refuses (iterations out of range,
/// empty salt or salted password of the wrong length).
pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
/// DUPLICATE_RESOURCE: a user named twice in one AlterUserScramCredentials request.
pub const DUPLICATE_RESOURCE: i16 = 92;
