//! The real backend: libxenctrl, loaded at run time by xen-sys.
//!
//! This file holds the main crate's only `unsafe` code: each block is one libxenctrl (or libxenguest) call
//! on the open handle, with buffers whose sizes are checked right before it. It also decides
//! what a failure *at open* means for libxenctrl ([`XenCtrlBackend::open`]); failures after
//! open are classified backend-neutrally by [`crate::Host`].

use std::ffi::c_int;
use std::ptr;

use xen_sys::{
    interface_versions, xc_cputopo_t, xc_domaininfo_t, xc_physinfo_t, xc_vcpuinfo_t, Errno, Interface,
    InterfaceVersions, OpenError, XEN_DOMINF_blocked, XEN_DOMINF_dying, XEN_DOMINF_hvm_guest, XEN_DOMINF_paused,
    XEN_DOMINF_running, XEN_DOMINF_shutdown, XenCtrl, XenVersion, XEN_INVALID_CORE_ID, XEN_INVALID_MAX_VCPU_ID,
    XEN_INVALID_NODE_ID, XEN_INVALID_SOCKET_ID, XEN_VCPUAFFINITY_FORCE, XEN_VCPUAFFINITY_HARD, XEN_VCPUAFFINITY_SOFT,
};

use super::cpuid::{CpuidLeaf, MsrEntry, RawCpuPolicy};
use super::{
    AffinityCall, BatchStop, CpuTopology, DomainFlags, DomainInfo, FeaturesetKind, Hypervisor, PhysInfo,
    PolicyCallError, RawPoolInfo, RawVcpuInfo,
};
use crate::cpumap::CpuMap;
use crate::error::{Error, Op};

/// The hypervisor reached through libxenctrl.
///
/// Shared by threads: libxenctrl handles opened without `XC_OPENFLAG_NON_REENTRANT` may be
/// used concurrently (xen-sys's [`Interface`] is `Send + Sync` on that ground).
#[derive(Debug)]
pub struct XenCtrlBackend {
    iface: Interface,
    cpumap_size: usize,
}

impl XenCtrlBackend {
    /// Loads libxenctrl (only a supported release: see xen-sys), opens the control
    /// interface, checks that the library's interface versions are the running
    /// hypervisor's, and sizes CPU maps (`xc_get_cpumap_size`, the first domctl/sysctl).
    ///
    /// # Errors
    /// * [`Error::NoXen`]: no privcmd device (checked first, so libxenctrl is not even
    ///   asked), or `xc_interface_open` says there is no hypervisor;
    /// * [`Error::LibraryNotFound`]: no usable libxenctrl (see
    ///   [`xen_sys::LoadError::kind`], e.g. only an unsupported release installed);
    /// * [`Error::Permission`]: `xc_interface_open` got `EACCES`/`EPERM` (not root in a
    ///   privileged domain), with what libxencall said;
    /// * [`Error::VersionMismatch`]: the library's and the hypervisor's interface versions
    ///   differ, either known from their releases before any other call, or because the
    ///   first sysctl was refused with `EACCES` (how Xen reports a mismatch);
    /// * [`Error::Hypercall`] (`op` [`Op::Open`] or [`Op::PhysInfo`]) for anything else.
    pub fn open() -> Result<Self, Error> {
        if !xen_sys::privcmd_present() {
            return Err(Error::NoXen(format!(
                "not running on a Xen hypervisor (no {} or {}): xenvcpu runs in dom0",
                xen_sys::PRIVCMD_PATHS[0],
                xen_sys::PRIVCMD_PATHS[1]
            )));
        }
        let iface = Interface::open().map_err(open_error)?;
        // SAFETY: `iface` is open for the whole call; the call takes no buffers.
        let size = unsafe { xen_sys::cpumap_size(iface.lib(), iface.as_ptr()) };
        let cpumap_size = size.map_err(|errno| match errno.raw() {
            libc::EACCES => Error::VersionMismatch {
                op: Op::PhysInfo,
                library: describe_library(iface.lib()),
                hypervisor: describe_release(iface.hypervisor_release()),
                errno: Some(errno),
            },
            _ => Error::Hypercall { op: Op::PhysInfo, domid: None, vcpu: None, errno },
        })?;
        Ok(Self { iface, cpumap_size })
    }

