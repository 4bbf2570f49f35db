"""Consumer groups with real clients: the coordinator (`__consumer_offsets`, FindCoordinator,
Join/Sync/Heartbeat/Leave, OffsetCommit/Fetch, List/Describe/DeleteGroups) as confluent-kafka
(librdkafka) and kafka-python use it.

The group members of the confluent-kafka tests are separate OS processes
(tests/compat/group_worker.py), so that one can be SIGKILLed. Each processes a record by
appending a JSON line to its journal (flushed), and after each batch commits the batch's
offsets synchronously (enable.auto.commit=false, explicit offsets): at-least-once, since
nothing is committed before it is processed. The journal also records every assignment, revocation and
acknowledged commit, with a system-wide monotonic timestamp, so a test can reconstruct who
processed what, when, under which assignment.

- test_group_survives_a_killed_member[range | cooperative-sticky]: a 6-partition topic, 100,000
  keyed records (1,000 keys, value `key:seq`) produced at ~10,000/s while three members consume;
  once ~30% are committed one member is SIGKILLed. Proves: the coordinator expires the dead
  member after session.timeout.ms (6 s; not sooner, not much later) and rebalances the others, which take over its
  partitions and finish; every produced record was processed at least once, each exactly as
  produced; within each member's journal, between two rebalance events, each partition's
  offsets are consecutive and each key's sequence numbers increase by one; over the whole run
  the first processing of each key's records is in sequence order (per-key order survives the
  kill); the committed offsets, polled every 200 ms by the test (OffsetFetch),
  never move backwards; at the end they equal the log end offsets. With `range` (eager) the
  survivors' partitions are revoked in the rebalance; with `cooperative-sticky` (incremental)
  they are not: the survivors are only given the dead member's partitions. Then a new set of
  members in the same group (auto.offset.reset=earliest, so an offset the coordinator forgot
  would replay the topic) receives exactly the 1,000 records produced after the restart.
- test_commits_survive_a_broker_restart: two members consume 40,000 records with a simulated
  processing time; mid-way the broker is restarted (SIGTERM, clean logs, start). The members
  are frozen (SIGSTOP) between the broker's exit and its return, so every commit they
  journaled as acknowledged is known; the committed offsets after the restart are at least
  those, and at least what OffsetFetch reported before the restart. Then the members carry on
  to the end: all records processed, commits never backwards, final commits = log end.
- test_admin_client_lists_describes_alters_and_deletes_groups: confluent-kafka's AdminClient:
  ListGroups (with state filters) shows the group Stable while two members consume and Empty
  after they leave; DescribeGroups shows both members with disjoint assignments covering the
  topic, the assignor and the coordinator; DeleteGroups fails with NON_EMPTY_GROUP while
  members are in, altering offsets fails with UNKNOWN_MEMBER_ID; on the Empty group
  OffsetCommit (alter) and OffsetFetch (list) round-trip offsets and metadata, DeleteGroups
  succeeds and takes the offsets with it, and a second delete gets GROUP_ID_NOT_FOUND.
- test_a_new_coordinator_never_disowns_itself: on a new broker (its own data directory) the
  first FindCoordinator creates `__consumer_offsets` and names this broker; until the group's
  partition is loaded the broker must answer the group's requests retriably, as Kafka does
  (COORDINATOR_LOAD_IN_PROGRESS, which the client retries by itself, or
  COORDINATOR_NOT_AVAILABLE from FindCoordinator), never NOT_COORDINATOR: it is the
  coordinator it just named. Witness: a Consumer's committed() (OffsetFetch), which surfaces
  NOT_COORDINATOR to the application.
- test_offset_fetch_on_a_new_broker_does_not_crash_the_admin_client: the same moment, as
  librdkafka's AdminClient meets it: list_consumer_group_offsets, in a child process, must
  answer (no commits: offset -1001). librdkafka 2.16 handles NOT_COORDINATOR in an OffsetFetch
  answer by asking the client's consumer group to look the coordinator up again; an
  AdminClient has none, and the process dies of SIGSEGV.
- test_kafka_python_group_commits_and_resumes: kafka-python's KafkaConsumer with a group_id
  consumes a 3-partition topic, commits, closes; its KafkaAdminClient sees the group in
  ListGroups and DescribeGroups (Stable, one member, its assignment; then Empty) and the
  commits in OffsetFetch (kafka-python 3's list_groups / describe_groups /
  list_group_offsets); a second KafkaConsumer in the group reads only the records produced since.
- test_kafka_python_commit_with_stale_generation_is_refused: an OffsetCommit carrying the
  previous generation id gets ILLEGAL_GENERATION, one with an unknown member id gets
  UNKNOWN_MEMBER_ID, and neither changes the committed offset. (kafka-python is made to send
  them by editing its consumer's generation: no client sends this on its own.)
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from confluent_kafka import (ConsumerGroupState, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka import ConsumerGroupTopicPartitions

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "group_worker.py")
KEYS = 1_000
SESSION_TIMEOUT_MS = 6_000  # the broker's group.min.session.timeout.ms
WAIT_S = 90
PROCESS_EXIT_S = 30


# --- waiting -----------------------------------------------------------------------------------

def wait_for(condition, what, timeout=WAIT_S):
    """Polls `condition` every 100 ms until it is true; fails with `what()` (or `what`) after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"not within {timeout} s: {what() if callable(what) else what}")


