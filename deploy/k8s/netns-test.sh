#!/usr/bin/env bash
# The StatefulSet's three pods as real broker processes, without Kubernetes: each in its own
# Linux network namespace (its "pod IP"), started with exactly the environment and arguments
# deploy/k8s/statefulset.yaml gives pod N (resolved by `tests/deploy/k8s -pod-env N`: broker id
# = ordinal, voters and advertised addresses by the headless service's DNS names, listeners on
# 0.0.0.0), those names resolved through per-namespace hosts files (`ip netns exec` mounts
# /etc/netns/<ns>/hosts over /etc/hosts) as the cluster DNS would resolve them.
#
#   1. a bridge (NETNS_SUBNET.1/24, default 10.214.0) and namespaces for pods 0..2
#      (.10, .11, .12) and a client (.20, where sluice.ns-check.svc, the client service,
#      stands for pod 0);
#   2. starts the three pods at once (podManagementPolicy: Parallel); waits for each pod's
#      readiness as the kubelet asks it, GET /ready on the pod IP's admin port (here with
#      `sluice-broker probe ready`), then `sluice cluster health` healthy from the client;
#   3. creates a topic (3 partitions, replication factor 3) and produces keyed records
#      (acks=all) from the client namespace, bootstrapping from the client service;
#   4. a rolling update as the StatefulSet controller does it: pod 2, then 1, then 0, each sent
#      SIGTERM (the controlled shutdown must end within terminationGracePeriodSeconds, else
#      the run fails), started again on its data, ready, and the cluster healthy again (every
#      replica back in its ISR) before the next; more records produced after each;
#   5. reads the topic back: every produced record, no more;
#   6. scales up as `kubectl scale statefulset sluice --replicas 5` would: pods 3 and 4 (their
#      environment from the same template) start, join the metadata group as non-voting
#      members (they are not in SLUICE_VOTERS), get ready; `sluice cluster quorum` must list
#      voters 0-2 and observers 3-4, and a new topic of 10 partitions must place replicas on
#      them and take records.
#
# Everything it creates (namespaces, bridge, /etc/netns/<ns>/, processes, work directory) is
# removed on exit. Needs root and iproute2; prints "K8S NETNS TEST SKIPPED: <why>" and exits 0
# where namespaces cannot be created. Last line: "K8S NETNS TEST PASS ..." or "... FAIL ...".
#
# Environment: SLUICE_BROKER_BIN, SLUICE_CLI_BIN (default target/release, else target/debug;
# the broker must have the `probe` subcommand), NETNS_SUBNET, NETNS_BUDGET_S (default 240).
set -euo pipefail

K8S_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$K8S_DIR/../.." && pwd)"
SUBNET="${NETNS_SUBNET:-10.214.0}"
BUDGET_S="${NETNS_BUDGET_S:-240}"
READY_TIMEOUT_S=90
HEALTHY_TIMEOUT_S=90
PODS=3
SCALED_PODS=5  # step 6
TOPIC=k8s-records
FIRST_RECORDS=300
RECORDS_PER_STEP=100
TAG="$(( $$ % 100000 ))"
BRIDGE="skbr$TAG"
NS_PREFIX="sluice-k8s-$TAG-"
START_S=$(date +%s)
WORK=""
SUMMARY=""
failed_reason=""
skipped=0
created_bridge=0
created_etc_netns=0
declare -a created_ns=()
declare -a PID=()

elapsed() { echo $(( $(date +%s) - START_S )); }
log() { printf '[k8s-netns +%3ss] %s\n' "$(elapsed)" "$*"; }
fail() { failed_reason="$*"; log "FAILED: $*"; exit 1; }
skip() { skipped=1; echo "K8S NETNS TEST SKIPPED: $*"; exit 0; }
step() {
    [ "$(elapsed)" -le "$BUDGET_S" ] || fail "time budget of ${BUDGET_S}s used up before: $*"
    log "== $*"
}

ns_of() { echo "${NS_PREFIX}$1"; }          # pod N, or "client"
ip_of() { echo "$SUBNET.1$1"; }             # pod N's IP
CLIENT_IP="$SUBNET.20"

