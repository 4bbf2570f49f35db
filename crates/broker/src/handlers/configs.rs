//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs over the topic configs the
//! metadata holds (`sluice_meta::topic_config`), and a read-only view of this broker's topic
//! defaults.
//!
//! AlterConfigs replaces a topic's overrides with exactly the given set (Kafka's legacy
//! semantics); IncrementalAlterConfigs sets or deletes single keys (APPEND and SUBTRACT, for list
//! configs, are refused: `cleanup.policy` is the only list and is set whole). Unknown keys and
//! out-of-range values get INVALID_CONFIG from the metadata's own validation; `validate_only`
//! applies the change to a copy of the view.

use std::collections::BTreeMap;

use sluice_meta::{Command, MetadataView, TopicRecord};
use sluice_proto::kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use sluice_proto::kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use sluice_proto::kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResponse;
use sluice_proto::kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::handlers::admin::{CONFIG_SOURCE_DEFAULT, CONFIG_SOURCE_TOPIC};
use crate::handlers::{command_error, meta_error, str_bytes};
use crate::kafka_code;

/// Kafka's `ConfigResource.Type.TOPIC`.
pub const RESOURCE_TOPIC: i8 = 2;
/// Kafka's `ConfigResource.Type.BROKER`.
pub const RESOURCE_BROKER: i8 = 4;
/// Config source of a broker setting given at start (Kafka's `STATIC_BROKER_CONFIG`).
const CONFIG_SOURCE_STATIC_BROKER: i8 = 4;

/// Kafka's `ConfigDef.Type` codes (DescribeConfigs v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

fn config_type(key: &str) -> i8 {
    use sluice_meta::topic_config::*;
    match key {
        CLEANUP_POLICY => TYPE_LIST,
        UNCLEAN_LEADER_ELECTION_ENABLE => TYPE_BOOLEAN,
        SEGMENT_BYTES | MIN_INSYNC_REPLICAS | MAX_MESSAGE_BYTES => TYPE_INT,
        _ => TYPE_LONG,
    }
}

