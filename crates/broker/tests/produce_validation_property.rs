//! Property (issue 18): for any produce payload with a valid CRC-32C, the leader's validation
//! either refuses it or every record in it is readable by a real Kafka decoder. "Readable" means
//! `sluice_proto::records::decode_record_batches` (kafka-protocol's `RecordBatchDecoder`
//! behind Sluice's bounds, what the client and the tests read fetches with) decodes every batch
//! to exactly its header's record count, with offsets base..=base+last_offset_delta in order.
//!
//! Method: proptest builds real batches (kafka-protocol's encoder, every codec, random keys,
//! values and timestamps), then poisons them the ways a buggy producer would — bytes of the
//! decompressed records overwritten and recompressed, bytes of the stored (compressed) body
//! overwritten, the header's record count changed, bytes cut or appended — and reseals the batch
//! (length and CRC recomputed) so that only record-level validation can catch it. The pure
//! function the partition calls (`sluice_log::validate::validate_produced`) is the subject.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_log::testing::{batch_from_section, batch_with, reseal, Compression};
use sluice_log::validate::{validate_produced, ValidationPolicy};
use sluice_log::LogConfig;
use sluice_proto::records::decode_record_batches;

const NOW_MS: i64 = 1_700_000_000_000;

#[derive(Debug, Clone)]
enum Poison {
    /// Overwrite bytes of the decompressed records, then compress again.
    Records(Vec<(usize, u8)>),
    /// Overwrite bytes of the stored body (compressed, if the codec compresses).
    Body(Vec<(usize, u8)>),
    /// Claim another record count (and the matching last offset delta).
    Count(i32),
    /// Cut the body short by this many bytes.
    Cut(usize),
    /// Append bytes to the body.
    Append(Vec<u8>),
}

fn codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd)
    ]
}

fn poison() -> impl Strategy<Value = Poison> {
    let edits = || prop::collection::vec((any::<usize>(), any::<u8>()), 1..4);
    prop_oneof![
        edits().prop_map(Poison::Records),
        edits().prop_map(Poison::Body),
        prop_oneof![Just(0), Just(1), Just(2), Just(7), Just(i32::MAX), Just(-1), any::<i32>()].prop_map(Poison::Count),
        (1usize..40).prop_map(Poison::Cut),
        prop::collection::vec(any::<u8>(), 1..10).prop_map(Poison::Append),
    ]
}

type Pair = (Option<Vec<u8>>, Option<Vec<u8>>);

fn records() -> impl Strategy<Value = Vec<Pair>> {
    let bytes = || prop::option::of(prop::collection::vec(any::<u8>(), 0..40));
    prop::collection::vec((bytes(), bytes()), 1..6)
}

fn poisoned(codec: Compression, records: &[Pair], poison: &Poison) -> Vec<u8> {
    let pairs: Vec<_> = records.iter().map(|(k, v)| (k.as_deref(), v.as_deref())).collect();
    let good = batch_with(codec, 0, &pairs, NOW_MS);
    let plain = batch_with(Compression::None, 0, &pairs, NOW_MS);
    match poison {
        Poison::Records(edits) => {
            let mut section = plain[61..].to_vec();
            for (at, value) in edits {
                let at = at % section.len();
                section[at] = *value;
            }
            batch_from_section(&good, codec, &section, true)
        }
        Poison::Body(edits) => {
            let mut batch = good.clone();
            let body_bytes = batch.len() - 61;
            for (at, value) in edits {
                batch[61 + at % body_bytes] = *value;
            }
            reseal(&mut batch);
            batch
        }
        Poison::Count(count) => {
            let mut batch = good.clone();
            batch[57..61].copy_from_slice(&count.to_be_bytes());
            batch[23..27].copy_from_slice(&count.wrapping_sub(1).to_be_bytes());
            reseal(&mut batch);
            batch
        }
        Poison::Cut(bytes) => {
            let mut batch = good.clone();
            let keep = batch.len().saturating_sub(*bytes).max(61);
            batch.truncate(keep);
            reseal(&mut batch);
            batch
        }
        Poison::Append(extra) => {
            let mut batch = good.clone();
            batch.extend_from_slice(extra);
            reseal(&mut batch);
            batch
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    // Goal: refused, or every record readable (see the module docs).
    #[test]
    fn a_sealed_produce_is_refused_or_fully_readable(
        codec in codec(),
        records in records(),
        poison in poison(),
        compacted in any::<bool>(),
    ) {
        let batch = poisoned(codec, &records, &poison);
        let mut config = LogConfig::default();
        if compacted {
            config.cleanup_policy = sluice_log::CleanupPolicy::Compact;
        }
        let policy = ValidationPolicy::for_config(&config);
        if validate_produced(&batch, &policy, NOW_MS).is_ok() {
            let decoded = decode_record_batches(&Bytes::from(batch.clone()));
            let decoded = decoded.map_err(|error| TestCaseError::fail(format!("accepted but unreadable: {error}")))?;
            prop_assert_eq!(decoded.partial_trailing_bytes, 0);
            prop_assert_eq!(decoded.batches.len(), 1);
            let batch = &decoded.batches[0];
            prop_assert_eq!(batch.records.len(), batch.header.record_count as usize);
            for (index, record) in batch.records.iter().enumerate() {
                prop_assert_eq!(record.offset, batch.header.base_offset + index as i64);
                if compacted {
                    prop_assert!(record.key.is_some());
                }
            }
            prop_assert_eq!(batch.header.last_offset_delta as usize + 1, batch.records.len());
        }
    }
}
