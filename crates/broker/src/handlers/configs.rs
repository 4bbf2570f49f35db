//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs over the topic configs the
//! metadata holds (`sluice_meta::topic_config`), and a read-only view of this broker's configs.
//!
//! A broker is described with the flags it was started with (STATIC_BROKER_CONFIG) and the
//! broker configs that set topic defaults, under Kafka's names (`log.retention.hours`,
//! `log.segment.bytes`, `message.max.bytes`, ...; DEFAULT_CONFIG): Sluice's topic defaults are
//! fixed, Kafka's own (`TopicConfig::default`). With synonyms asked for, a topic config lists
//! its override (DYNAMIC_TOPIC_CONFIG), then the broker config it defaults to where Kafka names
//! one with a value (see [`broker_synonym`]), as Apache Kafka 4.1 answers.
//!
//! AlterConfigs replaces a topic's overrides with exactly the given set (Kafka's legacy
//! semantics); IncrementalAlterConfigs sets or deletes single keys, and APPENDs to or SUBTRACTs
//! from list configs (`cleanup.policy` and the throttled-replica lists) as Kafka does: the
//! comma-separated items of the current value (the override, else the default) plus the new
//! ones not already there, or minus the given ones, in order; on any other key both are
//! INVALID_CONFIG. Unknown keys
//! and out-of-range values get INVALID_CONFIG from the metadata's own validation;
//! `validate_only` applies the change to a copy of the view.
//!
//! Dynamic broker configs (`sluice_meta::broker_config`: the replication throttle rates) are
//! altered on a BROKER resource named `""` (every broker, Kafka's `<default>`) or with a broker
//! id, through the metadata like topic configs; every other broker config is a start flag and
//! is refused. A broker describes them with their source (DYNAMIC_BROKER_CONFIG,
//! DYNAMIC_DEFAULT_BROKER_CONFIG, or DEFAULT_CONFIG with Kafka's `Long.MAX_VALUE`).
//!
//! An overridden config is described with its value as it was given (`delete,compact` stays in
//! that order, as Kafka keeps it), a default with the value Sluice applies. Every Kafka 4.1
//! topic config is accepted and described, including those held only as overrides
//! (`sluice_meta::topic_config::OVERRIDE_TOPIC_CONFIGS`: their default is Kafka's).

use std::collections::BTreeMap;

use sluice_meta::broker_config::{
    is_dynamic_broker_config, BrokerConfigScope, DYNAMIC_BROKER_CONFIGS, DYNAMIC_BROKER_CONFIG_DEFAULT,
};
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
/// Config source of a dynamic config set for one broker (Kafka's `DYNAMIC_BROKER_CONFIG`).
const CONFIG_SOURCE_DYNAMIC_BROKER: i8 = 2;
/// Config source of a dynamic config set for every broker (`DYNAMIC_DEFAULT_BROKER_CONFIG`).
const CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;

/// Kafka's `ConfigDef.Type` codes (DescribeConfigs v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_DOUBLE: i8 = 6;
const TYPE_LIST: i8 = 7;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

fn config_type(key: &str) -> i8 {
    use sluice_meta::topic_config::*;
    match key {
        CLEANUP_POLICY => TYPE_LIST,
        MESSAGE_TIMESTAMP_TYPE => TYPE_STRING,
        UNCLEAN_LEADER_ELECTION_ENABLE => TYPE_BOOLEAN,
        SEGMENT_BYTES | MIN_INSYNC_REPLICAS | MAX_MESSAGE_BYTES => TYPE_INT,
        _ => match override_topic_config(key).map(|config| config.kind) {
            Some(ConfigValueKind::Int { .. }) => TYPE_INT,
            Some(ConfigValueKind::Ratio) => TYPE_DOUBLE,
            Some(ConfigValueKind::Bool | ConfigValueKind::RemoteStorage) => TYPE_BOOLEAN,
            Some(ConfigValueKind::CompressionType) => TYPE_STRING,
            Some(ConfigValueKind::ThrottledReplicas) => TYPE_LIST,
            Some(ConfigValueKind::Long { .. }) | None => TYPE_LONG,
        },
    }
}

