#!/usr/bin/env bash
# The xenvcpu lab: a real Xen 4.17 + Debian PV dom0 (+ a PV guest) booted in QEMU with TCG,
# running our CLI or our in-lab tests inside dom0. See tests/lab/README.md.
#
#   tests/lab/lab.sh run [--no-guest] [--] CMD [ARGS...]   run CMD in dom0, print its output,
#                                                          exit with its exit code
#   tests/lab/lab.sh test                                  run the in-lab test suite
#   tests/lab/lab.sh --scale test                          the bigger lab: the scale guests
#                                                          (a 64-vCPU guest, small ones) and
#                                                          only the tests of lab_scale.rs
#   tests/lab/lab.sh bench                                 run benches/affinity.rs and
#                                                          benches/scale.rs in dom0, in the
#                                                          bigger lab
#   tests/lab/lab.sh --xen 4.20 MODE ...                   the same on Debian 13's Xen 4.20
#   tests/lab/lab.sh --xen 4.20 headers                    fetch that release's libxen-dev,
#                                                          unpack it (never install), print
#                                                          the root it was unpacked to
#
# --xen 4.17 (the default): Debian 12's Xen 4.17 and 6.1 kernel, from the system's apt.
# --xen 4.20: Debian 13's Xen 4.20, 6.12 kernel and dom0 userspace (libc and every library
# the Xen tools and our binaries need, from the packages' Depends), through a private apt
# configuration under the cache that uses the system's Debian mirror.
#
# Exit status: run: the command's; test: 0 all passed, 1 some failed; 125: the lab failed
# (build, fetch, crash, timeout, missing end marker, guest not up).
#
# Environment: XENVCPU_LAB_CACHE (download cache, default ~/.cache/xenvcpu-lab),
# XENVCPU_LAB_TIMEOUT (seconds for boot + run, 600), XENVCPU_LAB_CPUS (QEMU -smp, 4),
# XENVCPU_LAB_KEEP (non-empty: keep the work dir), XENVCPU_LAB_TCG (single|multi, single),
# XENVCPU_LAB_QEMU_CPU (QEMU -cpu, qemu64), CARGO_TARGET_DIR (honoured via cargo).
# XENVCPU_LAB_BENCH_FILTER (bench: criterion's filter for benches/scale.rs, e.g. 'list').
#
# Stages: host tools -> fetch (cached .debs, unpacked once per package-version set) ->
# cargo build -> initramfs (guest, dom0) -> boot (QEMU under `timeout`, serial log watched
# for markers printed by dom0-init.sh) -> report. Pass/fail comes only from serial-log
# markers: QEMU exits 0 even when dom0 crashed.
set -euo pipefail

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_SRC/../.." && pwd)
CACHE=${XENVCPU_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xenvcpu-lab}
TIMEOUT=${XENVCPU_LAB_TIMEOUT:-600}
QEMU_CPUS=${XENVCPU_LAB_CPUS:-4}
KEEP=${XENVCPU_LAB_KEEP:-}
# single: one host thread runs every vCPU. On the 2-core machines it boots 3-10x faster than
# multi (MTTCG) whenever anything else is running: no vCPU spins on a preempted lock holder.
TCG_THREAD=${XENVCPU_LAB_TCG:-single}
# qemu64, not max: with -cpu max, dom0 processes die now and then (~1 in 1000 execs while a
# guest runs) with a wrong FS base / stale TLS; with qemu64: none in 6400 (README: Known problems).
QEMU_CPU=${XENVCPU_LAB_QEMU_CPU:-qemu64}

GUEST_NAME=labguest # must match tests/lab/labguest.cfg
GUEST_CONSOLE=/var/log/xen/console/guest-$GUEST_NAME.log
GUEST_WAIT=300      # seconds dom0 waits for the guest's first report
# The bigger lab (--scale, bench): more guests, made from labguest.cfg by dom0-init.sh, each
# NAME:MAXVCPUS:VCPUS:MEMORY_MB:run|paused. `paused` ones are made with `xl create -p` (their
# vCPUs and xenstore keys exist, nothing boots: cheap under TCG); `run` ones boot and report
# like labguest. scale1/scale16/labguest/scale64 are the vCPU sizes of the cost curve (1, 4,
# 16, 64); labguest and fleet2..fleet8 its eight 4-vCPU domains.
SCALE_GUESTS="scale64:64:8:192:run scale16:16:4:96:paused scale1:1:1:96:paused"
SCALE_GUESTS+=" fleet2:4:2:96:paused fleet3:4:2:96:paused fleet4:4:2:96:paused fleet5:4:2:96:paused"
SCALE_GUESTS+=" fleet6:4:2:96:paused fleet7:4:2:96:paused fleet8:4:2:96:paused"
DOM0_MODULES=(xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc) # insmod order
XEN_PACKAGES=(xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils
    libxenmisc4.17 libxenstore4 libxencall1 libxendevicemodel1 libxenevtchn1
    libxenforeignmemory1 libxengnttab1 libxenhypfs1 libxentoolcore1 libxentoollog1 libyajl2)
# --xen 4.20: the packages asked for by name; the libraries they need (libc included) are
# added from their Depends (see resolve_trixie_closure). The kernel is linux-image-amd64's.
TRIXIE_ROOTS=(xen-hypervisor-4.20-amd64 xen-utils-4.20 xen-utils-common xenstore-utils
    libxenmisc4.20)
# smap=0 smep=0: with -cpu max dom0 dies at once under TCG without them; bootscrub=0 saves time.
XEN_CMDLINE="console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all bootscrub=0"
XEN_CMDLINE+=" dom0_mem=1024M,max:1024M dom0_max_vcpus=$QEMU_CPUS smap=0 smep=0"
DOM0_CMDLINE="console=hvc0 earlyprintk=xen rdinit=/init"
CRASH_RE='Dom0 crashed|Panic on CPU|Kernel panic|Xen BUG at|FATAL PAGE FAULT|BUG: unable to handle|Attempted to kill init'
# A dom0 process killed by the kernel (see README: a known Xen-under-TCG fault while a guest
# runs). Not a failure by itself: a test it hits fails on its own; this names the cause.
SEGV_RE='segfault at [0-9a-f]+ ip|general protection fault ip:'

