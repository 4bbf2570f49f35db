//! Behaviour of one partition log through its public API: appends, reads, rolls, indexes,
//! timestamps, truncation, retention, compaction, flush failures and bad input. Every test
//! uses real RecordBatch v2 bytes built by kafka-protocol and decodes what it reads back with
//! kafka-protocol's decoder, as a consumer would.

mod common;

use common::{decode, read_all, ManualClock};
use sluice_log::testing::{batch, batch_with, Compression, KeyValue};
use sluice_log::{CleanupPolicy, Fault, FlushPolicy, Log, LogConfig, LogError, SyncCause};

fn small_config() -> LogConfig {
    LogConfig { segment_bytes: 4096, index_interval_bytes: 256, retention_ms: None, ..LogConfig::default() }
}

fn value(i: usize) -> Vec<u8> {
    format!("value-{i:05}-{}", "x".repeat(i % 50)).into_bytes()
}

/// Appends `n` single-batch appends of `per_batch` records; returns the values in order.
fn fill(log: &mut Log, n: usize, per_batch: usize, ts: i64) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for b in 0..n {
        let vals: Vec<Vec<u8>> = (0..per_batch).map(|i| value(b * per_batch + i)).collect();
        let recs: Vec<KeyValue> = vals.iter().map(|v| (None, Some(v.as_slice()))).collect();
        let mut bytes = batch(0, &recs, ts + b as i64 * 10);
        log.append(&mut bytes, 1).unwrap();
        all.extend(vals);
    }
    all
}

#[test]
fn append_assigns_offsets_and_reads_return_exact_records() {
    // Goal: offsets are assigned contiguously from 0 and a read from any offset returns the
    // batch holding it and what follows, byte-identical to what was appended.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let values = fill(&mut log, 200, 3, 1_000);
    assert_eq!(log.log_end_offset(), 600);
    assert!(log.segment_base_offsets().len() > 5, "small segments roll");
    let all = read_all(&log, 0, 1000);
    assert_eq!(all.len(), 600);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.as_deref(), Some(values[i].as_slice()));
    }
    for from in [0, 1, 2, 3, 299, 301, 598, 599] {
        let r = log.read(from, 1, 600).unwrap();
        let recs = decode(&r.to_vec().unwrap());
        assert!(recs.first().unwrap().offset <= from && recs.last().unwrap().offset >= from, "batch holding {from}");
    }
    assert!(log.read(600, 1000, 600).unwrap().regions.is_empty());
    assert!(matches!(log.read(601, 1000, 600), Err(LogError::OffsetOutOfRange { .. })));
    assert!(matches!(log.read(-1, 1000, 600), Err(LogError::OffsetOutOfRange { .. })));
}

#[test]
fn read_respects_max_bytes_upper_bound_and_returns_one_oversized_batch() {
    // Goal: max_bytes limits whole batches but never returns nothing when a batch exists, and
    // the upper bound (high watermark) is never crossed.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig { retention_ms: None, ..LogConfig::default() }).unwrap();
    fill(&mut log, 10, 10, 0);
    let r = log.read(0, 1, 100).unwrap();
    assert_eq!(r.next_offset, 10, "one batch even when it exceeds max_bytes");
    let r = log.read(0, 1_000_000, 35).unwrap();
    assert_eq!(r.next_offset, 30, "no batch whose last offset reaches the upper bound");
    assert!(log.read(0, 1_000_000, 5).unwrap().regions.is_empty());
}

