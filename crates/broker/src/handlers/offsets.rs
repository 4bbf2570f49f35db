//! Committed offsets: OffsetCommit (v2–v8), OffsetFetch (v1–v8), OffsetDelete (v0).
//!
//! A commit is checked in this order, and nothing of it is stored unless the group accepts it:
//! group id (INVALID_GROUP_ID), coordinator (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS),
//! the group's generation and member ([`sluice_group`]: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
//! REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID), then per partition: the topic and partition exist
//! (UNKNOWN_TOPIC_OR_PARTITION) and the metadata fits [`OFFSET_METADATA_BYTES_MAX`]
//! (OFFSET_METADATA_TOO_LARGE). The accepted partitions are written as one batch to
//! `__consumer_offsets` and acknowledged once committed there.

use std::collections::BTreeMap;

use sluice_group::GroupDescription;
use sluice_meta::MetadataView;
use sluice_proto::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use sluice_proto::kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use sluice_proto::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use sluice_proto::kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::coordinator::records::OffsetValue;
use crate::coordinator::shard::now_ms;
use crate::coordinator::{CommitPartition, CommitRequest, OFFSET_METADATA_BYTES_MAX};
use crate::handlers::groups::group_shard;
use crate::handlers::{find_partition, str_bytes};
use crate::kafka_code;

/// OFFSET_METADATA_TOO_LARGE: the commit's metadata string is over the limit.
pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;

/// Answers OffsetCommit.
pub async fn offset_commit(broker: &Broker, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let view = broker.view();
    let commit_timestamp_ms = now_ms();
    let partitions: Vec<CommitPartition> = request
        .topics
        .iter()
        .flat_map(|topic| topic.partitions.iter().map(move |partition| (topic, partition)))
        .map(|(topic, partition)| {
            let metadata = partition.committed_metadata.as_ref().map_or("", |m| m.as_str());
            let value = if let Err(code) = find_partition(&view, &topic.name, partition.partition_index) {
                Err(code)
            } else if metadata.len() > OFFSET_METADATA_BYTES_MAX {
                Err(OFFSET_METADATA_TOO_LARGE)
            } else {
                Ok(OffsetValue {
                    offset: partition.committed_offset,
                    leader_epoch: partition.committed_leader_epoch,
                    metadata: metadata.to_string(),
                    commit_timestamp_ms,
                })
            };
            CommitPartition { topic: topic.name.to_string(), partition: partition.partition_index, value }
        })
        .collect();
    let codes = match group_shard(broker, &request.group_id) {
        Ok(shard) => {
            shard
                .commit(CommitRequest {
                    group_id: request.group_id.to_string(),
                    member_id: request.member_id.to_string(),
                    group_instance_id: request.group_instance_id.as_ref().map(|id| id.to_string()),
                    generation_id: request.generation_id_or_member_epoch,
                    partitions,
                })
                .await
        }
        Err(code) => vec![code; partitions.len()],
    };
    let mut codes = codes.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            OffsetCommitResponseTopic::default().with_name(topic.name.clone()).with_partitions(
                topic
                    .partitions
                    .iter()
                    .map(|partition| {
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(partition.partition_index)
                            .with_error_code(codes.next().unwrap_or(kafka_code::UNKNOWN_SERVER_ERROR))
                    })
                    .collect(),
            )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// One partition's committed offset as OffsetFetch reports it.
struct Fetched {
    topic: String,
    partition: i32,
    value: Option<OffsetValue>,
    error_code: i16,
}

/// The committed offsets of one group (all of them when `topics` is `None`), or a group-level
/// error code.
async fn fetch_group(
    broker: &Broker,
    view: &MetadataView,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Vec<Fetched>, i16> {
    let shard = broker.groups.shard_for(view, group_id)?;
    let wanted = topics
        .map(|topics| topics.into_iter().flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p))).collect());
    Ok(shard
        .fetch_offsets(group_id, wanted)
        .await
        .into_iter()
        .map(|((topic, partition), value)| {
            // Kafka answers a partition of an unknown topic with -1 and no error.
            Fetched { topic, partition, value, error_code: kafka_code::NONE }
        })
        .collect())
}

/// Groups fetched offsets by topic, keeping the first-seen topic order.
fn by_topic(fetched: Vec<Fetched>) -> Vec<(String, Vec<Fetched>)> {
    let mut order: Vec<String> = Vec::new();
    let mut grouped: BTreeMap<String, Vec<Fetched>> = BTreeMap::new();
    for item in fetched {
        if !grouped.contains_key(&item.topic) {
            order.push(item.topic.clone());
        }
        grouped.entry(item.topic.clone()).or_default().push(item);
    }
    order
        .into_iter()
        .map(|topic| {
            let items = grouped.remove(&topic).unwrap_or_default();
            (topic, items)
        })
        .collect()
}

fn committed(value: &Option<OffsetValue>) -> (i64, i32, StrBytes) {
    match value {
        Some(value) => (value.offset, value.leader_epoch, str_bytes(value.metadata.clone())),
        None => (-1, -1, str_bytes("")),
    }
}

