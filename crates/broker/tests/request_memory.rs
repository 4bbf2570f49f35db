//! Memory amplification (issue 18, part 2): requests made of millions of empty elements —
//! Metadata topics, DescribeGroups group ids, DeleteTopics names, OffsetFetch topics — each a
//! few bytes on the wire and tens of bytes decoded, cost the broker at most
//! `REQUEST_MEMORY_PER_WIRE_BYTE_MAX` times their wire size (plus the decoded-size floor), are
//! refused by closing the connection, and the broker keeps answering; a large request of real
//! names (4× its size decoded) is still answered.
//!
//! Method: an in-process broker (`common::TestBroker`), so the broker's memory is this test
//! process's. Frames are written byte by byte (v0/v1 encodings, the cheapest per element), built
//! before measuring. Before each request the peak resident size is reset (`5` into
//! `/proc/self/clear_refs`) and afterwards `VmHWM` (peak) is compared with `VmRSS` before:
//! the growth is what the request cost. This is the only test in this binary, so nothing else
//! runs in the process meanwhile. Two of them are then sent at once. Before the fix, the 20 MB Metadata request alone grew the
//! process by about 1.7 GiB.

mod common;

use std::io::Write as _;

use common::{assert_closed, call, TestBroker};
use sluice_broker::config::REQUEST_MEMORY_PER_WIRE_BYTE_MAX;
use sluice_proto::guard::DECODED_REQUEST_BYTES_FLOOR;
use sluice_proto::kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use sluice_proto::kafka_protocol::protocol::StrBytes;
use tokio::io::AsyncWriteExt;

/// Elements in each hostile request: 10 million, as in the probe.
const ELEMENTS: i32 = 10_000_000;

/// Allowance for what a request costs besides its frame and decoded form, in bytes: task and
/// socket buffers, allocator arenas touched for the first time, the response.
const TEST_SLACK_BYTES: u64 = 32 * 1024 * 1024;

/// A request frame (length prefix included): header v1 then `body`.
fn frame(api_key: ApiKey, version: i16, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&(api_key as i16).to_be_bytes());
    payload.extend_from_slice(&version.to_be_bytes());
    payload.extend_from_slice(&7i32.to_be_bytes());
    payload.extend_from_slice(&4i16.to_be_bytes());
    payload.extend_from_slice(b"test");
    body(&mut payload);
    let mut framed = (payload.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&payload);
    framed
}

/// An array of `count` empty (non-null) strings: the length, then a zero length each.
fn empty_strings(out: &mut Vec<u8>, count: i32) {
    out.extend_from_slice(&count.to_be_bytes());
    out.resize(out.len() + 2 * count as usize, 0);
}

fn hostile_requests() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("Metadata v0, empty topic names", frame(ApiKey::Metadata, 0, |out| empty_strings(out, ELEMENTS))),
        ("DescribeGroups v0, empty group ids", frame(ApiKey::DescribeGroups, 0, |out| empty_strings(out, ELEMENTS))),
        (
            "DeleteTopics v1, empty names",
            frame(ApiKey::DeleteTopics, 1, |out| {
                empty_strings(out, ELEMENTS);
                out.extend_from_slice(&5_000i32.to_be_bytes());
            }),
        ),
        (
            "OffsetFetch v1, topics without partitions",
            frame(ApiKey::OffsetFetch, 1, |out| {
                out.extend_from_slice(&1i16.to_be_bytes());
                out.push(b'g');
                out.extend_from_slice(&ELEMENTS.to_be_bytes());
                for _ in 0..ELEMENTS {
                    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // empty name, empty partition array
                }
            }),
        ),
    ]
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Resets the peak resident size to the current one; returns the current resident bytes.
fn reset_peak() -> u64 {
    std::fs::OpenOptions::new().write(true).open("/proc/self/clear_refs").unwrap().write_all(b"5").unwrap();
    status_kib("VmRSS:") * 1024
}

fn peak_bytes() -> u64 {
    status_kib("VmHWM:") * 1024
}

// Goal: each hostile request costs at most its documented bound and closes its connection;
// the broker still answers afterwards, and a large request of real names is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_of_millions_of_empty_elements_cost_a_bounded_multiple_of_their_size() {
    let broker = TestBroker::start().await;
    let requests = hostile_requests();
    for (what, request) in &requests {
        let wire = request.len() as u64;
        let bound =
            REQUEST_MEMORY_PER_WIRE_BYTE_MAX as u64 * wire + DECODED_REQUEST_BYTES_FLOOR as u64 + TEST_SLACK_BYTES;
        let mut stream = broker.connect().await;
        let before = reset_peak();
        stream.write_all(request).await.unwrap();
        assert_closed(&mut stream).await;
        let grown = peak_bytes().saturating_sub(before);
        eprintln!(
            "{what}: {wire} wire bytes, peak grew {grown} bytes ({:.1}× wire), bound {bound}",
            grown as f64 / wire as f64
        );
        assert!(grown <= bound, "{what}: {wire} wire bytes grew the broker by {grown} bytes, bound {bound}");
    }

    // Two at once (the probe: two such requests got a 2 GiB broker killed): the
    // bounds add up.
    let (metadata, describe_groups) = (&requests[0].1, &requests[1].1);
    let bound = (REQUEST_MEMORY_PER_WIRE_BYTE_MAX as u64 * (metadata.len() + describe_groups.len()) as u64)
        + 2 * DECODED_REQUEST_BYTES_FLOOR as u64
        + TEST_SLACK_BYTES;
    let (mut first, mut second) = (broker.connect().await, broker.connect().await);
    let before = reset_peak();
    let (sent_first, sent_second) = tokio::join!(first.write_all(metadata), second.write_all(describe_groups));
    sent_first.unwrap();
    sent_second.unwrap();
    assert_closed(&mut first).await;
    assert_closed(&mut second).await;
    let grown = peak_bytes().saturating_sub(before);
    eprintln!("Metadata and DescribeGroups at once: peak grew {grown} bytes, bound {bound}");
    assert!(grown <= bound, "two at once grew the broker by {grown} bytes, bound {bound}");

    // A large legitimate request: 100,000 group ids of 20 characters (2.2 MB), answered.
    let ids: Vec<GroupId> =
        (0..100_000).map(|i| GroupId(StrBytes::from_string(format!("consumer-group-{i:05}")))).collect();
    let request = DescribeGroupsRequest::default().with_groups(ids);
    let mut stream = broker.connect().await;
    let response: DescribeGroupsResponse = call(&mut stream, ApiKey::DescribeGroups, 0, &request).await;
    assert_eq!(response.groups.len(), 100_000);
}
