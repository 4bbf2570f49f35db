//! `sluice consume`: read a topic (all partitions or one) from a start position (`-o`, the
//! beginning by default, like kcat and rpk; syntax in [`crate::position`]) and print each
//! record as its value, key/value or a JSON line. A position outside a partition's log starts
//! at its nearest end, said on stderr.
//!
//! Stops after `--max-messages`, at the end of every partition with `--exit-at-end`, after
//! `--idle-timeout-ms` without records, on Ctrl-C, or when stdout closes (`| head`); then says
//! "consumed N records" on stderr.
//!
//! With `--group`, the consumer subscribes as a member of that group: the group assigns the
//! partitions and each starts at the group's committed offset (`-o beginning|end` only
//! decides for partitions without one). After each batch reaches stdout, the offsets of the
//! records printed are committed (auto-commit is off, so a record fetched but not printed —
//! past `--max-messages`, or after stdout closed — is never committed); on the way out the
//! last printed offsets are committed and the consumer leaves the group.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use sluice_client::{Cluster, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, SeekTo, TopicPartition};

use crate::args::{ConsumeArgs, StartFrom};
use crate::output::write_record;
use crate::position::resolve;
use crate::UsageError;

/// Longest single poll, so Ctrl-C and the idle timeout are noticed promptly.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Runs `sluice consume`.
pub async fn run(cluster: Cluster, args: ConsumeArgs) -> anyhow::Result<()> {
    let mut consumer = match &args.group {
        Some(group) => subscribe(cluster, &args, group).await?,
        None => assign(cluster, &args).await?,
    };
    let mut printed = 0u64;
    let result = print_records(&mut consumer, &args, &mut printed).await;
    let closed = consumer.close().await;
    eprintln!("consumed {printed} record{}", if printed == 1 { "" } else { "s" });
    result?;
    Ok(closed?)
}

async fn assign(cluster: Cluster, args: &ConsumeArgs) -> anyhow::Result<Consumer> {
    let config = ConsumerConfig { auto_offset_reset: OffsetReset::Earliest, ..ConsumerConfig::default() };
    let mut consumer = Consumer::new(cluster, config);
    let partitions = match args.partition {
        Some(partition) => {
            let chosen = vec![TopicPartition::new(&args.topic, partition)];
            consumer.assign(chosen.clone()).await?;
            chosen
        }
        None => consumer.assign_topic(&args.topic).await?,
    };
    let from = args.offset.at(now_ms());
    for partition in &partitions {
        let (log_start, log_end) = consumer.watermarks(partition).await?;
        let found = match from {
            StartFrom::Timestamp(timestamp_ms) => {
                Some(consumer.seek(partition, SeekTo::Timestamp(timestamp_ms)).await?)
            }
            _ => None,
        };
        let (offset, note) = resolve(from, log_start, log_end, found);
        if let Some(note) = note {
            eprintln!("{}-{}: {note}", partition.topic, partition.partition);
        }
        consumer.seek(partition, SeekTo::Offset(offset)).await?;
    }
    Ok(consumer)
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// Whether every assigned partition's position has reached its high watermark (`false` while
/// a group member has no assignment yet).
async fn at_end(consumer: &mut Consumer) -> anyhow::Result<bool> {
    let assignment = consumer.assignment();
    if assignment.is_empty() {
        return Ok(false);
    }
    for partition in &assignment {
        let (_, log_end) = consumer.watermarks(partition).await?;
        if consumer.position(partition).await? < log_end {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn subscribe(cluster: Cluster, args: &ConsumeArgs, group: &str) -> anyhow::Result<Consumer> {
    let auto_offset_reset = match args.offset {
        StartFrom::Beginning => OffsetReset::Earliest,
        StartFrom::End => OffsetReset::Latest,
        _ => {
            return Err(UsageError(
                "--group starts at the committed offsets: only -o beginning or end apply (move a group with `sluice group reset-offsets`)".to_string(),
            )
            .into())
        }
    };
    let config = ConsumerConfig {
        group_id: Some(group.to_string()),
        auto_offset_reset,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(cluster, config);
    consumer.subscribe([args.topic.as_str()]).await?;
    Ok(consumer)
}

/// The offsets after the records printed since the last commit.
#[derive(Default)]
struct Printed {
    next: BTreeMap<TopicPartition, i64>,
}

impl Printed {
    fn record(&mut self, record: &ConsumerRecord) {
        self.next.insert(TopicPartition::new(&*record.topic, record.partition), record.offset + 1);
    }

    /// Commits what was printed of the partitions still assigned (a rebalance may have moved
    /// others, whose printed records were committed before they went).
    async fn commit(&mut self, consumer: &Consumer) -> anyhow::Result<()> {
        if !consumer.is_subscribed() || self.next.is_empty() {
            return Ok(());
        }
        let assigned = consumer.assignment();
        let offsets: BTreeMap<TopicPartition, i64> =
            std::mem::take(&mut self.next).into_iter().filter(|(tp, _)| assigned.contains(tp)).collect();
        consumer.commit_offsets(&offsets).await?;
        Ok(())
    }
}

async fn print_records(consumer: &mut Consumer, args: &ConsumeArgs, printed: &mut u64) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut to_commit = Printed::default();
    let mut last_record = Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if args.max_messages.is_some_and(|max| *printed >= max) {
            break;
        }
        if args.idle_timeout_ms.is_some_and(|idle| last_record.elapsed() >= Duration::from_millis(idle)) {
            break;
        }
        let records = tokio::select! {
            records = consumer.poll(POLL_INTERVAL) => records?,
            _ = &mut ctrl_c => break,
        };
        if !records.is_empty() {
            last_record = Instant::now();
        } else if args.exit_at_end && at_end(consumer).await? {
            break;
        }
        let mut batch = Printed::default();
        for record in &records {
            if args.max_messages.is_some_and(|max| *printed >= max) {
                break;
            }
            match write_record(&mut out, record, &args.format, &args.key_separator, args.encoding) {
                Ok(()) => {
                    *printed += 1;
                    batch.record(record);
                }
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                    return to_commit.commit(consumer).await
                }
                Err(error) => return Err(error.into()),
            }
        }
        match out.flush() {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
        // Only records that reached stdout count as consumed.
        to_commit.next.extend(batch.next);
        if let Err(error) = to_commit.commit(consumer).await {
            // A rebalance took this member's generation: the next poll rejoins.
            tracing::warn!(%error, "commit failed; continuing");
        }
    }
    to_commit.commit(consumer).await
}
