//! Group administration: list, describe, lag, offset resets, delete.
//!
//! Each group request goes to the group's coordinator over the cluster's shared connections
//! ([`crate::group`]'s coordinator handle, found again when it moves); ListGroups goes to
//! every broker, since each coordinates its own share of the groups.
//!
//! An offset reset is a "simple" commit — generation -1, no member id — which the coordinator
//! accepts only while the group has no members: a reset under running consumers would be
//! overwritten by their next commit, so it is refused up front
//! ([`ClientError::GroupNotEmpty`], from the DescribeGroups state), and the coordinator refuses
//! it too (UNKNOWN_MEMBER_ID) if a member joins in between.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sluice_proto::kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse, GroupId,
    ListGroupsRequest, ListGroupsResponse,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use super::Admin;
use crate::cluster::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::consumer::TopicPartition;
use crate::error::{ClientError, Result};
use crate::group::coordinator::{check_coordinator, Coordinator, Route};
use crate::group::offsets::{self, CommitIdentity};
use crate::group::protocol::{decode_assignment, decode_subscription, CONSUMER_PROTOCOL_TYPE};

/// NON_EMPTY_GROUP: DeleteGroups of a group that has members.
const NON_EMPTY_GROUP: i16 = 68;
/// The state of a group with no members but committed offsets.
pub const STATE_EMPTY: &str = "Empty";
/// The state of a group the coordinator does not know.
pub const STATE_DEAD: &str = "Dead";

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("consumer" for consumer groups).
    pub protocol_type: String,
    /// State (`Stable`, `Empty`, `PreparingRebalance`, ...); empty from brokers before v4.
    pub state: String,
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id.
    pub member_id: String,
    /// Static member id, if any.
    pub group_instance_id: Option<String>,
    /// The client id the member's requests carry.
    pub client_id: String,
    /// The member's address as the coordinator saw it (`/127.0.0.1`).
    pub client_host: String,
    /// Subscribed topics (decoded for consumer groups, else empty).
    pub subscription: Vec<String>,
    /// Assigned partitions (decoded for consumer groups, else empty).
    pub assignment: Vec<TopicPartition>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State; [`STATE_DEAD`] for a group the coordinator does not know.
    pub state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// The protocol in use (the assignor, for consumer groups).
    pub protocol: String,
    /// Members (none while Empty or Dead).
    pub members: Vec<GroupMember>,
}

impl GroupDescription {
    /// Whether the group has no members (Empty, or unknown to the coordinator).
    pub fn is_inactive(&self) -> bool {
        self.members.is_empty() && (self.state == STATE_EMPTY || self.state == STATE_DEAD)
    }
}

/// One partition's lag behind its log end.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionLag {
    /// Topic and partition.
    pub partition: TopicPartition,
    /// The group's committed offset, if it has one.
    pub committed_offset: Option<i64>,
    /// The log end offset (high watermark), if the partition could be asked.
    pub log_end_offset: Option<i64>,
    /// `log_end_offset - committed_offset`, when both are known.
    pub lag: Option<i64>,
    /// Lag in seconds: how old the first record the group has not consumed is (now minus its
    /// timestamp, or its batch's append time under LogAppendTime; never negative); `Some(0.0)`
    /// when the group is caught up, `None` when unknown (no commit, the partition could not be
    /// read). Costs one small Fetch per lagging partition.
    pub lag_seconds: Option<f64>,
    /// The member the partition is assigned to, if any.
    pub member_id: Option<String>,
    /// That member's client id.
    pub client_id: Option<String>,
}

/// Where [`Admin::reset_offsets`] moves a group's committed offsets. The result is clamped to
/// the partition's [log start, log end].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetTarget {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// The first offset whose timestamp is at or after this (ms since the epoch); the log end
    /// when there is none.
    Timestamp(i64),
    /// This offset.
    Offset(i64),
    /// The committed offset plus this (negative: back); partitions without one are an error.
    ShiftBy(i64),
    /// The committed offset itself (Kafka's `--to-current`): moves it back into the log if
    /// retention passed it; partitions without one are an error.
    Current,
}

/// One partition of an offset reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetChange {
    /// Topic and partition.
    pub partition: TopicPartition,
    /// The committed offset before, if any.
    pub previous: Option<i64>,
    /// The new committed offset.
    pub offset: i64,
    /// The offset the target named when it lay outside the partition's log and `offset` is
    /// the nearest end instead (Kafka's tool warns about these).
    pub clamped_from: Option<i64>,
}

fn group_id(value: &str) -> GroupId {
    GroupId(StrBytes::from_string(value.to_string()))
}

