//! Admin: topics, partitions, configs, the cluster description, and consumer groups.
//!
//! Each topic call is one Kafka admin request, sent to the controller when the metadata names
//! one (any broker otherwise) and retried on retriable failures; per-topic error codes become
//! [`ClientError::Kafka`] with the broker's message. Group administration (list, describe,
//! lag, offset resets, delete) is in `groups` and goes to each group's coordinator; client
//! quotas are in `quotas`; ACLs in `acls`.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_proto::kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use sluice_proto::kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use sluice_proto::kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use sluice_proto::kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use sluice_proto::kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use sluice_proto::kafka_protocol::messages::{
    AddRaftVoterRequest, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeClusterRequest,
    DescribeConfigsRequest, DescribeQuorumRequest, ElectLeadersRequest, IncrementalAlterConfigsRequest,
    ListOffsetsRequest, RemoveRaftVoterRequest,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::cluster::{broker_id, topic_name, BrokerInfo, Cluster, Metadata, TopicInfo, LATEST_TIMESTAMP};
use crate::error::{ClientError, Result};

mod acls;
mod groups;
mod quotas;
mod reassign;
mod users;

pub use acls::{
    AclBinding, AclBindingFilter, AclOperation, AclPatternFilter, AclPatternType, AclPermission, AclResourceType,
    ACL_WILDCARD, CLUSTER_RESOURCE_NAME,
};
pub use groups::{
    GroupDescription, GroupListing, GroupMember, OffsetChange, OffsetTarget, PartitionLag, STATE_DEAD, STATE_EMPTY,
};
pub use quotas::{QuotaChange, QuotaEntity, QUOTA_ENTITY_CLIENT_ID, QUOTA_ENTITY_USER};
pub use reassign::{OngoingReassignment, ReassignmentChange, ReassignmentResult};
pub use users::{ScramMechanism, ScramUser, SCRAM_ITERATIONS_DEFAULT};

/// Kafka's config resource type for topics.
const TOPIC_RESOURCE_TYPE: i8 = 2;
/// Kafka's `ConfigResource.Type.BROKER`.
const BROKER_RESOURCE_TYPE: i8 = 4;
/// Kafka's `ListOffsetsRequest.DEBUGGING_REPLICA_ID`: any replica answers from its own log.
pub const DEBUGGING_REPLICA_ID: i32 = -2;
/// IncrementalAlterConfigs operations.
const CONFIG_OPERATION_SET: i8 = 0;
const CONFIG_OPERATION_DELETE: i8 = 1;
/// Kafka's UNKNOWN_SERVER_ERROR, for an answer that is not what the protocol promises.
const UNKNOWN_SERVER_ERROR_CODE: i16 = -1;
/// Kafka's name for the metadata log, the one partition DescribeQuorum asks about.
const METADATA_TOPIC: &str = "__cluster_metadata";
/// How long the broker may take to finish a topic change before answering REQUEST_TIMED_OUT.
pub const ADMIN_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partitions (-1 for the broker default).
    pub partitions: i32,
    /// Replication factor (-1 for the broker default).
    pub replication_factor: i16,
    /// Topic configs (`retention.ms`, `cleanup.policy`, ...).
    pub configs: Vec<(String, String)>,
}

/// A change to one topic config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// Set `name` to `value`.
    Set(String, String),
    /// Return `name` to its default.
    Delete(String),
}

/// One config entry of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name.
    pub name: String,
    /// Value (`None` for a sensitive or unset value).
    pub value: Option<String>,
    /// Whether it was set for this topic (rather than a default).
    pub is_default: bool,
    /// Where the value comes from, in Kafka's words: `TOPIC_CONFIG` (set for this topic),
    /// `STATIC_BROKER_CONFIG` (the broker's flags), `DEFAULT_CONFIG`, ... (`UNKNOWN` for a
    /// source code this client does not know).
    pub source: &'static str,
    /// Whether it cannot be changed.
    pub read_only: bool,
}

