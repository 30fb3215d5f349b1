//! [`Domain`]: the vCPUs of one domain — their state, their affinity, their maximum — and a
//! libvirt-shaped layer over the same calls.

mod affinity;
mod availability;
mod cpu_policy;
mod libvirt;
mod numa;
mod placement;

pub use affinity::{AffinityRequest, Dropped, Effective};
pub use availability::{AvailabilityChange, VcpuMapFlag, VcpuMaps};
pub use libvirt::{Libvirt, LibvirtVcpuInfo};
pub use numa::AdvisoryNodeset;

use smallvec::SmallVec;

use crate::cpumap::CpuMap;
use crate::error::{Error, Op, Result};
use crate::hypervisor::{DomainInfo, MAX_CPUMAP_BYTES};
use crate::ids::{DomId, PhysCpu, VcpuId, VcpuSet};
use crate::Host;

/// What a vCPU is doing.
///
/// Unlike libvirt's Xen drivers, an online vCPU that is neither running nor blocked is
/// [`Runnable`](Self::Runnable), not offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VcpuState {
    /// Down: the guest took it offline (or never brought it up).
    Offline,
    /// On a physical CPU now.
    Running,
    /// Waiting for an event.
    Blocked,
    /// Online and ready, waiting for a physical CPU.
    Runnable,
}

impl VcpuState {
    /// libvirt's `virVcpuState`: `OFFLINE` 0, `RUNNING` 1 (also for runnable), `BLOCKED` 2.
    pub const fn to_libvirt(self) -> i32 {
        match self {
            VcpuState::Offline => 0,
            VcpuState::Running | VcpuState::Runnable => 1,
            VcpuState::Blocked => 2,
        }
    }
}

/// One vCPU's state and affinity (`xc_vcpu_getinfo` + `xc_vcpu_getaffinity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcpuInfo {
    /// The vCPU number.
    pub vcpu: VcpuId,
    /// Its state.
    pub state: VcpuState,
    /// Time it has spent running, in ns.
    pub cpu_time_ns: u64,
    /// The physical CPU it runs or last ran on; `None` while offline (libvirt's -1).
    pub cpu: Option<PhysCpu>,
    /// Hard affinity, as set.
    pub hard: CpuMap,
    /// Soft affinity, as set.
    pub soft: CpuMap,
}

impl VcpuInfo {
    /// An empty record to fill with [`Domain::vcpu_info_into`].
    pub fn empty() -> Self {
        VcpuInfo {
            vcpu: VcpuId(0),
            state: VcpuState::Offline,
            cpu_time_ns: 0,
            cpu: None,
            hard: CpuMap::new(),
            soft: CpuMap::new(),
        }
    }
}

/// One domain's vCPUs.
///
/// The handle caches the domain's vCPU maximum, which Xen fixes at creation, so range
/// checks cost no hypercall.
#[derive(Debug, Clone)]
pub struct Domain {
    host: Host,
    info: DomainInfo,
    max_vcpu_id: u32,
}

/// Runs `f` with two zeroed stack buffers of `size` bytes (`size <= MAX_CPUMAP_BYTES`).
///
/// Hosts of up to 256 CPUs get 32-byte buffers: zeroing the largest supported map
/// (512 bytes, twice) on every call would cost more than the rest of the library's work on
/// an affinity update, and far more under emulation, where every store is slow.
pub(crate) fn with_maps<R>(size: usize, f: impl FnOnce(&mut [u8], &mut [u8]) -> R) -> R {
    const SMALL: usize = 32;
    if size <= SMALL {
        let (mut a, mut b) = ([0u8; SMALL], [0u8; SMALL]);
        f(&mut a[..size], &mut b[..size])
    } else {
        let (mut a, mut b) = ([0u8; MAX_CPUMAP_BYTES], [0u8; MAX_CPUMAP_BYTES]);
        f(&mut a[..size], &mut b[..size])
    }
}

impl Domain {
    pub(crate) fn new(host: Host, info: DomainInfo) -> Result<Domain> {
        let max_vcpu_id = info.max_vcpu_id.ok_or_else(|| Error::NoVcpus { domid: info.domid })?;
        Ok(Domain { host, info, max_vcpu_id })
    }

    /// The domain id.
    pub fn id(&self) -> DomId {
        self.info.domid
    }

    /// The host the domain runs on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The domain's information as it was when the handle was made.
    pub fn info(&self) -> &DomainInfo {
        &self.info
    }

    /// Fresh information about the domain.
    ///
    /// # Errors
    /// [`Error::NoSuchDomain`] once it is gone, or a failed hypercall.
    pub fn refresh(&self) -> Result<DomainInfo> {
        self.host.domain_info(self.id())
    }