    fn lib(&self) -> &'static XenCtrl {
        self.iface.lib()
    }

    /// libxenguest of the loaded libxenctrl's release, loaded on first use (and cached by
    /// xen-sys, failure included).
    fn guest(&self) -> Result<&'static xen_sys::XenGuest, PolicyCallError> {
        xen_sys::xenguest(self.lib()).map_err(PolicyCallError::Library)
    }

    /// Reads a policy into a new libxenguest object with `get` and serialises it.
    fn read_policy(
        &self,
        get: impl FnOnce(&mut xen_sys::CpuPolicy<'static>) -> Result<(), Errno>,
    ) -> Result<RawCpuPolicy, PolicyCallError> {
        let mut policy = xen_sys::CpuPolicy::new(self.guest()?)?;
        get(&mut policy)?;
        // SAFETY: the handle is open and belongs to the libxenctrl the libxenguest was
        // loaded for (xen_sys::xenguest pairs them by release).
        let (leaves, msrs) = unsafe { policy.serialise(self.iface.as_ptr()) }?;
        Ok(RawCpuPolicy {
            leaves: leaves
                .iter()
                .map(|l| CpuidLeaf { leaf: l.leaf, subleaf: l.subleaf, eax: l.a, ebx: l.b, ecx: l.c, edx: l.d })
                .collect(),
            msrs: msrs.iter().map(|m| MsrEntry { index: m.idx, value: m.val }).collect(),
        })
    }

    /// Checks that an affinity buffer is exactly the size libxenctrl will read and write.
    fn check_map(&self, map: &Option<&mut [u8]>) -> Result<(), Errno> {
        match map {
            Some(m) if m.len() != self.cpumap_size => Err(Errno::new(libc::EINVAL)),
            _ => Ok(()),
        }
    }
}

/// The crate's error for a failed [`Interface::open`].
fn open_error(e: OpenError) -> Error {
    match e {
        OpenError::Library(load) => Error::LibraryNotFound(load),
        e @ OpenError::NoHypervisor { .. } => Error::NoXen(e.to_string()),
        e @ OpenError::Permission { .. } => Error::Permission(e.to_string()),
        OpenError::VersionMismatch { soname, library, hypervisor } => Error::VersionMismatch {
            op: Op::Open,
            library: format!("{soname} (Xen {})", versions(&library)),
            hypervisor: format!("Xen {}", versions(&hypervisor)),
            errno: None,
        },
        OpenError::Other { errno, .. } => Error::Hypercall { op: Op::Open, domid: None, vcpu: None, errno },
    }
}

/// `4.17, domctl interface 0x15, sysctl 0x15`.
fn versions(iv: &InterfaceVersions) -> String {
    format!("{}, domctl interface {:#x}, sysctl {:#x}", iv.release, iv.domctl, iv.sysctl)
}

/// `Xen 4.17, domctl interface 0x15, sysctl 0x15`, as far as known.
pub(crate) fn describe_release(release: Option<XenVersion>) -> String {
    match (release, release.and_then(interface_versions)) {
        (_, Some(iv)) => format!("Xen {}", versions(&iv)),
        (Some(v), None) => format!("Xen {v} (interface versions unknown to xenvcpu)"),
        (None, None) => "of unknown release".into(),
    }
}

/// `libxenctrl.so.4.17 (Xen 4.17, domctl interface 0x15, sysctl 0x15)`.
fn describe_library(lib: &XenCtrl) -> String {
    format!("{} ({})", lib.soname(), describe_release(lib.release()))
}

/// libxenctrl takes the vCPU as an `int` for the affinity calls.
fn vcpu_int(vcpu: u32) -> Result<c_int, Errno> {
    c_int::try_from(vcpu).map_err(|_| Errno::new(libc::EINVAL))
}

fn map_ptr(map: &mut Option<&mut [u8]>) -> *mut u8 {
    map.as_deref_mut().map_or(ptr::null_mut(), <[u8]>::as_mut_ptr)
}

