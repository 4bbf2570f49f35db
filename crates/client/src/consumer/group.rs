//! The group side of [`Consumer`]: subscribe, take part in rebalances from `poll`, commit,
//! read committed offsets, leave. The protocol itself is in [`crate::group`].
//!
//! Rebalances are eager, as in Kafka's classic protocol: when the heartbeat task reports one,
//! the next `poll` commits the positions (with auto-commit), calls
//! [`RebalanceListener::on_partitions_revoked`], gives every partition up and starts a join in
//! a task of its own; `poll` waits for it until its deadline (a later `poll` picks it up), then
//! assigns the new partitions, calls [`RebalanceListener::on_partitions_assigned`] and resolves
//! each partition's start: a seek made in the callback, else the committed offset, else
//! `auto_offset_reset`.
//!
//! Commits reach the coordinator in the order they were made — asynchronous ones included —
//! because each holds the group's commit lock (a fair, first-come mutex) until answered, so a
//! late answer never overwrites a newer commit.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::task::JoinHandle;

use super::{Assigned, Consumer, ConsumerConfig, TopicPartition};
use crate::cluster::Cluster;
use crate::error::{ClientError, Result};
use crate::group::heartbeat;
use crate::group::membership::{GroupSettings, Joined, Membership, Rejoin};
use crate::group::offsets::{self, CommitIdentity, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID};

/// The future a [`RebalanceListener`] callback returns (`Box::pin(async move { .. })`).
pub type ListenerFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Called around rebalances (Kafka's `ConsumerRebalanceListener`) from inside `poll`,
/// `unsubscribe` and `close`, with the consumer, so that a callback can commit, seek or read
/// positions. `poll` inside a callback is refused.
pub trait RebalanceListener: Send {
    /// Before `partitions` are given up (a rebalance, `unsubscribe`, `close`), while this
    /// member's generation is still valid: commit what was processed here. With auto-commit,
    /// the positions were committed just before.
    fn on_partitions_revoked<'a>(
        &'a mut self,
        consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a>;

    /// After `partitions` were assigned, before anything is fetched from them: a seek here
    /// decides where a partition starts (else its committed offset, else `auto_offset_reset`).
    fn on_partitions_assigned<'a>(
        &'a mut self,
        consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a>;

    /// When `partitions` were lost: the generation ended without this member (its session
    /// expired, or it did not poll within `max_poll_interval`), so they may already belong to
    /// another member and commits for them are refused. By default, `on_partitions_revoked`.
    fn on_partitions_lost<'a>(
        &'a mut self,
        consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        self.on_partitions_revoked(consumer, partitions)
    }
}

/// This member's place in its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupGeneration {
    /// The group.
    pub group_id: String,
    /// This member's id.
    pub member_id: String,
    /// The generation this member belongs to.
    pub generation_id: i32,
}

/// An asynchronous commit: await it for the committed offsets, or drop it (a failure is then
/// only logged).
#[derive(Debug)]
pub struct PendingCommit {
    handle: JoinHandle<Result<BTreeMap<TopicPartition, i64>>>,
}

impl Future for PendingCommit {
    type Output = Result<BTreeMap<TopicPartition, i64>>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.handle)
            .poll(context)
            .map(|joined| joined.unwrap_or(Err(ClientError::Closed { what: "commit task" })))
    }
}

#[derive(Debug, Clone, Copy)]
enum Callback {
    Revoked,
    Assigned,
    Lost,
}

/// The group state of a consumer with a `group_id`.
pub(super) struct Group {
    membership: Arc<Membership>,
    /// Held by each commit until it is answered: commits reach the coordinator in order.
    commits: Arc<tokio::sync::Mutex<()>>,
    /// In a mutex only so that the consumer is `Sync` (its `&self` futures are `Send`) without
    /// asking listeners to be `Sync`; it is taken out while called.
    listener: Option<std::sync::Mutex<Box<dyn RebalanceListener>>>,
    in_callback: bool,
    subscription: Option<Subscription>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Group")
            .field("membership", &self.membership)
            .field("listener", &self.listener.is_some())
            .field("in_callback", &self.in_callback)
            .field("subscription", &self.subscription)
            .finish()
    }
}

/// A subscription and the tasks serving it (aborted when it is dropped).
#[derive(Debug)]
struct Subscription {
    topics: Vec<String>,
    /// The partitions of the current generation are assigned to the consumer.
    assigned: bool,
    /// Some assigned partitions may still need their committed offset.
    awaiting_committed: bool,
    joining: Option<JoinHandle<Result<Joined>>>,
    heartbeat: Option<JoinHandle<()>>,
    next_auto_commit: Instant,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(joining) = self.joining.take() {
            joining.abort();
        }
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }
}

