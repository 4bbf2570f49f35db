//! Reads what each console page needs from the broker's shared components — never from the
//! request handlers — and hands it to [`super::pages`]. The synchronous functions take
//! partition locks and may read the log: they run on the blocking pool
//! ([`super::respond`]). The async ones read the group coordinator's shards.

use std::collections::{BTreeMap, HashMap};

use bytes::BytesMut;
use sluice_meta::MetadataView;
use sluice_proto::kafka_protocol::messages::{ApiKey, ConsumerProtocolAssignment};
use sluice_proto::records::{decode_record_batches, TimestampType};

use super::html::{parse_time, ValueFormat};
use super::pages::{self, *};
use super::{
    CONSOLE_READ_BYTES_MAX, CONSOLE_RECORDS_PER_PAGE_DEFAULT, CONSOLE_RECORDS_PER_PAGE_MAX, CONSOLE_ROWS_PER_PAGE,
};
use crate::broker::Broker;
use crate::cluster_health::{health_problems, OfflineHere};
use crate::coordinator::lag::Lag;
use crate::coordinator::shard::now_ms;
use crate::coordinator::{partition_for, OFFSETS_TOPIC};
use crate::partition::partition::read_regions;

/// The newest consumer protocol (assignment) version whose fields we know; newer ones are read
/// as this (as the client does, `crates/client/src/group/protocol.rs`).
const CONSUMER_PROTOCOL_VERSION_MAX: i16 = 3;

/// A JoinGroup version with a v0 response header, used only to carry the assignment through
/// `sluice_proto`'s length guard (see [`decode_assignment`]).
const GUARD_CARRIER_VERSION: i16 = 5;

const _: () = assert!(CONSUMER_PROTOCOL_VERSION_MAX <= GUARD_CARRIER_VERSION);

fn offline_here(broker: &Broker) -> OfflineHere {
    OfflineHere { broker_id: broker.node_id, partitions: broker.partitions.offline_here() }
}

/// The front page. Blocking (partition locks).
pub fn cluster(broker: &Broker) -> String {
    let view = broker.view();
    let raft = broker.meta.metrics().borrow().clone();
    let controller = broker.meta.current_leader().and_then(|id| i32::try_from(id).ok());
    let hosted = broker.partitions.all();
    let data = Cluster {
        node_id: broker.node_id,
        cluster_id: broker.cluster_id.clone(),
        metadata_leader: raft.current_leader,
        raft_term: raft.current_term,
        applied_index: raft.last_applied.map_or(0, |log_id| log_id.index),
        brokers: view
            .brokers
            .values()
            .map(|b| BrokerRow {
                id: b.broker_id,
                address: b.kafka_addr.clone(),
                rack: b.rack.clone(),
                fenced: b.fenced,
                epoch: b.broker_epoch,
            })
            .collect(),
        topics: view.topics.len(),
        partitions: view.topics.values().map(|t| t.partitions.len()).sum(),
        hosted: hosted.len(),
        led_here: hosted.iter().filter(|p| p.leadership().is_leader(broker.node_id)).count(),
        problems: health_problems(&view, controller, &offline_here(broker)),
    };
    pages::cluster(&data)
}

/// The topics list, page `page_index`. Blocking (partition locks, for sizes).
pub fn topics(broker: &Broker, page_index: usize) -> String {
    let view = broker.view();
    let rows: Vec<TopicRow> = view
        .topics
        .values()
        .skip(page_index.saturating_mul(CONSOLE_ROWS_PER_PAGE))
        .take(CONSOLE_ROWS_PER_PAGE)
        .map(|topic| {
            let local: Vec<u64> = topic
                .partitions
                .iter()
                .filter_map(|p| broker.partitions.get(&topic.name, p.partition as i32)?.size_bytes())
                .collect();
            TopicRow {
                name: topic.name.clone(),
                partitions: topic.partitions.len(),
                replication_factor: topic.replication_factor,
                under_replicated: topic.partitions.iter().filter(|p| p.isr.len() < p.replicas.len()).count(),
                without_leader: topic.partitions.iter().filter(|p| p.leader.is_none()).count(),
                hosted: local.len(),
                hosted_bytes: local.iter().sum(),
                totals: broker.metrics.topic_totals(&topic.name),
                rates: broker.metrics.topic_rates(&topic.name),
            }
        })
        .collect();
    pages::topics(broker.node_id, &rows, page_index, view.topics.len())
}

