"""Markdown table of chaos runs, for docs/reliability.md: one row per run directory, then a
total row (failover p50 and max over every single fault of every run).

    python tests/chaos/report.py target/chaos/seed-1-* target/chaos/seed-2-* ...
"""

import json
import os
import statistics
import sys


def main(directories):
    rows = []
    failovers = []
    totals = {"faults": 0, "acked": 0, "lost": 0, "duplicated": 0, "reordered": 0, "inconsistent": 0}
    print("| seed | min | faults (by kind) | acked | lost | dup | reordered | inconsistent | other checks | failover p50 / max (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for directory in directories:
        path = os.path.join(directory, "summary.json")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as file:
            summary = json.load(file)
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(summary["faults_by_kind"].items()))
        single = [f["failover_s"] for f in summary["faults"]
                  if f.get("failover_s") is not None and f["kind"] in ("kill", "pause", "isolate")]
        failovers += single
        others = [name for name, result in summary["checks"].items()
                  if name not in ("lost", "duplicate", "reordered", "inconsistent") and not result["ok"]]
        spread = f"{statistics.median(single):.2f} / {max(single):.2f}" if single else "–"
        print(f"| {summary['seed']} | {summary['minutes']:g} | {summary['faults_injected']} ({kinds}) | "
              f"{summary['acked']} | {summary['lost']} | {summary['duplicated']} | {summary['reordered']} | "
              f"{summary['inconsistent']} | {'FAILED: ' + ', '.join(others) if others else 'all ok'} | {spread} |")
        totals["faults"] += summary["faults_injected"]
        for key in ("acked", "lost", "duplicated", "reordered", "inconsistent"):
            totals[key] += summary[key]
        rows.append(summary)
    spread = f"{statistics.median(failovers):.2f} / {max(failovers):.2f}" if failovers else "–"
    print(f"| **{len(rows)} runs** | | **{totals['faults']}** | **{totals['acked']}** | **{totals['lost']}** | "
          f"**{totals['duplicated']}** | **{totals['reordered']}** | **{totals['inconsistent']}** | | **{spread}** |")


if __name__ == "__main__":
    main(sys.argv[1:])
