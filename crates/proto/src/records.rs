//! Record batches (RecordBatch v2, "magic 2"): building them for clients and tests, reading the
//! fixed header, and decoding fetched data safely.
//!
//! # Layout (all integers big-endian)
//!
//! ```text
//! offset  size  field
//!      0     8  base_offset             first offset in the batch
//!      8     4  batch_length            bytes after this field (header rest + records)
//!     12     4  partition_leader_epoch  } not covered by the CRC: the leader rewrites
//!                                       } base_offset and this field on append
//!     16     1  magic                   2
//!     17     4  crc                     CRC-32C of bytes 21..end
//!     21     2  attributes              bits 0-2 compression (0 none, 1 gzip, 2 snappy,
//!                                       3 lz4, 4 zstd), 3 timestamp type (1 = log append),
//!                                       4 transactional, 5 control, 6 delete horizon
//!     23     4  last_offset_delta
//!     27     8  base_timestamp
//!     35     8  max_timestamp
//!     43     8  producer_id             -1 when not idempotent
//!     51     2  producer_epoch
//!     53     4  base_sequence           -1 when not idempotent
//!     57     4  record_count
//!     61     …  records (compressed as a whole when the codec is not none)
//! ```
//!
//! Each record is `length: varint` then `attributes: i8, timestamp_delta: varlong,
//! offset_delta: varint, key_length: varint, key, value_length: varint, value,
//! header_count: varint, headers` (varints are zigzag; a length of -1 means null).
//!
//! # Safety of decoding
//!
//! `kafka-protocol`'s `RecordBatchDecoder` calls `records.reserve(record_count)` and
//! `IndexMap::with_capacity(header_count)` with counts straight from the data. Before handing a
//! batch to it, [`decode_record_batches`] checks that the record count fits the (decompressed)
//! record bytes at [`RECORD_BYTES_MIN`] bytes per record, and walks the records to check that
//! every record fits its batch and every header count fits its record. Known gap: the codecs in
//! `kafka-protocol` decompress without an output limit, so a compression bomb is bounded only by
//! what the codec produces; see the crate docs.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{self as codec, Decompressor};
use kafka_protocol::records::RecordBatchDecoder;

pub use kafka_protocol::records::{Compression, Record, TimestampType};

use crate::error::ProtoError;

/// The only record batch format Sluice accepts.
pub const RECORD_BATCH_MAGIC: i8 = 2;
/// Bytes of the fixed batch header, up to the first record.
pub const RECORD_BATCH_HEADER_BYTES: usize = 61;
/// Bytes before and including `batch_length`: a batch occupies this plus `batch_length` bytes.
pub const BATCH_LENGTH_END_BYTES: usize = 12;
/// Smallest valid `batch_length` (the header after the length field, with no records).
pub const BATCH_LENGTH_MIN: usize = RECORD_BATCH_HEADER_BYTES - BATCH_LENGTH_END_BYTES;
/// Smallest encoded record, in bytes: length, attributes, timestamp delta, offset delta, key
/// length, value length and header count, one byte each.
pub const RECORD_BYTES_MIN: usize = 7;
/// Smallest encoded record header, in bytes: key length and value length, one byte each.
const RECORD_HEADER_BYTES_MIN: usize = 2;

const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;

/// Most bytes the records of one batch may decompress to when the codec says how much in
/// advance (snappy). kafka-protocol allocates that claimed length before decompressing, so a
/// 122-byte batch claiming 4 GiB would reserve 4 GiB (found by the `consumer_offsets` fuzz
/// target: 247 MB). The broker's own bound for produced batches is the same 64 MiB
/// (`sluice_log::config::DECOMPRESSED_BATCH_BYTES_MAX`).
pub const SNAPPY_DECOMPRESSED_BYTES_MAX: usize = 64 * 1024 * 1024;

