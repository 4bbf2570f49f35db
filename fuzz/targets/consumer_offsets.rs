//! Fuzz target `consumer_offsets` (pure): arbitrary bytes as stored batches of
//! `__consumer_offsets`, as is and with every batch's CRC recomputed: decoded by
//! `sluice_proto::records::decode_record_batches` (the decoder of sluice-client's consumer,
//! and of the coordinator's replay), then every record's key and value by the coordinator's
//! `records::decode_key` / `decode_offset_value` / `decode_group_value` (the group metadata
//! holds each member's consumer-protocol subscription and assignment).
//!
//! Seeds: `fuzz/corpus/consumer_offsets/` and the batches of `fuzz/corpus/record_batches/`
//! (captured; those named `__consumer_offsets-*` hold a real group's commits and metadata).
//!
//! Shared by the cargo test (`crates/broker/tests/fuzz_requests.rs`) and the AFL++ driver
//! (`fuzz/afl/src/bin/consumer_offsets.rs`); both include `fuzz/harness.rs` as `harness`.

use sluice_broker::coordinator::records::{decode_group_value, decode_key, decode_offset_value, RecordKey};

use crate::harness;

#[path = "kafka_reseal.rs"]
mod kafka_reseal;
use kafka_reseal::reseal;

/// Decompression inside the record decoder, then the decoded records and their keys and
/// values: the same bound as the log's `record_batches` target.
fn heap_bytes_max(input_bytes: usize) -> usize {
    2 * 64 * 1024 * 1024 + 64 * input_bytes + 4 * 1024 * 1024
}

pub const TARGET: harness::Target =
    harness::Target { name: "consumer_offsets", ci_iterations: 100_000, heap_bytes_max: Some(heap_bytes_max) };

/// Seeds besides `fuzz/corpus/consumer_offsets/`: the record batches' corpus.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    harness::corpus("record_batches")
}

/// Decodes `input` as is and resealed; returns both outcome names.
pub fn execute(input: &[u8]) -> String {
    harness::as_is_and_resealed(input, reseal, execute_once)
}

fn execute_once(input: &[u8]) -> String {
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