/// The broker config that sets a topic config's default, for the topic configs Kafka describes
/// with such a synonym (`ServerTopicConfigSynonyms`). `retention.ms`, `segment.ms` and
/// `flush.ms` have none here: their broker configs in milliseconds are unset in Kafka (the
/// defaults come from `log.retention.hours`, `log.roll.hours`, or nothing), and Kafka lists no
/// synonym for them.
fn broker_synonym(key: &str) -> Option<&'static str> {
    use sluice_meta::topic_config::*;
    Some(match key {
        CLEANUP_POLICY => "log.cleanup.policy",
        SEGMENT_BYTES => "log.segment.bytes",
        RETENTION_BYTES => "log.retention.bytes",
        MAX_MESSAGE_BYTES => "message.max.bytes",
        // Topic configs held only as overrides whose broker default Kafka lists as a synonym
        // (with Kafka's value: Sluice's broker has no flag for them).
        "compression.gzip.level" => "compression.gzip.level",
        "compression.lz4.level" => "compression.lz4.level",
        "compression.zstd.level" => "compression.zstd.level",
        "file.delete.delay.ms" => "log.segment.delete.delay.ms",
        "local.retention.bytes" => "log.local.retention.bytes",
        "local.retention.ms" => "log.local.retention.ms",
        "preallocate" => "log.preallocate",
        "segment.index.bytes" => "log.index.size.max.bytes",
        FLUSH_MESSAGES => "log.flush.interval.messages",
        MIN_INSYNC_REPLICAS => "min.insync.replicas",
        MESSAGE_TIMESTAMP_TYPE => "log.message.timestamp.type",
        MESSAGE_TIMESTAMP_BEFORE_MAX_MS => "log.message.timestamp.before.max.ms",
        MESSAGE_TIMESTAMP_AFTER_MAX_MS => "log.message.timestamp.after.max.ms",
        UNCLEAN_LEADER_ELECTION_ENABLE => "unclean.leader.election.enable",
        // Kafka has it as a broker config only; Sluice also takes it per topic.
        REPLICA_LAG_TIME_MAX_MS => "replica.lag.time.max.ms",
        _ => return None,
    })
}

/// The value a topic config has where the topic does not override it, and its source: the
/// broker's flag for the keys a flag defaults (`BROKER_DEFAULTED_KEYS`: STATIC_BROKER_CONFIG
/// when it differs from Kafka's default), else Kafka's default (DEFAULT_CONFIG).
fn broker_value(broker: &Broker, key: &str) -> (String, i8) {
    use sluice_meta::topic_config::*;
    let kafka = TopicConfig::default().get(key).unwrap_or_default();
    let flag = match key {
        MIN_INSYNC_REPLICAS => Some(broker.defaults.min_insync_replicas.to_string()),
        UNCLEAN_LEADER_ELECTION_ENABLE => Some(broker.defaults.unclean_leader_election.to_string()),
        REPLICA_LAG_TIME_MAX_MS => Some(broker.replication.replica_lag_time_ms.to_string()),
        _ => None,
    };
    match flag {
        Some(value) if value != kafka => (value, CONFIG_SOURCE_STATIC_BROKER),
        _ => (kafka, CONFIG_SOURCE_DEFAULT),
    }
}

/// Milliseconds in an hour, for `log.retention.hours` and `log.roll.hours`.
const MS_PER_HOUR: i64 = 60 * 60 * 1000;