# --- group members (separate processes) --------------------------------------------------------

class Worker:
    """One group_worker.py process and its journal, read incrementally."""

    def __init__(self, broker, group, topic, assignor, journal, extra):
        self.journal = str(journal)
        self.log = open(self.journal + ".log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, WORKER, "--bootstrap", broker.bootstrap, "--group", group, "--topic", topic,
             "--assignor", assignor, "--journal", self.journal,
             "--session-timeout-ms", str(SESSION_TIMEOUT_MS), *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.events = []
        self.assigned = set()
        self.stopped = False  # by the test: exiting is expected
        self._read_bytes = 0
        self._partial = b""

    def refresh(self):
        """Reads the journal's new complete lines (a SIGKILL may leave a partial last one);
        fails the test if the worker died on its own."""
        if not self.stopped and self.process.poll() is not None:
            self.log.flush()
            with open(self.journal + ".log", encoding="utf-8", errors="replace") as log:
                pytest.fail(f"worker {self.journal} exited with {self.process.returncode}:\n{log.read()[-3000:]}")
        try:
            with open(self.journal, "rb") as journal:
                journal.seek(self._read_bytes)
                data = journal.read()
        except FileNotFoundError:
            return self
        self._read_bytes += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            event = json.loads(line)
            self.events.append(event)
            if event["k"] == "assign":
                if event["protocol"] == "COOPERATIVE":
                    self.assigned |= set(event["parts"])
                else:
                    self.assigned = set(event["parts"])
            elif event["k"] in ("revoke", "lost"):
                self.assigned -= set(event["parts"])
        return self

    def assignment(self):
        return set(self.refresh().assigned)

    def records(self):
        return [e for e in self.refresh().events if e["k"] == "rec"]

    def acknowledged_commits(self):
        """{partition: highest offset whose commit the broker acknowledged}."""
        acked = {}
        for event in self.refresh().events:
            if event["k"] == "commit":
                for p, offset in event["offsets"].items():
                    acked[int(p)] = max(acked.get(int(p), -1), offset)
        return acked

    def signal(self, number):
        self.process.send_signal(number)

    def terminate(self):
        """SIGTERM: the worker finishes its batch, closes (leaves the group) and exits."""
        self.stopped = True
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=PROCESS_EXIT_S)
        assert code == 0, f"worker exited with {code}; see {self.journal}.log"
        assert self.refresh().events[-1]["k"] == "closed"

    def kill(self):
        self.stopped = True
        self.process.kill()
        self.process.wait(timeout=PROCESS_EXIT_S)

    def cleanup(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=PROCESS_EXIT_S)
        self.log.close()


