//! Command-line arguments (clap derive). Every default is stated in its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sluice_client::{Acks, Compression};

/// Sluice command line: topics, produce, consume, cluster status, benchmarks.
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
}

/// `sluice cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Brokers, controller and partition leaders.
    Status,
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
