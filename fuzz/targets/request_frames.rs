//! Fuzz target `request_frames` (pure, fast): arbitrary bytes as what a client sends — split
//! into frames (`split_frame`, `REQUEST_BYTES_MAX`), each decoded as the dispatcher does
//! (`read_request_prefix`, then `decode_request_within` against the broker's own API table
//! and the decoded-size budget of `guard::decoded_bytes_max_for`). No panic; one execution's
//! heap stays within the guard's budget plus a multiple of the input.
//!
//! Seeds: `fuzz/corpus/request_frames/` — every distinct request frame (three per API and
//! version at most) that kcat (librdkafka) and the sluice CLI (sluice-client) sent to a real
//! broker through a recording proxy (`scripts/fuzz-capture.sh`).
//!
//! Shared by the cargo test (`crates/broker/tests/fuzz_requests.rs`) and the AFL++ driver
//! (`fuzz/afl/src/bin/request_frames.rs`); both include `fuzz/harness.rs` as `harness`.

use bytes::BytesMut;
use sluice_broker::api_versions::supported_apis;
use sluice_proto::guard::decoded_bytes_max_for;
use sluice_proto::{decode_request_within, read_request_prefix, split_frame, REQUEST_BYTES_MAX};

use crate::harness;

/// The frame buffer (the input) and, per frame, its decoded form within
/// `decoded_bytes_max_for` (max(4 MiB, 8 × its wire size)). The guard counts what the
/// decoder reads, not the capacity its vectors grow to (a vector doubles as it grows), so the
/// bound allows three budgets per frame's size plus 16 bytes per input byte. Inputs that once
/// broke it: `zz-regression-varint-clamped-in-its-middle.bin` (1.2 GB before the guard fix of
/// this issue) and `zz-heap-peak-metadata-v12.bin` (9.44 MB: the same bug, milder).
fn heap_bytes_max(input_bytes: usize) -> usize {
    3 * decoded_bytes_max_for(input_bytes) + 16 * input_bytes + 1024 * 1024
}

pub const TARGET: harness::Target =
    harness::Target { name: "request_frames", ci_iterations: 1_000_000, heap_bytes_max: Some(heap_bytes_max) };

/// Frames decoded per input at most (an input of many tiny frames is no more interesting).
const FRAMES_PER_INPUT_MAX: usize = 64;

/// Seeds besides `fuzz/corpus/request_frames/`: none.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    Vec::new()
}

/// Splits `input` into frames and decodes each; returns the outcome name.
pub fn execute(input: &[u8]) -> String {
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
