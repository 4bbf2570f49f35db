//! Command-line arguments (clap derive). Every default is stated in its help text.

use std::path::PathBuf;

use clap::{ArgAction, ArgGroup, Args, Parser, Subcommand, ValueEnum};
use sluice_client::admin::OffsetTarget;
use sluice_client::{Acks, Compression};

use crate::line_format::Encoding;
use crate::output::{parse_output_format, OutputFormat};
pub use crate::position::StartFrom;
use crate::position::{parse_start, parse_time};

/// Kafka's default `max.request.size`: 1 MiB.
pub const MAX_REQUEST_SIZE_DEFAULT_BYTES: usize = 1024 * 1024;

/// Sluice command line: topics, produce, consume, consumer groups, cluster status, benchmarks.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, after_help = EXAMPLES_MAIN)]
pub struct Cli {
    /// Bootstrap servers, comma-separated host:port.
    #[arg(long, short = 'b', global = true, env = "SLUICE_BOOTSTRAP", default_value = "localhost:9092")]
    pub bootstrap: String,
    /// Time a request may wait for its answer, in milliseconds.
    #[arg(long, global = true, default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// Time to connect to a broker, in milliseconds.
    #[arg(long, global = true, default_value_t = 5_000)]
    pub connect_timeout_ms: u64,
    /// Speak TLS to the brokers (an SSL or SASL_SSL listener), checking their certificate
    /// against this PEM CA bundle (librdkafka's `ssl.ca.location`).
    #[arg(long, global = true, env = "SLUICE_CLIENT_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// PEM client certificate for brokers that ask for one (mTLS; needs --tls-ca and --tls-key).
    #[arg(long, global = true, env = "SLUICE_CLIENT_TLS_CERTIFICATE", value_name = "FILE", requires_all = ["tls_ca", "tls_key"])]
    pub tls_certificate: Option<std::path::PathBuf>,
    /// PEM private key of --tls-certificate.
    #[arg(long, global = true, env = "SLUICE_CLIENT_TLS_KEY", value_name = "FILE", requires = "tls_certificate")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Authenticate with SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (inside TLS with
    /// --tls-ca: a SASL_SSL listener; else a SASL_PLAINTEXT one).
    #[arg(long, global = true, env = "SLUICE_SASL_MECHANISM", value_parser = parse_sasl_mechanism, requires = "sasl_username")]
    pub sasl_mechanism: Option<sluice_client::SaslMechanism>,
    /// SASL user name.
    #[arg(long, global = true, env = "SLUICE_SASL_USERNAME", requires = "sasl_mechanism")]
    pub sasl_username: Option<String>,
    /// SASL password (better given by the variable than on the command line).
    #[arg(long, global = true, env = "SLUICE_SASL_PASSWORD", hide_env_values = true)]
    pub sasl_password: Option<String>,
    /// More output on stderr: -v logs the client's debug events, -vv its trace events
    /// (`RUST_LOG` overrides).
    #[arg(long, short = 'v', global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, describe, alter and delete topics.
    #[command(subcommand, after_help = EXAMPLES_TOPIC)]
    Topic(TopicCommand),
    /// Produce records from stdin (one per line) or a file.
    #[command(after_help = EXAMPLES_PRODUCE)]
    Produce(ProduceArgs),
    /// Consume records and print them (from the beginning unless -o says otherwise).
    #[command(after_help = EXAMPLES_CONSUME)]
    Consume(ConsumeArgs),
    /// List, describe (with lag), reset the offsets of and delete consumer groups.
    #[command(subcommand, after_help = EXAMPLES_GROUP)]
    Group(GroupCommand),
    /// Cluster information and health.
    #[command(subcommand, after_help = EXAMPLES_CLUSTER)]
    Cluster(ClusterCommand),
    /// Set, remove and list client quotas (byte rates per user and/or client id).
    #[command(subcommand, after_help = EXAMPLES_QUOTA)]
    Quota(QuotaCommand),
    /// Measure produce or consume throughput and latency.
    #[command(subcommand, after_help = EXAMPLES_BENCH)]
    Bench(BenchCommand),
    /// Create, delete and list SASL/SCRAM users.
    #[command(subcommand, after_help = EXAMPLES_USER)]
    User(UserCommand),
    /// Add, remove and list ACLs (who may do what on which topic, group, transactional id or
    /// the cluster).
    #[command(subcommand, after_help = EXAMPLES_ACL)]
    Acl(AclCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = EXAMPLES_COMPLETIONS)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

const EXAMPLES_USER: &str = "Examples:
  sluice user create alice --password 's3cret'                 # SCRAM-SHA-512 and SCRAM-SHA-256
  echo 's3cret' | sluice user create alice --mechanism SCRAM-SHA-512
  sluice user list
  sluice user delete alice";

/// `sluice user`: SCRAM credentials (Kafka's AlterUserScramCredentials and
/// DescribeUserScramCredentials). The password is salted and hashed by the CLI; only the salted
/// form reaches the cluster.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user or change its password.
    #[command(
        after_help = "Examples:\n  sluice user create alice --password 's3cret'\n  echo 's3cret' | sluice user create alice --mechanism SCRAM-SHA-512 --iterations 8192"
    )]
    Create {
        /// User name (the principal is `User:<name>`).
        name: String,
        /// The password; without it, the first line of standard input.
        #[arg(long)]
        password: Option<String>,
        /// Mechanisms to set (repeatable); default both SCRAM-SHA-512 and SCRAM-SHA-256.
        #[arg(long = "mechanism", value_parser = parse_scram_mechanism)]
        mechanisms: Vec<sluice_client::admin::ScramMechanism>,
        /// PBKDF2 iterations, 4096..=16384.
        #[arg(long, default_value_t = sluice_client::admin::SCRAM_ITERATIONS_DEFAULT)]
        iterations: u32,
    },
    /// Delete a user's credentials (every mechanism unless --mechanism is given).
    #[command(
        after_help = "Examples:\n  sluice user delete alice\n  sluice user delete alice --mechanism SCRAM-SHA-256"
    )]
    Delete {
        /// User name.
        name: String,
        /// Only this mechanism (repeatable).
        #[arg(long = "mechanism", value_parser = parse_scram_mechanism)]
        mechanisms: Vec<sluice_client::admin::ScramMechanism>,
    },
    /// List the users and their mechanisms.
    #[command(after_help = "Examples:\n  sluice user list\n  sluice user list --json")]
    List {
        /// One JSON object per user.
        #[arg(long)]
        json: bool,
    },
}