#[test]
fn invalid_batches_are_refused_and_nothing_is_written() {
    // Goal: bad CRC, bad magic, truncated data and oversized batches get a typed error with a
    // Kafka code, and the log is unchanged.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig { batch_bytes_max: 2000, ..small_config() }).unwrap();
    fill(&mut log, 2, 2, 0);
    let before = (log.log_end_offset(), log.size_bytes());
    let good = batch(0, &[(None, Some(b"v".as_slice()))], 0);
    let mut crc = good.clone();
    let last = crc.len() - 1;
    crc[last] ^= 0x40;
    assert_eq!(log.append(&mut crc, 1).unwrap_err().kafka_error_code(), 2);
    let mut magic = good.clone();
    magic[16] = 1;
    assert!(log.append(&mut magic, 1).is_err());
    let mut short = good[..good.len() - 3].to_vec();
    assert!(log.append(&mut short, 1).is_err());
    // A valid batch followed by a corrupt one: neither is written.
    let mut pair = good.clone();
    pair.extend_from_slice(&crc);
    assert!(log.append(&mut pair, 1).is_err());
    let big_value = vec![7u8; 3000];
    let mut big = batch(0, &[(None, Some(big_value.as_slice()))], 0);
    assert_eq!(log.append(&mut big, 1).unwrap_err().kafka_error_code(), 10);
    let mut empty: Vec<u8> = Vec::new();
    assert!(log.append(&mut empty, 1).is_err());
    assert_eq!((log.log_end_offset(), log.size_bytes()), before);
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    // Goal: ListOffsets by timestamp returns the exact first record with timestamp >= ts,
    // across segments and inside compressed batches.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for b in 0..50i64 {
        let recs: Vec<KeyValue> = (0..4).map(|_| (None, Some(b"0123456789".as_slice()))).collect();
        let mut bytes = batch_with(Compression::Lz4, 0, &recs, 10_000 + b * 100);
        log.append(&mut bytes, 0).unwrap();
    }
    // Batch b holds offsets 4b..4b+3 with timestamps 10000 + 100b + (0..4).
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 10_000)));
    assert_eq!(log.offset_for_timestamp(10_002).unwrap(), Some((2, 10_002)));
    assert_eq!(log.offset_for_timestamp(10_004).unwrap(), Some((4, 10_100)));
    assert_eq!(log.offset_for_timestamp(12_501).unwrap(), Some((101, 12_501)));
    assert_eq!(log.offset_for_timestamp(14_903).unwrap(), Some((199, 14_903)));
    assert_eq!(log.offset_for_timestamp(14_904).unwrap(), None);
}

#[test]
fn offset_of_max_timestamp_is_the_first_record_carrying_it() {
    // Goal: ListOffsets' max-timestamp query finds the record with the largest timestamp
    // wherever its segment is, and the earliest one on a tie. Method: 50 batches of 4
    // records over several segments, timestamps out of order; then a later batch that repeats
    // the largest timestamp.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.offset_of_max_timestamp().unwrap(), None);
    let values: Vec<Vec<u8>> = (0..200).map(value).collect();
    for b in 0..50i64 {
        let recs: Vec<KeyValue> = (0..4).map(|i| (None, Some(values[(b * 4 + i) as usize].as_slice()))).collect();
        // Batch b's records carry 10000 + 100 * ((37 b) mod 50) + (0..4): batch 27 has the
        // largest, 14900..14903, at offsets 108..111.
        let mut bytes = batch(0, &recs, 10_000 + ((b * 37) % 50) * 100);
        log.append(&mut bytes, 0).unwrap();
    }
    let segments = log.segment_base_offsets();
    assert!(segments.len() > 2, "the records span several segments: {segments:?}");
    assert_eq!(log.offset_of_max_timestamp().unwrap(), Some((111, 14_903)));
    let recs: Vec<KeyValue> = (0..4).map(|_| (None, Some(b"0123456789".as_slice()))).collect();
    let mut tie = batch(0, &recs, 14_900);
    log.append(&mut tie, 0).unwrap();
    assert_eq!(log.offset_of_max_timestamp().unwrap(), Some((111, 14_903)));
}