/// The cluster as DescribeCluster and Metadata report it.
#[derive(Debug, Clone)]
pub struct ClusterDescription {
    /// Cluster id.
    pub cluster_id: String,
    /// Controller broker id (-1 if unknown).
    pub controller_id: i32,
    /// Brokers.
    pub brokers: Vec<BrokerInfo>,
    /// Topics with their partition leaders.
    pub topics: Vec<TopicInfo>,
}

/// Kafka's name of a DescribeConfigs `config_source` code.
pub fn config_source_name(code: i8) -> &'static str {
    match code {
        1 => "TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        _ => "UNKNOWN",
    }
}

/// Kafka's ElectLeaders `election_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// Give each partition back to its preferred (first) replica, if it is in sync.
    Preferred,
    /// Elect a leader for partitions that have none, out of the ISR if no member is live
    /// (loses what the new leader had not copied).
    Unclean,
}

/// The outcome of one partition's election: `error_code` 0 when a leader was elected, else
/// Kafka's code (84 ELECTION_NOT_NEEDED, 80 PREFERRED_LEADER_NOT_AVAILABLE,
/// 83 ELIGIBLE_LEADERS_NOT_AVAILABLE, 3 UNKNOWN_TOPIC_OR_PARTITION) with the broker's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionResult {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Kafka error code.
    pub error_code: i16,
    /// The broker's message, if any.
    pub message: Option<String>,
}

/// The metadata quorum (Kafka's `QuorumInfo`, from DescribeQuorum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInfo {
    /// The metadata leader.
    pub leader_id: i32,
    /// Its epoch (Sluice: the Raft term).
    pub leader_epoch: i32,
    /// Committed end of the metadata log.
    pub high_watermark: i64,
    /// Voters first, then observers (Sluice: learners), as the broker listed them.
    pub members: Vec<QuorumMember>,
}

/// One member of the metadata quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumMember {
    /// Node (broker) id.
    pub node_id: i32,
    /// Voter, or observer (a learner without a vote).
    pub voter: bool,
    /// End of its metadata log as the leader knows it (`-1`: unknown).
    pub log_end_offset: i64,
    /// When it last had everything committed, epoch ms (`-1`: unknown).
    pub last_caught_up_timestamp: i64,
    /// Its quorum (Raft) endpoint, `host:port`, when the broker gave one.
    pub endpoint: Option<String>,
}

/// Admin operations over a [`Cluster`].
#[derive(Debug, Clone)]
pub struct Admin {
    cluster: Cluster,
}

