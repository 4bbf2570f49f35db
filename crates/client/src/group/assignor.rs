//! Partition assignors of the classic (eager) consumer protocol: pure functions from the
//! members' subscriptions and the partition counts to an assignment, run by the group leader.
//!
//! Both follow Kafka's Java implementations exactly (`RangeAssignor`, `RoundRobinAssignor`), so
//! a group whose leader is a Java, librdkafka or Sluice member assigns the same way. Members are
//! ordered as Kafka orders them: members with a `group.instance.id` first, by that id; then the
//! others by member id. Topics no member's metadata knows (absent from `partitions_per_topic`)
//! are skipped; every member appears in the result, possibly with no partitions.

use std::collections::{BTreeMap, BTreeSet};

use crate::consumer::TopicPartition;

/// A partition assignment strategy (`partition.assignment.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    /// Kafka's `range`: per topic, consecutive ranges of partitions, the first members getting
    /// one more when the partitions do not divide evenly.
    Range,
    /// Kafka's `roundrobin`: every partition of every subscribed topic, in (topic, partition)
    /// order, dealt in turn to the members subscribed to its topic.
    RoundRobin,
}

impl Assignor {
    /// The protocol name in JoinGroup, as Kafka spells it.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
        }
    }

    /// The assignor of a protocol name, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Assignor> {
        match name {
            "range" => Some(Assignor::Range),
            "roundrobin" => Some(Assignor::RoundRobin),
            _ => None,
        }
    }

    /// The assignment of `partitions_per_topic` to `members`, by member id.
    pub fn assign(
        self,
        members: &[MemberSubscription],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        match self {
            Assignor::Range => range(members, partitions_per_topic),
            Assignor::RoundRobin => round_robin(members, partitions_per_topic),
        }
    }
}

/// One member's subscription, as the leader reads it from JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    /// Member id.
    pub member_id: String,
    /// Static member id (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
    /// Subscribed topics.
    pub topics: Vec<String>,
}

/// Members in Kafka's `MemberInfo` order: static members by instance id, then by member id.
fn sorted(members: &[MemberSubscription]) -> Vec<&MemberSubscription> {
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    });
    sorted
}

fn empty_assignment(members: &[MemberSubscription]) -> BTreeMap<String, Vec<TopicPartition>> {
    members.iter().map(|member| (member.member_id.clone(), Vec::new())).collect()
}

/// Kafka's RangeAssignor: for each topic, its `n` partitions are split among its `c`
/// subscribers in order; each gets `n / c`, and the first `n % c` one more.
pub fn range(
    members: &[MemberSubscription],
    partitions_per_topic: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut assignment = empty_assignment(members);
    let members = sorted(members);
    for (topic, &count) in partitions_per_topic {
        let subscribers: Vec<&&MemberSubscription> =
            members.iter().filter(|member| member.topics.contains(topic)).collect();
        if subscribers.is_empty() || count <= 0 {
            continue;
        }
        let per_member = count / subscribers.len() as i32;
        let extra = count % subscribers.len() as i32;
        for (index, member) in subscribers.iter().enumerate() {
            let index = index as i32;
            let start = per_member * index + index.min(extra);
            let length = per_member + i32::from(index < extra);
            let owned = assignment.entry(member.member_id.clone()).or_default();
            owned.extend((start..start + length).map(|partition| TopicPartition::new(topic.clone(), partition)));
        }
    }
    assignment
}

