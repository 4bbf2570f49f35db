//! `sluice consume`: read a topic (all partitions or one) from a start position and print
//! each record as its value, key/value or a JSON line.
//!
//! Stops after `--max-messages`, after `--idle-timeout-ms` without records, on Ctrl-C, or when
//! stdout closes (`| head`). Consumer groups (`--group`) wait for issue 6.

use std::io::Write;
use std::time::{Duration, Instant};

use sluice_client::{Cluster, Consumer, ConsumerConfig, OffsetReset, SeekTo, TopicPartition};

use crate::args::{ConsumeArgs, StartFrom};
use crate::output::write_record;

/// Longest single poll, so Ctrl-C and the idle timeout are noticed promptly.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Runs `sluice consume`.
pub async fn run(cluster: Cluster, args: ConsumeArgs) -> anyhow::Result<()> {
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
    for partition in &partitions {
        let to = match args.from {
            StartFrom::Beginning => SeekTo::Beginning,
            StartFrom::End => SeekTo::End,
            StartFrom::Offset(offset) => SeekTo::Offset(offset),
            StartFrom::Timestamp(timestamp_ms) => SeekTo::Timestamp(timestamp_ms),
        };
        consumer.seek(partition, to).await?;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if args.max_messages.is_some_and(|max| printed >= max) {
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
        }
        for record in &records {
            if args.max_messages.is_some_and(|max| printed >= max) {
                break;
            }
            match write_record(&mut out, record, args.output, &args.key_separator) {
                Ok(()) => printed += 1,
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(error) => return Err(error.into()),
            }
        }
        match out.flush() {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    Ok(())
}
