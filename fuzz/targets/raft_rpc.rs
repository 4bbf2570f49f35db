//! Fuzz target `raft_rpc` (pure): arbitrary bytes as what a peer sends on the Raft port —
//! split by the same bounded length-delimited codec the server uses (`rpc::RpcCodec`: frames
//! above `RPC_FRAME_BYTES_MAX` are refused, nothing is reserved for a frame before it
//! arrives), each frame decoded with postcard as an `RpcRequest` and as an `RpcResponse`. No
//! panic; one execution's heap stays under a fixed multiple of the input (postcard's sequence
//! pre-allocation is capped by serde's cautious size hint).
//!
//! Seeds: `fuzz/corpus/raft_rpc/`, and frames encoded here from real Raft entries — those of
//! `fuzz/corpus/raft_log/` — and every request kind.
//!
//! Shared by the cargo test (`crates/meta/tests/fuzz_raft.rs`) and the AFL++ driver
//! (`fuzz/afl/src/bin/raft_rpc.rs`); both include `fuzz/harness.rs` as `harness`.

use bytes::BytesMut;
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::CommittedLeaderId;
use sluice_meta::frame::{read_record, RecordRead, FILE_HEADER_BYTES};
use sluice_meta::rpc::{RpcCodec, RpcRequest, RpcResponse, RPC_PROTOCOL_VERSION};
use sluice_meta::types::{Entry, LogId, Vote};
use sluice_meta::Command;
use tokio_util::codec::Decoder;

use crate::harness;

/// The codec's buffer and one decoded message per frame: 32 bytes of heap per input byte,
/// plus 2 MiB (serde caps the pre-allocation of a sequence at 1 MiB whatever length the
/// frame claims). Before `RpcCodec`, a 21-byte input announcing a 4.3 MB frame held 4.3 MB:
/// tokio-util's codec reserved the announced length (the input is in the corpus as
/// `announced-frame-reservation.bin`).
fn heap_bytes_max(input_bytes: usize) -> usize {
    32 * input_bytes + 2 * 1024 * 1024
}

pub const TARGET: harness::Target =
    harness::Target { name: "raft_rpc", ci_iterations: 500_000, heap_bytes_max: Some(heap_bytes_max) };

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

/// Seeds besides `fuzz/corpus/raft_rpc/`: frames of every request kind and of real entries.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
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

/// Decodes every frame of `input`; returns the outcome name.
pub fn execute(input: &[u8]) -> String {
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
