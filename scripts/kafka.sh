#!/usr/bin/env bash
# Apache Kafka as the compatibility oracle: install it from Maven Central, start and stop a
# single-node KRaft broker, and run Kafka's own command-line tools (against Kafka or Sluice).
#
#   scripts/kafka.sh install          copies Kafka's broker (kafka_2.13), tools (kafka-tools) and
#                                     Connect (connect-runtime, connect-file) with every
#                                     dependency into the cache (scripts/kafka/pom.xml,
#                                     `mvn dependency:copy-dependencies`); prints the jar directory.
#                                     Idempotent: a rerun with the same pom does nothing.
#   scripts/kafka.sh start DIR        formats DIR with a random cluster id and starts a broker +
#                                     controller on two free ports of 127.0.0.1; waits until it
#                                     answers, writes DIR/bootstrap (host:port) and DIR/pid.
#   scripts/kafka.sh stop DIR         SIGTERM to the broker started in DIR, waits for it to exit.
#   scripts/kafka.sh tool NAME ARGS   runs a tool by its script name, e.g.
#                                     `scripts/kafka.sh tool kafka-topics --bootstrap-server H:P --list`.
#
# Environment: SLUICE_KAFKA_CACHE (default ~/.cache/sluice) holds the jars, keyed by the pom's
# checksum; JAVA (default `java`) needs Java 17+, as Kafka 4.x brokers do.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$REPO_ROOT/scripts/kafka/pom.xml"
CACHE_ROOT="${SLUICE_KAFKA_CACHE:-$HOME/.cache/sluice}"
JAVA="${JAVA:-java}"
# How long a new broker may take to answer (JVM start, storage load, controller election).
START_TIMEOUT_S=90
# How long a broker may take to stop after SIGTERM (controlled shutdown) before SIGKILL.
STOP_TIMEOUT_S=30

libs_dir() {
    local sum
    sum="$(sha256sum "$POM" | cut -c1-16)"
    echo "$CACHE_ROOT/kafka-$sum/libs"
}

install() {
    local libs
    libs="$(libs_dir)"
    if [ -f "$libs/.complete" ]; then
        echo "$libs"
        return
    fi
    command -v mvn >/dev/null || { echo "[kafka] mvn not found: install Maven (apt-get install maven)" >&2; exit 1; }
    rm -rf "$libs"
    mkdir -p "$libs"
    echo "[kafka] copying Apache Kafka jars into $libs" >&2
    mvn -q -B -f "$POM" dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime >&2
    touch "$libs/.complete"
    echo "$libs"
}

# Log4j configurations, written on every run (cheap) so that a change here needs no reinstall:
# the broker logs Kafka's own INFO lines (to DIR/kafka.log; `start` waits for "Kafka Server
# started"); the tools log warnings only, so their output stays what a user of the tool sees.
write_log_configs() {
    local libs="$1" level
    for level in info warn; do
        cat >"$libs/log4j2-$level.properties" <<EOF
status = warn
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
logger.kafka.name = kafka
logger.kafka.level = $level
EOF
    done
}

java_run() {
    local libs
    libs="$(install)"
    write_log_configs "$libs"
    exec "$JAVA" -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dlog4j2.configurationFile="$libs/log4j2-warn.properties" -cp "$libs/*" "$@"
}

