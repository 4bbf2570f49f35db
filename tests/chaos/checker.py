"""The chaos checker: Jepsen's Kafka-workload checks over a run's histories, as pure functions
(no sockets, no processes), so tests/chaos/test_checker.py can feed them made-up histories.

Inputs:
- `acks`: every producer's delivery results (workload.py's ack lines);
- `log`: the final read, {(topic, partition): [(offset, key, value), ...]} below the HW;
- `ends`: {(topic, partition): high watermark at the final read};
- `consumers`: {member: [event, ...]} in the order each member saw them (workload.py).

Each check returns {"ok": bool, "count": n, "first": {...}} where `first` describes the first
violation with a small history around it (records of the final log near the offset, and the
acknowledgements and polls of those offsets).
"""

from collections import defaultdict

CONTEXT_OFFSETS = 3  # offsets either side of a violation shown in its history


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


def check(acks, log, ends, consumers):
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

    # Duplicates: one value at two offsets of the final log.
    duplicates = [(v, ps) for v, ps in log_positions.items() if len(ps) > 1]
    results["duplicate"] = verdict(duplicates, lambda d: {"value": d[0], "positions": d[1], **around(*d[1][1])})

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
    inconsistent += [("one value at two offsets", value, sorted(positions))
                     for value, positions in offsets_of.items() if len(positions) > 1]
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
    reordered = []
    for tp, entries in log.items():
        last = {}
        for offset, key, value in entries:
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

