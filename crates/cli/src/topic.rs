//! `sluice topic create|list|describe|delete|alter`.

use std::io::Write;

use sluice_client::admin::{ConfigChange, NewTopic};
use sluice_client::{Admin, Cluster};

use crate::args::TopicCommand;

/// Runs a topic command.
pub async fn run(cluster: Cluster, command: TopicCommand) -> anyhow::Result<()> {
    let admin = Admin::new(cluster);
    let mut out = std::io::stdout().lock();
    match command {
        TopicCommand::Create { name, partitions, replication_factor, configs } => {
            admin.create_topics(&[NewTopic { name: name.clone(), partitions, replication_factor, configs }]).await?;
            writeln!(out, "created topic {name} with {partitions} partition(s)")?;
        }
        TopicCommand::List => {
            for topic in admin.list_topics().await? {
                writeln!(out, "{}", topic.name)?;
            }
        }
        TopicCommand::Describe { name } => {
            let topic = admin.describe_topic(&name).await?;
            let configs = admin.describe_configs(&name).await?;
            writeln!(out, "topic {} partitions {}", topic.name, topic.partitions.len())?;
            for partition in &topic.partitions {
                writeln!(
                    out,
                    "  partition {:>4}  leader {:>3}  epoch {:>3}  replicas {:?}  isr {:?}",
                    partition.partition, partition.leader, partition.leader_epoch, partition.replicas, partition.isr
                )?;
            }
            let set: Vec<_> = configs.values().filter(|entry| !entry.is_default).collect();
            if !set.is_empty() {
                writeln!(out, "configs")?;
                for entry in set {
                    writeln!(out, "  {}={}", entry.name, entry.value.as_deref().unwrap_or("(sensitive)"))?;
                }
            }
        }
        TopicCommand::Delete { name } => {
            admin.delete_topics(std::slice::from_ref(&name)).await?;
            writeln!(out, "deleted topic {name}")?;
        }
        TopicCommand::Alter { name, partitions, set, delete } => {
            if partitions.is_none() && set.is_empty() && delete.is_empty() {
                anyhow::bail!("nothing to change: give --partitions, --set or --delete");
            }
            if let Some(count) = partitions {
                admin.create_partitions(&name, count).await?;
                writeln!(out, "topic {name} now has {count} partitions")?;
            }
            let changes: Vec<ConfigChange> = set
                .into_iter()
                .map(|(key, value)| ConfigChange::Set(key, value))
                .chain(delete.into_iter().map(ConfigChange::Delete))
                .collect();
            if !changes.is_empty() {
                admin.alter_configs(&name, &changes).await?;
                writeln!(out, "altered {} config(s) of {name}", changes.len())?;
            }
        }
    }
    Ok(())
}
