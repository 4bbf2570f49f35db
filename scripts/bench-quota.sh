#!/usr/bin/env bash
# Client quotas under load (issue 15's evidence): a producer limited to 1 MiB/s beside an
# unlimited one on the same broker.
#
#   1. builds the release broker and CLI;
#   2. starts the broker on free ports with a temporary data directory;
#   3. sets producer_byte_rate=1048576 for client id `quota-limited`
#      (`sluice quota set --client-id quota-limited --producer-byte-rate 1048576`);
#   4. runs, for DURATION seconds (60 by default), at the same time: `sluice bench produce
#      --client-id quota-limited` and `--client-id quota-free` (1 KiB records, acks=1, one
#      producer each, a 4-partition topic each);
#   5. then the unlimited producer alone for DURATION seconds, for comparison;
#   6. prints one Markdown row per run: records/s, MiB/s of record values, and the limited
#      producer's rate as a share of its quota, plus the broker's quota metrics.
#
# The quota counts record batch bytes (values plus keys, record and batch headers: about 7% more
# than the values for 1 KiB records with these batch sizes), so the values' rate of the limited
# producer sits a little below 1 MiB/s when the broker holds it exactly at its quota.
#
# Topics are deleted after their runs (an unlimited producer writes ~10 GB a minute here).
#
# Usage: bash scripts/bench-quota.sh          (DURATION=60 by default)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${DURATION:-60}"
QUOTA_BYTES_PER_S=1048576
cd "$REPO_ROOT"
cargo build --release -p sluice-broker --bin sluice-broker -p sluice-cli --bin sluice >/dev/null
BROKER="$REPO_ROOT/target/release/sluice-broker"
SLUICE="$REPO_ROOT/target/release/sluice"
# shellcheck source=lib/local-broker.sh
. "$REPO_ROOT/scripts/lib/local-broker.sh"
WORK="$(mktemp -d -t sluice-bench-quota.XXXXXX)"
cleanup() {
    kill "$BROKER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

machine_line
date -u +"date: %Y-%m-%d %H:%M UTC"
start_local_broker "$BROKER" "$WORK"
sl() { "$SLUICE" -b "127.0.0.1:$KAFKA" "$@"; }

sl quota set --client-id quota-limited --producer-byte-rate "$QUOTA_BYTES_PER_S" >/dev/null
sl quota list

bench() { # client id, topic
    sl bench produce --client-id "$1" -t "$2" -p 4 -s 1024 --acks 1 --duration "$DURATION" --json
}

echo
echo "| run | client id | quota | records/s | MiB/s (values) | of quota |"
echo "|---|---|---:|---:|---:|---:|"
row() { # run, client id, quota (or -), json line
    python3 - "$@" <<'PY'
import json, sys
run, client, quota, line = sys.argv[1:5]
r = json.loads(line)
mib = r["bytes"] / r["elapsed_s"] / 1048576
share = f"{mib * 1048576 / float(quota):.1%}" if quota != "-" else "-"
quota_text = f"{int(quota):,} B/s" if quota != "-" else "none"
print(f"| {run} | {client} | {quota_text} | {r['records_per_s']:,.0f} | {mib:,.2f} | {share} |")
PY
}

bench quota-limited bench-limited >"$WORK/limited.json" &
LIMITED=$!
bench quota-free bench-free >"$WORK/free.json"
wait "$LIMITED"
row "together" quota-limited "$QUOTA_BYTES_PER_S" "$(cat "$WORK/limited.json")"
row "together" quota-free - "$(cat "$WORK/free.json")"
sl topic delete bench-limited bench-free >/dev/null

bench quota-free bench-alone >"$WORK/alone.json"
row "alone" quota-free - "$(cat "$WORK/alone.json")"
sl topic delete bench-alone >/dev/null

echo
curl -s "http://127.0.0.1:$ADMIN/metrics" | grep -E '^sluice_quota_' || true
