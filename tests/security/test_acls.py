"""What each principal may do: ACLs enforced on real clients' requests.

Each test opens with its goal. The `acl_broker` runs with `--authorizer-enabled true`; the
operator (the PLAINTEXT listener, a super user) sets bindings with confluent-kafka's admin
client, Kafka's `kafka-acls.sh` or `sluice acl`, and checks afterwards that a refused request
changed nothing. alice and bob log in with SCRAM-SHA-512 over SASL_SSL unless a test says
otherwise; the mTLS principal is the certificate subject.
"""

import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

ALICE_CERT = "User:CN=alice,OU=clients,O=sluice-test"


def operator(broker):
    return AdminClient({"bootstrap.servers": broker.address("PLAINTEXT")})


def allow(principal, operation, name, resource=ResourceType.TOPIC, pattern=ResourcePatternType.LITERAL,
          permission=AclPermissionType.ALLOW):
    return AclBinding(resource, name, pattern, principal, "*", operation, permission)


def grant(broker, *bindings):
    admin = operator(broker)  # the handle must outlive its futures
    for future in admin.create_acls(list(bindings)).values():
        future.result(timeout=15)


def make_topic(broker, partitions=1):
    name = f"acl-{uuid.uuid4().hex[:10]}"
    admin = operator(broker)
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=15)
    return name


def end_offset(broker, topic, partition=0):
    consumer = Consumer({"bootstrap.servers": broker.address("PLAINTEXT"), "group.id": "operator-watermarks"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    finally:
        consumer.close()


def produce(config, topic, count=10):
    """Produces `count` records; returns the delivery error codes (None for delivered)."""
    results = []
    producer = Producer({**config, "message.timeout.ms": 10000})
    for i in range(count):
        producer.produce(topic, value=f"v{i}".encode(),
                         on_delivery=lambda err, _msg: results.append(None if err is None else err.code()))
    producer.flush(30)
    return results


def consume(config, topic, group, want, timeout=30):
    """Reads up to `want` records in `group`; returns (values, first error code or None)."""
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values, error = [], None
    deadline = time.time() + timeout
    while len(values) < want and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            error = message.error().code()
            break
        values.append(message.value().decode())
    consumer.close()
    return values, error


def test_allowed_principal_round_trips_and_others_are_refused_without_effect(acl_broker):
    # Goal: alice, allowed WRITE and READ on the topic and READ on her group, produces and
    # consumes; bob, allowed only DESCRIBE, gets TOPIC_AUTHORIZATION_FAILED for every record
    # (the Produce handler's own check, not only metadata) and the log does not grow.
    topic = make_topic(acl_broker)
    grant(acl_broker,
          allow("User:alice", AclOperation.WRITE, topic),
          allow("User:alice", AclOperation.READ, topic),
          allow("User:alice", AclOperation.READ, "alice-app", resource=ResourceType.GROUP),
          allow("User:bob", AclOperation.DESCRIBE, topic))
    assert produce(acl_broker.sasl_ssl("alice"), topic) == [None] * 10
    assert end_offset(acl_broker, topic) == 10
    values, error = consume(acl_broker.sasl_ssl("alice"), topic, "alice-app", 10)
    assert error is None and sorted(values) == sorted(f"v{i}" for i in range(10))

    refused = produce(acl_broker.sasl_ssl("bob"), topic)
    assert refused == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 10
    assert end_offset(acl_broker, topic) == 10, "a refused produce appended nothing"


def test_group_and_topic_read_are_checked_separately(acl_broker):
    # Goal: READ on the topic is not enough to consume in a group the principal may not use
    # (GROUP_AUTHORIZATION_FAILED), and a group is no use without READ on the topic.
    topic = make_topic(acl_broker)
    produce({"bootstrap.servers": acl_broker.address("PLAINTEXT")}, topic, 5)
    grant(acl_broker,
          allow("User:alice", AclOperation.READ, topic),
          allow("User:bob", AclOperation.READ, "bob-app", resource=ResourceType.GROUP))
    _, error = consume(acl_broker.sasl_ssl("alice"), topic, "not-alices", 5, timeout=20)
    assert error == KafkaError.GROUP_AUTHORIZATION_FAILED
    _, error = consume(acl_broker.sasl_ssl("bob"), topic, "bob-app", 5, timeout=20)
    assert error == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_metadata_hides_topics_the_principal_may_not_describe(acl_broker):
    # Goal: listing topics shows bob only what he may describe; alice sees hers (a prefixed
    # binding) and not bob's.
    prefix = f"alice-{uuid.uuid4().hex[:6]}-"
    hers = [f"{prefix}{i}" for i in range(2)]
    theirs = make_topic(acl_broker)
    admin = operator(acl_broker)
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in hers]).values():
        future.result(timeout=15)
    grant(acl_broker, allow("User:alice", AclOperation.DESCRIBE, prefix, pattern=ResourcePatternType.PREFIXED))
    alice_sees = set(AdminClient(acl_broker.sasl_ssl("alice")).list_topics(timeout=10).topics)
    assert set(hers) <= alice_sees and theirs not in alice_sees
    bob_sees = set(AdminClient(acl_broker.sasl_ssl("bob")).list_topics(timeout=10).topics)
    assert not (set(hers) | {theirs}) & bob_sees
    # Everything is there for the operator.
    assert set(hers) | {theirs} <= set(operator(acl_broker).list_topics(timeout=10).topics)


