//! `sluice bench produce|consume`: throughput and latency against a running cluster.
//!
//! Produce: `--producers` producers, each with its own connections (its own `Cluster`), send
//! `--records` in all (split evenly) of `--record-size` value bytes with no key (sticky
//! partitioner). Values are pseudo-random bytes, so compression ratios are not flattered.
//! Latency is per record, from the call to `send` to its acknowledgement (so it includes time
//! spent waiting for buffer memory and in the batch's linger); throughput is records and value
//! bytes over the time from the first send to the last acknowledgement. MB is 10^6 bytes.
//!
//! Consume: one consumer reads every partition from the beginning until `--records` (default:
//! the end offsets when it starts); reports throughput and the latency of each `poll` call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use sluice_client::admin::NewTopic;
use sluice_client::backoff::random_u64;
use sluice_client::{
    Admin, ClientConfig, ClientError, Cluster, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerRecord, SeekTo,
};
use tokio::sync::mpsc;

use crate::args::{BenchCommand, BenchConsumeArgs, BenchProduceArgs};
use crate::connect;
use crate::output::write_json_line;

/// Deliveries a producer's collector may have queued before `send` waits: keeps the
/// benchmark's own bookkeeping bounded independently of the producer's buffer.
const DELIVERY_QUEUE_MAX: usize = 100_000;
/// Longest poll in the consume benchmark.
const CONSUME_POLL: Duration = Duration::from_secs(1);
/// The consume benchmark gives up after this long without a record.
const CONSUME_IDLE_LIMIT: Duration = Duration::from_secs(10);

/// Runs a benchmark.
pub async fn run(config: ClientConfig, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Produce(args) => produce(config, args).await,
        BenchCommand::Consume(args) => consume(config, args).await,
    }
}

/// Latency percentiles in microseconds.
struct Summary {
    records: u64,
    bytes: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Summary {
    fn percentile(&self, fraction: f64) -> u64 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let index = ((self.latencies_us.len() as f64 * fraction).ceil() as usize).clamp(1, self.latencies_us.len()) - 1;
        self.latencies_us[index]
    }

    fn print(&mut self, what: &str, latency_name: &str, json: bool) {
        self.latencies_us.sort_unstable();
        let seconds = self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        let records_per_second = self.records as f64 / seconds;
        let megabytes_per_second = self.bytes as f64 / seconds / 1e6;
        let ms = |micros: u64| micros as f64 / 1000.0;
        let (p50, p99, p999) = (self.percentile(0.5), self.percentile(0.99), self.percentile(0.999));
        let max = self.latencies_us.last().copied().unwrap_or(0);
        if json {
            let line = SummaryJson {
                benchmark: what,
                records: self.records,
                bytes: self.bytes,
                elapsed_s: round_to(seconds, 3),
                records_per_s: records_per_second.round() as u64,
                mb_per_s: round_to(megabytes_per_second, 2),
                latency: latency_name,
                p50_ms: round_to(ms(p50), 3),
                p99_ms: round_to(ms(p99), 3),
                p999_ms: round_to(ms(p999), 3),
                max_ms: round_to(ms(max), 3),
            };
            let _ = write_json_line(&mut std::io::stdout().lock(), &line);
            return;
        }
        let line = format!(
            "{what}: {} records, {} bytes in {:.2} s: {:.0} records/s, {:.2} MB/s; {latency_name} latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            self.records, self.bytes, seconds, records_per_second, megabytes_per_second, ms(p50), ms(p99), ms(p999), ms(max)
        );
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// `bench … --json`: one line, parsed by `scripts/bench-client.sh` and the CLI's tests. Numbers
/// keep the precision the output always had: seconds and milliseconds to 0.001, MB/s to 0.01,
/// records/s whole.
#[derive(Serialize)]
struct SummaryJson<'a> {
    benchmark: &'a str,
    records: u64,
    bytes: u64,
    elapsed_s: f64,
    records_per_s: u64,
    mb_per_s: f64,
    latency: &'a str,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
}

/// `value` rounded to `decimals` decimal places (serialised as the shortest decimal that reads
/// back as that value, so 5.42 rather than 5.4199999).
fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
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

async fn produce(config: ClientConfig, args: BenchProduceArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.producers > 0, "--producers must be at least 1");
    ensure_topic(&connect(config.clone()).await?, &args.topic, args.partitions).await?;
    let mut producers = Vec::new();
    for _ in 0..args.producers {
        let cluster = connect(config.clone()).await?;
        producers.push(Producer::new(cluster, args.producer.config()).await?);
    }
    // A few distinct values, so the benchmark does not measure the random generator.
    let values: Arc<Vec<Bytes>> = Arc::new((0..16).map(|_| random_value(args.record_size)).collect());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, producer) in producers.into_iter().enumerate() {
        let share = args.records / u64::from(args.producers)
            + u64::from((index as u64) < args.records % u64::from(args.producers));
        let rate = args.rate.map(|rate| rate / f64::from(args.producers));
        tasks.spawn(produce_share(producer, args.topic.clone(), share, rate, values.clone(), started));
    }
    let mut summary = Summary { records: 0, bytes: 0, elapsed: Duration::ZERO, latencies_us: Vec::new() };
    while let Some(joined) = tasks.join_next().await {
        let latencies = joined.context("a producer task failed")??;
        summary.records += latencies.len() as u64;
        summary.latencies_us.extend(latencies);
    }
    summary.elapsed = started.elapsed();
    summary.bytes = summary.records * args.record_size as u64;
    summary.print("produce", "ack", args.json);
    Ok(())
}

