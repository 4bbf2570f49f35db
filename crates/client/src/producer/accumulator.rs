//! Per-partition batches between `send` and the sender task, and the buffer-memory budget.
//!
//! Each partition has at most one *open* batch (taking records) and a FIFO of *sealed*
//! batches (closed, with sequence numbers, waiting to be sent or re-sent). Sequence numbers are
//! stamped when a batch is sealed, in partition order; since a partition has at most one batch
//! in flight and a retried batch returns to the front, a partition's batches reach the broker
//! in sequence order.
//!
//! Memory: `send` takes `estimated_bytes` permits from a semaphore of `buffer_memory_bytes`
//! before appending; they come back when the record's delivery completes (success or failure).
//! So the bytes held for undelivered records never exceed the budget, whatever the broker does.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use sluice_proto::records::ProducedRecord;
use tokio::sync::{oneshot, watch, Notify, Semaphore};

use super::{ProducerConfig, ProducerRecord, RecordMetadata, BATCH_OVERHEAD_BYTES};
use crate::error::{ClientError, Result};

pub(super) type DeliverySender = oneshot::Sender<Result<RecordMetadata>>;

/// A batch being filled.
#[derive(Debug)]
struct OpenBatch {
    records: Vec<ProducedRecord>,
    deliveries: Vec<DeliverySender>,
    bytes: usize,
    created: Instant,
}

/// A closed batch: its records, who waits for them, and its retry state.
#[derive(Debug)]
pub(super) struct SealedBatch {
    pub topic: String,
    pub partition: i32,
    pub records: Vec<ProducedRecord>,
    pub deliveries: Vec<DeliverySender>,
    /// Estimated bytes (what the records hold of the memory budget).
    pub bytes: usize,
    pub created: Instant,
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
    sealed: VecDeque<SealedBatch>,
    in_flight: bool,
    next_sequence: i32,
}

#[derive(Debug, Default)]
pub(super) struct State {
    partitions: HashMap<(String, i32), PartitionQueue>,
    /// The sticky partition per topic for keyless records.
    sticky: HashMap<String, i32>,
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
    outstanding: watch::Sender<usize>,
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
            outstanding: watch::Sender::new(0),
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

    /// Waits until `record_bytes` of buffer memory are free and takes them.
    pub async fn reserve_memory(&self, record_bytes: usize) -> Result<()> {
        let permits = u32::try_from(record_bytes).map_err(|_| ClientError::RecordTooLarge {
            record_bytes,
            limit_name: "buffer.memory",
            limit_bytes: self.config.buffer_memory_bytes,
        })?;
        let permit = self.memory.acquire_many(permits).await.map_err(|_| ClientError::Closed { what: "producer" })?;
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
        *self.outstanding.borrow()
    }

    /// Appends a record whose memory is reserved; `partition` is `None` for the sticky choice.
    pub fn append(
        &self,
        record: ProducerRecord,
        partition: Option<i32>,
        partition_count: i32,
        record_bytes: usize,
        delivery: DeliverySender,
    ) {
        let now = Instant::now();
        let produced = ProducedRecord {
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp_ms: record.timestamp_ms.unwrap_or_else(now_ms),
        };
        // Counted before the record is queued: once it is in a batch the sender may drain,
        // send and complete it (and subtract it) before this function returns. Counting after
        // the lock was released let a fast completion subtract first and underflow the count
        // (a panic in the sender task; seen under load in the fixed-rate bench test).
        self.outstanding.send_modify(|count| *count += 1);
        let mut state = self.state();
        let partition = partition.unwrap_or_else(|| {
            *state
                .sticky
                .entry(record.topic.clone())
                .or_insert_with(|| super::partitioner::random_partition(partition_count, None))
        });
        let key = (record.topic, partition);
        let queue = state.partitions.entry(key.clone()).or_default();
        let mut wake = false;
        if queue.open.as_ref().is_some_and(|open| open.bytes + record_bytes > self.config.batch_size_bytes) {
            let sealed = self.seal(&key, queue);
            queue.sealed.push_back(sealed);
            if state.sticky.get(&key.0) == Some(&key.1) {
                let next = super::partitioner::random_partition(partition_count, Some(key.1));
                state.sticky.insert(key.0.clone(), next);
            }
            wake = true;
        }
        let queue = state.partitions.entry(key).or_default();
        let open = queue.open.get_or_insert_with(|| {
            wake = true;
            OpenBatch { records: Vec::new(), deliveries: Vec::new(), bytes: 0, created: now }
        });
        open.records.push(produced);
        open.deliveries.push(delivery);
        open.bytes += record_bytes;
        drop(state);
        if wake {
            self.wake.notify_one();
        }
    }

    fn seal(&self, key: &(String, i32), queue: &mut PartitionQueue) -> SealedBatch {
        let open = queue.open.take().expect("seal is called on an open batch");
        let base_sequence = if self.identity.is_some() {
            let base = queue.next_sequence;
            queue.next_sequence = base.wrapping_add(open.records.len() as i32) & i32::MAX;
            base
        } else {
            -1
        };
        SealedBatch {
            topic: key.0.clone(),
            partition: key.1,
            records: open.records,
            deliveries: open.deliveries,
            bytes: open.bytes,
            created: open.created,
            base_sequence,
            encoded: None,
            attempts: 0,
            retry_at: None,
        }
    }

