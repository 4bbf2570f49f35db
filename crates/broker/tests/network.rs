//! The broker's network layer, spoken to in raw bytes over real TCP.
//!
//! Goal: what issue 4 asks of the wire protocol before any data api exists — a bad length
//! prefix, a truncated frame or garbage closes the connection (before buffering a claimed
//! payload); an unknown api or unsupported version closes it, except ApiVersions, which answers
//! UNSUPPORTED_VERSION; ApiVersions v0..v4 answer exactly the supported table; pipelined
//! requests are answered in order; and a real librdkafka client (kcat) completes its
//! ApiVersions handshake.
//!
//! Method: each test starts a whole broker (`Node`, see `common`) on ephemeral ports with a
//! temporary data directory, writes bytes with a plain `TcpStream`, and reads frames or
//! end-of-stream with a timeout.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use sluice_broker::BrokerConfig;
use sluice_proto::kafka_protocol::messages::{AddOffsetsToTxnRequest, ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use sluice_proto::kafka_protocol::protocol::{Encodable, StrBytes};
use sluice_proto::{decode_response, encode_request, REQUEST_BYTES_MAX};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

use common::{assert_closed, header, read_frame, TestBroker};

fn api_versions_request(version: i16, correlation_id: i32) -> Bytes {
    let body = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("sluice-test"))
        .with_client_software_version(StrBytes::from_static_str("0.1.0"));
    let body = if version >= 3 { body } else { ApiVersionsRequest::default() };
    encode_request(&header(ApiKey::ApiVersions, version, correlation_id), &body).unwrap()
}

fn decode_api_versions(version: i16, payload: Bytes) -> (i32, ApiVersionsResponse) {
    let (header, body) = decode_response(ApiKey::ApiVersions, version, payload).unwrap();
    (header.correlation_id, body)
}

#[tokio::test]
async fn api_versions_v0_to_v4_answer_exactly_the_supported_table() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    let expected = sluice_broker::api_versions::supported_apis().to_api_versions();
    for version in 0..=4 {
        let correlation_id = 1000 + i32::from(version);
        stream.write_all(&api_versions_request(version, correlation_id)).await.unwrap();
        let (echoed, response) = decode_api_versions(version, read_frame(&mut stream).await);
        assert_eq!(echoed, correlation_id, "v{version}");
        assert_eq!(response.error_code, 0, "v{version}");
        assert_eq!(response.api_keys, expected, "v{version}");
    }
}

#[tokio::test]
async fn unsupported_api_versions_version_gets_a_v0_unsupported_version_answer() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    // A future version with a body we cannot know: only the header is read.
    let mut payload = BytesMut::new();
    header(ApiKey::ApiVersions, 127, 77).encode(&mut payload, 2).unwrap();
    payload.put_slice(&[0xde, 0xad, 0xbe, 0xef]);
    let mut frame = BytesMut::new();
    frame.put_i32(payload.len() as i32);
    frame.put_slice(&payload);
    stream.write_all(&frame).await.unwrap();

    let (echoed, response) = decode_api_versions(0, read_frame(&mut stream).await);
    assert_eq!(echoed, 77);
    assert_eq!(response.error_code, 35, "UNSUPPORTED_VERSION");
    assert_eq!(response.api_keys.len(), 1);
    assert_eq!(response.api_keys[0].api_key, ApiKey::ApiVersions as i16);
    assert_eq!((response.api_keys[0].min_version, response.api_keys[0].max_version), (0, 4));

    // Kafka keeps the connection open so the client can retry with a version we speak.
    stream.write_all(&api_versions_request(3, 78)).await.unwrap();
    let (echoed, response) = decode_api_versions(3, read_frame(&mut stream).await);
    assert_eq!((echoed, response.error_code), (78, 0));
}

