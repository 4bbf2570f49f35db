//! The metadata quorum through Kafka's KIP-853 APIs: DescribeQuorum (Kafka's
//! `kafka-metadata-quorum describe`, `Admin.describeMetadataQuorum`, `sluice cluster quorum`),
//! AddRaftVoter and RemoveRaftVoter (`kafka-metadata-quorum add-controller / remove-controller`,
//! `sluice cluster add-voter / remove-voter`).
//!
//! Sluice's metadata group is an openraft group whose members are the brokers themselves, so
//! Kafka's "controllers" are the voters and its "observers" the learners (brokers that receive
//! the metadata log without a vote). The answers come from the metadata leader (asked over the
//! Raft RPC connection when this broker is not it). The metadata partition is reported as
//! Kafka's `__cluster_metadata-0`; its offsets are Raft log indexes.
//!
//! - AddRaftVoter makes a learner a voter (openraft's joint consensus). A node not in the group
//!   yet is added first as a learner at the first listener's `host:port`, taken as its Raft
//!   address. DUPLICATE_VOTER if it already votes.
//! - RemoveRaftVoter makes a voter a learner: it keeps receiving the log and its broker keeps
//!   serving. VOTER_NOT_FOUND if it does not vote.

use std::time::Duration;
use std::time::SystemTime;

use sluice_meta::{MetaError, QuorumState, Role};
use sluice_proto::kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use sluice_proto::kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, BrokerId, DescribeQuorumRequest, DescribeQuorumResponse,
    RemoveRaftVoterRequest, RemoveRaftVoterResponse, TopicName,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::handlers::{meta_error, str_bytes};
use crate::kafka_code;

/// The name Kafka gives the metadata log, which DescribeQuorum must be asked about.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// The listener name reported for a member's Raft address in DescribeQuorum v2.
pub const RAFT_LISTENER_NAME: &str = "RAFT";

/// Longest wait an AddRaftVoter / RemoveRaftVoter may ask for (its `timeout_ms`), and the
/// wait used when it asks for none.
pub const VOTER_CHANGE_TIMEOUT_MS_MAX: u64 = 60_000;

/// Answers DescribeQuorum (v0–v2).
pub async fn describe(broker: &Broker, version: i16, request: DescribeQuorumRequest) -> DescribeQuorumResponse {
    let asks_metadata = request.topics.len() == 1
        && request.topics[0].topic_name.0.as_str() == METADATA_TOPIC
        && request.topics[0].partitions.len() == 1
        && request.topics[0].partitions[0].partition_index == 0;
    if !asks_metadata {
        return DescribeQuorumResponse::default()
            .with_error_code(kafka_code::INVALID_REQUEST)
            .with_error_message(version_field(version, "DescribeQuorum asks about __cluster_metadata partition 0"));
    }
    let state = match broker.meta.describe_quorum().await {
        Ok(state) => state,
        Err(error) => {
            let (code, message) = meta_error(&error);
            return DescribeQuorumResponse::default().with_error_code(code).with_error_message(if version >= 1 {
                message
            } else {
                None
            });
        }
    };
    let now_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let high_watermark = state.applied_index.map_or(0, |index| index as i64 + 1);
    let replica = |member: &sluice_meta::QuorumMember| {
        let log_end = member.matched_index.map_or(-1, |index| index as i64 + 1);
        ReplicaState::default()
            .with_replica_id(BrokerId(member.node_id as i32))
            .with_log_end_offset(log_end)
            // openraft keeps no per-follower contact time: unknown, as Kafka reports it.
            .with_last_fetch_timestamp(-1)
            .with_last_caught_up_timestamp(if version >= 1 && log_end >= high_watermark { now_ms } else { -1 })
    };
    let of_role = |role: Role| state.members.iter().filter(move |m| m.role == role);
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_error_code(kafka_code::NONE)
        .with_leader_id(BrokerId(state.leader_id as i32))
        .with_leader_epoch(i32::try_from(state.term).unwrap_or(i32::MAX))
        .with_high_watermark(high_watermark)
        .with_current_voters(of_role(Role::Voter).map(replica).collect())
        .with_observers(of_role(Role::Learner).map(replica).collect());
    let mut response =
        DescribeQuorumResponse::default().with_error_code(kafka_code::NONE).with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(str_bytes(METADATA_TOPIC)))
            .with_partitions(vec![partition])]);
    if version >= 2 {
        response = response.with_nodes(nodes(&state));
    }
    response
}

fn version_field(version: i16, message: &str) -> Option<StrBytes> {
    (version >= 1).then(|| str_bytes(message))
}

/// Each member's Raft address as a listener (v2), where it parses as `host:port`.
fn nodes(state: &QuorumState) -> Vec<Node> {
    state
        .members
        .iter()
        .filter_map(|member| {
            let (host, port) = member.addr.rsplit_once(':')?;
            let port = port.parse::<u16>().ok()?;
            let listener = Listener::default()
                .with_name(str_bytes(RAFT_LISTENER_NAME))
                .with_host(str_bytes(host.trim_start_matches('[').trim_end_matches(']')))
                .with_port(port);
            Some(Node::default().with_node_id(BrokerId(member.node_id as i32)).with_listeners(vec![listener]))
        })
        .collect()
}

