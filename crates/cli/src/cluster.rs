//! `sluice cluster status`: brokers, controller, partition leaders and offline replicas
//! (replicas on a broker that is down, or that failed to open there).

use std::io::Write;

use sluice_client::{Admin, Cluster};

use crate::args::ClusterCommand;

/// Runs a cluster command.
pub async fn run(cluster: Cluster, command: ClusterCommand) -> anyhow::Result<()> {
    let ClusterCommand::Status = command;
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
