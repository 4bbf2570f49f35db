//! AFL++ driver of the fuzz target `request_frames` (`fuzz/targets/request_frames.rs`): each input AFL++ chooses
//! runs through the target under `fuzz/harness.rs`'s heap bound; a panic or an overrun aborts,
//! which AFL++ records as a crash. `--write-seeds DIR` writes the seeds instead (`src/lib.rs`).

#[path = "../../../harness.rs"]
mod harness;
#[path = "../../../targets/request_frames.rs"]
mod request_frames;

#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

fn main() {
    if sluice_fuzz_afl::write_seeds_if_asked(|| {
        [harness::corpus(request_frames::TARGET.name), request_frames::seeds()].concat()
    }) {
        return;
    }
    afl::fuzz!(|input: &[u8]| {
        harness::execute_bounded(&request_frames::TARGET, input, request_frames::execute);
    });
}
