#!/usr/bin/env bash
# Smoke test of the Docker deployment: a real 3-node cluster from compose.yml, driven by real
# Kafka clients (confluent-kafka and kcat), one broker SIGKILLed and brought back.
#
#   1. builds sluice-broker:local from the existing release binary (build-image.sh) and the
#      test-client image sluice-smoke-clients:local (smoke/build-clients-image.sh);
#   2. `compose up -d` under a unique project name, admin ports on free 127.0.0.1 ports;
#      waits for /ready on all three brokers (curl from the host) and for Docker's healthcheck;
#   3. creates a topic of 3 partitions, replication factor 3, min.insync.replicas 2 (one
#      leader on each broker, every replica in the ISR), produces 1,000 keyed records
#      (idempotent, acks=all), reads them back (every value checked against its key;
#      per-partition counts equal what was acknowledged), again with kcat, and once more as a
#      consumer group (subscribe, commit, committed offsets checked);
#   4. `docker kill` (SIGKILL) the broker that is the metadata Raft leader (and leader of one
#      partition); the two others must elect a new metadata leader and new partition leaders,
#      serve every record acknowledged before the kill, accept acks=all writes to the partition
#      the victim led, and create a new topic (a Raft commit with 2 of 3 voters) placed on
#      them only (the victim is fenced);
#   5. `docker start` the killed broker: it must become ready, know the topic created while it
#      was down, rejoin the ISR of every partition, and the cluster serve every record;
#   6. `compose down -v`, also on failure or interrupt (trap). Every wait has a timeout.
#
# Clients run inside the compose network by default (the brokers advertise sluice-N:9092);
# with --host-clients they run on the host (.venv and /usr/bin/kcat) against the
# compose.host-clients.yml override (brokers advertise 127.0.0.1:<port>).
#
# Usage: deploy/docker/smoke-test.sh [--host-clients] [--no-build] [--keep]
#   --no-build   use the images as they are (sluice-broker:local, sluice-smoke-clients:local)
#   --keep       on failure, leave the cluster running for inspection (prints how to remove it)
# Environment: SLUICE_BROKER_BIN (binary to package), SMOKE_BUDGET_S (whole run, default 600).
# Ends with one line: "SMOKE TEST PASS ..." (exit 0) or "SMOKE TEST FAIL ..." (exit 1).
set -euo pipefail

DOCKER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DOCKER_DIR/../.." && pwd)"

host_clients=0
build=1
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --host-clients) host_clients=1 ;;
        --no-build) build=0 ;;
        --keep) keep=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "smoke-test: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

BUDGET_S="${SMOKE_BUDGET_S:-600}"
READY_TIMEOUT_S=90  # a broker's /ready after (re)start
CLIENT_TIMEOUT_S=60 # one client step
RECORDS=1000
TOPIC=smoke-records
OUTAGE_TOPIC=smoke-during-outage
GROUP=smoke-group
BROKER_IMAGE=sluice-broker:local
CLIENT_IMAGE=sluice-smoke-clients:local
# Letters and digits only: docker-compose v1 strips other characters from project names, v2 does not.
PROJECT="sluicesmoke$$$(date +%s | tail -c 5)"
WORK="$(mktemp -d -t sluice-smoke.XXXXXX)"
START_S=$(date +%s)
current_step="preflight"
failed_reason=""
client_seq=0
COMPOSE=()

elapsed() { echo $(( $(date +%s) - START_S )); }
log() { printf '[smoke +%3ss] %s\n' "$(elapsed)" "$*"; }
fail() { failed_reason="$*"; log "FAILED: $*"; exit 1; }
step() {
    current_step="$*"
    if [ "$(elapsed)" -gt "$BUDGET_S" ]; then
        fail "time budget of ${BUDGET_S}s used up before: $*"
    fi
    log "== $*"
}

