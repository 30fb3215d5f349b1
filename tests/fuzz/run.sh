#!/usr/bin/env bash
# Builds the fuzz targets on stable Rust (no nightly, no cargo-fuzz) and runs each one.
#
#   bash tests/fuzz/run.sh                 # every target, 25 s each (what CI runs)
#   bash tests/fuzz/run.sh 600             # every target, 10 min each
#   bash tests/fuzz/run.sh 60 elf_soname   # some targets
#
# libfuzzer-sys compiles libFuzzer with the C++ compiler; the coverage instrumentation
# libFuzzer needs is enabled with stable rustc flags (below). Each target runs on its
# working corpus tests/fuzz/corpus/<target>/ (kept between runs, not committed) plus the
# committed seeds tests/fuzz/seeds/<target>/. A crash, panic, timeout or memory blow-up
# writes its input to tests/fuzz/artifacts/<target>/ and makes this script exit non-zero
# after every target has run. Logs: tests/fuzz/target/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")"
fuzz_dir=$(pwd)

seconds=${1:-25}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi

all_targets=()
for file in fuzz_targets/*.rs; do
    name=${file#fuzz_targets/}
    all_targets+=("${name%.rs}")
done
if [ $# -gt 0 ]; then
    targets=("$@")
    for t in "${targets[@]}"; do
        [ -f "fuzz_targets/$t.rs" ] || { echo "unknown target '$t' (have: ${all_targets[*]})" >&2; exit 2; }
    done
else
    targets=("${all_targets[@]}")
fi

# Instrumentation: sancov with inline 8-bit counters and a PC table (libFuzzer's
# coverage), comparison tracing (so it can solve magic numbers), and the checks of a
# debug build (overflow, debug_assert) in an optimized one. The flags go to the target
# only (--target), not to build scripts and proc macros, which have no libFuzzer to link.
host=$(rustc -vV | sed -n 's/^host: //p')
unset CARGO_ENCODED_RUSTFLAGS
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="$fuzz_dir/target"

echo "building ${#targets[@]} fuzz target(s) for $host"
build_args=()
for t in "${targets[@]}"; do
    build_args+=(--bin "$t")
done
cargo build --release --manifest-path "$fuzz_dir/Cargo.toml" --target "$host" "${build_args[@]}"
bin_dir="$CARGO_TARGET_DIR/$host/release"
mkdir -p "$CARGO_TARGET_DIR/logs"

# Extra seeds that are not committed: small shared objects of the system, for the ELF
# reader (copied into its working corpus; absent files are skipped).
seed_elf() {
    local lib
    for lib in /lib/x86_64-linux-gnu/libdl.so.2 /lib/x86_64-linux-gnu/libutil.so.1 \
        /usr/lib/x86_64-linux-gnu/libdl.so.2 /usr/lib/x86_64-linux-gnu/libutil.so.1; do
        if [ -f "$lib" ] && [ ! -e "$1/system-${lib##*/}" ]; then
            cp "$lib" "$1/system-${lib##*/}"
        fi
    done
}

failed=()
for t in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$t"
    seeds="$fuzz_dir/seeds/$t"
    artifacts="$fuzz_dir/artifacts/$t"
    log="$CARGO_TARGET_DIR/logs/$t.log"
    mkdir -p "$corpus" "$seeds" "$artifacts"
    if [ "$t" = elf_soname ]; then seed_elf "$corpus"; fi
    echo "fuzzing $t for ${seconds}s"
    rc=0
    "$bin_dir/$t" -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$artifacts/" "$corpus" "$seeds" >"$log" 2>&1 || rc=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov_start=$(sed -n 's/.*INITED cov: \([0-9]*\).*/\1/p' "$log")
    cov_end=$(sed -n 's/.*DONE *cov: \([0-9]*\).*/\1/p' "$log")
    shopt -s nullglob
    units=("$corpus"/*)
    shopt -u nullglob
    printf '%-18s %s: %s executions, corpus %d files, cov %s -> %s\n' "$t" \
        "$([ "$rc" -eq 0 ] && echo ok || echo "FAILED (exit $rc)")" "${execs:-?}" "${#units[@]}" \
        "${cov_start:-?}" "${cov_end:-?}"
    if [ "$rc" -ne 0 ]; then
        failed+=("$t")
        echo "---- last lines of $log"
        tail -n 40 "$log"
        echo "---- artifacts in $artifacts:"
        ls -l "$artifacts"
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing FAILED for: ${failed[*]} (inputs in tests/fuzz/artifacts/<target>/; reproduce with" \
        "$bin_dir/<target> <file>; each one becomes a regression test)" >&2
    exit 1
fi
echo "fuzzing: no crash in ${#targets[@]} target(s)"
