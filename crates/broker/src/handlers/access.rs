//! Access control for every request: what the caller's ACLs let it do, applied before a handler
//! acts and to what it answers.
//!
//! Kafka's `KafkaApis` checks each request the same way, and so does this module:
//!
//! - a request on many topics (Produce, Fetch, ListOffsets, OffsetCommit, …) is split: the
//!   topics the caller may not touch are taken out before the handler runs and answered with
//!   TOPIC_AUTHORIZATION_FAILED beside the handler's answers for the rest;
//! - a request on one group (JoinGroup, Heartbeat, …) or on the cluster (ElectLeaders,
//!   CreateAcls, …) is refused whole with GROUP_ / CLUSTER_AUTHORIZATION_FAILED, and the handler
//!   never runs;
//! - what lists resources (Metadata for all topics, ListGroups, OffsetFetch of every topic)
//!   leaves out what the caller may not DESCRIBE, so it does not learn that they exist;
//! - authorized-operations fields (KIP-430) carry what the caller may really do.
//!
//! The operation each API needs is Kafka's (see `docs/security.md`, "What each request needs").
//! With the authorizer off every check passes and nothing is taken out, so the handlers see
//! requests unchanged. The handlers below this module know nothing of ACLs.

use std::sync::Arc;

use sluice_meta::security::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use sluice_meta::MetadataView;
use sluice_proto::kafka_protocol::messages::{
    self, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse, DescribeProducersRequest,
    DescribeProducersResponse, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest,
    MetadataResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::handlers::authorized_operations::NOT_REQUESTED;
use crate::handlers::str_bytes;
use crate::kafka_code;
use crate::security::authorizer::{supported_operations, AuthorizerConfig, Caller};
use crate::security::Principal;

/// TOPIC_AUTHORIZATION_FAILED
pub const TOPIC_AUTHORIZATION_FAILED: i16 = kafka_code::TOPIC_AUTHORIZATION_FAILED;
/// GROUP_AUTHORIZATION_FAILED
pub const GROUP_AUTHORIZATION_FAILED: i16 = kafka_code::GROUP_AUTHORIZATION_FAILED;
/// CLUSTER_AUTHORIZATION_FAILED
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = kafka_code::CLUSTER_AUTHORIZATION_FAILED;

/// Kafka's `ConfigResource.Type` codes that DescribeConfigs and the AlterConfigs requests use.
const CONFIG_RESOURCE_TOPIC: i8 = 2;
const CONFIG_RESOURCE_GROUP: i8 = 32;

/// One request's caller and the ACLs it is judged by (the view of when the request began).
#[derive(Debug)]
pub struct Access<'a> {
    config: &'a AuthorizerConfig,
    view: Arc<MetadataView>,
    /// `None` with the authorizer off: nothing to judge.
    caller: Option<Caller>,
}

impl<'a> Access<'a> {
    /// The access of `principal` connected from `host`, judged by `config` over `view`'s ACLs.
    pub fn new(
        config: &'a AuthorizerConfig,
        view: Arc<MetadataView>,
        principal: &Principal,
        host: std::net::IpAddr,
    ) -> Self {
        let caller = config.enabled.then(|| Caller::new(principal, host));
        Access { config, view, caller }
    }

    /// Whether the caller may perform `operation` on `resource_type` / `name`.
    pub fn allows(&self, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        match &self.caller {
            None => true,
            Some(caller) => self.config.authorize(&self.view.security.acls, caller, operation, resource_type, name),
        }
    }

    /// [`Access::allows`] on a topic.
    pub fn topic(&self, operation: AclOperation, name: &str) -> bool {
        self.allows(operation, ResourceType::Topic, name)
    }

    /// [`Access::allows`] on a group.
    pub fn group(&self, operation: AclOperation, name: &str) -> bool {
        self.allows(operation, ResourceType::Group, name)
    }

