"""Metadata membership with real broker processes: brokers outside `--voters` join as
observers (Raft learners), voters are added and removed at runtime (KIP-853's AddRaftVoter and
RemoveRaftVoter through `sluice cluster add-voter / remove-voter`), the metadata leader dies in
the middle of a voter change, and a voter and a non-voter are killed, and a new broker joins
through `--join` (no voter list) and takes over replicas — all while a confluent-kafka
idempotent acks=all producer writes, whose every acknowledged record must be read back once, in
per-key order, identical on every replica (workload.py)."""

import json
import subprocess
import time
import uuid

from confluent_kafka.admin import AdminClient

from conftest import Cluster, wait_until
from group_check import finish_and_check_commits, start_group
from test_reassignment import replica_sets, write_plan
from workload import KeyedProducer, check_history, check_replicas, read_everything

PARTITIONS = 6


def roles(quorum):
    return {member["id"]: member["role"] for member in quorum["members"]}


def voters(quorum):
    return sorted(i for i, role in roles(quorum).items() if role in ("leader", "voter"))


def wait_quorum(cluster, check, what, timeout_s=60):
    """Waits until `check(quorum)` holds for the quorum as a running broker reports it."""
    seen = {}

    def holds():
        try:
            seen["quorum"] = cluster.quorum()
        except AssertionError:
            return False
        return check(seen["quorum"])
    wait_until(holds, timeout_s, f"{what} (last quorum seen: {seen.get('quorum')})", interval_s=0.3)
    return seen["quorum"]


