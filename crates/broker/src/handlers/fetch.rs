//! Fetch: whole record batches straight from the segment files, with Kafka's long poll.
//!
//! A fetch reads every requested partition (up to its high watermark). If that gathered at
//! least `min_bytes`, or a partition has an error, or `max_wait_ms` has passed, it answers;
//! otherwise it waits until the high watermark of one of its partitions changes (a `watch`
//! channel the partition signals on every append, leadership change and close) or the deadline
//! passes, and reads again. Nothing sleeps or spins. The wait holds only this connection (its
//! later requests queue behind it, as in Kafka); other connections are served meanwhile.
//!
//! Size limits (KIP-74): a partition returns at most `partition_max_bytes` and the response at
//! most `max_bytes` (capped by [`FETCH_RESPONSE_BYTES_MAX`]), except that the first partition
//! with data returns at least one whole batch so a consumer never stalls on a large batch.
//! Batch bytes are copied from the log's file regions with `pread` into the response as they
//! are on disk — never decoded or re-encoded.
//!
//! A fetch with a replica id (`replica_id >= 0`) is a follower copying the partitions it
//! replicates (Kafka's ReplicaFetcherThread; ours is `crate::replication`): each partition is
//! read up to its log end rather than its high watermark, the follower's fetch offset counts
//! as its progress (which may advance the high watermark and the ISR), a follower whose last
//! epoch diverges from this log gets the diverging epoch instead of data (KIP-320), and the
//! wait is for the log end to move rather than the high watermark.
//!
//! Errors that send a client to another leader (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH)
//! carry the leader and epoch this broker knows (KIP-951 `CurrentLeader`), so the client can
//! go there without a metadata round trip.
//!
//! Fetch from the closest replica (KIP-392). A consumer's Fetch v11+ names its rack
//! (`client.rack`). When this broker leads a partition, is not on that rack, and an in-sync
//! follower there already has the fetch offset, the partition's answer is no records and
//! `preferred_read_replica` = that follower (Kafka's `RackAwareReplicaSelector`); the response
//! goes out at once, and the client fetches from the follower from then on. A follower serves
//! a consumer's Fetch v11+ (with or without a rack) up to the high watermark it knows, never
//! above it ([`Partition::read`]); Fetch v10 and older are served by the leader only, as in
//! Kafka.
//!
//! The replication throttle ([`crate::replication::throttle`]): a follower's fetch of a
//! partition whose copy to it is throttled here gets no records while this broker's leader
//! side is over `leader.replication.throttled.rate` (its fetch offset still counts as its
//! progress); the bytes it is sent count against that rate.
//!
//! Fetch sessions (KIP-227) are not kept: a request with a session id gets
//! FETCH_SESSION_ID_NOT_FOUND, and every response says session 0, which tells clients to send
//! full fetches.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use sluice_meta::{BrokerId, MetadataView};
use sluice_proto::kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
};
use sluice_proto::kafka_protocol::messages::{FetchRequest, FetchResponse};
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::broker::Broker;
use crate::handlers::{resolve, since};
use crate::kafka_code;
use crate::partition::partition::read_regions_intact;
use crate::partition::{blocking, Partition, ReadOutcome};
use crate::replication::throttle::{ReplicationThrottle, Side};

/// Most bytes of record data one fetch response carries (Kafka's broker `fetch.max.bytes`,
/// 55 MiB). Bounds the memory one fetch holds; a client asking for more gets this much.
pub const FETCH_RESPONSE_BYTES_MAX: u64 = 55 * 1024 * 1024;

/// Bytes of record data all fetch responses together may hold, from the read until the
/// response is written (4 maximal responses).
///
/// Why: each connection answers one request at a time, but with [`crate::config::CONNECTIONS_MAX`]
/// connections a fetch storm could otherwise hold thousands of 55 MiB responses. A fetch
/// reserves its `max_bytes` before reading and keeps what it read until written; it waits for
/// the budget like a client waits for a slow broker. The reservation is released while the
/// fetch long-polls. A response may exceed its reservation by one batch (the first batch is
/// always returned whole), which bounds the overshoot by `max.message.bytes` per fetch.
pub const FETCH_MEMORY_BYTES_MAX: usize = 4 * FETCH_RESPONSE_BYTES_MAX as usize;

