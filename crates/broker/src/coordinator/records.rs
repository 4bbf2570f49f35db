//! The records of `__consumer_offsets`, in Kafka's own layout, so that Kafka's tools (the
//! `OffsetsMessageFormatter`, `kafka-dump-log --offsets-decoder`) read our partitions and ours
//! read theirs. Every key and value starts with a big-endian `int16` version; the fields follow
//! with the protocol's primitive types (encoded with `kafka-protocol`'s encoders):
//!
//! ```text
//! OffsetCommitKey   v1: group STRING, topic STRING, partition INT32
//! OffsetCommitValue v3: offset INT64, leader_epoch INT32, metadata STRING, commit_timestamp INT64
//! GroupMetadataKey  v2: group STRING
//! GroupMetadataValue v3: protocol_type STRING, generation INT32, protocol NULLABLE_STRING,
//!                        leader NULLABLE_STRING, current_state_timestamp INT64,
//!                        members ARRAY of { member_id STRING, group_instance_id NULLABLE_STRING,
//!                          client_id STRING, client_host STRING, rebalance_timeout INT32,
//!                          session_timeout INT32, subscription BYTES, assignment BYTES }
//! ```
//!
//! A record with a null value is a tombstone: the offset (or the whole group) is deleted, and
//! compaction keeps only the newest record per key. `kafka-protocol` generates no types for
//! these schemas (they live in Kafka's group-coordinator module, not its client messages) and
//! keeps its primitive encoders private, so the four fixed layouts are written here with
//! `bytes`: big-endian integers, `STRING` = int16 length + UTF-8, `NULLABLE_STRING` with
//! length -1 for null, `BYTES` = int32 length + bytes. Decoding accepts the value versions Kafka
//! has written (offset values v0–v3, group values v0–v3); a member count is checked against the
//! bytes that follow before anything is allocated for it. `docs/design/consumer-offsets.md`
//! draws the bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use sluice_group::{GroupRecord, MemberRecord};

/// Key version of an offset commit (Kafka's OffsetCommitKey v0/v1; both have the same fields).
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of a group's metadata (Kafka's GroupMetadataKey v2).
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Value version written for offsets (no expire timestamp; per-group retention).
pub const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// Value version written for groups (with group instance ids).
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// Smallest encoded member of a group value, in bytes: four empty strings (2 each) or a null
/// instance id, two int32 and two empty byte arrays (4 each).
const MEMBER_BYTES_MIN: usize = 4 * 2 + 2 * 4 + 2 * 4;

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// The next offset the group will read.
    pub offset: i64,
    /// Leader epoch of the last consumed record (`-1` when unknown).
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When the commit was made, milliseconds since the Unix epoch.
    pub commit_timestamp_ms: i64,
}

/// A decoded key of `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// An offset of (group, topic, partition).
    Offset { group: String, topic: String, partition: i32 },
    /// A group's metadata.
    Group { group: String },
}

impl RecordKey {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            RecordKey::Offset { group, .. } | RecordKey::Group { group } => group,
        }
    }
}

/// Why a stored record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The bytes end early, a length is negative, or a string is not UTF-8.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which part.
        what: &'static str,
        /// The decoder's reason.
        reason: String,
    },
    /// A key or value version this broker does not know.
    #[error("unknown {what} version {version}")]
    UnknownVersion {
        /// Which part.
        what: &'static str,
        /// The version read.
        version: i16,
    },
}

fn short(what: &'static str) -> RecordError {
    RecordError::Malformed { what, reason: "ends early".into() }
}

fn put_string(buf: &mut BytesMut, value: Option<&str>) {
    match value {
        None => buf.put_i16(-1),
        Some(text) => {
            // Group ids, topics, member ids and metadata are far below i16::MAX bytes: the
            // request size limit and OFFSET_METADATA_BYTES_MAX bound them.
            let length = i16::try_from(text.len()).expect("string within the protocol's length limit");
            buf.put_i16(length);
            buf.put_slice(text.as_bytes());
        }
    }
}

fn put_bytes(buf: &mut BytesMut, value: &Bytes) {
    let length = i32::try_from(value.len()).expect("bytes within the request size limit");
    buf.put_i32(length);
    buf.put_slice(value);
}

fn get_i16(buf: &mut Bytes, what: &'static str) -> Result<i16, RecordError> {
    buf.try_get_i16().map_err(|_| short(what))
}

fn get_i32(buf: &mut Bytes, what: &'static str) -> Result<i32, RecordError> {
    buf.try_get_i32().map_err(|_| short(what))
}

fn get_i64(buf: &mut Bytes, what: &'static str) -> Result<i64, RecordError> {
    buf.try_get_i64().map_err(|_| short(what))
}

