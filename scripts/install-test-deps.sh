#!/usr/bin/env bash
# Installs what Sluice's compatibility tests need on a fresh Debian machine, and nothing twice.
#
#   kcat                      Debian's package (links Debian's librdkafka, 2.0.2 on bookworm)
#   promtool                  Debian's prometheus package (2.42 on bookworm), for `promtool
#                             check metrics` in the broker's metrics test
#   .venv/ (repo root)        a virtualenv with the Python clients and pytest, pinned below;
#                             confluent-kafka's manylinux wheel bundles its own librdkafka;
#                             kafka-python's optional codecs (snappy, lz4, zstd) so it can read
#                             and write every compression; aiokafka (the asyncio client of
#                             scripts/compat-clients.sh) with its codec extras (cramjam)
#   chromium, chromium-driver Debian's headless browser and its WebDriver (chromedriver), for the
#                             web console's browser test (scripts/console-test.sh)
#   selenium                  the WebDriver client (PyPI), in the virtualenv; it is given
#                             Debian's chromedriver and browser paths, so it never downloads one
#   iproute2, nftables        `ip` and `nft` for the network-namespace suites (chaos, netns, k8s)
#   librdkafka-dev            only if confluent-kafka has no wheel for this Python and must be
#                             built from source
#
# Run as root (or with sudo available), from anywhere: `bash scripts/install-test-deps.sh`.
# Safe to run again: each step checks first and skips what is already in place, so a second
# run needs no network. Non-interactive (DEBIAN_FRONTEND=noninteractive, pip --no-input), as CI
# runs it. Prints what it found or installed, with versions, at the end.
set -euo pipefail

# Versions verified to install from PyPI on Debian 12 / CPython 3.11 (x86_64).
CONFLUENT_KAFKA_VERSION="2.16.1"
KAFKA_PYTHON_VERSION="3.0.12"
PYTEST_VERSION="9.2.0"
# kafka-python's codecs: python-snappy (brings cramjam), lz4, zstandard. All binary wheels.
PYTHON_SNAPPY_VERSION="0.7.3"
LZ4_VERSION="4.4.5"
ZSTANDARD_VERSION="0.25.0"
# The console's browser test (tests/console/).
# The asyncio client of scripts/compat-clients.sh (tests/aiokafka-compat/); its extras
# snappy, lz4, zstd bring cramjam, which python-snappy also brings.
AIOKAFKA_VERSION="0.14.0"
SELENIUM_VERSION="4.38.0"  # 4.52 requires certifi>=2026.10.23, which PyPI did not serve when pinned

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO_ROOT}/.venv"
PYTHON="${PYTHON:-python3}"
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

log() { printf '[install-test-deps] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        log "need root (or sudo) to run: $*"
        exit 1
    fi
}

