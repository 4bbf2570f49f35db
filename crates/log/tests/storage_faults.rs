//! Storage faults, one test per fault (issue 12): build a real log of RecordBatch v2 bytes,
//! damage its files on disk the way the fault would, reopen, and check what recovery does.
//! The table in `docs/reliability.md` ("Storage faults") lists each fault, the behaviour
//! decided for it and the test here that checks it.
//!
//! The rule the tests pin down: damage at the unsynced tail (above the recovery point, the
//! offset below which every byte was fsynced before the checkpoint said so) is what a crash
//! leaves — recovery cuts the log back to the last whole, CRC-valid batch and says so in one
//! log line. Damage below the recovery point is the disk's: cutting there would silently lose
//! acknowledged records in the middle of the log, so the log refuses to open with a
//! `Damaged` error that says what to do, and changes nothing. Indexes and checkpoints are
//! derived data: rebuilt, never trusted blindly.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{read_all, Rec};
use sluice_log::batch::BatchHeader;
use sluice_log::testing::{batch, KeyValue};
use sluice_log::{EpochEntry, FlushPolicy, Log, LogConfig, LogError};

/// Four or five segments of ~40 single-record batches each.
fn config() -> LogConfig {
    LogConfig { segment_bytes: 4096, index_interval_bytes: 256, retention_ms: None, ..LogConfig::default() }
}

const TIMESTAMP_BASE: i64 = 1_700_000_000_000;

fn value(i: usize) -> Vec<u8> {
    format!("value-{i:05}-{}", "x".repeat(i % 40)).into_bytes()
}

/// Appends batches `from..to` (one record each, timestamp `TIMESTAMP_BASE + 10 * i`) under
/// `epoch`.
fn append_range(log: &mut Log, from: usize, to: usize, epoch: i32) {
    for i in from..to {
        let v = value(i);
        let records: Vec<KeyValue> = vec![(None, Some(v.as_slice()))];
        let mut bytes = batch(0, &records, TIMESTAMP_BASE + 10 * i as i64);
        let info = log.append(&mut bytes, epoch).unwrap();
        assert_eq!(info.first_offset, i as i64);
    }
}

fn expected(n: usize) -> Vec<Rec> {
    (0..n)
        .map(|i| Rec { offset: i as i64, key: None, value: Some(value(i)), timestamp: TIMESTAMP_BASE + 10 * i as i64 })
        .collect()
}

fn segment_path(dir: &Path, base: i64, extension: &str) -> PathBuf {
    dir.join(format!("{base:020}.{extension}"))
}

/// (byte position, header) of every batch in a segment file, parsed from its bytes.
fn batches_in(path: &Path) -> Vec<(usize, BatchHeader)> {
    let bytes = fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut position = 0;
    while let Some(h) = bytes.get(position..).and_then(BatchHeader::parse) {
        if h.total_bytes() < 61 || position + h.total_bytes() > bytes.len() {
            break;
        }
        out.push((position, h));
        position += h.total_bytes();
    }
    out
}

/// Flips one bit of the last record's value bytes of the batch holding `offset` (the record
/// data, not the header: only the CRC can notice).
fn flip_value_bit(path: &Path, offset: i64) {
    let (position, header) = batches_in(path).into_iter().find(|(_, h)| h.base_offset == offset).unwrap();
    let mut bytes = fs::read(path).unwrap();
    let at = position + header.total_bytes() - 3;
    bytes[at] ^= 0x04;
    fs::write(path, bytes).unwrap();
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
}

/// Every file of the directory with its contents, to show that a refusal changed nothing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

/// Log lines written while `f` runs on this thread (tracing, INFO and above, no colours).
fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (out, text)
}

