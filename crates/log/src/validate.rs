//! Validation of produced batches down to every record, Kafka's `LogValidator` rules.
//!
//! [`validate_batches`](crate::batch) checks what the header says (framing, magic, size,
//! CRC-32C); a CRC only proves the bytes arrived as the producer wrote them, not that they are
//! records. [`validate_produced`] decodes every record of every batch — decompressing within
//! [`DECOMPRESSED_BATCH_BYTES_MAX`](crate::config::DECOMPRESSED_BATCH_BYTES_MAX) — and refuses
//! the whole produce when any batch breaks a rule, so nothing a consumer cannot read is ever
//! appended:
//!
//! | rule                                                                 | Kafka error            |
//! |----------------------------------------------------------------------|------------------------|
//! | framing, magic, CRC-32C (as [`crate::batch`])                        | CORRUPT_MESSAGE (2)    |
//! | the codec's stream does not decode (gzip over plain records, junk)   | CORRUPT_MESSAGE (2)    |
//! | a record's varints, lengths or headers do not fit the record/batch   | CORRUPT_MESSAGE (2)    |
//! | a header key that is not UTF-8 (the protocol's `headerKey` string)   | CORRUPT_MESSAGE (2)    |
//! | `record_count` ≠ records present, bytes left after the last record   | CORRUPT_MESSAGE (2)    |
//! | offset deltas not 0, 1, …, n−1                                       | CORRUPT_MESSAGE (2)    |
//! | control batch from a producer                                        | INVALID_RECORD (87)    |
//! | a record without a key on a compacted topic                          | INVALID_RECORD (87)    |
//! | `CreateTime` outside `[now − before.max.ms, now + after.max.ms]`     | INVALID_TIMESTAMP (32) |
//! | a producer's batch that claims `LogAppendTime`                       | INVALID_TIMESTAMP (32) |
//!
//! Record-level refusals (the last three rows but one) name each offending record
//! ([`RecordError`], Produce v8+ `record_errors`). The walk borrows an uncompressed batch and
//! allocates nothing per record; a compressed batch is decompressed once into one buffer.
//!
//! Like Kafka's `LogValidator`, it also produces the stored form: on a topic whose
//! `compression.type` is not `producer`, a batch in another codec is re-encoded from the
//! records section the walk has just decompressed ([`crate::recompress`]), so no batch is
//! decompressed twice. Pure: no clock (the caller passes `now_ms`), no I/O.

use crate::batch::{compute_crc, validate_batches, BatchHeader, Codec, Origin};
use crate::config::{CompressionType, LogConfig, MessageTimestampType, BATCH_HEADER_BYTES};
use crate::error::{LogError, Result};
use crate::recompress::Recompression;
use crate::records::{records_section, Cursor, RecordsError, RECORD_BYTES_MIN};
use std::borrow::Cow;

/// Most per-record errors reported for one refused batch. Bounds the response (each error
/// carries a sentence) when every record of a large batch breaks the same rule; the first
/// ones are enough for a producer to see what is wrong.
pub const RECORD_ERRORS_MAX: usize = 100;

/// Record timestamp meaning "none" (Kafka's `RecordBatch.NO_TIMESTAMP`): not range-checked.
const NO_TIMESTAMP: i64 = -1;
const TIMESTAMP_TYPE_FLAG: i16 = 1 << 3;
const MAX_TIMESTAMP_OFFSET: usize = 35;

/// Which Kafka error a refused produce gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The bytes are not well-formed records (CORRUPT_MESSAGE, 2).
    CorruptMessage,
    /// Well-formed records the topic does not accept (INVALID_RECORD, 87).
    InvalidRecord,
    /// A timestamp outside the topic's bounds, or of the wrong type (INVALID_TIMESTAMP, 32).
    InvalidTimestamp,
}

impl Refusal {
    /// The Kafka protocol error code.
    pub fn kafka_error_code(self) -> i16 {
        match self {
            Refusal::CorruptMessage => 2,
            Refusal::InvalidRecord => 87,
            Refusal::InvalidTimestamp => 32,
        }
    }
}

