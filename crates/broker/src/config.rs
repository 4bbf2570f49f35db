//! Broker configuration and the limits of the network layer.
//!
//! Every queue and buffer of a connection is bounded by a value here; the doc of each says why
//! it has its value and what it costs. Relations between limits are checked at compile time for
//! the defaults and by [`BrokerConfig::validate`] for a configured value.

use std::net::{Ipv4Addr, SocketAddr};

use sluice_proto::REQUEST_BYTES_MAX;

use crate::error::BrokerError;

/// Default Kafka listener port.
pub const KAFKA_PORT_DEFAULT: u16 = 9092;

/// Requests one connection may have read and not yet answered, the one being handled included.
///
/// Why: clients pipeline (librdkafka and the Java client default to 5 in flight per
/// connection); reading ahead lets the next request be decoded while one is handled. Past this,
/// the connection stops reading and TCP pushes back on the client. Cost: up to this many request
/// frames held per connection (their bytes are bounded separately below).
pub const IN_FLIGHT_REQUESTS_MAX: usize = 16;

/// Bytes of request payloads one connection may have read and not yet answered.
///
/// Why: bounds a connection's queued memory independently of the request count; equal to the
/// largest request, so one maximal request is always admitted. Cost: with the read buffer, a
/// connection can hold about twice [`REQUEST_BYTES_MAX`] in the worst case.
pub const CONNECTION_QUEUED_BYTES_MAX: usize = REQUEST_BYTES_MAX;

/// Most bytes one socket read appends to a connection's read buffer.
///
/// Why: the buffer then never exceeds one incomplete frame plus one chunk, however fast the
/// client writes, and a large frame is assembled as its bytes arrive instead of being reserved
/// from its length prefix. 64 KiB matches a typical socket receive window.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Bytes of request payloads all connections together may hold, buffered or queued, until
/// answered (Kafka's `queued.max.request.bytes`).
///
/// Why: the per-connection limits alone would let every connection hold a maximal request
/// ([`CONNECTIONS_MAX`] × [`REQUEST_BYTES_MAX`] = 400 GiB). A frame's size is charged here as
/// soon as its length prefix is read, before its payload is buffered; a connection that does not
/// fit waits without reading, so the client meets TCP backpressure. Cost: a few clients sending
/// maximal requests make the others wait; [`CONNECTION_IDLE_MS_MAX`] bounds how long a silent
/// client can keep its share.
pub const REQUEST_MEMORY_BYTES_MAX: usize = 4 * REQUEST_BYTES_MAX;

/// Bytes all requests being decoded or handled may occupy *decoded*, beyond their frames.
///
/// Why: a frame's wire size is charged to [`REQUEST_MEMORY_BYTES_MAX`], but decoding can build
/// more than that in memory (a 19 MiB Metadata request of 10 million empty topic names decoded
/// to 1.7 GiB). Before a request is decoded, its connection reserves its decoded-size limit
/// (`sluice_proto::guard::decoded_bytes_max_for`: 8× the wire size, at least 4 MiB, at most
/// this) from this budget; the decoder refuses to build more (the connection is closed), and
/// what it did not build is given back as soon as decoding ends. Cost: while this is used up
/// (e.g. by many large requests at once), connections wait before decoding their next request.
pub const DECODED_REQUEST_MEMORY_BYTES_MAX: usize = 4 * REQUEST_BYTES_MAX;

/// The most memory one request can cost the broker, in bytes per wire byte, above the
/// decoded-size floor (`sluice_proto::guard::DECODED_REQUEST_BYTES_FLOOR`, 4 MiB): its frame
/// (1×) plus its decoded form (`sluice_proto::guard::DECODED_BYTES_PER_WIRE_BYTE_MAX`, 8×).
/// Measured by `tests/request_memory.rs`: 20 MB of empty Metadata topic names cost 7.9×,
/// DescribeGroups, DeleteTopics and OffsetFetch of empty elements 3.7-4.9× (1.7 GiB, 85×,
/// before the decoded size was bounded).
pub const REQUEST_MEMORY_PER_WIRE_BYTE_MAX: usize = 1 + sluice_proto::guard::DECODED_BYTES_PER_WIRE_BYTE_MAX;

/// A connection on which nothing arrives for this long is closed, in milliseconds (Kafka's
/// `connections.max.idle.ms`, 10 minutes).
///
/// Why: frees the slot, the buffers and the request-memory share of clients that vanished
/// without closing, or that stalled in the middle of a frame.
pub const CONNECTION_IDLE_MS_MAX: u64 = 600_000;

/// A request that takes longer than this, in milliseconds, is logged as slow (one warn line:
/// API, client id, peer, elapsed); `--slow-request-ms`, 0 turns it off. A Fetch's own long-poll
/// wait (`max_wait_ms`) is added to it, and JoinGroup and SyncGroup are never logged: they wait
/// for the group's rebalance by design. 1 s is far above a healthy produce, metadata or commit
/// (milliseconds) and below a client's request timeout (30 s), so what it logs is a stall worth
/// a look.
pub const SLOW_REQUEST_MS_DEFAULT: u64 = 1_000;

