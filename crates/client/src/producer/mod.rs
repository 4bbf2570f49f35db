//! The producer: records in, batches out, delivery results back.
//!
//! Follow a record: [`Producer::send`] picks the partition ([`partitioner`]), waits for buffer
//! memory (backpressure: `send` blocks while `buffer_memory_bytes` are taken by undelivered
//! records), and encodes the record straight into its partition's open batch in the
//! [`accumulator`]. The [`sender`] task seals batches when they are full, their `linger` has
//! passed or a flush asks, stamps idempotence sequence numbers, groups batches by leader into
//! Produce requests, and settles each batch once; each record's [`Delivery`] reads its
//! partition and offset from its batch's outcome. Per record there is no channel, no task
//! wake-up and no allocation of the producer's own: the costs are per batch.
//!
//! Ordering: up to `max_in_flight` batches of a partition are in flight, each in its own
//! Produce request on the leader's connection, which the broker answers in order; a batch that
//! fails with a retriable error goes back into its partition's queue ahead of every later
//! batch, with the same sequence numbers. With idempotence (the default) records of a
//! partition are therefore appended in `send` order even across retries — the broker refuses a
//! later batch that overtakes a failed one, and the sender resends it after — and the broker
//! drops a resent batch it already has: a lost answer or dropped connection neither reorders
//! nor duplicates records. Without idempotence (acks 0 or 1) a resent batch may land after
//! later ones, as in Kafka: set `max_in_flight` to 1 for strict order. `max_in_flight` also
//! bounds the requests outstanding per broker (across partitions).
//!
//! Known limits: no transactions; if a batch fails for good (delivery timeout, a
//! non-retriable error) with idempotence on, later batches of that partition may be refused
//! with OUT_OF_ORDER_SEQUENCE_NUMBER until the producer is recreated (Kafka bumps the epoch;
//! this producer does not yet).

mod accumulator;
pub mod partitioner;
mod sender;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use sluice_proto::kafka_protocol::messages::InitProducerIdRequest;
use sluice_proto::records::Compression;

use crate::backoff::Backoff;
use crate::cluster::Cluster;
use crate::error::{ClientError, Result};
use accumulator::Accumulator;

/// Bytes a record costs beyond its key, value and header bytes, for batch and memory
/// accounting: the record's varint fields (length, attributes, deltas, key/value lengths,
/// header count), rounded up. An estimate: batch sizes are targets, not exact bounds.
pub const RECORD_OVERHEAD_BYTES: usize = 24;
/// Bytes of a batch header plus a Produce request's per-partition framing, for request sizing.
pub const BATCH_OVERHEAD_BYTES: usize = 128;
/// Default [`ProducerConfig::batch_size_max_bytes`]: librdkafka's `batch.size`.
pub const BATCH_SIZE_MAX_BYTES_DEFAULT: usize = 1_000_000;
/// Most batches of a partition an idempotent producer keeps in flight (`max_in_flight`), as in
/// Kafka: a broker remembers the last five batches of each producer to recognise a resend.
pub const IDEMPOTENT_IN_FLIGHT_MAX: usize = 5;
/// Largest `buffer_memory_bytes`: the memory semaphore counts in `u32` permits per record.
pub const BUFFER_MEMORY_BYTES_MAX: usize = u32::MAX as usize;

/// Which replicas must have a record before the broker acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// acks=0: no answer; delivery results carry offset -1 and only say the bytes were written
    /// to the socket.
    None,
    /// acks=1: the leader appended it.
    Leader,
    /// acks=all (-1): every in-sync replica has it.
    All,
}

