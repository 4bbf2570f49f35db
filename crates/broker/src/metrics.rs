//! Prometheus metrics, served as `GET /metrics` on the admin listener in the OpenMetrics text
//! format (`prometheus-client`; no hand-written exposition). Every name has the `sluice_`
//! prefix and its unit; `docs/metrics.md` lists each with its Kafka JMX counterpart.
//!
//! Two kinds:
//! - **counted as it happens** (requests and their latency per API, records and bytes in and
//!   out per topic, connections): updated by the server, the dispatcher and the produce and
//!   fetch handlers through the handles kept here;
//! - **read at scrape time** (partitions, leaders, under-replicated / under-min-ISR / offline
//!   partitions, log offsets and sizes, metadata Raft state): [`Metrics::render`] sets them from
//!   the partition layer and the metadata view, so they cost nothing between scrapes.
//!
//! Cardinality is bounded: per-topic series for every topic (as Kafka's per-topic
//! `BrokerTopicMetrics`), per-partition series only while this broker hosts at most
//! [`METRICS_PARTITIONS_MAX`] partitions (beyond that, only the totals).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use sluice_meta::MetaNode;
use sluice_meta::MetadataView;

use crate::partition::PartitionManager;

/// Hosted partitions above which per-partition series (log size and offsets) are left out.
pub const METRICS_PARTITIONS_MAX: usize = 1000;

/// Per-partition consumer lag series at most; past it only each group's max and sum.
pub const METRICS_LAG_SERIES_MAX: usize = 10_000;

/// The `content-type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels1 = [(&'static str, String); 1];
type Labels2 = [(&'static str, String); 2];
type Labels3 = [(&'static str, String); 3];

/// Kafka's classic consumer group states, each always exported by `sluice_consumer_groups`.
const GROUP_STATES: [&str; 5] = ["Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"];

fn histogram() -> Histogram {
    // 50 µs .. ~52 s, factor 2: a produce waiting for replicas and a long-poll fetch both fit.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 21))
}

/// The broker's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels1, Counter>,
    request_seconds: Family<Labels1, Histogram, fn() -> Histogram>,
    queue_seconds: Family<Labels1, Histogram, fn() -> Histogram>,
    local_seconds: Family<Labels1, Histogram, fn() -> Histogram>,
    remote_seconds: Family<Labels1, Histogram, fn() -> Histogram>,
    send_seconds: Family<Labels1, Histogram, fn() -> Histogram>,
    /// Handles of the per-API series for each API of the ApiVersions table, by API key, made
    /// once: counting a request takes no allocation and no family lock.
    per_api: std::collections::HashMap<i16, ApiHandles>,
    /// The memory budgets whose use is read at scrape time (see [`Metrics::watch_budget`]).
    budgets: std::sync::Mutex<Vec<Budget>>,
    budget_used: Family<Labels1, Gauge>,
    budget_limit: Family<Labels1, Gauge>,
    group_members: Family<Labels1, Gauge>,
    group_generation: Family<Labels1, Gauge>,
    connections: Gauge,
    records_in: Family<Labels1, Counter>,
    bytes_in: Family<Labels1, Counter>,
    bytes_out: Family<Labels2, Counter>,
    produce_errors: Family<Labels1, Counter>,
    partitions: Family<Labels1, Gauge>,
    under_replicated: Gauge,
    under_min_isr: Gauge,
    offline: Gauge,
    log_size: Family<Labels2, Gauge>,
    log_start: Family<Labels2, Gauge>,
    log_end: Family<Labels2, Gauge>,
    high_watermark: Family<Labels2, Gauge>,
    raft_term: Gauge,
    raft_leader: Gauge,
    raft_applied: Gauge,
    raft_last_log: Gauge,
    meta_apply_seconds: Histogram,
    brokers: Family<Labels1, Gauge>,
    lag: Family<Labels3, Gauge>,
    lag_max: Family<Labels1, Gauge>,
    lag_sum: Family<Labels1, Gauge>,
    lag_seconds: Family<Labels3, Gauge<f64, std::sync::atomic::AtomicU64>>,
    lag_seconds_max: Family<Labels1, Gauge<f64, std::sync::atomic::AtomicU64>>,
    groups_by_state: Family<Labels1, Gauge>,
    quota_throttle_seconds: Family<Labels1, Counter<f64, std::sync::atomic::AtomicU64>>,
    quota_throttled: Family<Labels1, Counter>,
    quota_bytes: Family<Labels1, Counter>,
    /// Counted by the partition manager as it applies ISR changes (registered here).
    isr_changes: crate::partition::IsrChangeCounters,
    log_syncs: crate::partition::LogSyncTimes,
    /// Counted by the replication throttle (registered here).
    replication_throttled: crate::replication::throttle::ThrottledBytes,
    /// The last two samples of the per-topic counters, for the console's rates.
    topic_samples: std::sync::Mutex<[Option<TopicSample>; 2]>,
}

/// A topic's counters since the broker started (the `sluice_topic_*` series).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TopicTotals {
    /// Records appended by producers.
    pub records_in: u64,
    /// Bytes of batches appended by producers.
    pub bytes_in: u64,
    /// Bytes of batches sent to consumers (followers not counted).
    pub bytes_out: u64,
}

/// Per-second rates of a topic's counters over the last sampling interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TopicRates {
    /// Records in per second.
    pub records_in: f64,
    /// Bytes in per second.
    pub bytes_in: f64,
    /// Bytes out to consumers per second.
    pub bytes_out: f64,
}

/// The series of one API, by request phase (see [`crate::request_scope`]).
#[derive(Debug, Clone)]
struct ApiHandles {
    count: Counter,
    total: Histogram,
    queue: Histogram,
    local: Histogram,
    remote: Histogram,
    send: Histogram,
}

/// Where one request's time went (see [`crate::request_scope`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestTimes {
    /// From the frame being read to its handling.
    pub queue: Duration,
    /// From decode to response (local + remote).
    pub handled: Duration,
    /// The part of `handled` spent waiting for replicas or a long poll.
    pub remote: Duration,
}

