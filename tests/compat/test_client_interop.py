"""sluice-client and the `sluice` CLI against other Kafka clients, on a real broker process.

- Partitioning: the same keys produced by confluent-kafka (`partitioner=murmur2_random`) and by
  `sluice produce` (sluice-client's murmur2 partitioner) land in the same partitions; the
  partitions are read back with kcat, independently of both producers.
- `sluice produce` → kcat: keys, values and headers read intact.
- kcat and confluent-kafka, with each of gzip, snappy, lz4 and zstd → `sluice consume -f json`:
  keys, values and headers (confluent-kafka) read intact.

The `sluice` binary comes from SLUICE_CLI_BIN, else target/release/sluice, else
target/debug/sluice (build it with `cargo build --release -p sluice-cli`); a missing binary
fails the tests rather than skipping them.
"""

import json
import os
import subprocess

import pytest

TIMEOUT_S = 120
CODECS = ["gzip", "snappy", "lz4", "zstd"]
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def sluice_binary():
    candidates = [os.environ.get("SLUICE_CLI_BIN"),
                  os.path.join(REPO_ROOT, "target", "release", "sluice"),
                  os.path.join(REPO_ROOT, "target", "debug", "sluice")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("no sluice binary: set SLUICE_CLI_BIN or run `cargo build --release -p sluice-cli`")


def sluice(broker, *args, stdin=None):
    return subprocess.run([sluice_binary(), "--bootstrap", broker.bootstrap, *args], input=stdin,
                          capture_output=True, check=True, timeout=TIMEOUT_S)


def kcat(broker, *args, stdin=None):
    return subprocess.run(["kcat", "-b", broker.bootstrap, *args], input=stdin, capture_output=True, check=True,
                          timeout=TIMEOUT_S)


def sluice_consume_json(broker, topic, count):
    out = sluice(broker, "consume", topic, "--offset", "beginning", "-f", "json", "-n", str(count),
                 "--idle-timeout-ms", "10000").stdout
    return [json.loads(line) for line in out.decode().splitlines()]


def test_confluent_murmur2_random_and_sluice_put_every_key_in_the_same_partition(broker, topic_name):
    from confluent_kafka import Producer

    partitions = 7
    keys = [f"user-{i}" for i in range(300)] + ["", "21", "foobar", "a-little-bit-long-string"]
    theirs, ours = f"{topic_name}-confluent", f"{topic_name}-sluice"
    for topic in (theirs, ours):
        sluice(broker, "topic", "create", topic, "--partitions", str(partitions))

    producer = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})
    reported = {}

    def remember(error, message):
        assert error is None, error
        reported[message.key().decode()] = message.partition()

    for key in keys:
        producer.produce(theirs, key=key.encode(), value=b"v", on_delivery=remember)
    assert producer.flush(30) == 0
    lines = "".join(f"{key}\tv\n" for key in keys).encode()
    sluice(broker, "produce", ours, "--key-separator", "\t", stdin=lines)

    def partitions_by_key(topic):
        out = kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%k\t%p\n").stdout.decode()
        placed = {}
        for line in out.splitlines():
            key, partition = line.rsplit("\t", 1)
            placed[key] = int(partition)
        return placed

    confluent_placed, sluice_placed = partitions_by_key(theirs), partitions_by_key(ours)
    assert confluent_placed == reported
    assert set(sluice_placed) == set(keys)
    assert sluice_placed == confluent_placed
    assert len(set(sluice_placed.values())) == partitions, "the keys spread over every partition"


def test_sluice_produce_is_read_intact_by_kcat(broker, topic_name):
    sluice(broker, "topic", "create", topic_name, "--partitions", "3")
    records = [(f"key-{i}", f"value {i} with spaces, commas and ü") for i in range(200)]
    lines = "".join(f"{key}|{value}\n" for key, value in records).encode()
    sluice(broker, "produce", topic_name, "-K", "|", "-H", "source=sluice", "-H", "trace=abc-123", stdin=lines)
    out = kcat(broker, "-C", "-t", topic_name, "-o", "beginning", "-e", "-f", "%k\x1f%s\x1f%h\n").stdout.decode()
    received = sorted(tuple(line.split("\x1f")) for line in out.splitlines())
    expected = sorted((key, value, "source=sluice,trace=abc-123") for key, value in records)
    assert received == expected


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_compressed_records_are_read_intact_by_sluice_consume(broker, topic_name, codec):
    sluice(broker, "topic", "create", topic_name, "--partitions", "2")
    records = {f"k{i}": f"{codec}-value-{i}-" + "x" * (i % 40) for i in range(500)}
    lines = "".join(f"{key}:{value}\n" for key, value in records.items()).encode()
    kcat(broker, "-P", "-t", topic_name, "-K:", "-z", codec, stdin=lines)
    consumed = sluice_consume_json(broker, topic_name, len(records))
    assert {record["key"]: record["value"] for record in consumed} == records
    assert len(consumed) == len(records)


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_compressed_records_with_headers_are_read_intact_by_sluice_consume(broker, topic_name, codec):
    from confluent_kafka import Producer

    sluice(broker, "topic", "create", topic_name, "--partitions", "3")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 20})
    expected = {}
    for i in range(500):
        key, value = f"k{i}", f"{codec}-value-{i}-" + "y" * (i % 70)
        headers = {"index": str(i), "codec": codec}
        producer.produce(topic_name, key=key.encode(), value=value.encode(), headers=list(headers.items()))
        expected[key] = (value, headers)
    assert producer.flush(30) == 0
    consumed = sluice_consume_json(broker, topic_name, len(expected))
    assert len(consumed) == len(expected)
    assert {r["key"]: (r["value"], r["headers"]) for r in consumed} == expected
