//! Fuzz target `log_recovery` (issue 12): arbitrary bytes as the only segment file of a log
//! directory without a checkpoint (so recovery reads every byte), then `Log::open`. Opening
//! must not panic and may fail only with `Damaged` (a first batch below the file's name); an
//! opened log serves only whole, CRC-valid batches in increasing offsets, takes an append at
//! its end, and reopens after a clean close to the same end. One execution may not hold more
//! heap than [`heap_bytes_max`].
//!
//! Each input runs twice: as it is, and with every framed batch's CRC-32C recomputed, so that
//! recovery's order, offset and index checks see valid-looking batches with mutated fields.
//! Seeds: `fuzz/corpus/log_recovery/` — segment files (whole and torn) of a broker that
//! librdkafka and sluice-client produced to, by `scripts/fuzz-capture.sh`.
//!
//! Shared by the cargo test (`crates/log/tests/fuzz_log_recovery.rs`) and the AFL++ driver
//! (`fuzz/afl/src/bin/log_recovery.rs`); both include `fuzz/harness.rs` as `harness`.

use sluice_log::batch::{first_damaged_batch, BatchHeader};
use sluice_log::config::RECOVERY_READ_BUFFER_BYTES;
use sluice_log::testing::batch;
use sluice_log::{Log, LogConfig, LogError};

use crate::harness;

#[path = "kafka_reseal.rs"]
mod kafka_reseal;
use kafka_reseal::reseal;

/// Recovery reads through a buffer of `RECOVERY_READ_BUFFER_BYTES` and holds one batch at a
/// time (at most the file); reads in the check hold the file once more.
fn heap_bytes_max(input_bytes: usize) -> usize {
    RECOVERY_READ_BUFFER_BYTES + 4 * input_bytes + 4 * 1024 * 1024
}

pub const TARGET: harness::Target =
    harness::Target { name: "log_recovery", ci_iterations: 10_000, heap_bytes_max: Some(heap_bytes_max) };

fn config() -> LogConfig {
    LogConfig { segment_bytes: 64 * 1024, index_interval_bytes: 256, retention_ms: None, ..LogConfig::default() }
}

/// Seeds besides `fuzz/corpus/log_recovery/`: none.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    Vec::new()
}

/// Recovers `input` as is and resealed; returns both outcome names.
pub fn execute(input: &[u8]) -> String {
    harness::as_is_and_resealed(input, reseal, execute_once)
}

fn execute_once(input: &[u8]) -> String {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join(format!("{:020}.log", 0)), input).unwrap();
    let mut log = match Log::open(dir.path(), config()) {
        Ok(log) => log,
        // The reason names the (random) temporary directory: keep only its kind, so that
        // outcomes name paths through the code and a seed repeats a run.
        Err(LogError::Damaged { reason, .. }) => {
            let kind = reason.split(" is ").nth(1).unwrap_or(&reason).split(':').next().unwrap_or_default();
            return format!("damaged: {}", harness::shape(kind));
        }
        Err(other) => panic!("recovery failed with other than Damaged: {other}"),
    };
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut batches = 0usize;
    let mut previous_last = i64::MIN;
    while offset < end {
        let read = log.read(offset, 64 * 1024, end).unwrap();
        if read.regions.is_empty() {
            break;
        }
        let bytes = read.to_vec().unwrap();
        assert_eq!(first_damaged_batch(&bytes), None, "recovery kept a damaged batch at offset {offset}");
        let mut position = 0;
        while let Some(h) = bytes.get(position..).and_then(BatchHeader::parse) {
            assert!(h.base_offset > previous_last, "offsets increase");
            previous_last = h.last_offset();
            position += h.total_bytes();
            batches += 1;
        }
        offset = read.next_offset;
    }
    let mut more = batch(0, &[(None, Some(b"after recovery".as_slice()))], 1_700_000_000_000);
    let info = log.append(&mut more, 1).unwrap();
    assert_eq!(info.first_offset, end);
    log.close().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), end + 1);
    let kept = if input.is_empty() {
        "empty"
    } else if log.size_bytes() as usize > input.len() {
        "all"
    } else {
        "cut"
    };
    format!("opened: {} batches, {kept}", batches.min(8))
}
