//! The hypercall-level operations behind a trait, with two backends: the real one over
//! libxenctrl ([`XenCtrlBackend`]) and a model of Xen's behaviour for tests ([`SimHost`]).
//!
//! Methods mirror libxenctrl one to one and speak neutral Rust types (never xen-sys
//! structs); failures are the raw [`Errno`] Xen returned. The safe, contextual API is
//! [`crate::Host`] and [`crate::Domain`] on top.
//!
//! CPU maps cross the trait as byte slices of exactly [`Hypervisor::cpumap_size`] bytes in
//! Xen's layout (CPU `i` = bit `i % 8` of byte `i / 8`): the caller owns the buffers, so the
//! hot path needs no allocation.

pub mod cpuid;
#[cfg(feature = "sim")]
mod sim;
mod xenctrl;

pub use cpuid::{CpuVendor, CpuidLeaf, DomainCpuPolicy, MsrEntry, RawCpuPolicy, XenCpuPolicy};
#[cfg(feature = "sim")]
pub use sim::{SimConfig, SimDomain, SimHost, SimSnapshot};
pub use xen_sys::Errno;

use crate::cpumap::CpuMap;
pub(crate) use xenctrl::describe_release;
pub use xenctrl::XenCtrlBackend;

/// The largest CPU map Xen can have: `NR_CPUS` is at most 4095, so 4096 bits.
pub const MAX_CPUMAP_BYTES: usize = 512;

/// `xc_physinfo`: the host's CPU and memory facts that xenvcpu uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhysInfo {
    /// Hardware threads per core.
    pub threads_per_core: u32,
    /// Cores per socket.
    pub cores_per_socket: u32,
    /// CPUs currently online.
    pub nr_cpus: u32,
    /// The largest CPU id the host can have (maps are sized by `max_cpu_id + 1`).
    pub max_cpu_id: u32,
    /// NUMA nodes online.
    pub nr_nodes: u32,
    /// The largest NUMA node id Xen supports (`MAX_NUMNODES - 1`, 63 on x86), not the
    /// host's: count the host's nodes from the CPUs' topology instead.
    pub max_node_id: u32,
    /// CPU frequency in kHz.
    pub cpu_khz: u32,
}

/// `xc_cputopoinfo`: where one CPU sits (`~0` from Xen, "invalid", is `None`).
///
/// What Xen 4.17 reports (`XEN_SYSCTL_cputopoinfo` in `xen/common/sysctl.c`; checked in the
/// lab with `xen-hptool cpu-offline`): one entry per CPU up to the last *present* one; an
/// online CPU has all three ids; a CPU taken offline has no core and no socket (x86
/// `cpu_smpboot_free()` resets them) but keeps its node; a CPU that is not present has
/// none. Hosts that *park* offline CPUs instead (x86 with `park_offline_cpus`, e.g. Intel
/// with machine-check support) keep the core and socket too: there an offline CPU cannot be
/// told from the topology, so which CPUs are online comes from the cpupools
/// ([`Host::online_cpus`](crate::Host::online_cpus)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTopology {
    /// Core id.
    pub core: Option<u32>,
    /// Socket id.
    pub socket: Option<u32>,
    /// NUMA node id.
    pub node: Option<u32>,
}

impl CpuTopology {
    /// Whether Xen reports a core id for the CPU. **Not a reliable online test:** it is
    /// true for every online CPU and false for a CPU that is not present, but an x86 host
    /// that *parks* offline CPUs (`park_offline_cpus`: Intel with machine-check support,
    /// Xen's default there) keeps an offline CPU's core and socket ids; only hosts that do
    /// not park them (as the lab's AMD QEMU CPU) report none. (The node is no sign either:
    /// Xen keeps it for an offline CPU.) For which CPUs are online use
    /// [`Host::online_cpus`](crate::Host::online_cpus) or
    /// [`HostInfo::online_cpus`](crate::HostInfo::online_cpus), which come from the
    /// cpupools (an online CPU is free or in one pool, an offline one in none).
    pub fn is_online(&self) -> bool {
        self.core.is_some()
    }
}

/// The state flags of a domain (`XEN_DOMINF_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DomainFlags {
    /// Being destroyed.
    pub dying: bool,
    /// An HVM (or PVH) guest rather than PV.
    pub hvm: bool,
    /// Shut down (see [`DomainInfo::shutdown_reason`]).
    pub shutdown: bool,
    /// Paused.
    pub paused: bool,
    /// All vCPUs blocked.
    pub blocked: bool,
    /// At least one vCPU running.
    pub running: bool,
}

