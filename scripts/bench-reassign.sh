#!/usr/bin/env bash
# The replication throttle and the cost of a move (issue 11's benchmark):
#
#   1. builds the release broker and CLI; starts 3 brokers with scripts/cluster.sh (temporary
#      directory, ports from 26092);
#   2. fills `bench-move` (4 partitions, all on broker 1, replication factor 1) with DATA_MB MB of
#      1 KiB records;
#   3. for each rate of RATES (bytes/s): `sluice topic reassign --execute --throttle RATE` adds
#      broker 2 to every partition; broker 2's `sluice_replication_throttled_bytes_total
#      {side="follower"}` is read every second until the move is done; reported: the whole
#      copy's average rate, and the rate after the first WINDOW_S seconds (the quota window —
#      11 samples of 1 s, as Kafka's — lets the first ten seconds' worth go at once, so the
#      steady rate is what the cap holds), each as a share of RATE; then the replica on broker 2
#      is removed again (a move back to [1]);
#   4. produce latency at a fixed rate (`sluice bench produce --rate LATENCY_RATE --duration
#      LATENCY_S --acks all`, 1 KiB records) to `bench-latency` (replication factor 3,
#      min.insync.replicas 2): idle; during a throttled move (RATES' first rate); during an
#      unthrottled move. The move runs in the background; its duration is printed beside.
#
# All three brokers and the clients share the machine's cores and disk.
#
# A rate's first ten seconds' worth is copied at once, so DATA_MB must be well above ten times
# the largest rate for a steady phase to measure (the defaults: 20 s and more of it).
#
# Usage: bash scripts/bench-reassign.sh   (DATA_MB=1000 RATES="10000000 20000000"
#        LATENCY_RATE=2000 LATENCY_S=20)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_MB="${DATA_MB:-1000}"
read -r -a RATES <<<"${RATES:-10000000 20000000}"
LATENCY_RATE="${LATENCY_RATE:-2000}"
LATENCY_S="${LATENCY_S:-20}"
WINDOW_S=11
PARTITIONS=4
cd "$REPO_ROOT"
cargo build --release -p sluice-broker --bin sluice-broker -p sluice-cli --bin sluice >/dev/null
export SLUICE_BROKER_BIN="$REPO_ROOT/target/release/sluice-broker"
SLUICE="$REPO_ROOT/target/release/sluice"
WORK="$(mktemp -d -t sluice-bench-reassign.XXXXXX)"
# Below the ephemeral port range (32768 up), where clients' own ports could collide.
export SLUICE_CLUSTER_DIR="$WORK/cluster" SLUICE_CLUSTER_BASE_PORT="${SLUICE_CLUSTER_BASE_PORT:-26092}"
BASE="$SLUICE_CLUSTER_BASE_PORT"
cleanup() {
    bash scripts/cluster.sh down >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=lib/local-broker.sh
. "$REPO_ROOT/scripts/lib/local-broker.sh"
machine_line
date -u +"date: %Y-%m-%d %H:%M UTC"
echo "commit: $(git rev-parse --short HEAD)"
bash scripts/cluster.sh up 3 >/dev/null
BOOTSTRAP="$(bash scripts/cluster.sh bootstrap)"
sl() { "$SLUICE" -b "$BOOTSTRAP" "$@"; }

plan() { # replicas JSON array, e.g. [1,2]
    python3 - "$1" "$PARTITIONS" <<'PY'
import json, sys
replicas, partitions = json.loads(sys.argv[1]), int(sys.argv[2])
print(json.dumps({"version": 1, "partitions": [
    {"topic": "bench-move", "partition": p, "replicas": replicas} for p in range(partitions)]}))
PY
}
follower_bytes() { # broker id
    curl -sf "http://127.0.0.1:$((BASE + 200 + $1 - 1))/metrics" |
        awk '/^sluice_replication_throttled_bytes_total\{side="follower"\}/ {print $2; found=1} END {if (!found) print 0}'
}
moving() { ! sl topic reassign --verify --plan "$1" >/dev/null 2>&1; }

sl topic create bench-move -p "$PARTITIONS" -r 1 >/dev/null
plan '[1]' >"$WORK/on1.json"
plan '[1,2]' >"$WORK/on12.json"
sl topic reassign --execute --plan "$WORK/on1.json" --wait >/dev/null
RECORDS=$((DATA_MB * 1000 * 1000 / 1024))
sl bench produce -t bench-move -n "$RECORDS" -s 1024 -p "$PARTITIONS" --acks 1 --json >/dev/null
echo "bench-move: $RECORDS records of 1 KiB on broker 1 ($DATA_MB MB)"

echo
echo "| throttle | copied | took | average rate | of throttle | rate after ${WINDOW_S} s | of throttle |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for rate in "${RATES[@]}"; do
    sl topic reassign --execute --plan "$WORK/on12.json" --throttle "$rate" >/dev/null
    start_bytes="$(follower_bytes 2)"
    : >"$WORK/samples"
    start=$(date +%s.%N)
    while moving "$WORK/on12.json"; do
        echo "$(date +%s.%N) $(follower_bytes 2)" >>"$WORK/samples"
        sleep 1
    done
    end=$(date +%s.%N)
    echo "$end $(follower_bytes 2)" >>"$WORK/samples"
    python3 - "$rate" "$start" "$end" "$start_bytes" "$WINDOW_S" "$WORK/samples" <<'PY'
import sys
rate, start, end, start_bytes, window = (float(v) for v in sys.argv[1:6])
samples = [tuple(map(float, line.split())) for line in open(sys.argv[6]) if line.strip()]
copied = samples[-1][1] - start_bytes
took = end - start
late = [(t, b) for t, b in samples if t - start >= window]
steady = (late[-1][1] - late[0][1]) / (late[-1][0] - late[0][0]) if len(late) >= 2 and late[-1][0] > late[0][0] else float("nan")
mb = lambda v: f"{v / 1e6:,.1f} MB/s"
print(f"| {rate / 1e6:,.0f} MB/s | {copied / 1e6:,.0f} MB | {took:,.1f} s | {mb(copied / took)} | {copied / took / rate:.0%} "
      f"| {mb(steady)} | {steady / rate:.0%} |")
PY
    sl topic reassign --verify --plan "$WORK/on12.json" >/dev/null   # removes the throttle
    sl topic reassign --execute --plan "$WORK/on1.json" --wait >/dev/null
done

sl topic create bench-latency -p "$PARTITIONS" -r 3 --config min.insync.replicas=2 >/dev/null
latency() { # label, move seconds (or -)
    sl bench produce -t bench-latency -p "$PARTITIONS" -s 1024 --rate "$LATENCY_RATE" --duration "$LATENCY_S" \
        --acks all --json >"$WORK/latency.json"
    python3 - "$1" "$2" "$WORK/latency.json" <<'PY'
import json, sys
label, move = sys.argv[1], sys.argv[2]
r = json.loads(open(sys.argv[3]).read().strip().splitlines()[-1])
print(f"| {label} | {r['records_per_s']:,.0f} | {r['p50_ms']} | {r['p99_ms']} | {r['p999_ms']} | {move} |")
PY
}
timed_move() { # extra reassign args...; runs the move to [1,2], prints its seconds to $WORK/move_s
    local start
    start=$(date +%s.%N)
    sl topic reassign --execute --plan "$WORK/on12.json" "$@" >/dev/null
    while moving "$WORK/on12.json"; do sleep 0.5; done
    python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$start" "$(date +%s.%N)" >"$WORK/move_s"
    sl topic reassign --verify --plan "$WORK/on12.json" >/dev/null
}

echo
echo "produce latency, acks=all, RF 3, $LATENCY_RATE records/s of 1 KiB for $LATENCY_S s:"
echo
echo "| while | records/s | p50 ms | p99 ms | p99.9 ms | move took |"
echo "|---|---:|---:|---:|---:|---:|"
# Warm-up (connections, the topic's first segments), not reported.
sl bench produce -t bench-latency -p "$PARTITIONS" -s 1024 --rate "$LATENCY_RATE" --duration 5 --acks all --json >/dev/null
latency "idle" "-"
for throttle in "${RATES[0]}" ""; do
    if [ -n "$throttle" ]; then args=(--throttle "$throttle"); label="a move throttled at $((throttle / 1000000)) MB/s"
    else args=(); label="an unthrottled move"; fi
    timed_move "${args[@]}" &
    mover=$!
    sleep 1
    row="$(latency "$label" "see below")"
    wait "$mover"
    echo "${row/see below/$(cat "$WORK/move_s")}"
    sl topic reassign --execute --plan "$WORK/on1.json" --wait >/dev/null
done
