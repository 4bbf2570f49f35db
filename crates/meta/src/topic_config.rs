//! Per-topic configuration: the keys Sluice understands, their Kafka names, defaults and valid
//! ranges.
//!
//! A topic stores the overrides it was created or altered with (as strings, like Kafka, so that
//! DescribeConfigs can tell a default from an override) and the resolved, typed [`TopicConfig`].
//! Both are validated when the command is applied; an invalid value rejects the whole command.
//!
//! The flush policy uses Kafka's two keys: `flush.messages` (fsync after this many messages;
//! `1` means every batch) and `flush.ms` (fsync at least this often). Their defaults, like
//! Kafka's, are `i64::MAX`: leave flushing to the OS and rely on replication for durability.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::Serialize;

use crate::error::CommandError;
use crate::limits::TOPIC_CONFIG_ENTRIES_MAX;

/// `retention.ms`: age after which a closed segment is deleted; `-1` keeps forever.
pub const RETENTION_MS: &str = "retention.ms";
/// `retention.bytes`: partition size above which the oldest segments are deleted; `-1` unlimited.
pub const RETENTION_BYTES: &str = "retention.bytes";
/// `segment.bytes`: a segment rolls once it reaches this size.
pub const SEGMENT_BYTES: &str = "segment.bytes";
/// `segment.ms`: a segment rolls once it is this old.
pub const SEGMENT_MS: &str = "segment.ms";
/// `cleanup.policy`: `delete`, `compact` or `compact,delete`.
pub const CLEANUP_POLICY: &str = "cleanup.policy";
/// `min.insync.replicas`: in-sync replicas an acks=all produce needs.
pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";
/// `flush.messages`: fsync after this many messages (`1` = every batch).
pub const FLUSH_MESSAGES: &str = "flush.messages";
/// `flush.ms`: fsync at least every this many milliseconds.
pub const FLUSH_MS: &str = "flush.ms";
/// `max.message.bytes`: largest record batch the partition accepts.
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";

/// `message.timestamp.type`: `CreateTime` (the producer's clock) or `LogAppendTime` (the
/// leader's).
pub const MESSAGE_TIMESTAMP_TYPE: &str = "message.timestamp.type";
/// `message.timestamp.difference.max.ms` (deprecated by Kafka 3.6): the fallback of both
/// bounds below when they are left at their default.
pub const MESSAGE_TIMESTAMP_DIFFERENCE_MAX_MS: &str = "message.timestamp.difference.max.ms";
/// `message.timestamp.before.max.ms`: with `CreateTime`, how far a record's timestamp may lie
/// before the leader's clock.
pub const MESSAGE_TIMESTAMP_BEFORE_MAX_MS: &str = "message.timestamp.before.max.ms";
/// `message.timestamp.after.max.ms`: with `CreateTime`, how far a record's timestamp may lie
/// after the leader's clock.
pub const MESSAGE_TIMESTAMP_AFTER_MAX_MS: &str = "message.timestamp.after.max.ms";

/// `unclean.leader.election.enable`: when no in-sync replica is live, the controller may elect
/// an out-of-sync one (losing what it had not copied) rather than leave the partition offline.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";
/// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the ISR. Kafka has
/// it as a broker setting only; Sluice also takes it per topic.
pub const REPLICA_LAG_TIME_MAX_MS: &str = "replica.lag.time.max.ms";

/// The keys whose default comes from the broker's own setting of the same name (Kafka's
/// `STATIC_BROKER_CONFIG` source) when a topic does not override them: the typed default in
/// [`TopicConfig::default`] is Kafka's, the broker flag may change it.
pub const BROKER_DEFAULTED_KEYS: [&str; 3] =
    [MIN_INSYNC_REPLICAS, UNCLEAN_LEADER_ELECTION_ENABLE, REPLICA_LAG_TIME_MAX_MS];

/// Every topic configuration key Sluice accepts, in a stable order.
pub const TOPIC_CONFIG_KEYS: [&str; 15] = [
    RETENTION_MS,
    RETENTION_BYTES,
    SEGMENT_BYTES,
    SEGMENT_MS,
    CLEANUP_POLICY,
    MIN_INSYNC_REPLICAS,
    FLUSH_MESSAGES,
    FLUSH_MS,
    MAX_MESSAGE_BYTES,
    MESSAGE_TIMESTAMP_TYPE,
    MESSAGE_TIMESTAMP_DIFFERENCE_MAX_MS,
    MESSAGE_TIMESTAMP_BEFORE_MAX_MS,
    MESSAGE_TIMESTAMP_AFTER_MAX_MS,
    UNCLEAN_LEADER_ELECTION_ENABLE,
    REPLICA_LAG_TIME_MAX_MS,
];

