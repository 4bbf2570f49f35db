//! Consumer-group requests for tests: each builds the real wire request of the given version
//! and returns the decoded response.

use bytes::Bytes;
use sluice_proto::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use sluice_proto::kafka_protocol::messages::leave_group_request::MemberIdentity;
use sluice_proto::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use sluice_proto::kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
use sluice_proto::kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use sluice_proto::kafka_protocol::messages::*;
use sluice_proto::kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

use super::call;

pub const JOIN_VERSION: i16 = 9;
pub const SYNC_VERSION: i16 = 5;
pub const COMMIT_VERSION: i16 = 8;
pub const FETCH_OFFSETS_VERSION: i16 = 8;

pub fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

pub fn group(value: &str) -> GroupId {
    GroupId(text(value))
}

/// FindCoordinator v4 for one group: (error code, node id, port).
pub async fn find_coordinator(stream: &mut TcpStream, group_id: &str) -> (i16, i32, i32) {
    let request = FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![text(group_id)]);
    let response: FindCoordinatorResponse = call(stream, ApiKey::FindCoordinator, 4, &request).await;
    let coordinator = &response.coordinators[0];
    (coordinator.error_code, coordinator.node_id.0, coordinator.port)
}

/// A JoinGroup request of a consumer with one protocol.
pub fn join_request(group_id: &str, member_id: &str, protocol_type: &str, session_timeout_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_member_id(text(member_id))
        .with_session_timeout_ms(session_timeout_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(text(protocol_type))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(text("range"))
            .with_metadata(Bytes::from_static(b"subscription"))])
}

pub async fn join(stream: &mut TcpStream, request: &JoinGroupRequest) -> JoinGroupResponse {
    call(stream, ApiKey::JoinGroup, JOIN_VERSION, request).await
}

/// JoinGroup with the MEMBER_ID_REQUIRED handshake: returns the response of the second join.
pub async fn join_new_member(stream: &mut TcpStream, group_id: &str, session_timeout_ms: i32) -> JoinGroupResponse {
    let first = join(stream, &join_request(group_id, "", "consumer", session_timeout_ms)).await;
    assert_eq!(first.error_code, 79, "a new member is first given its id (MEMBER_ID_REQUIRED)");
    join(stream, &join_request(group_id, &first.member_id, "consumer", session_timeout_ms)).await
}

pub async fn sync(
    stream: &mut TcpStream,
    group_id: &str,
    member_id: &str,
    generation_id: i32,
    assignments: &[(&str, &'static [u8])],
) -> SyncGroupResponse {
    let request = SyncGroupRequest::default()
        .with_group_id(group(group_id))
        .with_member_id(text(member_id))
        .with_generation_id(generation_id)
        .with_protocol_type(Some(text("consumer")))
        .with_protocol_name(Some(text("range")))
        .with_assignments(
            assignments
                .iter()
                .map(|(member, bytes)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(text(member))
                        .with_assignment(Bytes::from_static(bytes))
                })
                .collect(),
        );
    call(stream, ApiKey::SyncGroup, SYNC_VERSION, &request).await
}

pub async fn heartbeat(stream: &mut TcpStream, group_id: &str, member_id: &str, generation_id: i32) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(group(group_id))
        .with_member_id(text(member_id))
        .with_generation_id(generation_id);
    let response: HeartbeatResponse = call(stream, ApiKey::Heartbeat, 4, &request).await;
    response.error_code
}

pub async fn leave(stream: &mut TcpStream, group_id: &str, member_id: &str) -> LeaveGroupResponse {
    let request = LeaveGroupRequest::default()
        .with_group_id(group(group_id))
        .with_members(vec![MemberIdentity::default().with_member_id(text(member_id))]);
    call(stream, ApiKey::LeaveGroup, 5, &request).await
}

/// OffsetCommit v8 of `(topic, partition, offset, metadata)`; the error codes in order.
pub async fn commit(
    stream: &mut TcpStream,
    group_id: &str,
    member_id: &str,
    generation_id: i32,
    offsets: &[(&str, i32, i64, &str)],
) -> Vec<i16> {
    let topics = offsets
        .iter()
        .map(|(topic, partition, offset, metadata)| {
            OffsetCommitRequestTopic::default().with_name(TopicName(text(topic))).with_partitions(vec![
                OffsetCommitRequestPartition::default()
                    .with_partition_index(*partition)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(0)
                    .with_committed_metadata(Some(text(metadata))),
            ])
        })
        .collect();
    let request = OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_member_id(text(member_id))
        .with_generation_id_or_member_epoch(generation_id)
        .with_topics(topics);
    let response: OffsetCommitResponse = call(stream, ApiKey::OffsetCommit, COMMIT_VERSION, &request).await;
    response.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code)).collect()
}

