//! Goal: a node joins the running metadata group through `--join` — plain Raft addresses of
//! running members, here only a learner's — without a voter list and without knowing any id:
//! the learner redirects the request to the leader, the new node catches up, adopts the
//! group's cluster id, and on its next start ignores the join list (its membership and cluster
//! id are on its disk).
//! Method: a `Cluster` of three real voters and a learner on loopback; a fifth `MetaNode` is
//! started with an empty `voters` map and `join_addrs` naming the learner, then stopped and
//! started again with a join address nobody listens on.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use sluice_meta::MetaConfig;
use sluice_meta::MetaNode;
use sluice_meta::Role;
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(10);
const CLUSTER_ID: &str = "sluice-join-test";

fn with_cluster_id(config: &mut MetaConfig) {
    config.cluster_id = Some(CLUSTER_ID.to_string());
}

/// Node `id`'s configuration with no voters, no cluster id, joining through `join_addrs`.
fn joiner_config(cluster: &Cluster, id: u64, join_addrs: Vec<String>) -> MetaConfig {
    let mut config = cluster.config(id);
    config.voters = BTreeMap::new();
    config.cluster_id = None;
    config.join = true;
    config.join_addrs = join_addrs;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_through_a_learner_alone_and_catches_up() {
    let mut cluster = Cluster::start_tuned(3, with_cluster_id).await;
    let leader = cluster.wait_leader(&[1, 2, 3], WAIT).await;
    let learner = cluster.start_joiner(4).await;
    wait_role(&learner, Role::Learner, WAIT).await;
    let last = register_brokers(&cluster.node(leader), 4).await;
    cluster.wait_applied(&[4], last).await;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    cluster.addrs.insert(5, listener.local_addr().unwrap());
    let config = joiner_config(&cluster, 5, vec![cluster.addrs[&4].to_string()]);
    let joined = MetaNode::start_with_listener(config, listener).await.expect("joined through the learner");
    cluster.nodes.insert(5, std::sync::Arc::new(joined));
    let joined = cluster.node(5);
    assert_eq!(cluster.node(leader).describe_quorum().await.unwrap().members.len(), 5);
    wait_role(&joined, Role::Learner, WAIT).await;
    assert_eq!(joined.cluster_id().as_deref(), Some(CLUSTER_ID), "adopted from the learner");

    // It receives what is committed before and after it joined.
    let proposed = cluster.node(4).propose(register(9)).await.unwrap();
    let views = cluster.wait_applied(&[leader, 5], proposed.log_index).await;
    assert_eq!(views[0].view, views[1].view);
    assert!(views[1].view.brokers.contains_key(&1) && views[1].view.brokers.contains_key(&9));

    // A later start ignores the join list: nobody listens at its address, and it starts.
    cluster.stop(5).await;
    let listener = cluster.rebind(5).await;
    let config = joiner_config(&cluster, 5, vec!["127.0.0.1:1".to_string()]);
    let restarted = MetaNode::start_with_listener(config, listener).await.expect("a later start needs no member");
    assert_eq!(restarted.cluster_id().as_deref(), Some(CLUSTER_ID), "kept on disk");
    let proposed = cluster.node(leader).propose(register(10)).await.unwrap();
    restarted.wait_applied(proposed.log_index, WAIT).await.unwrap();
    restarted.shutdown().await.unwrap();
    cluster.stop_all().await;
}
