//! What a replica does about a batch damaged in its own log (issue 12): pure rules, no I/O.
//!
//! The read path checks every batch's CRC-32C before it is sent
//! ([`crate::partition::partition::read_regions`]); a batch that fails is never served, and
//! the replica that holds it records the damage ([`Damage`]). From then on the replica must stop
//! being a source for the partition and copy the batch again from a replica that holds it
//! intact, the way Kafka treats a replica on a failed log directory (KIP-858: leadership moves
//! to another in-sync replica, the damaged one leaves the ISR and is refilled by fetching):
//!
//! 1. **Found**, this broker leads: hand the leadership to another live ISR member
//!    (`ElectLeader` naming it). If there is none, the partition stays here, refusing the
//!    damaged batch with KAFKA_STORAGE_ERROR, and is reported offline (`/ready`, Metadata's
//!    offline replicas) until another replica is in sync or an operator acts.
//! 2. **Found**, another broker leads: truncate the log to just below the damaged batch (one
//!    WARN line naming partition, offset and file) and become **Repairing** until the log end
//!    is back at the high watermark this replica knew before cutting. The replica fetcher
//!    refetches from there; the new leader sees an ISR member fetching below its high
//!    watermark — a replica that lost committed records — and drops it from the ISR at once
//!    ([`crate::partition::replica::desired_isr`]); it rejoins by the ordinary ISR expansion
//!    once caught up.
//! 3. **Repairing** and leading again (elected back before the new leader dropped it from the
//!    ISR): it must not serve its cut log, so it refuses reads and appends and hands over
//!    again, as in step 1.
//!
//! Decisions are made by [`repair_step`]; `crate::replication::repair` carries them out.

use sluice_meta::BrokerId;

/// Where a replica is in repairing a damaged batch of its own log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DamageState {
    /// A damaged batch was found and not yet cut off.
    Found,
    /// The log was cut below the damaged batch; the repair is done when the log end reaches
    /// `until` (the high watermark this replica knew before cutting).
    Repairing {
        /// Log end offset at which the repair is complete.
        until: i64,
    },
}

/// A damaged batch in this replica's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The first offset the damaged batch holds, as far as the intact batches before it say:
    /// the log is cut here (the batch holding this offset and everything after it go).
    pub offset: i64,
    /// The segment file holding it.
    pub file: String,
    /// Where the repair is.
    pub state: DamageState,
    /// The repair is stuck: this replica leads and no other live ISR member can take over.
    /// The partition is then offline here (`/ready` names it).
    pub offline: bool,
}

/// The next step of a repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairStep {
    /// This broker leads: elect this other live ISR member.
    HandOver {
        /// The broker to elect.
        to: BrokerId,
    },
    /// This broker leads and no other live ISR member exists: keep refusing the damaged batch
    /// (KAFKA_STORAGE_ERROR) and report the partition offline.
    Offline,
    /// Another broker leads: cut the log at this offset and refetch from it.
    Truncate {
        /// First offset removed.
        to: i64,
    },
    /// Nothing to do now (no leader, or the refetch is under way).
    Wait,
    /// The log holds again everything it held before the cut: the repair is complete.
    Done,
}

/// What the repair of one partition knows.
#[derive(Debug, Clone, Copy)]
pub struct RepairCheck<'a> {
    /// This broker.
    pub local: BrokerId,
    /// The partition's leader, if any.
    pub leader: Option<BrokerId>,
    /// Assigned replicas, preferred first.
    pub replicas: &'a [BrokerId],
    /// The committed ISR.
    pub isr: &'a [BrokerId],
    /// Brokers the metadata has live (unfenced).
    pub live: &'a [BrokerId],
    /// This replica's log end offset.
    pub log_end: i64,
}

/// The next step for a replica with `damage` (see the module doc for the rules).
pub fn repair_step(damage: &Damage, check: &RepairCheck<'_>) -> RepairStep {
    let RepairCheck { local, leader, replicas, isr, live, log_end } = *check;
    if leader == Some(local) {
        // In replica order, so that the preferred replicas are tried first.
        return replicas
            .iter()
            .copied()
            .find(|r| *r != local && isr.contains(r) && live.contains(r))
            .map_or(RepairStep::Offline, |to| RepairStep::HandOver { to });
    }
    match (&damage.state, leader) {
        (_, None) => RepairStep::Wait,
        (DamageState::Found, Some(_)) => RepairStep::Truncate { to: damage.offset },
        (DamageState::Repairing { until }, Some(_)) if log_end >= *until => RepairStep::Done,
        (DamageState::Repairing { .. }, Some(_)) => RepairStep::Wait,
    }
}