@pytest.fixture
def spawn(broker, tmp_path):
    """spawn(group, topic, assignor, *extra_args) starts a worker; all are killed at teardown."""
    started = []

    def start(group, topic, assignor, *extra):
        worker = Worker(broker, group, topic, assignor, tmp_path / f"worker-{len(started)}.jsonl", extra)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.cleanup()


def wait_until_assigned(workers, partitions):
    """Every worker holds partitions, and together exactly `partitions`, disjointly."""
    def balanced():
        held = [w.assignment() for w in workers]
        return all(held) and sum(map(len, held)) == partitions and set().union(*held) == set(range(partitions))
    wait_for(balanced, lambda: f"assignments {[sorted(w.assignment()) for w in workers]} of {partitions} partitions")


# --- the cluster seen by admin clients ---------------------------------------------------------

def admin_client(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def create_topic(broker, topic, partitions):
    admin = admin_client(broker)  # referenced until the answer: a destroyed client fails its futures
    admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=30)[topic].result(timeout=30)


def committed_offsets(admin, group, topic, partitions):
    """{partition: committed offset} of the partitions with a commit, by AdminClient
    (OffsetFetch)."""
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    answer = admin.list_consumer_group_offsets([request], request_timeout=10)[group].result(timeout=15)
    assert all(tp.error is None for tp in answer.topic_partitions), answer.topic_partitions
    return {tp.partition: tp.offset for tp in answer.topic_partitions if tp.offset >= 0}


class OffsetReader:
    """Reads a group's committed offsets (OffsetFetch) with a Consumer of that group id that
    never subscribes, so never joins. Used rather than AdminClient wherever the coordinator may
    answer NOT_COORDINATOR (while `__consumer_offsets` is new, or around a restart): on that
    answer librdkafka's AdminClient dereferences the consumer group it does not have and the
    process dies (see test_offset_fetch_on_a_new_broker_does_not_crash_the_admin_client); a
    Consumer raises instead, or retries."""

    def __init__(self, broker, group, topic, partitions):
        self.consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                                  "enable.auto.commit": False})
        self.wanted = [TopicPartition(topic, p) for p in range(partitions)]

    def read(self):
        """{partition: committed offset}; raises KafkaException if the broker cannot answer."""
        answer = self.consumer.committed(self.wanted, timeout=10)
        assert all(tp.error is None for tp in answer), answer
        return {tp.partition: tp.offset for tp in answer if tp.offset >= 0}

    def close(self):
        self.consumer.close()


def log_end_offsets(broker, topic, partitions):
    client = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "compat-watermarks"})
    ends = {p: client.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    client.close()
    return ends


class CommitWatcher(threading.Thread):
    """Polls the group's committed offsets every 200 ms and records any that moved backwards
    (or disappeared). Failed polls (the broker restarting) are counted, not recorded."""

    def __init__(self, broker, group, topic, partitions):
        super().__init__(daemon=True)
        self.reader = OffsetReader(broker, group, topic, partitions)
        self.latest = {}
        self.regressions = []
        self.samples = 0
        self.failed_polls = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.start()

    def run(self):
        while not self.stopping.wait(0.2):
            try:
                now = self.reader.read()
            except (KafkaException, AssertionError):
                self.failed_polls += 1
                continue
            with self.lock:
                for p, previous in self.latest.items():
                    if now.get(p, -1) < previous:
                        self.regressions.append((p, previous, now.get(p)))
                for p, offset in now.items():
                    self.latest[p] = max(offset, self.latest.get(p, -1))
                self.samples += 1

    def snapshot(self):
        with self.lock:
            return dict(self.latest)

    def total(self):
        return sum(self.snapshot().values())

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)
        self.reader.close()
        assert self.regressions == [], \
            f"committed offsets moved backwards (partition, before, after): {self.regressions}"


@pytest.fixture
def watch(broker):
    """watch(group, topic, partitions) starts a CommitWatcher; all are stopped at teardown."""
    started = []

    def start(group, topic, partitions):
        started.append(CommitWatcher(broker, group, topic, partitions))
        return started[-1]

    yield start
    for watcher in started:
        if watcher.is_alive():
            watcher.stopping.set()
            watcher.join(timeout=30)
            watcher.reader.close()


