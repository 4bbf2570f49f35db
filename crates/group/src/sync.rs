//! SyncGroup and the persistence of the leader's assignment; Heartbeat; LeaveGroup; the group
//! side of OffsetCommit; DeleteGroups; unloading.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::group::{Group, GroupState};
use crate::types::{
    Action, ErrorCode, Heartbeat, JoinResponse, LeaveGroup, LeaveMemberResult, LeaveResponse, OffsetCommit, PersistId,
    RequestId, Response, SyncGroup, SyncResponse,
};

impl Group {
    /// The checks every member request shares, in Kafka's order.
    fn validate_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Option<ErrorCode> {
        if self.state == GroupState::Dead {
            Some(ErrorCode::COORDINATOR_NOT_AVAILABLE)
        } else if self.is_static_member_fenced(group_instance_id, member_id) {
            Some(ErrorCode::FENCED_INSTANCE_ID)
        } else if !self.members.contains_key(member_id) {
            Some(ErrorCode::UNKNOWN_MEMBER_ID)
        } else if generation_id != self.generation_id {
            Some(ErrorCode::ILLEGAL_GENERATION)
        } else {
            None
        }
    }

    /// SyncGroup. In CompletingRebalance every member's request waits; the leader's carries the
    /// assignment, which is persisted first ([`Action::PersistGroup`]) and handed out when
    /// [`crate::Event::PersistCompleted`] reports it durable. In Stable the member gets its
    /// assignment at once (a member that missed its response, or a replaced static member).
    pub(crate) fn on_sync(&mut self, sync: SyncGroup) {
        let wrong_type = sync.protocol_type.as_ref().is_some_and(|t| self.protocol_type.as_ref() != Some(t));
        let wrong_name = sync.protocol_name.as_ref().is_some_and(|n| self.protocol_name.as_ref() != Some(n));
        let error = self
            .validate_member(&sync.member_id, sync.group_instance_id.as_deref(), sync.generation_id)
            .or((wrong_type || wrong_name).then_some(ErrorCode::INCONSISTENT_GROUP_PROTOCOL));
        if let Some(error_code) = error {
            return self.respond(sync.request_id, Response::Sync(SyncResponse::error(error_code)));
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                self.respond(sync.request_id, Response::Sync(SyncResponse::error(ErrorCode::UNKNOWN_MEMBER_ID)));
            }
            GroupState::PreparingRebalance => {
                self.respond(sync.request_id, Response::Sync(SyncResponse::error(ErrorCode::REBALANCE_IN_PROGRESS)));
            }
            GroupState::CompletingRebalance => self.park_sync(sync),
            GroupState::Stable => {
                self.remove_pending_sync_member(&sync.member_id);
                self.reset_session(&sync.member_id);
                let assignment =
                    self.members.get(&sync.member_id).and_then(|m| m.assignment.clone()).unwrap_or_default();
                let response = self.sync_response(assignment);
                self.respond(sync.request_id, Response::Sync(response));
            }
        }
    }

    fn sync_response(&self, assignment: Bytes) -> SyncResponse {
        SyncResponse {
            error_code: ErrorCode::NONE,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    fn park_sync(&mut self, sync: SyncGroup) {
        let Some(member) = self.members.get_mut(&sync.member_id) else { return };
        if let Some(superseded) = member.awaiting_sync.replace(sync.request_id) {
            self.respond(superseded, Response::Sync(SyncResponse::error(ErrorCode::REBALANCE_IN_PROGRESS)));
        }
        self.remove_pending_sync_member(&sync.member_id);
        let is_leader = self.leader_id.as_deref() == Some(sync.member_id.as_str());
        if !is_leader || self.assignment_in_flight.is_some() {
            return;
        }
        // Assignments for ids that are not members are dropped; members the leader left out get
        // empty bytes (Kafka does both).
        let mut assignments: BTreeMap<String, Bytes> =
            sync.assignments.into_iter().filter(|(member_id, _)| self.members.contains_key(member_id)).collect();
        for member_id in self.members.keys() {
            assignments.entry(member_id.clone()).or_default();
        }
        let record = self.record(&assignments);
        let persist_id = self.persist(record);
        self.assignment_in_flight = Some((persist_id, assignments));
    }

    /// A record is durable or failed: the leader's assignment (→ Stable, everyone parked gets
    /// theirs; or parked members get the error and the group rebalances), or a static member's
    /// replacement. Outcomes nothing waits for are ignored.
    pub(crate) fn on_persist_completed(&mut self, persist_id: PersistId, error_code: ErrorCode) {
        let replacement = self.static_replacements_in_flight.iter().position(|r| r.persist_id == persist_id);
        if let Some(index) = replacement {
            let replacement = self.static_replacements_in_flight.remove(index);
            return self.complete_static_replacement(replacement, error_code);
        }
        match &self.assignment_in_flight {
            Some((in_flight, _)) if *in_flight == persist_id => {}
            _ => return,
        }
        let Some((_, assignments)) = self.assignment_in_flight.take() else { return };
        if error_code != ErrorCode::NONE {
            self.reset_and_propagate_assignment_error(error_code);
            return self.prepare_rebalance_or_empty();
        }
        let mut parked = Vec::new();
        for member in self.members.values_mut() {
            let assignment = assignments.get(&member.member_id).cloned().unwrap_or_default();
            member.assignment = Some(assignment.clone());
            if let Some(request_id) = member.awaiting_sync.take() {
                parked.push((request_id, assignment));
            }
        }
        for (request_id, assignment) in parked {
            let response = self.sync_response(assignment);
            self.respond(request_id, Response::Sync(response));
        }
        self.transition(GroupState::Stable);
    }

    /// Heartbeat: keeps the session alive, and tells the member to rejoin while the group
    /// prepares a rebalance.
    pub(crate) fn on_heartbeat(&mut self, heartbeat: Heartbeat) {
        let error =
            self.validate_member(&heartbeat.member_id, heartbeat.group_instance_id.as_deref(), heartbeat.generation_id);
        let error_code = match (error, self.state) {
            (Some(error_code), _) => error_code,
            (None, GroupState::Empty | GroupState::Dead) => ErrorCode::UNKNOWN_MEMBER_ID,
            (None, GroupState::PreparingRebalance) => {
                self.reset_session(&heartbeat.member_id);
                ErrorCode::REBALANCE_IN_PROGRESS
            }
            (None, GroupState::CompletingRebalance | GroupState::Stable) => {
                self.reset_session(&heartbeat.member_id);
                ErrorCode::NONE
            }
        };
        self.respond(heartbeat.request_id, Response::Heartbeat { error_code });
    }

    /// LeaveGroup (v3+ batch). Each named member gets its own code; an empty member id with an
    /// instance id removes that static member.
    pub(crate) fn on_leave(&mut self, leave: LeaveGroup) {
        if self.state == GroupState::Dead {
            let response = LeaveResponse { error_code: ErrorCode::COORDINATOR_NOT_AVAILABLE, members: Vec::new() };
            return self.respond(leave.request_id, Response::Leave(response));
        }
        let mut results = Vec::with_capacity(leave.members.len());
        for identity in leave.members {
            let instance_id = identity.group_instance_id.as_deref();
            let error_code = if identity.member_id.is_empty() {
                match instance_id.and_then(|id| self.static_members.get(id)).cloned() {
                    Some(member_id) => {
                        self.remove_member_and_update_group(&member_id);
                        ErrorCode::NONE
                    }
                    None => ErrorCode::UNKNOWN_MEMBER_ID,
                }
            } else if self.pending_members.remove(&identity.member_id).is_some() {
                self.maybe_complete_join();
                ErrorCode::NONE
            } else if self.is_static_member_fenced(instance_id, &identity.member_id) {
                ErrorCode::FENCED_INSTANCE_ID
            } else if self.members.contains_key(&identity.member_id) {
                self.remove_member_and_update_group(&identity.member_id);
                ErrorCode::NONE
            } else {
                ErrorCode::UNKNOWN_MEMBER_ID
            };
            results.push(LeaveMemberResult {
                member_id: identity.member_id,
                group_instance_id: identity.group_instance_id,
                error_code,
            });
        }
        let response = LeaveResponse { error_code: ErrorCode::NONE, members: results };
        self.respond(leave.request_id, Response::Leave(response));
    }

    /// The group side of OffsetCommit (Kafka's `validateOffsetCommit` and state rules). A commit
    /// with generation -1, no member id and no instance id comes from a client that manages its
    /// own partitions, and is allowed only while the group is Empty. A valid member's commit also
    /// counts as a heartbeat. Whether the partitions exist is the broker's check.
    pub(crate) fn on_validate_offset_commit(&mut self, commit: OffsetCommit) {
        let uses_group_management =
            commit.generation_id >= 0 || !commit.member_id.is_empty() || commit.group_instance_id.is_some();
        let error_code = if self.state == GroupState::Dead {
            ErrorCode::COORDINATOR_NOT_AVAILABLE
        } else if uses_group_management {
            match self.validate_member(&commit.member_id, commit.group_instance_id.as_deref(), commit.generation_id) {
                Some(error_code) => error_code,
                None if self.state == GroupState::CompletingRebalance => ErrorCode::REBALANCE_IN_PROGRESS,
                None => {
                    self.reset_session(&commit.member_id);
                    ErrorCode::NONE
                }
            }
        } else if self.state != GroupState::Empty {
            ErrorCode::UNKNOWN_MEMBER_ID
        } else {
            ErrorCode::NONE
        };
        self.respond(commit.request_id, Response::OffsetCommit { error_code });
    }

    /// DeleteGroups: only an Empty group can be deleted (→ Dead); the broker then writes the
    /// tombstones for the group and its offsets.
    pub(crate) fn on_delete(&mut self, request_id: RequestId) {
        let error_code = match self.state {
            GroupState::Dead => ErrorCode::GROUP_ID_NOT_FOUND,
            GroupState::Empty => {
                self.become_dead();
                ErrorCode::NONE
            }
            GroupState::PreparingRebalance | GroupState::CompletingRebalance | GroupState::Stable => {
                ErrorCode::NON_EMPTY_GROUP
            }
        };
        self.respond(request_id, Response::Delete { error_code });
    }

    /// This broker no longer coordinates the group: every parked request is answered
    /// NOT_COORDINATOR (the client finds the new coordinator, which loads the group from its
    /// record) and the group is Dead.
    pub(crate) fn on_unload(&mut self) {
        if self.state == GroupState::Dead {
            return;
        }
        for replacement in std::mem::take(&mut self.static_replacements_in_flight) {
            let response = JoinResponse::error(&replacement.new_member_id, ErrorCode::NOT_COORDINATOR);
            self.respond(replacement.request_id, Response::Join(response));
        }
        let members = std::mem::take(&mut self.members);
        for member in members.into_values() {
            if let Some(request_id) = member.awaiting_join {
                let response = JoinResponse::error(&member.member_id, ErrorCode::NOT_COORDINATOR);
                self.respond(request_id, Response::Join(response));
            }
            if let Some(request_id) = member.awaiting_sync {
                self.respond(request_id, Response::Sync(SyncResponse::error(ErrorCode::NOT_COORDINATOR)));
            }
        }
        self.become_dead();
    }

    fn become_dead(&mut self) {
        self.members.clear();
        self.static_members.clear();
        self.pending_members.clear();
        self.pending_sync_members.clear();
        self.leader_id = None;
        self.join_phase = None;
        self.sync_deadline_ms = None;
        self.assignment_in_flight = None;
        self.static_replacements_in_flight.clear();
        self.transition(GroupState::Dead);
        self.actions.push(Action::GroupDead);
    }
}
