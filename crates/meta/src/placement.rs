//! Replica placement for new partitions: a pure, deterministic function of the live brokers and
//! their current load.
//!
//! For each new partition, the leader (first replica) is the live broker leading the fewest
//! partitions, ties broken by fewest replicas, then lowest id; the followers are the other live
//! brokers hosting the fewest replicas, ties broken by lowest id. Loads are updated after every
//! partition, so a topic's leaders rotate over the brokers and its replicas spread evenly. The
//! result depends only on the view, so every Raft replica computes the same placement when it
//! applies the command. Racks are not considered yet.

use std::collections::BTreeMap;

use crate::error::CommandError;
use crate::view::BrokerId;

/// Current load of one broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerLoad {
    /// Partitions it leads.
    pub leaders: usize,
    /// Partition replicas it hosts.
    pub replicas: usize,
}

/// Chooses replicas for `partition_count` new partitions of `replication_factor` replicas each,
/// over `live_brokers` (the candidates) with their existing `load` (missing = no load).
///
/// Returns one replica list per partition, preferred leader first.
pub fn place_partitions(
    live_brokers: &[BrokerId],
    load: &BTreeMap<BrokerId, BrokerLoad>,
    partition_count: u32,
    replication_factor: u16,
) -> Result<Vec<Vec<BrokerId>>, CommandError> {
    let factor = usize::from(replication_factor);
    if factor == 0 || factor > live_brokers.len() {
        return Err(CommandError::InvalidReplicationFactor {
            requested: replication_factor,
            live_brokers: live_brokers.len(),
        });
    }
    let mut load: BTreeMap<BrokerId, BrokerLoad> =
        live_brokers.iter().map(|id| (*id, load.get(id).copied().unwrap_or_default())).collect();
    let mut placements = Vec::with_capacity(partition_count as usize);
    for _ in 0..partition_count {
        let leader = *load
            .iter()
            .min_by_key(|(id, l)| (l.leaders, l.replicas, **id))
            .map(|(id, _)| id)
            .expect("at least one live broker (checked above)");
        let mut replicas = vec![leader];
        while replicas.len() < factor {
            let follower = *load
                .iter()
                .filter(|(id, _)| !replicas.contains(id))
                .min_by_key(|(id, l)| (l.replicas, **id))
                .map(|(id, _)| id)
                .expect("factor <= live brokers (checked above)");
            replicas.push(follower);
        }
        for (position, broker) in replicas.iter().enumerate() {
            let entry = load.get_mut(broker).expect("replica chosen from load map");
            entry.replicas += 1;
            if position == 0 {
                entry.leaders += 1;
            }
        }
        placements.push(replicas);
    }
    Ok(placements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(placements: &[Vec<BrokerId>]) -> (BTreeMap<BrokerId, usize>, BTreeMap<BrokerId, usize>) {
        let mut leaders = BTreeMap::new();
        let mut replicas = BTreeMap::new();
        for placement in placements {
            *leaders.entry(placement[0]).or_insert(0) += 1;
            for broker in placement {
                *replicas.entry(*broker).or_insert(0) += 1;
            }
        }
        (leaders, replicas)
    }

    #[test]
    fn leaders_and_replicas_are_balanced_on_an_empty_cluster() {
        let placements = place_partitions(&[1, 2, 3], &BTreeMap::new(), 6, 3).unwrap();
        let (leaders, replicas) = tally(&placements);
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
        assert_eq!(replicas.values().copied().collect::<Vec<_>>(), vec![6, 6, 6]);
        for placement in &placements {
            let mut distinct = placement.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), 3, "replicas of a partition are distinct: {placement:?}");
        }
    }

    #[test]
    fn replicas_spread_when_factor_is_below_broker_count() {
        let placements = place_partitions(&[1, 2, 3, 4], &BTreeMap::new(), 8, 2).unwrap();
        let (leaders, replicas) = tally(&placements);
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2, 2]);
        assert_eq!(replicas.values().copied().collect::<Vec<_>>(), vec![4, 4, 4, 4]);
    }

    #[test]
    fn existing_load_steers_new_leaders_to_idle_brokers() {
        let load = BTreeMap::from([(1, BrokerLoad { leaders: 3, replicas: 3 })]);
        let placements = place_partitions(&[1, 2, 3], &load, 2, 1).unwrap();
        assert_eq!(placements, vec![vec![2], vec![3]]);
    }

    #[test]
    fn placement_is_deterministic() {
        let first = place_partitions(&[5, 1, 9], &BTreeMap::new(), 7, 2).unwrap();
        let second = place_partitions(&[5, 1, 9], &BTreeMap::new(), 7, 2).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn factor_above_live_brokers_is_rejected() {
        let error = place_partitions(&[1, 2], &BTreeMap::new(), 1, 3).unwrap_err();
        assert_eq!(error, CommandError::InvalidReplicationFactor { requested: 3, live_brokers: 2 });
        assert!(place_partitions(&[1, 2], &BTreeMap::new(), 1, 0).is_err());
    }
}