# The script's own stdout and stderr: a trap can fire while a step's output is redirected
# to a file, and the summary must still reach the terminal.
exec 3>&1 4>&2
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    exec 1>&3 2>&4
    if [ "$status" -ne 0 ] && [ -z "$failed_reason" ]; then
        failed_reason="step '$current_step' exited with status $status"
    fi
    if [ "$status" -ne 0 ] && [ "${#COMPOSE[@]}" -gt 0 ]; then
        mkdir -p "$WORK/logs"
        for n in 1 2 3; do
            local id
            id="$(container_of "$n" 2>/dev/null)"
            [ -n "$id" ] && docker logs "$id" >"$WORK/logs/sluice-$n.log" 2>&1
        done
        for n in 1 2 3; do
            [ -s "$WORK/logs/sluice-$n.log" ] || continue
            echo "----- last lines of sluice-$n (openraft and per-partition lines left out; full log: $WORK/logs/sluice-$n.log)"
            grep -v -e ' openraft' -e 'partition open' -e 'partition loaded' -e 'partition unloaded' -e 'recovering dir' "$WORK/logs/sluice-$n.log" | tail -n 15 | cut -c1-300
        done
    fi
    if [ "${#COMPOSE[@]}" -eq 0 ]; then # failed before Docker was touched
        echo "SMOKE TEST FAIL at '$current_step': $failed_reason ($(elapsed) s)"
        rm -rf "$WORK"
        exit "$status"
    fi
    local stray # client containers left behind by a timed-out step
    for stray in $(docker ps -aq --filter "label=sluice-smoke=$PROJECT" 2>/dev/null); do
        docker rm -f "$stray" >/dev/null 2>&1
    done
    if [ "$status" -ne 0 ] && [ "$keep" = 1 ]; then
        log "cluster kept: ${COMPOSE[*]} -p $PROJECT ${COMPOSE_FILES[*]} down -v"
    else
        compose down -v --remove-orphans >"$WORK/down.log" 2>&1 || { log "compose down failed:"; cat "$WORK/down.log"; }
    fi
    if [ "$status" -eq 0 ]; then
        rm -rf "$WORK"
        echo "SMOKE TEST PASS: 3-node cluster, RF 3, min.insync.replicas 2, $RECORDS records, SIGKILL of the Raft leader survived ($(elapsed) s)"
    else
        echo "SMOKE TEST FAIL at '$current_step': $failed_reason ($(elapsed) s; logs in $WORK)"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'failed_reason="interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- preflight
command -v docker >/dev/null || fail "docker is not installed"
command -v curl >/dev/null || fail "curl is needed to poll /ready"
command -v timeout >/dev/null || fail "timeout (coreutils) is needed"
if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
else
    fail "neither 'docker compose' nor 'docker-compose' is available"
fi
COMPOSE_FILES=(-f "$DOCKER_DIR/compose.yml")
if [ "$host_clients" = 1 ]; then
    COMPOSE_FILES+=(-f "$DOCKER_DIR/compose.host-clients.yml")
    [ -x "$REPO_ROOT/.venv/bin/python" ] || fail "no .venv: run scripts/install-test-deps.sh"
    command -v kcat >/dev/null || fail "kcat is not installed: run scripts/install-test-deps.sh"
fi
compose() { timeout --kill-after=10 120 "${COMPOSE[@]}" -p "$PROJECT" "${COMPOSE_FILES[@]}" "$@"; }


# ---------------------------------------------------------------- helpers
free_ports() { # N free TCP ports on 127.0.0.1
    python3 - "$1" <<'PY'
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))
PY
}

container_of() { compose ps -q "sluice-$1"; }

ready() { curl -fsS -m 2 "http://127.0.0.1:${ADMIN_PORT[$1]}/ready" >/dev/null 2>&1; }

