//! Every bound of the metadata crate in one place, each with its unit last.
//!
//! A limit exists so that a bad peer, a corrupt file or a runaway client cannot make a node
//! allocate without bound. Relations between limits are checked at compile time at the bottom.

/// Largest encoded [`Command`](crate::Command) a node accepts for proposal.
///
/// Commands carry names, counts and configs, never records, so 64 KiB is generous; it bounds the
/// size of one Raft log entry and therefore of every AppendEntries batch.
pub const COMMAND_BYTES_MAX: usize = 64 * 1024;

/// Largest payload of one framed record in the Raft log file (an entry) or the vote/state file.
///
/// An entry is a command plus the Raft header (log id, membership). Membership entries grow with
/// the node count; 1 MiB leaves room for thousands of nodes while catching a garbage length read
/// from a torn file before allocating it.
pub const LOG_ENTRY_BYTES_MAX: usize = 1024 * 1024;

/// A log segment file is rolled (a new file started) once it holds this many bytes.
///
/// Small enough that purging after a snapshot frees disk promptly, large enough that a busy
/// metadata log rolls rarely.
pub const LOG_SEGMENT_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// The committed log id (a restart hint, see `log_store`) is written to disk at most this often,
/// and when the store closes. A crash loses at most this much of the hint, never data.
pub const COMMITTED_WRITE_INTERVAL_MS: u64 = 200;

/// Largest snapshot file read back from disk or accepted from a leader.
///
/// The snapshot is the whole metadata view (brokers, topics, partitions) serialized with
/// postcard; 256 MiB is about a million partitions. Receiving more than this is treated as
/// corruption rather than allocated.
pub const SNAPSHOT_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Bytes of snapshot sent in one InstallSnapshot RPC chunk.
pub const SNAPSHOT_CHUNK_BYTES_MAX: u64 = 1024 * 1024;

/// Entries sent in one AppendEntries RPC. With [`COMMAND_BYTES_MAX`] this bounds the request.
pub const APPEND_ENTRIES_PER_RPC_MAX: u64 = 64;

/// Largest Raft RPC frame (request or response) accepted on the wire.
///
/// A peer announcing a longer frame is either broken or hostile: the connection is closed
/// before the frame is buffered.
pub const RPC_FRAME_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Time allowed to open a TCP connection to a peer before the RPC fails as unreachable.
pub const RPC_CONNECT_TIMEOUT_MS: u64 = 1_000;

/// Time allowed for the TLS handshake of a Raft connection when internal TLS is on
/// (`MetaConfig::internal_tls`), on either end: an accepted connection that has not completed
/// it by then is closed before any frame is read, so a peer that connects and stalls holds a
/// connection slot ([`RPC_INBOUND_CONNECTIONS_MAX`]) for at most this long; a dial fails as
/// unreachable. A handshake is two round trips and a few signatures, milliseconds on a LAN.
pub const INTERNAL_TLS_HANDSHAKE_TIMEOUT_MS: u64 = 2_000;

/// Upper bound on the time one RPC may wait for its response, whatever openraft asks for.
///
/// Snapshot chunks are the slowest RPC; 10 s covers a 1 MiB chunk on a congested link.
pub const RPC_TIMEOUT_MS_MAX: u64 = 10_000;

/// Pause before dialing a peer again after a failed connection attempt, so that a dead peer
/// costs one connect attempt per backoff interval instead of one per heartbeat.
pub const RPC_RECONNECT_BACKOFF_MS: u64 = 100;

/// Inbound Raft connections served at once by one node. Further connections are closed on
/// accept; a healthy cluster needs about two per peer (Raft traffic and forwarded proposals).
pub const RPC_INBOUND_CONNECTIONS_MAX: usize = 256;

/// Time a proposal may take end to end (forwarding to the leader, commit, apply) before the
/// caller gets a timeout. The command may still be applied later.
pub const PROPOSE_TIMEOUT_MS: u64 = 5_000;

/// Time a forwarded membership change may take on the leader (adding a learner waits for it
/// to catch up, which can mean sending a snapshot).
pub const MEMBERSHIP_CHANGE_TIMEOUT_MS: u64 = 30_000;

