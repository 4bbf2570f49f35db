//! Fuzz target `log_recovery` (issue 12): arbitrary bytes as the only segment file of a log
//! directory without a checkpoint (so recovery reads every byte), then `Log::open`. Opening
//! must not panic and may fail only with `Damaged` (a first batch below the file's name); an
//! opened log serves only whole, CRC-valid batches in increasing offsets, takes an append at
//! its end, and reopens after a clean close to the same end. One execution may not hold more
//! heap than [`heap_bytes_max`].
//!
//! Each input runs twice: as it is, and with every framed batch's CRC-32C recomputed, so that
//! recovery's order, offset and index checks see valid-looking batches with mutated fields.
//! Seeds: `fuzz/corpus/log_recovery/` — segment files (whole and torn) of a broker that
//! librdkafka and sluice-client produced to, by `scripts/fuzz-capture.sh`.
//!
//! The target itself is `fuzz/targets/log_recovery.rs`, which the AFL++ driver (`fuzz/afl/`)
//! runs too. Budget and reproduction: `fuzz/harness.rs`; long runs: `scripts/fuzz.sh`.

#[path = "../../../fuzz/harness.rs"]
mod harness;
#[path = "../../../fuzz/targets/log_recovery.rs"]
mod log_recovery;

#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

#[test]
fn recovery_of_arbitrary_segment_files_never_panics_and_keeps_only_valid_batches() {
    let summary = harness::run_with_seeds(&log_recovery::TARGET, log_recovery::seeds(), log_recovery::execute);
    assert!(summary.outcomes >= 5, "only {} outcomes: the mutator is not biting", summary.outcomes);
}