/// Largest a connection's read buffer can grow, in bytes: a frame one byte short of complete
/// (prefix plus payload) plus one read chunk.
pub const READ_BUFFER_BYTES_MAX: usize = 4 + REQUEST_BYTES_MAX + READ_CHUNK_BYTES;

/// Open client connections the broker accepts at once; further clients wait in the kernel's
/// accept queue until one closes.
///
/// Why: each connection costs a task, two small buffers and a file descriptor; this bounds the
/// total well below typical descriptor limits while leaving room for the 1,000 idle
/// connections issue 4 requires plus active clients.
pub const CONNECTIONS_MAX: usize = 4096;

/// After shutdown is requested, how long open connections get to finish, in milliseconds,
/// before their tasks are aborted.
pub const SHUTDOWN_GRACE_MS: u64 = 5_000;

/// Pause after a failed `accept` (for example out of file descriptors), in milliseconds, so the
/// accept loop does not spin while the condition lasts.
pub const ACCEPT_ERROR_BACKOFF_MS: u64 = 100;

const _: () = assert!(CONNECTION_QUEUED_BYTES_MAX >= REQUEST_BYTES_MAX);
const _: () = assert!(REQUEST_MEMORY_BYTES_MAX >= CONNECTION_QUEUED_BYTES_MAX);
const _: () = assert!(IN_FLIGHT_REQUESTS_MAX >= 1);
const _: () = assert!(CONNECTION_QUEUED_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(DECODED_REQUEST_MEMORY_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(DECODED_REQUEST_MEMORY_BYTES_MAX >= sluice_proto::guard::DECODED_REQUEST_BYTES_FLOOR);

/// What the broker's network layer needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Address of the Kafka listener (port 0 picks a free port; see `Server::local_addr`).
    pub listen_address: SocketAddr,
    /// Largest request payload accepted, in bytes (Kafka's `socket.request.max.bytes`).
    pub request_bytes_max: usize,
    /// See [`IN_FLIGHT_REQUESTS_MAX`].
    pub in_flight_requests_max: usize,
    /// See [`CONNECTION_QUEUED_BYTES_MAX`].
    pub connection_queued_bytes_max: usize,
    /// See [`CONNECTIONS_MAX`].
    pub connections_max: usize,
    /// See [`REQUEST_MEMORY_BYTES_MAX`].
    pub request_memory_bytes_max: usize,
    /// See [`CONNECTION_IDLE_MS_MAX`].
    pub connection_idle_ms_max: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listen_address: SocketAddr::from((Ipv4Addr::LOCALHOST, KAFKA_PORT_DEFAULT)),
            request_bytes_max: REQUEST_BYTES_MAX,
            in_flight_requests_max: IN_FLIGHT_REQUESTS_MAX,
            connection_queued_bytes_max: CONNECTION_QUEUED_BYTES_MAX,
            connections_max: CONNECTIONS_MAX,
            request_memory_bytes_max: REQUEST_MEMORY_BYTES_MAX,
            connection_idle_ms_max: CONNECTION_IDLE_MS_MAX,
        }
    }
}

impl BrokerConfig {
    /// Checks the relations between limits that the defaults satisfy by construction.
    pub fn validate(&self) -> Result<(), BrokerError> {
        let invalid = |reason: String| Err(BrokerError::InvalidConfig { reason });
        if self.in_flight_requests_max == 0 || self.connections_max == 0 {
            return invalid("in-flight request and connection limits must be at least 1".into());
        }
        if self.connection_queued_bytes_max < self.request_bytes_max {
            return invalid(format!(
                "connection_queued_bytes_max ({}) must hold one request of request_bytes_max ({})",
                self.connection_queued_bytes_max, self.request_bytes_max
            ));
        }
        if self.request_memory_bytes_max < self.connection_queued_bytes_max {
            return invalid(format!(
                "request_memory_bytes_max ({}) must be at least connection_queued_bytes_max ({})",
                self.request_memory_bytes_max, self.connection_queued_bytes_max
            ));
        }
        if self.connection_idle_ms_max == 0 {
            return invalid("connection_idle_ms_max must be at least 1".into());
        }
        if self.connection_queued_bytes_max > u32::MAX as usize || self.request_bytes_max > i32::MAX as usize {
            return invalid("byte limits must fit the wire's 32-bit lengths".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_listen_on_localhost_9092() {
        let config = BrokerConfig::default();
        config.validate().unwrap();
        assert_eq!(config.listen_address.to_string(), "127.0.0.1:9092");
    }

    #[test]
    fn queued_bytes_smaller_than_one_request_is_refused() {
        let config = BrokerConfig { connection_queued_bytes_max: REQUEST_BYTES_MAX - 1, ..BrokerConfig::default() };
        assert!(matches!(config.validate(), Err(BrokerError::InvalidConfig { .. })));
        let config = BrokerConfig { in_flight_requests_max: 0, ..BrokerConfig::default() };
        assert!(config.validate().is_err());
    }
}