impl Acks {
    /// The wire value.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Producer settings. Defaults follow Kafka's Java client (named per field).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `acks`, default all.
    pub acks: Acks,
    /// `enable.idempotence`, default true; requires acks=all (as in Kafka).
    pub idempotence: bool,
    /// `compression.type`, default none.
    pub compression: Compression,
    /// `linger.ms`: how long an open batch waits for more records; default 5 ms.
    pub linger: Duration,
    /// `batch.size`: a batch is sealed when adding a record would pass this; default 16 KiB.
    pub batch_size_bytes: usize,
    /// How far a batch may grow past `batch_size_bytes` while its partition already has a
    /// sealed batch waiting to be sent (every in-flight slot taken, or the sender busy): such a
    /// batch could not leave earlier anyway, so records arriving meanwhile join it instead of
    /// queueing as more small batches (franz-go's `ProducerBatchMaxBytes`; librdkafka's
    /// `batch.size`). Under load batches grow to what one round trip gathers; with the sender
    /// idle they stay at `batch_size_bytes`, so latency is unchanged. Never below
    /// `batch_size_bytes`; capped by `request_bytes_max` and by the topic's
    /// `max.message.bytes` (less 1/32 for compression's framing), which the producer reads with
    /// DescribeConfigs the first time it sends to the topic: until it knows it, or if it cannot
    /// read it, that topic's batches do not grow, so a grown batch is not refused where a
    /// `batch.size` one would be taken. Set it equal to `batch_size_bytes` to turn growth off.
    /// Default 1,000,000 bytes.
    pub batch_size_max_bytes: usize,
    /// `buffer.memory`: bytes of undelivered records before `send` waits; default 32 MiB.
    pub buffer_memory_bytes: usize,
    /// `max.in.flight.requests.per.connection`: Produce requests outstanding per broker, and
    /// batches of one partition in flight; default 5 (the most Kafka allows with idempotence,
    /// and the number of batches a broker remembers per producer to drop resends). Without
    /// idempotence, more than 1 lets a retried batch land after later ones.
    pub max_in_flight: usize,
    /// `max.request.size`: largest Produce request (and record); default 1 MiB.
    pub request_bytes_max: usize,
    /// `delivery.timeout.ms`: a record not acknowledged this long after `send` fails; default
    /// 120 s.
    pub delivery_timeout: Duration,
    /// `retries`: resends of a batch before it fails (the delivery timeout also bounds them).
    pub retries_max: u32,
    /// `retry.backoff.ms` / `retry.backoff.max.ms`: wait between resends of a batch.
    pub backoff: Backoff,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            idempotence: true,
            compression: Compression::None,
            linger: Duration::from_millis(5),
            batch_size_bytes: 16 * 1024,
            batch_size_max_bytes: BATCH_SIZE_MAX_BYTES_DEFAULT,
            buffer_memory_bytes: 32 * 1024 * 1024,
            max_in_flight: 5,
            request_bytes_max: 1024 * 1024,
            delivery_timeout: Duration::from_secs(120),
            retries_max: u32::MAX,
            backoff: Backoff::default(),
        }
    }
}

impl ProducerConfig {
    /// The bytes an open batch may reach while its partition has a sealed batch waiting (see
    /// [`ProducerConfig::batch_size_max_bytes`]).
    pub(crate) fn batch_grow_limit_bytes(&self) -> usize {
        self.batch_size_max_bytes
            .min(self.request_bytes_max.saturating_sub(BATCH_OVERHEAD_BYTES))
            .max(self.batch_size_bytes)
    }

    fn backoff_delay(&self, attempt: u32) -> Duration {
        self.backoff.delay(attempt)
    }

    fn validate(&self) -> Result<()> {
        let invalid = |reason: &str| Err(ClientError::InvalidConfig { reason: reason.to_string() });
        if self.idempotence && self.acks != Acks::All {
            return invalid("idempotence requires acks=all (set idempotence to false for acks 0 or 1)");
        }
        if self.buffer_memory_bytes == 0 || self.buffer_memory_bytes > BUFFER_MEMORY_BYTES_MAX {
            return invalid("buffer_memory_bytes must be between 1 and u32::MAX");
        }
        if self.batch_size_bytes == 0 || self.request_bytes_max < BATCH_OVERHEAD_BYTES * 2 {
            return invalid("batch_size_bytes and request_bytes_max must be positive (request at least 256 bytes)");
        }
        if self.max_in_flight == 0 {
            return invalid("max_in_flight must be at least 1");
        }
        if self.idempotence && self.max_in_flight > IDEMPOTENT_IN_FLIGHT_MAX {
            return invalid("idempotence allows at most 5 batches in flight (max_in_flight)");
        }
        Ok(())
    }
}

/// A record to send.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    /// Topic.
    pub topic: String,
    /// Explicit partition; otherwise chosen from the key (murmur2) or sticky for null keys.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<Bytes>,
    /// Value (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// Headers in order; keys must be distinct (see `sluice_proto::records::ProducedRecord`).
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time in ms since the Unix epoch; now when `None`.
    pub timestamp_ms: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and no key.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord { topic: topic.into(), value: Some(value.into()), ..ProducerRecord::default() }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets an explicit partition.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push((key.into(), Some(value.into())));
        self
    }

    /// Sets the timestamp.
    pub fn with_timestamp_ms(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// Bytes this record counts for in batches and buffer memory.
    pub fn estimated_bytes(&self) -> usize {
        let field = |bytes: &Option<Bytes>| bytes.as_ref().map_or(0, Bytes::len);
        RECORD_OVERHEAD_BYTES
            + field(&self.key)
            + field(&self.value)
            + self.headers.iter().map(|(key, value)| key.len() + field(value) + 2).sum::<usize>()
    }
}

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset, or -1 with acks=0.
    pub offset: i64,
    /// The record's timestamp (the broker's append time on LogAppendTime topics).
    pub timestamp_ms: i64,
}

