//! Static membership: replacement under a new member id, fencing, absence during a rebalance.

use super::*;

/// A Stable group of one static member, `client-old` with instance `instance-1`, assigned "P0".
fn stable_static_group() -> Harness {
    let mut h = Harness::new();
    let mut join = h.join_request("", "old");
    join.group_instance_id = Some("instance-1".into());
    h.join(join);
    h.sync("client-old", 1, &[("client-old", "P0")]);
    h.persist_completed();
    h
}

#[test]
fn static_member_rejoining_with_new_id_in_stable_keeps_assignment_without_rebalance() {
    // Goal: a restarted static member (same group.instance.id, no member id, same protocol)
    // takes over its old slot under a new id with no rebalance; once the record naming the new
    // id is durable it is told the old leader id (so it does not assign), and it gets its old
    // assignment on SyncGroup.
    let mut h = stable_static_group();
    let mut restart = h.join_request("", "new");
    restart.group_instance_id = Some("instance-1".into());
    let (request_id, actions) = h.join(restart);
    let record = persisted(&actions).expect("the new member id is persisted");
    assert_eq!(record.members[0].member_id, "client-new");
    assert!(response(&actions, request_id).is_none(), "answered only once durable");
    let actions = h.persist_completed();
    let joined = join_response(&actions, request_id);
    assert_eq!(joined.member_id, "client-new");
    assert_eq!(joined.leader, "client-old", "the old leader id, so the newcomer acts as follower");
    assert_eq!(joined.generation_id, 1);
    assert!(!joined.skip_assignment);
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
fn join_phase_restarts_when_only_absent_static_members_remain() {
    // Goal: if the join phase times out and nobody rejoined (only a static member, absent, is
    // left), the group keeps waiting another rebalance timeout instead of starting a generation
    // with no one to lead it; the static member's rejoin then completes it.
    let mut h = Harness::new();
    let mut join = h.join_request("", "s");
    join.group_instance_id = Some("instance-1".into());
    join.rebalance_timeout_ms = 1_000;
    h.join(join);
    h.sync("client-s", 1, &[("client-s", "S")]);
    h.persist_completed();
    let mut newcomer = h.join_request("", "d");
    newcomer.rebalance_timeout_ms = 1_000;
    h.join(newcomer);
    h.leave(vec![MemberIdentity { member_id: "client-d".into(), group_instance_id: None }]);
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    h.advance(1_000);
    assert_eq!(h.group.state(), GroupState::PreparingRebalance, "nobody rejoined: wait again");
    assert_eq!(h.group.next_deadline_ms(), Some(2_000), "another rebalance timeout from 1000");
    assert_eq!(h.group.generation_id(), 1);
    assert_eq!(h.heartbeat("client-s", 1), ErrorCode::REBALANCE_IN_PROGRESS);
    let mut rejoin = h.join_request("client-s", "");
    rejoin.group_instance_id = Some("instance-1".into());
    let (request_id, actions) = h.join(rejoin);
    assert_eq!(join_response(&actions, request_id).generation_id, 2);
}

#[test]
fn static_replacement_that_cannot_be_persisted_is_undone() {
    // Goal: as in Kafka, if the record naming the replacement's member id cannot be written,
    // the old member id is restored (it can heartbeat again) and the JoinGroup gets the error.
    let mut h = stable_static_group();
    let mut restart = h.join_request("", "new");
    restart.group_instance_id = Some("instance-1".into());
    let (request_id, _) = h.join(restart);
    assert_eq!(h.heartbeat("client-old", 1), ErrorCode::UNKNOWN_MEMBER_ID, "replaced for now");
    let actions = h.persist_outcome(ErrorCode::COORDINATOR_NOT_AVAILABLE);
    let failed = join_response(&actions, request_id);
    assert_eq!((failed.error_code, failed.member_id.as_str()), (ErrorCode::COORDINATOR_NOT_AVAILABLE, ""));
    assert_eq!(h.heartbeat("client-old", 1), ErrorCode::NONE);
    assert_eq!(h.group.member_ids().collect::<Vec<_>>(), vec!["client-old"]);
    assert_eq!(h.group.leader_id(), Some("client-old"));
}

#[test]
fn restarted_static_leader_on_join_group_v9_leads_without_assigning() {
    // Goal: JoinGroup v9+ (supports skip_assignment): a restarted static leader is told it
    // leads, with the member list, and to skip the assignment, as Kafka does.
    let mut h = stable_static_group();
    let mut restart = h.join_request("", "new");
    restart.group_instance_id = Some("instance-1".into());
    restart.supports_skip_assignment = true;
    let (request_id, _) = h.join(restart);
    let actions = h.persist_completed();
    let joined = join_response(&actions, request_id);
    assert_eq!(joined.leader, "client-new");
    assert!(joined.skip_assignment);
    assert_eq!(joined.members.len(), 1);
}

#[test]
fn static_replacement_in_flight_joins_a_rebalance_that_starts_meanwhile() {
    // Goal: if the group leaves Stable while a replacement waits for its record, the parked
    // JoinGroup is answered by the rebalance (new generation) instead of by the stale persist.
    let mut h = stable_static_group();
    let mut restart = h.join_request("", "new");
    restart.group_instance_id = Some("instance-1".into());
    let (replacement, _) = h.join(restart);
    let (newcomer, actions) = h.join_as("", "d");
    // Both members are parked in the join phase, so it ends at once with generation 2.
    assert_eq!(join_response(&actions, replacement).generation_id, 2);
    assert_eq!(join_response(&actions, newcomer).generation_id, 2);
    assert_eq!(h.group.state(), GroupState::CompletingRebalance);
    let stale = h.persist_ids[h.persist_ids.len() - 1];
    let actions = h.handle(Event::PersistCompleted { persist_id: stale, error_code: ErrorCode::NONE });
    assert!(actions.is_empty(), "nobody waits for the replacement record any more");
}

#[test]
fn second_replacement_fences_the_first_while_its_record_is_in_flight() {
    // Goal: two restarts of one instance in quick succession: the first replacement's JoinGroup
    // is answered FENCED_INSTANCE_ID, the second is answered when its record is durable.
    let mut h = stable_static_group();
    let mut first = h.join_request("", "first");
    first.group_instance_id = Some("instance-1".into());
    let (first, _) = h.join(first);
    let mut second = h.join_request("", "second");
    second.group_instance_id = Some("instance-1".into());
    let (second, actions) = h.join(second);
    assert_eq!(join_response(&actions, first).error_code, ErrorCode::FENCED_INSTANCE_ID);
    let actions = h.persist_completed();
    assert_eq!(join_response(&actions, second).member_id, "client-second");
}
