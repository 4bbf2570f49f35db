//! AlterPartitionReassignments and ListPartitionReassignments (Kafka's KIP-455; `sluice topic
//! reassign`, `kafka-reassign-partitions`, `Admin.alterPartitionReassignments`).
//!
//! Like ElectLeaders, any broker answers: each partition's change is one metadata command
//! (`StartReassignment`, or `CancelReassignment` for a null replica list), proposed through
//! Raft (forwarded to its leader) and answered once applied here. The state machine validates
//! the target and completes the move later, when every target replica is in the ISR
//! (`sluice_meta::reassignment`); this handler only converts. NOT_CONTROLLER comes back, as for
//! every metadata change, when no Raft leader is reachable.
//!
//! Error codes (Kafka's): UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist,
//! INVALID_REPLICA_ASSIGNMENT for an empty, repeating or unknown-broker target,
//! NO_REASSIGNMENT_IN_PROGRESS for cancelling nothing, and (v1, KIP-860) INVALID_REPLICATION_FACTOR
//! for a target of another size than the current replicas when the request does not allow it.

use sluice_meta::{BrokerId, Command, MetadataView};
use sluice_proto::kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use sluice_proto::kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use sluice_proto::kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId as WireBrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::handlers::{find_partition, meta_error, str_bytes};
use crate::kafka_code;

/// Answers AlterPartitionReassignments (v0 and v1).
pub async fn alter(
    broker: &Broker,
    version: i16,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    // Version 0 has no flag: the replica count may change, as before KIP-860.
    let allow_factor_change = version < 1 || request.allow_replication_factor_change;
    let view = broker.view();
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in topic.partitions {
            let target = partition.replicas.map(|replicas| replicas.into_iter().map(|id| id.0).collect::<Vec<_>>());
            let (code, message) =
                alter_one(broker, &view, &name, partition.partition_index, target, allow_factor_change).await;
            partitions.push(
                ReassignablePartitionResponse::default()
                    .with_partition_index(partition.partition_index)
                    .with_error_code(code)
                    .with_error_message(message),
            );
        }
        responses.push(ReassignableTopicResponse::default().with_name(topic.name).with_partitions(partitions));
    }
    let response = AlterPartitionReassignmentsResponse::default().with_error_code(kafka_code::NONE);
    let response =
        if version >= 1 { response.with_allow_replication_factor_change(allow_factor_change) } else { response };
    response.with_responses(responses)
}

async fn alter_one(
    broker: &Broker,
    view: &MetadataView,
    topic: &str,
    partition: i32,
    target: Option<Vec<BrokerId>>,
    allow_factor_change: bool,
) -> (i16, Option<StrBytes>) {
    let record = match find_partition(view, topic, partition) {
        Ok(record) => record,
        Err(code) => return (code, Some(str_bytes("This server does not host this topic-partition."))),
    };
    let index = partition as u32;
    let command = match target {
        None => Command::CancelReassignment { topic_id: record.topic_id, partition: index },
        Some(target) => {
            let current = match view.reassignment(record.topic_id, index) {
                Some(reassignment) => reassignment.original.len(),
                None => record.partitions[partition as usize].replicas.len(),
            };
            if !allow_factor_change && target.len() != current {
                let message = format!("the target has {} replicas, the partition {current}", target.len());
                return (kafka_code::INVALID_REPLICATION_FACTOR, Some(str_bytes(message)));
            }
            Command::StartReassignment { topic_id: record.topic_id, partition: index, target }
        }
    };
    let cancel = matches!(command, Command::CancelReassignment { .. });
    match broker.propose_and_apply(command).await {
        Ok(_) => {
            tracing::info!(topic, partition, cancel, "partition reassignment changed on request");
            (kafka_code::NONE, None)
        }
        Err(error) => meta_error(&error),
    }
}

/// Answers ListPartitionReassignments v0: the partitions being moved, with their full replica
/// set during the move, the replicas being added and those being removed. Topics or partitions
/// asked for that do not exist or are not moving are left out, as in Kafka.
pub fn list(broker: &Broker, request: &ListPartitionReassignmentsRequest) -> ListPartitionReassignmentsResponse {
    let view = broker.view();
    let wanted: Option<Vec<(String, Vec<i32>)>> = request
        .topics
        .as_ref()
        .map(|topics| topics.iter().map(|topic| (topic.name.0.to_string(), topic.partition_indexes.clone())).collect());
    let mut topics = Vec::new();
    for topic in view.topics.values() {
        let Some(moving) = view.reassignments.get(&topic.topic_id) else { continue };
        let asked: Option<&Vec<i32>> = match &wanted {
            None => None,
            Some(wanted) => match wanted.iter().find(|(name, _)| *name == topic.name) {
                Some((_, partitions)) => Some(partitions),
                None => continue,
            },
        };
        let mut partitions = Vec::new();
        for (index, reassignment) in moving {
            let index_wire = *index as i32;
            if asked.is_some_and(|asked| !asked.contains(&index_wire)) {
                continue;
            }
            let Some(record) = topic.partitions.get(*index as usize) else { continue };
            partitions.push(
                OngoingPartitionReassignment::default()
                    .with_partition_index(index_wire)
                    .with_replicas(wire_ids(&record.replicas))
                    .with_adding_replicas(wire_ids(&reassignment.adding()))
                    .with_removing_replicas(wire_ids(&reassignment.removing())),
            );
        }
        if !partitions.is_empty() {
            topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(str_bytes(topic.name.clone())))
                    .with_partitions(partitions),
            );
        }
    }
    ListPartitionReassignmentsResponse::default().with_error_code(kafka_code::NONE).with_topics(topics)
}

fn wire_ids(ids: &[BrokerId]) -> Vec<WireBrokerId> {
    ids.iter().map(|id| WireBrokerId(*id)).collect()
}
