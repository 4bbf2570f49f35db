//! The partitions this broker hosts, kept in step with the metadata view.
//!
//! [`plan`] is pure: from the view and what is open locally it returns the actions that bring
//! the broker in line (open a replica assigned to us, update leadership, reconfigure after a
//! config change, close and delete a replica no longer assigned or whose topic is gone). The
//! [`PartitionManager`] executes them, running every blocking step (opening and recovering a
//! log, closing it, deleting its directory) on tokio's blocking pool so the runtime's worker
//! threads never wait on the disk.
//!
//! Reconciliation runs after every applied view (the watch task in `node`), directly after an
//! admin request that changed topics, so the partitions exist before the client is answered,
//! and when a partition that failed to open is due for another try (`open_retry`: backoff,
//! no metadata change needed). Runs are serialized. Within a run the deletions go first, then
//! the other steps; each phase works on up to [`PARTITION_IO_CONCURRENCY`] partitions at once
//! (one partition's steps stay in order), as does [`PartitionManager::close_all`]: opening,
//! creating and closing a log is mostly fsyncs, which a disk completes far faster side by side
//! than one after the other (a broker with thousands of partitions starts, creates topics and
//! shuts down in a fraction of the time). [`PartitionManager::unready_reasons`] says what keeps
//! the broker from serving its assignment (`/ready`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use futures::stream::{self, StreamExt};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use sluice_meta::topic_config::TopicLogSettings;
use sluice_meta::{BrokerId, MetadataView, TopicConfig};
use uuid::Uuid;

use crate::error::PartitionError;
use crate::partition::log_config::log_config_for;
use crate::partition::open_retry::OpenFailures;
use crate::partition::partition::{read_partition_metadata, Leadership, Maintenance, Partition};

/// Topic name and partition index.
pub type PartitionKey = (String, i32);

/// How many partitions a reconciliation or [`PartitionManager::close_all`] works on at once,
/// each on a thread of tokio's blocking pool (512 threads by default). Why: those steps are
/// mostly fsyncs (a new log's segment, checkpoint and directory; a closing log's flush and
/// clean-shutdown checkpoint), which the disk completes side by side far faster than one by
/// one; 16 keeps a device queue busy without taking the pool from the request path.
pub const PARTITION_IO_CONCURRENCY: usize = 16;

/// How many partitions one blocking task of a maintenance pass works through, one after the
/// other. Why: a pass runs every second over every partition, and a task per partition cost a
/// broker idling with 10,000 partitions about a third to half of a core in thread wake-ups;
/// chunks keep each blocking task short (the pass awaits them one by one) at a handful of
/// wake-ups per pass.
pub const MAINTENANCE_PARTITIONS_PER_TASK: usize = 256;

/// Open file descriptors one hosted partition holds: its active segment's `.log` file. Its
/// indexes are memory-mapped and hold none, the data directory's lock covers every log (no
/// lock file per log), and a sealed segment opens its file when it is read and keeps it
/// until the partition closes (a partition whose old segments are being read holds more).
pub const FILE_DESCRIPTORS_PER_PARTITION: u64 = 1;

/// File descriptors left for everything else when [`partitions_within`] divides a limit:
/// client and replication connections (up to `MAX_CONNECTIONS`), the metadata Raft log and
/// its connections, the listeners.
pub const FILE_DESCRIPTORS_RESERVED: u64 = 2048;

/// About how many partitions a broker can host under an open-file limit of `limit`.
pub fn partitions_within(limit: u64) -> u64 {
    limit.saturating_sub(FILE_DESCRIPTORS_RESERVED) / FILE_DESCRIPTORS_PER_PARTITION
}

/// Raises the process's soft limit of open file descriptors to its hard limit, as Go programs
/// do, and logs the limit and about how many partitions it allows: every partition holds
/// [`FILE_DESCRIPTORS_PER_PARTITION`] of them, and systemd's default soft limit of 1024 (hard
/// 524288) leaves no room for thousands of partitions besides the connections. Called after
/// the start banner (a broker refused at start prints its one line and nothing else).
pub fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(
            limit,
            descriptors_per_partition = FILE_DESCRIPTORS_PER_PARTITION,
            partitions = partitions_within(limit),
            "open file limit"
        ),
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
}

/// What one replica is, or should be: the view's side and the local side of [`plan`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaState {
    /// Topic id of the data.
    pub topic_id: Uuid,
    /// The topic's configuration (its log configuration derives from it).
    pub config: TopicConfig,
    /// The storage and produce settings the topic holds only as overrides (its log
    /// configuration derives from them too).
    pub log_settings: TopicLogSettings,
    /// Leadership from the partition record.
    pub leadership: Leadership,
}

/// One step of reconciliation.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open (creating or recovering) the replica.
    Open(PartitionKey),
    /// Leadership changed.
    UpdateLeadership(PartitionKey),
    /// The topic config changed.
    Reconfigure(PartitionKey),
    /// Close the replica and delete its data (topic deleted, re-created under a new id, or the
    /// replica moved away).
    Delete(PartitionKey),
}

