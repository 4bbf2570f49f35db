//! Client quotas, enforced by throttling as Kafka does (KIP-13, KIP-55, KIP-219).
//!
//! Three parts, the first two pure (time is a parameter, in milliseconds of any monotonic clock):
//!
//! - [`resolve`] — which configured quota applies to a (user, client id), with Kafka's
//!   precedence, read from the metadata view's [`SecurityState`] by at most eight map lookups:
//!
//!   ```text
//!   /users/<user>/clients/<client-id>      /users/<default>/clients/<client-id>
//!   /users/<user>/clients/<default>        /users/<default>/clients/<default>
//!   /users/<user>                          /users/<default>
//!                                          /clients/<client-id>
//!                                          /clients/<default>
//!   ```
//!
//!   (down the first column, then the second); the first entity that has the key wins, none
//!   means unlimited. The matched entity also says whose traffic is counted together (Kafka's
//!   metric tags): `/clients/app` counts every user's `app` together, `/users/<default>` counts
//!   each user on its own.
//! - [`Rate`] — Kafka's sampled rate (`quota.window.num` = [`QUOTA_WINDOW_SAMPLES`] samples of
//!   `quota.window.size.seconds` = [`QUOTA_WINDOW_MS`]), and [`throttle_ms`], Kafka's
//!   `(rate − quota) / quota × window`, bounded by [`QUOTA_THROTTLE_MS_MAX`].
//! - [`QuotaManager`] — the rates of the entities being counted, at most
//!   [`QUOTA_TRACKED_ENTITIES_MAX`], idle ones evicted; one per broker.
//!
//! Enforcement is the dispatcher's and the connection's (KIP-219): the response carries
//! `throttle_time_ms` and is sent at once, and the connection then handles nothing more for that
//! long. Nothing is refused or dropped: a produce that went over the quota is appended and
//! acknowledged. A throttled consumer fetch is answered without records (and its bytes not
//! counted), as Kafka does; the consumer fetches the same offsets again after the throttle.
//!
//! Architecture invariant: this module knows no socket, no handler and no clock; it reads the
//! applied view and is told the time.

use std::collections::HashMap;
use std::sync::Mutex;

use sluice_meta::security::{QuotaEntity, QuotaName, SecurityState};

/// Samples in a rate's window (Kafka's `quota.window.num`, default 11).
pub const QUOTA_WINDOW_SAMPLES: usize = 11;

/// Length of one sample (Kafka's `quota.window.size.seconds`, default 1 s), in milliseconds.
pub const QUOTA_WINDOW_MS: u64 = 1_000;

/// Longest throttle one response asks for: the whole rate window, in milliseconds. A client
/// far over its quota (a burst right after the quota was lowered) is paused at most this long
/// per response rather than for minutes; the next responses throttle it again while its rate
/// stays over.
pub const QUOTA_THROTTLE_MS_MAX: u64 = QUOTA_WINDOW_SAMPLES as u64 * QUOTA_WINDOW_MS;

/// Most (kind, user, client id) rates counted at once. Each costs ~200 bytes; past the limit
/// the entry idle longest is evicted (its client then starts from a fresh window).
pub const QUOTA_TRACKED_ENTITIES_MAX: usize = 10_000;

/// A rate that recorded nothing for this long is dropped: every sample has expired, so its rate
/// is zero and forgetting it changes nothing. In milliseconds.
pub const QUOTA_IDLE_MS: u64 = QUOTA_THROTTLE_MS_MAX;

const _: () = assert!(QUOTA_WINDOW_SAMPLES >= 2, "the rate needs a full sample behind the current one");

/// What a quota limits, by its Kafka key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaKind {
    /// `producer_byte_rate`: bytes of produce request record data per second.
    Produce,
    /// `consumer_byte_rate`: bytes of consumer fetch response record data per second.
    Fetch,
    /// `request_percentage`: handler time as a percentage of one thread, over the window.
    Request,
}

impl QuotaKind {
    /// Every kind.
    pub const ALL: [QuotaKind; 3] = [QuotaKind::Produce, QuotaKind::Fetch, QuotaKind::Request];

