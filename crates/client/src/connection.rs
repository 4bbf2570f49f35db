//! One TCP connection to one broker: api-version negotiation, pipelined requests matched to
//! answers by correlation id, a timeout on every request.
//!
//! Why pipelined: the producer keeps several produce requests in flight per broker and the
//! consumer long-polls; one request at a time per socket would serialise them. A reader task
//! owns the read half and hands each answer to the waiting caller; writers take turns on the
//! write half. Kafka answers a connection's requests in order, but matching by correlation id
//! costs nothing and catches a confused peer.
//!
//! Failure model: any socket error, a bad frame or a request timeout marks the connection
//! closed and fails every waiting request with a retriable error. A closed connection is never
//! reused; [`crate::cluster::Cluster`] dials a new one on the next request (reconnect).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sluice_proto::kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use sluice_proto::kafka_protocol::protocol::{Request, StrBytes};
use sluice_proto::{decode_response, encode_request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;

use crate::config::{CONNECTION_IN_FLIGHT_MAX, RESPONSE_BYTES_MAX};
use crate::error::{ClientError, Result};

/// The apis and version ranges this client implements. The lower bounds are the oldest
/// versions whose fields the client's code fills; the upper bounds the newest it has been
/// tested with (they match what the Sluice broker serves).
pub const CLIENT_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 6),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::ElectLeaders, 1, 2),
    // v1 adds `allow_replication_factor_change` (KIP-860); the client always allows it.
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::AddRaftVoter, 0, 0),
    (ApiKey::RemoveRaftVoter, 0, 0),
    // SCRAM users (`admin::users`).
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    // ACLs (`admin::acls`). v1 is the first with pattern types (KIP-290); v2 is flexible.
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    // Consumer groups (`crate::group`). FindCoordinator v1 is the first with a key type,
    // JoinGroup v1 the first with a rebalance timeout, OffsetFetch v2 the first that fetches
    // every committed offset of a group (null topics).
    (ApiKey::FindCoordinator, 1, 4),
    (ApiKey::JoinGroup, 1, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 2, 8),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
];

/// ApiVersions version sent first (v3 carries the client's software name, KIP-511); a broker
/// that does not know it answers in v0 and the client asks again with v0.
const API_VERSIONS_VERSION: i16 = 3;
const API_VERSIONS_FALLBACK_VERSION: i16 = 0;
const UNSUPPORTED_VERSION_CODE: i16 = 35;
const FRAME_LENGTH_PREFIX_BYTES: usize = 4;
const CORRELATION_ID_BYTES: usize = 4;

type Waiter = oneshot::Sender<std::result::Result<Bytes, String>>;

#[derive(Debug, Default)]
struct Pending {
    /// Why the connection closed, once it has.
    closed: Option<String>,
    waiters: HashMap<i32, Waiter>,
}

impl Pending {
    fn close(&mut self, reason: String) {
        if self.closed.is_none() {
            self.closed = Some(reason.clone());
        }
        for (_, waiter) in self.waiters.drain() {
            let _ = waiter.send(Err(reason.clone()));
        }
    }
}

/// The write side of a connection: a TCP half or a TLS half.
struct Writer(Box<dyn AsyncWrite + Send + Unpin>);

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

/// A request written to its connection whose answer is still to come (see
/// [`Connection::write_request`]); holds one of the connection's in-flight slots.
#[derive(Debug)]
pub struct Written<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
    correlation_id: i32,
    version: i16,
    receiver: oneshot::Receiver<std::result::Result<Bytes, String>>,
}

