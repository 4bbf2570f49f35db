"""Kafka client steps of deploy/docker/smoke-test.sh, with confluent-kafka (librdkafka).

Each subcommand does one bounded thing against the cluster at --bootstrap, prints one JSON
object on stdout and exits 0, or prints why on stderr and exits 1. The smoke test runs it
inside the compose network (the `sluice-smoke-clients:local` image) or, with the host-clients
override, from the project's .venv on the host.

Records are deterministic: record i has key `key-<i:06>` and value `<topic>:value-<i:06>:<h>`
(h: 8 hex digits of SHA-256 over topic and i), so a consumer can check every byte it reads
without being told what was produced.
"""

import argparse
import hashlib
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

# librdkafka settings shared by every client: fail fast enough for a smoke test, and keep the
# log quiet (a broker that is down on purpose would otherwise be reported every second).
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
    return f"key-{i:06d}"


def value_of(topic, i):
    digest = hashlib.sha256(f"{topic}/{i}".encode()).hexdigest()[:8]
    return f"{topic}:value-{i:06d}:{digest}"


def config(args, **extra):
    return {"bootstrap.servers": args.bootstrap, **COMMON, **extra}


def cluster_metadata(args, topic=None, timeout=5.0):
    admin = AdminClient(config(args))
    return admin.list_topics(topic=topic, timeout=timeout)


def metadata_json(md):
    return {
        "controller": md.controller_id,
        "brokers": {str(b.id): f"{b.host}:{b.port}" for b in md.brokers.values()},
        "topics": {
            name: {
                "error": str(t.error) if t.error else None,
                "leaders": {str(p.id): p.leader for p in t.partitions.values()},
            }
            for name, t in md.topics.items()
        },
    }


def cmd_metadata(args):
    """Waits until the metadata lists --expect-brokers brokers and a controller (other than
    --not-controller), and --expect-topic if given."""
    deadline = time.time() + args.timeout
    last = None
    while time.time() < deadline:
        try:
            md = cluster_metadata(args)
            last = metadata_json(md)
            if (len(md.brokers) >= args.expect_brokers and md.controller_id >= 0
                    and md.controller_id != args.not_controller
                    and (args.expect_topic is None or args.expect_topic in md.topics)):
                print(json.dumps(last))
                return
        except KafkaException as error:
            last = str(error)
        time.sleep(0.5)
    fail(f"no metadata with {args.expect_brokers} brokers, a controller other than {args.not_controller}"
         f" and topic {args.expect_topic} within {args.timeout}s; last: {last}")


def topic_leaders(args, topic):
    md = cluster_metadata(args, topic=topic)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None, md
    return {p.id: p.leader for p in t.partitions.values()}, md


def cmd_create_topic(args):
    """Creates a topic (with min.insync.replicas --min-insync-replicas if given) and waits
    until every partition has a leader."""
    admin = AdminClient(config(args))
    configs = {}
    if args.min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(args.min_insync_replicas)
    new = NewTopic(args.topic, num_partitions=args.partitions, replication_factor=args.replication_factor,
                   config=configs)
    futures = admin.create_topics([new], operation_timeout=args.timeout, request_timeout=args.timeout)
    try:
        futures[args.topic].result(timeout=args.timeout)
    except Exception as error:  # KafkaException, or a timeout
        fail(f"create {args.topic}: {error}")
    deadline = time.time() + args.timeout
    leaders = None
    while time.time() < deadline:
        leaders, _ = topic_leaders(args, args.topic)
        if leaders and len(leaders) == args.partitions and all(leader >= 0 for leader in leaders.values()):
            print(json.dumps({"topic": args.topic, "leaders": {str(p): l for p, l in sorted(leaders.items())}}))
            return
        time.sleep(0.5)
    fail(f"{args.topic}: partitions without a leader after {args.timeout}s: {leaders}")


def cmd_wait_replicas(args):
    """Waits until every partition of the topic has a leader other than --not-leader and, with
    --full-isr, all its replicas in the ISR; prints leaders, replicas and ISRs."""
    deadline = time.time() + args.timeout
    last = None
    while time.time() < deadline:
        try:
            t = cluster_metadata(args, topic=args.topic).topics.get(args.topic)
            if t is not None and t.error is None and t.partitions:
                last = {str(p.id): {"leader": p.leader, "replicas": sorted(p.replicas), "isr": sorted(p.isrs)}
                        for p in t.partitions.values()}
                if all(d["leader"] >= 0 and d["leader"] != args.not_leader
                       and (not args.full_isr or d["isr"] == d["replicas"]) for d in last.values()):
                    print(json.dumps({"topic": args.topic, "partitions": last}))
                    return
        except KafkaException as error:
            last = str(error)
        time.sleep(0.5)
    fail(f"{args.topic}: no leader other than {args.not_leader} (full ISR: {args.full_isr}) on every partition"
         f" within {args.timeout}s; last: {last}")


