//! Deterministic tests of the state-machine commands: validation, epoch checks, placement,
//! fencing and producer-id blocks. No Raft, no I/O: a view and a sequence of commands.

use super::*;

fn incarnation(broker_id: BrokerId) -> Uuid {
    Uuid::from_u128(0x1000 + broker_id as u128)
}

fn register(view: &mut MetadataView, broker_id: BrokerId) -> i64 {
    let outcome = view
        .apply(&Command::RegisterBroker {
            broker_id,
            incarnation_id: incarnation(broker_id),
            kafka_addr: format!("127.0.0.1:{}", 9000 + broker_id),
            internal_addr: format!("127.0.0.1:{}", 9100 + broker_id),
            rack: None,
        })
        .unwrap();
    match outcome {
        CommandOutcome::BrokerRegistered { broker_epoch } => broker_epoch,
        other => panic!("unexpected {other:?}"),
    }
}

fn cluster(brokers: &[BrokerId]) -> MetadataView {
    let mut view = MetadataView::default();
    for broker_id in brokers {
        register(&mut view, *broker_id);
    }
    view
}

fn create(name: &str, id: u128, partition_count: u32, replication_factor: u16) -> Command {
    Command::CreateTopic {
        name: name.to_string(),
        topic_id: Uuid::from_u128(id),
        partition_count,
        replication_factor,
        configs: BTreeMap::new(),
    }
}

fn partition_of(view: &MetadataView, name: &str, partition: usize) -> PartitionRecord {
    view.topics[name].partitions[partition].clone()
}

