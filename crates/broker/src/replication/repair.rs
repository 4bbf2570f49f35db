//! Repairs replicas whose own log holds a damaged batch (issue 12; the rules and their reasons
//! are in [`crate::partition::damage`]).
//!
//! The Fetch handler records the damage on the partition when the read check finds it and
//! wakes this task, which then finds every damaged partition; every
//! [`REPAIR_CHECK_INTERVAL_MS`] it also re-checks those (and only those), so a step refused by the metadata (a stale partition epoch) is retried. Steps:
//! a damaged leader proposes `ElectLeader` naming another live ISR member (the same command
//! ElectLeaders and the controller's preferred-leader moves use); a damaged follower cuts its
//! log below the batch and lets the replica fetcher copy it again; a partition with no other
//! ISR member is marked offline here (`/ready`, Metadata's offline replicas).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sluice_meta::Command;

use crate::broker::Broker;
use crate::partition::damage::{repair_step, RepairCheck, RepairStep};
use crate::partition::{blocking, Partition};

/// How often damaged partitions are re-checked, in milliseconds. Bounds how late a refused
/// hand-over is retried and how late a finished refetch is noticed.
pub const REPAIR_CHECK_INTERVAL_MS: u64 = 250;

/// Drives the repair of damaged replicas on this broker until `stop`.
pub async fn run(broker: Arc<Broker>, stop: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(Duration::from_millis(REPAIR_CHECK_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    // The damaged partitions known here: every partition is looked at only when the Fetch
    // handler reports new damage, not on every tick (a tick re-checks just these).
    let mut damaged: Vec<Arc<Partition>> = Vec::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = broker.storage_repairs.notified() => {
                damaged = broker.partitions.all().into_iter().filter(|p| p.damage().is_some()).collect();
            }
            () = &mut stop => return,
        }
        // Repaired, or no longer hosted here (deleted, moved away, reopened as a new object).
        damaged.retain(|partition| {
            partition.damage().is_some()
                && broker
                    .partitions
                    .get(&partition.topic, partition.index)
                    .is_some_and(|hosted| Arc::ptr_eq(&hosted, partition))
        });
        for partition in damaged.clone() {
            repair_one(&broker, partition).await;
        }
    }
}

async fn repair_one(broker: &Broker, partition: Arc<Partition>) {
    let Some(damage) = partition.damage() else { return };
    let live = broker.view().live_brokers();
    let checked = Arc::clone(&partition);
    let step = blocking(move || {
        let leadership = checked.leadership();
        let log_end = checked.offsets().map_or(-1, |(log_end, _, _)| log_end);
        let check = RepairCheck {
            local: checked.local_broker(),
            leader: leadership.leader,
            replicas: &leadership.replicas,
            isr: &leadership.isr,
            live: &live,
            log_end,
        };
        Ok((repair_step(&damage, &check), leadership.partition_epoch))
    })
    .await;
    let Ok((step, partition_epoch)) = step else { return };
    let was_offline = partition.damage().is_some_and(|d| d.offline);
    partition.set_damage_offline(step == RepairStep::Offline);
    match step {
        RepairStep::HandOver { to } => {
            tracing::warn!(
                topic = partition.topic,
                partition = partition.index,
                to,
                "this replica's log has a damaged batch: handing the leadership over"
            );
            let command = Command::ElectLeader {
                topic_id: partition.topic_id,
                partition: u32::try_from(partition.index).unwrap_or(0),
                partition_epoch,
                preferred: Some(to),
            };
            if let Err(error) = broker.propose_and_apply(command).await {
                // Stale or no metadata leader: the next check recomputes.
                tracing::info!(topic = partition.topic, partition = partition.index, %error, "hand-over not made");
            }
        }
        RepairStep::Offline if !was_offline => {
            tracing::error!(
                topic = partition.topic,
                partition = partition.index,
                "this replica's log has a damaged batch and no other live in-sync replica can take over: \
                 the batch stays unserved (KAFKA_STORAGE_ERROR) and the partition is offline here until one can"
            );
        }
        RepairStep::Offline | RepairStep::Wait => {}
        RepairStep::Truncate { to } => {
            let cut = Arc::clone(&partition);
            // The replica fetcher's next fetch asks from the cut (an answer in flight for the
            // old log end is refused by `append_as_follower`).
            if let Err(error) = blocking(move || cut.truncate_damaged(to)).await {
                tracing::warn!(topic = partition.topic, partition = partition.index, %error, "cutting the damaged log failed");
            }
        }
        RepairStep::Done => partition.clear_damage(),
    }
}
