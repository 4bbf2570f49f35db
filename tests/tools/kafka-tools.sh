#!/usr/bin/env bash
# Kafka's own command-line tools (Apache Kafka's kafka-tools, run by `scripts/kafka.sh tool`)
# against one broker: the same scenarios, unchanged, against Apache Kafka and against Sluice.
#
#   tests/tools/kafka-tools.sh TARGET BOOTSTRAP RESULTS_TSV
#
# TARGET is a label (kafka or sluice), BOOTSTRAP the broker's host:port. Each scenario appends
# one line to RESULTS_TSV: `tools <TAB> scenario <TAB> pass|fail <TAB> detail` (the detail of a
# failure is the failing step's command and the end of its output). A scenario runs its steps in
# order and stops at the first that fails; later scenarios use their own topics and groups, so
# one failure does not cascade, except where a scenario reads what an earlier one wrote (said
# at the scenario). Exits 0 whatever the scenarios gave: scripts/compat-matrix.py judges.
set -uo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${1:?usage: kafka-tools.sh TARGET BOOTSTRAP RESULTS_TSV}"
BOOTSTRAP="${2:?usage: kafka-tools.sh TARGET BOOTSTRAP RESULTS_TSV}"
RESULTS="${3:?usage: kafka-tools.sh TARGET BOOTSTRAP RESULTS_TSV}"
# Upper bound for one tool run (a JVM start plus its requests); a hung tool fails its step.
TOOL_TIMEOUT_S=60
# How long a step that waits for the broker to catch up (a deleted topic disappearing) retries.
SETTLE_TIMEOUT_S=20
# How long Kafka Connect may take to start and copy the whole file through the topic.
CONNECT_TIMEOUT_S=120
# Lines of the file Kafka Connect copies.
CONNECT_LINES=1000

RUN_ID="$(date +%s)-$$"
TOPIC="tools-topic-$RUN_ID"
DATA_TOPIC="tools-data-$RUN_ID"
GROUP="tools-group-$RUN_ID"
CONNECT_TOPIC="tools-connect-$RUN_ID"
WORK="$(mktemp -d -t sluice-tools.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

LAST_OUTPUT=""
FAILED_STEP=""

# tool NAME ARGS...: runs a Kafka tool with the broker's address first; output in LAST_OUTPUT.
tool() {
    local name="$1"
    shift
    LAST_OUTPUT="$(timeout "$TOOL_TIMEOUT_S" bash "$REPO_ROOT/scripts/kafka.sh" tool "$name" --bootstrap-server "$BOOTSTRAP" "$@" 2>&1)"
}

# step REGEX NAME ARGS...: runs the tool; passes when it exits 0 and its output matches REGEX
# (extended, per line).
step() {
    local pattern="$1"
    shift
    local status=0
    tool "$@" || status=$?
    if [ "$status" -ne 0 ] || ! grep -Eq -- "$pattern" <<<"$LAST_OUTPUT"; then
        FAILED_STEP="$* (exit $status, expected /$pattern/): $(tail -c 600 <<<"$LAST_OUTPUT")"
        return 1
    fi
}

# step_without REGEX NAME ARGS...: the tool exits 0 and no line of its output matches REGEX.
step_without() {
    local pattern="$1"
    shift
    local status=0
    tool "$@" || status=$?
    if [ "$status" -ne 0 ] || grep -Eq -- "$pattern" <<<"$LAST_OUTPUT"; then
        FAILED_STEP="$* (exit $status, expected no /$pattern/): $(tail -c 600 <<<"$LAST_OUTPUT")"
        return 1
    fi
}

# eventually STEP-FUNCTION ARGS...: retries a step for SETTLE_TIMEOUT_S (metadata propagation).
eventually() {
    local deadline=$(( $(date +%s) + SETTLE_TIMEOUT_S ))
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 1
    done
}

scenario() {
    local name="$1"
    shift
    FAILED_STEP=""
    local started=$SECONDS
    if "$@"; then
        printf 'tools\t%s\tpass\t\n' "$name" >>"$RESULTS"
        echo "[tools:$TARGET] pass $name ($(( SECONDS - started )) s)"
    else
        printf 'tools\t%s\tfail\t%s\n' "$name" "$(tr '\t\n\r' '   ' <<<"$FAILED_STEP" | cut -c1-900)" >>"$RESULTS"
        echo "[tools:$TARGET] FAIL $name: $FAILED_STEP"
    fi
}

