//! Real-hypercall tests of the bindings, for the Xen lab (a Xen 4.17 or 4.20 dom0 under QEMU, `lab.sh --xen`).
//!
//! Every test is `#[ignore]`d so a plain `cargo test` skips them visibly; the lab runs each
//! test binary with `--ignored` as root inside dom0, with
//!
//! * `XENVCPU_LAB=1`
//! * `XENVCPU_LAB_NR_CPUS`: host CPUs Xen booted with (4)
//! * `XENVCPU_LAB_DOM0_VCPUS`: dom0's vCPUs (4)
//! * `XENVCPU_LAB_GUEST_DOMID`: a PV guest with vcpus=2, maxvcpus=4 (absent in some runs)
//!
//! Inside the lab a missing Xen is a failure, never a skip: each test first asserts
//! `XENVCPU_LAB=1`, then uses the hypervisor unconditionally. Tests that change state save,
//! change, read back, assert and restore (restoring on panic too).

use std::ffi::c_int;
use std::io::Write;
use std::ptr;

use xen_sys::{
    cpumap_size, getinfo_one, nodemap_size, running_hypervisor_version, xc_cputopo_t, xc_physinfo_t, xc_vcpuinfo_t,
    xenctrl, CandidateOrigin, Errno, Interface, OpenError, XENVER_version, XenCtrl, XenVersion, XEN_INVALID_CORE_ID,
    XEN_INVALID_SOCKET_ID, XEN_VCPUAFFINITY_HARD,
};

fn lab() {
    assert_eq!(
        std::env::var("XENVCPU_LAB").as_deref(),
        Ok("1"),
        "this test needs the Xen lab (XENVCPU_LAB=1 is not set): run tests/lab/lab.sh test"
    );
}

fn lab_u32(name: &str) -> u32 {
    let value = std::env::var(name).unwrap_or_else(|_| panic!("lab: {name} is not set"));
    value.parse().unwrap_or_else(|_| panic!("lab: {name}={value:?} is not a number"))
}

fn lab_guest() -> Option<u32> {
    let value = std::env::var("XENVCPU_LAB_GUEST_DOMID").ok()?;
    if value.is_empty() {
        return None;
    }
    Some(value.parse().unwrap_or_else(|_| panic!("lab: XENVCPU_LAB_GUEST_DOMID={value:?} is not a number")))
}

fn open() -> Interface {
    Interface::open().unwrap_or_else(|e| panic!("lab: cannot open the Xen interface: {e}"))
}

fn physinfo(xc: &Interface) -> xc_physinfo_t {
    let mut info = xc_physinfo_t::default();
    // SAFETY: `xc` is open; `info` is one writable xc_physinfo_t.
    let ret = unsafe { (xc.lib().xc_physinfo)(xc.as_ptr(), &mut info) };
    assert_eq!(ret, 0, "xc_physinfo: {}", Errno::last());
    info
}

