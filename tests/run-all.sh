#!/usr/bin/env bash
# Runs every test of xenvcpu: the README's test command, and what CI runs.
#
#   bash tests/run-all.sh            # everything, including the Xen lab on 4.17 and 4.20 and
#                                    # the bigger lab (about 12 min from a clean clone)
#   XENVCPU_SKIP_LAB=1 bash tests/run-all.sh   # host checks and fuzzing only (says so loudly)
#
# The lab boots run single-threaded TCG: one host core each. So after the host checks (which
# use every core) two single-threaded jobs run at a time on this project's 2-core machines:
# the Xen 4.17 and Xen 4.20 labs together, then the bigger lab (4.17, lab.sh --scale) with
# the fuzzing. Each job's output is shown whole when it ends.
#
# It installs what it needs with apt (root, or sudo): libxen-dev and libxenmisc4.17, so
# the layout tests compare against the real Xen headers and the loader finds a real
# libxenctrl, g++ (libfuzzer-sys compiles libFuzzer for the fuzz step), and pkg-config
# (the C library's tests compile their C program with `pkg-config --cflags --libs`); the lab
# installs its own tools (qemu, busybox, cpio) and Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

install_packages() {
    local missing=()
    for pkg in libxen-dev libxenmisc4.17 gcc g++ pkg-config python3; do
        [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return
    step "apt-get install ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_packages

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build -p xenvcpu --no-default-features (the library alone: no clap, serde or simulator)"
cargo build -p xenvcpu --no-default-features

step "cargo test --workspace (host tests; lab tests show as ignored here and run in the lab)"
cargo test --workspace

step "cargo doc --no-deps (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

step "cargo build --benches (every bench compiles and links; lab.sh bench builds them optimized)"
cargo build --workspace --benches

step "cargo publish --workspace --dry-run (both crates package and build from their packages)"
# cargo verifies each package against the others unpacked from a local registry under
# $CARGO_HOME/registry/src/-<hash>/, and reuses an unpacked copy of the same name and
# version from an earlier run even when the sources changed: remove ours first.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/xen-sys-* "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/xenvcpu-*
cargo publish --workspace --dry-run --allow-dirty --quiet

logs=$(mktemp -d "${TMPDIR:-/tmp}/xenvcpu-run-all.XXXXXX")
trap 'rm -rf "$logs"' EXIT
status=0

# together NAME1 FUNCTION1 NAME2 FUNCTION2: runs both functions at once, each into its own
# log, then shows each log whole with its exit status; a failure of either fails the run.
together() {
    local pids=() names=("$1" "$3") rc i
    "$2" >"$logs/0.log" 2>&1 &
    pids+=($!)
    "$4" >"$logs/1.log" 2>&1 &
    pids+=($!)
    for i in 0 1; do
        rc=0
        wait "${pids[$i]}" || rc=$?
        step "${names[$i]}: exit $rc"
        cat "$logs/$i.log"
        [ "$rc" -eq 0 ] || status=1
    done
}

fuzz() { bash tests/fuzz/run.sh 10; }

if [ "${XENVCPU_SKIP_LAB:-0}" = 1 ]; then
    step "fuzz: each target 10 s"
    fuzz || status=1
    step "SKIPPED: the Xen lab (XENVCPU_SKIP_LAB=1): nothing that needs Xen was tested"
    exit "$status"
fi

step "layout tests against Xen 4.20's headers (Debian 13's libxen-dev, unpacked, not installed)"
headers=$(bash tests/lab/lab.sh --xen 4.20 headers)
XENVCPU_XEN_HEADERS_ROOT=$headers cargo test -p xen-sys --test layout

lab417() { bash tests/lab/lab.sh test; }
lab420() { bash tests/lab/lab.sh --xen 4.20 test; }
scale() { bash tests/lab/lab.sh --scale test; }

step "the Xen lab, in-lab tests: real Xen 4.17 (Debian 12) and real Xen 4.20 (Debian 13) in QEMU, at once"
together "the Xen lab on Xen 4.17" lab417 "the Xen lab on Xen 4.20" lab420

step "the bigger lab (Xen 4.17, lab.sh --scale: 11 guests, 64 vCPUs in one) and fuzzing (each target 10 s), at once"
together "the bigger lab" scale "fuzz" fuzz
exit "$status"
