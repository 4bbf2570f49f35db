"""The nemesis: a schedule of faults drawn from `random.Random(seed)` before the run starts (so a
seed always names the same schedule, printed at the start of the run), and its execution
against the cluster and the network.

A schedule is a list of steps, run one after another until the run's time is up:
wait `quiet_s` → inject the fault → hold it `hold_s` → heal → wait until every broker is ready
and every partition has a full ISR (bounded by RECOVERY_TIMEOUT_S) → next step.

Faults (`kind`):
- `kill`: SIGKILL the target, restart it after `hold_s` with the same data;
- `pause`: SIGSTOP the target for `hold_s` (always longer than the broker session timeout of
  1.5 s; from PAUSE_LONG_S on also longer than the consumers' 6 s session timeout), SIGCONT;
- `pause-short`: SIGSTOP for 1–2.5 s, around the broker session timeout (1.5 s): the broker
  may be fenced just as it resumes, or not at all (a long GC pause);
- `isolate`: cut the target from both other brokers (with three brokers this is the
  minority/majority split);
- `bridge`: cut the two brokers other than the target from each other; both still see it;
- `loss`: the target drops a share (`percent`) of every packet it sends (one-way);
- `slow`: what the target sends is rate-limited (`rate`) and queued up to `latency` (one-way;
  netns.py says why this and not netem);
- `kill+isolate`: two faults at once: the target is SIGKILLed and another broker isolated, so
  one broker is left alone: no metadata quorum, no acks=all write; both healed together.
- `voter-change`: a membership change while faulted: `sluice cluster remove-voter` of another
  broker is started and the target is SIGKILLed 50 ms later (the change may be cut off, or
  complete with two voters of which one is dead: no metadata quorum until the restart); on
  healing the target restarts and the demoted broker is made a voter again
  (`sluice cluster add-voter`, asked until `sluice cluster quorum` lists all three voters,
  bounded by RECOVERY_TIMEOUT_S).
- `reassign`: a partition move while faulted: `sluice topic reassign --execute` takes one
  replica (another broker than the target) out of `partition` of the main topic, and the
  target is SIGKILLed 50 ms later (the move may be cut off, stall on the dead replica, or
  complete); on healing the target restarts and the partition is moved back to its replicas
  before the step, in their order (`--execute`, half the time with `--throttle`, then
  `--verify --wait`, bounded by RECOVERY_TIMEOUT_S): the removed broker deleted its replica
  and copies the partition again from the leader under the workload — the path of the bug
  "a replica moved away and back joined the ISR empty" (docs/reliability.md).

Adding `voter-change` (2026-12-05) and then `reassign` (2026-12-07) changed every seed's
schedule: seeds in tables older than that name the schedules of the kinds before it.

Targets (`target`), resolved when the fault is injected (who leads changes during the run):
`partition-leader` (the leader of `partition` of the main topic), `metadata-leader` (the
metadata Raft leader: Metadata's controller id), `coordinator` (the consumer group's
coordinator) or `node` (broker `node`, drawn with the schedule).
"""

import json
import os
import random
import time


RECOVERY_TIMEOUT_S = 90
QUIET_S = (3.0, 8.0)
PAUSE_LONG_S = 7.0

KINDS = ["kill", "kill", "pause", "pause-short", "isolate", "bridge", "loss", "slow", "kill+isolate", "voter-change",
         "reassign"]
TARGETS = ["partition-leader", "metadata-leader", "coordinator", "node"]
HOLD_S = {  # (low, high) seconds a fault stays before it is healed
    "kill": (2.0, 10.0),
    "pause": (3.0, 12.0),
    "pause-short": (1.0, 2.5),
    "isolate": (5.0, 15.0),
    "bridge": (5.0, 15.0),
    "loss": (5.0, 15.0),
    "slow": (5.0, 15.0),
    "kill+isolate": (4.0, 12.0),
    "voter-change": (2.0, 8.0),
    "reassign": (2.0, 8.0),
}
# The throttle of a `reassign` step's move back, when it has one (bytes/s per broker and
# direction): slow enough that the copy of a partition of a few MB takes seconds under the
# workload, fast enough to finish well within RECOVERY_TIMEOUT_S.
REASSIGN_THROTTLE_BYTES_PER_S = 1_000_000


