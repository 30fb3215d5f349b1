//! A domain's vCPU affinity: set one vCPU's hard and/or soft map and get back the
//! effective maps Xen wrote, or pin several vCPUs as one operation that is rolled back on
//! failure.

use smallvec::SmallVec;

use crate::cpumap::CpuMap;
use crate::error::{Error, MapKind, Op, Result};
use crate::hypervisor::{AffinityCall, BatchStop};

use super::{with_maps, Domain, VcpuInfo};
use crate::ids::{VcpuId, VcpuSet};

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

    /// Whether both requests name the very same maps (the same `CpuMap`s, or none).
    fn same_maps(&self, other: &AffinityRequest<'_>) -> bool {
        let same = |a: Option<&CpuMap>, b: Option<&CpuMap>| match (a, b) {
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same(self.hard, other.hard) && same(self.soft, other.soft)
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

/// Why Xen dropped CPUs of a requested map from the effective one
/// ([`Effective::dropped_why`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Online CPUs that are not in the domain's cpupool.
    pub outside_pool: CpuMap,
    /// CPUs that are offline (an offline CPU is in no pool).
    pub offline: CpuMap,
    /// For the soft map: CPUs of the pool that are not in the hard map. Always empty for
    /// the hard map.
    pub outside_hard: CpuMap,
}

impl Dropped {
    /// Whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        self.outside_pool.is_empty() && self.offline.is_empty() && self.outside_hard.is_empty()
    }
}

impl Effective {
    /// The CPUs of the request that Xen dropped from the effective maps (offline or outside
    /// the cpupool; for soft, also outside hard). [`dropped_why`](Self::dropped_why) says
    /// which.
    pub fn dropped(&self, req: &AffinityRequest<'_>) -> (CpuMap, CpuMap) {
        let lost = |asked: Option<&CpuMap>, got: &Option<CpuMap>| match (asked, got) {
            (Some(a), Some(g)) => a.difference(g),
            _ => CpuMap::new(),
        };
        (lost(req.hard, &self.hard), lost(req.soft, &self.soft))
    }

    /// The CPUs [`dropped`](Self::dropped) names, each with the reason: outside the
    /// domain's cpupool (`pool_cpus`, e.g. [`Domain::pool`]'s `cpus`), offline (not in
    /// `online`, e.g. [`crate::HostInfo::online_cpus`]), or, for the soft map, outside the
    /// hard one. Returns (hard, soft).
    pub fn dropped_why(&self, req: &AffinityRequest<'_>, pool_cpus: &CpuMap, online: &CpuMap) -> (Dropped, Dropped) {
        let (hard, soft) = self.dropped(req);
        let split = |lost: &CpuMap| -> Dropped {
            let offline = lost.difference(online);
            let online_lost = lost.intersection(online);
            let outside_pool = online_lost.difference(pool_cpus);
            let outside_hard = online_lost.intersection(pool_cpus);
            Dropped { outside_pool, offline, outside_hard }
        };
        let hard = Dropped { outside_hard: CpuMap::new(), ..split(&hard) };
        (hard, split(&soft))
    }
}

/// Writes the request's maps into Xen's byte layout: `hard` and `soft` (each
/// [`crate::Host::cpumap_size`] bytes) for the maps it sets.
fn encode(req: &AffinityRequest<'_>, hard: &mut [u8], soft: &mut [u8]) -> Result<()> {
    if let Some(map) = req.hard {
        map.write_libvirt_bytes(hard)?;
    }
    if let Some(map) = req.soft {
        map.write_libvirt_bytes(soft)?;
    }
    Ok(())
}

/// The backend's description of `req` on `vcpu` in a batch: which maps it sets, forced or not.
fn call_of(vcpu: VcpuId, req: &AffinityRequest<'_>) -> AffinityCall {
    AffinityCall { vcpu: vcpu.get(), hard: req.hard.is_some(), soft: req.soft.is_some(), force: req.force }
}

/// `len` zero bytes: in `inline` when they fit (zeroed in place, no call), else in `heap`.
fn zeroed<'b, const N: usize>(inline: &'b mut [u8; N], heap: &'b mut Vec<u8>, len: usize) -> &'b mut [u8] {
    if len <= N {
        &mut inline[..len]
    } else {
        heap.resize(len, 0);
        heap
    }
}

impl Domain {
    /// [`Error::NoUsableCpu`] for `map` in `pool`, with the pool's name if xenstore has it.
    fn no_usable_cpu(&self, vcpu: VcpuId, map: CpuMap, pool: crate::Pool, errno: xen_sys::Errno) -> Error {
        let pool_name = self.host.pool_name(pool.id).ok().flatten();
        Error::NoUsableCpu { domid: self.id(), vcpu, map, pool: pool.id, pool_name, online: pool.cpus, errno }
    }