/// One topic's page. Blocking (partition locks).
pub fn topic(broker: &Broker, name: &str, page_index: usize) -> (&'static str, String) {
    let view = broker.view();
    let Some(topic) = view.topics.get(name) else {
        return ("404 Not Found", pages::message(broker.node_id, "Topic not found", &format!("No topic {name}.")));
    };
    let offline = offline_here(broker);
    let rows = topic
        .partitions
        .iter()
        .skip(page_index.saturating_mul(CONSOLE_ROWS_PER_PAGE))
        .take(CONSOLE_ROWS_PER_PAGE)
        .map(|p| {
            let index = p.partition as i32;
            let log = broker.partitions.get(name, index).and_then(|local| {
                let (start, end, size_bytes) = local.log_stats()?;
                Some(LogRow { start, high_watermark: local.high_watermark_now(), end, size_bytes })
            });
            PartitionRow {
                partition: index,
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                offline: offline.offline_replicas(&view, topic, p),
                log,
            }
        })
        .collect();
    let data = Topic {
        node_id: broker.node_id,
        name: name.to_string(),
        topic_id: topic.topic_id.to_string(),
        configs: topic.config_overrides.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        partition_count: topic.partitions.len(),
        rows,
        page: page_index,
    };
    ("200 OK", pages::topic(&data))
}

/// The record browser. Blocking (reads the log).
pub fn records(broker: &Broker, params: &BTreeMap<String, String>) -> (&'static str, String) {
    let count = params
        .get("count")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(CONSOLE_RECORDS_PER_PAGE_DEFAULT)
        .clamp(1, CONSOLE_RECORDS_PER_PAGE_MAX);
    let query = RecordQuery {
        topic: params.get("topic").cloned().unwrap_or_default(),
        partition: params.get("partition").and_then(|p| p.parse().ok()).unwrap_or(0),
        from: params.get("from").cloned().filter(|f| f == "offset" || f == "time").unwrap_or_else(|| "latest".into()),
        offset: params.get("offset").and_then(|o| o.trim().parse().ok()),
        time: params.get("time").cloned().filter(|t| !t.is_empty()),
        count,
        format: ValueFormat::parse(params.get("format").map(String::as_str)),
    };
    let mut data =
        Records { node_id: broker.node_id, query, log_start: 0, high_watermark: 0, records: Vec::new(), problem: None };
    match read_records(broker, &data.query) {
        Ok((log_start, high_watermark, records)) => {
            data.log_start = log_start;
            data.high_watermark = high_watermark;
            data.records = records;
            ("200 OK", pages::records(&data))
        }
        Err(problem) => {
            data.problem = Some(problem);
            ("200 OK", pages::records(&data))
        }
    }
}

