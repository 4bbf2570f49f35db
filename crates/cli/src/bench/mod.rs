//! `sluice bench produce|end-to-end|consume`: throughput and latency against a running cluster.
//!
//! Produce ([`produce`]): `--producers` producers, each with its own connections (its own
//! `Cluster`), send `--records` in all (split evenly), or run for `--duration` seconds, with
//! values of `--record-size` bytes and no key (sticky partitioner). Values are pseudo-random
//! bytes, so compression ratios are not flattered. Unbounded (the default), latency is per
//! record from the call to `send` to its acknowledgement, so it is mostly time queued in the
//! producer's buffer. At a fixed rate (`--rate`, or `--rate-of-max` after a full-speed probe)
//! each record has an intended send time on a fixed schedule and latency runs from that time
//! ([`schedule`]: no coordinated omission). Throughput is records and value bytes over the time
//! from the start to the last acknowledgement. MB is 10^6 bytes.
//!
//! End-to-end ([`end_to_end`], [`stamp`]): the same producers at a fixed rate write records whose value
//! starts with the run's id and the record's intended send time; one consumer, positioned at
//! the end of every partition before the first send, reads them and records intended send →
//! consumed latency.
//!
//! `--workload omb` ([`plan`]): 1 KiB records; the maximum measured first, then produce
//! and end-to-end at 50% and 90% of it, like the OpenMessaging Benchmark's workloads.
//!
//! Consume: one consumer reads every partition from the beginning until `--records` (default:
//! the end offsets when it starts); reports throughput and the latency of each `poll` call.
//!
//! Latencies go into HDR histograms ([`report`]); each result is one line of text or JSON. On a
//! terminal a progress bar on stderr counts the records acknowledged (or consumed) meanwhile.

mod end_to_end;
mod plan;
mod produce;
mod report;
mod schedule;
mod stamp;

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use sluice_client::admin::NewTopic;
use sluice_client::backoff::random_u64;
use sluice_client::{Admin, ClientConfig, ClientError, Cluster, Consumer, ConsumerConfig, OffsetReset, SeekTo};

use crate::args::{BenchCommand, BenchConsumeArgs};
use crate::connect;
use report::{latency_histogram, record_latency, Percentiles, Summary};

/// Longest poll in the consume benchmark.
const CONSUME_POLL: Duration = Duration::from_secs(1);
/// The consume and end-to-end benchmarks give up after this long without a record they are
/// still waiting for.
const CONSUME_IDLE_LIMIT: Duration = Duration::from_secs(10);

/// Runs a benchmark.
pub async fn run(config: ClientConfig, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Produce(args) => {
            let config = ClientConfig { client_id: args.client_id.clone(), ..config };
            plan::run(config, args, false).await
        }
        BenchCommand::EndToEnd(args) => {
            let config = ClientConfig { client_id: args.client_id.clone(), ..config };
            plan::run(config, args, true).await
        }
        BenchCommand::Consume(args) => consume(config, args).await,
    }
}

async fn ensure_topic(cluster: &Cluster, topic: &str, partitions: i32) -> anyhow::Result<()> {
    match cluster.topic(topic).await {
        Ok(_) => Ok(()),
        Err(ClientError::UnknownTopic { .. }) => {
            let new = NewTopic { name: topic.to_string(), partitions, replication_factor: 1, configs: Vec::new() };
            Admin::new(cluster.clone()).create_topics(&[new]).await.context("cannot create the benchmark topic")?;
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

fn random_value(size: usize) -> Bytes {
    let mut value = Vec::with_capacity(size + 8);
    while value.len() < size {
        value.extend_from_slice(&random_u64().to_le_bytes());
    }
    value.truncate(size);
    Bytes::from(value)
}

async fn consume(config: ClientConfig, args: BenchConsumeArgs) -> anyhow::Result<()> {
    let cluster = connect(config).await?;
    let config = ConsumerConfig { auto_offset_reset: OffsetReset::Earliest, ..ConsumerConfig::default() };
    let mut consumer = Consumer::new(cluster, config);
    let partitions = consumer.assign_topic(&args.topic).await?;
    let mut available = 0u64;
    for partition in &partitions {
        let (start, end) = consumer.watermarks(partition).await?;
        available += (end - start).max(0) as u64;
        consumer.seek(partition, SeekTo::Beginning).await?;
    }
    let target = args.records.unwrap_or(available);
    anyhow::ensure!(target > 0, "topic {} has no records to consume", args.topic);
    let (mut records_read, mut bytes) = (0u64, 0u64);
    let mut latencies = latency_histogram();
    let started = Instant::now();
    let mut last_record = Instant::now();
    let progress = crate::progress::counting(Some(target), "records consumed", crate::progress::stderr());
    while records_read < target {
        let poll_started = Instant::now();
        let records = consumer.poll(CONSUME_POLL).await?;
        record_latency(&mut latencies, poll_started.elapsed());
        if records.is_empty() {
            anyhow::ensure!(
                last_record.elapsed() < CONSUME_IDLE_LIMIT,
                "only {records_read} of {target} records arrived"
            );
            continue;
        }
        last_record = Instant::now();
        records_read += records.len() as u64;
        progress.inc(records.len() as u64);
        bytes += records.iter().map(|r| r.value.as_ref().map_or(0, Bytes::len) as u64).sum::<u64>();
    }
    progress.finish_and_clear();
    let summary = Summary {
        benchmark: "consume",
        latency: "poll",
        target: None,
        records: records_read,
        bytes,
        elapsed: started.elapsed(),
        percentiles: Percentiles::of(&latencies),
    };
    summary.print(args.json);
    Ok(())
}