/// Answers DescribeConfigs.
pub fn describe(broker: &Broker, version: i16, request: &DescribeConfigsRequest) -> DescribeConfigsResponse {
    let view = broker.view();
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let wanted = |key: &str| {
                resource.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
            };
            match resource.resource_type {
                RESOURCE_TOPIC => match view.topics.get(resource.resource_name.as_str()) {
                    Some(topic) => base.with_error_code(kafka_code::NONE).with_configs(topic_entries(
                        broker,
                        topic,
                        version,
                        request.include_synonyms,
                        &wanted,
                    )),
                    None => base
                        .with_error_code(kafka_code::UNKNOWN_TOPIC_OR_PARTITION)
                        .with_error_message(Some(str_bytes("unknown topic"))),
                },
                RESOURCE_BROKER if is_this_broker(broker, &resource.resource_name) => {
                    base.with_error_code(kafka_code::NONE).with_configs(broker_entries(broker, version, &wanted))
                }
                RESOURCE_BROKER => base
                    .with_error_code(kafka_code::INVALID_REQUEST)
                    .with_error_message(Some(str_bytes("configs of other brokers are described by those brokers"))),
                _ => base
                    .with_error_code(kafka_code::INVALID_REQUEST)
                    .with_error_message(Some(str_bytes("unsupported resource type"))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn is_this_broker(broker: &Broker, name: &StrBytes) -> bool {
    name.is_empty() || name.as_str().parse::<i32>().ok() == Some(broker.node_id)
}

/// The broker's own value of a topic config the broker may default (see
/// `sluice_meta::topic_config::BROKER_DEFAULTED_KEYS`), as a string; `None` for other keys.
fn broker_default(broker: &Broker, key: &str) -> Option<String> {
    use sluice_meta::topic_config::*;
    Some(match key {
        MIN_INSYNC_REPLICAS => broker.defaults.min_insync_replicas.to_string(),
        UNCLEAN_LEADER_ELECTION_ENABLE => broker.defaults.unclean_leader_election.to_string(),
        REPLICA_LAG_TIME_MAX_MS => broker.replication.replica_lag_time_ms.to_string(),
        _ => return None,
    })
}

/// A topic's configs: its override (`TOPIC_CONFIG`), else the broker's flag where one exists
/// and differs from Kafka's default (`STATIC_BROKER_CONFIG`), else Kafka's default.
fn topic_entries(
    broker: &Broker,
    topic: &TopicRecord,
    version: i16,
    include_synonyms: bool,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<DescribeConfigsResourceResult> {
    let kafka_defaults = sluice_meta::TopicConfig::default();
    sluice_meta::topic_config::TOPIC_CONFIG_KEYS
        .iter()
        .filter(|key| wanted(key))
        .map(|key| {
            let overridden = topic.config_overrides.contains_key(*key);
            let from_broker =
                broker_default(broker, key).filter(|value| Some(value) != kafka_defaults.get(key).as_ref());
            let (value, source) = match (overridden, from_broker) {
                (true, _) | (false, None) => (
                    topic.config.get(key).unwrap_or_default(),
                    if overridden { CONFIG_SOURCE_TOPIC } else { CONFIG_SOURCE_DEFAULT },
                ),
                (false, Some(value)) => (value, CONFIG_SOURCE_STATIC_BROKER),
            };
            let synonyms = if include_synonyms {
                vec![DescribeConfigsSynonym::default()
                    .with_name(str_bytes(*key))
                    .with_value(Some(str_bytes(value.clone())))
                    .with_source(source)]
            } else {
                Vec::new()
            };
            entry(key, value, source, version).with_read_only(false).with_synonyms(synonyms)
        })
        .collect()
}

fn entry(key: &str, value: String, source: i8, version: i16) -> DescribeConfigsResourceResult {
    let result = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(key))
        .with_value(Some(str_bytes(value)))
        .with_read_only(source == CONFIG_SOURCE_STATIC_BROKER)
        .with_config_source(source)
        .with_is_sensitive(false);
    if version >= 3 {
        result.with_config_type(config_type(key))
    } else {
        result
    }
}

fn broker_entries(broker: &Broker, version: i16, wanted: &dyn Fn(&str) -> bool) -> Vec<DescribeConfigsResourceResult> {
    let defaults = &broker.defaults;
    [
        ("num.partitions", defaults.partitions.to_string(), TYPE_INT),
        ("default.replication.factor", defaults.replication_factor.to_string(), TYPE_INT),
        ("auto.create.topics.enable", defaults.auto_create_topics.to_string(), TYPE_BOOLEAN),
        ("min.insync.replicas", defaults.min_insync_replicas.to_string(), TYPE_INT),
        ("unclean.leader.election.enable", defaults.unclean_leader_election.to_string(), TYPE_BOOLEAN),
        ("replica.lag.time.max.ms", broker.replication.replica_lag_time_ms.to_string(), TYPE_LONG),
    ]
    .into_iter()
    .filter(|(key, _, _)| wanted(key))
    .map(|(key, value, kind)| {
        let result = entry(key, value, CONFIG_SOURCE_STATIC_BROKER, version);
        if version >= 3 {
            result.with_config_type(kind)
        } else {
            result
        }
    })
    .collect()
}

/// Proposes `command`, or applies it to a copy of `view` when `validate_only`.
async fn alter(broker: &Broker, command: Command, validate_only: bool) -> (i16, Option<StrBytes>) {
    if validate_only {
        let mut scratch: MetadataView = (*broker.view()).clone();
        return match scratch.apply(&command) {
            Ok(_) => (kafka_code::NONE, None),
            Err(error) => command_error(&error),
        };
    }
    match broker.propose_and_apply(command).await {
        Ok(_) => (kafka_code::NONE, None),
        Err(error) => meta_error(&error),
    }
}

fn broker_resource_refused() -> (i16, Option<StrBytes>) {
    (kafka_code::INVALID_REQUEST, Some(str_bytes("broker configs are set by command-line flags")))
}

/// Answers AlterConfigs: the given set replaces all of a topic's overrides.
pub async fn alter_configs(broker: &Broker, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let (code, message) = if resource.resource_type != RESOURCE_TOPIC {
            broker_resource_refused()
        } else {
            let name = resource.resource_name.to_string();
            let mut set = BTreeMap::new();
            let mut null_value = false;
            for config in &resource.configs {
                match &config.value {
                    Some(value) => {
                        set.insert(config.name.to_string(), value.to_string());
                    }
                    None => null_value = true,
                }
            }
            let current = broker.view().topics.get(&name).map(|t| t.config_overrides.clone());
            match (null_value, current) {
                (true, _) => (kafka_code::INVALID_CONFIG, Some(str_bytes("config values must not be null"))),
                (false, None) => (kafka_code::UNKNOWN_TOPIC_OR_PARTITION, Some(str_bytes("unknown topic"))),
                (false, Some(current)) => {
                    let delete = current.keys().filter(|key| !set.contains_key(*key)).cloned().collect();
                    alter(broker, Command::AlterTopicConfigs { name, set, delete }, request.validate_only).await
                }
            }
        };
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone()),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// Answers IncrementalAlterConfigs: SET and DELETE of single keys.
pub async fn incremental_alter_configs(
    broker: &Broker,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let (code, message) = if resource.resource_type != RESOURCE_TOPIC {
            broker_resource_refused()
        } else {
            let mut set = BTreeMap::new();
            let mut delete = Vec::new();
            let mut refused = None;
            for config in &resource.configs {
                match (config.config_operation, &config.value) {
                    (OP_SET, Some(value)) => {
                        set.insert(config.name.to_string(), value.to_string());
                    }
                    (OP_DELETE, _) => delete.push(config.name.to_string()),
                    (OP_SET, None) => refused = Some("SET needs a value"),
                    _ => refused = Some("only SET and DELETE are supported"),
                }
            }
            match refused {
                Some(reason) => (kafka_code::INVALID_CONFIG, Some(str_bytes(reason))),
                None => {
                    let name = resource.resource_name.to_string();
                    alter(broker, Command::AlterTopicConfigs { name, set, delete }, request.validate_only).await
                }
            }
        };
        responses.push(
            IncrementalResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone()),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
