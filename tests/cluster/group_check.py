"""A consumer group of three confluent-kafka consumers through a SIGKILL of its coordinator
(test_replication.py). Each member polls, records what it saw, and commits synchronously after
every message it handled; every successful commit is logged with its offsets."""

import threading
import time
from collections import defaultdict

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import wait_until
from workload import KeyedProducer

PARTITIONS = 3
MEMBERS = 3


class Member(threading.Thread):
    def __init__(self, bootstrap, group, topic, seen, commits, lock):
        super().__init__(daemon=True)
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        })
        self.topic, self.seen, self.commits, self.lock = topic, seen, commits, lock
        self.stopping = threading.Event()
        self.commit_errors = 0

    def run(self):
        self.consumer.subscribe([self.topic])
        while not self.stopping.is_set():
            message = self.consumer.poll(0.2)
            if message is None or message.error():
                continue
            with self.lock:
                self.seen.add(message.value().decode())
            try:
                committed = self.consumer.commit(message=message, asynchronous=False)
            except KafkaException:
                # Coordinator moving: the next commit covers this one.
                self.commit_errors += 1
                continue
            with self.lock:
                for tp in committed:
                    if tp.error is None:
                        self.commits[tp.partition].append((time.monotonic(), tp.offset))
        self.consumer.close()


def start_group(bootstrap, topic, count):
    """Starts `count` members of the group `group-<topic>`, recording into shared `seen`
    (values), `commits` (partition -> [(time, offset)]) under `lock`; returns
    (group, members, seen, commits, lock)."""
    group = f"group-{topic}"
    seen, commits, lock = set(), defaultdict(list), threading.Lock()
    members = [Member(bootstrap, group, topic, seen, commits, lock) for _ in range(count)]
    for member in members:
        member.start()
    return group, members, seen, commits, lock


def committed_offsets(bootstrap, group, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        answer = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
        return {tp.partition: tp.offset for tp in answer}
    finally:
        consumer.close()


def finish_and_check_commits(cluster, producer, members, seen, lock, commits, group, topic, before, event):
    """Stops `producer` (no delivery may have failed), waits until the group has consumed
    every acknowledged record, stops the members, then checks that no member's commits went
    backwards and that no partition's committed offset is below what it was before `event`
    (`before`: partition -> offset). Returns the acknowledged values."""
    producer.stop()
    assert not producer.failed(), f"{len(producer.failed())} deliveries failed: {producer.failed()[0].error}"
    acked = {d.value for d in producer.acked()}
    wait_until(lambda: acked <= seen, 90, "the group to consume every acknowledged record")
    for member in members:
        member.stopping.set()
    for member in members:
        member.join(timeout=30)
    with lock:
        for partition, entries in commits.items():
            offsets = [o for _, o in sorted(entries)]
            assert offsets == sorted(offsets), f"partition {partition}: a commit went backwards"
    after = committed_offsets(cluster.bootstrap(), group, topic)
    for partition, offset in before.items():
        assert after[partition] >= offset, \
            f"partition {partition}: committed {offset} before {event}, {after[partition]} after"
    return acked


def run_group_through_coordinator_kill(cluster, topic):
    cluster.create_topic(topic, PARTITIONS)
    producer = KeyedProducer(cluster.bootstrap(), topic, rate=200).start()
    group, members, seen, commits, lock = start_group(cluster.bootstrap(), topic, MEMBERS)
    wait_until(lambda: sum(len(c) for c in commits.values()) >= 200, 60, "the group to commit")

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap()})
    described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    coordinator = cluster.brokers[described.coordinator.id]
    with lock:
        before = {p: max(o for _, o in entries) for p, entries in commits.items()}
    killed_at = time.monotonic()
    coordinator.kill()
    # Consumption goes on: new records are seen after the kill.
    seen_at_kill = len(seen)
    wait_until(lambda: len(seen) >= seen_at_kill + 200, 60, "consumption after the coordinator died")
    coordinator.start()
    coordinator.wait_ready()
    acked = finish_and_check_commits(cluster, producer, members, seen, lock, commits, group, topic, before, "the kill")
    first_commit_after = min((t for entries in commits.values() for t, _ in entries if t > killed_at), default=None)
    return {
        "acked": len(acked),
        "consumed_distinct": len(seen),
        "commits": sum(len(c) for c in commits.values()),
        "commit_errors": sum(m.commit_errors for m in members),
        "first_commit_after_kill_s": round(first_commit_after - killed_at, 3) if first_commit_after else None,
    }
