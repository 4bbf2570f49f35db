//! Start-time checks of the `--voters` list against this node's own Raft listener.
//!
//! A node whose own entry in `--voters` names another address than the one it listens on
//! cannot be reached by its peers at the address they were given (and, alone, it waited for a
//! leader for [`crate::node::REGISTRATION_TIMEOUT_MS`] before failing with "no Raft leader
//! known"). [`check_own_entry`] refuses that at start with one line. Host names cannot be
//! compared without asking DNS (and in a container the name may be the only thing the peers
//! know), so a named host is checked by its port only; an IP literal must also be the listening
//! IP unless the node listens on every interface. Port mapping between the voter address and
//! the listener (NAT) is therefore not supported for the Raft port.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// Checks `node_id`'s entry in `voters` against `raft_listen`, the bound Raft address. A node
/// not in the list (a learner joining later) passes. The error is the one line to print.
pub fn check_own_entry(node_id: u64, voters: &BTreeMap<u64, String>, raft_listen: SocketAddr) -> Result<(), String> {
    let Some(entry) = voters.get(&node_id) else { return Ok(()) };
    let mismatch = || {
        format!(
            "--voters names node {node_id} at {entry} but it listens for Raft on {raft_listen} (--raft-listen); \
             they must name the same address"
        )
    };
    let Some((host, port)) = entry.rsplit_once(':') else { return Err(mismatch()) };
    if port.parse::<u16>().ok() != Some(raft_listen.port()) {
        return Err(mismatch());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) if !raft_listen.ip().is_unspecified() && ip != raft_listen.ip() => Err(mismatch()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters(text: &str) -> BTreeMap<u64, String> {
        sluice_meta::parse_voters(text).unwrap()
    }

    fn listen(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    // Goal: the address peers are given must be the one the node listens on; names are
    // checked by port, IP literals by IP and port, a wildcard listener accepts any IP.
    #[test]
    fn own_voter_entry_must_name_the_listening_address() {
        let list = voters("1@127.0.0.1:9093,2@node-b:9093,3@[::1]:9093");
        assert_eq!(check_own_entry(1, &list, listen("127.0.0.1:9093")), Ok(()));
        assert_eq!(check_own_entry(2, &list, listen("0.0.0.0:9093")), Ok(()));
        assert_eq!(check_own_entry(3, &list, listen("[::1]:9093")), Ok(()));
        assert_eq!(check_own_entry(1, &list, listen("0.0.0.0:9093")), Ok(()));
        assert_eq!(check_own_entry(4, &list, listen("127.0.0.1:1")), Ok(()), "a learner is not in the list");
        let wrong_port = check_own_entry(1, &list, listen("127.0.0.1:9193")).unwrap_err();
        assert_eq!(
            wrong_port,
            "--voters names node 1 at 127.0.0.1:9093 but it listens for Raft on 127.0.0.1:9193 (--raft-listen); \
             they must name the same address"
        );
        assert!(check_own_entry(2, &list, listen("0.0.0.0:9094")).is_err());
        assert!(check_own_entry(1, &list, listen("127.0.0.2:9093")).is_err());
    }
}
