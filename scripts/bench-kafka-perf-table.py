#!/usr/bin/env python3
"""The table and the per-case summary lines of scripts/bench-kafka-perf.sh.

Usage: bench-kafka-perf-table.py RESULTS CASES KAFKA_LABEL SLUICE_LABEL

RESULTS holds one tab-separated row per measured step: broker, case id, client, step, records,
record bytes, records/s, broker CPU seconds, broker peak RSS (kB), broker RSS at the end (kB), and
the producer perf test's summary line (or "-"). CASES holds "case-id size partitions acks" lines.
Prints a Markdown table (one row per step and broker, a case's brokers next to each other) and,
per case, the Sluice/Kafka ratios of records/s per step, of broker CPU seconds per GB over the
case's steps, and of broker RSS.
"""

import re
import sys
from collections import defaultdict

# The latency part of kafka-producer-perf-test's summary line.
LATENCY = re.compile(
    r"([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th"
)


def main(results_path, cases_path, kafka, sluice):
    rows = defaultdict(list)  # case id -> rows in the order measured
    with open(results_path) as results:
        for line in results:
            (broker, case_id, client, step, records, size, rate, cpu, hwm, rss, summary) = (
                line.rstrip("\n").split("\t")
            )
            rows[case_id].append(
                dict(broker=broker, client=client, step=step, records=int(records),
                     size=int(size), rate=float(rate), cpu=float(cpu), hwm_kb=int(hwm),
                     rss_kb=int(rss), summary=summary)
            )
    cases = [line.split() for line in open(cases_path) if line.strip()]

    print("| size | part. | acks | client | step | broker | records/s | MB/s "
          "| producer latency ms: avg / p50 / p99 / max | broker CPU s | broker CPU s/GB "
          "| broker RSS MB: peak / end |")
    print("|---:|---:|---|---|---|---|---:|---:|---|---:|---:|---|")
    for case_id, size, partitions, acks in cases:
        for step_rows in paired(rows[case_id], kafka, sluice):
            for row in step_rows:
                gigabytes = row["records"] * row["size"] / 1e9
                print(f"| {size} B | {partitions} | {acks} | {row['client']} | {row['step']} "
                      f"| {row['broker']} | {row['rate']:,.0f} "
                      f"| {row['rate'] * row['size'] / 1e6:,.1f} | {latency(row['summary'])} "
                      f"| {row['cpu']:.2f} | {row['cpu'] / gigabytes:.1f} "
                      f"| {row['hwm_kb'] / 1024:,.0f} / {row['rss_kb'] / 1024:,.0f} |")
    print()
    for case_id, size, partitions, acks in cases:
        print(summary_line(rows[case_id], size, partitions, acks, kafka, sluice))


def paired(case_rows, kafka, sluice):
    """The case's rows grouped by (client, step), Kafka's row first, in the order measured."""
    groups = {}
    for row in case_rows:
        fixed_rate = row["step"] not in ("produce", "consume")
        groups.setdefault((row["client"], "fixed rate" if fixed_rate else row["step"]),
                          []).append(row)
    order = {kafka: 0, sluice: 1}
    return [sorted(group, key=lambda row: order[row["broker"]]) for group in groups.values()]


def latency(summary):
    if summary == "-":
        return ""
    m = LATENCY.search(summary)
    if not m:
        sys.exit(f"unexpected producer summary: {summary}")
    avg, peak, p50, _p95, p99 = m.groups()
    return f"{float(avg):.1f} / {p50} / {p99} / {float(peak):.0f}"


def summary_line(case_rows, size, partitions, acks, kafka, sluice):
    """Sluice/Kafka ratios of one case: records/s per step (unbounded steps), broker CPU
    seconds per GB over the unbounded steps, peak RSS over the case, RSS at its end."""
    by_broker = {kafka: {}, sluice: {}}
    totals = {kafka: [0.0, 0.0, 0, 0], sluice: [0.0, 0.0, 0, 0]}  # cpu, GB, peak kB, end kB
    for row in case_rows:
        total = totals[row["broker"]]
        total[2] = max(total[2], row["hwm_kb"])
        total[3] = row["rss_kb"]
        if row["step"] not in ("produce", "consume"):
            continue  # the fixed-rate run: its rate is chosen, not measured
        by_broker[row["broker"]][f"{row['client']} {row['step']}"] = row["rate"]
        total[0] += row["cpu"]
        total[1] += row["records"] * row["size"] / 1e9
    ratios = ", ".join(
        f"{name} {by_broker[sluice][name] / by_broker[kafka][name]:.2f}x"
        for name in by_broker[kafka] if name in by_broker[sluice]
    )
    cpu_per_gb = {broker: cpu / gb for broker, (cpu, gb, _, _) in totals.items()}
    return (
        f"- {size} B, {partitions} partition{'s' if partitions != '1' else ''}, acks={acks}: "
        f"Sluice/Kafka records/s {ratios}; broker CPU s per GB "
        f"{cpu_per_gb[sluice]:.1f} / {cpu_per_gb[kafka]:.1f} = "
        f"{cpu_per_gb[sluice] / cpu_per_gb[kafka]:.2f}x; broker RSS peak "
        f"{totals[sluice][2] / 1024:,.0f} / {totals[kafka][2] / 1024:,.0f} MB = "
        f"{totals[sluice][2] / totals[kafka][2]:.2f}x, at the end "
        f"{totals[sluice][3] / 1024:,.0f} / {totals[kafka][3] / 1024:,.0f} MB = "
        f"{totals[sluice][3] / totals[kafka][3]:.2f}x"
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
