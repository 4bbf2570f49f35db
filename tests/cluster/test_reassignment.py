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
import threading
import time
import uuid
from collections import defaultdict

import pytest

from conftest import Cluster, wait_until
from group_check import Member, finish_and_check_commits
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
    group = f"group-{topic}"
    seen, commits, lock = set(), defaultdict(list), threading.Lock()
    members = [Member(cluster.bootstrap(), group, topic, seen, commits, lock) for _ in range(2)]
    for member in members:
        member.start()
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


def kafka_tools_installed():
    """Whether `scripts/kafka.sh install` has put Kafka's jars in its cache (no download here)."""
    cache = os.environ.get("SLUICE_KAFKA_CACHE", os.path.expanduser("~/.cache/sluice"))
    return os.path.isdir(cache) and any(name.startswith("kafka-") for name in os.listdir(cache))


@pytest.mark.skipif(not kafka_tools_installed(), reason="Kafka's jars not installed (scripts/kafka.sh install)")
def test_kafkas_reassign_partitions_tool_moves_a_partition(cluster, tmp_path):
    """Goal: Apache Kafka's own `kafka-reassign-partitions` (4.x, run by scripts/kafka.sh)
    drives a move on Sluice: --execute starts it, --list shows nothing left once it is done,
    --verify reports it completed and clears the (absent) throttles without an error.
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

    assert "Successfully started partition reassignment" in tool("--reassignment-json-file", path, "--execute")
    wait_until(lambda: "No partition reassignments found" in tool("--list"), 60, "the moves to finish")
    verified = tool("--reassignment-json-file", path, "--verify")
    assert verified.count("is completed") == 2, verified
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
