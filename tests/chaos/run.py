"""One chaos run: a 3-broker cluster in network namespaces, a workload, a seeded nemesis, then
the checks. See docs/reliability.md for what is checked and how to rerun a seed.

    python tests/chaos/run.py --seed SEED --minutes MINUTES [--out DIR]
    python tests/chaos/run.py --recheck DIR     # the checks again, on a finished run

Prints the seed and the whole fault schedule first, then each fault as it happens, then one
JSON summary (also written to DIR/summary.json). Exit status: 0 all checks passed, 1 a check
failed (the summary names it, with a small history around the first violation), 2 the harness
itself failed (cluster never ready, a tool missing). Where network namespaces cannot be created
it prints one "CHAOS SKIPPED: <why>" line and exits 0.

Environment: SLUICE_BROKER_BIN (required), CHAOS_PRODUCER_BIN (the sluice-client producer,
crates/client/examples/chaos_producer.rs built in release; required), CHAOS_SUBNET (first three
octets, default 10.217.0).
"""

import argparse
import json
import os
import signal
import statistics
import sys
import time
import traceback
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.append(os.path.join(REPO_ROOT, "tests", "cluster"))  # segments.py (after this directory)

import segments  # noqa: E402
import checker  # noqa: E402
import nemesis  # noqa: E402
import workload  # noqa: E402
from cluster import Cluster  # noqa: E402
from netns import Network, NetnsUnavailable  # noqa: E402

MAIN_TOPIC = "chaos-main"  # written by a librdkafka and a sluice-client producer
LIBRDKAFKA_PRODUCERS = ("rk", "rkside")  # confluent-kafka producers, each with its debug log
SIDE_TOPIC = "chaos-side"  # written by a second librdkafka producer
TOPICS = {MAIN_TOPIC: 4, SIDE_TOPIC: 2}
GROUP = "chaos-group"
MEMBERS = 3
# Records/s of each producer: the machine running this has two cores shared with other work.
RATE_LIBRDKAFKA = 60
RATE_SLUICE_CLIENT = 60
RATE_SIDE = 30
WARMUP_S = 5  # of workload before the first fault
FLUSH_TIMEOUT_S = 150  # > the producers' 120 s delivery timeout
FINAL_READ_TIMEOUT_S = 120
CATCH_UP_TIMEOUT_S = 60  # for the group to consume up to the final high watermarks


def log(message):
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


# The faults whose figure is a failover: the victim is out for longer than the session timeout
# and the two others can elect. (kill+isolate leaves no quorum until it heals; a short pause
# may end before any fencing.)
SINGLE_LEADER_FAULTS = ("kill", "pause", "isolate")


def failover_times(history, acks):
    """Per leader-affecting fault (kill, pause, isolate): for each partition the victim led just
    before it, the time from the fault to the first acknowledgement of a record of that
    partition sent after the fault; the fault's figure is the slowest of its partitions.
    Returns {"all": [...] (SINGLE_LEADER_FAULTS), kind: [...]} (seconds). A fault healed before any new leader served
    counts with its whole duration: the figure is when writes resumed, by failover or by heal."""
    acked = [a for a in acks if "error" not in a]
    times = {"all": []}
    for fault in history:
        if fault["kind"] not in ("kill", "pause", "pause-short", "isolate", "kill+isolate"):
            continue
        led = [tp for tp, leader in fault["leaders_before"].items() if leader == fault["node"]]
        gaps = []
        for tp in led:
            topic, partition = tp.rsplit("/", 1)
            after = [a["at"] for a in acked if a["topic"] == topic and a["partition"] == int(partition)
                     and a["sent"] >= fault["injected_at"]]
            gaps.append(round(min(after) - fault["injected_at"], 3) if after else None)
        fault["partitions_led"] = led
        fault["failover_s"] = None if not gaps or None in gaps else max(gaps)
        if fault["failover_s"] is not None:
            if fault["kind"] in SINGLE_LEADER_FAULTS:
                times["all"].append(fault["failover_s"])
            times.setdefault(fault["kind"], []).append(fault["failover_s"])
    return times


def spread(times):
    return {"count": len(times), "p50": round(statistics.median(times), 3) if times else None,
            "max": max(times) if times else None}