const _: () = assert!(FETCH_RESPONSE_BYTES_MAX as usize <= FETCH_MEMORY_BYTES_MAX);
const _: () = assert!(FETCH_MEMORY_BYTES_MAX <= u32::MAX as usize);

/// Longest a fetch waits for `min_bytes`, in milliseconds, whatever it asks for. Clients use
/// 100–500 ms; a longer wait would only hold the connection past their request timeouts.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;

/// How soon a follower fetch whose copy the replication throttle held back reads again, in
/// milliseconds (its wait, `replica.fetch.wait.max.ms`, is 500 ms): the granularity at which a
/// throttled copy resumes once the leader's rate is below its cap.
pub const REPLICATION_THROTTLE_RECHECK_MS: u64 = 100;

/// One requested partition, resolved.
struct Target {
    slot: (usize, usize),
    fetch_offset: i64,
    partition_max_bytes: u64,
    current_leader_epoch: i32,
    last_fetched_epoch: i32,
    resolved: Result<Arc<Partition>, i16>,
    /// Consumer fetches with a rack (KIP-392): the live replicas on the consumer's rack, in
    /// replica order, when this broker is on another rack; else empty.
    on_client_rack: Vec<BrokerId>,
    /// Follower fetches: the copy to this follower is under the leader side's replication
    /// throttle.
    leader_throttled: bool,
    /// Follower fetches: the partition epoch when the fetch arrived. A later read pass under
    /// another one answers at once without counting the fetch as progress.
    arrived_partition_epoch: i32,
}

/// One partition's result of a read pass.
#[derive(Default)]
struct PartitionResult {
    error_code: i16,
    high_watermark: i64,
    log_start_offset: i64,
    records: Bytes,
    /// Follower fetches: the diverging epoch and its end offset here.
    diverging: Option<(i32, i64)>,
    /// Follower fetches: the follower should join or leave the ISR.
    isr_change_wanted: bool,
    /// The read found a damaged batch not reported before: the repair task should look.
    damage_found: bool,
    /// Consumer fetches (KIP-392): the follower to fetch from instead; no records then.
    preferred_read_replica: Option<BrokerId>,
}

