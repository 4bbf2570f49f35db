//! ACLs (Kafka's `createAcls`, `describeAcls` and `deleteAcls`, KIP-140, with KIP-290's
//! prefixed patterns): which principal may or may not do which operation on which resource,
//! from which host.
//!
//! A binding is a resource pattern (type, name, literal or prefixed) and an access control
//! entry (principal, host, operation, allow or deny). A filter has the same fields, each
//! `None` for "any"; its pattern type may also be `Match` (every pattern that applies to the
//! named resource: literal, the wildcard `*`, and prefixes of the name). Every enum carries
//! Kafka's code, parses Kafka's names in any case with or without `-`/`_`
//! (`describe-configs`, `DescribeConfigs`, `DESCRIBE_CONFIGS`) and prints Kafka's Java enum
//! name (`DESCRIBE_CONFIGS`).
//!
//! The three requests go to the controller (any broker when none is known), so a listing
//! after a change sees it on brokers that forward ACL writes to the controller.

use std::fmt;
use std::str::FromStr;

use sluice_proto::kafka_protocol::messages::create_acls_request::AclCreation;
use sluice_proto::kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use sluice_proto::kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};

use super::{text, Admin};
use crate::error::{ClientError, Result};

/// The resource name of the cluster resource.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";
/// The principal, host or resource name that stands for every one (`User:*`, host `*`,
/// topic `*`).
pub const ACL_WILDCARD: &str = "*";

/// Lower-case, without `-`, `_` and spaces: the form names are compared in.
fn normalized(name: &str) -> String {
    name.chars().filter(|c| !matches!(c, '-' | '_' | ' ')).map(|c| c.to_ascii_lowercase()).collect()
}

/// Defines an enum of Kafka codes with its names: `code`, `from_code`, `ALL`, `FromStr`
/// (Kafka's names in any case, with or without separators) and `Display` (Kafka's enum name).
macro_rules! acl_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $($(#[$variant_meta:meta])* $variant:ident = $code:literal, $display:literal;)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Kafka's code.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)+
                }
            }

            /// The value of a code (`None` for a code this client does not know).
            pub fn from_code(code: i8) -> Option<$name> {
                $name::ALL.iter().copied().find(|value| value.code() == code)
            }

            /// Kafka's name (its Java enum's).
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $display,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> std::result::Result<$name, String> {
                let wanted = normalized(text);
                $name::ALL.iter().copied().find(|value| normalized(value.name()) == wanted).ok_or_else(|| {
                    let names: Vec<String> = $name::ALL.iter().map(|value| value.name().to_ascii_lowercase().replace('_', "-")).collect();
                    format!("unknown {} {text:?} ({})", $what, names.join(", "))
                })
            }
        }
    };
}

acl_enum! {
    /// The kind of resource an ACL is about, with Kafka's code.
    AclResourceType, "resource type" {
        /// A topic (code 2).
        Topic = 2, "TOPIC";
        /// A consumer group (code 3).
        Group = 3, "GROUP";
        /// The cluster (code 4); its only name is [`CLUSTER_RESOURCE_NAME`].
        Cluster = 4, "CLUSTER";
        /// A transactional id (code 5).
        TransactionalId = 5, "TRANSACTIONAL_ID";
    }
}

acl_enum! {
    /// How a binding's resource name is matched, with Kafka's code.
    AclPatternType, "pattern type" {
        /// The name exactly (or every resource, for the name `*`) (code 3).
        Literal = 3, "LITERAL";
        /// Every resource whose name starts with the name (code 4).
        Prefixed = 4, "PREFIXED";
    }
}

acl_enum! {
    /// Which pattern types a filter selects, with Kafka's code.
    AclPatternFilter, "pattern type" {
        /// Every pattern type (code 1).
        Any = 1, "ANY";
        /// The patterns that apply to the filter's resource name: the literal name, the
        /// literal wildcard `*` and every prefix of the name (code 2).
        Match = 2, "MATCH";
        /// Literal patterns only (code 3).
        Literal = 3, "LITERAL";
        /// Prefixed patterns only (code 4).
        Prefixed = 4, "PREFIXED";
    }
}

