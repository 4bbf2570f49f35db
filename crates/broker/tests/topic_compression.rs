//! Broker-side recompression over the wire (issue 16): a topic whose `compression.type` is not
//! `producer` stores every produced batch in its own codec, and a consumer reads the same
//! records back.
//!
//! Method: a whole broker (`common::TestBroker`) on an ephemeral port; batches with keys, null
//! values and headers built by kafka-protocol's encoder (`sluice_proto::records`) in every
//! codec; produced to topics of every compression type; fetched back with Fetch v12 and read
//! twice: the stored batch headers (`sluice_log::batch::BatchHeader`: the codec bits, the other
//! attributes, CRC-32C) and the records decoded by `sluice_proto::records::decode_record_batches`
//! (kafka-protocol's decoder), compared with what was produced.

mod common;

use bytes::Bytes;
use common::wire::{create_topic_with_configs, produce, topic_name};
use common::{call, TestBroker};
use sluice_log::batch::{BatchHeader, Codec};
use sluice_proto::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use sluice_proto::kafka_protocol::messages::*;
use sluice_proto::kafka_protocol::protocol::StrBytes;
use sluice_proto::kafka_protocol::records::Compression;
use sluice_proto::records::{build_record_batch, decode_record_batches, BatchOptions, ProducedRecord};
use tokio::net::TcpStream;

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

/// Topic compression types and the codec each stores (`None`: as produced).
const TOPIC_TYPES: [(&str, Option<Codec>); 6] = [
    ("producer", None),
    ("uncompressed", Some(Codec::None)),
    ("gzip", Some(Codec::Gzip)),
    ("snappy", Some(Codec::Snappy)),
    ("lz4", Some(Codec::Lz4)),
    ("zstd", Some(Codec::Zstd)),
];

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

async fn alter_topic(stream: &mut TcpStream, topic: &str, key: &str, value: &str) {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(text(topic))
            .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                .with_name(text(key))
                .with_config_operation(0)
                .with_value(Some(text(value)))]),
    ]);
    let response: IncrementalAlterConfigsResponse = call(stream, ApiKey::IncrementalAlterConfigs, 1, &request).await;
    assert_eq!(response.responses[0].error_code, 0, "alter {topic} {key}={value}");
}

/// The stored bytes of partition 0 of `topic` from `offset` on, as a consumer fetches them.
async fn fetch(stream: &mut TcpStream, topic: &str, offset: i64) -> Bytes {
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_max_bytes(64 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(topic_name(topic)).with_partitions(vec![
            FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(64 << 20),
        ])]);
    let response: FetchResponse = call(stream, ApiKey::Fetch, 12, &request).await;
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    partition.records.clone().unwrap_or_default()
}

/// Headers of every stored batch in `data`.
fn stored_headers(data: &[u8]) -> Vec<BatchHeader> {
    let mut headers = Vec::new();
    let mut position = 0;
    while let Some(header) = data.get(position..).and_then(BatchHeader::parse) {
        position += header.total_bytes();
        headers.push(header);
    }
    assert_eq!(position, data.len(), "whole batches");
    headers
}

/// Records with keys, a null key, a tombstone, headers and distinct timestamps.
fn records(tag: &str) -> Vec<ProducedRecord> {
    (0..20i64)
        .map(|i| ProducedRecord {
            key: (i % 7 != 3).then(|| Bytes::from(format!("key-{i}"))),
            value: (i % 5 != 4).then(|| Bytes::from(format!("{tag} value {i} {}", "x".repeat(i as usize * 10)))),
            headers: vec![("index".to_string(), Some(Bytes::from(i.to_string()))), ("empty".to_string(), None)],
            timestamp_ms: 1_700_000_000_000 + i * 37,
        })
        .collect()
}

fn batch(codec: Compression, records: &[ProducedRecord]) -> Bytes {
    build_record_batch(records, &BatchOptions { compression: codec, ..BatchOptions::default() }).unwrap()
}

/// What a consumer sees of each record: (key, value, headers, timestamp).
type Seen = (Option<Bytes>, Option<Bytes>, Vec<(String, Option<Bytes>)>, i64);

fn seen(data: &Bytes) -> Vec<Seen> {
    let decoded = decode_record_batches(data).expect("every stored batch decodes");
    decoded
        .batches
        .into_iter()
        .flat_map(|batch| batch.records)
        .map(|record| {
            let mut headers: Vec<(String, Option<Bytes>)> =
                record.headers.into_iter().map(|(key, value)| (key.to_string(), value)).collect();
            headers.sort();
            (record.key, record.value, headers, record.timestamp)
        })
        .collect()
}

