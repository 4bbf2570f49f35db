//! Topic administration and cluster description: CreateTopics, DeleteTopics,
//! CreatePartitions, DescribeCluster.
//!
//! Every change is a metadata command. `validate_only` requests apply the command to a copy of
//! the current view (the state machine is pure), so validation is exactly what a real request
//! would meet, and nothing is proposed. A real request is proposed, applied on this node and
//! reconciled with the local partitions before the answer.

use std::collections::BTreeMap;

use sluice_meta::{Command, CommandOutcome, MetadataView, TopicConfig};
use sluice_proto::kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use sluice_proto::kafka_protocol::messages::create_topics_request::CreatableTopic;
use sluice_proto::kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use sluice_proto::kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use sluice_proto::kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use sluice_proto::kafka_protocol::messages::{
    BrokerId as WireBrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, DescribeClusterRequest, DescribeClusterResponse,
    TopicName,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::broker::Broker;
use crate::handlers::metadata::split_host_port;
use crate::handlers::{authorized_operations, command_error, meta_error, since, str_bytes};
use crate::kafka_code;

/// `DescribeConfigs` config source for a default value (Kafka's `DEFAULT_CONFIG`).
pub const CONFIG_SOURCE_DEFAULT: i8 = 5;
/// Config source of a topic override (Kafka's `DYNAMIC_TOPIC_CONFIG`).
pub const CONFIG_SOURCE_TOPIC: i8 = 1;

/// Runs `command` for real, or against a copy of the view when `validate_only`.
async fn execute(
    broker: &Broker,
    command: Command,
    validate_only: bool,
) -> Result<CommandOutcome, (i16, Option<StrBytes>)> {
    if validate_only {
        let mut scratch: MetadataView = (*broker.view()).clone();
        return scratch.apply(&command).map_err(|error| command_error(&error));
    }
    broker.propose_and_apply(command).await.map(|proposed| proposed.outcome).map_err(|error| meta_error(&error))
}

/// Answers CreateTopics.
pub async fn create_topics(broker: &Broker, version: i16, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let result = CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        let (replication_factor, configs) = match create_topic_args(broker, topic) {
            Ok(args) => args,
            Err((code, message)) => {
                results.push(result.with_error_code(code).with_error_message(Some(str_bytes(message))));
                continue;
            }
        };
        let command = match assignment(topic) {
            Ok(Some(assignment)) => Command::CreateTopicAssigned {
                name: topic.name.0.to_string(),
                topic_id: Uuid::new_v4(),
                assignment,
                configs: configs.clone(),
            },
            Ok(None) => Command::CreateTopic {
                name: topic.name.0.to_string(),
                topic_id: Uuid::new_v4(),
                partition_count: match topic.num_partitions {
                    -1 => broker.defaults.partitions,
                    count => count as u32, // checked non-negative by create_topic_args
                },
                replication_factor,
                configs: configs.clone(),
            },
            Err((code, message)) => {
                results.push(result.with_error_code(code).with_error_message(Some(str_bytes(message))));
                continue;
            }
        };
        results.push(match execute(broker, command, request.validate_only).await {
            Ok(CommandOutcome::TopicCreated { topic_id, partitions }) => result
                .with_error_code(kafka_code::NONE)
                .with_topic_id(since(
                    version,
                    7,
                    if request.validate_only { Uuid::nil() } else { topic_id },
                    Uuid::nil(),
                ))
                .with_num_partitions(since(version, 5, partitions.len() as i32, -1))
                .with_replication_factor(since(
                    version,
                    5,
                    partitions.first().map_or(replication_factor as i16, |p| p.replicas.len() as i16),
                    -1,
                ))
                .with_configs(since(version, 5, Some(describe_topic_config(&configs)), None)),
            Ok(other) => result
                .with_error_code(kafka_code::UNKNOWN_SERVER_ERROR)
                .with_error_message(Some(str_bytes(format!("unexpected outcome {other:?}")))),
            Err((code, message)) => result.with_error_code(code).with_error_message(message),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// The replication factor (the broker's default for `-1`) and config overrides of one
/// requested topic; or the error code and message for a request that cannot be a topic.
fn create_topic_args(
    broker: &Broker,
    topic: &CreatableTopic,
) -> Result<(u16, BTreeMap<String, String>), (i16, String)> {
    if !topic.assignments.is_empty() && (topic.num_partitions != -1 || topic.replication_factor != -1) {
        return Err((
            kafka_code::INVALID_REQUEST,
            "both numPartitions or replicationFactor and replicasAssignments were set: only one may be".into(),
        ));
    }
    let replication = match topic.replication_factor {
        -1 => Ok(broker.defaults.replication_factor),
        factor => u16::try_from(factor),
    };
    let (true, Ok(replication_factor)) = (topic.num_partitions >= -1, replication) else {
        return Err((kafka_code::INVALID_REQUEST, "negative partition count or replication factor".into()));
    };
    let mut configs = BTreeMap::new();
    for config in &topic.configs {
        let Some(value) = &config.value else {
            return Err((kafka_code::INVALID_CONFIG, format!("config {} has a null value", config.name.as_str())));
        };
        configs.insert(config.name.to_string(), value.to_string());
    }
    Ok((replication_factor, configs))
}

/// A requested topic's explicit replica assignment, in partition order (`None` without one);
/// Kafka's rule: the partition indexes are 0, 1, 2, ... in some order.
fn assignment(topic: &CreatableTopic) -> Result<Option<Vec<Vec<i32>>>, (i16, String)> {
    if topic.assignments.is_empty() {
        return Ok(None);
    }
    let mut by_index: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for entry in &topic.assignments {
        by_index.insert(entry.partition_index, entry.broker_ids.iter().map(|id| id.0).collect());
    }
    let consecutive =
        by_index.len() == topic.assignments.len() && by_index.keys().copied().eq(0..topic.assignments.len() as i32);
    if !consecutive {
        return Err((
            sluice_meta::error::kafka_code::INVALID_REPLICA_ASSIGNMENT,
            "partitions should be a consecutive 0-based integer sequence".into(),
        ));
    }
    Ok(Some(by_index.into_values().collect()))
}

/// Every topic config key with its value and source, for CreateTopics v5+.
fn describe_topic_config(overrides: &BTreeMap<String, String>) -> Vec<CreatableTopicConfigs> {
    let config = TopicConfig::from_overrides(overrides).unwrap_or_default();
    sluice_meta::topic_config::all_topic_config_keys()
        .map(|key| {
            // An override as given (an inert key's value lives only there), else the default.
            let value = overrides.get(key).cloned().or_else(|| config.get(key));
            CreatableTopicConfigs::default()
                .with_name(str_bytes(key))
                .with_value(value.map(str_bytes))
                .with_read_only(false)
                .with_config_source(if overrides.contains_key(key) {
                    CONFIG_SOURCE_TOPIC
                } else {
                    CONFIG_SOURCE_DEFAULT
                })
                .with_is_sensitive(false)
        })
        .collect()
}

/// Answers DeleteTopics (by name before v6, by name or topic id from v6).
pub async fn delete_topics(broker: &Broker, version: i16, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut wanted: Vec<(Option<TopicName>, Uuid)> =
        request.topic_names.iter().map(|name| (Some(name.clone()), Uuid::nil())).collect();
    wanted.extend(request.topics.iter().map(|t| (t.name.clone(), t.topic_id)));
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, topic_id) in wanted {
        let view = broker.view();
        let resolved = match &name {
            Some(name) => Some(name.0.to_string()),
            None => view.topic_names.get(&topic_id).cloned(),
        };
        let result = DeletableTopicResult::default().with_name(name.clone()).with_topic_id(since(
            version,
            6,
            topic_id,
            Uuid::nil(),
        ));
        let Some(resolved) = resolved else {
            responses.push(result.with_error_code(kafka_code::UNKNOWN_TOPIC_ID));
            continue;
        };
        let id = view.topics.get(&resolved).map_or(topic_id, |t| t.topic_id);
        let result = result.with_name(Some(TopicName(str_bytes(resolved.clone())))).with_topic_id(since(
            version,
            6,
            id,
            Uuid::nil(),
        ));
        if resolved == crate::coordinator::OFFSETS_TOPIC {
            // Deleting it would lose every group's committed offsets.
            responses.push(result.with_error_code(kafka_code::INVALID_TOPIC_EXCEPTION).with_error_message(since(
                version,
                5,
                Some(str_bytes("internal topics cannot be deleted")),
                None,
            )));
            continue;
        }
        responses.push(match broker.propose_and_apply(Command::DeleteTopic { name: resolved }).await {
            Ok(_) => result.with_error_code(kafka_code::NONE),
            Err(error) => {
                let (code, message) = meta_error(&error);
                result.with_error_code(code).with_error_message(since(version, 5, message, None))
            }
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Answers CreatePartitions.
pub async fn create_partitions(broker: &Broker, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        let Ok(partition_count) = u32::try_from(topic.count) else {
            results.push(result.with_error_code(sluice_meta::error::kafka_code::INVALID_PARTITIONS));
            continue;
        };
        let name = topic.name.0.to_string();
        let command = match topic.assignments.as_ref().filter(|a| !a.is_empty()) {
            None => Command::CreatePartitions { name, partition_count },
            Some(assignments) => {
                // Kafka's rule: one assignment per added partition.
                let current = broker.view().topics.get(&name).map(|t| t.partitions.len() as u32);
                if current.is_some_and(|current| partition_count != current + assignments.len() as u32) {
                    let message = format!(
                        "increasing the number of partitions to {partition_count} needs {} assignments, {} given",
                        partition_count.saturating_sub(current.unwrap_or(0)),
                        assignments.len()
                    );
                    results.push(
                        result
                            .with_error_code(sluice_meta::error::kafka_code::INVALID_REPLICA_ASSIGNMENT)
                            .with_error_message(Some(str_bytes(message))),
                    );
                    continue;
                }
                let assignment = assignments.iter().map(|a| a.broker_ids.iter().map(|id| id.0).collect()).collect();
                Command::CreatePartitionsAssigned { name, assignment }
            }
        };
        results.push(match execute(broker, command, request.validate_only).await {
            Ok(_) => result.with_error_code(kafka_code::NONE),
            Err((code, message)) => result.with_error_code(code).with_error_message(message),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// DescribeCluster `endpoint_type` for brokers (v1+; 2 would be controllers).
const ENDPOINT_TYPE_BROKERS: i8 = 1;

/// Answers DescribeCluster.
/// Brokers are given by their endpoint on `listener`, the one the client came in on.
pub fn describe_cluster(broker: &Broker, request: &DescribeClusterRequest, listener: &str) -> DescribeClusterResponse {
    if request.endpoint_type != ENDPOINT_TYPE_BROKERS {
        return DescribeClusterResponse::default()
            .with_error_code(kafka_code::INVALID_REQUEST)
            .with_error_message(Some(str_bytes("only broker endpoints are described")))
            .with_endpoint_type(request.endpoint_type);
    }
    let view = broker.view();
    let brokers = view
        .brokers
        .values()
        .filter(|b| request.include_fenced_brokers || !b.fenced)
        .filter_map(|b| {
            let (host, port) = split_host_port(b.endpoint(listener)?)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(WireBrokerId(b.broker_id))
                    .with_host(str_bytes(host))
                    .with_port(port)
                    .with_rack(b.rack.clone().map(str_bytes))
                    .with_is_fenced(b.fenced),
            )
        })
        .collect();
    DescribeClusterResponse::default()
        .with_error_code(kafka_code::NONE)
        .with_endpoint_type(ENDPOINT_TYPE_BROKERS)
        .with_cluster_id(str_bytes(broker.cluster_id.clone()))
        .with_controller_id(WireBrokerId(broker.meta.current_leader().map_or(-1, |id| id as i32)))
        .with_cluster_authorized_operations(authorized_operations::when_asked(
            request.include_cluster_authorized_operations,
            authorized_operations::CLUSTER,
        ))
        .with_brokers(brokers)
}