/// A connection to one broker.
#[derive(Debug)]
pub struct Connection {
    address: String,
    client_id: StrBytes,
    request_timeout: Duration,
    writer: tokio::sync::Mutex<Writer>,
    pending: Arc<Mutex<Pending>>,
    next_correlation_id: AtomicI32,
    in_flight: Semaphore,
    /// Negotiated version per api key: the highest both sides speak.
    versions: HashMap<i16, i16>,
    reader: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Dials `address`, starts the reader and negotiates api versions, all within
    /// `connect_timeout`.
    pub async fn connect(
        address: &str,
        client_id: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
        sasl: Option<&crate::sasl::SaslCredentials>,
        tls: Option<&crate::tls::TlsSettings>,
    ) -> Result<Connection> {
        let io_error = |source| ClientError::Io { broker: address.to_string(), source };
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| ClientError::Timeout { what: format!("connecting to {address}"), after: connect_timeout })?
            .map_err(io_error)?;
        stream.set_nodelay(true).map_err(io_error)?;
        let (mut read_half, write_half): (Box<dyn AsyncRead + Send + Unpin>, Box<dyn AsyncWrite + Send + Unpin>) =
            match tls {
                None => {
                    let (read_half, write_half) = stream.into_split();
                    (Box::new(read_half), Box::new(write_half))
                }
                Some(settings) => {
                    let connector = tokio_rustls::TlsConnector::from(settings.client_config()?);
                    let handshake = connector.connect(crate::tls::server_name(address)?, stream);
                    let stream = tokio::time::timeout(connect_timeout, handshake)
                        .await
                        .map_err(|_| ClientError::Timeout {
                            what: format!("TLS handshake with {address}"),
                            after: connect_timeout,
                        })?
                        .map_err(|e| ClientError::Tls { reason: format!("handshake with {address}: {e}") })?;
                    let (read_half, write_half) = tokio::io::split(stream);
                    (Box::new(read_half), Box::new(write_half))
                }
            };
        let pending = Arc::new(Mutex::new(Pending::default()));
        let reader_pending = pending.clone();
        let reader_address = address.to_string();
        let reader = tokio::spawn(async move {
            let reason = read_answers(&mut read_half, &reader_pending).await;
            tracing::debug!(broker = %reader_address, %reason, "connection closed");
            lock(&reader_pending).close(reason);
        });
        let mut connection = Connection {
            address: address.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            request_timeout,
            writer: tokio::sync::Mutex::new(Writer(write_half)),
            pending,
            next_correlation_id: AtomicI32::new(0),
            in_flight: Semaphore::new(CONNECTION_IN_FLIGHT_MAX),
            versions: HashMap::new(),
            reader,
        };
        let negotiated = tokio::time::timeout(connect_timeout, connection.negotiate()).await.map_err(|_| {
            ClientError::Timeout { what: format!("api versions from {address}"), after: connect_timeout }
        })??;
        connection.versions = negotiated;
        if let Some(credentials) = sasl {
            tokio::time::timeout(connect_timeout, crate::sasl::authenticate(&connection, credentials)).await.map_err(
                |_| ClientError::Timeout { what: format!("SASL authentication to {address}"), after: connect_timeout },
            )??;
        }
        Ok(connection)
    }

    /// The broker address this connection was dialled to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether the connection has failed (it is then never used again).
    pub fn is_closed(&self) -> bool {
        lock(&self.pending).closed.is_some()
    }

    /// The negotiated version of `api_key`, if both sides speak one.
    pub fn version(&self, api_key: ApiKey) -> Option<i16> {
        self.versions.get(&(api_key as i16)).copied()
    }

    async fn negotiate(&self) -> Result<HashMap<i16, i16>> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut response: ApiVersionsResponse = self.call_at(API_VERSIONS_VERSION, &request, Duration::ZERO).await?;
        if response.error_code == UNSUPPORTED_VERSION_CODE {
            response = self.call_at(API_VERSIONS_FALLBACK_VERSION, &request, Duration::ZERO).await?;
        }
        ClientError::check(response.error_code, || format!("ApiVersions from {}", self.address))?;
        let mut versions = HashMap::new();
        for (api_key, client_min, client_max) in CLIENT_APIS {
            let Some(broker) = response.api_keys.iter().find(|entry| entry.api_key == *api_key as i16) else {
                continue;
            };
            let version = (*client_max).min(broker.max_version);
            if version >= *client_min && version >= broker.min_version {
                versions.insert(*api_key as i16, version);
            }
        }
        tracing::debug!(broker = %self.address, ?versions, "negotiated api versions");
        Ok(versions)
    }

    /// Sends `body` at the negotiated version and waits for the answer, within the request
    /// timeout plus `extra_wait` (a Fetch's `max_wait`).
    pub async fn call<R: Request>(&self, body: &R, extra_wait: Duration) -> Result<R::Response> {
        let version = self.version_for::<R>()?;
        self.call_at(version, body, extra_wait).await
    }

    /// Sends `body` without waiting for an answer: for Produce with acks=0, which the broker
    /// never answers. Returns once the bytes are written.
    pub async fn send_only<R: Request>(&self, body: &R) -> Result<()> {
        let version = self.version_for::<R>()?;
        let (_, frame) = self.frame(version, body)?;
        self.write(&frame, None).await
    }

    /// The negotiated version of `R`'s api: for requests whose fields differ by version, built
    /// for the version [`Connection::call`] will send. [`ClientError::UnsupportedApi`] if none.
    pub fn version_for<R: Request>(&self) -> Result<i16> {
        self.versions.get(&R::KEY).copied().ok_or_else(|| ClientError::UnsupportedApi {
            broker: self.address.clone(),
            api: ApiKey::try_from(R::KEY).map(|key| format!("{key:?}")).unwrap_or_else(|()| R::KEY.to_string()),
        })
    }

    fn frame<R: Request>(&self, version: i16, body: &R) -> Result<(i32, Bytes)> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        Ok((correlation_id, encode_request(&header, body)?))
    }

    pub(crate) async fn call_at<R: Request>(
        &self,
        version: i16,
        body: &R,
        extra_wait: Duration,
    ) -> Result<R::Response> {
        let written = self.write_request_at(version, body).await?;
        self.read_answer::<R>(written, extra_wait).await
    }

    /// The first half of [`Connection::call`]: writes `body` and returns once its bytes are
    /// on the socket, with what [`Connection::read_answer`] needs to wait for the answer. A
    /// caller that writes requests one after another this way sends them in that order (the
    /// producer relies on it for batches of one partition in flight together).
    pub async fn write_request<R: Request>(&self, body: &R) -> Result<Written<'_>> {
        let version = self.version_for::<R>()?;
        self.write_request_at(version, body).await
    }

    async fn write_request_at<R: Request>(&self, version: i16, body: &R) -> Result<Written<'_>> {
        let permit = self.in_flight.acquire().await.map_err(|_| ClientError::Closed { what: "connection" })?;
        let (correlation_id, frame) = self.frame(version, body)?;
        let (sender, receiver) = oneshot::channel();
        {
            let mut pending = lock(&self.pending);
            if let Some(reason) = &pending.closed {
                return Err(self.closed_error(reason));
            }
            pending.waiters.insert(correlation_id, sender);
        }
        self.write(&frame, Some(correlation_id)).await?;
        Ok(Written { _permit: permit, correlation_id, version, receiver })
    }

    /// The second half of [`Connection::call`]: waits for the answer to a request
    /// [`Connection::write_request`] wrote, within the request timeout plus `extra_wait`.
    pub async fn read_answer<R: Request>(&self, written: Written<'_>, extra_wait: Duration) -> Result<R::Response> {
        let Written { _permit, correlation_id, version, receiver } = written;
        let timeout = self.request_timeout + extra_wait;
        let payload = match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(Ok(payload))) => payload,
            Ok(Ok(Err(reason))) => return Err(self.closed_error(&reason)),
            Ok(Err(_)) => return Err(self.closed_error("reader stopped")),
            Err(_) => {
                // The answer can no longer be told apart from a later one: drop the connection.
                lock(&self.pending).close(format!("request {correlation_id} timed out"));
                let api = ApiKey::try_from(R::KEY).map(|key| format!("{key:?}")).unwrap_or_default();
                return Err(ClientError::Timeout {
                    what: format!("{api} request to {}", self.address),
                    after: timeout,
                });
            }
        };
        let api_key = ApiKey::try_from(R::KEY)
            .map_err(|()| ClientError::UnsupportedApi { broker: self.address.clone(), api: R::KEY.to_string() })?;
        let (header, response) = decode_response::<R::Response>(api_key, version, payload)?;
        if header.correlation_id != correlation_id {
            lock(&self.pending).close("correlation id mismatch".to_string());
            return Err(ClientError::UnexpectedResponse {
                reason: format!("correlation id {} for request {correlation_id}", header.correlation_id),
            });
        }
        Ok(response)
    }

    /// Writes one whole frame; `correlation_id` names the waiter of its answer, if one waits.
    /// Cancellation-safe: a caller that stops waiting before the frame is whole on the socket
    /// (a timeout around [`Connection::call`]) leaves no waiter behind, and if the frame was
    /// already being written the connection is closed (see [`UnfinishedWrite`]).
    async fn write(&self, frame: &[u8], correlation_id: Option<i32>) -> Result<()> {
        let mut unfinished = UnfinishedWrite { pending: &self.pending, correlation_id, writing: false };
        let mut writer = self.writer.lock().await;
        // A frame cut off before this one closed the connection: nothing may follow it.
        let closed = lock(&self.pending).closed.clone();
        if let Some(reason) = closed {
            return Err(self.closed_error(&reason));
        }
        unfinished.writing = true;
        // TLS keeps written bytes in its buffer until flushed; on TCP the flush does nothing.
        let written = tokio::time::timeout(self.request_timeout, async {
            writer.0.write_all(frame).await?;
            writer.0.flush().await
        })
        .await;
        let error = match written {
            Ok(Ok(())) => {
                unfinished.finished();
                return Ok(());
            }
            Ok(Err(error)) => error,
            Err(_) => std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out"),
        };
        lock(&self.pending).close(format!("write failed: {error}"));
        Err(ClientError::Io { broker: self.address.clone(), source: error })
    }

    fn closed_error(&self, reason: &str) -> ClientError {
        ClientError::Io {
            broker: self.address.clone(),
            source: std::io::Error::new(std::io::ErrorKind::ConnectionAborted, reason.to_string()),
        }
    }
}

