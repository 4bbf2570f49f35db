//! DeleteRecords (Kafka's `kafka-delete-records`, `Admin.deleteRecords`): moves the log start
//! offset of each partition on its leader to the given offset (`-1`: the high watermark).
//! Answers with the new log start as the partition's low watermark, or OFFSET_OUT_OF_RANGE
//! above the high watermark, NOT_LEADER_OR_FOLLOWER off the leader, UNKNOWN_TOPIC_OR_PARTITION.
//!
//! Followers move their log start when the leader's next fetch answer carries it, bounded by
//! their own high watermark. Kafka answers only once every replica has moved (or at the
//! request's timeout); Sluice answers once the leader has, so the low watermark it reports is
//! the leader's (docs/compatibility.md).

use sluice_proto::kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use sluice_proto::kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::broker::Broker;
use crate::handlers::{resolve, Lookup};
use crate::kafka_code;
use crate::partition::blocking;

/// Answers a DeleteRecords request.
pub async fn handle(broker: &Broker, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let view = broker.view();
    let mut lookups: Vec<Lookup<i64>> = Vec::new();
    for (topic_slot, topic) in request.topics.iter().enumerate() {
        for partition in &topic.partitions {
            lookups.push(Lookup {
                topic_slot,
                index: partition.partition_index,
                args: partition.offset,
                resolved: resolve(broker, &view, topic.name.0.as_str(), partition.partition_index),
            });
        }
    }
    let answers = blocking(move || {
        Ok(lookups
            .into_iter()
            .map(|lookup| {
                let base = DeleteRecordsPartitionResult::default().with_partition_index(lookup.index);
                let deleted = lookup
                    .resolved
                    .and_then(|p| p.delete_records_before(lookup.args).map_err(|e| e.kafka_error_code()));
                let answer = match deleted {
                    Ok(low_watermark) => base.with_error_code(kafka_code::NONE).with_low_watermark(low_watermark),
                    Err(code) => base.with_error_code(code).with_low_watermark(-1),
                };
                (lookup.topic_slot, answer)
            })
            .collect::<Vec<_>>())
    })
    .await
    .unwrap_or_default();
    let mut topics: Vec<DeleteRecordsTopicResult> =
        request.topics.iter().map(|topic| DeleteRecordsTopicResult::default().with_name(topic.name.clone())).collect();
    for (topic_slot, answer) in answers {
        topics[topic_slot].partitions.push(answer);
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
