//! Named listeners, configured as Kafka configures them:
//!
//! - `--listeners NAME://host:port,...` (Kafka's `listeners`): extra listeners beside the
//!   default one (`--listen`, named `PLAINTEXT`); an empty host binds every interface;
//! - `--advertised-listeners NAME://host:port,...`: what clients are told for each (by default
//!   the bound address);
//! - `--listener-security-protocol-map NAME:PROTOCOL,...`: the security protocol of each name;
//!   a listener named after a protocol (`SASL_SSL`) needs no entry.
//!
//! Parsing is pure; binding is the node's.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use sluice_meta::limits::BROKER_LISTENERS_MAX;

/// How a listener secures its connections (Kafka's `SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// No encryption, no authentication (principal `User:ANONYMOUS`).
    Plaintext,
    /// TLS; with client authentication on, the certificate's subject is the principal.
    Ssl,
    /// SASL authentication over plain TCP.
    SaslPlaintext,
    /// SASL authentication inside TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Every protocol.
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections speak TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether a client must authenticate with SASL before anything but ApiVersions and the
    /// SASL requests.
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SecurityProtocol {
    type Err = String;

    fn from_str(text: &str) -> Result<SecurityProtocol, String> {
        SecurityProtocol::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| format!("unknown security protocol {text:?} (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)"))
    }
}

/// One listener, resolved: where it binds, what it advertises, how it is secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Its name, upper case.
    pub name: String,
    /// Where it binds.
    pub address: SocketAddr,
    /// What clients are told (`host:port`); `None`: the bound address.
    pub advertised: Option<String>,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
}

/// The name of the default listener (`--listen`).
pub const DEFAULT_LISTENER_NAME: &str = "PLAINTEXT";

/// Splits `NAME://host:port` lists (`listeners`, `advertised.listeners`) into name and
/// `host:port`, names upper-cased, in order.
fn parse_endpoints(text: &str, what: &str) -> Result<Vec<(String, String)>, String> {
    let mut endpoints = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, address) =
            part.split_once("://").ok_or_else(|| format!("{what}: {part:?} is not of the form NAME://host:port"))?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{what}: listener name {name:?} must be letters, digits and _"));
        }
        if endpoints.iter().any(|(seen, _)| *seen == name) {
            return Err(format!("{what}: listener {name} named twice"));
        }
        endpoints.push((name, address.trim().to_string()));
    }
    Ok(endpoints)
}

fn parse_bind_address(name: &str, address: &str) -> Result<SocketAddr, String> {
    let (host, port) =
        address.rsplit_once(':').ok_or_else(|| format!("--listeners: {name}: {address:?} has no port"))?;
    let port: u16 = port.parse().map_err(|_| format!("--listeners: {name}: bad port in {address:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = if host.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        host.parse().map_err(|_| format!("--listeners: {name}: bind host {host:?} must be an IP address"))?
    };
    Ok(SocketAddr::new(ip, port))
}

/// Resolves the extra listeners from the three Kafka-style flags (each may be empty).
/// `default_name` is the default listener's name, which `listeners` may not reuse.
pub fn resolve_listeners(listeners: &str, advertised: &str, protocol_map: &str) -> Result<Vec<ListenerSpec>, String> {
    let mut protocols = BTreeMap::new();
    for part in protocol_map.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, protocol) = part
            .split_once(':')
            .ok_or_else(|| format!("--listener-security-protocol-map: {part:?} is not NAME:PROTOCOL"))?;
        protocols.insert(name.trim().to_ascii_uppercase(), protocol.trim().parse::<SecurityProtocol>()?);
    }
    let advertised: BTreeMap<String, String> =
        parse_endpoints(advertised, "--advertised-listeners")?.into_iter().collect();
    let mut specs = Vec::new();
    for (name, address) in parse_endpoints(listeners, "--listeners")? {
        if name == DEFAULT_LISTENER_NAME {
            return Err(format!(
                "--listeners: {DEFAULT_LISTENER_NAME} is the default listener (--listen); name this one otherwise"
            ));
        }
        let protocol = match protocols.get(&name) {
            Some(protocol) => *protocol,
            None => name.parse().map_err(|_| {
                format!("--listeners: {name} needs an entry in --listener-security-protocol-map (NAME:PROTOCOL)")
            })?,
        };
        let address = parse_bind_address(&name, &address)?;
        let advertised = advertised.get(&name).cloned();
        if advertised.is_none() && address.ip().is_unspecified() {
            return Err(format!(
                "--listeners: {name} binds every interface; give its address in --advertised-listeners"
            ));
        }
        specs.push(ListenerSpec { name, address, advertised, protocol });
    }
    if let Some(unknown) = advertised.keys().find(|name| !specs.iter().any(|s| s.name == **name)) {
        return Err(format!("--advertised-listeners: {unknown} is not in --listeners"));
    }
    if specs.len() + 1 > BROKER_LISTENERS_MAX {
        return Err(format!("at most {BROKER_LISTENERS_MAX} listeners"));
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: Kafka's three settings resolve to bound, advertised and secured listeners, a
    // listener named after its protocol needs no map entry, and mistakes are named.
    #[test]
    fn listeners_resolve_as_kafka_configures_them() {
        let specs = resolve_listeners(
            "SASL_SSL://127.0.0.1:9094, external://:9095",
            "EXTERNAL://broker1.example:9095",
            "EXTERNAL:SASL_PLAINTEXT",
        )
        .unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "SASL_SSL");
        assert_eq!(specs[0].protocol, SecurityProtocol::SaslSsl);
        assert_eq!(specs[0].address.to_string(), "127.0.0.1:9094");
        assert_eq!(specs[0].advertised, None);
        assert_eq!(specs[1].name, "EXTERNAL");
        assert_eq!(specs[1].protocol, SecurityProtocol::SaslPlaintext);
        assert_eq!(specs[1].address.to_string(), "0.0.0.0:9095");
        assert_eq!(specs[1].advertised.as_deref(), Some("broker1.example:9095"));
        assert!(resolve_listeners("", "", "").unwrap().is_empty());

        for (listeners, advertised, map, says) in [
            ("EXTERNAL://127.0.0.1:1", "", "", "needs an entry"),
            ("SSL://127.0.0.1:1,SSL://127.0.0.1:2", "", "", "named twice"),
            ("PLAINTEXT://127.0.0.1:1", "", "", "default listener"),
            ("SSL://:1", "", "", "--advertised-listeners"),
            ("SSL://127.0.0.1:1", "OTHER://h:1", "", "not in --listeners"),
            ("SSL://localhost:1", "", "", "IP address"),
            ("SSL:127.0.0.1:1", "", "", "NAME://host:port"),
            ("X://127.0.0.1:1", "", "X:TLS", "unknown security protocol"),
        ] {
            let error = resolve_listeners(listeners, advertised, map).unwrap_err();
            assert!(error.contains(says), "{listeners}: {error}");
        }
    }
}
