//! Decoding untrusted message bodies without letting a wire length drive an allocation.
//!
//! # The problem
//!
//! `kafka-protocol` 0.18 decodes an array by reading its element count (an `i32`, or an unsigned
//! varint in flexible versions) and calling `Vec::with_capacity(count)` *before* decoding a single
//! element. A 12-byte Metadata v0 body claiming `i32::MAX` topics asks for
//! 2,147,483,647 × 72 bytes = 154,618,822,584 bytes; the allocation fails and Rust aborts the
//! whole process (measured here: `memory allocation of 154618822584 bytes failed`, SIGABRT).
//! Smaller lies (10⁸ elements) "succeed" as multi-gigabyte virtual reservations. Upstream has
//! open pull requests that cap the capacity by the remaining bytes; 0.18.0 has none of them.
//!
//! # The guard
//!
//! Every array element, string byte or bytes byte occupies at least one byte on the wire, so a
//! *structural* length (array count, string or bytes length) larger than the bytes that follow it
//! can only come from a broken or hostile peer. The decoder cannot tell us which integer it is
//! about to use as a length, so `GuardedBuf` clamps *every* `i32` and unsigned-varint read whose
//! value exceeds `max(bytes_following, LENGTH_UNCHECKED_MAX)` down to that bound, and counts the
//! clamps. Clamping never changes how many bytes a read consumes (a clamped varint is re-encoded
//! in the same number of bytes), so a clamped *scalar* (a timeout, `max_bytes`, a correlation id)
//! leaves the parse structure unchanged, while a clamped *length* makes the decoder demand at
//! least as many bytes as remain.
//!
//! `decode_bounded` runs the decoder up to three times:
//!
//! 1. pass A, clamping to the bound: with no clamp (the usual case) its result is the answer;
//! 2. if something was clamped, pass B clamps to bound + 1: a clamped length now needs more
//!    bytes than exist (and flexible versions need a tagged-field byte after every struct), so
//!    pass B fails iff some clamped value was structural; failure → [`ProtoError::Malformed`];
//! 3. pass C decodes the real values, now known to be scalars: every length it acts on is at
//!    most `max(bytes_following, LENGTH_UNCHECKED_MAX) + 1`, so no allocation exceeds the frame
//!    size (bounded by `REQUEST_BYTES_MAX`) times the element size.
//!
//! What remains: within that bound, a count can still exceed the elements actually present
//! (every element is at least one byte, but most are far more), and the decoder reserves
//! `count × size_of::<Element>()` before failing. At the 100 MiB request limit and the largest
//! request element types of kafka-protocol 0.18 (112 bytes, `CreatableTopic`), one reservation
//! is at most about 11.7 GB of *virtual* address space, never touched and freed when the decode
//! fails — harmless under Linux's default heuristic overcommit on a machine with more RAM plus
//! swap than that, fatal (abort) below it. Machines with less memory should lower the request
//! limit proportionally. The complete fix is upstream: kafka-protocol pull requests that cap the
//! capacity inside the array decoders (#152, #161, #200, open as of 0.18.0).
//!
//! # Decoded size
//!
//! Lengths that fit their bytes can still cost far more decoded than on the wire: a Metadata v0
//! topic is 2 bytes on the wire (an empty name) and a 72-byte `MetadataRequestTopic` in memory,
//! so 10 million of them (19 MiB) decoded to 1.7 GiB. `GuardedBuf` therefore counts the reads
//! the decoder makes (every `advance`, byte, `i32` and `get_bytes`: each decoded field takes at
//! least one) and stops the decode, by reporting no bytes left, once
//! `reads × DECODED_BYTES_PER_READ_MAX` would exceed the caller's `decoded_bytes_max`
//! ([`decoded_bytes_max_for`] by default: a multiple of the wire size with a small floor).
//! Memory built by a decode is at most the reads it made times the largest in-memory size of a
//! decoded element per read its decoding takes, which the unit test
//! `decoded_elements_cost_at_most_the_bound_per_read` measures for the request element types;
//! `Vec::with_capacity(count)` reserves more, but untouched (virtual) memory, as above.
//!
//! The record-batch decoder has its own check (see `records`), because record counts live inside
//! `records` byte fields that message decoding never looks into.

