//! `sluice cluster rebalance`: a plan that evens the replicas, the disk bytes and the preferred
//! leaders over the live brokers, run as a Kafka reassignment (what Kafka leaves to Cruise
//! Control).
//!
//! The decision is pure and tested without a broker: [`rebalance_plan`] starts from
//! [`generate_plan`] over every live broker (replica counts within one of each other, moving as
//! few replicas as it can), then evens the bytes ([`even_bytes`]: a replica moves, or two
//! replicas swap, between the heaviest and the lightest broker while that narrows their gap and
//! keeps the counts even), then the preferred leaders ([`even_leaders`]: the first replica of a
//! partition is swapped with another of its replicas — an order change, no data moves). When
//! the brokers have racks, no move or swap of the counts or the bytes step crowds a rack with a
//! partition's replicas ([`crate::racks`]); the leader step only reorders. The run
//! sends only the partitions whose replicas change, waits for the moves, and asks for preferred
//! leader elections where the first replica changed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use sluice_client::admin::ElectionType;
use sluice_client::cluster::TopicInfo;
use sluice_client::{Admin, Cluster};

use crate::racks::{may_replace, racks_of, Racks};
use crate::reassign::{generate_plan, pairs_by_gap, replace, Plan, PlanPartition};

/// Each partition's size in bytes (its largest replica), by topic and partition.
pub type Sizes = BTreeMap<(String, i32), u64>;

/// Steps of [`even_bytes`] or [`even_leaders`] at most, per partition of the plan: each step
/// strictly improves its measure, so both end anyway; this bounds the work on a large cluster.
pub const REBALANCE_STEPS_PER_PARTITION_MAX: usize = 4;

/// Byte gaps between the heaviest and the lightest broker below this are left alone: moving
/// data costs more than such a difference (and a cluster under load changes by that much
/// between two runs, which would make every run move something).
pub const REBALANCE_BYTES_GAP_MIN: u64 = 64 * 1024 * 1024;

/// Byte gaps below this share of a broker's mean load are left alone too (Cruise Control's
/// default disk balance threshold is 10% as well).
pub const REBALANCE_BYTES_GAP_SHARE: f64 = 0.10;

/// What each broker carries under a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Load {
    /// Replicas on the broker.
    pub replicas: usize,
    /// Partitions whose preferred (first) replica it is.
    pub leaders: usize,
    /// Bytes of the replicas on it (each partition counted at its size).
    pub bytes: u64,
}

/// Each broker's [`Load`] under `partitions`, with a zero load for brokers that carry nothing.
pub fn loads(partitions: &[PlanPartition], sizes: &Sizes, brokers: &[i32]) -> BTreeMap<i32, Load> {
    let mut loads: BTreeMap<i32, Load> = brokers.iter().map(|b| (*b, Load::default())).collect();
    for partition in partitions {
        let size = size_of(sizes, partition);
        for (position, replica) in partition.replicas.iter().enumerate() {
            let load = loads.entry(*replica).or_default();
            load.replicas += 1;
            load.bytes += size;
            if position == 0 {
                load.leaders += 1;
            }
        }
    }
    loads
}

fn size_of(sizes: &Sizes, partition: &PlanPartition) -> u64 {
    sizes.get(&(partition.topic.clone(), partition.partition)).copied().unwrap_or(0)
}

/// The balanced plan for every partition of `topics` over `brokers` (the live ones): counts,
/// then bytes, then preferred leaders; with `racks`, no partition's replicas crowd a rack
/// ([`crate::racks`]). Pure and deterministic.
pub fn rebalance_plan(topics: &[TopicInfo], sizes: &Sizes, brokers: &[i32], racks: &Racks) -> anyhow::Result<Plan> {
    let mut plan = generate_plan(topics, brokers, racks, false)?;
    even_bytes(&mut plan.partitions, sizes, brokers, racks);
    even_leaders(&mut plan.partitions, brokers);
    Ok(plan)
}