    /// The cpupool the domain is in now (read fresh: a domain can be moved between pools,
    /// `xl cpupool-migrate`), with its CPUs.
    ///
    /// # Errors
    /// [`Error::DomainGone`] once the domain is gone (as for every call on a handle),
    /// [`Error::NoSuchPool`] if the pool went away between the two calls, or a failed
    /// hypercall.
    pub fn pool(&self) -> Result<crate::Pool> {
        self.pool_raw().map(crate::Pool::from)
    }

    /// [`pool`](Self::pool) as the backend answered (a pin's pool check: no `Pool` built
    /// unless a map is refused).
    pub(crate) fn pool_raw(&self) -> Result<crate::hypervisor::RawPoolInfo> {
        let pool = match self.refresh() {
            Ok(info) => info.cpupool,
            Err(Error::NoSuchDomain { .. }) => {
                return Err(Error::DomainGone { domid: self.id(), op: Op::DomainInfo, errno: None })
            }
            Err(e) => return Err(e),
        };
        self.host.pool_raw(pool)
    }

    /// The number of vCPUs the domain has (`max_vcpu_id + 1`), online or not.
    pub fn max_vcpus(&self) -> u32 {
        self.max_vcpu_id + 1
    }

    /// Every vCPU of the domain, `0..max_vcpus()`.
    pub fn all_vcpus(&self) -> VcpuSet {
        VcpuSet::all(self.max_vcpus())
    }

    pub(crate) fn check_vcpu(&self, vcpu: VcpuId) -> Result<()> {
        if vcpu.get() > self.max_vcpu_id {
            return Err(Error::VcpuOutOfRange { domid: self.id(), vcpu, max_vcpu_id: VcpuId(self.max_vcpu_id) });
        }
        Ok(())
    }

    /// Checks that the domain id still names the domain this handle was made for (same
    /// handle/uuid, not dying): multi-step and long operations call it before every write,
    /// so that a domain destroyed and re-created under the same id is never written to.
    /// `during` names the step about to be made, for the error.
    ///
    /// # Errors
    /// [`Error::DomainGone`] when no domain (or a dying one) has the id,
    /// [`Error::DomainReplaced`] when another domain has it, or a failed hypercall.
    pub fn ensure_same(&self, during: &'static str) -> Result<()> {
        match self.host.hypervisor().domain_identity(self.id().get()) {
            Ok(Some((uuid, false))) if uuid == self.info.uuid => Ok(()),
            read => Err(self.identity_error(during, read)),
        }
    }

    /// The error for an identity read ([`Hypervisor::domain_identity`](crate::hypervisor::Hypervisor::domain_identity))
    /// that is not this live domain: another domain's uuid is [`Error::DomainReplaced`], no
    /// domain or a dying one [`Error::DomainGone`], a failed read its hypercall error.
    pub(crate) fn identity_error(
        &self,
        during: &'static str,
        read: Result<Option<([u8; 16], bool)>, xen_sys::Errno>,
    ) -> Error {
        match read {
            Ok(Some((uuid, _))) if uuid != self.info.uuid => Error::DomainReplaced {
                domid: self.id(),
                during,
                expected: crate::Uuid(self.info.uuid),
                found: crate::Uuid(uuid),
            },
            Ok(_) => Error::DomainGone { domid: self.id(), op: Op::DomainInfo, errno: None },
            Err(errno) => self.host.error(Op::DomainInfo, Some(self.id()), None, errno),
        }
    }

    /// The error for a failed hypercall on this domain: `ESRCH` when the domain is gone is
    /// [`Error::DomainGone`].
    pub(crate) fn fail(&self, op: Op, vcpu: Option<VcpuId>, errno: xen_sys::Errno) -> Error {
        if errno.raw() == libc::ESRCH && matches!(self.host.hypervisor().domain_info(self.id().get()), Ok(None)) {
            return Error::DomainGone { domid: self.id(), op, errno: Some(errno) };
        }
        self.host.error(op, Some(self.id()), vcpu, errno)
    }

    /// One vCPU's state and affinity: `xc_vcpu_getinfo` and `xc_vcpu_getaffinity`.
    ///
    /// # Errors
    /// [`Error::VcpuOutOfRange`] (before any hypercall), [`Error::DomainGone`], or a failed
    /// hypercall.
    pub fn vcpu_info(&self, vcpu: VcpuId) -> Result<VcpuInfo> {
        let mut out = VcpuInfo::empty();
        self.vcpu_info_into(vcpu, &mut out)?;
        Ok(out)
    }

