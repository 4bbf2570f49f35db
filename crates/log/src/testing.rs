//! Builders of real RecordBatch v2 bytes for tests and benchmarks, encoded by the
//! kafka-protocol crate (the same encoder a Rust Kafka client uses), never by hand.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

pub use kafka_protocol::records::Compression;

/// A key/value pair; `None` is a null key or a null value (a tombstone).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// An uncompressed batch of `records` whose first offset is `base_offset` and whose record
/// timestamps are `timestamp`, `timestamp + 1`, ...
pub fn batch(base_offset: i64, records: &[KeyValue<'_>], timestamp: i64) -> Vec<u8> {
    batch_with(Compression::None, base_offset, records, timestamp)
}

/// Like [`batch`], compressed with `compression`.
pub fn batch_with(compression: Compression, base_offset: i64, records: &[KeyValue<'_>], timestamp: i64) -> Vec<u8> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: base_offset + i as i64,
            // kafka-protocol starts a new batch when `offset - sequence` changes; counting up
            // from -1 keeps one batch and writes base_sequence = -1 (no idempotence).
            sequence: i as i32 - 1,
            timestamp: timestamp + i as i64,
            key: k.map(Bytes::copy_from_slice),
            value: v.map(Bytes::copy_from_slice),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, records.iter(), &RecordEncodeOptions { version: 2, compression })
        .expect("kafka-protocol encodes a v2 batch");
    buf.to_vec()
}

/// An owned key/value pair.
pub type OwnedKeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Borrows owned pairs for [`batch`] and [`batch_with`].
pub fn as_key_values(records: &[OwnedKeyValue]) -> Vec<KeyValue<'_>> {
    records.iter().map(|(k, v)| (k.as_deref(), v.as_deref())).collect()
}

/// Sets a batch's `batch_length` to the buffer's size and recomputes its CRC-32C, so that the
/// batch is exactly what a (possibly buggy or hostile) producer would send: sealed, whatever
/// its records hold.
pub fn reseal(batch: &mut [u8]) {
    let length = i32::try_from(batch.len() - crate::batch::LOG_OVERHEAD_BYTES).expect("batch under 2 GiB");
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crate::batch::compute_crc(batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// The records section of an uncompressed batch (the bytes after the 61-byte header).
pub fn raw_records(batch: &[u8]) -> &[u8] {
    &batch[crate::config::BATCH_HEADER_BYTES..]
}

/// A sealed batch with `template`'s header, `codec` in its attributes and `section` verbatim
/// as its records: with `compress` the section is compressed with `codec` first (Kafka's
/// framing), without it the bytes are stored as given (e.g. plain records under a gzip flag).
pub fn batch_from_section(template: &[u8], codec: Compression, section: &[u8], compress: bool) -> Vec<u8> {
    let codec = match codec {
        Compression::None => crate::batch::Codec::None,
        Compression::Gzip => crate::batch::Codec::Gzip,
        Compression::Snappy => crate::batch::Codec::Snappy,
        Compression::Lz4 => crate::batch::Codec::Lz4,
        Compression::Zstd => crate::batch::Codec::Zstd,
    };
    let body =
        if compress { crate::records::compress(codec, section).expect("compressible") } else { section.to_vec() };
    let mut batch = template[..crate::config::BATCH_HEADER_BYTES].to_vec();
    let attributes = i16::from_be_bytes([batch[21], batch[22]]) & !0x7 | codec as i16;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch.extend_from_slice(&body);
    reseal(&mut batch);
    batch
}