fn flags_for(hard: &Option<&mut [u8]>, soft: &Option<&mut [u8]>) -> u32 {
    (if hard.is_some() { XEN_VCPUAFFINITY_HARD } else { 0 }) | (if soft.is_some() { XEN_VCPUAFFINITY_SOFT } else { 0 })
}

fn valid(id: u32, invalid: u32) -> Option<u32> {
    (id != invalid).then_some(id)
}

fn domain_info(raw: &xc_domaininfo_t) -> DomainInfo {
    let f = raw.flags;
    let shutdown = f & XEN_DOMINF_shutdown != 0;
    DomainInfo {
        domid: crate::DomId(u32::from(raw.domain)),
        flags: DomainFlags {
            dying: f & XEN_DOMINF_dying != 0,
            hvm: f & XEN_DOMINF_hvm_guest != 0,
            shutdown,
            paused: f & XEN_DOMINF_paused != 0,
            blocked: f & XEN_DOMINF_blocked != 0,
            running: f & XEN_DOMINF_running != 0,
        },
        shutdown_reason: shutdown.then(|| raw.shutdown_reason()),
        nr_online_vcpus: raw.nr_online_vcpus,
        max_vcpu_id: valid(raw.max_vcpu_id, XEN_INVALID_MAX_VCPU_ID),
        cpupool: raw.cpupool,
        cpu_time_ns: raw.cpu_time,
        tot_pages: raw.tot_pages,
        uuid: raw.handle,
        emulation_flags: raw.arch_config.emulation_flags,
    }
}

impl Hypervisor for XenCtrlBackend {
    fn cpumap_size(&self) -> usize {
        self.cpumap_size
    }

    fn physinfo(&self) -> Result<PhysInfo, Errno> {
        let mut info = xc_physinfo_t::default();
        // SAFETY: the handle is open; `info` is a valid, writable xc_physinfo_t that
        // libxenctrl fills completely on success.
        if unsafe { (self.lib().xc_physinfo)(self.iface.as_ptr(), &mut info) } < 0 {
            return Err(Errno::last());
        }
        Ok(PhysInfo {
            threads_per_core: info.threads_per_core,
            cores_per_socket: info.cores_per_socket,
            nr_cpus: info.nr_cpus,
            max_cpu_id: info.max_cpu_id,
            nr_nodes: info.nr_nodes,
            max_node_id: info.max_node_id,
            cpu_khz: info.cpu_khz,
        })
    }

    fn cpu_topology(&self, out: &mut Vec<CpuTopology>) -> Result<(), Errno> {
        let entries = self.cpumap_size * 8;
        let mut raw = vec![xc_cputopo_t::default(); entries];
        let mut num = u32::try_from(entries).map_err(|_| Errno::new(libc::EINVAL))?;
        // SAFETY: the handle is open; `raw` has `num` writable entries and libxenctrl
        // writes at most `num` of them, returning the count written in `num`.
        if unsafe { (self.lib().xc_cputopoinfo)(self.iface.as_ptr(), &mut num, raw.as_mut_ptr()) } < 0 {
            return Err(Errno::last());
        }
        out.clear();
        out.extend(raw.iter().take(num as usize).map(|t| CpuTopology {
            core: valid(t.core, XEN_INVALID_CORE_ID),
            socket: valid(t.socket, XEN_INVALID_SOCKET_ID),
            node: valid(t.node, XEN_INVALID_NODE_ID),
        }));
        Ok(())
    }

    fn domain_list(&self, first: u32, max: u32, out: &mut Vec<DomainInfo>) -> Result<(), Errno> {
        let mut raw = vec![xc_domaininfo_t::default(); max as usize];
        // SAFETY: the handle is open; `raw` has `max` writable elements and libxenctrl
        // writes at most `max_domains` = `max` of them.
        let n = unsafe { (self.lib().xc_domain_getinfolist)(self.iface.as_ptr(), first, max, raw.as_mut_ptr()) };
        if n < 0 {
            return Err(Errno::last());
        }
        out.extend(raw.iter().take(n as usize).map(domain_info));
        Ok(())
    }

