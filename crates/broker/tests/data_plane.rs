//! The broker's data plane over real TCP, with real bytes: every bad-input case of issue 4
//! gets its Kafka error code and appends nothing; idempotent produce answers duplicates with
//! their original offsets and refuses gaps, across a restart; fetch long-polls (returns within
//! max_wait on an empty partition, early when data arrives) and honours its byte limits;
//! ListOffsets finds earliest, latest and by timestamp; every api in the ApiVersions table
//! answers at both ends of its range; acks=all produces racing on one partition from several
//! connections are each answered at once (the published high watermark never falls behind).
//!
//! Method: a whole broker (`Node`, see `common`) on ephemeral ports with a temporary data
//! directory; requests encoded with `kafka-protocol`, batches built with `sluice-proto`'s
//! builder; the log end offset is read from the partition itself to prove nothing was appended.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::wire::create_topic_configured;
use common::{call, TestBroker};
use sluice_broker::kafka_code;
use sluice_meta::Command;
use sluice_proto::kafka_protocol::messages::create_topics_request::CreatableTopic;
use sluice_proto::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use sluice_proto::kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use sluice_proto::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use sluice_proto::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use sluice_proto::kafka_protocol::messages::*;
use sluice_proto::kafka_protocol::protocol::StrBytes;
use sluice_proto::records::{build_record_batch, BatchOptions, ProducedRecord, ProducerIdentity};
use tokio::net::TcpStream;

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

fn records(count: usize, value_bytes: usize, first_timestamp_ms: i64) -> Vec<ProducedRecord> {
    (0..count)
        .map(|i| ProducedRecord {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; value_bytes])),
            headers: Vec::new(),
            timestamp_ms: first_timestamp_ms + i as i64,
        })
        .collect()
}

fn batch(count: usize, value_bytes: usize) -> Bytes {
    build_record_batch(&records(count, value_bytes, 1_000), &BatchOptions::default()).unwrap()
}

fn idempotent_batch(producer_id: i64, base_sequence: i32, count: usize) -> Bytes {
    let producer = ProducerIdentity { producer_id, producer_epoch: 0, base_sequence };
    build_record_batch(&records(count, 10, 1_000), &BatchOptions { producer, ..BatchOptions::default() }).unwrap()
}

fn produce_request(acks: i16, parts: Vec<(&str, i32, Option<Bytes>)>) -> ProduceRequest {
    let topics = parts
        .into_iter()
        .map(|(topic, partition, records)| {
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(records)])
        })
        .collect();
    ProduceRequest::default().with_acks(acks).with_timeout_ms(5_000).with_topic_data(topics)
}

/// Produces one partition's records; returns (error code, base offset).
async fn produce(stream: &mut TcpStream, topic: &str, partition: i32, records: Option<Bytes>) -> (i16, i64) {
    let response: ProduceResponse =
        call(stream, ApiKey::Produce, PRODUCE_VERSION, &produce_request(-1, vec![(topic, partition, records)])).await;
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

fn log_end(broker: &TestBroker, topic: &str, partition: i32) -> i64 {
    broker.broker.partitions.get(topic, partition).unwrap().offsets().unwrap().0
}

fn fetch_request(parts: &[(&str, i32, i64, i32)], max_wait_ms: i32, min_bytes: i32, max_bytes: i32) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (topic, partition, offset, partition_max_bytes) in parts {
        let fetch = FetchPartition::default()
            .with_partition(*partition)
            .with_fetch_offset(*offset)
            .with_partition_max_bytes(*partition_max_bytes);
        match topics.iter_mut().find(|t| t.topic.0.as_str() == *topic) {
            Some(existing) => existing.partitions.push(fetch),
            None => topics.push(FetchTopic::default().with_topic(name(topic)).with_partitions(vec![fetch])),
        }
    }
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(topics)
}

async fn fetch(stream: &mut TcpStream, request: &FetchRequest) -> FetchResponse {
    call(stream, ApiKey::Fetch, FETCH_VERSION, request).await
}

#[tokio::test]
async fn bad_produce_input_gets_kafka_error_codes_and_appends_nothing() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "t", 1, &[("max.message.bytes", "2000")]).await, 0);
    let (code, base) = produce(&mut stream, "t", 0, Some(batch(3, 10))).await;
    assert_eq!((code, base), (0, 0));

    // CRC mismatch: one byte of a record changed.
    let mut corrupt = batch(2, 10).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(produce(&mut stream, "t", 0, Some(corrupt.into())).await.0, kafka_code::CORRUPT_MESSAGE);
    // A batch cut short.
    let truncated = batch(2, 10).slice(..40);
    assert_eq!(produce(&mut stream, "t", 0, Some(truncated)).await.0, kafka_code::CORRUPT_MESSAGE);
    // Larger than the topic's max.message.bytes.
    assert_eq!(produce(&mut stream, "t", 0, Some(batch(1, 3_000))).await.0, kafka_code::MESSAGE_TOO_LARGE);
    // No records at all.
    assert_eq!(produce(&mut stream, "t", 0, None).await.0, kafka_code::INVALID_REQUEST);
    assert_eq!(produce(&mut stream, "t", 0, Some(Bytes::new())).await.0, kafka_code::INVALID_REQUEST);
    // Names and partitions that do not exist (produce never creates topics).
    assert_eq!(produce(&mut stream, "bad name!", 0, Some(batch(1, 1))).await.0, kafka_code::INVALID_TOPIC_EXCEPTION);
    assert_eq!(produce(&mut stream, "missing", 0, Some(batch(1, 1))).await.0, kafka_code::UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(produce(&mut stream, "t", 7, Some(batch(1, 1))).await.0, kafka_code::UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(produce(&mut stream, "t", -1, Some(batch(1, 1))).await.0, kafka_code::UNKNOWN_TOPIC_OR_PARTITION);
    // acks outside {-1, 0, 1}.
    let response: ProduceResponse =
        call(&mut stream, ApiKey::Produce, PRODUCE_VERSION, &produce_request(2, vec![("t", 0, Some(batch(1, 1)))]))
            .await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, kafka_code::INVALID_REQUIRED_ACKS);
    assert_eq!(log_end(&broker, "t", 0), 3, "a refused produce appended something");

    // One request, two partitions: the good one is appended, the bad one is not.
    assert_eq!(create_topic_configured(&mut stream, "u", 1, &[]).await, 0);
    let mut corrupt = batch(2, 10).to_vec();
    corrupt[70] ^= 0x01;
    let mixed = produce_request(1, vec![("u", 0, Some(batch(4, 10))), ("t", 0, Some(corrupt.into()))]);
    let response: ProduceResponse = call(&mut stream, ApiKey::Produce, PRODUCE_VERSION, &mixed).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(response.responses[1].partition_responses[0].error_code, kafka_code::CORRUPT_MESSAGE);
    assert_eq!((log_end(&broker, "u", 0), log_end(&broker, "t", 0)), (4, 3));
    // The same partition twice in one request: the second is refused.
    let twice = produce_request(1, vec![("u", 0, Some(batch(1, 10))), ("u", 0, Some(batch(1, 10)))]);
    let response: ProduceResponse = call(&mut stream, ApiKey::Produce, PRODUCE_VERSION, &twice).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(response.responses[1].partition_responses[0].error_code, kafka_code::INVALID_REQUEST);
    assert_eq!(log_end(&broker, "u", 0), 5);
}

#[tokio::test]
async fn a_partition_led_by_another_broker_is_not_leader_or_follower() {
    let broker = TestBroker::start().await;
    // A second broker registers (it never runs): placement gives it some leaderships.
    broker
        .broker
        .meta
        .propose(Command::RegisterBroker {
            broker_id: 2,
            incarnation_id: uuid::Uuid::new_v4(),
            kafka_addr: "127.0.0.1:1".into(),
            internal_addr: "127.0.0.1:2".into(),
            rack: None,
        })
        .await
        .unwrap();
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "split", 2, &[]).await, 0);
    let view = broker.broker.view();
    let remote = view.topics["split"].partitions.iter().find(|p| p.leader == Some(2)).expect("a partition led by 2");
    let partition = remote.partition as i32;
    assert_eq!(produce(&mut stream, "split", partition, Some(batch(1, 1))).await.0, kafka_code::NOT_LEADER_OR_FOLLOWER);
    let response = fetch(&mut stream, &fetch_request(&[("split", partition, 0, 1024)], 0, 0, 1024)).await;
    assert_eq!(response.responses[0].partitions[0].error_code, kafka_code::NOT_LEADER_OR_FOLLOWER);
}

