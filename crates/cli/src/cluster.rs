//! `sluice cluster status|health|elect-leaders|quorum|add-voter|remove-voter`: brokers,
//! controller, the partitions being moved (with the adding replicas that caught up, decided by
//! the pure [`moves`]), partition leaders and offline replicas (replicas on a broker that is
//! down, or that failed to open there); a healthy/unhealthy verdict with its reasons, decided by the pure
//! [`health_problems`]; Kafka's ElectLeaders, one line per partition; and the metadata quorum
//! (KIP-853's DescribeQuorum, AddRaftVoter, RemoveRaftVoter). `decommission` is in
//! [`crate::reassign`], `rebalance` in [`crate::rebalance`].

use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use sluice_client::admin::{ClusterDescription, ElectionType, OngoingReassignment};
use sluice_client::{Admin, ClientConfig, Cluster, QuorumInfo, QuorumMember};

use crate::args::{ClusterCommand, ElectionKind};
use crate::output::write_json_line;
use crate::Unhealthy;

/// Kafka's ELECTION_NOT_NEEDED.
pub(crate) const ELECTION_NOT_NEEDED: i16 = 84;

/// Runs a cluster command.
pub async fn run(config: ClientConfig, command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Status { json } => {
            let admin = Admin::new(crate::connect(config).await?);
            let description = admin.describe_cluster().await?;
            let ongoing = admin.list_partition_reassignments(None).await?;
            let moving = moves(&description, &ongoing);
            let mut out = std::io::stdout().lock();
            match json {
                true => write_json_line(&mut out, &status_json(&description, moving))?,
                false => status_text(&mut out, &description, &moving)?,
            }
            Ok(())
        }
        ClusterCommand::Health { watch, exit_when_healthy, json } => {
            health(config, watch.map(Duration::from_secs), exit_when_healthy, json).await
        }
        ClusterCommand::Rebalance { dry_run, json, timeout, disable_rack_aware } => {
            let cluster = crate::connect(config).await?;
            let options =
                crate::rebalance::Options { dry_run, json, timeout: Duration::from_secs(timeout), disable_rack_aware };
            crate::rebalance::run(cluster, options).await
        }
        ClusterCommand::Decommission { id, timeout, keep_vote, disable_rack_aware } => {
            let cluster = crate::connect(config).await?;
            crate::reassign::decommission(cluster.clone(), id, Duration::from_secs(timeout), disable_rack_aware)
                .await?;
            match keep_vote {
                true => Ok(()),
                false => remove_vote_if_voter(&Admin::new(cluster), id).await,
            }
        }
        ClusterCommand::ElectLeaders { kind, topic, partition } => {
            elect_leaders(crate::connect(config).await?, kind, topic, partition).await
        }
        ClusterCommand::Quorum { json } => {
            let quorum = Admin::new(crate::connect(config).await?).describe_quorum().await?;
            let mut out = std::io::stdout().lock();
            match json {
                true => write_json_line(&mut out, &quorum_json(&quorum))?,
                false => quorum_text(&mut out, &quorum)?,
            }
            Ok(())
        }
        ClusterCommand::AddVoter { id } => {
            Admin::new(crate::connect(config).await?).add_raft_voter(id, None).await?;
            writeln!(std::io::stdout().lock(), "broker {id} is a metadata voter")?;
            Ok(())
        }
        ClusterCommand::RemoveVoter { id } => {
            Admin::new(crate::connect(config).await?).remove_raft_voter(id).await?;
            writeln!(
                std::io::stdout().lock(),
                "broker {id} is no longer a metadata voter (it keeps serving as an observer)"
            )?;
            Ok(())
        }
    }
}

/// The last step of `decommission`: a broker that is a metadata voter loses its vote (it stays
/// an observer until stopped), so stopping it afterwards does not shrink the quorum's margin.
/// A broker that is no voter is left alone.
async fn remove_vote_if_voter(admin: &Admin, id: i32) -> anyhow::Result<()> {
    let quorum = admin.describe_quorum().await?;
    let mut out = std::io::stdout().lock();
    if !quorum.members.iter().any(|member| member.node_id == id && member.voter) {
        writeln!(out, "broker {id} has no metadata vote: it can be stopped")?;
        return Ok(());
    }
    admin.remove_raft_voter(id).await?;
    writeln!(out, "broker {id} is no longer a metadata voter: it can be stopped")?;
    Ok(())
}

#[derive(Serialize)]
struct QuorumJson<'a> {
    leader: i32,
    term: i32,
    high_watermark: i64,
    members: Vec<QuorumMemberJson<'a>>,
}