    /// [`Access::allows`] on the cluster.
    pub fn cluster(&self, operation: AclOperation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_RESOURCE_NAME)
    }

    /// `Err(CLUSTER_AUTHORIZATION_FAILED)` unless the caller may perform `operation` on the
    /// cluster: the check of the requests refused whole.
    pub fn require_cluster(&self, operation: AclOperation) -> Result<(), i16> {
        if self.cluster(operation) {
            Ok(())
        } else {
            Err(CLUSTER_AUTHORIZATION_FAILED)
        }
    }

    /// KIP-430's bit field of what the caller may do on the resource, or [`NOT_REQUESTED`]
    /// when `asked` is false.
    pub fn operations(&self, asked: bool, resource_type: ResourceType, name: &str) -> i32 {
        if !asked {
            return NOT_REQUESTED;
        }
        match &self.caller {
            // No authorizer: every operation the type supports, as Kafka reports without one.
            None => supported_operations(resource_type).iter().fold(0, |field, op| field | (1 << op.code())),
            Some(caller) => self.config.authorized_operations(&self.view.security.acls, caller, resource_type, name),
        }
    }

    /// KIP-430's bit field for the cluster, as Kafka reports it: 0 unless the caller may
    /// DESCRIBE the cluster.
    pub fn cluster_operations(&self) -> i32 {
        if self.cluster(AclOperation::Describe) {
            self.operations(true, ResourceType::Cluster, CLUSTER_RESOURCE_NAME)
        } else {
            0
        }
    }

    /// Whether an idempotent producer may get a producer id: IDEMPOTENT_WRITE on the cluster, or
    /// WRITE on some topic (KIP-679).
    pub fn idempotent_write(&self) -> bool {
        self.cluster(AclOperation::IdempotentWrite)
            || self
                .caller
                .as_ref()
                .is_none_or(|caller| self.config.may_write_some_topic(&self.view.security.acls, caller))
    }

    /// Whether the caller may create `topic`: CREATE on the cluster or on the topic.
    pub fn may_create_topic(&self, topic: &str) -> bool {
        self.cluster(AclOperation::Create) || self.topic(AclOperation::Create, topic)
    }
}

/// Takes the items `allowed` refuses out of `items` and returns them, keeping order on both
/// sides; `allowed` is asked once per item. When it refuses none (always, with the authorizer
/// off: every produce and fetch), `items` is left as it is and nothing is allocated.
pub fn take_denied<T>(items: &mut Vec<T>, mut allowed: impl FnMut(&T) -> bool) -> Vec<T> {
    let Some(first) = items.iter().position(|item| !allowed(item)) else {
        return Vec::new();
    };
    let rest: Vec<T> = items.drain(first..).collect();
    let mut denied = Vec::new();
    for (index, item) in rest.into_iter().enumerate() {
        // The first was refused already: not asked twice.
        if index > 0 && allowed(&item) {
            items.push(item);
        } else {
            denied.push(item);
        }
    }
    denied
}

fn name(topic: &TopicName) -> &str {
    topic.0.as_str()
}

/// The name of a topic given by name, or else by id (`None`: an id no topic has).
fn named(view: &MetadataView, topic: &Option<TopicName>, id: uuid::Uuid) -> Option<String> {
    match topic {
        Some(topic) => Some(topic.0.to_string()),
        None => view.topic_by_id(id).map(|record| record.name.clone()),
    }
}

// ---- Produce ------------------------------------------------------------------------------

/// Produce: WRITE on each topic. Returns the topics taken out.
pub fn produce(access: &Access<'_>, request: &mut ProduceRequest) -> Vec<messages::produce_request::TopicProduceData> {
    take_denied(&mut request.topic_data, |topic| access.topic(AclOperation::Write, name(&topic.name)))
}

/// The produce answers of the topics [`produce`] took out.
pub fn produce_denied(response: &mut ProduceResponse, denied: Vec<messages::produce_request::TopicProduceData>) {
    use messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
    for topic in denied {
        let partitions = topic
            .partition_data
            .iter()
            .map(|p| {
                PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                    .with_base_offset(-1)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(-1)
            })
            .collect();
        response
            .responses
            .push(TopicProduceResponse::default().with_name(topic.name).with_partition_responses(partitions));
    }
}

