//! Produce: append each partition's record batches to its log as leader.
//!
//! Two steps. [`append`]: per partition, in request order, look the partition up in the
//! metadata (unknown topic, invalid name, unknown partition), find the local leader replica
//! (NOT_LEADER_OR_FOLLOWER), then append on the blocking pool (a partition listed twice in one
//! request is INVALID_REQUEST). Record validation (every record,
//! Kafka's `LogValidator` rules, see `sluice_log::validate`; refused records are named in v8+
//! `record_errors`), producer-sequence check, batch validation (CRC-32C, size, framing) and
//! offset assignment happen in the partition and the log, and nothing is appended when any of
//! them fails. [`Settling::settle`]: each partition waits for its group-commit sync (under
//! `flush.messages=1`; the partitions in parallel) and, with acks=all, for the high watermark
//! to pass the batch (with one replica that is immediate), at most the request's timeout. The
//! connection appends its next produce requests while one settles (`Outcome::Deferred`).
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
use sluice_log::SyncWait;

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

/// Where a produce request stands once its batches are in the logs (see [`append`]).
#[derive(Debug)]
pub enum Appending {
    /// Nothing more to wait for: acks=0 (`None` when every partition succeeded, `Err` to
    /// close the connection when one failed).
    Done(Result<Option<ProduceResponse>, String>),
    /// The batches are appended; [`Settling::settle`] waits for what acknowledging them
    /// needs (their syncs, the followers) and builds the answer.
    Settling(Settling),
}

/// An appended produce request whose answer waits for syncs and followers. Its connection
/// may append its next produce requests meanwhile (their answers still go out in order), so
/// that one group-commit fsync covers several requests of one producer.
pub struct Settling {
    broker: Arc<Broker>,
    version: i16,
    request: ProduceRequest,
    outcomes: Vec<Vec<Outcome>>,
    appended: Vec<Pending>,
    acks_all: bool,
}

impl std::fmt::Debug for Settling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settling")
            .field("version", &self.version)
            .field("partitions", &self.appended.len())
            .field("acks_all", &self.acks_all)
            .finish()
    }
}

/// One partition's append, waiting to be settled.
type Pending = ((usize, usize), Arc<Partition>, Result<(Appended, SyncWait), PartitionError>);

/// Checks a produce request's partitions and appends their batches to the logs, without
/// waiting for syncs or followers — except for acks=0, which has no answer to wait with.
pub async fn append(broker: Arc<Broker>, version: i16, request: ProduceRequest) -> Appending {
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
                // One append per partition per request: a partition twice would be ambiguous.
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
    drop(view);
    let acks_all = acks == -1;
    let appended = append_all(work, acks_all).await;
    let settling = Settling { broker, version, request, outcomes, appended, acks_all };
    if acks != 0 {
        return Appending::Settling(settling);
    }
    // acks=0: the syncs still come first (a sync failure closes the connection).
    let (_, outcomes) = settling.settle_outcomes().await;
    let failed = outcomes.iter().flatten().find_map(|outcome| match outcome {
        Outcome::Failed(code, message) => Some(format!("acks=0 produce failed with error {code} ({message:?})")),
        Outcome::Refused(code, message, _) => Some(format!("acks=0 produce failed with error {code} ({message})")),
        Outcome::Done(_) => None,
    });
    Appending::Done(match failed {
        Some(reason) => Err(reason),
        None => Ok(None),
    })
}

impl Settling {
    /// Waits for each partition's sync and (acks=all) for the high watermark to pass its
    /// batches, at most the request's timeout, and builds the answer.
    pub async fn settle(self) -> ProduceResponse {
        let version = self.version;
        let (request, outcomes) = self.settle_outcomes().await;
        response(version, &request, outcomes)
    }

    /// The outcome of every partition once settled, with the request the answer is built from.
    async fn settle_outcomes(self) -> (ProduceRequest, Vec<Vec<Outcome>>) {
        let Settling { broker, request, mut outcomes, appended, acks_all, .. } = self;
        let wait = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0).min(PRODUCE_ACKS_WAIT_MS_MAX));
        // Every partition waits at once: their syncs run in parallel, each on the blocking pool.
        let settled = futures::future::join_all(appended.into_iter().map(|(slot, partition, result)| async move {
            let outcome = settle_one(&partition, result, acks_all, wait).await;
            (slot, partition, outcome)
        }))
        .await;
        for ((topic_slot, partition_slot), partition, outcome) in settled {
            // Counted once acknowledged (synced, and with acks=all replicated), not appended.
            if let Outcome::Done(appended) = &outcome {
                if !appended.duplicate {
                    let bytes = request.topic_data[topic_slot].partition_data[partition_slot]
                        .records
                        .as_ref()
                        .map_or(0, |r| r.len());
                    let records = u64::try_from(appended.last_offset - appended.base_offset + 1).unwrap_or(0);
                    broker.metrics.produced(&partition.topic, records, bytes as u64);
                }
            }
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
        (request, outcomes)
    }
}

/// One partition's outcome: its append's, then (if the append needs one) its sync's, then
/// with acks=all the wait for its high watermark.
async fn settle_one(
    partition: &Arc<Partition>,
    appended: Result<(Appended, SyncWait), PartitionError>,
    acks_all: bool,
    wait: Duration,
) -> Outcome {
    let refused_here = |error: PartitionError| {
        tracing::debug!(topic = partition.topic, partition = partition.index, %error, "produce refused");
        refused(error)
    };
    let (appended, sync) = match appended {
        Ok(appended) => appended,
        Err(error) => return refused_here(error),
    };
    if sync.is_pending() {
        let syncing = Arc::clone(partition);
        if let Err(error) = blocking(move || syncing.finish_sync(sync)).await {
            return refused_here(error);
        }
    }
    if acks_all {
        let reached = partition.wait_for_high_watermark(appended.last_offset + 1, wait);
        if let Err(code) = crate::request_scope::waiting(reached).await {
            return Outcome::Failed(code, None);
        }
    }
    Outcome::Done(appended)
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

/// Appends every partition's records, without waiting for their group-commit syncs, on the
/// blocking pool: the partitions whose appends may sync inline (`flush.ms`: a due interval
/// sync happens under the partition's lock) each on a task of their own, so those syncs
/// overlap; all the others together on one task, since their appends only validate and copy
/// into the page cache (a roll syncs the sealed segment and the directory, disk work that
/// stays off the async workers too) and a hand-off to the pool per partition costs more (two
/// thread wake-ups each) than the copy. `flush.messages=1` waits come later, in
/// [`Settling::settle`], every partition at once.
async fn append_all(work: Vec<Work>, acks_all: bool) -> Vec<Pending> {
    fn append(item: &Work, acks_all: bool) -> Result<(Appended, SyncWait), PartitionError> {
        // The request's bytes are shared with the connection's frame; the log rewrites
        // offsets in place, so it gets its own copy.
        let mut records = item.records.to_vec();
        item.partition.append_unsynced(&mut records, acks_all)
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
