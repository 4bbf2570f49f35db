//! The "consumer" embedded protocol: the bytes a member puts in JoinGroup (its subscription)
//! and the leader puts in SyncGroup (each member's assignment).
//!
//! Layout (Kafka's `ConsumerProtocol`): a big-endian `int16` version, then the
//! `ConsumerProtocolSubscription` or `ConsumerProtocolAssignment` struct of that version, as
//! `kafka_protocol::messages` encodes it. We write [`CONSUMER_PROTOCOL_VERSION`] (3, as Kafka's
//! Java client 3.x does); readers of older versions read the fields they know and ignore the
//! rest, which is how the format was designed to grow. We read versions 0..=3, and a newer
//! version as version 3 (its fields are appended after the ones we know), as Java does.
//!
//! These bytes come from other members (through the broker), so they are untrusted: they are
//! decoded through `sluice-proto`'s length guard, never letting a wire count size an
//! allocation. An empty assignment (zero bytes — what the coordinator hands a member the
//! leader left out) means no partitions.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use sluice_proto::kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use sluice_proto::kafka_protocol::messages::{ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use sluice_proto::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice_proto::ProtoError;

use crate::cluster::topic_name;
use crate::consumer::TopicPartition;
use crate::error::Result;

/// The protocol type of consumer groups in JoinGroup; members of other types (Kafka Connect's
/// "connect") cannot share a group with consumers.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// The version of the subscription and assignment we write.
pub const CONSUMER_PROTOCOL_VERSION: i16 = 3;
/// The newest version whose fields we know; newer ones are read as this.
const CONSUMER_PROTOCOL_VERSION_MAX: i16 = 3;
/// Bytes of the version prefix.
const VERSION_BYTES: usize = 2;
/// A JoinGroup version whose response header is v0 (four bytes of correlation id) and that is
/// at least [`CONSUMER_PROTOCOL_VERSION_MAX`]: see [`decode_guarded`].
const GUARD_CARRIER_VERSION: i16 = 5;

const _: () = assert!(CONSUMER_PROTOCOL_VERSION <= CONSUMER_PROTOCOL_VERSION_MAX);
const _: () = assert!(CONSUMER_PROTOCOL_VERSION_MAX <= GUARD_CARRIER_VERSION);

fn encode_failed(what: &'static str, error: impl std::fmt::Display) -> ProtoError {
    ProtoError::Encode { what, reason: error.to_string() }
}

fn encode<T: Encodable>(what: &'static str, value: &T) -> Result<Bytes> {
    let size = value.compute_size(CONSUMER_PROTOCOL_VERSION).map_err(|error| encode_failed(what, error))?;
    let mut buf = BytesMut::with_capacity(VERSION_BYTES + size);
    buf.put_i16(CONSUMER_PROTOCOL_VERSION);
    value.encode(&mut buf, CONSUMER_PROTOCOL_VERSION).map_err(|error| encode_failed(what, error))?;
    Ok(buf.freeze())
}

/// Decodes `bytes` (version prefix included) through the proto crate's length guard.
///
/// `sluice-proto` exposes its guard only through [`sluice_proto::decode_response`], which reads
/// a response header and then decodes the body as any `Decodable` at the given version. So the
/// struct is handed over as the body of a response whose header is four zero bytes (header
/// v0, the one `GUARD_CARRIER_VERSION` of JoinGroup uses); the api key only picks the header
/// version. The struct itself is decoded at its own version, which is at most
/// `CONSUMER_PROTOCOL_VERSION_MAX`.
fn decode_guarded<T: Decodable>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let malformed = |reason: String| ProtoError::Malformed { what, reason };
    if bytes.len() < VERSION_BYTES {
        return Err(malformed(format!("{} byte(s), shorter than the version prefix", bytes.len())).into());
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    if version < 0 {
        return Err(malformed(format!("negative version {version}")).into());
    }
    let version = version.min(CONSUMER_PROTOCOL_VERSION_MAX);
    let mut payload = BytesMut::with_capacity(4 + bytes.len() - VERSION_BYTES);
    payload.put_i32(0);
    payload.put_slice(&bytes[VERSION_BYTES..]);
    let (_, value) = sluice_proto::decode_response::<T>(ApiKey::JoinGroup, version, payload.freeze())
        .map_err(|error| malformed(error.to_string()))?;
    Ok(value)
}

