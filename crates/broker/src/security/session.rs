//! A connection's session: the listener it came in on, the peer, and the principal it acts as.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::listener::SecurityProtocol;
use super::sasl::SaslState;

/// Whom a request acts for: Kafka's `KafkaPrincipal`, `Type:name` (`User:alice`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The principal type (`User`).
    pub kind: String,
    /// The name (`alice`, `ANONYMOUS`, or a certificate's subject).
    pub name: String,
}

impl Principal {
    /// The principal type of every authenticated client.
    pub const USER_TYPE: &'static str = "User";

    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Principal {
        Principal { kind: Principal::USER_TYPE.to_string(), name: name.into() }
    }

    /// `User:ANONYMOUS`, the principal of a PLAINTEXT connection and of an SSL one without a
    /// client certificate (as in Kafka).
    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS")
    }

    /// Parses `Type:name`; `None` without a colon or with an empty part.
    pub fn parse(text: &str) -> Option<Principal> {
        let (kind, name) = text.split_once(':')?;
        (!kind.is_empty() && !name.is_empty()).then(|| Principal { kind: kind.to_string(), name: name.to_string() })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// A listener as its connections see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    /// The listener name (`PLAINTEXT`, `SASL_SSL`, `EXTERNAL`); metadata answers give the
    /// brokers' endpoints on the listener of this name.
    pub name: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
}

/// One connection's security context, owned by the connection and lent to every request.
#[derive(Debug)]
pub struct Session {
    /// The listener the connection came in on.
    pub listener: Arc<ListenerInfo>,
    /// The client's address.
    pub peer: SocketAddr,
    /// Whom the connection acts for: `User:ANONYMOUS` until authenticated.
    pub principal: Principal,
    /// Where the SASL exchange stands (`NotRequired` off SASL listeners).
    pub sasl: SaslState,
    /// Set once the connection has authenticated (the connection's authentication deadline
    /// watches it).
    authenticated: Arc<AtomicBool>,
}

impl Session {
    /// A session of `peer` on `listener`, acting as `principal` (the certificate's subject on
    /// an SSL listener with client authentication, else `User:ANONYMOUS`).
    pub fn new(listener: Arc<ListenerInfo>, peer: SocketAddr, principal: Principal) -> Session {
        let sasl = if listener.protocol.uses_sasl() { SaslState::AwaitingHandshake } else { SaslState::NotRequired };
        let authenticated = Arc::new(AtomicBool::new(!listener.protocol.uses_sasl()));
        Session { listener, peer, principal, sasl, authenticated }
    }

    /// Records a successful SASL authentication as `user`.
    pub fn authenticated_as(&mut self, user: &str, expires: Option<std::time::Instant>) {
        self.principal = Principal::user(user);
        self.sasl = SaslState::Authenticated { user: user.to_string(), expires };
        self.authenticated.store(true, Ordering::Release);
    }

    /// A flag that turns true once the connection has authenticated.
    pub fn authenticated_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.authenticated)
    }

    /// A PLAINTEXT session (the default listener, tests).
    pub fn plaintext(peer: SocketAddr) -> Session {
        let listener = ListenerInfo {
            name: SecurityProtocol::Plaintext.name().to_string(),
            protocol: SecurityProtocol::Plaintext,
        };
        Session::new(Arc::new(listener), peer, Principal::anonymous())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_parse_and_print_as_type_colon_name() {
        let alice = Principal::parse("User:alice").unwrap();
        assert_eq!(alice, Principal::user("alice"));
        assert_eq!(alice.to_string(), "User:alice");
        assert_eq!(Principal::parse("User:CN=a,O=b").unwrap().name, "CN=a,O=b");
        assert_eq!(Principal::parse("alice"), None);
        assert_eq!(Principal::parse("User:"), None);
    }
}