const EXAMPLES_ACL: &str = "Examples:
  sluice acl add --allow-principal User:alice --operation read --operation describe --topic orders
  sluice acl add --allow-principal User:alice --operation read --group readers --resource-pattern-type prefixed
  sluice acl add --deny-principal User:mallory --deny-host 10.0.0.13 --operation all --topic '*'
  sluice acl list
  sluice acl list --topic orders --resource-pattern-type match --json
  sluice acl remove --allow-principal User:alice --operation read --topic orders";

/// `sluice acl`: ACLs (Kafka's CreateAcls, DescribeAcls and DeleteAcls), with the flags of
/// Kafka's `kafka-acls.sh`.
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add ACLs: each principal gets each operation on each resource, from each host.
    #[command(
        after_help = "Examples:\n  sluice acl add --allow-principal User:alice --operation read --operation describe --topic orders\n  sluice acl add --allow-principal User:app --operation write --operation idempotent-write --topic orders --cluster\n  sluice acl add --allow-principal User:alice --operation read --group readers- --resource-pattern-type prefixed\n  sluice acl add --deny-principal User:mallory --deny-host 10.0.0.13 --operation all --topic '*'"
    )]
    Add {
        #[command(flatten)]
        principals: AclPrincipalArgs,
        /// Operation to allow or deny (repeatable): all, read, write, create, delete, alter,
        /// describe, cluster-action, describe-configs, alter-configs, idempotent-write.
        #[arg(long = "operation", value_name = "OPERATION", required = true, value_parser = parse_acl_operation)]
        operations: Vec<sluice_client::admin::AclOperation>,
        #[command(flatten)]
        resources: AclResourceArgs,
        /// How the resource names match: literal (the name exactly; `*` for every one) or
        /// prefixed (every name that starts with it).
        #[arg(long, value_name = "TYPE", default_value = "literal", value_parser = parse_acl_pattern_type)]
        resource_pattern_type: sluice_client::admin::AclPatternType,
    },
    /// Remove the ACLs of the resources that match the flags (every principal, host and
    /// operation unless given), and print the ones removed.
    #[command(
        after_help = "Examples:\n  sluice acl remove --allow-principal User:alice --operation read --topic orders\n  sluice acl remove --topic orders                          # every ACL of topic orders (literal)\n  sluice acl remove --group readers- --resource-pattern-type prefixed --json"
    )]
    Remove {
        #[command(flatten)]
        principals: AclPrincipalArgs,
        /// Only this operation (repeatable); default every operation.
        #[arg(long = "operation", value_name = "OPERATION", value_parser = parse_acl_operation)]
        operations: Vec<sluice_client::admin::AclOperation>,
        #[command(flatten)]
        resources: AclResourceArgs,
        /// Which patterns: literal, prefixed, any (both) or match (every pattern that applies
        /// to the named resource: literal, the wildcard `*` and prefixes of the name).
        #[arg(long, value_name = "TYPE", default_value = "literal", value_parser = parse_acl_pattern_filter)]
        resource_pattern_type: sluice_client::admin::AclPatternFilter,
        /// Print one JSON object per removed ACL instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List ACLs: every one, or those of the named resources and principals.
    #[command(
        after_help = "Examples:\n  sluice acl list\n  sluice acl list --topic orders\n  sluice acl list --topic orders --resource-pattern-type match   # every ACL that applies to orders\n  sluice acl list --principal User:alice --json"
    )]
    List {
        /// Only the ACLs of this principal (repeatable).
        #[arg(long = "principal", value_name = "PRINCIPAL", value_parser = parse_acl_principal)]
        principals: Vec<String>,
        #[command(flatten)]
        resources: AclResourceArgs,
        /// Which patterns of the named resources: literal, prefixed, any or match; default
        /// literal when a resource is named, any otherwise.
        #[arg(long, value_name = "TYPE", value_parser = parse_acl_pattern_filter)]
        resource_pattern_type: Option<sluice_client::admin::AclPatternFilter>,
        /// Print one JSON object per ACL instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// The principals and hosts of `acl add` and `acl remove`, as in `kafka-acls.sh`.
#[derive(Debug, Clone, clap::Args)]
pub struct AclPrincipalArgs {
    /// Principal to allow, `User:<name>` (`User:*` for every user) (repeatable).
    #[arg(long = "allow-principal", value_name = "PRINCIPAL", value_parser = parse_acl_principal)]
    pub allow_principals: Vec<String>,
    /// Principal to deny (repeatable); a deny wins over every allow.
    #[arg(long = "deny-principal", value_name = "PRINCIPAL", value_parser = parse_acl_principal)]
    pub deny_principals: Vec<String>,
    /// Host the allowed principals may connect from (repeatable); default `*`, any host.
    #[arg(long = "allow-host", value_name = "HOST", requires = "allow_principals")]
    pub allow_hosts: Vec<String>,
    /// Host the denied principals are denied from (repeatable); default `*`, any host.
    #[arg(long = "deny-host", value_name = "HOST", requires = "deny_principals")]
    pub deny_hosts: Vec<String>,
}

/// The resources of an `acl` command (any number of them, combined).
#[derive(Debug, Clone, clap::Args)]
pub struct AclResourceArgs {
    /// Topic (repeatable); `*` for every topic.
    #[arg(long = "topic", value_name = "NAME")]
    pub topics: Vec<String>,
    /// Consumer group (repeatable); `*` for every group.
    #[arg(long = "group", value_name = "NAME")]
    pub groups: Vec<String>,
    /// The cluster (resource name `kafka-cluster`).
    #[arg(long)]
    pub cluster: bool,
    /// Transactional id (repeatable); `*` for every one.
    #[arg(long = "transactional-id", value_name = "NAME")]
    pub transactional_ids: Vec<String>,
}

impl AclResourceArgs {
    /// The named resources, as (type, name), in flag order by type.
    pub fn resources(&self) -> Vec<(sluice_client::admin::AclResourceType, String)> {
        use sluice_client::admin::{AclResourceType, CLUSTER_RESOURCE_NAME};
        let named = |kind: AclResourceType, names: &[String]| {
            names.iter().map(move |name| (kind, name.clone())).collect::<Vec<_>>()
        };
        let mut resources = named(AclResourceType::Topic, &self.topics);
        resources.extend(named(AclResourceType::Group, &self.groups));
        if self.cluster {
            resources.push((AclResourceType::Cluster, CLUSTER_RESOURCE_NAME.to_string()));
        }
        resources.extend(named(AclResourceType::TransactionalId, &self.transactional_ids));
        resources
    }
}

fn parse_acl_operation(text: &str) -> Result<sluice_client::admin::AclOperation, String> {
    text.parse()
}

fn parse_acl_pattern_type(text: &str) -> Result<sluice_client::admin::AclPatternType, String> {
    text.parse()
}

fn parse_acl_pattern_filter(text: &str) -> Result<sluice_client::admin::AclPatternFilter, String> {
    text.parse()
}

/// A principal is `Type:name` (`User:alice`), as Kafka requires.
fn parse_acl_principal(text: &str) -> Result<String, String> {
    match text.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(text.to_string()),
        _ => Err(format!("expected a principal as Type:name (User:alice, User:*), got {text:?}")),
    }
}

