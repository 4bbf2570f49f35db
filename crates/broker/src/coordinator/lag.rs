//! Consumer lag, native: every [`LAG_REFRESH_INTERVAL_MS`], each broker computes the lag of the
//! groups whose coordinator it is — for each committed offset, the partition's high watermark
//! minus the committed offset, in records, and how old the first unconsumed record is, in
//! seconds — and publishes it as metrics (`sluice_consumer_group_lag_records`,
//! `sluice_consumer_group_lag_seconds`, per group the max and the sum) and to the web
//! console's [`super::lag_history`].
//!
//! The age is that of the batch holding the committed offset: its first record's timestamp
//! (its append time on a `LogAppendTime` topic), read from the batch header — one header per
//! lagging partition, from the page cache here or by a one-batch Fetch from the leader. A
//! record in the middle of a batch is counted as old as the batch's first record, so the age is
//! exact to the batch's time span (the producer's linger, milliseconds). Producer clocks that
//! run ahead give 0, never a negative age.
//!
//! The committed offsets are in the coordinator's memory; the high watermarks of partitions led
//! here are read from the partition layer, those led elsewhere are asked from their leaders with
//! one ListOffsets (latest) per leader broker per refresh. Nothing reads a log: a scrape reads
//! what the last refresh published. A partition whose leader does not answer keeps no series
//! until it does (a lag from an old high watermark would look like progress).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sluice_meta::MetadataView;
use sluice_proto::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use sluice_proto::kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use sluice_proto::kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, TopicName,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::partition::blocking;
use crate::replication::connection::BrokerConnection;

/// How often each coordinator recomputes its groups' lag, in milliseconds.
pub const LAG_REFRESH_INTERVAL_MS: u64 = 5_000;

/// How long a leader has to answer the ListOffsets of a refresh, in milliseconds.
pub const LAG_LIST_OFFSETS_TIMEOUT_MS: u64 = 5_000;

/// ListOffsets version asked of other brokers (v2: isolation level; latest = high watermark).
const LIST_OFFSETS_VERSION: i16 = 2;

/// Kafka's `ListOffsetsRequest.LATEST_TIMESTAMP`.
const LATEST_TIMESTAMP: i64 = -1;

/// Fetch version asked of other brokers for a batch header (v4: record batches, isolation).
const HEADER_FETCH_VERSION: i16 = 4;

/// Bytes of a v2 record batch header up to and including `maxTimestamp`.
const BATCH_HEADER_BYTES: usize = 43;

/// One committed offset and how far behind the partition's high watermark it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Lag {
    /// Group id.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset (the next record the group reads).
    pub committed: i64,
    /// Records between the committed offset and the high watermark (never negative: a commit
    /// past the high watermark, possible right after a leader change, counts as 0).
    pub records: i64,
    /// Age of the first unconsumed record in seconds: 0 when caught up, `None` when its batch
    /// could not be read (leader unreachable, offset deleted by retention meanwhile).
    pub seconds: Option<f64>,
}

/// The timestamp of a v2 record batch's first record, or its append time on a `LogAppendTime`
/// batch (attribute bit 3), from the batch's first [`BATCH_HEADER_BYTES`]; `None` for anything
/// else. Pure.
pub fn batch_timestamp(batch: &[u8]) -> Option<i64> {
    let header = batch.get(..BATCH_HEADER_BYTES)?;
    if header[16] != 2 {
        return None;
    }
    let attributes = i16::from_be_bytes([header[21], header[22]]);
    let field = if attributes & 0x08 != 0 { 35 } else { 27 };
    Some(i64::from_be_bytes(header[field..field + 8].try_into().ok()?))
}

/// The lag of each committed offset whose partition's high watermark is known. Pure.
pub fn lags(committed: &[(String, String, i32, i64)], high_watermarks: &HashMap<(String, i32), i64>) -> Vec<Lag> {
    committed
        .iter()
        .filter_map(|(group, topic, partition, offset)| {
            let end = high_watermarks.get(&(topic.clone(), *partition))?;
            let records = (end - offset).max(0);
            Some(Lag {
                group: group.clone(),
                topic: topic.clone(),
                partition: *partition,
                committed: *offset,
                records,
                seconds: if records == 0 { Some(0.0) } else { None },
            })
        })
        .collect()
}

