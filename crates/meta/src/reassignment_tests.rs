//! The reassignment state transitions, command by command on a plain view: start, completion
//! once the adding replicas are in the ISR, the leader moved off a removed broker, cancel, and
//! the refusals. No Raft, no I/O.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::commands::Command;
use crate::error::CommandError;
use crate::view::BrokerId;
use crate::view::MetadataView;
use crate::view::PartitionRecord;
use crate::view::Reassignment;

const TOPIC: Uuid = Uuid::from_u128(7);

/// Brokers 1..=4 registered; topic "t" with one partition on replicas [1, 2], leader 1.
fn cluster() -> MetadataView {
    let mut view = MetadataView::default();
    for broker_id in 1..=4 {
        view.apply(&Command::RegisterBroker {
            broker_id,
            incarnation_id: Uuid::from_u128(broker_id as u128),
            kafka_addr: format!("h:{broker_id}"),
            internal_addr: format!("h:{broker_id}"),
            rack: None,
        })
        .unwrap();
    }
    view.apply(&Command::CreateTopic {
        name: "t".into(),
        topic_id: TOPIC,
        partition_count: 1,
        replication_factor: 2,
        configs: BTreeMap::new(),
    })
    .unwrap();
    // Placement chose the replicas; pin them so the tests read plainly.
    let partition = &mut view.topics.get_mut("t").unwrap().partitions[0];
    partition.replicas = vec![1, 2];
    partition.isr = vec![1, 2];
    partition.leader = Some(1);
    view
}

fn partition(view: &MetadataView) -> PartitionRecord {
    view.topics["t"].partitions[0].clone()
}

fn start(view: &mut MetadataView, target: &[BrokerId]) -> Result<(), CommandError> {
    view.apply(&Command::StartReassignment { topic_id: TOPIC, partition: 0, target: target.to_vec() }).map(|_| ())
}

fn cancel(view: &mut MetadataView) -> Result<(), CommandError> {
    view.apply(&Command::CancelReassignment { topic_id: TOPIC, partition: 0 }).map(|_| ())
}

/// The leader's ISR proposal, as `replication::isr` would send it.
fn change_isr(view: &mut MetadataView, isr: &[BrokerId]) -> Result<(), CommandError> {
    let p = partition(view);
    view.apply(&Command::ChangeIsr {
        topic_id: TOPIC,
        partition: 0,
        leader: p.leader.unwrap(),
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        isr: isr.to_vec(),
    })
    .map(|_| ())
}

#[test]
fn a_started_reassignment_adds_the_new_replicas_as_followers() {
    let mut view = cluster();
    let before = partition(&view);
    start(&mut view, &[2, 3]).unwrap();
    let p = partition(&view);
    assert_eq!(p.replicas, vec![2, 3, 1], "target first, then the replicas being removed");
    assert_eq!(p.isr, vec![1, 2], "the adding replica is not in the ISR yet");
    assert_eq!(p.leader, Some(1));
    assert_eq!(p.leader_epoch, before.leader_epoch);
    assert_eq!(p.partition_epoch, before.partition_epoch + 1);
    let reassignment = view.reassignment(TOPIC, 0).unwrap();
    assert_eq!(reassignment, &Reassignment { original: vec![1, 2], target: vec![2, 3] });
    assert_eq!((reassignment.adding(), reassignment.removing()), (vec![3], vec![1]));
}

#[test]
fn it_completes_when_every_target_replica_joins_the_isr_and_the_leader_moves() {
    let mut view = cluster();
    start(&mut view, &[2, 3]).unwrap();
    let before = partition(&view);
    change_isr(&mut view, &[1, 2, 3]).unwrap();
    let p = partition(&view);
    assert_eq!(p.replicas, vec![2, 3]);
    assert_eq!(p.isr, vec![2, 3], "ISR := target: never smaller than the target");
    assert_eq!(p.leader, Some(2), "the removed leader gives way to the first target replica");
    assert_eq!(p.leader_epoch, before.leader_epoch + 1);
    assert!(view.reassignment(TOPIC, 0).is_none());
    assert!(view.reassignments.is_empty());
}

#[test]
fn a_leader_that_stays_keeps_its_epoch() {
    let mut view = cluster();
    start(&mut view, &[1, 3]).unwrap();
    let before = partition(&view);
    change_isr(&mut view, &[1, 2, 3]).unwrap();
    let p = partition(&view);
    assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![1, 3], vec![1, 3], Some(1)));
    assert_eq!(p.leader_epoch, before.leader_epoch);
}

#[test]
fn it_waits_while_a_target_replica_is_out_of_the_isr() {
    let mut view = cluster();
    start(&mut view, &[2, 3, 4]).unwrap();
    change_isr(&mut view, &[1, 2, 3]).unwrap();
    assert!(view.reassignment(TOPIC, 0).is_some(), "4 has not caught up");
    assert_eq!(partition(&view).replicas, vec![2, 3, 4, 1]);
    // The old ISR member 2 falling behind does not complete anything either.
    change_isr(&mut view, &[1, 3]).unwrap();
    assert!(view.reassignment(TOPIC, 0).is_some());
    change_isr(&mut view, &[1, 2, 3, 4]).unwrap();
    assert_eq!(partition(&view).isr, vec![2, 3, 4]);
}