/// What kind of guest a domain is, as far as vCPU hotplug is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuestType {
    /// Paravirtualised (no `XEN_DOMINF_hvm_guest`).
    Pv,
    /// An HVM container without emulated legacy devices (no 8259 PIC): libxl's PVH.
    Pvh,
    /// A full HVM guest, with a device model.
    Hvm,
}

/// `xc_domain_getinfolist`: one domain's summary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DomainInfo {
    /// Domain id.
    pub domid: crate::DomId,
    /// State flags.
    pub flags: DomainFlags,
    /// The shutdown reason (`SHUTDOWN_*`) when shut down.
    pub shutdown_reason: Option<u32>,
    /// vCPUs online.
    pub nr_online_vcpus: u32,
    /// The highest vCPU id (`None`: no vCPUs). Fixed at creation since Xen 4.12.
    pub max_vcpu_id: Option<u32>,
    /// The cpupool the domain runs in.
    pub cpupool: u32,
    /// CPU time of all vCPUs, in ns.
    pub cpu_time_ns: u64,
    /// Memory pages allocated.
    pub tot_pages: u64,
    /// The domain's UUID.
    pub uuid: [u8; 16],
    /// The devices Xen emulates for it (x86 `arch_config.emulation_flags`,
    /// `XEN_X86_EMU_*`): none for PV, the local APIC alone for a PVH guest, the legacy
    /// platform (the PIC among it) for HVM.
    pub emulation_flags: u32,
}

impl DomainInfo {
    /// PV, PVH or HVM. Xen reports PVH and HVM alike as `hvm_guest`; what tells them apart
    /// is what Xen emulates for them: libxl creates an HVM guest with the whole legacy
    /// platform (the 8259 PIC among it) and a PVH guest with the local APIC alone (a PVH
    /// dom0 also gets the IO-APIC and vPCI, still no PIC), and Xen accepts no other mix.
    pub fn guest_type(&self) -> GuestType {
        if !self.flags.hvm {
            GuestType::Pv
        } else if self.emulation_flags & xen_sys::XEN_X86_EMU_PIC == 0 {
            GuestType::Pvh
        } else {
            GuestType::Hvm
        }
    }

    /// The number of vCPU ids (`max_vcpu_id + 1`, or 0).
    pub fn max_vcpus(&self) -> u32 {
        self.max_vcpu_id.map_or(0, |m| m + 1)
    }
}

/// `xc_vcpu_getinfo`: one vCPU's raw state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawVcpuInfo {
    /// The vCPU is up.
    pub online: bool,
    /// Blocked waiting for an event.
    pub blocked: bool,
    /// On a physical CPU right now.
    pub running: bool,
    /// Time spent running, in ns.
    pub cpu_time_ns: u64,
    /// The physical CPU it last ran on (stale while offline).
    pub cpu: u32,
}

/// `xc_cpupool_getinfo`: one cpupool.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawPoolInfo {
    /// The pool's id (Pool-0 is 0).
    pub id: u32,
    /// Its scheduler (`XEN_SCHEDULER_*`: see [`crate::Scheduler`]).
    pub sched_id: u32,
    /// The number of domains in it.
    pub n_dom: u32,
    /// Its CPUs (all online: Xen takes a CPU out of its pool when it goes offline).
    pub cpus: CpuMap,
}

/// One of the hypervisor's featuresets and system CPU policies: what the hardware has,
/// what Xen uses, and what PV and HVM guests get by default and at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeaturesetKind {
    /// What the hardware offers (`raw`).
    Raw,
    /// What Xen uses, after its command line (`host`).
    Host,
    /// A PV guest's default (`pv_default`).
    PvDefault,
    /// An HVM guest's default (`hvm_default`).
    HvmDefault,
    /// The most a PV guest may have (`pv_max`; from Xen 4.17.2).
    PvMax,
    /// The most an HVM guest may have (`hvm_max`; from Xen 4.17.2).
    HvmMax,
}

impl FeaturesetKind {
    /// Every kind, in the order of Xen's featureset indices (0 to 5).
    pub const ALL: [FeaturesetKind; 6] = [
        FeaturesetKind::Raw,
        FeaturesetKind::Host,
        FeaturesetKind::PvDefault,
        FeaturesetKind::HvmDefault,
        FeaturesetKind::PvMax,
        FeaturesetKind::HvmMax,
    ];

