//! Produce: append each partition's record batches to its log as leader.
//!
//! Per partition, in request order: look the partition up in the metadata (unknown topic,
//! invalid name, unknown partition), find the local leader replica (NOT_LEADER_OR_FOLLOWER),
//! then append on the blocking pool, each partition on its own task (a partition listed twice
//! in one request is INVALID_REQUEST, so no partition races itself). Record validation (every
//! record, Kafka's `LogValidator` rules, see `sluice_log::validate`; refused records are named
//! in v8+ `record_errors`), producer-sequence check, batch validation (CRC-32C, size, framing)
//! and offset assignment happen in the partition and the log, and nothing is appended when any
//! of them fails. acks=all then waits for the high watermark to pass the batch (with one
//! replica that is immediate), at most the request's timeout.
//!
//! acks=0 gets no response; if a partition failed, the connection is closed instead, as Kafka
//! does, so the client notices.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_proto::kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use sluice_proto::kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use crate::broker::Broker;
use crate::error::PartitionError;
use crate::handlers::{find_partition, since, str_bytes};
use crate::kafka_code;
use crate::partition::{blocking, Appended, Partition};

/// Longest an acks=all produce waits for the high watermark, in milliseconds, whatever the
/// request's timeout says (Kafka's `request.timeout.ms` default is 30 s).
pub const PRODUCE_ACKS_WAIT_MS_MAX: u64 = 30_000;

/// One partition's outcome, before it is put in the response.
enum Outcome {
    Done(Appended),
    Failed(i16, Option<String>),
    /// Records refused by validation, with the offending records (Produce v8+ `record_errors`).
    Refused(i16, String, Vec<BatchIndexAndErrorMessage>),
}

/// A partition to append to, with its records.
struct Work {
    partition: Arc<Partition>,
    records: Bytes,
    slot: (usize, usize),
}

/// The answer to a produce request; `None` for acks=0 when every partition succeeded, `Err`
/// (close the connection) for acks=0 when one failed.
pub async fn handle(broker: &Broker, version: i16, request: ProduceRequest) -> Result<Option<ProduceResponse>, String> {
    let acks = request.acks;
    let view = broker.view();
    let mut outcomes: Vec<Vec<Outcome>> = Vec::with_capacity(request.topic_data.len());
    let mut work = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (topic_slot, topic) in request.topic_data.iter().enumerate() {
        let name = topic.name.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (partition_slot, data) in topic.partition_data.iter().enumerate() {
            let failed = |code| Outcome::Failed(code, None);
            let outcome = if request.transactional_id.is_some() {
                Outcome::Failed(
                    kafka_code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                    Some("transactions are not supported".into()),
                )
            } else if !matches!(acks, -1..=1) {
                failed(kafka_code::INVALID_REQUIRED_ACKS)
            } else if let Err(code) = find_partition(&view, name, data.index) {
                failed(code)
            } else if name == crate::coordinator::OFFSETS_TOPIC {
                // Only the group coordinator writes it (Kafka: "cannot append to internal topic").
                Outcome::Failed(kafka_code::INVALID_TOPIC_EXCEPTION, Some("cannot append to an internal topic".into()))
            } else if !seen.insert((name, data.index)) {
                // Appends run in parallel per partition; a partition twice would race itself.
                Outcome::Failed(kafka_code::INVALID_REQUEST, Some("partition listed twice".into()))
            } else {
                match (broker.partitions.get(name, data.index), &data.records) {
                    (_, None) => Outcome::Failed(kafka_code::INVALID_REQUEST, Some("no records".into())),
                    (_, Some(records)) if records.is_empty() => {
                        Outcome::Failed(kafka_code::INVALID_REQUEST, Some("empty records".into()))
                    }
                    (None, _) => failed(kafka_code::NOT_LEADER_OR_FOLLOWER),
                    (Some(partition), Some(records)) => {
                        work.push(Work { partition, records: records.clone(), slot: (topic_slot, partition_slot) });
                        // Replaced below once appended.
                        failed(kafka_code::UNKNOWN_SERVER_ERROR)
                    }
                }
            };
            partitions.push(outcome);
        }
        outcomes.push(partitions);
    }
    let acks_all = acks == -1;
    let appended = append_all(work, acks_all).await;
    let wait = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0).min(PRODUCE_ACKS_WAIT_MS_MAX));
    for ((topic_slot, partition_slot), partition, result) in appended {
        if let Ok(appended) = &result {
            if !appended.duplicate {
                let bytes = request.topic_data[topic_slot].partition_data[partition_slot]
                    .records
                    .as_ref()
                    .map_or(0, |r| r.len());
                let records = u64::try_from(appended.last_offset - appended.base_offset + 1).unwrap_or(0);
                broker.metrics.produced(&partition.topic, records, bytes as u64);
            }
        }
        let outcome = match result {
            Ok(appended) if acks_all => {
                match crate::request_scope::waiting(partition.wait_for_high_watermark(appended.last_offset + 1, wait))
                    .await
                {
                    Ok(()) => Outcome::Done(appended),
                    Err(code) => Outcome::Failed(code, None),
                }
            }
            Ok(appended) => Outcome::Done(appended),
            Err(error) => {
                tracing::debug!(topic = partition.topic, partition = partition.index, %error, "produce refused");
                refused(error)
            }
        };
        outcomes[topic_slot][partition_slot] = outcome;
    }
    for outcome in outcomes.iter().flatten() {
        if let Outcome::Failed(code, _) | Outcome::Refused(code, _, _) = outcome {
            broker.metrics.produce_refused(*code);
        }
        if let Outcome::Failed(code, message) = outcome {
            crate::request_scope::server_error(*code, &message.as_deref().unwrap_or("produce failed"));
        }
    }
    if acks == 0 {
        let failed = outcomes.iter().flatten().find_map(|outcome| match outcome {
            Outcome::Failed(code, message) => Some(format!("acks=0 produce failed with error {code} ({message:?})")),
            Outcome::Refused(code, message, _) => Some(format!("acks=0 produce failed with error {code} ({message})")),
            Outcome::Done(_) => None,
        });
        return match failed {
            Some(reason) => Err(reason),
            None => Ok(None),
        };
    }
    Ok(Some(response(version, &request, outcomes)))
}

