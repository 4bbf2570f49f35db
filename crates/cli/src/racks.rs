//! Racks in reassignment plans (`topic reassign --generate`, `cluster rebalance`, `cluster
//! decommission`), as Kafka's rack-aware assignment: a partition's replicas go on distinct racks
//! when there are at least as many racks as replicas, and otherwise as evenly over the racks as
//! their sizes allow. The planners in [`crate::reassign`] and [`crate::rebalance`] ask two
//! questions of this module — how many replicas of a partition a rack may hold
//! ([`replicas_per_rack_max`]) and whether replacing one replica by another keeps the spread
//! ([`may_replace`]) — so racks never enter their balancing logic otherwise.
//!
//! With no racks (an empty [`Racks`]) every answer is "no limit", and the plans are the ones
//! the planners made before racks existed. Pure: no I/O.

use std::collections::BTreeMap;

use sluice_client::cluster::BrokerInfo;

/// Each broker's rack, for the brokers a plan may place replicas on; empty when the plan
/// ignores racks (no broker has one, or `--disable-rack-aware`).
pub type Racks = BTreeMap<i32, String>;

/// The racks of `planned` (the brokers a plan may use) from the cluster's `brokers`. Kafka's
/// rule: either every planned broker has a rack or none has; a mix is refused unless
/// `disable_rack_aware`, which plans without racks. A planned broker missing from `brokers` (not
/// live) has no rack.
pub fn racks_of(brokers: &[BrokerInfo], planned: &[i32], disable_rack_aware: bool) -> anyhow::Result<Racks> {
    if disable_rack_aware {
        return Ok(Racks::new());
    }
    let rack = |id: i32| brokers.iter().find(|b| b.id == id).and_then(|b| b.rack.clone());
    let racks: Racks = planned.iter().filter_map(|id| rack(*id).map(|r| (*id, r))).collect();
    let without: Vec<i32> = planned.iter().copied().filter(|id| !racks.contains_key(id)).collect();
    if !racks.is_empty() && !without.is_empty() {
        anyhow::bail!(
            "broker(s) {without:?} have no rack but {:?} have one: a rack-aware plan needs a rack on every broker \
             (start them with --rack), or plan without racks with --disable-rack-aware",
            racks.keys().collect::<Vec<_>>()
        );
    }
    Ok(racks)
}

/// How many of `replicas` sit on `broker`'s rack (`broker` itself included if it is one of
/// them); 0 without racks.
pub fn on_rack(racks: &Racks, replicas: &[i32], broker: i32) -> usize {
    match racks.get(&broker) {
        Some(rack) => replicas.iter().filter(|r| racks.get(r) == Some(rack)).count(),
        None => 0,
    }
}

/// The most replicas of a partition of `factor` replicas that any rack needs to hold when
/// they are spread as evenly as `brokers`' racks allow: the smallest `level` with
/// `Σ min(brokers on the rack, level) ≥ factor` (1 when there are at least `factor` racks of
/// a broker or more). `usize::MAX` without racks.
pub fn replicas_per_rack_max(racks: &Racks, brokers: &[i32], factor: usize) -> usize {
    if racks.is_empty() {
        return usize::MAX;
    }
    let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
    for broker in brokers {
        if let Some(rack) = racks.get(broker) {
            *sizes.entry(rack).or_default() += 1;
        }
    }
    let biggest = sizes.values().copied().max().unwrap_or(0);
    (1..=biggest.max(1))
        .find(|level| sizes.values().map(|size| (*size).min(*level)).sum::<usize>() >= factor)
        .unwrap_or(biggest.max(1))
}

/// Whether a partition with `replicas` (holding `from`, not `to`) may have `from` replaced by
/// `to`: always without racks or within a rack; across racks only if `to`'s rack then holds
/// no more of its replicas than `from`'s rack held before — the spread over racks stays as
/// even or gets evener, so distinct racks stay distinct.
pub fn may_replace(racks: &Racks, replicas: &[i32], from: i32, to: i32) -> bool {
    if racks.is_empty() || racks.get(&from) == racks.get(&to) {
        return true;
    }
    on_rack(racks, replicas, to) < on_rack(racks, replicas, from)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Racks from a layout of `(rack, brokers)`.
    pub(crate) fn layout(racks: &[(&str, &[i32])]) -> Racks {
        racks.iter().flat_map(|(rack, brokers)| brokers.iter().map(|b| (*b, rack.to_string()))).collect()
    }

    fn broker(id: i32, rack: Option<&str>) -> BrokerInfo {
        BrokerInfo { id, address: format!("b{id}:9092"), rack: rack.map(str::to_string) }
    }

    #[test]
    fn racks_are_all_or_none_unless_disabled() {
        let all = [broker(1, Some("a")), broker(2, Some("b"))];
        assert_eq!(racks_of(&all, &[1, 2], false).unwrap(), layout(&[("a", &[1]), ("b", &[2])]));
        let none = [broker(1, None), broker(2, None)];
        assert!(racks_of(&none, &[1, 2], false).unwrap().is_empty());
        let mixed = [broker(1, Some("a")), broker(2, None)];
        let error = racks_of(&mixed, &[1, 2], false).unwrap_err().to_string();
        assert!(error.contains("[2] have no rack") && error.contains("--disable-rack-aware"), "{error}");
        assert!(racks_of(&mixed, &[1, 2], true).unwrap().is_empty());
        assert_eq!(racks_of(&mixed, &[1], false).unwrap().len(), 1, "only the planned brokers count");
        assert!(racks_of(&all, &[1, 2, 3], false).is_err(), "a broker that is not live has no rack");
    }

    #[test]
    fn the_per_rack_limit_follows_the_rack_sizes() {
        let even = layout(&[("a", &[1, 2]), ("b", &[3, 4]), ("c", &[5, 6])]);
        let brokers = [1, 2, 3, 4, 5, 6];
        assert_eq!(replicas_per_rack_max(&even, &brokers, 3), 1);
        assert_eq!(replicas_per_rack_max(&even, &brokers, 2), 1);
        assert_eq!(replicas_per_rack_max(&even, &brokers, 4), 2);
        // Rack b has one broker: four replicas over {a: 4, b: 1} need three on rack a.
        let lopsided = layout(&[("a", &[1, 2, 3, 4]), ("b", &[5])]);
        assert_eq!(replicas_per_rack_max(&lopsided, &[1, 2, 3, 4, 5], 4), 3);
        assert_eq!(replicas_per_rack_max(&Racks::new(), &brokers, 3), usize::MAX);
    }

    #[test]
    fn replacing_never_crowds_a_rack() {
        let racks = layout(&[("a", &[1, 2]), ("b", &[3, 4]), ("c", &[5, 6])]);
        assert!(may_replace(&racks, &[1, 3, 5], 1, 2), "within rack a");
        assert!(!may_replace(&racks, &[1, 3, 5], 1, 4), "rack b would hold two");
        assert!(may_replace(&racks, &[1, 2, 3], 2, 5), "rack c was empty: better");
        assert!(may_replace(&racks, &[1, 2, 3], 3, 5), "racks b and c trade places: as even as before");
        let two = layout(&[("a", &[1, 2, 3]), ("b", &[4, 5, 6])]);
        assert!(!may_replace(&two, &[1, 2, 4], 4, 3), "rack a would hold all three");
        assert!(may_replace(&two, &[1, 2, 4], 2, 5), "two on a, one on b becomes one on a, two on b");
        assert!(may_replace(&Racks::new(), &[1, 2, 3], 1, 4), "no racks, no rule");
    }
}
