//! `sluice topic reassign --generate|--execute|--verify|--cancel` and `sluice cluster
//! decommission`: partition moves with Kafka's `kafka-reassign-partitions` JSON plans.
//!
//! The decisions are pure and tested without a broker: [`generate_plan`] (a balanced plan that
//! moves as few replicas as possible, rack aware when the brokers have racks, see
//! [`crate::racks`]) and [`progress`] (each plan partition's state from the
//! metadata and the moves in progress). The broker does the moving: it adds the new replicas,
//! waits until every target replica is in the ISR, then removes the old ones
//! (`sluice_meta::reassignment`).
//!
//! `--execute --throttle RATE` caps the copy as Kafka's tool does: the dynamic broker configs
//! `leader.replication.throttled.rate` and `follower.replication.throttled.rate` on every
//! broker of the moving partitions, and per topic the replicas whose copy counts
//! ([`throttled_replicas`]); `--verify` removes them once every move is done, `--cancel`
//! at once.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sluice_client::admin::{ConfigChange, OngoingReassignment, ReassignmentChange};
use sluice_client::cluster::TopicInfo;
use sluice_client::{Admin, Cluster};

use crate::args::ReassignArgs;
use crate::racks::{may_replace, on_rack, racks_of, replicas_per_rack_max, Racks};
use crate::Unhealthy;

/// The plan format version Kafka's tool writes and reads.
pub const PLAN_VERSION: u32 = 1;

/// How often `--wait` asks the broker for the moves still in progress, in milliseconds: often
/// enough to report a move soon after it completes, cheap for the broker (one metadata read).
pub const WAIT_POLL_INTERVAL_MS: u64 = 500;

/// A reassignment plan, Kafka's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Always [`PLAN_VERSION`].
    pub version: u32,
    /// The partitions to move and where to.
    pub partitions: Vec<PlanPartition>,
}

/// One partition of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanPartition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Target replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// Kafka's per-replica log directories; Sluice has one log directory per broker, so only
    /// "any" is meaningful. Read and ignored, never written.
    #[serde(default, skip_serializing)]
    pub log_dirs: Option<Vec<String>>,
}

/// Where one plan partition stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The partition's replicas are the plan's.
    Done,
    /// The move is in progress.
    Moving {
        /// Replicas still copying.
        adding: Vec<i32>,
        /// Replicas removed when the move completes.
        removing: Vec<i32>,
    },
    /// No move in progress and the replicas differ from the plan's (not started, cancelled,
    /// or replaced by another move).
    NotDone {
        /// The partition's replicas now.
        current: Vec<i32>,
    },
    /// The topic or partition does not exist.
    Unknown,
}

/// A balanced plan for `topics` over `brokers`, keeping each partition's replica count.
///
/// Replicas already on one of `brokers` stay; replicas elsewhere go to the least-loaded brokers
/// not already in the partition (ties: the lowest id). Then, unless `keep_all` (decommission:
/// move only what must move), one replica at a time moves from the most-loaded broker to the
/// least-loaded one until their counts differ by at most one — a follower rather than a
/// leader where the partition allows it, into the same place in the order. So a plan moves few
/// replicas, and a leader that stays remains the preferred one. Pure and deterministic.
///
/// With `racks` (see [`crate::racks`]), a replica stays only while its rack holds no more of
/// the partition than [`replicas_per_rack_max`] allows (unless `keep_all`), a new replica goes
/// to the least-loaded broker on the rack holding the fewest of the partition, and a move that
/// would crowd a rack is skipped for the next pair of brokers whose counts differ by two or more.
pub fn generate_plan(topics: &[TopicInfo], brokers: &[i32], racks: &Racks, keep_all: bool) -> anyhow::Result<Plan> {
    let mut brokers = brokers.to_vec();
    brokers.sort_unstable();
    brokers.dedup();
    if brokers.is_empty() {
        anyhow::bail!("no brokers to place replicas on");
    }
    let mut load: BTreeMap<i32, usize> = brokers.iter().map(|b| (*b, 0)).collect();
    // Pass 1: what stays.
    let mut kept: Vec<(String, i32, usize, Vec<i32>)> = Vec::new();
    for topic in topics {
        for partition in &topic.partitions {
            let factor = partition.replicas.len();
            if factor > brokers.len() {
                anyhow::bail!(
                    "{}-{} has {factor} replicas but only {} broker(s) are given",
                    topic.name,
                    partition.partition,
                    brokers.len()
                );
            }
            let per_rack_max = if keep_all { usize::MAX } else { replicas_per_rack_max(racks, &brokers, factor) };
            let mut stay = Vec::with_capacity(factor);
            for replica in &partition.replicas {
                if on_rack(racks, &stay, *replica) >= per_rack_max {
                    continue;
                }
                if let Some(count) = load.get_mut(replica) {
                    *count += 1;
                    stay.push(*replica);
                }
            }
            kept.push((topic.name.clone(), partition.partition, factor, stay));
        }
    }
    // Pass 2: fill each partition from the least-loaded brokers (on the emptiest rack).
    let mut partitions = Vec::with_capacity(kept.len());
    for (topic, partition, factor, mut replicas) in kept {
        while replicas.len() < factor {
            let next = *load
                .iter()
                .filter(|(id, _)| !replicas.contains(id))
                .min_by_key(|(id, count)| (on_rack(racks, &replicas, **id), **count, **id))
                .map(|(id, _)| id)
                .expect("factor <= brokers (checked above)");
            *load.get_mut(&next).expect("from the load map") += 1;
            replicas.push(next);
        }
        partitions.push(PlanPartition { topic, partition, replicas, log_dirs: None });
    }
    if !keep_all {
        even_out(&mut partitions, &mut load, racks);
    }
    Ok(Plan { version: PLAN_VERSION, partitions })
}

