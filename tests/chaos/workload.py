"""The chaos workload: producers that log every acknowledgement, consumer-group members that log
every record and every commit, and the final read of every partition from offset 0.

Every record's value is unique: `<producer>-<sequence>`, key `k<sequence % keys>`. Every line of
every history is JSON with wall-clock times (`time.time()`, seconds), written to the run
directory as it happens, so a run that dies still leaves its history:

- `acks-<producer>.jsonl`: `{"producer", "topic", "key", "value", "sent", "at", "partition",
  "offset"}` for an acknowledgement (plus `"client": "librdkafka"` from a confluent-kafka
  producer); `"error"` instead of partition/offset for a failed
  (indeterminate) delivery. The sluice-client producer (crates/client/examples/chaos_producer.rs)
  writes the same lines.
- `consumer-<member>.jsonl`: in the order the member saw them, `{"event": "assign"|"revoke"|
  "lost", "partitions": [[topic, partition], ...]}`, `{"event": "poll", "topic", "partition",
  "offset", "value"}` and `{"event": "commit", "topic", "partition", "offset", "started"}` (one
  line per partition of each successful synchronous commit; `started` is when the commit call
  began, `at` when it returned), each with `"at"`.
- `final-read.jsonl` (written by run.py): per partition `{"topic", "partition",
  "high_watermark", "records": [[offset, key, value], ...]}`, the final read from offset 0.
"""

import json
import logging
import os
import subprocess
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from watermarks import high_watermark  # tests/cluster, on the path run.py sets

# librdkafka settings of every client: a killed or paused broker is expected, so its connection
# errors stay out of the output (log_level 2: critical only; the producers' error callbacks
# still record every error in client-errors-<producer>.jsonl) and it is retried at most every
# second.
COMMON = {
    "log_level": 2,
    "socket.timeout.ms": 10_000,
    "reconnect.backoff.max.ms": 1_000,
    "topic.metadata.refresh.interval.ms": 2_000,
}
# A failover (fence after the 1.5 s session timeout, election, metadata refresh) and a whole
# fault window must fit in the delivery timeout with room to spare.
DELIVERY_TIMEOUT_MS = 120_000
COMMIT_INTERVAL_S = 0.5
CONSUMER_SESSION_TIMEOUT_MS = 6_000


class JsonLog:
    """An append-only JSON-lines file, safe to write from several threads."""

    def __init__(self, path):
        self.path = path
        self.file = open(path, "a", encoding="utf-8")
        self.lock = threading.Lock()

    def write(self, record):
        line = json.dumps(record, separators=(",", ":"))
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()

    def close(self):
        with self.lock:
            self.file.close()


def read_jsonl(path):
    with open(path, encoding="utf-8") as source:
        return [json.loads(line) for line in source if line.strip()]


# The librdkafka debug contexts every producer logs (CHAOS_RDKAFKA_DEBUG overrides them; "off"
# turns the log off). `eos` has the idempotence state machine: the drain before an epoch bump,
# its reason and the new epoch ("All partitions drained, bumped epoch to PID{Id:..,Epoch:..}");
# `msg` has every ProduceRequest's MessageSet (MsgId, BaseSeq, PID) and every error a batch got.
# Both are what checker.py needs to explain a duplicate (librdkafka#4953); they come to about
# 1-2 MB per producer-minute at the workload's rates. `protocol` (every request and response)
# would triple that and adds nothing the checker reads.
RDKAFKA_DEBUG_DEFAULT = "eos,msg"


def rdkafka_log_path(directory, name):
    return os.path.join(directory, f"rdkafka-{name}.log")


