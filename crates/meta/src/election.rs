//! Leader elections that are asked for rather than forced by a fencing: Kafka's ElectLeaders
//! (preferred or unclean, from an operator) and the controller's unclean elections for topics
//! with `unclean.leader.election.enable`. Pure planning over a [`MetadataView`]: the result is
//! the command to propose, which the state machine checks again when it applies it (the
//! partition epoch in the command makes a plan computed from a stale view fail).
//!
//! Rules (Kafka's, `ReplicationControlManager.electLeader`):
//! - **Preferred**: the first replica becomes leader if it is live and in the ISR;
//!   `ElectionNotNeeded` if it already leads, `PreferredLeaderNotAvailable` otherwise.
//! - **Unclean**: only a partition without a live leader is touched (`ElectionNotNeeded`
//!   otherwise). A live ISR member is elected first (a clean election); only when none is live
//!   does the first live replica in replica order take over, as the sole ISR member.
//!   `EligibleLeadersNotAvailable` when no replica is live.

use crate::commands::first_eligible;
use crate::commands::Command;
use crate::view::MetadataView;
use crate::view::PartitionRecord;
use crate::view::TopicRecord;

/// Kafka's ElectLeaders `election_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// `0`: give the partition to its preferred (first) replica.
    Preferred,
    /// `1`: elect a leader for a partition that has none, out of the ISR if need be.
    Unclean,
}

