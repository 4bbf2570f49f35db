//! The retry/dead-letter helper: a handler failing for specific records sends exactly those to
//! `<topic>.dlq` with the documented headers after `attempts_max` calls; a record that fails
//! once and then succeeds is retried and not dead-lettered; nothing else reaches the DLQ and
//! every record is accounted for once.
//!
//! With a consumer group, the helper commits only what was handled or dead-lettered.
//!
//! Method: a real in-process broker; records produced and consumed with `sluice-client`; the
//! handler records each call; the DLQ topic read back with the consumer; committed offsets
//! read back from the group coordinator.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{cluster, create_topic, TestBroker};
use sluice_client::backoff::Backoff;
use sluice_client::retry::{
    DeadLetterHandler, Outcome, RetryPolicy, HEADER_ATTEMPTS, HEADER_ERROR, HEADER_ORIGINAL_OFFSET,
    HEADER_ORIGINAL_PARTITION, HEADER_ORIGINAL_TOPIC,
};
use sluice_client::{
    Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};

async fn read_all(consumer: &mut Consumer, expected: usize) -> Vec<ConsumerRecord> {
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while records.len() < expected && Instant::now() < deadline {
        records.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
    }
    // Anything beyond `expected` would be a duplicate: look once more.
    records.extend(consumer.poll(Duration::from_millis(300)).await.unwrap());
    records
}

fn text(record: &ConsumerRecord, header: &str) -> String {
    String::from_utf8(record.header(header).expect(header).to_vec()).unwrap()
}

#[tokio::test]
async fn failing_records_go_to_the_dlq_with_headers_after_the_retries_and_only_they() {
    let broker = TestBroker::start().await;
    let cluster = cluster(&broker.bootstrap()).await;
    create_topic(&cluster, "orders", 2).await;
    create_topic(&cluster, "orders.dlq", 1).await;
    let producer = Producer::new(cluster.clone(), ProducerConfig::default()).await.unwrap();
    for index in 0..20 {
        let record = ProducerRecord::new("orders", format!("order-{index}"))
            .with_key(format!("k{index}"))
            .with_header("trace", format!("t{index}"));
        producer.send(record).await.unwrap();
    }
    producer.flush().await.unwrap();

    let config = ConsumerConfig { auto_offset_reset: OffsetReset::Earliest, ..ConsumerConfig::default() };
    let mut consumer = Consumer::new(cluster.clone(), config.clone());
    consumer.assign_topic("orders").await.unwrap();
    let records = read_all(&mut consumer, 20).await;
    assert_eq!(records.len(), 20);

    let policy = RetryPolicy {
        attempts_max: 3,
        backoff: Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(40) },
        dead_letter_topic: None,
    };
    let helper = DeadLetterHandler::new(producer.clone(), policy).unwrap();
    let always_failing = ["order-3", "order-7", "order-11"];
    let calls: Mutex<BTreeMap<String, Vec<u32>>> = Mutex::new(BTreeMap::new());
    let handler = |record: &ConsumerRecord, attempt: u32| {
        let value = String::from_utf8(record.value.clone().unwrap().to_vec()).unwrap();
        calls.lock().unwrap().entry(value.clone()).or_default().push(attempt);
        let fail = always_failing.contains(&value.as_str()) || (value == "order-5" && attempt == 1);
        async move {
            if fail {
                Err(format!("cannot process {value} (attempt {attempt})"))
            } else {
                Ok(())
            }
        }
    };
    let started = Instant::now();
    let (outcomes, progress, result) = helper.process_batch(&records, handler).await;
    result.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(3 * 5 + 5), "the retries waited their backoff");
    assert_eq!(outcomes.len(), 20);

    let calls = calls.into_inner().unwrap();
    for (value, attempts) in &calls {
        let expected: Vec<u32> = if always_failing.contains(&value.as_str()) {
            vec![1, 2, 3]
        } else if value == "order-5" {
            vec![1, 2]
        } else {
            vec![1]
        };
        assert_eq!(attempts, &expected, "{value}");
    }
    assert_eq!(calls.len(), 20);
    for (record, outcome) in records.iter().zip(&outcomes) {
        let value = String::from_utf8(record.value.clone().unwrap().to_vec()).unwrap();
        match outcome {
            Outcome::DeadLettered { attempts, .. } => {
                assert!(always_failing.contains(&value.as_str()) && *attempts == 3)
            }
            Outcome::Handled { attempts } => assert_eq!(*attempts, if value == "order-5" { 2 } else { 1 }),
        }
    }
    for (partition, next) in &progress {
        let last = records.iter().filter(|r| r.partition == partition.partition).map(|r| r.offset).max().unwrap();
        assert_eq!(*next, last + 1, "progress covers every processed record");
    }

    let mut dlq = Consumer::new(cluster.clone(), config);
    dlq.assign_topic("orders.dlq").await.unwrap();
    let dead = read_all(&mut dlq, 3).await;
    let mut dead_values: Vec<String> =
        dead.iter().map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()).collect();
    dead_values.sort();
    assert_eq!(dead_values, ["order-11", "order-3", "order-7"], "exactly the failing records, once each");
    for letter in &dead {
        let value = String::from_utf8(letter.value.clone().unwrap().to_vec()).unwrap();
        let original = records.iter().find(|r| r.value == letter.value).unwrap();
        assert_eq!(letter.key, original.key, "{value}: key kept");
        assert_eq!(text(letter, "trace"), text(original, "trace"), "{value}: original headers kept");
        assert_eq!(text(letter, HEADER_ORIGINAL_TOPIC), "orders");
        assert_eq!(text(letter, HEADER_ORIGINAL_PARTITION), original.partition.to_string());
        assert_eq!(text(letter, HEADER_ORIGINAL_OFFSET), original.offset.to_string());
        assert_eq!(text(letter, HEADER_ATTEMPTS), "3");
        assert_eq!(text(letter, HEADER_ERROR), format!("cannot process {value} (attempt 3)"));
    }
}

