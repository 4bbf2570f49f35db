//! Record batch building and safe decoding.
//!
//! Goal: every codec round-trips keys, values, nulls, headers, timestamps and producer fields
//! through `build_record_batch` and `decode_record_batches`; damaged or lying batches are typed
//! errors, never allocations sized by the data. Lying batches carry an honest CRC-32C so that the
//! count checks, not the CRC check, are what refuse them.

use bytes::{BufMut, Bytes, BytesMut};
use sluice_proto::records::{
    build_record_batch, decode_record_batches, BatchHeader, BatchOptions, Compression, ProducedRecord,
    ProducerIdentity, RECORD_BATCH_HEADER_BYTES,
};
use sluice_proto::ProtoError;

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

fn sample_records() -> Vec<ProducedRecord> {
    vec![
        ProducedRecord {
            key: Some(Bytes::from_static(b"key-1")),
            value: Some(Bytes::from(vec![b'x'; 5000])),
            headers: vec![("trace".into(), Some(Bytes::from_static(b"abc"))), ("empty".into(), None)],
            timestamp_ms: 1_700_000_000_123,
        },
        ProducedRecord {
            key: None,
            value: None,
            headers: vec![],
            timestamp_ms: 1_700_000_000_100, // earlier than the first: deltas may be negative
        },
        ProducedRecord {
            key: Some(Bytes::new()),
            value: Some(Bytes::from_static("välue ✓".as_bytes())),
            headers: vec![("h".into(), Some(Bytes::new()))],
            timestamp_ms: 1_700_000_009_999,
        },
    ]
}

fn idempotent_options(compression: Compression) -> BatchOptions {
    BatchOptions {
        compression,
        producer: ProducerIdentity { producer_id: 4711, producer_epoch: 3, base_sequence: 100 },
        base_offset: 0,
        partition_leader_epoch: -1,
    }
}

#[test]
fn every_codec_round_trips_records_and_producer_fields() {
    let records = sample_records();
    for compression in CODECS {
        let batch = build_record_batch(&records, &idempotent_options(compression)).unwrap();
        let header = BatchHeader::parse(&batch).unwrap();
        assert_eq!(header.compression(), Some(compression));
        assert_eq!(header.record_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.producer_id, 4711);
        assert_eq!(header.producer_epoch, 3);
        assert_eq!(header.base_sequence, 100);
        assert_eq!(header.max_timestamp, 1_700_000_009_999);

        let decoded = decode_record_batches(&batch).unwrap();
        assert_eq!(decoded.partial_trailing_bytes, 0);
        assert_eq!(decoded.batches.len(), 1);
        let got = &decoded.batches[0].records;
        assert_eq!(got.len(), records.len(), "{compression:?}");
        for (index, (sent, received)) in records.iter().zip(got).enumerate() {
            assert_eq!(received.offset, index as i64, "{compression:?}");
            assert_eq!(received.sequence, 100 + index as i32);
            assert_eq!(received.key, sent.key);
            assert_eq!(received.value, sent.value);
            assert_eq!(received.timestamp, sent.timestamp_ms);
            let headers: Vec<(String, Option<Bytes>)> =
                received.headers.iter().map(|(key, value)| (key.to_string(), value.clone())).collect();
            assert_eq!(headers, sent.headers);
        }
    }
}

#[test]
fn compressed_batches_are_smaller_for_repetitive_data() {
    let records = sample_records();
    let plain = build_record_batch(&records, &BatchOptions::default()).unwrap();
    for compression in &CODECS[1..] {
        let options = BatchOptions { compression: *compression, ..BatchOptions::default() };
        let compressed = build_record_batch(&records, &options).unwrap();
        assert!(compressed.len() < plain.len() / 4, "{compression:?}");
    }
}

#[test]
fn non_idempotent_batches_carry_minus_one_producer_fields() {
    let batch = build_record_batch(&sample_records(), &BatchOptions::default()).unwrap();
    let header = BatchHeader::parse(&batch).unwrap();
    assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), (-1, -1, -1));
}

