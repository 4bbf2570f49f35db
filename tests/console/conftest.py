"""Console suite: one real `sluice-broker` process (SLUICE_BROKER_BIN) on free ports of
127.0.0.1, the `sluice` CLI (SLUICE_CLI_BIN) for the figures to compare against, and Debian's
headless Chromium driven through its chromedriver by selenium.

Every wait has a deadline; the broker's log is kept in pytest's tmp directory and its path
printed when a test fails.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
CHROMIUM = os.environ.get("SLUICE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SLUICE_CHROMEDRIVER", "/usr/bin/chromedriver")
GROUP = "billing"
HOSTILE_KEY = "<img src=x onerror=alert(1)>"


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def wait_until(condition, timeout_s, what, interval_s=0.2):
    """Polls `condition` until it returns a truthy value (returned) or `timeout_s` passes."""
    deadline = time.time() + timeout_s
    last_error = None
    while time.time() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - retried until the deadline
            last_error = error
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last error: {last_error})")


class Broker:
    """One broker process with its own data directory; `admin` is the console's base URL."""

    def __init__(self, directory):
        self.binary = os.environ["SLUICE_BROKER_BIN"]
        kafka, raft, admin = free_ports(3)
        self.bootstrap = f"127.0.0.1:{kafka}"
        self.admin = f"http://127.0.0.1:{admin}"
        self.log_path = os.path.join(directory, "broker.log")
        data_dir = os.path.join(directory, "data")
        os.makedirs(data_dir, exist_ok=True)
        self.process = subprocess.Popen(
            [
                self.binary,
                "--node-id", "1",
                "--data-dir", data_dir,
                "--listen", self.bootstrap,
                "--raft-listen", f"127.0.0.1:{raft}",
                "--admin-listen", f"127.0.0.1:{admin}",
                "--offsets-topic-partitions", "3",
                "--group-initial-rebalance-delay-ms", "300",
            ],
            stdout=open(self.log_path, "ab"),
            stderr=subprocess.STDOUT,
        )

    def ready(self):
        with urllib.request.urlopen(f"{self.admin}/ready", timeout=1) as answer:
            return answer.status == 200

    def get(self, path):
        with urllib.request.urlopen(f"{self.admin}{path}", timeout=10) as answer:
            return answer.read().decode()

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("broker"))
    instance = Broker(directory)
    try:
        wait_until(instance.ready, READY_TIMEOUT_S, f"the broker's /ready (log {instance.log_path})")
        yield instance
    finally:
        code = instance.stop()
        print(f"broker log: {instance.log_path}")
        assert code == 0, f"broker exited with {code}"


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through Debian's chromedriver; selenium is given both paths, so its
    Selenium Manager never downloads a driver or a browser."""
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager reach the network
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(path), f"{path} missing: run scripts/install-test-deps.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def workload(broker):
    """Topics `orders` (3 partitions) and `events` (2), 60 and 10 records, and group `billing`
    whose one member consumed the first 30 of `orders`, committed them and paused."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic("orders", 3, 1), NewTopic("events", 2, 1)])
    for future in futures.values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})

    def produce(topic, count, start=0, partitions=3):
        for i in range(start, start + count):
            producer.produce(topic, key=f"k{i}", value=json.dumps({"n": i, "note": "<b>bold?</b>"}),
                             headers=[("trace", b"<script>x</script>")], partition=i % partitions)
        producer.flush(30)

    produce("orders", 30)
    produce("events", 10, partitions=2)
    producer.produce("events", key=HOSTILE_KEY, value=b"\x00\x01binary\xff", partition=0)
    producer.flush(30)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": GROUP, "client.id": "console-test",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["orders"])
    consumed = 0
    deadline = time.time() + 60
    while consumed < 30 and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            consumed += 1
    assert consumed == 30, f"consumed {consumed} of 30"
    consumer.commit(asynchronous=False)
    consumer.pause(consumer.assignment())
    produce("orders", 30, start=30)  # the group now lags by these 30
    # One produce the broker refuses (only the coordinator writes __consumer_offsets), so the
    # refused-produce counter has a series.
    refused = []
    producer.produce("__consumer_offsets", value=b"x", partition=0, on_delivery=lambda error, _: refused.append(error))
    producer.flush(30)
    assert refused and refused[0] is not None, refused
    yield consumer
    consumer.close()