#[derive(Serialize)]
struct QuorumMemberJson<'a> {
    id: i32,
    role: &'static str,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    endpoint: Option<&'a str>,
}

fn member_role(quorum: &QuorumInfo, member: &QuorumMember) -> &'static str {
    match (member.voter, member.node_id == quorum.leader_id) {
        (true, true) => "leader",
        (true, false) => "voter",
        (false, _) => "observer",
    }
}

fn quorum_json(quorum: &QuorumInfo) -> QuorumJson<'_> {
    QuorumJson {
        leader: quorum.leader_id,
        term: quorum.leader_epoch,
        high_watermark: quorum.high_watermark,
        members: quorum
            .members
            .iter()
            .map(|member| QuorumMemberJson {
                id: member.node_id,
                role: member_role(quorum, member),
                log_end_offset: (member.log_end_offset >= 0).then_some(member.log_end_offset),
                lag: (member.log_end_offset >= 0).then(|| (quorum.high_watermark - member.log_end_offset).max(0)),
                endpoint: member.endpoint.as_deref(),
            })
            .collect(),
    }
}

/// `leader 2, term 5, high watermark 1234`, then one line per member: id, role, log end and
/// lag behind the high watermark (entries), Raft endpoint.
fn quorum_text(out: &mut impl Write, quorum: &QuorumInfo) -> std::io::Result<()> {
    writeln!(
        out,
        "leader {}, term {}, high watermark {}",
        quorum.leader_id, quorum.leader_epoch, quorum.high_watermark
    )?;
    writeln!(out, "{:<6} {:<9} {:>12} {:>8}  ENDPOINT", "ID", "ROLE", "LOG-END", "LAG")?;
    for member in &quorum.members {
        let (log_end, lag) = match member.log_end_offset {
            offset if offset >= 0 => (offset.to_string(), (quorum.high_watermark - offset).max(0).to_string()),
            _ => ("?".to_string(), "?".to_string()),
        };
        let endpoint = member.endpoint.as_deref().unwrap_or("-");
        writeln!(
            out,
            "{:<6} {:<9} {:>12} {:>8}  {}",
            member.node_id,
            member_role(quorum, member),
            log_end,
            lag,
            endpoint
        )?;
    }
    Ok(())
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

/// Checks once, or every `watch` until Ctrl-C; the exit code is the last verdict's. With
/// `--watch`, a broker that cannot be reached is a verdict too (unhealthy), not the end.
async fn health(
    config: ClientConfig,
    watch: Option<Duration>,
    exit_when_healthy: bool,
    json: bool,
) -> anyhow::Result<()> {
    let mut healthy;
    let mut admin: Option<Admin> = None;
    loop {
        let described = describe(&mut admin, &config).await;
        let problems = match described {
            Ok(description) => health_problems(&description),
            Err(error) if watch.is_some() => vec![format!("cannot describe the cluster: {error:#}")],
            Err(error) => return Err(error),
        };
        healthy = problems.is_empty();
        {
            let mut out = std::io::stdout().lock();
            if json {
                write_json_line(&mut out, &HealthJson { healthy, problems: &problems })?;
            } else {
                writeln!(out, "{}", if healthy { "healthy" } else { "unhealthy" })?;
                for problem in &problems {
                    writeln!(out, "  {problem}")?;
                }
            }
            out.flush()?;
        }
        let Some(every) = watch.filter(|_| !(healthy && exit_when_healthy)) else { break };
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    if healthy {
        Ok(())
    } else {
        Err(Unhealthy.into())
    }
}

/// Describes the cluster, connecting first if not connected yet (a broker that is starting
/// does not answer at first).
async fn describe(admin: &mut Option<Admin>, config: &ClientConfig) -> anyhow::Result<ClusterDescription> {
    let admin = match admin {
        Some(admin) => admin,
        None => admin.insert(Admin::new(crate::connect(config.clone()).await?)),
    };
    Ok(admin.describe_cluster().await?)
}

#[derive(Serialize)]
struct HealthJson<'a> {
    healthy: bool,
    problems: &'a [String],
}

/// Why the cluster is not healthy; empty when it is. Healthy: a controller, at least one
/// broker, and every partition with a leader, its whole replica set in sync and no replica
/// offline.
pub fn health_problems(description: &ClusterDescription) -> Vec<String> {
    let mut problems = Vec::new();
    if description.controller_id < 0 {
        problems.push("no controller (the metadata group has no leader)".to_string());
    }
    if description.brokers.is_empty() {
        problems.push("no brokers registered".to_string());
    }
    for topic in &description.topics {
        for partition in &topic.partitions {
            let name = format!("{}-{}", topic.name, partition.partition);
            if partition.leader < 0 {
                problems.push(format!("{name}: no leader (offline)"));
            }
            if partition.isr.len() < partition.replicas.len() {
                problems.push(format!(
                    "{name}: under-replicated (isr {:?} of replicas {:?})",
                    partition.isr, partition.replicas
                ));
            }
            if !partition.offline_replicas.is_empty() {
                problems.push(format!("{name}: offline replicas on brokers {:?}", partition.offline_replicas));
            }
        }
    }
    problems
}

#[derive(Serialize)]
struct StatusJson<'a> {
    cluster_id: &'a str,
    controller: i32,
    brokers: Vec<BrokerJson<'a>>,
    /// The partitions being reassigned (empty when none).
    moving: Vec<Move<'a>>,
    topics: Vec<TopicStatusJson<'a>>,
}

