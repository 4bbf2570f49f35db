//! One consumer's membership in a group: JoinGroup → (leader: assign) → SyncGroup, the
//! heartbeat request, LeaveGroup, and the state the consumer and its heartbeat task share.
//!
//! Follow a join ([`Membership::join`]): JoinGroup with the member id we have (empty the first
//! time: JoinGroup v4+ answers MEMBER_ID_REQUIRED with an id to join again with); the answer
//! names the generation, the protocol (assignor) the coordinator chose among those every member
//! offered, and the leader. The leader alone gets every member's subscription; it runs the
//! assignor over the partition counts from the metadata and sends each member's assignment in
//! its SyncGroup. Everyone's SyncGroup answer carries its own assignment. REBALANCE_IN_PROGRESS
//! or ILLEGAL_GENERATION at SyncGroup (another member joined meanwhile) starts over;
//! UNKNOWN_MEMBER_ID starts over with an empty member id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sluice_proto::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use sluice_proto::kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use sluice_proto::kafka_protocol::messages::leave_group_request::MemberIdentity;
use sluice_proto::kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use sluice_proto::kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, SyncGroupRequest,
    SyncGroupResponse,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::cluster::{is_unknown_topic, Cluster};
use crate::consumer::TopicPartition;
use crate::error::{ClientError, Result};
use crate::group::assignor::{Assignor, MemberSubscription};
use crate::group::coordinator::{check_coordinator, Coordinator, Route};
use crate::group::offsets::{
    CommitIdentity, ILLEGAL_GENERATION, NO_GENERATION, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID,
};
use crate::group::protocol::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription, CONSUMER_PROTOCOL_TYPE,
};

/// MEMBER_ID_REQUIRED: the first JoinGroup (v4+) of a new member; join again with the id given.
pub const MEMBER_ID_REQUIRED: i16 = 79;
/// SyncGroup v5 is the first that repeats the protocol type and name.
const SYNC_GROUP_PROTOCOL_VERSION: i16 = 5;
/// LeaveGroup v3 is the first that names members in a batch.
const LEAVE_GROUP_BATCH_VERSION: i16 = 3;
/// LeaveGroup v5 is the first with a reason.
const LEAVE_GROUP_REASON_VERSION: i16 = 5;

/// The group settings of a member (from [`crate::ConsumerConfig`]).
#[derive(Debug, Clone)]
pub struct GroupSettings {
    /// `group.id`.
    pub group_id: String,
    /// `session.timeout.ms`: the coordinator expels a member it has not heard from for this long.
    pub session_timeout: Duration,
    /// The rebalance timeout (Kafka uses `max.poll.interval.ms`): how long the coordinator
    /// waits for every member to rejoin, and how long a member may go without polling.
    pub rebalance_timeout: Duration,
    /// Time between heartbeats.
    pub heartbeat_interval: Duration,
    /// Assignors offered, in order of preference.
    pub assignors: Vec<Assignor>,
}

/// Why the consumer must rejoin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejoin {
    /// The group is rebalancing; the generation is still valid, so the partitions can be
    /// committed before they are revoked.
    Rebalance,
    /// The generation is over for this member (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, or it left
    /// for not polling): its partitions are lost, committing them is refused.
    Fenced,
}

/// What the consumer and the heartbeat task share.
#[derive(Debug)]
pub struct MemberState {
    /// The member id ("" before the first join and after UNKNOWN_MEMBER_ID).
    pub member_id: String,
    /// The current generation, or [`NO_GENERATION`] while not in one.
    pub generation_id: i32,
    /// Joined and synced: heartbeats are sent.
    pub stable: bool,
    /// Set when the consumer must rejoin (the more serious reason wins).
    pub rejoin: Option<Rejoin>,
    /// When the application last called `poll`.
    pub last_poll: Instant,
}

/// The result of a completed join.
#[derive(Debug, Clone)]
pub struct Joined {
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// The assignor the coordinator chose.
    pub protocol: String,
    /// This member's partitions.
    pub partitions: Vec<TopicPartition>,
}

