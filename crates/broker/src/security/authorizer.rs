//! The authorizer: may this principal, from this host, perform this operation on this resource?
//!
//! Kafka's model (`StandardAuthorizer`), decided over the ACL bindings of the metadata view:
//!
//! 1. With the authorizer off (the default), everything is allowed.
//! 2. A super user (`--super-users`) is allowed everything.
//! 3. The bindings that apply to the resource are the literal ones of its name, the literal
//!    wildcard `*` of its type, and the prefixed ones whose prefix starts its name; of those,
//!    the ones whose principal is the caller's or `User:*` and whose host is the caller's
//!    address or `*` match.
//! 4. A matching DENY of the operation (or of ALL) refuses, whatever allows it.
//! 5. A matching ALLOW of the operation, of ALL, or of an operation that implies it allows:
//!    READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS.
//! 6. Otherwise refused — unless no binding at all applies to the resource and
//!    `--allow-everyone-if-no-acl-found` is set (Kafka's `allow.everyone.if.no.acl.found`).
//!
//! A check scans the bindings (at most [`sluice_meta::limits::ACL_BINDINGS_MAX`]); the view is
//! an immutable snapshot, so a request is decided against one consistent ACL set.

use std::collections::BTreeSet;
use std::net::IpAddr;

use sluice_meta::security::{AclBinding, AclOperation, AclPermission, PatternType, ResourceType, WILDCARD};

use super::Principal;

/// `--authorizer-enabled`, `--super-users`, `--allow-everyone-if-no-acl-found`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Whether requests are checked at all.
    pub enabled: bool,
    /// Principals allowed everything (`User:admin`).
    pub super_users: Vec<Principal>,
    /// Allow an operation on a resource that no binding applies to.
    pub allow_everyone_if_no_acl_found: bool,
}

/// The principal that matches every principal in a binding.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// Every operation a resource type supports, as Kafka lists them (`AclEntry.supportedOperations`):
/// what authorized-operations bit fields (KIP-430) are computed over.
pub fn supported_operations(resource_type: ResourceType) -> &'static [AclOperation] {
    use AclOperation::*;
    match resource_type {
        ResourceType::Topic => &[Read, Write, Create, Describe, Delete, Alter, DescribeConfigs, AlterConfigs],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => {
            &[Create, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, Alter, Describe]
        }
        ResourceType::TransactionalId => &[Describe, Write],
    }
}

/// Whether an ALLOW of `granted` allows `wanted`.
fn implies(granted: AclOperation, wanted: AclOperation) -> bool {
    use AclOperation::*;
    granted == wanted
        || granted == All
        || (wanted == Describe && matches!(granted, Read | Write | Delete | Alter))
        || (wanted == DescribeConfigs && granted == AlterConfigs)
}

/// Whether `binding` applies to the resource `resource_type` / `name`.
fn applies_to(binding: &AclBinding, resource_type: ResourceType, name: &str) -> bool {
    binding.resource_type == resource_type
        && match binding.pattern_type {
            PatternType::Literal => binding.resource_name == name || binding.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(binding.resource_name.as_str()),
        }
}

/// Who asks: a principal (as `Type:name`) from an address.
#[derive(Debug, Clone)]
pub struct Caller {
    principal: Principal,
    principal_text: String,
    host: String,
}

impl Caller {
    /// `principal` connected from `host`.
    pub fn new(principal: &Principal, host: IpAddr) -> Caller {
        Caller { principal: principal.clone(), principal_text: principal.to_string(), host: host.to_string() }
    }

    fn matches(&self, binding: &AclBinding) -> bool {
        (binding.principal == self.principal_text || binding.principal == WILDCARD_PRINCIPAL)
            && (binding.host == WILDCARD || binding.host == self.host)
    }
}

impl AuthorizerConfig {
    /// Whether `caller` may perform `operation` on `resource_type` / `name` under `acls`.
    pub fn authorize(
        &self,
        acls: &BTreeSet<AclBinding>,
        caller: &Caller,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled || self.super_users.contains(&caller.principal) {
            return true;
        }
        let mut any_applies = false;
        let mut allowed = false;
        for binding in acls.iter().filter(|binding| applies_to(binding, resource_type, name)) {
            any_applies = true;
            if !caller.matches(binding) {
                continue;
            }
            match binding.permission {
                AclPermission::Deny if binding.operation == operation || binding.operation == AclOperation::All => {
                    return false;
                }
                AclPermission::Deny => {}
                AclPermission::Allow => allowed |= implies(binding.operation, operation),
            }
        }
        allowed || (!any_applies && self.allow_everyone_if_no_acl_found)
    }

