//! Unit tests: one or more per transition and per error code. Each drives a [`Group`] through
//! events exactly as the broker would, with a hand-advanced clock, and reads the actions.

use bytes::Bytes;

use crate::*;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

/// A group plus a clock and a request-id counter.
struct Harness {
    group: Group,
    now_ms: i64,
    next_request: u64,
}

fn test_config() -> GroupConfig {
    GroupConfig { initial_rebalance_delay_ms: 0, ..GroupConfig::default() }
}

impl Harness {
    fn new() -> Harness {
        Harness::with_config(test_config())
    }

    fn with_config(config: GroupConfig) -> Harness {
        Harness { group: Group::new("g", config, 0), now_ms: 0, next_request: 0 }
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    fn handle(&mut self, event: Event) -> Vec<Action> {
        let actions = self.group.handle(self.now_ms, event);
        assert_eq!(self.group.check_invariants(), Ok(()));
        actions
    }

    fn advance(&mut self, ms: i64) -> Vec<Action> {
        self.now_ms += ms;
        self.handle(Event::Tick)
    }

    /// A JoinGroup (v3-style: no MEMBER_ID_REQUIRED) with a range protocol.
    fn join_request(&mut self, member_id: &str, suffix: &str) -> JoinGroup {
        JoinGroup {
            request_id: self.request_id(),
            member_id: member_id.into(),
            group_instance_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            member_id_suffix: suffix.into(),
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: REBALANCE_MS,
            protocol_type: "consumer".into(),
            protocols: protocols(&[("range", "subscription")]),
            require_known_member_id: false,
        }
    }

    fn join_as(&mut self, member_id: &str, suffix: &str) -> (RequestId, Vec<Action>) {
        let join = self.join_request(member_id, suffix);
        self.join(join)
    }

    fn join(&mut self, join: JoinGroup) -> (RequestId, Vec<Action>) {
        let request_id = join.request_id;
        (request_id, self.handle(Event::Join(join)))
    }

    fn sync(&mut self, member_id: &str, generation_id: i32, assignments: &[(&str, &str)]) -> (RequestId, Vec<Action>) {
        let request_id = self.request_id();
        let sync = SyncGroup {
            request_id,
            member_id: member_id.into(),
            group_instance_id: None,
            generation_id,
            protocol_type: Some("consumer".into()),
            protocol_name: None,
            assignments: assignments.iter().map(|(id, bytes)| (id.to_string(), bytes_of(bytes))).collect(),
        };
        (request_id, self.handle(Event::Sync(sync)))
    }

    fn heartbeat(&mut self, member_id: &str, generation_id: i32) -> ErrorCode {
        let request_id = self.request_id();
        let heartbeat = Heartbeat { request_id, member_id: member_id.into(), group_instance_id: None, generation_id };
        let actions = self.handle(Event::Heartbeat(heartbeat));
        match response(&actions, request_id) {
            Some(Response::Heartbeat { error_code }) => *error_code,
            other => panic!("no heartbeat response: {other:?}"),
        }
    }

    fn persist_completed(&mut self) -> Vec<Action> {
        let generation_id = self.group.generation_id();
        self.handle(Event::PersistCompleted { generation_id, error_code: ErrorCode::NONE })
    }

    fn leave(&mut self, members: Vec<MemberIdentity>) -> LeaveResponse {
        let request_id = self.request_id();
        let actions = self.handle(Event::Leave(LeaveGroup { request_id, members }));
        match response(&actions, request_id) {
            Some(Response::Leave(leave)) => leave.clone(),
            other => panic!("no leave response: {other:?}"),
        }
    }

    fn commit(&mut self, member_id: &str, group_instance_id: Option<&str>, generation_id: i32) -> ErrorCode {
        let request_id = self.request_id();
        let commit = OffsetCommit {
            request_id,
            member_id: member_id.into(),
            group_instance_id: group_instance_id.map(String::from),
            generation_id,
        };
        let actions = self.handle(Event::ValidateOffsetCommit(commit));
        match response(&actions, request_id) {
            Some(Response::OffsetCommit { error_code }) => *error_code,
            other => panic!("no commit response: {other:?}"),
        }
    }

    /// Forms a Stable group of `count` dynamic members the way clients do (each newcomer
    /// triggers a rebalance; the others rejoin), then syncs it. Returns the member ids, leader
    /// first.
    fn stable_group(&mut self, count: usize) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for index in 0..count {
            self.join_as("", &format!("m{index}"));
            for id in ids.clone() {
                self.join_as(&id, "");
            }
            ids.push(format!("client-m{index}"));
        }
        assert_eq!(self.group.state(), GroupState::CompletingRebalance);
        self.sync_everyone(&ids);
        assert_eq!(self.group.state(), GroupState::Stable);
        ids
    }

    /// Followers sync (and wait), the leader syncs with "a-<id>" for everyone, persistence
    /// completes.
    fn sync_everyone(&mut self, ids: &[String]) -> Vec<Action> {
        let generation_id = self.group.generation_id();
        let leader = self.group.leader_id().expect("leader").to_owned();
        for id in ids.iter().filter(|id| **id != leader) {
            let (_, actions) = self.sync(id, generation_id, &[]);
            assert!(actions.is_empty(), "follower sync must wait: {actions:?}");
        }
        let assignments: Vec<(String, String)> = ids.iter().map(|id| (id.clone(), format!("a-{id}"))).collect();
        let borrowed: Vec<(&str, &str)> = assignments.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        self.sync(&leader, generation_id, &borrowed);
        self.persist_completed()
    }
}

