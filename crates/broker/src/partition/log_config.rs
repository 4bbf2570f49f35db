//! From a topic's replicated configuration (`sluice_meta::TopicConfig` and the settings it
//! holds only as overrides, `TopicLogSettings`; Kafka names) to the storage configuration of
//! its partition logs (`sluice_log::LogConfig`).

use sluice_log::config::{BATCH_HEADER_BYTES, INDEX_BYTES_LIMIT, OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES};
use sluice_log::{CleanupPolicy, CompressionType, FlushPolicy, LogConfig, MessageTimestampType};
use sluice_meta::topic_config::{CompressionType as TopicCompressionType, TopicLogSettings};
use sluice_meta::{CleanupPolicy as TopicCleanupPolicy, MessageTimestampType as TopicTimestampType, TopicConfig};

/// Smallest index size the log takes, in bytes: room for whole entries of both indexes.
/// Kafka allows `segment.index.bytes` down to 4; a smaller value acts as this one.
const INDEX_BYTES_MIN: usize = OFFSET_INDEX_ENTRY_BYTES * TIME_INDEX_ENTRY_BYTES;

/// The log configuration for a partition of a topic with `config`.
///
/// Flush policy: `flush.messages=1` or `flush.ms=0` syncs every batch; any other `flush.ms`
/// below Kafka's "never" (`i64::MAX`) syncs on that interval; otherwise the OS decides
/// (Kafka's default). `flush.messages` above 1 has no exact counterpart in the log (it syncs by
/// time, not by count) and falls back to the interval or the OS.
///
/// Values Kafka allows beyond what the log takes are clamped: `index.interval.bytes=0` (an
/// index entry per batch) is 1, `segment.index.bytes` lies within the log's index bounds.
pub fn log_config_for(config: &TopicConfig, settings: &TopicLogSettings) -> LogConfig {
    let flush = if config.flush_messages == 1 || config.flush_ms == 0 {
        FlushPolicy::EveryBatch
    } else if config.flush_ms < i64::MAX {
        FlushPolicy::IntervalMs(config.flush_ms as u64)
    } else {
        FlushPolicy::Os
    };
    let cleanup_policy = match config.cleanup_policy {
        TopicCleanupPolicy::Delete => CleanupPolicy::Delete,
        TopicCleanupPolicy::Compact => CleanupPolicy::Compact,
        TopicCleanupPolicy::CompactDelete => CleanupPolicy::CompactDelete,
    };
    let message_timestamp_type = match config.message_timestamp_type {
        TopicTimestampType::CreateTime => MessageTimestampType::CreateTime,
        TopicTimestampType::LogAppendTime => MessageTimestampType::LogAppendTime,
    };
    let defaults = LogConfig::default();
    LogConfig {
        // segment.bytes may be as small as 14 (Kafka's minimum); the log needs room for a
        // batch header.
        segment_bytes: (config.segment_bytes.max(0) as u64).max(BATCH_HEADER_BYTES as u64),
        segment_ms: config.segment_ms.max(1) as u64,
        // The log counts the 12-byte offset and length prefix in its limit, Kafka's
        // max.message.bytes does too (the default is 1 MiB + 12).
        batch_bytes_max: usize::try_from(config.max_message_bytes.max(0))
            .unwrap_or(usize::MAX)
            .clamp(BATCH_HEADER_BYTES, sluice_log::config::BATCH_BYTES_MAX_LIMIT),
        retention_ms: u64::try_from(config.retention_ms).ok(),
        retention_bytes: u64::try_from(config.retention_bytes).ok(),
        cleanup_policy,
        flush,
        message_timestamp_type,
        message_timestamp_before_max_ms: config.timestamp_before_max_ms().max(0),
        message_timestamp_after_max_ms: config.timestamp_after_max_ms().max(0),
        segment_jitter_ms: settings.segment_jitter_ms.max(0) as u64,
        index_interval_bytes: settings.index_interval_bytes.max(1) as u32,
        index_bytes_max: usize::try_from(settings.segment_index_bytes.max(0))
            .unwrap_or(usize::MAX)
            .clamp(INDEX_BYTES_MIN, INDEX_BYTES_LIMIT),
        delete_retention_ms: settings.delete_retention_ms.max(0) as u64,
        min_compaction_lag_ms: settings.min_compaction_lag_ms.max(0) as u64,
        max_compaction_lag_ms: settings.max_compaction_lag_ms.max(1) as u64,
        min_cleanable_dirty_ratio: settings.min_cleanable_dirty_ratio.clamp(0.0, 1.0),
        compression: compression_for(settings),
        ..defaults
    }
}