fn synonym(name: &str, value: String, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default().with_name(str_bytes(name)).with_value(Some(str_bytes(value))).with_source(source)
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
                RESOURCE_BROKER if is_this_broker(broker, &resource.resource_name) => base
                    .with_error_code(kafka_code::NONE)
                    .with_configs(broker_entries(broker, version, request.include_synonyms, &wanted)),
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

/// A topic's configs: its override as given (DYNAMIC_TOPIC_CONFIG), else the broker's value
/// ([`broker_value`]).
fn topic_entries(
    broker: &Broker,
    topic: &TopicRecord,
    version: i16,
    include_synonyms: bool,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<DescribeConfigsResourceResult> {
    sluice_meta::topic_config::all_topic_config_keys()
        .filter(|key| wanted(key))
        .map(|key| {
            let overridden = topic.config_overrides.get(key);
            let (default_value, default_source) = broker_value(broker, key);
            let (value, source) = match overridden {
                Some(given) => (given.clone(), CONFIG_SOURCE_TOPIC),
                None => (default_value.clone(), default_source),
            };
            let mut synonyms = Vec::new();
            if include_synonyms {
                if let Some(given) = overridden {
                    synonyms.push(synonym(key, given.clone(), CONFIG_SOURCE_TOPIC));
                }
                if let Some(name) = broker_synonym(key) {
                    synonyms.push(synonym(name, default_value, default_source));
                }
            }
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

/// Kafka's defaults of the start flags Sluice describes under Kafka's names.
const KAFKA_FLAG_DEFAULTS: [(&str, &str); 3] =
    [("num.partitions", "1"), ("default.replication.factor", "1"), ("auto.create.topics.enable", "true")];

/// This broker's configs: the start flags Kafka has names for, the broker defaults of topic
/// configs (read-only), then the dynamic broker configs. With synonyms asked for, a config whose
/// value comes from a start flag (STATIC_BROKER_CONFIG) lists that value, then Kafka's default
/// (DEFAULT_CONFIG), as Kafka lists a `server.properties` setting; any other lists itself.
fn broker_entries(
    broker: &Broker,
    version: i16,
    include_synonyms: bool,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<DescribeConfigsResourceResult> {
    let flags = &broker.defaults;
    let topic_defaults = sluice_meta::topic_config::TopicConfig::default();
    let mut configs: Vec<(String, String, i8, i8)> = vec![
        ("num.partitions".into(), flags.partitions.to_string(), TYPE_INT, CONFIG_SOURCE_STATIC_BROKER),
        (
            "default.replication.factor".into(),
            flags.replication_factor.to_string(),
            TYPE_INT,
            CONFIG_SOURCE_STATIC_BROKER,
        ),
        (
            "auto.create.topics.enable".into(),
            flags.auto_create_topics.to_string(),
            TYPE_BOOLEAN,
            CONFIG_SOURCE_STATIC_BROKER,
        ),
        (
            "log.retention.hours".into(),
            (topic_defaults.retention_ms / MS_PER_HOUR).to_string(),
            TYPE_INT,
            CONFIG_SOURCE_DEFAULT,
        ),
        (
            "log.roll.hours".into(),
            (topic_defaults.segment_ms / MS_PER_HOUR).to_string(),
            TYPE_INT,
            CONFIG_SOURCE_DEFAULT,
        ),
    ];
    for key in sluice_meta::topic_config::all_topic_config_keys() {
        if let Some(name) = broker_synonym(key) {
            let (value, source) = broker_value(broker, key);
            configs.push((name.into(), value, config_type(key), source));
        }
    }
    let dynamic = &broker.view().broker_configs;
    for key in DYNAMIC_BROKER_CONFIGS {
        let (value, source) = match dynamic.get(broker.node_id, key) {
            Some((value, BrokerConfigScope::Broker(_))) => (value.to_string(), CONFIG_SOURCE_DYNAMIC_BROKER),
            Some((value, BrokerConfigScope::Default)) => (value.to_string(), CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER),
            None => (DYNAMIC_BROKER_CONFIG_DEFAULT.to_string(), CONFIG_SOURCE_DEFAULT),
        };
        configs.push((key.into(), value, TYPE_LONG, source));
    }
    configs
        .into_iter()
        .filter(|(name, _, _, _)| wanted(name))
        .map(|(name, value, kind, source)| {
            let mut synonyms = Vec::new();
            if include_synonyms {
                synonyms.push(synonym(&name, value.clone(), source));
                if source == CONFIG_SOURCE_STATIC_BROKER {
                    if let Some(default) = kafka_broker_default(&name) {
                        synonyms.push(synonym(&name, default, CONFIG_SOURCE_DEFAULT));
                    }
                }
            }
            let read_only = !is_dynamic_broker_config(&name);
            let result = entry(&name, value, source, version).with_read_only(read_only).with_synonyms(synonyms);
            if version >= 3 {
                result.with_config_type(kind)
            } else {
                result
            }
        })
        .collect()
}

/// Kafka's default of a broker config Sluice describes from a start flag: a flag of
/// [`KAFKA_FLAG_DEFAULTS`], or the broker default of a topic config ([`broker_synonym`]).
fn kafka_broker_default(name: &str) -> Option<String> {
    if let Some((_, default)) = KAFKA_FLAG_DEFAULTS.iter().find(|(flag, _)| *flag == name) {
        return Some((*default).to_string());
    }
    let key = sluice_meta::topic_config::all_topic_config_keys().find(|key| broker_synonym(key) == Some(name))?;
    sluice_meta::topic_config::TopicConfig::default().get(key)
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
    (kafka_code::INVALID_REQUEST, Some(str_bytes("unsupported resource type")))
}

/// Proposes a change of dynamic broker configs on the BROKER resource named `name`.
async fn alter_broker(
    broker: &Broker,
    name: &str,
    set: BTreeMap<String, String>,
    delete: Vec<String>,
    validate_only: bool,
) -> (i16, Option<StrBytes>) {
    let Some(scope) = BrokerConfigScope::from_resource_name(name) else {
        return (kafka_code::INVALID_REQUEST, Some(str_bytes("a broker resource is named by a broker id, or empty")));
    };
    alter(broker, Command::AlterBrokerConfigs { scope, set, delete }, validate_only).await
}

/// Answers AlterConfigs: the given set replaces all of a topic's overrides.
pub async fn alter_configs(broker: &Broker, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let (code, message) = if resource.resource_type == RESOURCE_BROKER {
            // The given set replaces the scope's dynamic configs.
            let set: BTreeMap<String, String> = resource
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_deref().unwrap_or_default().to_string()))
                .collect();
            let scope = BrokerConfigScope::from_resource_name(resource.resource_name.as_str());
            let current = scope.and_then(|scope| broker.view().broker_configs.values.get(&scope).cloned());
            let delete = current.unwrap_or_default().into_keys().filter(|key| !set.contains_key(key)).collect();
            alter_broker(broker, resource.resource_name.as_str(), set, delete, request.validate_only).await
        } else if resource.resource_type != RESOURCE_TOPIC {
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

/// The value of a list config after APPEND (`append`) or SUBTRACT of the comma-separated
/// `items` to or from `current` (Kafka's `ConfigAdminManager.prepareIncrementalConfigs`).
fn list_operation(current: &str, items: &str, append: bool) -> String {
    let split = |text: &str| -> Vec<String> {
        text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(String::from).collect()
    };
    let mut values = split(current);
    let items = split(items);
    if append {
        for item in items {
            if !values.contains(&item) {
                values.push(item);
            }
        }
    } else {
        values.retain(|value| !items.contains(value));
    }
    values.join(",")
}

/// Answers IncrementalAlterConfigs: SET, DELETE, and APPEND / SUBTRACT on list configs.
pub async fn incremental_alter_configs(
    broker: &Broker,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    let defaults = sluice_meta::topic_config::TopicConfig::default();
    for resource in &request.resources {
        let (code, message) = if resource.resource_type == RESOURCE_BROKER {
            incremental_broker(broker, resource, request.validate_only).await
        } else if resource.resource_type != RESOURCE_TOPIC {
            broker_resource_refused()
        } else {
            let current = broker.view().topics.get(resource.resource_name.as_str()).map(|t| t.config_overrides.clone());
            let mut changes = Changes::default();
            let mut refused = None;
            for config in &resource.configs {
                let name = config.name.to_string();
                match (config.config_operation, &config.value) {
                    (OP_SET, Some(value)) => changes.set(name, value.to_string()),
                    (OP_DELETE, _) => changes.delete(name),
                    (OP_SET, None) => refused = Some("SET needs a value"),
                    (OP_APPEND | OP_SUBTRACT, _) if config_type(&name) != TYPE_LIST => refused = Some(
                        "APPEND and SUBTRACT apply to list configs only (cleanup.policy, the throttled-replica lists)",
                    ),
                    (operation @ (OP_APPEND | OP_SUBTRACT), value) => {
                        // The value before this operation: set earlier in this request, else
                        // the topic's override (unless deleted earlier here), else the default.
                        let before = changes
                            .set
                            .get(&name)
                            .cloned()
                            .or_else(|| {
                                let deleted = changes.delete.contains(&name);
                                current.as_ref().and_then(|c| c.get(&name)).filter(|_| !deleted).cloned()
                            })
                            .or_else(|| defaults.get(&name))
                            .unwrap_or_default();
                        let after = list_operation(&before, value.as_deref().unwrap_or(""), operation == OP_APPEND);
                        changes.set(name, after);
                    }
                    _ => refused = Some("unknown operation: expected SET, DELETE, APPEND or SUBTRACT"),
                }
            }
            match refused {
                Some(reason) => (kafka_code::INVALID_CONFIG, Some(str_bytes(reason))),
                None => {
                    let name = resource.resource_name.to_string();
                    let Changes { set, delete } = changes;
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

/// IncrementalAlterConfigs on a BROKER resource: SET and DELETE of dynamic broker configs (none
/// of them is a list).
async fn incremental_broker(
    broker: &Broker,
    resource: &sluice_proto::kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
    validate_only: bool,
) -> (i16, Option<StrBytes>) {
    let mut changes = Changes::default();
    for config in &resource.configs {
        let name = config.name.to_string();
        match (config.config_operation, &config.value) {
            (OP_SET, Some(value)) => changes.set(name, value.to_string()),
            (OP_DELETE, _) => changes.delete(name),
            (OP_SET, None) => return (kafka_code::INVALID_CONFIG, Some(str_bytes("SET needs a value"))),
            _ => {
                let reason = "dynamic broker configs take SET and DELETE only";
                return (kafka_code::INVALID_CONFIG, Some(str_bytes(reason)));
            }
        }
    }
    alter_broker(broker, resource.resource_name.as_str(), changes.set, changes.delete, validate_only).await
}

/// The keys one IncrementalAlterConfigs resource sets and deletes; a later operation on a key
/// replaces an earlier one.
#[derive(Default)]
struct Changes {
    set: BTreeMap<String, String>,
    delete: Vec<String>,
}

impl Changes {
    fn set(&mut self, name: String, value: String) {
        self.delete.retain(|key| key != &name);
        self.set.insert(name, value);
    }

    fn delete(&mut self, name: String) {
        self.set.remove(&name);
        self.delete.push(name);
    }
}

#[cfg(test)]
mod tests {
    use super::list_operation;

    /// APPEND adds the items not already there, in order; SUBTRACT removes the given ones
    /// (the sequence AdminTest.topicConfigsWithSourcesAndIncrementalAlter drives on Kafka).
    #[test]
    fn list_operations_follow_kafka() {
        assert_eq!(list_operation("delete", "compact", true), "delete,compact");
        assert_eq!(list_operation("delete,compact", "compact", true), "delete,compact");
        assert_eq!(list_operation("delete,compact", "delete", false), "compact");
        assert_eq!(list_operation("compact", "delete,compact", false), "");
        assert_eq!(list_operation("", "compact, delete", true), "compact,delete");
    }
}
