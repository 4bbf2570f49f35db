"""scripts/cluster.sh: the one-command local cluster (issue 11's launch script), driven as a
developer would, with confluent-kafka as the client."""

import os
import random
import socket
import subprocess
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from workload import read_everything

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "cluster.sh")


def free_base(size):
    """A base port whose Kafka, Raft and admin ports (base+i, base+100+i, base+200+i) are free.

    Below Linux's ephemeral range (32768-60999 by default): `add` binds broker 4's ports minutes
    after this check, and a port inside that range can meanwhile become the source port of
    some connection (seen once in CI: broker 4 exited with "Address already in use")."""
    low_ephemeral = 32768
    for _ in range(100):
        base = random.randrange(20000, low_ephemeral - 200 - size)
        ports = [base + offset + i for offset in (0, 100, 200) for i in range(size)]
        sockets = []
        try:
            for port in ports:
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port range")


def test_cluster_script_runs_a_cluster_that_survives_a_kill(tmp_path):
    """Goal: `scripts/cluster.sh up 3` gives a working 3-broker cluster with replication factor
    3 and min.insync.replicas 2 by default; `kill` and `restart` of one broker lose nothing;
    `status` and `down` report and stop every broker; `add` grows it by a broker that joins as a
    non-voter through `--join` and takes replicas of new topics.
    Method: up; create a topic with the broker defaults; 100 acks=all records; kill broker 1;
    100 more; restart it; status; read all 200 back; down."""
    env = dict(os.environ, SLUICE_CLUSTER_DIR=str(tmp_path / "cluster"), SLUICE_CLUSTER_BASE_PORT=str(free_base(4)))

    def script(*args):
        done = subprocess.run(["bash", SCRIPT, *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"cluster.sh {args}: {done.stdout}{done.stderr}"
        return done.stdout

    try:
        up = script("up", "3")
        assert "3 brokers ready" in up, up
        bootstrap = script("bootstrap").strip()
        assert up.strip().endswith(f"export SLUICE_BOOTSTRAP={bootstrap}")
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topic = f"launched-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(topic, num_partitions=3)])[topic].result(timeout=30)
        described = admin.list_topics(topic, timeout=10).topics[topic]
        assert all(len(p.replicas) == 3 for p in described.partitions.values()), "replication factor 3 by default"
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        configs = admin.describe_configs([resource])[resource].result(timeout=30)
        assert configs["min.insync.replicas"].value == "2"

        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
        errors = []
        for i in range(100):
            producer.produce(topic, key=str(i % 7), value=f"before:{i}", on_delivery=lambda e, m: errors.append(e))
        assert producer.flush(30) == 0
        assert "killed" in script("kill", "1")
        for i in range(100):
            producer.produce(topic, key=str(i % 7), value=f"after:{i}", on_delivery=lambda e, m: errors.append(e))
        assert producer.flush(60) == 0
        assert errors == [None] * 200, [e for e in errors if e is not None][:3]
        assert "broker 1 ready" in script("restart", "1")
        status = script("status").splitlines()
        assert len(status) == 3 and all(line.endswith("ready") for line in status), status
        records, ends = read_everything(bootstrap, topic, 3)
        assert sum(ends.values()) == 200
        values = sorted(value for partition in records.values() for _, _, value in partition)
        assert values == sorted([f"before:{i}" for i in range(100)] + [f"after:{i}" for i in range(100)])

        # Grow by one: broker 4 joins the running cluster as a non-voter and takes replicas.
        added = script("add")
        assert "broker 4 ready (a non-voting member" in added, added
        # Through --join, without the voter list: it took the cluster id from a member it named.
        with open(tmp_path / "cluster" / "node-4" / "broker.log") as log:
            adopted = [line for line in log if "adopted the cluster id" in line]
        assert adopted and "member at 127.0.0.1:" in adopted[0], adopted
        assert len(script("bootstrap").strip().split(",")) == 4
        grown = f"grown-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(grown, num_partitions=8)])[grown].result(timeout=30)
        replicas = {b for p in admin.list_topics(grown, timeout=10).topics[grown].partitions.values()
                    for b in p.replicas}
        assert 4 in replicas, f"the new broker is a placement target: {sorted(replicas)}"
    finally:
        subprocess.run(["bash", SCRIPT, "down"], env=env, capture_output=True, timeout=120)
    status = script("status").splitlines()
    assert status == [f"broker {i}  stopped" for i in (1, 2, 3, 4)], status
