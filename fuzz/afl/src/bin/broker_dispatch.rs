//! AFL++ driver of the fuzz target `broker_dispatch` (`fuzz/targets/broker_dispatch.rs`): a
//! real broker (`Node`) runs in this process on ephemeral ports of 127.0.0.1, started at the
//! first input of the persistent loop, and each input AFL++ chooses goes to it on a fresh
//! connection. Coverage is counted on every thread, the broker's too; a panic anywhere
//! aborts (afl.rs's panic hook), which AFL++ records as a crash, and an input the broker
//! neither answers nor closes on within `READ_TIMEOUT` is a slow input, not a crash.
//! `--write-seeds DIR` writes the seeds instead (`src/lib.rs`).
//!
//! The broker's data directory is `SLUICE_AFL_DATA_DIR` (`scripts/fuzz.sh afl` sets it
//! under `target/fuzz/afl/`), emptied at start: one afl-fuzz runs one driver at a time.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use sluice_broker::{Node, NodeConfig};

#[path = "../../../targets/broker_dispatch.rs"]
mod broker_dispatch;
#[path = "../../../harness.rs"]
mod harness;
// Only its `execute` (the outcome name); its own target runs in its own driver.
#[allow(dead_code)]
#[path = "../../../targets/request_frames.rs"]
mod request_frames;

#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

/// The broker of this process and what an execution needs of it.
struct Served {
    runtime: tokio::runtime::Runtime,
    address: SocketAddr,
    panics: Arc<AtomicUsize>,
}

impl Served {
    fn start() -> Served {
        let data_dir = std::env::var_os("SLUICE_AFL_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("sluice-afl-broker_dispatch"));
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir).expect("the broker's data directory can be made");
        // Two workers, as the cargo test's runtime.
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let node = runtime.block_on(Node::start(NodeConfig::ephemeral(1, &data_dir))).expect("the broker starts");
        let address = node.addresses().kafka;
        runtime.spawn(async move { node.serve(std::future::pending()).await.expect("the broker serves") });
        Served { runtime, address, panics: broker_dispatch::count_panics() }
    }
}

thread_local! {
    /// The broker of this process; a thread-local because afl.rs wants an unwind-safe closure.
    static SERVED: RefCell<Option<Served>> = const { RefCell::new(None) };
}

fn main() {
    if sluice_fuzz_afl::write_seeds_if_asked(|| {
        [harness::corpus(broker_dispatch::TARGET.name), broker_dispatch::seeds()].concat()
    }) {
        return;
    }
    afl::fuzz!(|input: &[u8]| {
        SERVED.with(|served| {
            let mut served = served.borrow_mut();
            let served = served.get_or_insert_with(Served::start);
            harness::execute_bounded(&broker_dispatch::TARGET, input, |input| {
                broker_dispatch::execute(&served.runtime, served.address, &served.panics, input)
            });
        });
    });
}
