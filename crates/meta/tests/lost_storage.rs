//! Goal: show what a metadata node does when it comes back with an empty disk under the same
//! id. A voter must not take part in Raft again as if nothing happened (it has forgotten its
//! vote and the entries it acknowledged): while the group still counts it as a voter it refuses
//! to start with one error naming the operator's steps; once demoted it rejoins as a learner,
//! receives the whole state again and can be promoted. A learner (a broker outside `--voters`)
//! simply rejoins and receives the log or a snapshot from scratch, and the leader keeps
//! working. A cluster's first start still costs no waiting.
//! Method: a `Cluster` of real `MetaNode`s on loopback; a node is stopped, its data directory
//! deleted, and started again on the same port with the same configuration.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;
use std::time::Instant;

use common::*;
use sluice_meta::limits::BOOTSTRAP_PROBE_TIMEOUT_MS;
use sluice_meta::MetaError;
use sluice_meta::MetaNode;
use sluice_meta::Role;

const WAIT: Duration = Duration::from_secs(10);

async fn voters_seen_by(node: &MetaNode) -> BTreeSet<u64> {
    let quorum = node.describe_quorum().await.unwrap();
    quorum.members.iter().filter(|m| m.role == Role::Voter).map(|m| m.node_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_with_an_empty_disk_refuses_until_demoted_then_rejoins_and_is_promoted() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_leader(&[1, 2, 3], WAIT).await;
    let lost = (1..=3).find(|id| *id != leader).unwrap();
    let other = (1..=3).find(|id| *id != leader && *id != lost).unwrap();
    let last = register_brokers(&cluster.node(leader), 3).await;
    cluster.wait_applied(&[1, 2, 3], last).await;

    cluster.stop(lost).await;
    cluster.wipe(lost);
    let refused = cluster.try_restart(lost, false).await.expect_err("a voter with lost storage started");
    assert!(matches!(refused, MetaError::LostVoter { node_id, .. } if node_id == lost), "{refused}");
    let message = refused.to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(message.contains(&format!("sluice cluster remove-voter {lost}")), "{message}");
    assert!(message.contains(&format!("sluice cluster add-voter {lost}")), "{message}");
    cluster.node(leader).remove_voter(lost).await.unwrap();
    let rejoined = cluster.try_restart(lost, false).await.expect("a demoted node rejoins");
    wait_role(&rejoined, Role::Learner, WAIT).await;
    let proposed = cluster.node(other).propose(register(7)).await.unwrap();
    let views = cluster.wait_applied(&[leader, lost], proposed.log_index).await;
    assert_eq!(views[0].view, views[1].view, "the rejoined node holds the whole state again");

    rejoined.add_voter(lost, None).await.unwrap();
    assert_eq!(voters_seen_by(&cluster.node(leader)).await, BTreeSet::from([1, 2, 3]));
    // It counts for the quorum again: with the third voter stopped, the group still commits.
    cluster.stop(other).await;
    let leader_now = cluster.wait_leader(&[leader, lost], WAIT).await;
    let proposed = cluster.node(leader_now).propose(register(8)).await.unwrap();
    cluster.wait_applied(&[leader, lost], proposed.log_index).await;
    cluster.stop_all().await;
}

fn snapshot_often(config: &mut sluice_meta::MetaConfig) {
    config.snapshot_logs_since_last = 20;
    config.logs_kept_after_snapshot = 0;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_with_an_empty_disk_rejoins_and_receives_everything_again() {
    let mut cluster = Cluster::start_tuned(3, snapshot_often).await;
    let leader = cluster.wait_leader(&[1, 2, 3], WAIT).await;
    register_brokers(&cluster.node(leader), 3).await;
    let learner = cluster.start_joiner(4).await;
    let mut last = 0;
    for index in 0..60 {
        last = cluster.node(leader).propose(create_topic(&format!("t{index}"), 1, 2)).await.unwrap().log_index;
    }
    learner.wait_applied(last, WAIT).await.unwrap();
    let learner_last = learner.metrics().borrow().last_log_index.unwrap();

    cluster.stop(4).await;
    cluster.wipe(4);
    // The leader's replication to node 4 had matched `learner_last`; the new process has
    // nothing. The leader must start again from the beginning (not stop, not panic).
    let rejoined = cluster.try_restart(4, true).await.expect("the learner rejoins");
    for index in 60..70 {
        last = cluster.node(leader).propose(create_topic(&format!("t{index}"), 1, 2)).await.unwrap().log_index;
    }
    let views = cluster.wait_applied(&[leader, 4], last).await;
    assert_eq!(views[0].view, views[1].view, "the rejoined learner holds the whole state again");
    assert!(views[1].view.topics.contains_key("t0"), "including what it had before its disk was lost");
    assert!(rejoined.metrics().borrow().last_log_index.is_some_and(|index| index > learner_last));
    assert_eq!(cluster.wait_leader(&[1, 2, 3], WAIT).await, leader, "the leader kept leading");
    assert_eq!(rejoined.role(), Role::Learner);
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_does_not_wait_for_the_voters_to_be_asked() {
    let started = Instant::now();
    let mut cluster = Cluster::start(3).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(BOOTSTRAP_PROBE_TIMEOUT_MS),
        "three voters starting together took {took:?}: they waited out the group-status question"
    );
    cluster.wait_leader(&[1, 2, 3], WAIT).await;
    cluster.stop_all().await;
}