use bytes::{Buf, Bytes, TryGetError};
use kafka_protocol::protocol::buf::ByteBuf;

use crate::error::ProtoError;

/// Lengths at or below this many units are never clamped, whatever follows them, in elements
/// or bytes. Small enough that a lying count costs at most this many elements of allocation
/// (kilobytes), large enough that small scalars (tags, bools, small ids and counts) never
/// trigger the extra passes.
pub const LENGTH_UNCHECKED_MAX: u64 = 1024;

/// Upper bound of the bytes a decoded request holds in memory per read its decoding made
/// (see the module docs): the largest `size_of` of a request element type divided by the
/// fewest reads its decoding takes (a `CreatePartitionsAssignment` of CreatePartitions v0-1 is
/// one array length and 48 bytes; an empty `MetadataRequestTopic` at v0-8, 72 bytes in 2
/// reads). Checked by a unit test over the request element types of kafka-protocol 0.18.
pub const DECODED_BYTES_PER_READ_MAX: usize = 48;

/// How many times its wire size a request may occupy once decoded (as estimated: reads ×
/// [`DECODED_BYTES_PER_READ_MAX`]), beyond [`DECODED_REQUEST_BYTES_FLOOR`]. Why 8: legitimate
/// requests decode to 1-3× their wire size and are estimated at up to 6× (a Metadata v12 topic
/// with a 10-character name: 32 wire bytes, 72 decoded, 4 reads); requests of millions of empty
/// elements are estimated at 24-72×. Cost: a request above the floor made mostly of elements
/// of a few bytes (empty names, one-character names before Metadata v10) is refused, its
/// connection closed.
pub const DECODED_BYTES_PER_WIRE_BYTE_MAX: usize = 8;

/// Decoded bytes any request may occupy whatever its wire size, so that requests of small
/// elements (tens of thousands of short topic or group names) never meet the multiple above.
/// Cost: this much is reserved from the broker's decoded-request budget while a small request
/// is being decoded (given back, but for what it built, when decoding ends).
pub const DECODED_REQUEST_BYTES_FLOOR: usize = 4 * 1024 * 1024;

/// The decoded-size limit of a message of `wire_bytes`: `max(DECODED_REQUEST_BYTES_FLOOR,
/// DECODED_BYTES_PER_WIRE_BYTE_MAX × wire_bytes)`.
pub fn decoded_bytes_max_for(wire_bytes: usize) -> usize {
    DECODED_REQUEST_BYTES_FLOOR.max(DECODED_BYTES_PER_WIRE_BYTE_MAX.saturating_mul(wire_bytes))
}

/// Most bytes an unsigned varint occupies in `kafka-protocol`'s decoder (it stops after 5).
const VARINT_BYTES_MAX: usize = 5;

/// A [`ByteBuf`] over an untrusted body that clamps implausible lengths (see the module docs).
#[derive(Debug)]
pub(crate) struct GuardedBuf {
    inner: Bytes,
    /// `None`: pass values through unchanged (pass C). `Some(extra)`: clamp to bound + extra.
    clamp_extra: Option<u64>,
    clamped_reads: u32,
    /// The clamped re-encoding of a varint being served byte by byte.
    rewritten: [u8; VARINT_BYTES_MAX],
    rewritten_len: usize,
    rewritten_next: usize,
    /// Bytes of the varint being served unchanged byte by byte (0: none in progress). Its
    /// value was checked whole when its first byte was read; its later bytes must not be
    /// taken for the start of another varint and clamped, which would splice clamped bits into
    /// the middle of it and inflate it (found by the `request_frames` fuzz target: 5 bytes
    /// `90 80 80 80 80` then `04` became a count of 2^24, a 1.2 GB reservation).
    varint_served: usize,
    /// Reads made so far (see "Decoded size" in the module docs).
    reads: u64,
    /// Reads allowed; past them the buffer reports no bytes left.
    reads_max: u64,
}

impl GuardedBuf {
    fn new(inner: Bytes, clamp_extra: Option<u64>, reads_max: u64) -> Self {
        GuardedBuf {
            inner,
            clamp_extra,
            clamped_reads: 0,
            rewritten: [0; VARINT_BYTES_MAX],
            rewritten_len: 0,
            rewritten_next: 0,
            varint_served: 0,
            reads: 0,
            reads_max,
        }
    }