/// (log start, high watermark, records) from where `query` says, or why not.
fn read_records(broker: &Broker, query: &RecordQuery) -> Result<(i64, i64, Vec<RecordRow>), String> {
    let view = broker.view();
    let leader = view
        .topics
        .get(&query.topic)
        .ok_or_else(|| format!("No topic {}.", query.topic))?
        .partitions
        .get(usize::try_from(query.partition).map_err(|_| "No such partition.".to_string())?)
        .ok_or_else(|| format!("Topic {} has no partition {}.", query.topic, query.partition))?
        .leader;
    let not_here = || match leader {
        Some(leader) => {
            format!("This broker does not lead this partition: open the console of broker {leader}, its leader.")
        }
        None => "This partition has no leader: nothing can be read now.".to_string(),
    };
    if leader != Some(broker.node_id) {
        return Err(not_here());
    }
    let partition = broker.partitions.get(&query.topic, query.partition).ok_or_else(not_here)?;
    let (_, high_watermark, log_start) = partition.offsets().ok_or_else(not_here)?;
    let start = match query.from.as_str() {
        "offset" => query.offset.ok_or("Give an offset.")?.clamp(log_start, high_watermark),
        "time" => {
            let time = query
                .time
                .as_deref()
                .and_then(parse_time)
                .ok_or("Give a time as YYYY-MM-DDTHH:MM[:SS] (UTC) or milliseconds since the Unix epoch.")?;
            match partition.offset_for(time, -1).map_err(|e| e.to_string())? {
                (-1, _, _) => return Ok((log_start, high_watermark, Vec::new())),
                (offset, _, _) => offset,
            }
        }
        _ => (high_watermark - query.count as i64).max(log_start),
    };
    if start >= high_watermark {
        return Ok((log_start, high_watermark, Vec::new()));
    }
    let read = partition.read(start, CONSOLE_READ_BYTES_MAX, -1, false).map_err(|e| e.to_string())?;
    let data = read_regions(&read.regions, read.bytes).map_err(|e| e.to_string())?;
    let decoded = decode_record_batches(&data).map_err(|e| format!("cannot decode the batches at {start}: {e}"))?;
    let records = decoded
        .batches
        .into_iter()
        .filter(|batch| !batch.header.is_control())
        .flat_map(|batch| batch.records)
        .filter(|record| record.offset >= start && record.offset < read.high_watermark)
        .take(query.count)
        .map(|record| RecordRow {
            offset: record.offset,
            timestamp: record.timestamp,
            log_append_time: record.timestamp_type == TimestampType::LogAppend,
            key: record.key,
            value: record.value,
            headers: record.headers.into_iter().map(|(name, value)| (name.to_string(), value)).collect(),
        })
        .collect();
    Ok((log_start, high_watermark, records))
}

/// The groups coordinated here, page `page_index`.
pub async fn groups(broker: &Broker, page_index: usize) -> String {
    let mut listed = Vec::new();
    for shard in broker.groups.shards() {
        listed.extend(shard.list().await);
    }
    listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let totals = broker.lag_history.totals();
    let rows: Vec<GroupRow> = listed
        .iter()
        .skip(page_index.saturating_mul(CONSOLE_ROWS_PER_PAGE))
        .take(CONSOLE_ROWS_PER_PAGE)
        .map(|group| {
            let lag = totals.get(&group.group_id);
            GroupRow {
                group_id: group.group_id.clone(),
                state: group.state.to_string(),
                protocol_type: group.protocol_type.clone(),
                lag_sum: lag.map(|l| l.0),
                max_lag_seconds: lag.and_then(|l| l.1),
            }
        })
        .collect();
    pages::groups(broker.node_id, &rows, page_index, listed.len())
}