/// Answers a fetch, waiting for data as the request allows. The permit holds the response's
/// share of [`FETCH_MEMORY_BYTES_MAX`] until the connection has written it.
pub async fn handle(
    broker: &Broker,
    version: i16,
    request: FetchRequest,
) -> (FetchResponse, Option<OwnedSemaphorePermit>) {
    if request.session_id != 0 {
        let response =
            FetchResponse::default().with_error_code(kafka_code::FETCH_SESSION_ID_NOT_FOUND).with_session_id(0);
        return (response, None);
    }
    let view = broker.view();
    // A replica id names a follower (versions up to 14 carry it in the request itself).
    let follower: Option<BrokerId> = (request.replica_id.0 >= 0).then_some(request.replica_id.0);
    // KIP-392 (Fetch v11+): a consumer's rack, when it names one.
    let client_rack = match (follower, version >= 11) {
        (None, true) => Some(request.rack_id.as_str()).filter(|rack| !rack.is_empty()),
        _ => None,
    };
    let leader_capped = follower.is_some() && broker.throttle.capped(Side::Leader);
    let mut targets = Vec::new();
    for (topic_slot, topic) in request.topics.iter().enumerate() {
        let name = topic.topic.0.as_str();
        for (partition_slot, fetch) in topic.partitions.iter().enumerate() {
            let resolved = resolve(broker, &view, name, fetch.partition);
            let arrived_partition_epoch = match (&resolved, follower) {
                (Ok(partition), Some(_)) => partition.partition_epoch(),
                _ => -1,
            };
            let on_client_rack = client_rack
                .map(|rack| replicas_on_rack(&view, name, fetch.partition, rack, broker.node_id))
                .unwrap_or_default();
            targets.push(Target {
                slot: (topic_slot, partition_slot),
                fetch_offset: fetch.fetch_offset,
                partition_max_bytes: u64::try_from(fetch.partition_max_bytes).unwrap_or(0),
                current_leader_epoch: fetch.current_leader_epoch,
                last_fetched_epoch: if version >= 12 { fetch.last_fetched_epoch } else { -1 },
                resolved,
                on_client_rack,
                leader_throttled: leader_capped
                    && follower.is_some_and(|f| ReplicationThrottle::leader_throttles(&view, name, fetch.partition, f)),
                arrived_partition_epoch,
            });
        }
    }
    let max_bytes = u64::try_from(request.max_bytes).unwrap_or(0).min(FETCH_RESPONSE_BYTES_MAX);
    let min_bytes = u64::try_from(request.min_bytes).unwrap_or(0);
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0).min(FETCH_WAIT_MS_MAX));
    let deadline = Instant::now() + wait;
    // Since v11 a consumer may read from a follower replica (KIP-392), as in Kafka.
    let follower_may_serve = follower.is_none() && version >= 11;
    let mut watches: Vec<watch::Receiver<i64>> = targets
        .iter()
        .filter_map(|t| t.resolved.as_ref().ok())
        .map(|p| if follower.is_some() { p.watch_log_end() } else { p.watch_high_watermark() })
        .collect();
    let targets = Arc::new(targets);
    loop {
        for receiver in &mut watches {
            receiver.borrow_and_update();
        }
        // max_bytes <= FETCH_RESPONSE_BYTES_MAX <= FETCH_MEMORY_BYTES_MAX: always grantable.
        let reserved = u32::try_from(max_bytes).unwrap_or(u32::MAX);
        let Ok(mut reservation) = Arc::clone(&broker.fetch_memory).acquire_many_owned(reserved).await else {
            // The semaphore is never closed.
            return (FetchResponse::default().with_error_code(kafka_code::UNKNOWN_SERVER_ERROR), None);
        };
        let held_back = leader_capped && broker.throttle.over_cap(Side::Leader);
        let reader = Reader { follower, follower_may_serve, held_back };
        let (results, bytes) = read_pass(Arc::clone(&targets), max_bytes, reader).await;
        // A partition sent to another replica is answered at once, like an error (Kafka too).
        let has_error = results
            .iter()
            .any(|r| r.error_code != kafka_code::NONE || r.diverging.is_some() || r.preferred_read_replica.is_some());
        for (target, result) in targets.iter().zip(&results) {
            if crate::request_scope::is_server_side(result.error_code) {
                let detail = match &target.resolved {
                    Ok(p) => format!("reading {}-{} failed (the log line before has the cause)", p.topic, p.index),
                    Err(_) => "reading failed".to_string(),
                };
                crate::request_scope::server_error(result.error_code, &detail);
            }
        }
        if bytes >= min_bytes || has_error || watches.is_empty() || Instant::now() >= deadline {
            if results.iter().any(|r| r.isr_change_wanted) {
                broker.isr_changes.notify_one();
            }
            if results.iter().any(|r| r.damage_found) {
                broker.storage_repairs.notify_one();
            }
            let mut throttled_bytes = 0;
            for (target, result) in targets.iter().zip(&results) {
                if let Ok(partition) = &target.resolved {
                    broker.metrics.fetched(&partition.topic, follower.is_some(), result.records.len() as u64);
                }
                if target.leader_throttled {
                    throttled_bytes += result.records.len() as u64;
                }
            }
            if throttled_bytes > 0 {
                broker.throttle.record(Side::Leader, throttled_bytes);
            }
            // Keep only what the response holds.
            let held = usize::try_from(bytes).unwrap_or(usize::MAX).min(reservation.num_permits());
            drop(reservation.split(reservation.num_permits() - held));
            return (response(version, &request, &view, &targets, results), Some(reservation));
        }
        drop(reservation);
        // A copy held back by the throttle is looked at again soon: the rate falls below the
        // cap long before the follower's wait ends, and waiting it out would undershoot the cap.
        let wake = match held_back && targets.iter().any(|t| t.leader_throttled) {
            true => deadline.min(Instant::now() + Duration::from_millis(REPLICATION_THROTTLE_RECHECK_MS)),
            false => deadline,
        };
        let changed = select_all(watches.iter_mut().map(|receiver| Box::pin(receiver.changed())));
        crate::request_scope::waiting(async {
            tokio::select! {
                _ = changed => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        })
        .await;
    }
}

