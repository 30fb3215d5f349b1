//! vCPU availability: how many vCPUs a running PV or PVH guest has online, and which.
//!
//! The toolstack writes `/local/domain/<domid>/cpu/<n>/availability` = `online` or
//! `offline` for every vCPU `0..=max_vcpu_id`; the guest kernel watches `cpu` and brings
//! vCPUs up or down. Xen's per-vCPU `online` flag then shows what the guest did. Every
//! change here is written for all vCPUs in one xenstore transaction (a conflicting writer
//! makes it retry, never leaves a mix), as libxl does, and can optionally wait until the
//! guest has followed — which xl and libvirt do not.
//!
//! libxl uses these keys for PV and PVH guests alike, and so does xenvcpu. (Which guests
//! act on them is the guest kernel's business: Linux on x86 registers its watch for PV
//! domains, and whether a PVH guest follows depends on its kernel.) HVM guests get vCPUs
//! hot(un)plugged through their device model (QEMU's ACPI CPU hotplug), which xenvcpu does
//! not drive: they get [`Error::Unsupported`] and nothing is written.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::hypervisor::GuestType;
use crate::ids::{VcpuId, VcpuSet};
use crate::xenstore::{paths, transact, Transaction, TxId, XenStore};
use crate::Domain;

/// How often a conflicting transaction is retried before giving up.
const TRANSACTION_ATTEMPTS: u32 = 16;

/// How often [`Domain::wait_for_vcpus`] polls Xen.
const POLL: Duration = Duration::from_millis(50);

/// The vCPU maps of a domain by flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcpuMaps {
    /// Every vCPU the domain has: `0..=max_vcpu_id`.
    pub possible: VcpuSet,
    /// Online per Xen.
    pub online: VcpuSet,
    /// Requested online in xenstore (`availability` = `online`); `None` when the domain has
    /// no availability nodes (dom0, or a domain not built by libxl).
    pub requested: Option<VcpuSet>,
    /// Can be brought online: possible ∖ online.
    pub onlinable: VcpuSet,
    /// Can be taken offline: online ∖ {0}.
    pub offlinable: VcpuSet,
}

/// Which map of [`VcpuMaps`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuMapFlag {
    /// [`VcpuMaps::possible`].
    Possible,
    /// [`VcpuMaps::online`].
    Online,
    /// [`VcpuMaps::requested`] (empty when the domain has none).
    Requested,
    /// [`VcpuMaps::onlinable`].
    Onlinable,
    /// [`VcpuMaps::offlinable`].
    Offlinable,
}

impl VcpuMaps {
    /// One map by flag.
    pub fn get(&self, flag: VcpuMapFlag) -> VcpuSet {
        match flag {
            VcpuMapFlag::Possible => self.possible.clone(),
            VcpuMapFlag::Online => self.online.clone(),
            VcpuMapFlag::Requested => self.requested.clone().unwrap_or_default(),
            VcpuMapFlag::Onlinable => self.onlinable.clone(),
            VcpuMapFlag::Offlinable => self.offlinable.clone(),
        }
    }

    /// One map by flag in libvirt's byte layout, `maplen` bytes (vCPU `i` = bit `i % 8` of
    /// byte `i / 8`).
    ///
    /// # Errors
    /// [`Error::CpuMap`] when a vCPU does not fit in `maplen` bytes.
    pub fn to_libvirt(&self, flag: VcpuMapFlag, maplen: usize) -> Result<Vec<u8>> {
        Ok(self.get(flag).as_map().to_libvirt_bytes(maplen)?)
    }
}

/// What a change of availability did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityChange {
    /// The vCPUs requested online before.
    pub before: Option<VcpuSet>,
    /// The vCPUs requested online now.
    pub after: VcpuSet,
    /// Whether anything was written (false: the request was already in place).
    pub written: bool,
}