fn produced(records: &[ProducedRecord]) -> Vec<Seen> {
    records
        .iter()
        .map(|record| {
            let mut headers = record.headers.clone();
            headers.sort();
            (record.key.clone(), record.value.clone(), headers, record.timestamp_ms)
        })
        .collect()
}

// Goal: from every producer codec to every topic compression type, the stored batch carries
// the topic's codec (or the producer's, for `producer`) and a valid CRC-32C, keeps its other
// attributes, record count and timestamps, and a consumer decodes exactly the records
// produced, at the offsets the produce answers named.
#[tokio::test]
async fn every_codec_is_stored_in_the_topic_compression_type() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    for (topic_type, stored_codec) in TOPIC_TYPES {
        let topic = format!("compress-{topic_type}");
        create_topic_with_configs(&mut stream, &topic, &[("compression.type", topic_type)]).await;
        for (index, codec) in CODECS.into_iter().enumerate() {
            let sent = records(&format!("{codec:?}"));
            let produced_batch = batch(codec, &sent);
            let produced_header = BatchHeader::parse(&produced_batch).unwrap();
            let (code, base_offset) = produce(&mut stream, &topic, 0, produced_batch).await;
            assert_eq!((code, base_offset), (0, index as i64 * 20), "{codec:?} → {topic_type}");
            let data = fetch(&mut stream, &topic, base_offset).await;
            let headers = stored_headers(&data);
            assert_eq!(headers.len(), 1, "{codec:?} → {topic_type}: the batch stays one batch");
            let stored = headers[0];
            let want = stored_codec.or(produced_header.codec());
            assert_eq!(stored.codec(), want, "{codec:?} → {topic_type}: stored codec");
            assert!(sluice_log::batch::first_damaged_batch(&data).is_none(), "{codec:?} → {topic_type}: CRC");
            assert_eq!(stored.attributes & !0x7, produced_header.attributes & !0x7, "other attribute bits");
            assert_eq!(
                (stored.record_count, stored.base_timestamp, stored.max_timestamp, stored.base_offset),
                (20, produced_header.base_timestamp, produced_header.max_timestamp, base_offset),
            );
            assert_eq!(seen(&data), produced(&sent), "{codec:?} → {topic_type}: records");
        }
    }
}

// Goal: compression.type changes take effect on the open log, as other topic configs do:
// a gzip batch is stored as gzip under `producer`, as zstd once the topic is altered to
// zstd, and as produced again once it is altered back; the level config is accepted with it.
#[tokio::test]
async fn altering_compression_type_takes_effect_for_the_next_produce() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    create_topic_with_configs(&mut stream, "altered", &[]).await;
    let sent = records("altered");
    let mut stored_codecs = Vec::new();
    for step in ["producer", "zstd", "producer"] {
        if step == "zstd" {
            alter_topic(&mut stream, "altered", "compression.zstd.level", "19").await;
        }
        alter_topic(&mut stream, "altered", "compression.type", step).await;
        let (code, base_offset) = produce(&mut stream, "altered", 0, batch(Compression::Gzip, &sent)).await;
        assert_eq!(code, 0);
        let data = fetch(&mut stream, "altered", base_offset).await;
        stored_codecs.push(stored_headers(&data)[0].codec());
        assert_eq!(seen(&data), produced(&sent));
    }
    assert_eq!(stored_codecs, vec![Some(Codec::Gzip), Some(Codec::Zstd), Some(Codec::Gzip)]);
}

// Goal: a batch that recompression makes larger than max.message.bytes is refused with
// MESSAGE_TOO_LARGE and appends nothing, as Kafka refuses it.
#[tokio::test]
async fn a_batch_recompression_makes_too_large_is_message_too_large() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    create_topic_with_configs(
        &mut stream,
        "grows",
        &[("compression.type", "uncompressed"), ("max.message.bytes", "10000")],
    )
    .await;
    let big = vec![ProducedRecord {
        key: None,
        value: Some(Bytes::from(vec![b'a'; 50_000])),
        headers: Vec::new(),
        timestamp_ms: 1_700_000_000_000,
    }];
    let produced = batch(Compression::Zstd, &big);
    assert!(produced.len() < 10_000, "fits as produced");
    let (code, _) = produce(&mut stream, "grows", 0, produced).await;
    assert_eq!(code, sluice_broker::kafka_code::MESSAGE_TOO_LARGE);
    assert_eq!(broker.broker.partitions.get("grows", 0).unwrap().offsets().unwrap().0, 0);
}
