"""Security matrix: real clients (confluent-kafka / librdkafka, kcat, kafka-python) against a
real Sluice broker with every kind of listener.

scripts/security-test.sh makes the certificates (scripts/make-certs.sh) and sets
SLUICE_BROKER_BIN, SLUICE_CLI_BIN and SLUICE_CERTS. The `secure_broker` fixture (one per
session) starts the broker with:

- PLAINTEXT (the default listener, `--listen`): the operator's, where the suite creates users;
- SASL_SSL: SCRAM-SHA-256/512 and PLAIN inside TLS;
- SASL_PLAINTEXT: the same without TLS;
- SSL: TLS with client certificates required (mTLS; the principal is the certificate subject);

and `--connections-max-reauth-ms` so librdkafka re-authenticates during the long tests.
"""

import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid

import pytest

READY_TIMEOUT_S = 60
REAUTH_MS = 4000
USERS = {"alice": "alice-secret", "bob": "bob-secret"}


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class SecureBroker:
    def __init__(self, tmp_dir, extra_args=()):
        self.binary = os.environ["SLUICE_BROKER_BIN"]
        self.cli = os.environ["SLUICE_CLI_BIN"]
        self.certs = os.environ["SLUICE_CERTS"]
        self.data_dir = os.path.join(tmp_dir, "data")
        self.log_path = os.path.join(tmp_dir, "broker.log")
        (self.plain_port, self.raft_port, self.admin_port, self.sasl_ssl_port, self.sasl_plain_port,
         self.ssl_port) = free_ports(6)
        self.extra_args = list(extra_args)
        self.process = None

    def address(self, listener):
        port = {"PLAINTEXT": self.plain_port, "SASL_SSL": self.sasl_ssl_port,
                "SASL_PLAINTEXT": self.sasl_plain_port, "SSL": self.ssl_port}[listener]
        return f"127.0.0.1:{port}"

    def cert(self, name):
        return os.path.join(self.certs, name)

    def start(self):
        self.launch()
        self.wait_ready()

    def launch(self):
        """Starts the process without waiting (a cluster's brokers are ready only together)."""
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--data-dir", self.data_dir,
                "--listen", self.address("PLAINTEXT"),
                "--raft-listen", f"127.0.0.1:{self.raft_port}",
                "--admin-listen", f"127.0.0.1:{self.admin_port}",
                "--listeners",
                f"SASL_SSL://{self.address('SASL_SSL')},SASL_PLAINTEXT://{self.address('SASL_PLAINTEXT')},"
                f"SSL://{self.address('SSL')}",
                "--ssl-certificate", self.cert("broker.crt"),
                "--ssl-key", self.cert("broker.key"),
                "--ssl-ca", self.cert("ca.crt"),
                "--ssl-client-auth", "required",
                "--connections-max-reauth-ms", str(REAUTH_MS),
                "--group-initial-rebalance-delay-ms", "200",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self):
        deadline = time.time() + READY_TIMEOUT_S
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"broker not ready within {READY_TIMEOUT_S} s; see {self.log_path}")

    def stop(self):
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    def sluice(self, *args, stdin=None):
        return subprocess.run([self.cli, "--bootstrap", self.address("PLAINTEXT"), *args], input=stdin,
                              capture_output=True, check=True, timeout=60, text=True)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return log.read()

    # Client settings -------------------------------------------------------------------------

    def sasl_ssl(self, user="alice", password=None, mechanism="SCRAM-SHA-512"):
        return {
            "bootstrap.servers": self.address("SASL_SSL"),
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": mechanism,
            "sasl.username": user,
            "sasl.password": USERS.get(user, "") if password is None else password,
            "ssl.ca.location": self.cert("ca.crt"),
        }

    def mtls(self, client="client-alice"):
        return {
            "bootstrap.servers": self.address("SSL"),
            "security.protocol": "SSL",
            "ssl.ca.location": self.cert("ca.crt"),
            "ssl.certificate.location": self.cert(f"{client}.crt"),
            "ssl.key.location": self.cert(f"{client}.key"),
        }


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory):
    instance = SecureBroker(str(tmp_path_factory.mktemp("secure")))
    instance.start()
    for user, password in USERS.items():
        instance.sluice("user", "create", user, "--password", password)
    yield instance
    assert instance.stop() == 0


@pytest.fixture
def topic_name():
    return f"sec-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def acl_broker(tmp_path_factory):
    """A second broker with the authorizer on: the PLAINTEXT listener's `User:ANONYMOUS` is the
    super user (the operator's and the brokers' own listener, as docs/security.md configures
    it); clients on the SASL and SSL listeners get what the ACLs allow and nothing else."""
    instance = SecureBroker(str(tmp_path_factory.mktemp("acl")),
                            extra_args=["--authorizer-enabled", "true", "--super-users", "User:ANONYMOUS"])
    instance.start()
    for user, password in USERS.items():
        instance.sluice("user", "create", user, "--password", password)
    yield instance
    assert instance.stop() == 0