/// One group's page, or why it cannot be shown here.
pub async fn group(broker: &Broker, group_id: &str, page_index: usize) -> (&'static str, String) {
    let view = broker.view();
    let shard = match broker.groups.shard_for(&view, group_id) {
        Ok(shard) => shard,
        Err(_) => {
            let message = match coordinator_of(&view, group_id) {
                Some(leader) if leader != broker.node_id => {
                    format!("Group {group_id} is coordinated by broker {leader}: open its console.")
                }
                _ => format!("The coordinator of group {group_id} is not available here now."),
            };
            return ("404 Not Found", pages::message(broker.node_id, "Group not here", &message));
        }
    };
    let Some(description) = shard.describe(group_id).await else {
        return ("404 Not Found", pages::message(broker.node_id, "Group not found", &format!("No group {group_id}.")));
    };
    let offsets = shard.fetch_offsets(group_id, None).await;
    let members: Vec<MemberRow> = description
        .members
        .iter()
        .map(|member| MemberRow {
            member_id: member.member_id.clone(),
            instance_id: member.group_instance_id.clone(),
            client_id: member.client_id.clone(),
            host: member.client_host.clone(),
            assignment: if description.protocol_type == "consumer" {
                decode_assignment(&member.assignment)
            } else {
                Vec::new()
            },
        })
        .collect();
    let (refreshed_at_ms, latest) = broker.lag_history.latest(group_id);
    let refreshed: HashMap<(&str, i32), &Lag> = latest.iter().map(|l| ((l.topic.as_str(), l.partition), l)).collect();
    let assigned: HashMap<(&str, i32), &str> = members
        .iter()
        .flat_map(|m| m.assignment.iter().map(move |(t, p)| ((t.as_str(), *p), m.member_id.as_str())))
        .collect();
    let mut committed: Vec<((String, i32), i64)> =
        offsets.into_iter().filter_map(|(key, value)| Some((key, value?.offset))).collect();
    committed.sort();
    let partition_count = committed.len();
    let partitions = committed
        .into_iter()
        .skip(page_index.saturating_mul(CONSOLE_ROWS_PER_PAGE))
        .take(CONSOLE_ROWS_PER_PAGE)
        .map(|((topic, partition), committed)| {
            let led_here = view
                .topics
                .get(&topic)
                .and_then(|t| t.partitions.get(usize::try_from(partition).ok()?))
                .is_some_and(|p| p.leader == Some(broker.node_id));
            let refreshed = refreshed.get(&(topic.as_str(), partition)).filter(|l| l.committed == committed);
            let high_watermark = match broker.partitions.get(&topic, partition) {
                Some(local) if led_here => Some(local.high_watermark_now()),
                _ => refreshed.map(|l| l.committed + l.records),
            };
            let member = assigned.get(&(topic.as_str(), partition)).map(|m| m.to_string());
            GroupPartitionRow {
                lag_records: high_watermark.map(|end| (end - committed).max(0)),
                lag_seconds: refreshed.and_then(|l| l.seconds),
                high_watermark,
                topic,
                partition,
                committed,
                member,
            }
        })
        .collect();
    let data = Group {
        node_id: broker.node_id,
        group_id: group_id.to_string(),
        state: description.state.as_str().to_string(),
        protocol_type: description.protocol_type.clone(),
        protocol: description.protocol_name.clone(),
        members,
        partitions,
        partition_count,
        page: page_index,
        samples: broker.lag_history.samples(group_id),
        refreshed_at_ms,
        now_ms: now_ms(),
    };
    ("200 OK", pages::group(&data))
}

/// The broker leading the `__consumer_offsets` partition of `group_id`.
fn coordinator_of(view: &MetadataView, group_id: &str) -> Option<i32> {
    let topic = view.topics.get(OFFSETS_TOPIC)?;
    let index = partition_for(group_id, topic.partitions.len());
    topic.partitions.get(usize::try_from(index).ok()?)?.leader
}

/// A consumer group member's assignment (Kafka's ConsumerProtocolAssignment, version prefix
/// included) as (topic, partition) pairs, sorted; empty when it does not decode. Decoded
/// through `sluice_proto`'s length guard: it is a client's bytes.
fn decode_assignment(bytes: &[u8]) -> Vec<(String, i32)> {
    if bytes.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    if version < 0 {
        return Vec::new();
    }
    // The guard is reached through decode_response: a v0 response header (4 bytes) in front.
    let mut payload = BytesMut::with_capacity(4 + bytes.len() - 2);
    payload.extend_from_slice(&[0, 0, 0, 0]);
    payload.extend_from_slice(&bytes[2..]);
    let version = version.min(CONSUMER_PROTOCOL_VERSION_MAX);
    let Ok((_, assignment)) =
        sluice_proto::decode_response::<ConsumerProtocolAssignment>(ApiKey::JoinGroup, version, payload.freeze())
    else {
        return Vec::new();
    };
    let mut pairs: Vec<(String, i32)> = assignment
        .assigned_partitions
        .iter()
        .flat_map(|topic| topic.partitions.iter().map(|&p| (topic.topic.0.to_string(), p)))
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs
}
