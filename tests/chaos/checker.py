"""The chaos checker: Jepsen's Kafka-workload checks over a run's histories, as pure functions
(no sockets, no processes), so tests/chaos/test_checker.py can feed them made-up histories.

Inputs:
- `acks`: every producer's delivery results (workload.py's ack lines; a librdkafka producer's
  carry `"client": "librdkafka"`);
- `log`: the final read, {(topic, partition): [(offset, key, value), ...]} below the HW;
- `ends`: {(topic, partition): high watermark at the final read};
- `consumers`: {member: [event, ...]} in the order each member saw them (workload.py);
- `batches` (optional): {(topic, partition): [(base_offset, last_offset, producer_id,
  producer_epoch, base_sequence), ...]}, the batch headers of one replica's segment files
  (tests/cluster/segments.py `producer_batches`);
- `librdkafka_logs` (optional): {producer: [(time, line), ...]}, the librdkafka debug log of
  each confluent-kafka producer (workload.py `debug_settings`); only producers named here are
  librdkafka producers.

The one exception to "no duplicates": librdkafka#4953 (see `explain_librdkafka_duplicate`). A
duplicate is set aside as that known client anomaly only with evidence from both sides: the
batch headers say its first copy was written under one epoch of the producer and its second
under a later one, and the producer's own debug log says it bumped to that later epoch while
the record was in flight. The evidence (the log lines) is part of the verdict. Anything else —
a sluice-client producer's duplicate, a librdkafka duplicate without such log lines, or with
both copies under one epoch — stays a violation.

Each check returns {"ok": bool, "count": n, "first": {...}} where `first` describes the first
violation with a small history around it (records of the final log near the offset, and the
acknowledgements and polls of those offsets).
"""

import re
from collections import defaultdict

CONTEXT_OFFSETS = 3  # offsets either side of a violation shown in its history
KNOWN_CLIENT_ANOMALY = "librdkafka#4953"
# librdkafka's idempotence state machine (rdkafka_idempotence.c, debug context `eos`): the
# drain that precedes an epoch bump, with the PID it bumps from and why, and the bump itself.
DRAIN_FOR_BUMP = re.compile(r"Beginning partition drain in state \S+ for PID\{Id:(\d+),Epoch:(\d+)\} epoch bump")
BUMPED = re.compile(r"All partitions drained, bumped epoch to PID\{Id:(\d+),Epoch:(\d+)\}")
EVIDENCE_LINES_MAX = 8  # log lines quoted per explained duplicate


def producer_and_sequence(value):
    producer, _, sequence = value.rpartition("-")
    return producer, int(sequence)


def context(tp, offset, log_index, acks_at, polls_at):
    """The history of offsets near `offset` in partition `tp`: what the final log holds, what
    producers were told, what consumers saw."""
    lines = []
    for o in range(max(0, offset - CONTEXT_OFFSETS), offset + CONTEXT_OFFSETS + 1):
        lines.append({
            "offset": o,
            "log": log_index.get(tp, {}).get(o),
            "acked": sorted({a["value"] for a in acks_at.get((tp, o), [])}),
            "polled": sorted({p["value"] for p in polls_at.get((tp, o), [])}),
        })
    return {"topic": tp[0], "partition": tp[1], "around": lines}


def verdict(violations, describe):
    return {"ok": not violations, "count": len(violations), "first": describe(violations[0]) if violations else None}


def batch_at(batches, tp, offset):
    """The header fields of the batch holding `offset` in partition `tp`, or None."""
    for base, last, producer_id, producer_epoch, base_sequence in batches.get(tp, []):
        if base <= offset <= last:
            return {"base_offset": base, "last_offset": last, "producer_id": producer_id,
                    "producer_epoch": producer_epoch, "base_sequence": base_sequence}
    return None


