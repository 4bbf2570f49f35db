#!/usr/bin/env bash
# Broker throughput with one librdkafka producer (Debian's kcat) and one consumer.
#
# Starts the release broker on free ports with a temporary data directory, writes MESSAGES
# records of 100 B and of 1 KiB to files, then for each size: times `kcat -P` producing the
# file into a fresh 1-partition topic (acks=all, kcat's defaults otherwise) and `kcat -C -e`
# consuming it back (counting the records; librdkafka's queued.min.messages and
# queued.max.messages.kbytes are raised because at their defaults, 100,000 records and 64 MiB,
# the client stops fetching until its 1-second timer sees the queue drained, which measures that
# timer rather than the broker), and reports records/s, MB/s, and the CPU seconds the broker
# and kcat used (from /proc), so you can tell which side is the bottleneck, and the ratio of MB/s
# to the machine's loopback TCP limit measured with iperf3 in the same run (lib/loopback.sh).
#
# Usage: bash scripts/bench-broker.sh            (MESSAGES=1000000 by default)
#        SLUICE_BROKER_BIN=/path/to/sluice-broker bash scripts/bench-broker.sh
#        (runs that binary instead of building this tree's, to compare two builds)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MESSAGES="${MESSAGES:-1000000}"
cd "$REPO_ROOT"
if [ -n "${SLUICE_BROKER_BIN:-}" ]; then
    BIN="$SLUICE_BROKER_BIN"
else
    cargo build --release -p sluice-broker --bin sluice-broker >/dev/null
    BIN="$REPO_ROOT/target/release/sluice-broker"
fi
# shellcheck source=lib/loopback.sh
. "$REPO_ROOT/scripts/lib/loopback.sh"
LOOPBACK_MB_S="$(loopback_mb_s)"
echo "loopback iperf3 (1 stream, 5 s): $LOOPBACK_MB_S MB/s; load $(cut -d' ' -f1-3 /proc/loadavg)"
WORK="$(mktemp -d -t sluice-bench.XXXXXX)"
trap 'kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

read -r KAFKA RAFT ADMIN <<<"$(python3 -c '
import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')"
"$BIN" --data-dir "$WORK/data" --listen "127.0.0.1:$KAFKA" --raft-listen "127.0.0.1:$RAFT" \
    --admin-listen "127.0.0.1:$ADMIN" >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
until curl -sf "http://127.0.0.1:$ADMIN/ready" >/dev/null; do sleep 0.1; done

cpu_seconds() { # utime + stime of a pid, in seconds
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

run() { # label, command...; prints wall seconds, records/s, MB/s and CPU of the broker and kcat
    local label="$1" bytes="$2"; shift 2
    local before after start end
    before="$(cpu_seconds "$BROKER_PID")"
    start="$(date +%s.%N)"
    /usr/bin/time -f "%U %S" -o "$WORK/kcat.cpu" "$@"
    end="$(date +%s.%N)"
    after="$(cpu_seconds "$BROKER_PID")"
    python3 - "$label" "$start" "$end" "$before" "$after" "$bytes" $(cat "$WORK/kcat.cpu") "$MESSAGES" "$LOOPBACK_MB_S" <<'PY'
import sys
label, start, end, before, after, size, user, system, count, loopback = sys.argv[1:11]
wall = float(end) - float(start)
mb_s = int(size) / wall / 1e6
print(f"{label:<28} {wall:7.2f} s  {int(count)/wall:>10,.0f} records/s  {mb_s:7.1f} MB/s"
      f" ({mb_s / float(loopback):5.1%} of loopback)"
      f"  broker CPU {float(after)-float(before):5.2f} s  kcat CPU {float(user)+float(system):5.2f} s")
PY
}

for VALUE_BYTES in 100 1024; do
    FILE="$WORK/records-$VALUE_BYTES.txt"
    python3 - "$FILE" "$MESSAGES" "$VALUE_BYTES" <<'PY'
import sys
path, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
line = b"x" * (size - 1) + b"\n"   # value_bytes including kcat's delimiter, stripped on produce
with open(path, "wb") as out:
    for _ in range(count):
        out.write(line)
PY
    BYTES=$(( MESSAGES * (VALUE_BYTES - 1) ))
    TOPIC="bench-$VALUE_BYTES"
    run "produce ${VALUE_BYTES} B x $MESSAGES" "$BYTES" \
        kcat -b "127.0.0.1:$KAFKA" -t "$TOPIC" -P -l -X acks=all -X queue.buffering.max.messages=1000000 "$FILE"
    run "consume ${VALUE_BYTES} B x $MESSAGES" "$BYTES" \
        sh -c "kcat -b 127.0.0.1:$KAFKA -t $TOPIC -C -o beginning -e -q -X queued.min.messages=1000000 -X queued.max.messages.kbytes=1048576 | wc -l > $WORK/consumed"
    # Every record made the round trip (kcat prints one line per record).
    if [ "$(cat "$WORK/consumed")" -ne "$MESSAGES" ]; then
        echo "consumed $(cat "$WORK/consumed") records, expected $MESSAGES" >&2
        exit 1
    fi
done