// ---- Fetch --------------------------------------------------------------------------------

/// Fetch: READ on each topic for a consumer; CLUSTER_ACTION on the cluster for a follower
/// (a request with a replica id), whose every topic is refused without it (CVE-2018-1288 was
/// a consumer posing as a replica).
pub fn fetch(access: &Access<'_>, request: &mut FetchRequest) -> Vec<messages::fetch_request::FetchTopic> {
    if request.replica_id.0 >= 0 {
        let allowed = access.cluster(AclOperation::ClusterAction);
        return take_denied(&mut request.topics, |_| allowed);
    }
    take_denied(&mut request.topics, |topic| access.topic(AclOperation::Read, name(&topic.topic)))
}

/// The fetch answers of the topics [`fetch`] took out.
pub fn fetch_denied(response: &mut FetchResponse, denied: Vec<messages::fetch_request::FetchTopic>) {
    use messages::fetch_response::{FetchableTopicResponse, PartitionData};
    for topic in denied {
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                    .with_high_watermark(-1)
                    .with_last_stable_offset(-1)
                    .with_log_start_offset(-1)
            })
            .collect();
        response.responses.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic)
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
}

// ---- ListOffsets, OffsetForLeaderEpoch, DescribeProducers, DeleteRecords ---------------------

/// ListOffsets: DESCRIBE on each topic.
pub fn list_offsets(
    access: &Access<'_>,
    request: &mut ListOffsetsRequest,
) -> Vec<messages::list_offsets_request::ListOffsetsTopic> {
    take_denied(&mut request.topics, |topic| access.topic(AclOperation::Describe, name(&topic.name)))
}

/// The ListOffsets answers of the topics [`list_offsets`] took out.
pub fn list_offsets_denied(
    response: &mut ListOffsetsResponse,
    denied: Vec<messages::list_offsets_request::ListOffsetsTopic>,
) {
    use messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
    for topic in denied {
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                    .with_timestamp(-1)
                    .with_offset(-1)
            })
            .collect();
        response.topics.push(ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions));
    }
}

/// OffsetForLeaderEpoch: DESCRIBE on each topic for a consumer, CLUSTER_ACTION for a follower.
pub fn leader_epoch(
    access: &Access<'_>,
    request: &mut OffsetForLeaderEpochRequest,
) -> Vec<messages::offset_for_leader_epoch_request::OffsetForLeaderTopic> {
    if request.replica_id.0 >= 0 {
        let allowed = access.cluster(AclOperation::ClusterAction);
        return take_denied(&mut request.topics, |_| allowed);
    }
    take_denied(&mut request.topics, |topic| access.topic(AclOperation::Describe, name(&topic.topic)))
}

/// The OffsetForLeaderEpoch answers of the topics [`leader_epoch`] took out.
pub fn leader_epoch_denied(
    response: &mut OffsetForLeaderEpochResponse,
    denied: Vec<messages::offset_for_leader_epoch_request::OffsetForLeaderTopic>,
) {
    use messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
    for topic in denied {
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                EpochEndOffset::default()
                    .with_partition(p.partition)
                    .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                    .with_leader_epoch(-1)
                    .with_end_offset(-1)
            })
            .collect();
        response.topics.push(OffsetForLeaderTopicResult::default().with_topic(topic.topic).with_partitions(partitions));
    }
}

/// DescribeProducers: READ on each topic.
pub fn describe_producers(
    access: &Access<'_>,
    request: &mut DescribeProducersRequest,
) -> Vec<messages::describe_producers_request::TopicRequest> {
    take_denied(&mut request.topics, |topic| access.topic(AclOperation::Read, name(&topic.name)))
}

/// The DescribeProducers answers of the topics [`describe_producers`] took out.
pub fn describe_producers_denied(
    response: &mut DescribeProducersResponse,
    denied: Vec<messages::describe_producers_request::TopicRequest>,
) {
    use messages::describe_producers_response::{PartitionResponse, TopicResponse};
    for topic in denied {
        let partitions = topic
            .partition_indexes
            .iter()
            .map(|index| {
                PartitionResponse::default().with_partition_index(*index).with_error_code(TOPIC_AUTHORIZATION_FAILED)
            })
            .collect();
        response.topics.push(TopicResponse::default().with_name(topic.name).with_partitions(partitions));
    }
}

