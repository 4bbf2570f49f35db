# Sluice tasks. `just --list` shows them. Every recipe is a plain cargo or script call, so the
# README's commands work without `just` installed.

default:
    @just --list

# Build everything (debug).
build:
    cargo build --workspace

# Run the broker: single node, data in ./data.
run:
    cargo run --release --bin sluice-broker

# A local cluster of N brokers (scripts/cluster.sh: up, down, status, kill, restart, logs).
cluster *ARGS:
    scripts/cluster.sh {{ARGS}}

# All tests (installs kcat and the Python clients first).
test:
    scripts/test.sh

# Format check and clippy, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Storage benchmark (release build): see docs/benchmarks.md.
bench-log:
    cargo bench -p sluice-log --bench log_bench

# Metadata (Raft) benchmark: commit latency and commands/s of a 3-voter group.
bench-meta:
    cargo run --release -p sluice-meta --example meta_bench

# The deploy files (deploy/k8s, deploy/docker compose files, deploy/systemd) checked offline,
# every broker setting in them given to the real binary (scripts/deploy-check.sh).
deploy-check:
    scripts/deploy-check.sh

# Everything CI runs.
ci:
    bash .ci/run

# Chaos campaign (needs root): one seeded run of MINUTES under kills, pauses, partitions and
# netem, then the checker; `scripts/chaos.sh --ci` is CI's bounded slice. See docs/reliability.md.
chaos SEED MINUTES:
    scripts/chaos.sh {{SEED}} {{MINUTES}}

# Fuzz one target for SECONDS: the seeded mutation fuzzer of the cargo tests (fuzz/harness.rs),
# or coverage-guided with AFL++ (`fuzz-afl`; installs cargo-afl, adds what it finds to
# fuzz/corpus/TARGET/, fails on a crash). Targets and results: docs/reliability.md "Fuzzing".
fuzz TARGET SECONDS:
    scripts/fuzz.sh {{TARGET}} {{SECONDS}}

fuzz-afl TARGET SECONDS:
    nice -n 15 scripts/fuzz.sh afl {{TARGET}} {{SECONDS}}