    fn domain_info(&self, domid: u32) -> Result<Option<DomainInfo>, Errno> {
        // SAFETY: the handle is open for the whole call.
        let raw = unsafe { xen_sys::getinfo_one(self.lib(), self.iface.as_ptr(), domid) }?;
        Ok(raw.as_ref().map(domain_info))
    }

    fn domain_identity(&self, domid: u32) -> Result<Option<([u8; 16], bool)>, Errno> {
        // SAFETY: the handle is open for the whole call.
        let raw = unsafe { xen_sys::getinfo_one(self.lib(), self.iface.as_ptr(), domid) }?;
        Ok(raw.map(|r| (r.handle, r.flags & XEN_DOMINF_dying != 0)))
    }

    fn vcpu_info(&self, domid: u32, vcpu: u32) -> Result<RawVcpuInfo, Errno> {
        // libxenctrl stores the vCPU as 16 bits in the domctl: a larger one would alias.
        if vcpu > u32::from(u16::MAX) {
            return Err(Errno::new(libc::EINVAL));
        }
        let mut info = xc_vcpuinfo_t::default();
        // SAFETY: the handle is open; `info` is a valid, writable xc_vcpuinfo_t filled on
        // success.
        if unsafe { (self.lib().xc_vcpu_getinfo)(self.iface.as_ptr(), domid, vcpu, &mut info) } < 0 {
            return Err(Errno::last());
        }
        Ok(RawVcpuInfo {
            online: info.online != 0,
            blocked: info.blocked != 0,
            running: info.running != 0,
            cpu_time_ns: info.cpu_time,
            cpu: info.cpu,
        })
    }