fn protocols(list: &[(&str, &str)]) -> Vec<Protocol> {
    list.iter().map(|(name, metadata)| Protocol { name: name.to_string(), metadata: bytes_of(metadata) }).collect()
}

fn bytes_of(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn response(actions: &[Action], request_id: RequestId) -> Option<&Response> {
    let mut found = actions.iter().filter_map(|action| match action {
        Action::Respond { request_id: id, response } if *id == request_id => Some(response),
        _ => None,
    });
    let first = found.next();
    assert!(found.next().is_none(), "two responses to {request_id:?}");
    first
}

fn join_response(actions: &[Action], request_id: RequestId) -> JoinResponse {
    match response(actions, request_id) {
        Some(Response::Join(join)) => join.clone(),
        other => panic!("no join response to {request_id:?}: {other:?} in {actions:?}"),
    }
}

fn sync_response(actions: &[Action], request_id: RequestId) -> SyncResponse {
    match response(actions, request_id) {
        Some(Response::Sync(sync)) => sync.clone(),
        other => panic!("no sync response to {request_id:?}: {other:?} in {actions:?}"),
    }
}

fn persisted(actions: &[Action]) -> Option<&GroupRecord> {
    actions.iter().find_map(|action| match action {
        Action::PersistGroup { record } => Some(record),
        _ => None,
    })
}

#[test]
fn new_group_is_empty_at_generation_zero() {
    // Goal: a fresh group starts Empty, generation 0, no leader, no timers.
    let group = Group::new("g", GroupConfig::default(), 0);
    assert_eq!(group.state(), GroupState::Empty);
    assert_eq!(group.generation_id(), 0);
    assert_eq!(group.leader_id(), None);
    assert_eq!(group.next_deadline_ms(), None);
    assert_eq!(group.check_invariants(), Ok(()));
}

#[test]
fn session_timeout_outside_bounds_is_invalid() {
    // Goal: INVALID_SESSION_TIMEOUT (26) below group.min and above group.max session timeout,
    // and nothing changes in the group.
    let mut h = Harness::new();
    for session_timeout_ms in [SESSION_TIMEOUT_MIN_MS_DEFAULT - 1, SESSION_TIMEOUT_MAX_MS_DEFAULT + 1] {
        let mut join = h.join_request("", "a");
        join.session_timeout_ms = session_timeout_ms;
        let (request_id, actions) = h.join(join);
        assert_eq!(join_response(&actions, request_id).error_code, ErrorCode::INVALID_SESSION_TIMEOUT);
    }
    assert_eq!(h.group.state(), GroupState::Empty);
}

#[test]
fn member_id_required_handshake() {
    // Goal: JoinGroup v4+ without a member id gets MEMBER_ID_REQUIRED (79) with a deterministic
    // id `<client_id>-<suffix>`; the group stays Empty until the member rejoins with that id.
    let mut h = Harness::new();
    let mut join = h.join_request("", "uuid-1");
    join.require_known_member_id = true;
    let (request_id, actions) = h.join(join);
    let first = join_response(&actions, request_id);
    assert_eq!(first.error_code, ErrorCode::MEMBER_ID_REQUIRED);
    assert_eq!(first.member_id, "client-uuid-1");
    assert_eq!(h.group.state(), GroupState::Empty);

    let mut rejoin = h.join_request("client-uuid-1", "ignored");
    rejoin.require_known_member_id = true;
    let (request_id, actions) = h.join(rejoin);
    let second = join_response(&actions, request_id);
    assert_eq!(second.error_code, ErrorCode::NONE);
    assert_eq!(second.member_id, "client-uuid-1");
    assert_eq!(second.leader, "client-uuid-1");
    assert_eq!(second.generation_id, 1);
}

#[test]
fn pending_member_expires_after_session_timeout() {
    // Goal: an id handed out with MEMBER_ID_REQUIRED but never used is forgotten after the
    // session timeout; rejoining with it afterwards gets UNKNOWN_MEMBER_ID (25).
    let mut h = Harness::new();
    let mut join = h.join_request("", "x");
    join.require_known_member_id = true;
    h.join(join);
    assert_eq!(h.group.next_deadline_ms(), Some(i64::from(SESSION_MS)));
    h.advance(i64::from(SESSION_MS));
    let (request_id, actions) = h.join_as("client-x", "");
    assert_eq!(join_response(&actions, request_id).error_code, ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn group_of_one_joins_after_initial_delay_not_session_timeout() {
    // Goal: with group.initial.rebalance.delay.ms = 3000 a lone member's JoinGroup is answered
    // at 3000 ms, long before any session or rebalance timeout.
    let mut h = Harness::with_config(GroupConfig::default());
    let (request_id, actions) = h.join_as("", "a");
    assert!(response(&actions, request_id).is_none());
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    assert!(h.advance(2_999).is_empty());
    let actions = h.advance(1);
    let joined = join_response(&actions, request_id);
    assert_eq!((joined.error_code, joined.generation_id), (ErrorCode::NONE, 1));
    assert_eq!(h.group.state(), GroupState::CompletingRebalance);
}

#[test]
fn initial_delay_zero_completes_join_at_once() {
    // Goal: with the delay at 0 (tests) the first member's JoinGroup is answered in the same call.
    let mut h = Harness::new();
    let (request_id, actions) = h.join_as("", "a");
    let joined = join_response(&actions, request_id);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(joined.members.len(), 1, "the leader gets the member list");
}

#[test]
fn initial_delay_is_extended_while_new_members_arrive() {
    // Goal: in a new group's first rebalance, a member arriving during a delay step earns
    // another step, so members starting together land in one generation.
    let config = GroupConfig { initial_rebalance_delay_ms: 3_000, ..GroupConfig::default() };
    let mut h = Harness::with_config(config);
    let (first, _) = h.join_as("", "a");
    h.advance(2_000);
    let (second, _) = h.join_as("", "b");
    assert!(h.advance(1_000).is_empty(), "the first step saw a newcomer, so a second step starts");
    let actions = h.advance(3_000);
    assert_eq!(join_response(&actions, first).generation_id, 1);
    assert_eq!(join_response(&actions, second).generation_id, 1);
    assert_eq!(h.group.member_count(), 2);
}

#[test]
fn followers_wait_for_leader_assignment_then_everyone_gets_theirs() {
    // Goal: SyncGroup from followers is parked until the leader's assignment is persisted; then
    // each member gets exactly the bytes the leader assigned it, and the group is Stable.
    let mut h = Harness::new();
    h.join_as("", "a");
    let (b, _) = h.join_as("", "b");
    let (a2, actions) = h.join_as("client-a", "");
    let a_joined = join_response(&actions, a2);
    let b_joined = join_response(&actions, b);
    assert_eq!(a_joined.generation_id, 2);
    assert_eq!(a_joined.leader, "client-a");
    assert_eq!(a_joined.members.len(), 2);
    assert!(b_joined.members.is_empty(), "followers do not get the member list");

    let (b_sync, actions) = h.sync("client-b", 2, &[]);
    assert!(actions.is_empty());
    let (a_sync, actions) = h.sync("client-a", 2, &[("client-a", "A"), ("client-b", "B")]);
    let record = persisted(&actions).expect("assignment is persisted before it is handed out");
    assert_eq!(record.generation_id, 2);
    assert_eq!(record.members.len(), 2);
    assert!(response(&actions, a_sync).is_none(), "nothing is handed out before it is durable");
    let actions = h.persist_completed();
    assert_eq!(sync_response(&actions, a_sync).assignment, bytes_of("A"));
    assert_eq!(sync_response(&actions, b_sync).assignment, bytes_of("B"));
    assert_eq!(h.group.state(), GroupState::Stable);
}

#[test]
fn persist_failure_propagates_error_and_rebalances() {
    // Goal: if the leader's assignment cannot be written, parked SyncGroups get the broker's
    // error and the group goes back to PreparingRebalance.
    let mut h = Harness::new();
    let (_, _) = h.join_as("", "a");
    let (sync, _) = h.sync("client-a", 1, &[("client-a", "A")]);
    let actions = h.handle(Event::PersistCompleted { generation_id: 1, error_code: ErrorCode::NOT_COORDINATOR });
    assert_eq!(sync_response(&actions, sync).error_code, ErrorCode::NOT_COORDINATOR);
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
}

#[test]
fn stale_persist_completion_is_ignored() {
    // Goal: a PersistCompleted for another generation does not make the group Stable.
    let mut h = Harness::new();
    h.join_as("", "a");
    h.sync("client-a", 1, &[("client-a", "A")]);
    let actions = h.handle(Event::PersistCompleted { generation_id: 0, error_code: ErrorCode::NONE });
    assert!(actions.is_empty());
    assert_eq!(h.group.state(), GroupState::CompletingRebalance);
}

#[test]
fn heartbeat_codes_per_state() {
    // Goal: Heartbeat returns NONE in Stable, REBALANCE_IN_PROGRESS (27) while preparing a
    // rebalance, ILLEGAL_GENERATION (22) for another generation, UNKNOWN_MEMBER_ID (25) for a
    // stranger.
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    let generation_id = h.group.generation_id();
    assert_eq!(h.heartbeat(&ids[1], generation_id), ErrorCode::NONE);
    assert_eq!(h.heartbeat(&ids[1], generation_id - 1), ErrorCode::ILLEGAL_GENERATION);
    assert_eq!(h.heartbeat("stranger", generation_id), ErrorCode::UNKNOWN_MEMBER_ID);
    h.join_as("", "c");
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat(&ids[1], generation_id), ErrorCode::REBALANCE_IN_PROGRESS);
}

#[test]
fn heartbeats_keep_a_member_alive_and_silence_expires_it() {
    // Goal: a member that heartbeats within its session stays; one that stops is removed at
    // session timeout and the group rebalances without it.
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    let generation_id = h.group.generation_id();
    h.now_ms += i64::from(SESSION_MS) - 1;
    assert_eq!(h.heartbeat(&ids[0], generation_id), ErrorCode::NONE);
    assert_eq!(h.heartbeat(&ids[1], generation_id), ErrorCode::NONE);
    h.now_ms += i64::from(SESSION_MS) - 1;
    assert_eq!(h.heartbeat(&ids[0], generation_id), ErrorCode::NONE);
    assert_eq!(h.group.member_count(), 2, "both sessions were renewed in time");
    h.advance(1);
    assert_eq!(h.group.member_count(), 1, "the silent member expired");
    assert!(h.group.member_ids().all(|id| id == ids[0]));
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
}

#[test]
fn join_phase_ends_at_rebalance_timeout_and_drops_members_that_did_not_rejoin() {
    // Goal: when a rebalance starts and a dynamic member never rejoins, the join phase ends at
    // the rebalance timeout, that member is removed, and the others get the next generation.
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    let (c, actions) = h.join_as("", "c");
    assert!(response(&actions, c).is_none());
    let (a, _) = h.join_as(&ids[0], "");
    // ids[1] keeps heartbeating (REBALANCE_IN_PROGRESS) but never rejoins.
    h.now_ms += i64::from(SESSION_MS) - 1;
    h.heartbeat(&ids[1], 2);
    let actions = h.advance(i64::from(REBALANCE_MS - SESSION_MS) + 1);
    assert_eq!(join_response(&actions, a).generation_id, 3);
    assert_eq!(join_response(&actions, c).generation_id, 3);
    assert!(!h.group.member_ids().any(|id| id == ids[1]));
    assert_eq!(h.heartbeat(&ids[1], 3), ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn join_phase_ends_early_when_every_member_rejoined() {
    // Goal: the join phase does not wait for the rebalance timeout once every member rejoined.
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    let (a, actions) = h.join_as(&ids[0], "");
    assert!(actions.is_empty(), "the leader rejoining starts a rebalance and waits");
    let (b, actions) = h.join_as(&ids[1], "");
    assert_eq!(join_response(&actions, a).generation_id, 3);
    assert_eq!(join_response(&actions, b).generation_id, 3);
}

#[test]
fn leader_rejoin_in_stable_forces_rebalance_but_unchanged_follower_does_not() {
    // Goal: a follower rejoining with the same metadata in Stable gets the current generation
    // back at once; the leader rejoining always starts a rebalance.
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    let (b, actions) = h.join_as(&ids[1], "");
    let again = join_response(&actions, b);
    assert_eq!((again.error_code, again.generation_id), (ErrorCode::NONE, 2));
    assert_eq!(h.group.state(), GroupState::Stable);
    h.join_as(&ids[0], "");
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
}

#[test]
fn changed_metadata_in_stable_triggers_rebalance() {
    // Goal: a follower rejoining with a different subscription starts a rebalance.
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    let mut join = h.join_request(&ids[1], "");
    join.protocols = protocols(&[("range", "new-subscription")]);
    h.join(join);
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
}

#[test]
fn protocol_is_chosen_by_votes_among_protocols_all_members_support() {
    // Goal: Kafka's selection: candidates are supported by all members; each member votes for
    // its most preferred candidate; the most votes win. Metadata for the winner is what the
    // leader receives, byte for byte (client-side assignors pass through).
    let mut h = Harness::with_config(GroupConfig { initial_rebalance_delay_ms: 100, ..test_config() });
    let member_protocols = [
        vec![("range", "r-a"), ("cooperative-sticky", "c-a"), ("roundrobin", "rr-a")],
        vec![("cooperative-sticky", "c-b"), ("roundrobin", "rr-b")],
        vec![("cooperative-sticky", "c-c"), ("range", "r-c"), ("roundrobin", "rr-c")],
    ];
    let mut requests = Vec::new();
    for (index, list) in member_protocols.iter().enumerate() {
        let mut join = h.join_request("", &format!("m{index}"));
        join.protocols = protocols(list);
        requests.push(h.join(join).0);
    }
    // Three arrivals in the first 100 ms step earn a second step with no arrivals.
    assert!(h.advance(100).is_empty());
    let actions = h.advance(100);
    let leader = join_response(&actions, requests[0]);
    assert_eq!(leader.protocol_name.as_deref(), Some("cooperative-sticky"));
    let metadata: Vec<Bytes> = leader.members.iter().map(|m| m.metadata.clone()).collect();
    assert_eq!(metadata, vec![bytes_of("c-a"), bytes_of("c-b"), bytes_of("c-c")]);
}

#[test]
fn inconsistent_protocol_type_or_no_common_protocol_is_refused() {
    // Goal: INCONSISTENT_GROUP_PROTOCOL (23) for another protocol type, for protocols no member
    // shares, and for an empty protocol list on an Empty group; the group is unchanged.
    let mut h = Harness::new();
    let mut empty = h.join_request("", "z");
    empty.protocols.clear();
    let (request_id, actions) = h.join(empty);
    assert_eq!(join_response(&actions, request_id).error_code, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);

    h.stable_group(1);
    let mut other_type = h.join_request("", "x");
    other_type.protocol_type = "connect".into();
    let (request_id, actions) = h.join(other_type);
    assert_eq!(join_response(&actions, request_id).error_code, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    let mut no_common = h.join_request("", "y");
    no_common.protocols = protocols(&[("roundrobin", "")]);
    let (request_id, actions) = h.join(no_common);
    assert_eq!(join_response(&actions, request_id).error_code, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    assert_eq!(h.group.state(), GroupState::Stable);
}

#[test]
fn sync_validation_codes() {
    // Goal: SyncGroup errors: UNKNOWN_MEMBER_ID (25), ILLEGAL_GENERATION (22), a wrong protocol
    // name INCONSISTENT_GROUP_PROTOCOL (23), and REBALANCE_IN_PROGRESS (27) while preparing.
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    let (request_id, actions) = h.sync("stranger", 2, &[]);
    assert_eq!(sync_response(&actions, request_id).error_code, ErrorCode::UNKNOWN_MEMBER_ID);
    let (request_id, actions) = h.sync(&ids[1], 1, &[]);
    assert_eq!(sync_response(&actions, request_id).error_code, ErrorCode::ILLEGAL_GENERATION);
    let request_id = h.request_id();
    let wrong_name = SyncGroup {
        request_id,
        member_id: ids[1].clone(),
        group_instance_id: None,
        generation_id: 2,
        protocol_type: None,
        protocol_name: Some("roundrobin".into()),
        assignments: Vec::new(),
    };
    let actions = h.handle(Event::Sync(wrong_name));
    assert_eq!(sync_response(&actions, request_id).error_code, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    let (request_id, actions) = h.sync(&ids[1], 2, &[]);
    assert_eq!(sync_response(&actions, request_id).assignment, bytes_of(&format!("a-{}", ids[1])));
    h.join_as("", "c");
    let (request_id, actions) = h.sync(&ids[1], 2, &[]);
    assert_eq!(sync_response(&actions, request_id).error_code, ErrorCode::REBALANCE_IN_PROGRESS);
}

#[test]
fn member_leaving_during_completing_rebalance_triggers_new_rebalance() {
    // Goal: if a member leaves while the others wait in SyncGroup, the waiting syncs get
    // REBALANCE_IN_PROGRESS and a new rebalance starts.
    let mut h = Harness::new();
    h.join_as("", "a");
    h.join_as("", "b");
    h.join_as("client-a", "");
    assert_eq!(h.group.state(), GroupState::CompletingRebalance);
    h.sync("client-b", 2, &[]);
    let leave = h.leave(vec![MemberIdentity { member_id: "client-a".into(), group_instance_id: None }]);
    assert_eq!(leave.members[0].error_code, ErrorCode::NONE);
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    assert_eq!(h.group.leader_id(), Some("client-b"));
}

#[test]
fn parked_sync_is_answered_when_a_peer_leaves() {
    // Goal: the follower parked in SyncGroup is answered REBALANCE_IN_PROGRESS, not forgotten,
    // when a peer leaves during CompletingRebalance.
    let mut h = Harness::new();
    h.join_as("", "a");
    h.join_as("", "b");
    h.join_as("client-a", "");
    let (b_sync, _) = h.sync("client-b", 2, &[]);
    let request_id = h.request_id();
    let members = vec![MemberIdentity { member_id: "client-a".into(), group_instance_id: None }];
    let actions = h.handle(Event::Leave(LeaveGroup { request_id, members }));
    assert_eq!(sync_response(&actions, b_sync).error_code, ErrorCode::REBALANCE_IN_PROGRESS);
}

#[test]
fn leave_group_batch_reports_per_member_codes() {
    // Goal: a v3+ LeaveGroup batch removes members by member id and (administratively) by
    // instance id, and reports UNKNOWN_MEMBER_ID for strangers, each in its own slot.
    let mut h = Harness::new();
    let mut static_join = h.join_request("", "s");
    static_join.group_instance_id = Some("instance-1".into());
    h.join(static_join);
    h.sync("client-s", 1, &[("client-s", "S")]);
    h.persist_completed();
    h.join_as("", "d");
    let leave = h.leave(vec![
        MemberIdentity { member_id: String::new(), group_instance_id: Some("instance-1".into()) },
        MemberIdentity { member_id: "client-d".into(), group_instance_id: None },
        MemberIdentity { member_id: "nobody".into(), group_instance_id: None },
    ]);
    let codes: Vec<ErrorCode> = leave.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![ErrorCode::NONE, ErrorCode::NONE, ErrorCode::UNKNOWN_MEMBER_ID]);
    assert_eq!(h.group.state(), GroupState::Empty);
}

#[test]
fn last_member_leaving_empties_the_group_and_persists_it() {
    // Goal: when the last member leaves a Stable group it becomes Empty with a new generation,
    // the emptied record is persisted and the broker is told (offsets start to age).
    let mut h = Harness::new();
    let ids = h.stable_group(1);
    let request_id = h.request_id();
    let members = vec![MemberIdentity { member_id: ids[0].clone(), group_instance_id: None }];
    let actions = h.handle(Event::Leave(LeaveGroup { request_id, members }));
    assert_eq!(h.group.state(), GroupState::Empty);
    assert_eq!(h.group.generation_id(), 2);
    let record = persisted(&actions).expect("emptied group is persisted");
    assert!(record.members.is_empty());
    assert!(actions.contains(&Action::GroupEmptied));
}

#[test]
fn members_that_never_sync_are_removed_at_rebalance_timeout() {
    // Goal: a member that got its JoinGroup response but never sends SyncGroup is removed when
    // the rebalance timeout passes, and the group rebalances without it.
    let mut h = Harness::new();
    h.join_as("", "a");
    h.join_as("", "b");
    h.join_as("client-a", "");
    h.sync("client-a", 2, &[("client-a", "A"), ("client-b", "B")]);
    h.persist_completed();
    assert_eq!(h.group.state(), GroupState::Stable);
    // Both keep their sessions alive, but client-b never sends SyncGroup.
    while h.now_ms + 5_000 < i64::from(REBALANCE_MS) {
        h.now_ms += 5_000;
        assert_eq!(h.heartbeat("client-a", 2), ErrorCode::NONE);
        assert_eq!(h.heartbeat("client-b", 2), ErrorCode::NONE);
    }
    h.advance(i64::from(REBALANCE_MS) - h.now_ms);
    assert!(!h.group.member_ids().any(|id| id == "client-b"));
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
}

#[test]
fn static_member_rejoining_with_new_id_in_stable_keeps_assignment_without_rebalance() {
    // Goal: a restarted static member (same group.instance.id, no member id, same protocol)
    // takes over its old slot under a new id with no rebalance; it is told the old leader id
    // (so it does not assign), gets its old assignment on SyncGroup, and the record is persisted.
    let mut h = Harness::new();
    let mut join = h.join_request("", "old");
    join.group_instance_id = Some("instance-1".into());
    h.join(join);
    h.sync("client-old", 1, &[("client-old", "P0")]);
    h.persist_completed();

    let mut restart = h.join_request("", "new");
    restart.group_instance_id = Some("instance-1".into());
    let (request_id, actions) = h.join(restart);
    let joined = join_response(&actions, request_id);
    assert_eq!(joined.member_id, "client-new");
    assert_eq!(joined.leader, "client-old", "the old leader id, so the newcomer acts as follower");
    assert_eq!(joined.generation_id, 1);
    assert!(persisted(&actions).is_some());
    assert_eq!(h.group.state(), GroupState::Stable);
    let (request_id, actions) = h.sync("client-new", 1, &[]);
    assert_eq!(sync_response(&actions, request_id).assignment, bytes_of("P0"));
}

#[test]
fn static_member_rejoining_with_changed_protocol_triggers_rebalance() {
    // Goal: when the replacing static member would change the group's selected protocol (here
    // its preference flips from range to roundrobin), the replacement happens with a rebalance.
    let mut h = Harness::new();
    let mut join = h.join_request("", "old");
    join.group_instance_id = Some("instance-1".into());
    join.protocols = protocols(&[("range", ""), ("roundrobin", "")]);
    h.join(join);
    h.sync("client-old", 1, &[("client-old", "P0")]);
    h.persist_completed();
    let mut restart = h.join_request("", "new");
    restart.group_instance_id = Some("instance-1".into());
    restart.protocols = protocols(&[("roundrobin", ""), ("range", "")]);
    let (request_id, actions) = h.join(restart);
    assert_eq!(join_response(&actions, request_id).protocol_name.as_deref(), Some("roundrobin"));
    assert_eq!(h.group.generation_id(), 2);
}

#[test]
fn duplicate_static_instance_is_fenced() {
    // Goal: of two processes with one group.instance.id, the one whose member id was replaced
    // gets FENCED_INSTANCE_ID (82) on heartbeat, sync, join, commit and leave.
    let mut h = Harness::new();
    let mut join = h.join_request("", "old");
    join.group_instance_id = Some("instance-1".into());
    h.join(join);
    h.sync("client-old", 1, &[("client-old", "P0")]);
    h.persist_completed();
    let mut second = h.join_request("", "new");
    second.group_instance_id = Some("instance-1".into());
    h.join(second);

    let instance = Some("instance-1".to_string());
    let request_id = h.request_id();
    let heartbeat =
        Heartbeat { request_id, member_id: "client-old".into(), group_instance_id: instance.clone(), generation_id: 1 };
    let actions = h.handle(Event::Heartbeat(heartbeat));
    assert_eq!(
        response(&actions, request_id),
        Some(&Response::Heartbeat { error_code: ErrorCode::FENCED_INSTANCE_ID })
    );
    let mut rejoin = h.join_request("client-old", "");
    rejoin.group_instance_id = instance.clone();
    let (request_id, actions) = h.join(rejoin);
    assert_eq!(join_response(&actions, request_id).error_code, ErrorCode::FENCED_INSTANCE_ID);
    assert_eq!(h.commit("client-old", Some("instance-1"), 1), ErrorCode::FENCED_INSTANCE_ID);
    let leave = h.leave(vec![MemberIdentity { member_id: "client-old".into(), group_instance_id: instance }]);
    assert_eq!(leave.members[0].error_code, ErrorCode::FENCED_INSTANCE_ID);
    assert_eq!(h.group.member_count(), 1);
}

#[test]
fn static_replacement_fences_the_old_ids_parked_join() {
    // Goal: when a static member is replaced while its old id waits in JoinGroup, that parked
    // request is answered FENCED_INSTANCE_ID and the new id waits in its place.
    let mut h = Harness::new();
    let ids = h.stable_group(1);
    let mut join = h.join_request("", "s1");
    join.group_instance_id = Some("instance-1".into());
    let (parked, _) = h.join(join);
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    let mut second = h.join_request("", "s2");
    second.group_instance_id = Some("instance-1".into());
    let (replacement, actions) = h.join(second);
    assert_eq!(join_response(&actions, parked).error_code, ErrorCode::FENCED_INSTANCE_ID);
    let (_, actions) = h.join_as(&ids[0], "");
    assert_eq!(join_response(&actions, replacement).member_id, "client-s2");
}

#[test]
fn static_member_that_does_not_rejoin_is_kept_until_its_session_ends() {
    // Goal: unlike dynamic members, a static member absent at the end of the join phase stays
    // in the group (its session timeout decides), so a quick restart causes no reshuffle.
    let mut h = Harness::new();
    let mut join = h.join_request("", "s");
    join.group_instance_id = Some("instance-1".into());
    join.rebalance_timeout_ms = 1_000;
    h.join(join);
    h.sync("client-s", 1, &[("client-s", "S")]);
    h.persist_completed();
    let mut newcomer = h.join_request("", "d");
    newcomer.rebalance_timeout_ms = 1_000;
    let (d, _) = h.join(newcomer);
    let actions = h.advance(1_000);
    assert_eq!(join_response(&actions, d).generation_id, 2);
    assert_eq!(h.group.member_count(), 2, "the static member stays");
}

#[test]
fn group_max_size_reached() {
    // Goal: beyond group_size_max a newcomer gets GROUP_MAX_SIZE_REACHED (81); members already
    // in the group are unaffected.
    let mut h = Harness::with_config(GroupConfig { group_size_max: 2, ..test_config() });
    h.stable_group(2);
    let (request_id, actions) = h.join_as("", "third");
    assert_eq!(join_response(&actions, request_id).error_code, ErrorCode::GROUP_MAX_SIZE_REACHED);
    assert_eq!(h.group.member_count(), 2);
    assert_eq!(h.group.state(), GroupState::Stable);
}

#[test]
fn offset_commit_validation() {
    // Goal: the group side of OffsetCommit: simple commits only while Empty; members must give
    // their id and generation (25, 22); REBALANCE_IN_PROGRESS (27) while completing; Stable OK;
    // a group the broker does not have accepts only simple commits.
    let mut h = Harness::new();
    assert_eq!(h.commit("", None, -1), ErrorCode::NONE);
    assert_eq!(h.commit("ghost", None, 0), ErrorCode::UNKNOWN_MEMBER_ID);
    h.join_as("", "a");
    assert_eq!(h.commit("client-a", None, 1), ErrorCode::REBALANCE_IN_PROGRESS);
    h.sync("client-a", 1, &[("client-a", "A")]);
    h.persist_completed();
    assert_eq!(h.commit("client-a", None, 1), ErrorCode::NONE);
    assert_eq!(h.commit("client-a", None, 0), ErrorCode::ILLEGAL_GENERATION);
    assert_eq!(h.commit("", None, -1), ErrorCode::UNKNOWN_MEMBER_ID, "simple commits refused while members exist");
    assert_eq!(validate_offset_commit_without_group(-1), ErrorCode::NONE);
    assert_eq!(validate_offset_commit_without_group(3), ErrorCode::ILLEGAL_GENERATION);
}

#[test]
fn delete_group_only_when_empty() {
    // Goal: DeleteGroups gets NON_EMPTY_GROUP (68) with members, makes an Empty group Dead, and
    // GROUP_ID_NOT_FOUND (69) after that; a Dead group answers joins COORDINATOR_NOT_AVAILABLE.
    let mut h = Harness::new();
    let ids = h.stable_group(1);
    let request_id = h.request_id();
    let actions = h.handle(Event::Delete { request_id });
    assert_eq!(response(&actions, request_id), Some(&Response::Delete { error_code: ErrorCode::NON_EMPTY_GROUP }));
    h.leave(vec![MemberIdentity { member_id: ids[0].clone(), group_instance_id: None }]);
    let request_id = h.request_id();
    let actions = h.handle(Event::Delete { request_id });
    assert_eq!(response(&actions, request_id), Some(&Response::Delete { error_code: ErrorCode::NONE }));
    assert!(actions.contains(&Action::GroupDead));
    let request_id = h.request_id();
    let actions = h.handle(Event::Delete { request_id });
    assert_eq!(response(&actions, request_id), Some(&Response::Delete { error_code: ErrorCode::GROUP_ID_NOT_FOUND }));
    let (request_id, actions) = h.join_as("", "late");
    assert_eq!(join_response(&actions, request_id).error_code, ErrorCode::COORDINATOR_NOT_AVAILABLE);
}

#[test]
fn unload_answers_parked_requests_not_coordinator() {
    // Goal: when the broker stops coordinating the group, parked JoinGroups are answered
    // NOT_COORDINATOR (16) and the group is Dead.
    let mut h = Harness::new();
    h.stable_group(1);
    let (parked, _) = h.join_as("", "b");
    let actions = h.handle(Event::Unload);
    assert_eq!(join_response(&actions, parked).error_code, ErrorCode::NOT_COORDINATOR);
    assert_eq!(h.group.state(), GroupState::Dead);
    assert!(actions.contains(&Action::GroupDead));
}

#[test]
fn load_restores_a_stable_group_from_its_record() {
    // Goal: a group rebuilt from its persisted record is Stable at the same generation, with
    // the same leader, members and assignments, and its members can heartbeat and sync.
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    let record = h.group.record(&h.group.current_assignments());
    let mut loaded = Group::load("g", test_config(), 100, &record).expect("valid record");
    assert_eq!(loaded.state(), GroupState::Stable);
    assert_eq!(loaded.generation_id(), 2);
    assert_eq!(loaded.leader_id(), Some(ids[0].as_str()));
    let request_id = RequestId(1);
    let sync = SyncGroup {
        request_id,
        member_id: ids[1].clone(),
        group_instance_id: None,
        generation_id: 2,
        protocol_type: None,
        protocol_name: Some("range".into()),
        assignments: Vec::new(),
    };
    let actions = loaded.handle(100, Event::Sync(sync));
    assert_eq!(sync_response(&actions, request_id).assignment, bytes_of(&format!("a-{}", ids[1])));
    let empty = GroupRecord { members: Vec::new(), ..record.clone() };
    assert_eq!(Group::load("g", test_config(), 0, &empty).map(|g| g.state()), Ok(GroupState::Empty));
    let broken = GroupRecord { protocol_name: None, ..record };
    assert_eq!(Group::load("g", test_config(), 0, &broken).err(), Some(LoadError::MembersWithoutProtocol));
}

#[test]
fn superseded_join_is_answered() {
    // Goal: a member that retries JoinGroup while its first one is parked gets an answer to
    // both: the old one REBALANCE_IN_PROGRESS, the new one at the end of the join phase.
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    let (first, _) = h.join_as(&ids[0], "");
    let (second, actions) = h.join_as(&ids[0], "");
    assert_eq!(join_response(&actions, first).error_code, ErrorCode::REBALANCE_IN_PROGRESS);
    let (_, actions) = h.join_as(&ids[1], "");
    assert_eq!(join_response(&actions, second).error_code, ErrorCode::NONE);
}

#[test]
fn colliding_member_id_suffix_gets_a_counter() {
    // Goal: member ids are deterministic from client id and suffix; a repeated suffix does not
    // create two members with one id.
    let mut h = Harness::with_config(GroupConfig { initial_rebalance_delay_ms: 100, ..test_config() });
    let (a, _) = h.join_as("", "same");
    let (b, _) = h.join_as("", "same");
    h.advance(100);
    let actions = h.advance(100);
    assert_eq!(join_response(&actions, a).member_id, "client-same");
    assert_eq!(join_response(&actions, b).member_id, "client-same-1");
}

#[test]
fn describe_reports_metadata_only_when_stable() {
    // Goal: DescribeGroups data: state name, protocol and per-member assignment in Stable.
    let mut h = Harness::new();
    let ids = h.stable_group(1);
    let description = h.group.describe();
    assert_eq!(description.state.as_str(), "Stable");
    assert_eq!(description.protocol_name, "range");
    assert_eq!(description.members[0].assignment, bytes_of(&format!("a-{}", ids[0])));
}

#[test]
fn late_tick_fires_timers_at_their_own_deadlines() {
    // Goal: a Tick that comes late has the effect of timely ones: the join phase that ended at
    // its deadline (6000) arms the sync deadline from 6000, not from the late tick (6500).
    let mut h = Harness::new();
    let mut join = h.join_request("", "a");
    join.rebalance_timeout_ms = 1_000;
    h.join(join);
    h.sync("client-a", 1, &[("client-a", "A")]);
    h.persist_completed();
    h.now_ms = 5_000;
    let mut newcomer = h.join_request("", "b");
    newcomer.rebalance_timeout_ms = 1_000;
    let (b, _) = h.join(newcomer);
    assert_eq!(h.group.next_deadline_ms(), Some(6_000));
    let actions = h.advance(1_500);
    assert_eq!(join_response(&actions, b).generation_id, 2);
    assert!(!h.group.member_ids().any(|id| id == "client-a"), "client-a did not rejoin");
    assert_eq!(h.group.next_deadline_ms(), Some(7_000));
}

#[test]
fn new_member_that_waits_too_long_for_its_join_is_dropped() {
    // Goal: a member that joined during a rebalance but whose JoinGroup stays parked beyond
    // new_member_join_timeout_ms (the join phase is held open by a static member that is slow to
    // rejoin) is removed and its parked request answered UNKNOWN_MEMBER_ID.
    let config = GroupConfig { new_member_join_timeout_ms: 20_000, ..test_config() };
    let mut h = Harness::with_config(config);
    let mut join = h.join_request("", "s");
    join.group_instance_id = Some("instance-1".into());
    join.session_timeout_ms = 60_000;
    join.rebalance_timeout_ms = 120_000;
    h.join(join);
    h.sync("client-s", 1, &[("client-s", "S")]);
    h.persist_completed();
    let (newcomer, _) = h.join_as("", "n");
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    let actions = h.advance(20_000);
    assert_eq!(join_response(&actions, newcomer).error_code, ErrorCode::UNKNOWN_MEMBER_ID);
    assert_eq!(h.group.member_count(), 1);
}
