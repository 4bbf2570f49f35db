//! A broker stays available, and says so truthfully, when storage gets in its way: a
//! partition that fails to open is retried with backoff and reported by `/ready` and by
//! Metadata's offline replicas until it opens, with no metadata change needed.
//!
//! Method: a whole broker in this process (`common::TestBroker`) with real requests over TCP
//! (`common::wire`) and real HTTP to its admin listener (`common::process::http_get`).

mod common;

use std::time::{Duration, Instant};

use common::process::http_get;
use common::wire::{batch_of, create_topic, produce, read_all};
use common::{call, TestBroker};
use sluice_broker::kafka_code;
use sluice_proto::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use sluice_proto::kafka_protocol::messages::*;

/// How long a test waits for the broker to notice that an obstacle is gone: the first retries
/// come after 0.5, 1 and 2 s (`open_retry`).
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(15);

async fn offline_replicas(stream: &mut tokio::net::TcpStream, topic: &str) -> Vec<i32> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(common::wire::topic_name(topic)))]))
        .with_allow_auto_topic_creation(false);
    let response: MetadataResponse = call(stream, ApiKey::Metadata, 9, &request).await;
    response.topics[0].partitions[0].offline_replicas.iter().map(|id| id.0).collect()
}

// Goal: a partition whose directory cannot be created (a file stands where it should be)
// answers NOT_LEADER_OR_FOLLOWER, is named by `/ready` (503) and listed as an offline replica
// of this broker; once the file is removed it opens by itself — no metadata change — and
// `/ready` is 200 again. Method: put a file at `logs/blocked-0` before creating the topic,
// check the three signals, remove the file, poll produce until it succeeds, and compare the
// applied metadata index before and after.
#[tokio::test]
async fn a_partition_that_failed_to_open_is_retried_and_reported_until_it_opens() {
    let broker = TestBroker::start().await;
    let logs = broker.data_dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let obstacle = logs.join("blocked-0");
    std::fs::write(&obstacle, b"not a directory").unwrap();
    let mut stream = broker.connect().await;
    assert_eq!(create_topic(&mut stream, "blocked", 1).await, 0);
    assert_eq!(create_topic(&mut stream, "fine", 1).await, 0);

    let (error, _) = produce(&mut stream, "blocked", 0, batch_of(&[b"early".to_vec()])).await;
    assert_eq!(error, kafka_code::NOT_LEADER_OR_FOLLOWER);
    assert_eq!(produce(&mut stream, "fine", 0, batch_of(&[b"unaffected".to_vec()])).await.0, 0);
    let (status, body) = http_get(broker.admin, "/ready").await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("partition blocked-0: failed to open"), "{body}");
    assert!(!body.contains("fine-0"), "{body}");
    assert_eq!(offline_replicas(&mut stream, "blocked").await, vec![1]);
    assert_eq!(offline_replicas(&mut stream, "fine").await, Vec::<i32>::new());

    let applied_before = broker.broker.meta.view().applied_index;
    std::fs::remove_file(&obstacle).unwrap();
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    let offset = loop {
        let (error, offset) = produce(&mut stream, "blocked", 0, batch_of(&[b"late".to_vec()])).await;
        if error == 0 {
            break offset;
        }
        assert_eq!(error, kafka_code::NOT_LEADER_OR_FOLLOWER);
        assert!(Instant::now() < deadline, "the partition did not open after its obstacle was removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(offset, 0);
    assert_eq!(broker.broker.meta.view().applied_index, applied_before, "opened by a metadata change, not a retry");
    assert_eq!(http_get(broker.admin, "/ready").await, Some((200, "ready\n".to_string())));
    assert_eq!(offline_replicas(&mut stream, "blocked").await, Vec::<i32>::new());
    let values: Vec<_> = read_all(&mut stream, "blocked", 0).await.unwrap().into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, vec![bytes::Bytes::from_static(b"late")]);
}
