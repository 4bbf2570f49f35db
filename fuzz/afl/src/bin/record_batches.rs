//! AFL++ driver of the fuzz target `record_batches` (`fuzz/targets/record_batches.rs`): each
//! input AFL++ chooses runs through the target under `fuzz/harness.rs`'s heap bound; a panic or
//! an overrun aborts, which AFL++ records as a crash. `--write-seeds DIR` writes the seeds
//! instead (`src/lib.rs`). As in the cargo test, one log takes every accepted input (emptied
//! every `APPENDS_PER_LOG_MAX` appends), per process of afl.rs's persistent loop.

use std::cell::RefCell;

#[path = "../../../harness.rs"]
mod harness;
#[path = "../../../targets/record_batches.rs"]
mod record_batches;

#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

thread_local! {
    /// The log of this process; a thread-local because afl.rs wants an unwind-safe closure.
    static FIXTURE: RefCell<Option<record_batches::Fixture>> = const { RefCell::new(None) };
}

fn main() {
    if sluice_fuzz_afl::write_seeds_if_asked(|| {
        [harness::corpus(record_batches::TARGET.name), record_batches::seeds()].concat()
    }) {
        return;
    }
    afl::fuzz!(|input: &[u8]| {
        FIXTURE.with(|fixture| {
            let mut fixture = fixture.borrow_mut();
            let fixture = fixture.get_or_insert_with(record_batches::Fixture::new);
            harness::execute_bounded(&record_batches::TARGET, input, |input| fixture.execute(input));
        });
    });
}