    /// Kafka's quota key.
    pub fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => "producer_byte_rate",
            QuotaKind::Fetch => "consumer_byte_rate",
            QuotaKind::Request => "request_percentage",
        }
    }

    /// The metric label (`produce`, `fetch`, `request`).
    pub fn label(self) -> &'static str {
        match self {
            QuotaKind::Produce => "produce",
            QuotaKind::Fetch => "fetch",
            QuotaKind::Request => "request",
        }
    }
}

/// Whose traffic one rate counts: the user and client id parts the matched entity names (`None`
/// where the entity has no such part), Kafka's quota metric tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountedAs {
    /// The user, if the matched entity has a user part (named or default).
    pub user: Option<String>,
    /// The client id, if the matched entity has a client-id part.
    pub client_id: Option<String>,
}

/// The quota that applies to a client, and whose traffic it counts together.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The quota's value (bytes per second, or percent).
    pub quota: f64,
    /// The matched entity.
    pub entity: QuotaEntity,
    /// Whose traffic is counted together.
    pub counted_as: CountedAs,
}

/// The quota `key` for `user` and `client_id`, by Kafka's precedence (module doc); `None`:
/// unlimited. At most eight lookups; none when no quota is configured. Pure.
pub fn resolve(security: &SecurityState, key: &str, user: &str, client_id: &str) -> Option<Resolved> {
    if security.quotas.is_empty() {
        return None;
    }
    let named = |name: &str| Some(QuotaName::Named(name.to_string()));
    let default = || Some(QuotaName::Default);
    let order = [
        (named(user), named(client_id)),
        (named(user), default()),
        (named(user), None),
        (default(), named(client_id)),
        (default(), default()),
        (default(), None),
        (None, named(client_id)),
        (None, default()),
    ];
    order.into_iter().find_map(|(user_part, client_part)| {
        let entity = QuotaEntity { user: user_part, client_id: client_part };
        let quota = security.quota(&entity, key)?;
        let counted_as = CountedAs {
            user: entity.user.as_ref().map(|_| user.to_string()),
            client_id: entity.client_id.as_ref().map(|_| client_id.to_string()),
        };
        Some(Resolved { quota, entity, counted_as })
    })
}

/// One sample of a [`Rate`]: what was recorded since `start_ms`.
#[derive(Debug, Clone, Copy)]
struct Sample {
    start_ms: u64,
    value: f64,
}

/// Kafka's `Rate` over a `SampledStat`: a ring of [`QUOTA_WINDOW_SAMPLES`] samples, a new one
/// started when the current one is [`QUOTA_WINDOW_MS`] old, samples older than the whole window
/// reset. The rate is the samples' sum over the time they cover, counted as at least
/// `samples − 1` full windows — so a client's first burst is spread over ten seconds, not
/// measured over the few milliseconds it took. Pure.
#[derive(Debug, Clone)]
pub struct Rate {
    samples: Vec<Sample>,
    current: usize,
    /// When something was last recorded (for eviction).
    last_record_ms: u64,
}

impl Rate {
    /// An empty rate whose first sample starts at `now_ms`.
    pub fn new(now_ms: u64) -> Rate {
        Rate { samples: vec![Sample { start_ms: now_ms, value: 0.0 }], current: 0, last_record_ms: now_ms }
    }

    /// Adds `value` at `now_ms` (a negative value takes back an earlier record).
    pub fn record(&mut self, value: f64, now_ms: u64) {
        self.last_record_ms = now_ms;
        if now_ms.saturating_sub(self.samples[self.current].start_ms) >= QUOTA_WINDOW_MS {
            self.current = (self.current + 1) % QUOTA_WINDOW_SAMPLES;
            let fresh = Sample { start_ms: now_ms, value: 0.0 };
            match self.samples.get_mut(self.current) {
                Some(sample) => *sample = fresh,
                None => self.samples.push(fresh),
            }
        }
        self.samples[self.current].value += value;
    }

