"""aiokafka (asyncio Kafka client) against the broker named by COMPAT_BOOTSTRAP: an idempotent
producer with keyed records, a consumer group with manual commits that a new member resumes
from, and the admin client's basics. Each test opens with its goal and method; each is one row
of docs/compatibility.md under the suite `aiokafka`."""

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

# Kafka's error codes and config sources the tests compare with (the protocol's numbers).
TOPIC_ALREADY_EXISTS = 36
UNKNOWN_TOPIC_OR_PARTITION = 3
CONFIG_SOURCE_DYNAMIC_TOPIC = 1
CONFIG_SOURCE_DEFAULT = 5

# Partitions of a 6-partition topic that Kafka's Java client picks for these keys:
# toPositive(Utils.murmur2(key)) % 6, from the hashes printed by
# org.apache.kafka.common.utils.Utils.murmur2 (kafka-clients 4.1.1), the same values
# tests/go/compat_test.go checks franz-go against.
JAVA_HASHES = {"21": -973932308, "foobar": -790332482, "abc": 479470107, "key-0": 29210041,
               "key-1": 193331640, "key-2": 852269702, "user-42": 1459644460}
JAVA_PARTITIONS = {key: (hash_ & 0x7FFFFFFF) % 6 for key, hash_ in JAVA_HASHES.items()}
# How often the polling helpers look again, in seconds.
POLL_INTERVAL_S = 0.1


async def admin_client(bootstrap):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="sluice-compat-aiokafka")
    await admin.start()
    return admin


async def wait_until(what, condition, timeout_s=30):
    """Awaits the async `condition` until it is true; fails the test after timeout_s."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(POLL_INTERVAL_S)


async def partitions_ready(admin, topic, partitions):
    """True when metadata shows every partition of topic with a leader."""
    topics = await admin.describe_topics([topic])
    if len(topics) != 1 or topics[0]["error_code"] != 0 or len(topics[0]["partitions"]) != partitions:
        return False
    return all(p["error_code"] == 0 and p["leader"] >= 0 for p in topics[0]["partitions"])


async def create_topic(admin, topic, partitions, configs=None):
    answer = await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs or {})])
    errors = [(t[0], t[1]) for t in answer.topic_errors if t[1] != 0]
    assert not errors, f"create topic {topic}: {answer.topic_errors}"
    await wait_until(f"topic {topic} to have a leader for every partition",
                     lambda: partitions_ready(admin, topic, partitions))


async def delete_topic_quietly(admin, topic):
    try:
        await admin.delete_topics([topic])
    except Exception:  # cleanup only: the test's own assertions already ran
        pass


def idempotent_producer(bootstrap, **options):
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                            client_id="sluice-compat-aiokafka", **options)


async def consume_from_start(bootstrap, topic, partitions, want):
    """Reads every partition of topic from offset 0 (assigned, no group) until `want` records
    arrived."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got = []
        while len(got) < want:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                got.extend(records)
        return got
    finally:
        await consumer.stop()


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"], ids=lambda codec: codec or "none")
def test_idempotent_producer_keyed(bootstrap, name, run, codec):
    """An idempotent producer (acks=all) with each compression codec sends keyed records with a
    header to a 6-partition topic, one at a time (send_and_wait) and in bursts (send, then the
    futures): every key lands in the partition Kafka's Java client picks, offsets grow per
    partition in the order sent, and a consumer reads back exactly what was acknowledged at each
    offset."""

    async def scenario():
        admin = await admin_client(bootstrap)
        producer = idempotent_producer(bootstrap, compression_type=codec, linger_ms=5)
        try:
            await create_topic(admin, name, 6)
            await producer.start()
            acked, last = {}, {}

            def check(key, value, metadata):
                assert metadata.partition == JAVA_PARTITIONS[key], \
                    f"key {key!r} went to partition {metadata.partition}; Java's murmur2 picks {JAVA_PARTITIONS[key]}"
                assert metadata.offset > last.get(metadata.partition, -1), \
                    f"partition {metadata.partition}: offset {metadata.offset} after {last[metadata.partition]}"
                last[metadata.partition] = metadata.offset
                acked[(metadata.partition, metadata.offset)] = (key, value)

            for round_ in range(20):
                sends = []
                for key in sorted(JAVA_PARTITIONS):
                    value = f"{key}-round-{round_}-{codec}"
                    headers = [("round", str(round_).encode())]
                    if round_ % 2 == 0:
                        metadata = await producer.send_and_wait(name, value.encode(), key=key.encode(), headers=headers)
                        check(key, value, metadata)
                    else:
                        sends.append((key, value, await producer.send(name, value.encode(), key=key.encode(), headers=headers)))
                for key, value, future in sends:
                    check(key, value, await future)
            records = await consume_from_start(bootstrap, name, 6, len(acked))
            assert len(records) == len(acked)
            for record in records:
                sent = acked.get((record.partition, record.offset))
                assert sent is not None, f"consumed {record.partition}/{record.offset}, which no send acknowledged"
                assert (record.key.decode(), record.value.decode()) == sent
                assert list(record.headers) == [("round", sent[1].split("-round-")[1].split("-")[0].encode())]
        finally:
            await producer.stop()
            await delete_topic_quietly(admin, name)
            await admin.close()

    run(scenario())


