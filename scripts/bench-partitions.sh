#!/usr/bin/env bash
# Partition scale on one broker (issue 14): how long creating PARTITIONS partitions takes, what
# the broker holds then (RSS, open file descriptors), how long a clean shutdown (SIGTERM) and a
# restart to `/ready` take.
#
#   1. builds the release broker (unless BROKER_BINS names brokers to compare);
#   2. for each broker of BROKER_BINS: starts it on free ports with a new data directory,
#      creates TOPICS topics of PARTITIONS/TOPICS partitions each (replication factor 1) with
#      one CreateTopics request of confluent-kafka's AdminClient, measures, sends SIGTERM and
#      times the exit, starts it again on the same data and times `/ready`;
#   3. prints one Markdown row per broker.
#
# Each partition holds 1 file descriptor (its active segment's log; indexes are memory-mapped
# without one), and the broker keeps 2048 for everything else, so the script raises its own
# limit to NOFILE (as root it may raise the hard limit too; deploy/systemd sets
# LimitNOFILE=65536 for the same reason).
#
# Usage: bash scripts/bench-partitions.sh
# Environment: PARTITIONS (10000), TOPICS (10), NOFILE (65536), IDLE_SECONDS (30: how long the
# broker's CPU is measured while it idles after creating the partitions), BROKER_BINS (space-separated
# broker binaries; default: a release build of this tree).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PARTITIONS="${PARTITIONS:-10000}"
TOPICS="${TOPICS:-10}"
NOFILE="${NOFILE:-65536}"
IDLE_SECONDS="${IDLE_SECONDS:-30}"
cd "$REPO_ROOT"
if [ -z "${BROKER_BINS:-}" ]; then
    cargo build --release -p sluice-broker --bin sluice-broker >/dev/null
    BROKER_BINS="$REPO_ROOT/target/release/sluice-broker"
fi
bash scripts/install-test-deps.sh >/dev/null
PYTHON="$REPO_ROOT/.venv/bin/python"
ulimit -Hn "$NOFILE" 2>/dev/null || true
ulimit -Sn "$NOFILE" 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
# shellcheck source=lib/local-broker.sh
. "$REPO_ROOT/scripts/lib/local-broker.sh"
WORK="$(mktemp -d -t sluice-bench-partitions.XXXXXX)"
cleanup() {
    kill "${BROKER_PID:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
seconds_since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }
rss_mb() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the command
# name in field 2 has no spaces here).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

machine_line
echo "partitions: $PARTITIONS in $TOPICS topics, replication factor 1; file descriptor limit $(ulimit -Sn)"
echo
echo "| broker | create | RSS after | fds after | idle CPU (% of a core, ${IDLE_SECONDS} s) | shutdown (SIGTERM to exit) | restart to /ready | RSS after restart |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for broker in $BROKER_BINS; do
    dir="$WORK/$(basename "$(dirname "$broker")")-$RANDOM"
    mkdir -p "$dir"
    start_local_broker "$broker" "$dir"
    started=$(now)
    "$PYTHON" - "127.0.0.1:$KAFKA" "$TOPICS" "$((PARTITIONS / TOPICS))" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, topics, partitions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": bootstrap})
futures = admin.create_topics([NewTopic(f"scale-{i}", num_partitions=partitions, replication_factor=1)
                               for i in range(topics)], request_timeout=600, operation_timeout=600)
for topic, future in futures.items():
    future.result()
PY
    create=$(seconds_since "$started")
    rss=$(rss_mb "$BROKER_PID"); open=$(fds "$BROKER_PID")
    # Idle CPU: what the broker spends with nothing produced or fetched (maintenance ticks).
    sleep 5
    ticks_before=$(cpu_ticks "$BROKER_PID")
    sleep "$IDLE_SECONDS"
    idle_cpu=$(python3 -c "import os, sys; print(f'{100 * (int(sys.argv[2]) - int(sys.argv[1])) / os.sysconf(\"SC_CLK_TCK\") / float(sys.argv[3]):.1f}')" "$ticks_before" "$(cpu_ticks "$BROKER_PID")" "$IDLE_SECONDS")
    started=$(now)
    kill -TERM "$BROKER_PID"
    wait "$BROKER_PID" || true
    shutdown=$(seconds_since "$started")
    mv "$dir/broker.log" "$dir/broker-1.log"
    started=$(now)
    start_local_broker "$broker" "$dir"
    restart=$(seconds_since "$started")
    rss2=$(rss_mb "$BROKER_PID")
    kill -TERM "$BROKER_PID"
    wait "$BROKER_PID" || true
    echo "| \`$broker\` | ${create} s | ${rss} MB | $open | ${idle_cpu}% | ${shutdown} s | ${restart} s | ${rss2} MB |"
    rm -rf "$dir"
done
