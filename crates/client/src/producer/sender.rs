//! The producer's background task: drain due batches, send them to their leaders, and settle
//! each batch from the answer (complete, retry with backoff, or fail).
//!
//! One task loops over the accumulator; each Produce request runs on its own task so a slow
//! broker does not hold up others. Retriable failures (a dropped connection, a timeout,
//! NOT_LEADER_OR_FOLLOWER, ...) put the batch back with the *same encoded bytes* — the same
//! producer id, epoch and sequence — so the broker recognises a resend it already appended.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_proto::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use sluice_proto::kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use sluice_proto::records::{BatchOptions, ProducerIdentity};

use super::accumulator::{Accumulator, SealedBatch};
use super::{Acks, BATCH_OVERHEAD_BYTES};
use crate::admin::Admin;
use crate::cluster::{topic_name, Cluster};
use crate::error::ClientError;
use tokio::sync::oneshot;

/// Longest the sender sleeps with nothing due, so delivery timeouts are checked even when no
/// event wakes it.
const SENDER_IDLE_WAKE: Duration = Duration::from_millis(500);
/// Kafka's DUPLICATE_SEQUENCE_NUMBER: the broker already has this batch — a success.
const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
/// Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER: the broker expected an earlier sequence.
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
/// Kafka's MESSAGE_TOO_LARGE: the batch is over the topic's `max.message.bytes`.
const MESSAGE_TOO_LARGE: i16 = 10;

/// The sender loop; ends when the producer is dropped (the task is aborted).
pub(super) async fn run(cluster: Cluster, accumulator: Arc<Accumulator>) {
    let refreshing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Per broker, the turn of the request drained last: it fires once that request is
    // written. Each request waits for the turn of the one before it, so a broker's requests
    // reach its connection in drain order — the order of a partition's batches in flight.
    let mut turns: HashMap<i32, oneshot::Receiver<()>> = HashMap::new();
    loop {
        let now = Instant::now();
        let drained = accumulator.drain(now, |topic, partition| cluster.cached_leader(topic, partition));
        if drained.missing_leader && !refreshing.swap(true, std::sync::atomic::Ordering::AcqRel) {
            let (cluster, refreshing, accumulator) = (cluster.clone(), refreshing.clone(), accumulator.clone());
            tokio::spawn(async move {
                if let Err(error) = cluster.refresh(&[]).await {
                    tracing::debug!(%error, "metadata refresh for the producer failed");
                }
                tokio::time::sleep(cluster.config().backoff.initial).await;
                refreshing.store(false, std::sync::atomic::Ordering::Release);
                accumulator.wake.notify_one();
            });
        }
        for topic in drained.grow_limits_wanted {
            tokio::spawn(learn_message_bytes_max(cluster.clone(), accumulator.clone(), topic));
        }
        for (broker, batches) in requests(&cluster, &accumulator, drained.ready) {
            accumulator.request_started(broker);
            let (written, turn) = oneshot::channel();
            let previous = turns.insert(broker, turn);
            let order = Order { previous, written };
            tokio::spawn(send_request(cluster.clone(), accumulator.clone(), broker, batches, order));
        }
        if drained.more {
            // Another batch of a partition can go now, in a request of its own.
            tokio::task::yield_now().await;
            continue;
        }
        let sleep_until = drained.next_due.unwrap_or(now + SENDER_IDLE_WAKE).min(now + SENDER_IDLE_WAKE);
        tokio::select! {
            () = accumulator.wake.notified() => {}
            () = tokio::time::sleep_until(sleep_until.into()) => {}
        }
    }
}

/// Reads `topic`'s `max.message.bytes` (DescribeConfigs), so that its batches may grow up to
/// it. Until then, and for good if it cannot be read (no such config, an ACL refusing
/// DescribeConfigs), they stay at `batch.size`.
async fn learn_message_bytes_max(cluster: Cluster, accumulator: Arc<Accumulator>, topic: String) {
    let configs = Admin::new(cluster).describe_configs(&topic).await;
    let limit = match &configs {
        Ok(configs) => configs.get("max.message.bytes").and_then(|entry| entry.value.as_deref()?.parse::<usize>().ok()),
        Err(_) => None,
    };
    match (&configs, limit) {
        (_, Some(bytes)) => {
            tracing::debug!(topic, max_message_bytes = bytes, "batches may grow up to the topic's limit")
        }
        (Err(error), None) => {
            tracing::debug!(topic, %error, "topic's max.message.bytes unknown: batches stay at batch.size")
        }
        (Ok(_), None) => tracing::debug!(topic, "no max.message.bytes for the topic: batches stay at batch.size"),
    }
    accumulator.set_topic_message_bytes_max(&topic, limit);
}

/// Groups ready batches by leader into requests of at most `request_bytes_max`.
fn requests(cluster: &Cluster, accumulator: &Accumulator, ready: Vec<SealedBatch>) -> Vec<(i32, Vec<SealedBatch>)> {
    let mut requests: Vec<(i32, usize, Vec<SealedBatch>)> = Vec::new();
    for batch in ready {
        let Some(leader) = cluster.cached_leader(&batch.topic, batch.partition) else {
            accumulator.requeue(batch, Instant::now());
            continue;
        };
        let bytes = batch.bytes + BATCH_OVERHEAD_BYTES;
        let open = requests.iter_mut().find(|(broker, request_bytes, _)| {
            *broker == leader && request_bytes + bytes <= accumulator.config.request_bytes_max
        });
        match open {
            Some((_, request_bytes, batches)) => {
                *request_bytes += bytes;
                batches.push(batch);
            }
            None => requests.push((leader, bytes, vec![batch])),
        }
    }
    requests.into_iter().map(|(broker, _, batches)| (broker, batches)).collect()
}