/// A broker-wide memory budget: a semaphore of `limit` byte permits.
#[derive(Debug)]
struct Budget {
    name: &'static str,
    semaphore: Arc<tokio::sync::Semaphore>,
    limit: usize,
}

#[derive(Debug, Clone)]
struct TopicSample {
    at: std::time::Instant,
    totals: std::collections::HashMap<String, TopicTotals>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric, registered and at zero, with ISR change counters and sync times of their own.
    pub fn new() -> Metrics {
        Metrics::for_partitions(
            crate::partition::IsrChangeCounters::default(),
            crate::partition::LogSyncTimes::default(),
            Default::default(),
        )
    }

    /// Every metric, registered; the ISR change counters and the log sync times are the
    /// partition manager's.
    pub fn for_partitions(
        isr_changes: crate::partition::IsrChangeCounters,
        log_syncs: crate::partition::LogSyncTimes,
        replication_throttled: crate::replication::throttle::ThrottledBytes,
    ) -> Metrics {
        let mut registry = Registry::with_prefix("sluice");
        let metrics = Metrics {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(histogram as fn() -> Histogram),
            queue_seconds: Family::new_with_constructor(histogram as fn() -> Histogram),
            local_seconds: Family::new_with_constructor(histogram as fn() -> Histogram),
            remote_seconds: Family::new_with_constructor(histogram as fn() -> Histogram),
            send_seconds: Family::new_with_constructor(histogram as fn() -> Histogram),
            per_api: std::collections::HashMap::new(),
            budgets: std::sync::Mutex::new(Vec::new()),
            budget_used: Family::default(),
            budget_limit: Family::default(),
            group_members: Family::default(),
            group_generation: Family::default(),
            connections: Gauge::default(),
            records_in: Family::default(),
            bytes_in: Family::default(),
            bytes_out: Family::default(),
            produce_errors: Family::default(),
            partitions: Family::default(),
            under_replicated: Gauge::default(),
            under_min_isr: Gauge::default(),
            offline: Gauge::default(),
            log_size: Family::default(),
            log_start: Family::default(),
            log_end: Family::default(),
            high_watermark: Family::default(),
            raft_term: Gauge::default(),
            raft_leader: Gauge::default(),
            raft_applied: Gauge::default(),
            raft_last_log: Gauge::default(),
            meta_apply_seconds: Histogram::new(exponential_buckets(0.000_001, 2.0, 21)),
            brokers: Family::default(),
            lag: Family::default(),
            lag_max: Family::default(),
            lag_sum: Family::default(),
            lag_seconds: Family::default(),
            lag_seconds_max: Family::default(),
            topic_samples: std::sync::Mutex::new([None, None]),
            isr_changes,
            replication_throttled,
            log_syncs,
            groups_by_state: Family::default(),
            quota_throttle_seconds: Family::default(),
            quota_throttled: Family::default(),
            quota_bytes: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("requests", "Kafka requests handled, by API", metrics.requests.clone());
        r.register_with_unit(
            "request_duration",
            "Time from a request's decode to its response, by API (a produce includes the wait for replicas, a fetch its long poll)",
            Unit::Seconds,
            metrics.request_seconds.clone(),
        );
        r.register_with_unit(
            "request_queue_duration",
            "Time from a request's frame being read to its handling (the requests ahead of it on its connection), by API",
            Unit::Seconds,
            metrics.queue_seconds.clone(),
        );
        r.register_with_unit(
            "quota_throttle",
            "Throttle time given to clients over a quota (KIP-219: their connection is muted that long), by kind (produce, fetch)",
            Unit::Seconds,
            metrics.quota_throttle_seconds.clone(),
        );
        r.register(
            "quota_throttled_responses",
            "Responses that carried a throttle time because the client was over a quota, by kind",
            metrics.quota_throttled.clone(),
        );
        r.register_with_unit(
            "replication_throttled",
            "Bytes of replica copies under the replication throttle (leader.replication.throttled.rate, follower.replication.throttled.rate), by side: sent as a leader, fetched as a follower",
            Unit::Bytes,
            metrics.replication_throttled.clone(),
        );
        r.register_with_unit(
            "quota_recorded",
            "Bytes counted against client quotas (clients with a quota only), by kind",
            Unit::Bytes,
            metrics.quota_bytes.clone(),
        );
        r.register_with_unit(
            "request_local_duration",
            "Time a request's handling spent on this broker's own work (handling minus the remote wait), by API",
            Unit::Seconds,
            metrics.local_seconds.clone(),
        );
        r.register_with_unit(
            "request_remote_duration",
            "Time a request's handling spent waiting for replicas (acks=all produce) or for data (fetch long poll), by API",
            Unit::Seconds,
            metrics.remote_seconds.clone(),
        );
        r.register_with_unit(
            "response_send_duration",
            "Time to write a response to the socket, by API",
            Unit::Seconds,
            metrics.send_seconds.clone(),
        );
        r.register_with_unit(
            "memory_budget_used",
            "Bytes in use of a broker-wide memory budget (fetch responses, request frames, decoded requests)",
            Unit::Bytes,
            metrics.budget_used.clone(),
        );
        r.register_with_unit(
            "memory_budget_limit",
            "Size of a broker-wide memory budget; requests wait when it is used up",
            Unit::Bytes,
            metrics.budget_limit.clone(),
        );
        r.register("connections", "Open Kafka client connections", metrics.connections.clone());
        r.register("topic_received_records", "Records appended by producers, by topic", metrics.records_in.clone());
        r.register_with_unit(
            "topic_received",
            "Bytes of record batches appended by producers, by topic",
            Unit::Bytes,
            metrics.bytes_in.clone(),
        );
        r.register_with_unit(
            "topic_sent",
            "Bytes of record batches sent, by topic and reader (consumer or follower)",
            Unit::Bytes,
            metrics.bytes_out.clone(),
        );
        r.register(
            "produce_partition_errors",
            "Partitions of produce requests refused, by Kafka error code",
            metrics.produce_errors.clone(),
        );
        r.register("partitions", "Partitions hosted here, by role (leader or follower)", metrics.partitions.clone());
        r.register(
            "under_replicated_partitions",
            "Partitions led here whose ISR is smaller than their replica set",
            metrics.under_replicated.clone(),
        );
        r.register(
            "under_min_isr_partitions",
            "Partitions led here whose ISR is smaller than min.insync.replicas",
            metrics.under_min_isr.clone(),
        );
        r.register(
            "offline_partitions",
            "Partitions without a leader, cluster-wide (reported by the metadata leader only, 0 elsewhere)",
            metrics.offline.clone(),
        );
        r.register_with_unit("log_size", "Bytes of a partition's log on disk", Unit::Bytes, metrics.log_size.clone());
        r.register("log_start_offset", "First offset of a partition's log", metrics.log_start.clone());
        r.register("log_end_offset", "Offset the next record of a partition's log gets", metrics.log_end.clone());
        r.register(
            "high_watermark",
            "Offset up to which a partition is replicated to its ISR",
            metrics.high_watermark.clone(),
        );
        r.register(
            "meta_raft_term",
            "Current term of the metadata Raft group as this node sees it",
            metrics.raft_term.clone(),
        );
        r.register(
            "meta_raft_leader",
            "Node id of the metadata leader (-1 when none is known)",
            metrics.raft_leader.clone(),
        );
        r.register(
            "meta_raft_applied_index",
            "Last metadata log index applied on this node",
            metrics.raft_applied.clone(),
        );
        r.register(
            "meta_raft_last_log_index",
            "Last index in this node's metadata Raft log (applied index trails it by the entries not yet committed or applied)",
            metrics.raft_last_log.clone(),
        );
        r.register_with_unit(
            "meta_apply_duration",
            "Time to apply one batch of committed metadata entries and publish the new view",
            Unit::Seconds,
            metrics.meta_apply_seconds.clone(),
        );
        r.register("brokers", "Registered brokers, by state (live or fenced)", metrics.brokers.clone());
        r.register(
            "consumer_groups",
            "Consumer groups coordinated here, by state (Kafka's names), as of the last lag refresh",
            metrics.groups_by_state.clone(),
        );
        r.register(
            "consumer_group_members",
            "Members of a group coordinated here, as of the last lag refresh",
            metrics.group_members.clone(),
        );
        r.register(
            "consumer_group_generation",
            "Generation id of a group coordinated here (one more per completed rebalance), as of the last lag refresh",
            metrics.group_generation.clone(),
        );
        r.register(
            "isr_shrinks",
            "ISR changes of partitions led here that removed a member (a lagging or fenced follower)",
            metrics.isr_changes.shrinks.clone(),
        );
        r.register(
            "leaderships_gained",
            "Partitions this broker became leader of in place of another broker (elections won; summed over the brokers, the cluster's leader elections)",
            metrics.isr_changes.leaderships_gained.clone(),
        );
        r.register_with_unit(
            "log_fsync_duration",
            "Time of each fdatasync of a partition log's segment, by cause: policy (flush.messages / flush.ms), roll (a sealed segment), flush (shutdown, explicit)",
            Unit::Seconds,
            metrics.log_syncs.seconds.clone(),
        );
        r.register(
            "isr_expands",
            "ISR changes of partitions led here that added a member (a follower caught up)",
            metrics.isr_changes.expands.clone(),
        );
        r.register(
            "consumer_group_lag_records",
            "Records between a group's committed offset and the partition's high watermark (groups coordinated here)",
            metrics.lag.clone(),
        );
        r.register(
            "consumer_group_max_lag_records",
            "Largest partition lag of a group, in records",
            metrics.lag_max.clone(),
        );
        r.register(
            "consumer_group_lag_sum_records",
            "Sum of a group's partition lags, in records",
            metrics.lag_sum.clone(),
        );
        r.register_with_unit(
            "consumer_group_lag",
            "Age of a group's first unconsumed record of a partition (0 when caught up)",
            Unit::Seconds,
            metrics.lag_seconds.clone(),
        );
        r.register_with_unit(
            "consumer_group_max_lag",
            "Largest partition lag of a group, in seconds",
            Unit::Seconds,
            metrics.lag_seconds_max.clone(),
        );
        // kafka-protocol names its variants after Kafka's message names (`Produce`, `Fetch`, ...).
        let per_api = crate::api_versions::supported_apis()
            .ranges()
            .iter()
            .map(|range| {
                let labels = [("api", format!("{:?}", range.api_key))];
                let handles = ApiHandles {
                    count: metrics.requests.get_or_create_owned(&labels),
                    total: metrics.request_seconds.get_or_create_owned(&labels),
                    queue: metrics.queue_seconds.get_or_create_owned(&labels),
                    local: metrics.local_seconds.get_or_create_owned(&labels),
                    remote: metrics.remote_seconds.get_or_create_owned(&labels),
                    send: metrics.send_seconds.get_or_create_owned(&labels),
                };
                (range.api_key as i16, handles)
            })
            .collect();
        Metrics { registry, per_api, ..metrics }
    }

    /// A request of `api` was handled, its time split as `times`. Only the APIs of the
    /// ApiVersions table reach the handlers, so every key has its handles.
    pub fn request(&self, api: sluice_proto::kafka_protocol::messages::ApiKey, times: RequestTimes) {
        if let Some(handles) = self.per_api.get(&(api as i16)) {
            handles.count.inc();
            handles.total.observe(times.handled.as_secs_f64());
            handles.queue.observe(times.queue.as_secs_f64());
            handles.remote.observe(times.remote.as_secs_f64());
            handles.local.observe(times.handled.saturating_sub(times.remote).as_secs_f64());
        }
    }

    /// The response to a request of api key `api_key` took `elapsed` to write (keys outside
    /// the ApiVersions table are not counted).
    pub fn response_sent(&self, api_key: i16, elapsed: Duration) {
        if let Some(handles) = self.per_api.get(&api_key) {
            handles.send.observe(elapsed.as_secs_f64());
        }
    }

    /// The histogram the metadata state machine feeds with each batch's apply time (hand it
    /// to [`MetaNode::observe_apply`]).
    pub fn meta_apply_observer(&self) -> sluice_meta::state_machine::ApplyObserver {
        let histogram = self.meta_apply_seconds.clone();
        Arc::new(move |elapsed: Duration| histogram.observe(elapsed.as_secs_f64()))
    }

    /// Reports the use of the memory budget `name` (a semaphore of `limit` byte permits) as
    /// `sluice_memory_budget_used_bytes{budget=name}`, read at each scrape.
    pub fn watch_budget(&self, name: &'static str, semaphore: Arc<tokio::sync::Semaphore>, limit: usize) {
        let mut budgets = self.budgets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        budgets.retain(|budget| budget.name != name);
        budgets.push(Budget { name, semaphore, limit });
    }

    /// `bytes` of `kind` (`produce`, `fetch`) were counted against a client's quota, and earned
    /// `throttle` (zero within the quota).
    pub fn quota_recorded(&self, kind: &'static str, bytes: u64, throttle: Duration) {
        let labels = [("kind", kind.to_string())];
        self.quota_bytes.get_or_create(&labels).inc_by(bytes);
        if !throttle.is_zero() {
            self.quota_throttled.get_or_create(&labels).inc();
            self.quota_throttle_seconds.get_or_create(&labels).inc_by(throttle.as_secs_f64());
        }
    }

    /// Seconds of quota throttle handed out so far for `kind` (`produce`, `fetch`, `request`).
    pub fn quota_throttle_seconds(&self, kind: &'static str) -> f64 {
        self.quota_throttle_seconds.get_or_create(&[("kind", kind.to_string())]).get()
    }

    /// A client connection opened (`true`) or closed.
    pub fn connection(&self, opened: bool) {
        if opened {
            self.connections.inc();
        } else {
            self.connections.dec();
        }
    }

    /// A producer's `records` records in `bytes` bytes were appended to `topic`.
    pub fn produced(&self, topic: &str, records: u64, bytes: u64) {
        let labels = [("topic", topic.to_string())];
        self.records_in.get_or_create(&labels).inc_by(records);
        self.bytes_in.get_or_create(&labels).inc_by(bytes);
    }

    /// A produce to a partition was refused with Kafka error `code`.
    pub fn produce_refused(&self, code: i16) {
        self.produce_errors.get_or_create(&[("code", code.to_string())]).inc();
    }

    /// `bytes` of `topic` were sent to a consumer or (`follower`) to a follower.
    pub fn fetched(&self, topic: &str, follower: bool, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let reader = if follower { "follower" } else { "consumer" };
        self.bytes_out.get_or_create(&[("topic", topic.to_string()), ("reader", reader.to_string())]).inc_by(bytes);
    }

    /// The counters of `topic` (zero for a topic nothing was counted for). Reads the series
    /// without creating them.
    pub fn topic_totals(&self, topic: &str) -> TopicTotals {
        let labels = [("topic", topic.to_string())];
        let out = [("topic", topic.to_string()), ("reader", "consumer".to_string())];
        TopicTotals {
            records_in: self.records_in.get(&labels).map_or(0, |c| c.get()),
            bytes_in: self.bytes_in.get(&labels).map_or(0, |c| c.get()),
            bytes_out: self.bytes_out.get(&out).map_or(0, |c| c.get()),
        }
    }

    /// Samples the counters of `topics` now (the lag task calls this every
    /// [`LAG_REFRESH_INTERVAL_MS`](crate::coordinator::lag::LAG_REFRESH_INTERVAL_MS)); the
    /// rates are the difference to the previous sample.
    pub fn sample_topic_rates<'a>(&self, topics: impl Iterator<Item = &'a String>) {
        self.sample_topic_rates_at(std::time::Instant::now(), topics);
    }

