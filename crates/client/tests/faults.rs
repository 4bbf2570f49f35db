//! The producer under faults: an answer lost with its connection (idempotent resend, no
//! duplicates in the log, order kept), a request lost on a live connection (the batch behind
//! it refused out of sequence, then resent after it), and a stopped broker (send waits once the buffer budget
//! is used; buffered bytes never exceed it; records fail after the delivery timeout).
//!
//! Method: a real in-process broker. For the lost answer, clients reach the broker only through
//! `common::FaultProxy` (the broker advertises the proxy's address), which lets a Produce
//! request through and then drops its answer and cuts the connection — the request was
//! appended, the client cannot know, and resends the same batch.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cluster, create_topic, FaultProxy, TestBroker};
use sluice_client::{Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord};

#[tokio::test]
async fn a_lost_answer_is_resent_with_the_same_sequence_and_the_log_has_no_duplicates() {
    let proxy = FaultProxy::bind().await;
    let broker = TestBroker::start_advertising(Some(proxy.address.to_string())).await;
    proxy.set_upstream(broker.address);
    let cluster = cluster(&proxy.address.to_string()).await;
    create_topic(&cluster, "exactly", 1).await;
    let producer = Producer::new(cluster.clone(), ProducerConfig::default()).await.unwrap();

    let mut deliveries = Vec::new();
    for round in 0..5 {
        for index in 0..20 {
            let value = format!("{round}-{index}");
            deliveries.push(producer.send(ProducerRecord::new("exactly", value)).await.unwrap());
        }
        // The next answer (this round's produce) is dropped and its connection cut.
        proxy.cut_next_answer();
        producer.flush().await.unwrap();
    }
    assert!(proxy.cuts.load(Ordering::SeqCst) >= 5, "every round lost an answer");
    assert_eq!(offsets_of(deliveries).await, (0..100).collect::<Vec<i64>>(), "each record acknowledged once, in order");
    let values = read_all(&cluster, "exactly", 100).await;
    let expected: Vec<String> = (0..5).flat_map(|round| (0..20).map(move |index| format!("{round}-{index}"))).collect();
    assert_eq!(values, expected, "the log holds every record exactly once, in send order");
}

/// Goal: with several batches of one partition in flight at once, answers lost with their
/// connection mid-stream neither reorder nor duplicate records. Method: 256-byte batches and no
/// linger, so a round of 400 sends keeps up to five small batches in flight; after each round
/// the proxy drops the next answer and cuts the connection (every request in flight on it is
/// lost, some appended, some not); each round's records are sent before the previous flush, so
/// cuts land while batches queue behind in-flight ones. The log must hold the 2,000 values once
/// each, in send order, and each delivery its own offset.
#[tokio::test]
async fn batches_in_flight_together_survive_lost_answers_in_order_without_duplicates() {
    const ROUNDS: usize = 5;
    const PER_ROUND: usize = 400;
    let proxy = FaultProxy::bind().await;
    let broker = TestBroker::start_advertising(Some(proxy.address.to_string())).await;
    proxy.set_upstream(broker.address);
    let cluster = cluster(&proxy.address.to_string()).await;
    create_topic(&cluster, "pipelined", 1).await;
    let config = ProducerConfig { batch_size_bytes: 256, linger: Duration::ZERO, ..ProducerConfig::default() };
    let producer = Producer::new(cluster.clone(), config).await.unwrap();
    let mut deliveries = Vec::new();
    for round in 0..ROUNDS {
        for index in 0..PER_ROUND {
            deliveries.push(producer.send(ProducerRecord::new("pipelined", format!("{round}-{index}"))).await.unwrap());
        }
        proxy.cut_next_answer();
    }
    step("flush", producer.flush()).await.unwrap();
    assert!(proxy.cuts.load(Ordering::SeqCst) >= 1, "answers were lost");
    let total = (ROUNDS * PER_ROUND) as i64;
    assert_eq!(
        offsets_of(deliveries).await,
        (0..total).collect::<Vec<i64>>(),
        "each record acknowledged once, in order"
    );
    let values = read_all(&cluster, "pipelined", ROUNDS * PER_ROUND).await;
    let expected: Vec<String> =
        (0..ROUNDS).flat_map(|round| (0..PER_ROUND).map(move |index| format!("{round}-{index}"))).collect();
    assert_eq!(values, expected, "the log holds every record exactly once, in send order");
}

