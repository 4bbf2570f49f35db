"""The workload of the cluster suite and its checker.

`KeyedProducer` runs a confluent-kafka producer on a thread: keyed records whose values are
unique (`<key>:<sequence>`), every delivery report logged with its partition, offset and the
monotonic time it arrived. `read_everything` reads every partition from offset 0 up to its high
watermark. `check_history` compares the two: every acknowledged record is in the log at exactly
the offset it was acknowledged with (nothing lost), no value is there twice (no duplicates), and
each key's records are in the order they were produced (per-key order). `check_replicas` compares
the batches of every replica of every partition below the high watermark (offsets, epochs,
CRC-32C), straight from the segment files.
"""

import os
import threading
import time
from collections import defaultdict

from confluent_kafka import Consumer, Producer, TopicPartition

import segments
from watermarks import high_watermark


class Delivery:
    __slots__ = ("key", "value", "partition", "offset", "at", "error")

    def __init__(self, key, value, partition, offset, at, error):
        self.key, self.value, self.partition, self.offset, self.at, self.error = (
            key, value, partition, offset, at, error)


class KeyedProducer:
    """Produces keyed records with unique values until stopped, at most `rate` records/s."""

    def __init__(self, bootstrap, topic, keys=64, rate=400, acks="all", idempotent=True, extra=None):
        config = {
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "enable.idempotence": idempotent,
            "linger.ms": 5,
            # A failover (fence after the session timeout, election, metadata refresh) must fit
            # in the delivery timeout with room to spare.
            "delivery.timeout.ms": 120000,
            "request.timeout.ms": 10000,
            "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 200,
            "topic.metadata.refresh.interval.ms": 1000,
            # Client-level errors (a fatal idempotence error names its cause only here).
            "error_cb": self.on_error,
        }
        config.update(extra or {})
        self.errors = []
        self.producer = Producer(config)
        self.topic = topic
        self.keys = keys
        self.rate = rate
        self.deliveries = []
        self.produced = 0
        self.next_sequence = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def on_error(self, error):
        with self.lock:
            self.errors.append(f"{error.name()} (fatal={error.fatal()}): {error.str()}")

    def on_delivery(self, error, message):
        record = Delivery(message.key().decode(), message.value().decode(), message.partition(),
                          message.offset(), time.monotonic(), error)
        with self.lock:
            self.deliveries.append(record)

    def run(self):
        sequence = 0
        started = time.monotonic()
        while not self.stopping.is_set():
            key = f"k{sequence % self.keys}"
            try:
                self.producer.produce(self.topic, key=key, value=f"{key}:{sequence}", on_delivery=self.on_delivery)
                sequence += 1
                self.next_sequence = sequence
            except BufferError:
                self.producer.poll(0.05)
                continue
            self.producer.poll(0)
            ahead = sequence / self.rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        self.produced = sequence

    def stop(self, flush_timeout_s=120):
        self.stopping.set()
        self.thread.join(timeout=30)
        remaining = self.producer.flush(flush_timeout_s)
        assert remaining == 0, f"{remaining} records never got a delivery report"

    def acked(self):
        with self.lock:
            return [d for d in self.deliveries if d.error is None]

    def failed(self):
        with self.lock:
            return [d for d in self.deliveries if d.error is not None]

    def acks_on(self, partition):
        with self.lock:
            return sum(1 for d in self.deliveries if d.error is None and d.partition == partition)

    def first_ack_after(self, partition, sequence):
        """When the first record of `partition` produced at or after `sequence` was acknowledged:
        records sent before a fault may be acknowledged just after it, which says nothing."""
        with self.lock:
            times = [d.at for d in self.deliveries
                     if d.error is None and d.partition == partition and int(d.value.split(":")[1]) >= sequence]
        return min(times) if times else None

    def wait_acks(self, count, timeout_s=60):
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if len(self.acked()) >= count:
                return
            time.sleep(0.05)
        with self.lock:
            errors = self.errors[-5:]
        raise AssertionError(f"only {len(self.acked())} of {count} records acknowledged in {timeout_s} s; "
                             f"producer thread alive: {self.thread.is_alive()}; last client errors: {errors}")


def read_everything(bootstrap, topic, partitions, timeout_s=60):
    """Every record of every partition from offset 0 to the high watermark at the start of the
    read: {partition: [(offset, key, value), ...]}."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"reader-{os.getpid()}-{time.monotonic_ns()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    })
    ends = {}
    for partition in range(partitions):
        ends[partition] = high_watermark(consumer, TopicPartition(topic, partition))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    records = defaultdict(list)
    done = {p for p, end in ends.items() if end == 0}
    deadline = time.time() + timeout_s
    while len(done) < partitions and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            continue
        partition = message.partition()
        if message.offset() < ends[partition]:
            records[partition].append((message.offset(), message.key().decode(), message.value().decode()))
        if message.offset() + 1 >= ends[partition]:
            done.add(partition)
    consumer.close()
    assert len(done) == partitions, f"read did not reach the high watermark of {set(range(partitions)) - done}"
    return dict(records), ends


def check_history(acked, records):
    """Nothing acknowledged is lost or moved, nothing is duplicated, per-key order holds.
    Returns a summary dict."""
    by_value = {}
    for partition, entries in records.items():
        for offset, key, value in entries:
            assert value not in by_value, f"duplicate {value} at {partition}/{offset} and {by_value[value]}"
            by_value[value] = (partition, offset)
    lost = [d for d in acked if (d.partition, d.offset) != by_value.get(d.value)]
    assert not lost, f"{len(lost)} acknowledged records lost or moved, first {lost[0].value} " \
                     f"acked at {lost[0].partition}/{lost[0].offset}, found at {by_value.get(lost[0].value)}"
    for partition, entries in records.items():
        last_sequence = {}
        for offset, key, value in entries:
            sequence = int(value.split(":")[1])
            assert sequence > last_sequence.get(key, -1), f"{key} out of order at {partition}/{offset}"
            last_sequence[key] = sequence
    return {"acked": len(acked), "stored": len(by_value)}


def check_replicas(cluster, topic, partitions, ends, replication_factor=3):
    """Every replica of every partition holds the same batches below the high watermark."""
    for partition in range(partitions):
        copies = {}
        for broker in cluster.brokers.values():
            directory = os.path.join(broker.data_dir, "logs", f"{topic}-{partition}")
            if os.path.isdir(directory):
                copies[broker.node_id] = segments.up_to(segments.batches(directory), ends[partition])
        assert len(copies) == replication_factor, f"partition {partition} has replicas on {sorted(copies)}"
        reference = next(iter(copies.values()))
        assert reference and reference[-1][1] >= ends[partition] - 1 or ends[partition] == 0, \
            f"partition {partition}: replica batches end before the high watermark {ends[partition]}"
        for node_id, copy in copies.items():
            assert copy == reference, f"partition {partition}: broker {node_id}'s batches differ"
