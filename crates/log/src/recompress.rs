//! Broker-side recompression: a topic whose `compression.type` is not `producer` stores every
//! produced batch in its own codec, as Kafka's `LogValidator` does.
//!
//! A batch whose codec differs from the topic's is re-encoded: its records section is
//! decompressed (bounded by
//! [`DECOMPRESSED_BATCH_BYTES_MAX`](crate::config::DECOMPRESSED_BATCH_BYTES_MAX)) and
//! compressed with the topic's codec and level; the records themselves are copied byte for
//! byte, so offsets deltas, timestamps, keys, values and headers stay as produced. The header
//! keeps every field — base offset, base and max timestamps, producer id, epoch and base
//! sequence, partition leader epoch, record count, the other attribute bits — but the codec
//! bits, the batch length and the CRC-32C, which is computed again. A batch already in the
//! topic's codec is kept as produced, whatever level it was compressed at (Kafka does the
//! same). Each batch keeps its own header: Sluice accepts several batches per partition in one
//! produce, Kafka exactly one.
//!
//! Runs on the leader only, inside [`crate::validate::validate_produced`] — which hands over
//! each batch's records section as its check just decompressed it, so nothing is decompressed
//! twice — and before offsets are assigned; followers copy the leader's stored bytes, so every
//! replica holds the same batch. Pure: no clock, no I/O.

use crate::batch::{compute_crc, BatchHeader, LOG_OVERHEAD_BYTES};
use crate::config::{CompressionType, BATCH_HEADER_BYTES, RECOMPRESSED_RECORDS_BYTES_MAX};
use crate::error::{LogError, Result};
use crate::records::compress_for;

/// Bits 0-2 of a batch's attributes: its codec.
const CODEC_MASK: i16 = 0x7;

/// The stored form of one produce, built batch by batch as validation walks it. Nothing is
/// copied until the first batch that needs re-encoding; [`Recompression::finish`] is `None`
/// when no batch did (`producer`, or every batch already in the topic's codec).
#[derive(Debug)]
pub(crate) struct Recompression {
    target: CompressionType,
    batch_bytes_max: usize,
    out: Option<Vec<u8>>,
}

impl Recompression {
    /// For a topic storing batches as `target`, each at most `batch_bytes_max` bytes.
    pub(crate) fn new(target: CompressionType, batch_bytes_max: usize) -> Recompression {
        Recompression { target, batch_bytes_max, out: None }
    }

    /// Adds the batch at `position` of `records` (validated, with its records section
    /// `section`): as produced when it is already in the topic's codec, else re-encoded.
    ///
    /// A re-encoded batch larger than `batch_bytes_max`, or a result larger than
    /// [`RECOMPRESSED_RECORDS_BYTES_MAX`], is refused with [`LogError::BatchTooLarge`]
    /// (MESSAGE_TOO_LARGE, as Kafka refuses a batch recompression made too large).
    pub(crate) fn push(&mut self, records: &[u8], position: usize, header: &BatchHeader, section: &[u8]) -> Result<()> {
        let Some(codec) = self.target.codec() else { return Ok(()) };
        let batch = &records[position..position + header.total_bytes()];
        if header.codec() == Some(codec) {
            if let Some(out) = self.out.as_mut() {
                out.extend_from_slice(batch);
            }
        } else {
            let out = self.out.get_or_insert_with(|| {
                let mut out = Vec::with_capacity(records.len());
                out.extend_from_slice(&records[..position]);
                out
            });
            let start = out.len();
            reencode(batch, header, section, self.target, out).map_err(|reason| LogError::RecordsRefused {
                position,
                kind: crate::validate::Refusal::CorruptMessage,
                reason,
                record_errors: Vec::new(),
            })?;
            let size = out.len() - start;
            if size > self.batch_bytes_max {
                return Err(LogError::BatchTooLarge { size, limit: self.batch_bytes_max });
            }
        }
        match &self.out {
            Some(out) if out.len() > RECOMPRESSED_RECORDS_BYTES_MAX => {
                Err(LogError::BatchTooLarge { size: out.len(), limit: RECOMPRESSED_RECORDS_BYTES_MAX })
            }
            _ => Ok(()),
        }
    }

