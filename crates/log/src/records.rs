//! The records inside a RecordBatch v2, parsed only as far as the log needs: to find a record
//! by timestamp and to decide which records compaction keeps.
//!
//! Each record is `length varint` then: attributes i8, timestamp_delta varlong, offset_delta
//! varint, key_length varint (-1 = null), key, value_length varint (-1 = null), value,
//! header_count varint, headers. Varints are zig-zag encoded as in protobuf. A compressed batch
//! compresses the concatenated records as one stream. Compression uses the codec crates (and
//! kafka-protocol's Kafka-specific framing for snappy and lz4); decompression is bounded by
//! [`DECOMPRESSED_BATCH_BYTES_MAX`](crate::config::DECOMPRESSED_BATCH_BYTES_MAX).

use std::borrow::Cow;
use std::io::Read;

use bytes::BytesMut;
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use crate::batch::{BatchHeader, Codec};
use crate::config::{CompressionType, BATCH_HEADER_BYTES, DECOMPRESSED_BATCH_BYTES_MAX};

/// Smallest possible encoded record: length, attributes, timestamp delta, offset delta, key
/// length, value length and header count, one byte each.
pub(crate) const RECORD_BYTES_MIN: usize = 7;

/// Why the records of a batch could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordsError {
    Malformed(&'static str),
    Decompress(String),
    TooLarge,
}

/// One record, borrowed from the (decompressed) records section.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRecord<'a> {
    /// The whole encoded record including its length prefix.
    pub bytes: &'a [u8],
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value_is_null: bool,
}

/// Returns the records section of a stored batch, decompressed if needed.
pub(crate) fn records_section<'a>(batch: &'a [u8], header: &BatchHeader) -> Result<Cow<'a, [u8]>, RecordsError> {
    let body = &batch[BATCH_HEADER_BYTES..];
    let limit = DECOMPRESSED_BATCH_BYTES_MAX;
    let read_bounded = |mut reader: Box<dyn Read + '_>| -> Result<Vec<u8>, RecordsError> {
        let mut out = Vec::new();
        reader
            .by_ref()
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| RecordsError::Decompress(e.to_string()))?;
        if out.len() > limit {
            return Err(RecordsError::TooLarge);
        }
        Ok(out)
    };
    match header.codec().ok_or(RecordsError::Malformed("unknown codec"))? {
        Codec::None => Ok(Cow::Borrowed(body)),
        Codec::Gzip => read_bounded(Box::new(flate2::read::MultiGzDecoder::new(body))).map(Cow::Owned),
        Codec::Zstd => {
            let d = zstd::stream::read::Decoder::new(body).map_err(|e| RecordsError::Decompress(e.to_string()))?;
            read_bounded(Box::new(d)).map(Cow::Owned)
        }
        Codec::Lz4 => {
            let d = lz4::Decoder::new(body).map_err(|e| RecordsError::Decompress(e.to_string()))?;
            read_bounded(Box::new(d)).map(Cow::Owned)
        }
        Codec::Snappy => snappy_decompress_bounded(body, limit).map(Cow::Owned),
    }
}

/// Snappy as Kafka writes it: xerial framing (16-byte magic header, then blocks of
/// `u32 length` + raw snappy block), or a bare raw snappy block.
fn snappy_decompress_bounded(body: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
    const XERIAL_HEADER_BYTES: usize = 16;
    let mut out = Vec::new();
    let decode_block = |block: &[u8], out: &mut Vec<u8>| -> Result<(), RecordsError> {
        let n = snap::raw::decompress_len(block).map_err(|e| RecordsError::Decompress(e.to_string()))?;
        if out.len() + n > limit {
            return Err(RecordsError::TooLarge);
        }
        let start = out.len();
        out.resize(start + n, 0);
        snap::raw::Decoder::new()
            .decompress(block, &mut out[start..])
            .map_err(|e| RecordsError::Decompress(e.to_string()))?;
        Ok(())
    };
    if body.len() >= XERIAL_HEADER_BYTES && &body[..8] == XERIAL_MAGIC {
        let mut rest = &body[XERIAL_HEADER_BYTES..];
        while !rest.is_empty() {
            if rest.len() < 4 {
                return Err(RecordsError::Malformed("truncated snappy block length"));
            }
            let n = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            rest = &rest[4..];
            if n > rest.len() {
                return Err(RecordsError::Malformed("snappy block runs past the batch"));
            }
            decode_block(&rest[..n], &mut out)?;
            rest = &rest[n..];
        }
    } else {
        decode_block(body, &mut out)?;
    }
    Ok(out)
}

