#!/usr/bin/env bash
# Offline checks of the deploy files, for CI (.ci/run) and before editing them; no cluster,
# Docker engine or network beyond the Go module proxy is needed:
#
#   1. Kubernetes, deploy/k8s/: every document decoded strictly into the k8s.io/api types (an
#      unknown or misspelled field fails, as kubeconform would with the API schemas, which
#      cannot be downloaded here), cross-references (services, ports, probe paths, per-pod
#      broker id, advertised name and voter list), and each pod's flags and SLUICE_* variables
#      taken by the real broker's --print-config; its /health and /ready answer 200
#      (tests/deploy/k8s);
#   2. Docker Compose, deploy/docker/compose*.yml: loaded with compose-go and the Compose
#      schema, the brokers' cross-references, their settings through --print-config and the
#      healthcheck parsed by the broker (tests/deploy/compose);
#   3. the checkers' own tests: the real files pass and a broken copy of each kind fails
#      (go test ./... in tests/deploy);
#   4. systemd, deploy/systemd/: `systemd-analyze verify` of the unit (any warning fails: an
#      unknown or misspelled directive is only a warning to systemd), its exposure score at most
#      2.0 (`systemd-analyze security --offline`), a deliberately misspelled copy that must
#      fail, and the env file's settings through --print-config. Skipped with one line where
#      systemd-analyze is missing and cannot be installed.
#
# The broker binary: $SLUICE_BROKER_BIN, else target/release/sluice-broker, else
# target/debug/sluice-broker (built with cargo if none is there); it must have the `probe`
# subcommand. Go 1.26 must be installed (the modules come from the Go module proxy).
# Ends with "DEPLOY CHECK PASS" (exit 0) or "DEPLOY CHECK FAIL: ..." (exit 1).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

fail() { echo "DEPLOY CHECK FAIL: $*"; exit 1; }

broker="${SLUICE_BROKER_BIN:-}"
if [ -z "$broker" ]; then
    for candidate in target/release/sluice-broker target/debug/sluice-broker; do
        if [ -x "$candidate" ] && "$candidate" probe --help >/dev/null 2>&1; then
            broker="$REPO_ROOT/$candidate"
            break
        fi
    done
fi
if [ -z "$broker" ]; then
    CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" cargo build -p sluice-broker --bin sluice-broker
    broker="$REPO_ROOT/target/debug/sluice-broker"
fi
case "$broker" in /*) ;; *) broker="$REPO_ROOT/$broker" ;; esac
"$broker" probe --help >/dev/null 2>&1 || fail "$broker has no 'probe' subcommand: rebuild it"
echo "broker: $broker ($("$broker" --version))"

# Go's official tarball installs to /usr/local/go, which a non-login shell may not have on PATH.
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || fail "go is not installed (Go 1.26; the checkers are tests/deploy)"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export SLUICE_BROKER_BIN="$broker"

echo "== Kubernetes: deploy/k8s"
(cd tests/deploy && go run ./k8s -broker "$broker" ../../deploy/k8s) || fail "deploy/k8s"

echo "== Docker Compose: deploy/docker"
(cd deploy/docker && go -C ../../tests/deploy run ./compose -broker "$broker" \
    "$PWD/compose.yml" "$PWD/compose.yml,$PWD/compose.host-clients.yml" "$PWD/compose.5-nodes.yml") \
    || fail "deploy/docker compose files"

echo "== the checkers' tests (each deliberate breakage must be caught)"
(cd tests/deploy && go vet ./... && go test -count=1 ./...) || fail "tests/deploy"

echo "== systemd: deploy/systemd"
if ! command -v systemd-analyze >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; } >/dev/null 2>&1 || true
fi
if ! command -v systemd-analyze >/dev/null; then
    echo "systemd check skipped: systemd-analyze is not installed and could not be installed"
else
    work="$(mktemp -d -t sluice-deploy-check.XXXXXX)"
    trap 'rm -rf "$work"' EXIT
    # verify checks that ExecStart's binary exists: point it at the one under test.
    unit="$work/sluice-broker.service"
    sed "s|^ExecStart=/usr/local/bin/sluice-broker|ExecStart=$broker|" deploy/systemd/sluice-broker.service >"$unit"
    grep -q "^ExecStart=$broker " "$unit" || fail "the unit's ExecStart is not /usr/local/bin/sluice-broker ..."
    verify() { systemd-analyze verify --man=no "$1" 2>&1; }
    output="$(verify "$unit")" || fail "systemd-analyze verify: $output"
    [ -z "$output" ] || fail "systemd-analyze verify warns: $output"
    mkdir "$work/broken"
    sed 's/^NoNewPrivileges=yes/NoNewPrivilege=yes/' "$unit" >"$work/broken/sluice-broker.service"
    [ -n "$(verify "$work/broken/sluice-broker.service")" ] \
        || fail "a misspelled directive (NoNewPrivilege=) passed systemd-analyze verify: this check cannot fail"
    security="$(systemd-analyze security --offline=yes --threshold=20 --no-pager "$unit" 2>&1)" \
        || fail "exposure above 2.0: $(printf '%s\n' "$security" | tail -n 1)"
    echo "unit: systemd-analyze verify clean; $(printf '%s\n' "$security" | tail -n 1 | sed 's/^→ //')"

    # The env file's settings: every SLUICE_* variable (but SLUICE_BROKER_ARGS, which the unit
    # passes as flags) must be a broker setting, and the flags must parse.
    env_file=deploy/systemd/sluice-broker.env.example
    mapfile -t assignments < <(grep -E '^[A-Z_][A-Z0-9_]*=' "$env_file")
    args=""
    env_args=()
    for assignment in "${assignments[@]}"; do
        case "$assignment" in
            SLUICE_BROKER_ARGS=*) args="${assignment#SLUICE_BROKER_ARGS=}" ;;
            *) env_args+=("$assignment") ;;
        esac
    done
    # shellcheck disable=SC2086 # the unit splits SLUICE_BROKER_ARGS on whitespace too
    printed="$(env -i PATH="$PATH" "${env_args[@]}" "$broker" $args --print-config 2>&1)" \
        || fail "$env_file: the broker refuses its settings: $printed"
    for assignment in "${env_args[@]}"; do
        name="${assignment%%=*}"
        case "$name" in SLUICE_*) ;; *) continue ;; esac
        grep -q "  # env $name\$" <<<"$printed" || fail "$env_file: $name is no setting of the broker"
    done
    for flag in $args; do
        flag_name="${flag#--}"
        flag_name="${flag_name%%=*}"
        grep -q "^$flag_name = .*  # flag\$" <<<"$printed" || fail "$env_file: SLUICE_BROKER_ARGS flag $flag is not a setting"
    done
    echo "env file: ${#env_args[@]} variables and SLUICE_BROKER_ARGS taken by the broker's --print-config"
fi

echo "DEPLOY CHECK PASS"