#[test]
fn segments_roll_by_age() {
    // Goal: segment.ms rolls the active segment once its first batch is older than the limit.
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let config = LogConfig { segment_ms: 60_000, retention_ms: None, ..LogConfig::default() };
    let mut log = Log::open_with_clock(dir.path(), config, clock.clone()).unwrap();
    fill(&mut log, 1, 1, 1_000_000);
    clock.advance(30_000);
    fill(&mut log, 1, 1, 1_030_000);
    assert_eq!(log.segment_base_offsets(), vec![0]);
    clock.advance(31_000);
    fill(&mut log, 1, 1, 1_061_000);
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn segment_jitter_rolls_segments_earlier() {
    // Goal: segment.jitter.ms takes a random amount below the jitter off each new segment's
    // age limit, as Kafka does; without jitter a segment rolls only past segment.ms.
    // Method: a batch, then one 999 999 ms later, under segment.ms = 1 000 000. Without
    // jitter the log keeps one segment; with a jitter of 1 000 000 it rolls unless the
    // segment drew a jitter below 2 (one chance in 500 000 per log): of three logs, at least
    // two must roll.
    let rolled = |jitter_ms: u64| {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_ms: 1_000_000,
            segment_jitter_ms: jitter_ms,
            retention_ms: None,
            ..LogConfig::default()
        };
        let mut log = Log::open(dir.path(), config).unwrap();
        fill(&mut log, 1, 1, 5_000_000);
        fill(&mut log, 1, 1, 5_999_999);
        log.segment_base_offsets().len() > 1
    };
    assert!(!rolled(0));
    assert!((0..3).filter(|_| rolled(1_000_000)).count() >= 2);
}

#[test]
fn compacted_logs_roll_and_compact_by_the_maximum_compaction_lag() {
    // Goal: max.compaction.lag.ms on a compacted log rolls its active segment at that age
    // (so its records become cleanable) and makes a pass due although the dirty ratio is low.
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        max_compaction_lag_ms: 60_000,
        min_cleanable_dirty_ratio: 0.99,
        ..small_config()
    };
    let mut log = Log::open_with_clock(dir.path(), config, clock.clone()).unwrap();
    let keyed = |log: &mut Log, key: &[u8], ts: i64| {
        let mut b = batch(0, &[(Some(key), Some(b"v".as_slice()))], ts);
        log.append(&mut b, 0).unwrap();
        log.set_high_watermark(log.log_end_offset());
    };
    for i in 0..20 {
        keyed(&mut log, b"big", 1_000_000 + i);
    }
    log.roll().unwrap();
    log.compact().unwrap();
    assert_eq!(log.cleaning_plan().dirty_bytes, 0);
    keyed(&mut log, b"k", 1_000_000);
    keyed(&mut log, b"k", 1_050_000);
    assert_eq!(log.segment_base_offsets().len(), 2, "50 s is below the lag");
    keyed(&mut log, b"k", 1_070_000);
    assert_eq!(log.segment_base_offsets().len(), 3, "70 s is past the lag: rolled");
    clock.set(1_050_000);
    assert_eq!(log.compact_if_due().unwrap(), None, "the dirty record is 50 s old; ratio below 0.99");
    clock.set(1_061_000);
    let outcome = log.compact_if_due().unwrap().expect("past the maximum lag");
    assert_eq!(outcome.records_removed, 1, "the older k");
}