/// DeleteRecords: DELETE on each topic.
pub fn delete_records(
    access: &Access<'_>,
    request: &mut DeleteRecordsRequest,
) -> Vec<messages::delete_records_request::DeleteRecordsTopic> {
    take_denied(&mut request.topics, |topic| access.topic(AclOperation::Delete, name(&topic.name)))
}

/// The DeleteRecords answers of the topics [`delete_records`] took out.
pub fn delete_records_denied(
    response: &mut DeleteRecordsResponse,
    denied: Vec<messages::delete_records_request::DeleteRecordsTopic>,
) {
    use messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
    for topic in denied {
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                DeleteRecordsPartitionResult::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                    .with_low_watermark(-1)
            })
            .collect();
        response.topics.push(DeleteRecordsTopicResult::default().with_name(topic.name).with_partitions(partitions));
    }
}

// ---- Metadata -----------------------------------------------------------------------------

/// What [`metadata`] took out of a Metadata request: topics the caller may not describe (or,
/// when they do not exist and would be created, may not create).
#[derive(Debug, Default)]
pub struct MetadataDenied {
    topics: Vec<messages::metadata_request::MetadataRequestTopic>,
}

/// Metadata: DESCRIBE on each named topic; CREATE (cluster or topic) for one that does not
/// exist and would be created.
pub fn metadata(access: &Access<'_>, request: &mut MetadataRequest) -> MetadataDenied {
    let Some(topics) = request.topics.as_mut() else {
        return MetadataDenied::default(); // every topic: filtered in the answer
    };
    let auto_create = request.allow_auto_topic_creation;
    let view = Arc::clone(&access.view);
    let denied = take_denied(topics, |topic| {
        let Some(topic_name) = named(&view, &topic.name, topic.topic_id) else {
            return true; // an unknown id: the handler answers UNKNOWN_TOPIC_ID
        };
        if !access.topic(AclOperation::Describe, &topic_name) {
            return false;
        }
        !(auto_create && !view.topics.contains_key(&topic_name) && !access.may_create_topic(&topic_name))
    });
    MetadataDenied { topics: denied }
}

/// The Metadata answer as the caller may see it: the denied topics answered, every topic the
/// caller may not describe left out of an all-topics answer, and real authorized operations.
pub fn metadata_answer(access: &Access<'_>, response: &mut MetadataResponse, denied: MetadataDenied, listed_all: bool) {
    use messages::metadata_response::MetadataResponseTopic;
    if listed_all {
        response
            .topics
            .retain(|topic| topic.name.as_ref().is_none_or(|n| access.topic(AclOperation::Describe, name(n))));
    }
    for topic in &mut response.topics {
        if topic.topic_authorized_operations != NOT_REQUESTED {
            if let Some(topic_name) = &topic.name {
                topic.topic_authorized_operations = access.operations(true, ResourceType::Topic, name(topic_name));
            }
        }
    }
    if response.cluster_authorized_operations != NOT_REQUESTED {
        response.cluster_authorized_operations = access.cluster_operations();
    }
    for topic in denied.topics {
        response.topics.push(
            MetadataResponseTopic::default()
                .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_topic_authorized_operations(NOT_REQUESTED),
        );
    }
}

// ---- Topic administration -----------------------------------------------------------------