def test_five_brokers_three_voters_change_voters_under_load_and_survive_kills(tmp_path):
    """Goal: a cluster of 5 brokers runs 3 metadata voters; the 2 others join by themselves as
    observers and take replicas; a voter is added and another removed at runtime, the removed
    one keeps serving; the metadata leader SIGKILLed while a voter removal is in flight leaves
    one agreed membership once the removal is asked again; a non-voter and a voter SIGKILLed
    lose nothing. Method: as the goal says, with an idempotent acks=all producer running from
    the first step to the last; then every acknowledged record is read back and every
    replica's batches compared."""
    cluster = Cluster(str(tmp_path), size=5, voter_count=3)
    cluster.start()
    try:
        quorum = wait_quorum(cluster, lambda q: len(q["members"]) == 5, "5 members in the quorum")
        assert voters(quorum) == [1, 2, 3], quorum
        assert {roles(quorum)[4], roles(quorum)[5]} == {"observer"}, quorum

        topic = f"members-{uuid.uuid4().hex[:8]}"
        cluster.create_topic(topic, PARTITIONS)
        hosts = {broker for _, replicas, _ in cluster.partitions(topic).values() for broker in replicas}
        assert {4, 5} <= hosts, f"the observers are placement targets: replicas on {sorted(hosts)}"
        producer = KeyedProducer(cluster.bootstrap(), topic).start()
        producer.wait_acks(300)

        # Grow the voters: an observer becomes a voter.
        out = cluster.sluice("cluster", "add-voter", "4")
        assert "broker 4 is a metadata voter" in out, out
        assert voters(cluster.quorum()) == [1, 2, 3, 4]
        producer.wait_acks(len(producer.acked()) + 200)

        # Remove a voter while the metadata leader is SIGKILLed, then ask again until done.
        leader = cluster.quorum()["leader"]
        removed = next(v for v in (1, 2, 3, 4) if v != leader)
        change = subprocess.Popen([cluster_cli(), "-b", cluster.bootstrap(), "cluster", "remove-voter", str(removed)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(0.05)
        cluster.brokers[leader].kill()
        change.communicate(timeout=120)

        def removal_done():
            done = subprocess.run([cluster_cli(), "-b", cluster.bootstrap(exclude=[leader]), "cluster",
                                   "remove-voter", str(removed)], capture_output=True, text=True, timeout=90)
            # Done now, or already done before (VOTER_NOT_FOUND: it no longer votes).
            return done.returncode == 0 or "not a voter" in done.stdout + done.stderr
        wait_until(removal_done, 120, f"removal of voter {removed} after the leader's death", interval_s=1)
        expected = sorted({1, 2, 3, 4} - {removed})
        wait_quorum(cluster, lambda q: voters(q) == expected and q["leader"] != leader,
                    f"voters {expected} with a new leader")
        producer.wait_acks(len(producer.acked()) + 200, timeout_s=90)

        # The old leader returns as a voter; the removed voter still serves, as an observer.
        cluster.brokers[leader].start()
        cluster.brokers[leader].wait_ready()
        quorum = wait_quorum(cluster, lambda q: roles(q).get(removed) == "observer" and len(q["members"]) == 5,
                             f"broker {removed} an observer")
        assert voters(quorum) == expected, quorum
        assert cluster.brokers[removed].is_ready()
        cluster.wait_isr_full(topic)

        # A non-voter and then a voter die and come back.
        for victim in (5, next(v for v in expected if v != cluster.quorum()["leader"])):
            cluster.brokers[victim].kill()
            producer.wait_acks(len(producer.acked()) + 200, timeout_s=90)
            cluster.brokers[victim].start()
            cluster.brokers[victim].wait_ready()
            cluster.wait_isr_full(topic)

        producer.wait_acks(len(producer.acked()) + 200)
        producer.stop()
        assert not producer.failed(), f"{len(producer.failed())} records failed: {producer.failed()[:3]}"
        cluster.wait_isr_full(topic)
        records, ends = read_everything(cluster.bootstrap(), topic, PARTITIONS)
        summary = check_history(producer.acked(), records)
        check_replicas(cluster, topic, PARTITIONS, ends)
        print(f"membership: {summary}")
    finally:
        codes = cluster.stop()
        print(cluster.logs())
    assert all(code == 0 for code in codes.values()), f"unclean exits {codes}"


def cluster_id(broker):
    """The cluster id `broker` gives in its Metadata answers."""
    return AdminClient({"bootstrap.servers": broker.address}).list_topics(timeout=10).cluster_id


def test_grow_three_to_four_with_join_and_reassign_onto_the_new_broker_under_load(tmp_path):
    """Goal: the issue's scale-out drill. A 4th broker started with `--join` naming only a
    non-voter's Raft address (no `--voters`) joins the running metadata group as an observer,
    reports the cluster's id, and a topic is reassigned onto it while an idempotent acks=all
    producer and a consumer group run: nothing acknowledged is lost or duplicated, no delivery
    fails (the clients see only retriable errors, which librdkafka retries), the group never
    loses a commit, and afterwards the replicas are exactly the plan's and identical. Restarted,
    the new broker keeps the cluster id it adopted.
    Method: 3 brokers, 2 of them voters (broker 3 an observer); a topic of 3 partitions at
    replication factor 3 on {1, 2, 3}; `sluice topic reassign --generate --brokers 2,3,4`, then
    `--execute --wait` and `--verify`; everything read back from offset 0 and the replicas
    compared from their segment files."""
    cluster = Cluster(str(tmp_path), size=3, voter_count=2)
    cluster.start()
    try:
        partitions = 3
        topic = f"grown-{uuid.uuid4().hex[:8]}"
        cluster.create_topic(topic, partitions, replication_factor=3)
        producer = KeyedProducer(cluster.bootstrap(), topic, rate=300).start()
        group, members, seen, commits, lock = start_group(cluster.bootstrap(), topic, 2)
        producer.wait_acks(300)
        wait_until(lambda: sum(len(c) for c in commits.values()) >= 100, 60, "the group to commit")

        observer = cluster.brokers[3]
        assert roles(cluster.quorum())[3] == "observer"
        added = cluster.add_broker(join=observer.raft_address)
        quorum = wait_quorum(cluster, lambda q: roles(q).get(4) == "observer", "broker 4 an observer")
        assert voters(quorum) == [1, 2], quorum
        assert cluster_id(added) == cluster_id(cluster.brokers[1]), "the joined broker took the cluster's id"
        status = cluster.sluice("cluster", "status")
        assert "\nbrokers 4\n" in status, f"broker 4 registered and live: {status}"

        with lock:
            committed_before = {p: max(o for _, o in entries) for p, entries in commits.items()}
        plan = json.loads(cluster.sluice("topic", "reassign", "--generate", "--topics", topic, "--brokers", "2,3,4"))
        assert all(sorted(p["replicas"]) == [2, 3, 4] for p in plan["partitions"]), plan
        plan_path = write_plan(tmp_path, plan)
        print(cluster.sluice("topic", "reassign", "--execute", "--plan", plan_path, "--wait", timeout_s=120))
        verified = cluster.sluice("topic", "reassign", "--verify", "--plan", plan_path)
        assert verified.count(": done") == partitions, verified
        assert set(map(tuple, replica_sets(cluster, topic).values())) == {(2, 3, 4)}
        cluster.wait_isr_full(topic)
        producer.wait_acks(len(producer.acked()) + 300)

        # A later start ignores --join (crates/meta/tests/join.rs shows it starts with the
        # member named gone) and keeps the cluster id it adopted.
        added.stop()
        added.start()
        added.wait_ready()
        assert cluster_id(added) == cluster_id(cluster.brokers[1])
        cluster.wait_isr_full(topic)
        producer.wait_acks(len(producer.acked()) + 300, timeout_s=90)

        finish_and_check_commits(cluster, producer, members, seen, lock, commits, group, topic,
                                 committed_before, "the reassignment onto the new broker")
        cluster.wait_isr_full(topic)
        records, ends = read_everything(cluster.bootstrap(), topic, partitions)
        summary = check_history(producer.acked(), records)
        # Broker 1 left the topic: only 2, 3 and 4 hold a copy, all identical.
        check_replicas(cluster, topic, partitions, ends, replication_factor=3)
        print(f"grow with --join: {summary}")
    finally:
        codes = cluster.stop()
        print(cluster.logs())
    assert all(code == 0 for code in codes.values()), f"unclean exits {codes}"


def cluster_cli():
    import os
    from conftest import CLI_DEFAULT
    return os.environ.get("SLUICE_CLI_BIN", CLI_DEFAULT)