impl Group {
    pub(super) fn new(cluster: &Cluster, config: &ConsumerConfig, group_id: &str) -> Group {
        let settings = GroupSettings {
            group_id: group_id.to_string(),
            session_timeout: config.session_timeout,
            rebalance_timeout: config.max_poll_interval,
            heartbeat_interval: config.effective_heartbeat_interval(),
            assignors: config.assignors.clone(),
        };
        Group {
            membership: Arc::new(Membership::new(cluster.clone(), settings)),
            commits: Arc::new(tokio::sync::Mutex::new(())),
            listener: None,
            in_callback: false,
            subscription: None,
        }
    }

    /// Who commits: the member's generation when subscribed, else a simple commit.
    fn identity(&self) -> Result<CommitIdentity> {
        if self.subscription.is_none() {
            return Ok(CommitIdentity::simple());
        }
        self.membership.identity().ok_or_else(|| ClientError::InvalidState {
            reason: format!(
                "the member of group {:?} is between generations (rejoining); poll, then commit",
                self.membership.settings.group_id
            ),
        })
    }
}

fn validate(config: &ConsumerConfig) -> Result<()> {
    let invalid = |reason: &str| Err(ClientError::InvalidConfig { reason: reason.to_string() });
    let heartbeat = config.effective_heartbeat_interval();
    if config.group_id.as_deref().is_none_or(str::is_empty) {
        return invalid("subscribe needs a non-empty group_id");
    }
    if heartbeat.is_zero() || heartbeat >= config.session_timeout {
        return invalid("heartbeat_interval must be above zero and below session_timeout");
    }
    if config.assignors.is_empty() {
        return invalid("assignors must name at least one assignor");
    }
    if config.enable_auto_commit && config.auto_commit_interval.is_zero() {
        return invalid("auto_commit_interval must be above zero");
    }
    if config.max_poll_interval < config.session_timeout {
        return invalid("max_poll_interval must be at least session_timeout");
    }
    Ok(())
}

/// Asks for a rejoin after a commit the coordinator refused for the generation.
fn after_commit(membership: &Membership, identity: &CommitIdentity, result: &Result<()>) {
    let Err(ClientError::CommitFailed { code, .. }) = result else { return };
    match *code {
        REBALANCE_IN_PROGRESS => membership.request_rejoin(identity.generation_id, Rejoin::Rebalance),
        UNKNOWN_MEMBER_ID => membership.member_unknown(identity.generation_id),
        _ => membership.request_rejoin(identity.generation_id, Rejoin::Fenced),
    }
}

impl Consumer {
    fn group(&self) -> Result<&Group> {
        self.group.as_ref().ok_or_else(|| ClientError::InvalidState {
            reason: "group operations need ConsumerConfig::group_id".to_string(),
        })
    }

    fn subscription_mut(&mut self) -> Option<&mut Subscription> {
        self.group.as_mut().and_then(|group| group.subscription.as_mut())
    }

    /// Whether the consumer is subscribed to a group.
    pub fn is_subscribed(&self) -> bool {
        self.group.as_ref().is_some_and(|group| group.subscription.is_some())
    }

    /// Joins the group (`group_id`) subscribing to `topics`; the next `poll` joins and its
    /// records come from the partitions the group assigns. The topics must exist. Calling it
    /// again with other topics rejoins with the new subscription. Fails while partitions are
    /// assigned manually.
    pub async fn subscribe<I, S>(&mut self, topics: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut topics: Vec<String> = topics.into_iter().map(Into::into).collect();
        topics.sort();
        topics.dedup();
        if topics.is_empty() {
            return Err(ClientError::InvalidConfig { reason: "subscribe to at least one topic".to_string() });
        }
        validate(&self.config)?;
        if !self.is_subscribed() && !self.assignment.is_empty() {
            return Err(ClientError::InvalidState {
                reason: "subscribe while partitions are assigned manually; assign an empty list first".to_string(),
            });
        }
        for topic in &topics {
            self.cluster.topic(topic).await?;
        }
        let group = self
            .group
            .as_mut()
            .ok_or_else(|| ClientError::InvalidConfig { reason: "subscribe needs a non-empty group_id".to_string() })?;
        match &mut group.subscription {
            Some(subscription) if subscription.topics == topics => {}
            Some(subscription) => {
                subscription.topics = topics;
                if let Some(identity) = group.membership.identity() {
                    group.membership.request_rejoin(identity.generation_id, Rejoin::Rebalance);
                }
            }
            None => {
                group.subscription = Some(Subscription {
                    topics,
                    assigned: false,
                    awaiting_committed: false,
                    joining: None,
                    heartbeat: None,
                    next_auto_commit: Instant::now() + self.config.auto_commit_interval,
                });
            }
        }
        Ok(())
    }