# --- producing ---------------------------------------------------------------------------------

def key_of(i):
    return f"key-{i % KEYS:04d}"


def record_value(i):
    """Record i of the run: key i % KEYS, sequence number i // KEYS within its key."""
    return f"{key_of(i)}:{i // KEYS}"


def sequence_of(value):
    return int(value.rsplit(":", 1)[1])


class Producing(threading.Thread):
    """Produces records first..first+count-1 (idempotent, acks=all), at `rate` records/s if
    given; `delivered` maps (partition, offset) to (key, value) as the broker acknowledged."""

    CHUNK = 1_000

    def __init__(self, broker, topic, first, count, rate=None):
        super().__init__(daemon=True)
        self.broker, self.topic, self.first, self.count, self.rate = broker, topic, first, count, rate
        self.delivered = {}
        self.errors = []
        self.unflushed = None
        self.start()

    def run(self):
        producer = Producer({"bootstrap.servers": self.broker.bootstrap, "enable.idempotence": True,
                             "acks": "all", "linger.ms": 5})

        def report(error, message):
            if error is not None:
                self.errors.append(error)
            else:
                self.delivered[(message.partition(), message.offset())] = (message.key().decode(),
                                                                           message.value().decode())

        began = time.monotonic()
        for chunk_start in range(self.first, self.first + self.count, self.CHUNK):
            for i in range(chunk_start, min(chunk_start + self.CHUNK, self.first + self.count)):
                producer.produce(self.topic, key=key_of(i).encode(), value=record_value(i).encode(),
                                 on_delivery=report)
            producer.poll(0)
            if self.rate:
                ahead = began + (chunk_start - self.first + self.CHUNK) / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        self.unflushed = producer.flush(60)

    def finish(self):
        self.join(timeout=120)
        assert not self.is_alive(), "the producer did not finish"
        assert self.unflushed == 0 and self.errors == [], (self.unflushed, self.errors[:5])
        assert len(self.delivered) == self.count
        return self.delivered


def ends_of(delivered, partitions):
    return {p: 1 + max((o for (q, o) in delivered if q == p), default=-1) for p in range(partitions)}


# --- what the journals prove -------------------------------------------------------------------

def check_journals(workers, delivered):
    """Asserts at-least-once processing and per-key order (see the module docstring); returns
    the processed records as (t, worker index, line, partition, offset, key, sequence)."""
    partition_of_key = {}
    for (p, _), (key, _) in delivered.items():
        assert partition_of_key.setdefault(key, p) == p, f"{key} in two partitions"
    processed = []
    for w, worker in enumerate(worker.refresh() for worker in workers):
        last_offset = {}  # partition -> offset last processed since the partition's last rebalance event
        last_sequence = {}  # partition -> {key: sequence last processed since then}
        for n, event in enumerate(worker.events):
            if event["k"] in ("assign", "revoke", "lost"):
                for p in event["parts"]:
                    last_offset.pop(p, None)
                    last_sequence.pop(p, None)
                continue
            if event["k"] != "rec":
                continue
            p, o, key, value = event["p"], event["o"], event["key"], event["v"]
            assert delivered.get((p, o)) == (key, value), \
                f"{worker.journal}: partition {p} offset {o} read as {(key, value)}, " \
                f"produced as {delivered.get((p, o))}"
            if p in last_offset:
                assert o == last_offset[p] + 1, \
                    f"{worker.journal}: partition {p} offset {o} follows {last_offset[p]} with no rebalance between"
            last_offset[p] = o
            sequence = sequence_of(value)
            previous = last_sequence.setdefault(p, {}).get(key)
            if previous is not None:
                assert sequence == previous + 1, f"{worker.journal}: {key} sequence {sequence} after {previous}"
            last_sequence[p][key] = sequence
            processed.append((event["t"], w, n, p, o, key, sequence))

    missing = set(delivered) - {(p, o) for (_, _, _, p, o, _, _) in processed}
    assert not missing, f"{len(missing)} produced records never processed, e.g. {sorted(missing)[:5]}"

    processed.sort()
    first_order = {}
    seen = set()
    for _, _, _, _, _, key, sequence in processed:
        if (key, sequence) not in seen:
            seen.add((key, sequence))
            first_order.setdefault(key, []).append(sequence)
    for key, sequences in first_order.items():
        assert sequences == sorted(sequences), f"{key} first processed out of order: {sequences[:20]}..."
    return processed


