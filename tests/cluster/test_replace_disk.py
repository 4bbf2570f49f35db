"""Replacing a dead broker's disk (issue 11 "Operating a cluster", docs/operations.md "Replace a
dead machine"): a broker SIGKILLed, its data directory deleted (a new, empty disk), and started
again with the same id and flags rebuilds its replicas from the leaders and rejoins the ISRs,
while a confluent-kafka idempotent acks=all producer writes. A non-voter does so by itself; a
metadata voter first refuses to start (it has lost its Raft vote and log, and voting again could
lose committed metadata), is demoted with `sluice cluster remove-voter`, rejoins as an
observer, and is made a voter again with `sluice cluster add-voter`. Every acknowledged record
is read back once, and every replica — the rebuilt ones included — holds the same batches
(offsets, leader epochs, CRCs) as the leader (workload.py)."""

import os
import shutil
import subprocess
import time
import uuid

from conftest import Cluster, wait_until
from test_membership import roles, voters, wait_quorum
from test_replication import finish_and_check, report
from workload import KeyedProducer

PARTITIONS = 4
REFUSAL_TIMEOUT_S = 30


def replace_disk(broker):
    """SIGKILL, then an empty data directory in place of the old one."""
    broker.kill()
    shutil.rmtree(broker.data_dir)
    os.makedirs(broker.data_dir)


def finish(cluster, topic, producer):
    """Stops the producer after more acknowledgements; checks nothing acknowledged was lost and
    every replica is identical. Returns the history summary."""
    producer.wait_acks(len(producer.acked()) + 300, timeout_s=90)
    return finish_and_check(cluster, producer, topic, PARTITIONS)


def replicas_on(cluster, topic, node_id):
    return sorted(p for p, (_, replicas, _) in cluster.partitions(topic).items() if node_id in replicas)


def test_a_non_voter_with_an_empty_disk_rebuilds_its_replicas_and_rejoins_every_isr(tmp_path):
    """Method: 4 brokers, voters 1-3 and broker 4 an observer; a topic of 4 partitions at
    replication factor 3 with replicas on broker 4; broker 4 SIGKILLed and its data directory
    emptied while the producer writes; started again with the same flags, it must rejoin the
    metadata group, be in every ISR again and hold the leaders' batches."""
    cluster = Cluster(str(tmp_path), size=4, voter_count=3)
    cluster.start()
    try:
        wait_quorum(cluster, lambda q: len(q["members"]) == 4, "4 members in the quorum")
        topic = f"disk-{uuid.uuid4().hex[:8]}"
        cluster.create_topic(topic, PARTITIONS)
        hosted = replicas_on(cluster, topic, 4)
        assert hosted, "broker 4 holds no replica: the test would prove nothing"
        producer = KeyedProducer(cluster.bootstrap(), topic).start()
        producer.wait_acks(500)

        victim = cluster.brokers[4]
        replace_disk(victim)
        producer.wait_acks(len(producer.acked()) + 300, timeout_s=90)

        started = time.monotonic()
        victim.start()
        victim.wait_ready()
        cluster.wait_isr_full(topic, timeout_s=90)
        rebuilt_s = time.monotonic() - started
        assert roles(cluster.quorum())[4] == "observer"
        summary = finish(cluster, topic, producer)
        for partition in hosted:
            assert os.path.isdir(os.path.join(victim.data_dir, "logs", f"{topic}-{partition}"))
        report("replace_disk_non_voter", {"replicas": len(hosted), "rebuilt_s": round(rebuilt_s, 2), **summary})
    finally:
        codes = cluster.stop()
        print(cluster.logs())
    assert all(code == 0 for code in codes.values()), f"unclean exits {codes}"


def test_a_voter_with_an_empty_disk_refuses_until_removed_then_rebuilds_and_votes_again(cluster):
    """Method: 3 brokers, all voters; a topic of 4 partitions at replication factor 3 under the
    producer; a voter other than the metadata leader SIGKILLed and its data directory emptied.
    Started again it must exit 1 with one line naming the operator's steps; after
    `sluice cluster remove-voter` it starts as an observer, rebuilds its replicas and rejoins
    every ISR; after `sluice cluster add-voter` it is a voter again."""
    topic = f"disk-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, PARTITIONS)
    producer = KeyedProducer(cluster.bootstrap(), topic).start()
    producer.wait_acks(500)

    leader = cluster.quorum()["leader"]
    victim_id = next(v for v in (3, 2, 1) if v != leader)
    victim = cluster.brokers[victim_id]
    replace_disk(victim)
    producer.wait_acks(len(producer.acked()) + 300, timeout_s=90)

    log_size = os.path.getsize(victim.log_path)
    victim.start()
    try:
        code = victim.process.wait(timeout=REFUSAL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"a voter with an empty disk started (log {victim.log_path})") from None
    victim.process = None
    with open(victim.log_path, encoding="utf-8", errors="replace") as log:
        log.seek(log_size)
        refusal = [line for line in log.read().splitlines() if line.startswith("sluice-broker: ")]
    assert code == 1, f"exit {code}: {refusal}"
    assert len(refusal) == 1, refusal
    assert f"sluice cluster remove-voter {victim_id}" in refusal[0], refusal
    assert f"sluice cluster add-voter {victim_id}" in refusal[0], refusal
    assert voters(cluster.quorum()) == [1, 2, 3], "the refusal changed nothing"

    cluster.sluice("cluster", "remove-voter", str(victim_id))
    wait_quorum(cluster, lambda q: voters(q) == sorted({1, 2, 3} - {victim_id}), f"voter {victim_id} removed")

    started = time.monotonic()
    victim.start()
    victim.wait_ready()
    wait_quorum(cluster, lambda q: roles(q).get(victim_id) == "observer", f"broker {victim_id} an observer")
    cluster.wait_isr_full(topic, timeout_s=90)
    rebuilt_s = time.monotonic() - started

    out = cluster.sluice("cluster", "add-voter", str(victim_id))
    assert f"broker {victim_id} is a metadata voter" in out, out
    wait_quorum(cluster, lambda q: voters(q) == [1, 2, 3], "three voters again")

    summary = finish(cluster, topic, producer)
    wait_until(lambda: all(victim_id in isr for _, _, isr in cluster.partitions(topic).values()), 60,
               f"broker {victim_id} in every ISR")
    report("replace_disk_voter", {"victim": victim_id, "rebuilt_s": round(rebuilt_s, 2), **summary})