/// One step of [`even_bytes`]: `from` → `to` in partition `give`, and `to` → `from` in
/// partition `take` if it is a swap.
#[derive(Debug, Clone, Copy)]
struct Exchange {
    give: usize,
    take: Option<usize>,
    moved_bytes: u64,
}

/// Narrows the byte gap between the heaviest and the lightest broker while it is above
/// [`REBALANCE_BYTES_GAP_MIN`] and [`REBALANCE_BYTES_GAP_SHARE`] of the mean, one exchange at a time:
/// a replica of the heaviest moves to the lightest (only while the heaviest has more replicas,
/// so the counts stay within one), or a replica of each swaps places; of the exchanges that
/// move fewer bytes than the gap (so the two brokers do not simply trade places), the one
/// closest to half the gap; with `racks`, only exchanges that crowd no rack
/// ([`may_replace`]). Each exchange lowers the sum of squared byte loads, so this ends.
pub fn even_bytes(partitions: &mut [PlanPartition], sizes: &Sizes, brokers: &[i32], racks: &Racks) {
    let steps_max = partitions.len() * REBALANCE_STEPS_PER_PARTITION_MAX;
    // Counted once, then kept up to date by each exchange (a partition's size never changes).
    let mut load = loads(partitions, sizes, brokers);
    let mean = load.values().map(|l| l.bytes).sum::<u64>() as f64 / load.len().max(1) as f64;
    for _ in 0..steps_max {
        let (Some((&heavy, heavy_load)), Some((&light, light_load))) =
            (load.iter().max_by_key(|(id, l)| (l.bytes, -**id)), load.iter().min_by_key(|(id, l)| (l.bytes, **id)))
        else {
            return;
        };
        let gap = heavy_load.bytes - light_load.bytes;
        if gap <= REBALANCE_BYTES_GAP_MIN || (gap as f64) <= REBALANCE_BYTES_GAP_SHARE * mean {
            return;
        }
        let pair = Pair { heavy, light, gap, may_move: heavy_load.replicas > light_load.replicas };
        let Some(exchange) = best_exchange(partitions, sizes, racks, pair) else {
            return;
        };
        replace(&mut partitions[exchange.give], heavy, light);
        if let Some(take) = exchange.take {
            replace(&mut partitions[take], light, heavy);
        } else {
            load.get_mut(&heavy).expect("from the load map").replicas -= 1;
            load.get_mut(&light).expect("from the load map").replicas += 1;
        }
        load.get_mut(&heavy).expect("from the load map").bytes -= exchange.moved_bytes;
        load.get_mut(&light).expect("from the load map").bytes += exchange.moved_bytes;
    }
}

/// The two brokers [`best_exchange`] looks at: the heaviest and the lightest, their byte gap,
/// and whether a single replica may move (the heaviest has more replicas).
#[derive(Debug, Clone, Copy)]
struct Pair {
    heavy: i32,
    light: i32,
    gap: u64,
    may_move: bool,
}

/// The exchange between `heavy` and `light` that moves `d` bytes with `0 < d < gap`, `d`
/// closest to `gap / 2`; single moves only if `may_move`.
fn best_exchange(partitions: &[PlanPartition], sizes: &Sizes, racks: &Racks, pair: Pair) -> Option<Exchange> {
    let Pair { heavy, light, gap, may_move } = pair;
    let givable = exchangeable(partitions, sizes, racks, heavy, light);
    let mut takable = exchangeable(partitions, sizes, racks, light, heavy);
    takable.sort_unstable();
    let half = gap / 2;
    let distance = |moved: u64| moved.abs_diff(half);
    let mut best: Option<Exchange> = None;
    let mut consider = |candidate: Exchange| {
        if candidate.moved_bytes == 0 || candidate.moved_bytes >= gap {
            return;
        }
        if best.is_none_or(|b| distance(candidate.moved_bytes) < distance(b.moved_bytes)) {
            best = Some(candidate);
        }
    };
    for &(give_size, give) in &givable {
        if may_move {
            consider(Exchange { give, take: None, moved_bytes: give_size });
        }
        // The swap partner whose size is nearest to give_size - half (and below give_size).
        let wanted = give_size.saturating_sub(half);
        let at = takable.partition_point(|(size, _)| *size < wanted);
        for &(take_size, take) in takable[at.saturating_sub(1)..takable.len().min(at + 1)].iter() {
            if take_size < give_size {
                consider(Exchange { give, take: Some(take), moved_bytes: give_size - take_size });
            }
        }
    }
    best
}

