#!/usr/bin/env bash
# Multi-host cluster test without Docker: three real sluice-broker processes, each in its own
# Linux network namespace with its own address, started the way deploy/README.md and
# deploy/systemd/sluice-broker.env.example say (SLUICE_* environment plus SLUICE_BROKER_ARGS),
# driven from the root namespace by confluent-kafka (deploy/netns/client.py, the .venv).
#
#   1. creates a bridge in the root namespace (10.213.0.1/24) and three namespaces, each with a
#      veth pair to it: broker N at 10.213.0.1N (11, 12, 13), Kafka on 9092, Raft on 9093,
#      admin HTTP on 9644, all listening on 0.0.0.0 and advertising 10.213.0.1N:9092;
#   2. starts a broker in each (data under a temporary directory), waits for /ready on all
#      three (curl from the root namespace);
#   3. creates a topic of 3 partitions, replication factor 3, min.insync.replicas 2, waits for
#      a full ISR; produces keyed records with an idempotent acks=all producer;
#   4. produces at a steady rate while it SIGKILLs the leader of partition 0 (a partition
#      leader, whichever broker leads the metadata Raft group); a new leader must serve:
#      reports the gap between the kill and the first acknowledgement of a partition-0 record
#      produced after the kill;
#   5. every acknowledged record must be readable, at its acknowledged offset, from the two
#      survivors (no duplicates, per-key order kept);
#   6. restarts the killed broker with the same settings and data: it must be ready and
#      rejoin the ISR of every partition (Metadata lists all 3); everything is checked again;
#   7. proves the rejoined copy is real: SIGKILLs partition 0's current leader, so that the
#      first surviving ISR member in replica order leads it (the restarted broker, when it comes
#      first), and reads every acknowledged record back again; restarts that broker too and
#      waits for a full ISR;
#   8. grows the cluster to five brokers with three voters: brokers 4 and 5 (namespaces of
#      their own) start with the same voter list, which does not name them, so they join as
#      non-voting members (learners); a topic of 5 partitions must place replicas on them;
#      under steady production it SIGKILLs non-voter 5, checks that every acknowledged record
#      is readable, restarts it until it is in every ISR, then does the same with the
#      metadata leader (a voter).
#
# Everything it creates (namespaces, bridge, veths, processes, temporary directory) is removed
# on exit, on failure and on interrupt (trap); on failure the brokers' logs are kept and their
# last lines printed. Traffic goes only to the namespaces' addresses. Every wait has a
# timeout, the whole run a budget (NETNS_BUDGET_S, default 300 s).
#
# Needs: root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), iproute2 (installed with apt-get when `ip`
# is missing), curl, python3. If network namespaces cannot be created here (e.g. inside an
# unprivileged container), prints one "NETNS CLUSTER TEST SKIPPED: <why>" line and exits 0.
#
# Usage: deploy/netns/cluster-test.sh [--keep]    (--keep: leave logs and data on failure too;
#        they are always kept on failure, --keep also keeps them on success)
# Environment: SLUICE_BROKER_BIN (default: cargo build --release -p sluice-broker, then
#   target/release/sluice-broker), NETNS_SUBNET (first three octets, default 10.213.0),
#   NETNS_BUDGET_S (default 300).
# Ends with one line: "NETNS CLUSTER TEST PASS ..." (exit 0) or "NETNS CLUSTER TEST FAIL ..."
# (exit 1).
set -euo pipefail

NETNS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$NETNS_DIR/../.." && pwd)"

keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) keep=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "netns-cluster-test: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

