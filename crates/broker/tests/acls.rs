//! The authorizer against a real in-process broker, with bytes under the test's control: what
//! real clients cannot easily send (a consumer posing as a replica, CVE-2018-1288) and the
//! fallback of `--allow-everyone-if-no-acl-found`. The real-client matrix (confluent-kafka,
//! kcat, kafka-python, kafka-acls.sh, `sluice acl`) is `tests/security/test_acls.py`.

mod common;

use common::wire::{batch_of, create_topic, produce, read_all, topic_name};
use common::{call, TestBroker};
use sluice_broker::kafka_code;
use sluice_broker::security::authorizer::AuthorizerConfig;
use sluice_broker::NodeConfig;
use sluice_proto::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use sluice_proto::kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use sluice_proto::kafka_protocol::messages::*;
use sluice_proto::kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

/// A broker with the authorizer on, no super user, and `allow_everyone_if_no_acl_found`.
async fn start_open() -> (TestBroker, tempfile::TempDir) {
    let temp = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::ephemeral(1, temp.path());
    config.authorizer =
        AuthorizerConfig { enabled: true, super_users: Vec::new(), allow_everyone_if_no_acl_found: true };
    (TestBroker::start_config(config).await, temp)
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// CreateAcls of one ALLOW binding on the cluster for `principal`; the result's error code.
async fn allow_on_cluster(stream: &mut TcpStream, principal: &str, operation: i8) -> i16 {
    let request = CreateAclsRequest::default().with_creations(vec![create_acls_request::AclCreation::default()
        .with_resource_type(4)
        .with_resource_name(text("kafka-cluster"))
        .with_resource_pattern_type(3)
        .with_principal(text(principal))
        .with_host(text("*"))
        .with_operation(operation)
        .with_permission_type(3)]);
    let response: CreateAclsResponse = call(stream, ApiKey::CreateAcls, 3, &request).await;
    response.results[0].error_code
}

fn fetch(replica_id: i32, topic: &str) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(replica_id.into())
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default().with_partition(0).with_partition_max_bytes(1 << 20)])])
}

#[tokio::test]
async fn a_consumer_posing_as_a_replica_is_refused_and_the_fallback_stops_at_the_first_acl() {
    let (broker, _temp) = start_open().await;
    let mut stream = broker.connect().await;
    // No binding anywhere: with the fallback, User:ANONYMOUS may create and write.
    assert_eq!(create_topic(&mut stream, "t", 1).await, 0);
    assert_eq!(produce(&mut stream, "t", 0, batch_of(&[b"one".to_vec()])).await.0, 0);
    // A replica fetch needs CLUSTER_ACTION; the cluster has no binding yet, so it reaches the
    // fetch handler (which answers NOT_LEADER_OR_FOLLOWER: broker 1 leads, it follows nothing).
    let response: FetchResponse = call(&mut stream, ApiKey::Fetch, 12, &fetch(1, "t")).await;
    assert_eq!(response.responses[0].partitions[0].error_code, kafka_code::NOT_LEADER_OR_FOLLOWER);

    // The first binding on the cluster is someone else's: the fallback no longer applies to it.
    assert_eq!(allow_on_cluster(&mut stream, "User:broker", 9).await, 0);
    let response: FetchResponse = call(&mut stream, ApiKey::Fetch, 12, &fetch(1, "t")).await;
    let refused = &response.responses[0].partitions[0];
    assert_eq!(refused.error_code, kafka_code::TOPIC_AUTHORIZATION_FAILED, "a replica id without CLUSTER_ACTION");
    assert!(refused.records.as_ref().is_none_or(|r| r.is_empty()), "no records for a refused replica fetch");
    let request = OffsetForLeaderEpochRequest::default().with_replica_id(1.into()).with_topics(vec![
        OffsetForLeaderTopic::default()
            .with_topic(topic_name("t"))
            .with_partitions(vec![OffsetForLeaderPartition::default().with_partition(0).with_leader_epoch(0)]),
    ]);
    let response: OffsetForLeaderEpochResponse = call(&mut stream, ApiKey::OffsetForLeaderEpoch, 4, &request).await;
    assert_eq!(response.topics[0].partitions[0].error_code, kafka_code::TOPIC_AUTHORIZATION_FAILED);
    // As a consumer the same caller still reads the topic (no binding names it).
    let values = read_all(&mut stream, "t", 0).await.unwrap();
    assert_eq!(values.len(), 1);

    // Changing the ACLs now needs ALTER on the cluster, which nobody has given User:ANONYMOUS.
    assert_eq!(allow_on_cluster(&mut stream, "User:ANONYMOUS", 7).await, kafka_code::CLUSTER_AUTHORIZATION_FAILED);
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let response: DescribeAclsResponse = call(&mut stream, ApiKey::DescribeAcls, 3, &request).await;
    assert_eq!(response.error_code, kafka_code::CLUSTER_AUTHORIZATION_FAILED);
    assert!(response.resources.is_empty(), "a refused DescribeAcls lists nothing");
    broker.stop().await;
}

#[tokio::test]
async fn metadata_answers_a_refused_named_topic_and_hides_it_from_the_full_list() {
    let (broker, _temp) = start_open().await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic(&mut stream, "open", 1).await, 0);
    assert_eq!(create_topic(&mut stream, "closed", 1).await, 0);
    // A binding on "closed" for someone else: User:ANONYMOUS may no longer describe it.
    let request = CreateAclsRequest::default().with_creations(vec![create_acls_request::AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(text("closed"))
        .with_resource_pattern_type(3)
        .with_principal(text("User:owner"))
        .with_host(text("*"))
        .with_operation(2)
        .with_permission_type(3)]);
    let response: CreateAclsResponse = call(&mut stream, ApiKey::CreateAcls, 3, &request).await;
    assert_eq!(response.results[0].error_code, 0);

    let all: MetadataResponse =
        call(&mut stream, ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)).await;
    let names: Vec<&str> = all.topics.iter().filter_map(|t| t.name.as_ref()).map(|n| n.0.as_str()).collect();
    assert!(names.contains(&"open") && !names.contains(&"closed"), "{names:?}");

    let named = MetadataRequest::default()
        .with_topics(Some(
            vec![metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name("closed")))],
        ))
        .with_include_topic_authorized_operations(true);
    let answer: MetadataResponse = call(&mut stream, ApiKey::Metadata, 12, &named).await;
    assert_eq!(answer.topics.len(), 1);
    assert_eq!(answer.topics[0].error_code, kafka_code::TOPIC_AUTHORIZATION_FAILED);
    assert!(answer.topics[0].partitions.is_empty(), "nothing about a refused topic");
    // v0 reads an empty list as "every topic": a refused one must not turn into that.
    let v0 = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name("closed")))
    ]));
    let answer: MetadataResponse = call(&mut stream, ApiKey::Metadata, 0, &v0).await;
    let names: Vec<&str> = answer.topics.iter().filter_map(|t| t.name.as_ref()).map(|n| n.0.as_str()).collect();
    assert_eq!(names, ["closed"]);
    assert_eq!(answer.topics[0].error_code, kafka_code::TOPIC_AUTHORIZATION_FAILED);

    // Produce to it is refused and appends nothing.
    let (code, _) = produce(&mut stream, "closed", 0, batch_of(&[b"x".to_vec()])).await;
    assert_eq!(code, kafka_code::TOPIC_AUTHORIZATION_FAILED);
    let owner_view = broker.broker.partitions.get("closed", 0).unwrap();
    assert_eq!(owner_view.high_watermark_now(), 0);
    broker.stop().await;
}
