//! Committed offsets on the wire: OffsetCommit (v2–v8) and OffsetFetch (v2–v8).
//!
//! A commit names the member committing — its generation and member id — or, for a "simple"
//! commit (an admin's reset, a consumer with manually assigned partitions), generation -1 and
//! an empty member id, which the coordinator accepts only while the group has no members.
//! The committed offset is the offset of the next record to read, as in Kafka.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_proto::kafka_protocol::error::ResponseError;
use sluice_proto::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use sluice_proto::kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use sluice_proto::kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::cluster::topic_name;
use crate::consumer::TopicPartition;
use crate::error::{ClientError, Result};
use crate::group::coordinator::{check_coordinator, Coordinator};

/// ILLEGAL_GENERATION.
pub const ILLEGAL_GENERATION: i16 = 22;
/// UNKNOWN_MEMBER_ID.
pub const UNKNOWN_MEMBER_ID: i16 = 25;
/// REBALANCE_IN_PROGRESS.
pub const REBALANCE_IN_PROGRESS: i16 = 27;
/// FENCED_INSTANCE_ID.
pub const FENCED_INSTANCE_ID: i16 = 82;
/// Generation of a commit from outside the group ("simple" commit).
pub const NO_GENERATION: i32 = -1;
/// OffsetFetch v8 is the first that batches groups.
const OFFSET_FETCH_BATCHED_VERSION: i16 = 8;

/// Who commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitIdentity {
    /// The member's generation, or [`NO_GENERATION`].
    pub generation_id: i32,
    /// The member id, or empty.
    pub member_id: String,
}

impl CommitIdentity {
    /// A commit from outside the group (allowed only while it has no members).
    pub fn simple() -> CommitIdentity {
        CommitIdentity { generation_id: NO_GENERATION, member_id: String::new() }
    }
}

/// Whether a commit error code means this member's generation is over.
pub fn is_generation_error(code: i16) -> bool {
    matches!(code, ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID | REBALANCE_IN_PROGRESS | FENCED_INSTANCE_ID)
}

/// The request; its fields are the same in every version we speak (`group_instance_id`, v7+,
/// stays null: no static membership).
fn commit_request(
    group_id: &str,
    identity: &CommitIdentity,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (partition, offset) in offsets {
        let entry = OffsetCommitRequestPartition::default()
            .with_partition_index(partition.partition)
            .with_committed_offset(*offset)
            .with_committed_leader_epoch(-1)
            .with_committed_metadata(Some(StrBytes::from_static_str("")));
        match topics.last_mut().filter(|topic| topic.name.0.as_str() == partition.topic) {
            Some(topic) => topic.partitions.push(entry),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name(&partition.topic))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group_id.to_string())))
        .with_generation_id_or_member_epoch(identity.generation_id)
        .with_member_id(StrBytes::from_string(identity.member_id.clone()))
        .with_retention_time_ms(-1)
        .with_topics(topics)
}

/// The first error of a commit answer: coordinator errors are retriable (the whole commit is
/// sent again: a commit is idempotent), generation errors are [`ClientError::CommitFailed`].
fn check_commit(group_id: &str, response: OffsetCommitResponse) -> Result<()> {
    for topic in &response.topics {
        for partition in &topic.partitions {
            let code = partition.error_code;
            if code == 0 {
                continue;
            }
            let context =
                || format!("commit {}-{} for group {group_id:?}", topic.name.0.as_str(), partition.partition_index);
            check_coordinator(code, context)?;
            if is_generation_error(code) {
                let error = ResponseError::try_from_code(code).unwrap_or(ResponseError::Unknown(code));
                return Err(ClientError::CommitFailed { group: group_id.to_string(), error, code });
            }
            return Err(ClientError::kafka(code, context(), None));
        }
    }
    Ok(())
}

/// Commits `offsets` (the next offset to read, per partition) as `identity`.
pub async fn commit(
    coordinator: &Coordinator,
    identity: &CommitIdentity,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let group_id = coordinator.group_id();
    coordinator
        .call(
            "offset commit",
            Duration::ZERO,
            |_version| commit_request(group_id, identity, offsets),
            |response| check_commit(group_id, response),
        )
        .await?;
    tracing::debug!(
        group = group_id,
        generation = identity.generation_id,
        partitions = offsets.len(),
        "committed offsets"
    );
    Ok(())
}

fn fetch_request(version: i16, group_id: &str, partitions: Option<&[TopicPartition]>) -> OffsetFetchRequest {
    let group = GroupId(StrBytes::from_string(group_id.to_string()));
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for partition in partitions.unwrap_or_default() {
        by_topic.entry(partition.topic.as_str()).or_default().push(partition.partition);
    }
    if version >= OFFSET_FETCH_BATCHED_VERSION {
        let topics = partitions.map(|_| {
            by_topic
                .iter()
                .map(|(topic, indexes)| {
                    OffsetFetchRequestTopics::default()
                        .with_name(topic_name(topic))
                        .with_partition_indexes(indexes.clone())
                })
                .collect()
        });
        return OffsetFetchRequest::default()
            .with_groups(vec![OffsetFetchRequestGroup::default().with_group_id(group).with_topics(topics)]);
    }
    let topics = partitions.map(|_| {
        by_topic
            .iter()
            .map(|(topic, indexes)| {
                OffsetFetchRequestTopic::default().with_name(topic_name(topic)).with_partition_indexes(indexes.clone())
            })
            .collect()
    });
    OffsetFetchRequest::default().with_group_id(group).with_topics(topics)
}

/// The committed offsets of an OffsetFetch answer (either shape), partitions without one left
/// out; a group or partition error code is returned as an error.
fn read_fetch(group_id: &str, response: OffsetFetchResponse) -> Result<BTreeMap<TopicPartition, i64>> {
    let mut entries: Vec<(String, i32, i64, i16)> = Vec::new();
    let group_code = match response.groups.into_iter().next() {
        Some(group) => {
            for topic in group.topics {
                for p in topic.partitions {
                    entries.push((topic.name.0.to_string(), p.partition_index, p.committed_offset, p.error_code));
                }
            }
            group.error_code
        }
        None => {
            for topic in response.topics {
                for p in topic.partitions {
                    entries.push((topic.name.0.to_string(), p.partition_index, p.committed_offset, p.error_code));
                }
            }
            response.error_code
        }
    };
    let context = || format!("fetch the committed offsets of group {group_id:?}");
    ClientError::check(group_code, context)?;
    let mut committed = BTreeMap::new();
    for (topic, partition, offset, code) in entries {
        if code != 0 {
            return Err(ClientError::kafka(code, format!("fetch the committed offset of {topic}-{partition}"), None));
        }
        if offset >= 0 {
            committed.insert(TopicPartition::new(topic, partition), offset);
        }
    }
    Ok(committed)
}

/// The committed offsets of `partitions` (every committed offset of the group for `None`);
/// partitions with no committed offset are absent.
pub async fn fetch(
    coordinator: &Coordinator,
    partitions: Option<&[TopicPartition]>,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let group_id = coordinator.group_id();
    coordinator
        .call(
            "offset fetch",
            Duration::ZERO,
            |version| fetch_request(version, group_id, partitions),
            |response| read_fetch(group_id, response),
        )
        .await
}