    /// The index `xc_get_cpu_featureset` takes (`XEN_SYSCTL_cpu_featureset_*`).
    pub const fn featureset_index(self) -> u32 {
        match self {
            FeaturesetKind::Raw => xen_sys::XEN_SYSCTL_cpu_featureset_raw,
            FeaturesetKind::Host => xen_sys::XEN_SYSCTL_cpu_featureset_host,
            FeaturesetKind::PvDefault => xen_sys::XEN_SYSCTL_cpu_featureset_pv,
            FeaturesetKind::HvmDefault => xen_sys::XEN_SYSCTL_cpu_featureset_hvm,
            FeaturesetKind::PvMax => xen_sys::XEN_SYSCTL_cpu_featureset_pv_max,
            FeaturesetKind::HvmMax => xen_sys::XEN_SYSCTL_cpu_featureset_hvm_max,
        }
    }

    /// The index `xc_cpu_policy_get_system` takes (`XEN_SYSCTL_cpu_policy_*`, in another
    /// order than the featureset indices).
    pub const fn policy_index(self) -> u32 {
        match self {
            FeaturesetKind::Raw => xen_sys::XEN_SYSCTL_cpu_policy_raw,
            FeaturesetKind::Host => xen_sys::XEN_SYSCTL_cpu_policy_host,
            FeaturesetKind::PvDefault => xen_sys::XEN_SYSCTL_cpu_policy_pv_default,
            FeaturesetKind::HvmDefault => xen_sys::XEN_SYSCTL_cpu_policy_hvm_default,
            FeaturesetKind::PvMax => xen_sys::XEN_SYSCTL_cpu_policy_pv_max,
            FeaturesetKind::HvmMax => xen_sys::XEN_SYSCTL_cpu_policy_hvm_max,
        }
    }

    /// The name Xen's sources use: `raw`, `host`, `pv_default`, `hvm_default`, `pv_max`,
    /// `hvm_max`.
    pub const fn name(self) -> &'static str {
        match self {
            FeaturesetKind::Raw => "raw",
            FeaturesetKind::Host => "host",
            FeaturesetKind::PvDefault => "pv_default",
            FeaturesetKind::HvmDefault => "hvm_default",
            FeaturesetKind::PvMax => "pv_max",
            FeaturesetKind::HvmMax => "hvm_max",
        }
    }
}

impl std::fmt::Display for FeaturesetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a featureset or CPU policy call failed: these calls live in libxenguest, which is
/// loaded only when first needed, so besides Xen's errno the library itself can be missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyCallError {
    /// libxenguest (of the loaded libxenctrl's release) could not be loaded.
    Library(xen_sys::LoadError),
    /// The call failed with this errno.
    Xen(Errno),
}

impl From<Errno> for PolicyCallError {
    fn from(errno: Errno) -> Self {
        PolicyCallError::Xen(errno)
    }
}

impl std::fmt::Display for PolicyCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyCallError::Library(e) => write!(f, "{e}"),
            PolicyCallError::Xen(errno) => write!(f, "{errno}"),
        }
    }
}

impl std::error::Error for PolicyCallError {}

/// One vCPU's affinity change in [`Hypervisor::set_affinities`]: which maps of its slot
/// it sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AffinityCall {
    /// The vCPU.
    pub vcpu: u32,
    /// Set the hard map (the first half of the call's slot).
    pub hard: bool,
    /// Set the soft map (the second half).
    pub soft: bool,
    /// Pass `XEN_VCPUAFFINITY_FORCE`, undoing a temporary pin override.
    pub force: bool,
}

/// Why [`Hypervisor::set_affinities`] stopped at a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStop {
    /// The identity check before the write: what it read (`None`: no such domain; else
    /// the domain's uuid and whether it is dying), which was not the expected live domain,
    /// or the read's errno.
    Identity(Result<Option<([u8; 16], bool)>, Errno>),
    /// The affinity call itself failed.
    Call(Errno),
}

/// The hypercall-level operations xenvcpu needs, one method per libxenctrl call (and two
/// batches of them for multi-vCPU operations, with defaults that call the single ones).
///
/// Implementations are thread-safe: one handle may serve many threads at once. Every
/// method returns the errno Xen (or the model of it) returned.
pub trait Hypervisor: Send + Sync + std::fmt::Debug {
    /// The exact byte length of every CPU map passed to the affinity calls
    /// (`xc_get_cpumap_size`: `(max_cpu_id + 1 + 7) / 8`). Fixed for the handle's life.
    fn cpumap_size(&self) -> usize;

