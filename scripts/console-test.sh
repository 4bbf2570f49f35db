#!/usr/bin/env bash
# Console suite: the web console in Debian's headless Chromium (chromedriver, selenium) against
# one real sluice-broker process, its figures checked against the `sluice` CLI's --json output
# (tests/console/, pytest).
#
#   1. installs chromium, chromium-driver and the Python venv with selenium
#      (scripts/install-test-deps.sh, idempotent);
#   2. builds the release broker and CLI, or uses SLUICE_BROKER_BIN / SLUICE_CLI_BIN if set;
#   3. runs `pytest tests/console/`; a screenshot of every page goes to
#      $SLUICE_CONSOLE_SCREENSHOTS (default target/console-screenshots/), named in the log.
#
# About 30 s: most of it waits for two consumer-lag refreshes (5 s apart) so the lag chart has
# two samples.
#
# Usage: bash scripts/console-test.sh [extra pytest args]
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

bash scripts/install-test-deps.sh >/dev/null

if [ -z "${SLUICE_BROKER_BIN:-}" ]; then
    cargo build --release -p sluice-broker --bin sluice-broker
    SLUICE_BROKER_BIN="$REPO_ROOT/target/release/sluice-broker"
fi
if [ -z "${SLUICE_CLI_BIN:-}" ]; then
    cargo build --release -p sluice-cli --bin sluice
    SLUICE_CLI_BIN="$REPO_ROOT/target/release/sluice"
fi
export SLUICE_BROKER_BIN SLUICE_CLI_BIN
export SLUICE_CONSOLE_SCREENSHOTS="${SLUICE_CONSOLE_SCREENSHOTS:-$REPO_ROOT/target/console-screenshots}"
mkdir -p "$SLUICE_CONSOLE_SCREENSHOTS"
echo "[console] screenshots: $SLUICE_CONSOLE_SCREENSHOTS"

WORK_DIR="$(mktemp -d -t sluice-console.XXXXXX)"
status=0
.venv/bin/python -m pytest tests/console/ -v -s --basetemp "$WORK_DIR" -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 0 ]; then
    rm -rf "$WORK_DIR"
else
    echo "[console] FAILED; broker log and data kept in $WORK_DIR"
fi
exit "$status"
