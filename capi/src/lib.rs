//! The C API of xenvcpu: `libxenvcpu.so.0` / `libxenvcpu.a` and `include/xenvcpu.h`.
//!
//! Every function here is an `extern "C"` entry point over the Rust library (`xv`, the
//! `xenvcpu` crate). Each one catches panics (none crosses into C), resets this thread's
//! last error on entry and sets it on failure, and checks every pointer it is given
//! before use. The calls follow libvirt's `virDomainGetVcpus`, `virDomainPinVcpu`,
//! `virDomainSetVcpus` and the proposed `virDomainGetVCPUMap`/`virDomainSetVCPUState`,
//! with libvirt's byte maps (CPU or vCPU `i` = bit `i % 8` of byte `i / 8`).
//!
//! The header is generated from this file by cbindgen (`cbindgen.toml`); the doc comments
//! below are the header's documentation, so they speak C.

#![allow(non_camel_case_types)]
// The entry points are called from C, where `unsafe` has no meaning: each one's pointer
// contract is in its doc comment (the header), and each dereference is in an `unsafe`
// block with its SAFETY comment. The crate has no Rust callers (no rlib).
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod error;

use std::ffi::{c_char, c_int, c_uchar, c_uint, c_ulonglong, c_void, CStr};
use std::ptr;

use error::{entry, CError};
pub use error::{
    xenvcpu_last_errno, xenvcpu_last_error, xenvcpu_last_error_code, XENVCPU_ERR_BUFFER, XENVCPU_ERR_CPUMAP,
    XENVCPU_ERR_DENIED, XENVCPU_ERR_INTERNAL, XENVCPU_ERR_INVALID, XENVCPU_ERR_NO_DOMAIN, XENVCPU_ERR_NO_HOST,
    XENVCPU_ERR_SYSTEM, XENVCPU_ERR_UNSUPPORTED, XENVCPU_ERR_VCPU, XENVCPU_OK,
};
use xv::{DomId, Host, VcpuId, VcpuMapFlag, VcpuMaps, VcpuSet};

/// A vCPU that is offline (`virVcpuState`'s `VIR_VCPU_OFFLINE`).
pub const XENVCPU_VCPU_OFFLINE: c_int = 0;
/// A vCPU that is running, or online and waiting for a CPU (`VIR_VCPU_RUNNING`).
pub const XENVCPU_VCPU_RUNNING: c_int = 1;
/// A vCPU that is online and waiting for an event (`VIR_VCPU_BLOCKED`).
pub const XENVCPU_VCPU_BLOCKED: c_int = 2;

/// xenvcpu_get_vcpu_map(): the vCPUs online per Xen (the default: no flag).
pub const XENVCPU_VCPU_MAP_ONLINE: c_uint = 0;
/// xenvcpu_get_vcpu_map(): every vCPU the domain has, `0 .. max vCPUs - 1`.
pub const XENVCPU_VCPU_MAP_POSSIBLE: c_uint = 1 << 0;
/// xenvcpu_get_vcpu_map(): the vCPUs that can be brought online (possible, not online).
pub const XENVCPU_VCPU_MAP_ONLINABLE: c_uint = 1 << 1;
/// xenvcpu_get_vcpu_map(): the vCPUs that can be taken offline (online, except vCPU 0).
pub const XENVCPU_VCPU_MAP_OFFLINABLE: c_uint = 1 << 2;
/// xenvcpu_get_vcpu_map(): the vCPUs requested online in xenstore (`cpu/N/availability`
/// = `online`), which the guest may not have followed yet; empty for a domain without
/// availability nodes (Domain-0).
pub const XENVCPU_VCPU_MAP_REQUESTED: c_uint = 1 << 3;

/// A connection to a host: its hypervisor and its xenstore.
///
/// Opaque: made by xenvcpu_open(), given back with xenvcpu_close(). One connection may be
/// used by several threads at once.
#[derive(Debug)]
pub struct xenvcpu_conn {
    host: Host,
    /// The simulated platform behind a `sim:///lab` connection (its guest threads run as
    /// long as it lives); `None` for a real host.
    _platform: Option<Box<xv::sim::SimPlatform>>,
}

