#!/usr/bin/env bash
# The chaos campaign (issue 12): three real sluice-broker processes, each in its own Linux
# network namespace, under a workload of idempotent acks=all producers (confluent-kafka and
# sluice-client) and a confluent-kafka consumer group, while a nemesis drawn from the seed kills,
# pauses, partitions and slows brokers; then the checker (tests/chaos/, docs/reliability.md).
#
# Usage:
#   scripts/chaos.sh SEED MINUTES        one run; its directory is target/chaos/seed-SEED-<time>/
#   scripts/chaos.sh --ci                the bounded CI slice: seeds 1 2 3, 2 minutes each
#   scripts/chaos.sh --campaign N MIN    seeds 1..N, MIN minutes each (the long campaign)
#
# Each run prints its seed and fault schedule first and a JSON summary last, and writes
# summary.json, the histories (acks-*.jsonl, consumer-*.jsonl) and every broker's log into its
# directory. Several runs also append one line per run to target/chaos/campaign-<time>.jsonl.
# Exit status: 0 every run passed (or namespaces are not permitted here: one "CHAOS SKIPPED"
# line), 1 a check failed, 2 the harness failed.
#
# Needs root (network namespaces), iproute2 (ip, tc) and nftables (nft; both installed with
# apt-get when missing), python3. Installs the Python clients
# (scripts/install-test-deps.sh). Environment: SLUICE_BROKER_BIN (default: cargo build
# --release -p sluice-broker), CHAOS_PRODUCER_BIN (default: cargo build --release -p
# sluice-client --example chaos_producer), SLUICE_CLI_BIN (default target/debug/sluice, built
# if missing), CHAOS_SUBNET (default 10.217.0).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

seeds=()
case "${1:-}" in
    --ci) seeds=(1 2 3); minutes=2 ;;
    --campaign)
        [ $# -eq 3 ] || { usage >&2; exit 2; }
        for ((s = 1; s <= $2; s++)); do seeds+=("$s"); done
        minutes="$3" ;;
    -h|--help) usage; exit 0 ;;
    *)
        [ $# -eq 2 ] || { usage >&2; exit 2; }
        seeds=("$1"); minutes="$2" ;;
esac

if [ "$(id -u)" != 0 ]; then
    echo "CHAOS SKIPPED: not root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    exit 0
fi

bash scripts/install-test-deps.sh >/dev/null
# The network faults are nftables rules (tests/chaos/netns.py); iproute2 and nftables are Debian's.
for tool in ip:iproute2 nft:nftables; do
    if ! command -v "${tool%%:*}" >/dev/null; then
        echo "[chaos] installing ${tool#*:}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null 2>&1; } \
            || { echo "[chaos] could not install ${tool#*:}" >&2; exit 2; }
    fi
done
if [ -z "${SLUICE_BROKER_BIN:-}" ]; then
    cargo build --release -p sluice-broker --bin sluice-broker
    SLUICE_BROKER_BIN="$REPO_ROOT/target/release/sluice-broker"
fi
if [ -z "${CHAOS_PRODUCER_BIN:-}" ]; then
    cargo build --release -p sluice-client --example chaos_producer
    CHAOS_PRODUCER_BIN="$REPO_ROOT/target/release/examples/chaos_producer"
fi
# The `sluice` CLI for the nemesis's voter changes: the test step's debug build is enough.
if [ -z "${SLUICE_CLI_BIN:-}" ]; then
    [ -x "$REPO_ROOT/target/debug/sluice" ] || cargo build -p sluice-cli --bin sluice
    SLUICE_CLI_BIN="$REPO_ROOT/target/debug/sluice"
fi
export SLUICE_BROKER_BIN CHAOS_PRODUCER_BIN SLUICE_CLI_BIN

# cleanup_after OUT: what a run that died without its own cleanup (its Python process aborted)
# left behind: its namespaces and bridge (tag in OUT/netns-tag) and its processes (pid files in
# OUT; a pid is signalled only if its command line is still the one started: a broker's names
# OUT, the sluice-client producer's is chaos_producer; a recycled pid is left alone).
cleanup_after() {
    local out="$1" tag pid_file pid n expected
    for pid_file in "$out"/broker-*/pid "$out"/*.pid; do
        [ -f "$pid_file" ] || continue
        pid="$(cat "$pid_file")"
        case "$pid_file" in */broker-*/pid) expected="$out" ;; *) expected=chaos_producer ;; esac
        if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$expected"; then
            echo "[chaos] cleanup: SIGKILL of leftover process $pid ($pid_file)"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [ -f "$out/netns-tag" ]; then
        tag="$(cat "$out/netns-tag")"
        for n in 1 2 3; do
            ip netns delete "sluice-chaos-$tag-$n" 2>/dev/null && echo "[chaos] cleanup: namespace sluice-chaos-$tag-$n"
        done
        ip link delete "scbr$tag" 2>/dev/null && echo "[chaos] cleanup: bridge scbr$tag"
    fi
    return 0
}

mkdir -p target/chaos
campaign="target/chaos/campaign-$(date -u +%Y%m%dT%H%M%S).jsonl"
status=0
for seed in "${seeds[@]}"; do
    out="$REPO_ROOT/target/chaos/seed-$seed-$(date -u +%Y%m%dT%H%M%S)"
    run_status=0
    .venv/bin/python tests/chaos/run.py --seed "$seed" --minutes "$minutes" --out "$out" || run_status=$?
    cleanup_after "$out"
    if [ "$run_status" -gt 1 ] && [ ! -f "$out/summary.json" ] && [ -f "$out/final-read.jsonl" ]; then
        # The harness died after the final read (e.g. the client library aborted): the
        # histories are complete, so the checks can still give a verdict.
        echo "[chaos] seed $seed: the harness exited with $run_status after the final read; checking its histories"
        recheck_status=0
        .venv/bin/python tests/chaos/run.py --recheck "$out" || recheck_status=$?
        echo "CHAOS $([ "$recheck_status" = 0 ] && echo PASS || echo FAIL) seed $seed (rechecked after the harness exited with $run_status)"
        echo "{\"seed\": $seed, \"minutes\": $minutes, \"verdict\": \"harness exited $run_status after the final read; recheck exit $recheck_status\", \"output\": \"$out\"}" >>"$campaign"
        run_status=$(( recheck_status == 0 ? 0 : 1 ))
    fi
    if [ -f "$out/summary.json" ]; then
        .venv/bin/python - "$out/summary.json" >>"$campaign" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
keys = ("seed", "minutes", "verdict", "faults_injected", "faults_by_kind", "faults_not_recovered", "acked",
        "failed_deliveries", "lost", "duplicated", "duplicated_known_client_anomaly", "reordered", "inconsistent", "failover_s", "output")
print(json.dumps({k: s.get(k) for k in keys}))
EOF
    fi
    [ "$run_status" -gt "$status" ] && status="$run_status"
done
if [ "${#seeds[@]}" -gt 1 ] && [ -s "$campaign" ]; then
    echo "campaign: $campaign"
    cat "$campaign"
fi
exit "$status"