def events_between(worker, start, end, kinds):
    return [e for e in worker.refresh().events if e["k"] in kinds and start < e["t"] < end]


# --- the tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("assignor", ["range", "cooperative-sticky"])
def test_group_survives_a_killed_member(broker, topic_name, spawn, watch, assignor):
    partitions, total, extra = 6, 100_000, 1_000
    group = f"{topic_name}-group"
    create_topic(broker, topic_name, partitions)
    watcher = watch(group, topic_name, partitions)
    workers = [spawn(group, topic_name, assignor) for _ in range(3)]
    wait_until_assigned(workers, partitions)

    producing = Producing(broker, topic_name, 0, total, rate=10_000)
    wait_for(lambda: watcher.total() >= 0.3 * total, lambda: f"30% committed; have {watcher.snapshot()}")
    victim, survivors = workers[0], workers[1:]
    victim_partitions = victim.assignment()
    committed_at_kill = watcher.total()
    killed_at = time.monotonic_ns()
    victim.kill()
    assert victim_partitions, "the killed member held partitions"
    assert committed_at_kill < total, "the member was killed mid-run"
    assert len(victim.records()) > 0

    delivered = producing.finish()
    ends = ends_of(delivered, partitions)
    assert sum(ends.values()) == total
    assert log_end_offsets(broker, topic_name, partitions) == ends
    wait_for(lambda: watcher.snapshot() == ends,
             lambda: f"commits {watcher.snapshot()} reach the log ends {ends}; "
                     f"survivors hold {[sorted(w.assignment()) for w in survivors]}")
    held = [w.assignment() for w in survivors]
    assert set().union(*held) == set(range(partitions)) and sum(map(len, held)) == partitions
    finished_at = time.monotonic_ns()  # closing revokes everything: rebalances end here
    for worker in survivors:
        worker.terminate()

    processed = check_journals(workers, delivered)
    taken_over = {p for (t, w, _, p, _, _, _) in processed if t > killed_at and w != 0}
    assert victim_partitions <= taken_over, "the survivors processed the killed member's partitions"
    # The dead member is expired by its session timeout (its last heartbeat was at most
    # heartbeat.interval.ms = 0.5 s before the kill), not by the closed connection.
    rebalanced_at = min(e["t"] for w in survivors
                        for e in events_between(w, killed_at, finished_at, ("assign", "revoke")))
    assert SESSION_TIMEOUT_MS - 1_000 <= (rebalanced_at - killed_at) / 1e6 <= SESSION_TIMEOUT_MS + 10_000
    if assignor == "range":
        # Eager: the rebalance revokes everything and assigns it again.
        for worker in survivors:
            assert events_between(worker, killed_at, finished_at, ("revoke",)), \
                f"{worker.journal}: no revocation after the kill"
    else:
        # Incremental: the survivors keep what they had and are only given the dead member's.
        for worker in survivors:
            assert events_between(worker, killed_at, finished_at, ("revoke", "lost")) == [], worker.journal
        added = set().union(*(set(e["parts"]) for w in survivors
                              for e in events_between(w, killed_at, finished_at, ("assign",))))
        assert added == victim_partitions

    # A new generation of members resumes from the commits: auto.offset.reset=earliest would
    # replay the topic for any partition the coordinator had forgotten.
    restarted = [spawn(group, topic_name, assignor) for _ in range(3)]
    wait_until_assigned(restarted, partitions)
    more = Producing(broker, topic_name, total, extra).finish()
    final_ends = ends_of({**delivered, **more}, partitions)
    wait_for(lambda: watcher.snapshot() == final_ends, lambda: f"commits {watcher.snapshot()} reach {final_ends}")
    for worker in restarted:
        worker.terminate()
    watcher.stop()
    assert watcher.samples >= 20
    received = {(e["p"], e["o"]) for w in restarted for e in w.records()}
    assert received == set(more), (
        f"after the restart the group read {len(received - set(more))} old records "
        f"and missed {len(set(more) - received)} new ones")
    check_journals(restarted, more)