/// Reads every target once; returns per-target results and total bytes. On the blocking pool
/// when there is file data to read; on the calling task when every partition is asked from its
/// upper bound (the log end for a follower, the high watermark for a consumer) or beyond and
/// none of them syncs on append: then the pass only checks positions and records a follower's
/// progress, in memory, under partition locks that no holder keeps across an fsync, and a
/// hand-off to the pool (two thread wake-ups) would cost more than the pass. A caught-up
/// follower's every other fetch is such a pass.
async fn read_pass(targets: Arc<Vec<Target>>, max_bytes: u64, reader: Reader) -> (Vec<PartitionResult>, u64) {
    if nothing_to_read(&targets, reader.follower.is_some()) {
        return read_all(&targets, max_bytes, reader);
    }
    let count = targets.len();
    let result = blocking(move || Ok(read_all(&targets, max_bytes, reader))).await;
    result.unwrap_or_else(|error| {
        tracing::error!(%error, "fetch read failed");
        let failed = (0..count)
            .map(|_| PartitionResult { error_code: kafka_code::UNKNOWN_SERVER_ERROR, ..PartitionResult::default() })
            .collect();
        (failed, 0)
    })
}

/// Whether a read pass would find no file data to read (see [`read_pass`]). A bound that moves
/// just after this check costs at most a read of the batch just appended, from the page cache.
fn nothing_to_read(targets: &[Target], follower: bool) -> bool {
    targets.iter().all(|target| match &target.resolved {
        Ok(partition) => {
            let upper = if follower { partition.log_end_now() } else { partition.high_watermark_now() };
            target.fetch_offset >= upper && !partition.syncs_on_append()
        }
        Err(_) => true,
    })
}

/// Who reads: a follower replica (`follower`), or a consumer that a follower replica may serve
/// (`follower_may_serve`, Fetch v11+); `held_back`: the leader side of the replication
/// throttle is over its cap, so throttled copies get no records in this pass.
#[derive(Debug, Clone, Copy)]
struct Reader {
    follower: Option<BrokerId>,
    follower_may_serve: bool,
    held_back: bool,
}

/// One read pass over every target, within `max_bytes` in all. Blocking when there is data.
fn read_all(targets: &[Target], max_bytes: u64, reader: Reader) -> (Vec<PartitionResult>, u64) {
    let mut remaining = max_bytes;
    let mut total = 0;
    let results = targets
        .iter()
        .map(|target| {
            let result = read_one(target, reader, remaining, total == 0);
            remaining = remaining.saturating_sub(result.records.len() as u64);
            total += result.records.len() as u64;
            result
        })
        .collect();
    (results, total)
}

