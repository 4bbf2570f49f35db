//! Helpers shared by the sluice-log integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use sluice_log::batch::BatchHeader;
use sluice_log::{Clock, Log};

/// A clock the test moves by hand.
#[derive(Debug, Default)]
pub struct ManualClock(pub AtomicI64);

impl ManualClock {
    pub fn new(ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(ms)))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A record as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
}

/// Decodes fetched bytes with kafka-protocol (the client's decoder), checking every batch's
/// CRC first.
pub fn decode(bytes: &[u8]) -> Vec<Rec> {
    let mut at = 0;
    while at < bytes.len() {
        let h = BatchHeader::parse(&bytes[at..]).expect("a whole batch header");
        let total = h.total_bytes();
        assert_eq!(
            sluice_log::batch::compute_crc(&bytes[at..at + total]),
            h.crc,
            "batch at offset {} fails its CRC",
            h.base_offset
        );
        at += total;
    }
    assert_eq!(at, bytes.len(), "reads return whole batches");
    let mut buf = Bytes::copy_from_slice(bytes);
    RecordBatchDecoder::decode_all(&mut buf)
        .expect("kafka-protocol decodes what the log returns")
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| Rec {
            offset: r.offset,
            key: r.key.map(|k| k.to_vec()),
            value: r.value.map(|v| v.to_vec()),
            timestamp: r.timestamp,
        })
        .collect()
}

/// Every record from `from` to the log end, read in chunks of `max_bytes`.
pub fn read_all(log: &Log, from: i64, max_bytes: u64) -> Vec<Rec> {
    let end = log.log_end_offset();
    let mut out = Vec::new();
    let mut offset = from;
    while offset < end {
        let r = log.read(offset, max_bytes, end).expect("read in range");
        if r.regions.is_empty() {
            break;
        }
        out.extend(decode(&r.to_vec().unwrap()).into_iter().filter(|rec| rec.offset >= offset));
        offset = r.next_offset;
    }
    out
}
