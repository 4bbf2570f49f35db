//! Security metadata replicated with the rest of the cluster state: SCRAM credentials, ACL
//! bindings and client quotas (since format version 6).
//!
//! Only data and its pure rules live here (validation, ACL filter matching); the broker's
//! authenticator, authorizer and quota manager read them from the applied view. Nothing here
//! holds a password: a SCRAM credential is the salted, derived form of RFC 5802 (salt,
//! iteration count, StoredKey, ServerKey), from which a password cannot be recovered; PLAIN
//! authentication checks a password against it too.
//!
//! The enums carry Kafka's wire codes ([`ResourceType::code`] and friends), so handlers convert
//! in one place and the stored form does not depend on the protocol crate.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use serde::Deserialize;
use serde::Serialize;

use crate::error::CommandError;
use crate::limits::ACL_BINDINGS_MAX;
use crate::limits::ACL_FIELD_BYTES_MAX;
use crate::limits::QUOTA_ENTITIES_MAX;
use crate::limits::SCRAM_ITERATIONS_MAX;
use crate::limits::SCRAM_ITERATIONS_MIN;
use crate::limits::SCRAM_USERS_MAX;
use crate::limits::SCRAM_USER_BYTES_MAX;

/// A SCRAM mechanism (Kafka's `ScramMechanism` codes: 1 = SHA-256, 2 = SHA-512).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramMechanism {
    /// Every mechanism, in code order.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// Kafka's code for the mechanism.
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism with Kafka code `code`.
    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.code() == code)
    }

    /// The SASL mechanism name (`SCRAM-SHA-256`).
    pub fn sasl_name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism with SASL name `name`.
    pub fn from_sasl_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.sasl_name() == name)
    }

    /// Bytes of the hash (and so of StoredKey and ServerKey).
    pub fn hash_bytes(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }
}

/// One user's credential for one mechanism, as RFC 5802 stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    /// The salt (random, chosen by whoever set the password).
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
}

/// A kind of resource ACLs protect (Kafka's `ResourceType` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    /// A topic (code 2).
    Topic,
    /// A consumer group (code 3).
    Group,
    /// The cluster (code 4); its one resource is named `kafka-cluster`.
    Cluster,
    /// A transactional id (code 5).
    TransactionalId,
}

/// The name of the cluster resource, as Kafka names it.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

/// The wildcard resource name, principal and host (`*`).
pub const WILDCARD: &str = "*";

/// How a binding's resource name matches (Kafka's `PatternType` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    /// The name as given, or `*` for every resource (code 3).
    Literal,
    /// Every resource whose name starts with the given one (code 4).
    Prefixed,
}

/// An operation (Kafka's `AclOperation` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclOperation {
    /// Every operation (code 2).
    All,
    /// Code 3.
    Read,
    /// Code 4.
    Write,
    /// Code 5.
    Create,
    /// Code 6.
    Delete,
    /// Code 7.
    Alter,
    /// Code 8.
    Describe,
    /// Code 9.
    ClusterAction,
    /// Code 10.
    DescribeConfigs,
    /// Code 11.
    AlterConfigs,
    /// Code 12.
    IdempotentWrite,
}

/// Allow or deny (Kafka's `AclPermissionType` codes 3 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclPermission {
    /// A matching deny wins over every allow.
    Deny,
    /// Allowed unless a deny matches.
    Allow,
}

macro_rules! kafka_codes {
    ($type:ident { $($variant:ident = $code:expr),* $(,)? }) => {
        impl $type {
            /// Kafka's code for it.
            pub fn code(self) -> i8 {
                match self { $($type::$variant => $code),* }
            }

            /// The value with Kafka code `code` (`None` for UNKNOWN, ANY, MATCH and unknown codes).
            pub fn from_code(code: i8) -> Option<$type> {
                match code { $($code => Some($type::$variant),)* _ => None }
            }
        }
    };
}

