//! Command-line flags of `sluice-broker` (clap), turned into a [`NodeConfig`].
//!
//! With no flags: node 1, data in `./data`, Kafka on 127.0.0.1:9092, Raft on 127.0.0.1:9093
//! (a one-voter group `1@127.0.0.1:9093`), admin HTTP on 127.0.0.1:9644, Kafka's topic
//! defaults (1 partition, replication factor 1, auto topic creation on).
//!
//! Every setting has an environment variable, `SLUICE_` and the flag's name in capitals
//! (`--node-id` → `SLUICE_NODE_ID`), and a key in the `--config` file (`node-id`); a flag wins
//! over its variable, a variable over the file ([`crate::config_file`]).
//!
//! One subcommand: `sluice-broker probe ready|health` ([`crate::probe`]) asks a running
//! broker's admin listener instead of starting one.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Parser};

use sluice_meta::limits::BROKER_RACK_BYTES_MAX;

use crate::broker::TopicDefaults;
use crate::node::{ListenerFlags, NodeConfig};
use crate::security::authorizer::AuthorizerConfig;
use crate::security::sasl::{parse_mechanisms, Mechanism, SaslConfig};
use crate::security::tls::{ClientAuth, TlsSettings};
use crate::security::Principal;

/// Sluice broker: a Kafka-compatible replicated partitioned log.
#[derive(Debug, Parser)]
#[command(name = "sluice-broker", version)]
pub struct Args {
    /// Broker id, also the metadata Raft node id.
    #[arg(long, env = "SLUICE_NODE_ID", default_value_t = 1)]
    pub node_id: i32,
    /// Data directory (`meta/` for the Raft group, `logs/` for partitions).
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Kafka listener address.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
    /// `host:port` clients are told to connect to (default: the listener address).
    #[arg(long, env = "SLUICE_ADVERTISE")]
    pub advertise: Option<String>,
    /// `host:port` other brokers reach this broker's Kafka listener at, for follower fetches
    /// (default: --advertise). Set it when brokers cannot use the address clients are given.
    #[arg(long, env = "SLUICE_REPLICATION_ADVERTISE")]
    pub replication_advertise: Option<String>,
    /// The listener brokers use between themselves (Kafka's `inter.broker.listener.name`; the
    /// same on every broker): other brokers fetch from this one at its advertised endpoint
    /// (unless --replication-advertise says otherwise) and, for an SSL listener, this broker
    /// dials theirs in TLS with --ssl-certificate as its client certificate, checked against
    /// --ssl-ca. Default: the default listener (--listen), plain TCP.
    #[arg(long, env = "SLUICE_INTER_BROKER_LISTENER_NAME", value_name = "NAME")]
    pub inter_broker_listener_name: Option<String>,
    /// Rack (or availability zone) this broker runs in (Kafka's `broker.rack`): new
    /// partitions put their replicas on distinct racks, and a consumer that sets the same
    /// `client.rack` is sent to fetch from this broker when it holds an in-sync replica
    /// (KIP-392). At most 64 bytes.
    #[arg(long, env = "SLUICE_RACK", value_parser = parse_rack)]
    pub rack: Option<String>,
    /// Raft (internal) listener address.
    #[arg(long, env = "SLUICE_RAFT_LISTEN", default_value = "127.0.0.1:9093")]
    pub raft_listen: SocketAddr,
    /// `host:port` the metadata voters dial to reach this node's Raft listener when it is not
    /// in --voters (it joins as a learner, e.g. with --join); default: --raft-listen.
    #[arg(long, env = "SLUICE_RAFT_ADVERTISE")]
    pub raft_advertise: Option<String>,
    /// Initial metadata voters, `id@host:port,...` (default: this node alone at --raft-listen;
    /// none with --join). A broker whose id is not in the list joins the running cluster
    /// through them (and the --join members) as a non-voting member (a learner) on its first
    /// start.
    #[arg(long, env = "SLUICE_VOTERS")]
    pub voters: Option<String>,
    /// Raft addresses of running members, voters or not, `host:port,...`: on its first start
    /// (empty data directory) this broker joins the running metadata group through any of them
    /// as a non-voting member (a learner), and needs no --voters (it learns the membership and
    /// the cluster id from the group). Later starts ignore it, as they ignore --voters for
    /// the membership.
    #[arg(long, env = "SLUICE_JOIN", value_name = "HOST:PORT,...")]
    pub join: Option<String>,
    /// Admin HTTP listener (`/health`, `/ready`, `/metrics`, the web console at `/`).
    #[arg(long, env = "SLUICE_ADMIN_LISTEN", default_value = "127.0.0.1:9644")]
    pub admin_listen: SocketAddr,
    /// Partitions of auto-created topics and of CreateTopics with -1 (Kafka's `num.partitions`).
    #[arg(long, env = "SLUICE_DEFAULT_PARTITIONS", default_value_t = 1)]
    pub default_partitions: u32,
    /// Replication factor of topics created without one (Kafka's `default.replication.factor`).
    #[arg(long, env = "SLUICE_DEFAULT_REPLICATION_FACTOR", default_value_t = 1)]
    pub default_replication_factor: u16,
    /// Create unknown topics on Metadata requests (Kafka's `auto.create.topics.enable`).
    #[arg(long, env = "SLUICE_AUTO_CREATE_TOPICS", default_value_t = true, action = ArgAction::Set)]
    pub auto_create_topics: bool,
    /// Partitions of `__consumer_offsets` when it is created (Kafka's
    /// `offsets.topic.num.partitions`); fixed afterwards.
    #[arg(long, env = "SLUICE_OFFSETS_TOPIC_PARTITIONS", default_value_t = crate::coordinator::OFFSETS_TOPIC_PARTITIONS_DEFAULT)]
    pub offsets_topic_partitions: u32,
    /// Replication factor of `__consumer_offsets`, lowered to the live brokers at creation
    /// (Kafka's `offsets.topic.replication.factor`).
    #[arg(long, env = "SLUICE_OFFSETS_TOPIC_REPLICATION_FACTOR", default_value_t = crate::coordinator::OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT)]
    pub offsets_topic_replication_factor: u16,
    /// How long the offsets of an Empty group are kept, in minutes (Kafka's
    /// `offsets.retention.minutes`).
    #[arg(long, env = "SLUICE_OFFSETS_RETENTION_MINUTES", default_value_t = crate::coordinator::OFFSETS_RETENTION_MINUTES_DEFAULT)]
    pub offsets_retention_minutes: i64,
    /// How long a new group waits for more members before its first assignment, in
    /// milliseconds (Kafka's `group.initial.rebalance.delay.ms`).
    #[arg(long, env = "SLUICE_GROUP_INITIAL_REBALANCE_DELAY_MS", default_value_t = sluice_group::INITIAL_REBALANCE_DELAY_MS_DEFAULT)]
    pub group_initial_rebalance_delay_ms: i32,
    /// Smallest session timeout a member may ask for, in milliseconds (Kafka's
    /// `group.min.session.timeout.ms`).
    #[arg(long, env = "SLUICE_GROUP_MIN_SESSION_TIMEOUT_MS", default_value_t = sluice_group::SESSION_TIMEOUT_MIN_MS_DEFAULT)]
    pub group_min_session_timeout_ms: i32,
    /// Largest session timeout a member may ask for, in milliseconds (Kafka's
    /// `group.max.session.timeout.ms`).
    #[arg(long, env = "SLUICE_GROUP_MAX_SESSION_TIMEOUT_MS", default_value_t = sluice_group::SESSION_TIMEOUT_MAX_MS_DEFAULT)]
    pub group_max_session_timeout_ms: i32,
    /// Most members of one group (Kafka's `group.max.size`).
    #[arg(long, env = "SLUICE_GROUP_MAX_SIZE", default_value_t = sluice_group::GROUP_SIZE_MAX_DEFAULT)]
    pub group_max_size: usize,
    /// How often this broker tells the metadata leader it is alive, in milliseconds (Kafka's
    /// `broker.heartbeat.interval.ms`).
    #[arg(long, env = "SLUICE_BROKER_HEARTBEAT_INTERVAL_MS", default_value_t = sluice_meta::liveness::BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT)]
    pub broker_heartbeat_interval_ms: u64,
    /// A broker not heard from for this long is fenced and loses its leaderships, in
    /// milliseconds (Kafka's `broker.session.timeout.ms`; enforced by the metadata leader).
    #[arg(long, env = "SLUICE_BROKER_SESSION_TIMEOUT_MS", default_value_t = sluice_meta::liveness::BROKER_SESSION_TIMEOUT_MS_DEFAULT)]
    pub broker_session_timeout_ms: u64,
    /// A follower not caught up with its leader for this long leaves the ISR, in milliseconds
    /// (Kafka's `replica.lag.time.max.ms`).
    #[arg(long, env = "SLUICE_REPLICA_LAG_TIME_MAX_MS", default_value_t = crate::partition::replica::REPLICA_LAG_TIME_MS_DEFAULT)]
    pub replica_lag_time_max_ms: i64,
    /// How long a follower's fetch waits at the leader for new data, in milliseconds (Kafka's
    /// `replica.fetch.wait.max.ms`).
    #[arg(long, env = "SLUICE_REPLICA_FETCH_WAIT_MAX_MS", default_value_t = crate::replication::REPLICA_FETCH_WAIT_MS_DEFAULT)]
    pub replica_fetch_wait_max_ms: i32,
    /// Give leaderships back to each partition's preferred replica once it is in sync again,
    /// checked every 30 s by the metadata leader (Kafka's `auto.leader.rebalance.enable`).
    #[arg(long, env = "SLUICE_AUTO_LEADER_REBALANCE_ENABLE", default_value_t = true, action = ArgAction::Set)]
    pub auto_leader_rebalance_enable: bool,
    /// In-sync replicas an acks=all produce needs, for topics that do not set their own
    /// `min.insync.replicas` (Kafka's broker-level `min.insync.replicas`).
    #[arg(long, env = "SLUICE_MIN_INSYNC_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub min_insync_replicas: i32,
    /// When no in-sync replica of a partition is live, elect an out-of-sync one (losing what it
    /// had not copied) instead of leaving the partition offline; for topics that do not set
    /// their own `unclean.leader.election.enable` (Kafka's broker-level setting, default off).
    #[arg(long, env = "SLUICE_UNCLEAN_LEADER_ELECTION_ENABLE", default_value_t = false, action = ArgAction::Set)]
    pub unclean_leader_election_enable: bool,
    /// Log a request that takes longer than this, in milliseconds, as one warn line with its
    /// API, client id, peer and elapsed time; 0 turns it off. A Fetch's own long-poll wait is
    /// added; JoinGroup and SyncGroup are never logged (they wait for the group by design).
    #[arg(long, env = "SLUICE_SLOW_REQUEST_MS", default_value_t = crate::config::SLOW_REQUEST_MS_DEFAULT)]
    pub slow_request_ms: u64,
    /// More Kafka listeners beside `--listen` (which is named PLAINTEXT), as Kafka's
    /// `listeners`: `NAME://host:port,...`, e.g. `SASL_SSL://0.0.0.0:9094`. An empty host binds
    /// every interface (then give the address in `--advertised-listeners`).
    #[arg(long, env = "SLUICE_LISTENERS", default_value = "")]
    pub listeners: String,
    /// What clients are told for each of `--listeners`: `NAME://host:port,...` (default: the
    /// bound address). Kafka's `advertised.listeners`.
    #[arg(long, env = "SLUICE_ADVERTISED_LISTENERS", default_value = "")]
    pub advertised_listeners: String,
    /// The security protocol of each listener name that is not itself a protocol name:
    /// `NAME:PROTOCOL,...` with PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. Kafka's
    /// `listener.security.protocol.map`.
    #[arg(long, env = "SLUICE_LISTENER_SECURITY_PROTOCOL_MAP", default_value = "")]
    pub listener_security_protocol_map: String,
    /// PEM certificate chain (leaf first) of the SSL and SASL_SSL listeners; re-read when it
    /// changes.
    #[arg(long, env = "SLUICE_SSL_CERTIFICATE", value_name = "FILE")]
    pub ssl_certificate: Option<PathBuf>,
    /// PEM private key of `--ssl-certificate`.
    #[arg(long, env = "SLUICE_SSL_KEY", value_name = "FILE")]
    pub ssl_key: Option<PathBuf>,
    /// PEM CA bundle that client certificates must chain to (needed with `--ssl-client-auth`).
    #[arg(long, env = "SLUICE_SSL_CA", value_name = "FILE")]
    pub ssl_ca: Option<PathBuf>,
    /// Client certificates on SSL listeners (Kafka's `ssl.client.auth`): none, requested, or
    /// required. A verified certificate's subject is the principal (`User:CN=...`). SASL_SSL
    /// listeners ask for none: their clients authenticate with SASL.
    #[arg(long, env = "SLUICE_SSL_CLIENT_AUTH", value_enum, default_value = "none")]
    pub ssl_client_auth: ClientAuth,
    /// Mutual TLS on the Raft port (`--raft-listen`): every metadata connection, accepted or
    /// dialed, uses TLS with `--ssl-certificate` and `--ssl-key`, and the peer must present a
    /// certificate chaining to `--ssl-ca` (all three are required then). The certificate must
    /// carry the host names or IPs peers dial (`--voters`, `--raft-advertise`) in its SANs and
    /// allow client authentication. Every node of the group needs it on.
    #[arg(long, env = "SLUICE_INTERNAL_TLS", default_value_t = false, action = ArgAction::Set)]
    pub internal_tls: bool,
    /// With `--internal-tls`: accept only peers whose certificate subject is one of these
    /// principals, separated by `;` (`User:CN=broker-1,O=example;User:CN=broker-2,O=example`),
    /// on inbound and outbound Raft connections. Empty: any certificate of `--ssl-ca`.
    #[arg(long, env = "SLUICE_INTERNAL_TLS_ALLOWED_PRINCIPALS", default_value = "", value_parser = parse_principal_list)]
    pub internal_tls_allowed_principals: PrincipalList,
    /// SASL mechanisms offered on SASL listeners, comma-separated: SCRAM-SHA-512,
    /// SCRAM-SHA-256, PLAIN (PLAIN checks the password against the user's SCRAM credential).
    #[arg(long, env = "SLUICE_SASL_ENABLED_MECHANISMS", default_value = "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN", value_parser = parse_mechanism_list)]
    pub sasl_enabled_mechanisms: MechanismList,
    /// A SASL session ends this long after authenticating unless the client re-authenticates
    /// (KIP-152), in milliseconds; 0: never. Kafka's `connections.max.reauth.ms`.
    #[arg(long, env = "SLUICE_CONNECTIONS_MAX_REAUTH_MS", default_value_t = 0)]
    pub connections_max_reauth_ms: u64,
    /// Check every request against the ACLs (CreateAcls / `sluice acl add`): Kafka's
    /// `authorizer.class.name` set to its standard authorizer. Off, every client may do
    /// everything, as on a Kafka broker without an authorizer.
    #[arg(long, env = "SLUICE_AUTHORIZER_ENABLED", default_value_t = false, action = ArgAction::Set)]
    pub authorizer_enabled: bool,
    /// Principals allowed everything whatever the ACLs say, separated by `;` as in Kafka's
    /// `super.users` (a certificate subject holds commas): `User:admin;User:CN=broker1,O=example`.
    #[arg(long, env = "SLUICE_SUPER_USERS", default_value = "", value_parser = parse_principal_list)]
    pub super_users: PrincipalList,
    /// Allow an operation on a resource that no ACL names at all (Kafka's
    /// `allow.everyone.if.no.acl.found`); off, what no ACL allows is denied.
    #[arg(long, env = "SLUICE_ALLOW_EVERYONE_IF_NO_ACL_FOUND", default_value_t = false, action = ArgAction::Set)]
    pub allow_everyone_if_no_acl_found: bool,
    /// Log lines as text, or as one JSON object per line.
    #[arg(long, env = "SLUICE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// A TOML file of settings, one key per flag (`node-id = 2`, `listen = "0.0.0.0:9092"`);
    /// flags and `SLUICE_*` variables override it. See [`crate::config_file`].
    #[arg(long, env = "SLUICE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration (TOML, each value with where it came from) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Without a subcommand, the broker runs.
    #[command(subcommand)]
    pub command: Option<Subcommand>,
}

