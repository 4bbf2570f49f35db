//! Replication decisions of a partition leader, as plain functions over plain data.
//!
//! The leader knows its own log end offset and, for each follower, the log end offset the
//! follower last fetched from and when it was last caught up. From that it decides the high
//! watermark (what consumers may read and what acks=all waits for) and which replicas belong in
//! the ISR. Followers do not exist yet (single node), but every decision already goes through
//! these functions, so replication only has to feed them follower progress.
//!
//! Kafka's rules (KIP-101/KIP-392 terms):
//! - high watermark = the smallest log end offset among the ISR (the leader included); it never
//!   moves backwards while the same leader leads.
//! - a follower is caught up when its log end offset reached the leader's; a follower not caught
//!   up for `replica.lag.time.max.ms` leaves the ISR; a follower that is caught up again joins it.
//! - acks=all needs at least `min.insync.replicas` ISR members, else NOT_ENOUGH_REPLICAS.

use std::collections::BTreeMap;

use sluice_meta::BrokerId;

/// Kafka's `replica.lag.time.max.ms` default: a follower that has not caught up for this long,
/// in milliseconds, is dropped from the ISR.
pub const REPLICA_LAG_TIME_MS_MAX: i64 = 30_000;

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset, from its latest fetch.
    pub log_end_offset: i64,
    /// When it last had the leader's whole log, in milliseconds since the epoch.
    pub last_caught_up_ms: i64,
}

/// The high watermark: the smallest log end offset over the ISR, never below `current`.
///
/// An ISR member with no recorded progress counts as at offset `current` (it holds at least
/// what was committed when it joined). The leader's own log end offset is `leader_log_end`.
pub fn high_watermark(
    leader: BrokerId,
    leader_log_end: i64,
    isr: &[BrokerId],
    followers: &BTreeMap<BrokerId, FollowerProgress>,
    current: i64,
) -> i64 {
    let lowest = isr
        .iter()
        .map(|replica| {
            if *replica == leader {
                leader_log_end
            } else {
                followers.get(replica).map_or(current, |progress| progress.log_end_offset)
            }
        })
        .min()
        .unwrap_or(leader_log_end);
    lowest.min(leader_log_end).max(current)
}

/// The ISR the leader should propose, or `None` when the current one is right.
///
/// Followers that have not caught up within [`REPLICA_LAG_TIME_MS_MAX`] of `now_ms` leave;
/// replicas (not in the ISR) whose log end reached the high watermark join. The leader always
/// stays. The order follows `replicas`.
pub fn desired_isr(
    leader: BrokerId,
    replicas: &[BrokerId],
    isr: &[BrokerId],
    followers: &BTreeMap<BrokerId, FollowerProgress>,
    high_watermark: i64,
    now_ms: i64,
) -> Option<Vec<BrokerId>> {
    let keep = |replica: &BrokerId| {
        if *replica == leader {
            return true;
        }
        let progress = followers.get(replica);
        if isr.contains(replica) {
            // No progress yet: give it the lag time from the first fetch on.
            progress.is_none_or(|p| now_ms - p.last_caught_up_ms <= REPLICA_LAG_TIME_MS_MAX)
        } else {
            progress.is_some_and(|p| p.log_end_offset >= high_watermark)
        }
    };
    let desired: Vec<BrokerId> = replicas.iter().copied().filter(keep).collect();
    let mut sorted_current = isr.to_vec();
    sorted_current.sort_unstable();
    let mut sorted_desired = desired.clone();
    sorted_desired.sort_unstable();
    (sorted_current != sorted_desired).then_some(desired)
}

/// Whether an acks=all produce may be accepted: the ISR has at least `min_insync_replicas`.
pub fn enough_replicas_for_acks_all(isr: &[BrokerId], min_insync_replicas: i32) -> bool {
    i64::try_from(isr.len()).unwrap_or(i64::MAX) >= i64::from(min_insync_replicas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(entries: &[(BrokerId, i64, i64)]) -> BTreeMap<BrokerId, FollowerProgress> {
        entries
            .iter()
            .map(|(id, log_end_offset, last_caught_up_ms)| {
                (*id, FollowerProgress { log_end_offset: *log_end_offset, last_caught_up_ms: *last_caught_up_ms })
            })
            .collect()
    }

    #[test]
    fn a_single_replica_high_watermark_is_the_log_end() {
        assert_eq!(high_watermark(1, 42, &[1], &BTreeMap::new(), 40), 42);
    }

    #[test]
    fn the_high_watermark_is_the_slowest_isr_member_and_never_moves_back() {
        let followers = progress(&[(2, 30, 0), (3, 10, 0)]);
        assert_eq!(high_watermark(1, 50, &[1, 2], &followers, 20), 30);
        // Replica 3 is out of the ISR: it does not hold the watermark back.
        assert_eq!(high_watermark(1, 50, &[1, 2], &followers, 0), 30);
        assert_eq!(high_watermark(1, 50, &[1, 2, 3], &followers, 20), 20);
        // A follower without progress counts at the current watermark.
        assert_eq!(high_watermark(1, 50, &[1, 4], &followers, 25), 25);
    }

    #[test]
    fn lagging_followers_leave_and_caught_up_replicas_join_the_isr() {
        let now = 100_000;
        let followers = progress(&[(2, 50, now - REPLICA_LAG_TIME_MS_MAX - 1), (3, 50, now)]);
        assert_eq!(desired_isr(1, &[1, 2, 3], &[1, 2], &followers, 50, now), Some(vec![1, 3]));
        let followers = progress(&[(2, 50, now), (3, 50, now)]);
        assert_eq!(desired_isr(1, &[1, 2, 3], &[1, 2, 3], &followers, 50, now), None);
        assert_eq!(desired_isr(1, &[1], &[1], &BTreeMap::new(), 0, now), None);
    }

    #[test]
    fn acks_all_needs_min_insync_replicas() {
        assert!(enough_replicas_for_acks_all(&[1], 1));
        assert!(!enough_replicas_for_acks_all(&[1], 2));
        assert!(enough_replicas_for_acks_all(&[1, 2], 2));
    }
}