/// The kind of value a topic config takes, as Kafka's `ConfigDef.Type` names it; how
/// DescribeConfigs types the key and how an override-only value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigValueKind {
    /// A 64-bit integer at least `min`.
    Long { min: i64 },
    /// A 32-bit integer in `min..=max`.
    Int { min: i32, max: i32 },
    /// A fraction in `0.0..=1.0` (Kafka's DOUBLE with that range).
    Ratio,
    /// `true` or `false`, case-insensitive.
    Bool,
    /// One of Kafka's compression type names (a STRING in Kafka).
    CompressionType,
    /// Kafka's throttled-replica list: `*`, empty, or `partition:broker` pairs (a LIST).
    ThrottledReplicas,
    /// `remote.storage.enable`: a BOOLEAN that Sluice accepts only as `false`, as Kafka does on
    /// a broker without tiered storage.
    RemoteStorage,
}

/// A Kafka topic config that Sluice holds only in a topic's overrides, with no field in
/// [`TopicConfig`] (whose layout is part of the metadata's on-disk and RPC format): accepted on
/// CreateTopics and AlterConfigs, checked as Kafka checks it, stored as an override and listed
/// in DescribeConfigs with Kafka's default. Most of them the broker acts on, reading them from
/// the overrides: the storage and produce settings through [`TopicLogSettings`], the two
/// throttled-replica lists in the replication throttle. The rest (`inert`) have no effect:
/// tiered storage, `preallocate`, `file.delete.delay.ms`. Accepting them lets clients that set
/// them (Kafka Streams, Connect, `kafka-configs`) work unchanged; tests/known-differences.md
/// lists the inert ones.
#[derive(Debug, Clone, Copy)]
pub struct OverrideTopicConfig {
    /// The Kafka name.
    pub key: &'static str,
    /// Kafka 4.1's default, in its string form: what DescribeConfigs shows without an override.
    pub kafka_default: &'static str,
    /// What a value must look like.
    pub kind: ConfigValueKind,
    /// Sluice accepts and describes it but does not act on it.
    pub inert: bool,
}

/// Every Kafka 4.1 topic config that Sluice holds only as an override, by name (the rest of
/// Kafka 4.1's topic configs are [`TOPIC_CONFIG_KEYS`]).
pub const OVERRIDE_TOPIC_CONFIGS: [OverrideTopicConfig; 20] = {
    use ConfigValueKind::*;
    const fn acted(key: &'static str, kafka_default: &'static str, kind: ConfigValueKind) -> OverrideTopicConfig {
        OverrideTopicConfig { key, kafka_default, kind, inert: false }
    }
    const fn inert(key: &'static str, kafka_default: &'static str, kind: ConfigValueKind) -> OverrideTopicConfig {
        OverrideTopicConfig { key, kafka_default, kind, inert: true }
    }
    [
        acted(COMPRESSION_TYPE, "producer", CompressionType),
        acted(COMPRESSION_GZIP_LEVEL, "-1", Int { min: -1, max: 9 }),
        acted(COMPRESSION_LZ4_LEVEL, "9", Int { min: 1, max: 17 }),
        acted(COMPRESSION_ZSTD_LEVEL, "3", Int { min: -131_072, max: 22 }),
        acted(DELETE_RETENTION_MS, "86400000", Long { min: 0 }),
        inert("file.delete.delay.ms", "60000", Long { min: 0 }),
        acted("follower.replication.throttled.replicas", "", ThrottledReplicas),
        acted(INDEX_INTERVAL_BYTES, "4096", Int { min: 0, max: i32::MAX }),
        acted("leader.replication.throttled.replicas", "", ThrottledReplicas),
        inert("local.retention.bytes", "-2", Long { min: -2 }),
        inert("local.retention.ms", "-2", Long { min: -2 }),
        acted(MAX_COMPACTION_LAG_MS, "9223372036854775807", Long { min: 1 }),
        acted(MIN_CLEANABLE_DIRTY_RATIO, "0.5", Ratio),
        acted(MIN_COMPACTION_LAG_MS, "0", Long { min: 0 }),
        inert("preallocate", "false", Bool),
        inert("remote.log.copy.disable", "false", Bool),
        inert("remote.log.delete.on.disable", "false", Bool),
        inert("remote.storage.enable", "false", RemoteStorage),
        acted(SEGMENT_INDEX_BYTES, "10485760", Int { min: 4, max: i32::MAX }),
        acted(SEGMENT_JITTER_MS, "0", Long { min: 0 }),
    ]
};

