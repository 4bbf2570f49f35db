# shellcheck shell=bash
# Helpers to assemble the root filesystem of a `FROM scratch` image: sourced by
# build-image.sh and smoke/build-clients-image.sh, not run on its own.
#
# A dynamically linked ELF file needs, besides itself, every shared library `ldd` lists and the
# dynamic loader. They are copied to the very path `ldd` resolves them to (for example
# /lib/x86_64-linux-gnu/libc.so.6 and /lib64/ld-linux-x86-64.so.2), so the loader finds them in
# its built-in search path without an ld.so.cache.

# rootfs_add_libs ROOTFS FILE...: copies the libraries FILE... link against (and the loader).
rootfs_add_libs() {
    local rootfs="$1" file line lib
    shift
    for file in "$@"; do
        if ! ldd "$file" >/dev/null 2>&1; then
            continue # not dynamically linked (static binary, or not an ELF file): nothing to add
        fi
        if ldd "$file" | grep -q 'not found'; then
            echo "rootfs: $file needs a library that is not installed:" >&2
            ldd "$file" | grep 'not found' >&2
            return 1
        fi
        while read -r line; do
            case "$line" in
                *'=>'*) lib="$(printf '%s\n' "$line" | awk '{print $3}')" ;;
                /*) lib="$(printf '%s\n' "$line" | awk '{print $1}')" ;;
                *) continue ;; # linux-vdso.so.1: provided by the kernel
            esac
            case "$lib" in /*) ;; *) continue ;; esac # an absolute path, or nothing to copy
            case "$lib" in "$rootfs"/*) continue ;; esac # found inside the rootfs already (RPATH)
            if [ ! -e "$rootfs$lib" ]; then
                mkdir -p "$rootfs$(dirname "$lib")"
                cp -L "$lib" "$rootfs$lib"
            fi
        done < <(ldd "$file")
    done
}

# rootfs_add_binary ROOTFS SOURCE DEST [strip]: copies SOURCE to ROOTFS/DEST (mode 0755) and
# the libraries it needs. With `strip`, debug info is removed (symbols stay, so backtraces
# still name functions): the release broker is ~80 MB with debug info, ~15 MB without.
rootfs_add_binary() {
    local rootfs="$1" source="$2" dest="$3" strip="${4:-}"
    mkdir -p "$rootfs$(dirname "$dest")"
    if [ "$strip" = strip ] && command -v objcopy >/dev/null 2>&1; then
        objcopy --strip-debug "$source" "$rootfs$dest"
    else
        cp -L "$source" "$rootfs$dest"
    fi
    chmod 0755 "$rootfs$dest"
    rootfs_add_libs "$rootfs" "$source"
}

# rootfs_add_etc ROOTFS: /etc/passwd and /etc/group naming root and the unprivileged `sluice`
# user (uid/gid 65532, the usual "nonroot" id of distroless images), and an nsswitch.conf so
# that glibc resolves names from /etc/hosts, then DNS (Docker's embedded DNS resolves the
# compose service names; Docker bind-mounts /etc/hosts and /etc/resolv.conf at run time).
rootfs_add_etc() {
    local rootfs="$1"
    mkdir -p "$rootfs/etc"
    printf 'root:x:0:0:root:/:/sbin/nologin\nsluice:x:65532:65532:sluice:/data:/sbin/nologin\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nsluice:x:65532:\n' >"$rootfs/etc/group"
    printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
}

# docker_build_replace TAG CONTEXT [docker build args...]: builds CONTEXT as TAG; the image TAG
# named before, if it is left untagged, is removed (so repeated builds do not pile up
# dangling images; one still used by a container stays).
docker_build_replace() {
    local tag="$1" context="$2" previous current
    shift 2
    previous="$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
    docker build --quiet --tag "$tag" "$@" "$context" >/dev/null
    current="$(docker image inspect --format '{{.Id}}' "$tag")"
    if [ -n "$previous" ] && [ "$previous" != "$current" ] \
        && [ -z "$(docker image inspect --format '{{join .RepoTags ","}}' "$previous" 2>/dev/null)" ]; then
        docker image rm "$previous" >/dev/null 2>&1 || true
    fi
}