def group_consumer(bootstrap, group, topic):
    return AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                            auto_offset_reset="earliest", client_id="sluice-compat-aiokafka",
                            max_poll_records=10)


async def produce_keyed(producer, topic, start, count):
    futures = [await producer.send(topic, str(i).encode(), key=f"key-{i % 13}".encode())
               for i in range(start, start + count)]
    for future in futures:
        await future


async def log_end(consumer, topic, partitions):
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    return await consumer.end_offsets(tps)


def test_group_commit_and_resume(bootstrap, name, run):
    """A group member (manual commits, reset to earliest) processes at least 50 of 100 records
    of a 3-partition topic, ten at a time, commits exactly what it processed and leaves; 50 more
    are written; a new member of the same group resumes from the commits: it gets every other
    record, none of the first member's (a lost commit would show as a re-read), and after its own
    commits the group's committed offsets are the log end."""

    async def scenario():
        partitions = 3
        admin = await admin_client(bootstrap)
        producer = idempotent_producer(bootstrap)
        first = group_consumer(bootstrap, name, name)
        second = group_consumer(bootstrap, name, name)
        try:
            await create_topic(admin, name, partitions)
            await producer.start()
            await produce_keyed(producer, name, 0, 100)

            await first.start()
            processed_first = set()
            while len(processed_first) < 50:
                batches = await first.getmany(timeout_ms=500, max_records=10)
                commit = {}
                for tp, records in batches.items():
                    processed_first.update((tp.partition, r.offset) for r in records)
                    commit[tp] = records[-1].offset + 1
                if commit:
                    await first.commit(commit)
            assert len(processed_first) < 100, "the first member was handed all records at once"
            for p in range(partitions):
                tp = TopicPartition(name, p)
                done = [o for (q, o) in processed_first if q == p]
                assert await first.committed(tp) == (max(done) + 1 if done else None)
            await first.stop()

            await produce_keyed(producer, name, 100, 50)
            await second.start()
            processed_second = set()
            while len(processed_second) < 150 - len(processed_first):
                batches = await second.getmany(timeout_ms=500)
                commit = {}
                for tp, records in batches.items():
                    for r in records:
                        position = (tp.partition, r.offset)
                        assert position not in processed_first, f"{position} was processed and committed by the first member"
                        assert position not in processed_second, f"{position} delivered twice"
                        processed_second.add(position)
                    commit[tp] = records[-1].offset + 1
                if commit:
                    await second.commit(commit)
            extra = await second.getmany(timeout_ms=1000)
            assert not any(extra.values()), f"records past the log end: {extra}"
            ends = await log_end(second, name, partitions)
            for tp, end in ends.items():
                assert await second.committed(tp) == end
            assert len(processed_first | processed_second) == sum(ends.values()) == 150
        finally:
            await second.stop()
            await first.stop()
            await producer.stop()
            await delete_topic_quietly(admin, name)
            await admin.close()

    run(scenario())


