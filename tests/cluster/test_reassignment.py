"""Partition reassignment (KIP-455) and decommission under load: four `sluice-broker`
processes, a confluent-kafka (librdkafka) idempotent acks=all producer writing throughout, the
moves driven by the `sluice` CLI with Kafka's JSON plans.

Goal: moving replicas between brokers — a reassignment, then a decommission — loses no
acknowledged record, duplicates none, the producer sees no failed delivery (only retriable
errors, which librdkafka retries), a consumer group reading and committing throughout sees
every acknowledged record and never loses a commit (its `__consumer_offsets` partitions, and
maybe its coordinator, move too), and afterwards each partition's replicas are exactly the
plan's, every replica holds the same batches as the others below the high watermark, and the
brokers that left hold no copy.
"""

import json
import os
import time
import uuid

import pytest

from conftest import Cluster, wait_until
from group_check import finish_and_check_commits, start_group
from test_replication import report
from workload import KeyedProducer, check_history, check_replicas, read_everything

PARTITIONS = 3


@pytest.fixture
def cluster4(tmp_path):
    """Four brokers, the first three metadata voters: room to decommission one while
    `__consumer_offsets` keeps its replication factor of three."""
    instance = Cluster(str(tmp_path), size=4, voter_count=3)
    instance.start()
    yield instance
    codes = instance.stop()
    print(instance.logs())
    assert all(code == 0 for code in codes.values()), f"unclean exits {codes}"


def write_plan(directory, plan):
    path = os.path.join(directory, f"plan-{uuid.uuid4().hex[:6]}.json")
    with open(path, "w") as out:
        json.dump(plan, out)
    return path


def replica_sets(cluster, topic):
    return {p: sorted(replicas) for p, (_, replicas, _) in cluster.partitions(topic).items()}


def test_reassign_and_decommission_under_load_lose_nothing(cluster4, tmp_path):
    """Method: a topic of 3 partitions at replication factor 2 (min.insync.replicas=2) is first
    moved onto brokers {1, 2} with `topic reassign --execute --wait`; an idempotent acks=all
    producer then writes 300 records/s while `topic reassign --generate --brokers 2,3` plans the
    move to {2, 3}, `--execute --wait` runs it and `--verify` checks it; then `cluster
    decommission 2` moves every replica (this topic's and `__consumer_offsets`') off broker 2
    and removes its metadata vote.
    Finally everything is read back from offset 0 and the replicas are compared batch by batch
    from their segment files."""
    cluster = cluster4
    topic = f"moved-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, PARTITIONS, replication_factor=2)

    onto_1_2 = {"version": 1, "partitions": [
        {"topic": topic, "partition": p, "replicas": [1, 2] if p % 2 == 0 else [2, 1]} for p in range(PARTITIONS)]}
    cluster.sluice("topic", "reassign", "--execute", "--plan", write_plan(tmp_path, onto_1_2), "--wait",
                   timeout_s=120)
    assert set(map(tuple, replica_sets(cluster, topic).values())) == {(1, 2)}
    cluster.wait_isr_full(topic)

    producer = KeyedProducer(cluster.bootstrap(), topic, rate=300).start()
    group, members, seen, commits, lock = start_group(cluster.bootstrap(), topic, 2)
    producer.wait_acks(300)
    wait_until(lambda: sum(len(c) for c in commits.values()) >= 100, 60, "the group to commit")

    started = time.monotonic()
    plan = json.loads(cluster.sluice("topic", "reassign", "--generate", "--topics", topic, "--brokers", "2,3"))
    assert plan["version"] == 1 and len(plan["partitions"]) == PARTITIONS
    assert all(sorted(p["replicas"]) == [2, 3] for p in plan["partitions"]), plan
    plan_path = write_plan(tmp_path, plan)
    out = cluster.sluice("topic", "reassign", "--execute", "--plan", plan_path, "--wait", timeout_s=120)
    moved_s = time.monotonic() - started
    print(out)
    verified = cluster.sluice("topic", "reassign", "--verify", "--plan", plan_path)
    assert verified.count(": done") == PARTITIONS, verified
    assert set(map(tuple, replica_sets(cluster, topic).values())) == {(2, 3)}
    producer.wait_acks(len(producer.acked()) + 300)

    with lock:
        committed_before = {p: max(o for _, o in entries) for p, entries in commits.items()}
    started = time.monotonic()
    out = cluster.sluice("cluster", "decommission", "2", timeout_s=180)
    decommissioned_s = time.monotonic() - started
    print(out)
    assert "holds no replicas" in out, out
    # Broker 2 was a metadata voter: the decommission took its vote away (it stays an observer).
    assert "broker 2 is no longer a metadata voter" in out, out
    roles = {member["id"]: member["role"] for member in cluster.quorum()["members"]}
    assert roles.get(2) == "observer" and sorted(i for i, r in roles.items() if r != "observer") == [1, 3], roles
    for partition, replicas in replica_sets(cluster, topic).items():
        assert 2 not in replicas and len(replicas) == 2, (partition, replicas)
    offsets = replica_sets(cluster, "__consumer_offsets")
    assert offsets and all(2 not in replicas for replicas in offsets.values()), offsets
    producer.wait_acks(len(producer.acked()) + 300)

    acked = finish_and_check_commits(cluster, producer, members, seen, lock, commits, group, topic,
                                     committed_before, "the decommission")
    cluster.wait_isr_full(topic)
    records, ends = read_everything(cluster.bootstrap(), topic, PARTITIONS)
    summary = check_history(producer.acked(), records)
    # Every replica in the metadata holds the same batches; brokers that left hold no copy
    # (check_replicas counts the partition directories on every broker).
    check_replicas(cluster, topic, PARTITIONS, ends, replication_factor=2)
    report("reassignment", {"reassign_s": round(moved_s, 2), "decommission_s": round(decommissioned_s, 2),
                            "offsets_partitions_moved": out.count(": started") - PARTITIONS,
                            "commit_errors": sum(m.commit_errors for m in members), **summary})


