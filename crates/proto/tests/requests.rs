//! Request decoding and response encoding, through the crate's public api.
//!
//! Goal: real request bytes (encoded by `kafka-protocol`, or written by hand where a peer would
//! lie) decode to what was sent, lying lengths are refused as errors instead of allocations, and
//! responses carry the header version Kafka clients expect.
//!
//! The lying-length tests are the guard's regression tests: without the guard, `kafka-protocol`
//! 0.18 asks the allocator for ~154 GB on the first one and the test process aborts.

use bytes::{BufMut, Bytes, BytesMut};
use sluice_proto::kafka_protocol::messages::api_versions_response::ApiVersion;
use sluice_proto::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use sluice_proto::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use sluice_proto::kafka_protocol::messages::*;
use sluice_proto::kafka_protocol::protocol::{Encodable, StrBytes};
use sluice_proto::{
    decode_request, decode_request_body, decode_response, encode_request, encode_response, read_request_prefix,
    split_frame, ApiVersionRange, ProtoError, SupportedApis, REQUEST_BYTES_MAX,
};

fn supported() -> SupportedApis {
    SupportedApis::new([
        ApiVersionRange::new(ApiKey::Produce, 3, 9),
        ApiVersionRange::new(ApiKey::Fetch, 4, 12),
        ApiVersionRange::new(ApiKey::Metadata, 0, 12),
        ApiVersionRange::new(ApiKey::ApiVersions, 0, 3),
    ])
    .unwrap()
}

fn header(api_key: ApiKey, api_version: i16, correlation_id: i32) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(api_version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("test-client")))
}

/// Encodes a request frame and returns its payload (what the broker decodes).
fn request_payload<R: Encodable>(header: &RequestHeader, body: &R) -> Bytes {
    let frame = encode_request(header, body).unwrap();
    let mut buffer = BytesMut::from(&frame[..]);
    split_frame(&mut buffer, REQUEST_BYTES_MAX).unwrap().expect("whole frame")
}

fn round_trip<R: Encodable + Into<RequestKind> + Clone>(api_key: ApiKey, version: i16, body: R) -> RequestKind {
    let header = header(api_key, version, 0x7fff_0001);
    let request = decode_request(request_payload(&header, &body), &supported()).unwrap();
    assert_eq!(request.api_key, api_key);
    assert_eq!(request.header, header);
    assert_eq!(request.correlation_id(), 0x7fff_0001);
    request.body
}

fn topic_name(name: String) -> TopicName {
    TopicName::from(StrBytes::from_string(name))
}

#[test]
fn metadata_v0_claiming_i32_max_topics_is_refused_without_allocating() {
    // Metadata v0 body: topics array count, then one 1-byte topic name. 7 bytes claiming
    // 2,147,483,647 topics.
    let body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0x00, 0x01, b'a']);
    let error = decode_request_body(ApiKey::Metadata, 0, &body).unwrap_err();
    assert!(matches!(error, ProtoError::Malformed { .. }), "{error:?}");

    // The same through the full path, header included.
    let mut payload = BytesMut::new();
    payload.put_i16(ApiKey::Metadata as i16);
    payload.put_i16(0);
    payload.put_i32(7);
    payload.put_i16(-1); // null client id
    payload.put_slice(&body);
    let error = decode_request(payload.freeze(), &supported()).unwrap_err();
    assert!(matches!(error, ProtoError::Malformed { .. }), "{error:?}");
}

#[test]
fn compact_array_claiming_u32_max_elements_is_refused() {
    // Metadata v12 (flexible): topics is a compact array, count + 1 as an unsigned varint.
    // 0xff 0xff 0xff 0xff 0x0f = u32::MAX.
    let body = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00, 0x00]);
    let error = decode_request_body(ApiKey::Metadata, 12, &body).unwrap_err();
    assert!(matches!(error, ProtoError::Malformed { .. }), "{error:?}");
}