    /// As [`vcpu_info`](Self::vcpu_info), into a record whose maps are reused: once `out`
    /// has held this host's maps, this allocates nothing.
    ///
    /// # Errors
    /// As [`vcpu_info`](Self::vcpu_info); `out` is unspecified on error.
    pub fn vcpu_info_into(&self, vcpu: VcpuId, out: &mut VcpuInfo) -> Result<()> {
        self.check_vcpu(vcpu)?;
        let hv = self.host.hypervisor();
        let raw = hv.vcpu_info(self.id().get(), vcpu.get()).map_err(|e| self.fail(Op::VcpuInfo, Some(vcpu), e))?;
        with_maps(self.host.cpumap_size(), |hard, soft| {
            hv.get_affinity(self.id().get(), vcpu.get(), Some(&mut *hard), Some(&mut *soft))
                .map_err(|e| self.fail(Op::GetAffinity, Some(vcpu), e))?;
            out.hard.assign_libvirt_bytes(hard);
            out.soft.assign_libvirt_bytes(soft);
            Ok::<_, Error>(())
        })?;
        out.vcpu = vcpu;
        out.state = match (raw.online, raw.running, raw.blocked) {
            (false, _, _) => VcpuState::Offline,
            (true, true, _) => VcpuState::Running,
            (true, false, true) => VcpuState::Blocked,
            (true, false, false) => VcpuState::Runnable,
        };
        out.cpu_time_ns = raw.cpu_time_ns;
        out.cpu = raw.online.then_some(PhysCpu(raw.cpu));
        Ok(())
    }

    /// Reads the affinity maps of `n` vCPUs (`vcpus`, in order; their range is the
    /// caller's to have checked) in Xen's byte layout into `out`: one `xc_vcpu_getaffinity`
    /// per vCPU, no state read. Per vCPU `out` holds the hard map, then the soft map when
    /// `soft` is set, each [`Host::cpumap_size`] bytes. For operations that need the maps
    /// alone (a rollback's record, a reconcile), in one allocation.
    pub(crate) fn maps_into(
        &self,
        vcpus: impl Iterator<Item = VcpuId>,
        n: usize,
        soft: bool,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let size = self.host.cpumap_size();
        let per = if soft { 2 * size } else { size };
        out.clear();
        out.resize(per * n, 0);
        let vcpus: SmallVec<[u32; 64]> = vcpus.map(VcpuId::get).collect();
        self.read_maps(&vcpus, soft, out)
    }

    /// [`maps_into`](Self::maps_into) into a buffer of exactly one slot per vCPU:
    /// [`Hypervisor::get_affinities`](crate::hypervisor::Hypervisor::get_affinities), its
    /// failure named with the vCPU it stopped at.
    pub(crate) fn read_maps(&self, vcpus: &[u32], soft: bool, out: &mut [u8]) -> Result<()> {
        self.host
            .hypervisor()
            .get_affinities(self.id().get(), vcpus, soft, out)
            .map_err(|(i, e)| self.fail(Op::GetAffinity, vcpus.get(i).copied().map(VcpuId), e))
    }

    /// Every vCPU's state and affinity, `0..max_vcpus()`.
    ///
    /// # Errors
    /// [`Error::DomainGone`] if the domain disappears part-way (nothing partial is
    /// returned), or a failed hypercall.
    pub fn vcpus(&self) -> Result<Vec<VcpuInfo>> {
        let mut out = Vec::new();
        self.vcpus_into(&mut out)?;
        Ok(out)
    }

    /// As [`vcpus`](Self::vcpus), into `out`, reusing its records and their maps: `out`
    /// ends with one record per vCPU, `0..max_vcpus()`. Once `out` has held as many vCPUs
    /// of this host, this allocates nothing, so a periodic listing (an agent's pass, a
    /// monitor's) costs its hypercalls and little else: the two per vCPU of
    /// [`vcpu_info`](Self::vcpu_info).
    ///
    /// # Errors
    /// As [`vcpus`](Self::vcpus); `out`'s contents are unspecified on error.
    pub fn vcpus_into(&self, out: &mut Vec<VcpuInfo>) -> Result<()> {
        out.resize_with(self.max_vcpus() as usize, VcpuInfo::empty);
        for (v, info) in (0..).map(VcpuId).zip(out.iter_mut()) {
            self.vcpu_info_into(v, info)?;
        }
        Ok(())
    }

    /// The vCPUs that are online, per Xen.
    ///
    /// # Errors
    /// As [`vcpus`](Self::vcpus).
    pub fn online_vcpus(&self) -> Result<VcpuSet> {
        let hv = self.host.hypervisor();
        let mut online = VcpuSet::new();
        for v in self.all_vcpus().iter() {
            if hv.vcpu_info(self.id().get(), v.get()).map_err(|e| self.fail(Op::VcpuInfo, Some(v), e))?.online {
                online.insert(v);
            }
        }
        Ok(online)
    }
}
