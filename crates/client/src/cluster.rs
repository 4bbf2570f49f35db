//! The cluster as the client sees it: bootstrap, one connection per broker, the metadata cache,
//! and the retry loop every component uses.
//!
//! Why a shared [`Cluster`]: producer, consumer and admin need the same things — which broker
//! leads a partition and a live connection to it — and a process with several of them should
//! not open several sockets per broker. `Cluster` is cheap to clone (an `Arc`).
//!
//! Metadata is refreshed when it is older than `metadata_max_age`, when a topic is asked for
//! that the cache does not hold, and whenever a request fails with an error that means the
//! cache is wrong ([`ClientError::invalidates_metadata`]: NOT_LEADER_OR_FOLLOWER,
//! UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, a dead connection, ...).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_proto::kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use sluice_proto::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use sluice_proto::kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, ListOffsetsRequest, MetadataRequest, TopicName,
};
use sluice_proto::kafka_protocol::protocol::{Request, StrBytes};

use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::{ClientError, Result};

/// Broker id used for a bootstrap connection (before the broker's real id is known).
const BOOTSTRAP_BROKER_ID: i32 = -1;
/// Kafka's code for UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// ListOffsets timestamp meaning "the log start offset".
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets timestamp meaning "the log end offset" (the high watermark).
pub const LATEST_TIMESTAMP: i64 = -1;
/// Kafka's READ_UNCOMMITTED isolation level (no transactions in Sluice yet).
pub const READ_UNCOMMITTED: i8 = 0;
/// Most bytes [`Cluster::record_timestamp_at`] asks for: a batch header and its first records
/// (a larger first batch still comes whole).
pub const TIMESTAMP_PROBE_BYTES: i32 = 64 * 1024;
/// FindCoordinator key type of a consumer group (1 would be a transactional id).
const COORDINATOR_KEY_TYPE_GROUP: i8 = 0;
/// FindCoordinator v4 is the first that batches keys (`coordinator_keys`).
const FIND_COORDINATOR_BATCHED_VERSION: i16 = 4;

/// One partition as the metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id, or -1 when there is none.
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// Replicas the broker reports offline (down, or a replica that failed to open there).
    pub offline_replicas: Vec<i32>,
    /// Kafka error code for this partition (0 when healthy).
    pub error_code: i16,
}

/// One topic as the metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Whether it is internal (`__consumer_offsets`).
    pub is_internal: bool,
    /// Partitions in index order.
    pub partitions: Vec<PartitionInfo>,
}

/// A broker as the metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Broker id.
    pub id: i32,
    /// `host:port` to connect to.
    pub address: String,
    /// Rack, if configured.
    pub rack: Option<String>,
}

/// A snapshot of cluster metadata.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    /// Cluster id, if the broker reports one.
    pub cluster_id: Option<String>,
    /// Controller broker id, or -1.
    pub controller_id: i32,
    /// Brokers by id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Topics by name (only healthy answers are cached).
    pub topics: BTreeMap<String, TopicInfo>,
}

#[derive(Debug)]
struct State {
    metadata: Metadata,
    refreshed_at: Option<Instant>,
    connections: HashMap<i32, Arc<Connection>>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    state: Mutex<State>,
    /// Serialises connection dials so concurrent callers share one new connection per broker.
    dialing: tokio::sync::Mutex<()>,
}

