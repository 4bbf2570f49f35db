//! Consumer lag, native: every [`LAG_REFRESH_INTERVAL_MS`], each broker computes the lag of the
//! groups whose coordinator it is — for each committed offset, the partition's high watermark
//! minus the committed offset, in records — and publishes it as metrics
//! (`sluice_consumer_group_lag_records`, per group the max and the sum).
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
use sluice_proto::kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use sluice_proto::kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse, TopicName};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::replication::connection::BrokerConnection;

/// How often each coordinator recomputes its groups' lag, in milliseconds.
pub const LAG_REFRESH_INTERVAL_MS: u64 = 5_000;

/// How long a leader has to answer the ListOffsets of a refresh, in milliseconds.
pub const LAG_LIST_OFFSETS_TIMEOUT_MS: u64 = 5_000;

/// ListOffsets version asked of other brokers (v2: isolation level; latest = high watermark).
const LIST_OFFSETS_VERSION: i16 = 2;

/// Kafka's `ListOffsetsRequest.LATEST_TIMESTAMP`.
const LATEST_TIMESTAMP: i64 = -1;

/// One committed offset and how far behind the partition's high watermark it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lag {
    /// Group id.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Records between the committed offset and the high watermark (never negative: a commit
    /// past the high watermark, possible right after a leader change, counts as 0).
    pub records: i64,
}

/// The lag of each committed offset whose partition's high watermark is known. Pure.
pub fn lags(committed: &[(String, String, i32, i64)], high_watermarks: &HashMap<(String, i32), i64>) -> Vec<Lag> {
    committed
        .iter()
        .filter_map(|(group, topic, partition, offset)| {
            let end = high_watermarks.get(&(topic.clone(), *partition))?;
            Some(Lag {
                group: group.clone(),
                topic: topic.clone(),
                partition: *partition,
                records: (end - offset).max(0),
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
    }
}

/// One refresh: collects committed offsets, finds high watermarks, publishes the lag.
pub async fn refresh(broker: &Broker) {
    let mut committed = Vec::new();
    for shard in broker.groups.shards() {
        committed.extend(shard.committed().await);
    }
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
    broker.metrics.set_consumer_lag(&lags(&committed, &high_watermarks));
}

async fn ask_leader(
    broker: &Broker,
    view: &MetadataView,
    leader: i32,
    partitions: &[(String, i32)],
) -> Result<HashMap<(String, i32), i64>, String> {
    let address = view.brokers.get(&leader).map(|b| b.kafka_addr.clone()).ok_or("unknown broker")?;
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
    let mut connection = BrokerConnection::connect(&address, broker.node_id).await.map_err(|e| e.to_string())?;
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
        let lag = |group: &str, partition, records| Lag {
            group: group.to_string(),
            topic: "t".to_string(),
            partition,
            records,
        };
        assert_eq!(lags(&committed, &ends), vec![lag("g", 0, 10), lag("g", 1, 0), lag("h", 0, 0)]);
    }
}