kafka_codes!(ResourceType { Topic = 2, Group = 3, Cluster = 4, TransactionalId = 5 });
kafka_codes!(PatternType { Literal = 3, Prefixed = 4 });
kafka_codes!(AclOperation {
    All = 2,
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
});
kafka_codes!(AclPermission { Deny = 2, Allow = 3 });

/// One ACL: `principal` from `host` is allowed or denied `operation` on the resources
/// `resource_type` / `resource_name` / `pattern_type` names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    /// Resource type.
    pub resource_type: ResourceType,
    /// Resource name, or [`WILDCARD`] (literal only).
    pub resource_name: String,
    /// How the name matches.
    pub pattern_type: PatternType,
    /// `User:alice`, or `User:*`.
    pub principal: String,
    /// Client host address, or `*`.
    pub host: String,
    /// Operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

/// Which bindings a DescribeAcls or DeleteAcls filter selects: `None` fields match anything
/// (Kafka's ANY).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    /// Resource type, or any.
    pub resource_type: Option<ResourceType>,
    /// Resource name, or any.
    pub resource_name: Option<String>,
    /// Pattern type selection.
    pub pattern: PatternFilter,
    /// Principal, or any.
    pub principal: Option<String>,
    /// Host, or any.
    pub host: Option<String>,
    /// Operation, or any.
    pub operation: Option<AclOperation>,
    /// Permission, or any.
    pub permission: Option<AclPermission>,
}

/// How a filter selects on the pattern type (Kafka's ANY, MATCH, LITERAL, PREFIXED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PatternFilter {
    /// Bindings of either pattern type whose name equals the filter's (code 1).
    Any,
    /// Bindings that would apply to a resource of the filter's name: literal equal, the
    /// literal wildcard, prefixed with a prefix of the name (code 2).
    Match,
    /// Bindings of exactly this pattern type whose name equals the filter's.
    Exact(PatternType),
}

impl PatternFilter {
    /// The filter for Kafka's pattern type code (1 ANY, 2 MATCH, 3 LITERAL, 4 PREFIXED).
    pub fn from_code(code: i8) -> Option<PatternFilter> {
        match code {
            1 => Some(PatternFilter::Any),
            2 => Some(PatternFilter::Match),
            _ => PatternType::from_code(code).map(PatternFilter::Exact),
        }
    }
}

impl AclFilter {
    /// Whether the filter selects `binding` (Kafka's `AclBindingFilter.matches`).
    pub fn matches(&self, binding: &AclBinding) -> bool {
        let field = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|want| want == have);
        let name_matches = match (self.pattern, &self.resource_name) {
            (PatternFilter::Match, Some(name)) => match binding.pattern_type {
                PatternType::Literal => binding.resource_name == *name || binding.resource_name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&binding.resource_name),
            },
            (PatternFilter::Exact(pattern), name) => {
                binding.pattern_type == pattern && field(name, &binding.resource_name)
            }
            (_, name) => field(name, &binding.resource_name),
        };
        self.resource_type.is_none_or(|t| t == binding.resource_type)
            && name_matches
            && field(&self.principal, &binding.principal)
            && field(&self.host, &binding.host)
            && self.operation.is_none_or(|o| o == binding.operation)
            && self.permission.is_none_or(|p| p == binding.permission)
    }
}

/// A client-quota entity name: the default for its kind, or a named one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaName {
    /// `<default>`: every user (or client id) without a quota of its own.
    Default,
    /// One user (or client id).
    Named(String),
}

/// Whom a client quota applies to (Kafka's entity of `user` and/or `client-id`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    /// The user part, if any.
    pub user: Option<QuotaName>,
    /// The client-id part, if any.
    pub client_id: Option<QuotaName>,
}

/// The quota keys Sluice enforces (Kafka's names): bytes per second produced and fetched, and
/// the percentage of one request-handling thread's time.
pub const QUOTA_KEYS: [&str; 3] = ["producer_byte_rate", "consumer_byte_rate", "request_percentage"];

