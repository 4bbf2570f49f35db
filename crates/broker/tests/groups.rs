//! The broker's group coordinator over real TCP (issue 6): FindCoordinator creates
//! `__consumer_offsets` and names this broker; a group of one joins (with the MEMBER_ID_REQUIRED
//! handshake), syncs, heartbeats, commits and fetches offsets, is listed and described, leaves
//! and is deleted; a second member makes the group rebalance and commits of the old generation
//! or of strangers are refused with nothing stored; bad input gets Kafka's error codes;
//! commits and group membership survive a broker restart (replayed from the log); a silent
//! member's session expires on the coordinator's timer; offsets of an Empty group expire.
//!
//! Method: a whole broker (`Node`, see `common`) on ephemeral ports with a temporary data
//! directory; every request is the real wire message, encoded with `kafka-protocol`.

mod common;

use std::time::{Duration, Instant};

use common::groups::*;
use common::{call, TestBroker};
use sluice_broker::kafka_code;
use sluice_proto::kafka_protocol::messages::create_topics_request::CreatableTopic;
use sluice_proto::kafka_protocol::messages::*;

const NONE: i16 = 0;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const INVALID_GROUP_ID: i16 = 24;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const REBALANCE_IN_PROGRESS: i16 = 27;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const NON_EMPTY_GROUP: i16 = 68;
const SESSION_MS: i32 = 10_000;

async fn create_topic(stream: &mut tokio::net::TcpStream, topic: &str, partitions: i32) {
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![CreatableTopic::default()
        .with_name(TopicName(text(topic)))
        .with_num_partitions(partitions)
        .with_replication_factor(1)]);
    let response: CreateTopicsResponse = call(stream, ApiKey::CreateTopics, 7, &request).await;
    assert_eq!(response.topics[0].error_code, NONE);
}

/// The whole life of a group of one, as a consumer drives it.
#[tokio::test]
async fn a_group_of_one_joins_syncs_commits_fetches_leaves_and_is_deleted() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    create_topic(&mut stream, "orders", 2).await;

    assert_eq!(find_coordinator(&mut stream, "g1").await, (NONE, 1, broker.address.port() as i32));
    let metadata: MetadataResponse =
        call(&mut stream, ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)).await;
    let offsets_topic =
        metadata.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "__consumer_offsets"));
    let offsets_topic = offsets_topic.expect("FindCoordinator created __consumer_offsets");
    assert!(offsets_topic.is_internal);
    assert_eq!(offsets_topic.partitions.len(), 5);

    let joined = join_new_member(&mut stream, "g1", SESSION_MS).await;
    assert_eq!(joined.error_code, NONE);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, joined.member_id, "the only member leads");
    assert_eq!(joined.members.len(), 1, "the leader gets every member's metadata");
    assert_eq!(joined.protocol_name.as_ref().map(|p| p.to_string()), Some("range".to_string()));
    let member = joined.member_id.to_string();
    assert!(member.starts_with("sluice-test-"), "member ids are <client id>-<uuid>: {member}");

    let synced = sync(&mut stream, "g1", &member, 1, &[(&member, b"assignment")]).await;
    assert_eq!(synced.error_code, NONE);
    assert_eq!(&synced.assignment[..], b"assignment");
    assert_eq!(heartbeat(&mut stream, "g1", &member, 1).await, NONE);

    assert_eq!(
        commit(&mut stream, "g1", &member, 1, &[("orders", 0, 42, "meta"), ("orders", 1, 7, "")]).await,
        vec![NONE, NONE]
    );
    assert_eq!(fetch_offset(&mut stream, "g1", "orders", 0).await, (NONE, NONE, 42, "meta".into()));
    assert_eq!(fetch_offset(&mut stream, "g1", "orders", 1).await, (NONE, NONE, 7, String::new()));
    assert_eq!(fetch_offset(&mut stream, "unknown-group", "orders", 0).await, (NONE, NONE, -1, String::new()));

    // OffsetFetch v7 (one group, null topic list = all of them).
    let all: OffsetFetchResponse = call(
        &mut stream,
        ApiKey::OffsetFetch,
        7,
        &OffsetFetchRequest::default().with_group_id(group("g1")).with_topics(None),
    )
    .await;
    let committed: Vec<(i32, i64)> =
        all.topics[0].partitions.iter().map(|p| (p.partition_index, p.committed_offset)).collect();
    assert_eq!(committed, vec![(0, 42), (1, 7)]);

    assert!(list(&mut stream).await.contains(&("g1".into(), "Stable".into())));
    let described = describe(&mut stream, "g1").await;
    assert_eq!((described.error_code, described.group_state.as_str()), (NONE, "Stable"));
    assert_eq!(described.protocol_type.as_str(), "consumer");
    assert_eq!(described.members.len(), 1);
    assert_eq!(described.members[0].client_id.as_str(), "sluice-test");
    assert_eq!(described.members[0].client_host.as_str(), "/127.0.0.1");
    assert_eq!(&described.members[0].member_assignment[..], b"assignment");

    assert_eq!(delete_group(&mut stream, "g1").await, NON_EMPTY_GROUP, "a group with members is not deleted");
    let left = leave(&mut stream, "g1", &member).await;
    assert_eq!((left.error_code, left.members[0].error_code), (NONE, NONE));
    assert_eq!(describe(&mut stream, "g1").await.group_state.as_str(), "Empty");
    assert_eq!(fetch_offset(&mut stream, "g1", "orders", 0).await.2, 42, "offsets outlive the members");
    assert_eq!(delete_group(&mut stream, "g1").await, NONE);
    assert_eq!(fetch_offset(&mut stream, "g1", "orders", 0).await.2, -1, "deleting a group deletes its offsets");
    assert_eq!(describe(&mut stream, "g1").await.group_state.as_str(), "Dead");
    assert_eq!(delete_group(&mut stream, "g1").await, 69, "GROUP_ID_NOT_FOUND");
}