/// A partition being reassigned, as `status` shows it.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct Move<'a> {
    topic: &'a str,
    partition: i32,
    /// The replicas during the move: the target's, then those being removed.
    replicas: &'a [i32],
    /// The replicas when the move completes, preferred leader first.
    target: Vec<i32>,
    /// Replicas copying from the leader.
    adding: &'a [i32],
    /// Replicas removed when the move completes.
    removing: &'a [i32],
    /// The adding replicas already in the ISR (caught up): the move completes when all are.
    adding_in_sync: Vec<i32>,
}

/// The moves in progress with how far each has come: an adding replica has caught up once
/// it is in the partition's ISR (from `description`). Pure.
fn moves<'a>(description: &ClusterDescription, ongoing: &'a [OngoingReassignment]) -> Vec<Move<'a>> {
    ongoing
        .iter()
        .map(|reassignment| {
            let isr = description
                .topics
                .iter()
                .filter(|topic| topic.name == reassignment.topic)
                .flat_map(|topic| &topic.partitions)
                .find(|p| p.partition == reassignment.partition)
                .map(|p| p.isr.as_slice())
                .unwrap_or_default();
            Move {
                topic: &reassignment.topic,
                partition: reassignment.partition,
                replicas: &reassignment.replicas,
                target: reassignment.replicas.iter().copied().filter(|r| !reassignment.removing.contains(r)).collect(),
                adding: &reassignment.adding,
                removing: &reassignment.removing,
                adding_in_sync: reassignment.adding.iter().copied().filter(|r| isr.contains(r)).collect(),
            }
        })
        .collect()
}

