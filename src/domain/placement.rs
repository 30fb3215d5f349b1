//! Applying a placement ([`crate::placement`]) to a running domain: its vCPUs, the vCPUs
//! that come online later, and its emulator (device model).

use crate::cpumap::CpuMap;
use crate::error::{Error, NoEmulatorReason, Result};
use crate::ids::{VcpuId, VcpuSet};
use crate::placement::{LivePlacement, Resolved};
use crate::process;
use crate::xenstore::{paths, TxId};
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
    pub fn apply_placement(&self, resolved: &Resolved) -> Result<Vec<(VcpuId, Effective)>> {
        if resolved.vcpus.len() != self.max_vcpus() as usize {
            return Err(Error::InvalidArgument(format!(
                "the placement is for {} vCPUs; domain {} has {}",
                resolved.vcpus.len(),
                self.id(),
                self.max_vcpus()
            )));
        }
        let online = self.online_vcpus()?;
        let items: Vec<(VcpuId, AffinityRequest<'_>)> = resolved
            .vcpus
            .iter()
            .filter(|p| online.contains(p.vcpu))
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
        count: u32,
        live: &mut LivePlacement,
        host: &HostInfo,
        nodeset: Option<&CpuMap>,
    ) -> Result<AvailabilityChange> {
        self.check_count(count)?;
        let after = VcpuSet::all(count);
        self.placed(|_| after, live, host, nodeset, |dom| dom.set_vcpu_count(count))
    }

    /// [`Domain::set_vcpus_online`] under a placement policy, as
    /// [`Domain::set_vcpu_count_placed`].
    ///
    /// # Errors
    /// As [`Domain::set_vcpu_count_placed`].
    pub fn set_vcpus_online_placed(
        &self,
        vcpus: &VcpuSet,
        online: bool,
        live: &mut LivePlacement,
        host: &HostInfo,
        nodeset: Option<&CpuMap>,
    ) -> Result<AvailabilityChange> {
        self.check_state_change(vcpus, online)?;
        let next = |before: &VcpuSet| if online { before.union(vcpus) } else { before.difference(vcpus) };
        self.placed(next, live, host, nodeset, |dom| dom.set_vcpus_online(vcpus, online))
    }

    fn requested_or_online(&self) -> Result<VcpuSet> {
        match self.requested_vcpus()? {
            Some(requested) => Ok(requested),
            None => self.online_vcpus(),
        }
    }

    /// Pins the vCPUs that `after(current request)` brings online per `live`, then runs
    /// `write`; undoes the pins if it fails. The request is checked by the caller.
    fn placed(
        &self,
        after: impl FnOnce(&VcpuSet) -> VcpuSet,
        live: &mut LivePlacement,
        host: &HostInfo,
        nodeset: Option<&CpuMap>,
        write: impl FnOnce(&Domain) -> Result<AvailabilityChange>,
    ) -> Result<AvailabilityChange> {
        let before = self.requested_or_online()?;
        let after = after(&before);
        let coming = after.difference(&before);
        let going = before.difference(&after);
        let mut next = live.clone();
        next.on_vcpus_offline(&going)?;
        let placements = next.on_vcpus_online(&coming, host, nodeset)?;
        let saved: Vec<_> = placements.iter().map(|p| self.vcpu_info(p.vcpu)).collect::<Result<_>>()?;
        let items: Vec<(VcpuId, AffinityRequest<'_>)> =
            placements.iter().map(|p| (p.vcpu, AffinityRequest::hard(&p.cpus))).collect();
        self.pin_each(&items)?;
        match self.ensure_same("the availability write").and_then(|()| write(self)) {
            Ok(change) => {
                *live = next;
                Ok(change)
            }
            Err(failed) => {
                let (restored, restore_failures) = self.restore_affinity(&saved);
                Err(Error::RolledBack { failed: Box::new(failed), restored, restore_failures })
            }
        }
    }

    /// The process id of the domain's device model (libxl records it in xenstore under
    /// `image/device-model-pid`), or `None` when it has none (a PV domain).
    ///
    /// # Errors
    /// A failed xenstore read, or a pid that is not a number.
    pub fn emulator_pid(&self) -> Result<Option<u32>> {
        let path = paths::device_model_pid(self.id().get());
        match self.host().store()?.read_string(TxId::NONE, &path) {
            Ok(pid) => pid
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Error::InvalidArgument(format!("{path} holds {pid:?}, not a process id"))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(self.host().store_error(e)),
        }
    }

    /// Pins the domain's emulator (its device-model process in dom0, every thread of it)
    /// to `cpus` and returns its pid with the affinity read back from each thread.
    ///
    /// CPU numbers are dom0's CPUs (what dom0's kernel calls CPU `n`), which are the
    /// physical CPUs only when dom0's vCPUs are pinned one to one; `cpus` is checked
    /// against dom0's online CPUs before anything is pinned. The pid recorded in xenstore
    /// is checked to be this domain's device model (libxl starts QEMU with
    /// `-xen-domid <domid>`), so a stale or reused pid is refused.
    ///
    /// # Errors
    /// [`Error::NoEmulator`] for a PV domain, or an HVM domain without a recorded device
    /// model (stub domain, or not started yet); [`Error::NotDeviceModel`]; those of
    /// [`process::pin_threads`]; or a failed xenstore read.
    pub fn pin_emulator(&self, cpus: &CpuMap) -> Result<(u32, CpuMap)> {
        let reason = if self.info().flags.hvm { NoEmulatorReason::NoPidRecorded } else { NoEmulatorReason::Pv };
        let pid = self.emulator_pid()?.ok_or_else(|| Error::NoEmulator { domid: self.id(), reason })?;
        process::check_device_model(pid, self.id())?;
        let affinity = process::pin_threads(pid, cpus)?;
        Ok((pid, affinity))
    }
}
