//! Kafka framing: every request and response is a 4-byte big-endian signed length followed by
//! exactly that many payload bytes.
//!
//! ```text
//! +----------------+---------------------------------------------+
//! | length: i32 BE | payload: `length` bytes (header + body)     |
//! +----------------+---------------------------------------------+
//! ```
//!
//! The length counts the payload only, not the 4 prefix bytes. A negative length, or one above
//! the limit, is rejected as soon as the 4 prefix bytes are present — before a single byte is
//! reserved for the payload — so a peer cannot make us allocate by announcing a large frame
//! (Kafka's CVE-2022-34917 was this class of bug).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::ProtoError;

/// Size of the length prefix, in bytes.
pub const FRAME_LENGTH_PREFIX_BYTES: usize = 4;

/// Default upper bound on a request payload, in bytes: 100 MiB, Kafka's default
/// `socket.request.max.bytes` (104857600).
///
/// Why this value: a produce request carries whole record batches, and clients size their
/// requests by `max.request.size` (1 MiB by default, often raised); 100 MiB leaves room for
/// any client configuration that works against Kafka while bounding the memory one request can
/// pin. What it costs: a connection may buffer up to this much before the request is decoded, so
/// the broker's per-connection buffer limit must be at least this (plus the prefix), and the
/// number of connections times this bounds worst-case request memory.
pub const REQUEST_BYTES_MAX: usize = 100 * 1024 * 1024;

/// The result of looking at the front of a receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    /// A whole frame is buffered: the payload is `buffer[4 .. 4 + payload_bytes]`.
    Complete {
        /// Length of the payload, in bytes (prefix excluded).
        payload_bytes: usize,
    },
    /// More bytes are needed before the frame is complete.
    Incomplete {
        /// Total bytes (prefix included) the whole frame occupies, once the prefix is known.
        /// The caller should read towards this as data arrives, not reserve it up front.
        frame_bytes: Option<usize>,
    },
}

/// Looks at the front of `buffer` and says whether it holds a complete frame.
///
/// Fails with [`ProtoError::NegativeFrameLength`] or [`ProtoError::FrameTooLarge`] as soon as the
/// prefix is readable; never allocates.
pub fn check_frame(buffer: &[u8], payload_bytes_max: usize) -> Result<FrameStatus, ProtoError> {
    let Some(prefix) = buffer.get(..FRAME_LENGTH_PREFIX_BYTES) else {
        return Ok(FrameStatus::Incomplete { frame_bytes: None });
    };
    let length = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let payload_bytes = usize::try_from(length).map_err(|_| ProtoError::NegativeFrameLength { length })?;
    if payload_bytes > payload_bytes_max {
        return Err(ProtoError::FrameTooLarge { length_bytes: payload_bytes, limit_bytes: payload_bytes_max });
    }
    let frame_bytes = FRAME_LENGTH_PREFIX_BYTES + payload_bytes;
    if buffer.len() < frame_bytes {
        Ok(FrameStatus::Incomplete { frame_bytes: Some(frame_bytes) })
    } else {
        Ok(FrameStatus::Complete { payload_bytes })
    }
}

/// Splits one complete frame's payload off the front of `buffer`, or returns `Ok(None)` when more
/// bytes are needed. The payload shares `buffer`'s allocation (no copy).
pub fn split_frame(buffer: &mut BytesMut, payload_bytes_max: usize) -> Result<Option<Bytes>, ProtoError> {
    match check_frame(buffer, payload_bytes_max)? {
        FrameStatus::Incomplete { .. } => Ok(None),
        FrameStatus::Complete { payload_bytes } => {
            buffer.advance(FRAME_LENGTH_PREFIX_BYTES);
            Ok(Some(buffer.split_to(payload_bytes).freeze()))
        }
    }
}

/// Prefixes `payload` with its length, producing a frame ready to write.
pub fn encode_frame(payload: &[u8]) -> Result<Bytes, ProtoError> {
    let length =
        i32::try_from(payload.len()).map_err(|_| ProtoError::encode("frame", "payload longer than i32::MAX bytes"))?;
    let mut frame = BytesMut::with_capacity(FRAME_LENGTH_PREFIX_BYTES + payload.len());
    frame.put_i32(length);
    frame.put_slice(payload);
    Ok(frame.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_short_prefix_are_incomplete_without_length() {
        for len in 0..FRAME_LENGTH_PREFIX_BYTES {
            let buffer = vec![0u8; len];
            assert_eq!(check_frame(&buffer, REQUEST_BYTES_MAX).unwrap(), FrameStatus::Incomplete { frame_bytes: None });
        }
    }

    #[test]
    fn partial_payload_reports_total_frame_size() {
        let buffer = [0, 0, 0, 10, 1, 2, 3];
        assert_eq!(check_frame(&buffer, REQUEST_BYTES_MAX).unwrap(), FrameStatus::Incomplete { frame_bytes: Some(14) });
    }

    #[test]
    fn complete_frame_splits_exactly_and_leaves_the_rest() {
        let mut buffer = BytesMut::from(&[0, 0, 0, 3, b'a', b'b', b'c', 0, 0][..]);
        let payload = split_frame(&mut buffer, REQUEST_BYTES_MAX).unwrap().unwrap();
        assert_eq!(&payload[..], b"abc");
        assert_eq!(&buffer[..], &[0, 0]);
        assert_eq!(split_frame(&mut buffer, REQUEST_BYTES_MAX).unwrap(), None);
    }

    #[test]
    fn zero_length_frame_is_complete() {
        let mut buffer = BytesMut::from(&[0, 0, 0, 0][..]);
        let payload = split_frame(&mut buffer, REQUEST_BYTES_MAX).unwrap().unwrap();
        assert!(payload.is_empty());
        assert!(buffer.is_empty());
    }

    #[test]
    fn negative_length_is_rejected_from_the_prefix_alone() {
        let error = check_frame(&(-1i32).to_be_bytes(), REQUEST_BYTES_MAX).unwrap_err();
        assert!(matches!(error, ProtoError::NegativeFrameLength { length: -1 }));
        let error = check_frame(&i32::MIN.to_be_bytes(), REQUEST_BYTES_MAX).unwrap_err();
        assert!(matches!(error, ProtoError::NegativeFrameLength { .. }));
    }

    #[test]
    fn oversized_length_is_rejected_from_the_prefix_alone() {
        // Only the 4 prefix bytes are present: the limit must be enforced before any payload.
        let too_big = (REQUEST_BYTES_MAX as i32 + 1).to_be_bytes();
        let error = check_frame(&too_big, REQUEST_BYTES_MAX).unwrap_err();
        assert!(matches!(
            error,
            ProtoError::FrameTooLarge {
                length_bytes,
                limit_bytes: REQUEST_BYTES_MAX,
            } if length_bytes == REQUEST_BYTES_MAX + 1
        ));
        let exactly_limit = (REQUEST_BYTES_MAX as i32).to_be_bytes();
        assert!(check_frame(&exactly_limit, REQUEST_BYTES_MAX).is_ok());
        let error = check_frame(&i32::MAX.to_be_bytes(), 16).unwrap_err();
        assert!(matches!(error, ProtoError::FrameTooLarge { .. }));
    }

    #[test]
    fn encode_frame_round_trips_through_split_frame() {
        let frame = encode_frame(b"hello").unwrap();
        assert_eq!(&frame[..4], &5i32.to_be_bytes());
        let mut buffer = BytesMut::from(&frame[..]);
        let payload = split_frame(&mut buffer, REQUEST_BYTES_MAX).unwrap().unwrap();
        assert_eq!(&payload[..], b"hello");
    }
}
