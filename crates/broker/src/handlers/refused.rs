//! The answers to requests, or parts of requests, that the caller's ACLs refuse (see
//! [`crate::handlers::access`]): the shape each API's response has when Kafka's authorizer says
//! no, with the error code on every entry the client asked about.

use std::collections::BTreeSet;

use sluice_proto::kafka_protocol::messages::{
    self, AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, CreateAclsRequest, CreateAclsResponse,
    DeleteAclsRequest, DeleteAclsResponse, DeleteGroupsResponse, DescribeConfigsResponse, DescribeGroupsResponse,
    ElectLeadersRequest, ElectLeadersResponse, FindCoordinatorResponse, GroupId, InitProducerIdResponse,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::handlers::access::GROUP_AUTHORIZATION_FAILED;
use crate::handlers::{since, str_bytes};

fn message() -> Option<StrBytes> {
    Some(str_bytes("Authorization failed."))
}

/// AlterUserScramCredentials: every user named, refused.
pub fn alter_user_scram_credentials(
    request: &AlterUserScramCredentialsRequest,
    code: i16,
) -> AlterUserScramCredentialsResponse {
    use messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
    let users: BTreeSet<&str> = request
        .deletions
        .iter()
        .map(|d| d.name.as_str())
        .chain(request.upsertions.iter().map(|u| u.name.as_str()))
        .collect();
    let results = users
        .into_iter()
        .map(|user| {
            AlterUserScramCredentialsResult::default()
                .with_user(str_bytes(user))
                .with_error_code(code)
                .with_error_message(message())
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// CreateAcls: every creation refused.
pub fn create_acls(request: &CreateAclsRequest, code: i16) -> CreateAclsResponse {
    use messages::create_acls_response::AclCreationResult;
    let results = request
        .creations
        .iter()
        .map(|_| AclCreationResult::default().with_error_code(code).with_error_message(message()))
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// DeleteAcls: every filter refused.
pub fn delete_acls(request: &DeleteAclsRequest, code: i16) -> DeleteAclsResponse {
    use messages::delete_acls_response::DeleteAclsFilterResult;
    let results = request
        .filters
        .iter()
        .map(|_| DeleteAclsFilterResult::default().with_error_code(code).with_error_message(message()))
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

/// InitProducerId refused.
pub fn init_producer_id(code: i16) -> InitProducerIdResponse {
    InitProducerIdResponse::default().with_error_code(code).with_producer_id((-1).into()).with_producer_epoch(-1)
}

/// ElectLeaders refused: at the top (v1+) and on every partition named.
pub fn elect_leaders(version: i16, request: &ElectLeadersRequest, code: i16) -> ElectLeadersResponse {
    use messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
    let results = request
        .topic_partitions
        .iter()
        .flatten()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    PartitionResult::default().with_partition_id(*p).with_error_code(code).with_error_message(message())
                })
                .collect();
            ReplicaElectionResult::default().with_topic(topic.topic.clone()).with_partition_result(partitions)
        })
        .collect();
    ElectLeadersResponse::default().with_error_code(since(version, 1, code, 0)).with_replica_election_results(results)
}

/// AlterClientQuotas: every entry refused.
pub fn alter_client_quotas(
    request: &messages::AlterClientQuotasRequest,
    code: i16,
) -> messages::AlterClientQuotasResponse {
    use messages::alter_client_quotas_response::{EntityData, EntryData};
    let entries = request
        .entries
        .iter()
        .map(|entry| {
            let entity = entry
                .entity
                .iter()
                .map(|e| {
                    EntityData::default()
                        .with_entity_type(e.entity_type.clone())
                        .with_entity_name(e.entity_name.clone())
                })
                .collect();
            EntryData::default().with_error_code(code).with_error_message(message()).with_entity(entity)
        })
        .collect();
    messages::AlterClientQuotasResponse::default().with_entries(entries)
}

/// DescribeConfigs: the resources refused, appended.
pub fn describe_configs(response: &mut DescribeConfigsResponse, denied: Vec<(i8, StrBytes, i16)>) {
    use messages::describe_configs_response::DescribeConfigsResult;
    for (resource_type, resource_name, code) in denied {
        response.results.push(
            DescribeConfigsResult::default()
                .with_error_code(code)
                .with_error_message(message())
                .with_resource_type(resource_type)
                .with_resource_name(resource_name),
        );
    }
}

/// AlterConfigs: the resources refused, appended.
pub fn alter_configs(
    responses: &mut Vec<messages::alter_configs_response::AlterConfigsResourceResponse>,
    denied: Vec<(i8, StrBytes, i16)>,
) {
    use messages::alter_configs_response::AlterConfigsResourceResponse;
    for (resource_type, resource_name, code) in denied {
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message())
                .with_resource_type(resource_type)
                .with_resource_name(resource_name),
        );
    }
}

/// IncrementalAlterConfigs: the resources refused, appended.
pub fn incremental_alter_configs(
    responses: &mut Vec<messages::incremental_alter_configs_response::AlterConfigsResourceResponse>,
    denied: Vec<(i8, StrBytes, i16)>,
) {
    use messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    for (resource_type, resource_name, code) in denied {
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message())
                .with_resource_type(resource_type)
                .with_resource_name(resource_name),
        );
    }
}

/// FindCoordinator v0–3 refused.
pub fn find_coordinator(version: i16, code: i16) -> FindCoordinatorResponse {
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_error_message(since(version, 1, message(), None))
        .with_node_id((-1).into())
        .with_port(-1)
}

/// FindCoordinator v4: the keys refused, appended.
pub fn coordinators(response: &mut FindCoordinatorResponse, denied: Vec<StrBytes>, code: i16) {
    use messages::find_coordinator_response::Coordinator;
    for key in denied {
        response.coordinators.push(
            Coordinator::default()
                .with_key(key)
                .with_node_id((-1).into())
                .with_port(-1)
                .with_error_code(code)
                .with_error_message(message()),
        );
    }
}

/// DescribeGroups: the groups refused, appended.
pub fn described_groups(response: &mut DescribeGroupsResponse, denied: Vec<GroupId>) {
    use messages::describe_groups_response::DescribedGroup;
    for group in denied {
        response
            .groups
            .push(DescribedGroup::default().with_group_id(group).with_error_code(GROUP_AUTHORIZATION_FAILED));
    }
}

/// DeleteGroups: the groups refused, appended.
pub fn deleted_groups(response: &mut DeleteGroupsResponse, denied: Vec<GroupId>) {
    use messages::delete_groups_response::DeletableGroupResult;
    for group in denied {
        response
            .results
            .push(DeletableGroupResult::default().with_group_id(group).with_error_code(GROUP_AUTHORIZATION_FAILED));
    }
}