#[tokio::test]
async fn idempotent_duplicates_keep_their_offsets_and_gaps_are_refused_across_a_restart() {
    let temp = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_config(sluice_broker::NodeConfig::ephemeral(1, temp.path())).await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "idem", 1, &[]).await, 0);
    let init: InitProducerIdResponse = call(
        &mut stream,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000),
    )
    .await;
    assert_eq!(init.error_code, 0);
    let producer_id = init.producer_id.0;
    assert!(producer_id >= 0);

    assert_eq!(produce(&mut stream, "idem", 0, Some(idempotent_batch(producer_id, 0, 3))).await, (0, 0));
    assert_eq!(produce(&mut stream, "idem", 0, Some(idempotent_batch(producer_id, 3, 2))).await, (0, 3));
    // Retries of both batches: the original offsets, nothing appended.
    assert_eq!(produce(&mut stream, "idem", 0, Some(idempotent_batch(producer_id, 0, 3))).await, (0, 0));
    assert_eq!(produce(&mut stream, "idem", 0, Some(idempotent_batch(producer_id, 3, 2))).await, (0, 3));
    assert_eq!(log_end(&broker, "idem", 0), 5);
    // A retry damaged in flight is corrupt, not "already written".
    let mut damaged = idempotent_batch(producer_id, 0, 3).to_vec();
    *damaged.last_mut().unwrap() ^= 0x40;
    assert_eq!(produce(&mut stream, "idem", 0, Some(damaged.into())).await.0, kafka_code::CORRUPT_MESSAGE);
    // A gap.
    let (code, _) = produce(&mut stream, "idem", 0, Some(idempotent_batch(producer_id, 9, 1))).await;
    assert_eq!(code, kafka_code::OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_eq!(log_end(&broker, "idem", 0), 5);
    drop(stream);

    broker.stop().await;
    let broker = TestBroker::start_config(sluice_broker::NodeConfig::ephemeral(1, temp.path())).await;
    let mut stream = broker.connect().await;
    // The producer state was rebuilt from the log.
    assert_eq!(produce(&mut stream, "idem", 0, Some(idempotent_batch(producer_id, 3, 2))).await, (0, 3));
    let (code, _) = produce(&mut stream, "idem", 0, Some(idempotent_batch(producer_id, 6, 1))).await;
    assert_eq!(code, kafka_code::OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_eq!(produce(&mut stream, "idem", 0, Some(idempotent_batch(producer_id, 5, 1))).await, (0, 5));
    assert_eq!(log_end(&broker, "idem", 0), 6);
    // A new producer id after the restart does not repeat the old one.
    let init: InitProducerIdResponse =
        call(&mut stream, ApiKey::InitProducerId, 0, &InitProducerIdRequest::default().with_transactional_id(None))
            .await;
    assert_ne!(init.producer_id.0, producer_id);
    broker.stop().await;
}

#[tokio::test]
async fn topics_and_data_survive_a_restart_and_logs_close_cleanly() {
    let temp = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_config(sluice_broker::NodeConfig::ephemeral(1, temp.path())).await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "durable", 2, &[("retention.ms", "-1")]).await, 0);
    produce(&mut stream, "durable", 1, Some(batch(5, 100))).await;
    drop(stream);
    broker.stop().await;
    // Clean shutdown: the checkpoint's flags byte has the clean bit (docs/design/log-format.md).
    let checkpoint = std::fs::read(temp.path().join("logs/durable-1/partition.checkpoint")).unwrap();
    assert_eq!(checkpoint[5] & 1, 1, "log not closed cleanly");

    let broker = TestBroker::start_config(sluice_broker::NodeConfig::ephemeral(1, temp.path())).await;
    let mut stream = broker.connect().await;
    let view = broker.broker.view();
    assert_eq!(view.topics["durable"].partitions.len(), 2);
    assert_eq!(view.topics["durable"].config.retention_ms, -1);
    let response = fetch(&mut stream, &fetch_request(&[("durable", 1, 0, 1 << 20)], 0, 0, 1 << 20)).await;
    let partition = &response.responses[0].partitions[0];
    assert_eq!((partition.error_code, partition.high_watermark), (0, 5));
    assert_eq!(partition.records.as_ref().unwrap().len(), batch(5, 100).len());
    broker.stop().await;
}

#[tokio::test]
async fn a_fetch_on_an_empty_partition_returns_within_max_wait() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "empty", 1, &[]).await, 0);
    let started = Instant::now();
    let response = fetch(&mut stream, &fetch_request(&[("empty", 0, 0, 1 << 20)], 400, 1, 1 << 20)).await;
    let elapsed = started.elapsed();
    let partition = &response.responses[0].partitions[0];
    assert_eq!((partition.error_code, partition.high_watermark), (0, 0));
    assert!(partition.records.as_ref().unwrap().is_empty());
    assert!(elapsed >= Duration::from_millis(390), "returned after {elapsed:?}, before max_wait");
    assert!(elapsed < Duration::from_millis(3_000), "returned after {elapsed:?}");
}

#[tokio::test]
async fn a_waiting_fetch_returns_early_when_data_arrives_and_does_not_block_other_clients() {
    let broker = TestBroker::start().await;
    let mut admin = broker.connect().await;
    assert_eq!(create_topic_configured(&mut admin, "live", 1, &[]).await, 0);
    let mut consumer = broker.connect().await;
    let started = Instant::now();
    let waiting = tokio::spawn(async move {
        let response = fetch(&mut consumer, &fetch_request(&[("live", 0, 0, 1 << 20)], 10_000, 1, 1 << 20)).await;
        (response, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another connection is served while the fetch waits.
    let produced_at = started.elapsed();
    assert_eq!(produce(&mut admin, "live", 0, Some(batch(2, 10))).await, (0, 0));
    let (response, elapsed) = waiting.await.unwrap();
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.high_watermark, 2);
    assert_eq!(partition.records.as_ref().unwrap().len(), batch(2, 10).len());
    assert!(elapsed < produced_at + Duration::from_millis(3_000), "woke {elapsed:?} after start, max_wait was 10 s");
}

#[tokio::test]
async fn fetch_honours_partition_and_response_byte_limits_but_returns_one_whole_batch() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "big", 2, &[]).await, 0);
    let one = batch(1, 1_000);
    for partition in 0..2 {
        for _ in 0..5 {
            produce(&mut stream, "big", partition, Some(one.clone())).await;
        }
    }
    let size = one.len() as i32;
    // partition_max_bytes of 2.5 batches: two whole batches per partition.
    let response =
        fetch(&mut stream, &fetch_request(&[("big", 0, 0, size * 5 / 2), ("big", 1, 0, size * 5 / 2)], 0, 0, 1 << 20))
            .await;
    for partition in &response.responses[0].partitions {
        assert_eq!(partition.records.as_ref().unwrap().len(), one.len() * 2);
    }
    // max_bytes smaller than one batch: the first partition still gets one whole batch, the
    // second none.
    let response =
        fetch(&mut stream, &fetch_request(&[("big", 0, 0, 1 << 20), ("big", 1, 0, 1 << 20)], 0, 0, 10)).await;
    let partitions = &response.responses[0].partitions;
    assert_eq!(partitions[0].records.as_ref().unwrap().len(), one.len());
    assert!(partitions[1].records.as_ref().unwrap().is_empty());
    assert_eq!(partitions[1].high_watermark, 5);
    // Out of range.
    let response = fetch(&mut stream, &fetch_request(&[("big", 0, 99, 1 << 20)], 0, 0, 1 << 20)).await;
    assert_eq!(response.responses[0].partitions[0].error_code, kafka_code::OFFSET_OUT_OF_RANGE);
    // Unknown topic in a fetch.
    let response = fetch(&mut stream, &fetch_request(&[("nope", 0, 0, 1 << 20)], 0, 0, 1 << 20)).await;
    assert_eq!(response.responses[0].partitions[0].error_code, kafka_code::UNKNOWN_TOPIC_OR_PARTITION);
}

#[tokio::test]
async fn list_offsets_finds_earliest_latest_and_by_timestamp() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "times", 1, &[]).await, 0);
    for batch_index in 0..4 {
        let batch = build_record_batch(&records(10, 5, 10_000 + batch_index * 100), &BatchOptions::default()).unwrap();
        produce(&mut stream, "times", 0, Some(batch)).await;
    }
    assert_eq!(list_offset(&mut stream, -2).await, (0, 0, -1));
    assert_eq!(list_offset(&mut stream, -1).await, (0, 40, -1));
    assert_eq!(list_offset(&mut stream, 10_205).await, (0, 25, 10_205));
    assert_eq!(list_offset(&mut stream, 10_150).await, (0, 20, 10_200));
    assert_eq!(list_offset(&mut stream, 99_999).await, (0, -1, -1));
}

async fn list_offset(stream: &mut TcpStream, timestamp: i64) -> (i16, i64, i64) {
    let (code, offset, found, _) = list_offset_at(stream, "times", 6, timestamp).await;
    (code, offset, found)
}

/// ListOffsets of partition 0 of `topic` at `version`: (error code, offset, timestamp, leader epoch).
async fn list_offset_at(stream: &mut TcpStream, topic: &str, version: i16, timestamp: i64) -> (i16, i64, i64, i32) {
    let request =
        ListOffsetsRequest::default().with_replica_id((-1).into()).with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(timestamp)])]);
    let response: ListOffsetsResponse = call(stream, ApiKey::ListOffsets, version, &request).await;
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.offset, answer.timestamp, answer.leader_epoch)
}

/// Regression (the differential admin test, issue 16: Kafka's Java client got
/// UnsupportedVersionException for `OffsetSpec.earliestLocal()` and `latestTiered()`): the
/// tiered-storage queries of ListOffsets v8 and v9 are answered as Apache Kafka 4.1 answers
/// them without remote storage. Method: 10 records, DeleteRecords before 4; v9's earliest
/// local (-4) is the log start 4 with its leader epoch, as earliest (-2) is; latest tiered
/// (-5) is offset -1, timestamp -1, epoch -1; each query is refused below its version
/// (-4 at v7, -5 at v8) with INVALID_REQUEST.
#[tokio::test]
async fn list_offsets_answers_the_tiered_storage_queries_as_kafka_without_remote_storage() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "tiers", 1, &[]).await, 0);
    produce(&mut stream, "tiers", 0, Some(batch(10, 5))).await;
    let request = DeleteRecordsRequest::default().with_timeout_ms(5_000).with_topics(vec![
        delete_records_request::DeleteRecordsTopic::default()
            .with_name(name("tiers"))
            .with_partitions(vec![delete_records_request::DeleteRecordsPartition::default().with_offset(4)]),
    ]);
    let response: DeleteRecordsResponse = call(&mut stream, ApiKey::DeleteRecords, 2, &request).await;
    assert_eq!(response.topics[0].partitions[0].low_watermark, 4);
    let earliest = list_offset_at(&mut stream, "tiers", 9, -2).await;
    assert_eq!(earliest, (0, 4, -1, 0));
    assert_eq!(list_offset_at(&mut stream, "tiers", 8, -4).await, earliest, "earliest local at v8");
    assert_eq!(list_offset_at(&mut stream, "tiers", 9, -4).await, earliest, "earliest local at v9");
    assert_eq!(list_offset_at(&mut stream, "tiers", 9, -5).await, (0, -1, -1, -1), "latest tiered");
    assert_eq!(list_offset_at(&mut stream, "tiers", 7, -4).await.0, kafka_code::INVALID_REQUEST, "-4 before v8");
    assert_eq!(list_offset_at(&mut stream, "tiers", 8, -5).await.0, kafka_code::INVALID_REQUEST, "-5 before v9");
}

