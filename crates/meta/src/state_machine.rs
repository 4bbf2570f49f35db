//! The state machine store: applies committed entries to the [`MetadataView`], publishes each
//! change to subscribers, and builds, stores and installs snapshots.
//!
//! The applied view lives in memory; durability comes from the Raft log plus snapshots. On
//! start the view is loaded from the snapshot file and openraft re-applies the committed log
//! entries after it.
//!
//! # Snapshot file `<data_dir>/snapshot/snapshot`
//!
//! A [file header](crate::frame) with magic `SLUICEsn`, then one record whose payload is
//! postcard of `SnapshotFile { meta, data }`: openraft's snapshot meta (last log id, membership,
//! snapshot id) and `data`, the postcard of the applied state (last applied log id, membership,
//! view) — the same bytes that are sent to a follower in InstallSnapshot chunks. The file is
//! replaced atomically (temp file, fsync, rename, fsync directory): after a crash it holds the
//! old or the new snapshot, never a mix. A damaged snapshot file fails the open
//! ([`StoreError::Corrupt`]) because the log before it may already be purged.
//!
//! A snapshot file of format version 3 (before `MetadataView::reassignments`) or 4–5 (before
//! the brokers' `listeners` and the view's `security`) is decoded with that layout
//! ([`AppliedStateV3`], [`AppliedStateV5`]) and converted at open, with no reassignment in
//! progress (version 3), no named listeners and no security records;
//! A version-6 file (before the view's `broker_configs`) is decoded with [`AppliedStateV6`] and
//! converted with no dynamic broker config set.
//! Its `data` is re-encoded in the current layout, so a follower sent it by InstallSnapshot
//! reads the current layout. The file itself is rewritten by the next snapshot.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::Mutex;

use openraft::storage::RaftStateMachine;
use openraft::AnyError;
use openraft::EntryPayload;
use openraft::RaftSnapshotBuilder;
use openraft::Snapshot;
use openraft::StorageIOError;
use serde::Deserialize;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::watch;

use crate::durable;
use crate::error::StoreError;
use crate::frame;
use crate::frame::RecordRead;
use crate::limits::CHANGE_EVENTS_BUFFERED_MAX;
use crate::limits::SNAPSHOT_BYTES_MAX;
use crate::subscription::AppliedView;
use crate::subscription::MetadataEvent;
use crate::types::Entry;
use crate::types::LogId;
use crate::types::ProposalReply;
use crate::types::SnapshotMeta;
use crate::types::StorageError;
use crate::types::StoredMembership;
use crate::types::TypeConfig;
use crate::view::BrokerId;
use crate::view::BrokerRecord;
use crate::view::MetadataView;

/// Name of the snapshot file inside the snapshot directory.
pub const SNAPSHOT_FILE: &str = "snapshot";

/// The replicated state: the view plus the Raft bookkeeping a snapshot must carry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AppliedState {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    view: Arc<MetadataView>,
}

/// [`AppliedState`] as format version 3 wrote it: the view without `reassignments`.
#[derive(Deserialize)]
struct AppliedStateV3 {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    view: MetadataViewV3,
}

/// [`MetadataView`] before format version 4, field for field.
#[derive(Deserialize)]
struct MetadataViewV3 {
    brokers: BTreeMap<BrokerId, BrokerRecordV5>,
    topics: BTreeMap<String, crate::view::TopicRecord>,
    topic_names: BTreeMap<uuid::Uuid, String>,
    next_producer_id: i64,
    next_broker_epoch: i64,
}

/// [`AppliedState`] as format versions 4 and 5 wrote it: no listeners, no security state.
#[derive(Deserialize)]
struct AppliedStateV5 {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    view: MetadataViewV5,
}

/// [`MetadataView`] of format versions 4 and 5, field for field.
#[derive(Deserialize)]
struct MetadataViewV5 {
    brokers: BTreeMap<BrokerId, BrokerRecordV5>,
    topics: BTreeMap<String, crate::view::TopicRecord>,
    topic_names: BTreeMap<uuid::Uuid, String>,
    next_producer_id: i64,
    next_broker_epoch: i64,
    reassignments: BTreeMap<uuid::Uuid, BTreeMap<u32, crate::view::Reassignment>>,
}