# kafka-topics: create with a partition count and a config, list, describe, add partitions.
topics_create_describe_alter() {
    step "Created topic $TOPIC" kafka-topics --create --topic "$TOPIC" --partitions 3 --replication-factor 1 \
        --config retention.ms=86400000 || return 1
    step "^$TOPIC\$" kafka-topics --list || return 1
    step "PartitionCount: 3" kafka-topics --describe --topic "$TOPIC" || return 1
    grep -q "retention.ms=86400000" <<<"$LAST_OUTPUT" || { FAILED_STEP="describe lacks retention.ms=86400000: $LAST_OUTPUT"; return 1; }
    grep -Eq "Partition: 2[[:space:]]+Leader: [0-9]+" <<<"$LAST_OUTPUT" || { FAILED_STEP="describe lacks partition 2 with a leader: $LAST_OUTPUT"; return 1; }
    step "" kafka-topics --alter --topic "$TOPIC" --partitions 4 || return 1
    eventually step "PartitionCount: 4" kafka-topics --describe --topic "$TOPIC"
}

# kafka-configs on a topic: add (a list value too), describe, delete a key, describe --all.
configs_topic_alter_describe() {
    step "Completed updating config" kafka-configs --entity-type topics --entity-name "$TOPIC" --alter \
        --add-config 'max.message.bytes=200000,cleanup.policy=[delete,compact]' || return 1
    eventually step "max.message.bytes=200000" kafka-configs --entity-type topics --entity-name "$TOPIC" --describe || return 1
    grep -q "cleanup.policy=delete,compact" <<<"$LAST_OUTPUT" || { FAILED_STEP="describe lacks cleanup.policy=delete,compact: $LAST_OUTPUT"; return 1; }
    step "Completed updating config" kafka-configs --entity-type topics --entity-name "$TOPIC" --alter \
        --delete-config max.message.bytes || return 1
    eventually step_without "max.message.bytes=200000" kafka-configs --entity-type topics --entity-name "$TOPIC" --describe || return 1
    # --all lists every config with its value, defaults included.
    step "segment.bytes=[0-9]+" kafka-configs --entity-type topics --entity-name "$TOPIC" --describe --all
}

# kafka-configs on a broker: the id comes from kafka-topics --describe (the leader of partition 0).
configs_broker_describe() {
    step "Leader: [0-9]+" kafka-topics --describe --topic "$TOPIC" || return 1
    local broker
    broker="$(grep -Eo 'Leader: [0-9]+' <<<"$LAST_OUTPUT" | head -1 | grep -Eo '[0-9]+')"
    step "log.retention.hours=[0-9]+" kafka-configs --entity-type brokers --entity-name "$broker" --describe --all
}

# kafka-console-producer: 20 keyed lines into a one-partition topic; kafka-get-offsets sees 20.
console_producer() {
    step "Created topic $DATA_TOPIC" kafka-topics --create --topic "$DATA_TOPIC" --partitions 1 --replication-factor 1 || return 1
    local i
    for i in $(seq 0 19); do echo "k$i:v$i"; done >"$WORK/lines"
    local status=0
    LAST_OUTPUT="$(timeout "$TOOL_TIMEOUT_S" bash "$REPO_ROOT/scripts/kafka.sh" tool kafka-console-producer \
        --bootstrap-server "$BOOTSTRAP" --topic "$DATA_TOPIC" --producer-property acks=all \
        --property parse.key=true --property key.separator=: <"$WORK/lines" 2>&1)" || status=$?
    if [ "$status" -ne 0 ]; then
        FAILED_STEP="kafka-console-producer (exit $status): $(tail -c 600 <<<"$LAST_OUTPUT")"
        return 1
    fi
    step "^$DATA_TOPIC:0:20\$" kafka-get-offsets --topic "$DATA_TOPIC"
}

# kafka-console-consumer in a group: reads the 20 lines (from console_producer) with keys, in
# order, and commits them (the group's offsets are what the consumer-groups scenarios read).
console_consumer_group() {
    tool kafka-console-consumer --topic "$DATA_TOPIC" --group "$GROUP" --from-beginning --max-messages 20 \
        --timeout-ms 30000 --property print.key=true --property key.separator=: || true
    local lines
    lines="$(grep -E '^k[0-9]+:v[0-9]+$' <<<"$LAST_OUTPUT" || true)"
    local expected
    expected="$(for i in $(seq 0 19); do echo "k$i:v$i"; done)"
    if [ "$lines" != "$expected" ]; then
        FAILED_STEP="console consumer did not print k0:v0 .. k19:v19 in order: $(tail -c 600 <<<"$LAST_OUTPUT")"
        return 1
    fi
}