fn parse_sasl_mechanism(text: &str) -> Result<sluice_client::SaslMechanism, String> {
    text.parse()
}

fn parse_scram_mechanism(text: &str) -> Result<sluice_client::admin::ScramMechanism, String> {
    text.parse()
}

const EXAMPLES_MAIN: &str = "Examples:
  export SLUICE_BOOTSTRAP=127.0.0.1:9092
  sluice topic create greetings -p 3
  printf 'alice=hello\\nbob=hi\\n' | sluice produce greetings -K =
  sluice consume greetings -e
  sluice group describe readers";
const EXAMPLES_QUOTA: &str = "Examples:
  sluice quota set --client-id app --producer-byte-rate 1048576
  sluice quota set --user alice --client-id app --consumer-byte-rate 2097152
  sluice quota set --default-user --producer-byte-rate 10485760
  sluice quota remove --client-id app --producer-byte-rate
  sluice quota list --json";
const EXAMPLES_TOPIC: &str = "Examples:
  sluice topic create orders -p 6 -r 3 -c min.insync.replicas=2
  sluice topic create events            # the broker's num.partitions and default.replication.factor
  sluice topic list --json
  sluice topic describe orders
  sluice topic alter orders -p 12 --set retention.ms=86400000
  sluice topic delete old-a old-b";
const EXAMPLES_PRODUCE: &str = "Examples:
  echo hello | sluice produce greetings
  printf 'alice=hello\\n' | sluice produce greetings -K =
  printf 'alice=\\n' | sluice produce users -K = -Z       # key alice, null value: a tombstone
  echo 'k1 v1 src=web' | sluice produce greetings -f '%k %v %h'
  echo '00ff 0a0d' | sluice produce raw -K ' ' --encoding hex
  sluice produce greetings --file lines.txt --max-request-size 4194304";
const EXAMPLES_CONSUME: &str = "Examples:
  sluice consume greetings -e                 # everything there is, then exit
  sluice consume greetings -e -f '%p@%o %k=%v'
  sluice consume raw -e -f '%k %v' --encoding hex   # binary-safe; produce -f '%k %v' --encoding hex reads it back
  sluice consume greetings -o end             # only new records, until Ctrl-C
  sluice consume greetings -o -10 -e          # the last 10 records of each partition
  sluice consume greetings -o -1h -f json     # the last hour, one JSON object per record
  sluice consume greetings -o 2024-05-01T12:00:00Z -n 5
  sluice consume greetings -g readers -e      # as a member of group readers, committing";
const EXAMPLES_GROUP: &str = "Examples:
  sluice group list
  sluice group describe readers --json
  sluice group reset-offsets readers -t greetings --to-earliest --dry-run
  sluice group reset-offsets readers -t greetings:0,1 --shift-by -5
  sluice group reset-offsets readers --all-topics --by-duration 1h
  sluice group delete readers";
const EXAMPLES_CLUSTER: &str = "Examples:
  sluice cluster status
  sluice cluster health && echo ok
  sluice cluster health --watch 5
  sluice cluster health --watch 1 --exit-when-healthy   # wait until a starting broker serves";
const EXAMPLES_BENCH: &str = "Examples:
  sluice bench produce -t bench -n 1000000 -s 100 --acks all
  sluice bench produce -t bench --rate 50000 --duration 20 -s 1024
  sluice bench end-to-end -t e2e --workload omb --duration 20
  sluice bench consume -t bench --json";
const EXAMPLES_COMPLETIONS: &str = "Examples:
  sluice completions bash > ~/.local/share/bash-completion/completions/sluice
  sluice completions zsh > \"${fpath[1]}/_sluice\"
  sluice completions fish > ~/.config/fish/completions/sluice.fish";

/// `sluice topic ...`
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    #[command(
        after_help = "Examples:\n  sluice topic create orders -p 6 -r 3 -c min.insync.replicas=2\n  sluice topic create events    # the broker's num.partitions and default.replication.factor"
    )]
    Create {
        /// Topic name.
        name: String,
        /// Partition count (default: the broker's `num.partitions`).
        #[arg(long, short = 'p')]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's `default.replication.factor`).
        #[arg(long, short = 'r')]
        replication_factor: Option<i16>,
        /// Topic config, `name=value` (repeatable).
        #[arg(long = "config", short = 'c', value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics.
    #[command(after_help = "Examples:\n  sluice topic list\n  sluice topic list --json")]
    List {
        /// Print one JSON object per topic instead of names.
        #[arg(long)]
        json: bool,
    },
    /// Show a topic's partitions (leader, replicas, ISR, log start and end offsets) and every
    /// config with its source.
    #[command(after_help = "Examples:\n  sluice topic describe orders\n  sluice topic describe orders --json")]
    Describe {
        /// Topic name.
        name: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete topics.
    #[command(after_help = "Examples:\n  sluice topic delete old-a old-b    # deletes none if either is unknown")]
    Delete {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Change a topic: add partitions, set or reset configs. Every change is validated by the
    /// broker before any is applied.
    #[command(
        after_help = "Examples:\n  sluice topic alter orders -p 12\n  sluice topic alter orders --set retention.ms=86400000 --delete cleanup.policy"
    )]
    Alter {
        /// Topic name.
        name: String,
        /// New (larger) partition count.
        #[arg(long, short = 'p')]
        partitions: Option<i32>,
        /// Set a config, `name=value` (repeatable).
        #[arg(long = "set", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Return a config to its default (repeatable).
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
    /// Move partitions between brokers (Kafka's `kafka-reassign-partitions`, KIP-455). Plans
    /// are Kafka's JSON: {"version":1,"partitions":[{"topic":..,"partition":..,"replicas":[..]}]}.
    /// New replicas copy from the leader and join the ISR before old ones are removed.
    #[command(after_help = "Examples:
  sluice topic reassign --generate --topics orders,events --brokers 1,2,3 > plan.json
  sluice topic reassign --generate --topics orders --brokers 1,2,3,4 --disable-rack-aware > plan.json
  sluice topic reassign --execute --plan plan.json --wait
  sluice topic reassign --execute --plan plan.json --throttle 50000000   # copy at most 50 MB/s
  sluice topic reassign --verify --plan plan.json      # done? then removes the throttle
  sluice topic reassign --cancel --plan plan.json")]
    Reassign(ReassignArgs),
}

/// `sluice topic reassign`
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("action").required(true).args(["generate", "execute", "verify", "cancel"])))]
pub struct ReassignArgs {
    /// Print a balanced plan for --topics over --brokers (moving as few replicas as possible,
    /// a partition's replicas on distinct racks when the brokers have racks) on stdout; the
    /// current assignment, to roll back to, goes to stderr.
    #[arg(long, requires_all = ["topics", "brokers"])]
    pub generate: bool,
    /// Start the moves of --plan.
    #[arg(long, requires = "plan")]
    pub execute: bool,
    /// Show each partition of --plan: done, moving (with the replicas being added and
    /// removed), or not started. Exit code 1 unless every partition is done.
    #[arg(long, requires = "plan")]
    pub verify: bool,
    /// Cancel the moves of --plan still in progress (back to the original replicas).
    #[arg(long, requires = "plan")]
    pub cancel: bool,
    /// Topics to plan for (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub topics: Vec<String>,
    /// Brokers to place the replicas on (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    pub brokers: Vec<i32>,
    /// With --generate: plan without racks even if the brokers have them (needed when only
    /// some brokers have a rack). Otherwise a partition's replicas go on distinct racks when
    /// there are enough racks, else as evenly over the racks as possible.
    #[arg(long, requires = "generate")]
    pub disable_rack_aware: bool,
    /// The plan file (Kafka's reassignment JSON).
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// With --execute: cap the copy of the moving replicas at this many bytes per second, per
    /// broker and direction (Kafka's --throttle: leader.replication.throttled.rate and
    /// follower.replication.throttled.rate). --verify removes the throttle once every move is
    /// done; --cancel removes it at once.
    #[arg(long, value_name = "BYTES_PER_SECOND", requires = "execute")]
    pub throttle: Option<u64>,
    /// With --execute or --verify: wait until every move of the plan is done.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds (exit code 1).
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
}

