//! Fuzz target `raft_log` (pure): arbitrary bytes as the Raft log's only segment file, then
//! `SegmentedLog::open`: it recovers (cutting a torn tail) or refuses with
//! `StoreError::Corrupt`; never a panic, and a recovered log reopens to the same entries.
//! Each input runs as is and with its checksums recomputed.
//!
//! Seeds: `fuzz/corpus/raft_log/`, the Raft log segment of the broker that
//! `scripts/fuzz-capture.sh` ran, whole and torn.
//!
//! Shared by the cargo test (`crates/meta/tests/fuzz_raft.rs`) and the AFL++ driver
//! (`fuzz/afl/src/bin/raft_log.rs`); both include `fuzz/harness.rs` as `harness`.

use sluice_meta::frame::FILE_HEADER_BYTES;
use sluice_meta::log_segments::SegmentedLog;
use sluice_meta::StoreError;

use crate::harness;

/// Recovery reads the file once and decodes its entries: 16 bytes per input byte, 4 MiB fixed.
fn heap_bytes_max(input_bytes: usize) -> usize {
    16 * input_bytes + 4 * 1024 * 1024
}

pub const TARGET: harness::Target =
    harness::Target { name: "raft_log", ci_iterations: 20_000, heap_bytes_max: Some(heap_bytes_max) };

/// Seeds besides `fuzz/corpus/raft_log/`: none.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    Vec::new()
}

/// Recovers `input` as is and resealed; returns both outcome names.
pub fn execute(input: &[u8]) -> String {
    harness::as_is_and_resealed(input, reseal, execute_once)
}

/// Recomputes the file header's and every framed record's CRC-32 over the mutated bytes, so
/// that mutations reach the entry decoding and index checks behind the checksums.
fn reseal(bytes: &mut [u8]) {
    if bytes.len() >= FILE_HEADER_BYTES {
        let crc = crc32fast::hash(&bytes[..12]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    let mut at = FILE_HEADER_BYTES;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|end| *end <= bytes.len()) else {
            break;
        };
        let crc = crc32fast::hash(&bytes[at + 8..end]);
        bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

fn execute_once(input: &[u8]) -> String {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join(format!("{:020}.seg", 0)), input).unwrap();
    match SegmentedLog::open(dir.path(), 1 << 20) {
        Ok((log, recovered)) => {
            drop(log);
            let (_, again) = SegmentedLog::open(dir.path(), 1 << 20).expect("a recovered log reopens");
            assert_eq!(format!("{:?}", again.entries), format!("{:?}", recovered.entries), "same entries");
            format!("recovered {} entries", recovered.entries.len().min(8))
        }
        Err(StoreError::Corrupt { reason, .. }) => format!("corrupt: {}", harness::shape(&reason)),
        Err(other) => format!("error: {}", harness::shape(&other.to_string())),
    }
}
