//! Fuzz targets of the metadata Raft (issue 12), both pure:
//!
//! - `raft_rpc`: arbitrary bytes as what a peer sends on the Raft port — split by the same
//!   bounded length-delimited codec the server uses (`rpc::RpcCodec`: frames above
//!   `RPC_FRAME_BYTES_MAX` are refused, nothing is reserved for a frame before it arrives), each frame decoded with postcard as an `RpcRequest`
//!   and as an `RpcResponse`. No panic; one execution's heap stays under a fixed multiple of
//!   the input (postcard's sequence pre-allocation is capped by serde's cautious size hint).
//!   Seeds: frames encoded here from real Raft entries — those of
//!   `fuzz/corpus/raft_log/` — and every request kind.
//! - `raft_log`: arbitrary bytes as the Raft log's only segment file, then
//!   `SegmentedLog::open`: it recovers (cutting a torn tail) or refuses with
//!   `StoreError::Corrupt`; never a panic, and a recovered log reopens to the same entries.
//!   Seeds: `fuzz/corpus/raft_log/`, the Raft log segment of the broker that
//!   `scripts/fuzz-capture.sh` ran, whole and torn.
//!
//! The targets themselves are `fuzz/targets/raft_rpc.rs` and `fuzz/targets/raft_log.rs`,
//! which the AFL++ drivers (`fuzz/afl/`) run too. Budget and reproduction: `fuzz/harness.rs`;
//! long runs: `scripts/fuzz.sh`.

#[path = "../../../fuzz/harness.rs"]
mod harness;
#[path = "../../../fuzz/targets/raft_log.rs"]
mod raft_log;
#[path = "../../../fuzz/targets/raft_rpc.rs"]
mod raft_rpc;

#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

#[test]
fn raft_rpc_frames_decode_or_fail_within_bounds() {
    let summary = harness::run_with_seeds(&raft_rpc::TARGET, raft_rpc::seeds(), raft_rpc::execute);
    assert!(summary.outcomes >= 10, "only {} outcomes", summary.outcomes);
}

#[test]
fn raft_log_recovery_of_arbitrary_segment_files_never_panics() {
    let summary = harness::run_with_seeds(&raft_log::TARGET, raft_log::seeds(), raft_log::execute);
    assert!(summary.outcomes >= 3, "only {} outcomes", summary.outcomes);
}
