//! Goal: show that with internal TLS (`MetaConfig::internal_tls`) the metadata group works over
//! mutual TLS, and that a peer without a certificate of the group's CA — or, with an allowed
//! principal list, with a certificate of another subject — can neither join nor talk to it.
//! Method: a CA and per-node certificates made in the test with rcgen (SANs `localhost` and
//! `127.0.0.1`, as `scripts/make-certs.sh` makes them); a 3-voter cluster on 127.0.0.1 elects a
//! leader and commits proposals made on the leader and on a follower (forwarded over TLS); a
//! fourth node with a certificate of the same CA joins as a learner; RPC clients with a
//! certificate of another CA, with plain TCP, or with a subject not allowed are refused at
//! every node; a node with a foreign certificate started with `join` does not get in; the
//! cluster keeps committing throughout.

mod common;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::PrivatePkcs8KeyDer;
use sluice_meta::membership::MembershipChange;
use sluice_meta::network::CallError;
use sluice_meta::network::PeerClient;
use sluice_meta::rpc::RpcRequest;
use sluice_meta::InternalTls;
use sluice_meta::MetaNode;
use sluice_meta::NetworkSwitch;
use sluice_meta::NodeId;
use tokio::net::TcpListener;

/// A test certificate authority.
struct Ca {
    certificate: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        Ca { certificate, key }
    }

    /// The internal TLS setup of a node whose certificate (subject `CN=<name>` and
    /// `O=sluice-test`, SANs `localhost`, `127.0.0.1`) this CA signs, trusting only this CA.
    fn node_tls(&self, name: &str) -> InternalTls {
        self.node(name).0
    }

    /// The same, with the certificate's principal (`User:` and its RFC 2253 subject).
    fn node(&self, name: &str) -> (InternalTls, String) {
        let sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "sluice-test");
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.certificate, &self.key).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let ca: CertificateDer<'static> = self.certificate.der().clone();
        let principal = format!("User:{}", sluice_meta::tls::certificate_subject(certificate.der()).unwrap());
        assert!(principal.contains(&format!("CN={name}")), "{principal}");
        (InternalTls::from_der(vec![certificate.der().clone()], key, vec![ca]).unwrap(), principal)
    }
}

/// A client posing as node 99, dialing `addr` for `target` with `tls` (plain TCP with `None`).
fn intruder(target: NodeId, addr: std::net::SocketAddr, tls: Option<InternalTls>) -> PeerClient {
    PeerClient::new(99, target, addr.to_string(), NetworkSwitch::default()).with_tls(tls)
}

/// Asks every node of `cluster` to add node 99 as a learner through `tls`; every call must be
/// refused before the request is read.
async fn assert_refused_everywhere(cluster: &Cluster, tls: Option<InternalTls>, what: &str) {
    for (&id, &addr) in &cluster.addrs {
        let mut client = intruder(id, addr, tls.clone());
        let request =
            RpcRequest::ChangeMembership(MembershipChange::AddLearner { node_id: 99, addr: addr.to_string() });
        match client.call(&request, Duration::from_secs(2)).await {
            Err(CallError::Unreachable(reason)) => tracing::info!(node = id, %reason, "{what}: refused as expected"),
            other => panic!("{what}: node {id} answered {other:?}"),
        }
    }
}

fn members(cluster: &Cluster, id: NodeId) -> BTreeSet<NodeId> {
    cluster.node(id).metrics().borrow().membership_config.membership().nodes().map(|(id, _)| *id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_commits_and_admits_only_certificates_of_its_ca() {
    let ca = Ca::new("sluice test CA");
    let tls: BTreeMap<NodeId, InternalTls> = (1..=3).map(|id| (id, ca.node_tls(&format!("node-{id}")))).collect();
    let mut cluster = Cluster::start_with_tls(3, no_tuning, tls).await;
    let leader = cluster.wait_leader(&[1, 2, 3], Duration::from_secs(10)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();

    // Proposals on the leader and through a follower (forwarded to the leader over TLS).
    let index = cluster.node(leader).propose(register(1)).await.unwrap().log_index;
    cluster.wait_applied(&[1, 2, 3], index).await;
    let index = cluster.node(follower).propose(register(2)).await.unwrap().log_index;
    let views = cluster.wait_applied(&[1, 2, 3], index).await;
    assert!(views.iter().all(|view| view.view.brokers.len() == 2));

    // A certificate of another CA, and plain TCP, are refused by every node.
    let other_ca = Ca::new("mallory CA");
    assert_refused_everywhere(&cluster, Some(other_ca.node_tls("node-1")), "foreign CA").await;
    assert_refused_everywhere(&cluster, None, "plain TCP").await;

    // A node with a foreign certificate started with `join` does not get in.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rogue_addr = listener.local_addr().unwrap();
    let mut config =
        sluice_meta::MetaConfig::new(5, cluster.data.path().join("node-5"), rogue_addr, cluster.voters.clone());
    config.join = true;
    config.internal_tls = Some(other_ca.node_tls("node-5"));
    let start = tokio::time::timeout(Duration::from_secs(3), MetaNode::start_with_listener(config, listener)).await;
    assert!(!matches!(start, Ok(Ok(_))), "a node with a foreign certificate joined");
    drop(start);

    // A node with a certificate of the group's CA joins as a learner and catches up.
    cluster.internal_tls.insert(4, ca.node_tls("node-4"));
    cluster.start_joiner(4).await;
    let index = cluster.node(follower).propose(register(3)).await.unwrap().log_index;
    let views = cluster.wait_applied(&[1, 2, 3, 4], index).await;
    assert!(views.iter().all(|view| view.view.brokers.len() == 3));
    let leader = cluster.wait_leader(&[1, 2, 3], Duration::from_secs(10)).await;
    assert_eq!(members(&cluster, leader), BTreeSet::from([1, 2, 3, 4]));
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_principals_keep_out_other_subjects_of_the_same_ca() {
    let ca = Ca::new("sluice test CA");
    let nodes: BTreeMap<NodeId, (InternalTls, String)> =
        (1..=3).map(|id| (id, ca.node(&format!("node-{id}")))).collect();
    let allowed: Vec<String> = nodes.values().map(|(_, principal)| principal.clone()).collect();
    let tls: BTreeMap<NodeId, InternalTls> =
        nodes.into_iter().map(|(id, (tls, _))| (id, tls.with_allowed_principals(allowed.clone()))).collect();
    let cluster = Cluster::start_with_tls(3, no_tuning, tls).await;
    let leader = cluster.wait_leader(&[1, 2, 3], Duration::from_secs(10)).await;

    // Same CA, a subject not in the list: refused (the server checks after the handshake).
    assert_refused_everywhere(&cluster, Some(ca.node_tls("intruder")), "subject not allowed").await;
    // An allowed subject that itself restricts the server's subject: both ends must pass.
    let picky = ca.node_tls("node-1").with_allowed_principals([ca.node("someone-else").1]);
    assert_refused_everywhere(&cluster, Some(picky), "server subject not allowed by the client").await;

    let index = cluster.node(leader).propose(register(1)).await.unwrap().log_index;
    cluster.wait_applied(&[1, 2, 3], index).await;
    assert_eq!(members(&cluster, leader), BTreeSet::from([1, 2, 3]));
}
