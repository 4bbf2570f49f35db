//! Broker liveness: heartbeats to the Raft leader, and the controller's fencing decisions.
//!
//! Every broker sends a heartbeat (`broker_id`, `broker_epoch`) to the metadata leader each
//! `broker.heartbeat.interval.ms` ([`MetaNode::heartbeat`](crate::MetaNode::heartbeat)). The
//! leader keeps, in memory only, when it last heard from each broker ([`Liveness`]); nothing of
//! it is replicated, as in Kafka's KRaft controller. A controller task on the leader
//! ([`run_controller`]) turns what it heard into commands with the pure [`liveness_commands`]:
//!
//! - a live broker not heard from (heartbeat or registration) within `broker.session.timeout.ms`
//!   is fenced: [`Command::FenceBroker`] removes it from every ISR it is not the last member of
//!   and moves its leaderships to the next live ISR member, in one command;
//! - a fenced broker heard from again with its current epoch is unfenced
//!   ([`Command::UnfenceBroker`]), and leads the offline partitions whose ISR it is in.
//!
//! A newly elected leader has heard nobody yet: it counts every live broker as heard at its
//! election ([`ELECTION_GRACE_PERCENT`] of a session timeout, as Kafka's controller resets
//! every broker's session when it becomes active), so a leader change alone fences nobody: live
//! brokers find the new leader within a few heartbeats, even those whose heartbeats were stuck
//! in a forward to the old leader. (With half a session timeout, the chaos campaign saw a new
//! leader fence all three brokers, itself included, 20–50 ms before their first heartbeats
//! reached it; issue 12, bug B2.) A broker that died with the old leader is fenced a session
//! timeout after the election. A registration counts as hearing from the broker (it is live
//! from the moment it registered), but never unfences: only a heartbeat does.
//!
//! The controller never fences the broker of its own process: that one is evidently running
//! (its own heartbeats may still be stuck in a forward to a previous leader). It fences itself
//! only through a controlled shutdown, which is not a liveness decision.
//!
//! The controller does the same after a stall of its own (its process paused, or starved of
//! CPU, for longer than half a session timeout between two ticks): heartbeats that arrived, or
//! would have, while it was not running say nothing about the brokers, so it does not fence
//! everyone — itself included — the moment it runs again.
//!
//! The controller also moves leaderships back to their preferred replicas (the first of each
//! partition's replicas) when `auto.leader.rebalance.enable` is on: every
//! [`LEADER_IMBALANCE_CHECK_INTERVAL_MS`], each partition whose preferred replica is live and in
//! the ISR but does not lead gets an `ElectLeader` naming it ([`preferred_leader_elections`]).
//! After a broker restarts, its leaderships come back once it has caught up, instead of
//! piling up on the brokers that stayed.
//!
//! Every tick, partitions of topics with `unclean.leader.election.enable` that have no live
//! ISR member get an `ElectLeaderUnclean` ([`crate::election::unclean_elections`]).
//!
//! Heartbeats carry the broker epoch: one from an older incarnation of the broker (a process
//! that was replaced) proves nothing about the current one and is ignored.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use crate::commands::Command;
use crate::proposal::Batcher;
use crate::state_machine::StateMachineStore;
use crate::types::NodeId;
use crate::types::Raft;
use crate::view::BrokerId;
use crate::view::MetadataView;

/// Kafka's `broker.heartbeat.interval.ms` default here, in milliseconds. Kafka uses 2 s; a
/// shorter interval lets a shorter session timeout tolerate several lost heartbeats.
pub const BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 250;

/// Kafka's `broker.session.timeout.ms` default here, in milliseconds: a broker not heard from
/// for this long is fenced. Kafka uses 9 s to ride out JVM pauses; Sluice has none, and a
/// killed partition leader must be replaced within 3 s including the metadata commit and the
/// clients' metadata refresh. Six heartbeat intervals: a broker is fenced only after six
/// heartbeats in a row were lost or late (measured: `tests/cluster`, 2-core machine with three
/// brokers and the clients on it, no false fencing; see docs/design/replication.md).
pub const BROKER_SESSION_TIMEOUT_MS_DEFAULT: u64 = 1_500;

/// How often the controller looks for partitions led by another replica than their preferred
/// one, in milliseconds (Kafka's `leader.imbalance.check.interval.seconds` is 300 s; a shorter
/// interval rebalances sooner after a restart at the cost of one view scan per check).
pub const LEADER_IMBALANCE_CHECK_INTERVAL_MS: u64 = 30_000;

