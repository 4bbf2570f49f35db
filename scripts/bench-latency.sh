#!/usr/bin/env bash
# Latency at a fixed rate, like the OpenMessaging Benchmark's workloads (issue 14): what
# `sluice bench produce|end-to-end --workload omb` runs, one point at a time, each into a fresh
# topic that is deleted afterwards (a point writes up to a few GB; left in the page cache, the
# kernel would start throttling later points at disk speed and they would measure that).
#
#   1. builds the release broker and CLI;
#   2. starts the broker on free ports with a temporary data directory (Kafka's topic defaults:
#      flush left to the OS);
#   3. for acks=1 and acks=all, 1 KiB records, PARTITIONS partitions, one producer:
#      a. the maximum: `sluice bench produce` unbounded for PROBE seconds;
#      b. at 50% and 90% of that maximum, POINT seconds each: `sluice bench produce --rate R`
#         (latency from each record's intended send time to its acknowledgement), then
#         `sluice bench end-to-end --rate R` (intended send time to consumed);
#   4. prints one Markdown row per run, with the machine and its load before and after.
#
# Latencies are coordinated-omission-safe: measured from the fixed schedule's intended send
# time, so a stall counts against every record due during it. No warm-up is discarded.
#
# Usage: bash scripts/bench-latency.sh        (PROBE=5 POINT=20 PARTITIONS=4 by default;
#                                             about 3.5 minutes after the build)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROBE="${PROBE:-5}"
POINT="${POINT:-20}"
PARTITIONS="${PARTITIONS:-4}"
SIZE=1024
cd "$REPO_ROOT"
# SLUICE_BROKER_BIN and SLUICE_CLI_BIN (both) run given release binaries instead of building.
if [[ -z "${SLUICE_BROKER_BIN:-}" || -z "${SLUICE_CLI_BIN:-}" ]]; then
    cargo build --release -p sluice-broker --bin sluice-broker -p sluice-cli --bin sluice >/dev/null
fi
BROKER="${SLUICE_BROKER_BIN:-$REPO_ROOT/target/release/sluice-broker}"
SLUICE="${SLUICE_CLI_BIN:-$REPO_ROOT/target/release/sluice}"
# shellcheck source=lib/local-broker.sh
. "$REPO_ROOT/scripts/lib/local-broker.sh"
WORK="$(mktemp -d -t sluice-bench-latency.XXXXXX)"
cleanup() {
    kill "$BROKER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

machine_line
echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), $SIZE B records, $PARTITIONS partitions, probe $PROBE s, $POINT s per point"

start_local_broker "$BROKER" "$WORK"

bench() { # topic, then the arguments of `sluice bench`; prints the JSON lines; deletes the topic
    local topic="$1"
    shift
    "$SLUICE" -b "127.0.0.1:$KAFKA" bench "$@" -t "$topic" -p "$PARTITIONS" --json
    "$SLUICE" -b "127.0.0.1:$KAFKA" topic delete "$topic" >/dev/null
}

echo
echo "| acks | run | load | target records/s | records | records/s | MB/s | p50 ms | p99 ms | p99.9 ms | max ms |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
row() { # acks, load, json line
    python3 - "$@" <<'PY'
import json, sys
acks, load, line = sys.argv[1:4]
r = json.loads(line)
target = f"{r['target_records_per_s']:,}" if 'target_records_per_s' in r else "-"
print(f"| {acks} | {r['benchmark']} | {load} | {target} | {r['records']:,} | {r['records_per_s']:,} | "
      f"{r['mb_per_s']:,.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['p999_ms']:.2f} | {r['max_ms']:.2f} |")
PY
}
for ACKS in 1 all; do
    LINE="$(bench "latency-max-$ACKS" produce -s "$SIZE" --duration "$PROBE" --acks "$ACKS")"
    row "$ACKS" "max" "$LINE"
    MAX="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["records_per_s"])' "$LINE")"
    for LOAD in 50 90; do
        RATE=$((MAX * LOAD / 100))
        LINE="$(bench "latency-produce-$ACKS-$LOAD" produce -s "$SIZE" --rate "$RATE" --duration "$POINT" --acks "$ACKS")"
        row "$ACKS" "$LOAD%" "$LINE"
        LINE="$(bench "latency-e2e-$ACKS-$LOAD" end-to-end -s "$SIZE" --rate "$RATE" --duration "$POINT" --acks "$ACKS")"
        row "$ACKS" "$LOAD%" "$LINE"
    done
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