/// Time a node started with `join` (not an initial voter, empty storage) keeps asking the
/// initial voters and the `--join` members to add it as a learner before its start fails.
pub const JOIN_TIMEOUT_MS: u64 = 60_000;

/// Pause between two join attempts that found no leader or no answer.
pub const JOIN_RETRY_PAUSE_MS: u64 = 250;

/// Largest cluster id file (`<meta dir>/cluster_id`) read at start. The broker's ids are 23
/// bytes; a longer file is damage, refused before it is read into memory.
pub const CLUSTER_ID_BYTES_MAX: usize = 256;

/// Time a voter starting with empty storage keeps asking the other voters whether the group
/// already exists and knows it (`bootstrap`) before it creates the group as on a first start.
/// Paid in full only when a voter is unreachable; a first start whose voters all answer costs
/// one round trip. A few seconds covers voters started by hand one after another.
pub const BOOTSTRAP_PROBE_TIMEOUT_MS: u64 = 3_000;

/// Pause between two group-status questions to voters that did not answer; as long as the
/// reconnect backoff, so each question dials again.
pub const BOOTSTRAP_PROBE_RETRY_PAUSE_MS: u64 = RPC_RECONNECT_BACKOFF_MS;

/// Time a membership change waits for the previous change to settle before it is refused.
pub const MEMBERSHIP_SETTLE_WAIT_MS: u64 = 5_000;

/// Applied-change events buffered per subscriber. A subscriber that falls further behind gets
/// `Lagged` and must resynchronise from the current view.
pub const CHANGE_EVENTS_BUFFERED_MAX: usize = 4_096;

/// Partitions one topic may have (Kafka has no hard limit; this one keeps one command's
/// placement work and the snapshot size bounded).
pub const TOPIC_PARTITIONS_MAX: u32 = 10_000;

/// Most replicas a reassignment may name, in brokers. Kafka's replication factor is an
/// `int16`; a bound here keeps one command's validation and the snapshot small.
pub const REASSIGNMENT_REPLICAS_MAX: usize = 1_024;

/// Longest topic name, as in Kafka (249 characters, so that `<topic>-<partition>` fits a file name).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Producer ids handed out per `AllocateProducerIds` command, as in Kafka (1000 per block).
pub const PRODUCER_IDS_PER_BLOCK: u32 = 1_000;

/// Longest advertised or internal address string of a broker (`host:port`).
pub const BROKER_ADDRESS_BYTES_MAX: usize = 1_024;

/// Longest rack name of a broker (`--rack`): rack names are zone names such as `us-east-1a`;
/// every Metadata response carries one per broker.
pub const BROKER_RACK_BYTES_MAX: usize = 64;

/// Configuration entries in one create/alter request.
pub const TOPIC_CONFIG_ENTRIES_MAX: usize = 64;

// A full AppendEntries batch of maximum-size entries must fit one RPC frame, with headroom.
const _: () = assert!(APPEND_ENTRIES_PER_RPC_MAX as usize * PROPOSAL_BYTES_MAX < RPC_FRAME_BYTES_MAX);
// A batched entry (commands plus their length prefixes) fits one log entry frame.
const _: () = assert!(PROPOSAL_BYTES_MAX + 8 * PROPOSAL_COMMANDS_MAX < LOG_ENTRY_BYTES_MAX);
// A snapshot chunk must fit one RPC frame.
const _: () = assert!((SNAPSHOT_CHUNK_BYTES_MAX as usize) < RPC_FRAME_BYTES_MAX);
// Every proposable command fits one log entry frame.
const _: () = assert!(COMMAND_BYTES_MAX < LOG_ENTRY_BYTES_MAX);
// A single entry never forces a segment past twice its roll size.
const _: () = assert!((LOG_ENTRY_BYTES_MAX as u64) < LOG_SEGMENT_BYTES_MAX);

/// Commands gathered into one Raft entry by the proposal batcher.
pub const PROPOSAL_COMMANDS_MAX: usize = 1_024;

