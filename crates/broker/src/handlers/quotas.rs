//! DescribeClientQuotas and AlterClientQuotas (KIP-546): client quotas as Kafka's admin client
//! and `kafka-configs.sh --entity-type users/clients` see them.
//!
//! An entity is a list of (type, name) components, types `user` and `client-id`, a null name
//! meaning `<default>`. Describe filters with one component per type: EXACT (that name),
//! DEFAULT (the default entity) or ANY (Kafka's `SPECIFIED`: any entity that has that type,
//! default included); with `strict`, an entity may have no other type. Alter proposes one
//! `AlterClientQuota` command per entry; each entry gets its own error code (INVALID_REQUEST
//! for an unknown type or key, a repeated type or key, a value that is not positive, or a
//! fractional byte rate). `validate_only` checks the same and changes nothing.
//!
//! `ip` entities (KIP-612 connection-rate quotas) are not supported: INVALID_REQUEST.

use std::collections::BTreeMap;

use sluice_meta::security::{QuotaEntity, QuotaName, QUOTA_KEYS};
use sluice_meta::Command;
use sluice_proto::kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use sluice_proto::kafka_protocol::messages::{
    alter_client_quotas_response, AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::handlers::{meta_error, str_bytes};
use crate::kafka_code;

/// Kafka's entity type of a user.
pub const ENTITY_USER: &str = "user";
/// Kafka's entity type of a client id.
pub const ENTITY_CLIENT_ID: &str = "client-id";

/// DescribeClientQuotas match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

/// What a filter asks of one entity type.
#[derive(Debug, Clone, PartialEq)]
enum Match {
    Exact(String),
    Default,
    Any,
}

/// A describe filter: per type (user, client id) what it asks, and whether other types are
/// excluded.
#[derive(Debug, Default)]
struct Filter {
    user: Option<Match>,
    client_id: Option<Match>,
    strict: bool,
}

impl Filter {
    fn matches(&self, entity: &QuotaEntity) -> bool {
        let part = |wanted: &Option<Match>, have: &Option<QuotaName>| match (wanted, have) {
            (None, None) => true,
            (None, Some(_)) => !self.strict,
            (Some(_), None) => false,
            (Some(Match::Any), Some(_)) => true,
            (Some(Match::Default), Some(name)) => *name == QuotaName::Default,
            (Some(Match::Exact(wanted)), Some(name)) => *name == QuotaName::Named(wanted.clone()),
        };
        part(&self.user, &entity.user) && part(&self.client_id, &entity.client_id)
    }
}

fn parse_filter(request: &DescribeClientQuotasRequest) -> Result<Filter, String> {
    let mut filter = Filter { strict: request.strict, ..Filter::default() };
    for component in &request.components {
        let wanted = match (component.match_type, &component._match) {
            (MATCH_EXACT, Some(name)) => Match::Exact(name.to_string()),
            (MATCH_EXACT, None) => return Err("an exact match needs a name".into()),
            (MATCH_DEFAULT, _) => Match::Default,
            (MATCH_ANY, _) => Match::Any,
            (other, _) => return Err(format!("unknown match type {other}")),
        };
        let slot = match component.entity_type.as_str() {
            ENTITY_USER => &mut filter.user,
            ENTITY_CLIENT_ID => &mut filter.client_id,
            other => return Err(format!("unsupported entity type {other:?}")),
        };
        if slot.replace(wanted).is_some() {
            return Err(format!("entity type {} given twice", component.entity_type.as_str()));
        }
    }
    Ok(filter)
}

fn entity_data(entity: &QuotaEntity) -> Vec<EntityData> {
    let parts = [(ENTITY_USER, &entity.user), (ENTITY_CLIENT_ID, &entity.client_id)];
    parts
        .into_iter()
        .filter_map(|(kind, name)| {
            let name = name.as_ref()?;
            let name = match name {
                QuotaName::Default => None,
                QuotaName::Named(name) => Some(str_bytes(name.clone())),
            };
            Some(EntityData::default().with_entity_type(str_bytes(kind)).with_entity_name(name))
        })
        .collect()
}

/// Answers DescribeClientQuotas from the applied view.
pub fn describe(broker: &Broker, request: &DescribeClientQuotasRequest) -> DescribeClientQuotasResponse {
    let filter = match parse_filter(request) {
        Ok(filter) => filter,
        Err(reason) => {
            return DescribeClientQuotasResponse::default()
                .with_error_code(kafka_code::INVALID_REQUEST)
                .with_error_message(Some(str_bytes(reason)))
                .with_entries(None)
        }
    };
    let view = broker.view();
    let entries = view
        .security
        .quotas
        .iter()
        .filter(|(entity, _)| filter.matches(entity))
        .map(|(entity, values)| {
            let values = values
                .iter()
                .map(|(key, bits)| {
                    ValueData::default().with_key(str_bytes(key.clone())).with_value(f64::from_bits(*bits))
                })
                .collect();
            EntryData::default().with_entity(entity_data(entity)).with_values(values)
        })
        .collect();
    DescribeClientQuotasResponse::default().with_error_code(kafka_code::NONE).with_entries(Some(entries))
}

/// One alter entry, checked: the entity and the command's set and remove lists.
type Alteration = (QuotaEntity, BTreeMap<String, u64>, Vec<String>);

fn parse_entity(parts: &[(StrBytes, Option<StrBytes>)]) -> Result<QuotaEntity, String> {
    let mut entity = QuotaEntity { user: None, client_id: None };
    for (kind, name) in parts {
        let name = match name {
            None => QuotaName::Default,
            Some(name) => QuotaName::Named(name.to_string()),
        };
        let slot = match kind.as_str() {
            ENTITY_USER => &mut entity.user,
            ENTITY_CLIENT_ID => &mut entity.client_id,
            other => return Err(format!("unsupported entity type {other:?}")),
        };
        if slot.replace(name).is_some() {
            return Err(format!("entity type {} given twice", kind.as_str()));
        }
    }
    if entity.user.is_none() && entity.client_id.is_none() {
        return Err("an entity needs a user or a client id".into());
    }
    Ok(entity)
}

/// Checks one entry's operations as Kafka does; pure.
fn parse_ops(ops: &[(String, f64, bool)]) -> Result<(BTreeMap<String, u64>, Vec<String>), String> {
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    for (key, value, removing) in ops {
        if !QUOTA_KEYS.contains(&key.as_str()) {
            return Err(format!("unknown quota key {key:?}"));
        }
        if set.contains_key(key) || remove.contains(key) {
            return Err(format!("quota key {key} given twice"));
        }
        if *removing {
            remove.push(key.clone());
            continue;
        }
        if !value.is_finite() || *value <= 0.0 {
            return Err(format!("{key} must be a positive number, not {value}"));
        }
        if key.ends_with("_byte_rate") && value.fract() != 0.0 {
            return Err(format!("{key} must be a whole number of bytes per second, not {value}"));
        }
        set.insert(key.clone(), value.to_bits());
    }
    Ok((set, remove))
}

fn parse_entry(
    entry: &sluice_proto::kafka_protocol::messages::alter_client_quotas_request::EntryData,
) -> Result<Alteration, String> {
    let parts: Vec<_> = entry.entity.iter().map(|part| (part.entity_type.clone(), part.entity_name.clone())).collect();
    let entity = parse_entity(&parts)?;
    let ops: Vec<_> = entry.ops.iter().map(|op| (op.key.to_string(), op.value, op.remove)).collect();
    let (set, remove) = parse_ops(&ops)?;
    Ok((entity, set, remove))
}

/// Applies AlterClientQuotas, one command per entry, each entry answered on its own.
pub async fn alter(broker: &Broker, request: AlterClientQuotasRequest) -> AlterClientQuotasResponse {
    let mut entries = Vec::with_capacity(request.entries.len());
    for entry in &request.entries {
        let (code, message) = match parse_entry(entry) {
            Err(reason) => (kafka_code::INVALID_REQUEST, Some(str_bytes(reason))),
            Ok(_) if request.validate_only => (kafka_code::NONE, None),
            Ok((entity, set, remove)) => {
                match broker.propose_and_apply(Command::AlterClientQuota { entity, set, remove }).await {
                    Ok(_) => (kafka_code::NONE, None),
                    Err(error) => meta_error(&error),
                }
            }
        };
        let entity = entry
            .entity
            .iter()
            .map(|part| {
                alter_client_quotas_response::EntityData::default()
                    .with_entity_type(part.entity_type.clone())
                    .with_entity_name(part.entity_name.clone())
            })
            .collect();
        entries.push(
            alter_client_quotas_response::EntryData::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_entity(entity),
        );
    }
    AlterClientQuotasResponse::default().with_entries(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Option<QuotaName> {
        Some(QuotaName::Named(name.into()))
    }

    // Goal: Kafka's describe filter semantics: exact, default and any per type; strict
    // excludes entities with other types; no component matches everything unless strict.
    #[test]
    fn describe_filters_match_as_kafkas() {
        let alice_app = QuotaEntity { user: named("alice"), client_id: named("app") };
        let alice = QuotaEntity { user: named("alice"), client_id: None };
        let default_user = QuotaEntity { user: Some(QuotaName::Default), client_id: None };
        let app = QuotaEntity { user: None, client_id: named("app") };
        let all = [&alice_app, &alice, &default_user, &app];
        let matching = |filter: Filter| all.iter().filter(|e| filter.matches(e)).count();
        assert_eq!(matching(Filter::default()), 4);
        assert_eq!(matching(Filter { strict: true, ..Filter::default() }), 0);
        assert_eq!(matching(Filter { user: Some(Match::Exact("alice".into())), ..Filter::default() }), 2);
        assert_eq!(matching(Filter { user: Some(Match::Exact("alice".into())), strict: true, ..Filter::default() }), 1);
        assert_eq!(matching(Filter { user: Some(Match::Default), ..Filter::default() }), 1);
        assert_eq!(matching(Filter { user: Some(Match::Any), ..Filter::default() }), 3);
        assert_eq!(matching(Filter { client_id: Some(Match::Any), strict: true, ..Filter::default() }), 1);
    }

    // Goal: alter entries are refused as Kafka refuses them: unknown or repeated types and
    // keys, an empty entity, non-positive values, fractional byte rates; removal needs no value.
    #[test]
    fn alter_entries_are_checked() {
        let user = (str_bytes(ENTITY_USER), Some(str_bytes("alice")));
        let default_client = (str_bytes(ENTITY_CLIENT_ID), None);
        assert!(parse_entity(&[user.clone(), default_client.clone()]).is_ok());
        assert_eq!(
            parse_entity(std::slice::from_ref(&default_client)).unwrap(),
            QuotaEntity { user: None, client_id: Some(QuotaName::Default) }
        );
        assert!(parse_entity(&[]).is_err());
        assert!(parse_entity(&[user.clone(), user.clone()]).is_err());
        assert!(parse_entity(&[(str_bytes("ip"), None)]).is_err());
        let op = |key: &str, value: f64, remove: bool| (key.to_string(), value, remove);
        let (set, remove) =
            parse_ops(&[op("producer_byte_rate", 1_048_576.0, false), op("consumer_byte_rate", 0.0, true)]).unwrap();
        assert_eq!(set.get("producer_byte_rate").map(|bits| f64::from_bits(*bits)), Some(1_048_576.0));
        assert_eq!(remove, vec!["consumer_byte_rate".to_string()]);
        assert!(parse_ops(&[op("request_percentage", 12.5, false)]).is_ok());
        for bad in [
            vec![op("bytes_per_second", 1.0, false)],
            vec![op("producer_byte_rate", 0.0, false)],
            vec![op("producer_byte_rate", -5.0, false)],
            vec![op("producer_byte_rate", 10.5, false)],
            vec![op("producer_byte_rate", 1.0, false), op("producer_byte_rate", 0.0, true)],
        ] {
            assert!(parse_ops(&bad).is_err(), "{bad:?}");
        }
    }
}