/// Where to cut a log in which a read from `fetch_offset` found a damaged batch:
/// `intact_end` is the offset after the last intact batch before it in the same read (`None`
/// when the damaged batch was the read's first). The damaged batch's own header is not
/// trusted for this — the flipped bit may be in its base offset.
pub fn damaged_batch_offset(fetch_offset: i64, intact_end: Option<i64>) -> i64 {
    match intact_end {
        Some(end) if end > fetch_offset => end,
        // The read's first batch is the one holding `fetch_offset`: cutting at `fetch_offset`
        // removes that whole batch.
        _ => fetch_offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn damage(state: DamageState) -> Damage {
        Damage { offset: 100, file: "00000000000000000000.log".into(), state, offline: false }
    }

    fn check<'a>(leader: Option<BrokerId>, isr: &'a [BrokerId], live: &'a [BrokerId], log_end: i64) -> RepairCheck<'a> {
        RepairCheck { local: 1, leader, replicas: &[1, 2, 3], isr, live, log_end }
    }

    /// A damaged leader hands over to the first other live ISR member, in replica order.
    #[test]
    fn a_damaged_leader_hands_over_to_a_live_in_sync_replica() {
        let found = damage(DamageState::Found);
        assert_eq!(repair_step(&found, &check(Some(1), &[1, 2, 3], &[1, 2, 3], 500)), RepairStep::HandOver { to: 2 });
        assert_eq!(repair_step(&found, &check(Some(1), &[1, 3], &[1, 2, 3], 500)), RepairStep::HandOver { to: 3 });
        assert_eq!(repair_step(&found, &check(Some(1), &[1, 2, 3], &[1, 3], 500)), RepairStep::HandOver { to: 3 });
    }

    /// With no other live ISR member (RF 1, the only ISR member, the others fenced), the
    /// partition stays here, offline for the damaged batch.
    #[test]
    fn a_damaged_leader_alone_in_the_isr_stays_offline() {
        let found = damage(DamageState::Found);
        assert_eq!(repair_step(&found, &check(Some(1), &[1], &[1, 2, 3], 500)), RepairStep::Offline);
        assert_eq!(repair_step(&found, &check(Some(1), &[1, 2], &[1, 3], 500)), RepairStep::Offline);
        let alone = RepairCheck { local: 1, leader: Some(1), replicas: &[1], isr: &[1], live: &[1], log_end: 500 };
        assert_eq!(repair_step(&found, &alone), RepairStep::Offline);
    }

    /// Once another broker leads, the damaged replica cuts its log at the damaged batch, then
    /// waits for the refetch to reach what it held before; with no leader it waits.
    #[test]
    fn a_damaged_follower_truncates_then_refetches_until_repaired() {
        let found = damage(DamageState::Found);
        assert_eq!(repair_step(&found, &check(Some(2), &[1, 2, 3], &[1, 2, 3], 500)), RepairStep::Truncate { to: 100 });
        assert_eq!(repair_step(&found, &check(None, &[1], &[1], 500)), RepairStep::Wait);
        let repairing = damage(DamageState::Repairing { until: 480 });
        assert_eq!(repair_step(&repairing, &check(Some(2), &[2, 3], &[1, 2, 3], 100)), RepairStep::Wait);
        assert_eq!(repair_step(&repairing, &check(Some(2), &[2, 3], &[1, 2, 3], 479)), RepairStep::Wait);
        assert_eq!(repair_step(&repairing, &check(Some(2), &[2, 3], &[1, 2, 3], 480)), RepairStep::Done);
    }

    /// A replica elected back while its log is cut hands over again (it never serves a log
    /// missing committed records), or stays offline.
    #[test]
    fn a_repairing_replica_elected_back_hands_over_again() {
        let repairing = damage(DamageState::Repairing { until: 480 });
        assert_eq!(
            repair_step(&repairing, &check(Some(1), &[1, 2, 3], &[1, 2, 3], 100)),
            RepairStep::HandOver { to: 2 }
        );
        assert_eq!(repair_step(&repairing, &check(Some(1), &[1], &[1, 2, 3], 100)), RepairStep::Offline);
    }

    /// The cut is where the intact batches of the read end, never taken from the damaged
    /// batch's own header.
    #[test]
    fn the_cut_is_where_the_intact_batches_end() {
        assert_eq!(damaged_batch_offset(40, None), 40);
        assert_eq!(damaged_batch_offset(40, Some(57)), 57);
        assert_eq!(damaged_batch_offset(40, Some(40)), 40);
    }
}
