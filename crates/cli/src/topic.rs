//! `sluice topic create|list|describe|delete|alter|reassign` (`reassign` lives in
//! [`crate::reassign`]).
//!
//! `create` without `-p`/`-r` sends -1, so the broker's `num.partitions` and
//! `default.replication.factor` decide. `alter` first asks the broker to validate every change
//! (`validate_only`), then applies them: a bad config is refused before partitions are added,
//! never after. `delete` checks that every named topic exists before deleting any. `describe`
//! shows each partition's log start and end offsets and every config with its source.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use sluice_client::admin::{ConfigChange, ConfigEntry, NewTopic};
use sluice_client::cluster::PartitionInfo;
use sluice_client::{Admin, Cluster};

use crate::args::TopicCommand;
use crate::output::write_json_line;

/// `-1`: "the broker's default" in CreateTopics (v4+).
const BROKER_DEFAULT: i32 = -1;

/// Runs a topic command.
pub async fn run(cluster: Cluster, command: TopicCommand) -> anyhow::Result<()> {
    if let TopicCommand::Reassign(args) = command {
        return crate::reassign::run(cluster, args).await;
    }
    let admin = Admin::new(cluster.clone());
    let mut out = std::io::stdout().lock();
    match command {
        TopicCommand::Reassign(_) => unreachable!("handled above"),
        TopicCommand::Create { name, partitions, replication_factor, configs } => {
            let new_topic = NewTopic {
                name: name.clone(),
                partitions: partitions.unwrap_or(BROKER_DEFAULT),
                replication_factor: replication_factor.unwrap_or(BROKER_DEFAULT as i16),
                configs,
            };
            admin.create_topics(&[new_topic]).await?;
            match admin.describe_topic(&name).await {
                Ok(topic) => writeln!(
                    out,
                    "created topic {name} with {} partition(s), replication factor {}",
                    topic.partitions.len(),
                    topic.partitions.first().map_or(0, |p| p.replicas.len())
                )?,
                Err(_) => writeln!(out, "created topic {name}")?,
            }
        }
        TopicCommand::List { json } => {
            for topic in admin.list_topics().await? {
                match json {
                    true => write_json_line(
                        &mut out,
                        &TopicListJson {
                            topic: &topic.name,
                            partitions: topic.partitions.len(),
                            internal: topic.is_internal,
                        },
                    )?,
                    false => writeln!(out, "{}", topic.name)?,
                }
            }
        }
        TopicCommand::Describe { name, json } => describe(&cluster, &admin, &mut out, &name, json).await?,
        TopicCommand::Delete { names } => {
            // Every name is checked before any topic is deleted: a typo in the third name
            // must not leave the first two deleted and the rest in place.
            let existing: Vec<String> = admin.list_topics().await?.into_iter().map(|topic| topic.name).collect();
            let unknown: Vec<&String> = names.iter().filter(|name| !existing.contains(name)).collect();
            if !unknown.is_empty() {
                anyhow::bail!("unknown topic(s) {unknown:?}: nothing deleted");
            }
            admin.delete_topics(&names).await?;
            for name in &names {
                writeln!(out, "deleted topic {name}")?;
            }
        }
        TopicCommand::Alter { name, partitions, set, delete } => {
            if partitions.is_none() && set.is_empty() && delete.is_empty() {
                anyhow::bail!("nothing to change: give --partitions, --set or --delete");
            }
            let changes: Vec<ConfigChange> = set
                .into_iter()
                .map(|(key, value)| ConfigChange::Set(key, value))
                .chain(delete.into_iter().map(ConfigChange::Delete))
                .collect();
            // Every change is checked before any is made.
            if let Some(count) = partitions {
                admin.validate_create_partitions(&name, count).await?;
            }
            if !changes.is_empty() {
                admin.validate_alter_configs(&name, &changes).await?;
            }
            if !changes.is_empty() {
                admin.alter_configs(&name, &changes).await?;
                writeln!(out, "altered {} config(s) of {name}", changes.len())?;
            }
            if let Some(count) = partitions {
                admin.create_partitions(&name, count).await?;
                writeln!(out, "topic {name} now has {count} partitions")?;
            }
        }
    }
    Ok(())
}

/// One line of `topic list --json`.
#[derive(Serialize)]
struct TopicListJson<'a> {
    topic: &'a str,
    partitions: usize,
    internal: bool,
}

/// `topic describe --json`.
#[derive(Serialize)]
struct TopicJson<'a> {
    topic: &'a str,
    internal: bool,
    partitions: Vec<PartitionJson>,
    configs: Vec<ConfigJson<'a>>,
}

