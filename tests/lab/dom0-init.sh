#!/bin/sh
# /init of the lab's dom0 (busybox sh, PID 1), built into the initramfs by tests/lab/lab.sh.
#
# Brings up the Xen toolstack, starts the PV guest, runs the job described by
# /lab/job.conf and powers the machine off. Everything lab.sh needs to know is printed on
# the console (hvc0 -> Xen -> com1 -> the serial log) as lines starting with `@@LAB@@`;
# output of commands is printed only after they finish, one `@@O|` (stdout) or `@@E|`
# (stderr) line per line, so kernel messages never end up inside it.
. /lab/job.conf
export PATH=/lab/bin:/usr/lib/xen-$LAB_XEN/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root

mark() { echo "@@LAB@@ $*"; }

# Stop the job: print the end marker lab.sh waits for and power off. Never returns.
finish() {
    mark "done rc=$1${2:+ reason=$2}"
    sync
    poweroff -f
    sleep 5
    echo o >/proc/sysrq-trigger
    while :; do sleep 60; done
}

# wait_for SECONDS CMD...: poll CMD once a second until it succeeds; bounded.
wait_for() {
    n=$1; shift
    while [ "$n" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 1
        n=$((n - 1))
    done
    return 1
}

# dump FILE TAG: print FILE with every line prefixed by @@TAG|, kernel messages muted.
dump() {
    read -r level _ </proc/sys/kernel/printk
    echo 1 >/proc/sys/kernel/printk
    awk -v p="@@$2|" '{ print p $0 }' "$1"
    echo "$level" >/proc/sys/kernel/printk
}

mount_filesystems() {
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev
    exec </dev/console >/dev/console 2>&1
    mkdir -p /dev/pts /dev/shm
    mount -t devpts devpts /dev/pts
    mount -t tmpfs tmpfs /run
    mount -t tmpfs tmpfs /tmp
    mkdir -p /run/xen /run/xenstored /run/lock /var/lib/xen /var/log/xen/console
    hostname lab-dom0
}

start_xen_toolstack() {
    for m in xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc; do
        insmod "/lib/modules/$m.ko" || finish 125 "insmod-$m"
    done
    mount -t xenfs xenfs /proc/xen || finish 125 "mount-xenfs"
    XENSTORED_ROOTDIR=/run/xenstored xenstored --pid-file=/run/xenstored.pid
    wait_for 120 xenstore-read -s / || finish 125 "xenstored-not-answering"
    xen-init-dom0 || finish 125 "xen-init-dom0"
    xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console ||
        finish 125 "xenconsoled"
    LAB_NR_CPUS=$(xl info | awk '$1 == "nr_cpus" { print $3 }')
    LAB_DOM0_VCPUS=$(xl list 0 | awk 'NR == 2 { print $4 }')
    mark "dom0-up nr_cpus=$LAB_NR_CPUS dom0_vcpus=$LAB_DOM0_VCPUS" \
        "xen=$(xl info | awk '$1 == "xen_version" { print $3 }')"
}

uptime_s() { cut -d ' ' -f 1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(uptime_s)" 'BEGIN { printf "%.1fs", b - a }'; }

# Start the guest and wait (bounded) for its /init to report its online CPUs.
start_guest() {
    t0=$(uptime_s)
    if ! xl create /lab/labguest.cfg >/tmp/xl-create.log 2>&1; then
        mark "guest-failed xl-create"
        dump /tmp/xl-create.log E
        return 1
    fi
    created=$(since "$t0")
    if ! wait_for "$LAB_GUEST_WAIT" grep -q "LABGUEST online=" "$LAB_GUEST_CONSOLE"; then
        mark "guest-failed no-report-in-${LAB_GUEST_WAIT}s"
        [ -f "$LAB_GUEST_CONSOLE" ] && dump "$LAB_GUEST_CONSOLE" E
        return 1
    fi
    LAB_GUEST_DOMID=$(xl domid "$LAB_GUEST_NAME")
    mark "guest-up domid=$LAB_GUEST_DOMID $(tr -d '\r' <"$LAB_GUEST_CONSOLE" | grep -o 'online=.*' | tail -n 1)" \
        "xl-create=$created up=$(since "$t0")"
}

# The bigger lab (lab.sh --scale, bench): LAB_SCALE_GUESTS, NAME:MAXVCPUS:VCPUS:MEMORY:run|paused
# each, made from labguest.cfg, all at once (`xl create -p` for the paused ones: about 5 s
# each under TCG, mostly CPU, yet four at once took 12.6 s instead of 19; a running one boots
# meanwhile); the running ones are then waited for (bounded) like labguest. Sets
# LAB_SCALE_LIST, NAME:DOMID:MAXVCPUS:VCPUS:HOW each.
scale_config() { # NAME MAXVCPUS VCPUS MEMORY: writes /run/scale/NAME.cfg
    awk -v n="$1" -v m="$2" -v v="$3" -v mem="$4" '
        $1 == "name" { print "name = \"" n "\""; next }
        $1 == "maxvcpus" { print "maxvcpus = " m; next }
        $1 == "vcpus" { print "vcpus = " v; next }
        $1 == "memory" { print "memory = " mem; next }
        { print }' /lab/labguest.cfg >"/run/scale/$1.cfg"
}

start_scale_guests() {
    t0=$(uptime_s)
    mkdir -p /run/scale
    pids=
    for spec in $LAB_SCALE_GUESTS; do
        set -- $(echo "$spec" | tr : ' ')
        scale_config "$1" "$2" "$3" "$4"
        flag=-p
        [ "$5" = run ] && flag=
        xl create $flag "/run/scale/$1.cfg" >"/tmp/xl-create-$1.log" 2>&1 &
        pids="$pids $!"
    done
    failed=
    for pid in $pids; do wait "$pid" || failed=1; done
    created=$(since "$t0")
    LAB_SCALE_LIST=
    for spec in $LAB_SCALE_GUESTS; do
        set -- $(echo "$spec" | tr : ' ')
        if ! domid=$(xl domid "$1" 2>/dev/null); then
            mark "scale-failed xl-create-$1"
            dump "/tmp/xl-create-$1.log" E
            return 1
        fi
        LAB_SCALE_LIST="$LAB_SCALE_LIST${LAB_SCALE_LIST:+ }$1:$domid:$2:$3:$5"
        [ "$5" = run ] || continue
        if ! wait_for "$LAB_GUEST_WAIT" grep -q "LABGUEST online=" "/var/log/xen/console/guest-$1.log"; then
            mark "scale-failed $1-no-report-in-${LAB_GUEST_WAIT}s"
            return 1
        fi
    done
    [ -z "$failed" ] || { mark "scale-failed an xl create failed"; return 1; }
    mark "scale-up $(echo "$LAB_SCALE_GUESTS" | wc -w) guests, created in $created, up in $(since "$t0")"
}

export_lab_env() {
    export XENVCPU_LAB=1 XENVCPU_LAB_XEN="$LAB_XEN" XENVCPU_LAB_NR_CPUS="$LAB_NR_CPUS" \
        XENVCPU_LAB_DOM0_VCPUS="$LAB_DOM0_VCPUS" XENVCPU_BIN=/lab/bin/xenvcpu RUST_BACKTRACE=1
    [ "$LAB_SCALE" = 1 ] && export XENVCPU_LAB_SCALE=1 XENVCPU_LAB_SCALE_GUESTS="$LAB_SCALE_LIST"
    if [ -n "$LAB_GUEST_DOMID" ]; then
        export XENVCPU_LAB_GUEST="$LAB_GUEST_NAME" XENVCPU_LAB_GUEST_DOMID="$LAB_GUEST_DOMID" \
            XENVCPU_LAB_GUEST_CONSOLE="$LAB_GUEST_CONSOLE"
    fi
}

# run_job NAME STDOUT_FILE STDERR_FILE CMD...: run CMD in a fresh writable directory, then
# print its output between begin/end markers. Returns CMD's exit status.
run_job() {
    name=$1 out=$2 err=$3; shift 3
    mark "begin $name"
    mkdir -p "/tmp/work/$name"
    if [ "$err" = "$out" ]; then
        (cd "/tmp/work/$name" && exec "$@") </dev/null >"$out" 2>&1
    else
        (cd "/tmp/work/$name" && exec "$@") </dev/null >"$out" 2>"$err"
    fi
    rc=$?
    dump "$out" O
    [ "$err" = "$out" ] || dump "$err" E
    mark "end $name rc=$rc"
    return "$rc"
}

run_command() {
    run_job cmd /tmp/cmd.out /tmp/cmd.err sh -c "$(cat /lab/cmd)" lab-run
}

run_tests() {
    failed=0
    run_job selfcheck /tmp/selfcheck.log /tmp/selfcheck.log sh /lab/selfcheck.sh || failed=1
    while read -r t; do
        run_job "$t" "/tmp/$t.log" "/tmp/$t.log" "/lab/tests/$t" --ignored --test-threads=1 ||
            failed=1
    done </lab/tests.list
    return "$failed"
}

mount_filesystems
mark "init"
start_xen_toolstack
LAB_GUEST_DOMID=
[ "$LAB_GUEST" = 1 ] && start_guest
if [ "$LAB_SCALE" = 1 ]; then start_scale_guests || finish 125 scale-guests; fi
export_lab_env
case "$LAB_MODE" in
run) run_command ;;
test) run_tests ;;
esac
finish "$?"