/// How often the controller re-evaluates liveness, in milliseconds. Bounds how late a fence
/// comes after the session timeout.
pub const CONTROLLER_TICK_MS: u64 = 100;

/// Share of the session timeout, in percent, that a newly elected leader gives every broker to
/// send it a first heartbeat: the whole of it (1.5 s, six heartbeat intervals, with the
/// defaults).
pub const ELECTION_GRACE_PERCENT: u64 = 100;

const _: () = assert!(BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT * 4 <= BROKER_SESSION_TIMEOUT_MS_DEFAULT);
const _: () = assert!(
    BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT * 3 <= BROKER_SESSION_TIMEOUT_MS_DEFAULT * ELECTION_GRACE_PERCENT / 100
);
const _: () = assert!(CONTROLLER_TICK_MS < BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT);

/// What the controller knows of one broker's last sign of life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerSeen {
    /// The broker epoch of that sign of life.
    pub broker_epoch: i64,
    /// Milliseconds since it.
    pub age_ms: u64,
    /// Whether it was a heartbeat (only a heartbeat unfences; a registration does not need to).
    pub heartbeat: bool,
}

/// The liveness commands the controller should propose now.
///
/// `seen` holds the last sign of life per broker, `session_timeout_ms` the fencing deadline.
/// Pure: the same inputs give the same commands.
/// `own_broker` is the broker of the controller's own process, never fenced here.
pub fn liveness_commands(
    view: &MetadataView,
    seen: &BTreeMap<BrokerId, BrokerSeen>,
    session_timeout_ms: u64,
    own_broker: Option<BrokerId>,
) -> Vec<Command> {
    let mut commands = Vec::new();
    for broker in view.brokers.values() {
        let current = seen.get(&broker.broker_id).filter(|s| s.broker_epoch == broker.broker_epoch);
        let alive = own_broker == Some(broker.broker_id) || current.is_some_and(|s| s.age_ms <= session_timeout_ms);
        if !broker.fenced && !alive {
            commands.push(Command::FenceBroker { broker_id: broker.broker_id, broker_epoch: broker.broker_epoch });
        } else if broker.fenced && alive && current.is_some_and(|s| s.heartbeat) {
            commands.push(Command::UnfenceBroker { broker_id: broker.broker_id, broker_epoch: broker.broker_epoch });
        }
    }
    commands
}

/// `ElectLeader` commands that give each partition back to its preferred replica (the first in
/// its replica list) where that replica is live, in the ISR, and not the leader. Pure.
pub fn preferred_leader_elections(view: &MetadataView) -> Vec<Command> {
    let mut commands = Vec::new();
    for topic in view.topics.values() {
        for partition in &topic.partitions {
            let Some(preferred) = partition.replicas.first().copied() else { continue };
            if partition.leader != Some(preferred) && partition.isr.contains(&preferred) && view.is_live(preferred) {
                commands.push(Command::ElectLeader {
                    topic_id: topic.topic_id,
                    partition: partition.partition,
                    partition_epoch: partition.partition_epoch,
                    preferred: Some(preferred),
                });
            }
        }
    }
    commands
}

#[derive(Debug, Clone, Copy)]
struct Heard {
    broker_epoch: i64,
    at: Instant,
    heartbeat: bool,
}

/// The leader's in-memory record of heartbeats. Shared by the RPC server (heartbeats forwarded
/// from other nodes), [`MetaNode::heartbeat`](crate::MetaNode::heartbeat) (this node's own
/// broker) and the controller task.
#[derive(Debug, Clone, Default)]
pub struct Liveness {
    heard: Arc<Mutex<BTreeMap<BrokerId, Heard>>>,
}