// Every known key can be given at once without passing the entry limit.
const _: () = assert!(TOPIC_CONFIG_KEYS.len() + OVERRIDE_TOPIC_CONFIGS.len() <= TOPIC_CONFIG_ENTRIES_MAX);

/// The override-only config named `key`, if it is one.
pub fn override_topic_config(key: &str) -> Option<&'static OverrideTopicConfig> {
    OVERRIDE_TOPIC_CONFIGS.iter().find(|config| config.key == key)
}

/// Every topic config key Sluice accepts: those in [`TopicConfig`], then the override-only ones.
pub fn all_topic_config_keys() -> impl Iterator<Item = &'static str> {
    TOPIC_CONFIG_KEYS.iter().copied().chain(OVERRIDE_TOPIC_CONFIGS.iter().map(|config| config.key))
}

/// `compression.type`: the codec the leader stores produced batches with (`producer` keeps
/// each as produced).
pub const COMPRESSION_TYPE: &str = "compression.type";
/// `compression.gzip.level`: the level of broker-side gzip.
pub const COMPRESSION_GZIP_LEVEL: &str = "compression.gzip.level";
/// `compression.lz4.level`: the level of broker-side lz4.
pub const COMPRESSION_LZ4_LEVEL: &str = "compression.lz4.level";
/// `compression.zstd.level`: the level of broker-side zstd.
pub const COMPRESSION_ZSTD_LEVEL: &str = "compression.zstd.level";
/// `delete.retention.ms`: how long compaction keeps a tombstone.
pub const DELETE_RETENTION_MS: &str = "delete.retention.ms";
/// `index.interval.bytes`: bytes between two offset-index entries.
pub const INDEX_INTERVAL_BYTES: &str = "index.interval.bytes";
/// `max.compaction.lag.ms`: a record stays uncompacted at most this long.
pub const MAX_COMPACTION_LAG_MS: &str = "max.compaction.lag.ms";
/// `min.cleanable.dirty.ratio`: the share of uncompacted bytes that makes a log due.
pub const MIN_CLEANABLE_DIRTY_RATIO: &str = "min.cleanable.dirty.ratio";
/// `min.compaction.lag.ms`: a record stays uncompacted at least this long.
pub const MIN_COMPACTION_LAG_MS: &str = "min.compaction.lag.ms";
/// `segment.index.bytes`: the preallocated size of each segment index.
pub const SEGMENT_INDEX_BYTES: &str = "segment.index.bytes";
/// `segment.jitter.ms`: the most a segment's age limit is shortened at random.
pub const SEGMENT_JITTER_MS: &str = "segment.jitter.ms";

/// A topic's `compression.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// Keep each batch as the producer compressed it (`producer`).
    Producer,
    /// `uncompressed`.
    Uncompressed,
    /// `gzip`.
    Gzip,
    /// `snappy`.
    Snappy,
    /// `lz4`.
    Lz4,
    /// `zstd`.
    Zstd,
}

/// The override-only configs the broker's storage and produce path act on, typed, with
/// Kafka's defaults for those the topic does not override ([`TopicLogSettings::from_overrides`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicLogSettings {
    /// `compression.type`.
    pub compression_type: CompressionType,
    /// `compression.gzip.level` (-1: the codec's default).
    pub compression_gzip_level: i32,
    /// `compression.lz4.level`.
    pub compression_lz4_level: i32,
    /// `compression.zstd.level`.
    pub compression_zstd_level: i32,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// `index.interval.bytes`.
    pub index_interval_bytes: i32,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `segment.index.bytes`.
    pub segment_index_bytes: i32,
    /// `segment.jitter.ms`.
    pub segment_jitter_ms: i64,
}

impl Default for TopicLogSettings {
    /// Kafka 4.1's defaults.
    fn default() -> Self {
        TopicLogSettings::from_overrides(&BTreeMap::new())
    }
}