/// `(size, index)` of the partitions in which `from` may give way to `to`: holding `from`, not
/// `to`, crowding no rack.
fn exchangeable(partitions: &[PlanPartition], sizes: &Sizes, racks: &Racks, from: i32, to: i32) -> Vec<(u64, usize)> {
    partitions
        .iter()
        .enumerate()
        .filter(|(_, p)| p.replicas.contains(&from) && !p.replicas.contains(&to))
        .filter(|(_, p)| may_replace(racks, &p.replicas, from, to))
        .map(|(index, p)| (size_of(sizes, p), index))
        .collect()
}

/// Evens the preferred leaders: while the broker first in the most partitions leads two more
/// than the one first in the fewest, a partition led by the former that has the latter as a
/// replica gets the two swapped in its order. Only orders change.
pub fn even_leaders(partitions: &mut [PlanPartition], brokers: &[i32]) {
    let steps_max = partitions.len() * REBALANCE_STEPS_PER_PARTITION_MAX;
    // Counted once, then kept up to date by each swap.
    let mut leaders: BTreeMap<i32, usize> = brokers.iter().map(|b| (*b, 0)).collect();
    for partition in partitions.iter() {
        if let Some(first) = partition.replicas.first() {
            *leaders.entry(*first).or_default() += 1;
        }
    }
    for _ in 0..steps_max {
        let swapped = pairs_by_gap(&leaders).into_iter().find(|&(most, least)| {
            let Some(partition) =
                partitions.iter_mut().find(|p| p.replicas.first() == Some(&most) && p.replicas[1..].contains(&least))
            else {
                return false;
            };
            let position = partition.replicas.iter().position(|r| *r == least).expect("checked above");
            partition.replicas.swap(0, position);
            true
        });
        let Some((most, least)) = swapped else { return };
        *leaders.get_mut(&most).expect("counted above") -= 1;
        *leaders.get_mut(&least).expect("counted above") += 1;
    }
}

/// The `--json` summary.
#[derive(Debug, Serialize)]
struct RebalanceJson<'a> {
    dry_run: bool,
    before: &'a BTreeMap<i32, Load>,
    after: &'a BTreeMap<i32, Load>,
    moves: &'a [PlanPartition],
}

/// The flags of `sluice cluster rebalance`.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Plan only.
    pub dry_run: bool,
    /// One JSON object instead of text.
    pub json: bool,
    /// How long to wait for the moves.
    pub timeout: Duration,
    /// Plan without racks.
    pub disable_rack_aware: bool,
}

