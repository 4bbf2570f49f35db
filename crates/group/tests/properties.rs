//! Property test: random sequences of group events, as misbehaving and well-behaved clients
//! and a broker might send them, never panic and keep the group's invariants.
//!
//! Method: a small pool of client ids, instance ids and protocol sets makes collisions (same
//! instance id, stale generations, unknown members, leaves during sync) common. After every
//! event the test checks [`Group::check_invariants`] (Empty ⇔ no members, one member per
//! instance id, every member assigned in Stable, the leader is a member, parked requests only
//! in the states that park them), that the generation never decreases, and that no request is
//! answered twice or answered without having been sent. At the end the group is unloaded, and
//! every request must have been answered exactly once: nothing is left parked forever.

use std::collections::BTreeSet;

use bytes::Bytes;
use proptest::prelude::*;
use sluice_group::{
    Action, ErrorCode, Event, Group, GroupConfig, GroupState, Heartbeat, JoinGroup, LeaveGroup, MemberIdentity,
    OffsetCommit, PersistId, Protocol, RequestId, Response, SyncGroup,
};

const PROTOCOL_NAMES: [&str; 3] = ["range", "roundrobin", "cooperative-sticky"];

#[derive(Debug, Clone)]
enum Op {
    Join {
        who: Option<u8>,
        client: u8,
        instance: Option<u8>,
        protocols: u8,
        metadata: u8,
        require_known: bool,
        session: u8,
        rebalance: u8,
    },
    Sync {
        who: u8,
        generation_offset: i8,
        assign: bool,
    },
    Heartbeat {
        who: u8,
        generation_offset: i8,
        instance: Option<u8>,
    },
    Leave {
        whos: Vec<(u8, bool)>,
    },
    Commit {
        who: Option<u8>,
        generation_offset: i8,
    },
    Advance {
        ms: u16,
    },
    /// Report the outcome of one of the persists asked for so far (most often the latest).
    Persist {
        ok: bool,
        back: u8,
    },
    Delete,
    Unload,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (proptest::option::of(any::<u8>()), 0u8..3, proptest::option::weighted(0.4, 0u8..2), 1u8..8, 0u8..2, any::<bool>(), 0u8..8, 0u8..3)
            .prop_map(|(who, client, instance, protocols, metadata, require_known, session, rebalance)| Op::Join {
                who, client, instance, protocols, metadata, require_known, session, rebalance
            }),
        4 => (any::<u8>(), -1i8..=1, any::<bool>()).prop_map(|(who, generation_offset, assign)| Op::Sync { who, generation_offset, assign }),
        3 => (any::<u8>(), -1i8..=1, proptest::option::of(0u8..2))
            .prop_map(|(who, generation_offset, instance)| Op::Heartbeat { who, generation_offset, instance }),
        1 => proptest::collection::vec((any::<u8>(), any::<bool>()), 1..3).prop_map(|whos| Op::Leave { whos }),
        1 => (proptest::option::of(any::<u8>()), -1i8..=1).prop_map(|(who, generation_offset)| Op::Commit { who, generation_offset }),
        4 => (0u16..40_000).prop_map(|ms| Op::Advance { ms }),
        3 => (prop::bool::weighted(0.8), prop_oneof![3 => Just(0u8), 1 => 0u8..4]).prop_map(|(ok, back)| Op::Persist { ok, back }),
        1 => Just(Op::Delete),
        1 => Just(Op::Unload),
    ]
}

/// Drives one group and records what it has been asked and what it answered.
struct Run {
    group: Group,
    now_ms: i64,
    next_request: u64,
    sent: BTreeSet<u64>,
    answered: BTreeSet<u64>,
    /// Member ids seen in responses (plus a stranger), for requests to aim at.
    known_ids: Vec<String>,
    persist_ids: Vec<PersistId>,
    highest_generation: i32,
}

