//! Crash tests: build a log of real RecordBatch v2 bytes (uncompressed, gzip, snappy, lz4 and
//! zstd, encoded by kafka-protocol), stop it cleanly or "crash" it (drop without close), then
//! damage its files the way a crash or a bad disk would — cut the active segment or an index at
//! a random byte, flip random bits in the active segment or an index, append garbage — and
//! reopen. The log must equal a prefix of what was appended (everything before the damage, at
//! least), every batch read must pass its CRC, and the log must accept appends again.
//!
//! Seeds are fixed so a failure reproduces; `SLUICE_CRASH_ITERATIONS` runs more.

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use common::{read_all, Rec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_log::testing::{as_key_values, batch_with, Compression, OwnedKeyValue};
use sluice_log::{Log, LogConfig};

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

fn config() -> LogConfig {
    LogConfig { segment_bytes: 16 * 1024, index_interval_bytes: 512, retention_ms: None, ..LogConfig::default() }
}

/// Appends random batches; returns every record appended with its batch's byte extent in the
/// active segment file (for segments other than the active one the extent is not needed).
fn build(dir: &Path, rng: &mut StdRng) -> Vec<Rec> {
    let mut log = Log::open(dir, config()).unwrap();
    let mut appended = Vec::new();
    let batches = rng.gen_range(1..80);
    for b in 0..batches {
        let n = rng.gen_range(1..20);
        let owned: Vec<OwnedKeyValue> = (0..n)
            .map(|i| {
                let key = rng.gen_bool(0.7).then(|| format!("k{}", rng.gen_range(0..50)).into_bytes());
                let len = rng.gen_range(0..400);
                let value: Vec<u8> = if rng.gen_bool(0.5) {
                    vec![b'a' + (i % 26) as u8; len]
                } else {
                    (0..len).map(|_| rng.gen()).collect()
                };
                (key, Some(value))
            })
            .collect();
        let refs = as_key_values(&owned);
        let ts = 1_700_000_000_000 + b as i64 * 1000;
        let mut bytes = batch_with(CODECS[rng.gen_range(0..CODECS.len())], 0, &refs, ts);
        let info = log.append(&mut bytes, 1).unwrap();
        for (i, (key, value)) in owned.into_iter().enumerate() {
            appended.push(Rec { offset: info.first_offset + i as i64, key, value, timestamp: ts + i as i64 });
        }
    }
    if rng.gen_bool(0.5) {
        log.close().unwrap();
    } else {
        drop(log); // a crash: no clean-shutdown checkpoint, active indexes untrimmed
    }
    appended
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn flip_bits(path: &Path, rng: &mut StdRng, from: u64) {
    let mut bytes = fs::read(path).unwrap();
    if bytes.len() as u64 <= from {
        return;
    }
    for _ in 0..rng.gen_range(1..4) {
        let at = rng.gen_range(from as usize..bytes.len());
        bytes[at] ^= 1 << rng.gen_range(0..8);
    }
    fs::write(path, bytes).unwrap();
}

fn cut(path: &Path, rng: &mut StdRng) {
    let len = fs::metadata(path).unwrap().len();
    let at = rng.gen_range(0..=len);
    OpenOptions::new().write(true).open(path).unwrap().set_len(at).unwrap();
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Damage {
    CutActiveSegment,
    FlipActiveSegment,
    GarbageAfterActiveSegment,
    CutIndex,
    FlipIndex,
}

fn forget_clean_shutdown(dir: &Path) {
    // A torn write means the process died: the clean-shutdown checkpoint can't exist. Flip the
    // clean flag off by removing the checkpoint (the log then recovers from its first segment).
    let _ = fs::remove_file(dir.join("partition.checkpoint"));
}

fn one_case(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let appended = build(dir.path(), &mut rng);
    let damage = [
        Damage::CutActiveSegment,
        Damage::FlipActiveSegment,
        Damage::GarbageAfterActiveSegment,
        Damage::CutIndex,
        Damage::FlipIndex,
    ][rng.gen_range(0..5)];
    let segments = files_with(dir.path(), "log");
    let active = segments.last().unwrap().clone();
    let damages_data =
        matches!(damage, Damage::CutActiveSegment | Damage::FlipActiveSegment | Damage::GarbageAfterActiveSegment);
    match damage {
        Damage::CutActiveSegment => cut(&active, &mut rng),
        Damage::FlipActiveSegment => flip_bits(&active, &mut rng, 0),
        Damage::GarbageAfterActiveSegment => {
            let mut bytes = fs::read(&active).unwrap();
            bytes.extend((0..rng.gen_range(1..200)).map(|_| rng.gen::<u8>()));
            fs::write(&active, bytes).unwrap();
        }
        Damage::CutIndex | Damage::FlipIndex => {
            let mut indexes = files_with(dir.path(), "index");
            indexes.extend(files_with(dir.path(), "timeindex"));
            let victim = indexes[rng.gen_range(0..indexes.len())].clone();
            if damage == Damage::CutIndex {
                cut(&victim, &mut rng);
            } else {
                flip_bits(&victim, &mut rng, 0);
            }
        }
    }
    if damages_data {
        forget_clean_shutdown(dir.path());
    }

    let mut log =
        Log::open(dir.path(), config()).unwrap_or_else(|e| panic!("seed {seed}: reopen failed after {damage:?}: {e}"));
    let got = read_all(&log, 0, 64 * 1024); // read_all checks every batch's CRC
    assert!(got.len() <= appended.len(), "seed {seed}");
    assert_eq!(
        got,
        appended[..got.len()],
        "seed {seed}: after {damage:?} the log is not a prefix of what was appended"
    );
    assert_eq!(log.log_end_offset(), got.last().map_or(0, |r| r.offset + 1), "seed {seed}: log end");
    if !damages_data {
        assert_eq!(got.len(), appended.len(), "seed {seed}: index damage ({damage:?}) must not lose data");
    } else {
        // Only the active segment was damaged: everything in earlier segments survives.
        let first_active_offset: i64 = active.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        assert!(got.len() as i64 >= first_active_offset, "seed {seed}: data before the active segment was lost");
    }
    // Timestamp lookups agree with the surviving data.
    if let Some(r) = got.get(got.len() / 2) {
        let found = log.offset_for_timestamp(r.timestamp).unwrap().unwrap();
        assert!(found.0 <= r.offset, "seed {seed}");
    }
    // The log continues where the valid prefix ends, and survives another reopen.
    let mut more =
        batch_with(Compression::None, 0, &[(Some(b"after".as_slice()), Some(b"crash".as_slice()))], 1_800_000_000_000);
    let info = log.append(&mut more, 2).unwrap();
    assert_eq!(info.first_offset, got.len() as i64);
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    let again = read_all(&log, 0, 64 * 1024);
    assert_eq!(again.len(), got.len() + 1, "seed {seed}");
    assert_eq!(again[..got.len()], got[..]);
}

#[test]
fn damaged_logs_recover_to_a_valid_prefix() {
    let iterations: u64 = std::env::var("SLUICE_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    for seed in 0..iterations {
        one_case(seed);
    }
}

#[test]
fn torn_write_in_the_middle_of_a_batch_is_cut_off() {
    // Goal: the classic torn write — the last batch only partly reached the disk.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    for i in 0..10 {
        let v = vec![i as u8; 1000];
        let mut b = batch_with(Compression::Zstd, 0, &[(None, Some(v.as_slice()))], 0);
        log.append(&mut b, 0).unwrap();
    }
    drop(log);
    let seg = dir.path().join("00000000000000000000.log");
    let len = fs::metadata(&seg).unwrap().len();
    OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 5).unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(read_all(&log, 0, 1 << 20).len(), 9);
}

#[test]
fn a_lost_not_clean_checkpoint_brings_back_a_clean_one_that_is_not_trusted_after_appends() {
    // Goal: an opening log writes its not-clean checkpoint without syncing it. A power failure
    // may lose it and bring back the clean-shutdown checkpoint it replaced; that one must then
    // not be trusted for a segment that was appended to since (here with the last append torn),
    // and must be trusted when the failure lost every append (the segment is as it was).
    let value = |i: u8| vec![i; 700];
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    for i in 0..10 {
        let v = value(i);
        log.append(&mut batch_with(Compression::None, 0, &[(None, Some(v.as_slice()))], 1_000), 0).unwrap();
    }
    log.close().unwrap();
    let checkpoint = dir.path().join("partition.checkpoint");
    let clean = fs::read(&checkpoint).unwrap();
    let segment = dir.path().join("00000000000000000000.log");
    let clean_len = fs::metadata(&segment).unwrap().len();

    // Reopened (the not-clean checkpoint written), appended to, then the power fails: the
    // checkpoint reverts to the clean one and the last append is torn.
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_ne!(fs::read(&checkpoint).unwrap(), clean, "an open log's checkpoint does not say clean");
    for i in 10..15 {
        let v = value(i);
        log.append(&mut batch_with(Compression::None, 0, &[(None, Some(v.as_slice()))], 1_000), 0).unwrap();
    }
    drop(log);
    fs::write(&checkpoint, &clean).unwrap();
    let len = fs::metadata(&segment).unwrap().len();
    OpenOptions::new().write(true).open(&segment).unwrap().set_len(len - 5).unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let got = read_all(&log, 0, 1 << 20);
    assert_eq!(
        got.iter().map(|r| r.value.clone().unwrap()).collect::<Vec<_>>(),
        (0..14).map(value).collect::<Vec<_>>()
    );
    assert_eq!(log.log_end_offset(), 14);
    drop(log);

    // The failure lost every append since the clean shutdown: the clean checkpoint holds.
    fs::write(&checkpoint, &clean).unwrap();
    OpenOptions::new().write(true).open(&segment).unwrap().set_len(clean_len).unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(read_all(&log, 0, 1 << 20).len(), 10);
    assert_eq!(log.log_end_offset(), 10);
}
