//! A connection's session: the listener it came in on, the peer, and the principal it acts as.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use super::listener::SecurityProtocol;

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
}

impl Session {
    /// A session of `peer` on `listener`, acting as `principal`.
    pub fn new(listener: Arc<ListenerInfo>, peer: SocketAddr, principal: Principal) -> Session {
        Session { listener, peer, principal }
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