    fn get_affinity(
        &self,
        domid: u32,
        vcpu: u32,
        mut hard: Option<&mut [u8]>,
        mut soft: Option<&mut [u8]>,
    ) -> Result<(), Errno> {
        self.check_map(&hard)?;
        self.check_map(&soft)?;
        let vcpu = vcpu_int(vcpu)?;
        let flags = flags_for(&hard, &soft);
        let (h, s) = (map_ptr(&mut hard), map_ptr(&mut soft));
        // SAFETY: the handle is open; each non-null map is exactly xc_get_cpumap_size()
        // bytes (checked above), the length libxenctrl writes; a null map goes with its
        // flag clear.
        if unsafe { (self.lib().xc_vcpu_getaffinity)(self.iface.as_ptr(), domid, vcpu, h, s, flags) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    fn set_affinity(
        &self,
        domid: u32,
        vcpu: u32,
        mut hard: Option<&mut [u8]>,
        mut soft: Option<&mut [u8]>,
        force: bool,
    ) -> Result<(), Errno> {
        self.check_map(&hard)?;
        self.check_map(&soft)?;
        let vcpu = vcpu_int(vcpu)?;
        let flags = flags_for(&hard, &soft) | if force { XEN_VCPUAFFINITY_FORCE } else { 0 };
        let (h, s) = (map_ptr(&mut hard), map_ptr(&mut soft));
        // SAFETY: the handle is open; each non-null map is exactly xc_get_cpumap_size()
        // bytes (checked above), the length libxenctrl reads and writes back; a null map
        // goes with its flag clear.
        if unsafe { (self.lib().xc_vcpu_setaffinity)(self.iface.as_ptr(), domid, vcpu, h, s, flags) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    fn get_affinities(&self, domid: u32, vcpus: &[u32], soft: bool, out: &mut [u8]) -> Result<(), (usize, Errno)> {
        let size = self.cpumap_size;
        let per = if soft { 2 * size } else { size };
        if out.len() != per * vcpus.len() {
            return Err((0, Errno::new(libc::EINVAL)));
        }
        let flags = XEN_VCPUAFFINITY_HARD | if soft { XEN_VCPUAFFINITY_SOFT } else { 0 };
        let (lib, xch) = (self.lib(), self.iface.as_ptr());
        for (i, (&vcpu, slot)) in vcpus.iter().zip(out.chunks_exact_mut(per)).enumerate() {
            let vcpu = vcpu_int(vcpu).map_err(|e| (i, e))?;
            let (hard, rest) = slot.split_at_mut(size);
            let soft_ptr = if soft { rest.as_mut_ptr() } else { ptr::null_mut() };
            // SAFETY: the handle is open; `hard` (and `rest` when `soft`, its flag set) is
            // exactly xc_get_cpumap_size() bytes, the length libxenctrl writes (the slot
            // sizes are checked above); with `soft` clear its pointer is null.
            if unsafe { (lib.xc_vcpu_getaffinity)(xch, domid, vcpu, hard.as_mut_ptr(), soft_ptr, flags) } < 0 {
                return Err((i, Errno::last()));
            }
        }
        Ok(())
    }

    fn set_affinities(
        &self,
        domid: u32,
        uuid: &[u8; 16],
        calls: &[AffinityCall],
        maps: &mut [u8],
    ) -> Result<(), (usize, BatchStop)> {
        let size = self.cpumap_size;
        if maps.len() != 2 * size * calls.len() {
            return Err((0, BatchStop::Call(Errno::new(libc::EINVAL))));
        }
        let (lib, xch) = (self.lib(), self.iface.as_ptr());
        for (i, (call, slot)) in calls.iter().zip(maps.chunks_exact_mut(2 * size)).enumerate() {
            // SAFETY: the handle is open for the whole call.
            match unsafe { xen_sys::getinfo_one(lib, xch, domid) } {
                Ok(Some(info)) if info.handle == *uuid && info.flags & XEN_DOMINF_dying == 0 => {}
                other => {
                    let read = other.map(|o| o.map(|r| (r.handle, r.flags & XEN_DOMINF_dying != 0)));
                    return Err((i, BatchStop::Identity(read)));
                }
            }
            let vcpu = vcpu_int(call.vcpu).map_err(|e| (i, BatchStop::Call(e)))?;
            let (hard, soft) = slot.split_at_mut(size);
            let h = if call.hard { hard.as_mut_ptr() } else { ptr::null_mut() };
            let s = if call.soft { soft.as_mut_ptr() } else { ptr::null_mut() };
            let flags = (if call.hard { XEN_VCPUAFFINITY_HARD } else { 0 })
                | (if call.soft { XEN_VCPUAFFINITY_SOFT } else { 0 })
                | (if call.force { XEN_VCPUAFFINITY_FORCE } else { 0 });
            // SAFETY: the handle is open; each non-null map is one half of the call's slot,
            // exactly xc_get_cpumap_size() bytes (the slot sizes are checked above), the
            // length libxenctrl reads and writes back; a null map goes with its flag clear.
            if unsafe { (lib.xc_vcpu_setaffinity)(xch, domid, vcpu, h, s, flags) } < 0 {
                return Err((i, BatchStop::Call(Errno::last())));
            }
        }
        Ok(())
    }

    fn set_max_vcpus(&self, domid: u32, max: u32) -> Result<(), Errno> {
        // SAFETY: the handle is open; the call takes no buffers.
        if unsafe { (self.lib().xc_domain_max_vcpus)(self.iface.as_ptr(), domid, max) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    fn node_affinity(&self, domid: u32) -> Result<CpuMap, Errno> {
        // SAFETY: the handle is open; the call takes no buffers.
        let size = unsafe { xen_sys::nodemap_size(self.lib(), self.iface.as_ptr()) }?;
        let mut map = vec![0u8; size];
        // SAFETY: the handle is open; `map` is exactly xc_get_nodemap_size() bytes, the
        // length libxenctrl writes.
        if unsafe { (self.lib().xc_domain_node_getaffinity)(self.iface.as_ptr(), domid, map.as_mut_ptr()) } < 0 {
            return Err(Errno::last());
        }
        Ok(CpuMap::from_libvirt_bytes(&map))
    }

    fn cpupool_info(&self, first: u32) -> Result<Option<RawPoolInfo>, Errno> {
        // SAFETY: the handle is open for the whole call; `cpumap_size` is what
        // xc_get_cpumap_size() returned for it at open (max_cpu_id is fixed while Xen runs),
        // the size libxenctrl gives the pool's map.
        let raw = unsafe { xen_sys::cpupool_info(self.lib(), self.iface.as_ptr(), first, self.cpumap_size) }?;
        Ok(raw.map(|p| RawPoolInfo {
            id: p.cpupool_id,
            sched_id: p.sched_id,
            n_dom: p.n_dom,
            cpus: CpuMap::from_libvirt_bytes(&p.cpumap),
        }))
    }

    fn cpupool_free_cpus(&self) -> Result<CpuMap, Errno> {
        // SAFETY: the handle is open for the whole call; `cpumap_size` is what
        // xc_get_cpumap_size() returned for it at open (max_cpu_id is fixed while Xen runs),
        // the size of the map libxenctrl allocates.
        let map = unsafe { xen_sys::cpupool_freeinfo(self.lib(), self.iface.as_ptr(), self.cpumap_size) }?;
        Ok(CpuMap::from_libvirt_bytes(&map))
    }

    fn cpu_featureset(&self, kind: FeaturesetKind) -> Result<Vec<u32>, PolicyCallError> {
        let guest = self.guest()?;
        // SAFETY: the handle is open and belongs to the libxenctrl `guest` was loaded for;
        // cpu_featureset sizes the buffer itself.
        Ok(unsafe { xen_sys::cpu_featureset(guest, self.iface.as_ptr(), kind.featureset_index()) }?)
    }

    fn system_cpu_policy(&self, kind: FeaturesetKind) -> Result<RawCpuPolicy, PolicyCallError> {
        let xch = self.iface.as_ptr();
        // SAFETY: `xch` is open and belongs to the libxenctrl of the policy's library.
        self.read_policy(|p| unsafe { p.get_system(xch, kind.policy_index()) })
    }

    fn domain_cpu_policy(&self, domid: u32) -> Result<RawCpuPolicy, PolicyCallError> {
        let xch = self.iface.as_ptr();
        // SAFETY: `xch` is open and belongs to the libxenctrl of the policy's library.
        self.read_policy(|p| unsafe { p.get_domain(xch, domid) })
    }

    fn describe(&self) -> String {
        format!("{} on hypervisor {}", describe_library(self.lib()), describe_release(self.iface.hypervisor_release()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_errors_map_to_the_crate_error_keeping_errno_and_libxenctrl_text() {
        let log = vec![xen_sys::LogMessage {
            level: xen_sys::LogLevel::Error,
            text: "xencall: Could not obtain handle on privileged command interface: Permission denied".into(),
        }];
        let perm = OpenError::classify(Errno::new(libc::EACCES), true).with_log(log);
        match open_error(perm) {
            Error::Permission(text) => assert!(text.contains("xencall: Could not obtain handle"), "{text}"),
            other => panic!("expected Permission, got {other:?}"),
        }
        let other = open_error(OpenError::classify(Errno::new(libc::ENOMEM), true));
        assert_eq!(other.errno(), Some(Errno::new(libc::ENOMEM)));
        let (library, hypervisor) =
            xen_sys::interface_mismatch(XenVersion::new(4, 18), XenVersion::new(4, 17)).expect("0x16 vs 0x15");
        let mismatch =
            open_error(OpenError::VersionMismatch { soname: "libxenctrl.so.4.18".into(), library, hypervisor });
        let text = mismatch.to_string();
        assert!(matches!(mismatch, Error::VersionMismatch { op: Op::Open, errno: None, .. }), "{text}");
        assert!(
            text.contains("libxenctrl.so.4.18 (Xen 4.18, domctl interface 0x16, sysctl 0x15)")
                && text.contains("Xen 4.17, domctl interface 0x15, sysctl 0x15"),
            "{text}"
        );
    }

    #[test]
    fn releases_are_described_with_their_interface_versions_when_known() {
        assert_eq!(describe_release(Some(XenVersion::new(4, 19))), "Xen 4.19, domctl interface 0x17, sysctl 0x15");
        assert_eq!(describe_release(Some(XenVersion::new(4, 23))), "Xen 4.23 (interface versions unknown to xenvcpu)");
        assert_eq!(describe_release(None), "of unknown release");
    }
}
