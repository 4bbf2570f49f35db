#!/usr/bin/env bash
# Kafka's own perf tools, kafka-producer-perf-test and kafka-consumer-perf-test (Apache Kafka
# 4.x, run by scripts/kafka.sh tool), against Apache Kafka and against Sluice in one run, one
# after the other on the same machine: the same client, the same settings, two brokers.
#
# For each broker (Kafka single-node KRaft from scripts/kafka.sh start; Sluice release build,
# one node, new data directory, free ports): create a topic of PARTITIONS partitions, produce
# RECORDS records of RECORD_BYTES bytes as fast as possible (acks=all, idempotent, the
# producer's defaults otherwise: 16 KiB batches, linger 5 ms, no compression), then consume
# them all from the start in a new group (both brokers wait 500 ms for more members of a new
# group, scripts/kafka.sh's group.initial.rebalance.delay.ms). Prints one markdown table row per broker and tool
# (the tools' own summary figures) and the machine's load average before and after.
#
# Usage: bash scripts/bench-kafka-perf.sh
# Environment: SLUICE_BROKER_BIN (default: cargo build --release), RECORDS (default 500000),
# RECORD_BYTES (default 1024), PARTITIONS (default 4).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
RECORDS="${RECORDS:-500000}"
RECORD_BYTES="${RECORD_BYTES:-1024}"
PARTITIONS="${PARTITIONS:-4}"
# How long a new Sluice broker may take to answer /ready.
SLUICE_READY_TIMEOUT_S=60
# Upper bound for one perf tool run; a hung run fails the benchmark.
TOOL_TIMEOUT_S=600

if [ -z "${SLUICE_BROKER_BIN:-}" ]; then
    cargo build --release -p sluice-broker --bin sluice-broker >/dev/null
    SLUICE_BROKER_BIN="$REPO_ROOT/target/release/sluice-broker"
fi
WORK_DIR="$(mktemp -d -t sluice-bench-kafka-perf.XXXXXX)"
SLUICE_PID=""
cleanup() {
    bash scripts/kafka.sh stop "$WORK_DIR/kafka" || true
    if [ -n "$SLUICE_PID" ] && kill -0 "$SLUICE_PID" 2>/dev/null; then
        kill -TERM "$SLUICE_PID" 2>/dev/null || true
        wait "$SLUICE_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK_DIR"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

tool() {
    timeout "$TOOL_TIMEOUT_S" bash scripts/kafka.sh tool "$@"
}

# run_tools BROKER-LABEL BOOTSTRAP: topic, producer perf test, consumer perf test; table rows.
run_tools() {
    local label="$1" bootstrap="$2" topic="perf-$(date +%s)" produced consumed
    tool kafka-topics --bootstrap-server "$bootstrap" --create --topic "$topic" \
        --partitions "$PARTITIONS" --replication-factor 1 >/dev/null
    # The last line is the summary: "N records sent, R records/sec (M MB/sec), A ms avg
    # latency, X ms max latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th."
    produced="$(tool kafka-producer-perf-test --topic "$topic" --num-records "$RECORDS" \
        --record-size "$RECORD_BYTES" --throughput -1 \
        --producer-props bootstrap.servers="$bootstrap" acks=all enable.idempotence=true | tail -1)"
    # The summary line after the header: start.time, end.time, data.consumed.in.MB, MB.sec,
    # data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec,
    # fetch.nMsg.sec.
    consumed="$(tool kafka-consumer-perf-test --bootstrap-server "$bootstrap" --topic "$topic" \
        --messages "$RECORDS" --timeout 60000 --group "perf-$topic" | tail -1)"
    python3 - "$label" "$produced" "$consumed" <<'PY'
import re, sys
label, produced, consumed = sys.argv[1:]
p = re.match(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
             r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th", produced)
if not p:
    sys.exit(f"unexpected producer summary: {produced}")
print(f"| {label} | producer | {int(p[1]):,} | {float(p[2]):,.0f} | {float(p[3]):.1f} | "
      f"avg {float(p[4]):.0f}, p50 {p[6]}, p95 {p[7]}, p99 {p[8]}, max {float(p[5]):.0f} |")
c = [field.strip() for field in consumed.split(",")]
if len(c) < 10:
    sys.exit(f"unexpected consumer summary: {consumed}")
print(f"| {label} | consumer | {int(c[4]):,} | {float(c[5]):,.0f} | {float(c[3]):.1f} | "
      f"rebalance {c[6]} ms, fetch {c[7]} ms ({float(c[8]):.1f} MB/s fetching) |")
PY
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| broker | tool | records | records/s | MB/s | latency ms (producer) / time (consumer) |"
echo "|---|---|---:|---:|---:|---|"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)"
KAFKA_BOOTSTRAP="$(bash scripts/kafka.sh start "$WORK_DIR/kafka" 2>/dev/null)"
run_tools "Apache Kafka $KAFKA_VERSION" "$KAFKA_BOOTSTRAP"
bash scripts/kafka.sh stop "$WORK_DIR/kafka"
rm -rf "$WORK_DIR/kafka"

kafka_port="$(free_port)"
raft_port="$(free_port)"
admin_port="$(free_port)"
mkdir -p "$WORK_DIR/sluice"
"$SLUICE_BROKER_BIN" --data-dir "$WORK_DIR/sluice" --listen "127.0.0.1:$kafka_port" \
    --raft-listen "127.0.0.1:$raft_port" --admin-listen "127.0.0.1:$admin_port" \
    --group-initial-rebalance-delay-ms 500 \
    >"$WORK_DIR/sluice.log" 2>&1 &
SLUICE_PID=$!
deadline=$(( SECONDS + SLUICE_READY_TIMEOUT_S ))
until curl -sf "http://127.0.0.1:$admin_port/ready" >/dev/null; do
    kill -0 "$SLUICE_PID" 2>/dev/null || { tail -20 "$WORK_DIR/sluice.log" >&2; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { echo "Sluice not ready in ${SLUICE_READY_TIMEOUT_S}s" >&2; exit 1; }
    sleep 0.2
done
run_tools "Sluice $("$SLUICE_BROKER_BIN" --version | cut -d' ' -f2) ($(git rev-parse --short HEAD))" "127.0.0.1:$kafka_port"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