/// What `sluice-broker` does instead of running a broker.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Subcommand {
    /// Ask a running broker's admin listener: exit 0 when `/ready` (or `/health`) answers 200,
    /// else 1 with one line on stderr. The container image's health check.
    Probe(crate::probe::ProbeArgs),
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colours only on a terminal).
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`, spans).
    Json,
}

impl Args {
    /// The node configuration these flags describe.
    pub fn into_config(self) -> NodeConfig {
        let mut config = NodeConfig::new(self.node_id, self.data_dir);
        config.kafka.listen_address = self.listen;
        config.advertise = self.advertise;
        config.replication_advertise = self.replication_advertise;
        config.inter_broker_listener = self.inter_broker_listener_name;
        config.rack = self.rack;
        config.raft_listen = self.raft_listen;
        config.raft_advertise = self.raft_advertise;
        config.voters = self.voters;
        config.join = self.join;
        config.admin_listen = self.admin_listen;
        config.defaults = TopicDefaults {
            partitions: self.default_partitions,
            replication_factor: self.default_replication_factor,
            auto_create_topics: self.auto_create_topics,
            min_insync_replicas: self.min_insync_replicas,
            unclean_leader_election: self.unclean_leader_election_enable,
        };
        let coordinator = &mut config.coordinator;
        coordinator.offsets_topic_partitions = self.offsets_topic_partitions;
        coordinator.offsets_topic_replication_factor = self.offsets_topic_replication_factor;
        coordinator.shard.offsets_retention_ms = self.offsets_retention_minutes.saturating_mul(60_000);
        let group = &mut coordinator.shard.group;
        group.initial_rebalance_delay_ms = self.group_initial_rebalance_delay_ms;
        group.session_timeout_min_ms = self.group_min_session_timeout_ms;
        group.session_timeout_max_ms = self.group_max_session_timeout_ms;
        group.group_size_max = self.group_max_size;
        config.broker_heartbeat_interval_ms = self.broker_heartbeat_interval_ms;
        config.broker_session_timeout_ms = self.broker_session_timeout_ms;
        config.replication.replica_lag_time_ms = self.replica_lag_time_max_ms;
        config.replication.fetch_wait_ms = self.replica_fetch_wait_max_ms;
        config.auto_leader_rebalance = self.auto_leader_rebalance_enable;
        config.slow_request_ms = self.slow_request_ms;
        config.listeners = ListenerFlags {
            listeners: self.listeners,
            advertised: self.advertised_listeners,
            protocol_map: self.listener_security_protocol_map,
        };
        if self.ssl_certificate.is_some() || self.ssl_key.is_some() {
            // A missing one is named when the listener's TLS configuration is loaded.
            config.tls = Some(TlsSettings {
                certificate: self.ssl_certificate.unwrap_or_default(),
                key: self.ssl_key.unwrap_or_default(),
                ca: self.ssl_ca,
                client_auth: self.ssl_client_auth,
            });
        }
        config.internal_tls = self.internal_tls;
        config.internal_tls_allowed_principals = self.internal_tls_allowed_principals.0;
        config.sasl =
            SaslConfig { mechanisms: self.sasl_enabled_mechanisms.0, reauth_ms: self.connections_max_reauth_ms };
        config.authorizer = AuthorizerConfig {
            enabled: self.authorizer_enabled,
            super_users: self.super_users.0,
            allow_everyone_if_no_acl_found: self.allow_everyone_if_no_acl_found,
        };
        config
    }
}

/// `--sasl-enabled-mechanisms`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MechanismList(pub Vec<Mechanism>);

fn parse_mechanism_list(text: &str) -> Result<MechanismList, String> {
    parse_mechanisms(text).map(MechanismList)
}

/// `--super-users`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrincipalList(pub Vec<Principal>);

fn parse_principal_list(text: &str) -> Result<PrincipalList, String> {
    text.split(';')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| Principal::parse(item).ok_or_else(|| format!("{item:?} is not a principal of the form User:name")))
        .collect::<Result<Vec<_>, _>>()
        .map(PrincipalList)
}

/// `--rack`: non-empty, at most [`BROKER_RACK_BYTES_MAX`] bytes (the metadata refuses more).
fn parse_rack(value: &str) -> Result<String, String> {
    if value.is_empty() || value.len() > BROKER_RACK_BYTES_MAX {
        return Err(format!("a rack name is 1..={BROKER_RACK_BYTES_MAX} bytes"));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_flags_give_the_documented_defaults() {
        let config = Args::parse_from(["sluice-broker"]).into_config();
        assert_eq!(config.node_id, 1);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.kafka.listen_address.to_string(), "127.0.0.1:9092");
        assert_eq!(config.raft_listen.to_string(), "127.0.0.1:9093");
        assert_eq!(config.admin_listen.to_string(), "127.0.0.1:9644");
        assert_eq!(config.voters, None);
        assert_eq!(config.join, None);
        assert_eq!(config.defaults, TopicDefaults::default());
    }

    #[test]
    fn every_setting_has_an_environment_variable_named_after_its_flag() {
        use clap::CommandFactory;
        for arg in Args::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version" | "print-config") {
                continue;
            }
            let expected = format!("SLUICE_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(arg.get_env().and_then(|env| env.to_str()), Some(expected.as_str()), "--{long}");
        }
    }

    #[test]
    fn flags_override_the_defaults() {
        let config = Args::parse_from([
            "sluice-broker",
            "--node-id",
            "3",
            "--voters",
            "3@127.0.0.1:1",
            "--auto-create-topics",
            "false",
            "--default-partitions",
            "4",
            "--offsets-topic-partitions",
            "3",
            "--group-initial-rebalance-delay-ms",
            "0",
            "--min-insync-replicas",
            "2",
            "--unclean-leader-election-enable",
            "true",
            "--rack",
            "zone-b",
            "--join",
            "127.0.0.1:2,node-b:9093",
        ])
        .into_config();
        assert_eq!(config.node_id, 3);
        assert_eq!(config.voters.as_deref(), Some("3@127.0.0.1:1"));
        assert!(!config.defaults.auto_create_topics);
        assert_eq!(config.defaults.partitions, 4);
        assert_eq!(config.coordinator.offsets_topic_partitions, 3);
        assert_eq!(config.coordinator.shard.group.initial_rebalance_delay_ms, 0);
        assert_eq!(config.defaults.min_insync_replicas, 2);
        assert!(config.defaults.unclean_leader_election);
        assert_eq!(config.rack.as_deref(), Some("zone-b"));
        assert_eq!(config.join.as_deref(), Some("127.0.0.1:2,node-b:9093"));
    }

    #[test]
    fn internal_tls_is_off_by_default_and_set_by_its_flags() {
        let config = Args::parse_from(["sluice-broker"]).into_config();
        assert!(!config.internal_tls);
        assert!(config.internal_tls_allowed_principals.is_empty());
        let config = Args::parse_from([
            "sluice-broker",
            "--internal-tls",
            "true",
            "--internal-tls-allowed-principals",
            "User:CN=b1,O=x; User:CN=b2,O=x",
        ])
        .into_config();
        assert!(config.internal_tls);
        let allowed: Vec<String> = config.internal_tls_allowed_principals.iter().map(ToString::to_string).collect();
        assert_eq!(allowed, ["User:CN=b1,O=x", "User:CN=b2,O=x"]);
    }

    #[test]
    fn an_empty_or_overlong_rack_is_refused() {
        assert!(Args::try_parse_from(["sluice-broker", "--rack", ""]).is_err());
        let long = "r".repeat(BROKER_RACK_BYTES_MAX + 1);
        assert!(Args::try_parse_from(["sluice-broker", "--rack", long.as_str()]).is_err());
        assert_eq!(Args::parse_from(["sluice-broker"]).into_config().rack, None);
    }
}