wait_ready() { # wait_ready NODE...: /ready answers 200 on each, within READY_TIMEOUT_S
    local deadline=$(( $(date +%s) + READY_TIMEOUT_S )) n pending
    while :; do
        pending=""
        for n in "$@"; do ready "$n" || pending="$pending $n"; done
        [ -z "$pending" ] && return 0
        [ "$(date +%s)" -ge "$deadline" ] && fail "brokers$pending not ready within ${READY_TIMEOUT_S}s"
        sleep 0.5
    done
}

wait_healthy() { # wait_healthy NODE...: Docker's healthcheck (sluice-broker probe ready) reports healthy
    local deadline=$(( $(date +%s) + 60 )) n pending status
    while :; do
        pending=""
        for n in "$@"; do
            status="$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$(container_of "$n")")"
            [ "$status" = healthy ] || pending="$pending $n($status)"
        done
        [ -z "$pending" ] && return 0
        [ "$(date +%s)" -ge "$deadline" ] && fail "healthcheck not healthy within 60s:$pending"
        sleep 1
    done
}

bootstrap_of() { # bootstrap_of NODE...: the Kafka addresses clients use for these brokers
    local n out=""
    for n in "$@"; do
        if [ "$host_clients" = 1 ]; then out="$out,127.0.0.1:${KAFKA_PORT[$n]}"; else out="$out,sluice-$n:9092"; fi
    done
    echo "${out#,}"
}

# run_client TIMEOUT_S CMD...: runs a client command (argv inside the client image; with
# --host-clients, on the host: /usr/bin/python3 means the .venv, /usr/bin/kcat the host's)
# with stdin passed through. stderr goes to $WORK/client-N.err, shown if the command fails.
run_client() {
    local limit="$1"; shift
    client_seq=$((client_seq + 1)) # per shell: $(...) runs this in a subshell, hence $BASHPID below
    local err="$WORK/client-$BASHPID-$client_seq.err" status=0
    if [ "$host_clients" = 1 ]; then
        local argv=("$@")
        case "${argv[0]}" in
            /usr/bin/python3) argv[0]="$REPO_ROOT/.venv/bin/python"; argv[1]="$DOCKER_DIR/smoke/client.py" ;;
            /usr/bin/kcat) argv[0]="$(command -v kcat)" ;;
        esac
        timeout --kill-after=5 "$limit" "${argv[@]}" 2>"$err" || status=$?
    else
        local name="$PROJECT-client-$BASHPID-$client_seq"
        timeout --kill-after=5 "$limit" docker run --rm -i --name "$name" --label "sluice-smoke=$PROJECT" \
            --network "$NETWORK" "$CLIENT_IMAGE" "$@" 2>"$err" || status=$?
        [ "$status" -ne 0 ] && docker rm -f "$name" >/dev/null 2>&1
    fi
    if [ "$status" -ne 0 ]; then
        echo "client step failed (status $status): $*" >&2
        grep -v '^%[4-7]|' "$err" | tail -n 20 >&2
    fi
    return "$status"
}

# py TIMEOUT_S ARGS...: client.py against all three brokers; prints its JSON line.
py() {
    local limit="$1"; shift
    run_client "$((limit + 15))" /usr/bin/python3 /smoke/client.py --bootstrap "$BOOTSTRAP" --timeout "$limit" "$@"
}

json() { # json FIELD-EXPRESSION: evaluates a Python expression over `d` (stdin's JSON)
    python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}

# ---------------------------------------------------------------- 1. images
step "1. images"
if [ "$build" = 1 ]; then
    "$DOCKER_DIR/build-image.sh" --tag "$BROKER_IMAGE" 2>&1 | grep -v -e DEPRECATED -e buildx -e '^ *$' || fail "build-image.sh failed"
    if [ "$host_clients" = 0 ]; then
        "$DOCKER_DIR/smoke/build-clients-image.sh" --tag "$CLIENT_IMAGE" 2>&1 | grep -v -e DEPRECATED -e buildx -e '^ *$' \
            || fail "build-clients-image.sh failed"
    fi
