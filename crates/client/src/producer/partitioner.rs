//! Choosing a partition: Kafka's rules, so keyed data from Java, librdkafka
//! (`murmur2_random`) and Sluice producers lands in the same partition.
//!
//! - explicit partition: used as given;
//! - key: `murmur2(key) & 0x7fffffff % partition_count` (seed 0x9747b28c), via `sluice-proto`;
//! - no key: the sticky partitioner (KIP-480) — keyless records fill one partition's batch,
//!   and a new random partition is chosen when that batch is sealed. Bigger batches, the same
//!   spread over time. (Kept in the accumulator, which sees batches seal.)

use std::num::NonZeroU32;

use bytes::Bytes;

use crate::backoff::random_u64;

/// The partition of `key` among `partition_count` (> 0) partitions.
pub fn partition_for_key(key: &Bytes, partition_count: i32) -> i32 {
    let count = NonZeroU32::new(partition_count.max(1) as u32).unwrap_or(NonZeroU32::MIN);
    sluice_proto::partition_for_key(key, count)
}

/// A random partition in `0..partition_count`, different from `previous` when there is a
/// choice.
pub fn random_partition(partition_count: i32, previous: Option<i32>) -> i32 {
    let count = partition_count.max(1) as u64;
    match previous {
        Some(previous) if count > 1 => {
            let step = 1 + random_u64() % (count - 1);
            ((previous as u64 + step) % count) as i32
        }
        _ => (random_u64() % count) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_partitioning_uses_kafkas_masked_murmur2() {
        // murmur2("21") = -973932308 in Kafka's UtilsTest; masked: 1173551340.
        assert_eq!(partition_for_key(&Bytes::from_static(b"21"), 100), 1_173_551_340 % 100);
        assert_eq!(partition_for_key(&Bytes::from_static(b"21"), 1), 0);
    }

    #[test]
    fn random_partition_changes_and_stays_in_range() {
        for _ in 0..100 {
            let next = random_partition(4, Some(2));
            assert!((0..4).contains(&next) && next != 2);
        }
        assert_eq!(random_partition(1, Some(0)), 0);
    }
}