def test_commits_survive_a_broker_restart(broker, topic_name, spawn, watch):
    partitions, total = 6, 40_000
    group = f"{topic_name}-group"
    create_topic(broker, topic_name, partitions)
    delivered = Producing(broker, topic_name, 0, total).finish()
    ends = ends_of(delivered, partitions)
    watcher = watch(group, topic_name, partitions)
    workers = [spawn(group, topic_name, "range", "--batch", "200", "--pause-ms", "50") for _ in range(2)]
    wait_for(lambda: watcher.total() >= total // 4, lambda: f"a quarter committed; have {watcher.snapshot()}")

    reported = watcher.snapshot()  # committed, as OffsetFetch answered before the restart
    assert broker.stop() == 0
    broker.assert_logs_closed_cleanly()
    for worker in workers:  # nothing more can be acknowledged: freeze what they journaled
        worker.signal(signal.SIGSTOP)
    acknowledged = {}
    for worker in workers:
        for p, offset in worker.acknowledged_commits().items():
            acknowledged[p] = max(acknowledged.get(p, -1), offset)
    broker.start()
    reader = OffsetReader(broker, group, topic_name, partitions)
    after = {}

    def read_back():
        try:
            after.update(reader.read())
            return True
        except (KafkaException, AssertionError):
            return False

    wait_for(read_back, "OffsetFetch after the restart", timeout=30)
    reader.close()
    assert acknowledged and sum(acknowledged.values()) < total, ("the restart came mid-run", acknowledged)
    for p, offset in acknowledged.items():
        assert after.get(p, -1) >= offset, \
            f"partition {p}: commit of {offset} acknowledged, {after.get(p)} after the restart"
    for p, offset in reported.items():
        assert after.get(p, -1) >= offset, f"partition {p}: {offset} fetched before the restart, {after.get(p)} after"
    assert all(offset <= ends[p] for p, offset in after.items())

    for worker in workers:
        worker.signal(signal.SIGCONT)
    wait_for(lambda: watcher.snapshot() == ends, lambda: f"commits {watcher.snapshot()} reach the log ends {ends}")
    for worker in workers:
        worker.terminate()
    watcher.stop()
    assert watcher.samples >= 10
    check_journals(workers, delivered)


def test_admin_client_lists_describes_alters_and_deletes_groups(broker, topic_name, spawn):
    partitions = 3
    group = f"{topic_name}-group"
    create_topic(broker, topic_name, partitions)
    delivered = Producing(broker, topic_name, 0, 300).finish()
    ends = ends_of(delivered, partitions)
    admin = admin_client(broker)
    workers = [spawn(group, topic_name, "range") for _ in range(2)]
    wait_until_assigned(workers, partitions)
    wait_for(lambda: committed_offsets(admin, group, topic_name, partitions) == ends, "commits reach the log ends")

    def listed(states=None):
        options = {"states": states} if states else {}
        answer = admin.list_consumer_groups(request_timeout=10, **options).result(timeout=15)
        assert answer.errors == []
        return {g.group_id: g for g in answer.valid}

    listing = listed()[group]
    assert listing.state == ConsumerGroupState.STABLE and not listing.is_simple_consumer_group
    assert group in listed({ConsumerGroupState.STABLE})
    assert group not in listed({ConsumerGroupState.EMPTY})

    description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    assert description.state == ConsumerGroupState.STABLE
    assert description.partition_assignor == "range"
    assert description.coordinator.id == 1 and not description.is_simple_consumer_group
    assert len(description.members) == 2
    member_partitions = [{(tp.topic, tp.partition) for tp in m.assignment.topic_partitions}
                         for m in description.members]
    assert set().union(*member_partitions) == {(topic_name, p) for p in range(partitions)}
    assert sum(map(len, member_partitions)) == partitions
    assert all(m.member_id and m.client_id and m.host for m in description.members)

    with pytest.raises(KafkaException) as refused:
        admin.delete_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    assert refused.value.args[0].code() == KafkaError.NON_EMPTY_GROUP, refused.value

    altered = ConsumerGroupTopicPartitions(group, [TopicPartition(topic_name, 0, 1)])
    try:
        result = admin.alter_consumer_group_offsets([altered], request_timeout=10)[group].result(timeout=15)
        errors = [tp.error for tp in result.topic_partitions]
    except KafkaException as refused:
        errors = [refused.args[0]]
    assert [error and error.code() for error in errors] == [KafkaError.UNKNOWN_MEMBER_ID], errors
    assert committed_offsets(admin, group, topic_name, partitions) == ends

    for worker in workers:
        worker.terminate()
    wait_for(lambda: listed()[group].state == ConsumerGroupState.EMPTY, "the group is Empty after both left",
             timeout=10)
    assert group in listed({ConsumerGroupState.EMPTY})
    description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    assert description.state == ConsumerGroupState.EMPTY and description.members == []

    wanted = {0: (5, "five"), 1: (0, ""), 2: (ends[2], "end")}
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic_name, p, offset, metadata) for p, (offset, metadata) in wanted.items()])
    result = admin.alter_consumer_group_offsets([request], request_timeout=10)[group].result(timeout=15)
    assert all(tp.error is None for tp in result.topic_partitions), result.topic_partitions
    fetched = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic_name, p) for p in range(partitions)])],
        request_timeout=10)[group].result(timeout=15)
    assert {tp.partition: (tp.offset, tp.metadata or "") for tp in fetched.topic_partitions} == wanted

    admin.delete_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    assert group not in listed()
    assert committed_offsets(admin, group, topic_name, partitions) == {}
    with pytest.raises(KafkaException) as refused:
        admin.delete_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    assert refused.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND, refused.value


