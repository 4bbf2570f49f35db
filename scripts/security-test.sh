#!/usr/bin/env bash
# Security matrix: real clients (confluent-kafka, kcat, kafka-python, Kafka's console tools) against a Sluice broker
# with PLAINTEXT, SASL_SSL, SASL_PLAINTEXT and mTLS listeners (tests/security/).
#
#   1. installs kcat and the Python venv (scripts/install-test-deps.sh, idempotent);
#   2. uses SLUICE_BROKER_BIN and SLUICE_CLI_BIN, or builds them (release broker, debug CLI);
#   3. makes a throwaway CA and certificates with scripts/make-certs.sh;
#   4. runs pytest tests/security/ (the conftest starts and stops the broker).
#
# Usage: bash scripts/security-test.sh [extra pytest args]
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

bash scripts/install-test-deps.sh
# Kafka's console tools (the Java client) are one row of the matrix; idempotent.
bash scripts/kafka.sh install >/dev/null

if [ -z "${SLUICE_BROKER_BIN:-}" ]; then
    cargo build --release -p sluice-broker --bin sluice-broker
    SLUICE_BROKER_BIN="$REPO_ROOT/target/release/sluice-broker"
fi
if [ -z "${SLUICE_CLI_BIN:-}" ]; then
    cargo build -p sluice-cli --bin sluice
    SLUICE_CLI_BIN="$REPO_ROOT/target/debug/sluice"
fi
export SLUICE_BROKER_BIN SLUICE_CLI_BIN

WORK_DIR="$(mktemp -d -t sluice-security.XXXXXX)"
export SLUICE_CERTS="$WORK_DIR/certs"
bash scripts/make-certs.sh "$SLUICE_CERTS" >/dev/null
echo "[security] broker $SLUICE_BROKER_BIN, certificates in $SLUICE_CERTS"

status=0
.venv/bin/python -m pytest tests/security/ -v --basetemp="$WORK_DIR/pytest" "$@" || status=$?
if [ "$status" -eq 0 ]; then
    rm -rf "$WORK_DIR"
else
    echo "[security] FAILED; broker log and certificates kept in $WORK_DIR"
fi
exit "$status"
