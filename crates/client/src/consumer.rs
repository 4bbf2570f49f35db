//! The consumer: manual assignment, seek, poll, pause/resume.
//!
//! Follow a poll: [`Consumer::poll`] resolves a starting offset for every assigned partition
//! that has none (`auto_offset_reset`, via ListOffsets), groups the unpaused partitions by
//! leader, long-polls one Fetch per leader concurrently, decodes the returned batches with
//! `sluice-proto`'s safe decoder (every codec; counts checked before allocation), drops records
//! below the position (a fetch returns whole batches) and control batches, and advances each
//! partition's position past what it returned. A poll that returned records sends the next
//! Fetch of each leader ahead at once (fetch pipelining): the next poll takes its answer,
//! arrived or on its way, unless a seek, pause or new assignment changed what it would ask
//! for, in which case the answer is left unread and a new Fetch goes out.
//!
//! Errors: NOT_LEADER_OR_FOLLOWER and friends refresh the metadata and the next round goes to
//! the new leader; OFFSET_OUT_OF_RANGE applies `auto_offset_reset`; other errors are returned.
//!
//! ## Consumer groups
//!
//! With a `group_id`, [`Consumer::subscribe`] makes the consumer a member of a consumer group
//! (see [`crate::group`]): `poll` joins the group, assigns the partitions the group gives this
//! member (each starting at its committed offset, else by `auto_offset_reset`), and rejoins
//! when the heartbeat task reports a rebalance, calling a [`RebalanceListener`] around it.
//! Offsets are committed with [`Consumer::commit`], [`Consumer::commit_offsets`],
//! [`Consumer::commit_async`], or every `auto_commit_interval` by `poll` (on by default, as in
//! Kafka); [`Consumer::close`] commits (with auto-commit), calls the revoke callback and leaves
//! the group. Without a subscription, a consumer with a `group_id` may still commit and read
//! committed offsets of manually assigned partitions ("simple" commits: the group must have no
//! members). Delivery is at least once: records after the last commit are delivered again
//! after a rebalance or a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_proto::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use sluice_proto::kafka_protocol::messages::{FetchRequest, FetchResponse};
use sluice_proto::records::{decode_record_batches, TimestampType};

use crate::cluster::{broker_id, topic_name, Cluster, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, READ_UNCOMMITTED};
use crate::error::{ClientError, Result};
use crate::group::Assignor;

mod group;

pub use group::{GroupGeneration, ListenerFuture, PendingCommit, RebalanceListener};

/// Kafka's OFFSET_OUT_OF_RANGE.
const OFFSET_OUT_OF_RANGE: i16 = 1;
/// Kafka's default `heartbeat.interval.ms`: 3 s.
pub const HEARTBEAT_INTERVAL_DEFAULT: Duration = Duration::from_secs(3);

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic-partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

/// Where to move a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    /// This offset.
    Offset(i64),
    /// The log start offset.
    Beginning,
    /// The log end offset (only records produced from now on).
    End,
    /// The first offset whose timestamp is at or after this (ms since the epoch); the end if
    /// there is none.
    Timestamp(i64),
}

/// What to do when a partition has no position or its position is out of range
/// (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// Start from the log start offset.
    Earliest,
    /// Start from the log end offset.
    Latest,
    /// Return an error.
    Error,
}

