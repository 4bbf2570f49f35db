//! Client quotas (Kafka's `describeClientQuotas` / `alterClientQuotas`, KIP-546): per user and/or
//! client id, `producer_byte_rate`, `consumer_byte_rate`, `request_percentage`. A name of
//! `None` is Kafka's `<default>` entity.

use std::collections::BTreeMap;

use sluice_proto::kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use sluice_proto::kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use sluice_proto::kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};

use super::{text, Admin};
use crate::error::{ClientError, Result};

/// Kafka's entity type of a user.
pub const QUOTA_ENTITY_USER: &str = "user";
/// Kafka's entity type of a client id.
pub const QUOTA_ENTITY_CLIENT_ID: &str = "client-id";

/// One part of a quota entity: its type's name (`None`: not part of the entity), and within
/// it, a name or the default (`Some(None)`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct QuotaEntity {
    /// `None`: no user part; `Some(None)`: the default user; `Some(Some(name))`: that user.
    pub user: Option<Option<String>>,
    /// Likewise for the client id.
    pub client_id: Option<Option<String>>,
}

impl QuotaEntity {
    fn parts(&self) -> Vec<(&'static str, Option<String>)> {
        let mut parts = Vec::new();
        if let Some(user) = &self.user {
            parts.push((QUOTA_ENTITY_USER, user.clone()));
        }
        if let Some(client_id) = &self.client_id {
            parts.push((QUOTA_ENTITY_CLIENT_ID, client_id.clone()));
        }
        parts
    }
}

impl std::fmt::Display for QuotaEntity {
    /// Kafka's path form: `/users/alice/clients/<default>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |name: &Option<String>| name.clone().unwrap_or_else(|| "<default>".to_string());
        if let Some(user) = &self.user {
            write!(f, "/users/{}", name(user))?;
        }
        if let Some(client_id) = &self.client_id {
            write!(f, "/clients/{}", name(client_id))?;
        }
        Ok(())
    }
}

/// A change to one quota key.
#[derive(Debug, Clone, PartialEq)]
pub enum QuotaChange {
    /// Set the key to a value.
    Set(String, f64),
    /// Remove the key.
    Remove(String),
}

impl Admin {
    /// Every quota entity with its values (DescribeClientQuotas with no filter).
    pub async fn describe_client_quotas(&self) -> Result<BTreeMap<QuotaEntity, BTreeMap<String, f64>>> {
        self.describe_client_quotas_matching(&QuotaEntity::default(), false).await
    }

    /// The quota entities `filter` matches: each part named in it must be that name (or the
    /// default); parts it leaves out may be anything unless `strict`.
    pub async fn describe_client_quotas_matching(
        &self,
        filter: &QuotaEntity,
        strict: bool,
    ) -> Result<BTreeMap<QuotaEntity, BTreeMap<String, f64>>> {
        let components = filter
            .parts()
            .into_iter()
            .map(|(kind, name)| {
                // Match types: 0 exact, 1 default.
                let (match_type, name) = match name {
                    Some(name) => (0, Some(text(&name))),
                    None => (1, None),
                };
                ComponentData::default().with_entity_type(text(kind)).with_match_type(match_type).with_match(name)
            })
            .collect();
        let request = DescribeClientQuotasRequest::default().with_components(components).with_strict(strict);
        let response = self.cluster.call_controller(&request).await?;
        if response.error_code != 0 {
            return Err(ClientError::kafka(
                response.error_code,
                "describe client quotas".to_string(),
                response.error_message.as_ref().map(|m| m.to_string()),
            ));
        }
        let mut quotas = BTreeMap::new();
        for entry in response.entries.unwrap_or_default() {
            let mut entity = QuotaEntity::default();
            for part in &entry.entity {
                let name = part.entity_name.as_ref().map(|name| name.to_string());
                match part.entity_type.as_str() {
                    QUOTA_ENTITY_USER => entity.user = Some(name),
                    QUOTA_ENTITY_CLIENT_ID => entity.client_id = Some(name),
                    _ => {} // a type this client does not know (ip): left out
                }
            }
            let values = entry.values.iter().map(|value| (value.key.to_string(), value.value)).collect();
            quotas.insert(entity, values);
        }
        Ok(quotas)
    }

    /// Applies `changes` to `entity`'s quotas.
    pub async fn alter_client_quotas(&self, entity: &QuotaEntity, changes: &[QuotaChange]) -> Result<()> {
        self.alter_client_quotas_checked(entity, changes, false).await
    }

    /// Asks the broker whether [`Admin::alter_client_quotas`] would succeed, changing nothing.
    pub async fn validate_alter_client_quotas(&self, entity: &QuotaEntity, changes: &[QuotaChange]) -> Result<()> {
        self.alter_client_quotas_checked(entity, changes, true).await
    }

    async fn alter_client_quotas_checked(
        &self,
        entity: &QuotaEntity,
        changes: &[QuotaChange],
        validate_only: bool,
    ) -> Result<()> {
        let parts = entity
            .parts()
            .into_iter()
            .map(|(kind, name)| {
                EntityData::default().with_entity_type(text(kind)).with_entity_name(name.map(|name| text(&name)))
            })
            .collect();
        let ops = changes
            .iter()
            .map(|change| match change {
                QuotaChange::Set(key, value) => OpData::default().with_key(text(key)).with_value(*value),
                QuotaChange::Remove(key) => OpData::default().with_key(text(key)).with_remove(true),
            })
            .collect();
        let request = AlterClientQuotasRequest::default()
            .with_validate_only(validate_only)
            .with_entries(vec![EntryData::default().with_entity(parts).with_ops(ops)]);
        let response = self.cluster.call_controller(&request).await?;
        for entry in &response.entries {
            if entry.error_code != 0 {
                return Err(ClientError::kafka(
                    entry.error_code,
                    format!("alter client quotas of {entity}"),
                    entry.error_message.as_ref().map(|m| m.to_string()),
                ));
            }
        }
        Ok(())
    }
}
