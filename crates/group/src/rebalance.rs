//! The rebalance transitions of Kafka's classic group: preparing a rebalance, ending the join
//! phase (a new generation, or Empty), and removing members with the state change that follows.

use std::collections::BTreeMap;

use crate::group::{Group, GroupState, JoinPhase};
use crate::types::{Action, ErrorCode, JoinResponse, Response, SyncResponse};

impl Group {
    /// Starts a rebalance unless one is already being prepared (or the group is Dead).
    pub(crate) fn maybe_prepare_rebalance(&mut self) {
        if matches!(self.state, GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty) {
            self.prepare_rebalance();
        }
    }

    /// → PreparingRebalance. Members waiting in SyncGroup are told REBALANCE_IN_PROGRESS so they
    /// rejoin. From Empty the join phase is the initial delay; otherwise it lasts the largest
    /// rebalance timeout, or less if every member rejoins sooner.
    pub(crate) fn prepare_rebalance(&mut self) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_and_propagate_assignment_error(ErrorCode::REBALANCE_IN_PROGRESS);
        }
        self.sync_deadline_ms = None;
        self.pending_sync_members.clear();
        self.assignment_in_flight = None;
        self.park_static_replacements_for_join();
        let rebalance_timeout_ms = self.rebalance_timeout_ms();
        let phase = if self.state == GroupState::Empty {
            let delay_ms = i64::from(self.config.initial_rebalance_delay_ms.max(0));
            JoinPhase {
                deadline_ms: self.now_ms.saturating_add(delay_ms),
                initial_delay_remaining_ms: Some((rebalance_timeout_ms - delay_ms).max(0)),
                new_member_added: false,
            }
        } else {
            JoinPhase {
                deadline_ms: self.now_ms.saturating_add(rebalance_timeout_ms),
                initial_delay_remaining_ms: None,
                new_member_added: false,
            }
        };
        self.join_phase = Some(phase);
        self.transition(GroupState::PreparingRebalance);
    }

    /// Answers every parked SyncGroup with `error_code` and forgets the assignment.
    pub(crate) fn reset_and_propagate_assignment_error(&mut self, error_code: ErrorCode) {
        let mut parked = Vec::new();
        for member in self.members.values_mut() {
            member.assignment = None;
            if let Some(request_id) = member.awaiting_sync.take() {
                parked.push(request_id);
            }
        }
        for request_id in parked {
            self.respond(request_id, Response::Sync(SyncResponse::error(error_code)));
        }
    }

    fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// Ends the join phase early when it may: a regular phase when every member (and every
    /// member still in the MEMBER_ID_REQUIRED handshake) has rejoined; any phase when the last
    /// member went away (Kafka would wait out an initial delay with nobody in it; ending it at
    /// once keeps "PreparingRebalance ⇒ members" true).
    pub(crate) fn maybe_complete_join(&mut self) {
        let Some(phase) = &self.join_phase else { return };
        if self.members.is_empty() || (phase.initial_delay_remaining_ms.is_none() && self.all_members_joined()) {
            self.complete_join();
        }
    }

    /// The join phase ends (Kafka's `onCompleteJoin`): dynamic members that did not rejoin are
    /// removed; if nobody rejoined (only absent static members remain) the phase starts over;
    /// otherwise a new generation begins: Empty if nobody is left, else CompletingRebalance with
    /// a JoinGroup response to every member (the member list to the leader).
    pub(crate) fn complete_join(&mut self) {
        let not_rejoined: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in not_rejoined {
            self.remove_member(&member_id);
        }
        if !self.members.is_empty() && !self.maybe_elect_new_joined_leader() {
            let rebalance_timeout_ms = self.rebalance_timeout_ms().max(1);
            self.join_phase = Some(JoinPhase {
                deadline_ms: self.now_ms.saturating_add(rebalance_timeout_ms),
                initial_delay_remaining_ms: None,
                new_member_added: false,
            });
            return;
        }
        self.join_phase = None;
        self.init_next_generation();
        if self.state == GroupState::Empty {
            let record = self.record(&BTreeMap::new());
            self.persist(record);
            self.actions.push(Action::GroupEmptied);
            return;
        }
        let leader = self.leader_id.clone().unwrap_or_default();
        let member_ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in member_ids {
            let response = self.current_generation_join_response(&member_id, leader.clone());
            if let Some(member) = self.members.get_mut(&member_id) {
                member.is_new = false;
                if let Some(request_id) = member.awaiting_join.take() {
                    self.actions.push(Action::Respond { request_id, response: Response::Join(response) });
                }
            }
            self.reset_session(&member_id);
            self.pending_sync_members.insert(member_id);
        }
        self.sync_deadline_ms = Some(self.now_ms.saturating_add(self.rebalance_timeout_ms()));
    }

    /// Keeps the leader if it rejoined, else hands leadership to a member that did; `false`
    /// when no member rejoined.
    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let leader_rejoined =
            self.leader_id.as_ref().and_then(|id| self.members.get(id)).is_some_and(|m| m.awaiting_join.is_some());
        if leader_rejoined {
            return true;
        }
        let joined = self.members.values().filter(|m| m.awaiting_join.is_some()).min_by_key(|m| m.joined_sequence);
        match joined.map(|m| m.member_id.clone()) {
            Some(new_leader) => {
                self.leader_id = Some(new_leader);
                true
            }
            None => false,
        }
    }

    fn init_next_generation(&mut self) {
        self.generation_id = self.generation_id.saturating_add(1);
        self.pending_sync_members.clear();
        self.sync_deadline_ms = None;
        for member in self.members.values_mut() {
            member.assignment = None;
        }
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition(GroupState::Empty);
        } else {
            self.protocol_name = self.select_protocol();
            self.transition(GroupState::CompletingRebalance);
        }
    }

    /// Removes a member, answering its parked requests with UNKNOWN_MEMBER_ID, and passes
    /// leadership on if it led. Does not start a rebalance (see [`Self::remove_member_and_update_group`]).
    pub(crate) fn remove_member(&mut self, member_id: &str) {
        self.pending_members.remove(member_id);
        self.abandon_static_replacement(member_id, ErrorCode::UNKNOWN_MEMBER_ID);
        let Some(member) = self.members.remove(member_id) else { return };
        if let Some(request_id) = member.awaiting_join {
            self.respond(request_id, Response::Join(JoinResponse::error("", ErrorCode::UNKNOWN_MEMBER_ID)));
        }
        if let Some(request_id) = member.awaiting_sync {
            self.respond(request_id, Response::Sync(SyncResponse::error(ErrorCode::UNKNOWN_MEMBER_ID)));
        }
        if let Some(instance_id) = &member.group_instance_id {
            self.static_members.remove(instance_id);
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = self.longest_standing_member();
        }
        self.remove_pending_sync_member(member_id);
    }

    pub(crate) fn remove_pending_sync_member(&mut self, member_id: &str) {
        self.pending_sync_members.remove(member_id);
        if self.pending_sync_members.is_empty() {
            self.sync_deadline_ms = None;
        }
    }

    /// A member left or failed: remove it, then rebalance (Stable, CompletingRebalance) or see
    /// whether the join phase can end (PreparingRebalance).
    pub(crate) fn remove_member_and_update_group(&mut self, member_id: &str) {
        self.remove_member(member_id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance_or_empty(),
            GroupState::PreparingRebalance => self.maybe_complete_join(),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// After removals outside a join phase: rebalance the members that are left (which ends at
    /// once, in Empty, if there are none).
    pub(crate) fn prepare_rebalance_or_empty(&mut self) {
        self.maybe_prepare_rebalance();
        self.maybe_complete_join();
    }
}