def test_group_two_members(bootstrap, name, run):
    """Two members of one group share a 4-partition topic, two partitions each (aiokafka's
    default round-robin assignor), and consume 200 records between them, each only from its own partitions,
    committing as they go; one member leaves and the other takes over all four partitions and
    consumes 200 more. Every record is consumed exactly once."""

    async def scenario():
        partitions = 4
        admin = await admin_client(bootstrap)
        producer = idempotent_producer(bootstrap)
        members = {"A": group_consumer(bootstrap, name, name), "B": group_consumer(bootstrap, name, name)}
        seen, problems = {}, []
        stop_flags = {"A": asyncio.Event(), "B": asyncio.Event()}

        async def poll(member):
            consumer = members[member]
            while not stop_flags[member].is_set():
                batches = await consumer.getmany(timeout_ms=200)
                commit = {}
                for tp, records in batches.items():
                    if tp not in consumer.assignment():
                        problems.append(f"{member} got {tp}, which it does not own")
                    for r in records:
                        if (tp.partition, r.offset) in seen:
                            problems.append(f"{tp.partition}/{r.offset} by {seen[(tp.partition, r.offset)]} and {member}")
                        seen[(tp.partition, r.offset)] = member
                    commit[tp] = records[-1].offset + 1
                if commit:
                    await consumer.commit(commit)

        async def committed_at_end(consumer):
            ends = await log_end(consumer, name, partitions)
            return all([await consumer.committed(tp) == end for tp, end in ends.items()])

        tasks = []
        try:
            await create_topic(admin, name, partitions)
            await producer.start()
            for member, consumer in members.items():
                await consumer.start()
                tasks.append(asyncio.create_task(poll(member)))

            async def balanced():
                return [len(c.assignment()) for c in members.values()] == [2, 2]

            await wait_until("both members to own 2 partitions", balanced)
            await produce_keyed(producer, name, 0, 200)

            async def consumed(n):
                return len(seen) >= n

            await wait_until("200 records consumed", lambda: consumed(200))
            await wait_until("commits at the log end", lambda: committed_at_end(members["A"]))
            owners = {member: {tp.partition for tp in c.assignment()} for member, c in members.items()}
            for (partition, offset), member in seen.items():
                assert partition in owners[member], f"{member} consumed {partition}/{offset} from a partition it does not own"

            stop_flags["B"].set()
            await tasks[1]
            await members["B"].stop()

            async def took_over():
                return len(members["A"].assignment()) == partitions

            await wait_until("member A to own all 4 partitions", took_over)
            await produce_keyed(producer, name, 200, 200)
            await wait_until("400 records consumed", lambda: consumed(400))
            await wait_until("commits at the log end", lambda: committed_at_end(members["A"]))
            assert not problems, problems
            assert len(seen) == 400
        finally:
            for flag in stop_flags.values():
                flag.set()
            for task in tasks:
                try:
                    await task
                except Exception as error:  # the member's failure is the test's, reported below
                    problems.append(f"member failed: {error!r}")
            for consumer in members.values():
                await consumer.stop()
            await producer.stop()
            await delete_topic_quietly(admin, name)
            await admin.close()
        assert not problems, problems

    run(scenario())