def schedule(seed, seconds, partitions, nodes=3):
    """The steps for a run of `seconds`: more than can fit (each step takes at least its quiet
    time and hold), so the run is always busy until its end."""
    rng = random.Random(seed)
    steps = []
    budget = 0.0
    while budget < seconds:
        kind = rng.choice(KINDS)
        step = {
            "kind": kind,
            "target": rng.choice(TARGETS),
            "partition": rng.randrange(partitions),
            "node": rng.randint(1, nodes),
            "quiet_s": round(rng.uniform(*QUIET_S), 1),
            "hold_s": round(rng.uniform(*HOLD_S[kind]), 1),
        }
        if kind == "loss":
            step["percent"] = rng.choice([10, 20, 30, 50])
        elif kind == "slow":
            step["rate"] = rng.choice(["256kbit", "1mbit", "4mbit"])
            step["latency"] = rng.choice(["50ms", "200ms", "500ms"])
        elif kind == "reassign":
            step["throttle"] = rng.choice([None, REASSIGN_THROTTLE_BYTES_PER_S])
        steps.append(step)
        budget += step["quiet_s"] + step["hold_s"]
    return steps


def describe(step):
    target = step["target"]
    if target == "partition-leader":
        target = f"leader of partition {step['partition']}"
    elif target == "node":
        target = f"broker {step['node']}"
    extra = ""
    if step["kind"] == "loss":
        extra = f" ({step['percent']}% of what it sends)"
    elif step["kind"] == "slow":
        extra = f" ({step['rate']}, queued up to {step['latency']})"
    elif step["kind"] == "reassign":
        throttle = f", moved back at {step['throttle']} B/s" if step.get("throttle") else ""
        extra = f" (partition {step['partition']} loses a replica{throttle})"
    return f"{step['kind']}{extra} of {target} for {step['hold_s']} s after {step['quiet_s']} s quiet"


