//! `sluice cluster status`: brokers, controller, partition leaders and offline replicas
//! (replicas on a broker that is down, or that failed to open there). `sluice cluster
//! elect-leaders`: Kafka's ElectLeaders, one line per partition.

use std::io::Write;

use sluice_client::admin::ElectionType;
use sluice_client::{Admin, Cluster};

use crate::args::{ClusterCommand, ElectionKind};

/// Kafka's ELECTION_NOT_NEEDED.
const ELECTION_NOT_NEEDED: i16 = 84;

/// Runs a cluster command.
pub async fn run(cluster: Cluster, command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Status => status(cluster).await,
        ClusterCommand::ElectLeaders { kind, topic, partition } => elect_leaders(cluster, kind, topic, partition).await,
    }
}

/// Prints one line per partition: `topic/partition  elected`, `not needed` or the error; fails
/// (exit code 1) if any election failed for a reason other than "not needed".
async fn elect_leaders(
    cluster: Cluster,
    kind: ElectionKind,
    topic: Option<String>,
    partitions: Vec<i32>,
) -> anyhow::Result<()> {
    let admin = Admin::new(cluster);
    let kind = match kind {
        ElectionKind::Preferred => ElectionType::Preferred,
        ElectionKind::Unclean => ElectionType::Unclean,
    };
    let wanted: Option<Vec<(String, i32)>> = match (topic, partitions.is_empty()) {
        (None, _) => None,
        (Some(topic), false) => Some(partitions.into_iter().map(|p| (topic.clone(), p)).collect()),
        (Some(topic), true) => {
            let info = admin.describe_topic(&topic).await?;
            Some(info.partitions.iter().map(|p| (topic.clone(), p.partition)).collect())
        }
    };
    let results = admin.elect_leaders(kind, wanted.as_deref()).await?;
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for result in &results {
        let outcome = match result.error_code {
            0 => "elected".to_string(),
            ELECTION_NOT_NEEDED => "not needed (already led by the replica asked for)".to_string(),
            code => {
                failed += 1;
                format!("failed: error {code}: {}", result.message.as_deref().unwrap_or("no message"))
            }
        };
        writeln!(out, "{}/{}  {outcome}", result.topic, result.partition)?;
    }
    if results.is_empty() {
        writeln!(out, "no partition needed an election")?;
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} elections failed", results.len());
    }
    Ok(())
}

async fn status(cluster: Cluster) -> anyhow::Result<()> {
    let description = Admin::new(cluster).describe_cluster().await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "cluster {}", description.cluster_id)?;
    writeln!(out, "controller {}", description.controller_id)?;
    writeln!(out, "brokers {}", description.brokers.len())?;
    for broker in &description.brokers {
        writeln!(
            out,
            "  broker {:>3}  {}{}",
            broker.id,
            broker.address,
            broker.rack.as_deref().map(|r| format!("  rack {r}")).unwrap_or_default()
        )?;
    }
    writeln!(out, "topics {}", description.topics.len())?;
    for topic in &description.topics {
        let leaders: Vec<String> = topic.partitions.iter().map(|p| format!("{}:{}", p.partition, p.leader)).collect();
        let under_replicated = topic.partitions.iter().filter(|p| p.isr.len() < p.replicas.len()).count();
        let offline: Vec<String> = topic
            .partitions
            .iter()
            .flat_map(|p| p.offline_replicas.iter().map(move |broker| format!("{}@{broker}", p.partition)))
            .collect();
        writeln!(
            out,
            "  {}  partitions {}  leaders [{}]  under-replicated {}{}",
            topic.name,
            topic.partitions.len(),
            leaders.join(" "),
            under_replicated,
            if offline.is_empty() { String::new() } else { format!("  offline replicas [{}]", offline.join(" ")) }
        )?;
    }
    let offline_total: usize =
        description.topics.iter().flat_map(|t| &t.partitions).map(|p| p.offline_replicas.len()).sum();
    if offline_total > 0 {
        writeln!(
            out,
            "offline replicas {offline_total} (partition@broker: down, or failed to open there; see its /ready)"
        )?;
    }
    Ok(())
}