fn timeout_ms() -> i32 {
    ADMIN_OPERATION_TIMEOUT.as_millis() as i32
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

impl Admin {
    /// Admin on `cluster`.
    pub fn new(cluster: Cluster) -> Admin {
        Admin { cluster }
    }

    /// Creates topics; an error for the first that fails (TOPIC_ALREADY_EXISTS, ...).
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<()> {
        let request = CreateTopicsRequest::default().with_timeout_ms(timeout_ms()).with_topics(
            topics
                .iter()
                .map(|topic| {
                    CreatableTopic::default()
                        .with_name(topic_name(&topic.name))
                        .with_num_partitions(topic.partitions)
                        .with_replication_factor(topic.replication_factor)
                        .with_configs(
                            topic
                                .configs
                                .iter()
                                .map(|(name, value)| {
                                    CreatableTopicConfig::default().with_name(text(name)).with_value(Some(text(value)))
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
        let response = self.cluster.call_controller(&request).await?;
        for result in &response.topics {
            if result.error_code != 0 {
                return Err(ClientError::kafka(
                    result.error_code,
                    format!("create topic {:?}", result.name.0.as_str()),
                    result.error_message.as_ref().map(|m| m.to_string()),
                ));
            }
        }
        self.cluster.invalidate();
        Ok(())
    }

    /// Deletes topics by name.
    pub async fn delete_topics(&self, topics: &[String]) -> Result<()> {
        let request = DeleteTopicsRequest::default()
            .with_timeout_ms(timeout_ms())
            .with_topic_names(topics.iter().map(|topic| topic_name(topic)).collect());
        let response = self.cluster.call_controller(&request).await?;
        for result in &response.responses {
            if result.error_code != 0 {
                let name = result.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                if result.error_code == 3 {
                    return Err(ClientError::UnknownTopic { topic: name });
                }
                return Err(ClientError::kafka(
                    result.error_code,
                    format!("delete topic {name:?}"),
                    result.error_message.as_ref().map(|m| m.to_string()),
                ));
            }
        }
        self.cluster.invalidate();
        Ok(())
    }

    /// Every topic with its partitions (fresh metadata).
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        let metadata = self.cluster.retry("metadata", || self.cluster.refresh(&[])).await?;
        Ok(metadata.topics.into_values().collect())
    }

    /// One topic with its partitions (fresh metadata); [`ClientError::UnknownTopic`] if absent.
    pub async fn describe_topic(&self, topic: &str) -> Result<TopicInfo> {
        let wanted = [topic.to_string()];
        let metadata = self.cluster.retry("metadata", || self.cluster.refresh(&wanted)).await?;
        metadata.topics.get(topic).cloned().ok_or_else(|| ClientError::UnknownTopic { topic: topic.to_string() })
    }

    /// Each replica's log end offset, asked of every replica's broker with Kafka's debugging
    /// replica id (ListOffsets `replica_id = -2`, latest): partition → broker → log end offset,
    /// or the error that broker gave. Brokers that cannot be reached are left out.
    pub async fn replica_log_ends(
        &self,
        topic: &TopicInfo,
    ) -> Result<BTreeMap<i32, BTreeMap<i32, std::result::Result<i64, i16>>>> {
        let mut by_broker: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for partition in &topic.partitions {
            for replica in &partition.replicas {
                by_broker.entry(*replica).or_default().push(partition.partition);
            }
        }
        let mut answers: BTreeMap<i32, BTreeMap<i32, std::result::Result<i64, i16>>> = BTreeMap::new();
        for (broker, partitions) in by_broker {
            let request =
                ListOffsetsRequest::default().with_replica_id(broker_id(DEBUGGING_REPLICA_ID)).with_topics(vec![
                    ListOffsetsTopic::default().with_name(topic_name(&topic.name)).with_partitions(
                        partitions
                            .iter()
                            .map(|p| {
                                ListOffsetsPartition::default()
                                    .with_partition_index(*p)
                                    .with_current_leader_epoch(-1)
                                    .with_timestamp(LATEST_TIMESTAMP)
                            })
                            .collect(),
                    ),
                ]);
            let Ok(response) = self.cluster.call_broker(broker, &request).await else { continue };
            for answer in response.topics.iter().flat_map(|t| t.partitions.iter()) {
                let value = if answer.error_code == 0 { Ok(answer.offset) } else { Err(answer.error_code) };
                answers.entry(answer.partition_index).or_default().insert(broker, value);
            }
        }
        Ok(answers)
    }

    /// Each replica's size on disk, asked of every replica's broker with DescribeLogDirs:
    /// partition → broker → bytes. Brokers that cannot be reached are left out.
    pub async fn replica_sizes(&self, topic: &TopicInfo) -> Result<BTreeMap<i32, BTreeMap<i32, u64>>> {
        use sluice_proto::kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
        use sluice_proto::kafka_protocol::messages::DescribeLogDirsRequest;
        let mut by_broker: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for partition in &topic.partitions {
            for replica in &partition.replicas {
                by_broker.entry(*replica).or_default().push(partition.partition);
            }
        }
        let mut sizes: BTreeMap<i32, BTreeMap<i32, u64>> = BTreeMap::new();
        for (broker, partitions) in by_broker {
            let request = DescribeLogDirsRequest::default().with_topics(Some(vec![DescribableLogDirTopic::default()
                .with_topic(topic_name(&topic.name))
                .with_partitions(partitions)]));
            let Ok(response) = self.cluster.call_broker(broker, &request).await else { continue };
            for answer in response.results.iter().filter(|dir| dir.error_code == 0) {
                for partition in
                    answer.topics.iter().filter(|t| t.name.0.as_str() == topic.name).flat_map(|t| &t.partitions)
                {
                    if let Ok(size) = u64::try_from(partition.partition_size) {
                        sizes.entry(partition.partition_index).or_default().insert(broker, size);
                    }
                }
            }
        }
        Ok(sizes)
    }

    /// Raises `topic`'s partition count to `count`.
    pub async fn create_partitions(&self, topic: &str, count: i32) -> Result<()> {
        self.create_partitions_checked(topic, count, false).await
    }

    /// Asks the broker whether [`Admin::create_partitions`] would succeed, changing nothing
    /// (CreatePartitions `validate_only`).
    pub async fn validate_create_partitions(&self, topic: &str, count: i32) -> Result<()> {
        self.create_partitions_checked(topic, count, true).await
    }

    async fn create_partitions_checked(&self, topic: &str, count: i32, validate_only: bool) -> Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_validate_only(validate_only)
            .with_timeout_ms(timeout_ms())
            .with_topics(vec![CreatePartitionsTopic::default().with_name(topic_name(topic)).with_count(count)]);
        let response = self.cluster.call_controller(&request).await?;
        for result in &response.results {
            if result.error_code != 0 {
                return Err(ClientError::kafka(
                    result.error_code,
                    format!("create partitions of {topic:?}"),
                    result.error_message.as_ref().map(|m| m.to_string()),
                ));
            }
        }
        self.cluster.invalidate();
        Ok(())
    }

    /// Every config of `topic` (defaults included), by name.
    pub async fn describe_configs(&self, topic: &str) -> Result<BTreeMap<String, ConfigEntry>> {
        let request = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE_TYPE)
            .with_resource_name(text(topic))
            .with_configuration_keys(None)]);
        let response = self.cluster.call_controller(&request).await?;
        let mut configs = BTreeMap::new();
        for result in &response.results {
            if result.error_code == 3 {
                return Err(ClientError::UnknownTopic { topic: topic.to_string() });
            }
            if result.error_code != 0 {
                return Err(ClientError::kafka(
                    result.error_code,
                    format!("describe configs of {topic:?}"),
                    result.error_message.as_ref().map(|m| m.to_string()),
                ));
            }
            for entry in &result.configs {
                // Config sources: 1 = set for the topic; 4 = static broker, 5 = default (Kafka's codes).
                configs.insert(
                    entry.name.to_string(),
                    ConfigEntry {
                        name: entry.name.to_string(),
                        value: entry.value.as_ref().map(|v| v.to_string()),
                        is_default: entry.config_source != 1,
                        source: config_source_name(entry.config_source),
                        read_only: entry.read_only,
                    },
                );
            }
        }
        Ok(configs)
    }

    /// Applies `changes` to `topic`'s configs (IncrementalAlterConfigs: other configs keep
    /// their values).
    pub async fn alter_configs(&self, topic: &str, changes: &[ConfigChange]) -> Result<()> {
        self.alter_configs_checked(topic, changes, false).await
    }

    /// Asks the broker whether [`Admin::alter_configs`] would succeed, changing nothing
    /// (IncrementalAlterConfigs `validate_only`).
    pub async fn validate_alter_configs(&self, topic: &str, changes: &[ConfigChange]) -> Result<()> {
        self.alter_configs_checked(topic, changes, true).await
    }

    /// Applies `changes` to the dynamic broker configs of `broker`, or of every broker with
    /// `None` (IncrementalAlterConfigs on a BROKER resource; the replication throttle rates).
    pub async fn alter_broker_configs(&self, broker: Option<i32>, changes: &[ConfigChange]) -> Result<()> {
        let name = broker.map(|id| id.to_string()).unwrap_or_default();
        self.alter_resource_configs(BROKER_RESOURCE_TYPE, &name, changes, false).await
    }

    async fn alter_configs_checked(&self, topic: &str, changes: &[ConfigChange], validate_only: bool) -> Result<()> {
        self.alter_resource_configs(TOPIC_RESOURCE_TYPE, topic, changes, validate_only).await
    }

    async fn alter_resource_configs(
        &self,
        resource_type: i8,
        name: &str,
        changes: &[ConfigChange],
        validate_only: bool,
    ) -> Result<()> {
        let configs = changes
            .iter()
            .map(|change| match change {
                ConfigChange::Set(name, value) => AlterableConfig::default()
                    .with_name(text(name))
                    .with_config_operation(CONFIG_OPERATION_SET)
                    .with_value(Some(text(value))),
                ConfigChange::Delete(name) => {
                    AlterableConfig::default().with_name(text(name)).with_config_operation(CONFIG_OPERATION_DELETE)
                }
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_validate_only(validate_only).with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(text(name))
                .with_configs(configs),
        ]);
        let response = self.cluster.call_controller(&request).await?;
        for result in &response.responses {
            if result.error_code == 3 && resource_type == TOPIC_RESOURCE_TYPE {
                return Err(ClientError::UnknownTopic { topic: name.to_string() });
            }
            if result.error_code != 0 {
                let what = match resource_type {
                    TOPIC_RESOURCE_TYPE => format!("alter configs of {name:?}"),
                    _ if name.is_empty() => "alter the configs of every broker".to_string(),
                    _ => format!("alter configs of broker {name}"),
                };
                return Err(ClientError::kafka(
                    result.error_code,
                    what,
                    result.error_message.as_ref().map(|m| m.to_string()),
                ));
            }
        }
        Ok(())
    }

    /// Brokers, controller and every topic's partition leaders.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let response = self.cluster.call_any(&DescribeClusterRequest::default()).await?;
        ClientError::check(response.error_code, || "describe cluster".to_string())?;
        let metadata: Metadata = self.cluster.retry("metadata", || self.cluster.refresh(&[])).await?;
        Ok(ClusterDescription {
            cluster_id: response.cluster_id.to_string(),
            controller_id: response.controller_id.0,
            brokers: response
                .brokers
                .iter()
                .map(|broker| BrokerInfo {
                    id: broker.broker_id.0,
                    address: format!("{}:{}", broker.host, broker.port),
                    rack: broker.rack.as_ref().map(|r| r.to_string()),
                })
                .collect(),
            topics: metadata.topics.into_values().collect(),
        })
    }

    /// Asks for leader elections (Kafka's `electLeaders`): for `partitions` (topic, partition),
    /// or every partition when `None` (then partitions that need no election are left out of
    /// the answer). Per-partition outcomes, in the broker's order.
    pub async fn elect_leaders(
        &self,
        kind: ElectionType,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<ElectionResult>> {
        use sluice_proto::kafka_protocol::messages::elect_leaders_request::TopicPartitions;
        let topic_partitions = partitions.map(|partitions| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (topic, partition) in partitions {
                by_topic.entry(topic.as_str()).or_default().push(*partition);
            }
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    TopicPartitions::default().with_topic(topic_name(topic)).with_partitions(partitions)
                })
                .collect()
        });
        let request = ElectLeadersRequest::default()
            .with_election_type(match kind {
                ElectionType::Preferred => 0,
                ElectionType::Unclean => 1,
            })
            .with_topic_partitions(topic_partitions)
            .with_timeout_ms(timeout_ms());
        let response = self.cluster.call_controller(&request).await?;
        ClientError::check(response.error_code, || "elect leaders".to_string())?;
        Ok(response
            .replica_election_results
            .iter()
            .flat_map(|topic| {
                topic.partition_result.iter().map(|partition| ElectionResult {
                    topic: topic.topic.to_string(),
                    partition: partition.partition_id,
                    error_code: partition.error_code,
                    message: partition.error_message.as_ref().map(|m| m.to_string()),
                })
            })
            .collect())
    }

    /// Describes the metadata quorum (Kafka's `describeMetadataQuorum`).
    pub async fn describe_quorum(&self) -> Result<QuorumInfo> {
        use sluice_proto::kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
        let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(topic_name(METADATA_TOPIC))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        let response = self.cluster.call_controller(&request).await?;
        if response.error_code != 0 {
            let message = response.error_message.as_ref().map(|m| m.to_string());
            return Err(ClientError::kafka(response.error_code, "describe quorum", message));
        }
        let partition = response.topics.first().and_then(|topic| topic.partitions.first()).ok_or_else(|| {
            let message = Some("the answer has no metadata partition".to_string());
            ClientError::kafka(UNKNOWN_SERVER_ERROR_CODE, "describe quorum", message)
        })?;
        if partition.error_code != 0 {
            let message = partition.error_message.as_ref().map(|m| m.to_string());
            return Err(ClientError::kafka(partition.error_code, "describe quorum", message));
        }
        let endpoints: BTreeMap<i32, String> = response
            .nodes
            .iter()
            .filter_map(|node| {
                let listener = node.listeners.first()?;
                Some((node.node_id.0, format!("{}:{}", listener.host, listener.port)))
            })
            .collect();
        let member = |voter: bool| {
            let endpoints = &endpoints;
            move |state: &sluice_proto::kafka_protocol::messages::describe_quorum_response::ReplicaState| QuorumMember {
                node_id: state.replica_id.0,
                voter,
                log_end_offset: state.log_end_offset,
                last_caught_up_timestamp: state.last_caught_up_timestamp,
                endpoint: endpoints.get(&state.replica_id.0).cloned(),
            }
        };
        Ok(QuorumInfo {
            leader_id: partition.leader_id.0,
            leader_epoch: partition.leader_epoch,
            high_watermark: partition.high_watermark,
            members: partition
                .current_voters
                .iter()
                .map(member(true))
                .chain(partition.observers.iter().map(member(false)))
                .collect(),
        })
    }

    /// Makes broker `node_id` a metadata voter (Kafka's `addRaftVoter`, KIP-853). The broker
    /// must be running (it is an observer of the quorum) unless `endpoint` names its Raft
    /// listener.
    pub async fn add_raft_voter(&self, node_id: i32, endpoint: Option<(&str, u16)>) -> Result<()> {
        use sluice_proto::kafka_protocol::messages::add_raft_voter_request::Listener;
        let listeners = endpoint
            .map(|(host, port)| vec![Listener::default().with_name(text("RAFT")).with_host(text(host)).with_port(port)])
            .unwrap_or_default();
        let request = AddRaftVoterRequest::default()
            .with_cluster_id(None)
            .with_voter_id(node_id)
            .with_timeout_ms(timeout_ms())
            .with_listeners(listeners);
        let response = self.cluster.call_controller(&request).await?;
        if response.error_code != 0 {
            let message = response.error_message.as_ref().map(|m| m.to_string());
            return Err(ClientError::kafka(response.error_code, format!("add voter {node_id}"), message));
        }
        Ok(())
    }

    /// Takes broker `node_id`'s metadata vote away (Kafka's `removeRaftVoter`, KIP-853): it
    /// keeps serving as a broker and receiving the metadata log as an observer.
    pub async fn remove_raft_voter(&self, node_id: i32) -> Result<()> {
        let request = RemoveRaftVoterRequest::default().with_cluster_id(None).with_voter_id(node_id);
        let response = self.cluster.call_controller(&request).await?;
        if response.error_code != 0 {
            let message = response.error_message.as_ref().map(|m| m.to_string());
            return Err(ClientError::kafka(response.error_code, format!("remove voter {node_id}"), message));
        }
        Ok(())
    }
}
