#!/usr/bin/env bash
# What TLS costs: Kafka's own perf tools (kafka-producer-perf-test, kafka-consumer-perf-test,
# the Java client, via scripts/kafka.sh) against one release Sluice broker with three
# listeners, in one run: PLAINTEXT, SSL (TLS, no client certificate) and SASL_SSL
# (SCRAM-SHA-512 inside TLS). Same records (RECORD_BYTES, default 1 KiB), same settings
# (acks=all, idempotent, the producer's defaults otherwise) on each; prints a markdown row per
# listener and tool with the ratio to PLAINTEXT, and the machine line.
#
# Usage: bash scripts/bench-tls.sh
# Environment: SLUICE_BROKER_BIN (default: cargo build --release), SLUICE_CLI_BIN (default:
# cargo build --release -p sluice-cli), RECORDS (default 500000), RECORD_BYTES (default 1024),
# PARTITIONS (default 4).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
source scripts/lib/local-broker.sh
RECORDS="${RECORDS:-500000}"
RECORD_BYTES="${RECORD_BYTES:-1024}"
PARTITIONS="${PARTITIONS:-4}"
# Upper bound for one perf tool run; a hung run fails the benchmark.
TOOL_TIMEOUT_S=600

if [ -z "${SLUICE_BROKER_BIN:-}" ]; then
    cargo build --release -p sluice-broker --bin sluice-broker >/dev/null
    SLUICE_BROKER_BIN="$REPO_ROOT/target/release/sluice-broker"
fi
if [ -z "${SLUICE_CLI_BIN:-}" ]; then
    cargo build --release -p sluice-cli --bin sluice >/dev/null
    SLUICE_CLI_BIN="$REPO_ROOT/target/release/sluice"
fi
WORK_DIR="$(mktemp -d -t sluice-bench-tls.XXXXXX)"
BROKER_PID=""
cleanup() {
    if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK_DIR"
}
trap cleanup EXIT

tool() {
    timeout "$TOOL_TIMEOUT_S" bash scripts/kafka.sh tool "$@"
}

bash scripts/make-certs.sh "$WORK_DIR/certs" >/dev/null
read -r SSL_PORT SASL_SSL_PORT <<<"$(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')"
start_local_broker "$SLUICE_BROKER_BIN" "$WORK_DIR" \
    --listeners "SSL://127.0.0.1:$SSL_PORT,SASL_SSL://127.0.0.1:$SASL_SSL_PORT" \
    --ssl-certificate "$WORK_DIR/certs/broker.crt" --ssl-key "$WORK_DIR/certs/broker.key" \
    --group-initial-rebalance-delay-ms 500
"$SLUICE_CLI_BIN" --bootstrap "127.0.0.1:$KAFKA" user create bench --password bench-secret \
    --mechanism SCRAM-SHA-512 2>/dev/null

# Client settings per listener, as Java client property files.
: >"$WORK_DIR/PLAINTEXT.properties"
cat >"$WORK_DIR/SSL.properties" <<PROPS
security.protocol=SSL
ssl.truststore.type=PEM
ssl.truststore.location=$WORK_DIR/certs/ca.crt
PROPS
cat "$WORK_DIR/SSL.properties" >"$WORK_DIR/SASL_SSL.properties"
cat >>"$WORK_DIR/SASL_SSL.properties" <<'PROPS'
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="bench" password="bench-secret";
PROPS

declare -A PORT=([PLAINTEXT]="$KAFKA" [SSL]="$SSL_PORT" [SASL_SSL]="$SASL_SSL_PORT")
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| listener | tool | records | records/s | MB/s | vs PLAINTEXT | latency ms (producer) / time (consumer) |"
echo "|---|---|---:|---:|---:|---:|---|"
for listener in PLAINTEXT SSL SASL_SSL; do
    bootstrap="127.0.0.1:${PORT[$listener]}"
    properties="$WORK_DIR/$listener.properties"
    topic="tls-$listener-$(date +%s)"
    "$SLUICE_CLI_BIN" --bootstrap "127.0.0.1:$KAFKA" topic create "$topic" -p "$PARTITIONS" >/dev/null
    produced="$(tool kafka-producer-perf-test --topic "$topic" --num-records "$RECORDS" \
        --record-size "$RECORD_BYTES" --throughput -1 --producer.config "$properties" \
        --producer-props bootstrap.servers="$bootstrap" acks=all enable.idempotence=true | tail -1)"
    consumed="$(tool kafka-consumer-perf-test --bootstrap-server "$bootstrap" --topic "$topic" \
        --messages "$RECORDS" --timeout 60000 --group "perf-$topic" --consumer.config "$properties" | tail -1)"
    python3 - "$listener" "$produced" "$consumed" "$WORK_DIR/baseline" <<'PY'
