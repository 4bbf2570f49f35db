#!/usr/bin/env bash
# Runs one fuzz target (fuzz/harness.rs) for a while, or all of them at their CI budget.
#   scripts/fuzz.sh TARGET SECONDS [SEED]   e.g. scripts/fuzz.sh record_batches 3600
#   scripts/fuzz.sh --ci                    every target at its CI budget (what `cargo test` runs)
#   scripts/fuzz.sh afl TARGET SECONDS      coverage-guided: AFL++ runs the same target (below)
#   scripts/fuzz.sh afl-keep TARGET         redo the corpus and crash step of the last AFL++ run
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

# Coverage-guided run of one target with AFL++ through afl.rs (stable Rust): the driver in
# fuzz/afl/src/bin/TARGET.rs runs the same target code as the cargo test (fuzz/targets/), with
# the same heap bound. Installs cargo-afl if missing (`cargo install` builds the AFL++ it
# bundles, 4.40c: it needs a C compiler and make; a distribution's afl++ is not used, and must
# not come first: Debian 12's 4.04c afl-showmap lacks options the bundled afl-cmin passes),
# builds the drivers instrumented (`cargo afl build --release`, into target/afl/), writes the
# seeds (the corpus plus the target's built seeds) and runs afl-fuzz for SECONDS in
# target/fuzz/afl/TARGET/ (its fuzzer_stats are printed at the end). Then `keep`: the queue
# entries AFL++ found, minimized with afl-cmin against the seeds, those that reached new edges
# (+cov) first and smallest first, up to AFL_CORPUS_ADD_BYTES_MAX (96 KiB) and
# AFL_CORPUS_ADD_FILES_MAX (256) a run, go into fuzz/corpus/TARGET/ as afl-*.bin (the cargo
# tests and CI replay them; commit them). A crash or hang is copied to
# target/fuzz/crashes/TARGET/ with the driver's panic message, and the run fails.
# `scripts/fuzz.sh afl-keep TARGET` redoes the keep step of the last run. Niceness: NICE
# (default 15); one target at a time.
CARGO_AFL_VERSION=0.18.2
AFL_CORPUS_ADD_BYTES_MAX=${AFL_CORPUS_ADD_BYTES_MAX:-98304}
AFL_CORPUS_ADD_FILES_MAX=${AFL_CORPUS_ADD_FILES_MAX:-256}
AFL_TARGETS="request_frames broker_dispatch consumer_offsets record_batches log_recovery raft_rpc raft_log"
NICE_CMD=(nice -n "${NICE:-15}")

afl_setup() { # target: builds the driver, sets DRIVER, WORK, AFL_TIMEOUT and the AFL++ tools' PATH
    local target=$1 root=$PWD
    export CARGO_INCREMENTAL=0
    if ! cargo afl --version 2>/dev/null | grep -q "$CARGO_AFL_VERSION"; then
        echo "installing cargo-afl $CARGO_AFL_VERSION (builds AFL++)" >&2
        "${NICE_CMD[@]}" cargo install --locked --force cargo-afl --version "$CARGO_AFL_VERSION"
    fi
    (cd fuzz/afl && CARGO_TARGET_DIR="$root/target/afl" "${NICE_CMD[@]}" cargo afl build --release --locked --bin "$target")
    # afl-cmin runs afl-showmap from PATH: the bundled one, of this rustc's build. (The
    # bundled Python afl-cmin, `cargo afl cmin`, found no tuples in these drivers' traces here;
    # its shell version, afl-cmin.bash, works.)
    local bin
    bin=$(ls -d "${XDG_DATA_HOME:-$HOME/.local/share}"/afl.rs/rustc-"$(rustc -V | cut -d' ' -f2)"-*/afl.rs-"$CARGO_AFL_VERSION"/afl/bin | head -n 1)
    [ -x "$bin/afl-showmap" ] || { echo "no afl-showmap of cargo-afl $CARGO_AFL_VERSION found" >&2; exit 1; }
    export PATH="$bin:$PATH" AFL_BIN=$bin
    DRIVER=$root/target/afl/release/$target WORK=$root/target/fuzz/afl/$target
    # broker_dispatch runs a broker in the driver: its data directory, and a timeout above the
    # broker's start and the target's READ_TIMEOUT (3 s) for inputs it holds open.
    AFL_TIMEOUT=()
    if [ "$target" = broker_dispatch ]; then
        export SLUICE_AFL_DATA_DIR=$WORK/broker-data
        AFL_TIMEOUT=(-t 10000)
    fi
}

