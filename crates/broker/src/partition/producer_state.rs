//! Idempotent producer state of one partition: which sequence numbers each producer id has
//! written, so a retried batch is answered as a duplicate and a gap is refused.
//!
//! Pure logic (no I/O, no clock): [`ProducerStates::check`] decides what to do with a batch,
//! [`ProducerStates::record`] remembers an appended one. The partition calls both under its
//! lock, so the decision and the append are one step. On open, the state is rebuilt by feeding
//! every batch header of the log to `record` (see `Partition::open`).
//!
//! Rules (Kafka's `ProducerStateManager` / `ProducerAppendInfo`):
//! - A batch without a producer id (`-1`) is not checked.
//! - An epoch older than the producer's current one is fenced (INVALID_PRODUCER_EPOCH).
//! - A batch whose epoch, first and last sequence equal one of the producer's last
//!   [`BATCHES_REMEMBERED_PER_PRODUCER`] batches is a duplicate: it is answered with the
//!   offsets it got the first time and not appended again.
//! - With the producer's current epoch, the first sequence must follow the last one
//!   (wrapping after `i32::MAX` to 0); otherwise OUT_OF_ORDER_SEQUENCE_NUMBER.
//! - A newer epoch must start at sequence 0.
//! - A producer this partition has no state for (new, or its batches were deleted by
//!   retention) may start at any sequence.

use std::collections::{HashMap, VecDeque};

/// Batches remembered per producer id for duplicate detection: Kafka's value, matching the
/// clients' `max.in.flight.requests.per.connection` limit of 5 for idempotent producers.
pub const BATCHES_REMEMBERED_PER_PRODUCER: usize = 5;

/// Producer ids whose state one partition keeps. Past this the producer that appended least
/// recently is forgotten (its next batch is accepted at any sequence, as after retention).
/// Cost: about 300 bytes per producer; 50,000 producers ≈ 15 MiB per busy partition.
pub const PRODUCERS_PER_PARTITION_MAX: usize = 50_000;

/// "No producer id" in a batch header.
pub const NO_PRODUCER_ID: i64 = -1;

/// The producer fields of one batch, read from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// Producer id, or [`NO_PRODUCER_ID`].
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence of the first record.
    pub base_sequence: i32,
    /// `record_count - 1` (the header's last offset delta).
    pub last_offset_delta: i32,
    /// The header's max timestamp (DescribeProducers' last timestamp).
    pub max_timestamp: i64,
}

impl ProducerBatch {
    /// Sequence of the last record (sequences wrap after `i32::MAX`).
    pub fn last_sequence(&self) -> i32 {
        wrapping_sequence(self.base_sequence, self.last_offset_delta)
    }

    /// Whether the batch carries producer state.
    pub fn is_idempotent(&self) -> bool {
        self.producer_id != NO_PRODUCER_ID
    }
}

/// One batch a producer appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AppendedBatch {
    first_sequence: i32,
    last_sequence: i32,
    first_offset: i64,
    last_offset: i64,
}

#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<AppendedBatch>,
    /// Max timestamp of the last batch appended.
    last_timestamp: i64,
    /// Order of the last append, for evicting the least recently used producer.
    last_touch: u64,
}

/// One producer's state as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    /// Producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i16,
    /// Sequence of the last record appended.
    pub last_sequence: i32,
    /// Max timestamp of the last batch appended.
    pub last_timestamp: i64,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// Already appended at these offsets; answer with them and append nothing.
    Duplicate {
        /// Offset of its first record.
        first_offset: i64,
        /// Offset of its last record.
        last_offset: i64,
    },
    /// A sequence gap (or a new epoch not starting at 0): OUT_OF_ORDER_SEQUENCE_NUMBER.
    OutOfOrder {
        /// Sequence the producer should have sent next.
        expected: i32,
    },
    /// An epoch older than the current one: INVALID_PRODUCER_EPOCH.
    FencedEpoch {
        /// The producer's current epoch.
        current: i16,
    },
}

/// The idempotence state of every producer of one partition.
#[derive(Debug, Clone, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    touches: u64,
}