    fn sample_topic_rates_at<'a>(&self, at: std::time::Instant, topics: impl Iterator<Item = &'a String>) {
        let totals = topics.map(|topic| (topic.clone(), self.topic_totals(topic))).collect();
        let sample = TopicSample { at, totals };
        let mut samples = self.topic_samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        samples[0] = samples[1].take();
        samples[1] = Some(sample);
    }

    /// The rates of `topic` between the last two samples; `None` before two samples or for a
    /// topic not in both.
    pub fn topic_rates(&self, topic: &str) -> Option<TopicRates> {
        let samples = self.topic_samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (Some(before), Some(after)) = (&samples[0], &samples[1]) else { return None };
        let seconds = after.at.duration_since(before.at).as_secs_f64();
        let (old, new) = (before.totals.get(topic)?, after.totals.get(topic)?);
        if seconds <= 0.0 {
            return None;
        }
        let rate = |new: u64, old: u64| new.saturating_sub(old) as f64 / seconds;
        Some(TopicRates {
            records_in: rate(new.records_in, old.records_in),
            bytes_in: rate(new.bytes_in, old.bytes_in),
            bytes_out: rate(new.bytes_out, old.bytes_out),
        })
    }

    /// Sets `sluice_consumer_groups{state}` from the groups coordinated here (every one of
    /// Kafka's classic group states has a series, at 0 when no group is in it), and each
    /// group's members and generation.
    pub fn set_groups(&self, groups: &[crate::coordinator::shard::ListedGroup]) {
        let mut counts: std::collections::BTreeMap<&str, i64> = GROUP_STATES.iter().map(|state| (*state, 0)).collect();
        self.group_members.clear();
        self.group_generation.clear();
        for group in groups {
            *counts.entry(group.state).or_default() += 1;
            let labels = [("group", group.group_id.clone())];
            self.group_members.get_or_create(&labels).set(group.members as i64);
            self.group_generation.get_or_create(&labels).set(i64::from(group.generation_id));
        }
        self.groups_by_state.clear();
        for (state, count) in counts {
            self.groups_by_state.get_or_create(&[("state", state.to_string())]).set(count);
        }
    }

    /// Replaces the consumer lag series with `lags` (see [`crate::coordinator::lag`]).
    pub fn set_consumer_lag(&self, lags: &[crate::coordinator::lag::Lag]) {
        self.lag.clear();
        self.lag_max.clear();
        self.lag_sum.clear();
        self.lag_seconds.clear();
        self.lag_seconds_max.clear();
        let per_partition = lags.len() <= METRICS_LAG_SERIES_MAX;
        let mut groups: std::collections::BTreeMap<&str, (i64, i64, Option<f64>)> = std::collections::BTreeMap::new();
        for lag in lags {
            if per_partition {
                let labels = [
                    ("group", lag.group.clone()),
                    ("topic", lag.topic.clone()),
                    ("partition", lag.partition.to_string()),
                ];
                self.lag.get_or_create(&labels).set(lag.records);
                if let Some(seconds) = lag.seconds {
                    self.lag_seconds.get_or_create(&labels).set(seconds);
                }
            }
            let (max, sum, max_seconds) = groups.entry(&lag.group).or_default();
            *max = (*max).max(lag.records);
            *sum += lag.records;
            if let Some(seconds) = lag.seconds {
                *max_seconds = Some(max_seconds.map_or(seconds, |m: f64| m.max(seconds)));
            }
        }
        for (group, (max, sum, max_seconds)) in groups {
            self.lag_max.get_or_create(&[("group", group.to_string())]).set(max);
            self.lag_sum.get_or_create(&[("group", group.to_string())]).set(sum);
            if let Some(seconds) = max_seconds {
                self.lag_seconds_max.get_or_create(&[("group", group.to_string())]).set(seconds);
            }
        }
    }

    /// The metrics as OpenMetrics text, with the scrape-time gauges read now. Blocking: takes
    /// each hosted partition's lock.
    pub fn render(&self, partitions: &PartitionManager, meta: &MetaNode, view: &MetadataView, local: i32) -> String {
        self.refresh(partitions, meta, view, local);
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot encode metrics");
        }
        text
    }

    fn refresh(&self, partitions: &PartitionManager, meta: &MetaNode, view: &MetadataView, local: i32) {
        let hosted = partitions.all();
        let per_partition = hosted.len() <= METRICS_PARTITIONS_MAX;
        for family in [&self.log_size, &self.log_start, &self.log_end, &self.high_watermark] {
            family.clear();
        }
        let (mut leaders, mut followers, mut under_replicated, mut under_min_isr) = (0, 0, 0, 0);
        for partition in &hosted {
            let leadership = partition.leadership();
            if leadership.is_leader(local) {
                leaders += 1;
                if leadership.isr.len() < leadership.replicas.len() {
                    under_replicated += 1;
                }
                if (leadership.isr.len() as i64) < i64::from(leadership.min_insync_replicas) {
                    under_min_isr += 1;
                }
            } else {
                followers += 1;
            }
            if !per_partition {
                continue;
            }
            let labels = [("topic", partition.topic.clone()), ("partition", partition.index.to_string())];
            if let Some((start, end, size)) = partition.log_stats() {
                self.log_start.get_or_create(&labels).set(start);
                self.log_end.get_or_create(&labels).set(end);
                self.log_size.get_or_create(&labels).set(i64::try_from(size).unwrap_or(i64::MAX));
            }
            self.high_watermark.get_or_create(&labels).set(partition.high_watermark_now());
        }
        self.partitions.get_or_create(&[("role", "leader".to_string())]).set(leaders);
        self.partitions.get_or_create(&[("role", "follower".to_string())]).set(followers);
        self.under_replicated.set(under_replicated);
        self.under_min_isr.set(under_min_isr);
        let raft = meta.metrics().borrow().clone();
        let leads_metadata = raft.current_leader == Some(raft.id);
        let offline = view.topics.values().flat_map(|t| &t.partitions).filter(|p| p.leader.is_none()).count();
        self.offline.set(if leads_metadata { offline as i64 } else { 0 });
        self.raft_term.set(i64::try_from(raft.current_term).unwrap_or(i64::MAX));
        self.raft_leader.set(raft.current_leader.map_or(-1, |id| i64::try_from(id).unwrap_or(-1)));
        self.raft_applied.set(raft.last_applied.map_or(0, |log_id| i64::try_from(log_id.index).unwrap_or(i64::MAX)));
        self.raft_last_log.set(raft.last_log_index.map_or(0, |index| i64::try_from(index).unwrap_or(i64::MAX)));
        let fenced = view.brokers.values().filter(|b| b.fenced).count() as i64;
        self.brokers.get_or_create(&[("state", "live".to_string())]).set(view.brokers.len() as i64 - fenced);
        self.brokers.get_or_create(&[("state", "fenced".to_string())]).set(fenced);
        self.refresh_budgets();
    }

    fn refresh_budgets(&self) {
        let budgets = self.budgets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for budget in budgets.iter() {
            let labels = [("budget", budget.name.to_string())];
            let used = budget.limit.saturating_sub(budget.semaphore.available_permits());
            self.budget_used.get_or_create(&labels).set(i64::try_from(used).unwrap_or(i64::MAX));
            self.budget_limit.get_or_create(&labels).set(i64::try_from(budget.limit).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
impl Metrics {
    fn render_registry_only(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).unwrap();
        text
    }
}

/// Shared handle.
pub type SharedMetrics = Arc<Metrics>;

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the console's rates are the counters' differences between the last two samples,
    // per second; reading the totals creates no series.
    #[test]
    fn topic_rates_are_the_difference_of_the_last_two_samples() {
        let metrics = Metrics::new();
        let topics = ["t".to_string(), "quiet".to_string()];
        let start = std::time::Instant::now();
        metrics.produced("t", 5, 500);
        metrics.sample_topic_rates_at(start, topics.iter());
        assert_eq!(metrics.topic_rates("t"), None, "one sample is no rate");
        metrics.produced("t", 20, 2_000);
        metrics.fetched("t", false, 1_000);
        metrics.fetched("t", true, 9_999);
        metrics.sample_topic_rates_at(start + Duration::from_secs(5), topics.iter());
        assert_eq!(
            metrics.topic_rates("t"),
            Some(TopicRates { records_in: 4.0, bytes_in: 400.0, bytes_out: 200.0 }),
            "followers' reads are not consumer bytes out"
        );
        assert_eq!(metrics.topic_totals("t"), TopicTotals { records_in: 25, bytes_in: 2_500, bytes_out: 1_000 });
        assert_eq!(metrics.topic_rates("quiet"), Some(TopicRates::default()));
        assert_eq!(metrics.topic_rates("unknown"), None);
        assert!(!metrics.render_registry_only().contains("topic=\"quiet\""), "no series made for a quiet topic");
    }
}
