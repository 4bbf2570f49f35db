#!/usr/bin/env bash
# Sluice beside Apache Kafka on this machine, in one run, with the same clients: Kafka's own perf
# tools (kafka-producer-perf-test and kafka-consumer-perf-test of Apache Kafka 4.x, run by
# scripts/kafka.sh tool) and librdkafka (Debian's kcat). Writes one Markdown table and one
# summary line per case.
#
# Both brokers run for the whole benchmark, each with its defaults: Apache Kafka single-node KRaft
# from `scripts/kafka.sh start` (its settings there: heap -Xms256m -Xmx768m, serial GC,
# group.initial.rebalance.delay.ms=500) and the Sluice release build (one node, a new data
# directory, free ports, the same 500 ms group delay so that both brokers' consumer groups form
# alike). A case is one record size x partition count x acks; the brokers take turns per case
# (Kafka first in even-numbered cases, Sluice first in odd ones, so that neither always runs
# second on a machine whose load drifts). On each broker a case is:
#   1. a new topic; kafka-producer-perf-test --num-records RECORDS --record-size SIZE
#      --throughput -1 with acks=ACKS (the producer's defaults otherwise: 16 KiB batches, linger
#      5 ms, no compression, idempotent when acks=all), then kafka-consumer-perf-test reading the
#      records back in a new group;
#   2. a second new topic; `kcat -P -l FILE -X acks=ACKS` producing RECORDS lines of SIZE bytes
#      from a prepared file (librdkafka's defaults otherwise: linger 5 ms, batches up to 1 MB, not
#      idempotent), then `kcat -C -o beginning -e -q | wc -l` reading them back;
#   3. for the case 1 KiB, 6 partitions, acks=all only: latency at a fixed rate, a third new
#      topic and kafka-producer-perf-test --throughput R, R = FIXED_RATE_PERCENT % of the records/s
#      the unbounded run of step 1 measured on the same broker, for FIXED_RATE_SECONDS;
#   4. the case's topics are deleted.
# Every step is checked (the producer sent, the consumer read, exactly RECORDS records) and
# measured: records/s and MB/s (10^6 bytes/s of values; the consumer perf test's rate is over its
# fetch time, without the group join), the producer's latency from the perf tool (avg, p50, p99,
# max: from send to acknowledgement, queueing in the producer included), the broker's CPU seconds
# (utime + stime from /proc/PID/stat before and after the step; for Kafka the JVM's pid), and the
# broker's RSS: peak during the step (VmHWM, reset through /proc/PID/clear_refs before the step)
# and at its end (VmRSS). The clients run on the same 2 cores, so throughput is of broker and
# client together; CPU seconds per GB and RSS are the broker's own.
#
# Usage: bash scripts/bench-kafka-perf.sh
# Environment (defaults in brackets):
#   SLUICE_BROKER_BIN    the broker to run [cargo build --release of this tree]
#   RECORDS              records per step [500000]; with the defaults the whole matrix took
#                        8.5 minutes on the shared 2-core machine of docs/benchmarks.md (load
#                        average 4.5-5.8), some 4 of them fixed costs (JVM starts, topics)
#   SIZES                record sizes in bytes ["100 1024"]
#   PARTITIONS           partition counts ["1 6"]
#   ACKS                 acks settings ["1 all"]
#   FIXED_RATE_SECONDS   length of each fixed-rate run [15]
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
RECORDS="${RECORDS:-500000}"
SIZES="${SIZES:-100 1024}"
PARTITIONS="${PARTITIONS:-1 6}"
ACKS="${ACKS:-1 all}"
FIXED_RATE_SECONDS="${FIXED_RATE_SECONDS:-15}"
# The fixed-rate run's target, in percent of the unbounded producer's records/s (the OpenMessaging
# Benchmark's lower load point).
FIXED_RATE_PERCENT=50
# The case (size, partitions, acks) that gets the fixed-rate run.
FIXED_RATE_CASE="1024 6 all"
# Upper bound for one client run (perf tool or kcat); a hung run fails the benchmark.
TOOL_TIMEOUT_S=600
# The broker's group delay, as scripts/kafka.sh configures Kafka's.
GROUP_DELAY_MS=500