/// What AddRaftVoter and RemoveRaftVoter both check first: the cluster id (null or empty: the
/// caller does not say, as Kafka's tool leaves it), a non-negative voter id, and the quorum as
/// the leader sees it. The error code and message to answer with otherwise.
async fn precheck(
    broker: &Broker,
    cluster_id: &Option<StrBytes>,
    voter_id: i32,
) -> Result<(u64, QuorumState), (i16, Option<StrBytes>)> {
    let refuse = |code: i16, message: String| Err((code, Some(str_bytes(message))));
    if let Some(id) = cluster_id.as_ref().filter(|id| !id.is_empty() && id.as_str() != broker.cluster_id) {
        let message = format!("cluster id {} is not this cluster's ({})", id.as_str(), broker.cluster_id);
        return refuse(kafka_code::INCONSISTENT_CLUSTER_ID, message);
    }
    let Ok(node_id) = u64::try_from(voter_id) else {
        return refuse(kafka_code::INVALID_REQUEST, format!("voter id {voter_id} is negative"));
    };
    let state = broker.meta.describe_quorum().await.map_err(|error| meta_error(&error))?;
    Ok((node_id, state))
}

/// Logs a refused voter change once and gives its error code and message.
fn refused(api: &str, voter_id: i32, code: i16, message: String) -> (i16, Option<StrBytes>) {
    tracing::info!(voter = voter_id, code, %message, "{api} refused");
    (code, Some(str_bytes(message)))
}

fn role_in(state: &QuorumState, node_id: u64) -> Role {
    state.members.iter().find(|m| m.node_id == node_id).map_or(Role::Absent, |m| m.role)
}

fn timeout_of(timeout_ms: i32) -> Duration {
    let ms = u64::try_from(timeout_ms).ok().filter(|ms| *ms > 0).unwrap_or(VOTER_CHANGE_TIMEOUT_MS_MAX);
    Duration::from_millis(ms.min(VOTER_CHANGE_TIMEOUT_MS_MAX))
}

/// Runs a membership change within `timeout`; the error code and message on failure.
async fn run_change(
    timeout: Duration,
    change: impl std::future::Future<Output = Result<(), MetaError>>,
) -> (i16, Option<StrBytes>) {
    match tokio::time::timeout(timeout, change).await {
        Ok(Ok(())) => (kafka_code::NONE, None),
        Ok(Err(error)) => meta_error(&error),
        Err(_) => (
            kafka_code::REQUEST_TIMED_OUT,
            Some(str_bytes(format!("the change did not complete within {} ms", timeout.as_millis()))),
        ),
    }
}

/// Answers AddRaftVoter (v0).
pub async fn add_voter(broker: &Broker, request: AddRaftVoterRequest) -> AddRaftVoterResponse {
    let (code, message) = add_voter_outcome(broker, &request).await;
    AddRaftVoterResponse::default().with_error_code(code).with_error_message(message)
}

async fn add_voter_outcome(broker: &Broker, request: &AddRaftVoterRequest) -> (i16, Option<StrBytes>) {
    let refuse = |code: i16, message: String| refused("AddRaftVoter", request.voter_id, code, message);
    let (node_id, state) = match precheck(broker, &request.cluster_id, request.voter_id).await {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let addr = match (role_in(&state, node_id), request.listeners.first()) {
        (Role::Voter, _) => return refuse(kafka_code::DUPLICATE_VOTER, format!("node {node_id} is already a voter")),
        (Role::Learner, _) => None,
        (_, Some(listener)) => Some(format!("{}:{}", listener.host.as_str(), listener.port)),
        (_, None) => {
            return refuse(
                kafka_code::VOTER_NOT_FOUND,
                format!(
                    "node {node_id} is not in the metadata group: start its broker (it joins as a learner) \
                     or name its Raft address as a listener"
                ),
            );
        }
    };
    tracing::info!(voter = node_id, ?addr, "AddRaftVoter: promoting to voter");
    run_change(timeout_of(request.timeout_ms), broker.meta.add_voter(node_id, addr)).await
}

/// Answers RemoveRaftVoter (v0; it has no timeout field: [`VOTER_CHANGE_TIMEOUT_MS_MAX`]).
pub async fn remove_voter(broker: &Broker, request: RemoveRaftVoterRequest) -> RemoveRaftVoterResponse {
    let (code, message) = remove_voter_outcome(broker, &request).await;
    RemoveRaftVoterResponse::default().with_error_code(code).with_error_message(message)
}

async fn remove_voter_outcome(broker: &Broker, request: &RemoveRaftVoterRequest) -> (i16, Option<StrBytes>) {
    let refuse = |code: i16, message: String| refused("RemoveRaftVoter", request.voter_id, code, message);
    let (node_id, state) = match precheck(broker, &request.cluster_id, request.voter_id).await {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    if role_in(&state, node_id) != Role::Voter {
        return refuse(kafka_code::VOTER_NOT_FOUND, format!("node {node_id} is not a voter"));
    }
    if state.members.iter().filter(|m| m.role == Role::Voter).count() <= 1 {
        return refuse(kafka_code::INVALID_REQUEST, format!("node {node_id} is the last voter"));
    }
    tracing::info!(voter = node_id, "RemoveRaftVoter: demoting to learner");
    let timeout = Duration::from_millis(VOTER_CHANGE_TIMEOUT_MS_MAX);
    run_change(timeout, broker.meta.remove_voter(node_id)).await
}