/// Answers OffsetFetch: v1–v7 for one group (v2+ with a top-level error code and "all topics"
/// as a null topic list), v8 for a batch of groups.
pub async fn offset_fetch(broker: &Broker, version: i16, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let view = broker.view();
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in &request.groups {
            let topics = group.topics.as_ref().map(|topics| {
                topics.iter().map(|topic| (topic.name.to_string(), topic.partition_indexes.clone())).collect()
            });
            let answer = OffsetFetchResponseGroup::default().with_group_id(group.group_id.clone());
            groups.push(match fetch_group(broker, &view, &group.group_id, topics).await {
                Ok(fetched) => answer.with_error_code(kafka_code::NONE).with_topics(
                    by_topic(fetched)
                        .into_iter()
                        .map(|(topic, items)| {
                            OffsetFetchResponseTopics::default().with_name(TopicName(str_bytes(topic))).with_partitions(
                                items
                                    .iter()
                                    .map(|item| {
                                        let (offset, epoch, metadata) = committed(&item.value);
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(item.partition)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(metadata))
                                            .with_error_code(item.error_code)
                                    })
                                    .collect(),
                            )
                        })
                        .collect(),
                ),
                Err(code) => answer.with_error_code(code),
            });
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let requested: Option<Vec<(String, Vec<i32>)>> = request
        .topics
        .as_ref()
        .map(|topics| topics.iter().map(|topic| (topic.name.to_string(), topic.partition_indexes.clone())).collect());
    let fetched = match fetch_group(broker, &view, &request.group_id, requested.clone()).await {
        Ok(fetched) => Ok(fetched),
        // v1 has no top-level error: every requested partition carries it.
        Err(code) if version < 2 => Ok(requested
            .into_iter()
            .flatten()
            .flat_map(|(topic, partitions)| {
                partitions.into_iter().map(move |partition| Fetched {
                    topic: topic.clone(),
                    partition,
                    value: None,
                    error_code: code,
                })
            })
            .collect()),
        Err(code) => Err(code),
    };
    let (error_code, fetched) = match fetched {
        Ok(fetched) => (kafka_code::NONE, fetched),
        Err(code) => (code, Vec::new()),
    };
    let topics = by_topic(fetched)
        .into_iter()
        .map(|(topic, items)| {
            OffsetFetchResponseTopic::default().with_name(TopicName(str_bytes(topic))).with_partitions(
                items
                    .iter()
                    .map(|item| {
                        let (offset, epoch, metadata) = committed(&item.value);
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(item.partition)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(if version >= 5 { epoch } else { -1 })
                            .with_metadata(Some(metadata))
                            .with_error_code(item.error_code)
                    })
                    .collect(),
            )
        })
        .collect();
    OffsetFetchResponse::default().with_error_code(if version >= 2 { error_code } else { 0 }).with_topics(topics)
}

/// Whether a consumer group member's subscription names `topic` (OffsetDelete refuses offsets
/// of topics the group still consumes). Unreadable subscriptions count as subscribed.
fn subscribed(description: &GroupDescription, topic: &str) -> bool {
    use sluice_proto::kafka_protocol::messages::ConsumerProtocolSubscription;
    use sluice_proto::kafka_protocol::protocol::Decodable;
    description.members.iter().any(|member| {
        let mut bytes = member.metadata.clone();
        if bytes.len() < 2 {
            return true;
        }
        let version = bytes::Buf::get_i16(&mut bytes);
        match ConsumerProtocolSubscription::decode(&mut bytes, version.clamp(0, 3)) {
            Ok(subscription) => subscription.topics.iter().any(|t| t.as_str() == topic),
            Err(_) => true,
        }
    })
}

/// Answers OffsetDelete: removes committed offsets of partitions the group does not consume
/// (GROUP_SUBSCRIBED_TO_TOPIC otherwise; GROUP_ID_NOT_FOUND for an unknown group).
pub async fn offset_delete(broker: &Broker, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let view = broker.view();
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|topic| topic.partitions.iter().map(move |p| (topic.name.to_string(), p.partition_index)))
        .collect();
    let (error_code, codes) = match group_shard(broker, &request.group_id) {
        Ok(shard) => shard.delete_offsets(&request.group_id, partitions.clone(), subscribed).await,
        Err(code) => (code, Vec::new()),
    };
    if error_code != kafka_code::NONE {
        return OffsetDeleteResponse::default().with_error_code(error_code);
    }
    let mut codes = codes.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            OffsetDeleteResponseTopic::default().with_name(topic.name.clone()).with_partitions(
                topic
                    .partitions
                    .iter()
                    .map(|partition| {
                        let code = codes.next().unwrap_or(kafka_code::NONE);
                        let code =
                            find_partition(&view, &topic.name, partition.partition_index).map_or_else(|c| c, |_| code);
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(partition.partition_index)
                            .with_error_code(code)
                    })
                    .collect(),
            )
        })
        .collect();
    OffsetDeleteResponse::default().with_error_code(kafka_code::NONE).with_topics(topics)
}
