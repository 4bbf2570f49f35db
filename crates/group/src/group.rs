//! The group's state, the event loop ([`Group::handle`]), loading, describing, the invariants,
//! and helpers every request uses. The rebalance transitions live in `rebalance.rs`, timers in
//! `timers.rs`, request-specific rules in `join.rs` (JoinGroup) and `sync.rs` (SyncGroup,
//! Heartbeat, LeaveGroup, commits, deletion, unload).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::config::GroupConfig;
use crate::join::StaticReplacement;
use crate::types::{
    Action, ErrorCode, Event, GroupDescription, GroupRecord, JoinResponse, JoinedMember, MemberDescription,
    MemberRecord, PersistId, Protocol, RequestId, Response,
};

/// The five states of Kafka's classic group (see the crate docs for the diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members; offsets may still be committed ("simple" consumers) and they age.
    Empty,
    /// Waiting for members to (re)join before a new generation starts.
    PreparingRebalance,
    /// A new generation exists; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted or unloaded; answers every request with COORDINATOR_NOT_AVAILABLE.
    Dead,
}

impl GroupState {
    /// The name Kafka uses in ListGroups and DescribeGroups.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A member of the group. Its parked requests (`awaiting_join`, `awaiting_sync`) are answered
/// when the rebalance moves on, or with an error when the member goes away.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) session_timeout_ms: i32,
    pub(crate) rebalance_timeout_ms: i32,
    /// In the member's order of preference, without duplicate names.
    pub(crate) protocols: Vec<Protocol>,
    /// This generation's assignment; `None` from the start of a generation until the leader's
    /// assignment is durable. Always `Some` in Stable.
    pub(crate) assignment: Option<Bytes>,
    pub(crate) awaiting_join: Option<RequestId>,
    pub(crate) awaiting_sync: Option<RequestId>,
    /// Joined during the current rebalance: expires by `new_member_join_timeout_ms` even while
    /// it waits for its JoinGroup response.
    pub(crate) is_new: bool,
    /// When the member is removed unless it heartbeats (or is waiting in a rebalance).
    pub(crate) session_deadline_ms: i64,
    /// Order of arrival; the longest-standing member becomes leader when the leader leaves.
    pub(crate) joined_sequence: u64,
}

impl Member {
    pub(crate) fn supports(&self, protocol_name: &str) -> bool {
        self.protocols.iter().any(|protocol| protocol.name == protocol_name)
    }

    pub(crate) fn metadata(&self, protocol_name: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|protocol| protocol.name == protocol_name)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// Kafka's "has satisfied heartbeat": members parked in a rebalance are not expired, except
    /// new ones, which have no member id to heartbeat with.
    pub(crate) fn may_expire(&self) -> bool {
        self.is_new || (self.awaiting_join.is_none() && self.awaiting_sync.is_none())
    }
}

/// The join phase of a PreparingRebalance group.
#[derive(Debug, Clone)]
pub(crate) struct JoinPhase {
    /// The phase ends here at the latest (rebalance timeout, or the current initial delay step).
    pub(crate) deadline_ms: i64,
    /// `Some` when the rebalance started from Empty: the phase ends only at the deadline, which
    /// moves on by another delay step (within the rebalance timeout) while new members arrive.
    pub(crate) initial_delay_remaining_ms: Option<i64>,
    pub(crate) new_member_added: bool,
}

/// Why a [`Group`] could not be rebuilt from a [`GroupRecord`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The record lists members but no selected protocol; it was not written by a coordinator.
    /// The operator should delete the group (its offsets are separate records).
    #[error("group record has members but no protocol name")]
    MembersWithoutProtocol,
    /// Two members share a member id or a group instance id.
    #[error("group record names member or instance id {0:?} twice")]
    DuplicateMember(String),
}

/// One consumer group's coordinator state. Drive it with [`Group::handle`]; it performs no I/O
/// and reads no clock.
#[derive(Debug)]
pub struct Group {
    pub(crate) group_id: String,
    pub(crate) config: GroupConfig,
    pub(crate) state: GroupState,
    pub(crate) generation_id: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader_id: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// group.instance.id → member id of the static member that currently holds it.
    pub(crate) static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED → when they expire unless used.
    pub(crate) pending_members: BTreeMap<String, i64>,
    /// Members of the new generation that have not yet sent SyncGroup.
    pub(crate) pending_sync_members: BTreeSet<String>,
    /// `Some` exactly in PreparingRebalance.
    pub(crate) join_phase: Option<JoinPhase>,
    /// Members still in `pending_sync_members` are removed at this time.
    pub(crate) sync_deadline_ms: Option<i64>,
    /// The leader's assignment, waiting for its PersistGroup to complete. `Some` only in
    /// CompletingRebalance.
    pub(crate) assignment_in_flight: Option<(PersistId, BTreeMap<String, Bytes>)>,
    /// Static members replaced in Stable whose JoinGroup waits for the record naming their new
    /// member id to be durable. Only in Stable; at most one per instance id.
    pub(crate) static_replacements_in_flight: Vec<StaticReplacement>,
    pub(crate) next_persist_id: u64,
    pub(crate) next_joined_sequence: u64,
    /// The latest time seen; time never goes backwards inside the group.
    pub(crate) now_ms: i64,
    pub(crate) state_timestamp_ms: i64,
    /// Actions of the event being handled.
    pub(crate) actions: Vec<Action>,
}

