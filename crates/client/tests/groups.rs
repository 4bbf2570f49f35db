//! Consumer groups of `sluice-client` against a real broker: two members split a topic's
//! partitions and read every record exactly once; when one leaves, the other takes every
//! partition over from the committed offsets with nothing lost and each key's order kept; a new
//! member resumes from the committed offsets (not from where the last one read); auto-commit
//! commits on its interval and on close.
//!
//! Method: an in-process broker (`common::TestBroker`, group initial delay 0, sessions from
//! 100 ms); each member has its own `Cluster` (its own connections) and runs in its own task,
//! polling as an application does; records are produced with `sluice-client`'s producer and
//! every record is identified by its key and sequence number in the value.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{cluster, create_topic, TestBroker};
use sluice_client::{
    Cluster, Consumer, ConsumerConfig, ConsumerRecord, ListenerFuture, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, RebalanceListener, TopicPartition,
};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Longest wait for anything in these tests.
const WAIT: Duration = Duration::from_secs(30);

fn group_config(group: &str) -> ConsumerConfig {
    ConsumerConfig {
        group_id: Some(group.to_string()),
        auto_offset_reset: OffsetReset::Earliest,
        session_timeout: Duration::from_secs(3),
        max_poll_interval: Duration::from_secs(10),
        fetch_max_wait: Duration::from_millis(100),
        ..ConsumerConfig::default()
    }
}

async fn produce(cluster: &Cluster, records: Vec<ProducerRecord>) {
    let producer = Producer::new(cluster.clone(), ProducerConfig::default()).await.unwrap();
    let mut deliveries = Vec::new();
    for record in records {
        deliveries.push(producer.send(record).await.unwrap());
    }
    producer.flush().await.unwrap();
    for delivery in deliveries {
        delivery.await.unwrap();
    }
}

fn value(record: &ConsumerRecord) -> String {
    String::from_utf8(record.value.clone().unwrap().to_vec()).unwrap()
}

/// Polls until `expected` records arrived (or `WAIT` passed), then once more to catch extras.
async fn poll_until(consumer: &mut Consumer, expected: usize) -> Vec<ConsumerRecord> {
    let mut records = Vec::new();
    let deadline = Instant::now() + WAIT;
    while records.len() < expected && Instant::now() < deadline {
        records.extend(consumer.poll(Duration::from_millis(300)).await.unwrap());
    }
    records.extend(consumer.poll(Duration::from_millis(300)).await.unwrap());
    records
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Commits in the revoke callback, as an application without auto-commit does, and records
/// the callbacks.
#[derive(Default, Clone)]
struct CommitOnRevoke {
    revoked: Arc<Mutex<Vec<Vec<TopicPartition>>>>,
    assigned: Arc<Mutex<Vec<Vec<TopicPartition>>>>,
}

impl RebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked<'a>(
        &'a mut self,
        consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            consumer.commit().await.expect("commit before the partitions are revoked");
            self.revoked.lock().unwrap().push(partitions.to_vec());
        })
    }

    fn on_partitions_assigned<'a>(
        &'a mut self,
        _consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move { self.assigned.lock().unwrap().push(partitions.to_vec()) })
    }
}

type Sink = Arc<Mutex<Vec<(&'static str, ConsumerRecord)>>>;

/// A member polling in its own task until told to stop, then closing (commit in the revoke
/// callback, LeaveGroup).
struct Member {
    assignment: watch::Receiver<Vec<TopicPartition>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

fn spawn_member(name: &'static str, mut consumer: Consumer, sink: Sink) -> Member {
    let (assignment_sender, assignment) = watch::channel(Vec::new());
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        while stopped.try_recv().is_err() {
            let records = consumer.poll(Duration::from_millis(200)).await.unwrap();
            sink.lock().unwrap().extend(records.into_iter().map(|record| (name, record)));
            assignment_sender.send_replace(consumer.assignment());
        }
        consumer.close().await.unwrap();
    });
    Member { assignment, stop: Some(stop), task }
}

fn keyed_records(topic: &str, sequences: std::ops::Range<u32>) -> Vec<ProducerRecord> {
    let mut records = Vec::new();
    for sequence in sequences {
        for key in 0..20 {
            records.push(ProducerRecord::new(topic, format!("key-{key}:{sequence}")).with_key(format!("key-{key}")));
        }
    }
    records
}