# kafka-consumer-groups: list, describe with lag, state.
consumer_groups_describe() {
    step "^$GROUP\$" kafka-consumer-groups --list || return 1
    # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
    step "^$GROUP +$DATA_TOPIC +0 +20 +20 +0( |\$)" kafka-consumer-groups --describe --group "$GROUP" || return 1
    step "^$GROUP .* Empty +0\$" kafka-consumer-groups --describe --group "$GROUP" --state
}

# kafka-consumer-groups --reset-offsets: dry run leaves the offset, execute moves it (lag follows),
# then --to-earliest.
consumer_groups_reset_offsets() {
    step "^$GROUP +$DATA_TOPIC +0 +5( |\$)" kafka-consumer-groups --reset-offsets --group "$GROUP" --topic "$DATA_TOPIC" \
        --to-offset 5 --dry-run || return 1
    step "^$GROUP +$DATA_TOPIC +0 +20 +20 +0( |\$)" kafka-consumer-groups --describe --group "$GROUP" || return 1
    step "^$GROUP +$DATA_TOPIC +0 +5( |\$)" kafka-consumer-groups --reset-offsets --group "$GROUP" --topic "$DATA_TOPIC" \
        --to-offset 5 --execute || return 1
    step "^$GROUP +$DATA_TOPIC +0 +5 +20 +15( |\$)" kafka-consumer-groups --describe --group "$GROUP" || return 1
    step "^$GROUP +$DATA_TOPIC +0 +0( |\$)" kafka-consumer-groups --reset-offsets --group "$GROUP" --topic "$DATA_TOPIC" \
        --to-earliest --execute || return 1
    step "^$GROUP +$DATA_TOPIC +0 +0 +20 +20( |\$)" kafka-consumer-groups --describe --group "$GROUP"
}

# kafka-consumer-groups --delete on the (empty) group.
consumer_groups_delete() {
    step "Deletion of requested consumer groups \\('$GROUP'\\) was successful" kafka-consumer-groups --delete --group "$GROUP" || return 1
    step_without "^$GROUP\$" kafka-consumer-groups --list
}

# kafka-get-offsets: latest (-1), earliest (-2), max timestamp (-3), by time (0: the first record).
get_offsets() {
    step "^$DATA_TOPIC:0:20\$" kafka-get-offsets --topic "$DATA_TOPIC" --time -1 || return 1
    step "^$DATA_TOPIC:0:0\$" kafka-get-offsets --topic "$DATA_TOPIC" --time -2 || return 1
    # The console producer stamps records with the time of sending; several may share the
    # largest millisecond, so the answer is one of the 20 offsets.
    step "^$DATA_TOPIC:0:([0-9]|1[0-9])\$" kafka-get-offsets --topic "$DATA_TOPIC" --time -3 || return 1
    step "^$DATA_TOPIC:0:0\$" kafka-get-offsets --topic "$DATA_TOPIC" --time 0
}

# kafka-delete-records: delete before offset 3 of the data topic; earliest becomes 3.
delete_records() {
    printf '{"version":1,"partitions":[{"topic":"%s","partition":0,"offset":3}]}\n' "$DATA_TOPIC" >"$WORK/delete.json"
    step "partition: $DATA_TOPIC-0[[:space:]]+low_watermark: 3" kafka-delete-records --offset-json-file "$WORK/delete.json" || return 1
    step "^$DATA_TOPIC:0:3\$" kafka-get-offsets --topic "$DATA_TOPIC" --time -2
}

# kafka-log-dirs: the data topic's partition is in a log directory, with a size.
log_dirs() {
    step "\"partition\":\"$DATA_TOPIC-0\",\"size\":[1-9][0-9]*" kafka-log-dirs --describe --topic-list "$DATA_TOPIC"
}

# kafka-broker-api-versions: the broker answers ApiVersions and lists the core APIs.
broker_api_versions() {
    step "Produce\\(0\\): [0-9]+ to [0-9]+" kafka-broker-api-versions || return 1
    grep -Eq "Fetch\\(1\\): [0-9]+ to [0-9]+" <<<"$LAST_OUTPUT" || { FAILED_STEP="no Fetch(1) range: $LAST_OUTPUT"; return 1; }
}

# kafka-metadata-quorum (KIP-853's DescribeQuorum): a leader, its epoch and the voters.
metadata_quorum() {
    step "^LeaderId: +[0-9]+" kafka-metadata-quorum describe --status || return 1
    grep -Eq "^CurrentVoters: +\[\{\"id\": [0-9]+" <<<"$LAST_OUTPUT" || { FAILED_STEP="no CurrentVoters: $LAST_OUTPUT"; return 1; }
    step "Leader" kafka-metadata-quorum describe --replication
}