/// One record as a producer supplies it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducedRecord {
    /// Key, or `None` for a null key.
    pub key: Option<Bytes>,
    /// Value, or `None` for a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers in order. Keys must be distinct: `kafka-protocol` keeps headers in a map, so a
    /// repeated key would be silently dropped; the builder refuses it instead.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// Idempotent-producer identity written into the batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    /// Producer id from InitProducerId, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
}

impl ProducerIdentity {
    /// A producer without idempotence.
    pub const NONE: ProducerIdentity = ProducerIdentity { producer_id: -1, producer_epoch: -1, base_sequence: -1 };
}

/// How to build a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Codec for the records section.
    pub compression: Compression,
    /// Producer id, epoch and base sequence.
    pub producer: ProducerIdentity,
    /// Offset of the first record (0 from a producer: the leader assigns offsets).
    pub base_offset: i64,
    /// Leader epoch (-1 from a producer: the leader stamps it).
    pub partition_leader_epoch: i32,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            compression: Compression::None,
            producer: ProducerIdentity::NONE,
            base_offset: 0,
            partition_leader_epoch: -1,
        }
    }
}

/// Builds exactly one RecordBatch v2 holding `records` in order (a [`BatchBuilder`] fed every
/// record).
pub fn build_record_batch(records: &[ProducedRecord], options: &BatchOptions) -> Result<Bytes, ProtoError> {
    let mut builder = BatchBuilder::with_capacity(
        records.iter().map(|r| r.value.as_ref().map_or(0, Bytes::len) + r.key.as_ref().map_or(0, Bytes::len)).sum(),
    );
    for record in records {
        builder.push(record.key.as_deref(), record.value.as_deref(), &record.headers, record.timestamp_ms)?;
    }
    builder.finish(options)
}

/// Builds one RecordBatch v2 record by record, the way a producer fills a batch: each record
/// is encoded straight into the batch's buffer when pushed (no allocation per record), and the
/// header, the codec and the CRC are applied once, by [`BatchBuilder::finish`].
///
/// Record timestamps are deltas from the first record's (as Kafka's Java producer writes them);
/// offset deltas count from 0. The encoding is the one `kafka-protocol`'s decoder reads back
/// (checked by `crates/proto/tests/records.rs` for every codec); it is written here rather than
/// with `kafka-protocol`'s encoder because that one takes whole `Record` values, each with a
/// header map, which costs allocations per record on the producer's hot path.
#[derive(Debug)]
pub struct BatchBuilder {
    /// A zeroed header, then the encoded records.
    buf: BytesMut,
    record_count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        BatchBuilder::with_capacity(0)
    }
}

impl BatchBuilder {
    /// An empty batch with room for about `record_bytes` of encoded records.
    pub fn with_capacity(record_bytes: usize) -> BatchBuilder {
        let mut buf = BytesMut::with_capacity(RECORD_BATCH_HEADER_BYTES + record_bytes);
        buf.resize(RECORD_BATCH_HEADER_BYTES, 0);
        BatchBuilder { buf, record_count: 0, base_timestamp: 0, max_timestamp: i64::MIN }
    }

