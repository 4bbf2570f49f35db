"""Three real `sluice-broker` processes, each in its own network namespace (netns.py), and what
the nemesis and the checker ask of them: start, SIGKILL, SIGSTOP/SIGCONT, SIGTERM; /ready; who
leads a partition, the metadata group and a consumer group (from Metadata and
DescribeGroups, as any Kafka tool sees them).

Broker N listens on <subnet>.1N: Kafka 9092, Raft 9093, admin HTTP 9644; its data and
`broker.log` are under `<work>/broker-N/`. `ip netns exec` execs the broker, so the Popen pid
is the broker's own and signals reach it directly.
"""

import json
import os
import signal
import subprocess
import time
import urllib.request

from confluent_kafka.admin import AdminClient, NewTopic

KAFKA_PORT = 9092
RAFT_PORT = 9093
ADMIN_PORT = 9644
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
METADATA_TIMEOUT_S = 5

# The chaos cluster's settings, beyond the defaults of docs/design/replication.md: a follower
# that stops fetching leaves the ISR after 10 s instead of Kafka's 30 s, so that a two-minute
# run sees ISR shrinks and expansions, not only their start.
REPLICA_LAG_TIME_MAX_MS = 10_000
BROKER_ARGS = [
    "--default-replication-factor", "3",
    "--offsets-topic-replication-factor", "3",
    "--offsets-topic-partitions", "3",
    "--group-initial-rebalance-delay-ms", "300",
    "--replica-lag-time-max-ms", str(REPLICA_LAG_TIME_MAX_MS),
]


def wait_until(condition, timeout_s, what, interval_s=0.2):
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
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what} (last error: {last_error})")