/// The outcome of a refused append: record-level refusals carry their records.
fn refused(error: PartitionError) -> Outcome {
    let code = error.kafka_error_code();
    match error {
        PartitionError::Log(sluice_log::LogError::RecordsRefused { reason, record_errors, .. }) => {
            let record_errors = record_errors
                .into_iter()
                .map(|record| {
                    BatchIndexAndErrorMessage::default()
                        .with_batch_index(record.record_index)
                        .with_batch_index_error_message(Some(str_bytes(record.message)))
                })
                .collect();
            Outcome::Refused(code, reason, record_errors)
        }
        error => Outcome::Failed(code, Some(error.to_string())),
    }
}

/// Appends every partition's records on the blocking pool: the partitions that may fsync on
/// append (`flush.messages` / `flush.ms`) each on a task of their own, so their syncs run in
/// parallel (under `flush.messages=1` a task waits for its group-commit sync outside the
/// partition's lock, so concurrent requests' appends to one partition share it); all the others together on one task, since their appends only copy into the page
/// cache and a hand-off to the pool per partition costs more (two thread wake-ups each) than
/// the copy.
async fn append_all(
    work: Vec<Work>,
    acks_all: bool,
) -> Vec<((usize, usize), Arc<Partition>, Result<Appended, PartitionError>)> {
    fn append(item: &Work, acks_all: bool) -> Result<Appended, PartitionError> {
        // The request's bytes are shared with the connection's frame; the log rewrites
        // offsets in place, so it gets its own copy.
        let mut records = item.records.to_vec();
        item.partition.append(&mut records, acks_all)
    }
    let (syncing, copying): (Vec<Work>, Vec<Work>) =
        work.into_iter().partition(|item| item.partition.syncs_on_append());
    let each = syncing.into_iter().map(|item| async move {
        let (slot, partition) = (item.slot, Arc::clone(&item.partition));
        let result = blocking(move || append(&item, acks_all)).await;
        vec![(slot, partition, result)]
    });
    let together = async move {
        if copying.is_empty() {
            return Vec::new();
        }
        let slots: Vec<((usize, usize), Arc<Partition>)> =
            copying.iter().map(|item| (item.slot, Arc::clone(&item.partition))).collect();
        // A roll (every `segment.bytes`) syncs the directory: disk work stays off the async
        // workers even here.
        let results = blocking(move || Ok(copying.iter().map(|item| append(item, acks_all)).collect::<Vec<_>>()))
            .await
            .unwrap_or_else(|error| {
                let error = error.to_string();
                slots.iter().map(|_| Err(PartitionError::Task(error.clone()))).collect()
            });
        slots.into_iter().zip(results).map(|((slot, partition), result)| (slot, partition, result)).collect::<Vec<_>>()
    };
    let (mut results, together) = futures::future::join(futures::future::join_all(each), together).await;
    results.push(together);
    results.into_iter().flatten().collect()
}

fn response(version: i16, request: &ProduceRequest, outcomes: Vec<Vec<Outcome>>) -> ProduceResponse {
    let responses = request
        .topic_data
        .iter()
        .zip(outcomes)
        .map(|(topic, outcomes)| {
            let partition_responses = topic
                .partition_data
                .iter()
                .zip(outcomes)
                .map(|(data, outcome)| {
                    let base = PartitionProduceResponse::default().with_index(data.index).with_log_append_time_ms(-1);
                    match outcome {
                        Outcome::Done(appended) => base
                            .with_log_append_time_ms(appended.log_append_time_ms)
                            .with_error_code(kafka_code::NONE)
                            .with_base_offset(appended.base_offset)
                            .with_log_start_offset(since(version, 5, appended.log_start_offset, -1)),
                        Outcome::Failed(code, message) => base
                            .with_error_code(code)
                            .with_base_offset(-1)
                            .with_log_start_offset(-1)
                            .with_error_message(since(version, 8, message.map(str_bytes), None)),
                        Outcome::Refused(code, message, record_errors) => base
                            .with_error_code(code)
                            .with_base_offset(-1)
                            .with_log_start_offset(-1)
                            .with_error_message(since(version, 8, Some(str_bytes(message)), None))
                            .with_record_errors(since(version, 8, record_errors, Vec::new())),
                    }
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partition_responses)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}