fn vcpu_info(xc: &Interface, domid: u32, vcpu: u32) -> Result<xc_vcpuinfo_t, Errno> {
    let mut info = xc_vcpuinfo_t::default();
    // SAFETY: `xc` is open; `info` is one writable xc_vcpuinfo_t; vcpu < 65536 in all callers.
    let ret = unsafe { (xc.lib().xc_vcpu_getinfo)(xc.as_ptr(), domid, vcpu, &mut info) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(info)
}

fn map_size(xc: &Interface) -> usize {
    // SAFETY: `xc` is open for the call.
    unsafe { cpumap_size(xc.lib(), xc.as_ptr()) }.expect("xc_get_cpumap_size")
}

fn get_hard(xc: &Interface, domid: u32, vcpu: c_int) -> Result<Vec<u8>, Errno> {
    let mut hard = vec![0u8; map_size(xc)];
    // SAFETY: `xc` is open; `hard` is exactly xc_get_cpumap_size() bytes, which libxenctrl
    // writes; the soft map is not selected by the flags, so null is allowed.
    let ret = unsafe {
        (xc.lib().xc_vcpu_getaffinity)(
            xc.as_ptr(),
            domid,
            vcpu,
            hard.as_mut_ptr(),
            ptr::null_mut(),
            XEN_VCPUAFFINITY_HARD,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(hard)
}

/// Sets the hard affinity; `hard` is overwritten with the effective map.
fn set_hard(xc: &Interface, domid: u32, vcpu: c_int, hard: &mut [u8]) -> Result<(), Errno> {
    assert_eq!(hard.len(), map_size(xc), "affinity buffers are exactly cpumap_size");
    // SAFETY: `xc` is open; `hard` is exactly xc_get_cpumap_size() bytes (asserted above),
    // which libxenctrl reads and then overwrites; the soft map is not selected, so null.
    let ret = unsafe {
        (xc.lib().xc_vcpu_setaffinity)(
            xc.as_ptr(),
            domid,
            vcpu,
            hard.as_mut_ptr(),
            ptr::null_mut(),
            XEN_VCPUAFFINITY_HARD,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// The Xen release the lab booted (`XENVCPU_LAB_XEN`, set by `lab.sh --xen`): each one the
/// lab knows, with the libxenctrl soname its dom0 has.
fn lab_release() -> (XenVersion, &'static str) {
    match std::env::var("XENVCPU_LAB_XEN").as_deref() {
        Ok("4.17") => (XenVersion::new(4, 17), "libxenctrl.so.4.17"),
        Ok("4.20") => (XenVersion::new(4, 20), "libxenctrl.so.4.20"),
        other => panic!("lab: XENVCPU_LAB_XEN is {other:?}, not 4.17 or 4.20 (run tests/lab/lab.sh test)"),
    }
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn loader_picks_the_running_hypervisors_libxenctrl() {
    lab();
    let (release, soname) = lab_release();
    assert_eq!(running_hypervisor_version(), Some(release));
    let lib = xenctrl().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lib.soname(), soname);
    assert_eq!(lib.requested().origin, CandidateOrigin::RunningHypervisor(release));
    assert!(lib.skipped().is_empty(), "{:?}", lib.skipped());
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn interface_opens_and_reports_the_hypervisor_version() {
    lab();
    let xc = open();
    // SAFETY: `xc` is open; XENVER_version takes no argument buffer (null).
    let raw = unsafe { (xc.lib().xc_version)(xc.as_ptr(), XENVER_version, ptr::null_mut()) };
    assert_eq!(XenVersion::from_xenver(raw), running_hypervisor_version());
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn physinfo_reports_the_lab_cpus_and_map_sizes_follow_max_cpu_id() {
    lab();
    let nr = lab_u32("XENVCPU_LAB_NR_CPUS");
    let xc = open();
    let info = physinfo(&xc);
    assert_eq!(info.nr_cpus, nr);
    assert!(info.max_cpu_id + 1 >= nr, "max_cpu_id {}", info.max_cpu_id);
    let expected = usize::try_from(info.max_cpu_id + 1 + 7).unwrap() / 8;
    assert_eq!(map_size(&xc), expected);
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn cputopoinfo_describes_every_online_cpu() {
    lab();
    let nr = lab_u32("XENVCPU_LAB_NR_CPUS");
    let xc = open();
    let mut count: u32 = 0;
    // SAFETY: `xc` is open; a null array with count 0 asks for the count only.
    let ret = unsafe { (xc.lib().xc_cputopoinfo)(xc.as_ptr(), &mut count, ptr::null_mut()) };
    assert_eq!(ret, 0, "count: {}", Errno::last());
    assert!(count >= nr, "count {count}");
    let mut topo = vec![xc_cputopo_t::default(); usize::try_from(count).unwrap()];
    let mut written = count;
    // SAFETY: `xc` is open; `topo` has `written` elements, the count passed in.
    let ret = unsafe { (xc.lib().xc_cputopoinfo)(xc.as_ptr(), &mut written, topo.as_mut_ptr()) };
    assert_eq!(ret, 0, "fill: {}", Errno::last());
    assert!(written <= count);
    for (cpu, t) in topo.iter().take(usize::try_from(nr).unwrap()).enumerate() {
        assert_ne!(t.core, XEN_INVALID_CORE_ID, "CPU {cpu} online but no topology");
    }
}

/// `xc_cputopoinfo` as Xen returns it: the count asked for with a null array, then the
/// entries written (core, socket, node; `~0` = invalid).
fn cputopo(xc: &Interface) -> (u32, Vec<(u32, u32, u32)>) {
    let mut count: u32 = 0;
    // SAFETY: `xc` is open; a null array with count 0 asks for the count only.
    let ret = unsafe { (xc.lib().xc_cputopoinfo)(xc.as_ptr(), &mut count, ptr::null_mut()) };
    assert_eq!(ret, 0, "count: {}", Errno::last());
    // Room for more than Xen says, to see how many it writes.
    let mut topo = vec![xc_cputopo_t::default(); usize::try_from(count).unwrap() + 4];
    let mut written = u32::try_from(topo.len()).unwrap();
    // SAFETY: `xc` is open; `topo` has `written` elements, the count passed in.
    let ret = unsafe { (xc.lib().xc_cputopoinfo)(xc.as_ptr(), &mut written, topo.as_mut_ptr()) };
    assert_eq!(ret, 0, "fill: {}", Errno::last());
    let entries = topo.iter().take(usize::try_from(written).unwrap()).map(|t| (t.core, t.socket, t.node)).collect();
    (count, entries)
}

/// Runs `xen-hptool cpu-offline|cpu-online CPU`; panics when it fails.
fn hptool(op: &str, cpu: u32) {
    let out = std::process::Command::new("xen-hptool")
        .args([op, &cpu.to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run xen-hptool (from xen-utils, in the lab's dom0)");
    assert!(
        out.status.success(),
        "xen-hptool {op} {cpu}: {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A host CPU taken offline; brought back online when dropped, also on failure (the
/// later tests need every CPU).
struct Offline(u32);

impl Offline {
    fn take(cpu: u32) -> Offline {
        hptool("cpu-offline", cpu);
        Offline(cpu)
    }
}

impl Drop for Offline {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::process::Command::new("xen-hptool").args(["cpu-online", &self.0.to_string()]).status();
        } else {
            hptool("cpu-online", self.0);
        }
    }
}

/// What Xen 4.17 returns with one CPU offline (`XEN_SYSCTL_cputopoinfo` in
/// `xen/common/sysctl.c` fills every CPU up to the last *present* one; x86's
/// `cpu_smpboot_free()` resets an offlined CPU's core and socket ids unless offline CPUs
/// are parked; `cpu_to_node[]` is left alone): still one entry per CPU, also when the last
/// CPU is the offline one; the offline CPU has no core and no socket but keeps its node;
/// the other CPUs are unchanged. physinfo counts the online CPUs and keeps `max_cpu_id`.
#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn cputopoinfo_with_a_cpu_offline_still_has_every_cpu_and_keeps_its_node() {
    lab();
    let nr = lab_u32("XENVCPU_LAB_NR_CPUS");
    let xc = open();
    let (count, before) = cputopo(&xc);
    assert_eq!(count, nr, "every CPU online: {before:?}");
    assert_eq!(before.len(), usize::try_from(nr).unwrap(), "{before:?}");
    assert!(before.iter().all(|&(core, socket, node)| core != !0 && socket != !0 && node != !0), "{before:?}");
    for cpu in [nr - 1, 1] {
        let offline = Offline::take(cpu);
        let (count, entries) = cputopo(&xc);
        let info = physinfo(&xc);
        // Written past libtest's capture, so the lab's log shows it (XENVCPU_LAB_KEEP=1).
        let _ = writeln!(
            std::io::stderr(),
            "lab_xenctrl: CPU {cpu} offline: count {count}, entries (core, socket, node) {entries:x?}, \
             physinfo nr_cpus {} max_cpu_id {}",
            info.nr_cpus,
            info.max_cpu_id
        );
        assert_eq!((info.nr_cpus, info.max_cpu_id), (nr - 1, nr - 1), "CPU {cpu} offline");
        assert_eq!(count, nr, "CPU {cpu} offline: the count still covers every present CPU");
        let mut want = before.clone();
        want[usize::try_from(cpu).unwrap()] = (XEN_INVALID_CORE_ID, XEN_INVALID_SOCKET_ID, before[cpu as usize].2);
        assert_eq!(entries, want, "CPU {cpu} offline: no core, no socket, the node kept");
        drop(offline);
        assert_eq!(cputopo(&xc), (nr, before.clone()), "CPU {cpu} back online");
        assert_eq!(physinfo(&xc).nr_cpus, nr);
    }
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn getinfolist_returns_dom0_with_its_vcpus() {
    lab();
    let dom0_vcpus = lab_u32("XENVCPU_LAB_DOM0_VCPUS");
    let xc = open();
    // SAFETY: `xc` is open for the call.
    let info = unsafe { getinfo_one(xc.lib(), xc.as_ptr(), 0) }.expect("xc_domain_getinfolist").expect("dom0 exists");
    assert_eq!(info.domain, 0);
    assert_eq!(info.max_vcpu_id, dom0_vcpus - 1);
    assert_eq!(info.vcpu_count(), dom0_vcpus);
    assert_eq!(info.nr_online_vcpus, dom0_vcpus);
}

/// An id past every domain: the raw call returns nothing and `getinfo_one` `None`. The
/// pitfall proper (an absent id *below* a live domain, where the raw call returns that
/// domain) is `absent_domain_is_none_not_the_next_domain` in tests/lab_faults.rs, which
/// makes such an id with two throwaway guests and also checks the library's lookup.
#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn absent_domain_past_every_domain_is_none() {
    lab();
    let xc = open();
    let mut info = xen_sys::xc_domaininfo_t::default();
    // SAFETY: `xc` is open; `info` is one writable element and max_domains is 1.
    let n = unsafe { (xc.lib().xc_domain_getinfolist)(xc.as_ptr(), 31000, 1, &mut info) };
    assert_eq!(n, 0, "no domain at or above 31000");
    // SAFETY: `xc` is open for the call.
    let absent = unsafe { getinfo_one(xc.lib(), xc.as_ptr(), 31000) }.expect("getinfolist");
    assert_eq!(absent, None);
}

fn node_affinity(xc: &Interface, domid: u32) -> Result<Vec<u8>, Errno> {
    // SAFETY: `xc` is open for the call.
    let size = unsafe { nodemap_size(xc.lib(), xc.as_ptr()) }.expect("xc_get_nodemap_size");
    let mut map = vec![0u8; size];
    // SAFETY: `xc` is open; `map` is exactly xc_get_nodemap_size() bytes, which libxenctrl
    // writes.
    let ret = unsafe { (xc.lib().xc_domain_node_getaffinity)(xc.as_ptr(), domid, map.as_mut_ptr()) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(map)
}

/// The lab has one NUMA node, but Xen's `max_node_id` is the highest node id it supports
/// (`MAX_NUMNODES - 1`: 63 on x86, seen on Xen 4.17), so the node map is 8 bytes. Every
/// domain's node affinity holds node 0 (Xen derives it from the vCPUs' affinity, all CPUs
/// of node 0). Bits past the host's node are printed, not asserted.
#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn node_affinity_of_dom0_and_the_guest_holds_node_0_and_absent_is_esrch() {
    lab();
    let xc = open();
    let info = physinfo(&xc);
    assert_eq!(info.nr_nodes, 1, "the lab has one NUMA node");
    assert!(info.max_node_id >= 1, "max_node_id {} is Xen's limit, not the host's", info.max_node_id);
    // SAFETY: `xc` is open for the call.
    let size = unsafe { nodemap_size(xc.lib(), xc.as_ptr()) }.expect("xc_get_nodemap_size");
    assert_eq!(size, usize::try_from(info.max_node_id + 1 + 7).unwrap() / 8);
    let mut domains = vec![0];
    domains.extend(lab_guest());
    for domid in domains {
        let map = node_affinity(&xc, domid).unwrap_or_else(|e| panic!("node affinity of {domid}: {e}"));
        // Past libtest's capture: the figures end up in the lab's output of this binary.
        let _ = writeln!(
            std::io::stderr(),
            "lab_xenctrl: max_node_id {}, nodemap {size} bytes; domain {domid} node affinity {map:02x?}",
            info.max_node_id
        );
        assert_eq!(map.len(), size);
        assert_eq!(map[0] & 1, 1, "domain {domid}: node 0 in {map:02x?}");
    }
    assert_eq!(node_affinity(&xc, 31000), Err(Errno::new(libc::ESRCH)));
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn vcpu_getinfo_works_for_every_dom0_vcpu_and_fails_one_past_the_end() {
    lab();
    let dom0_vcpus = lab_u32("XENVCPU_LAB_DOM0_VCPUS");
    let nr = lab_u32("XENVCPU_LAB_NR_CPUS");
    let xc = open();
    for vcpu in 0..dom0_vcpus {
        let info = vcpu_info(&xc, 0, vcpu).unwrap_or_else(|e| panic!("vCPU {vcpu}: {e}"));
        assert_eq!(info.vcpu, vcpu);
        assert_ne!(info.online, 0, "dom0 vCPU {vcpu} online");
        assert!(info.cpu < nr, "vCPU {vcpu} on CPU {}", info.cpu);
    }
    // vcpu >= d->max_vcpus is EINVAL in XEN_DOMCTL_getvcpuinfo (ESRCH is for a vCPU slot
    // below the maximum that was never allocated).
    let err = vcpu_info(&xc, 0, dom0_vcpus).unwrap_err();
    assert_eq!(err.raw(), libc::EINVAL, "one past the end: {err}");
}

/// Puts a saved hard affinity back, also when the test panics.
struct RestoreHard<'a> {
    xc: &'a Interface,
    domid: u32,
    vcpu: c_int,
    saved: Vec<u8>,
}

impl Drop for RestoreHard<'_> {
    fn drop(&mut self) {
        let mut map = self.saved.clone();
        if let Err(e) = set_hard(self.xc, self.domid, self.vcpu, &mut map) {
            eprintln!("lab: could not restore d{}v{} affinity: {e}", self.domid, self.vcpu);
        }
    }
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn hard_affinity_round_trip_returns_the_effective_map() {
    lab();
    let dom0_vcpus = lab_u32("XENVCPU_LAB_DOM0_VCPUS");
    let xc = open();
    let vcpu = c_int::try_from(dom0_vcpus - 1).unwrap();
    let saved = get_hard(&xc, 0, vcpu).expect("save");
    let _restore = RestoreHard { xc: &xc, domid: 0, vcpu, saved: saved.clone() };

    let nr = lab_u32("XENVCPU_LAB_NR_CPUS") as usize;
    assert!(nr < saved.len() * 8, "the map has bits past the host's CPUs ({nr} CPUs, {} bytes)", saved.len());
    // Ask for CPUs 0-1 plus every bit past the host's last CPU: Xen reads only its
    // nr_cpu_ids bits and writes back the effective map, {0,1} ∩ online — so the buffer
    // changes, which it would not if nothing were written back.
    let mut map = vec![0u8; saved.len()];
    for bit in [0, 1].into_iter().chain(nr..saved.len() * 8) {
        map[bit / 8] |= 1 << (bit % 8);
    }
    let requested = map.clone();
    let mut expected = vec![0u8; saved.len()];
    expected[0] = 0b11; // CPUs {0, 1}
    set_hard(&xc, 0, vcpu, &mut map).expect("set {0,1} + bits past the host");
    assert_ne!(map, requested, "the buffer was written back");
    assert_eq!(map, expected, "effective map written back = {{0,1}} ∩ online");
    assert_eq!(get_hard(&xc, 0, vcpu).expect("read back"), expected);

    drop(_restore);
    assert_eq!(get_hard(&xc, 0, vcpu).expect("after restore"), saved);
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn guest_max_vcpus_is_fixed_at_creation() {
    lab();
    let guest = lab_guest().expect("XENVCPU_LAB_GUEST_DOMID: the lab's test mode always starts the guest");
    let xc = open();
    // SAFETY: `xc` is open for the call.
    let info =
        unsafe { getinfo_one(xc.lib(), xc.as_ptr(), guest) }.expect("getinfolist").expect("the lab guest exists");
    assert_eq!(info.max_vcpu_id, 3, "maxvcpus = 4");
    // SAFETY: `xc` is open; no buffers.
    let ret = unsafe { (xc.lib().xc_domain_max_vcpus)(xc.as_ptr(), guest, 5) };
    let errno = Errno::last();
    assert_eq!(ret, -1, "growing max_vcpus after creation must fail");
    assert_eq!(errno, Errno::new(libc::EINVAL));
}

/// In a forked child: become nobody (uid/gid 65534, no groups), then try to open the
/// interface. The exit code says what happened (0 = the expected permission error).
fn child_open_as_nobody(lib: &'static XenCtrl) -> c_int {
    const NOBODY: u32 = 65534;
    // SAFETY: an empty supplementary group list (size 0, so the null pointer is not read).
    if unsafe { libc::setgroups(0, ptr::null()) } != 0 {
        return 20;
    }
    // SAFETY: plain syscall wrapper without memory arguments.
    if unsafe { libc::setgid(NOBODY) } != 0 {
        return 21;
    }
    // SAFETY: plain syscall wrapper without memory arguments (after setgid, while still root).
    if unsafe { libc::setuid(NOBODY) } != 0 {
        return 22;
    }
    match Interface::open_with(lib) {
        // libxencall's complaint is captured in the error, not printed.
        Err(OpenError::Permission { log, .. }) if log.iter().any(|m| m.text.starts_with("xencall: ")) => 0,
        Err(OpenError::Permission { .. }) => 14,
        Ok(_) => 10,
        Err(OpenError::NoHypervisor { .. }) => 11,
        Err(OpenError::Library(_)) => 12,
        Err(OpenError::Other { .. }) => 13,
        Err(OpenError::VersionMismatch { .. }) => 15,
    }
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn unprivileged_process_gets_the_typed_permission_error() {
    lab();
    // Load the library before forking, so the child does not need the dynamic loader.
    let lib = xenctrl().unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the lab runs tests as root");

    // SAFETY: fork has no preconditions. The child only drops privileges, opens the
    // interface with the already loaded table and leaves with _exit, never returning into
    // the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", Errno::last());
    if pid == 0 {
        let code = child_open_as_nobody(lib);
        // SAFETY: ends the child at once, without running the parent's atexit handlers or
        // unwinding into the test harness.
        unsafe { libc::_exit(code) };
    }
    let mut status: c_int = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid: {}", Errno::last());
    assert!(libc::WIFEXITED(status), "child did not exit normally: {status:#x}");
    let meaning = match libc::WEXITSTATUS(status) {
        0 => return,
        10 => "the interface opened for uid 65534",
        11 => "NoHypervisor",
        12 => "Library",
        13 => "Other errno",
        14 => "Permission, but without libxencall's message in its log",
        15 => "VersionMismatch",
        20..=22 => "dropping privileges failed",
        _ => "unknown exit code",
    };
    panic!("unprivileged open: expected OpenError::Permission, got: {meaning}");
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn one_interface_is_usable_from_several_threads_at_once() {
    lab();
    let dom0_vcpus = lab_u32("XENVCPU_LAB_DOM0_VCPUS");
    let nr = lab_u32("XENVCPU_LAB_NR_CPUS");
    let xc = open();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let xc = &xc;
            s.spawn(move || {
                for i in 0..200u32 {
                    let vcpu = (t + i) % dom0_vcpus;
                    let info = vcpu_info(xc, 0, vcpu).unwrap_or_else(|e| panic!("thread {t} call {i}: {e}"));
                    assert_eq!(info.vcpu, vcpu);
                    assert_eq!(physinfo(xc).nr_cpus, nr);
                }
            });
        }
    });
}

/// The lab's host as it boots has one cpupool, Pool-0 (id 0): every CPU, credit2 (the
/// scheduler `xl info` names on both releases), and every domain. `xc_cpupool_getinfo` from
/// 0 returns it; from 1 nothing (`ENOENT`, which `cpupool_info` turns into `None`). The raw
/// call is checked too: its map lies inside libxenctrl's allocation, which
/// `xc_cpupool_infofree` releases.
#[test]
#[ignore = "needs the Xen lab (tests/lab/lab.sh test)"]
fn cpupool_info_lists_pool_0_with_every_cpu_and_every_domain() {
    lab();
    let xc = open();
    let size = map_size(&xc);
    let nr_cpus = lab_u32("XENVCPU_LAB_NR_CPUS");
    // SAFETY: `xc` is open; `size` is xc_get_cpumap_size() for it.
    let pool0 = unsafe { xen_sys::cpupool_info(xc.lib(), xc.as_ptr(), 0, size) }.expect("xc_cpupool_getinfo(0)");
    let pool0 = pool0.expect("Pool-0 exists");
    assert_eq!(pool0.cpupool_id, 0);
    assert_eq!(pool0.sched_id, xen_sys::XEN_SCHEDULER_CREDIT2, "the lab's Xen schedules with credit2");
    let mut every = vec![0u8; size];
    for cpu in 0..nr_cpus as usize {
        every[cpu / 8] |= 1 << (cpu % 8);
    }
    assert_eq!(pool0.cpumap, every, "Pool-0 has every CPU");
    let mut domains = vec![xen_sys::xc_domaininfo_t::default(); 64];
    // SAFETY: `xc` is open; `domains` has 64 writable elements.
    let n = unsafe { (xc.lib().xc_domain_getinfolist)(xc.as_ptr(), 0, 64, domains.as_mut_ptr()) };
    assert!(n >= 1, "xc_domain_getinfolist: {}", Errno::last());
    assert_eq!(pool0.n_dom, n as u32, "every domain is in Pool-0");
    assert!(domains[..n as usize].iter().all(|d| d.cpupool == 0));
    // SAFETY: as above.
    let next = unsafe { xen_sys::cpupool_info(xc.lib(), xc.as_ptr(), 1, size) };
    assert_eq!(next, Ok(None), "no pool after Pool-0");

    // SAFETY: `xc` is open; the result is released below with xc_cpupool_infofree.
    let raw = unsafe { (xc.lib().xc_cpupool_getinfo)(xc.as_ptr(), 0) };
    assert!(!raw.is_null(), "xc_cpupool_getinfo: {}", Errno::last());
    // SAFETY: non-null and not yet released; its cpumap is `size` bytes of the same block.
    let (id, map) = unsafe { ((*raw).cpupool_id, std::slice::from_raw_parts((*raw).cpumap, size).to_vec()) };
    // SAFETY: `raw` came from xc_cpupool_getinfo on `xc` and is released once.
    unsafe { (xc.lib().xc_cpupool_infofree)(xc.as_ptr(), raw) };
    assert_eq!((id, map), (0, every));
    // SAFETY: `xc` is open; the call takes no buffers.
    let none = unsafe { (xc.lib().xc_cpupool_getinfo)(xc.as_ptr(), 1) };
    let errno = Errno::last();
    assert!(none.is_null());
    assert_eq!(errno.raw(), libc::ENOENT, "past the last pool: {errno}");
}

/// Every pool's map (`xc_cpupool_getinfo` from 0, then from the last id + 1) by pool id.
fn pool_maps(xc: &Interface, size: usize) -> Vec<(u32, Vec<u8>)> {
    let mut pools = Vec::new();
    let mut next = 0;
    // SAFETY: `xc` is open; `size` is xc_get_cpumap_size() for it.
    while let Some(p) = unsafe { xen_sys::cpupool_info(xc.lib(), xc.as_ptr(), next, size) }.expect("xc_cpupool_getinfo")
    {
        next = p.cpupool_id + 1;
        pools.push((p.cpupool_id, p.cpumap));
    }
    pools
}

/// The free CPUs (`xc_cpupool_freeinfo` through xen-sys's copy-and-free helper).
fn free_map(xc: &Interface, size: usize) -> Vec<u8> {
    // SAFETY: `xc` is open; `size` is xc_get_cpumap_size() for it.
    let map = unsafe { xen_sys::cpupool_freeinfo(xc.lib(), xc.as_ptr(), size) }.expect("xc_cpupool_freeinfo");
    assert_eq!(map.len(), size);
    map
}

fn cpus_of(map: &[u8]) -> Vec<u32> {
    (0..map.len() * 8).filter(|&c| map[c / 8] & (1 << (c % 8)) != 0).map(|c| c as u32).collect()
}

/// The online CPUs as free ∪ every pool, checked on the way: no CPU is in two places, and
/// there are as many as physinfo counts online.
fn online_from_pools(xc: &Interface, size: usize, when: &str) -> Vec<u32> {
    let free = free_map(xc, size);
    let pools = pool_maps(xc, size);
    let mut seen = cpus_of(&free);
    for (id, map) in &pools {
        for cpu in cpus_of(map) {
            assert!(!seen.contains(&cpu), "{when}: CPU {cpu} of pool {id} is also free or in another pool");
            seen.push(cpu);
        }
    }
    seen.sort_unstable();
    let nr_online = physinfo(xc).nr_cpus;
    let _ = writeln!(
        std::io::stderr(),
        "lab_xenctrl: {when}: free {:?}, pools {:?}, physinfo nr_cpus {nr_online}",
        cpus_of(&free),
        pools.iter().map(|(id, m)| (*id, cpus_of(m))).collect::<Vec<_>>()
    );
    assert_eq!(seen.len(), nr_online as usize, "{when}: free ∪ pools has physinfo's nr_cpus CPUs");
    seen
}

/// CPU `cpu` taken out of Pool-0 (`xl cpupool-cpu-remove`), so that it is free; given back
/// when dropped, also on failure (quietly: a CPU that went offline and came back is in
/// Pool-0 already). The end of the test checks Pool-0 has every CPU again.
struct FreeCpu(u32);

impl FreeCpu {
    fn take(cpu: u32) -> FreeCpu {
        let out = std::process::Command::new("xl")
            .args(["cpupool-cpu-remove", "Pool-0", &cpu.to_string()])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run xl");
        assert!(out.status.success(), "xl cpupool-cpu-remove Pool-0 {cpu}: {}", String::from_utf8_lossy(&out.stderr));
        FreeCpu(cpu)
    }
}

impl Drop for FreeCpu {
    fn drop(&mut self) {
        let _ = std::process::Command::new("xl")
            .args(["cpupool-cpu-add", "Pool-0", &self.0.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `xc_cpupool_freeinfo` returns a map of `xc_get_cpumap_size()` bytes (a plain allocation
/// the caller frees with `free`), and the free CPUs with every pool's CPUs are exactly the
/// online CPUs, as many as physinfo's `nr_cpus`, each in one place: at boot (every CPU in
/// Pool-0, none free); with the last CPU taken out of Pool-0 (free, still online); with
/// that free CPU offline (in neither); back online (in Pool-0 again, where Xen puts a CPU
/// coming online); with a CPU of Pool-0 offline (it leaves Pool-0). So the online map needs
/// no core ids, which an Intel host keeps for its parked offline CPUs.
#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn cpupool_freeinfo_with_every_pool_is_the_online_cpus() {
    lab();
    let xc = open();
    let size = map_size(&xc);
    let nr = lab_u32("XENVCPU_LAB_NR_CPUS");
    let every: Vec<u32> = (0..nr).collect();
    let without = |cpu: u32| every.iter().copied().filter(|&c| c != cpu).collect::<Vec<u32>>();

    // The raw call: a map of `size` bytes in an allocation of its own, released with free.
    // SAFETY: `xc` is open; the call takes no buffers and returns a new allocation or null.
    let raw = unsafe { (xc.lib().xc_cpupool_freeinfo)(xc.as_ptr()) };
    assert!(!raw.is_null(), "xc_cpupool_freeinfo: {}", Errno::last());
    // SAFETY: non-null and not yet freed; libxenctrl allocated xc_get_cpumap_size() bytes.
    let copy = unsafe { std::slice::from_raw_parts(raw, size) }.to_vec();
    // SAFETY: `raw` is xc_cpumap_alloc's calloc allocation, owned by the caller, freed once.
    unsafe { libc::free(raw.cast()) };
    assert!(cpus_of(&copy).is_empty(), "at boot no CPU is free: {:?}", cpus_of(&copy));

    assert_eq!(physinfo(&xc).nr_cpus, nr, "every CPU online to begin with");
    assert_eq!(online_from_pools(&xc, size, "at boot"), every);
    assert!(cpus_of(&free_map(&xc, size)).is_empty());
    assert_eq!(pool_maps(&xc, size).first().map(|(id, m)| (*id, cpus_of(m))), Some((0, every.clone())));

    let last = nr - 1;
    {
        let _free = FreeCpu::take(last);
        assert_eq!(cpus_of(&free_map(&xc, size)), [last], "CPU {last} is free");
        assert_eq!(online_from_pools(&xc, size, &format!("CPU {last} free")), every, "a free CPU is online");
        let offline = Offline::take(last);
        assert!(cpus_of(&free_map(&xc, size)).is_empty(), "an offline CPU is not free");
        assert_eq!(online_from_pools(&xc, size, "free CPU offline"), without(last));
        drop(offline);
        assert!(cpus_of(&free_map(&xc, size)).is_empty(), "back online, CPU {last} is not free");
        assert_eq!(online_from_pools(&xc, size, "back online"), every);
        assert_eq!(pool_maps(&xc, size)[0], (0, copy_of(&every, size)), "it is back in Pool-0");
    }
    {
        let _offline = Offline::take(1);
        assert_eq!(online_from_pools(&xc, size, "CPU 1 offline"), without(1));
        assert_eq!(pool_maps(&xc, size)[0], (0, copy_of(&without(1), size)), "CPU 1 left Pool-0");
    }
    assert_eq!(online_from_pools(&xc, size, "restored"), every);
    assert_eq!(pool_maps(&xc, size), [(0, copy_of(&every, size))], "restored: Pool-0 alone, every CPU");
}

/// A map of `size` bytes with `cpus` set.
fn copy_of(cpus: &[u32], size: usize) -> Vec<u8> {
    let mut map = vec![0u8; size];
    for &cpu in cpus {
        map[cpu as usize / 8] |= 1 << (cpu % 8);
    }
    map
}