fn count(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

const CUT_LINE: &str = "truncating a torn or corrupt segment tail";

/// The records of one read from `from` up to (not including) `upper`.
fn read_all_below(log: &Log, from: i64, upper: i64) -> Vec<Rec> {
    let read = log.read(from, 1, upper).unwrap();
    common::decode(&read.to_vec().unwrap()).into_iter().filter(|r| r.offset >= from).collect()
}

/// The log continues at `next` and survives a clean reopen with one more record.
fn appends_continue(dir: &Path, mut log: Log, next: i64) {
    let mut more = batch(0, &[(None, Some(b"after".as_slice()))], TIMESTAMP_BASE);
    assert_eq!(log.append(&mut more, 9).unwrap().first_offset, next);
    log.close().unwrap();
    let log = Log::open(dir, config()).unwrap();
    assert_eq!(log.log_end_offset(), next + 1);
}

#[test]
fn torn_batch_at_the_tail_is_cut_to_the_last_whole_batch() {
    // Goal: a crash in the middle of the last write (only part of the batch reached the disk)
    // loses that batch only; recovery says so in one line and the log continues there.
    // Method: 30 unflushed appends (flush policy Os: recovery point 0), a "crash" (drop
    // without close), the last batch cut in half.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    append_range(&mut log, 0, 30, 1);
    let active = segment_path(dir.path(), *log.segment_base_offsets().last().unwrap(), "log");
    drop(log);
    let (position, last) = *batches_in(&active).last().unwrap();
    set_len(&active, (position + last.total_bytes() / 2) as u64);

    let (log, lines) = capture_logs(|| Log::open(dir.path(), config()).unwrap());
    assert_eq!(log.log_end_offset(), 29);
    assert_eq!(read_all(&log, 0, 64 * 1024), expected(29));
    assert_eq!(count(&lines, CUT_LINE), 1, "one line says what was cut:\n{lines}");
    assert!(lines.contains("first_lost_offset=29"), "{lines}");
    assert_eq!(fs::metadata(&active).unwrap().len(), position as u64, "the file ends at the last whole batch");
    appends_continue(dir.path(), log, 29);
}

#[test]
fn zero_filled_tail_is_cut_and_nothing_else() {
    // Goal: a tail of zeros (a preallocated file, or ext4 data=writeback after a crash: the
    // size was updated, the data never written) is cut; every batch before it stays.
    // Method: a clean close (recovery point = log end), then 8 KiB of zeros appended to the
    // active segment; and the same after a crash.
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).unwrap();
        append_range(&mut log, 0, 50, 1);
        let active = segment_path(dir.path(), *log.segment_base_offsets().last().unwrap(), "log");
        if clean {
            log.close().unwrap();
        } else {
            drop(log);
        }
        let size = fs::metadata(&active).unwrap().len();
        append_bytes(&active, &[0u8; 8192]);

        let (log, lines) = capture_logs(|| Log::open(dir.path(), config()).unwrap());
        assert_eq!(log.log_end_offset(), 50, "clean: {clean}");
        assert_eq!(read_all(&log, 0, 64 * 1024), expected(50));
        assert_eq!(count(&lines, CUT_LINE), 1, "{lines}");
        assert_eq!(fs::metadata(&active).unwrap().len(), size);
        appends_continue(dir.path(), log, 50);
    }
}

#[test]
fn bit_flip_in_an_unflushed_batch_cuts_the_log_there_and_never_serves_it() {
    // Goal: a batch above the recovery point that fails its CRC (the crash interrupted the
    // page cache's writeback) is never served: the log ends before it, as Kafka's recovery
    // does; replication, not fsync, brings the lost tail back.
    // Method: 40 unflushed appends in one segment, a crash, one bit of batch 25's record data
    // flipped.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig { segment_bytes: 1 << 20, ..config() }).unwrap();
    append_range(&mut log, 0, 40, 1);
    drop(log);
    flip_value_bit(&segment_path(dir.path(), 0, "log"), 25);

    let (log, lines) = capture_logs(|| Log::open(dir.path(), config()).unwrap());
    assert_eq!(log.log_end_offset(), 25);
    assert_eq!(read_all(&log, 0, 64 * 1024), expected(25), "read_all checks every CRC");
    assert_eq!(count(&lines, CUT_LINE), 1, "{lines}");
    assert!(lines.contains("first_lost_offset=25"), "{lines}");
    appends_continue(dir.path(), log, 25);
}