/// One member of one group.
#[derive(Debug)]
pub struct Membership {
    /// The coordinator, over a connection of this member's own.
    pub coordinator: Coordinator,
    /// Settings.
    pub settings: GroupSettings,
    state: Mutex<MemberState>,
    /// Woken when a rejoin is requested, so an idle `poll` notices at once.
    pub wake: tokio::sync::Notify,
}

/// What one JoinGroup + SyncGroup round came to.
enum Step {
    Done(Joined),
    /// Join again at once (a new member id, a rebalance that started meanwhile).
    Again,
    /// Join again as a new member after the backoff (the coordinator forgot this member).
    AfterBackoff,
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

impl Membership {
    /// A member that has not joined yet.
    pub fn new(cluster: Cluster, settings: GroupSettings) -> Membership {
        Membership {
            coordinator: Coordinator::new(cluster, &settings.group_id, Route::Dedicated),
            settings,
            state: Mutex::new(MemberState {
                member_id: String::new(),
                generation_id: NO_GENERATION,
                stable: false,
                rejoin: None,
                last_poll: Instant::now(),
            }),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// The shared state (never held across an await).
    pub fn state(&self) -> MutexGuard<'_, MemberState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the consumer to rejoin, if `generation_id` is still the current one (an answer to a
    /// request of an older generation says nothing about the current one).
    pub fn request_rejoin(&self, generation_id: i32, reason: Rejoin) {
        self.rejoin(generation_id, reason, false);
    }

    /// The coordinator does not know this member (UNKNOWN_MEMBER_ID) in `generation_id`: rejoin
    /// as a new member.
    pub fn member_unknown(&self, generation_id: i32) {
        self.rejoin(generation_id, Rejoin::Fenced, true);
    }

    fn rejoin(&self, generation_id: i32, reason: Rejoin, forget_member_id: bool) {
        let mut state = self.state();
        if state.generation_id != generation_id || generation_id == NO_GENERATION {
            return;
        }
        if reason == Rejoin::Fenced {
            state.generation_id = NO_GENERATION;
            state.stable = false;
        }
        if forget_member_id {
            state.member_id.clear();
        }
        state.rejoin = state.rejoin.max(Some(reason));
        drop(state);
        tracing::info!(group = %self.settings.group_id, generation_id, ?reason, "rejoining the group");
        self.wake.notify_waiters();
    }

    /// Forgets the member id after UNKNOWN_MEMBER_ID in a join (the next join starts as a new
    /// member).
    fn forget_member_id(&self) {
        self.state().member_id.clear();
    }

    /// Who commits now: the current generation, or `None` between generations.
    pub fn identity(&self) -> Option<CommitIdentity> {
        let state = self.state();
        (state.generation_id != NO_GENERATION)
            .then(|| CommitIdentity { generation_id: state.generation_id, member_id: state.member_id.clone() })
    }

    /// Joins (or rejoins) the group subscribing to `topics`, until the member has an assignment
    /// or a non-retriable error. Retriable failures are retried with backoff, indefinitely: the
    /// consumer aborts the join when it closes.
    pub async fn join(&self, topics: &[String]) -> Result<Joined> {
        let protocols = self.protocols(topics)?;
        let mut failures = 0u32;
        loop {
            match self.join_once(&protocols).await {
                Ok(Step::Done(joined)) => {
                    let mut state = self.state();
                    state.generation_id = joined.generation_id;
                    state.member_id = joined.member_id.clone();
                    state.stable = true;
                    state.rejoin = None;
                    tracing::info!(group = %self.settings.group_id, generation_id = joined.generation_id, member_id = %joined.member_id, protocol = %joined.protocol, partitions = joined.partitions.len(), "joined the group");
                    return Ok(joined);
                }
                Ok(Step::Again) => failures = 0,
                Ok(Step::AfterBackoff) => self.back_off(&mut failures, "the coordinator forgot this member").await,
                Err(error) if error.is_retriable() => self.back_off(&mut failures, &error.to_string()).await,
                Err(error) => return Err(error),
            }
        }
    }

    async fn back_off(&self, failures: &mut u32, why: &str) {
        let delay = self.coordinator.cluster().config().backoff.delay(*failures);
        tracing::debug!(group = %self.settings.group_id, why, ?delay, "joining again after a backoff");
        *failures += 1;
        tokio::time::sleep(delay).await;
    }

    fn protocols(&self, topics: &[String]) -> Result<Vec<JoinGroupRequestProtocol>> {
        let metadata = encode_subscription(topics)?;
        Ok(self
            .settings
            .assignors
            .iter()
            .map(|assignor| {
                JoinGroupRequestProtocol::default().with_name(text(assignor.name())).with_metadata(metadata.clone())
            })
            .collect())
    }

    async fn join_once(&self, protocols: &[JoinGroupRequestProtocol]) -> Result<Step> {
        let member_id = self.state().member_id.clone();
        let joined = self.join_group(&member_id, protocols).await?;
        match joined.error_code {
            0 => {}
            MEMBER_ID_REQUIRED => {
                self.state().member_id = joined.member_id.to_string();
                return Ok(Step::Again);
            }
            UNKNOWN_MEMBER_ID => {
                self.forget_member_id();
                return Ok(Step::AfterBackoff);
            }
            REBALANCE_IN_PROGRESS => return Ok(Step::Again),
            code => {
                let context = format!("join group {:?}", self.settings.group_id);
                return Err(ClientError::kafka(code, context, None));
            }
        }
        let member_id = joined.member_id.to_string();
        self.state().member_id = member_id.clone();
        let protocol = joined.protocol_name.as_ref().map(|name| name.to_string()).unwrap_or_default();
        let assignments = if joined.leader == joined.member_id {
            self.leader_assignments(&protocol, &joined.members).await?
        } else {
            Vec::new()
        };
        let synced = self.sync_group(joined.generation_id, &member_id, &protocol, assignments).await?;
        match synced.error_code {
            0 => Ok(Step::Done(Joined {
                generation_id: joined.generation_id,
                member_id,
                protocol,
                partitions: decode_assignment(&synced.assignment)?,
            })),
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => Ok(Step::Again),
            UNKNOWN_MEMBER_ID => {
                self.forget_member_id();
                Ok(Step::AfterBackoff)
            }
            code => Err(ClientError::kafka(code, format!("sync group {:?}", self.settings.group_id), None)),
        }
    }

    async fn join_group(&self, member_id: &str, protocols: &[JoinGroupRequestProtocol]) -> Result<JoinGroupResponse> {
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(text(&self.settings.group_id)))
            .with_session_timeout_ms(millis(self.settings.session_timeout))
            .with_rebalance_timeout_ms(millis(self.settings.rebalance_timeout))
            .with_member_id(text(member_id))
            .with_protocol_type(text(CONSUMER_PROTOCOL_TYPE))
            .with_protocols(protocols.to_vec());
        // The coordinator answers once every member has rejoined: up to the rebalance timeout.
        self.coordinator
            .call_once(
                self.settings.rebalance_timeout,
                |_version| request,
                |response: JoinGroupResponse| {
                    check_coordinator(response.error_code, || "join group".to_string())?;
                    Ok(response)
                },
            )
            .await
    }

    /// The leader's assignment of every member, encoded for SyncGroup.
    async fn leader_assignments(
        &self,
        protocol: &str,
        members: &[JoinGroupResponseMember],
    ) -> Result<Vec<SyncGroupRequestAssignment>> {
        let assignor = Assignor::from_name(protocol).ok_or_else(|| ClientError::UnexpectedResponse {
            reason: format!("the coordinator chose assignor {protocol:?}, which this member did not offer"),
        })?;
        let subscriptions: Vec<MemberSubscription> = members
            .iter()
            .map(|member| MemberSubscription {
                member_id: member.member_id.to_string(),
                group_instance_id: member.group_instance_id.as_ref().map(|id| id.to_string()),
                topics: decode_subscription(&member.metadata).unwrap_or_else(|error| {
                    tracing::warn!(member_id = %member.member_id, %error, "undecodable subscription; assigning nothing to it");
                    Vec::new()
                }),
            })
            .collect();
        let partitions_per_topic = self.partition_counts(&subscriptions).await?;
        let assignment = assignor.assign(&subscriptions, &partitions_per_topic);
        tracing::debug!(group = %self.settings.group_id, protocol, ?assignment, "assigned partitions as leader");
        assignment
            .into_iter()
            .map(|(member_id, partitions)| {
                Ok(SyncGroupRequestAssignment::default()
                    .with_member_id(text(&member_id))
                    .with_assignment(encode_assignment(&partitions)?))
            })
            .collect()
    }

    async fn partition_counts(&self, subscriptions: &[MemberSubscription]) -> Result<BTreeMap<String, i32>> {
        let topics: BTreeSet<&String> = subscriptions.iter().flat_map(|member| member.topics.iter()).collect();
        let mut counts = BTreeMap::new();
        for topic in topics {
            match self.coordinator.cluster().partition_count(topic).await {
                Ok(count) => {
                    counts.insert(topic.clone(), count);
                }
                Err(error) if is_unknown_topic(&error) => tracing::debug!(topic, "subscribed topic does not exist"),
                Err(error) => return Err(error),
            }
        }
        Ok(counts)
    }

    async fn sync_group(
        &self,
        generation_id: i32,
        member_id: &str,
        protocol: &str,
        assignments: Vec<SyncGroupRequestAssignment>,
    ) -> Result<SyncGroupResponse> {
        let build = |version: i16| {
            let request = SyncGroupRequest::default()
                .with_group_id(GroupId(text(&self.settings.group_id)))
                .with_generation_id(generation_id)
                .with_member_id(text(member_id))
                .with_assignments(assignments.clone());
            if version < SYNC_GROUP_PROTOCOL_VERSION {
                return request;
            }
            request.with_protocol_type(Some(text(CONSUMER_PROTOCOL_TYPE))).with_protocol_name(Some(text(protocol)))
        };
        // Followers wait for the leader's SyncGroup: at most the rebalance timeout.
        self.coordinator
            .call_once(self.settings.rebalance_timeout, build, |response: SyncGroupResponse| {
                check_coordinator(response.error_code, || "sync group".to_string())?;
                Ok(response)
            })
            .await
    }

    /// One heartbeat of `generation_id`: the coordinator's error code (0, REBALANCE_IN_PROGRESS,
    /// ...). Coordinator errors and connection failures are `Err`.
    pub async fn heartbeat(&self, generation_id: i32, member_id: &str) -> Result<i16> {
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(text(&self.settings.group_id)))
            .with_generation_id(generation_id)
            .with_member_id(text(member_id));
        self.coordinator
            .call_once(
                Duration::ZERO,
                |_version| request,
                |response| {
                    check_coordinator(response.error_code, || "heartbeat".to_string())?;
                    Ok(response.error_code)
                },
            )
            .await
    }

