#!/bin/sh
# /init of the lab's PV guest (busybox sh, PID 1).
#
# Emulates the udev rule a normal distribution has for Xen vCPU hotplug: when dom0 raises
# the vCPU count (xenstore cpu/N/availability = online) the guest kernel only registers
# the CPU as present and offline; userspace must online it. Dom0 lowering the count needs
# nothing here: the kernel offlines the vCPU by itself.
#
# Whenever the set of online CPUs changes it prints `LABGUEST online=<cpu list>` on hvc0,
# which xenconsoled logs to a file in dom0: tests/lab/lab.sh waits for the first line
# before it runs anything, and tests read the file to see the guest's own view.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

echo "LABGUEST init"
# The CPU flags the guest kernel sees (tests compare a guest built with cpuid= to this one).
while IFS= read -r line; do
    case "$line" in flags*) echo "LABGUEST flags=${line#*: }"; break ;; esac
done </proc/cpuinfo
# The loop forks nothing: `read -t` on an idle FIFO is the sleep (less work for TCG).
mkfifo /tmp/tick
exec 3<>/tmp/tick
last=
while :; do
    for f in /sys/devices/system/cpu/cpu[0-9]*/online; do
        [ -e "$f" ] || continue
        read -r state <"$f" 2>/dev/null || continue
        [ "$state" = 0 ] && echo 1 >"$f" 2>/dev/null
    done
    read -r now </sys/devices/system/cpu/online
    if [ "$now" != "$last" ]; then
        echo "LABGUEST online=$now"
        last=$now
    fi
    # shellcheck disable=SC3045 # busybox ash has read -t with fractions
    read -r -t 0.5 -u 3 _
done
