//! Small calls that encode libxenctrl pitfalls once, so every caller gets them right.

use crate::abi::{xc_cpupoolinfo_t, xc_domaininfo_t, xc_interface};
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

/// One cpupool, copied out of libxenctrl's [`xc_cpupoolinfo_t`] by [`cpupool_info`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpupoolInfo {
    /// The pool's id (Pool-0 is 0).
    pub cpupool_id: u32,
    /// Its scheduler (`XEN_SCHEDULER_*`).
    pub sched_id: u32,
    /// The number of domains in it.
    pub n_dom: u32,
    /// Its CPUs, in the layout of every CPU map (byte `i` holds CPUs `8i..8i+7`), as many
    /// bytes as the caller said `xc_get_cpumap_size()` is.
    pub cpumap: Vec<u8>,
}

/// Releases an `xc_cpupool_getinfo` result with `xc_cpupool_infofree` when dropped, so
/// that it is released once on every path.
struct PoolInfoGuard<'a> {
    lib: &'a XenCtrl,
    xch: *mut xc_interface,
    info: std::ptr::NonNull<xc_cpupoolinfo_t>,
}

impl Drop for PoolInfoGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: `info` came from this table's xc_cpupool_getinfo on the still open `xch`
        // (the guard borrows neither beyond the call that made it) and is released
        // exactly once, here; nothing read from it outlives the guard.
        unsafe { (self.lib.xc_cpupool_infofree)(self.xch, self.info.as_ptr()) };
    }
}

/// The first cpupool whose id is `>= poolid`, or `None` when there is none
/// (`xc_cpupool_getinfo` failed with `ENOENT`). The struct and the map libxenctrl
/// allocated are copied and released with `xc_cpupool_infofree` before returning.
///
/// Every pool, as xl lists them: call with 0, then with the last `cpupool_id + 1`, until
/// `None`.
///
/// `cpumap_size` must be `xc_get_cpumap_size()` on this host ([`cpumap_size`]): that is
/// how many bytes libxenctrl allocated for the map (it sizes it the same way, and
/// `max_cpu_id` does not change while Xen runs).
///
/// # Errors
/// The errno of a failed `xc_cpupool_getinfo` other than `ENOENT` (e.g. `EPERM`, or
/// `ENOMEM`).
///
/// # Safety
/// `xch` is an open handle from `lib.xc_interface_open`, not closed during the call, and
/// `cpumap_size` is what `xc_get_cpumap_size()` returns for it.
pub unsafe fn cpupool_info(
    lib: &XenCtrl,
    xch: *mut xc_interface,
    poolid: u32,
    cpumap_size: usize,
) -> Result<Option<CpupoolInfo>, Errno> {
    // SAFETY: `xch` is open (caller's contract); the call takes no buffers and returns a
    // new allocation or null.
    let raw = unsafe { (lib.xc_cpupool_getinfo)(xch, poolid) };
    let Some(info) = std::ptr::NonNull::new(raw) else {
        let errno = Errno::last();
        return if errno.raw() == libc::ENOENT { Ok(None) } else { Err(errno) };
    };
    let guard = PoolInfoGuard { lib, xch, info };
    // SAFETY: non-null, returned by xc_cpupool_getinfo and not yet released (the guard
    // releases it after this block): it points to an initialised xc_cpupoolinfo_t.
    let pool = unsafe { guard.info.as_ref() };
    let cpumap = if pool.cpumap.is_null() {
        Vec::new()
    } else {
        // SAFETY: libxenctrl allocated `xc_get_cpumap_size()` = `cpumap_size` bytes for
        // the map (caller's contract) in the same, still live allocation, and filled them.
        unsafe { std::slice::from_raw_parts(pool.cpumap, cpumap_size) }.to_vec()
    };
    let out = CpupoolInfo { cpupool_id: pool.cpupool_id, sched_id: pool.sched_id, n_dom: pool.n_dom, cpumap };
    drop(guard);
    Ok(Some(out))
}

/// Releases a map `xc_cpupool_freeinfo` returned with libc's `free` when dropped, so that
/// it is released once on every path.
struct FreeMapGuard {
    map: std::ptr::NonNull<u8>,
}

