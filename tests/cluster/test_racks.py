"""Racks: `--rack` reaches Metadata and DescribeCluster, placement puts a partition's replicas
on distinct racks, and a consumer with `client.rack` fetches from the replica on its rack
(KIP-392) without losing or repeating anything acknowledged."""

import json
import re
import time
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from conftest import Cluster, wait_until

PARTITIONS = 6
RECORDS = 3000


def racked_cluster(tmp_path, racks):
    """Brokers 1..len(racks), broker i on racks[i-1], all metadata voters, started."""
    cluster = Cluster(str(tmp_path), size=len(racks),
                      broker_args={i + 1: ["--rack", rack] for i, rack in enumerate(racks)})
    cluster.start()
    return cluster


def stop_cleanly(cluster):
    codes = cluster.stop()
    print(cluster.logs())
    assert all(code == 0 for code in codes.values()), f"unclean exits {codes}"


@pytest.fixture
def three_racks(tmp_path):
    cluster = racked_cluster(tmp_path, ["a", "b", "c"])
    yield cluster
    stop_cleanly(cluster)


def consumer_bytes_sent(broker, topic):
    """Bytes of `topic` this broker sent to consumers (sluice_topic_sent_bytes_total)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    pattern = re.compile(r'^sluice_topic_sent_bytes_total\{(.*)\} ([0-9.e+]+)$')
    total = 0.0
    for line in text.splitlines():
        match = pattern.match(line)
        if match and f'topic="{topic}"' in match.group(1) and 'reader="consumer"' in match.group(1):
            total += float(match.group(2))
    return total


def rack_of(cluster_racks, broker):
    return cluster_racks[broker - 1]


def test_racks_are_reported_and_replicas_span_every_rack(three_racks):
    """Goal: the rack each broker was started with is in Metadata (the `sluice` CLI reads it
    from there) and in DescribeCluster, and an RF 3 topic over racks a, b, c has each
    partition's replicas on three distinct racks, leaders spread evenly.
    Method: three brokers on racks a, b, c; `sluice cluster status --json`; confluent-kafka's
    describe_cluster; a 6-partition RF 3 topic's Metadata."""
    cluster = three_racks
    status = json.loads(cluster.sluice("cluster", "status", "--json"))
    assert {b["id"]: b["rack"] for b in status["brokers"]} == {1: "a", 2: "b", 3: "c"}
    admin = cluster.admin()  # kept alive until the result is in
    described = admin.describe_cluster().result(timeout=10)
    assert {node.id: node.rack for node in described.nodes} == {1: "a", 2: "b", 3: "c"}

    topic = f"racked-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, PARTITIONS)
    racks = ["a", "b", "c"]
    leaders = {}
    for partition, (leader, replicas, _) in cluster.partitions(topic).items():
        assert sorted(rack_of(racks, b) for b in replicas) == ["a", "b", "c"], (partition, replicas)
        leaders[leader] = leaders.get(leader, 0) + 1
    assert leaders == {1: 2, 2: 2, 3: 2}, leaders


def test_placement_separates_rack_mates(tmp_path):
    """Goal: with more brokers than racks, replicas of one partition still land on distinct
    racks (load-only placement would pair brokers 1 and 2 here, both on rack a).
    Method: four brokers, racks a, a, b, b; an 8-partition RF 2 topic created through Kafka's
    CreateTopics, then grown to 12 partitions with CreatePartitions."""
    from confluent_kafka.admin import NewPartitions
    racks = ["a", "a", "b", "b"]
    cluster = racked_cluster(tmp_path, racks)
    try:
        topic = f"pairs-{uuid.uuid4().hex[:8]}"
        cluster.create_topic(topic, 8, replication_factor=2, configs={"min.insync.replicas": "1"})
        admin = cluster.admin()
        admin.create_partitions([NewPartitions(topic, 12)])[topic].result(timeout=30)
        cluster.wait_isr_full(topic)
        partitions = cluster.partitions(topic)
        assert len(partitions) == 12
        for partition, (_, replicas, _) in partitions.items():
            assert sorted(rack_of(racks, b) for b in replicas) == ["a", "b"], (partition, replicas)
    finally:
        stop_cleanly(cluster)


def test_a_consumer_with_client_rack_fetches_from_the_replica_on_its_rack(three_racks):
    """Goal (KIP-392): a consumer with client.rack = b is sent by the leaders on racks a and c
    to broker 2 (rack b), reads every acknowledged record exactly once from there, and the
    leaders send it no record data.
    Method: 6 partitions at RF 3 (each broker leads two); 3000 records with acks=all, all
    acknowledged; a group consumer with client.rack=b reads from offset 0 until it has every
    acknowledged (partition, offset), checking no offset comes twice; then /metrics: broker 2
    sent the topic's bytes to consumers, brokers 1 and 3 sent none (before the consumer, the
    counters of all three are checked to be zero)."""
    cluster = three_racks
    topic = f"closest-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, PARTITIONS)
    leaders = {p: leader for p, (leader, _, _) in cluster.partitions(topic).items()}
    assert set(leaders.values()) == {1, 2, 3}, leaders

    acked = {}
    failures = []

    def on_delivery(error, message):
        if error is not None:
            failures.append(error)
        else:
            acked[(message.partition(), message.offset())] = message.value()

    producer = Producer({"bootstrap.servers": cluster.bootstrap(), "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    for i in range(RECORDS):
        producer.produce(topic, value=f"v{i}".encode(), partition=i % PARTITIONS, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not failures, failures[:5]
    assert len(acked) == RECORDS
    cluster.wait_isr_full(topic)
    assert all(consumer_bytes_sent(b, topic) == 0 for b in cluster.brokers.values())

    consumer = Consumer({
        "bootstrap.servers": cluster.bootstrap(),
        "group.id": f"closest-{uuid.uuid4().hex[:8]}",
        "client.rack": "b",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    seen = {}
    duplicates = []
    deadline = time.time() + 90
    while len(seen) < len(acked) and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        key = (message.partition(), message.offset())
        if key in seen:
            duplicates.append(key)
        seen[key] = message.value()
    consumer.close()
    missing = set(acked) - set(seen)
    assert not missing, f"{len(missing)} acknowledged records not consumed, e.g. {sorted(missing)[:5]}"
    assert not duplicates, f"offsets read twice: {duplicates[:5]}"
    assert all(seen[key] == value for key, value in acked.items()), "a record changed"

    sent = {b.node_id: consumer_bytes_sent(b, topic) for b in cluster.brokers.values()}
    print(f"consumer bytes sent per broker: {sent}")
    assert sent[2] > 0, sent
    assert sent[1] == 0 and sent[3] == 0, f"leaders on other racks served records: {sent}"
