#!/usr/bin/env bash
# Our producer beside librdkafka's, on one broker, in one run (issue 14): records per second
# and client CPU per record of `sluice bench produce` and of kcat (librdkafka 2.0.2, Debian's)
# producing the same number of records of the same size to the same broker, and optionally
# the instructions per record of each client counted by callgrind.
#
#   1. builds the release broker and CLI (or takes SLUICE_BROKER_BIN / SLUICE_CLI_BIN);
#   2. starts the broker on free ports with a temporary data directory (Kafka's topic
#      defaults: flush left to the OS);
#   3. for every SIZES x PARTITIONS x ACKS case, each into a fresh topic deleted afterwards
#      (its dirty pages would otherwise pile up until the kernel throttles writers):
#        kcat -P -l FILE -X acks=A      (FILE: RECORDS lines of SIZE bytes, no key; with acks=all
#                                        also enable.idempotence=true, as ours has; otherwise
#                                        librdkafka's defaults: linger 5 ms, batches up to 1 MB)
#        sluice bench produce -n RECORDS -s SIZE -p P --acks A   (its defaults: 16 KiB batches,
#                                        linger 5 ms; idempotent with acks=all)
#        sluice bench ... --batch-size 1000000  (librdkafka's batch.size: the same batching as kcat)
#        and, with BASELINE_CLI=/path/to/another/sluice, the same with that binary (an older
#        build, for before/after figures in the same run);
#      each timed by /usr/bin/time: wall seconds, and the client's user+system CPU seconds;
#   4. prints one Markdown row per client and case: records/s, MB/s of values, client CPU µs
#      per record, and records/s as a ratio to kcat's; then reads back the topic `sluice bench`
#      filled, once with `sluice bench consume` and once with kcat (`kcat -C -o beginning -e -q
#      -f '%o\n'`: one line per record whatever its bytes, with librdkafka's queue limits raised
#      as in bench-broker.sh; `wc -l` counts the lines, which checks the count), and with
#      BASELINE_CLI once more with that binary's `bench consume`, and prints a second table of
#      the same columns;
#   5. with CALLGRIND=1, also counts each client's instructions per record under
#      `valgrind --tool=callgrind` (100 B records, 4 partitions, acks=1): each client runs
#      CALLGRIND_SMALL and CALLGRIND_LARGE records, and the difference of the two totals over
#      the difference of the counts is the cost of one more record (start-up, connection and
#      metadata cancel out). Instruction counts do not depend on the machine's load.
#
# Usage: bash scripts/bench-producer.sh
#   RECORDS=1000000 SIZES="100 1024" PARTITIONS="1 4" ACKS="1 all" by default (8 cases, about
#   3 minutes after the build on an idle 2-core machine); CALLGRIND=1 adds about 4 minutes.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RECORDS="${RECORDS:-1000000}"
SIZES="${SIZES:-100 1024}"
PARTITIONS="${PARTITIONS:-1 4}"
ACKS="${ACKS:-1 all}"
CALLGRIND="${CALLGRIND:-0}"
CALLGRIND_SMALL="${CALLGRIND_SMALL:-20000}"
CALLGRIND_LARGE="${CALLGRIND_LARGE:-220000}"
BASELINE_CLI="${BASELINE_CLI:-}"
cd "$REPO_ROOT"
if [[ -z "${SLUICE_BROKER_BIN:-}" || -z "${SLUICE_CLI_BIN:-}" ]]; then
    cargo build --release -p sluice-broker --bin sluice-broker -p sluice-cli --bin sluice >/dev/null
