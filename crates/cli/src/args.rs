//! Command-line arguments (clap derive). Every default is stated in its help text.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use sluice_client::admin::OffsetTarget;
use sluice_client::{Acks, Compression};

/// Sluice command line: topics, produce, consume, consumer groups, cluster status, benchmarks.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
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
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, describe, alter and delete topics.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Produce records from stdin (one per line) or a file.
    Produce(ProduceArgs),
    /// Consume records and print them.
    Consume(ConsumeArgs),
    /// List, describe (with lag), reset the offsets of and delete consumer groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Cluster information.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Measure produce or consume throughput and latency.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `sluice topic ...`
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Partition count.
        #[arg(long, short = 'p', default_value_t = 1)]
        partitions: i32,
        /// Replication factor.
        #[arg(long, short = 'r', default_value_t = 1)]
        replication_factor: i16,
        /// Topic config, `name=value` (repeatable).
        #[arg(long = "config", short = 'c', value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics.
    List,
    /// Show a topic's partitions (leader, replicas, ISR) and its non-default configs.
    Describe {
        /// Topic name.
        name: String,
    },
    /// Delete a topic.
    Delete {
        /// Topic name.
        name: String,
    },
    /// Change a topic: add partitions, set or reset configs.
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
    /// Time a batch waits for more records, in milliseconds.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Disable idempotence (implied by acks 0 or 1).
    #[arg(long)]
    pub no_idempotence: bool,
}

/// `sluice produce`
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic.
    pub topic: String,
    /// Split each line into key and value at the first occurrence of this string (a line
    /// without it is a value with a null key).
    #[arg(long, short = 'K')]
    pub key_separator: Option<String>,
    /// Read lines from this file instead of stdin.
    #[arg(long, short = 'f')]
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

/// Where `consume` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The log start.
    Beginning,
    /// The log end (new records only).
    End,
    /// An offset.
    Offset(i64),
    /// The first record at or after a timestamp (ms since the epoch).
    Timestamp(i64),
}

/// Output formats of `consume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// The value only.
    Value,
    /// Key, separator, value.
    KeyValue,
    /// One JSON object per record (topic, partition, offset, timestamp, key, value, headers).
    Json,
}

/// `sluice consume`
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic.
    pub topic: String,
    /// Start: `beginning`, `end`, `offset:N` or `timestamp:MS`.
    #[arg(long, default_value = "end", value_parser = parse_start)]
    pub from: StartFrom,
    /// Only this partition (default: all).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    pub max_messages: Option<u64>,
    /// Stop when no record arrived for this many milliseconds (default: wait forever).
    #[arg(long)]
    pub idle_timeout_ms: Option<u64>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "value")]
    pub output: OutputFormat,
    /// Separator between key and value in `key-value` output.
    #[arg(long, default_value = "\t")]
    pub key_separator: String,
    /// Consume as a member of this consumer group: the group assigns the partitions, each
    /// starts at the group's committed offset (`--from beginning|end` only for partitions
    /// without one), and what is printed is committed as it goes.
    #[arg(long, short = 'g', conflicts_with = "partition")]
    pub group: Option<String>,
}

/// `sluice group ...`
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List the consumer groups of every broker.
    List {
        /// Print one JSON object per group instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a group's state and members, and per partition its committed offset, log end
    /// offset and lag.
    Describe {
        /// Group id.
        group: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move a group's committed offsets of a topic (refused while the group has active
    /// members); prints the new offsets.
    ResetOffsets(ResetOffsetsArgs),
    /// Delete a group and its committed offsets (refused while it has active members).
    Delete {
        /// Group id.
        group: String,
    },
}

/// `sluice group reset-offsets`
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_datetime", "to_offset", "shift_by"])
))]
pub struct ResetOffsetsArgs {
    /// Group id.
    pub group: String,
    /// Topic whose partitions (all of them) are reset.
    #[arg(long, short = 't')]
    pub topic: String,
    /// To the log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the log end offset.
    #[arg(long)]
    pub to_latest: bool,
    /// To the first record at or after this time: RFC 3339 (`2024-05-01T12:00:00Z`,
    /// `2024-05-01T14:00:00+02:00`) or milliseconds since the epoch.
    #[arg(long, value_parser = parse_datetime)]
    pub to_datetime: Option<i64>,
    /// To this offset.
    #[arg(long)]
    pub to_offset: Option<i64>,
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

impl ResetOffsetsArgs {
    /// The target the flags name (clap makes exactly one present).
    pub fn target(&self) -> OffsetTarget {
        match (self.to_datetime, self.to_offset, self.shift_by) {
            (Some(timestamp_ms), _, _) => OffsetTarget::Timestamp(timestamp_ms),
            (_, Some(offset), _) => OffsetTarget::Offset(offset),
            (_, _, Some(delta)) => OffsetTarget::ShiftBy(delta),
            _ if self.to_earliest => OffsetTarget::Earliest,
            _ => OffsetTarget::Latest,
        }
    }
}

/// `sluice cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Brokers, controller and partition leaders.
    Status,
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
    /// Produce records as fast as allowed; report throughput and acknowledgement latency.
    Produce(BenchProduceArgs),
    /// Consume a topic from the beginning; report throughput and poll latency.
    Consume(BenchConsumeArgs),
}