#[tokio::test]
async fn metadata_auto_creates_valid_topics_only() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    let request = |topics: &[&str], allow: bool| {
        MetadataRequest::default().with_allow_auto_topic_creation(allow).with_topics(Some(
            topics.iter().map(|t| MetadataRequestTopic::default().with_name(Some(name(t)))).collect(),
        ))
    };
    let response: MetadataResponse =
        call(&mut stream, ApiKey::Metadata, 12, &request(&["made", "bad/name"], true)).await;
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(response.topics[0].partitions.len(), 1);
    assert_eq!(response.topics[0].partitions[0].leader_id.0, 1);
    assert_eq!(response.topics[1].error_code, kafka_code::INVALID_TOPIC_EXCEPTION);
    assert!(broker.broker.partitions.get("made", 0).is_some(), "partition not open before the answer");
    let response: MetadataResponse = call(&mut stream, ApiKey::Metadata, 12, &request(&["not-made"], false)).await;
    assert_eq!(response.topics[0].error_code, kafka_code::UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(response.brokers.len(), 1);
    assert_eq!(response.controller_id.0, 1);
}

#[tokio::test]
async fn topic_admin_errors_use_kafka_codes() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "a", 1, &[]).await, 0);
    assert_eq!(create_topic_configured(&mut stream, "a", 1, &[]).await, 36); // TOPIC_ALREADY_EXISTS
    assert_eq!(create_topic_configured(&mut stream, "no spaces", 1, &[]).await, kafka_code::INVALID_TOPIC_EXCEPTION);
    assert_eq!(create_topic_configured(&mut stream, "b", 1, &[("segment.ms", "0")]).await, kafka_code::INVALID_CONFIG);
    assert_eq!(create_topic_configured(&mut stream, "b", 1, &[("no.such.key", "1")]).await, kafka_code::INVALID_CONFIG);
    assert_eq!(create_topic_configured(&mut stream, "b", 0, &[]).await, 37); // INVALID_PARTITIONS
                                                                             // validate_only creates nothing.
    let request = CreateTopicsRequest::default().with_validate_only(true).with_topics(vec![CreatableTopic::default()
        .with_name(name("dry"))
        .with_num_partitions(-1)
        .with_replication_factor(-1)]);
    let response: CreateTopicsResponse = call(&mut stream, ApiKey::CreateTopics, 7, &request).await;
    assert_eq!(response.topics[0].error_code, 0);
    assert!(!broker.broker.view().topics.contains_key("dry"));

    let grow = |count| {
        CreatePartitionsRequest::default()
            .with_topics(vec![create_partitions_request::CreatePartitionsTopic::default()
                .with_name(name("a"))
                .with_count(count)])
    };
    let response: CreatePartitionsResponse = call(&mut stream, ApiKey::CreatePartitions, 3, &grow(1)).await;
    assert_eq!(response.results[0].error_code, 37);
    let response: CreatePartitionsResponse = call(&mut stream, ApiKey::CreatePartitions, 3, &grow(3)).await;
    assert_eq!(response.results[0].error_code, 0);
    assert!(broker.broker.partitions.get("a", 2).is_some());

    let delete = |topic: &str| DeleteTopicsRequest::default().with_topic_names(vec![name(topic)]);
    let response: DeleteTopicsResponse = call(&mut stream, ApiKey::DeleteTopics, 5, &delete("a")).await;
    assert_eq!(response.responses[0].error_code, 0);
    assert!(broker.broker.partitions.get("a", 0).is_none());
    assert!(!broker.data_dir.join("logs/a-0").exists(), "deleted topic's data is still on disk");
    let response: DeleteTopicsResponse = call(&mut stream, ApiKey::DeleteTopics, 5, &delete("a")).await;
    assert_eq!(response.responses[0].error_code, kafka_code::UNKNOWN_TOPIC_OR_PARTITION);
}

#[tokio::test]
async fn admin_http_answers_health_and_ready() {
    let broker = TestBroker::start().await;
    for path in ["/health", "/ready"] {
        let mut stream = TcpStream::connect(broker.admin).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{path}: {answer}");
    }
}

/// Goal: the web console answers every page over the admin listener, with the CSP header, and
/// a record whose key, value and header hold markup is shown escaped (never as markup), a value
/// longer than the shown limit with the truncation marker. Method: a real broker, one produced
/// batch, plain GETs of each page.
#[tokio::test]
async fn console_pages_answer_and_show_records_escaped() {
    use sluice_broker::console::CONSOLE_VALUE_BYTES_MAX;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    assert_eq!(create_topic_configured(&mut client, "web", 2, &[]).await, 0);
    let hostile = "<script>alert('k')</script>";
    let records = vec![
        ProducedRecord {
            key: Some(Bytes::from(hostile)),
            value: Some(Bytes::from(format!("{{\"html\": \"{hostile}\"}}"))),
            headers: vec![("h<i>".to_string(), Some(Bytes::from(hostile)))],
            timestamp_ms: 1_000,
        },
        ProducedRecord {
            key: None,
            value: Some(Bytes::from(vec![b'v'; CONSOLE_VALUE_BYTES_MAX + 1])),
            headers: Vec::new(),
            timestamp_ms: 1_001,
        },
    ];
    let batch = build_record_batch(&records, &BatchOptions::default()).unwrap();
    assert_eq!(produce(&mut client, "web", 0, Some(batch)).await, (0, 0));
    let admin = broker.admin;
    let get = |path: &'static str| async move {
        let mut stream = TcpStream::connect(admin).await.unwrap();
        stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    };
    for path in ["/", "/topics", "/topic?name=web", "/groups", "/console.css", "/console.js"] {
        let answer = get(path).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{path}: {answer}");
        assert!(answer.contains("content-security-policy: default-src 'none'"), "{path}: {answer}");
    }
    assert!(get("/").await.contains("<p id=\"health\" class=\"healthy\">"));
    assert!(get("/topic?name=web").await.contains("<tr data-partition=\"1\">"));
    assert!(get("/topic?name=none").await.starts_with("HTTP/1.1 404"));
    assert!(get("/group?id=none").await.starts_with("HTTP/1.1 404"));
    let page = get("/records?topic=web&partition=0&from=offset&offset=0&format=json").await;
    assert!(!page.contains("<script>alert"), "markup from a record reached the page: {page}");
    assert!(page.contains("&lt;script&gt;alert(&#39;k&#39;)&lt;/script&gt;"), "{page}");
    assert!(page.contains("<b>h&lt;i&gt;</b>"), "{page}");
    assert!(page.contains("&quot;html&quot;: &quot;&lt;script&gt;"), "JSON pretty-printed: {page}");
    assert!(
        page.contains(&format!("truncated: {CONSOLE_VALUE_BYTES_MAX} of {} bytes shown", CONSOLE_VALUE_BYTES_MAX + 1))
    );
    assert!(page.contains("data-offset=\"1\""), "{page}");
}