/// Reads one partition, for a consumer (up to the high watermark) or for `follower` (up to the
/// log end, counting the fetch as the follower's progress). Blocking (`pread` of the batches).
fn read_one(target: &Target, reader: Reader, remaining: u64, first_with_data: bool) -> PartitionResult {
    let follower = reader.follower;
    let partition = match &target.resolved {
        Ok(partition) => partition,
        Err(code) => {
            return PartitionResult {
                error_code: *code,
                high_watermark: -1,
                log_start_offset: -1,
                ..Default::default()
            }
        }
    };
    let limit = target.partition_max_bytes.min(remaining);
    let offsets = |error_code| {
        let (_, high_watermark, log_start_offset) = partition.offsets().unwrap_or((-1, -1, -1));
        PartitionResult { error_code, high_watermark, log_start_offset, ..PartitionResult::default() }
    };
    // KIP-392: send the consumer to an in-sync follower on its rack, with no records.
    let preferred =
        partition.preferred_read_replica(&target.on_client_rack, target.fetch_offset, target.current_leader_epoch);
    if let Some(replica) = preferred {
        tracing::debug!(
            topic = partition.topic,
            partition = partition.index,
            preferred_read_replica = replica,
            "consumer sent to a follower on its rack"
        );
        return PartitionResult { preferred_read_replica: Some(replica), ..offsets(kafka_code::NONE) };
    }
    // A follower's fetch is read even without budget left: it reports the follower's progress.
    if limit == 0 && !first_with_data && follower.is_none() {
        return offsets(kafka_code::NONE);
    }
    let read = match follower {
        Some(follower) => partition
            .read_for_follower(
                follower,
                target.fetch_offset,
                target.last_fetched_epoch,
                target.current_leader_epoch,
                limit.max(1),
                target.arrived_partition_epoch,
            )
            .map(|read| {
                let base = PartitionResult {
                    error_code: kafka_code::NONE,
                    high_watermark: read.high_watermark,
                    log_start_offset: read.log_start_offset,
                    diverging: read.diverging,
                    isr_change_wanted: read.isr_change_wanted,
                    ..PartitionResult::default()
                };
                (read.regions, read.bytes, base)
            }),
        None => {
            let epoch = target.current_leader_epoch;
            partition.read(target.fetch_offset, limit.max(1), epoch, reader.follower_may_serve).map(
                |read: ReadOutcome| {
                    let base = PartitionResult {
                        error_code: kafka_code::NONE,
                        high_watermark: read.high_watermark,
                        log_start_offset: read.log_start_offset,
                        ..PartitionResult::default()
                    };
                    (read.regions, read.bytes, base)
                },
            )
        }
    };
    let (regions, bytes, base) = match read {
        Ok(read) => read,
        Err(error) => return offsets(error.kafka_error_code()),
    };
    // The follower's progress is recorded; its copy waits for the throttle.
    if reader.held_back && target.leader_throttled {
        return base;
    }
    // Only the first partition with data may exceed its limits (one whole batch).
    if bytes > limit && !first_with_data {
        return base;
    }
    match read_regions_intact(&regions, bytes) {
        Ok((records, None)) => PartitionResult { records, ..base },
        // A damaged batch of this replica's own log: never sent. This replica hands the
        // partition over and repairs itself (`crate::replication::repair`); the intact batches
        // before it are served, the error comes when the fetch reaches it.
        // The first report logs one ERROR line with the offset and file; a consumer retrying
        // the same offset does not add one per fetch.
        Ok((records, Some(damaged))) => {
            let damage_found = partition.report_damage(target.fetch_offset, &damaged);
            tracing::debug!(topic = partition.topic, partition = partition.index, error = %damaged, "reading segment failed");
            match records.is_empty() {
                true => PartitionResult { damage_found, ..offsets(damaged.kafka_error_code()) },
                false => PartitionResult { records, damage_found, ..base },
            }
        }
        Err(error) => {
            tracing::error!(topic = partition.topic, partition = partition.index, %error, "reading segment failed");
            offsets(error.kafka_error_code())
        }
    }
}

/// KIP-392: the live replicas of `topic`-`partition` on `client_rack`, in replica order, when
/// `local` (the broker answering) is not on that rack; else none (the leader is as close as any
/// replica). Only a leader uses them ([`Partition::preferred_read_replica`]).
fn replicas_on_rack(
    view: &MetadataView,
    topic: &str,
    partition: i32,
    client_rack: &str,
    local: BrokerId,
) -> Vec<BrokerId> {
    let rack_of = |broker: &BrokerId| view.brokers.get(broker).and_then(|b| b.rack.as_deref());
    if rack_of(&local) == Some(client_rack) {
        return Vec::new();
    }
    let Some(record) = view.topics.get(topic).and_then(|t| t.partitions.get(usize::try_from(partition).ok()?)) else {
        return Vec::new();
    };
    record.replicas.iter().copied().filter(|b| rack_of(b) == Some(client_rack) && view.is_live(*b)).collect()
}

/// The leader and epoch the metadata names for a partition (KIP-951), for errors that send the
/// client elsewhere; `(-1, -1)` when unknown.
fn current_leader(view: &MetadataView, topic: &str, partition: i32) -> LeaderIdAndEpoch {
    let record = view.topics.get(topic).and_then(|t| t.partitions.get(usize::try_from(partition).ok()?));
    LeaderIdAndEpoch::default()
        .with_leader_id(record.and_then(|p| p.leader).unwrap_or(-1).into())
        .with_leader_epoch(record.map_or(-1, |p| p.leader_epoch))
}