/// One vCPU, as libvirt's `virVcpuInfo`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct xenvcpu_vcpu_info {
    /// The vCPU number.
    pub number: c_uint,
    /// XENVCPU_VCPU_OFFLINE, XENVCPU_VCPU_RUNNING or XENVCPU_VCPU_BLOCKED.
    pub state: c_int,
    /// CPU time the vCPU has used, in nanoseconds.
    pub cpu_time: c_ulonglong,
    /// The physical CPU it runs or last ran on; -1 while the vCPU is offline.
    pub cpu: c_int,
}

// The connection is shared by threads: everything in it must allow that.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<xenvcpu_conn>();
};

/// The version of the library, e.g. "0.1.0": a static string, never NULL, never freed.
#[no_mangle]
pub extern "C" fn xenvcpu_version() -> *const c_char {
    static VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the version has no NUL"),
    };
    VERSION.as_ptr()
}

/// Opens a connection.
///
/// `uri` NULL (or "xen:///", "xen:///system") opens this host: its hypervisor through
/// libxenctrl and, on first use, its xenstore (root in Domain-0). "sim:///lab" opens a
/// simulated host shaped like xenvcpu's test lab: 4 CPUs, Domain-0 (domain 0, 4 vCPUs),
/// "labguest" (domain 1, PV, 4 vCPUs of which 0-1 online; a simulated guest kernel
/// follows availability changes) and "hvmguest" (domain 2, HVM, 2 vCPUs); each
/// connection gets its own. "sim:///lab?cpus=N" is the same with N host CPUs (1-4096).
///
/// Returns the connection, or NULL on error (see xenvcpu_last_error(): an unknown URI,
/// no Xen, libxenctrl not found, not privileged).
#[no_mangle]
pub extern "C" fn xenvcpu_open(uri: *const c_char) -> *mut xenvcpu_conn {
    entry(ptr::null_mut(), || {
        let uri = if uri.is_null() {
            None
        } else {
            // SAFETY: the caller passes NULL or a NUL-terminated string (checked non-NULL
            // above), valid for the duration of the call.
            let s = unsafe { CStr::from_ptr(uri) };
            Some(s.to_str().map_err(|_| CError::invalid("the URI is not UTF-8"))?)
        };
        let conn = match uri {
            None | Some("xen:///" | "xen:///system") => xenvcpu_conn { host: Host::open()?, _platform: None },
            Some(sim) if sim.starts_with("sim:///lab") => {
                let platform = Box::new(sim_platform(sim)?);
                xenvcpu_conn { host: platform.host.clone(), _platform: Some(platform) }
            }
            Some(other) => {
                return Err(CError::invalid(format!(
                    "unknown URI {other:?}: give NULL (or \"xen:///system\") for this host, or \"sim:///lab\""
                )))
            }
        };
        Ok(Box::into_raw(Box::new(conn)))
    })
}

/// The simulated host of a `sim:///lab` URI: the lab's shape, with `?cpus=N` that many
/// host CPUs (1 to 4096; one socket, one node).
fn sim_platform(uri: &str) -> Result<xv::sim::SimPlatform, CError> {
    let bad =
        || CError::invalid(format!("unknown URI {uri:?}: give \"sim:///lab\" or \"sim:///lab?cpus=N\" (N 1-4096)"));
    let cpus = match uri.strip_prefix("sim:///lab") {
        Some("") => return Ok(xv::sim::SimPlatform::lab_like()?),
        Some(query) => {
            query.strip_prefix("?cpus=").and_then(|n| n.parse::<u32>().ok()).filter(|n| (1..=4096).contains(n))
        }
        None => None,
    };
    let cpus = cpus.ok_or_else(bad)?;
    let names = ["Domain-0", "labguest", "hvmguest"];
    let guests: Vec<xv::sim::SimGuest> = xv::hypervisor::SimHost::LAB_DOMAINS
        .into_iter()
        .zip(names)
        .map(|(domain, name)| xv::sim::SimGuest { domain, name: name.into() })
        .collect();
    let config = xv::hypervisor::SimConfig { nr_cpus: cpus, cores_per_socket: cpus, ..Default::default() };
    Ok(xv::sim::SimPlatform::new(config, &guests)?)
}

/// Closes a connection made by xenvcpu_open() and frees it; NULL is ignored. No call may
/// use the connection, in any thread, once this has started.
#[no_mangle]
pub extern "C" fn xenvcpu_close(c: *mut xenvcpu_conn) {
    entry((), || {
        if !c.is_null() {
            // SAFETY: a non-NULL `c` was returned by xenvcpu_open() (Box::into_raw) and is
            // not used again by the caller (the contract above), so it is ours to free.
            drop(unsafe { Box::from_raw(c) });
        }
        Ok(())
    })
}

