#!/usr/bin/env bash
# The project's test command (README quick start): installs the real Kafka clients some tests
# drive (kcat, and a .venv with confluent-kafka / kafka-python — see install-test-deps.sh; a
# second run installs nothing), then runs every Rust test in the workspace. Extra arguments go
# to `cargo test`, e.g. `scripts/test.sh -p sluice-log`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
if [ "$#" -eq 0 ]; then
    set -- --workspace
fi
exec cargo test "$@"