#[test]
fn compaction_waits_for_the_dirty_ratio_and_spares_young_records() {
    // Goal: compact_if_due runs only above min.cleanable.dirty.ratio, counting what earlier
    // passes cleaned as clean; min.compaction.lag.ms keeps records younger than the lag out
    // of any pass.
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(2_000_000);
    let config = LogConfig { cleanup_policy: CleanupPolicy::Compact, min_compaction_lag_ms: 30_000, ..small_config() };
    let mut log = Log::open_with_clock(dir.path(), config, clock.clone()).unwrap();
    let keyed = |log: &mut Log, key: &str, value: &[u8], ts: i64| {
        let mut b = batch(0, &[(Some(key.as_bytes()), Some(value))], ts);
        log.append(&mut b, 0).unwrap();
        log.set_high_watermark(log.log_end_offset());
    };
    // 40 distinct keys, old; then every key once more with a longer value, young.
    for i in 0..40 {
        keyed(&mut log, &format!("key-{i}"), b"value", 1_900_000);
    }
    log.roll().unwrap();
    for i in 0..40 {
        keyed(&mut log, &format!("key-{i}"), b"a newer value", 1_990_000);
    }
    log.roll().unwrap();
    let plan = log.cleaning_plan();
    assert_eq!(plan.due, Some(sluice_log::CompactionDue::DirtyRatio), "never compacted: all dirty");
    let young = log.segment_base_offsets().into_iter().find(|&base| base >= 40).unwrap();
    assert_eq!(plan.first_uncleanable_offset, young, "the young copies (10 s old) are uncleanable");
    let outcome = log.compact_if_due().unwrap().expect("due");
    assert_eq!(outcome.records_removed, 0, "the old records' newer copies are too young to count");
    assert_eq!(read_all(&log, 0, 1 << 20).len(), 80);
    assert_eq!(log.compact_if_due().unwrap(), None, "nothing dirty is cleanable");
    // Past the lag, the young segment is dirty and cleanable: more than half the log.
    clock.advance(30_000);
    let outcome = log.compact_if_due().unwrap().expect("due");
    assert_eq!(outcome.records_removed, 40);
    assert_eq!(read_all(&log, 0, 1 << 20).len(), 40);
    // A little new dirt is below the ratio; a ratio of 0 compacts it.
    keyed(&mut log, "key-0", b"value", 2_030_000);
    log.roll().unwrap();
    clock.advance(60_000);
    assert_eq!(log.compact_if_due().unwrap(), None);
    drop(log);
    let config = LogConfig { cleanup_policy: CleanupPolicy::Compact, min_cleanable_dirty_ratio: 0.0, ..small_config() };
    let mut log = Log::open_with_clock(dir.path(), config, clock.clone()).unwrap();
    assert!(log.compact_if_due().unwrap().is_some());
    assert_eq!(log.compact_if_due().unwrap(), None, "compacted: nothing dirty");
    assert_eq!(read_all(&log, 0, 1 << 20).len(), 40);
}

#[test]
fn truncation_and_leader_epochs_follow_kip_101() {
    // Goal: epochs are recorded as leaders append; truncate_to cuts at a batch boundary and
    // drops the epochs it removed; end_offset_for_epoch answers OffsetForLeaderEpoch.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let one = |log: &mut Log, epoch: i32| {
        let mut b = batch(0, &[(None, Some(b"a".as_slice())), (None, Some(b"b".as_slice()))], 0);
        log.append(&mut b, epoch).unwrap()
    };
    for _ in 0..50 {
        one(&mut log, 1);
    }
    for _ in 0..50 {
        one(&mut log, 3);
    }
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 100)));
    assert_eq!(log.end_offset_for_epoch(2), Some((1, 100)));
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 200)));
    log.set_high_watermark(150);
    // Offset 151 is inside batch [150, 151]: the whole batch goes.
    assert_eq!(log.truncate_to(151).unwrap(), 150);
    assert_eq!(log.high_watermark(), 150);
    assert_eq!(log.truncate_to(99).unwrap(), 98);
    assert_eq!(log.leader_epochs().latest_epoch(), Some(1));
    assert_eq!(read_all(&log, 0, 10_000).len(), 98);
    one(&mut log, 4);
    assert_eq!(log.log_end_offset(), 100);
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 98)));
    assert_eq!(log.end_offset_for_epoch(4), Some((4, 100)));
    assert_eq!(read_all(&log, 0, 10_000).len(), 100);
}

#[test]
fn replicated_appends_must_continue_the_log() {
    // Goal: a follower appends the leader's bytes unchanged; a batch that overlaps its log is
    // refused.
    let dir = tempfile::tempdir().unwrap();
    let leader_dir = tempfile::tempdir().unwrap();
    let mut leader = Log::open(leader_dir.path(), small_config()).unwrap();
    fill(&mut leader, 20, 2, 0);
    let mut follower = Log::open(dir.path(), small_config()).unwrap();
    let mut offset = 0;
    while offset < leader.log_end_offset() {
        let r = leader.read(offset, 300, leader.log_end_offset()).unwrap();
        follower.append_replicated(&r.to_vec().unwrap()).unwrap();
        offset = r.next_offset;
    }
    assert_eq!(follower.log_end_offset(), 40);
    assert_eq!(read_all(&follower, 0, 1000), read_all(&leader, 0, 1000));
    assert_eq!(follower.leader_epochs().entries(), leader.leader_epochs().entries());
    let again = leader.read(10, 100, 40).unwrap().to_vec().unwrap();
    assert!(matches!(follower.append_replicated(&again), Err(LogError::NonContiguous { .. })));
    truncate_fully(&mut follower);
}

