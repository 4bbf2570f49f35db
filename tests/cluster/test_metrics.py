"""Consumer lag as metrics, across brokers: the group's coordinator reports the lag of every
partition it has commits for (records and seconds), asking the leaders on other brokers for
their high watermarks and batch timestamps."""

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


def lag_series(cluster, group, unit="records"):
    """{(topic, partition): lag} from every broker's /metrics."""
    pattern = re.compile(
        r'^sluice_consumer_group_lag_' + unit + r'\{group="' + re.escape(group)
        + r'",topic="([^"]+)",partition="(\d+)"\} ([0-9.e+]+)$')
    found = {}
    for broker in cluster.running():
        for line in scrape(broker).splitlines():
            match = pattern.match(line)
            if match:
                found[(match.group(1), int(match.group(2)))] = float(match.group(3))
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
    # Seconds: the records were produced just now (within the test's first minute).
    seconds = lag_series(cluster, group, "seconds")
    assert set(seconds) == set(expected) and all(0 <= s < 120 for s in seconds.values()), seconds

    consumer.commit(offsets=[TopicPartition(topic, p, ends[p]) for p in range(PARTITIONS)], asynchronous=False)
    caught_up = {key: 0 for key in expected}
    wait_until(lambda: lag_series(cluster, group) == caught_up, 20, "lag metrics at 0", interval_s=0.5)
    assert lag_series(cluster, group, "seconds") == caught_up
    consumer.close()


def counter(broker, name):
    """A broker's counter `name` (without `_total`) from /metrics."""
    for line in scrape(broker).splitlines():
        if line.startswith(f"sluice_{name}_total "):
            return float(line.split()[1])
    raise AssertionError(f"no sluice_{name}_total on broker {broker.node_id}")


def test_isr_shrinks_and_expands_are_counted_on_the_leader(cluster):
    """Goal: sluice_isr_shrinks_total / sluice_isr_expands_total count the ISR changes of the
    partitions a broker leads, however they happen (here: the controller fences a killed
    follower, then the follower catches up and the leader takes it back), and
    sluice_leaderships_gained_total the elections the other brokers won.
    Method: 3 partitions at RF 3; SIGKILL broker 3: every partition it follows and another
    broker leads shrinks; after its restart and a full ISR they expand. Each surviving leader's
    counters must rise by at least the number of its partitions broker 3 followed."""
    topic = f"isr-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, 3)
    victim = cluster.brokers[3]
    before = {b.node_id: (counter(b, "isr_shrinks"), counter(b, "isr_expands")) for b in cluster.running()}
    gained_before = sum(counter(b, "leaderships_gained") for b in cluster.running() if b is not victim)
    led = {}
    victim_leads = 0
    for partition, (leader, replicas, _) in cluster.partitions(topic).items():
        if leader != victim.node_id and victim.node_id in replicas:
            led[leader] = led.get(leader, 0) + 1
        victim_leads += leader == victim.node_id
    assert led, "the victim follows some partition led elsewhere (RF 3 on 3 brokers)"
    victim.kill()
    wait_until(lambda: all(counter(cluster.brokers[b], "isr_shrinks") - before[b][0] >= n for b, n in led.items()),
               30, f"ISR shrinks counted on the leaders {led}")
    # Every partition the victim led (of this topic, and maybe of __consumer_offsets) got a new
    # leader among the others: their leaderships_gained rise by at least that many.
    wait_until(lambda: sum(counter(b, "leaderships_gained") for b in cluster.running()) - gained_before >= victim_leads,
               30, f"{victim_leads} elections counted as leaderships gained")
    victim.start()
    victim.wait_ready()
    cluster.wait_isr_full(topic)
    wait_until(lambda: all(counter(cluster.brokers[b], "isr_expands") - before[b][1] >= n for b, n in led.items()),
               30, f"ISR expansions counted on the leaders {led}")