if [ -z "${SLUICE_BROKER_BIN:-}" ]; then
    cargo build --release -p sluice-broker --bin sluice-broker >/dev/null
    SLUICE_BROKER_BIN="$REPO_ROOT/target/release/sluice-broker"
fi
# shellcheck source=lib/local-broker.sh
. "$REPO_ROOT/scripts/lib/local-broker.sh"
command -v kcat >/dev/null || { echo "kcat not found (apt-get install kcat)" >&2; exit 1; }

WORK_DIR="$(mktemp -d -t sluice-bench-kafka-perf.XXXXXX)"
RESULTS="$WORK_DIR/results.tsv"
BROKER_PID=""
cleanup() {
    bash scripts/kafka.sh stop "$WORK_DIR/kafka" || true
    if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK_DIR"
}
trap cleanup EXIT

progress() { echo "[bench-kafka-perf $(date +%H:%M:%S)] $*" >&2; }

tool() {
    timeout "$TOOL_TIMEOUT_S" bash scripts/kafka.sh tool "$@"
}

cpu_seconds() { # utime + stime of a pid, in seconds
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

status_kb() { # a field of /proc/PID/status in kB (VmHWM, VmRSS)
    awk -v field="$2:" '$1 == field { print $2 }' "/proc/$1/status"
}

# step_begin PID: notes the broker's CPU seconds and resets its peak RSS to its current RSS.
step_begin() {
    STEP_CPU_BEFORE="$(cpu_seconds "$1")"
    echo 5 >"/proc/$1/clear_refs"
}

# step_end PID BROKER CASE CLIENT STEP RECORDS SIZE RATE SUMMARY: appends one result row.
# RATE is records/s; SUMMARY is the perf producer's summary line (latency) or "-".
step_end() {
    local pid="$1" cpu_after
    cpu_after="$(cpu_seconds "$pid")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$2" "$3" "$4" "$5" "$6" "$7" "$8" \
        "$(awk -v a="$STEP_CPU_BEFORE" -v b="$cpu_after" 'BEGIN { printf "%.2f", b - a }')" \
        "$(status_kb "$pid" VmHWM)" "$(status_kb "$pid" VmRSS)" "$9" >>"$RESULTS"
}

# The producer perf test's last line: "N records sent, R records/sec (M MB/sec), A ms avg
# latency, X ms max latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th."
producer_field() { # SUMMARY FIELD(sent|rate)
    python3 - "$1" "$2" <<'PY'
import re, sys
summary, field = sys.argv[1:]
m = re.match(r"(\d+) records sent, ([\d.]+) records/sec", summary)
if not m:
    sys.exit(f"unexpected producer summary: {summary}")
print(m[1] if field == "sent" else m[2])
PY
}

# perf_produce PID BROKER CASE BOOTSTRAP TOPIC SIZE ACKS RECORDS THROUGHPUT STEP
perf_produce() {
    local pid="$1" broker="$2" case_id="$3" bootstrap="$4" topic="$5" size="$6" acks="$7"
    local records="$8" throughput="$9" step="${10}" summary
    step_begin "$pid"
    summary="$(tool kafka-producer-perf-test --topic "$topic" --num-records "$records" \
        --record-size "$size" --throughput "$throughput" \
        --producer-props bootstrap.servers="$bootstrap" acks="$acks" | tail -1)"
    if [ "$(producer_field "$summary" sent)" -ne "$records" ]; then
        echo "$broker: producer perf test sent fewer than $records records: $summary" >&2
        exit 1
    fi
    step_end "$pid" "$broker" "$case_id" perf-tools "$step" "$records" "$size" \
        "$(producer_field "$summary" rate)" "$summary"
    PERF_PRODUCE_RATE="$(producer_field "$summary" rate)"
}

# perf_consume PID BROKER CASE BOOTSTRAP TOPIC SIZE
perf_consume() {
    local pid="$1" broker="$2" case_id="$3" bootstrap="$4" topic="$5" size="$6" summary
    step_begin "$pid"
    # The line after the header: start.time, end.time, data.consumed.in.MB, MB.sec,
    # data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec,
    # fetch.nMsg.sec.
    summary="$(tool kafka-consumer-perf-test --bootstrap-server "$bootstrap" --topic "$topic" \
        --messages "$RECORDS" --timeout 60000 --group "group-$topic" | tail -1)"
    if [ "$(awk -F', *' '{ print NF == 10 ? $5 : -1 }' <<<"$summary")" != "$RECORDS" ]; then
        echo "$broker: consumer perf test did not read $RECORDS records: $summary" >&2
        exit 1
    fi
    step_end "$pid" "$broker" "$case_id" perf-tools consume "$RECORDS" "$size" \
        "$(awk -F', *' '{ print $10 }' <<<"$summary")" -
}

# kcat_step PID BROKER CASE STEP SIZE COMMAND...: times COMMAND (date +%s.%N) for RECORDS records.
kcat_step() {
    local pid="$1" broker="$2" case_id="$3" step="$4" size="$5" start end
    shift 5
    step_begin "$pid"
    start="$(date +%s.%N)"
    timeout "$TOOL_TIMEOUT_S" "$@"
    end="$(date +%s.%N)"
    step_end "$pid" "$broker" "$case_id" kcat "$step" "$RECORDS" "$size" \
        "$(awk -v n="$RECORDS" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / (b - a) }')" -
}

# run_case PID BROKER CASE BOOTSTRAP SIZE PARTITIONS ACKS: steps 1-4 above on one broker.
run_case() {
    local pid="$1" broker="$2" case_id="$3" bootstrap="$4" size="$5" partitions="$6" acks="$7"
    local prefix="bench-$case_id-${broker%% *}" topic consumed
    prefix="${prefix,,}"
    progress "case $case_id ($size B, $partitions partitions, acks=$acks) on $broker"
    for topic in "$prefix-perf" "$prefix-kcat"; do
        tool kafka-topics --bootstrap-server "$bootstrap" --create --topic "$topic" \
            --partitions "$partitions" --replication-factor 1 >/dev/null
    done
    perf_produce "$pid" "$broker" "$case_id" "$bootstrap" "$prefix-perf" "$size" "$acks" \
        "$RECORDS" -1 produce
    perf_consume "$pid" "$broker" "$case_id" "$bootstrap" "$prefix-perf" "$size"
    kcat_step "$pid" "$broker" "$case_id" produce "$size" \
        kcat -b "$bootstrap" -t "$prefix-kcat" -P -l -X acks="$acks" \
        -X queue.buffering.max.messages=1000000 "$WORK_DIR/records-$size.txt"
    # librdkafka's queued.min.messages and queued.max.messages.kbytes are raised as in
    # scripts/bench-broker.sh: at their defaults the consumer stops fetching until a 1-second
    # timer sees its queue drained, which would measure that timer.
    kcat_step "$pid" "$broker" "$case_id" consume "$size" \
        sh -c "kcat -b $bootstrap -t $prefix-kcat -C -o beginning -e -q \
            -X queued.min.messages=1000000 -X queued.max.messages.kbytes=1048576 \
            | wc -l >$WORK_DIR/consumed"
    consumed="$(cat "$WORK_DIR/consumed")"
    if [ "$consumed" -ne "$RECORDS" ]; then
        echo "$broker: kcat consumed $consumed records, expected $RECORDS" >&2
        exit 1
    fi
    if [ "$size $partitions $acks" = "$FIXED_RATE_CASE" ]; then
        local rate
        rate="$(awk -v r="$PERF_PRODUCE_RATE" -v p="$FIXED_RATE_PERCENT" 'BEGIN { printf "%d", r * p / 100 }')"
        tool kafka-topics --bootstrap-server "$bootstrap" --create --topic "$prefix-rate" \
            --partitions "$partitions" --replication-factor 1 >/dev/null
        perf_produce "$pid" "$broker" "$case_id" "$bootstrap" "$prefix-rate" "$size" "$acks" \
            "$(( rate * FIXED_RATE_SECONDS ))" "$rate" "produce at $rate/s"
    fi
    # (The topic argument of --delete is a regular expression matched against the whole name.)
    tool kafka-topics --bootstrap-server "$bootstrap" --delete --topic "$prefix-.*" >/dev/null
}

machine_line
echo "uptime at start: $(uptime)"
START_SECONDS="$SECONDS"
for size in $SIZES; do
    # One record a line: SIZE bytes of value, the newline is kcat's delimiter.
    python3 - "$WORK_DIR/records-$size.txt" "$RECORDS" "$size" <<'PY'
import sys
path, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "wb") as out:
    out.write((b"x" * size + b"\n") * count)