def cmd_leaders(args):
    leaders, md = topic_leaders(args, args.topic)
    if leaders is None:
        fail(f"{args.topic} not in metadata: {metadata_json(md)}")
    print(json.dumps({"topic": args.topic, "controller": md.controller_id,
                      "brokers": sorted(md.brokers), "leaders": {str(p): l for p, l in sorted(leaders.items())}}))


def cmd_produce(args):
    """Produces records --start .. --start+--count-1 (idempotent, acks=all); all must be acknowledged."""
    producer = Producer(config(args, **{
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": int(args.timeout * 1000),
    }))
    delivered = {}
    errors = []

    def on_delivery(error, message):
        if error is not None:
            errors.append(f"{message.key()!r}: {error}")
        else:
            delivered[message.partition()] = delivered.get(message.partition(), 0) + 1

    for i in range(args.start, args.start + args.count):
        extra = {} if args.partition is None else {"partition": args.partition}
        while True:
            try:
                producer.produce(args.topic, key=key_of(i), value=value_of(args.topic, i), on_delivery=on_delivery,
                                 **extra)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(args.timeout)
    total = sum(delivered.values())
    result = {"topic": args.topic, "delivered": total, "per_partition": {str(p): n for p, n in sorted(delivered.items())}}
    if errors or remaining or total != args.count:
        fail(f"produce: {total}/{args.count} acknowledged, {remaining} still queued, errors: {errors[:5]} {result}")
    print(json.dumps(result))


def cmd_consume(args):
    """Reads partitions --partitions (default: all) from the beginning to their high watermark.

    Checks: every record's value is the one its key implies; no key twice; the per-partition
    counts equal --expect (JSON {partition: count}); with --keys a:b, the keys read are
    exactly a..b-1 (over the partitions read)."""
    expect = {int(p): n for p, n in json.loads(args.expect).items()}
    partitions = sorted(expect) if args.partitions is None else [int(p) for p in args.partitions.split(",")]
    consumer = Consumer(config(args, **{
        "group.id": "sluice-smoke-unused",  # required by the API; assign() joins no group, commits nothing
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }))
    deadline = time.time() + args.timeout
    ends = {}
    for p in partitions:
        ends[p] = high_watermark(consumer, args.topic, p, deadline)
    consumer.assign([TopicPartition(args.topic, p, 0) for p in partitions])
    seen = {}
    counts = {p: 0 for p in partitions}
    done = {p for p in partitions if ends[p] == 0}
    while len(done) < len(partitions):
        if time.time() > deadline:
            fail(f"consume: timed out after {args.timeout}s; read {counts}, high watermarks {ends}")
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            if message.error().code() == -191:  # _PARTITION_EOF
                if message.offset() >= ends[message.partition()]:
                    done.add(message.partition())
                continue
            fail(f"consume: {message.error()}")
        p, offset = message.partition(), message.offset()
        key, value = message.key().decode(), message.value().decode()
        check_record(args.topic, key, value, f"{p}@{offset}")
        if key in seen:
            fail(f"{args.topic}/{p}@{offset}: key {key} read twice (first at {seen[key]})")
        seen[key] = (p, offset)
        counts[p] += 1
        if offset + 1 >= ends[p]:
            done.add(p)
    consumer.close()
    if counts != {p: expect[p] for p in partitions}:
        fail(f"consume: per-partition counts {counts}, expected {expect}")
    if args.keys:
        first, last = (int(x) for x in args.keys.split(":"))
        if args.partitions is None and set(seen) != {key_of(i) for i in range(first, last)}:
            fail(f"consume: keys read are not exactly {first}..{last - 1}")
    print(json.dumps({"topic": args.topic, "read": sum(counts.values()),
                      "per_partition": {str(p): n for p, n in counts.items()}, "high_watermarks": ends}))


def high_watermark(consumer, topic, partition, deadline):
    """The partition's high watermark, retried until `deadline`: a leader elected moments
    before answers OFFSET_NOT_AVAILABLE until its followers have fetched from it (as Kafka
    does), and librdkafka hands that error to the caller instead of retrying it; a broker
    still starting may not answer at all."""
    while True:
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5, cached=False)[1]
        except KafkaException as error:
            if time.time() > deadline:
                fail(f"watermarks of {topic}/{partition}: {error}")
            time.sleep(0.5)


def check_record(topic, key, value, where):
    i = int(key.removeprefix("key-"))
    if key != key_of(i) or value != value_of(topic, i):
        fail(f"{topic} {where}: key {key!r} has value {value!r}, expected {value_of(topic, i)!r}")
    return i


