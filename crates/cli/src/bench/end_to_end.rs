//! `sluice bench end-to-end`: producers at a fixed rate, one consumer, and the latency from
//! each record's intended send time to the moment a `poll` handed it to the consumer.
//!
//! The consumer is assigned every partition and positioned at its end before the producers
//! connect, so it reads only this run's records (and ignores any other by the run id in their
//! stamp, see [`super::stamp`]). Producer and consumer share this process's monotonic clock,
//! so no clock synchronisation is involved. Throughput is consumed records over the time from
//! the first intended send to the last record consumed.

use std::time::Duration;

use sluice_client::{ClientConfig, Consumer, ConsumerConfig, OffsetReset, SeekTo};
use tokio::sync::watch;
use tokio::time::Instant;

use sluice_client::backoff::random_u64;

use super::produce::{produce, Payload};
use super::report::{latency_histogram, record_latency, Percentiles, Summary, Target};
use super::schedule::Stop;
use super::{stamp, CONSUME_IDLE_LIMIT};
use crate::args::BenchProduceArgs;
use crate::connect;

/// Longest `poll` of the end-to-end consumer before it checks whether the run is over.
const END_TO_END_POLL: Duration = Duration::from_millis(100);
/// Time between connecting the producers and the first intended send: lets the consumer's
/// first fetch reach the broker, so that the first records do not also measure its start.
const END_TO_END_LEAD: Duration = Duration::from_millis(200);

/// What the consumer saw.
#[derive(Debug)]
struct Consumed {
    records: u64,
    /// The earliest intended send time among the records.
    first_intended: Option<Instant>,
    /// When the last record was consumed.
    last: Instant,
    latencies: hdrhistogram::Histogram<u64>,
}

/// One end-to-end run at `target` until `stop`; returns the `end-to-end` line.
pub async fn run(
    config: &ClientConfig,
    args: &BenchProduceArgs,
    record_size: usize,
    target: Target,
    stop: Stop,
) -> anyhow::Result<Summary> {
    let mut consumer = Consumer::new(
        connect(config.clone()).await?,
        ConsumerConfig { auto_offset_reset: OffsetReset::Latest, ..ConsumerConfig::default() },
    );
    for partition in consumer.assign_topic(&args.topic).await? {
        consumer.seek(&partition, SeekTo::End).await?;
    }
    let run_id = random_u64();
    let (expected_sender, expected) = watch::channel(None);
    let reader = tokio::spawn(consume(consumer, run_id, expected));
    let payload = Payload::Stamped { run_id, lead: END_TO_END_LEAD };
    let produced = produce(config, args, record_size, Some(target), stop, payload).await;
    let produced = match produced {
        Ok(summary) => summary,
        Err(error) => {
            reader.abort();
            return Err(error);
        }
    };
    let _ = expected_sender.send(Some(produced.records));
    let consumed = reader.await??;
    Ok(Summary {
        benchmark: "end-to-end",
        latency: "produce-to-consume",
        target: Some(target),
        records: consumed.records,
        bytes: consumed.records * record_size as u64,
        elapsed: consumed.first_intended.map_or(Duration::ZERO, |first| consumed.last.saturating_duration_since(first)),
        percentiles: Percentiles::of(&consumed.latencies),
    })
}

/// Reads this run's records until as many arrived as `expected` says were produced.
async fn consume(
    mut consumer: Consumer,
    run_id: u64,
    expected: watch::Receiver<Option<u64>>,
) -> anyhow::Result<Consumed> {
    let mut consumed =
        Consumed { records: 0, first_intended: None, last: Instant::now(), latencies: latency_histogram() };
    loop {
        let records = consumer.poll(END_TO_END_POLL).await?;
        let now = Instant::now();
        for record in &records {
            let Some(intended) = record.value.as_deref().and_then(|value| stamp::read(value, run_id)) else {
                continue; // not this run's
            };
            record_latency(&mut consumed.latencies, now.saturating_duration_since(intended));
            consumed.first_intended = Some(consumed.first_intended.map_or(intended, |first| first.min(intended)));
            consumed.records += 1;
            consumed.last = now;
        }
        if let Some(produced) = *expected.borrow() {
            if consumed.records >= produced {
                return Ok(consumed);
            }
            anyhow::ensure!(
                consumed.last.elapsed() < CONSUME_IDLE_LIMIT,
                "end-to-end: only {} of {produced} produced records were consumed",
                consumed.records
            );
        }
    }
}