def test_admin_topics(bootstrap, name, run):
    """The admin client's topic calls: create_topics with a config (creating it again answers
    TOPIC_ALREADY_EXISTS), list_topics and describe_topics show it with every partition led,
    create_partitions grows it, describe_configs reports the config as a dynamic topic config and
    an unset one with its default, delete_topics removes it (and a second delete answers
    UNKNOWN_TOPIC_OR_PARTITION)."""

    async def scenario():
        admin = await admin_client(bootstrap)
        try:
            await create_topic(admin, name, 3, {"retention.ms": "3600000"})
            again = await admin.create_topics([NewTopic(name, 3, 1)])
            assert [t[1] for t in again.topic_errors] == [TOPIC_ALREADY_EXISTS]
            assert TopicAlreadyExistsError.errno == TOPIC_ALREADY_EXISTS
            assert name in await admin.list_topics()

            await admin.create_partitions({name: NewPartitions(5)})
            await wait_until("5 partitions with a leader", lambda: partitions_ready(admin, name, 5))
            described = (await admin.describe_topics([name]))[0]
            assert sorted(p["partition"] for p in described["partitions"]) == [0, 1, 2, 3, 4]
            assert all(len(p["replicas"]) == 1 and len(p["isr"]) == 1 for p in described["partitions"])

            answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
            resources = [r for answer in answers for r in answer.resources]
            assert len(resources) == 1 and resources[0][0] == 0, resources
            entries = {e[0]: e for e in resources[0][4]}
            assert len(entries) >= 20, f"describe_configs returned {len(entries)} configs; a topic has dozens"
            retention = entries["retention.ms"]
            assert retention[1] == "3600000" and retention[3] == CONFIG_SOURCE_DYNAMIC_TOPIC, retention
            cleanup = entries["cleanup.policy"]
            assert cleanup[1] == "delete" and cleanup[3] != CONFIG_SOURCE_DYNAMIC_TOPIC, cleanup

            deleted = await admin.delete_topics([name])
            assert [t[1] for t in deleted.topic_error_codes] == [0], deleted
            async def gone():
                return name not in await admin.list_topics()
            await wait_until("the topic to leave list_topics", gone)
            again = await admin.delete_topics([name])
            assert [t[1] for t in again.topic_error_codes] == [UNKNOWN_TOPIC_OR_PARTITION], again
        finally:
            await delete_topic_quietly(admin, name)
            await admin.close()

    run(scenario())


def test_admin_groups(bootstrap, name, run):
    """The admin client's group calls on a group whose one live member consumed and committed
    everything: list_consumer_groups lists it as a consumer group, describe_consumer_groups shows
    it Stable (consumer protocol, round-robin assignor) with the member and its client id, list_consumer_group_offsets shows the commits at
    the log end; after the member leaves the group is Empty."""

    async def scenario():
        partitions, records = 2, 20
        admin = await admin_client(bootstrap)
        producer = idempotent_producer(bootstrap)
        member = group_consumer(bootstrap, name, name)
        try:
            await create_topic(admin, name, partitions)
            await producer.start()
            await produce_keyed(producer, name, 0, records)
            await member.start()
            consumed = 0
            while consumed < records:
                batches = await member.getmany(timeout_ms=500)
                for tp, batch in batches.items():
                    consumed += len(batch)
                    await member.commit({tp: batch[-1].offset + 1})

            groups = await admin.list_consumer_groups()
            assert (name, "consumer") in [tuple(g[:2]) for g in groups], groups

            async def described():
                answers = await admin.describe_consumer_groups([name])
                return [g for answer in answers for g in answer.to_object()["groups"]]

            groups = await described()
            assert len(groups) == 1, groups
            group = groups[0]
            assert group["error_code"] == 0 and group["state"] == "Stable", group
            assert (group["protocol_type"], group["protocol"]) == ("consumer", "roundrobin"), group
            assert [m["client_id"] for m in group["members"]] == ["sluice-compat-aiokafka"], group

            offsets = await admin.list_consumer_group_offsets(name)
            ends = await log_end(member, name, partitions)
            assert {tp: meta.offset for tp, meta in offsets.items()} == ends

            await member.stop()

            async def empty():
                groups = await described()
                return len(groups) == 1 and groups[0]["state"] == "Empty" and not groups[0]["members"]

            await wait_until("the group to be Empty", empty)
        finally:
            await member.stop()
            await producer.stop()
            await delete_topic_quietly(admin, name)
            await admin.close()

    run(scenario())


def test_admin_cluster(bootstrap, run):
    """describe_cluster names one broker, at the bootstrap address, and a controller;
    describe_configs of that broker answers with its configs, log.retention.hours among them."""

    async def scenario():
        admin = await admin_client(bootstrap)
        try:
            cluster = await admin.describe_cluster()
            brokers = cluster["brokers"]
            assert len(brokers) == 1, cluster
            host, port = bootstrap.rsplit(":", 1)
            assert (brokers[0]["host"], brokers[0]["port"]) == (host, int(port)), cluster
            assert cluster["controller_id"] >= 0, cluster
            broker_id = brokers[0]["node_id"]
            answers = await admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, str(broker_id))])
            resources = [r for answer in answers for r in answer.resources]
            assert len(resources) == 1 and resources[0][0] == 0, resources
            names = {e[0] for e in resources[0][4]}
            assert "log.retention.hours" in names, sorted(names)[:20]
        finally:
            await admin.close()

    run(scenario())


