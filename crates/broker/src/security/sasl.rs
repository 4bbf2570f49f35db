//! SASL on a connection: where the exchange stands ([`SaslState`]), which requests it lets
//! through ([`gate`]), the mechanisms a broker offers ([`SaslConfig`]) and the growing delay
//! after failed logins from one address ([`FailedLogins`]).
//!
//! ```text
//! AwaitingHandshake ─SaslHandshake(mech)─▶ AwaitingToken ─SaslAuthenticate─┬─ PLAIN ok ─────────────▶ Authenticated
//!                                                                         ├─ SCRAM first ─▶ Scram ─final ok─▶ Authenticated
//!                                                                         └─ failure: error 58, delay, close
//! Authenticated ─SaslHandshake─▶ AwaitingToken (KIP-152 re-authentication; the principal may not change)
//! ```
//!
//! Before it is authenticated a SASL connection may send ApiVersions and the two SASL requests
//! only; anything else closes it, as Kafka does. With `--connections-max-reauth-ms`, the
//! session expires that long after authenticating: the client re-authenticates on the same
//! connection before then (librdkafka, the Java client), or its next request closes it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sluice_meta::security::ScramMechanism;
use sluice_proto::kafka_protocol::messages::ApiKey;

use super::scram::ScramExchange;

/// First delay before answering a failed authentication, in milliseconds (Kafka's
/// `connection.failed.authentication.delay.ms` default). It doubles with each further failure
/// from the same address, up to [`FAILED_LOGIN_DELAY_MS_MAX`].
pub const FAILED_LOGIN_DELAY_MS_MIN: u64 = 100;

/// Longest delay before answering a failed authentication, in milliseconds: a password
/// guesser on one address gets about one try per 5 s (and keeps a connection slot meanwhile).
pub const FAILED_LOGIN_DELAY_MS_MAX: u64 = 5_000;

/// An address's failures are forgotten this long after its last one, in milliseconds.
pub const FAILED_LOGIN_MEMORY_MS: u64 = 60_000;

/// Addresses whose failures are remembered at once. Beyond it the stalest is forgotten: a
/// spread-out attack costs this map no more than about 100 bytes per entry.
pub const FAILED_LOGIN_ADDRESSES_MAX: usize = 10_000;

/// Time a connection has from its first byte to a completed TLS handshake and, on a SASL
/// listener, to a successful authentication, in milliseconds. A client that stalls is closed
/// after it, so stalled handshakes cost connection slots only for this long.
pub const AUTHENTICATION_TIMEOUT_MS: u64 = 10_000;

const _: () = assert!(FAILED_LOGIN_DELAY_MS_MAX < AUTHENTICATION_TIMEOUT_MS);

/// A SASL mechanism the broker offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// PLAIN (RFC 4616), checked against the user's SCRAM credentials. Only over TLS in
    /// production: the password crosses the wire.
    Plain,
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    Scram(ScramMechanism),
}

impl Mechanism {
    /// The SASL name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(scram) => scram.sasl_name(),
        }
    }

    /// The mechanism of SASL name `name`.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        if name == "PLAIN" {
            return Some(Mechanism::Plain);
        }
        ScramMechanism::from_sasl_name(name).map(Mechanism::Scram)
    }
}

/// The SASL settings of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// Offered mechanisms, in the order the handshake lists them (`--sasl-enabled-mechanisms`).
    pub mechanisms: Vec<Mechanism>,
    /// Session lifetime after authentication, in milliseconds (`--connections-max-reauth-ms`,
    /// Kafka's `connections.max.reauth.ms`); 0: sessions do not expire.
    pub reauth_ms: u64,
}

impl Default for SaslConfig {
    fn default() -> Self {
        SaslConfig {
            mechanisms: vec![
                Mechanism::Scram(ScramMechanism::Sha512),
                Mechanism::Scram(ScramMechanism::Sha256),
                Mechanism::Plain,
            ],
            reauth_ms: 0,
        }
    }
}

/// Parses `--sasl-enabled-mechanisms` (comma-separated SASL names).
pub fn parse_mechanisms(text: &str) -> Result<Vec<Mechanism>, String> {
    let mut mechanisms = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let mechanism = Mechanism::from_name(&name.to_ascii_uppercase())
            .ok_or_else(|| format!("unknown SASL mechanism {name:?} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"))?;
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    if mechanisms.is_empty() {
        return Err("at least one SASL mechanism must be enabled".into());
    }
    Ok(mechanisms)
}

/// Where a connection's SASL exchange stands.
#[derive(Debug)]
pub enum SaslState {
    /// The listener does not use SASL.
    NotRequired,
    /// Nothing yet: a SaslHandshake must come first.
    AwaitingHandshake,
    /// A mechanism is chosen; its first token is expected. `reauth` holds the principal name
    /// of a re-authenticating session (KIP-152), which must not change.
    AwaitingToken {
        /// The chosen mechanism.
        mechanism: Mechanism,
        /// The user already authenticated on this connection, when re-authenticating.
        reauth: Option<String>,
    },
    /// A SCRAM exchange after the server-first message.
    Scram {
        /// The exchange.
        exchange: Box<ScramExchange>,
        /// As in `AwaitingToken`.
        reauth: Option<String>,
    },
    /// Authenticated as `user`; the session ends at `expires` (with re-authentication on).
    Authenticated {
        /// The user.
        user: String,
        /// When the session expires.
        expires: Option<Instant>,
    },
}

