//! Replication decisions, as plain functions over plain data: the leader's high watermark and
//! ISR, a follower's progress as the leader sees it, divergence between a follower's log and the
//! leader's (KIP-101 / KIP-320 leader epochs), and where a follower truncates.
//!
//! The leader knows its own log end offset and, for each follower, the offset the follower
//! last fetched from and when it was last caught up. From that it decides the high watermark
//! (what consumers may read and what acks=all waits for) and which replicas belong in the ISR.
//!
//! Kafka's rules:
//! - high watermark = the smallest log end offset among the ISR (the leader included); it never
//!   moves backwards while the same leader leads.
//! - a follower is caught up when a fetch asks for the leader's log end offset, or for at least
//!   the log end the leader had at the follower's previous fetch (then it was caught up at that
//!   previous fetch: Kafka's `lastCaughtUpTimeMs`). A follower not caught up for
//!   `replica.lag.time.max.ms` leaves the ISR; a replica whose log end reached the high
//!   watermark joins it again.
//! - acks=all needs at least `min.insync.replicas` ISR members, else NOT_ENOUGH_REPLICAS.
//! - a follower's fetch names the epoch of its last batch; if the leader's log has that epoch
//!   ending before the fetch offset, or does not have it, the logs diverged and the follower must
//!   truncate before it may append (the leader answers with the diverging epoch and its end).

use std::collections::BTreeMap;

use sluice_log::EpochEntry;
use sluice_meta::BrokerId;

/// Kafka's `replica.lag.time.max.ms` default: a follower that has not caught up for this long,
/// in milliseconds, is dropped from the ISR.
pub const REPLICA_LAG_TIME_MS_DEFAULT: i64 = 30_000;

/// Kafka's "no epoch" and "no offset" answer of OffsetForLeaderEpoch.
pub const UNDEFINED_EPOCH_END: (i32, i64) = (-1, -1);

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset, from its latest fetch.
    pub log_end_offset: i64,
    /// When it last had the leader's whole log, in milliseconds since the epoch.
    pub last_caught_up_ms: i64,
    /// The leader's log end offset at the follower's latest fetch.
    pub last_fetch_leader_log_end: i64,
    /// When the latest fetch arrived, in milliseconds since the epoch.
    pub last_fetch_ms: i64,
}

/// The leader's record of a follower after a fetch from `fetch_offset` at `now_ms`, while the
/// leader's log ends at `leader_log_end`. `previous` is the record before this fetch (`None` for
/// the first fetch under this leadership: a follower that just started fetching is not caught
/// up until it asks for the log end).
pub fn follower_fetched(
    previous: Option<FollowerProgress>,
    fetch_offset: i64,
    leader_log_end: i64,
    now_ms: i64,
) -> FollowerProgress {
    let last_caught_up_ms = if fetch_offset >= leader_log_end {
        now_ms
    } else {
        match previous {
            Some(p) if fetch_offset >= p.last_fetch_leader_log_end => p.last_fetch_ms.max(p.last_caught_up_ms),
            Some(p) => p.last_caught_up_ms,
            None => 0,
        }
    };
    FollowerProgress {
        log_end_offset: fetch_offset,
        last_caught_up_ms,
        last_fetch_leader_log_end: leader_log_end,
        last_fetch_ms: now_ms,
    }
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

/// What the leader knows when it checks its ISR.
#[derive(Debug, Clone, Copy)]
pub struct IsrCheck<'a> {
    /// The leader (this broker).
    pub leader: BrokerId,
    /// Assigned replicas, in preferred order.
    pub replicas: &'a [BrokerId],
    /// The committed ISR.
    pub isr: &'a [BrokerId],
    /// Each follower's progress.
    pub followers: &'a BTreeMap<BrokerId, FollowerProgress>,
    /// The leader's high watermark.
    pub high_watermark: i64,
    /// Now, in milliseconds (same clock as the progress).
    pub now_ms: i64,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_ms: i64,
    /// Brokers the metadata has live (unfenced).
    pub live: &'a [BrokerId],
}