def test_admin_operations_need_their_acls_and_refusals_change_nothing(acl_broker):
    # Goal: without CREATE, DELETE or cluster ALTER, alice's CreateTopics, DeleteTopics and
    # CreateAcls are refused with the matching error and the cluster is unchanged; with CREATE
    # on a prefix she creates topics under it.
    topic = make_topic(acl_broker)
    grant(acl_broker, allow("User:alice", AclOperation.DESCRIBE, topic))
    alice = AdminClient(acl_broker.sasl_ssl("alice"))
    new = f"acl-new-{uuid.uuid4().hex[:8]}"
    with pytest.raises(KafkaException) as error:
        alice.create_topics([NewTopic(new, 1, 1)])[new].result(timeout=15)
    assert error.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    with pytest.raises(KafkaException) as error:
        alice.delete_topics([topic])[topic].result(timeout=15)
    assert error.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    binding = allow("User:alice", AclOperation.ALL, "*")
    with pytest.raises(KafkaException) as error:
        list(alice.create_acls([binding]).values())[0].result(timeout=15)
    assert error.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    topics = operator(acl_broker).list_topics(timeout=10).topics
    assert new not in topics and topic in topics
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                                  AclPermissionType.ANY)
    admin = operator(acl_broker)
    bindings = admin.describe_acls(everything).result(timeout=15)
    assert binding not in bindings

    prefix = f"alice-own-{uuid.uuid4().hex[:6]}-"
    grant(acl_broker, allow("User:alice", AclOperation.CREATE, prefix, pattern=ResourcePatternType.PREFIXED))
    alice.create_topics([NewTopic(prefix + "a", 1, 1)])[prefix + "a"].result(timeout=15)
    assert prefix + "a" in operator(acl_broker).list_topics(timeout=10).topics


def test_deny_wins_and_deleting_acls_takes_access_away(acl_broker):
    # Goal: a DENY beats an ALLOW on the same resource; describe_acls lists the bindings;
    # delete_acls removes exactly what its filter matches, after which the access is gone.
    topic = make_topic(acl_broker)
    grant(acl_broker,
          allow("User:*", AclOperation.WRITE, topic),
          allow("User:bob", AclOperation.WRITE, topic, permission=AclPermissionType.DENY))
    assert produce(acl_broker.sasl_ssl("alice"), topic, 3) == [None] * 3
    assert produce(acl_broker.sasl_ssl("bob"), topic, 3) == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3
    assert end_offset(acl_broker, topic) == 3
    on_topic = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, None, None,
                                AclOperation.ANY, AclPermissionType.ANY)
    admin = operator(acl_broker)
    listed = admin.describe_acls(on_topic).result(timeout=15)
    assert {(b.principal, b.permission_type) for b in listed} == {
        ("User:*", AclPermissionType.ALLOW), ("User:bob", AclPermissionType.DENY)}
    only_allow = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:*", None,
                                  AclOperation.ANY, AclPermissionType.ALLOW)
    deleted = list(admin.delete_acls([only_allow]).values())[0].result(timeout=15)
    assert [(b.principal, b.operation) for b in deleted] == [("User:*", AclOperation.WRITE)]
    assert produce(acl_broker.sasl_ssl("alice"), topic, 3) == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3
    assert end_offset(acl_broker, topic) == 3


