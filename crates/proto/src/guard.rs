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
}

impl GuardedBuf {
    fn new(inner: Bytes, clamp_extra: Option<u64>) -> Self {
        GuardedBuf {
            inner,
            clamp_extra,
            clamped_reads: 0,
            rewritten: [0; VARINT_BYTES_MAX],
            rewritten_len: 0,
            rewritten_next: 0,
        }
    }

    /// The largest value a length read here may have, or `None` when not clamping.
    fn bound(&self, bytes_following: usize) -> Option<u64> {
        let extra = self.clamp_extra?;
        Some((bytes_following as u64).max(LENGTH_UNCHECKED_MAX) + extra)
    }

    fn clear_rewrite(&mut self) {
        self.rewritten_len = 0;
        self.rewritten_next = 0;
    }
}

impl Buf for GuardedBuf {
    fn remaining(&self) -> usize {
        self.inner.remaining()
    }

    fn chunk(&self) -> &[u8] {
        self.inner.chunk()
    }

    fn advance(&mut self, count: usize) {
        // Any read other than a byte-by-byte varint read ends a rewrite in progress: the bytes it
        // sees are the real ones.
        self.clear_rewrite();
        self.inner.advance(count);
    }

    fn try_get_u8(&mut self) -> Result<u8, TryGetError> {
        if self.rewritten_next < self.rewritten_len {
            let byte = self.rewritten[self.rewritten_next];
            self.rewritten_next += 1;
            self.inner.advance(1);
            return Ok(byte);
        }
        self.clear_rewrite();
        let Some((value, varint_bytes)) = peek_unsigned_varint(self.inner.chunk()) else {
            return self.inner.try_get_u8();
        };
        let bytes_following = self.inner.remaining() - varint_bytes;
        let Some(bound) = self.bound(bytes_following) else {
            return self.inner.try_get_u8();
        };
        if u64::from(value) <= bound {
            return self.inner.try_get_u8();
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
/// in the bytes that follow them (see the module docs). `what` names the message for errors.
pub(crate) fn decode_bounded<T, E: std::fmt::Display>(
    what: &'static str,
    body: &Bytes,
    decode: impl Fn(&mut GuardedBuf) -> Result<T, E>,
) -> Result<T, ProtoError> {
    let mut pass_a = GuardedBuf::new(body.clone(), Some(0));
    let result_a = decode(&mut pass_a);
    if pass_a.clamped_reads == 0 {
        return result_a.map_err(|error| ProtoError::malformed(what, error));
    }
    if let Err(error) = result_a {
        return Err(ProtoError::malformed(what, format!("{error} (a length exceeds the bytes that follow it)")));
    }
    let mut pass_b = GuardedBuf::new(body.clone(), Some(1));
    if let Err(error) = decode(&mut pass_b) {
        return Err(ProtoError::malformed(what, format!("a length exceeds the bytes that follow it ({error})")));
    }
    tracing::trace!(what, clamped_reads = pass_a.clamped_reads, "large scalars checked; decoding real values");
    let mut pass_c = GuardedBuf::new(body.clone(), None);
    decode(&mut pass_c).map_err(|error| ProtoError::malformed(what, error))
}

#[cfg(test)]
mod tests {
    use super::*;

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
