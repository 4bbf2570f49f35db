//! Produce validation over the wire (issue 18, part 1): batches whose CRC-32C is valid but
//! whose records are poison — a codec flag over bytes that are not that codec, random bytes in
//! a compressed stream, a record count that disagrees with the records (up to 2^31-1), offset
//! deltas out of order, scrambled varints, bytes after the last record — are refused with
//! Kafka's error codes in every codec, append nothing, and leave the partition readable; keyless
//! records on compacted topics and out-of-range timestamps are refused with per-record errors
//! (Produce v8+); LogAppendTime topics get the leader's clock.
//!
//! Method: a whole broker (`common::TestBroker`) on an ephemeral port; batches built by the
//! kafka-protocol encoder (`sluice_log::testing`), then poisoned and resealed (length and CRC
//! recomputed) so that only record-level validation can catch them; the log end offset is read
//! from the partition to prove nothing was appended, and everything is fetched back and decoded
//! with `sluice_proto::records::decode_record_batches` (kafka-protocol's decoder behind its own
//! bounds) to prove every stored record is readable.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::wire::create_topic_with_configs;
use common::{call, TestBroker};
use sluice_broker::kafka_code;
use sluice_log::testing::{batch_from_section, batch_with, raw_records, reseal, Compression, KeyValue};
use sluice_proto::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use sluice_proto::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use sluice_proto::kafka_protocol::messages::produce_response::PartitionProduceResponse;
use sluice_proto::kafka_protocol::messages::*;
use sluice_proto::kafka_protocol::protocol::StrBytes;
use sluice_proto::records::{decode_record_batches, TimestampType};
use tokio::net::TcpStream;

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

/// Produces `records` to partition 0 of `topic` with Produce `version`; the partition's answer.
async fn produce(stream: &mut TcpStream, version: i16, topic: &str, records: Vec<u8>) -> PartitionProduceResponse {
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5_000).with_topic_data(vec![
        TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![PartitionProduceData::default()
            .with_index(0)
            .with_records(Some(Bytes::from(records)))]),
    ]);
    let response: ProduceResponse = call(stream, ApiKey::Produce, version, &request).await;
    response.responses[0].partition_responses[0].clone()
}

fn log_end(broker: &TestBroker, topic: &str) -> i64 {
    broker.broker.partitions.get(topic, 0).unwrap().offsets().unwrap().0
}

/// Fetches the whole partition and decodes it: (offset, key) of every record, in order.
async fn read_all(stream: &mut TcpStream, topic: &str) -> Vec<(i64, Option<Bytes>, i64)> {
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_max_bytes(64 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(name(topic)).with_partitions(vec![
            FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(64 << 20),
        ])]);
    let response: FetchResponse = call(stream, ApiKey::Fetch, 12, &request).await;
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    let data = partition.records.clone().unwrap_or_default();
    let decoded = decode_record_batches(&data).expect("every stored batch decodes");
    assert_eq!(decoded.partial_trailing_bytes, 0);
    let mut records = Vec::new();
    for batch in decoded.batches {
        assert_eq!(batch.records.len(), batch.header.record_count as usize);
        for record in batch.records {
            let timestamp = match record.timestamp_type {
                TimestampType::LogAppend => batch.header.max_timestamp,
                TimestampType::Creation => record.timestamp,
            };
            records.push((record.offset, record.key, timestamp));
        }
    }
    records
}

fn good(codec: Compression, count: usize) -> Vec<u8> {
    let keys: Vec<Vec<u8>> = (0..count).map(|i| format!("key-{i}").into_bytes()).collect();
    let pairs: Vec<KeyValue<'_>> = keys.iter().map(|k| (Some(k.as_slice()), Some(b"value".as_slice()))).collect();
    batch_with(codec, 0, &pairs, now_ms())
}