def cmd_group_consume(args):
    """Consumes --count records as member of group --group (subscribe, the group protocol),
    checks them, commits synchronously; then a second consumer reads the committed offsets,
    which must equal the partitions' high watermarks."""
    settings = config(args, **{
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10_000,
    })
    consumer = Consumer(settings)
    consumer.subscribe([args.topic])
    deadline = time.time() + args.timeout
    keys = set()
    while len(keys) < args.count:
        if time.time() > deadline:
            fail(f"group {args.group}: read {len(keys)}/{args.count} within {args.timeout}s;"
                 f" assignment {consumer.assignment()}")
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            fail(f"group {args.group}: {message.error()}")
        key, value = message.key().decode(), message.value().decode()
        check_record(args.topic, key, value, f"{message.partition()}@{message.offset()}")
        if key in keys:
            fail(f"group {args.group}: key {key} read twice")
        keys.add(key)
    committed = consumer.commit(asynchronous=False)
    assignment = sorted(tp.partition for tp in consumer.assignment())
    consumer.close()
    checker = Consumer(settings)
    partitions = [TopicPartition(args.topic, p) for p in assignment]
    offsets = {tp.partition: tp.offset for tp in checker.committed(partitions, timeout=min(args.timeout, 30))}
    deadline = time.time() + min(args.timeout, 30)
    ends = {p: high_watermark(checker, args.topic, p, deadline) for p in assignment}
    checker.close()
    if offsets != ends:
        fail(f"group {args.group}: committed {offsets}, high watermarks {ends} (commit answered {committed})")
    print(json.dumps({"group": args.group, "read": len(keys), "committed": {str(p): o for p, o in offsets.items()}}))


def cmd_check_kcat(args):
    """Checks kcat output on stdin, lines `<partition> <offset> <key> <value>`: every value
    matches its key, no key twice, and the keys are exactly --keys a:b."""
    seen = {}
    for number, line in enumerate(sys.stdin, 1):
        fields = line.rstrip("\n").split(" ")
        if len(fields) != 4:
            fail(f"kcat line {number} is not '<partition> <offset> <key> <value>': {line!r}")
        partition, offset, key, value = fields
        check_record(args.topic, key, value, f"{partition}@{offset}")
        if key in seen:
            fail(f"kcat: key {key} read twice ({seen[key]} and {partition}@{offset})")
        seen[key] = f"{partition}@{offset}"
    first, last = (int(x) for x in args.keys.split(":"))
    if set(seen) != {key_of(i) for i in range(first, last)}:
        fail(f"kcat: {len(seen)} distinct keys read, expected exactly {first}..{last - 1}")
    print(json.dumps({"topic": args.topic, "kcat_records": len(seen)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole step")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("metadata")
    p.add_argument("--expect-brokers", type=int, default=1)
    p.add_argument("--not-controller", type=int, default=-1, help="wait for a controller other than this id")
    p.add_argument("--expect-topic")
    p = sub.add_parser("create-topic")
    p.add_argument("topic")
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--replication-factor", type=int, required=True)
    p.add_argument("--min-insync-replicas", type=int, help="topic config min.insync.replicas")
    p = sub.add_parser("wait-replicas")
    p.add_argument("topic")
    p.add_argument("--not-leader", type=int, default=-1, help="wait until no partition is led by this broker")
    p.add_argument("--full-isr", action="store_true", help="wait until every replica is in the ISR")
    p = sub.add_parser("leaders")
    p.add_argument("topic")
    p = sub.add_parser("produce")
    p.add_argument("topic")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--partition", type=int)
    p = sub.add_parser("consume")
    p.add_argument("topic")
    p.add_argument("--expect", required=True, help='JSON {"partition": count}')
    p.add_argument("--partitions", help="comma-separated subset to read (default: those in --expect)")
    p.add_argument("--keys", help="a:b: the keys read must be exactly a..b-1 (all partitions read)")
    p = sub.add_parser("group-consume")
    p.add_argument("topic")
    p.add_argument("--group", required=True)
    p.add_argument("--count", type=int, required=True)
    p = sub.add_parser("check-kcat")
    p.add_argument("topic")
    p.add_argument("--keys", required=True, help="a:b: the keys must be exactly a..b-1")
    args = parser.parse_args()
    {"metadata": cmd_metadata, "create-topic": cmd_create_topic, "leaders": cmd_leaders,
     "wait-replicas": cmd_wait_replicas,
     "produce": cmd_produce, "consume": cmd_consume, "group-consume": cmd_group_consume,
     "check-kcat": cmd_check_kcat}[args.command](args)


if __name__ == "__main__":
    main()
