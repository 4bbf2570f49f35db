//! AFL++ driver of the fuzz target `consumer_offsets` (`fuzz/targets/consumer_offsets.rs`): each input AFL++ chooses
//! runs through the target under `fuzz/harness.rs`'s heap bound; a panic or an overrun aborts,
//! which AFL++ records as a crash. `--write-seeds DIR` writes the seeds instead (`src/lib.rs`).

#[path = "../../../targets/consumer_offsets.rs"]
mod consumer_offsets;
#[path = "../../../harness.rs"]
mod harness;

#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

fn main() {
    if sluice_fuzz_afl::write_seeds_if_asked(|| {
        [harness::corpus(consumer_offsets::TARGET.name), consumer_offsets::seeds()].concat()
    }) {
        return;
    }
    afl::fuzz!(|input: &[u8]| {
        harness::execute_bounded(&consumer_offsets::TARGET, input, consumer_offsets::execute);
    });
}
