# Sourced by the benchmark scripts: the machine's own loopback TCP limit, the ceiling any
# client/broker pair on this machine shares, measured with iperf3 (installed from Debian's
# packages if missing): one stream for 5 seconds on a free port of 127.0.0.1.
#
#   loopback_mb_s    prints the measured throughput in MB/s (10^6 bytes per second); fails
#                    (status 1, a line on stderr) if the measurement does not complete in 30 s

loopback_mb_s() {
    if ! command -v iperf3 >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null
    fi
    local port server result status=0
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    result="$(mktemp)"
    timeout 60 iperf3 -s -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
    server=$!
    # Start the client only once the server accepts connections.
    python3 - "$port" <<'PY' || status=1
import socket, sys, time
deadline = time.time() + 10
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
    # (The server outlives the probe connection: without `-1` it goes back to listening.)
    [ "$status" -eq 0 ] && { timeout 20 iperf3 -c 127.0.0.1 -p "$port" -t 5 -J >"$result" 2>/dev/null || status=1; }
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    if [ "$status" -ne 0 ]; then
        echo "loopback measurement with iperf3 failed" >&2
        rm -f "$result"
        return 1
    fi
    python3 -c '
import json, sys
bits = json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]
print(f"{bits / 8e6:.1f}")' "$result"
    rm -f "$result"
}
