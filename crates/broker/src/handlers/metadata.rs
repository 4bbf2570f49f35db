//! Metadata: brokers, controller, cluster id, and the topics asked for (all of them when the
//! request says so), with each partition's leader, leader epoch, replicas and ISR, and, when
//! asked, the authorized operations on each topic and the cluster (`authorized_operations`).
//!
//! Auto topic creation (Kafka's `auto.create.topics.enable`, on by default, with
//! `num.partitions` partitions and `default.replication.factor`): a requested topic that does
//! not exist is created when the broker allows it and the request does not forbid it
//! (`allow_auto_topic_creation`, v4+; older versions always allow). Unlike Kafka, which answers
//! LEADER_NOT_AVAILABLE and lets the client retry, the topic is created, applied and opened here
//! before the answer, so the client's next request finds its partitions.

use std::collections::BTreeMap;

use sluice_meta::{Command, CommandError, MetaError, MetadataView, TopicRecord};
use sluice_proto::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use sluice_proto::kafka_protocol::messages::{BrokerId as WireBrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;

use crate::broker::Broker;
use crate::cluster_health::OfflineHere;
use crate::handlers::{authorized_operations, since, str_bytes};
use crate::kafka_code;

/// Answers a Metadata request of `version`.
/// Brokers are given by their endpoint on `listener`, the one the client came in on.
pub async fn handle(broker: &Broker, version: i16, request: MetadataRequest, listener: &str) -> MetadataResponse {
    let all_topics = match &request.topics {
        None => true,
        Some(topics) => topics.is_empty() && version == 0,
    };
    let allow_auto_create = broker.defaults.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    let mut view = broker.view();
    let mut errors: BTreeMap<String, i16> = BTreeMap::new();
    if !all_topics && allow_auto_create {
        let missing: Vec<String> =
            requested_names(&request).into_iter().filter(|n| !view.topics.contains_key(n)).collect();
        for name in missing {
            if let Err(code) = auto_create(broker, &name).await {
                errors.insert(name, code);
            }
        }
        view = broker.view();
    }
    let offline_here = OfflineHere { broker_id: broker.node_id, partitions: broker.partitions.offline_here() };
    let topic_metadata =
        |view: &MetadataView, topic: &TopicRecord, version: i16| topic_metadata(view, topic, version, &offline_here);
    let topics: Vec<MetadataResponseTopic> = if all_topics {
        view.topics.values().map(|topic| topic_metadata(&view, topic, version)).collect()
    } else {
        let requested = request.topics.as_deref().unwrap_or_default();
        requested
            .iter()
            .map(|wanted| match &wanted.name {
                Some(name) => match view.topics.get(name.0.as_str()) {
                    Some(topic) => topic_metadata(&view, topic, version),
                    None => {
                        let code =
                            errors.get(name.0.as_str()).copied().unwrap_or_else(|| missing_topic_code(name.0.as_str()));
                        MetadataResponseTopic::default().with_name(Some(name.clone())).with_error_code(code)
                    }
                },
                None => match view.topic_by_id(wanted.topic_id) {
                    Some(topic) => topic_metadata(&view, topic, version),
                    None => MetadataResponseTopic::default()
                        .with_topic_id(since(version, 10, wanted.topic_id, Uuid::nil()))
                        .with_error_code(kafka_code::UNKNOWN_TOPIC_ID),
                },
            })
            .collect()
    };
    // Authorized operations (v8+), for the topics found, when asked.
    let topic_operations = authorized_operations::when_asked(
        version >= 8 && request.include_topic_authorized_operations,
        authorized_operations::TOPIC,
    );
    let topics = topics
        .into_iter()
        .map(|topic| {
            if topic.error_code == kafka_code::NONE {
                topic.with_topic_authorized_operations(topic_operations)
            } else {
                topic
            }
        })
        .collect();
    // The cluster's are in Metadata v8–v10 only (DescribeCluster carries them from v11 on).
    let cluster_operations = authorized_operations::when_asked(
        (8..=10).contains(&version) && request.include_cluster_authorized_operations,
        authorized_operations::CLUSTER,
    );
    MetadataResponse::default()
        .with_brokers(brokers(&view, version, listener))
        .with_cluster_authorized_operations(cluster_operations)
        .with_cluster_id(since(version, 2, Some(str_bytes(broker.cluster_id.clone())), None))
        .with_controller_id(WireBrokerId(since(
            version,
            1,
            broker.meta.current_leader().map_or(-1, |id| id as i32),
            -1,
        )))
        .with_topics(topics)
}

fn requested_names(request: &MetadataRequest) -> Vec<String> {
    request.topics.iter().flatten().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect()
}

fn missing_topic_code(name: &str) -> i16 {
    if sluice_meta::commands::validate_topic_name(name).is_err() {
        kafka_code::INVALID_TOPIC_EXCEPTION
    } else {
        kafka_code::UNKNOWN_TOPIC_OR_PARTITION
    }
}

/// Creates `name` with the broker's defaults; `Err(code)` if it cannot be.
async fn auto_create(broker: &Broker, name: &str) -> Result<(), i16> {
    if sluice_meta::commands::validate_topic_name(name).is_err() {
        return Err(kafka_code::INVALID_TOPIC_EXCEPTION);
    }
    let live = broker.view().live_brokers().len().max(1);
    let replication_factor = broker.defaults.replication_factor.min(u16::try_from(live).unwrap_or(u16::MAX));
    let command = Command::CreateTopic {
        name: name.to_string(),
        topic_id: Uuid::new_v4(),
        partition_count: broker.defaults.partitions,
        replication_factor,
        configs: BTreeMap::new(),
    };
    match broker.propose_and_apply(command).await {
        Ok(proposed) => {
            tracing::info!(topic = name, log_index = proposed.log_index, "auto-created topic");
            Ok(())
        }
        // Another request created it meanwhile.
        Err(MetaError::Rejected(CommandError::TopicAlreadyExists { .. })) => Ok(()),
        Err(error) => {
            tracing::warn!(topic = name, %error, "auto topic creation failed");
            Err(match error.kafka_error_code() {
                kafka_code::UNKNOWN_SERVER_ERROR => kafka_code::LEADER_NOT_AVAILABLE,
                code => code,
            })
        }
    }
}

fn brokers(view: &MetadataView, version: i16, listener: &str) -> Vec<MetadataResponseBroker> {
    view.brokers
        .values()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            let (host, port) = split_host_port(b.endpoint(listener)?)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(WireBrokerId(b.broker_id))
                    .with_host(str_bytes(host))
                    .with_port(port)
                    .with_rack(since(version, 1, b.rack.clone().map(str_bytes), None)),
            )
        })
        .collect()
}

