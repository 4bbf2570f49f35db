//! CreateAcls, DescribeAcls and DeleteAcls (v1–3): the ACL bindings of the metadata view.
//!
//! Bindings are replicated by the metadata Raft group (`Command::CreateAcls`, `DeleteAcls`),
//! so every broker's authorizer judges by the same set once it has applied the change. The
//! caller needs ALTER on the cluster to change bindings and DESCRIBE to list them (checked by
//! the dispatcher before these run).

use std::collections::BTreeMap;

use sluice_meta::security::{
    AclBinding, AclFilter, AclOperation, AclPermission, PatternFilter, PatternType, ResourceType,
};
use sluice_meta::{Command, CommandOutcome};
use sluice_proto::kafka_protocol::messages::create_acls_response::AclCreationResult;
use sluice_proto::kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use sluice_proto::kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use sluice_proto::kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::handlers::{meta_error, str_bytes};
use crate::kafka_code;

/// Kafka's code for ANY in resource-type, operation and permission filters.
const ANY: i8 = 1;

/// The wire fields of a binding or a filter, in Kafka's order.
struct Fields<'a> {
    resource_type: i8,
    resource_name: Option<&'a StrBytes>,
    pattern_type: i8,
    principal: Option<&'a StrBytes>,
    host: Option<&'a StrBytes>,
    operation: i8,
    permission: i8,
}

fn invalid(what: &str, code: i8) -> String {
    format!("unknown or unusable {what} code {code}")
}

/// A binding to create; `Err` names the field that is not one.
fn binding_of(fields: Fields<'_>) -> Result<AclBinding, String> {
    let text = |value: Option<&StrBytes>| value.map(|v| v.to_string()).unwrap_or_default();
    Ok(AclBinding {
        resource_type: ResourceType::from_code(fields.resource_type)
            .ok_or_else(|| invalid("resource type", fields.resource_type))?,
        resource_name: text(fields.resource_name),
        pattern_type: PatternType::from_code(fields.pattern_type)
            .ok_or_else(|| invalid("pattern type", fields.pattern_type))?,
        principal: text(fields.principal),
        host: text(fields.host),
        operation: AclOperation::from_code(fields.operation).ok_or_else(|| invalid("operation", fields.operation))?,
        permission: AclPermission::from_code(fields.permission)
            .ok_or_else(|| invalid("permission type", fields.permission))?,
    })
}

/// A filter of DescribeAcls or DeleteAcls: ANY (code 1) and null select anything.
fn filter_of(fields: Fields<'_>) -> Result<AclFilter, String> {
    let any_or = |code: i8, what: &str, parse: &dyn Fn(i8) -> bool| {
        if code == ANY || parse(code) {
            Ok(())
        } else {
            Err(invalid(what, code))
        }
    };
    any_or(fields.resource_type, "resource type", &|c| ResourceType::from_code(c).is_some())?;
    any_or(fields.operation, "operation", &|c| AclOperation::from_code(c).is_some())?;
    any_or(fields.permission, "permission type", &|c| AclPermission::from_code(c).is_some())?;
    Ok(AclFilter {
        resource_type: ResourceType::from_code(fields.resource_type),
        resource_name: fields.resource_name.map(|v| v.to_string()),
        pattern: PatternFilter::from_code(fields.pattern_type)
            .ok_or_else(|| invalid("pattern type", fields.pattern_type))?,
        principal: fields.principal.map(|v| v.to_string()),
        host: fields.host.map(|v| v.to_string()),
        operation: AclOperation::from_code(fields.operation),
        permission: AclPermission::from_code(fields.permission),
    })
}