/// CreateTopics: CREATE on the cluster or on each topic.
pub fn create_topics(access: &Access<'_>, request: &mut CreateTopicsRequest) -> Vec<TopicName> {
    take_denied(&mut request.topics, |topic| access.may_create_topic(name(&topic.name)))
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// The CreateTopics answers of the topics [`create_topics`] took out.
pub fn create_topics_denied(response: &mut CreateTopicsResponse, denied: Vec<TopicName>) {
    use messages::create_topics_response::CreatableTopicResult;
    for topic in denied {
        response.topics.push(
            CreatableTopicResult::default()
                .with_name(topic)
                .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                .with_error_message(Some(str_bytes("Authorization failed.")))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        );
    }
}

/// DeleteTopics: DELETE on each topic, named or (v6) given by id.
pub fn delete_topics(
    access: &Access<'_>,
    request: &mut DeleteTopicsRequest,
) -> Vec<messages::delete_topics_request::DeleteTopicState> {
    let view = Arc::clone(&access.view);
    let mut denied: Vec<messages::delete_topics_request::DeleteTopicState> =
        take_denied(&mut request.topic_names, |topic| access.topic(AclOperation::Delete, name(topic)))
            .into_iter()
            .map(|topic| messages::delete_topics_request::DeleteTopicState::default().with_name(Some(topic)))
            .collect();
    denied.extend(take_denied(&mut request.topics, |topic| {
        let Some(topic_name) = named(&view, &topic.name, topic.topic_id) else {
            return true; // an unknown id: the handler answers UNKNOWN_TOPIC_ID
        };
        access.topic(AclOperation::Delete, &topic_name)
    }));
    denied
}

/// The DeleteTopics answers of the topics [`delete_topics`] took out.
pub fn delete_topics_denied(
    response: &mut DeleteTopicsResponse,
    denied: Vec<messages::delete_topics_request::DeleteTopicState>,
) {
    use messages::delete_topics_response::DeletableTopicResult;
    for topic in denied {
        response.responses.push(
            DeletableTopicResult::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_error_code(TOPIC_AUTHORIZATION_FAILED),
        );
    }
}

/// CreatePartitions: ALTER on each topic.
pub fn create_partitions(access: &Access<'_>, request: &mut CreatePartitionsRequest) -> Vec<TopicName> {
    take_denied(&mut request.topics, |topic| access.topic(AclOperation::Alter, name(&topic.name)))
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// The CreatePartitions answers of the topics [`create_partitions`] took out.
pub fn create_partitions_denied(response: &mut CreatePartitionsResponse, denied: Vec<TopicName>) {
    use messages::create_partitions_response::CreatePartitionsTopicResult;
    for topic in denied {
        response.results.push(
            CreatePartitionsTopicResult::default()
                .with_name(topic)
                .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                .with_error_message(Some(str_bytes("Authorization failed."))),
        );
    }
}

// ---- Configs ------------------------------------------------------------------------------

/// The error for a config resource the caller may not `operation` (DESCRIBE_CONFIGS or
/// ALTER_CONFIGS): topics by name, groups by name, brokers and broker loggers on the cluster.
pub fn config_resource(
    access: &Access<'_>,
    operation: AclOperation,
    resource_type: i8,
    resource_name: &str,
) -> Option<i16> {
    match resource_type {
        CONFIG_RESOURCE_TOPIC => (!access.topic(operation, resource_name)).then_some(TOPIC_AUTHORIZATION_FAILED),
        CONFIG_RESOURCE_GROUP => (!access.group(operation, resource_name)).then_some(GROUP_AUTHORIZATION_FAILED),
        _ => (!access.cluster(operation)).then_some(CLUSTER_AUTHORIZATION_FAILED),
    }
}

/// Takes out of `resources` those [`config_resource`] refuses; returns them with their error.
pub fn config_resources<T>(
    access: &Access<'_>,
    operation: AclOperation,
    resources: &mut Vec<T>,
    key: impl Fn(&T) -> (i8, StrBytes),
) -> Vec<(i8, StrBytes, i16)> {
    let mut denied = Vec::new();
    resources.retain(|resource| {
        let (resource_type, resource_name) = key(resource);
        match config_resource(access, operation, resource_type, resource_name.as_str()) {
            Some(code) => {
                denied.push((resource_type, resource_name, code));
                false
            }
            None => true,
        }
    });
    denied
}

// ---- Groups -------------------------------------------------------------------------------

/// OffsetCommit: READ on the group, then READ on each topic. Returns the topics taken out with
/// the error each gets (all of them, with GROUP_AUTHORIZATION_FAILED, when the group is refused).
pub fn offset_commit(
    access: &Access<'_>,
    request: &mut OffsetCommitRequest,
) -> Vec<(messages::offset_commit_request::OffsetCommitRequestTopic, i16)> {
    if !access.group(AclOperation::Read, request.group_id.0.as_str()) {
        return std::mem::take(&mut request.topics).into_iter().map(|t| (t, GROUP_AUTHORIZATION_FAILED)).collect();
    }
    take_denied(&mut request.topics, |topic| access.topic(AclOperation::Read, name(&topic.name)))
        .into_iter()
        .map(|t| (t, TOPIC_AUTHORIZATION_FAILED))
        .collect()
}

/// The OffsetCommit answers of the topics [`offset_commit`] took out.
pub fn offset_commit_denied(
    response: &mut OffsetCommitResponse,
    denied: Vec<(messages::offset_commit_request::OffsetCommitRequestTopic, i16)>,
) {
    use messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
    for (topic, code) in denied {
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)
            })
            .collect();
        response.topics.push(
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
}

/// OffsetDelete: DELETE on the group (else the whole request is refused: `Err`), READ on each
/// topic.
pub fn offset_delete(
    access: &Access<'_>,
    request: &mut OffsetDeleteRequest,
) -> Result<Vec<messages::offset_delete_request::OffsetDeleteRequestTopic>, i16> {
    if !access.group(AclOperation::Delete, request.group_id.0.as_str()) {
        return Err(GROUP_AUTHORIZATION_FAILED);
    }
    Ok(take_denied(&mut request.topics, |topic| access.topic(AclOperation::Read, name(&topic.name))))
}

/// The OffsetDelete answers of the topics [`offset_delete`] took out.
pub fn offset_delete_denied(
    response: &mut OffsetDeleteResponse,
    denied: Vec<messages::offset_delete_request::OffsetDeleteRequestTopic>,
) {
    use messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
    for topic in denied {
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC_AUTHORIZATION_FAILED)
            })
            .collect();
        response.topics.push(OffsetDeleteResponseTopic::default().with_name(topic.name).with_partitions(partitions));
    }
}