/// OffsetFetch v8 of one partition: (group error, partition error, offset, metadata).
pub async fn fetch_offset(
    stream: &mut TcpStream,
    group_id: &str,
    topic: &str,
    partition: i32,
) -> (i16, i16, i64, String) {
    let request = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(group(group_id))
        .with_topics(Some(vec![OffsetFetchRequestTopics::default()
            .with_name(TopicName(text(topic)))
            .with_partition_indexes(vec![partition])]))]);
    let response: OffsetFetchResponse = call(stream, ApiKey::OffsetFetch, FETCH_OFFSETS_VERSION, &request).await;
    let answer = &response.groups[0];
    match answer.topics.first().and_then(|t| t.partitions.first()) {
        Some(p) => (
            answer.error_code,
            p.error_code,
            p.committed_offset,
            p.metadata.as_ref().map_or_else(String::new, |m| m.to_string()),
        ),
        None => (answer.error_code, -1, -1, String::new()),
    }
}

/// DescribeGroups v5 of one group.
pub async fn describe(stream: &mut TcpStream, group_id: &str) -> describe_groups_response::DescribedGroup {
    let request = DescribeGroupsRequest::default().with_groups(vec![group(group_id)]);
    let response: DescribeGroupsResponse = call(stream, ApiKey::DescribeGroups, 5, &request).await;
    response.groups.into_iter().next().unwrap()
}

/// ListGroups v4: (group id, state) pairs.
pub async fn list(stream: &mut TcpStream) -> Vec<(String, String)> {
    let response: ListGroupsResponse = call(stream, ApiKey::ListGroups, 4, &ListGroupsRequest::default()).await;
    assert_eq!(response.error_code, 0);
    response.groups.iter().map(|g| (g.group_id.to_string(), g.group_state.to_string())).collect()
}

pub async fn delete_group(stream: &mut TcpStream, group_id: &str) -> i16 {
    let request = DeleteGroupsRequest::default().with_groups_names(vec![group(group_id)]);
    let response: DeleteGroupsResponse = call(stream, ApiKey::DeleteGroups, 2, &request).await;
    response.results[0].error_code
}

