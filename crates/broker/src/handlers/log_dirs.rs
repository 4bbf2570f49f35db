//! DescribeLogDirs (v1–v4): the one log directory of this broker (`DATA_DIR/logs`) with the
//! replicas in it and each one's size in bytes, as `kafka-log-dirs` and `Admin.describeLogDirs`
//! read it.
//!
//! Sluice keeps every partition of a broker in one directory and never moves replicas between
//! directories, so there is one result, no replica is a "future" one, and every offset lag is 0
//! (Kafka's lag is that of a future replica behind the current one). The volume's total and
//! usable bytes (v4) are Kafka's "unknown", -1: the broker does not measure its volume.

use std::collections::{BTreeMap, BTreeSet};

use sluice_proto::kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use sluice_proto::kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use crate::broker::Broker;
use crate::handlers::str_bytes;
use crate::kafka_code;
use crate::partition::blocking;

/// Kafka's `DescribeLogDirsResponse.UNKNOWN_VOLUME_BYTES`: the volume's size is not known.
const UNKNOWN_VOLUME_BYTES: i64 = -1;

/// Answers DescribeLogDirs: every replica on this broker when `topics` is null, else those of
/// the given partitions that this broker holds (others are left out, as Kafka does).
pub async fn handle(broker: &Broker, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted: Option<BTreeSet<(String, i32)>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|topic| topic.partitions.iter().map(|index| (topic.topic.0.to_string(), *index)))
            .collect()
    });
    let partitions: Vec<_> = broker
        .partitions
        .all()
        .into_iter()
        .filter(|p| wanted.as_ref().is_none_or(|w| w.contains(&(p.topic.clone(), p.index))))
        .collect();
    // Sizes come from the logs' segment lists under each partition's lock: off the runtime.
    let sized = blocking(move || {
        Ok(partitions.into_iter().filter_map(|p| p.size_bytes().map(|size| (p.topic.clone(), p.index, size))).collect())
    })
    .await
    .unwrap_or_else(|_| Vec::<(String, i32, u64)>::new());
    let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for (topic, index, size) in sized {
        topics.entry(topic).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(index)
                .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX))
                .with_offset_lag(0)
                .with_is_future_key(false),
        );
    }
    let topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            DescribeLogDirsTopic::default().with_name(TopicName(str_bytes(name))).with_partitions(partitions)
        })
        .collect();
    let result = DescribeLogDirsResult::default()
        .with_error_code(kafka_code::NONE)
        .with_log_dir(str_bytes(broker.partitions.logs_dir().display().to_string()))
        .with_topics(topics)
        .with_total_bytes(UNKNOWN_VOLUME_BYTES)
        .with_usable_bytes(UNKNOWN_VOLUME_BYTES);
    DescribeLogDirsResponse::default().with_error_code(kafka_code::NONE).with_results(vec![result])
}