/// What [`offset_fetch`] decided for an OffsetFetch request.
#[derive(Debug, Default)]
pub struct OffsetFetchDenied {
    /// Groups (v8+) refused whole.
    groups: Vec<messages::GroupId>,
    /// The single group of v0–7, refused whole.
    group: bool,
    /// Named topics refused, per group id, with their error.
    topics: Vec<(String, TopicName, Vec<i32>, i16)>,
}

/// OffsetFetch: DESCRIBE on each group, DESCRIBE on each named topic (an all-topics fetch
/// leaves out what the caller may not describe, in [`offset_fetch_answer`]).
pub fn offset_fetch(access: &Access<'_>, request: &mut OffsetFetchRequest) -> OffsetFetchDenied {
    let mut denied = OffsetFetchDenied::default();
    let may_describe = |topic: &TopicName| access.topic(AclOperation::Describe, name(topic));
    if request.groups.is_empty() {
        let group = request.group_id.0.to_string();
        let group_allowed = access.group(AclOperation::Describe, &group);
        denied.group = !group_allowed;
        if let Some(topics) = request.topics.as_mut() {
            for topic in take_denied(topics, |t| group_allowed && may_describe(&t.name)) {
                let code = if group_allowed { TOPIC_AUTHORIZATION_FAILED } else { GROUP_AUTHORIZATION_FAILED };
                denied.topics.push((group.clone(), topic.name, topic.partition_indexes, code));
            }
        }
        return denied;
    }
    for group in take_denied(&mut request.groups, |g| access.group(AclOperation::Describe, g.group_id.0.as_str())) {
        denied.groups.push(group.group_id);
    }
    for group in &mut request.groups {
        if let Some(topics) = group.topics.as_mut() {
            for topic in take_denied(topics, |t| may_describe(&t.name)) {
                denied.topics.push((
                    group.group_id.0.to_string(),
                    topic.name,
                    topic.partition_indexes,
                    TOPIC_AUTHORIZATION_FAILED,
                ));
            }
        }
    }
    denied
}

