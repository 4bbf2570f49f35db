"""Console render-time benchmark (not a test): one broker, a topic of PARTITIONS partitions with
one record each, a group with a committed offset on every partition, then REQUESTS GETs of each
console page, timed from request to the last byte; prints p50 and max per page as a Markdown
table for docs/benchmarks.md. Run by scripts/console-bench.sh.
"""

import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from conftest import Broker, wait_until  # noqa: E402

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

PARTITIONS = int(os.environ.get("CONSOLE_BENCH_PARTITIONS", "1000"))
REQUESTS = int(os.environ.get("CONSOLE_BENCH_REQUESTS", "20"))
TOPIC, GROUP = "wide", "bench"


def timed_get(url):
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as answer:
        body = answer.read()
        assert answer.status == 200, (url, answer.status)
    return (time.perf_counter() - start) * 1000, len(body)


def main():
    with tempfile.TemporaryDirectory(prefix="sluice-console-bench.") as directory:
        broker = Broker(directory)
        try:
            wait_until(broker.ready, 60, "the broker's /ready")
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(timeout=120)
            producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20})
            for partition in range(PARTITIONS):
                producer.produce(TOPIC, value=b"x" * 100, partition=partition)
            producer.flush(120)
            consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": GROUP})
            consumer.commit(offsets=[TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)], asynchronous=False)
            consumer.close()
            # Two lag refreshes (5 s apart) so the group page has its lag and chart.
            time.sleep(11)
            pages = ["/", "/topics", f"/topic?name={TOPIC}", f"/topic?name={TOPIC}&page=9",
                     f"/records?topic={TOPIC}&partition=0&count=100", "/groups", f"/group?id={GROUP}",
                     f"/group?id={GROUP}&page=9"]
            print(f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
                  f"broker {broker.binary}")
            print(f"{PARTITIONS} partitions, {REQUESTS} GETs per page, one at a time\n")
            print("| page | p50 ms | max ms | bytes |\n|---|---|---|---|")
            for path in pages:
                timed_get(broker.admin + path)  # warm-up, not counted
                times, size = zip(*(timed_get(broker.admin + path) for _ in range(REQUESTS)))
                print(f"| `{path}` | {statistics.median(times):.1f} | {max(times):.1f} | {size[0]} |")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
