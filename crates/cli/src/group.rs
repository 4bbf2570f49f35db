//! `sluice group list|describe|reset-offsets|delete`: consumer groups, their lag, and offset
//! resets, over `sluice-client`'s admin.
//!
//! A reset or delete of a group with active members fails with the client's `GroupNotEmpty`
//! error, printed by `main` as one line (exit code 1): the consumers must stop first, else their
//! next commit would undo the reset.

use std::io::Write;

use sluice_client::admin::{GroupDescription, OffsetChange, PartitionLag, STATE_DEAD};
use sluice_client::{Admin, Cluster};

use crate::args::{GroupCommand, ResetOffsetsArgs};
use crate::output::{cell, json_number, json_string, write_table};

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
                true => writeln!(out, "{}", describe_json(&description, &lags))?,
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
            writeln!(
                out,
                "{{\"group\":{},\"state\":{},\"protocol_type\":{}}}",
                json_string(&group.group_id),
                json_string(&group.state),
                json_string(&group.protocol_type)
            )?;
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
                lag.member_id.clone().unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    write_table(out, &["TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER"], &rows)?;
    let total: i64 = lags.iter().filter_map(|lag| lag.lag).sum();
    writeln!(out, "total lag {total}")
}

fn describe_json(group: &GroupDescription, lags: &[PartitionLag]) -> String {
    let members: Vec<String> = group
        .members
        .iter()
        .map(|member| {
            let assigned: Vec<String> = member
                .assignment
                .iter()
                .map(|tp| format!("{{\"topic\":{},\"partition\":{}}}", json_string(&tp.topic), tp.partition))
                .collect();
            format!(
                "{{\"member_id\":{},\"client_id\":{},\"host\":{},\"assignment\":[{}]}}",
                json_string(&member.member_id),
                json_string(&member.client_id),
                json_string(&member.client_host),
                assigned.join(",")
            )
        })
        .collect();
    let partitions: Vec<String> = lags
        .iter()
        .map(|lag| {
            format!(
                "{{\"topic\":{},\"partition\":{},\"committed\":{},\"log_end\":{},\"lag\":{},\"member_id\":{}}}",
                json_string(&lag.partition.topic),
                lag.partition.partition,
                json_number(lag.committed_offset),
                json_number(lag.log_end_offset),
                json_number(lag.lag),
                lag.member_id.as_deref().map_or_else(|| "null".to_string(), json_string)
            )
        })
        .collect();
    format!(
        "{{\"group\":{},\"state\":{},\"protocol\":{},\"members\":[{}],\"partitions\":[{}]}}",
        json_string(&group.group_id),
        json_string(&group.state),
        json_string(&group.protocol),
        members.join(","),
        partitions.join(",")
    )
}

async fn reset(admin: &Admin, out: &mut impl Write, args: &ResetOffsetsArgs) -> anyhow::Result<()> {
    let target = args.target();
    let changes: Vec<OffsetChange> = if args.dry_run {
        admin.plan_offset_reset(&args.group, &args.topic, target).await?
    } else {
        admin.reset_offsets(&args.group, &args.topic, target).await?
    };
    if args.json {
        let partitions: Vec<String> = changes
            .iter()
            .map(|change| {
                format!(
                    "{{\"topic\":{},\"partition\":{},\"previous\":{},\"offset\":{}}}",
                    json_string(&change.partition.topic),
                    change.partition.partition,
                    json_number(change.previous),
                    change.offset
                )
            })
            .collect();
        writeln!(
            out,
            "{{\"group\":{},\"dry_run\":{},\"partitions\":[{}]}}",
            json_string(&args.group),
            args.dry_run,
            partitions.join(",")
        )?;
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