/// Encoded bytes of the commands gathered into one Raft entry. Equal to the largest single
/// command, so a batched entry is never larger than an unbatched one could be.
pub const PROPOSAL_BYTES_MAX: usize = COMMAND_BYTES_MAX;

/// Batched entries submitted to Raft and not yet committed, per node. More lets the leader's
/// fsync of one entry overlap the followers' fsync of the previous one.
pub const PROPOSALS_IN_FLIGHT_MAX: usize = 4;

/// Commands waiting for the batcher; proposers wait (backpressure) when it is full.
pub const PROPOSE_QUEUE_COMMANDS_MAX: usize = 4_096;

/// Forwarded batches in flight from one follower to the leader (each on its own connection).
pub const FORWARD_BATCHES_IN_FLIGHT_MAX: usize = 4;

/// A follower's forwarding queue for a leader retires after this long without commands (the
/// leader may have changed for good).
pub const FORWARD_QUEUE_IDLE_MS: u64 = 10_000;

/// Pause before retrying a proposal when no leader is known or the leader just changed.
pub const PROPOSE_RETRY_PAUSE_MS: u64 = 20;
// A forwarded membership change outlives the leader's wait for the previous change to settle.
const _: () = assert!(MEMBERSHIP_SETTLE_WAIT_MS < MEMBERSHIP_CHANGE_TIMEOUT_MS);

/// First pause before the Raft log writer retries a write that found the disk full, in
/// milliseconds. While it waits, every later write waits behind it (openraft needs log I/O in
/// order), so a short first pause resumes the node quickly once space is freed; each try costs
/// a write attempt and, for an append, a re-read of the log's files.
pub const LOG_WRITE_NO_SPACE_RETRY_MIN_MS: u64 = 100;

/// Longest pause between such retries, in milliseconds: how long the node may stay stalled
/// after space returns.
pub const LOG_WRITE_NO_SPACE_RETRY_MAX_MS: u64 = 2_000;

const _: () =
    assert!(LOG_WRITE_NO_SPACE_RETRY_MIN_MS > 0 && LOG_WRITE_NO_SPACE_RETRY_MIN_MS <= LOG_WRITE_NO_SPACE_RETRY_MAX_MS);

/// Fewest bytes the stalled Raft log writer checks are free (by writing zeros at the end of
/// the active segment and cutting them off) before it retries: a page, so that the state file
/// (about 100 bytes) and small entries find a whole block and not just the slack a cut-back
/// write left behind.
pub const LOG_WRITE_NO_SPACE_PROBE_BYTES_MIN: usize = 4096;

/// Longest SCRAM user name, in bytes (Kafka sets none; a name is a principal in ACLs and log
/// lines, so it is kept short).
pub const SCRAM_USER_BYTES_MAX: usize = 255;

/// Most users with SCRAM credentials. Each costs about 300 bytes of the replicated view.
pub const SCRAM_USERS_MAX: usize = 100_000;

/// Fewest PBKDF2 iterations a SCRAM credential may have (Kafka's minimum, RFC 7677's advice).
pub const SCRAM_ITERATIONS_MIN: u32 = 4_096;

/// Most PBKDF2 iterations a SCRAM credential may have (Kafka's maximum): every authentication
/// costs the client this many HMACs, and a PLAIN login costs the broker as many.
pub const SCRAM_ITERATIONS_MAX: u32 = 16_384;

/// Most ACL bindings in the cluster. Each check scans the bindings of one resource type, and
/// the whole set lives in every broker's memory and in every snapshot.
pub const ACL_BINDINGS_MAX: usize = 100_000;

/// Longest ACL resource name, principal or host, and quota entity name, in bytes.
pub const ACL_FIELD_BYTES_MAX: usize = 1_024;

/// Most client-quota entities.
pub const QUOTA_ENTITIES_MAX: usize = 100_000;

// Every security record fits one command.
const _: () = assert!(ACL_FIELD_BYTES_MAX * 3 + 64 < COMMAND_BYTES_MAX);

/// Most named listeners one broker registers (`--listeners`).
pub const BROKER_LISTENERS_MAX: usize = 16;