/// Producer settings shared by `produce` and `bench produce`.
#[derive(Debug, Args, Clone)]
pub struct ProducerArgs {
    /// Acknowledgement level.
    #[arg(long, value_enum, default_value = "all")]
    pub acks: AcksArg,
    /// Compression codec.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: CompressionArg,
    /// Batch size target in bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pub batch_size: usize,
    /// Largest a batch may grow past --batch-size while an earlier batch of its partition waits
    /// to be sent (equal to --batch-size: no growth).
    #[arg(long, default_value_t = sluice_client::BATCH_SIZE_MAX_BYTES_DEFAULT)]
    pub batch_size_max: usize,
    /// Time a batch waits for more records, in milliseconds.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Disable idempotence (implied by acks 0 or 1).
    #[arg(long)]
    pub no_idempotence: bool,
    /// Largest produce request, and so largest record, in bytes (Kafka's `max.request.size`).
    #[arg(long, default_value_t = MAX_REQUEST_SIZE_DEFAULT_BYTES, value_parser = parse_max_request_size)]
    pub max_request_size: usize,
}

/// `sluice produce`
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic.
    pub topic: String,
    /// Split each line into key and value at the first occurrence of this string (a line
    /// without it is a value with a null key).
    #[arg(long, short = 'K', conflicts_with = "format")]
    pub key_separator: Option<String>,
    /// Where key, value, headers and timestamp are in each line: `%k` key, `%v` value, `%h`
    /// headers (`a=1,b=2`), `%t` timestamp (epoch ms), `%%` a percent sign, `\t` a tab; other
    /// text must appear in the line as written. Example: `%t %k=%v`.
    #[arg(long, short = 'f')]
    pub format: Option<String>,
    /// How keys, values and header values are written in the input (hex and base64 carry any
    /// bytes, newlines included).
    #[arg(long, value_enum, default_value = "text")]
    pub encoding: Encoding,
    /// An empty key or value is null: an empty value is a tombstone (deletes the key in a
    /// compacted topic).
    #[arg(long, short = 'Z')]
    pub null_empty: bool,
    /// Read lines from this file instead of stdin.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Records per second at most.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Header for every record, `key=value` (repeatable).
    #[arg(long = "header", short = 'H', value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Partition for every record (default: by key, sticky for null keys).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    #[command(flatten)]
    pub producer: ProducerArgs,
}

/// `sluice consume`
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic.
    pub topic: String,
    /// Where to start in each partition: `beginning`, `end`, an offset `N`, `-N` (the last N
    /// records), `@MS` (epoch milliseconds), an RFC 3339 time (`2024-05-01T12:00:00Z`) or a
    /// time ago (`-30s`, `-15m`, `-1h`, `-2d`). A position outside the log starts at its
    /// nearest end, said on stderr.
    #[arg(long = "offset", short = 'o', alias = "from", default_value = "beginning", value_parser = parse_start, allow_hyphen_values = true)]
    pub offset: StartFrom,
    /// Only this partition (default: all).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    pub max_messages: Option<u64>,
    /// Exit once every partition is read to its end (its high watermark when checked).
    #[arg(long, short = 'e')]
    pub exit_at_end: bool,
    /// Stop when no record arrived for this many milliseconds (default: wait forever).
    #[arg(long)]
    pub idle_timeout_ms: Option<u64>,
    /// Output format: `value`, `key-value`, `json` (one object per record), or a format string
    /// like `produce -f` takes: `%k` key, `%v` value, `%h` headers, `%t` timestamp, `%T` topic,
    /// `%p` partition, `%o` offset (example: `'%p@%o %k=%v'`).
    #[arg(long = "format", short = 'f', alias = "output", default_value = "value", value_parser = parse_output_format)]
    pub format: OutputFormat,
    /// How keys, values and header values are written (not in `json`): as they are, or in hex
    /// or base64, which `produce --encoding` reads back.
    #[arg(long, value_enum, default_value = "text")]
    pub encoding: Encoding,
    /// Separator between key and value in `key-value` output.
    #[arg(long, default_value = "\t")]
    pub key_separator: String,
    /// Consume as a member of this consumer group: the group assigns the partitions, each
    /// starts at the group's committed offset (`-o beginning|end` only for partitions
    /// without one), and what is printed is committed as it goes.
    #[arg(long, short = 'g', conflicts_with = "partition")]
    pub group: Option<String>,
}

