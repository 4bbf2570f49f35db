//! One produce run: producers on a schedule (or unbounded), their values, and the `produce`
//! line.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use sluice_client::{ClientConfig, Delivery, Producer, ProducerRecord};
use tokio::time::Instant;

use super::random_value;
use super::report::{latency_histogram, Percentiles, Summary, Target};
use super::schedule::{drive, Schedule, Stop};
use super::stamp;
use crate::args::BenchProduceArgs;
use crate::connect;

/// Distinct random values a produce run cycles through: enough that compression is not
/// flattered by one repeated value, few enough that the benchmark does not measure its random
/// generator.
const VALUE_POOL_SIZE: usize = 16;

/// What goes in each record's value.
#[derive(Debug, Clone, Copy)]
pub enum Payload {
    /// One of [`VALUE_POOL_SIZE`] random values.
    Pool,
    /// A random value that starts with a stamp ([`stamp`]): the run's id and the record's
    /// intended send time. The schedule starts `lead` after the producers are connected.
    Stamped { run_id: u64, lead: Duration },
}

/// The values of one producer's records.
#[derive(Debug)]
struct Values {
    payload: Payload,
    pool: Vec<Bytes>,
}

impl Values {
    fn new(payload: Payload, size: usize) -> Values {
        Values { payload, pool: (0..VALUE_POOL_SIZE).map(|_| random_value(size)).collect() }
    }

    fn value(&self, index: u64, intended: Instant) -> Bytes {
        let template = &self.pool[index as usize % self.pool.len()];
        match self.payload {
            Payload::Pool => template.clone(),
            Payload::Stamped { run_id, .. } => {
                let mut value = BytesMut::from(&template[..]);
                stamp::write(&mut value, run_id, intended);
                value.freeze()
            }
        }
    }
}

/// One produce run: `--producers` producers on `target`'s schedule (split evenly) or
/// unbounded, until `stop`. Returns the `produce` line (latency `ack` unbounded,
/// `ack-from-intended` at a fixed rate).
pub async fn produce(
    config: &ClientConfig,
    args: &BenchProduceArgs,
    record_size: usize,
    target: Option<Target>,
    stop: Stop,
    payload: Payload,
) -> anyhow::Result<Summary> {
    let producer_count = u64::from(args.producers);
    let mut producers = Vec::new();
    for _ in 0..producer_count {
        let cluster = connect(config.clone()).await?;
        producers.push(Producer::new(cluster, args.producer.config()).await?);
    }
    let start = match payload {
        Payload::Stamped { lead, .. } => Instant::now() + lead,
        Payload::Pool => Instant::now(),
    };
    let topic: Arc<str> = args.topic.as_str().into();
    let total = match (stop, target) {
        (Stop::Records(records), _) => Some(records),
        (Stop::Duration(_), Some(target)) => Schedule::fixed_rate(target.records_per_s, stop).records(),
        (Stop::Duration(_), None) => None,
    };
    let progress = crate::progress::counting(total, "records acknowledged", crate::progress::stderr());
    let mut tasks = tokio::task::JoinSet::new();
    for (index, producer) in producers.into_iter().enumerate() {
        let share = match stop {
            Stop::Records(records) => {
                Stop::Records(records / producer_count + u64::from((index as u64) < records % producer_count))
            }
            Stop::Duration(duration) => Stop::Duration(duration),
        };
        let schedule = match target {
            Some(target) => Schedule::fixed_rate(target.records_per_s / producer_count as f64, share),
            None => Schedule::unbounded(share),
        };
        let values = Values::new(payload, record_size);
        tasks.spawn(produce_share(producer, topic.clone(), schedule, start, values, progress.clone()));
    }
    let mut latencies = latency_histogram();
    let mut finished = start;
    while let Some(joined) = tasks.join_next().await {
        let sent = joined.context("a producer task failed")??;
        latencies.add(&sent.latencies).context("cannot merge latency histograms")?;
        finished = finished.max(sent.finished);
    }
    progress.finish_and_clear();
    let records = latencies.len();
    Ok(Summary {
        benchmark: "produce",
        latency: if target.is_some() { "ack-from-intended" } else { "ack" },
        target,
        records,
        bytes: records * record_size as u64,
        elapsed: finished - start,
        percentiles: Percentiles::of(&latencies),
    })
}

async fn produce_share(
    producer: Producer,
    topic: Arc<str>,
    schedule: Schedule,
    start: Instant,
    values: Values,
    progress: indicatif::ProgressBar,
) -> anyhow::Result<super::schedule::Sent> {
    let producer = &producer;
    let values = &values;
    let sent = drive(schedule, start, progress, move |index, intended| {
        let record = ProducerRecord {
            topic: topic.to_string(),
            value: Some(values.value(index, intended)),
            ..ProducerRecord::default()
        };
        async move { Ok(Acked(producer.send(record).await?)) }
    })
    .await?;
    producer.flush().await?;
    Ok(sent)
}

/// A record's [`Delivery`] as the benchmark loop reads it.
struct Acked(Delivery);

impl std::future::Future for Acked {
    type Output = anyhow::Result<()>;

    fn poll(mut self: std::pin::Pin<&mut Self>, context: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(context).map(|result| result.map(drop).map_err(anyhow::Error::from))
    }
}

impl super::schedule::Acknowledgement for Acked {
    fn settled_at(&self) -> Option<Instant> {
        self.0.settled_at().map(Instant::from_std)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_to_end_value_carries_its_run_and_intended_time() {
        let intended = stamp::origin() + Duration::from_micros(1500);
        let values = Values::new(Payload::Stamped { run_id: 7, lead: Duration::ZERO }, 64);
        let value = values.value(3, intended);
        assert_eq!(value.len(), 64);
        assert_eq!(stamp::read(&value, 7), Some(intended));
        assert_eq!(&value[stamp::STAMP_BYTES..], &values.pool[3][stamp::STAMP_BYTES..]);
        let plain = Values::new(Payload::Pool, 64);
        assert_eq!(plain.value(1, intended), plain.pool[1]);
    }
}