    /// Leaves the group (LeaveGroup), so the coordinator rebalances at once instead of waiting
    /// for the session to expire. The member id and generation are forgotten either way.
    pub async fn leave(&self) -> Result<()> {
        let member_id = {
            let mut state = self.state();
            state.stable = false;
            state.generation_id = NO_GENERATION;
            std::mem::take(&mut state.member_id)
        };
        if member_id.is_empty() {
            return Ok(());
        }
        let group_id = self.settings.group_id.as_str();
        let build = |version: i16| {
            let request = LeaveGroupRequest::default().with_group_id(GroupId(text(group_id)));
            if version < LEAVE_GROUP_BATCH_VERSION {
                return request.with_member_id(text(&member_id));
            }
            let reason = (version >= LEAVE_GROUP_REASON_VERSION).then(|| text("the consumer is closing"));
            request.with_members(vec![MemberIdentity::default().with_member_id(text(&member_id)).with_reason(reason)])
        };
        let check = |response: sluice_proto::kafka_protocol::messages::LeaveGroupResponse| {
            check_coordinator(response.error_code, || "leave group".to_string())?;
            let code = response.members.iter().map(|member| member.error_code).find(|code| *code != 0);
            Ok(code.unwrap_or(response.error_code))
        };
        match self.coordinator.call("leave group", Duration::ZERO, build, check).await? {
            0 => tracing::info!(group = group_id, %member_id, "left the group"),
            UNKNOWN_MEMBER_ID => tracing::debug!(group = group_id, %member_id, "already out of the group"),
            code => return Err(ClientError::kafka(code, format!("leave group {group_id:?}"), None)),
        }
        Ok(())
    }
}
