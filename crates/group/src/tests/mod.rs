//! Unit tests: one or more per transition and per error code. Each drives a [`Group`] through
//! events exactly as the broker would, with a hand-advanced clock, and reads the actions.

use bytes::Bytes;

use crate::*;

mod join;
mod static_membership;
mod sync;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

/// A group plus a clock, a request-id counter, and the persists the group asked for.
struct Harness {
    group: Group,
    now_ms: i64,
    next_request: u64,
    persist_ids: Vec<PersistId>,
}

fn test_config() -> GroupConfig {
    GroupConfig { initial_rebalance_delay_ms: 0, ..GroupConfig::default() }
}

impl Harness {
    fn new() -> Harness {
        Harness::with_config(test_config())
    }

    fn with_config(config: GroupConfig) -> Harness {
        Harness { group: Group::new("g", config, 0), now_ms: 0, next_request: 0, persist_ids: Vec::new() }
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    fn handle(&mut self, event: Event) -> Vec<Action> {
        let actions = self.group.handle(self.now_ms, event);
        assert_eq!(self.group.check_invariants(), Ok(()));
        for action in &actions {
            if let Action::PersistGroup { persist_id, .. } = action {
                self.persist_ids.push(*persist_id);
            }
        }
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
            supports_skip_assignment: false,
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

    /// The broker reports the latest persist done.
    fn persist_completed(&mut self) -> Vec<Action> {
        self.persist_outcome(ErrorCode::NONE)
    }

    fn persist_outcome(&mut self, error_code: ErrorCode) -> Vec<Action> {
        let persist_id = *self.persist_ids.last().expect("a persist was asked for");
        self.handle(Event::PersistCompleted { persist_id, error_code })
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
        Action::PersistGroup { record, .. } => Some(record),
        _ => None,
    })
}
