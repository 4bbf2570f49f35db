//! AFL++ driver of the fuzz target `raft_log` (`fuzz/targets/raft_log.rs`): each input AFL++ chooses
//! runs through the target under `fuzz/harness.rs`'s heap bound; a panic or an overrun aborts,
//! which AFL++ records as a crash. `--write-seeds DIR` writes the seeds instead (`src/lib.rs`).

#[path = "../../../harness.rs"]
mod harness;
#[path = "../../../targets/raft_log.rs"]
mod raft_log;

#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

fn main() {
    if sluice_fuzz_afl::write_seeds_if_asked(|| [harness::corpus(raft_log::TARGET.name), raft_log::seeds()].concat()) {
        return;
    }
    afl::fuzz!(|input: &[u8]| {
        harness::execute_bounded(&raft_log::TARGET, input, raft_log::execute);
    });
}