/// Compresses a records section with `codec`, in the framing Kafka clients expect.
pub(crate) fn compress(codec: Codec, raw: &[u8]) -> Result<Vec<u8>, RecordsError> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len() / 2 + 64);
    let fill = |b: &mut BytesMut| {
        b.extend_from_slice(raw);
        Ok(())
    };
    let r = match codec {
        Codec::None => {
            out.extend_from_slice(raw);
            Ok(())
        }
        Codec::Gzip => Gzip::compress(&mut out, fill),
        Codec::Snappy => Snappy::compress(&mut out, fill),
        Codec::Lz4 => Lz4::compress(&mut out, fill),
        Codec::Zstd => Zstd::compress(&mut out, fill),
    };
    r.map_err(|e| RecordsError::Decompress(e.to_string()))?;
    Ok(out)
}

/// Compresses a records section for a topic whose `compression.type` is `target`, at the
/// topic's level: gzip, lz4 and zstd through their codec crates with the same framing as
/// [`compress`] (lz4 frames of independent blocks, as kafka-protocol writes them), snappy (no
/// level) and uncompressed as [`compress`]. `Producer` keeps the records as they are.
pub(crate) fn compress_for(target: CompressionType, raw: &[u8]) -> Result<Vec<u8>, RecordsError> {
    use std::io::Write;
    let failed = |e: std::io::Error| RecordsError::Decompress(e.to_string());
    match target {
        CompressionType::Producer | CompressionType::Uncompressed => Ok(raw.to_vec()),
        CompressionType::Snappy => compress(Codec::Snappy, raw),
        CompressionType::Gzip { level } => {
            // Kafka's -1 is Deflater's default level, 6, which flate2 calls its default.
            let level = u32::try_from(level).map_or(flate2::Compression::default(), flate2::Compression::new);
            let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(raw.len() / 2 + 64), level);
            encoder.write_all(raw).map_err(failed)?;
            encoder.finish().map_err(failed)
        }
        CompressionType::Lz4 { level } => {
            let mut encoder = lz4::EncoderBuilder::new()
                .level(level)
                .block_mode(lz4::BlockMode::Independent)
                .build(Vec::with_capacity(raw.len() / 2 + 64))
                .map_err(failed)?;
            encoder.write_all(raw).map_err(failed)?;
            let (out, result) = encoder.finish();
            result.map_err(failed)?;
            Ok(out)
        }
        CompressionType::Zstd { level } => zstd::stream::encode_all(raw, level).map_err(failed),
    }
}

/// Splits a records section into `count` records. The count is checked against the section's
/// length before anything is allocated for it.
pub(crate) fn parse_records(section: &[u8], count: i32) -> Result<Vec<RawRecord<'_>>, RecordsError> {
    let count = usize::try_from(count).map_err(|_| RecordsError::Malformed("negative record count"))?;
    if count > section.len() / RECORD_BYTES_MIN + 1 {
        return Err(RecordsError::Malformed("record count larger than the records could hold"));
    }
    let mut records = Vec::with_capacity(count);
    let mut cursor = Cursor { buf: section, at: 0 };
    for _ in 0..count {
        let start = cursor.at;
        let len = cursor.varint()?;
        let len = usize::try_from(len).map_err(|_| RecordsError::Malformed("negative record length"))?;
        let body_start = cursor.at;
        let end = body_start
            .checked_add(len)
            .filter(|&e| e <= section.len())
            .ok_or(RecordsError::Malformed("record runs past the batch"))?;
        let mut body = Cursor { buf: &section[..end], at: body_start };
        body.byte()?; // attributes, unused
        let timestamp_delta = body.varlong()?;
        let offset_delta = body.varint()?;
        let key = body.nullable_bytes()?;
        let value = body.nullable_bytes()?;
        records.push(RawRecord {
            bytes: &section[start..end],
            timestamp_delta,
            offset_delta,
            key,
            value_is_null: value.is_none(),
        });
        cursor.at = end;
    }
    Ok(records)
}

