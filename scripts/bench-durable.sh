#!/usr/bin/env bash
# Durable produce (`flush.messages=1`): records/s and fsyncs per 1,000 records of one or more
# release brokers, alternated in one run (issue 14, "Durable mode that keeps up": group
# commit).
#
#   1. for each round (ROUNDS, default 2), for each broker given: starts it on free ports of
#      127.0.0.1 with a temporary data directory (scripts/lib/local-broker.sh);
#   2. for 1 and 4 partitions: creates a topic with `flush.messages=1` and produces RECORDS
#      records of 1 KiB with acks=all, first with `sluice bench produce` (`-p` partitions,
#      1 and then 4 producers, each with its own connections: one producer's requests share
#      syncs through the connection's produce pipelining, several producers' appends to one
#      partition through group commit), each run into a new topic, then into another one with kcat (`kcat -P -l FILE -X
#      acks=all`, records without keys spread over the partitions by librdkafka's
#      partitioner; timed from start to exit, so its connection setup counts);
#   3. checks that each topic has flush.messages=1 and holds every record produced;
#   4. reads `sluice_log_fsync_duration_seconds_count{cause="policy"}` from the broker's
#      /metrics before and after each run: fdatasyncs made by the flush policy;
#   5. prints one Markdown row per run: broker label, client, producers, partitions,
#      records/s, MB/s (of record values, 10^6 bytes), policy fsyncs per 1,000 records.
#   The broker is stopped and its data deleted after each round, so every run starts on an
#   empty disk of the same state.
#   Before the first round, the disk's own limit for the same bytes (kcat's input file) in
#   the data directory's file system, with `dd`: 1 MiB writes each followed by a sync
#   (`oflag=dsync`, what one fsync per 1 MB batch could reach at best) and 1 MiB writes with
#   one fdatasync at the end (`conv=fdatasync`, the disk's sequential write rate); each row's
#   MB/s can be read against them.
#
# Usage: bash scripts/bench-durable.sh LABEL=BROKER [LABEL=BROKER...]
#        e.g. bash scripts/bench-durable.sh before=/tmp/before/sluice-broker after=target/release/sluice-broker
#   Without arguments it benchmarks target/release/sluice-broker (built first) as "this".
#   Environment: RECORDS (default 200000 per run), ROUNDS (default 2), SLUICE (the `sluice`
#   CLI, default target/release/sluice, built if missing), KCAT (default kcat; skipped if
#   not installed — scripts/install-test-deps.sh installs it), BENCH_ARGS (extra arguments
#   to every `sluice bench produce`, e.g. "--batch-size 1048576" for 1,000-record batches
#   like kcat's and Apache Iggy's benchmark).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RECORDS="${RECORDS:-200000}"
ROUNDS="${ROUNDS:-2}"
RECORD_BYTES=1024
read -r -a BENCH_ARGS <<<"${BENCH_ARGS:-}"
cd "$REPO_ROOT"
if [ $# -eq 0 ]; then
    cargo build --release -p sluice-broker --bin sluice-broker >/dev/null
    set -- "this=$REPO_ROOT/target/release/sluice-broker"
fi
SLUICE="${SLUICE:-$REPO_ROOT/target/release/sluice}"
if [ ! -x "$SLUICE" ]; then
    cargo build --release -p sluice-cli --bin sluice >/dev/null
fi
KCAT="${KCAT:-kcat}"
HAVE_KCAT=1
command -v "$KCAT" >/dev/null || { HAVE_KCAT=0; echo "kcat not found: kcat runs skipped" >&2; }
# shellcheck source=lib/local-broker.sh
. "$REPO_ROOT/scripts/lib/local-broker.sh"
WORK="$(mktemp -d -t sluice-bench-durable.XXXXXX)"
BROKER_PID=""
cleanup() {
    if [ -n "$BROKER_PID" ]; then kill "$BROKER_PID" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# kcat's input: RECORDS lines of RECORD_BYTES random letters (one record each).
python3 - "$WORK/records.txt" "$RECORDS" "$RECORD_BYTES" <<'PY'
import random, string, sys
path, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
line = "".join(random.choice(string.ascii_letters) for _ in range(size))
with open(path, "w") as f:
    for i in range(count):
        f.write(f"{i:010d}{line[10:]}\n")
PY

policy_fsyncs() {
    curl -sf "http://127.0.0.1:$ADMIN/metrics" | python3 -c '
import sys
total = 0.0
for line in sys.stdin:
    if line.startswith("sluice_log_fsync_duration_seconds_count{") and "cause=\"policy\"" in line:
        total += float(line.rsplit(None, 1)[1])
print(int(total))'
}

# Fails unless TOPIC holds `flush.messages=1` and EXPECTED records (the sum of its log end
# offsets): every record was delivered and the run measured what it claims.
check_topic() { # topic, expected records
    "$SLUICE" -b "127.0.0.1:$KAFKA" topic describe "$1" --json | python3 -c '
import json, sys
topic = json.load(sys.stdin)
flush = [c["value"] for c in topic["configs"] if c["name"] == "flush.messages"]
records = sum(p["log_end_offset"] or 0 for p in topic["partitions"])
if flush != ["1"] or records != int(sys.argv[1]):
    sys.exit(f"{sys.argv[2]}: flush.messages={flush}, {records} records, expected {sys.argv[1]}")' "$2" "$1"
}

row() { # label, client, producers, partitions, records/s, fsyncs
    python3 - "$@" "$RECORDS" "$RECORD_BYTES" <<'PY'
import sys
label, client, producers, partitions, rate, fsyncs, records, size = sys.argv[1:9]
rate, fsyncs, records, size = float(rate), int(fsyncs), int(records), int(size)
print(f"| {label} | {client} | {producers} | {partitions} | {rate:,.0f} | {rate * size / 1e6:,.1f} | {fsyncs * 1000 / records:,.1f} |")
PY
}

# The disk's own limit: MB/s (10^6 bytes) dd reports for copying kcat's input into the data
# directory's file system, with FLAG (oflag=dsync or conv=fdatasync).
disk_mb_per_s() { # dd flag
    dd if="$WORK/records.txt" of="$WORK/dd.out" bs=1M "$1" 2>&1 | python3 -c '
import re, sys
text = sys.stdin.read()
m = re.search(r"(\d+) bytes .* copied, ([0-9.]+) s", text)
if not m:
    sys.exit("dd: " + text)
print(f"{int(m.group(1)) / float(m.group(2)) / 1e6:,.1f}")'
    rm -f "$WORK/dd.out"
}

machine_line
echo "records per run: $RECORDS of $RECORD_BYTES B, acks=all, topics created with flush.messages=1${BENCH_ARGS[*]:+; sluice bench ${BENCH_ARGS[*]}}"
echo "disk (dd of the same $(( $(stat -c %s "$WORK/records.txt") / 1000000 )) MB into $WORK): 1 MiB writes each synced (oflag=dsync) $(disk_mb_per_s oflag=dsync) MB/s; one fdatasync at the end (conv=fdatasync) $(disk_mb_per_s conv=fdatasync) MB/s"
echo
echo "| broker | client | producers | partitions | records/s | MB/s | policy fsyncs per 1,000 records |"
echo "|---|---|---:|---:|---:|---:|---:|"
for ((round = 1; round <= ROUNDS; round++)); do
    for entry in "$@"; do
        LABEL="${entry%%=*}"
        BROKER="${entry#*=}"
        mkdir -p "$WORK/broker"
        start_local_broker "$BROKER" "$WORK/broker"
        for PARTITIONS in 1 4; do
            for PRODUCERS in 1 4; do
                TOPIC="durable-bench-$PARTITIONS-$PRODUCERS"
                "$SLUICE" -b "127.0.0.1:$KAFKA" topic create "$TOPIC" -p "$PARTITIONS" -c flush.messages=1 >/dev/null
                BEFORE="$(policy_fsyncs)"
                LINE="$("$SLUICE" -b "127.0.0.1:$KAFKA" bench produce -t "$TOPIC" -n "$RECORDS" -s "$RECORD_BYTES" \
                    -p "$PARTITIONS" --producers "$PRODUCERS" --acks all "${BENCH_ARGS[@]}" --json)"
                AFTER="$(policy_fsyncs)"
                check_topic "$TOPIC" "$RECORDS"
                RATE="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["records_per_s"])' "$LINE")"
                row "$LABEL" "sluice bench" "$PRODUCERS" "$PARTITIONS" "$RATE" "$((AFTER - BEFORE))"
            done
            if [ "$HAVE_KCAT" = 1 ]; then
                TOPIC="durable-kcat-$PARTITIONS"
                "$SLUICE" -b "127.0.0.1:$KAFKA" topic create "$TOPIC" -p "$PARTITIONS" -c flush.messages=1 >/dev/null
                BEFORE="$(policy_fsyncs)"
                START_NS="$(date +%s%N)"
                "$KCAT" -P -b "127.0.0.1:$KAFKA" -t "$TOPIC" -l "$WORK/records.txt" -X acks=all
                END_NS="$(date +%s%N)"
                AFTER="$(policy_fsyncs)"
                check_topic "$TOPIC" "$RECORDS"
                RATE="$(python3 -c 'import sys; print(int(sys.argv[1]) / ((int(sys.argv[3]) - int(sys.argv[2])) / 1e9))' \
                    "$RECORDS" "$START_NS" "$END_NS")"
                row "$LABEL" kcat 1 "$PARTITIONS" "$RATE" "$((AFTER - BEFORE))"
            fi
        done
        kill "$BROKER_PID"
        wait "$BROKER_PID" 2>/dev/null || true
        BROKER_PID=""
        rm -rf "$WORK/broker"
    done
done
echo
echo "finished; load $(cut -d' ' -f1-3 /proc/loadavg)"
