//! Model-based property test: random sequences of append / read / roll / truncate / high
//! watermark / retention / compaction / close+reopen / crash+reopen, checked after every step
//! against a plain in-memory model of the log (a list of batches of records).
//!
//! Run more cases with `PROPTEST_CASES=1000 cargo test -p sluice-log --test model`.

mod common;

use std::collections::HashMap;

use common::{decode, read_all, ManualClock};
use proptest::prelude::*;
use sluice_log::testing::{as_key_values, batch_with, Compression, OwnedKeyValue};
use sluice_log::{CleanupPolicy, Log, LogConfig};

#[derive(Debug, Clone)]
enum Op {
    Append { records: Vec<(Option<u8>, Option<u16>)>, codec: u8 },
    Read { at: f64, max_bytes: u64 },
    Roll,
    Truncate { at: f64 },
    SetHighWatermark { at: f64 },
    Retention,
    Compact,
    AdvanceClock { ms: i64 },
    CloseReopen,
    CrashReopen,
}

fn op() -> impl Strategy<Value = Op> {
    let record = (proptest::option::weighted(0.9, 0u8..6), proptest::option::weighted(0.9, 0u16..300));
    prop_oneof![
        8 => (proptest::collection::vec(record, 1..12), 0u8..5).prop_map(|(records, codec)| Op::Append { records, codec }),
        3 => (0.0f64..1.0, 1u64..3000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => Just(Op::Roll),
        1 => (0.0f64..1.0).prop_map(|at| Op::Truncate { at }),
        3 => (0.0f64..1.0).prop_map(|at| Op::SetHighWatermark { at }),
        1 => Just(Op::Retention),
        2 => Just(Op::Compact),
        1 => (0i64..20_000).prop_map(|ms| Op::AdvanceClock { ms }),
        1 => Just(Op::CloseReopen),
        1 => Just(Op::CrashReopen),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct ModelRecord {
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
struct ModelBatch {
    base: i64,
    last: i64,
    max_timestamp: i64,
    records: Vec<ModelRecord>,
}

#[derive(Debug, Default)]
struct Model {
    batches: Vec<ModelBatch>,
    log_start: i64,
    log_end: i64,
    high_watermark: i64,
}

impl Model {
    fn records_from(&self, from: i64) -> Vec<ModelRecord> {
        self.batches.iter().flat_map(|b| b.records.iter()).filter(|r| r.offset >= from).cloned().collect()
    }
    fn pick(&self, at: f64) -> i64 {
        self.log_start + ((self.log_end - self.log_start) as f64 * at) as i64
    }
}

const DELETE_RETENTION_MS: u64 = 10_000;

fn config(segment_bytes: u64, index_interval_bytes: u32, retention_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes,
        retention_ms: None,
        retention_bytes: Some(retention_bytes),
        cleanup_policy: CleanupPolicy::CompactDelete,
        delete_retention_ms: DELETE_RETENTION_MS,
        ..LogConfig::default()
    }
}

fn check(log: &Log, model: &Model) {
    assert_eq!(log.log_end_offset(), model.log_end, "log end offset");
    assert_eq!(log.log_start_offset(), model.log_start, "log start offset");
    assert_eq!(log.high_watermark(), model.high_watermark, "high watermark");
    let got: Vec<ModelRecord> = read_all(log, model.log_start, 4096)
        .into_iter()
        .map(|r| ModelRecord { offset: r.offset, key: r.key, value: r.value })
        .collect();
    assert_eq!(got, model.records_from(model.log_start), "log contents");
}

fn run(ops: Vec<Op>, segment_bytes: u64, index_interval_bytes: u32, retention_bytes: u64) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let cfg = config(segment_bytes, index_interval_bytes, retention_bytes);
    let open =
        |clock: &std::sync::Arc<ManualClock>| Log::open_with_clock(dir.path(), cfg.clone(), clock.clone()).unwrap();
    let mut log = Some(open(&clock));
    let mut model = Model::default();
    for op in ops {
        let l = log.as_mut().unwrap();
        match op {
            Op::Append { records, codec } => {
                let codec =
                    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
                        [codec as usize];
                let owned: Vec<OwnedKeyValue> = records
                    .iter()
                    .map(|(k, v)| {
                        (k.map(|k| format!("key-{k}").into_bytes()), v.map(|n| vec![b'a' + (n % 26) as u8; n as usize]))
                    })
                    .collect();
                let refs = as_key_values(&owned);
                let now = clock.0.load(std::sync::atomic::Ordering::SeqCst);
                let mut bytes = batch_with(codec, 0, &refs, now);
                let info = l.append(&mut bytes, 0).unwrap();
                assert_eq!(info.first_offset, model.log_end);
                let n = owned.len() as i64;
                model.batches.push(ModelBatch {
                    base: model.log_end,
                    last: model.log_end + n - 1,
                    max_timestamp: now + n - 1,
                    records: owned
                        .into_iter()
                        .enumerate()
                        .map(|(i, (key, value))| ModelRecord { offset: model.log_end + i as i64, key, value })
                        .collect(),
                });
                model.log_end += n;
            }
            Op::Read { at, max_bytes } => {
                let from = model.pick(at);
                let r = l.read(from, max_bytes, model.log_end).unwrap();
                let recs = decode(&r.to_vec().unwrap());
                let want = model.records_from(from);
                if want.is_empty() {
                    assert!(recs.iter().all(|x| x.offset < from));
                } else {
                    // A batch the cleaner thinned keeps its last offset, so the batch holding
                    // `from` may have no record at or after it; the read still moves forward.
                    assert!(!r.regions.is_empty() && r.next_offset > from, "a read with data available makes progress");
                    let got: Vec<i64> = recs.iter().map(|x| x.offset).filter(|&o| o >= from).collect();
                    let want_offsets: Vec<i64> = want.iter().take(got.len()).map(|x| x.offset).collect();
                    assert_eq!(got, want_offsets);
                }
            }
            Op::Roll => l.roll().unwrap(),
            Op::Truncate { at } => {
                let to = model.pick(at);
                let new_end = l.truncate_to(to).unwrap();
                if to <= model.log_start {
                    model.batches.clear();
                    model.log_start = to;
                    model.log_end = to;
                    model.high_watermark = to;
                } else if to < model.log_end {
                    // The cut is at the batch holding `to` (or the first after it, across a
                    // compaction gap); the new end lies between the last kept batch and that cut.
                    let keep = model.batches.iter().take_while(|b| b.last < to).count();
                    let kept_end = model.batches[..keep].last().map_or(model.log_start, |b| b.last + 1);
                    let cut = model.batches.get(keep).map_or(to, |b| b.base.min(to));
                    assert!(new_end >= kept_end && new_end <= cut, "end {new_end} outside [{kept_end}, {cut}]");
                    model.batches.truncate(keep);
                    model.log_end = new_end;
                    model.high_watermark = model.high_watermark.min(new_end);
                }
                assert_eq!(new_end, model.log_end);
            }
            Op::SetHighWatermark { at } => {
                let hw = model.pick(at).max(model.high_watermark);
                l.set_high_watermark(hw);
                model.high_watermark = hw;
            }
            Op::Retention => {
                let before_size = l.size_bytes();
                l.apply_retention().unwrap();
                let start = l.log_start_offset();
                assert!(start >= model.log_start && start <= model.high_watermark.max(model.log_start));
                model.log_start = start;
                model.high_watermark = model.high_watermark.max(start);
                model.batches.retain(|b| b.last >= start);
                assert!(l.size_bytes() <= before_size);
            }
            Op::Compact => {
                let uncleanable = l.first_uncleanable_offset();
                l.compact().unwrap();
                let now = clock.0.load(std::sync::atomic::Ordering::SeqCst);
                let mut newest: HashMap<Vec<u8>, i64> = HashMap::new();
                for r in model.batches.iter().flat_map(|b| &b.records).filter(|r| r.offset < uncleanable) {
                    if let Some(k) = &r.key {
                        newest.insert(k.clone(), r.offset);
                    }
                }
                for b in model.batches.iter_mut().filter(|b| b.last < uncleanable) {
                    let expired = b.max_timestamp + (DELETE_RETENTION_MS as i64) < now;
                    b.records.retain(|r| match &r.key {
                        None => true,
                        Some(k) => newest[k] == r.offset && !(r.value.is_none() && expired),
                    });
                }
                model.batches.retain(|b| !b.records.is_empty());
            }
            Op::AdvanceClock { ms } => clock.advance(ms),
            Op::CloseReopen => {
                log.take().unwrap().close().unwrap();
                log = Some(open(&clock));
            }
            Op::CrashReopen => {
                drop(log.take());
                log = Some(open(&clock));
                // Only checkpoints written before the crash carry the high watermark.
                let l = log.as_ref().unwrap();
                assert!(l.high_watermark() <= model.high_watermark && l.high_watermark() >= model.log_start);
                model.high_watermark = l.high_watermark();
            }
        }
        check(log.as_ref().unwrap(), &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(
        ops in proptest::collection::vec(op(), 1..60),
        segment_bytes in prop_oneof![Just(300u64), Just(1024), Just(8192)],
        index_interval_bytes in prop_oneof![Just(1u32), Just(100), Just(4096)],
        retention_bytes in 500u64..20_000,
    ) {
        run(ops, segment_bytes, index_interval_bytes, retention_bytes);
    }
}