T0=${EPOCHREALTIME//[.,]/}
elapsed_ds() { echo $(( (${EPOCHREALTIME//[.,]/} - T0) / 100000 )); } # tenths of a second
fmt_ds() { printf '%d.%d' $(($1 / 10)) $(($1 % 10)); }
say() { printf '[lab %6ss] %s\n' "$(fmt_ds "$(elapsed_ds)")" "$*" >&2; }
die() { say "error: $*"; exit 125; }

# Under pipefail, a reader that stops early (head, grep -q, awk's exit) kills a writer
# still writing with SIGPIPE, and the pipeline fails with 141 depending on timing. So no
# pipeline here has a reader that stops before the end of its input.

# first_match GLOB: the first path GLOB matches, or nothing.
first_match() {
    local m=()
    mapfile -t m < <(compgen -G "$1")
    printf '%s' "${m[0]-}"
}

# usage STATUS: print the header of this file (up to `set -e`) and exit.
usage() {
    sed -n '2,/^set -e/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit "$1"
}

# --------------------------------------------------------------------------------- headers
# The release's libxen-dev (its C headers and the libxenctrl.so link naming the release),
# downloaded like the lab's packages and unpacked under PKG_CACHE/headers-VERSION, which is
# printed: the layout tests compare xen-sys with it (XENVCPU_XEN_HEADERS_ROOT).
fetch_headers() {
    local ver root deb update=apt_update_once
    if [[ $XEN_REL == 4.20 ]]; then
        trixie_apt_config
        update=trixie_update_once
        [[ -n $(first_match "$PKG_CACHE/apt/state/lists/*_Packages*") ]] || trixie_update_once
    fi
    ver=$(LC_ALL=C apt-cache "${APT_OPTS[@]}" policy libxen-dev | awk '/Candidate:/ { v = $2 } END { print v }')
    if [[ -z $ver || $ver == "(none)" ]]; then
        "$update" || die "headers: no libxen-dev candidate"
        ver=$(LC_ALL=C apt-cache "${APT_OPTS[@]}" policy libxen-dev | awk '/Candidate:/ { v = $2 } END { print v }')
    fi
    [[ $ver == "$XEN_REL".* ]] || die "headers: libxen-dev $ver is not Xen $XEN_REL"
    root=$PKG_CACHE/headers-${ver//:/%3a}
    if [[ ! -e $root/complete ]]; then
        mkdir -p "$PKG_CACHE/debs"
        deb=$(first_match "$(deb_glob "libxen-dev=$ver")")
        if [[ -z $deb ]]; then
            (cd "$PKG_CACHE/debs" && apt-get download -q "${APT_OPTS[@]}" -o APT::Sandbox::User="$(id -un)" \
                "libxen-dev=$ver") >"$WORK/apt-download.log" 2>&1 ||
                { tail -n 20 "$WORK/apt-download.log" >&2; die "headers: apt-get download libxen-dev=$ver failed"; }
            deb=$(first_match "$(deb_glob "libxen-dev=$ver")")
        fi
        rm -rf "$root"
        mkdir -p "$root"
        dpkg-deb -x "$deb" "$root"
        [[ -e $root/usr/include/xenctrl.h ]] || die "headers: $deb has no usr/include/xenctrl.h"
        touch "$root/complete"
    fi
    say "headers: libxen-dev $ver unpacked in $root"
    echo "$root"
}

# ---------------------------------------------------------------------------- host tools
as_root() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }

# The package lists may be missing (new machine) or stale (a version gone from the mirror):
# refresh them once per run when apt cannot find what we ask for.
APT_UPDATED=
apt_update_once() {
    [[ -z $APT_UPDATED ]] || return 1
    APT_UPDATED=1
    say "apt: refreshing the package lists (apt-get update)"
    as_root apt-get update -q >"$WORK/apt-update.log" 2>&1 ||
        { tail -n 20 "$WORK/apt-update.log" >&2; die "apt-get update failed"; }
}

ensure_host_tools() {
    local need=() extra=() installed cand
    command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
    command -v busybox >/dev/null || need+=(busybox-static)
    command -v cpio >/dev/null || need+=(cpio)
    ((${#need[@]})) || return 0
    [[ -n $(apt-cache policy "${need[@]}" | awk '$1 == "Candidate:" && $2 != "(none)"') ]] ||
        apt_update_once
    if [[ " ${need[*]} " == *" qemu-system-x86 "* ]]; then
        # A newer qemu-utils (backports) Breaks the distribution's qemu-system-common, and
        # apt would remove it: move it to the same version instead, so qemu-img stays.
        installed=$(dpkg-query -W -f='${Status} ${Version}' qemu-utils 2>/dev/null |
            awk '$3 == "installed" { print $4 }') || true
        cand=$(apt-cache policy qemu-system-x86 | awk '$1 == "Candidate:" { print $2 }')
        if [[ -n $installed && $installed != "$cand" ]]; then
            extra=(--allow-downgrades "qemu-utils=$cand")
            say "host tools: qemu-utils $installed -> $cand (to match qemu-system-x86)"
        fi
    fi
    say "host tools: installing ${need[*]}"
    until as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=300 "${need[@]}" "${extra[@]}" >"$WORK/apt-install.log" 2>&1; do
        apt_update_once || { tail -n 20 "$WORK/apt-install.log" >&2; die "apt-get install ${need[*]} failed"; }
    done
}

# --------------------------------------------------------------------------------- fetch
# Sets XEN_ROOT (unpacked Xen packages; with --xen 4.20 also dom0's libraries), KERNEL_ROOT
# (unpacked kernel package), XEN_IMAGE.
fetch_packages() {
    if [[ $XEN_REL == 4.17 ]]; then fetch_bookworm; else fetch_trixie; fi
}

# --xen 4.17: the system's apt (Debian 12), the hand list XEN_PACKAGES and the kernel.
fetch_bookworm() {
    local kernel pins=()
    kernel=$(apt-cache depends linux-image-amd64 |
        awk '!k && $1 == "Depends:" && $2 ~ /^linux-image-/ { k = $2 } END { print k }')
    if [[ -z $kernel ]]; then
        apt_update_once || die "fetch: 'apt-cache depends linux-image-amd64' names no kernel"
        fetch_bookworm
        return
    fi
    mapfile -t pins < <(LC_ALL=C apt-cache policy "${XEN_PACKAGES[@]}" "$kernel" |
        awk '/^[^ ].*:$/ { p = substr($0, 1, length($0) - 1) }
             $1 == "Candidate:" && $2 != "(none)" { print p "=" $2 }')
    if ((${#pins[@]} != ${#XEN_PACKAGES[@]} + 1)); then
        apt_update_once || die "fetch: no candidate version for some of: ${XEN_PACKAGES[*]} $kernel"
        fetch_bookworm
        return
    fi
    fetch_and_unpack apt_update_once fetch_bookworm "$kernel" "${pins[@]}"
}

# fetch_and_unpack UPDATE RETRY KERNEL NAME=VERSION...: download the missing .debs (with
# apt-get and APT_OPTS) into PKG_CACHE/debs and unpack them (KERNEL's apart) into
# root-<hash of the versions>, unless done before. When the download fails it runs UPDATE
# (refresh the lists once) and then RETRY (the caller, to resolve the versions anew).
fetch_and_unpack() {
    local update=$1 retry=$2 kernel=$3; shift 3
    local pins=("$@") missing=() p key root lock deb xen_ver='' kernel_ver=''
    key=$(printf '%s\n' "${pins[@]}" | sha256sum | cut -c1-16)
    root=$PKG_CACHE/root-$key
    XEN_ROOT=$root/xen KERNEL_ROOT=$root/kernel XEN_IMAGE=$root/xen.multiboot
    for p in "${pins[@]}"; do
        case ${p%%=*} in
        "xen-hypervisor-$XEN_REL-amd64") xen_ver=${p#*=} ;;
        "$kernel") kernel_ver=${p#*=} ;;
        esac
    done
    local what="xen $xen_ver, $kernel $kernel_ver"
    [[ $XEN_REL == 4.17 ]] || what+=", ${#pins[@]} packages"

    mkdir -p "$PKG_CACHE/debs"
    exec {lock}>"$PKG_CACHE/lock"
    flock "$lock" # another run may be filling the cache
    if [[ -e $root/complete ]]; then
        say "fetch: cached ($what)"
        exec {lock}>&-
        return
    fi
    for p in "${pins[@]}"; do
        compgen -G "$(deb_glob "$p")" >/dev/null || missing+=("$p")
    done
    if ((${#missing[@]})); then
        say "fetch: downloading ${#missing[@]} packages"
        if ! (cd "$PKG_CACHE/debs" &&
            apt-get download -q "${APT_OPTS[@]}" -o APT::Sandbox::User="$(id -un)" "${missing[@]}") \
            >"$WORK/apt-download.log" 2>&1; then
            exec {lock}>&-
            "$update" || { tail -n 20 "$WORK/apt-download.log" >&2; die "fetch: apt-get download failed"; }
            "$retry"
            return
        fi
    fi
    say "fetch: unpacking ($what)"
    rm -rf "$root" "$root.tmp"
    mkdir -p "$root.tmp/xen" "$root.tmp/kernel"
    for p in "${pins[@]}"; do
        deb=$(first_match "$(deb_glob "$p")")
        if [[ ${p%%=*} == "$kernel" ]]; then
            dpkg-deb -x "$deb" "$root.tmp/kernel"
        else
            dpkg-deb -x "$deb" "$root.tmp/xen"
        fi
    done
    zcat "$root.tmp/xen/boot/xen-$XEN_REL-amd64.gz" >"$root.tmp/xen.multiboot" # QEMU needs it plain
    printf '%s\n' "${pins[@]}" >"$root.tmp/packages"
    touch "$root.tmp/complete"
    mv "$root.tmp" "$root"
    prune_cache "$root" "${pins[@]}"
    exec {lock}>&-
}

# deb_glob NAME=VERSION: the file name pattern `apt-get download` gives that package.
deb_glob() {
    local name=${1%%=*} ver=${1#*=}
    echo "$PKG_CACHE/debs/${name}_${ver//:/%3a}_*.deb"
}

# Drop unpacked roots and .debs of other package versions.
prune_cache() {
    local keep=$1 d f p; shift
    for d in "$PKG_CACHE"/root-*; do [[ $d == "$keep" ]] || rm -rf "$d"; done
    for f in "$PKG_CACHE"/debs/*.deb; do
        for p in "$@"; do
            [[ $f == $(deb_glob "$p") ]] && continue 2
        done
        rm -f "$f"
    done
}

# --xen 4.20: Debian 13 "trixie" through a private apt configuration under PKG_CACHE/apt
# (its own sources.list, lists, archive cache and an empty dpkg status, so that nothing of
# the system's apt state is read or changed), on the Debian mirror the system's own
# sources use. Sets APT_OPTS.
trixie_apt_config() {
    local d=$PKG_CACHE/apt src uri keyring
    src=$(system_debian_source)
    [[ -n $src ]] || die "fetch: found no Debian mirror in the system's apt sources (a 'deb' entry for $(os_codename))"
    uri=${src%%$'\t'*} keyring=${src#*$'\t'}
    [[ $keyring == /* && -r $keyring ]] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    mkdir -p "$d/state/lists/partial" "$d/cache/archives/partial"
    [[ -e $d/status ]] || : >"$d/status"
    printf 'deb [signed-by=%s] %s trixie main\n' "$keyring" "$uri" >"$d/sources.list"
    APT_OPTS=(-o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State=$d/state" -o "Dir::State::status=$d/status" -o "Dir::Cache=$d/cache"
        -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null)
}

os_codename() { (. /etc/os-release && echo "${VERSION_CODENAME:-}"); }

# system_debian_source: "URI<tab>KEYRING" of the first `deb` source of the system's own
# release in /etc/apt (deb822 .sources first, then one-line .list), or nothing. KEYRING is
# its Signed-By when that is a file, else empty.
system_debian_source() {
    local codename f found=()
    codename=$(os_codename)
    [[ -n $codename ]] || return 0
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -e $f ]] || continue
        mapfile -t -O "${#found[@]}" found < <(awk -v c="$codename" '
            function flush(  n, i, s, u) {
                if (types ~ /(^| )deb( |$)/) {
                    n = split(suites, s, " ")
                    for (i = 1; i <= n; i++) if (s[i] == c) { split(uris, u, " "); print u[1] "\t" signed; break }
                }
                types = uris = suites = signed = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^Types:/ { types = substr($0, 7) }
            /^URIs:/ { uris = substr($0, 6) }
            /^Suites:/ { suites = substr($0, 8) }
            /^Signed-By:/ { signed = $2 }
            END { flush() }' "$f")
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -e $f ]] || continue
        mapfile -t -O "${#found[@]}" found < <(awk -v c="$codename" '
            $1 != "deb" { next }
            { i = 2; signed = "" }
            $2 ~ /^\[/ {
                for (; i <= NF; i++) {
                    if ($i ~ /^\[?signed-by=/) { signed = $i; sub(/^\[?signed-by=/, "", signed); sub(/\]$/, "", signed) }
                    if ($i ~ /\]$/) { i++; break }
                }
            }
            $(i + 1) == c { print $i "\t" signed }' "$f")
    done
    ((${#found[@]})) && printf '%s\n' "${found[0]}"
    return 0
}

TRIXIE_UPDATED=
trixie_update_once() {
    [[ -z $TRIXIE_UPDATED ]] || return 1
    TRIXIE_UPDATED=1
    say "apt: refreshing trixie's package lists (private apt configuration, the system's Debian mirror)"
    apt-get update -q "${APT_OPTS[@]}" -o APT::Sandbox::User="$(id -un)" >"$WORK/apt-update-trixie.log" 2>&1 ||
        { tail -n 20 "$WORK/apt-update-trixie.log" >&2; die "fetch: cannot reach Debian 13 (trixie) through the system's Debian mirror: apt-get update failed"; }
}

# --xen 4.20: the hypervisor, the Xen tools and libxenctrl (TRIXIE_ROOTS), every library
# they need (resolve_trixie_closure), and linux-image-amd64's kernel, all from trixie.
fetch_trixie() {
    local kernel kver closure=() r
    trixie_apt_config
    [[ -n $(first_match "$PKG_CACHE/apt/state/lists/*_Packages*") ]] || trixie_update_once || true
    kernel=$(apt-cache "${APT_OPTS[@]}" depends linux-image-amd64 2>/dev/null |
        awk '!k && $1 == "Depends:" && $2 ~ /^linux-image-/ { k = $2 } END { print k }') || true
    kver=
    [[ -z $kernel ]] || kver=$(LC_ALL=C apt-cache "${APT_OPTS[@]}" policy "$kernel" |
        awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }')
    if [[ -z $kver ]]; then
        trixie_update_once || die "fetch: trixie's linux-image-amd64 names no kernel"
        fetch_trixie
        return
    fi
    mapfile -t closure < <(resolve_trixie_closure)
    for r in "${TRIXIE_ROOTS[@]}"; do
        [[ " ${closure[*]} " == *" $r="* ]] && continue
        trixie_update_once || die "fetch: trixie has no $r"
        fetch_trixie
        return
    done
    fetch_and_unpack trixie_update_once fetch_trixie "$kernel" "${closure[@]}" "$kernel=$kver"
}

# resolve_trixie_closure: NAME=VERSION (candidates) of TRIXIE_ROOTS and of every package
# of Section `libs` reached from them through Depends and Pre-Depends (first alternative),
# sorted. Other packages they depend on (python3, udev, ucf, ...) are not followed: dom0
# needs the binaries and the shared libraries, not the rest of a Debian system.
resolve_trixie_closure() {
    local -A seen=() root=()
    local queue=("${TRIXIE_ROOTS[@]}") batch n name ver section deps d out=() info
    for n in "${TRIXIE_ROOTS[@]}"; do root[$n]=1; done
    while ((${#queue[@]})); do
        batch=()
        for n in "${queue[@]}"; do
            [[ -n ${seen[$n]:-} ]] && continue
            seen[$n]=1
            batch+=("$n")
        done
        queue=()
        ((${#batch[@]})) || break
        info=$(LC_ALL=C apt-cache "${APT_OPTS[@]}" show --no-all-versions "${batch[@]}" 2>/dev/null) || true
        while IFS=$'\t' read -r name ver section deps; do
            [[ -n ${root[$name]:-} || ${section##*/} == libs ]] || continue
            out+=("$name=$ver")
            for d in $deps; do queue+=("$d"); done
        done < <(awk 'BEGIN { RS = ""; FS = "\n" }
            {
                name = ver = sec = deps = ""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^Package: /) name = substr($i, 10)
                    else if ($i ~ /^Version: /) ver = substr($i, 10)
                    else if ($i ~ /^Section: /) sec = substr($i, 10)
                    else if ($i ~ /^(Pre-)?Depends: /) {
                        line = $i; sub(/^[^:]*: /, "", line)
                        n = split(line, alts, ",")
                        for (j = 1; j <= n; j++) {
                            d = alts[j]; sub(/\|.*/, "", d); sub(/\(.*/, "", d); gsub(/[ \t]/, "", d); sub(/:.*/, "", d)
                            if (d != "") deps = deps " " d
                        }
                    }
                }
                if (name != "") print name "\t" ver "\t" sec "\t" deps
            }' <<<"$info")
    done
    printf '%s\n' "${out[@]}" | sort -u
}

# --------------------------------------------------------------------------------- build
# cargo_executables JSONFILE: the "executable" of every artifact built with profile.test.
cargo_executables() {
    grep '"reason":"compiler-artifact"' "$1" | grep '"profile":{[^}]*"test":true' |
        grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//'
}

# cargo_executable JSONFILE NAME_RE: the last "executable" of a built artifact whose file name
# is NAME_RE (an extended regex, whole name: `xenvcpu` is the binary, not its unit tests'
# `xenvcpu-<hash>`), or nothing.
cargo_executable() {
    grep '"reason":"compiler-artifact"' "$1" | grep -o '"executable":"[^"]*"' |
        sed 's/^"executable":"//; s/"$//' | grep -E "/$2\$" | tail -n 1 || true
}

# Sets XENVCPU_EXE and TEST_EXES (test binaries, only in test mode). run and bench use the
# release build of xenvcpu; test mode uses what `cargo test --workspace` builds (the dev
# profile: the test binaries and the xenvcpu they run, with overflow checks), so the lab
# reuses the host tests' build instead of compiling every test crate again optimized.
build_cargo() {
    local json=$WORK/cargo.json
    if [[ $MODE != test ]]; then
        say "build: cargo build --release --bin xenvcpu"
        (cd "$REPO" && cargo build --release --bin xenvcpu --message-format=json-render-diagnostics) >"$json" ||
            die "build: cargo build failed"
        XENVCPU_EXE=$(cargo_executable "$json" xenvcpu)
        [[ -x $XENVCPU_EXE ]] || die "build: cargo reported no xenvcpu executable"
    fi
    BENCH_EXE= SCALE_BENCH_EXE=
    if [[ -n ${BENCH:-} ]]; then
        say "build: cargo bench --bench affinity --bench scale --no-run"
        (cd "$REPO" && cargo bench --bench affinity --bench scale --no-run --message-format=json-render-diagnostics) >"$json" ||
            die "build: cargo bench --no-run failed"
        BENCH_EXE=$(cargo_executable "$json" 'affinity-[0-9a-f]+')
        SCALE_BENCH_EXE=$(cargo_executable "$json" 'scale-[0-9a-f]+')
        [[ -x $BENCH_EXE && -x $SCALE_BENCH_EXE ]] || die "build: cargo reported no affinity or scale bench executable"
    fi
    TEST_EXES=() CAPI_SO='' CAPI_TEST_EXE=''
    if [[ $MODE == test ]]; then
        say "build: cargo test --workspace --no-run"
        (cd "$REPO" && cargo test --workspace --no-run --message-format=json-render-diagnostics) >"$json" ||
            die "build: cargo test --no-run failed"
        XENVCPU_EXE=$(cargo_executable "$json" xenvcpu)
        [[ -x $XENVCPU_EXE ]] || die "build: cargo test --no-run reported no xenvcpu executable"
        # By name, the same order every run. lab_scale's tests need the scale guests: they
        # run only with --scale, and only they do.
        mapfile -t TEST_EXES < <(cargo_executables "$json" | awk -F/ -v scale="${SCALE:-0}" '
            { name = $NF; is_scale = name ~ /^lab_scale-[0-9a-f]+$/ }
            (scale == 1) == is_scale { print name "\t" $0 }' | sort | cut -f 2-)
        ((${#TEST_EXES[@]})) || die "build: no test binary to run${SCALE:+ (--scale: tests/lab_scale.rs)}"
        [[ -n $SCALE ]] || build_capi
    fi
    [[ $MODE != test ]] || list_expected
    say "build: done (xenvcpu + ${#TEST_EXES[@]} test binaries with lab tests)"
}

# build_capi: the C library (libxenvcpu.so, soname libxenvcpu.so.0) and the C test program
# tests/capi/capi_test.c compiled against it with the host's cc; capi's lab test runs the
# program in dom0 (/lab/bin/xenvcpu-capi-test), which finds the library by its soname.
# Sets CAPI_SO and CAPI_TEST_EXE.
build_capi() {
    local json=$WORK/cargo-capi.json linkdir=$WORK/capi-link
    say "build: cargo build -p xenvcpu-capi, cc tests/capi/capi_test.c"
    (cd "$REPO" && cargo build -p xenvcpu-capi --lib --message-format=json-render-diagnostics) >"$json" ||
        die "build: cargo build -p xenvcpu-capi failed"
    CAPI_SO=$(grep '"reason":"compiler-artifact"' "$json" | grep -o '"[^"]*/libxenvcpu\.so"' | tr -d '"' | tail -n 1 || true)
    [[ -f $CAPI_SO ]] || die "build: cargo reported no libxenvcpu.so"
    command -v cc >/dev/null || die "build: no cc to compile tests/capi/capi_test.c"
    mkdir -p "$linkdir"
    ln -sf "$CAPI_SO" "$linkdir/libxenvcpu.so"
    CAPI_TEST_EXE=$WORK/xenvcpu-capi-test
    cc -std=c11 -Wall -Wextra -Werror -O1 -I"$REPO/capi/include" -o "$CAPI_TEST_EXE" \
        "$REPO/tests/capi/capi_test.c" -L"$linkdir" -lxenvcpu -pthread >"$WORK/cc-capi.log" 2>&1 ||
        { cat "$WORK/cc-capi.log" >&2; die "build: cc tests/capi/capi_test.c failed"; }
}

# list_expected: $WORK/expected/<binary>, the lab tests each binary contains (the tests
# #[ignore]d on the host, from `--list --ignored` run here), and selfcheck's checks.
# report_test fails the run when any of them did not report.
list_expected() {
    local exe name with=()
    mkdir -p "$WORK/expected"
    for exe in "${TEST_EXES[@]}"; do
        name=${exe##*/}
        "$exe" --list --ignored >"$WORK/expected/$name.list" 2>"$WORK/expected/$name.err" ||
            die "build: $name --list --ignored failed: $(cat "$WORK/expected/$name.err")"
        sed -n 's/: test$//p' "$WORK/expected/$name.list" | sort >"$WORK/expected/$name"
        # A binary without lab tests (no #[ignore]d test) would run nothing in dom0.
        [[ -s $WORK/expected/$name ]] && with+=("$exe")
    done
    TEST_EXES=("${with[@]}")
    sed -n 's/^check \([A-Za-z0-9_]*\) .*/selfcheck::\1/p' "$LAB_SRC/selfcheck.sh" | sort >"$WORK/expected/selfcheck"
}

# ----------------------------------------------------------------------------- initramfs
# An empty merged-/usr tree with busybox and its applets.
make_skeleton() {
    local r=$1 bb applet
    mkdir -p "$r"/{usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,etc,proc,sys,dev,run,tmp,root,var/log,lab/bin}
    ln -s usr/bin "$r/bin"; ln -s usr/sbin "$r/sbin"; ln -s usr/lib "$r/lib"; ln -s usr/lib64 "$r/lib64"
    ln -s /run "$r/var/run"; ln -s /run/lock "$r/var/lock"
    chmod 1777 "$r/tmp"
    bb=$(command -v busybox)
    cp -L "$bb" "$r/usr/bin/busybox"
    for applet in $("$bb" --list-full); do
        applet=/usr/${applet#usr/}
        [[ -e $r$applet || -L $r$applet ]] || ln -s /usr/bin/busybox "$r$applet"
    done
}

# copy_shared_libs ROOT: copy into ROOT every shared library its ELF files need (as the
# host's ldd resolves them, looking first in ROOT's own library directories), plus
# libgcc_s.so.1, which glibc dlopens for pthread_cancel.
copy_shared_libs() {
    local r=$1 f lib libs=() missing deps dst
    local ld_path=$r/usr/lib/x86_64-linux-gnu:$r/usr/lib/xen-4.17/lib/x86_64-linux-gnu
    libs+=("$(ldconfig -p | awk '!f && $1 == "libgcc_s.so.1" && /x86-64/ { f = $NF } END { print f }')")
    while IFS= read -r -d '' f; do
        [[ $(head -c 4 "$f" | tr -d '\0') == $'\x7fELF' ]] || continue
        deps=$(LD_LIBRARY_PATH=$ld_path ldd "$f" 2>/dev/null) || continue # static
        missing=$(awk '/not found/ { print $1 }' <<<"$deps")
        [[ -z $missing ]] || say "initramfs: warning: ${f#"$r"} needs missing" "${missing//$'\n'/ }"
        mapfile -t -O "${#libs[@]}" libs < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 }
            $1 ~ /^\// { print $1 }' <<<"$deps")
    done < <(find "$r" -type f \( -perm -u+x -o -name '*.so*' \) -print0)
    for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
        [[ $lib == "$r"/* ]] && continue
        dst=$r/usr/${lib#/usr/} # merged /usr
        [[ -e $dst ]] || { mkdir -p "${dst%/*}"; cp -L "$lib" "$dst"; }
    done
    printf '%s\n' /usr/lib/x86_64-linux-gnu /usr/lib/xen-4.17/lib/x86_64-linux-gnu >"$r/etc/ld.so.conf"
    "$(command -v ldconfig || echo /sbin/ldconfig)" -r "$r"
}

# check_root_libs ROOT (--xen 4.20): dom0's libraries all come from trixie's packages,
# already in ROOT; nothing is copied from the host. Check with ROOT's own dynamic loader
# (trixie's, run here) that every ELF file in ROOT finds what it needs inside ROOT, and
# make ROOT's ld.so.cache.
check_root_libs() {
    local r=$1 f deps bad lddir=/usr/lib/x86_64-linux-gnu xendir=/usr/lib/xen-$XEN_REL/lib/x86_64-linux-gnu
    local ld=$r$lddir/ld-linux-x86-64.so.2
    [[ -x $ld ]] || die "initramfs: no dynamic loader in trixie's libc6 ($ld)"
    while IFS= read -r -d '' f; do
        [[ $(head -c 4 "$f" | tr -d '\0') == $'\x7fELF' ]] || continue
        deps=$("$ld" --library-path "$r$lddir:$r$xendir" --list "$f" 2>&1) || continue # static
        bad=$(awk -v r="$r" '/not found/ { print $1 }
            $2 == "=>" && $3 ~ /^\// && index($3, r "/") != 1 { print $1 " (only on the host)" }' <<<"$deps")
        [[ -z $bad ]] || say "initramfs: warning: ${f#"$r"} needs what trixie's packages do not bring:" "${bad//$'\n'/, }"
    done < <(find "$r" -type f \( -perm -u+x -o -name '*.so*' \) -print0)
    printf '%s\n' "$lddir" "$xendir" >"$r/etc/ld.so.conf"
    "$(command -v ldconfig || echo /sbin/ldconfig)" -r "$r"
}

# pack_cpio ROOT FILE: uncompressed newc archive (TCG would spend seconds in gunzip).
pack_cpio() {
    (cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$2"
}

build_guest_initramfs() {
    local r=$WORK/guest
    make_skeleton "$r"
    install -m 755 "$LAB_SRC/guest-init.sh" "$r/init"
    copy_shared_libs "$r"
    pack_cpio "$r" "$WORK/guest.cpio"
}

# slim SRC DST: copy an executable without its debug info (symbols kept: backtraces still
# name functions), or as it is where there is no `strip`.
slim() {
    if command -v strip >/dev/null; then
        strip --strip-debug -o "$2" "$1" || die "initramfs: strip $1 failed"
    else
        cp "$1" "$2"
    fi
}

build_dom0_initramfs() {
    local r=$WORK/dom0 m ko t
    make_skeleton "$r"
    # Xen userspace, from the unpacked packages (/usr/sbin/xl etc. are wrapper scripts:
    # PATH points at /usr/lib/xen-4.17/bin instead). With --xen 4.20 also libc and the
    # other libraries (trixie's; glibc's gconv modules left out) and the loader's link.
    local tree=(etc/xen usr/bin usr/lib/x86_64-linux-gnu "usr/lib/xen-$XEN_REL/bin"
        "usr/lib/xen-$XEN_REL/lib/x86_64-linux-gnu")
    [[ $XEN_REL == 4.17 ]] || tree+=(usr/lib64)
    (cd "$XEN_ROOT" && tar -cf - --exclude=usr/lib/x86_64-linux-gnu/gconv "${tree[@]}") |
        tar -C "$r" -xf - --keep-directory-symlink
    mkdir -p "$r/lib/modules"
    local kmods=$KERNEL_ROOT/lib/modules # Debian 13's kernel: /usr/lib/modules
    [[ -d $kmods ]] || kmods=$KERNEL_ROOT/usr/lib/modules
    for m in "${DOM0_MODULES[@]}"; do
        ko=$(find "$kmods" -name "$m.ko*" -print -quit)
        [[ -n $ko ]] || die "initramfs: module $m not in the kernel package"
        case $ko in
        *.xz) xz -dc "$ko" >"$r/lib/modules/$m.ko" ;;
        *.zst) zstd -qdc "$ko" >"$r/lib/modules/$m.ko" ;;
        *) cp "$ko" "$r/lib/modules/$m.ko" ;;
        esac
    done
    # The guest: dom0's kernel and the guest initramfs.
    cp "$GUEST_KERNEL" "$r/lab/vmlinux"
    cp "$WORK/guest.cpio" "$r/lab/guest-initrd"
    cp "$LAB_SRC/labguest.cfg" "$r/lab/labguest.cfg"
    # Ours: the CLI, the test binaries, the scripts, the job (debug info left out: dom0
    # unpacks all of it into RAM under TCG).
    slim "$XENVCPU_EXE" "$r/lab/bin/xenvcpu"
    [[ -z $BENCH_EXE ]] || cp "$BENCH_EXE" "$r/lab/bin/affinity-bench"
    [[ -z $SCALE_BENCH_EXE ]] || cp "$SCALE_BENCH_EXE" "$r/lab/bin/scale-bench"
    # The C library, by its soname in dom0's library directory (ldconfig caches it), and
    # the C test program (test mode).
    if [[ -n ${CAPI_TEST_EXE:-} ]]; then
        slim "$CAPI_SO" "$r/usr/lib/x86_64-linux-gnu/libxenvcpu.so.0"
        cp "$CAPI_TEST_EXE" "$r/lab/bin/xenvcpu-capi-test"
    fi
    mkdir -p "$r/lab/tests"
    : >"$r/lab/tests.list"
    for t in "${TEST_EXES[@]}"; do
        slim "$t" "$r/lab/tests/${t##*/}"
        echo "${t##*/}" >>"$r/lab/tests.list"
    done
    install -m 755 "$LAB_SRC/dom0-init.sh" "$r/init"
    install -m 755 "$LAB_SRC/selfcheck.sh" "$r/lab/selfcheck.sh"
    printf '%s\n' "$CMD" >"$r/lab/cmd"
    cat >"$r/lab/job.conf" <<EOF
LAB_MODE=$MODE
LAB_GUEST=$WITH_GUEST
LAB_GUEST_NAME=$GUEST_NAME
LAB_GUEST_CONSOLE=$GUEST_CONSOLE
LAB_GUEST_WAIT=$GUEST_WAIT
LAB_QEMU_CPUS=$QEMU_CPUS
LAB_XEN=$XEN_REL
LAB_SCALE=${SCALE:-0}
LAB_SCALE_GUESTS="$SCALE_GUESTS"
EOF
    # Users: root, and nobody for tests that drop privileges.
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$r/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$r/etc/group"
    printf '%s\n' 'passwd: files' 'group: files' >"$r/etc/nsswitch.conf"
    if [[ $XEN_REL == 4.17 ]]; then copy_shared_libs "$r"; else check_root_libs "$r"; fi
    pack_cpio "$r" "$WORK/dom0.cpio"
}

# guest_kernel: sets GUEST_KERNEL, the guests' kernel: dom0's, uncompressed. A bzImage is
# a setup stub and a compressed ELF (xz in Debian 12's 6.1, zstd in Debian 13's 6.12);
# libxenguest would decompress it at every `xl create`, which under TCG takes 4-6 s of the
# 6 s a paused PV domain takes to create. The ELF is taken out once (the payload's place is
# in the boot protocol's setup header: setup_sects at 0x1f1, payload_offset at 0x248,
# payload_length at 0x24c) and kept next to the unpacked kernel package.
guest_kernel() {
    local k=$KERNEL_IMAGE out=${KERNEL_ROOT%/}.vmlinux sects off len magic start want
    GUEST_KERNEL=$out
    [[ -s $out ]] && return
    sects=$(od -An -tu1 -j $((0x1f1)) -N1 "$k" | tr -d ' ')
    off=$(od -An -tu4 -j $((0x248)) -N4 "$k" | tr -d ' ')
    len=$(od -An -tu4 -j $((0x24c)) -N4 "$k" | tr -d ' ')
    ((sects > 0)) || sects=4
    start=$(((sects + 1) * 512 + off))
    magic=$(dd if="$k" iflag=skip_bytes,count_bytes skip="$start" count=6 status=none | od -An -tx1 | tr -d ' \n')
    local unpack
    case $magic in
    fd377a585a00) unpack=(xz -dc) ;;
    28b52ffd*) unpack=(zstd -qdc) ;;
    1f8b08*) unpack=(gzip -dc) ;;
    *) die "initramfs: $k: no xz, zstd or gzip payload at the setup header's offset (magic $magic)" ;;
    esac
    command -v "${unpack[0]}" >/dev/null || die "initramfs: ${unpack[0]} is needed to unpack $k"
    # The payload ends with the ELF's size (4 bytes, little-endian: the kernel's
    # *_with_size build rules), which xz and zstd read as a truncated or unknown frame
    # and fail on after writing everything: the size and the ELF magic are the check.
    want=$(od -An -tu4 -j $((start + len - 4)) -N4 "$k" | tr -d ' ')
    dd if="$k" iflag=skip_bytes,count_bytes skip="$start" count="$len" bs=1M status=none |
        { "${unpack[@]}" 2>/dev/null || true; } >"$out.tmp.$$"
    [[ $(stat -c %s "$out.tmp.$$") == "$want" && $(head -c 4 "$out.tmp.$$" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]] ||
        die "initramfs: $k's payload did not unpack (${unpack[*]}) to an ELF image of $want bytes"
    mv "$out.tmp.$$" "$out"
    say "initramfs: the guests' kernel, uncompressed: $(($(stat -c %s "$out") >> 20)) MiB"
}

build_initramfs() {
    KERNEL_IMAGE=$(first_match "$KERNEL_ROOT/boot/vmlinuz-*")
    [[ -n $KERNEL_IMAGE ]] || die "initramfs: no vmlinuz in the kernel package"
    guest_kernel
    build_guest_initramfs
    build_dom0_initramfs
    say "initramfs: dom0 $(($(stat -c %s "$WORK/dom0.cpio") >> 20)) MiB, guest $(($(stat -c %s "$WORK/guest.cpio") >> 20)) MiB"
}

# ---------------------------------------------------------------------------------- boot
start_qemu() {
    LOG=$WORK/serial.log
    : >"$LOG"
    say "boot: QEMU/TCG ($TCG_THREAD, $QEMU_CPU), $QEMU_CPUS CPUs, $QEMU_MEM MiB${SCALE:+, the bigger lab}, timeout ${TIMEOUT}s (serial log: $LOG)"
    timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
        -accel "tcg,thread=$TCG_THREAD" -cpu "$QEMU_CPU" -m "$QEMU_MEM" -smp "$QEMU_CPUS" \
        -nodefaults -display none -monitor none -no-reboot -serial "file:$LOG" \
        -pidfile "$WORK/qemu.pid" \
        -kernel "$XEN_IMAGE" -append "$XEN_CMDLINE" \
        -initrd "$KERNEL_IMAGE $DOM0_CMDLINE,$WORK/dom0.cpio" \
        </dev/null >"$WORK/qemu.out" 2>&1 &
    QEMU_PID=$!
    BOOT_DS=$(elapsed_ds)
}

stop_qemu() {
    [[ -n ${QEMU_PID:-} ]] || return 0
    local qemu
    qemu=$(cat "$WORK/qemu.pid" 2>/dev/null) || true
    kill -TERM "$QEMU_PID" 2>/dev/null || true # timeout(1) passes it on to QEMU
    sleep 1
    [[ -z $qemu ]] || kill -KILL "$qemu" 2>/dev/null || true
    wait "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=
}

# stage NAME: note when a boot stage was reached and say so.
declare -A STAGE_DS=()
stage() {
    STAGE_DS[$1]=$(elapsed_ds)
    LAST_EVENT_DS=${STAGE_DS[$1]}
    say "$1${2:+ ($2)}"
}

# on_line LINE: interpret one serial-log line (markers from dom0-init.sh, Xen's banners).
on_line() {
    local line=$1 ev
    case $line in
    *"@@O|"*) [[ -z $CUR ]] || printf '%s\n' "${line#*@@O|}" >>"$WORK/out/$CUR.out"; return 0 ;;
    *"@@E|"*) [[ -z $CUR ]] || printf '%s\n' "${line#*@@E|}" >>"$WORK/out/$CUR.err"; return 0 ;;
    *"@@LAB@@ "*) ev=${line#*@@LAB@@ } ;;
    *"Xen version 4."*)
        ev=${line#*Xen version }
        [[ -n ${STAGE_DS["Xen booting"]:-} ]] || stage "Xen booting" "${ev%% (pkg-*}"
        return 0 ;;
    *"Serial input to DOM0"*) stage "Xen up"; return 0 ;;
    *)
        if [[ $line =~ $CRASH_RE && -z $CRASH ]]; then CRASH=$line; say "crash: $line"
        elif [[ $line =~ $SEGV_RE ]]; then SEGVS=$((SEGVS + 1)); say "warning: a dom0 process crashed: $line"
        fi
        return 0 ;;
    esac
    case $ev in
    init) stage "dom0 kernel up" "/init started" ;;
    dom0-up*) stage "dom0 up" "${ev#dom0-up }" ;;
    guest-up*) stage "guest up" "$GUEST_NAME ${ev#guest-up }" ;;
    guest-failed*) GUEST_FAILED=${ev#guest-failed }; say "guest: FAILED (${GUEST_FAILED})" ;;
    scale-up*) stage "scale guests up" "${ev#scale-up }" ;;
    scale-failed*) say "scale guests: FAILED (${ev#scale-failed })" ;;
    "begin "*)
        CUR=${ev#begin }; : >"$WORK/out/$CUR.out"; : >"$WORK/out/$CUR.err"
        LAST_EVENT_DS=$(elapsed_ds)
        if [[ $MODE == test ]]; then say "test: running $CUR"; fi
        ;;
    "end "*)
        RC[$CUR]=${ev##*rc=}
        if [[ $MODE == test ]]; then say "test: $CUR exited ${RC[$CUR]}"; fi
        CUR=
        ;;
    done*)
        DONE_RC=${ev#done rc=}; DONE_RC=${DONE_RC%% *}
        [[ $ev == *reason=* ]] && DONE_REASON=${ev#*reason=}
        stage "$([[ $MODE == test ]] && echo "tests done" || echo "command done")" "rc=$DONE_RC${DONE_REASON:+, $DONE_REASON}"
        ;;
    esac
}

# What the watcher is waiting for, for the heartbeat line.
next_stage() {
    if [[ -n $CUR ]]; then echo "$CUR to finish"
    elif [[ $WITH_GUEST == 1 && -z ${STAGE_DS["guest up"]:-} && -z $GUEST_FAILED &&
        -n ${STAGE_DS["dom0 up"]:-} ]]; then echo "the guest"
    elif [[ -n ${STAGE_DS["dom0 up"]:-} ]]; then echo "the job"
    elif [[ -n ${STAGE_DS["Xen up"]:-} ]]; then echo "dom0"
    else echo "Xen"; fi
}

# Follow the serial log until QEMU exits; bounded by `timeout` around QEMU plus a grace
# period once the end marker is seen.
watch_serial() {
    local seen=0 total done_at='' now
    CUR='' CRASH='' DONE_RC='' DONE_REASON='' GUEST_FAILED='' SEGVS=0
    declare -gA RC=()
    mkdir -p "$WORK/out"
    LAST_EVENT_DS=$(elapsed_ds)
    while :; do
        total=$(wc -l <"$LOG")
        if ((total > seen)); then
            while IFS= read -r line; do on_line "${line//$'\r'/}"; done < <(sed -n "$((seen + 1)),${total}p" "$LOG")
            seen=$total
        fi
        kill -0 "$QEMU_PID" 2>/dev/null || break
        now=$(elapsed_ds)
        if [[ -n $DONE_RC || -n $CRASH ]]; then
            done_at=${done_at:-$now}
            ((now - done_at < 300)) || { say "boot: QEMU still running 30s after the end; killing it"; break; }
        elif ((now - LAST_EVENT_DS >= 300)); then
            say "... waiting for $(next_stage) ($(wc -l <"$LOG") serial lines)"
            LAST_EVENT_DS=$now
        fi
        sleep 0.5
    done
    QEMU_RC=0
    if kill -0 "$QEMU_PID" 2>/dev/null; then stop_qemu; else wait "$QEMU_PID" || QEMU_RC=$?; QEMU_PID=; fi
    total=$(wc -l <"$LOG")
    ((total > seen)) && while IFS= read -r line; do on_line "${line//$'\r'/}"; done < <(sed -n "$((seen + 1)),${total}p" "$LOG")
    if [[ -n $DONE_RC ]]; then STAGE_DS[poweroff]=$(elapsed_ds); else STAGE_DS[stopped]=$(elapsed_ds); fi
}

# -------------------------------------------------------------------------------- report
# The reason the lab itself failed, or nothing.
lab_failure() {
    if [[ -n $CRASH ]]; then echo "crash: $CRASH"
    elif [[ -z $DONE_RC ]]; then
        if ((QEMU_RC == 124 || QEMU_RC == 137)); then echo "timeout after ${TIMEOUT}s waiting for $(next_stage)"
        else echo "QEMU exited ($QEMU_RC) without the end marker while waiting for $(next_stage)"; fi
    elif [[ -n $DONE_REASON ]]; then echo "dom0 setup failed: $DONE_REASON"
    elif [[ -n $GUEST_FAILED ]]; then echo "guest failed: $GUEST_FAILED"
    fi
}

show_failure() {
    say "FAILED: $1"
    {
        echo "---- last 60 lines of the serial log ----"
        tail -n 60 "$LOG" | tr -d '\r'
        [[ -s $WORK/qemu.out ]] && { echo "---- QEMU ----"; tail -n 20 "$WORK/qemu.out"; }
        echo "----"
    } >&2
    mkdir -p "$CACHE"
    cp "$LOG" "$CACHE/last-failure-serial.log"
    say "full serial log: $CACHE/last-failure-serial.log"
}

stage_times() {
    local s prev=$BOOT_DS out="" t
    for s in "Xen up" "dom0 up" "guest up" "scale guests up" "tests done" "command done" poweroff stopped; do
        t=${STAGE_DS[$s]:-}
        [[ -n $t ]] || continue
        out+="${out:+, }$s +$(fmt_ds $((t - prev)))s"
        prev=$t
    done
    say "boot times: ${out:-none}"
    ((SEGVS == 0)) || say "warning: $SEGVS dom0 process(es) crashed (see tests/lab/README.md, Known problems)"
}

report_run() {
    local fail rc outdir
    fail=$(lab_failure)
    if [[ -n ${BENCH:-} && -f $WORK/out/cmd.out ]]; then
        # The benches print their reports between `@@FILE NAME` and `@@END` lines: saved
        # under target/lab-bench/, left out of the output.
        outdir=${CARGO_TARGET_DIR:-$REPO/target}/lab-bench
        mkdir -p "$outdir"
        awk -v d="$outdir" '/^@@FILE / { f = d "/" $2; printf "" > f; next }
            /^@@END$/ { if (f != "") close(f); f = ""; next }
            f != "" { print > f; next }
            { print }' "$WORK/out/cmd.out"
        say "bench: reports in $outdir: $(cd "$outdir" && echo *)"
    elif [[ -f $WORK/out/cmd.out ]]; then
        cat "$WORK/out/cmd.out"
    fi
    [[ -f $WORK/out/cmd.err ]] && cat "$WORK/out/cmd.err" >&2
    stage_times
    if [[ -n $fail ]]; then show_failure "$fail"; return 125; fi
    rc=${RC[cmd]:-125}
    say "command exited $rc"
    return "$rc"
}

# reported_tests FILE: the tests libtest's output in FILE says passed or failed. A test
# may write to stderr directly (lab_faults' timings, past libtest's capture): then its
# `test NAME ... ` line is followed by those lines, and its `ok` or `FAILED` comes alone
# on a later line.
reported_tests() {
    awk '/^test [^ ]+ \.\.\. / {
             name = $2; rest = substr($0, index($0, " ... ") + 5)
             if (rest == "ok" || rest == "FAILED") { print name; name = "" }
             next
         }
         name != "" && ($0 == "ok" || $0 == "FAILED") { print name; name = "" }' "$1"
}

report_test() {
    local fail name rc passed=0 failed=0 p f result ok=1 expected=0 seen=0 want got missing
    fail=$(lab_failure)
    for name in selfcheck "${TEST_EXES[@]##*/}"; do
        want=$(wc -l <"$WORK/expected/$name")
        expected=$((expected + want))
        rc=${RC[$name]:-}
        if [[ -z $rc ]]; then
            echo "$name: did not run (expected $want lab tests)"
            failed=$((failed + (want > 0 ? want : 1)))
            continue
        fi
        result=$(grep -E '^test result: ' "$WORK/out/$name.out" | tail -n 1 || true)
        if [[ $result =~ ([0-9]+)\ passed\;\ ([0-9]+)\ failed ]]; then
            p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}
        else
            p=0 f=1 # no summary: crashed, or not a test binary's output at all
        fi
        ((rc == 0 || f > 0)) || f=1 # failed without saying so
        # Every lab test the binary contains must have reported ok or FAILED.
        reported_tests "$WORK/out/$name.out" | sort -u >"$WORK/expected/$name.seen"
        got=$(wc -l <"$WORK/expected/$name.seen")
        seen=$((seen + got))
        missing=$(comm -23 "$WORK/expected/$name" "$WORK/expected/$name.seen")
        if [[ -n $missing ]]; then
            echo "$name: expected tests did not report: ${missing//$'\n'/ }"
            f=$((f + $(wc -l <<<"$missing")))
        fi
        passed=$((passed + p)) failed=$((failed + f))
        echo "$name: ${result:-no test result line (exit $rc)} [expected $want, seen $got]"
        if ((f > 0)); then
            ok=0
            { echo "---- output of $name ----"; cat "$WORK/out/$name.out"; echo "----"; } >&2
        fi
    done
    stage_times
    [[ -z $fail ]] || show_failure "$fail"
    echo "lab: expected $expected lab tests, $seen reported"
    ((seen == expected)) || ok=0
    echo "lab: $passed passed, $failed failed"
    [[ -z $fail ]] || return 125
    ((ok && failed == 0))
}

# ---------------------------------------------------------------------------------- main
cleanup() {
    stop_qemu
    if [[ -n $KEEP ]]; then
        say "kept work dir: $WORK"
    else
        rm -rf "$WORK"
    fi
}

# select_release: what differs between --xen 4.17 and 4.20 (see tests/lab/README.md).
select_release() {
    APT_OPTS=()
    case $XEN_REL in
    4.17) PKG_CACHE=$CACHE ;;
    4.20)
        PKG_CACHE=$CACHE/xen-4.20 # its own .debs, roots and apt state: never pruned by a 4.17 run
        ;;
    *) say "error: --xen $XEN_REL: 4.17 or 4.20"; usage 2 ;;
    esac
}

main() {
    XEN_REL=4.17 SCALE=
    while :; do
        case ${1:-} in
        --xen) XEN_REL=${2:-}; shift 2 || usage 2 ;;
        --xen=*) XEN_REL=${1#--xen=}; shift ;;
        --scale) SCALE=1; shift ;;
        *) break ;;
        esac
    done
    select_release
    MODE=${1:-}; shift || true
    WITH_GUEST=1 CMD=
    case $MODE in
    run)
        [[ ${1:-} == --no-guest ]] && { WITH_GUEST=0; shift; }
        [[ ${1:-} == -- ]] && shift
        (($#)) || usage 2
        if (($# == 1)); then CMD=$1; else CMD=$(printf '%q ' "$@"); fi
        ;;
    test) (($# == 0)) || usage 2 ;;
    headers)
        (($# == 0)) || usage 2
        WORK=$(mktemp -d "${TMPDIR:-/tmp}/xenvcpu-lab.XXXXXX")
        trap 'rm -rf "$WORK"' EXIT
        fetch_headers
        return
        ;;
    bench)
        # The affinity-update benchmark (benches/affinity.rs) and the cost curve
        # (benches/scale.rs), run in dom0 like a command, in the bigger lab.
        (($# == 0)) || usage 2
        MODE=run BENCH=1 SCALE=1
        CMD="cd /tmp && /lab/bin/affinity-bench --bench && /lab/bin/scale-bench --bench"
        [[ -z ${XENVCPU_LAB_BENCH_FILTER:-} ]] || CMD+=" $(printf '%q' "$XENVCPU_LAB_BENCH_FILTER")"
        ;;
    -h | --help | help) usage 0 ;;
    *) usage 2 ;;
    esac
    QEMU_MEM=2048
    [[ -z $SCALE ]] || QEMU_MEM=4096 # the scale guests: about 1.2 GiB more
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/xenvcpu-lab.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    ensure_host_tools
    fetch_packages
    build_cargo
    build_initramfs
    start_qemu
    watch_serial
    if [[ $MODE == run ]]; then report_run; else report_test; fi
}

main "$@"
