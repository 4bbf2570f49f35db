#!/usr/bin/env bash
# Runs one fuzz target (fuzz/harness.rs) for a while, or all of them at their CI budget.
#   scripts/fuzz.sh TARGET SECONDS [SEED]   e.g. scripts/fuzz.sh record_batches 3600
#   scripts/fuzz.sh --ci                    every target at its CI budget (what `cargo test` runs)
# Targets: request_frames broker_dispatch consumer_offsets record_batches log_recovery raft_rpc
# raft_log.
# A timed run prints its seed; SEED repeats it. A crash is saved in target/fuzz/crashes/TARGET/
# and the run fails naming the file: fix the bug, then copy the file into fuzz/corpus/TARGET/
# (broker_dispatch replays fuzz/corpus/request_frames/ too) so every later run replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}

# target -> cargo package, test binary, test name filter
declare -A WHERE=(
    [request_frames]="sluice-broker fuzz_requests request_frames_decode_or_fail_within_the_guard"
    [broker_dispatch]="sluice-broker fuzz_requests arbitrary_requests_never_panic_the_broker_and_it_keeps_answering"
    [consumer_offsets]="sluice-broker fuzz_requests consumer_offsets_records_decode_or_fail_within_bounds"
    [record_batches]="sluice-log fuzz_record_batches record_batches_never_panic_stay_bounded_and_read_back_intact"
    [log_recovery]="sluice-log fuzz_log_recovery recovery_of_arbitrary_segment_files_never_panics_and_keeps_only_valid_batches"
    [raft_rpc]="sluice-meta fuzz_raft raft_rpc_frames_decode_or_fail_within_bounds"
    [raft_log]="sluice-meta fuzz_raft raft_log_recovery_of_arbitrary_segment_files_never_panics"
)

run() { # target, then extra environment assignments
    local target=$1; shift
    read -r package binary test <<<"${WHERE[$target]}"
    env "$@" cargo test -q -p "$package" --test "$binary" -- --exact "$test" --nocapture --test-threads 1
}

if [ "${1:-}" = "--ci" ]; then
    for target in "${!WHERE[@]}"; do run "$target"; done
    exit 0
fi
if [ $# -lt 2 ] || [ -z "${WHERE[$1]:-}" ]; then
    echo "usage: $0 TARGET SECONDS [SEED] | --ci   (targets: ${!WHERE[*]})" >&2
    exit 2
fi
run "$1" SLUICE_FUZZ_SECONDS="$2" ${3:+SLUICE_FUZZ_SEED=$3}
