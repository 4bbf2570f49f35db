"""Kafka client steps of deploy/netns/cluster-test.sh, with confluent-kafka (librdkafka).

Each subcommand does one bounded thing against the brokers at --bootstrap (addresses inside
the test's network namespaces), prints one JSON object on stdout and exits 0, or prints why on
stderr and exits 1.

Records are deterministic: record i has key `key-<i % KEYS:03>` and value `value-<i:07>:<h>`
(h: 8 hex digits of SHA-256 over i), so a reader checks every byte it reads, and per-key order
means: within a partition, the values of one key have increasing i.

Every acknowledged record (delivery report without error) is appended to --acked as one JSON
line {"i", "p", "o", "s", "t"} (index, partition, offset, time it was handed to the producer,
time of the report): `check` reads the
topic back and requires every one of them at its acknowledged offset.
"""

import argparse
import hashlib
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

KEYS = 64

# librdkafka settings shared by every client: the killed broker is down on purpose, so keep
# its connection errors out of the log and retry it at most every 2 s.
COMMON = {
    "socket.timeout.ms": 10_000,
    "reconnect.backoff.max.ms": 2_000,
    "topic.metadata.refresh.interval.ms": 5_000,
    "log_level": 3,
}


def fail(message):
    print(f"client: {message}", file=sys.stderr)
    sys.exit(1)


def key_of(i):
    return f"key-{i % KEYS:03d}"


def value_of(i):
    digest = hashlib.sha256(str(i).encode()).hexdigest()[:8]
    return f"value-{i:07d}:{digest}"


def index_of(value):
    """The record index a value encodes, or None if the value is not one this client wrote."""
    try:
        head, digest = value.split(":")
        i = int(head.removeprefix("value-"))
    except ValueError:
        return None
    return i if value_of(i) == value else None


def config(args, **extra):
    return {"bootstrap.servers": args.bootstrap, **COMMON, **extra}


def partitions(args, topic):
    """partition -> {"leader", "replicas", "isr", "replica_order"} from a fresh Metadata
    answer (replicas and isr sorted; replica_order as the broker lists them, which is the
    order leader election follows)."""
    md = AdminClient(config(args)).list_topics(topic=topic, timeout=5)
    described = md.topics.get(topic)
    if described is None or described.error is not None:
        raise RuntimeError(f"{topic}: {described.error if described else 'missing'}")
    return {
        p.id: {"leader": p.leader, "replicas": sorted(p.replicas), "isr": sorted(p.isrs),
               "replica_order": list(p.replicas)}
        for p in described.partitions.values()
    }


def wait_for(condition, timeout_s, what):
    deadline = time.time() + timeout_s
    last = None
    while time.time() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - retried until the deadline
            last = error
        time.sleep(0.2)
    fail(f"timed out after {timeout_s} s waiting for {what} (last error: {last})")


def cmd_create_topic(args):
    """Creates the topic (RF --replication-factor, min.insync.replicas --min-insync) and waits
    until every partition has a leader and all its replicas in the ISR."""
    admin = AdminClient(config(args))
    topic = NewTopic(args.topic, num_partitions=args.partitions, replication_factor=args.replication_factor,
                     config={"min.insync.replicas": str(args.min_insync)})
    admin.create_topics([topic])[args.topic].result(timeout=args.timeout)

    def full():
        described = partitions(args, args.topic)
        ok = len(described) == args.partitions and all(
            d["leader"] >= 0 and len(d["replicas"]) == args.replication_factor and d["isr"] == d["replicas"]
            for d in described.values())
        return described if ok else None

    described = wait_for(full, args.timeout, f"a full ISR on every partition of {args.topic}")
    print(json.dumps({"partitions": described}))


def cmd_describe(args):
    """The topic's partitions and the metadata Raft leader (Metadata's controller id)."""
    controller = AdminClient(config(args)).list_topics(timeout=5).controller_id
    print(json.dumps({"partitions": partitions(args, args.topic), "controller": controller}))


