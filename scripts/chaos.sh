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
# sluice-client --example chaos_producer), CHAOS_SUBNET (default 10.217.0).
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
export SLUICE_BROKER_BIN CHAOS_PRODUCER_BIN

mkdir -p target/chaos
campaign="target/chaos/campaign-$(date -u +%Y%m%dT%H%M%S).jsonl"
status=0
for seed in "${seeds[@]}"; do
    out="$REPO_ROOT/target/chaos/seed-$seed-$(date -u +%Y%m%dT%H%M%S)"
    run_status=0
    .venv/bin/python tests/chaos/run.py --seed "$seed" --minutes "$minutes" --out "$out" || run_status=$?
    if [ -f "$out/summary.json" ]; then
        .venv/bin/python - "$out/summary.json" >>"$campaign" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
keys = ("seed", "minutes", "verdict", "faults_injected", "faults_by_kind", "faults_not_recovered", "acked",
        "failed_deliveries", "lost", "duplicated", "reordered", "inconsistent", "failover_s", "output")
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