#[tokio::test]
async fn a_dead_letter_that_cannot_be_published_is_an_error_not_a_silent_loss() {
    let broker = TestBroker::start().await;
    let cluster = cluster(&broker.bootstrap()).await;
    create_topic(&cluster, "payments", 1).await;
    let producer = Producer::new(cluster.clone(), ProducerConfig::default()).await.unwrap();
    producer.send(ProducerRecord::new("payments", "p0")).await.unwrap().await.unwrap();
    let mut consumer = Consumer::new(
        cluster.clone(),
        ConsumerConfig { auto_offset_reset: OffsetReset::Earliest, ..ConsumerConfig::default() },
    );
    consumer.assign_topic("payments").await.unwrap();
    let records = read_all(&mut consumer, 1).await;
    let policy = RetryPolicy { attempts_max: 1, ..RetryPolicy::default() };
    let helper = DeadLetterHandler::new(producer, policy).unwrap();
    // No `payments.dlq` topic exists.
    let (outcomes, progress, result) =
        helper.process_batch(&records, |_, _| async { Err::<(), _>("always fails") }).await;
    assert!(outcomes.is_empty() && progress.is_empty(), "no progress past an undelivered dead letter");
    let error = result.unwrap_err();
    assert!(error.to_string().contains("payments.dlq"), "{error}");
}

fn group_consumer(cluster: &sluice_client::Cluster, group: &str) -> Consumer {
    let config = ConsumerConfig {
        group_id: Some(group.to_string()),
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        session_timeout: Duration::from_secs(3),
        max_poll_interval: Duration::from_secs(10),
        ..ConsumerConfig::default()
    };
    Consumer::new(cluster.clone(), config)
}

