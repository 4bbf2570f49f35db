"""Cluster suite: real `sluice-broker` processes on 127.0.0.1, real faults (SIGKILL, SIGSTOP,
SIGTERM), real Kafka clients (confluent-kafka, i.e. librdkafka) — see test_replication.py.

`cluster` starts three brokers, each a metadata voter (`--voters`), on free ports with their
own data directories under pytest's tmp_path, and stops them at teardown. The binary comes from
SLUICE_BROKER_BIN (scripts/cluster-test.sh builds the release broker and sets it).

Every wait has a deadline; a broker's log is kept in its directory (`broker.log`) and printed
path by path when a test fails.
"""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from confluent_kafka.admin import AdminClient

READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


CLI_DEFAULT = os.path.join(os.path.dirname(__file__), "..", "..", "target", "debug", "sluice")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def wait_until(condition, timeout_s, what, interval_s=0.1):
    """Polls `condition` until it returns a truthy value (returned) or `timeout_s` passes."""
    deadline = time.time() + timeout_s
    last_error = None
    while time.time() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - a poll that fails is retried until the deadline
            last_error = error
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last error: {last_error})")


class BrokerProcess:
    def __init__(self, cluster, node_id, directory, ports):
        self.cluster = cluster
        self.node_id = node_id
        self.directory = directory
        self.data_dir = os.path.join(directory, "data")
        self.kafka_port, self.raft_port, self.admin_port = ports
        self.address = f"127.0.0.1:{self.kafka_port}"
        self.log_path = os.path.join(directory, "broker.log")
        self.process = None
        # Raft addresses of running members to join through (`--join`) in place of `--voters`.
        self.join = None
        os.makedirs(self.data_dir, exist_ok=True)

    @property
    def raft_address(self):
        return f"127.0.0.1:{self.raft_port}"

    def start(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                self.cluster.binary,
                "--node-id", str(self.node_id),
                "--data-dir", self.data_dir,
                "--listen", self.address,
                "--raft-listen", f"127.0.0.1:{self.raft_port}",
                "--admin-listen", f"127.0.0.1:{self.admin_port}",
                *(("--join", self.join) if self.join else ("--voters", self.cluster.voters)),
                "--offsets-topic-partitions", "6",
                "--group-initial-rebalance-delay-ms", "300",
                *self.cluster.extra_args,
                *self.cluster.broker_args.get(self.node_id, ()),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def is_ready(self):
        if self.process is None or self.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout_s=READY_TIMEOUT_S):
        wait_until(self.is_ready, timeout_s, f"broker {self.node_id} /ready (log {self.log_path})")

    def kill(self):
        """SIGKILL: no clean shutdown, no controlled shutdown."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)
        self.process = None

    def stop(self):
        """SIGTERM: controlled shutdown, then a clean close of every log. Returns the exit code."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=STOP_TIMEOUT_S)
        self.process = None
        return code

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None


class Cluster:
    def __init__(self, root, size=3, extra_args=(), voter_count=None, broker_args=None):
        """`size` brokers with ids 1..size; the first `voter_count` (default: all) are the
        metadata voters named by `--voters`, the others join as learners (non-voters).
        `extra_args` go to every broker, `broker_args` ({node id: [flags]}) to one (`--rack`)."""
        self.binary = os.environ["SLUICE_BROKER_BIN"]
        self.root = root
        self.extra_args = list(extra_args)
        self.broker_args = dict(broker_args or {})
        ports = free_ports(3 * size)
        self.brokers = {}
        voters = []
        for index in range(size):
            node_id = index + 1
            broker_ports = ports[3 * index: 3 * index + 3]
            if voter_count is None or node_id <= voter_count:
                voters.append(f"{node_id}@127.0.0.1:{broker_ports[1]}")
            self.brokers[node_id] = BrokerProcess(self, node_id, os.path.join(root, f"broker-{node_id}"), broker_ports)
        self.voters = ",".join(voters)

    def start(self):
        for broker in self.brokers.values():
            broker.start()
        for broker in self.brokers.values():
            broker.wait_ready()

    def add_broker(self, join):
        """Starts one more broker, the next id, joining the running cluster through `--join
        join` (Raft addresses of running members) instead of `--voters`; waits until it is
        ready (registered, its partitions open) and returns it."""
        node_id = max(self.brokers) + 1
        broker = BrokerProcess(self, node_id, os.path.join(self.root, f"broker-{node_id}"), free_ports(3))
        broker.join = join
        self.brokers[node_id] = broker
        broker.start()
        broker.wait_ready()
        return broker

    def stop(self):
        codes = {}
        for broker in self.brokers.values():
            if broker.process is not None and broker.process.poll() is None:
                broker.resume()
            codes[broker.node_id] = broker.stop()
        return codes

    def bootstrap(self, exclude=()):
        return ",".join(b.address for b in self.brokers.values() if b.node_id not in exclude)

    def running(self):
        return [b for b in self.brokers.values() if b.running]

    def admin(self):
        return AdminClient({"bootstrap.servers": self.bootstrap()})

    def partitions(self, topic):
        """partition index -> (leader, replicas, isrs) from a live broker's Metadata answer."""
        admin = AdminClient({"bootstrap.servers": ",".join(b.address for b in self.running())})
        metadata = admin.list_topics(topic, timeout=5)
        described = metadata.topics[topic]
        if described.error is not None:
            raise RuntimeError(str(described.error))
        return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in described.partitions.values()}

    def wait_isr_full(self, topic, timeout_s=60):
        """Waits until every partition has a leader and all its replicas in the ISR."""
        def full():
            partitions = self.partitions(topic)
            return partitions and all(
                leader >= 0 and sorted(isr) == sorted(replicas) for leader, replicas, isr in partitions.values())
        wait_until(full, timeout_s, f"a full ISR for every partition of {topic}", interval_s=0.2)

    def create_topic(self, topic, partitions, replication_factor=3, configs=None):
        from confluent_kafka.admin import NewTopic
        admin = self.admin()  # kept alive until the result is in: the handle's destruction cancels it
        futures = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor,
                      config=configs or {"min.insync.replicas": "2"})])
        futures[topic].result(timeout=30)
        self.wait_isr_full(topic)

    def sluice(self, *args, timeout_s=60):
        """Runs the `sluice` CLI against the running brokers; its stdout."""
        done = subprocess.run([os.environ.get("SLUICE_CLI_BIN", CLI_DEFAULT), "-b", self.bootstrap(
            exclude=[b.node_id for b in self.brokers.values() if not b.running]), *args],
            capture_output=True, text=True, timeout=timeout_s)
        assert done.returncode == 0, f"sluice {args}: exit {done.returncode}: {done.stdout}{done.stderr}"
        return done.stdout

    def quorum(self):
        """`sluice cluster quorum --json`: leader, term, members with their roles."""
        return json.loads(self.sluice("cluster", "quorum", "--json"))

    def logs(self):
        return "\n".join(f"broker {b.node_id}: {b.log_path}" for b in self.brokers.values())


@pytest.fixture
def cluster(tmp_path, request):
    """Three brokers, all metadata voters. A test marked `cluster_args(...)` passes extra flags."""
    marker = request.node.get_closest_marker("cluster_args")
    instance = Cluster(str(tmp_path), extra_args=marker.args if marker else ())
    instance.start()
    yield instance
    codes = instance.stop()
    print(instance.logs())
    assert all(code == 0 for code in codes.values()), f"unclean exits {codes}"


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster_args(*flags): extra sluice-broker flags for every broker")