    /// Resets the samples that started a whole window or more before `now_ms` (Kafka's
    /// `purgeObsoleteSamples`).
    fn purge(&mut self, now_ms: u64) {
        let expire_ms = QUOTA_THROTTLE_MS_MAX;
        for sample in &mut self.samples {
            if now_ms.saturating_sub(sample.start_ms) >= expire_ms {
                *sample = Sample { start_ms: now_ms, value: 0.0 };
            }
        }
    }

    /// The time the rate is measured over at `now_ms`, in milliseconds: from the oldest
    /// sample's start, at least `samples − 1` full windows, at least 1 ms (Kafka's
    /// `Rate.windowSize`).
    pub fn window_ms(&mut self, now_ms: u64) -> u64 {
        self.purge(now_ms);
        let oldest = self.samples.iter().map(|sample| sample.start_ms).min().unwrap_or(now_ms);
        let elapsed_ms = now_ms.saturating_sub(oldest);
        let full_windows_min = (QUOTA_WINDOW_SAMPLES - 1) as u64;
        let full_windows = elapsed_ms / QUOTA_WINDOW_MS;
        let padded_ms = elapsed_ms + full_windows_min.saturating_sub(full_windows) * QUOTA_WINDOW_MS;
        padded_ms.max(1)
    }

    /// The rate at `now_ms`, per second.
    pub fn per_second(&mut self, now_ms: u64) -> f64 {
        let window_ms = self.window_ms(now_ms);
        let total: f64 = self.samples.iter().map(|sample| sample.value).sum();
        total * 1_000.0 / window_ms as f64
    }
}

