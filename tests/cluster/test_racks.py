"""Racks: `--rack` reaches Metadata and DescribeCluster, placement puts a partition's replicas
on distinct racks, a consumer with `client.rack` fetches from the replica on its rack (KIP-392)
without losing or repeating anything acknowledged, and `sluice cluster rebalance` spreads a
topic crowded onto one rack over every rack (with `cluster status` showing a move)."""

import json
import re
import time
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from conftest import Cluster, wait_until
from workload import KeyedProducer, check_history, read_everything

PARTITIONS = 6
RECORDS = 3000


def racked_cluster(tmp_path, racks, voter_count=None):
    """Brokers 1..len(racks), broker i on racks[i-1], the first `voter_count` (default: all)
    metadata voters, started."""
    cluster = Cluster(str(tmp_path), size=len(racks), voter_count=voter_count,
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


def test_rebalance_spreads_a_crowded_topic_over_every_rack(tmp_path):
    """Goal: `sluice cluster rebalance` on six brokers over racks a, a, b, b, c, c moves a topic
    whose replicas all sit on brokers 1, 2 (rack a) and 3 so that every partition has one
    replica per rack, the brokers' replica counts are within one and the preferred replicas
    lead, while an idempotent acks=all producer loses and duplicates nothing; `sluice cluster status`
    shows a move in progress (text and JSON) and nothing once it is done.
    Method: the topic is created with an explicit replica assignment [1, 2, 3] for its 6
    partitions. Broker 6 is paused (SIGSTOP) and partition 0 reassigned to [1, 3, 6]: it cannot
    finish while 6 cannot copy, so `cluster status` is read then, before 6 resumes and
    `reassign --verify --wait` sees the move done. Then the rebalance, a second `--dry-run --json`
    (no moves, counts within one), the metadata's replicas against the racks, and everything
    read back from offset 0."""
    from confluent_kafka.admin import NewTopic
    racks = ["a", "a", "b", "b", "c", "c"]
    cluster = racked_cluster(tmp_path, racks, voter_count=3)
    try:
        topic = f"crowded-{uuid.uuid4().hex[:8]}"
        admin = cluster.admin()
        new = NewTopic(topic, num_partitions=PARTITIONS, replication_factor=-1,
                       replica_assignment=[[1, 2, 3]] * PARTITIONS, config={"min.insync.replicas": "2"})
        admin.create_topics([new])[topic].result(timeout=30)
        cluster.wait_isr_full(topic)
        producer = KeyedProducer(cluster.bootstrap(), topic, rate=200).start()
        producer.wait_acks(200)

        assert "moving" not in cluster.sluice("cluster", "status")
        plan = tmp_path / "onto-6.json"
        plan.write_text(json.dumps({"version": 1, "partitions": [
            {"topic": topic, "partition": 0, "replicas": [1, 3, 6]}]}))
        cluster.brokers[6].pause()
        try:
            cluster.sluice("topic", "reassign", "--execute", "--plan", str(plan))
            status = json.loads(cluster.sluice("cluster", "status", "--json"))
            text = cluster.sluice("cluster", "status")
        finally:
            cluster.brokers[6].resume()
        moving = [m for m in status["moving"] if m["topic"] == topic]
        assert moving == [{"topic": topic, "partition": 0, "replicas": [1, 3, 6, 2], "target": [1, 3, 6],
                           "adding": [6], "removing": [2], "adding_in_sync": []}], status["moving"]
        assert f"  {topic}-0  replicas [1, 3, 6, 2]  moving to [1, 3, 6], adding [6], removing [2]" \
               "  in sync 0 of 1" in text, text
        cluster.sluice("topic", "reassign", "--verify", "--plan", str(plan), "--wait", "--timeout", "60",
                       timeout_s=90)
        assert "moving" not in cluster.sluice("cluster", "status")

        out = cluster.sluice("cluster", "rebalance", "--timeout", "120", timeout_s=150)
        print(out)
        assert "rebalanced:" in out, out
        again = json.loads(cluster.sluice("cluster", "rebalance", "--dry-run", "--json"))
        assert again["moves"] == [], again
        counts = [load["replicas"] for load in again["before"].values()]
        assert max(counts) - min(counts) <= 1, again["before"]
        cluster.wait_isr_full(topic)
        for partition, (_, replicas, _) in cluster.partitions(topic).items():
            assert sorted(rack_of(racks, b) for b in replicas) == ["a", "b", "c"], (partition, replicas)
        wait_until(lambda: all(leader == replicas[0] for leader, replicas, _ in cluster.partitions(topic).values()),
                   60, "the preferred replicas to lead")

        producer.wait_acks(len(producer.acked()) + 200)
        producer.stop()
        assert not producer.failed(), producer.failed()[:5]
        records, _ = read_everything(cluster.bootstrap(), topic, PARTITIONS)
        check_history(producer.acked(), records)
    finally:
        stop_cleanly(cluster)