/// `moving <n>`, then per partition `  t-1  replicas [..]  moving to [..], adding [..],
/// removing [..]  in sync k of n`; nothing when no partition moves.
fn moves_text(out: &mut impl Write, moving: &[Move]) -> std::io::Result<()> {
    if moving.is_empty() {
        return Ok(());
    }
    writeln!(out, "moving {}", moving.len())?;
    for each in moving {
        writeln!(
            out,
            "  {}-{}  replicas {:?}  {}  in sync {} of {}",
            each.topic,
            each.partition,
            each.replicas,
            crate::reassign::moving_text(&each.target, each.adding, each.removing),
            each.adding_in_sync.len(),
            each.adding.len()
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct BrokerJson<'a> {
    id: i32,
    address: &'a str,
    rack: Option<&'a str>,
}

#[derive(Serialize)]
struct TopicStatusJson<'a> {
    topic: &'a str,
    partitions: usize,
    /// Partition → leader broker (-1: none).
    leaders: Vec<(i32, i32)>,
    under_replicated: usize,
    /// `partition@broker` of replicas down or failed to open.
    offline_replicas: Vec<String>,
}

fn status_json<'a>(description: &'a ClusterDescription, moving: Vec<Move<'a>>) -> StatusJson<'a> {
    StatusJson {
        moving,
        cluster_id: &description.cluster_id,
        controller: description.controller_id,
        brokers: description
            .brokers
            .iter()
            .map(|broker| BrokerJson { id: broker.id, address: &broker.address, rack: broker.rack.as_deref() })
            .collect(),
        topics: description
            .topics
            .iter()
            .map(|topic| TopicStatusJson {
                topic: &topic.name,
                partitions: topic.partitions.len(),
                leaders: topic.partitions.iter().map(|p| (p.partition, p.leader)).collect(),
                under_replicated: topic.partitions.iter().filter(|p| p.isr.len() < p.replicas.len()).count(),
                offline_replicas: offline(topic),
            })
            .collect(),
    }
}

fn offline(topic: &sluice_client::cluster::TopicInfo) -> Vec<String> {
    topic
        .partitions
        .iter()
        .flat_map(|p| p.offline_replicas.iter().map(move |broker| format!("{}@{broker}", p.partition)))
        .collect()
}

fn status_text(out: &mut impl Write, description: &ClusterDescription, moving: &[Move]) -> std::io::Result<()> {
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
    moves_text(out, moving)?;
    writeln!(out, "topics {}", description.topics.len())?;
    for topic in &description.topics {
        let leaders: Vec<String> = topic.partitions.iter().map(|p| format!("{}:{}", p.partition, p.leader)).collect();
        let under_replicated = topic.partitions.iter().filter(|p| p.isr.len() < p.replicas.len()).count();
        let offline = offline(topic);
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_client::cluster::{BrokerInfo, PartitionInfo, TopicInfo};

    fn partition(partition: i32, leader: i32, replicas: &[i32], isr: &[i32], offline: &[i32]) -> PartitionInfo {
        PartitionInfo {
            partition,
            leader,
            leader_epoch: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            offline_replicas: offline.to_vec(),
            error_code: 0,
        }
    }

    #[test]
    fn status_shows_each_move_and_how_many_added_replicas_caught_up() {
        // Goal: a partition moving from [1, 2] to [3, 4] shows its replicas, target, adding and
        // removing replicas and that 1 of the 2 adding replicas is in sync, in text and JSON;
        // with nothing moving, the text has no section at all.
        let description = ClusterDescription {
            cluster_id: "c".to_string(),
            controller_id: 1,
            brokers: Vec::new(),
            topics: vec![TopicInfo {
                name: "t".to_string(),
                is_internal: false,
                partitions: vec![
                    partition(0, 1, &[1, 2], &[1, 2], &[]),
                    partition(1, 1, &[3, 4, 1, 2], &[1, 2, 4], &[]),
                ],
            }],
        };
        let ongoing = vec![OngoingReassignment {
            topic: "t".to_string(),
            partition: 1,
            replicas: vec![3, 4, 1, 2],
            adding: vec![3, 4],
            removing: vec![1, 2],
        }];
        let moving = moves(&description, &ongoing);
        assert_eq!(moving.len(), 1);
        assert_eq!((moving[0].target.as_slice(), moving[0].adding_in_sync.as_slice()), (&[3, 4][..], &[4][..]));
        let mut text = Vec::new();
        moves_text(&mut text, &moving).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "moving 1\n  t-1  replicas [3, 4, 1, 2]  moving to [3, 4], adding [3, 4], removing [1, 2]  in sync 1 of 2\n"
        );
        let json = serde_json::to_value(status_json(&description, moving)).unwrap();
        assert_eq!(
            json["moving"],
            serde_json::json!([{"topic": "t", "partition": 1, "replicas": [3, 4, 1, 2], "target": [3, 4],
                "adding": [3, 4], "removing": [1, 2], "adding_in_sync": [4]}])
        );
        let mut quiet = Vec::new();
        status_text(&mut quiet, &description, &[]).unwrap();
        let quiet = String::from_utf8(quiet).unwrap();
        assert!(!quiet.contains("moving"), "{quiet}");
        assert_eq!(
            serde_json::to_value(status_json(&description, Vec::new())).unwrap()["moving"],
            serde_json::json!([])
        );
    }

    #[test]
    fn health_names_every_problem_and_none_for_a_healthy_cluster() {
        let broker = BrokerInfo { id: 1, address: "a:1".to_string(), rack: None };
        let mut description = ClusterDescription {
            cluster_id: "c".to_string(),
            controller_id: 1,
            brokers: vec![broker],
            topics: vec![TopicInfo {
                name: "t".to_string(),
                is_internal: false,
                partitions: vec![partition(0, 1, &[1, 2], &[1, 2], &[])],
            }],
        };
        assert!(health_problems(&description).is_empty());
        description.controller_id = -1;
        description.topics[0].partitions.push(partition(1, -1, &[1, 2], &[1], &[2]));
        let problems = health_problems(&description);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("no controller"));
        assert!(problems[1].starts_with("t-1: no leader"));
        assert!(problems[2].starts_with("t-1: under-replicated"));
        assert!(problems[3].starts_with("t-1: offline replicas on brokers [2]"));
    }
}
