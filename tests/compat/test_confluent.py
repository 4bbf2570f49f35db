"""confluent-kafka (its bundled librdkafka): idempotent acks=all producers with every codec,
headers and timestamps round-trip, assign + seek to an offset and to a timestamp, and data
surviving a broker restart."""

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

MESSAGES = 2_000
BASE_TIMESTAMP_MS = 1_700_000_000_000
POLL_TIMEOUT_S = 30


def produce(broker, topic, compression, count=MESSAGES):
    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": compression,
        "linger.ms": 5,
    })
    failures = []
    delivered = []

    def report(error, message):
        if error is not None:
            failures.append(error)
        else:
            delivered.append((message.partition(), message.offset()))

    for i in range(count):
        producer.produce(
            topic,
            key=b"key-%d" % (i % 10),
            value=b"value-%d" % i,
            headers=[("index", str(i).encode()), ("codec", compression.encode())],
            timestamp=BASE_TIMESTAMP_MS + i,
            on_delivery=report,
        )
    assert producer.flush(POLL_TIMEOUT_S) == 0
    assert failures == []
    assert len(delivered) == count
    return delivered


def consumer(broker):
    # librdkafka requires a group id even for assign(); no group api is used.
    return Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": "compat-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
    })


def consume(client, count):
    received = []
    deadline = time.time() + POLL_TIMEOUT_S
    while len(received) < count and time.time() < deadline:
        message = client.poll(1.0)
        if message is None:
            continue
        assert message.error() is None, message.error()
        received.append(message)
    return received


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd"])
def test_idempotent_acks_all_producer_round_trips(broker, topic_name, compression):
    produce_and_read_back(broker, topic_name, compression)


def produce_and_read_back(broker, topic, compression):
    """Produces MESSAGES records with `compression` and reads them back from offset 0: the
    offsets, keys, values, headers and timestamps must be exactly those produced."""
    delivered = produce(broker, topic, compression)
    assert sorted(offset for _, offset in delivered) == list(range(MESSAGES))
    client = consumer(broker)
    client.assign([TopicPartition(topic, 0, 0)])
    received = consume(client, MESSAGES)
    client.close()
    assert [m.offset() for m in received] == list(range(MESSAGES))
    for i, message in enumerate(received):
        assert message.key() == b"key-%d" % (i % 10)
        assert message.value() == b"value-%d" % i
        assert message.headers() == [("index", str(i).encode()), ("codec", compression.encode())]
        assert message.timestamp() == (1, BASE_TIMESTAMP_MS + i)


def test_assign_seek_and_offsets_for_times(broker, topic_name):
    produce(broker, topic_name, "lz4")
    client = consumer(broker)
    client.assign([TopicPartition(topic_name, 0, 1234)])
    first = consume(client, 1)[0]
    assert first.offset() == 1234 and first.value() == b"value-1234"
    client.seek(TopicPartition(topic_name, 0, 17))
    assert consume(client, 1)[0].offset() == 17
    found = client.offsets_for_times([TopicPartition(topic_name, 0, BASE_TIMESTAMP_MS + 777)], timeout=10)
    assert found[0].error is None and found[0].offset == 777
    beyond = client.offsets_for_times([TopicPartition(topic_name, 0, BASE_TIMESTAMP_MS + MESSAGES)], timeout=10)
    assert beyond[0].offset == -1  # no record that new: the end (OFFSET_END)
    client.seek(found[0])
    assert consume(client, 1)[0].value() == b"value-777"
    low, high = client.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10)
    assert (low, high) == (0, MESSAGES)
    client.close()


def test_data_and_producer_state_survive_a_restart(broker, topic_name):
    """One idempotent producer keeps its producer id and sequence numbers across a broker
    restart: the broker rebuilds the producer's state from the log, so the sequences that
    continue after the restart are accepted (a gap or a forgotten producer would fail them
    with OUT_OF_ORDER_SEQUENCE_NUMBER, which librdkafka treats as fatal for idempotence)."""
    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "zstd",
        "linger.ms": 5,
    })
    failures = []

    def report(error, _message):
        if error is not None:
            failures.append(error)

    def send(first, count):
        for i in range(first, first + count):
            producer.produce(topic_name, key=b"k", value=b"value-%d" % i, on_delivery=report)
        assert producer.flush(POLL_TIMEOUT_S) == 0

    send(0, 500)
    broker.restart()
    send(500, 500)
    assert failures == []
    client = consumer(broker)
    client.assign([TopicPartition(topic_name, 0, 0)])
    received = consume(client, 1000)
    client.close()
    assert [m.offset() for m in received] == list(range(1000))
    assert [m.value() for m in received] == [b"value-%d" % i for i in range(1000)]


def test_a_zstd_topic_returns_a_gzip_producer_records_unchanged(broker, topic_name):
    """A topic with compression.type=zstd re-encodes what a gzip producer sends (the broker
    recompresses on the leader, as Kafka does); the client decompresses transparently, so the
    records it reads back must be exactly those produced: keys, values, headers, timestamps
    and offsets. The stored segment is read too: every batch in it carries the zstd codec
    (attributes bits 0-2 = 4), so the test cannot pass with the batches stored as gzip."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    created = admin.create_topics([NewTopic(topic_name, 1, 1, config={"compression.type": "zstd"})])
    created[topic_name].result(timeout=POLL_TIMEOUT_S)
    produce_and_read_back(broker, topic_name, "gzip")
    codecs = stored_codecs(broker, topic_name)
    assert codecs and set(codecs) == {4}, codecs


def stored_codecs(broker, topic):
    """The codec bits of every batch in partition 0's first segment file on disk (RecordBatch
    v2: base offset 8 bytes, batch length 4, ..., attributes 2 bytes at byte 21)."""
    import os
    import struct

    path = os.path.join(broker.data_dir, "logs", f"{topic}-0", "%020d.log" % 0)
    with open(path, "rb") as segment:
        data = segment.read()
    codecs, position = [], 0
    while position + 61 <= len(data):
        (length,) = struct.unpack_from(">i", data, position + 8)
        (attributes,) = struct.unpack_from(">h", data, position + 21)
        codecs.append(attributes & 0x7)
        position += 12 + length
    return codecs