    /// Whether `caller` may WRITE some topic: an ALLOW of WRITE (or ALL) on any topic resource
    /// matches it and no DENY of WRITE on every topic (literal `*`) does. Kafka lets an
    /// idempotent producer in with this or IDEMPOTENT_WRITE on the cluster (KIP-679).
    pub fn may_write_some_topic(&self, acls: &BTreeSet<AclBinding>, caller: &Caller) -> bool {
        if !self.enabled || self.super_users.contains(&caller.principal) {
            return true;
        }
        let topic_bindings =
            acls.iter().filter(|binding| binding.resource_type == ResourceType::Topic && caller.matches(binding));
        let mut allowed = false;
        for binding in topic_bindings {
            let write = matches!(binding.operation, AclOperation::Write | AclOperation::All);
            match binding.permission {
                AclPermission::Deny
                    if write && binding.pattern_type == PatternType::Literal && binding.resource_name == WILDCARD =>
                {
                    return false;
                }
                AclPermission::Deny => {}
                AclPermission::Allow => allowed |= write,
            }
        }
        allowed
    }

    /// The operations `caller` may perform on the resource, as KIP-430's bit field (bit `n`
    /// for operation code `n`).
    pub fn authorized_operations(
        &self,
        acls: &BTreeSet<AclBinding>,
        caller: &Caller,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        supported_operations(resource_type)
            .iter()
            .filter(|operation| self.authorize(acls, caller, **operation, resource_type, name))
            .fold(0i32, |field, operation| field | (1 << operation.code()))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use AclOperation::*;

    fn binding(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.into(),
            pattern_type,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission,
        }
    }

    fn on() -> AuthorizerConfig {
        AuthorizerConfig { enabled: true, super_users: vec![Principal::user("admin")], ..Default::default() }
    }

    fn alice() -> Caller {
        Caller::new(&Principal::user("alice"), IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    #[test]
    fn off_allows_everything_and_on_denies_by_default() {
        let acls = BTreeSet::new();
        assert!(AuthorizerConfig::default().authorize(&acls, &alice(), Write, ResourceType::Topic, "t"));
        assert!(!on().authorize(&acls, &alice(), Write, ResourceType::Topic, "t"));
        let open = AuthorizerConfig { allow_everyone_if_no_acl_found: true, ..on() };
        assert!(open.authorize(&acls, &alice(), Write, ResourceType::Topic, "t"));
        let admin = Caller::new(&Principal::user("admin"), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(on().authorize(&acls, &admin, Alter, ResourceType::Cluster, "kafka-cluster"));
    }

    #[test]
    fn literal_wildcard_and_prefixed_bindings_apply_as_in_kafka() {
        use PatternType::*;
        let acls: BTreeSet<AclBinding> = [
            binding(ResourceType::Topic, "orders", Literal, "User:alice", Read, AclPermission::Allow),
            binding(ResourceType::Topic, "pay", Prefixed, "User:*", Write, AclPermission::Allow),
            binding(ResourceType::Topic, "*", Literal, "User:alice", Describe, AclPermission::Allow),
            binding(ResourceType::Topic, "payroll", Literal, "User:alice", Write, AclPermission::Deny),
        ]
        .into();
        let config = on();
        let allows = |op, name| config.authorize(&acls, &alice(), op, ResourceType::Topic, name);
        assert!(allows(Read, "orders"));
        assert!(!allows(Write, "orders"));
        assert!(allows(Write, "payments"), "prefixed, wildcard principal");
        assert!(!allows(Write, "payroll"), "a deny wins");
        assert!(allows(Describe, "payroll"), "a deny of WRITE does not deny DESCRIBE");
        assert!(allows(Describe, "anything"), "literal wildcard");
        assert!(!allows(Read, "anything"));
        // READ implies DESCRIBE on its own resource; the bit field has exactly those.
        let ops = config.authorized_operations(&acls, &alice(), ResourceType::Topic, "orders");
        assert_eq!(ops, (1 << Read.code()) | (1 << Describe.code()));
        // Some other resource type is untouched.
        assert!(!config.authorize(&acls, &alice(), Read, ResourceType::Group, "orders"));
    }

    #[test]
    fn hosts_and_all_match() {
        let mut only_there =
            binding(ResourceType::Group, "g", PatternType::Literal, "User:alice", All, AclPermission::Allow);
        only_there.host = "10.0.0.9".into();
        let acls: BTreeSet<AclBinding> = [only_there.clone()].into();
        assert!(!on().authorize(&acls, &alice(), Read, ResourceType::Group, "g"));
        let there = Caller::new(&Principal::user("alice"), "10.0.0.9".parse().unwrap());
        assert!(on().authorize(&acls, &there, Read, ResourceType::Group, "g"));
        // A binding for someone else still counts as "an ACL applies": no fallback to allow.
        let open = AuthorizerConfig { allow_everyone_if_no_acl_found: true, ..on() };
        assert!(!open.authorize(&acls, &alice(), Read, ResourceType::Group, "g"));
    }

    #[test]
    fn idempotent_writers_need_a_write_somewhere() {
        let config = on();
        let none = BTreeSet::new();
        assert!(!config.may_write_some_topic(&none, &alice()));
        let some: BTreeSet<AclBinding> =
            [binding(ResourceType::Topic, "logs-", PatternType::Prefixed, "User:alice", Write, AclPermission::Allow)]
                .into();
        assert!(config.may_write_some_topic(&some, &alice()));
        let mut denied = some.clone();
        denied.insert(binding(ResourceType::Topic, "*", PatternType::Literal, "User:*", All, AclPermission::Deny));
        assert!(!config.may_write_some_topic(&denied, &alice()));
    }
}
