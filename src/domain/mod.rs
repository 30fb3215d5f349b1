//! [`Domain`]: the vCPUs of one domain — their state, their affinity, their maximum — and a
//! libvirt-shaped layer over the same calls.

mod availability;
mod placement;

pub use availability::{AvailabilityChange, VcpuMapFlag, VcpuMaps};

use crate::cpumap::{self, CpuMap};
use crate::error::{Error, MapKind, Op, Result};
use crate::hypervisor::{DomainInfo, MAX_CPUMAP_BYTES};
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
    pub vcpu: u32,
    /// Its state.
    pub state: VcpuState,
    /// Time it has spent running, in ns.
    pub cpu_time_ns: u64,
    /// The physical CPU it runs or last ran on; `None` while offline (libvirt's -1).
    pub cpu: Option<u32>,
    /// Hard affinity, as set.
    pub hard: CpuMap,
    /// Soft affinity, as set.
    pub soft: CpuMap,
}

impl VcpuInfo {
    /// An empty record to fill with [`Domain::vcpu_info_into`].
    pub fn empty() -> Self {
        VcpuInfo {
            vcpu: 0,
            state: VcpuState::Offline,
            cpu_time_ns: 0,
            cpu: None,
            hard: CpuMap::new(),
            soft: CpuMap::new(),
        }
    }
}

/// An affinity change: the maps to set (`None` leaves that map as it is) and whether to
/// force past a temporary pin override.
#[derive(Debug, Clone, Copy, Default)]
pub struct AffinityRequest<'a> {
    /// New hard affinity.
    pub hard: Option<&'a CpuMap>,
    /// New soft affinity.
    pub soft: Option<&'a CpuMap>,
    /// Pass `XEN_VCPUAFFINITY_FORCE`, undoing a temporary pin override.
    pub force: bool,
}

impl<'a> AffinityRequest<'a> {
    /// Set hard affinity only.
    pub fn hard(map: &'a CpuMap) -> Self {
        Self { hard: Some(map), ..Self::default() }
    }

    /// Set soft affinity only.
    pub fn soft(map: &'a CpuMap) -> Self {
        Self { soft: Some(map), ..Self::default() }
    }

    /// Set both.
    pub fn both(hard: &'a CpuMap, soft: &'a CpuMap) -> Self {
        Self { hard: Some(hard), soft: Some(soft), force: false }
    }

    /// The same request with `force` set.
    pub fn forced(self) -> Self {
        Self { force: true, ..self }
    }
}

/// The effective affinity Xen wrote back after a change: hard ∩ the online CPUs of the
/// domain's cpupool, soft ∩ hard. `None` for a map that was not changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effective {
    /// Effective hard affinity.
    pub hard: Option<CpuMap>,
    /// Effective soft affinity.
    pub soft: Option<CpuMap>,
}

impl Effective {
    /// The CPUs of the request that Xen dropped from the effective maps (offline or outside
    /// the cpupool; for soft, also outside hard).
    pub fn dropped(&self, req: &AffinityRequest<'_>) -> (CpuMap, CpuMap) {
        let lost = |asked: Option<&CpuMap>, got: &Option<CpuMap>| match (asked, got) {
            (Some(a), Some(g)) => a.difference(g),
            _ => CpuMap::new(),
        };
        (lost(req.hard, &self.hard), lost(req.soft, &self.soft))
    }
}

