"""kafka-python: topic administration (create, delete, partitions, configs) and produce +
consume."""

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic
from kafka.errors import InvalidConfigurationError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

import pytest


def admin_client(broker):
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)


def topic_configs(admin, name):
    """The topic's configs as kafka-python reports them: {key: value}. kafka-python 3 lists
    the entries whose source is not a default (the overrides)."""
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    return {key: entry["value"] for key, entry in described["topic"][name].items()}


def test_create_describe_alter_partition_and_delete_topics(broker, topic_name):
    admin = admin_client(broker)
    admin.create_topics([NewTopic(topic_name, num_partitions=2, replication_factor=1,
                                  topic_configs={"retention.ms": "3600000"})])
    assert topic_name in admin.list_topics()
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=1)])

    assert topic_configs(admin, topic_name) == {"retention.ms": "3600000"}

    # IncrementalAlterConfigs (kafka-python's choice when the broker lists it): SET one key.
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name, configs={"segment.bytes": "1048576"})])
    assert topic_configs(admin, topic_name) == {"retention.ms": "3600000", "segment.bytes": "1048576"}
    # AlterConfigs (legacy): the given set replaces all overrides; kafka-python sends the
    # other modified keys along, so resetting one key drops exactly that one.
    admin.reset_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name, configs=["retention.ms"])],
                        incremental=False)
    assert topic_configs(admin, topic_name) == {"segment.bytes": "1048576"}
    admin.reset_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name, configs=["segment.bytes"])],
                        incremental=True)
    assert topic_configs(admin, topic_name) == {}

    for incremental in (True, False):
        result = admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic_name, configs={"segment.ms": "0"})],
            incremental=incremental, raise_on_unknown=False)
        error = result["topic"][topic_name]
        assert str(error).startswith("[Error 40] InvalidConfigurationError"), result
    assert topic_configs(admin, topic_name) == {}

    admin.create_partitions({topic_name: NewPartitions(total_count=5)})
    [described] = admin.describe_topics([topic_name])
    assert len(described["partitions"]) == 5

    admin.delete_topics([topic_name])
    assert topic_name not in admin.list_topics()
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.delete_topics([topic_name])
    admin.close()


def test_produce_and_consume(broker, topic_name):
    admin = admin_client(broker)
    admin.create_topics([NewTopic(topic_name, num_partitions=3, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type="gzip")
    futures = [producer.send(topic_name, key=b"k%d" % (i % 7), value=b"v%d" % i,
                             headers=[("n", str(i).encode())]) for i in range(3000)]
    producer.flush()
    metadata = [future.get(timeout=10) for future in futures]
    producer.close()
    assert len({(m.partition, m.offset) for m in metadata}) == 3000

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=5000, auto_offset_reset="earliest")
    partitions = [TopicPartition(topic_name, p) for p in range(3)]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    received = []
    deadline = time.time() + 30
    while len(received) < 3000 and time.time() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            received.extend(records)
    consumer.close()
    assert sorted(r.value for r in received) == sorted(b"v%d" % i for i in range(3000))
    by_key = {}
    for record in sorted(received, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key, []).append(int(record.value[1:]))
    assert all(values == sorted(values) for values in by_key.values())
    assert all(dict(r.headers)["n"] == r.value[1:] for r in received)


def test_describe_cluster_and_broker_configs(broker):
    admin = admin_client(broker)
    cluster = admin.describe_cluster()
    assert [(b["broker_id"], b["port"]) for b in cluster["brokers"]] == [(1, broker.kafka_port)]
    assert cluster["controller_id"] == 1
    assert cluster["cluster_id"].startswith("sluice-")
    # The broker's topic defaults are static configs; kafka-python lists only dynamic ones, so
    # the answer is an empty set without an error.
    assert admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")]) == {"broker": {"1": {}}}
    admin.close()