/// The broker's own settings of the topic configs a topic may leave to the broker (Kafka's
/// `STATIC_BROKER_CONFIG` defaults; `sluice_meta::topic_config::BROKER_DEFAULTED_KEYS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerTopicDefaults {
    /// `--min-insync-replicas`.
    pub min_insync_replicas: i32,
    /// `--replica-lag-time-max-ms`.
    pub replica_lag_time_ms: i64,
}

impl Default for BrokerTopicDefaults {
    /// Kafka's.
    fn default() -> Self {
        BrokerTopicDefaults { min_insync_replicas: 1, replica_lag_time_ms: super::replica::REPLICA_LAG_TIME_MS_DEFAULT }
    }
}

/// The replicas `broker` should host according to `view`, with `defaults` for the settings a
/// topic does not override.
pub fn desired_replicas(
    view: &MetadataView,
    broker: BrokerId,
    defaults: BrokerTopicDefaults,
) -> BTreeMap<PartitionKey, ReplicaState> {
    let mut desired = BTreeMap::new();
    for topic in view.topics.values() {
        let mut log_settings = None;
        for partition in topic.partitions.iter().filter(|p| p.replicas.contains(&broker)) {
            // Once per topic, and only for a topic with a replica here: every view applied
            // (each ISR change) runs this over every partition.
            let log_settings =
                log_settings.get_or_insert_with(|| TopicLogSettings::from_overrides(&topic.config_overrides));
            let leadership = Leadership {
                leader: partition.leader,
                leader_epoch: partition.leader_epoch,
                replicas: partition.replicas.clone(),
                isr: partition.isr.clone(),
                partition_epoch: partition.partition_epoch,
                min_insync_replicas: topic.min_insync_replicas(defaults.min_insync_replicas),
                replica_lag_time_ms: topic.replica_lag_time_max_ms(defaults.replica_lag_time_ms),
            };
            desired.insert(
                (topic.name.clone(), partition.partition as i32),
                ReplicaState {
                    topic_id: topic.topic_id,
                    config: topic.config.clone(),
                    log_settings: log_settings.clone(),
                    leadership,
                },
            );
        }
    }
    desired
}

/// The actions that turn `local` into `desired`, deletions first (a re-created topic's old
/// directory must be gone before the new one opens at the same path).
pub fn plan(
    local: &BTreeMap<PartitionKey, ReplicaState>,
    desired: &BTreeMap<PartitionKey, ReplicaState>,
) -> Vec<Action> {
    let mut deletes = Vec::new();
    let mut others = Vec::new();
    for (key, open) in local {
        match desired.get(key) {
            None => deletes.push(Action::Delete(key.clone())),
            Some(want) if want.topic_id != open.topic_id => {
                deletes.push(Action::Delete(key.clone()));
                others.push(Action::Open(key.clone()));
            }
            Some(want) => {
                if want.config != open.config || want.log_settings != open.log_settings {
                    others.push(Action::Reconfigure(key.clone()));
                }
                if want.leadership != open.leadership {
                    others.push(Action::UpdateLeadership(key.clone()));
                }
            }
        }
    }
    for key in desired.keys().filter(|key| !local.contains_key(*key)) {
        others.push(Action::Open(key.clone()));
    }
    deletes.extend(others);
    deletes
}

/// `actions` grouped by partition, each group in its original order, the groups in the order
/// of their first action: what may run side by side (different partitions) and what may not
/// (one partition's reconfiguration and leadership change).
pub fn by_partition(actions: Vec<Action>) -> Vec<Vec<Action>> {
    let mut groups: Vec<Vec<Action>> = Vec::new();
    let mut index_of: HashMap<PartitionKey, usize> = HashMap::new();
    for action in actions {
        let key = action.key().clone();
        match index_of.get(&key) {
            Some(&index) => groups[index].push(action),
            None => {
                index_of.insert(key, groups.len());
                groups.push(vec![action]);
            }
        }
    }
    groups
}

impl Action {
    /// The partition the step is for.
    pub fn key(&self) -> &PartitionKey {
        match self {
            Action::Open(key) | Action::UpdateLeadership(key) | Action::Reconfigure(key) | Action::Delete(key) => key,
        }
    }
}

/// The directory of a partition's log: `<logs dir>/<topic>-<partition>`.
pub fn partition_dir(logs_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    logs_dir.join(format!("{topic}-{partition}"))
}

/// An open partition and the state it was last brought to (kept here, not read from the
/// partition, so planning never waits on a partition's lock).
struct Entry {
    partition: Arc<Partition>,
    state: ReplicaState,
}