# kafka-topics --delete: the topic leaves the list.
topics_delete() {
    step "" kafka-topics --delete --topic "$TOPIC" || return 1
    eventually step_without "^$TOPIC\$" kafka-topics --list
}

# connect-standalone with the FileStreamSource and FileStreamSink connectors: a file of
# CONNECT_LINES lines (ASCII and UTF-8, blanks inside lines) goes into a topic and back out into
# another file, which must equal the first byte for byte. The worker stores source offsets in a
# file and converts with StringConverter; its sink task is a consumer group of the broker.
connect_file_copy() {
    step "Created topic $CONNECT_TOPIC" kafka-topics --create --topic "$CONNECT_TOPIC" --partitions 1 --replication-factor 1 || return 1
    local dir="$WORK/connect" i rest_port
    mkdir -p "$dir"
    for i in $(seq 1 "$CONNECT_LINES"); do
        printf 'line %d: caf\xc3\xa9 %*s end\n' "$i" $(( i % 7 )) ''
    done >"$dir/in.txt"
    rest_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    printf '%s\n' "bootstrap.servers=$BOOTSTRAP" \
        "key.converter=org.apache.kafka.connect.storage.StringConverter" \
        "value.converter=org.apache.kafka.connect.storage.StringConverter" \
        "offset.storage.file.filename=$dir/connect.offsets" \
        "offset.flush.interval.ms=1000" \
        "listeners=http://127.0.0.1:$rest_port" >"$dir/worker.properties"
    printf '%s\n' "name=tools-file-source-$RUN_ID" "connector.class=FileStreamSource" "tasks.max=1" \
        "file=$dir/in.txt" "topic=$CONNECT_TOPIC" >"$dir/source.properties"
    printf '%s\n' "name=tools-file-sink-$RUN_ID" "connector.class=FileStreamSink" "tasks.max=1" \
        "file=$dir/out.txt" "topics=$CONNECT_TOPIC" >"$dir/sink.properties"
    bash "$REPO_ROOT/scripts/kafka.sh" tool connect-standalone "$dir/worker.properties" "$dir/source.properties" \
        "$dir/sink.properties" >"$dir/connect.log" 2>&1 &
    local connect_pid=$! deadline=$(( $(date +%s) + CONNECT_TIMEOUT_S )) copied=1
    until cmp -s "$dir/in.txt" "$dir/out.txt"; do
        if ! kill -0 "$connect_pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
            copied=0
            break
        fi
        sleep 1
    done
    kill -TERM "$connect_pid" 2>/dev/null
    wait "$connect_pid" 2>/dev/null
    if [ "$copied" -ne 1 ]; then
        FAILED_STEP="connect-standalone did not copy the $CONNECT_LINES lines in ${CONNECT_TIMEOUT_S}s ($(wc -l <"$dir/out.txt" 2>/dev/null || echo no) lines in the sink file): $(grep -E 'ERROR|Exception' "$dir/connect.log" | tail -c 600)"
        return 1
    fi
    step "^$CONNECT_TOPIC:0:$CONNECT_LINES\$" kafka-get-offsets --topic "$CONNECT_TOPIC"
}

echo "[tools:$TARGET] Kafka tools against $BOOTSTRAP"
scenario "kafka-topics create, list, describe, add partitions" topics_create_describe_alter
scenario "kafka-configs topic add, describe, delete, describe --all" configs_topic_alter_describe
scenario "kafka-configs broker describe --all" configs_broker_describe
scenario "kafka-console-producer keyed lines" console_producer
scenario "kafka-console-consumer group from beginning" console_consumer_group
scenario "kafka-consumer-groups list, describe with lag, state" consumer_groups_describe
scenario "kafka-consumer-groups reset-offsets dry-run and execute" consumer_groups_reset_offsets
scenario "kafka-consumer-groups delete" consumer_groups_delete
scenario "kafka-get-offsets latest, earliest, max-timestamp, by time" get_offsets
scenario "kafka-delete-records" delete_records
scenario "kafka-log-dirs describe" log_dirs
scenario "kafka-broker-api-versions" broker_api_versions
scenario "kafka-metadata-quorum describe --status, --replication" metadata_quorum
scenario "kafka-topics delete" topics_delete
scenario "connect-standalone FileStreamSource to FileStreamSink" connect_file_copy
exit 0
