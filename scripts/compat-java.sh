#!/usr/bin/env bash
# Compatibility suite, Java client and Kafka's own tools, against Apache Kafka and Sluice in one
# run: Apache Kafka is the oracle.
#
#   1. installs Apache Kafka 4.x from Maven Central (scripts/kafka.sh install, cached) and
#      compiles the JUnit suite tests/java/ (Maven; dependencies cached in ~/.m2);
#   2. starts Apache Kafka (single-node KRaft, free ports), runs the Java suite
#      (`mvn test -Dbootstrap=... -Dtarget=kafka`: client, admin, Kafka Streams) and the tools
#      scenarios (tests/tools/kafka-tools.sh: Kafka's tools and connect-standalone) against it,
#      writes docs/compat-results/kafka.tsv, stops it;
#   3. the same against a Sluice broker (SLUICE_BROKER_BIN, or a release build) on free ports
#      and a new data directory: docs/compat-results/sluice.tsv;
#   4. scripts/compat-matrix.py judges both results files against tests/known-sluice-gaps.tsv,
#      and the differential admin test's answers (AdminDiffTest, recorded per target into
#      docs/compat-results/admin/TARGET/) against tests/known-admin-differences.tsv
#      (scripts/admin_diff.py), writes docs/compatibility.md (with tests/known-differences.md)
#      and sets the exit status: 0 when every test passes on Kafka and passes on Sluice or is a
#      listed known Sluice gap, and every difference in the admin answers is a listed one.
#
# The targets run one after the other, not side by side: the machine has 2 cores. Logs of both
# brokers and Maven's output are kept in the work directory named at the end when a test failed.
#
# Usage: bash scripts/compat-java.sh
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
# for Kafka): new groups wait this long for more members.
GROUP_INITIAL_REBALANCE_DELAY_MS=500

started=$SECONDS
log() { echo "[compat-java t+$(( SECONDS - started ))s] $*"; }

if [ -z "${SLUICE_BROKER_BIN:-}" ]; then
    cargo build --release -p sluice-broker --bin sluice-broker
    SLUICE_BROKER_BIN="$REPO_ROOT/target/release/sluice-broker"
fi
command -v mvn >/dev/null || { echo "[compat-java] mvn not found: install Maven (apt-get install maven)" >&2; exit 1; }

WORK_DIR="$(mktemp -d -t sluice-compat-java.XXXXXX)"
SLUICE_PID=""
cleanup() {
    bash scripts/kafka.sh stop "$WORK_DIR/kafka" || true
    if [ -n "$SLUICE_PID" ] && kill -0 "$SLUICE_PID" 2>/dev/null; then
        kill -TERM "$SLUICE_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

log "installing Apache Kafka and compiling tests/java"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)"
CLIENT_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' tests/java/pom.xml)"
bash scripts/kafka.sh install >/dev/null
(cd tests/java && mvn -q -B test-compile)

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
        kill -0 "$SLUICE_PID" 2>/dev/null || { echo "[compat-java] Sluice exited; see $WORK_DIR/sluice/broker.log" >&2; exit 1; }
        [ "$SECONDS" -lt "$deadline" ] || { echo "[compat-java] Sluice not ready in ${SLUICE_READY_TIMEOUT_S}s" >&2; exit 1; }
        sleep 0.2
    done
    SLUICE_BOOTSTRAP="127.0.0.1:$kafka_port"
}

stop_sluice() {
    kill -TERM "$SLUICE_PID"
    local deadline=$(( SECONDS + SLUICE_STOP_TIMEOUT_S ))
    while kill -0 "$SLUICE_PID" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "[compat-java] Sluice did not stop in ${SLUICE_STOP_TIMEOUT_S}s" >&2; exit 1; }
        sleep 0.2
    done
    wait "$SLUICE_PID" || { echo "[compat-java] Sluice exited with $? on SIGTERM; see $WORK_DIR/sluice/broker.log" >&2; exit 1; }
    SLUICE_PID=""
}

# run_suite TARGET BOOTSTRAP BROKER-DESCRIPTION: the Java suite, then the tools, into
# RESULTS_DIR/TARGET.tsv.
run_suite() {
    local target="$1" bootstrap="$2" broker="$3" results="$RESULTS_DIR/$1.tsv"
    mkdir -p "$RESULTS_DIR"
    {
        echo "# target=$target"
        echo "# broker=$broker"
        echo "# client=kafka-clients $CLIENT_VERSION"
        echo "# tools=Apache Kafka $KAFKA_VERSION tools (scripts/kafka.sh tool)"
        echo "# date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } >"$results"
    log "$target: Java suite against $bootstrap"
    rm -rf tests/java/target/surefire-reports "$RESULTS_DIR/admin/$target"
    (cd tests/java && mvn -B test -Dbootstrap="$bootstrap" -Dtarget="$target" \
        -DadminAnswers="$RESULTS_DIR/admin/$target") >"$WORK_DIR/mvn-$target.log" 2>&1 || {
        tail -40 "$WORK_DIR/mvn-$target.log"
        echo "[compat-java] Maven failed on $target (not a test failure: those are ignored here); log: $WORK_DIR/mvn-$target.log" >&2
        exit 1
    }
    grep -E '^\[(INFO|ERROR|WARNING)\] (Tests run:|[A-Za-z]+Test\.)' "$WORK_DIR/mvn-$target.log" | cut -c1-300 || true
    python3 scripts/compat-matrix.py junit tests/java/target/surefire-reports >>"$results"
    mkdir -p "$WORK_DIR/reports-$target"
    cp tests/java/target/surefire-reports/*.xml "$WORK_DIR/reports-$target/"
    log "$target: Kafka tools against $bootstrap"
    bash tests/tools/kafka-tools.sh "$target" "$bootstrap" "$results"
}

log "starting Apache Kafka $KAFKA_VERSION"
KAFKA_BOOTSTRAP="$(bash scripts/kafka.sh start "$WORK_DIR/kafka")"
run_suite kafka "$KAFKA_BOOTSTRAP" "Apache Kafka $KAFKA_VERSION (kafka_2.13, KRaft, one node)"
bash scripts/kafka.sh stop "$WORK_DIR/kafka"

SLUICE_VERSION="$("$SLUICE_BROKER_BIN" --version) ($(git rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
log "starting $SLUICE_VERSION"
start_sluice
run_suite sluice "$SLUICE_BOOTSTRAP" "$SLUICE_VERSION, one node"
stop_sluice

status=0
python3 scripts/compat-matrix.py render "$RESULTS_DIR" "$GAPS" "$MATRIX" tests/known-differences.md || status=$?
log "done"
if [ "$status" -eq 0 ]; then
    rm -rf "$WORK_DIR"
else
    echo "[compat-java] FAILED; broker logs, Maven output and reports kept in $WORK_DIR"
fi
exit "$status"
