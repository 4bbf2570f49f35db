"""A power loss of one replica (issue 12, docs/reliability.md "Guarantees"): what it had not
fsynced is gone from its disk. Sluice's model is Kafka's: durability comes from replication,
not from fsync — under the default flush policy an append stays in the page cache — and an
acks=all acknowledgement means every in-sync replica holds the record. So one replica losing
its unsynced data loses nothing acknowledged: it recovers to what it synced and copies the rest
from the leader.

A power loss of one process cannot be had on a shared machine, so the test leaves its worst
case on disk: the broker is SIGKILLed, then every partition log of it is cut back to its
recovery point (`partition.checkpoint`: every byte below that offset was fsynced before the
checkpoint said so) — every byte the kernel might not have written back yet is dropped. The
checkpoint files themselves and the metadata Raft log are fsynced before they count, so they
stay.
"""

import os
import struct
import time
import uuid

from conftest import wait_until
from test_replication import report
from workload import KeyedProducer, check_history, check_replicas, read_everything

PARTITIONS = 3

CHECKPOINT_MAGIC = b"SLCP"


def recovery_point(partition_dir):
    """The recovery point of `partition.checkpoint` (docs: crates/log/src/checkpoint.rs), or 0
    without a valid one (the log then re-validates everything, as after losing the file)."""
    try:
        with open(os.path.join(partition_dir, "partition.checkpoint"), "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return 0
    if len(data) < 24 or data[:4] != CHECKPOINT_MAGIC:
        return 0
    (point,) = struct.unpack_from(">q", data, 16)
    return point


def lose_unsynced(logs_dir):
    """Cuts every segment of every partition under `logs_dir` before its first batch at or
    above the partition's recovery point. Returns the bytes dropped."""
    dropped = 0
    for name in sorted(os.listdir(logs_dir)):
        partition_dir = os.path.join(logs_dir, name)
        if not os.path.isdir(partition_dir):
            continue
        point = recovery_point(partition_dir)
        for segment in sorted(n for n in os.listdir(partition_dir) if n.endswith(".log")):
            path = os.path.join(partition_dir, segment)
            with open(path, "rb") as file:
                data = file.read()
            cut, position = len(data), 0
            while position + 61 <= len(data):
                base_offset, length = struct.unpack_from(">qi", data, position)
                if length <= 0 or position + 12 + length > len(data):
                    break
                if base_offset >= point:
                    cut = position
                    break
                position += 12 + length
            else:
                cut = min(cut, position)
            if cut < len(data):
                os.truncate(path, cut)
                dropped += len(data) - cut
    return dropped


def test_a_power_loss_of_the_leader_loses_nothing_acknowledged(cluster):
    """Method: a topic of 3 partitions at replication factor 3 (min.insync.replicas=2) under an
    idempotent acks=all confluent-kafka producer; the leader of partition 0 is SIGKILLed and
    its logs cut back to their recovery points (with the default flush policy nothing has
    been fsynced yet, so it loses about everything); writes go on meanwhile; it restarts,
    rejoins every ISR; then everything is read back from offset 0 and every replica's
    batches compared."""
    topic = f"power-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, PARTITIONS, replication_factor=3)
    producer = KeyedProducer(cluster.bootstrap(), topic, rate=400).start()
    producer.wait_acks(1500)

    victim_id = cluster.partitions(topic)[0][0]
    victim = cluster.brokers[victim_id]
    victim.kill()
    dropped = lose_unsynced(os.path.join(victim.data_dir, "logs"))
    assert dropped > 0, "the power loss dropped nothing: the test would prove nothing"
    producer.wait_acks(len(producer.acked()) + 500)

    started = time.monotonic()
    victim.start()
    victim.wait_ready()
    cluster.wait_isr_full(topic, timeout_s=90)
    rejoined_s = time.monotonic() - started
    producer.wait_acks(len(producer.acked()) + 500)
    producer.stop()
    assert not producer.failed(), producer.failed()[:5]

    records, ends = read_everything(cluster.bootstrap(), topic, PARTITIONS)
    summary = check_history(producer.acked(), records)
    check_replicas(cluster, topic, PARTITIONS, ends, replication_factor=3)
    wait_until(lambda: all(victim_id in isr for _, _, isr in cluster.partitions(topic).values()), 60,
               "the victim back in every ISR")
    report("power_loss", {"victim": victim_id, "dropped_bytes": dropped, "rejoined_s": round(rejoined_s, 2),
                          **summary})