/// The connection behind `c`.
fn conn<'a>(c: *const xenvcpu_conn) -> Result<&'a xenvcpu_conn, CError> {
    // SAFETY: a non-NULL `c` comes from xenvcpu_open() and stays valid until
    // xenvcpu_close(), which the caller does not call while this call runs; the connection
    // is only read (it is Sync).
    unsafe { c.as_ref() }.ok_or_else(|| CError::invalid("the connection is NULL"))
}

/// Checks that `p` is not NULL, naming it in the error.
fn non_null<T>(p: *const T, what: &str) -> Result<(), CError> {
    if p.is_null() {
        return Err(CError::invalid(format!("{what} is NULL")));
    }
    Ok(())
}

/// Finds a domain by id or name.
///
/// `name_or_id` is a domain id in decimal ("0", "12") or a domain name ("Domain-0",
/// "labguest", found as xl does through xenstore). Writes the domain id to `*domid`.
///
/// Returns 0, or -1 on error: XENVCPU_ERR_NO_DOMAIN when no domain has that id or name,
/// XENVCPU_ERR_INVALID for a NULL argument or an empty string.
#[no_mangle]
pub extern "C" fn xenvcpu_domain_lookup(c: *mut xenvcpu_conn, name_or_id: *const c_char, domid: *mut c_uint) -> c_int {
    entry(-1, || {
        let conn = conn(c)?;
        non_null(name_or_id, "the domain name or id")?;
        non_null(domid, "domid")?;
        // SAFETY: non-NULL (checked), NUL-terminated per the contract, valid for the call.
        let text = unsafe { CStr::from_ptr(name_or_id) };
        let text = text.to_str().map_err(|_| CError::invalid("the domain name is not UTF-8"))?;
        if text.is_empty() {
            return Err(CError::invalid("the domain name or id is empty"));
        }
        let id = if text.bytes().all(|b| b.is_ascii_digit()) {
            let id = text.parse::<u32>().map(DomId).map_err(|_| xv::Error::NoSuchDomainName { name: text.into() })?;
            conn.host.domain_info(id)?;
            id
        } else {
            conn.host.domain_id(text)?
        };
        // SAFETY: non-NULL (checked), and the caller gives a writable unsigned int.
        unsafe { domid.write(id.get()) };
        Ok(0)
    })
}

/// Writes the name of domain `domid` (from xenstore) into `buf`, NUL-terminated.
///
/// Returns the name's length (without the NUL; 0 for a domain without a name), or -1 on
/// error: XENVCPU_ERR_BUFFER when `buflen` is not more than the length (nothing is
/// written), XENVCPU_ERR_NO_DOMAIN, XENVCPU_ERR_INVALID for NULL arguments.
#[no_mangle]
pub extern "C" fn xenvcpu_domain_name(c: *mut xenvcpu_conn, domid: c_uint, buf: *mut c_char, buflen: usize) -> c_int {
    entry(-1, || {
        let conn = conn(c)?;
        non_null(buf, "buf")?;
        conn.host.domain_info(DomId(domid))?;
        let name = conn.host.domain_name(DomId(domid))?.unwrap_or_default();
        if name.len() >= buflen {
            return Err(CError::buffer(format!(
                "the name of domain {domid} needs {} bytes with its NUL; the buffer has {buflen}",
                name.len() + 1
            )));
        }
        // SAFETY: `buf` is non-NULL (checked) and has `buflen` writable bytes (the
        // contract); `name.len() + 1 <= buflen` (checked), and a String cannot overlap it.
        unsafe {
            ptr::copy_nonoverlapping(name.as_ptr(), buf.cast::<u8>(), name.len());
            buf.add(name.len()).write(0);
        }
        Ok(c_int::try_from(name.len()).unwrap_or(c_int::MAX))
    })
}

/// The number of CPU ids of the host (Xen's max_cpu_id + 1), offline ones included: CPU
/// maps of xenvcpu_get_vcpus() and xenvcpu_pin_vcpu() need (n + 7) / 8 bytes to name
/// them all. Returns it, or -1 on error.
#[no_mangle]
pub extern "C" fn xenvcpu_host_cpus(c: *mut xenvcpu_conn) -> c_int {
    entry(-1, || Ok(c_int::try_from(conn(c)?.host.nr_cpus()).unwrap_or(c_int::MAX)))
}