/// One refused record: Produce v8+ `record_errors[]` (`batch_index`, `batch_index_error_message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Index of the record within its batch (0-based).
    pub record_index: i32,
    /// Why, in a sentence.
    pub message: String,
}

/// The topic rules a produced batch is checked against, taken from its [`LogConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationPolicy {
    /// Largest batch in bytes (`max.message.bytes`).
    pub batch_bytes_max: usize,
    /// Every record needs a key (`cleanup.policy` includes `compact`).
    pub keys_required: bool,
    /// `message.timestamp.type`.
    pub timestamp_type: MessageTimestampType,
    /// `message.timestamp.before.max.ms`.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub timestamp_after_max_ms: i64,
    /// `compression.type`: the codec batches are stored in.
    pub compression: CompressionType,
}

impl ValidationPolicy {
    /// The rules of a log with `config`.
    pub fn for_config(config: &LogConfig) -> ValidationPolicy {
        ValidationPolicy {
            batch_bytes_max: config.batch_bytes_max,
            keys_required: config.cleanup_policy.compacts(),
            timestamp_type: config.message_timestamp_type,
            timestamp_before_max_ms: config.message_timestamp_before_max_ms,
            timestamp_after_max_ms: config.message_timestamp_after_max_ms,
            compression: config.compression,
        }
    }
}

/// Checks every batch of a producer's `records` (one or more concatenated batches) and every
/// record inside them against `policy` at time `now_ms` (see the module docs). `Ok` means each
/// record is readable by a consumer and acceptable to the topic; on `Err` nothing may be
/// appended. `Ok(Some(stored))` is what to store instead of `records`: some batch was
/// re-encoded for the topic's `compression.type` ([`crate::recompress`]); `Ok(None)`:
/// `records` as produced.
pub fn validate_produced(records: &[u8], policy: &ValidationPolicy, now_ms: i64) -> Result<Option<Vec<u8>>> {
    let batches = validate_batches(records, policy.batch_bytes_max, Origin::Client)?;
    let mut stored = Recompression::new(policy.compression, policy.batch_bytes_max);
    for batch in &batches {
        let bytes = &records[batch.position..batch.position + batch.header.total_bytes()];
        let section = validate_batch_records(bytes, &batch.header, policy, now_ms)
            .map_err(|refused| refused.at(batch.position))?;
        stored.push(records, batch.position, &batch.header, &section)?;
    }
    Ok(stored.finish())
}

/// Stamps `now_ms` as the `LogAppendTime` of every batch in `records` (attributes bit 3 and
/// `max_timestamp`, then the CRC-32C again), as Kafka does for a topic with
/// `message.timestamp.type=LogAppendTime`. The records are not touched: a consumer reads the
/// batch's `max_timestamp` for each of them. `records` must have passed [`validate_produced`].
pub fn stamp_log_append_time(records: &mut [u8], now_ms: i64) {
    let mut position = 0;
    while let Some(header) = records.get(position..).and_then(BatchHeader::parse) {
        let total = header.total_bytes();
        let batch = &mut records[position..position + total];
        let attributes = header.attributes | TIMESTAMP_TYPE_FLAG;
        batch[21..23].copy_from_slice(&attributes.to_be_bytes());
        batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&now_ms.to_be_bytes());
        let crc = compute_crc(batch);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        position += total;
    }
}

/// A refusal before its position in the produced buffer is known.
struct Refused {
    kind: Refusal,
    reason: String,
    record_errors: Vec<RecordError>,
}

impl Refused {
    fn corrupt(reason: impl Into<String>) -> Refused {
        Refused { kind: Refusal::CorruptMessage, reason: reason.into(), record_errors: Vec::new() }
    }

    fn at(self, position: usize) -> LogError {
        LogError::RecordsRefused { position, kind: self.kind, reason: self.reason, record_errors: self.record_errors }
    }
}