#[test]
fn bit_flip_below_the_recovery_point_refuses_to_open_and_changes_nothing() {
    // Goal: a batch that was fsynced (below the recovery point) and now fails its CRC is the
    // disk's fault, not a crash's: cutting there would silently drop acknowledged, synced
    // records in the middle of the log. The log refuses to open with an error that names the
    // file, the byte and the offset and says what to do, and changes nothing on disk.
    // (Before the fix: the log opened, cut at batch 20 and lost the 22 records after it.)
    // Method: 30 appends, flush (recovery point 30), 12 more unflushed, a crash, one bit of
    // batch 20's record data flipped.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig { segment_bytes: 1 << 20, ..config() }).unwrap();
    append_range(&mut log, 0, 30, 1);
    log.flush().unwrap();
    append_range(&mut log, 30, 42, 1);
    drop(log);
    flip_value_bit(&segment_path(dir.path(), 0, "log"), 20);
    let before = snapshot(dir.path());

    let error = Log::open(dir.path(), config()).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, LogError::Damaged { .. }), "{text}");
    assert_eq!(error.kafka_error_code(), 56, "KAFKA_STORAGE_ERROR");
    assert!(text.contains("00000000000000000000.log") && text.contains("(offset 20)"), "{text}");
    assert!(text.contains("recovery point 30") && text.contains("re-replicate"), "{text}");
    assert_eq!(snapshot(dir.path()), before, "a refusal changes no segment file");
}

#[test]
fn damaged_header_in_a_synced_sealed_segment_is_never_served_and_nothing_is_deleted() {
    // Goal: a clean shutdown, then the disk damages a batch header in the middle of a sealed
    // segment. Opening trusts synced segments (it walks only the headers after the last index
    // entry: a full scan at every start would read the whole log, and Kafka does not either),
    // so the damage is found when the batch is read: the read fails with an error that names
    // the file and the byte, the batches before it are served, and no segment is deleted.
    // (Before the fix: the read returned a 7 MB "batch" of whatever followed in the file.)
    // Method: ~4 segments, clean close, the batch-length field of a middle batch of the second
    // segment overwritten with 7 000 000.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    append_range(&mut log, 0, 150, 1);
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 4, "{bases:?}");
    log.close().unwrap();
    let victim = segment_path(dir.path(), bases[1], "log");
    let batches = batches_in(&victim);
    let (position, header) = batches[batches.len() / 2];
    let damaged = header.base_offset;
    let mut bytes = fs::read(&victim).unwrap();
    bytes[position + 8..position + 12].copy_from_slice(&7_000_000i32.to_be_bytes());
    fs::write(&victim, bytes).unwrap();
    let before = snapshot(dir.path());

    let log = Log::open(dir.path(), config()).unwrap();
    let served: Vec<Rec> = (0..damaged).flat_map(|offset| read_all_below(&log, offset, offset + 1)).collect();
    assert_eq!(served, expected(damaged as usize), "every batch before the damage is served");
    let (error, lines) = capture_logs(|| log.read(damaged, 1 << 20, 150).unwrap_err());
    let text = error.to_string();
    assert_eq!(error.kafka_error_code(), 56, "KAFKA_STORAGE_ERROR: {text}");
    assert!(text.contains(&format!("damaged at byte {position}")), "{text}");
    assert_eq!(count(&lines, "a batch header is damaged; the batch is not served"), 1, "{lines}");
    // A long read may jump over the damaged header with the offset index (it reads no header
    // between index entries); the CRC check every sender runs on the bytes catches it.
    let long = log.read(0, 1 << 30, 150).unwrap().to_vec().unwrap();
    let (at, offset) = sluice_log::batch::first_damaged_batch(&long).expect("the damage is found");
    assert_eq!(offset, damaged);
    assert_eq!(common::decode(&long[..at]), expected(damaged as usize), "intact up to the damage");
    drop(log);
    assert_eq!(snapshot(dir.path()), before, "every segment is still there, unchanged");
}

