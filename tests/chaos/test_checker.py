"""The checker against made-up histories: each test builds a small history with exactly one kind
of anomaly (or none) and requires the checker to find exactly it. No cluster, no sockets:
`.venv/bin/python -m pytest tests/chaos/test_checker.py`.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checker  # noqa: E402
import nemesis  # noqa: E402

TP = ("t", 0)


def ack(value, offset, key="k0", partition=0, at=1.0):
    return {"producer": value.rpartition("-")[0], "topic": "t", "key": key, "value": value,
            "partition": partition, "offset": offset, "sent": at - 0.1, "at": at}


def clean_history(count=5):
    acks = [ack(f"p-{i}", i) for i in range(count)]
    log = {TP: [(i, "k0", f"p-{i}") for i in range(count)]}
    return acks, log, {TP: count}


def failed_checks(results):
    return sorted(name for name, result in results.items() if not result["ok"])


def test_a_clean_history_passes_every_check():
    acks, log, ends = clean_history()
    consumers = {"m0": [{"event": "assign", "partitions": [["t", 0]]}]
                 + [{"event": "poll", "topic": "t", "partition": 0, "offset": i, "value": f"p-{i}"} for i in range(5)]
                 + [{"event": "commit", "topic": "t", "partition": 0, "offset": 5, "started": 2.0, "at": 2.1}]}
    assert failed_checks(checker.check(acks, log, ends, consumers)) == []


def test_an_acknowledged_record_missing_from_the_log_is_lost():
    acks, log, ends = clean_history()
    log[TP] = log[TP][:3]
    results = checker.check(acks, log, {TP: 3}, {})
    assert failed_checks(results) == ["lost"]
    assert results["lost"]["count"] == 2
    assert results["lost"]["first"]["ack"]["value"] == "p-3"


def test_a_value_twice_in_the_log_is_a_duplicate_and_at_two_offsets():
    acks, log, ends = clean_history()
    log[TP].append((5, "k0", "p-4"))
    results = checker.check(acks, log, {TP: 6}, {})
    assert failed_checks(results) == ["duplicate", "inconsistent"]
    assert results["duplicate"]["first"]["positions"] == [(TP, 4), (TP, 5)]


def test_an_acknowledgement_naming_another_offset_is_inconsistent():
    acks, log, ends = clean_history()
    acks[2]["offset"] = 3  # the log holds p-2 at 2 and p-3 at 3
    results = checker.check(acks, log, ends, {})
    assert failed_checks(results) == ["inconsistent"]
    kinds = {v for v in [results["inconsistent"]["first"]["kind"]]}
    assert kinds <= {"two values at one offset", "one value at two offsets"}
    assert results["inconsistent"]["count"] == 2  # offset 3 has two values, p-2 two offsets


def test_a_consumer_that_read_a_record_later_gone_is_inconsistent():
    acks, log, ends = clean_history()
    consumers = {"m0": [{"event": "assign", "partitions": [["t", 0]]},
                        {"event": "poll", "topic": "t", "partition": 0, "offset": 5, "value": "p-99"}]}
    results = checker.check(acks, log, ends, consumers)
    assert failed_checks(results) == ["inconsistent"]
    assert results["inconsistent"]["first"]["kind"] == "polled but not in the final log"


def test_one_producer_key_out_of_sequence_order_is_reordered():
    acks, log, ends = clean_history()
    log[TP][1], log[TP][2] = (1, "k0", "p-2"), (2, "k0", "p-1")
    acks = []  # only the log's order is under test here
    results = checker.check(acks, log, ends, {})
    assert failed_checks(results) == ["reordered"]
    # Different producers or different keys interleave freely.
    log = {TP: [(0, "k0", "a-2"), (1, "k0", "b-1"), (2, "k1", "a-1")]}
    assert failed_checks(checker.check([], log, {TP: 3}, {})) == []


def test_a_poll_that_skips_or_goes_back_without_reassignment_is_flagged():
    acks, log, ends = clean_history()
    assign = {"event": "assign", "partitions": [["t", 0]]}
    revoke = {"event": "revoke", "partitions": [["t", 0]]}

    def poll(offset):
        return {"event": "poll", "topic": "t", "partition": 0, "offset": offset, "value": f"p-{offset}"}

    def verdict(*events):
        return checker.check(acks, log, ends, {"m0": list(events)})["poll"]

    assert verdict(assign, poll(0), poll(1), poll(2))["ok"]
    assert verdict(assign, poll(0), poll(1), poll(3))["first"]["kind"] == "skip"
    assert verdict(assign, poll(0), poll(1), poll(2), poll(1))["first"]["kind"] == "non-monotonic"
    # After a reassignment a member may start anywhere (its group's committed offset).
    assert verdict(assign, poll(0), poll(1), poll(2), revoke, assign, poll(1), poll(2))["ok"]
    assert verdict(assign, poll(3), revoke, assign, poll(0), poll(1))["ok"]
    # Another member's polls are its own sequence.
    both = {"m0": [assign, poll(0), poll(1)], "m1": [assign, poll(0), poll(1)]}
    assert checker.check(acks, log, ends, both)["poll"]["ok"]


def test_commits_going_backwards_or_above_the_high_watermark_are_flagged():
    acks, log, ends = clean_history()

    def commit(offset, started, at, member="m0"):
        return {"event": "commit", "topic": "t", "partition": 0, "offset": offset, "started": started, "at": at,
                "member": member}

    backwards = {"m0": [commit(4, 1.0, 1.1)], "m1": [commit(2, 2.0, 2.1, "m1")]}
    assert checker.check(acks, log, ends, backwards)["commits"]["first"]["kind"] == "backwards"
    # Two commits in flight at once may land in either order: not a violation.
    overlapping = {"m0": [commit(4, 1.0, 2.5)], "m1": [commit(2, 2.0, 2.1, "m1")]}
    assert checker.check(acks, log, ends, overlapping)["commits"]["ok"]
    above = {"m0": [commit(6, 1.0, 1.1)]}
    assert checker.check(acks, log, ends, above)["commits"]["first"]["kind"] == "above the high watermark"


def test_a_seed_always_names_the_same_schedule_and_fills_the_run():
    first = nemesis.schedule(7, 120, partitions=4)
    assert first == nemesis.schedule(7, 120, partitions=4)
    assert first != nemesis.schedule(8, 120, partitions=4)
    assert sum(s["quiet_s"] + s["hold_s"] for s in first) >= 120
    for step in first:
        assert step["kind"] in nemesis.HOLD_S and step["target"] in nemesis.TARGETS
        low, high = nemesis.HOLD_S[step["kind"]]
        assert low <= step["hold_s"] <= high
        if step["kind"] == "pause":
            assert step["hold_s"] > 1.5  # longer than the broker session timeout
    kinds = {s["kind"] for seed in range(20) for s in nemesis.schedule(seed, 300, partitions=4)}
    assert kinds == set(nemesis.HOLD_S)  # every kind is drawn


def test_an_acknowledged_record_no_member_polled_is_unconsumed():
    acks, log, ends = clean_history(3)
    polls = [{"event": "poll", "topic": "t", "partition": 0, "offset": o, "value": f"p-{o}"} for o in (0, 2)]
    verdict = checker.check_group_consumed(acks, {"m0": polls})
    assert not verdict["ok"] and verdict["first"]["ack"]["value"] == "p-1"
    polls.append({"event": "poll", "topic": "t", "partition": 0, "offset": 1, "value": "p-1"})
    assert checker.check_group_consumed(acks, {"m0": polls})["ok"]


def test_an_acknowledgement_without_an_offset_counts_for_loss_only():
    # librdkafka's implicit acknowledgement: success, offset unknown (None).
    acks, log, ends = clean_history()
    acks[1]["offset"] = None
    assert failed_checks(checker.check(acks, log, ends, {})) == []
    log[TP] = [entry for entry in log[TP] if entry[2] != "p-1"]
    assert failed_checks(checker.check(acks, log, ends, {})) == ["lost"]


# librdkafka#4953: rk-2 written at offset 2 under epoch 0 of producer id 7, the client bumps to
# epoch 1 while rk-2 is in flight and sends it again, now at offset 5 under epoch 1.
PRODUCER_ID = 7


def duplicate_history(producer="rk", client="librdkafka"):
    values = [f"{producer}-{i}" for i in range(5)]
    acks = [dict(ack(v, i, at=10.0 + i), **({"client": client} if client else {})) for i, v in enumerate(values)]
    acks[2].update({"sent": 10.0, "at": 20.0, "offset": 5})  # reported after the resend
    log = {TP: [(i, "k0", v) for i, v in enumerate(values)] + [(5, "k0", values[2])]}
    batches = {TP: [(0, 2, PRODUCER_ID, 0, 0), (3, 4, PRODUCER_ID, 0, 3), (5, 5, PRODUCER_ID, 1, 0)]}
    return acks, log, {TP: 6}, batches


def bump_log(producer_id=PRODUCER_ID, at=15.0):
    """librdkafka's lines around an epoch bump, in the format of a real run's rdkafka-rk.log."""
    old, new = f"PID{{Id:{producer_id},Epoch:0}}", f"PID{{Id:{producer_id},Epoch:1}}"
    return [
        (at - 1, "MSGSET [rdkafka#producer-1] [thrd:10.217.0.12:9092/2]: 10.217.0.12:9092/2: t [0]: MessageSet with "
                 "1 message(s) (MsgId 3, BaseSeq 2) encountered error: Broker: Not enough in-sync replicas "
                 "(actions Retry,MsgNotPersisted)"),
        (at, "MSGSET [rdkafka#producer-1] [thrd:10.217.0.12:9092/2]: 10.217.0.12:9092/2: t [0]: MessageSet with 2 "
             "message(s) (MsgId 4, BaseSeq 3) encountered error: Broker: Broker received an out of order sequence "
             "number (actions Permanent,MsgPossiblyPersisted)"),
        (at, f"ERRSEQ [rdkafka#producer-1] [thrd:10.217.0.12:9092/2]: 10.217.0.12:9092/2: ProduceRequest for t [0] "
             f"with 2 message(s) failed due to skipped sequence numbers ({old}, base seq 3 > next seq 2) caused by "
             f"previous failed request (NOT_ENOUGH_REPLICAS, actions Retry,MsgNotPersisted)"),
        (at, f"DRAIN [rdkafka#producer-1] [thrd:10.217.0.12:9092/2]: Beginning partition drain in state Assigned for "
             f"{old} epoch bump for 1 partition(s) with in-flight requests: skipped sequence numbers"),
        (at + 0.5, f"DRAIN [rdkafka#producer-1] [thrd:10.217.0.12:9092/2]: All partitions drained, bumped epoch to {new}"),
        (at + 0.5, f"NEWPID [rdkafka#producer-1] [thrd:10.217.0.12:9092/2]: t [0] changed {old} -> {new} with base "
                   f"MsgId 3"),
        (at + 0.5, "RESETSEQ [rdkafka#producer-1] [thrd:10.217.0.12:9092/2]: t [0] resetting epoch base seq from 1 to 3"),
        (at + 0.6, f"PRODUCE [rdkafka#producer-1] [thrd:10.217.0.12:9092/2]: 10.217.0.12:9092/2: t [0]: Produce "
                   f"MessageSet with 3 message(s) (180 bytes, ApiVersion 9, MsgVersion 2, MsgId 3, BaseSeq 0, {new}, "
                   f"uncompressed)"),
    ]


# An unexplained duplicate: the value twice, at two offsets, and (every record has key k0) the
# second copy of rk-2 after rk-4 breaks the key's order.
UNEXPLAINED = ["duplicate", "inconsistent", "reordered"]


def test_a_librdkafka_duplicate_with_an_epoch_bump_in_its_log_is_a_known_client_anomaly():
    acks, log, ends, batches = duplicate_history()
    results = checker.check(acks, log, ends, {}, batches, {"rk": bump_log()})
    assert failed_checks(results) == []
    explained = results["duplicate"]["known_client_anomalies"]
    assert len(explained) == 1 and explained[0]["anomaly"] == "librdkafka#4953"
    assert explained[0]["value"] == "rk-2" and explained[0]["positions"] == [(TP, 2), (TP, 5)]
    assert (explained[0]["first_copy_batch"]["producer_epoch"], explained[0]["second_copy_batch"]["producer_epoch"]) == (0, 1)
    evidence = explained[0]["evidence"]
    assert "skipped sequence numbers (PID{Id:7,Epoch:0}" in evidence[0]
    assert "epoch bump" in evidence[1] and "Epoch:0" in evidence[1]
    assert "bumped epoch to PID{Id:7,Epoch:1}" in evidence[2]
    assert "NEWPID" in evidence[3] and "RESETSEQ" in evidence[4]
    assert "BaseSeq 0" in evidence[5]


def test_a_librdkafka_duplicate_without_the_evidence_is_a_violation():
    acks, log, ends, batches = duplicate_history()

    def failed(batches, logs, acks=acks):
        return failed_checks(checker.check(acks, log, ends, {}, batches, logs))

    # No debug log, or one without a bump.
    assert failed(batches, {}) == UNEXPLAINED
    assert failed(batches, {"rk": bump_log()[:3]}) == UNEXPLAINED
    # A bump of another producer id, or to an epoch the second copy was not written under.
    assert failed(batches, {"rk": bump_log(producer_id=8)}) == UNEXPLAINED
    same_epoch = {TP: [(0, 2, PRODUCER_ID, 0, 0), (3, 4, PRODUCER_ID, 0, 3), (5, 5, PRODUCER_ID, 0, 5)]}
    assert failed(same_epoch, {"rk": bump_log()}) == UNEXPLAINED
    # No batch headers to say which epoch wrote each copy.
    assert failed({}, {"rk": bump_log()}) == UNEXPLAINED
    # A bump before the record was sent or after it was reported is not while it was in flight.
    assert failed(batches, {"rk": bump_log(at=5.0)}) == UNEXPLAINED
    assert failed(batches, {"rk": bump_log(at=25.0)}) == UNEXPLAINED
    # A record never reported has no in-flight window.
    assert failed(batches, {"rk": bump_log()}, acks=[a for a in acks if a["value"] != "rk-2"]) \
        == UNEXPLAINED
    # The verdict names the value and its two offsets.
    results = checker.check(acks, log, ends, {}, batches, {})
    assert results["duplicate"]["first"]["value"] == "rk-2"
    assert results["duplicate"]["known_client_anomalies"] == []


def test_a_sluice_client_duplicate_is_a_violation_whatever_a_log_says():
    # The same history from the sluice-client producer "sc" (its delivery reports name no
    # client): without a librdkafka log, with another producer's, and even with a log showing
    # the bump filed under its own name, it stays a violation.
    acks, log, ends, batches = duplicate_history("sc", client=None)
    for logs in ({}, {"rk": bump_log()}, {"sc": bump_log()}):
        results = checker.check(acks, log, ends, {}, batches, logs)
        assert failed_checks(results) == UNEXPLAINED
        assert results["duplicate"]["first"]["value"] == "sc-2"