/// Regression (the differential admin test, issue 16: Kafka 4.1's AdminClient threw
/// GroupIdNotFoundException for a group never used and got a Dead group from Sluice): from
/// DescribeGroups v6 an unknown group is GROUP_ID_NOT_FOUND with Kafka's message, before v6 it
/// is Dead with no error; a known group is described the same at v5 and v6.
#[tokio::test]
async fn describe_groups_v6_answers_an_unknown_group_with_group_id_not_found() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    let request = DescribeGroupsRequest::default().with_groups(vec![group("never-used")]);
    assert_eq!(find_coordinator(&mut stream, "never-used").await.0, NONE);
    let v6: DescribeGroupsResponse = call(&mut stream, ApiKey::DescribeGroups, 6, &request).await;
    assert_eq!(v6.groups[0].error_code, 69, "GROUP_ID_NOT_FOUND");
    assert_eq!(v6.groups[0].error_message.as_deref(), Some("Group never-used not found."));
    let v5 = describe(&mut stream, "never-used").await;
    assert_eq!((v5.error_code, v5.group_state.as_str()), (NONE, "Dead"));

    assert_eq!(find_coordinator(&mut stream, "known").await.0, NONE);
    let member = join_new_member(&mut stream, "known", SESSION_MS).await.member_id.to_string();
    assert_eq!(sync(&mut stream, "known", &member, 1, &[(&member, b"assignment")]).await.error_code, NONE);
    let known = DescribeGroupsRequest::default().with_groups(vec![group("known")]);
    let v6: DescribeGroupsResponse = call(&mut stream, ApiKey::DescribeGroups, 6, &known).await;
    let v5 = describe(&mut stream, "known").await;
    assert_eq!((v6.groups[0].error_code, v6.groups[0].group_state.as_str()), (NONE, "Stable"));
    assert_eq!(v6.groups[0].members[0].member_id, v5.members[0].member_id);
    assert_eq!(v5.members[0].member_id.as_str(), member.as_str());
}

