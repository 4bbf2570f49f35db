//! Dynamic broker configs: the broker settings Kafka lets an operator change at run time with
//! AlterConfigs / IncrementalAlterConfigs on a BROKER resource (`kafka-configs --entity-type
//! brokers`, `kafka-reassign-partitions --throttle`), kept in the metadata so every broker sees
//! them and they survive restarts (Kafka's KRaft `ConfigRecord`).
//!
//! A value is set for one broker (resource name `"3"`) or for every broker (resource name `""`,
//! Kafka's `<default>` entity); a broker's own value wins over the default. Only the keys in
//! [`DYNAMIC_BROKER_CONFIGS`] can be set; every other broker setting is a start flag.
//!
//! Since format version 7 ([`crate::frame::FORMAT_VERSION`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::CommandError;
use crate::view::BrokerId;

/// Kafka's `leader.replication.throttled.rate`: bytes per second a leader sends to followers
/// of the partitions its topic lists in `leader.replication.throttled.replicas`.
pub const LEADER_REPLICATION_THROTTLED_RATE: &str = "leader.replication.throttled.rate";

/// Kafka's `follower.replication.throttled.rate`: bytes per second a follower fetches for the
/// partitions its topic lists in `follower.replication.throttled.replicas`.
pub const FOLLOWER_REPLICATION_THROTTLED_RATE: &str = "follower.replication.throttled.rate";

/// Kafka's `replica.alter.log.dirs.io.max.bytes.per.second`: accepted (`kafka-reassign-partitions
/// --replica-alter-log-dirs-throttle` sets it) and inert, as Sluice has one log directory.
pub const REPLICA_ALTER_LOG_DIRS_IO_MAX_BYTES_PER_SECOND: &str = "replica.alter.log.dirs.io.max.bytes.per.second";

/// Every broker config that can be changed at run time. Each is a LONG of at least 0 whose
/// default is Kafka's, `Long.MAX_VALUE` (no limit).
pub const DYNAMIC_BROKER_CONFIGS: [&str; 3] = [
    LEADER_REPLICATION_THROTTLED_RATE,
    FOLLOWER_REPLICATION_THROTTLED_RATE,
    REPLICA_ALTER_LOG_DIRS_IO_MAX_BYTES_PER_SECOND,
];

/// Kafka's default of every [`DYNAMIC_BROKER_CONFIGS`] key: `Long.MAX_VALUE`, unlimited.
pub const DYNAMIC_BROKER_CONFIG_DEFAULT: i64 = i64::MAX;

/// Most characters of a dynamic broker config value (a LONG needs 20).
pub const BROKER_CONFIG_VALUE_CHARS_MAX: usize = 32;

/// Whether `key` can be set at run time.
pub fn is_dynamic_broker_config(key: &str) -> bool {
    DYNAMIC_BROKER_CONFIGS.contains(&key)
}

/// Whom a dynamic broker config applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BrokerConfigScope {
    /// Every broker without a value of its own (resource name `""`).
    Default,
    /// One broker.
    Broker(BrokerId),
}

impl BrokerConfigScope {
    /// The scope a BROKER resource name names: `""` every broker, else a broker id; `None` when
    /// the name is neither.
    pub fn from_resource_name(name: &str) -> Option<BrokerConfigScope> {
        match name {
            "" => Some(BrokerConfigScope::Default),
            id => id.parse::<BrokerId>().ok().filter(|id| *id >= 0).map(BrokerConfigScope::Broker),
        }
    }
}

/// The dynamic broker configs set, by scope (a scope with nothing set has no entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerConfigs {
    /// Values as given, by scope and key.
    pub values: BTreeMap<BrokerConfigScope, BTreeMap<String, String>>,
}

impl BrokerConfigs {
    /// The value of `key` in force on `broker` and the scope it comes from: the broker's own,
    /// else the default; `None` when neither is set.
    pub fn get(&self, broker: BrokerId, key: &str) -> Option<(&str, BrokerConfigScope)> {
        [BrokerConfigScope::Broker(broker), BrokerConfigScope::Default].into_iter().find_map(|scope| {
            let value = self.values.get(&scope)?.get(key)?;
            Some((value.as_str(), scope))
        })
    }

    /// A LONG config in force on `broker`, or [`DYNAMIC_BROKER_CONFIG_DEFAULT`].
    pub fn long(&self, broker: BrokerId, key: &str) -> i64 {
        self.get(broker, key).and_then(|(value, _)| value.trim().parse().ok()).unwrap_or(DYNAMIC_BROKER_CONFIG_DEFAULT)
    }

    /// Checks `set` and `delete` for one scope, then applies them. All or nothing.
    pub fn alter(
        &mut self,
        scope: BrokerConfigScope,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), CommandError> {
        for (key, value) in set {
            validate(key, value)?;
        }
        for key in delete {
            if !is_dynamic_broker_config(key) {
                return Err(unknown(key, ""));
            }
        }
        let values = self.values.entry(scope).or_default();
        for key in delete {
            values.remove(key);
        }
        for (key, value) in set {
            values.insert(key.clone(), value.trim().to_string());
        }
        if values.is_empty() {
            self.values.remove(&scope);
        }
        Ok(())
    }
}

