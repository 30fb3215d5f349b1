//! The CPU affinity of dom0 processes: the device model (emulator) of an HVM domain is a
//! process in dom0, pinned with `sched_setaffinity(2)` on every one of its threads.
//!
//! CPU numbers here are dom0's: what dom0's kernel calls CPU `n` is its vCPU `n`, which is
//! physical CPU `n` only when dom0's vCPUs are pinned one to one.

use std::path::Path;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use crate::cpumap::CpuMap;
use crate::error::{Error, Result};
use crate::ids::DomId;

/// Where dom0's kernel lists its online CPUs (a cpu-list such as `0-3`).
pub const ONLINE_CPUS_PATH: &str = "/sys/devices/system/cpu/online";

/// The CPUs dom0's kernel has online, from [`ONLINE_CPUS_PATH`]: the CPUs a process can
/// be pinned to.
///
/// # Errors
/// [`Error::InvalidArgument`] when the file cannot be read or parsed.
pub fn online_cpus() -> Result<CpuMap> {
    online_cpus_in(Path::new(ONLINE_CPUS_PATH))
}

fn online_cpus_in(path: &Path) -> Result<CpuMap> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::InvalidArgument(format!("cannot read {}: {e}", path.display())))?;
    text.trim().parse().map_err(|e| Error::InvalidArgument(format!("{} holds {text:?}: {e}", path.display())))
}

/// Checks `cpus` against dom0's online CPUs: not empty, and every CPU online in dom0.
///
/// # Errors
/// [`Error::EmptyProcessMap`], or [`Error::CpusNotInDom0`] naming the CPUs dom0 does
/// not have online.
pub fn check_cpus(pid: u32, cpus: &CpuMap, online: &CpuMap) -> Result<()> {
    if cpus.is_empty() {
        return Err(Error::EmptyProcessMap { pid });
    }
    let missing = cpus.difference(online);
    if !missing.is_empty() {
        return Err(Error::CpusNotInDom0 { cpus: missing, online: online.clone() });
    }
    Ok(())
}

fn pid_t(pid: u32) -> Result<Pid> {
    match i32::try_from(pid) {
        Ok(p) if p > 0 => Ok(Pid::from_raw(p)),
        _ => Err(Error::InvalidArgument(format!("{pid} is not a process id (give a pid > 0)"))),
    }
}

fn process_error(pid: u32, op: &'static str, e: nix::Error) -> Error {
    Error::Process { pid, op, errno: xen_sys::Errno::new(e as i32) }
}