SUBNET="${NETNS_SUBNET:-10.213.0}"
BUDGET_S="${NETNS_BUDGET_S:-300}"
READY_TIMEOUT_S=60  # a broker's /ready after (re)start
CLIENT_TIMEOUT_S=90 # one client step (its own waits are shorter)
ISR_TIMEOUT_S=60    # the restarted broker back in every ISR
RECORDS=2000        # produced before the kill
LOAD_S=12           # steady production around the kill
LOAD_RATE=200       # records/s during it
KILL_AFTER_S=3      # into the steady production
TOPIC=netns-replicated
KAFKA_PORT=9092
RAFT_PORT=9093
ADMIN_PORT=9644
# Interface names are at most 15 bytes: a short per-run tag keeps parallel runs apart.
TAG="$(( $$ % 100000 ))"
BRIDGE="snbr$TAG"
NS_PREFIX="sluice-netns-$TAG-"
START_S=$(date +%s)
current_step="preflight"
failed_reason=""
WORK=""
declare -a PID=("" "" "" "" "" "")  # broker pid by node id 1..5
created_bridge=0
load_pid=""
declare -a created_ns=()

elapsed() { echo $(( $(date +%s) - START_S )); }
log() { printf '[netns +%3ss] %s\n' "$(elapsed)" "$*"; }
fail() { failed_reason="$*"; log "FAILED: $*"; exit 1; }
step() {
    current_step="$*"
    if [ "$(elapsed)" -gt "$BUDGET_S" ]; then
        fail "time budget of ${BUDGET_S}s used up before: $*"
    fi
    log "== $*"
}
skipped=0
skip() { skipped=1; echo "NETNS CLUSTER TEST SKIPPED: $*"; exit 0; }