/// A second member makes the group rebalance; the old generation and strangers cannot commit.
#[tokio::test]
async fn a_rebalance_fences_the_old_generation_and_refused_commits_store_nothing() {
    let broker = TestBroker::start().await;
    let mut first = broker.connect().await;
    let mut second = broker.connect().await;
    create_topic(&mut first, "t", 1).await;
    assert_eq!(find_coordinator(&mut first, "g").await.0, NONE);

    let a = join_new_member(&mut first, "g", SESSION_MS).await;
    let a_id = a.member_id.to_string();
    assert_eq!(sync(&mut first, "g", &a_id, 1, &[(&a_id, b"all")]).await.error_code, NONE);
    assert_eq!(commit(&mut first, "g", &a_id, 1, &[("t", 0, 10, "")]).await, vec![NONE]);

    // B joins: its JoinGroup parks until A rejoins, which A learns from its heartbeat.
    let b_join = tokio::spawn(async move {
        let joined = join_new_member(&mut second, "g", SESSION_MS).await;
        (second, joined)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let code = heartbeat(&mut first, "g", &a_id, 1).await;
        if code == REBALANCE_IN_PROGRESS {
            break;
        }
        assert_eq!(code, NONE);
        assert!(Instant::now() < deadline, "the group never started rebalancing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Generation 1 is still current until the join phase ends, but not for long.
    let a_rejoined = join(&mut first, &join_request("g", &a_id, "consumer", SESSION_MS)).await;
    let (mut second, b) = b_join.await.unwrap();
    assert_eq!((a_rejoined.error_code, b.error_code), (NONE, NONE));
    assert_eq!((a_rejoined.generation_id, b.generation_id), (2, 2));
    let leader = a_rejoined.leader.to_string();
    assert_eq!(leader, b.leader.to_string());
    let (leader_stream, follower_stream, leader_id, follower_id) = if leader == a_id {
        (&mut first, &mut second, a_id.clone(), b.member_id.to_string())
    } else {
        (&mut second, &mut first, b.member_id.to_string(), a_id.clone())
    };
    let follower_sync = {
        let follower_id = follower_id.clone();
        let mut stream = std::mem::replace(follower_stream, broker.connect().await);
        tokio::spawn(async move { sync(&mut stream, "g", &follower_id, 2, &[]).await })
    };
    let leader_sync =
        sync(leader_stream, "g", &leader_id, 2, &[(&leader_id, b"half-1"), (&follower_id, b"half-2")]).await;
    assert_eq!((leader_sync.error_code, &leader_sync.assignment[..]), (NONE, &b"half-1"[..]));
    let follower_sync = follower_sync.await.unwrap();
    assert_eq!((follower_sync.error_code, &follower_sync.assignment[..]), (NONE, &b"half-2"[..]));

    let mut stream = broker.connect().await;
    assert_eq!(commit(&mut stream, "g", &a_id, 1, &[("t", 0, 99, "")]).await, vec![ILLEGAL_GENERATION]);
    assert_eq!(commit(&mut stream, "g", "stranger", 2, &[("t", 0, 99, "")]).await, vec![UNKNOWN_MEMBER_ID]);
    assert_eq!(
        commit(&mut stream, "g", "", -1, &[("t", 0, 99, "")]).await,
        vec![UNKNOWN_MEMBER_ID],
        "no simple commits to an active group"
    );
    let too_large = "m".repeat(4097);
    assert_eq!(commit(&mut stream, "g", &a_id, 2, &[("t", 0, 99, &too_large)]).await, vec![OFFSET_METADATA_TOO_LARGE]);
    assert_eq!(
        commit(&mut stream, "g", &a_id, 2, &[("no-such-topic", 0, 99, ""), ("t", 7, 99, "")]).await,
        vec![kafka_code::UNKNOWN_TOPIC_OR_PARTITION, kafka_code::UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(fetch_offset(&mut stream, "g", "t", 0).await.2, 10, "no refused commit was stored");
    assert_eq!(commit(&mut stream, "g", &a_id, 2, &[("t", 0, 11, "")]).await, vec![NONE]);
    assert_eq!(fetch_offset(&mut stream, "g", "t", 0).await.2, 11);

    // A member of another protocol type, and other bad joins.
    let wrong_type = join(&mut stream, &join_request("g", "", "connect", SESSION_MS)).await;
    assert_eq!(wrong_type.error_code, INCONSISTENT_GROUP_PROTOCOL);
    let empty_group = join(&mut stream, &join_request("", "", "consumer", SESSION_MS)).await;
    assert_eq!(empty_group.error_code, INVALID_GROUP_ID);
    let bad_session = join(&mut stream, &join_request("other", "", "consumer", 10)).await;
    assert_eq!(bad_session.error_code, INVALID_SESSION_TIMEOUT);
    assert_eq!(commit(&mut stream, "", "", -1, &[("t", 0, 1, "")]).await, vec![INVALID_GROUP_ID]);
    assert_eq!(heartbeat(&mut stream, "never-joined", "m", 1).await, UNKNOWN_MEMBER_ID);
}

/// Commits and group membership are records in `__consumer_offsets`: after a restart the
/// coordinator replays them, so offsets are there and the member is still in the group.
#[tokio::test]
async fn commits_and_members_survive_a_restart() {
    let temp = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_config(sluice_broker::NodeConfig::ephemeral(1, temp.path())).await;
    let mut stream = broker.connect().await;
    create_topic(&mut stream, "t", 3).await;
    assert_eq!(find_coordinator(&mut stream, "durable").await.0, NONE);
    let joined = join_new_member(&mut stream, "durable", SESSION_MS).await;
    let member = joined.member_id.to_string();
    assert_eq!(sync(&mut stream, "durable", &member, 1, &[(&member, b"p0-p2")]).await.error_code, NONE);
    for offset in 1..=20 {
        assert_eq!(
            commit(&mut stream, "durable", &member, 1, &[("t", offset as i32 % 3, offset, "")]).await,
            vec![NONE]
        );
    }
    // A simple commit (no membership) of another group.
    assert_eq!(commit(&mut stream, "simple", "", -1, &[("t", 0, 5, "")]).await, vec![NONE]);
    drop(stream);
    broker.stop().await;

    let broker = TestBroker::start_config(sluice_broker::NodeConfig::ephemeral(1, temp.path())).await;
    let mut stream = broker.connect().await;
    assert_eq!(fetch_offset(&mut stream, "durable", "t", 0).await.2, 18);
    assert_eq!(fetch_offset(&mut stream, "durable", "t", 1).await.2, 19);
    assert_eq!(fetch_offset(&mut stream, "durable", "t", 2).await.2, 20);
    assert_eq!(fetch_offset(&mut stream, "simple", "t", 0).await.2, 5);
    let described = describe(&mut stream, "durable").await;
    assert_eq!(described.group_state.as_str(), "Stable");
    assert_eq!(described.members[0].member_id.to_string(), member);
    assert_eq!(&described.members[0].member_assignment[..], b"p0-p2");
    assert_eq!(heartbeat(&mut stream, "durable", &member, 1).await, NONE, "the member carries on in generation 1");
    assert_eq!(describe(&mut stream, "simple").await.group_state.as_str(), "Empty");
}

/// A member that stops heartbeating is removed when its session ends, by the coordinator's
/// own timer (no request arrives for the group in between).
#[tokio::test]
async fn a_silent_member_is_removed_when_its_session_ends() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(find_coordinator(&mut stream, "quiet").await.0, NONE);
    let joined = join_new_member(&mut stream, "quiet", 300).await;
    let member = joined.member_id.to_string();
    assert_eq!(sync(&mut stream, "quiet", &member, 1, &[(&member, b"x")]).await.error_code, NONE);
    let shard = broker.broker.groups.shards();
    assert!(!shard.is_empty());
    tokio::time::sleep(Duration::from_millis(800)).await;
    let listed = list(&mut stream).await;
    assert!(listed.contains(&("quiet".into(), "Empty".into())), "the expired member is gone: {listed:?}");
    assert_eq!(heartbeat(&mut stream, "quiet", &member, 1).await, UNKNOWN_MEMBER_ID);
}

/// Offsets of an Empty group expire after `offsets.retention.minutes`; the group goes with
/// its last offset — in the same retention pass, or in the next one when the group became
/// Empty after its offsets were committed (its own retention counts from then), so the test
/// waits for that too. (Asserted at once, it failed once in CI under load: the listing fell
/// between the two passes.)
#[tokio::test]
async fn offsets_of_an_empty_group_expire() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = sluice_broker::NodeConfig::ephemeral(1, temp.path());
    config.coordinator.shard.offsets_retention_ms = 300;
    config.coordinator.shard.offsets_retention_check_interval_ms = 50;
    let broker = TestBroker::start_config(config).await;
    let mut stream = broker.connect().await;
    create_topic(&mut stream, "t", 1).await;
    assert_eq!(find_coordinator(&mut stream, "fleeting").await.0, NONE);
    assert_eq!(commit(&mut stream, "fleeting", "", -1, &[("t", 0, 3, "")]).await, vec![NONE]);
    assert_eq!(fetch_offset(&mut stream, "fleeting", "t", 0).await.2, 3);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fetch_offset(&mut stream, "fleeting", "t", 0).await.2 != -1 {
        assert!(Instant::now() < deadline, "the offset never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while list(&mut stream).await.iter().any(|(g, _)| g == "fleeting") {
        assert!(Instant::now() < deadline, "the group never went with its offsets");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `__consumer_offsets` is written only by the coordinator and cannot be deleted.
#[tokio::test]
async fn the_offsets_topic_is_protected() {
    let broker = TestBroker::start().await;
    let mut stream = broker.connect().await;
    assert_eq!(find_coordinator(&mut stream, "g").await.0, NONE);
    let records = sluice_proto::records::build_record_batch(
        &[sluice_proto::records::ProducedRecord { value: Some("x".into()), ..Default::default() }],
        &Default::default(),
    )
    .unwrap();
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5_000).with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(TopicName(text("__consumer_offsets")))
            .with_partition_data(vec![produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))]),
    ]);
    let response: ProduceResponse = call(&mut stream, ApiKey::Produce, 9, &request).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, kafka_code::INVALID_TOPIC_EXCEPTION);
    let request = DeleteTopicsRequest::default().with_topic_names(vec![TopicName(text("__consumer_offsets"))]);
    let response: DeleteTopicsResponse = call(&mut stream, ApiKey::DeleteTopics, 5, &request).await;
    assert_eq!(response.responses[0].error_code, kafka_code::INVALID_TOPIC_EXCEPTION);
}

/// A group of one gets its assignment after `group.initial.rebalance.delay.ms`, not after a
/// session timeout: with a 300 ms delay and a 30 s session, the join completes in between.
#[tokio::test]
async fn a_group_of_one_joins_after_the_initial_delay_not_a_session_timeout() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = sluice_broker::NodeConfig::ephemeral(1, temp.path());
    config.coordinator.shard.group.initial_rebalance_delay_ms = 300;
    let broker = TestBroker::start_config(config).await;
    let mut stream = broker.connect().await;
    assert_eq!(find_coordinator(&mut stream, "prompt").await.0, NONE);
    let started = Instant::now();
    let joined = join_new_member(&mut stream, "prompt", 30_000).await;
    let waited = started.elapsed();
    assert_eq!((joined.error_code, joined.generation_id), (NONE, 1));
    assert!(waited >= Duration::from_millis(300), "the initial delay was not waited: {waited:?}");
    assert!(waited < Duration::from_secs(10), "the join waited for something else: {waited:?}");
}
