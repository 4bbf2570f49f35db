#!/usr/bin/env bash
# Compatibility suite: real Kafka clients against a real Sluice broker.
#
#   1. installs kcat and the Python venv (scripts/install-test-deps.sh, idempotent);
#   2. builds the release broker (or uses SLUICE_BROKER_BIN if set);
#   3. picks three free ports on 127.0.0.1 and a temporary data directory;
#   4. runs `pytest tests/compat/` from the venv — the suite's conftest starts the broker on
#      those ports (and restarts it where a test says so) and stops it with SIGTERM at the end;
#   5. removes the data directory (kept, with the broker log, if a test failed).
#
# Usage: bash scripts/compat.sh [extra pytest args]
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

bash scripts/install-test-deps.sh

if [ -z "${SLUICE_BROKER_BIN:-}" ]; then
    cargo build --release -p sluice-broker --bin sluice-broker
    SLUICE_BROKER_BIN="$REPO_ROOT/target/release/sluice-broker"
fi
export SLUICE_BROKER_BIN

free_ports() {
    .venv/bin/python - <<'PY'
import socket
sockets = [socket.socket() for _ in range(3)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))
for s in sockets:
    s.close()
PY
}
read -r SLUICE_KAFKA_PORT SLUICE_RAFT_PORT SLUICE_ADMIN_PORT <<<"$(free_ports)"
export SLUICE_KAFKA_PORT SLUICE_RAFT_PORT SLUICE_ADMIN_PORT

WORK_DIR="$(mktemp -d -t sluice-compat.XXXXXX)"
export SLUICE_DATA_DIR="$WORK_DIR/data"
mkdir -p "$SLUICE_DATA_DIR"
echo "[compat] broker $SLUICE_BROKER_BIN on 127.0.0.1:$SLUICE_KAFKA_PORT, data in $SLUICE_DATA_DIR"

status=0
.venv/bin/python -m pytest tests/compat/ -v "$@" || status=$?
if [ "$status" -eq 0 ]; then
    rm -rf "$WORK_DIR"
else
    echo "[compat] FAILED; broker log and data kept in $WORK_DIR"
fi
exit "$status"
