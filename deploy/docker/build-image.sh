#!/usr/bin/env bash
# Builds the broker image `sluice-broker:local` FROM scratch out of an existing release binary.
#
#   1. takes the broker binary (default: target/release/sluice-broker; nothing is compiled
#      unless --cargo-build is given);
#   2. assembles a build context in a temporary directory: rootfs/ with the broker (debug
#      info stripped; its `probe` subcommand is the healthcheck), the shared libraries and
#      the loader `ldd` lists, /etc/passwd, /etc/group and /etc/nsswitch.conf; an empty data/
#      (becomes /data, owned by uid 65532);
#   3. runs `docker build` with Dockerfile, then removes the temporary directory.
#
# Usage: deploy/docker/build-image.sh [--binary PATH] [--tag TAG] [--no-strip] [--cargo-build]
#   --binary PATH   broker binary to package (default $SLUICE_BROKER_BIN or target/release/sluice-broker)
#   --tag TAG       image tag (default sluice-broker:local)
#   --no-strip      keep the debug info (image ~80 MB larger)
#   --cargo-build   run `cargo build --release -p sluice-broker --bin sluice-broker` first
set -euo pipefail

DOCKER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DOCKER_DIR/../.." && pwd)"
# shellcheck source=rootfs.sh
source "$DOCKER_DIR/rootfs.sh"

binary="${SLUICE_BROKER_BIN:-$REPO_ROOT/target/release/sluice-broker}"
tag="sluice-broker:local"
strip="strip"
cargo_build=0
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        --no-strip) strip=""; shift ;;
        --cargo-build) cargo_build=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

log() { printf '[build-image] %s\n' "$*"; }

if [ "$cargo_build" = 1 ]; then
    (cd "$REPO_ROOT" && cargo build --release -p sluice-broker --bin sluice-broker)
    binary="$REPO_ROOT/target/release/sluice-broker"
fi
if [ ! -x "$binary" ]; then
    echo "build-image: no broker binary at $binary" >&2
    echo "  build one: cargo build --release -p sluice-broker --bin sluice-broker (or pass --cargo-build)" >&2
    exit 1
fi
if [ "$(uname -m)" != x86_64 ] && [ "$(uname -m)" != aarch64 ]; then
    log "warning: untested architecture $(uname -m)"
fi
command -v docker >/dev/null || { echo "build-image: docker is not installed" >&2; exit 1; }
if ! "$binary" probe --help >/dev/null 2>&1; then
    echo "build-image: $binary has no 'probe' subcommand (the image's healthcheck); rebuild it" >&2
    exit 1
fi

version="$("$binary" --version | awk '{print $2}')"
revision="$(git -C "$REPO_ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ "$revision" != unknown ] && [ -n "$(git -C "$REPO_ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    revision="$revision-dirty"
fi
log "binary $binary (version $version, built $(date -r "$binary" '+%F %T'), tree $revision)"

context="$(mktemp -d -t sluice-image.XXXXXX)"
trap 'rm -rf "$context"' EXIT
rootfs="$context/rootfs"
mkdir -p "$rootfs" "$context/data"

rootfs_add_binary "$rootfs" "$binary" /usr/local/bin/sluice-broker "$strip"
rootfs_add_etc "$rootfs"
cp "$DOCKER_DIR/Dockerfile" "$context/Dockerfile"

log "context: $(cd "$rootfs" && find . -type f | sed 's|^\./|/|' | sort | tr '\n' ' ')"
# The legacy builder suffices (and is what an engine without buildx has); BuildKit works too.
docker_build_replace "$tag" "$context" --build-arg "VERSION=$version" --build-arg "REVISION=$revision"
log "built $tag ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}'))"
