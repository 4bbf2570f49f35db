#!/usr/bin/env bash
# Replication's cost (issue 10's benchmark): one broker with acks=1 against three brokers with
# replication factor 3, min.insync.replicas 2 and acks=all, on this machine, same client
# (`sluice bench produce`, idempotent), same run.
#
#   1. builds the release broker and CLI;
#   2. starts one broker, creates a 6-partition topic (replication factor 1), and measures the
#      maximum: RECORDS records of SIZE bytes, acks=1; then at a fixed rate of half that
#      maximum for RATE_SECONDS, the produce latency (send → acknowledgement) p50/p99/p99.9;
#   3. stops it; starts three brokers (all metadata voters) and does the same with a
#      6-partition topic at replication factor 3, min.insync.replicas 2, acks=all;
#   4. prints one Markdown row per run and the throughput ratio RF3/RF1, and for the maximum
#      runs the CPU time per record of all brokers together and of the client (from
#      /proc/PID/stat and /usr/bin/time), so the cost of replication is seen apart from how
#      many cores the machine has.
#
# All brokers and the client share the machine's cores (2 here), so the 3-broker figures
# include three processes' CPU, as a 3-node cluster on one host would: with the cores busy,
# the throughput ratio is bounded by the CPU ratio, not by the replication protocol.
#
# Usage: bash scripts/bench-replication.sh   (RECORDS=300000 SIZE=1024 RATE_SECONDS=20;
#        BENCH_ARGS="--batch-size 262144" passes client settings to every run;
#        SLUICE_BROKER_BIN=... SLUICE=... run given binaries instead of building the release
#        ones, e.g. to compare two commits' brokers with the same client)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RECORDS="${RECORDS:-300000}"
SIZE="${SIZE:-1024}"
RATE_SECONDS="${RATE_SECONDS:-20}"
read -r -a BENCH_ARGS <<<"${BENCH_ARGS:-}"
cd "$REPO_ROOT"
if [ -z "${SLUICE_BROKER_BIN:-}" ] || [ -z "${SLUICE:-}" ]; then
    cargo build --release -p sluice-broker --bin sluice-broker -p sluice-cli --bin sluice >/dev/null
fi
BROKER="${SLUICE_BROKER_BIN:-$REPO_ROOT/target/release/sluice-broker}"
SLUICE="${SLUICE:-$REPO_ROOT/target/release/sluice}"
WORK="$(mktemp -d -t sluice-bench-replication.XXXXXX)"
PIDS=()
stop_brokers() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap 'stop_brokers; rm -rf "$WORK"' EXIT

ports() { # count
    python3 -c '
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])' "$1"
}

start_cluster() { # size -> sets BOOTSTRAP
    local size="$1" i voters="" bootstrap=""
    read -r -a P <<<"$(ports $((3 * size)))"
    for ((i = 0; i < size; i++)); do
        voters+="${voters:+,}$((i + 1))@127.0.0.1:${P[3 * i + 1]}"
        bootstrap+="${bootstrap:+,}127.0.0.1:${P[3 * i]}"
    done
    for ((i = 0; i < size; i++)); do
        "$BROKER" --node-id $((i + 1)) --data-dir "$WORK/$size-$i" --listen "127.0.0.1:${P[3 * i]}" \
            --raft-listen "127.0.0.1:${P[3 * i + 1]}" --admin-listen "127.0.0.1:${P[3 * i + 2]}" \
            --voters "$voters" >"$WORK/broker-$size-$i.log" 2>&1 &
        PIDS+=($!)
    done
    for ((i = 0; i < size; i++)); do
        until curl -sf "http://127.0.0.1:${P[3 * i + 2]}/ready" >/dev/null; do sleep 0.1; done
    done
    BOOTSTRAP="$bootstrap"
}

# CPU seconds (user + system) the running brokers have used so far.
brokers_cpu_s() {
    local pid total=0
    for pid in "${PIDS[@]}"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    python3 -c 'import os, sys; print(int(sys.argv[1]) / os.sysconf("SC_CLK_TCK"))' "$total"
}

row() { # label, acks, json, [broker CPU s, client CPU s, records]
    python3 - "$@" <<'PY'
import json, sys
label, acks, line = sys.argv[1:4]
r = json.loads(line)
cpu = "| | "
if len(sys.argv) > 6:
    broker_s, client_s, records = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    cpu = f"| {broker_s * 1e6 / records:.1f} | {client_s * 1e6 / records:.1f} "
print(f"| {label} | {acks} | {r['records_per_s']:,.0f} | {r['mb_per_s']:,.1f} | {r['p50_ms']} | {r['p99_ms']} | {r['p999_ms']} {cpu}|")
PY
}

measure() { # label, replication factor, acks
    local label="$1" rf="$2" acks="$3" topic="bench-rf$2"
    "$SLUICE" -b "$BOOTSTRAP" topic create "$topic" -p 6 -r "$rf" --config min.insync.replicas=$(( rf > 1 ? 2 : 1 )) >/dev/null
    sleep 1
    local max half before after client
    before="$(brokers_cpu_s)"
    max="$(/usr/bin/time -f '%U %S' -o "$WORK/client-time" \
        "$SLUICE" -b "$BOOTSTRAP" bench produce -t "$topic" -n "$RECORDS" -s "$SIZE" -p 6 --acks "$acks" "${BENCH_ARGS[@]}" --json)"
    after="$(brokers_cpu_s)"
    client="$(awk '{print $1 + $2}' "$WORK/client-time")"
    row "$label, max" "$acks" "$max" "$(python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$before" "$after")" "$client" "$RECORDS"
    half="$(python3 -c 'import json,sys; print(max(1, json.loads(sys.argv[1])["records_per_s"] // 2))' "$max")"
    local fixed
    fixed="$("$SLUICE" -b "$BOOTSTRAP" bench produce -t "$topic" -n $((half * RATE_SECONDS)) -s "$SIZE" -p 6 \
        --acks "$acks" --rate "$half" "${BENCH_ARGS[@]}" --json)"
    row "$label, $half records/s (half)" "$acks" "$fixed"
    eval "${4}=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["records_per_s"])' "$max")"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "broker $BROKER, client $SLUICE"
echo "records of $SIZE B, 6 partitions, sluice bench produce (idempotent) ${BENCH_ARGS[*]}; fixed rate for ${RATE_SECONDS} s"
echo
echo "| run | acks | records/s | MB/s | p50 ms | p99 ms | p99.9 ms | brokers CPU µs/record | client CPU µs/record |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
start_cluster 1
measure "1 broker, RF 1" 1 1 SINGLE
stop_brokers
start_cluster 3
measure "3 brokers, RF 3, min.insync 2" 3 all REPLICATED
stop_brokers
python3 -c 'import sys; s, r = map(int, sys.argv[1:3]); print(f"\nthroughput ratio RF3 acks=all / RF1 acks=1: {r / s:.2f}")' "$SINGLE" "$REPLICATED"
