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

#[path = "../../../fuzz/harness.rs"]
mod harness;

use bytes::BytesMut;
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::CommittedLeaderId;
use sluice_meta::frame::{read_record, RecordRead, FILE_HEADER_BYTES};
use sluice_meta::log_segments::SegmentedLog;
use sluice_meta::rpc::{RpcCodec, RpcRequest, RpcResponse, RPC_PROTOCOL_VERSION};
use sluice_meta::types::{Entry, LogId, Vote};
use sluice_meta::{Command, StoreError};
use tokio_util::codec::Decoder;

#[global_allocator]
static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;

/// The codec's buffer and one decoded message per frame: 32 bytes of heap per input byte,
/// plus 2 MiB (serde caps the pre-allocation of a sequence at 1 MiB whatever length the
/// frame claims). Before `RpcCodec`, a 21-byte input announcing a 4.3 MB frame held 4.3 MB:
/// tokio-util's codec reserved the announced length (the input is in the corpus as
/// `announced-frame-reservation.bin`).
fn rpc_heap_bytes_max(input_bytes: usize) -> usize {
    32 * input_bytes + 2 * 1024 * 1024
}

/// Recovery reads the file once and decodes its entries: 16 bytes per input byte, 4 MiB fixed.
fn log_heap_bytes_max(input_bytes: usize) -> usize {
    16 * input_bytes + 4 * 1024 * 1024
}

const RPC: harness::Target =
    harness::Target { name: "raft_rpc", ci_iterations: 500_000, heap_bytes_max: Some(rpc_heap_bytes_max) };
const LOG: harness::Target =
    harness::Target { name: "raft_log", ci_iterations: 20_000, heap_bytes_max: Some(log_heap_bytes_max) };

/// The Raft entries of the captured segment files.
fn captured_entries() -> Vec<Entry> {
    let mut entries = Vec::new();
    for (_, bytes) in harness::corpus("raft_log") {
        let mut at = FILE_HEADER_BYTES.min(bytes.len());
        while let RecordRead::Valid { payload, next_offset } = read_record(&bytes, at, 1 << 20) {
            if let Ok(entry) = postcard::from_bytes::<Entry>(payload) {
                entries.push(entry);
            }
            at = next_offset;
        }
    }
    entries
}

fn frame(message: &impl serde::Serialize) -> Vec<u8> {
    let payload = postcard::to_allocvec(message).unwrap();
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&payload);
    out
}

fn rpc_seeds() -> Vec<(String, Vec<u8>)> {
    let entries = captured_entries();
    assert!(entries.len() >= 3, "the raft_log corpus holds real entries ({} found)", entries.len());
    let vote = Vote::new_committed(2, 1);
    let log_id = |index| LogId::new(CommittedLeaderId::new(2, 1), index);
    let requests = [
        RpcRequest::Hello { protocol_version: RPC_PROTOCOL_VERSION, from: 1, to: 2 },
        RpcRequest::Vote(VoteRequest { vote, last_log_id: Some(log_id(7)) }),
        RpcRequest::AppendEntries(AppendEntriesRequest {
            vote,
            prev_log_id: Some(log_id(3)),
            entries: entries.clone(),
            leader_commit: Some(log_id(5)),
        }),
        RpcRequest::AppendEntries(AppendEntriesRequest {
            vote,
            prev_log_id: None,
            entries: vec![],
            leader_commit: None,
        }),
        RpcRequest::Propose(Command::DeleteTopic { name: "orders".into() }),
        RpcRequest::ProposeBatch(vec![
            Command::DeleteTopic { name: "a".into() },
            Command::DeleteTopic { name: "b".into() },
        ]),
        RpcRequest::BrokerHeartbeat { broker_id: 3, broker_epoch: 17 },
    ];
    let mut seeds: Vec<(String, Vec<u8>)> =
        requests.iter().enumerate().map(|(i, r)| (format!("request-{i}"), frame(r))).collect();
    seeds.push(("response-hello".into(), frame(&RpcResponse::HelloOk)));
    seeds.push(("response-refused".into(), frame(&RpcResponse::Refused { reason: "wrong node".into() })));
    // A connection's worth: hello, then a request, in one stream.
    let stream = [frame(&requests[0]), frame(&requests[2])].concat();
    seeds.push(("stream".into(), stream));
    seeds
}

fn execute_rpc(input: &[u8]) -> String {
    let mut codec = RpcCodec::new();
    let mut buffer = BytesMut::from(input);
    let mut outcome = String::new();
    for _ in 0..64 {
        match codec.decode(&mut buffer) {
            Ok(Some(frame)) => {
                let request = postcard::from_bytes::<RpcRequest>(&frame);
                let response = postcard::from_bytes::<RpcResponse>(&frame);
                let kind = match &request {
                    Ok(r) => format!("{r:?}").chars().take_while(|c| c.is_alphanumeric()).collect(),
                    Err(e) => harness::shape(&e.to_string()),
                };
                outcome.push_str(&format!("[{kind}/{}]", response.is_ok()));
            }
            Ok(None) => {
                outcome.push_str("[incomplete]");
                break;
            }
            Err(error) => {
                outcome.push_str(&format!("[refused: {}]", harness::shape(&error.to_string())));
                break;
            }
        }
    }
    outcome
}

/// Recomputes the file header's and every framed record's CRC-32 over the mutated bytes, so
/// that mutations reach the entry decoding and index checks behind the checksums.
fn reseal(bytes: &mut [u8]) {
    if bytes.len() >= FILE_HEADER_BYTES {
        let crc = crc32fast::hash(&bytes[..12]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    let mut at = FILE_HEADER_BYTES;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|end| *end <= bytes.len()) else {
            break;
        };
        let crc = crc32fast::hash(&bytes[at + 8..end]);
        bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

fn execute_log(input: &[u8]) -> String {
    let raw = execute_log_once(input);
    let mut resealed = input.to_vec();
    reseal(&mut resealed);
    format!("{raw} | {}", execute_log_once(&resealed))
}

fn execute_log_once(input: &[u8]) -> String {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join(format!("{:020}.seg", 0)), input).unwrap();
    match SegmentedLog::open(dir.path(), 1 << 20) {
        Ok((log, recovered)) => {
            drop(log);
            let (_, again) = SegmentedLog::open(dir.path(), 1 << 20).expect("a recovered log reopens");
            assert_eq!(format!("{:?}", again.entries), format!("{:?}", recovered.entries), "same entries");
            format!("recovered {} entries", recovered.entries.len().min(8))
        }
        Err(StoreError::Corrupt { reason, .. }) => format!("corrupt: {}", harness::shape(&reason)),
        Err(other) => format!("error: {}", harness::shape(&other.to_string())),
    }
}

#[test]
fn raft_rpc_frames_decode_or_fail_within_bounds() {
    let summary = harness::run_with_seeds(&RPC, rpc_seeds(), execute_rpc);
    assert!(summary.outcomes >= 10, "only {} outcomes", summary.outcomes);
}

#[test]
fn raft_log_recovery_of_arbitrary_segment_files_never_panics() {
    let summary = harness::run(&LOG, execute_log);
    assert!(summary.outcomes >= 3, "only {} outcomes", summary.outcomes);
}