ns_of() { echo "${NS_PREFIX}$1"; }
ip_of() { echo "$SUBNET.1$1"; }

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [ "$skipped" = 1 ] && exit 0 # nothing was created yet, and the one line is out
    set +e
    local n
    # The background producer of step 4, if the run stopped during it.
    [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
    for n in 1 2 3 4 5; do
        if [ -n "${PID[$n]}" ] && kill -0 "${PID[$n]}" 2>/dev/null; then
            kill -KILL "${PID[$n]}" 2>/dev/null
            wait "${PID[$n]}" 2>/dev/null
        fi
    done
    local ns
    for ns in "${created_ns[@]}"; do ip netns delete "$ns" 2>/dev/null; done
    [ "$created_bridge" = 1 ] && ip link delete "$BRIDGE" 2>/dev/null
    if [ "$status" -ne 0 ] && [ -z "$failed_reason" ]; then
        failed_reason="step '$current_step' exited with status $status"
    fi
    if [ "$status" -ne 0 ] && [ -n "$WORK" ]; then
        for n in 1 2 3 4 5; do
            [ -s "$WORK/broker-$n/broker.log" ] || continue
            echo "----- last lines of broker $n (openraft lines left out; full log: $WORK/broker-$n/broker.log)"
            grep -v -e ' openraft' "$WORK/broker-$n/broker.log" | tail -n 15 | cut -c1-300
        done
    fi
    if [ "$status" -eq 0 ]; then
        if [ "$keep" = 1 ]; then log "kept $WORK"; elif [ -n "$WORK" ]; then rm -rf "$WORK"; fi
        echo "NETNS CLUSTER TEST PASS: 3 then 5 brokers (3 voters) in network namespaces, RF 3, min.insync.replicas 2; $SUMMARY ($(elapsed) s)"
    else
        echo "NETNS CLUSTER TEST FAIL at '$current_step': $failed_reason ($(elapsed) s${WORK:+; logs and data in $WORK})"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'failed_reason="interrupted"; exit 130' INT TERM
SUMMARY=""

# ---------------------------------------------------------------- preflight
[ "$(id -u)" = 0 ] || skip "not root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)"
if ! command -v ip >/dev/null; then
    log "installing iproute2 (no 'ip' command)"
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq iproute2 >/dev/null 2>&1 \
        || { timeout 300 apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq iproute2 >/dev/null 2>&1; } \
        || fail "could not install iproute2"
fi
command -v curl >/dev/null || fail "curl is needed to poll /ready"
command -v timeout >/dev/null || fail "timeout (coreutils) is needed"
# Can this machine create a namespace at all? (Not inside an unprivileged container.)
probe_ns="${NS_PREFIX}probe"
if ! probe_error="$(ip netns add "$probe_ns" 2>&1)"; then
    skip "'ip netns add' is not permitted here: ${probe_error//$'\n'/ }"
fi
ip netns delete "$probe_ns"
# The subnet must be free: never shadow a network this machine already uses.
if ip -4 addr show | grep -q "inet $SUBNET\."; then
    fail "$SUBNET.0/24 is already configured on this machine (another run?); set NETNS_SUBNET"
fi
existing_route="$(ip -4 route show to match "$SUBNET.11" | grep -v '^default' | head -n 1 || true)"
if [ -n "$existing_route" ]; then
    fail "a route to $SUBNET.0/24 exists already: $existing_route; set NETNS_SUBNET"
fi

if [ -n "${SLUICE_BROKER_BIN:-}" ]; then
    BIN="$SLUICE_BROKER_BIN"
else
    step "building the release broker (cargo build --release -p sluice-broker)"
    (cd "$REPO_ROOT" && cargo build --release -p sluice-broker --bin sluice-broker) || fail "cargo build failed"
    BIN="$REPO_ROOT/target/release/sluice-broker"
fi
[ -x "$BIN" ] || fail "no broker binary at $BIN"
PYTHON="$REPO_ROOT/.venv/bin/python"
if [ ! -x "$PYTHON" ]; then
    log "no .venv: running scripts/install-test-deps.sh"
    bash "$REPO_ROOT/scripts/install-test-deps.sh" >/dev/null || fail "scripts/install-test-deps.sh failed"
fi
WORK="$(mktemp -d -t sluice-netns.XXXXXX)"
log "broker $BIN; work directory $WORK"

# ---------------------------------------------------------------- 1. network
step "1. bridge $BRIDGE ($SUBNET.1/24) and namespaces ${NS_PREFIX}1..3"
ip link add "$BRIDGE" type bridge
created_bridge=1
ip addr add "$SUBNET.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
# make_ns N: namespace N with a veth to the bridge, address $(ip_of N).
make_ns() {
    local n="$1" ns
    ns="$(ns_of "$n")"
    ip netns add "$ns"
    created_ns+=("$ns")
    ip link add "snh$TAG-$n" type veth peer name "snp$TAG-$n"
    ip link set "snh$TAG-$n" master "$BRIDGE" up
    ip link set "snp$TAG-$n" netns "$ns"
    ip -n "$ns" link set "snp$TAG-$n" name eth0
    ip -n "$ns" addr add "$(ip_of "$n")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
}
for n in 1 2 3; do make_ns "$n"; done
if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ]; then
    log "note: br_netfilter is on (bridge-nf-call-iptables=1): a FORWARD policy of DROP would cut the brokers off from each other"
fi
log "brokers at $(ip_of 1), $(ip_of 2), $(ip_of 3)"

# ---------------------------------------------------------------- 2. brokers
VOTERS="1@$(ip_of 1):$RAFT_PORT,2@$(ip_of 2):$RAFT_PORT,3@$(ip_of 3):$RAFT_PORT"
BOOTSTRAP="$(ip_of 1):$KAFKA_PORT,$(ip_of 2):$KAFKA_PORT,$(ip_of 3):$KAFKA_PORT"