/// Moves replicas from the most- to the least-loaded broker until their counts differ by at
/// most one. Every move lowers the sum of squared loads, so this ends; the cap on moves (the
/// replica count) is a second guarantee.
fn even_out(partitions: &mut [PlanPartition], load: &mut BTreeMap<i32, usize>, racks: &Racks) {
    let moves_max: usize = partitions.iter().map(|p| p.replicas.len()).sum();
    for _ in 0..moves_max {
        let Some((index, from, to)) = next_move(partitions, load, racks) else { return };
        replace(&mut partitions[index], from, to);
        *load.get_mut(&from).expect("from the load map") -= 1;
        *load.get_mut(&to).expect("from the load map") += 1;
    }
}

/// The next move of [`even_out`], `(partition index, from, to)`: from the most-loaded broker
/// (the highest id of those) to the least-loaded one (the highest id too); when racks forbid
/// every such move, from the first pair of [`pairs_by_gap`] that allows one. Without racks the
/// first pair always has a partition to move (the most-loaded broker holds two more
/// partitions than the least-loaded one), so racks alone reach the fallback.
fn next_move(partitions: &[PlanPartition], load: &BTreeMap<i32, usize>, racks: &Racks) -> Option<(usize, i32, i32)> {
    let (&most, &most_count) = load.iter().max_by_key(|(id, count)| (**count, **id))?;
    let (&least, &least_count) = load.iter().min_by_key(|(id, count)| (**count, -**id))?;
    if most_count <= least_count + 1 {
        return None;
    }
    if let Some(index) = movable(partitions, racks, most, least) {
        return Some((index, most, least));
    }
    pairs_by_gap(load)
        .into_iter()
        .find_map(|(from, to)| movable(partitions, racks, from, to).map(|index| (index, from, to)))
}

/// The partition in which `from` may give way to `to`: the first where `from` follows, else
/// the first where it leads; never one that holds `to` already or whose racks would crowd.
fn movable(partitions: &[PlanPartition], racks: &Racks, from: i32, to: i32) -> Option<usize> {
    let allowed = |p: &PlanPartition| !p.replicas.contains(&to) && may_replace(racks, &p.replicas, from, to);
    partitions
        .iter()
        .position(|p| p.replicas.iter().skip(1).any(|r| *r == from) && allowed(p))
        .or_else(|| partitions.iter().position(|p| p.replicas.contains(&from) && allowed(p)))
}

/// Pairs (more, fewer) of brokers whose counts differ by two or more, widest gap first (ties:
/// the lower ids first).
pub(crate) fn pairs_by_gap(counts: &BTreeMap<i32, usize>) -> Vec<(i32, i32)> {
    let mut pairs: Vec<(usize, i32, i32)> = Vec::new();
    for (&more, &more_count) in counts {
        for (&fewer, &fewer_count) in counts {
            if more_count >= fewer_count + 2 {
                pairs.push((more_count - fewer_count, more, fewer));
            }
        }
    }
    pairs.sort_by_key(|(gap, more, fewer)| (std::cmp::Reverse(*gap), *more, *fewer));
    pairs.into_iter().map(|(_, more, fewer)| (more, fewer)).collect()
}