def test_mtls_principal_is_the_certificate_subject(acl_broker):
    # Goal: on the SSL listener the principal is the client certificate's subject: alice's
    # certificate may read the topic (kcat), bob's may not.
    topic = make_topic(acl_broker)
    produce({"bootstrap.servers": acl_broker.address("PLAINTEXT")}, topic, 4)
    grant(acl_broker, allow(ALICE_CERT, AclOperation.READ, topic))
    flags = lambda config: sum(([("-X"), f"{k}={v}"] for k, v in config.items() if k != "bootstrap.servers"),
                               ["-b", config["bootstrap.servers"]])
    read = subprocess.run(["kcat", *flags(acl_broker.mtls("client-alice")), "-C", "-t", topic, "-o", "beginning",
                           "-e", "-p", "0"], capture_output=True, timeout=60)
    assert read.returncode == 0, read.stderr
    assert read.stdout.decode().split() == [f"v{i}" for i in range(4)]
    refused = subprocess.run(["kcat", *flags(acl_broker.mtls("client-bob")), "-C", "-t", topic, "-o", "beginning",
                              "-e", "-p", "0"], capture_output=True, timeout=60)
    assert refused.returncode != 0
    assert b"authorization failed" in refused.stderr.lower(), refused.stderr


def test_kafka_python_over_sasl_plaintext_is_refused_a_topic_it_may_not_write(acl_broker):
    # Goal: kafka-python (PLAIN on SASL_PLAINTEXT) gets TopicAuthorizationFailedError for a
    # topic bob may not write, and writes one he may.
    from kafka import KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError

    allowed, denied = make_topic(acl_broker), make_topic(acl_broker)
    grant(acl_broker, allow("User:bob", AclOperation.WRITE, allowed))
    producer = KafkaProducer(bootstrap_servers=acl_broker.address("SASL_PLAINTEXT"), security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="PLAIN", sasl_plain_username="bob", sasl_plain_password="bob-secret",
                             max_block_ms=10000)
    producer.send(allowed, b"ok").get(timeout=30)
    with pytest.raises(TopicAuthorizationFailedError):
        producer.send(denied, b"no").get(timeout=30)
    producer.close()
    assert end_offset(acl_broker, allowed) == 1 and end_offset(acl_broker, denied) == 0


def test_kafka_acls_tool_and_sluice_acl_manage_the_same_bindings(acl_broker):
    # Goal: Kafka's kafka-acls.sh (the Java Admin client) adds a binding that `sluice acl list`
    # shows and that takes effect; `sluice acl remove` removes it and kafka-acls.sh --list no
    # longer shows it.
    topic = make_topic(acl_broker)
    added = subprocess.run(
        ["bash", "scripts/kafka.sh", "tool", "kafka-acls", "--bootstrap-server", acl_broker.address("PLAINTEXT"),
         "--add", "--allow-principal", "User:bob", "--operation", "Write", "--topic", topic],
        capture_output=True, timeout=120)
    assert added.returncode == 0, added.stderr.decode()[-2000:]
    listed = acl_broker.sluice("acl", "list", "--topic", topic).stdout
    assert "User:bob" in listed and "WRITE" in listed.upper()
    assert produce(acl_broker.sasl_ssl("bob"), topic, 2) == [None] * 2
    acl_broker.sluice("acl", "remove", "--allow-principal", "User:bob", "--operation", "write", "--topic", topic)
    java_list = subprocess.run(
        ["bash", "scripts/kafka.sh", "tool", "kafka-acls", "--bootstrap-server", acl_broker.address("PLAINTEXT"),
         "--list", "--topic", topic], capture_output=True, timeout=120)
    assert java_list.returncode == 0, java_list.stderr.decode()[-2000:]
    assert b"User:bob" not in java_list.stdout
    assert produce(acl_broker.sasl_ssl("bob"), topic, 2) == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 2
