//! Per-partition batches between `send` and the sender task, and the buffer-memory budget.
//!
//! Each partition has at most one *open* batch (taking records) and a FIFO of *sealed*
//! batches (closed, with sequence numbers, waiting to be sent or re-sent). Sequence numbers are
//! stamped when a batch is sealed, in partition order. Up to `max_in_flight` batches of a
//! partition are in flight at once, each in its own request, sent in order on the leader's one
//! connection (which the broker answers in order); a batch that fails retriably goes back into
//! its queue in seal order, ahead of every later batch, so its resend precedes theirs. With
//! idempotence the broker refuses a later batch that arrives after a failed earlier one
//! (OUT_OF_ORDER_SEQUENCE_NUMBER), and the sender resends it after the earlier one
//! ([`Accumulator::has_earlier_batch`]): a partition's records are appended in `send` order.
//! Without idempotence a retried batch may land after later ones, as in Kafka; set
//! `max_in_flight` to 1 for strict order there.
//!
//! The hot path is per batch, not per record: `append` encodes the record straight into its
//! batch's buffer ([`BatchBuilder`]) and hands back a [`Delivery`] that shares the batch's
//! [`BatchOutcome`]; the sender settles that outcome once per batch, and each delivery reads
//! its offset from it (base offset + its index). A record costs no channel, no allocation of
//! its own and no wake-up; the sender is woken only when a batch opens or seals.
//!
//! Memory: `send` takes `estimated_bytes` permits from a semaphore of `buffer_memory_bytes`
//! before appending; they come back when the record's batch is settled (success or failure).
//! So the bytes held for undelivered records never exceed the budget, whatever the broker does.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use sluice_proto::records::BatchBuilder;
use tokio::sync::{Notify, Semaphore};

use super::{Delivery, ProducerConfig, ProducerRecord, BATCH_OVERHEAD_BYTES};
use crate::error::{ClientError, Result};

/// How a batch ended: the base offset and log-append time from the broker, or why it failed.
pub(super) type BatchResult = std::result::Result<(i64, i64), Arc<ClientError>>;

/// What every [`Delivery`] of one batch waits on: settled once, read by each record.
#[derive(Debug)]
pub(super) struct BatchOutcome {
    pub topic: String,
    pub partition: i32,
    state: Mutex<OutcomeState>,
}

#[derive(Debug, Default)]
struct OutcomeState {
    settled: Option<(BatchResult, Instant)>,
    waiting: Vec<std::task::Waker>,
}

