//! One client connection: read frames, answer them in order, close on protocol errors.
//!
//! A connection is two halves joined by a bounded queue:
//!
//! ```text
//! socket ─▶ read_requests ─(queue: frame + permits)─▶ answer_requests ─▶ socket
//! ```
//!
//! - `read_requests` appends at most [`READ_CHUNK_BYTES`] per socket read, splits complete
//!   frames with the proto decoder (refusing a bad length prefix before buffering its payload),
//!   and takes two permits per frame before queueing it: one of the connection's in-flight
//!   request slots and the frame's size in the connection's queued-bytes budget. When either is
//!   exhausted it stops reading, so a fast client meets TCP backpressure instead of growing
//!   our memory.
//! - `answer_requests` handles one request at a time, in arrival order, and writes each response
//!   before taking the next request — Kafka's per-connection ordering, which clients rely on to
//!   match responses and which keeps produce requests of one connection in order. The permits
//!   are released when the response has been written.
//!
//! A protocol error (bad length, truncated frame at end of stream, undecodable or unsupported
//! request) closes the connection with one log line; a clean end of stream after whole frames
//! lets the answers already owed be written first.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use sluice_proto::{check_frame, FrameStatus, ProtoError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::config::{BrokerConfig, READ_CHUNK_BYTES};
use crate::dispatch::{Dispatcher, Outcome};

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
    /// Reading or writing the socket failed (reset by peer, ...).
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Limits one connection runs under (from [`BrokerConfig`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    request_bytes_max: usize,
    in_flight_requests_max: usize,
    queued_bytes_max: usize,
}

impl From<&BrokerConfig> for ConnectionLimits {
    fn from(config: &BrokerConfig) -> Self {
        ConnectionLimits {
            request_bytes_max: config.request_bytes_max,
            in_flight_requests_max: config.in_flight_requests_max,
            queued_bytes_max: config.connection_queued_bytes_max,
        }
    }
}

/// A frame read and not yet answered, with the permits that account for it.
struct QueuedRequest {
    payload: Bytes,
    _slot: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

/// Serves one connection until the client leaves, a protocol error, or shutdown.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    dispatcher: Arc<Dispatcher>,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let (read_half, write_half) = stream.into_split();
    let (queue_sender, queue_receiver) = mpsc::channel(limits.in_flight_requests_max);
    let reading = read_requests(read_half, queue_sender, limits);
    let answering = answer_requests(queue_receiver, write_half, dispatcher);
    tokio::pin!(reading, answering);
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
            _ = shutdown.changed() => break Ok(()),
        }
    };
    match result {
        Ok(()) => tracing::debug!(%peer, "connection closed"),
        Err(ConnectionError::Io(error)) => tracing::debug!(%peer, %error, "connection lost"),
        Err(error) => tracing::warn!(%peer, %error, "closing connection"),
    }
}

async fn read_requests(
    mut reader: OwnedReadHalf,
    queue: mpsc::Sender<QueuedRequest>,
    limits: ConnectionLimits,
) -> Result<(), ConnectionError> {
    let slots = Arc::new(Semaphore::new(limits.in_flight_requests_max));
    let budget = Arc::new(Semaphore::new(limits.queued_bytes_max));
    let mut buffer = BytesMut::with_capacity(READ_CHUNK_BYTES);
    loop {
        while let FrameStatus::Complete { payload_bytes } = check_frame(&buffer, limits.request_bytes_max)? {
            // Permits first, then split: the frame is already buffered, and waiting here is what
            // stops further reads. Both semaphores live as long as this function; neither is
            // closed, so acquisition only fails if that invariant breaks.
            let slot = Arc::clone(&slots).acquire_owned().await;
            let bytes_permit = Arc::clone(&budget).acquire_many_owned(payload_bytes as u32).await;
            let (Ok(slot), Ok(bytes_permit)) = (slot, bytes_permit) else {
                return Ok(());
            };
            let payload = split_payload(&mut buffer, payload_bytes);
            let request = QueuedRequest { payload, _slot: slot, _bytes: bytes_permit };
            if queue.send(request).await.is_err() {
                return Ok(()); // the answering side has stopped; `serve` reports why
            }
        }
        // Only an incomplete frame is buffered now (< 4 + request_bytes_max bytes), so after
        // this read the buffer is below READ_BUFFER_BYTES_MAX.
        // Reserve first: an exhausted BytesMut would otherwise offer only 64 bytes per read.
        buffer.reserve(READ_CHUNK_BYTES);
        let read = reader.read_buf(&mut (&mut buffer).limit(READ_CHUNK_BYTES)).await?;
        if read == 0 {
            return if buffer.is_empty() {
                Ok(())
            } else {
                Err(ConnectionError::TruncatedFrame { buffered_bytes: buffer.len() })
            };
        }
    }
}

fn split_payload(buffer: &mut BytesMut, payload_bytes: usize) -> Bytes {
    buffer.advance(sluice_proto::frame::FRAME_LENGTH_PREFIX_BYTES);
    buffer.split_to(payload_bytes).freeze()
}

async fn answer_requests(
    mut queue: mpsc::Receiver<QueuedRequest>,
    mut writer: OwnedWriteHalf,
    dispatcher: Arc<Dispatcher>,
) -> Result<(), ConnectionError> {
    while let Some(request) = queue.recv().await {
        match dispatcher.dispatch(request.payload.clone()).await {
            Outcome::Respond(frame) => writer.write_all(&frame).await?,
            Outcome::NoResponse => {}
            Outcome::Close(reason) => return Err(ConnectionError::Request(reason)),
        }
        // The permits go back only now that the response is on its way.
        drop(request);
    }
    writer.shutdown().await?;
    Ok(())
}