# write_env N: broker N's settings in the form of deploy/systemd/sluice-broker.env.example.
write_env() {
    local n="$1" dir="$WORK/broker-$1"
    mkdir -p "$dir/data"
    cat >"$dir/sluice-broker.env" <<EOF
SLUICE_NODE_ID=$n
SLUICE_DATA_DIR=$dir/data
SLUICE_LISTEN=0.0.0.0:$KAFKA_PORT
SLUICE_ADVERTISE=$(ip_of "$n"):$KAFKA_PORT
SLUICE_RAFT_LISTEN=0.0.0.0:$RAFT_PORT
SLUICE_RAFT_ADVERTISE=$(ip_of "$n"):$RAFT_PORT
SLUICE_VOTERS=$VOTERS
SLUICE_ADMIN_LISTEN=0.0.0.0:$ADMIN_PORT
SLUICE_BROKER_ARGS=--default-replication-factor=3 --offsets-topic-replication-factor=3 --default-partitions=1 --min-insync-replicas=2
RUST_LOG=info
NO_COLOR=1
EOF
}

# start_broker N: as the systemd unit does (EnvironmentFile=, ExecStart=... $SLUICE_BROKER_ARGS),
# inside namespace N. `ip netns exec` and `env` exec, so $! is the broker's own pid.
start_broker() {
    local n="$1" dir="$WORK/broker-$1" args
    args="$(sed -n 's/^SLUICE_BROKER_ARGS=//p' "$dir/sluice-broker.env")"
    # shellcheck disable=SC2046,SC2086 # the env file's lines are NAME=value words; args split on whitespace like systemd
    ip netns exec "$(ns_of "$n")" env $(grep -E '^[A-Z_]+=' "$dir/sluice-broker.env" | grep -v '^SLUICE_BROKER_ARGS=') \
        "$BIN" $args >>"$dir/broker.log" 2>&1 &
    PID[n]=$!
}

ready() { curl -fsS -m 2 "http://$(ip_of "$1"):$ADMIN_PORT/ready" >/dev/null 2>&1; }

wait_ready() { # wait_ready NODE...: /ready answers 200 on each, within READY_TIMEOUT_S
    local deadline=$(( $(date +%s) + READY_TIMEOUT_S )) n pending
    while :; do
        pending=""
        for n in "$@"; do
            kill -0 "${PID[$n]}" 2>/dev/null || fail "broker $n exited (see $WORK/broker-$n/broker.log)"
            ready "$n" || pending="$pending $n"
        done
        [ -z "$pending" ] && return 0
        [ "$(date +%s)" -ge "$deadline" ] && fail "brokers$pending not ready within ${READY_TIMEOUT_S}s"
        sleep 0.5
    done
}

# py ARGS...: client.py from the root namespace, bounded; stderr shown when it fails.
py() {
    local err="$WORK/client.err" status=0
    timeout --kill-after=5 "$CLIENT_TIMEOUT_S" "$PYTHON" "$NETNS_DIR/client.py" "$@" 2>"$err" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "client step failed (status $status): $*" >&2
        grep -v '^%[4-7]|' "$err" | tail -n 20 >&2
    fi
    return "$status"
}
json() { "$PYTHON" -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

step "2. start three brokers (systemd-style env files), wait for /ready"
for n in 1 2 3; do write_env "$n"; start_broker "$n"; done
wait_ready 1 2 3
log "/ready is 200 on all three (pids ${PID[1]} ${PID[2]} ${PID[3]})"

# ---------------------------------------------------------------- 3. topic and data
step "3. topic $TOPIC (3 partitions, RF 3, min.insync.replicas 2), produce $RECORDS records"
created="$(py --bootstrap "$BOOTSTRAP" create-topic "$TOPIC" --partitions 3 --replication-factor 3 --min-insync 2)" \
    || fail "create $TOPIC"
log "$TOPIC: $(echo "$created" | json 'd["partitions"]')"
ACKED="$WORK/acked.jsonl"
produced="$(py --bootstrap "$BOOTSTRAP" produce "$TOPIC" --acked "$ACKED" --count "$RECORDS")" \
    || fail "produce $RECORDS records"
log "produced: $produced"
next="$(echo "$produced" | json 'd["next"]')"

# ---------------------------------------------------------------- 4. kill a partition leader
step "4. SIGKILL the leader of $TOPIC/0 while producing ${LOAD_RATE}/s for ${LOAD_S}s"
described="$(py --bootstrap "$BOOTSTRAP" describe "$TOPIC")" || fail "describe $TOPIC"
victim="$(echo "$described" | json 'd["partitions"]["0"]["leader"]')"
case "$victim" in 1|2|3) ;; *) fail "partition 0 has no leader ('$victim')" ;; esac
controller="$(echo "$described" | json 'd["controller"]')"
if [ "$controller" = "$victim" ]; then role="also the metadata Raft leader"; else role="not the metadata Raft leader, broker $controller is"; fi
survivors=""
for n in 1 2 3; do [ "$n" = "$victim" ] || survivors="$survivors $n"; done
survivors="${survivors# }"
SURVIVOR_BOOTSTRAP=""
for n in $survivors; do SURVIVOR_BOOTSTRAP="$SURVIVOR_BOOTSTRAP,$(ip_of "$n"):$KAFKA_PORT"; done
SURVIVOR_BOOTSTRAP="${SURVIVOR_BOOTSTRAP#,}"

