"""A bit flipped on disk in one replica's log (issue 12, docs/reliability.md "Storage faults",
bug S6): the damaged batch is never served, the damaged replica hands its leadership to an
in-sync replica and repairs itself from it — or, with no other in-sync replica, the partition
stays offline there and says so — never silent garbage.

The bit is flipped in the segment file while the broker runs: the broker reads its segments
with `pread`, through the page cache, so the write is what its next read sees (what a disk
that returns a flipped bit looks like to it).
"""

import os
import re
import time
import urllib.error
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import segments
from conftest import wait_until

RECORDS = 300
RECORDS_PER_BATCH = 10
DAMAGED_BATCH = 3
# Leaderships stay where the hand-over put them, so the test can see it (the controller would
# otherwise give the partition back to its preferred replica once it is repaired).
FLAGS = ("--auto-leader-rebalance-enable", "false")


def produce(cluster, topic, partition=0):
    """RECORDS keyed records, acks=all and idempotent, flushed every RECORDS_PER_BATCH so the
    log holds many batches. Returns {offset: (key, value)} of the acknowledged ones."""
    producer = Producer({
        "bootstrap.servers": cluster.bootstrap(),
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 0,
    })
    acked = {}

    def on_delivery(error, message):
        assert error is None, f"delivery failed: {error}"
        acked[message.offset()] = (message.key().decode(), message.value().decode())

    for index in range(RECORDS):
        producer.produce(topic, key=f"key-{index % 17}", value=f"value-{index}", partition=partition,
                         on_delivery=on_delivery)
        if index % RECORDS_PER_BATCH == RECORDS_PER_BATCH - 1:
            producer.flush(30)
    assert producer.flush(30) == 0
    assert len(acked) == RECORDS
    return acked


def partition_dir(broker, topic, partition=0):
    return os.path.join(broker.data_dir, "logs", f"{topic}-{partition}")


def flip_a_bit_in_the_records_of(directory, batch_index):
    """Flips one bit in the record data (after the 61-byte header) of the `batch_index`th batch
    of the partition's segments. Returns (segment path, base offset of the batch)."""
    found = segments.batch_locations(directory)
    assert len(found) > batch_index, f"only {len(found)} batches in {directory}"
    path, position, size, base, _ = found[batch_index]
    at = position + 61 + (size - 61) // 2
    with open(path, "r+b") as segment:
        segment.seek(at)
        byte = segment.read(1)[0]
        segment.seek(at)
        segment.write(bytes([byte ^ 0x10]))
    return path, base