    /// The subscribed topics (empty when not subscribed).
    pub fn subscription(&self) -> Vec<String> {
        self.group
            .as_ref()
            .and_then(|group| group.subscription.as_ref())
            .map(|subscription| subscription.topics.clone())
            .unwrap_or_default()
    }

    /// Sets the listener called around rebalances (replacing any earlier one).
    pub fn set_rebalance_listener(&mut self, listener: impl RebalanceListener + 'static) -> Result<()> {
        let group = self.group.as_mut().ok_or_else(|| ClientError::InvalidState {
            reason: "a rebalance listener needs ConsumerConfig::group_id".to_string(),
        })?;
        group.listener = Some(std::sync::Mutex::new(Box::new(listener)));
        Ok(())
    }

    /// The member id and generation, once joined.
    pub fn group_generation(&self) -> Option<GroupGeneration> {
        let group = self.group.as_ref()?;
        group.subscription.as_ref()?;
        let identity = group.membership.identity()?;
        Some(GroupGeneration {
            group_id: group.membership.settings.group_id.clone(),
            member_id: identity.member_id,
            generation_id: identity.generation_id,
        })
    }

    /// The next offset to read of every assigned partition that has a position: what `commit`
    /// commits.
    fn consumed_positions(&self) -> BTreeMap<TopicPartition, i64> {
        self.assignment.iter().filter_map(|(tp, assigned)| assigned.position.map(|p| (tp.clone(), p))).collect()
    }

    /// Commits the positions of every assigned partition (the records returned so far) and
    /// returns them; waits for the answer.
    pub async fn commit(&self) -> Result<BTreeMap<TopicPartition, i64>> {
        let offsets = self.consumed_positions();
        self.commit_offsets(&offsets).await?;
        Ok(offsets)
    }

    /// Commits `offsets` (per partition, the offset of the next record to read) and waits for
    /// the answer. Subscribed, they are committed with this member's generation
    /// ([`ClientError::CommitFailed`] after the group rebalanced without it); otherwise as a
    /// simple commit, which the coordinator accepts only while the group has no members.
    pub async fn commit_offsets(&self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        let group = self.group()?;
        if offsets.is_empty() {
            return Ok(());
        }
        let identity = group.identity()?;
        let _order = group.commits.lock().await;
        let result = offsets::commit(&group.membership.coordinator, &identity, offsets).await;
        after_commit(&group.membership, &identity, &result);
        result
    }

    /// Commits the positions without waiting: the commit is sent in order after any earlier
    /// one; await the returned [`PendingCommit`] for its outcome.
    pub async fn commit_async(&self) -> Result<PendingCommit> {
        let offsets = self.consumed_positions();
        let group = self.group()?;
        let identity = if offsets.is_empty() { None } else { Some(group.identity()?) };
        let order = group.commits.clone().lock_owned().await;
        let membership = group.membership.clone();
        let handle = tokio::spawn(async move {
            let _order = order;
            let Some(identity) = identity else { return Ok(offsets) };
            let result = offsets::commit(&membership.coordinator, &identity, &offsets).await;
            after_commit(&membership, &identity, &result);
            if let Err(error) = &result {
                tracing::warn!(group = %membership.settings.group_id, %error, "asynchronous commit failed");
            }
            result.map(|()| offsets)
        });
        Ok(PendingCommit { handle })
    }

    /// The group's committed offsets of `partitions`; partitions without one are absent.
    pub async fn committed(&self, partitions: &[TopicPartition]) -> Result<BTreeMap<TopicPartition, i64>> {
        let group = self.group()?;
        offsets::fetch(&group.membership.coordinator, Some(partitions)).await
    }