/// `GET /metrics` answers OpenMetrics text whose counters moved by what the workload did:
/// records and bytes in per topic, bytes out to consumers, requests per API, and the
/// scrape-time gauges (log end offset and high watermark per partition, leaders, connections),
/// and one fsync observed per batch of a `flush.messages=1` topic.
#[tokio::test]
async fn metrics_count_what_the_workload_did() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "measured", 2, &[]).await, 0);
    assert_eq!(create_topic_configured(&mut stream, "synced", 1, &[("flush.messages", "1")]).await, 0);
    for _ in 0..2 {
        assert_eq!(produce(&mut stream, "synced", 0, Some(batch(1, 10))).await.0, 0);
    }
    let mut produced_bytes = 0;
    for _ in 0..3 {
        let records = batch(5, 100);
        produced_bytes += records.len();
        assert_eq!(produce(&mut stream, "measured", 1, Some(records)).await.0, 0);
    }
    let response = fetch(&mut stream, &fetch_request(&[("measured", 1, 0, 1 << 20)], 0, 0, 1 << 20)).await;
    let fetched_bytes = response.responses[0].partitions[0].records.as_ref().map_or(0, |r| r.len());
    assert!(fetched_bytes > 0);
    // A long poll at the end of the log: its whole wait (300 ms, no data comes) is remote time.
    let waited = fetch(&mut stream, &fetch_request(&[("measured", 1, 15, 1 << 20)], 300, 1, 1 << 20)).await;
    assert!(waited.responses[0].partitions[0].records.as_ref().is_none_or(|r| r.is_empty()));

    let scrape = || async {
        let mut admin = TcpStream::connect(broker.admin).await.unwrap();
        admin.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        admin.read_to_string(&mut answer).await.unwrap();
        answer
    };
    let answer = scrape().await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("content-type: application/openmetrics-text"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    assert!(body.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
    let value = |series: &str| -> f64 {
        body.lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no series {series} in\n{body}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value(r#"sluice_topic_received_records_total{topic="measured"}"#), 15.0);
    assert_eq!(value(r#"sluice_topic_received_bytes_total{topic="measured"}"#), produced_bytes as f64);
    assert_eq!(value(r#"sluice_topic_sent_bytes_total{topic="measured",reader="consumer"}"#), fetched_bytes as f64);
    assert_eq!(value(r#"sluice_requests_total{api="Produce"}"#), 5.0);
    assert!(value(r#"sluice_request_duration_seconds_count{api="Produce"}"#) >= 5.0);
    // flush.messages=1: each of the two batches of "synced" was fsynced before its answer, and
    // no other topic here syncs by policy; nothing rolled.
    assert_eq!(value(r#"sluice_log_fsync_duration_seconds_count{cause="policy"}"#), 2.0);
    assert!(value(r#"sluice_log_fsync_duration_seconds_sum{cause="policy"}"#) > 0.0);
    assert_eq!(value(r#"sluice_log_fsync_duration_seconds_count{cause="roll"}"#), 0.0);
    assert_eq!(value(r#"sluice_log_end_offset{topic="measured",partition="1"}"#), 15.0);
    assert_eq!(value(r#"sluice_high_watermark{topic="measured",partition="1"}"#), 15.0);
    assert_eq!(value(r#"sluice_log_end_offset{topic="measured",partition="0"}"#), 0.0);
    assert!(value(r#"sluice_log_size_bytes{topic="measured",partition="1"}"#) >= produced_bytes as f64);
    assert_eq!(value(r#"sluice_partitions{role="leader"}"#), 3.0);
    assert_eq!(value("sluice_under_replicated_partitions"), 0.0);
    assert_eq!(value("sluice_connections"), 1.0);
    // The latency split: every handled request has each phase observed once; the long poll's
    // wait is remote time, and the Produces (acks=all on a one-replica ISR) have no wait to
    // speak of beside it.
    for phase in ["request_queue", "request_local", "request_remote", "response_send"] {
        assert_eq!(value(&format!(r#"sluice_{phase}_duration_seconds_count{{api="Produce"}}"#)), 5.0, "{phase}");
        assert_eq!(value(&format!(r#"sluice_{phase}_duration_seconds_count{{api="Fetch"}}"#)), 2.0, "{phase}");
    }
    let fetch_remote = value(r#"sluice_request_remote_duration_seconds_sum{api="Fetch"}"#);
    assert!(fetch_remote >= 0.3, "the long poll waited 300 ms, remote {fetch_remote} s");
    assert!(value(r#"sluice_request_duration_seconds_sum{api="Fetch"}"#) >= fetch_remote);
    assert!(value(r#"sluice_request_remote_duration_seconds_sum{api="Metadata"}"#) == 0.0);
    // The memory budgets, idle between requests: nothing in use, their sizes as configured.
    for (budget, limit) in [
        ("fetch", sluice_broker::handlers::fetch::FETCH_MEMORY_BYTES_MAX),
        ("request", sluice_broker::config::REQUEST_MEMORY_BYTES_MAX),
        ("decoded", sluice_broker::config::DECODED_REQUEST_MEMORY_BYTES_MAX),
    ] {
        assert_eq!(value(&format!(r#"sluice_memory_budget_used_bytes{{budget="{budget}"}}"#)), 0.0, "{budget}");
        assert_eq!(value(&format!(r#"sluice_memory_budget_limit_bytes{{budget="{budget}"}}"#)), limit as f64);
    }
    // Creating the topic was applied through the metadata state machine here.
    assert!(value("sluice_meta_apply_duration_seconds_count") >= 1.0);
    assert!(value("sluice_meta_raft_last_log_index") >= value("sluice_meta_raft_applied_index"));
    // Prometheus's own linter (Debian's `prometheus` package, installed by
    // scripts/install-test-deps.sh) accepts the text.
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/install-test-deps.sh installs it)");
    {
        use std::io::Write;
        promtool.stdin.as_ref().unwrap().write_all(body.as_bytes()).unwrap();
    }
    let checked = promtool.wait_with_output().unwrap();
    // promtool 2.x lints the classic text format, where a counter's HELP names the `_total`
    // series; OpenMetrics (what Prometheus asks for and gets here) names the family without
    // it. That one complaint is expected for each counter whose family has its HELP line;
    // anything else promtool says is a failure.
    let said = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    let unexpected: Vec<&str> = said
        .lines()
        .filter(|line| {
            let family = line.strip_suffix("_total no help text");
            !family.is_some_and(|family| body.contains(&format!("# HELP {family} ")))
        })
        .collect();
    assert!(unexpected.is_empty(), "promtool check metrics: {said}");
    assert_eq!(value("sluice_meta_raft_leader"), 1.0);
    assert_eq!(value(r#"sluice_brokers{state="live"}"#), 1.0);

    // Consumer lag of a group coordinated here: high watermark - committed offset, per
    // partition, and the group's max and sum; it falls to 0 once the group commits the end.
    assert_eq!(common::groups::find_coordinator(&mut stream, "lagging").await.0, 0);
    let address = broker.address;
    let commit = |offset: i64| async move {
        let mut stream = TcpStream::connect(address).await.unwrap();
        common::groups::commit(&mut stream, "lagging", "", -1, &[("measured", 1, offset, ""), ("measured", 0, 0, "")])
            .await
    };
    assert_eq!(commit(4).await, vec![0, 0]);
    sluice_broker::coordinator::lag::refresh(&broker.broker).await;
    let answer = scrape().await;
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let lag = |series: &str| {
        body.lines().find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')).map(str::to_string))
    };
    assert_eq!(
        lag(r#"sluice_consumer_group_lag_records{group="lagging",topic="measured",partition="1"}"#).as_deref(),
        Some("11"),
        "{body}"
    );
    assert_eq!(
        lag(r#"sluice_consumer_group_lag_records{group="lagging",topic="measured",partition="0"}"#).as_deref(),
        Some("0")
    );
    assert_eq!(lag(r#"sluice_consumer_group_max_lag_records{group="lagging"}"#).as_deref(), Some("11"));
    // A group of commits only (no members) is Empty; every state has its series.
    assert_eq!(lag(r#"sluice_consumer_groups{state="Empty"}"#).as_deref(), Some("1"), "{body}");
    assert_eq!(lag(r#"sluice_consumer_groups{state="Stable"}"#).as_deref(), Some("0"), "{body}");
    assert_eq!(lag(r#"sluice_consumer_group_lag_sum_records{group="lagging"}"#).as_deref(), Some("11"));
    assert_eq!(lag(r#"sluice_consumer_group_members{group="lagging"}"#).as_deref(), Some("0"), "{body}");
    assert_eq!(lag(r#"sluice_consumer_group_generation{group="lagging"}"#).as_deref(), Some("0"), "{body}");
    // The records were stamped 1970-01-01T00:00:01 (batch(): first timestamp 1,000 ms): the
    // first unconsumed one is as old as the epoch, less a second.
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let seconds: f64 = lag(r#"sluice_consumer_group_lag_seconds{group="lagging",topic="measured",partition="1"}"#)
        .unwrap_or_else(|| panic!("lag in seconds:\n{body}"))
        .parse()
        .unwrap();
    assert!((seconds - (now_s - 1.0)).abs() < 60.0, "lag {seconds} s, now {now_s}");
    assert_eq!(
        lag(r#"sluice_consumer_group_lag_seconds{group="lagging",topic="measured",partition="0"}"#).as_deref(),
        Some("0.0")
    );
    assert_eq!(commit(15).await, vec![0, 0]);
    sluice_broker::coordinator::lag::refresh(&broker.broker).await;
    let answer = scrape().await;
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    assert!(body.lines().any(|l| l == r#"sluice_consumer_group_max_lag_records{group="lagging"} 0"#), "{body}");
    assert!(body.lines().any(|l| l == r#"sluice_consumer_group_max_lag_seconds{group="lagging"} 0.0"#), "{body}");

    // A refused produce is counted by its error code.
    assert_eq!(produce(&mut stream, "measured", 7, Some(batch(1, 10))).await.0, kafka_code::UNKNOWN_TOPIC_OR_PARTITION);
    let answer = scrape().await;
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    assert!(body.lines().any(|l| l == r#"sluice_produce_partition_errors_total{code="3"} 1"#), "{body}");
}

/// Every api in the ApiVersions table answers a request at its lowest and highest version.
#[tokio::test]
async fn every_supported_api_answers_at_both_ends_of_its_range() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "ends", 1, &[]).await, 0);
    for range in sluice_broker::api_versions::supported_apis().ranges() {
        for version in [range.min_version, range.max_version] {
            check_api(&mut stream, range.api_key, version).await;
        }
    }
}

async fn check_api(stream: &mut TcpStream, api_key: ApiKey, version: i16) {
    let context = format!("{api_key:?} v{version}");
    match api_key {
        ApiKey::ApiVersions => {
            let request = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("sluice-test"))
                .with_client_software_version(StrBytes::from_static_str("1"));
            let response: ApiVersionsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.error_code, 0, "{context}");
        }
        ApiKey::Produce => {
            let request = produce_request(1, vec![("ends", 0, Some(batch(1, 5)))]);
            let response: ProduceResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.responses[0].partition_responses[0].error_code, 0, "{context}");
        }
        ApiKey::Fetch => {
            let response: FetchResponse =
                call(stream, api_key, version, &fetch_request(&[("ends", 0, 0, 1 << 20)], 0, 0, 1 << 20)).await;
            assert_eq!(response.responses[0].partitions[0].error_code, 0, "{context}");
            assert!(!response.responses[0].partitions[0].records.as_ref().unwrap().is_empty(), "{context}");
        }
        ApiKey::ListOffsets => {
            let request = ListOffsetsRequest::default().with_replica_id((-1).into()).with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(name("ends"))
                    .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-1)]),
            ]);
            let response: ListOffsetsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.topics[0].partitions[0].error_code, 0, "{context}");
        }
        ApiKey::DeleteRecords => {
            // The produces above wrote one record per version: move the start to 1 (asked
            // again at the second version, nothing changes), keeping the rest for the APIs
            // after this one; above the high watermark and an unknown partition are refused.
            let before = 1;
            let request = DeleteRecordsRequest::default().with_timeout_ms(5_000).with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default().with_name(name("ends")).with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(before),
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(1_000),
                    delete_records_request::DeleteRecordsPartition::default().with_partition_index(7).with_offset(0),
                ]),
            ]);
            let response: DeleteRecordsResponse = call(stream, api_key, version, &request).await;
            let answers: Vec<(i32, i16, i64)> = response.topics[0]
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code, p.low_watermark))
                .collect();
            assert_eq!(
                answers,
                vec![
                    (0, 0, before),
                    (0, kafka_code::OFFSET_OUT_OF_RANGE, -1),
                    (7, kafka_code::UNKNOWN_TOPIC_OR_PARTITION, -1)
                ],
                "{context}"
            );
        }
        ApiKey::Metadata => {
            let request = MetadataRequest::default()
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name("ends")))]));
            let response: MetadataResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.topics[0].error_code, 0, "{context}");
        }
        ApiKey::CreateTopics => {
            let request =
                CreateTopicsRequest::default().with_validate_only(true).with_topics(vec![CreatableTopic::default()
                    .with_name(name("ends-new"))
                    .with_num_partitions(1)
                    .with_replication_factor(1)]);
            let response: CreateTopicsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.topics[0].error_code, 0, "{context}");
        }
        ApiKey::DeleteTopics => {
            let request = if version >= 6 {
                DeleteTopicsRequest::default().with_topics(vec![
                    delete_topics_request::DeleteTopicState::default().with_name(Some(name("never-existed")))
                ])
            } else {
                DeleteTopicsRequest::default().with_topic_names(vec![name("never-existed")])
            };
            let response: DeleteTopicsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.responses[0].error_code, kafka_code::UNKNOWN_TOPIC_OR_PARTITION, "{context}");
        }
        ApiKey::InitProducerId => {
            let request = InitProducerIdRequest::default().with_transactional_id(None);
            let response: InitProducerIdResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.error_code, 0, "{context}");
            // Transactions are not implemented; an empty transactional id is malformed.
            let request = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("txn"))));
            let response: InitProducerIdResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.error_code, kafka_code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "{context}");
            let request = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(""))));
            let response: InitProducerIdResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.error_code, kafka_code::INVALID_REQUEST, "{context}");
        }
        ApiKey::DescribeConfigs => {
            let request = DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("ends"))
                    .with_configuration_keys(None),
            ]);
            let response: DescribeConfigsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.results[0].error_code, 0, "{context}");
            assert_eq!(
                response.results[0].configs.len(),
                sluice_meta::topic_config::all_topic_config_keys().count(),
                "{context}"
            );
        }
        ApiKey::AlterConfigs => {
            let request = AlterConfigsRequest::default().with_validate_only(true).with_resources(vec![
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("ends"))
                    .with_configs(vec![alter_configs_request::AlterableConfig::default()
                        .with_name(StrBytes::from_static_str("retention.ms"))
                        .with_value(Some(StrBytes::from_static_str("1000")))]),
            ]);
            let response: AlterConfigsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.responses[0].error_code, 0, "{context}");
        }
        ApiKey::IncrementalAlterConfigs => {
            let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("ends"))
                    .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(StrBytes::from_static_str("retention.ms"))
                        .with_config_operation(0)
                        .with_value(Some(StrBytes::from_static_str("-1")))]),
            ]);
            let response: IncrementalAlterConfigsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.responses[0].error_code, 0, "{context}");
        }
        ApiKey::CreatePartitions => {
            let request = CreatePartitionsRequest::default().with_validate_only(true).with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default().with_name(name("ends")).with_count(2),
            ]);
            let response: CreatePartitionsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.results[0].error_code, 0, "{context}");
        }
        ApiKey::OffsetForLeaderEpoch => {
            let request = OffsetForLeaderEpochRequest::default().with_replica_id((-1).into()).with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(name("ends"))
                    .with_partitions(vec![offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_current_leader_epoch(0)
                        .with_leader_epoch(0)]),
            ]);
            let response: OffsetForLeaderEpochResponse = call(stream, api_key, version, &request).await;
            let answer = &response.topics[0].partitions[0];
            assert_eq!((answer.error_code, answer.leader_epoch), (0, 0), "{context}");
            assert!(answer.end_offset > 0, "{context}");
        }
        ApiKey::DescribeCluster => {
            let response: DescribeClusterResponse =
                call(stream, api_key, version, &DescribeClusterRequest::default()).await;
            assert_eq!(response.error_code, 0, "{context}");
            assert_eq!(response.brokers.len(), 1, "{context}");
        }
        ApiKey::ElectLeaders => {
            // One broker: the only replica already leads, so nothing to elect.
            let request = ElectLeadersRequest::default().with_topic_partitions(Some(vec![
                elect_leaders_request::TopicPartitions::default().with_topic(name("ends")).with_partitions(vec![0, 9]),
            ]));
            let response: ElectLeadersResponse = call(stream, api_key, version, &request).await;
            let results = &response.replica_election_results[0].partition_result;
            let codes: Vec<(i32, i16)> = results.iter().map(|r| (r.partition_id, r.error_code)).collect();
            assert_eq!(
                codes,
                vec![(0, kafka_code::ELECTION_NOT_NEEDED), (9, kafka_code::UNKNOWN_TOPIC_OR_PARTITION)],
                "{context}"
            );
        }
        ApiKey::AlterPartitionReassignments => {
            use sluice_proto::kafka_protocol::messages::alter_partition_reassignments_request::{
                ReassignablePartition, ReassignableTopic,
            };
            use sluice_proto::kafka_protocol::messages::{
                AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
            };
            // Cancelling nothing, an unknown partition, an unknown broker: Kafka's three codes.
            let request = AlterPartitionReassignmentsRequest::default().with_topics(vec![ReassignableTopic::default()
                .with_name(name("ends"))
                .with_partitions(vec![
                    ReassignablePartition::default().with_partition_index(0).with_replicas(None),
                    ReassignablePartition::default().with_partition_index(9).with_replicas(Some(vec![1.into()])),
                    ReassignablePartition::default().with_partition_index(0).with_replicas(Some(vec![99.into()])),
                ])]);
            let response: AlterPartitionReassignmentsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.error_code, 0, "{context}");
            let codes: Vec<i16> = response.responses[0].partitions.iter().map(|p| p.error_code).collect();
            assert_eq!(codes, vec![85, kafka_code::UNKNOWN_TOPIC_OR_PARTITION, 39], "{context}");
        }
        ApiKey::ListPartitionReassignments => {
            use sluice_proto::kafka_protocol::messages::{
                ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
            };
            let response: ListPartitionReassignmentsResponse =
                call(stream, api_key, version, &ListPartitionReassignmentsRequest::default()).await;
            assert_eq!(response.error_code, 0, "{context}");
            assert!(response.topics.is_empty(), "{context}: nothing is moving");
        }
        ApiKey::DescribeProducers => {
            // The produce above was not idempotent: partition 0 is described, with no producer;
            // a partition that does not exist gets UNKNOWN_TOPIC_OR_PARTITION.
            let request = DescribeProducersRequest::default().with_topics(vec![
                describe_producers_request::TopicRequest::default()
                    .with_name(name("ends"))
                    .with_partition_indexes(vec![0, 7]),
            ]);
            let response: DescribeProducersResponse = call(stream, api_key, version, &request).await;
            let partitions = &response.topics[0].partitions;
            assert_eq!((partitions[0].partition_index, partitions[0].error_code), (0, 0), "{context}");
            assert!(partitions[0].active_producers.is_empty(), "{context}");
            assert_eq!((partitions[1].partition_index, partitions[1].error_code), (7, 3), "{context}");
        }
        ApiKey::DescribeLogDirs => {
            // Every replica (topics null), then one partition asked for by name.
            let response: DescribeLogDirsResponse =
                call(stream, api_key, version, &DescribeLogDirsRequest::default().with_topics(None)).await;
            assert_eq!(response.results.len(), 1, "{context}");
            let dir = &response.results[0];
            assert_eq!(dir.error_code, 0, "{context}");
            let ends = dir.topics.iter().find(|t| t.name.0.as_str() == "ends").expect("topic ends listed");
            assert_eq!(ends.partitions.len(), 1, "{context}");
            assert!(ends.partitions[0].partition_size > 0, "{context}: the produce above wrote bytes");
            let request = DescribeLogDirsRequest::default().with_topics(Some(vec![
                describe_log_dirs_request::DescribableLogDirTopic::default()
                    .with_topic(name("ends"))
                    .with_partitions(vec![0, 7]),
            ]));
            let response: DescribeLogDirsResponse = call(stream, api_key, version, &request).await;
            let topics = &response.results[0].topics;
            assert_eq!(topics.len(), 1, "{context}");
            assert_eq!(
                topics[0].partitions.iter().map(|p| p.partition_index).collect::<Vec<_>>(),
                vec![0],
                "{context}"
            );
        }
        ApiKey::DescribeQuorum => {
            // A single node: it leads, votes alone, and the metadata log has entries.
            let request =
                DescribeQuorumRequest::default().with_topics(vec![describe_quorum_request::TopicData::default()
                    .with_topic_name(name("__cluster_metadata"))
                    .with_partitions(vec![describe_quorum_request::PartitionData::default().with_partition_index(0)])]);
            let response: DescribeQuorumResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.error_code, 0, "{context}");
            let partition = &response.topics[0].partitions[0];
            assert_eq!(partition.error_code, 0, "{context}");
            let voters: Vec<i32> = partition.current_voters.iter().map(|v| v.replica_id.0).collect();
            assert_eq!(voters, vec![partition.leader_id.0], "{context}");
            assert!(partition.high_watermark > 0 && partition.observers.is_empty(), "{context}");
            assert_eq!(response.nodes.len(), usize::from(version >= 2), "{context}");
            // Any other partition is refused.
            let wrong =
                DescribeQuorumRequest::default().with_topics(vec![describe_quorum_request::TopicData::default()
                    .with_topic_name(name("ends"))
                    .with_partitions(vec![describe_quorum_request::PartitionData::default()])]);
            let response: DescribeQuorumResponse = call(stream, api_key, version, &wrong).await;
            assert_eq!(response.error_code, 42, "{context}: INVALID_REQUEST");
        }
        ApiKey::AddRaftVoter => {
            // The only node already votes; an unknown node without an address is not found; a
            // request for another cluster is refused.
            let view = call::<_, DescribeQuorumResponse>(
                stream,
                ApiKey::DescribeQuorum,
                0,
                &DescribeQuorumRequest::default().with_topics(vec![describe_quorum_request::TopicData::default()
                    .with_topic_name(name("__cluster_metadata"))
                    .with_partitions(vec![describe_quorum_request::PartitionData::default()])]),
            )
            .await;
            let me = view.topics[0].partitions[0].leader_id.0;
            let add = |id: i32| AddRaftVoterRequest::default().with_voter_id(id).with_timeout_ms(5_000);
            let response: AddRaftVoterResponse = call(stream, api_key, version, &add(me)).await;
            assert_eq!(response.error_code, 126, "{context}: DUPLICATE_VOTER");
            let response: AddRaftVoterResponse = call(stream, api_key, version, &add(me + 100)).await;
            assert_eq!(response.error_code, 127, "{context}: VOTER_NOT_FOUND");
            let other = add(me).with_cluster_id(Some(StrBytes::from_static_str("another-cluster")));
            let response: AddRaftVoterResponse = call(stream, api_key, version, &other).await;
            assert_eq!(response.error_code, 104, "{context}: INCONSISTENT_CLUSTER_ID");
        }
        ApiKey::RemoveRaftVoter => {
            // A node that does not vote is not found; the last voter is never removed.
            let response: RemoveRaftVoterResponse =
                call(stream, api_key, version, &RemoveRaftVoterRequest::default().with_voter_id(4242)).await;
            assert_eq!(response.error_code, 127, "{context}: VOTER_NOT_FOUND");
            let view = call::<_, DescribeQuorumResponse>(
                stream,
                ApiKey::DescribeQuorum,
                0,
                &DescribeQuorumRequest::default().with_topics(vec![describe_quorum_request::TopicData::default()
                    .with_topic_name(name("__cluster_metadata"))
                    .with_partitions(vec![describe_quorum_request::PartitionData::default()])]),
            )
            .await;
            let me = view.topics[0].partitions[0].leader_id.0;
            let response: RemoveRaftVoterResponse =
                call(stream, api_key, version, &RemoveRaftVoterRequest::default().with_voter_id(me)).await;
            assert_eq!(response.error_code, 42, "{context}: the last voter stays");
        }
        ApiKey::SaslHandshake => {
            // A PLAINTEXT listener has no SASL; v0 (raw tokens would follow) is refused anyway.
            let request = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("SCRAM-SHA-512"));
            let response: SaslHandshakeResponse = call(stream, api_key, version, &request).await;
            let expected = if version == 0 { 35 } else { 34 };
            assert_eq!(response.error_code, expected, "{context}: UNSUPPORTED_VERSION / ILLEGAL_SASL_STATE");
            assert!(response.mechanisms.iter().any(|m| m.as_str() == "SCRAM-SHA-512"), "{context}");
        }
        ApiKey::SaslAuthenticate => {
            let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0u\0p"));
            let response: SaslAuthenticateResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.error_code, 34, "{context}: ILLEGAL_SASL_STATE");
        }
        ApiKey::DescribeUserScramCredentials => {
            let request = DescribeUserScramCredentialsRequest::default()
                .with_users(Some(vec![describe_user_scram_credentials_request::UserName::default()
                    .with_name(StrBytes::from_static_str("nobody"))]));
            let response: DescribeUserScramCredentialsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.results[0].error_code, 91, "{context}: RESOURCE_NOT_FOUND");
        }
        ApiKey::AlterUserScramCredentials => {
            let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![
                alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                    .with_name(StrBytes::from_static_str("nobody"))
                    .with_mechanism(1),
            ]);
            let response: AlterUserScramCredentialsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.results[0].error_code, 91, "{context}: RESOURCE_NOT_FOUND");
        }
        ApiKey::CreateAcls => {
            // A binding per version (so both ends create one); DeleteAcls (key 31, tested after)
            // removes it.
            let principal = format!("User:range-v{version}");
            let request =
                CreateAclsRequest::default().with_creations(vec![create_acls_request::AclCreation::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("range"))
                    .with_resource_pattern_type(3)
                    .with_principal(StrBytes::from_string(principal.clone()))
                    .with_host(StrBytes::from_static_str("*"))
                    .with_operation(3)
                    .with_permission_type(3)]);
            let response: CreateAclsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.results.len(), 1, "{context}");
            assert_eq!(response.results[0].error_code, 0, "{context}");
        }
        ApiKey::DescribeAcls => {
            // The defaults of the nullable filters are "" (match only ""): null is ANY.
            let request = DescribeAclsRequest::default()
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1);
            let response: DescribeAclsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.error_code, 0, "{context}");
        }
        ApiKey::DeleteAcls => {
            let filter = delete_acls_request::DeleteAclsFilter::default()
                .with_resource_name_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_principal_filter(Some(StrBytes::from_string(format!("User:range-v{version}"))))
                .with_operation(1)
                .with_permission_type(1);
            let response: DeleteAclsResponse =
                call(stream, api_key, version, &DeleteAclsRequest::default().with_filters(vec![filter])).await;
            assert_eq!(response.filter_results[0].error_code, 0, "{context}");
            assert_eq!(response.filter_results[0].matching_acls.len(), 1, "{context}: CreateAcls's binding");
        }
        ApiKey::DescribeClientQuotas => {
            let response: DescribeClientQuotasResponse =
                call(stream, api_key, version, &DescribeClientQuotasRequest::default()).await;
            assert_eq!(response.error_code, 0, "{context}");
        }
        ApiKey::AlterClientQuotas => {
            // Validate-only: checked, nothing changed.
            let request = AlterClientQuotasRequest::default().with_validate_only(true).with_entries(vec![
                alter_client_quotas_request::EntryData::default()
                    .with_entity(vec![alter_client_quotas_request::EntityData::default()
                        .with_entity_type(StrBytes::from_static_str("client-id"))
                        .with_entity_name(None)])
                    .with_ops(vec![alter_client_quotas_request::OpData::default()
                        .with_key(StrBytes::from_static_str("producer_byte_rate"))
                        .with_value(1_048_576.0)]),
            ]);
            let response: AlterClientQuotasResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.entries[0].error_code, 0, "{context}");
        }
        other => assert!(
            common::groups::check_group_api(stream, other, version).await,
            "{other:?} is in the table but this test has no request for it"
        ),
    }
}

/// The topic configs a broker flag defaults (`min.insync.replicas`,
/// `unclean.leader.election.enable`, `replica.lag.time.max.ms`) are described with the broker's
/// value and source STATIC_BROKER_CONFIG (4) where the topic does not set them, and with the
/// topic's own (DYNAMIC_TOPIC_CONFIG, 1) where it does; the broker's min.insync.replicas is
/// enforced: acks=all on a one-replica topic is refused with NOT_ENOUGH_REPLICAS.
#[tokio::test]
async fn broker_defaults_of_topic_configs_are_described_and_enforced() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = sluice_broker::NodeConfig::ephemeral(1, temp.path());
    config.defaults.min_insync_replicas = 2;
    config.defaults.unclean_leader_election = true;
    let broker = TestBroker::start_config(config).await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "inherits", 1, &[]).await, 0);
    assert_eq!(create_topic_configured(&mut stream, "own", 1, &[("min.insync.replicas", "1")]).await, 0);
    let describe = |topic: &'static str| {
        DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str(topic))
                .with_configuration_keys(None),
        ])
    };
    let config_of = |response: &DescribeConfigsResponse, key: &str| {
        let entry = response.results[0].configs.iter().find(|c| c.name.as_str() == key).expect(key);
        (entry.value.as_ref().map(|v| v.to_string()).unwrap_or_default(), entry.config_source)
    };
    let inherits: DescribeConfigsResponse = call(&mut stream, ApiKey::DescribeConfigs, 4, &describe("inherits")).await;
    assert_eq!(config_of(&inherits, "min.insync.replicas"), ("2".to_string(), 4));
    assert_eq!(config_of(&inherits, "unclean.leader.election.enable"), ("true".to_string(), 4));
    assert_eq!(config_of(&inherits, "replica.lag.time.max.ms"), ("30000".to_string(), 5), "Kafka's default");
    let own: DescribeConfigsResponse = call(&mut stream, ApiKey::DescribeConfigs, 4, &describe("own")).await;
    assert_eq!(config_of(&own, "min.insync.replicas"), ("1".to_string(), 1));

    let acks_all = |topic: &'static str| {
        ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch(1, 10)))])])
    };
    let refused: ProduceResponse = call(&mut stream, ApiKey::Produce, 9, &acks_all("inherits")).await;
    assert_eq!(refused.responses[0].partition_responses[0].error_code, kafka_code::NOT_ENOUGH_REPLICAS);
    let accepted: ProduceResponse = call(&mut stream, ApiKey::Produce, 9, &acks_all("own")).await;
    assert_eq!(accepted.responses[0].partition_responses[0].error_code, 0);
}

