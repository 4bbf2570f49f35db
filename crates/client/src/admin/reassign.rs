//! Partition reassignment (Kafka's `alterPartitionReassignments` and
//! `listPartitionReassignments`, KIP-455): start or cancel moves, and list the moves in
//! progress. The broker completes a move by itself once every target replica is in sync; a
//! caller that waits polls [`Admin::list_partition_reassignments`] until its partitions are gone
//! from the list.

use std::collections::BTreeMap;

use sluice_proto::kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use sluice_proto::kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use sluice_proto::kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId as WireBrokerId, ListPartitionReassignmentsRequest,
};

use super::{timeout_ms, Admin};
use crate::cluster::topic_name;
use crate::error::{ClientError, Result};

/// One partition's move: to `replicas` (preferred leader first), or `None` to cancel the move in
/// progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentChange {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Target replicas; `None` cancels.
    pub replicas: Option<Vec<i32>>,
}

/// The broker's answer for one partition: `error_code` 0 when the move started (or was
/// cancelled), else Kafka's code (3 UNKNOWN_TOPIC_OR_PARTITION, 39 INVALID_REPLICA_ASSIGNMENT,
/// 85 NO_REASSIGNMENT_IN_PROGRESS, 38 INVALID_REPLICATION_FACTOR, 41 NOT_CONTROLLER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentResult {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Kafka error code.
    pub error_code: i16,
    /// The broker's message, if any.
    pub message: Option<String>,
}

/// A move in progress (Kafka's `PartitionReassignment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The replica set during the move: target first, then the replicas being removed.
    pub replicas: Vec<i32>,
    /// Replicas being added (copying from the leader until they are in sync).
    pub adding: Vec<i32>,
    /// Replicas being removed once the move completes.
    pub removing: Vec<i32>,
}

impl Admin {
    /// Starts or cancels partition moves. Per-partition outcomes, in the broker's order.
    pub async fn alter_partition_reassignments(
        &self,
        changes: &[ReassignmentChange],
    ) -> Result<Vec<ReassignmentResult>> {
        let mut by_topic: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
        for change in changes {
            let replicas = change.replicas.as_ref().map(|ids| ids.iter().map(|id| WireBrokerId(*id)).collect());
            by_topic
                .entry(change.topic.as_str())
                .or_default()
                .push(ReassignablePartition::default().with_partition_index(change.partition).with_replicas(replicas));
        }
        let topics = by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                ReassignableTopic::default().with_name(topic_name(topic)).with_partitions(partitions)
            })
            .collect();
        let request = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(timeout_ms())
            .with_allow_replication_factor_change(true)
            .with_topics(topics);
        let response = self.cluster.call_controller(&request).await?;
        ClientError::check(response.error_code, || "alter partition reassignments".to_string())?;
        Ok(response
            .responses
            .iter()
            .flat_map(|topic| {
                topic.partitions.iter().map(|partition| ReassignmentResult {
                    topic: topic.name.to_string(),
                    partition: partition.partition_index,
                    error_code: partition.error_code,
                    message: partition.error_message.as_ref().map(|m| m.to_string()),
                })
            })
            .collect())
    }

    /// The moves in progress: of `partitions` (topic, partition) only, or all when `None`.
    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<OngoingReassignment>> {
        let topics = partitions.map(|partitions| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (topic, partition) in partitions {
                by_topic.entry(topic.as_str()).or_default().push(*partition);
            }
            by_topic
                .into_iter()
                .map(|(topic, indexes)| {
                    ListPartitionReassignmentsTopics::default()
                        .with_name(topic_name(topic))
                        .with_partition_indexes(indexes)
                })
                .collect()
        });
        let request = ListPartitionReassignmentsRequest::default().with_timeout_ms(timeout_ms()).with_topics(topics);
        let response = self.cluster.call_controller(&request).await?;
        ClientError::check(response.error_code, || "list partition reassignments".to_string())?;
        let ids = |ids: &[WireBrokerId]| ids.iter().map(|id| id.0).collect::<Vec<i32>>();
        Ok(response
            .topics
            .iter()
            .flat_map(|topic| {
                topic.partitions.iter().map(move |partition| OngoingReassignment {
                    topic: topic.name.to_string(),
                    partition: partition.partition_index,
                    replicas: ids(&partition.replicas),
                    adding: ids(&partition.adding_replicas),
                    removing: ids(&partition.removing_replicas),
                })
            })
            .collect())
    }
}
