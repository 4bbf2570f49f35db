//! Node configuration: identity, addresses, the voter list and Raft timing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::MetaError;
use crate::limits::APPEND_ENTRIES_PER_RPC_MAX;
use crate::limits::PROPOSAL_BYTES_MAX;
use crate::limits::SNAPSHOT_CHUNK_BYTES_MAX;
use crate::tls::InternalTls;
use crate::types::NodeId;

/// Default Raft heartbeat interval. Leaders send AppendEntries at least this often.
pub const HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 100;
/// Default lower bound of the randomized election timeout.
pub const ELECTION_TIMEOUT_MIN_MS_DEFAULT: u64 = 500;
/// Default upper bound of the randomized election timeout.
pub const ELECTION_TIMEOUT_MAX_MS_DEFAULT: u64 = 1_000;
/// Default number of applied entries after which a new snapshot is built. Metadata snapshots
/// are small (kilobytes to a few MiB), so snapshotting often is cheap, and it bounds the
/// in-memory copy of the log (see [`LOG_CACHE_BYTES_WORST_DEFAULT`]).
pub const SNAPSHOT_LOGS_SINCE_LAST_DEFAULT: u64 = 1_000;
/// Default number of entries kept in the log after a snapshot, so that a briefly lagging
/// follower catches up from the log instead of receiving a whole snapshot.
pub const LOGS_KEPT_AFTER_SNAPSHOT_DEFAULT: u64 = 500;
/// Worst-case bytes of the in-memory log copy with the defaults: every unpurged entry a full
/// batch of [`PROPOSAL_BYTES_MAX`]. Typical entries are a few hundred bytes.
pub const LOG_CACHE_BYTES_WORST_DEFAULT: u64 =
    (SNAPSHOT_LOGS_SINCE_LAST_DEFAULT + LOGS_KEPT_AFTER_SNAPSHOT_DEFAULT) * PROPOSAL_BYTES_MAX as u64;
const _: () = assert!(LOG_CACHE_BYTES_WORST_DEFAULT <= 128 * 1024 * 1024);

/// Configuration of one metadata Raft node.
#[derive(Debug, Clone)]
pub struct MetaConfig {
    /// This node's id (the broker id).
    pub node_id: NodeId,
    /// Directory for the Raft log (`log/`) and snapshot (`snapshot/`); the broker passes
    /// `<data dir>/meta`.
    pub data_dir: PathBuf,
    /// Address the Raft listener binds.
    pub listen_addr: SocketAddr,
    /// Address peers dial to reach this node (`host:port`). For a voter, its entry in `voters`.
    pub advertise_addr: String,
    /// The initial voters: node id → Raft address. A node listed here bootstraps the group
    /// with exactly this membership; a node not listed starts as a learner-to-be and waits to
    /// be added with [`MetaNode::add_learner`](crate::MetaNode::add_learner).
    pub voters: BTreeMap<NodeId, String>,
    /// Leader heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Election timeout lower bound; must exceed the heartbeat interval.
    pub election_timeout_min_ms: u64,
    /// Election timeout upper bound; must exceed the lower bound.
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many entries were applied since the last one.
    pub snapshot_logs_since_last: u64,
    /// Entries kept in the log after they are covered by a snapshot.
    pub logs_kept_after_snapshot: u64,
    /// Kafka's `broker.session.timeout.ms`: while this node leads, a broker not heard from for
    /// this long is fenced (see [`crate::liveness`]). `None` runs no controller: brokers are
    /// never fenced for silence (metadata-only groups, tests of the group itself).
    pub broker_session_timeout_ms: Option<u64>,
    /// Kafka's `auto.leader.rebalance.enable`: while this node leads (and runs the
    /// controller), give leaderships back to preferred replicas (see [`crate::liveness`]).
    pub auto_leader_rebalance: bool,
    /// Kafka's broker-level `unclean.leader.election.enable`: the default for topics without
    /// an override of their own (see [`crate::election::unclean_elections`]).
    pub unclean_leader_election: bool,
    /// For a node not in `voters`: on its first start (empty storage), ask the voters and
    /// `join_addrs` to add it as a learner (see [`crate::MetaNode::start`]). Off, it waits to
    /// be added by someone else (an operator's
    /// [`MetaNode::add_learner`](crate::MetaNode::add_learner)).
    pub join: bool,
    /// Raft addresses of running members, voters or learners (`--join`), through which a node
    /// with `join` asks to be added. Their ids need not be known. With them `voters` may be
    /// empty: a joined node learns the membership from the log.
    pub join_addrs: Vec<String>,
    /// The cluster id this node reports (the broker derives it from `--voters`). `None` for a
    /// node joining through `join_addrs` alone: it adopts the id of the member it joins
    /// through and keeps it in `<data_dir>/cluster_id` for its later starts.
    pub cluster_id: Option<String>,
    /// Mutual TLS on the Raft port (see [`crate::tls`]): every accepted connection must
    /// complete a TLS handshake with a client certificate chaining to the CA, and every dialed
    /// one presents this node's certificate and verifies the peer's. `None`: plain TCP, and
    /// anyone who reaches the port can talk Raft to this node.
    pub internal_tls: Option<InternalTls>,
}