impl Drop for FreeMapGuard {
    fn drop(&mut self) {
        // SAFETY: `map` came from xc_cpupool_freeinfo, which allocates it with calloc
        // (xc_cpumap_alloc) for the caller to free; it is released exactly once, here, and
        // nothing read from it outlives the guard.
        unsafe { libc::free(self.map.as_ptr().cast()) };
        #[cfg(test)]
        tests::FREE_MAPS_RELEASED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The online CPUs that are in no cpupool (`xc_cpupool_freeinfo`,
/// `XEN_SYSCTL_CPUPOOL_OP_FREEINFO`), in the layout of every CPU map (byte `i` holds CPUs
/// `8i..8i+7`), `cpumap_size` bytes. The map libxenctrl allocated is copied and released
/// with libc's `free` before returning.
///
/// Every online CPU is either free or in exactly one pool: this map with every pool's map
/// ([`cpupool_info`]) is the host's online CPUs. (Xen keeps an offline CPU in none, and a
/// CPU's core id is no sign of it being online: Intel hosts *park* offline CPUs, which
/// keep theirs.)
///
/// `cpumap_size` must be `xc_get_cpumap_size()` on this host ([`cpumap_size`]): that is
/// how many bytes libxenctrl allocated for the map.
///
/// # Errors
/// The errno of a failed `xc_cpupool_freeinfo` (e.g. `EPERM` when refused, `ENOMEM`);
/// `EINVAL` if it returned no map without setting one.
///
/// # Safety
/// `xch` is an open handle from `lib.xc_interface_open`, not closed during the call, and
/// `cpumap_size` is what `xc_get_cpumap_size()` returns for it.
pub unsafe fn cpupool_freeinfo(lib: &XenCtrl, xch: *mut xc_interface, cpumap_size: usize) -> Result<Vec<u8>, Errno> {
    // SAFETY: `xch` is open (caller's contract); the call takes no buffers and returns a
    // new allocation or null.
    let raw = unsafe { (lib.xc_cpupool_freeinfo)(xch) };
    let Some(map) = std::ptr::NonNull::new(raw) else {
        let errno = Errno::last();
        return Err(if errno.raw() == 0 { Errno::new(libc::EINVAL) } else { errno });
    };
    let guard = FreeMapGuard { map };
    // SAFETY: libxenctrl allocated `xc_get_cpumap_size()` = `cpumap_size` bytes for the map
    // (caller's contract) and filled them; the allocation lives until the guard drops.
    let out = unsafe { std::slice::from_raw_parts(guard.map.as_ptr(), cpumap_size) }.to_vec();
    drop(guard);
    Ok(out)
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
    use crate::abi::xc_cpumap_t;
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

    /// Pools 0 and 3 (a fake libxenctrl allocation: the struct followed by a one-byte map,
    /// as libxenctrl lays it out), `ENOENT` past 3, `EPERM` for 99; counts what is freed.
    unsafe extern "C" fn fake_pool_getinfo(_xch: *mut xc_interface, poolid: u32) -> *mut xc_cpupoolinfo_t {
        let (id, map, n_dom) = match poolid {
            0 => (0, 0b0111, 2),
            1..=3 => (3, 0b1000, 1),
            99 => {
                set_errno(libc::EPERM);
                return std::ptr::null_mut();
            }
            _ => {
                set_errno(libc::ENOENT);
                return std::ptr::null_mut();
            }
        };
        #[repr(C)]
        struct Block {
            info: xc_cpupoolinfo_t,
            map: [u8; 1],
        }
        let block = Box::into_raw(Box::new(Block {
            info: xc_cpupoolinfo_t { cpupool_id: id, sched_id: 6, n_dom, cpumap: std::ptr::null_mut() },
            map: [map],
        }));
        // SAFETY: `block` is a live allocation; the map pointer points into it, as
        // libxenctrl's does.
        unsafe { (*block).info.cpumap = (*block).map.as_mut_ptr() };
        block.cast()
    }

    static FREED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    unsafe extern "C" fn fake_pool_infofree(_xch: *mut xc_interface, info: *mut xc_cpupoolinfo_t) {
        #[repr(C)]
        struct Block {
            info: xc_cpupoolinfo_t,
            map: [u8; 1],
        }
        // SAFETY: `info` is the start of a Box<Block> made by fake_pool_getinfo, freed once.
        drop(unsafe { Box::from_raw(info.cast::<Block>()) });
        FREED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many maps `FreeMapGuard` released (with libc's `free`).
    pub(super) static FREE_MAPS_RELEASED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// CPUs 1 and 9 free, in a two-byte map allocated as libxenctrl does (calloc).
    unsafe extern "C" fn fake_freeinfo(_xch: *mut xc_interface) -> xc_cpumap_t {
        // SAFETY: a plain two-byte allocation, released by the code under test with free.
        let map = unsafe { libc::calloc(2, 1) }.cast::<u8>();
        assert!(!map.is_null());
        // SAFETY: `map` is two writable bytes.
        unsafe { map.write(0b10) };
        // SAFETY: as above.
        unsafe { map.add(1).write(0b10) };
        map
    }

    unsafe extern "C" fn fake_freeinfo_fails(_xch: *mut xc_interface) -> xc_cpumap_t {
        set_errno(libc::EPERM);
        std::ptr::null_mut()
    }

    unsafe extern "C" fn fake_freeinfo_no_errno(_xch: *mut xc_interface) -> xc_cpumap_t {
        set_errno(0);
        std::ptr::null_mut()
    }

    fn lib() -> XenCtrl {
        XenCtrl {
            xc_cpupool_freeinfo: fake_freeinfo,
            xc_cpupool_getinfo: fake_pool_getinfo,
            xc_cpupool_infofree: fake_pool_infofree,
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
    fn cpupool_info_copies_each_pool_frees_it_and_ends_at_enoent() {
        let lib = lib();
        let before = FREED.load(std::sync::atomic::Ordering::SeqCst);
        let mut pools = Vec::new();
        let mut next = 0;
        // SAFETY: the fake functions ignore the handle; the fake map is one byte.
        while let Some(pool) = unsafe { cpupool_info(&lib, std::ptr::null_mut(), next, 1) }.unwrap() {
            next = pool.cpupool_id + 1;
            pools.push(pool);
        }
        assert_eq!(
            pools,
            [
                CpupoolInfo { cpupool_id: 0, sched_id: 6, n_dom: 2, cpumap: vec![0b0111] },
                CpupoolInfo { cpupool_id: 3, sched_id: 6, n_dom: 1, cpumap: vec![0b1000] },
            ]
        );
        assert_eq!(FREED.load(std::sync::atomic::Ordering::SeqCst) - before, 2, "each result freed once");
        // SAFETY: as above.
        let err = unsafe { cpupool_info(&lib, std::ptr::null_mut(), 99, 1) }.unwrap_err();
        assert_eq!(err, Errno::new(libc::EPERM));
    }

    #[test]
    fn cpupool_freeinfo_copies_the_map_and_frees_it_once_with_libc_free() {
        let before = FREE_MAPS_RELEASED.load(std::sync::atomic::Ordering::SeqCst);
        // SAFETY: the fake function ignores the handle; its map is two bytes.
        let map = unsafe { cpupool_freeinfo(&lib(), std::ptr::null_mut(), 2) }.unwrap();
        assert_eq!(map, [0b10, 0b10], "CPUs 1 and 9");
        assert_eq!(FREE_MAPS_RELEASED.load(std::sync::atomic::Ordering::SeqCst) - before, 1, "freed once");
        let failing = XenCtrl { xc_cpupool_freeinfo: fake_freeinfo_fails, ..XenCtrl::stubbed() };
        // SAFETY: as above.
        let err = unsafe { cpupool_freeinfo(&failing, std::ptr::null_mut(), 2) }.unwrap_err();
        assert_eq!(err, Errno::new(libc::EPERM));
        let silent = XenCtrl { xc_cpupool_freeinfo: fake_freeinfo_no_errno, ..XenCtrl::stubbed() };
        // SAFETY: as above.
        let err = unsafe { cpupool_freeinfo(&silent, std::ptr::null_mut(), 2) }.unwrap_err();
        assert_eq!(err, Errno::new(libc::EINVAL), "never an error that says success");
        assert_eq!(FREE_MAPS_RELEASED.load(std::sync::atomic::Ordering::SeqCst) - before, 1, "nothing to free");
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