/// Whether [`offset_fetch`] refused the whole (single-group) request: then it is answered with
/// [`offset_fetch_refused`] and the handler does not run.
pub fn offset_fetch_refused_whole(denied: &OffsetFetchDenied) -> bool {
    denied.group
}

/// The answer to a single-group OffsetFetch whose group is refused: the group's error at the top
/// (v2+) and on every partition asked for.
pub fn offset_fetch_refused(access: &Access<'_>, version: i16, denied: OffsetFetchDenied) -> OffsetFetchResponse {
    let code = if version >= 2 { GROUP_AUTHORIZATION_FAILED } else { kafka_code::NONE };
    let mut response = OffsetFetchResponse::default().with_error_code(code);
    offset_fetch_answer(access, &mut response, denied);
    response
}

/// The OffsetFetch answer as the caller may see it.
pub fn offset_fetch_answer(access: &Access<'_>, response: &mut OffsetFetchResponse, denied: OffsetFetchDenied) {
    use messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    };
    let may_describe = |topic: &TopicName| access.topic(AclOperation::Describe, name(topic));
    response.topics.retain(|t| may_describe(&t.name));
    for group in &mut response.groups {
        group.topics.retain(|t| may_describe(&t.name));
    }
    for (group_id, topic, partitions, code) in denied.topics {
        if response.groups.is_empty() {
            let partitions = partitions
                .iter()
                .map(|i| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(*i)
                        .with_committed_offset(-1)
                        .with_error_code(code)
                })
                .collect();
            response.topics.push(OffsetFetchResponseTopic::default().with_name(topic).with_partitions(partitions));
        } else if let Some(group) = response.groups.iter_mut().find(|g| g.group_id.0.as_str() == group_id) {
            let partitions = partitions
                .iter()
                .map(|i| {
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(*i)
                        .with_committed_offset(-1)
                        .with_error_code(code)
                })
                .collect();
            group.topics.push(OffsetFetchResponseTopics::default().with_name(topic).with_partitions(partitions));
        }
    }
    for group_id in denied.groups {
        response.groups.push(
            OffsetFetchResponseGroup::default().with_group_id(group_id).with_error_code(GROUP_AUTHORIZATION_FAILED),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_authorizer_every_check_passes_and_operations_are_kafkas_full_sets() {
        use crate::handlers::authorized_operations as ops;
        let config = AuthorizerConfig::default();
        let view = Arc::new(MetadataView::default());
        let access = Access::new(&config, view, &Principal::anonymous(), std::net::Ipv4Addr::LOCALHOST.into());
        assert!(access.topic(AclOperation::Write, "t") && access.cluster(AclOperation::Alter));
        assert_eq!(access.operations(true, ResourceType::Topic, "t"), ops::TOPIC);
        assert_eq!(access.operations(true, ResourceType::Group, "g"), ops::GROUP);
        assert_eq!(access.cluster_operations(), ops::CLUSTER);
        assert_eq!(access.operations(false, ResourceType::Topic, "t"), NOT_REQUESTED);
    }

    #[test]
    fn take_denied_keeps_order_on_both_sides() {
        let mut items = vec![1, 2, 3, 4, 5];
        let mut asked = 0;
        let denied = take_denied(&mut items, |i| {
            asked += 1;
            i % 2 == 1
        });
        assert_eq!(items, vec![1, 3, 5]);
        assert_eq!(denied, vec![2, 4]);
        assert_eq!(asked, 5, "each item asked once");
        let mut all = vec![1, 3];
        let capacity = all.capacity();
        assert!(take_denied(&mut all, |_| true).is_empty());
        assert_eq!((all, capacity), (vec![1, 3], 2));
        let mut none = vec![2, 4];
        assert_eq!(take_denied(&mut none, |_| false), vec![2, 4]);
        assert!(none.is_empty());
    }
}