def cmd_wait(args):
    """Waits until partition --partition has a leader not in --not-leader and, with
    --isr-size, an ISR of at least that many brokers; prints the partition and the wait."""
    start = time.time()

    def ready():
        d = partitions(args, args.topic)[args.partition]
        if d["leader"] < 0 or d["leader"] in args.not_leader:
            return None
        if args.isr_size and len(d["isr"]) < args.isr_size:
            return None
        if args.all_partitions and args.isr_size:
            if any(len(p["isr"]) < args.isr_size for p in partitions(args, args.topic).values()):
                return None
        return d

    d = wait_for(ready, args.timeout, f"{args.topic}/{args.partition}: leader not in {args.not_leader}, "
                 f"ISR size >= {args.isr_size}")
    print(json.dumps({**d, "waited_s": round(time.time() - start, 3)}))


def cmd_produce(args):
    """Produces keyed records --start.. with an idempotent acks=all producer, for --count
    records or for --duration seconds at --rate records/s; logs every acknowledgement."""
    producer = Producer(config(args, **{
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": args.message_timeout_ms,
    }))
    acked = 0
    failed = []
    per_partition = {}
    sent_at = {}  # index -> time.time() when produce() accepted it
    with open(args.acked, "a", encoding="utf-8") as log:
        def report(error, message):
            nonlocal acked
            i = index_of(message.value().decode())
            sent = sent_at.pop(i, None)
            if error is not None:
                failed.append({"i": i, "error": str(error)})
                return
            acked += 1
            per_partition[message.partition()] = per_partition.get(message.partition(), 0) + 1
            log.write(json.dumps({"i": i, "p": message.partition(), "o": message.offset(), "s": sent,
                                  "t": time.time()}) + "\n")

        i = args.start
        start = time.time()
        while True:
            if args.duration:
                if time.time() - start >= args.duration:
                    break
                # Paced: record n goes out at start + n / rate.
                due = start + (i - args.start) / args.rate
                delay = due - time.time()
                if delay > 0:
                    producer.poll(delay)
            elif i - args.start >= args.count:
                break
            while True:
                try:
                    sent_at[i] = time.time()
                    producer.produce(args.topic, key=key_of(i), value=value_of(i), on_delivery=report)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
            i += 1
        remaining = producer.flush(args.message_timeout_ms / 1000 + 10)
    sent = i - args.start
    summary = {"sent": sent, "acked": acked, "failed": len(failed), "unreported": remaining,
               "per_partition": per_partition, "next": i}
    print(json.dumps(summary))
    if failed or remaining:
        fail(f"{len(failed)} deliveries failed ({failed[:3]}), {remaining} unreported")


def cmd_gap(args):
    """From the acknowledgement log: how long --partition took to serve again after --since
    (the kill): the first acknowledgement of a record of that partition handed to the producer
    after the kill, which only a new leader can have given. (The first report after the kill
    is not enough: an answer the old leader sent just before dying can be reported just
    after.) Records produced before the kill and acknowledged after it are counted too."""
    acked = [r for r in read_acked(args.acked) if r["p"] == args.partition]
    sent_after = [r for r in acked if r["s"] is not None and r["s"] >= args.since]
    if not sent_after:
        fail(f"no record of partition {args.partition} produced after the kill was acknowledged")
    first = min(sent_after, key=lambda r: r["t"])
    print(json.dumps({
        "gap_s": round(first["t"] - args.since, 3),
        "acked_before_kill": sum(1 for r in acked if r["t"] < args.since),
        "sent_before_acked_after_kill": sum(1 for r in acked if r["t"] >= args.since and r["s"] < args.since),
        "sent_and_acked_after_kill": len(sent_after),
    }))


def read_acked(path):
    with open(path, encoding="utf-8") as log:
        return [json.loads(line) for line in log if line.strip()]