impl Domain {
    /// The checks of [`Domain::set_vcpu_count`], made before anything is changed.
    pub(crate) fn check_count(&self, count: u32) -> Result<()> {
        if count == 0 || count > self.max_vcpus() {
            return Err(Error::VcpuCountOutOfRange { domid: self.id(), requested: count, max: self.max_vcpus() });
        }
        self.require_xenstore_hotplug()
    }

    /// The checks of [`Domain::set_vcpus_online`], made before anything is changed.
    pub(crate) fn check_state_change(&self, vcpus: &VcpuSet, online: bool) -> Result<()> {
        if vcpus.is_empty() {
            return Err(Error::InvalidArgument("no vCPU given".into()));
        }
        if let Some(last) = vcpus.last().filter(|&l| l.get() >= self.max_vcpus()) {
            return Err(Error::VcpuOutOfRange {
                domid: self.id(),
                vcpu: last,
                max_vcpu_id: VcpuId(self.max_vcpus() - 1),
            });
        }
        if !online && vcpus.contains(VcpuId(0)) {
            return Err(Error::Vcpu0Offline { domid: self.id() });
        }
        self.require_xenstore_hotplug()
    }

    /// Availability through xenstore is how PV and PVH guests get vCPUs hot(un)plugged
    /// (libxl writes the keys for both); an HVM guest's vCPUs come and go through its
    /// device model (QEMU's ACPI CPU hotplug), which xenvcpu does not drive.
    fn require_xenstore_hotplug(&self) -> Result<()> {
        match self.info().guest_type() {
            GuestType::Pv | GuestType::Pvh => Ok(()),
            GuestType::Hvm => Err(Error::Unsupported(format!(
                "domain {}: vCPU availability through xenstore is unsupported for HVM guests: \
                 their vCPU hotplug goes through the device model (QEMU, ACPI), which xenvcpu \
                 does not drive",
                self.id()
            ))),
        }
    }

    /// The vCPUs whose `availability` node says `online`; `None` when the domain has no
    /// availability nodes at all.
    ///
    /// # Errors
    /// [`Error::XenStoreUnavailable`], or a failed xenstore read other than a missing node.
    pub fn requested_vcpus(&self) -> Result<Option<VcpuSet>> {
        read_requested(self.host().store()?, TxId::NONE, self.id().get(), self.max_vcpus()).map_err(|e| self.xs(e))
    }

    /// A xenstore failure as the error to report (see [`crate::Host::store_error`]).
    fn xs(&self, e: Error) -> Error {
        match e {
            Error::XenStore(e) => self.host().store_error(e),
            e => e,
        }
    }

    /// The vCPU maps by flag: possible, online (per Xen), requested (per xenstore),
    /// onlinable, offlinable.
    ///
    /// # Errors
    /// A failed hypercall or xenstore read.
    pub fn vcpu_maps(&self) -> Result<VcpuMaps> {
        let possible = self.all_vcpus();
        let online = self.online_vcpus()?;
        let requested = self.requested_vcpus()?;
        let onlinable = possible.difference(&online);
        let mut offlinable = online.clone();
        offlinable.remove(VcpuId(0));
        Ok(VcpuMaps { possible, online, requested, onlinable, offlinable })
    }

    /// Sets how many vCPUs are online (libvirt's SetVcpus, `xl vcpu-set`): vCPUs `0..count`
    /// online and the rest offline, written for every vCPU in one transaction. When that is
    /// already the request, nothing is written.
    ///
    /// # Errors
    /// [`Error::VcpuCountOutOfRange`] for 0 or more than [`Domain::max_vcpus`],
    /// [`Error::Unsupported`] for HVM guests (PV and PVH are supported; both checks before
    /// anything is written), or a
    /// xenstore failure (nothing partial is left: the transaction is aborted).
    pub fn set_vcpu_count(&self, count: u32) -> Result<AvailabilityChange> {
        self.check_count(count)?;
        let want = VcpuSet::all(count);
        self.write_requested(|_| Ok(want.clone()))
    }

