//! Cost of produce validation (`sluice_log::validate::validate_produced`) against the append it
//! guards, run with `cargo bench -p sluice-log --bench validate_bench`.
//!
//! For ~16 KiB batches of 100-byte and 1 KiB records (keyed, as librdkafka batches them), in
//! every codec, prints the validation throughput (in uncompressed batch bytes per second, so
//! that codecs compare on the same records; the value bytes are one repeated letter, so they
//! compress far more than real data) and, for uncompressed batches, the throughput
//! of `Log::append` (flush=OS, page cache) of the same batches on a temporary directory, and
//! the ratio: validation time / append time, i.e. what validation adds to the log's own work
//! on the produce path. Each figure is the median of `SLUICE_BENCH_ROUNDS` (default 5) rounds
//! of `SLUICE_BENCH_VALIDATE_MIB` MiB (default 256).

use std::time::{Duration, Instant};

use sluice_log::testing::{batch_with, Compression, KeyValue};
use sluice_log::validate::{validate_produced, ValidationPolicy};
use sluice_log::{Log, LogConfig};

const BATCH_TARGET_BYTES: usize = 16 * 1024;
const NOW_MS: i64 = 1_700_000_000_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Records of `value_bytes` so that the uncompressed batch is about 16 KiB.
fn batch(codec: Compression, value_bytes: usize) -> Vec<u8> {
    let value = vec![b'x'; value_bytes];
    let count = (BATCH_TARGET_BYTES / (value_bytes + 20)).max(1);
    let keys: Vec<Vec<u8>> = (0..count).map(|i| format!("key-{i:06}").into_bytes()).collect();
    let records: Vec<KeyValue> = keys.iter().map(|k| (Some(k.as_slice()), Some(value.as_slice()))).collect();
    batch_with(codec, 0, &records, NOW_MS)
}

fn median(mut rounds: Vec<Duration>) -> Duration {
    rounds.sort();
    rounds[rounds.len() / 2]
}

// A benchmark reports on stdout.
#[allow(clippy::print_stdout)]
fn main() {
    let rounds = env_usize("SLUICE_BENCH_ROUNDS", 5);
    let mib = env_usize("SLUICE_BENCH_VALIDATE_MIB", 256);
    let policy = ValidationPolicy::for_config(&LogConfig::default());
    let dir = tempfile::tempdir().unwrap();
    println!("{:<8} {:>7} {:>14} {:>14} {:>10}", "codec", "value", "validate MB/s", "append MB/s", "ratio");
    for value_bytes in [100, 1024] {
        for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let template = batch(codec, value_bytes);
            // Throughput in uncompressed batch bytes, so codecs compare on the same records.
            let plain_bytes = batch(Compression::None, value_bytes).len();
            let batches = (mib << 20) / plain_bytes;
            let bytes = (batches * plain_bytes) as f64;
            let validate = median(
                (0..rounds)
                    .map(|_| {
                        let start = Instant::now();
                        for _ in 0..batches {
                            validate_produced(std::hint::black_box(&template), &policy, NOW_MS).unwrap();
                        }
                        start.elapsed()
                    })
                    .collect(),
            );
            let validate_mb_s = bytes / validate.as_secs_f64() / 1e6;
            if codec != Compression::None {
                println!(
                    "{:<8} {:>6}B {:>14.0} {:>14} {:>10}",
                    format!("{codec:?}"),
                    value_bytes,
                    validate_mb_s,
                    "-",
                    "-"
                );
                continue;
            }
            let append = median(
                (0..rounds)
                    .map(|round| {
                        let mut log =
                            Log::open(dir.path().join(format!("{value_bytes}-{round}")), LogConfig::default()).unwrap();
                        let mut buf = template.clone();
                        let start = Instant::now();
                        for _ in 0..batches {
                            log.append(&mut buf, 0).unwrap();
                        }
                        let elapsed = start.elapsed();
                        log.close().unwrap();
                        let _ = std::fs::remove_dir_all(dir.path().join(format!("{value_bytes}-{round}")));
                        elapsed
                    })
                    .collect(),
            );
            let append_mb_s = bytes / append.as_secs_f64() / 1e6;
            println!(
                "{:<8} {:>6}B {:>14.0} {:>14.0} {:>9.1}%",
                format!("{codec:?}"),
                value_bytes,
                validate_mb_s,
                append_mb_s,
                validate.as_secs_f64() / append.as_secs_f64() * 100.0
            );
        }
    }
}