/// The ISR the leader should propose, or `None` when the current one is right.
///
/// Followers that have not caught up within `replica_lag_time_ms` of `now_ms`, or whose log
/// end went below the high watermark, leave;
/// replicas (not in the ISR) that are `live` and whose latest fetch, within the lag time,
/// reached the high watermark join. The leader always stays. The order follows `replicas`.
pub fn desired_isr(check: &IsrCheck<'_>) -> Option<Vec<BrokerId>> {
    let IsrCheck { replicas, isr, .. } = *check;
    // Checked without allocating first: a leader asks this of every partition it leads four
    // times a second, and almost always nothing changes. Unchanged means every replica keeps
    // its membership and the ISR holds nothing else (replicas are distinct, so `kept` equal to
    // the ISR's length rules out members that are not replicas, and repeated ones).
    let mut kept = 0;
    let mut membership_changes = false;
    for replica in replicas {
        let keeps = in_desired_isr(check, *replica);
        kept += usize::from(keeps);
        membership_changes |= keeps != isr.contains(replica);
    }
    if !membership_changes && kept == isr.len() {
        return None;
    }
    let desired: Vec<BrokerId> = replicas.iter().copied().filter(|replica| in_desired_isr(check, *replica)).collect();
    let mut sorted_current = isr.to_vec();
    sorted_current.sort_unstable();
    let mut sorted_desired = desired.clone();
    sorted_desired.sort_unstable();
    (sorted_current != sorted_desired).then_some(desired)
}

/// Whether `replica` belongs in the ISR the leader wants (see [`desired_isr`]).
fn in_desired_isr(check: &IsrCheck<'_>, replica: BrokerId) -> bool {
    let IsrCheck { leader, isr, followers, high_watermark, now_ms, replica_lag_time_ms, live, .. } = *check;
    if replica == leader {
        return true;
    }
    let progress = followers.get(&replica);
    if isr.contains(&replica) {
        // No fetch yet under this leadership: keep it (the leader gives every ISR member the
        // lag time from its own start; see `Partition`, which seeds the record). A member
        // fetching below the high watermark no longer holds every committed record (it cut
        // a damaged batch to refetch it, `crate::partition::damage`): it leaves at once,
        // so that no election can pick it before it has caught up.
        progress
            .is_none_or(|p| now_ms - p.last_caught_up_ms <= replica_lag_time_ms && p.log_end_offset >= high_watermark)
    } else {
        // Kafka's eligibility: a live (unfenced) broker whose latest fetch, within the lag
        // time, reached the high watermark. Progress left from before a crash says nothing.
        live.contains(&replica)
            && progress
                .is_some_and(|p| p.log_end_offset >= high_watermark && now_ms - p.last_fetch_ms <= replica_lag_time_ms)
    }
}

/// The ISR members that count for `min.insync.replicas` now: the leader, and every other
/// member caught up within `replica_lag_time_ms` (the members [`desired_isr`] would keep).
pub fn caught_up_isr(
    leader: BrokerId,
    isr: &[BrokerId],
    followers: &BTreeMap<BrokerId, FollowerProgress>,
    now_ms: i64,
    replica_lag_time_ms: i64,
) -> Vec<BrokerId> {
    isr.iter()
        .copied()
        .filter(|replica| {
            *replica == leader
                || followers.get(replica).is_none_or(|p| now_ms - p.last_caught_up_ms <= replica_lag_time_ms)
        })
        .collect()
}

/// Kafka's `LeaderEpochFileCache.endOffsetFor`, over the lineage `entries` (epoch → start
/// offset, both increasing) of a log ending at `log_end_offset` whose leader is in
/// `current_epoch`:
/// - the current epoch (or the latest in the lineage) ends at the log end;
/// - an epoch older than a later one ends where the next epoch starts, reported under the
///   largest epoch not above it (or itself, if it is older than every entry);
/// - an epoch newer than everything known, or `-1`, is undefined.
///
/// The current epoch counts as starting at the log end before its first batch, as on a Kafka
/// leader, which writes its epoch into the lineage when it takes over: so an epoch between the
/// last one in the lineage and the current one ends at the log end, under the last one.
pub fn end_offset_for(entries: &[EpochEntry], current_epoch: i32, log_end_offset: i64, requested: i32) -> (i32, i64) {
    if requested < 0 {
        return UNDEFINED_EPOCH_END;
    }
    if requested == current_epoch || entries.last().is_some_and(|last| last.epoch == requested) {
        return (requested, log_end_offset);
    }
    let floor = entries.iter().rev().find(|entry| entry.epoch <= requested).map_or(requested, |entry| entry.epoch);
    match entries.iter().find(|entry| entry.epoch > requested) {
        Some(higher) => (floor, higher.start_offset),
        None if requested < current_epoch => (floor, log_end_offset),
        None => UNDEFINED_EPOCH_END,
    }
}