#[test]
fn nested_lying_count_inside_a_valid_prefix_is_refused() {
    // A Fetch v4 whose first topic claims 2^30 partitions; everything before it is honest.
    let mut body = BytesMut::new();
    body.put_i32(-1); // replica id
    body.put_i32(500); // max wait ms
    body.put_i32(1); // min bytes
    body.put_i32(52_428_800); // max bytes (a large scalar: must not be mistaken for a lie)
    body.put_i8(0); // isolation level
    body.put_i32(1); // one topic
    body.put_i16(1);
    body.put_slice(b"t");
    body.put_i32(1 << 30); // partitions count: a lie
    body.put_slice(&[0; 8]);
    let error = decode_request_body(ApiKey::Fetch, 4, &body.freeze()).unwrap_err();
    assert!(matches!(error, ProtoError::Malformed { .. }), "{error:?}");
}

#[test]
fn fetch_with_large_scalars_round_trips_in_every_supported_version() {
    // max_bytes, partition_max_bytes, session ids and the correlation id are all far larger than
    // the bytes that follow them: the guard clamps them in its first pass and must still return
    // the real values.
    for version in 4..=12 {
        let partitions = (0..3)
            .map(|partition| {
                let mut p = FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(1 << 40)
                    .with_partition_max_bytes(1_048_576);
                if version >= 5 {
                    p = p.with_log_start_offset(-1);
                }
                if version >= 9 {
                    p = p.with_current_leader_epoch(2_000_000_000);
                }
                p
            })
            .collect();
        let mut body = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(52_428_800)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name("orders".into()))
                .with_partitions(partitions)]);
        if version >= 7 {
            body = body.with_session_id(1_999_999_999).with_session_epoch(-1);
        }
        if version >= 11 {
            body = body.with_rack_id(StrBytes::from_static_str("rack-a"));
        }
        let decoded = round_trip(ApiKey::Fetch, version, body.clone());
        assert_eq!(decoded, RequestKind::Fetch(body), "version {version}");
    }
}

#[test]
fn large_honest_arrays_decode_in_classic_and_flexible_versions() {
    for version in [1, 8, 9, 12] {
        let topics = (0..3000)
            .map(|index| MetadataRequestTopic::default().with_name(Some(topic_name(format!("t{index}")))))
            .collect();
        let mut body = MetadataRequest::default().with_topics(Some(topics));
        if version >= 4 {
            body = body.with_allow_auto_topic_creation(false);
        }
        let decoded = round_trip(ApiKey::Metadata, version, body.clone());
        assert_eq!(decoded, RequestKind::Metadata(body), "version {version}");
    }
}

#[test]
fn large_unknown_tag_numbers_survive_the_guard() {
    // A tag number (5000) larger than the bytes after it is a scalar, not a length.
    let body = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("sluice-test"))
        .with_client_software_version(StrBytes::from_static_str("1.0"))
        .with_unknown_tagged_field(5000, Bytes::from_static(b"xy"));
    let decoded = round_trip(ApiKey::ApiVersions, 3, body.clone());
    assert_eq!(decoded, RequestKind::ApiVersions(body));
}

#[test]
fn produce_records_field_longer_than_the_request_is_refused() {
    // Produce v3 with a records field claiming 1 GiB in a request of a few dozen bytes.
    let mut body = BytesMut::new();
    body.put_i16(-1); // null transactional id
    body.put_i16(-1); // acks
    body.put_i32(30_000); // timeout
    body.put_i32(1);
    body.put_i16(1);
    body.put_slice(b"t");
    body.put_i32(1);
    body.put_i32(0); // partition
    body.put_i32(1 << 30); // records length: a lie
    body.put_slice(&[0; 16]);
    let error = decode_request_body(ApiKey::Produce, 3, &body.freeze()).unwrap_err();
    assert!(matches!(error, ProtoError::Malformed { .. }), "{error:?}");
}

