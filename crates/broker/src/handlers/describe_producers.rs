//! DescribeProducers (v0): the idempotent producers with state on each partition asked for,
//! answered by the partition's leader (others get NOT_LEADER_OR_FOLLOWER, as from Kafka, and
//! the admin client asks the leader).
//!
//! Each producer is reported with its epoch, the sequence of its last record and the max
//! timestamp of its last batch. Sluice has no transactions, so no producer has a coordinator
//! epoch or an open transaction: both fields are Kafka's "none" (-1).

use sluice_proto::kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use sluice_proto::kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use crate::broker::Broker;
use crate::handlers::resolve;
use crate::kafka_code;
use crate::partition::blocking;
use crate::partition::producer_state::ActiveProducer;

/// Kafka's "no coordinator epoch" (the producer is not transactional).
const NO_COORDINATOR_EPOCH: i32 = -1;
/// Kafka's "no open transaction".
const NO_TRANSACTION_START_OFFSET: i64 = -1;

/// Answers DescribeProducers. Reading a partition's producer state takes its lock, which an
/// append holds across its write: done on the blocking pool, as the other partition reads are.
pub async fn handle(broker: &Broker, request: DescribeProducersRequest) -> DescribeProducersResponse {
    let view = broker.view();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
        for &index in &topic.partition_indexes {
            let base = PartitionResponse::default().with_partition_index(index);
            let found = match resolve(broker, &view, topic.name.0.as_str(), index) {
                Ok(partition) => {
                    blocking(move || partition.active_producers()).await.map_err(|error| error.kafka_error_code())
                }
                Err(code) => Err(code),
            };
            partitions.push(match found {
                Ok(producers) => base
                    .with_error_code(kafka_code::NONE)
                    .with_active_producers(producers.into_iter().map(producer_state).collect()),
                Err(code) => base.with_error_code(code),
            });
        }
        topics.push(TopicResponse::default().with_name(topic.name).with_partitions(partitions));
    }
    DescribeProducersResponse::default().with_topics(topics)
}

fn producer_state(producer: ActiveProducer) -> ProducerState {
    ProducerState::default()
        .with_producer_id(ProducerId(producer.producer_id))
        .with_producer_epoch(i32::from(producer.producer_epoch))
        .with_last_sequence(producer.last_sequence)
        .with_last_timestamp(producer.last_timestamp)
        .with_coordinator_epoch(NO_COORDINATOR_EPOCH)
        .with_current_txn_start_offset(NO_TRANSACTION_START_OFFSET)
}