class Nemesis:
    def __init__(self, cluster, network, main_topic, group, topics, log):
        self.cluster = cluster
        self.network = network
        self.main_topic = main_topic
        self.group = group
        self.topics = topics
        self.log = log  # callable(str)
        self.history = []
        self.crashes = []  # brokers that exited without being killed: {"node", "code", "at"}

    def resolve(self, step):
        """The broker the step aims at now; a role nobody holds right now falls back to the
        step's `node`."""
        finders = {
            "partition-leader": lambda: self.cluster.leader_of(self.main_topic, step["partition"]),
            "metadata-leader": self.cluster.metadata_leader,
            "coordinator": lambda: self.cluster.coordinator_of(self.group),
        }
        finder = finders.get(step["target"])
        if finder is not None:
            try:
                node = finder()
                if node is not None:
                    return node, step["target"]
            except Exception as error:  # noqa: BLE001 - a role lookup that fails falls back
                self.log(f"could not find the {step['target']}: {error}")
        return step["node"], "node"

    def leaderships(self):
        """(topic, partition) -> leader, just before a fault, for the failover measurement."""
        led = {}
        for topic in self.topics:
            try:
                for partition, (leader, _, _) in self.cluster.partitions(topic).items():
                    led[f"{topic}/{partition}"] = leader
            except Exception as error:  # noqa: BLE001 - recorded as unknown
                self.log(f"metadata of {topic} before the fault: {error}")
        return led

    def run(self, steps, deadline):
        for index, step in enumerate(steps):
            if time.time() + step["quiet_s"] + step["hold_s"] > deadline:
                self.log(f"step {index}: not run, the run's time is up ({describe(step)})")
                break
            time.sleep(step["quiet_s"])
            self.run_step(index, step)

    def run_step(self, index, step):
        self.heal()  # restarts a broker that exited on its own since the last step (recorded)
        victim, resolved_as = self.resolve(step)
        record = {"step": index, "kind": step["kind"], "target": step["target"], "resolved_as": resolved_as,
                  "node": victim, "hold_s": step["hold_s"], "leaders_before": self.leaderships()}
        broker = self.cluster.brokers[victim]
        kind = step["kind"]
        record["injected_at"] = time.time()
        if kind == "kill":
            broker.kill()
        elif kind in ("pause", "pause-short"):
            broker.pause()
        elif kind == "isolate":
            self.network.isolate(victim)
        elif kind == "bridge":
            self.network.bridge_split(victim)
        elif kind == "loss":
            record["percent"] = step["percent"]
            self.network.loss(victim, step["percent"])
        elif kind == "slow":
            record["rate"], record["latency"] = step["rate"], step["latency"]
            self.network.slow(victim, step["rate"], step["latency"])
        elif kind == "kill+isolate":
            other = step["node"] if step["node"] != victim else victim % len(self.cluster.brokers) + 1
            record["isolated"] = other
            broker.kill()
            self.network.isolate(other)
        elif kind == "voter-change":
            other = step["node"] if step["node"] != victim else victim % len(self.cluster.brokers) + 1
            record["demoted"] = other
            change = self.cluster.cli_background("cluster", "remove-voter", str(other),
                                                 log_path=f"{self.cluster.work}/voter-changes.log")
            time.sleep(0.05)
            broker.kill()
        elif kind == "reassign":
            other = step["node"] if step["node"] != victim else victim % len(self.cluster.brokers) + 1
            partition = step["partition"]
            try:
                replicas = self.cluster.partitions(self.main_topic)[partition][1]
            except Exception as error:  # noqa: BLE001 - every broker holds every partition (RF 3)
                self.log(f"replicas of partition {partition} before the move: {error}; assuming all brokers")
                replicas = sorted(self.cluster.brokers)
            record.update({"partition": partition, "replicas_before": replicas, "removed": other,
                           "throttle": step.get("throttle")})
            shrunk = [r for r in replicas if r != other]
            change = self.cluster.cli_background(
                "topic", "reassign", "--execute", "--plan", self.plan_file(index, "shrink", partition, shrunk),
                log_path=f"{self.cluster.work}/reassignments.log")
            time.sleep(0.05)
            broker.kill()
        self.log(f"step {index}: {kind} broker {victim} ({resolved_as}) for {step['hold_s']} s")
        time.sleep(step["hold_s"])
        record["healed_at"] = time.time()
        self.heal()
        if kind == "voter-change":
            try:
                change.wait(timeout=RECOVERY_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - a hung CLI is killed; the restore below decides
                change.kill()
            self.restore_voters(record)
        elif kind == "reassign":
            try:
                change.wait(timeout=RECOVERY_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - a hung CLI is killed; the move back decides
                change.kill()
            self.restore_replicas(index, record)
        try:
            self.cluster.wait_recovered(self.topics, RECOVERY_TIMEOUT_S)
            record["recovered_s"] = round(time.time() - record["healed_at"], 3)
            self.log(f"step {index}: healed, recovered in {record['recovered_s']} s")
        except TimeoutError as error:
            record["recovered_s"] = None
            record["recovery_error"] = str(error)
            self.log(f"step {index}: NOT recovered within {RECOVERY_TIMEOUT_S} s after healing: {error}")
        self.history.append(record)

    def restore_voters(self, record):
        """Makes every broker a voter again after a `voter-change` step: `add-voter` of the
        demoted broker until the quorum lists all of them (a removal cut off by the leader's
        death may still complete after a first add reported DUPLICATE_VOTER, so the quorum is
        what decides). Records how long it took, or that it did not happen in time."""
        wanted = sorted(self.cluster.brokers)
        started = time.time()
        while time.time() - started < RECOVERY_TIMEOUT_S:
            if self.cluster.voters() == wanted:
                record["voters_restored_s"] = round(time.time() - started, 3)
                self.log(f"voters {wanted} again after {record['voters_restored_s']} s")
                return
            code, output = self.cluster.cli("cluster", "add-voter", str(record["demoted"]), timeout_s=60)
            if code != 0 and "already a voter" not in output:
                self.log(f"add-voter {record['demoted']}: {output.strip()[:300]}")
            time.sleep(1)
        record["voters_restored_s"] = None
        record["recovery_error"] = f"voters not {wanted} within {RECOVERY_TIMEOUT_S} s"
        self.log(f"voters NOT restored to {wanted} within {RECOVERY_TIMEOUT_S} s")

    def plan_file(self, index, what, partition, replicas):
        """Writes a one-partition reassignment plan (Kafka's JSON) into the run directory."""
        path = os.path.join(self.cluster.work, f"reassign-step{index}-{what}.json")
        with open(path, "w", encoding="utf-8") as file:
            json.dump({"version": 1, "partitions": [
                {"topic": self.main_topic, "partition": partition, "replicas": replicas}]}, file)
        return path

    def restore_replicas(self, index, record):
        """Moves a `reassign` step's partition back to its replicas before the step, and waits
        until the move is done (`--verify --wait`, which also removes a throttle). The new
        `--execute` replaces a move still in progress. Records how long it took, or that it
        did not happen in time."""
        plan = self.plan_file(index, "back", record["partition"], record["replicas_before"])
        started = time.time()
        execute = ["topic", "reassign", "--execute", "--plan", plan]
        if record.get("throttle"):
            execute += ["--throttle", str(record["throttle"])]
        while time.time() - started < RECOVERY_TIMEOUT_S:
            code, output = self.cluster.cli(*execute, timeout_s=30)
            if code == 0:
                break
            self.log(f"reassign back of partition {record['partition']}: {output.strip()[:300]}")
            time.sleep(1)
        left = max(1, int(RECOVERY_TIMEOUT_S - (time.time() - started)))
        code, output = self.cluster.cli("topic", "reassign", "--verify", "--plan", plan, "--wait",
                                        "--timeout", str(left), timeout_s=left + 30)
        if code == 0:
            record["replicas_restored_s"] = round(time.time() - started, 3)
            self.log(f"partition {record['partition']} back on {record['replicas_before']} after "
                     f"{record['replicas_restored_s']} s")
            return
        record["replicas_restored_s"] = None
        record["recovery_error"] = (f"partition {record['partition']} not back on {record['replicas_before']} "
                                    f"within {RECOVERY_TIMEOUT_S} s: {(output or '').strip()[-300:]}")
        self.log(record["recovery_error"])

    def note_crashes(self):
        """Records every broker process that exited on its own (a panic, an abort): the harness
        only ever SIGKILLs, and then forgets the process."""
        for broker in self.cluster.brokers.values():
            if broker.process is not None and broker.process.poll() is not None:
                crash = {"node": broker.node, "code": broker.process.returncode, "at": time.time()}
                self.crashes.append(crash)
                self.log(f"broker {broker.node} exited on its own with code {crash['code']} (see {broker.log_path})")
                broker.process = None

    def heal(self):
        """Undoes every fault: network back, paused brokers resumed, dead brokers restarted."""
        self.note_crashes()
        self.network.heal()
        for broker in self.cluster.brokers.values():
            if broker.paused:
                broker.resume()
            if not broker.running:
                broker.start()


def wait_final_recovery(cluster, topics):
    try:
        cluster.wait_recovered(topics, RECOVERY_TIMEOUT_S)
        return None
    except TimeoutError as error:
        return str(error)

