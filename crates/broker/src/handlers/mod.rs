//! Request handlers: each converts a decoded `kafka-protocol` request into calls on the
//! metadata node and the partitions, and builds the response. Wire types stay here; the
//! partition layer sees plain values.

pub mod access;
pub mod acls;
pub mod admin;
pub mod authorized_operations;
pub mod configs;
pub mod delete_records;
pub mod describe_producers;
pub mod elect;
pub mod fetch;
pub mod groups;
pub mod leader_epoch;
pub mod list_offsets;
pub mod log_dirs;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod producer_id;
pub mod quorum;
pub mod quotas;
pub mod reassign;
pub mod refused;
pub mod sasl;
pub mod users;

use sluice_meta::{CommandError, MetaError, MetadataView, TopicRecord};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::kafka_code;

/// `value` if the response version has the field (`version >= since`), else the field's
/// default: `kafka-protocol` refuses to encode a non-default value in a version without it.
pub(crate) fn since<T>(version: i16, since: i16, value: T, default: T) -> T {
    if version >= since {
        value
    } else {
        default
    }
}

/// A string for a response.
pub(crate) fn str_bytes(text: impl Into<String>) -> StrBytes {
    StrBytes::from_string(text.into())
}

/// Kafka's error code and message for a failed metadata command.
pub(crate) fn meta_error(error: &MetaError) -> (i16, Option<StrBytes>) {
    (error.kafka_error_code(), Some(str_bytes(error.to_string())))
}

/// Kafka's error code and message for a rejected command.
pub(crate) fn command_error(error: &CommandError) -> (i16, Option<StrBytes>) {
    (error.kafka_error_code(), Some(str_bytes(error.to_string())))
}

/// A requested partition resolved to the local leader replica (or the error code a client
/// gets), with what the request asks of it.
pub(crate) struct Lookup<T> {
    /// Index of the topic in the request (responses keep request order).
    pub topic_slot: usize,
    /// Partition index.
    pub index: i32,
    /// The request's arguments for this partition.
    pub args: T,
    /// The local replica, or the error code.
    pub resolved: Result<std::sync::Arc<crate::partition::Partition>, i16>,
}

/// Resolves `topic`/`partition` to the local replica: the metadata's errors first, then
/// NOT_LEADER_OR_FOLLOWER if this broker does not host it.
pub(crate) fn resolve(
    broker: &crate::broker::Broker,
    view: &MetadataView,
    topic: &str,
    partition: i32,
) -> Result<std::sync::Arc<crate::partition::Partition>, i16> {
    find_partition(view, topic, partition)
        .and_then(|_| broker.partitions.get(topic, partition).ok_or(kafka_code::NOT_LEADER_OR_FOLLOWER))
}

/// Looks up a partition of a topic by name: the topic record, or the error a client gets
/// (INVALID_TOPIC_EXCEPTION for a name Kafka would refuse, else UNKNOWN_TOPIC_OR_PARTITION).
pub(crate) fn find_partition<'view>(
    view: &'view MetadataView,
    topic: &str,
    partition: i32,
) -> Result<&'view TopicRecord, i16> {
    let Some(record) = view.topics.get(topic) else {
        return Err(if sluice_meta::commands::validate_topic_name(topic).is_err() {
            kafka_code::INVALID_TOPIC_EXCEPTION
        } else {
            kafka_code::UNKNOWN_TOPIC_OR_PARTITION
        });
    };
    if partition < 0 || partition as usize >= record.partitions.len() {
        return Err(kafka_code::UNKNOWN_TOPIC_OR_PARTITION);
    }
    Ok(record)
}