impl Group {
    /// A new, Empty group at generation 0.
    pub fn new(group_id: impl Into<String>, config: GroupConfig, now_ms: i64) -> Group {
        Group {
            group_id: group_id.into(),
            config,
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            pending_sync_members: BTreeSet::new(),
            join_phase: None,
            sync_deadline_ms: None,
            assignment_in_flight: None,
            static_replacements_in_flight: Vec::new(),
            next_persist_id: 0,
            next_joined_sequence: 0,
            now_ms,
            state_timestamp_ms: now_ms,
            actions: Vec::new(),
        }
    }

    /// Rebuilds a group from its persisted record, as a coordinator does when it takes over the
    /// `__consumer_offsets` partition: Stable with the recorded members and assignments if it has
    /// members (each gets a fresh session), Empty otherwise.
    pub fn load(
        group_id: impl Into<String>,
        config: GroupConfig,
        now_ms: i64,
        record: &GroupRecord,
    ) -> Result<Group, LoadError> {
        let mut group = Group::new(group_id, config, now_ms);
        group.generation_id = record.generation_id;
        // Offsets of an Empty group age from the time it became Empty, not from this load.
        group.state_timestamp_ms = record.current_state_timestamp_ms;
        group.protocol_type = record.protocol_type.clone();
        if record.members.is_empty() {
            return Ok(group);
        }
        let protocol_name = record.protocol_name.clone().ok_or(LoadError::MembersWithoutProtocol)?;
        for member in &record.members {
            if group.members.contains_key(&member.member_id) {
                return Err(LoadError::DuplicateMember(member.member_id.clone()));
            }
            if let Some(instance_id) = &member.group_instance_id {
                if group.static_members.insert(instance_id.clone(), member.member_id.clone()).is_some() {
                    return Err(LoadError::DuplicateMember(instance_id.clone()));
                }
            }
            let joined_sequence = group.take_joined_sequence();
            group.members.insert(
                member.member_id.clone(),
                Member {
                    member_id: member.member_id.clone(),
                    group_instance_id: member.group_instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    session_timeout_ms: member.session_timeout_ms,
                    rebalance_timeout_ms: member.rebalance_timeout_ms,
                    protocols: vec![Protocol { name: protocol_name.clone(), metadata: member.subscription.clone() }],
                    assignment: Some(member.assignment.clone()),
                    awaiting_join: None,
                    awaiting_sync: None,
                    is_new: false,
                    session_deadline_ms: now_ms.saturating_add(i64::from(member.session_timeout_ms)),
                    joined_sequence,
                },
            );
        }
        group.leader_id = match &record.leader {
            Some(leader) if group.members.contains_key(leader) => Some(leader.clone()),
            _ => group.longest_standing_member(),
        };
        group.protocol_name = Some(protocol_name);
        group.state = GroupState::Stable;
        Ok(group)
    }

    /// Applies one event at `now_ms` and returns what the broker must do, in order. Timers that
    /// are due at `now_ms` fire first, so a request that arrives after a member's session ended
    /// sees the member gone, exactly as if a `Tick` had come first.
    pub fn handle(&mut self, now_ms: i64, event: Event) -> Vec<Action> {
        let now_ms = self.now_ms.max(now_ms);
        self.fire_due_timers(now_ms);
        self.now_ms = now_ms;
        match event {
            Event::Join(join) => self.on_join(join),
            Event::Sync(sync) => self.on_sync(sync),
            Event::Heartbeat(heartbeat) => self.on_heartbeat(heartbeat),
            Event::Leave(leave) => self.on_leave(leave),
            Event::ValidateOffsetCommit(commit) => self.on_validate_offset_commit(commit),
            Event::Tick => {}
            Event::PersistCompleted { persist_id, error_code } => self.on_persist_completed(persist_id, error_code),
            Event::Delete { request_id } => self.on_delete(request_id),
            Event::Unload => self.on_unload(),
        }
        self.fire_due_timers(now_ms);
        debug_assert_eq!(self.check_invariants(), Ok(()));
        std::mem::take(&mut self.actions)
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    /// Member ids in id order.
    pub fn member_ids(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// When the state last changed (for offset retention of Empty groups).
    pub fn state_timestamp_ms(&self) -> i64 {
        self.state_timestamp_ms
    }

    /// The earliest time at which a `Tick` would change something, if any timer is armed. The
    /// broker's timer wheel calls `handle(t, Event::Tick)` then.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.earliest_timer().map(|(deadline_ms, _)| deadline_ms)
    }

    /// The group as DescribeGroups reports it.
    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let protocol_name = if stable { self.protocol_name.clone().unwrap_or_default() } else { String::new() };
        let members = self
            .members
            .values()
            .map(|member| MemberDescription {
                member_id: member.member_id.clone(),
                group_instance_id: member.group_instance_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                metadata: if stable { member.metadata(&protocol_name) } else { Bytes::new() },
                assignment: if stable { member.assignment.clone().unwrap_or_default() } else { Bytes::new() },
            })
            .collect();
        GroupDescription {
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name,
            members,
        }
    }

