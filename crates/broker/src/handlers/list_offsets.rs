//! ListOffsets: the earliest offset (`-2`), the latest (`-1`, the high watermark), from v7 the
//! first record with the largest timestamp (`-3`, KIP-734), or the first offset whose record
//! timestamp is at least the given one (the log's time index). Versions 8 and 9 add the tiered
//! storage queries, answered as Kafka answers them without remote storage: the earliest local
//! offset (`-4`, what `kafka-get-offsets --time -4` asks) is the log start, the latest tiered
//! offset (`-5`) is none (-1). A query below the version's smallest is INVALID_REQUEST.
//!
//! With Kafka's debugging replica id (`replica_id = -2`, as `kafka-get-offsets` and replica
//! health tools send) any replica answers from its own log, follower or leader, and "latest" is
//! its log end offset: that is how `sluice topic describe` shows each replica's lag.

use sluice_proto::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use sluice_proto::kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::broker::Broker;
use crate::handlers::{resolve, since, Lookup};
use crate::kafka_code;
use crate::partition::blocking;
use crate::partition::partition::{
    EARLIEST_LOCAL_TIMESTAMP, EARLIEST_TIMESTAMP, LATEST_TIERED_TIMESTAMP, MAX_TIMESTAMP,
};

/// Kafka's `ListOffsetsRequest.DEBUGGING_REPLICA_ID`: read this broker's replica, leader or not.
pub const DEBUGGING_REPLICA_ID: i32 = -2;

/// Answers a ListOffsets request.
pub async fn handle(broker: &Broker, version: i16, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let view = broker.view();
    let debugging = request.replica_id.0 == DEBUGGING_REPLICA_ID;
    let mut lookups: Vec<Lookup<(i64, i32)>> = Vec::new();
    for (topic_slot, topic) in request.topics.iter().enumerate() {
        let name = topic.name.0.as_str();
        for partition in &topic.partitions {
            // -2 (earliest), -1 (latest) and real timestamps; from v7 -3 (max timestamp), from
            // v8 -4 (earliest local), from v9 -5 (latest tiered).
            let smallest_query = match version {
                9.. => LATEST_TIERED_TIMESTAMP,
                8 => EARLIEST_LOCAL_TIMESTAMP,
                7 => MAX_TIMESTAMP,
                _ => EARLIEST_TIMESTAMP,
            };
            let resolved = if partition.timestamp < smallest_query {
                Err(kafka_code::INVALID_REQUEST)
            } else {
                resolve(broker, &view, name, partition.partition_index)
            };
            lookups.push(Lookup {
                topic_slot,
                index: partition.partition_index,
                args: (partition.timestamp, partition.current_leader_epoch),
                resolved,
            });
        }
    }
    let answers = blocking(move || {
        Ok(lookups
            .into_iter()
            .map(|lookup| {
                let base = ListOffsetsPartitionResponse::default().with_partition_index(lookup.index);
                let (timestamp, epoch) = lookup.args;
                let found = lookup.resolved.and_then(|p| {
                    let answer = if debugging { p.local_offset_for(timestamp) } else { p.offset_for(timestamp, epoch) };
                    answer.map_err(|e| e.kafka_error_code())
                });
                let answer = match found {
                    Ok((offset, found_timestamp, leader_epoch)) => base
                        .with_error_code(kafka_code::NONE)
                        .with_offset(offset)
                        .with_timestamp(found_timestamp)
                        .with_leader_epoch(since(version, 4, leader_epoch, -1)),
                    Err(code) => base.with_error_code(code).with_offset(-1).with_timestamp(-1).with_leader_epoch(-1),
                };
                (lookup.topic_slot, answer)
            })
            .collect::<Vec<_>>())
    })
    .await
    .unwrap_or_default();
    let mut topics: Vec<ListOffsetsTopicResponse> =
        request.topics.iter().map(|topic| ListOffsetsTopicResponse::default().with_name(topic.name.clone())).collect();
    for (topic_slot, answer) in answers {
        topics[topic_slot].partitions.push(answer);
    }
    ListOffsetsResponse::default().with_topics(topics)
}