/// [`BrokerRecord`] before format version 6 (no `listeners`), field for field.
#[derive(Deserialize)]
struct BrokerRecordV5 {
    broker_id: BrokerId,
    incarnation_id: uuid::Uuid,
    broker_epoch: i64,
    kafka_addr: String,
    internal_addr: String,
    rack: Option<String>,
    fenced: bool,
}

impl From<BrokerRecordV5> for BrokerRecord {
    fn from(old: BrokerRecordV5) -> BrokerRecord {
        BrokerRecord {
            broker_id: old.broker_id,
            incarnation_id: old.incarnation_id,
            broker_epoch: old.broker_epoch,
            kafka_addr: old.kafka_addr,
            internal_addr: old.internal_addr,
            rack: old.rack,
            fenced: old.fenced,
            listeners: BTreeMap::new(),
        }
    }
}

/// [`AppliedState`] as format version 6 wrote it: no dynamic broker configs.
#[derive(Deserialize)]
struct AppliedStateV6 {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    view: MetadataViewV6,
}

/// [`MetadataView`] of format version 6, field for field.
#[derive(Deserialize)]
struct MetadataViewV6 {
    brokers: BTreeMap<BrokerId, BrokerRecord>,
    topics: BTreeMap<String, crate::view::TopicRecord>,
    topic_names: BTreeMap<uuid::Uuid, String>,
    next_producer_id: i64,
    next_broker_epoch: i64,
    reassignments: BTreeMap<uuid::Uuid, BTreeMap<u32, crate::view::Reassignment>>,
    security: crate::security::SecurityState,
}

impl From<AppliedStateV6> for AppliedState {
    fn from(old: AppliedStateV6) -> AppliedState {
        let v = old.view;
        let view = MetadataView {
            brokers: v.brokers,
            topics: v.topics,
            topic_names: v.topic_names,
            next_producer_id: v.next_producer_id,
            next_broker_epoch: v.next_broker_epoch,
            reassignments: v.reassignments,
            security: v.security,
            broker_configs: Default::default(),
        };
        AppliedState { last_applied: old.last_applied, last_membership: old.last_membership, view: Arc::new(view) }
    }
}

/// Each older layout converts to the next one, adding only the fields that version brought:
/// 3 → 5 (`reassignments`), 5 → 6 (listeners, `security`), 6 → current (`broker_configs`).
impl From<AppliedStateV5> for AppliedStateV6 {
    fn from(old: AppliedStateV5) -> AppliedStateV6 {
        let v = old.view;
        let view = MetadataViewV6 {
            brokers: v.brokers.into_iter().map(|(id, broker)| (id, broker.into())).collect(),
            topics: v.topics,
            topic_names: v.topic_names,
            next_producer_id: v.next_producer_id,
            next_broker_epoch: v.next_broker_epoch,
            reassignments: v.reassignments,
            security: Default::default(),
        };
        AppliedStateV6 { last_applied: old.last_applied, last_membership: old.last_membership, view }
    }
}

impl From<AppliedStateV3> for AppliedStateV5 {
    fn from(old: AppliedStateV3) -> AppliedStateV5 {
        let view = MetadataViewV5 {
            brokers: old.view.brokers,
            topics: old.view.topics,
            topic_names: old.view.topic_names,
            next_producer_id: old.view.next_producer_id,
            next_broker_epoch: old.view.next_broker_epoch,
            reassignments: Default::default(),
        };
        AppliedStateV5 { last_applied: old.last_applied, last_membership: old.last_membership, view }
    }
}