    /// Seals due batches, fails expired ones, and takes the batches that can be sent now:
    /// partition not in flight, leader known (`leader_of`), broker below `max_in_flight`.
    pub fn drain(&self, now: Instant, leader_of: impl Fn(&str, i32) -> Option<i32>) -> Drained {
        let mut drained = Drained::default();
        let mut expired = Vec::new();
        let mut guard = self.state();
        let state = &mut *guard;
        let flushing = state.flushing > 0;
        let mut next_due: Option<Instant> = None;
        let mut earliest = |at: Instant| next_due = Some(next_due.map_or(at, |due: Instant| due.min(at)));
        for (key, queue) in state.partitions.iter_mut() {
            if let Some(open) = &queue.open {
                let due = open.created + self.config.linger;
                if flushing || due <= now {
                    let sealed = self.seal(key, queue);
                    queue.sealed.push_back(sealed);
                    if state.sticky.get(&key.0) == Some(&key.1) {
                        state.sticky.remove(&key.0);
                    }
                } else {
                    earliest(due);
                }
            }
            if queue.in_flight {
                continue;
            }
            while queue.sealed.front().is_some_and(|batch| batch.created + self.config.delivery_timeout <= now) {
                expired.extend(queue.sealed.pop_front());
            }
            let Some(front) = queue.sealed.front() else { continue };
            earliest(front.created + self.config.delivery_timeout);
            if let Some(retry_at) = front.retry_at.filter(|at| *at > now) {
                earliest(retry_at);
                continue;
            }
            let Some(leader) = leader_of(&key.0, key.1) else {
                drained.missing_leader = true;
                continue;
            };
            let broker_in_flight = state.in_flight_per_broker.get(&leader).copied().unwrap_or(0);
            if broker_in_flight >= self.config.max_in_flight {
                continue;
            }
            queue.in_flight = true;
            drained.ready.extend(queue.sealed.pop_front());
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

    /// A batch taken by `drain` goes back to the front of its partition's queue for a retry.
    pub fn requeue(&self, mut batch: SealedBatch, retry_at: Instant) {
        batch.retry_at = Some(retry_at);
        let mut state = self.state();
        let queue = state.partitions.entry((batch.topic.clone(), batch.partition)).or_default();
        queue.in_flight = false;
        queue.sealed.push_front(batch);
        drop(state);
        self.wake.notify_one();
    }

    /// A batch taken by `drain` is done: each record gets its result; memory comes back.
    pub fn complete(&self, batch: SealedBatch, base_offset: i64, log_append_time_ms: i64) {
        self.partition_done(&batch);
        let count = batch.deliveries.len();
        for (index, (delivery, record)) in batch.deliveries.into_iter().zip(&batch.records).enumerate() {
            let offset = if base_offset < 0 { -1 } else { base_offset + index as i64 };
            let timestamp_ms = if log_append_time_ms >= 0 { log_append_time_ms } else { record.timestamp_ms };
            let _ = delivery.send(Ok(RecordMetadata {
                topic: batch.topic.clone(),
                partition: batch.partition,
                offset,
                timestamp_ms,
            }));
        }
        self.finish(batch.bytes, count);
    }

    /// A batch taken by `drain` (or expired) failed for good.
    pub fn fail(&self, batch: SealedBatch, error: ClientError) {
        self.partition_done(&batch);
        tracing::warn!(topic = %batch.topic, partition = batch.partition, records = batch.records.len(), %error, "batch failed");
        let shared = std::sync::Arc::new(error);
        let count = batch.deliveries.len();
        for delivery in batch.deliveries {
            let _ = delivery.send(Err(ClientError::Delivery(shared.clone())));
        }
        self.finish(batch.bytes, count);
    }

    fn partition_done(&self, batch: &SealedBatch) {
        let mut state = self.state();
        if let Some(queue) = state.partitions.get_mut(&(batch.topic.clone(), batch.partition)) {
            queue.in_flight = false;
        }
    }

    fn finish(&self, bytes: usize, records: usize) {
        self.release_memory(bytes);
        self.outstanding.send_modify(|count| *count -= records);
        self.wake.notify_one();
    }

    /// Seals every open batch now and waits until nothing is outstanding.
    pub async fn flush(&self) -> Result<()> {
        self.state().flushing += 1;
        self.wake.notify_one();
        let mut outstanding = self.outstanding.subscribe();
        let waited = outstanding.wait_for(|count| *count == 0).await.map(|_| ());
        self.state().flushing -= 1;
        waited.map_err(|_| ClientError::Closed { what: "producer" })
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
        let (delivery, mut delivered) = oneshot::channel();
        let record = ProducerRecord::new("t", "value");
        accumulator.append(record, Some(0), 1, 64, delivery);
        let later = Instant::now() + std::time::Duration::from_secs(1);
        let (done, finished) = std::sync::mpsc::channel();
        let draining = std::sync::Arc::clone(&accumulator);
        // No leader: the expired batch cannot be sent, only failed.
        std::thread::spawn(move || done.send(draining.drain(later, |_, _| None).ready.len()).unwrap());
        let ready = finished.recv_timeout(std::time::Duration::from_secs(10)).expect("drain returned (no deadlock)");
        assert_eq!(ready, 0);
        let result = delivered.try_recv().expect("the expired record got its result");
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
            let (delivery, delivered) = oneshot::channel();
            accumulator.append(ProducerRecord::new("t", "v"), Some(0), 1, 8, delivery);
            deliveries.push(delivered);
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
        sender.join().expect("the sender thread did not panic (the count never went below zero)");
        assert_eq!(accumulator.outstanding_records(), 0);
        for mut delivered in deliveries {
            assert!(matches!(delivered.try_recv(), Ok(Ok(_))));
        }
    }
}