/// (key, sequence) of a record's value.
fn identity(record: &ConsumerRecord) -> (String, u32) {
    let value = value(record);
    let (key, sequence) = value.split_once(':').unwrap();
    (key.to_string(), sequence.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_the_partitions_and_the_survivor_takes_over_from_the_commits() {
    let broker = TestBroker::start().await;
    let admin_cluster = cluster(&broker.bootstrap()).await;
    create_topic(&admin_cluster, "events", 4).await;
    let config = ConsumerConfig { enable_auto_commit: false, ..group_config("splitters") };
    let sink: Sink = Arc::default();
    let (listener_a, listener_b) = (CommitOnRevoke::default(), CommitOnRevoke::default());
    let mut members = Vec::new();
    for (name, listener) in [("a", listener_a.clone()), ("b", listener_b.clone())] {
        let mut consumer = Consumer::new(cluster(&broker.bootstrap()).await, config.clone());
        consumer.set_rebalance_listener(listener).unwrap();
        consumer.subscribe(["events"]).await.unwrap();
        members.push(spawn_member(name, consumer, sink.clone()));
    }
    let (a, b) = (&members[0], &members[1]);
    wait_for("the two members to split the four partitions", || {
        let (owned_a, owned_b) = (a.assignment.borrow().clone(), b.assignment.borrow().clone());
        owned_a.len() == 2 && owned_b.len() == 2 && owned_a.iter().all(|tp| !owned_b.contains(tp))
    })
    .await;
    let split = [a.assignment.borrow().clone(), b.assignment.borrow().clone()];

    produce(&admin_cluster, keyed_records("events", 0..10)).await;
    wait_for("the first 200 records", || sink.lock().unwrap().len() >= 200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let consumed = sink.lock().unwrap();
        assert_eq!(consumed.len(), 200, "every record once while both members stay");
        let distinct: BTreeSet<(String, u32)> = consumed.iter().map(|(_, record)| identity(record)).collect();
        assert_eq!(distinct.len(), 200);
        for (name, record) in consumed.iter() {
            let owned = &split[usize::from(*name == "b")];
            assert!(owned.contains(&TopicPartition::new("events", record.partition)), "{name} read only its own");
        }
        assert!(consumed.iter().any(|(name, _)| *name == "a") && consumed.iter().any(|(name, _)| *name == "b"));
    }

    // Member a leaves (commit in its revoke callback, LeaveGroup); b takes everything over.
    let mut a = members.remove(0);
    a.stop.take().unwrap().send(()).unwrap();
    a.task.await.unwrap();
    let b = &members[0];
    wait_for("the survivor to own all four partitions", || b.assignment.borrow().len() == 4).await;
    produce(&admin_cluster, keyed_records("events", 10..20)).await;
    wait_for("all 400 records", || sink.lock().unwrap().len() >= 400).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let consumed = sink.lock().unwrap().clone();
    assert_eq!(consumed.len(), 400, "nothing lost and nothing read twice across the hand-over");
    let mut last_sequence: BTreeMap<String, u32> = BTreeMap::new();
    for (_, record) in &consumed {
        let (key, sequence) = identity(record);
        if let Some(previous) = last_sequence.insert(key.clone(), sequence) {
            assert!(sequence > previous, "{key}: {sequence} after {previous}: per-key order kept");
        }
    }
    assert!(last_sequence.values().all(|last| *last == 19), "{last_sequence:?}");
    assert!(consumed[200..].iter().all(|(name, _)| *name == "b"));
    assert!(!listener_a.revoked.lock().unwrap().is_empty(), "a's revoke callback ran before it left");
    assert!(!listener_b.revoked.lock().unwrap().is_empty(), "b revoked before taking over (eager)");
    assert_eq!(listener_b.assigned.lock().unwrap().last().map(Vec::len), Some(4));
    let mut b = members.remove(0);
    b.stop.take().unwrap().send(()).unwrap();
    b.task.await.unwrap();
}

#[tokio::test]
async fn a_new_member_resumes_from_the_committed_offsets_not_from_the_last_positions() {
    let broker = TestBroker::start().await;
    let cluster = cluster(&broker.bootstrap()).await;
    create_topic(&cluster, "resume", 2).await;
    let old = (0..50).map(|i| ProducerRecord::new("resume", format!("old-{i}")).with_key(format!("k{i}"))).collect();
    produce(&cluster, old).await;
    let config = ConsumerConfig { enable_auto_commit: false, ..group_config("resumers") };

    let mut first = Consumer::new(cluster.clone(), config.clone());
    first.subscribe(["resume"]).await.unwrap();
    assert_eq!(poll_until(&mut first, 50).await.len(), 50);
    let generation = first.group_generation().expect("joined");
    assert!(generation.generation_id >= 1 && !generation.member_id.is_empty());
    let committed = first.commit().await.unwrap();
    assert_eq!(committed.values().sum::<i64>(), 50, "{committed:?}");
    assert_eq!(first.committed(&first.assignment()).await.unwrap(), committed);
    let new = (0..30).map(|i| ProducerRecord::new("resume", format!("new-{i}")).with_key(format!("k{i}"))).collect();
    produce(&cluster, new).await;
    assert!(!poll_until(&mut first, 30).await.is_empty(), "read but never committed");
    first.close().await.unwrap();

    let mut second = Consumer::new(cluster.clone(), config);
    second.subscribe(["resume"]).await.unwrap();
    let resumed = poll_until(&mut second, 30).await;
    assert_eq!(resumed.len(), 30, "exactly the records after the commit");
    assert!(resumed.iter().all(|record| value(record).starts_with("new-")));
    for (partition, offset) in &committed {
        let first_offset = resumed.iter().filter(|r| r.partition == partition.partition).map(|r| r.offset).min();
        assert!(first_offset.is_none_or(|first| first == *offset), "{partition:?} starts at its commit");
    }
    second.close().await.unwrap();
}

#[tokio::test]
async fn auto_commit_commits_the_consumed_positions_on_its_interval_and_on_close() {
    let broker = TestBroker::start().await;
    let cluster = cluster(&broker.bootstrap()).await;
    create_topic(&cluster, "auto", 2).await;
    produce(
        &cluster,
        (0..40).map(|i| ProducerRecord::new("auto", format!("v{i}")).with_key(format!("k{i}"))).collect(),
    )
    .await;
    let config = ConsumerConfig { auto_commit_interval: Duration::from_millis(200), ..group_config("auto-committers") };
    let mut consumer = Consumer::new(cluster.clone(), config.clone());
    consumer.subscribe(["auto"]).await.unwrap();
    assert_eq!(poll_until(&mut consumer, 40).await.len(), 40);
    let partitions = consumer.assignment();
    let mut positions = BTreeMap::new();
    for partition in &partitions {
        positions.insert(partition.clone(), consumer.position(partition).await.unwrap());
    }
    assert_eq!(positions.values().sum::<i64>(), 40);
    let deadline = Instant::now() + WAIT;
    while consumer.committed(&partitions).await.unwrap() != positions {
        assert!(Instant::now() < deadline, "auto-commit never committed the positions");
        consumer.poll(Duration::from_millis(100)).await.unwrap();
    }

    produce(&cluster, (0..10).map(|i| ProducerRecord::new("auto", format!("w{i}")).with_partition(i % 2)).collect())
        .await;
    assert_eq!(poll_until(&mut consumer, 10).await.len(), 10);
    consumer.close().await.unwrap();
    let outsider = Consumer::new(cluster.clone(), config);
    let committed = outsider.committed(&partitions).await.unwrap();
    assert_eq!(committed.values().sum::<i64>(), 50, "close committed the last positions: {committed:?}");

    let manual = ConsumerConfig { enable_auto_commit: false, ..group_config("no-commits") };
    let mut consumer = Consumer::new(cluster.clone(), manual.clone());
    consumer.subscribe(["auto"]).await.unwrap();
    assert_eq!(poll_until(&mut consumer, 50).await.len(), 50);
    consumer.close().await.unwrap();
    let committed = Consumer::new(cluster, manual).committed(&partitions).await.unwrap();
    assert!(committed.is_empty(), "without auto-commit nothing is committed: {committed:?}");
}