#[test]
fn bit_flip_in_synced_record_data_is_caught_by_the_read_check_and_never_served() {
    // Goal: a flipped bit inside the records of a synced batch (the header still adds up, so
    // neither opening nor the read path's header checks notice) is caught by the CRC-32C
    // check every reader of stored batches runs before sending them
    // (`batch::first_damaged_batch`, called by the broker's `read_regions` for consumer and
    // follower fetches and the coordinator's loading), which names the batch's offset.
    // Method: ~4 segments, clean close, one bit of batch 70's record data flipped.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    append_range(&mut log, 0, 150, 1);
    log.close().unwrap();
    let bases = Log::open(dir.path(), config()).unwrap().segment_base_offsets();
    let base = *bases.iter().rev().find(|b| **b <= 70).unwrap();
    flip_value_bit(&segment_path(dir.path(), base, "log"), 70);

    let log = Log::open(dir.path(), config()).unwrap();
    let clean = log.read(60, 1 << 20, 70).unwrap().to_vec().unwrap();
    assert_eq!(sluice_log::batch::first_damaged_batch(&clean), None, "60..70 are intact");
    let read = log.read(60, 1 << 20, 150).unwrap();
    let bytes = read.to_vec().unwrap();
    let (position, offset) = sluice_log::batch::first_damaged_batch(&bytes).expect("the flip is found");
    assert_eq!(offset, 70);
    assert_eq!(&bytes[..position], &clean[..], "everything before the damaged batch is intact");
}