/// Runs `sluice cluster rebalance`.
pub async fn run(cluster: Cluster, options: Options) -> anyhow::Result<()> {
    let Options { dry_run, json, timeout, disable_rack_aware } = options;
    let admin = Admin::new(cluster.clone());
    let mut out = std::io::stdout().lock();
    let description = admin.describe_cluster().await?;
    let brokers: Vec<i32> = description.brokers.iter().map(|b| b.id).collect();
    let racks = racks_of(&description.brokers, &brokers, disable_rack_aware)?;
    let live: BTreeSet<i32> = brokers.iter().copied().collect();
    let elsewhere: BTreeSet<i32> = description
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .flat_map(|p| &p.replicas)
        .filter(|replica| !live.contains(replica))
        .copied()
        .collect();
    if !elsewhere.is_empty() {
        anyhow::bail!(
            "broker(s) {elsewhere:?} hold replicas but are not live: start them again, or move their replicas with `sluice cluster decommission`"
        );
    }
    let mut sizes = Sizes::new();
    for topic in &description.topics {
        for (partition, by_broker) in admin.replica_sizes(topic).await? {
            sizes.insert((topic.name.clone(), partition), by_broker.values().copied().max().unwrap_or(0));
        }
    }
    let current = crate::reassign::current_plan(&description.topics);
    let mut plan = rebalance_plan(&description.topics, &sizes, &brokers, &racks)?;
    let (before, after) = (loads(&current.partitions, &sizes, &brokers), loads(&plan.partitions, &sizes, &brokers));
    plan.partitions.retain(|planned| !current.partitions.contains(planned));
    if json {
        let summary = RebalanceJson { dry_run, before: &before, after: &after, moves: &plan.partitions };
        crate::output::write_json_line(&mut out, &summary)?;
    } else {
        write_loads(&mut out, &before, &after)?;
        writeln!(out, "{} partition(s) to change", plan.partitions.len())?;
    }
    if plan.partitions.is_empty() || dry_run {
        if dry_run && !json && !plan.partitions.is_empty() {
            writeln!(out, "{}", serde_json::to_string(&plan)?)?;
        }
        return Ok(());
    }
    let mut report: Box<dyn Write> = if json { Box::new(std::io::sink()) } else { Box::new(std::io::stdout()) };
    crate::reassign::execute(&admin, &plan, &mut report).await?;
    crate::reassign::wait(&admin, &plan, timeout, &mut report).await?;
    let new_leaders: Vec<(String, i32)> = plan
        .partitions
        .iter()
        .filter(|planned| {
            let was = current.partitions.iter().find(|c| c.topic == planned.topic && c.partition == planned.partition);
            was.is_none_or(|was| was.replicas.first() != planned.replicas.first())
        })
        .map(|planned| (planned.topic.clone(), planned.partition))
        .collect();
    if !new_leaders.is_empty() {
        let results = admin.elect_leaders(ElectionType::Preferred, Some(&new_leaders)).await?;
        let failed =
            results.iter().filter(|r| r.error_code != 0 && r.error_code != crate::cluster::ELECTION_NOT_NEEDED);
        for result in failed {
            writeln!(
                report,
                "{}-{}: preferred leader election failed: {} (the controller retries on its own)",
                result.topic,
                result.partition,
                result.message.as_deref().unwrap_or("error code")
            )?;
        }
    }
    writeln!(report, "rebalanced: {} partition(s) changed", plan.partitions.len())?;
    Ok(())
}

