"""Consumer lag as metrics, across brokers: the group's coordinator reports the lag of every
partition it has commits for, asking the leaders on other brokers for their high watermarks."""

import re
import urllib.request
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import wait_until

PARTITIONS = 6


def scrape(broker):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/metrics", timeout=5) as answer:
        assert answer.headers["content-type"].startswith("application/openmetrics-text")
        return answer.read().decode()


def lag_series(cluster, group):
    """{(topic, partition): lag} from every broker's /metrics."""
    pattern = re.compile(
        r'^sluice_consumer_group_lag_records\{group="' + re.escape(group)
        + r'",topic="([^"]+)",partition="(\d+)"\} (\d+)$')
    found = {}
    for broker in cluster.running():
        for line in scrape(broker).splitlines():
            match = pattern.match(line)
            if match:
                found[(match.group(1), int(match.group(2)))] = int(match.group(3))
    return found


def test_consumer_lag_metrics_cover_partitions_led_by_other_brokers(cluster):
    """Goal: sluice_consumer_group_lag_records is high watermark - committed offset for every
    partition a group committed, whichever broker leads it, and falls to 0 once it catches up.
    Method: 6 partitions at RF 3 (leaders spread over the 3 brokers); 600 records; a group
    commits offset 40 on each partition; the brokers' /metrics must give high watermark - 40
    for each (the high watermarks from the client's own ListOffsets); then the group commits
    the high watermarks and the lag must read 0 everywhere."""
    topic = f"lagged-{uuid.uuid4().hex[:8]}"
    group = f"lag-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, PARTITIONS)
    leaders = {leader for leader, _, _ in cluster.partitions(topic).values()}
    assert len(leaders) > 1, "partitions led by more than one broker"
    producer = Producer({"bootstrap.servers": cluster.bootstrap(), "acks": "all"})
    for i in range(600):
        producer.produce(topic, value=f"v{i}", partition=i % PARTITIONS)
    assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap(), "group.id": group, "enable.auto.commit": False})
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTITIONS)}
    consumer.commit(offsets=[TopicPartition(topic, p, 40) for p in range(PARTITIONS)], asynchronous=False)
    expected = {(topic, p): ends[p] - 40 for p in range(PARTITIONS)}
    wait_until(lambda: lag_series(cluster, group) == expected, 20, f"lag metrics {expected}", interval_s=0.5)

    consumer.commit(offsets=[TopicPartition(topic, p, ends[p]) for p in range(PARTITIONS)], asynchronous=False)
    caught_up = {key: 0 for key in expected}
    wait_until(lambda: lag_series(cluster, group) == caught_up, 20, "lag metrics at 0", interval_s=0.5)
    consumer.close()