    /// Counts one read; `false` once the reads allowed are used up.
    fn count_read(&mut self) -> bool {
        self.reads += 1;
        self.reads <= self.reads_max
    }

    fn exhausted(&self) -> bool {
        self.reads >= self.reads_max
    }

    /// The largest value a length read here may have, or `None` when not clamping.
    fn bound(&self, bytes_following: usize) -> Option<u64> {
        let extra = self.clamp_extra?;
        Some((bytes_following as u64).max(LENGTH_UNCHECKED_MAX) + extra)
    }

    fn clear_rewrite(&mut self) {
        self.rewritten_len = 0;
        self.rewritten_next = 0;
        self.varint_served = 0;
    }

    /// Serves the next real byte, tracking whether it continues a varint: a byte with its
    /// high bit set leaves one in progress, for at most [`VARINT_BYTES_MAX`] bytes (where
    /// kafka-protocol's decoder stops).
    fn serve_real_byte(&mut self) -> Result<u8, TryGetError> {
        let byte = self.inner.try_get_u8()?;
        self.varint_served += 1;
        if byte < 0x80 || self.varint_served >= VARINT_BYTES_MAX {
            self.varint_served = 0;
        }
        Ok(byte)
    }
}

impl Buf for GuardedBuf {
    fn remaining(&self) -> usize {
        // Out of reads: the decoder sees the end of its input and fails there.
        if self.exhausted() {
            return 0;
        }
        self.inner.remaining()
    }

    fn chunk(&self) -> &[u8] {
        if self.exhausted() {
            return &[];
        }
        self.inner.chunk()
    }

    fn advance(&mut self, count: usize) {
        // Any read other than a byte-by-byte varint read ends a rewrite in progress: the bytes it
        // sees are the real ones.
        self.clear_rewrite();
        self.count_read();
        self.inner.advance(count);
    }

    fn try_get_u8(&mut self) -> Result<u8, TryGetError> {
        if !self.count_read() {
            return Err(TryGetError { requested: 1, available: 0 });
        }
        if self.rewritten_next < self.rewritten_len {
            let byte = self.rewritten[self.rewritten_next];
            self.rewritten_next += 1;
            self.inner.advance(1);
            return Ok(byte);
        }
        self.rewritten_len = 0;
        self.rewritten_next = 0;
        let Some((value, varint_bytes)) = peek_unsigned_varint(self.inner.chunk()) else {
            return self.serve_real_byte();
        };
        let bytes_following = self.inner.remaining() - varint_bytes;
        let Some(bound) = self.bound(bytes_following) else {
            return self.serve_real_byte();
        };
        if u64::from(value) <= bound {
            return self.serve_real_byte();
        }
        if self.varint_served > 0 {
            // Inside a varint whose start was checked, the bytes from here also read as a
            // varint over the bound. A well-formed varint never does (its tail is its value
            // shifted down, and it passed); only a boolean byte with its high bit set followed
            // by a length, or a varint longer than five bytes, can. Neither can be told apart
            // nor clamped safely: refuse the message.
            self.clamped_reads += 1;
            return Err(TryGetError { requested: 1, available: 0 });
        }
        // value > bound, and value fits in u32, so bound does too.
        let clamped = u32::try_from(bound).unwrap_or(u32::MAX);
        self.clamped_reads += 1;
        encode_padded_varint(clamped, &mut self.rewritten[..varint_bytes]);
        self.rewritten_len = varint_bytes;
        self.rewritten_next = 1;
        self.inner.advance(1);
        Ok(self.rewritten[0])
    }

    fn try_get_i32(&mut self) -> Result<i32, TryGetError> {
        self.clear_rewrite();
        if !self.count_read() {
            return Err(TryGetError { requested: 4, available: 0 });
        }
        let value = self.inner.try_get_i32()?;
        match self.bound(self.inner.remaining()) {
            Some(bound) if value > 0 && value as u64 > bound => {
                self.clamped_reads += 1;
                // bound < value <= i32::MAX
                Ok(i32::try_from(bound).unwrap_or(i32::MAX))
            }
            _ => Ok(value),
        }
    }
}

