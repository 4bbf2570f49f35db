//! JoinGroup: admission (session bounds, group size), member ids and the MEMBER_ID_REQUIRED
//! handshake, static membership (replacement and fencing), and the rules for a known member
//! rejoining in each state.

use crate::group::{Group, GroupState, Member};
use crate::types::{ErrorCode, JoinGroup, JoinResponse, PersistId, Protocol, RequestId, Response, SyncResponse};

/// A static member replaced in Stable without a rebalance, waiting for the record that names
/// its new member id; what is needed to answer its JoinGroup, or to undo the replacement.
#[derive(Debug, Clone)]
pub(crate) struct StaticReplacement {
    pub(crate) persist_id: PersistId,
    pub(crate) request_id: RequestId,
    pub(crate) group_instance_id: String,
    pub(crate) old_member_id: String,
    pub(crate) new_member_id: String,
    pub(crate) previous_protocols: Vec<Protocol>,
    pub(crate) previous_rebalance_timeout_ms: i32,
    pub(crate) previous_session_timeout_ms: i32,
    pub(crate) previous_leader: String,
    pub(crate) supports_skip_assignment: bool,
}

impl Group {
    pub(crate) fn on_join(&mut self, mut join: JoinGroup) {
        dedup_protocols(&mut join.protocols);
        let session_bounds = self.config.session_timeout_min_ms..=self.config.session_timeout_max_ms;
        if !session_bounds.contains(&join.session_timeout_ms) {
            let response = JoinResponse::error(&join.member_id, ErrorCode::INVALID_SESSION_TIMEOUT);
            return self.respond(join.request_id, Response::Join(response));
        }
        if self.state == GroupState::Dead {
            let response = JoinResponse::error(&join.member_id, ErrorCode::COORDINATOR_NOT_AVAILABLE);
            return self.respond(join.request_id, Response::Join(response));
        }
        if !self.accept_joining_member(&join) {
            // As Kafka: a member refused for size is dropped, so that lowering the limit sheds
            // the members that rejoin last.
            self.remove_member(&join.member_id);
            let response = JoinResponse::error("", ErrorCode::GROUP_MAX_SIZE_REACHED);
            self.respond(join.request_id, Response::Join(response));
        } else if join.member_id.is_empty() {
            self.join_new_member(join);
        } else {
            self.join_known_member(join);
        }
        self.maybe_complete_join();
    }