#[tokio::test]
async fn oversized_length_prefix_closes_without_waiting_for_the_payload() {
    let broker = TestBroker::start().await;
    for length in [REQUEST_BYTES_MAX as i32 + 1, i32::MAX] {
        let mut stream = broker.connect().await;
        // Only the prefix is sent: the broker must decide from it alone.
        stream.write_all(&length.to_be_bytes()).await.unwrap();
        assert_closed(&mut stream).await;
    }
}

#[tokio::test]
async fn negative_length_prefix_closes_the_connection() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    stream.write_all(&(-1i32).to_be_bytes()).await.unwrap();
    assert_closed(&mut stream).await;
}

#[tokio::test]
async fn frame_arriving_byte_by_byte_is_assembled_and_answered() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    let request = api_versions_request(3, 5);
    for byte in request.iter() {
        stream.write_all(&[*byte]).await.unwrap();
        stream.flush().await.unwrap();
    }
    let (echoed, response) = decode_api_versions(3, read_frame(&mut stream).await);
    assert_eq!((echoed, response.error_code), (5, 0));
}

#[tokio::test]
async fn truncated_frame_then_end_of_stream_closes_without_an_answer() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    let request = api_versions_request(3, 6);
    stream.write_all(&request[..request.len() - 3]).await.unwrap();
    stream.shutdown().await.unwrap(); // end of stream inside the frame
    assert_closed(&mut stream).await;
}

#[tokio::test]
async fn garbage_closes_the_connection() {
    let broker = TestBroker::start().await;

    // An HTTP request: its first four bytes read as a length of 1,195,725,856.
    let mut stream = broker.connect().await;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    assert_closed(&mut stream).await;

    // A well-framed payload of noise: api key 0x1234 does not exist.
    let mut stream = broker.connect().await;
    stream.write_all(&[0, 0, 0, 10, 0x12, 0x34, 0x56, 0x78, 1, 2, 3, 4, 5, 6]).await.unwrap();
    assert_closed(&mut stream).await;

    // A frame too short to hold a request header.
    let mut stream = broker.connect().await;
    stream.write_all(&[0, 0, 0, 3, 0, 18, 0]).await.unwrap();
    assert_closed(&mut stream).await;

    // A valid ApiVersions v3 header followed by a body that is not one.
    let mut stream = broker.connect().await;
    let mut payload = BytesMut::new();
    header(ApiKey::ApiVersions, 3, 9).encode(&mut payload, 2).unwrap();
    payload.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let mut frame = BytesMut::new();
    frame.put_i32(payload.len() as i32);
    frame.put_slice(&payload);
    stream.write_all(&frame).await.unwrap();
    assert_closed(&mut stream).await;
}

#[tokio::test]
async fn unknown_api_key_closes_the_connection() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    let mut payload = BytesMut::new();
    payload.put_i16(999);
    payload.put_i16(0);
    payload.put_i32(1);
    payload.put_i16(-1);
    let mut frame = BytesMut::new();
    frame.put_i32(payload.len() as i32);
    frame.put_slice(&payload);
    stream.write_all(&frame).await.unwrap();
    assert_closed(&mut stream).await;
}

#[tokio::test]
async fn known_but_unsupported_api_closes_the_connection() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    // AddOffsetsToTxn is a real api that this broker does not implement (no transactions).
    let frame = encode_request(&header(ApiKey::AddOffsetsToTxn, 0, 3), &AddOffsetsToTxnRequest::default()).unwrap();
    stream.write_all(&frame).await.unwrap();
    assert_closed(&mut stream).await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    // More requests than the in-flight limit, in one write: the broker must read them in turns
    // and still answer every one, in order.
    let count = sluice_broker::config::IN_FLIGHT_REQUESTS_MAX as i32 * 3;
    let mut all = BytesMut::new();
    for correlation_id in 0..count {
        let version = (correlation_id % 5) as i16;
        all.put_slice(&api_versions_request(version, correlation_id));
    }
    stream.write_all(&all).await.unwrap();
    for correlation_id in 0..count {
        let version = (correlation_id % 5) as i16;
        let (echoed, response) = decode_api_versions(version, read_frame(&mut stream).await);
        assert_eq!(echoed, correlation_id);
        assert_eq!(response.error_code, 0);
    }
}