APT_UPDATED=0
apt_install() {
    # Update the package lists once per run, and only when something is to be installed whose
    # candidate the current lists do not know.
    # (Outputs are captured before matching: `cmd | grep -q` fails under pipefail when grep
    # exits early and cmd gets SIGPIPE.)
    local missing_candidate=0 package policy
    for package in "$@"; do
        policy="$(apt-cache policy "$package" 2>/dev/null || true)"
        if [[ "$policy" != *"Candidate: "[0-9]* ]]; then
            missing_candidate=1
        fi
    done
    if [ "$missing_candidate" -eq 1 ] && [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

is_installed_deb() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

# 1. kcat ------------------------------------------------------------------------------------
if command -v kcat >/dev/null 2>&1; then
    log "kcat already installed"
else
    apt_install kcat
fi

# 1b. promtool (Debian's prometheus package): the metrics test lints /metrics with it -------
if command -v promtool >/dev/null 2>&1; then
    log "promtool already installed"
else
    apt_install prometheus
fi

# 1c. Chromium and chromedriver (Debian's): the console's browser test drives them ------------
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    log "chromium and chromedriver already installed"
else
    apt_install chromium chromium-driver
fi

# 1d. iproute2 and nftables: the network-namespace suites (chaos, netns, k8s) build their
# clusters and faults with `ip` and `nft`. Installed here, once, so that suites running side by
# side (.ci/run) never race for dpkg's lock installing them.
if command -v ip >/dev/null 2>&1 && command -v nft >/dev/null 2>&1; then
    log "iproute2 and nftables already installed"
else
    apt_install iproute2 nftables
fi

# 2. The virtualenv --------------------------------------------------------------------------
if [ ! -x "${VENV}/bin/python" ]; then
    if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3-venv
        PYTHON=/usr/bin/python3
    fi
    log "creating ${VENV} with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
else
    log "virtualenv ${VENV} already exists"
fi

# Are the pinned versions already installed? (No network needed to find out.)
pins_satisfied() {
    "${VENV}/bin/python" - "$CONFLUENT_KAFKA_VERSION" "$KAFKA_PYTHON_VERSION" "$PYTEST_VERSION" \
        "$PYTHON_SNAPPY_VERSION" "$LZ4_VERSION" "$ZSTANDARD_VERSION" "$SELENIUM_VERSION" "$AIOKAFKA_VERSION" <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
names = ["confluent-kafka", "kafka-python", "pytest", "python-snappy", "lz4", "zstandard", "selenium",
         "aiokafka"]
wanted = dict(zip(names, sys.argv[1:]))
try:
    sys.exit(0 if all(version(name) == v for name, v in wanted.items()) else 1)
except PackageNotFoundError:
    sys.exit(1)
EOF
}

if pins_satisfied; then
    log "python packages already at the pinned versions"
else
    pip_install() {
        "${VENV}/bin/python" -m pip install -q "$@" \
            "kafka-python==${KAFKA_PYTHON_VERSION}" "pytest==${PYTEST_VERSION}" \
            "python-snappy==${PYTHON_SNAPPY_VERSION}" "lz4==${LZ4_VERSION}" "zstandard==${ZSTANDARD_VERSION}" \
            "selenium==${SELENIUM_VERSION}" "aiokafka[snappy,lz4,zstd]==${AIOKAFKA_VERSION}"
    }
    # Prefer the wheel (it bundles librdkafka); build from source against Debian's librdkafka
    # only when no wheel fits this interpreter.
    if ! pip_install --only-binary confluent-kafka "confluent-kafka==${CONFLUENT_KAFKA_VERSION}"; then
        log "no confluent-kafka wheel for this Python: building against librdkafka-dev"
        is_installed_deb librdkafka-dev || apt_install librdkafka-dev build-essential
        pip_install "confluent-kafka==${CONFLUENT_KAFKA_VERSION}"
    fi
    pins_satisfied || { log "pinned versions did not install"; exit 1; }
fi

# 3. Report ----------------------------------------------------------------------------------
kcat_report="$(kcat -V 2>&1 || true)"
kcat_version="$(sed -n 's/^Version \([^ ]*\).*/\1/p' <<<"$kcat_report")"
kcat_librdkafka="$(sed -n 's/.*librdkafka \([0-9][^ ]*\).*/\1/p' <<<"$kcat_report")"
log "kcat:            ${kcat_version:-unknown} ($(command -v kcat))"
log "kcat librdkafka: ${kcat_librdkafka:-unknown} (Debian's shared library)"
log "chromium:        $(chromium --version 2>/dev/null || echo unknown)"
log "chromedriver:    $(chromedriver --version 2>/dev/null || echo unknown)"
"${VENV}/bin/python" - <<'EOF'
import aiokafka, aiokafka.codec, confluent_kafka, kafka, kafka.codec, pytest, selenium, sys
print(f"[install-test-deps] python:          {sys.version.split()[0]} ({sys.executable})")
print(f"[install-test-deps] confluent-kafka: {confluent_kafka.__version__}, "
      f"bundled librdkafka {confluent_kafka.libversion()[0]}")
codecs = [name for name in ("gzip", "snappy", "lz4", "zstd") if getattr(kafka.codec, f"has_{name}")()]
print(f"[install-test-deps] kafka-python:    {kafka.__version__} (codecs: {', '.join(codecs)})")
aio_codecs = [name for name in ("gzip", "snappy", "lz4", "zstd") if getattr(aiokafka.codec, f"has_{name}")()]
print(f"[install-test-deps] aiokafka:        {aiokafka.__version__} (codecs: {', '.join(aio_codecs)})")
print(f"[install-test-deps] pytest:          {pytest.__version__}")
print(f"[install-test-deps] selenium:        {selenium.__version__}")
EOF