/// Puts `to` in the place of `from` in `partition`'s replicas (the order stays).
pub(crate) fn replace(partition: &mut PlanPartition, from: i32, to: i32) {
    for replica in partition.replicas.iter_mut().filter(|r| **r == from) {
        *replica = to;
    }
}

/// The plan of the current assignment of `topics` (what `--generate` prints to roll back to).
pub fn current_plan(topics: &[TopicInfo]) -> Plan {
    let partitions = topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|p| PlanPartition {
                topic: topic.name.clone(),
                partition: p.partition,
                replicas: p.replicas.clone(),
                log_dirs: None,
            })
        })
        .collect();
    Plan { version: PLAN_VERSION, partitions }
}

/// Each plan partition's state, from the topics' metadata and the moves in progress. Pure.
pub fn progress(plan: &Plan, topics: &BTreeMap<String, TopicInfo>, moving: &[OngoingReassignment]) -> Vec<Progress> {
    plan.partitions
        .iter()
        .map(|planned| {
            if let Some(ongoing) = moving.iter().find(|m| m.topic == planned.topic && m.partition == planned.partition)
            {
                return Progress::Moving { adding: ongoing.adding.clone(), removing: ongoing.removing.clone() };
            }
            let current = topics
                .get(&planned.topic)
                .and_then(|topic| topic.partitions.iter().find(|p| p.partition == planned.partition));
            match current {
                None => Progress::Unknown,
                Some(current) if current.replicas == planned.replicas => Progress::Done,
                Some(current) => Progress::NotDone { current: current.replicas.clone() },
            }
        })
        .collect()
}

/// Runs `sluice topic reassign`.
pub async fn run(cluster: Cluster, args: ReassignArgs) -> anyhow::Result<()> {
    let admin = Admin::new(cluster.clone());
    let mut out = std::io::stdout().lock();
    if args.generate {
        let topics = describe_topics(&cluster, &args.topics).await?;
        let live = admin.describe_cluster().await?.brokers;
        let racks = racks_of(&live, &args.brokers, args.disable_rack_aware)?;
        let plan = generate_plan(&topics, &args.brokers, &racks, false)?;
        eprintln!("Current partition replica assignment (save it to roll back):");
        eprintln!("{}", serde_json::to_string(&current_plan(&topics))?);
        writeln!(out, "{}", serde_json::to_string(&plan)?)?;
        return Ok(());
    }
    let path = args.plan.as_ref().expect("clap requires --plan with --execute, --verify and --cancel");
    let plan = read_plan(path)?;
    let timeout = Duration::from_secs(args.timeout);
    if args.execute {
        if let Some(rate) = args.throttle {
            set_throttle(&cluster, &admin, &plan, rate, &mut out).await?;
        }
        execute(&admin, &plan, &mut out).await?;
        if args.wait {
            wait(&admin, &plan, timeout, &mut out).await?;
        }
        Ok(())
    } else if args.verify {
        if args.wait {
            wait(&admin, &plan, timeout, &mut out).await?;
        }
        verify(&admin, &plan, &mut out).await?;
        clear_throttle(&cluster, &admin, &plan, &mut out).await
    } else {
        cancel(&admin, &plan, &mut out).await?;
        clear_throttle(&cluster, &admin, &plan, &mut out).await
    }
}

/// Kafka's leader and follower throttled-replica lists of each topic of `plan` that has a
/// partition to move: the leader list names the partition's current replicas (any of them may
/// lead and send the copy), the follower list the replicas being added. Pure; topics with
/// nothing to move are left out.
pub fn throttled_replicas(plan: &Plan, topics: &BTreeMap<String, TopicInfo>) -> BTreeMap<String, (String, String)> {
    let mut lists: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for planned in &plan.partitions {
        let Some(current) = topics
            .get(&planned.topic)
            .and_then(|topic| topic.partitions.iter().find(|p| p.partition == planned.partition))
        else {
            continue;
        };
        if current.replicas == planned.replicas {
            continue;
        }
        let (leader, follower) = lists.entry(planned.topic.clone()).or_default();
        let p = planned.partition;
        leader.extend(current.replicas.iter().map(|b| format!("{p}:{b}")));
        follower.extend(planned.replicas.iter().filter(|b| !current.replicas.contains(b)).map(|b| format!("{p}:{b}")));
    }
    lists.into_iter().map(|(topic, (leader, follower))| (topic, (leader.join(","), follower.join(",")))).collect()
}