fi
BROKER="${SLUICE_BROKER_BIN:-$REPO_ROOT/target/release/sluice-broker}"
SLUICE="${SLUICE_CLI_BIN:-$REPO_ROOT/target/release/sluice}"
for tool in kcat /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench-producer: $tool is missing (bash scripts/install-test-deps.sh installs kcat; apt-get install time)" >&2; exit 1; }
done
if [[ "$CALLGRIND" == 1 ]] && ! command -v valgrind >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
# shellcheck source=lib/local-broker.sh
. "$REPO_ROOT/scripts/lib/local-broker.sh"
WORK="$(mktemp -d -t sluice-bench-producer.XXXXXX)"
cleanup() {
    kill "$BROKER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

start_local_broker "$BROKER" "$WORK"
BOOTSTRAP="127.0.0.1:$KAFKA"
sl() { "$SLUICE" -b "$BOOTSTRAP" "$@"; }
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
machine_line
echo "records per run: $RECORDS; broker: $BROKER; cli: $SLUICE${BASELINE_CLI:+; baseline cli: $BASELINE_CLI}"

# RECORDS lines of SIZE bytes (SIZE-1 characters and the newline, which kcat strips: values of
# SIZE-1 bytes would favour kcat, so the lines hold SIZE characters before the newline).
records_file() {
    local size="$1" records="$2" file="$WORK/records-$1-$2"
    [[ -f "$file" ]] || python3 - "$size" "$records" "$file" <<'PY'
import random, string, sys
size, records, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
alphabet = (string.ascii_letters + string.digits).encode()
pool = [bytes(random.choice(alphabet) for _ in range(size)) + b"\n" for _ in range(64)]
with open(path, "wb") as out:
    for i in range(records):
        out.write(pool[i % 64])
PY
    echo "$file"
}

# Runs "$@" under /usr/bin/time; prints "wall cpu" (seconds) of it.
timed() {
    local times="$WORK/time"
    /usr/bin/time -o "$times" -f '%e %U %S' "$@" >"$WORK/out" 2>"$WORK/err" || {
        echo "bench-producer: failed: $*" >&2
        cat "$WORK/err" >&2
        return 1
    }
    read -r wall user system <"$times"
    python3 -c "print($wall, $user + $system)"
}

kcat_args() { # acks
    local args=(-X "acks=$1")
    [[ "$1" == all ]] && args+=(-X enable.idempotence=true)
    echo "${args[@]}"
}

echo
echo "| size | partitions | acks | client | records/s | MB/s | client CPU µs/record | ratio to kcat |"
echo "|---:|---:|---|---|---:|---:|---:|---:|"
case_number=0
CONSUME_ROWS=()
for SIZE in $SIZES; do
    FILE="$(records_file "$SIZE" "$RECORDS")"
    for P in $PARTITIONS; do
        for A in $ACKS; do
            case_number=$((case_number + 1))
            declare -A RATE=()
            clients=(kcat sluice sluice-1mb)
            [[ -n "$BASELINE_CLI" ]] && clients+=(baseline)
            for CLIENT in "${clients[@]}"; do
                TOPIC="bench-producer-$case_number-$CLIENT"
                sl topic create "$TOPIC" -p "$P" -r 1 >/dev/null
                # shellcheck disable=SC2046
                case "$CLIENT" in
                    kcat) read -r WALL CPU <<<"$(timed kcat -P -b "$BOOTSTRAP" -t "$TOPIC" -l $(kcat_args "$A") "$FILE")" ;;
                    sluice) read -r WALL CPU <<<"$(timed "$SLUICE" -b "$BOOTSTRAP" bench produce -t "$TOPIC" -n "$RECORDS" -s "$SIZE" -p "$P" --acks "$A" --json)" ;;
                    sluice-1mb) read -r WALL CPU <<<"$(timed "$SLUICE" -b "$BOOTSTRAP" bench produce -t "$TOPIC" -n "$RECORDS" -s "$SIZE" -p "$P" --acks "$A" --batch-size 1000000 --json)" ;;
                    baseline) read -r WALL CPU <<<"$(timed "$BASELINE_CLI" -b "$BOOTSTRAP" bench produce -t "$TOPIC" -n "$RECORDS" -s "$SIZE" -p "$P" --acks "$A" --json)" ;;
                esac
                # The records must all be there: the high watermarks of the topic add up.
                STORED="$(sl topic describe "$TOPIC" --json | python3 -c 'import json,sys; print(sum(p["log_end_offset"] - p["log_start_offset"] for p in json.load(sys.stdin)["partitions"]))')"
                if [[ "$STORED" != "$RECORDS" ]]; then
                    echo "bench-producer: $CLIENT stored $STORED of $RECORDS records in $TOPIC" >&2
                    exit 1
                fi
                if [[ "$CLIENT" == sluice ]]; then
                    CONSUMED_TOPIC="$TOPIC"
                    read -r WALL_K CPU_K <<<"$(timed bash -c "kcat -C -b '$BOOTSTRAP' -t '$TOPIC' -o beginning -e -q -f '%o\\n' -X queued.min.messages=1000000 -X queued.max.messages.kbytes=1048576 | wc -l")"
                    COUNTED="$(cat "$WORK/out")"
                    [[ "$COUNTED" == "$RECORDS" ]] || { echo "bench-producer: kcat read $COUNTED of $RECORDS records" >&2; exit 1; }
                    read -r WALL_S CPU_S <<<"$(timed "$SLUICE" -b "$BOOTSTRAP" bench consume -t "$CONSUMED_TOPIC" --json)"
                    BASELINE_CONSUME=()
                    if [[ -n "$BASELINE_CLI" ]]; then
                        read -r WALL_B CPU_B <<<"$(timed "$BASELINE_CLI" -b "$BOOTSTRAP" bench consume -t "$CONSUMED_TOPIC" --json)"
                        BASELINE_CONSUME=("$WALL_B" "$CPU_B")
                    fi
                    CONSUME_ROWS+=("$(python3 - "$SIZE" "$P" "$RECORDS" "$WALL_K" "$CPU_K" "$WALL_S" "$CPU_S" "${BASELINE_CONSUME[@]}" <<'PY'
import sys
size, partitions, records = sys.argv[1], sys.argv[2], int(sys.argv[3])
wall_k, cpu_k, wall_s, cpu_s = map(float, sys.argv[4:8])
label = f"{'100 B' if size == '100' else '1 KiB' if size == '1024' else size + ' B'}"
rows = []
clients = [("kcat (librdkafka 2.0.2) \\| wc -l", wall_k, cpu_k), ("sluice bench consume", wall_s, cpu_s)]
if len(sys.argv) > 9:
    clients.append(("sluice bench consume (baseline build)", float(sys.argv[8]), float(sys.argv[9])))
for name, wall, cpu in clients:
    rate = records / wall
    rows.append(f"| {label} | {partitions} | {name} | {rate:,.0f} | {rate * int(size) / 1e6:,.1f} | "
                f"{cpu / records * 1e6:.2f} | {rate / (records / wall_k):.2f}× |")
print("\n".join(rows))
PY
)")
                fi
                sl topic delete "$TOPIC" >/dev/null
                RATE[$CLIENT]="$(python3 -c "print($RECORDS / $WALL)")"
                python3 - "$SIZE" "$P" "$A" "$CLIENT" "$RECORDS" "$WALL" "$CPU" "${RATE[kcat]}" <<'PY'