/// The number of vCPUs domain `domid` has, online or not (libvirt's
/// virDomainGetMaxVcpus; fixed when the domain was made). Returns it, or -1 on error.
#[no_mangle]
pub extern "C" fn xenvcpu_domain_max_vcpus(c: *mut xenvcpu_conn, domid: c_uint) -> c_int {
    entry(-1, || {
        let dom = conn(c)?.host.domain(DomId(domid))?;
        Ok(c_int::try_from(dom.max_vcpus()).unwrap_or(c_int::MAX))
    })
}

/// The state of the first vCPUs of domain `domid`, and their hard affinity (libvirt's
/// virDomainGetVcpus).
///
/// Fills `info[0 .. n - 1]` with vCPUs 0 .. n - 1, n = min(maxinfo, the domain's vCPUs).
/// When `cpumaps` is not NULL it is an array of `maxinfo` maps of `maplen` bytes
/// (`maxinfo * maplen` bytes, as calloc(maxinfo, maplen)); vCPU v's hard affinity is
/// written at `cpumaps + v * maplen` in libvirt's format (CPU i = bit i % 8 of byte i / 8).
/// The rest of the array is zeroed. A map is always `maplen` bytes: past the host's CPUs
/// it is zero, and a `maplen` too small for the host TRUNCATES it, as libvirt does (CPUs
/// at or past maplen * 8 are not shown; see xenvcpu_host_cpus()).
///
/// `cpumaps` NULL needs `maplen` 0; a `cpumaps` needs `maplen` > 0. An online vCPU that
/// waits for a CPU is XENVCPU_VCPU_RUNNING; an offline one has `cpu` -1.
///
/// Returns n, the number of entries filled, or -1 on error: XENVCPU_ERR_INVALID (NULL
/// `c` or `info`, `maxinfo` < 1, `maplen` < 0 or not matching `cpumaps`),
/// XENVCPU_ERR_NO_DOMAIN, or a failed hypercall. Once the arguments are checked, an
/// error leaves the maps zeroed; an invalid argument leaves them untouched.
#[no_mangle]
pub extern "C" fn xenvcpu_get_vcpus(
    c: *mut xenvcpu_conn,
    domid: c_uint,
    info: *mut xenvcpu_vcpu_info,
    maxinfo: c_int,
    cpumaps: *mut c_uchar,
    maplen: c_int,
) -> c_int {
    entry(-1, || {
        let conn = conn(c)?;
        non_null(info, "info")?;
        let maxinfo = usize::try_from(maxinfo)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| CError::invalid(format!("maxinfo must be at least 1, not {maxinfo}")))?;
        let maplen = usize::try_from(maplen).map_err(|_| CError::invalid(format!("maplen {maplen} is negative")))?;
        match (cpumaps.is_null(), maplen) {
            (true, 0) | (false, 1..) => {}
            (true, _) => return Err(CError::invalid("cpumaps is NULL but maplen is not 0")),
            (false, _) => return Err(CError::invalid("cpumaps is given but maplen is 0")),
        }
        let maps = if cpumaps.is_null() {
            None
        } else {
            let len = maxinfo
                .checked_mul(maplen)
                .filter(|&len| isize::try_from(len).is_ok())
                .ok_or_else(|| CError::invalid(format!("maxinfo * maplen ({maxinfo} * {maplen}) overflows")))?;
            // SAFETY: `cpumaps` is non-NULL and points to `maxinfo * maplen` writable bytes
            // (the contract), a size that fits isize (checked). Writing zeros first makes
            // every byte initialised (calloc is not required of the caller) before a slice
            // is made of them; nothing else uses the memory during the call.
            unsafe {
                ptr::write_bytes(cpumaps, 0, len);
                Some(std::slice::from_raw_parts_mut(cpumaps, len))
            }
        };
        let dom = conn.host.domain(DomId(domid))?;
        let vcpus = dom.libvirt().get_vcpus(maxinfo, maps, maplen)?;
        for (i, v) in vcpus.iter().enumerate() {
            let out = xenvcpu_vcpu_info { number: v.number, state: v.state, cpu_time: v.cpu_time, cpu: v.cpu };
            // SAFETY: `info` is non-NULL and has `maxinfo` entries (the contract), and
            // `i < vcpus.len() <= maxinfo`; a write does not read the old value.
            unsafe { info.add(i).write(out) };
        }
        Ok(c_int::try_from(vcpus.len()).unwrap_or(c_int::MAX))
    })
}