/// With a group, the helper commits after each record is handled or dead-lettered, and never
/// past a record whose dead letter could not be published: that record is delivered again.
#[tokio::test]
async fn the_helper_commits_after_handling_or_dead_lettering_and_never_past_a_failure() {
    let broker = TestBroker::start().await;
    let cluster = cluster(&broker.bootstrap()).await;
    for (topic, partitions) in [("jobs", 2), ("jobs.dlq", 1), ("tasks", 1)] {
        create_topic(&cluster, topic, partitions).await;
    }
    let producer = Producer::new(cluster.clone(), ProducerConfig::default()).await.unwrap();
    for index in 0..10 {
        producer.send(ProducerRecord::new("jobs", format!("job-{index}")).with_partition(index % 2)).await.unwrap();
    }
    for index in 0..5 {
        producer.send(ProducerRecord::new("tasks", format!("task-{index}"))).await.unwrap();
    }
    producer.flush().await.unwrap();
    let policy = RetryPolicy {
        attempts_max: 2,
        backoff: Backoff { initial: Duration::from_millis(5), max: Duration::from_millis(10) },
        dead_letter_topic: None,
    };
    let helper = DeadLetterHandler::new(producer, policy).unwrap();
    let fails_on = |bad: &'static str| {
        move |record: &ConsumerRecord, _attempt: u32| {
            let failed = record.value.as_deref() == Some(bad.as_bytes());
            async move {
                if failed {
                    Err(format!("{bad} is broken"))
                } else {
                    Ok(())
                }
            }
        }
    };

    let mut jobs = group_consumer(&cluster, "workers");
    jobs.subscribe(["jobs"]).await.unwrap();
    let records = read_all(&mut jobs, 10).await;
    assert_eq!(records.len(), 10);
    let (outcomes, committed) = helper.process_and_commit(&mut jobs, &records, fails_on("job-4")).await;
    let committed = committed.unwrap();
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Outcome::DeadLettered { .. })).count(), 1);
    let everything = BTreeMap::from([(TopicPartition::new("jobs", 0), 5), (TopicPartition::new("jobs", 1), 5)]);
    assert_eq!(committed, everything, "committed once every record was handled or dead-lettered");
    assert_eq!(jobs.committed(&jobs.assignment()).await.unwrap(), everything, "the coordinator has it");
    jobs.close().await.unwrap();
    let mut dlq = Consumer::new(
        cluster.clone(),
        ConsumerConfig { auto_offset_reset: OffsetReset::Earliest, ..ConsumerConfig::default() },
    );
    dlq.assign_topic("jobs.dlq").await.unwrap();
    let dead: Vec<ConsumerRecord> = read_all(&mut dlq, 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value.as_deref(), Some(&b"job-4"[..]));

    // No `tasks.dlq`: task-2 can be neither handled nor dead-lettered.
    let mut tasks = group_consumer(&cluster, "task-workers");
    tasks.subscribe(["tasks"]).await.unwrap();
    let records = read_all(&mut tasks, 5).await;
    assert_eq!(records.len(), 5);
    let (outcomes, result) = helper.process_and_commit(&mut tasks, &records, fails_on("task-2")).await;
    let error = result.unwrap_err();
    assert!(error.to_string().contains("tasks.dlq"), "{error}");
    assert_eq!(outcomes.len(), 2, "task-0 and task-1 were handled");
    let partition = TopicPartition::new("tasks", 0);
    assert_eq!(
        tasks.committed(std::slice::from_ref(&partition)).await.unwrap(),
        BTreeMap::from([(partition.clone(), 2)])
    );
    assert_eq!(tasks.position(&partition).await.unwrap(), 2, "rewound to the failed record");
    let again = read_all(&mut tasks, 3).await;
    assert_eq!(again.iter().map(|r| r.offset).collect::<Vec<_>>(), [2, 3, 4], "delivered again, nothing skipped");
    tasks.close().await.unwrap();
}
