#!/usr/bin/env bash
# `sluice bench` against a local release broker, with the machine's own loopback limit
# measured in the same run (issue 5's benchmark).
#
#   1. builds the release broker and CLI;
#   2. measures loopback TCP throughput with iperf3 (installed from Debian's packages if
#      missing): one stream, 5 seconds — the ceiling any client/broker pair on this machine
#      shares;
#   3. starts the broker on free ports with a temporary data directory (Kafka's topic
#      defaults: flush left to the OS);
#   4. for 100 B and 1 KiB records, 1 and 4 producers, acks=1 and acks=all: `sluice bench
#      produce` into a fresh 4-partition topic, then `sluice bench consume` of that topic;
#      each topic is deleted after its runs (its dirty pages would otherwise pile up until the
#      kernel throttles writers at disk speed);
#   5. prints one Markdown row per run: records/s, MB/s of values, the ratio of MB/s to the
#      iperf3 figure, and latency percentiles (produce: send → acknowledgement; consume: poll).
#
# Usage: bash scripts/bench-client.sh          (RECORDS=1000000 per run by default)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RECORDS="${RECORDS:-1000000}"
cd "$REPO_ROOT"
cargo build --release -p sluice-broker --bin sluice-broker -p sluice-cli --bin sluice >/dev/null
BROKER="$REPO_ROOT/target/release/sluice-broker"
SLUICE="$REPO_ROOT/target/release/sluice"
# shellcheck source=lib/local-broker.sh
. "$REPO_ROOT/scripts/lib/local-broker.sh"
# shellcheck source=lib/loopback.sh
. "$REPO_ROOT/scripts/lib/loopback.sh"
WORK="$(mktemp -d -t sluice-bench-client.XXXXXX)"
cleanup() {
    kill "$BROKER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

LOOPBACK_MB_S="$(loopback_mb_s)"
machine_line
echo "loopback iperf3 (1 stream, 5 s): $LOOPBACK_MB_S MB/s"

start_local_broker "$BROKER" "$WORK"

echo
echo "| step | size | producers | acks | records/s | MB/s | ratio to loopback | p50 ms | p99 ms | p99.9 ms | max ms |"
echo "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
row() { # step, size, producers, acks, json line
    python3 - "$@" "$LOOPBACK_MB_S" <<'PY'
import json, sys
step, size, producers, acks, line, loopback = sys.argv[1:7]
r = json.loads(line)
print(f"| {step} | {size} B | {producers} | {acks} | {r['records_per_s']:,.0f} | {r['mb_per_s']:,.1f} | "
      f"{r['mb_per_s'] / float(loopback):.1%} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['p999_ms']:.2f} | {r['max_ms']:.2f} |")
PY
}
for SIZE in 100 1024; do
    for PRODUCERS in 1 4; do
        for ACKS in 1 all; do
            TOPIC="bench-$SIZE-$PRODUCERS-$ACKS"
            LINE="$("$SLUICE" -b "127.0.0.1:$KAFKA" bench produce -t "$TOPIC" -n "$RECORDS" -s "$SIZE" -p 4 \
                --producers "$PRODUCERS" --acks "$ACKS" --json)"
            row produce "$SIZE" "$PRODUCERS" "$ACKS" "$LINE"
            LINE="$("$SLUICE" -b "127.0.0.1:$KAFKA" bench consume -t "$TOPIC" --json)"
            row consume "$SIZE" 1 "-" "$LINE"
            # Each 1 KiB run writes ~1 GB; deleting the topic drops its dirty pages, so later
            # runs measure the broker, not the kernel throttling writers at disk speed.
            "$SLUICE" -b "127.0.0.1:$KAFKA" topic delete "$TOPIC" >/dev/null
        done
    done
done