/// Regression (the differential admin test, issue 16, against Apache Kafka 4.1.1): DescribeConfigs
/// with synonyms names the broker config an inert topic config defaults to, as Kafka does
/// (`file.delete.delay.ms` -> `log.segment.delete.delay.ms`, `segment.index.bytes` ->
/// `log.index.size.max.bytes`, `preallocate` -> `log.preallocate`, ...), the broker resource
/// lists those broker configs with Kafka's defaults, and a broker config from a start flag
/// lists the flag's value then Kafka's default (`num.partitions`: STATIC_BROKER_CONFIG 3,
/// DEFAULT_CONFIG 1). Method: a broker started with 3 default partitions; DescribeConfigs v4 of
/// a topic and of the broker, synonyms as (source, name, value).
#[tokio::test]
async fn describe_configs_lists_kafkas_broker_synonyms() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = sluice_broker::NodeConfig::ephemeral(1, temp.path());
    config.defaults.partitions = 3;
    let broker = TestBroker::start_config(config).await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "synonyms", 1, &[("preallocate", "true")]).await, 0);
    let describe = |resource_type: i8, resource_name: &'static str| {
        DescribeConfigsRequest::default().with_include_synonyms(true).with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_static_str(resource_name))
                .with_configuration_keys(None),
        ])
    };
    let synonyms_of = |response: &DescribeConfigsResponse, key: &str| -> Vec<(i8, String, String)> {
        let entry = response.results[0].configs.iter().find(|c| c.name.as_str() == key).expect(key);
        entry
            .synonyms
            .iter()
            .map(|s| (s.source, s.name.to_string(), s.value.as_ref().map(|v| v.to_string()).unwrap_or_default()))
            .collect()
    };
    let synonym = |source: i8, name: &str, value: &str| (source, name.to_string(), value.to_string());
    let topic: DescribeConfigsResponse = call(&mut stream, ApiKey::DescribeConfigs, 4, &describe(2, "synonyms")).await;
    for (key, broker_name, default) in [
        ("file.delete.delay.ms", "log.segment.delete.delay.ms", "60000"),
        ("segment.index.bytes", "log.index.size.max.bytes", "10485760"),
        ("local.retention.ms", "log.local.retention.ms", "-2"),
        ("local.retention.bytes", "log.local.retention.bytes", "-2"),
        ("compression.gzip.level", "compression.gzip.level", "-1"),
        ("compression.lz4.level", "compression.lz4.level", "9"),
        ("compression.zstd.level", "compression.zstd.level", "3"),
    ] {
        assert_eq!(synonyms_of(&topic, key), vec![synonym(5, broker_name, default)], "{key}");
    }
    assert_eq!(
        synonyms_of(&topic, "preallocate"),
        vec![synonym(1, "preallocate", "true"), synonym(5, "log.preallocate", "false")],
        "an override, then the broker default"
    );

    let node: DescribeConfigsResponse = call(&mut stream, ApiKey::DescribeConfigs, 4, &describe(4, "1")).await;
    assert_eq!(node.results[0].error_code, 0);
    assert_eq!(synonyms_of(&node, "log.preallocate"), vec![synonym(5, "log.preallocate", "false")]);
    assert_eq!(
        synonyms_of(&node, "log.segment.delete.delay.ms"),
        vec![synonym(5, "log.segment.delete.delay.ms", "60000")]
    );
    assert_eq!(
        synonyms_of(&node, "num.partitions"),
        vec![synonym(4, "num.partitions", "3"), synonym(5, "num.partitions", "1")],
        "a start flag, then Kafka's default"
    );
}