# Started directly (not through py, a shell function) so that $! is timeout's pid and killing
# it on interrupt also stops the producer.
timeout --kill-after=5 "$CLIENT_TIMEOUT_S" "$PYTHON" "$NETNS_DIR/client.py" --bootstrap "$BOOTSTRAP" \
    produce "$TOPIC" --acked "$ACKED" --start "$next" --duration "$LOAD_S" --rate "$LOAD_RATE" \
    >"$WORK/load.json" 2>"$WORK/load.err" &
load_pid=$!
sleep "$KILL_AFTER_S"
kill_at="$(date +%s.%N)"
kill -KILL "${PID[$victim]}"
wait "${PID[$victim]}" 2>/dev/null || true
PID[victim]=""
log "killed broker $victim (leader of $TOPIC/0; $role) at $kill_at; survivors: $survivors"
new_leader="$(py --bootstrap "$SURVIVOR_BOOTSTRAP" --timeout 30 wait "$TOPIC" --partition 0 --not-leader "$victim")" \
    || fail "no new leader of $TOPIC/0 among the survivors"
log "new leader of $TOPIC/0: broker $(echo "$new_leader" | json 'd["leader"]'), ISR $(echo "$new_leader" | json 'd["isr"]')"
wait "$load_pid" || { load_pid=""; fail "steady production through the kill: $(cat "$WORK/load.json" 2>/dev/null) $(grep -v '^%[4-7]|' "$WORK/load.err" | tail -n 5)"; }
load_pid=""
log "steady production: $(cat "$WORK/load.json")"
gap="$(py --bootstrap "$SURVIVOR_BOOTSTRAP" gap --acked "$ACKED" --partition 0 --since "$kill_at")" \
    || fail "partition 0 never served again after the kill"
gap_s="$(echo "$gap" | json 'd["gap_s"]')"
log "partition 0 served again ${gap_s}s after the kill ($gap)"

# ---------------------------------------------------------------- 5. nothing acknowledged lost
step "5. every acknowledged record readable from the survivors"
checked="$(py --bootstrap "$SURVIVOR_BOOTSTRAP" check "$TOPIC" --acked "$ACKED")" || fail "records lost or damaged after the kill"
log "read back: $checked"
acked_total="$(echo "$checked" | json 'd["acknowledged"]')"

# ---------------------------------------------------------------- 6. restart, rejoin the ISR
step "6. restart broker $victim (same settings and data), wait until it is in every ISR"
restart_at=$(date +%s.%N)
since_restart() { "$PYTHON" -c "import time; print(round(time.time() - $restart_at, 1))"; }
start_broker "$victim"
wait_ready "$victim"
log "broker $victim ready again after $(since_restart)s"
rejoined="$(py --bootstrap "$BOOTSTRAP" --timeout "$ISR_TIMEOUT_S" wait "$TOPIC" --partition 0 --isr-size 3 --all-partitions)" \
    || fail "broker $victim did not rejoin the ISR of every partition within ${ISR_TIMEOUT_S}s"