fn response(
    version: i16,
    request: &FetchRequest,
    view: &MetadataView,
    targets: &[Target],
    results: Vec<PartitionResult>,
) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = request
        .topics
        .iter()
        .map(|topic| {
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(Vec::with_capacity(topic.partitions.len()))
        })
        .collect();
    for (target, result) in targets.iter().zip(results) {
        let partition_index = request.topics[target.slot.0].partitions[target.slot.1].partition;
        let sends_elsewhere =
            matches!(result.error_code, kafka_code::NOT_LEADER_OR_FOLLOWER | kafka_code::FENCED_LEADER_EPOCH);
        let leader = match sends_elsewhere && version >= 12 {
            true => current_leader(view, request.topics[target.slot.0].topic.0.as_str(), partition_index),
            false => LeaderIdAndEpoch::default(),
        };
        let diverging = match result.diverging {
            Some((epoch, end_offset)) if version >= 12 => {
                EpochEndOffset::default().with_epoch(epoch).with_end_offset(end_offset)
            }
            _ => EpochEndOffset::default(),
        };
        topics[target.slot.0].partitions.push(
            PartitionData::default()
                .with_diverging_epoch(diverging)
                .with_current_leader(leader)
                .with_partition_index(partition_index)
                .with_error_code(result.error_code)
                .with_high_watermark(result.high_watermark)
                // No transactions: everything below the high watermark is stable.
                .with_last_stable_offset(result.high_watermark)
                .with_log_start_offset(since(version, 5, result.log_start_offset, -1))
                .with_aborted_transactions(Some(Vec::new()))
                .with_preferred_read_replica(
                    result.preferred_read_replica.filter(|_| version >= 11).unwrap_or(-1).into(),
                )
                .with_records(Some(result.records)),
        );
    }
    FetchResponse::default().with_error_code(kafka_code::NONE).with_session_id(0).with_responses(topics)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sluice_meta::Command;
    use uuid::Uuid;

    use super::*;

    /// Brokers 1, 2, 3 on racks a, b, c, one topic `t` of one partition on
    /// replicas 1, 2, 3 (RF 3 over three racks puts one on each).
    fn view() -> MetadataView {
        let mut view = MetadataView::default();
        for (broker_id, rack) in [(1, Some("a")), (2, Some("b")), (3, Some("c"))] {
            view.apply(&Command::RegisterBroker {
                broker_id,
                incarnation_id: Uuid::from_u128(broker_id as u128),
                kafka_addr: format!("127.0.0.1:{}", 9000 + broker_id),
                internal_addr: format!("127.0.0.1:{}", 9000 + broker_id),
                rack: rack.map(str::to_string),
            })
            .unwrap();
        }
        view.apply(&Command::CreateTopic {
            name: "t".to_string(),
            topic_id: Uuid::from_u128(7),
            partition_count: 1,
            replication_factor: 3,
            configs: BTreeMap::new(),
        })
        .unwrap();
        view
    }

    #[test]
    fn only_live_replicas_on_the_consumer_rack_are_candidates_and_none_when_local_is_there() {
        let mut view = view();
        assert_eq!(replicas_on_rack(&view, "t", 0, "b", 1), vec![2]);
        assert_eq!(replicas_on_rack(&view, "t", 0, "b", 2), Vec::<BrokerId>::new(), "this broker is on the rack");
        assert_eq!(replicas_on_rack(&view, "t", 0, "z", 1), Vec::<BrokerId>::new(), "no replica on that rack");
        assert_eq!(replicas_on_rack(&view, "t", 1, "b", 1), Vec::<BrokerId>::new(), "no such partition");
        assert_eq!(replicas_on_rack(&view, "u", 0, "b", 1), Vec::<BrokerId>::new(), "no such topic");
        let epoch = view.brokers[&2].broker_epoch;
        view.apply(&Command::FenceBroker { broker_id: 2, broker_epoch: epoch }).unwrap();
        assert_eq!(replicas_on_rack(&view, "t", 0, "b", 1), Vec::<BrokerId>::new(), "a fenced broker is not live");
    }
}