#[test]
fn junk_after_a_synced_sealed_segment_is_cut_and_later_segments_stay() {
    // Goal: bytes after the last batch of a sealed segment whose batches reach the next
    // segment's base lose no offset: they are cut, and the segments after it are kept.
    // Method: ~4 segments, clean close, 300 bytes of zeros and 300 random bytes appended to
    // the first segment.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    append_range(&mut log, 0, 150, 1);
    let bases = log.segment_base_offsets();
    log.close().unwrap();
    let first = segment_path(dir.path(), bases[0], "log");
    let size = fs::metadata(&first).unwrap().len();
    let mut junk = vec![0u8; 300];
    junk.extend((0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    append_bytes(&first, &junk);

    let (log, lines) = capture_logs(|| Log::open(dir.path(), config()).unwrap());
    assert_eq!(log.segment_base_offsets(), bases);
    assert_eq!(read_all(&log, 0, 64 * 1024), expected(150));
    assert_eq!(count(&lines, CUT_LINE), 1, "{lines}");
    assert_eq!(fs::metadata(&first).unwrap().len(), size);
    appends_continue(dir.path(), log, 150);
}

#[test]
fn torn_sealed_segment_without_a_checkpoint_drops_the_segments_after_it() {
    // Goal: without a checkpoint nothing says what was synced, so recovery does what Kafka's
    // does: cut at the first bad batch and delete the segments after it (they follow a hole),
    // saying so; replication brings them back. Everything before the damage survives.
    // Method: ~4 segments, a crash, `partition.checkpoint` removed, the last batch of the
    // second segment cut in half.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    append_range(&mut log, 0, 150, 1);
    let bases = log.segment_base_offsets();
    drop(log);
    fs::remove_file(dir.path().join("partition.checkpoint")).unwrap();
    let victim = segment_path(dir.path(), bases[1], "log");
    let (position, last) = *batches_in(&victim).last().unwrap();
    set_len(&victim, (position + last.total_bytes() / 2) as u64);

    let (log, lines) = capture_logs(|| Log::open(dir.path(), config()).unwrap());
    assert_eq!(log.segment_base_offsets(), bases[..2]);
    assert_eq!(log.log_end_offset(), last.base_offset);
    assert_eq!(read_all(&log, 0, 64 * 1024), expected(last.base_offset as usize));
    assert_eq!(count(&lines, CUT_LINE), 1, "{lines}");
    assert_eq!(count(&lines, "deleting a segment after a truncated one"), bases.len() - 2, "{lines}");
    appends_continue(dir.path(), log, last.base_offset);
}

#[test]
fn segment_named_above_its_first_batch_refuses_to_open() {
    // Goal: a segment file whose name disagrees with its first batch (renamed or copied by
    // hand; no crash does that) is refused with a message that says which name would fit.
    // (Before the fix: the first batch was "out of order", so the whole segment was cut: the
    // log opened empty at offset 5 and every record was gone.)
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    append_range(&mut log, 0, 10, 1);
    log.close().unwrap();
    for extension in ["log", "index", "timeindex"] {
        fs::rename(segment_path(dir.path(), 0, extension), segment_path(dir.path(), 5, extension)).unwrap();
    }
    let before = snapshot(dir.path());

    let error = Log::open(dir.path(), config()).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, LogError::Damaged { .. }), "{text}");
    assert!(text.contains("named for offset 5 but its first batch starts at offset 0"), "{text}");
    assert!(text.contains("00000000000000000000.log"), "the fitting name: {text}");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn segment_named_below_its_first_batch_opens_as_after_compaction() {
    // Goal: a name below the first batch is what compaction leaves (the first batches were
    // cleaned away): legitimate, and the offsets are the batches' own.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    log.truncate_fully_and_start_at(100).unwrap();
    for i in 0..10 {
        let v = value(i);
        let mut bytes = batch(0, &[(None, Some(v.as_slice()))], TIMESTAMP_BASE);
        assert_eq!(log.append(&mut bytes, 1).unwrap().first_offset, 100 + i as i64);
    }
    log.close().unwrap();
    for extension in ["log", "index", "timeindex"] {
        fs::rename(segment_path(dir.path(), 100, extension), segment_path(dir.path(), 60, extension)).unwrap();
    }
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![60]);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 110));
    let got = read_all(&log, 100, 64 * 1024);
    assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), (100..110).collect::<Vec<_>>());
}

#[derive(Debug, Clone, Copy)]
enum IndexDamage {
    Missing,
    Empty,
    CutInHalf,
    Garbage,
    /// Every entry's position moved one byte on: still increasing, so it looks sane.
    ShiftedPositions,
}