class Broker:
    def __init__(self, cluster, node):
        self.cluster = cluster
        self.node = node
        self.address = cluster.network.address(node)
        self.directory = os.path.join(cluster.work, f"broker-{node}")
        self.data_dir = os.path.join(self.directory, "data")
        self.log_path = os.path.join(self.directory, "broker.log")
        self.process = None
        self.paused = False
        os.makedirs(self.data_dir, exist_ok=True)

    def start(self):
        with open(self.log_path, "ab") as log:
            log.write(f"===== chaos harness: start at {time.time():.3f}\n".encode())
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.cluster.network.namespace(self.node), self.cluster.binary,
                 "--node-id", str(self.node),
                 "--data-dir", self.data_dir,
                 "--listen", f"0.0.0.0:{KAFKA_PORT}",
                 "--advertise", f"{self.address}:{KAFKA_PORT}",
                 "--raft-listen", f"0.0.0.0:{RAFT_PORT}",
                 "--admin-listen", f"0.0.0.0:{ADMIN_PORT}",
                 "--voters", self.cluster.voters_flag,
                 *BROKER_ARGS],
                stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "RUST_LOG": os.environ.get("CHAOS_RUST_LOG", "info"), "NO_COLOR": "1"})
        # For scripts/chaos.sh's cleanup if this Python process dies without its own (a native
        # client library aborting takes the whole process down).
        with open(os.path.join(self.directory, "pid"), "w", encoding="utf-8") as pid_file:
            pid_file.write(f"{self.process.pid}\n")
        self.paused = False

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def is_ready(self):
        if not self.running or self.paused:
            return False
        try:
            with urllib.request.urlopen(f"http://{self.address}:{ADMIN_PORT}/ready", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def kill(self):
        """SIGKILL: no clean shutdown. The page cache survives, as with a process crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)
        self.process = None
        self.paused = False

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self):
        """SIGTERM (controlled shutdown, clean close); SIGKILL if it does not exit in time.
        Returns the exit code, or None if it had to be killed."""
        if self.process is None:
            return 0
        self.resume()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)
            code = None
        self.process = None
        return code


class Cluster:
    def __init__(self, network, work, binary):
        self.network = network
        self.work = work
        self.binary = binary
        self.voters_flag = ",".join(f"{n}@{network.address(n)}:{RAFT_PORT}" for n in range(1, network.size + 1))
        self.brokers = {n: Broker(self, n) for n in range(1, network.size + 1)}
        self.bootstrap = ",".join(f"{b.address}:{KAFKA_PORT}" for b in self.brokers.values())
        self._admin = None

    def start(self):
        for broker in self.brokers.values():
            broker.start()
        self.wait_ready()

    def wait_ready(self, timeout_s=READY_TIMEOUT_S):
        wait_until(lambda: all(b.is_ready() for b in self.brokers.values()), timeout_s,
                   "/ready on every broker")

    def admin(self):
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 2,
                                       "socket.timeout.ms": 5000, "reconnect.backoff.max.ms": 1000})
        return self._admin

    def partitions(self, topic):
        """partition -> (leader, replicas, isr) from a Metadata answer."""
        metadata = self.admin().list_topics(topic, timeout=METADATA_TIMEOUT_S)
        described = metadata.topics[topic]
        if described.error is not None:
            raise RuntimeError(str(described.error))
        return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in described.partitions.values()}

    def leader_of(self, topic, partition):
        leader = self.partitions(topic)[partition][0]
        return leader if leader in self.brokers else None

    def cli(self, *args, timeout_s=60):
        """Runs the `sluice` CLI ($SLUICE_CLI_BIN) against the cluster; (exit code, output)."""
        try:
            done = subprocess.run([os.environ["SLUICE_CLI_BIN"], "-b", self.bootstrap, *args],
                                  capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None, f"sluice {' '.join(args)}: no answer within {timeout_s} s"
        return done.returncode, done.stdout + done.stderr

    def cli_background(self, *args, log_path):
        """Starts the `sluice` CLI without waiting for it (its output goes to `log_path`)."""
        out = open(log_path, "ab")
        return subprocess.Popen([os.environ["SLUICE_CLI_BIN"], "-b", self.bootstrap, *args],
                                stdout=out, stderr=subprocess.STDOUT)

    def voters(self):
        """The metadata voters' ids from `sluice cluster quorum --json`, or None when the
        quorum cannot be described now."""
        code, output = self.cli("cluster", "quorum", "--json", timeout_s=20)
        if code != 0:
            return None
        quorum = json.loads(output.splitlines()[0])
        return sorted(m["id"] for m in quorum["members"] if m["role"] in ("leader", "voter"))

    def metadata_leader(self):
        """The metadata Raft leader: Metadata's controller id."""
        controller = self.admin().list_topics(timeout=METADATA_TIMEOUT_S).controller_id
        return controller if controller in self.brokers else None

    def coordinator_of(self, group):
        described = self.admin().describe_consumer_groups([group])[group].result(timeout=METADATA_TIMEOUT_S)
        node = described.coordinator.id if described.coordinator is not None else None
        return node if node in self.brokers else None

    def isr_full(self, topics):
        for topic in topics:
            for leader, replicas, isr in self.partitions(topic).values():
                if leader not in self.brokers or sorted(isr) != sorted(replicas):
                    return False
        return True

    def wait_recovered(self, topics, timeout_s):
        """Every broker /ready and every partition led with a full ISR."""
        wait_until(lambda: all(b.is_ready() for b in self.brokers.values()) and self.isr_full(topics),
                   timeout_s, "every broker ready and a full ISR everywhere", interval_s=0.5)

    def create_topic(self, topic, partitions):
        futures = self.admin().create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=3,
                      config={"min.insync.replicas": "2"})])
        futures[topic].result(timeout=30)
        wait_until(lambda: self.isr_full([topic]), 60, f"a full ISR on {topic}")

    def close_admin(self):
        """Destroys the admin client while the brokers still answer: librdkafka 2.16 was seen
        aborting the process (`rd_kafka_enq_once_del_source_return: Assertion eonce->refcnt > 0`)
        when the brokers went away under a live admin client."""
        self._admin = None

    def stop(self):
        self.close_admin()
        return {n: b.stop() for n, b in self.brokers.items()}

    def kill_all(self):
        for broker in self.brokers.values():
            if broker.running:
                broker.resume()
                broker.kill()
