//! AFL++ driver of the fuzz target `raft_rpc` (`fuzz/targets/raft_rpc.rs`): each input AFL++ chooses
//! runs through the target under `fuzz/harness.rs`'s heap bound; a panic or an overrun aborts,
//! which AFL++ records as a crash. `--write-seeds DIR` writes the seeds instead (`src/lib.rs`).

#[path = "../../../harness.rs"]
mod harness;
#[path = "../../../targets/raft_rpc.rs"]
mod raft_rpc;

#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

fn main() {
    if sluice_fuzz_afl::write_seeds_if_asked(|| [harness::corpus(raft_rpc::TARGET.name), raft_rpc::seeds()].concat()) {
        return;
    }
    afl::fuzz!(|input: &[u8]| {
        harness::execute_bounded(&raft_rpc::TARGET, input, raft_rpc::execute);
    });
}
