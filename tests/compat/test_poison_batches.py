"""Poison batches (issue 18): produce requests whose record batches carry a valid CRC-32C over
records that do not decode — a codec flag over bytes that are not that codec, random bytes as
the compressed stream, a record count of 2^31-1 for three records, offset deltas out of order,
bytes after the last record — in every codec, sent as raw Produce v3 requests. The broker must
refuse each with CORRUPT_MESSAGE (2) and append nothing, so that confluent-kafka and kcat then
read the partition from the beginning to the end: every good record, at consecutive offsets.
Before the fix such batches were acknowledged, and confluent-kafka looped on _BAD_COMPRESSION.

Batches are built by kafka-python's own RecordBatch builder, poisoned, and resealed (length and
CRC-32C recomputed with kafka-python's crc32c) so only record-level validation can catch them.
"""

import socket
import struct
import subprocess
import time

from confluent_kafka import Consumer, Producer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.util import calc_crc32c

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
CORRUPT_MESSAGE = 2
GOOD_PER_CODEC = 5
TIMEOUT_S = 60


def build_batch(codec_id, count=3):
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec_id, is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                        batch_size=1 << 20)
    now = int(time.time() * 1000)
    for i in range(count):
        builder.append(i, now, b"poison-key-%d" % i, b"poison-value-%d" % i, [])
    return bytearray(builder.build())


def reseal(batch):
    batch[8:12] = struct.pack(">i", len(batch) - 12)
    batch[17:21] = struct.pack(">I", calc_crc32c(bytes(batch[21:])))
    return bytes(batch)


def with_body(template, codec_id, body):
    batch = bytearray(template[:61]) + body
    attributes = struct.unpack(">h", batch[21:23])[0] & ~0x7 | codec_id
    batch[21:23] = struct.pack(">h", attributes)
    return reseal(batch)


def poison_batches(codec, codec_id):
    plain = build_batch(0)
    section = bytes(plain[61:])
    template = build_batch(codec_id)
    poisons = {}
    claims = bytearray(template)
    claims[57:61] = struct.pack(">i", 2**31 - 1)
    claims[23:27] = struct.pack(">i", 2**31 - 2)
    poisons["count 2^31-1"] = reseal(claims)
    fewer = bytearray(template)
    fewer[57:61] = struct.pack(">i", 2)
    fewer[23:27] = struct.pack(">i", 1)
    poisons["count 2 for 3 records"] = reseal(fewer)
    if codec == "none":
        deltas = bytearray(section)
        deltas[3] = 10  # record 0's offset delta: zigzag(5)
        poisons["offset delta 5"] = with_body(plain, 0, deltas)
        poisons["bytes after the last record"] = with_body(plain, 0, section + b"\0" * 9)
        poisons["gzip stream flagged as none"] = with_body(plain, 0, bytes(build_batch(1)[61:]))
    else:
        poisons["plain records under the codec flag"] = with_body(plain, codec_id, section)
        junk = bytes((i * 2654435761 >> 11) & 0xFF for i in range(300))
        poisons["random bytes as the stream"] = with_body(plain, codec_id, junk)
        body = bytes(template[61:])
        poisons["stream cut in half"] = with_body(template, codec_id, body[: len(body) // 2])
    return poisons


def string(text):
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def produce_raw(bootstrap, topic, batch, correlation_id):
    """Sends one Produce v3 request (acks=-1) and returns the partition's error code."""
    body = (struct.pack(">h", -1) + struct.pack(">hi", -1, 5000)
            + struct.pack(">i", 1) + string(topic)
            + struct.pack(">i", 1) + struct.pack(">i", 0) + struct.pack(">i", len(batch)) + batch)
    header = struct.pack(">hhi", 0, 3, correlation_id) + string("poison-test")
    payload = header + body
    host, port = bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as connection:
        connection.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", recv_exactly(connection, 4))[0]
        response = recv_exactly(connection, size)
    (answered_id,) = struct.unpack(">i", response[:4])
    assert answered_id == correlation_id
    at = 4 + 4  # correlation id, topic count
    (name_length,) = struct.unpack(">h", response[at:at + 2])
    at += 2 + name_length + 4  # name, partition count
    _index, error_code = struct.unpack(">ih", response[at:at + 6])
    return error_code


def recv_exactly(connection, count):
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        assert chunk, "broker closed the connection"
        data += chunk
    return data


def produce_good(bootstrap, topic, codec, first):
    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 5})
    for i in range(first, first + GOOD_PER_CODEC):
        producer.produce(topic, key=b"good-%d" % i, value=b"value-%d" % i, partition=0)
    assert producer.flush(TIMEOUT_S) == 0


def test_poison_batches_are_refused_and_the_partition_stays_readable(broker, topic_name):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=1)])
    admin.close()
    good = 0
    correlation_id = 1
    for codec, codec_id in CODECS.items():
        produce_good(broker.bootstrap, topic_name, codec, good)
        good += GOOD_PER_CODEC
        for what, batch in poison_batches(codec, codec_id).items():
            code = produce_raw(broker.bootstrap, topic_name, batch, correlation_id)
            correlation_id += 1
            assert code == CORRUPT_MESSAGE, f"{codec}: {what} answered {code}"
    produce_good(broker.bootstrap, topic_name, "none", good)
    good += GOOD_PER_CODEC

    # confluent-kafka reads every good record, at consecutive offsets, without an error.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic_name,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic_name])
    received = []
    deadline = time.time() + TIMEOUT_S
    while len(received) < good and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        assert message.error() is None, message.error()
        received.append((message.offset(), message.key()))
    consumer.close()
    assert [offset for offset, _ in received] == list(range(good))
    assert [key for _, key in received] == [b"good-%d" % i for i in range(good)]

    # kcat reads from the beginning to the end (-e) and sees the same records.
    output = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-t", topic_name, "-C", "-o", "beginning", "-e", "-f", "%o:%k\n"],
        capture_output=True, check=True, timeout=TIMEOUT_S).stdout
    assert output.splitlines() == [b"%d:good-%d" % (i, i) for i in range(good)]