    /// Checks the structural invariants; `Err` names the first one broken. Called after every
    /// event in debug builds, and by the property tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        let no_members = self.members.is_empty();
        match self.state {
            GroupState::Empty | GroupState::Dead if !no_members => return Err("Empty/Dead group has members".into()),
            GroupState::PreparingRebalance | GroupState::CompletingRebalance | GroupState::Stable if no_members => {
                return Err(format!("{} group has no members", self.state.as_str()))
            }
            _ => {}
        }
        match (&self.leader_id, no_members) {
            (None, true) => {}
            (Some(leader), false) if self.members.contains_key(leader) => {}
            _ => return Err(format!("leader {:?} does not match members", self.leader_id)),
        }
        for (instance_id, member_id) in &self.static_members {
            match self.members.get(member_id) {
                Some(member) if member.group_instance_id.as_deref() == Some(instance_id) => {}
                _ => return Err(format!("instance {instance_id} maps to a member that does not hold it")),
            }
        }
        let static_count = self.members.values().filter(|m| m.group_instance_id.is_some()).count();
        if static_count != self.static_members.len() {
            return Err("two members hold one group instance id".into());
        }
        if self.pending_members.keys().any(|id| self.members.contains_key(id)) {
            return Err("a pending member is also a member".into());
        }
        if (self.state == GroupState::PreparingRebalance) != self.join_phase.is_some() {
            return Err("join phase armed outside PreparingRebalance".into());
        }
        let completing_or_stable = matches!(self.state, GroupState::CompletingRebalance | GroupState::Stable);
        if !completing_or_stable && (!self.pending_sync_members.is_empty() || self.sync_deadline_ms.is_some()) {
            return Err("sync bookkeeping outside CompletingRebalance/Stable".into());
        }
        if self.pending_sync_members.iter().any(|id| !self.members.contains_key(id)) {
            return Err("pending sync member is not a member".into());
        }
        if self.assignment_in_flight.is_some() && self.state != GroupState::CompletingRebalance {
            return Err("assignment in flight outside CompletingRebalance".into());
        }
        let mut replaced_instances = BTreeSet::new();
        for replacement in &self.static_replacements_in_flight {
            if self.state != GroupState::Stable {
                return Err("static replacement in flight outside Stable".into());
            }
            if self.static_members.get(&replacement.group_instance_id) != Some(&replacement.new_member_id) {
                return Err(format!("replacement of {} no longer holds its instance", replacement.new_member_id));
            }
            if !replaced_instances.insert(&replacement.group_instance_id) {
                return Err("two replacements in flight for one instance".into());
            }
        }
        for member in self.members.values() {
            if member.awaiting_join.is_some() && self.state != GroupState::PreparingRebalance {
                return Err(format!("member {} awaits a join outside PreparingRebalance", member.member_id));
            }
            if member.awaiting_sync.is_some() && self.state != GroupState::CompletingRebalance {
                return Err(format!("member {} awaits a sync outside CompletingRebalance", member.member_id));
            }
            if self.state == GroupState::Stable && member.assignment.is_none() {
                return Err(format!("member {} has no assignment in Stable", member.member_id));
            }
            if completing_or_stable && !self.protocol_name.as_deref().is_some_and(|name| member.supports(name)) {
                return Err(format!("member {} does not support the selected protocol", member.member_id));
            }
        }
        Ok(())
    }

    // ---- shared machinery ----

    pub(crate) fn respond(&mut self, request_id: RequestId, response: Response) {
        self.actions.push(Action::Respond { request_id, response });
    }

    /// Asks the broker to persist `record`; the id names the outcome it will report.
    pub(crate) fn persist(&mut self, record: GroupRecord) -> PersistId {
        let persist_id = PersistId(self.next_persist_id);
        self.next_persist_id += 1;
        self.actions.push(Action::PersistGroup { persist_id, record });
        persist_id
    }

    pub(crate) fn transition(&mut self, state: GroupState) {
        self.state = state;
        self.state_timestamp_ms = self.now_ms;
    }

    pub(crate) fn take_joined_sequence(&mut self) -> u64 {
        let sequence = self.next_joined_sequence;
        self.next_joined_sequence += 1;
        sequence
    }

    pub(crate) fn longest_standing_member(&self) -> Option<String> {
        self.members.values().min_by_key(|m| m.joined_sequence).map(|m| m.member_id.clone())
    }

    /// The largest rebalance timeout of any member: how long a join phase may last.
    pub(crate) fn rebalance_timeout_ms(&self) -> i64 {
        self.members.values().map(|m| i64::from(m.rebalance_timeout_ms.max(0))).max().unwrap_or(0)
    }

    /// Whether `name` is fenced for `group_instance_id`: another member holds that instance id.
    pub(crate) fn is_static_member_fenced(&self, group_instance_id: Option<&str>, member_id: &str) -> bool {
        group_instance_id.and_then(|id| self.static_members.get(id)).is_some_and(|holder| holder != member_id)
    }

    /// Kafka's `supportsProtocols`: an Empty group takes any non-empty protocol list; otherwise
    /// the type must match and one of the protocols must be supported by every member.
    pub(crate) fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|protocol| self.members.values().all(|m| m.supports(&protocol.name)))
    }

    /// Kafka's protocol selection: the candidates are the protocols every member supports; each
    /// member votes for its most preferred candidate; the most votes win. Kafka breaks ties
    /// arbitrarily; here the leader's preference order breaks them, so the choice is repeatable.
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let reference = self.leader_id.as_ref().and_then(|id| self.members.get(id))?;
        let candidates: Vec<&str> = reference
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| self.members.values().all(|m| m.supports(name)))
            .collect();
        let mut votes = vec![0usize; candidates.len()];
        for member in self.members.values() {
            if let Some(choice) = member.protocols.iter().find_map(|p| candidates.iter().position(|c| *c == p.name)) {
                votes[choice] += 1;
            }
        }
        // `max_by_key` keeps the last maximum; iterate in reverse so the leader's first wins ties.
        let winner = (0..candidates.len()).rev().max_by_key(|&index| votes[index])?;
        Some(candidates[winner].to_owned())
    }

    /// All members' metadata for the selected protocol, for the leader's JoinGroup response.
    pub(crate) fn joined_members(&self) -> Vec<JoinedMember> {
        let protocol_name = self.protocol_name.clone().unwrap_or_default();
        self.members
            .values()
            .map(|member| JoinedMember {
                member_id: member.member_id.clone(),
                group_instance_id: member.group_instance_id.clone(),
                metadata: member.metadata(&protocol_name),
            })
            .collect()
    }

    /// The JoinGroup response of the current generation for `member_id`; only the leader gets
    /// the member list.
    pub(crate) fn current_generation_join_response(&self, member_id: &str, leader: String) -> JoinResponse {
        let is_leader = self.leader_id.as_deref() == Some(member_id);
        JoinResponse {
            error_code: ErrorCode::NONE,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_owned(),
            members: if is_leader { self.joined_members() } else { Vec::new() },
            skip_assignment: false,
        }
    }

    /// The record to persist, with `assignments` (members missing from it get empty bytes).
    pub(crate) fn record(&self, assignments: &BTreeMap<String, Bytes>) -> GroupRecord {
        let protocol_name = self.protocol_name.clone().unwrap_or_default();
        GroupRecord {
            protocol_type: self.protocol_type.clone(),
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|member| MemberRecord {
                    member_id: member.member_id.clone(),
                    group_instance_id: member.group_instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    rebalance_timeout_ms: member.rebalance_timeout_ms,
                    session_timeout_ms: member.session_timeout_ms,
                    subscription: member.metadata(&protocol_name),
                    assignment: assignments.get(&member.member_id).cloned().unwrap_or_default(),
                })
                .collect(),
        }
    }

    pub(crate) fn current_assignments(&self) -> BTreeMap<String, Bytes> {
        self.members.values().map(|m| (m.member_id.clone(), m.assignment.clone().unwrap_or_default())).collect()
    }

    pub(crate) fn reset_session(&mut self, member_id: &str) {
        let now_ms = self.now_ms;
        if let Some(member) = self.members.get_mut(member_id) {
            member.session_deadline_ms = now_ms.saturating_add(i64::from(member.session_timeout_ms));
        }
    }
}