/// A length-prefixed piece of `buf`: `None` for length -1, an error for other negative
/// lengths or one longer than the bytes left (so nothing is allocated for a bad length).
fn get_piece(buf: &mut Bytes, length: i64, what: &'static str) -> Result<Option<Bytes>, RecordError> {
    match usize::try_from(length) {
        _ if length == -1 => Ok(None),
        Ok(length) if length <= buf.remaining() => Ok(Some(buf.split_to(length))),
        Ok(_) => Err(short(what)),
        Err(_) => Err(RecordError::Malformed { what, reason: format!("negative length {length}") }),
    }
}

fn get_nullable_string(buf: &mut Bytes, what: &'static str) -> Result<Option<String>, RecordError> {
    let length = get_i16(buf, what)?;
    get_piece(buf, i64::from(length), what)?
        .map(|piece| {
            String::from_utf8(piece.to_vec()).map_err(|_| RecordError::Malformed { what, reason: "not UTF-8".into() })
        })
        .transpose()
}

fn get_string(buf: &mut Bytes, what: &'static str) -> Result<String, RecordError> {
    get_nullable_string(buf, what)?.ok_or(RecordError::Malformed { what, reason: "null".into() })
}

fn get_bytes(buf: &mut Bytes, what: &'static str) -> Result<Bytes, RecordError> {
    let length = get_i32(buf, what)?;
    get_piece(buf, i64::from(length), what)?.ok_or(RecordError::Malformed { what, reason: "null".into() })
}

/// The key of an offset commit.
pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(2 + 2 + group.len() + 2 + topic.len() + 4);
    buf.put_i16(OFFSET_COMMIT_KEY_VERSION);
    put_string(&mut buf, Some(group));
    put_string(&mut buf, Some(topic));
    buf.put_i32(partition);
    buf.freeze()
}

/// The key of a group's metadata.
pub fn group_key(group: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(2 + 2 + group.len());
    buf.put_i16(GROUP_METADATA_KEY_VERSION);
    put_string(&mut buf, Some(group));
    buf.freeze()
}

/// The value of an offset commit.
pub fn offset_value(value: &OffsetValue) -> Bytes {
    let mut buf = BytesMut::with_capacity(2 + 8 + 4 + 2 + value.metadata.len() + 8);
    buf.put_i16(OFFSET_COMMIT_VALUE_VERSION);
    buf.put_i64(value.offset);
    buf.put_i32(value.leader_epoch);
    put_string(&mut buf, Some(&value.metadata));
    buf.put_i64(value.commit_timestamp_ms);
    buf.freeze()
}

/// The value of a group's metadata.
pub fn group_value(record: &GroupRecord) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_METADATA_VALUE_VERSION);
    put_string(&mut buf, Some(record.protocol_type.as_deref().unwrap_or("")));
    buf.put_i32(record.generation_id);
    put_string(&mut buf, record.protocol_name.as_deref());
    put_string(&mut buf, record.leader.as_deref());
    buf.put_i64(record.current_state_timestamp_ms);
    let count = i32::try_from(record.members.len()).expect("group size is bounded by group_size_max");
    buf.put_i32(count);
    for member in &record.members {
        put_string(&mut buf, Some(&member.member_id));
        put_string(&mut buf, member.group_instance_id.as_deref());
        put_string(&mut buf, Some(&member.client_id));
        put_string(&mut buf, Some(&member.client_host));
        buf.put_i32(member.rebalance_timeout_ms);
        buf.put_i32(member.session_timeout_ms);
        put_bytes(&mut buf, &member.subscription);
        put_bytes(&mut buf, &member.assignment);
    }
    buf.freeze()
}

/// Reads a key.
pub fn decode_key(mut key: Bytes) -> Result<RecordKey, RecordError> {
    let version: i16 = get_i16(&mut key, "key")?;
    match version {
        0 | 1 => Ok(RecordKey::Offset {
            group: get_string(&mut key, "offset key group")?,
            topic: get_string(&mut key, "offset key topic")?,
            partition: get_i32(&mut key, "offset key partition")?,
        }),
        2 => Ok(RecordKey::Group { group: get_string(&mut key, "group key")? }),
        version => Err(RecordError::UnknownVersion { what: "key", version }),
    }
}

/// Reads an offset value (versions 0–3).
pub fn decode_offset_value(mut value: Bytes) -> Result<OffsetValue, RecordError> {
    let version: i16 = get_i16(&mut value, "offset value")?;
    if !(0..=3).contains(&version) {
        return Err(RecordError::UnknownVersion { what: "offset value", version });
    }
    let offset = get_i64(&mut value, "offset")?;
    let leader_epoch = if version >= 3 { get_i32(&mut value, "leader epoch")? } else { -1 };
    let metadata = get_string(&mut value, "metadata")?;
    let commit_timestamp_ms = get_i64(&mut value, "commit timestamp")?;
    if version == 1 {
        let _expire_timestamp: i64 = get_i64(&mut value, "expire timestamp")?;
    }
    Ok(OffsetValue { offset, leader_epoch, metadata, commit_timestamp_ms })
}

