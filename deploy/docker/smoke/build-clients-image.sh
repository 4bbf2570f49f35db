#!/usr/bin/env bash
# Builds `sluice-smoke-clients:local` FROM scratch: /usr/bin/kcat and /usr/bin/python3 (this
# machine's Debian kcat and python3.11, with the libraries `ldd` lists), the standard library,
# confluent-kafka from the project's .venv (scripts/install-test-deps.sh installs both), and
# /smoke/client.py. Nothing is downloaded.
#
# Usage: deploy/docker/smoke/build-clients-image.sh [--tag TAG]
set -euo pipefail

SMOKE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SMOKE_DIR/../../.." && pwd)"
# shellcheck source=SCRIPTDIR/../rootfs.sh
source "$SMOKE_DIR/../rootfs.sh"

tag="sluice-smoke-clients:local"
[ "${1:-}" = --tag ] && tag="$2"

kcat="$(command -v kcat || true)"
python="/usr/bin/python3.11"
venv_python="$REPO_ROOT/.venv/bin/python"
for need in "$kcat" "$python" "$venv_python"; do
    if [ -z "$need" ] || [ ! -x "$need" ]; then
        echo "build-clients-image: missing ${need:-kcat}; run scripts/install-test-deps.sh" >&2
        exit 1
    fi
done
site="$("$venv_python" -c 'import confluent_kafka, os; print(os.path.dirname(os.path.dirname(confluent_kafka.__file__)))')"
stdlib="$("$python" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"

context="$(mktemp -d -t sluice-clients.XXXXXX)"
trap 'rm -rf "$context"' EXIT
rootfs="$context/rootfs"
mkdir -p "$rootfs/usr/lib/python3/dist-packages" "$rootfs/smoke" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"

rootfs_add_binary "$rootfs" "$kcat" /usr/bin/kcat
rootfs_add_binary "$rootfs" "$python" /usr/bin/python3
# The standard library without its tests and GUI/tooling parts; symlinks (sitecustomize.py)
# are followed, so nothing points outside the image.
tar -C "$(dirname "$stdlib")" -chf - \
    --exclude='*/test' --exclude='*/tests' --exclude='*/idlelib' --exclude='*/tkinter' \
    --exclude='*/turtledemo' --exclude='*/ensurepip' --exclude='*/lib2to3' --exclude='*/config-3.*' \
    "$(basename "$stdlib")" | tar -C "$rootfs/usr/lib" -xf -
cp -rL "$site/confluent_kafka" "$site/confluent_kafka.libs" "$rootfs/usr/lib/python3/dist-packages/"
find "$rootfs/usr/lib/python3/dist-packages" -name '__pycache__' -prune -exec rm -rf {} +
# Libraries of the extension modules (ssl, ctypes, ...) and of confluent-kafka's bundled
# librdkafka (found through its RPATH inside the image).
mapfile -t modules < <(find "$rootfs/usr/lib" -name '*.so*' -type f)
rootfs_add_libs "$rootfs" "${modules[@]}"
rootfs_add_etc "$rootfs"
cp "$SMOKE_DIR/client.py" "$rootfs/smoke/client.py"
cp "$SMOKE_DIR/Dockerfile" "$context/Dockerfile"

docker_build_replace "$tag" "$context"
echo "[build-clients-image] built $tag ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}'))"