/// `sluice group ...`
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List the consumer groups of every broker.
    #[command(after_help = "Examples:\n  sluice group list\n  sluice group list --json")]
    List {
        /// Print one JSON object per group instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a group's state and members, and per partition its committed offset, log end
    /// offset and lag.
    #[command(after_help = "Examples:\n  sluice group describe readers\n  sluice group describe readers --json")]
    Describe {
        /// Group id.
        group: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move a group's committed offsets of topics or partitions (refused while the group has
    /// active members); prints the new offsets, and on stderr each target clamped into the log.
    #[command(
        after_help = "Examples:\n  sluice group reset-offsets readers -t greetings --to-earliest --dry-run\n  sluice group reset-offsets readers -t greetings:0,1 --shift-by -5\n  sluice group reset-offsets readers -t greetings --to-datetime 2024-05-01T12:00:00Z\n  sluice group reset-offsets readers --all-topics --by-duration 1h\n  sluice group reset-offsets readers --all-topics --to-current"
    )]
    ResetOffsets(ResetOffsetsArgs),
    /// Delete a group and its committed offsets (refused while it has active members).
    #[command(after_help = "Examples:\n  sluice group delete readers")]
    Delete {
        /// Group id.
        group: String,
    },
}

/// `sluice group reset-offsets`
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_datetime", "by_duration", "to_offset", "shift_by", "to_current"])
))]
#[command(group(ArgGroup::new("scope").required(true).args(["topics", "all_topics"])))]
pub struct ResetOffsetsArgs {
    /// Group id.
    pub group: String,
    /// Topic to reset: `name` (every partition) or `name:0,1` (those partitions); repeatable.
    #[arg(long = "topic", short = 't', value_parser = parse_topic_partitions)]
    pub topics: Vec<TopicPartitions>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    pub all_topics: bool,
    /// To the log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the log end offset.
    #[arg(long)]
    pub to_latest: bool,
    /// To the first record at or after this time: RFC 3339 (`2024-05-01T12:00:00Z`,
    /// `2024-05-01T14:00:00+02:00`) or milliseconds since the epoch.
    #[arg(long, value_parser = parse_time)]
    pub to_datetime: Option<i64>,
    /// To the first record at or after this long ago: `1h`, `30m`, `2d` or Kafka's ISO 8601
    /// form `PT1H`, `P1DT12H`.
    #[arg(long, value_parser = parse_duration)]
    pub by_duration: Option<i64>,
    /// To this offset.
    #[arg(long)]
    pub to_offset: Option<i64>,
    /// To the committed offset itself (moved into the log if retention passed it).
    #[arg(long)]
    pub to_current: bool,
    /// By this many records from the committed offset (negative: back).
    #[arg(long, allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// Show the new offsets without committing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A topic and, optionally, some of its partitions (`name` or `name:0,1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    /// Topic name.
    pub topic: String,
    /// Only these partitions (`None`: all).
    pub partitions: Option<Vec<i32>>,
}

impl ResetOffsetsArgs {
    /// The target the flags name (clap makes exactly one present); `--by-duration` counts back
    /// from `now_ms`.
    pub fn target(&self, now_ms: i64) -> OffsetTarget {
        match (self.to_datetime, self.by_duration, self.to_offset, self.shift_by) {
            (Some(timestamp_ms), _, _, _) => OffsetTarget::Timestamp(timestamp_ms),
            (_, Some(ago_ms), _, _) => OffsetTarget::Timestamp(now_ms.saturating_sub(ago_ms)),
            (_, _, Some(offset), _) => OffsetTarget::Offset(offset),
            (_, _, _, Some(delta)) => OffsetTarget::ShiftBy(delta),
            _ if self.to_earliest => OffsetTarget::Earliest,
            _ if self.to_current => OffsetTarget::Current,
            _ => OffsetTarget::Latest,
        }
    }
}

/// Smallest `--max-request-size`: a request must hold a batch's overhead twice over (the
/// client's own bound, checked here so the error names the flag).
const MAX_REQUEST_SIZE_MIN_BYTES: usize = 2 * sluice_client::producer::BATCH_OVERHEAD_BYTES;

fn parse_max_request_size(text: &str) -> Result<usize, String> {
    let bytes: usize = text.parse().map_err(|_| format!("expected a number of bytes, got {text:?}"))?;
    if bytes < MAX_REQUEST_SIZE_MIN_BYTES {
        return Err(format!("at least {MAX_REQUEST_SIZE_MIN_BYTES} bytes, got {bytes}"));
    }
    Ok(bytes)
}

fn parse_topic_partitions(text: &str) -> Result<TopicPartitions, String> {
    let Some((topic, list)) = text.split_once(':') else {
        return Ok(TopicPartitions { topic: text.to_string(), partitions: None });
    };
    let partitions = list
        .split(',')
        .map(|partition| {
            partition
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|p| *p >= 0)
                .ok_or_else(|| format!("expected topic or topic:0,1 with partition numbers, got {text:?}"))
        })
        .collect::<Result<Vec<i32>, String>>()?;
    Ok(TopicPartitions { topic: topic.to_string(), partitions: Some(partitions) })
}

/// A duration in milliseconds: `1h`, `30m` (see [`crate::position::parse_duration_ms`]) or
/// Kafka's ISO 8601 `PnDTnHnMnS`.
fn parse_duration(text: &str) -> Result<i64, String> {
    crate::position::parse_duration_ms(text)
        .or_else(|| crate::position::parse_iso_duration_ms(text))
        .ok_or_else(|| format!("expected a duration like 1h, 30m, 2d or PT1H, P1DT12H, got {text:?}"))
}