/// Refreshes the lag metrics until `stop` completes.
pub async fn run(broker: Arc<Broker>, stop: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(Duration::from_millis(LAG_REFRESH_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => return,
        }
        refresh(&broker).await;
        // The same tick samples the per-topic counters for the console's in/out rates.
        broker.metrics.sample_topic_rates(broker.view().topics.keys());
    }
}

/// One refresh: collects committed offsets, finds high watermarks, publishes the lag.
pub async fn refresh(broker: &Broker) {
    let mut committed = Vec::new();
    let mut groups = Vec::new();
    for shard in broker.groups.shards() {
        committed.extend(shard.committed().await);
        groups.extend(shard.list().await);
    }
    broker.metrics.set_groups(&groups);
    let view = broker.view();
    let mut high_watermarks = HashMap::new();
    let mut remote: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for (_, topic, partition, _) in &committed {
        let key = (topic.clone(), *partition);
        if high_watermarks.contains_key(&key) {
            continue;
        }
        let leader = view
            .topics
            .get(topic)
            .and_then(|t| t.partitions.get(usize::try_from(*partition).ok()?))
            .and_then(|p| p.leader);
        match (leader, broker.partitions.get(topic, *partition)) {
            (Some(leader), Some(local)) if leader == broker.node_id => {
                high_watermarks.insert(key, local.high_watermark_now());
            }
            (Some(leader), _) => {
                let wanted = remote.entry(leader).or_default();
                if !wanted.contains(&key) {
                    wanted.push(key);
                }
            }
            (None, _) => {}
        }
    }
    for (leader, partitions) in remote {
        match ask_leader(broker, &view, leader, &partitions).await {
            Ok(found) => high_watermarks.extend(found),
            Err(error) => tracing::debug!(leader, %error, "consumer lag: leader's high watermarks unknown"),
        }
    }
    let mut lags = lags(&committed, &high_watermarks);
    let timestamps = first_unconsumed_timestamps(broker, &view, &lags).await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    for lag in lags.iter_mut().filter(|lag| lag.records > 0) {
        lag.seconds = timestamps
            .get(&(lag.topic.clone(), lag.partition, lag.committed))
            .map(|timestamp| (now_ms - timestamp).max(0) as f64 / 1000.0);
    }
    broker.metrics.set_consumer_lag(&lags);
    broker.lag_history.record(now_ms, &lags);
}

/// The timestamp of the batch holding each lagging committed offset: (topic, partition,
/// offset) → milliseconds. Local partitions on the blocking pool, others by one Fetch per
/// leader.
async fn first_unconsumed_timestamps(
    broker: &Broker,
    view: &MetadataView,
    lags: &[Lag],
) -> HashMap<(String, i32, i64), i64> {
    let mut wanted: BTreeMap<(String, i32, i64), Option<i32>> = BTreeMap::new();
    for lag in lags.iter().filter(|lag| lag.records > 0) {
        let leader = view
            .topics
            .get(&lag.topic)
            .and_then(|t| t.partitions.get(usize::try_from(lag.partition).ok()?))
            .and_then(|p| p.leader);
        wanted.insert((lag.topic.clone(), lag.partition, lag.committed), leader);
    }
    let mut found = HashMap::new();
    let mut remote: BTreeMap<i32, Vec<(String, i32, i64)>> = BTreeMap::new();
    let mut local = Vec::new();
    for ((topic, partition, offset), leader) in wanted {
        match leader {
            Some(leader) if leader == broker.node_id => local.push((topic, partition, offset)),
            Some(leader) => remote.entry(leader).or_default().push((topic, partition, offset)),
            None => {}
        }
    }
    let partitions: Vec<_> = local
        .into_iter()
        .filter_map(|(topic, partition, offset)| {
            broker.partitions.get(&topic, partition).map(|p| (p, topic, partition, offset))
        })
        .collect();
    let read = blocking(move || {
        Ok(partitions
            .into_iter()
            .filter_map(|(p, topic, partition, offset)| {
                let outcome = p.read(offset, 1, -1, false).ok()?;
                let region = outcome.regions.first()?;
                let mut header = [0u8; BATCH_HEADER_BYTES];
                if region.len < BATCH_HEADER_BYTES as u64 {
                    return None;
                }
                std::os::unix::fs::FileExt::read_exact_at(&*region.file, &mut header, region.position).ok()?;
                Some(((topic, partition, offset), batch_timestamp(&header)?))
            })
            .collect::<Vec<_>>())
    })
    .await;
    found.extend(read.unwrap_or_default());
    for (leader, partitions) in remote {
        match fetch_headers(broker, view, leader, &partitions).await {
            Ok(headers) => found.extend(headers),
            Err(error) => tracing::debug!(leader, %error, "consumer lag: leader's batch timestamps unknown"),
        }
    }
    found
}