PY
done

KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)"
KAFKA_BOOTSTRAP="$(bash scripts/kafka.sh start "$WORK_DIR/kafka" 2>/dev/null)"
KAFKA_PID="$(cat "$WORK_DIR/kafka/pid")"
KAFKA_LABEL="Kafka $KAFKA_VERSION"
mkdir -p "$WORK_DIR/sluice"
start_local_broker "$SLUICE_BROKER_BIN" "$WORK_DIR/sluice" \
    --group-initial-rebalance-delay-ms "$GROUP_DELAY_MS"
SLUICE_BOOTSTRAP="127.0.0.1:$KAFKA"
SLUICE_LABEL="Sluice $("$SLUICE_BROKER_BIN" --version | cut -d' ' -f2)"
echo "brokers: $KAFKA_LABEL (pid $KAFKA_PID, -Xms256m -Xmx768m, serial GC; RSS after start" \
    "$(( $(status_kb "$KAFKA_PID" VmRSS) / 1024 )) MB) and $SLUICE_LABEL ($SLUICE_BROKER_BIN;" \
    "RSS after start $(( $(status_kb "$BROKER_PID" VmRSS) / 1024 )) MB); this tree at commit" \
    "$(git rev-parse --short HEAD)"
echo "clients: kafka-producer-perf-test, kafka-consumer-perf-test ($KAFKA_VERSION, scripts/kafka.sh" \
    "tool: -Xmx512m, serial GC, C1 only); $(kcat -V 2>&1 | grep -o 'Version.*librdkafka [0-9.]*' |
    sed 's/Version/kcat/; s/ (.*librdkafka/, librdkafka/')"