/// `sluice cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Brokers, controller, the partitions being moved (reassigned) and partition leaders.
    #[command(after_help = "Examples:\n  sluice cluster status\n  sluice cluster status --json")]
    Status {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Healthy or unhealthy, and why: a controller, every partition with a leader, no
    /// under-replicated partitions, no offline replicas. Exit code 0 healthy, 1 unhealthy.
    #[command(
        after_help = "Examples:\n  sluice cluster health && echo ok\n  sluice cluster health --watch 5\n  sluice cluster health --watch 1 --exit-when-healthy   # wait until a starting broker serves"
    )]
    Health {
        /// Check again every this many seconds until interrupted (exit code of the last check);
        /// a broker that does not answer is a verdict too (unhealthy), not the end.
        #[arg(long, value_name = "SECONDS")]
        watch: Option<u64>,
        /// With --watch: stop at the first healthy verdict (exit code 0). A script's way to
        /// wait for a broker that is starting.
        #[arg(long, requires = "watch")]
        exit_when_healthy: bool,
        /// Print one JSON object per check instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move leaderships back to preferred replicas, or elect leaders for offline partitions
    /// (Kafka's `kafka-leader-election`). Without --topic: every partition.
    #[command(after_help = "Examples:
  sluice cluster elect-leaders                       # every partition back to its preferred replica
  sluice cluster elect-leaders --topic orders --partition 0 --partition 3
  sluice cluster elect-leaders --type unclean --topic orders   # offline partitions: may lose records")]
    ElectLeaders {
        /// `preferred`: the first replica leads again if it is in sync. `unclean`: a partition
        /// without a live in-sync replica gets an out-of-sync one as leader, which loses the
        /// records it had not copied.
        #[arg(long = "type", value_enum, default_value = "preferred")]
        kind: ElectionKind,
        /// Only this topic's partitions.
        #[arg(long)]
        topic: Option<String>,
        /// Only these partitions of --topic (repeatable); all of them if not given.
        #[arg(long, requires = "topic")]
        partition: Vec<i32>,
    },
    /// The metadata quorum: leader, term, and each member (voter or observer) with how far
    /// its metadata log is (Kafka's `kafka-metadata-quorum describe`).
    #[command(after_help = "Examples:\n  sluice cluster quorum\n  sluice cluster quorum --json")]
    Quorum {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Give a broker a metadata vote (KIP-853 AddRaftVoter). The broker must be running: a
    /// broker started with an id not in --voters is an observer (a learner) until then.
    #[command(after_help = "Examples:\n  sluice cluster add-voter 4")]
    AddVoter {
        /// The broker id.
        id: i32,
    },
    /// Take a broker's metadata vote away (KIP-853 RemoveRaftVoter); it keeps serving as a
    /// broker and keeps receiving the metadata log as an observer.
    #[command(after_help = "Examples:\n  sluice cluster remove-voter 1")]
    RemoveVoter {
        /// The broker id.
        id: i32,
    },
    /// Move every replica away from a broker (a generated, rack-aware plan over the other live
    /// brokers), wait until the moves are done, then take its metadata vote away if it has one (as
    /// `remove-voter`; it stays an observer). The broker keeps running until it is stopped.
    #[command(
        after_help = "Examples:\n  sluice cluster decommission 3\n  sluice cluster decommission 3 --timeout 1800\n  sluice cluster decommission 3 --keep-vote"
    )]
    Decommission {
        /// The broker id.
        id: i32,
        /// Give up waiting after this many seconds (exit code 1; the moves go on).
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        timeout: u64,
        /// Leave the broker's metadata vote in place (only its replicas move).
        #[arg(long)]
        keep_vote: bool,
        /// Plan without racks even if the brokers have them (needed when only some brokers
        /// have a rack; otherwise replicas of a partition stay on distinct racks).
        #[arg(long)]
        disable_rack_aware: bool,
    },
    /// Even the replicas, disk bytes and preferred leaders over the live brokers: plan (shown
    /// as each broker's before -> after), move the replicas that must move, wait, then elect
    /// the preferred leaders. Rack aware: a partition's replicas stay on distinct racks (as
    /// evenly as the racks allow). Refused while a broker holding replicas is down.
    #[command(
        after_help = "Examples:\n  sluice cluster rebalance --dry-run\n  sluice cluster rebalance\n  sluice cluster rebalance --json --timeout 3600\n  sluice cluster rebalance --disable-rack-aware   # some brokers have no --rack"
    )]
    Rebalance {
        /// Show the plan (and Kafka's JSON of the partitions that would change); move nothing.
        #[arg(long)]
        dry_run: bool,
        /// One JSON object (loads before and after, the partitions that change) instead of text.
        #[arg(long)]
        json: bool,
        /// Give up waiting after this many seconds (exit code 1; the moves go on).
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        timeout: u64,
        /// Plan without racks even if the brokers have them (needed when only some brokers
        /// have a rack; otherwise replicas of a partition stay on distinct racks).
        #[arg(long)]
        disable_rack_aware: bool,
    },
}

/// `sluice cluster elect-leaders --type`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ElectionKind {
    /// Back to the preferred replica.
    Preferred,
    /// Out of the ISR if no member is live.
    Unclean,
}

/// `sluice bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Produce records as fast as allowed, or at a fixed rate; report throughput and
    /// acknowledgement latency percentiles.
    #[command(after_help = EXAMPLES_BENCH_PRODUCE)]
    Produce(BenchProduceArgs),
    /// Produce at a fixed rate records that carry their intended send time while one consumer
    /// reads them; report produce and produce-to-consume latency percentiles.
    #[command(after_help = EXAMPLES_BENCH_END_TO_END)]
    EndToEnd(BenchProduceArgs),
    /// Consume a topic from the beginning; report throughput and poll latency.
    #[command(after_help = "Examples:\n  sluice bench consume -t bench --json")]
    Consume(BenchConsumeArgs),
}

const EXAMPLES_BENCH_PRODUCE: &str = "Examples:
  sluice bench produce -t bench -n 1000000 -s 100 --acks all       # as fast as possible
  sluice bench produce -t bench --rate 50000 --duration 20 -s 1024  # fixed rate, latency from the intended send time
  sluice bench produce -t bench --rate-of-max 50 --duration 20      # 5 s at full speed, then 50% of what it reached
  sluice bench produce -t bench --workload omb --duration 20        # 1 KiB: produce and end-to-end at 50% and 90% of max";
const EXAMPLES_BENCH_END_TO_END: &str = "Examples:
  sluice bench end-to-end -t e2e --rate 20000 --duration 20 -s 1024
  sluice bench end-to-end -t e2e --rate-of-max 90 --duration 20 --acks 1";

/// Fixed-rate runs accept at most this many records per second in all: far above what one
/// client process reaches here (~0.5 M/s), low enough that the schedule's arithmetic in f64
/// nanoseconds stays exact to well under a microsecond over any run length.
pub const BENCH_RATE_MAX_RECORDS_PER_S: f64 = 100_000_000.0;
/// The longest `--duration` (and `--probe-secs`): one day. Bounds the schedule and says a
/// typo (`--duration 2000000`) is a mistake.
pub const BENCH_DURATION_MAX_S: f64 = 86_400.0;
/// `--probe-secs` default: how long `--rate-of-max` and `--workload omb` run at full speed to
/// measure the maximum throughput before the fixed-rate runs. Long enough to fill the
/// producer's buffers and batches several thousand times over, short enough to keep a
/// latency benchmark's total time dominated by the fixed-rate points.
pub const BENCH_PROBE_DEFAULT_S: f64 = 5.0;