/// Kafka's names of the replication throttle configs.
const LEADER_RATE: &str = "leader.replication.throttled.rate";
const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// `--throttle`: the rates on every broker of the moving partitions (now and after), the
/// replica lists on their topics.
async fn set_throttle(
    cluster: &Cluster,
    admin: &Admin,
    plan: &Plan,
    rate: u64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut names: Vec<String> = plan.partitions.iter().map(|p| p.topic.clone()).collect();
    names.sort();
    names.dedup();
    let topics: BTreeMap<String, TopicInfo> =
        describe_topics(cluster, &names).await?.into_iter().map(|t| (t.name.clone(), t)).collect();
    let lists = throttled_replicas(plan, &topics);
    let mut brokers: Vec<i32> = Vec::new();
    for planned in &plan.partitions {
        let current =
            topics.get(&planned.topic).and_then(|t| t.partitions.iter().find(|p| p.partition == planned.partition));
        brokers.extend(planned.replicas.iter().chain(current.map(|c| c.replicas.iter()).into_iter().flatten()));
    }
    brokers.sort_unstable();
    brokers.dedup();
    let rates = [
        ConfigChange::Set(LEADER_RATE.into(), rate.to_string()),
        ConfigChange::Set(FOLLOWER_RATE.into(), rate.to_string()),
    ];
    for broker in &brokers {
        admin.alter_broker_configs(Some(*broker), &rates).await?;
    }
    for (topic, (leader, follower)) in &lists {
        let changes = [
            ConfigChange::Set(LEADER_REPLICAS.into(), leader.clone()),
            ConfigChange::Set(FOLLOWER_REPLICAS.into(), follower.clone()),
        ];
        admin.alter_configs(topic, &changes).await?;
    }
    writeln!(out, "throttle: {rate} B/s on brokers {brokers:?} for the copies of {} topic(s)", lists.len())?;
    Ok(())
}

/// Removes the throttle of `--throttle` (Kafka's tool does this on `--verify` once every move
/// is done, and on `--cancel`): the rates on every broker, the lists on the plan's topics.
async fn clear_throttle(cluster: &Cluster, admin: &Admin, plan: &Plan, out: &mut impl Write) -> anyhow::Result<()> {
    let rates = [ConfigChange::Delete(LEADER_RATE.into()), ConfigChange::Delete(FOLLOWER_RATE.into())];
    let brokers: Vec<i32> = admin.describe_cluster().await?.brokers.iter().map(|b| b.id).collect();
    for broker in &brokers {
        admin.alter_broker_configs(Some(*broker), &rates).await?;
    }
    let mut names: Vec<&str> = plan.partitions.iter().map(|p| p.topic.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let lists = [ConfigChange::Delete(LEADER_REPLICAS.into()), ConfigChange::Delete(FOLLOWER_REPLICAS.into())];
    for topic in names {
        if cluster.topic(topic).await.is_ok() {
            admin.alter_configs(topic, &lists).await?;
        }
    }
    writeln!(out, "throttle removed")?;
    Ok(())
}

/// Runs `sluice cluster decommission`.
pub async fn decommission(
    cluster: Cluster,
    broker: i32,
    timeout: Duration,
    disable_rack_aware: bool,
) -> anyhow::Result<()> {
    let admin = Admin::new(cluster.clone());
    let mut out = std::io::stdout().lock();
    let description = admin.describe_cluster().await?;
    let others: Vec<i32> = description.brokers.iter().map(|b| b.id).filter(|id| *id != broker).collect();
    let affected: Vec<TopicInfo> = description
        .topics
        .iter()
        .filter(|topic| topic.partitions.iter().any(|p| p.replicas.contains(&broker)))
        .cloned()
        .collect();
    if affected.is_empty() {
        writeln!(out, "broker {broker} holds no replicas")?;
        return Ok(());
    }
    // Every partition counts for the load; only those on `broker` move.
    let racks = racks_of(&description.brokers, &others, disable_rack_aware)?;
    let mut plan = generate_plan(&description.topics, &others, &racks, true)?;
    plan.partitions.retain(|planned| {
        affected.iter().any(|topic| {
            topic.name == planned.topic
                && topic.partitions.iter().any(|p| p.partition == planned.partition && p.replicas.contains(&broker))
        })
    });
    writeln!(out, "moving {} partition(s) off broker {broker} onto {others:?}", plan.partitions.len())?;
    execute(&admin, &plan, &mut out).await?;
    wait(&admin, &plan, timeout, &mut out).await?;
    let left = replicas_on(&admin, broker).await?;
    if left > 0 {
        writeln!(out, "broker {broker} still holds {left} replica(s) (new partitions placed meanwhile?)")?;
        return Err(Unhealthy.into());
    }
    writeln!(out, "broker {broker} holds no replicas")?;
    Ok(())
}

async fn replicas_on(admin: &Admin, broker: i32) -> anyhow::Result<usize> {
    let description = admin.describe_cluster().await?;
    Ok(description.topics.iter().flat_map(|t| &t.partitions).filter(|p| p.replicas.contains(&broker)).count())
}

async fn describe_topics(cluster: &Cluster, names: &[String]) -> anyhow::Result<Vec<TopicInfo>> {
    let mut topics = Vec::with_capacity(names.len());
    for name in names {
        topics.push(cluster.topic(name).await.with_context(|| format!("topic {name}"))?);
    }
    Ok(topics)
}

fn read_plan(path: &std::path::Path) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let plan: Plan = serde_json::from_str(&text).with_context(|| format!("parsing plan {}", path.display()))?;
    if plan.version != PLAN_VERSION {
        anyhow::bail!("plan version {} is not supported (only {PLAN_VERSION})", plan.version);
    }
    Ok(plan)
}