described="$(py --bootstrap "$BOOTSTRAP" describe "$TOPIC")" || fail "describe $TOPIC"
echo "$described" | json "all(p['isr'] == [1, 2, 3] for p in d['partitions'].values())" | grep -qx True \
    || fail "ISR not 1,2,3 on every partition: $described"
isr_s="$(since_restart)"
log "broker $victim is back in every ISR ${isr_s}s after its restart (Metadata polled for $(echo "$rejoined" | json 'd["waited_s"]')s after /ready): $(echo "$described" | json 'd["partitions"]')"
more="$(py --bootstrap "$BOOTSTRAP" produce "$TOPIC" --acked "$ACKED" --start 1000000 --count 300)" \
    || fail "produce after the restart"
checked="$(py --bootstrap "$BOOTSTRAP" check "$TOPIC" --acked "$ACKED")" || fail "records after the restart"
log "after the restart: produced $more; read back $checked"
acked_total="$(echo "$checked" | json 'd["acknowledged"]')"

# ---------------------------------------------------------------- 7. the rejoined copy serves
step "7. SIGKILL the current leader of $TOPIC/0; the new leader (maybe broker $victim) must serve every record"
second="$(echo "$described" | json 'd["partitions"]["0"]["leader"]')"
expected="$(echo "$described" | json "[b for b in d['partitions']['0']['replica_order'] if b != $second][0]")"
case "$second" in 1|2|3) ;; *) fail "partition 0 has no leader ('$second')" ;; esac
kill -KILL "${PID[$second]}"
wait "${PID[$second]}" 2>/dev/null || true
PID[second]=""
REST_BOOTSTRAP=""
for n in 1 2 3; do [ "$n" = "$second" ] || REST_BOOTSTRAP="$REST_BOOTSTRAP,$(ip_of "$n"):$KAFKA_PORT"; done
REST_BOOTSTRAP="${REST_BOOTSTRAP#,}"
log "killed broker $second (leader of $TOPIC/0); replica order $(echo "$described" | json 'd["partitions"]["0"]["replica_order"]'): broker $expected must take over"
taken="$(py --bootstrap "$REST_BOOTSTRAP" --timeout 30 wait "$TOPIC" --partition 0 --not-leader "$second")" \
    || fail "no new leader of $TOPIC/0 after killing broker $second"
took="$(echo "$taken" | json 'd["leader"]')"
[ "$took" = "$expected" ] || fail "broker $took leads $TOPIC/0, expected $expected (first live ISR member in replica order): $taken"
checked="$(py --bootstrap "$REST_BOOTSTRAP" check "$TOPIC" --acked "$ACKED")" \
    || fail "records lost after the second kill (broker $took leads $TOPIC/0)"
log "broker $took leads $TOPIC/0 and every acknowledged record is readable: $checked"
start_broker "$second"
wait_ready "$second"
py --bootstrap "$BOOTSTRAP" --timeout "$ISR_TIMEOUT_S" wait "$TOPIC" --partition 0 --isr-size 3 --all-partitions >/dev/null \
    || fail "broker $second did not rejoin the ISR of every partition within ${ISR_TIMEOUT_S}s"
log "broker $second restarted and back in every ISR"
if [ "$took" = "$victim" ]; then
    second_note="; then SIGKILL of broker $second: the rejoined broker $victim took over partition 0 with every record"
else
    second_note="; then SIGKILL of broker $second: broker $took took over partition 0 with every record"
fi