import json, os, re, sys
label, produced, consumed, baseline_path = sys.argv[1:]
p = re.match(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
             r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th", produced)
if not p:
    sys.exit(f"unexpected producer summary: {produced}")
c = [field.strip() for field in consumed.split(",")]
if len(c) < 10:
    sys.exit(f"unexpected consumer summary: {consumed}")
rates = {"producer": float(p[3]), "consumer": float(c[3])}
if label == "PLAINTEXT":
    json.dump(rates, open(baseline_path, "w"))
base = json.load(open(baseline_path))
ratio = lambda tool: f"{100 * rates[tool] / base[tool]:.0f}%"
print(f"| {label} | producer | {int(p[1]):,} | {float(p[2]):,.0f} | {rates['producer']:.1f} | {ratio('producer')} | "
      f"avg {float(p[4]):.0f}, p50 {p[6]}, p95 {p[7]}, p99 {p[8]}, max {float(p[5]):.0f} |")
print(f"| {label} | consumer | {int(c[4]):,} | {float(c[5]):,.0f} | {rates['consumer']:.1f} | {ratio('consumer')} | "
      f"rebalance {c[6]} ms, fetch {c[7]} ms |")
PY
done

# librdkafka (kcat, OpenSSL) as the client: the Java client's own TLS takes most of the two
# cores above, so this measures the broker's side better. RECORDS lines of RECORD_BYTES,
# produced (acks=all, idempotent) and consumed back; the broker's CPU time from /proc.
python3 -c "import sys; sys.stdout.buffer.write((b'x' * ($RECORD_BYTES - 1) + b'\n') * $RECORDS)" >"$WORK_DIR/lines"
broker_ticks() { awk '{print $14 + $15}' "/proc/$BROKER_PID/stat"; }
echo
echo "| listener | kcat | MB/s | vs PLAINTEXT | broker CPU s |"
echo "|---|---|---:|---:|---:|"
for listener in PLAINTEXT SSL; do
    flags=(-b "127.0.0.1:${PORT[$listener]}")
    [ "$listener" = SSL ] && flags+=(-X security.protocol=SSL -X "ssl.ca.location=$WORK_DIR/certs/ca.crt")
    topic="kcat-$listener-$(date +%s)"
    "$SLUICE_CLI_BIN" --bootstrap "127.0.0.1:$KAFKA" topic create "$topic" -p "$PARTITIONS" >/dev/null
    for direction in produce consume; do
        ticks=$(broker_ticks); started=$(date +%s.%N)
        if [ "$direction" = produce ]; then
            kcat "${flags[@]}" -P -t "$topic" -X queue.buffering.max.messages=1000000 -X acks=all \
                -X enable.idempotence=true <"$WORK_DIR/lines"
        else
            kcat "${flags[@]}" -C -t "$topic" -o beginning -e -q >/dev/null
        fi
        python3 - "$listener" "$direction" "$started" "$(date +%s.%N)" "$ticks" "$(broker_ticks)" \
            "$(( RECORDS * RECORD_BYTES ))" "$WORK_DIR/kcat-baseline-$direction" <<'PY'
import os, sys
listener, direction, start, end, t0, t1, total, baseline = sys.argv[1:]
rate = int(total) / (float(end) - float(start)) / 1e6
if listener == "PLAINTEXT":
    open(baseline, "w").write(str(rate))
base = float(open(baseline).read())
cpu = (int(t1) - int(t0)) / os.sysconf("SC_CLK_TCK")
print(f"| {listener} | {direction} | {rate:.1f} | {100 * rate / base:.0f}% | {cpu:.2f} |")
PY
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
machine_line