/// Consumer settings; defaults follow Kafka's Java consumer.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `fetch.max.wait.ms`: longest a Fetch waits at the broker for `fetch_min_bytes`; default
    /// 500 ms (a poll with a shorter timeout waits less).
    pub fetch_max_wait: Duration,
    /// `fetch.min.bytes`: default 1.
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes`: bytes per Fetch answer; default 50 MiB.
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`: bytes per partition per Fetch; default 1 MiB.
    pub partition_max_bytes: i32,
    /// `auto.offset.reset`: default latest. With a group, it applies to partitions that have no
    /// committed offset.
    pub auto_offset_reset: OffsetReset,
    /// `group.id`: the consumer group, for [`Consumer::subscribe`] and commits; default none.
    pub group_id: Option<String>,
    /// `session.timeout.ms`: the coordinator expels a member it has not heard from for this
    /// long; default 45 s (Kafka 3.0+). It must lie within the broker's
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms` (6 s–30 min in Kafka).
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`: time between heartbeats, below `session_timeout`. It bounds how
    /// long this member takes to notice a rebalance. `None` (the default): Kafka's default of
    /// [`HEARTBEAT_INTERVAL_DEFAULT`], or a third of the session timeout if that is shorter
    /// (the most Kafka recommends).
    pub heartbeat_interval: Option<Duration>,
    /// `max.poll.interval.ms`: longest time between two `poll` calls before the member leaves
    /// the group (its partitions go to others); also the rebalance timeout, how long the
    /// coordinator waits for every member to rejoin. Default 5 min.
    pub max_poll_interval: Duration,
    /// `partition.assignment.strategy`: assignors offered, in order of preference; the group
    /// uses the first that every member offers. Default range, then roundrobin.
    pub assignors: Vec<Assignor>,
    /// `enable.auto.commit`: `poll` commits the positions of the previous polls every
    /// `auto_commit_interval`, and a revoke or `close` commits them too; default true.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`: default 5 s.
    pub auto_commit_interval: Duration,
}

impl ConsumerConfig {
    /// The heartbeat interval in effect (see [`ConsumerConfig::heartbeat_interval`]).
    pub fn effective_heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval.unwrap_or_else(|| HEARTBEAT_INTERVAL_DEFAULT.min(self.session_timeout / 3))
    }
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            fetch_max_wait: Duration::from_millis(500),
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            auto_offset_reset: OffsetReset::Latest,
            group_id: None,
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: None,
            max_poll_interval: Duration::from_secs(300),
            assignors: vec![Assignor::Range, Assignor::RoundRobin],
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
        }
    }
}

/// One consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic (shared by the records of one fetched partition: no copy per record).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp (ms since the epoch).
    pub timestamp_ms: i64,
    /// Whether `timestamp_ms` is the broker's append time (else the producer's create time).
    pub log_append_time: bool,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers (kafka-protocol keeps them in a map: a repeated key keeps its last value).
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl ConsumerRecord {
    /// The value of header `key`, if present.
    pub fn header(&self, key: &str) -> Option<&Bytes> {
        self.headers.iter().find(|(name, _)| name == key).and_then(|(_, value)| value.as_ref())
    }
}

#[derive(Debug, Default, Clone)]
struct Assigned {
    position: Option<i64>,
    paused: bool,
}

/// A consumer of assigned partitions, or of the partitions its group gives it. Not shared:
/// `&mut self` methods, like Kafka's consumer.
#[derive(Debug)]
pub struct Consumer {
    cluster: Cluster,
    config: ConsumerConfig,
    assignment: BTreeMap<TopicPartition, Assigned>,
    /// Group state, when `group_id` is set.
    group: Option<group::Group>,
    /// Fetches sent whose answers have not been taken yet (see [`PendingFetch`]).
    pending_fetches: Vec<PendingFetch>,
    /// Fetches sent so far: each Fetch lists its partitions starting one further along, so
    /// that the partition a size limit favours changes from one request to the next.
    fetch_rotation: usize,
}

/// A Fetch to one leader whose answer no poll has taken yet: sent ahead by the last round
/// that returned records, so that the next poll finds its answer on the way or already
/// there instead of waiting a round trip (fetch pipelining, as the Java client and
/// librdkafka do), or still unanswered when a round's deadline passed. Taken by the next
/// round if every partition it asks for is still active at the position it fetches from;
/// otherwise (a seek, a pause, a new assignment) its handle is dropped, which lets the task
/// finish unread — aborting it could cut a request half written, which closes the connection.
#[derive(Debug)]
struct PendingFetch {
    /// The partitions it asks for, each with the position it fetches from.
    partitions: Vec<(TopicPartition, i64)>,
    task: tokio::task::JoinHandle<Result<FetchResponse>>,
}

