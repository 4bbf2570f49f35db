//! A Kafka-protocol connection from this broker to another: one request at a time, framed and
//! encoded by `sluice-proto`, every response bounded before it is buffered and every wait
//! bounded by a timeout. Used by the replica fetcher and the group coordinator's lag refresh.
//!
//! It dials the other broker's inter-broker address (`--inter-broker-listener-name`, else its
//! default listener) in plain TCP, or in TLS presenting this broker's certificate when the
//! replication settings carry TLS settings (an SSL inter-broker listener).

use std::time::Duration;

use bytes::Bytes;
use sluice_meta::tls::RpcStream;
use sluice_proto::kafka_protocol::messages::{ApiKey, RequestHeader};
use sluice_proto::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice_proto::{decode_response, encode_request};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

use crate::security::tls::TlsSettings;

/// Largest response frame accepted from another broker, in bytes: a follower fetch response
/// holds at most [`REPLICA_FETCH_RESPONSE_BYTES_MAX`](super::REPLICA_FETCH_RESPONSE_BYTES_MAX)
/// of records plus one whole batch beyond it (the first batch is always sent whole, up to
/// `max.message.bytes`) and the per-partition headers.
pub const BROKER_RESPONSE_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Time allowed to open a connection to another broker, in milliseconds.
pub const BROKER_CONNECT_TIMEOUT_MS: u64 = 2_000;

/// Client id this broker sends (Kafka brokers send `broker-<id>-fetcher-<n>`).
fn client_id(local_broker: i32) -> StrBytes {
    StrBytes::from_string(format!("sluice-broker-{local_broker}-fetcher"))
}

/// Why a call to another broker failed. Every variant is retriable on a new connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Connecting, writing or reading failed, or the peer closed the connection.
    #[error("connection to {address}: {source}")]
    Io {
        /// The broker's address.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No answer within the timeout.
    #[error("no answer from {address} within {timeout_ms} ms")]
    Timeout {
        /// The broker's address.
        address: String,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The TLS configuration could not be loaded or the handshake failed.
    #[error("TLS to {address}: {reason}")]
    Tls {
        /// The broker's address.
        address: String,
        /// What failed.
        reason: String,
    },
    /// The answer was not a valid response to the request.
    #[error("bad response from {address}: {reason}")]
    Protocol {
        /// The broker's address.
        address: String,
        /// What was wrong.
        reason: String,
    },
}

/// One open connection.
#[derive(Debug)]
pub struct BrokerConnection {
    address: String,
    stream: BufStream<RpcStream>,
    next_correlation_id: i32,
    client_id: StrBytes,
}

impl BrokerConnection {
    /// Connects to `address` (`host:port`), in TLS with `tls`' certificate when given; the
    /// connection and the handshake each within [`BROKER_CONNECT_TIMEOUT_MS`].
    pub async fn connect(
        address: &str,
        local_broker: i32,
        tls: Option<&TlsSettings>,
    ) -> Result<BrokerConnection, ConnectionError> {
        let io = |source| ConnectionError::Io { address: address.to_string(), source };
        let timeout = Duration::from_millis(BROKER_CONNECT_TIMEOUT_MS);
        let timed_out =
            |_| ConnectionError::Timeout { address: address.to_string(), timeout_ms: BROKER_CONNECT_TIMEOUT_MS };
        let stream =
            tokio::time::timeout(timeout, TcpStream::connect(address)).await.map_err(timed_out)?.map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        let stream = match tls {
            None => RpcStream::Plain(stream),
            Some(settings) => {
                let tls_error = |reason: String| ConnectionError::Tls { address: address.to_string(), reason };
                let config = crate::security::tls::load_client(settings).map_err(|e| tls_error(e.to_string()))?;
                let name = sluice_meta::tls::server_name(address).map_err(tls_error)?;
                let handshake = tokio_rustls::TlsConnector::from(config).connect(name, stream);
                let stream = tokio::time::timeout(timeout, handshake)
                    .await
                    .map_err(timed_out)?
                    .map_err(|e| tls_error(e.to_string()))?;
                RpcStream::TlsClient(Box::new(stream))
            }
        };
        Ok(BrokerConnection {
            address: address.to_string(),
            stream: BufStream::new(stream),
            next_correlation_id: 0,
            client_id: client_id(local_broker),
        })
    }

    /// The broker's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `body` as `api_key` at `version` and waits up to `timeout` for its response. After
    /// an error the connection must be dropped (a late answer could be taken for the next).
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, ConnectionError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1) & i32::MAX;
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let frame = encode_request(&header, body).map_err(|e| self.protocol(e.to_string()))?;
        let exchange = async {
            self.stream.write_all(&frame).await?;
            self.stream.flush().await?;
            let length = self.stream.read_i32().await?;
            let length = usize::try_from(length)
                .ok()
                .filter(|length| *length <= BROKER_RESPONSE_BYTES_MAX)
                .ok_or_else(|| std::io::Error::other(format!("response frame of {length} bytes")))?;
            let mut payload = vec![0u8; length];
            self.stream.read_exact(&mut payload).await?;
            Ok::<_, std::io::Error>(payload)
        };
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let payload = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(payload)) => payload,
            Ok(Err(source)) => return Err(ConnectionError::Io { address: self.address.clone(), source }),
            Err(_) => return Err(ConnectionError::Timeout { address: self.address.clone(), timeout_ms }),
        };
        let (header, response) = decode_response::<Resp>(api_key, version, Bytes::from(payload))
            .map_err(|e| self.protocol(e.to_string()))?;
        if header.correlation_id != correlation_id {
            return Err(self.protocol(format!("correlation id {} for request {correlation_id}", header.correlation_id)));
        }
        Ok(response)
    }

    fn protocol(&self, reason: String) -> ConnectionError {
        ConnectionError::Protocol { address: self.address.clone(), reason }
    }
}