    /// Wraps `xc_physinfo`.
    fn physinfo(&self) -> Result<PhysInfo, Errno>;

    /// Wraps `xc_cputopoinfo`: fills `out` with one entry per CPU id up to the last
    /// present CPU (at most `max_cpu_id + 1` entries; see [`CpuTopology`]).
    fn cpu_topology(&self, out: &mut Vec<CpuTopology>) -> Result<(), Errno>;

    /// Wraps `xc_domain_getinfolist`: appends to `out` the domains with ids `>= first`,
    /// in id order, at most `max` of them.
    fn domain_list(&self, first: u32, max: u32, out: &mut Vec<DomainInfo>) -> Result<(), Errno>;

    /// Wraps `xc_domain_getinfolist` for one domain; `None` when `domid` does not exist
    /// (the returned domid is always checked).
    fn domain_info(&self, domid: u32) -> Result<Option<DomainInfo>, Errno>;

    /// What an identity check reads of one domain: its handle (uuid) and whether it is
    /// dying; `None` when `domid` does not exist. The same hypercall as
    /// [`domain_info`](Self::domain_info), which the default calls; a backend may read the
    /// two fields alone (libxenctrl's does: multi-step operations check before every write).
    fn domain_identity(&self, domid: u32) -> Result<Option<([u8; 16], bool)>, Errno> {
        Ok(self.domain_info(domid)?.map(|d| (d.uuid, d.flags.dying)))
    }

    /// Wraps `xc_vcpu_getinfo`.
    ///
    /// Xen: `EINVAL` when `vcpu >= max_vcpus`, `ESRCH` when the vCPU or domain is absent.
    fn vcpu_info(&self, domid: u32, vcpu: u32) -> Result<RawVcpuInfo, Errno>;

    /// Wraps `xc_vcpu_getaffinity`: writes the hard and/or soft map (each exactly
    /// `cpumap_size()` bytes) as they were set.
    fn get_affinity(
        &self,
        domid: u32,
        vcpu: u32,
        hard: Option<&mut [u8]>,
        soft: Option<&mut [u8]>,
    ) -> Result<(), Errno>;

    /// Wraps `xc_vcpu_setaffinity`: sets the given maps (each exactly `cpumap_size()`
    /// bytes) and overwrites them with the effective affinity Xen computed (hard ∩ the
    /// cpupool's online CPUs; soft ∩ hard). `force` passes `XEN_VCPUAFFINITY_FORCE`.
    ///
    /// Xen: `EINVAL` for a vCPU out of range, no map, or a hard map with no usable CPU;
    /// `EBUSY` for a temporary pin override without `force`; `ESRCH` for an absent vCPU.
    fn set_affinity(
        &self,
        domid: u32,
        vcpu: u32,
        hard: Option<&mut [u8]>,
        soft: Option<&mut [u8]>,
        force: bool,
    ) -> Result<(), Errno>;

