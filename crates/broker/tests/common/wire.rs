//! Kafka requests the process and disk tests share, in real bytes: create a topic, produce a
//! batch, read a partition back, ask for a producer id.

use bytes::Bytes;
use sluice_proto::kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use sluice_proto::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use sluice_proto::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use sluice_proto::kafka_protocol::messages::*;
use sluice_proto::kafka_protocol::protocol::StrBytes;
use sluice_proto::records::{build_record_batch, decode_record_batches, BatchOptions, ProducedRecord};
use tokio::net::TcpStream;

use super::call;

/// Produce version the helpers speak.
pub const PRODUCE_VERSION: i16 = 9;
/// Fetch version the helpers speak.
pub const FETCH_VERSION: i16 = 12;

/// A topic name.
pub fn topic_name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

/// One batch of `values`, keyed `key-<i>`.
pub fn batch_of(values: &[Vec<u8>]) -> Bytes {
    let records: Vec<ProducedRecord> = values
        .iter()
        .enumerate()
        .map(|(i, value)| ProducedRecord {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(value.clone())),
            headers: Vec::new(),
            timestamp_ms: 1_000 + i as i64,
        })
        .collect();
    build_record_batch(&records, &BatchOptions::default()).unwrap()
}

/// CreateTopics with replication factor 1; returns the topic's error code.
pub async fn create_topic(stream: &mut TcpStream, topic: &str, partitions: i32) -> i16 {
    create_topic_configured(stream, topic, partitions, &[]).await
}

/// CreateTopics with replication factor 1 and the topic `configs` given; returns the topic's
/// error code.
pub async fn create_topic_configured(
    stream: &mut TcpStream,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> i16 {
    let configs = configs
        .iter()
        .map(|(key, value)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(key.to_string()))
                .with_value(Some(StrBytes::from_string(value.to_string())))
        })
        .collect();
    let request = CreateTopicsRequest::default().with_timeout_ms(5_000).with_topics(vec![CreatableTopic::default()
        .with_name(topic_name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(configs)]);
    let response: CreateTopicsResponse = call(stream, ApiKey::CreateTopics, 7, &request).await;
    response.topics[0].error_code
}

/// Creates `topic` with one partition (replication factor 1) and the topic `configs` given;
/// asserts it was created.
pub async fn create_topic_with_configs(stream: &mut TcpStream, topic: &str, configs: &[(&str, &str)]) {
    assert_eq!(create_topic_configured(stream, topic, 1, configs).await, 0, "create {topic}");
}

/// Deletes `topic` (DeleteTopics v4); the error code.
pub async fn delete_topic(stream: &mut TcpStream, topic: &str) -> i16 {
    let request = DeleteTopicsRequest::default().with_timeout_ms(5_000).with_topic_names(vec![topic_name(topic)]);
    let response: DeleteTopicsResponse = call(stream, ApiKey::DeleteTopics, 4, &request).await;
    response.responses[0].error_code
}

/// Produces `records` to one partition with acks=all; returns (error code, base offset).
pub async fn produce(stream: &mut TcpStream, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5_000).with_topic_data(vec![
        TopicProduceData::default().with_name(topic_name(topic)).with_partition_data(vec![
            PartitionProduceData::default().with_index(partition).with_records(Some(records)),
        ]),
    ]);
    let response: ProduceResponse = call(stream, ApiKey::Produce, PRODUCE_VERSION, &request).await;
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

/// Reads the partition from offset 0 up to its high watermark, fetch after fetch; returns
/// every record value in offset order with its offset, or the first non-zero error code.
pub async fn read_all(stream: &mut TcpStream, topic: &str, partition: i32) -> Result<Vec<(i64, Bytes)>, i16> {
    let mut values = Vec::new();
    let mut offset = 0;
    loop {
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(4 * 1024 * 1024)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default().with_topic(topic_name(topic)).with_partitions(vec![
                FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1024 * 1024),
            ])]);
        let response: FetchResponse = call(stream, ApiKey::Fetch, FETCH_VERSION, &request).await;
        let answer = &response.responses[0].partitions[0];
        if answer.error_code != 0 {
            return Err(answer.error_code);
        }
        if offset >= answer.high_watermark {
            return Ok(values);
        }
        let data = answer.records.clone().unwrap_or_default();
        let decoded = decode_record_batches(&data).expect("fetched batches decode");
        assert!(!decoded.batches.is_empty(), "a fetch below the high watermark returned no batch");
        for batch in decoded.batches {
            for record in batch.records {
                values.push((record.offset, record.value.clone().unwrap_or_default()));
            }
            offset = batch.header.last_offset() + 1;
        }
    }
}

/// InitProducerId for an idempotent producer; returns (error code, producer id).
pub async fn init_producer_id(stream: &mut TcpStream) -> (i16, i64) {
    let request = InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000);
    let response: InitProducerIdResponse = call(stream, ApiKey::InitProducerId, 4, &request).await;
    (response.error_code, response.producer_id.0)
}
