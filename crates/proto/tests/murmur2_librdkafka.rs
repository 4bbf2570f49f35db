//! murmur2 against a real client: librdkafka's `murmur2_random` partitioner (the one bundled in
//! the confluent-kafka wheel) must put every key where `partition_for_key` says.
//!
//! Method: 1,000 deterministic keys of lengths 1..=64 (every tail length, arbitrary bytes) are
//! produced with confluent-kafka to librdkafka's built-in mock cluster (`test.mock.num.brokers`),
//! whose auto-created topics have 4 partitions; the delivery reports give the partition each key
//! went to. A wrong hash would disagree on about three keys in four. Needs the virtualenv from
//! `scripts/install-test-deps.sh`.

use std::io::Write;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use sluice_proto::partition_for_key;

const PRODUCER_SCRIPT: &str = r#"
import sys
from confluent_kafka import Producer
keys = [bytes.fromhex(line) for line in sys.stdin.read().split()]
producer = Producer({"test.mock.num.brokers": 1, "partitioner": "murmur2_random", "log_level": 3})
placed = {}
def delivered(error, message):
    if error is not None:
        raise SystemExit(f"delivery failed: {error}")
    placed[message.key()] = message.partition()
for key in keys:
    producer.produce("murmur2-check", key=key, value=b"v", on_delivery=delivered)
if producer.flush(30) != 0:
    raise SystemExit("undelivered messages")
partitions = len(producer.list_topics("murmur2-check", timeout=10).topics["murmur2-check"].partitions)
print(partitions)
for key in keys:
    print(key.hex(), placed[key])
"#;

fn venv_python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(python.is_file(), "{} not found: run scripts/install-test-deps.sh", python.display());
    python
}

fn keys() -> Vec<Vec<u8>> {
    let mut state = 0x9747_b28c_u64;
    (0..1000)
        .map(|index| {
            let length = 1 + index % 64;
            (0..length)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect()
        })
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn librdkafka_murmur2_random_places_every_key_where_partition_for_key_does() {
    let keys = keys();
    let mut child = Command::new(venv_python())
        .args(["-c", PRODUCER_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    let input: String = keys.iter().map(|key| to_hex(key) + "\n").collect();
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write keys");
    let output = child.wait_with_output().expect("python finishes");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "producer failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));

    let mut lines = stdout.lines();
    let partitions: u32 = lines.next().expect("partition count").parse().expect("a number");
    let partitions = NonZeroU32::new(partitions).expect("at least one partition");
    let mut compared = 0;
    for (key, line) in keys.iter().zip(lines) {
        let (hex, partition) = line.split_once(' ').expect("`key partition`");
        assert_eq!(hex, to_hex(key));
        let partition: i32 = partition.parse().expect("a partition");
        assert_eq!(partition, partition_for_key(key, partitions), "key {hex}");
        compared += 1;
    }
    assert_eq!(compared, keys.len());
}
