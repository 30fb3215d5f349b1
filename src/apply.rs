//! Applying a placement ([`crate::placement`]) to a running domain: its vCPUs, the vCPUs
//! that come online later, and its emulator (device model).

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use crate::cpumap::CpuMap;
use crate::error::{Error, Result};
use crate::placement::{LivePlacement, Resolved};
use crate::xenstore::{TxId, XenStore};
use crate::{AffinityRequest, AvailabilityChange, Domain, Effective, HostInfo};

impl Domain {
    /// Pins every online vCPU to its resolved CPUs (hard affinity) as one operation:
    /// everything is checked first, and a failure part-way restores the vCPUs already
    /// changed. Offline vCPUs are left alone (see [`Domain::set_vcpu_count_placed`] for
    /// when they come online).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the placement is for another vCPU count, the
    /// errors of [`Domain::pin_each`].
    pub fn apply_placement(&self, resolved: &Resolved) -> Result<Vec<(u32, Effective)>> {
        if resolved.vcpus.len() != self.max_vcpus() as usize {
            return Err(Error::InvalidArgument(format!(
                "the placement is for {} vCPUs; domain {} has {}",
                resolved.vcpus.len(),
                self.id(),
                self.max_vcpus()
            )));
        }
        let online = self.online_vcpus()?;
        let items: Vec<(u32, AffinityRequest<'_>)> = resolved
            .vcpus
            .iter()
            .filter(|p| online.contains(p.vcpu as usize))
            .map(|p| (p.vcpu, AffinityRequest::hard(&p.cpus)))
            .collect();
        self.pin_each(&items)
    }

    /// [`Domain::set_vcpu_count`] under a placement policy: vCPUs about to come online are
    /// first pinned as the policy says (their `<vcpupin>`, else `<vcpu cpuset>`), and
    /// vCPUs going offline lose their `<vcpupin>` in `live`.
    ///
    /// # Errors
    /// Those of [`Domain::set_vcpu_count`] and [`Domain::pin_each`]; if writing the
    /// availability fails, the pins made for it are undone and `live` is unchanged.
    pub fn set_vcpu_count_placed(
        &self,
        store: &dyn XenStore,
        count: u32,
        live: &mut LivePlacement,
        host: &HostInfo,
        nodeset: Option<&CpuMap>,
    ) -> Result<AvailabilityChange> {
        self.check_count(count)?;
        let after = CpuMap::all(count as usize);
        self.placed(store, |_| after, live, host, nodeset, |dom| dom.set_vcpu_count(store, count))
    }

    /// [`Domain::set_vcpus_online`] under a placement policy, as
    /// [`Domain::set_vcpu_count_placed`].
    ///
    /// # Errors
    /// As [`Domain::set_vcpu_count_placed`].
    pub fn set_vcpus_online_placed(
        &self,
        store: &dyn XenStore,
        vcpus: &CpuMap,
        online: bool,
        live: &mut LivePlacement,
        host: &HostInfo,
        nodeset: Option<&CpuMap>,
    ) -> Result<AvailabilityChange> {
        self.check_state_change(vcpus, online)?;
        let next = |before: &CpuMap| if online { before.union(vcpus) } else { before.difference(vcpus) };
        self.placed(store, next, live, host, nodeset, |dom| dom.set_vcpus_online(store, vcpus, online))
    }

    fn requested_or_online(&self, store: &dyn XenStore) -> Result<CpuMap> {
        match self.requested_vcpus(store)? {
            Some(requested) => Ok(requested),
            None => self.online_vcpus(),
        }
    }

    /// Pins the vCPUs that `after(current request)` brings online per `live`, then runs
    /// `write`; undoes the pins if it fails. The request is checked by the caller.
    fn placed(
        &self,
        store: &dyn XenStore,
        after: impl FnOnce(&CpuMap) -> CpuMap,
        live: &mut LivePlacement,
        host: &HostInfo,
        nodeset: Option<&CpuMap>,
        write: impl FnOnce(&Domain) -> Result<AvailabilityChange>,
    ) -> Result<AvailabilityChange> {
        let before = self.requested_or_online(store)?;
        let after = after(&before);
        let coming = after.difference(&before);
        let going = before.difference(&after);
        let mut next = live.clone();
        next.on_vcpus_offline(&going)?;
        let placements = next.on_vcpus_online(&coming, host, nodeset)?;
        let saved: Vec<_> = placements.iter().map(|p| self.vcpu_info(p.vcpu)).collect::<Result<_>>()?;
        let items: Vec<(u32, AffinityRequest<'_>)> =
            placements.iter().map(|p| (p.vcpu, AffinityRequest::hard(&p.cpus))).collect();
        self.pin_each(&items)?;
        match write(self) {
            Ok(change) => {
                *live = next;
                Ok(change)
            }
            Err(e) => {
                for v in &saved {
                    // Best effort: the error being reported is the write's.
                    let _ = self.set_affinity(v.vcpu, &AffinityRequest::both(&v.hard, &v.soft).forced());
                }
                Err(e)
            }
        }
    }

    /// The process id of the domain's device model (libxl records it in xenstore under
    /// `image/device-model-pid`), or `None` when it has none (a PV domain).
    ///
    /// # Errors
    /// A failed xenstore read, or a pid that is not a number.
    pub fn emulator_pid(&self, store: &dyn XenStore) -> Result<Option<u32>> {
        let path = format!("/local/domain/{}/image/device-model-pid", self.id());
        match store.read_string(TxId::NONE, &path) {
            Ok(pid) => pid
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Error::InvalidArgument(format!("{path} holds {pid:?}, not a process id"))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Pins the domain's emulator (its device-model process in dom0) to `cpus` with
    /// `sched_setaffinity`, and returns its pid. CPU numbers are dom0's CPUs, which are
    /// the physical CPUs only when dom0's vCPUs are pinned one to one.
    ///
    /// # Errors
    /// [`Error::NoEmulator`] for a domain without a device model (PV), those of
    /// [`pin_process`], or a failed xenstore read.
    pub fn pin_emulator(&self, store: &dyn XenStore, cpus: &CpuMap) -> Result<u32> {
        let pid = self.emulator_pid(store)?.ok_or(Error::NoEmulator { domid: self.id() })?;
        pin_process(pid, cpus)?;
        Ok(pid)
    }
}

/// Sets the CPU affinity of process `pid` (all its threads' default), as the emulator is
/// pinned: `sched_setaffinity(2)`.
///
/// # Errors
/// [`Error::EmptyProcessMap`] or [`Error::CpusBeyondHost`] before the call;
/// [`Error::Process`] when the kernel refuses (`ESRCH`: no such process; `EINVAL`: no
/// usable CPU; `EPERM`).
pub fn pin_process(pid: u32, cpus: &CpuMap) -> Result<()> {
    if cpus.is_empty() {
        return Err(Error::EmptyProcessMap { pid });
    }
    let mut set = CpuSet::new();
    for cpu in cpus.iter() {
        set.set(cpu).map_err(|_| Error::CpusBeyondHost {
            cpus: cpus.difference(&CpuMap::all(CpuSet::count())),
            nr_cpus: CpuSet::count(),
        })?;
    }
    let pid_t = i32::try_from(pid).map_err(|_| Error::InvalidArgument(format!("{pid} is not a process id")))?;
    sched_setaffinity(Pid::from_raw(pid_t), &set).map_err(|e| Error::Process {
        pid,
        op: "sched_setaffinity",
        errno: xen_sys::Errno::new(e as i32),
    })
}

/// The CPU affinity of process `pid` (`sched_getaffinity(2)`).
///
/// # Errors
/// [`Error::Process`] when the kernel refuses (`ESRCH`: no such process).
pub fn process_affinity(pid: u32) -> Result<CpuMap> {
    let pid_t = i32::try_from(pid).map_err(|_| Error::InvalidArgument(format!("{pid} is not a process id")))?;
    let set = sched_getaffinity(Pid::from_raw(pid_t)).map_err(|e| Error::Process {
        pid,
        op: "sched_getaffinity",
        errno: xen_sys::Errno::new(e as i32),
    })?;
    Ok((0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap_or(false)).collect())
}