/// Reads varints and length-prefixed fields of records, each checked against `buf`.
pub(crate) struct Cursor<'a> {
    pub buf: &'a [u8],
    pub at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn byte(&mut self) -> Result<u8, RecordsError> {
        let b = *self.buf.get(self.at).ok_or(RecordsError::Malformed("record truncated"))?;
        self.at += 1;
        Ok(b)
    }

    pub(crate) fn varlong(&mut self) -> Result<i64, RecordsError> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err(RecordsError::Malformed("varint too long"))
    }

    pub(crate) fn varint(&mut self) -> Result<i32, RecordsError> {
        let v = self.varlong()?;
        i32::try_from(v).map_err(|_| RecordsError::Malformed("varint out of range"))
    }

    pub(crate) fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, RecordsError> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        let end = self
            .at
            .checked_add(len as usize)
            .filter(|&e| e <= self.buf.len())
            .ok_or(RecordsError::Malformed("field runs past the record"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(Some(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{batch_with, Compression};

    #[test]
    fn every_codec_round_trips_keys_and_nulls() {
        for c in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let recs: Vec<crate::testing::KeyValue> =
                vec![(Some(b"a"), Some(b"1")), (None, Some(b"2")), (Some(b"b"), None)];
            let b = batch_with(c, 0, &recs, 500);
            let h = BatchHeader::parse(&b).unwrap();
            let section = records_section(&b, &h).unwrap();
            let parsed = parse_records(&section, h.record_count).unwrap();
            assert_eq!(parsed.len(), 3);
            assert_eq!(parsed[0].key, Some(b"a".as_slice()));
            assert_eq!(parsed[1].key, None);
            assert!(parsed[2].value_is_null);
            assert_eq!(parsed[2].offset_delta, 2);
            let again = compress(h.codec().unwrap(), &section).unwrap();
            let mut rebuilt = b[..BATCH_HEADER_BYTES].to_vec();
            rebuilt.extend_from_slice(&again);
            let mut h2 = h;
            h2.batch_length = (rebuilt.len() - 12) as i32;
            let s2 = records_section(&rebuilt, &h2).unwrap();
            assert_eq!(&*s2, &*section, "codec {c:?}");
        }
    }

    // Goal: every topic compression type, at the levels Kafka allows (lowest, default,
    // highest), writes a section the batch reader decodes back to the same records.
    #[test]
    fn every_target_codec_and_level_round_trips() {
        let recs: Vec<crate::testing::KeyValue> =
            (0..50).map(|_| (Some(b"k".as_slice()), Some(b"a value".as_slice()))).collect();
        let b = batch_with(Compression::None, 0, &recs, 500);
        let h = BatchHeader::parse(&b).unwrap();
        let section = records_section(&b, &h).unwrap().into_owned();
        let targets = [
            CompressionType::Uncompressed,
            CompressionType::Snappy,
            CompressionType::Gzip { level: -1 },
            CompressionType::Gzip { level: 1 },
            CompressionType::Gzip { level: 9 },
            CompressionType::Lz4 { level: 1 },
            CompressionType::Lz4 { level: 9 },
            CompressionType::Lz4 { level: 17 },
            CompressionType::Zstd { level: -131_072 },
            CompressionType::Zstd { level: 3 },
            CompressionType::Zstd { level: 22 },
        ];
        for target in targets {
            let body = compress_for(target, &section).unwrap();
            let mut rebuilt = b[..BATCH_HEADER_BYTES].to_vec();
            let attributes = (h.attributes & !0x7) | target.codec().unwrap() as i16;
            rebuilt[21..23].copy_from_slice(&attributes.to_be_bytes());
            rebuilt.extend_from_slice(&body);
            let h2 = BatchHeader { batch_length: (rebuilt.len() - 12) as i32, ..BatchHeader::parse(&rebuilt).unwrap() };
            assert_eq!(&*records_section(&rebuilt, &h2).unwrap(), &section[..], "{target:?}");
        }
        // A higher level is not larger on repetitive data (the level reaches the codec).
        let big: Vec<u8> = section.iter().cycle().take(1 << 20).copied().collect();
        let low = compress_for(CompressionType::Gzip { level: 1 }, &big).unwrap().len();
        let high = compress_for(CompressionType::Gzip { level: 9 }, &big).unwrap().len();
        assert!(high < low, "gzip level 9 ({high} bytes) should beat level 1 ({low} bytes)");
    }

    #[test]
    fn huge_record_count_is_refused_before_allocation() {
        assert!(parse_records(&[0u8; 10], i32::MAX).is_err());
    }

    #[test]
    fn decompression_is_bounded() {
        let zeros = vec![0u8; DECOMPRESSED_BATCH_BYTES_MAX + 1024];
        let compressed = compress(Codec::Zstd, &zeros).unwrap();
        let mut b = vec![0u8; BATCH_HEADER_BYTES];
        b[21..23].copy_from_slice(&4i16.to_be_bytes());
        b.extend_from_slice(&compressed);
        let h = BatchHeader { batch_length: (b.len() - 12) as i32, ..BatchHeader::parse(&b).unwrap() };
        assert_eq!(records_section(&b, &h).unwrap_err(), RecordsError::TooLarge);
    }
}