def consume_all(cluster, topic, end, partition=0, timeout_s=60):
    """Every record of the partition from offset 0 below `end`: [(offset, key, value)]."""
    consumer = Consumer({
        "bootstrap.servers": cluster.bootstrap(),
        "group.id": f"repair-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    consumer.assign([TopicPartition(topic, partition, 0)])
    records = []
    deadline = time.time() + timeout_s
    try:
        while time.time() < deadline and (not records or records[-1][0] < end - 1):
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            records.append((message.offset(), message.key().decode(), message.value().decode()))
    finally:
        consumer.close()
    return records


def log_text(broker):
    """The broker's log, without terminal colour codes."""
    with open(broker.log_path, "rb") as log:
        return re.sub(r"\x1b\[[0-9;]*m", "", log.read().decode(errors="replace"))


def isr_changes(broker, topic):
    """The ISR changes `broker` made as leader of partition 0 of `topic`: [(before, after)]."""
    found = re.findall(rf'ISR changed topic="{re.escape(topic)}" partition=0 before=\[([^\]]*)\] after=\[([^\]]*)\]',
                       log_text(broker))
    ids = lambda listed: [int(n) for n in listed.split(",") if n.strip()]  # noqa: E731
    return [(ids(before), ids(after)) for before, after in found]


def rejoined_isr(leader, topic, node_id):
    """Whether `leader` dropped `node_id` from the ISR and later added it back."""
    changes = isr_changes(leader, topic)
    dropped = next((i for i, (before, after) in enumerate(changes) if node_id in before and node_id not in after), None)
    return dropped is not None and any(node_id in after for _, after in changes[dropped + 1:])


@pytest.mark.cluster_args(*FLAGS)
def test_a_flipped_bit_on_the_leader_is_never_served_and_the_leader_repairs_from_a_follower(cluster):
    """Goal: a bit flipped in the records of an early, acknowledged batch on the partition
    leader's disk is never served; the leader hands the partition over to an in-sync follower,
    cuts its log below the batch, refetches it, and is in the ISR again with the same bytes as
    the others; a consumer from offset 0 gets every acknowledged record exactly once, with its
    value.
    Method: 3 brokers, one partition at RF 3 (min.insync.replicas=2); 300 keyed records acks=all
    in 30 batches; wait for a full ISR; flip one bit in the middle of the 4th batch's record
    data in the leader's segment file; consume from offset 0; check the records, the
    leadership, the damaged broker's log lines, then (once the ISR is full again) the damaged
    batch's bytes on every replica."""
    topic = f"repair-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, 1)
    acked = produce(cluster, topic)
    cluster.wait_isr_full(topic)
    leader, replicas, _ = cluster.partitions(topic)[0]
    damaged = cluster.brokers[leader]
    directory = partition_dir(damaged, topic)
    intact_before = {b.node_id: segments.batch_bytes(partition_dir(b, topic)) for b in cluster.brokers.values()}
    for node_id, copy in intact_before.items():
        assert copy == intact_before[leader], f"broker {node_id} differs from the leader before the flip"
    path, damaged_base = flip_a_bit_in_the_records_of(directory, DAMAGED_BATCH)
    assert segments.batch_bytes(directory)[damaged_base] != intact_before[leader][damaged_base]

    records = consume_all(cluster, topic, RECORDS)

    offsets = [offset for offset, _, _ in records]
    assert offsets == list(range(RECORDS)), \
        f"offsets read {offsets[:5]}..{offsets[-5:]} ({len(offsets)}), want 0..{RECORDS - 1} exactly once"
    for offset, key, value in records:
        assert (key, value) == acked[offset], f"offset {offset}: read {(key, value)}, acknowledged {acked[offset]}"
    new_leader = cluster.partitions(topic)[0][0]
    assert new_leader != leader, f"broker {leader} still leads with a damaged batch"
    text = log_text(damaged)
    assert "fails its CRC-32C" in text
    assert "handing the leadership over" in text
    # The cut comes from the repair task's next pass after the hand-over, which under load can
    # be after the consumer has read everything from the new leader (seen once in CI).
    wait_until(lambda: "cutting this replica's log below a damaged batch" in log_text(damaged), 30,
               "the damaged replica's cut")
    assert os.path.basename(path) in log_text(damaged)

    # Repaired: out of the ISR and back in it (the new leader's ISR lines say so: a full ISR in
    # Metadata alone could still be the one from before the shrink), and the damaged batch's
    # bytes are the other replicas' again.
    wait_until(lambda: "damaged batch repaired from the leader" in log_text(damaged), 30, "the repair's log line")
    wait_until(lambda: rejoined_isr(cluster.brokers[new_leader], topic, leader), 30,
               f"broker {leader} to leave the ISR and rejoin it (log of broker {new_leader})")
    cluster.wait_isr_full(topic)
    after = {b.node_id: segments.batch_bytes(partition_dir(b, topic)) for b in cluster.brokers.values()}
    for node_id, copy in after.items():
        assert copy[damaged_base] == intact_before[new_leader][damaged_base], \
            f"broker {node_id}: batch {damaged_base} differs from the intact copy"
        assert copy == after[new_leader], f"broker {node_id}'s batches differ from the new leader's"
    assert leader in cluster.partitions(topic)[0][2]


def ready_answer(broker):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/ready", timeout=2) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.cluster_args(*FLAGS)
def test_a_flipped_bit_with_no_other_in_sync_replica_stays_unserved_and_is_reported_offline(cluster):
    """Goal: with no other in-sync replica (RF 1) a damaged batch keeps being refused — never
    served — and the broker reports the partition offline (`/ready` 503 naming partition,
    offset and file; Metadata lists it as an offline replica).
    Method: one partition at RF 1 (min.insync.replicas=1); 300 records in 30 batches; flip a
    bit in the 4th batch; consume from offset 0 for a few seconds: only the records before the
    damaged batch arrive, each with its acknowledged value; then check `/ready` and Metadata."""
    topic = f"repair-rf1-{uuid.uuid4().hex[:8]}"
    from confluent_kafka.admin import NewTopic
    admin = cluster.admin()
    admin.create_topics([NewTopic(topic, 1, 1, config={"min.insync.replicas": "1"})])[topic].result(30)
    cluster.wait_isr_full(topic)
    acked = produce(cluster, topic)
    leader = cluster.partitions(topic)[0][0]
    broker = cluster.brokers[leader]
    path, damaged_base = flip_a_bit_in_the_records_of(partition_dir(broker, topic), DAMAGED_BATCH)

    records = consume_all(cluster, topic, RECORDS, timeout_s=8)

    assert [offset for offset, _, _ in records] == list(range(damaged_base)), \
        f"read up to {records[-1][0] if records else None}, want everything below {damaged_base} and nothing more"
    for offset, key, value in records:
        assert (key, value) == acked[offset]
    assert cluster.partitions(topic)[0][0] == leader
    status, body = wait_until(lambda: (lambda a: a if a[0] == 503 else None)(ready_answer(broker)), 10,
                              "/ready to report the damaged partition")
    assert f"partition {topic}-0: offline" in body and str(damaged_base) in body and os.path.basename(path) in body, body
    metadata = cluster.admin().list_topics(topic, timeout=5).topics[topic].partitions[0]
    # confluent-kafka's PartitionMetadata does not expose offline replicas; the broker's log says it.
    assert metadata.leader == leader
    assert "no other live in-sync replica can take over" in log_text(broker)