cleanup() {
    local status=$? n ns
    trap - EXIT INT TERM
    [ "$skipped" = 1 ] && exit 0
    set +e
    for n in "${!PID[@]}"; do
        if [ -n "${PID[$n]}" ] && kill -0 "${PID[$n]}" 2>/dev/null; then
            kill -KILL "${PID[$n]}" 2>/dev/null
            wait "${PID[$n]}" 2>/dev/null
        fi
    done
    for ns in "${created_ns[@]}"; do
        ip netns delete "$ns" 2>/dev/null
        rm -rf "/etc/netns/$ns"
    done
    [ "$created_bridge" = 1 ] && ip link delete "$BRIDGE" 2>/dev/null
    [ "$created_etc_netns" = 1 ] && rmdir /etc/netns 2>/dev/null
    if [ "$status" -ne 0 ] && [ -n "$WORK" ]; then
        for ((n = 0; n < PODS; n++)); do
            [ -s "$WORK/pod-$n/broker.log" ] || continue
            echo "----- last lines of pod $n (full log: $WORK/pod-$n/broker.log)"
            grep -v -e openraft "$WORK/pod-$n/broker.log" | tail -n 8 | cut -c1-300
        done
    fi
    if [ "$status" -eq 0 ]; then
        [ -n "$WORK" ] && rm -rf "$WORK"
        echo "K8S NETNS TEST PASS: statefulset.yaml's 3 pods in network namespaces; $SUMMARY ($(elapsed) s)"
    else
        echo "K8S NETNS TEST FAIL: ${failed_reason:-exit status $status} ($(elapsed) s${WORK:+; logs in $WORK})"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'failed_reason="interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- preflight
[ "$(id -u)" = 0 ] || skip "not root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)"
command -v ip >/dev/null || skip "iproute2 ('ip') is not installed"
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || fail "go is needed to resolve the pods' environment (tests/deploy)"
if ! probe_error="$(ip netns add "${NS_PREFIX}probe" 2>&1)"; then
    skip "'ip netns add' is not permitted here: ${probe_error//$'\n'/ }"
fi
ip netns delete "${NS_PREFIX}probe"
ip -4 addr show | grep -q "inet $SUBNET\." && fail "$SUBNET.0/24 is in use here; set NETNS_SUBNET"

pick() { # pick VAR NAME: $VAR, else target/release/NAME, else target/debug/NAME
    local given="$1" name="$2" candidate
    if [ -n "$given" ]; then echo "$given"; return; fi
    for candidate in "$REPO_ROOT/target/release/$name" "$REPO_ROOT/target/debug/$name"; do
        if [ -x "$candidate" ] && { [ "$name" != sluice-broker ] || "$candidate" probe --help >/dev/null 2>&1; }; then
            echo "$candidate"
            return
        fi
    done
}
BROKER="$(pick "${SLUICE_BROKER_BIN:-}" sluice-broker)"
CLI="$(pick "${SLUICE_CLI_BIN:-}" sluice)"
[ -n "$BROKER" ] || fail "no broker binary with 'probe' (cargo build -p sluice-broker)"
if [ -z "$CLI" ]; then
    log "no sluice CLI binary: cargo build -p sluice-cli --bin sluice"
    (cd "$REPO_ROOT" && cargo build -p sluice-cli --bin sluice) || fail "cargo build of the CLI failed"
    CLI="$REPO_ROOT/target/debug/sluice"
fi
WORK="$(mktemp -d -t sluice-k8s-netns.XXXXXX)"
log "broker $BROKER; cli $CLI; work $WORK"

step "resolving each pod's environment from statefulset.yaml"
for ((n = 0; n < SCALED_PODS; n++)); do
    (cd "$REPO_ROOT/tests/deploy" && GOFLAGS="${GOFLAGS:-} -buildvcs=false" go run ./k8s -pod-env "$n" "$K8S_DIR") >"$WORK/pod-$n.spec" \
        || fail "cannot resolve pod $n's environment"
done
NAMESPACE="$(sed -n 's/^ENV POD_NAMESPACE=//p' "$WORK/pod-0.spec")"
PEERS="$(sed -n 's/^ENV SLUICE_ADVERTISE=sluice-0\.\([^.]*\)\..*/\1/p' "$WORK/pod-0.spec")"
[ -n "$NAMESPACE" ] && [ -n "$PEERS" ] || fail "pod 0's spec names no namespace or headless service"

# ---------------------------------------------------------------- 1. network and DNS
step "1. bridge $BRIDGE ($SUBNET.1/24), pods 0..$((PODS - 1)) and a client"
[ -d /etc/netns ] || created_etc_netns=1
ip link add "$BRIDGE" type bridge
created_bridge=1
ip addr add "$SUBNET.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
hosts="127.0.0.1 localhost"$'\n'
for ((n = 0; n < SCALED_PODS; n++)); do
    hosts+="$(ip_of "$n") sluice-$n.$PEERS.$NAMESPACE.svc"$'\n'
done
hosts+="$(ip_of 0) sluice.$NAMESPACE.svc"$'\n'  # the client service, as one of its endpoints
add_namespace() { # add_namespace NAME ADDRESS INDEX
    local ns; ns="$(ns_of "$1")"
    ip netns add "$ns"
    created_ns+=("$ns")
    mkdir -p "/etc/netns/$ns"
    printf '%s' "$hosts" >"/etc/netns/$ns/hosts"
    ip link add "skh$TAG-$3" type veth peer name "skp$TAG-$3"
    ip link set "skh$TAG-$3" master "$BRIDGE" up
    ip link set "skp$TAG-$3" netns "$ns"
    ip -n "$ns" link set "skp$TAG-$3" name eth0
    ip -n "$ns" addr add "$2/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
}
for ((n = 0; n < PODS; n++)); do add_namespace "$n" "$(ip_of "$n")" "$n"; done
add_namespace client "$CLIENT_IP" c

# ---------------------------------------------------------------- 2. pods
start_pod() { # start_pod N: the pod's spec, its data directory standing for its volume claim
    local n="$1" env=() args=() line
    while IFS= read -r line; do
        case "$line" in
            "ENV SLUICE_DATA_DIR="*) env+=("SLUICE_DATA_DIR=$WORK/pod-$n/data") ;;
            "ENV "*) env+=("${line#ENV }") ;;
            "ARG "*) args+=("${line#ARG }") ;;
        esac
    done <"$WORK/pod-$n.spec"
    mkdir -p "$WORK/pod-$n/data"
    ip netns exec "$(ns_of "$n")" env -i PATH="$PATH" "${env[@]}" "$BROKER" "${args[@]}" \
        >>"$WORK/pod-$n/broker.log" 2>&1 &
    PID[$n]=$!
}
wait_ready() { # wait_ready N: the readiness probe, from the root namespace (the kubelet's place)
    local n="$1" deadline=$(( $(date +%s) + READY_TIMEOUT_S ))
    until "$BROKER" probe ready --addr "$(ip_of "$n"):9644" --timeout-ms 1000 >/dev/null 2>&1; do
        kill -0 "${PID[$n]}" 2>/dev/null || fail "pod $n exited before it was ready"
        [ "$(date +%s)" -lt "$deadline" ] || fail "pod $n not ready within ${READY_TIMEOUT_S}s: $("$BROKER" probe ready --addr "$(ip_of "$n"):9644" 2>&1)"
        sleep 0.5
    done
}
client() { ip netns exec "$(ns_of client)" env -i PATH="$PATH" SLUICE_BOOTSTRAP="sluice.$NAMESPACE.svc:9092" "$CLI" "$@"; }
wait_healthy() {
    timeout "$HEALTHY_TIMEOUT_S" ip netns exec "$(ns_of client)" env -i PATH="$PATH" SLUICE_BOOTSTRAP="sluice.$NAMESPACE.svc:9092" \
        "$CLI" cluster health --watch 1 --exit-when-healthy >"$WORK/health.log" 2>&1 \
        || fail "cluster not healthy within ${HEALTHY_TIMEOUT_S}s: $(tail -n 5 "$WORK/health.log" | tr '\n' ' ')"
}
produced=0
produce() { # produce COUNT: keyed records, acks=all, from the client namespace
    local count="$1" output
    output="$(seq "$((produced + 1))" "$((produced + count))" | sed 's/^/key-&=value-&/' | timeout 60 ip netns exec "$(ns_of client)" \
        env -i PATH="$PATH" SLUICE_BOOTSTRAP="sluice.$NAMESPACE.svc:9092" "$CLI" produce "$TOPIC" -K = --acks all 2>&1)" \
        || fail "produce failed: $output"
    produced=$((produced + count))
}