/// The offset each delivery got, in send order.
/// Goal: a batch the broker refuses as OUT_OF_ORDER_SEQUENCE_NUMBER because an earlier batch
/// of its partition never arrived is resent after that batch lands, not failed: the records
/// land once each, in send order. Method: the broker knows the producer (its first batch
/// landed); the proxy swallows the next Produce request whole (the connection stays up), so
/// the batch sent right behind it reaches the broker with a sequence past the expected one
/// and is refused; the swallowed request times out (5 s), its connection closes, and the
/// producer resends both, in order.
#[tokio::test]
async fn a_batch_refused_out_of_sequence_behind_a_lost_request_is_resent_after_it() {
    const PRODUCE: i16 = 0;
    let proxy = FaultProxy::bind().await;
    let broker = TestBroker::start_advertising(Some(proxy.address.to_string())).await;
    proxy.set_upstream(broker.address);
    let cluster = cluster(&proxy.address.to_string()).await;
    create_topic(&cluster, "gap", 1).await;
    let producer =
        Producer::new(cluster.clone(), ProducerConfig { linger: Duration::ZERO, ..ProducerConfig::default() })
            .await
            .unwrap();
    let first = producer.send(ProducerRecord::new("gap", "first")).await.unwrap().await.unwrap();
    assert_eq!(first.offset, 0);

    proxy.drop_next_request(PRODUCE);
    let lost = producer.send(ProducerRecord::new("gap", "lost")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.dropped_requests.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the Produce request was never sent");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let behind = producer.send(ProducerRecord::new("gap", "behind")).await.unwrap();

    assert_eq!(step("the lost batch", lost).await.unwrap().offset, 1, "the swallowed batch is resent");
    assert_eq!(
        step("the batch behind it", behind).await.unwrap().offset,
        2,
        "refused out of sequence, then resent after it"
    );
    assert_eq!(read_all(&cluster, "gap", 3).await, ["first", "lost", "behind"]);
}

async fn offsets_of(deliveries: Vec<sluice_client::Delivery>) -> Vec<i64> {
    let mut offsets = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        offsets.push(delivery.await.unwrap().offset);
    }
    offsets
}

/// The values of `topic` read from the beginning: polls until at least `expected` arrived and
/// a poll then comes back empty (so records beyond the expected ones are read too), or 30 s.
async fn read_all(cluster: &sluice_client::Cluster, topic: &str, expected: usize) -> Vec<String> {
    let mut consumer = Consumer::new(
        cluster.clone(),
        ConsumerConfig { auto_offset_reset: OffsetReset::Earliest, ..Default::default() },
    );
    consumer.assign_topic(topic).await.unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let records = consumer.poll(Duration::from_millis(500)).await.unwrap();
        if records.is_empty() && values.len() >= expected {
            break;
        }
        values.extend(records.into_iter().map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap()));
    }
    values
}

/// Awaits one step of a test, failing it with the step's name if it takes over a minute.
async fn step<T>(name: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future).await.unwrap_or_else(|_| panic!("{name} took over 60 s"))
}

#[tokio::test]
async fn send_waits_when_the_buffer_is_full_and_memory_stays_bounded_while_the_broker_is_stopped() {
    const BUFFER_BYTES: usize = 64 * 1024;
    const RECORD_VALUE_BYTES: usize = 1000;
    let broker = TestBroker::start().await;
    let cluster = cluster(&broker.bootstrap()).await;
    create_topic(&cluster, "pressure", 2).await;
    let config = ProducerConfig {
        buffer_memory_bytes: BUFFER_BYTES,
        delivery_timeout: Duration::from_secs(5),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(cluster.clone(), config).await.unwrap();
    // One delivered record: the producer knows the topic's partitions before the broker goes.
    let first = producer.send(ProducerRecord::new("pressure", "first")).await.unwrap();
    step("first delivery", first).await.unwrap();
    step("broker stop", broker.stop()).await;

    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sending = {
        let (producer, sent) = (producer.clone(), sent.clone());
        tokio::spawn(async move {
            let mut deliveries = Vec::new();
            for index in 0..200 {
                let record =
                    ProducerRecord::new("pressure", vec![b'v'; RECORD_VALUE_BYTES]).with_key(format!("{index}"));
                deliveries.push(producer.send(record).await.unwrap());
                sent.fetch_add(1, Ordering::SeqCst);
            }
            deliveries
        })
    };
    let mut peak = 0;
    let watch_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watch_until {
        peak = peak.max(producer.buffered_bytes());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let accepted = sent.load(Ordering::SeqCst);
    let record_bytes =
        ProducerRecord::new("pressure", vec![b'v'; RECORD_VALUE_BYTES]).with_key("999").estimated_bytes();
    assert!(peak <= BUFFER_BYTES, "buffered {peak} bytes with a budget of {BUFFER_BYTES}");
    assert!(peak + record_bytes > BUFFER_BYTES, "the budget was used ({peak} bytes)");
    assert!(accepted <= BUFFER_BYTES / (RECORD_VALUE_BYTES + 24), "send waited: {accepted} records accepted");
    assert!(!sending.is_finished(), "send is blocked while the buffer is full");

    // After the delivery timeout the buffered records fail (retriable) and free their memory,
    // letting the blocked sends continue; the whole run stays within the budget.
    let first = step("blocked sends", sending).await.unwrap();
    for delivery in first.into_iter().take(3) {
        let error = step("failed delivery", delivery).await.unwrap_err();
        assert!(error.is_retriable(), "{error}");
    }
    assert!(producer.buffered_bytes() <= BUFFER_BYTES);
}
