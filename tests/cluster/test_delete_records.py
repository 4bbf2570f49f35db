"""DeleteRecords on a replicated partition: confluent-kafka's AdminClient.delete_records moves
the leader's log start, every follower follows through its fetches, and a follower elected
after the leader is killed serves from the new start — the deleted records never come back.

Each replica's own log start is read with ListOffsets (earliest) under Kafka's debugging
replica id (-2), which any replica answers from its own log, sent here as a raw v1 request
(confluent-kafka has no call for it).
"""

import socket
import struct
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import wait_until

DEBUGGING_REPLICA_ID = -2
EARLIEST = -2
RECORDS = 100
DELETE_BEFORE = 40


def string(text):
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def recv_exactly(connection, size):
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed mid-response")
        data += chunk
    return data


def replica_log_start(address, topic, partition):
    """This broker's own log start for the partition (ListOffsets v1, replica id -2)."""
    body = (struct.pack(">i", DEBUGGING_REPLICA_ID) + struct.pack(">i", 1) + string(topic)
            + struct.pack(">i", 1) + struct.pack(">iq", partition, EARLIEST))
    header = struct.pack(">hhi", 2, 1, 7) + string("delete-records-test")
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        payload = header + body
        connection.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", recv_exactly(connection, 4))[0]
        response = recv_exactly(connection, size)
    # correlation id, topic count, topic name, partition count, then the one partition.
    position = 4 + 4
    (name_length,) = struct.unpack_from(">h", response, position)
    position += 2 + name_length + 4
    _, error_code, _, offset = struct.unpack_from(">ihqq", response, position)
    assert error_code == 0, f"ListOffsets from {address}: error {error_code}"
    return offset


def test_deleted_records_stay_deleted_on_every_replica_and_after_a_failover(cluster):
    # Goal: DeleteRecords is replicated: every replica's log start moves, and a new leader
    # after a SIGKILL of the old one still starts at the deleted offset. Method: 100 records
    # (acks=all) on a partition with 3 replicas, delete before 40, poll each broker's own log
    # start until it is 40, kill the leader, read from the beginning through the new one.
    topic = f"delete-records-{uuid.uuid4().hex[:10]}"
    cluster.create_topic(topic, 1)
    producer = Producer({"bootstrap.servers": cluster.bootstrap(), "acks": "all", "enable.idempotence": True})
    for i in range(RECORDS):
        producer.produce(topic, key=f"k{i % 7}", value=f"v{i}")
    assert producer.flush(30) == 0

    admin = cluster.admin()
    futures = admin.delete_records([TopicPartition(topic, 0, DELETE_BEFORE)])
    deleted = next(iter(futures.values())).result(timeout=30)
    assert deleted.low_watermark == DELETE_BEFORE, deleted.low_watermark

    leader, replicas, _ = cluster.partitions(topic)[0]
    assert len(replicas) == 3
    for node_id in replicas:
        address = cluster.brokers[node_id].address
        wait_until(lambda: replica_log_start(address, topic, 0) == DELETE_BEFORE, 30,
                   f"broker {node_id}'s log start to reach {DELETE_BEFORE}")

    cluster.brokers[leader].kill()
    wait_until(lambda: cluster.partitions(topic)[0][0] not in (-1, leader), 30, "a new leader")
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap(exclude=[leader]), "group.id": f"g-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, -2)])
    seen = []
    def read_all():
        message = consumer.poll(1)
        if message is not None and message.error() is None:
            seen.append((message.offset(), message.value().decode()))
        return len(seen) >= RECORDS - DELETE_BEFORE
    wait_until(read_all, 60, "the records after the deleted ones", interval_s=0)
    consumer.close()
    assert seen[0] == (DELETE_BEFORE, f"v{DELETE_BEFORE}"), seen[:3]
    assert [offset for offset, _ in seen] == list(range(DELETE_BEFORE, RECORDS))
    cluster.brokers[leader].start()
    cluster.brokers[leader].wait_ready()