# --- a new broker's coordinator ----------------------------------------------------------------

def test_a_new_coordinator_never_disowns_itself(fresh_broker):
    reader = OffsetReader(fresh_broker, "fresh-group", "fresh-topic", 1)
    errors = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            answer = reader.read()
            break
        except KafkaException as error:
            errors.append(error.args[0].name())
    else:
        pytest.fail(f"no OffsetFetch answer within 30 s; errors {sorted(set(errors))}")
    reader.close()
    assert answer == {}
    assert errors == [], (
        f"{len(errors)} OffsetFetch answers {sorted(set(errors))} from the broker FindCoordinator "
        f"named coordinator, before the group's answer")


def test_offset_fetch_on_a_new_broker_does_not_crash_the_admin_client(fresh_broker):
    script = """if True:
        import sys
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": sys.argv[1]})
        request = ConsumerGroupTopicPartitions("fresh-group", [TopicPartition("fresh-topic", 0)])
        answer = admin.list_consumer_group_offsets([request], request_timeout=20)["fresh-group"].result(timeout=30)
        print([tp.offset for tp in answer.topic_partitions])
    """
    done = subprocess.run([sys.executable, "-c", script, fresh_broker.bootstrap], capture_output=True,
                          timeout=60)
    assert done.returncode == 0, (
        f"AdminClient.list_consumer_group_offsets exited with {done.returncode} (-11: SIGSEGV): "
        f"{done.stderr.decode(errors='replace')[-2000:]}")
    assert done.stdout.strip() == b"[-1001]"  # no commit yet


# --- kafka-python ------------------------------------------------------------------------------

def kafka_python_consume(consumer, count, timeout=30):
    received = []
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            received.extend(records)
    return received