impl From<RecordsError> for Refused {
    fn from(error: RecordsError) -> Refused {
        match error {
            RecordsError::Malformed(reason) => Refused::corrupt(reason),
            RecordsError::Decompress(reason) => {
                Refused::corrupt(format!("records do not decompress with the batch's codec: {reason}"))
            }
            RecordsError::TooLarge => Refused::corrupt("records decompress to more than the decompression limit"),
        }
    }
}

/// Checks one batch's records; returns its records section (decompressed when the batch is
/// compressed) for [`Recompression::push`].
fn validate_batch_records<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
    policy: &ValidationPolicy,
    now_ms: i64,
) -> std::result::Result<Cow<'a, [u8]>, Refused> {
    if header.is_control() {
        return Err(Refused {
            kind: Refusal::InvalidRecord,
            reason: "producers may not append control batches".into(),
            record_errors: Vec::new(),
        });
    }
    if header.attributes & TIMESTAMP_TYPE_FLAG != 0 {
        return Err(Refused {
            kind: Refusal::InvalidTimestamp,
            reason: "producers may not set the timestamp type to LogAppendTime".into(),
            record_errors: Vec::new(),
        });
    }
    // validate_batches (Origin::Client) has checked record_count >= 1 and
    // last_offset_delta == record_count - 1.
    let record_count = header.record_count as usize;
    if header.codec() == Some(Codec::None) && record_count > (batch.len() - BATCH_HEADER_BYTES) / RECORD_BYTES_MIN {
        return Err(Refused::corrupt(format!(
            "{record_count} records cannot fit in {} bytes",
            batch.len() - BATCH_HEADER_BYTES
        )));
    }
    if header.codec() == Some(Codec::Snappy) {
        check_xerial_header(&batch[BATCH_HEADER_BYTES..])?;
    }
    let section = records_section(batch, header)?;
    if record_count > section.len() / RECORD_BYTES_MIN {
        return Err(Refused::corrupt(format!("{record_count} records cannot fit in {} bytes", section.len())));
    }
    let timestamps_checked = policy.timestamp_type == MessageTimestampType::CreateTime;
    let earliest_ms = now_ms.saturating_sub(policy.timestamp_before_max_ms);
    let latest_ms = now_ms.saturating_add(policy.timestamp_after_max_ms);
    let mut record_errors = Vec::new();
    let mut timestamp_refused = false;
    let mut cursor = Cursor { buf: &section, at: 0 };
    for index in 0..record_count {
        let record = read_record(&mut cursor, index)?;
        let mut refuse = |message: String| {
            if record_errors.len() < RECORD_ERRORS_MAX {
                record_errors.push(RecordError { record_index: index as i32, message });
            }
        };
        if policy.keys_required && !record.has_key {
            refuse("compacted topic cannot accept a record without a key".into());
        }
        let timestamp = header.base_timestamp.saturating_add(record.timestamp_delta);
        if timestamp_checked(timestamps_checked, timestamp) && !(earliest_ms..=latest_ms).contains(&timestamp) {
            timestamp_refused = true;
            refuse(format!(
                "timestamp {timestamp} of record {index} is out of range; it must be within [{earliest_ms}, {latest_ms}]"
            ));
        }
    }
    if cursor.at != section.len() {
        return Err(Refused::corrupt(format!(
            "{} bytes follow the last of the {record_count} records the header counts",
            section.len() - cursor.at
        )));
    }
    if record_errors.is_empty() {
        return Ok(section);
    }
    let kind = if timestamp_refused { Refusal::InvalidTimestamp } else { Refusal::InvalidRecord };
    let reason = format!("{} of {record_count} records refused: {}", record_errors.len(), record_errors[0].message);
    Err(Refused { kind, reason, record_errors })
}