step "2. pods 0..$((PODS - 1)) started at once (Parallel); readiness, then cluster health"
for ((n = 0; n < PODS; n++)); do start_pod "$n"; done
for ((n = 0; n < PODS; n++)); do wait_ready "$n"; done
wait_healthy
log "$(client cluster status | head -n 6 | tr '\n' ';')"

step "3. topic $TOPIC (3 partitions, RF 3), $FIRST_RECORDS records through the client service"
client topic create "$TOPIC" -p 3 -r 3 >/dev/null || fail "topic create failed"
wait_healthy
produce "$FIRST_RECORDS"

step "4. rolling update: pods $((PODS - 1)) to 0, SIGTERM, restart on the same data, ready and healthy before the next"
GRACE_S="$(sed -n 's/^ *terminationGracePeriodSeconds: *\([0-9]*\)$/\1/p' "$K8S_DIR/statefulset.yaml")"
[ -n "$GRACE_S" ] || fail "no terminationGracePeriodSeconds in statefulset.yaml"
stops=""
for ((n = PODS - 1; n >= 0; n--)); do
    stop_start_ms=$(date +%s%3N)
    kill -TERM "${PID[$n]}"
    deadline=$(( $(date +%s) + GRACE_S ))
    while kill -0 "${PID[$n]}" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "pod $n still running ${GRACE_S}s after SIGTERM (the kubelet would SIGKILL it)"
        sleep 0.05
    done
    wait "${PID[$n]}" && status=0 || status=$?
    [ "$status" = 0 ] || fail "pod $n exited with status $status after SIGTERM"
    stop_ms=$(( $(date +%s%3N) - stop_start_ms ))
    stops+="${stops:+, }pod $n ${stop_ms} ms"
    grep -q "controlled shutdown" "$WORK/pod-$n/broker.log" || fail "pod $n logged no controlled shutdown"
    start_pod "$n"
    wait_ready "$n"
    wait_healthy
    produce "$RECORDS_PER_STEP"
    log "pod $n: stopped in ${stop_ms} ms, back, cluster healthy, $produced records produced so far"