impl Liveness {
    /// Records a heartbeat received now.
    pub fn record_heartbeat(&self, broker_id: BrokerId, broker_epoch: i64) {
        let mut heard = self.lock();
        heard.insert(broker_id, Heard { broker_epoch, at: Instant::now(), heartbeat: true });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<BrokerId, Heard>> {
        self.heard.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets everything (this node stopped being the leader).
    fn clear(&self) {
        self.lock().clear();
    }

    /// Starts a leadership at `now`: forgets what an earlier leadership heard and counts every
    /// live broker of `view` as heard [`ELECTION_GRACE_PERCENT`] of the session timeout before
    /// the deadline.
    fn begin_leadership(&self, view: &MetadataView, now: Instant, session_timeout_ms: u64) {
        let grace_ms = session_timeout_ms * ELECTION_GRACE_PERCENT / 100;
        let at = now.checked_sub(Duration::from_millis(session_timeout_ms - grace_ms)).unwrap_or(now);
        let mut heard = self.lock();
        heard.clear();
        for broker in view.brokers.values().filter(|b| !b.fenced) {
            heard.insert(broker.broker_id, Heard { broker_epoch: broker.broker_epoch, at, heartbeat: false });
        }
    }

    /// Counts each registration in `view` not heard of yet as a sign of life now, and returns
    /// what is known of every broker.
    fn observe(&self, view: &MetadataView, now: Instant) -> BTreeMap<BrokerId, BrokerSeen> {
        let mut heard = self.lock();
        for broker in view.brokers.values() {
            let known = heard.get(&broker.broker_id).is_some_and(|h| h.broker_epoch == broker.broker_epoch);
            if !known && !broker.fenced {
                heard.insert(broker.broker_id, Heard { broker_epoch: broker.broker_epoch, at: now, heartbeat: false });
            }
        }
        heard
            .iter()
            .map(|(id, h)| {
                let age_ms = u64::try_from(now.saturating_duration_since(h.at).as_millis()).unwrap_or(u64::MAX);
                (*id, BrokerSeen { broker_epoch: h.broker_epoch, age_ms, heartbeat: h.heartbeat })
            })
            .collect()
    }
}

/// The controller's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ControllerSettings {
    /// `broker.session.timeout.ms`.
    pub session_timeout_ms: u64,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance: bool,
    /// The broker default of `unclean.leader.election.enable`.
    pub unclean_leader_election: bool,
}

/// Runs the controller duties while this node leads, until `stop` completes: every
/// [`CONTROLLER_TICK_MS`], compute [`liveness_commands`] and propose them (one at a time per
/// broker; a rejected one, e.g. stale after a re-registration, is simply re-evaluated).
pub(crate) async fn run_controller(
    node_id: NodeId,
    raft: Raft,
    batcher: Batcher,
    state_machine: StateMachineStore,
    liveness: Liveness,
    settings: ControllerSettings,
    stop: impl std::future::Future<Output = ()>,
) {
    let ControllerSettings { session_timeout_ms, auto_leader_rebalance, unclean_leader_election } = settings;
    let mut unclean_in_flight = false;
    let unclean_done: Arc<std::sync::atomic::AtomicBool> = Arc::default();
    let mut last_rebalance = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(CONTROLLER_TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leading = false;
    let mut last_tick = Instant::now();
    let in_flight: Arc<Mutex<BTreeSet<BrokerId>>> = Arc::default();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => return,
        }
        let leads = raft.metrics().borrow().current_leader == Some(node_id);
        if !leads {
            last_tick = Instant::now();
            if leading {
                leading = false;
                liveness.clear();
            }
            continue;
        }
        let now = Instant::now();
        let view = state_machine.view();
        let stalled = now.duration_since(last_tick) > Duration::from_millis(session_timeout_ms / 2);
        last_tick = now;
        if !leading || stalled {
            if leading {
                tracing::warn!(session_timeout_ms, "the controller stalled; every broker gets a new grace period");
            }
            leading = true;
            liveness.begin_leadership(&view.view, now, session_timeout_ms);
        }
        if auto_leader_rebalance
            && now.duration_since(last_rebalance) >= Duration::from_millis(LEADER_IMBALANCE_CHECK_INTERVAL_MS)
        {
            last_rebalance = now;
            let elections = preferred_leader_elections(&view.view);
            if !elections.is_empty() {
                tracing::info!(partitions = elections.len(), "moving leaderships back to preferred replicas");
                let batcher = batcher.clone();
                tokio::spawn(async move {
                    let timeout = Duration::from_millis(crate::limits::PROPOSE_TIMEOUT_MS);
                    for command in elections {
                        // A stale one (the partition changed meanwhile) is refused; the next check
                        // looks again.
                        let _ = batcher.propose(command, timeout).await;
                    }
                });
            }
        }
        if unclean_done.swap(false, std::sync::atomic::Ordering::AcqRel) {
            unclean_in_flight = false;
        }
        let unclean = crate::election::unclean_elections(&view.view, unclean_leader_election);
        if !unclean.is_empty() && !unclean_in_flight {
            unclean_in_flight = true;
            tracing::warn!(
                partitions = unclean.len(),
                "no in-sync replica is live: electing out-of-sync replicas (unclean.leader.election.enable)"
            );
            let (batcher, done) = (batcher.clone(), Arc::clone(&unclean_done));
            tokio::spawn(async move {
                let timeout = Duration::from_millis(crate::limits::PROPOSE_TIMEOUT_MS);
                for command in unclean {
                    match batcher.propose(command.clone(), timeout).await {
                        Ok(reply) => tracing::warn!(?command, result = ?reply.result, "unclean leader election"),
                        Err(error) => tracing::info!(?command, ?error, "unclean election not committed"),
                    }
                }
                done.store(true, std::sync::atomic::Ordering::Release);
            });
        }
        let seen = liveness.observe(&view.view, now);
        let own_broker = BrokerId::try_from(node_id).ok();
        for command in liveness_commands(&view.view, &seen, session_timeout_ms, own_broker) {
            let broker_id = match &command {
                Command::FenceBroker { broker_id, .. } | Command::UnfenceBroker { broker_id, .. } => *broker_id,
                _ => continue,
            };
            if !in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(broker_id) {
                continue;
            }
            let (batcher, in_flight) = (batcher.clone(), Arc::clone(&in_flight));
            tokio::spawn(async move {
                let timeout = Duration::from_millis(crate::limits::PROPOSE_TIMEOUT_MS);
                match batcher.propose(command.clone(), timeout).await {
                    Ok(reply) => tracing::warn!(?command, result = ?reply.result, "broker liveness changed"),
                    Err(error) => tracing::info!(?command, ?error, "liveness command not committed"),
                }
                in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&broker_id);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn view_with(brokers: &[(BrokerId, bool)]) -> MetadataView {
        let mut view = MetadataView::default();
        for (id, fenced) in brokers {
            view.apply(&Command::RegisterBroker {
                broker_id: *id,
                incarnation_id: Uuid::from_u128(*id as u128),
                kafka_addr: format!("h:{id}"),
                internal_addr: format!("h:1{id}"),
                rack: None,
            })
            .unwrap();
            if *fenced {
                let epoch = view.brokers[id].broker_epoch;
                view.apply(&Command::FenceBroker { broker_id: *id, broker_epoch: epoch }).unwrap();
            }
        }
        view
    }

    fn seen(epoch: i64, age_ms: u64, heartbeat: bool) -> BrokerSeen {
        BrokerSeen { broker_epoch: epoch, age_ms, heartbeat }
    }

    /// A broker silent past the session timeout is fenced; one heard within it is not.
    #[test]
    fn silent_brokers_are_fenced_and_others_kept() {
        let view = view_with(&[(1, false), (2, false)]);
        let heard = BTreeMap::from([(1, seen(0, 100, true)), (2, seen(1, 2_001, true))]);
        assert_eq!(
            liveness_commands(&view, &heard, 2_000, None),
            vec![Command::FenceBroker { broker_id: 2, broker_epoch: 1 }]
        );
    }

    /// A new leader counts every live broker as heard at its election: nobody is fenced for a
    /// session timeout, a broker that stays silent is fenced after it.
    #[test]
    fn a_new_leader_gives_every_broker_a_whole_session_timeout() {
        let view = view_with(&[(1, false), (2, true)]);
        let liveness = Liveness::default();
        liveness.record_heartbeat(1, 0);
        let elected = Instant::now();
        liveness.begin_leadership(&view, elected, 2_000);
        let seen = liveness.observe(&view, elected);
        assert_eq!(seen.get(&1).map(|s| (s.age_ms, s.heartbeat)), Some((0, false)));
        assert_eq!(seen.get(&2), None, "a fenced broker is not counted as heard");
        assert!(liveness_commands(&view, &seen, 2_000, None).is_empty());
        let almost = liveness.observe(&view, elected + Duration::from_millis(1_999));
        assert!(liveness_commands(&view, &almost, 2_000, None).is_empty());
        let later = liveness.observe(&view, elected + Duration::from_millis(2_001));
        assert_eq!(
            liveness_commands(&view, &later, 2_000, None),
            vec![Command::FenceBroker { broker_id: 1, broker_epoch: 0 }]
        );
    }

    /// The controller's own broker is never fenced for silence (its heartbeats may be stuck in
    /// a forward to an old leader while its process evidently runs); others still are.
    #[test]
    fn the_controller_never_fences_its_own_broker() {
        let view = view_with(&[(1, false), (2, false)]);
        let silent = BTreeMap::from([(1, seen(0, 5_000, true)), (2, seen(1, 5_000, true))]);
        assert_eq!(
            liveness_commands(&view, &silent, 2_000, Some(1)),
            vec![Command::FenceBroker { broker_id: 2, broker_epoch: 1 }]
        );
    }

    /// A heartbeat from an older incarnation does not keep the current one alive, nor unfence it.
    #[test]
    fn heartbeats_of_another_epoch_count_for_nothing() {
        let view = view_with(&[(1, false)]);
        let heard = BTreeMap::from([(1, seen(7, 10, true))]);
        assert_eq!(
            liveness_commands(&view, &heard, 2_000, None),
            vec![Command::FenceBroker { broker_id: 1, broker_epoch: 0 }]
        );
        let fenced = view_with(&[(1, true)]);
        assert!(liveness_commands(&fenced, &heard, 2_000, None).is_empty());
    }

    /// A fenced broker heartbeating again is unfenced; a registration alone does not unfence.
    #[test]
    fn a_fenced_broker_heard_again_is_unfenced_only_by_a_heartbeat() {
        let view = view_with(&[(1, true)]);
        let heartbeat = BTreeMap::from([(1, seen(0, 10, true))]);
        assert_eq!(
            liveness_commands(&view, &heartbeat, 2_000, None),
            vec![Command::UnfenceBroker { broker_id: 1, broker_epoch: 0 }]
        );
        let registration = BTreeMap::from([(1, seen(0, 10, false))]);
        assert!(liveness_commands(&view, &registration, 2_000, None).is_empty());
    }

    /// A partition led by another replica than its first gets it back once the preferred one is
    /// live and in the ISR; not before.
    #[test]
    fn leaderships_go_back_to_live_in_sync_preferred_replicas() {
        let mut view = view_with(&[(1, false), (2, false)]);
        view.apply(&Command::CreateTopic {
            name: "t".into(),
            topic_id: Uuid::from_u128(7),
            partition_count: 1,
            replication_factor: 2,
            configs: BTreeMap::new(),
        })
        .unwrap();
        assert!(preferred_leader_elections(&view).is_empty());
        let preferred = view.topics["t"].partitions[0].replicas[0];
        let epoch = view.brokers[&preferred].broker_epoch;
        view.apply(&Command::FenceBroker { broker_id: preferred, broker_epoch: epoch }).unwrap();
        assert!(preferred_leader_elections(&view).is_empty(), "fenced, and out of the ISR");
        view.apply(&Command::UnfenceBroker { broker_id: preferred, broker_epoch: epoch }).unwrap();
        assert!(preferred_leader_elections(&view).is_empty(), "live but not back in the ISR");
        let partition = view.topics["t"].partitions[0].clone();
        let leader = partition.leader.unwrap();
        view.apply(&Command::ChangeIsr {
            topic_id: Uuid::from_u128(7),
            partition: 0,
            leader,
            leader_epoch: partition.leader_epoch,
            partition_epoch: partition.partition_epoch,
            isr: vec![preferred, leader],
        })
        .unwrap();
        let elections = preferred_leader_elections(&view);
        assert_eq!(elections.len(), 1);
        view.apply(&elections[0]).unwrap();
        assert_eq!(view.topics["t"].partitions[0].leader, Some(preferred));
        assert!(preferred_leader_elections(&view).is_empty());
    }

    /// The in-memory record counts a registration as a sign of life, never for a fenced broker.
    #[test]
    fn registrations_count_as_a_sign_of_life() {
        let liveness = Liveness::default();
        let view = view_with(&[(1, false), (2, true)]);
        let now = Instant::now();
        let seen = liveness.observe(&view, now);
        assert_eq!(seen.get(&1), Some(&BrokerSeen { broker_epoch: 0, age_ms: 0, heartbeat: false }));
        assert_eq!(seen.get(&2), None);
        liveness.record_heartbeat(2, 1);
        let seen = liveness.observe(&view, Instant::now());
        assert!(seen[&2].heartbeat);
    }
}