    /// Encodes one record at the end of the batch. Header keys must be distinct (see
    /// [`ProducedRecord::headers`]); a repeated key is refused and the batch is left as it was.
    pub fn push(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(String, Option<Bytes>)],
        timestamp_ms: i64,
    ) -> Result<(), ProtoError> {
        if self.record_count == i32::MAX {
            return Err(invalid_records("more than i32::MAX records"));
        }
        for (index, (name, _)) in headers.iter().enumerate() {
            if headers[..index].iter().any(|(earlier, _)| earlier == name) {
                return Err(invalid_records(format!("record {} repeats header key {name:?}", self.record_count)));
            }
        }
        if self.record_count == 0 {
            self.base_timestamp = timestamp_ms;
        }
        let timestamp_delta = timestamp_ms.wrapping_sub(self.base_timestamp);
        let offset_delta = i64::from(self.record_count);
        let nullable = |field: Option<&[u8]>| {
            field.map_or(varint_bytes(-1), |bytes| varint_bytes(bytes.len() as i64) + bytes.len())
        };
        let body = 1
            + varint_bytes(timestamp_delta)
            + varint_bytes(offset_delta)
            + nullable(key)
            + nullable(value)
            + varint_bytes(headers.len() as i64)
            + headers
                .iter()
                .map(|(name, value)| nullable(Some(name.as_bytes())) + nullable(value.as_deref()))
                .sum::<usize>();
        let buf = &mut self.buf;
        buf.reserve(varint_bytes(body as i64) + body);
        put_varint(buf, body as i64);
        buf.put_u8(0); // record attributes: unused
        put_varint(buf, timestamp_delta);
        put_varint(buf, offset_delta);
        put_nullable(buf, key);
        put_nullable(buf, value);
        put_varint(buf, headers.len() as i64);
        for (name, value) in headers {
            put_nullable(buf, Some(name.as_bytes()));
            put_nullable(buf, value.as_deref());
        }
        self.record_count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
        Ok(())
    }

    /// Records pushed so far.
    pub fn record_count(&self) -> usize {
        self.record_count as usize
    }

    /// Bytes of the batch so far, uncompressed, header included.
    pub fn encoded_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The finished batch: the records section compressed with `options.compression`, the
    /// header filled in from `options` and the records, the CRC computed. Refuses an empty
    /// batch.
    pub fn finish(self, options: &BatchOptions) -> Result<Bytes, ProtoError> {
        if self.record_count == 0 {
            return Err(invalid_records("a batch needs at least one record"));
        }
        let mut batch = match options.compression {
            Compression::None => self.buf,
            codec => {
                let section = &self.buf[RECORD_BATCH_HEADER_BYTES..];
                let mut batch = BytesMut::with_capacity(RECORD_BATCH_HEADER_BYTES + section.len() / 2 + 64);
                batch.resize(RECORD_BATCH_HEADER_BYTES, 0);
                compress_into(codec, section, &mut batch)?;
                batch
            }
        };
        let batch_length =
            i32::try_from(batch.len() - BATCH_LENGTH_END_BYTES).map_err(|_| invalid_records("a batch over 2 GiB"))?;
        let mut header = &mut batch[..RECORD_BATCH_HEADER_BYTES];
        header.put_i64(options.base_offset);
        header.put_i32(batch_length);
        header.put_i32(options.partition_leader_epoch);
        header.put_i8(RECORD_BATCH_MAGIC);
        header.put_u32(0); // the CRC, below
        header.put_i16(codec_id(options.compression)); // create time, not transactional
        header.put_i32(self.record_count - 1);
        header.put_i64(self.base_timestamp);
        header.put_i64(self.max_timestamp);
        header.put_i64(options.producer.producer_id);
        header.put_i16(options.producer.producer_epoch);
        header.put_i32(options.producer.base_sequence);
        header.put_i32(self.record_count);
        let crc = crc32c::crc32c(&batch[CRC_OFFSET + 4..]);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(batch.freeze())
    }
}