impl ProducerStates {
    /// Producer ids with state.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer has state.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Decides what to do with `batch`; changes nothing.
    pub fn check(&self, batch: &ProducerBatch) -> SequenceCheck {
        if !batch.is_idempotent() {
            return SequenceCheck::Append;
        }
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return SequenceCheck::Append;
        };
        if batch.producer_epoch < entry.epoch {
            return SequenceCheck::FencedEpoch { current: entry.epoch };
        }
        if batch.producer_epoch > entry.epoch {
            return if batch.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::OutOfOrder { expected: 0 }
            };
        }
        let last_sequence = batch.last_sequence();
        if let Some(seen) =
            entry.batches.iter().find(|b| b.first_sequence == batch.base_sequence && b.last_sequence == last_sequence)
        {
            return SequenceCheck::Duplicate { first_offset: seen.first_offset, last_offset: seen.last_offset };
        }
        let expected = match entry.batches.back() {
            Some(last) => wrapping_sequence(last.last_sequence, 1),
            None => return SequenceCheck::Append,
        };
        if batch.base_sequence == expected {
            SequenceCheck::Append
        } else {
            SequenceCheck::OutOfOrder { expected }
        }
    }

    /// Remembers that `batch` was appended at `first_offset ..= last_offset`.
    pub fn record(&mut self, batch: &ProducerBatch, first_offset: i64, last_offset: i64) {
        if !batch.is_idempotent() {
            return;
        }
        self.touches += 1;
        let touch = self.touches;
        let entry = self.producers.entry(batch.producer_id).or_insert_with(|| ProducerEntry {
            epoch: batch.producer_epoch,
            batches: VecDeque::with_capacity(BATCHES_REMEMBERED_PER_PRODUCER),
            last_timestamp: batch.max_timestamp,
            last_touch: touch,
        });
        entry.last_timestamp = batch.max_timestamp;
        if batch.producer_epoch != entry.epoch {
            entry.epoch = batch.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_REMEMBERED_PER_PRODUCER {
            entry.batches.pop_front();
        }
        entry.batches.push_back(AppendedBatch {
            first_sequence: batch.base_sequence,
            last_sequence: batch.last_sequence(),
            first_offset,
            last_offset,
        });
        entry.last_touch = touch;
        if self.producers.len() > PRODUCERS_PER_PARTITION_MAX {
            self.evict_least_recent();
        }
    }

    /// Every producer with state, by producer id (DescribeProducers).
    pub fn active(&self) -> Vec<ActiveProducer> {
        let mut active: Vec<ActiveProducer> = self
            .producers
            .iter()
            .filter_map(|(id, entry)| {
                let last = entry.batches.back()?;
                Some(ActiveProducer {
                    producer_id: *id,
                    producer_epoch: entry.epoch,
                    last_sequence: last.last_sequence,
                    last_timestamp: entry.last_timestamp,
                })
            })
            .collect();
        active.sort_by_key(|producer| producer.producer_id);
        active
    }

    fn evict_least_recent(&mut self) {
        if let Some(oldest) = self.producers.iter().min_by_key(|(_, e)| e.last_touch).map(|(id, _)| *id) {
            self.producers.remove(&oldest);
        }
    }
}

