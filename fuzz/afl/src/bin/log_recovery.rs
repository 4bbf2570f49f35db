//! AFL++ driver of the fuzz target `log_recovery` (`fuzz/targets/log_recovery.rs`): each input AFL++ chooses
//! runs through the target under `fuzz/harness.rs`'s heap bound; a panic or an overrun aborts,
//! which AFL++ records as a crash. `--write-seeds DIR` writes the seeds instead (`src/lib.rs`).

#[path = "../../../harness.rs"]
mod harness;
#[path = "../../../targets/log_recovery.rs"]
mod log_recovery;

#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

fn main() {
    if sluice_fuzz_afl::write_seeds_if_asked(|| {
        [harness::corpus(log_recovery::TARGET.name), log_recovery::seeds()].concat()
    }) {
        return;
    }
    afl::fuzz!(|input: &[u8]| {
        harness::execute_bounded(&log_recovery::TARGET, input, log_recovery::execute);
    });
}