def test_rebalance_evens_replicas_and_leaders_under_load(cluster4, tmp_path):
    """Goal: `sluice cluster rebalance` spreads a cluster crowded onto three brokers over all
    four (replicas per broker within one, preferred leaders within one, and the elected leaders
    are the preferred ones) while an idempotent acks=all producer writes, losing and
    duplicating nothing; run again, it finds nothing to change.
    Method: a topic of 6 partitions at replication factor 2, every partition moved onto brokers
    {1, 2, 3} with broker 1 first; a `--dry-run --json` plan, the real run, a second dry run;
    then the leaders from the metadata, everything read back from offset 0 and the replicas
    compared from their segment files."""
    cluster = cluster4
    topic = f"crowded-{uuid.uuid4().hex[:8]}"
    partitions = 6
    cluster.create_topic(topic, partitions, replication_factor=2)
    crowded = {"version": 1, "partitions": [
        {"topic": topic, "partition": p, "replicas": [1, 2 + p % 2]} for p in range(partitions)]}
    cluster.sluice("topic", "reassign", "--execute", "--plan", write_plan(tmp_path, crowded), "--wait",
                   timeout_s=120)
    cluster.wait_isr_full(topic)
    producer = KeyedProducer(cluster.bootstrap(), topic, rate=300).start()
    producer.wait_acks(300)

    planned = json.loads(cluster.sluice("cluster", "rebalance", "--dry-run", "--json"))
    assert planned["dry_run"] and planned["moves"], planned
    assert planned["before"]["4"]["replicas"] == 0 and planned["after"]["4"]["replicas"] > 0, planned
    started = time.monotonic()
    out = cluster.sluice("cluster", "rebalance", "--timeout", "180", timeout_s=200)
    rebalanced_s = time.monotonic() - started
    print(out)
    assert "rebalanced:" in out, out
    again = json.loads(cluster.sluice("cluster", "rebalance", "--dry-run", "--json"))
    assert again["moves"] == [], again
    loads = again["before"]
    for measure in ("replicas", "leaders"):
        counts = [load[measure] for load in loads.values()]
        assert max(counts) - min(counts) <= 1, (measure, loads)
    cluster.wait_isr_full(topic)
    wait_until(lambda: all(leader == replicas[0] for leader, replicas, _ in cluster.partitions(topic).values()),
               60, "the preferred replicas to lead")
    producer.wait_acks(len(producer.acked()) + 300)
    producer.stop()
    assert not producer.failed(), producer.failed()[:5]
    records, ends = read_everything(cluster.bootstrap(), topic, partitions)
    summary = check_history(producer.acked(), records)
    check_replicas(cluster, topic, partitions, ends, replication_factor=2)
    report("rebalance", {"rebalance_s": round(rebalanced_s, 2), "partitions_changed": len(planned["moves"]),
                         **summary})