/// Decodes snapshot `data` written at format `version` (checked by the file header).
fn decode_applied_state(data: &[u8], version: u32) -> Result<AppliedState, postcard::Error> {
    match version {
        ..=3 => postcard::from_bytes::<AppliedStateV3>(data)
            .map(|v3| AppliedState::from(AppliedStateV6::from(AppliedStateV5::from(v3)))),
        4 | 5 => postcard::from_bytes::<AppliedStateV5>(data).map(|v5| AppliedState::from(AppliedStateV6::from(v5))),
        6 => postcard::from_bytes::<AppliedStateV6>(data).map(AppliedState::from),
        _ => postcard::from_bytes(data),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    state: Mutex<AppliedState>,
    current_snapshot: Mutex<Option<SnapshotFile>>,
    /// Serializes snapshot file writes (building and installing can race).
    snapshot_write: Mutex<()>,
    snapshots_built: AtomicU64,
    view_sender: watch::Sender<AppliedView>,
    event_sender: broadcast::Sender<MetadataEvent>,
    /// Told how long each batch of committed entries took to apply (set once by the embedder).
    apply_observer: std::sync::OnceLock<ObserverSlot>,
}

/// Called with the time one batch of committed entries took to apply and publish (the view's
/// copy-on-write, every command, the watch update); the broker feeds a histogram with it.
pub type ApplyObserver = Arc<dyn Fn(std::time::Duration) + Send + Sync>;

struct ObserverSlot(ApplyObserver);

impl std::fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApplyObserver")
    }
}

/// openraft's [`RaftStateMachine`] over the metadata view. Clones share the same state.
#[derive(Debug, Clone)]
pub struct StateMachineStore {
    shared: Arc<Shared>,
}