pub(crate) async fn execute(admin: &Admin, plan: &Plan, out: &mut impl Write) -> anyhow::Result<()> {
    let changes: Vec<ReassignmentChange> = plan
        .partitions
        .iter()
        .map(|p| ReassignmentChange {
            topic: p.topic.clone(),
            partition: p.partition,
            replicas: Some(p.replicas.clone()),
        })
        .collect();
    report(admin, &changes, "started", out).await
}

async fn cancel(admin: &Admin, plan: &Plan, out: &mut impl Write) -> anyhow::Result<()> {
    let changes: Vec<ReassignmentChange> = plan
        .partitions
        .iter()
        .map(|p| ReassignmentChange { topic: p.topic.clone(), partition: p.partition, replicas: None })
        .collect();
    report(admin, &changes, "cancelled", out).await
}

/// Sends `changes`, prints one line per partition; an error if any was refused.
async fn report(admin: &Admin, changes: &[ReassignmentChange], done: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let results = admin.alter_partition_reassignments(changes).await?;
    let mut refused = 0;
    for result in &results {
        if result.error_code == 0 {
            writeln!(out, "{}-{}: {done}", result.topic, result.partition)?;
        } else {
            refused += 1;
            let message = result.message.as_deref().unwrap_or("");
            writeln!(out, "{}-{}: refused (error {}) {message}", result.topic, result.partition, result.error_code)?;
        }
    }
    if refused > 0 {
        anyhow::bail!("{refused} of {} partition(s) refused", results.len());
    }
    Ok(())
}

/// Each plan partition's [`Progress`] now. The metadata is asked for afresh (not the client's
/// cache, which a `--wait` would otherwise read from before the moves finished).
async fn snapshot(admin: &Admin, plan: &Plan) -> anyhow::Result<Vec<Progress>> {
    let keys: Vec<(String, i32)> = plan.partitions.iter().map(|p| (p.topic.clone(), p.partition)).collect();
    let moving = admin.list_partition_reassignments(Some(&keys)).await?;
    let mut names: Vec<String> = plan.partitions.iter().map(|p| p.topic.clone()).collect();
    names.dedup();
    let mut topics = BTreeMap::new();
    for name in names {
        if let Ok(topic) = admin.describe_topic(&name).await {
            topics.insert(name, topic);
        }
    }
    Ok(progress(plan, &topics, &moving))
}

