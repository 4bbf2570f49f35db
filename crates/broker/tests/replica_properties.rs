//! Property tests of the pure replication rules (`sluice_broker::partition::replica`), without
//! sockets or disks: the rules are plain functions, so random histories exercise them directly.
//!
//! 1. High watermark and ISR under random follower fetches: the high watermark never moves
//!    back under one leadership, never passes the leader's log end, never passes the log end of
//!    any ISR member that has fetched, and the ISR the leader wants always keeps the leader and
//!    only names assigned replicas.
//! 2. Divergence: two replicas share a committed prefix, then each wrote records in leader
//!    terms of its own (distinct epochs, as Kafka's leader epochs are). A follower that fetches
//!    with `divergence` and truncates with `truncation_offset` until the leader stops reporting
//!    a divergence ends with a log that is a prefix of the leader's, record epoch by record
//!    epoch, and still holds the whole committed prefix.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sluice_broker::partition::replica::{
    desired_isr, divergence, end_offset_for, follower_fetched, high_watermark, truncation_offset, FollowerProgress,
    IsrCheck,
};
use sluice_log::EpochEntry;

#[derive(Debug, Clone)]
enum Step {
    /// The leader appends this many records.
    Append(u8),
    /// A follower (2 or 3) fetches from `fraction` of the way between its last offset and the
    /// leader's log end.
    Fetch { follower: i32, fraction: u8 },
    /// Time passes, in milliseconds.
    Wait(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u8..20).prop_map(Step::Append),
        (2i32..=3, 0u8..=4).prop_map(|(follower, fraction)| Step::Fetch { follower, fraction }),
        (1u16..2_000).prop_map(Step::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_high_watermark_is_monotonic_and_covered_by_the_isr(
        steps in proptest::collection::vec(step(), 1..200),
        isr_has_3 in any::<bool>(),
    ) {
        let leader = 1;
        let replicas = [1, 2, 3];
        let isr: Vec<i32> = if isr_has_3 { vec![1, 2, 3] } else { vec![1, 2] };
        let lag = 5_000;
        let mut now = 1_000_000i64;
        let mut log_end = 0i64;
        let mut hw = 0i64;
        let mut followers: BTreeMap<i32, FollowerProgress> = BTreeMap::new();
        for step in steps {
            match step {
                Step::Append(count) => log_end += i64::from(count),
                Step::Wait(ms) => now += i64::from(ms),
                Step::Fetch { follower, fraction } => {
                    let from = followers.get(&follower).map_or(0, |p| p.log_end_offset);
                    let offset = from + (log_end - from) * i64::from(fraction) / 4;
                    let previous = followers.get(&follower).copied();
                    followers.insert(follower, follower_fetched(previous, offset, log_end, now));
                }
            }
            let next = high_watermark(leader, log_end, &isr, &followers, hw);
            prop_assert!(next >= hw, "the high watermark moved back: {hw} -> {next}");
            prop_assert!(next <= log_end);
            for member in isr.iter().filter(|m| **m != leader) {
                if let Some(progress) = followers.get(member) {
                    prop_assert!(next <= progress.log_end_offset.max(hw), "past ISR member {member}");
                    // An intact member (its fetches never go back) is never below the high
                    // watermark, so `desired_isr`'s rule that drops a member fetching below it
                    // (one that cut a damaged batch) never drops an intact one.
                    prop_assert!(progress.log_end_offset >= next, "ISR member {member} below the high watermark");
                }
            }
            hw = next;
            let check = IsrCheck {
                leader, replicas: &replicas, isr: &isr, followers: &followers, high_watermark: hw,
                now_ms: now, replica_lag_time_ms: lag, live: &replicas,
            };
            if let Some(wanted) = desired_isr(&check) {
                prop_assert!(wanted.contains(&leader));
                prop_assert!(wanted.iter().all(|r| replicas.contains(r)));
                prop_assert!(wanted != isr);
            }
        }
    }
}

/// Lineage (epoch → start offset) of a log given as one epoch per record.
fn lineage(records: &[i32]) -> Vec<EpochEntry> {
    let mut entries: Vec<EpochEntry> = Vec::new();
    for (offset, epoch) in records.iter().enumerate() {
        if entries.last().is_none_or(|last| last.epoch != *epoch) {
            entries.push(EpochEntry { epoch: *epoch, start_offset: offset as i64 });
        }
    }
    entries
}

/// The follower's own answer for `epoch` (what `sluice_log::Log::end_offset_for_epoch` does).
fn own_end_for(entries: &[EpochEntry], epoch: i32, log_end: i64) -> Option<(i32, i64)> {
    let i = entries.iter().rposition(|e| e.epoch <= epoch)?;
    Some((entries[i].epoch, entries.get(i + 1).map_or(log_end, |next| next.start_offset)))
}

/// A history: a committed prefix of terms, then the leader's and the follower's own terms
/// (epochs drawn from one increasing sequence and dealt to one side or the other).
fn history() -> impl Strategy<Value = (Vec<i32>, Vec<i32>, Vec<i32>, i32)> {
    (proptest::collection::vec(1usize..6, 0..4), proptest::collection::vec((any::<bool>(), 1usize..6), 0..6), 0i32..3)
        .prop_map(|(prefix_terms, branch_terms, extra_epochs)| {
            let mut epoch = 0;
            let mut prefix = Vec::new();
            for length in prefix_terms {
                prefix.extend(std::iter::repeat_n(epoch, length));
                epoch += 1;
            }
            let (mut leader, mut follower) = (prefix.clone(), prefix.clone());
            for (to_leader, length) in branch_terms {
                let side = if to_leader { &mut leader } else { &mut follower };
                side.extend(std::iter::repeat_n(epoch, length));
                epoch += 1;
            }
            // The leader's current epoch: newer than every term, possibly with no record yet.
            (prefix, leader, follower, epoch + extra_epochs)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_048, ..ProptestConfig::default() })]

    #[test]
    fn a_follower_truncates_to_a_prefix_of_the_leader_and_keeps_what_was_committed(
        (prefix, leader, mut follower, current_epoch) in history(),
    ) {
        let leader_lineage = lineage(&leader);
        for _ in 0..32 {
            let fetch_offset = follower.len() as i64;
            let last_epoch = follower.last().copied().unwrap_or(-1);
            match divergence(&leader_lineage, current_epoch, leader.len() as i64, fetch_offset, last_epoch) {
                None => break,
                Some(diverging) => {
                    let own = own_end_for(&lineage(&follower), diverging.0, fetch_offset);
                    let at = truncation_offset(diverging, own, 0, fetch_offset);
                    prop_assert!(at < fetch_offset || diverging.1 >= fetch_offset, "no progress at {at}");
                    follower.truncate(at as usize);
                }
            }
        }
        prop_assert!(follower.len() <= leader.len(), "follower {follower:?} longer than leader {leader:?}");
        prop_assert_eq!(&follower[..], &leader[..follower.len()], "not a prefix of the leader");
        prop_assert!(follower.len() >= prefix.len(), "committed prefix truncated: {follower:?} vs {prefix:?}");
        // And the leader's answer for the follower's last epoch now ends at or after its log end.
        if let Some(last) = follower.last() {
            let (_, end) = end_offset_for(&leader_lineage, current_epoch, leader.len() as i64, *last);
            prop_assert!(end >= follower.len() as i64);
        }
    }
}