impl SaslState {
    /// Whether requests other than the SASL ones may pass.
    pub fn is_authenticated(&self, now: Instant) -> bool {
        match self {
            SaslState::NotRequired => true,
            SaslState::Authenticated { expires, .. } => expires.is_none_or(|at| now < at),
            _ => false,
        }
    }
}

/// What the dispatcher does with a request of `api` in `state` at `now`: `None` lets it
/// through, `Some(reason)` closes the connection (Kafka closes a connection that sends other
/// requests before authenticating, or after its session expired).
pub fn gate(state: &SaslState, api: i16, now: Instant) -> Option<String> {
    let always = [ApiKey::ApiVersions as i16, ApiKey::SaslHandshake as i16, ApiKey::SaslAuthenticate as i16];
    if always.contains(&api) || state.is_authenticated(now) {
        return None;
    }
    Some(match state {
        SaslState::Authenticated { .. } => format!("api {api} after the SASL session expired (re-authentication due)"),
        _ => format!("api {api} before SASL authentication"),
    })
}

/// Failed logins by client address, for the growing delay before the failure is answered.
#[derive(Debug, Default)]
pub struct FailedLogins {
    by_address: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl FailedLogins {
    /// Records a failure from `address` at `now`; returns how long to wait before answering.
    pub fn record(&self, address: IpAddr, now: Instant) -> Duration {
        let mut map = self.by_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let memory = Duration::from_millis(FAILED_LOGIN_MEMORY_MS);
        if map.len() >= FAILED_LOGIN_ADDRESSES_MAX && !map.contains_key(&address) {
            map.retain(|_, (_, last)| now.saturating_duration_since(*last) < memory);
            if map.len() >= FAILED_LOGIN_ADDRESSES_MAX {
                let stalest = map.iter().min_by_key(|(_, (_, last))| *last).map(|(a, _)| *a);
                if let Some(stalest) = stalest {
                    map.remove(&stalest);
                }
            }
        }
        let entry = map.entry(address).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= memory {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        failed_login_delay(entry.0)
    }
}

/// The delay after the `failures`-th recent failure from one address: 100 ms doubling to 5 s.
pub fn failed_login_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    Duration::from_millis((FAILED_LOGIN_DELAY_MS_MIN << doublings).min(FAILED_LOGIN_DELAY_MS_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: before authentication only ApiVersions and the SASL requests pass; after it,
    // everything, until the session expires.
    #[test]
    fn only_sasl_requests_pass_before_authentication() {
        let now = Instant::now();
        let produce = ApiKey::Produce as i16;
        assert!(gate(&SaslState::NotRequired, produce, now).is_none());
        assert!(gate(&SaslState::AwaitingHandshake, produce, now).is_some());
        assert!(gate(&SaslState::AwaitingHandshake, ApiKey::ApiVersions as i16, now).is_none());
        assert!(gate(&SaslState::AwaitingHandshake, ApiKey::SaslHandshake as i16, now).is_none());
        let waiting = SaslState::AwaitingToken { mechanism: Mechanism::Plain, reauth: None };
        assert!(gate(&waiting, ApiKey::Metadata as i16, now).is_some());
        let until = now + Duration::from_secs(1);
        let session = SaslState::Authenticated { user: "alice".into(), expires: Some(until) };
        assert!(gate(&session, produce, now).is_none());
        let closed = gate(&session, produce, until).unwrap();
        assert!(closed.contains("expired"), "{closed}");
        assert!(gate(&session, ApiKey::SaslHandshake as i16, until).is_none(), "re-authentication may start");
    }

    // Goal: the delay doubles per failure from one address up to its cap, is per address, and
    // is forgotten after a quiet minute; the map stays bounded.
    #[test]
    fn failed_logins_back_off_per_address() {
        let logins = FailedLogins::default();
        let now = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let delays: Vec<u64> = (0..8).map(|_| logins.record(a, now).as_millis() as u64).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(logins.record(b, now).as_millis(), 100, "another address starts afresh");
        let later = now + Duration::from_millis(FAILED_LOGIN_MEMORY_MS);
        assert_eq!(logins.record(a, later).as_millis(), 100, "forgotten after a quiet minute");
        for i in 0..(FAILED_LOGIN_ADDRESSES_MAX as u32 + 10) {
            logins.record(IpAddr::from(i.to_be_bytes()), later);
        }
        assert!(logins.by_address.lock().unwrap().len() <= FAILED_LOGIN_ADDRESSES_MAX);
    }

    #[test]
    fn mechanisms_parse_by_sasl_name() {
        assert_eq!(
            parse_mechanisms("scram-sha-512, PLAIN,PLAIN").unwrap(),
            vec![Mechanism::Scram(ScramMechanism::Sha512), Mechanism::Plain]
        );
        assert!(parse_mechanisms("GSSAPI").is_err());
        assert!(parse_mechanisms("").is_err());
    }
}