/// `sluice bench produce` and `sluice bench end-to-end`
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("pace").args(["rate", "rate_of_max", "workload"])))]
pub struct BenchProduceArgs {
    /// Topic (created with `--partitions` if missing).
    #[arg(long, short = 't', default_value = "sluice-bench")]
    pub topic: String,
    /// Records in all (not with `--duration`).
    #[arg(long, short = 'n', default_value_t = 1_000_000, conflicts_with = "duration")]
    pub records: u64,
    /// Run for this many seconds instead of a record count: at a fixed rate, rate × duration
    /// records on the schedule; unbounded, as many as are sent in that time.
    #[arg(long, value_parser = parse_bench_seconds)]
    pub duration: Option<f64>,
    /// Value size in bytes (`end-to-end` needs at least 16: run id and intended send time).
    #[arg(long, short = 's', default_value_t = 100)]
    pub record_size: usize,
    /// Partitions when the topic is created.
    #[arg(long, short = 'p', default_value_t = 4)]
    pub partitions: i32,
    /// Concurrent producers (each with its own connections; a fixed rate is split evenly).
    #[arg(long, default_value_t = 1)]
    pub producers: u32,
    /// Fixed rate: records per second in all. Each record has an intended send time on this
    /// schedule and its latency is measured from that time, so a stall delays and counts
    /// against every record behind it (no coordinated omission). Default: unlimited, latency
    /// from the call to `send`.
    #[arg(long, value_parser = parse_bench_rate)]
    pub rate: Option<f64>,
    /// Fixed rate at this percentage (1–100) of the maximum, measured first by a
    /// `--probe-secs` run at full speed into the same topic.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub rate_of_max: Option<u8>,
    /// Seconds of the full-speed run that measures the maximum for `--rate-of-max` and
    /// `--workload`.
    #[arg(long, default_value_t = BENCH_PROBE_DEFAULT_S, value_parser = parse_bench_seconds)]
    pub probe_secs: f64,
    /// A preset series. `omb` (like the OpenMessaging Benchmark's workloads): 1 KiB records;
    /// the maximum measured first, then produce and end-to-end at 50% and 90% of it, each for
    /// `--duration` seconds (default 30).
    #[arg(long, value_enum, conflicts_with_all = ["records", "record_size"])]
    pub workload: Option<WorkloadArg>,
    /// Print one JSON object per result line instead of text.
    #[arg(long)]
    pub json: bool,
    /// The client id the producers send (Kafka's `client.id`; quotas apply per client id).
    #[arg(long, default_value = "sluice-cli")]
    pub client_id: String,
    #[command(flatten)]
    pub producer: ProducerArgs,
}

/// `--workload` presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadArg {
    /// 1 KiB records; produce and end-to-end at 50% and 90% of the measured maximum.
    Omb,
}

/// A rate in records per second: positive, finite, at most [`BENCH_RATE_MAX_RECORDS_PER_S`].
fn parse_bench_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= BENCH_RATE_MAX_RECORDS_PER_S => Ok(rate),
        _ => {
            Err(format!("expected records per second above 0 and at most {BENCH_RATE_MAX_RECORDS_PER_S}, got {text:?}"))
        }
    }
}

/// Seconds: positive, finite, at most [`BENCH_DURATION_MAX_S`].
fn parse_bench_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= BENCH_DURATION_MAX_S => Ok(seconds),
        _ => Err(format!("expected seconds above 0 and at most {BENCH_DURATION_MAX_S}, got {text:?}")),
    }
}