/// Security state of the cluster (part of the [`crate::MetadataView`] since format version 6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityState {
    /// SCRAM credentials by user name and mechanism.
    pub scram: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// Every ACL binding.
    pub acls: BTreeSet<AclBinding>,
    /// Client quotas by entity: key ([`QUOTA_KEYS`]) to value, an `f64` kept as its bits so
    /// the view stays `Eq`.
    pub quotas: BTreeMap<QuotaEntity, BTreeMap<String, u64>>,
}

impl SecurityState {
    /// The quota `key` of `entity`, if set.
    pub fn quota(&self, entity: &QuotaEntity, key: &str) -> Option<f64> {
        self.quotas.get(entity).and_then(|values| values.get(key)).map(|bits| f64::from_bits(*bits))
    }

    pub(crate) fn upsert_scram(
        &mut self,
        user: &str,
        mechanism: ScramMechanism,
        credential: &ScramCredential,
    ) -> Result<(), CommandError> {
        check_user(user)?;
        if !(SCRAM_ITERATIONS_MIN..=SCRAM_ITERATIONS_MAX).contains(&credential.iterations) {
            return Err(CommandError::InvalidRequest {
                reason: format!(
                    "SCRAM iterations must be {SCRAM_ITERATIONS_MIN}..={SCRAM_ITERATIONS_MAX}, not {}",
                    credential.iterations
                ),
            });
        }
        let hash = mechanism.hash_bytes();
        if credential.stored_key.len() != hash
            || credential.server_key.len() != hash
            || credential.salt.is_empty()
            || credential.salt.len() > 1024
        {
            return Err(CommandError::InvalidRequest {
                reason: format!(
                    "a {} credential needs {hash}-byte keys and a 1..=1024-byte salt",
                    mechanism.sasl_name()
                ),
            });
        }
        if !self.scram.contains_key(user) && self.scram.len() >= SCRAM_USERS_MAX {
            return Err(CommandError::InvalidRequest { reason: format!("at most {SCRAM_USERS_MAX} SCRAM users") });
        }
        self.scram.entry(user.to_string()).or_default().insert(mechanism, credential.clone());
        Ok(())
    }

    pub(crate) fn delete_scram(&mut self, user: &str, mechanism: ScramMechanism) -> Result<(), CommandError> {
        let removed = self.scram.get_mut(user).and_then(|mechanisms| mechanisms.remove(&mechanism));
        if removed.is_none() {
            return Err(CommandError::ResourceNotFound {
                what: format!("{} credential of user {user:?}", mechanism.sasl_name()),
            });
        }
        if self.scram.get(user).is_some_and(BTreeMap::is_empty) {
            self.scram.remove(user);
        }
        Ok(())
    }

    /// Adds `bindings` (those already present count as created, as in Kafka).
    pub(crate) fn create_acls(&mut self, bindings: &[AclBinding]) -> Result<(), CommandError> {
        for binding in bindings {
            check_binding(binding)?;
        }
        let new = bindings.iter().filter(|b| !self.acls.contains(b)).count();
        if self.acls.len() + new > ACL_BINDINGS_MAX {
            return Err(CommandError::InvalidRequest { reason: format!("at most {ACL_BINDINGS_MAX} ACL bindings") });
        }
        self.acls.extend(bindings.iter().cloned());
        Ok(())
    }

    /// Removes what each filter matches; returns them per filter.
    pub(crate) fn delete_acls(&mut self, filters: &[AclFilter]) -> Vec<Vec<AclBinding>> {
        let matched: Vec<Vec<AclBinding>> =
            filters.iter().map(|filter| self.acls.iter().filter(|b| filter.matches(b)).cloned().collect()).collect();
        for binding in matched.iter().flatten() {
            self.acls.remove(binding);
        }
        matched
    }