    /// Checks every hard map against the domain's cpupool (its online CPUs) before any
    /// change: Xen would refuse a map without any of them (`EINVAL`). Two reads
    /// (the domain's pool, then the pool), made only when a hard map is given.
    ///
    /// # Errors
    /// [`Error::NoUsableCpu`] naming the pool and its CPUs; a failed read.
    pub fn check_pool(&self, items: &[(VcpuId, AffinityRequest<'_>)]) -> Result<()> {
        self.check_pool_maps(items.iter().filter_map(|(vcpu, req)| req.hard.map(|hard| (*vcpu, hard))))
    }

    /// Checks each hard map (with the first vCPU that asks for it) against the domain's
    /// cpupool; reads the pool only if there is a map. A map that follows the very same map
    /// is not checked again.
    fn check_pool_maps<'r>(&self, mut maps: impl Iterator<Item = (VcpuId, &'r CpuMap)>) -> Result<()> {
        let Some(first) = maps.next() else { return Ok(()) };
        let pool = self.pool_raw()?;
        let mut checked: Option<&CpuMap> = None;
        for (vcpu, hard) in std::iter::once(first).chain(maps) {
            if checked.is_some_and(|c| std::ptr::eq(c, hard)) {
                continue;
            }
            if !hard.intersects(&pool.cpus) {
                let pool = crate::Pool::from(pool);
                return Err(self.no_usable_cpu(vcpu, hard.clone(), pool, xen_sys::Errno::new(libc::EINVAL)));
            }
            checked = Some(hard);
        }
        Ok(())
    }