/// `sluice bench consume`
#[derive(Debug, Args)]
pub struct BenchConsumeArgs {
    /// Topic.
    #[arg(long, short = 't', default_value = "sluice-bench")]
    pub topic: String,
    /// Records to read (default: everything up to the end offsets at the start).
    #[arg(long, short = 'n')]
    pub records: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--acks` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AcksArg {
    /// No acknowledgement.
    #[value(name = "0")]
    Zero,
    /// The leader.
    #[value(name = "1")]
    One,
    /// Every in-sync replica.
    All,
}

impl From<AcksArg> for Acks {
    fn from(value: AcksArg) -> Acks {
        match value {
            AcksArg::Zero => Acks::None,
            AcksArg::One => Acks::Leader,
            AcksArg::All => Acks::All,
        }
    }
}

/// `--compression` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// None.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(value: CompressionArg) -> Compression {
        match value {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

impl ProducerArgs {
    /// The producer configuration these flags describe.
    pub fn config(&self) -> sluice_client::ProducerConfig {
        let acks: Acks = self.acks.into();
        sluice_client::ProducerConfig {
            acks,
            idempotence: acks == Acks::All && !self.no_idempotence,
            compression: self.compression.into(),
            batch_size_bytes: self.batch_size,
            batch_size_max_bytes: self.batch_size_max,
            linger: std::time::Duration::from_millis(self.linger_ms),
            request_bytes_max: self.max_request_size,
            ..sluice_client::ProducerConfig::default()
        }
    }
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected key=value, got {text:?}")),
    }
}

/// `sluice quota`.
#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Set quota values of one entity (the others it has stay).
    #[command(
        after_help = "Examples:\n  sluice quota set --client-id app --producer-byte-rate 1048576\n  sluice quota set --default-user --consumer-byte-rate 10485760"
    )]
    Set {
        #[command(flatten)]
        entity: QuotaEntityArgs,
        /// Bytes per second of produced record data.
        #[arg(long, value_name = "BYTES")]
        producer_byte_rate: Option<u64>,
        /// Bytes per second of fetched record data.
        #[arg(long, value_name = "BYTES")]
        consumer_byte_rate: Option<u64>,
        /// Percentage of one request-handling thread (recorded; not enforced by Sluice yet).
        #[arg(long, value_name = "PERCENT")]
        request_percentage: Option<f64>,
    },
    /// Remove quota values of one entity.
    #[command(after_help = "Examples:\n  sluice quota remove --client-id app --producer-byte-rate")]
    Remove {
        #[command(flatten)]
        entity: QuotaEntityArgs,
        /// Remove producer_byte_rate.
        #[arg(long)]
        producer_byte_rate: bool,
        /// Remove consumer_byte_rate.
        #[arg(long)]
        consumer_byte_rate: bool,
        /// Remove request_percentage.
        #[arg(long)]
        request_percentage: bool,
    },
    /// List every quota entity and its values.
    #[command(after_help = "Examples:\n  sluice quota list\n  sluice quota list --json")]
    List {
        /// Print one JSON object per entity instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Whom a quota applies to: a user and/or a client id, each named or the default.
#[derive(Debug, Clone, clap::Args)]
pub struct QuotaEntityArgs {
    /// The user (the SASL user name; `ANONYMOUS` on a PLAINTEXT listener).
    #[arg(long, conflicts_with = "default_user")]
    pub user: Option<String>,
    /// The default user: every user without a quota of its own.
    #[arg(long)]
    pub default_user: bool,
    /// The client id.
    #[arg(long, conflicts_with = "default_client_id")]
    pub client_id: Option<String>,
    /// The default client id: every client id without a quota of its own.
    #[arg(long)]
    pub default_client_id: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_targets_need_exactly_one_flag() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut args = vec!["sluice", "group", "reset-offsets", "g", "--topic", "t"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
        };
        let target = |extra: &[&str]| match parse(extra).unwrap().command {
            Command::Group(GroupCommand::ResetOffsets(args)) => args.target(10_000_000),
            other => panic!("{other:?}"),
        };
        assert_eq!(target(&["--to-earliest"]), OffsetTarget::Earliest);
        assert_eq!(target(&["--to-latest"]), OffsetTarget::Latest);
        assert_eq!(target(&["--shift-by", "-3"]), OffsetTarget::ShiftBy(-3));
        assert_eq!(target(&["--to-offset", "7"]), OffsetTarget::Offset(7));
        assert_eq!(target(&["--to-datetime", "1970-01-01T00:00:01Z"]), OffsetTarget::Timestamp(1000));
        assert!(parse(&[]).is_err(), "a target is required");
        assert_eq!(target(&["--to-current"]), OffsetTarget::Current);
        assert_eq!(target(&["--by-duration", "1h"]), OffsetTarget::Timestamp(10_000_000 - 3_600_000));
        assert_eq!(target(&["--by-duration", "PT1H"]), OffsetTarget::Timestamp(10_000_000 - 3_600_000));
        assert!(parse(&["--by-duration", "an hour"]).is_err());
        assert!(parse(&["--to-earliest", "--to-latest"]).is_err(), "only one target");
        assert!(Cli::try_parse_from(["sluice", "group", "reset-offsets", "g", "--to-earliest"]).is_err(), "a scope");
        let both = ["sluice", "group", "reset-offsets", "g", "-t", "t", "--all-topics", "--to-earliest"];
        assert!(Cli::try_parse_from(both).is_err(), "-t or --all-topics");
    }

    #[test]
    fn topics_take_a_partition_list() {
        let all = TopicPartitions { topic: "t".to_string(), partitions: None };
        assert_eq!(parse_topic_partitions("t"), Ok(all));
        let some = TopicPartitions { topic: "t".to_string(), partitions: Some(vec![0, 2]) };
        assert_eq!(parse_topic_partitions("t:0,2"), Ok(some));
        assert!(parse_topic_partitions("t:x").is_err());
        assert!(parse_topic_partitions("t:-1").is_err());
        assert!(parse_topic_partitions("t:").is_err());
    }

    #[test]
    fn key_values_parse() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".to_string(), "b=c".to_string())));
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }

    #[test]
    fn acl_flags_parse_like_kafka_acls() {
        use clap::Parser;
        use sluice_client::admin::{AclOperation, AclPatternFilter, AclPatternType, AclResourceType};
        let parse = |args: &[&str]| Cli::try_parse_from([&["sluice", "acl"][..], args].concat());
        let add = [
            "add",
            "--allow-principal",
            "User:alice",
            "--allow-principal",
            "User:bob",
            "--operation",
            "read",
            "--operation",
            "DescribeConfigs",
            "--topic",
            "orders",
            "--cluster",
            "--resource-pattern-type",
            "PREFIXED",
        ];
        match parse(&add).unwrap().command {
            Command::Acl(AclCommand::Add { principals, operations, resources, resource_pattern_type }) => {
                assert_eq!(principals.allow_principals, ["User:alice", "User:bob"]);
                assert!(principals.deny_principals.is_empty() && principals.allow_hosts.is_empty());
                assert_eq!(operations, [AclOperation::Read, AclOperation::DescribeConfigs]);
                assert_eq!(
                    resources.resources(),
                    [
                        (AclResourceType::Topic, "orders".to_string()),
                        (AclResourceType::Cluster, "kafka-cluster".to_string())
                    ]
                );
                assert_eq!(resource_pattern_type, AclPatternType::Prefixed);
            }
            other => panic!("{other:?}"),
        }
        let minimal = ["add", "--deny-principal", "User:x", "--operation", "all", "--group", "g"];
        match parse(&minimal).unwrap().command {
            Command::Acl(AclCommand::Add { resource_pattern_type, .. }) => {
                assert_eq!(resource_pattern_type, AclPatternType::Literal, "the default");
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["add", "--allow-principal", "User:a", "--topic", "t"]).is_err(), "an operation");
        assert!(parse(&["add", "--allow-principal", "alice", "--operation", "read", "--topic", "t"]).is_err());
        assert!(parse(&["add", "--allow-principal", "User:a", "--operation", "reed", "--topic", "t"]).is_err());
        let any_pattern = ["add", "--allow-principal", "User:a", "--operation", "read", "--topic", "t"];
        assert!(parse(&[&any_pattern[..], &["--resource-pattern-type", "any"]].concat()).is_err(), "literal|prefixed");
        let stray_host =
            ["add", "--deny-principal", "User:a", "--allow-host", "h", "--operation", "read", "--topic", "t"];
        assert!(parse(&stray_host).is_err(), "--allow-host needs --allow-principal");

        match parse(&["remove", "--transactional-id", "tx", "--resource-pattern-type", "match"]).unwrap().command {
            Command::Acl(AclCommand::Remove { principals, operations, resources, resource_pattern_type, json }) => {
                assert!(principals.allow_principals.is_empty() && operations.is_empty() && !json);
                assert_eq!(resources.resources(), [(AclResourceType::TransactionalId, "tx".to_string())]);
                assert_eq!(resource_pattern_type, AclPatternFilter::Match);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["list", "--principal", "User:alice", "--json"]).unwrap().command {
            Command::Acl(AclCommand::List { principals, resources, resource_pattern_type, json }) => {
                assert_eq!(principals, ["User:alice"]);
                assert!(resources.resources().is_empty() && resource_pattern_type.is_none() && json);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_examples_in_its_help() {
        fn check(command: &clap::Command, path: &str) {
            let help = command.get_after_help().map(|text| text.to_string()).unwrap_or_default();
            assert!(help.starts_with("Examples:\n  "), "`{path}` has no examples");
            for sub in command.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        use clap::CommandFactory;
        check(&Cli::command(), "sluice");
    }
}
