//! Goal: show that concurrent proposals are batched into shared Raft entries while each
//! command keeps its own result, and that a rejected command does not affect the commands
//! batched with it.
//! Method: one voter on 127.0.0.1; 200 concurrent `propose` calls, a tenth of them duplicates
//! of another's topic name; check every caller's result and the applied view.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use sluice_meta::CommandOutcome;
use sluice_meta::MetaError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_share_entries_and_keep_their_own_results() {
    let mut cluster = Cluster::start(1).await;
    cluster.wait_leader(&[1], Duration::from_secs(10)).await;
    let node = cluster.node(1);
    register_brokers(&node, 1).await;

    let mut tasks = Vec::new();
    for index in 0..200 {
        let node = node.clone();
        // Every tenth proposal reuses the name of the one before it: one of the two must lose.
        let name = if index % 10 == 9 { format!("t{}", index - 1) } else { format!("t{index}") };
        tasks.push(tokio::spawn(async move { (name.clone(), node.propose(create_topic(&name, 1, 1)).await) }));
    }
    let mut log_indexes = BTreeSet::new();
    let mut created = BTreeSet::new();
    let mut rejected = 0;
    for task in tasks {
        let (name, result) = task.await.unwrap();
        match result {
            Ok(proposed) => {
                assert!(matches!(proposed.outcome, CommandOutcome::TopicCreated { .. }));
                assert!(created.insert(name), "a name was created twice");
                log_indexes.insert(proposed.log_index);
            }
            Err(MetaError::Rejected(error)) => {
                assert_eq!(error.kafka_error_code(), 36, "{error}");
                rejected += 1;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(rejected, 20, "exactly the duplicates were rejected");
    assert_eq!(created.len(), 180);
    assert!(log_indexes.len() < created.len(), "some entries carried several commands ({} entries)", log_indexes.len());
    let view = node.view().view.clone();
    assert_eq!(view.topics.keys().cloned().collect::<BTreeSet<_>>(), created);
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_on_a_follower_are_forwarded_in_batches_with_their_own_results() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_leader(&[1, 2, 3], Duration::from_secs(10)).await;
    let follower = cluster.node((1..=3).find(|id| *id != leader).unwrap());
    register_brokers(&follower, 1).await;
    let mut tasks = Vec::new();
    for index in 0..100 {
        let node = follower.clone();
        let name = if index % 10 == 9 { format!("f{}", index - 1) } else { format!("f{index}") };
        tasks.push(tokio::spawn(async move { (name.clone(), node.propose(create_topic(&name, 1, 1)).await) }));
    }
    let mut created = BTreeSet::new();
    let mut last = 0;
    for task in tasks {
        let (name, result) = task.await.unwrap();
        match result {
            Ok(proposed) => {
                assert!(created.insert(name), "a name was created twice");
                last = last.max(proposed.log_index);
            }
            Err(MetaError::Rejected(error)) => assert_eq!(error.kafka_error_code(), 36, "{error}"),
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(created.len(), 90);
    let views = cluster.wait_applied(&[1, 2, 3], last).await;
    for view in views {
        assert_eq!(view.view.topics.keys().cloned().collect::<BTreeSet<_>>(), created);
    }
    cluster.stop_all().await;
}