fi
docker image inspect "$BROKER_IMAGE" >/dev/null 2>&1 || fail "no image $BROKER_IMAGE"
[ "$host_clients" = 1 ] || docker image inspect "$CLIENT_IMAGE" >/dev/null 2>&1 || fail "no image $CLIENT_IMAGE"

# ---------------------------------------------------------------- 2. cluster up
step "2. compose up (project $PROJECT, ${COMPOSE[*]})"
declare -a ADMIN_PORT KAFKA_PORT
read -r -a ports <<<"$(free_ports 6)"
ADMIN_PORT=("" "${ports[@]:0:3}") # indexed by node id 1..3
KAFKA_PORT=("" "${ports[@]:3:3}")
export SLUICE_IMAGE="$BROKER_IMAGE"
export SLUICE_ADMIN_PORT_1="${ADMIN_PORT[1]}" SLUICE_ADMIN_PORT_2="${ADMIN_PORT[2]}" SLUICE_ADMIN_PORT_3="${ADMIN_PORT[3]}"
export SLUICE_KAFKA_PORT_1="${KAFKA_PORT[1]}" SLUICE_KAFKA_PORT_2="${KAFKA_PORT[2]}" SLUICE_KAFKA_PORT_3="${KAFKA_PORT[3]}"
compose up -d >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; fail "compose up failed"; }
NETWORK="$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" | head -n 1)"
[ -n "$NETWORK" ] || fail "no network of project $PROJECT"
BOOTSTRAP="$(bootstrap_of 1 2 3)"
log "admin ports ${ADMIN_PORT[1]} ${ADMIN_PORT[2]} ${ADMIN_PORT[3]}; clients use $BOOTSTRAP"
wait_ready 1 2 3
log "/ready is 200 on all three brokers"
wait_healthy 1 2 3
log "docker healthcheck: all three healthy"

# ---------------------------------------------------------------- 3. data
step "3. metadata, topic, produce, consume"
metadata="$(py "$CLIENT_TIMEOUT_S" metadata --expect-brokers 3)" || fail "metadata does not list 3 brokers"
brokers="$(echo "$metadata" | json 'sorted(d["brokers"].items())')"
log "brokers: $brokers; controller: $(echo "$metadata" | json 'd["controller"]')"
for n in 1 2 3; do
    advertised="$(echo "$metadata" | json "d['brokers'].get('$n')")"
    [ "$advertised" = "$(bootstrap_of "$n")" ] || fail "broker $n advertises $advertised, expected $(bootstrap_of "$n")"
done

created="$(py "$CLIENT_TIMEOUT_S" create-topic "$TOPIC" --partitions 3 --replication-factor 3 --min-insync-replicas 2)" \
    || fail "create $TOPIC"
leaders="$(echo "$created" | json 'sorted(d["leaders"].values())')"
[ "$leaders" = "[1, 2, 3]" ] || fail "$TOPIC leaders not spread over the brokers: $created"
replicas="$(py "$CLIENT_TIMEOUT_S" wait-replicas "$TOPIC" --full-isr)" || fail "$TOPIC: ISR not full"
log "$TOPIC: leaders $(echo "$created" | json 'd["leaders"]'), replicas and ISR $(echo "$replicas" | json 'd["partitions"]')"

produced="$(py "$CLIENT_TIMEOUT_S" produce "$TOPIC" --count "$RECORDS")" || fail "produce $RECORDS records"
expect="$(echo "$produced" | json 'json.dumps(d["per_partition"])')"
log "produced $RECORDS records, acknowledged per partition: $expect"
consumed="$(py "$CLIENT_TIMEOUT_S" consume "$TOPIC" --expect "$expect" --keys "0:$RECORDS")" || fail "consume $TOPIC"
log "confluent-kafka read back $(echo "$consumed" | json 'd["read"]') records, every value checked"

