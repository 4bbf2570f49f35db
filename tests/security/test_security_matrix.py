"""Who gets in: real clients on every listener kind, with good and bad credentials.

Each test opens with its goal. Authorization (ACLs) has its own file; this one is about
authentication and transport: SCRAM over TLS, mTLS, PLAIN, refused passwords and certificates,
clients that try to skip authentication, stalled handshakes, re-authentication.
"""

import socket
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

RECORDS = 200


def round_trip(config, topic):
    """Produces RECORDS keyed records with `config` and reads them back in a group."""
    producer = Producer({**config, "enable.idempotence": True})
    for i in range(RECORDS):
        producer.produce(topic, key=f"k{i % 7}".encode(), value=f"v{i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer({**config, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values = []
    deadline = time.time() + 60
    while len(values) < RECORDS and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        assert message.error() is None, message.error()
        values.append(message.value().decode())
    consumer.close()
    assert sorted(values) == sorted(f"v{i}" for i in range(RECORDS))


def refused(config):
    """The error a client with `config` gets when asking for metadata."""
    admin = AdminClient({**config, "socket.timeout.ms": 5000})
    with pytest.raises(KafkaException) as error:
        admin.list_topics(timeout=8)
    return error.value.args[0]


def kcat(*args, stdin=None):
    return subprocess.run(["kcat", *args], input=stdin, capture_output=True, timeout=60)


def kcat_flags(config):
    flags = ["-b", config["bootstrap.servers"]]
    for key, value in config.items():
        if key != "bootstrap.servers":
            flags += ["-X", f"{key}={value}"]
    return flags


def frame(api_key, version, correlation, body=b""):
    """A request of `api_key` with a v1 header (client id "raw") and `body`."""
    header = struct.pack(">hhih", api_key, version, correlation, 3) + b"raw"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def read_frame(sock):
    length = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
    return sock.recv(length, socket.MSG_WAITALL)


# --- who gets in --------------------------------------------------------------------------------

def test_confluent_scram_sha512_over_sasl_ssl_round_trips(secure_broker, topic_name):
    # Goal: librdkafka (confluent-kafka) authenticates with SCRAM-SHA-512 inside TLS, produces
    # idempotently and consumes in a group; the group coordinator is found on the same listener.
    round_trip(secure_broker.sasl_ssl(), topic_name)


def test_confluent_scram_sha256_and_plain_over_sasl_ssl(secure_broker, topic_name):
    # Goal: the other SCRAM mechanism and PLAIN (checked against the SCRAM credential) work too.
    round_trip(secure_broker.sasl_ssl(mechanism="SCRAM-SHA-256"), topic_name)
    admin = AdminClient(secure_broker.sasl_ssl(mechanism="PLAIN"))
    assert topic_name in admin.list_topics(timeout=10).topics


def test_confluent_mtls_round_trips(secure_broker, topic_name):
    # Goal: a client certificate signed by the CA is enough on the SSL listener; metadata names
    # the brokers by their SSL endpoint.
    round_trip(secure_broker.mtls(), topic_name)
    metadata = AdminClient(secure_broker.mtls()).list_topics(timeout=10)
    assert [f"{b.host}:{b.port}" for b in metadata.brokers.values()] == [secure_broker.address("SSL")]


def test_kcat_scram_over_sasl_ssl_and_mtls(secure_broker, topic_name):
    # Goal: kcat (Debian's librdkafka) produces over SASL_SSL with SCRAM-SHA-512 and reads back
    # over mTLS: the same records whatever the listener.
    lines = "".join(f"line-{i}\n" for i in range(50))
    produced = kcat(*kcat_flags(secure_broker.sasl_ssl()), "-P", "-t", topic_name, stdin=lines.encode())
    assert produced.returncode == 0, produced.stderr
    consumed = kcat(*kcat_flags(secure_broker.mtls("client-bob")), "-C", "-t", topic_name, "-o", "beginning", "-e")
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.decode() == lines


def test_kafka_python_plain_over_sasl_plaintext(secure_broker, topic_name):
    # Goal: kafka-python authenticates with PLAIN on the SASL_PLAINTEXT listener, produces and
    # consumes.
    from kafka import KafkaConsumer, KafkaProducer

    settings = dict(bootstrap_servers=secure_broker.address("SASL_PLAINTEXT"), security_protocol="SASL_PLAINTEXT",
                    sasl_mechanism="PLAIN", sasl_plain_username="bob", sasl_plain_password="bob-secret")
    producer = KafkaProducer(**settings)
    for i in range(RECORDS):
        producer.send(topic_name, key=b"k", value=f"v{i}".encode())
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(topic_name, auto_offset_reset="earliest", consumer_timeout_ms=10000, **settings)
    values = [message.value.decode() for message in consumer]
    consumer.close()
    assert values == [f"v{i}" for i in range(RECORDS)]


# --- who does not -------------------------------------------------------------------------------

@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_wrong_password_and_unknown_user_are_refused(secure_broker, mechanism):
    # Goal: a wrong password and an unknown user fail authentication alike, and the broker logs
    # the failure with the peer address.
    for user, password in [("alice", "not-her-password"), ("mallory", "anything")]:
        error = refused(secure_broker.sasl_ssl(user=user, password=password, mechanism=mechanism))
        assert error.code() in (-169, -195), error  # _AUTHENTICATION, _TRANSPORT
    assert "failed authentication" in secure_broker.log()
    assert "peer=127.0.0.1:" in secure_broker.log()


@pytest.mark.parametrize("client", ["untrusted", "expired"])
def test_untrusted_and_expired_certificates_are_refused(secure_broker, client):
    # Goal: mTLS refuses a self-signed certificate and one of the CA that has expired.
    error = refused(secure_broker.mtls(client))
    assert error.code() in (-195, -169, -181), error  # _TRANSPORT, _AUTHENTICATION, _SSL


def test_no_client_certificate_is_refused(secure_broker):
    # Goal: the SSL listener requires a certificate: TLS without one gets nothing.
    config = secure_broker.mtls()
    del config["ssl.certificate.location"], config["ssl.key.location"]
    refused(config)


def test_kcat_wrong_password_fails(secure_broker):
    # Goal: kcat reports the authentication failure and exits non-zero.
    config = secure_broker.sasl_ssl(password="wrong")
    listed = kcat(*kcat_flags(config), "-L", "-m", "15")
    assert listed.returncode != 0
    assert b"Authentication" in listed.stderr or b"authentication" in listed.stderr, listed.stderr


def test_unauthenticated_client_gets_only_api_versions_and_handshake(secure_broker):
    # Goal: on a SASL listener, ApiVersions and SaslHandshake are answered before
    # authentication; Metadata is not (the connection is closed); the handshake lists the
    # mechanisms.
    host, port = secure_broker.address("SASL_PLAINTEXT").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(frame(18, 0, 1))  # ApiVersions v0
        assert struct.unpack(">ih", read_frame(sock)[:6]) == (1, 0)
        mechanism = b"GSSAPI"
        sock.sendall(frame(17, 1, 2, struct.pack(">h", len(mechanism)) + mechanism))  # SaslHandshake v1
        answer = read_frame(sock)
        correlation, code = struct.unpack(">ih", answer[:6])
        assert (correlation, code) == (2, 33)  # UNSUPPORTED_SASL_MECHANISM
        assert b"SCRAM-SHA-512" in answer and b"PLAIN" in answer
        sock.sendall(frame(3, 1, 3, struct.pack(">i", -1)))  # Metadata v1, all topics
        assert sock.recv(1) == b"", "the broker closes the connection instead of answering"


def test_garbage_and_stalled_tls_handshakes(secure_broker):
    # Goal: garbage on a TLS listener is refused; 1,000 clients that connect and never finish
    # the handshake do not keep a legitimate client out, and are closed after the broker's
    # authentication deadline (10 s).
    host, port = secure_broker.address("SASL_SSL").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01\xff\xff" + b"\x42" * 4000)
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        assert len(received) < 64, "at most a TLS alert comes back"
    stalled = [socket.create_connection((host, int(port)), timeout=30) for _ in range(1000)]
    try:
        started = time.time()
        admin = AdminClient(secure_broker.sasl_ssl())
        assert admin.list_topics(timeout=15).brokers, "served beside 1,000 stalled handshakes"
        assert stalled[0].recv(1) == b"", "a stalled handshake is closed"
        assert time.time() - started < 25
    finally:
        for sock in stalled:
            sock.close()


def test_librdkafka_reauthenticates_before_the_session_expires(secure_broker, topic_name):
    # Goal: with connections.max.reauth.ms set, a long-lived librdkafka producer keeps working
    # past several session lifetimes (KIP-152 re-authentication on the same connection), and no
    # connection is closed for an expired session.
    producer = Producer(secure_broker.sasl_ssl())
    deadline = time.time() + 3 * 4.0 + 1
    sent = 0
    while time.time() < deadline:
        producer.produce(topic_name, value=b"x")
        sent += 1
        producer.poll(0.2)
    assert producer.flush(30) == 0
    consumer = Consumer({**secure_broker.sasl_ssl(), "group.id": f"g-{topic_name}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic_name])
    received = 0
    until = time.time() + 30
    while received < sent and time.time() < until:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            received += 1
    consumer.close()
    assert received == sent
    assert "after the SASL session expired" not in secure_broker.log()


def test_kafka_console_tools_over_sasl_ssl_and_mtls(secure_broker, topic_name, tmp_path):
    # Goal: Kafka's own tools (the Java client) authenticate with SCRAM-SHA-512 inside TLS
    # (PEM truststore) to produce, and read back over mTLS with a PEM key store.
    ca = secure_broker.cert("ca.crt")
    scram = tmp_path / "scram.properties"
    scram.write_text(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="alice" password="alice-secret";\n'
        f"ssl.truststore.type=PEM\nssl.truststore.location={ca}\n")
    key = open(secure_broker.cert("client-bob.key")).read().strip().replace("\n", "\\n")
    chain = open(secure_broker.cert("client-bob.crt")).read().strip().replace("\n", "\\n")
    mtls = tmp_path / "mtls.properties"
    mtls.write_text(
        f"security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={ca}\n"
        f"ssl.keystore.type=PEM\nssl.keystore.key={key}\nssl.keystore.certificate.chain={chain}\n")
    lines = "".join(f"java-{i}\n" for i in range(20))
    produced = subprocess.run(
        ["bash", "scripts/kafka.sh", "tool", "kafka-console-producer", "--bootstrap-server",
         secure_broker.address("SASL_SSL"), "--topic", topic_name, "--producer.config", str(scram)],
        input=lines.encode(), capture_output=True, timeout=120)
    assert produced.returncode == 0, produced.stderr.decode()[-2000:]
    consumed = subprocess.run(
        ["bash", "scripts/kafka.sh", "tool", "kafka-console-consumer", "--bootstrap-server",
         secure_broker.address("SSL"), "--topic", topic_name, "--from-beginning", "--max-messages", "20",
         "--consumer.config", str(mtls), "--timeout-ms", "30000"],
        capture_output=True, timeout=120)
    assert consumed.returncode == 0, consumed.stderr.decode()[-2000:]
    assert consumed.stdout.decode() == lines


def test_sluice_cli_over_sasl_ssl_and_mtls(secure_broker, topic_name):
    # Goal: our own CLI (sluice-client) speaks TLS: it produces over SASL_SSL with SCRAM-SHA-512,
    # checking the broker's certificate against the CA, and reads back over mTLS with a client
    # certificate; without the CA it cannot connect to a TLS listener.
    ca = secure_broker.cert("ca.crt")
    lines = "".join(f"cli-{i}\n" for i in range(30))
    created = subprocess.run(
        [secure_broker.cli, "--bootstrap", secure_broker.address("SASL_SSL"), "--tls-ca", ca,
         "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "alice", "topic", "create", topic_name],
        capture_output=True, text=True, timeout=60,
        env={"SLUICE_SASL_PASSWORD": "alice-secret", "PATH": "/usr/bin:/bin"})
    assert created.returncode == 0, created.stderr
    produced = subprocess.run(
        [secure_broker.cli, "--bootstrap", secure_broker.address("SASL_SSL"), "--tls-ca", ca,
         "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "alice", "produce", topic_name],
        input=lines, capture_output=True, text=True, timeout=60,
        env={"SLUICE_SASL_PASSWORD": "alice-secret", "PATH": "/usr/bin:/bin"})
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run(
        [secure_broker.cli, "--bootstrap", secure_broker.address("SSL"), "--tls-ca", ca,
         "--tls-certificate", secure_broker.cert("client-bob.crt"), "--tls-key", secure_broker.cert("client-bob.key"),
         "consume", topic_name, "--max-messages", "30"],
        capture_output=True, text=True, timeout=60)
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.split() == lines.split()
    plain = subprocess.run([secure_broker.cli, "--bootstrap", secure_broker.address("SSL"),
                            "--connect-timeout-ms", "2000", "topic", "list"],
                           capture_output=True, text=True, timeout=60)
    assert plain.returncode != 0