fn write_loads(out: &mut impl Write, before: &BTreeMap<i32, Load>, after: &BTreeMap<i32, Load>) -> std::io::Result<()> {
    writeln!(out, "{:<8} {:>17} {:>17} {:>25}", "BROKER", "REPLICAS", "LEADERS", "BYTES")?;
    for (broker, was) in before {
        let will = after.get(broker).cloned().unwrap_or_default();
        writeln!(
            out,
            "{:<8} {:>17} {:>17} {:>25}",
            broker,
            format!("{} -> {}", was.replicas, will.replicas),
            format!("{} -> {}", was.leaders, will.leaders),
            format!("{} -> {}", was.bytes, will.bytes)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reassign::tests::{racks_spanned, six_on_three_racks, topic};

    const MIB: u64 = 1024 * 1024;

    fn spread<T: Copy + Ord + std::ops::Sub<Output = T>>(values: impl Iterator<Item = T> + Clone) -> T {
        values.clone().max().unwrap() - values.min().unwrap()
    }

    #[test]
    fn a_new_broker_gets_replicas_bytes_and_leaders() {
        // Goal: after a fourth broker joins a cluster of three, the plan evens replica counts
        // (within one), narrows the byte spread and evens the preferred leaders (within one),
        // and every partition keeps its replication factor on distinct brokers.
        let topics = [topic("t", &[&[1, 2], &[2, 3], &[3, 1], &[1, 2], &[2, 3], &[3, 1], &[1, 3], &[2, 1]])];
        let sizes: Sizes =
            (0..8).map(|p| (("t".to_string(), p), [900, 10, 500, 40, 300, 70, 200, 5][p as usize])).collect();
        let brokers = [1, 2, 3, 4];
        let before = loads(&crate::reassign::current_plan(&topics).partitions, &sizes, &brokers);
        let plan = rebalance_plan(&topics, &sizes, &brokers, &Racks::new()).unwrap();
        let after = loads(&plan.partitions, &sizes, &brokers);
        assert!(spread(after.values().map(|l| l.replicas)) <= 1, "{after:?}");
        assert!(spread(after.values().map(|l| l.leaders)) <= 1, "{after:?}");
        assert!(
            spread(after.values().map(|l| l.bytes)) < spread(before.values().map(|l| l.bytes)),
            "{before:?} {after:?}"
        );
        for partition in &plan.partitions {
            let distinct: BTreeSet<i32> = partition.replicas.iter().copied().collect();
            assert_eq!(distinct.len(), 2, "{partition:?}");
        }
        assert_eq!(plan, rebalance_plan(&topics, &sizes, &brokers, &Racks::new()).unwrap(), "deterministic");
    }

    #[test]
    fn bytes_even_out_by_swaps_when_the_counts_already_are() {
        // Goal: equal replica counts but all the big partitions on broker 1: swaps move bytes
        // without changing any count, and the spread falls below the largest single size.
        let topics = [topic("t", &[&[1], &[1], &[1], &[2], &[2], &[2]])];
        let sizes: Sizes = [1000, 1000, 1000, 1, 1, 1]
            .iter()
            .enumerate()
            .map(|(p, s)| (("t".to_string(), p as i32), *s * MIB))
            .collect();
        let mut partitions = crate::reassign::current_plan(&topics).partitions;
        even_bytes(&mut partitions, &sizes, &[1, 2], &Racks::new());
        let after = loads(&partitions, &sizes, &[1, 2]);
        assert_eq!((after[&1].replicas, after[&2].replicas), (3, 3));
        assert_eq!((after[&1].bytes, after[&2].bytes), (2001 * MIB, 1002 * MIB), "{after:?}");
    }

    #[test]
    fn byte_exchanges_never_crowd_a_rack() {
        // Goal: broker 1 (rack a) carries the big partitions. Evening the bytes without racks
        // moves or swaps a replica onto a rack that already holds the partition's other one
        // (the control); with racks every exchange keeps the two replicas on two racks, and
        // still narrows the byte gap.
        let racks = six_on_three_racks();
        let brokers = [1, 2, 3, 4, 5, 6];
        let topics = [topic("t", &[&[1, 3], &[1, 5], &[1, 4], &[2, 6], &[3, 5], &[4, 6], &[2, 5], &[6, 3]])];
        let sizes: Sizes = [900, 700, 500, 5, 5, 5, 5, 5]
            .iter()
            .enumerate()
            .map(|(p, s)| (("t".to_string(), p as i32), *s * MIB))
            .collect();
        let current = crate::reassign::current_plan(&topics).partitions;
        let mut unaware = current.clone();
        even_bytes(&mut unaware, &sizes, &brokers, &Racks::new());
        assert!(racks_spanned(&unaware, &racks).contains(&1), "{unaware:?}");
        let mut aware = current.clone();
        even_bytes(&mut aware, &sizes, &brokers, &racks);
        assert_eq!(racks_spanned(&aware, &racks), vec![2; 8], "{aware:?}");
        let bytes =
            |partitions: &[PlanPartition]| spread(loads(partitions, &sizes, &brokers).values().map(|l| l.bytes));
        assert!(bytes(&aware) < bytes(&current), "{aware:?}");
    }

    #[test]
    fn rebalancing_onto_racks_keeps_every_partition_on_every_rack() {
        // Goal: the whole plan (counts, bytes, leaders) over six brokers on three racks, from
        // a topic crowded onto brokers 1, 2 (rack a) and 3: every partition spans the three
        // racks, replica and leader counts are within one.
        let racks = six_on_three_racks();
        let brokers = [1, 2, 3, 4, 5, 6];
        let crowded: Vec<&[i32]> = vec![&[1, 2, 3]; 8];
        let topics = [topic("t", &crowded)];
        let sizes: Sizes = (0..8).map(|p| (("t".to_string(), p), (p as u64 + 1) * 100 * MIB)).collect();
        let plan = rebalance_plan(&topics, &sizes, &brokers, &racks).unwrap();
        assert_eq!(racks_spanned(&plan.partitions, &racks), vec![3; 8], "{plan:?}");
        let after = loads(&plan.partitions, &sizes, &brokers);
        assert!(spread(after.values().map(|l| l.replicas)) <= 1, "{after:?}");
        assert!(spread(after.values().map(|l| l.leaders)) <= 1, "{after:?}");
    }

    #[test]
    fn small_byte_gaps_are_left_alone() {
        // Goal: a gap under REBALANCE_BYTES_GAP_MIN (or under 10% of the mean) moves nothing:
        // a cluster under load would otherwise change a little between two runs and every run
        // would move something.
        let topics = [topic("t", &[&[1], &[1], &[2], &[2]])];
        let small: Sizes =
            [40, 20, 1, 1].iter().enumerate().map(|(p, s)| (("t".to_string(), p as i32), *s * MIB)).collect();
        let close: Sizes =
            [1000, 1000, 950, 950].iter().enumerate().map(|(p, s)| (("t".to_string(), p as i32), *s * MIB)).collect();
        for sizes in [small, close] {
            let mut partitions = crate::reassign::current_plan(&topics).partitions;
            even_bytes(&mut partitions, &sizes, &[1, 2], &Racks::new());
            assert_eq!(partitions, crate::reassign::current_plan(&topics).partitions);
        }
    }

    #[test]
    fn a_balanced_cluster_is_left_alone() {
        // Goal: nothing to gain, nothing planned: rebalancing a balanced cluster is a no-op.
        let topics = [topic("t", &[&[1, 2], &[2, 3], &[3, 1]])];
        let sizes: Sizes = (0..3).map(|p| (("t".to_string(), p), 100)).collect();
        let plan = rebalance_plan(&topics, &sizes, &[1, 2, 3], &Racks::new()).unwrap();
        assert_eq!(plan.partitions, crate::reassign::current_plan(&topics).partitions);
    }

    #[test]
    fn leaders_even_out_by_reordering_only() {
        // Goal: every partition prefers broker 1; reordering alone spreads the leaders and
        // moves no replica.
        let topics = [topic("t", &[&[1, 2, 3], &[1, 2, 3], &[1, 2, 3], &[1, 3, 2], &[1, 3, 2], &[1, 2, 3]])];
        let mut partitions = crate::reassign::current_plan(&topics).partitions;
        even_leaders(&mut partitions, &[1, 2, 3]);
        let leaders = loads(&partitions, &Sizes::new(), &[1, 2, 3]);
        assert_eq!(leaders.values().map(|l| l.leaders).collect::<Vec<_>>(), vec![2, 2, 2]);
        for partition in &partitions {
            let set: BTreeSet<i32> = partition.replicas.iter().copied().collect();
            assert_eq!(set, BTreeSet::from([1, 2, 3]));
        }
    }
}
