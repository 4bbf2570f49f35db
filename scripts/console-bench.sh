#!/usr/bin/env bash
# Console render-time benchmark (not part of CI): one release broker, a topic of 1,000
# partitions (CONSOLE_BENCH_PARTITIONS) and a group committed on all of them, then 20 GETs
# (CONSOLE_BENCH_REQUESTS) of every console page; prints p50 and max per page as the Markdown
# table docs/benchmarks.md keeps. Target: every page under 200 ms.
#
# Usage: bash scripts/console-bench.sh          (SLUICE_BROKER_BIN to use a built broker)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

bash scripts/install-test-deps.sh >/dev/null
if [ -z "${SLUICE_BROKER_BIN:-}" ]; then
    cargo build --release -p sluice-broker --bin sluice-broker
    SLUICE_BROKER_BIN="$REPO_ROOT/target/release/sluice-broker"
fi
export SLUICE_BROKER_BIN
exec .venv/bin/python tests/console/bench_console.py
