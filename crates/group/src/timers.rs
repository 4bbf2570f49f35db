//! Timers: pending member ids, sessions, the join phase (rebalance timeout and initial-delay
//! steps) and the sync phase. The group has no clock; `handle` fires whatever is due by the
//! event's `now_ms`, in deadline order.

use crate::group::Group;

/// A timer of the group, named by what it guards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    /// A member id handed out with MEMBER_ID_REQUIRED that was not used in time.
    PendingMember(String),
    /// A member's session.
    Session(String),
    /// The end of the join phase (rebalance timeout or initial-delay step).
    JoinPhase,
    /// Members that have not sent SyncGroup by the rebalance timeout.
    SyncPhase,
}

impl Group {
    /// Fires every timer due by `until_ms` in deadline order, each at its own deadline (the
    /// group's clock steps to it), so a late `Tick` has exactly the effect of timely ones: a join
    /// phase that ended at 100 renews the sessions it would have renewed before a session
    /// deadline at 200 is judged. Each firing removes a member or pending member, or moves the
    /// join/sync phase to a later deadline or ends it, so the loop ends; the bound is a backstop
    /// that leaves any remainder to the next event.
    pub(crate) fn fire_due_timers(&mut self, until_ms: i64) {
        let firings_max = 4 * (self.members.len() + self.pending_members.len()) + 16;
        for _ in 0..firings_max {
            let Some((deadline_ms, timer)) = self.earliest_timer() else { return };
            if deadline_ms > until_ms {
                return;
            }
            self.now_ms = self.now_ms.max(deadline_ms);
            match timer {
                Timer::PendingMember(member_id) => {
                    self.pending_members.remove(&member_id);
                    self.maybe_complete_join();
                }
                Timer::Session(member_id) => self.remove_member_and_update_group(&member_id),
                Timer::JoinPhase => self.on_join_deadline(),
                Timer::SyncPhase => self.on_sync_deadline(),
            }
        }
    }

    /// The armed timer with the earliest deadline; on a tie, pending members, then sessions,
    /// then the join phase, then the sync phase.
    pub(crate) fn earliest_timer(&self) -> Option<(i64, Timer)> {
        let pending =
            self.pending_members.iter().map(|(id, deadline)| (*deadline, 0, Timer::PendingMember(id.clone())));
        let sessions = self
            .members
            .values()
            .filter(|m| m.may_expire())
            .map(|m| (m.session_deadline_ms, 1, Timer::Session(m.member_id.clone())));
        let join = self.join_phase.as_ref().map(|phase| (phase.deadline_ms, 2, Timer::JoinPhase));
        let sync = self.sync_deadline_ms.map(|deadline| (deadline, 3, Timer::SyncPhase));
        let earliest =
            pending.chain(sessions).chain(join).chain(sync).min_by_key(|(deadline, rank, _)| (*deadline, *rank));
        earliest.map(|(deadline, _, timer)| (deadline, timer))
    }

    /// The join phase's timer: an initial-delay step that saw new members takes another step
    /// (Kafka's `InitialDelayedJoin`); otherwise the join phase completes.
    fn on_join_deadline(&mut self) {
        let Some(phase) = self.join_phase.as_mut() else { return };
        if let Some(remaining_ms) = phase.initial_delay_remaining_ms {
            if phase.new_member_added && remaining_ms > 0 {
                let delay_ms = i64::from(self.config.initial_rebalance_delay_ms.max(0)).min(remaining_ms);
                phase.new_member_added = false;
                phase.initial_delay_remaining_ms = Some(remaining_ms - delay_ms);
                phase.deadline_ms = self.now_ms.saturating_add(delay_ms);
                return;
            }
        }
        self.complete_join();
    }

    /// Members of the new generation that never sent SyncGroup within the rebalance timeout are
    /// removed and the group rebalances without them.
    fn on_sync_deadline(&mut self) {
        self.sync_deadline_ms = None;
        let laggards: Vec<String> = std::mem::take(&mut self.pending_sync_members).into_iter().collect();
        for member_id in &laggards {
            self.remove_member(member_id);
        }
        if !laggards.is_empty() {
            self.prepare_rebalance_or_empty();
        }
    }
}