afl_fuzz() { # target, seconds
    local target=$1 seconds=$2
    rm -rf "$WORK"
    mkdir -p "$WORK"
    "$DRIVER" --write-seeds "$WORK/seeds"
    echo "afl $target: $(ls "$WORK/seeds" | wc -l) seeds, ${seconds} s; log in $WORK/afl-fuzz.log" >&2
    AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1 \
        "${NICE_CMD[@]}" cargo afl fuzz -i "$WORK/seeds" -o "$WORK/out" "${AFL_TIMEOUT[@]}" -V "$seconds" -- "$DRIVER" \
        >"$WORK/afl-fuzz.log" 2>&1 || { tail -n 30 "$WORK/afl-fuzz.log" >&2; exit 1; }
    grep -E '^(afl_version|run_time|execs_done|execs_per_sec|corpus_count|corpus_found|edges_found|total_edges|bitmap_cvg|stability|saved_crashes|saved_hangs) ' \
        "$WORK/out/default/fuzzer_stats" >&2
}

afl_keep() { # target
    local target=$1 found=$WORK/out/default
    [ -d "$found/queue" ] || { echo "no AFL++ run of $target in $WORK" >&2; exit 1; }
    # New queue entries (not the seeds AFL++ imported), minimized together with the seeds.
    # Not for broker_dispatch: afl-cmin would start a broker per input (minutes), and its
    # inputs are request frames, which request_frames' corpus covers.
    rm -rf "$WORK/candidates" "$WORK/minimized"
    mkdir -p "$WORK/minimized"
    if [ "$target" != broker_dispatch ]; then
        mkdir -p "$WORK/candidates"
        cp "$WORK/seeds/"* "$WORK/candidates/"
        find "$found/queue" -maxdepth 1 -type f -name 'id:*' ! -name '*orig:*' -exec cp {} "$WORK/candidates/" \;
        AFL_SKIP_CPUFREQ=1 "${NICE_CMD[@]}" "$AFL_BIN/afl-cmin.bash" -i "$WORK/candidates" -o "$WORK/minimized" "${AFL_TIMEOUT[@]}" \
            -- "$DRIVER" >"$WORK/afl-cmin.log" 2>&1 || { tail -n 20 "$WORK/afl-cmin.log" >&2; exit 1; }
    fi
    local added=0 files=0 file bytes name
    while read -r bytes file; do
        [ $((added + bytes)) -le "$AFL_CORPUS_ADD_BYTES_MAX" ] && [ "$files" -lt "$AFL_CORPUS_ADD_FILES_MAX" ] || break
        name=afl-$(sha1sum "$file" | cut -c1-12).bin
        [ -e "fuzz/corpus/$target/$name" ] && continue
        mkdir -p "fuzz/corpus/$target"
        cp "$file" "fuzz/corpus/$target/$name"
        added=$((added + bytes)) files=$((files + 1))
    done < <(find "$WORK/minimized" -maxdepth 1 -type f -name 'id:*' ! -name '*orig:*' -printf '%s %p\n' |
        awk '{ print ($2 ~ /\+cov/ ? 0 : 1), $0 }' | sort -k1,1n -k2,2n | cut -d' ' -f2-)
    echo "afl $target: $(find "$WORK/minimized" -maxdepth 1 -type f | wc -l) inputs after afl-cmin; $files new ($added bytes) added to fuzz/corpus/$target/ (now $(ls "fuzz/corpus/$target" 2>/dev/null | wc -l) files, $(cat "fuzz/corpus/$target"/* 2>/dev/null | wc -c) bytes)" >&2

    local failed=0 crash
    for crash in "$found"/crashes/id:* "$found"/hangs/id:*; do
        [ -e "$crash" ] || continue
        mkdir -p "target/fuzz/crashes/$target"
        name=target/fuzz/crashes/$target/afl-$(sha1sum "$crash" | cut -c1-12)
        cp "$crash" "$name"
        echo "afl $target: $(basename "$(dirname "$crash")") input saved to $name; the driver says:" >&2
        timeout 20 "$DRIVER" <"$crash" 2>&1 | grep -v '^ *[0-9]*: \|^  *at ' | tail -n 5 >&2 || true
        failed=1
    done
    return $failed
}

if [ "${1:-}" = "afl" ] || [ "${1:-}" = "afl-keep" ]; then
    if [ $# -ne $([ "$1" = afl ] && echo 3 || echo 2) ] || ! [[ " $AFL_TARGETS " == *" $2 "* ]]; then
        echo "usage: $0 afl TARGET SECONDS | $0 afl-keep TARGET   (targets: $AFL_TARGETS)" >&2
        exit 2
    fi
    afl_setup "$2"
    [ "$1" = afl-keep ] || afl_fuzz "$2" "$3"
    afl_keep "$2"
    exit $?
fi
if [ "${1:-}" = "--ci" ]; then
    for target in "${!WHERE[@]}"; do run "$target"; done
    exit 0
fi
if [ $# -lt 2 ] || [ -z "${WHERE[$1]:-}" ]; then
    echo "usage: $0 TARGET SECONDS [SEED] | --ci   (targets: ${!WHERE[*]})" >&2
    exit 2
fi
run "$1" SLUICE_FUZZ_SECONDS="$2" ${3:+SLUICE_FUZZ_SEED=$3}