/// The topic's `compression.type` with the level of its codec. Levels were checked against
/// Kafka's ranges when set; the log takes every value in them.
fn compression_for(settings: &TopicLogSettings) -> CompressionType {
    match settings.compression_type {
        TopicCompressionType::Producer => CompressionType::Producer,
        TopicCompressionType::Uncompressed => CompressionType::Uncompressed,
        TopicCompressionType::Gzip => CompressionType::Gzip { level: settings.compression_gzip_level },
        TopicCompressionType::Snappy => CompressionType::Snappy,
        TopicCompressionType::Lz4 => {
            CompressionType::Lz4 { level: u32::try_from(settings.compression_lz4_level).unwrap_or(1) }
        }
        TopicCompressionType::Zstd => CompressionType::Zstd { level: settings.compression_zstd_level },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_defaults_give_the_log_defaults_and_a_valid_config() {
        let config = log_config_for(&TopicConfig::default(), &TopicLogSettings::default());
        config.validate().unwrap();
        assert_eq!(config.flush, FlushPolicy::Os);
        assert_eq!(config.retention_ms, Some(7 * 24 * 3600 * 1000));
        assert_eq!(config.retention_bytes, None);
        assert_eq!(config.batch_bytes_max, 1024 * 1024 + 12);
    }

    #[test]
    fn flush_and_cleanup_settings_map() {
        let topic = TopicConfig { flush_messages: 1, ..TopicConfig::default() };
        assert_eq!(log_config_for(&topic, &TopicLogSettings::default()).flush, FlushPolicy::EveryBatch);
        let topic = TopicConfig { flush_ms: 250, ..TopicConfig::default() };
        assert_eq!(log_config_for(&topic, &TopicLogSettings::default()).flush, FlushPolicy::IntervalMs(250));
        let topic =
            TopicConfig { cleanup_policy: TopicCleanupPolicy::Compact, retention_ms: -1, ..TopicConfig::default() };
        let config = log_config_for(&topic, &TopicLogSettings::default());
        assert_eq!(config.cleanup_policy, CleanupPolicy::Compact);
        assert_eq!(config.retention_ms, None);
        let topic = TopicConfig { segment_bytes: 14, max_message_bytes: 0, ..TopicConfig::default() };
        log_config_for(&topic, &TopicLogSettings::default()).validate().unwrap();
    }

    // Goal: every setting held only as an override reaches the log: index interval, index
    // size, segment jitter, tombstone retention, the compaction lags and dirty ratio, the
    // compression type with its codec's level; Kafka's extremes give a valid log config.
    #[test]
    fn override_only_settings_map() {
        let topic = TopicConfig::default();
        let defaults = log_config_for(&topic, &TopicLogSettings::default());
        assert_eq!(defaults.compression, CompressionType::Producer);
        assert_eq!((defaults.index_interval_bytes, defaults.index_bytes_max), (4096, 10 * 1024 * 1024));
        assert_eq!((defaults.segment_jitter_ms, defaults.delete_retention_ms), (0, 86_400_000));
        assert_eq!((defaults.min_compaction_lag_ms, defaults.max_compaction_lag_ms), (0, i64::MAX as u64));
        assert_eq!(defaults.min_cleanable_dirty_ratio, 0.5);
        let settings = TopicLogSettings {
            compression_type: TopicCompressionType::Gzip,
            compression_gzip_level: 9,
            index_interval_bytes: 100,
            segment_index_bytes: 4096,
            segment_jitter_ms: 250,
            delete_retention_ms: 1_000,
            min_compaction_lag_ms: 2_000,
            max_compaction_lag_ms: 60_000,
            min_cleanable_dirty_ratio: 0.01,
            ..TopicLogSettings::default()
        };
        let config = log_config_for(&topic, &settings);
        config.validate().unwrap();
        assert_eq!(config.compression, CompressionType::Gzip { level: 9 });
        assert_eq!((config.index_interval_bytes, config.index_bytes_max), (100, 4096));
        assert_eq!((config.segment_jitter_ms, config.delete_retention_ms), (250, 1_000));
        assert_eq!((config.min_compaction_lag_ms, config.max_compaction_lag_ms), (2_000, 60_000));
        assert_eq!(config.min_cleanable_dirty_ratio, 0.01);
        for (codec, want) in [
            (TopicCompressionType::Uncompressed, CompressionType::Uncompressed),
            (TopicCompressionType::Snappy, CompressionType::Snappy),
            (TopicCompressionType::Lz4, CompressionType::Lz4 { level: 9 }),
            (TopicCompressionType::Zstd, CompressionType::Zstd { level: 3 }),
        ] {
            let settings = TopicLogSettings { compression_type: codec, ..TopicLogSettings::default() };
            assert_eq!(log_config_for(&topic, &settings).compression, want);
        }
        let extremes = TopicLogSettings {
            index_interval_bytes: 0,
            segment_index_bytes: 4,
            max_compaction_lag_ms: 1,
            ..TopicLogSettings::default()
        };
        let config = log_config_for(&topic, &extremes);
        config.validate().unwrap();
        assert_eq!((config.index_interval_bytes, config.index_bytes_max), (1, INDEX_BYTES_MIN));
        let config = log_config_for(&topic, &TopicLogSettings { segment_index_bytes: i32::MAX, ..extremes });
        assert_eq!(config.index_bytes_max, INDEX_BYTES_LIMIT);
    }
}
