//! Fuzz targets of the broker's request path (issue 12), each described in its file under
//! `fuzz/targets/` (which the AFL++ drivers of `fuzz/afl/` run too):
//!
//! - `request_frames` (pure, fast): arbitrary bytes as what a client sends, split into frames
//!   and decoded as the dispatcher does, within the guard's decoded-size budget and heap bound.
//! - `broker_dispatch` (end to end): the same bytes on a connection of a real broker running in
//!   this process (`common::TestBroker`); no panic on any thread, and the broker keeps
//!   answering ApiVersions on a fresh connection (checked here every 200 inputs).
//! - `consumer_offsets` (pure): arbitrary bytes as stored batches of `__consumer_offsets`,
//!   decoded as the consumer and the coordinator's replay do, keys and values included (the
//!   group metadata holds each member's consumer-protocol subscription and assignment).
//!
//! Seeds: `fuzz/corpus/request_frames/` — every distinct request frame (three per API and
//! version at most) that kcat (librdkafka) and the sluice CLI (sluice-client) sent to a real
//! broker through a recording proxy (`scripts/fuzz-capture.sh`). Budget and reproduction:
//! `fuzz/harness.rs`; long runs: `scripts/fuzz.sh`.

#[path = "../../../fuzz/targets/broker_dispatch.rs"]
mod broker_dispatch;
mod common;
#[path = "../../../fuzz/targets/consumer_offsets.rs"]
mod consumer_offsets;
#[path = "../../../fuzz/harness.rs"]
mod harness;
#[path = "../../../fuzz/targets/request_frames.rs"]
mod request_frames;

use std::time::Duration;

use common::{call, TestBroker};
use sluice_proto::kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

#[test]
fn consumer_offsets_records_decode_or_fail_within_bounds() {
    let summary =
        harness::run_with_seeds(&consumer_offsets::TARGET, consumer_offsets::seeds(), consumer_offsets::execute);
    assert!(summary.outcomes >= 10, "only {} outcomes", summary.outcomes);
}

#[test]
fn request_frames_decode_or_fail_within_the_guard() {
    let summary = harness::run_with_seeds(&request_frames::TARGET, request_frames::seeds(), request_frames::execute);
    assert!(summary.outcomes >= 50, "only {} outcomes: the mutator is not biting", summary.outcomes);
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
    let panics = broker_dispatch::count_panics();
    let mut executions = 0u64;
    let summary = harness::run_with_seeds(&broker_dispatch::TARGET, broker_dispatch::seeds(), |input| {
        let outcome = broker_dispatch::execute(&runtime, broker.address, &panics, input);
        executions += 1;
        if executions.is_multiple_of(200) {
            assert!(runtime.block_on(answers_api_versions(&broker)), "the broker stopped answering ApiVersions");
        }
        outcome
    });
    assert!(runtime.block_on(answers_api_versions(&broker)), "the broker answers ApiVersions at the end");
    assert!(summary.outcomes >= 20, "only {} outcomes", summary.outcomes);
    runtime.block_on(broker.stop());
}
