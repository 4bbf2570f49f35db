//! Group membership: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups,
//! DescribeGroups, DeleteGroups.
//!
//! Each handler converts the wire request of its version into a `sluice-group` event (the
//! version mapping is listed in the `sluice-group` crate docs), hands it to the shard that
//! coordinates the group ([`crate::coordinator`]), and copies the typed response back into the
//! wire response of the request's version. A group this broker does not coordinate gets
//! NOT_COORDINATOR (or COORDINATOR_LOAD_IN_PROGRESS while its partition loads), which makes the
//! client look the coordinator up again.

use sluice_group::{ErrorCode, Event, GroupState, JoinResponse, MemberIdentity, Protocol, Response, SyncResponse};
use sluice_proto::kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use sluice_proto::kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use sluice_proto::kafka_protocol::messages::find_coordinator_response::Coordinator;
use sluice_proto::kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use sluice_proto::kafka_protocol::messages::leave_group_response::MemberResponse;
use sluice_proto::kafka_protocol::messages::list_groups_response::ListedGroup as WireListedGroup;
use sluice_proto::kafka_protocol::messages::{
    BrokerId as WireBrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::coordinator::{partition_for, Shard, OFFSETS_TOPIC};
use crate::handlers::metadata::split_host_port;
use crate::handlers::{authorized_operations, since, str_bytes};
use crate::kafka_code;

/// INVALID_GROUP_ID: an empty group id (not retriable).
pub const INVALID_GROUP_ID: i16 = 24;

/// FindCoordinator key type of a consumer group (`0`); `1` is a transactional id.
pub const KEY_TYPE_GROUP: i8 = 0;

/// Who sent a request, as JoinGroup records it for DescribeGroups.
#[derive(Debug, Clone)]
pub struct Client {
    /// The request header's client id.
    pub client_id: String,
    /// The peer address as Kafka prints it (`/127.0.0.1`).
    pub client_host: String,
}

/// The shard coordinating `group_id`, or the error every group request gets first:
/// INVALID_GROUP_ID for an empty id, then the coordinator's (see
/// [`crate::coordinator::GroupCoordinator::shard_for`]).
pub(crate) fn group_shard(broker: &Broker, group_id: &str) -> Result<std::sync::Arc<Shard>, i16> {
    if group_id.is_empty() {
        return Err(INVALID_GROUP_ID);
    }
    broker.groups.shard_for(&broker.view(), group_id)
}

fn optional(text: &Option<StrBytes>) -> Option<String> {
    text.as_ref().map(|value| value.to_string())
}

/// Answers FindCoordinator: v0–v3 for one key, v4+ for a batch of keys. Creates
/// `__consumer_offsets` on first use.
/// The coordinator is given by its endpoint on `listener`, the one the client came in on.
pub async fn find_coordinator(
    broker: &Broker,
    version: i16,
    request: FindCoordinatorRequest,
    listener: &str,
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if version >= 4 { request.coordinator_keys.clone() } else { vec![request.key.clone()] };
    let created = if request.key_type == KEY_TYPE_GROUP { broker.ensure_offsets_topic().await } else { Ok(()) };
    let coordinators: Vec<Coordinator> = keys
        .iter()
        .map(|key| {
            let answer = Coordinator::default().with_key(key.clone()).with_node_id(WireBrokerId(-1)).with_port(-1);
            let located = match (&created, request.key_type) {
                (_, key_type) if key_type != KEY_TYPE_GROUP => {
                    Err((kafka_code::INVALID_REQUEST, "transactions are not supported".to_string()))
                }
                (Err(error), _) => {
                    tracing::warn!(%error, "cannot create {OFFSETS_TOPIC}");
                    Err((ErrorCode::COORDINATOR_NOT_AVAILABLE.0, error.to_string()))
                }
                (Ok(()), _) => locate(broker, key.as_str(), listener),
            };
            match located {
                Ok((node_id, host, port)) => answer
                    .with_error_code(kafka_code::NONE)
                    .with_node_id(WireBrokerId(node_id))
                    .with_host(str_bytes(host))
                    .with_port(port),
                Err((code, message)) => answer.with_error_code(code).with_error_message(Some(str_bytes(message))),
            }
        })
        .collect();
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let first = coordinators.into_iter().next().unwrap_or_default();
    FindCoordinatorResponse::default()
        .with_error_code(first.error_code)
        .with_error_message(since(version, 1, first.error_message, None))
        .with_node_id(first.node_id)
        .with_host(first.host)
        .with_port(first.port)
}

/// The broker leading the `__consumer_offsets` partition of `group_id`.
fn locate(broker: &Broker, group_id: &str, listener: &str) -> Result<(i32, String, i32), (i16, String)> {
    let unavailable = |why: &str| (ErrorCode::COORDINATOR_NOT_AVAILABLE.0, why.to_string());
    let view = broker.view();
    let topic = view.topics.get(OFFSETS_TOPIC).ok_or_else(|| unavailable("the offsets topic is being created"))?;
    let partition = &topic.partitions[partition_for(group_id, topic.partitions.len()) as usize];
    let leader = partition.leader.ok_or_else(|| unavailable("the group's offsets partition has no leader"))?;
    // Name this broker only once it can answer the group's requests: a coordinator just named
    // must not answer NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS, which some clients do
    // not retry (librdkafka's AdminClient); COORDINATOR_NOT_AVAILABLE makes them ask again.
    if leader == broker.node_id && broker.groups.shard_for(&view, group_id).is_err() {
        return Err(unavailable("the group's offsets partition is loading"));
    }
    let record = view.brokers.get(&leader).ok_or_else(|| unavailable("the coordinator is not registered"))?;
    let endpoint = record.endpoint(listener).ok_or_else(|| unavailable("the coordinator has no such listener"))?;
    let (host, port) = split_host_port(endpoint).ok_or_else(|| unavailable("bad advertised address"))?;
    Ok((leader, host, port))
}

/// Answers JoinGroup (v0–v9).
pub async fn join_group(
    broker: &Broker,
    version: i16,
    request: JoinGroupRequest,
    client: &Client,
) -> JoinGroupResponse {
    let member_id = request.member_id.to_string();
    let error = |code: i16| join_response(version, JoinResponse::error(&member_id, ErrorCode(code)));
    let shard = match group_shard(broker, &request.group_id) {
        Ok(shard) => shard,
        Err(code) => return error(code),
    };
    let join = sluice_group::JoinGroup {
        request_id: sluice_group::RequestId(0),
        member_id: member_id.clone(),
        group_instance_id: since(version, 5, optional(&request.group_instance_id), None),
        client_id: client.client_id.clone(),
        client_host: client.client_host.clone(),
        member_id_suffix: uuid::Uuid::new_v4().to_string(),
        session_timeout_ms: request.session_timeout_ms,
        // JoinGroup v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 { request.rebalance_timeout_ms } else { request.session_timeout_ms },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|protocol| Protocol { name: protocol.name.to_string(), metadata: protocol.metadata.clone() })
            .collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let create = member_id.is_empty();
    let answer = shard
        .request(&request.group_id, create, |request_id| Event::Join(sluice_group::JoinGroup { request_id, ..join }))
        .await;
    match answer {
        Ok(Response::Join(response)) => join_response(version, response),
        Ok(other) => unexpected(other, || error(kafka_code::UNKNOWN_SERVER_ERROR)),
        Err(code) => error(code.0),
    }
}

fn unexpected<T>(response: Response, error: impl FnOnce() -> T) -> T {
    tracing::error!(?response, "group answered with the wrong response type");
    crate::request_scope::server_error(
        kafka_code::UNKNOWN_SERVER_ERROR,
        &"group answered with the wrong response type",
    );
    error()
}

fn join_response(version: i16, response: JoinResponse) -> JoinGroupResponse {
    let members = response
        .members
        .into_iter()
        .map(|member| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(member.member_id))
                .with_group_instance_id(since(version, 5, member.group_instance_id.map(str_bytes), None))
                .with_metadata(member.metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(response.error_code.0)
        .with_generation_id(response.generation_id)
        .with_protocol_type(since(version, 7, response.protocol_type.map(str_bytes), None))
        // Before v7 the protocol name is a non-nullable string.
        .with_protocol_name(match version >= 7 {
            true => response.protocol_name.map(str_bytes),
            false => Some(str_bytes(response.protocol_name.unwrap_or_default())),
        })
        .with_leader(str_bytes(response.leader))
        .with_skip_assignment(since(version, 9, response.skip_assignment, false))
        .with_member_id(str_bytes(response.member_id))
        .with_members(members)
}

/// Answers SyncGroup (v0–v5).
pub async fn sync_group(broker: &Broker, version: i16, request: SyncGroupRequest) -> SyncGroupResponse {
    let error = |code: i16| sync_response(version, SyncResponse::error(ErrorCode(code)));
    let shard = match group_shard(broker, &request.group_id) {
        Ok(shard) => shard,
        Err(code) => return error(code),
    };
    let sync = sluice_group::SyncGroup {
        request_id: sluice_group::RequestId(0),
        member_id: request.member_id.to_string(),
        group_instance_id: optional(&request.group_instance_id),
        generation_id: request.generation_id,
        protocol_type: since(version, 5, optional(&request.protocol_type), None),
        protocol_name: since(version, 5, optional(&request.protocol_name), None),
        assignments: request
            .assignments
            .iter()
            .map(|assignment| (assignment.member_id.to_string(), assignment.assignment.clone()))
            .collect(),
    };
    let answer = shard
        .request(&request.group_id, false, |request_id| Event::Sync(sluice_group::SyncGroup { request_id, ..sync }))
        .await;
    match answer {
        Ok(Response::Sync(response)) => sync_response(version, response),
        Ok(other) => unexpected(other, || error(kafka_code::UNKNOWN_SERVER_ERROR)),
        Err(code) => error(code.0),
    }
}

fn sync_response(version: i16, response: SyncResponse) -> SyncGroupResponse {
    SyncGroupResponse::default()
        .with_error_code(response.error_code.0)
        .with_protocol_type(since(version, 5, response.protocol_type.map(str_bytes), None))
        .with_protocol_name(since(version, 5, response.protocol_name.map(str_bytes), None))
        .with_assignment(response.assignment)
}

/// Answers Heartbeat (v0–v4).
pub async fn heartbeat(broker: &Broker, request: HeartbeatRequest) -> HeartbeatResponse {
    let error = |code: i16| HeartbeatResponse::default().with_error_code(code);
    let shard = match group_shard(broker, &request.group_id) {
        Ok(shard) => shard,
        Err(code) => return error(code),
    };
    let heartbeat = sluice_group::Heartbeat {
        request_id: sluice_group::RequestId(0),
        member_id: request.member_id.to_string(),
        group_instance_id: optional(&request.group_instance_id),
        generation_id: request.generation_id,
    };
    let answer = shard
        .request(&request.group_id, false, |request_id| {
            Event::Heartbeat(sluice_group::Heartbeat { request_id, ..heartbeat })
        })
        .await;
    match answer {
        Ok(Response::Heartbeat { error_code }) => error(error_code.0),
        Ok(other) => unexpected(other, || error(kafka_code::UNKNOWN_SERVER_ERROR)),
        Err(code) => error(code.0),
    }
}

/// Answers LeaveGroup: v0–v2 name one member and answer with its code at the top level; v3+
/// name a batch.
pub async fn leave_group(broker: &Broker, version: i16, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let members: Vec<MemberIdentity> = if version >= 3 {
        request
            .members
            .iter()
            .map(|member| MemberIdentity {
                member_id: member.member_id.to_string(),
                group_instance_id: optional(&member.group_instance_id),
            })
            .collect()
    } else {
        vec![MemberIdentity { member_id: request.member_id.to_string(), group_instance_id: None }]
    };
    let error = |code: i16| {
        let per_member = members
            .iter()
            .map(|member| {
                MemberResponse::default()
                    .with_member_id(str_bytes(member.member_id.clone()))
                    .with_group_instance_id(member.group_instance_id.clone().map(str_bytes))
                    .with_error_code(code)
            })
            .collect();
        leave_response(version, code, per_member)
    };
    let shard = match group_shard(broker, &request.group_id) {
        Ok(shard) => shard,
        Err(code) => return leave_response(version, code, Vec::new()),
    };
    let leave = members.clone();
    let answer = shard
        .request(&request.group_id, false, |request_id| {
            Event::Leave(sluice_group::LeaveGroup { request_id, members: leave })
        })
        .await;
    match answer {
        Ok(Response::Leave(response)) => {
            let per_member: Vec<MemberResponse> = response
                .members
                .into_iter()
                .map(|member| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(member.member_id))
                        .with_group_instance_id(member.group_instance_id.map(str_bytes))
                        .with_error_code(member.error_code.0)
                })
                .collect();
            let code = match (version >= 3, per_member.first()) {
                (false, Some(member)) if response.error_code == ErrorCode::NONE => member.error_code,
                _ => response.error_code.0,
            };
            leave_response(version, code, per_member)
        }
        Ok(other) => unexpected(other, || error(kafka_code::UNKNOWN_SERVER_ERROR)),
        Err(code) => error(code.0),
    }
}

fn leave_response(version: i16, code: i16, members: Vec<MemberResponse>) -> LeaveGroupResponse {
    LeaveGroupResponse::default().with_error_code(code).with_members(since(version, 3, members, Vec::new()))
}

/// The type of every group Sluice coordinates (KIP-848's name for the classic protocol).
const CLASSIC_GROUP_TYPE: &str = "classic";

/// Answers ListGroups (v0–v5; v4 filters by state, v5 by type, case-insensitively as Kafka
/// does; every group is `classic`).
pub async fn list_groups(broker: &Broker, request: ListGroupsRequest) -> ListGroupsResponse {
    let wanted: Vec<String> = request.states_filter.iter().map(|state| state.to_lowercase()).collect();
    // KIP-848's type filter (v5): every group here is a classic one.
    let types: Vec<String> = request.types_filter.iter().map(|kind| kind.to_lowercase()).collect();
    let mut groups = Vec::new();
    if !types.is_empty() && !types.iter().any(|kind| kind == CLASSIC_GROUP_TYPE) {
        return ListGroupsResponse::default().with_error_code(kafka_code::NONE).with_groups(groups);
    }
    for shard in broker.groups.shards() {
        for group in shard.list().await {
            if wanted.is_empty() || wanted.contains(&group.state.to_lowercase()) {
                groups.push(
                    WireListedGroup::default()
                        .with_group_id(GroupId(str_bytes(group.group_id)))
                        .with_protocol_type(str_bytes(group.protocol_type))
                        .with_group_state(str_bytes(group.state))
                        .with_group_type(str_bytes(CLASSIC_GROUP_TYPE)),
                );
            }
        }
    }
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let code =
        if broker.groups.is_loading() { crate::coordinator::COORDINATOR_LOAD_IN_PROGRESS } else { kafka_code::NONE };
    ListGroupsResponse::default().with_error_code(code).with_groups(groups)
}

/// DescribeGroups from this version on answers an unknown group with GROUP_ID_NOT_FOUND and
/// an error message (KIP-1043), where earlier versions describe it as Dead with no error.
const DESCRIBE_GROUPS_NOT_FOUND_VERSION: i16 = 6;

/// Answers DescribeGroups (v0–v6). An unknown group is described as Dead with no error before
/// v6 and is GROUP_ID_NOT_FOUND from v6, as Kafka 4 answers.
pub async fn describe_groups(broker: &Broker, version: i16, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let view = broker.view();
    let mut groups = Vec::with_capacity(request.groups.len());
    for group_id in &request.groups {
        let described = DescribedGroup::default().with_group_id(group_id.clone()).with_authorized_operations(
            authorized_operations::when_asked(
                version >= 3 && request.include_authorized_operations,
                authorized_operations::GROUP,
            ),
        );
        let shard = match broker.groups.shard_for(&view, group_id) {
            Ok(shard) => shard,
            Err(code) => {
                groups.push(described.with_error_code(code));
                continue;
            }
        };
        let Some(description) = shard.describe(group_id).await else {
            groups.push(if version >= DESCRIBE_GROUPS_NOT_FOUND_VERSION {
                described
                    .with_error_code(ErrorCode::GROUP_ID_NOT_FOUND.0)
                    .with_error_message(Some(str_bytes(format!("Group {} not found.", group_id.0))))
            } else {
                described.with_error_code(kafka_code::NONE).with_group_state(str_bytes(GroupState::Dead.as_str()))
            });
            continue;
        };
        let members = description
            .members
            .into_iter()
            .map(|member| {
                DescribedGroupMember::default()
                    .with_member_id(str_bytes(member.member_id))
                    .with_group_instance_id(since(version, 4, member.group_instance_id.map(str_bytes), None))
                    .with_client_id(str_bytes(member.client_id))
                    .with_client_host(str_bytes(member.client_host))
                    .with_member_metadata(member.metadata)
                    .with_member_assignment(member.assignment)
            })
            .collect();
        groups.push(
            described
                .with_error_code(kafka_code::NONE)
                .with_group_state(str_bytes(description.state.as_str()))
                .with_protocol_type(str_bytes(description.protocol_type))
                .with_protocol_data(str_bytes(description.protocol_name))
                .with_members(members),
        );
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

/// Answers DeleteGroups (v0–v2): only Empty groups; their offsets go with them.
pub async fn delete_groups(broker: &Broker, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let view = broker.view();
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in &request.groups_names {
        let code = match broker.groups.shard_for(&view, group_id) {
            Ok(shard) => shard.delete_group(group_id).await,
            Err(code) => code,
        };
        results.push(DeletableGroupResult::default().with_group_id(group_id.clone()).with_error_code(code));
    }
    DeleteGroupsResponse::default().with_results(results)
}