fn unknown(key: &str, value: &str) -> CommandError {
    CommandError::InvalidConfig {
        key: key.to_string(),
        value: value.to_string(),
        reason: format!(
            "not a broker config that can be changed at run time (those are {}; the rest are start flags)",
            DYNAMIC_BROKER_CONFIGS.join(", ")
        ),
    }
}

/// Checks one key and value: a known dynamic config, a LONG of at least 0.
fn validate(key: &str, value: &str) -> Result<(), CommandError> {
    if !is_dynamic_broker_config(key) {
        return Err(unknown(key, value));
    }
    let invalid = |reason: &str| CommandError::InvalidConfig {
        key: key.to_string(),
        value: value.chars().take(BROKER_CONFIG_VALUE_CHARS_MAX).collect(),
        reason: reason.to_string(),
    };
    if value.len() > BROKER_CONFIG_VALUE_CHARS_MAX {
        return Err(invalid("value too long"));
    }
    match value.trim().parse::<i64>() {
        Ok(rate) if rate >= 0 => Ok(()),
        _ => Err(invalid("expected a whole number of bytes per second, at least 0")),
    }
}

/// Whether a topic's throttled-replica list (`leader.replication.throttled.replicas` or
/// `follower.replication.throttled.replicas`: `*`, or `partition:broker` pairs) names replica
/// `broker` of `partition`. Kafka's `QuotaConfigHandler.parseThrottledPartitions`. Pure.
pub fn throttled_replicas_include(list: &str, partition: i32, broker: BrokerId) -> bool {
    let list = list.trim();
    if list == "*" {
        return true;
    }
    list.split(',').filter_map(|pair| pair.split_once(':')).any(|(p, b)| {
        p.trim().parse::<i32>().ok() == Some(partition) && b.trim().parse::<BrokerId>().ok() == Some(broker)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    // Goal: a broker's own value wins over the default, deleting it falls back to the default,
    // and deleting everything leaves no empty scope behind.
    #[test]
    fn a_brokers_value_wins_over_the_default() {
        let mut configs = BrokerConfigs::default();
        configs.alter(BrokerConfigScope::Default, &set(&[(LEADER_REPLICATION_THROTTLED_RATE, "100")]), &[]).unwrap();
        configs.alter(BrokerConfigScope::Broker(2), &set(&[(LEADER_REPLICATION_THROTTLED_RATE, " 50 ")]), &[]).unwrap();
        assert_eq!(configs.long(1, LEADER_REPLICATION_THROTTLED_RATE), 100);
        assert_eq!(configs.long(2, LEADER_REPLICATION_THROTTLED_RATE), 50);
        assert_eq!(configs.get(2, LEADER_REPLICATION_THROTTLED_RATE), Some(("50", BrokerConfigScope::Broker(2))));
        assert_eq!(configs.long(2, FOLLOWER_REPLICATION_THROTTLED_RATE), DYNAMIC_BROKER_CONFIG_DEFAULT);
        configs
            .alter(BrokerConfigScope::Broker(2), &BTreeMap::new(), &[LEADER_REPLICATION_THROTTLED_RATE.into()])
            .unwrap();
        assert_eq!(configs.long(2, LEADER_REPLICATION_THROTTLED_RATE), 100);
        assert!(!configs.values.contains_key(&BrokerConfigScope::Broker(2)));
    }

    // Goal: unknown keys, negative or non-numeric values are refused and change nothing.
    #[test]
    fn bad_keys_and_values_change_nothing() {
        let mut configs = BrokerConfigs::default();
        for (key, value) in [
            ("num.partitions", "3"),
            (LEADER_REPLICATION_THROTTLED_RATE, "-1"),
            (FOLLOWER_REPLICATION_THROTTLED_RATE, "fast"),
            (FOLLOWER_REPLICATION_THROTTLED_RATE, "123456789012345678901234567890123"),
        ] {
            let both = set(&[(LEADER_REPLICATION_THROTTLED_RATE, "1"), (key, value)]);
            let error = configs.alter(BrokerConfigScope::Default, &both, &[]).unwrap_err();
            assert!(matches!(error, CommandError::InvalidConfig { .. }), "{key}={value}");
        }
        assert!(configs.alter(BrokerConfigScope::Default, &BTreeMap::new(), &["log.dirs".into()]).is_err());
        assert_eq!(configs, BrokerConfigs::default());
    }

    #[test]
    fn resource_names_name_a_scope() {
        assert_eq!(BrokerConfigScope::from_resource_name(""), Some(BrokerConfigScope::Default));
        assert_eq!(BrokerConfigScope::from_resource_name("3"), Some(BrokerConfigScope::Broker(3)));
        assert_eq!(BrokerConfigScope::from_resource_name("-1"), None);
        assert_eq!(BrokerConfigScope::from_resource_name("b1"), None);
    }

    // Goal: Kafka's list format: `*` names every replica, pairs name one replica each, and a
    // pair for another broker or partition does not count.
    #[test]
    fn throttled_replica_lists_name_replicas() {
        assert!(throttled_replicas_include("*", 7, 3));
        assert!(throttled_replicas_include("0:1, 1:2", 1, 2));
        assert!(!throttled_replicas_include("0:1,1:2", 1, 1));
        assert!(!throttled_replicas_include("0:1,1:2", 2, 2));
        assert!(!throttled_replicas_include("", 0, 1));
    }
}
