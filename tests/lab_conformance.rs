//! The conformance suite against real Xen, inside the lab's dom0 (tests/lab/lab.sh test),
//! plus what only real Xen can show: the permission error of an unprivileged process.

mod conformance;

suite!(conformance::lab_fixture, ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)");

/// A process that is not root gets the typed permission error, not a crash.
#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn unprivileged_process_gets_the_permission_error() {
    let _ = conformance::lab_fixture(); // asserts we are in the lab and Xen opens as root
                                        // SAFETY: the child only drops privileges, opens the host and exits with a code; the
                                        // library is already loaded by the parent (lab_fixture), so no loader lock is needed.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain syscalls in the child; 65534 is "nobody"; setgroups is given an
        // empty list (size 0: the null pointer is not read), dropping root's groups.
        let dropped = unsafe {
            libc::setgroups(0, std::ptr::null()) == 0 && libc::setgid(65534) == 0 && libc::setuid(65534) == 0
        };
        let code = match (dropped, xenvcpu::Host::open()) {
            (false, _) => 3,
            (true, Err(xenvcpu::Error::Permission(_))) => 0,
            (true, Err(_)) => 1,
            (true, Ok(_)) => 2,
        };
        // SAFETY: leaves the child at once, without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child we just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status}");
    let code = libc::WEXITSTATUS(status);
    assert_eq!(code, 0, "child exit {code}: 1 = another error than Permission, 2 = opened, 3 = could not drop root");
}
