//! The leader's ISR proposals (Kafka's AlterPartition, here the `ChangeIsr` metadata command).
//!
//! Every [`ISR_CHECK_INTERVAL_MS`], and at once when a follower's fetch shows it qualifies for
//! the ISR, each partition led here computes the ISR it wants (`Partition::isr_proposal`, over
//! the pure `replica::desired_isr`). A change is proposed with the leader epoch and partition
//! epoch it was computed from, so the metadata refuses it if the partition changed meanwhile
//! (a stale leader cannot shrink or grow an ISR). The ISR changes here only when the committed
//! command comes back in the view, like everywhere else.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_meta::Command;

use crate::broker::Broker;
use crate::partition::{blocking, IsrProposal, Partition};

/// How often leaders re-check their ISR, in milliseconds. Bounds how late a lagging follower
/// leaves the ISR after `replica.lag.time.max.ms` (Kafka checks every half lag time).
pub const ISR_CHECK_INTERVAL_MS: u64 = 250;

/// Proposes ISR changes for the partitions led here until `stop`.
pub async fn run(broker: Arc<Broker>, stop: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(Duration::from_millis(ISR_CHECK_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let pending: Arc<Mutex<HashSet<(String, i32, i32)>>> = Arc::default();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = broker.isr_changes.notified() => {}
            () = &mut stop => return,
        }
        let led: Vec<Arc<Partition>> = broker.partitions.all();
        let proposals = blocking(move || {
            Ok(led.into_iter().filter_map(|p| p.isr_proposal().map(|proposal| (p, proposal))).collect::<Vec<_>>())
        })
        .await
        .unwrap_or_default();
        for (partition, proposal) in proposals {
            let key = (partition.topic.clone(), partition.index, proposal.partition_epoch);
            if !lock(&pending).insert(key.clone()) {
                continue;
            }
            let (broker, pending) = (Arc::clone(&broker), Arc::clone(&pending));
            tokio::spawn(async move {
                propose(&broker, &partition, proposal).await;
                lock(&pending).remove(&key);
            });
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn propose(broker: &Broker, partition: &Partition, proposal: IsrProposal) {
    let before = partition.leadership().isr;
    let command = Command::ChangeIsr {
        topic_id: partition.topic_id,
        partition: u32::try_from(partition.index).unwrap_or(0),
        leader: broker.node_id,
        leader_epoch: proposal.leader_epoch,
        partition_epoch: proposal.partition_epoch,
        isr: proposal.isr.clone(),
    };
    match broker.propose_and_apply(command).await {
        Ok(_) => tracing::info!(
            topic = partition.topic,
            partition = partition.index,
            ?before,
            after = ?proposal.isr,
            "ISR changed"
        ),
        // Stale (the partition changed meanwhile) or no leader: the next check recomputes.
        Err(error) => {
            tracing::info!(topic = partition.topic, partition = partition.index, %error, "ISR change not made")
        }
    }
}