/// `host:port` → (host, port); IPv6 hosts may be bracketed.
pub(crate) fn split_host_port(address: &str) -> Option<(String, i32)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

fn topic_metadata(
    view: &MetadataView,
    topic: &TopicRecord,
    version: i16,
    offline_here: &OfflineHere,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let offline: Vec<WireBrokerId> =
                offline_here.offline_replicas(view, topic, p).into_iter().map(WireBrokerId).collect();
            MetadataResponsePartition::default()
                .with_error_code(if p.leader.is_some() { kafka_code::NONE } else { kafka_code::LEADER_NOT_AVAILABLE })
                .with_partition_index(p.partition as i32)
                .with_leader_id(WireBrokerId(p.leader.unwrap_or(-1)))
                .with_leader_epoch(since(version, 7, p.leader_epoch, -1))
                .with_replica_nodes(p.replicas.iter().map(|r| WireBrokerId(*r)).collect())
                .with_isr_nodes(p.isr.iter().map(|r| WireBrokerId(*r)).collect())
                .with_offline_replicas(since(version, 5, offline, Vec::new()))
        })
        .collect();
    MetadataResponseTopic::default()
        .with_error_code(kafka_code::NONE)
        .with_name(Some(TopicName(str_bytes(topic.name.clone()))))
        .with_topic_id(since(version, 10, topic.topic_id, Uuid::nil()))
        .with_is_internal(topic.name == crate::coordinator::OFFSETS_TOPIC)
        .with_partitions(partitions)
}