impl BatchOutcome {
    fn new(topic: &str, partition: i32) -> Arc<BatchOutcome> {
        Arc::new(BatchOutcome { topic: topic.to_string(), partition, state: Mutex::new(OutcomeState::default()) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, OutcomeState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The result, if settled.
    pub fn result(&self) -> Option<BatchResult> {
        self.state().settled.as_ref().map(|(result, _)| result.clone())
    }

    /// When it was settled, if it was (read per record by benchmarks: copies no result).
    pub fn settled_at(&self) -> Option<Instant> {
        self.state().settled.as_ref().map(|(_, at)| *at)
    }

    /// The result if settled; otherwise `waker` is woken when it is. `slot` remembers where
    /// this caller's waker is, so polling again from the same task does not add another.
    pub fn poll_settled(&self, waker: &std::task::Waker, slot: &mut Option<usize>) -> Option<BatchResult> {
        let mut state = self.state();
        if let Some((result, _)) = &state.settled {
            return Some(result.clone());
        }
        match slot.and_then(|index| state.waiting.get_mut(index)) {
            Some(registered) if registered.will_wake(waker) => {}
            Some(registered) => registered.clone_from(waker),
            None => {
                *slot = Some(state.waiting.len());
                state.waiting.push(waker.clone());
            }
        }
        None
    }

    /// Settles the outcome (the first call wins) and wakes every waiting delivery.
    fn settle(&self, result: BatchResult) {
        let mut state = self.state();
        if state.settled.is_some() {
            return;
        }
        state.settled = Some((result, Instant::now()));
        let waiting = std::mem::take(&mut state.waiting);
        drop(state);
        waiting.into_iter().for_each(std::task::Waker::wake);
    }
}

/// A batch's hold on its outcome: a batch dropped without being settled (the producer went
/// away with it queued) settles it as closed, so no delivery waits forever.
#[derive(Debug)]
pub(super) struct Settle(Arc<BatchOutcome>);

impl Settle {
    fn settle(&self, result: BatchResult) {
        self.0.settle(result);
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        self.0.settle(Err(Arc::new(ClientError::Closed { what: "producer" })));
    }
}

/// A batch being filled.
#[derive(Debug)]
struct OpenBatch {
    builder: BatchBuilder,
    outcome: Settle,
    /// Estimated bytes (what the records hold of the memory budget).
    bytes: usize,
    created: Instant,
}

/// A closed batch: its records, who waits for them, and its retry state.
#[derive(Debug)]
pub(super) struct SealedBatch {
    pub topic: String,
    pub partition: i32,
    /// The records, until the first send encodes the batch.
    pub builder: Option<BatchBuilder>,
    pub records: usize,
    pub outcome: Settle,
    /// Estimated bytes (what the records hold of the memory budget).
    pub bytes: usize,
    pub created: Instant,
    /// Place among the partition's batches, in seal order (with or without idempotence).
    pub order: u64,
    /// First sequence number, or -1 without idempotence.
    pub base_sequence: i32,
    /// The encoded batch, kept after the first send so a retry sends the same bytes.
    pub encoded: Option<Bytes>,
    /// Sends so far.
    pub attempts: u32,
    /// Not before this instant (backoff after a failure).
    pub retry_at: Option<Instant>,
}

/// A partition's batches. Never removed once created: it carries the partition's next
/// sequence number, which must not restart while the producer id lives (the broker would take
/// the new batch for a duplicate of the first).
#[derive(Debug, Default)]
struct PartitionQueue {
    open: Option<OpenBatch>,
    /// In seal order (`SealedBatch::order`).
    sealed: VecDeque<SealedBatch>,
    /// The `order` of each batch in flight.
    in_flight: Vec<u64>,
    next_sequence: i32,
    next_order: u64,
}

impl PartitionQueue {
    fn landed(&mut self, order: u64) {
        self.in_flight.retain(|in_flight| *in_flight != order);
    }
}

/// A topic's partition queues (indexed by partition) and its sticky partition for keyless
/// records. Looked up by `&str`, so a record's topic name is never copied.
#[derive(Debug, Default)]
struct TopicQueues {
    partitions: Vec<PartitionQueue>,
    sticky: Option<i32>,
    grow: GrowLimit,
}

/// How far a topic's batches may grow past `batch.size` (see
/// [`ProducerConfig::batch_size_max_bytes`]). Not at all until the topic's `max.message.bytes`
/// is known, so that a grown batch is never refused as too large where a `batch.size` one
/// would have been taken.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum GrowLimit {
    /// Not asked yet: the sender asks (`Drained::grow_limits_wanted`).
    #[default]
    Unknown,
    /// The sender is asking.
    Asking,
    /// A grown batch stays under this many bytes, estimated and encoded (header included).
    Known(usize),
    /// No growth: the limit could not be read, leaves no room past `batch.size`, or a grown
    /// batch was refused as too large anyway.
    Off,
}

/// Bytes a record's encoding may take beyond its estimate (`ProducerRecord::estimated_bytes`
/// counts 24 for the record's varints; they take up to 36, and 10 per header more).
const RECORD_ENCODING_SLACK_BYTES: usize = 32;

impl TopicQueues {
    fn queue(&mut self, partition: i32) -> &mut PartitionQueue {
        let index = partition as usize;
        if index >= self.partitions.len() {
            self.partitions.resize_with(index + 1, PartitionQueue::default);
        }
        &mut self.partitions[index]
    }
}

#[derive(Debug, Default)]
pub(super) struct State {
    topics: HashMap<String, TopicQueues>,
    /// Flush calls waiting; while non-zero every open batch is sealed at once.
    flushing: usize,
    /// Produce requests outstanding per broker id.
    pub in_flight_per_broker: HashMap<i32, usize>,
}

/// Shared between `Producer` handles and the sender task.
#[derive(Debug)]
pub(super) struct Accumulator {
    pub config: ProducerConfig,
    /// (producer id, epoch) with idempotence.
    pub identity: Option<(i64, i16)>,
    state: Mutex<State>,
    memory: Semaphore,
    buffered_bytes: AtomicUsize,
    /// Records appended and not yet settled.
    outstanding: AtomicUsize,
    /// Woken when `outstanding` reaches zero (for `flush`).
    drained: Notify,
    /// Wakes the sender: a batch opened or sealed, a flush, a completion.
    pub wake: Notify,
}

/// What the sender should do next.
#[derive(Debug, Default)]
pub(super) struct Drained {
    /// Batches to send now, with their leader (checked by the caller).
    pub ready: Vec<SealedBatch>,
    /// The next instant something becomes due (linger, retry backoff, delivery timeout).
    pub next_due: Option<Instant>,
    /// Partitions waiting for a leader the metadata cache does not know.
    pub missing_leader: bool,
    /// A partition has another batch it could send now (a drain takes at most one batch per
    /// partition, since a request holds one per partition): drain again at once.
    pub more: bool,
    /// Topics whose `max.message.bytes` the sender should read (`set_topic_message_bytes_max`)
    /// before their batches may grow.
    pub grow_limits_wanted: Vec<String>,
}

impl Accumulator {
    pub fn new(config: ProducerConfig, identity: Option<(i64, i16)>) -> Self {
        let memory = Semaphore::new(config.buffer_memory_bytes);
        Accumulator {
            config,
            identity,
            state: Mutex::new(State::default()),
            memory,
            buffered_bytes: AtomicUsize::new(0),
            outstanding: AtomicUsize::new(0),
            drained: Notify::new(),
            wake: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn check_record_size(&self, record_bytes: usize) -> Result<()> {
        let too_large =
            |limit_name, limit_bytes| Err(ClientError::RecordTooLarge { record_bytes, limit_name, limit_bytes });
        if record_bytes > self.config.buffer_memory_bytes {
            return too_large("buffer.memory", self.config.buffer_memory_bytes);
        }
        if record_bytes + BATCH_OVERHEAD_BYTES > self.config.request_bytes_max {
            return too_large("max.request.size", self.config.request_bytes_max);
        }
        Ok(())
    }

    /// Waits until `record_bytes` of buffer memory are free and takes them (without waiting
    /// when they are free now, the common case).
    pub async fn reserve_memory(&self, record_bytes: usize) -> Result<()> {
        let permits = u32::try_from(record_bytes).map_err(|_| ClientError::RecordTooLarge {
            record_bytes,
            limit_name: "buffer.memory",
            limit_bytes: self.config.buffer_memory_bytes,
        })?;
        let permit = match self.memory.try_acquire_many(permits) {
            Ok(permit) => permit,
            Err(_) => self.memory.acquire_many(permits).await.map_err(|_| ClientError::Closed { what: "producer" })?,
        };
        permit.forget();
        self.buffered_bytes.fetch_add(record_bytes, Ordering::Relaxed);
        Ok(())
    }

    fn release_memory(&self, bytes: usize) {
        self.buffered_bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.memory.add_permits(bytes);
    }

    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes.load(Ordering::Relaxed)
    }

    pub fn outstanding_records(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Appends a record whose memory is reserved; `partition` is `None` for the sticky choice.
    /// On an error (a record the batch format refuses) nothing is appended and the memory is
    /// given back.
    pub fn append(
        &self,
        record: ProducerRecord,
        partition: Option<i32>,
        partition_count: i32,
        record_bytes: usize,
    ) -> Result<Delivery> {
        let now = Instant::now();
        let timestamp_ms = record.timestamp_ms.unwrap_or_else(now_ms);
        // Counted before the record is queued: once it is in a batch the sender may drain,
        // send and complete it (and subtract it) before this function returns. Counting after
        // the lock was released let a fast completion subtract first and underflow the count
        // (seen under load in the fixed-rate bench test).
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        let mut guard = self.state();
        let topics = &mut guard.topics;
        let topic = match topics.get_mut(record.topic.as_str()) {
            Some(topic) => topic,
            None => topics.entry(record.topic.clone()).or_default(),
        };
        let partition = partition.unwrap_or_else(|| {
            *topic.sticky.get_or_insert_with(|| super::partitioner::random_partition(partition_count, None))
        });
        let mut wake = false;
        let grow = topic.grow;
        let queue = topic.queue(partition);
        // A batch is full at batch.size, unless one sealed before it still waits to be sent:
        // it could not leave before that one anyway, so it takes more records (up to the
        // topic's grow limit) instead of queueing another small batch behind it.
        let waiting = !queue.sealed.is_empty();
        let full = |open: &OpenBatch| match grow {
            GrowLimit::Known(limit) if waiting => {
                open.bytes + record_bytes > limit
                    || open.builder.encoded_bytes() + record_bytes + RECORD_ENCODING_SLACK_BYTES > limit
            }
            _ => open.bytes + record_bytes > self.config.batch_size_bytes,
        };
        if queue.open.as_ref().is_some_and(full) {
            let sealed = self.seal(&record.topic, partition, queue);
            queue.sealed.push_back(sealed);
            if topic.sticky == Some(partition) {
                topic.sticky = Some(super::partitioner::random_partition(partition_count, Some(partition)));
            }
            wake = true;
        }
        let queue = topic.queue(partition);
        let open = queue.open.get_or_insert_with(|| {
            wake = true;
            OpenBatch {
                builder: BatchBuilder::with_capacity(self.config.batch_size_bytes),
                outcome: Settle(BatchOutcome::new(&record.topic, partition)),
                bytes: 0,
                created: now,
            }
        });
        let index = open.builder.record_count() as u32;
        let pushed = open.builder.push(record.key.as_deref(), record.value.as_deref(), &record.headers, timestamp_ms);
        let delivery = match pushed {
            Ok(()) => {
                open.bytes += record_bytes;
                Ok(Delivery::new(Arc::clone(&open.outcome.0), index, timestamp_ms))
            }
            Err(error) => {
                if open.builder.record_count() == 0 {
                    queue.open = None; // opened for this record: nothing waits on it
                }
                Err(ClientError::from(error))
            }
        };
        drop(guard);
        if delivery.is_err() {
            self.finish(record_bytes, 1);
        } else if wake {
            self.wake.notify_one();
        }
        delivery
    }

    fn seal(&self, topic: &str, partition: i32, queue: &mut PartitionQueue) -> SealedBatch {
        let open = queue.open.take().expect("seal is called on an open batch");
        let records = open.builder.record_count();
        let base_sequence = if self.identity.is_some() {
            let base = queue.next_sequence;
            queue.next_sequence = base.wrapping_add(records as i32) & i32::MAX;
            base
        } else {
            -1
        };
        let order = queue.next_order;
        queue.next_order += 1;
        SealedBatch {
            topic: topic.to_string(),
            partition,
            builder: Some(open.builder),
            records,
            outcome: open.outcome,
            bytes: open.bytes,
            created: open.created,
            order,
            base_sequence,
            encoded: None,
            attempts: 0,
            retry_at: None,
        }
    }

    /// Seals due batches, fails expired ones, and takes the batches that can be sent now: at
    /// most one per partition, the partition below `max_in_flight` batches in flight, leader
    /// known (`leader_of`), broker below `max_in_flight` requests.
    pub fn drain(&self, now: Instant, leader_of: impl Fn(&str, i32) -> Option<i32>) -> Drained {
        let mut drained = Drained::default();
        let mut expired = Vec::new();
        let mut guard = self.state();
        let state = &mut *guard;
        let flushing = state.flushing > 0;
        let mut next_due: Option<Instant> = None;
        let mut earliest = |at: Instant| next_due = Some(next_due.map_or(at, |due: Instant| due.min(at)));
        for (name, topic) in state.topics.iter_mut() {
            if topic.grow == GrowLimit::Unknown && self.config.batch_grow_limit_bytes() > self.config.batch_size_bytes {
                topic.grow = GrowLimit::Asking;
                drained.grow_limits_wanted.push(name.clone());
            }
            for (partition, queue) in (0i32..).zip(topic.partitions.iter_mut()) {
                if let Some(open) = &queue.open {
                    let due = open.created + self.config.linger;
                    // A batch that grew past batch.size while others waited is full: it goes
                    // out behind them, without waiting for its linger.
                    if flushing || due <= now || open.bytes >= self.config.batch_size_bytes {
                        let sealed = self.seal(name, partition, queue);
                        queue.sealed.push_back(sealed);
                        if topic.sticky == Some(partition) {
                            topic.sticky = None;
                        }
                    } else {
                        earliest(due);
                    }
                }
                if queue.in_flight.len() >= self.config.max_in_flight {
                    continue;
                }
                // Expired batches fail only with nothing of the partition in flight: one in
                // flight is earlier in order and settles (or expires) first.
                while queue.in_flight.is_empty()
                    && queue.sealed.front().is_some_and(|batch| batch.created + self.config.delivery_timeout <= now)
                {
                    expired.extend(queue.sealed.pop_front());
                }
                let Some(front) = queue.sealed.front() else { continue };
                earliest(front.created + self.config.delivery_timeout);
                if let Some(retry_at) = front.retry_at.filter(|at| *at > now) {
                    earliest(retry_at);
                    continue;
                }
                let Some(leader) = leader_of(name, partition) else {
                    drained.missing_leader = true;
                    continue;
                };
                let broker_in_flight = state.in_flight_per_broker.get(&leader).copied().unwrap_or(0);
                if broker_in_flight >= self.config.max_in_flight {
                    continue;
                }
                if let Some(batch) = queue.sealed.pop_front() {
                    queue.in_flight.push(batch.order);
                    drained.ready.push(batch);
                }
                let next_sendable = queue.sealed.front().is_some_and(|next| next.retry_at.is_none_or(|at| at <= now));
                drained.more |= next_sendable
                    && queue.in_flight.len() < self.config.max_in_flight
                    && broker_in_flight + 1 < self.config.max_in_flight;
            }
        }
        drained.next_due = next_due;
        // `fail` takes the state lock itself: a std Mutex is not re-entrant, so failing an
        // expired batch with the guard still held deadlocked the sender (and, on a
        // current-thread runtime, everything else).
        drop(guard);
        for batch in expired {
            let timeout = ClientError::Timeout {
                what: format!("delivery to {}-{}", batch.topic, batch.partition),
                after: self.config.delivery_timeout,
            };
            self.fail(batch, timeout);
        }
        drained
    }

    /// What the sender learned of `topic`'s `max.message.bytes` (`None`: nothing). Batches of
    /// the topic may then grow up to the smaller of the configured grow limit and that size,
    /// less a margin for compression's framing (an incompressible batch grows slightly).
    pub fn set_topic_message_bytes_max(&self, topic: &str, message_bytes_max: Option<usize>) {
        let configured = self.config.batch_grow_limit_bytes();
        let grow = match message_bytes_max {
            Some(max) => {
                let limit = configured.min(max.saturating_sub(max / 32 + 128));
                if limit > self.config.batch_size_bytes {
                    GrowLimit::Known(limit)
                } else {
                    GrowLimit::Off
                }
            }
            None => GrowLimit::Off,
        };
        if let Some(queues) = self.state().topics.get_mut(topic) {
            queues.grow = grow;
        }
    }

    /// Counts a request to `broker` as in flight.
    pub fn request_started(&self, broker: i32) {
        *self.state().in_flight_per_broker.entry(broker).or_default() += 1;
    }

    /// A request to `broker` finished (whatever its outcome).
    pub fn request_finished(&self, broker: i32) {
        let mut state = self.state();
        if let Some(count) = state.in_flight_per_broker.get_mut(&broker) {
            *count = count.saturating_sub(1);
        }
        drop(state);
        self.wake.notify_one();
    }

    /// A batch taken by `drain` goes back into its partition's queue for a retry, in seal
    /// order: ahead of every later batch of the partition.
    pub fn requeue(&self, mut batch: SealedBatch, retry_at: Instant) {
        batch.retry_at = Some(retry_at);
        let mut state = self.state();
        let topic = state.topics.entry(batch.topic.clone()).or_default();
        let queue = topic.queue(batch.partition);
        queue.landed(batch.order);
        let at = queue.sealed.iter().position(|queued| queued.order > batch.order).unwrap_or(queue.sealed.len());
        queue.sealed.insert(at, batch);
        drop(state);
        self.wake.notify_one();
    }

    /// Whether a batch of `batch`'s partition sealed before it is still unsettled (in flight
    /// or queued for a resend). A broker that refuses `batch` as out of sequence then refused
    /// it because that earlier batch has not landed yet: `batch` is resent after it.
    pub fn has_earlier_batch(&self, batch: &SealedBatch) -> bool {
        let mut state = self.state();
        let Some(topic) = state.topics.get_mut(batch.topic.as_str()) else { return false };
        let queue = topic.queue(batch.partition);
        queue.in_flight.iter().any(|order| *order < batch.order)
            || queue.sealed.front().is_some_and(|queued| queued.order < batch.order)
    }

    /// A batch taken by `drain` is done: its records get their offsets (one settlement for the
    /// batch); memory comes back.
    pub fn complete(&self, batch: SealedBatch, base_offset: i64, log_append_time_ms: i64) {
        self.partition_done(&batch);
        batch.outcome.settle(Ok((base_offset, log_append_time_ms)));
        self.finish(batch.bytes, batch.records);
    }

    /// A batch taken by `drain` (or expired) failed for good.
    pub fn fail(&self, batch: SealedBatch, error: ClientError) {
        self.partition_done(&batch);
        tracing::warn!(topic = %batch.topic, partition = batch.partition, records = batch.records, %error, "batch failed");
        batch.outcome.settle(Err(Arc::new(error)));
        self.finish(batch.bytes, batch.records);
    }

    fn partition_done(&self, batch: &SealedBatch) {
        let mut state = self.state();
        if let Some(topic) = state.topics.get_mut(batch.topic.as_str()) {
            topic.queue(batch.partition).landed(batch.order);
        }
    }

    fn finish(&self, bytes: usize, records: usize) {
        self.release_memory(bytes);
        if self.outstanding.fetch_sub(records, Ordering::AcqRel) == records {
            self.drained.notify_waiters();
        }
        self.wake.notify_one();
    }

    /// Seals every open batch now and waits until nothing is outstanding.
    pub async fn flush(&self) -> Result<()> {
        self.state().flushing += 1;
        self.wake.notify_one();
        loop {
            // Registered before the check: a `notify_waiters` between the two is not lost.
            let drained = self.drained.notified();
            if self.outstanding_records() == 0 {
                break;
            }
            drained.await;
        }
        self.state().flushing -= 1;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch whose delivery timeout passes while it waits in its queue is failed by `drain`
    /// (its sender gets the timeout), without `drain` deadlocking on its own state lock.
    #[test]
    fn drain_fails_expired_batches_without_deadlocking() {
        let config =
            ProducerConfig { delivery_timeout: std::time::Duration::from_millis(1), ..ProducerConfig::default() };
        let accumulator = std::sync::Arc::new(Accumulator::new(config, None));
        let record = ProducerRecord::new("t", "value");
        let delivered = accumulator.append(record, Some(0), 1, 64).unwrap();
        let later = Instant::now() + std::time::Duration::from_secs(1);
        let (done, finished) = std::sync::mpsc::channel();
        let draining = std::sync::Arc::clone(&accumulator);
        // No leader: the expired batch cannot be sent, only failed.
        std::thread::spawn(move || done.send(draining.drain(later, |_, _| None).ready.len()).unwrap());
        let ready = finished.recv_timeout(std::time::Duration::from_secs(10)).expect("drain returned (no deadlock)");
        assert_eq!(ready, 0);
        let result = delivered.try_result().expect("the expired record got its result");
        assert!(matches!(result, Err(ClientError::Delivery(_))), "{result:?}");
        assert_eq!(accumulator.outstanding_records(), 0);
    }

    /// A record counts as outstanding from the moment a sender could drain it: a sender that
    /// drains, sends and completes batches as fast as they appear never brings the count below
    /// zero (it did when `append` counted the record after releasing its lock: an overflow
    /// panic in the sender task, and `flush` waited forever). Method: one thread appends with
    /// no linger while another drains and completes in a tight loop; after both, nothing is
    /// outstanding and every delivery got its offset.
    #[test]
    fn a_record_drained_and_completed_at_once_is_counted_first() {
        const RECORDS: usize = 20_000;
        let config = ProducerConfig { linger: std::time::Duration::ZERO, ..ProducerConfig::default() };
        let accumulator = std::sync::Arc::new(Accumulator::new(config, None));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sender = {
            let (accumulator, stop) = (std::sync::Arc::clone(&accumulator), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Acquire) || accumulator.outstanding_records() > 0 {
                    for batch in accumulator.drain(Instant::now(), |_, _| Some(1)).ready {
                        accumulator.complete(batch, 0, -1);
                    }
                }
            })
        };
        let mut deliveries = Vec::with_capacity(RECORDS);
        for _ in 0..RECORDS {
            deliveries.push(accumulator.append(ProducerRecord::new("t", "v"), Some(0), 1, 8).unwrap());
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
        sender.join().expect("the sender thread did not panic (the count never went below zero)");
        assert_eq!(accumulator.outstanding_records(), 0);
        for delivered in deliveries {
            assert!(matches!(delivered.try_result(), Some(Ok(_))));
        }
    }

    fn sealed(accumulator: &Accumulator) -> Vec<SealedBatch> {
        accumulator.state().flushing += 1;
        let ready = accumulator.drain(Instant::now(), |_, _| Some(1)).ready;
        accumulator.state().flushing -= 1;
        ready
    }

    /// One settlement serves every record of a batch: each delivery reads base offset + its
    /// index, and its own create time unless the broker gave a log-append time. The batch the
    /// sender encodes holds the records as appended.
    #[test]
    fn a_batch_settles_once_and_each_record_reads_its_own_offset() {
        let accumulator = Accumulator::new(ProducerConfig::default(), Some((42, 1)));
        let deliveries: Vec<Delivery> = (0..3i64)
            .map(|index| {
                let record = ProducerRecord::new("t", format!("v{index}")).with_timestamp_ms(1_000 + index);
                accumulator.append(record, Some(2), 4, 32).unwrap()
            })
            .collect();
        assert!(deliveries.iter().all(|delivery| delivery.try_result().is_none() && delivery.settled_at().is_none()));
        let mut ready = sealed(&accumulator);
        assert_eq!(ready.len(), 1);
        let mut batch = ready.pop().unwrap();
        let options = sluice_proto::records::BatchOptions {
            producer: sluice_proto::records::ProducerIdentity { producer_id: 42, producer_epoch: 1, base_sequence: 0 },
            ..Default::default()
        };
        let encoded = batch.builder.take().unwrap().finish(&options).unwrap();
        let decoded = sluice_proto::records::decode_record_batches(&encoded).unwrap();
        let values: Vec<_> = decoded.batches[0].records.iter().map(|r| r.value.clone().unwrap()).collect();
        assert_eq!(values, ["v0", "v1", "v2"]);
        accumulator.complete(batch, 500, -1);
        for (index, delivery) in (0i64..).zip(&deliveries) {
            let metadata = delivery.try_result().unwrap().unwrap();
            assert_eq!((metadata.topic.as_str(), metadata.partition), ("t", 2));
            assert_eq!((metadata.offset, metadata.timestamp_ms), (500 + index, 1_000 + index));
            assert!(delivery.settled_at().is_some());
        }
        let appended = accumulator.append(ProducerRecord::new("t", "x"), Some(2), 4, 32).unwrap();
        let batch = sealed(&accumulator).pop().unwrap();
        assert_eq!(batch.base_sequence, 3, "sequence numbers continue across batches");
        accumulator.complete(batch, 9, 77);
        assert_eq!(appended.try_result().unwrap().unwrap().timestamp_ms, 77, "log-append time wins");
        assert_eq!(accumulator.outstanding_records(), 0);
    }

    /// An awaiting task is woken by the settlement; deliveries of batches the producer drops
    /// unsettled (it went away) end with an error instead of waiting forever; a record the
    /// batch format refuses is refused by `append` and holds nothing.
    #[tokio::test]
    async fn deliveries_wake_on_settlement_and_never_hang_when_the_producer_goes() {
        let accumulator = Arc::new(Accumulator::new(ProducerConfig::default(), None));
        accumulator.reserve_memory(32).await.unwrap();
        let delivery = accumulator.append(ProducerRecord::new("t", "a"), Some(0), 1, 32).unwrap();
        let waiting = tokio::spawn(delivery);
        tokio::task::yield_now().await;
        let batch = sealed(&accumulator).pop().unwrap();
        accumulator.complete(batch, 7, -1);
        let metadata = tokio::time::timeout(std::time::Duration::from_secs(10), waiting).await.unwrap().unwrap();
        assert_eq!(metadata.unwrap().offset, 7);

        accumulator.reserve_memory(32).await.unwrap();
        let repeated = ProducerRecord::new("t", "b").with_header("h", "1").with_header("h", "2");
        assert!(matches!(accumulator.append(repeated, Some(0), 1, 32), Err(ClientError::Protocol(_))));
        assert_eq!((accumulator.outstanding_records(), accumulator.buffered_bytes()), (0, 0));

        let open = accumulator.append(ProducerRecord::new("t", "c"), Some(0), 1, 32).unwrap();
        let waiting = tokio::spawn(open);
        tokio::task::yield_now().await;
        drop(accumulator);
        let result = tokio::time::timeout(std::time::Duration::from_secs(10), waiting).await.unwrap().unwrap();
        assert!(
            matches!(result, Err(ClientError::Delivery(ref cause)) if matches!(**cause, ClientError::Closed { .. })),
            "{result:?}"
        );
    }

    /// Several batches of a partition go out one per drain (a request holds one batch per
    /// partition) up to `max_in_flight`; when the first fails and the later ones are refused
    /// for overtaking it, they return to the queue in seal order and go out again first-first.
    #[test]
    fn batches_in_flight_together_return_in_seal_order_after_a_failure() {
        let config = ProducerConfig {
            batch_size_bytes: 64,
            batch_size_max_bytes: 64,
            max_in_flight: 3,
            ..ProducerConfig::default()
        };
        let accumulator = Accumulator::new(config, Some((7, 0)));
        for index in 0..8 {
            // 40 estimated bytes each: a batch holds one record.
            accumulator.append(ProducerRecord::new("t", format!("{index}")), Some(0), 1, 40).unwrap();
        }
        let mut in_flight = Vec::new();
        loop {
            let drained = accumulator.drain(Instant::now(), |_, _| Some(1));
            assert!(drained.ready.len() <= 1, "one batch of a partition per drain");
            in_flight.extend(drained.ready);
            if !drained.more {
                break;
            }
        }
        let sequences: Vec<i32> = in_flight.iter().map(|batch| batch.base_sequence).collect();
        assert_eq!(sequences, [0, 1, 2], "max_in_flight batches, in order");
        assert!(!accumulator.has_earlier_batch(&in_flight[0]));
        assert!(accumulator.has_earlier_batch(&in_flight[2]));
        // The failures are handled in any order (here the second, the third, then the first):
        // the queue still puts them back in seal order.
        let now = Instant::now();
        let mut failed: Vec<SealedBatch> = std::mem::take(&mut in_flight);
        let first = failed.remove(0);
        failed.push(first);
        for batch in failed {
            accumulator.requeue(batch, now);
        }
        let mut resent = Vec::new();
        loop {
            let drained = accumulator.drain(Instant::now(), |_, _| Some(1));
            resent.extend(drained.ready.iter().map(|batch| batch.base_sequence));
            in_flight.extend(drained.ready);
            if !drained.more {
                break;
            }
        }
        assert_eq!(resent, [0, 1, 2], "resent first-first");
        for batch in in_flight {
            accumulator.complete(batch, 0, -1);
        }
        let drained = accumulator.drain(Instant::now(), |_, _| Some(1));
        assert_eq!(drained.ready.iter().map(|batch| batch.base_sequence).collect::<Vec<_>>(), [3]);
    }

    /// Records appended while a sealed batch of their partition waits for an in-flight slot
    /// join one growing batch (up to the grow limit) instead of many batch-size batches; it is
    /// sent whole, behind the waiting one, without waiting for its linger, and its records keep
    /// their order and sequence numbers. With nothing waiting, batches seal at batch.size.
    #[test]
    fn a_batch_grows_past_batch_size_while_an_earlier_one_waits_to_be_sent() {
        let config = ProducerConfig {
            batch_size_bytes: 100,
            batch_size_max_bytes: 400,
            max_in_flight: 1,
            linger: std::time::Duration::from_secs(60),
            ..ProducerConfig::default()
        };
        let accumulator = Accumulator::new(config, Some((7, 0)));
        accumulator.append(ProducerRecord::new("t", "x"), Some(1), 2, 40).unwrap();
        let asked = accumulator.drain(Instant::now(), |_, _| Some(1)).grow_limits_wanted;
        assert_eq!(asked, ["t"], "the sender is asked for the topic's max.message.bytes, once");
        assert!(accumulator.drain(Instant::now(), |_, _| Some(1)).grow_limits_wanted.is_empty());
        accumulator.set_topic_message_bytes_max("t", Some(1_000_000));
        let append = |index: usize| {
            accumulator.append(ProducerRecord::new("t", format!("{index}")), Some(0), 1, 40).unwrap();
        };
        let drain = || accumulator.drain(Instant::now(), |_, _| Some(1)).ready;
        // Idle sender: three records make a batch of two (80 bytes; a third would pass 100)
        // and an open one; the full one goes out, the open one waits for its linger.
        (0..3).for_each(append);
        let first = drain();
        assert_eq!(first.iter().map(|batch| batch.records).collect::<Vec<_>>(), [2]);
        assert!(drain().is_empty(), "an open batch under batch.size waits for its linger");
        // The one slot is taken: the open batch fills (one more record), is sealed and waits;
        // the next records grow one batch up to 400 bytes (10 records) instead of five of two.
        (3..16).for_each(append);
        assert!(drain().is_empty(), "nothing leaves while the slot is taken");
        let state = accumulator.state();
        let queue = &state.topics["t"].partitions[0];
        let waiting: Vec<usize> = queue.sealed.iter().map(|batch| batch.records).collect();
        assert_eq!(waiting, [2, 10], "one small batch waits, the next grew to the limit");
        assert_eq!(queue.open.as_ref().map(|open| open.builder.record_count()), Some(2));
        drop(state);
        for batch in first {
            accumulator.complete(batch, 0, -1);
        }
        let mut sent = Vec::new();
        loop {
            let ready = drain();
            if ready.is_empty() {
                break;
            }
            for batch in ready {
                sent.push((batch.base_sequence, batch.records));
                accumulator.complete(batch, 0, -1);
            }
        }
        // The grown batch needs no linger; the last open one (2 records, under batch.size,
        // nothing waiting ahead of it any more) waits for its own.
        assert_eq!(sent, [(2, 2), (4, 10)], "in order, sequences contiguous");
        assert_eq!(accumulator.outstanding_records(), 3, "two open in partition 0, one in 1");
        // A batch that grew past batch.size behind a waiting one but not to the limit is full
        // all the same: once the one ahead has gone it leaves without waiting for its linger.
        (16..19).for_each(append);
        let mut sent = Vec::new();
        for _ in 0..2 {
            for batch in drain() {
                sent.push((batch.base_sequence, batch.records));
                accumulator.complete(batch, 0, -1);
            }
        }
        assert_eq!(sent, [(14, 2), (16, 3)]);
        assert_eq!(accumulator.outstanding_records(), 1);
    }

    /// Batches grow only once the topic's `max.message.bytes` is known, and not past what it
    /// allows (less a margin): a grown batch must never be refused where batch.size ones are
    /// taken. A limit with no room past batch.size, or none at all, turns growth off.
    #[test]
    fn batches_grow_only_within_the_topics_known_max_message_bytes() {
        let config = ProducerConfig {
            batch_size_bytes: 100,
            batch_size_max_bytes: 100_000,
            max_in_flight: 1,
            linger: std::time::Duration::from_secs(60),
            ..ProducerConfig::default()
        };
        // Records of 40 estimated bytes (24 + "t"'s value of 1..2 digits): the first batch takes
        // two and goes in flight; then `count` more are appended behind it.
        let batches_behind = |message_bytes_max: Option<Option<usize>>, count: usize| {
            let accumulator = Accumulator::new(config.clone(), None);
            if let Some(limit) = message_bytes_max {
                accumulator.append(ProducerRecord::new("t", "x"), Some(1), 2, 40).unwrap();
                let _ = accumulator.drain(Instant::now(), |_, _| Some(1));
                accumulator.set_topic_message_bytes_max("t", limit);
            }
            for index in 0..3 {
                accumulator.append(ProducerRecord::new("t", format!("{index}")), Some(0), 2, 40).unwrap();
            }
            let in_flight = accumulator.drain(Instant::now(), |_, _| Some(1)).ready;
            assert_eq!(in_flight.len(), 1);
            for index in 0..count {
                accumulator.append(ProducerRecord::new("t", format!("{index}")), Some(0), 2, 40).unwrap();
            }
            let state = accumulator.state();
            let queue = &state.topics["t"].partitions[0];
            queue.sealed.iter().map(|batch| batch.records).collect::<Vec<_>>()
        };
        assert_eq!(batches_behind(None, 20), [2; 10], "limit not known yet: no growth");
        assert_eq!(batches_behind(Some(None), 20), [2; 10], "limit unreadable: no growth");
        assert_eq!(batches_behind(Some(Some(200)), 20), [2; 10], "no room past batch.size: no growth");
        // 1,000 bytes less 1/32 and 128: 841; the encoded size (about 8 bytes a record and the
        // 61-byte header) stays under it with the 32-byte slack; the estimate (40 a record)
        // fills first: 21 records of 40 bytes.
        assert_eq!(batches_behind(Some(Some(1_000)), 60), [2, 21, 21], "grows to the topic's limit");
    }
}