impl Consumer {
    /// A consumer on `cluster` with nothing assigned.
    pub fn new(cluster: Cluster, config: ConsumerConfig) -> Consumer {
        let group = config.group_id.as_ref().map(|group_id| group::Group::new(&cluster, &config, group_id));
        Consumer { cluster, config, assignment: BTreeMap::new(), group, pending_fetches: Vec::new(), fetch_rotation: 0 }
    }

    /// Replaces the assignment; partitions kept keep their positions. Fails for a topic or
    /// partition that does not exist, and while subscribed (the group assigns then).
    pub async fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) -> Result<()> {
        if self.is_subscribed() {
            return Err(ClientError::InvalidState {
                reason: "assign while subscribed to a group; unsubscribe first".to_string(),
            });
        }
        let mut next = BTreeMap::new();
        for partition in partitions {
            let info = self.cluster.topic(&partition.topic).await?;
            if !info.partitions.iter().any(|p| p.partition == partition.partition) {
                return Err(ClientError::UnknownPartition {
                    topic: partition.topic,
                    partition: partition.partition,
                    partition_count: info.partitions.len() as i32,
                });
            }
            let kept = self.assignment.get(&partition).cloned().unwrap_or_default();
            next.insert(partition, kept);
        }
        self.assignment = next;
        Ok(())
    }

    /// Assigns every partition of `topic`.
    pub async fn assign_topic(&mut self, topic: &str) -> Result<Vec<TopicPartition>> {
        let info = self.cluster.topic(topic).await?;
        let partitions: Vec<TopicPartition> =
            info.partitions.iter().map(|p| TopicPartition::new(topic, p.partition)).collect();
        let mut all: Vec<TopicPartition> = self.assignment.keys().filter(|tp| tp.topic != topic).cloned().collect();
        all.extend(partitions.iter().cloned());
        self.assign(all).await?;
        Ok(partitions)
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.keys().cloned().collect()
    }

    fn assigned(&mut self, partition: &TopicPartition) -> Result<&mut Assigned> {
        self.assignment.get_mut(partition).ok_or_else(|| ClientError::InvalidConfig {
            reason: format!("{}-{} is not assigned", partition.topic, partition.partition),
        })
    }

    /// Moves `partition`'s position (resolving beginning, end or a timestamp with ListOffsets).
    pub async fn seek(&mut self, partition: &TopicPartition, to: SeekTo) -> Result<i64> {
        self.assigned(partition)?;
        let offset = match to {
            SeekTo::Offset(offset) => offset,
            SeekTo::Beginning => self.list_offset(partition, EARLIEST_TIMESTAMP).await?,
            SeekTo::End => self.list_offset(partition, LATEST_TIMESTAMP).await?,
            SeekTo::Timestamp(timestamp_ms) => match self.list_offset(partition, timestamp_ms).await? {
                -1 => self.list_offset(partition, LATEST_TIMESTAMP).await?,
                offset => offset,
            },
        };
        self.assigned(partition)?.position = Some(offset);
        Ok(offset)
    }

    /// The offset of the next record `poll` returns for `partition` (resolving
    /// `auto_offset_reset` if it has none yet).
    pub async fn position(&mut self, partition: &TopicPartition) -> Result<i64> {
        if let Some(position) = self.assigned(partition)?.position {
            return Ok(position);
        }
        // A newly assigned group partition starts at its committed offset, if it has one.
        self.resolve_committed().await?;
        if let Some(position) = self.assigned(partition)?.position {
            return Ok(position);
        }
        self.reset(partition).await
    }

    /// Log start and end offsets (the end is the high watermark: the next offset to be
    /// written and acknowledged).
    pub async fn watermarks(&self, partition: &TopicPartition) -> Result<(i64, i64)> {
        Ok((
            self.list_offset(partition, EARLIEST_TIMESTAMP).await?,
            self.list_offset(partition, LATEST_TIMESTAMP).await?,
        ))
    }

    /// Stops fetching `partitions` (positions are kept).
    pub fn pause(&mut self, partitions: &[TopicPartition]) {
        for partition in partitions {
            if let Some(assigned) = self.assignment.get_mut(partition) {
                assigned.paused = true;
            }
        }
    }

    /// Fetches `partitions` again.
    pub fn resume(&mut self, partitions: &[TopicPartition]) {
        for partition in partitions {
            if let Some(assigned) = self.assignment.get_mut(partition) {
                assigned.paused = false;
            }
        }
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.assignment.iter().filter(|(_, a)| a.paused).map(|(tp, _)| tp.clone()).collect()
    }

    async fn reset(&mut self, partition: &TopicPartition) -> Result<i64> {
        let to = match self.config.auto_offset_reset {
            OffsetReset::Earliest => SeekTo::Beginning,
            OffsetReset::Latest => SeekTo::End,
            OffsetReset::Error => {
                return Err(ClientError::kafka(
                    OFFSET_OUT_OF_RANGE,
                    format!(
                        "{}-{} has no valid position and auto_offset_reset is Error",
                        partition.topic, partition.partition
                    ),
                    None,
                ))
            }
        };
        self.seek(partition, to).await
    }

    /// The offset ListOffsets gives for `timestamp` (or -1/-2 for latest/earliest), retried.
    async fn list_offset(&self, partition: &TopicPartition, timestamp: i64) -> Result<i64> {
        self.cluster.list_offset(&partition.topic, partition.partition, timestamp).await
    }

    /// Fetches records from every assigned, unpaused partition, waiting up to `timeout` for
    /// some to arrive. Returns an empty list when none did. When subscribed, it first takes
    /// part in the group: joins or rejoins (calling the rebalance listener), and auto-commits;
    /// a join still running at the deadline continues in the next `poll`.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.maintain_group(deadline).await? {
                return Ok(Vec::new());
            }
            let records = self.poll_assigned(deadline).await?;
            if !records.is_empty() || Instant::now() >= deadline || !self.rejoin_pending() {
                return Ok(records);
            }
        }
    }

    /// The fetch loop of `poll`: returns at the first records, at the deadline, or as soon as
    /// the group asks this member to rejoin.
    async fn poll_assigned(&mut self, deadline: Instant) -> Result<Vec<ConsumerRecord>> {
        let mut attempt = 0u32;
        loop {
            if self.rejoin_pending() {
                return Ok(Vec::new());
            }
            let active: Vec<TopicPartition> =
                self.assignment.iter().filter(|(_, a)| !a.paused).map(|(tp, _)| tp.clone()).collect();
            if active.is_empty() {
                self.idle_until(deadline).await;
                return Ok(Vec::new());
            }
            for partition in &active {
                self.position(partition).await?;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let result = self.fetch_round(&active, remaining.min(self.config.fetch_max_wait)).await;
            match result {
                Ok(records) if !records.is_empty() => return Ok(records),
                Ok(_) => attempt = 0,
                Err(error) if error.is_retriable() => {
                    tracing::debug!(%error, "fetch failed, retrying");
                    if error.invalidates_metadata() {
                        self.cluster.invalidate();
                    }
                    let delay = self.cluster.config().backoff.delay(attempt);
                    attempt += 1;
                    tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
                }
                Err(error) => return Err(error),
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    /// One Fetch per leader, concurrently; returns the records and advances positions. Takes
    /// the answers of fetches still pending from earlier rounds that remain valid (sending
    /// fresh ones only for the partitions they do not cover), and when records came back sends
    /// the next fetches ahead at once, for the next poll.
    async fn fetch_round(&mut self, active: &[TopicPartition], max_wait: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + max_wait;
        let (ahead, stale): (Vec<PendingFetch>, Vec<PendingFetch>) =
            std::mem::take(&mut self.pending_fetches).into_iter().partition(|fetch| self.still_wanted(fetch, active));
        drop(stale);
        let uncovered = self.uncovered(active, &ahead);
        let fresh = self.send_fetches(&uncovered, max_wait).await?;
        let mut records = Vec::new();
        let mut first_error = None;
        let mut unanswered = Vec::new();
        // A fetch sent ahead long-polls for up to `fetch_max_wait`: wait for it until the
        // deadline only. A fresh one asked the broker for `max_wait` at most: wait for it.
        let mut answers = Vec::new();
        for mut fetch in ahead {
            match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), &mut fetch.task).await {
                Ok(joined) => answers.push((fetch.partitions, joined)),
                Err(_) => unanswered.push(fetch),
            }
        }
        for fetch in fresh {
            answers.push((fetch.partitions, fetch.task.await));
        }
        for (partitions, joined) in answers {
            let outcome = joined.map_err(|error| ClientError::Closed {
                what: if error.is_panic() { "fetch task (panicked)" } else { "fetch task" },
            });
            match outcome.and_then(|answer| answer) {
                Ok(response) => {
                    if let Err(error) = self.absorb(&partitions, response, &mut records) {
                        first_error.get_or_insert(error);
                    }
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        self.pending_fetches = unanswered;
        if !records.is_empty() {
            let idle = self.uncovered(active, &self.pending_fetches);
            match self.send_fetches(&idle, self.config.fetch_max_wait).await {
                Ok(sent) => self.pending_fetches.extend(sent),
                Err(error) => tracing::debug!(%error, "fetching ahead failed; the next poll fetches"),
            }
        }
        match first_error {
            Some(error) if records.is_empty() => Err(error),
            _ => Ok(records),
        }
    }

    /// Whether a pending fetch's answer is still what the consumer would ask for: every
    /// partition it covers is active and still at the position it fetches from.
    fn still_wanted(&self, fetch: &PendingFetch, active: &[TopicPartition]) -> bool {
        fetch.partitions.iter().all(|(partition, from)| {
            active.contains(partition)
                && self.assignment.get(partition).is_some_and(|assigned| assigned.position == Some(*from))
        })
    }

    /// The active partitions that none of `pending` covers.
    fn uncovered(&self, active: &[TopicPartition], pending: &[PendingFetch]) -> Vec<TopicPartition> {
        active
            .iter()
            .filter(|partition| {
                !pending.iter().any(|fetch| fetch.partitions.iter().any(|(covered, _)| covered == *partition))
            })
            .cloned()
            .collect()
    }

    /// Sends one Fetch per leader of `partitions` from their positions (skipping any whose
    /// position an out-of-range answer just cleared: the next round resolves it), each on a
    /// task of its own; the answers are awaited through the returned handles.
    ///
    /// Each call starts the list one partition further along (KIP-74 asks consumers to
    /// rotate): a broker fills an answer partition by partition up to `fetch_max_bytes` and
    /// returns a whole batch beyond the limits for the first partition with data only, so a
    /// fixed order would serve the first partitions and starve the rest while they have data.
    async fn send_fetches(&mut self, partitions: &[TopicPartition], max_wait: Duration) -> Result<Vec<PendingFetch>> {
        let start = if partitions.is_empty() { 0 } else { self.fetch_rotation % partitions.len() };
        self.fetch_rotation = self.fetch_rotation.wrapping_add(1);
        let mut by_leader: HashMap<i32, Vec<(TopicPartition, i64)>> = HashMap::new();
        for partition in partitions[start..].iter().chain(&partitions[..start]) {
            let Some(position) = self.assignment.get(partition).and_then(|assigned| assigned.position) else {
                continue;
            };
            let leader = self.cluster.leader(&partition.topic, partition.partition).await?;
            by_leader.entry(leader).or_default().push((partition.clone(), position));
        }
        let max_wait_ms = i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX);
        let mut sent = Vec::with_capacity(by_leader.len());
        for (leader, partitions) in by_leader {
            let request = self.fetch_request(&partitions, max_wait_ms);
            let cluster = self.cluster.clone();
            let task = tokio::spawn(async move {
                let connection = cluster.connection(leader).await?;
                connection.call(&request, max_wait).await
            });
            sent.push(PendingFetch { partitions, task });
        }
        Ok(sent)
    }

    fn fetch_request(&self, partitions: &[(TopicPartition, i64)], max_wait_ms: i32) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (partition, offset) in partitions {
            let fetch = FetchPartition::default()
                .with_partition(partition.partition)
                .with_fetch_offset(*offset)
                .with_current_leader_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(self.config.partition_max_bytes);
            match topics.iter_mut().find(|topic| topic.topic.0.as_str() == partition.topic) {
                Some(topic) => topic.partitions.push(fetch),
                None => topics
                    .push(FetchTopic::default().with_topic(topic_name(&partition.topic)).with_partitions(vec![fetch])),
            }
        }
        FetchRequest::default()
            .with_replica_id(broker_id(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(self.config.fetch_min_bytes)
            .with_max_bytes(self.config.fetch_max_bytes)
            .with_isolation_level(READ_UNCOMMITTED)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics)
    }

    /// Takes the records of one Fetch answer, advancing positions; the first partition error
    /// is returned after every partition has been absorbed.
    fn absorb(
        &mut self,
        partitions: &[(TopicPartition, i64)],
        response: FetchResponse,
        records: &mut Vec<ConsumerRecord>,
    ) -> Result<()> {
        ClientError::check(response.error_code, || "fetch".to_string())?;
        let mut first_error = None;
        for topic in &response.responses {
            for answer in &topic.partitions {
                let partition = TopicPartition::new(topic.topic.0.as_str(), answer.partition_index);
                let Some((_, fetched_from)) = partitions.iter().find(|(tp, _)| *tp == partition) else { continue };
                let Some(assigned) = self.assignment.get_mut(&partition) else { continue };
                if assigned.position != Some(*fetched_from) {
                    continue; // a seek happened while the fetch was out
                }
                if answer.error_code == OFFSET_OUT_OF_RANGE && self.config.auto_offset_reset != OffsetReset::Error {
                    tracing::info!(topic = %partition.topic, partition = partition.partition, offset = fetched_from, "offset out of range; resetting");
                    assigned.position = None;
                    continue;
                }
                if answer.error_code != 0 {
                    first_error.get_or_insert(ClientError::kafka(
                        answer.error_code,
                        format!("fetch {}-{}", partition.topic, partition.partition),
                        None,
                    ));
                    continue;
                }
                let Some(data) = &answer.records else { continue };
                let decoded = decode_record_batches(data)?;
                let topic_name: Arc<str> = Arc::from(partition.topic.as_str());
                let mut position = *fetched_from;
                for batch in decoded.batches {
                    let next = batch.header.last_offset() + 1;
                    if batch.header.is_control() {
                        position = position.max(next);
                        continue;
                    }
                    let log_append_time = batch.header.timestamp_type() == TimestampType::LogAppend;
                    for record in batch.records {
                        if record.offset < position {
                            continue;
                        }
                        records.push(ConsumerRecord {
                            topic: topic_name.clone(),
                            partition: partition.partition,
                            offset: record.offset,
                            timestamp_ms: record.timestamp,
                            log_append_time,
                            key: record.key,
                            value: record.value,
                            headers: record.headers.into_iter().map(|(key, value)| (key.to_string(), value)).collect(),
                        });
                    }
                    position = position.max(next);
                }
                assigned.position = Some(position);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