impl Run {
    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        self.sent.insert(self.next_request);
        RequestId(self.next_request)
    }

    fn pick(&self, who: u8) -> String {
        self.known_ids[usize::from(who) % self.known_ids.len()].clone()
    }

    fn generation(&self, offset: i8) -> i32 {
        self.group.generation_id() + i32::from(offset)
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        let event = self.event(op);
        let generation_before = self.group.generation_id();
        let actions = self.group.handle(self.now_ms, event);
        prop_assert_eq!(self.group.check_invariants(), Ok(()));
        prop_assert!(self.group.generation_id() >= generation_before, "generation went backwards");
        prop_assert!(self.group.generation_id() >= self.highest_generation);
        self.highest_generation = self.group.generation_id();
        for action in actions {
            if let Action::PersistGroup { persist_id, .. } = action {
                self.persist_ids.push(persist_id);
                continue;
            }
            if let Action::Respond { request_id, response } = action {
                prop_assert!(self.sent.contains(&request_id.0), "answer to a request never sent");
                prop_assert!(self.answered.insert(request_id.0), "request {} answered twice", request_id.0);
                if let Response::Join(join) = response {
                    if !join.member_id.is_empty() && !self.known_ids.contains(&join.member_id) {
                        self.known_ids.push(join.member_id);
                    }
                }
            }
        }
        Ok(())
    }

    fn event(&mut self, op: Op) -> Event {
        match op {
            Op::Join { who, client, instance, protocols, metadata, require_known, session, rebalance } => {
                let request_id = self.request_id();
                let protocols = PROTOCOL_NAMES
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| protocols & (1 << bit) != 0)
                    .map(|(_, name)| Protocol { name: name.to_string(), metadata: Bytes::from(vec![metadata]) })
                    .collect();
                Event::Join(JoinGroup {
                    request_id,
                    member_id: who.map(|who| self.pick(who)).unwrap_or_default(),
                    group_instance_id: instance.map(|i| format!("instance-{i}")),
                    client_id: format!("client{client}"),
                    client_host: "/127.0.0.1".into(),
                    member_id_suffix: format!("{}", request_id.0 % 4),
                    session_timeout_ms: [5_000, 6_000, 10_000, 10_000, 10_000, 20_000, 30_000, 2_000_000]
                        [usize::from(session)],
                    rebalance_timeout_ms: [0, 1_000, 30_000][usize::from(rebalance)],
                    protocol_type: if client == 2 && metadata == 1 { "connect".into() } else { "consumer".into() },
                    protocols,
                    require_known_member_id: require_known,
                    supports_skip_assignment: metadata == 1,
                })
            }
            Op::Sync { who, generation_offset, assign } => {
                let member_id = self.pick(who);
                let assignments = if assign {
                    self.group.member_ids().map(|id| (id.to_owned(), Bytes::from(id.as_bytes().to_vec()))).collect()
                } else {
                    Vec::new()
                };
                Event::Sync(SyncGroup {
                    request_id: self.request_id(),
                    member_id,
                    group_instance_id: None,
                    generation_id: self.generation(generation_offset),
                    protocol_type: Some("consumer".into()),
                    protocol_name: None,
                    assignments,
                })
            }
            Op::Heartbeat { who, generation_offset, instance } => Event::Heartbeat(Heartbeat {
                request_id: self.request_id(),
                member_id: self.pick(who),
                group_instance_id: instance.map(|i| format!("instance-{i}")),
                generation_id: self.generation(generation_offset),
            }),
            Op::Leave { whos } => {
                let members = whos
                    .into_iter()
                    .map(|(who, by_instance)| {
                        if by_instance {
                            MemberIdentity {
                                member_id: String::new(),
                                group_instance_id: Some(format!("instance-{}", who % 2)),
                            }
                        } else {
                            MemberIdentity { member_id: self.pick(who), group_instance_id: None }
                        }
                    })
                    .collect();
                Event::Leave(LeaveGroup { request_id: self.request_id(), members })
            }
            Op::Commit { who, generation_offset } => Event::ValidateOffsetCommit(OffsetCommit {
                request_id: self.request_id(),
                member_id: who.map(|who| self.pick(who)).unwrap_or_default(),
                group_instance_id: None,
                generation_id: if who.is_some() { self.generation(generation_offset) } else { -1 },
            }),
            Op::Advance { ms } => {
                self.now_ms += i64::from(ms);
                Event::Tick
            }
            Op::Persist { ok, back } => Event::PersistCompleted {
                persist_id: self
                    .persist_ids
                    .iter()
                    .rev()
                    .nth(usize::from(back))
                    .copied()
                    .unwrap_or(PersistId(u64::MAX)),
                error_code: if ok { ErrorCode::NONE } else { ErrorCode::COORDINATOR_NOT_AVAILABLE },
            },
            Op::Delete => Event::Delete { request_id: self.request_id() },
            Op::Unload => Event::Unload,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences_keep_invariants(
        initial_delay in prop_oneof![Just(0), Just(3_000)],
        group_size_max in 1usize..5,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        // Goal: no sequence of events panics or breaks an invariant, and every request is
        // answered exactly once by the time the group is unloaded.
        let config = GroupConfig { initial_rebalance_delay_ms: initial_delay, group_size_max, ..GroupConfig::default() };
        let mut run = Run {
            group: Group::new("g", config, 0),
            now_ms: 0,
            next_request: 0,
            sent: BTreeSet::new(),
            answered: BTreeSet::new(),
            known_ids: vec!["stranger".into()],
            highest_generation: 0,
            persist_ids: Vec::new(),
        };
        for op in ops {
            run.apply(op)?;
        }
        run.apply(Op::Unload)?;
        prop_assert_eq!(run.group.state(), GroupState::Dead);
        prop_assert_eq!(&run.sent, &run.answered, "requests left unanswered");
    }

    #[test]
    fn well_behaved_members_reach_stable(count in 1usize..6, delay in prop_oneof![Just(0), Just(3_000)]) {
        // Goal: members that follow the protocol (join with the handshake, rejoin when told,
        // sync, the leader assigning) reach Stable with everyone assigned, whatever their number.
        let config = GroupConfig { initial_rebalance_delay_ms: delay, ..GroupConfig::default() };
        let mut group = Group::new("g", config, 0);
        let mut now_ms = 0;
        let mut request = 0u64;
        let mut ids: Vec<String> = Vec::new();
        for index in 0..count {
            request += 1;
            let join = |member_id: String, request: u64| JoinGroup {
                request_id: RequestId(request),
                member_id,
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "h".into(),
                member_id_suffix: format!("{index}"),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                protocol_type: "consumer".into(),
                protocols: vec![Protocol { name: "cooperative-sticky".into(), metadata: Bytes::new() }],
                require_known_member_id: true,
                supports_skip_assignment: true,
            };
            let actions = group.handle(now_ms, Event::Join(join(String::new(), request)));
            let Some(Action::Respond { response: Response::Join(required), .. }) = actions.first() else {
                return Err(TestCaseError::fail("no MEMBER_ID_REQUIRED"));
            };
            prop_assert_eq!(required.error_code, ErrorCode::MEMBER_ID_REQUIRED);
            let member_id = required.member_id.clone();
            ids.push(member_id.clone());
            // The newcomer completes its handshake first, then the others rejoin as the
            // rebalance it started asks them to.
            for id in ids.iter().rev() {
                request += 1;
                group.handle(now_ms, Event::Join(join(id.clone(), request)));
            }
        }
        // Initial-delay steps (with delay 0 the join already completed).
        while group.state() == GroupState::PreparingRebalance && now_ms < 60_000 {
            now_ms += 1_000;
            group.handle(now_ms, Event::Tick);
        }
        prop_assert_eq!(group.state(), GroupState::CompletingRebalance);
        prop_assert_eq!(group.member_count(), count);
        let leader = group.leader_id().map(str::to_owned).unwrap_or_default();
        let assignments = ids.iter().map(|id| (id.clone(), Bytes::from(id.clone().into_bytes()))).collect();
        request += 1;
        let sync = SyncGroup {
            request_id: RequestId(request),
            member_id: leader,
            group_instance_id: None,
            generation_id: group.generation_id(),
            protocol_type: None,
            protocol_name: Some("cooperative-sticky".into()),
            assignments,
        };
        let actions = group.handle(now_ms, Event::Sync(sync));
        let persist_id = actions.iter().find_map(|action| match action {
            Action::PersistGroup { persist_id, .. } => Some(*persist_id),
            _ => None,
        });
        let Some(persist_id) = persist_id else { return Err(TestCaseError::fail("leader's assignment not persisted")) };
        group.handle(now_ms, Event::PersistCompleted { persist_id, error_code: ErrorCode::NONE });
        prop_assert_eq!(group.state(), GroupState::Stable);
        let description = group.describe();
        for member in description.members {
            prop_assert_eq!(member.assignment, Bytes::from(member.member_id.into_bytes()));
        }
    }
}
