//! Group administration against a real broker: list and describe (state, protocol, members
//! with their client id, host and decoded assignment), lag per partition, offset resets to the
//! earliest offset, to an offset, shifted (clamped to the log, the unclamped target reported),
//! of one partition, to the current offset and to a timestamp — after which
//! a group member reads exactly from the new positions — refused (typed, not retriable) while
//! the group has an active member, as is deleting it; delete once empty.
//!
//! Method: an in-process broker; records produced to chosen partitions with chosen timestamps,
//! so every expected offset is known; a real group member of `sluice-client`.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{cluster, create_topic, TestBroker};
use sluice_client::admin::{OffsetChange, OffsetTarget};
use sluice_client::{
    Admin, ClientError, Cluster, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};

const T0: i64 = 1_700_000_000_000;
const TOPIC: &str = "lagged";
const GROUP: &str = "g-admin";

fn group_config() -> ConsumerConfig {
    ConsumerConfig {
        group_id: Some(GROUP.to_string()),
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        session_timeout: Duration::from_secs(3),
        max_poll_interval: Duration::from_secs(10),
        fetch_max_wait: Duration::from_millis(100),
        ..ConsumerConfig::default()
    }
}

/// Record `i` goes to partition `i % 3` (offset `i / 3` there) with timestamp `T0 + i s`.
async fn produce(cluster: &Cluster, indexes: std::ops::Range<i64>) {
    let producer = Producer::new(cluster.clone(), ProducerConfig::default()).await.unwrap();
    let mut deliveries = Vec::new();
    for i in indexes {
        let record =
            ProducerRecord::new(TOPIC, format!("r{i}")).with_partition((i % 3) as i32).with_timestamp_ms(T0 + i * 1000);
        deliveries.push(producer.send(record).await.unwrap());
    }
    producer.flush().await.unwrap();
    for delivery in deliveries {
        delivery.await.unwrap();
    }
}

async fn consume(consumer: &mut Consumer, expected: usize) -> Vec<ConsumerRecord> {
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while records.len() < expected && Instant::now() < deadline {
        records.extend(consumer.poll(Duration::from_millis(300)).await.unwrap());
    }
    records.extend(consumer.poll(Duration::from_millis(300)).await.unwrap());
    records
}

fn offsets(changes: &[OffsetChange]) -> Vec<i64> {
    changes.iter().map(|change| change.offset).collect()
}

fn partitions() -> Vec<TopicPartition> {
    (0..3).map(|p| TopicPartition::new(TOPIC, p)).collect()
}

/// DescribeGroups and ListGroups of the group with its one member.
async fn check_described_and_listed(admin: &Admin, member_id: &str) {
    let described = admin.describe_group(GROUP).await.unwrap();
    assert_eq!((described.state.as_str(), described.protocol.as_str()), ("Stable", "range"));
    assert_eq!(described.protocol_type, "consumer");
    assert_eq!(described.members.len(), 1);
    let only = &described.members[0];
    assert_eq!((only.member_id.as_str(), only.client_id.as_str()), (member_id, "sluice-client"));
    assert!(only.client_host.contains("127.0.0.1"), "{}", only.client_host);
    assert_eq!(only.assignment, partitions(), "the assignment decoded");
    assert_eq!(only.subscription, [TOPIC]);
    let listed = admin.list_groups().await.unwrap();
    assert!(listed.iter().any(|g| g.group_id == GROUP && g.state == "Stable" && g.protocol_type == "consumer"));
}

/// While the member is active: resets and deletes are refused, typed; so is a simple commit.
async fn check_refused_while_active(admin: &Admin, cluster: &Cluster) {
    let refused = admin.reset_offsets(GROUP, TOPIC, OffsetTarget::Earliest).await.unwrap_err();
    assert!(matches!(refused, ClientError::GroupNotEmpty { members: 1, .. }) && !refused.is_retriable(), "{refused}");
    let refused = admin.delete_groups(&[GROUP.to_string()]).await.unwrap_err();
    assert!(matches!(refused, ClientError::GroupNotEmpty { .. }), "{refused}");
    let outsider = Consumer::new(cluster.clone(), group_config());
    let refused = outsider.commit_offsets(&BTreeMap::from([(TopicPartition::new(TOPIC, 0), 0)])).await.unwrap_err();
    assert!(matches!(refused, ClientError::CommitFailed { code: 25, .. }), "UNKNOWN_MEMBER_ID: {refused}");
    assert_eq!(admin.group_offsets(GROUP).await.unwrap().values().sum::<i64>(), 30, "nothing was reset");
}