/// A described member, its subscription and assignment decoded for consumer groups.
fn member(
    protocol_type: &str,
    wire: &sluice_proto::kafka_protocol::messages::describe_groups_response::DescribedGroupMember,
) -> GroupMember {
    let consumer = protocol_type == CONSUMER_PROTOCOL_TYPE;
    let undecodable = |what: &str, error: ClientError| {
        tracing::warn!(member_id = %wire.member_id, %error, "undecodable {what}");
    };
    let subscription = match consumer && !wire.member_metadata.is_empty() {
        true => decode_subscription(&wire.member_metadata).unwrap_or_else(|error| {
            undecodable("subscription", error);
            Vec::new()
        }),
        false => Vec::new(),
    };
    let assignment = match consumer {
        true => decode_assignment(&wire.member_assignment).unwrap_or_else(|error| {
            undecodable("assignment", error);
            Vec::new()
        }),
        false => Vec::new(),
    };
    GroupMember {
        member_id: wire.member_id.to_string(),
        group_instance_id: wire.group_instance_id.as_ref().map(|id| id.to_string()),
        client_id: wire.client_id.to_string(),
        client_host: wire.client_host.to_string(),
        subscription,
        assignment,
    }
}

fn read_description(group: &str, response: DescribeGroupsResponse) -> Result<GroupDescription> {
    let described =
        response.groups.into_iter().next().ok_or_else(|| ClientError::UnexpectedResponse {
            reason: format!("DescribeGroups lacks group {group:?}"),
        })?;
    let message = described.error_message.as_ref().map(|m| m.to_string());
    if described.error_code != 0 {
        return Err(ClientError::kafka(described.error_code, format!("describe group {group:?}"), message));
    }
    let protocol_type = described.protocol_type.to_string();
    Ok(GroupDescription {
        group_id: group.to_string(),
        state: described.group_state.to_string(),
        protocol: described.protocol_data.to_string(),
        members: described.members.iter().map(|wire| member(&protocol_type, wire)).collect(),
        protocol_type,
    })
}

impl Admin {
    fn coordinator(&self, group: &str) -> Coordinator {
        Coordinator::new(self.cluster.clone(), group, Route::Shared)
    }

