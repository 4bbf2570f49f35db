//! Partition reassignment (Kafka's KIP-455): the state machine's side, pure like the rest of
//! [`MetadataView::apply`].
//!
//! A reassignment moves a partition from its `original` replicas to `target` replicas without
//! a window where fewer replicas than the target hold the data ("add before remove"):
//!
//! 1. **Start** ([`Command::StartReassignment`](crate::Command)): the partition's replicas
//!    become `target ++ (original − target)`; the adding replicas are followers at once, open
//!    the partition and fetch from the leader, and the leader adds them to the ISR when they
//!    have caught up (the ordinary ISR expansion, `ChangeIsr`). A start on a partition already
//!    being moved first reverts the earlier move (as a cancel would) and starts from there.
//! 2. **Complete** (here, after every command that can grow the ISR or make a broker live):
//!    when every target replica is in the ISR, `replicas := target` and `ISR := target`. Kafka's
//!    rule (`isReassignmentComplete`: target ⊆ ISR) rather than "every adding replica is in the
//!    ISR": the ISR after the move is then the whole target, so it is never smaller than
//!    `min.insync.replicas` because of the move (the state machine does not know the broker's
//!    default for that setting, only the topic's). If the leader is being removed, the first
//!    live target replica takes over with a new leader epoch; if none is live the move waits.
//! 3. **Cancel** ([`Command::CancelReassignment`](crate::Command)): `replicas := original`,
//!    `ISR := ISR ∩ original`; a leader that was an adding replica gives way to the first live
//!    in-sync original replica. Refused when no original replica is in the ISR (cancelling
//!    would leave the partition without an in-sync replica).
//!
//! Every change bumps the partition epoch, so ISR proposals computed before it are refused as
//! stale; the leader epoch changes only with the leader.

use uuid::Uuid;

use crate::commands::first_eligible;
use crate::commands::CommandOutcome;
use crate::error::CommandError;
use crate::limits::REASSIGNMENT_REPLICAS_MAX;
use crate::view::BrokerId;
use crate::view::MetadataView;
use crate::view::Reassignment;

impl MetadataView {
    pub(crate) fn start_reassignment(
        &mut self,
        topic_id: Uuid,
        partition_index: u32,
        target: &[BrokerId],
    ) -> Result<CommandOutcome, CommandError> {
        self.partition(topic_id, partition_index)?;
        self.validate_replica_list(target)?;
        // A new target replaces a move in progress: start again from the original replicas.
        if self.reassignment(topic_id, partition_index).is_some() {
            self.revert(topic_id, partition_index)?;
        }
        let partition = self.partition_mut(topic_id, partition_index)?;
        let reassignment = Reassignment { original: partition.replicas.clone(), target: target.to_vec() };
        if reassignment.adding().is_empty() && reassignment.removing().is_empty() {
            // The same brokers, maybe in another order: only the preference changes.
            if partition.replicas != target {
                partition.replicas = target.to_vec();
                partition.partition_epoch += 1;
            }
            return Ok(CommandOutcome::PartitionChanged { topic_id, partition: partition.clone() });
        }
        partition.replicas = reassignment.full_replicas();
        partition.partition_epoch += 1;
        self.reassignments.entry(topic_id).or_default().insert(partition_index, reassignment);
        // A pure shrink (every target replica already in the ISR) completes at once.
        self.complete_reassignment(topic_id, partition_index);
        let partition = self.partition(topic_id, partition_index)?;
        Ok(CommandOutcome::PartitionChanged { topic_id, partition: partition.clone() })
    }

    pub(crate) fn cancel_reassignment(
        &mut self,
        topic_id: Uuid,
        partition_index: u32,
    ) -> Result<CommandOutcome, CommandError> {
        self.partition(topic_id, partition_index)?;
        if self.reassignment(topic_id, partition_index).is_none() {
            return Err(CommandError::NoReassignmentInProgress { topic_id, partition: partition_index });
        }
        self.revert(topic_id, partition_index)?;
        let partition = self.partition(topic_id, partition_index)?;
        Ok(CommandOutcome::PartitionChanged { topic_id, partition: partition.clone() })
    }

