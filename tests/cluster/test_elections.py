"""Leader elections asked for by an operator (Kafka's ElectLeaders, through confluent-kafka's
AdminClient.elect_leaders) and unclean elections (`unclean.leader.election.enable`), on three
real `sluice-broker` processes.

The unclean scenario keeps the metadata quorum (all three brokers are voters): a topic at
replication factor 2 lives on brokers A and B; the third broker only votes. B is SIGKILLed, so
the ISR shrinks to A; records are written to A alone; A is SIGKILLed (the quorum is lost for a
moment); B is restarted (quorum back): A is fenced, and the partition is offline — its only ISR
member is dead and B is out of sync. Only an unclean election brings it back, losing what only A
had.
"""

import time
import uuid

import pytest
from confluent_kafka import ElectionType, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

from conftest import wait_until
from workload import check_replicas, read_everything

# Auto rebalance off, so only the API moves leaderships back; a short lag time, so a dead
# follower leaves the ISR quickly.
FLAGS = ("--auto-leader-rebalance-enable", "false", "--replica-lag-time-max-ms", "2000")


def topic_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def elect(cluster, kind, topic, partition):
    """Runs one ElectLeaders call; returns the partition's KafkaError, or None when elected."""
    admin = cluster.admin()
    future = admin.elect_leaders(kind, [TopicPartition(topic, partition)])
    try:
        results = future.result(timeout=30)
    except KafkaException as error:
        return error.args[0]
    return results[TopicPartition(topic, partition)]


def produce(bootstrap, topic, count, prefix, acks="all"):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "enable.idempotence": False,
                         "message.timeout.ms": 30000, "topic.metadata.refresh.interval.ms": 500})
    errors = []
    for i in range(count):
        producer.produce(topic, key="k", value=f"{prefix}:{i}", partition=0,
                         on_delivery=lambda error, message: errors.append(error))
    assert producer.flush(60) == 0
    return errors


@pytest.mark.cluster_args(*FLAGS)
def test_elect_leaders_moves_a_leadership_back_to_the_preferred_replica(cluster):
    """Goal: ElectLeaders (preferred) gives a partition back to its first replica once that
    replica is in sync again, and answers ELECTION_NOT_NEEDED when it already leads.
    Method: SIGKILL the leader of partition 0 (its preferred replica), wait for another leader,
    restart it and wait for a full ISR (auto rebalance is off, so it does not lead again by
    itself); then elect, twice."""
    topic = topic_name("preferred")
    cluster.create_topic(topic, 3)
    leader, replicas, _ = cluster.partitions(topic)[0]
    assert leader == replicas[0], "a new topic is led by its preferred replicas"
    cluster.brokers[leader].kill()
    wait_until(lambda: cluster.partitions(topic)[0][0] not in (-1, leader), 30, "a new leader for partition 0")
    cluster.brokers[leader].start()
    cluster.brokers[leader].wait_ready()
    cluster.wait_isr_full(topic)
    assert cluster.partitions(topic)[0][0] != leader, "no automatic rebalance with the flag off"

    assert elect(cluster, ElectionType.PREFERRED, topic, 0) is None
    wait_until(lambda: cluster.partitions(topic)[0][0] == leader, 10, "the preferred replica to lead again")
    again = elect(cluster, ElectionType.PREFERRED, topic, 0)
    assert again is not None and again.code() == KafkaError.ELECTION_NOT_NEEDED, again
    missing = elect(cluster, ElectionType.PREFERRED, topic, 7)
    assert missing is not None and missing.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, missing
    assert produce(cluster.bootstrap(), topic, 10, "after") == [None] * 10


def offline_partition(cluster, topic):
    """Drives partition 0 of a fresh RF-2 topic offline with an out-of-sync live replica (see the
    module doc). Returns (old leader A, out-of-sync replica B, records only A had)."""
    cluster.create_topic(topic, 1, replication_factor=2, configs={"min.insync.replicas": "1"})
    a, replicas, _ = cluster.partitions(topic)[0]
    b = next(r for r in replicas if r != a)
    assert produce(cluster.bootstrap(), topic, 50, "both") == [None] * 50
    cluster.brokers[b].kill()
    wait_until(lambda: cluster.partitions(topic)[0][2] == [a], 30, "the ISR to shrink to the leader")
    assert produce(cluster.brokers[a].address, topic, 30, "only-a") == [None] * 30
    cluster.brokers[a].kill()
    cluster.brokers[b].start()
    cluster.brokers[b].wait_ready()
    wait_until(lambda: cluster.partitions(topic)[0][0] == -1, 30, "partition 0 to go offline")
    return a, b


def check_unclean_leader(cluster, topic, a, b):
    """B leads, alone in the ISR, with the 50 records both had and none of the 30 only A had;
    writes work; when A returns it truncates to B's log and rejoins."""
    wait_until(lambda: cluster.partitions(topic)[0][0] == b, 15, "the out-of-sync replica to lead")
    assert cluster.partitions(topic)[0][2] == [b]
    assert produce(cluster.bootstrap(), topic, 5, "after") == [None] * 5
    cluster.brokers[a].start()
    cluster.brokers[a].wait_ready()
    cluster.wait_isr_full(topic)
    records, ends = read_everything(cluster.bootstrap(), topic, 1)
    assert ends[0] == 55, f"high watermark {ends[0]}: 50 shared + 5 after, the 30 only A had are gone"
    values = [value for _offset, _key, value in records[0]]
    assert values == [f"both:{i}" for i in range(50)] + [f"after:{i}" for i in range(5)]
    check_replicas(cluster, topic, 1, ends, replication_factor=2)


@pytest.mark.cluster_args(*FLAGS)
def test_an_offline_partition_stays_offline_until_unclean_election_is_allowed(cluster):
    """Goal: with unclean.leader.election.enable off (the default) a partition whose ISR is dead
    stays offline although an out-of-sync replica is live; once the topic allows it, the
    controller elects that replica by itself, and the old leader truncates when it returns.
    Method: the module doc's scenario; 5 s offline check; IncrementalAlterConfigs; wait."""
    topic = topic_name("unclean-config")
    a, b = offline_partition(cluster, topic)
    time.sleep(5)
    assert cluster.partitions(topic)[0][0] == -1, "an unclean election happened with the option off"
    admin = cluster.admin()
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("unclean.leader.election.enable", "true", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)
    check_unclean_leader(cluster, topic, a, b)


@pytest.mark.cluster_args(*FLAGS)
def test_elect_leaders_unclean_brings_an_offline_partition_back(cluster):
    """Goal: ElectLeaders with the unclean type elects the live out-of-sync replica of an offline
    partition (the preferred type refuses: its replica is not in sync or not live).
    Method: the module doc's scenario; elect preferred (refused), then unclean."""
    topic = topic_name("unclean-api")
    a, b = offline_partition(cluster, topic)
    preferred = elect(cluster, ElectionType.PREFERRED, topic, 0)
    assert preferred is not None and preferred.code() == KafkaError.PREFERRED_LEADER_NOT_AVAILABLE, preferred
    assert elect(cluster, ElectionType.UNCLEAN, topic, 0) is None
    check_unclean_leader(cluster, topic, a, b)
