//! What the lag task ([`super::lag`]) last computed, and a bounded history of it per group, for
//! the web console: the per-partition lags of the last refresh, and for each group a ring of
//! its last [`LAG_HISTORY_SAMPLES_MAX`] (sum in records, max in seconds) samples, one per
//! refresh, so the console can draw the recent lag without storing or scanning anything else.
//!
//! Bounded: at most [`LAG_HISTORY_GROUPS_MAX`] groups keep a history (those first seen; a
//! group gone from a refresh loses its ring); each ring holds at most
//! [`LAG_HISTORY_SAMPLES_MAX`] samples of 24 bytes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use super::lag::Lag;

/// Samples kept per group: 120 refreshes of 5 s are the last 10 minutes.
pub const LAG_HISTORY_SAMPLES_MAX: usize = 120;

/// Groups with a history at most (120 samples × 24 bytes × 1,000 groups ≈ 2.9 MB).
pub const LAG_HISTORY_GROUPS_MAX: usize = 1_000;

/// One group's lag at one refresh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagSample {
    /// Wall-clock time of the refresh, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Sum of the group's partition lags, in records.
    pub sum_records: i64,
    /// Age of the group's oldest unconsumed record, in seconds (`None` when no partition's
    /// age was known).
    pub max_seconds: Option<f64>,
}

#[derive(Debug, Default)]
struct State {
    /// When the last refresh was published (ms since the Unix epoch); 0 before the first.
    refreshed_at_ms: i64,
    latest: Vec<Lag>,
    history: BTreeMap<String, VecDeque<LagSample>>,
}

/// The last refresh's lags and each group's recent history. Written by the lag task once per
/// refresh, read by the console; one short lock each.
#[derive(Debug, Default)]
pub struct LagHistory {
    state: Mutex<State>,
}

impl LagHistory {
    /// Publishes one refresh taken at `at_ms`: replaces the latest lags and appends a sample to
    /// each group's ring.
    pub fn record(&self, at_ms: i64, lags: &[Lag]) {
        let mut per_group: BTreeMap<&str, LagSample> = BTreeMap::new();
        for lag in lags {
            let sample = per_group.entry(&lag.group).or_insert(LagSample { at_ms, sum_records: 0, max_seconds: None });
            sample.sum_records += lag.records;
            if let Some(seconds) = lag.seconds {
                sample.max_seconds = Some(sample.max_seconds.map_or(seconds, |max| max.max(seconds)));
            }
        }
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.history.retain(|group, _| per_group.contains_key(group.as_str()));
        for (group, sample) in per_group {
            let room = state.history.len() < LAG_HISTORY_GROUPS_MAX;
            let ring = match state.history.get_mut(group) {
                Some(ring) => ring,
                None if room => state.history.entry(group.to_string()).or_default(),
                None => continue,
            };
            if ring.len() == LAG_HISTORY_SAMPLES_MAX {
                ring.pop_front();
            }
            ring.push_back(sample);
        }
        state.latest = lags.to_vec();
        state.refreshed_at_ms = at_ms;
    }

    /// The lags of `group` at the last refresh, and when that was (ms since the Unix epoch, 0
    /// if there was none yet).
    pub fn latest(&self, group: &str) -> (i64, Vec<Lag>) {
        let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (state.refreshed_at_ms, state.latest.iter().filter(|lag| lag.group == group).cloned().collect())
    }

    /// Per group at the last refresh: (sum in records, max in seconds).
    pub fn totals(&self) -> BTreeMap<String, (i64, Option<f64>)> {
        let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state
            .history
            .iter()
            .filter_map(|(group, ring)| ring.back().map(|s| (group.clone(), (s.sum_records, s.max_seconds))))
            .collect()
    }

    /// The samples of `group`, oldest first.
    pub fn samples(&self, group: &str) -> Vec<LagSample> {
        let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.history.get(group).map(|ring| ring.iter().copied().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag(group: &str, partition: i32, records: i64, seconds: Option<f64>) -> Lag {
        Lag { group: group.to_string(), topic: "t".to_string(), partition, committed: 0, records, seconds }
    }

    // Goal: each refresh adds one sample per group (sum of records, max of seconds); rings stop
    // at LAG_HISTORY_SAMPLES_MAX, and a group absent from a refresh loses its history.
    #[test]
    fn samples_are_per_group_bounded_and_follow_the_refreshes() {
        let history = LagHistory::default();
        for at in 0..(LAG_HISTORY_SAMPLES_MAX as i64 + 5) {
            history.record(at, &[lag("g", 0, 3, Some(1.5)), lag("g", 1, 4, Some(2.5)), lag("h", 0, at, None)]);
        }
        let samples = history.samples("g");
        assert_eq!(samples.len(), LAG_HISTORY_SAMPLES_MAX);
        assert_eq!(samples[0].at_ms, 5, "the oldest were dropped");
        assert_eq!(samples.last().unwrap(), &LagSample { at_ms: 124, sum_records: 7, max_seconds: Some(2.5) });
        assert_eq!(history.totals().get("h"), Some(&(124, None)));
        assert_eq!(history.latest("g").1.len(), 2);
        history.record(200, &[lag("h", 0, 1, Some(0.0))]);
        assert!(history.samples("g").is_empty(), "g was not in the last refresh");
        assert_eq!(history.latest("h"), (200, vec![lag("h", 0, 1, Some(0.0))]));
    }

    #[test]
    fn groups_past_the_bound_have_no_history() {
        let history = LagHistory::default();
        let lags: Vec<Lag> = (0..LAG_HISTORY_GROUPS_MAX + 3).map(|i| lag(&format!("g{i:05}"), 0, 1, None)).collect();
        history.record(1, &lags);
        assert_eq!(history.totals().len(), LAG_HISTORY_GROUPS_MAX);
    }
}
