//! Client quotas against a real broker, in real bytes: a client id over its producer_byte_rate
//! gets `throttle_time_ms > 0` while everything it sent is stored, its connection is muted
//! for the throttle, and a client without a quota is never throttled (KIP-219). Nothing here
//! measures throughput.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::wire::{batch_of, create_topic, read_all, topic_name, PRODUCE_VERSION};
use common::{header, read_frame, TestBroker};
use sluice_proto::kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use sluice_proto::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use sluice_proto::kafka_protocol::messages::*;
use sluice_proto::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice_proto::{decode_response, encode_request};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The quota under test: 10 kB/s, so a burst of a little over 100 kB (ten windows' worth, the
/// rate's padding) crosses it after a dozen requests.
const QUOTA_BYTES_PER_S: f64 = 10_000.0;

/// Sends `body` as `client_id` and decodes the response.
async fn call_as<Req: Encodable, Resp: Decodable>(
    stream: &mut TcpStream,
    client_id: &'static str,
    api_key: ApiKey,
    version: i16,
    body: &Req,
) -> Resp {
    let header = header(api_key, version, 11).with_client_id(Some(StrBytes::from_static_str(client_id)));
    stream.write_all(&encode_request(&header, body).unwrap()).await.unwrap();
    let (_, response) = decode_response(api_key, version, read_frame(stream).await).unwrap();
    response
}

/// Produces `records` to partition 0 of `topic` as `client_id`; (error code, throttle ms).
async fn produce_as(stream: &mut TcpStream, client_id: &'static str, topic: &str, records: Bytes) -> (i16, i32) {
    let request =
        ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))])]);
    let response: ProduceResponse = call_as(stream, client_id, ApiKey::Produce, PRODUCE_VERSION, &request).await;
    (response.responses[0].partition_responses[0].error_code, response.throttle_time_ms)
}

/// Sets producer_byte_rate of `/clients/<client_id>` with AlterClientQuotas v1.
async fn set_client_quota(stream: &mut TcpStream, client_id: &str, bytes_per_s: f64) {
    set_client_quota_key(stream, client_id, "producer_byte_rate", bytes_per_s).await;
}

/// Sets `key` of `/clients/<client_id>` with AlterClientQuotas v1.
async fn set_client_quota_key(stream: &mut TcpStream, client_id: &str, key: &'static str, value: f64) {
    let request = AlterClientQuotasRequest::default().with_entries(vec![EntryData::default()
        .with_entity(vec![EntityData::default()
            .with_entity_type(StrBytes::from_static_str("client-id"))
            .with_entity_name(Some(StrBytes::from_string(client_id.to_string())))])
        .with_ops(vec![OpData::default().with_key(StrBytes::from_static_str(key)).with_value(value)])]);
    let response: AlterClientQuotasResponse = common::call(stream, ApiKey::AlterClientQuotas, 1, &request).await;
    assert_eq!(response.entries[0].error_code, 0, "{:?}", response.entries[0].error_message);
}

// Goal: KIP-219 end to end. Method: a quota on client id `limited`; that client produces
// 10 kB batches (~10.2 kB with keys and headers) until a response carries a throttle time; the next request on its connection
// is answered no sooner than the throttle; every record of both clients is in the log; the
// client without a quota (`free`, same volume) always gets 0.
#[tokio::test]
async fn a_client_over_its_producer_byte_rate_is_throttled_and_nothing_is_dropped() {
    let broker = TestBroker::start().await;
    let mut admin = broker.connect().await;
    assert_eq!(create_topic(&mut admin, "quota-t", 1).await, 0);
    set_client_quota(&mut admin, "limited", QUOTA_BYTES_PER_S).await;

    let values: Vec<Vec<u8>> = (0..10).map(|i| vec![b'a' + i as u8; 1_000]).collect();
    let batch = batch_of(&values);
    let mut free = broker.connect().await;
    for _ in 0..20 {
        assert_eq!(produce_as(&mut free, "free", "quota-t", batch.clone()).await, (0, 0), "no quota, no throttle");
    }

    let mut limited = broker.connect().await;
    let mut sent = 0;
    let throttle_ms = loop {
        assert!(sent < 20, "200 kB at 10 kB/s never throttled");
        let (code, throttle_ms) = produce_as(&mut limited, "limited", "quota-t", batch.clone()).await;
        assert_eq!(code, 0, "a throttled produce is still appended");
        sent += 1;
        if throttle_ms > 0 {
            break throttle_ms;
        }
    };
    assert!(sent >= 10, "the first ten windows' worth is within the padded rate ({sent} batches)");
    assert!(u64::try_from(throttle_ms).unwrap() <= sluice_broker::quota::QUOTA_THROTTLE_MS_MAX);

    // Muted: the next request waits out the throttle (a lower bound, not a throughput).
    let started = tokio::time::Instant::now();
    let (code, _) = produce_as(&mut limited, "limited", "quota-t", batch.clone()).await;
    assert_eq!(code, 0);
    sent += 1;
    let waited = started.elapsed();
    assert!(
        waited + Duration::from_millis(20) >= Duration::from_millis(throttle_ms as u64),
        "{waited:?} < {throttle_ms} ms"
    );

    let stored = read_all(&mut admin, "quota-t", 0).await.unwrap();
    assert_eq!(stored.len(), (20 + sent) * values.len(), "every record of both clients is stored");
}

// Goal: request_percentage is enforced. Method: a quota of 0.01% of a thread (1 ms of handler
// time over the ~10 s window) on client id `busy`; it sends Metadata requests until the
// broker's request-quota throttle counter grows; the next request on its connection is
// answered no sooner than the throttle just handed out (the connection is muted); a client
// without a quota, sending as many, earns no throttle.
#[tokio::test]
async fn a_client_over_its_request_percentage_is_muted() {
    let broker = TestBroker::start().await;
    let metrics = &broker.broker.metrics;
    let mut admin = broker.connect().await;
    set_client_quota_key(&mut admin, "busy", "request_percentage", 0.01).await;
    let metadata = MetadataRequest::default().with_topics(None);

    let mut free = broker.connect().await;
    for _ in 0..200 {
        let _: MetadataResponse = call_as(&mut free, "free", ApiKey::Metadata, 12, &metadata).await;
    }
    assert_eq!(metrics.quota_throttle_seconds("request"), 0.0, "no quota, no throttle");

    let mut busy = broker.connect().await;
    let mut sent = 0;
    let throttle_s = loop {
        assert!(sent < 10_000, "10,000 requests never passed 1 ms of handler time");
        let before = metrics.quota_throttle_seconds("request");
        let _: MetadataResponse = call_as(&mut busy, "busy", ApiKey::Metadata, 12, &metadata).await;
        sent += 1;
        let earned = metrics.quota_throttle_seconds("request") - before;
        if earned > 0.0 {
            break earned;
        }
    };
    assert!(throttle_s <= sluice_broker::quota::QUOTA_THROTTLE_MS_MAX as f64 / 1000.0);
    let started = tokio::time::Instant::now();
    let _: MetadataResponse = call_as(&mut busy, "busy", ApiKey::Metadata, 12, &metadata).await;
    let waited = started.elapsed();
    assert!(
        waited + Duration::from_millis(20) >= Duration::from_secs_f64(throttle_s),
        "{waited:?} < {throttle_s} s: the connection was not muted"
    );
}