echo "RECORDS=$RECORDS SIZES='$SIZES' PARTITIONS='$PARTITIONS' ACKS='$ACKS'" \
    "FIXED_RATE_SECONDS=$FIXED_RATE_SECONDS"

case_id=0
for size in $SIZES; do
    for partitions in $PARTITIONS; do
        for acks in $ACKS; do
            if [ $(( case_id % 2 )) -eq 0 ]; then
                run_case "$KAFKA_PID" "$KAFKA_LABEL" "$case_id" "$KAFKA_BOOTSTRAP" "$size" "$partitions" "$acks"
                run_case "$BROKER_PID" "$SLUICE_LABEL" "$case_id" "$SLUICE_BOOTSTRAP" "$size" "$partitions" "$acks"
            else
                run_case "$BROKER_PID" "$SLUICE_LABEL" "$case_id" "$SLUICE_BOOTSTRAP" "$size" "$partitions" "$acks"
                run_case "$KAFKA_PID" "$KAFKA_LABEL" "$case_id" "$KAFKA_BOOTSTRAP" "$size" "$partitions" "$acks"
            fi
            echo "$case_id $size $partitions $acks" >>"$WORK_DIR/cases"
            case_id=$(( case_id + 1 ))
        done
    done
done

echo "uptime at end: $(uptime)"
echo "elapsed: $(( SECONDS - START_SECONDS )) s"
echo
python3 scripts/bench-kafka-perf-table.py "$RESULTS" "$WORK_DIR/cases" "$KAFKA_LABEL" "$SLUICE_LABEL"
