#!/usr/bin/env bash
# A local Sluice cluster of real broker processes, for development and demos:
#
#   scripts/cluster.sh up [N]        start N brokers (default 3), wait until each answers
#                                    /ready, print the bootstrap list. Brokers 1..V are the
#                                    metadata voters, V = $SLUICE_CLUSTER_VOTERS or min(N, 3);
#                                    the others join as non-voting members (learners)
#   scripts/cluster.sh add           start one more broker (id N+1); it joins the running
#                                    cluster as a non-voter through the Raft addresses of the
#                                    running brokers (`--join`; `sluice cluster add-voter` to
#                                    give it a vote)
#   scripts/cluster.sh down          SIGTERM every broker (controlled shutdown), wait for exit
#   scripts/cluster.sh status        each broker: pid, running or not, its /ready answer
#   scripts/cluster.sh kill ID       SIGKILL broker ID (no controlled shutdown)
#   scripts/cluster.sh restart ID    stop broker ID if it runs, start it again on its data
#   scripts/cluster.sh logs ID       the last 50 lines of broker ID's log (its path first)
#   scripts/cluster.sh bootstrap     the bootstrap list, for `export SLUICE_BOOTSTRAP=$(...)`
#
# Everything lives under $SLUICE_CLUSTER_DIR (default ./cluster): node-ID/data, node-ID/broker.log,
# node-ID/pid and cluster.env (size and voter count). Broker ID listens for Kafka clients on
# BASE+ID-1, Raft on BASE+100+ID-1 and admin HTTP on BASE+200+ID-1, where BASE is
# $SLUICE_CLUSTER_BASE_PORT (default 29092), all on 127.0.0.1. Topics default to replication
# factor min(3, N) and, with 3 or more brokers, min.insync.replicas 2, as the deploy files do.
# The broker binary is $SLUICE_BROKER_BIN, or target/release/sluice-broker (built if missing).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${SLUICE_CLUSTER_DIR:-$PWD/cluster}"
BASE="${SLUICE_CLUSTER_BASE_PORT:-29092}"
# Largest cluster this script starts (ports BASE..BASE+99 leave room for far more; this keeps a
# laptop responsive), and the default number of metadata voters: three survive one failure,
# and more voters only slow metadata commits down.
NODES_MAX=9
VOTERS_DEFAULT=3
READY_TIMEOUT_S=60
STOP_TIMEOUT_S=30

die() { echo "cluster.sh: $*" >&2; exit 1; }

broker_bin() {
    if [ -n "${SLUICE_BROKER_BIN:-}" ]; then
        echo "$SLUICE_BROKER_BIN"
        return
    fi
    local bin="$REPO_ROOT/target/release/sluice-broker"
    if [ ! -x "$bin" ]; then
        (cd "$REPO_ROOT" && cargo build --release -p sluice-broker --bin sluice-broker >&2)
    fi
    echo "$bin"
}

size() {
    [ -f "$DIR/cluster.env" ] || die "no cluster in $DIR (run: scripts/cluster.sh up)"
    # shellcheck disable=SC1091
    . "$DIR/cluster.env"
    echo "$SIZE"
}

voter_count() {
    size >/dev/null
    # shellcheck disable=SC1091
    . "$DIR/cluster.env"
    echo "${VOTERS:-$SIZE}"
}

kafka_port() { echo $((BASE + $1 - 1)); }
raft_port() { echo $((BASE + 100 + $1 - 1)); }
admin_port() { echo $((BASE + 200 + $1 - 1)); }

bootstrap() {
    local n list="" id
    n="$(size)"
    for ((id = 1; id <= n; id++)); do list+="${list:+,}127.0.0.1:$(kafka_port "$id")"; done
    echo "$list"
}

pid_of() { cat "$DIR/node-$1/pid" 2>/dev/null || true; }

