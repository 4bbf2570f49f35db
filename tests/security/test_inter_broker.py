"""Brokers among themselves: a 3-broker cluster whose inter-broker listener is SSL and whose
metadata Raft port is under mutual TLS (`--internal-tls`).

Each test opens with its goal. The brokers replicate over their SSL listeners, presenting the
broker certificate (`User:CN=sluice-broker,O=sluice-test`, the one super user); the default
PLAINTEXT listener's `User:ANONYMOUS` gets nothing, so if replication went over it, or without
the broker's certificate, no record would reach the followers and acks=all would fail.
"""

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType)

from conftest import SecureBroker

BROKER_PRINCIPAL = "User:CN=sluice-broker,O=sluice-test"
ALICE = "User:CN=alice,OU=clients,O=sluice-test"


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    brokers = [SecureBroker(str(tmp_path_factory.mktemp(f"ib{i}"))) for i in (1, 2, 3)]
    voters = ",".join(f"{i}@127.0.0.1:{b.raft_port}" for i, b in enumerate(brokers, start=1))
    for node_id, broker in enumerate(brokers, start=1):
        broker.extra_args = [
            "--node-id", str(node_id), "--voters", voters,
            "--inter-broker-listener-name", "SSL", "--internal-tls", "true",
            "--authorizer-enabled", "true", "--super-users", BROKER_PRINCIPAL,
            "--default-replication-factor", "3", "--min-insync-replicas", "2",
            "--offsets-topic-replication-factor", "3",
        ]
    for broker in brokers:
        broker.launch()
    for broker in brokers:
        broker.wait_ready()
    yield brokers
    for broker in brokers:
        broker.stop()


def test_replication_goes_over_the_ssl_listener_with_the_broker_certificate(tls_cluster):
    # Goal: with the authorizer on and only the broker certificate a super user, a topic with
    # three replicas gets all of alice's acks=all records onto every replica (the followers'
    # fetches are authorized as the broker), and alice reads them back in a group.
    first = tls_cluster[0]
    admin = AdminClient(first.mtls("broker"))
    topic = f"ib-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 3, 3)])[topic].result(timeout=30)
    bindings = [AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, ALICE, "*", op,
                           AclPermissionType.ALLOW) for op in (AclOperation.WRITE, AclOperation.READ)]
    bindings.append(AclBinding(ResourceType.GROUP, "ib-app", ResourcePatternType.LITERAL, ALICE, "*",
                               AclOperation.READ, AclPermissionType.ALLOW))
    for future in admin.create_acls(bindings).values():
        future.result(timeout=15)

    alice = first.mtls("client-alice")
    producer = Producer({**alice, "acks": "all", "enable.idempotence": True})
    failures = []
    for i in range(300):
        producer.produce(topic, key=f"k{i % 11}".encode(), value=f"v{i}".encode(),
                         on_delivery=lambda err, _msg: err and failures.append(err))
    assert producer.flush(60) == 0
    assert failures == []

    deadline = time.time() + 30
    while True:
        partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions.values()
        if all(len(p.isrs) == 3 for p in partitions) or time.time() > deadline:
            break
        time.sleep(0.5)
    assert all(sorted(p.isrs) == [1, 2, 3] for p in partitions), [(p.id, p.isrs) for p in partitions]

    consumer = Consumer({**alice, "group.id": "ib-app", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values = []
    deadline = time.time() + 60
    while len(values) < 300 and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            values.append(message.value().decode())
    consumer.close()
    assert sorted(values) == sorted(f"v{i}" for i in range(300))
    for broker in tls_cluster:
        assert "replica fetch refused" not in broker.log()


def test_the_plaintext_listener_is_no_back_door(tls_cluster):
    # Goal: with brokers talking over SSL, the default listener's User:ANONYMOUS is an ordinary
    # principal: it sees no topic and cannot create one.
    plain = AdminClient({"bootstrap.servers": tls_cluster[0].address("PLAINTEXT")})
    assert not [t for t in plain.list_topics(timeout=10).topics if not t.startswith("__")]
    name = f"ib-anon-{uuid.uuid4().hex[:6]}"
    with pytest.raises(Exception) as refused:
        plain.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=15)
    assert "authorization" in str(refused.value).lower()


def test_the_raft_port_refuses_a_plain_tcp_peer(tls_cluster):
    # Goal: with --internal-tls, a connection to the Raft port that does not do the TLS
    # handshake is closed without an answer and logged with its address; the cluster goes on.
    import socket
    broker = tls_cluster[0]
    with socket.create_connection(("127.0.0.1", broker.raft_port), timeout=10) as sock:
        sock.sendall(b"\x00\x00\x00\x10" + b"\x00" * 16)
        sock.settimeout(10)
        try:
            answer = sock.recv(64)
        except (ConnectionResetError, socket.timeout):
            answer = b""
    assert answer == b"" or answer[:1] == b"\x15", answer  # closed, or a TLS alert record
    deadline = time.time() + 10
    while "TLS handshake failed" not in broker.log() and time.time() < deadline:
        time.sleep(0.2)
    assert "TLS handshake failed" in broker.log()
    admin = AdminClient(broker.mtls("broker"))
    assert admin.list_topics(timeout=10).brokers.keys() == {1, 2, 3}
