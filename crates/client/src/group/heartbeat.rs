//! The heartbeat task of a group member: keeps the session alive between polls and tells the
//! consumer when to rejoin.
//!
//! Every `heartbeat_interval` (by default Kafka's 3 s, at most a third of the session timeout, so
//! two heartbeats may be lost before the coordinator expels the member) while the member is in
//! a generation:
//!
//! | answer | meaning | effect |
//! |---|---|---|
//! | NONE | all is well | — |
//! | REBALANCE_IN_PROGRESS | a member joined or left | rejoin; partitions may be committed first |
//! | ILLEGAL_GENERATION, FENCED_INSTANCE_ID | the generation moved on without us | rejoin; partitions lost |
//! | UNKNOWN_MEMBER_ID | our session expired | rejoin as a new member; partitions lost |
//! | coordinator errors, a dead connection | — | look the coordinator up again; heartbeat after a backoff |
//!
//! The task also enforces `max.poll.interval.ms`: a member whose application has not called
//! `poll` for that long leaves the group, so that its partitions go to members that make
//! progress (as Kafka's heartbeat thread does); its next `poll` rejoins.
//!
//! The task does nothing while the consumer is joining (the JoinGroup itself keeps the member
//! known to the coordinator). Answers about an older generation than the current one are
//! ignored ([`Membership::request_rejoin`]).

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::group::membership::{Membership, Rejoin};
use crate::group::offsets::{FENCED_INSTANCE_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID};

/// Starts the heartbeat task of `membership`; it runs until aborted.
pub fn spawn(membership: Arc<Membership>) -> JoinHandle<()> {
    tokio::spawn(run(membership))
}

async fn run(membership: Arc<Membership>) {
    let interval = membership.settings.heartbeat_interval;
    let backoff = membership.coordinator.cluster().config().backoff;
    let group = membership.settings.group_id.clone();
    let mut failures = 0u32;
    let mut wait = interval;
    loop {
        tokio::time::sleep(wait).await;
        wait = interval;
        let (generation_id, member_id, since_poll) = {
            let state = membership.state();
            if !state.stable {
                continue;
            }
            (state.generation_id, state.member_id.clone(), state.last_poll.elapsed())
        };
        if since_poll > membership.settings.rebalance_timeout {
            tracing::warn!(%group, ?since_poll, "poll was not called within max_poll_interval; leaving the group");
            membership.request_rejoin(generation_id, Rejoin::Fenced);
            if let Err(error) = membership.leave().await {
                tracing::debug!(%group, %error, "leave after the poll interval failed");
            }
            continue;
        }
        match membership.heartbeat(generation_id, &member_id).await {
            Ok(0) => failures = 0,
            Ok(REBALANCE_IN_PROGRESS) => membership.request_rejoin(generation_id, Rejoin::Rebalance),
            Ok(ILLEGAL_GENERATION | FENCED_INSTANCE_ID) => membership.request_rejoin(generation_id, Rejoin::Fenced),
            Ok(UNKNOWN_MEMBER_ID) => membership.member_unknown(generation_id),
            Ok(code) => {
                tracing::warn!(%group, code, "heartbeat refused");
                wait = backoff.delay(failures).min(interval);
                failures += 1;
            }
            Err(error) => {
                tracing::debug!(%group, %error, "heartbeat failed");
                wait = backoff.delay(failures).min(interval);
                failures += 1;
            }
        }
    }
}
