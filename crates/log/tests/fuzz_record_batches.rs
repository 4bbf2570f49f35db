//! Fuzz target `record_batches` (issue 12): arbitrary bytes as a producer's `records` field
//! go through produce validation (`validate::validate_produced`: framing, magic, CRC-32C, every
//! record, bounded decompression of every codec) and `Log::append`. Nothing may panic, one
//! execution may not hold more heap than [`heap_bytes_max`], and whatever the log accepts must
//! read back intact (CRC-checked) and decode with kafka-protocol's decoder, as a consumer's.
//!
//! Each input runs twice: as it is, and "resealed" — every batch's CRC-32C recomputed over
//! the mutated bytes — so that mutations reach the record and decompression code behind the
//! CRC check instead of stopping at it. Seeds: `fuzz/corpus/record_batches/` (batches cut
//! from the segment files of a broker that librdkafka and sluice-client produced to, by
//! `scripts/fuzz-capture.sh`) plus batches of every codec built here by kafka-protocol's
//! encoder. The target itself is `fuzz/targets/record_batches.rs`, which the AFL++ driver
//! (`fuzz/afl/`) runs too. Budget and reproduction: `fuzz/harness.rs`; long runs: `scripts/fuzz.sh`.

#[path = "../../../fuzz/harness.rs"]
mod harness;
#[path = "../../../fuzz/targets/record_batches.rs"]
mod record_batches;

#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

#[test]
fn record_batches_never_panic_stay_bounded_and_read_back_intact() {
    let mut fixture = record_batches::Fixture::new();
    let summary =
        harness::run_with_seeds(&record_batches::TARGET, record_batches::seeds(), |input| fixture.execute(input));
    assert!(summary.outcomes >= 10, "the mutator reaches only {} outcomes: it is not biting", summary.outcomes);
}
