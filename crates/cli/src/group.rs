//! `sluice group list|describe|reset-offsets|delete`: consumer groups, their lag, and offset
//! resets, over `sluice-client`'s admin.
//!
//! A reset names topics (`-t orders`, `-t orders:0,1`) or `--all-topics` (every partition the
//! group has committed), and warns on stderr about each target outside a partition's log
//! (moved to the nearest end, as Kafka's tool does).
//!
//! A reset or delete of a group with active members fails with the client's `GroupNotEmpty`
//! error, printed by `main` as one line (exit code 1): the consumers must stop first, else their
//! next commit would undo the reset.

use std::io::Write;

use serde::Serialize;
use sluice_client::admin::{GroupDescription, OffsetChange, PartitionLag, STATE_DEAD};
use sluice_client::{Admin, Cluster, TopicPartition};

use crate::args::{GroupCommand, ResetOffsetsArgs};
use crate::output::{cell, write_json_line, write_table};

/// Runs a group command.
pub async fn run(cluster: Cluster, command: GroupCommand) -> anyhow::Result<()> {
    let admin = Admin::new(cluster);
    let mut out = std::io::stdout().lock();
    match command {
        GroupCommand::List { json } => list(&admin, &mut out, json).await?,
        GroupCommand::Describe { group, json } => {
            let description = admin.describe_group(&group).await?;
            let lags = admin.group_lag(&group).await?;
            if description.state == STATE_DEAD && lags.is_empty() {
                anyhow::bail!("group {group:?} does not exist (no members, no committed offsets)");
            }
            match json {
                true => write_json_line(&mut out, &describe_json(&description, &lags))?,
                false => describe_text(&mut out, &description, &lags)?,
            }
        }
        GroupCommand::ResetOffsets(args) => reset(&admin, &mut out, &args).await?,
        GroupCommand::Delete { group } => {
            admin.delete_groups(std::slice::from_ref(&group)).await?;
            writeln!(out, "deleted group {group}")?;
        }
    }
    Ok(())
}

async fn list(admin: &Admin, out: &mut impl Write, json: bool) -> anyhow::Result<()> {
    let groups = admin.list_groups().await?;
    if json {
        for group in &groups {
            let line = GroupJson { group: &group.group_id, state: &group.state, protocol_type: &group.protocol_type };
            write_json_line(out, &line)?;
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> =
        groups.iter().map(|g| vec![g.group_id.clone(), g.state.clone(), g.protocol_type.clone()]).collect();
    write_table(out, &["GROUP", "STATE", "PROTOCOL-TYPE"], &rows)?;
    Ok(())
}

fn describe_text(out: &mut impl Write, group: &GroupDescription, lags: &[PartitionLag]) -> std::io::Result<()> {
    writeln!(
        out,
        "group {}  state {}  protocol {}  members {}",
        group.group_id,
        group.state,
        if group.protocol.is_empty() { "-" } else { &group.protocol },
        group.members.len()
    )?;
    for member in &group.members {
        let assigned: Vec<String> =
            member.assignment.iter().map(|tp| format!("{}-{}", tp.topic, tp.partition)).collect();
        writeln!(
            out,
            "  member {}  client {}  host {}  assigned [{}]",
            member.member_id,
            member.client_id,
            member.client_host,
            assigned.join(" ")
        )?;
    }
    let rows: Vec<Vec<String>> = lags
        .iter()
        .map(|lag| {
            vec![
                lag.partition.topic.clone(),
                lag.partition.partition.to_string(),
                cell(lag.committed_offset),
                cell(lag.log_end_offset),
                cell(lag.lag),
                lag.lag_seconds.map_or_else(|| "-".to_string(), |seconds| format!("{seconds:.1}")),
                lag.member_id.clone().unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    write_table(out, &["TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "LAG-SECONDS", "MEMBER"], &rows)?;
    let total: i64 = lags.iter().filter_map(|lag| lag.lag).sum();
    match lags.iter().filter_map(|lag| lag.lag_seconds).reduce(f64::max) {
        Some(oldest) => writeln!(out, "total lag {total}, max lag {oldest:.1} s"),
        None => writeln!(out, "total lag {total}"),
    }
}

/// A line of `group list --json`.
#[derive(Serialize)]
struct GroupJson<'a> {
    group: &'a str,
    state: &'a str,
    protocol_type: &'a str,
}

/// `group describe --json`.
#[derive(Serialize)]
struct DescribeJson<'a> {
    group: &'a str,
    state: &'a str,
    protocol: &'a str,
    members: Vec<MemberJson<'a>>,
    partitions: Vec<LagJson<'a>>,
}

#[derive(Serialize)]
struct MemberJson<'a> {
    member_id: &'a str,
    client_id: &'a str,
    host: &'a str,
    assignment: Vec<TopicPartitionJson<'a>>,
}

#[derive(Serialize)]
struct TopicPartitionJson<'a> {
    topic: &'a str,
    partition: i32,
}

#[derive(Serialize)]
struct LagJson<'a> {
    topic: &'a str,
    partition: i32,
    committed: Option<i64>,
    log_end: Option<i64>,
    lag: Option<i64>,
    lag_seconds: Option<f64>,
    member_id: Option<&'a str>,
}

/// `group reset-offsets --json`.
#[derive(Serialize)]
struct ResetJson<'a> {
    group: &'a str,
    dry_run: bool,
    partitions: Vec<OffsetChangeJson<'a>>,
}

#[derive(Serialize)]
struct OffsetChangeJson<'a> {
    topic: &'a str,
    partition: i32,
    previous: Option<i64>,
    offset: i64,
}

