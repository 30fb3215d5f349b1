//! Small calls that encode libxenctrl pitfalls once, so every caller gets them right.

use crate::abi::{xc_domaininfo_t, xc_interface};
use crate::errno::Errno;
use crate::loader::XenCtrl;

/// Information about exactly the domain `domid`, or `None` if it does not exist.
///
/// Calls `xc_domain_getinfolist(xch, domid, 1, &info)`, which exists in every release
/// (`xc_domain_getinfo` was removed in 4.18; `xc_domain_getinfo_single` only exists since
/// 4.18). The sysctl behind it lists domains *from* `domid`, so when `domid` is absent it
/// describes the next existing domain: the answer is accepted only if
/// `info.domain == domid`. (Ids above 0xFFFF are truncated by Xen's 16-bit `domid_t`; the
/// comparison rejects those answers too.)
///
/// # Errors
/// The errno of a failed `xc_domain_getinfolist` (e.g. `EPERM` when not in dom0).
///
/// # Safety
/// `xch` is an open handle from `lib.xc_interface_open` (e.g. [`crate::Interface::as_ptr`]
/// of an `Interface` built on `lib`), not closed during the call.
pub unsafe fn getinfo_one(lib: &XenCtrl, xch: *mut xc_interface, domid: u32) -> Result<Option<xc_domaininfo_t>, Errno> {
    let mut info = xc_domaininfo_t::default();
    // SAFETY: `xch` is open (caller's contract); `info` is one writable element, and
    // max_domains = 1 lets libxenctrl write at most one.
    let ret = unsafe { (lib.xc_domain_getinfolist)(xch, domid, 1, &mut info) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok((ret >= 1 && u32::from(info.domain) == domid).then_some(info))
}

/// `xc_get_cpumap_size()`: the exact byte length every CPU map passed to
/// `xc_vcpu_setaffinity` / `xc_vcpu_getaffinity` must have (libxenctrl reads and writes that
/// many bytes).
///
/// # Errors
/// The errno of the failed `xc_physinfo` behind it; `EINVAL` if libxenctrl reports a size
/// of 0, which no host can have.
///
/// # Safety
/// `xch` is an open handle from `lib.xc_interface_open`, not closed during the call.
pub unsafe fn cpumap_size(lib: &XenCtrl, xch: *mut xc_interface) -> Result<usize, Errno> {
    // SAFETY: `xch` is open (caller's contract); the call takes no buffers.
    let ret = unsafe { (lib.xc_get_cpumap_size)(xch) };
    positive_size(ret)
}

/// `xc_get_nodemap_size()`: the exact byte length of the NUMA node map
/// `xc_domain_node_getaffinity` writes (`(physinfo.max_node_id + 1 + 7) / 8`). Xen reports
/// as `max_node_id` the highest node id it supports (`MAX_NUMNODES - 1`), not the host's:
/// 8 bytes on x86 (seen in the lab on Xen 4.17, a host of one node).
///
/// # Errors
/// The errno of the failed `xc_physinfo` behind it; `EINVAL` if libxenctrl reports a size
/// of 0, which no host can have.
///
/// # Safety
/// `xch` is an open handle from `lib.xc_interface_open`, not closed during the call.
pub unsafe fn nodemap_size(lib: &XenCtrl, xch: *mut xc_interface) -> Result<usize, Errno> {
    // SAFETY: `xch` is open (caller's contract); the call takes no buffers.
    let ret = unsafe { (lib.xc_get_nodemap_size)(xch) };
    positive_size(ret)
}

/// A size libxenctrl returned: -1 is the errno it left, 0 is `EINVAL`.
fn positive_size(ret: libc::c_int) -> Result<usize, Errno> {
    if ret < 0 {
        return Err(Errno::last());
    }
    match usize::try_from(ret) {
        Ok(0) | Err(_) => Err(Errno::new(libc::EINVAL)),
        Ok(size) => Ok(size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::{c_int, c_uint};

    fn set_errno(raw: c_int) {
        // SAFETY: __errno_location returns the calling thread's errno slot.
        unsafe { *libc::__errno_location() = raw };
    }

    /// A fake getinfolist that reports domain `domid + 1` (what Xen does for an absent id
    /// when a later domain exists), domain `domid` when it is 7, nothing above 100, and
    /// ESRCH for 666.
    unsafe extern "C" fn fake_getinfolist(
        _xch: *mut xc_interface,
        first: u32,
        max: c_uint,
        info: *mut xc_domaininfo_t,
    ) -> c_int {
        assert_eq!(max, 1);
        let domain = match first {
            666 => {
                set_errno(libc::ESRCH);
                return -1;
            }
            7 => 7,
            f if f > 100 => return 0,
            f => f + 1,
        };
        let value = xc_domaininfo_t { domain: u16::try_from(domain).unwrap(), max_vcpu_id: 3, ..Default::default() };
        // SAFETY: getinfo_one passes a pointer to one writable element.
        unsafe { info.write(value) };
        1
    }

    unsafe extern "C" fn fake_cpumap_size(_xch: *mut xc_interface) -> c_int {
        set_errno(libc::EACCES);
        -1
    }

    unsafe extern "C" fn fake_nodemap_size(_xch: *mut xc_interface) -> c_int {
        0
    }

    fn lib() -> XenCtrl {
        XenCtrl {
            xc_domain_getinfolist: fake_getinfolist,
            xc_get_cpumap_size: fake_cpumap_size,
            xc_get_nodemap_size: fake_nodemap_size,
            ..XenCtrl::stubbed()
        }
    }

    fn getinfo(domid: u32) -> Result<Option<xc_domaininfo_t>, Errno> {
        // SAFETY: the fake functions ignore the handle.
        unsafe { getinfo_one(&lib(), std::ptr::null_mut(), domid) }
    }

    #[test]
    fn getinfo_one_accepts_only_the_domain_asked_for() {
        let info = getinfo(7).unwrap().expect("domain 7 exists");
        assert_eq!(info.domain, 7);
        assert_eq!(info.max_vcpu_id, 3);
        assert_eq!(getinfo(5).unwrap(), None, "next domain (6) must be rejected");
        assert_eq!(getinfo(31000).unwrap(), None, "empty list");
        assert_eq!(getinfo(666).unwrap_err(), Errno::new(libc::ESRCH));
    }

    #[test]
    fn cpumap_size_passes_the_errno_through() {
        // SAFETY: the fake function ignores the handle.
        let err = unsafe { cpumap_size(&lib(), std::ptr::null_mut()) }.unwrap_err();
        assert_eq!(err, Errno::new(libc::EACCES));
    }

    #[test]
    fn a_nodemap_size_of_zero_is_einval() {
        // SAFETY: the fake function ignores the handle.
        let err = unsafe { nodemap_size(&lib(), std::ptr::null_mut()) }.unwrap_err();
        assert_eq!(err, Errno::new(libc::EINVAL));
    }
}