/// A snappy body that starts with xerial's magic must carry the whole 16-byte header Kafka's
/// clients write (magic, version 1, compatible version 1): kafka-protocol reads anything else
/// as raw snappy and fails, so a consumer could not read the batch.
fn check_xerial_header(body: &[u8]) -> std::result::Result<(), Refused> {
    const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
    const XERIAL_HEADER: &[u8] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
    if body.starts_with(XERIAL_MAGIC) && !body.starts_with(XERIAL_HEADER) {
        return Err(Refused::corrupt("snappy stream with xerial magic but an unknown xerial version"));
    }
    Ok(())
}

fn timestamp_checked(checked: bool, timestamp: i64) -> bool {
    checked && timestamp != NO_TIMESTAMP
}

/// Skips a length-prefixed field whose length may be -1 (null); returns whether it is present.
/// Other negative lengths are refused: Kafka's Java decoder reads them as null, but
/// kafka-protocol and librdkafka refuse them, so a consumer could not read the batch.
fn nullable_field(body: &mut Cursor<'_>) -> std::result::Result<bool, RecordsError> {
    let length = body.varint()?;
    if length < -1 {
        return Err(RecordsError::Malformed("negative field length other than -1 (null)"));
    }
    if length == -1 {
        return Ok(false);
    }
    let end = body
        .at
        .checked_add(length as usize)
        .filter(|&end| end <= body.buf.len())
        .ok_or(RecordsError::Malformed("field runs past the record"))?;
    body.at = end;
    Ok(true)
}

/// The length of the key bytes at the end of `field` (a varint length, then the key), which
/// [`nullable_field`] has just read whole.
fn header_key_length(field: &[u8]) -> usize {
    let varint_bytes = field.iter().position(|b| b & 0x80 == 0).map_or(field.len(), |i| i + 1);
    field.len() - varint_bytes
}

/// What the rules need of one record.
struct RecordFacts {
    timestamp_delta: i64,
    has_key: bool,
}