/// Every poison batch of issue 18 in `codec`, each with a name, all with a valid CRC.
fn poison_batches(codec: Compression) -> Vec<(String, Vec<u8>)> {
    let template = good(codec, 3);
    let plain = good(Compression::None, 3);
    let section = raw_records(&plain).to_vec();
    let mut poisons = Vec::new();
    let mut add = |what: &str, batch: Vec<u8>| poisons.push((format!("{codec:?}: {what}"), batch));
    let with_count = |count: i32| {
        let mut batch = template.clone();
        batch[57..61].copy_from_slice(&count.to_be_bytes());
        batch[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        reseal(&mut batch);
        batch
    };
    add("count 2^31-1 for 3 records", with_count(i32::MAX));
    add("count 4 for 3 records", with_count(4));
    add("count 2 for 3 records", with_count(2));
    // Offset delta of the first record made 5 (zigzag 10), compressed again if needed.
    let mut deltas = section.clone();
    assert_eq!(deltas[3], 0x00, "record 0: length, attributes, timestamp delta, offset delta");
    deltas[3] = 10;
    add("offset delta 5 for record 0", batch_from_section(&template, codec, &deltas, true));
    // A record length varint that never ends, then one that runs past the batch.
    let mut endless = section.clone();
    endless[0] = 0xff;
    endless[1] = 0xff;
    add("endless varint", batch_from_section(&template, codec, &endless, true));
    let mut overlong = section.clone();
    overlong[0] = 0x7e; // zigzag 63: longer than the records
    add("record length past the batch", batch_from_section(&template, codec, &overlong, true));
    let mut trailing = section.clone();
    trailing.extend_from_slice(&[0; 9]);
    add("bytes after the last record", batch_from_section(&template, codec, &trailing, true));
    if codec == Compression::None {
        // Compressed bytes under the none flag are no records.
        let gzip = batch_from_section(&template, Compression::Gzip, &section, true);
        add("gzip stream flagged as none", batch_from_section(&gzip, Compression::None, raw_records(&gzip), false));
    } else {
        add("plain records under the codec flag", batch_from_section(&template, codec, &section, false));
        let junk: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        add("random bytes as the compressed stream", batch_from_section(&template, codec, &junk, false));
        // A real stream of this codec cut in half.
        let whole = batch_from_section(&template, codec, &section, true);
        let body = raw_records(&whole);
        add("truncated compressed stream", batch_from_section(&template, codec, &body[..body.len() / 2], false));
    }
    poisons
}

// Goal: every poison batch in every codec is CORRUPT_MESSAGE with a message, appends nothing
// (log end unchanged), offsets advance only by the good batches between them, and the whole
// partition is still readable by a real decoder afterwards.
#[tokio::test]
async fn poison_batches_are_corrupt_message_in_every_codec_and_append_nothing() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    create_topic_with_configs(&mut stream, "poison", &[]).await;
    let mut expected_end = 0;
    for codec in CODECS {
        let answer = produce(&mut stream, 9, "poison", good(codec, 3)).await;
        assert_eq!((answer.error_code, answer.base_offset), (0, expected_end), "{codec:?} good batch");
        expected_end += 3;
        for (what, batch) in poison_batches(codec) {
            let answer = produce(&mut stream, 9, "poison", batch).await;
            assert_eq!(answer.error_code, kafka_code::CORRUPT_MESSAGE, "{what}");
            assert!(answer.error_message.is_some(), "{what}: v9 carries a message");
            assert_eq!(answer.base_offset, -1);
            assert_eq!(log_end(&broker, "poison"), expected_end, "{what} appended something");
        }
    }
    let records = read_all(&mut stream, "poison").await;
    assert_eq!(records.len() as i64, expected_end);
    for (index, (offset, key, _)) in records.iter().enumerate() {
        assert_eq!(*offset, index as i64);
        assert_eq!(key.as_deref(), Some(format!("key-{}", index % 3).as_bytes()));
    }
}