    /// Brings the chosen vCPUs online or takes them offline (per-vCPU hotplug, libvirt's
    /// `virDomainSetVcpu`), leaving the others as requested before; sparse online sets are
    /// allowed. All vCPUs are written in one transaction.
    ///
    /// # Errors
    /// [`Error::VcpuOutOfRange`], [`Error::Vcpu0Offline`], [`Error::InvalidArgument`] (no
    /// vCPU given), [`Error::Unsupported`] for HVM guests — all before anything is written
    /// — or a xenstore failure.
    pub fn set_vcpus_online(&self, vcpus: &VcpuSet, online: bool) -> Result<AvailabilityChange> {
        self.check_state_change(vcpus, online)?;
        let online_now = self.online_vcpus()?;
        self.write_requested(|current| {
            // Without availability nodes, start from what Xen says is online.
            let base = current.cloned().unwrap_or_else(|| online_now.clone());
            Ok(if online { base.union(vcpus) } else { base.difference(vcpus) })
        })
    }

    /// Reads the current request and writes `next(current)` for every vCPU, in one
    /// transaction retried on conflict.
    fn write_requested(&self, next: impl Fn(Option<&VcpuSet>) -> Result<VcpuSet>) -> Result<AvailabilityChange> {
        let store = self.host().store()?;
        let (domid, max) = (self.id().get(), self.max_vcpus());
        // A domain-level error is the closure's value: it writes nothing, so committing the
        // (empty) transaction is harmless.
        let outcome = transact(store, TRANSACTION_ATTEMPTS, |tx: &Transaction<'_>| {
            let before = match read_requested(store, tx.id(), domid, max) {
                Ok(before) => before,
                Err(Error::XenStore(e)) => return Err(e),
                Err(e) => return Ok(Err(e)),
            };
            let after = match next(before.as_ref()) {
                Ok(after) => after,
                Err(e) => return Ok(Err(e)),
            };
            let mut complete = before.is_some();
            for v in 0..max {
                complete = complete && tx.exists(&paths::availability(domid, v))?;
            }
            if complete && before.as_ref() == Some(&after) {
                return Ok(Ok(AvailabilityChange { before, after, written: false }));
            }
            // The id may have been reused since the handle was made: never write a
            // request meant for this domain into another one's keys.
            if let Err(e) = self.ensure_same("the availability write") {
                return Ok(Err(e));
            }
            for v in 0..max {
                let value = if after.contains(VcpuId(v)) { "online" } else { "offline" };
                tx.write(&paths::availability(domid, v), value)?;
            }
            Ok(Ok(AvailabilityChange { before, after, written: true }))
        })
        .map_err(|e| self.host().store_error(e))?;
        outcome
    }

    /// Waits until Xen reports exactly the vCPUs `want` online, polling every 50 ms.
    ///
    /// # Errors
    /// [`Error::VcpusDidNotFollow`] naming the vCPUs that did not follow within `timeout`,
    /// [`Error::DomainGone`] or [`Error::DomainReplaced`] when the domain is destroyed (or
    /// its id reused) while waiting, or a failed hypercall.
    pub fn wait_for_vcpus(&self, want: &VcpuSet, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            self.ensure_same("the wait for the guest")?;
            let online = self.online_vcpus()?;
            if online == *want {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                let vcpus = online.difference(want).union(&want.difference(&online));
                return Err(Error::VcpusDidNotFollow {
                    domid: self.id(),
                    vcpus,
                    requested: want.clone(),
                    online,
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(POLL.min(timeout.saturating_sub(start.elapsed())));
        }
    }
}

fn read_requested(store: &dyn XenStore, tx: TxId, domid: u32, max: u32) -> Result<Option<VcpuSet>> {
    if !store.exists(tx, &paths::cpu_dir(domid))? {
        return Ok(None);
    }
    let mut requested = VcpuSet::new();
    for v in 0..max {
        match store.read(tx, &paths::availability(domid, v)) {
            Ok(value) if value == b"online" => {
                requested.insert(VcpuId(v));
            }
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(requested))
}