/// The delivery result of one record: await it after `send`, or look at it later with
/// [`Delivery::try_result`]. Dropping it does not cancel anything: the record is still sent,
/// and a batch that fails for good is logged (WARN "batch failed").
///
/// Cheap: a delivery shares its batch's outcome (one allocation per batch, not per record) and
/// reads its own offset from it.
#[derive(Debug)]
pub struct Delivery {
    outcome: Arc<accumulator::BatchOutcome>,
    /// The record's place in its batch.
    index: u32,
    /// The record's create time.
    timestamp_ms: i64,
    /// Where this delivery's waker is registered with the outcome, once polled.
    slot: Option<usize>,
}

impl Delivery {
    fn new(outcome: Arc<accumulator::BatchOutcome>, index: u32, timestamp_ms: i64) -> Delivery {
        Delivery { outcome, index, timestamp_ms, slot: None }
    }

    fn metadata(&self, result: accumulator::BatchResult) -> Result<RecordMetadata> {
        let (base_offset, log_append_time_ms) = result.map_err(ClientError::Delivery)?;
        Ok(RecordMetadata {
            topic: self.outcome.topic.clone(),
            partition: self.outcome.partition,
            offset: if base_offset < 0 { -1 } else { base_offset + i64::from(self.index) },
            timestamp_ms: if log_append_time_ms >= 0 { log_append_time_ms } else { self.timestamp_ms },
        })
    }

    /// The result, if the broker has answered for this record (or the producer gave up on
    /// it), without waiting.
    pub fn try_result(&self) -> Option<Result<RecordMetadata>> {
        self.outcome.result().map(|result| self.metadata(result))
    }

    /// When the producer settled this record: received the broker's answer for its batch, or
    /// gave up on it. `None` while it is pending. (Benchmarks read acknowledgement latency
    /// from it without waking a task per record.)
    pub fn settled_at(&self) -> Option<std::time::Instant> {
        self.outcome.settled_at()
    }
}

impl Future for Delivery {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.outcome.poll_settled(context.waker(), &mut this.slot) {
            Some(result) => Poll::Ready(this.metadata(result)),
            None => Poll::Pending,
        }
    }
}

/// An asynchronous, batching, idempotent producer. Cheap to clone; the background sender stops
/// when the last clone is dropped (call [`Producer::flush`] first to deliver what is buffered).
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<ProducerInner>,
}

#[derive(Debug)]
struct ProducerInner {
    cluster: Cluster,
    accumulator: Arc<Accumulator>,
    sender: tokio::task::JoinHandle<()>,
}

impl Drop for ProducerInner {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

impl Producer {
    /// Creates a producer on `cluster`; with idempotence, obtains a producer id first.
    pub async fn new(cluster: Cluster, config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let identity = if config.idempotence {
            let response = cluster
                .call_any(&InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(-1))
                .await?;
            ClientError::check(response.error_code, || "InitProducerId".to_string())?;
            tracing::debug!(producer_id = response.producer_id.0, epoch = response.producer_epoch, "producer id");
            Some((response.producer_id.0, response.producer_epoch))
        } else {
            None
        };
        let accumulator = Arc::new(Accumulator::new(config, identity));
        let sender = tokio::spawn(sender::run(cluster.clone(), accumulator.clone()));
        Ok(Producer { inner: Arc::new(ProducerInner { cluster, accumulator, sender }) })
    }

    /// Queues `record`, waiting while the buffer is full; the returned [`Delivery`] resolves
    /// when the broker has acknowledged it (or the producer gave up). The record is encoded
    /// into its batch here; a record the batch format refuses (a repeated header key) is an
    /// error at once.
    pub async fn send(&self, record: ProducerRecord) -> Result<Delivery> {
        let accumulator = &self.inner.accumulator;
        let record_bytes = record.estimated_bytes();
        accumulator.check_record_size(record_bytes)?;
        let partition_count = self.inner.cluster.partition_count(&record.topic).await?;
        let partition = match (record.partition, &record.key) {
            (Some(partition), _) => {
                if partition < 0 || partition >= partition_count {
                    return Err(ClientError::UnknownPartition { topic: record.topic, partition, partition_count });
                }
                Some(partition)
            }
            (None, Some(key)) => Some(partitioner::partition_for_key(key, partition_count)),
            (None, None) => None,
        };
        accumulator.reserve_memory(record_bytes).await?;
        accumulator.append(record, partition, partition_count, record_bytes)
    }

    /// Sends everything buffered now (ignoring linger) and waits until every record sent
    /// before this call has its delivery result.
    pub async fn flush(&self) -> Result<()> {
        self.inner.accumulator.flush().await
    }

    /// Bytes of records sent but not yet delivered (what `buffer_memory_bytes` bounds).
    pub fn buffered_bytes(&self) -> usize {
        self.inner.accumulator.buffered_bytes()
    }

    /// Records sent but not yet delivered.
    pub fn outstanding_records(&self) -> usize {
        self.inner.accumulator.outstanding_records()
    }
}