def check_replicas(data_dirs, ends):
    """Every replica of every partition holds the same batches (offsets, epochs, CRC-32C)
    below the high watermark of the final read, read from the segment files."""
    violations = []
    for (topic, partition), hw in ends.items():
        copies = {}
        for node, data_dir in data_dirs.items():
            directory = os.path.join(data_dir, "logs", f"{topic}-{partition}")
            if os.path.isdir(directory):
                copies[node] = segments.up_to(segments.batches(directory), hw)
        if len(copies) != 3:
            violations.append({"partition": f"{topic}/{partition}", "problem": f"replicas only on {sorted(copies)}"})
            continue
        for node, batches in copies.items():
            covered = batches[-1][1] + 1 if batches else 0
            if covered < hw:
                violations.append({"partition": f"{topic}/{partition}", "broker": node,
                                   "problem": f"batches end at {covered}, below the high watermark {hw}"})
        reference_node = min(copies)
        for node, batches in copies.items():
            if batches != copies[reference_node]:
                first = next((i for i, (a, b) in enumerate(zip(batches, copies[reference_node])) if a != b),
                             min(len(batches), len(copies[reference_node])))
                violations.append({"partition": f"{topic}/{partition}", "broker": node,
                                   "problem": f"differs from broker {reference_node} at batch {first}",
                                   "batch": batches[first] if first < len(batches) else None,
                                   "reference": copies[reference_node][first]
                                   if first < len(copies[reference_node]) else None})
    return checker.verdict(violations, lambda v: v)


def read_evidence(out, data_dirs):
    """What the duplicate check needs to explain a librdkafka duplicate: the batch headers of the
    lowest-numbered broker's segment files (every replica holds the same batches below the HW:
    the `replicas` check) and each librdkafka producer's debug log."""
    batches = {}
    if data_dirs:
        logs_dir = os.path.join(data_dirs[min(data_dirs)], "logs")
        for topic, count in TOPICS.items():
            for partition in range(count):
                directory = os.path.join(logs_dir, f"{topic}-{partition}")
                if os.path.isdir(directory):
                    batches[(topic, partition)] = segments.producer_batches(directory)
    logs = {name: workload.read_rdkafka_log(workload.rdkafka_log_path(out, name)) for name in LIBRDKAFKA_PRODUCERS}
    return batches, logs


def print_known_anomalies(results):
    """Every duplicate set aside as a known client anomaly, with its evidence, so the run's
    output shows why it was not counted."""
    for case in results["duplicate"].get("known_client_anomalies", []):
        print(f"KNOWN CLIENT ANOMALY ({case['anomaly']}, not a broker violation): {case['value']} at "
              f"{case['positions']}; first copy in batch {case['first_copy_batch']}, second in "
              f"{case['second_copy_batch']}; the producer's debug log:", flush=True)
        for line in case["evidence"]:
            print(f"    {line}", flush=True)


def read_histories(out):
    acks = [line for name in sorted(os.listdir(out)) if name.startswith("acks-")
            for line in workload.read_jsonl(os.path.join(out, name))]
    consumers = {name[len("consumer-"):-len(".jsonl")]: workload.read_jsonl(os.path.join(out, name))
                 for name in os.listdir(out) if name.startswith("consumer-")}
    return acks, consumers


def recheck(out):
    """Runs the checks again on a finished run's directory (histories, final-read.jsonl and
    the brokers' segment files); prints the verdicts. Returns 0 if all pass, else 1."""
    acks, consumers = read_histories(out)
    log_records, ends = {}, {}
    for line in workload.read_jsonl(os.path.join(out, "final-read.jsonl")):
        tp = (line["topic"], line["partition"])
        log_records[tp] = [tuple(entry) for entry in line["records"]]
        ends[tp] = line["high_watermark"]
    data_dirs = {int(name.split("-")[1]): os.path.join(out, name, "data")
                 for name in os.listdir(out) if name.startswith("broker-")}
    batches, librdkafka_logs = read_evidence(out, data_dirs)
    results = checker.check(acks, log_records, ends, consumers, batches, librdkafka_logs)
    results["group_consumed"] = checker.check_group_consumed(acks, consumers)
    results["replicas"] = check_replicas(data_dirs, ends)
    print_known_anomalies(results)
    print(json.dumps({k: ("ok" if r["ok"] else r) for k, r in results.items()}, indent=1, default=str))
    return 0 if all(r["ok"] for r in results.values()) else 1


