#!/usr/bin/env bash
# Compatibility suite, Go (franz-go: kgo, kadm; Sarama), Node.js (kafkajs) and Python (aiokafka)
# clients, against Apache Kafka and Sluice in one run: Apache Kafka is the oracle, as in
# scripts/compat-java.sh.
#
#   1. installs the clients: Go modules of tests/go/ (go.sum pinned; Go from PATH or
#      /usr/local/go/bin) compiled once, npm packages of tests/node/ (`npm ci`, package-lock.json
#      pinned), and Apache Kafka (scripts/kafka.sh install, cached); aiokafka comes pinned in
#      the virtualenv of scripts/install-test-deps.sh (.venv/);
#   2. starts Apache Kafka (single-node KRaft, free ports), runs the Go tests (`go test -json`,
#      COMPAT_BOOTSTRAP: tests/go/ is franz-go, tests/go/sarama/ is Sarama), the Node.js tests
#      (`node --test`, JUnit report) and the Python tests (tests/aiokafka-compat/, pytest, JUnit
#      report) against it into docs/compat-results/clients-kafka.tsv, stops it;
#   3. the same against a Sluice broker (SLUICE_BROKER_BIN, or a release build) on free ports
#      and a new data directory: docs/compat-results/clients-sluice.tsv;
#   4. scripts/compat-matrix.py judges every results file (these and compat-java.sh's) against
#      tests/known-sluice-gaps.tsv, rewrites docs/compatibility.md and sets the exit status: 0
#      when every test passes on Kafka and passes on Sluice or is a listed known Sluice gap.
#
# Targets run one after the other (the machine has 2 cores); Go and npm run under `nice -n 19`.
# Broker logs and the raw test output are kept in the work directory named at the end when a
# test failed.
#
# Usage: bash scripts/compat-clients.sh
# Environment: SLUICE_BROKER_BIN (default: cargo build --release), COMPAT_RESULTS_DIR (default
# docs/compat-results), COMPAT_MATRIX (default docs/compatibility.md).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
RESULTS_DIR="${COMPAT_RESULTS_DIR:-$REPO_ROOT/docs/compat-results}"
MATRIX="${COMPAT_MATRIX:-$REPO_ROOT/docs/compatibility.md}"
GAPS="$REPO_ROOT/tests/known-sluice-gaps.tsv"
# How long a new Sluice broker may take to answer /ready.
SLUICE_READY_TIMEOUT_S=60
# How long Sluice may take to stop after SIGTERM before the run fails.
SLUICE_STOP_TIMEOUT_S=30
# Kafka's group.initial.rebalance.delay.ms, the same on both brokers (scripts/kafka.sh sets it
# for Kafka).
GROUP_INITIAL_REBALANCE_DELAY_MS=500
# Upper bound for one whole suite against one broker (each test also has its own 90 s bound).
SUITE_TIMEOUT_S=300

started=$SECONDS
log() { echo "[compat-clients t+$(( SECONDS - started ))s] $*"; }

if [ -z "${SLUICE_BROKER_BIN:-}" ]; then
    cargo build --release -p sluice-broker --bin sluice-broker
    SLUICE_BROKER_BIN="$REPO_ROOT/target/release/sluice-broker"
fi
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null || { echo "[compat-clients] go not found (PATH, /usr/local/go/bin): install Go 1.26+ (tests/go/go.mod)" >&2; exit 1; }
command -v npm >/dev/null || { echo "[compat-clients] npm not found: install Node.js 20+ (apt-get install nodejs npm)" >&2; exit 1; }
VENV_PYTHON="$REPO_ROOT/.venv/bin/python"
"$VENV_PYTHON" -c 'import aiokafka, pytest' 2>/dev/null || { echo "[compat-clients] aiokafka or pytest missing from .venv: run scripts/install-test-deps.sh" >&2; exit 1; }