def explain_librdkafka_duplicate(value, positions, acks_of, batches, librdkafka_logs):
    """The evidence that the duplicate of `value` (at `positions`, two offsets of one partition)
    is librdkafka#4953, or None when there is not all of it.

    The pattern: a batch was appended by the leader, but the client did not learn it (a
    retriable error such as NOT_ENOUGH_REPLICAS, a timeout, a lost connection); a later batch
    then got OUT_OF_ORDER_SEQUENCE_NUMBER, and librdkafka drained its in-flight requests,
    bumped its producer epoch itself (KIP-360 style) and sent the earlier batch again under the
    new epoch with sequence 0 — a fresh sequence under a new epoch, which no broker can tell from
    new records. Kafka's brokers answer the same requests the same way. Evidence required, all
    of it:
    1. the producer is a librdkafka producer: its delivery reports say `"client": "librdkafka"`
       (workload.py's LibrdkafkaProducer; sluice-client's never do) and it has a debug log in
       `librdkafka_logs`;
    2. exactly two copies, in one partition; the batch holding the first has producer id P and
       epoch E1, the batch holding the second has P and E2 > E1 (segment files);
    3. the producer's log has "bumped epoch to PID{Id:P,Epoch:E2}" at a time between the
       record's send and its delivery report (so the bump happened while it was in flight), and
       the drain that preceded it ("Beginning partition drain ... for PID{Id:P,Epoch:E2-1}
       epoch bump ...: <reason>") in the same window.
    """
    producer, _ = producer_and_sequence(value)
    log = librdkafka_logs.get(producer)
    if not log or len(positions) != 2 or positions[0][0] != positions[1][0]:
        return None
    tp = positions[0][0]
    first, second = sorted(positions, key=lambda p: p[1])
    first_batch, second_batch = batch_at(batches, tp, first[1]), batch_at(batches, tp, second[1])
    if first_batch is None or second_batch is None:
        return None
    producer_id = first_batch["producer_id"]
    if producer_id < 0 or second_batch["producer_id"] != producer_id:
        return None
    old_epoch, new_epoch = first_batch["producer_epoch"], second_batch["producer_epoch"]
    if not old_epoch < new_epoch:
        return None
    reports = acks_of.get(value, [])
    if not reports or any(r.get("client") != "librdkafka" for r in reports):
        return None
    sent, reported = min(r["sent"] for r in reports), max(r["at"] for r in reports)
    drain = bump = None
    for at, line in log:
        if not sent <= at <= reported:
            continue
        match = DRAIN_FOR_BUMP.search(line)
        if match and (int(match[1]), int(match[2])) == (producer_id, new_epoch - 1):
            drain = (at, line)
        match = BUMPED.search(line)
        if match and (int(match[1]), int(match[2])) == (producer_id, new_epoch) and drain is not None:
            bump = (at, line)
            break
    if bump is None:
        return None
    # For the reader (not required): why the client bumped (its ERRSEQ line under the old PID,
    # just before the drain), the partition's switch to the new PID and sequence base
    # (NEWPID, RESETSEQ), and what it sent for the partition under the new epoch after the bump.
    topic, partition = tp
    old_pid, new_pid = f"PID{{Id:{producer_id},Epoch:{new_epoch - 1}}}", f"PID{{Id:{producer_id},Epoch:{new_epoch}}}"
    why = [(at, line) for at, line in log if sent <= at <= drain[0] and "ERRSEQ" in line and old_pid in line][-1:]
    after = [(at, line) for at, line in log
             if at >= bump[0] and f"{topic} [{partition}]" in line and new_pid in line
             and ("Produce MessageSet" in line or "NEWPID" in line)]
    resets = [(at, line) for at, line in log if at >= bump[0] and "RESETSEQ" in line and f"{topic} [{partition}] " in line][:1]
    evidence = why + [drain, bump] + sorted(after[:EVIDENCE_LINES_MAX - 4] + resets)
    return {"anomaly": KNOWN_CLIENT_ANOMALY, "value": value, "positions": positions,
            "first_copy_batch": first_batch, "second_copy_batch": second_batch,
            "in_flight": {"sent": sent, "reported": reported},
            "evidence": [f"{at:.3f} {line}" for at, line in evidence]}