import sys
size, partitions, acks, client, records, wall, cpu, kcat = sys.argv[1:9]
records, wall, cpu, kcat = int(records), float(wall), float(cpu), float(kcat)
rate = records / wall
name = {"kcat": "kcat (librdkafka 2.0.2)", "sluice": "sluice bench", "sluice-1mb": "sluice bench, 1 MB batches",
        "baseline": "sluice bench (baseline build)"}[client]
label = f"{'100 B' if size == '100' else '1 KiB' if size == '1024' else size + ' B'}"
print(f"| {label} | {partitions} | {acks} | {name} | {rate:,.0f} | {rate * int(size) / 1e6:,.1f} | "
      f"{cpu / records * 1e6:.2f} | {rate / kcat:.2f}× |")
PY
            done
        done
    done
done

echo
echo "Reading back the topic sluice bench filled (kcat prints each record's offset into a pipe; its CPU includes that, and wc's counting):"
echo
echo "| size | partitions | consumer | records/s | MB/s | client CPU µs/record | ratio to kcat |"
echo "|---:|---:|---|---:|---:|---:|---:|"
printf '%s\n' "${CONSUME_ROWS[@]}"

if [[ "$CALLGRIND" == 1 ]]; then
    echo
    echo "Instructions per record under callgrind (100 B, 4 partitions, acks=1; ($CALLGRIND_LARGE - $CALLGRIND_SMALL) records):"
    echo
    echo "| client | instructions ($CALLGRIND_SMALL records) | instructions ($CALLGRIND_LARGE records) | instructions per record |"
    echo "|---|---:|---:|---:|"
    # Total instructions (Ir) of every thread of one run.
    instructions() {
        local out="$WORK/callgrind.out"
        rm -f "$out"*
        valgrind --tool=callgrind --callgrind-out-file="$out.%p" "$@" >/dev/null 2>"$WORK/valgrind.err" || {
            cat "$WORK/valgrind.err" >&2
            return 1
        }
        grep -h '^summary:' "$out".* | awk '{ total += $2 } END { print total }'
    }
    cg_clients=(kcat sluice)
    [[ -n "$BASELINE_CLI" ]] && cg_clients+=(baseline)
    for CLIENT in "${cg_clients[@]}"; do
        declare -A COUNT=()
        for N in "$CALLGRIND_SMALL" "$CALLGRIND_LARGE"; do
            TOPIC="bench-producer-callgrind-$CLIENT-$N"
            sl topic create "$TOPIC" -p 4 -r 1 >/dev/null
            # shellcheck disable=SC2046
            case "$CLIENT" in
                kcat) COUNT[$N]="$(instructions kcat -P -b "$BOOTSTRAP" -t "$TOPIC" -l -X acks=1 "$(records_file 100 "$N")")" ;;
                sluice) COUNT[$N]="$(instructions "$SLUICE" -b "$BOOTSTRAP" bench produce -t "$TOPIC" -n "$N" -s 100 -p 4 --acks 1 --json)" ;;
                baseline) COUNT[$N]="$(instructions "$BASELINE_CLI" -b "$BOOTSTRAP" bench produce -t "$TOPIC" -n "$N" -s 100 -p 4 --acks 1 --json)" ;;
            esac
            sl topic delete "$TOPIC" >/dev/null
        done
        python3 - "$CLIENT" "$CALLGRIND_SMALL" "$CALLGRIND_LARGE" "${COUNT[$CALLGRIND_SMALL]}" "${COUNT[$CALLGRIND_LARGE]}" <<'PY'
import sys
client, small, large, ir_small, ir_large = sys.argv[1], *map(int, sys.argv[2:])
name = {"kcat": "kcat (librdkafka 2.0.2)", "sluice": "sluice bench", "baseline": "sluice bench (baseline build)"}[client]
print(f"| {name} | {ir_small:,} | {ir_large:,} | {(ir_large - ir_small) / (large - small):,.0f} |")
PY
    done
fi
