//! Commit latency and throughput of a 3-voter metadata group on loopback.
//!
//! Three `MetaNode`s run in this process, each with its own data directory (fsync on every
//! append batch, as in production) and its own TCP listener on 127.0.0.1; Raft RPCs go over
//! real loopback TCP. The bench measures:
//!
//! 1. sequential commit latency on the leader: one `AllocateProducerIds` at a time, time from
//!    `propose` to applied-on-leader;
//! 2. the same through a follower (forwarded to the leader over the RPC connection);
//! 3. throughput with `--concurrency` proposers on the leader, then on a follower.
//!
//! Run: `cargo run --release -p sluice-meta --example meta_bench -- [--sequential N]
//! [--total N] [--concurrency C] [--dir PATH] [--snapshot-logs N]`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use sluice_meta::Command;
use sluice_meta::CommandOutcome;
use sluice_meta::MetaConfig;
use sluice_meta::MetaNode;
use tokio::net::TcpListener;
use uuid::Uuid;

struct Options {
    snapshot_logs: Option<u64>,
    sequential: usize,
    total: usize,
    concurrency: usize,
    dir: Option<PathBuf>,
}

fn options() -> Options {
    let mut options = Options { snapshot_logs: None, sequential: 2_000, total: 20_000, concurrency: 64, dir: None };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).expect("every flag takes a value");
        match pair[0].as_str() {
            "--sequential" => options.sequential = value.parse().expect("--sequential N"),
            "--total" => options.total = value.parse().expect("--total N"),
            "--concurrency" => options.concurrency = value.parse().expect("--concurrency C"),
            "--dir" => options.dir = Some(PathBuf::from(value)),
            "--snapshot-logs" => options.snapshot_logs = Some(value.parse().expect("--snapshot-logs N")),
            other => panic!("unknown flag {other}"),
        }
    }
    options
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn report(label: &str, mut latencies: Vec<Duration>, elapsed: Duration) {
    latencies.sort();
    let rate = latencies.len() as f64 / elapsed.as_secs_f64();
    eprintln!(
        "{label:<32} n={:<6} p50={:>8.3} ms  p99={:>8.3} ms  max={:>8.3} ms  {:>9.0} commands/s",
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().expect("at least one sample").as_secs_f64() * 1e3,
        rate,
    );
}

async fn timed_proposals(node: Arc<MetaNode>, count: usize, broker_epoch: i64) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let proposed = node.propose(Command::AllocateProducerIds { broker_id: 1, broker_epoch }).await.unwrap();
        latencies.push(started.elapsed());
        assert!(matches!(proposed.outcome, CommandOutcome::ProducerIdsAllocated { .. }));
    }
    latencies
}

#[tokio::main]
async fn main() {
    let options = options();
    let temp = tempfile::tempdir().expect("temporary directory");
    let root = options.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let mut listeners = BTreeMap::new();
    for id in 1..=3u64 {
        listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let voters: BTreeMap<u64, String> =
        listeners.iter().map(|(id, l)| (*id, l.local_addr().unwrap().to_string())).collect();
    // All voters at once, as a cluster starts: each asks the others whether the group exists
    // before creating it, and would wait for a voter not started yet.
    let starts = listeners.into_iter().map(|(id, listener)| {
        let addr = listener.local_addr().unwrap();
        let mut config = MetaConfig::new(id, root.join(format!("node-{id}")), addr, voters.clone());
        if let Some(logs) = options.snapshot_logs {
            config.snapshot_logs_since_last = logs;
        }
        async move { (id, Arc::new(MetaNode::start_with_listener(config, listener).await.unwrap())) }
    });
    let nodes: BTreeMap<u64, Arc<MetaNode>> = futures::future::join_all(starts).await.into_iter().collect();
    let leader = loop {
        if let Some(leader) = nodes[&1].current_leader() {
            break leader;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let registered = nodes[&leader]
        .propose(Command::RegisterBroker {
            broker_id: 1,
            incarnation_id: Uuid::new_v4(),
            kafka_addr: "127.0.0.1:9092".into(),
            internal_addr: "127.0.0.1:9093".into(),
            rack: None,
        })
        .await
        .unwrap();
    let CommandOutcome::BrokerRegistered { broker_epoch } = registered.outcome else { panic!() };
    eprintln!("3 voters on loopback, data under {}, leader node {leader}", root.display());

    // Warm-up: connections, page cache, allocator.
    timed_proposals(nodes[&leader].clone(), 200, broker_epoch).await;

    let started = Instant::now();
    let latencies = timed_proposals(nodes[&leader].clone(), options.sequential, broker_epoch).await;
    report("sequential, on leader", latencies, started.elapsed());

    let started = Instant::now();
    let latencies = timed_proposals(nodes[&follower].clone(), options.sequential, broker_epoch).await;
    report("sequential, via follower", latencies, started.elapsed());

    let per_task = options.total / options.concurrency;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..options.concurrency {
        tasks.push(tokio::spawn(timed_proposals(nodes[&leader].clone(), per_task, broker_epoch)));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let label = format!("{} concurrent, on leader", options.concurrency);
    report(&label, latencies, started.elapsed());

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..options.concurrency {
        tasks.push(tokio::spawn(timed_proposals(nodes[&follower].clone(), per_task, broker_epoch)));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let label = format!("{} concurrent, via follower", options.concurrency);
    report(&label, latencies, started.elapsed());

    for node in nodes.values() {
        node.shutdown().await.unwrap();
    }
}
