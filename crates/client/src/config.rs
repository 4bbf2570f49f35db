//! Client configuration and every limit the client enforces, each with its unit.
//!
//! Defaults follow Kafka's Java client where it has an equivalent setting (named in each doc),
//! so a user moving from Kafka finds the same behaviour.

use std::time::Duration;

use crate::backoff::Backoff;

/// Largest response frame the client accepts, in bytes. A broker's fetch answer is bounded by
/// the request's `max_bytes`; this is the backstop against a corrupt length prefix allocating
/// gigabytes. Kafka's equivalent is unbounded; librdkafka's `receive.message.max.bytes` is 100 MB.
pub const RESPONSE_BYTES_MAX: usize = 100 * 1024 * 1024;

/// Requests a single connection may have awaiting answers before a caller waits for a slot.
/// Bounds the pending-answer table; the producer uses fewer (`max_in_flight`).
pub const CONNECTION_IN_FLIGHT_MAX: usize = 64;

/// Connection-level settings shared by producer, consumer and admin.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` list to discover the cluster from (`bootstrap.servers`).
    pub bootstrap_servers: Vec<String>,
    /// Sent in every request header (`client.id`).
    pub client_id: String,
    /// Time to establish a TCP connection and negotiate api versions.
    pub connect_timeout: Duration,
    /// Time a request may wait for its answer (`request.timeout.ms`, 30 s in Kafka). A Fetch
    /// waits `max_wait` longer.
    pub request_timeout: Duration,
    /// Retry timing (`retry.backoff.ms` / `retry.backoff.max.ms`).
    pub backoff: Backoff,
    /// Attempts for metadata and admin requests before the error is returned.
    pub retries_max: u32,
    /// Age after which cached metadata is refreshed even without an error (`metadata.max.age.ms`).
    pub metadata_max_age: Duration,
    /// SASL credentials: every connection authenticates with them (`sasl.mechanism`,
    /// `sasl.username`, `sasl.password`); `None`: no SASL.
    pub sasl: Option<crate::sasl::SaslCredentials>,
    /// TLS: every connection is encrypted and the broker's certificate checked (an SSL or
    /// SASL_SSL listener; `security.protocol` SSL / SASL_SSL); `None`: plain TCP.
    pub tls: Option<crate::tls::TlsSettings>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            bootstrap_servers: vec!["localhost:9092".to_string()],
            client_id: "sluice-client".to_string(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
            retries_max: 10,
            metadata_max_age: Duration::from_secs(300),
            sasl: None,
            tls: None,
        }
    }
}

impl ClientConfig {
    /// A configuration for these bootstrap servers (comma-separated `host:port` list).
    pub fn new(bootstrap: &str) -> ClientConfig {
        ClientConfig {
            bootstrap_servers: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            ..ClientConfig::default()
        }
    }
}
