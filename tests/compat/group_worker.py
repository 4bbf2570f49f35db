"""One consumer-group member for tests/compat/test_groups.py, run as its own OS process (so a
test can SIGKILL it): a confluent-kafka Consumer subscribed to one topic that processes each
record by appending one JSON line to its journal and then commits.

Delivery: at-least-once by manual commit. `enable.auto.commit=false`; after each batch from
`consume()` the batch's lines are written and flushed to the journal (a SIGKILL cannot lose
them: they are in the kernel), and only then are the batch's next offsets committed,
synchronously. A record is therefore committed only after it was processed; a crash between the
two gets it processed again by the partition's next owner. A commit refused by the broker
(a rebalance) is kept and tried again in `on_revoke`, before the partitions go.

Rebalances: `on_assign` / `on_revoke` / `on_lost` journal the event and apply it themselves,
with `incremental_assign` / `incremental_unassign` when the rebalance protocol is COOPERATIVE
(the `cooperative-sticky` assignor), else `assign` / `unassign` (EAGER: `range`, `roundrobin`).
(confluent-kafka's Python Consumer does not expose librdkafka's rd_kafka_rebalance_protocol();
the protocol follows from the one configured assignor.)

The journal (`--journal`), one JSON object a line, each with `t` = time.monotonic_ns() (one
system-wide clock, comparable between processes):
    {"k": "rec", "p": partition, "o": offset, "key": key, "v": value}
    {"k": "assign" | "revoke" | "lost", "parts": [partition, ...], "protocol": "EAGER" | "COOPERATIVE"}
    {"k": "commit", "offsets": {partition: next offset}}        acknowledged by the broker
    {"k": "commit_error", "error": "...", "offsets": {...}}
    {"k": "error", "error": "..."}                              an error event from consume()
    {"k": "closed"}                                             after close() (left the group)

Stop: SIGTERM finishes the current batch (processed and committed), then `close()`, which
leaves the group; exit code 0.

Usage: group_worker.py --bootstrap HOST:PORT --group G --topic T --assignor range|cooperative-sticky
                       --journal PATH [--batch N] [--pause-ms MS] [--session-timeout-ms MS]
"""

import argparse
import json
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--assignor", required=True, choices=["range", "roundrobin", "cooperative-sticky"])
    parser.add_argument("--journal", required=True)
    parser.add_argument("--batch", type=int, default=500, help="most records per consume() batch")
    parser.add_argument("--pause-ms", type=int, default=0, help="processing time per batch")
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    args = parser.parse_args()

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))

    journal = open(args.journal, "a", encoding="utf-8")

    def note(kind, **fields):
        fields.update(k=kind, t=time.monotonic_ns())
        journal.write(json.dumps(fields) + "\n")
        journal.flush()

    protocol = "COOPERATIVE" if args.assignor == "cooperative-sticky" else "EAGER"
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "partition.assignment.strategy": args.assignor,
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": 500,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        # Reconnect quickly when the broker restarts.
        "reconnect.backoff.max.ms": 1000,
    })
    # Offsets processed but whose commit the broker refused: {partition: next offset}.
    uncommitted = {}

    def commit(offsets):
        """Commits {partition: next offset} synchronously; journals the outcome. Returns
        whether the broker acknowledged every partition."""
        if not offsets:
            return True
        wanted = [TopicPartition(args.topic, p, o) for p, o in sorted(offsets.items())]
        try:
            answered = consumer.commit(offsets=wanted, asynchronous=False)
        except KafkaException as error:
            note("commit_error", error=str(error.args[0]), offsets={str(p): o for p, o in offsets.items()})
            return False
        failed = {tp.partition: str(tp.error) for tp in answered if tp.error is not None}
        done = {str(tp.partition): tp.offset for tp in answered if tp.error is None}
        if done:
            note("commit", offsets=done)
        if failed:
            note("commit_error", error=json.dumps(failed), offsets={str(p): offsets[p] for p in failed})
        for tp in answered:
            if tp.error is None and uncommitted.get(tp.partition, -1) <= tp.offset:
                uncommitted.pop(tp.partition, None)
        return not failed

    def on_assign(client, partitions):
        note("assign", parts=sorted(tp.partition for tp in partitions), protocol=protocol)
        if protocol == "COOPERATIVE":
            client.incremental_assign(partitions)
        else:
            client.assign(partitions)

    def on_revoke(client, partitions):
        revoked = {tp.partition for tp in partitions}
        # Everything processed was committed after its batch, unless the broker refused that
        # commit; try those once more while the partitions are still ours.
        commit({p: o for p, o in uncommitted.items() if p in revoked})
        for p in revoked:
            uncommitted.pop(p, None)
        note("revoke", parts=sorted(revoked), protocol=protocol)
        if protocol == "COOPERATIVE":
            client.incremental_unassign(partitions)
        else:
            client.unassign()

    def on_lost(client, partitions):
        lost = {tp.partition for tp in partitions}
        for p in lost:
            uncommitted.pop(p, None)
        note("lost", parts=sorted(lost), protocol=protocol)
        if protocol == "COOPERATIVE":
            client.incremental_unassign(partitions)
        else:
            client.unassign()

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    while not stopping:
        messages = consumer.consume(num_messages=args.batch, timeout=0.2)
        lines, offsets = [], {}
        now = time.monotonic_ns()
        for message in messages:
            if message.error() is not None:
                note("error", error=str(message.error()))
                continue
            lines.append(json.dumps({
                "k": "rec", "t": now, "p": message.partition(), "o": message.offset(),
                "key": message.key().decode(), "v": message.value().decode(),
            }) + "\n")
            offsets[message.partition()] = message.offset() + 1
        if lines:
            journal.write("".join(lines))
            journal.flush()
        uncommitted.update(offsets)
        commit(dict(uncommitted))
        if args.pause_ms and lines:
            time.sleep(args.pause_ms / 1000)
    consumer.close()
    note("closed")
    journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