/// Shared connections and metadata (cheap to clone).
#[derive(Debug, Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl Cluster {
    /// Connects to the first reachable bootstrap server and loads the broker list.
    pub async fn connect(config: ClientConfig) -> Result<Cluster> {
        if config.bootstrap_servers.is_empty() {
            return Err(ClientError::InvalidConfig { reason: "no bootstrap servers".to_string() });
        }
        let cluster = Cluster {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State {
                    metadata: Metadata::default(),
                    refreshed_at: None,
                    connections: HashMap::new(),
                }),
                dialing: tokio::sync::Mutex::new(()),
            }),
        };
        cluster.refresh(&[]).await?;
        Ok(cluster)
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The cached metadata.
    pub fn metadata(&self) -> Metadata {
        self.state().metadata.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks the cache stale so the next lookup refreshes it.
    pub fn invalidate(&self) {
        self.state().refreshed_at = None;
    }

    /// A live connection to `broker_id`, dialled if needed.
    pub async fn connection(&self, broker_id: i32) -> Result<Arc<Connection>> {
        if let Some(connection) = self.live_connection(broker_id) {
            return Ok(connection);
        }
        let _dialing = self.inner.dialing.lock().await;
        if let Some(connection) = self.live_connection(broker_id) {
            return Ok(connection);
        }
        let address = self.state().metadata.brokers.get(&broker_id).map(|broker| broker.address.clone());
        let Some(address) = address else {
            self.invalidate();
            return Err(ClientError::kafka(8, format!("broker {broker_id} is not in the metadata"), None));
        };
        let connection = Arc::new(self.dial(&address).await?);
        self.state().connections.insert(broker_id, connection.clone());
        Ok(connection)
    }

    fn live_connection(&self, broker_id: i32) -> Option<Arc<Connection>> {
        let mut state = self.state();
        match state.connections.get(&broker_id) {
            Some(connection) if !connection.is_closed() => Some(connection.clone()),
            Some(_) => {
                state.connections.remove(&broker_id);
                None
            }
            None => None,
        }
    }

    async fn dial(&self, address: &str) -> Result<Connection> {
        let config = &self.inner.config;
        Connection::connect(
            address,
            &config.client_id,
            config.connect_timeout,
            config.request_timeout,
            config.sasl.as_ref(),
            config.tls.as_ref(),
        )
        .await
    }

    /// A connection to any broker: a known one if possible, else a bootstrap server.
    pub async fn any_connection(&self) -> Result<Arc<Connection>> {
        let known: Vec<i32> = {
            let state = self.state();
            let mut ids: Vec<i32> = state.connections.keys().copied().collect();
            ids.extend(state.metadata.brokers.keys().copied());
            ids
        };
        for broker_id in known {
            if broker_id == BOOTSTRAP_BROKER_ID {
                if let Some(connection) = self.live_connection(broker_id) {
                    return Ok(connection);
                }
                continue;
            }
            match self.connection(broker_id).await {
                Ok(connection) => return Ok(connection),
                Err(error) => tracing::debug!(broker_id, %error, "broker unreachable, trying another"),
            }
        }
        let mut last_error = String::from("no address tried");
        for address in &self.inner.config.bootstrap_servers {
            match self.dial(address).await {
                Ok(connection) => {
                    let connection = Arc::new(connection);
                    self.state().connections.insert(BOOTSTRAP_BROKER_ID, connection.clone());
                    return Ok(connection);
                }
                Err(error) => last_error = error.to_string(),
            }
        }
        Err(ClientError::NoBrokerReachable {
            bootstrap: self.inner.config.bootstrap_servers.join(","),
            reason: last_error,
        })
    }

    /// Fetches metadata for `topics` (all topics when empty) and merges it into the cache.
    /// Topics the broker does not know are removed from the cache and reported by
    /// [`Cluster::topic`].
    pub async fn refresh(&self, topics: &[String]) -> Result<Metadata> {
        let connection = self.any_connection().await?;
        let request = MetadataRequest::default()
            .with_topics(if topics.is_empty() {
                None
            } else {
                Some(
                    topics
                        .iter()
                        .map(|topic| {
                            MetadataRequestTopic::default()
                                .with_name(Some(TopicName(StrBytes::from_string(topic.clone()))))
                        })
                        .collect(),
                )
            })
            .with_allow_auto_topic_creation(false);
        let response = connection.call(&request, Duration::ZERO).await?;
        let mut state = self.state();
        let metadata = &mut state.metadata;
        metadata.cluster_id = response.cluster_id.map(|id| id.to_string());
        metadata.controller_id = response.controller_id.0;
        metadata.brokers = response
            .brokers
            .iter()
            .map(|broker| {
                let info = BrokerInfo {
                    id: broker.node_id.0,
                    address: format!("{}:{}", broker.host, broker.port),
                    rack: broker.rack.as_ref().map(|rack| rack.to_string()),
                };
                (info.id, info)
            })
            .collect();
        if topics.is_empty() {
            metadata.topics.clear();
        }
        for topic in response.topics {
            let Some(name) = topic.name.map(|name| name.0.to_string()) else { continue };
            if topic.error_code != 0 {
                metadata.topics.remove(&name);
                continue;
            }
            let mut partitions: Vec<PartitionInfo> = topic
                .partitions
                .iter()
                .map(|partition| PartitionInfo {
                    partition: partition.partition_index,
                    leader: partition.leader_id.0,
                    leader_epoch: partition.leader_epoch,
                    replicas: partition.replica_nodes.iter().map(|id| id.0).collect(),
                    isr: partition.isr_nodes.iter().map(|id| id.0).collect(),
                    offline_replicas: partition.offline_replicas.iter().map(|id| id.0).collect(),
                    error_code: partition.error_code,
                })
                .collect();
            partitions.sort_by_key(|partition| partition.partition);
            metadata.topics.insert(name.clone(), TopicInfo { name, is_internal: topic.is_internal, partitions });
        }
        state.refreshed_at = Some(Instant::now());
        // A connection dialled by address stays usable once the broker's id is known; dropping
        // ids no longer in the cluster closes their sockets.
        let live_ids: Vec<i32> = state.metadata.brokers.keys().copied().collect();
        state.connections.retain(|id, _| *id == BOOTSTRAP_BROKER_ID || live_ids.contains(id));
        Ok(state.metadata.clone())
    }

    /// The topic's metadata, refreshing the cache when it is stale or lacks the topic.
    /// [`ClientError::UnknownTopic`] if the broker does not know it.
    pub async fn topic(&self, topic: &str) -> Result<TopicInfo> {
        let cached = {
            let state = self.state();
            let fresh = state.refreshed_at.is_some_and(|at| at.elapsed() < self.inner.config.metadata_max_age);
            state.metadata.topics.get(topic).filter(|_| fresh).cloned()
        };
        if let Some(info) = cached {
            return Ok(info);
        }
        match self.refresh(&[topic.to_string()]).await {
            Ok(metadata) => metadata
                .topics
                .get(topic)
                .cloned()
                .ok_or_else(|| ClientError::UnknownTopic { topic: topic.to_string() }),
            Err(error) if error.is_retriable() => {
                // Stale metadata beats none while the cluster is unreachable (as in Kafka's
                // clients): records still queue, and requests fail and retry on their own.
                let stale = self.state().metadata.topics.get(topic).cloned();
                tracing::debug!(topic, %error, stale = stale.is_some(), "metadata refresh failed");
                stale.ok_or(error)
            }
            Err(error) => Err(error),
        }
    }

    /// The cached leader of `topic`/`partition`, without any refresh: `None` when unknown.
    pub fn cached_leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let state = self.state();
        let info = state.metadata.topics.get(topic)?;
        let found = info.partitions.iter().find(|p| p.partition == partition)?;
        (found.leader >= 0 && state.metadata.brokers.contains_key(&found.leader)).then_some(found.leader)
    }

    /// The topic's partition count, from the cache when fresh (no copy of the topic), else
    /// after a refresh.
    pub async fn partition_count(&self, topic: &str) -> Result<i32> {
        {
            let state = self.state();
            let fresh = state.refreshed_at.is_some_and(|at| at.elapsed() < self.inner.config.metadata_max_age);
            if let Some(info) = state.metadata.topics.get(topic).filter(|_| fresh) {
                return Ok(info.partitions.len() as i32);
            }
        }
        Ok(self.topic(topic).await?.partitions.len() as i32)
    }

    /// The leader of `topic`/`partition` from the cache (refreshed if needed); a retriable
    /// LEADER_NOT_AVAILABLE when there is none.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<i32> {
        let info = self.topic(topic).await?;
        let Some(found) = info.partitions.iter().find(|p| p.partition == partition) else {
            return Err(ClientError::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partition_count: info.partitions.len() as i32,
            });
        };
        if found.leader < 0 {
            self.invalidate();
            return Err(ClientError::kafka(5, format!("{topic}-{partition}"), None));
        }
        Ok(found.leader)
    }

    /// The broker coordinating `group_id` (one FindCoordinator to any broker, no retry: the
    /// caller's retry loop decides, see `crate::group`). COORDINATOR_NOT_AVAILABLE while the
    /// broker creates `__consumer_offsets` or elects its leader is retriable.
    pub async fn find_coordinator(&self, group_id: &str) -> Result<BrokerInfo> {
        let connection = self.any_connection().await?;
        let key = StrBytes::from_string(group_id.to_string());
        let request = FindCoordinatorRequest::default().with_key_type(COORDINATOR_KEY_TYPE_GROUP);
        let request = if connection.version_for::<FindCoordinatorRequest>()? >= FIND_COORDINATOR_BATCHED_VERSION {
            request.with_coordinator_keys(vec![key])
        } else {
            request.with_key(key)
        };
        let response: FindCoordinatorResponse = connection.call(&request, Duration::ZERO).await?;
        let (code, message, node_id, host, port) = match response.coordinators.into_iter().next() {
            Some(found) => (found.error_code, found.error_message, found.node_id.0, found.host, found.port),
            None => (response.error_code, response.error_message, response.node_id.0, response.host, response.port),
        };
        if code != 0 {
            let context = format!("find the coordinator of group {group_id:?}");
            return Err(ClientError::kafka(code, context, message.map(|m| m.to_string())));
        }
        Ok(BrokerInfo { id: node_id, address: format!("{host}:{port}"), rack: None })
    }

    /// A new connection to `broker` that is not shared with anyone: for a group member, whose
    /// JoinGroup may wait at the coordinator for a whole rebalance and must not hold up other
    /// requests (answers come back in request order on a connection), nor be held up by them.
    pub async fn dedicated_connection(&self, broker: &BrokerInfo) -> Result<Connection> {
        self.dial(&broker.address).await
    }

    /// The offset ListOffsets gives for `timestamp` (ms since the epoch, or
    /// [`EARLIEST_TIMESTAMP`] / [`LATEST_TIMESTAMP`]) on `topic`/`partition`, asked of its
    /// leader and retried; -1 when no record has a timestamp at or after `timestamp`.
    pub async fn list_offset(&self, topic: &str, partition: i32, timestamp: i64) -> Result<i64> {
        let request = ListOffsetsRequest::default()
            .with_replica_id(broker_id(-1))
            .with_isolation_level(READ_UNCOMMITTED)
            .with_topics(vec![ListOffsetsTopic::default().with_name(topic_name(topic)).with_partitions(vec![
                ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(timestamp),
            ])]);
        self.retry("list offsets", || async {
            let leader = self.leader(topic, partition).await?;
            let response = self.call_broker(leader, &request).await?;
            let answer = response
                .topics
                .iter()
                .flat_map(|answer| answer.partitions.iter())
                .find(|answer| answer.partition_index == partition)
                .ok_or_else(|| ClientError::UnexpectedResponse {
                    reason: format!("ListOffsets lacks {topic}-{partition}"),
                })?;
            ClientError::check(answer.error_code, || format!("list offsets of {topic}-{partition}"))?;
            Ok(answer.offset)
        })
        .await
    }

    /// The timestamp of the first record at or after `offset` in `topic`/`partition` (its
    /// batch's append time under LogAppendTime), from one Fetch of at most
    /// [`TIMESTAMP_PROBE_BYTES`] to the partition's leader (a broker returns the first batch
    /// whole even when it is larger). `None` when no record is there (the end of the log, or
    /// only control batches in the first answer).
    pub async fn record_timestamp_at(&self, topic: &str, partition: i32, offset: i64) -> Result<Option<i64>> {
        use sluice_proto::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
        use sluice_proto::kafka_protocol::messages::FetchRequest;
        use sluice_proto::records::{decode_record_batches, TimestampType};
        let request = FetchRequest::default()
            .with_replica_id(broker_id(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(TIMESTAMP_PROBE_BYTES)
            .with_isolation_level(READ_UNCOMMITTED)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default().with_topic(topic_name(topic)).with_partitions(vec![
                FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_current_leader_epoch(-1)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(TIMESTAMP_PROBE_BYTES),
            ])]);
        self.retry("fetch a record's timestamp", || async {
            let leader = self.leader(topic, partition).await?;
            let response = self.call_broker(leader, &request).await?;
            ClientError::check(response.error_code, || format!("fetch {topic}-{partition}"))?;
            let answer = response
                .responses
                .iter()
                .flat_map(|answer| answer.partitions.iter())
                .find(|answer| answer.partition_index == partition)
                .ok_or_else(|| ClientError::UnexpectedResponse {
                    reason: format!("Fetch lacks {topic}-{partition}"),
                })?;
            ClientError::check(answer.error_code, || format!("fetch {topic}-{partition}"))?;
            let Some(data) = &answer.records else { return Ok(None) };
            for batch in decode_record_batches(data)?.batches {
                if batch.header.is_control() {
                    continue;
                }
                let append_time = batch.header.timestamp_type() == TimestampType::LogAppend;
                if let Some(record) = batch.records.iter().find(|record| record.offset >= offset) {
                    return Ok(Some(if append_time { batch.header.max_timestamp } else { record.timestamp }));
                }
            }
            Ok(None)
        })
        .await
    }

    /// Calls `request` on `broker_id` once.
    pub async fn call_broker<R: Request>(&self, broker_id: i32, request: &R) -> Result<R::Response> {
        self.connection(broker_id).await?.call(request, Duration::ZERO).await
    }

    /// Calls `request` on any broker, retrying retriable failures with backoff.
    pub async fn call_any<R: Request>(&self, request: &R) -> Result<R::Response> {
        self.retry("request", || async { self.any_connection().await?.call(request, Duration::ZERO).await }).await
    }

    /// Calls `request` on the controller (admin requests), retrying with backoff.
    pub async fn call_controller<R: Request>(&self, request: &R) -> Result<R::Response> {
        self.retry("controller request", || async {
            let controller = self.state().metadata.controller_id;
            let connection =
                if controller >= 0 { self.connection(controller).await? } else { self.any_connection().await? };
            connection.call(request, Duration::ZERO).await
        })
        .await
    }

    /// Runs `operation` until it succeeds, fails with a non-retriable error, or has failed
    /// `retries_max` times; waits the backoff between attempts and refreshes metadata when the
    /// error says the cache is wrong.
    pub async fn retry<T, F, Fut>(&self, what: &str, mut operation: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0u32;
        loop {
            match operation().await {
                Ok(value) => return Ok(value),
                Err(error) if error.is_retriable() && attempt + 1 < self.inner.config.retries_max => {
                    let delay = self.inner.config.backoff.delay(attempt);
                    tracing::debug!(what, attempt, ?delay, %error, "retrying");
                    if error.invalidates_metadata() {
                        self.invalidate();
                    }
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Whether `error` is Kafka's UNKNOWN_TOPIC_OR_PARTITION.
pub fn is_unknown_topic(error: &ClientError) -> bool {
    matches!(error, ClientError::Kafka { code, .. } if *code == UNKNOWN_TOPIC_OR_PARTITION)
        || matches!(error, ClientError::UnknownTopic { .. })
}

/// Converts a topic name to the wire type.
pub fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// The wire broker id type.
pub fn broker_id(id: i32) -> BrokerId {
    BrokerId(id)
}