fn truncate_fully(log: &mut Log) {
    log.truncate_fully_and_start_at(1234).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1234, 1234));
    assert_eq!(log.segment_base_offsets(), vec![1234]);
}

#[test]
fn retention_deletes_old_segments_but_readers_finish() {
    // Goal: retention by size and by age deletes whole segments below the high watermark only,
    // advances the log start, and a reader holding a region of a deleted segment still reads it.
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(100_000);
    let config = LogConfig { retention_bytes: Some(10_000), retention_ms: Some(50_000), ..small_config() };
    let mut log = Log::open_with_clock(dir.path(), config, clock.clone()).unwrap();
    fill(&mut log, 100, 3, 100_000);
    let held = log.read(0, 1000, log.log_end_offset()).unwrap();
    assert_eq!(log.apply_retention().unwrap().segments_deleted, 0, "nothing below the high watermark");
    log.set_high_watermark(log.log_end_offset());
    let outcome = log.apply_retention().unwrap();
    assert!(outcome.segments_deleted > 0);
    assert!(log.size_bytes() < 10_000 + 4096);
    assert!(log.log_start_offset() > 0);
    assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
    assert!(!dir.path().join("00000000000000000000.log").exists());
    let recs = decode(&held.to_vec().unwrap());
    assert_eq!(recs[0].offset, 0, "the held region is still readable after its file was deleted");
    assert!(matches!(log.read(0, 100, 300), Err(LogError::OffsetOutOfRange { .. })));
    // Age: everything is older than 50 s once the clock moves on; an empty active segment stays.
    clock.advance(1_000_000);
    log.apply_retention().unwrap();
    assert_eq!(log.log_start_offset(), 300);
    assert_eq!(log.log_end_offset(), 300);
    assert_eq!(log.segment_base_offsets(), vec![300]);
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (300, 300));
}

#[test]
fn delete_records_moves_the_log_start_mid_segment_and_survives_a_reopen() {
    // Goal: DeleteRecords moves the log start to any offset up to the high watermark, even in
    // the middle of a batch; segments wholly below it are deleted, reads below it are out of
    // range, the earliest timestamp lookup never returns an offset below it, and the new start
    // survives a reopen (clean or not). Above the high watermark is refused and moving back
    // down changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    fill(&mut log, 100, 3, 1_000);
    let segments_before = log.segment_base_offsets().len();
    assert!(matches!(log.delete_records_before(10), Err(LogError::OffsetOutOfRange { .. })), "above the HW");
    log.set_high_watermark(200);
    assert!(matches!(log.delete_records_before(201), Err(LogError::OffsetOutOfRange { .. })));
    assert_eq!(log.delete_records_before(151).unwrap(), 151, "offset 151 is the middle of batch 150..152");
    assert_eq!(log.log_start_offset(), 151);
    assert!(log.segment_base_offsets().len() < segments_before, "segments below 151 deleted");
    assert!(log.segment_base_offsets()[0] <= 151);
    assert!(matches!(log.read(150, 100, 200), Err(LogError::OffsetOutOfRange { .. })));
    let first = read_all(&log, 151, 1000);
    assert!(first.iter().any(|r| r.offset == 151), "the batch holding the start is served");
    assert_eq!(log.offset_for_timestamp(0).unwrap().map(|(offset, _)| offset), Some(151));
    assert_eq!(log.delete_records_before(100).unwrap(), 151, "moving down changes nothing");
    log.close().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 151, "the start survives a reopen");
    // Everything up to the log end: an empty active segment remains, appends go on.
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.delete_records_before(300).unwrap(), 300);
    assert_eq!(log.segment_base_offsets(), vec![300]);
    assert_eq!(log.size_bytes(), 0);
    fill(&mut log, 1, 2, 5_000);
    assert_eq!(read_all(&log, 300, 1000).len(), 2);
    drop(log); // no close: the next open recovers as after a crash
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (300, 302));
}