/// Reads a group value (versions 0–3).
pub fn decode_group_value(mut value: Bytes) -> Result<GroupRecord, RecordError> {
    let version: i16 = get_i16(&mut value, "group value")?;
    if !(0..=3).contains(&version) {
        return Err(RecordError::UnknownVersion { what: "group value", version });
    }
    let protocol_type: String = get_string(&mut value, "protocol type")?;
    let generation_id = get_i32(&mut value, "generation")?;
    let protocol_name = get_nullable_string(&mut value, "protocol")?;
    let leader = get_nullable_string(&mut value, "leader")?;
    let current_state_timestamp_ms = if version >= 2 { get_i64(&mut value, "state timestamp")? } else { -1 };
    let count: i32 = get_i32(&mut value, "member count")?;
    let count = usize::try_from(count).unwrap_or(0);
    if count > value.remaining() / MEMBER_BYTES_MIN {
        return Err(RecordError::Malformed {
            what: "group value",
            reason: format!("{count} members cannot fit in {} bytes", value.remaining()),
        });
    }
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        let member_id = get_string(&mut value, "member id")?;
        let group_instance_id = if version >= 3 { get_nullable_string(&mut value, "group instance id")? } else { None };
        let client_id = get_string(&mut value, "client id")?;
        let client_host = get_string(&mut value, "client host")?;
        let rebalance_timeout_ms = if version >= 1 { get_i32(&mut value, "rebalance timeout")? } else { -1 };
        let session_timeout_ms = get_i32(&mut value, "session timeout")?;
        let subscription: Bytes = get_bytes(&mut value, "subscription")?;
        let assignment: Bytes = get_bytes(&mut value, "assignment")?;
        let rebalance_timeout_ms = if rebalance_timeout_ms < 0 { session_timeout_ms } else { rebalance_timeout_ms };
        members.push(MemberRecord {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupRecord {
        protocol_type: (!protocol_type.is_empty()).then_some(protocol_type),
        generation_id,
        protocol_name,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let key = offset_key("g", "orders", 7);
        assert_eq!(
            decode_key(key).unwrap(),
            RecordKey::Offset { group: "g".into(), topic: "orders".into(), partition: 7 }
        );
        assert_eq!(decode_key(group_key("g")).unwrap(), RecordKey::Group { group: "g".into() });
        let offset = OffsetValue { offset: 42, leader_epoch: 3, metadata: "m".into(), commit_timestamp_ms: 1_700 };
        assert_eq!(decode_offset_value(offset_value(&offset)).unwrap(), offset);
        let group = GroupRecord {
            protocol_type: Some("consumer".into()),
            generation_id: 5,
            protocol_name: Some("range".into()),
            leader: Some("a-1".into()),
            current_state_timestamp_ms: 99,
            members: vec![MemberRecord {
                member_id: "a-1".into(),
                group_instance_id: Some("i".into()),
                client_id: "a".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(decode_group_value(group_value(&group)).unwrap(), group);
    }

    #[test]
    fn the_key_bytes_are_kafkas() {
        // OffsetCommitKey v1 for ("g", "t", 1): version, then two strings and an int32.
        assert_eq!(&offset_key("g", "t", 1)[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 1]);
        assert_eq!(&group_key("g")[..], &[0, 2, 0, 1, b'g']);
    }

    #[test]
    fn damaged_records_are_errors_not_panics_or_huge_allocations() {
        assert!(decode_key(Bytes::from_static(&[0])).is_err());
        assert!(matches!(decode_key(Bytes::from_static(&[0, 9])), Err(RecordError::UnknownVersion { .. })));
        // A group value claiming two billion members in a few bytes.
        let mut value = BytesMut::new();
        value.put_i16(3);
        put_string(&mut value, Some("consumer"));
        value.put_i32(1);
        put_string(&mut value, None);
        put_string(&mut value, None);
        value.put_i64(0);
        value.put_i32(i32::MAX);
        assert!(matches!(decode_group_value(value.freeze()), Err(RecordError::Malformed { .. })));
        let offset =
            offset_value(&OffsetValue { offset: 1, leader_epoch: -1, metadata: String::new(), commit_timestamp_ms: 0 });
        assert!(decode_offset_value(offset.slice(..offset.len() - 1)).is_err());
    }
}
