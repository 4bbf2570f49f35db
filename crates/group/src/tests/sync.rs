//! SyncGroup and persistence, Heartbeat, LeaveGroup, commits, deletion, unload and load.

use super::*;

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
    let actions = h.persist_outcome(ErrorCode::NOT_COORDINATOR);
    assert_eq!(sync_response(&actions, sync).error_code, ErrorCode::NOT_COORDINATOR);
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
}

#[test]
fn stale_persist_completion_is_ignored() {
    // Goal: the outcome of a persist the group no longer waits for (the assignment of a
    // generation that a newcomer interrupted) does not make the next generation Stable.
    let mut h = Harness::new();
    h.join_as("", "a");
    h.sync("client-a", 1, &[("client-a", "A")]);
    let stale = *h.persist_ids.last().expect("assignment persisted");
    h.join_as("", "b");
    h.join_as("client-a", "");
    assert_eq!(h.group.generation_id(), 2);
    h.sync("client-a", 2, &[("client-a", "A"), ("client-b", "B")]);
    let actions = h.handle(Event::PersistCompleted { persist_id: stale, error_code: ErrorCode::NONE });
    assert!(actions.is_empty());
    assert_eq!(h.group.state(), GroupState::CompletingRebalance);
    h.persist_completed();
    assert_eq!(h.group.state(), GroupState::Stable);
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
fn offset_commit_validation() {
    // Goal: the group side of OffsetCommit: simple commits only while Empty; members must give
    // their id and generation (25, 22); REBALANCE_IN_PROGRESS (27) while completing; Stable and
    // PreparingRebalance OK; a group the broker does not have accepts only simple commits.
    let mut h = Harness::new();
    assert_eq!(h.commit("", None, -1), ErrorCode::NONE);
    assert_eq!(h.commit("ghost", None, 0), ErrorCode::UNKNOWN_MEMBER_ID);
    h.join_as("", "a");
    assert_eq!(h.commit("client-a", None, 1), ErrorCode::REBALANCE_IN_PROGRESS);
    assert_eq!(h.heartbeat("client-a", 1), ErrorCode::NONE, "heartbeats are fine while completing");
    h.sync("client-a", 1, &[("client-a", "A")]);
    h.persist_completed();
    assert_eq!(h.commit("client-a", None, 1), ErrorCode::NONE);
    assert_eq!(h.commit("client-a", None, 0), ErrorCode::ILLEGAL_GENERATION);
    assert_eq!(h.commit("", None, -1), ErrorCode::UNKNOWN_MEMBER_ID, "simple commits refused while members exist");
    h.join_as("", "b");
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    assert_eq!(h.commit("client-a", None, 1), ErrorCode::NONE, "allowed while preparing, as in Kafka");
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
    assert_eq!(loaded.state_timestamp_ms(), record.current_state_timestamp_ms);
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
fn describe_reports_metadata_only_when_stable() {
    // Goal: DescribeGroups data: state name, protocol and per-member assignment in Stable.
    let mut h = Harness::new();
    let ids = h.stable_group(1);
    let description = h.group.describe();
    assert_eq!(description.state.as_str(), "Stable");
    assert_eq!(description.protocol_name, "range");
    assert_eq!(description.members[0].assignment, bytes_of(&format!("a-{}", ids[0])));
}