/// Checks that process `pid` is the device model of domain `domid`: libxl starts QEMU
/// with `-xen-domid <domid>`, so its `/proc/<pid>/cmdline` must carry that pair. A
/// stale or reused pid (or pid 0, which `sched_setaffinity` takes as "myself") is
/// refused.
///
/// # Errors
/// [`Error::InvalidArgument`] for pid 0, [`Error::Process`] (`ESRCH`) when no such
/// process exists, [`Error::NotDeviceModel`] when its command line does not match.
pub fn check_device_model(pid: u32, domid: DomId) -> Result<()> {
    pid_t(pid)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).map_err(|e| Error::Process {
        pid,
        op: "read /proc/<pid>/cmdline",
        errno: xen_sys::Errno::new(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    match device_model_domid(&cmdline) {
        Some(found) if found == domid.get() => Ok(()),
        Some(found) => Err(Error::NotDeviceModel { domid, pid, found: format!("it is -xen-domid {found}") }),
        None => {
            let program = cmdline.split(|&b| b == 0).next().unwrap_or_default();
            let program = String::from_utf8_lossy(program);
            Err(Error::NotDeviceModel { domid, pid, found: format!("it runs {program:?}") })
        }
    }
}

/// The domain id a device model's command line (`/proc/<pid>/cmdline`: NUL-separated
/// arguments) names with `-xen-domid <domid>`, if any.
pub fn device_model_domid(cmdline: &[u8]) -> Option<u32> {
    let mut args = cmdline.split(|&b| b == 0);
    while let Some(arg) = args.next() {
        if arg == b"-xen-domid" || arg == b"--xen-domid" {
            return std::str::from_utf8(args.next()?).ok()?.parse().ok();
        }
    }
    None
}

/// The thread ids of process `pid` (`/proc/<pid>/task`).
///
/// # Errors
/// [`Error::Process`] when the process does not exist (`ESRCH`) or cannot be read.
pub fn threads(pid: u32) -> Result<Vec<u32>> {
    pid_t(pid)?;
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| Error::Process {
        pid,
        op: "read /proc/<pid>/task",
        errno: xen_sys::Errno::new(match e.kind() {
            std::io::ErrorKind::NotFound => libc::ESRCH,
            _ => e.raw_os_error().unwrap_or(libc::EIO),
        }),
    })?;
    let mut tids: Vec<u32> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    tids.sort_unstable();
    Ok(tids)
}

fn cpu_set(pid: u32, cpus: &CpuMap) -> Result<CpuSet> {
    let mut set = CpuSet::new();
    for cpu in cpus.iter() {
        set.set(cpu).map_err(|_| Error::CpusBeyondHost {
            cpus: cpus.difference(&CpuMap::all(CpuSet::count())),
            nr_cpus: CpuSet::count(),
        })?;
    }
    if cpus.is_empty() {
        return Err(Error::EmptyProcessMap { pid });
    }
    Ok(set)
}

/// Sets the CPU affinity of one thread (or a single-threaded process) with
/// `sched_setaffinity(2)`.
///
/// # Errors
/// [`Error::EmptyProcessMap`] or [`Error::CpusBeyondHost`] before the call;
/// [`Error::Process`] when the kernel refuses (`ESRCH`: no such thread; `EINVAL`: no
/// usable CPU; `EPERM`).
pub fn pin_process(pid: u32, cpus: &CpuMap) -> Result<()> {
    let set = cpu_set(pid, cpus)?;
    sched_setaffinity(pid_t(pid)?, &set).map_err(|e| process_error(pid, "sched_setaffinity", e))
}

/// Pins every thread of process `pid` to `cpus` (after checking them against dom0's
/// online CPUs) and reads each thread's affinity back: the device model's threads all
/// move, not only its main thread. Threads that exit meanwhile are skipped; a thread
/// whose affinity reads back differently is an error.
///
/// Returns the affinity the threads now have.
///
/// # Errors
/// Those of [`check_cpus`] and [`pin_process`], and [`Error::InvalidArgument`] when a
/// thread's affinity does not read back as set.
pub fn pin_threads(pid: u32, cpus: &CpuMap) -> Result<CpuMap> {
    check_cpus(pid, cpus, &online_cpus()?)?;
    let set = cpu_set(pid, cpus)?;
    let mut pinned = 0;
    for tid in threads(pid)? {
        match sched_setaffinity(pid_t(tid)?, &set) {
            Ok(()) => pinned += 1,
            // The thread ended between the listing and the call.
            Err(nix::Error::ESRCH) => continue,
            Err(e) => return Err(process_error(tid, "sched_setaffinity", e)),
        }
    }
    if pinned == 0 {
        return Err(process_error(pid, "sched_setaffinity", nix::Error::ESRCH));
    }
    for tid in threads(pid)? {
        match process_affinity(tid) {
            Ok(got) if got == *cpus => {}
            Ok(got) => {
                return Err(Error::InvalidArgument(format!(
                    "thread {tid} of process {pid} reads back affinity {got}, not {cpus}"
                )))
            }
            Err(Error::Process { errno, .. }) if errno.raw() == libc::ESRCH => {}
            Err(e) => return Err(e),
        }
    }
    Ok(cpus.clone())
}

/// The CPU affinity of process (or thread) `pid` (`sched_getaffinity(2)`).
///
/// # Errors
/// [`Error::Process`] when the kernel refuses (`ESRCH`: no such process).
pub fn process_affinity(pid: u32) -> Result<CpuMap> {
    let set = sched_getaffinity(pid_t(pid)?).map_err(|e| process_error(pid, "sched_getaffinity", e))?;
    Ok((0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap_or(false)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domid_comes_from_the_xen_domid_argument() {
        let qemu = b"/usr/bin/qemu-system-i386\0-xen-domid\x0017\0-no-shutdown\0";
        assert_eq!(device_model_domid(qemu), Some(17));
        assert_eq!(device_model_domid(b"qemu\0--xen-domid\x003\0"), Some(3));
        assert_eq!(device_model_domid(b"sleep\x0030\0"), None);
        assert_eq!(device_model_domid(b"qemu\0-xen-domid\0"), None, "no value");
        assert_eq!(device_model_domid(b"qemu\0-xen-domid\0x1\0"), None, "not a number");
        assert_eq!(device_model_domid(b"qemu\0-xen-domid-17\0"), None, "not the option");
        assert_eq!(device_model_domid(b""), None);
    }

    #[test]
    fn pid_zero_is_refused_not_taken_as_myself() {
        assert!(matches!(check_device_model(0, DomId(1)), Err(Error::InvalidArgument(_))));
        assert!(matches!(pin_process(0, &CpuMap::from_iter([0])), Err(Error::InvalidArgument(_))));
        assert!(matches!(process_affinity(0), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn this_process_is_not_a_device_model() {
        let err = check_device_model(std::process::id(), DomId(1)).unwrap_err();
        assert!(matches!(err, Error::NotDeviceModel { domid: DomId(1), .. }), "{err}");
    }

    #[test]
    fn cpus_are_checked_in_dom0_numbering() {
        let online: CpuMap = "0-3".parse().unwrap();
        assert!(check_cpus(7, &"1-2".parse().unwrap(), &online).is_ok());
        match check_cpus(7, &"2-5".parse().unwrap(), &online) {
            Err(Error::CpusNotInDom0 { cpus, online }) => {
                assert_eq!((cpus.to_string(), online.to_string()), ("4-5".into(), "0-3".into()))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(check_cpus(7, &CpuMap::new(), &online), Err(Error::EmptyProcessMap { pid: 7 })));
        // A CPU offline in dom0 in the middle of the range.
        let holes: CpuMap = "0,2-3".parse().unwrap();
        assert!(matches!(check_cpus(7, &"1".parse().unwrap(), &holes), Err(Error::CpusNotInDom0 { .. })));
    }

    #[test]
    fn this_machines_online_cpus_are_read() {
        let online = online_cpus().unwrap();
        assert!(online.contains(0), "{online}");
        assert!(online.count() >= 1);
    }

    #[test]
    fn threads_of_a_missing_process_is_esrch() {
        match threads(i32::MAX as u32) {
            Err(Error::Process { errno, .. }) => assert_eq!(errno.raw(), libc::ESRCH),
            other => panic!("{other:?}"),
        }
    }
}
