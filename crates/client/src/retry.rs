//! Retry, then dead-letter: the pattern message-queue users expect.
//!
//! [`DeadLetterHandler::process`] calls the application's handler for a record. If the handler
//! fails, it waits with exponential backoff (with jitter) and calls it again, up to
//! `attempts_max` calls in all. If every call fails, it publishes the record — same key, value
//! and headers — to the dead-letter topic (default `<topic>.dlq`) with these headers added:
//!
//! | header | value |
//! |---|---|
//! | [`HEADER_ERROR`] `sluice.dlq.error` | the last error, as text |
//! | [`HEADER_ORIGINAL_TOPIC`] `sluice.dlq.original.topic` | the record's topic |
//! | [`HEADER_ORIGINAL_PARTITION`] `sluice.dlq.original.partition` | its partition, decimal |
//! | [`HEADER_ORIGINAL_OFFSET`] `sluice.dlq.original.offset` | its offset, decimal |
//! | [`HEADER_ORIGINAL_TIMESTAMP`] `sluice.dlq.original.timestamp` | its timestamp (ms), decimal |
//! | [`HEADER_ATTEMPTS`] `sluice.dlq.attempts` | how many times the handler was called, decimal |
//!
//! and waits until the dead-letter record is acknowledged (the producer's acks; use acks=all
//! for durability). Only then does `process` return: the record is either handled or safely
//! dead-lettered.
//!
//! ## Delivery semantics: at least once
//!
//! A record may reach the handler more than once: when a call fails after doing part of its
//! work (the retry repeats it), and when the process stops after the handler succeeded but
//! before the application recorded its progress (the record is consumed again on restart).
//! A record may also be dead-lettered twice if the process stops between the dead-letter
//! acknowledgement and the recorded progress. Nothing is lost as long as progress is recorded
//! only after `process` returns `Ok`.
//!
//! Make handlers idempotent: key the side effect by the record's identity (topic, partition,
//! offset) or by a business id carried in the record — an upsert instead of an insert, a
//! unique constraint that turns the second write into a no-op, or a "processed" table checked
//! and written in the same transaction as the effect.
//!
//! ## Committing progress
//!
//! Offsets are committed only after success or dead-lettering.
//! [`DeadLetterHandler::process_and_commit`] processes what `poll` returned and commits, through
//! the consumer's group, the next offset per partition that is safe (every record before it
//! handled or dead-lettered). If a dead letter cannot be published it commits the progress
//! before that record, moves the consumer back to the first unprocessed record of each
//! partition (so the next `poll` delivers it again and no auto-commit passes it), and returns
//! the error. [`DeadLetterHandler::process_batch`] does the same processing without committing
//! and returns the safe offsets, for applications that keep their progress elsewhere.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use crate::backoff::Backoff;
use crate::consumer::{Consumer, ConsumerRecord, SeekTo, TopicPartition};
use crate::error::{ClientError, Result};
use crate::producer::{Producer, ProducerRecord, RecordMetadata};

/// Suffix of the default dead-letter topic.
pub const DEAD_LETTER_SUFFIX: &str = ".dlq";
/// Header: the handler's last error.
pub const HEADER_ERROR: &str = "sluice.dlq.error";
/// Header: the original topic.
pub const HEADER_ORIGINAL_TOPIC: &str = "sluice.dlq.original.topic";
/// Header: the original partition.
pub const HEADER_ORIGINAL_PARTITION: &str = "sluice.dlq.original.partition";
/// Header: the original offset.
pub const HEADER_ORIGINAL_OFFSET: &str = "sluice.dlq.original.offset";
/// Header: the original timestamp.
pub const HEADER_ORIGINAL_TIMESTAMP: &str = "sluice.dlq.original.timestamp";
/// Header: handler calls made.
pub const HEADER_ATTEMPTS: &str = "sluice.dlq.attempts";
/// Prefix of every header this helper adds (an original header with it is replaced).
pub const HEADER_PREFIX: &str = "sluice.dlq.";
/// Longest error text put in [`HEADER_ERROR`], in bytes (longer text is cut at a character
/// boundary): a handler error must not make the dead-letter record exceed the request limit.
pub const ERROR_HEADER_BYTES_MAX: usize = 4096;

/// How often to retry and where dead letters go.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Handler calls per record before it is dead-lettered (at least 1).
    pub attempts_max: u32,
    /// Waits between calls.
    pub backoff: Backoff,
    /// Dead-letter topic; `<topic>.dlq` when `None`. It must exist.
    pub dead_letter_topic: Option<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts_max: 3,
            backoff: Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(10) },
            dead_letter_topic: None,
        }
    }
}

/// What happened to a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler succeeded on call number `attempts`.
    Handled {
        /// Calls made.
        attempts: u32,
    },
    /// Every call failed; the record is in the dead-letter topic.
    DeadLettered {
        /// Calls made.
        attempts: u32,
        /// The last error.
        error: String,
        /// Where the dead letter landed.
        dead_letter: RecordMetadata,
    },
}

/// Runs a handler per record with retries and a dead-letter topic (see the module docs).
#[derive(Debug, Clone)]
pub struct DeadLetterHandler {
    producer: Producer,
    policy: RetryPolicy,
}

impl DeadLetterHandler {
    /// A helper that publishes dead letters with `producer`.
    pub fn new(producer: Producer, policy: RetryPolicy) -> Result<DeadLetterHandler> {
        if policy.attempts_max == 0 {
            return Err(ClientError::InvalidConfig { reason: "attempts_max must be at least 1".to_string() });
        }
        Ok(DeadLetterHandler { producer, policy })
    }

    /// The dead-letter topic for records of `topic`.
    pub fn dead_letter_topic(&self, topic: &str) -> String {
        self.policy.dead_letter_topic.clone().unwrap_or_else(|| format!("{topic}{DEAD_LETTER_SUFFIX}"))
    }