    pub(crate) fn alter_quota(
        &mut self,
        entity: &QuotaEntity,
        set: &BTreeMap<String, u64>,
        remove: &[String],
    ) -> Result<(), CommandError> {
        if entity.user.is_none() && entity.client_id.is_none() {
            return Err(CommandError::InvalidRequest { reason: "a quota entity needs a user or a client id".into() });
        }
        for name in [&entity.user, &entity.client_id].into_iter().flatten() {
            if let QuotaName::Named(name) = name {
                if name.is_empty() || name.len() > ACL_FIELD_BYTES_MAX {
                    return Err(CommandError::InvalidRequest {
                        reason: format!("a quota entity name must be 1..={ACL_FIELD_BYTES_MAX} bytes"),
                    });
                }
            }
        }
        for key in set.keys().chain(remove) {
            if !QUOTA_KEYS.contains(&key.as_str()) {
                return Err(CommandError::InvalidConfig {
                    key: key.clone(),
                    value: String::new(),
                    reason: "not a quota key Sluice knows".into(),
                });
            }
        }
        for (key, bits) in set {
            let value = f64::from_bits(*bits);
            if !value.is_finite() || value <= 0.0 {
                return Err(CommandError::InvalidConfig {
                    key: key.clone(),
                    value: value.to_string(),
                    reason: "a quota must be a positive number".into(),
                });
            }
        }
        if !self.quotas.contains_key(entity) && !set.is_empty() && self.quotas.len() >= QUOTA_ENTITIES_MAX {
            return Err(CommandError::InvalidRequest {
                reason: format!("at most {QUOTA_ENTITIES_MAX} quota entities"),
            });
        }
        let values = self.quotas.entry(entity.clone()).or_default();
        for key in remove {
            values.remove(key);
        }
        values.extend(set.iter().map(|(k, v)| (k.clone(), *v)));
        if values.is_empty() {
            self.quotas.remove(entity);
        }
        Ok(())
    }
}

fn check_user(user: &str) -> Result<(), CommandError> {
    if user.is_empty() || user.len() > SCRAM_USER_BYTES_MAX {
        return Err(CommandError::InvalidRequest {
            reason: format!("a user name must be 1..={SCRAM_USER_BYTES_MAX} bytes"),
        });
    }
    Ok(())
}

