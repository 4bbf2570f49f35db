//! OffsetForLeaderEpoch (KIP-101, KIP-320): for a leader epoch, the offset where it ended in
//! this leader's log. Followers use it to find where their log diverged; consumers (librdkafka,
//! the Java client) use it to detect that a leader change truncated data they had read.

use sluice_proto::kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use sluice_proto::kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::broker::Broker;
use crate::handlers::{resolve, Lookup};
use crate::kafka_code;
use crate::partition::blocking;

/// Kafka's "no epoch" and "no offset" answer.
use crate::partition::replica::UNDEFINED_EPOCH_END as UNDEFINED;

/// Answers OffsetForLeaderEpoch.
pub async fn handle(broker: &Broker, request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let view = broker.view();
    let mut lookups: Vec<Lookup<(i32, i32)>> = Vec::new();
    for (topic_slot, topic) in request.topics.iter().enumerate() {
        let name = topic.topic.0.as_str();
        for partition in &topic.partitions {
            lookups.push(Lookup {
                topic_slot,
                index: partition.partition,
                args: (partition.leader_epoch, partition.current_leader_epoch),
                resolved: resolve(broker, &view, name, partition.partition),
            });
        }
    }
    let answers = blocking(move || {
        Ok(lookups
            .into_iter()
            .map(|lookup| {
                let (epoch, current_leader_epoch) = lookup.args;
                let (topic_slot, resolved) = (lookup.topic_slot, lookup.resolved);
                let base = EpochEndOffset::default().with_partition(lookup.index);
                let found = resolved.and_then(|p| {
                    p.end_offset_for_epoch(epoch, current_leader_epoch).map_err(|e| e.kafka_error_code())
                });
                let answer = match found {
                    Ok((leader_epoch, end_offset)) => base
                        .with_error_code(kafka_code::NONE)
                        .with_leader_epoch(leader_epoch)
                        .with_end_offset(end_offset),
                    Err(code) => base.with_error_code(code).with_leader_epoch(UNDEFINED.0).with_end_offset(UNDEFINED.1),
                };
                (topic_slot, answer)
            })
            .collect::<Vec<_>>())
    })
    .await
    .unwrap_or_default();
    let mut topics: Vec<OffsetForLeaderTopicResult> = request
        .topics
        .iter()
        .map(|topic| OffsetForLeaderTopicResult::default().with_topic(topic.topic.clone()))
        .collect();
    for (topic_slot, answer) in answers {
        topics[topic_slot].partitions.push(answer);
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