/// Reads the record at the cursor, checking that every varint, length and header fits inside
/// the record, that the record fills its length exactly and that its offset delta is `index`.
fn read_record(cursor: &mut Cursor<'_>, index: usize) -> std::result::Result<RecordFacts, Refused> {
    let corrupt = |what: &str| Refused::corrupt(format!("record {index}: {what}"));
    let length = cursor.varint().map_err(|_| corrupt("length is not a varint or runs past the batch"))?;
    let end = usize::try_from(length)
        .ok()
        .filter(|&length| length > 0)
        .and_then(|length| cursor.at.checked_add(length))
        .filter(|&end| end <= cursor.buf.len())
        .ok_or_else(|| corrupt(&format!("length {length} runs past the batch")))?;
    let mut body = Cursor { buf: &cursor.buf[..end], at: cursor.at };
    let malformed = |error: RecordsError| match error {
        RecordsError::Malformed(reason) => corrupt(reason),
        other => Refused::from(other),
    };
    body.byte().map_err(malformed)?; // attributes: unused in v2
    let timestamp_delta = body.varlong().map_err(malformed)?;
    let offset_delta = body.varint().map_err(malformed)?;
    if usize::try_from(offset_delta).ok() != Some(index) {
        return Err(corrupt(&format!("offset delta {offset_delta}, expected {index}")));
    }
    let has_key = nullable_field(&mut body).map_err(malformed)?;
    nullable_field(&mut body).map_err(malformed)?; // value
    let header_count = body.varint().map_err(malformed)?;
    let header_count = usize::try_from(header_count).map_err(|_| corrupt("negative header count"))?;
    for _ in 0..header_count {
        // Each header needs at least its two length bytes; a count that cannot fit fails on
        // the first read past the record, before any work proportional to the count.
        let key_end_before = body.at;
        if !nullable_field(&mut body).map_err(malformed)? {
            return Err(corrupt("header with a null key"));
        }
        // The protocol makes a header key a string: kafka-protocol (sluice-client and other
        // Rust consumers) refuses a whole fetch response holding a key that is not UTF-8.
        let key_start = body.at - header_key_length(&body.buf[key_end_before..body.at]);
        if std::str::from_utf8(&body.buf[key_start..body.at]).is_err() {
            return Err(corrupt("header key is not UTF-8"));
        }
        nullable_field(&mut body).map_err(malformed)?;
    }
    if body.at != end {
        return Err(corrupt(&format!("{} bytes left inside the record after its headers", end - body.at)));
    }
    cursor.at = end;
    Ok(RecordFacts { timestamp_delta, has_key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{batch, batch_from_section, batch_with, raw_records, reseal, Compression};

    const NOW_MS: i64 = 1_700_000_000_000;
    const CODECS: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    fn policy() -> ValidationPolicy {
        ValidationPolicy::for_config(&LogConfig::default())
    }

    fn refusal(records: &[u8], policy: &ValidationPolicy) -> (Refusal, Vec<RecordError>) {
        match validate_produced(records, policy, NOW_MS) {
            Err(LogError::RecordsRefused { kind, record_errors, .. }) => (kind, record_errors),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn three_records(timestamp: i64) -> Vec<u8> {
        batch(0, &[(Some(b"a"), Some(b"1")), (None, Some(b"2")), (Some(b"c"), None)], timestamp)
    }

    // Goal: well-formed batches of every codec pass, and so do several concatenated ones.
    #[test]
    fn good_batches_of_every_codec_pass() {
        let mut all = Vec::new();
        for codec in CODECS {
            let b = batch_with(codec, 0, &[(Some(b"k"), Some(b"v")), (None, None)], NOW_MS);
            validate_produced(&b, &policy(), NOW_MS).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            all.extend_from_slice(&b);
        }
        validate_produced(&all, &policy(), NOW_MS).unwrap();
    }

    // Goal: a codec flag that does not match the bytes is CORRUPT_MESSAGE, for every codec.
    // Method: plain records sealed under each compression flag; random bytes compressed by
    // nothing under each flag; the records compressed with one codec flagged as another.
    #[test]
    fn codec_flags_that_lie_are_corrupt() {
        let plain = three_records(NOW_MS);
        let section = raw_records(&plain).to_vec();
        for codec in &CODECS[1..] {
            let lying = batch_from_section(&plain, *codec, &section, false);
            assert_eq!(refusal(&lying, &policy()).0, Refusal::CorruptMessage, "plain under {codec:?}");
            let junk: Vec<u8> = (0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
            let junk = batch_from_section(&plain, *codec, &junk, false);
            assert_eq!(refusal(&junk, &policy()).0, Refusal::CorruptMessage, "junk under {codec:?}");
        }
        // gzip-compressed records flagged as none: the compressed bytes are no records.
        let gzip = batch_from_section(&plain, Compression::Gzip, &section, true);
        validate_produced(&gzip, &policy(), NOW_MS).unwrap();
        let unflagged = batch_from_section(&gzip, Compression::None, raw_records(&gzip), false);
        assert_eq!(refusal(&unflagged, &policy()).0, Refusal::CorruptMessage);
    }

    // Goal: the record count in the header must be the records present, in every codec, and
    // the 2^31-1 claim of issue 18 is refused without work proportional to the claim.
    #[test]
    fn record_count_must_match_the_records_present() {
        for codec in CODECS {
            let good = batch_with(codec, 0, &[(Some(b"a"), Some(b"1")), (Some(b"b"), Some(b"2"))], NOW_MS);
            for (count, last_delta) in [(1, 0), (3, 2), (i32::MAX, i32::MAX - 1)] {
                let mut lying = good.clone();
                lying[57..61].copy_from_slice(&count.to_be_bytes());
                lying[23..27].copy_from_slice(&last_delta.to_be_bytes());
                reseal(&mut lying);
                assert_eq!(refusal(&lying, &policy()).0, Refusal::CorruptMessage, "{codec:?} count {count}");
            }
        }
    }

    // Goal: a header key that is not UTF-8 is refused (CORRUPT_MESSAGE): kafka-protocol, the
    // decoder of sluice-client and other Rust consumers, fails the whole fetch response on it.
    // Found by the `record_batches` fuzz target (its input is in the corpus as
    // `regression-header-key-not-utf8.bin`). Method: a batch with a header "trace" built by
    // kafka-protocol, one byte of the key overwritten with 0xff, the CRC recomputed.
    #[test]
    fn a_header_key_that_is_not_utf8_is_corrupt() {
        use bytes::{Bytes, BytesMut};
        use kafka_protocol::protocol::StrBytes;
        use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
        let mut headers = indexmap::IndexMap::new();
        headers.insert(StrBytes::from_static_str("trace"), Some(Bytes::from_static(b"abc")));
        let record = Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: NOW_MS,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers,
            delete_horizon: false,
        };
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        RecordBatchEncoder::encode(&mut buf, [record].iter(), &options).unwrap();
        let good = buf.to_vec();
        validate_produced(&good, &policy(), NOW_MS).unwrap();
        let at = good.windows(5).position(|w| w == b"trace").unwrap();
        let mut bad = good.clone();
        bad[at + 2] = 0xff;
        reseal(&mut bad);
        let (kind, errors) = refusal(&bad, &policy());
        assert_eq!(kind, Refusal::CorruptMessage);
        assert!(errors.is_empty() || errors[0].message.contains("UTF-8"), "{errors:?}");
        match validate_produced(&bad, &policy(), NOW_MS) {
            Err(error) => assert!(error.to_string().contains("header key is not UTF-8"), "{error}"),
            Ok(_) => unreachable!(),
        }
    }

    // Goal: offset deltas must be 0..n-1 in order.
    #[test]
    fn offset_deltas_out_of_order_are_corrupt() {
        let mut b = three_records(NOW_MS);
        // Record 0 starts at 61: length varint (1 byte), attributes, timestamp delta 0 (1 byte),
        // then the offset delta, zigzag 0 = 0x00; make it 1 (zigzag 0x02).
        assert_eq!(b[64], 0x00);
        b[64] = 0x02;
        reseal(&mut b);
        let (kind, _) = refusal(&b, &policy());
        assert_eq!(kind, Refusal::CorruptMessage);
    }

    // Goal: scrambled records (bad varints, lengths outside the record or batch, bytes left
    // over) are corrupt. Method: overwrite one byte at every position of the records section
    // with each of a few values and reseal; every variant is either refused or still walks
    // as exactly the header's records (a change inside a key or value is legitimate data).
    #[test]
    fn scrambled_records_are_refused_or_still_whole() {
        let b = three_records(NOW_MS);
        for at in BATCH_HEADER_BYTES..b.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut scrambled = b.clone();
                scrambled[at] = value;
                reseal(&mut scrambled);
                match validate_produced(&scrambled, &policy(), NOW_MS) {
                    Ok(None) => {
                        let header = BatchHeader::parse(&scrambled).unwrap();
                        let section = records_section(&scrambled, &header).unwrap();
                        let parsed = crate::records::parse_records(&section, header.record_count).unwrap();
                        assert_eq!(parsed.len(), 3);
                    }
                    Err(LogError::RecordsRefused { kind, .. }) => assert_eq!(kind, Refusal::CorruptMessage),
                    Err(other) => panic!("byte {at} = {value:#x}: unexpected {other}"),
                    Ok(Some(_)) => panic!("byte {at} = {value:#x}: re-encoded on a `producer` topic"),
                }
            }
        }
        // Bytes after the last record.
        let mut trailing = b.clone();
        trailing.push(0);
        reseal(&mut trailing);
        assert_eq!(refusal(&trailing, &policy()).0, Refusal::CorruptMessage);
    }

    // Goal: a compacted topic refuses records without a key (INVALID_RECORD, one record error
    // per keyless record, by index); a delete topic accepts them.
    #[test]
    fn keyless_records_are_invalid_on_compacted_topics() {
        let compacted = ValidationPolicy { keys_required: true, ..policy() };
        for codec in CODECS {
            let b = batch_with(codec, 0, &[(Some(b"a"), Some(b"1")), (None, Some(b"2")), (None, None)], NOW_MS);
            validate_produced(&b, &policy(), NOW_MS).unwrap();
            let (kind, errors) = refusal(&b, &compacted);
            assert_eq!(kind, Refusal::InvalidRecord);
            assert_eq!(errors.iter().map(|e| e.record_index).collect::<Vec<_>>(), vec![1, 2]);
            let keyed = batch_with(codec, 0, &[(Some(b"a"), None)], NOW_MS);
            validate_produced(&keyed, &compacted, NOW_MS).unwrap();
        }
    }

    // Goal: CreateTime timestamps outside [now - before, now + after] are INVALID_TIMESTAMP
    // with the offending records named; LogAppendTime topics do not check them; a producer
    // may not claim LogAppendTime; the bounds saturate instead of overflowing.
    #[test]
    fn timestamps_are_checked_against_the_topic_bounds() {
        let bounded = ValidationPolicy { timestamp_before_max_ms: 1_000, timestamp_after_max_ms: 100, ..policy() };
        validate_produced(&three_records(NOW_MS - 998), &bounded, NOW_MS).unwrap();
        let (kind, errors) = refusal(&three_records(NOW_MS - 1_001), &bounded);
        assert_eq!(kind, Refusal::InvalidTimestamp);
        assert_eq!(errors.iter().map(|e| e.record_index).collect::<Vec<_>>(), vec![0]);
        let (kind, errors) = refusal(&three_records(NOW_MS + 100), &bounded);
        assert_eq!(kind, Refusal::InvalidTimestamp);
        assert_eq!(errors.iter().map(|e| e.record_index).collect::<Vec<_>>(), vec![1, 2]);
        let append_time = ValidationPolicy { timestamp_type: MessageTimestampType::LogAppendTime, ..bounded };
        validate_produced(&three_records(0), &append_time, NOW_MS).unwrap();
        // Unbounded by default (i64::MAX both ways; the sums saturate instead of overflowing).
        validate_produced(&three_records(0), &policy(), NOW_MS).unwrap();
        validate_produced(&three_records(i64::MAX - 5), &policy(), NOW_MS).unwrap();
        let mut claims_append_time = three_records(NOW_MS);
        claims_append_time[22] |= 1 << 3;
        reseal(&mut claims_append_time);
        assert_eq!(refusal(&claims_append_time, &policy()).0, Refusal::InvalidTimestamp);
    }

    // Goal: stamping LogAppendTime sets the flag and max timestamp and keeps the CRC valid.
    #[test]
    fn log_append_time_stamp_keeps_the_batch_valid() {
        let mut two = three_records(5);
        two.extend_from_slice(&three_records(6));
        stamp_log_append_time(&mut two, NOW_MS);
        let batches = validate_batches(&two, 1 << 20, Origin::Client).unwrap();
        assert_eq!(batches.len(), 2);
        for b in batches {
            assert_eq!(b.header.max_timestamp, NOW_MS);
            assert_ne!(b.header.attributes & TIMESTAMP_TYPE_FLAG, 0);
        }
    }

    // Goal: producers cannot append control batches.
    #[test]
    fn control_batches_from_producers_are_invalid() {
        let mut control = three_records(NOW_MS);
        control[22] |= 1 << 5;
        reseal(&mut control);
        assert_eq!(refusal(&control, &policy()).0, Refusal::InvalidRecord);
    }

    // Goal: header-level errors keep their old variants (CRC, size), so their codes stay.
    #[test]
    fn header_errors_keep_their_codes() {
        let mut b = three_records(NOW_MS);
        *b.last_mut().unwrap() ^= 1;
        assert!(matches!(validate_produced(&b, &policy(), NOW_MS), Err(LogError::CorruptBatch { .. })));
        let small = ValidationPolicy { batch_bytes_max: 70, ..policy() };
        assert!(matches!(validate_produced(&three_records(0), &small, NOW_MS), Err(LogError::BatchTooLarge { .. })));
    }
}