    /// Calls `handler(record, attempt)` (attempt counts from 1) until it succeeds or
    /// `attempts_max` calls failed, then dead-letters the record. `Err` only when the dead
    /// letter could not be published: then the record is neither handled nor dead-lettered and
    /// progress must not be recorded past it.
    pub async fn process<F, Fut, E>(&self, record: &ConsumerRecord, mut handler: F) -> Result<Outcome>
    where
        F: FnMut(&ConsumerRecord, u32) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
        E: Display,
    {
        let mut last_error = String::new();
        for attempt in 1..=self.policy.attempts_max {
            match handler(record, attempt).await {
                Ok(()) => return Ok(Outcome::Handled { attempts: attempt }),
                Err(error) => {
                    last_error = error.to_string();
                    tracing::debug!(topic = %record.topic, partition = record.partition, offset = record.offset, attempt, error = %last_error, "handler failed");
                    if attempt < self.policy.attempts_max {
                        tokio::time::sleep(self.policy.backoff.delay(attempt - 1)).await;
                    }
                }
            }
        }
        let attempts = self.policy.attempts_max;
        let dead_letter = self.publish(record, attempts, &last_error).await?;
        tracing::info!(topic = %record.topic, partition = record.partition, offset = record.offset, dead_letter_offset = dead_letter.offset, "record dead-lettered");
        Ok(Outcome::DeadLettered { attempts, error: last_error, dead_letter })
    }

    /// Processes `records` in order (as `poll` returned them) and returns each outcome, plus
    /// the next offset per partition that is safe to record as progress. Stops at the first
    /// record that could not be dead-lettered (its error is returned with what was done).
    pub async fn process_batch<F, Fut, E>(
        &self,
        records: &[ConsumerRecord],
        mut handler: F,
    ) -> (Vec<Outcome>, BTreeMap<TopicPartition, i64>, Result<()>)
    where
        F: FnMut(&ConsumerRecord, u32) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
        E: Display,
    {
        let mut outcomes = Vec::with_capacity(records.len());
        let mut progress = BTreeMap::new();
        for record in records {
            match self.process(record, &mut handler).await {
                Ok(outcome) => {
                    outcomes.push(outcome);
                    progress.insert(TopicPartition::new(&*record.topic, record.partition), record.offset + 1);
                }
                Err(error) => return (outcomes, progress, Err(error)),
            }
        }
        (outcomes, progress, Ok(()))
    }

    /// [`DeadLetterHandler::process_batch`], then commits the progress with
    /// [`Consumer::commit_offsets`] (the consumer's group: its generation when subscribed).
    /// Returns the outcomes and the committed offsets, or the first error — of processing
    /// (after committing what was done and rewinding the consumer to the first unprocessed
    /// record of each partition) or of the commit.
    pub async fn process_and_commit<F, Fut, E>(
        &self,
        consumer: &mut Consumer,
        records: &[ConsumerRecord],
        handler: F,
    ) -> (Vec<Outcome>, Result<BTreeMap<TopicPartition, i64>>)
    where
        F: FnMut(&ConsumerRecord, u32) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
        E: Display,
    {
        let (outcomes, progress, processed) = self.process_batch(records, handler).await;
        if processed.is_err() {
            rewind(consumer, &records[outcomes.len()..]).await;
        }
        let committed = consumer.commit_offsets(&progress).await;
        if let Err(error) = &committed {
            tracing::warn!(%error, partitions = progress.len(), "cannot commit the processed records");
        }
        let result = processed.and(committed).map(|()| progress);
        (outcomes, result)
    }

    async fn publish(&self, record: &ConsumerRecord, attempts: u32, error: &str) -> Result<RecordMetadata> {
        let mut headers: Vec<(String, Option<Bytes>)> =
            record.headers.iter().filter(|(key, _)| !key.starts_with(HEADER_PREFIX)).cloned().collect();
        let text = |value: String| Some(Bytes::from(value));
        headers.push((HEADER_ERROR.to_string(), text(truncate(error, ERROR_HEADER_BYTES_MAX).to_string())));
        headers.push((HEADER_ORIGINAL_TOPIC.to_string(), text(record.topic.to_string())));
        headers.push((HEADER_ORIGINAL_PARTITION.to_string(), text(record.partition.to_string())));
        headers.push((HEADER_ORIGINAL_OFFSET.to_string(), text(record.offset.to_string())));
        headers.push((HEADER_ORIGINAL_TIMESTAMP.to_string(), text(record.timestamp_ms.to_string())));
        headers.push((HEADER_ATTEMPTS.to_string(), text(attempts.to_string())));
        let dead_letter = ProducerRecord {
            topic: self.dead_letter_topic(&record.topic),
            partition: None,
            key: record.key.clone(),
            value: record.value.clone(),
            headers,
            timestamp_ms: None,
        };
        self.producer.send(dead_letter).await?.await
    }
}

/// Moves each partition of `unprocessed` back to its first record there.
async fn rewind(consumer: &mut Consumer, unprocessed: &[ConsumerRecord]) {
    let mut first: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for record in unprocessed {
        first.entry(TopicPartition::new(&*record.topic, record.partition)).or_insert(record.offset);
    }
    for (partition, offset) in first {
        if let Err(error) = consumer.seek(&partition, SeekTo::Offset(offset)).await {
            tracing::warn!(topic = %partition.topic, partition = partition.partition, offset, %error, "cannot rewind");
        }
    }
}

fn truncate(text: &str, bytes_max: usize) -> &str {
    if text.len() <= bytes_max {
        return text;
    }
    let mut end = bytes_max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_cuts_at_a_character_boundary() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("abcdef", 3), "abc");
    }
}
