//! Partitions that failed to open, and when to try again.
//!
//! A partition can fail to open for reasons that go away without a metadata change: a
//! directory that cannot be created (a file in its place, a permission), a full disk, an I/O
//! error. Reconciliation used to try again only on the next view change, so such a partition
//! answered NOT_LEADER_OR_FOLLOWER while the metadata named this broker its leader. Now each
//! failure is recorded here with a retry time that backs off exponentially from
//! [`OPEN_RETRY_BACKOFF_MIN_MS`] to [`OPEN_RETRY_BACKOFF_MAX_MS`]; the reconciler wakes at
//! the earliest one ([`OpenFailures::next_retry`]) and `/ready` names every entry.
//!
//! Pure bookkeeping: the caller passes the clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::partition::manager::PartitionKey;

/// First pause before retrying a partition that failed to open, in milliseconds. Short, so
/// that an obstacle an operator just removed is noticed quickly; each try costs a directory
/// lookup and, when the directory exists, a log recovery.
pub const OPEN_RETRY_BACKOFF_MIN_MS: u64 = 500;

/// Longest pause between tries, in milliseconds: a partition that keeps failing is tried (and
/// logged) at most this often, and is back at most this long after its obstacle is gone.
pub const OPEN_RETRY_BACKOFF_MAX_MS: u64 = 30_000;

const _: () = assert!(OPEN_RETRY_BACKOFF_MIN_MS > 0 && OPEN_RETRY_BACKOFF_MIN_MS <= OPEN_RETRY_BACKOFF_MAX_MS);

/// Pause after the `failures`-th consecutive failure (1 = the first): doubling from the
/// minimum, capped at the maximum.
pub fn open_retry_delay_ms(failures: u32) -> u64 {
    let doublings = failures.saturating_sub(1).min(20);
    OPEN_RETRY_BACKOFF_MIN_MS.saturating_mul(1 << doublings).min(OPEN_RETRY_BACKOFF_MAX_MS)
}

/// One partition that could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFailure {
    /// The last error, as text.
    pub error: String,
    /// Consecutive failures.
    pub failures: u32,
    /// Not tried again before this.
    pub retry_at: Instant,
}

/// The partitions that failed to open, by key.
#[derive(Debug, Default)]
pub struct OpenFailures {
    failures: BTreeMap<PartitionKey, OpenFailure>,
}

impl OpenFailures {
    /// Whether `key` may be tried at `now` (never failed, or its pause is over).
    pub fn is_due(&self, key: &PartitionKey, now: Instant) -> bool {
        self.failures.get(key).is_none_or(|failure| now >= failure.retry_at)
    }

    /// Records a failure at `now`; returns the entry (its count says whether this is the
    /// first of an episode, which the caller logs louder).
    pub fn failed(&mut self, key: &PartitionKey, error: String, now: Instant) -> OpenFailure {
        let failures = self.failures.get(key).map_or(1, |previous| previous.failures.saturating_add(1));
        let retry_at = now + Duration::from_millis(open_retry_delay_ms(failures));
        let failure = OpenFailure { error, failures, retry_at };
        self.failures.insert(key.clone(), failure.clone());
        failure
    }

    /// Forgets `key` after it opened (or was deleted); returns how many failures preceded.
    pub fn opened(&mut self, key: &PartitionKey) -> u32 {
        self.failures.remove(key).map_or(0, |failure| failure.failures)
    }

    /// Forgets partitions no longer assigned here.
    pub fn retain(&mut self, mut assigned: impl FnMut(&PartitionKey) -> bool) {
        self.failures.retain(|key, _| assigned(key));
    }

    /// The earliest retry time, if any partition is waiting.
    pub fn next_retry(&self) -> Option<Instant> {
        self.failures.values().map(|failure| failure.retry_at).min()
    }

    /// Every failing partition, in key order.
    pub fn all(&self) -> Vec<(PartitionKey, OpenFailure)> {
        self.failures.iter().map(|(key, failure)| (key.clone(), failure.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the pause doubles from the minimum and stops at the maximum, without overflow.
    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(open_retry_delay_ms(1), OPEN_RETRY_BACKOFF_MIN_MS);
        assert_eq!(open_retry_delay_ms(2), 2 * OPEN_RETRY_BACKOFF_MIN_MS);
        assert_eq!(open_retry_delay_ms(3), 4 * OPEN_RETRY_BACKOFF_MIN_MS);
        assert_eq!(open_retry_delay_ms(40), OPEN_RETRY_BACKOFF_MAX_MS);
        assert_eq!(open_retry_delay_ms(u32::MAX), OPEN_RETRY_BACKOFF_MAX_MS);
        assert!((1..100).all(|n| open_retry_delay_ms(n) <= open_retry_delay_ms(n + 1)));
    }

    // Goal: a failed partition waits out its pause, consecutive failures grow it, opening
    // or unassigning forgets it. Method: drive the bookkeeping with a fixed clock.
    #[test]
    fn failures_wait_their_pause_and_are_forgotten_when_opened_or_unassigned() {
        let now = Instant::now();
        let (a, b) = (("a".to_string(), 0), ("b".to_string(), 0));
        let mut failures = OpenFailures::default();
        assert!(failures.is_due(&a, now));
        assert_eq!(failures.failed(&a, "no space".into(), now).failures, 1);
        assert!(!failures.is_due(&a, now));
        let first_pause = Duration::from_millis(OPEN_RETRY_BACKOFF_MIN_MS);
        assert!(failures.is_due(&a, now + first_pause));
        let second = failures.failed(&a, "no space".into(), now + first_pause);
        assert_eq!((second.failures, second.retry_at), (2, now + first_pause * 3));
        failures.failed(&b, "a file is in the way".into(), now);
        assert_eq!(failures.next_retry(), Some(now + first_pause));
        assert_eq!(failures.opened(&a), 2);
        assert_eq!(failures.all().len(), 1);
        failures.retain(|key| key != &b);
        assert_eq!(failures.next_retry(), None);
    }
}
