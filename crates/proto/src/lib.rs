//! Kafka wire protocol for Sluice: pure code, no I/O, no async.
//!
//! A request travels through this crate in the order of the modules below:
//!
//! 1. [`frame`] — split a receive buffer into length-prefixed frames, refusing negative or
//!    oversized lengths before allocating ([`frame::REQUEST_BYTES_MAX`]).
//! 2. [`request`] — read the header prefix (api key, version, correlation id), check the api and
//!    version against the broker's [`api_versions::SupportedApis`], decode header and body with
//!    `kafka-protocol`; encode responses with the right response header version.
//! 3. [`guard`] — the length guard every body decode goes through: `kafka-protocol` 0.18
//!    pre-allocates arrays by their wire count, so a 12-byte request could abort the process.
//! 4. [`records`] — RecordBatch v2 header parsing, a batch builder for clients and tests, and a
//!    decoder for fetched data that checks counts before `kafka-protocol` allocates for them.
//! 5. [`mod@murmur2`] — Kafka's key partitioner, bit for bit.
//!
//! Message bodies are `kafka-protocol`'s generated types (re-exported as [`kafka_protocol`]), so
//! every crate in the workspace uses the same version. Wire types are converted to domain types
//! by the broker's handlers, not here.
//!
//! Known limits: record decompression uses `kafka-protocol`'s codecs, which have no output size
//! limit (a decompression bomb is bounded only by memory); Kafka allows repeated record header
//! keys, but `kafka-protocol` stores headers in a map, so a decoded record keeps the last value
//! of a repeated key.

pub mod api_versions;
pub mod error;
pub mod frame;
pub mod guard;
pub mod murmur2;
pub mod records;
pub mod request;

pub use api_versions::{ApiVersionRange, SupportedApis};
pub use error::ProtoError;
pub use frame::{check_frame, encode_frame, split_frame, FrameStatus, REQUEST_BYTES_MAX};
pub use kafka_protocol;
pub use murmur2::{murmur2, partition_for_key, to_positive};
pub use request::{
    decode_request, decode_request_body, decode_request_header, decode_request_within, decode_response, encode_request,
    encode_response, read_request_prefix, Request, RequestPrefix,
};
