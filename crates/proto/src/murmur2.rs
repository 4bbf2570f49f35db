//! Kafka's key partitioner: 32-bit murmur2 with seed `0x9747b28c`, made non-negative with
//! `& 0x7fffffff`, modulo the partition count.
//!
//! This is a bit-for-bit port of Java's `org.apache.kafka.common.utils.Utils.murmur2` and
//! `toPositive`, which librdkafka reproduces as its `murmur2_random` partitioner; keyed records
//! from any of these clients land in the same partition. Java reads bytes as signed and masks
//! them with `& 0xff`; here they are `u8` already. Java's `int` arithmetic wraps, so every
//! multiplication is `wrapping_mul`, and `>>>` is a logical shift on `u32`.

use std::num::NonZeroU32;

/// Seed Kafka uses for murmur2.
pub const MURMUR2_SEED: u32 = 0x9747_b28c;

const MULTIPLIER: u32 = 0x5bd1_e995;
const SHIFT: u32 = 24;

/// Kafka's `Utils.murmur2(byte[])`: the 32-bit murmur2 hash of `data`, as a Java `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    // Java: `int h = seed ^ length;` (length as a 32-bit int).
    let mut hash = MURMUR2_SEED ^ (data.len() as u32);
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(MULTIPLIER);
        k ^= k >> SHIFT;
        k = k.wrapping_mul(MULTIPLIER);
        hash = hash.wrapping_mul(MULTIPLIER);
        hash ^= k;
    }
    let tail = blocks.remainder();
    // Java's switch falls through from case 3 to case 1.
    if tail.len() >= 3 {
        hash ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        hash ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        hash ^= u32::from(tail[0]);
        hash = hash.wrapping_mul(MULTIPLIER);
    }
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(MULTIPLIER);
    hash ^= hash >> 15;
    hash as i32
}

/// Kafka's `Utils.toPositive(int)`: clears the sign bit (not `abs`, which fails for
/// `i32::MIN`).
pub fn to_positive(value: i32) -> i32 {
    value & 0x7fff_ffff
}

/// The partition Kafka's default partitioner picks for a record with this key:
/// `toPositive(murmur2(key)) % partition_count`.
pub fn partition_for_key(key: &[u8], partition_count: NonZeroU32) -> i32 {
    // to_positive is in 0..=i32::MAX, so the remainder is too.
    (to_positive(murmur2(key)) as u32 % partition_count.get()) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases of Kafka's `UtilsTest.testMurmur2` (clients/src/test/java/org/apache/kafka/
    /// common/utils/UtilsTest.java), expected values copied from that test.
    const KAFKA_UTILS_TEST_MURMUR2: [(&[u8], i32); 6] = [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ];

    #[test]
    fn matches_kafka_utils_test_vectors() {
        for (input, expected) in KAFKA_UTILS_TEST_MURMUR2 {
            assert_eq!(murmur2(input), expected, "murmur2({:?})", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn the_vectors_cover_every_tail_length() {
        let tails: std::collections::BTreeSet<usize> =
            KAFKA_UTILS_TEST_MURMUR2.iter().map(|(input, _)| input.len() % 4).collect();
        assert_eq!(tails.into_iter().collect::<Vec<_>>(), vec![0, 2, 3]);
        // Tail length 1 is not in Kafka's vectors; "a-little-bit-long-string" (24 bytes) and
        // "foobar" (6) exercise the block loop and the fall-through.
    }

    #[test]
    fn to_positive_masks_the_sign_bit() {
        assert_eq!(to_positive(-973932308), -973932308 & 0x7fffffff);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(5), 5);
    }

    #[test]
    fn partition_for_key_is_masked_hash_modulo_count() {
        let count = NonZeroU32::new(12).unwrap();
        for (input, expected_hash) in KAFKA_UTILS_TEST_MURMUR2 {
            let expected = (expected_hash & 0x7fffffff) % 12;
            assert_eq!(partition_for_key(input, count), expected);
        }
        let one = NonZeroU32::new(1).unwrap();
        assert_eq!(partition_for_key(b"anything", one), 0);
    }
}