run_client "$CLIENT_TIMEOUT_S" /usr/bin/kcat -b "$BOOTSTRAP" -C -t "$TOPIC" -o beginning -e -q -f '%p %o %k %s\n' \
    >"$WORK/kcat.out" || fail "kcat consume"
checked="$(run_client 30 /usr/bin/python3 /smoke/client.py --bootstrap "$BOOTSTRAP" check-kcat "$TOPIC" --keys "0:$RECORDS" \
    <"$WORK/kcat.out")" || fail "kcat output check"
log "kcat read back $(echo "$checked" | json 'd["kcat_records"]') records, every value checked"

grouped="$(py "$CLIENT_TIMEOUT_S" group-consume "$TOPIC" --group "$GROUP" --count "$RECORDS")" || fail "consumer group"
log "consumer group $GROUP read $(echo "$grouped" | json 'd["read"]'), committed $(echo "$grouped" | json 'd["committed"]')"

# ---------------------------------------------------------------- 4. kill one broker
step "4. SIGKILL the metadata Raft leader"
metadata="$(py "$CLIENT_TIMEOUT_S" metadata --expect-brokers 3)" || fail "metadata before the kill"
victim="$(echo "$metadata" | json 'd["controller"]')"
case "$victim" in 1|2|3) ;; *) fail "controller is '$victim', not one of 1 2 3" ;; esac
survivors=""
for n in 1 2 3; do [ "$n" = "$victim" ] || survivors="$survivors $n"; done
survivors="${survivors# }"
victim_partition="$(echo "$created" | json "[p for p, b in d['leaders'].items() if b == $victim][0]")"
victim_container="$(container_of "$victim")"
docker kill --signal KILL "$victim_container" >/dev/null || fail "docker kill sluice-$victim"
kill_s=$(date +%s)
log "killed sluice-$victim (Raft leader, leads $TOPIC/$victim_partition); survivors: $survivors"

# shellcheck disable=SC2086
BOOTSTRAP="$(bootstrap_of $survivors)"
after="$(py "$CLIENT_TIMEOUT_S" metadata --expect-brokers 2 --not-controller "$victim")" \
    || fail "no new metadata leader among the survivors"
log "survivors elected broker $(echo "$after" | json 'd["controller"]') as metadata leader"
for n in $survivors; do ready "$n" || fail "sluice-$n not ready with 2 of 3 voters"; done
moved="$(py "$CLIENT_TIMEOUT_S" wait-replicas "$TOPIC" --not-leader "$victim")" \
    || fail "$TOPIC: partitions still led by the killed broker $victim"
log "new partition leaders within $(( $(date +%s) - kill_s ))s of the kill: $(echo "$moved" | json 'd["partitions"]')"

# Replication factor 2: the two live brokers (a factor above the live brokers is refused, as
# in Kafka); min.insync.replicas 2 needs both.
outage="$(py "$CLIENT_TIMEOUT_S" create-topic "$OUTAGE_TOPIC" --partitions 3 --replication-factor 2 --min-insync-replicas 2)" \
    || fail "create $OUTAGE_TOPIC with 2 of 3 voters"
log "created $OUTAGE_TOPIC with 2 of 3 voters: leaders $(echo "$outage" | json 'd["leaders"]')"
outage_replicas="$(py "$CLIENT_TIMEOUT_S" wait-replicas "$OUTAGE_TOPIC" --full-isr)" || fail "$OUTAGE_TOPIC: ISR not full"
echo "$outage_replicas" | json "any($victim in p['replicas'] for p in d['partitions'].values())" | grep -qx False \
    || fail "$OUTAGE_TOPIC has replicas on the killed (fenced) broker $victim: $outage_replicas"
for n in $survivors; do
    BOOTSTRAP="$(bootstrap_of "$n")" py 30 metadata --expect-brokers 2 --expect-topic "$OUTAGE_TOPIC" >/dev/null \
        || fail "sluice-$n does not serve metadata with $OUTAGE_TOPIC"
