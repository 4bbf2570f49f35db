//! The leader's ISR proposals (Kafka's AlterPartition, here the `ChangeIsr` metadata command).
//!
//! Every [`ISR_CHECK_INTERVAL_MS`], and at once when a follower's fetch shows it qualifies for
//! the ISR, each partition led here computes the ISR it wants (`Partition::isr_proposal`, over
//! the pure `replica::desired_isr`). A change is proposed with the leader epoch and partition
//! epoch it was computed from, so the metadata refuses it if the partition changed meanwhile
//! (a stale leader cannot shrink or grow an ISR). The ISR changes here only when the committed
//! command comes back in the view, like everywhere else.

use std::collections::{HashMap, HashSet};
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
    let refusals = Arc::new(Refusals::default());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = broker.isr_changes.notified() => {}
            () = &mut stop => return,
        }
        let led: Vec<Arc<Partition>> = broker.partitions.all();
        let live = broker.view().live_brokers();
        let proposals = blocking(move || {
            Ok(led.into_iter().filter_map(|p| p.isr_proposal(&live).map(|proposal| (p, proposal))).collect::<Vec<_>>())
        })
        .await
        .unwrap_or_default();
        for (partition, proposal) in proposals {
            let key = (partition.topic.clone(), partition.index, proposal.partition_epoch);
            if !lock(&pending).insert(key.clone()) {
                continue;
            }
            let (broker, pending, refusals) = (Arc::clone(&broker), Arc::clone(&pending), Arc::clone(&refusals));
            tokio::spawn(async move {
                propose(&broker, &partition, proposal, &refusals).await;
                lock(&pending).remove(&key);
            });
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The last refusal per partition, so that a proposal refused again and again (it is recomputed
/// every check) is logged once at info and then at debug.
#[derive(Default)]
struct Refusals(Mutex<HashMap<(String, i32), String>>);

impl Refusals {
    /// Records `reason`; whether it differs from the last one for this partition.
    fn is_new(&self, partition: &Partition, reason: &str) -> bool {
        let key = (partition.topic.clone(), partition.index);
        lock(&self.0).insert(key, reason.to_string()).as_deref() != Some(reason)
    }

    fn clear(&self, partition: &Partition) {
        lock(&self.0).remove(&(partition.topic.clone(), partition.index));
    }
}

async fn propose(broker: &Broker, partition: &Partition, proposal: IsrProposal, refusals: &Refusals) {
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
        Ok(_) => {
            refusals.clear(partition);
            tracing::info!(topic = partition.topic, partition = partition.index, ?before, after = ?proposal.isr, "ISR changed");
        }
        // Stale (the partition changed meanwhile) or no leader: the next check recomputes.
        Err(error) => {
            let reason = error.to_string();
            if refusals.is_new(partition, &reason) {
                tracing::info!(topic = partition.topic, partition = partition.index, %reason, "ISR change not made");
            } else {
                tracing::debug!(topic = partition.topic, partition = partition.index, %reason, "ISR change not made");
            }
        }
    }
}
