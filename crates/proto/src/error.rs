//! The one error type of the wire crate.
//!
//! Every variant says who can do what about it. "Retriable" means the same operation may succeed
//! if tried again later without changing the input (Kafka's `RetriableException` family); a
//! variant that is not retriable needs a different input, a fixed client, or a fixed Sluice.

use kafka_protocol::messages::ApiKey;

/// Errors from framing, decoding and encoding Kafka protocol data.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// A frame's 4-byte length prefix is negative. The byte stream is not Kafka (or is out of
    /// sync); the connection must be closed. Not retriable.
    #[error("negative frame length {length}")]
    NegativeFrameLength {
        /// The length read from the wire.
        length: i32,
    },

    /// A frame's length prefix is larger than the configured limit. Detected before anything is
    /// allocated for the payload; the connection must be closed (Kafka does the same for
    /// `socket.request.max.bytes`). Not retriable: the client must send smaller requests or the
    /// operator must raise the limit.
    #[error("frame of {length_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    FrameTooLarge {
        /// The payload length the peer announced.
        length_bytes: usize,
        /// The limit in force.
        limit_bytes: usize,
    },

    /// The request is too short to hold the fixed part of a request header (api key, api
    /// version, correlation id). Not retriable; close the connection.
    #[error("request of {length_bytes} bytes is too short for a request header")]
    TruncatedHeader {
        /// The payload length.
        length_bytes: usize,
    },

    /// The api key is not one Kafka defines (or not one this `kafka-protocol` version knows).
    /// Not retriable; Kafka closes the connection.
    #[error("unknown api key {api_key}")]
    UnknownApiKey {
        /// The raw api key from the request header.
        api_key: i16,
    },

    /// The api exists but this version is not in the supported table. Not retriable: the client
    /// should have picked a version from the ApiVersions response. For ApiVersions itself the
    /// broker answers UNSUPPORTED_VERSION (KIP-511); for every other api it closes the connection.
    #[error("unsupported version {api_version} of {api_key:?}")]
    UnsupportedVersion {
        /// The api.
        api_key: ApiKey,
        /// The requested version.
        api_version: i16,
    },

    /// The bytes do not decode as the announced message (truncated body, bad UTF-8, an array or
    /// string length that cannot fit in the bytes that follow, ...). Not retriable; a broker
    /// closes the connection.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's explanation.
        reason: String,
    },

    /// Decoding the message would build more in memory than its limit allows (a request made
    /// of millions of empty elements, each a few wire bytes but tens of bytes decoded; see
    /// [`crate::guard`]). Stopped before that memory was touched. Not retriable as is: the
    /// client must send smaller requests; a broker closes the connection.
    #[error("{what} would decode to more than {decoded_bytes_max} bytes ({wire_bytes} bytes on the wire)")]
    DecodedTooLarge {
        /// What was being decoded.
        what: &'static str,
        /// The limit in force for this message, in bytes.
        decoded_bytes_max: usize,
        /// The message's size on the wire, in bytes.
        wire_bytes: usize,
    },

    /// A supported-api table was built with an inconsistent entry (a version range the codec
    /// cannot handle, or a duplicate api). A programming error in the broker; not retriable.
    #[error("invalid supported-api table: {reason}")]
    InvalidApiTable {
        /// What is wrong with the table.
        reason: String,
    },

    /// A message could not be encoded (a field too long for its wire type, or a field that does
    /// not exist in the chosen version). A programming error in the caller; not retriable.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's explanation.
        reason: String,
    },

    /// A record batch failed validation: CRC-32C mismatch, a record count that cannot fit in its
    /// bytes, a record that runs past the end of the batch, a bad compression id. Retriable in
    /// Kafka's sense (CORRUPT_MESSAGE is a `RetriableException`: a fetch from another replica or
    /// a resend from the producer may be intact); if it repeats, the stored data is damaged.
    #[error("corrupt record batch: {reason}")]
    CorruptRecordBatch {
        /// What failed.
        reason: String,
    },

    /// The batch uses a format other than RecordBatch v2 (magic 2). Sluice stores and serves v2
    /// only; message sets v0/v1 (Kafka < 0.11 clients) are refused. Not retriable.
    #[error("unsupported record batch magic {magic} (only v2 is supported)")]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },

    /// Records given to the batch builder cannot form one batch (empty list, duplicate header
    /// keys, too many records). A caller error; not retriable.
    #[error("invalid records for a batch: {reason}")]
    InvalidRecords {
        /// What is wrong.
        reason: String,
    },
}

impl ProtoError {
    /// Whether trying the same thing again may succeed (see each variant's documentation).
    pub fn is_retriable(&self) -> bool {
        matches!(self, ProtoError::CorruptRecordBatch { .. })
    }

    pub(crate) fn malformed(what: &'static str, error: impl std::fmt::Display) -> Self {
        ProtoError::Malformed { what, reason: error.to_string() }
    }

    pub(crate) fn encode(what: &'static str, error: impl std::fmt::Display) -> Self {
        ProtoError::Encode { what, reason: error.to_string() }
    }
}