    /// Leaves the group: commits the positions (with auto-commit), calls the revoke callback,
    /// sends LeaveGroup, and drops the assignment. The consumer may subscribe again. Returns
    /// the commit's error, else LeaveGroup's.
    pub async fn unsubscribe(&mut self) -> Result<()> {
        let Some(group) = self.group.as_mut() else { return Ok(()) };
        if group.in_callback {
            return Err(ClientError::InvalidState { reason: "unsubscribe inside a rebalance callback".to_string() });
        }
        let Some(subscription) = group.subscription.as_mut() else { return Ok(()) };
        if let Some(join) = subscription.joining.take() {
            join.abort();
            // The aborted JoinGroup may still be waiting at the coordinator on this member's
            // connection; a new connection lets LeaveGroup through at once.
            group.membership.coordinator.forget();
        }
        let mut result = Ok(());
        if subscription.assigned {
            let lost = group.membership.state().rejoin == Some(Rejoin::Fenced);
            result = self.give_up_partitions(lost).await;
        }
        let Some(group) = self.group.as_mut() else { return result };
        drop(group.subscription.take());
        let _order = group.commits.lock().await;
        if let Err(error) = group.membership.leave().await {
            tracing::warn!(group = %group.membership.settings.group_id, %error, "leave group failed");
            result = result.and(Err(error));
        }
        result
    }

    /// Leaves the group (see [`Consumer::unsubscribe`]) and drops the consumer.
    pub async fn close(mut self) -> Result<()> {
        self.unsubscribe().await
    }

    /// Eager revocation: commit (auto-commit, generation still valid), callback, drop all.
    async fn give_up_partitions(&mut self, lost: bool) -> Result<()> {
        let partitions = self.assignment();
        let mut result = Ok(());
        if !lost && self.config.enable_auto_commit {
            result = self.commit().await.map(drop);
            if let Err(error) = &result {
                tracing::warn!(%error, "commit before revoking the partitions failed");
            }
        }
        self.call_listener(if lost { Callback::Lost } else { Callback::Revoked }, &partitions).await;
        self.assignment.clear();
        if let Some(subscription) = self.subscription_mut() {
            subscription.assigned = false;
            subscription.awaiting_committed = false;
        }
        result
    }

    async fn call_listener(&mut self, callback: Callback, partitions: &[TopicPartition]) {
        let Some(group) = self.group.as_mut() else { return };
        let Some(listener) = group.listener.take() else { return };
        let mut listener = listener.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        group.in_callback = true;
        tracing::debug!(?callback, partitions = partitions.len(), "calling the rebalance listener");
        match callback {
            Callback::Revoked => listener.on_partitions_revoked(self, partitions).await,
            Callback::Assigned => listener.on_partitions_assigned(self, partitions).await,
            Callback::Lost => listener.on_partitions_lost(self, partitions).await,
        }
        if let Some(group) = self.group.as_mut() {
            group.in_callback = false;
            group.listener.get_or_insert(std::sync::Mutex::new(listener));
        }
    }

    /// Whether the group asked this member to rejoin (the next `poll` does).
    pub(super) fn rejoin_pending(&self) -> bool {
        self.group
            .as_ref()
            .filter(|group| group.subscription.is_some())
            .is_some_and(|group| group.membership.state().rejoin.is_some())
    }

