#!/usr/bin/env bash
# Captures the seed corpora of the fuzz targets from real clients (issue 12):
#   fuzz/corpus/request_frames/  every distinct request frame kcat (librdkafka) and the sluice
#                                CLI (sluice-client) sent, length prefix included, through a
#                                recording TCP proxy in front of a real broker;
#   fuzz/corpus/record_batches/  the record batches those producers wrote (every codec), cut
#                                out of the broker's segment files;
#   fuzz/corpus/log_recovery/    small segment files of that broker, whole and torn;
#   fuzz/corpus/raft_log/        its metadata Raft log segment (first 64 KiB), whole and torn.
# Usage: scripts/fuzz-capture.sh [OUT_DIR]   (default: fuzz/corpus; existing files are kept)
# Needs kcat, python3 and a broker and CLI: SLUICE_BROKER_BIN / SLUICE_CLI_BIN, else
# target/release/{sluice-broker,sluice}.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-fuzz/corpus}
BROKER=${SLUICE_BROKER_BIN:-target/release/sluice-broker}
CLI=${SLUICE_CLI_BIN:-target/release/sluice}
command -v kcat >/dev/null || { echo "fuzz-capture: kcat is needed" >&2; exit 2; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BROKER_PORT=$(free_port); PROXY_PORT=$(free_port); RAFT_PORT=$(free_port); ADMIN_PORT=$(free_port)

# Clients are told the proxy's address, so every connection goes through it.
"$BROKER" --data-dir "$WORK/data" --listen "127.0.0.1:$BROKER_PORT" --advertise "127.0.0.1:$PROXY_PORT" \
    --raft-listen "127.0.0.1:$RAFT_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
    --offsets-topic-partitions 1 --group-initial-rebalance-delay-ms 0 >"$WORK/broker.log" 2>&1 &
PIDS+=($!)

mkdir -p "$WORK/frames"
python3 - "$PROXY_PORT" "$BROKER_PORT" "$WORK/frames" <<'PY' &
# Forwards bytes both ways; writes each client->broker frame (length prefix included) to a file.
import socket, struct, sys, threading, hashlib
listen, target, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def pump(src, dst, record):
    buf = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if record:
                buf += data
                while len(buf) >= 4:
                    n = struct.unpack(">i", buf[:4])[0]
                    if len(buf) < 4 + n:
                        break
                    frame, buf = buf[:4 + n], buf[4 + n:]
                    api, ver = struct.unpack(">hh", frame[4:8])
                    name = "%s/api%02d-v%02d-%s.bin" % (out, api, ver, hashlib.sha1(frame[4:8] + frame[12:]).hexdigest()[:12])
                    open(name, "wb").write(frame)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen)); server.listen(64)
while True:
    client, _ = server.accept()
    upstream = socket.create_connection(("127.0.0.1", target))
    threading.Thread(target=pump, args=(client, upstream, True), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client, False), daemon=True).start()
PY
PIDS+=($!)

for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null 2>&1 && break
    sleep 0.2
done
B="127.0.0.1:$PROXY_PORT"

# librdkafka: metadata, produce with every codec (keys, headers, several records per batch),
# consume, a consumer group with commits.
kcat -b "$B" -L >/dev/null
for codec in none gzip snappy lz4 zstd; do
    # Compressible values: librdkafka sends a batch uncompressed when compressing does not pay.
    for run in 1 2; do
        seq 1 40 | sed "s/.*/key-&:value $codec $run & repeated repeated repeated repeated repeated/" \
            | kcat -b "$B" -P -t "capture-$codec" -K: -X compression.codec="$codec" -H trace=abc -X linger.ms=50
    done
    kcat -b "$B" -C -t "capture-$codec" -o beginning -e -q >/dev/null
done
kcat -b "$B" -G capture-group capture-none -o beginning -e -q -X enable.auto.commit=true -X auto.commit.interval.ms=100 >/dev/null 2>&1 &
GROUP=$!
sleep 8
kill -INT $GROUP 2>/dev/null || true
wait $GROUP 2>/dev/null || true

# sluice-client (the CLI): admin, produce, consume, groups, cluster status.
"$CLI" -b "$B" topic create capture-cli --partitions 2 >/dev/null
"$CLI" -b "$B" topic list >/dev/null
"$CLI" -b "$B" topic describe capture-cli >/dev/null || true
seq 1 30 | "$CLI" -b "$B" produce capture-cli >/dev/null
# (flags of both CLI generations: --offset/-n or --from/-n)
"$CLI" -b "$B" consume capture-cli --offset beginning -n 30 --idle-timeout-ms 2000 >/dev/null 2>&1 \
    || "$CLI" -b "$B" consume capture-cli --from beginning -n 30 --idle-timeout-ms 2000 >/dev/null 2>&1 || true
"$CLI" -b "$B" consume capture-cli --group capture-cli-group -n 10 --idle-timeout-ms 3000 >/dev/null 2>&1 || true
"$CLI" -b "$B" group list >/dev/null || true
"$CLI" -b "$B" group describe capture-cli-group >/dev/null || true
"$CLI" -b "$B" cluster status >/dev/null || true
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true

python3 - "$WORK" "$OUT" <<'PY'
# Picks a small corpus: per (api, version) the three smallest distinct frames; every batch of
# the captured topics up to 8 per codec; segment files of up to 8 KiB, whole and torn.
import glob, os, struct, sys, collections
work, out = sys.argv[1], sys.argv[2]
def put(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    open(os.path.join(out, target, name), "wb").write(data)
by_api = collections.defaultdict(list)
for path in glob.glob(os.path.join(work, "frames", "*.bin")):
    name = os.path.basename(path)
    by_api[name[:9]].append((os.path.getsize(path), name, open(path, "rb").read()))
for key, frames in sorted(by_api.items()):
    for size, name, data in sorted(frames)[:3]:
        if size <= 16384:
            put("request_frames", name, data)
codec_names = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
for path in sorted(glob.glob(os.path.join(work, "data", "logs", "*", "*.log"))):
    data = open(path, "rb").read()
    topic = os.path.basename(os.path.dirname(path))
    position, taken = 0, collections.Counter()
    while position + 61 <= len(data):
        length = struct.unpack(">i", data[position + 8:position + 12])[0]
        batch = data[position:position + 12 + length]
        codec = codec_names.get(struct.unpack(">h", batch[21:23])[0] & 7, "other")
        if taken[codec] < 8 and len(batch) <= 16384:
            put("record_batches", "%s-%s-%06d.bin" % (topic, codec, position), batch)
            taken[codec] += 1
        position += 12 + length
    if 0 < len(data) <= 8192 and not topic.startswith("__"):
        put("log_recovery", "%s.log" % topic, data)
        put("log_recovery", "%s-torn.log" % topic, data[: len(data) * 2 // 3])
for path in sorted(glob.glob(os.path.join(work, "data", "meta", "**", "*.seg"), recursive=True)):
    data = open(path, "rb").read()
    put("raft_log", os.path.basename(path), data[:65536])
    put("raft_log", "torn-" + os.path.basename(path), data[: min(len(data), 65536) * 2 // 3])
print("corpus:", {t: len(os.listdir(os.path.join(out, t))) for t in ("request_frames", "record_batches", "log_recovery", "raft_log") if os.path.isdir(os.path.join(out, t))})
PY