    /// [`get_affinity`](Self::get_affinity) of each vCPU of `vcpus` in turn, into
    /// consecutive slots of `out`: `2 * cpumap_size()` bytes each with `soft` (hard, then
    /// soft), else `cpumap_size()` (hard). One call for a whole operation, so a backend
    /// can make the hypercalls back to back (libxenctrl's does); the default calls
    /// `get_affinity` for each.
    ///
    /// Stops at the first failure: its index in `vcpus` and errno (`EINVAL` at index 0
    /// when `out` is not exactly one slot per vCPU).
    fn get_affinities(&self, domid: u32, vcpus: &[u32], soft: bool, out: &mut [u8]) -> Result<(), (usize, Errno)> {
        let size = self.cpumap_size();
        let per = if soft { 2 * size } else { size };
        if out.len() != per * vcpus.len() {
            return Err((0, Errno::new(libc::EINVAL)));
        }
        for (i, (&vcpu, slot)) in vcpus.iter().zip(out.chunks_exact_mut(per)).enumerate() {
            let (hard, rest) = slot.split_at_mut(size);
            self.get_affinity(domid, vcpu, Some(hard), soft.then_some(rest)).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// For each call in turn: the identity check of a multi-step operation
    /// ([`domain_identity`](Self::domain_identity): still the domain `uuid`, not dying),
    /// then [`set_affinity`](Self::set_affinity) with the maps of the call's slot of
    /// `maps`. Each slot is `2 * cpumap_size()` bytes, hard then soft; Xen overwrites the
    /// maps it sets with the effective ones. One call for a whole operation, so a backend
    /// can make the hypercalls back to back (libxenctrl's does); the default calls the two
    /// methods for each.
    ///
    /// Stops at the first call that fails either step: its index in `calls` and why
    /// ([`BatchStop`]); the calls before it were made. `EINVAL` at index 0 when `maps` is
    /// not exactly one slot per call.
    fn set_affinities(
        &self,
        domid: u32,
        uuid: &[u8; 16],
        calls: &[AffinityCall],
        maps: &mut [u8],
    ) -> Result<(), (usize, BatchStop)> {
        let size = self.cpumap_size();
        if maps.len() != 2 * size * calls.len() {
            return Err((0, BatchStop::Call(Errno::new(libc::EINVAL))));
        }
        for (i, (call, slot)) in calls.iter().zip(maps.chunks_exact_mut(2 * size)).enumerate() {
            match self.domain_identity(domid) {
                Ok(Some((found, false))) if found == *uuid => {}
                other => return Err((i, BatchStop::Identity(other))),
            }
            let (hard, soft) = slot.split_at_mut(size);
            self.set_affinity(domid, call.vcpu, call.hard.then_some(hard), call.soft.then_some(soft), call.force)
                .map_err(|e| (i, BatchStop::Call(e)))?;
        }
        Ok(())
    }

    /// Wraps `xc_domain_max_vcpus`. Since Xen 4.12 only the creation-time value is
    /// accepted (`EINVAL` otherwise, and always for the calling domain itself).
    fn set_max_vcpus(&self, domid: u32, max: u32) -> Result<(), Errno>;

    /// Wraps `xc_domain_node_getaffinity` (sized by `xc_get_nodemap_size`): the NUMA node
    /// ids the domain has affinity with, as Xen reports them. Xen derives them from the
    /// vCPUs' affinity unless the toolstack set them; a map of every node id the map can
    /// hold means "all nodes".
    ///
    /// Xen: `ESRCH` for an absent domain.
    fn node_affinity(&self, domid: u32) -> Result<CpuMap, Errno>;

    /// Wraps `xc_cpupool_getinfo` (and `xc_cpupool_infofree`): the first cpupool whose id
    /// is `>= first`, `None` when there is none (Xen's `ENOENT`). Every pool: from 0, then
    /// from the last id + 1, as xl lists them.
    fn cpupool_info(&self, first: u32) -> Result<Option<RawPoolInfo>, Errno>;

    /// Wraps `xc_cpupool_freeinfo`: the online CPUs that are in no cpupool (taken out of
    /// one with `xl cpupool-cpu-remove`, and not yet given to another). Every online CPU is
    /// free or in exactly one pool, so these and every pool's CPUs
    /// ([`cpupool_info`](Self::cpupool_info)) are the host's online CPUs; an offline CPU is
    /// in neither.
    fn cpupool_free_cpus(&self) -> Result<CpuMap, Errno>;

    /// Wraps libxenguest's `xc_get_cpu_featureset`: the featureset `kind` as 32-bit words,
    /// as many as the hypervisor has (asked first with a null buffer: the count differs
    /// between point releases).
    ///
    /// Xen: `EINVAL` for an index it lacks (`pv_max`, `hvm_max` before 4.17.2),
    /// `EOPNOTSUPP` when PV or HVM is compiled out.
    fn cpu_featureset(&self, kind: FeaturesetKind) -> Result<Vec<u32>, PolicyCallError>;

    /// Wraps libxenguest's `xc_cpu_policy_get_system` and `xc_cpu_policy_serialise`: the
    /// system policy `kind` as CPUID leaves and MSRs.
    fn system_cpu_policy(&self, kind: FeaturesetKind) -> Result<RawCpuPolicy, PolicyCallError>;

    /// Wraps libxenguest's `xc_cpu_policy_get_domain` and `xc_cpu_policy_serialise`: a
    /// domain's CPU policy as CPUID leaves and MSRs.
    ///
    /// Xen: `ESRCH` for an absent domain.
    fn domain_cpu_policy(&self, domid: u32) -> Result<RawCpuPolicy, PolicyCallError>;

    /// A description of the library or model behind the backend (for messages).
    fn describe(&self) -> String;
}