/// A topic config change reaches the partition's open log: lowering `max.message.bytes` with
/// IncrementalAlterConfigs makes a batch that fitted before too large, and deleting the
/// override lets it through again.
#[tokio::test]
async fn config_changes_reach_the_open_log() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "cfg", 1, &[]).await, 0);
    let alter = |operation: i8, value: Option<&'static str>| {
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("cfg"))
                .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("max.message.bytes"))
                    .with_config_operation(operation)
                    .with_value(value.map(StrBytes::from_static_str))]),
        ])
    };
    assert_eq!(produce(&mut stream, "cfg", 0, Some(batch(1, 500))).await, (0, 0));
    let response: IncrementalAlterConfigsResponse =
        call(&mut stream, ApiKey::IncrementalAlterConfigs, 1, &alter(0, Some("300"))).await;
    assert_eq!(response.responses[0].error_code, 0);
    assert_eq!(produce(&mut stream, "cfg", 0, Some(batch(1, 500))).await.0, kafka_code::MESSAGE_TOO_LARGE);
    let response: IncrementalAlterConfigsResponse =
        call(&mut stream, ApiKey::IncrementalAlterConfigs, 1, &alter(1, None)).await;
    assert_eq!(response.responses[0].error_code, 0);
    assert_eq!(produce(&mut stream, "cfg", 0, Some(batch(1, 500))).await, (0, 1));
    // An out-of-range value is refused and changes nothing.
    let response: IncrementalAlterConfigsResponse =
        call(&mut stream, ApiKey::IncrementalAlterConfigs, 1, &alter(0, Some("-5"))).await;
    assert_eq!(response.responses[0].error_code, kafka_code::INVALID_CONFIG);
}