fn check_binding(binding: &AclBinding) -> Result<(), CommandError> {
    for (what, value) in
        [("resource name", &binding.resource_name), ("principal", &binding.principal), ("host", &binding.host)]
    {
        if value.is_empty() || value.len() > ACL_FIELD_BYTES_MAX {
            return Err(CommandError::InvalidRequest {
                reason: format!("an ACL {what} must be 1..={ACL_FIELD_BYTES_MAX} bytes"),
            });
        }
    }
    if !binding.principal.contains(':') {
        return Err(CommandError::InvalidRequest {
            reason: format!("ACL principal {:?} is not of the form Type:name", binding.principal),
        });
    }
    if binding.pattern_type == PatternType::Prefixed && binding.resource_name == WILDCARD {
        return Err(CommandError::InvalidRequest { reason: "a prefixed ACL cannot name the wildcard".into() });
    }
    if binding.resource_type == ResourceType::Cluster && binding.resource_name != CLUSTER_RESOURCE_NAME {
        return Err(CommandError::InvalidRequest {
            reason: format!("the cluster resource is named {CLUSTER_RESOURCE_NAME:?}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, pattern: PatternType, operation: AclOperation) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: "User:alice".into(),
            host: "*".into(),
            operation,
            permission: AclPermission::Allow,
        }
    }

    fn filter(name: Option<&str>, pattern: PatternFilter) -> AclFilter {
        AclFilter {
            resource_type: Some(ResourceType::Topic),
            resource_name: name.map(str::to_string),
            pattern,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        }
    }

    // Goal: Kafka's filter semantics: ANY matches either pattern type by equal name, MATCH
    // selects what would apply to the named resource, an exact type selects only that type.
    #[test]
    fn acl_filters_select_as_kafka_does() {
        let literal = binding("orders", PatternType::Literal, AclOperation::Read);
        let wildcard = binding("*", PatternType::Literal, AclOperation::Read);
        let prefixed = binding("ord", PatternType::Prefixed, AclOperation::Write);
        let other = binding("payments", PatternType::Literal, AclOperation::Read);
        let all = [&literal, &wildcard, &prefixed, &other];
        let selected = |f: AclFilter| all.iter().filter(|b| f.matches(b)).map(|b| (*b).clone()).collect::<Vec<_>>();
        assert_eq!(selected(filter(Some("orders"), PatternFilter::Any)), vec![literal.clone()]);
        assert_eq!(
            selected(filter(Some("orders"), PatternFilter::Match)),
            vec![literal.clone(), wildcard.clone(), prefixed.clone()]
        );
        assert_eq!(selected(filter(Some("ord"), PatternFilter::Exact(PatternType::Prefixed))), vec![prefixed.clone()]);
        assert_eq!(selected(filter(None, PatternFilter::Any)).len(), 4);
        let mut by_operation = filter(None, PatternFilter::Any);
        by_operation.operation = Some(AclOperation::Write);
        assert_eq!(selected(by_operation), vec![prefixed]);
    }

    // Goal: every wire code round-trips and the unknown/ANY codes are not values.
    #[test]
    fn kafka_codes_round_trip() {
        for code in -1..20 {
            if let Some(op) = AclOperation::from_code(code) {
                assert_eq!(op.code(), code);
            }
        }
        assert_eq!(AclOperation::from_code(1), None, "ANY is a filter, not an operation");
        assert_eq!(ResourceType::from_code(2), Some(ResourceType::Topic));
        assert_eq!(PatternFilter::from_code(2), Some(PatternFilter::Match));
        assert_eq!(AclPermission::from_code(3), Some(AclPermission::Allow));
        assert_eq!(ScramMechanism::from_sasl_name("SCRAM-SHA-512"), Some(ScramMechanism::Sha512));
    }

    // Goal: bad credentials, bindings and quotas are refused and change nothing.
    #[test]
    fn invalid_security_changes_are_refused_whole() {
        let mut state = SecurityState::default();
        let credential =
            ScramCredential { salt: vec![1; 16], stored_key: vec![2; 32], server_key: vec![3; 32], iterations: 4096 };
        state.upsert_scram("alice", ScramMechanism::Sha256, &credential).unwrap();
        assert!(state.upsert_scram("alice", ScramMechanism::Sha512, &credential).is_err(), "short keys");
        let few = ScramCredential { iterations: 10, ..credential.clone() };
        assert!(state.upsert_scram("bob", ScramMechanism::Sha256, &few).is_err());
        assert!(state.delete_scram("bob", ScramMechanism::Sha256).is_err());
        state.delete_scram("alice", ScramMechanism::Sha256).unwrap();
        assert!(state.scram.is_empty());

        let good = binding("orders", PatternType::Literal, AclOperation::Read);
        let bad = AclBinding { principal: "alice".into(), ..good.clone() };
        assert!(state.create_acls(&[good.clone(), bad]).is_err());
        assert!(state.acls.is_empty(), "nothing of a refused batch is kept");
        state.create_acls(&[good.clone(), good.clone()]).unwrap();
        assert_eq!(state.acls.len(), 1);
        assert_eq!(state.delete_acls(&[filter(Some("orders"), PatternFilter::Any)]), vec![vec![good]]);

        let entity = QuotaEntity { user: Some(QuotaName::Named("alice".into())), client_id: None };
        let set = |k: &str, v: f64| BTreeMap::from([(k.to_string(), v.to_bits())]);
        assert!(state.alter_quota(&entity, &set("producer_byte_rate", -1.0), &[]).is_err());
        assert!(state.alter_quota(&entity, &set("bogus", 1.0), &[]).is_err());
        state.alter_quota(&entity, &set("producer_byte_rate", 1e6), &[]).unwrap();
        assert_eq!(state.quota(&entity, "producer_byte_rate"), Some(1e6));
        state.alter_quota(&entity, &BTreeMap::new(), &["producer_byte_rate".into()]).unwrap();
        assert!(state.quotas.is_empty());
    }
}
