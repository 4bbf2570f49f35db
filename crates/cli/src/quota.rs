//! `sluice quota set|remove|list`: client quotas (Kafka's `kafka-configs.sh --entity-type
//! users/clients --alter --add-config producer_byte_rate=...`), over the admin client's
//! DescribeClientQuotas / AlterClientQuotas.

use std::io::Write;

use serde::Serialize;
use sluice_client::admin::{QuotaChange, QuotaEntity};
use sluice_client::{Admin, Cluster};

use crate::args::{QuotaCommand, QuotaEntityArgs};
use crate::output::{write_json_line, write_table};
use crate::UsageError;

/// Runs one `sluice quota` command.
pub async fn run(cluster: Cluster, command: QuotaCommand) -> anyhow::Result<()> {
    let admin = Admin::new(cluster);
    let mut out = std::io::stdout().lock();
    match command {
        QuotaCommand::Set { entity, producer_byte_rate, consumer_byte_rate, request_percentage } => {
            let entity = entity_of(&entity)?;
            let mut changes = Vec::new();
            let rates = [("producer_byte_rate", producer_byte_rate), ("consumer_byte_rate", consumer_byte_rate)];
            for (key, value) in rates {
                if let Some(value) = value {
                    changes.push(QuotaChange::Set(key.to_string(), value as f64));
                }
            }
            if let Some(percent) = request_percentage {
                changes.push(QuotaChange::Set("request_percentage".to_string(), percent));
            }
            if changes.is_empty() {
                return Err(UsageError("give at least one quota to set".into()).into());
            }
            admin.alter_client_quotas(&entity, &changes).await?;
            writeln!(out, "set quotas of {entity}")?;
        }
        QuotaCommand::Remove { entity, producer_byte_rate, consumer_byte_rate, request_percentage } => {
            let entity = entity_of(&entity)?;
            let keys = [
                ("producer_byte_rate", producer_byte_rate),
                ("consumer_byte_rate", consumer_byte_rate),
                ("request_percentage", request_percentage),
            ];
            let changes: Vec<_> = keys
                .iter()
                .filter(|(_, chosen)| *chosen)
                .map(|(key, _)| QuotaChange::Remove(key.to_string()))
                .collect();
            if changes.is_empty() {
                return Err(UsageError("name at least one quota to remove".into()).into());
            }
            admin.alter_client_quotas(&entity, &changes).await?;
            writeln!(out, "removed quotas of {entity}")?;
        }
        QuotaCommand::List { json } => list(&admin, &mut out, json).await?,
    }
    Ok(())
}

/// The entity the flags name; at least a user or a client id.
fn entity_of(args: &QuotaEntityArgs) -> anyhow::Result<QuotaEntity> {
    let part = |name: &Option<String>, default: bool| match (name, default) {
        (Some(name), _) => Some(Some(name.clone())),
        (None, true) => Some(None),
        (None, false) => None,
    };
    let entity = QuotaEntity {
        user: part(&args.user, args.default_user),
        client_id: part(&args.client_id, args.default_client_id),
    };
    if entity.user.is_none() && entity.client_id.is_none() {
        return Err(UsageError(
            "name the entity: --user, --default-user, --client-id and/or --default-client-id".into(),
        )
        .into());
    }
    Ok(entity)
}

/// A line of `quota list --json`: `user` / `client_id` absent when not part of the entity,
/// `null` for the default.
#[derive(Serialize)]
struct QuotaJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a Option<String>>,
    values: &'a std::collections::BTreeMap<String, f64>,
}

async fn list(admin: &Admin, out: &mut impl Write, json: bool) -> anyhow::Result<()> {
    let quotas = admin.describe_client_quotas().await?;
    if json {
        for (entity, values) in &quotas {
            let line = QuotaJson { user: entity.user.as_ref(), client_id: entity.client_id.as_ref(), values };
            write_json_line(out, &line)?;
        }
        return Ok(());
    }
    let name = |part: &Option<Option<String>>| match part {
        None => "-".to_string(),
        Some(None) => "<default>".to_string(),
        Some(Some(name)) => name.clone(),
    };
    let value = |values: &std::collections::BTreeMap<String, f64>, key: &str| {
        values.get(key).map_or_else(|| "-".to_string(), |value| value.to_string())
    };
    let rows: Vec<Vec<String>> = quotas
        .iter()
        .map(|(entity, values)| {
            vec![
                name(&entity.user),
                name(&entity.client_id),
                value(values, "producer_byte_rate"),
                value(values, "consumer_byte_rate"),
                value(values, "request_percentage"),
            ]
        })
        .collect();
    write_table(out, &["USER", "CLIENT-ID", "PRODUCER-BYTE-RATE", "CONSUMER-BYTE-RATE", "REQUEST-PERCENTAGE"], &rows)?;
    Ok(())
}