done
log "each survivor serves metadata including $OUTAGE_TOPIC"

# shellcheck disable=SC2086
BOOTSTRAP="$(bootstrap_of $survivors)"
py "$CLIENT_TIMEOUT_S" consume "$TOPIC" --expect "$expect" --keys "0:$RECORDS" >/dev/null \
    || fail "records of $TOPIC acknowledged before the kill not all readable from the survivors"
log "every record acknowledged before the kill is readable from the survivors, $TOPIC/$victim_partition included"
py "$CLIENT_TIMEOUT_S" produce "$TOPIC" --count 100 --start "$RECORDS" --partition "$victim_partition" >/dev/null \
    || fail "acks=all produce to $TOPIC/$victim_partition (new leader, 2 of 3 in the ISR)"
expect="$(echo "$expect" | json "json.dumps({p: c + (100 if p == '$victim_partition' else 0) for p, c in d.items()})")"
RECORDS=$((RECORDS + 100))
log "$TOPIC/$victim_partition accepts acks=all writes under its new leader: $TOPIC now $expect"
BOOTSTRAP="$(bootstrap_of 1 2 3)"

# ---------------------------------------------------------------- 5. restart it
step "5. docker start sluice-$victim"
docker start "$victim_container" >/dev/null || fail "docker start sluice-$victim"
wait_ready "$victim"
log "sluice-$victim is ready again"
BOOTSTRAP="$(bootstrap_of "$victim")" py "$CLIENT_TIMEOUT_S" metadata --expect-brokers 3 --expect-topic "$OUTAGE_TOPIC" >/dev/null \
    || fail "sluice-$victim does not know $OUTAGE_TOPIC (created while it was down)"
log "sluice-$victim caught up with the metadata (knows $OUTAGE_TOPIC)"
BOOTSTRAP="$(bootstrap_of 1 2 3)"
rejoined="$(py "$CLIENT_TIMEOUT_S" wait-replicas "$TOPIC" --full-isr)" \
    || fail "sluice-$victim did not rejoin the ISR of every partition of $TOPIC"
log "sluice-$victim is back in every ISR of $TOPIC: $(echo "$rejoined" | json 'd["partitions"]')"
py "$CLIENT_TIMEOUT_S" consume "$TOPIC" --expect "$expect" --keys "0:$RECORDS" >/dev/null \
    || fail "$TOPIC after the restart"
log "all $RECORDS records of $TOPIC are served after the restart"
py "$CLIENT_TIMEOUT_S" produce "$TOPIC" --count 100 --start "$RECORDS" --partition "$victim_partition" >/dev/null \
    || fail "produce to $TOPIC/$victim_partition after the restart"
expect_more="$(echo "$expect" | json "json.dumps({p: c + (100 if p == '$victim_partition' else 0) for p, c in d.items()})")"
py "$CLIENT_TIMEOUT_S" consume "$TOPIC" --expect "$expect_more" --keys "0:$((RECORDS + 100))" >/dev/null \
    || fail "$TOPIC after producing to the restarted broker"
log "$TOPIC/$victim_partition accepts writes with all three brokers: $TOPIC now $expect_more"
outage_produced="$(py "$CLIENT_TIMEOUT_S" produce "$OUTAGE_TOPIC" --count 300)" || fail "produce to $OUTAGE_TOPIC"
py "$CLIENT_TIMEOUT_S" consume "$OUTAGE_TOPIC" --expect "$(echo "$outage_produced" | json 'json.dumps(d["per_partition"])')" \
    --keys 0:300 >/dev/null || fail "consume $OUTAGE_TOPIC"
log "$OUTAGE_TOPIC serves all its partitions: $(echo "$outage_produced" | json 'd["per_partition"]')"
wait_healthy 1 2 3

step "6. compose down -v"