impl TopicLogSettings {
    /// Reads the settings from a topic's overrides. Every override was checked when it was set
    /// ([`TopicConfig::set`]); one that does not parse (none should) counts as Kafka's default.
    pub fn from_overrides(overrides: &BTreeMap<String, String>) -> TopicLogSettings {
        fn value<T: std::str::FromStr>(overrides: &BTreeMap<String, String>, key: &str) -> T
        where
            T::Err: fmt::Debug,
        {
            let default = override_topic_config(key).expect("an override-only key").kafka_default;
            overrides
                .get(key)
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or_else(|| default.parse().expect("Kafka's default parses"))
        }
        let compression_type = match overrides.get(COMPRESSION_TYPE).map(|value| value.trim()) {
            Some("uncompressed") => CompressionType::Uncompressed,
            Some("gzip") => CompressionType::Gzip,
            Some("snappy") => CompressionType::Snappy,
            Some("lz4") => CompressionType::Lz4,
            Some("zstd") => CompressionType::Zstd,
            _ => CompressionType::Producer,
        };
        TopicLogSettings {
            compression_type,
            compression_gzip_level: value(overrides, COMPRESSION_GZIP_LEVEL),
            compression_lz4_level: value(overrides, COMPRESSION_LZ4_LEVEL),
            compression_zstd_level: value(overrides, COMPRESSION_ZSTD_LEVEL),
            delete_retention_ms: value(overrides, DELETE_RETENTION_MS),
            index_interval_bytes: value(overrides, INDEX_INTERVAL_BYTES),
            max_compaction_lag_ms: value(overrides, MAX_COMPACTION_LAG_MS),
            min_cleanable_dirty_ratio: value(overrides, MIN_CLEANABLE_DIRTY_RATIO),
            min_compaction_lag_ms: value(overrides, MIN_COMPACTION_LAG_MS),
            segment_index_bytes: value(overrides, SEGMENT_INDEX_BYTES),
            segment_jitter_ms: value(overrides, SEGMENT_JITTER_MS),
        }
    }
}

/// Kafka's compression type names (`compression.type`).
const COMPRESSION_TYPES: [&str; 6] = ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

impl OverrideTopicConfig {
    /// Checks `value` as Kafka's ConfigDef would for this key.
    fn validate(&self, value: &str) -> Result<(), CommandError> {
        let trimmed = value.trim();
        match self.kind {
            ConfigValueKind::Long { min } => parse_i64(self.key, value, min).map(drop),
            ConfigValueKind::Int { min, max } => {
                let parsed = parse_i32(self.key, value, i64::from(min))?;
                if parsed > max {
                    return Err(invalid(self.key, value, format!("must be at most {max}")));
                }
                Ok(())
            }
            ConfigValueKind::Ratio => match trimmed.parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(()),
                _ => Err(invalid(self.key, value, "expected a number from 0 to 1".to_string())),
            },
            ConfigValueKind::Bool => parse_bool(self.key, value).map(drop),
            ConfigValueKind::RemoteStorage => match parse_bool(self.key, value)? {
                false => Ok(()),
                true => Err(invalid(self.key, value, "Sluice has no tiered storage".to_string())),
            },
            ConfigValueKind::CompressionType => {
                if COMPRESSION_TYPES.contains(&trimmed) {
                    Ok(())
                } else {
                    Err(invalid(self.key, value, format!("expected one of {}", COMPRESSION_TYPES.join(", "))))
                }
            }
            ConfigValueKind::ThrottledReplicas => {
                let pair = |item: &str| {
                    item.split_once(':').is_some_and(|(partition, broker)| {
                        partition.trim().parse::<u32>().is_ok() && broker.trim().parse::<u32>().is_ok()
                    })
                };
                if trimmed.is_empty() || trimmed == "*" || trimmed.split(',').all(pair) {
                    Ok(())
                } else {
                    Err(invalid(self.key, value, "expected *, or partition:broker pairs".to_string()))
                }
            }
        }
    }
}

/// Smallest `segment.bytes`, Kafka 3.x's (the size of an empty legacy record); the log crate
/// needs at least one batch per segment, which it enforces itself.
pub const SEGMENT_BYTES_MIN: i64 = 14;

/// What the log cleaner does with old data of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CleanupPolicy {
    /// Delete whole segments by age and size (`delete`).
    Delete,
    /// Keep the last record per key (`compact`).
    Compact,
    /// Compact, and also delete by age and size (`compact,delete`).
    CompactDelete,
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        })
    }
}