/// The partitions this broker hosts.
pub struct PartitionManager {
    local_broker: BrokerId,
    /// `replica.lag.time.max.ms`, given to every partition.
    defaults: BrokerTopicDefaults,
    logs_dir: PathBuf,
    partitions: RwLock<HashMap<PartitionKey, Entry>>,
    /// Serializes reconciliation runs.
    reconciling: tokio::sync::Mutex<()>,
    /// Assigned partitions that failed to open, with their next try.
    open_failures: Mutex<OpenFailures>,
    /// Whether a reconciliation run has completed (until then the assignment is not open).
    reconciled: AtomicBool,
    /// Whether the partitions hosted are past [`partitions_within`] the open-file limit (the
    /// WARN line was logged).
    near_file_limit: AtomicBool,
    /// Per partition: why its log refuses writes, and the last maintenance error (each logged
    /// once per episode, not every tick); refreshed by every maintenance pass.
    storage: Mutex<BTreeMap<PartitionKey, StorageTrouble>>,
    /// ISR changes of partitions led here, as the metadata applies them (Kafka's
    /// `IsrShrinksPerSec` / `IsrExpandsPerSec`; `sluice_isr_shrinks_total` / `_expands_total`).
    pub isr_changes: IsrChangeCounters,
    /// Durations of every partition log's segment syncs (`sluice_log_fsync_duration_seconds`).
    pub log_syncs: LogSyncTimes,
}

/// One histogram per label value, made by a plain function (what the metrics registry exports).
pub type HistogramFamily = Family<[(&'static str, String); 1], Histogram, fn() -> Histogram>;

/// Durations of the partition logs' segment syncs (`fdatasync`), by cause: the flush policy,
/// a segment roll, an explicit flush (Kafka's `LogFlushRateAndTimeMs`). One histogram per
/// cause, created up front so each series exists from the start.
#[derive(Debug, Clone)]
pub struct LogSyncTimes {
    /// The family the metrics registry exports, labelled `cause`.
    pub seconds: HistogramFamily,
    by_cause: [Histogram; 3],
}

const SYNC_CAUSES: [sluice_log::SyncCause; 3] =
    [sluice_log::SyncCause::Policy, sluice_log::SyncCause::Roll, sluice_log::SyncCause::Flush];

fn sync_histogram() -> Histogram {
    // 10 µs .. ~10 s, factor 2: a sync to a drive's cache and one stuck behind a full queue.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 21))
}

impl Default for LogSyncTimes {
    fn default() -> Self {
        let seconds = Family::new_with_constructor(sync_histogram as fn() -> Histogram);
        let by_cause = SYNC_CAUSES.map(|cause| seconds.get_or_create(&[("cause", cause.as_str().to_string())]).clone());
        LogSyncTimes { seconds, by_cause }
    }
}

impl LogSyncTimes {
    /// The observer each partition's log reports its syncs to.
    pub fn observer(&self) -> sluice_log::SyncObserver {
        let by_cause = self.by_cause.clone();
        Arc::new(move |cause: sluice_log::SyncCause, elapsed: std::time::Duration| {
            let index = SYNC_CAUSES.iter().position(|known| *known == cause).unwrap_or(0);
            by_cause[index].observe(elapsed.as_secs_f64());
        })
    }
}

/// Counts of ISR shrinks and expansions of partitions this broker leads: one per applied
/// change that removes (or adds) members under the same leader and leader epoch, whether the
/// leader asked for it (a lagging follower) or the controller made it (a fenced broker).
#[derive(Debug, Clone, Default)]
pub struct IsrChangeCounters {
    /// Changes that removed at least one member.
    pub shrinks: prometheus_client::metrics::counter::Counter,
    /// Changes that added at least one member.
    pub expands: prometheus_client::metrics::counter::Counter,
    /// Leaderships this broker gained from another broker (an election it won: summed over the
    /// brokers, the cluster's leader elections; a partition's first leader is not counted).
    pub leaderships_gained: prometheus_client::metrics::counter::Counter,
}

impl IsrChangeCounters {
    /// Counts the change from `before` to `after`: an ISR shrink or expansion if `local` leads
    /// both under one epoch, a leadership gained if it leads only `after`.
    pub fn count(&self, local: BrokerId, before: &Leadership, after: &Leadership) {
        if !before.is_leader(local) && after.is_leader(local) {
            self.leaderships_gained.inc();
        }
        let (shrunk, expanded) = isr_change(local, before, after);
        if shrunk {
            self.shrinks.inc();
        }
        if expanded {
            self.expands.inc();
        }
    }
}

/// Whether the change from `before` to `after` shrinks and/or expands the ISR of a partition
/// `local` leads in both under the same leader epoch (a new epoch starts a new ISR story).
fn isr_change(local: BrokerId, before: &Leadership, after: &Leadership) -> (bool, bool) {
    if !(before.is_leader(local) && after.is_leader(local) && before.leader_epoch == after.leader_epoch) {
        return (false, false);
    }
    let shrunk = before.isr.iter().any(|member| !after.isr.contains(member));
    let expanded = after.isr.iter().any(|member| !before.isr.contains(member));
    (shrunk, expanded)
}

/// What the last maintenance pass found wrong with one partition's storage.
#[derive(Debug, Default, Clone, PartialEq)]
struct StorageTrouble {
    write_refusal: Option<String>,
    maintenance_error: Option<String>,
}

impl std::fmt::Debug for PartitionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionManager").field("logs_dir", &self.logs_dir).finish()
    }
}