/// The JoinGroup metadata of a member subscribing to `topics`.
pub fn encode_subscription(topics: &[String]) -> Result<Bytes> {
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|topic| StrBytes::from_string(topic.clone())).collect());
    encode("consumer protocol subscription", &subscription)
}

/// The topics of a member's JoinGroup metadata.
pub fn decode_subscription(bytes: &[u8]) -> Result<Vec<String>> {
    let subscription: ConsumerProtocolSubscription = decode_guarded("consumer protocol subscription", bytes)?;
    Ok(subscription.topics.iter().map(|topic| topic.to_string()).collect())
}

/// The SyncGroup assignment bytes of `partitions` (grouped by topic, in order).
pub fn encode_assignment(partitions: &[TopicPartition]) -> Result<Bytes> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for partition in partitions {
        by_topic.entry(partition.topic.as_str()).or_default().push(partition.partition);
    }
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                AssignedTopic::default().with_topic(topic_name(topic)).with_partitions(partitions)
            })
            .collect(),
    );
    encode("consumer protocol assignment", &assignment)
}

/// The partitions of an assignment (none for empty bytes).
pub fn decode_assignment(bytes: &[u8]) -> Result<Vec<TopicPartition>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let assignment: ConsumerProtocolAssignment = decode_guarded("consumer protocol assignment", bytes)?;
    let mut partitions: Vec<TopicPartition> = assignment
        .assigned_partitions
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|&partition| TopicPartition::new(topic.topic.0.as_str(), partition))
        })
        .collect();
    partitions.sort();
    partitions.dedup();
    Ok(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_and_assignments_round_trip() {
        let topics = vec!["orders".to_string(), "payments".to_string()];
        let bytes = encode_subscription(&topics).unwrap();
        assert_eq!(&bytes[..2], &[0, 3], "version prefix");
        assert_eq!(decode_subscription(&bytes).unwrap(), topics);
        let partitions = vec![TopicPartition::new("a", 0), TopicPartition::new("a", 2), TopicPartition::new("b", 1)];
        let bytes = encode_assignment(&partitions).unwrap();
        assert_eq!(decode_assignment(&bytes).unwrap(), partitions);
        assert!(decode_assignment(&[]).unwrap().is_empty());
    }

    /// Bytes as Kafka's Java client 2.x writes them: a v0 subscription (topics, user data) and
    /// a v1 assignment, built by hand from the protocol's schema.
    #[test]
    fn older_versions_written_by_other_clients_decode() {
        let mut v0 = vec![0, 0, 0, 0, 0, 1, 0, 3];
        v0.extend_from_slice(b"abc");
        v0.extend_from_slice(&(-1i32).to_be_bytes()); // null user data
        assert_eq!(decode_subscription(&v0).unwrap(), ["abc"]);
        let mut v1 = vec![0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1];
        v1.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(decode_assignment(&v1).unwrap(), [TopicPartition::new("t", 1), TopicPartition::new("t", 4)]);
        // A future version: its extra trailing fields are ignored.
        let mut v9 = encode_subscription(&["x".to_string()]).unwrap().to_vec();
        v9[1] = 9;
        v9.extend_from_slice(&[0, 0, 0, 7]);
        assert_eq!(decode_subscription(&v9).unwrap(), ["x"]);
    }

    #[test]
    fn hostile_lengths_are_refused_without_allocating_for_them() {
        // One topic name claimed to be 32767 bytes long, then an array of i32::MAX topics.
        assert!(decode_subscription(&[0, 0, 0, 0, 0, 1, 0x7f, 0xff, b'a']).is_err());
        assert!(decode_subscription(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_assignment(&[0, 3, 0x7f, 0xff, 0xff, 0xff, 0, 0]).is_err());
        assert!(decode_assignment(&[0]).is_err());
        assert!(decode_subscription(&[0xff, 0xff, 0, 0, 0, 0]).is_err(), "negative version");
    }
}