# ---------------------------------------------------------------- 8. five brokers, three voters
step "8. brokers 4 and 5 join as non-voters; SIGKILL non-voter 5, then the metadata leader, under load"
for n in 4 5; do make_ns "$n"; write_env "$n"; start_broker "$n"; done
wait_ready 4 5
BOOTSTRAP5="$BOOTSTRAP,$(ip_of 4):$KAFKA_PORT,$(ip_of 5):$KAFKA_PORT"
TOPIC5=netns-five
created="$(py --bootstrap "$BOOTSTRAP5" create-topic "$TOPIC5" --partitions 5 --replication-factor 3 --min-insync 2)" \
    || fail "create $TOPIC5"
echo "$created" | json "all(any(b in p['replicas'] for p in d['partitions'].values()) for b in (4, 5))" | grep -qx True \
    || fail "the non-voters 4 and 5 hold no replica of $TOPIC5: $created"
log "brokers 4 and 5 joined as non-voters and hold replicas: $(echo "$created" | json 'd["partitions"]')"
ACKED5="$WORK/acked5.jsonl"
py --bootstrap "$BOOTSTRAP5" produce "$TOPIC5" --acked "$ACKED5" --count 500 >/dev/null || fail "produce to $TOPIC5"
killed5=""
for target in non-voter leader; do
    if [ "$target" = non-voter ]; then
        victim5=5
    else
        victim5="$(py --bootstrap "$BOOTSTRAP5" describe "$TOPIC5" | json 'd["controller"]')" || fail "describe $TOPIC5"
        case "$victim5" in 1|2|3) ;; *) fail "the metadata leader is not a voter: '$victim5'" ;; esac
    fi
    timeout --kill-after=5 "$CLIENT_TIMEOUT_S" "$PYTHON" "$NETNS_DIR/client.py" --bootstrap "$BOOTSTRAP5" \
        produce "$TOPIC5" --acked "$ACKED5" --start "$(( ${#killed5} * 100000 + 1000000 ))" --duration "$LOAD_S" \
        --rate "$LOAD_RATE" >"$WORK/load5.json" 2>"$WORK/load5.err" &
    load_pid=$!
    sleep "$KILL_AFTER_S"
    kill -KILL "${PID[$victim5]}"; wait "${PID[$victim5]}" 2>/dev/null || true; PID[victim5]=""
    log "killed broker $victim5 ($target) under load"
    wait "$load_pid" || { load_pid=""; fail "steady production through the kill of $victim5: $(cat "$WORK/load5.json" 2>/dev/null) $(grep -v '^%[4-7]|' "$WORK/load5.err" | tail -n 5)"; }
    load_pid=""
    LIVE5=""
    for n in 1 2 3 4 5; do [ "$n" = "$victim5" ] || LIVE5="$LIVE5,$(ip_of "$n"):$KAFKA_PORT"; done
    checked5="$(py --bootstrap "${LIVE5#,}" check "$TOPIC5" --acked "$ACKED5")" || fail "records lost after killing broker $victim5"
    log "steady production $(cat "$WORK/load5.json"); read back from the four live brokers: $checked5"
    start_broker "$victim5"
    wait_ready "$victim5"
    py --bootstrap "$BOOTSTRAP5" --timeout "$ISR_TIMEOUT_S" wait "$TOPIC5" --partition 0 --isr-size 3 --all-partitions >/dev/null \
        || fail "broker $victim5 did not rejoin every ISR of $TOPIC5 within ${ISR_TIMEOUT_S}s"
    log "broker $victim5 restarted and back in every ISR"
    killed5="$killed5 $victim5"
done
acked5="$(echo "$checked5" | json 'd["acknowledged"]')"
five_note="; then 5 brokers with 3 voters: non-voter 5, then metadata leader${killed5# 5} SIGKILLed under load, $acked5 acknowledged records all readable, both back in every ISR"

SUMMARY="SIGKILL of broker $victim (leader of partition 0, $role): new leader served after ${gap_s}s, $acked_total acknowledged records all readable, broker $victim back in every ISR ${isr_s}s after restart$second_note$five_note"