#[test]
fn unknown_api_unsupported_version_and_truncation_are_typed_errors() {
    let supported = supported();

    let mut unknown = BytesMut::new();
    unknown.put_i16(9999);
    unknown.put_i16(0);
    unknown.put_i32(1);
    let error = decode_request(unknown.freeze(), &supported).unwrap_err();
    assert!(matches!(error, ProtoError::UnknownApiKey { api_key: 9999 }));

    let header = header(ApiKey::Metadata, 13, 1);
    let payload = request_payload(&header, &MetadataRequest::default());
    let error = decode_request(payload, &supported).unwrap_err();
    assert!(matches!(error, ProtoError::UnsupportedVersion { api_key: ApiKey::Metadata, api_version: 13 }));

    // A known api the table does not list at all.
    let header = header_for(ApiKey::DeleteTopics, 1);
    let payload = request_payload(&header, &DeleteTopicsRequest::default());
    let error = decode_request(payload, &supported).unwrap_err();
    assert!(matches!(error, ProtoError::UnsupportedVersion { .. }));

    let error = decode_request(Bytes::from_static(&[0, 18, 0]), &supported).unwrap_err();
    assert!(matches!(error, ProtoError::TruncatedHeader { length_bytes: 3 }));
    assert!(read_request_prefix(&[0; 7]).is_err());
}

fn header_for(api_key: ApiKey, api_version: i16) -> RequestHeader {
    header(api_key, api_version, 1)
}

#[test]
fn truncated_and_garbage_bodies_are_malformed_not_panics() {
    let supported = supported();
    let header = header(ApiKey::Metadata, 12, 5);
    let body = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name("orders".into())))]));
    let payload = request_payload(&header, &body);
    for cut in 8..payload.len() {
        let result = decode_request(payload.slice(..cut), &supported);
        assert!(matches!(result, Err(ProtoError::Malformed { .. })), "cut at {cut}: {result:?}");
    }
    // Deterministic pseudo-random garbage after a valid prefix, for every supported api.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for range in supported.ranges() {
        for version in range.min_version..=range.max_version {
            for _ in 0..200 {
                let mut payload = BytesMut::new();
                payload.put_i16(range.api_key as i16);
                payload.put_i16(version);
                payload.put_i32(1);
                payload.put_i16(-1);
                let length = (state % 64) as usize;
                for _ in 0..length {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    payload.put_u8(state as u8);
                }
                // Must return (Ok or Err) without panicking or aborting.
                let _ = decode_request(payload.freeze(), &supported);
            }
        }
    }
}

#[test]
fn api_versions_responses_use_header_v0_in_every_version() {
    let body = ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(vec![ApiVersion::default().with_api_key(18).with_min_version(0).with_max_version(3)]);
    for version in 0..=3 {
        let frame = encode_response(ApiKey::ApiVersions, version, 42, &body).unwrap();
        assert_eq!(&frame[4..8], &42i32.to_be_bytes());
        // Header v0 has no tagged-field byte: the body's error code follows at once.
        assert_eq!(&frame[8..10], &0i16.to_be_bytes());
        let (header, decoded): (ResponseHeader, ApiVersionsResponse) =
            decode_response(ApiKey::ApiVersions, version, frame.slice(4..)).unwrap();
        assert_eq!(header.correlation_id, 42);
        assert_eq!(decoded.api_keys, body.api_keys);
        let length = i32::from_be_bytes(frame[..4].try_into().unwrap());
        assert_eq!(length as usize, frame.len() - 4);
    }
}

#[test]
fn flexible_responses_use_header_v1_with_tagged_fields() {
    let body = MetadataResponse::default();
    let frame = encode_response(ApiKey::Metadata, 9, 7, &body).unwrap();
    assert_eq!(&frame[4..8], &7i32.to_be_bytes());
    assert_eq!(frame[8], 0, "empty tagged-field section of header v1");
    assert_eq!(frame.len(), 4 + 4 + 1 + body.compute_size(9).unwrap());
    let classic = encode_response(ApiKey::Metadata, 8, 7, &body).unwrap();
    assert_eq!(classic.len(), 4 + 4 + body.compute_size(8).unwrap());
}
