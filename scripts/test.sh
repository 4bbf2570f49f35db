#!/usr/bin/env bash
# The project's test command (README quick start): installs the real Kafka clients some tests
# drive (kcat, and a .venv with confluent-kafka / kafka-python — see install-test-deps.sh; a
# second run installs nothing), then runs every Rust test in the workspace.
#
# With cargo-nextest installed, the doc tests run first with `cargo test --doc` (nextest does
# not run them), then every other test under nextest: each in its own process, a hung test
# ended after 5 minutes; profile `ci` when CI=true adds one retry and reports a test that
# passed only on retry as FLAKY (see .config/nextest.toml). Without it, `cargo test
# --workspace`. Extra arguments go to `cargo test` instead, e.g.
# `scripts/test.sh -p sluice-log`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
if [ "$#" -gt 0 ]; then
    exec cargo test "$@"
fi
if cargo nextest --version >/dev/null 2>&1; then
    profile=default
    if [ "${CI:-}" = "true" ]; then
        profile=ci
    fi
    cargo test --workspace --doc
    exec cargo nextest run --workspace --profile "$profile"
fi
exec cargo test --workspace
