//! From a topic's replicated configuration (`sluice_meta::TopicConfig`, Kafka names) to the
//! storage configuration of its partition logs (`sluice_log::LogConfig`).

use sluice_log::{CleanupPolicy, FlushPolicy, LogConfig, MessageTimestampType};
use sluice_meta::{CleanupPolicy as TopicCleanupPolicy, MessageTimestampType as TopicTimestampType, TopicConfig};

/// The log configuration for a partition of a topic with `config`.
///
/// Flush policy: `flush.messages=1` or `flush.ms=0` syncs every batch; any other `flush.ms`
/// below Kafka's "never" (`i64::MAX`) syncs on that interval; otherwise the OS decides
/// (Kafka's default). `flush.messages` above 1 has no exact counterpart in the log (it syncs by
/// time, not by count) and falls back to the interval or the OS.
pub fn log_config_for(config: &TopicConfig) -> LogConfig {
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
        segment_bytes: (config.segment_bytes.max(0) as u64).max(sluice_log::config::BATCH_HEADER_BYTES as u64),
        segment_ms: config.segment_ms.max(1) as u64,
        // The log counts the 12-byte offset and length prefix in its limit, Kafka's
        // max.message.bytes does too (the default is 1 MiB + 12).
        batch_bytes_max: usize::try_from(config.max_message_bytes.max(0))
            .unwrap_or(usize::MAX)
            .clamp(sluice_log::config::BATCH_HEADER_BYTES, sluice_log::config::BATCH_BYTES_MAX_LIMIT),
        retention_ms: u64::try_from(config.retention_ms).ok(),
        retention_bytes: u64::try_from(config.retention_bytes).ok(),
        cleanup_policy,
        flush,
        message_timestamp_type,
        message_timestamp_before_max_ms: config.timestamp_before_max_ms().max(0),
        message_timestamp_after_max_ms: config.timestamp_after_max_ms().max(0),
        ..defaults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_defaults_give_the_log_defaults_and_a_valid_config() {
        let config = log_config_for(&TopicConfig::default());
        config.validate().unwrap();
        assert_eq!(config.flush, FlushPolicy::Os);
        assert_eq!(config.retention_ms, Some(7 * 24 * 3600 * 1000));
        assert_eq!(config.retention_bytes, None);
        assert_eq!(config.batch_bytes_max, 1024 * 1024 + 12);
    }

    #[test]
    fn flush_and_cleanup_settings_map() {
        let topic = TopicConfig { flush_messages: 1, ..TopicConfig::default() };
        assert_eq!(log_config_for(&topic).flush, FlushPolicy::EveryBatch);
        let topic = TopicConfig { flush_ms: 250, ..TopicConfig::default() };
        assert_eq!(log_config_for(&topic).flush, FlushPolicy::IntervalMs(250));
        let topic =
            TopicConfig { cleanup_policy: TopicCleanupPolicy::Compact, retention_ms: -1, ..TopicConfig::default() };
        let config = log_config_for(&topic);
        assert_eq!(config.cleanup_policy, CleanupPolicy::Compact);
        assert_eq!(config.retention_ms, None);
        let topic = TopicConfig { segment_bytes: 14, max_message_bytes: 0, ..TopicConfig::default() };
        log_config_for(&topic).validate().unwrap();
    }
}