def broker_configs(cluster, broker):
    """The replication throttle rates `broker` describes: name -> (value, source name)."""
    from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType
    admin = cluster.admin()  # kept alive until the result is in
    resource = ConfigResource(ResourceType.BROKER, str(broker))
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: (entry.value, ConfigSource(entry.source).name) for name, entry in entries.items()
            if "throttled.rate" in name}


def topic_configs(cluster, topic):
    """A topic's configs as DescribeConfigs answers them: name -> value."""
    from confluent_kafka.admin import ConfigResource, ResourceType
    admin = cluster.admin()
    resource = ConfigResource(ResourceType.TOPIC, topic)
    return {name: entry.value for name, entry in admin.describe_configs([resource])[resource].result(timeout=30).items()}


def throttled_bytes(broker, side):
    """`sluice_replication_throttled_bytes_total{side}` of `broker`."""
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    prefix = f'sluice_replication_throttled_bytes_total{{side="{side}"}} '
    return sum(float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix))


def test_the_replication_throttle_caps_a_copy_until_it_is_removed(cluster, tmp_path):
    """Goal: `sluice topic reassign --execute --throttle` caps the copy of a new replica (Kafka's
    KIP-73: leader.replication.throttled.rate / follower.replication.throttled.rate and the
    topics' throttled-replica lists), counts the bytes on both sides, and the copy finishes
    once the throttle is removed (here with confluent-kafka's incremental_alter_configs, as
    `kafka-configs --delete-config` does); `--verify` then removes the topic lists. The copy
    is exact and nothing acknowledged is lost.
    Method: one partition on broker 1 only, 6 MB of records in it; a plan adding broker 2 with
    a 200 kB/s throttle. The rate's window lets the first ~2 MB through at once (the first 10 s
    of quota, as Kafka's), so the remaining 4 MB need ~20 s: the move cannot be done 5 s after
    it started, where an unthrottled copy of 6 MB takes well under a second. (A slower machine
    only makes the copy slower: the check cannot pass by luck of timing in the wrong way.)"""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType
    topic = f"throttled-{uuid.uuid4().hex[:8]}"
    admin = cluster.admin()
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=-1, replica_assignment=[[1]],
                                  config={"min.insync.replicas": "1"})])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": cluster.bootstrap(), "acks": "all", "linger.ms": 20})
    acked = []
    for i in range(6000):
        producer.produce(topic, key=str(i % 16).encode(), value=f"{i:08d}".encode() + b"x" * 1016,
                         on_delivery=lambda err, msg: acked.append(msg.offset()) if err is None else None)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert len(acked) == 6000

    plan = {"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [1, 2]}]}
    path = write_plan(tmp_path, plan)
    started = time.monotonic()
    out = cluster.sluice("topic", "reassign", "--execute", "--plan", path, "--throttle", "200000")
    assert "throttle: 200000 B/s on brokers [1, 2]" in out, out
    rates = broker_configs(cluster, 2)
    assert rates["follower.replication.throttled.rate"] == ("200000", "DYNAMIC_BROKER_CONFIG"), rates
    lists = topic_configs(cluster, topic)
    assert lists["leader.replication.throttled.replicas"] == "0:1", lists
    assert lists["follower.replication.throttled.replicas"] == "0:2", lists
    wait_until(lambda: time.monotonic() - started >= 5, 10, "5 s of copying")
    assert replica_sets(cluster, topic) == {0: [1, 2]}
    verify = subprocess_sluice(cluster, "topic", "reassign", "--verify", "--plan", path)
    assert verify.returncode == 1 and "moving" in verify.stdout, verify.stdout
    assert throttled_bytes(cluster.brokers[2], "follower") > 0
    assert throttled_bytes(cluster.brokers[1], "leader") > 0
    copied = throttled_bytes(cluster.brokers[2], "follower")
    assert copied < 5_000_000, f"{copied} bytes copied in 5 s under a 200 kB/s throttle"

    deletes = [ConfigEntry(name, None, incremental_operation=AlterConfigOpType.DELETE)
               for name in ("leader.replication.throttled.rate", "follower.replication.throttled.rate")]
    for broker in (1, 2):
        resource = ConfigResource(ResourceType.BROKER, str(broker), incremental_configs=deletes)
        admin.incremental_alter_configs([resource])[resource].result(timeout=30)
    assert broker_configs(cluster, 2)["follower.replication.throttled.rate"][1] == "DEFAULT_CONFIG"
    cluster.sluice("topic", "reassign", "--verify", "--plan", path, "--wait", "--timeout", "60", timeout_s=90)
    lists = topic_configs(cluster, topic)
    assert not lists["leader.replication.throttled.replicas"] and not lists["follower.replication.throttled.replicas"]
    cluster.wait_isr_full(topic)
    records, ends = read_everything(cluster.bootstrap(), topic, 1)
    assert [offset for offset, _, _ in records[0]] == sorted(acked)
    check_replicas(cluster, topic, 1, ends, replication_factor=2)


def subprocess_sluice(cluster, *args):
    """Runs the `sluice` CLI; the finished process (any exit code)."""
    import subprocess
    from conftest import CLI_DEFAULT
    return subprocess.run([os.environ.get("SLUICE_CLI_BIN", CLI_DEFAULT), "-b", cluster.bootstrap(), *args],
                          capture_output=True, text=True, timeout=60)


def kafka_tools_installed():
    """Whether `scripts/kafka.sh install` has put Kafka's jars in its cache (no download here)."""
    cache = os.environ.get("SLUICE_KAFKA_CACHE", os.path.expanduser("~/.cache/sluice"))
    return os.path.isdir(cache) and any(name.startswith("kafka-") for name in os.listdir(cache))


@pytest.mark.skipif(not kafka_tools_installed(), reason="Kafka's jars not installed (scripts/kafka.sh install)")
def test_kafkas_reassign_partitions_tool_moves_a_partition(cluster, tmp_path):
    """Goal: Apache Kafka's own `kafka-reassign-partitions` (4.x, run by scripts/kafka.sh)
    drives a move on Sluice: --execute --throttle starts it and sets the replication throttle
    (the broker rates and the topic's throttled-replica lists, as DescribeConfigs shows), --list
    shows nothing left once it is done, --verify reports it completed and removes the throttle.
    Method: a topic of 2 partitions at replication factor 2 with records in it; a plan that
    moves each partition to another pair of brokers; the tool's three actions, then the
    replicas from the metadata and the segment files compared."""
    topic = f"java-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, 2, replication_factor=2, configs={"min.insync.replicas": "1"})
    producer = KeyedProducer(cluster.bootstrap(), topic, rate=500).start()
    producer.wait_acks(500)
    producer.stop()
    current = replica_sets(cluster, topic)
    brokers = {1, 2, 3}
    # Each partition swaps one replica for the broker it lacks.
    plan = {"version": 1, "partitions": [
        {"topic": topic, "partition": p, "replicas": sorted(brokers - {replicas[0]})} for p, replicas in current.items()]}
    path = write_plan(tmp_path, plan)
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "kafka.sh")
    bootstrap = cluster.brokers[1].address

    def tool(*args):
        import subprocess
        done = subprocess.run(["bash", script, "tool", "kafka-reassign-partitions", "--bootstrap-server", bootstrap,
                               *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{args}: exit {done.returncode}: {done.stdout}{done.stderr}"
        return done.stdout

    started = tool("--reassignment-json-file", path, "--execute", "--throttle", "50000000")
    assert "Successfully started partition reassignment" in started, started
    assert "throttle limit was set to 50000000" in started, started
    rates = broker_configs(cluster, 1)
    assert rates["leader.replication.throttled.rate"] == ("50000000", "DYNAMIC_BROKER_CONFIG"), rates
    assert rates["follower.replication.throttled.rate"] == ("50000000", "DYNAMIC_BROKER_CONFIG"), rates
    lists = topic_configs(cluster, topic)
    assert lists["leader.replication.throttled.replicas"] and lists["follower.replication.throttled.replicas"], lists
    wait_until(lambda: "No partition reassignments found" in tool("--list"), 60, "the moves to finish")
    verified = tool("--reassignment-json-file", path, "--verify")
    assert verified.count("is completed") == 2, verified
    for broker in (1, 2, 3):
        rates = broker_configs(cluster, broker)
        assert rates["leader.replication.throttled.rate"] == (str(2**63 - 1), "DEFAULT_CONFIG"), (broker, rates)
    assert not topic_configs(cluster, topic)["leader.replication.throttled.replicas"]
    assert replica_sets(cluster, topic) == {p["partition"]: p["replicas"] for p in plan["partitions"]}
    cluster.wait_isr_full(topic)
    records, ends = read_everything(cluster.bootstrap(), topic, 2)
    check_history(producer.acked(), records)
    check_replicas(cluster, topic, 2, ends, replication_factor=2)


def test_create_topic_with_an_explicit_replica_assignment(cluster):
    """Goal: CreateTopics with `assignments` (confluent-kafka's `replica_assignment`) places
    each partition on exactly the brokers given, in the order given (the first one leads), and
    refuses an assignment naming an unknown broker with INVALID_REPLICA_ASSIGNMENT; CreatePartitions
    with an assignment places the added partition likewise.
    Method: three brokers; [[3, 1], [2, 3], [1, 2]]; the metadata's replicas and leaders; a
    records round trip; a fourth partition on [2, 1]; then a topic on [[1, 9]]."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic
    topic = f"assigned-{uuid.uuid4().hex[:8]}"
    assignment = [[3, 1], [2, 3], [1, 2]]
    admin = cluster.admin()
    new = NewTopic(topic, num_partitions=len(assignment), replication_factor=-1, replica_assignment=assignment,
                   config={"min.insync.replicas": "2"})
    admin.create_topics([new])[topic].result(timeout=30)
    cluster.wait_isr_full(topic)
    described = cluster.partitions(topic)
    assert {p: replicas for p, (_, replicas, _) in described.items()} == dict(enumerate(assignment)), described
    assert {p: leader for p, (leader, _, _) in described.items()} == {0: 3, 1: 2, 2: 1}, described
    producer = KeyedProducer(cluster.bootstrap(), topic, rate=500).start()
    producer.wait_acks(300)
    producer.stop()
    records, _ = read_everything(cluster.bootstrap(), topic, len(assignment))
    check_history(producer.acked(), records)
    from confluent_kafka.admin import NewPartitions
    grown = NewPartitions(topic, new_total_count=4, replica_assignment=[[2, 1]])
    admin.create_partitions([grown])[topic].result(timeout=30)
    cluster.wait_isr_full(topic)
    assert cluster.partitions(topic)[3][1] == [2, 1], cluster.partitions(topic)
    bad = NewTopic(f"{topic}-bad", num_partitions=1, replication_factor=-1, replica_assignment=[[1, 9]])
    refused = admin.create_topics([bad])[bad.topic]
    with pytest.raises(KafkaException) as error:
        refused.result(timeout=30)
    assert error.value.args[0].code() == 39, error.value  # INVALID_REPLICA_ASSIGNMENT
