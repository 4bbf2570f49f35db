//! The replication throttle (Kafka's KIP-73): a cap, in bytes per second, on the copying of
//! replicas that are catching up — what keeps a reassignment from starving producers and
//! consumers of disk and network.
//!
//! Configured as in Kafka, so `kafka-reassign-partitions --throttle` and `kafka-configs` work
//! unchanged:
//! - the dynamic broker configs `leader.replication.throttled.rate` and
//!   `follower.replication.throttled.rate` ([`sluice_meta::broker_config`]) set the caps of this
//!   broker as a leader (bytes sent) and as a follower (bytes fetched);
//! - the topic configs `leader.replication.throttled.replicas` and
//!   `follower.replication.throttled.replicas` (`*` or `partition:broker` pairs) say which
//!   replicas count: a partition is throttled on the leader side when the list names the
//!   partition's replica on this broker (the leader), on the follower side when it names this
//!   broker's replica.
//!
//! A replica in the ISR is never throttled (Kafka's `!isReplicaInSync`): the throttle slows
//! only the copy of a replica that has not caught up, never acks=all producers.
//!
//! Enforcement, one [`Rate`] per side with the client quotas' window:
//! - leader: a follower's fetch of a throttled partition gets no records while the leader
//!   side's rate is over its cap (its progress still counts); the bytes it is sent are recorded;
//! - follower: a throttled partition is left out of the next fetch while the follower side's
//!   rate is over its cap; the bytes appended are recorded.
//!
//! Each side's sent or fetched bytes under the throttle are counted in
//! `sluice_replication_throttled_bytes_total{side}`.
//!
//! Architecture invariant: pure state and arithmetic, below the handlers and the fetchers that
//! share it; the clock is tokio's, read in one place ([`ReplicationThrottle::now_ms`]).

use std::collections::HashMap;
use std::sync::Mutex;

use sluice_meta::broker_config::{
    throttled_replicas_include, DYNAMIC_BROKER_CONFIG_DEFAULT, FOLLOWER_REPLICATION_THROTTLED_RATE,
    LEADER_REPLICATION_THROTTLED_RATE,
};
use sluice_meta::{BrokerId, MetadataView, PartitionRecord, TopicRecord};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::quota::Rate;

/// Bytes copied under the throttle, by side: `sluice_replication_throttled_bytes_total{side}`
/// (registered by `crate::metrics`).
pub type ThrottledBytes = Family<[(&'static str, String); 1], Counter>;

/// Kafka's topic config naming the replicas throttled on the leader side.
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
/// Kafka's topic config naming the replicas throttled on the follower side.
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";

/// Which end of the copy a cap applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Bytes this broker sends to followers (`leader.replication.throttled.rate`).
    Leader,
    /// Bytes this broker fetches as a follower (`follower.replication.throttled.rate`).
    Follower,
}

impl Side {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Side::Leader => "leader",
            Side::Follower => "follower",
        }
    }
}

#[derive(Debug)]
struct Cap {
    /// Bytes per second; `None`: unlimited (the config unset, or Kafka's `Long.MAX_VALUE`).
    rate_max: Option<f64>,
    rate: Rate,
}

#[derive(Debug)]
struct State {
    leader: Cap,
    follower: Cap,
    /// Partitions (topic, index) this broker follows that are throttled on its follower side.
    /// (By topic, so a lookup needs no owned key: the fetcher asks for every partition it
    /// fetches.)
    follower_throttled: HashMap<String, Vec<i32>>,
}

impl State {
    fn follower_throttles(&self, topic: &str, partition: i32) -> bool {
        self.follower.rate_max.is_some()
            && self.follower_throttled.get(topic).is_some_and(|partitions| partitions.contains(&partition))
    }

    fn cap(&mut self, side: Side) -> &mut Cap {
        match side {
            Side::Leader => &mut self.leader,
            Side::Follower => &mut self.follower,
        }
    }
}

/// This broker's replication throttle: the caps in force and their rates. One per broker.
#[derive(Debug)]
pub struct ReplicationThrottle {
    local_broker: BrokerId,
    state: Mutex<State>,
    epoch: tokio::time::Instant,
    copied: ThrottledBytes,
}