impl MetaConfig {
    /// A configuration with default timing. The advertised address is the voter entry of
    /// `node_id` if there is one, else `listen_addr`.
    pub fn new(
        node_id: NodeId,
        data_dir: impl Into<PathBuf>,
        listen_addr: SocketAddr,
        voters: BTreeMap<NodeId, String>,
    ) -> MetaConfig {
        let advertise_addr = voters.get(&node_id).cloned().unwrap_or_else(|| listen_addr.to_string());
        MetaConfig {
            node_id,
            data_dir: data_dir.into(),
            listen_addr,
            advertise_addr,
            voters,
            heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS_DEFAULT,
            election_timeout_min_ms: ELECTION_TIMEOUT_MIN_MS_DEFAULT,
            election_timeout_max_ms: ELECTION_TIMEOUT_MAX_MS_DEFAULT,
            snapshot_logs_since_last: SNAPSHOT_LOGS_SINCE_LAST_DEFAULT,
            logs_kept_after_snapshot: LOGS_KEPT_AFTER_SNAPSHOT_DEFAULT,
            broker_session_timeout_ms: None,
            auto_leader_rebalance: false,
            unclean_leader_election: false,
            join: false,
            join_addrs: Vec::new(),
            cluster_id: None,
            internal_tls: None,
        }
    }

    /// Whether this node is one of the configured initial voters.
    pub fn is_initial_voter(&self) -> bool {
        self.voters.contains_key(&self.node_id)
    }

    /// Checks the configuration and builds openraft's.
    pub(crate) fn raft_config(&self) -> Result<openraft::Config, MetaError> {
        let joins_through_members = self.join && !self.join_addrs.is_empty();
        if self.voters.is_empty() && !joins_through_members {
            return Err(MetaError::Config(
                "the voter list is empty and no member to join through is given".to_string(),
            ));
        }
        let config = openraft::Config {
            cluster_name: "sluice-meta".to_string(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            max_payload_entries: APPEND_ENTRIES_PER_RPC_MAX,
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES_MAX,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            ..Default::default()
        };
        config.validate().map_err(|e| MetaError::Config(e.to_string()))
    }
}

/// Parses a voter list `1@host:port,2@host:port` (the `--voters` flag).
///
/// Ids must be unique; addresses must be non-empty `host:port` with a numeric port.
pub fn parse_voters(text: &str) -> Result<BTreeMap<NodeId, String>, MetaError> {
    let mut voters = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (id, addr) = item
            .split_once('@')
            .ok_or_else(|| MetaError::Config(format!("voter {item:?} is not <id>@<host>:<port>")))?;
        let id: NodeId =
            id.trim().parse().map_err(|_| MetaError::Config(format!("voter id {id:?} is not a number")))?;
        let addr = check_address(addr.trim(), "voter")?;
        if voters.insert(id, addr.to_string()).is_some() {
            return Err(MetaError::Config(format!("voter id {id} listed twice")));
        }
    }
    if voters.is_empty() {
        return Err(MetaError::Config("the voter list is empty".to_string()));
    }
    Ok(voters)
}

/// Parses a list of member addresses `host:port,host:port` (the `--join` flag); it must name
/// at least one.
pub fn parse_join(text: &str) -> Result<Vec<String>, MetaError> {
    let addrs: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|addr| check_address(addr, "member").map(str::to_string))
        .collect::<Result<_, _>>()?;
    if addrs.is_empty() {
        return Err(MetaError::Config("the list of members to join through is empty".to_string()));
    }
    Ok(addrs)
}

/// `addr` if it is `host:port` with a non-empty host and a numeric port. A host holding `@` is
/// refused: it is a voter entry (`id@host:port`) given where an address belongs.
fn check_address<'a>(addr: &'a str, what: &str) -> Result<&'a str, MetaError> {
    let port_ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && !host.contains('@') && port.parse::<u16>().is_ok());
    if !port_ok {
        return Err(MetaError::Config(format!("{what} address {addr:?} is not <host>:<port>")));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_parse_and_bad_lists_are_refused() {
        let voters = parse_voters("1@127.0.0.1:9093, 2@node-b:9093,3@[::1]:9093").unwrap();
        assert_eq!(voters.len(), 3);
        assert_eq!(voters[&2], "node-b:9093");
        assert_eq!(voters[&3], "[::1]:9093");
        for bad in ["", "1", "x@h:1", "1@h", "1@:1", "1@h:port", "1@h:1,1@h:2", "1@2@h:1"] {
            assert!(parse_voters(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn join_addresses_parse_and_bad_lists_are_refused() {
        assert_eq!(parse_join(" node-b:9093,127.0.0.1:1 ").unwrap(), ["node-b:9093", "127.0.0.1:1"]);
        for bad in ["", " , ", "h", ":1", "h:port", "1@h:1", "h:1,x"] {
            assert!(parse_join(bad).is_err(), "{bad:?} accepted");
        }
    }

    // Goal: a node may start without voters only when it joins through some member.
    #[test]
    fn an_empty_voter_list_needs_members_to_join_through() {
        let mut config = MetaConfig::new(4, "/tmp/x", "127.0.0.1:1".parse().unwrap(), BTreeMap::new());
        assert!(config.raft_config().is_err());
        config.join_addrs = vec!["127.0.0.1:2".to_string()];
        assert!(config.raft_config().is_err(), "join is off");
        config.join = true;
        assert!(config.raft_config().is_ok());
    }

    #[test]
    fn timing_is_validated() {
        let voters = parse_voters("1@127.0.0.1:1").unwrap();
        let mut config = MetaConfig::new(1, "/tmp/x", "127.0.0.1:1".parse().unwrap(), voters);
        assert!(config.raft_config().is_ok());
        assert_eq!(config.advertise_addr, "127.0.0.1:1");
        config.election_timeout_min_ms = config.heartbeat_interval_ms;
        assert!(config.raft_config().is_err());
    }
}