    fn validate(&self, vcpu: VcpuId, req: &AffinityRequest<'_>) -> Result<()> {
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
    /// hard map has no online CPU of the domain's cpupool: named with its CPUs, read after
    /// Xen refused; [`pin`](Self::pin) refuses it before any hypercall),
    /// [`Error::DomainGone`], or a failed hypercall.
    pub fn set_affinity(&self, vcpu: VcpuId, req: &AffinityRequest<'_>) -> Result<Effective> {
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
    pub fn set_affinity_into(&self, vcpu: VcpuId, req: &AffinityRequest<'_>, out: &mut Effective) -> Result<()> {
        self.validate(vcpu, req)?;
        with_maps(self.host.cpumap_size(), |hard, soft| self.set_affinity_with(vcpu, req, out, hard, soft))
    }

    /// [`set_affinity_into`](Self::set_affinity_into) with its two map buffers.
    fn set_affinity_with(
        &self,
        vcpu: VcpuId,
        req: &AffinityRequest<'_>,
        out: &mut Effective,
        hard: &mut [u8],
        soft: &mut [u8],
    ) -> Result<()> {
        encode(req, hard, soft)?;
        self.set_affinity_bytes(vcpu, req, hard, soft)?;
        if let (Some(_), Some(eff)) = (req.hard, out.hard.as_mut()) {
            eff.assign_libvirt_bytes(hard);
        }
        if let (Some(_), Some(eff)) = (req.soft, out.soft.as_mut()) {
            eff.assign_libvirt_bytes(soft);
        }
        Ok(())
    }

    /// The hypercall of an affinity change whose maps are already in Xen's byte layout
    /// (`hard`/`soft`, each passed when `req` sets it), which Xen overwrites with the
    /// effective maps; its errno mapped to the library's error.
    fn set_affinity_bytes(
        &self,
        vcpu: VcpuId,
        req: &AffinityRequest<'_>,
        hard: &mut [u8],
        soft: &mut [u8],
    ) -> Result<()> {
        let result = self.host.hypervisor().set_affinity(
            self.id().get(),
            vcpu.get(),
            req.hard.map(|_| &mut *hard),
            req.soft.map(|_| &mut *soft),
            req.force,
        );
        result.map_err(|errno| self.set_affinity_error(vcpu, req, errno))
    }

    /// The error for a refused `xc_vcpu_setaffinity`.
    #[cold]
    fn set_affinity_error(&self, vcpu: VcpuId, req: &AffinityRequest<'_>, errno: xen_sys::Errno) -> Error {
        match errno.raw() {
            libc::EBUSY => Error::Busy { domid: self.id(), vcpu, errno },
            libc::EINVAL if req.hard.is_some() => match self.pool() {
                Ok(pool) if req.hard.is_some_and(|h| !h.intersects(&pool.cpus)) => {
                    self.no_usable_cpu(vcpu, req.hard.cloned().unwrap_or_default(), pool, errno)
                }
                _ => self.fail(Op::SetAffinity, Some(vcpu), errno),
            },
            _ => self.fail(Op::SetAffinity, Some(vcpu), errno),
        }
    }

    /// The error for a batch of changes ([`Hypervisor::set_affinities`](crate::hypervisor::Hypervisor::set_affinities))
    /// that stopped at the change `at` (its vCPU and request; `None` when the backend named
    /// no change of the batch): the identity check's error for `during`, or the refused
    /// write's.
    #[cold]
    fn batch_error(&self, during: &'static str, stop: BatchStop, at: Option<(VcpuId, AffinityRequest<'_>)>) -> Error {
        match (stop, at) {
            (BatchStop::Identity(read), _) => self.identity_error(during, read),
            (BatchStop::Call(errno), Some((vcpu, req))) => self.set_affinity_error(vcpu, &req, errno),
            (BatchStop::Call(errno), None) => self.fail(Op::SetAffinity, None, errno),
        }
    }

    /// Sets the same affinity on several vCPUs (e.g. all of them) as one operation.
    ///
    /// Every input is checked first, each hard map also against the domain's cpupool (a map
    /// with no online CPU of the pool is refused before any change, naming the pool and its
    /// CPUs), and the previous maps are read; if a hypercall then
    /// fails part-way, the vCPUs already changed are restored and the failure reported as
    /// [`Error::RolledBack`]: nothing is left half-applied.
    ///
    /// # Errors
    /// The validation errors of [`set_affinity`](Self::set_affinity) for any vCPU (before
    /// any change), or [`Error::RolledBack`] wrapping the failure.
    pub fn pin(&self, vcpus: &VcpuSet, req: &AffinityRequest<'_>) -> Result<Vec<(VcpuId, Effective)>> {
        self.pin_items(vcpus.iter().map(|v| (v, *req)), vcpus.count())
    }

    /// Sets a different affinity on each of several vCPUs as one operation, with the
    /// guarantees of [`pin`](Self::pin): everything is checked first, and a failure
    /// part-way restores the vCPUs already changed.
    ///
    /// # Errors
    /// As [`pin`](Self::pin).
    pub fn pin_each(&self, items: &[(VcpuId, AffinityRequest<'_>)]) -> Result<Vec<(VcpuId, Effective)>> {
        self.pin_items(items.iter().copied(), items.len())
    }

    /// [`pin_each`](Self::pin_each) of `n` items. Everything the hypercalls need is made
    /// before the first of them: the checks, the calls, the request maps in Xen's byte
    /// layout and every buffer. The hypercalls then run back to back, two batches
    /// ([`Hypervisor::get_affinities`](crate::hypervisor::Hypervisor::get_affinities) for
    /// the rollback's record, [`Hypervisor::set_affinities`](crate::hypervisor::Hypervisor::set_affinities)
    /// for the changes), and the effective maps are read after the last.
    fn pin_items<'r>(
        &self,
        items: impl Iterator<Item = (VcpuId, AffinityRequest<'r>)> + Clone,
        n: usize,
    ) -> Result<Vec<(VcpuId, Effective)>> {
        let size = self.host.cpumap_size();
        let per = 2 * size;
        // One buffer (on the stack for a few vCPUs of a small host): the maps as they are,
        // for a rollback (hard then soft per item), then each item's request, which Xen
        // overwrites with the effective maps.
        let (mut inline, mut heap) = ([0u8; 64], Vec::new());
        let buf = zeroed(&mut inline, &mut heap, 2 * per * n);
        let (previous, work) = buf.split_at_mut(per * n);
        let mut calls: SmallVec<[AffinityCall; 16]> = SmallVec::with_capacity(n);
        // The maps are checked and encoded once for a run of items with the same maps
        // (`pin`: every item; the others copy the slot before), the vCPU for each; each
        // run's hard map is kept for the pool check.
        let mut run: Option<AffinityRequest<'r>> = None;
        let mut hard_maps: SmallVec<[(VcpuId, &'r CpuMap); 2]> = SmallVec::new();
        for (i, (v, req)) in items.clone().enumerate() {
            if run.is_some_and(|r| r.same_maps(&req)) {
                self.check_vcpu(v)?;
                work.copy_within((i - 1) * per..i * per, i * per);
            } else {
                self.validate(v, &req)?;
                let (hard, soft) = work[i * per..(i + 1) * per].split_at_mut(size);
                encode(&req, hard, soft)?;
                run = Some(req);
                hard_maps.extend(req.hard.map(|hard| (v, hard)));
            }
            calls.push(call_of(v, &req));
        }
        let vcpus: SmallVec<[u32; 16]> = calls.iter().map(|c| c.vcpu).collect();
        let mut done = Vec::with_capacity(n);
        self.check_pool_maps(hard_maps.into_iter())?;
        self.read_maps(&vcpus, true, previous)?;
        let outcome = self.host.hypervisor().set_affinities(self.id().get(), &self.info.uuid, &calls, work);
        let made = outcome.map_or_else(|(i, _)| i.min(n), |()| n);
        for ((v, req), slot) in items.clone().zip(work.chunks_exact(per)).take(made) {
            let (hard, soft) = slot.split_at(size);
            let eff = Effective {
                hard: req.hard.map(|_| CpuMap::from_libvirt_bytes(hard)),
                soft: req.soft.map(|_| CpuMap::from_libvirt_bytes(soft)),
            };
            done.push((v, eff));
        }
        let Err((i, stop)) = outcome else { return Ok(done) };
        let failed = self.batch_error("an affinity change", stop, items.clone().nth(i));
        let saved: Vec<VcpuInfo> = done
            .iter()
            .zip(previous.chunks_exact(per))
            .map(|(&(vcpu, _), maps)| {
                let (hard, soft) = maps.split_at(size);
                VcpuInfo {
                    vcpu,
                    hard: CpuMap::from_libvirt_bytes(hard),
                    soft: CpuMap::from_libvirt_bytes(soft),
                    ..VcpuInfo::empty()
                }
            })
            .collect();
        let (restored, restore_failures) = self.restore_affinity(&saved);
        Err(Error::RolledBack { failed: Box::new(failed), restored, restore_failures })
    }

    /// Sets each item's hard map in turn, each write after an identity check, going on past
    /// a failure: each vCPU stands alone and nothing is rolled back (the agent's repairs).
    /// One outcome per item, in order. Like [`pin`](Self::pin), everything is made before
    /// the first hypercall, and the writes go to the backend as batches
    /// ([`Hypervisor::set_affinities`](crate::hypervisor::Hypervisor::set_affinities)):
    /// one, plus one more after each failure.
    pub(crate) fn set_hard_each(&self, items: &[(VcpuId, &CpuMap)], during: &'static str) -> Vec<Result<()>> {
        let size = self.host.cpumap_size();
        let per = 2 * size;
        let mut outcomes: Vec<Result<()>> = items.iter().map(|_| Ok(())).collect();
        let (mut inline, mut heap) = ([0u8; 64], Vec::new());
        let buf = zeroed(&mut inline, &mut heap, per * items.len());
        let mut calls: SmallVec<[AffinityCall; 16]> = SmallVec::with_capacity(items.len());
        let mut item_of: SmallVec<[usize; 16]> = SmallVec::with_capacity(items.len());
        for (i, &(vcpu, map)) in items.iter().enumerate() {
            let req = AffinityRequest::hard(map);
            let slot = &mut buf[calls.len() * per..(calls.len() + 1) * per];
            let (hard, soft) = slot.split_at_mut(size);
            match self.validate(vcpu, &req).and_then(|()| encode(&req, hard, soft)) {
                Ok(()) => {
                    calls.push(call_of(vcpu, &req));
                    item_of.push(i);
                }
                Err(e) => outcomes[i] = Err(e),
            }
        }
        let hv = self.host.hypervisor();
        let mut start = 0;
        while start < calls.len() {
            let Err((at, stop)) = hv.set_affinities(
                self.id().get(),
                &self.info.uuid,
                &calls[start..],
                &mut buf[start * per..calls.len() * per],
            ) else {
                break;
            };
            let Some(&i) = item_of.get(start + at) else { break };
            let (vcpu, map) = items[i];
            outcomes[i] = Err(self.batch_error(during, stop, Some((vcpu, AffinityRequest::hard(map)))));
            start += at + 1;
        }
        outcomes
    }

    /// Restores vCPUs to the affinity recorded in `saved` (forced, past any pin
    /// override), checking before each write that the domain is still this one, and
    /// reports every outcome: the vCPUs restored and each failure. Once the domain is
    /// gone or replaced, nothing more is written (each remaining vCPU fails with that).
    pub fn restore_affinity(&self, saved: &[VcpuInfo]) -> (VcpuSet, Vec<(VcpuId, Error)>) {
        let mut restored = VcpuSet::new();
        let mut failures = Vec::new();
        for v in saved {
            let result = self
                .ensure_same("a restore")
                .and_then(|()| self.set_affinity(v.vcpu, &AffinityRequest::both(&v.hard, &v.soft).forced()));
            match result {
                Ok(_) => {
                    restored.insert(v.vcpu);
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
        self.host.hypervisor().set_max_vcpus(self.id().get(), max).map_err(|errno| match errno.raw() {
            libc::EINVAL => Error::MaxVcpusOnSelf { domid: self.id(), errno },
            _ => self.fail(Op::MaxVcpus, None, errno),
        })
    }
}