def debug_settings(directory, name):
    """The client's librdkafka debug log goes to `<directory>/rdkafka-<name>.log`, one line per
    message: `<unix time, 3 decimals> <facility> [<client>] <text>`. The lines reach Python
    through the client's main queue, in order with its delivery reports, so a line logged
    before a delivery report carries a time no later than the report's."""
    contexts = os.environ.get("CHAOS_RDKAFKA_DEBUG", RDKAFKA_DEBUG_DEFAULT)
    if not contexts or contexts == "off":
        return {}
    logger = logging.getLogger(f"rdkafka-{name}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = logging.FileHandler(rdkafka_log_path(directory, name))
    handler.setFormatter(logging.Formatter("%(created).3f %(message)s"))
    logger.addHandler(handler)
    return {"debug": contexts, "log_level": 7, "logger": logger}


def read_rdkafka_log(path):
    """A debug log written by debug_settings as [(time, text), ...]; [] if there is none."""
    if not os.path.exists(path):
        return []
    lines = []
    with open(path, encoding="utf-8", errors="replace") as source:
        for line in source:
            at, _, text = line.rstrip("\n").partition(" ")
            try:
                lines.append((float(at), text))
            except ValueError:  # a continuation of a multi-line message
                if lines:
                    lines[-1] = (lines[-1][0], lines[-1][1] + " " + line.strip())
    return lines


class LibrdkafkaProducer(threading.Thread):
    """A confluent-kafka idempotent acks=all producer at `rate` records/s until stopped."""

    def __init__(self, name, bootstrap, topic, rate, directory, keys=16):
        super().__init__(daemon=True, name=f"producer-{name}")
        self.name_, self.topic, self.rate, self.keys = name, topic, rate, keys
        self.log = JsonLog(os.path.join(directory, f"acks-{name}.jsonl"))
        self.errors = JsonLog(os.path.join(directory, f"client-errors-{name}.jsonl"))
        self.fatal = []
        self.producer = Producer({
            **COMMON,
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "delivery.timeout.ms": DELIVERY_TIMEOUT_MS,
            "request.timeout.ms": 10_000,
            "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 500,
            "error_cb": self.on_error,
            **debug_settings(directory, name),
        })
        self.stopping = threading.Event()
        self.sent = 0
        self.unreported = None

    def on_error(self, error):
        record = {"producer": self.name_, "error": str(error), "fatal": error.fatal(), "at": time.time()}
        if error.fatal():
            self.fatal.append(record)
        self.errors.write(record)

    def report(self, sent_at, key, value):
        def on_delivery(error, message):
            record = {"producer": self.name_, "client": "librdkafka", "topic": self.topic, "key": key,
                      "value": value, "sent": sent_at, "at": time.time()}
            if error is None:
                record["partition"], record["offset"] = message.partition(), message.offset()
            else:
                record["error"] = str(error)
            self.log.write(record)
        return on_delivery

    def run(self):
        started = time.time()
        sequence = 0
        while not self.stopping.is_set() and not self.fatal:
            key, value = f"k{sequence % self.keys}", f"{self.name_}-{sequence}"
            try:
                self.producer.produce(self.topic, key=key, value=value,
                                      on_delivery=self.report(time.time(), key, value))
            except BufferError:
                self.producer.poll(0.05)
                continue
            sequence += 1
            self.sent = sequence
            # poll() serves delivery reports and returns as soon as one arrives, so pacing is a
            # sleep of its own.
            self.producer.poll(0)
            ahead = started + sequence / self.rate - time.time()
            if ahead > 0:
                time.sleep(ahead)

    def finish(self, flush_timeout_s):
        self.stopping.set()
        self.join(timeout=30)
        self.unreported = self.producer.flush(flush_timeout_s)
        self.log.close()
        self.errors.close()
        return {"sent": self.sent, "unreported": self.unreported, "fatal_errors": [f["error"] for f in self.fatal]}


class SluiceClientProducer:
    """crates/client/examples/chaos_producer.rs as a child process, its stdout the ack log."""

    def __init__(self, name, binary, bootstrap, topic, rate, seconds, directory, keys=16):
        self.name_ = name
        self.path = os.path.join(directory, f"acks-{name}.jsonl")
        self.stderr_path = os.path.join(directory, f"{name}.stderr")
        self.pid_path = os.path.join(directory, f"{name}.pid")  # for scripts/chaos.sh's cleanup
        self.argv = [binary, bootstrap, topic, name, str(rate), str(seconds), str(keys)]
        self.process = None

    def start(self):
        with open(self.path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=err)
        with open(self.pid_path, "w", encoding="utf-8") as pid_file:
            pid_file.write(f"{self.process.pid}\n")
        return self

    def finish(self, timeout_s):
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            code = "killed after timeout"
        with open(self.stderr_path, encoding="utf-8", errors="replace") as err:
            tail = err.read().strip().splitlines()[-3:]
        return {"exit": code, "stderr_tail": tail}


class GroupMember(threading.Thread):
    """A confluent-kafka consumer-group member: polls, logs every record, commits synchronously
    every COMMIT_INTERVAL_S and logs every successful commit."""

    def __init__(self, name, bootstrap, group, topics, directory):
        super().__init__(daemon=True, name=f"member-{name}")
        self.name_ = name
        self.topics = topics
        self.log = JsonLog(os.path.join(directory, f"consumer-{name}.jsonl"))
        self.consumer = Consumer({
            **COMMON,
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": CONSUMER_SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": 500,
        })
        self.stopping = threading.Event()
        self.polled = 0
        self.commits = 0
        self.commit_errors = 0
        self.poll_errors = 0

    def on_assignment(self, event):
        def callback(consumer, partitions):
            self.log.write({"member": self.name_, "event": event,
                            "partitions": [[tp.topic, tp.partition] for tp in partitions], "at": time.time()})
        return callback

    def commit(self):
        started = time.time()
        try:
            committed = self.consumer.commit(asynchronous=False)
        except KafkaException as error:
            # No offsets to commit yet, or a coordinator moving: the next commit covers this one.
            self.commit_errors += 1
            self.log.write({"member": self.name_, "event": "commit-error", "error": str(error),
                            "started": started, "at": time.time()})
            return
        at = time.time()
        for tp in committed or []:
            if tp.error is None and tp.offset >= 0:
                self.commits += 1
                self.log.write({"member": self.name_, "event": "commit", "topic": tp.topic,
                                "partition": tp.partition, "offset": tp.offset, "started": started, "at": at})

    def run(self):
        self.consumer.subscribe(self.topics, on_assign=self.on_assignment("assign"),
                                on_revoke=self.on_assignment("revoke"), on_lost=self.on_assignment("lost"))
        last_commit = time.time()
        dirty = False
        while not self.stopping.is_set():
            message = self.consumer.poll(0.2)
            if message is not None:
                if message.error():
                    self.poll_errors += 1
                else:
                    self.polled += 1
                    dirty = True
                    self.log.write({"member": self.name_, "event": "poll", "topic": message.topic(),
                                    "partition": message.partition(), "offset": message.offset(),
                                    "value": message.value().decode(), "at": time.time()})
            if dirty and time.time() - last_commit >= COMMIT_INTERVAL_S:
                self.commit()
                last_commit = time.time()
                dirty = False
        if dirty:
            self.commit()
        self.consumer.close()
        self.log.close()

    def finish(self):
        self.stopping.set()
        self.join(timeout=60)
        return {"polled": self.polled, "commits": self.commits, "commit_errors": self.commit_errors,
                "poll_errors": self.poll_errors, "stopped": not self.is_alive()}


def read_everything(bootstrap, topics_partitions, timeout_s):
    """Every record of every partition from offset 0 to its high watermark at the start of the
    read. Returns ({(topic, partition): [(offset, key, value), ...]}, {(topic, partition): hw},
    problems)."""
    consumer = Consumer({
        **COMMON,
        "bootstrap.servers": bootstrap,
        "group.id": f"chaos-final-read-{os.getpid()}",  # assign() only: no join, no commits
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    })
    ends = {}
    for topic, count in topics_partitions.items():
        for partition in range(count):
            ends[(topic, partition)] = high_watermark(consumer, TopicPartition(topic, partition))
    consumer.assign([TopicPartition(t, p, 0) for (t, p), high in ends.items() if high > 0])
    records = {tp: [] for tp in ends}
    pending = {tp for tp, high in ends.items() if high > 0}
    problems = []
    deadline = time.time() + timeout_s
    while pending and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        tp = (message.topic(), message.partition())
        if message.error():
            if message.error().code() == -191:  # _PARTITION_EOF
                if message.offset() >= ends[tp]:
                    pending.discard(tp)
            else:
                problems.append(f"consume error {message.error()}")
            continue
        if message.offset() < ends[tp]:
            records[tp].append((message.offset(), message.key().decode() if message.key() else None,
                                message.value().decode()))
        if message.offset() + 1 >= ends[tp]:
            pending.discard(tp)
    consumer.close()
    if pending:
        problems.append(f"partitions {sorted(pending)} not read to their high watermark in {timeout_s} s")
    return records, ends, problems