impl ByteBuf for GuardedBuf {
    fn peek_bytes(&mut self, range: std::ops::Range<usize>) -> Bytes {
        self.inner.slice(range)
    }

    fn get_bytes(&mut self, size: usize) -> Bytes {
        self.clear_rewrite();
        self.count_read();
        self.inner.split_to(size)
    }
}

/// Reads an unsigned varint the way `kafka-protocol` does (at most 5 bytes, overflow bits
/// dropped) without consuming it. `None` when the first byte ends it (value < 128, never clamped)
/// or when the buffer ends inside it (the decoder will fail on its own).
fn peek_unsigned_varint(bytes: &[u8]) -> Option<(u32, usize)> {
    if bytes.first().is_none_or(|&first| first < 0x80) {
        return None;
    }
    let mut value = 0u32;
    for (index, &byte) in bytes.iter().take(VARINT_BYTES_MAX).enumerate() {
        value |= u32::from(byte & 0x7f) << (index * 7);
        if byte < 0x80 {
            return Some((value, index + 1));
        }
    }
    (bytes.len() >= VARINT_BYTES_MAX).then_some((value, VARINT_BYTES_MAX))
}

/// Writes `value` as an unsigned varint of exactly `out.len()` bytes (non-minimal padding with
/// continuation bits), so the clamped value consumes as many bytes as the original.
fn encode_padded_varint(value: u32, out: &mut [u8]) {
    let last = out.len() - 1;
    for (index, byte) in out.iter_mut().enumerate() {
        let bits = ((u64::from(value) >> (index * 7)) & 0x7f) as u8;
        *byte = if index < last { bits | 0x80 } else { bits };
    }
}

