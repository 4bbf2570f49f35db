//! ElectLeaders (Kafka's `kafka-leader-election`, `Admin.electLeaders`, `sluice cluster
//! elect-leaders`): preferred or unclean elections asked for by an operator.
//!
//! Each partition's election is planned from this broker's view of the metadata
//! ([`sluice_meta::election::plan_election`], pure) and proposed as one command; the command
//! carries the partition epoch it was planned from, so a plan that raced with another change is
//! refused by the state machine rather than applied. The answer comes once the command is
//! applied here. With `topic_partitions` null every partition is considered and, as in Kafka's
//! controller, partitions that need no election are left out of the answer.

use sluice_meta::election::{plan_election, ElectionRefusal, ElectionType};
use sluice_proto::kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use sluice_proto::kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::handlers::{meta_error, since, str_bytes};
use crate::kafka_code;

/// Answers ElectLeaders.
pub async fn handle(broker: &Broker, version: i16, request: ElectLeadersRequest) -> ElectLeadersResponse {
    // Version 0 has no election type: preferred only.
    let wire_type = since(version, 1, request.election_type, 0);
    let Some(kind) = ElectionType::from_wire(wire_type) else {
        return ElectLeadersResponse::default()
            .with_error_code(since(version, 1, kafka_code::INVALID_REQUEST, kafka_code::NONE))
            .with_replica_election_results(Vec::new());
    };
    let view = broker.view();
    let (wanted, all) = match &request.topic_partitions {
        Some(topics) => (
            topics
                .iter()
                .map(|topic| (topic.topic.0.to_string(), topic.partitions.clone()))
                .collect::<Vec<(String, Vec<i32>)>>(),
            false,
        ),
        None => (
            view.topics
                .values()
                .map(|topic| (topic.name.clone(), (0..topic.partitions.len() as i32).collect()))
                .collect(),
            true,
        ),
    };
    let mut results = Vec::with_capacity(wanted.len());
    for (topic, partitions) in wanted {
        let mut partition_results = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let (code, message) = elect(broker, &view, &topic, partition, kind).await;
            if all && code == kafka_code::ELECTION_NOT_NEEDED {
                continue;
            }
            partition_results.push(
                PartitionResult::default()
                    .with_partition_id(partition)
                    .with_error_code(code)
                    .with_error_message(message),
            );
        }
        if !partition_results.is_empty() || !all {
            results.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(str_bytes(topic)))
                    .with_partition_result(partition_results),
            );
        }
    }
    ElectLeadersResponse::default().with_error_code(kafka_code::NONE).with_replica_election_results(results)
}

async fn elect(
    broker: &Broker,
    view: &sluice_meta::MetadataView,
    topic: &str,
    partition: i32,
    kind: ElectionType,
) -> (i16, Option<StrBytes>) {
    let Ok(index) = u32::try_from(partition) else {
        return refused(ElectionRefusal::UnknownPartition);
    };
    let command = match plan_election(view, topic, index, kind) {
        Ok(command) => command,
        Err(refusal) => return refused(refusal),
    };
    match broker.propose_and_apply(command).await {
        Ok(_) => {
            tracing::info!(topic, partition, ?kind, "leader elected on request");
            (kafka_code::NONE, None)
        }
        Err(error) => meta_error(&error),
    }
}

fn refused(refusal: ElectionRefusal) -> (i16, Option<StrBytes>) {
    let (code, message) = match refusal {
        ElectionRefusal::UnknownPartition => {
            (kafka_code::UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")
        }
        ElectionRefusal::NotNeeded => {
            (kafka_code::ELECTION_NOT_NEEDED, "Leader election not needed for topic partition.")
        }
        ElectionRefusal::PreferredNotAvailable => {
            (kafka_code::PREFERRED_LEADER_NOT_AVAILABLE, "The preferred replica is not live or not in the ISR.")
        }
        ElectionRefusal::NoEligibleLeader => {
            (kafka_code::ELIGIBLE_LEADERS_NOT_AVAILABLE, "No replica of the partition is live.")
        }
    };
    (code, Some(str_bytes(message)))
}