async fn verify(admin: &Admin, plan: &Plan, out: &mut impl Write) -> anyhow::Result<()> {
    let states = snapshot(admin, plan).await?;
    let mut unfinished = 0;
    for (planned, state) in plan.partitions.iter().zip(&states) {
        let name = format!("{}-{}", planned.topic, planned.partition);
        match state {
            Progress::Done => writeln!(out, "{name}: done, replicas {:?}", planned.replicas)?,
            Progress::Moving { adding, removing } => {
                unfinished += 1;
                writeln!(out, "{name}: {}", moving_text(&planned.replicas, adding, removing))?
            }
            Progress::NotDone { current } => {
                unfinished += 1;
                writeln!(out, "{name}: not moving, replicas {current:?} instead of {:?}", planned.replicas)?
            }
            Progress::Unknown => {
                unfinished += 1;
                writeln!(out, "{name}: no such partition")?
            }
        }
    }
    if unfinished > 0 {
        writeln!(out, "{unfinished} of {} partition(s) not done", states.len())?;
        return Err(Unhealthy.into());
    }
    Ok(())
}

/// `moving to [..], adding [..], removing [..]`: a move in progress, as `--verify` and `sluice
/// cluster status` show it.
pub(crate) fn moving_text(target: &[i32], adding: &[i32], removing: &[i32]) -> String {
    format!("moving to {target:?}, adding {adding:?}, removing {removing:?}")
}