/// Kafka's RoundRobinAssignor: the partitions of every subscribed topic in (topic, partition)
/// order go one by one to the next member, in circular order, that subscribes to the topic.
pub fn round_robin(
    members: &[MemberSubscription],
    partitions_per_topic: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut assignment = empty_assignment(members);
    let members = sorted(members);
    if members.is_empty() {
        return assignment;
    }
    let subscribed: BTreeSet<&String> = members.iter().flat_map(|member| member.topics.iter()).collect();
    let mut next = 0usize;
    for topic in subscribed {
        let Some(&count) = partitions_per_topic.get(topic) else { continue };
        for partition in 0..count.max(0) {
            // Some member subscribes to `topic`, so this finds one within a full turn.
            while !members[next % members.len()].topics.contains(topic) {
                next += 1;
            }
            let member = members[next % members.len()];
            assignment.entry(member.member_id.clone()).or_default().push(TopicPartition::new(topic.clone(), partition));
            next += 1;
        }
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.to_string(),
            group_instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn counts(topics: &[(&str, i32)]) -> BTreeMap<String, i32> {
        topics.iter().map(|(topic, count)| (topic.to_string(), *count)).collect()
    }

    fn names(partitions: &[TopicPartition]) -> Vec<String> {
        partitions.iter().map(|tp| format!("{}p{}", tp.topic, tp.partition)).collect()
    }

    /// Kafka's RangeAssignor javadoc: C0 and C1 on t0 and t1 of 3 partitions each.
    #[test]
    fn range_matches_kafkas_documented_example() {
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let assignment = range(&members, &counts(&[("t0", 3), ("t1", 3)]));
        assert_eq!(names(&assignment["C0"]), ["t0p0", "t0p1", "t1p0", "t1p1"]);
        assert_eq!(names(&assignment["C1"]), ["t0p2", "t1p2"]);
    }

    #[test]
    fn range_splits_per_topic_among_its_subscribers_only() {
        let members = [member("a", &["t0"]), member("b", &["t0", "t1"]), member("c", &["t1"])];
        let assignment = range(&members, &counts(&[("t0", 4), ("t1", 5), ("unsubscribed", 3)]));
        assert_eq!(names(&assignment["a"]), ["t0p0", "t0p1"]);
        assert_eq!(names(&assignment["b"]), ["t0p2", "t0p3", "t1p0", "t1p1", "t1p2"]);
        assert_eq!(names(&assignment["c"]), ["t1p3", "t1p4"]);
    }

    #[test]
    fn more_members_than_partitions_leaves_some_empty_but_present() {
        let members = [member("m1", &["t"]), member("m2", &["t"]), member("m3", &["t"])];
        for assignor in [Assignor::Range, Assignor::RoundRobin] {
            let assignment = assignor.assign(&members, &counts(&[("t", 2)]));
            assert_eq!(names(&assignment["m1"]), ["tp0"], "{assignor:?}");
            assert_eq!(names(&assignment["m2"]), ["tp1"], "{assignor:?}");
            assert!(assignment["m3"].is_empty(), "{assignor:?}");
        }
    }

    /// Kafka's RoundRobinAssignor javadoc, first example: C0 and C1 on t0 and t1 of 3 each.
    #[test]
    fn round_robin_matches_kafkas_documented_example() {
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let assignment = round_robin(&members, &counts(&[("t0", 3), ("t1", 3)]));
        assert_eq!(names(&assignment["C0"]), ["t0p0", "t0p2", "t1p1"]);
        assert_eq!(names(&assignment["C1"]), ["t0p1", "t1p0", "t1p2"]);
    }

    /// Kafka's RoundRobinAssignor javadoc, second example: unequal subscriptions.
    #[test]
    fn round_robin_matches_kafkas_unequal_subscription_example() {
        let members = [member("C0", &["t0"]), member("C1", &["t0", "t1"]), member("C2", &["t0", "t1", "t2"])];
        let assignment = round_robin(&members, &counts(&[("t0", 1), ("t1", 2), ("t2", 3)]));
        assert_eq!(names(&assignment["C0"]), ["t0p0"]);
        assert_eq!(names(&assignment["C1"]), ["t1p0"]);
        assert_eq!(names(&assignment["C2"]), ["t1p1", "t2p0", "t2p1", "t2p2"]);
    }

    #[test]
    fn static_members_sort_first_by_instance_id() {
        let mut first = member("zzz", &["t"]);
        first.group_instance_id = Some("instance-a".to_string());
        let members = [member("aaa", &["t"]), first];
        let assignment = range(&members, &counts(&[("t", 3)]));
        assert_eq!(names(&assignment["zzz"]), ["tp0", "tp1"], "the static member orders first");
        assert_eq!(names(&assignment["aaa"]), ["tp2"]);
    }

    #[test]
    fn every_partition_is_assigned_exactly_once() {
        let members: Vec<MemberSubscription> =
            (0..5).map(|i| member(&format!("m{i}"), if i % 2 == 0 { &["a", "b"] } else { &["b"] })).collect();
        let topics = counts(&[("a", 7), ("b", 13), ("unknown", 0)]);
        for assignor in [Assignor::Range, Assignor::RoundRobin] {
            let assignment = assignor.assign(&members, &topics);
            let mut all: Vec<TopicPartition> = assignment.values().flatten().cloned().collect();
            all.sort();
            let expected: Vec<TopicPartition> = (0..7)
                .map(|p| TopicPartition::new("a", p))
                .chain((0..13).map(|p| TopicPartition::new("b", p)))
                .collect();
            assert_eq!(all, expected, "{assignor:?}");
            for (member_id, partitions) in &assignment {
                let subscription = members.iter().find(|m| &m.member_id == member_id).unwrap();
                assert!(partitions.iter().all(|tp| subscription.topics.contains(&tp.topic)), "{assignor:?}");
            }
        }
        assert_eq!(Assignor::from_name("roundrobin"), Some(Assignor::RoundRobin));
        assert_eq!(Assignor::from_name(Assignor::Range.name()), Some(Assignor::Range));
        assert_eq!(Assignor::from_name("cooperative-sticky"), None);
    }
}