impl ElectionType {
    /// From the wire value; `None` for an unknown type.
    pub fn from_wire(value: i8) -> Option<ElectionType> {
        match value {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// Why no election is proposed for a partition (each maps to Kafka's error code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionRefusal {
    /// No such topic or partition (`UNKNOWN_TOPIC_OR_PARTITION`).
    UnknownPartition,
    /// The partition already has the leader asked for (`ELECTION_NOT_NEEDED`).
    NotNeeded,
    /// The preferred replica is fenced or out of the ISR (`PREFERRED_LEADER_NOT_AVAILABLE`).
    PreferredNotAvailable,
    /// No replica is live (`ELIGIBLE_LEADERS_NOT_AVAILABLE`).
    NoEligibleLeader,
}

/// The command that carries out an election of `kind` for `topic`/`partition`, or why none is
/// needed or possible. Pure.
pub fn plan_election(
    view: &MetadataView,
    topic: &str,
    partition: u32,
    kind: ElectionType,
) -> Result<Command, ElectionRefusal> {
    let topic = view.topics.get(topic).ok_or(ElectionRefusal::UnknownPartition)?;
    let record = topic.partitions.get(partition as usize).ok_or(ElectionRefusal::UnknownPartition)?;
    match kind {
        ElectionType::Preferred => {
            let preferred = record.replicas.first().copied().ok_or(ElectionRefusal::PreferredNotAvailable)?;
            if record.leader == Some(preferred) {
                return Err(ElectionRefusal::NotNeeded);
            }
            if !record.isr.contains(&preferred) || !view.is_live(preferred) {
                return Err(ElectionRefusal::PreferredNotAvailable);
            }
            Ok(Command::ElectLeader {
                topic_id: topic.topic_id,
                partition,
                partition_epoch: record.partition_epoch,
                preferred: Some(preferred),
            })
        }
        ElectionType::Unclean => {
            if record.leader.is_some_and(|leader| view.is_live(leader)) {
                return Err(ElectionRefusal::NotNeeded);
            }
            let live = view.live_brokers();
            if first_eligible(&record.replicas, &record.isr, &live).is_some() {
                return Ok(Command::ElectLeader {
                    topic_id: topic.topic_id,
                    partition,
                    partition_epoch: record.partition_epoch,
                    preferred: None,
                });
            }
            unclean_command(topic, record, &live).ok_or(ElectionRefusal::NoEligibleLeader)
        }
    }
}

/// The controller's unclean elections: for every partition of a topic whose
/// `unclean.leader.election.enable` is on (its override, else `broker_default`) that has no
/// leader and no live ISR member, elect the first live replica. Pure.
pub fn unclean_elections(view: &MetadataView, broker_default: bool) -> Vec<Command> {
    let live = view.live_brokers();
    view.topics
        .values()
        .filter(|topic| topic.unclean_leader_election(broker_default))
        .flat_map(|topic| {
            let live = &live;
            topic.partitions.iter().filter_map(move |record| {
                let offline = record.leader.is_none_or(|leader| !live.contains(&leader));
                if !offline || first_eligible(&record.replicas, &record.isr, live).is_some() {
                    return None;
                }
                unclean_command(topic, record, live)
            })
        })
        .collect()
}

fn unclean_command(topic: &TopicRecord, record: &PartitionRecord, live: &[i32]) -> Option<Command> {
    let leader = record.replicas.iter().copied().find(|replica| live.contains(replica))?;
    Some(Command::ElectLeaderUnclean {
        topic_id: topic.topic_id,
        partition: record.partition,
        partition_epoch: record.partition_epoch,
        leader,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;
    use crate::view::BrokerRecord;
    use crate::TopicConfig;

    fn view(
        live: &[i32],
        fenced: &[i32],
        partitions: Vec<PartitionRecord>,
        overrides: &[(&str, &str)],
    ) -> MetadataView {
        let mut view = MetadataView::default();
        for (id, is_fenced) in live.iter().map(|b| (*b, false)).chain(fenced.iter().map(|b| (*b, true))) {
            view.brokers.insert(
                id,
                BrokerRecord {
                    broker_id: id,
                    incarnation_id: Uuid::from_u128(id as u128),
                    broker_epoch: 0,
                    kafka_addr: "h:1".into(),
                    internal_addr: "h:2".into(),
                    rack: None,
                    fenced: is_fenced,
                    listeners: Default::default(),
                },
            );
        }
        let config_overrides: BTreeMap<String, String> =
            overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let topic = TopicRecord {
            name: "t".into(),
            topic_id: Uuid::from_u128(1),
            replication_factor: 3,
            config: TopicConfig::from_overrides(&config_overrides).unwrap(),
            config_overrides,
            partitions,
        };
        view.topic_names.insert(topic.topic_id, "t".into());
        view.topics.insert("t".into(), topic);
        view
    }

    fn partition(replicas: &[i32], isr: &[i32], leader: Option<i32>) -> PartitionRecord {
        PartitionRecord {
            partition: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 4,
            partition_epoch: 9,
        }
    }

    #[test]
    fn preferred_election_rules() {
        let led_by_preferred = view(&[1, 2, 3], &[], vec![partition(&[1, 2, 3], &[1, 2, 3], Some(1))], &[]);
        assert_eq!(plan_election(&led_by_preferred, "t", 0, ElectionType::Preferred), Err(ElectionRefusal::NotNeeded));
        let moved = view(&[1, 2, 3], &[], vec![partition(&[1, 2, 3], &[1, 2, 3], Some(2))], &[]);
        assert_eq!(
            plan_election(&moved, "t", 0, ElectionType::Preferred),
            Ok(Command::ElectLeader {
                topic_id: Uuid::from_u128(1),
                partition: 0,
                partition_epoch: 9,
                preferred: Some(1)
            })
        );
        let out_of_isr = view(&[1, 2, 3], &[], vec![partition(&[1, 2, 3], &[2, 3], Some(2))], &[]);
        assert_eq!(
            plan_election(&out_of_isr, "t", 0, ElectionType::Preferred),
            Err(ElectionRefusal::PreferredNotAvailable)
        );
        let fenced = view(&[2, 3], &[1], vec![partition(&[1, 2, 3], &[1, 2, 3], Some(2))], &[]);
        assert_eq!(
            plan_election(&fenced, "t", 0, ElectionType::Preferred),
            Err(ElectionRefusal::PreferredNotAvailable)
        );
        assert_eq!(plan_election(&fenced, "t", 1, ElectionType::Preferred), Err(ElectionRefusal::UnknownPartition));
        assert_eq!(plan_election(&fenced, "x", 0, ElectionType::Preferred), Err(ElectionRefusal::UnknownPartition));
    }

    #[test]
    fn unclean_election_rules() {
        let led = view(&[1, 2, 3], &[], vec![partition(&[1, 2, 3], &[1], Some(1))], &[]);
        assert_eq!(plan_election(&led, "t", 0, ElectionType::Unclean), Err(ElectionRefusal::NotNeeded));
        // A live ISR member: a clean election.
        let clean = view(&[2, 3], &[1], vec![partition(&[1, 2, 3], &[1, 3], None)], &[]);
        assert_eq!(
            plan_election(&clean, "t", 0, ElectionType::Unclean),
            Ok(Command::ElectLeader {
                topic_id: Uuid::from_u128(1),
                partition: 0,
                partition_epoch: 9,
                preferred: None
            })
        );
        // Only out-of-sync replicas live: the first of them in replica order.
        let unclean = view(&[2, 3], &[1], vec![partition(&[1, 3, 2], &[1], None)], &[]);
        assert_eq!(
            plan_election(&unclean, "t", 0, ElectionType::Unclean),
            Ok(Command::ElectLeaderUnclean {
                topic_id: Uuid::from_u128(1),
                partition: 0,
                partition_epoch: 9,
                leader: 3
            })
        );
        let none_live = view(&[4], &[1, 2, 3], vec![partition(&[1, 2, 3], &[1], None)], &[]);
        assert_eq!(plan_election(&none_live, "t", 0, ElectionType::Unclean), Err(ElectionRefusal::NoEligibleLeader));
    }

    #[test]
    fn the_controller_elects_uncleanly_only_where_the_topic_or_broker_allows_it() {
        let offline = || vec![partition(&[1, 2, 3], &[1], None)];
        let expected = vec![Command::ElectLeaderUnclean {
            topic_id: Uuid::from_u128(1),
            partition: 0,
            partition_epoch: 9,
            leader: 2,
        }];
        let default_off = view(&[2, 3], &[1], offline(), &[]);
        assert!(unclean_elections(&default_off, false).is_empty(), "off by default");
        assert_eq!(unclean_elections(&default_off, true), expected, "the broker default turns it on");
        let topic_on = view(&[2, 3], &[1], offline(), &[("unclean.leader.election.enable", "true")]);
        assert_eq!(unclean_elections(&topic_on, false), expected);
        let topic_off = view(&[2, 3], &[1], offline(), &[("unclean.leader.election.enable", "false")]);
        assert!(unclean_elections(&topic_off, true).is_empty(), "the topic override wins");
        // An ISR member is live (the controller's unfence path elects it), or a leader exists.
        let isr_live = view(&[1, 3], &[2], vec![partition(&[1, 2, 3], &[1], None)], &[]);
        assert!(unclean_elections(&isr_live, true).is_empty());
        let led = view(&[1, 2, 3], &[], vec![partition(&[1, 2, 3], &[1], Some(1))], &[]);
        assert!(unclean_elections(&led, true).is_empty());
    }
}