running() {
    local pid
    pid="$(pid_of "$1")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

ready_answer() {
    curl -s --max-time 2 "http://127.0.0.1:$(admin_port "$1")/ready" 2>/dev/null | head -n 1 || true
}

start_node() { # id [join: Raft addresses of running members, in place of --voters]
    local id="$1" join="${2:-}" n v voters="" i rf min_insync membership
    n="$(size)"
    v="$(voter_count)"
    for ((i = 1; i <= v; i++)); do voters+="${voters:+,}$i@127.0.0.1:$(raft_port "$i")"; done
    membership=(--voters "$voters")
    [ -z "$join" ] || membership=(--join "$join")
    rf=$((n < 3 ? n : 3))
    min_insync=$((n < 3 ? 1 : 2))
    mkdir -p "$DIR/node-$id/data"
    "$BIN" --node-id "$id" --data-dir "$DIR/node-$id/data" \
        --listen "127.0.0.1:$(kafka_port "$id")" \
        --raft-listen "127.0.0.1:$(raft_port "$id")" \
        --admin-listen "127.0.0.1:$(admin_port "$id")" \
        "${membership[@]}" \
        --default-replication-factor "$rf" --offsets-topic-replication-factor "$rf" \
        --min-insync-replicas "$min_insync" \
        >>"$DIR/node-$id/broker.log" 2>&1 &
    echo $! >"$DIR/node-$id/pid"
}

wait_ready() { # id
    local id="$1" deadline=$((SECONDS + READY_TIMEOUT_S))
    until [ "$(ready_answer "$id")" = "ready" ]; do
        running "$id" || die "broker $id exited; see $DIR/node-$id/broker.log"
        [ "$SECONDS" -lt "$deadline" ] || die "broker $id not ready after ${READY_TIMEOUT_S}s; see $DIR/node-$id/broker.log"
        sleep 0.2
    done
}

stop_node() { # id
    local id="$1" pid deadline=$((SECONDS + STOP_TIMEOUT_S))
    running "$id" || return 0
    pid="$(pid_of "$id")"
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "broker $id did not stop within ${STOP_TIMEOUT_S}s: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.1
    done
}

check_id() { # id
    local n
    n="$(size)"
    [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$n" ] || die "no broker $1 (brokers 1..$n)"
}

command="${1:-}"
case "$command" in
    up)
        n="${2:-3}"
        [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$NODES_MAX" ] || die "size must be 1..$NODES_MAX"
        if [ -f "$DIR/cluster.env" ]; then
            existing="$(size)"
            [ "$existing" = "$n" ] || die "$DIR holds a cluster of $existing brokers; use that size or remove $DIR"
        fi
        voters="${SLUICE_CLUSTER_VOTERS:-$((n < VOTERS_DEFAULT ? n : VOTERS_DEFAULT))}"
        [[ "$voters" =~ ^[0-9]+$ ]] && [ "$voters" -ge 1 ] && [ "$voters" -le "$n" ] || die "voters must be 1..$n"
        if [ -f "$DIR/cluster.env" ]; then voters="$(voter_count)"; fi
        mkdir -p "$DIR"
        printf 'SIZE=%s\nVOTERS=%s\n' "$n" "$voters" >"$DIR/cluster.env"
        BIN="$(broker_bin)"
        for ((id = 1; id <= n; id++)); do
            if running "$id"; then echo "broker $id already running (pid $(pid_of "$id"))"; else start_node "$id"; fi
        done
        for ((id = 1; id <= n; id++)); do wait_ready "$id"; done
        echo "$n brokers ready ($voters metadata voters); data and logs in $DIR"
        echo "export SLUICE_BOOTSTRAP=$(bootstrap)"
        ;;
    add)
        n="$(size)"
        voters="$(voter_count)"
        [ "$n" -lt "$NODES_MAX" ] || die "the cluster already has $NODES_MAX brokers"
        id=$((n + 1))
        join=""
        for ((i = 1; i <= n; i++)); do
            if running "$i"; then join+="${join:+,}127.0.0.1:$(raft_port "$i")"; fi
        done
        [ -n "$join" ] || die "no broker is running to join through; start the cluster with: $0 up"
        printf 'SIZE=%s\nVOTERS=%s\n' "$id" "$voters" >"$DIR/cluster.env"
        BIN="$(broker_bin)"
        start_node "$id" "$join"
        wait_ready "$id"
        echo "broker $id ready (a non-voting member; give it a vote with: sluice cluster add-voter $id)"
        echo "export SLUICE_BOOTSTRAP=$(bootstrap)"
        ;;
    down)
        n="$(size)"
        for ((id = 1; id <= n; id++)); do stop_node "$id"; done
        echo "stopped; data kept in $DIR (remove it for a fresh cluster)"
        ;;
    status)
        n="$(size)"
        for ((id = 1; id <= n; id++)); do
            if running "$id"; then
                printf 'broker %s  pid %-7s  kafka 127.0.0.1:%s  %s\n' "$id" "$(pid_of "$id")" "$(kafka_port "$id")" "$(ready_answer "$id")"
            else
                printf 'broker %s  stopped\n' "$id"
            fi
        done
        ;;
    kill)
        check_id "${2:-}"
        running "$2" || die "broker $2 is not running"
        kill -KILL "$(pid_of "$2")"
        echo "broker $2 killed (SIGKILL)"
        ;;
    restart)
        check_id "${2:-}"
        BIN="$(broker_bin)"
        stop_node "$2"
        start_node "$2"
        wait_ready "$2"
        echo "broker $2 ready (pid $(pid_of "$2"))"
        ;;
    logs)
        check_id "${2:-}"
        echo "$DIR/node-$2/broker.log"
        tail -n 50 "$DIR/node-$2/broker.log"
        ;;
    bootstrap)
        bootstrap
        ;;
    *)
        sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
        [ -z "$command" ] || [ "$command" = "help" ] || [ "$command" = "-h" ] || exit 2
        ;;
esac