/// CreateAcls: every well-formed binding is added in one replicated command (all or none);
/// one result per creation, in request order.
pub async fn create(broker: &Broker, request: CreateAclsRequest) -> CreateAclsResponse {
    let parsed: Vec<Result<AclBinding, String>> = request
        .creations
        .iter()
        .map(|c| {
            binding_of(Fields {
                resource_type: c.resource_type,
                resource_name: Some(&c.resource_name),
                pattern_type: c.resource_pattern_type,
                principal: Some(&c.principal),
                host: Some(&c.host),
                operation: c.operation,
                permission: c.permission_type,
            })
        })
        .collect();
    let bindings: Vec<AclBinding> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let outcome = if bindings.is_empty() {
        Ok(())
    } else {
        let count = bindings.len();
        match broker.propose_and_apply(Command::CreateAcls { bindings }).await {
            Ok(_) => {
                tracing::info!(bindings = count, "ACL bindings created");
                Ok(())
            }
            Err(error) => Err(meta_error(&error)),
        }
    };
    let results = parsed
        .into_iter()
        .map(|p| match (p, &outcome) {
            (Err(reason), _) => AclCreationResult::default()
                .with_error_code(kafka_code::INVALID_REQUEST)
                .with_error_message(Some(str_bytes(reason))),
            (Ok(_), Err((code, message))) => {
                AclCreationResult::default().with_error_code(*code).with_error_message(message.clone())
            }
            (Ok(_), Ok(())) => AclCreationResult::default(),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// DescribeAcls: the bindings the filter selects, grouped by resource.
pub fn describe(broker: &Broker, request: &DescribeAclsRequest) -> DescribeAclsResponse {
    let filter = match filter_of(Fields {
        resource_type: request.resource_type_filter,
        resource_name: request.resource_name_filter.as_ref(),
        pattern_type: request.pattern_type_filter,
        principal: request.principal_filter.as_ref(),
        host: request.host_filter.as_ref(),
        operation: request.operation,
        permission: request.permission_type,
    }) {
        Ok(filter) => filter,
        Err(reason) => {
            return DescribeAclsResponse::default()
                .with_error_code(kafka_code::INVALID_REQUEST)
                .with_error_message(Some(str_bytes(reason)));
        }
    };
    let view = broker.view();
    let mut resources: BTreeMap<(ResourceType, &str, PatternType), Vec<AclDescription>> = BTreeMap::new();
    for binding in view.security.acls.iter().filter(|b| filter.matches(b)) {
        resources
            .entry((binding.resource_type, binding.resource_name.as_str(), binding.pattern_type))
            .or_default()
            .push(description(binding));
    }
    let resources = resources
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type.code())
                .with_resource_name(str_bytes(name))
                .with_pattern_type(pattern_type.code())
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

fn description(binding: &AclBinding) -> AclDescription {
    AclDescription::default()
        .with_principal(str_bytes(binding.principal.clone()))
        .with_host(str_bytes(binding.host.clone()))
        .with_operation(binding.operation.code())
        .with_permission_type(binding.permission.code())
}

/// DeleteAcls: the bindings each filter matches are removed in one replicated command; each
/// filter's result lists what it removed.
pub async fn delete(broker: &Broker, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let parsed: Vec<Result<AclFilter, String>> = request
        .filters
        .iter()
        .map(|f| {
            filter_of(Fields {
                resource_type: f.resource_type_filter,
                resource_name: f.resource_name_filter.as_ref(),
                pattern_type: f.pattern_type_filter,
                principal: f.principal_filter.as_ref(),
                host: f.host_filter.as_ref(),
                operation: f.operation,
                permission: f.permission_type,
            })
        })
        .collect();
    let filters: Vec<AclFilter> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let outcome: Result<Vec<Vec<AclBinding>>, (i16, Option<StrBytes>)> = if filters.is_empty() {
        Ok(Vec::new())
    } else {
        match broker.propose_and_apply(Command::DeleteAcls { filters }).await {
            Ok(proposed) => match proposed.outcome {
                CommandOutcome::AclsDeleted { deleted } => {
                    let count: usize = deleted.iter().map(Vec::len).sum();
                    tracing::info!(bindings = count, "ACL bindings deleted");
                    Ok(deleted)
                }
                other => {
                    Err((kafka_code::UNKNOWN_SERVER_ERROR, Some(str_bytes(format!("unexpected outcome {other:?}")))))
                }
            },
            Err(error) => Err(meta_error(&error)),
        }
    };
    let (mut deleted, failure) = match outcome {
        Ok(deleted) => (deleted.into_iter(), None),
        Err(failure) => (Vec::new().into_iter(), Some(failure)),
    };
    let results = parsed
        .into_iter()
        .map(|p| match (p, &failure) {
            (Err(reason), _) => DeleteAclsFilterResult::default()
                .with_error_code(kafka_code::INVALID_REQUEST)
                .with_error_message(Some(str_bytes(reason))),
            (Ok(_), Some((code, message))) => {
                DeleteAclsFilterResult::default().with_error_code(*code).with_error_message(message.clone())
            }
            (Ok(_), None) => {
                let matching = deleted.next().unwrap_or_default().iter().map(matching_acl).collect();
                DeleteAclsFilterResult::default().with_matching_acls(matching)
            }
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn matching_acl(binding: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(binding.resource_type.code())
        .with_resource_name(str_bytes(binding.resource_name.clone()))
        .with_pattern_type(binding.pattern_type.code())
        .with_principal(str_bytes(binding.principal.clone()))
        .with_host(str_bytes(binding.host.clone()))
        .with_operation(binding.operation.code())
        .with_permission_type(binding.permission.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(name: Option<&'a StrBytes>, resource_type: i8, pattern: i8, op: i8, perm: i8) -> Fields<'a> {
        Fields {
            resource_type,
            resource_name: name,
            pattern_type: pattern,
            principal: None,
            host: None,
            operation: op,
            permission: perm,
        }
    }

    #[test]
    fn wire_codes_convert_as_kafka_defines_them() {
        let orders = str_bytes("orders");
        // CreateAcls: ANY and MATCH are filters, not bindings.
        assert!(binding_of(fields(Some(&orders), 2, 3, 3, 3)).is_ok());
        assert!(binding_of(fields(Some(&orders), 1, 3, 3, 3)).is_err(), "resource type ANY");
        assert!(binding_of(fields(Some(&orders), 2, 2, 3, 3)).is_err(), "pattern MATCH");
        assert!(binding_of(fields(Some(&orders), 2, 3, 1, 3)).is_err(), "operation ANY");
        assert!(binding_of(fields(Some(&orders), 9, 3, 3, 3)).is_err(), "unknown resource type");
        // Filters: ANY everywhere selects everything.
        let any = filter_of(fields(None, 1, 1, 1, 1)).unwrap();
        assert_eq!(any.resource_type, None);
        assert_eq!(any.operation, None);
        assert_eq!(any.pattern, PatternFilter::Any);
        let matching = filter_of(fields(Some(&orders), 2, 2, 4, 3)).unwrap();
        assert_eq!(matching.pattern, PatternFilter::Match);
        assert_eq!(matching.operation, Some(AclOperation::Write));
        assert!(filter_of(fields(None, 0, 1, 1, 1)).is_err(), "UNKNOWN resource type");
        assert!(filter_of(fields(None, 1, 0, 1, 1)).is_err(), "UNKNOWN pattern type");
    }
}
