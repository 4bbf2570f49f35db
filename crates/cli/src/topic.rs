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
            let log_ends = admin.replica_log_ends(&topic).await?;
            let under_replicated = topic.partitions.iter().filter(|p| p.isr.len() < p.replicas.len()).count();
            writeln!(
                out,
                "topic {} partitions {}  under-replicated {under_replicated}",
                topic.name,
                topic.partitions.len()
            )?;
            for partition in &topic.partitions {
                writeln!(
                    out,
                    "  partition {:>4}  leader {:>3}  epoch {:>3}  replicas {:?}  isr {:?}  {}",
                    partition.partition,
                    partition.leader,
                    partition.leader_epoch,
                    partition.replicas,
                    partition.isr,
                    replica_lags(partition, log_ends.get(&partition.partition))
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

/// `lag 1:0 2:0 3:40`: each replica's records behind the leader's log end (from each replica's
/// own answer, ListOffsets with the debugging replica id); `?` where a replica did not answer.
fn replica_lags(
    partition: &sluice_client::cluster::PartitionInfo,
    log_ends: Option<&std::collections::BTreeMap<i32, Result<i64, i16>>>,
) -> String {
    let log_end = |broker: i32| log_ends.and_then(|ends| ends.get(&broker)).and_then(|end| end.ok());
    let leader_end = log_end(partition.leader);
    let lags: Vec<String> = partition
        .replicas
        .iter()
        .map(|replica| match (leader_end, log_end(*replica)) {
            (Some(leader), Some(own)) => format!("{replica}:{}", (leader - own).max(0)),
            _ => format!("{replica}:?"),
        })
        .collect();
    format!("lag {}", lags.join(" "))
}