fn damage_index(path: &Path, damage: IndexDamage) {
    match damage {
        IndexDamage::Missing => fs::remove_file(path).unwrap(),
        IndexDamage::Empty => set_len(path, 0),
        IndexDamage::CutInHalf => set_len(path, fs::metadata(path).unwrap().len() / 2),
        IndexDamage::Garbage => {
            let len = fs::metadata(path).unwrap().len() as u32;
            let bytes: Vec<u8> = (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
            fs::write(path, bytes).unwrap();
        }
        IndexDamage::ShiftedPositions => {
            // Offset index entries: (relative offset u32, position u32), 8 bytes each.
            let mut bytes = fs::read(path).unwrap();
            for entry in bytes.chunks_exact_mut(8) {
                let position = u32::from_be_bytes(entry[4..8].try_into().unwrap());
                entry[4..8].copy_from_slice(&(position + 1).to_be_bytes());
            }
            fs::write(path, bytes).unwrap();
        }
    }
}

#[test]
fn damaged_or_missing_indexes_are_rebuilt_and_lose_nothing() {
    // Goal: indexes are derived data. Whatever happened to an offset or time index — gone,
    // empty, cut, garbage, or plausible but wrong — every offset reads back exactly, and every
    // timestamp lookup finds the right record.
    // Method: ~4 segments, clean close (so the log trusts its files), one index of the second
    // segment damaged, reopen, then every offset read singly and every timestamp looked up.
    let damages = [
        IndexDamage::Missing,
        IndexDamage::Empty,
        IndexDamage::CutInHalf,
        IndexDamage::Garbage,
        IndexDamage::ShiftedPositions,
    ];
    for extension in ["index", "timeindex"] {
        for damage in damages {
            if extension == "timeindex" && matches!(damage, IndexDamage::ShiftedPositions) {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let mut log = Log::open(dir.path(), config()).unwrap();
            append_range(&mut log, 0, 150, 1);
            let bases = log.segment_base_offsets();
            log.close().unwrap();
            damage_index(&segment_path(dir.path(), bases[1], extension), damage);

            let log = Log::open(dir.path(), config()).unwrap();
            let case = format!("{extension} {damage:?}");
            assert_eq!(read_all(&log, 0, 64 * 1024), expected(150), "{case}");
            for offset in 0..150 {
                let got = read_all(&log, offset, 1);
                assert_eq!(got.first().map(|r| r.offset), Some(offset), "{case}: read at {offset}");
                let timestamp = TIMESTAMP_BASE + 10 * offset;
                assert_eq!(log.offset_for_timestamp(timestamp).unwrap(), Some((offset, timestamp)), "{case}");
            }
            appends_continue(dir.path(), log, 150);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum FileDamage {
    Missing,
    Empty,
    CutInHalf,
    Garbage,
}

fn damage_file(path: &Path, damage: FileDamage) {
    match damage {
        FileDamage::Missing => fs::remove_file(path).unwrap(),
        FileDamage::Empty => set_len(path, 0),
        FileDamage::CutInHalf => set_len(path, fs::metadata(path).unwrap().len() / 2),
        FileDamage::Garbage => {
            let len = fs::metadata(path).unwrap().len() as u32;
            fs::write(path, (0..len).map(|i| (i * 7 + 3) as u8).collect::<Vec<u8>>()).unwrap();
        }
    }
}

#[test]
fn damaged_partition_checkpoint_means_full_recovery_and_a_conservative_high_watermark() {
    // Goal: `partition.checkpoint` (log start, recovery point, high watermark, clean flag)
    // missing, empty, cut or garbage: the log recovers every segment from its first batch and
    // loses nothing; the high watermark falls back to the log start — never above what it
    // was, so nothing unreplicated becomes visible (the leader's followers raise it again).
    // Method: both after a clean close and after a crash.
    for clean in [true, false] {
        for damage in [FileDamage::Missing, FileDamage::Empty, FileDamage::CutInHalf, FileDamage::Garbage] {
            let dir = tempfile::tempdir().unwrap();
            let mut log = Log::open(dir.path(), config()).unwrap();
            append_range(&mut log, 0, 150, 1);
            log.set_high_watermark(120);
            log.checkpoint().unwrap();
            if clean {
                log.close().unwrap();
            } else {
                drop(log);
            }
            damage_file(&dir.path().join("partition.checkpoint"), damage);

            let (log, lines) = capture_logs(|| Log::open(dir.path(), config()).unwrap());
            let case = format!("clean {clean}, {damage:?}");
            assert_eq!(read_all(&log, 0, 64 * 1024), expected(150), "{case}");
            assert_eq!((log.log_start_offset(), log.high_watermark()), (0, 0), "{case}");
            assert!(lines.contains("recovering"), "{case}: full recovery is logged:\n{lines}");
            assert_eq!(count(&lines, CUT_LINE), 0, "{case}: nothing cut:\n{lines}");
            appends_continue(dir.path(), log, 150);
        }
    }
}

#[test]
fn damaged_leader_epoch_checkpoint_is_rebuilt_from_the_batches() {
    // Goal: `leader-epoch-checkpoint` missing, empty, garbage, or cut at any byte is rebuilt
    // from the batches' partition_leader_epoch fields: the same lineage, never a different
    // one. (Before the fix, a file cut inside its last line, "7 120" of "7 120\n" cut to
    // "7 12", parsed as epoch 7 starting at offset 12: OffsetForLeaderEpoch would then have
    // told a follower to truncate at the wrong offset.)
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    append_range(&mut log, 0, 40, 1);
    append_range(&mut log, 40, 120, 3);
    append_range(&mut log, 120, 150, 7);
    let lineage = vec![
        EpochEntry { epoch: 1, start_offset: 0 },
        EpochEntry { epoch: 3, start_offset: 40 },
        EpochEntry { epoch: 7, start_offset: 120 },
    ];
    assert_eq!(log.leader_epochs().entries(), lineage);
    log.close().unwrap();
    let path = dir.path().join("leader-epoch-checkpoint");
    let whole = fs::read(&path).unwrap();

    let mut damaged: Vec<Option<Vec<u8>>> = (0..whole.len()).map(|len| Some(whole[..len].to_vec())).collect();
    damaged.push(None);
    damaged.push(Some(b"0\n3\n1 0\n3 zz\n7 120\n".to_vec()));
    for contents in damaged {
        match &contents {
            Some(bytes) => fs::write(&path, bytes).unwrap(),
            None => fs::remove_file(&path).unwrap(),
        }
        let log = Log::open(dir.path(), config()).unwrap();
        let shown = contents.as_deref().map(String::from_utf8_lossy);
        assert_eq!(log.leader_epochs().entries(), lineage, "checkpoint {shown:?}");
        assert_eq!(log.end_offset_for_epoch(3), Some((3, 120)), "checkpoint {shown:?}");
        log.close().unwrap();
        assert_eq!(fs::read(&path).unwrap(), whole, "the rebuilt file is written back");
    }
}

#[test]
fn a_failed_fsync_stops_writes_until_reopened_and_loses_nothing_acknowledged() {
    // Goal: after fsync fails the page cache can no longer be trusted, so the log refuses
    // every write (KAFKA_STORAGE_ERROR) instead of acknowledging unsynced data; reopening
    // re-validates what is on disk. Everything acknowledged before the failure is there.
    // Method: flush.messages=1 (EveryBatch), 20 acknowledged appends, the next fsync fails.
    let dir = tempfile::tempdir().unwrap();
    let every_batch = LogConfig { flush: FlushPolicy::EveryBatch, ..config() };
    let mut log = Log::open(dir.path(), every_batch.clone()).unwrap();
    append_range(&mut log, 0, 20, 1);
    log.inject_fault(sluice_log::Fault::FailNextSync);
    let mut failed = batch(0, &[(None, Some(b"unsynced".as_slice()))], TIMESTAMP_BASE);
    let (error, lines) = capture_logs(|| log.append(&mut failed, 1).unwrap_err());
    assert!(matches!(error, LogError::Poisoned { .. }), "{error}");
    assert_eq!(count(&lines, "the log refuses further writes"), 1, "{lines}");
    for _ in 0..3 {
        let mut next = batch(0, &[(None, Some(b"refused".as_slice()))], TIMESTAMP_BASE);
        let refused = log.append(&mut next, 1).unwrap_err();
        assert_eq!(refused.kafka_error_code(), 56);
    }
    assert!(log.write_refusal().unwrap().contains("failed fsync"));
    assert!(log.flush().is_err() && log.roll().is_err() && log.truncate_to(5).is_err());
    drop(log);
    let log = Log::open(dir.path(), every_batch).unwrap();
    let got = read_all(&log, 0, 64 * 1024);
    assert_eq!(got[..20], expected(20)[..], "every acknowledged record survives");
    assert!(got.len() <= 21, "at most the unacknowledged batch besides");
}
