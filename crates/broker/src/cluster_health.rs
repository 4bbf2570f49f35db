//! The cluster's health as this broker sees it, from the metadata view: which replicas are
//! offline, and the problems that make the cluster unhealthy. Shared by the Metadata handler
//! (offline replicas on the wire) and the web console's front page, so both tell the same
//! story; the rules are those of `sluice cluster health` (`crates/cli/src/cluster.rs`), which
//! reaches the same verdict from DescribeCluster and Metadata answers.

use sluice_meta::{BrokerId, MetadataView, PartitionRecord, TopicRecord};

/// The replicas on this broker that failed to open: Metadata lists this broker among their
/// offline replicas (Kafka does the same for replicas on a failed log directory), which is how
/// `sluice cluster status` sees them.
#[derive(Debug, Clone, Default)]
pub struct OfflineHere {
    /// This broker.
    pub broker_id: BrokerId,
    /// Its replicas that failed to open: (topic, partition).
    pub partitions: Vec<(String, i32)>,
}

impl OfflineHere {
    fn contains(&self, topic: &str, partition: i32) -> bool {
        self.partitions.iter().any(|(t, p)| t == topic && *p == partition)
    }

    /// The offline replicas of one partition: on fenced or unregistered brokers, or on this
    /// broker when it failed to open it.
    pub fn offline_replicas(
        &self,
        view: &MetadataView,
        topic: &TopicRecord,
        partition: &PartitionRecord,
    ) -> Vec<BrokerId> {
        let index = i32::try_from(partition.partition).unwrap_or(i32::MAX);
        partition
            .replicas
            .iter()
            .copied()
            .filter(|&replica| {
                !view.is_live(replica) || (replica == self.broker_id && self.contains(&topic.name, index))
            })
            .collect()
    }
}

/// Why the cluster is not healthy; empty when it is. Healthy: a metadata leader (Kafka's
/// controller), at least one broker, and every partition with a leader, its whole replica set
/// in sync and no replica offline. Same rules and wording as `sluice cluster health`.
pub fn health_problems(view: &MetadataView, controller: Option<BrokerId>, offline_here: &OfflineHere) -> Vec<String> {
    let mut problems = Vec::new();
    if controller.is_none() {
        problems.push("no controller (the metadata group has no leader)".to_string());
    }
    if view.brokers.is_empty() {
        problems.push("no brokers registered".to_string());
    }
    for topic in view.topics.values() {
        for partition in &topic.partitions {
            let name = format!("{}-{}", topic.name, partition.partition);
            if partition.leader.is_none() {
                problems.push(format!("{name}: no leader (offline)"));
            }
            if partition.isr.len() < partition.replicas.len() {
                problems.push(format!(
                    "{name}: under-replicated (isr {:?} of replicas {:?})",
                    partition.isr, partition.replicas
                ));
            }
            let offline = offline_here.offline_replicas(view, topic, partition);
            if !offline.is_empty() {
                problems.push(format!("{name}: offline replicas on brokers {offline:?}"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_meta::{BrokerRecord, TopicConfig};

    fn partition(index: u32, leader: Option<BrokerId>, replicas: &[BrokerId], isr: &[BrokerId]) -> PartitionRecord {
        PartitionRecord {
            partition: index,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    fn broker(id: BrokerId, fenced: bool) -> BrokerRecord {
        BrokerRecord {
            broker_id: id,
            incarnation_id: uuid::Uuid::nil(),
            broker_epoch: 1,
            kafka_addr: format!("b{id}:9092"),
            internal_addr: format!("b{id}:9092"),
            rack: None,
            fenced,
            listeners: Default::default(),
        }
    }

    // Goal: the console's verdict is `sluice cluster health`'s — the same scenario as the CLI's
    // `health_names_every_problem_and_none_for_a_healthy_cluster`, with the same wording —
    // and a replica that failed to open here counts as offline, as Metadata reports it.
    #[test]
    fn the_verdict_and_wording_are_the_clis() {
        let mut view = MetadataView::default();
        view.brokers.insert(1, broker(1, false));
        view.brokers.insert(2, broker(2, false));
        view.topics.insert(
            "t".to_string(),
            TopicRecord {
                name: "t".to_string(),
                topic_id: uuid::Uuid::nil(),
                replication_factor: 2,
                config_overrides: Default::default(),
                config: TopicConfig::default(),
                partitions: vec![partition(0, Some(1), &[1, 2], &[1, 2])],
            },
        );
        let here = OfflineHere { broker_id: 1, partitions: Vec::new() };
        assert!(health_problems(&view, Some(1), &here).is_empty());
        view.brokers.insert(2, broker(2, true));
        view.topics.get_mut("t").unwrap().partitions.push(partition(1, None, &[1, 2], &[1]));
        let problems = health_problems(&view, None, &here);
        assert_eq!(
            problems,
            vec![
                "no controller (the metadata group has no leader)".to_string(),
                "t-0: offline replicas on brokers [2]".to_string(),
                "t-1: no leader (offline)".to_string(),
                "t-1: under-replicated (isr [1] of replicas [1, 2])".to_string(),
                "t-1: offline replicas on brokers [2]".to_string(),
            ]
        );
        let failed_here = OfflineHere { broker_id: 1, partitions: vec![("t".to_string(), 0)] };
        let topic = &view.topics["t"];
        assert_eq!(failed_here.offline_replicas(&view, topic, &topic.partitions[0]), vec![1, 2]);
    }
}