    /// The produce's stored form, or `None` to store it as produced.
    pub(crate) fn finish(self) -> Option<Vec<u8>> {
        self.out
    }
}

/// Appends `batch` (records section `section`) re-encoded with `target` to `out`. The error is
/// a sentence: only a codec failure gets one.
fn reencode(
    batch: &[u8],
    header: &BatchHeader,
    section: &[u8],
    target: CompressionType,
    out: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    let codec = target.codec().expect("not Producer");
    let body = compress_for(target, section).map_err(|error| format!("re-encoding failed: {error:?}"))?;
    let start = out.len();
    out.extend_from_slice(&batch[..BATCH_HEADER_BYTES]);
    out.extend_from_slice(&body);
    let rebuilt = &mut out[start..];
    let batch_length =
        i32::try_from(rebuilt.len() - LOG_OVERHEAD_BYTES).map_err(|_| "re-encoded batch over 2 GiB".to_string())?;
    rebuilt[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (header.attributes & !CODEC_MASK) | codec as i16;
    rebuilt[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = compute_crc(rebuilt);
    rebuilt[17..21].copy_from_slice(&crc.to_be_bytes());
    debug_assert!(crate::batch::verify_stored(rebuilt));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{verify_stored, Codec};
    use crate::config::MessageTimestampType;
    use crate::records::{parse_records, records_section};
    use crate::testing::{batch_with, Compression};
    use crate::validate::{validate_produced, ValidationPolicy};

    /// What a leader would store for `records` on a topic with `compression.type` `target`
    /// and `max.message.bytes` `batch_bytes_max`: the real path, validation included.
    fn recompress_produced(records: &[u8], target: CompressionType, batch_bytes_max: usize) -> Result<Option<Vec<u8>>> {
        let policy = ValidationPolicy {
            batch_bytes_max,
            keys_required: false,
            timestamp_type: MessageTimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            compression: target,
        };
        validate_produced(records, &policy, 1_700_000_000_000)
    }

    /// Of one record: key, whether the value is null, timestamp delta, offset delta, its bytes.
    type RecordFacts = (Option<Vec<u8>>, bool, i64, i32, Vec<u8>);

    fn records_of(batch: &[u8]) -> Vec<RecordFacts> {
        let header = BatchHeader::parse(batch).unwrap();
        let section = records_section(batch, &header).unwrap();
        parse_records(&section, header.record_count)
            .unwrap()
            .into_iter()
            .map(|r| (r.key.map(<[u8]>::to_vec), r.value_is_null, r.timestamp_delta, r.offset_delta, r.bytes.to_vec()))
            .collect()
    }

    fn producer_batch(codec: Compression) -> Vec<u8> {
        let recs: Vec<crate::testing::KeyValue> = vec![
            (Some(b"a".as_slice()), Some(b"one".as_slice())),
            (None, Some(b"two".as_slice())),
            (Some(b"c".as_slice()), None),
        ];
        let mut batch = batch_with(codec, 0, &recs, 1_700_000_000_000);
        // An idempotent producer's fields and the transactional bit, to see they are kept.
        batch[43..51].copy_from_slice(&4242i64.to_be_bytes());
        batch[51..53].copy_from_slice(&7i16.to_be_bytes());
        batch[53..57].copy_from_slice(&99i32.to_be_bytes());
        let attributes = i16::from_be_bytes([batch[21], batch[22]]) | 1 << 4;
        batch[21..23].copy_from_slice(&attributes.to_be_bytes());
        crate::testing::reseal(&mut batch);
        batch
    }

    // Goal: from every codec to every other, the re-encoded batch carries the topic's codec,
    // the same records byte for byte, every other header field and attribute bit, and a valid
    // CRC-32C.
    #[test]
    fn every_codec_is_reencoded_to_every_other_keeping_records_and_header() {
        let sources = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
        let targets = [
            CompressionType::Uncompressed,
            CompressionType::Gzip { level: 9 },
            CompressionType::Snappy,
            CompressionType::Lz4 { level: 9 },
            CompressionType::Zstd { level: 3 },
        ];
        for source in sources {
            let produced = producer_batch(source);
            let before = BatchHeader::parse(&produced).unwrap();
            for target in targets {
                let stored = match recompress_produced(&produced, target, 1 << 20).unwrap() {
                    Some(stored) => stored,
                    None => {
                        assert_eq!(before.codec(), target.codec(), "{source:?} → {target:?} kept as produced");
                        continue;
                    }
                };
                let after = BatchHeader::parse(&stored).unwrap();
                assert_eq!(after.total_bytes(), stored.len());
                assert!(verify_stored(&stored), "{source:?} → {target:?}: CRC");
                assert_eq!(after.codec(), target.codec());
                assert_eq!(after.attributes & !CODEC_MASK, before.attributes & !CODEC_MASK);
                assert_eq!(stored[..8], produced[..8], "base offset");
                assert_eq!(stored[12..17], produced[12..17], "leader epoch, magic");
                assert_eq!(stored[23..BATCH_HEADER_BYTES], produced[23..BATCH_HEADER_BYTES], "the other fields");
                assert_eq!(records_of(&stored), records_of(&produced), "{source:?} → {target:?}");
            }
        }
    }

    // Goal: `producer`, and batches already in the topic's codec, are not copied or touched;
    // in a produce of several batches only those in another codec are re-encoded.
    #[test]
    fn batches_in_the_topic_codec_are_kept_as_produced() {
        let zstd = producer_batch(Compression::Zstd);
        assert_eq!(recompress_produced(&zstd, CompressionType::Producer, 1 << 20).unwrap(), None);
        assert_eq!(recompress_produced(&zstd, CompressionType::Zstd { level: 19 }, 1 << 20).unwrap(), None);
        let gzip = producer_batch(Compression::Gzip);
        let mut both = zstd.clone();
        both.extend_from_slice(&gzip);
        both.extend_from_slice(&zstd);
        let stored = recompress_produced(&both, CompressionType::Zstd { level: 3 }, 1 << 20).unwrap().unwrap();
        assert_eq!(stored[..zstd.len()], zstd[..]);
        assert_eq!(stored[stored.len() - zstd.len()..], zstd[..]);
        let middle = &stored[zstd.len()..stored.len() - zstd.len()];
        assert_eq!(BatchHeader::parse(middle).unwrap().codec(), Some(Codec::Zstd));
        assert_eq!(records_of(middle), records_of(&gzip));
    }

    // Goal: a batch that recompression makes larger than max.message.bytes is refused with
    // MESSAGE_TOO_LARGE, as Kafka refuses it, and so is a produce whose batches together
    // expand past RECOMPRESSED_RECORDS_BYTES_MAX.
    #[test]
    fn a_batch_grown_past_the_limit_is_message_too_large() {
        let zeros = vec![0u8; 200_000];
        let recs: Vec<crate::testing::KeyValue> = vec![(None, Some(zeros.as_slice()))];
        let produced = batch_with(Compression::Zstd, 0, &recs, 0);
        assert!(produced.len() < 10_000);
        let error = recompress_produced(&produced, CompressionType::Uncompressed, 100_000).unwrap_err();
        assert!(matches!(error, LogError::BatchTooLarge { limit: 100_000, .. }), "{error:?}");
        assert_eq!(error.kafka_error_code(), 10);
        let many: Vec<u8> = produced.iter().copied().cycle().take(produced.len() * 700).collect();
        let error = recompress_produced(&many, CompressionType::Uncompressed, 1 << 20).unwrap_err();
        assert!(matches!(error, LogError::BatchTooLarge { limit: RECOMPRESSED_RECORDS_BYTES_MAX, .. }), "{error:?}");
    }
}
