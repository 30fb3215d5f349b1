#!/bin/sh
# The lab's own checks, run in dom0 by `tests/lab/lab.sh test` before the cargo test
# binaries. Proves the lab is what the tests assume. Prints libtest's format so lab.sh
# counts it like any test binary.
. /lab/job.conf
passed=0 failed=0

check() {
    name=$1; shift
    if out=$("$@" 2>&1); then
        echo "test selfcheck::$name ... ok"
        passed=$((passed + 1))
    else
        echo "test selfcheck::$name ... FAILED"
        echo "$out" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
}

# Rows of `xl vcpu-list` for one domain name.
vcpu_rows() { xl vcpu-list | awk -v d="$1" '$1 == d' | wc -l; }

dom0_has_its_vcpus() {
    xl vcpu-list
    [ "$(vcpu_rows Domain-0)" -eq "$XENVCPU_LAB_DOM0_VCPUS" ]
}
guest_is_listed_with_maxvcpus() { xl vcpu-list "$XENVCPU_LAB_GUEST"; [ "$(vcpu_rows "$XENVCPU_LAB_GUEST")" -eq 4 ]; }
# The console log has the guest tty's CRLF line ends.
guest_reports_two_online() {
    last=$(tr -d '\r' <"$XENVCPU_LAB_GUEST_CONSOLE" | grep '^LABGUEST online=' | tail -n 1)
    echo "last report: $last"
    [ "$last" = "LABGUEST online=0-1" ]
}
xen_sees_every_qemu_cpu() { xl info | grep -E "^nr_cpus +: $LAB_QEMU_CPUS\$"; }
libxenctrl_is_in_ld_cache() { grep -q "libxenctrl\\.so\\.$LAB_XEN" /etc/ld.so.cache; }
nobody_exists() { [ "$(id -u nobody)" = 65534 ]; }
privcmd_is_root_only() { mode=$(stat -c '%a %U' /dev/xen/privcmd); echo "$mode"; [ "$mode" = "600 root" ]; }
xenvcpu_runs() { "$XENVCPU_BIN" --version; }

echo
echo "running 8 tests"
check dom0_has_its_vcpus dom0_has_its_vcpus
check guest_is_listed_with_maxvcpus guest_is_listed_with_maxvcpus
check guest_reports_two_online guest_reports_two_online
check xen_sees_every_qemu_cpu xen_sees_every_qemu_cpu
check libxenctrl_is_in_ld_cache libxenctrl_is_in_ld_cache
check nobody_exists nobody_exists
check privcmd_is_root_only privcmd_is_root_only
check xenvcpu_runs xenvcpu_runs
echo
if [ "$failed" -eq 0 ]; then result=ok; else result=FAILED; fi
echo "test result: $result. $passed passed; $failed failed; 0 ignored; 0 measured; 0 filtered out"
[ "$failed" -eq 0 ]