# Kafka's tool scripts and the main class each runs (bin/kafka-*.sh of the distribution).
tool_class() {
    case "$1" in
        kafka-topics) echo org.apache.kafka.tools.TopicCommand ;;
        kafka-configs) echo kafka.admin.ConfigCommand ;;
        kafka-acls) echo org.apache.kafka.tools.AclCommand ;;
        kafka-console-producer) echo org.apache.kafka.tools.ConsoleProducer ;;
        kafka-console-consumer) echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
        kafka-consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
        kafka-get-offsets) echo org.apache.kafka.tools.GetOffsetShell ;;
        kafka-delete-records) echo org.apache.kafka.tools.DeleteRecordsCommand ;;
        kafka-log-dirs) echo org.apache.kafka.tools.LogDirsCommand ;;
        kafka-producer-perf-test) echo org.apache.kafka.tools.ProducerPerformance ;;
        kafka-consumer-perf-test) echo org.apache.kafka.tools.ConsumerPerformance ;;
        kafka-broker-api-versions) echo org.apache.kafka.tools.BrokerApiVersionsCommand ;;
        kafka-metadata-quorum) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
        kafka-reassign-partitions) echo org.apache.kafka.tools.reassign.ReassignPartitionsCommand ;;
        kafka-storage) echo kafka.tools.StorageTool ;;
        # Kafka Connect in standalone mode: ARGS are the worker's properties file, then one
        # properties file per connector; runs until SIGTERM.
        connect-standalone) echo org.apache.kafka.connect.cli.ConnectStandalone ;;
        *) echo "[kafka] unknown tool: $1" >&2; exit 2 ;;
    esac
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local dir="$1" libs port controller_port cluster_id
    libs="$(install)"
    write_log_configs "$libs"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        echo "[kafka] already running in $dir (pid $(cat "$dir/pid"))" >&2
        cat "$dir/bootstrap"
        return
    fi
    port="$(free_port)"
    controller_port="$(free_port)"
    while [ "$controller_port" = "$port" ]; do controller_port="$(free_port)"; done
    rm -rf "$dir/data"
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=500
auto.create.topics.enable=true
EOF
    cluster_id="$(java_run_captured kafka.tools.StorageTool random-uuid 2>/dev/null)"
    java_run_captured kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >"$dir/format.log" 2>&1
    (
        cd "$dir"
        nohup "$JAVA" -Xms256m -Xmx768m -XX:+UseSerialGC \
            -Dlog4j2.configurationFile="$libs/log4j2-info.properties" -cp "$libs/*" \
            kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 &
        echo $! >"$dir/pid"
    )
    echo "127.0.0.1:$port" >"$dir/bootstrap"
    local deadline=$(( $(date +%s) + START_TIMEOUT_S ))
    until grep -q "Kafka Server started" "$dir/kafka.log" 2>/dev/null; do
        if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
            echo "[kafka] broker exited during start; log: $dir/kafka.log" >&2
            tail -30 "$dir/kafka.log" >&2
            exit 1
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "[kafka] broker not started within ${START_TIMEOUT_S}s; log: $dir/kafka.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "[kafka] Apache Kafka on 127.0.0.1:$port (pid $(cat "$dir/pid"), data in $dir)" >&2
    echo "127.0.0.1:$port"
}

java_run_captured() {
    local libs
    libs="$(install)"
    "$JAVA" -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dlog4j2.configurationFile="$libs/log4j2-warn.properties" -cp "$libs/*" "$@"
}

stop() {
    local dir="$1" pid
    [ -f "$dir/pid" ] || return 0
    pid="$(cat "$dir/pid")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        local deadline=$(( $(date +%s) + STOP_TIMEOUT_S ))
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$(date +%s)" -ge "$deadline" ]; then
                echo "[kafka] broker $pid did not stop within ${STOP_TIMEOUT_S}s; SIGKILL" >&2
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
    fi
    rm -f "$dir/pid"
}

command="${1:-install}"
shift || true
case "$command" in
    install) install ;;
    start) start "${1:?usage: kafka.sh start DIR}" ;;
    stop) stop "${1:?usage: kafka.sh stop DIR}" ;;
    tool)
        name="${1:?usage: kafka.sh tool NAME ARGS...}"
        shift
        class="$(tool_class "$name")"
        java_run "$class" "$@"
        ;;
    *) echo "usage: kafka.sh install | start DIR | stop DIR | tool NAME ARGS..." >&2; exit 2 ;;
esac
