//! Fuzz targets of the broker's request path (issue 12):
//!
//! - `request_frames` (pure, fast): arbitrary bytes as what a client sends — split into frames
//!   (`split_frame`, `REQUEST_BYTES_MAX`), each decoded as the dispatcher does
//!   (`read_request_prefix`, then `decode_request_within` against the broker's own API table
//!   and the decoded-size budget of `guard::decoded_bytes_max_for`). No panic; one execution's
//!   heap stays within the guard's budget plus a multiple of the input.
//! - `broker_dispatch` (end to end): the same bytes written to a connection of a real broker
//!   running in this process (`common::TestBroker`), then the write side closed; the broker
//!   answers or closes, never panics (a panic hook counts panics on every thread), and keeps
//!   answering ApiVersions on a fresh connection. Memory of this path is bounded by the
//!   connection budgets tested in `request_memory.rs`.
//!
//! - `consumer_offsets` (pure): arbitrary bytes as stored batches of `__consumer_offsets`, as is
//!   and with every batch's CRC recomputed: decoded by `sluice_proto::records::decode_record_batches`
//!   (the decoder of sluice-client's consumer, and of the coordinator's replay), then every
//!   record's key and value by the coordinator's `records::decode_key` / `decode_offset_value` /
//!   `decode_group_value` (the group metadata holds each member's consumer-protocol
//!   subscription and assignment). Seeds: the batches of `fuzz/corpus/record_batches/`
//!   (captured; those named `__consumer_offsets-*` hold a real group's commits and metadata).
//!
//! Seeds: `fuzz/corpus/request_frames/` — every distinct request frame (three per API and
//! version at most) that kcat (librdkafka) and the sluice CLI (sluice-client) sent to a real
//! broker through a recording proxy (`scripts/fuzz-capture.sh`). Budget and reproduction:
//! `fuzz/harness.rs`; long runs: `scripts/fuzz.sh`.

mod common;
#[path = "../../../fuzz/harness.rs"]
mod harness;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use common::{call, TestBroker};
use sluice_broker::api_versions::supported_apis;
use sluice_proto::guard::decoded_bytes_max_for;
use sluice_proto::kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use sluice_proto::{decode_request_within, read_request_prefix, split_frame, REQUEST_BYTES_MAX};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

/// The frame buffer (the input) and, per frame, its decoded form within
/// `decoded_bytes_max_for` (max(4 MiB, 8 × its wire size)). The guard counts what the
/// decoder reads, not the capacity its vectors grow to (a vector doubles as it grows), so the
/// bound allows three budgets per frame's size plus 16 bytes per input byte. Inputs that once
/// broke it: `zz-regression-varint-clamped-in-its-middle.bin` (1.2 GB before the guard fix of
/// this issue) and `zz-heap-peak-metadata-v12.bin` (9.44 MB: the same bug, milder).
fn frames_heap_bytes_max(input_bytes: usize) -> usize {
    3 * decoded_bytes_max_for(input_bytes) + 16 * input_bytes + 1024 * 1024
}

const FRAMES: harness::Target =
    harness::Target { name: "request_frames", ci_iterations: 1_000_000, heap_bytes_max: Some(frames_heap_bytes_max) };
const CONSUMER_OFFSETS: harness::Target = harness::Target {
    name: "consumer_offsets",
    ci_iterations: 100_000,
    heap_bytes_max: Some(consumer_offsets_heap_bytes_max),
};
const DISPATCH: harness::Target =
    harness::Target { name: "broker_dispatch", ci_iterations: 20_000, heap_bytes_max: None };

/// Decompression inside the record decoder, then the decoded records and their keys and
/// values: the same bound as the log's `record_batches` target.
fn consumer_offsets_heap_bytes_max(input_bytes: usize) -> usize {
    2 * 64 * 1024 * 1024 + 64 * input_bytes + 4 * 1024 * 1024
}

/// Frames decoded per input at most (an input of many tiny frames is no more interesting).
const FRAMES_PER_INPUT_MAX: usize = 64;

fn decode_frames(input: &[u8]) -> String {
    let supported = supported_apis();
    let mut buffer = BytesMut::from(input);
    let mut outcome = String::new();
    for _ in 0..FRAMES_PER_INPUT_MAX {
        let payload = match split_frame(&mut buffer, REQUEST_BYTES_MAX) {
            Ok(Some(payload)) => payload,
            Ok(None) => break,
            Err(error) => {
                outcome.push_str(&format!("[frame: {}]", harness::shape(&error.to_string())));
                break;
            }
        };
        let Ok(prefix) = read_request_prefix(&payload) else {
            outcome.push_str("[short]");
            continue;
        };
        let budget = decoded_bytes_max_for(payload.len());
        match decode_request_within(payload, &supported, budget) {
            Ok(request) => {
                assert!(
                    request.decoded_bytes <= budget,
                    "decoded {} bytes over the budget {budget}",
                    request.decoded_bytes
                );
                outcome.push_str(&format!("[{:?} v{}]", request.api_key, prefix.api_version));
            }
            Err(error) => outcome.push_str(&format!("[{}: {}]", prefix.api_key, harness::shape(&error.to_string()))),
        }
    }
    outcome
}