/// libvirt's `virVcpuInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibvirtVcpuInfo {
    /// The vCPU number.
    pub number: u32,
    /// `virVcpuState`: 0 offline, 1 running (or runnable), 2 blocked.
    pub state: i32,
    /// CPU time in ns.
    pub cpu_time: u64,
    /// The physical CPU, or -1 (`VIR_VCPU_INFO_CPU_OFFLINE`) when offline.
    pub cpu: i32,
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
fn with_maps<R>(size: usize, f: impl FnOnce(&mut [u8], &mut [u8]) -> R) -> R {
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
        let max_vcpu_id = info.max_vcpu_id.ok_or(Error::NoVcpus { domid: info.domid })?;
        Ok(Domain { host, info, max_vcpu_id })
    }

    /// The domain id.
    pub fn id(&self) -> u32 {
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

    /// The number of vCPUs the domain has (`max_vcpu_id + 1`), online or not.
    pub fn max_vcpus(&self) -> u32 {
        self.max_vcpu_id + 1
    }

    fn check_vcpu(&self, vcpu: u32) -> Result<()> {
        if vcpu > self.max_vcpu_id {
            return Err(Error::VcpuOutOfRange { domid: self.id(), vcpu, max_vcpu_id: self.max_vcpu_id });
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
        let hv = self.host.hypervisor();
        match hv.domain_info(self.id()) {
            Ok(Some(now)) if now.uuid != self.info.uuid => Err(Error::DomainReplaced {
                domid: self.id(),
                during,
                expected: crate::Uuid(self.info.uuid),
                found: crate::Uuid(now.uuid),
            }),
            Ok(Some(now)) if !now.flags.dying => Ok(()),
            Ok(_) => Err(Error::DomainGone { domid: self.id(), op: Op::DomainInfo, errno: None }),
            Err(errno) => Err(self.host.error(Op::DomainInfo, Some(self.id()), None, errno)),
        }
    }

    /// The error for a failed hypercall on this domain: `ESRCH` when the domain is gone is
    /// [`Error::DomainGone`].
    fn fail(&self, op: Op, vcpu: Option<u32>, errno: xen_sys::Errno) -> Error {
        if errno.raw() == libc::ESRCH && matches!(self.host.hypervisor().domain_info(self.id()), Ok(None)) {
            return Error::DomainGone { domid: self.id(), op, errno: Some(errno) };
        }
        self.host.error(op, Some(self.id()), vcpu, errno)
    }

    /// One vCPU's state and affinity: `xc_vcpu_getinfo` and `xc_vcpu_getaffinity`.
    ///
    /// # Errors
    /// [`Error::VcpuOutOfRange`] (before any hypercall), [`Error::DomainGone`], or a failed
    /// hypercall.
    pub fn vcpu_info(&self, vcpu: u32) -> Result<VcpuInfo> {
        let mut out = VcpuInfo::empty();
        self.vcpu_info_into(vcpu, &mut out)?;
        Ok(out)
    }

    /// As [`vcpu_info`](Self::vcpu_info), into a record whose maps are reused: once `out`
    /// has held this host's maps, this allocates nothing.
    ///
    /// # Errors
    /// As [`vcpu_info`](Self::vcpu_info); `out` is unspecified on error.
    pub fn vcpu_info_into(&self, vcpu: u32, out: &mut VcpuInfo) -> Result<()> {
        self.check_vcpu(vcpu)?;
        let hv = self.host.hypervisor();
        let raw = hv.vcpu_info(self.id(), vcpu).map_err(|e| self.fail(Op::VcpuInfo, Some(vcpu), e))?;
        with_maps(self.host.cpumap_size(), |hard, soft| {
            hv.get_affinity(self.id(), vcpu, Some(&mut *hard), Some(&mut *soft))
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
        out.cpu = raw.online.then_some(raw.cpu);
        Ok(())
    }

    /// Every vCPU's state and affinity, `0..max_vcpus()`.
    ///
    /// # Errors
    /// [`Error::DomainGone`] if the domain disappears part-way (nothing partial is
    /// returned), or a failed hypercall.
    pub fn vcpus(&self) -> Result<Vec<VcpuInfo>> {
        (0..self.max_vcpus()).map(|v| self.vcpu_info(v)).collect()
    }

    /// The vCPUs that are online, per Xen.
    ///
    /// # Errors
    /// As [`vcpus`](Self::vcpus).
    pub fn online_vcpus(&self) -> Result<CpuMap> {
        let hv = self.host.hypervisor();
        let mut online = CpuMap::new();
        for v in 0..self.max_vcpus() {
            if hv.vcpu_info(self.id(), v).map_err(|e| self.fail(Op::VcpuInfo, Some(v), e))?.online {
                online.insert(v as usize);
            }
        }
        Ok(online)
    }

    fn validate(&self, vcpu: u32, req: &AffinityRequest<'_>) -> Result<()> {
        self.check_vcpu(vcpu)?;
        if req.hard.is_none() && req.soft.is_none() {
            return Err(Error::InvalidArgument("an affinity change needs a hard or a soft map (or both)".into()));
        }
        for (map, kind) in [(req.hard, MapKind::Hard), (req.soft, MapKind::Soft)] {
            if let Some(map) = map {
                if map.is_empty() {
                    return Err(Error::EmptyMap { domid: self.id(), vcpu, kind });
                }
                self.host.check_cpus(map)?;
            }
        }
        Ok(())
    }

    /// Sets a vCPU's hard and/or soft affinity (`xc_vcpu_setaffinity`) and returns the
    /// effective maps Xen wrote back, so the caller can see CPUs that were dropped.
    ///
    /// Inputs are checked before any hypercall.
    ///
    /// # Errors
    /// Before any hypercall: [`Error::VcpuOutOfRange`], [`Error::EmptyMap`],
    /// [`Error::CpusBeyondHost`], [`Error::InvalidArgument`] (no map). From Xen:
    /// [`Error::Busy`] (a temporary pin override: use force), [`Error::NoUsableCpu`] (the
    /// hard map has no online CPU of the cpupool), [`Error::DomainGone`], or a failed
    /// hypercall.
    pub fn set_affinity(&self, vcpu: u32, req: &AffinityRequest<'_>) -> Result<Effective> {
        let mut out = Effective {
            hard: req.hard.map(|_| CpuMap::with_capacity(self.host.nr_cpus())),
            soft: req.soft.map(|_| CpuMap::with_capacity(self.host.nr_cpus())),
        };
        self.set_affinity_into(vcpu, req, &mut out)?;
        Ok(out)
    }

    /// As [`set_affinity`](Self::set_affinity), writing the effective maps into `out`'s
    /// maps (for each map set; a `None` slot is left alone). Once `out` has held this
    /// host's maps, this allocates nothing: the hot path of affinity updates.
    ///
    /// # Errors
    /// As [`set_affinity`](Self::set_affinity); `out` is unspecified on error.
    pub fn set_affinity_into(&self, vcpu: u32, req: &AffinityRequest<'_>, out: &mut Effective) -> Result<()> {
        self.validate(vcpu, req)?;
        with_maps(self.host.cpumap_size(), |hard, soft| self.set_affinity_with(vcpu, req, out, hard, soft))
    }

    /// [`set_affinity_into`](Self::set_affinity_into) with its two map buffers.
    fn set_affinity_with(
        &self,
        vcpu: u32,
        req: &AffinityRequest<'_>,
        out: &mut Effective,
        hard: &mut [u8],
        soft: &mut [u8],
    ) -> Result<()> {
        if let Some(map) = req.hard {
            map.write_libvirt_bytes(hard)?;
        }
        if let Some(map) = req.soft {
            map.write_libvirt_bytes(soft)?;
        }
        let result = self.host.hypervisor().set_affinity(
            self.id(),
            vcpu,
            req.hard.map(|_| &mut *hard),
            req.soft.map(|_| &mut *soft),
            req.force,
        );
        if let Err(errno) = result {
            return Err(match errno.raw() {
                libc::EBUSY => Error::Busy { domid: self.id(), vcpu, errno },
                libc::EINVAL if req.hard.is_some() => match self.host.info() {
                    Ok(info) => Error::NoUsableCpu {
                        domid: self.id(),
                        vcpu,
                        map: req.hard.cloned().unwrap_or_default(),
                        online: info.online_cpus(),
                        errno,
                    },
                    Err(_) => self.fail(Op::SetAffinity, Some(vcpu), errno),
                },
                _ => self.fail(Op::SetAffinity, Some(vcpu), errno),
            });
        }
        if let (Some(_), Some(eff)) = (req.hard, out.hard.as_mut()) {
            eff.assign_libvirt_bytes(hard);
        }
        if let (Some(_), Some(eff)) = (req.soft, out.soft.as_mut()) {
            eff.assign_libvirt_bytes(soft);
        }
        Ok(())
    }

    /// Sets the same affinity on several vCPUs (e.g. all of them) as one operation.
    ///
    /// Every input is checked first and the previous maps are read; if a hypercall then
    /// fails part-way, the vCPUs already changed are restored and the failure reported as
    /// [`Error::RolledBack`]: nothing is left half-applied.
    ///
    /// # Errors
    /// The validation errors of [`set_affinity`](Self::set_affinity) for any vCPU (before
    /// any change), or [`Error::RolledBack`] wrapping the failure.
    pub fn pin(&self, vcpus: &CpuMap, req: &AffinityRequest<'_>) -> Result<Vec<(u32, Effective)>> {
        let items: Vec<(u32, AffinityRequest<'_>)> =
            vcpus.iter().map(|v| (u32::try_from(v).unwrap_or(u32::MAX), *req)).collect();
        self.pin_each(&items)
    }

    /// Sets a different affinity on each of several vCPUs as one operation, with the
    /// guarantees of [`pin`](Self::pin): everything is checked first, and a failure
    /// part-way restores the vCPUs already changed.
    ///
    /// # Errors
    /// As [`pin`](Self::pin).
    pub fn pin_each(&self, items: &[(u32, AffinityRequest<'_>)]) -> Result<Vec<(u32, Effective)>> {
        for (v, req) in items {
            self.validate(*v, req)?;
        }
        let previous: Vec<VcpuInfo> = items.iter().map(|&(v, _)| self.vcpu_info(v)).collect::<Result<_>>()?;
        let mut done = Vec::with_capacity(items.len());
        for (v, req) in items {
            match self.ensure_same("an affinity change").and_then(|()| self.set_affinity(*v, req)) {
                Ok(eff) => done.push((*v, eff)),
                Err(failed) => {
                    let (restored, restore_failures) = self.restore_affinity(&previous[..done.len()]);
                    return Err(Error::RolledBack { failed: Box::new(failed), restored, restore_failures });
                }
            }
        }
        Ok(done)
    }

    /// Restores vCPUs to the affinity recorded in `saved` (forced, past any pin
    /// override), checking before each write that the domain is still this one, and
    /// reports every outcome: the vCPUs restored and each failure. Once the domain is
    /// gone or replaced, nothing more is written (each remaining vCPU fails with that).
    pub fn restore_affinity(&self, saved: &[VcpuInfo]) -> (CpuMap, Vec<(u32, Error)>) {
        let mut restored = CpuMap::new();
        let mut failures = Vec::new();
        for v in saved {
            let result = self
                .ensure_same("a restore")
                .and_then(|()| self.set_affinity(v.vcpu, &AffinityRequest::both(&v.hard, &v.soft).forced()));
            match result {
                Ok(_) => {
                    restored.insert(v.vcpu as usize);
                }
                Err(e) => failures.push((v.vcpu, e)),
            }
        }
        (restored, failures)
    }

    /// Asks for a vCPU maximum (`xc_domain_max_vcpus`).
    ///
    /// Since Xen 4.12 the maximum is fixed at creation: a different value is refused
    /// before any hypercall; the same value performs the domctl, which Xen accepts for
    /// another domain (briefly pausing it to make sure every vCPU exists) and refuses for
    /// the calling domain itself.
    ///
    /// # Errors
    /// [`Error::MaxVcpusFixed`] (before any hypercall), [`Error::MaxVcpusOnSelf`], or a
    /// failed hypercall.
    pub fn set_max_vcpus(&self, max: u32) -> Result<()> {
        if max != self.max_vcpus() {
            return Err(Error::MaxVcpusFixed { domid: self.id(), current: self.max_vcpus(), requested: max });
        }
        self.host.hypervisor().set_max_vcpus(self.id(), max).map_err(|errno| match errno.raw() {
            libc::EINVAL => Error::MaxVcpusOnSelf { domid: self.id(), errno },
            _ => self.fail(Op::MaxVcpus, None, errno),
        })
    }

    // ---- The libvirt shape -----------------------------------------------------------

    /// libvirt's `virDomainPinVcpu`: sets hard affinity from a libvirt byte map.
    ///
    /// # Errors
    /// [`Error::CpuMap`] when the map sets CPUs the host lacks (refused, not dropped), and
    /// the errors of [`set_affinity`](Self::set_affinity).
    pub fn pin_vcpu(&self, vcpu: u32, cpumap: &[u8]) -> Result<()> {
        let map = with_maps(self.host.cpumap_size(), |xen, _| {
            cpumap::libvirt_to_xen(cpumap, xen, self.host.nr_cpus())?;
            Ok::<_, Error>(CpuMap::from_libvirt_bytes(xen))
        })?;
        self.set_affinity(vcpu, &AffinityRequest::hard(&map)).map(drop)
    }

    /// libvirt's `virDomainGetVcpus`: the first `min(maxinfo, max_vcpus())` vCPUs, and
    /// their hard affinity in `cpumaps` (vCPU `v` at `v * maplen`) when given.
    ///
    /// Fixes of libvirt's Xen drivers: an online runnable vCPU is `RUNNING` (1), not
    /// offline; an offline vCPU has cpu -1; the count returned is the number filled.
    ///
    /// # Errors
    /// [`Error::CpuMap`] when `cpumaps` is shorter than `n * maplen` or a map does not fit
    /// `maplen`, and the errors of [`vcpus`](Self::vcpus). On error `cpumaps` is zeroed.
    pub fn get_vcpus(&self, maxinfo: usize, cpumaps: Option<&mut [u8]>, maplen: usize) -> Result<Vec<LibvirtVcpuInfo>> {
        let n = maxinfo.min(self.max_vcpus() as usize);
        let mut cpumaps = cpumaps;
        if let Some(maps) = cpumaps.as_deref_mut() {
            let needed = n.checked_mul(maplen).ok_or(cpumap::CpuMapError::SizeOverflow { len: maplen, count: n })?;
            if maps.len() < needed {
                return Err(cpumap::CpuMapError::BufferTooSmall { what: "cpumaps", needed, got: maps.len() }.into());
            }
        }
        let result = self.fill_vcpus(n, cpumaps.as_deref_mut(), maplen);
        if result.is_err() {
            if let Some(maps) = cpumaps {
                maps[..n * maplen].fill(0);
            }
        }
        result
    }

    fn fill_vcpus(&self, n: usize, cpumaps: Option<&mut [u8]>, maplen: usize) -> Result<Vec<LibvirtVcpuInfo>> {
        with_maps(self.host.cpumap_size(), |xen, _| self.fill_vcpus_with(n, cpumaps, maplen, xen))
    }

    fn fill_vcpus_with(
        &self,
        n: usize,
        mut cpumaps: Option<&mut [u8]>,
        maplen: usize,
        xen: &mut [u8],
    ) -> Result<Vec<LibvirtVcpuInfo>> {
        let mut info = VcpuInfo::empty();
        let mut out = Vec::with_capacity(n);
        for v in 0..n as u32 {
            self.vcpu_info_into(v, &mut info)?;
            out.push(LibvirtVcpuInfo {
                number: v,
                state: info.state.to_libvirt(),
                cpu_time: info.cpu_time_ns,
                cpu: info.cpu.map_or(-1, |c| c as i32),
            });
            if let Some(maps) = cpumaps.as_deref_mut() {
                info.hard.write_libvirt_bytes(xen)?;
                let slot = cpumap::get_cpumap_mut(maps, maplen, v as usize);
                cpumap::xen_to_libvirt(xen, slot, self.host.nr_cpus())?;
            }
        }
        Ok(out)
    }
}