acl_enum! {
    /// An operation an ACL allows or denies, with Kafka's code.
    AclOperation, "operation" {
        /// Every operation (code 2).
        All = 2, "ALL";
        /// Read (fetch, consume, commit offsets) (code 3).
        Read = 3, "READ";
        /// Write (produce) (code 4).
        Write = 4, "WRITE";
        /// Create (topics) (code 5).
        Create = 5, "CREATE";
        /// Delete (topics, records, groups) (code 6).
        Delete = 6, "DELETE";
        /// Alter (partitions, ACLs) (code 7).
        Alter = 7, "ALTER";
        /// Describe (metadata, offsets, groups) (code 8).
        Describe = 8, "DESCRIBE";
        /// Cluster actions (inter-broker requests) (code 9).
        ClusterAction = 9, "CLUSTER_ACTION";
        /// Describe configs (code 10).
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        /// Alter configs (code 11).
        AlterConfigs = 11, "ALTER_CONFIGS";
        /// Idempotent produce (code 12).
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
    }
}

acl_enum! {
    /// Whether an ACL allows or denies, with Kafka's code.
    AclPermission, "permission type" {
        /// Deny (code 2); a deny wins over any allow.
        Deny = 2, "DENY";
        /// Allow (code 3).
        Allow = 3, "ALLOW";
    }
}

impl From<AclPatternType> for AclPatternFilter {
    fn from(pattern: AclPatternType) -> AclPatternFilter {
        match pattern {
            AclPatternType::Literal => AclPatternFilter::Literal,
            AclPatternType::Prefixed => AclPatternFilter::Prefixed,
        }
    }
}

/// One ACL: a resource pattern and an access control entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    /// The resource type.
    pub resource_type: AclResourceType,
    /// The resource name (`*` for every resource of the type with a literal pattern;
    /// [`CLUSTER_RESOURCE_NAME`] for the cluster).
    pub resource_name: String,
    /// How the name is matched.
    pub pattern_type: AclPatternType,
    /// The principal, `Type:name` (`User:alice`, `User:*`).
    pub principal: String,
    /// The client host (`*` for any).
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

impl fmt::Display for AclBinding {
    /// Kafka's form: `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)
    /// (principal=User:alice, host=*, operation=READ, permissionType=ALLOW)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ResourcePattern(resourceType={}, name={}, patternType={}) \
             (principal={}, host={}, operation={}, permissionType={})",
            self.resource_type,
            self.resource_name,
            self.pattern_type,
            self.principal,
            self.host,
            self.operation,
            self.permission
        )
    }
}

/// Which bindings a describe or delete selects: every field `None` matches anything (Kafka's
/// `ANY`); `AclBindingFilter::default()` selects every binding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclBindingFilter {
    /// The resource type.
    pub resource_type: Option<AclResourceType>,
    /// The resource name.
    pub resource_name: Option<String>,
    /// The pattern types (`None` is [`AclPatternFilter::Any`]).
    pub pattern_type: Option<AclPatternFilter>,
    /// The principal.
    pub principal: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// The operation.
    pub operation: Option<AclOperation>,
    /// The permission.
    pub permission: Option<AclPermission>,
}

impl From<&AclBinding> for AclBindingFilter {
    /// The filter that selects exactly `binding`.
    fn from(binding: &AclBinding) -> AclBindingFilter {
        AclBindingFilter {
            resource_type: Some(binding.resource_type),
            resource_name: Some(binding.resource_name.clone()),
            pattern_type: Some(binding.pattern_type.into()),
            principal: Some(binding.principal.clone()),
            host: Some(binding.host.clone()),
            operation: Some(binding.operation),
            permission: Some(binding.permission),
        }
    }
}

/// Kafka's code for `ANY` in a filter's resource type, operation and permission.
const ANY_CODE: i8 = 1;

impl AclBindingFilter {
    fn resource_type_code(&self) -> i8 {
        self.resource_type.map_or(ANY_CODE, AclResourceType::code)
    }

    fn pattern_type_code(&self) -> i8 {
        self.pattern_type.unwrap_or(AclPatternFilter::Any).code()
    }

    fn operation_code(&self) -> i8 {
        self.operation.map_or(ANY_CODE, AclOperation::code)
    }

    fn permission_code(&self) -> i8 {
        self.permission.map_or(ANY_CODE, AclPermission::code)
    }

    fn describe_request(&self) -> DescribeAclsRequest {
        DescribeAclsRequest::default()
            .with_resource_type_filter(self.resource_type_code())
            .with_resource_name_filter(self.resource_name.as_deref().map(text))
            .with_pattern_type_filter(self.pattern_type_code())
            .with_principal_filter(self.principal.as_deref().map(text))
            .with_host_filter(self.host.as_deref().map(text))
            .with_operation(self.operation_code())
            .with_permission_type(self.permission_code())
    }