#[tokio::test]
async fn lag_and_resets_move_where_the_group_reads_and_are_refused_while_it_is_active() {
    let broker = TestBroker::start().await;
    let cluster = cluster(&broker.bootstrap()).await;
    let admin = Admin::new(cluster.clone());
    create_topic(&cluster, TOPIC, 3).await;
    produce(&cluster, 0..30).await;

    let mut member = Consumer::new(cluster.clone(), group_config());
    member.subscribe([TOPIC]).await.unwrap();
    assert_eq!(consume(&mut member, 30).await.len(), 30);
    member.commit().await.unwrap();
    let member_id = member.group_generation().unwrap().member_id;

    check_described_and_listed(&admin, &member_id).await;

    produce(&cluster, 30..36).await;
    let lag = admin.group_lag(GROUP).await.unwrap();
    assert_eq!(lag.len(), 3);
    for row in &lag {
        assert_eq!((row.committed_offset, row.log_end_offset, row.lag), (Some(10), Some(12), Some(2)), "{row:?}");
        assert_eq!(row.member_id.as_deref(), Some(member_id.as_str()));
    }

    check_refused_while_active(&admin, &cluster).await;
    member.close().await.unwrap();
    let described = admin.describe_group(GROUP).await.unwrap();
    assert!(described.is_inactive() && described.state == "Empty", "{described:?}");

    let earliest = admin.reset_offsets(GROUP, TOPIC, OffsetTarget::Earliest).await.unwrap();
    assert_eq!(offsets(&earliest), [0, 0, 0]);
    assert!(earliest.iter().all(|change| change.previous == Some(10)));
    assert!(admin.group_lag(GROUP).await.unwrap().iter().all(|row| row.lag == Some(12)));
    assert_eq!(offsets(&admin.reset_offsets(GROUP, TOPIC, OffsetTarget::Offset(8)).await.unwrap()), [8, 8, 8]);
    let shifted = admin.reset_offsets(GROUP, TOPIC, OffsetTarget::ShiftBy(-3)).await.unwrap();
    assert_eq!((offsets(&shifted), shifted[0].previous), (vec![5, 5, 5], Some(8)));
    let past_end = admin.reset_offsets(GROUP, TOPIC, OffsetTarget::ShiftBy(100)).await.unwrap();
    assert_eq!(offsets(&past_end), [12, 12, 12]);
    assert!(past_end.iter().all(|change| change.clamped_from == Some(105)), "clamped from 5 + 100: {past_end:?}");
    let before_start = admin.reset_offsets(GROUP, TOPIC, OffsetTarget::Offset(-7)).await.unwrap();
    assert_eq!(offsets(&before_start), [0, 0, 0]);
    assert!(before_start.iter().all(|change| change.clamped_from == Some(-7)));
    let planned = admin.plan_offset_reset(GROUP, TOPIC, OffsetTarget::Latest).await.unwrap();
    assert_eq!(offsets(&planned), [12, 12, 12]);
    assert!(admin.group_offsets(GROUP).await.unwrap().values().all(|offset| *offset == 0), "a plan commits nothing");
    // One partition only; then --to-current keeps each committed offset.
    let only_1 = admin.topic_partitions(TOPIC, Some(&[1])).await.unwrap();
    let moved = admin.reset_offsets_of(GROUP, &only_1, OffsetTarget::Offset(4)).await.unwrap();
    assert_eq!((moved.len(), moved[0].offset, moved[0].clamped_from), (1, 4, None));
    let current = admin.reset_offsets(GROUP, TOPIC, OffsetTarget::Current).await.unwrap();
    assert_eq!(offsets(&current), [0, 4, 0], "partition 1 alone was moved");
    assert!(admin.topic_partitions(TOPIC, Some(&[7])).await.unwrap_err().to_string().contains("no partition 7"));

    // The first record at or after T0 + 16 s: index 18 in partition 0, 16 in 1, 17 in 2.
    let by_time = admin.reset_offsets(GROUP, TOPIC, OffsetTarget::Timestamp(T0 + 16_000)).await.unwrap();
    assert_eq!(offsets(&by_time), [6, 5, 5]);
    let mut member = Consumer::new(cluster.clone(), group_config());
    member.subscribe([TOPIC]).await.unwrap();
    let records = consume(&mut member, 20).await;
    assert_eq!(records.len(), 20, "exactly the records from the new positions");
    for (partition, start) in [(0, 6), (1, 5), (2, 5)] {
        let read: Vec<i64> = records.iter().filter(|r| r.partition == partition).map(|r| r.offset).collect();
        assert_eq!(read, (start..12).collect::<Vec<i64>>(), "partition {partition}");
    }
    member.close().await.unwrap();
    let future = admin.reset_offsets(GROUP, TOPIC, OffsetTarget::Timestamp(T0 + 3_600_000)).await.unwrap();
    assert_eq!(offsets(&future), [12, 12, 12], "no record that late: the log end");

    admin.delete_groups(&[GROUP.to_string()]).await.unwrap();
    assert_eq!(admin.describe_group(GROUP).await.unwrap().state, "Dead");
    assert!(admin.group_offsets(GROUP).await.unwrap().is_empty());
    let error = admin.delete_groups(&[GROUP.to_string()]).await.unwrap_err();
    assert!(matches!(error, ClientError::Kafka { code: 69, .. }), "GROUP_ID_NOT_FOUND: {error}");
    let error = admin.reset_offsets(GROUP, TOPIC, OffsetTarget::ShiftBy(1)).await.unwrap_err();
    assert!(matches!(error, ClientError::InvalidState { .. }), "nothing committed to shift: {error}");
}