def check(acks, log, ends, consumers, batches=None, librdkafka_logs=None):
    acked = [a for a in acks if "error" not in a]
    log_index = {tp: {o: v for o, _, v in entries} for tp, entries in log.items()}
    acks_at = defaultdict(list)
    for a in acked:
        # librdkafka acknowledges some records without an offset (null): when a later batch of
        # the same idempotent producer succeeds after an earlier one timed out, it infers the
        # earlier batch was written (an "implicit ack"). They count as acknowledged for the
        # lost check; they name no offset to be consistent with.
        if a["offset"] is not None:
            acks_at[((a["topic"], a["partition"]), a["offset"])].append(a)
    polls = [dict(e, member=m) for m, events in consumers.items() for e in events if e["event"] == "poll"]
    polls_at = defaultdict(list)
    for p in polls:
        polls_at[((p["topic"], p["partition"]), p["offset"])].append(p)

    def around(tp, offset):
        return context(tp, offset, log_index, acks_at, polls_at)

    # Where each value is in the final log.
    log_positions = defaultdict(list)
    for tp, entries in log.items():
        for offset, _, value in entries:
            log_positions[value].append((tp, offset))

    # Lost: acknowledged, and nowhere in the final log.
    lost = [a for a in acked if a["value"] not in log_positions]
    results = {"lost": verdict(lost, lambda a: {"ack": a, **around((a["topic"], a["partition"]), a["offset"] or 0)})}

    # Duplicates: one value at two offsets of the final log. A duplicate with the whole evidence
    # of librdkafka#4953 is listed as a known client anomaly, with that evidence; every other
    # one is a violation.
    acks_of = defaultdict(list)
    for a in acks:
        acks_of[a["value"]].append(a)
    duplicates, explained = [], []
    for value, positions in log_positions.items():
        if len(positions) > 1:
            explanation = explain_librdkafka_duplicate(value, positions, acks_of, batches or {}, librdkafka_logs or {})
            (explained if explanation else duplicates).append(explanation or (value, positions))
    explained_values = {e["value"]: e for e in explained}
    results["duplicate"] = verdict(duplicates, lambda d: {"value": d[0], "positions": d[1], **around(*d[1][1])})
    results["duplicate"]["known_client_anomalies"] = explained

    # Inconsistent offsets: every observation (acknowledgement, poll, final log) of one offset
    # must name one value, and every observation of one value one offset.
    values_at = defaultdict(set)
    offsets_of = defaultdict(set)
    for (position, observed) in list(acks_at.items()) + list(polls_at.items()):
        for o in observed:
            values_at[position].add(o["value"])
            offsets_of[o["value"]].add(position)
    for tp, entries in log.items():
        for offset, _, value in entries:
            values_at[(tp, offset)].add(value)
            offsets_of[value].add((tp, offset))
    inconsistent = [("two values at one offset", position, sorted(values))
                    for position, values in values_at.items() if len(values) > 1]
    # An explained duplicate is one value at the two offsets of its copies; that, and only
    # that, is part of the known anomaly.
    inconsistent += [("one value at two offsets", value, sorted(positions))
                     for value, positions in offsets_of.items() if len(positions) > 1
                     and not (value in explained_values
                              and positions <= set(explained_values[value]["positions"]))]
    # A record a consumer saw (below the HW it was served under) must still be in the final log.
    inconsistent += [("polled but not in the final log", p["value"], [((p["topic"], p["partition"]), p["offset"])])
                     for p in polls if p["value"] not in log_positions]
    inconsistent.sort(key=str)

    def describe_inconsistent(violation):
        kind, subject, observed = violation
        position = subject if kind == "two values at one offset" else observed[0]
        return {"kind": kind, "subject": subject, "observed": observed, **around(*position)}
    results["inconsistent"] = verdict(inconsistent, describe_inconsistent)

    # Per-key order: within a partition, one producer's records of one key in sequence order.
    # The second copy of an explained duplicate is the first one sent again: the order is the
    # first copy's.
    second_copies = {max(e["positions"], key=lambda p: p[1]) for e in explained}
    reordered = []
    for tp, entries in log.items():
        last = {}
        for offset, key, value in entries:
            if (tp, offset) in second_copies:
                continue
            producer, sequence = producer_and_sequence(value)
            previous = last.get((producer, key))
            if previous is not None and sequence < previous[1]:
                reordered.append((tp, offset, value, previous))
            last[(producer, key)] = (offset, sequence)
    results["reordered"] = verdict(
        reordered, lambda r: {"value": r[2], "after_offset": r[3][0], **around(r[0], r[1])})

    results["poll"] = check_polls(consumers, around)
    results["commits"] = check_commits(consumers, ends)
    return results


def check_polls(consumers, around):
    """A member that keeps a partition (no revoke or lost in between) polls it at consecutive
    offsets: never skips one (offsets in these topics are dense: no transactions, no
    compaction) and never goes back."""
    violations = []
    for member, events in consumers.items():
        last = {}
        for event in events:
            if event["event"] in ("assign", "revoke", "lost"):
                for topic, partition in event["partitions"]:
                    last.pop((topic, partition), None)
            elif event["event"] == "poll":
                tp = (event["topic"], event["partition"])
                previous = last.get(tp)
                if previous is not None and event["offset"] != previous + 1:
                    kind = "skip" if event["offset"] > previous + 1 else "non-monotonic"
                    violations.append((kind, member, tp, previous, event["offset"]))
                last[tp] = event["offset"]
    return verdict(violations, lambda v: {"kind": v[0], "member": v[1], "previous": v[3], "offset": v[4],
                                          **around(v[2], v[4])})


def check_commits(consumers, ends):
    """Committed offsets never go backwards (a commit that returned before another began sets an
    offset no greater than it) and never pass the high watermark."""
    commits = defaultdict(list)
    for member, events in consumers.items():
        for event in events:
            if event["event"] == "commit":
                commits[(event["topic"], event["partition"])].append(dict(event, member=member))
    violations = []
    for tp, entries in commits.items():
        entries.sort(key=lambda e: e["started"])
        highest = None  # the highest offset of commits that returned before the current one began
        finished = sorted(entries, key=lambda e: e["at"])
        index = 0
        for entry in entries:
            while index < len(finished) and finished[index]["at"] < entry["started"]:
                if highest is None or finished[index]["offset"] > highest["offset"]:
                    highest = finished[index]
                index += 1
            if highest is not None and entry["offset"] < highest["offset"]:
                violations.append(("backwards", tp, highest, entry))
        hw = ends.get(tp)
        for entry in entries:
            if hw is not None and entry["offset"] > hw:
                violations.append(("above the high watermark", tp, {"offset": hw}, entry))
    return verdict(violations, lambda v: {"kind": v[0], "topic": v[1][0], "partition": v[1][1],
                                          "earlier": v[2], "commit": v[3]})


def check_group_consumed(acks, consumers):
    """Once the group has caught up with the final high watermarks, every acknowledged record
    was polled by some member: a commit that ran ahead of what its member had polled would
    make the next owner of the partition start past records nobody consumed."""
    polled = {e["value"] for events in consumers.values() for e in events if e["event"] == "poll"}
    missed = [a for a in acks if "error" not in a and a["value"] not in polled]
    return verdict(missed, lambda a: {"ack": a})