/// A frame not yet whole on the socket. Dropped unfinished (the write failed, or the future
/// writing it was cancelled) it removes the waiter for the frame's answer, which will never
/// come; and once the frame's bytes had started to go out it closes the connection, since
/// the broker would read the next frame as the rest of this one. (Tokio's `write_all` is not
/// cancellation-safe: it may have written any part of the frame.)
struct UnfinishedWrite<'a> {
    pending: &'a Mutex<Pending>,
    correlation_id: Option<i32>,
    /// Whether bytes of the frame may be on the socket.
    writing: bool,
}

impl UnfinishedWrite<'_> {
    /// The frame is whole on the socket: nothing to undo.
    fn finished(mut self) {
        self.correlation_id = None;
        self.writing = false;
    }
}

impl Drop for UnfinishedWrite<'_> {
    fn drop(&mut self) {
        if self.correlation_id.is_none() && !self.writing {
            return;
        }
        let mut pending = lock(self.pending);
        if let Some(correlation_id) = self.correlation_id {
            pending.waiters.remove(&correlation_id);
        }
        if self.writing {
            pending.close("a request was cut off half written (its caller stopped waiting)".to_string());
        }
    }
}

/// Reads answer frames until the stream fails; returns why it stopped.
async fn read_answers(read_half: &mut (dyn AsyncRead + Send + Unpin), pending: &Mutex<Pending>) -> String {
    loop {
        let mut prefix = [0u8; FRAME_LENGTH_PREFIX_BYTES];
        if let Err(error) = read_half.read_exact(&mut prefix).await {
            return format!("read failed: {error}");
        }
        let length = i32::from_be_bytes(prefix);
        let Some(length) = usize::try_from(length).ok().filter(|length| *length <= RESPONSE_BYTES_MAX) else {
            return format!("bad response length {length} (limit {RESPONSE_BYTES_MAX} bytes)");
        };
        if length < CORRELATION_ID_BYTES {
            return format!("response of {length} bytes has no correlation id");
        }
        let mut payload = vec![0u8; length];
        if let Err(error) = read_half.read_exact(&mut payload).await {
            return format!("read failed: {error}");
        }
        let correlation_id = i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
        let waiter = lock(pending).waiters.remove(&correlation_id);
        match waiter {
            Some(waiter) => {
                let _ = waiter.send(Ok(Bytes::from(payload)));
            }
            None => return format!("answer with unknown correlation id {correlation_id}"),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::encode_response;
    use sluice_proto::kafka_protocol::messages::api_versions_response::ApiVersion;
    use sluice_proto::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use sluice_proto::kafka_protocol::messages::{MetadataRequest, TopicName};
    use tokio::net::TcpListener;

    /// A broker that answers ApiVersions (offering Metadata) and then never reads again, with
    /// the connection held open: a client's writes block once the socket buffers are full.
    async fn broker_that_stops_reading() -> (String, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut prefix = [0u8; FRAME_LENGTH_PREFIX_BYTES];
            socket.read_exact(&mut prefix).await.unwrap();
            let mut request = vec![0u8; usize::try_from(i32::from_be_bytes(prefix)).unwrap()];
            socket.read_exact(&mut request).await.unwrap();
            // Request header: api key (2 bytes), api version (2), correlation id (4).
            let version = i16::from_be_bytes([request[2], request[3]]);
            let correlation_id = i32::from_be_bytes([request[4], request[5], request[6], request[7]]);
            let metadata = ApiVersion::default().with_api_key(ApiKey::Metadata as i16).with_max_version(12);
            let answer = ApiVersionsResponse::default().with_api_keys(vec![metadata]);
            let frame = encode_response(ApiKey::ApiVersions, version, correlation_id, &answer).unwrap();
            socket.write_all(&frame).await.unwrap();
            std::future::pending::<()>().await;
        });
        (address, task)
    }

    /// A Metadata request of about 32 MiB: more than loopback's socket buffers hold.
    fn huge_request() -> MetadataRequest {
        let topics = (0..320_000)
            .map(|index| {
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(format!("{index:0>96}")))))
            })
            .collect();
        MetadataRequest::default().with_topics(Some(topics))
    }

    fn waiters(connection: &Connection) -> usize {
        lock(&connection.pending).waiters.len()
    }

    /// Goal: a caller that gives up on a request (a timeout around `call`, an aborted task)
    /// never leaves part of a frame followed by another frame on the stream, nor a waiter
    /// for an answer that will not come. Method: a broker that stops reading; a 32 MiB request
    /// blocks half written; a second request given up while waiting its turn to write leaves
    /// the connection usable and no waiter; the first, cancelled mid-write, closes the
    /// connection, so the next request fails at once instead of writing after half a frame.
    #[tokio::test]
    async fn a_request_given_up_half_written_closes_the_connection() {
        let (address, _broker) = broker_that_stops_reading().await;
        let connection = Arc::new(
            Connection::connect(&address, "cut", Duration::from_secs(5), Duration::from_secs(60), None, None)
                .await
                .unwrap(),
        );
        let writing = tokio::spawn({
            let connection = connection.clone();
            async move { connection.call(&huge_request(), Duration::ZERO).await }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while waiters(&connection) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "the huge request never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!writing.is_finished(), "the huge request should be blocked half written");

        let small = MetadataRequest::default();
        let queued = tokio::time::timeout(Duration::from_millis(200), connection.call(&small, Duration::ZERO));
        assert!(queued.await.is_err(), "the second request should wait for the first to be written");
        assert!(!connection.is_closed(), "giving up before writing leaves the connection usable");
        assert_eq!(waiters(&connection), 1, "only the request being written waits for an answer");

        writing.abort();
        assert!(writing.await.unwrap_err().is_cancelled());
        assert!(connection.is_closed(), "a frame cut off half written must close the connection");
        assert_eq!(waiters(&connection), 0);
        let next =
            tokio::time::timeout(Duration::from_secs(5), connection.call(&MetadataRequest::default(), Duration::ZERO))
                .await
                .expect("a closed connection answers at once");
        assert!(matches!(next, Err(ClientError::Io { .. })), "{next:?}");
    }
}