/// Polls until no partition of `plan` is moving, printing each one as it finishes.
pub(crate) async fn wait(admin: &Admin, plan: &Plan, timeout: Duration, out: &mut impl Write) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut reported = vec![false; plan.partitions.len()];
    loop {
        let states = snapshot(admin, plan).await?;
        let mut moving = 0;
        for ((planned, state), reported) in plan.partitions.iter().zip(&states).zip(reported.iter_mut()) {
            match state {
                Progress::Moving { .. } => moving += 1,
                _ if !*reported => {
                    *reported = true;
                    let elapsed = started.elapsed().as_secs_f64();
                    writeln!(out, "{}-{}: finished after {elapsed:.1} s", planned.topic, planned.partition)?;
                }
                _ => {}
            }
        }
        if moving == 0 {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            writeln!(out, "{moving} partition(s) still moving after {} s", timeout.as_secs())?;
            return Err(Unhealthy.into());
        }
        tokio::time::sleep(Duration::from_millis(WAIT_POLL_INTERVAL_MS)).await;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use sluice_client::cluster::PartitionInfo;

    use super::*;

    /// A topic whose partition `i` has the replicas `assignments[i]`, all in sync, the first
    /// leading (shared with the rebalance tests).
    pub(crate) fn topic(name: &str, assignments: &[&[i32]]) -> TopicInfo {
        TopicInfo {
            name: name.to_string(),
            is_internal: false,
            partitions: assignments
                .iter()
                .enumerate()
                .map(|(index, replicas)| PartitionInfo {
                    partition: index as i32,
                    leader: replicas[0],
                    leader_epoch: 0,
                    replicas: replicas.to_vec(),
                    isr: replicas.to_vec(),
                    offline_replicas: Vec::new(),
                    error_code: 0,
                })
                .collect(),
        }
    }

    fn loads(plan: &Plan) -> BTreeMap<i32, usize> {
        let mut counts = BTreeMap::new();
        for replica in plan.partitions.iter().flat_map(|p| &p.replicas) {
            *counts.entry(*replica).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn a_new_broker_gets_its_share_and_the_rest_stays() {
        let topics = [topic("t", &[&[1, 2], &[2, 1], &[1, 2]])];
        let plan = generate_plan(&topics, &[1, 2, 3], &Racks::new(), false).unwrap();
        assert_eq!(loads(&plan), BTreeMap::from([(1, 2), (2, 2), (3, 2)]));
        let moved: usize = plan
            .partitions
            .iter()
            .zip(&topics[0].partitions)
            .map(|(planned, current)| planned.replicas.iter().filter(|r| !current.replicas.contains(r)).count())
            .sum();
        assert_eq!(moved, 2, "only broker 3's share moves");
        let leaders: Vec<i32> = plan.partitions.iter().map(|p| p.replicas[0]).collect();
        assert_eq!(leaders, vec![1, 2, 1], "followers move, leaders stay");
    }

    #[test]
    fn growing_from_three_to_four_brokers_evens_the_counts() {
        let topics =
            [topic("a", &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2]]), topic("b", &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2]])];
        let plan = generate_plan(&topics, &[1, 2, 3, 4], &Racks::new(), false).unwrap();
        let counts: Vec<usize> = loads(&plan).into_values().collect();
        assert!(counts.iter().all(|c| (4..=5).contains(c)), "{counts:?}");
        for partition in &plan.partitions {
            let mut distinct = partition.replicas.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), 3, "{partition:?}");
        }
        assert_eq!(plan, generate_plan(&topics, &[4, 3, 2, 1], &Racks::new(), false).unwrap(), "deterministic");
    }

    #[test]
    fn moving_off_a_broker_keeps_everything_else() {
        let topics = [topic("t", &[&[1, 2], &[2, 3]])];
        let plan = generate_plan(&topics, &[2, 3], &Racks::new(), false).unwrap();
        assert_eq!(plan.partitions[0].replicas, vec![2, 3]);
        assert_eq!(plan.partitions[1].replicas, vec![2, 3]);
        let decommission = generate_plan(&topics, &[2, 3, 4], &Racks::new(), true).unwrap();
        assert_eq!(decommission.partitions[0].replicas, vec![2, 4], "1 leaves for the least-loaded broker");
        assert_eq!(decommission.partitions[1].replicas, vec![2, 3], "untouched");
    }

    /// How many distinct racks each partition's replicas span (shared with the rebalance tests).
    pub(crate) fn racks_spanned(partitions: &[PlanPartition], racks: &Racks) -> Vec<usize> {
        partitions
            .iter()
            .map(|p| p.replicas.iter().map(|r| &racks[r]).collect::<std::collections::BTreeSet<_>>().len())
            .collect()
    }

    /// Brokers 1, 2 on rack a, 3, 4 on b, 5, 6 on c (shared with the rebalance tests).
    pub(crate) fn six_on_three_racks() -> Racks {
        crate::racks::tests::layout(&[("a", &[1, 2]), ("b", &[3, 4]), ("c", &[5, 6])])
    }

    #[test]
    fn on_three_racks_every_partition_spans_them_all() {
        // Goal: 12 partitions at RF 3 crowded onto brokers 1, 2 (both rack a) and 3 are spread
        // over six brokers on three racks so that every partition has one replica per rack and
        // the counts are within one; the leader (broker 1) stays first. The same plan without
        // racks leaves rack a holding two replicas of some partitions (the control).
        let racks = six_on_three_racks();
        let crowded: Vec<&[i32]> = vec![&[1, 2, 3]; 12];
        let topics = [topic("t", &crowded)];
        let brokers = [1, 2, 3, 4, 5, 6];
        let plan = generate_plan(&topics, &brokers, &racks, false).unwrap();
        assert_eq!(racks_spanned(&plan.partitions, &racks), vec![3; 12], "{plan:?}");
        let counts: Vec<usize> = loads(&plan).into_values().collect();
        assert_eq!(counts, vec![6; 6], "{counts:?}");
        let unaware = generate_plan(&topics, &brokers, &Racks::new(), false).unwrap();
        assert!(racks_spanned(&unaware.partitions, &racks).iter().any(|spanned| *spanned < 3), "{unaware:?}");
        assert_eq!(plan, generate_plan(&topics, &[6, 5, 4, 3, 2, 1], &racks, false).unwrap(), "deterministic");
    }

    #[test]
    fn a_new_broker_never_shares_a_rack_within_a_partition() {
        // Goal: broker 7 joins rack a of a balanced six-broker, three-rack cluster: it takes
        // replicas only from its rack mates (a move from another rack would put two replicas
        // of a partition on rack a), and rack a's three brokers end within one of each other.
        let racks = {
            let mut racks = six_on_three_racks();
            racks.insert(7, "a".to_string());
            racks
        };
        let cycle: [&[i32]; 6] = [&[1, 3, 5], &[2, 4, 6], &[3, 5, 1], &[4, 6, 2], &[5, 1, 3], &[6, 2, 4]];
        let assignments = cycle.repeat(2);
        let topics = [topic("t", &assignments)];
        let plan = generate_plan(&topics, &[1, 2, 3, 4, 5, 6, 7], &racks, false).unwrap();
        assert_eq!(racks_spanned(&plan.partitions, &racks), vec![3; 12], "{plan:?}");
        let counts = loads(&plan);
        assert_eq!([counts[&1], counts[&2], counts[&7]], [4, 4, 4], "{counts:?}");
        assert!(plan.partitions.iter().all(|p| p.replicas.iter().filter(|r| racks[r] != "a").count() == 2));
    }

    #[test]
    fn fewer_racks_than_replicas_spread_as_evenly_as_possible() {
        // Goal: RF 3 over two racks: every partition gets two replicas on one rack and one on
        // the other (never three on one), even when it started with all three on rack a.
        let racks = crate::racks::tests::layout(&[("a", &[1, 2, 3]), ("b", &[4, 5, 6])]);
        let crowded: Vec<&[i32]> = vec![&[1, 2, 3]; 6];
        let plan = generate_plan(&[topic("t", &crowded)], &[1, 2, 3, 4, 5, 6], &racks, false).unwrap();
        assert_eq!(racks_spanned(&plan.partitions, &racks), vec![2; 6], "{plan:?}");
        let counts: Vec<usize> = loads(&plan).into_values().collect();
        assert_eq!(counts, vec![3; 6], "{counts:?}");
    }

    #[test]
    fn decommission_refills_from_the_rack_that_lost_a_replica() {
        // Goal: broker 5 (rack c) leaves: its replica goes to broker 6, rack c's other broker,
        // although broker 2 is as loaded and has a lower id (where the plan without racks
        // puts it); the other partition is untouched.
        let racks = six_on_three_racks();
        let topics = [topic("t", &[&[1, 3, 5], &[6, 2, 4]])];
        let others = [1, 2, 3, 4, 6];
        let plan = generate_plan(&topics, &others, &racks, true).unwrap();
        assert_eq!(plan.partitions[0].replicas, vec![1, 3, 6]);
        assert_eq!(plan.partitions[1].replicas, vec![6, 2, 4]);
        let unaware = generate_plan(&topics, &others, &Racks::new(), true).unwrap();
        assert_eq!(unaware.partitions[0].replicas, vec![1, 3, 2]);
    }

    #[test]
    fn too_few_brokers_for_the_replication_factor_is_refused() {
        let topics = [topic("t", &[&[1, 2, 3]])];
        assert!(generate_plan(&topics, &[1, 2], &Racks::new(), false).is_err());
        assert!(generate_plan(&topics, &[], &Racks::new(), false).is_err());
    }

    #[test]
    fn plans_are_kafkas_json() {
        let text =
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3],"log_dirs":["any","any"]}]}"#;
        let plan: Plan = serde_json::from_str(text).unwrap();
        assert_eq!(plan.partitions[0].replicas, vec![2, 3]);
        assert_eq!(
            serde_json::to_string(&plan).unwrap(),
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3]}]}"#
        );
    }

    // Goal: Kafka's lists: the current replicas of a moving partition on the leader side, the
    // added ones on the follower side; a partition already in place adds nothing.
    #[test]
    fn throttled_replicas_name_the_current_and_the_added_replicas() {
        let topics: BTreeMap<String, TopicInfo> =
            [("t".to_string(), topic("t", &[&[1, 2], &[2, 3]]))].into_iter().collect();
        let plan = Plan {
            version: PLAN_VERSION,
            partitions: vec![
                PlanPartition { topic: "t".into(), partition: 0, replicas: vec![1, 4], log_dirs: None },
                PlanPartition { topic: "t".into(), partition: 1, replicas: vec![2, 3], log_dirs: None },
                PlanPartition { topic: "gone".into(), partition: 0, replicas: vec![1], log_dirs: None },
            ],
        };
        let lists = throttled_replicas(&plan, &topics);
        assert_eq!(lists, [("t".to_string(), ("0:1,0:2".to_string(), "0:4".to_string()))].into_iter().collect());
    }

    #[test]
    fn progress_reads_the_moves_and_the_metadata() {
        let plan = Plan {
            version: 1,
            partitions: (0..4)
                .map(|partition| PlanPartition { topic: "t".into(), partition, replicas: vec![2, 3], log_dirs: None })
                .collect(),
        };
        let topics = BTreeMap::from([("t".to_string(), topic("t", &[&[2, 3], &[2, 3, 1], &[1, 2]]))]);
        let moving = vec![OngoingReassignment {
            topic: "t".into(),
            partition: 1,
            replicas: vec![2, 3, 1],
            adding: vec![3],
            removing: vec![1],
        }];
        assert_eq!(
            progress(&plan, &topics, &moving),
            vec![
                Progress::Done,
                Progress::Moving { adding: vec![3], removing: vec![1] },
                Progress::NotDone { current: vec![1, 2] },
                Progress::Unknown,
            ]
        );
    }
}