#[test]
fn a_pure_shrink_or_reorder_completes_at_once() {
    let mut view = cluster();
    start(&mut view, &[2]).unwrap();
    let p = partition(&view);
    assert_eq!((p.replicas, p.isr, p.leader), (vec![2], vec![2], Some(2)));
    assert!(view.reassignments.is_empty());

    let mut view = cluster();
    start(&mut view, &[2, 1]).unwrap();
    let p = partition(&view);
    assert_eq!((p.replicas, p.leader), (vec![2, 1], Some(1)), "only the preference changes");
    assert!(view.reassignments.is_empty());
}

#[test]
fn the_move_waits_for_a_live_successor_when_the_leader_leaves() {
    let mut view = cluster();
    start(&mut view, &[3]).unwrap();
    let epoch = view.brokers[&3].broker_epoch;
    // 3 is fenced while it copies: it cannot join the ISR, so the move waits for it.
    view.apply(&Command::FenceBroker { broker_id: 3, broker_epoch: epoch }).unwrap();
    let p = partition(&view);
    // A fenced broker cannot be added to the ISR.
    assert!(change_isr(&mut view, &[1, 2, 3]).is_err());
    assert_eq!(p.leader, Some(1));
    view.apply(&Command::UnfenceBroker { broker_id: 3, broker_epoch: epoch }).unwrap();
    change_isr(&mut view, &[1, 2, 3]).unwrap();
    let p = partition(&view);
    assert_eq!((p.replicas, p.isr, p.leader), (vec![3], vec![3], Some(3)));
}

#[test]
fn cancel_restores_the_original_replicas() {
    let mut view = cluster();
    start(&mut view, &[3, 4]).unwrap();
    change_isr(&mut view, &[1, 2, 3]).unwrap();
    let before = partition(&view);
    cancel(&mut view).unwrap();
    let p = partition(&view);
    assert_eq!(p.replicas, vec![1, 2]);
    assert_eq!(p.isr, vec![1, 2], "the adding replica 3 leaves the ISR");
    assert_eq!(p.leader, Some(1));
    assert_eq!(p.leader_epoch, before.leader_epoch);
    assert_eq!(p.partition_epoch, before.partition_epoch + 1);
    assert!(view.reassignments.is_empty());
    assert_eq!(cancel(&mut view), Err(CommandError::NoReassignmentInProgress { topic_id: TOPIC, partition: 0 }));
}

#[test]
fn cancel_moves_leadership_off_an_adding_replica() {
    let mut view = cluster();
    start(&mut view, &[3, 4]).unwrap();
    change_isr(&mut view, &[1, 2, 3]).unwrap();
    view.apply(&Command::ElectLeader {
        topic_id: TOPIC,
        partition: 0,
        partition_epoch: partition(&view).partition_epoch,
        preferred: Some(3),
    })
    .unwrap();
    cancel(&mut view).unwrap();
    let p = partition(&view);
    assert_eq!((p.replicas, p.isr, p.leader), (vec![1, 2], vec![1, 2], Some(1)));
}

#[test]
fn a_new_target_replaces_the_move_in_progress() {
    let mut view = cluster();
    start(&mut view, &[3, 4]).unwrap();
    change_isr(&mut view, &[1, 2, 3]).unwrap();
    start(&mut view, &[1, 4]).unwrap();
    let p = partition(&view);
    assert_eq!(p.replicas, vec![1, 4, 2], "reverted to [1, 2] first, then moved towards [1, 4]");
    assert_eq!(p.isr, vec![1, 2]);
    assert_eq!(view.reassignment(TOPIC, 0).unwrap().original, vec![1, 2]);
}

#[test]
fn invalid_targets_are_refused_and_change_nothing() {
    let mut view = cluster();
    let before = view.clone();
    for target in [vec![], vec![2, 2], vec![2, 9]] {
        let error = start(&mut view, &target).unwrap_err();
        assert!(matches!(error, CommandError::InvalidReplicaAssignment { .. }), "{target:?}: {error}");
        assert_eq!(error.kafka_error_code(), 39);
    }
    let unknown = view.apply(&Command::StartReassignment { topic_id: TOPIC, partition: 5, target: vec![1] });
    assert_eq!(unknown.unwrap_err().kafka_error_code(), 3);
    let unknown_topic =
        view.apply(&Command::StartReassignment { topic_id: Uuid::from_u128(99), partition: 0, target: vec![1] });
    assert!(unknown_topic.is_err());
    assert_eq!(view, before);
}

#[test]
fn cancel_is_refused_when_no_original_replica_is_in_sync() {
    let mut view = cluster();
    start(&mut view, &[3, 4]).unwrap();
    change_isr(&mut view, &[1, 3]).unwrap();
    // The leader moves to 3, and the original replicas fall out of the ISR.
    view.apply(&Command::ElectLeader {
        topic_id: TOPIC,
        partition: 0,
        partition_epoch: partition(&view).partition_epoch,
        preferred: Some(3),
    })
    .unwrap();
    change_isr(&mut view, &[3]).unwrap();
    let before = view.clone();
    assert!(matches!(cancel(&mut view), Err(CommandError::InvalidReplicaAssignment { .. })));
    assert_eq!(view, before);
}

#[test]
fn deleting_the_topic_forgets_its_reassignments() {
    let mut view = cluster();
    start(&mut view, &[3, 4]).unwrap();
    view.apply(&Command::DeleteTopic { name: "t".into() }).unwrap();
    assert!(view.reassignments.is_empty());
}
