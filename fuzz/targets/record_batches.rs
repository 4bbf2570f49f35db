//! Fuzz target `record_batches` (issue 12): arbitrary bytes as a producer's `records` field
//! go through produce validation (`validate::validate_produced`: framing, magic, CRC-32C, every
//! record, bounded decompression of every codec) and `Log::append`. Nothing may panic, one
//! execution may not hold more heap than [`heap_bytes_max`], and whatever the log accepts must
//! read back intact (CRC-checked) and decode with kafka-protocol's decoder, as a consumer's.
//!
//! Each input runs twice: as it is, and "resealed" — every batch's CRC-32C recomputed over
//! the mutated bytes — so that mutations reach the record and decompression code behind the
//! CRC check instead of stopping at it. Seeds: `fuzz/corpus/record_batches/` (batches cut
//! from the segment files of a broker that librdkafka and sluice-client produced to, by
//! `scripts/fuzz-capture.sh`) plus batches of every codec built here by kafka-protocol's
//! encoder.
//!
//! Shared by the cargo test (`crates/log/tests/fuzz_record_batches.rs`) and the AFL++ driver
//! (`fuzz/afl/src/bin/record_batches.rs`); both include `fuzz/harness.rs` as `harness`.

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use sluice_log::batch::first_damaged_batch;
use sluice_log::config::DECOMPRESSED_BATCH_BYTES_MAX;
use sluice_log::testing::{batch_with, Compression, KeyValue};
use sluice_log::validate::{validate_produced, ValidationPolicy};
use sluice_log::{Log, LogConfig, LogError};

use crate::harness;

#[path = "kafka_reseal.rs"]
mod kafka_reseal;
use kafka_reseal::reseal;

/// Decompression is capped at `DECOMPRESSED_BATCH_BYTES_MAX` (64 MiB) whatever the input
/// (a compression bomb is a few KiB), and `read_to_end` may double its buffer once past it;
/// besides that, 64 bytes per input byte and 4 MiB of fixed costs.
fn heap_bytes_max(input_bytes: usize) -> usize {
    2 * DECOMPRESSED_BATCH_BYTES_MAX + 64 * input_bytes + 4 * 1024 * 1024
}

pub const TARGET: harness::Target =
    harness::Target { name: "record_batches", ci_iterations: 200_000, heap_bytes_max: Some(heap_bytes_max) };

/// Appends accepted per log before it is emptied again (bounds the disk a long run uses).
const APPENDS_PER_LOG_MAX: u64 = 2_000;

/// A log that accepted inputs are appended to, kept across executions (emptied every
/// [`APPENDS_PER_LOG_MAX`] appends).
pub struct Fixture {
    log: Log,
    _dir: tempfile::TempDir,
    appended: u64,
    policy: ValidationPolicy,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = harness_tempdir();
        let config = LogConfig { segment_bytes: 1024 * 1024, ..LogConfig::default() };
        let policy = ValidationPolicy::for_config(&config);
        Fixture { log: Log::open(dir.path(), config).unwrap(), _dir: dir, appended: 0, policy }
    }

    /// Runs `input` as is and resealed; returns both outcome names.
    pub fn execute(&mut self, input: &[u8]) -> String {
        let raw = self.execute_once(input);
        let mut resealed = input.to_vec();
        reseal(&mut resealed);
        let sealed = self.execute_once(&resealed);
        format!("{raw} | {sealed}")
    }

    fn execute_once(&mut self, input: &[u8]) -> String {
        let validated = validate_produced(input, &self.policy, 1_700_000_000_000);
        let mut records = input.to_vec();
        let appended = self.log.append(&mut records, 3);
        match (&validated, &appended) {
            (Err(_), Err(_)) | (Ok(_), Ok(_)) => {}
            // The broker runs validate_produced first; the log's own checks are a subset.
            (Err(_), Ok(_)) => {}
            (Ok(_), Err(e)) => panic!("validated records refused by the log: {e}"),
        }
        match appended {
            Ok(info) => {
                let read = self.log.read(info.first_offset, u64::MAX, info.last_offset + 1).unwrap();
                let bytes = read.to_vec().unwrap();
                assert_eq!(first_damaged_batch(&bytes), None, "an accepted batch reads back intact");
                assert_eq!(bytes.len(), info.bytes, "what was accepted is what is read");
                if validated.is_ok() {
                    let mut buf = Bytes::from(bytes);
                    RecordBatchDecoder::decode_all(&mut buf).expect("validated records decode as a consumer's");
                }
                self.appended += 1;
                if self.appended >= APPENDS_PER_LOG_MAX {
                    self.log.truncate_fully_and_start_at(0).unwrap();
                    self.appended = 0;
                }
                format!("accepted {} batch(es), validated {}", info.batches.min(4), validated.is_ok())
            }
            Err(error) => outcome(&error, validated.err()),
        }
    }
}

fn outcome(log_error: &LogError, validation: Option<LogError>) -> String {
    let validation = validation.map_or_else(|| "ok".to_string(), |e| harness::shape(&e.to_string()));
    format!("refused: {} / {validation}", harness::shape(&log_error.to_string()))
}

/// A directory on tmpfs when there is one (no fsync cost), else the default temp dir.
fn harness_tempdir() -> tempfile::TempDir {
    match tempfile::tempdir_in("/dev/shm") {
        Ok(dir) => dir,
        Err(_) => tempfile::tempdir().unwrap(),
    }
}

/// Batches of every codec, with keys, nulls and several records, by kafka-protocol's encoder.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let records: Vec<KeyValue> = vec![
        (Some(b"key-1"), Some(b"value value value value value value value value")),
        (None, Some(b"value value value value value value value value value")),
        (Some(b"key-3"), None),
        (Some(b""), Some(b"")),
    ];
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
        .into_iter()
        .map(|codec| (format!("built-{codec:?}"), batch_with(codec, 0, &records, 1_700_000_000_000)))
        .collect()
}