/// Sets the hard affinity of vCPU `vcpu` of domain `domid` (libvirt's virDomainPinVcpu).
///
/// `cpumap` is `maplen` bytes in libvirt's format: CPU i usable = bit i % 8 of byte i / 8.
/// A map shorter than the host's is zero-extended; a longer one is accepted when the bytes
/// past the host are zero. A map that names a CPU the host lacks is refused (nothing is
/// dropped silently), and so is an empty map.
///
/// Returns 0, or -1 on error: XENVCPU_ERR_INVALID (NULL `c` or `cpumap`, `maplen` < 1),
/// XENVCPU_ERR_NO_DOMAIN, XENVCPU_ERR_VCPU (no such vCPU), XENVCPU_ERR_CPUMAP (a CPU
/// beyond the host, an empty map, or no online CPU in it), or a failed hypercall
/// (XENVCPU_ERR_SYSTEM, with xenvcpu_last_errno()).
#[no_mangle]
pub extern "C" fn xenvcpu_pin_vcpu(
    c: *mut xenvcpu_conn,
    domid: c_uint,
    vcpu: c_uint,
    cpumap: *const c_uchar,
    maplen: c_int,
) -> c_int {
    entry(-1, || {
        let conn = conn(c)?;
        non_null(cpumap, "cpumap")?;
        let maplen = usize::try_from(maplen)
            .ok()
            .filter(|&n| n > 0 && isize::try_from(n).is_ok())
            .ok_or_else(|| CError::invalid(format!("maplen must be at least 1, not {maplen}")))?;
        // SAFETY: `cpumap` is non-NULL and points to `maplen` initialised bytes (the
        // contract), a size that fits isize (checked); it is only read during the call.
        let map = unsafe { std::slice::from_raw_parts(cpumap, maplen) };
        let dom = conn.host.domain(DomId(domid))?;
        dom.libvirt().pin_vcpu(vcpu, map)?;
        Ok(0)
    })
}

/// Sets how many vCPUs of domain `domid` are online (libvirt's virDomainSetVcpus, xl
/// vcpu-set): vCPUs 0 .. nvcpus - 1 are requested online and the others offline, in one
/// xenstore transaction. A PV (or PVH) guest's kernel then follows; this call does not
/// wait for it (see xenvcpu_get_vcpus() or xenvcpu_get_vcpu_map()).
///
/// Returns 0, or -1 on error: XENVCPU_ERR_VCPU (`nvcpus` 0 or more than the domain's
/// vCPUs), XENVCPU_ERR_UNSUPPORTED (an HVM guest: its vCPUs are hotplugged through its
/// device model), XENVCPU_ERR_NO_DOMAIN, or a xenstore failure.
#[no_mangle]
pub extern "C" fn xenvcpu_set_vcpus(c: *mut xenvcpu_conn, domid: c_uint, nvcpus: c_uint) -> c_int {
    entry(-1, || {
        conn(c)?.host.domain(DomId(domid))?.set_vcpu_count(nvcpus)?;
        Ok(0)
    })
}