/// The cap a config value gives: none for Kafka's default (`Long.MAX_VALUE`, unlimited).
fn cap_of(value: i64) -> Option<f64> {
    (value != DYNAMIC_BROKER_CONFIG_DEFAULT).then_some(value.max(0) as f64)
}

/// Whether `list` (a throttled-replica topic config) throttles the copy to `replica` of
/// `partition`, which is not in the ISR. Pure.
fn copy_throttled(topic: &TopicRecord, list_key: &str, partition: &PartitionRecord, replica: BrokerId) -> bool {
    !partition.isr.contains(&replica)
        && topic.config_overrides.get(list_key).is_some_and(|list| {
            let named = match list_key {
                LEADER_THROTTLED_REPLICAS => partition.leader,
                _ => Some(replica),
            };
            named.is_some_and(|broker| throttled_replicas_include(list, partition.partition as i32, broker))
        })
}

impl ReplicationThrottle {
    /// No caps until the first [`ReplicationThrottle::update`].
    pub fn new(local_broker: BrokerId, copied: ThrottledBytes) -> ReplicationThrottle {
        let epoch = tokio::time::Instant::now();
        let cap = || Cap { rate_max: None, rate: Rate::new(0) };
        ReplicationThrottle {
            local_broker,
            state: Mutex::new(State { leader: cap(), follower: cap(), follower_throttled: HashMap::new() }),
            epoch,
            copied,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Milliseconds since this throttle was made (tokio's clock).
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Takes the caps and the follower side's throttled partitions from `view` (after every
    /// applied metadata change).
    pub fn update(&self, view: &MetadataView) {
        let local = self.local_broker;
        let configs = &view.broker_configs;
        let follower_throttled = view
            .topics
            .values()
            .filter(|topic| topic.config_overrides.contains_key(FOLLOWER_THROTTLED_REPLICAS))
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .filter(|p| p.replicas.contains(&local) && p.leader != Some(local))
                    .filter(|p| copy_throttled(topic, FOLLOWER_THROTTLED_REPLICAS, p, local))
                    .map(|p| p.partition as i32)
                    .collect::<Vec<i32>>();
                (topic.name.clone(), partitions)
            })
            .filter(|(_, partitions)| !partitions.is_empty())
            .collect();
        let mut state = self.lock();
        state.leader.rate_max = cap_of(configs.long(local, LEADER_REPLICATION_THROTTLED_RATE));
        state.follower.rate_max = cap_of(configs.long(local, FOLLOWER_REPLICATION_THROTTLED_RATE));
        state.follower_throttled = follower_throttled;
    }

    /// Whether this broker, leading `partition` of `topic`, throttles the copy to `follower`.
    /// Reads the view; no lock.
    pub fn leader_throttles(view: &MetadataView, topic: &str, partition: i32, follower: BrokerId) -> bool {
        let Some(topic) = view.topics.get(topic) else { return false };
        let Some(record) = usize::try_from(partition).ok().and_then(|index| topic.partitions.get(index)) else {
            return false;
        };
        copy_throttled(topic, LEADER_THROTTLED_REPLICAS, record, follower)
    }

    /// Whether the follower side leaves `partition` of `topic` out of its next fetch: it is
    /// throttled here and the follower side is over its cap.
    pub fn follower_holds_back(&self, topic: &str, partition: i32) -> bool {
        let now_ms = self.now_ms();
        let mut state = self.lock();
        state.follower_throttles(topic, partition) && over(state.cap(Side::Follower), now_ms)
    }

    /// Whether the follower side throttles `partition` of `topic` (its bytes are recorded).
    pub fn follower_throttles(&self, topic: &str, partition: i32) -> bool {
        self.lock().follower_throttles(topic, partition)
    }

    /// Whether `side` has a cap.
    pub fn capped(&self, side: Side) -> bool {
        self.lock().cap(side).rate_max.is_some()
    }

    /// Whether `side` is over its cap now (false when it has none).
    pub fn over_cap(&self, side: Side) -> bool {
        let now_ms = self.now_ms();
        over(self.lock().cap(side), now_ms)
    }

    /// Counts `bytes` copied under `side`'s throttle.
    pub fn record(&self, side: Side, bytes: u64) {
        let now_ms = self.now_ms();
        self.lock().cap(side).rate.record(bytes as f64, now_ms);
        self.copied.get_or_create(&[("side", side.label().to_string())]).inc_by(bytes);
    }
}

fn over(cap: &mut Cap, now_ms: u64) -> bool {
    match cap.rate_max {
        Some(rate_max) => cap.rate.per_second(now_ms) > rate_max,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_meta::broker_config::BrokerConfigScope;
    use sluice_meta::Command;

    fn view_with_moving_partition() -> MetadataView {
        let mut view = MetadataView::default();
        for id in 1..=3 {
            view.apply(&Command::RegisterBroker {
                broker_id: id,
                incarnation_id: uuid::Uuid::from_u128(id as u128),
                kafka_addr: format!("h:{id}"),
                internal_addr: format!("h:{id}"),
                rack: None,
            })
            .unwrap();
        }
        view.apply(&Command::CreateTopicAssigned {
            name: "t".into(),
            topic_id: uuid::Uuid::from_u128(9),
            assignment: vec![vec![1, 2], vec![2, 1]],
            configs: [
                (LEADER_THROTTLED_REPLICAS.to_string(), "0:1,0:2".to_string()),
                (FOLLOWER_THROTTLED_REPLICAS.to_string(), "0:3".to_string()),
            ]
            .into_iter()
            .collect(),
        })
        .unwrap();
        view
    }

    // Goal: the leader throttles only a listed partition's copy to a replica outside the ISR;
    // an in-sync follower and an unlisted partition are never throttled.
    #[test]
    fn the_leader_throttles_only_listed_copies_outside_the_isr() {
        let mut view = view_with_moving_partition();
        assert_eq!(view.topics["t"].partitions[0].leader, Some(1));
        assert!(!ReplicationThrottle::leader_throttles(&view, "t", 0, 2), "in the ISR");
        assert!(!ReplicationThrottle::leader_throttles(&view, "t", 1, 3), "partition 1 is not listed");
        // Broker 3 joins partition 0's replicas (a reassignment adding it): not in the ISR yet.
        let topic = view.topics.get_mut("t").unwrap();
        topic.partitions[0].replicas.push(3);
        assert!(ReplicationThrottle::leader_throttles(&view, "t", 0, 3));
        assert!(!ReplicationThrottle::leader_throttles(&view, "nope", 0, 3));
        assert!(!ReplicationThrottle::leader_throttles(&view, "t", 7, 3));
    }

    // Goal: the follower side holds a listed partition back only while its rate is over the
    // cap, and a cap of Long.MAX_VALUE (Kafka's default) is no cap.
    #[tokio::test(start_paused = true)]
    async fn the_follower_holds_back_only_over_its_cap() {
        let mut view = view_with_moving_partition();
        view.topics.get_mut("t").unwrap().partitions[0].replicas.push(3);
        let throttle = ReplicationThrottle::new(3, ThrottledBytes::default());
        throttle.update(&view);
        assert!(!throttle.follower_throttles("t", 0), "no cap set");
        let set = [(FOLLOWER_REPLICATION_THROTTLED_RATE.to_string(), "1000".to_string())].into_iter().collect();
        view.apply(&Command::AlterBrokerConfigs { scope: BrokerConfigScope::Broker(3), set, delete: vec![] }).unwrap();
        throttle.update(&view);
        assert!(throttle.follower_throttles("t", 0));
        assert!(!throttle.follower_holds_back("t", 0));
        // 10 s at least is the rate's window: 20,000 bytes at once is 2,000 B/s, over 1,000.
        throttle.record(Side::Follower, 20_000);
        assert!(throttle.follower_holds_back("t", 0));
        assert!(!throttle.follower_holds_back("t", 1), "not listed");
        assert!(!throttle.over_cap(Side::Leader), "the leader side has no cap");
    }
}