    /// Kafka's `acceptJoiningMember`: during PreparingRebalance, members already waiting are
    /// accepted and others only while fewer than the maximum wait; otherwise members are
    /// accepted and newcomers only below the maximum. A static member coming back under a new
    /// member id replaces itself, so it does not count as a newcomer (Kafka counts it; a full
    /// group would then refuse a restarted static member).
    fn accept_joining_member(&self, join: &JoinGroup) -> bool {
        let size_max = self.config.group_size_max;
        let returning_static = join.member_id.is_empty()
            && join.group_instance_id.as_ref().is_some_and(|instance_id| self.static_members.contains_key(instance_id));
        let member = self.members.get(&join.member_id);
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                let awaiting = self.members.values().filter(|m| m.awaiting_join.is_some()).count();
                returning_static || member.is_some_and(|m| m.awaiting_join.is_some()) || awaiting < size_max
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                returning_static || member.is_some() || self.members.len() < size_max
            }
        }
    }

    /// A JoinGroup without a member id.
    fn join_new_member(&mut self, join: JoinGroup) {
        if !self.supports_protocols(&join.protocol_type, &join.protocols) {
            let response = JoinResponse::error("", ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
            return self.respond(join.request_id, Response::Join(response));
        }
        let member_id = self.new_member_id(&join.client_id, &join.member_id_suffix);
        if let Some(instance_id) = &join.group_instance_id {
            match self.static_members.get(instance_id).cloned() {
                Some(old_member_id) => self.replace_static_member(&old_member_id, member_id, join),
                None => self.add_member_and_rebalance(member_id, join),
            }
        } else if join.require_known_member_id {
            // The handshake: hand out the id and admit the member when it comes back with it, so
            // a client that times out and retries does not leave a ghost member behind.
            if self.pending_members.len() >= self.config.group_size_max {
                let response = JoinResponse::error("", ErrorCode::GROUP_MAX_SIZE_REACHED);
                return self.respond(join.request_id, Response::Join(response));
            }
            let deadline_ms = self.now_ms.saturating_add(i64::from(join.session_timeout_ms));
            self.pending_members.insert(member_id.clone(), deadline_ms);
            let response = JoinResponse::error(&member_id, ErrorCode::MEMBER_ID_REQUIRED);
            self.respond(join.request_id, Response::Join(response));
        } else {
            self.add_member_and_rebalance(member_id, join);
        }
    }

    /// A JoinGroup with a member id: a pending member completing the handshake, or a member
    /// rejoining.
    fn join_known_member(&mut self, join: JoinGroup) {
        let member_id = join.member_id.clone();
        let instance_id = join.group_instance_id.as_deref();
        let error = if !self.supports_protocols(&join.protocol_type, &join.protocols) {
            Some(ErrorCode::INCONSISTENT_GROUP_PROTOCOL)
        } else if self.pending_members.contains_key(&member_id) {
            if instance_id.is_none() {
                return self.add_member_and_rebalance(member_id, join);
            }
            // Pending ids are only given to dynamic members; a static one must start over.
            self.pending_members.remove(&member_id);
            Some(ErrorCode::UNKNOWN_MEMBER_ID)
        } else if self.is_static_member_fenced(instance_id, &member_id) {
            Some(ErrorCode::FENCED_INSTANCE_ID)
        } else if !self.members.contains_key(&member_id)
            || instance_id.is_some_and(|id| !self.static_members.contains_key(id))
        {
            Some(ErrorCode::UNKNOWN_MEMBER_ID)
        } else {
            None
        };
        if let Some(error_code) = error {
            return self.respond(join.request_id, Response::Join(JoinResponse::error(&member_id, error_code)));
        }
        let is_leader = self.leader_id.as_deref() == Some(member_id.as_str());
        let unchanged = self.members.get(&member_id).is_some_and(|m| m.protocols == join.protocols);
        match self.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(join),
            // Same metadata: the member most likely missed its JoinGroup response; repeat it.
            GroupState::CompletingRebalance if unchanged => self.respond_current_generation(&join),
            // The leader rejoining forces a rebalance: that is how a consumer leader asks for one
            // when topic metadata changed without any member's subscription changing.
            GroupState::Stable if unchanged && !is_leader => self.respond_current_generation(&join),
            GroupState::CompletingRebalance | GroupState::Stable => self.update_member_and_rebalance(join),
            GroupState::Empty | GroupState::Dead => {
                let response = JoinResponse::error(&member_id, ErrorCode::UNKNOWN_MEMBER_ID);
                self.respond(join.request_id, Response::Join(response));
            }
        }
    }

    fn respond_current_generation(&mut self, join: &JoinGroup) {
        let leader = self.leader_id.clone().unwrap_or_default();
        let response = self.current_generation_join_response(&join.member_id, leader);
        self.respond(join.request_id, Response::Join(response));
    }

    /// A known member rejoins with (possibly) new protocols; its JoinGroup waits for the end of
    /// the join phase.
    fn update_member_and_rebalance(&mut self, join: JoinGroup) {
        self.update_member(&join.member_id.clone(), join);
        self.maybe_prepare_rebalance();
    }

    /// Takes the new protocols and timeouts and parks the JoinGroup. A JoinGroup already parked
    /// for this member (the client gave up on it and retried) is answered REBALANCE_IN_PROGRESS.
    fn update_member(&mut self, member_id: &str, join: JoinGroup) {
        let Some(member) = self.members.get_mut(member_id) else { return };
        member.protocols = join.protocols;
        member.session_timeout_ms = join.session_timeout_ms;
        member.rebalance_timeout_ms = join.rebalance_timeout_ms;
        member.client_id = join.client_id;
        member.client_host = join.client_host;
        let superseded = member.awaiting_join.replace(join.request_id);
        if let Some(request_id) = superseded {
            let response = JoinResponse::error(member_id, ErrorCode::REBALANCE_IN_PROGRESS);
            self.respond(request_id, Response::Join(response));
        }
    }

    /// Admits a new member (its JoinGroup waits for the join phase to end) and starts a
    /// rebalance if none is being prepared.
    fn add_member_and_rebalance(&mut self, member_id: String, join: JoinGroup) {
        if self.state == GroupState::PreparingRebalance && self.generation_id == 0 {
            if let Some(phase) = self.join_phase.as_mut() {
                phase.new_member_added = true;
            }
        }
        if self.members.is_empty() {
            self.protocol_type = Some(join.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member_id.clone());
        }
        if let Some(instance_id) = &join.group_instance_id {
            self.static_members.insert(instance_id.clone(), member_id.clone());
        }
        self.pending_members.remove(&member_id);
        let joined_sequence = self.take_joined_sequence();
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: join.group_instance_id,
            client_id: join.client_id,
            client_host: join.client_host,
            session_timeout_ms: join.session_timeout_ms,
            rebalance_timeout_ms: join.rebalance_timeout_ms,
            protocols: join.protocols,
            assignment: None,
            awaiting_join: Some(join.request_id),
            awaiting_sync: None,
            is_new: true,
            session_deadline_ms: self.now_ms.saturating_add(i64::from(self.config.new_member_join_timeout_ms)),
            joined_sequence,
        };
        self.members.insert(member_id, member);
        self.maybe_prepare_rebalance();
    }

    /// A static member came back with no member id (a restarted process, or a second process
    /// with the same group.instance.id): it takes over the old member's place under a new id,
    /// and whatever the old id had parked is answered FENCED_INSTANCE_ID. In Stable, when the
    /// group would select the same protocol, there is no rebalance: the new id keeps the old
    /// assignment and its JoinGroup is answered once the record naming it is durable (Kafka's
    /// `updateStaticMemberAndRebalance`).
    fn replace_static_member(&mut self, old_member_id: &str, new_member_id: String, join: JoinGroup) {
        let Some(instance_id) = join.group_instance_id.clone() else { return };
        // A replacement still waiting for its record is itself replaced: fence its JoinGroup.
        self.abandon_static_replacement(old_member_id, ErrorCode::FENCED_INSTANCE_ID);
        let Some(mut member) = self.members.remove(old_member_id) else {
            return self.add_member_and_rebalance(new_member_id, join);
        };
        if let Some(request_id) = member.awaiting_join.take() {
            let response = JoinResponse::error(old_member_id, ErrorCode::FENCED_INSTANCE_ID);
            self.respond(request_id, Response::Join(response));
        }
        if let Some(request_id) = member.awaiting_sync.take() {
            self.respond(request_id, Response::Sync(SyncResponse::error(ErrorCode::FENCED_INSTANCE_ID)));
        }
        let previous = (member.protocols.clone(), member.rebalance_timeout_ms, member.session_timeout_ms);
        let previous_leader = self.leader_id.clone().unwrap_or_default();
        member.member_id = new_member_id.clone();
        self.members.insert(new_member_id.clone(), member);
        self.rename_member_references(old_member_id, &new_member_id, &instance_id);
        let request_id = join.request_id;
        let supports_skip_assignment = join.supports_skip_assignment;
        self.update_member(&new_member_id, join);
        self.reset_session(&new_member_id);
        match self.state {
            GroupState::Stable if self.select_protocol() == self.protocol_name => {
                if let Some(member) = self.members.get_mut(&new_member_id) {
                    member.awaiting_join = None;
                }
                let record = self.record(&self.current_assignments());
                let persist_id = self.persist(record);
                self.static_replacements_in_flight.push(StaticReplacement {
                    persist_id,
                    request_id,
                    group_instance_id: instance_id,
                    old_member_id: old_member_id.to_owned(),
                    new_member_id,
                    previous_protocols: previous.0,
                    previous_rebalance_timeout_ms: previous.1,
                    previous_session_timeout_ms: previous.2,
                    previous_leader,
                    supports_skip_assignment,
                });
            }
            // The leader may already be assigning to the old member id: start over.
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(),
            GroupState::PreparingRebalance | GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Points the leader, the instance id and the pending-sync set at a static member's new id.
    fn rename_member_references(&mut self, from_member_id: &str, to_member_id: &str, instance_id: &str) {
        if self.leader_id.as_deref() == Some(from_member_id) {
            self.leader_id = Some(to_member_id.to_owned());
        }
        self.static_members.insert(instance_id.to_owned(), to_member_id.to_owned());
        if self.pending_sync_members.remove(from_member_id) {
            self.pending_sync_members.insert(to_member_id.to_owned());
        }
    }

    /// The record naming a replaced static member's new id is durable (answer its JoinGroup), or
    /// could not be written (undo the replacement, as Kafka does, and answer the error).
    pub(crate) fn complete_static_replacement(&mut self, replacement: StaticReplacement, error_code: ErrorCode) {
        if error_code != ErrorCode::NONE {
            let old_id_free = !self.members.contains_key(&replacement.old_member_id);
            if let Some(mut member) = old_id_free.then(|| self.members.remove(&replacement.new_member_id)).flatten() {
                member.member_id = replacement.old_member_id.clone();
                member.protocols = replacement.previous_protocols;
                member.rebalance_timeout_ms = replacement.previous_rebalance_timeout_ms;
                member.session_timeout_ms = replacement.previous_session_timeout_ms;
                self.members.insert(replacement.old_member_id.clone(), member);
                let (new_id, old_id) = (&replacement.new_member_id, &replacement.old_member_id);
                self.rename_member_references(new_id, old_id, &replacement.group_instance_id);
                self.reset_session(old_id);
            }
            let response = JoinResponse {
                error_code,
                leader: replacement.previous_leader,
                ..self.current_generation_join_response("", String::new())
            };
            return self.respond(replacement.request_id, Response::Join(response));
        }
        let is_leader = self.leader_id.as_deref() == Some(replacement.new_member_id.as_str());
        let response = if is_leader && replacement.supports_skip_assignment {
            // JoinGroup v9+: tell the restarted static leader it leads, but not to assign: the
            // group is Stable and would not hand a new assignment out.
            let leader = replacement.new_member_id.clone();
            JoinResponse { skip_assignment: true, ..self.current_generation_join_response(&leader, leader.clone()) }
        } else {
            // Older clients are told the previous leader id, so a restarted leader acts as a
            // follower and does not run an assignment nobody would receive.
            let mut response =
                self.current_generation_join_response(&replacement.new_member_id, replacement.previous_leader);
            response.members.clear();
            response
        };
        self.respond(replacement.request_id, Response::Join(response));
    }

    /// The group leaves Stable while replacements wait for their records: their JoinGroups join
    /// the rebalance like any other parked JoinGroup (as in Kafka, where the callback is already
    /// on the member). A member that has meanwhile parked a newer JoinGroup keeps that one.
    pub(crate) fn park_static_replacements_for_join(&mut self) {
        for replacement in std::mem::take(&mut self.static_replacements_in_flight) {
            let member = self.members.get_mut(&replacement.new_member_id);
            match member {
                Some(member) if member.awaiting_join.is_none() => member.awaiting_join = Some(replacement.request_id),
                _ => {
                    let response = JoinResponse::error(&replacement.new_member_id, ErrorCode::REBALANCE_IN_PROGRESS);
                    self.respond(replacement.request_id, Response::Join(response));
                }
            }
        }
    }

    /// The member `member_id` goes away while its replacement waits for its record: answer its
    /// JoinGroup with `error_code` and forget the replacement.
    pub(crate) fn abandon_static_replacement(&mut self, member_id: &str, error_code: ErrorCode) {
        let position = self.static_replacements_in_flight.iter().position(|r| r.new_member_id == member_id);
        if let Some(replacement) = position.map(|index| self.static_replacements_in_flight.remove(index)) {
            let response = JoinResponse::error(member_id, error_code);
            self.respond(replacement.request_id, Response::Join(response));
        }
    }

    /// `<client_id>-<suffix>`, with `-<n>` appended in the unlikely case it is taken.
    fn new_member_id(&self, client_id: &str, suffix: &str) -> String {
        let base = format!("{client_id}-{suffix}");
        let taken = |id: &str| self.members.contains_key(id) || self.pending_members.contains_key(id);
        if !taken(&base) {
            return base;
        }
        (1u64..).map(|n| format!("{base}-{n}")).find(|id| !taken(id)).unwrap_or(base)
    }
}

/// Keeps the first occurrence of each protocol name: Kafka counts support per list entry, and a
/// repeated name would count a member twice.
fn dedup_protocols(protocols: &mut Vec<Protocol>) {
    let mut seen = std::collections::BTreeSet::new();
    protocols.retain(|protocol| seen.insert(protocol.name.clone()));
}