/// Whether a follower's fetch from `fetch_offset`, whose last batch is of `last_fetched_epoch`
/// (`-1` = not given), diverges from the leader's log (KIP-320): `Some((epoch, end_offset))` to
/// send back as the diverging epoch when the leader's log has that epoch ending before
/// `fetch_offset`, or only an older epoch.
pub fn divergence(
    entries: &[EpochEntry],
    current_epoch: i32,
    log_end_offset: i64,
    fetch_offset: i64,
    last_fetched_epoch: i32,
) -> Option<(i32, i64)> {
    if last_fetched_epoch < 0 {
        return None;
    }
    let (epoch, end_offset) = end_offset_for(entries, current_epoch, log_end_offset, last_fetched_epoch);
    (epoch < last_fetched_epoch || end_offset < fetch_offset).then_some((epoch, end_offset))
}

/// Where a follower truncates when the leader reports a diverging epoch `(epoch, end_offset)`:
/// at the leader's end of that epoch, or earlier where the follower's own copy of that epoch
/// (`own_end_for_epoch`, the follower's answer for the same epoch) ends, never past its log end.
/// A follower with no batch of that epoch or an older one (`None`) holds only newer epochs,
/// which the leader does not have: it truncates to its log start. (Kafka keeps such a log up to
/// the leader's end offset; a generated history in `tests/replica_properties.rs` showed that
/// this keeps records the leader has under another epoch.)
pub fn truncation_offset(
    diverging: (i32, i64),
    own_end_for_epoch: Option<(i32, i64)>,
    own_log_start: i64,
    own_log_end: i64,
) -> i64 {
    let (_, leader_end) = diverging;
    let own_end = own_end_for_epoch.map_or(own_log_start, |(_, end)| end);
    leader_end.min(own_end).min(own_log_end).max(0)
}

/// Whether an acks=all produce may be accepted: the ISR has at least `min_insync_replicas`.
pub fn enough_replicas_for_acks_all(isr: &[BrokerId], min_insync_replicas: i32) -> bool {
    i64::try_from(isr.len()).unwrap_or(i64::MAX) >= i64::from(min_insync_replicas)
}