WORK_DIR="$(mktemp -d -t sluice-compat-clients.XXXXXX)"
SLUICE_PID=""
cleanup() {
    bash scripts/kafka.sh stop "$WORK_DIR/kafka" || true
    if [ -n "$SLUICE_PID" ] && kill -0 "$SLUICE_PID" 2>/dev/null; then
        kill -TERM "$SLUICE_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

log "installing the clients (Go modules, npm packages) and Apache Kafka"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)"
FRANZ_VERSION="$(awk '$1 == "github.com/twmb/franz-go" { print $2 }' tests/go/go.mod)"
KADM_VERSION="$(awk '$1 == "github.com/twmb/franz-go/pkg/kadm" { print $2 }' tests/go/go.mod)"
SARAMA_VERSION="$(awk '$1 == "github.com/IBM/sarama" { print $2 }' tests/go/go.mod)"
# The Kafka protocol level the Sarama tests configure (sarama.Config.Version), as it is named in
# tests/go/sarama/sarama_test.go.
SARAMA_PROTOCOL="$(sed -n 's/^var kafkaVersion = sarama\.V\([0-9_]*\)$/\1/p' tests/go/sarama/sarama_test.go | tr _ .)"
AIOKAFKA_VERSION="$("$VENV_PYTHON" -c 'import aiokafka; print(aiokafka.__version__)')"
KAFKAJS_VERSION="$(python3 -c 'import json; print(json.load(open("tests/node/package.json"))["dependencies"]["kafkajs"])')"
(cd tests/go && nice -n 19 go mod download && nice -n 19 go test -c -o "$WORK_DIR/compat-go.test" . \
    && nice -n 19 go test -c -o "$WORK_DIR/compat-sarama.test" ./sarama)
(cd tests/node && nice -n 19 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
bash scripts/kafka.sh install >/dev/null

free_ports() {
    python3 - <<'PY'
import socket
sockets = [socket.socket() for _ in range(3)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))
for s in sockets:
    s.close()
PY
}

start_sluice() {
    local kafka_port raft_port admin_port
    read -r kafka_port raft_port admin_port <<<"$(free_ports)"
    mkdir -p "$WORK_DIR/sluice/data"
    "$SLUICE_BROKER_BIN" --data-dir "$WORK_DIR/sluice/data" \
        --listen "127.0.0.1:$kafka_port" --raft-listen "127.0.0.1:$raft_port" \
        --admin-listen "127.0.0.1:$admin_port" \
        --group-initial-rebalance-delay-ms "$GROUP_INITIAL_REBALANCE_DELAY_MS" \
        >"$WORK_DIR/sluice/broker.log" 2>&1 &
    SLUICE_PID=$!
    local deadline=$(( SECONDS + SLUICE_READY_TIMEOUT_S ))
    until curl -sf "http://127.0.0.1:$admin_port/ready" >/dev/null; do
        kill -0 "$SLUICE_PID" 2>/dev/null || { echo "[compat-clients] Sluice exited; see $WORK_DIR/sluice/broker.log" >&2; exit 1; }
        [ "$SECONDS" -lt "$deadline" ] || { echo "[compat-clients] Sluice not ready in ${SLUICE_READY_TIMEOUT_S}s" >&2; exit 1; }
        sleep 0.2
    done
    SLUICE_BOOTSTRAP="127.0.0.1:$kafka_port"
}

stop_sluice() {
    kill -TERM "$SLUICE_PID"
    local deadline=$(( SECONDS + SLUICE_STOP_TIMEOUT_S ))
    while kill -0 "$SLUICE_PID" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "[compat-clients] Sluice did not stop in ${SLUICE_STOP_TIMEOUT_S}s" >&2; exit 1; }
        sleep 0.2
    done
    wait "$SLUICE_PID" || { echo "[compat-clients] Sluice exited with $? on SIGTERM; see $WORK_DIR/sluice/broker.log" >&2; exit 1; }
    SLUICE_PID=""
}

