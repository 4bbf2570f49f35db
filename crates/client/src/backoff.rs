//! Exponential backoff with jitter, for every retry the client makes.
//!
//! Attempt `n` (0-based) waits a uniformly random time in `[base/2, base]` where
//! `base = min(initial * 2^n, max)` — "equal jitter": retries from many clients spread out so a
//! recovering broker is not hit by a synchronised wave, yet no wait is shorter than half the
//! nominal one. The randomness needs no cryptographic quality, so it comes from a splitmix64
//! generator seeded from the clock and a process-wide counter rather than a new dependency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Retry timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Nominal wait before the first retry.
    pub initial: Duration,
    /// Cap on the nominal wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (0 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX);
        let base = self.initial.saturating_mul(factor).min(self.max);
        let half = base / 2;
        let jitter_nanos = random_u64() % (half.as_nanos() as u64).max(1);
        half + Duration::from_nanos(jitter_nanos)
    }
}

static RANDOM_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A pseudo-random number (splitmix64 over the clock and a counter): for jitter and the sticky
/// partitioner's choice, not for anything secret.
pub fn random_u64() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let mut z = nanos.wrapping_add(RANDOM_COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_jitter_bounds_and_cap() {
        let backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_millis(1_000) };
        for attempt in 0..10 {
            let nominal = (Duration::from_millis(100) * 2u32.pow(attempt)).min(Duration::from_millis(1_000));
            for _ in 0..50 {
                let delay = backoff.delay(attempt);
                assert!(delay >= nominal / 2 && delay <= nominal, "attempt {attempt}: {delay:?} vs {nominal:?}");
            }
        }
        assert!(backoff.delay(u32::MAX) <= Duration::from_millis(1_000));
    }

    #[test]
    fn jitter_spreads_delays() {
        let backoff = Backoff::default();
        let delays: std::collections::HashSet<_> = (0..20).map(|_| backoff.delay(3)).collect();
        assert!(delays.len() > 10);
    }
}