/// A map of the vCPUs of domain `domid`, chosen by `flags` (the proposed libvirt
/// virDomainGetVCPUMap): XENVCPU_VCPU_MAP_ONLINE (0, the default), _POSSIBLE, _ONLINABLE,
/// _OFFLINABLE or _REQUESTED; at most one.
///
/// Allocates the map, (vCPUs + 7) / 8 bytes in libvirt's format (vCPU i = bit i % 8 of
/// byte i / 8), and stores it in `*cpumap`; free it with xenvcpu_free().
///
/// Returns the map's length in bytes, or -1 on error (`*cpumap` is then NULL):
/// XENVCPU_ERR_INVALID (NULL arguments, unknown flags, more than one map asked for),
/// XENVCPU_ERR_NO_DOMAIN, a failed hypercall or xenstore read.
#[no_mangle]
pub extern "C" fn xenvcpu_get_vcpu_map(
    c: *mut xenvcpu_conn,
    domid: c_uint,
    cpumap: *mut *mut c_uchar,
    flags: c_uint,
) -> c_int {
    entry(-1, || {
        non_null(cpumap, "cpumap")?;
        // SAFETY: non-NULL (checked), and the caller gives a writable pointer.
        unsafe { cpumap.write(ptr::null_mut()) };
        let conn = conn(c)?;
        let flag = match flags {
            XENVCPU_VCPU_MAP_ONLINE => VcpuMapFlag::Online,
            XENVCPU_VCPU_MAP_POSSIBLE => VcpuMapFlag::Possible,
            XENVCPU_VCPU_MAP_ONLINABLE => VcpuMapFlag::Onlinable,
            XENVCPU_VCPU_MAP_OFFLINABLE => VcpuMapFlag::Offlinable,
            XENVCPU_VCPU_MAP_REQUESTED => VcpuMapFlag::Requested,
            other => {
                return Err(CError::invalid(format!(
                "flags {other:#x}: give one of XENVCPU_VCPU_MAP_ONLINE, _POSSIBLE, _ONLINABLE, _OFFLINABLE, _REQUESTED"
            )))
            }
        };
        let dom = conn.host.domain(DomId(domid))?;
        let possible = dom.all_vcpus();
        let online = match flag {
            VcpuMapFlag::Possible | VcpuMapFlag::Requested => VcpuSet::new(),
            _ => dom.online_vcpus()?,
        };
        let requested = match flag {
            VcpuMapFlag::Requested => dom.requested_vcpus()?,
            _ => None,
        };
        let onlinable = possible.difference(&online);
        let mut offlinable = online.clone();
        offlinable.remove(VcpuId(0));
        let maps = VcpuMaps { possible, online, requested, onlinable, offlinable };
        let bytes = maps.to_libvirt(flag, (dom.max_vcpus() as usize).div_ceil(8))?;
        let len = c_int::try_from(bytes.len()).map_err(|_| CError::invalid("the map is too long for an int"))?;
        // SAFETY: malloc of a non-zero size (a domain has at least one vCPU); the result
        // is checked for NULL before use.
        let out = unsafe { libc::malloc(bytes.len()) }.cast::<c_uchar>();
        if out.is_null() {
            return Err(CError::no_memory(bytes.len()));
        }
        // SAFETY: `out` has `bytes.len()` bytes (just allocated, not overlapping `bytes`);
        // `cpumap` is non-NULL and writable (checked above).
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len());
            cpumap.write(out);
        }
        Ok(len)
    })
}

/// Brings vCPU `vcpu` of domain `domid` online (`online` non-zero) or takes it offline
/// (0), leaving the other vCPUs as requested before (the proposed libvirt
/// virDomainSetVCPUState; libvirt's virDomainSetVcpu). Written in one xenstore
/// transaction; the guest's kernel then follows (this call does not wait). `flags` must
/// be 0.
///
/// Returns 0, or -1 on error: XENVCPU_ERR_VCPU (no such vCPU, or vCPU 0 offline),
/// XENVCPU_ERR_UNSUPPORTED (an HVM guest), XENVCPU_ERR_INVALID (`flags` not 0),
/// XENVCPU_ERR_NO_DOMAIN, or a xenstore failure.
#[no_mangle]
pub extern "C" fn xenvcpu_set_vcpu_state(
    c: *mut xenvcpu_conn,
    domid: c_uint,
    vcpu: c_int,
    online: c_int,
    flags: c_uint,
) -> c_int {
    entry(-1, || {
        let conn = conn(c)?;
        if flags != 0 {
            return Err(CError::invalid(format!("flags {flags:#x}: no flag is defined, give 0")));
        }
        let dom = conn.host.domain(DomId(domid))?;
        let vcpu = u32::try_from(vcpu)
            .map_err(|_| CError::new(XENVCPU_ERR_VCPU, format!("domain {domid}: vCPU {vcpu} is negative")))?;
        let set: VcpuSet = [VcpuId(vcpu)].into_iter().collect();
        dom.set_vcpus_online(&set, online != 0)?;
        Ok(0)
    })
}

/// Frees memory the library allocated for the caller (the map of xenvcpu_get_vcpu_map());
/// NULL is ignored.
#[no_mangle]
pub extern "C" fn xenvcpu_free(p: *mut c_void) {
    // SAFETY: `p` is NULL or was allocated by this library with malloc and not freed yet
    // (the contract); free cannot unwind.
    unsafe { libc::free(p) }
}