fn describe_json<'a>(group: &'a GroupDescription, lags: &'a [PartitionLag]) -> DescribeJson<'a> {
    let members = group
        .members
        .iter()
        .map(|member| MemberJson {
            member_id: &member.member_id,
            client_id: &member.client_id,
            host: &member.client_host,
            assignment: member
                .assignment
                .iter()
                .map(|tp| TopicPartitionJson { topic: &tp.topic, partition: tp.partition })
                .collect(),
        })
        .collect();
    let partitions = lags
        .iter()
        .map(|lag| LagJson {
            topic: &lag.partition.topic,
            partition: lag.partition.partition,
            committed: lag.committed_offset,
            log_end: lag.log_end_offset,
            lag: lag.lag,
            lag_seconds: lag.lag_seconds,
            member_id: lag.member_id.as_deref(),
        })
        .collect();
    DescribeJson { group: &group.group_id, state: &group.state, protocol: &group.protocol, members, partitions }
}

/// The partitions a reset names: each `-t topic[:partitions]`, or with `--all-topics` every
/// partition the group has a committed offset for.
async fn reset_scope(admin: &Admin, args: &ResetOffsetsArgs) -> anyhow::Result<Vec<TopicPartition>> {
    if args.all_topics {
        let committed: Vec<TopicPartition> = admin.group_offsets(&args.group).await?.into_keys().collect();
        if committed.is_empty() {
            anyhow::bail!("group {:?} has no committed offsets: name the topics with -t", args.group);
        }
        return Ok(committed);
    }
    let mut partitions = Vec::new();
    for selection in &args.topics {
        partitions.extend(admin.topic_partitions(&selection.topic, selection.partitions.as_deref()).await?);
    }
    partitions.sort();
    partitions.dedup();
    Ok(partitions)
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

async fn reset(admin: &Admin, out: &mut impl Write, args: &ResetOffsetsArgs) -> anyhow::Result<()> {
    let target = args.target(now_ms());
    let partitions = reset_scope(admin, args).await?;
    // Each partition costs a ListOffsets round trip or two: count them on a terminal.
    let progress =
        crate::progress::counting(Some(partitions.len() as u64), "partitions planned", crate::progress::stderr());
    let mut planned = |_: &OffsetChange| progress.inc(1);
    let changes: Vec<OffsetChange> = if args.dry_run {
        admin.plan_offset_reset_reporting(&args.group, &partitions, target, &mut planned).await?
    } else {
        admin.reset_offsets_reporting(&args.group, &partitions, target, &mut planned).await?
    };
    progress.finish_and_clear();
    for change in &changes {
        if let Some(wanted) = change.clamped_from {
            let side = if wanted > change.offset { "past the log end" } else { "before the log start" };
            eprintln!(
                "warning: {}-{}: offset {wanted} is {side}: {} {}",
                change.partition.topic,
                change.partition.partition,
                if args.dry_run { "would reset to" } else { "reset to" },
                change.offset
            );
        }
    }
    if args.json {
        let partitions = changes
            .iter()
            .map(|change| OffsetChangeJson {
                topic: &change.partition.topic,
                partition: change.partition.partition,
                previous: change.previous,
                offset: change.offset,
            })
            .collect();
        write_json_line(out, &ResetJson { group: &args.group, dry_run: args.dry_run, partitions })?;
    } else {
        let rows: Vec<Vec<String>> = changes
            .iter()
            .map(|change| {
                vec![
                    change.partition.topic.clone(),
                    change.partition.partition.to_string(),
                    cell(change.previous),
                    change.offset.to_string(),
                ]
            })
            .collect();
        write_table(out, &["TOPIC", "PARTITION", "PREVIOUS", "NEW-OFFSET"], &rows)?;
    }
    if args.dry_run {
        eprintln!("dry run: nothing committed");
    }
    Ok(())
}
