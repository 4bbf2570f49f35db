//! Storage benchmark for `sluice-log`, run with `cargo bench -p sluice-log` (or `just bench-log`).
//!
//! Prints, in one run and on the same directory:
//! - append throughput for ~16 KiB batches of 100-byte and 1 KiB records, with flush=OS and
//!   flush=every-batch;
//! - the machine's own limit for the same bytes: a plain `File::write_all` loop, and the same
//!   loop with `fdatasync` after every batch;
//! - sequential read throughput of the log from the page cache.
//!
//! Each case runs `SLUICE_BENCH_ROUNDS` times (default 5); within a round the log and the
//! reference alternate in 16 chunks so both see the same disk and page-cache state, and the
//! median round is reported. A flush=OS round writes 256 MiB per side by default, below the
//! kernel's background-writeback threshold on this machine (10% of 23 GiB), so both sides
//! measure page-cache writes rather than the disk.
//!
//! Environment: `SLUICE_BENCH_DIR` (default `target/bench-log` in the workspace),
//! `SLUICE_BENCH_OS_MIB` MiB per flush=OS round (default 256), `SLUICE_BENCH_SYNC_BATCHES`
//! batches per fsync round (default 2000), `SLUICE_BENCH_VALUES` record value sizes in bytes
//! (default `100,1024`).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sluice_log::testing::{batch, KeyValue};
use sluice_log::{FlushPolicy, Log, LogConfig};

const BATCH_TARGET_BYTES: usize = 16 * 1024;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A ~16 KiB batch of records with `value_bytes`-byte values, built by kafka-protocol.
fn template_batch(value_bytes: usize) -> (Vec<u8>, usize) {
    let value = vec![b'x'; value_bytes];
    let keys: Vec<Vec<u8>> = (0..10_000).map(|i| format!("key-{i:06}").into_bytes()).collect();
    let mut n = 1;
    loop {
        let recs: Vec<KeyValue> = (0..n + 1).map(|i| (Some(keys[i].as_slice()), Some(value.as_slice()))).collect();
        if batch(0, &recs, 1_700_000_000_000).len() > BATCH_TARGET_BYTES {
            let recs: Vec<KeyValue> = (0..n).map(|i| (Some(keys[i].as_slice()), Some(value.as_slice()))).collect();
            return (batch(0, &recs, 1_700_000_000_000), n);
        }
        n += 1;
    }
}

struct Measured {
    elapsed: Duration,
    bytes: u64,
}