def wait_consumed(members_dir, ends, timeout_s):
    """Waits until the group's members have polled every partition up to its final HW."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        reached = {}
        for name in os.listdir(members_dir):
            if name.startswith("consumer-"):
                for event in workload.read_jsonl(os.path.join(members_dir, name)):
                    if event["event"] == "poll":
                        tp = (event["topic"], event["partition"])
                        reached[tp] = max(reached.get(tp, 0), event["offset"] + 1)
        if all(reached.get(tp, 0) >= hw for tp, hw in ends.items()):
            return True
        time.sleep(1)
    return False


def run(args, out):
    steps = nemesis.schedule(args.seed, args.minutes * 60, TOPICS[MAIN_TOPIC])
    log(f"seed {args.seed}, {args.minutes} min, output {out}")
    log(f"schedule of seed {args.seed} (steps past the run's time are not run):")
    for index, step in enumerate(steps):
        log(f"  {index:2d}. {nemesis.describe(step)}")

    network = Network(args.subnet)
    try:
        network.preflight()
    except NetnsUnavailable as why:
        print(f"CHAOS SKIPPED: {why}", flush=True)
        return 0, None
    cluster = None
    sluice_producer = None
    summary = {"seed": args.seed, "minutes": args.minutes, "output": out, "schedule": steps}
    try:
        network.create(out)
        cluster = Cluster(network, out, args.broker_bin)
        log(f"brokers at {cluster.bootstrap}; logs in {out}/broker-N/broker.log")
        cluster.start()
        for topic, partitions in TOPICS.items():
            cluster.create_topic(topic, partitions)
        log(f"topics {TOPICS} created: RF 3, min.insync.replicas 2, full ISR")

        run_s = args.minutes * 60
        producers = [
            workload.LibrdkafkaProducer(LIBRDKAFKA_PRODUCERS[0], cluster.bootstrap, MAIN_TOPIC, RATE_LIBRDKAFKA, out),
            workload.LibrdkafkaProducer(LIBRDKAFKA_PRODUCERS[1], cluster.bootstrap, SIDE_TOPIC, RATE_SIDE, out),
        ]
        sluice_producer = workload.SluiceClientProducer(
            "sc", args.producer_bin, cluster.bootstrap, MAIN_TOPIC, RATE_SLUICE_CLIENT, WARMUP_S + run_s, out)
        members = [workload.GroupMember(f"m{i}", cluster.bootstrap, GROUP, list(TOPICS), out)
                   for i in range(MEMBERS)]
        for thread in producers + members:
            thread.start()
        sluice_producer.start()
        time.sleep(WARMUP_S)

        chaos = nemesis.Nemesis(cluster, network, MAIN_TOPIC, GROUP, list(TOPICS), log)
        started = time.time()
        try:
            chaos.run(steps, started + run_s)
        finally:
            chaos.heal()
        summary["faults"] = chaos.history
        final_recovery_error = nemesis.wait_final_recovery(cluster, list(TOPICS))
        summary["final_recovery"] = final_recovery_error or "ok"
        log(f"nemesis done after {round(time.time() - started)} s: {len(chaos.history)} faults; "
            f"final recovery: {summary['final_recovery']}")

        summary["producers"] = {p.name_: p.finish(FLUSH_TIMEOUT_S) for p in producers}
        producers = None  # librdkafka handles destroyed while the brokers are up (Cluster.close_admin)
        summary["producers"]["sc"] = sluice_producer.finish(FLUSH_TIMEOUT_S)
        log(f"producers done: {summary['producers']}")

        log_records, ends, read_problems = workload.read_everything(cluster.bootstrap, TOPICS, FINAL_READ_TIMEOUT_S)
        summary["final_read"] = {"high_watermarks": {f"{t}/{p}": hw for (t, p), hw in ends.items()},
                                 "records": sum(len(r) for r in log_records.values()), "problems": read_problems}
        with open(os.path.join(out, "final-read.jsonl"), "w", encoding="utf-8") as file:
            for (topic, partition), entries in log_records.items():
                file.write(json.dumps({"topic": topic, "partition": partition, "high_watermark": ends[(topic, partition)],
                                       "records": entries}) + "\n")
        consumed = wait_consumed(out, ends, CATCH_UP_TIMEOUT_S)
        summary["consumers"] = {m.name_: m.finish() for m in members}
        summary["consumers_caught_up"] = consumed
        log(f"final read: {summary['final_read']['records']} records; group caught up: {consumed}")

        chaos.note_crashes()
        summary["broker_exit_codes"] = cluster.stop()

        acks, consumers = read_histories(out)
        data_dirs = {n: b.data_dir for n, b in cluster.brokers.items()}
        batches, librdkafka_logs = read_evidence(out, data_dirs)
        results = checker.check(acks, log_records, ends, consumers, batches, librdkafka_logs)
        results["replicas"] = check_replicas(data_dirs, ends)
        results["no_crash"] = checker.verdict(chaos.crashes, lambda c: c)
        # Every voter change of the nemesis was undone: the metadata group ends with all voters.
        results["voters_restored"] = checker.verdict(
            [f for f in chaos.history if f["kind"] == "voter-change" and f.get("voters_restored_s") is None],
            lambda f: {"step": f["step"], "demoted": f.get("demoted"), "error": f.get("recovery_error")})
        # Every partition move of the nemesis was undone: the partition is back on its replicas.
        results["replicas_restored"] = checker.verdict(
            [f for f in chaos.history if f["kind"] == "reassign" and f.get("replicas_restored_s") is None],
            lambda f: {"step": f["step"], "partition": f.get("partition"), "error": f.get("recovery_error")})
        unclean = [{"node": n, "code": c} for n, c in summary["broker_exit_codes"].items() if c != 0]
        results["clean_shutdown"] = checker.verdict(unclean, lambda u: u)
        if consumed:
            results["group_consumed"] = checker.check_group_consumed(acks, consumers)
        else:  # the group never reached the final high watermarks: an availability finding
            summary["group_consumed"] = f"not checked: the group did not catch up within {CATCH_UP_TIMEOUT_S} s"
        if read_problems:
            results["final_read"] = {"ok": False, "count": len(read_problems), "first": read_problems[0]}
        failovers = failover_times(chaos.history, acks)
        acked = [a for a in acks if "error" not in a]
        summary.update({
            "faults_injected": len(chaos.history),
            "faults_by_kind": dict(Counter(f["kind"] for f in chaos.history)),
            "faults_not_recovered": sum(1 for f in chaos.history if f.get("recovered_s") is None),
            "acked": len(acked),
            "acked_by_producer": dict(Counter(a["producer"] for a in acked)),
            "failed_deliveries": len(acks) - len(acked),
            "lost": results["lost"]["count"],
            "duplicated": results["duplicate"]["count"],
            "duplicated_known_client_anomaly": len(results["duplicate"]["known_client_anomalies"]),
            "reordered": results["reordered"]["count"],
            "inconsistent": results["inconsistent"]["count"],
            "failover_s": {kind: spread(times) for kind, times in failovers.items()},
            "recovery_s_max": max((f["recovered_s"] for f in chaos.history if f.get("recovered_s") is not None),
                                  default=None),
            "checks": results,
        })
        ok = all(r["ok"] for r in results.values())
        summary["verdict"] = "pass" if ok else "FAIL: " + ", ".join(k for k, r in results.items() if not r["ok"])
        return (0 if ok else 1), summary
    finally:
        if sluice_producer is not None and sluice_producer.process and sluice_producer.process.poll() is None:
            sluice_producer.process.kill()
        if cluster is not None:
            cluster.kill_all()
        network.destroy()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recheck", metavar="DIR", help="only run the checks again on a finished run's directory")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--out", help="run directory (default target/chaos/seed-SEED-TIME)")
    parser.add_argument("--broker-bin", default=os.environ.get("SLUICE_BROKER_BIN"))
    parser.add_argument("--producer-bin", default=os.environ.get("CHAOS_PRODUCER_BIN"))
    parser.add_argument("--subnet", default=os.environ.get("CHAOS_SUBNET", "10.217.0"))
    args = parser.parse_args()
    if args.recheck:
        return recheck(args.recheck)
    if args.seed is None or args.minutes is None:
        parser.error("--seed and --minutes are required")
    for name in ("broker_bin", "producer_bin"):
        path = getattr(args, name)
        if not path or not os.access(path, os.X_OK):
            print(f"chaos: --{name.replace('_', '-')} is not an executable: {path!r}", file=sys.stderr)
            return 2
    out = os.path.abspath(args.out or os.path.join(
        REPO_ROOT, "target", "chaos", f"seed-{args.seed}-{time.strftime('%Y%m%dT%H%M%S')}"))
    os.makedirs(out, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        status, summary = run(args, out)
    except Exception:  # noqa: BLE001 - the harness failed, not a check: exit 2 with the trace
        traceback.print_exc()
        print(f"CHAOS ERROR seed {args.seed}: the harness failed (logs in {out})", flush=True)
        return 2
    if summary is None:
        return status
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as file:
        json.dump(summary, file, indent=1, default=str)
    brief = {k: summary[k] for k in ("seed", "minutes", "verdict", "faults_injected", "faults_by_kind",
                                     "faults_not_recovered", "acked", "failed_deliveries", "lost", "duplicated",
                                     "duplicated_known_client_anomaly", "reordered", "inconsistent", "failover_s",
                                     "recovery_s_max", "output")}
    print_known_anomalies(summary["checks"])
    brief["checks"] = {k: ("ok" if r["ok"] else r) for k, r in summary["checks"].items()}
    print(json.dumps(brief, indent=1, default=str), flush=True)
    print(f"CHAOS {'PASS' if status == 0 else 'FAIL'} seed {args.seed}: {summary['verdict']}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
