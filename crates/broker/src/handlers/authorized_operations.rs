//! Authorized operations (KIP-430), as a Kafka broker without an authorizer reports them.
//!
//! Metadata (topics, and the cluster in v8–v10), DescribeCluster and DescribeGroups carry, when
//! the request asks (`include_*_authorized_operations`), the operations the caller may perform
//! on the resource, as a bit field with bit `n` set for Kafka's `AclOperation` code `n`
//! (`Utils.to32BitField`). Sluice has no authorizer, so — like Kafka configured without one —
//! it reports every operation the resource type supports (Kafka's
//! `AclEntry.supportedOperations`). When the request does not ask, the field is
//! [`NOT_REQUESTED`], Kafka's `Integer.MIN_VALUE`, which clients read as "not provided".

/// Kafka's `AclOperation` codes used below.
const READ: u32 = 3;
const WRITE: u32 = 4;
const CREATE: u32 = 5;
const DELETE: u32 = 6;
const ALTER: u32 = 7;
const DESCRIBE: u32 = 8;
const CLUSTER_ACTION: u32 = 9;
const DESCRIBE_CONFIGS: u32 = 10;
const ALTER_CONFIGS: u32 = 11;
const IDEMPOTENT_WRITE: u32 = 12;

/// The field's value when the request did not ask for authorized operations.
pub const NOT_REQUESTED: i32 = i32::MIN;

/// Every operation on a topic.
pub const TOPIC: i32 = bit_field(&[READ, WRITE, CREATE, DESCRIBE, DELETE, ALTER, DESCRIBE_CONFIGS, ALTER_CONFIGS]);

/// Every operation on the cluster.
pub const CLUSTER: i32 =
    bit_field(&[CREATE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, ALTER, DESCRIBE]);

/// Every operation on a consumer group (group configs, KIP-848, added the two config operations
/// in Kafka 4.0).
pub const GROUP: i32 = bit_field(&[READ, DESCRIBE, DELETE, DESCRIBE_CONFIGS, ALTER_CONFIGS]);

/// `operations` if the request asked for them, else [`NOT_REQUESTED`].
pub fn when_asked(asked: bool, operations: i32) -> i32 {
    if asked {
        operations
    } else {
        NOT_REQUESTED
    }
}

const fn bit_field(codes: &[u32]) -> i32 {
    let mut field = 0i32;
    let mut index = 0;
    while index < codes.len() {
        assert!(codes[index] < 31, "an AclOperation code is a bit of a positive i32");
        field |= 1 << codes[index];
        index += 1;
    }
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bit fields of the operation sets that the Java suite (`tests/java`, AdminTest)
    /// checks against Apache Kafka 4.1.1 without an authorizer.
    #[test]
    fn bit_fields_match_kafka_without_an_authorizer() {
        assert_eq!(CLUSTER, 0b1_1111_1010_0000);
        assert_eq!(TOPIC, 0b1101_1111_1000);
        assert_eq!(GROUP, 0b1101_0100_1000);
        assert_eq!(when_asked(false, TOPIC), i32::MIN);
        assert_eq!(when_asked(true, GROUP), GROUP);
    }
}
