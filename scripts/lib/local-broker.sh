# Sourced by the benchmark scripts: one sluice-broker on free ports of 127.0.0.1, data under a
# directory of the caller's (its log beside it).
#
#   start_local_broker BROKER DIR [FLAGS...]
#                                   starts BROKER (with FLAGS) with data in DIR/data and its log in
#                                   DIR/broker.log; sets KAFKA, RAFT, ADMIN (its ports) and
#                                   BROKER_PID; returns once /ready answers 200 (fails, status 1
#                                   and a line on stderr, if the broker exits first)
#   machine_line                    prints the "machine: N cores, CPU, load" line of a result

start_local_broker() {
    local broker="$1" dir="$2"
    shift 2
    read -r KAFKA RAFT ADMIN <<<"$(python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')"
    "$broker" --data-dir "$dir/data" --listen "127.0.0.1:$KAFKA" --raft-listen "127.0.0.1:$RAFT" \
        --admin-listen "127.0.0.1:$ADMIN" "$@" >"$dir/broker.log" 2>&1 &
    BROKER_PID=$!
    until curl -sf "http://127.0.0.1:$ADMIN/ready" >/dev/null; do
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            echo "sluice-broker exited before it was ready; see $dir/broker.log" >&2
            return 1
        fi
        sleep 0.1
    done
}

machine_line() {
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
}
