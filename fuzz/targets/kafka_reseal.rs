//! Recomputes the CRC-32C of every Kafka record batch framed in a fuzz input (by its own
//! length field), so that mutations reach the decoding behind the checksum. Shared by the
//! targets that read record batches (`consumer_offsets`, `log_recovery`, `record_batches`),
//! each of which includes this file with `#[path]`.

use sluice_log::batch::{compute_crc, BatchHeader};

/// Bytes of a batch before its records (Kafka's RecordBatch v2 header); shorter is no batch.
const BATCH_HEADER_BYTES: usize = 61;

/// Reseals every whole batch from the start of `bytes`; stops at the first that is not one.
pub fn reseal(bytes: &mut [u8]) {
    let mut position = 0;
    while let Some(header) = bytes.get(position..).and_then(BatchHeader::parse) {
        let total = header.total_bytes();
        if total < BATCH_HEADER_BYTES || position + total > bytes.len() {
            break;
        }
        let crc = compute_crc(&bytes[position..position + total]);
        bytes[position + 17..position + 21].copy_from_slice(&crc.to_be_bytes());
        position += total;
    }
}