/// Whose clock a topic's record timestamps come from (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageTimestampType {
    /// The producer's timestamp, range-checked (`CreateTime`).
    CreateTime,
    /// The leader's clock at append (`LogAppendTime`).
    LogAppendTime,
}

impl fmt::Display for MessageTimestampType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageTimestampType::CreateTime => "CreateTime",
            MessageTimestampType::LogAppendTime => "LogAppendTime",
        })
    }
}

/// The resolved, typed configuration of one topic (defaults overlaid with its overrides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    /// `retention.ms`; `-1` = keep forever.
    pub retention_ms: i64,
    /// `retention.bytes`; `-1` = unlimited.
    pub retention_bytes: i64,
    /// `segment.bytes`.
    pub segment_bytes: i32,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `flush.messages`; `i64::MAX` = leave to the OS.
    pub flush_messages: i64,
    /// `flush.ms`; `i64::MAX` = leave to the OS.
    pub flush_ms: i64,
    /// `max.message.bytes`.
    pub max_message_bytes: i32,
    /// `message.timestamp.type`.
    pub message_timestamp_type: MessageTimestampType,
    /// `message.timestamp.difference.max.ms`; `i64::MAX` = unbounded.
    pub message_timestamp_difference_max_ms: i64,
    /// `message.timestamp.before.max.ms` as set; see [`TopicConfig::timestamp_before_max_ms`].
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms` as set; see [`TopicConfig::timestamp_after_max_ms`].
    pub message_timestamp_after_max_ms: i64,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: bool,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
}

impl Default for TopicConfig {
    /// Kafka's broker defaults.
    fn default() -> Self {
        TopicConfig {
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            cleanup_policy: CleanupPolicy::Delete,
            min_insync_replicas: 1,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            max_message_bytes: 1024 * 1024 + 12,
            message_timestamp_type: MessageTimestampType::CreateTime,
            // Kafka 3.x's defaults: unbounded (Kafka 4.0 lowers after.max.ms to one hour).
            message_timestamp_difference_max_ms: i64::MAX,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
            unclean_leader_election_enable: false,
            replica_lag_time_max_ms: 30_000,
        }
    }
}

impl TopicConfig {
    /// Resolves `overrides` over the defaults, rejecting unknown keys and out-of-range values.
    pub fn from_overrides(overrides: &BTreeMap<String, String>) -> Result<TopicConfig, CommandError> {
        if overrides.len() > TOPIC_CONFIG_ENTRIES_MAX {
            return Err(CommandError::InvalidConfig {
                key: String::new(),
                value: overrides.len().to_string(),
                reason: format!("more than {TOPIC_CONFIG_ENTRIES_MAX} config entries"),
            });
        }
        let mut config = TopicConfig::default();
        for (key, value) in overrides {
            config.set(key, value)?;
        }
        Ok(config)
    }

    /// Sets one key from its string form, validating the value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), CommandError> {
        match key {
            RETENTION_MS => self.retention_ms = parse_i64(key, value, -1)?,
            RETENTION_BYTES => self.retention_bytes = parse_i64(key, value, -1)?,
            SEGMENT_BYTES => self.segment_bytes = parse_i32(key, value, SEGMENT_BYTES_MIN)?,
            SEGMENT_MS => self.segment_ms = parse_i64(key, value, 1)?,
            CLEANUP_POLICY => self.cleanup_policy = parse_cleanup_policy(value)?,
            MIN_INSYNC_REPLICAS => self.min_insync_replicas = parse_i32(key, value, 1)?,
            FLUSH_MESSAGES => self.flush_messages = parse_i64(key, value, 1)?,
            FLUSH_MS => self.flush_ms = parse_i64(key, value, 0)?,
            MAX_MESSAGE_BYTES => self.max_message_bytes = parse_i32(key, value, 0)?,
            MESSAGE_TIMESTAMP_TYPE => self.message_timestamp_type = parse_timestamp_type(value)?,
            MESSAGE_TIMESTAMP_DIFFERENCE_MAX_MS => self.message_timestamp_difference_max_ms = parse_i64(key, value, 0)?,
            MESSAGE_TIMESTAMP_BEFORE_MAX_MS => self.message_timestamp_before_max_ms = parse_i64(key, value, 0)?,
            MESSAGE_TIMESTAMP_AFTER_MAX_MS => self.message_timestamp_after_max_ms = parse_i64(key, value, 0)?,
            UNCLEAN_LEADER_ELECTION_ENABLE => self.unclean_leader_election_enable = parse_bool(key, value)?,
            REPLICA_LAG_TIME_MAX_MS => self.replica_lag_time_max_ms = parse_i64(key, value, 1)?,
            _ => match override_topic_config(key) {
                Some(config) => config.validate(value)?,
                None => {
                    return Err(CommandError::InvalidConfig {
                        key: key.to_string(),
                        value: value.to_string(),
                        reason: "unknown topic config key".to_string(),
                    })
                }
            },
        }
        Ok(())
    }

    /// The value of `key` in its Kafka string form, or `None` for an unknown key.
    pub fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            RETENTION_MS => self.retention_ms.to_string(),
            RETENTION_BYTES => self.retention_bytes.to_string(),
            SEGMENT_BYTES => self.segment_bytes.to_string(),
            SEGMENT_MS => self.segment_ms.to_string(),
            CLEANUP_POLICY => self.cleanup_policy.to_string(),
            MIN_INSYNC_REPLICAS => self.min_insync_replicas.to_string(),
            FLUSH_MESSAGES => self.flush_messages.to_string(),
            FLUSH_MS => self.flush_ms.to_string(),
            MAX_MESSAGE_BYTES => self.max_message_bytes.to_string(),
            MESSAGE_TIMESTAMP_TYPE => self.message_timestamp_type.to_string(),
            MESSAGE_TIMESTAMP_DIFFERENCE_MAX_MS => self.message_timestamp_difference_max_ms.to_string(),
            MESSAGE_TIMESTAMP_BEFORE_MAX_MS => self.message_timestamp_before_max_ms.to_string(),
            MESSAGE_TIMESTAMP_AFTER_MAX_MS => self.message_timestamp_after_max_ms.to_string(),
            UNCLEAN_LEADER_ELECTION_ENABLE => self.unclean_leader_election_enable.to_string(),
            REPLICA_LAG_TIME_MAX_MS => self.replica_lag_time_max_ms.to_string(),
            // Never held in the typed config: its value is Kafka's default unless the topic's
            // overrides say otherwise.
            _ => return override_topic_config(key).map(|config| config.kafka_default.to_string()),
        })
    }
}

impl TopicConfig {
    /// The bound in force for timestamps before the leader's clock, in milliseconds: Kafka's
    /// rule, `message.timestamp.before.max.ms` unless it is left at its default (`i64::MAX`),
    /// then the deprecated `message.timestamp.difference.max.ms`.
    pub fn timestamp_before_max_ms(&self) -> i64 {
        if self.message_timestamp_before_max_ms != i64::MAX {
            self.message_timestamp_before_max_ms
        } else {
            self.message_timestamp_difference_max_ms
        }
    }

    /// The bound in force for timestamps after the leader's clock, in milliseconds; the same
    /// fallback as [`TopicConfig::timestamp_before_max_ms`].
    pub fn timestamp_after_max_ms(&self) -> i64 {
        if self.message_timestamp_after_max_ms != i64::MAX {
            self.message_timestamp_after_max_ms
        } else {
            self.message_timestamp_difference_max_ms
        }
    }
}

fn parse_timestamp_type(value: &str) -> Result<MessageTimestampType, CommandError> {
    match value.trim() {
        "CreateTime" => Ok(MessageTimestampType::CreateTime),
        "LogAppendTime" => Ok(MessageTimestampType::LogAppendTime),
        _ => Err(invalid(MESSAGE_TIMESTAMP_TYPE, value, "expected CreateTime or LogAppendTime".to_string())),
    }
}

fn invalid(key: &str, value: &str, reason: String) -> CommandError {
    CommandError::InvalidConfig { key: key.to_string(), value: value.to_string(), reason }
}

fn parse_i64(key: &str, value: &str, min: i64) -> Result<i64, CommandError> {
    let parsed: i64 = value.trim().parse().map_err(|_| invalid(key, value, "not a 64-bit integer".to_string()))?;
    if parsed < min {
        return Err(invalid(key, value, format!("must be at least {min}")));
    }
    Ok(parsed)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, CommandError> {
    // Kafka's ConfigDef.parseType: case-insensitive true/false.
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false".to_string())),
    }
}

fn parse_i32(key: &str, value: &str, min: i64) -> Result<i32, CommandError> {
    let parsed = parse_i64(key, value, min)?;
    i32::try_from(parsed).map_err(|_| invalid(key, value, "must fit a 32-bit integer".to_string()))
}

fn parse_cleanup_policy(value: &str) -> Result<CleanupPolicy, CommandError> {
    let mut delete = false;
    let mut compact = false;
    for part in value.split(',') {
        match part.trim() {
            "delete" => delete = true,
            "compact" => compact = true,
            _ => return Err(invalid(CLEANUP_POLICY, value, "expected delete, compact or compact,delete".to_string())),
        }
    }
    Ok(match (compact, delete) {
        (true, true) => CleanupPolicy::CompactDelete,
        (true, false) => CleanupPolicy::Compact,
        _ => CleanupPolicy::Delete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_apply_without_overrides() {
        let config = TopicConfig::from_overrides(&BTreeMap::new()).unwrap();
        assert_eq!(config, TopicConfig::default());
        assert_eq!(config.get(CLEANUP_POLICY).as_deref(), Some("delete"));
    }

    #[test]
    fn every_key_round_trips_through_its_string_form() {
        let mut config = TopicConfig::default();
        let values = [
            (RETENTION_MS, "-1"),
            (RETENTION_BYTES, "1048576"),
            (SEGMENT_BYTES, "4096"),
            (SEGMENT_MS, "60000"),
            (CLEANUP_POLICY, "compact,delete"),
            (MIN_INSYNC_REPLICAS, "2"),
            (FLUSH_MESSAGES, "1"),
            (FLUSH_MS, "0"),
            (MAX_MESSAGE_BYTES, "2000000"),
            (MESSAGE_TIMESTAMP_TYPE, "LogAppendTime"),
            (MESSAGE_TIMESTAMP_DIFFERENCE_MAX_MS, "86400000"),
            (MESSAGE_TIMESTAMP_BEFORE_MAX_MS, "3600000"),
            (MESSAGE_TIMESTAMP_AFTER_MAX_MS, "0"),
            (UNCLEAN_LEADER_ELECTION_ENABLE, "true"),
            (REPLICA_LAG_TIME_MAX_MS, "10000"),
        ];
        assert_eq!(values.len(), TOPIC_CONFIG_KEYS.len());
        for (key, value) in values {
            config.set(key, value).unwrap();
            assert_eq!(config.get(key).as_deref(), Some(value), "{key}");
        }
    }

    #[test]
    fn out_of_range_and_unknown_values_are_rejected() {
        let cases = [
            (RETENTION_MS, "-2"),
            (SEGMENT_BYTES, "13"),
            (SEGMENT_BYTES, "3000000000"),
            (SEGMENT_MS, "0"),
            (MIN_INSYNC_REPLICAS, "0"),
            (FLUSH_MESSAGES, "0"),
            (FLUSH_MS, "-1"),
            (MAX_MESSAGE_BYTES, "ten"),
            (CLEANUP_POLICY, "shred"),
            (MESSAGE_TIMESTAMP_TYPE, "NowTime"),
            (MESSAGE_TIMESTAMP_BEFORE_MAX_MS, "-1"),
            ("retention.weeks", "1"),
        ];
        for (key, value) in cases {
            let error = TopicConfig::from_overrides(&overrides(&[(key, value)])).unwrap_err();
            assert!(matches!(error, CommandError::InvalidConfig { .. }), "{key}={value}");
            assert_eq!(error.kafka_error_code(), 40);
        }
    }

    // Goal: Kafka's fallback: before/after bounds left at their default take the deprecated
    // difference bound; set explicitly, they win.
    #[test]
    fn timestamp_bounds_fall_back_to_the_difference_bound() {
        let config = TopicConfig::from_overrides(&overrides(&[(MESSAGE_TIMESTAMP_DIFFERENCE_MAX_MS, "500")])).unwrap();
        assert_eq!((config.timestamp_before_max_ms(), config.timestamp_after_max_ms()), (500, 500));
        let config = TopicConfig::from_overrides(&overrides(&[
            (MESSAGE_TIMESTAMP_DIFFERENCE_MAX_MS, "500"),
            (MESSAGE_TIMESTAMP_AFTER_MAX_MS, "7"),
        ]))
        .unwrap();
        assert_eq!((config.timestamp_before_max_ms(), config.timestamp_after_max_ms()), (500, 7));
        let defaults = TopicConfig::default();
        assert_eq!((defaults.timestamp_before_max_ms(), defaults.timestamp_after_max_ms()), (i64::MAX, i64::MAX));
    }

    // Goal: every Kafka 4.1 topic config held only as an override is accepted with its Kafka
    // default and with other valid values, reads back as the default (it is not held in the
    // typed config), and a value Kafka would refuse is refused.
    #[test]
    fn override_only_kafka_configs_are_accepted_and_checked() {
        let mut config = TopicConfig::default();
        for other in OVERRIDE_TOPIC_CONFIGS {
            config.set(other.key, other.kafka_default).unwrap_or_else(|error| panic!("{}: {error:?}", other.key));
            assert_eq!(config.get(other.key).as_deref(), Some(other.kafka_default));
        }
        assert_eq!(config, TopicConfig::default());
        let accepted = [
            ("compression.type", "zstd"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("leader.replication.throttled.replicas", "0:1,1:1"),
            ("follower.replication.throttled.replicas", "*"),
            ("preallocate", "TRUE"),
            ("delete.retention.ms", "100"),
        ];
        for (key, value) in accepted {
            config.set(key, value).unwrap_or_else(|error| panic!("{key}={value}: {error:?}"));
        }
        let refused = [
            ("compression.type", "brotli"),
            ("compression.gzip.level", "10"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("leader.replication.throttled.replicas", "0-1"),
            ("remote.storage.enable", "true"),
            ("local.retention.ms", "-3"),
            ("segment.index.bytes", "3"),
        ];
        for (key, value) in refused {
            let error = TopicConfig::from_overrides(&overrides(&[(key, value)])).unwrap_err();
            assert_eq!(error.kafka_error_code(), 40, "{key}={value}");
        }
        assert_eq!(all_topic_config_keys().count(), 35);
    }

    // Goal: the storage settings read from the overrides take each override's value, and
    // Kafka's default for every key not overridden.
    #[test]
    fn log_settings_come_from_the_overrides_with_kafka_defaults() {
        let defaults = TopicLogSettings::default();
        assert_eq!(defaults.compression_type, CompressionType::Producer);
        assert_eq!((defaults.compression_gzip_level, defaults.compression_lz4_level), (-1, 9));
        assert_eq!((defaults.compression_zstd_level, defaults.delete_retention_ms), (3, 86_400_000));
        assert_eq!((defaults.index_interval_bytes, defaults.segment_index_bytes), (4096, 10_485_760));
        assert_eq!((defaults.min_compaction_lag_ms, defaults.max_compaction_lag_ms), (0, i64::MAX));
        assert_eq!((defaults.min_cleanable_dirty_ratio, defaults.segment_jitter_ms), (0.5, 0));
        let settings = TopicLogSettings::from_overrides(&overrides(&[
            (COMPRESSION_TYPE, "zstd"),
            (COMPRESSION_ZSTD_LEVEL, "19"),
            (DELETE_RETENTION_MS, "100"),
            (INDEX_INTERVAL_BYTES, "1"),
            (MAX_COMPACTION_LAG_MS, "60000"),
            (MIN_CLEANABLE_DIRTY_RATIO, "0.01"),
            (MIN_COMPACTION_LAG_MS, "5000"),
            (SEGMENT_INDEX_BYTES, "4096"),
            (SEGMENT_JITTER_MS, "250"),
            (RETENTION_MS, "1"),
        ]));
        let want = TopicLogSettings {
            compression_type: CompressionType::Zstd,
            compression_zstd_level: 19,
            delete_retention_ms: 100,
            index_interval_bytes: 1,
            max_compaction_lag_ms: 60_000,
            min_cleanable_dirty_ratio: 0.01,
            min_compaction_lag_ms: 5_000,
            segment_index_bytes: 4096,
            segment_jitter_ms: 250,
            ..defaults
        };
        assert_eq!(settings, want);
        for (name, codec) in [
            ("uncompressed", CompressionType::Uncompressed),
            ("gzip", CompressionType::Gzip),
            ("snappy", CompressionType::Snappy),
            ("lz4", CompressionType::Lz4),
            ("producer", CompressionType::Producer),
        ] {
            let settings = TopicLogSettings::from_overrides(&overrides(&[(COMPRESSION_TYPE, name)]));
            assert_eq!(settings.compression_type, codec);
        }
    }

    #[test]
    fn cleanup_policy_accepts_both_orders() {
        let config = TopicConfig::from_overrides(&overrides(&[(CLEANUP_POLICY, "delete,compact")])).unwrap();
        assert_eq!(config.cleanup_policy, CleanupPolicy::CompactDelete);
    }
}