    fn delete_filter(&self) -> DeleteAclsFilter {
        DeleteAclsFilter::default()
            .with_resource_type_filter(self.resource_type_code())
            .with_resource_name_filter(self.resource_name.as_deref().map(text))
            .with_pattern_type_filter(self.pattern_type_code())
            .with_principal_filter(self.principal.as_deref().map(text))
            .with_host_filter(self.host.as_deref().map(text))
            .with_operation(self.operation_code())
            .with_permission_type(self.permission_code())
    }
}

/// The binding of the codes a broker answered with; `None` (logged) for a code this client
/// does not know (a resource type such as USER or DELEGATION_TOKEN, a newer operation).
fn binding_from_codes(
    (resource_type, resource_name, pattern_type): (i8, &str, i8),
    (principal, host, operation, permission): (&str, &str, i8, i8),
) -> Option<AclBinding> {
    let known = (
        AclResourceType::from_code(resource_type),
        AclPatternType::from_code(pattern_type),
        AclOperation::from_code(operation),
        AclPermission::from_code(permission),
    );
    let binding = match known {
        (Some(resource_type), Some(pattern_type), Some(operation), Some(permission)) => Some(AclBinding {
            resource_type,
            resource_name: resource_name.to_string(),
            pattern_type,
            principal: principal.to_string(),
            host: host.to_string(),
            operation,
            permission,
        }),
        _ => None,
    };
    if binding.is_none() {
        tracing::warn!(
            resource_type,
            resource_name,
            pattern_type,
            principal,
            host,
            operation,
            permission,
            "skipping an ACL binding with a code this client does not know"
        );
    }
    binding
}