def test_kafka_python_group_commits_and_resumes(broker, topic_name):
    from kafka import KafkaConsumer, TopicPartition as KTopicPartition
    from kafka.admin import KafkaAdminClient

    partitions = 3
    group = f"{topic_name}-group"
    create_topic(broker, topic_name, partitions)
    first = Producing(broker, topic_name, 0, 3_000).finish()
    ends = ends_of(first, partitions)

    def member():
        return KafkaConsumer(topic_name, bootstrap_servers=broker.bootstrap, group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=500)

    consumer = member()
    received = kafka_python_consume(consumer, len(first))
    assert {(r.partition, r.offset) for r in received} == set(first)
    assert all(first[(r.partition, r.offset)] == (r.key.decode(), r.value.decode()) for r in received)
    consumer.commit()

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    offsets = admin.list_group_offsets({group: None})[group]
    assert {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic_name} == ends
    listed = {g["group_id"]: g for g in admin.list_groups()}
    assert listed[group]["group_state"] == "Stable" and listed[group]["protocol_type"] == "consumer"
    described = admin.describe_groups([group])[group]
    assert described["error"] is None
    assert described["group_state"] == "Stable" and described["protocol_type"] == "consumer"
    assert described["protocol_data"] == "range"
    [member_description] = described["members"]
    assert member_description["member_metadata"]["topics"] == [topic_name]
    assignment = member_description["member_assignment"]["assigned_partitions"]
    assigned = {(a["topic"], p) for a in assignment for p in a["partitions"]}
    assert assigned == {(topic_name, p) for p in range(partitions)}
    consumer.close()
    wait_for(lambda: admin.describe_groups([group])[group]["group_state"] == "Empty", "Empty after close()",
             timeout=10)
    assert admin.describe_groups([group])[group]["members"] == []

    second = Producing(broker, topic_name, 3_000, 500).finish()
    consumer = member()
    received = kafka_python_consume(consumer, len(second))
    # Anything old would have come first (the consumer reads from the committed offsets).
    received += kafka_python_consume(consumer, 1, timeout=2)
    assert {(r.partition, r.offset) for r in received} == set(second)
    consumer.commit()
    consumer.close()
    offsets = admin.list_group_offsets({group: [KTopicPartition(topic_name, p) for p in range(partitions)]})[group]
    assert {tp.partition: meta.offset for tp, meta in offsets.items()} == ends_of({**first, **second}, partitions)
    admin.close()


def test_kafka_python_commit_with_stale_generation_is_refused(broker, topic_name):
    from kafka import KafkaConsumer, TopicPartition as KTopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.coordinator.base import Generation
    from kafka.errors import CommitFailedError
    from kafka.structs import OffsetAndMetadata

    group = f"{topic_name}-group"
    create_topic(broker, topic_name, 1)
    Producing(broker, topic_name, 0, 100).finish()
    consumer = KafkaConsumer(topic_name, bootstrap_servers=broker.bootstrap, group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest")
    assert len(kafka_python_consume(consumer, 100)) == 100
    partition = KTopicPartition(topic_name, 0)
    coordinator = consumer._coordinator

    def stable_generation():
        """Polls (which rejoins after a refused commit) until the member is in a stable group."""
        wait_for(lambda: consumer.poll(timeout_ms=100) == {} and coordinator.generation_if_stable() is not None,
                 "a stable generation", timeout=30)
        return coordinator.generation_if_stable()

    def commit_as(generation, offset):
        coordinator._generation = generation
        with pytest.raises(CommitFailedError) as refused:
            consumer.commit({partition: OffsetAndMetadata(offset, "", -1)})
        return str(refused.value)

    consumer.commit({partition: OffsetAndMetadata(10, "", -1)})
    current = stable_generation()
    assert current.generation_id >= 1 and current.member_id
    stale = Generation(current.generation_id - 1, current.member_id, current.protocol)
    assert "IllegalGeneration" in commit_as(stale, 50)
    # The refusal made the member rejoin: a new generation, in which its commits are accepted.
    current = stable_generation()
    consumer.commit({partition: OffsetAndMetadata(20, "", -1)})
    stranger = Generation(current.generation_id, f"not-a-member-{uuid.uuid4()}", current.protocol)
    assert "UnknownMemberId" in commit_as(stranger, 60)

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    assert admin.list_group_offsets({group: [partition]})[group][partition].offset == 20
    admin.close()
    consumer.close()
