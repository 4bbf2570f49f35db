#!/usr/bin/env bash
# Cluster suite: replication under real faults — three real sluice-broker processes on
# 127.0.0.1 (each a metadata voter), SIGKILL / SIGSTOP / SIGTERM, driven by confluent-kafka
# (tests/cluster/, pytest).
#
#   1. installs the Python venv (scripts/install-test-deps.sh, idempotent);
#   2. builds the release broker (or uses SLUICE_BROKER_BIN if set);
#   3. runs `pytest tests/cluster/`: each test starts its own cluster on free ports under a
#      temporary directory (kept, with every broker's log, when a test fails);
#   4. measured figures (failover gaps, counts) are appended as JSON lines to
#      $SLUICE_CLUSTER_REPORT (default target/cluster-report.jsonl).
#
# Usage: bash scripts/cluster-test.sh [extra pytest args, e.g. -k rolling]
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

bash scripts/install-test-deps.sh >/dev/null

if [ -z "${SLUICE_BROKER_BIN:-}" ]; then
    cargo build --release -p sluice-broker --bin sluice-broker
    SLUICE_BROKER_BIN="$REPO_ROOT/target/release/sluice-broker"
fi
export SLUICE_BROKER_BIN
# The `sluice` CLI the membership test drives (scripts/test.sh has built it; a debug build is
# enough, it only sends admin requests).
if [ -z "${SLUICE_CLI_BIN:-}" ]; then
    [ -x "$REPO_ROOT/target/debug/sluice" ] || cargo build -p sluice-cli --bin sluice
    SLUICE_CLI_BIN="$REPO_ROOT/target/debug/sluice"
fi
export SLUICE_CLI_BIN
export SLUICE_CLUSTER_REPORT="${SLUICE_CLUSTER_REPORT:-$REPO_ROOT/target/cluster-report.jsonl}"
mkdir -p "$(dirname "$SLUICE_CLUSTER_REPORT")"

WORK_DIR="$(mktemp -d -t sluice-cluster.XXXXXX)"
status=0
.venv/bin/python -m pytest tests/cluster/ -v -s --basetemp "$WORK_DIR" -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 0 ]; then
    rm -rf "$WORK_DIR"
else
    echo "[cluster] FAILED; broker logs and data kept in $WORK_DIR"
fi
exit "$status"