fn encode(accumulator: &Accumulator, batch: &mut SealedBatch) -> Result<Bytes, ClientError> {
    if let Some(encoded) = &batch.encoded {
        return Ok(encoded.clone());
    }
    let producer = match accumulator.identity {
        Some((producer_id, producer_epoch)) => {
            ProducerIdentity { producer_id, producer_epoch, base_sequence: batch.base_sequence }
        }
        None => ProducerIdentity::NONE,
    };
    let options = BatchOptions { compression: accumulator.config.compression, producer, ..BatchOptions::default() };
    let builder = batch.builder.take().unwrap_or_default();
    let encoded = builder.finish(&options)?;
    batch.encoded = Some(encoded.clone());
    Ok(encoded)
}

/// A request's place in its broker's order: wait for `previous` (the request before it is
/// written, or gave up), then write, then fire `written` (dropping it fires it too).
struct Order {
    previous: Option<oneshot::Receiver<()>>,
    written: oneshot::Sender<()>,
}

async fn send_request(
    cluster: Cluster,
    accumulator: Arc<Accumulator>,
    broker: i32,
    batches: Vec<SealedBatch>,
    order: Order,
) {
    let mut sendable = Vec::with_capacity(batches.len());
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for mut batch in batches {
        match encode(&accumulator, &mut batch) {
            Ok(encoded) => {
                let data = PartitionProduceData::default().with_index(batch.partition).with_records(Some(encoded));
                match topics.iter_mut().find(|topic| topic.name.0.as_str() == batch.topic) {
                    Some(topic) => topic.partition_data.push(data),
                    None => topics.push(
                        TopicProduceData::default().with_name(topic_name(&batch.topic)).with_partition_data(vec![data]),
                    ),
                }
                sendable.push(batch);
            }
            Err(error) => accumulator.fail(batch, error),
        }
    }
    if !sendable.is_empty() {
        let acks = accumulator.config.acks;
        let timeout_ms = i32::try_from(cluster.config().request_timeout.as_millis()).unwrap_or(i32::MAX);
        let request =
            ProduceRequest::default().with_acks(acks.wire()).with_timeout_ms(timeout_ms).with_topic_data(topics);
        let answer = async {
            let Order { previous, written } = order;
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            let connection = cluster.connection(broker).await?;
            if acks == Acks::None {
                let sent = connection.send_only(&request).await;
                drop(written);
                return sent.map(|()| None);
            }
            let pending = connection.write_request(&request).await;
            drop(written);
            let answer = connection.read_answer::<ProduceRequest>(pending?, Duration::ZERO).await;
            answer.map(Some)
        }
        .await;
        settle(&cluster, &accumulator, sendable, answer);
    }
    accumulator.request_finished(broker);
}

fn settle(
    cluster: &Cluster,
    accumulator: &Accumulator,
    batches: Vec<SealedBatch>,
    answer: Result<Option<ProduceResponse>, ClientError>,
) {
    let response = match answer {
        Ok(Some(response)) => response,
        Ok(None) => {
            for batch in batches {
                accumulator.complete(batch, -1, -1);
            }
            return;
        }
        Err(error) => {
            if error.invalidates_metadata() {
                cluster.invalidate();
            }
            let shared = Arc::new(error);
            for batch in batches {
                retry_or_fail(accumulator, batch, ClientError::Delivery(shared.clone()));
            }
            return;
        }
    };
    for batch in batches {
        let answer = response
            .responses
            .iter()
            .filter(|topic| topic.name.0.as_str() == batch.topic)
            .flat_map(|topic| topic.partition_responses.iter())
            .find(|partition| partition.index == batch.partition);
        let Some(answer) = answer else {
            let reason = format!("no answer for {}-{}", batch.topic, batch.partition);
            retry_or_fail(accumulator, batch, ClientError::UnexpectedResponse { reason });
            continue;
        };
        if answer.error_code == 0 || answer.error_code == DUPLICATE_SEQUENCE_NUMBER {
            accumulator.complete(batch, answer.base_offset, answer.log_append_time_ms);
            continue;
        }
        if answer.error_code == OUT_OF_ORDER_SEQUENCE_NUMBER && accumulator.has_earlier_batch(&batch) {
            // An earlier batch of the partition failed and is being resent: this one follows it.
            let error = ClientError::UnexpectedResponse {
                reason: format!("{}-{}: sent before an earlier batch landed", batch.topic, batch.partition),
            };
            retry_or_fail(accumulator, batch, error);
            continue;
        }
        if answer.error_code == MESSAGE_TOO_LARGE {
            // Refused although batches grow only within the topic's limit (it was lowered
            // since, or the estimate was off): later batches of the topic stay at batch.size.
            accumulator.set_topic_message_bytes_max(&batch.topic, None);
        }
        let error = ClientError::kafka(
            answer.error_code,
            format!("produce to {}-{}", batch.topic, batch.partition),
            answer.error_message.as_ref().map(|m| m.to_string()),
        );
        if error.invalidates_metadata() {
            cluster.invalidate();
        }
        retry_or_fail(accumulator, batch, error);
    }
}

fn retry_or_fail(accumulator: &Accumulator, mut batch: SealedBatch, error: ClientError) {
    let config = &accumulator.config;
    batch.attempts += 1;
    let retry_at = Instant::now() + config.backoff_delay(batch.attempts - 1);
    let in_time = retry_at < batch.created + config.delivery_timeout;
    if error.is_retriable() && batch.attempts <= config.retries_max && in_time {
        tracing::debug!(topic = %batch.topic, partition = batch.partition, attempts = batch.attempts, %error, "retrying batch");
        accumulator.requeue(batch, retry_at);
    } else {
        accumulator.fail(batch, error);
    }
}
