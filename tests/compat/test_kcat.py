"""kcat (Debian's package, librdkafka 2.0.2): 100,000 keyed lines produced from a file and
consumed back with `-o beginning -e`."""

import collections
import subprocess

LINES = 100_000
KEYS = 97
TIMEOUT_S = 300


def write_lines(path):
    with open(path, "wb") as out:
        for i in range(LINES):
            out.write(b"key-%d:value-%d-%s\n" % (i % KEYS, i, b"x" * (i % 50)))
    return path.read_bytes()


def kcat(*args, stdin=None):
    return subprocess.run(["kcat", *args], stdin=stdin, capture_output=True, check=True, timeout=TIMEOUT_S)


def produce(broker, topic, path):
    with open(path, "rb") as lines:
        kcat("-b", broker.bootstrap, "-t", topic, "-P", "-K:", "-X", "queue.buffering.max.messages=200000",
             stdin=lines)


def consume(broker, topic):
    return kcat("-b", broker.bootstrap, "-t", topic, "-C", "-o", "beginning", "-e", "-K:", "-f", "%k:%s\n").stdout


def test_one_partition_round_trips_identical_bytes(broker, topic_name, tmp_path):
    sent = write_lines(tmp_path / "lines.txt")
    produce(broker, topic_name, tmp_path / "lines.txt")
    assert consume(broker, topic_name) == sent


def test_many_partitions_keep_per_key_order(broker, topic_name, tmp_path):
    # kafka-python creates the topic with 4 partitions; kcat's keyed produce spreads the keys
    # with librdkafka's murmur2 partitioner (the broker never reorders within a partition).
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(topic_name, num_partitions=4, replication_factor=1)])
    admin.close()
    sent = write_lines(tmp_path / "lines.txt")
    subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-t", topic_name, "-P", "-K:", "-p", "-1",
         "-X", "partitioner=murmur2_random", "-X", "queue.buffering.max.messages=200000"],
        stdin=open(tmp_path / "lines.txt", "rb"), check=True, timeout=TIMEOUT_S,
    )
    received = consume(broker, topic_name)
    assert sorted(received.splitlines()) == sorted(sent.splitlines())

    def per_key(data):
        order = collections.defaultdict(list)
        for line in data.splitlines():
            key, value = line.split(b":", 1)
            order[key].append(value)
        return order

    assert per_key(received) == per_key(sent)
