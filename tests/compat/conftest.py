"""Compatibility suite: real Kafka clients (kcat, confluent-kafka, kafka-python) against a real
Sluice broker process.

The broker is started by the `broker` fixture (once per session) from the binary named by
SLUICE_BROKER_BIN, on the ports SLUICE_KAFKA_PORT / SLUICE_RAFT_PORT / SLUICE_ADMIN_PORT with its
data in SLUICE_DATA_DIR; scripts/compat.sh sets them. Tests that need a restart call
`broker.restart()`: SIGTERM (the broker closes every log cleanly), then start again on the same
data directory and ports, and wait for /ready. Tests about a broker's first moments take
`fresh_broker`: a second broker of their own, on an empty data directory and free ports.

Every broker runs with a 500 ms group.initial.rebalance.delay.ms (Kafka's default is 3 s), so
the group tests do not wait 3 s for each new group.
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
STOP_TIMEOUT_S = 30
GROUP_INITIAL_REBALANCE_DELAY_MS = 500


class Broker:
    def __init__(self, data_dir=None, ports=None):
        """The session's broker from the environment, or one on `data_dir` and `ports` (kafka,
        raft, admin)."""
        self.binary = os.environ["SLUICE_BROKER_BIN"]
        self.data_dir = data_dir or os.environ["SLUICE_DATA_DIR"]
        self.kafka_port, self.raft_port, self.admin_port = ports or (
            int(os.environ["SLUICE_KAFKA_PORT"]), int(os.environ["SLUICE_RAFT_PORT"]),
            int(os.environ["SLUICE_ADMIN_PORT"]))
        self.bootstrap = f"127.0.0.1:{self.kafka_port}"
        self.log_path = os.path.join(self.data_dir, "..", "broker.log")
        self.process = None

    def start(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--data-dir", self.data_dir,
                "--listen", self.bootstrap,
                "--raft-listen", f"127.0.0.1:{self.raft_port}",
                "--admin-listen", f"127.0.0.1:{self.admin_port}",
                # New groups wait this long for more members before the first assignment
                # (Kafka's group.initial.rebalance.delay.ms, 3 s by default).
                "--group-initial-rebalance-delay-ms", str(GROUP_INITIAL_REBALANCE_DELAY_MS),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
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
        code = self.process.wait(timeout=STOP_TIMEOUT_S)
        self.process = None
        return code

    def restart(self):
        code = self.stop()
        assert code == 0, f"broker exited with {code} on SIGTERM"
        self.assert_logs_closed_cleanly()
        self.start()

    def assert_logs_closed_cleanly(self):
        """Every partition's checkpoint carries the clean-shutdown flag (byte 5, bit 0; see
        docs/design/log-format.md), so the next start skips recovery."""
        logs = os.path.join(self.data_dir, "logs")
        checked = 0
        for partition in os.listdir(logs):
            with open(os.path.join(logs, partition, "partition.checkpoint"), "rb") as checkpoint:
                flags = checkpoint.read(6)[5]
            assert flags & 1, f"{partition} was not closed cleanly"
            checked += 1
        assert checked > 0


@pytest.fixture(scope="session")
def broker():
    instance = Broker()
    instance.start()
    yield instance
    assert instance.stop() == 0


@pytest.fixture
def fresh_broker(tmp_path):
    """A second broker, new (empty data directory, free ports), for tests about a broker's
    first moments; stopped at teardown."""
    sockets = [socket.socket() for _ in range(3)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = tuple(s.getsockname()[1] for s in sockets)
    for s in sockets:
        s.close()
    os.makedirs(tmp_path / "fresh" / "data")
    instance = Broker(data_dir=str(tmp_path / "fresh" / "data"), ports=ports)
    instance.start()
    yield instance
    assert instance.stop() == 0


@pytest.fixture
def topic_name():
    return f"compat-{uuid.uuid4().hex[:12]}"