/// `sequence + delta` with Kafka's wrap from `i32::MAX` to 0.
fn wrapping_sequence(sequence: i32, delta: i32) -> i32 {
    let sum = i64::from(sequence) + i64::from(delta);
    (sum % (i64::from(i32::MAX) + 1)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(producer_id: i64, producer_epoch: i16, base_sequence: i32, records: i32) -> ProducerBatch {
        ProducerBatch { producer_id, producer_epoch, base_sequence, last_offset_delta: records - 1, max_timestamp: 0 }
    }

    #[test]
    fn in_order_batches_append_and_gaps_are_refused() {
        let mut states = ProducerStates::default();
        let first = batch(7, 0, 0, 3);
        assert_eq!(states.check(&first), SequenceCheck::Append);
        states.record(&first, 100, 102);
        assert_eq!(states.check(&batch(7, 0, 3, 2)), SequenceCheck::Append);
        assert_eq!(states.check(&batch(7, 0, 5, 1)), SequenceCheck::OutOfOrder { expected: 3 });
        assert_eq!(states.check(&batch(7, 0, 2, 1)), SequenceCheck::OutOfOrder { expected: 3 });
    }

    #[test]
    fn the_last_five_batches_are_duplicates_with_their_original_offsets() {
        let mut states = ProducerStates::default();
        for i in 0..6 {
            let b = batch(1, 0, i * 10, 10);
            assert_eq!(states.check(&b), SequenceCheck::Append, "batch {i}");
            states.record(&b, i64::from(i) * 10, i64::from(i) * 10 + 9);
        }
        for i in 1..6 {
            assert_eq!(
                states.check(&batch(1, 0, i * 10, 10)),
                SequenceCheck::Duplicate { first_offset: i64::from(i) * 10, last_offset: i64::from(i) * 10 + 9 }
            );
        }
        // The sixth-newest is forgotten: it is no longer a duplicate, just out of order.
        assert_eq!(states.check(&batch(1, 0, 0, 10)), SequenceCheck::OutOfOrder { expected: 60 });
    }

    #[test]
    fn epochs_fence_old_producers_and_a_new_epoch_starts_at_zero() {
        let mut states = ProducerStates::default();
        states.record(&batch(1, 3, 0, 1), 0, 0);
        assert_eq!(states.check(&batch(1, 2, 1, 1)), SequenceCheck::FencedEpoch { current: 3 });
        assert_eq!(states.check(&batch(1, 4, 5, 1)), SequenceCheck::OutOfOrder { expected: 0 });
        assert_eq!(states.check(&batch(1, 4, 0, 1)), SequenceCheck::Append);
        states.record(&batch(1, 4, 0, 1), 1, 1);
        assert_eq!(states.check(&batch(1, 4, 1, 1)), SequenceCheck::Append);
    }

    #[test]
    fn unknown_producers_and_plain_batches_append_at_any_sequence() {
        let states = ProducerStates::default();
        assert_eq!(states.check(&batch(9, 0, 42, 1)), SequenceCheck::Append);
        assert_eq!(states.check(&batch(NO_PRODUCER_ID, -1, -1, 5)), SequenceCheck::Append);
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        let mut states = ProducerStates::default();
        let b = batch(1, 0, i32::MAX - 1, 2);
        assert_eq!(b.last_sequence(), i32::MAX);
        states.record(&b, 0, 1);
        assert_eq!(states.check(&batch(1, 0, 0, 1)), SequenceCheck::Append);
        let wrapping = batch(2, 0, i32::MAX, 2);
        assert_eq!(wrapping.last_sequence(), 0);
    }

    #[test]
    fn the_least_recently_used_producer_is_evicted_past_the_limit() {
        let mut states = ProducerStates::default();
        for id in 0..=PRODUCERS_PER_PARTITION_MAX as i64 {
            states.record(&batch(id, 0, 0, 1), id, id);
        }
        assert_eq!(states.len(), PRODUCERS_PER_PARTITION_MAX);
        // Producer 0 was forgotten: any sequence is accepted again.
        assert_eq!(states.check(&batch(0, 0, 77, 1)), SequenceCheck::Append);
        assert_eq!(states.check(&batch(1, 0, 0, 1)), SequenceCheck::Duplicate { first_offset: 1, last_offset: 1 });
    }

    /// DescribeProducers' view: one entry per producer, by id, with the epoch, the last
    /// record's sequence and the last batch's max timestamp; a new epoch starts over.
    #[test]
    fn active_producers_report_their_last_batch() {
        let mut states = ProducerStates::default();
        states.record(&ProducerBatch { max_timestamp: 100, ..batch(9, 0, 0, 3) }, 0, 2);
        states.record(&ProducerBatch { max_timestamp: 250, ..batch(9, 0, 3, 2) }, 3, 4);
        states.record(&ProducerBatch { max_timestamp: 120, ..batch(4, 1, 0, 1) }, 5, 5);
        states.record(&batch(NO_PRODUCER_ID, 0, -1, 1), 6, 6);
        let active = |states: &ProducerStates| {
            states
                .active()
                .iter()
                .map(|p| (p.producer_id, p.producer_epoch, p.last_sequence, p.last_timestamp))
                .collect::<Vec<_>>()
        };
        assert_eq!(active(&states), vec![(4, 1, 0, 120), (9, 0, 4, 250)]);
        states.record(&ProducerBatch { max_timestamp: 300, ..batch(9, 1, 0, 1) }, 7, 7);
        assert_eq!(active(&states), vec![(4, 1, 0, 120), (9, 1, 0, 300)]);
    }
}
