#!/usr/bin/env bash
# The cost of metrics (issue 13): produce and consume throughput of one release broker with and
# without a Prometheus-style scraper fetching /metrics every second, measured in the same run.
#
#   1. builds the release broker and CLI, starts the broker on free ports (temporary data);
#   2. ROUNDS times (default 3), alternating so that drift of the machine hits both sides:
#      without a scraper, then with one (curl of /metrics every SCRAPE_INTERVAL_S, default 1):
#      `sluice bench produce` of RECORDS (default 500,000) records of SIZE bytes (default
#      1024) into a fresh 4-partition topic with acks=1, then `sluice bench consume` of it, then
#      the topic is deleted;
#   3. prints one Markdown row per run, then the median records/s of each side and the ratio
#      (with scraper / without); the scraper's own count of scrapes and the size of the last one.
#
# Usage: bash scripts/bench-metrics-cost.sh   (ROUNDS, RECORDS, SIZE, SCRAPE_INTERVAL_S)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-3}"
RECORDS="${RECORDS:-500000}"
SIZE="${SIZE:-1024}"
SCRAPE_INTERVAL_S="${SCRAPE_INTERVAL_S:-1}"
cd "$REPO_ROOT"
cargo build --release -p sluice-broker --bin sluice-broker -p sluice-cli --bin sluice >/dev/null
BROKER="$REPO_ROOT/target/release/sluice-broker"
SLUICE="$REPO_ROOT/target/release/sluice"
# shellcheck source=lib/local-broker.sh
. "$REPO_ROOT/scripts/lib/local-broker.sh"
WORK="$(mktemp -d -t sluice-bench-metrics.XXXXXX)"
SCRAPER_PID=""
cleanup() {
    [ -n "$SCRAPER_PID" ] && kill "$SCRAPER_PID" 2>/dev/null
    kill "$BROKER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

start_local_broker "$BROKER" "$WORK"
machine_line
echo "$RECORDS records of $SIZE B per run, 4 partitions, acks=1; scraper: GET /metrics every ${SCRAPE_INTERVAL_S}s"
echo
echo "| round | scraper | produce records/s | consume records/s | scrapes |"
echo "|---:|---|---:|---:|---:|"

scrape_loop() {
    local count=0
    while :; do
        curl -sf "http://127.0.0.1:$ADMIN/metrics" -o "$WORK/last-scrape.txt" && count=$((count + 1))
        echo "$count" >"$WORK/scrapes"
        sleep "$SCRAPE_INTERVAL_S"
    done
}

: >"$WORK/results"
for ((round = 1; round <= ROUNDS; round++)); do
    for mode in off on; do
        topic="metrics-cost-$round-$mode"
        echo 0 >"$WORK/scrapes"
        if [ "$mode" = on ]; then
            scrape_loop &
            SCRAPER_PID=$!
        fi
        produce="$("$SLUICE" -b "127.0.0.1:$KAFKA" bench produce -t "$topic" -n "$RECORDS" -s "$SIZE" -p 4 --acks 1 --json)"
        consume="$("$SLUICE" -b "127.0.0.1:$KAFKA" bench consume -t "$topic" --json)"
        if [ -n "$SCRAPER_PID" ]; then
            kill "$SCRAPER_PID" 2>/dev/null || true
            wait "$SCRAPER_PID" 2>/dev/null || true
            SCRAPER_PID=""
        fi
        "$SLUICE" -b "127.0.0.1:$KAFKA" topic delete "$topic" >/dev/null
        python3 - "$round" "$mode" "$produce" "$consume" "$(cat "$WORK/scrapes")" <<'PY' | tee -a "$WORK/results"
import json, sys
round_, mode, produce, consume, scrapes = sys.argv[1:6]
p, c = json.loads(produce), json.loads(consume)
print(f"| {round_} | {mode} | {p['records_per_s']:,.0f} | {c['records_per_s']:,.0f} | {scrapes} |")
PY
    done
done

python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = [line.strip("|\n").split("|") for line in open(sys.argv[1])]
def median(mode, column):
    return statistics.median(float(r[column].strip().replace(",", "")) for r in rows if r[1].strip() == mode)
for name, column in (("produce", 2), ("consume", 3)):
    off, on = median("off", column), median("on", column)
    print(f"\n{name}: median {off:,.0f} records/s without the scraper, {on:,.0f} with it: ratio {on / off:.3f}")
PY
echo "last scrape: $(wc -c <"$WORK/last-scrape.txt" 2>/dev/null || echo 0) bytes"
