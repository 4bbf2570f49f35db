//! JoinGroup: admission, member ids, the initial delay, the join phase, protocol selection.

use super::*;

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

#[test]
fn members_beyond_a_lowered_maximum_are_shed_as_they_rejoin() {
    // Goal: Kafka's rule for a group above group_size_max (the limit was lowered, or the group
    // was loaded from a record): during the rebalance, members rejoin until the maximum is
    // reached; the next one to rejoin gets GROUP_MAX_SIZE_REACHED and is removed.
    let mut h = Harness::new();
    let ids = h.stable_group(3);
    let record = h.group.record(&h.group.current_assignments());
    let config = GroupConfig { group_size_max: 2, ..test_config() };
    h.group = Group::load("g", config, h.now_ms, &record).expect("valid record");
    let (first, _) = h.join_as(&ids[0], "");
    let (second, _) = h.join_as(&ids[1], "");
    let (third, actions) = h.join_as(&ids[2], "");
    assert_eq!(join_response(&actions, third).error_code, ErrorCode::GROUP_MAX_SIZE_REACHED);
    assert_eq!(join_response(&actions, first).generation_id, 4, "the two that fit form the next generation");
    assert_eq!(join_response(&actions, second).generation_id, 4);
    assert_eq!(h.group.member_count(), 2);
}
