//! The sluice-client producer of the chaos harness (`tests/chaos/`): an idempotent acks=all
//! producer that writes keyed records with unique values for a given time and prints one JSON
//! line per delivery result on stdout, so the harness's checker can compare what was
//! acknowledged with what the log holds.
//!
//! Usage: `chaos_producer BOOTSTRAP TOPIC NAME RATE SECONDS [KEYS]`
//!
//! Record `i` has key `k<i % KEYS>` and value `<NAME>-<i>`. Each line is
//! `{"producer":NAME,"topic":..,"key":..,"value":..,"partition":..,"offset":..,"sent":..,"at":..}`
//! for an acknowledgement, or the same without partition and offset and with `"error":".."` for
//! a failed delivery (an indeterminate result: the record may or may not be in the log). `sent`
//! is the wall-clock time `send` accepted the record and `at` the time of the result, both in
//! seconds since the Unix epoch (the harness compares them with its fault times to measure
//! failovers). After SECONDS it stops sending, waits for every outstanding result (bounded by
//! the producer's delivery timeout, 120 s) and exits 0; it exits 1 only when it cannot start.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use sluice_client::{ClientConfig, Cluster, Producer, ProducerConfig, ProducerRecord};

/// Keys when the command line names none: enough that every partition gets several.
const KEYS_DEFAULT: u64 = 16;
/// Time to obtain a producer id before giving up: the cluster may be mid-failover at start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn now_s() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn print_line(line: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means the harness is gone; nothing is left to report to.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// What every line about one record carries.
struct Sent {
    producer: String,
    topic: String,
    key: String,
    value: String,
    sent: f64,
}

impl Sent {
    fn line(&self) -> serde_json::Value {
        json!({"producer": self.producer, "topic": self.topic, "key": self.key, "value": self.value,
               "sent": self.sent})
    }

    fn acked(&self, partition: i32, offset: i64) -> serde_json::Value {
        let mut line = self.line();
        line["partition"] = json!(partition);
        line["offset"] = json!(offset);
        line["at"] = json!(now_s());
        line
    }

    fn failed(&self, error: &dyn std::fmt::Display) -> serde_json::Value {
        let mut line = self.line();
        line["error"] = json!(error.to_string());
        line["at"] = json!(now_s());
        line
    }
}

async fn start(bootstrap: &str, topic: &str) -> anyhow::Result<Producer> {
    let started = Instant::now();
    loop {
        let attempt = async {
            let cluster = Cluster::connect(ClientConfig::new(bootstrap)).await?;
            cluster.topic(topic).await?;
            Producer::new(cluster, ProducerConfig::default()).await
        };
        match attempt.await {
            Ok(producer) => return Ok(producer),
            Err(error) if started.elapsed() < START_TIMEOUT => {
                eprintln!("chaos_producer: not started yet: {error}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => anyhow::bail!("cannot start within {START_TIMEOUT:?}: {error}"),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() >= 6, "usage: chaos_producer BOOTSTRAP TOPIC NAME RATE SECONDS [KEYS]");
    let (bootstrap, topic, name) = (&args[1], args[2].clone(), args[3].clone());
    let rate: f64 = args[4].parse()?;
    let seconds: f64 = args[5].parse()?;
    let keys: u64 = args.get(6).map(|k| k.parse()).transpose()?.unwrap_or(KEYS_DEFAULT);
    anyhow::ensure!(rate > 0.0 && keys > 0, "RATE and KEYS must be positive");

    let producer = start(bootstrap, &topic).await?;
    let sending_started = Instant::now();
    let mut results = Vec::new();
    let mut index: u64 = 0;
    while sending_started.elapsed().as_secs_f64() < seconds {
        let due = sending_started + Duration::from_secs_f64(index as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let sent = Sent {
            producer: name.clone(),
            topic: topic.clone(),
            key: format!("k{}", index % keys),
            value: format!("{name}-{index}"),
            sent: now_s(),
        };
        index += 1;
        let record = ProducerRecord::new(topic.clone(), sent.value.clone()).with_key(sent.key.clone());
        match producer.send(record).await {
            Ok(delivery) => results.push(tokio::spawn(async move {
                match delivery.await {
                    Ok(metadata) => print_line(&sent.acked(metadata.partition, metadata.offset)),
                    Err(error) => print_line(&sent.failed(&error)),
                }
            })),
            Err(error) => print_line(&sent.failed(&error)),
        }
    }
    if let Err(error) = producer.flush().await {
        eprintln!("chaos_producer: flush: {error}");
    }
    for result in results {
        result.await?;
    }
    eprintln!("chaos_producer: sent {index} record(s)");
    Ok(())
}