/// Decodes `body` with `decode`, refusing any input whose array/string/bytes lengths cannot fit
/// in the bytes that follow them, or whose decoded form would exceed `decoded_bytes_max` (see
/// the module docs). `what` names the message for errors. Returns the value and the bound of
/// the bytes it holds in memory (reads × [`DECODED_BYTES_PER_READ_MAX`]).
pub(crate) fn decode_bounded<T, E: std::fmt::Display>(
    what: &'static str,
    body: &Bytes,
    decoded_bytes_max: usize,
    decode: impl Fn(&mut GuardedBuf) -> Result<T, E>,
) -> Result<(T, usize), ProtoError> {
    let reads_max = (decoded_bytes_max / DECODED_BYTES_PER_READ_MAX) as u64;
    // A decode that ran out of reads fails (it sees no bytes left); that failure is this one.
    let too_large = |buf: &GuardedBuf| {
        (buf.reads >= buf.reads_max).then_some(ProtoError::DecodedTooLarge {
            what,
            decoded_bytes_max,
            wire_bytes: body.len(),
        })
    };
    let decoded_bytes =
        |buf: &GuardedBuf| usize::try_from(buf.reads).unwrap_or(usize::MAX) * DECODED_BYTES_PER_READ_MAX;
    let mut pass_a = GuardedBuf::new(body.clone(), Some(0), reads_max);
    let result_a = decode(&mut pass_a);
    if let (Err(_), Some(error)) = (&result_a, too_large(&pass_a)) {
        return Err(error);
    }
    if pass_a.clamped_reads == 0 {
        let value = result_a.map_err(|error| ProtoError::malformed(what, error))?;
        return Ok((value, decoded_bytes(&pass_a)));
    }
    if let Err(error) = result_a {
        return Err(ProtoError::malformed(what, format!("{error} (a length exceeds the bytes that follow it)")));
    }
    let mut pass_b = GuardedBuf::new(body.clone(), Some(1), reads_max);
    if let Err(error) = decode(&mut pass_b) {
        if let Some(error) = too_large(&pass_b) {
            return Err(error);
        }
        return Err(ProtoError::malformed(what, format!("a length exceeds the bytes that follow it ({error})")));
    }
    tracing::trace!(what, clamped_reads = pass_a.clamped_reads, "large scalars checked; decoding real values");
    let mut pass_c = GuardedBuf::new(body.clone(), None, reads_max);
    let result_c = decode(&mut pass_c);
    if let (Err(_), Some(error)) = (&result_c, too_large(&pass_c)) {
        return Err(error);
    }
    let value = result_c.map_err(|error| ProtoError::malformed(what, error))?;
    Ok((value, decoded_bytes(&pass_c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_varint_is_never_clamped_in_its_middle() {
        // Goal: the bytes after the first byte of a varint that passed its check are served
        // unchanged. Before the fix each of them was peeked as the start of a new varint, and
        // `80 80 80 04` (2^30 read from the third byte) was clamped and spliced into the
        // middle of `90 80 80 80 80`, which then decoded as 16 793 616 instead of 16: a
        // 1.2 GB reservation for an 81-byte Metadata request (the `request_frames` fuzz
        // target; the input is in its corpus).
        // kafka-protocol's unsigned varint decoder (its `Decoder` trait is private).
        fn varint(buf: &mut GuardedBuf) -> Result<u32, TryGetError> {
            let mut value = 0u32;
            for i in 0..5 {
                let b = u32::from(buf.try_get_u8()?);
                value |= (b & 0x7f) << (i * 7);
                if b < 0x80 {
                    break;
                }
            }
            Ok(value)
        }
        let mut bytes = vec![0x90, 0x80, 0x80, 0x80, 0x80, 0x04];
        bytes.extend([0u8; 30]);
        let mut buf = GuardedBuf::new(Bytes::from(bytes), Some(0), u64::MAX);
        let value = varint(&mut buf);
        assert!(value.is_err(), "a varint whose tail reads as a varint over the bound is refused: {value:?}");

        // A well-formed varint below the bound passes unchanged, and so does a canonical one
        // followed by a clamped length.
        let mut bytes = vec![0xac, 0x02, 0xff, 0xff, 0xff, 0xff, 0x07];
        bytes.extend([0u8; 30]);
        let mut buf = GuardedBuf::new(Bytes::from(bytes), Some(0), u64::MAX);
        let first = varint(&mut buf).unwrap();
        let second = varint(&mut buf).unwrap();
        assert_eq!(first, 300);
        assert_eq!(u64::from(second), LENGTH_UNCHECKED_MAX, "the second, a lie, is clamped to the bound");
    }

    #[test]
    fn padded_varint_round_trips_in_every_width() {
        for width in 1..=VARINT_BYTES_MAX {
            let max = if width == VARINT_BYTES_MAX { u32::MAX } else { (1u32 << (7 * width)) - 1 };
            for value in [0, 1, 127, 128, 1024, max / 2, max] {
                if value > max {
                    continue;
                }
                let mut out = [0u8; VARINT_BYTES_MAX];
                encode_padded_varint(value, &mut out[..width]);
                let mut bytes = out[..width].to_vec();
                // A trailing byte proves the decoder stops exactly at `width`.
                bytes.push(0x7f);
                if width == 1 && value < 0x80 {
                    assert_eq!(bytes[0] as u32, value);
                    continue;
                }
                assert_eq!(peek_unsigned_varint(&bytes), Some((value, width)));
            }
        }
    }

    /// Reads a default (emptiest) `T` at `version` takes to decode, or `None` if `T` does not
    /// exist at that version.
    fn reads_to_decode<T>(version: i16) -> Option<u64>
    where
        T: Default + kafka_protocol::protocol::Encodable + kafka_protocol::protocol::Decodable,
    {
        let mut encoded = bytes::BytesMut::new();
        T::default().encode(&mut encoded, version).ok()?;
        let mut buf = GuardedBuf::new(encoded.freeze(), None, u64::MAX);
        T::decode(&mut buf, version).ok()?;
        Some(buf.reads)
    }

    /// Whether the request that holds arrays of `element` holds them at `version` (the
    /// generated code of a version-gated element accepts every version).
    fn used_at(element: &str, version: i16) -> bool {
        match element {
            "delete_topics_request::DeleteTopicState" => version >= 6,
            "offset_fetch_request::OffsetFetchRequestTopic" => version <= 7,
            "offset_fetch_request::OffsetFetchRequestTopics" | "offset_fetch_request::OffsetFetchRequestGroup" => {
                version >= 8
            }
            _ => true,
        }
    }

    // Goal: DECODED_BYTES_PER_READ_MAX bounds the in-memory size of every request element
    // type per read its emptiest form takes to decode, at every version, so that reads ×
    // DECODED_BYTES_PER_READ_MAX bounds what a decode builds. Method: encode each default
    // element, decode it through a counting GuardedBuf, compare with size_of.
    #[test]
    fn decoded_elements_cost_at_most_the_bound_per_read() {
        use kafka_protocol::messages::*;
        let mut checked = 0;
        let mut worst = (0usize, "");
        let mut failures: Vec<String> = Vec::new();
        macro_rules! check {
            ($($element:ty),* $(,)?) => {$(
                for version in 0..=20 {
                    // Zero reads: the element has no field at this version, which is one where
                    // its parent has no array of it (the generated code still accepts it).
                    let Some(reads) = reads_to_decode::<$element>(version).filter(|&reads| reads > 0) else {
                        continue;
                    };
                    if !used_at(stringify!($element), version) {
                        continue;
                    }
                    let size = std::mem::size_of::<$element>();
                    let per_read = size.div_ceil(reads as usize);
                    if per_read > worst.0 {
                        worst = (per_read, stringify!($element));
                    }
                    if size > reads as usize * DECODED_BYTES_PER_READ_MAX {
                        failures.push(format!("{} v{version}: {size} bytes in {reads} reads", stringify!($element)));
                    }
                    checked += 1;
                }
            )*};
        }
        check!(
            metadata_request::MetadataRequestTopic,
            create_topics_request::CreatableTopic,
            create_topics_request::CreatableReplicaAssignment,
            create_topics_request::CreatableTopicConfig,
            delete_topics_request::DeleteTopicState,
            offset_fetch_request::OffsetFetchRequestTopic,
            offset_fetch_request::OffsetFetchRequestTopics,
            offset_fetch_request::OffsetFetchRequestGroup,
            list_offsets_request::ListOffsetsTopic,
            list_offsets_request::ListOffsetsPartition,
            fetch_request::FetchTopic,
            fetch_request::FetchPartition,
            fetch_request::ForgottenTopic,
            produce_request::TopicProduceData,
            produce_request::PartitionProduceData,
            offset_commit_request::OffsetCommitRequestTopic,
            offset_commit_request::OffsetCommitRequestPartition,
            join_group_request::JoinGroupRequestProtocol,
            sync_group_request::SyncGroupRequestAssignment,
            leave_group_request::MemberIdentity,
            describe_configs_request::DescribeConfigsResource,
            alter_configs_request::AlterConfigsResource,
            alter_configs_request::AlterableConfig,
            incremental_alter_configs_request::AlterConfigsResource,
            incremental_alter_configs_request::AlterableConfig,
            create_partitions_request::CreatePartitionsTopic,
            create_partitions_request::CreatePartitionsAssignment,
            offset_for_leader_epoch_request::OffsetForLeaderTopic,
            offset_for_leader_epoch_request::OffsetForLeaderPartition,
            offset_delete_request::OffsetDeleteRequestTopic,
            offset_delete_request::OffsetDeleteRequestPartition,
            delete_records_request::DeleteRecordsTopic,
            delete_records_request::DeleteRecordsPartition,
        );
        // Arrays of bare strings (DescribeGroups, DeleteGroups, DeleteTopics v0-5 names,
        // ListGroups state filters): a length read and a get_bytes per element.
        assert!(std::mem::size_of::<kafka_protocol::protocol::StrBytes>() <= 2 * DECODED_BYTES_PER_READ_MAX);
        assert!(failures.is_empty(), "{failures:#?}");
        assert!(checked > 100, "only {checked} element versions checked");
        eprintln!("worst bytes per read: {} ({})", worst.0, worst.1);
    }

    #[test]
    fn peek_mirrors_kafka_protocol_stop_after_five_bytes() {
        // Five continuation bytes: kafka-protocol stops after the fifth regardless.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        let (value, width) = peek_unsigned_varint(&bytes).unwrap();
        assert_eq!(width, 5);
        assert_eq!(value, u32::MAX);
        // Buffer ending inside a varint: not peeked, the decoder reports the truncation.
        assert_eq!(peek_unsigned_varint(&[0x80, 0x80]), None);
    }
}