async fn ask_leader(
    broker: &Broker,
    view: &MetadataView,
    leader: i32,
    partitions: &[(String, i32)],
) -> Result<HashMap<(String, i32), i64>, String> {
    let address = view.brokers.get(&leader).map(|b| b.internal_addr.clone()).ok_or("unknown broker")?;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let request = ListOffsetsRequest::default().with_replica_id((-1).into()).with_topics(
        by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|p| {
                                ListOffsetsPartition::default().with_partition_index(p).with_timestamp(LATEST_TIMESTAMP)
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    let tls = broker.replication.tls.as_ref();
    let mut connection = BrokerConnection::connect(&address, broker.node_id, tls).await.map_err(|e| e.to_string())?;
    let timeout = Duration::from_millis(LAG_LIST_OFFSETS_TIMEOUT_MS);
    let response: ListOffsetsResponse = connection
        .call(ApiKey::ListOffsets, LIST_OFFSETS_VERSION, &request, timeout)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response
        .topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .filter(|p| p.error_code == 0 && p.offset >= 0)
                .map(move |p| ((topic.name.0.to_string(), p.partition_index), p.offset))
        })
        .collect())
}

/// One Fetch per partition (`max_bytes` 1: exactly the batch holding the offset, whatever
/// its size — Kafka's "at least one batch" rule holds for the first partition of a response
/// only), on one connection to the leader.
async fn fetch_headers(
    broker: &Broker,
    view: &MetadataView,
    leader: i32,
    partitions: &[(String, i32, i64)],
) -> Result<Vec<((String, i32, i64), i64)>, String> {
    let address = view.brokers.get(&leader).map(|b| b.internal_addr.clone()).ok_or("unknown broker")?;
    let tls = broker.replication.tls.as_ref();
    let mut connection = BrokerConnection::connect(&address, broker.node_id, tls).await.map_err(|e| e.to_string())?;
    let timeout = Duration::from_millis(LAG_LIST_OFFSETS_TIMEOUT_MS);
    let mut found = Vec::new();
    for (topic, partition, offset) in partitions {
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(1)
            .with_isolation_level(0)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(*partition)
                    .with_fetch_offset(*offset)
                    .with_partition_max_bytes(1)])]);
        let response: FetchResponse =
            connection.call(ApiKey::Fetch, HEADER_FETCH_VERSION, &request, timeout).await.map_err(|e| e.to_string())?;
        let timestamp = response
            .responses
            .first()
            .and_then(|t| t.partitions.first())
            .and_then(|data| data.records.as_deref())
            .and_then(batch_timestamp);
        if let Some(timestamp) = timestamp {
            found.push(((topic.clone(), *partition, *offset), timestamp));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_high_watermark_minus_the_commit_and_never_negative() {
        let committed = vec![
            ("g".to_string(), "t".to_string(), 0, 40),
            ("g".to_string(), "t".to_string(), 1, 10),
            ("h".to_string(), "t".to_string(), 0, 100),
            ("g".to_string(), "unknown".to_string(), 0, 5),
        ];
        let ends = HashMap::from([(("t".to_string(), 0), 50), (("t".to_string(), 1), 10)]);
        let lag = |group: &str, partition, committed, records, seconds| Lag {
            group: group.to_string(),
            topic: "t".to_string(),
            partition,
            committed,
            records,
            seconds,
        };
        assert_eq!(
            lags(&committed, &ends),
            vec![lag("g", 0, 40, 10, None), lag("g", 1, 10, 0, Some(0.0)), lag("h", 0, 100, 0, Some(0.0))]
        );
    }

    #[test]
    fn a_batch_timestamp_is_its_first_records_or_its_append_time() {
        let mut header = [0u8; BATCH_HEADER_BYTES];
        header[16] = 2;
        header[27..35].copy_from_slice(&1_000i64.to_be_bytes());
        header[35..43].copy_from_slice(&2_000i64.to_be_bytes());
        assert_eq!(batch_timestamp(&header), Some(1_000));
        header[22] = 0x08; // LogAppendTime
        assert_eq!(batch_timestamp(&header), Some(2_000));
        header[16] = 1;
        assert_eq!(batch_timestamp(&header), None, "not a v2 batch");
        assert_eq!(batch_timestamp(&header[..20]), None, "too short");
    }
}