done

step "5. every record read back"
read_back="$(timeout 60 ip netns exec "$(ns_of client)" env -i PATH="$PATH" SLUICE_BOOTSTRAP="sluice.$NAMESPACE.svc:9092" \
    "$CLI" consume "$TOPIC" -e -f key-value 2>"$WORK/consume.err")" || fail "consume failed: $(tail -n 3 "$WORK/consume.err")"
count="$(printf '%s\n' "$read_back" | grep -c '^key-' || true)"
distinct="$(printf '%s\n' "$read_back" | grep '^key-' | sort -u | wc -l)"
[ "$count" = "$produced" ] && [ "$distinct" = "$produced" ] \
    || fail "read $count records ($distinct distinct), produced $produced"
step "6. scale to $SCALED_PODS: pods $PODS..$((SCALED_PODS - 1)) join as non-voting members"
for ((n = PODS; n < SCALED_PODS; n++)); do add_namespace "$n" "$(ip_of "$n")" "$n"; start_pod "$n"; done
for ((n = PODS; n < SCALED_PODS; n++)); do wait_ready "$n"; done
quorum="$(client cluster quorum --json)" || fail "cluster quorum failed"
roles="$(python3 -c 'import json, sys; print(" ".join("%s:%s" % (m["id"], m["role"]) for m in json.loads(sys.argv[1])["members"]))' "$quorum")"
python3 - "$quorum" "$PODS" "$SCALED_PODS" <<'PY' || fail "quorum after scaling is not voters 0..$((PODS - 1)) and observers $PODS..$((SCALED_PODS - 1)): $roles"
import json, sys
q, pods, scaled = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
roles = {m["id"]: m["role"] for m in q["members"]}
assert sorted(i for i, r in roles.items() if r in ("leader", "voter")) == list(range(pods)), roles
assert sorted(i for i, r in roles.items() if r == "observer") == list(range(pods, scaled)), roles
PY
client topic create k8s-scaled -p 10 -r 3 >/dev/null || fail "topic create after scaling failed"
hosts_of="$(client topic describe k8s-scaled --json)" || fail "describe k8s-scaled failed"
python3 - "$hosts_of" "$PODS" "$SCALED_PODS" <<'PY' || fail "no replica of k8s-scaled on the new pods: $hosts_of"
import json, sys
text, pods, scaled = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = json.loads(text)
replicas = {r for p in d["partitions"] for r in p["replicas"]}
assert set(range(pods, scaled)) <= replicas, replicas
PY
wait_healthy
scaled_out="$(seq 1 50 | sed 's/^/scaled-&=v-&/' | timeout 60 ip netns exec "$(ns_of client)" env -i PATH="$PATH" \
    SLUICE_BOOTSTRAP="sluice.$NAMESPACE.svc:9092" "$CLI" produce k8s-scaled -K = --acks all 2>&1)" \
    || fail "produce to k8s-scaled failed: $scaled_out"
log "scaled to $SCALED_PODS: quorum $roles; k8s-scaled has replicas on the new pods and took 50 acks=all records"
SUMMARY="ids = ordinals, voters and clients by DNS name; $produced acks=all records, all read back; rolling update 2,1,0 with SIGTERM: $stops; scaled to $SCALED_PODS, pods $PODS-$((SCALED_PODS - 1)) joined as non-voters ($roles)"