/// acks=0: a successful produce gets no response (the next request on the connection is
/// answered next); a failed one closes the connection, as Kafka does, so the client notices.
#[tokio::test]
async fn acks_zero_gets_no_response_and_a_failure_closes_the_connection() {
    use tokio::io::AsyncWriteExt;
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "fire", 1, &[]).await, 0);
    let frame = sluice_proto::encode_request(
        &common::header(ApiKey::Produce, PRODUCE_VERSION, 41),
        &produce_request(0, vec![("fire", 0, Some(batch(2, 10)))]),
    )
    .unwrap();
    stream.write_all(&frame).await.unwrap();
    // Answered next: the describe-cluster request, not the produce.
    let response: DescribeClusterResponse =
        call(&mut stream, ApiKey::DescribeCluster, 1, &DescribeClusterRequest::default()).await;
    assert_eq!(response.error_code, 0);
    assert_eq!(log_end(&broker, "fire", 0), 2);
    let frame = sluice_proto::encode_request(
        &common::header(ApiKey::Produce, PRODUCE_VERSION, 42),
        &produce_request(0, vec![("fire", 9, Some(batch(2, 10)))]),
    )
    .unwrap();
    stream.write_all(&frame).await.unwrap();
    common::assert_closed(&mut stream).await;
    assert_eq!(log_end(&broker, "fire", 0), 2);
}

/// Partition directories the metadata does not assign here (a topic deleted while the broker
/// was down) are deleted at start, once the registration made the view current; assigned ones
/// are kept.
#[tokio::test]
async fn directories_the_metadata_does_not_know_are_deleted_at_start() {
    let temp = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_config(sluice_broker::NodeConfig::ephemeral(1, temp.path())).await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "kept", 1, &[]).await, 0);
    produce(&mut stream, "kept", 0, Some(batch(3, 10))).await;
    drop(stream);
    broker.stop().await;
    let ghost = temp.path().join("logs/ghost-0");
    std::fs::create_dir_all(&ghost).unwrap();
    std::fs::write(ghost.join("partition.metadata"), format!("version: 0\ntopic_id: {}\n", uuid::Uuid::new_v4()))
        .unwrap();
    let broker = TestBroker::start_config(sluice_broker::NodeConfig::ephemeral(1, temp.path())).await;
    assert!(!ghost.exists(), "an unassigned partition directory survived the start");
    assert_eq!(log_end(&broker, "kept", 0), 3);
    broker.stop().await;
}