/// `sluice bench produce`
#[derive(Debug, Args)]
pub struct BenchProduceArgs {
    /// Topic (created with `--partitions` if missing).
    #[arg(long, short = 't', default_value = "sluice-bench")]
    pub topic: String,
    /// Records in all.
    #[arg(long, short = 'n', default_value_t = 1_000_000)]
    pub records: u64,
    /// Value size in bytes.
    #[arg(long, short = 's', default_value_t = 100)]
    pub record_size: usize,
    /// Partitions when the topic is created.
    #[arg(long, short = 'p', default_value_t = 4)]
    pub partitions: i32,
    /// Concurrent producers (each with its own connections).
    #[arg(long, default_value_t = 1)]
    pub producers: u32,
    /// Records per second in all (default: unlimited).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub producer: ProducerArgs,
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
            linger: std::time::Duration::from_millis(self.linger_ms),
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

/// Milliseconds since the epoch, given as such or as an RFC 3339 date-time.
fn parse_datetime(text: &str) -> Result<i64, String> {
    if let Ok(millis) = text.parse::<i64>() {
        return Ok(millis);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|datetime| datetime.timestamp_millis())
        .map_err(|error| format!("expected an RFC 3339 date-time or epoch milliseconds, got {text:?} ({error})"))
}

fn parse_start(text: &str) -> Result<StartFrom, String> {
    let number =
        |value: &str, what: &str| value.parse::<i64>().map_err(|_| format!("{what} must be an integer, got {value:?}"));
    match text.split_once(':') {
        None if text == "beginning" => Ok(StartFrom::Beginning),
        None if text == "end" => Ok(StartFrom::End),
        Some(("offset", value)) => Ok(StartFrom::Offset(number(value, "offset")?)),
        Some(("timestamp", value)) => Ok(StartFrom::Timestamp(number(value, "timestamp")?)),
        _ => Err(format!("expected beginning, end, offset:N or timestamp:MS, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse() {
        assert_eq!(parse_start("beginning"), Ok(StartFrom::Beginning));
        assert_eq!(parse_start("end"), Ok(StartFrom::End));
        assert_eq!(parse_start("offset:42"), Ok(StartFrom::Offset(42)));
        assert_eq!(parse_start("timestamp:1700000000000"), Ok(StartFrom::Timestamp(1_700_000_000_000)));
        assert!(parse_start("offset:x").is_err());
        assert!(parse_start("middle").is_err());
    }

    #[test]
    fn datetimes_parse_as_rfc3339_or_epoch_milliseconds() {
        assert_eq!(parse_datetime("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_datetime("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_datetime("2023-11-14T23:13:20.5+01:00"), Ok(1_700_000_000_500));
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("2023-11-14").is_err());
    }

    #[test]
    fn reset_targets_need_exactly_one_flag() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut args = vec!["sluice", "group", "reset-offsets", "g", "--topic", "t"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
        };
        let target = |extra: &[&str]| match parse(extra).unwrap().command {
            Command::Group(GroupCommand::ResetOffsets(args)) => args.target(),
            other => panic!("{other:?}"),
        };
        assert_eq!(target(&["--to-earliest"]), OffsetTarget::Earliest);
        assert_eq!(target(&["--to-latest"]), OffsetTarget::Latest);
        assert_eq!(target(&["--shift-by", "-3"]), OffsetTarget::ShiftBy(-3));
        assert_eq!(target(&["--to-offset", "7"]), OffsetTarget::Offset(7));
        assert_eq!(target(&["--to-datetime", "1970-01-01T00:00:01Z"]), OffsetTarget::Timestamp(1000));
        assert!(parse(&[]).is_err(), "a target is required");
        assert!(parse(&["--to-earliest", "--to-latest"]).is_err(), "only one target");
    }

    #[test]
    fn key_values_parse() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".to_string(), "b=c".to_string())));
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