def high_watermark(consumer, tp, timeout_s=30):
    """The partition's high watermark. A leader elected moments before answers
    OFFSET_NOT_AVAILABLE until its followers have fetched from it (as Kafka does: its high
    watermark may still lag records the previous leader acknowledged); librdkafka hands that
    error to the caller instead of retrying, so it is retried here."""
    deadline = time.time() + timeout_s
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=10)[1]
        except KafkaException as e:
            if e.args[0].code() != KafkaError.OFFSET_NOT_AVAILABLE or time.time() > deadline:
                raise
            time.sleep(0.2)


def cmd_check(args):
    """Reads every partition from offset 0 to its high watermark and checks: every
    acknowledged record is at its acknowledged offset, every value is well-formed and matches
    its key, no record index appears twice, and per partition each key's indexes increase."""
    acked = read_acked(args.acked)
    consumer = Consumer(config(args, **{
        "group.id": "netns-check",  # assign() only: no group join, no commits
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    }))
    described = partitions(args, args.topic)
    high = {}
    for p in described:
        high[p] = high_watermark(consumer, TopicPartition(args.topic, p))
    consumer.assign([TopicPartition(args.topic, p, 0) for p in described if high[p] > 0])
    found = {}  # (partition, offset) -> index
    seen = set()
    last_of_key = {}
    problems = []
    pending = {p for p in described if high[p] > 0}
    deadline = time.time() + args.timeout
    while pending and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            if message.error().code() == -191:  # _PARTITION_EOF
                if message.offset() >= high[message.partition()]:
                    pending.discard(message.partition())
                continue
            problems.append(f"consume error {message.error()}")
            break
        p, o = message.partition(), message.offset()
        if o >= high[p] - 1:
            pending.discard(p)
        i = index_of(message.value().decode())
        if i is None or message.key().decode() != key_of(i):
            problems.append(f"bad record at {p}/{o}: {message.key()!r} {message.value()!r}")
            continue
        if i in seen:
            problems.append(f"record {i} appears twice (again at {p}/{o})")
        seen.add(i)
        found[(p, o)] = i
        if last_of_key.get((p, key_of(i)), -1) > i:
            problems.append(f"key {key_of(i)} out of order at {p}/{o}")
        last_of_key[(p, key_of(i))] = i
    consumer.close()
    if pending:
        problems.append(f"partitions {sorted(pending)} not read to their high watermark {high} in {args.timeout} s")
    missing = [r for r in acked if found.get((r["p"], r["o"])) != r["i"]]
    if missing:
        problems.append(f"{len(missing)} acknowledged records missing or elsewhere, e.g. {missing[:3]}")
    print(json.dumps({"read": len(found), "acknowledged": len(acked), "high_watermarks": high,
                      "problems": problems[:10]}))
    if problems:
        fail("; ".join(problems[:5]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("create-topic")
    p.add_argument("topic")
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--replication-factor", type=int, default=3)
    p.add_argument("--min-insync", type=int, default=2)
    p.set_defaults(run=cmd_create_topic)

    p = sub.add_parser("describe")
    p.add_argument("topic")
    p.set_defaults(run=cmd_describe)

    p = sub.add_parser("wait")
    p.add_argument("topic")
    p.add_argument("--partition", type=int, default=0)
    p.add_argument("--not-leader", type=int, action="append", default=[])
    p.add_argument("--isr-size", type=int, default=0)
    p.add_argument("--all-partitions", action="store_true", help="--isr-size applies to every partition")
    p.set_defaults(run=cmd_wait)

    p = sub.add_parser("produce")
    p.add_argument("topic")
    p.add_argument("--acked", required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--duration", type=float, default=0.0, help="produce at --rate for this long instead")
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--message-timeout-ms", type=int, default=60_000)
    p.set_defaults(run=cmd_produce)

    p = sub.add_parser("gap")
    p.add_argument("--acked", required=True)
    p.add_argument("--partition", type=int, default=0)
    p.add_argument("--since", type=float, required=True)
    p.set_defaults(run=cmd_gap)

    p = sub.add_parser("check")
    p.add_argument("topic")
    p.add_argument("--acked", required=True)
    p.set_defaults(run=cmd_check)

    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