impl Admin {
    /// Creates `bindings` (an existing one is left as it is). When the broker refuses some,
    /// the others are created and the error is [`ClientError::AclsRefused`] with one
    /// [`ClientError::Kafka`] per refused binding (its code, the broker's message, and the
    /// binding in its context).
    pub async fn create_acls(&self, bindings: &[AclBinding]) -> Result<()> {
        if bindings.is_empty() {
            return Ok(());
        }
        let creations = bindings
            .iter()
            .map(|binding| {
                AclCreation::default()
                    .with_resource_type(binding.resource_type.code())
                    .with_resource_name(text(&binding.resource_name))
                    .with_resource_pattern_type(binding.pattern_type.code())
                    .with_principal(text(&binding.principal))
                    .with_host(text(&binding.host))
                    .with_operation(binding.operation.code())
                    .with_permission_type(binding.permission.code())
            })
            .collect();
        let request = CreateAclsRequest::default().with_creations(creations);
        let response = self.cluster.call_controller(&request).await?;
        if response.results.len() != bindings.len() {
            return Err(ClientError::UnexpectedResponse {
                reason: format!(
                    "CreateAcls answered {} results for {} bindings",
                    response.results.len(),
                    bindings.len()
                ),
            });
        }
        let failures: Vec<ClientError> = bindings
            .iter()
            .zip(&response.results)
            .filter(|(_, result)| result.error_code != 0)
            .map(|(binding, result)| {
                ClientError::kafka(
                    result.error_code,
                    format!("create ACL {binding}"),
                    result.error_message.as_ref().map(|m| m.to_string()),
                )
            })
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ClientError::AclsRefused { action: "creation", failures })
        }
    }

    /// The bindings `filter` selects.
    pub async fn describe_acls(&self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        let response = self.cluster.call_controller(&filter.describe_request()).await?;
        if response.error_code != 0 {
            return Err(ClientError::kafka(
                response.error_code,
                "describe ACLs".to_string(),
                response.error_message.as_ref().map(|m| m.to_string()),
            ));
        }
        let mut bindings = Vec::new();
        for resource in &response.resources {
            let pattern = (resource.resource_type, resource.resource_name.as_str(), resource.pattern_type);
            bindings.extend(resource.acls.iter().filter_map(|acl| {
                binding_from_codes(
                    pattern,
                    (acl.principal.as_str(), acl.host.as_str(), acl.operation, acl.permission_type),
                )
            }));
        }
        Ok(bindings)
    }

    /// Deletes every binding one of `filters` selects and returns them. When the broker
    /// refuses a filter or the removal of a binding, the error is [`ClientError::AclsRefused`]
    /// with one [`ClientError::Kafka`] per refusal; the bindings it did remove stay removed.
    pub async fn delete_acls(&self, filters: &[AclBindingFilter]) -> Result<Vec<AclBinding>> {
        if filters.is_empty() {
            return Ok(Vec::new());
        }
        let request = DeleteAclsRequest::default().with_filters(filters.iter().map(|f| f.delete_filter()).collect());
        let response = self.cluster.call_controller(&request).await?;
        if response.filter_results.len() != filters.len() {
            return Err(ClientError::UnexpectedResponse {
                reason: format!(
                    "DeleteAcls answered {} results for {} filters",
                    response.filter_results.len(),
                    filters.len()
                ),
            });
        }
        let mut removed = Vec::new();
        let mut failures = Vec::new();
        for (filter, result) in filters.iter().zip(&response.filter_results) {
            if result.error_code != 0 {
                failures.push(ClientError::kafka(
                    result.error_code,
                    format!("delete ACLs matching {filter:?}"),
                    result.error_message.as_ref().map(|m| m.to_string()),
                ));
                continue;
            }
            for acl in &result.matching_acls {
                let Some(binding) = binding_from_codes(
                    (acl.resource_type, acl.resource_name.as_str(), acl.pattern_type),
                    (acl.principal.as_str(), acl.host.as_str(), acl.operation, acl.permission_type),
                ) else {
                    continue;
                };
                if acl.error_code != 0 {
                    failures.push(ClientError::kafka(
                        acl.error_code,
                        format!("delete ACL {binding}"),
                        acl.error_message.as_ref().map(|m| m.to_string()),
                    ));
                } else if !removed.contains(&binding) {
                    removed.push(binding);
                }
            }
        }
        if failures.is_empty() {
            Ok(removed)
        } else {
            Err(ClientError::AclsRefused { action: "removal", failures })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_parse_kafkas_names_in_any_case_and_print_the_enum_name() {
        for text in ["read", "Read", "READ", " read"] {
            assert_eq!(text.trim().parse::<AclOperation>(), Ok(AclOperation::Read), "{text}");
        }
        for text in ["describe-configs", "DescribeConfigs", "DESCRIBE_CONFIGS", "describeconfigs"] {
            assert_eq!(text.parse::<AclOperation>(), Ok(AclOperation::DescribeConfigs), "{text}");
        }
        for text in ["idempotent-write", "IdempotentWrite", "IDEMPOTENT_WRITE"] {
            assert_eq!(text.parse::<AclOperation>(), Ok(AclOperation::IdempotentWrite), "{text}");
        }
        assert_eq!("cluster-action".parse::<AclOperation>(), Ok(AclOperation::ClusterAction));
        assert_eq!("AlterConfigs".parse::<AclOperation>(), Ok(AclOperation::AlterConfigs));
        assert_eq!("all".parse::<AclOperation>(), Ok(AclOperation::All));
        let error = "reed".parse::<AclOperation>().unwrap_err();
        assert!(error.contains("unknown operation \"reed\"") && error.contains("describe-configs"), "{error}");
        assert!("any".parse::<AclOperation>().is_err(), "ANY is a filter, not an operation");
        assert_eq!(AclOperation::DescribeConfigs.to_string(), "DESCRIBE_CONFIGS");
        for operation in AclOperation::ALL {
            assert_eq!(operation.to_string().parse::<AclOperation>(), Ok(*operation), "round trip");
        }
    }

    #[test]
    fn codes_are_kafkas() {
        let operations: Vec<i8> = AclOperation::ALL.iter().map(|o| o.code()).collect();
        assert_eq!(operations, (2..=12).collect::<Vec<i8>>());
        assert_eq!(AclOperation::from_code(10), Some(AclOperation::DescribeConfigs));
        assert_eq!(AclOperation::from_code(1), None, "ANY");
        assert_eq!(AclOperation::from_code(13), None, "CREATE_TOKENS: unknown to this client");
        let types: Vec<i8> = AclResourceType::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(types, [2, 3, 4, 5]);
        assert_eq!(AclResourceType::from_code(5), Some(AclResourceType::TransactionalId));
        assert_eq!(AclResourceType::from_code(6), None, "DELEGATION_TOKEN");
        assert_eq!((AclPatternType::Literal.code(), AclPatternType::Prefixed.code()), (3, 4));
        let filters: Vec<i8> = AclPatternFilter::ALL.iter().map(|p| p.code()).collect();
        assert_eq!(filters, [1, 2, 3, 4]);
        assert_eq!((AclPermission::Deny.code(), AclPermission::Allow.code()), (2, 3));
        assert_eq!(AclPermission::from_code(3), Some(AclPermission::Allow));
        for pattern in AclPatternType::ALL {
            assert_eq!(AclPatternFilter::from(*pattern).code(), pattern.code());
        }
    }

    #[test]
    fn resource_types_patterns_and_permissions_parse() {
        for text in ["transactional-id", "TransactionalId", "TRANSACTIONAL_ID", "transactionalid"] {
            assert_eq!(text.parse::<AclResourceType>(), Ok(AclResourceType::TransactionalId), "{text}");
        }
        assert_eq!("Topic".parse::<AclResourceType>(), Ok(AclResourceType::Topic));
        assert_eq!("group".parse::<AclResourceType>(), Ok(AclResourceType::Group));
        assert_eq!("CLUSTER".parse::<AclResourceType>(), Ok(AclResourceType::Cluster));
        assert!("user".parse::<AclResourceType>().is_err());
        assert_eq!("prefixed".parse::<AclPatternType>(), Ok(AclPatternType::Prefixed));
        assert_eq!("Literal".parse::<AclPatternType>(), Ok(AclPatternType::Literal));
        assert!("match".parse::<AclPatternType>().is_err(), "a binding's pattern is literal or prefixed");
        assert_eq!("match".parse::<AclPatternFilter>(), Ok(AclPatternFilter::Match));
        assert_eq!("ANY".parse::<AclPatternFilter>(), Ok(AclPatternFilter::Any));
        assert_eq!("allow".parse::<AclPermission>(), Ok(AclPermission::Allow));
        assert_eq!("Deny".parse::<AclPermission>(), Ok(AclPermission::Deny));
        assert!("permit".parse::<AclPermission>().unwrap_err().contains("allow"));
    }

    #[test]
    fn filters_encode_none_as_any() {
        let any = AclBindingFilter::default().describe_request();
        assert_eq!(
            (any.resource_type_filter, any.pattern_type_filter, any.operation, any.permission_type),
            (1, 1, 1, 1)
        );
        assert!(any.resource_name_filter.is_none() && any.principal_filter.is_none() && any.host_filter.is_none());

        let binding = AclBinding {
            resource_type: AclResourceType::Group,
            resource_name: "readers".to_string(),
            pattern_type: AclPatternType::Prefixed,
            principal: "User:alice".to_string(),
            host: "*".to_string(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        };
        let exact = AclBindingFilter::from(&binding).delete_filter();
        assert_eq!(
            (exact.resource_type_filter, exact.pattern_type_filter, exact.operation, exact.permission_type),
            (3, 4, 3, 3)
        );
        assert_eq!(exact.resource_name_filter.as_deref(), Some("readers"));
        assert_eq!(exact.principal_filter.as_deref(), Some("User:alice"));
        assert_eq!(exact.host_filter.as_deref(), Some("*"));
        assert_eq!(
            binding.to_string(),
            "ResourcePattern(resourceType=GROUP, name=readers, patternType=PREFIXED) \
             (principal=User:alice, host=*, operation=READ, permissionType=ALLOW)"
        );
    }

    #[test]
    fn answered_codes_become_bindings_and_unknown_ones_are_skipped() {
        let binding = binding_from_codes((4, CLUSTER_RESOURCE_NAME, 3), ("User:admin", "10.0.0.1", 9, 2)).unwrap();
        assert_eq!(binding.resource_type, AclResourceType::Cluster);
        assert_eq!(binding.operation, AclOperation::ClusterAction);
        assert_eq!(binding.permission, AclPermission::Deny);
        assert!(binding_from_codes((7, "alice", 3), ("User:admin", "*", 2, 3)).is_none(), "USER resources");
        assert!(binding_from_codes((2, "t", 3), ("User:admin", "*", 14, 3)).is_none(), "a newer operation");
    }

    #[test]
    fn refusals_list_every_binding_and_are_retriable_only_together() {
        let refused = ClientError::AclsRefused {
            action: "creation",
            failures: vec![
                ClientError::kafka(54, "create ACL a", Some("security is off".to_string())),
                ClientError::kafka(7, "create ACL b", None),
            ],
        };
        let message = refused.to_string();
        assert!(
            message.starts_with("2 ACL creation(s) refused: create ACL a: SecurityDisabled (code 54)"),
            "{message}"
        );
        assert!(message.contains("security is off; create ACL b: RequestTimedOut (code 7)"), "{message}");
        assert!(!refused.is_retriable(), "SECURITY_DISABLED is not");
        let timed_out =
            ClientError::AclsRefused { action: "creation", failures: vec![ClientError::kafka(7, "x", None)] };
        assert!(timed_out.is_retriable());
    }
}