    /// Sleeps until `deadline`, or until the group asks this member to rejoin.
    pub(super) async fn idle_until(&self, deadline: Instant) {
        let Some(group) = self.group.as_ref().filter(|group| group.subscription.is_some()) else {
            tokio::time::sleep_until(deadline.into()).await;
            return;
        };
        let woken = group.membership.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if self.rejoin_pending() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = woken => {}
        }
    }

    /// The group part of `poll`: revoke and rejoin when asked, finish a join, auto-commit.
    /// `false` when a join is still running at `deadline`.
    pub(super) async fn maintain_group(&mut self, deadline: Instant) -> Result<bool> {
        let Some(group) = self.group.as_mut() else { return Ok(true) };
        if group.in_callback {
            return Err(ClientError::InvalidState { reason: "poll inside a rebalance callback".to_string() });
        }
        let Some(assigned) = group.subscription.as_ref().map(|subscription| subscription.assigned) else {
            return Ok(true);
        };
        let rejoin = {
            let mut state = group.membership.state();
            state.last_poll = Instant::now();
            state.rejoin
        };
        if let (Some(reason), true) = (rejoin, assigned) {
            // A failed commit here is logged: the rebalance goes on without it.
            let _ = self.give_up_partitions(reason == Rejoin::Fenced).await;
        }
        self.start_join_if_needed();
        if !self.finish_join(deadline).await? {
            return Ok(false);
        }
        self.auto_commit_if_due().await;
        Ok(true)
    }

    fn start_join_if_needed(&mut self) {
        let Some(group) = self.group.as_mut() else { return };
        let Some(subscription) = group.subscription.as_mut() else { return };
        if subscription.joining.is_some() || subscription.assigned {
            return;
        }
        {
            let mut state = group.membership.state();
            state.stable = false;
            state.rejoin = None;
            state.generation_id = offsets::NO_GENERATION;
        }
        let membership = group.membership.clone();
        let topics = subscription.topics.clone();
        subscription.joining = Some(tokio::spawn(async move { membership.join(&topics).await }));
    }

    /// Waits for a running join until `deadline`; on completion assigns its partitions.
    async fn finish_join(&mut self, deadline: Instant) -> Result<bool> {
        let Some(joining) = self.subscription_mut().and_then(|subscription| subscription.joining.as_mut()) else {
            return Ok(true);
        };
        let Ok(joined) = tokio::time::timeout_at(deadline.into(), joining).await else { return Ok(false) };
        if let Some(subscription) = self.subscription_mut() {
            subscription.joining = None;
        }
        let joined = joined.map_err(|_| ClientError::Closed { what: "group join task" })??;
        self.assignment = joined.partitions.iter().map(|tp| (tp.clone(), Assigned::default())).collect();
        let Some(group) = self.group.as_mut() else { return Ok(true) };
        let membership = group.membership.clone();
        if let Some(subscription) = group.subscription.as_mut() {
            subscription.assigned = true;
            subscription.awaiting_committed = true;
            subscription.heartbeat.get_or_insert_with(|| heartbeat::spawn(membership));
        }
        self.call_listener(Callback::Assigned, &joined.partitions).await;
        Ok(true)
    }

    /// Sets every assigned partition that has no position (a new assignment, no seek in the
    /// callback) to its committed offset, if it has one.
    pub(super) async fn resolve_committed(&mut self) -> Result<()> {
        let Some(group) = self.group.as_ref() else { return Ok(()) };
        if !group.subscription.as_ref().is_some_and(|subscription| subscription.awaiting_committed) {
            return Ok(());
        }
        let unresolved: Vec<TopicPartition> =
            self.assignment.iter().filter(|(_, a)| a.position.is_none()).map(|(tp, _)| tp.clone()).collect();
        if !unresolved.is_empty() {
            let committed = offsets::fetch(&group.membership.coordinator, Some(&unresolved)).await?;
            tracing::debug!(group = %group.membership.settings.group_id, ?committed, "starting at the committed offsets");
            for (partition, offset) in committed {
                if let Some(assigned) = self.assignment.get_mut(&partition).filter(|a| a.position.is_none()) {
                    assigned.position = Some(offset);
                }
            }
        }
        if let Some(subscription) = self.subscription_mut() {
            subscription.awaiting_committed = false;
        }
        Ok(())
    }

    async fn auto_commit_if_due(&mut self) {
        if !self.config.enable_auto_commit {
            return;
        }
        let interval = self.config.auto_commit_interval;
        let Some(subscription) = self.subscription_mut().filter(|subscription| subscription.assigned) else { return };
        if Instant::now() < subscription.next_auto_commit {
            return;
        }
        subscription.next_auto_commit = Instant::now() + interval;
        // The pending commit is dropped: the task logs a failure; the next interval retries.
        if let Err(error) = self.commit_async().await {
            tracing::debug!(%error, "auto-commit skipped");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::validate;
    use crate::consumer::{ConsumerConfig, HEARTBEAT_INTERVAL_DEFAULT};

    #[test]
    fn heartbeats_default_to_kafkas_interval_within_a_third_of_the_session() {
        let config = ConsumerConfig::default();
        assert_eq!(config.effective_heartbeat_interval(), HEARTBEAT_INTERVAL_DEFAULT);
        let short = ConsumerConfig { session_timeout: Duration::from_secs(3), ..ConsumerConfig::default() };
        assert_eq!(short.effective_heartbeat_interval(), Duration::from_secs(1));
        let chosen = ConsumerConfig { heartbeat_interval: Some(Duration::from_millis(700)), ..short };
        assert_eq!(chosen.effective_heartbeat_interval(), Duration::from_millis(700));
    }

    #[test]
    fn group_settings_are_checked_before_joining() {
        let good = ConsumerConfig { group_id: Some("g".to_string()), ..ConsumerConfig::default() };
        assert!(validate(&good).is_ok());
        let bad = [
            ConsumerConfig { group_id: None, ..good.clone() },
            ConsumerConfig { group_id: Some(String::new()), ..good.clone() },
            ConsumerConfig { heartbeat_interval: Some(good.session_timeout), ..good.clone() },
            ConsumerConfig { assignors: Vec::new(), ..good.clone() },
            ConsumerConfig { auto_commit_interval: Duration::ZERO, ..good.clone() },
            ConsumerConfig { max_poll_interval: Duration::from_secs(1), ..good.clone() },
        ];
        for config in bad {
            assert!(validate(&config).is_err(), "{config:?}");
        }
    }
}