impl Measured {
    fn mb_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

fn fresh_dir(root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// Appends `batches` copies of `template` to a fresh log and the same bytes to a plain file in
/// the same directory (with `fdatasync` per batch when `flush` is every-batch), alternating in
/// `CHUNKS` chunks so that both see the same disk and page-cache conditions. Returns the log's
/// and the reference's figures and the log.
fn interleaved(root: &Path, template: &[u8], batches: usize, flush: FlushPolicy) -> (Measured, Measured, Log) {
    const CHUNKS: usize = 16;
    settle(root);
    let log_dir = fresh_dir(root, "log");
    let plain_dir = fresh_dir(root, "plain");
    let config = LogConfig { flush, retention_ms: None, ..LogConfig::default() };
    let mut log = Log::open(&log_dir, config).unwrap();
    let mut plain = File::create(plain_dir.join("plain.bin")).unwrap();
    let sync_each = flush == FlushPolicy::EveryBatch;
    let mut buf = template.to_vec();
    let (mut ours, mut reference) = (Duration::ZERO, Duration::ZERO);
    let per_chunk = batches.div_ceil(CHUNKS);
    for chunk in 0..CHUNKS {
        let mut run_log = || {
            let start = Instant::now();
            for _ in 0..per_chunk {
                log.append(&mut buf, 0).unwrap();
            }
            start.elapsed()
        };
        let mut run_plain = || {
            let start = Instant::now();
            for _ in 0..per_chunk {
                plain.write_all(template).unwrap();
                if sync_each {
                    plain.sync_data().unwrap();
                }
            }
            start.elapsed()
        };
        if chunk % 2 == 0 {
            reference += run_plain();
            ours += run_log();
        } else {
            ours += run_log();
            reference += run_plain();
        }
    }
    let bytes = (template.len() * per_chunk * CHUNKS) as u64;
    (Measured { elapsed: ours, bytes }, Measured { elapsed: reference, bytes }, log)
}

fn sequential_read(log: &Log, max_bytes: u64) -> Measured {
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 2 * max_bytes as usize];
    let start = Instant::now();
    while offset < end {
        let r = log.read(offset, max_bytes, end).unwrap();
        for region in &r.regions {
            let n = region.len as usize;
            if buf.len() < n {
                buf.resize(n, 0);
            }
            region.read_into(&mut buf[..n]).unwrap();
            bytes += n as u64;
        }
        offset = r.next_offset;
    }
    Measured { elapsed: start.elapsed(), bytes }
}

/// Removes the previous run's files and waits until the kernel has written back dirty pages.
fn settle(root: &Path) {
    let _ = fs::remove_dir_all(root.join("plain"));
    let _ = std::process::Command::new("sync").status();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

#[allow(clippy::print_stdout)]
fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let root = PathBuf::from(
        std::env::var("SLUICE_BENCH_DIR")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench-log").into()),
    );
    fs::create_dir_all(&root).unwrap();
    let rounds = env_usize("SLUICE_BENCH_ROUNDS", 5);
    let os_bytes = env_usize("SLUICE_BENCH_OS_MIB", 256) * 1024 * 1024;
    let sync_batches = env_usize("SLUICE_BENCH_SYNC_BATCHES", 2000);
    println!("sluice-log benchmark — {} — dir {} — {rounds} rounds, median", machine(), root.display());
    println!("{:<44} {:>10} {:>12} {:>10} {:>8}", "case", "MB/s", "records/s", "ref MB/s", "ratio");
    let mut read_log: Option<Log> = None;
    let values: Vec<usize> = std::env::var("SLUICE_BENCH_VALUES")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1024]);
    for value_bytes in values {
        let (template, records_per_batch) = template_batch(value_bytes);
        for (flush, label, batches) in [
            (FlushPolicy::Os, "flush=OS", os_bytes / template.len()),
            (FlushPolicy::EveryBatch, "flush=every-batch", sync_batches),
        ] {
            let sync = flush == FlushPolicy::EveryBatch;
            let (mut ours, mut reference) = (Vec::new(), Vec::new());
            for round in 0..rounds {
                let (o, r, log) = interleaved(&root, &template, batches, flush);
                ours.push(o.mb_s());
                reference.push(r.mb_s());
                if !sync && value_bytes == 1024 && round + 1 == rounds {
                    read_log = Some(log);
                }
            }
            let (o, r) = (median(ours), median(reference));
            let records_s = o * 1e6 / template.len() as f64 * records_per_batch as f64;
            let name = format!("append {value_bytes} B records, {} B batches, {label}", template.len());
            let ref_name = if sync { "write+fdatasync" } else { "write" };
            println!(
                "{name:<44} {o:>10.1} {records_s:>12.0} {r:>10.1} {:>7.1}%  (reference: plain {ref_name} loop)",
                100.0 * o / r
            );
        }
    }
    if let Some(log) = read_log {
        let reads: Vec<f64> = (0..rounds).map(|_| sequential_read(&log, 1024 * 1024).mb_s()).collect();
        println!(
            "{:<44} {:>10.1}  (sequential read from page cache, 1 MiB reads, {} MiB log)",
            "read",
            median(reads),
            log.size_bytes() / (1024 * 1024)
        );
    }
    let _ = fs::remove_dir_all(root.join("log"));
    let _ = fs::remove_dir_all(root.join("plain"));
}