// Goal: a compacted topic refuses keyless records with INVALID_RECORD and names them in
// record_errors (v8+); an older version gets the code alone; keyed records and tombstones are
// accepted; a delete topic accepts keyless records.
#[tokio::test]
async fn keyless_records_on_a_compacted_topic_are_invalid_record_with_record_errors() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    create_topic_with_configs(&mut stream, "compacted", &[("cleanup.policy", "compact")]).await;
    create_topic_with_configs(&mut stream, "plain", &[]).await;
    for codec in CODECS {
        let mixed: &[KeyValue<'_>] = &[(Some(b"k"), Some(b"v")), (None, Some(b"v")), (Some(b"t"), None), (None, None)];
        let batch = batch_with(codec, 0, mixed, now_ms());
        let before = log_end(&broker, "compacted");
        let answer = produce(&mut stream, 9, "compacted", batch.clone()).await;
        assert_eq!(answer.error_code, kafka_code::INVALID_RECORD, "{codec:?}");
        let indexes: Vec<i32> = answer.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, vec![1, 3], "{codec:?}");
        assert!(answer.record_errors.iter().all(|e| e.batch_index_error_message.is_some()));
        let answer = produce(&mut stream, 7, "compacted", batch.clone()).await;
        assert_eq!(answer.error_code, kafka_code::INVALID_RECORD);
        assert!(answer.record_errors.is_empty(), "v7 has no record_errors");
        assert_eq!(log_end(&broker, "compacted"), before);
        let keyed = batch_with(codec, 0, &[(Some(b"k"), Some(b"v")), (Some(b"t"), None)], now_ms());
        assert_eq!(produce(&mut stream, 9, "compacted", keyed).await.error_code, 0);
        assert_eq!(produce(&mut stream, 9, "plain", batch).await.error_code, 0);
    }
    assert_eq!(read_all(&mut stream, "compacted").await.len(), 10);
    assert_eq!(read_all(&mut stream, "plain").await.len(), 20);
}

// Goal: CreateTime timestamps are checked against message.timestamp.before/after.max.ms (and
// the deprecated difference.max.ms as their fallback): outside is INVALID_TIMESTAMP with the
// records named, inside is appended; a LogAppendTime topic accepts any timestamp and stores
// the leader's clock (in the records and in the response's log_append_time_ms).
#[tokio::test]
async fn timestamps_follow_the_topic_config() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    create_topic_with_configs(
        &mut stream,
        "bounded",
        &[("message.timestamp.before.max.ms", "3600000"), ("message.timestamp.after.max.ms", "60000")],
    )
    .await;
    create_topic_with_configs(&mut stream, "difference", &[("message.timestamp.difference.max.ms", "3600000")]).await;
    create_topic_with_configs(&mut stream, "append-time", &[("message.timestamp.type", "LogAppendTime")]).await;
    let pairs: &[KeyValue<'_>] = &[(Some(b"a"), Some(b"1")), (Some(b"b"), Some(b"2"))];
    for topic in ["bounded", "difference"] {
        for codec in CODECS {
            let day_old = batch_with(codec, 0, pairs, now_ms() - 24 * 3_600_000);
            let answer = produce(&mut stream, 9, topic, day_old).await;
            assert_eq!(answer.error_code, kafka_code::INVALID_TIMESTAMP, "{topic} {codec:?}");
            assert_eq!(answer.record_errors.iter().map(|e| e.batch_index).collect::<Vec<_>>(), vec![0, 1]);
            let fresh = batch_with(codec, 0, pairs, now_ms() - 1_000);
            assert_eq!(produce(&mut stream, 9, topic, fresh).await.error_code, 0, "{topic} {codec:?}");
        }
    }
    let ahead = batch_with(Compression::None, 0, pairs, now_ms() + 3_600_000);
    assert_eq!(produce(&mut stream, 9, "bounded", ahead).await.error_code, kafka_code::INVALID_TIMESTAMP);
    assert_eq!(log_end(&broker, "bounded"), 10);

    let before = now_ms();
    let ancient = batch_with(Compression::Zstd, 0, pairs, 1_000);
    let answer = produce(&mut stream, 9, "append-time", ancient).await;
    assert_eq!(answer.error_code, 0);
    let after = now_ms();
    assert!((before..=after).contains(&answer.log_append_time_ms), "log_append_time_ms {}", answer.log_append_time_ms);
    let create_time = produce(&mut stream, 9, "bounded", batch_with(Compression::None, 0, pairs, now_ms())).await;
    assert_eq!(create_time.log_append_time_ms, -1);
    for (_, _, timestamp) in read_all(&mut stream, "append-time").await {
        assert!((before..=after).contains(&timestamp), "LogAppendTime {timestamp} not in [{before}, {after}]");
    }
}
