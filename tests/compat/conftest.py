"""Compatibility suite: real Kafka clients (kcat, confluent-kafka, kafka-python) against a real
Sluice broker process.

The broker is started by the `broker` fixture (once per session) from the binary named by
SLUICE_BROKER_BIN, on the ports SLUICE_KAFKA_PORT / SLUICE_RAFT_PORT / SLUICE_ADMIN_PORT with its
data in SLUICE_DATA_DIR; scripts/compat.sh sets them. Tests that need a restart call
`broker.restart()`: SIGTERM (the broker closes every log cleanly), then start again on the same
data directory and ports, and wait for /ready.
"""

import os
import signal
import subprocess
import time
import urllib.request
import uuid

import pytest

READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


class Broker:
    def __init__(self):
        self.binary = os.environ["SLUICE_BROKER_BIN"]
        self.data_dir = os.environ["SLUICE_DATA_DIR"]
        self.kafka_port = int(os.environ["SLUICE_KAFKA_PORT"])
        self.raft_port = int(os.environ["SLUICE_RAFT_PORT"])
        self.admin_port = int(os.environ["SLUICE_ADMIN_PORT"])
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
def topic_name():
    return f"compat-{uuid.uuid4().hex[:12]}"