fn reseal(bytes: &mut [u8]) {
    let mut position = 0;
    while let Some(header) = bytes.get(position..).and_then(sluice_log::batch::BatchHeader::parse) {
        let total = header.total_bytes();
        if total < 61 || position + total > bytes.len() {
            break;
        }
        let crc = sluice_log::batch::compute_crc(&bytes[position..position + total]);
        bytes[position + 17..position + 21].copy_from_slice(&crc.to_be_bytes());
        position += total;
    }
}

fn decode_consumer_offsets(input: &[u8]) -> String {
    use sluice_broker::coordinator::records::{decode_group_value, decode_key, decode_offset_value, RecordKey};
    let decoded = match sluice_proto::records::decode_record_batches(&bytes::Bytes::copy_from_slice(input)) {
        Ok(decoded) => decoded,
        Err(error) => return format!("batches: {}", harness::shape(&error.to_string())),
    };
    let mut outcome = format!("{} batches;", decoded.batches.len().min(4));
    for record in decoded.batches.iter().flat_map(|b| b.records.iter()).take(256) {
        let Some(key) = record.key.clone() else {
            outcome.push_str("[no key]");
            continue;
        };
        let value = record.value.clone().unwrap_or_default();
        let part = match decode_key(key) {
            Ok(RecordKey::Offset { .. }) => match decode_offset_value(value) {
                Ok(_) => "[offset]".to_string(),
                Err(e) => format!("[offset value: {}]", harness::shape(&e.to_string())),
            },
            Ok(RecordKey::Group { .. }) => match decode_group_value(value) {
                Ok(group) => format!("[group {} members]", group.members.len().min(4)),
                Err(e) => format!("[group value: {}]", harness::shape(&e.to_string())),
            },
            Err(e) => format!("[key: {}]", harness::shape(&e.to_string())),
        };
        if !outcome.ends_with(&part) {
            outcome.push_str(&part);
        }
    }
    outcome
}

#[test]
fn consumer_offsets_records_decode_or_fail_within_bounds() {
    let seeds = harness::corpus("record_batches");
    let summary = harness::run_with_seeds(&CONSUMER_OFFSETS, seeds, |input| {
        let raw = decode_consumer_offsets(input);
        let mut resealed = input.to_vec();
        reseal(&mut resealed);
        format!("{raw} | {}", decode_consumer_offsets(&resealed))
    });
    assert!(summary.outcomes >= 10, "only {} outcomes", summary.outcomes);
}

#[test]
fn request_frames_decode_or_fail_within_the_guard() {
    let summary = harness::run(&FRAMES, decode_frames);
    assert!(summary.outcomes >= 50, "only {} outcomes: the mutator is not biting", summary.outcomes);
}

/// Panics anywhere in the process since the hook was installed.
fn count_panics() -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    count
}

/// Writes `input` on a fresh connection, closes the write side and reads until the broker
/// closes (or `READ_TIMEOUT`: a long poll may hold its answer). Returns the bytes answered.
async fn exchange(broker: &TestBroker, input: &[u8]) -> (usize, bool) {
    const READ_TIMEOUT: Duration = Duration::from_secs(3);
    let mut stream = broker.connect().await;
    let _ = stream.write_all(input).await;
    let _ = stream.shutdown().await;
    let mut answered = 0usize;
    let mut buffer = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(READ_TIMEOUT, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answered += n,
            }
        }
    })
    .await
    .is_ok();
    (answered, closed)
}

async fn answers_api_versions(broker: &TestBroker) -> bool {
    let mut stream = broker.connect().await;
    let request = ApiVersionsRequest::default();
    let answer = call::<_, ApiVersionsResponse>(&mut stream, ApiKey::ApiVersions, 0, &request);
    match tokio::time::timeout(Duration::from_secs(10), answer).await {
        Ok(response) if response.error_code == 0 => true,
        Ok(response) => {
            eprintln!("ApiVersions answered error {}", response.error_code);
            false
        }
        Err(_) => {
            eprintln!("ApiVersions not answered within 10 s");
            false
        }
    }
}

#[test]
fn arbitrary_requests_never_panic_the_broker_and_it_keeps_answering() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let broker = runtime.block_on(TestBroker::start());
    assert!(runtime.block_on(answers_api_versions(&broker)), "the broker answers ApiVersions at the start");
    let panics = count_panics();
    let mut executions = 0u64;
    let seeds = harness::corpus("request_frames");
    let summary = harness::run_with_seeds(&DISPATCH, seeds, |input| {
        let (answered, closed) = runtime.block_on(exchange(&broker, input));
        let seen = panics.load(Ordering::SeqCst);
        assert_eq!(seen, 0, "the broker panicked ({seen} panics) on this input");
        executions += 1;
        if executions.is_multiple_of(200) {
            assert!(runtime.block_on(answers_api_versions(&broker)), "the broker stopped answering ApiVersions");
        }
        let frames = decode_frames(input);
        let answer = match (answered, closed) {
            (0, true) => "closed",
            (_, true) => "answered, closed",
            (_, false) => "held open",
        };
        format!("{answer} after {frames}")
    });
    assert!(runtime.block_on(answers_api_versions(&broker)), "the broker answers ApiVersions at the end");
    assert!(summary.outcomes >= 20, "only {} outcomes", summary.outcomes);
    runtime.block_on(broker.stop());
}
