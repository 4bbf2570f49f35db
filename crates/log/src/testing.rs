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