#[test]
fn create_topic_places_replicas_and_balances_leaders() {
    let mut view = cluster(&[1, 2, 3]);
    let outcome = view.apply(&create("orders", 1, 6, 3)).unwrap();
    let CommandOutcome::TopicCreated { partitions, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(partitions.len(), 6);
    assert_eq!(view.leader_counts(), BTreeMap::from([(1, 2), (2, 2), (3, 2)]));
    for partition in &partitions {
        assert_eq!(partition.isr, partition.replicas);
        assert_eq!(partition.leader, Some(partition.replicas[0]));
        assert_eq!((partition.leader_epoch, partition.partition_epoch), (0, 0));
    }
    // A second topic keeps the balance across topics.
    view.apply(&create("payments", 2, 3, 1)).unwrap();
    assert_eq!(view.leader_counts(), BTreeMap::from([(1, 3), (2, 3), (3, 3)]));
}

#[test]
fn create_topic_validates_input_without_side_effects() {
    let mut view = cluster(&[1, 2]);
    view.apply(&create("orders", 1, 1, 1)).unwrap();
    let before = view.clone();
    let cases: Vec<(Command, i16)> = vec![
        (create("orders", 2, 1, 1), 36),
        (create("other", 1, 1, 1), 36),
        (create("bad/name", 3, 1, 1), 17),
        (create("..", 3, 1, 1), 17),
        (create(&"x".repeat(250), 3, 1, 1), 17),
        (create("zero", 3, 0, 1), 37),
        (create("huge", 3, TOPIC_PARTITIONS_MAX + 1, 1), 37),
        (create("wide", 3, 1, 3), 38),
        (create("none", 3, 1, 0), 38),
        (
            Command::CreateTopic {
                name: "configured".into(),
                topic_id: Uuid::from_u128(3),
                partition_count: 1,
                replication_factor: 1,
                configs: BTreeMap::from([("min.insync.replicas".to_string(), "0".to_string())]),
            },
            40,
        ),
    ];
    for (command, code) in cases {
        let error = view.apply(&command).unwrap_err();
        assert_eq!(error.kafka_error_code(), code, "{command:?} -> {error}");
        assert_eq!(view, before, "a rejected command changes nothing");
    }
}

#[test]
fn replication_factor_counts_only_live_brokers() {
    let mut view = cluster(&[1, 2, 3]);
    let epoch = view.brokers[&3].broker_epoch;
    view.apply(&Command::FenceBroker { broker_id: 3, broker_epoch: epoch }).unwrap();
    let error = view.apply(&create("t", 1, 1, 3)).unwrap_err();
    assert_eq!(error, CommandError::InvalidReplicationFactor { requested: 3, live_brokers: 2 });
    view.apply(&create("t", 1, 4, 2)).unwrap();
    assert!(view.topics["t"].partitions.iter().all(|p| !p.replicas.contains(&3)));
}

fn create_assigned(name: &str, id: u128, assignment: &[&[BrokerId]]) -> Command {
    Command::CreateTopicAssigned {
        name: name.to_string(),
        topic_id: Uuid::from_u128(id),
        assignment: assignment.iter().map(|replicas| replicas.to_vec()).collect(),
        configs: BTreeMap::new(),
    }
}

#[test]
fn create_topic_assigned_uses_the_given_replicas_and_only_live_ones_in_the_isr() {
    // Goal: Kafka's CreateTopics with assignments: partition i gets exactly assignment[i]
    // (order kept: the first live replica leads), the ISR is its live replicas, and the topic's
    // replication factor is the assignment's width. Invalid assignments change nothing and
    // answer INVALID_REPLICA_ASSIGNMENT (39).
    let mut view = cluster(&[1, 2, 3]);
    let epoch = view.brokers[&1].broker_epoch;
    view.apply(&Command::FenceBroker { broker_id: 1, broker_epoch: epoch }).unwrap();
    let outcome = view.apply(&create_assigned("given", 1, &[&[3, 2], &[1, 3]])).unwrap();
    let CommandOutcome::TopicCreated { partitions, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(partitions.len(), 2);
    assert_eq!(
        (partitions[0].replicas.clone(), partitions[0].isr.clone(), partitions[0].leader),
        (vec![3, 2], vec![3, 2], Some(3))
    );
    assert_eq!(
        (partitions[1].replicas.clone(), partitions[1].isr.clone(), partitions[1].leader),
        (vec![1, 3], vec![3], Some(3))
    );
    assert_eq!(view.topics["given"].replication_factor, 2);
    assert_eq!(partition_of(&view, "given", 1).replicas, vec![1, 3]);

    let before = view.clone();
    let cases: Vec<(Command, i16)> = vec![
        (create_assigned("given", 2, &[&[2]]), 36),
        (create_assigned("empty", 3, &[]), 37),
        (create_assigned("hollow", 4, &[&[]]), 39),
        (create_assigned("uneven", 5, &[&[2, 3], &[2]]), 39),
        (create_assigned("twice", 6, &[&[2, 2]]), 39),
        (create_assigned("unknown", 7, &[&[2, 9]]), 39),
        (create_assigned("fenced", 8, &[&[1]]), 39),
    ];
    for (command, code) in cases {
        let error = view.apply(&command).unwrap_err();
        assert_eq!(error.kafka_error_code(), code, "{command:?} -> {error}");
        assert_eq!(view, before, "a rejected command changes nothing");
    }
}

#[test]
fn create_partitions_assigned_adds_partitions_on_the_given_replicas() {
    // Goal: Kafka's CreatePartitions with assignments: the new partitions get exactly the
    // brokers given, as wide as the topic's partitions; a different width, an unknown broker or
    // no assignment at all changes nothing.
    let mut view = cluster(&[1, 2, 3]);
    view.apply(&create("grown", 1, 1, 2)).unwrap();
    let add = |assignment: &[&[BrokerId]]| Command::CreatePartitionsAssigned {
        name: "grown".to_string(),
        assignment: assignment.iter().map(|replicas| replicas.to_vec()).collect(),
    };
    let outcome = view.apply(&add(&[&[3, 1], &[2, 3]])).unwrap();
    let CommandOutcome::PartitionsCreated { partitions, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(
        partitions.iter().map(|p| (p.partition, p.replicas.clone())).collect::<Vec<_>>(),
        vec![(1, vec![3, 1]), (2, vec![2, 3])]
    );
    assert_eq!(view.topics["grown"].partitions.len(), 3);
    assert_eq!(partition_of(&view, "grown", 2).leader, Some(2));
    let before = view.clone();
    for (command, code) in [(add(&[&[1]]), 39), (add(&[&[1, 7]]), 39), (add(&[]), 37)] {
        let error = view.apply(&command).unwrap_err();
        assert_eq!(error.kafka_error_code(), code, "{command:?} -> {error}");
        assert_eq!(view, before);
    }
    let unknown = Command::CreatePartitionsAssigned { name: "nope".to_string(), assignment: vec![vec![1]] };
    assert_eq!(view.apply(&unknown).unwrap_err().kafka_error_code(), 3);
}

#[test]
fn change_isr_checks_leader_and_epochs() {
    let mut view = cluster(&[1, 2, 3]);
    view.apply(&create("t", 7, 1, 3)).unwrap();
    let topic_id = Uuid::from_u128(7);
    let p = partition_of(&view, "t", 0);
    let leader = p.leader.unwrap();
    let follower = p.replicas[1];
    let shrunk: Vec<BrokerId> = p.isr.iter().copied().filter(|b| *b != follower).collect();
    let change = |leader: BrokerId, leader_epoch: i32, partition_epoch: i32, isr: Vec<BrokerId>| Command::ChangeIsr {
        topic_id,
        partition: 0,
        leader,
        leader_epoch,
        partition_epoch,
        isr,
    };

    let outcome = view.apply(&change(leader, 0, 0, shrunk.clone())).unwrap();
    let CommandOutcome::PartitionChanged { partition, .. } = outcome else { panic!() };
    assert_eq!(partition.isr, shrunk);
    assert_eq!((partition.leader_epoch, partition.partition_epoch), (0, 1));

    // The same proposal again is stale: the partition epoch moved on.
    let before = view.clone();
    let error = view.apply(&change(leader, 0, 0, p.isr.clone())).unwrap_err();
    assert_eq!(error, CommandError::StalePartitionEpoch { proposed: 0, current: 1 });
    assert_eq!(error.kafka_error_code(), 95);
    // A follower may not propose.
    let error = view.apply(&change(follower, 0, 1, p.isr.clone())).unwrap_err();
    assert!(matches!(error, CommandError::NotPartitionLeader { .. }));
    // A future leader epoch is unknown; an ISR without the leader is malformed.
    assert!(matches!(view.apply(&change(leader, 1, 1, p.isr.clone())), Err(CommandError::UnknownLeaderEpoch { .. })));
    assert!(matches!(view.apply(&change(leader, 0, 1, vec![follower])), Err(CommandError::InvalidRequest { .. })));
    assert!(matches!(view.apply(&change(leader, 0, 1, vec![leader, 99])), Err(CommandError::IneligibleReplica { .. })));
    assert_eq!(view, before);

    // Growing the ISR back with the current epochs works.
    view.apply(&change(leader, 0, 1, p.isr.clone())).unwrap();
    assert_eq!(partition_of(&view, "t", 0).partition_epoch, 2);
}

#[test]
fn fencing_the_leader_moves_leadership_within_the_isr() {
    let mut view = cluster(&[1, 2, 3]);
    view.apply(&create("t", 7, 3, 3)).unwrap();
    let before = partition_of(&view, "t", 0);
    let old_leader = before.leader.unwrap();
    let epoch = view.brokers[&old_leader].broker_epoch;
    view.apply(&Command::FenceBroker { broker_id: old_leader, broker_epoch: epoch }).unwrap();
    let after = partition_of(&view, "t", 0);
    assert_ne!(after.leader, Some(old_leader));
    assert!(after.leader.is_some_and(|l| before.isr.contains(&l)));
    assert_eq!(after.leader_epoch, before.leader_epoch + 1);
    assert!(after.partition_epoch > before.partition_epoch);
    assert!(!after.isr.contains(&old_leader));
    // A stale leader's ISR proposal is now fenced by its old leader epoch.
    let error = view
        .apply(&Command::ChangeIsr {
            topic_id: Uuid::from_u128(7),
            partition: 0,
            leader: after.leader.unwrap(),
            leader_epoch: before.leader_epoch,
            partition_epoch: after.partition_epoch,
            isr: after.isr.clone(),
        })
        .unwrap_err();
    assert_eq!(error.kafka_error_code(), 74);
}

#[test]
fn last_isr_member_is_kept_and_leads_again_when_unfenced() {
    let mut view = cluster(&[1, 2]);
    view.apply(&create("single", 9, 1, 1)).unwrap();
    let only = partition_of(&view, "single", 0).leader.unwrap();
    let epoch = view.brokers[&only].broker_epoch;
    view.apply(&Command::FenceBroker { broker_id: only, broker_epoch: epoch }).unwrap();
    let offline = partition_of(&view, "single", 0);
    assert_eq!(offline.leader, None, "no unclean election");
    assert_eq!(offline.isr, vec![only]);
    let error = view
        .apply(&Command::ElectLeader {
            topic_id: Uuid::from_u128(9),
            partition: 0,
            partition_epoch: offline.partition_epoch,
            preferred: None,
        })
        .unwrap_err();
    assert_eq!(error.kafka_error_code(), 83);
    view.apply(&Command::UnfenceBroker { broker_id: only, broker_epoch: epoch }).unwrap();
    let back = partition_of(&view, "single", 0);
    assert_eq!(back.leader, Some(only));
    assert_eq!(back.leader_epoch, offline.leader_epoch + 1);
}

#[test]
fn elect_leader_prefers_first_live_isr_replica_and_checks_epoch() {
    let mut view = cluster(&[1, 2, 3]);
    view.apply(&create("t", 7, 1, 3)).unwrap();
    let topic_id = Uuid::from_u128(7);
    let p = partition_of(&view, "t", 0);
    let target = p.replicas[2];
    view.apply(&Command::ElectLeader { topic_id, partition: 0, partition_epoch: 0, preferred: Some(target) }).unwrap();
    let moved = partition_of(&view, "t", 0);
    assert_eq!((moved.leader, moved.leader_epoch, moved.partition_epoch), (Some(target), 1, 1));
    let error =
        view.apply(&Command::ElectLeader { topic_id, partition: 0, partition_epoch: 0, preferred: None }).unwrap_err();
    assert!(matches!(error, CommandError::StalePartitionEpoch { .. }));
    view.apply(&Command::ElectLeader { topic_id, partition: 0, partition_epoch: 1, preferred: None }).unwrap();
    assert_eq!(partition_of(&view, "t", 0).leader, Some(p.replicas[0]), "preferred replica leads again");
}

#[test]
fn unclean_election_only_when_no_isr_member_is_live() {
    let mut view = cluster(&[1, 2, 3]);
    view.apply(&create("u", 11, 1, 3)).unwrap();
    let topic_id = Uuid::from_u128(11);
    let p = partition_of(&view, "u", 0);
    let (leader, follower, other) = (p.replicas[0], p.replicas[1], p.replicas[2]);
    let isr_change = Command::ChangeIsr {
        topic_id,
        partition: 0,
        leader,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        isr: vec![leader],
    };
    view.apply(&isr_change).unwrap();
    let shrunk = partition_of(&view, "u", 0);
    let unclean =
        |partition_epoch, leader| Command::ElectLeaderUnclean { topic_id, partition: 0, partition_epoch, leader };
    // The ISR member is live: refused.
    let error = view.apply(&unclean(shrunk.partition_epoch, follower)).unwrap_err();
    assert!(matches!(error, CommandError::IneligibleReplica { .. }), "{error}");
    let epoch = view.brokers[&leader].broker_epoch;
    view.apply(&Command::FenceBroker { broker_id: leader, broker_epoch: epoch }).unwrap();
    let offline = partition_of(&view, "u", 0);
    assert_eq!((offline.leader, offline.isr.clone()), (None, vec![leader]));
    // A stale epoch and a fenced broker are refused; a live out-of-sync replica is elected.
    assert!(view.apply(&unclean(shrunk.partition_epoch, follower)).is_err());
    assert!(view.apply(&unclean(offline.partition_epoch, leader)).is_err());
    view.apply(&unclean(offline.partition_epoch, other)).unwrap();
    let elected = partition_of(&view, "u", 0);
    assert_eq!((elected.leader, elected.isr), (Some(other), vec![other]));
    assert_eq!(elected.leader_epoch, offline.leader_epoch + 1);
}

#[test]
fn producer_id_blocks_never_overlap_and_need_a_current_registration() {
    let mut view = cluster(&[1]);
    let epoch = view.brokers[&1].broker_epoch;
    let mut firsts = Vec::new();
    for _ in 0..3 {
        match view.apply(&Command::AllocateProducerIds { broker_id: 1, broker_epoch: epoch }).unwrap() {
            CommandOutcome::ProducerIdsAllocated { first_producer_id, count } => {
                assert_eq!(count, PRODUCER_IDS_PER_BLOCK);
                firsts.push(first_producer_id);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(firsts, vec![0, 1000, 2000]);
    let error = view.apply(&Command::AllocateProducerIds { broker_id: 1, broker_epoch: epoch + 5 }).unwrap_err();
    assert_eq!(error.kafka_error_code(), 77);
    let error = view.apply(&Command::AllocateProducerIds { broker_id: 2, broker_epoch: 0 }).unwrap_err();
    assert_eq!(error.kafka_error_code(), 102);
    view.next_producer_id = i64::MAX - 10;
    assert_eq!(
        view.apply(&Command::AllocateProducerIds { broker_id: 1, broker_epoch: epoch }),
        Err(CommandError::ProducerIdsExhausted)
    );
}

#[test]
fn reregistration_is_idempotent_per_incarnation() {
    let mut view = cluster(&[1]);
    let first = view.brokers[&1].broker_epoch;
    assert_eq!(register(&mut view, 1), first, "same incarnation: same epoch");
    let outcome = view
        .apply(&Command::RegisterBroker {
            broker_id: 1,
            incarnation_id: Uuid::from_u128(42),
            kafka_addr: "h:1".into(),
            internal_addr: "h:2".into(),
            rack: None,
        })
        .unwrap();
    assert_eq!(outcome, CommandOutcome::BrokerRegistered { broker_epoch: first + 1 });
    let error = view.apply(&Command::FenceBroker { broker_id: 1, broker_epoch: first }).unwrap_err();
    assert!(matches!(error, CommandError::StaleBrokerEpoch { .. }));
}

// Goal: a broker that comes back as a new process (it may have lost unsynced data) leaves the
// ISRs it shares with others and the leadership it held, keeps the ISR where it is the last
// member and leads that again; the same process re-registering changes nothing.
#[test]
fn a_restarted_broker_leaves_shared_isrs_and_keeps_the_last_one() {
    let mut view = cluster(&[1, 2]);
    view.apply(&create("shared", 1, 1, 2)).unwrap();
    view.apply(&create("alone", 2, 1, 1)).unwrap();
    let shared_before = partition_of(&view, "shared", 0);
    let alone_before = partition_of(&view, "alone", 0);
    let led_by_1 = if shared_before.leader == Some(1) { "shared" } else { "alone" };
    assert_eq!(partition_of(&view, led_by_1, 0).leader, Some(1), "one partition is led by broker 1");
    register(&mut view, 1);
    assert_eq!(partition_of(&view, "shared", 0), shared_before, "same incarnation: nothing changes");
    let restart = |view: &mut MetadataView, broker_id: BrokerId| {
        view.apply(&Command::RegisterBrokerListeners {
            broker_id,
            incarnation_id: Uuid::from_u128(99),
            kafka_addr: "h:1".into(),
            internal_addr: "h:1".into(),
            rack: None,
            listeners: BTreeMap::from([("SASL_SSL".to_string(), "h:2".to_string())]),
        })
        .unwrap()
    };
    let alone_broker = alone_before.replicas[0];
    restart(&mut view, 1);
    let shared = partition_of(&view, "shared", 0);
    assert_eq!(shared.isr, vec![2], "broker 1 left the shared ISR");
    assert_eq!(shared.leader, Some(2));
    assert!(shared.partition_epoch > shared_before.partition_epoch);
    let alone = partition_of(&view, "alone", 0);
    assert_eq!(alone.isr, vec![alone_broker], "the last member stays");
    assert_eq!(alone.leader, Some(alone_broker), "and leads (again)");
    assert_eq!(view.brokers[&1].listeners["SASL_SSL"], "h:2");
}

#[test]
fn topics_can_grow_change_config_and_be_deleted() {
    let mut view = cluster(&[1, 2, 3]);
    view.apply(&create("t", 7, 2, 2)).unwrap();
    let grow = |n| Command::CreatePartitions { name: "t".into(), partition_count: n };
    assert_eq!(view.apply(&grow(2)).unwrap_err().kafka_error_code(), 37);
    let CommandOutcome::PartitionsCreated { partitions, .. } = view.apply(&grow(5)).unwrap() else { panic!() };
    assert_eq!(partitions.iter().map(|p| p.partition).collect::<Vec<_>>(), vec![2, 3, 4]);
    assert!(partitions.iter().all(|p| p.replicas.len() == 2));

    let alter = |set: &[(&str, &str)], delete: &[&str]| Command::AlterTopicConfigs {
        name: "t".into(),
        set: set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        delete: delete.iter().map(|k| k.to_string()).collect(),
    };
    view.apply(&alter(&[("retention.ms", "1000"), ("cleanup.policy", "compact")], &[])).unwrap();
    assert_eq!(view.topics["t"].config.retention_ms, 1000);
    assert_eq!(view.topics["t"].config_overrides.len(), 2);
    assert_eq!(view.apply(&alter(&[("segment.bytes", "1")], &[])).unwrap_err().kafka_error_code(), 40);
    view.apply(&alter(&[], &["retention.ms"])).unwrap();
    assert_eq!(view.topics["t"].config.retention_ms, TopicConfig::default().retention_ms);

    view.apply(&Command::DeleteTopic { name: "t".into() }).unwrap();
    assert!(view.topics.is_empty() && view.topic_names.is_empty());
    assert_eq!(view.apply(&Command::DeleteTopic { name: "t".into() }).unwrap_err().kafka_error_code(), 3);
    // An ISR change for the deleted topic's id is rejected, even if the name is re-created.
    view.apply(&create("t", 8, 1, 1)).unwrap();
    let error = view
        .apply(&Command::ElectLeader {
            topic_id: Uuid::from_u128(7),
            partition: 0,
            partition_epoch: 0,
            preferred: None,
        })
        .unwrap_err();
    assert_eq!(error.kafka_error_code(), 100);
}

#[test]
fn the_same_commands_give_the_same_view() {
    let commands = vec![
        create("a", 1, 5, 2),
        create("b", 2, 3, 3),
        Command::CreatePartitions { name: "a".into(), partition_count: 9 },
        Command::DeleteTopic { name: "b".into() },
        create("c", 3, 4, 1),
    ];
    let run = || {
        let mut view = cluster(&[3, 1, 2]);
        for command in &commands {
            view.apply(command).unwrap();
        }
        postcard::to_allocvec(&view).unwrap()
    };
    assert_eq!(run(), run());
}

/// Invariants that must hold after any sequence of commands.
fn check_invariants(view: &MetadataView, step: usize) {
    assert_eq!(view.topics.len(), view.topic_names.len(), "step {step}: name index in sync");
    for (topic_id, name) in &view.topic_names {
        assert_eq!(view.topics[name].topic_id, *topic_id, "step {step}");
    }
    for topic in view.topics.values() {
        for (index, partition) in topic.partitions.iter().enumerate() {
            let context = format!("step {step}: {}/{index}", topic.name);
            assert_eq!(partition.partition as usize, index, "{context}");
            let mut replicas = partition.replicas.clone();
            replicas.sort_unstable();
            replicas.dedup();
            assert_eq!(replicas.len(), partition.replicas.len(), "{context}: distinct replicas");
            assert!(!partition.isr.is_empty(), "{context}: ISR never empty");
            assert!(partition.isr.iter().all(|b| partition.replicas.contains(b)), "{context}: ISR within replicas");
            if let Some(leader) = partition.leader {
                assert!(partition.isr.contains(&leader), "{context}: leader in ISR");
                assert!(view.is_live(leader), "{context}: leader is live");
            }
            assert!(partition.partition_epoch >= partition.leader_epoch, "{context}: epochs");
        }
    }
}

#[test]
fn random_command_sequences_keep_the_invariants() {
    use rand::rngs::StdRng;
    use rand::Rng;
    use rand::SeedableRng;

    let mut rng = StdRng::seed_from_u64(0x0eed_caff);
    let mut view = MetadataView::default();
    let mut last_producer_id = -1;
    let mut accepted: BTreeMap<String, usize> = BTreeMap::new();
    for step in 0..5_000 {
        let broker_id: BrokerId = rng.gen_range(1..=5);
        let name = format!("t{}", rng.gen_range(0..5));
        let existing = view.topics.get(&name).cloned();
        let broker_epoch = view.brokers.get(&broker_id).map_or(0, |b| b.broker_epoch) + rng.gen_range(-1..=0);
        let command = match rng.gen_range(0..12) {
            0 => Command::RegisterBroker {
                broker_id,
                incarnation_id: Uuid::from_u128(rng.gen_range(0..3)),
                kafka_addr: "h:1".into(),
                internal_addr: "h:2".into(),
                rack: None,
            },
            1 => Command::FenceBroker { broker_id, broker_epoch },
            2 => Command::UnfenceBroker { broker_id, broker_epoch },
            3 => Command::CreateTopic {
                name: name.clone(),
                topic_id: Uuid::from_u128(rng.gen_range(1..1_000_000)),
                partition_count: rng.gen_range(0..6),
                replication_factor: rng.gen_range(0..5),
                configs: BTreeMap::new(),
            },
            4 => Command::DeleteTopic { name },
            5 => Command::CreatePartitions { name, partition_count: rng.gen_range(0..10) },
            6 | 7 => {
                let Some(topic) = existing.filter(|t| !t.partitions.is_empty()) else { continue };
                let partition = &topic.partitions[rng.gen_range(0..topic.partitions.len())];
                let mut isr: Vec<BrokerId> = partition.replicas.iter().copied().filter(|_| rng.gen_bool(0.7)).collect();
                if rng.gen_bool(0.8) {
                    if let Some(leader) = partition.leader.filter(|l| !isr.contains(l)) {
                        isr.push(leader);
                    }
                }
                Command::ChangeIsr {
                    topic_id: topic.topic_id,
                    partition: partition.partition,
                    leader: if rng.gen_bool(0.8) { partition.leader.unwrap_or(broker_id) } else { broker_id },
                    leader_epoch: partition.leader_epoch + rng.gen_range(-1..=0),
                    partition_epoch: partition.partition_epoch + rng.gen_range(-1..=0),
                    isr,
                }
            }
            8 => {
                let Some(topic) = existing.filter(|t| !t.partitions.is_empty()) else { continue };
                let partition = &topic.partitions[rng.gen_range(0..topic.partitions.len())];
                let partition_epoch = partition.partition_epoch + rng.gen_range(-1..=0);
                if rng.gen_bool(0.3) {
                    Command::ElectLeaderUnclean {
                        topic_id: topic.topic_id,
                        partition: partition.partition,
                        partition_epoch,
                        leader: broker_id,
                    }
                } else {
                    Command::ElectLeader {
                        topic_id: topic.topic_id,
                        partition: partition.partition,
                        partition_epoch,
                        preferred: rng.gen_bool(0.5).then_some(broker_id),
                    }
                }
            }
            9 => Command::AlterTopicConfigs {
                name,
                set: BTreeMap::from([("retention.ms".to_string(), rng.gen_range(-2..100).to_string())]),
                delete: if rng.gen_bool(0.2) { vec!["segment.ms".to_string()] } else { Vec::new() },
            },
            10 => {
                let width = rng.gen_range(0..4);
                let partitions = rng.gen_range(0..4);
                let assignment = (0..partitions).map(|_| (0..width).map(|_| rng.gen_range(1..=6)).collect()).collect();
                Command::CreateTopicAssigned {
                    name,
                    topic_id: Uuid::from_u128(rng.gen_range(1..1_000_000)),
                    assignment,
                    configs: BTreeMap::new(),
                }
            }
            _ => Command::AllocateProducerIds { broker_id, broker_epoch },
        };
        let before = view.clone();
        let kind = format!("{command:?}").split([' ', '{']).next().unwrap_or_default().to_string();
        match view.apply(&command) {
            Ok(CommandOutcome::ProducerIdsAllocated { first_producer_id, .. }) => {
                assert!(first_producer_id > last_producer_id, "step {step}: producer ids only move forward");
                last_producer_id = first_producer_id;
                *accepted.entry(kind).or_insert(0) += 1;
            }
            Ok(_) => *accepted.entry(kind).or_insert(0) += 1,
            Err(error) => assert_eq!(view, before, "step {step}: rejected {command:?} ({error}) changed the view"),
        }
        check_invariants(&view, step);
        // Epochs never go backwards for a partition that still exists under the same id.
        for topic in before.topics.values() {
            let Some(now) = view.topic_by_id(topic.topic_id) else { continue };
            for (old, new) in topic.partitions.iter().zip(&now.partitions) {
                assert!(new.leader_epoch >= old.leader_epoch && new.partition_epoch >= old.partition_epoch);
            }
        }
    }
    // Every kind of command was also accepted, not only rejected. An unclean election is
    // accepted only on a partition whose whole ISR is fenced, which this generator reaches
    // rarely: the seed is one where it does (seed 0x0eed_cafe did until CreateTopicAssigned
    // joined the mix and changed the sequence).
    assert_eq!(accepted.len(), 12, "accepted kinds: {accepted:?}");
}

/// Goal: racks given at registration reach placement, for new topics and added partitions.
/// Method: six brokers, two per rack, registered in an order where load-only placement would
/// pair rack mates; every partition of a created and then grown topic spans three racks.
#[test]
fn registered_racks_spread_the_replicas_of_new_and_added_partitions() {
    let mut view = MetadataView::default();
    for (broker_id, rack) in [(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")] {
        view.apply(&Command::RegisterBroker {
            broker_id,
            incarnation_id: incarnation(broker_id),
            kafka_addr: format!("127.0.0.1:{}", 9000 + broker_id),
            internal_addr: format!("127.0.0.1:{}", 9100 + broker_id),
            rack: Some(rack.to_string()),
        })
        .unwrap();
    }
    assert_eq!(view.racks()[&4], "b");
    view.apply(&create("orders", 1, 6, 3)).unwrap();
    view.apply(&Command::CreatePartitions { name: "orders".to_string(), partition_count: 12 }).unwrap();
    let racks = view.racks();
    for partition in &view.topics["orders"].partitions {
        let mut on: Vec<&String> = partition.replicas.iter().map(|b| &racks[b]).collect();
        on.sort();
        on.dedup();
        assert_eq!(on.len(), 3, "partition {} on {:?}", partition.partition, partition.replicas);
    }
    assert_eq!(view.leader_counts().values().copied().collect::<Vec<_>>(), vec![2; 6]);
}

#[test]
fn an_empty_or_overlong_rack_is_refused_at_registration() {
    let mut view = MetadataView::default();
    for rack in [String::new(), "r".repeat(crate::limits::BROKER_RACK_BYTES_MAX + 1)] {
        let command = Command::RegisterBroker {
            broker_id: 1,
            incarnation_id: incarnation(1),
            kafka_addr: "127.0.0.1:9001".to_string(),
            internal_addr: "127.0.0.1:9101".to_string(),
            rack: Some(rack),
        };
        assert!(matches!(view.apply(&command), Err(CommandError::InvalidRequest { .. })));
        assert!(view.brokers.is_empty());
    }
}

/// Goal: AlterBrokerConfigs sets and deletes dynamic broker configs in the view, all or
/// nothing: a batch with one bad key changes nothing.
#[test]
fn alter_broker_configs_sets_and_deletes_all_or_nothing() {
    use crate::broker_config::{BrokerConfigScope, LEADER_REPLICATION_THROTTLED_RATE};
    let mut view = MetadataView::default();
    let set = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let alter = Command::AlterBrokerConfigs {
        scope: BrokerConfigScope::Broker(1),
        set: set(&[(LEADER_REPLICATION_THROTTLED_RATE, "1000")]),
        delete: vec![],
    };
    assert_eq!(view.apply(&alter).unwrap(), CommandOutcome::BrokerConfigsAltered);
    assert_eq!(view.broker_configs.long(1, LEADER_REPLICATION_THROTTLED_RATE), 1000);
    let bad = Command::AlterBrokerConfigs {
        scope: BrokerConfigScope::Broker(1),
        set: set(&[(LEADER_REPLICATION_THROTTLED_RATE, "5"), ("log.dirs", "/x")]),
        delete: vec![],
    };
    let before = view.clone();
    assert!(matches!(view.apply(&bad), Err(CommandError::InvalidConfig { .. })));
    assert_eq!(view, before);
    let delete = Command::AlterBrokerConfigs {
        scope: BrokerConfigScope::Broker(1),
        set: set(&[]),
        delete: vec![LEADER_REPLICATION_THROTTLED_RATE.to_string()],
    };
    view.apply(&delete).unwrap();
    assert_eq!(view.broker_configs, Default::default());
}