#[test]
fn several_batches_and_a_cut_tail_decode_up_to_the_cut() {
    let first = build_record_batch(&sample_records(), &BatchOptions::default()).unwrap();
    let second = build_record_batch(
        &sample_records()[..1],
        &BatchOptions { base_offset: 3, compression: Compression::Zstd, ..BatchOptions::default() },
    )
    .unwrap();
    let mut data = BytesMut::new();
    data.put_slice(&first);
    data.put_slice(&second);
    data.put_slice(&first[..RECORD_BATCH_HEADER_BYTES + 5]);
    let decoded = decode_record_batches(&data.freeze()).unwrap();
    assert_eq!(decoded.batches.len(), 2);
    assert_eq!(decoded.batches[1].records[0].offset, 3);
    assert_eq!(decoded.partial_trailing_bytes, RECORD_BATCH_HEADER_BYTES + 5);

    // Fewer than 12 bytes cannot even say how long the batch is.
    let decoded = decode_record_batches(&first.slice(..11)).unwrap();
    assert!(decoded.batches.is_empty());
    assert_eq!(decoded.partial_trailing_bytes, 11);
}

#[test]
fn flipped_record_byte_fails_the_crc() {
    let batch = build_record_batch(&sample_records(), &BatchOptions::default()).unwrap();
    let mut damaged = batch.to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x01;
    let error = decode_record_batches(&Bytes::from(damaged)).unwrap_err();
    assert!(matches!(error, ProtoError::CorruptRecordBatch { .. }));
    assert!(error.is_retriable());
}

