"""The high watermark of a partition, read through librdkafka, retried while a new leader
catches up. Shared by the cluster suite (`workload.py`) and the chaos suite
(`tests/chaos/workload.py`, which has this directory on its path)."""

import time

from confluent_kafka import KafkaError, KafkaException


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