def test_admin_configs_records_offsets(bootstrap, name, run):
    """The calls operators script: alter_configs sets retention.ms, which describe_configs then
    reports as a dynamic topic config; records with explicit timestamps one second apart,
    alternating between two partitions, are found by the consumer's offsets_for_times;
    delete_records moves partition 0's start to offset 5, which beginning_offsets and a consumer
    reading from the beginning then see."""

    async def scenario():
        partitions, records = 2, 40
        admin = await admin_client(bootstrap)
        producer = idempotent_producer(bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        try:
            await create_topic(admin, name, partitions)
            answers = await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, {"retention.ms": "7200000"})])
            altered = [r for answer in answers for r in answer.resources]
            assert [r[0] for r in altered] == [0], altered

            async def altered_visible():
                # Kafka applies an altered config through its metadata log, so a describe right
                # after the alter may still show the old value.
                described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name, {"retention.ms": None})])
                entries = [e for answer in described for r in answer.resources for e in r[4]]
                assert [e[0] for e in entries] == ["retention.ms"], entries
                return (entries[0][1], entries[0][3]) == ("7200000", CONFIG_SOURCE_DYNAMIC_TOPIC)

            await wait_until("retention.ms 7200000 from the topic's config", altered_visible)

            await producer.start()
            # An hour ago, to the second: inside the default retention, and not in the future.
            base_ms = (int(time.time()) - 3600) * 1000
            for i in range(records):
                await producer.send(name, str(i).encode(), key=str(i).encode(), partition=i % partitions,
                                    timestamp_ms=base_ms + i * 1000)
            await producer.flush()

            await consumer.start()
            tps = [TopicPartition(name, p) for p in range(partitions)]
            # Record 21 (partition 1, its offset 10) is partition 1's first at or after base + 20.5 s;
            # on partition 0 it is record 22, offset 11.
            found = await consumer.offsets_for_times({tp: base_ms + 20_500 for tp in tps})
            assert {tp.partition: (found[tp].offset, found[tp].timestamp) for tp in tps} == \
                {0: (11, base_ms + 22_000), 1: (10, base_ms + 21_000)}, found
            assert await consumer.end_offsets(tps) == {tps[0]: 20, tps[1]: 20}

            low = await admin.delete_records({tps[0]: RecordsToDelete(5)})
            assert low == {tps[0]: 5}, low
            assert await consumer.beginning_offsets(tps) == {tps[0]: 5, tps[1]: 0}
            consumer.assign([tps[0]])
            await consumer.seek_to_beginning(tps[0])
            first = await consumer.getone()
            assert (first.partition, first.offset, first.value) == (0, 5, b"10"), first
        finally:
            await consumer.stop()
            await producer.stop()
            await delete_topic_quietly(admin, name)
            await admin.close()

    run(scenario())


def test_transactions(bootstrap, name, run):
    """A transactional producer commits one transaction and aborts another; a read_committed
    consumer sees the committed record and not the aborted one."""

    async def scenario():
        admin = await admin_client(bootstrap)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=name, acks="all",
                                    enable_idempotence=True, client_id="sluice-compat-aiokafka")
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                                    enable_auto_commit=False)
        try:
            await create_topic(admin, name, 1)
            await producer.start()
            async with producer.transaction():
                await producer.send_and_wait(name, b"committed")
            await producer.begin_transaction()
            await producer.send_and_wait(name, b"aborted")
            await producer.abort_transaction()

            await consumer.start()
            tp = TopicPartition(name, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            values = []
            # The log: the committed record, its marker, the aborted record, its marker.
            while await consumer.position(tp) < 4:
                batches = await consumer.getmany(timeout_ms=500)
                values += [r.value for records in batches.values() for r in records]
            assert values == [b"committed"]
        finally:
            await consumer.stop()
            await producer.stop()
            await delete_topic_quietly(admin, name)
            await admin.close()

    run(scenario())