/// The attribute bits of a codec.
fn codec_id(compression: Compression) -> i16 {
    match compression {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

/// Appends `section` compressed with `codec` to `out`, with `kafka-protocol`'s codecs (the
/// framing Kafka's clients read: gzip, xerial snappy, LZ4 frame, zstd frame).
fn compress_into(codec: Compression, section: &[u8], out: &mut BytesMut) -> Result<(), ProtoError> {
    use kafka_protocol::compression::Compressor;
    let fill = |buf: &mut BytesMut| {
        buf.extend_from_slice(section);
        Ok(())
    };
    let result = match codec {
        Compression::None => fill(out),
        Compression::Gzip => codec::Gzip::compress(out, fill),
        Compression::Snappy => codec::Snappy::compress(out, fill),
        Compression::Lz4 => codec::Lz4::compress(out, fill),
        Compression::Zstd => codec::Zstd::compress(out, fill),
    };
    result.map_err(|error| ProtoError::encode("record batch", error))
}

/// Bytes of `value` as a zigzag varint (Kafka's `varint`/`varlong`).
fn varint_bytes(value: i64) -> usize {
    let zigzag = ((value << 1) ^ (value >> 63)) as u64;
    (64 - (zigzag | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(buf: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        buf.put_u8((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    buf.put_u8(zigzag as u8);
}

/// A length-prefixed field; `None` is length -1.
fn put_nullable(buf: &mut BytesMut, field: Option<&[u8]>) {
    match field {
        Some(bytes) => {
            put_varint(buf, bytes.len() as i64);
            buf.extend_from_slice(bytes);
        }
        None => put_varint(buf, -1),
    }
}

/// The fixed 61-byte header of a RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the `batch_length` field.
    pub batch_length: i32,
    /// Epoch of the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// Format version; 2.
    pub magic: i8,
    /// CRC-32C of everything from `attributes` to the end of the batch.
    pub crc: u32,
    /// Compression, timestamp type, transactional, control and delete-horizon bits.
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp the record timestamp deltas are relative to.
    pub base_timestamp: i64,
    /// Largest record timestamp.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

impl BatchHeader {
    /// Reads the header from the front of `batch`. Checks only that 61 bytes are present and the
    /// magic is 2; the caller checks lengths against what it holds.
    pub fn parse(batch: &[u8]) -> Result<Self, ProtoError> {
        let Some(mut header) = batch.get(..RECORD_BATCH_HEADER_BYTES) else {
            return Err(corrupt(format!(
                "{} bytes cannot hold a {RECORD_BATCH_HEADER_BYTES}-byte batch header",
                batch.len()
            )));
        };
        let magic = header[MAGIC_OFFSET] as i8;
        if magic != RECORD_BATCH_MAGIC {
            return Err(ProtoError::UnsupportedMagic { magic });
        }
        Ok(BatchHeader {
            base_offset: header.get_i64(),
            batch_length: header.get_i32(),
            partition_leader_epoch: header.get_i32(),
            magic: header.get_i8(),
            crc: header.get_u32(),
            attributes: header.get_i16(),
            last_offset_delta: header.get_i32(),
            base_timestamp: header.get_i64(),
            max_timestamp: header.get_i64(),
            producer_id: header.get_i64(),
            producer_epoch: header.get_i16(),
            base_sequence: header.get_i32(),
            record_count: header.get_i32(),
        })
    }

    /// The records codec, or `None` for an id Kafka does not define (5..=7).
    pub fn compression(&self) -> Option<Compression> {
        match self.attributes & 0x7 {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Whether record timestamps are the broker's append time rather than the create time.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & (1 << 3) != 0 {
            TimestampType::LogAppend
        } else {
            TimestampType::Creation
        }
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & (1 << 4) != 0
    }

    /// Whether the batch holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & (1 << 5) != 0
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
}

/// One decoded batch.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedBatch {
    /// The batch header.
    pub header: BatchHeader,
    /// Its records, with absolute offsets and timestamps.
    pub records: Vec<Record>,
}

/// The result of decoding fetched record data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecodedRecords {
    /// Complete batches in order.
    pub batches: Vec<DecodedBatch>,
    /// Bytes of an incomplete batch at the end. A fetch response may cut its last batch at
    /// `max_bytes`; clients ignore the fragment and fetch again from the next offset.
    pub partial_trailing_bytes: usize,
}

/// Decodes the record batches in `data` (a fetch response's `records` field, or a file region),
/// refusing implausible counts before `kafka-protocol` allocates for them (see the module docs).
pub fn decode_record_batches(data: &Bytes) -> Result<DecodedRecords, ProtoError> {
    let mut rest = data.clone();
    let mut decoded = DecodedRecords::default();
    while !rest.is_empty() {
        let Some(batch_bytes) = batch_bytes_at_front(&rest)? else {
            decoded.partial_trailing_bytes = rest.len();
            break;
        };
        let batch = rest.split_to(batch_bytes);
        decoded.batches.push(decode_one_batch(batch)?);
    }
    Ok(decoded)
}

/// How many bytes the batch at the front of `data` occupies, or `None` if it is incomplete.
fn batch_bytes_at_front(data: &[u8]) -> Result<Option<usize>, ProtoError> {
    let Some(mut length_field) = data.get(8..BATCH_LENGTH_END_BYTES) else {
        return Ok(None);
    };
    let batch_length = length_field.get_i32();
    let batch_length =
        usize::try_from(batch_length).map_err(|_| corrupt(format!("negative batch length {batch_length}")))?;
    if batch_length < BATCH_LENGTH_MIN {
        return Err(corrupt(format!("batch length {batch_length} is shorter than the header")));
    }
    let batch_bytes = BATCH_LENGTH_END_BYTES + batch_length;
    Ok((data.len() >= batch_bytes).then_some(batch_bytes))
}

/// Refuses a snappy stream whose blocks claim more than [`SNAPPY_DECOMPRESSED_BYTES_MAX`] in
/// all, before kafka-protocol allocates the claimed length: xerial framing (magic, then
/// blocks of `u32` length + raw snappy) or one raw block, as kafka-protocol reads them.
fn check_snappy_claim(body: &[u8]) -> Result<(), ProtoError> {
    const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
    const XERIAL_HEADER_BYTES: usize = 16;
    let claimed = |block: &[u8]| snap::raw::decompress_len(block).unwrap_or(0);
    let total = if body.starts_with(XERIAL_MAGIC) && body.len() >= XERIAL_HEADER_BYTES {
        let mut rest = &body[XERIAL_HEADER_BYTES..];
        let mut total = 0usize;
        while let Some(length) = rest.get(..4) {
            let length = u32::from_be_bytes(length.try_into().expect("4 bytes")) as usize;
            let Some(block) = rest.get(4..4 + length) else { break };
            total = total.saturating_add(claimed(block));
            rest = &rest[4 + length..];
        }
        total
    } else {
        claimed(body)
    };
    if total > SNAPPY_DECOMPRESSED_BYTES_MAX {
        return Err(corrupt(format!(
            "snappy records claim {total} bytes decompressed, over {SNAPPY_DECOMPRESSED_BYTES_MAX}"
        )));
    }
    Ok(())
}

fn decode_one_batch(batch: Bytes) -> Result<DecodedBatch, ProtoError> {
    let header = BatchHeader::parse(&batch)?;
    let record_count = usize::try_from(header.record_count)
        .map_err(|_| corrupt(format!("negative record count {}", header.record_count)))?;
    let compression =
        header.compression().ok_or_else(|| corrupt(format!("unknown compression id {}", header.attributes & 0x7)))?;
    if compression == Compression::None {
        check_record_count_fits(record_count, batch.len() - RECORD_BATCH_HEADER_BYTES)?;
    }
    let decompress = |compressed: &mut Bytes, compression: Compression| {
        let records = match compression {
            Compression::None => compressed.split_off(0),
            Compression::Gzip => codec::Gzip::decompress(compressed, |out| Ok(out.split_off(0)))?,
            Compression::Snappy => {
                check_snappy_claim(&compressed[..])?;
                codec::Snappy::decompress(compressed, |out| Ok(out.split_off(0)))?
            }
            Compression::Lz4 => codec::Lz4::decompress(compressed, |out| Ok(out.split_off(0)))?,
            Compression::Zstd => codec::Zstd::decompress(compressed, |out| Ok(out.split_off(0)))?,
        };
        check_records(&records, record_count, &header)?;
        Ok(records)
    };
    let mut input = batch;
    let record_set =
        RecordBatchDecoder::decode_with_custom_compression(&mut input, Some(decompress)).map_err(|error| {
            match error.downcast::<ProtoError>() {
                Ok(proto_error) => proto_error,
                Err(error) => corrupt(error),
            }
        })?;
    debug_assert_eq!(record_set.records.len(), record_count);
    Ok(DecodedBatch { header, records: record_set.records })
}

fn check_record_count_fits(record_count: usize, record_bytes: usize) -> Result<(), ProtoError> {
    if record_count > record_bytes / RECORD_BYTES_MIN {
        return Err(corrupt(format!("{record_count} records cannot fit in {record_bytes} bytes")));
    }
    Ok(())
}

/// Walks `record_count` records in the uncompressed records section and checks every length
/// and count against the bytes that hold it. Varints are read exactly as `kafka-protocol` reads
/// them, so the counts checked are the counts it will use.
/// Checks that `record_count` records fill `records` with every length inside its record, and
/// that every record's timestamp and offset (the batch's base plus the record's delta) is an
/// `i64`: kafka-protocol adds them unchecked, which panics in a debug build (found by the
/// `consumer_offsets` fuzz target) and wraps in a release build.
fn check_records(records: &[u8], record_count: usize, header: &BatchHeader) -> Result<(), ProtoError> {
    check_record_count_fits(record_count, records.len())?;
    let mut rest = records;
    for index in 0..record_count {
        let length = read_varint(&mut rest)?;
        let length = usize::try_from(length)
            .ok()
            .filter(|&length| length <= rest.len())
            .ok_or_else(|| corrupt(format!("record {index} length {length} overruns the batch")))?;
        let (mut record, after) = rest.split_at(length);
        rest = after;
        // attributes, timestamp delta, offset delta
        skip(&mut record, 1)?;
        let timestamp_delta = read_varlong(&mut record)?;
        let offset_delta = read_varint(&mut record)?;
        if header.base_timestamp.checked_add(timestamp_delta).is_none()
            || header.base_offset.checked_add(i64::from(offset_delta)).is_none()
        {
            return Err(corrupt(format!("record {index} timestamp or offset overflows an i64")));
        }
        for _key_then_value in 0..2 {
            let field_length = read_varint(&mut record)?;
            if field_length >= 0 {
                skip(&mut record, field_length as usize)?;
            }
        }
        let header_count = read_varint(&mut record)?;
        let fits = usize::try_from(header_count).is_ok_and(|count| count <= record.len() / RECORD_HEADER_BYTES_MIN);
        if !fits {
            return Err(corrupt(format!(
                "record {index} header count {header_count} cannot fit in {} bytes",
                record.len()
            )));
        }
    }
    Ok(())
}

fn skip(bytes: &mut &[u8], count: usize) -> Result<(), ProtoError> {
    if bytes.len() < count {
        return Err(corrupt("record field overruns its record"));
    }
    bytes.advance(count);
    Ok(())
}

/// Zigzag varint, at most 5 bytes, as `kafka-protocol`'s `VarInt`.
fn read_varint(bytes: &mut &[u8]) -> Result<i32, ProtoError> {
    let zigzag = read_unsigned(bytes, 5)? as u32;
    Ok(((zigzag >> 1) as i32) ^ (-((zigzag & 1) as i32)))
}

/// Zigzag varlong, at most 10 bytes, as `kafka-protocol`'s `VarLong`.
fn read_varlong(bytes: &mut &[u8]) -> Result<i64, ProtoError> {
    let zigzag = read_unsigned(bytes, 10)?;
    Ok(((zigzag >> 1) as i64) ^ (-((zigzag & 1) as i64)))
}

fn read_unsigned(bytes: &mut &[u8], bytes_max: usize) -> Result<u64, ProtoError> {
    let mut value = 0u64;
    for index in 0..bytes_max {
        let Some((&byte, rest)) = bytes.split_first() else {
            return Err(corrupt("record ends inside a varint"));
        };
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << (index * 7);
        if byte < 0x80 {
            break;
        }
    }
    Ok(value)
}

fn corrupt(reason: impl std::fmt::Display) -> ProtoError {
    ProtoError::CorruptRecordBatch { reason: reason.to_string() }
}

fn invalid_records(reason: impl std::fmt::Display) -> ProtoError {
    ProtoError::InvalidRecords { reason: reason.to_string() }
}