#[tokio::test]
async fn a_closed_connection_does_not_affect_others() {
    let broker = TestBroker::start().await;
    let mut healthy = broker.connect().await;
    let mut bad = broker.connect().await;
    bad.write_all(&(-7i32).to_be_bytes()).await.unwrap();
    assert_closed(&mut bad).await;
    healthy.write_all(&api_versions_request(2, 11)).await.unwrap();
    let (echoed, _) = decode_api_versions(2, read_frame(&mut healthy).await);
    assert_eq!(echoed, 11);
}

#[tokio::test]
async fn a_client_that_never_reads_is_throttled_not_buffered() {
    // The client pipelines far more requests than the broker may hold and never reads a
    // response. Once the socket buffers between them are full, the broker must stop reading
    // (in-flight limit reached, responses not drained), so the client's writes stall well
    // before all the bytes are accepted. A broker that buffered everything would take them all.
    let broker = TestBroker::start().await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(broker.address).await.unwrap();
    let (_read_half, mut write_half) = stream.into_split();

    let request = api_versions_request(2, 1);
    let requests_per_chunk = 64 * 1024 / request.len();
    let chunk: Vec<u8> = request.iter().copied().cycle().take(request.len() * requests_per_chunk).collect();
    let total_bytes: usize = 256 * 1024 * 1024;
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = std::sync::Arc::clone(&written);
    let writer = tokio::spawn(async move {
        while progress.load(std::sync::atomic::Ordering::Relaxed) < total_bytes {
            if write_half.write_all(&chunk).await.is_err() {
                break;
            }
            progress.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let accepted = written.load(std::sync::atomic::Ordering::Relaxed);
    assert!(!writer.is_finished(), "the broker accepted all {total_bytes} bytes without backpressure");
    assert!(accepted < 64 * 1024 * 1024, "the broker accepted {accepted} bytes before pushing back");
    writer.abort();
}

#[tokio::test]
async fn connections_past_the_limit_wait_until_one_closes() {
    let broker = TestBroker::start_with(BrokerConfig { connections_max: 2, ..BrokerConfig::default() }).await;
    let mut first = broker.connect().await;
    let mut second = broker.connect().await;
    for (stream, id) in [(&mut first, 1), (&mut second, 2)] {
        stream.write_all(&api_versions_request(1, id)).await.unwrap();
        assert_eq!(decode_api_versions(1, read_frame(stream).await).0, id);
    }
    // The third connects (the kernel completes the handshake) but is not served yet.
    let mut third = broker.connect().await;
    third.write_all(&api_versions_request(1, 3)).await.unwrap();
    let mut length = [0u8; 4];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read_exact(&mut length)).await;
    assert!(early.is_err(), "third connection served past connections_max");
    drop(first);
    let (echoed, _) = decode_api_versions(1, read_frame(&mut third).await);
    assert_eq!(echoed, 3);
}

#[tokio::test]
async fn shutdown_closes_open_connections() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    stream.write_all(&api_versions_request(0, 1)).await.unwrap();
    read_frame(&mut stream).await;
    drop(broker);
    assert_closed(&mut stream).await;
}

#[tokio::test]
async fn a_thousand_idle_connections_do_not_slow_another_client() {
    let broker = TestBroker::start().await;
    let mut idle = Vec::new();
    for index in 0..1000 {
        let mut stream = broker.connect().await;
        if index % 2 == 0 {
            // Half of them sit on an incomplete frame.
            stream.write_all(&[0, 0, 0, 40, 0, 18]).await.unwrap();
        }
        idle.push(stream);
    }
    let mut active = broker.connect().await;
    let started = std::time::Instant::now();
    for correlation_id in 0..100 {
        active.write_all(&api_versions_request(3, correlation_id)).await.unwrap();
        assert_eq!(decode_api_versions(3, read_frame(&mut active).await).0, correlation_id);
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "100 round trips took {elapsed:?}");
    assert_eq!(idle.len(), 1000);
}

#[tokio::test]
async fn request_memory_is_bounded_across_connections() {
    // Two clients each announce a maximal frame and send only a few bytes of it; together they
    // hold the whole broker-wide budget. A third client's small request must wait (not be read)
    // until one of them goes away: the broker does not buffer past its budget.
    let request_bytes_max = 64 * 1024;
    let broker = TestBroker::start_with(BrokerConfig {
        request_bytes_max,
        connection_queued_bytes_max: request_bytes_max,
        request_memory_bytes_max: 2 * request_bytes_max,
        ..BrokerConfig::default()
    })
    .await;
    let mut holders = Vec::new();
    for id in 0..2 {
        // An ApiVersions request and, in the same write, the start of a maximal frame. The broker
        // charges the second frame in the same pass that queues the first, so the answer to the
        // first proves the second is charged.
        let mut bytes = BytesMut::from(&api_versions_request(0, id)[..]);
        bytes.put_i32(request_bytes_max as i32);
        bytes.put_slice(&[0, 18, 0, 3]);
        let mut holder = broker.connect().await;
        holder.write_all(&bytes).await.unwrap();
        assert_eq!(decode_api_versions(0, read_frame(&mut holder).await).0, id);
        holders.push(holder);
    }
    let mut waiting = broker.connect().await;
    waiting.write_all(&api_versions_request(3, 21)).await.unwrap();
    let mut length = [0u8; 4];
    let early = tokio::time::timeout(Duration::from_millis(300), waiting.read_exact(&mut length)).await;
    assert!(early.is_err(), "request served beyond the request-memory budget");
    drop(holders.pop());
    let (echoed, response) = decode_api_versions(3, read_frame(&mut waiting).await);
    assert_eq!((echoed, response.error_code), (21, 0));
}

#[tokio::test]
async fn idle_connections_are_closed_and_active_ones_are_not() {
    let broker = TestBroker::start_with(BrokerConfig { connection_idle_ms_max: 500, ..BrokerConfig::default() }).await;
    let mut idle = broker.connect().await;
    let mut stalled = broker.connect().await;
    stalled.write_all(&[0, 0, 0, 40, 0, 18]).await.unwrap(); // stops inside a frame
    let mut active = broker.connect().await;
    let started = std::time::Instant::now();
    for correlation_id in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        active.write_all(&api_versions_request(1, correlation_id)).await.unwrap();
        assert_eq!(decode_api_versions(1, read_frame(&mut active).await).0, correlation_id);
    }
    assert!(started.elapsed() > Duration::from_millis(900), "the active client outlived the idle limit");
    assert_closed(&mut idle).await;
    assert_closed(&mut stalled).await;
}

/// kcat (Debian's, librdkafka 2.0.2) connects, sends its ApiVersions probe (v3), and parses our
/// answer: its debug log shows the response received and the broker UP, and it then lists the
/// cluster from our Metadata answer. kcat is installed by scripts/install-test-deps.sh.
#[tokio::test]
async fn kcat_completes_its_api_versions_handshake() {
    let broker = TestBroker::start().await;
    let kcat = which_kcat().expect("kcat not found: run scripts/install-test-deps.sh");
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(kcat)
            .args(["-L", "-m", "5", "-d", "broker,protocol", "-b"])
            .arg(broker.address.to_string())
            .output(),
    )
    .await
    .expect("kcat finishes")
    .expect("kcat runs");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("Received ApiVersionResponse"), "no ApiVersions response in kcat's log:\n{log}");
    assert!(log.contains("APIVERSION_QUERY -> UP"), "kcat did not accept the handshake:\n{log}");
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(listing.contains("1 brokers:") && listing.contains("broker 1 at"), "no metadata listing:\n{listing}");
}

fn which_kcat() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join("kcat")).find(|candidate| candidate.is_file())
    })
}
