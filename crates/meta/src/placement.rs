//! Replica placement for new partitions: a pure, deterministic function of the live brokers,
//! their racks and their current load.
//!
//! For each new partition, the leader (first replica) is the live broker leading the fewest
//! partitions, ties broken by fewest replicas, then lowest id. Each follower is then the live
//! broker not yet chosen whose rack holds the fewest replicas of this partition so far, ties
//! broken by fewest replicas hosted, then lowest id. Loads are updated after every partition,
//! so a topic's leaders rotate over the brokers and its replicas spread evenly.
//!
//! Racks (`--rack`, Kafka's `broker.rack`): putting "fewest replicas of this partition on the
//! rack" first means a partition's replicas land on distinct racks whenever there are at least
//! as many racks as replicas, and otherwise spread over every rack before any rack gets a
//! second one (Kafka's rack-aware assignment alternates racks to the same end). A broker
//! without a rack counts as a rack of its own, so a cluster with no racks configured is placed
//! by load alone, as before racks existed. The result depends only on the view, so every Raft
//! replica computes the same placement when it applies the command.

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
/// over `live_brokers` (the candidates) on their `racks` (a broker missing there has none)
/// with their existing `load` (missing = no load).
///
/// Returns one replica list per partition, preferred leader first.
pub fn place_partitions(
    live_brokers: &[BrokerId],
    racks: &BTreeMap<BrokerId, String>,
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
                .min_by_key(|(id, l)| (replicas_on_rack(racks, &replicas, **id), l.replicas, **id))
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

/// How many of `chosen` sit on `candidate`'s rack: 0 for a broker without a rack (its own rack).
fn replicas_on_rack(racks: &BTreeMap<BrokerId, String>, chosen: &[BrokerId], candidate: BrokerId) -> usize {
    match racks.get(&candidate) {
        Some(rack) => chosen.iter().filter(|b| racks.get(b) == Some(rack)).count(),
        None => 0,
    }
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
        let placements = place_partitions(&[1, 2, 3], &BTreeMap::new(), &BTreeMap::new(), 6, 3).unwrap();
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
        let placements = place_partitions(&[1, 2, 3, 4], &BTreeMap::new(), &BTreeMap::new(), 8, 2).unwrap();
        let (leaders, replicas) = tally(&placements);
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2, 2]);
        assert_eq!(replicas.values().copied().collect::<Vec<_>>(), vec![4, 4, 4, 4]);
    }

    #[test]
    fn existing_load_steers_new_leaders_to_idle_brokers() {
        let load = BTreeMap::from([(1, BrokerLoad { leaders: 3, replicas: 3 })]);
        let placements = place_partitions(&[1, 2, 3], &BTreeMap::new(), &load, 2, 1).unwrap();
        assert_eq!(placements, vec![vec![2], vec![3]]);
    }

    #[test]
    fn placement_is_deterministic() {
        let first = place_partitions(&[5, 1, 9], &BTreeMap::new(), &BTreeMap::new(), 7, 2).unwrap();
        let second = place_partitions(&[5, 1, 9], &BTreeMap::new(), &BTreeMap::new(), 7, 2).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn factor_above_live_brokers_is_rejected() {
        let error = place_partitions(&[1, 2], &BTreeMap::new(), &BTreeMap::new(), 1, 3).unwrap_err();
        assert_eq!(error, CommandError::InvalidReplicationFactor { requested: 3, live_brokers: 2 });
        assert!(place_partitions(&[1, 2], &BTreeMap::new(), &BTreeMap::new(), 1, 0).is_err());
    }
    /// Racks of the brokers in `layout`: `(rack, brokers)`.
    fn racks_of(layout: &[(&str, &[BrokerId])]) -> (Vec<BrokerId>, BTreeMap<BrokerId, String>) {
        let mut brokers = Vec::new();
        let mut racks = BTreeMap::new();
        for (rack, members) in layout {
            for broker in *members {
                brokers.push(*broker);
                racks.insert(*broker, rack.to_string());
            }
        }
        brokers.sort_unstable();
        (brokers, racks)
    }

    fn distinct_racks(racks: &BTreeMap<BrokerId, String>, placement: &[BrokerId]) -> usize {
        let mut seen: Vec<&String> = placement.iter().map(|b| &racks[b]).collect();
        seen.sort();
        seen.dedup();
        seen.len()
    }

    #[test]
    fn replicas_of_a_partition_land_on_distinct_racks() {
        // Brokers numbered so that load-only placement would put 1 and 2 (both rack a) together.
        let (brokers, racks) = racks_of(&[("a", &[1, 2]), ("b", &[3, 4]), ("c", &[5, 6])]);
        let placements = place_partitions(&brokers, &racks, &BTreeMap::new(), 12, 3).unwrap();
        for placement in &placements {
            assert_eq!(distinct_racks(&racks, placement), 3, "{placement:?}");
        }
        let (leaders, replicas) = tally(&placements);
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2; 6], "leaders spread evenly");
        assert_eq!(replicas.values().copied().collect::<Vec<_>>(), vec![6; 6], "replicas spread evenly");
    }

    #[test]
    fn without_rack_awareness_the_same_cluster_would_share_racks() {
        // The control for the test above: load alone puts two rack-a brokers in one partition.
        let (brokers, racks) = racks_of(&[("a", &[1, 2]), ("b", &[3, 4]), ("c", &[5, 6])]);
        let placements = place_partitions(&brokers, &BTreeMap::new(), &BTreeMap::new(), 12, 3).unwrap();
        assert!(placements.iter().any(|p| distinct_racks(&racks, p) < 3));
    }

    #[test]
    fn more_replicas_than_racks_use_every_rack_first() {
        let (brokers, racks) = racks_of(&[("a", &[1, 2, 3]), ("b", &[4, 5, 6])]);
        let placements = place_partitions(&brokers, &racks, &BTreeMap::new(), 6, 3).unwrap();
        for placement in &placements {
            assert_eq!(distinct_racks(&racks, placement), 2, "{placement:?}");
        }
        let (leaders, replicas) = tally(&placements);
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![1; 6]);
        assert_eq!(replicas.values().copied().collect::<Vec<_>>(), vec![3; 6]);
    }

    #[test]
    fn uneven_racks_still_give_every_partition_every_rack() {
        // Rack c has one broker: it must host every partition for RF 3 over 3 racks.
        let (brokers, racks) = racks_of(&[("a", &[1, 2]), ("b", &[3, 4]), ("c", &[5])]);
        let placements = place_partitions(&brokers, &racks, &BTreeMap::new(), 10, 3).unwrap();
        for placement in &placements {
            assert_eq!(distinct_racks(&racks, placement), 3, "{placement:?}");
        }
        let (leaders, _) = tally(&placements);
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2; 5], "leaders still spread evenly");
    }

    #[test]
    fn a_broker_without_a_rack_counts_as_a_rack_of_its_own() {
        let racks = BTreeMap::from([(1, "a".to_string()), (2, "a".to_string())]);
        let placements = place_partitions(&[1, 2, 3], &racks, &BTreeMap::new(), 4, 2).unwrap();
        for placement in &placements {
            assert!(placement.contains(&3), "the rackless broker pairs with rack a: {placement:?}");
        }
    }
}