impl StateMachineStore {
    /// Opens the state machine, loading the snapshot in `dir` if there is one.
    pub fn open(dir: &Path) -> Result<StateMachineStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io("create directory", dir, e))?;
        let tmp = durable::tmp_path(dir, SNAPSHOT_FILE);
        durable::remove_if_exists(&tmp).map_err(|e| StoreError::io("remove", &tmp, e))?;
        let mut snapshot = read_snapshot_file(&dir.join(SNAPSHOT_FILE))?;
        let state = match &mut snapshot {
            Some((file, version)) => {
                let state = decode_applied_state(&file.data, *version).map_err(|e| StoreError::Corrupt {
                    path: dir.join(SNAPSHOT_FILE),
                    reason: format!("undecodable snapshot data: {e}"),
                })?;
                if *version != frame::FORMAT_VERSION {
                    // Peers are sent `data` as it is: give them the current layout.
                    file.data = postcard::to_allocvec(&state).map_err(|e| StoreError::Corrupt {
                        path: dir.join(SNAPSHOT_FILE),
                        reason: format!("snapshot of format version {version} not re-encodable: {e}"),
                    })?;
                    tracing::info!(version, "converted a metadata snapshot of an older format version");
                }
                state
            }
            None => AppliedState::default(),
        };
        let snapshot = snapshot.map(|(file, _)| file);
        tracing::info!(dir = %dir.display(), last_applied = ?state.last_applied, "opened metadata state machine");
        let (view_sender, _) = watch::channel(applied_view(&state));
        let (event_sender, _) = broadcast::channel(CHANGE_EVENTS_BUFFERED_MAX);
        Ok(StateMachineStore {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                state: Mutex::new(state),
                current_snapshot: Mutex::new(snapshot),
                snapshot_write: Mutex::new(()),
                snapshots_built: AtomicU64::new(0),
                view_sender,
                event_sender,
                apply_observer: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The latest applied view.
    pub fn view(&self) -> AppliedView {
        self.shared.view_sender.borrow().clone()
    }

    /// Has `observer` told the apply time of every batch from now on. Only the first observer
    /// set is kept; returns whether this one was.
    pub fn observe_apply(&self, observer: ApplyObserver) -> bool {
        self.shared.apply_observer.set(ObserverSlot(observer)).is_ok()
    }

    /// A receiver that always holds the latest applied view.
    pub fn watch_view(&self) -> watch::Receiver<AppliedView> {
        self.shared.view_sender.subscribe()
    }

    /// A receiver of every applied change from now on.
    pub fn subscribe_events(&self) -> broadcast::Receiver<MetadataEvent> {
        self.shared.event_sender.subscribe()
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, AppliedState> {
        self.shared.state.lock().expect("state machine lock poisoned")
    }

    fn publish(&self, state: &AppliedState) {
        self.shared.view_sender.send_replace(applied_view(state));
    }

    /// Writes `file` as the current snapshot unless a newer one is already current.
    // `StorageError` is openraft's error type, which the trait methods must return.
    #[allow(clippy::result_large_err)]
    fn store_snapshot(&self, file: SnapshotFile) -> Result<(), StorageError> {
        let signature = Some(file.meta.signature());
        let _writing = self.shared.snapshot_write.lock().expect("snapshot write lock poisoned");
        let newer_exists = self
            .shared
            .current_snapshot
            .lock()
            .expect("snapshot lock poisoned")
            .as_ref()
            .is_some_and(|current| current.meta.last_log_id > file.meta.last_log_id);
        if newer_exists {
            return Ok(());
        }
        let io_error = |e: &dyn std::fmt::Display| {
            StorageError::from(StorageIOError::write_snapshot(signature.clone(), AnyError::error(e.to_string())))
        };
        let payload = postcard::to_allocvec(&file).map_err(|e| io_error(&e))?;
        if payload.len() > SNAPSHOT_BYTES_MAX {
            return Err(io_error(&format!("snapshot of {} bytes exceeds {SNAPSHOT_BYTES_MAX}", payload.len())));
        }
        let mut bytes = frame::file_header(frame::SNAPSHOT_MAGIC).to_vec();
        frame::encode_record(&payload, &mut bytes);
        durable::write_atomically(&self.shared.dir, SNAPSHOT_FILE, &bytes).map_err(|e| io_error(&e))?;
        *self.shared.current_snapshot.lock().expect("snapshot lock poisoned") = Some(file);
        Ok(())
    }
}

fn applied_view(state: &AppliedState) -> AppliedView {
    AppliedView { applied_index: state.last_applied.map(|id| id.index), view: state.view.clone() }
}

/// The snapshot file and the format version its header names.
fn read_snapshot_file(path: &Path) -> Result<Option<(SnapshotFile, u32)>, StoreError> {
    let bytes_max = SNAPSHOT_BYTES_MAX + frame::FILE_HEADER_BYTES + frame::RECORD_HEADER_BYTES;
    let Some(bytes) = durable::read_bounded(path, bytes_max).map_err(|e| StoreError::io("read", path, e))? else {
        return Ok(None);
    };
    let version = frame::check_file_header(&bytes, frame::SNAPSHOT_MAGIC, path)?;
    let corrupt = |reason: String| StoreError::Corrupt { path: path.to_path_buf(), reason };
    match frame::read_record(&bytes, frame::FILE_HEADER_BYTES, SNAPSHOT_BYTES_MAX) {
        RecordRead::Valid { payload, .. } => {
            postcard::from_bytes(payload).map(|file| Some((file, version))).map_err(|e| corrupt(e.to_string()))
        }
        RecordRead::End => Err(corrupt("no snapshot record".to_string())),
        RecordRead::Invalid { reason } => Err(corrupt(reason)),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (data, last_applied, last_membership) = {
            let state = self.lock_state();
            let data = postcard::to_allocvec(&*state)
                .map_err(|e| StorageIOError::read_state_machine(AnyError::error(e.to_string())))?;
            (data, state.last_applied, state.last_membership.clone())
        };
        let counter = self.shared.snapshots_built.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_applied {
            Some(id) => format!("{}-{}-{}-{counter}", id.leader_id.term, id.leader_id.node_id, id.index),
            None => format!("none-{counter}"),
        };
        let meta = SnapshotMeta { last_log_id: last_applied, last_membership, snapshot_id };
        let file = SnapshotFile { meta: meta.clone(), data: data.clone() };
        self.store_snapshot(file)?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = data.len(), "built metadata snapshot");
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let state = self.lock_state();
        Ok((state.last_applied, state.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ProposalReply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let started = std::time::Instant::now();
        let mut replies = Vec::new();
        let mut events = Vec::new();
        let mut state = self.lock_state();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            let mut results = Vec::new();
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Membership(membership) => {
                    state.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                }
                EntryPayload::Normal(proposal) => {
                    let view = Arc::make_mut(&mut state.view);
                    for (position, command) in proposal.commands.into_iter().enumerate() {
                        let result = view.apply(&command);
                        results.push(result.clone());
                        let log_index = entry.log_id.index;
                        events.push(MetadataEvent::Applied { log_index, position: position as u32, command, result });
                    }
                }
            }
            replies.push(ProposalReply { results });
        }
        self.publish(&state);
        drop(state);
        if let Some(ObserverSlot(observer)) = self.shared.apply_observer.get() {
            observer(started.elapsed());
        }
        for event in events {
            // No subscriber is fine: the view is still published through the watch channel.
            let _ = self.shared.event_sender.send(event);
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let signature = Some(meta.signature());
        let decode_error = |reason: String| {
            StorageError::from(StorageIOError::read_snapshot(signature.clone(), AnyError::error(reason)))
        };
        if data.len() > SNAPSHOT_BYTES_MAX {
            return Err(decode_error(format!("snapshot of {} bytes exceeds {SNAPSHOT_BYTES_MAX}", data.len())));
        }
        let mut installed: AppliedState = postcard::from_bytes(&data).map_err(|e| decode_error(e.to_string()))?;
        installed.last_applied = meta.last_log_id;
        installed.last_membership = meta.last_membership.clone();
        self.store_snapshot(SnapshotFile { meta: meta.clone(), data })?;
        {
            let mut state = self.lock_state();
            *state = installed;
            self.publish(&state);
        }
        let log_index = meta.last_log_id.map_or(0, |id| id.index);
        let _ = self.shared.event_sender.send(MetadataEvent::SnapshotInstalled { log_index });
        tracing::info!(snapshot = %meta.snapshot_id, "installed metadata snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let current = self.shared.current_snapshot.lock().expect("snapshot lock poisoned");
        Ok(current
            .as_ref()
            .map(|file| Snapshot { meta: file.meta.clone(), snapshot: Box::new(Cursor::new(file.data.clone())) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker as versions 3 to 5 wrote it (no `listeners`).
    #[derive(Serialize)]
    struct BrokerOld<'a> {
        broker_id: BrokerId,
        incarnation_id: uuid::Uuid,
        broker_epoch: i64,
        kafka_addr: &'a str,
        internal_addr: &'a str,
        rack: &'a Option<String>,
        fenced: bool,
    }

    /// The version-3 view: no `reassignments`; versions 4 and 5 add them; both without
    /// `security`.
    #[derive(Serialize)]
    struct ViewOld<'a> {
        brokers: BTreeMap<BrokerId, BrokerOld<'a>>,
        topics: &'a BTreeMap<String, crate::view::TopicRecord>,
        topic_names: &'a BTreeMap<uuid::Uuid, String>,
        next_producer_id: i64,
        next_broker_epoch: i64,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "present")]
        reassignments: Option<&'a BTreeMap<uuid::Uuid, BTreeMap<u32, crate::view::Reassignment>>>,
    }

    /// Writes a present optional field as its value (postcard would add an option tag).
    fn present<T: Serialize, S: serde::Serializer>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
        value.as_ref().expect("skipped when absent").serialize(serializer)
    }

    #[derive(Serialize)]
    struct StateOld<'a> {
        last_applied: Option<LogId>,
        last_membership: StoredMembership,
        view: ViewOld<'a>,
    }

    fn old_snapshot_file(view: &MetadataView, version: u32) -> Vec<u8> {
        let brokers = view
            .brokers
            .iter()
            .map(|(id, b)| {
                let old = BrokerOld {
                    broker_id: b.broker_id,
                    incarnation_id: b.incarnation_id,
                    broker_epoch: b.broker_epoch,
                    kafka_addr: &b.kafka_addr,
                    internal_addr: &b.internal_addr,
                    rack: &b.rack,
                    fenced: b.fenced,
                };
                (*id, old)
            })
            .collect();
        let old = StateOld {
            last_applied: None,
            last_membership: StoredMembership::default(),
            view: ViewOld {
                brokers,
                topics: &view.topics,
                topic_names: &view.topic_names,
                next_producer_id: view.next_producer_id,
                next_broker_epoch: view.next_broker_epoch,
                reassignments: (version >= 4).then_some(&view.reassignments),
            },
        };
        snapshot_file_bytes(postcard::to_allocvec(&old).unwrap(), version)
    }

    /// The version-6 view: the current one without `broker_configs`.
    #[derive(Serialize)]
    struct ViewV6<'a> {
        brokers: &'a BTreeMap<BrokerId, BrokerRecord>,
        topics: &'a BTreeMap<String, crate::view::TopicRecord>,
        topic_names: &'a BTreeMap<uuid::Uuid, String>,
        next_producer_id: i64,
        next_broker_epoch: i64,
        reassignments: &'a BTreeMap<uuid::Uuid, BTreeMap<u32, crate::view::Reassignment>>,
        security: &'a crate::security::SecurityState,
    }

    #[derive(Serialize)]
    struct StateV6<'a> {
        last_applied: Option<LogId>,
        last_membership: StoredMembership,
        view: ViewV6<'a>,
    }

    fn v6_snapshot_file(view: &MetadataView) -> Vec<u8> {
        let old = StateV6 {
            last_applied: None,
            last_membership: StoredMembership::default(),
            view: ViewV6 {
                brokers: &view.brokers,
                topics: &view.topics,
                topic_names: &view.topic_names,
                next_producer_id: view.next_producer_id,
                next_broker_epoch: view.next_broker_epoch,
                reassignments: &view.reassignments,
                security: &view.security,
            },
        };
        snapshot_file_bytes(postcard::to_allocvec(&old).unwrap(), 6)
    }

    fn snapshot_file_bytes(data: Vec<u8>, version: u32) -> Vec<u8> {
        let meta =
            SnapshotMeta { last_log_id: None, last_membership: StoredMembership::default(), snapshot_id: "old".into() };
        let payload = postcard::to_allocvec(&SnapshotFile { meta, data }).unwrap();
        let mut bytes = frame::file_header(frame::SNAPSHOT_MAGIC).to_vec();
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..12]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
        frame::encode_record(&payload, &mut bytes);
        bytes
    }

    /// Goal: a snapshot written by format version 3 (no `reassignments`), 5 (no listeners,
    /// no security state) or 6 (no dynamic broker configs) still opens, with the same view, and is handed to peers re-encoded.
    #[test]
    fn older_snapshots_are_read_and_converted() {
        let mut view = MetadataView::default();
        view.apply(&crate::Command::RegisterBroker {
            broker_id: 1,
            incarnation_id: uuid::Uuid::from_u128(1),
            kafka_addr: "h:1".into(),
            internal_addr: "h:1".into(),
            rack: Some("r1".into()),
        })
        .unwrap();
        view.apply(&crate::Command::CreateTopic {
            name: "t".into(),
            topic_id: uuid::Uuid::from_u128(2),
            partition_count: 2,
            replication_factor: 1,
            configs: Default::default(),
        })
        .unwrap();
        for version in [3, 5, 6] {
            let dir = tempfile::tempdir().unwrap();
            let file = match version {
                6 => v6_snapshot_file(&view),
                _ => old_snapshot_file(&view, version),
            };
            std::fs::write(dir.path().join(SNAPSHOT_FILE), file).unwrap();
            let store = StateMachineStore::open(dir.path()).unwrap();
            assert_eq!(*store.view().view, view, "version {version}");
            let current = store.shared.current_snapshot.lock().unwrap().clone().unwrap();
            let reencoded: AppliedState = postcard::from_bytes(&current.data).unwrap();
            assert_eq!(*reencoded.view, view, "peers get the current layout (version {version})");
        }
    }
}
