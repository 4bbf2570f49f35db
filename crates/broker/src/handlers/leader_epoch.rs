//! OffsetForLeaderEpoch (KIP-101, KIP-320): for a leader epoch, the offset where it ended in
//! this leader's log. Followers use it to find where their log diverged; consumers (librdkafka,
//! the Java client) use it to detect that a leader change truncated data they had read.

use sluice_log::EpochEntry;
use sluice_proto::kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use sluice_proto::kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::broker::Broker;
use crate::handlers::{resolve, Lookup};
use crate::kafka_code;
use crate::partition::blocking;

/// Kafka's "no epoch" and "no offset" answer.
pub const UNDEFINED: (i32, i64) = (-1, -1);

/// Kafka's `LeaderEpochFileCache.endOffsetFor`, over the lineage `entries` (epoch → start
/// offset, both increasing) of a log ending at `log_end_offset` whose leader is in
/// `current_epoch`:
/// - the current epoch (or the latest in the lineage) ends at the log end;
/// - an epoch older than a later one ends where the next epoch starts, reported under the
///   largest epoch not above it (or itself, if it is older than every entry);
/// - an epoch newer than everything known, or `-1`, is undefined.
///
/// The current epoch counts even before its first batch, as on a Kafka leader, which writes
/// its epoch into the lineage when it takes over.
pub fn end_offset_for(entries: &[EpochEntry], current_epoch: i32, log_end_offset: i64, requested: i32) -> (i32, i64) {
    if requested < 0 {
        return UNDEFINED;
    }
    if requested == current_epoch || entries.last().is_some_and(|last| last.epoch == requested) {
        return (requested, log_end_offset);
    }
    let Some(higher) = entries.iter().find(|entry| entry.epoch > requested) else {
        return if requested < current_epoch { (requested, log_end_offset) } else { UNDEFINED };
    };
    match entries.iter().rev().find(|entry| entry.epoch <= requested) {
        Some(floor) => (floor.epoch, higher.start_offset),
        None => (requested, higher.start_offset),
    }
}

/// Answers OffsetForLeaderEpoch.
pub async fn handle(broker: &Broker, request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let view = broker.view();
    let mut lookups: Vec<Lookup<(i32, i32)>> = Vec::new();
    for (topic_slot, topic) in request.topics.iter().enumerate() {
        let name = topic.topic.0.as_str();
        for partition in &topic.partitions {
            lookups.push(Lookup {
                topic_slot,
                index: partition.partition,
                args: (partition.leader_epoch, partition.current_leader_epoch),
                resolved: resolve(broker, &view, name, partition.partition),
            });
        }
    }
    let answers = blocking(move || {
        Ok(lookups
            .into_iter()
            .map(|lookup| {
                let (epoch, current_leader_epoch) = lookup.args;
                let (topic_slot, resolved) = (lookup.topic_slot, lookup.resolved);
                let base = EpochEndOffset::default().with_partition(lookup.index);
                let found = resolved.and_then(|p| {
                    p.end_offset_for_epoch(epoch, current_leader_epoch).map_err(|e| e.kafka_error_code())
                });
                let answer = match found {
                    Ok((leader_epoch, end_offset)) => base
                        .with_error_code(kafka_code::NONE)
                        .with_leader_epoch(leader_epoch)
                        .with_end_offset(end_offset),
                    Err(code) => base.with_error_code(code).with_leader_epoch(UNDEFINED.0).with_end_offset(UNDEFINED.1),
                };
                (topic_slot, answer)
            })
            .collect::<Vec<_>>())
    })
    .await
    .unwrap_or_default();
    let mut topics: Vec<OffsetForLeaderTopicResult> = request
        .topics
        .iter()
        .map(|topic| OffsetForLeaderTopicResult::default().with_topic(topic.topic.clone()))
        .collect();
    for (topic_slot, answer) in answers {
        topics[topic_slot].partitions.push(answer);
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lineage(entries: &[(i32, i64)]) -> Vec<EpochEntry> {
        entries.iter().map(|(epoch, start_offset)| EpochEntry { epoch: *epoch, start_offset: *start_offset }).collect()
    }

    #[test]
    fn epochs_end_where_the_next_one_starts_and_the_current_at_the_log_end() {
        let entries = lineage(&[(0, 0), (2, 100), (5, 250)]);
        assert_eq!(end_offset_for(&entries, 5, 300, 5), (5, 300));
        assert_eq!(end_offset_for(&entries, 5, 300, 2), (2, 250));
        assert_eq!(end_offset_for(&entries, 5, 300, 0), (0, 100));
        // Epochs 1, 3 and 4 never appended: reported under the epoch before them.
        assert_eq!(end_offset_for(&entries, 5, 300, 1), (0, 100));
        assert_eq!(end_offset_for(&entries, 5, 300, 4), (2, 250));
    }

    #[test]
    fn unknown_epochs_are_undefined_and_the_current_one_is_known_before_its_first_batch() {
        let entries = lineage(&[(2, 100)]);
        assert_eq!(end_offset_for(&entries, 3, 120, 9), UNDEFINED);
        assert_eq!(end_offset_for(&entries, 3, 120, -1), UNDEFINED);
        assert_eq!(end_offset_for(&entries, 3, 120, 3), (3, 120));
        assert_eq!(end_offset_for(&entries, 3, 120, 1), (1, 100));
        assert_eq!(end_offset_for(&[], 0, 0, 0), (0, 0));
    }
}