#[test]
fn compaction_keeps_the_newest_record_per_key_and_offsets() {
    // Goal: compaction keeps exactly the newest record per key below the cleanable point, in
    // every codec, keeps offsets, and drops tombstones only after delete_retention_ms.
    for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000_000);
        let config = LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            delete_retention_ms: 10_000,
            segment_bytes: 512,
            ..small_config()
        };
        let mut log = Log::open_with_clock(dir.path(), config.clone(), clock.clone()).unwrap();
        for round in 0..30i64 {
            let keys: Vec<Vec<u8>> = (0..5).map(|k| format!("key-{}", (round + k) % 7).into_bytes()).collect();
            let vals: Vec<Vec<u8>> = (0..5).map(|k| format!("v{round}-{k}").into_bytes()).collect();
            let recs: Vec<KeyValue> = keys
                .iter()
                .zip(&vals)
                .enumerate()
                .map(|(k, (key, v))| {
                    (Some(key.as_slice()), if round == 20 && k == 0 { None } else { Some(v.as_slice()) })
                })
                .collect();
            let mut b = batch_with(codec, 0, &recs, 1_000_000);
            log.append(&mut b, 0).unwrap();
        }
        let before = read_all(&log, 0, 100_000);
        log.set_high_watermark(log.log_end_offset());
        let uncleanable = log.first_uncleanable_offset();
        let outcome = log.compact().unwrap();
        assert!(outcome.records_removed > 0, "{codec:?}");
        let after = read_all(&log, 0, 100_000);
        // Records at or past the uncleanable offset are untouched; below it, only the newest per key.
        let newest_below: std::collections::HashMap<Vec<u8>, i64> =
            before.iter().filter(|r| r.offset < uncleanable).map(|r| (r.key.clone().unwrap(), r.offset)).collect();
        let got_below: Vec<_> = after.iter().filter(|r| r.offset < uncleanable).cloned().collect();
        let want_below: Vec<_> = before
            .iter()
            .filter(|r| r.offset < uncleanable && newest_below[r.key.as_ref().unwrap()] == r.offset)
            .cloned()
            .collect();
        assert_eq!(got_below, want_below, "{codec:?}");
        assert_eq!(
            after.iter().filter(|r| r.offset >= uncleanable).count(),
            before.iter().filter(|r| r.offset >= uncleanable).count()
        );
        // A reopened log reads the same.
        drop(log);
        let mut log = Log::open_with_clock(dir.path(), config.clone(), clock.clone()).unwrap();
        assert_eq!(read_all(&log, 0, 100_000), after);
        // Tombstones below the cleanable point go once delete_retention_ms has passed.
        let tombstones =
            |recs: &[common::Rec]| recs.iter().filter(|r| r.value.is_none() && r.offset < uncleanable).count();
        clock.advance(20_000);
        log.compact().unwrap();
        let expired = read_all(&log, 0, 100_000);
        assert_eq!(tombstones(&expired), 0, "{codec:?}");
        assert!(tombstones(&after) <= 1);
    }
}

