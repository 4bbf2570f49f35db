//! `sluice cluster status`: brokers, controller and partition leaders.

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
        writeln!(
            out,
            "  {}  partitions {}  leaders [{}]  under-replicated {}",
            topic.name,
            topic.partitions.len(),
            leaders.join(" "),
            under_replicated
        )?;
    }
    Ok(())
}