/// Runs a blocking partition step on tokio's blocking pool.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PartitionError> + Send + 'static,
) -> Result<T, PartitionError> {
    tokio::task::spawn_blocking(work).await.map_err(|error| PartitionError::Task(error.to_string()))?
}

impl PartitionManager {
    /// A manager for logs under `logs_dir`; nothing is opened until [`reconcile`](Self::reconcile).
    pub fn new(local_broker: BrokerId, logs_dir: PathBuf, defaults: BrokerTopicDefaults) -> PartitionManager {
        PartitionManager {
            local_broker,
            defaults,
            logs_dir,
            partitions: RwLock::new(HashMap::new()),
            reconciling: tokio::sync::Mutex::new(()),
            open_failures: Mutex::new(OpenFailures::default()),
            reconciled: AtomicBool::new(false),
            near_file_limit: AtomicBool::new(false),
            storage: Mutex::new(BTreeMap::new()),
            isr_changes: IsrChangeCounters::default(),
            log_syncs: LogSyncTimes::default(),
        }
    }

    /// The directory every partition's log directory is in (`DATA_DIR/logs`).
    pub fn logs_dir(&self) -> &Path {
        &self.logs_dir
    }

    /// The open partition, if this broker hosts it.
    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let partitions = self.partitions.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        partitions.get(&(topic.to_string(), partition)).map(|entry| Arc::clone(&entry.partition))
    }

    /// Every open partition.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        let partitions = self.partitions.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        partitions.values().map(|entry| Arc::clone(&entry.partition)).collect()
    }

    /// The partitions this broker follows, each with its leader (as last reconciled).
    pub fn followed(&self) -> Vec<(BrokerId, Arc<Partition>)> {
        let partitions = self.partitions.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        partitions
            .values()
            .filter_map(|entry| {
                let leader = entry.state.leadership.leader.filter(|leader| *leader != self.local_broker)?;
                Some((leader, Arc::clone(&entry.partition)))
            })
            .collect()
    }

    fn local(&self) -> BTreeMap<PartitionKey, ReplicaState> {
        let partitions = self.partitions.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        partitions.iter().map(|(key, entry)| (key.clone(), entry.state.clone())).collect()
    }

    /// Brings the open partitions in line with `view`. A partition that fails to open is
    /// recorded with a retry time (see `open_retry`) and skipped until then; it does not stop
    /// the others.
    pub async fn reconcile(&self, view: &MetadataView) {
        let _running = self.reconciling.lock().await;
        let desired = desired_replicas(view, self.local_broker, self.defaults);
        self.failures().retain(|key| desired.contains_key(key));
        let actions = plan(&self.local(), &desired);
        // Every replica this view removes stops fetching now, before any is closed and deleted
        // (one at a time, on the blocking pool): see `Partition::retire`.
        for action in &actions {
            if let Action::Delete((topic, index)) = action {
                if let Some(partition) = self.get(topic, *index) {
                    partition.retire();
                }
            }
        }
        let (deletes, others): (Vec<Action>, Vec<Action>) =
            actions.into_iter().partition(|action| matches!(action, Action::Delete(_)));
        for phase in [deletes, others] {
            stream::iter(by_partition(phase))
                .for_each_concurrent(PARTITION_IO_CONCURRENCY, |steps| async {
                    for action in steps {
                        self.run_action(action, &desired).await;
                    }
                })
                .await;
        }
        self.warn_near_the_open_file_limit();
        self.reconciled.store(true, Ordering::Release);
    }

    /// One WARN line when the partitions hosted here reach [`partitions_within`] the process's
    /// open-file limit (and again after they fell below it and reach it once more): past it,
    /// opening a partition or accepting a connection fails with "too many open files".
    fn warn_near_the_open_file_limit(&self) {
        let Ok((limit, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else { return };
        let hosted = self.partitions.read().unwrap_or_else(|poisoned| poisoned.into_inner()).len() as u64;
        let over = hosted > partitions_within(limit);
        if over && !self.near_file_limit.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                partitions = hosted,
                limit,
                descriptors_per_partition = FILE_DESCRIPTORS_PER_PARTITION,
                "the partitions hosted here need about as many file descriptors as the open-file limit allows; \
                 raise it (LimitNOFILE in systemd, ulimit -n)"
            );
        } else if !over {
            self.near_file_limit.store(false, Ordering::Relaxed);
        }
    }

    /// Runs one reconciliation step and logs (or records, for an open) its outcome.
    async fn run_action(&self, action: Action, desired: &BTreeMap<PartitionKey, ReplicaState>) {
        let result = match &action {
            Action::Open(key) if !self.failures().is_due(key, Instant::now()) => return,
            Action::Open(key) => self.open(key, desired[key].clone()).await,
            Action::UpdateLeadership(key) => self.update_leadership(key, &desired[key]).await,
            Action::Reconfigure(key) => self.reconfigure(key, &desired[key]).await,
            Action::Delete(key) => self.delete(key).await,
        };
        {
            match (&action, result) {
                (Action::Open(key), Ok(())) => {
                    let failures = self.failures().opened(key);
                    if failures > 0 {
                        tracing::info!(topic = key.0, partition = key.1, failures, "partition opened after failing");
                    }
                }
                (Action::Open(key), Err(error)) => {
                    let failure = self.failures().failed(key, error.to_string(), Instant::now());
                    let retry_in_ms = failure.retry_at.saturating_duration_since(Instant::now()).as_millis() as u64;
                    tracing::error!(
                        topic = key.0,
                        partition = key.1,
                        %error,
                        failures = failure.failures,
                        retry_in_ms,
                        "partition failed to open; retrying"
                    );
                }
                (_, Ok(())) => {}
                (_, Err(error)) => tracing::error!(?action, %error, "partition reconciliation step failed"),
            }
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, OpenFailures> {
        self.open_failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// When the next partition that failed to open is due for another try.
    pub fn next_open_retry(&self) -> Option<Instant> {
        self.failures().next_retry()
    }

    /// Why this broker cannot serve its whole assignment now, one line each (empty: it can):
    /// no reconciliation has completed yet, or assigned partitions failed to open.
    pub fn unready_reasons(&self) -> Vec<String> {
        if !self.reconciled.load(Ordering::Acquire) {
            return vec!["partitions: not opened yet".to_string()];
        }
        // Open partitions that cannot write first: `/ready` shows only the first reasons.
        let mut reasons: Vec<String> = Vec::new();
        let storage = self.storage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for ((topic, partition), trouble) in storage.iter() {
            if let Some(refusal) = &trouble.write_refusal {
                reasons.push(format!("partition {topic}-{partition}: cannot write: {refusal}"));
            }
        }
        drop(storage);
        reasons.extend(self.failures().all().into_iter().map(|((topic, partition), failure)| {
            format!("partition {topic}-{partition}: failed to open ({} attempts): {}", failure.failures, failure.error)
        }));
        reasons.extend(self.all().iter().filter_map(|p| p.damage().filter(|d| d.offline).map(|d| (p, d))).map(
            |(partition, damage)| {
                format!(
                    "partition {}-{}: offline: the batch at offset {} in {} is damaged and no other in-sync \
                     replica can take over",
                    partition.topic, partition.index, damage.offset, damage.file
                )
            },
        ));
        reasons
    }

    /// The assigned partitions this broker holds but cannot serve: those that failed to open,
    /// and those whose log has a damaged batch that no other in-sync replica can replace
    /// (Metadata reports this broker as an offline replica of each).
    pub fn offline_here(&self) -> Vec<PartitionKey> {
        let mut offline = self.failed_to_open();
        let damaged = self.all().into_iter().filter(|p| p.damage().is_some_and(|d| d.offline));
        offline.extend(damaged.map(|p| (p.topic.clone(), p.index)));
        offline
    }

    /// The assigned partitions that failed to open (Metadata reports this broker as an
    /// offline replica of each).
    pub fn failed_to_open(&self) -> Vec<PartitionKey> {
        self.failures().all().into_iter().map(|(key, _)| key).collect()
    }

    async fn open(&self, key: &PartitionKey, want: ReplicaState) -> Result<(), PartitionError> {
        let dir = partition_dir(&self.logs_dir, &key.0, key.1);
        let (topic, index, broker) = (key.0.clone(), key.1, self.local_broker);
        let (topic_id, config, leadership) =
            (want.topic_id, log_config_for(&want.config, &want.log_settings), want.leadership.clone());
        let sync_observer = self.log_syncs.observer();
        let partition = blocking(move || {
            // Data of an older topic with the same name (deleted while this broker was down).
            if let Some(old_id) = read_partition_metadata(&dir) {
                if old_id != topic_id {
                    tracing::warn!(dir = %dir.display(), %old_id, "deleting data of a deleted topic");
                    std::fs::remove_dir_all(&dir).map_err(|source| PartitionError::Io { path: dir.clone(), source })?;
                }
            }
            let partition = Partition::open(&dir, &topic, index, topic_id, broker, config, leadership)?;
            partition.observe_syncs(sync_observer);
            Ok(partition)
        })
        .await?;
        let mut partitions = self.partitions.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        partitions.insert(key.clone(), Entry { partition: Arc::new(partition), state: want });
        Ok(())
    }

    /// Runs `step` on the partition (on the blocking pool: it takes the partition's lock, which
    /// an fsync may hold), then records `want` as its state.
    async fn update(
        &self,
        key: &PartitionKey,
        want: &ReplicaState,
        step: impl FnOnce(&Partition) -> Result<(), PartitionError> + Send + 'static,
    ) -> Result<(), PartitionError> {
        let Some(partition) = self.get(&key.0, key.1) else { return Ok(()) };
        blocking(move || step(&partition)).await?;
        let mut partitions = self.partitions.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = partitions.get_mut(key) {
            entry.state = want.clone();
        }
        Ok(())
    }

    async fn update_leadership(&self, key: &PartitionKey, want: &ReplicaState) -> Result<(), PartitionError> {
        let before = {
            let partitions = self.partitions.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            partitions.get(key).map(|entry| entry.state.leadership.clone())
        };
        if let Some(before) = before {
            self.isr_changes.count(self.local_broker, &before, &want.leadership);
        }
        let leadership = want.leadership.clone();
        self.update(key, want, move |partition| {
            partition.set_leadership(leadership);
            Ok(())
        })
        .await
    }

    async fn reconfigure(&self, key: &PartitionKey, want: &ReplicaState) -> Result<(), PartitionError> {
        let config = log_config_for(&want.config, &want.log_settings);
        self.update(key, want, move |partition| partition.reconfigure(config)).await
    }

    async fn delete(&self, key: &PartitionKey) -> Result<(), PartitionError> {
        let removed = {
            let mut partitions = self.partitions.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            partitions.remove(key)
        };
        let Some(entry) = removed else { return Ok(()) };
        let partition = entry.partition;
        blocking(move || {
            partition.close()?;
            let dir = partition.dir().to_path_buf();
            std::fs::remove_dir_all(&dir).map_err(|source| PartitionError::Io { path: dir.clone(), source })?;
            tracing::info!(topic = partition.topic, partition = partition.index, "partition deleted");
            Ok(())
        })
        .await
    }

    /// Deletes partition directories that the view does not assign to this broker (topics
    /// deleted while it was down). Call only with a view known to be current (after this
    /// broker's registration was applied), or live data would be deleted.
    pub async fn delete_orphans(&self, view: &MetadataView) -> Result<usize, PartitionError> {
        let desired = desired_replicas(view, self.local_broker, self.defaults);
        let logs_dir = self.logs_dir.clone();
        let wanted: HashMap<PathBuf, Uuid> = desired
            .iter()
            .map(|((topic, index), replica)| (partition_dir(&logs_dir, topic, *index), replica.topic_id))
            .collect();
        blocking(move || {
            let io = |source| PartitionError::Io { path: logs_dir.clone(), source };
            std::fs::create_dir_all(&logs_dir).map_err(io)?;
            let mut deleted = 0;
            for entry in std::fs::read_dir(&logs_dir).map_err(io)? {
                let path = entry.map_err(io)?.path();
                if !path.is_dir() {
                    continue;
                }
                let keep = wanted.get(&path).is_some_and(|id| read_partition_metadata(&path).is_none_or(|on_disk| on_disk == *id));
                if !keep {
                    tracing::warn!(dir = %path.display(), "deleting a partition directory the metadata does not assign here");
                    std::fs::remove_dir_all(&path).map_err(|source| PartitionError::Io { path: path.clone(), source })?;
                    deleted += 1;
                }
            }
            Ok(deleted)
        })
        .await
    }

    /// Closes every partition cleanly (flush, clean-shutdown marker), on the blocking pool,
    /// [`PARTITION_IO_CONCURRENCY`] at a time.
    pub async fn close_all(&self) {
        let all: Vec<Arc<Partition>> = {
            let mut partitions = self.partitions.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            partitions.drain().map(|(_, entry)| entry.partition).collect()
        };
        let count = all.len();
        stream::iter(all)
            .for_each_concurrent(PARTITION_IO_CONCURRENCY, |partition| async move {
                let result = blocking({
                    let partition = partition.clone();
                    move || partition.close()
                })
                .await;
                if let Err(error) = result {
                    tracing::error!(topic = partition.topic, partition = partition.index, %error, "closing partition failed");
                }
            })
            .await;
        tracing::info!(partitions = count, "partitions closed");
    }

    /// One maintenance pass over every partition (retention, compaction, due flushes,
    /// checkpoints), on the blocking pool, one partition after the other,
    /// [`MAINTENANCE_PARTITIONS_PER_TASK`] to a blocking task.
    /// Each pass also asks every log whether it refuses writes (probing for space when it
    /// found none), for `/ready`. Failures and refusals are logged when they start, change
    /// or end — once per episode, not once per tick.
    pub async fn maintain_all(&self, work: Maintenance) {
        let mut found = BTreeMap::new();
        let all = self.all();
        for chunk in all.chunks(MAINTENANCE_PARTITIONS_PER_TASK) {
            let outcomes = blocking({
                let chunk = chunk.to_vec();
                move || {
                    Ok(chunk
                        .iter()
                        .map(|partition| {
                            (partition.maintain(work).err().map(|e| e.to_string()), partition.write_refusal())
                        })
                        .collect::<Vec<_>>())
                }
            })
            .await
            .unwrap_or_else(|error| vec![(Some(error.to_string()), None); chunk.len()]);
            for (partition, outcome) in chunk.iter().zip(outcomes) {
                self.note_maintenance(&mut found, partition, work, outcome);
            }
        }
        let mut storage = self.storage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for ((topic, partition), trouble) in &found {
            let before = storage.get(&(topic.clone(), *partition)).cloned().unwrap_or_default();
            if let Some(error) =
                trouble.maintenance_error.as_ref().filter(|e| before.maintenance_error.as_ref() != Some(*e))
            {
                tracing::warn!(topic, partition, %error, "partition maintenance failed");
            }
            if let Some(refusal) =
                trouble.write_refusal.as_ref().filter(|r| before.write_refusal.is_none() && !r.is_empty())
            {
                tracing::warn!(topic, partition, %refusal, "partition cannot write; /ready reports it");
            }
        }
        for ((topic, partition), trouble) in storage.iter() {
            let now = found.get(&(topic.clone(), *partition)).cloned().unwrap_or_default();
            if trouble.write_refusal.is_some() && now.write_refusal.is_none() {
                tracing::info!(topic, partition, "partition can write again");
            } else if trouble.maintenance_error.is_some() && now.maintenance_error.is_none() {
                tracing::info!(topic, partition, "partition maintenance succeeds again");
            }
        }
        *storage = found;
    }

    /// Records what one partition's maintenance found (its error, its write refusal) in
    /// `found`, the troubles of this pass.
    fn note_maintenance(
        &self,
        found: &mut BTreeMap<PartitionKey, StorageTrouble>,
        partition: &Partition,
        work: Maintenance,
        (maintenance_error, write_refusal): (Option<String>, Option<String>),
    ) {
        // A pass without checkpoint or retention does not show that their failure is over.
        // (Every partition goes through here every second: no key is built, and the map is
        // not searched, while nothing is in trouble.)
        let maintenance_error = maintenance_error.or_else(|| {
            if work.checkpoint || work.retention {
                return None;
            }
            let storage = self.storage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if storage.is_empty() {
                return None;
            }
            storage.get(&(partition.topic.clone(), partition.index)).and_then(|before| before.maintenance_error.clone())
        });
        let trouble = StorageTrouble { write_refusal, maintenance_error };
        if trouble != StorageTrouble::default() {
            found.insert((partition.topic.clone(), partition.index), trouble);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a shrink or expansion is counted once per applied change, only for a partition led
    // here under one leader epoch (a new leader or epoch is an election, not an ISR change).
    #[test]
    fn isr_changes_are_counted_for_partitions_led_here() {
        let with_isr = |leader: BrokerId, epoch: i32, isr: &[BrokerId]| Leadership {
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            ..leadership(leader, epoch)
        };
        assert_eq!(isr_change(1, &with_isr(1, 4, &[1, 2, 3]), &with_isr(1, 4, &[1, 3])), (true, false));
        assert_eq!(isr_change(1, &with_isr(1, 4, &[1, 3]), &with_isr(1, 4, &[1, 2, 3])), (false, true));
        assert_eq!(isr_change(1, &with_isr(1, 4, &[1, 2]), &with_isr(1, 4, &[1, 3])), (true, true));
        assert_eq!(isr_change(1, &with_isr(1, 4, &[1, 2, 3]), &with_isr(1, 4, &[1, 2, 3])), (false, false));
        assert_eq!(
            isr_change(2, &with_isr(1, 4, &[1, 2, 3]), &with_isr(1, 4, &[1, 3])),
            (false, false),
            "led elsewhere"
        );
        assert_eq!(isr_change(1, &with_isr(1, 4, &[1, 2, 3]), &with_isr(1, 5, &[1])), (false, false), "new epoch");
        let counters = IsrChangeCounters::default();
        counters.count(1, &with_isr(1, 4, &[1, 2, 3]), &with_isr(1, 4, &[1, 3]));
        counters.count(1, &with_isr(1, 4, &[1, 3]), &with_isr(1, 4, &[1, 2, 3]));
        counters.count(1, &with_isr(1, 4, &[1, 2, 3]), &with_isr(1, 4, &[1, 2]));
        assert_eq!((counters.shrinks.get(), counters.expands.get()), (2, 1));
        assert_eq!(counters.leaderships_gained.get(), 0);
        counters.count(1, &with_isr(2, 4, &[2, 1]), &with_isr(1, 5, &[1]));
        counters.count(1, &with_isr(1, 5, &[1]), &with_isr(1, 5, &[1]));
        assert_eq!(counters.leaderships_gained.get(), 1, "an election won, counted once");
    }

    fn leadership(leader: BrokerId, epoch: i32) -> Leadership {
        Leadership {
            leader: Some(leader),
            leader_epoch: epoch,
            replicas: vec![1],
            isr: vec![1],
            partition_epoch: epoch,
            min_insync_replicas: 1,
            replica_lag_time_ms: 30_000,
        }
    }

    fn replica(id: u128, retention_ms: i64, epoch: i32) -> ReplicaState {
        ReplicaState {
            topic_id: Uuid::from_u128(id),
            config: TopicConfig { retention_ms, ..TopicConfig::default() },
            log_settings: TopicLogSettings::default(),
            leadership: leadership(1, epoch),
        }
    }

    fn key(topic: &str, partition: i32) -> PartitionKey {
        (topic.to_string(), partition)
    }

    #[test]
    fn new_partitions_open_and_unchanged_ones_are_left_alone() {
        let (want, have) = (replica(1, 1, 0), replica(1, 1, 0));
        let desired = BTreeMap::from([(key("t", 0), want.clone()), (key("t", 1), want)]);
        let local = BTreeMap::from([(key("t", 0), have)]);
        assert_eq!(plan(&local, &desired), vec![Action::Open(key("t", 1))]);
    }

    #[test]
    fn deleted_and_recreated_topics_delete_first() {
        let (want, have, old) = (replica(2, 1, 0), replica(2, 1, 0), replica(1, 1, 0));
        let desired = BTreeMap::from([(key("t", 0), want)]);
        let local = BTreeMap::from([(key("t", 0), old), (key("gone", 0), have)]);
        assert_eq!(
            plan(&local, &desired),
            vec![Action::Delete(key("gone", 0)), Action::Delete(key("t", 0)), Action::Open(key("t", 0))]
        );
    }

    // Goal: reconciliation may run different partitions side by side, never two steps of one
    // partition, and a partition's steps keep the order `plan` gave them.
    #[test]
    fn steps_are_grouped_by_partition_in_order() {
        let actions = vec![
            Action::Reconfigure(key("a", 0)),
            Action::Open(key("b", 1)),
            Action::UpdateLeadership(key("a", 0)),
            Action::Open(key("a", 1)),
        ];
        assert_eq!(
            by_partition(actions),
            vec![
                vec![Action::Reconfigure(key("a", 0)), Action::UpdateLeadership(key("a", 0))],
                vec![Action::Open(key("b", 1))],
                vec![Action::Open(key("a", 1))],
            ]
        );
    }

    #[test]
    fn leadership_and_config_changes_are_applied_in_place() {
        let (want, have) = (replica(1, 2, 3), replica(1, 1, 2));
        let desired = BTreeMap::from([(key("t", 0), want)]);
        let local = BTreeMap::from([(key("t", 0), have)]);
        assert_eq!(
            plan(&local, &desired),
            vec![Action::Reconfigure(key("t", 0)), Action::UpdateLeadership(key("t", 0))]
        );
    }

    // Goal: a change of a setting held only as an override (compression.type, the compaction
    // settings) reconfigures the log like a change of the typed config does.
    #[test]
    fn a_change_of_an_override_only_setting_reconfigures() {
        let have = replica(1, 1, 0);
        let mut want = have.clone();
        want.log_settings.min_cleanable_dirty_ratio = 0.1;
        let local = BTreeMap::from([(key("t", 0), have)]);
        let desired = BTreeMap::from([(key("t", 0), want)]);
        assert_eq!(plan(&local, &desired), vec![Action::Reconfigure(key("t", 0))]);
    }

    #[test]
    fn only_replicas_assigned_to_the_broker_are_desired() {
        let mut view = MetadataView::default();
        let command = sluice_meta::Command::RegisterBroker {
            broker_id: 1,
            incarnation_id: Uuid::from_u128(9),
            kafka_addr: "h:1".into(),
            internal_addr: "h:2".into(),
            rack: None,
        };
        view.apply(&command).unwrap();
        view.apply(&sluice_meta::Command::CreateTopic {
            name: "t".into(),
            topic_id: Uuid::from_u128(5),
            partition_count: 3,
            replication_factor: 1,
            configs: BTreeMap::new(),
        })
        .unwrap();
        assert_eq!(desired_replicas(&view, 1, BrokerTopicDefaults::default()).len(), 3);
        assert!(desired_replicas(&view, 2, BrokerTopicDefaults::default()).is_empty());
    }

    #[test]
    fn topic_overrides_win_over_the_broker_defaults() {
        let mut view = MetadataView::default();
        view.apply(&sluice_meta::Command::RegisterBroker {
            broker_id: 1,
            incarnation_id: Uuid::from_u128(1),
            kafka_addr: "h:1".into(),
            internal_addr: "h:2".into(),
            rack: None,
        })
        .unwrap();
        for (id, name, configs) in [
            (6, "inherits", BTreeMap::new()),
            (
                7,
                "own",
                BTreeMap::from([
                    ("min.insync.replicas".to_string(), "3".to_string()),
                    ("replica.lag.time.max.ms".to_string(), "5000".to_string()),
                ]),
            ),
        ] {
            view.apply(&sluice_meta::Command::CreateTopic {
                name: name.into(),
                topic_id: Uuid::from_u128(id),
                partition_count: 1,
                replication_factor: 1,
                configs,
            })
            .unwrap();
        }
        let defaults = BrokerTopicDefaults { min_insync_replicas: 2, replica_lag_time_ms: 9000 };
        let desired = desired_replicas(&view, 1, defaults);
        let of = |topic: &str| {
            let leadership = &desired[&(topic.to_string(), 0)].leadership;
            (leadership.min_insync_replicas, leadership.replica_lag_time_ms)
        };
        assert_eq!(of("inherits"), (2, 9000));
        assert_eq!(of("own"), (3, 5000));
    }
}