/// Rewrites the record count and fixes the CRC, as a hostile peer would.
fn with_record_count(batch: &[u8], record_count: i32) -> Bytes {
    let mut forged = batch.to_vec();
    forged[57..61].copy_from_slice(&record_count.to_be_bytes());
    let crc = crc32c::crc32c(&forged[21..]);
    forged[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(forged)
}

#[test]
fn record_count_larger_than_the_bytes_allow_is_refused_for_every_codec() {
    for compression in CODECS {
        let options = BatchOptions { compression, ..BatchOptions::default() };
        let batch = build_record_batch(&sample_records(), &options).unwrap();
        let forged = with_record_count(&batch, i32::MAX);
        let error = decode_record_batches(&forged).unwrap_err();
        match error {
            ProtoError::CorruptRecordBatch { reason } => {
                assert!(reason.contains("cannot fit"), "{compression:?}: {reason}")
            }
            other => panic!("{compression:?}: {other:?}"),
        }
    }
}

#[test]
fn record_count_one_more_than_present_is_refused() {
    let batch = build_record_batch(&sample_records(), &BatchOptions::default()).unwrap();
    let error = decode_record_batches(&with_record_count(&batch, 4)).unwrap_err();
    assert!(matches!(error, ProtoError::CorruptRecordBatch { .. }));
}

/// A batch around hand-written records bytes, with an honest CRC.
fn batch_around(records: &[u8], record_count: i32) -> Bytes {
    let mut batch = BytesMut::new();
    batch.put_i64(0);
    batch.put_i32((RECORD_BATCH_HEADER_BYTES - 12 + records.len()) as i32);
    batch.put_i32(-1);
    batch.put_i8(2);
    batch.put_u32(0); // CRC, filled below
    batch.put_i16(0);
    batch.put_i32(record_count - 1);
    batch.put_i64(0);
    batch.put_i64(0);
    batch.put_i64(-1);
    batch.put_i16(-1);
    batch.put_i32(-1);
    batch.put_i32(record_count);
    batch.put_slice(records);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch.freeze()
}

#[test]
fn header_count_larger_than_the_record_is_refused() {
    // One record: attributes 0, timestamp delta 0, offset delta 0, null key (-1 = 0x01), null
    // value, header count i32::MAX (zigzag 0xfffffffe) in five varint bytes.
    let body = [0x00, 0x00, 0x00, 0x01, 0x01, 0xfe, 0xff, 0xff, 0xff, 0x0f];
    let mut records = vec![(body.len() as u8) << 1]; // zigzag record length
    records.extend_from_slice(&body);
    let error = decode_record_batches(&batch_around(&records, 1)).unwrap_err();
    match error {
        ProtoError::CorruptRecordBatch { reason } => assert!(reason.contains("header count")),
        other => panic!("{other:?}"),
    }
    // The same record with an honest header count of 0 decodes.
    let body = [0x00, 0x00, 0x00, 0x01, 0x01, 0x00];
    let mut records = vec![(body.len() as u8) << 1];
    records.extend_from_slice(&body);
    let decoded = decode_record_batches(&batch_around(&records, 1)).unwrap();
    assert_eq!(decoded.batches[0].records[0].key, None);
}

#[test]
fn old_formats_negative_lengths_and_bad_codecs_are_typed_errors() {
    let batch = build_record_batch(&sample_records(), &BatchOptions::default()).unwrap();

    let mut magic_one = batch.to_vec();
    magic_one[16] = 1;
    let error = decode_record_batches(&Bytes::from(magic_one)).unwrap_err();
    assert!(matches!(error, ProtoError::UnsupportedMagic { magic: 1 }));

    let mut negative = batch.to_vec();
    negative[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    let error = decode_record_batches(&Bytes::from(negative)).unwrap_err();
    assert!(matches!(error, ProtoError::CorruptRecordBatch { .. }));

    let mut codec_seven = batch.to_vec();
    codec_seven[22] |= 0x07;
    let error = decode_record_batches(&Bytes::from(codec_seven)).unwrap_err();
    assert!(matches!(error, ProtoError::CorruptRecordBatch { .. }));
}

#[test]
fn builder_refuses_empty_batches_and_repeated_header_keys() {
    let error = build_record_batch(&[], &BatchOptions::default()).unwrap_err();
    assert!(matches!(error, ProtoError::InvalidRecords { .. }));
    let record = ProducedRecord {
        headers: vec![("a".into(), None), ("a".into(), Some(Bytes::new()))],
        ..ProducedRecord::default()
    };
    let error = build_record_batch(&[record], &BatchOptions::default()).unwrap_err();
    assert!(matches!(error, ProtoError::InvalidRecords { .. }));
}

/// Goal: the builder writes what Kafka's format says, byte for byte. Method: the same records
/// (timestamps in order, so the first is also the smallest, which `kafka-protocol` takes as the
/// base) encoded by `kafka-protocol`'s own `RecordBatchEncoder` give identical bytes, uncompressed,
/// with headers, nulls, an empty key and a multi-byte varint length.
#[test]
fn the_builder_writes_the_bytes_kafka_protocols_encoder_writes() {
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let mut records = sample_records();
    records[1].timestamp_ms = 1_700_000_000_200;
    let options = idempotent_options(Compression::None);
    let ours = build_record_batch(&records, &options).unwrap();
    let theirs: Vec<Record> = (0i32..)
        .zip(&records)
        .map(|(index, record)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: 4711,
            producer_epoch: 3,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(index),
            sequence: 100 + index,
            timestamp: record.timestamp_ms,
            key: record.key.clone(),
            value: record.value.clone(),
            headers: record
                .headers
                .iter()
                .map(|(key, value)| (StrBytes::from_string(key.clone()), value.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut encoded = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut encoded,
        &theirs,
        &RecordEncodeOptions { version: 2, compression: Compression::None },
    )
    .unwrap();
    assert_eq!(ours, encoded.freeze());
}

/// Goal: a batch built record by record keeps the first record's timestamp as its base and
/// the largest as its maximum, whatever the order, and every record reads back its own.
#[test]
fn builder_timestamps_are_deltas_from_the_first_record() {
    let mut builder = sluice_proto::records::BatchBuilder::default();
    for timestamp in [5_000, 1_000, 9_000] {
        builder.push(None, Some(b"v"), &[], timestamp).unwrap();
    }
    assert_eq!(builder.record_count(), 3);
    let batch = builder.finish(&BatchOptions::default()).unwrap();
    let header = BatchHeader::parse(&batch).unwrap();
    assert_eq!((header.base_timestamp, header.max_timestamp, header.last_offset_delta), (5_000, 9_000, 2));
    let decoded = decode_record_batches(&batch).unwrap();
    let timestamps: Vec<i64> = decoded.batches[0].records.iter().map(|r| r.timestamp).collect();
    assert_eq!(timestamps, [5_000, 1_000, 9_000]);
}