#[derive(Serialize)]
struct PartitionJson {
    partition: i32,
    leader: i32,
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    offline_replicas: Vec<i32>,
    log_start_offset: Option<i64>,
    log_end_offset: Option<i64>,
    /// Bytes of the leader's replica on disk (DescribeLogDirs); `None` if it did not answer.
    size_bytes: Option<u64>,
    /// Records behind the leader, by replica (`None`: the replica did not answer).
    replica_lag: BTreeMap<i32, Option<i64>>,
}

#[derive(Serialize)]
struct ConfigJson<'a> {
    name: &'a str,
    value: Option<&'a str>,
    source: &'a str,
}

async fn describe(
    cluster: &Cluster,
    admin: &Admin,
    out: &mut impl Write,
    name: &str,
    json: bool,
) -> anyhow::Result<()> {
    let topic = admin.describe_topic(name).await?;
    let configs = admin.describe_configs(name).await?;
    let log_ends = admin.replica_log_ends(&topic).await?;
    let sizes = admin.replica_sizes(&topic).await?;
    let mut partitions = Vec::with_capacity(topic.partitions.len());
    for partition in &topic.partitions {
        // The leader's answer; `None` for a partition without a leader now.
        let start = cluster.list_offset(name, partition.partition, -2).await.ok();
        let end = cluster.list_offset(name, partition.partition, -1).await.ok();
        partitions.push(PartitionJson {
            partition: partition.partition,
            leader: partition.leader,
            leader_epoch: partition.leader_epoch,
            replicas: partition.replicas.clone(),
            isr: partition.isr.clone(),
            offline_replicas: partition.offline_replicas.clone(),
            log_start_offset: start,
            log_end_offset: end,
            size_bytes: sizes.get(&partition.partition).and_then(|by_broker| by_broker.get(&partition.leader)).copied(),
            replica_lag: replica_lags(partition, log_ends.get(&partition.partition)),
        });
    }
    let configs: Vec<ConfigJson> = configs.values().map(config_json).collect();
    let described = TopicJson { topic: &topic.name, internal: topic.is_internal, partitions, configs };
    if json {
        write_json_line(out, &described)?;
        return Ok(());
    }
    describe_text(out, &described)?;
    Ok(())
}

fn config_json(entry: &ConfigEntry) -> ConfigJson<'_> {
    ConfigJson { name: &entry.name, value: entry.value.as_deref(), source: entry.source }
}

fn describe_text(out: &mut impl Write, topic: &TopicJson) -> std::io::Result<()> {
    let under_replicated = topic.partitions.iter().filter(|p| p.isr.len() < p.replicas.len()).count();
    writeln!(out, "topic {} partitions {}  under-replicated {under_replicated}", topic.topic, topic.partitions.len())?;
    let offset = |value: Option<i64>| value.map_or_else(|| "?".to_string(), |v| v.to_string());
    for partition in &topic.partitions {
        let lags: Vec<String> = partition
            .replica_lag
            .iter()
            .map(|(replica, lag)| format!("{replica}:{}", lag.map_or_else(|| "?".to_string(), |l| l.to_string())))
            .collect();
        writeln!(
            out,
            "  partition {:>4}  leader {:>3}  epoch {:>3}  replicas {:?}  isr {:?}  offsets {}..{}  size {}  lag {}",
            partition.partition,
            partition.leader,
            partition.leader_epoch,
            partition.replicas,
            partition.isr,
            offset(partition.log_start_offset),
            offset(partition.log_end_offset),
            partition.size_bytes.map_or_else(|| "?".to_string(), |b| b.to_string()),
            lags.join(" ")
        )?;
    }
    writeln!(out, "configs")?;
    for config in &topic.configs {
        writeln!(out, "  {}={}  ({})", config.name, config.value.unwrap_or("(sensitive)"), config.source)?;
    }
    Ok(())
}

/// Each replica's records behind the leader's log end (from each replica's own answer,
/// ListOffsets with the debugging replica id); `None` where a replica did not answer.
fn replica_lags(
    partition: &PartitionInfo,
    log_ends: Option<&BTreeMap<i32, Result<i64, i16>>>,
) -> BTreeMap<i32, Option<i64>> {
    let log_end = |broker: i32| log_ends.and_then(|ends| ends.get(&broker)).and_then(|end| end.ok());
    let leader_end = log_end(partition.leader);
    partition
        .replicas
        .iter()
        .map(|replica| {
            let lag = match (leader_end, log_end(*replica)) {
                (Some(leader), Some(own)) => Some((leader - own).max(0)),
                _ => None,
            };
            (*replica, lag)
        })
        .collect()
}