/// KIP-392: the follower a consumer should fetch from instead of this leader, or `None` to
/// fetch here. `on_client_rack` are the live replicas on the consumer's rack, in replica order
/// (empty when the leader is on that rack itself: then the leader is closest). The first of
/// them that is in the ISR and whose log reaches `fetch_offset` is chosen, so the consumer
/// reads what it asked for without waiting (Kafka's `RackAwareReplicaSelector` over the
/// replicas `ReplicaManager.findPreferredReadReplica` admits). A follower with no recorded
/// progress is not chosen (the leader records every in-sync follower at the high watermark when
/// it takes over, so that is only a replica that joined the ISR before this leader knew it).
pub fn preferred_read_replica(
    leader: BrokerId,
    on_client_rack: &[BrokerId],
    isr: &[BrokerId],
    followers: &BTreeMap<BrokerId, FollowerProgress>,
    fetch_offset: i64,
) -> Option<BrokerId> {
    on_client_rack.iter().copied().find(|replica| {
        *replica != leader
            && isr.contains(replica)
            && followers.get(replica).is_some_and(|progress| progress.log_end_offset >= fetch_offset)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(entries: &[(BrokerId, i64, i64)]) -> BTreeMap<BrokerId, FollowerProgress> {
        entries
            .iter()
            .map(|(id, log_end_offset, last_caught_up_ms)| {
                let progress = FollowerProgress {
                    log_end_offset: *log_end_offset,
                    last_caught_up_ms: *last_caught_up_ms,
                    last_fetch_leader_log_end: *log_end_offset,
                    last_fetch_ms: *last_caught_up_ms,
                };
                (*id, progress)
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
        let followers = progress(&[(2, 50, now - REPLICA_LAG_TIME_MS_DEFAULT - 1), (3, 50, now)]);
        let lag = REPLICA_LAG_TIME_MS_DEFAULT;
        assert_eq!(
            desired_isr(&IsrCheck {
                leader: 1,
                replicas: &[1, 2, 3],
                isr: &[1, 2],
                followers: &followers,
                high_watermark: 50,
                now_ms: now,
                replica_lag_time_ms: lag,
                live: &[1, 2, 3]
            }),
            Some(vec![1, 3])
        );
        let followers = progress(&[(2, 50, now), (3, 50, now)]);
        assert_eq!(
            desired_isr(&IsrCheck {
                leader: 1,
                replicas: &[1, 2, 3],
                isr: &[1, 2, 3],
                followers: &followers,
                high_watermark: 50,
                now_ms: now,
                replica_lag_time_ms: lag,
                live: &[1, 2, 3]
            }),
            None
        );
        assert_eq!(
            desired_isr(&IsrCheck {
                leader: 1,
                replicas: &[1],
                isr: &[1],
                followers: &BTreeMap::new(),
                high_watermark: 0,
                now_ms: now,
                replica_lag_time_ms: lag,
                live: &[1]
            }),
            None
        );
        // A replica behind the high watermark stays out.
        let followers = progress(&[(2, 49, now)]);
        assert_eq!(
            desired_isr(&IsrCheck {
                leader: 1,
                replicas: &[1, 2],
                isr: &[1],
                followers: &followers,
                high_watermark: 50,
                now_ms: now,
                replica_lag_time_ms: lag,
                live: &[1, 2]
            }),
            None
        );
        // Caught up, but fenced, or its last fetch is older than the lag time (a crashed
        // follower's progress): it stays out.
        let followers = progress(&[(2, 50, now)]);
        assert_eq!(
            desired_isr(&IsrCheck {
                leader: 1,
                replicas: &[1, 2],
                isr: &[1],
                followers: &followers,
                high_watermark: 50,
                now_ms: now,
                replica_lag_time_ms: lag,
                live: &[1]
            }),
            None
        );
        let followers = progress(&[(2, 50, now - lag - 1)]);
        assert_eq!(
            desired_isr(&IsrCheck {
                leader: 1,
                replicas: &[1, 2],
                isr: &[1],
                followers: &followers,
                high_watermark: 50,
                now_ms: now,
                replica_lag_time_ms: lag,
                live: &[1, 2]
            }),
            None
        );
    }

    /// An ISR member whose fetch went below the high watermark (it cut a damaged batch to
    /// refetch it) leaves the ISR at once, even though it was caught up a moment ago; it joins
    /// again once its log end is back at the high watermark.
    #[test]
    fn an_isr_member_fetching_below_the_high_watermark_leaves_at_once() {
        let now = 100_000;
        let check = |followers: &BTreeMap<BrokerId, FollowerProgress>, isr: &[BrokerId]| {
            desired_isr(&IsrCheck {
                leader: 2,
                replicas: &[1, 2, 3],
                isr,
                followers,
                high_watermark: 50,
                now_ms: now,
                replica_lag_time_ms: REPLICA_LAG_TIME_MS_DEFAULT,
                live: &[1, 2, 3],
            })
        };
        let cut = progress(&[(1, 20, now), (3, 50, now)]);
        assert_eq!(check(&cut, &[1, 2, 3]), Some(vec![2, 3]));
        let refetched = progress(&[(1, 50, now), (3, 50, now)]);
        assert_eq!(check(&refetched, &[2, 3]), Some(vec![1, 2, 3]));
        assert_eq!(check(&refetched, &[1, 2, 3]), None);
    }

    #[test]
    fn a_follower_is_caught_up_when_it_asks_for_the_log_end_or_for_what_the_leader_had_before() {
        let first = follower_fetched(None, 10, 20, 1_000);
        assert_eq!(first.last_caught_up_ms, 0, "behind at its first fetch: not caught up");
        // Next fetch asks for 20, the log end at the previous fetch, while the leader is at 30:
        // it was caught up as of the previous fetch.
        let second = follower_fetched(Some(first), 20, 30, 1_500);
        assert_eq!(second.last_caught_up_ms, 1_000);
        let third = follower_fetched(Some(second), 30, 30, 2_000);
        assert_eq!(third.last_caught_up_ms, 2_000);
        // The leader gets 60 more records; the follower still asks for 30, the log end of its
        // previous fetch: caught up as of that fetch.
        let fourth = follower_fetched(Some(third), 30, 90, 2_500);
        assert_eq!(fourth.last_caught_up_ms, 2_000);
        let fifth = follower_fetched(Some(fourth), 90, 120, 3_000);
        assert_eq!(fifth.last_caught_up_ms, 2_500, "it reached 90, the log end at the fetch of 2.5 s");
        // Falls behind: the caught-up time stays.
        let sixth = follower_fetched(Some(fifth), 100, 150, 3_500);
        assert_eq!(sixth.last_caught_up_ms, 2_500);
    }

    /// A follower's own answer for `epoch` (what `sluice_log::Log::end_offset_for_epoch` does).
    fn own_end_for(entries: &[EpochEntry], epoch: i32, log_end: i64) -> Option<(i32, i64)> {
        let i = entries.iter().rposition(|e| e.epoch <= epoch)?;
        Some((entries[i].epoch, entries.get(i + 1).map_or(log_end, |next| next.start_offset)))
    }

    fn lineage(entries: &[(i32, i64)]) -> Vec<EpochEntry> {
        entries.iter().map(|(epoch, start_offset)| EpochEntry { epoch: *epoch, start_offset: *start_offset }).collect()
    }

    #[test]
    fn epochs_end_where_the_next_one_starts_and_the_current_at_the_log_end() {
        let entries = lineage(&[(0, 0), (2, 100), (5, 250)]);
        assert_eq!(end_offset_for(&entries, 5, 300, 5), (5, 300));
        assert_eq!(end_offset_for(&entries, 5, 300, 2), (2, 250));
        assert_eq!(end_offset_for(&entries, 5, 300, 0), (0, 100));
        // Epochs 1, 3 and 4 never appended: reported under the epoch before them.
        assert_eq!(end_offset_for(&entries, 5, 300, 1), (0, 100));
        assert_eq!(end_offset_for(&entries, 5, 300, 4), (2, 250));
        // The current epoch 7 has no batch yet: epoch 6 ends at the log end, under epoch 5.
        assert_eq!(end_offset_for(&entries, 7, 300, 6), (5, 300));
    }

    #[test]
    fn unknown_epochs_are_undefined_and_the_current_one_is_known_before_its_first_batch() {
        let entries = lineage(&[(2, 100)]);
        assert_eq!(end_offset_for(&entries, 3, 120, 9), UNDEFINED_EPOCH_END);
        assert_eq!(end_offset_for(&entries, 3, 120, -1), UNDEFINED_EPOCH_END);
        assert_eq!(end_offset_for(&entries, 3, 120, 3), (3, 120));
        assert_eq!(end_offset_for(&entries, 3, 120, 1), (1, 100));
        assert_eq!(end_offset_for(&[], 0, 0, 0), (0, 0));
    }

    /// KIP-101's scenario: the old leader (epoch 5) wrote 100..110 that nobody copied; the new
    /// leader (epoch 6) wrote 100..105. The old leader, now a follower, fetches from 110 with
    /// last epoch 5: the logs diverge at 100, and it truncates to 100.
    #[test]
    fn an_old_leaders_unreplicated_tail_diverges_and_is_truncated() {
        let leader = lineage(&[(3, 0), (6, 100)]);
        assert_eq!(divergence(&leader, 6, 105, 110, 5), Some((3, 100)));
        let follower = lineage(&[(3, 0), (5, 100)]);
        let own = own_end_for(&follower, 3, 110);
        assert_eq!(truncation_offset((3, 100), own, 0, 110), 100);
        // After truncating, the follower's last epoch is 3, ending at 100 on both sides.
        assert_eq!(divergence(&leader, 6, 105, 100, 3), None);
        // A follower that is simply behind in the same epoch does not diverge.
        assert_eq!(divergence(&leader, 6, 105, 102, 6), None);
        assert_eq!(divergence(&leader, 6, 105, 50, -1), None);
    }

    /// The case that needs the current epoch to count from the log end: the new leader (epoch 6,
    /// no batch yet) holds uncommitted epoch-3 data up to 120 that the epoch-5 leader never had;
    /// the epoch-5 leader wrote its own 100..130. Returning as a follower it must truncate to
    /// 100, where its epoch 5 began, not keep epoch-5 batches at offsets the leader has as epoch 3.
    #[test]
    fn a_follower_truncates_to_where_its_own_copy_of_the_epoch_ends() {
        let leader = lineage(&[(3, 0)]);
        let diverging = divergence(&leader, 6, 120, 130, 5).expect("diverges");
        assert_eq!(diverging, (3, 120));
        let follower = lineage(&[(3, 0), (5, 100)]);
        let own = own_end_for(&follower, diverging.0, 130);
        assert_eq!(truncation_offset(diverging, own, 0, 130), 100);
        // A follower holding only epochs newer than the diverging one keeps nothing.
        assert_eq!(truncation_offset((0, 1), None, 0, 1), 0);
    }

    #[test]
    fn only_caught_up_members_count_for_min_insync_replicas() {
        let now = 100_000;
        let followers = progress(&[(2, 50, now - 10), (3, 50, now - REPLICA_LAG_TIME_MS_DEFAULT - 1)]);
        assert_eq!(caught_up_isr(1, &[1, 2, 3], &followers, now, REPLICA_LAG_TIME_MS_DEFAULT), vec![1, 2]);
        assert_eq!(caught_up_isr(1, &[1, 3], &followers, now, REPLICA_LAG_TIME_MS_DEFAULT), vec![1]);
    }

    #[test]
    fn acks_all_needs_min_insync_replicas() {
        assert!(enough_replicas_for_acks_all(&[1], 1));
        assert!(!enough_replicas_for_acks_all(&[1], 2));
        assert!(enough_replicas_for_acks_all(&[1, 2], 2));
    }

    #[test]
    fn the_preferred_read_replica_is_an_in_sync_follower_on_the_rack_that_has_the_offset() {
        let followers = progress(&[(2, 100, 0), (3, 40, 0)]);
        // 2 is on the rack, in the ISR and has offset 50.
        assert_eq!(preferred_read_replica(1, &[2], &[1, 2, 3], &followers, 50), Some(2));
        // 3 is on the rack but has only up to 40: fetch from the leader.
        assert_eq!(preferred_read_replica(1, &[3], &[1, 2, 3], &followers, 50), None);
        assert_eq!(preferred_read_replica(1, &[3, 2], &[1, 2, 3], &followers, 50), Some(2));
        // Out of the ISR: never chosen, however far it got.
        assert_eq!(preferred_read_replica(1, &[2], &[1, 3], &followers, 50), None);
        // No progress recorded: unknown, not chosen.
        assert_eq!(preferred_read_replica(1, &[4], &[1, 4], &followers, 0), None);
        // The leader itself is never "preferred" over itself; no rack match, no preference.
        assert_eq!(preferred_read_replica(1, &[1], &[1, 2], &followers, 0), None);
        assert_eq!(preferred_read_replica(1, &[], &[1, 2, 3], &followers, 0), None);
    }

    proptest::proptest! {
        /// The allocation-free "unchanged" check of `desired_isr` answers as the full
        /// comparison of the sorted ISRs does, whatever the ISR holds (members that are not
        /// replicas, a repeated member, the leader missing).
        #[test]
        fn the_quick_unchanged_check_agrees_with_comparing_the_sorted_isrs(
            replica_mask in 1u8..32,
            isr in proptest::collection::vec(1i32..7, 0..5),
            progress_of in proptest::collection::vec((0i64..4, 0i64..3), 5),
            live_mask in 0u8..64,
        ) {
            let replicas: Vec<BrokerId> = (1..=5).filter(|id| replica_mask & (1 << (id - 1)) != 0).collect();
            let leader = replicas[0];
            let now = 10_000;
            let followers: BTreeMap<BrokerId, FollowerProgress> = (1..=5)
                .zip(&progress_of)
                .filter(|(_, (end, _))| *end > 0)
                .map(|(id, (end, age))| {
                    let at = now - age * REPLICA_LAG_TIME_MS_DEFAULT;
                    let progress = FollowerProgress {
                        log_end_offset: end * 10,
                        last_caught_up_ms: at,
                        last_fetch_leader_log_end: end * 10,
                        last_fetch_ms: at,
                    };
                    (id, progress)
                })
                .collect();
            let live: Vec<BrokerId> = (1..=6).filter(|id| live_mask & (1 << (id - 1)) != 0).collect();
            let check = IsrCheck {
                leader,
                replicas: &replicas,
                isr: &isr,
                followers: &followers,
                high_watermark: 20,
                now_ms: now,
                replica_lag_time_ms: REPLICA_LAG_TIME_MS_DEFAULT,
                live: &live,
            };
            let desired: Vec<BrokerId> = replicas.iter().copied().filter(|r| in_desired_isr(&check, *r)).collect();
            let (mut sorted_current, mut sorted_desired) = (isr.clone(), desired.clone());
            sorted_current.sort_unstable();
            sorted_desired.sort_unstable();
            let expected = (sorted_current != sorted_desired).then_some(desired);
            proptest::prop_assert_eq!(desired_isr(&check), expected);
        }
    }
}