/// For the api-range test: one request of a group api at `version` against a broker with a
/// topic `ends`, checked for success. Returns false for an api that is not a group api.
pub async fn check_group_api(stream: &mut TcpStream, api_key: ApiKey, version: i16) -> bool {
    let context = format!("{api_key:?} v{version}");
    // A group per api and version, so that no check joins a group another left mid-rebalance;
    // the offset apis share one group, which the OffsetCommit checks create.
    let group_id = format!("ends-{}-{version}", api_key as i16);
    match api_key {
        ApiKey::FindCoordinator => {
            let request = match version {
                0..=3 => FindCoordinatorRequest::default().with_key(text(&group_id)),
                _ => FindCoordinatorRequest::default().with_coordinator_keys(vec![text(&group_id)]),
            };
            let response: FindCoordinatorResponse = call(stream, api_key, version, &request).await;
            let (code, node) = match version {
                0..=3 => (response.error_code, response.node_id.0),
                _ => (response.coordinators[0].error_code, response.coordinators[0].node_id.0),
            };
            assert_eq!((code, node), (0, 1), "{context}");
        }
        ApiKey::JoinGroup => {
            let request = join_request(&group_id, "", "consumer", 10_000);
            let mut response: JoinGroupResponse = call(stream, api_key, version, &request).await;
            if version >= 4 {
                assert_eq!(response.error_code, 79, "{context}");
                let request = join_request(&group_id, &response.member_id, "consumer", 10_000);
                response = call(stream, api_key, version, &request).await;
            }
            assert_eq!((response.error_code, response.generation_id), (0, 1), "{context}");
        }
        ApiKey::SyncGroup | ApiKey::Heartbeat | ApiKey::LeaveGroup => {
            let joined = join_new_member(stream, &group_id, 10_000).await;
            let member = joined.member_id.to_string();
            let code = match api_key {
                ApiKey::SyncGroup => {
                    let request = SyncGroupRequest::default()
                        .with_group_id(group(&group_id))
                        .with_member_id(text(&member))
                        .with_generation_id(1)
                        .with_assignments(vec![SyncGroupRequestAssignment::default().with_member_id(text(&member))]);
                    let response: SyncGroupResponse = call(stream, api_key, version, &request).await;
                    response.error_code
                }
                ApiKey::Heartbeat => {
                    assert_eq!(sync(stream, &group_id, &member, 1, &[(&member, b"")]).await.error_code, 0);
                    let request = HeartbeatRequest::default()
                        .with_group_id(group(&group_id))
                        .with_member_id(text(&member))
                        .with_generation_id(1);
                    let response: HeartbeatResponse = call(stream, api_key, version, &request).await;
                    response.error_code
                }
                _ => {
                    let request = match version {
                        0..=2 => {
                            LeaveGroupRequest::default().with_group_id(group(&group_id)).with_member_id(text(&member))
                        }
                        _ => LeaveGroupRequest::default()
                            .with_group_id(group(&group_id))
                            .with_members(vec![MemberIdentity::default().with_member_id(text(&member))]),
                    };
                    let response: LeaveGroupResponse = call(stream, api_key, version, &request).await;
                    response.error_code
                }
            };
            assert_eq!(code, 0, "{context}");
        }
        ApiKey::OffsetCommit => {
            // Api keys sort before FindCoordinator's, which creates `__consumer_offsets`.
            assert_eq!(find_coordinator(stream, "ends-offsets").await.0, 0, "{context}");
            let request = OffsetCommitRequest::default()
                .with_group_id(group("ends-offsets"))
                .with_generation_id_or_member_epoch(-1)
                .with_retention_time_ms(-1)
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(TopicName(text("ends")))
                    .with_partitions(vec![OffsetCommitRequestPartition::default()
                        .with_committed_offset(1)
                        .with_committed_leader_epoch(-1)])]);
            let response: OffsetCommitResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.topics[0].partitions[0].error_code, 0, "{context}");
        }
        ApiKey::OffsetFetch => {
            let request = match version {
                0..=7 => OffsetFetchRequest::default().with_group_id(group("ends-offsets")).with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(TopicName(text("ends")))
                        .with_partition_indexes(vec![0]),
                ])),
                _ => OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(group("ends-offsets"))
                    .with_topics(None)]),
            };
            let response: OffsetFetchResponse = call(stream, api_key, version, &request).await;
            let offset = match version {
                0..=7 => response.topics[0].partitions[0].committed_offset,
                _ => response.groups[0].topics[0].partitions[0].committed_offset,
            };
            assert_eq!(offset, 1, "{context} reads the OffsetCommit of the loop above");
        }
        ApiKey::OffsetDelete => {
            let request = OffsetDeleteRequest::default().with_group_id(group("ends-offsets")).with_topics(vec![
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(text("ends")))
                    .with_partitions(vec![offset_delete_request::OffsetDeleteRequestPartition::default()]),
            ]);
            let response: OffsetDeleteResponse = call(stream, api_key, version, &request).await;
            assert_eq!((response.error_code, response.topics[0].partitions[0].error_code), (0, 0), "{context}");
        }
        ApiKey::ListGroups => {
            let response: ListGroupsResponse = call(stream, api_key, version, &ListGroupsRequest::default()).await;
            assert_eq!(response.error_code, 0, "{context}");
            assert!(!response.groups.is_empty(), "{context}");
            if version >= 5 {
                // KIP-848's type filter: every group is classic, none is a consumer group.
                assert!(response.groups.iter().all(|g| g.group_type.as_str() == "classic"), "{context}");
                let only = |kind: &str| ListGroupsRequest::default().with_types_filter(vec![text(kind)]);
                let classic: ListGroupsResponse = call(stream, api_key, version, &only("Classic")).await;
                assert_eq!(classic.groups.len(), response.groups.len(), "{context}");
                let consumer: ListGroupsResponse = call(stream, api_key, version, &only("consumer")).await;
                assert!(consumer.groups.is_empty(), "{context}");
            }
        }
        ApiKey::DescribeGroups => {
            let request = DescribeGroupsRequest::default().with_groups(vec![group("ends-offsets")]);
            let response: DescribeGroupsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.groups[0].error_code, 0, "{context}");
        }
        ApiKey::DeleteGroups => {
            let request = DeleteGroupsRequest::default().with_groups_names(vec![group("never-a-group")]);
            let response: DeleteGroupsResponse = call(stream, api_key, version, &request).await;
            assert_eq!(response.results[0].error_code, 69, "{context}: GROUP_ID_NOT_FOUND");
        }
        _ => return false,
    }
    true
}