# run_suites TARGET BOOTSTRAP BROKER-DESCRIPTION: the Go tests (franz-go, then Sarama), the
# Node.js tests, then the Python tests, into RESULTS_DIR/clients-TARGET.tsv. A test failure is a
# row, not an error of this script.
run_suites() {
    local target="$1" bootstrap="$2" broker="$3" results="$RESULTS_DIR/clients-$1.tsv"
    mkdir -p "$RESULTS_DIR"
    {
        echo "# target=$target"
        echo "# broker=$broker"
        echo "# go-client=franz-go $FRANZ_VERSION (kgo; kadm $KADM_VERSION) and Sarama $SARAMA_VERSION (protocol of Kafka $SARAMA_PROTOCOL), $(go env GOVERSION)"
        echo "# node-client=kafkajs $KAFKAJS_VERSION, Node.js $(node --version)"
        echo "# python-client=aiokafka $AIOKAFKA_VERSION, Python $("$VENV_PYTHON" -c 'import platform; print(platform.python_version())')"
        echo "# date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } >"$results"
    log "$target: Go tests (franz-go) against $bootstrap"
    (cd tests/go && COMPAT_BOOTSTRAP="$bootstrap" nice -n 19 timeout "$SUITE_TIMEOUT_S" \
        go test -json -count=1 -timeout "${SUITE_TIMEOUT_S}s" .) >"$WORK_DIR/go-$target.json" 2>&1 || true
    python3 scripts/compat-matrix.py gotest franz-go <"$WORK_DIR/go-$target.json" >>"$results"
    log "$target: Go tests (Sarama) against $bootstrap"
    (cd tests/go && COMPAT_BOOTSTRAP="$bootstrap" nice -n 19 timeout "$SUITE_TIMEOUT_S" \
        go test -json -count=1 -timeout "${SUITE_TIMEOUT_S}s" ./sarama) >"$WORK_DIR/sarama-$target.json" 2>&1 || true
    python3 scripts/compat-matrix.py gotest sarama <"$WORK_DIR/sarama-$target.json" >>"$results"
    log "$target: Node.js tests (kafkajs) against $bootstrap"
    (cd tests/node && COMPAT_BOOTSTRAP="$bootstrap" nice -n 19 timeout "$SUITE_TIMEOUT_S" \
        node --test --test-concurrency=1 --test-reporter=junit --test-reporter-destination="$WORK_DIR/node-$target.xml" \
        compat.test.js) >"$WORK_DIR/node-$target.log" 2>&1 || true
    python3 scripts/compat-matrix.py junit "$WORK_DIR/node-$target.xml" kafkajs >>"$results"
    log "$target: Python tests (aiokafka) against $bootstrap"
    COMPAT_BOOTSTRAP="$bootstrap" nice -n 19 timeout "$SUITE_TIMEOUT_S" \
        "$VENV_PYTHON" -m pytest tests/aiokafka-compat -p no:cacheprovider -q \
        --junitxml="$WORK_DIR/aiokafka-$target.xml" >"$WORK_DIR/aiokafka-$target.log" 2>&1 || true
    python3 scripts/compat-matrix.py junit "$WORK_DIR/aiokafka-$target.xml" aiokafka >>"$results"
    awk -F'\t' -v t="$target" '!/^#/ { n[$1 " " $3]++ } END { for (k in n) print "[compat-clients] " t ": " k " " n[k] }' "$results" | sort
}

log "starting Apache Kafka $KAFKA_VERSION"
KAFKA_BOOTSTRAP="$(bash scripts/kafka.sh start "$WORK_DIR/kafka")"
run_suites kafka "$KAFKA_BOOTSTRAP" "Apache Kafka $KAFKA_VERSION (kafka_2.13, KRaft, one node)"
bash scripts/kafka.sh stop "$WORK_DIR/kafka"

SLUICE_VERSION="$("$SLUICE_BROKER_BIN" --version) ($(git rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
log "starting $SLUICE_VERSION"
start_sluice
run_suites sluice "$SLUICE_BOOTSTRAP" "$SLUICE_VERSION, one node"
stop_sluice

status=0
python3 scripts/compat-matrix.py render --label=compat-clients "$RESULTS_DIR" "$GAPS" "$MATRIX" tests/known-differences.md || status=$?
log "done"
if [ "$status" -eq 0 ]; then
    rm -rf "$WORK_DIR"
else
    echo "[compat-clients] FAILED; broker logs and raw test output kept in $WORK_DIR"
fi
exit "$status"
