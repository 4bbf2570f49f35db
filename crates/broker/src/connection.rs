//! One client connection: read frames, answer them in order, close on protocol errors.
//!
//! A connection is two halves joined by a bounded queue:
//!
//! ```text
//! socket ─▶ read_requests ─(queue: frame + permits)─▶ answer_requests ─▶ socket
//! ```
//!
//! - `read_requests` appends at most [`READ_CHUNK_BYTES`] per socket read and checks each frame's
//!   length prefix with the proto decoder (a bad one closes the connection before its payload is
//!   buffered). As soon as a frame's length is known it takes, before reading the payload: one of
//!   the connection's in-flight request slots, the payload size from the connection's
//!   queued-bytes budget, and the same from the broker-wide request-memory budget. When any of
//!   them is exhausted it stops reading, so a fast or hostile client meets TCP backpressure
//!   instead of growing our memory. Nothing arriving for the idle limit closes the connection.
//! - `answer_requests` handles requests in arrival order and writes their responses in that
//!   order — Kafka's per-connection ordering, which clients rely on to match responses and which
//!   keeps produce requests of one connection in order. Each request is handled after the one
//!   before it is answered, with one exception: once a produce request's batches are appended,
//!   its answer (which waits for their syncs and, with acks=all, the followers) is deferred,
//!   and the connection appends its next produce requests meanwhile, so that one
//!   group-commit fsync or one follower fetch covers several requests of one producer
//!   (`Outcome::Deferred`). Appends still happen one request after the other, in order; any
//!   other request waits until every answer before it is written. The requests waiting for
//!   their answers keep their permits, so the in-flight limits below bound them too. The
//!   permits are released when the response has been written.
//!
//! - Before decoding a request, `answer_requests` reserves the request's decoded-size limit
//!   from the broker-wide decoded-request budget (`DECODED_REQUEST_MEMORY_BYTES_MAX`); the
//!   decoder refuses a request that would build more (closing the connection), and the part it
//!   did not build goes back at once. A deferred produce answer keeps its share until it is
//!   written, so a connection that owes answers writes them before it waits for the budget.
//!
//! - After writing a response that carries a quota throttle time, `answer_requests` waits that
//!   long before taking the next request: Kafka's muting of a throttled channel (KIP-219). A
//!   throttled produce is not pipelined: nothing more is appended until its answer is written
//!   and the mute has run.
//!
//! A protocol error (bad length, truncated frame at end of stream, undecodable or unsupported
//! request) closes the connection with one log line; a clean end of stream after whole frames
//! lets the answers already owed be written first.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::stream::{FuturesOrdered, StreamExt};
use sluice_proto::frame::FRAME_LENGTH_PREFIX_BYTES;
use sluice_proto::kafka_protocol::messages::ApiKey;
use sluice_proto::{check_frame, FrameStatus, ProtoError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::config::{BrokerConfig, DECODED_REQUEST_MEMORY_BYTES_MAX, READ_CHUNK_BYTES};
use crate::dispatch::{Dispatcher, Outcome};
use crate::security::sasl::AUTHENTICATION_TIMEOUT_MS;
use crate::security::Session;

/// Why a connection was closed by the broker.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The byte stream broke the framing (negative or oversized length prefix).
    #[error(transparent)]
    Framing(#[from] ProtoError),
    /// The client closed its side in the middle of a frame.
    #[error("stream ended inside a frame ({buffered_bytes} bytes buffered)")]
    TruncatedFrame {
        /// Bytes of the incomplete frame.
        buffered_bytes: usize,
    },
    /// A request could not be answered (see [`Outcome::Close`]).
    #[error("{0}")]
    Request(String),
    /// Nothing arrived for the configured idle time.
    #[error("idle for {idle_ms} ms")]
    Idle {
        /// The idle limit in force.
        idle_ms: u64,
    },
    /// A SASL connection did not authenticate in time.
    #[error("not authenticated within {timeout_ms} ms")]
    Unauthenticated {
        /// The limit.
        timeout_ms: u64,
    },
    /// Reading or writing the socket failed (reset by peer, ...).
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// What every connection of a broker shares, and the limits it runs under.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionContext {
    pub(crate) dispatcher: Arc<Dispatcher>,
    /// The broker-wide request-memory budget (see `REQUEST_MEMORY_BYTES_MAX`), in bytes.
    pub(crate) request_memory: Arc<Semaphore>,
    /// The broker-wide decoded-request budget (see `DECODED_REQUEST_MEMORY_BYTES_MAX`), in bytes.
    decoded_memory: Arc<Semaphore>,
    request_bytes_max: usize,
    in_flight_requests_max: usize,
    queued_bytes_max: usize,
    idle_timeout: Duration,
}

impl ConnectionContext {
    pub(crate) fn new(config: &BrokerConfig, dispatcher: Arc<Dispatcher>) -> Self {
        let request_memory = Arc::new(Semaphore::new(config.request_memory_bytes_max));
        let decoded_memory = Arc::new(Semaphore::new(DECODED_REQUEST_MEMORY_BYTES_MAX));
        let metrics = dispatcher.metrics();
        metrics.watch_budget("request", Arc::clone(&request_memory), config.request_memory_bytes_max);
        metrics.watch_budget("decoded", Arc::clone(&decoded_memory), DECODED_REQUEST_MEMORY_BYTES_MAX);
        ConnectionContext {
            dispatcher,
            request_memory,
            decoded_memory,
            request_bytes_max: config.request_bytes_max,
            in_flight_requests_max: config.in_flight_requests_max,
            queued_bytes_max: config.connection_queued_bytes_max,
            idle_timeout: Duration::from_millis(config.connection_idle_ms_max),
        }
    }
}

/// The permits that account for one frame from its length prefix until its answer is written:
/// an in-flight slot and its payload bytes in the connection's and the broker's budgets.
#[derive(Debug)]
struct FramePermits {
    _slot: OwnedSemaphorePermit,
    _connection_bytes: OwnedSemaphorePermit,
    _broker_bytes: OwnedSemaphorePermit,
}

/// A frame read and not yet answered.
struct QueuedRequest {
    payload: Bytes,
    /// When its last byte was read (the start of its queue time).
    read_at: std::time::Instant,
    _permits: FramePermits,
}

/// Serves one connection until the client leaves, a protocol error, idleness, or shutdown.
/// `read_half` and `write_half` are the two directions of its stream (TCP, or TLS over TCP);
/// `session` says who it is.
pub(crate) async fn serve<R, W>(
    read_half: R,
    write_half: W,
    session: Session,
    context: ConnectionContext,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let peer = session.peer;
    // A SASL connection must authenticate within the limit; the flag turns when it has.
    let authenticated = session.authenticated_flag();
    let auth_deadline = tokio::time::sleep(Duration::from_millis(AUTHENTICATION_TIMEOUT_MS));
    let mut auth_pending = !authenticated.load(std::sync::atomic::Ordering::Acquire);
    let (queue_sender, queue_receiver) = mpsc::channel(context.in_flight_requests_max);
    let answering = answer_requests(
        queue_receiver,
        write_half,
        Arc::clone(&context.dispatcher),
        Arc::clone(&context.decoded_memory),
        session,
    );
    let reading = read_requests(read_half, queue_sender, context);
    tokio::pin!(reading, answering, auth_deadline);
    let mut reading_done = false;
    let result = loop {
        tokio::select! {
            read = &mut reading, if !reading_done => match read {
                // End of stream at a frame boundary: the sender is dropped, so `answering`
                // finishes once the queued requests are answered.
                Ok(()) => reading_done = true,
                Err(error) => break Err(error),
            },
            answered = &mut answering => break answered,
            () = &mut auth_deadline, if auth_pending => {
                if !authenticated.load(std::sync::atomic::Ordering::Acquire) {
                    break Err(ConnectionError::Unauthenticated { timeout_ms: AUTHENTICATION_TIMEOUT_MS });
                }
                auth_pending = false;
            }
            _ = shutdown.changed() => break Ok(()),
        }
    };
    // At debug, whatever the reason: a client that breaks the framing, idles or hangs up is
    // the client's business, and one line each at warn let a fuzzing or misconfigured client
    // flood the log (13,000 lines in one run, issue 18). The client sees the close.
    match result {
        Ok(()) => tracing::debug!(%peer, "connection closed"),
        Err(ConnectionError::Io(error)) => tracing::debug!(%peer, %error, "connection lost"),
        Err(error) => tracing::debug!(%peer, %error, "closing connection"),
    }
}

async fn read_requests(
    mut reader: impl AsyncRead + Unpin,
    queue: mpsc::Sender<QueuedRequest>,
    context: ConnectionContext,
) -> Result<(), ConnectionError> {
    let slots = Arc::new(Semaphore::new(context.in_flight_requests_max));
    let connection_bytes = Arc::new(Semaphore::new(context.queued_bytes_max));
    let mut buffer = BytesMut::with_capacity(READ_CHUNK_BYTES);
    // Permits already held for the (incomplete) frame at the front of `buffer`.
    let mut front_frame: Option<FramePermits> = None;
    loop {
        loop {
            let status = check_frame(&buffer, context.request_bytes_max)?;
            let payload_bytes = match status {
                FrameStatus::Complete { payload_bytes } => payload_bytes,
                FrameStatus::Incomplete { frame_bytes: Some(frame_bytes) } => frame_bytes - FRAME_LENGTH_PREFIX_BYTES,
                FrameStatus::Incomplete { frame_bytes: None } => break,
            };
            // Charged as soon as the length is known, before the payload is read: waiting here
            // stops reads from this socket.
            let permits = match front_frame.take() {
                Some(permits) => permits,
                None => {
                    let Some(permits) =
                        acquire_frame_permits(&slots, &connection_bytes, &context.request_memory, payload_bytes).await
                    else {
                        return Ok(());
                    };
                    permits
                }
            };
            if !matches!(status, FrameStatus::Complete { .. }) {
                front_frame = Some(permits);
                break;
            }
            let payload = split_payload(&mut buffer, payload_bytes);
            if queue
                .send(QueuedRequest { payload, read_at: std::time::Instant::now(), _permits: permits })
                .await
                .is_err()
            {
                return Ok(()); // the answering side has stopped; `serve` reports why
            }
        }
        // Only an incomplete frame is buffered now (< 4 + request_bytes_max bytes), so after
        // this read the buffer is below READ_BUFFER_BYTES_MAX.
        // Reserve first: an exhausted BytesMut would otherwise offer only 64 bytes per read.
        buffer.reserve(READ_CHUNK_BYTES);
        let read =
            tokio::time::timeout(context.idle_timeout, reader.read_buf(&mut (&mut buffer).limit(READ_CHUNK_BYTES)))
                .await
                .map_err(|_| ConnectionError::Idle { idle_ms: context.idle_timeout.as_millis() as u64 })??;
        debug_assert!(buffer.len() < FRAME_LENGTH_PREFIX_BYTES + context.request_bytes_max + READ_CHUNK_BYTES);
        if read == 0 {
            return if buffer.is_empty() {
                Ok(())
            } else {
                Err(ConnectionError::TruncatedFrame { buffered_bytes: buffer.len() })
            };
        }
    }
}

/// Takes a slot and `payload_bytes` from both byte budgets. `None` only if a semaphore was
/// closed, which nothing does (they live as long as the connection or the server).
async fn acquire_frame_permits(
    slots: &Arc<Semaphore>,
    connection_bytes: &Arc<Semaphore>,
    broker_bytes: &Arc<Semaphore>,
    payload_bytes: usize,
) -> Option<FramePermits> {
    // payload_bytes <= request_bytes_max <= i32::MAX (BrokerConfig::validate).
    let bytes = u32::try_from(payload_bytes).ok()?;
    let slot = Arc::clone(slots).acquire_owned().await.ok()?;
    let connection = Arc::clone(connection_bytes).acquire_many_owned(bytes).await.ok()?;
    let broker = Arc::clone(broker_bytes).acquire_many_owned(bytes).await.ok()?;
    Some(FramePermits { _slot: slot, _connection_bytes: connection, _broker_bytes: broker })
}

fn split_payload(buffer: &mut BytesMut, payload_bytes: usize) -> Bytes {
    buffer.advance(FRAME_LENGTH_PREFIX_BYTES);
    buffer.split_to(payload_bytes).freeze()
}

/// A request dispatched whose answer is not written yet: its outcome (ready, or a produce's
/// deferred answer), the request (whose permits go back once the answer is written) and how
/// long the connection then mutes.
type Answer = std::pin::Pin<Box<dyn std::future::Future<Output = (Outcome, QueuedRequest, Duration)> + Send>>;

/// A request's api key: its payload's first two bytes.
fn api_key_of(request: &QueuedRequest) -> Option<i16> {
    request.payload.get(..2).map(|key| i16::from_be_bytes([key[0], key[1]]))
}

async fn answer_requests(
    mut queue: mpsc::Receiver<QueuedRequest>,
    mut writer: impl AsyncWrite + Unpin,
    dispatcher: Arc<Dispatcher>,
    decoded_memory: Arc<Semaphore>,
    mut session: Session,
) -> Result<(), ConnectionError> {
    // Answers owed, in request order: only produce requests' answers wait here while later
    // requests are dispatched (see `Outcome::Deferred`); each is written as soon as it and
    // every answer before it are ready.
    let mut owed: FuturesOrdered<Answer> = FuturesOrdered::new();
    let mut open = true;
    while open || !owed.is_empty() {
        tokio::select! {
            // Answers first: writing one gives its permits back, which lets more requests in.
            biased;
            Some((outcome, request, throttle)) = owed.next(), if !owed.is_empty() => {
                write_answer(&mut writer, &dispatcher, outcome, request, throttle).await?;
            }
            next = queue.recv(), if open => {
                let Some(request) = next else {
                    open = false;
                    continue;
                };
                // Any request but a produce waits for the answers owed before it: it is
                // handled after the earlier requests are answered, as without deferral.
                if api_key_of(&request) != Some(ApiKey::Produce as i16) {
                    write_owed(&mut owed, &mut writer, &dispatcher).await?;
                }
                // The decoded form's limit is reserved before decoding; dispatch gives back
                // what the decoder did not build, and the rest when the request has been
                // handled. Never waited for while answers are owed: they hold shares of the
                // same budget, which only writing them gives back (a large request queued for
                // the budget would otherwise wait for itself, or hold up every connection).
                let limit = sluice_proto::guard::decoded_bytes_max_for(request.payload.len())
                    .min(DECODED_REQUEST_MEMORY_BYTES_MAX) as u32;
                let mut decoded = match Arc::clone(&decoded_memory).try_acquire_many_owned(limit) {
                    Ok(permit) => permit,
                    Err(TryAcquireError::Closed) => return Ok(()), // never closed
                    Err(TryAcquireError::NoPermits) => {
                        write_owed(&mut owed, &mut writer, &dispatcher).await?;
                        let Ok(permit) = Arc::clone(&decoded_memory).acquire_many_owned(limit).await else {
                            return Ok(());
                        };
                        permit
                    }
                };
                let dispatched =
                    dispatcher.dispatch(request.payload.clone(), &mut session, &mut decoded, request.read_at).await;
                let throttle = dispatched.throttle;
                match dispatched.outcome {
                    // The deferred answer keeps the decoded request: its budget share too.
                    Outcome::Deferred(answer) => {
                        owed.push_back(Box::pin(async move {
                            let outcome = answer.await;
                            drop(decoded);
                            (outcome, request, throttle)
                        }));
                        // KIP-219: a client over its quota appends nothing more until this
                        // answer is written and its connection has been muted for the throttle.
                        if !throttle.is_zero() {
                            write_owed(&mut owed, &mut writer, &dispatcher).await?;
                        }
                    }
                    // Answered at once (any request but an appended produce: a refused or
                    // acks=0 produce among them): after the answers owed before it, and before
                    // anything else is read, since it may close the connection.
                    outcome => {
                        drop(decoded);
                        write_owed(&mut owed, &mut writer, &dispatcher).await?;
                        write_answer(&mut writer, &dispatcher, outcome, request, throttle).await?;
                    }
                }
            }
        }
    }
    writer.shutdown().await?;
    Ok(())
}

/// Writes every answer owed, in order, as each becomes ready.
async fn write_owed(
    owed: &mut FuturesOrdered<Answer>,
    writer: &mut (impl AsyncWrite + Unpin),
    dispatcher: &Dispatcher,
) -> Result<(), ConnectionError> {
    while let Some((outcome, request, throttle)) = owed.next().await {
        write_answer(writer, dispatcher, outcome, request, throttle).await?;
    }
    Ok(())
}

/// Writes one request's answer, gives its permits back, and mutes the connection for its
/// throttle. An outcome that closes the connection returns the error that says why.
async fn write_answer(
    writer: &mut (impl AsyncWrite + Unpin),
    dispatcher: &Dispatcher,
    outcome: Outcome,
    request: QueuedRequest,
    throttle: Duration,
) -> Result<(), ConnectionError> {
    let sending = std::time::Instant::now();
    match outcome {
        // A TLS stream may keep the tail of a response in its buffer until flushed (TCP's
        // flush does nothing).
        Outcome::Respond(frame) => {
            writer.write_all(&frame).await?;
            writer.flush().await?;
        }
        Outcome::RespondReserved(frame, reservation) => {
            writer.write_all(&frame).await?;
            writer.flush().await?;
            drop(reservation);
        }
        Outcome::RespondAndClose(frame, reason) => {
            writer.write_all(&frame).await?;
            writer.flush().await?;
            let _ = writer.shutdown().await;
            return Err(ConnectionError::Request(reason));
        }
        Outcome::NoResponse => {}
        Outcome::Close(reason) => return Err(ConnectionError::Request(reason)),
        Outcome::Deferred(_) => {
            return Err(ConnectionError::Request("a deferred answer was not awaited (a bug)".to_string()))
        }
    }
    // The api key is the payload's first two bytes (dispatch checked they are there).
    if let Some(key) = api_key_of(&request) {
        dispatcher.metrics().response_sent(key, sending.elapsed());
    }
    // The permits go back only now that the response is on its way.
    drop(request);
    // KIP-219: a client over its quota got its response at once, with the throttle time;
    // now its connection is muted for that long (requests keep queueing up to the in-flight
    // limits, then TCP pushes back).
    if !throttle.is_zero() {
        tokio::time::sleep(throttle).await;
    }
    Ok(())
}