    /// Completes every reassignment whose target replicas are all in the ISR.
    pub(crate) fn complete_reassignments(&mut self) {
        let moving: Vec<(Uuid, u32)> = self
            .reassignments
            .iter()
            .flat_map(|(topic_id, partitions)| partitions.keys().map(move |partition| (*topic_id, *partition)))
            .collect();
        for (topic_id, partition) in moving {
            self.complete_reassignment(topic_id, partition);
        }
    }

    /// Completes the partition's reassignment if every target replica is in the ISR and, when
    /// the leader is being removed, a target replica is live to take over. Returns whether it
    /// completed.
    pub(crate) fn complete_reassignment(&mut self, topic_id: Uuid, partition_index: u32) -> bool {
        let Some(reassignment) = self.reassignment(topic_id, partition_index).cloned() else {
            return false;
        };
        let live = self.live_brokers();
        let Ok(partition) = self.partition_mut(topic_id, partition_index) else {
            return false;
        };
        if !reassignment.target.iter().all(|b| partition.isr.contains(b)) {
            return false;
        }
        let new_leader = match partition.leader {
            Some(leader) if reassignment.target.contains(&leader) => Some(leader),
            Some(_) => match first_eligible(&reassignment.target, &reassignment.target, &live) {
                Some(successor) => Some(successor),
                None => return false,
            },
            None => first_eligible(&reassignment.target, &reassignment.target, &live),
        };
        partition.replicas = reassignment.target.clone();
        partition.isr = reassignment.target.clone();
        if partition.leader != new_leader {
            partition.leader = new_leader;
            partition.leader_epoch += 1;
        }
        partition.partition_epoch += 1;
        self.forget_reassignment(topic_id, partition_index);
        true
    }

    /// Back to the original replicas; the adding ones leave the replicas and the ISR.
    fn revert(&mut self, topic_id: Uuid, partition_index: u32) -> Result<(), CommandError> {
        let reassignment =
            self.reassignment(topic_id, partition_index).cloned().expect("callers check a reassignment exists");
        let live = self.live_brokers();
        let partition = self.partition_mut(topic_id, partition_index)?;
        let isr: Vec<BrokerId> = partition.isr.iter().copied().filter(|b| reassignment.original.contains(b)).collect();
        if isr.is_empty() {
            return Err(CommandError::InvalidReplicaAssignment {
                reason: format!(
                    "no replica of the original assignment {:?} is in the ISR {:?}",
                    reassignment.original, partition.isr
                ),
            });
        }
        let new_leader = match partition.leader {
            Some(leader) if reassignment.original.contains(&leader) => Some(leader),
            _ => first_eligible(&reassignment.original, &isr, &live),
        };
        partition.replicas = reassignment.original.clone();
        partition.isr = isr;
        if partition.leader != new_leader {
            partition.leader = new_leader;
            partition.leader_epoch += 1;
        }
        partition.partition_epoch += 1;
        self.forget_reassignment(topic_id, partition_index);
        Ok(())
    }

    fn forget_reassignment(&mut self, topic_id: Uuid, partition_index: u32) {
        if let Some(partitions) = self.reassignments.get_mut(&topic_id) {
            partitions.remove(&partition_index);
            if partitions.is_empty() {
                self.reassignments.remove(&topic_id);
            }
        }
    }

    /// A replica list a command names (a reassignment's target, an explicit assignment):
    /// non-empty, at most [`REASSIGNMENT_REPLICAS_MAX`], distinct, registered brokers; else
    /// INVALID_REPLICA_ASSIGNMENT.
    pub(crate) fn validate_replica_list(&self, replicas: &[BrokerId]) -> Result<(), CommandError> {
        let invalid = |reason: String| Err(CommandError::InvalidReplicaAssignment { reason });
        if replicas.is_empty() {
            return invalid("the replica list is empty".to_string());
        }
        if replicas.len() > REASSIGNMENT_REPLICAS_MAX {
            return invalid(format!("more than {REASSIGNMENT_REPLICAS_MAX} replicas"));
        }
        let mut distinct = replicas.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() != replicas.len() {
            return invalid(format!("replicas {replicas:?} repeat a broker"));
        }
        if let Some(unknown) = replicas.iter().find(|b| !self.brokers.contains_key(b)) {
            return invalid(format!("broker {unknown} is not registered"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "reassignment_tests.rs"]
mod tests;