/// The maintenance task applies retention: with tiny segments and `retention.bytes`, old
/// segments are deleted and the log start offset moves up, as ListOffsets(earliest) reports.
#[tokio::test]
async fn the_maintenance_task_applies_retention() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = sluice_broker::NodeConfig::ephemeral(1, temp.path());
    config.retention_check_interval_ms = 100;
    let broker = TestBroker::start_config(config).await;
    let mut stream = broker.connect().await;
    let one = batch(1, 200);
    let segment_bytes = (one.len() * 2).to_string();
    let retention_bytes = (one.len() * 4).to_string();
    let configs = [("segment.bytes", segment_bytes.as_str()), ("retention.bytes", retention_bytes.as_str())];
    assert_eq!(create_topic_configured(&mut stream, "times", 1, &configs).await, 0);
    for _ in 0..20 {
        assert_eq!(produce(&mut stream, "times", 0, Some(one.clone())).await.0, 0);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut earliest = 0;
    while Instant::now() < deadline {
        earliest = list_offset(&mut stream, -2).await.1;
        if earliest > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(earliest >= 10, "log start still at {earliest}");
    assert_eq!(list_offset(&mut stream, -1).await.1, 20);
    broker.stop().await;
}

async fn offset_for_leader_epoch(stream: &mut TcpStream, topic: &str, current: i32, epoch: i32) -> (i16, i32, i64) {
    let request = OffsetForLeaderEpochRequest::default().with_replica_id((-1).into()).with_topics(vec![
        offset_for_leader_epoch_request::OffsetForLeaderTopic::default().with_topic(name(topic)).with_partitions(vec![
            offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                .with_current_leader_epoch(current)
                .with_leader_epoch(epoch),
        ]),
    ]);
    let response: OffsetForLeaderEpochResponse = call(stream, ApiKey::OffsetForLeaderEpoch, 4, &request).await;
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.leader_epoch, answer.end_offset)
}

/// A leader change (here: the only broker fenced and unfenced, which bumps the leader epoch
/// twice) reaches the partition: new batches carry the new epoch in their header, requests
/// with an older epoch are fenced and a newer one is unknown, and OffsetForLeaderEpoch reports
/// where each epoch ended.
#[tokio::test]
async fn leader_epochs_are_stamped_checked_and_reported() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "epochs", 1, &[]).await, 0);
    assert_eq!(produce(&mut stream, "epochs", 0, Some(batch(3, 10))).await, (0, 0));
    let broker_epoch = broker.broker.broker_epoch();
    for command in
        [Command::FenceBroker { broker_id: 1, broker_epoch }, Command::UnfenceBroker { broker_id: 1, broker_epoch }]
    {
        broker.broker.propose_and_apply(command).await.unwrap();
    }
    assert_eq!(broker.broker.view().topics["epochs"].partitions[0].leader_epoch, 2);
    assert_eq!(produce(&mut stream, "epochs", 0, Some(batch(2, 10))).await, (0, 3));

    let response = fetch(&mut stream, &fetch_request(&[("epochs", 0, 3, 1 << 20)], 0, 0, 1 << 20)).await;
    let records = response.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(i32::from_be_bytes(records[12..16].try_into().unwrap()), 2, "partitionLeaderEpoch of the new batch");

    let mut request = fetch_request(&[("epochs", 0, 0, 1 << 20)], 0, 0, 1 << 20);
    request.topics[0].partitions[0].current_leader_epoch = 1;
    let response = fetch(&mut stream, &request).await;
    assert_eq!(response.responses[0].partitions[0].error_code, kafka_code::FENCED_LEADER_EPOCH);
    request.topics[0].partitions[0].current_leader_epoch = 3;
    let response = fetch(&mut stream, &request).await;
    assert_eq!(response.responses[0].partitions[0].error_code, kafka_code::UNKNOWN_LEADER_EPOCH);

    assert_eq!(offset_for_leader_epoch(&mut stream, "epochs", 2, 0).await, (0, 0, 3));
    assert_eq!(offset_for_leader_epoch(&mut stream, "epochs", 2, 1).await, (0, 0, 3));
    assert_eq!(offset_for_leader_epoch(&mut stream, "epochs", 2, 2).await, (0, 2, 5));
    assert_eq!(offset_for_leader_epoch(&mut stream, "epochs", 2, 7).await, (0, -1, -1));
    assert_eq!(offset_for_leader_epoch(&mut stream, "epochs", 1, 0).await.0, kafka_code::FENCED_LEADER_EPOCH);
}

/// Regression test for the 30 s stalls of `sluice bench produce --producers 4 --acks all`.
///
/// The partition published its new high watermark on its `watch` channel after releasing its
/// lock, so two appends from different connections could publish out of order and the channel
/// went back to the older value while the log's high watermark was past both batches. An
/// acks=all produce that subscribed after that waited for the next append to the partition;
/// when every producer was waiting that way nobody appended, and each wait ran to the request
/// timeout. Here every round sends one acks=all produce from each of several connections to
/// one partition at once, then nothing: each must be answered without REQUEST_TIMED_OUT (its
/// timeout is 1 s) and the published high watermark must be the log's. Without the fix some
/// round among a few hundred fails (the bad interleaving needs a thread descheduled between
/// the unlock and the publish, so it is a race, but a frequent one with more appending threads
/// than cores).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_acks_all_produces_to_one_partition_never_wait_for_a_stale_high_watermark() {
    const CONNECTIONS: usize = 8;
    const ROUNDS: usize = 400;
    let broker = TestBroker::start().await;
    let mut admin = broker.connect().await;
    assert_eq!(create_topic_configured(&mut admin, "hw", 1, &[]).await, 0);
    assert_eq!(produce(&mut admin, "hw", 0, Some(batch(1, 10))).await, (0, 0));
    let partition = broker.broker.partitions.get("hw", 0).unwrap();
    let mut streams = Vec::new();
    for _ in 0..CONNECTIONS {
        streams.push(broker.connect().await);
    }
    let request = produce_request(-1, vec![("hw", 0, Some(batch(1, 10)))]).with_timeout_ms(1_000);
    for round in 0..ROUNDS {
        let answers = futures::future::join_all(streams.iter_mut().map(|stream| async {
            let response: ProduceResponse = call(stream, ApiKey::Produce, PRODUCE_VERSION, &request).await;
            response.responses[0].partition_responses[0].error_code
        }))
        .await;
        assert!(
            answers.iter().all(|code| *code == kafka_code::NONE),
            "round {round}: acks=all answers {answers:?} (7 = REQUEST_TIMED_OUT: waited for a committed batch)"
        );
        let (_, high_watermark, _) = partition.offsets().unwrap();
        let published = *partition.watch_high_watermark().borrow();
        assert_eq!(published, high_watermark, "round {round}: the published high watermark is not the log's");
    }
}

/// Goal: one connection's produce requests are pipelined — once a request's batches are
/// appended, the next one is appended while the first waits for its sync, so one group-commit
/// fsync covers several requests of one producer — while appends stay in request order, the
/// answers come back in request order, and any other request is handled only after every
/// answer before it. Method: 40 acks=all produce requests of one 5-record batch each to a
/// `flush.messages=1` topic, then a ListOffsets (latest), all written at once before reading
/// anything. The answers must carry correlation ids 1..=41 in order, the batches offsets 0, 5,
/// ..., 195; ListOffsets must say 200 (it ran after every produce was synced and answered);
/// and the policy fsyncs must number fewer than the requests (without pipelining, each
/// request waits for its own: exactly 40).
#[tokio::test]
async fn a_connections_produce_requests_are_pipelined_in_order_and_share_syncs() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const REQUESTS: i32 = 40;
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic_configured(&mut stream, "piped", 1, &[("flush.messages", "1")]).await, 0);

    let mut frames = Vec::new();
    for correlation_id in 1..=REQUESTS {
        let request = produce_request(-1, vec![("piped", 0, Some(batch(5, 10)))]);
        let header = common::header(ApiKey::Produce, PRODUCE_VERSION, correlation_id);
        frames.extend_from_slice(&sluice_proto::encode_request(&header, &request).unwrap());
    }
    let latest =
        ListOffsetsRequest::default().with_replica_id((-1).into()).with_topics(vec![ListOffsetsTopic::default()
            .with_name(name("piped"))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1)])]);
    let list_header = common::header(ApiKey::ListOffsets, 7, REQUESTS + 1);
    frames.extend_from_slice(&sluice_proto::encode_request(&list_header, &latest).unwrap());
    stream.write_all(&frames).await.unwrap();

    for correlation_id in 1..=REQUESTS {
        let payload = common::read_frame(&mut stream).await;
        let (header, response): (_, ProduceResponse) =
            sluice_proto::decode_response(ApiKey::Produce, PRODUCE_VERSION, payload).unwrap();
        assert_eq!(header.correlation_id, correlation_id, "answers in request order");
        let answer = &response.responses[0].partition_responses[0];
        assert_eq!((answer.error_code, answer.base_offset), (0, i64::from(correlation_id - 1) * 5));
    }
    let payload = common::read_frame(&mut stream).await;
    let (header, listed): (_, ListOffsetsResponse) =
        sluice_proto::decode_response(ApiKey::ListOffsets, 7, payload).unwrap();
    assert_eq!(header.correlation_id, REQUESTS + 1);
    assert_eq!(listed.topics[0].partitions[0].offset, i64::from(REQUESTS) * 5, "after every produce before it");

    let mut admin = TcpStream::connect(broker.admin).await.unwrap();
    admin.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut scrape = String::new();
    admin.read_to_string(&mut scrape).await.unwrap();
    let series = r#"sluice_log_fsync_duration_seconds_count{cause="policy"} "#;
    let fsyncs: f64 = scrape.lines().find_map(|line| line.strip_prefix(series)).expect(series).parse().unwrap();
    eprintln!("{fsyncs} policy fsyncs for {REQUESTS} pipelined produce requests");
    assert!(fsyncs >= 1.0 && fsyncs < f64::from(REQUESTS), "{fsyncs} policy fsyncs for {REQUESTS} requests");
    let values = common::wire::read_all(&mut stream, "piped", 0).await.unwrap();
    assert_eq!(
        values.iter().map(|(offset, _)| *offset).collect::<Vec<_>>(),
        (0..i64::from(REQUESTS) * 5).collect::<Vec<_>>()
    );
}