    /// Every group of every broker, by group id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let metadata = self.cluster.retry("metadata", || self.cluster.refresh(&[])).await?;
        let mut groups = BTreeMap::new();
        for broker_id in metadata.brokers.keys() {
            let response: ListGroupsResponse = self
                .cluster
                .retry("list groups", || async {
                    let response = self.cluster.call_broker(*broker_id, &ListGroupsRequest::default()).await?;
                    ClientError::check(response.error_code, || format!("list the groups of broker {broker_id}"))?;
                    Ok(response)
                })
                .await?;
            for listed in response.groups {
                let listing = GroupListing {
                    group_id: listed.group_id.to_string(),
                    protocol_type: listed.protocol_type.to_string(),
                    state: listed.group_state.to_string(),
                };
                groups.insert(listing.group_id.clone(), listing);
            }
        }
        Ok(groups.into_values().collect())
    }

    /// One group's state, protocol and members with their decoded assignments. A group the
    /// coordinator does not know is described as [`STATE_DEAD`] with no members (as Kafka does).
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let build = |_version| DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
        let check = |response: DescribeGroupsResponse| {
            if let Some(described) = response.groups.first() {
                check_coordinator(described.error_code, || format!("describe group {group:?}"))?;
            }
            read_description(group, response)
        };
        self.coordinator(group).call("describe group", Duration::ZERO, build, check).await
    }

    /// Several groups (see [`Admin::describe_group`]).
    pub async fn describe_groups(&self, groups: &[String]) -> Result<Vec<GroupDescription>> {
        let mut described = Vec::with_capacity(groups.len());
        for group in groups {
            described.push(self.describe_group(group).await?);
        }
        Ok(described)
    }

    /// Every committed offset of `group`.
    pub async fn group_offsets(&self, group: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        offsets::fetch(&self.coordinator(group), None).await
    }

    /// Per partition the group has a committed offset for or has assigned: the committed
    /// offset, the log end offset (ListOffsets) and the lag between them, with the owning member.
    pub async fn group_lag(&self, group: &str) -> Result<Vec<PartitionLag>> {
        let description = self.describe_group(group).await?;
        let committed = self.group_offsets(group).await?;
        let mut owners: BTreeMap<TopicPartition, &GroupMember> = BTreeMap::new();
        for member in &description.members {
            for partition in &member.assignment {
                owners.insert(partition.clone(), member);
            }
        }
        let partitions: BTreeSet<TopicPartition> = committed.keys().chain(owners.keys()).cloned().collect();
        let mut lags = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let log_end_offset = match self
                .cluster
                .list_offset(&partition.topic, partition.partition, LATEST_TIMESTAMP)
                .await
            {
                Ok(offset) => Some(offset),
                Err(error) if !error.is_retriable() => {
                    tracing::debug!(topic = %partition.topic, partition = partition.partition, %error, "no log end offset");
                    None
                }
                Err(error) => return Err(error),
            };
            let committed_offset = committed.get(&partition).copied();
            let owner = owners.get(&partition);
            let lag = committed_offset.zip(log_end_offset).map(|(committed, end)| end - committed);
            let lag_seconds = match (lag, committed_offset) {
                (Some(lag), _) if lag <= 0 => Some(0.0),
                (Some(_), Some(committed)) => {
                    match self.cluster.record_timestamp_at(&partition.topic, partition.partition, committed).await {
                        Ok(Some(timestamp_ms)) => Some(age_seconds(timestamp_ms, now_ms())),
                        Ok(None) => None,
                        Err(error) => {
                            tracing::debug!(topic = %partition.topic, partition = partition.partition, %error, "no lag in seconds");
                            None
                        }
                    }
                }
                _ => None,
            };
            lags.push(PartitionLag {
                lag,
                lag_seconds,
                committed_offset,
                log_end_offset,
                member_id: owner.map(|member| member.member_id.clone()),
                client_id: owner.map(|member| member.client_id.clone()),
                partition,
            });
        }
        Ok(lags)
    }

    /// The new offsets a reset of `group`'s offsets on `topic` (every partition) to `target`
    /// would commit, without committing them (a dry run).
    pub async fn plan_offset_reset(&self, group: &str, topic: &str, target: OffsetTarget) -> Result<Vec<OffsetChange>> {
        let partitions = self.topic_partitions(topic, None).await?;
        self.plan_offset_reset_of(group, &partitions, target).await
    }

    /// `topic`'s partitions: all of them, or those in `only` (an error names any that the
    /// topic does not have).
    pub async fn topic_partitions(&self, topic: &str, only: Option<&[i32]>) -> Result<Vec<TopicPartition>> {
        let info = self.cluster.topic(topic).await?;
        let all: Vec<i32> = info.partitions.iter().map(|partition| partition.partition).collect();
        let chosen = match only {
            None => all,
            Some(only) => {
                if let Some(missing) = only.iter().find(|partition| !all.contains(partition)) {
                    return Err(ClientError::InvalidConfig {
                        reason: format!("topic {topic:?} has no partition {missing} (it has {})", all.len()),
                    });
                }
                only.to_vec()
            }
        };
        Ok(chosen.into_iter().map(|partition| TopicPartition::new(topic, partition)).collect())
    }

    /// The new offsets a reset of `group`'s offsets on `partitions` to `target` would commit,
    /// without committing them (a dry run).
    pub async fn plan_offset_reset_of(
        &self,
        group: &str,
        partitions: &[TopicPartition],
        target: OffsetTarget,
    ) -> Result<Vec<OffsetChange>> {
        self.plan_offset_reset_reporting(group, partitions, target, &mut |_| {}).await
    }

    /// [`plan_offset_reset_of`](Self::plan_offset_reset_of), calling `planned` as each
    /// partition's new offset is known (one or two ListOffsets round trips per partition; a
    /// caller shows progress over many partitions with it).
    pub async fn plan_offset_reset_reporting(
        &self,
        group: &str,
        partitions: &[TopicPartition],
        target: OffsetTarget,
        planned: &mut (dyn FnMut(&OffsetChange) + Send),
    ) -> Result<Vec<OffsetChange>> {
        let committed = self.group_offsets(group).await?;
        let mut changes = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let previous = committed.get(partition).copied();
            let (offset, clamped_from) = self.target_offset(partition, target, previous).await?;
            let change = OffsetChange { partition: partition.clone(), previous, offset, clamped_from };
            planned(&change);
            changes.push(change);
        }
        Ok(changes)
    }

    /// The offset `target` names for `partition`, clamped into its log, and the unclamped
    /// offset when it lay outside.
    async fn target_offset(
        &self,
        partition: &TopicPartition,
        target: OffsetTarget,
        previous: Option<i64>,
    ) -> Result<(i64, Option<i64>)> {
        let list = |timestamp| self.cluster.list_offset(&partition.topic, partition.partition, timestamp);
        let (start, end) = (list(EARLIEST_TIMESTAMP).await?, list(LATEST_TIMESTAMP).await?);
        let offset = match target {
            OffsetTarget::Earliest => start,
            OffsetTarget::Latest => end,
            OffsetTarget::Timestamp(timestamp_ms) => match list(timestamp_ms).await? {
                -1 => end,
                offset => offset,
            },
            OffsetTarget::Offset(offset) => offset,
            OffsetTarget::ShiftBy(_) | OffsetTarget::Current => {
                let committed = previous.ok_or_else(|| ClientError::InvalidState {
                    reason: format!(
                        "{}-{} has no committed offset to start from; reset it to an offset first",
                        partition.topic, partition.partition
                    ),
                })?;
                match target {
                    OffsetTarget::ShiftBy(delta) => committed.saturating_add(delta),
                    _ => committed,
                }
            }
        };
        let clamped = offset.clamp(start, end.max(start));
        Ok((clamped, (clamped != offset).then_some(offset)))
    }

    /// Moves `group`'s committed offsets of every partition of `topic` to `target` (clamped to
    /// each partition's [log start, log end]) and returns the changes. Refused with
    /// [`ClientError::GroupNotEmpty`] while the group has members.
    pub async fn reset_offsets(&self, group: &str, topic: &str, target: OffsetTarget) -> Result<Vec<OffsetChange>> {
        let partitions = self.topic_partitions(topic, None).await?;
        self.reset_offsets_of(group, &partitions, target).await
    }

    /// Moves `group`'s committed offsets of `partitions` to `target` (clamped to each
    /// partition's [log start, log end]) and returns the changes. Refused with
    /// [`ClientError::GroupNotEmpty`] while the group has members.
    pub async fn reset_offsets_of(
        &self,
        group: &str,
        partitions: &[TopicPartition],
        target: OffsetTarget,
    ) -> Result<Vec<OffsetChange>> {
        self.reset_offsets_reporting(group, partitions, target, &mut |_| {}).await
    }

    /// [`reset_offsets_of`](Self::reset_offsets_of), calling `planned` as each partition's new
    /// offset is known (before the one commit of them all).
    pub async fn reset_offsets_reporting(
        &self,
        group: &str,
        partitions: &[TopicPartition],
        target: OffsetTarget,
        planned: &mut (dyn FnMut(&OffsetChange) + Send),
    ) -> Result<Vec<OffsetChange>> {
        self.ensure_inactive(group).await?;
        let changes = self.plan_offset_reset_reporting(group, partitions, target, planned).await?;
        let offsets: BTreeMap<TopicPartition, i64> =
            changes.iter().map(|change| (change.partition.clone(), change.offset)).collect();
        match offsets::commit(&self.coordinator(group), &CommitIdentity::simple(), &offsets).await {
            Ok(()) => Ok(changes),
            // The coordinator refuses a simple commit once the group has members again.
            Err(ClientError::CommitFailed { .. }) => Err(self.not_empty(group).await),
            Err(error) => Err(error),
        }
    }

    async fn ensure_inactive(&self, group: &str) -> Result<()> {
        let description = self.describe_group(group).await?;
        if description.is_inactive() {
            return Ok(());
        }
        Err(ClientError::GroupNotEmpty {
            group: group.to_string(),
            state: description.state,
            members: description.members.len(),
        })
    }

    /// The GroupNotEmpty error for `group`, with its state if it can be described.
    async fn not_empty(&self, group: &str) -> ClientError {
        match self.describe_group(group).await {
            Ok(description) => ClientError::GroupNotEmpty {
                group: group.to_string(),
                state: description.state,
                members: description.members.len(),
            },
            Err(error) => error,
        }
    }

    /// Deletes groups and their committed offsets. Only groups without members can be deleted
    /// ([`ClientError::GroupNotEmpty`]); an unknown group is GROUP_ID_NOT_FOUND.
    pub async fn delete_groups(&self, groups: &[String]) -> Result<()> {
        for group in groups {
            let build = |_version| DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
            let check = |response: DeleteGroupsResponse| {
                let code = response.results.first().map_or(0, |result| result.error_code);
                check_coordinator(code, || format!("delete group {group:?}"))?;
                Ok(code)
            };
            match self.coordinator(group).call("delete group", Duration::ZERO, build, check).await? {
                0 => tracing::debug!(group, "deleted the group"),
                NON_EMPTY_GROUP => return Err(self.not_empty(group).await),
                code => return Err(ClientError::kafka(code, format!("delete group {group:?}"), None)),
            }
        }
        Ok(())
    }
}

/// Milliseconds since the Unix epoch now.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Seconds from `timestamp_ms` to `now_ms`, never negative (a producer clock ahead of ours).
fn age_seconds(timestamp_ms: i64, now_ms: i64) -> f64 {
    (now_ms.saturating_sub(timestamp_ms)).max(0) as f64 / 1000.0
}

#[cfg(test)]
mod lag_seconds_tests {
    use super::age_seconds;

    // Goal: lag in seconds is the age of the record, never negative when clocks disagree.
    #[test]
    fn lag_seconds_is_the_age_and_never_negative() {
        assert_eq!(age_seconds(1_000, 4_500), 3.5);
        assert_eq!(age_seconds(9_000, 4_500), 0.0);
    }
}