#[test]
fn every_segment_sync_is_reported_with_its_cause() {
    // Goal: the broker's fsync latency histogram sees each sync the log makes, with why: one
    // per append under flush.messages=1, one for the sealed segment when a segment rolls, and
    // one per unsynced segment on an explicit flush; under the Os policy an append syncs
    // nothing.
    // Method: an observer that records causes, around appends, a roll and a flush.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let observer = {
        let seen = std::sync::Arc::clone(&seen);
        std::sync::Arc::new(move |cause: SyncCause, _: std::time::Duration| seen.lock().unwrap().push(cause))
    };
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig { flush: FlushPolicy::EveryBatch, ..small_config() }).unwrap();
    log.observe_syncs(observer.clone());
    fill(&mut log, 3, 1, 0);
    assert_eq!(*seen.lock().unwrap(), vec![SyncCause::Policy; 3]);
    log.roll().unwrap();
    assert_eq!(seen.lock().unwrap().last(), Some(&SyncCause::Roll));
    fill(&mut log, 1, 1, 0);
    seen.lock().unwrap().clear();
    log.flush().unwrap();
    let flushed = seen.lock().unwrap().clone();
    assert!(!flushed.is_empty() && flushed.iter().all(|cause| *cause == SyncCause::Flush), "{flushed:?}");
    assert_eq!(SyncCause::Policy.as_str(), "policy");

    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig { flush: FlushPolicy::Os, ..small_config() }).unwrap();
    seen.lock().unwrap().clear();
    log.observe_syncs(observer);
    fill(&mut log, 3, 1, 0);
    assert!(seen.lock().unwrap().is_empty(), "the Os policy leaves appends to the page cache");
}

#[test]
fn a_failed_fsync_poisons_the_log() {
    // Goal: after fsync fails the log refuses writes (the page cache can't be trusted), and a
    // reopen re-validates what is on disk and accepts writes again.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { flush: FlushPolicy::EveryBatch, ..small_config() };
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    fill(&mut log, 3, 1, 0);
    log.inject_fault(Fault::FailNextSync);
    let mut b = batch(0, &[(None, Some(b"x".as_slice()))], 0);
    assert!(matches!(log.append(&mut b, 0), Err(LogError::Poisoned { .. })));
    let mut b = batch(0, &[(None, Some(b"y".as_slice()))], 0);
    let err = log.append(&mut b, 0).unwrap_err();
    assert!(matches!(err, LogError::Poisoned { .. }));
    assert_eq!(err.kafka_error_code(), 56);
    assert!(log.truncate_to(1).is_err());
    assert!(log.close().is_err(), "a poisoned log does not claim a clean shutdown");
    let mut log = Log::open(dir.path(), config).unwrap();
    assert!(log.log_end_offset() >= 3);
    log.append(&mut b, 0).unwrap();
}

#[test]
fn a_write_that_finds_no_space_is_refused_cut_back_and_does_not_poison() {
    // Goal: ENOSPC on a segment write is a refusal, not a failed fsync: the partial batch it
    // left on disk is cut off, nothing is appended, the log says why, and the next append
    // (once there is space) continues the log; a reopen finds no torn tail.
    // Method: the NoSpaceOnNextWrite fault writes half a batch and fails with StorageFull.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { flush: FlushPolicy::EveryBatch, ..small_config() };
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    fill(&mut log, 3, 1, 0);
    let before = read_all(&log, 0, 100_000);
    let size_before = log.size_bytes();
    log.inject_fault(Fault::NoSpaceOnNextWrite);
    let mut refused = batch(0, &[(None, Some(b"refused".as_slice()))], 0);
    let error = log.append(&mut refused, 0).unwrap_err();
    assert!(matches!(error, LogError::OutOfSpace { .. }), "{error}");
    assert_eq!(error.kafka_error_code(), 56);
    assert!(log.out_of_space_cause().is_some());
    assert_eq!((log.log_end_offset(), log.size_bytes()), (3, size_before));
    let segment = dir.path().join(format!("{:020}.log", 0));
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), size_before, "the partial batch is cut off");
    assert!(log.probe_space().unwrap(), "this disk has space");
    assert!(log.out_of_space_cause().is_none());
    let mut accepted = batch(0, &[(None, Some(b"accepted".as_slice()))], 0);
    assert_eq!(log.append(&mut accepted, 0).unwrap().first_offset, 3);
    log.close().unwrap();
    let log = Log::open(dir.path(), config).unwrap();
    let after = read_all(&log, 0, 100_000);
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(after[3].value.as_deref(), Some(b"accepted".as_slice()));
}

