//! Consumer groups, the classic protocol (eager rebalancing), as Kafka's Java client speaks it.
//!
//! Follow a subscription: [`crate::Consumer::subscribe`] → the consumer's `poll` starts a join
//! (`membership`: FindCoordinator via `coordinator`, JoinGroup, the leader's assignor
//! ([`assignor`]), SyncGroup, with the subscription and assignment bytes of [`protocol`]) → the
//! assigned partitions start from their committed offsets (`offsets`: OffsetFetch) or
//! `auto_offset_reset` → the `heartbeat` task keeps the session and flags rebalances → the
//! next `poll` commits (auto-commit), calls the revoke callback, gives every partition up and
//! joins again → `close` commits, calls the revoke callback and sends LeaveGroup.
//!
//! Because the bytes are Kafka's (protocol type "consumer", `ConsumerProtocolSubscription` and
//! `ConsumerProtocolAssignment`, assignor names "range" and "roundrobin"), Java, librdkafka and
//! Sluice members can share a group; any of them may be the leader.
//!
//! What is not here: the cooperative (incremental) protocol and the sticky assignors, static
//! membership (`group.instance.id`), pattern subscriptions, and rebalancing when a subscribed
//! topic gains partitions (a rebalance for any other reason picks the new partitions up).

pub mod assignor;
pub(crate) mod coordinator;
pub(crate) mod heartbeat;
pub(crate) mod membership;
pub(crate) mod offsets;
pub mod protocol;

pub use assignor::{Assignor, MemberSubscription};