/// Kafka's throttle time for a rate `rate` measured over `window_ms` against `quota`:
/// `(rate − quota) / quota × window`, 0 when within the quota, at most
/// [`QUOTA_THROTTLE_MS_MAX`]. In milliseconds. Pure.
pub fn throttle_ms(rate: f64, quota: f64, window_ms: u64) -> u64 {
    if rate <= quota || quota <= 0.0 || !rate.is_finite() {
        return 0;
    }
    let throttle = (rate - quota) / quota * window_ms as f64;
    (throttle.round() as u64).min(QUOTA_THROTTLE_MS_MAX)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RateKey {
    kind: QuotaKind,
    counted_as: CountedAs,
}

/// The rates being counted, one per (kind, entity counted as). One per broker; a mutex held
/// only for a few map operations per request.
#[derive(Debug)]
pub struct QuotaManager {
    rates: Mutex<HashMap<RateKey, Rate>>,
    /// The zero of the millisecond clock [`QuotaManager::now_ms`] gives.
    epoch: tokio::time::Instant,
}

impl Default for QuotaManager {
    fn default() -> Self {
        QuotaManager::new()
    }
}

impl QuotaManager {
    /// No rates counted yet.
    pub fn new() -> QuotaManager {
        QuotaManager { rates: Mutex::new(HashMap::new()), epoch: tokio::time::Instant::now() }
    }

    /// Milliseconds since this manager was made (tokio's clock: a paused test clock moves it).
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Records `value` of `kind` for the client (`user`, `client_id`) at `now_ms` and returns the
    /// throttle time it has earned, in milliseconds (0 within the quota); `None` when no quota
    /// applies to the client (nothing recorded).
    pub fn record(
        &self,
        security: &SecurityState,
        kind: QuotaKind,
        user: &str,
        client_id: &str,
        value: f64,
        now_ms: u64,
    ) -> Option<u64> {
        let resolved = resolve(security, kind.key(), user, client_id)?;
        let key = RateKey { kind, counted_as: resolved.counted_as };
        let mut rates = self.rates.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !rates.contains_key(&key) && rates.len() >= QUOTA_TRACKED_ENTITIES_MAX {
            make_room(&mut rates, now_ms);
        }
        let rate = rates.entry(key).or_insert_with(|| Rate::new(now_ms));
        rate.record(value, now_ms);
        let window_ms = rate.window_ms(now_ms);
        Some(throttle_ms(rate.per_second(now_ms), resolved.quota, window_ms))
    }

    /// Takes back `value` recorded by [`QuotaManager::record`] (a throttled fetch sends no
    /// records, so its bytes do not count).
    pub fn unrecord(
        &self,
        security: &SecurityState,
        kind: QuotaKind,
        user: &str,
        client_id: &str,
        value: f64,
        now_ms: u64,
    ) {
        let Some(resolved) = resolve(security, kind.key(), user, client_id) else {
            return;
        };
        let key = RateKey { kind, counted_as: resolved.counted_as };
        let mut rates = self.rates.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(rate) = rates.get_mut(&key) {
            rate.record(-value, now_ms);
        }
    }

    /// Rates being counted.
    pub fn tracked(&self) -> usize {
        self.rates.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }
}

/// Drops every idle rate; if none was, the one idle longest.
fn make_room(rates: &mut HashMap<RateKey, Rate>, now_ms: u64) {
    rates.retain(|_, rate| now_ms.saturating_sub(rate.last_record_ms) < QUOTA_IDLE_MS);
    if rates.len() < QUOTA_TRACKED_ENTITIES_MAX {
        return;
    }
    let oldest = rates.iter().min_by_key(|(_, rate)| rate.last_record_ms).map(|(key, _)| key.clone());
    if let Some(key) = oldest {
        rates.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn entity(user: Option<&str>, client_id: Option<&str>) -> QuotaEntity {
        let name = |text: &str| match text {
            "<default>" => QuotaName::Default,
            name => QuotaName::Named(name.to_string()),
        };
        QuotaEntity { user: user.map(name), client_id: client_id.map(name) }
    }

    fn with_quotas(quotas: &[(QuotaEntity, f64)]) -> SecurityState {
        let mut security = SecurityState::default();
        for (entity, value) in quotas {
            security
                .quotas
                .insert(entity.clone(), BTreeMap::from([("producer_byte_rate".to_string(), value.to_bits())]));
        }
        security
    }

    // Goal: each of Kafka's eight entity forms wins over every one below it, for the client it
    // names; a client that none names is unlimited; the counted-as parts follow the match.
    #[test]
    fn resolution_follows_kafkas_precedence() {
        let order = [
            entity(Some("alice"), Some("app")),
            entity(Some("alice"), Some("<default>")),
            entity(Some("alice"), None),
            entity(Some("<default>"), Some("app")),
            entity(Some("<default>"), Some("<default>")),
            entity(Some("<default>"), None),
            entity(None, Some("app")),
            entity(None, Some("<default>")),
        ];
        for winner in 0..order.len() {
            let present: Vec<_> =
                order[winner..].iter().enumerate().map(|(i, e)| (e.clone(), (winner + i) as f64 + 1.0)).collect();
            let security = with_quotas(&present);
            let resolved = resolve(&security, "producer_byte_rate", "alice", "app").unwrap();
            assert_eq!(resolved.entity, order[winner], "winner {winner}");
            assert_eq!(resolved.quota, winner as f64 + 1.0);
        }
        let security = with_quotas(&[(entity(Some("bob"), None), 5.0), (entity(None, Some("other")), 6.0)]);
        assert_eq!(resolve(&security, "producer_byte_rate", "alice", "app"), None);
        assert_eq!(resolve(&security, "consumer_byte_rate", "bob", "app"), None, "another key");
        let security = with_quotas(&[(entity(Some("<default>"), None), 5.0)]);
        let resolved = resolve(&security, "producer_byte_rate", "alice", "app").unwrap();
        assert_eq!(resolved.counted_as, CountedAs { user: Some("alice".into()), client_id: None });
        let security = with_quotas(&[(entity(None, Some("app")), 5.0)]);
        let resolved = resolve(&security, "producer_byte_rate", "alice", "app").unwrap();
        assert_eq!(resolved.counted_as, CountedAs { user: None, client_id: Some("app".into()) });
    }

    // Goal: the rate is the recorded total over at least ten full windows at first (Kafka's
    // padding), then over the samples' real span; samples older than the window expire.
    #[test]
    fn the_rate_pads_a_young_window_and_forgets_old_samples() {
        let mut rate = Rate::new(0);
        rate.record(10_000.0, 0);
        assert_eq!(rate.window_ms(0), 10_000);
        assert_eq!(rate.per_second(0), 1_000.0);
        // One record per second for 20 s of 1,000 bytes: 11 samples of 1,000 over ~11 s.
        for second in 1..=20 {
            rate.record(1_000.0, second * 1_000);
        }
        let window = rate.window_ms(20_000);
        assert_eq!(window, 10_000, "samples 10..=20 s, started at their records");
        assert!((rate.per_second(20_000) - 1_100.0).abs() < 1e-9, "{}", rate.per_second(20_000));
        // Long silence: every sample expires and the rate is zero.
        assert_eq!(rate.per_second(60_000), 0.0);
    }

    // Goal: Kafka's throttle formula, zero within the quota, capped at the window span.
    #[test]
    fn throttle_time_is_kafkas_formula_bounded() {
        assert_eq!(throttle_ms(1_000.0, 1_000.0, 10_000), 0);
        assert_eq!(throttle_ms(500.0, 1_000.0, 10_000), 0);
        assert_eq!(throttle_ms(1_500.0, 1_000.0, 10_000), 5_000);
        assert_eq!(throttle_ms(1_100.0, 1_000.0, 11_000), 1_100);
        assert_eq!(throttle_ms(1e12, 1_000.0, 10_000), QUOTA_THROTTLE_MS_MAX);
        assert_eq!(throttle_ms(f64::NAN, 1_000.0, 10_000), 0);
    }

    // Goal: with an injected clock, a client within its quota is never throttled, one over it
    // is, by the formula; a client without a quota costs no tracked rate; a fetch taken back
    // no longer counts.
    #[test]
    fn the_manager_throttles_only_clients_over_their_quota() {
        let manager = QuotaManager::new();
        let security = with_quotas(&[(entity(None, Some("slow")), 1_000.0)]);
        // 900 bytes/s for 30 s: within.
        for second in 0..30 {
            assert_eq!(manager.record(&security, QuotaKind::Produce, "u", "slow", 900.0, second * 1_000), Some(0));
        }
        // 3,000 bytes at once: samples 20..=30 s hold 900 × 10 + 3,000 over 10 s = 1,200/s, so
        // (1,200 − 1,000) / 1,000 × 10 s.
        assert_eq!(manager.record(&security, QuotaKind::Produce, "u", "slow", 3_000.0, 30_000), Some(2_000));
        // Far over: capped at the window span.
        assert_eq!(
            manager.record(&security, QuotaKind::Produce, "u", "slow", 1e9, 30_000),
            Some(QUOTA_THROTTLE_MS_MAX)
        );
        manager.unrecord(&security, QuotaKind::Produce, "u", "slow", 1e9, 30_000);
        assert_eq!(manager.record(&security, QuotaKind::Produce, "u", "fast", 1e9, 30_000), None);
        assert_eq!(manager.tracked(), 1);
        // Fetch: over, taken back, and within again.
        let fetch = with_quotas(&[]);
        assert_eq!(manager.record(&fetch, QuotaKind::Fetch, "u", "slow", 1e9, 0), None, "no fetch quota");
        manager.unrecord(&security, QuotaKind::Produce, "u", "slow", 3_000.0, 30_000);
        assert_eq!(manager.record(&security, QuotaKind::Produce, "u", "slow", 0.0, 30_000), Some(0));
    }

    // Goal: the tracked rates stay within their limit, idle ones going first.
    #[test]
    fn tracked_rates_are_bounded() {
        let manager = QuotaManager::new();
        let security = with_quotas(&[(entity(None, Some("<default>")), 1_000.0)]);
        for client in 0..QUOTA_TRACKED_ENTITIES_MAX + 10 {
            manager.record(&security, QuotaKind::Produce, "u", &client.to_string(), 1.0, client as u64);
        }
        assert_eq!(manager.tracked(), QUOTA_TRACKED_ENTITIES_MAX);
        manager.record(&security, QuotaKind::Produce, "u", "late", 1.0, 1_000_000);
        assert_eq!(manager.tracked(), 1, "every other rate was idle");
    }
}