#[test]
fn clean_close_skips_recovery_and_reopens_identically() {
    // Goal: a closed log reopens with the same offsets, data, high watermark and log start.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    fill(&mut log, 120, 2, 5);
    log.set_high_watermark(200);
    let before = read_all(&log, 0, 10_000);
    log.close().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.high_watermark(), 200);
    assert_eq!(log.log_end_offset(), 240);
    assert_eq!(read_all(&log, 0, 10_000), before);
    assert!(Log::open(dir.path(), small_config()).is_err(), "a second handle on the same directory is refused");
}

/// File descriptors of this process that point into `dir` (any thread's, so a test counts only
/// files of its own temporary directory).
fn descriptors_into(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.starts_with(&dir))
        .collect()
}

#[test]
fn a_log_holds_one_descriptor_for_its_active_segment_and_opens_sealed_ones_when_read() {
    // Goal (issue 14, partition scale): indexes are memory-mapped without a descriptor, a
    // sealed segment gives its descriptor up when it rolls and opens it again only when read,
    // and a log opened without its lock file holds exactly one descriptor, its active
    // segment's; reads through every path still see every record.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { flush: FlushPolicy::EveryBatch, ..small_config() };
    let mut log = Log::open_without_lock(dir.path(), config.clone()).unwrap();
    let active_file = |log: &Log| dir.path().join(format!("{:020}.log", log.segment_base_offsets().last().unwrap()));
    assert_eq!(descriptors_into(dir.path()), vec![active_file(&log)]);

    let values = fill(&mut log, 120, 3, 1_000);
    assert!(log.segment_base_offsets().len() > 5, "small segments roll");
    assert_eq!(descriptors_into(dir.path()), vec![active_file(&log)], "sealed segments hold no descriptor");

    // Reading the first segment opens it (the index lookup works on the mapping alone).
    let r = log.read(1, 1, log.log_end_offset()).unwrap();
    assert_eq!(decode(&r.to_vec().unwrap())[1].value.as_deref(), Some(values[1].as_slice()));
    let first = dir.path().join(format!("{:020}.log", 0));
    let mut open = descriptors_into(dir.path());
    open.sort();
    assert_eq!(open, vec![first, active_file(&log)]);
    drop(r);

    // The periodic release keeps a descriptor used since its last call and closes it at the
    // next call if nothing used it again; a later read opens it once more.
    assert_eq!(log.release_unused_files(), 0, "read since the last release");
    assert_eq!(descriptors_into(dir.path()).len(), 2);
    assert_eq!(log.release_unused_files(), 1, "unused since the last release");
    assert_eq!(descriptors_into(dir.path()), vec![active_file(&log)]);
    let r = log.read(1, 1, log.log_end_offset()).unwrap();
    assert_eq!(decode(&r.to_vec().unwrap())[1].value.as_deref(), Some(values[1].as_slice()));
    assert_eq!(descriptors_into(dir.path()).len(), 2);
    drop(r);

    // Reopened, it holds the active segment alone again, and reads find every record.
    log.close().unwrap();
    assert!(descriptors_into(dir.path()).is_empty(), "a closed log holds nothing");
    let log = Log::open_without_lock(dir.path(), config.clone()).unwrap();
    assert_eq!(descriptors_into(dir.path()), vec![active_file(&log)]);
    let all = read_all(&log, 0, u64::MAX);
    assert_eq!(all.iter().map(|r| r.value.clone().unwrap()).collect::<Vec<_>>(), values);
    let segments = log.segment_base_offsets().len();
    assert_eq!(descriptors_into(dir.path()).len(), segments, "a full read opened every segment");
    let mut log = log;
    assert_eq!(log.release_unused_files() + log.release_unused_files(), segments - 1);
    assert_eq!(descriptors_into(dir.path()), vec![active_file(&log)], "the release closes every sealed one");
    drop(log);

    // `Log::open` takes the lock file as well (one more descriptor), and refuses a second open.
    let log = Log::open(dir.path(), config.clone()).unwrap();
    assert_eq!(descriptors_into(dir.path()).len(), 2);
    assert!(matches!(Log::open(dir.path(), config), Err(LogError::Damaged { .. })));
    drop(log);
}