async fn produce_share(
    producer: Producer,
    topic: String,
    records: u64,
    rate: Option<f64>,
    values: Arc<Vec<Bytes>>,
    started: Instant,
) -> anyhow::Result<Vec<u64>> {
    let (queue, mut deliveries) = mpsc::channel::<(Instant, sluice_client::Delivery)>(DELIVERY_QUEUE_MAX);
    let collector = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(records as usize);
        let mut waiting = FuturesUnordered::new();
        let mut open = true;
        while open || !waiting.is_empty() {
            tokio::select! {
                next = deliveries.recv(), if open => match next {
                    Some((sent_at, delivery)) => waiting.push(async move { (sent_at, delivery.await) }),
                    None => open = false,
                },
                Some((sent_at, result)) = waiting.next(), if !waiting.is_empty() => {
                    result?;
                    latencies.push(sent_at.elapsed().as_micros() as u64);
                }
            }
        }
        Ok::<_, ClientError>(latencies)
    });
    for index in 0..records {
        if let Some(rate) = rate {
            tokio::time::sleep_until((started + Duration::from_secs_f64(index as f64 / rate)).into()).await;
        }
        let value = values[index as usize % values.len()].clone();
        let sent_at = Instant::now();
        let delivery =
            producer.send(ProducerRecord { topic: topic.clone(), value: Some(value), ..Default::default() }).await?;
        if queue.send((sent_at, delivery)).await.is_err() {
            break; // the collector stopped on an error, which it returns below
        }
    }
    drop(queue);
    producer.flush().await?;
    Ok(collector.await.context("the delivery collector failed")??)
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
    let mut summary = Summary { records: 0, bytes: 0, elapsed: Duration::ZERO, latencies_us: Vec::new() };
    let started = Instant::now();
    let mut last_record = Instant::now();
    while summary.records < target {
        let poll_started = Instant::now();
        let records = consumer.poll(CONSUME_POLL).await?;
        summary.latencies_us.push(poll_started.elapsed().as_micros() as u64);
        if records.is_empty() {
            anyhow::ensure!(
                last_record.elapsed() < CONSUME_IDLE_LIMIT,
                "only {} of {target} records arrived",
                summary.records
            );
            continue;
        }
        last_record = Instant::now();
        summary.records += records.len() as u64;
        summary.bytes += records.iter().map(|r| r.value.as_ref().map_or(0, Bytes::len) as u64).sum::<u64>();
    }
    summary.elapsed = started.elapsed();
    summary.print("consume", "poll", args.json);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_summary_keeps_its_keys_in_order_as_rounded_numbers() {
        let line = SummaryJson {
            benchmark: "produce",
            records: 1_000_000,
            bytes: 1_024_000_000,
            elapsed_s: round_to(5.419_6, 3),
            records_per_s: 184_487,
            mb_per_s: round_to(188.914_9, 2),
            latency: "ack",
            p50_ms: round_to(669.410_4, 3),
            p99_ms: round_to(895.793, 3),
            p999_ms: round_to(0.000_4, 3),
            max_ms: round_to(30_770.999_9, 3),
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            concat!(
                r#"{"benchmark":"produce","records":1000000,"bytes":1024000000,"elapsed_s":5.42,"#,
                r#""records_per_s":184487,"mb_per_s":188.91,"latency":"ack","p50_ms":669.41,"#,
                r#""p99_ms":895.793,"p999_ms":0.0,"max_ms":30771.0}"#
            )
        );
    }
}
