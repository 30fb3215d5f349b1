//! [`LivePlacement`]: the placement of a running domain across vCPU hot(un)plug.

use crate::cpumap::CpuMap;
use crate::{HostInfo, VcpuSet};

use super::{Placement, PlacementError, VcpuPlacement};

/// The placement of a running domain, kept up to date as vCPUs go offline and online.
///
/// # Hotplug rules
/// - A vCPU brought online inherits `<vcpu cpuset>` (or, with `placement='auto'`, the
///   CPUs of the advisory nodeset; with neither, every host CPU) unless it has a
///   `<vcpupin>`, which then applies. This includes vCPUs that were offline at start and
///   are pinned in the configuration.
/// - A vCPU taken offline loses its `<vcpupin>` in the live placement: if it comes back
///   online it inherits `<vcpu cpuset>` again. The configuration the placement came from
///   is not changed (keep your own copy of the [`Placement`] for it).
/// - Only a transition from online to offline drops a pin: naming a vCPU that is already
///   offline changes nothing, so the pin of a vCPU that was never online is kept.
/// - `<emulatorpin>` is not affected by hotplug.
///
/// vCPU sets are [`VcpuSet`]s. Every method checks all the vCPUs it is given
/// before it changes anything.
///
/// ```
/// use xenvcpu::placement::{LivePlacement, Placement, Source};
/// use xenvcpu::{VcpuId, VcpuSet};
/// # use xenvcpu::hypervisor::{CpuTopology, PhysInfo};
/// # let topo = CpuTopology { core: Some(0), socket: Some(0), node: Some(0) };
/// # let host = xenvcpu::HostInfo {
/// #     phys: PhysInfo { nr_cpus: 4, max_cpu_id: 3, nr_nodes: 1, ..PhysInfo::default() },
/// #     cpus: vec![topo; 4],
/// #     online: xenvcpu::cpumap::CpuMap::all(4),
/// # };
/// let config = Placement::builder(2).cpuset("0-1").vcpupin(1, "3").build()?;
/// let mut live = LivePlacement::new(config)?;
/// let vcpu1 = VcpuSet::from_iter([VcpuId(1)]);
/// live.on_vcpus_offline(&vcpu1)?; // vCPU 1 loses its <vcpupin>
/// let back = live.on_vcpus_online(&vcpu1, &host, None)?;
/// assert_eq!((back[0].cpus.to_string(), back[0].source), ("0-1".to_string(), Source::VcpuCpuset));
/// # Ok::<(), xenvcpu::placement::PlacementError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePlacement {
    placement: Placement,
    online: VcpuSet,
}

impl LivePlacement {
    /// The live placement of a domain just started: vCPUs `0..current` online.
    ///
    /// # Errors
    /// Those of [`Placement::validate`].
    pub fn new(placement: Placement) -> Result<LivePlacement, PlacementError> {
        placement.validate()?;
        let online = VcpuSet::all(placement.online_at_start());
        Ok(LivePlacement { placement, online })
    }

    /// The live placement of a running domain whose online vCPUs are `online` (e.g. read
    /// from xenstore).
    ///
    /// # Errors
    /// Those of [`Placement::validate`]; [`PlacementError::VcpuOutOfRange`] for a vCPU the
    /// domain does not have.
    pub fn with_online(placement: Placement, online: &VcpuSet) -> Result<LivePlacement, PlacementError> {
        placement.validate()?;
        check_range(&placement, online)?;
        Ok(LivePlacement { placement, online: online.clone() })
    }

    /// The live placement: the configuration less the pins of vCPUs taken offline.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// The live placement, by value.
    pub fn into_placement(self) -> Placement {
        self.placement
    }

    /// The vCPUs online now.
    pub fn online(&self) -> &VcpuSet {
        &self.online
    }

    /// Records that `vcpus` went offline, dropping the `<vcpupin>` of each that was
    /// online. Returns the vCPUs whose pin was dropped.
    ///
    /// # Errors
    /// [`PlacementError::VcpuOutOfRange`] (nothing is changed).
    pub fn on_vcpus_offline(&mut self, vcpus: &VcpuSet) -> Result<VcpuSet, PlacementError> {
        check_range(&self.placement, vcpus)?;
        let going = vcpus.intersection(&self.online);
        let mut dropped = VcpuSet::new();
        for vcpu in going.iter() {
            if self.placement.vcpupins.remove(&vcpu.get()).is_some() {
                dropped.insert(vcpu);
            }
        }
        self.online = self.online.difference(&going);
        Ok(dropped)
    }

    /// Records that `vcpus` came online and returns, in vCPU order, what each must be
    /// pinned to (its `<vcpupin>` if it still has one, else the default) with the source.
    /// vCPUs already online are included, with their current placement.
    ///
    /// # Errors
    /// [`PlacementError::VcpuOutOfRange`], and those of [`Placement::resolve`] (nothing is
    /// changed).
    pub fn on_vcpus_online(
        &mut self,
        vcpus: &VcpuSet,
        host: &HostInfo,
        advisory_nodeset: Option<&CpuMap>,
    ) -> Result<Vec<VcpuPlacement>, PlacementError> {
        check_range(&self.placement, vcpus)?;
        let resolved = self.placement.resolve(host, advisory_nodeset)?;
        let out = vcpus.iter().map(|vcpu| resolved.vcpus[vcpu.index()].clone()).collect();
        self.online = self.online.union(vcpus);
        Ok(out)
    }
}

fn check_range(placement: &Placement, vcpus: &VcpuSet) -> Result<(), PlacementError> {
    let max_vcpus = placement.max_vcpus;
    match vcpus.iter().find(|&vcpu| vcpu.get() >= max_vcpus) {
        Some(vcpu) => Err(PlacementError::VcpuOutOfRange { vcpu: vcpu.index(), max_vcpus }),
        None => Ok(()),
    }
}
