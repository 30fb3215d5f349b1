//! [`SimHost`]: a model of Xen's vCPU semantics, for fast tests of xenvcpu's own logic.
//!
//! It follows Xen 4.17's and 4.20's documented and observed behaviour (the conformance
//! suite runs the same tests against it and against real Xen in the lab; where they
//! disagree, Xen is right and this model is fixed):
//! - affinity: `EINVAL` for a vCPU past the maximum or no map given, `ESRCH` for an absent
//!   domain, `EINVAL` when the hard map has no online CPU of the domain's cpupool (the
//!   soft map has no such check), then `EBUSY` under a pin override unless forced (force
//!   undoes the override first, even when the set then fails); on success the maps are
//!   written back as hard ∩ online and soft ∩ hard ∩ online, while a later get returns
//!   the maps as they were set — or, under a pin override, the temporary single-CPU hard
//!   map (the pin override cannot be triggered from dom0 in the lab: these rules follow
//!   `vcpu_affinity_domctl()` and `vcpu_set_hard_affinity()` in upstream
//!   `xen/common/sched/core.c`);
//! - `max_vcpus`: only the creation-time value is accepted, never for the calling domain;
//! - getdomaininfo for an absent id yields nothing (the real call would list the next);
//! - host CPUs taken offline ([`SimHost::set_cpu_online`], as `xen-hptool` in the lab):
//!   reported by `cputopoinfo` without core and socket but with their node, refused and
//!   handled as Xen's CPU hotplug does (checked by the conformance suite in the lab): a
//!   CPU of Pool-0 or a free one may go, one of another pool may not (`ENODEV`); a vCPU
//!   whose hard map keeps another CPU of its pool keeps that map as set, the offline CPU
//!   included, one left with none has its affinity broken (hard := every CPU, soft kept);
//!   a CPU back online joins Pool-0, and nothing restores a broken affinity.
//!
//! - NUMA node affinity: every node of the host unless set with
//!   [`SimHost::set_node_affinity`] (Xen's automatic node affinity, derived from the
//!   vCPUs' affinity, is not modelled: with vCPUs free to run anywhere it is every node);
//! - guest types: PV, HVM (`hvm`), and PVH ([`SimHost::set_pvh`]), told apart by the
//!   emulation flags as on real Xen.
//! - CPU featuresets and policies: the six featuresets and the policy shape (vendor, leaf
//!   limits) the lab's Xen 4.17 reports on QEMU's `qemu64`; each domain starts with its
//!   type's default featureset, and [`SimHost::set_domain_featureset`] clamps what it is
//!   given to the type's maximum, as Xen does with libxl's `cpuid=` (silently). Policies
//!   are built from the featuresets ([`super::cpuid::encode_policy`]): only the leaves that
//!   carry the limits and the featureset words.
//!
//! - cpupools: Pool-0 (id 0, credit2, as in the lab) has every online CPU and every new
//!   domain; [`SimHost::create_pool`], [`SimHost::pool_remove_cpu`],
//!   [`SimHost::pool_add_cpu`], [`SimHost::move_domain`] and [`SimHost::destroy_pool`]
//!   follow the hypercalls behind `xl cpupool-*` (`XEN_SYSCTL_CPUPOOL_OP_*` in upstream
//!   `cpupool_do_sysctl()`, `xen/common/sched/cpupool.c`), with the errno Xen returns for
//!   each refusal, in Xen's order (each method lists them). A CPU is in at most one pool
//!   or free (in none); CPU 0 never leaves Pool-0, so destroying Pool-0 is `EBUSY`; a
//!   pool's last CPU cannot leave while a live domain is in it; a domain moves only to an
//!   existing pool with CPUs, never the calling domain, and its vCPUs' hard and soft maps
//!   are reset to every CPU (`sched_move_domain()`); a vCPU whose hard map loses its
//!   pool's last CPU of it has its affinity broken (hard := every CPU, soft kept:
//!   `cpu_disable_scheduler()`). Affinity is checked and written back against the
//!   domain's pool: a hard map with no CPU of it is `EINVAL`, the maps are written back as
//!   hard ∩ pool and soft ∩ hard ∩ pool.
//!
//! It is never chosen automatically: tests and tools construct it explicitly.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::cpumap::CpuMap;

use super::cpuid::{encode_policy, with_e1d_aliases, CpuVendor, PolicyShape, RawCpuPolicy};
use super::{
    CpuTopology, DomainFlags, DomainInfo, Errno, FeaturesetKind, Hypervisor, PhysInfo, PolicyCallError, RawPoolInfo,
    RawVcpuInfo,
};

/// The shape of a simulated host.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// CPU ids `0..nr_cpus` exist (`max_cpu_id + 1`).
    pub nr_cpus: u32,
    /// Of those, the CPUs that are offline.
    pub offline: CpuMap,
    /// Hardware threads per core.
    pub threads_per_core: u32,
    /// Cores per socket.
    pub cores_per_socket: u32,
    /// NUMA nodes; CPUs are split evenly and in order among them.
    pub nr_nodes: u32,
    /// The domain the caller runs in (dom0): `max_vcpus` on it is `EINVAL`.
    pub calling_domid: u32,
    /// Offline CPUs are *parked* (x86 `park_offline_cpus`, as on Intel hosts with
    /// machine-check support): `cputopoinfo` keeps their core and socket, so only the
    /// cpupools tell them from online ones. Off by default: the lab's AMD CPU does not park
    /// them, and Xen reports them without core and socket.
    pub park_offline_cpus: bool,
}

impl Default for SimConfig {
    /// Four CPUs, one socket of four single-threaded cores, one node: the lab's host.
    fn default() -> Self {
        Self {
            nr_cpus: 4,
            offline: CpuMap::new(),
            threads_per_core: 1,
            cores_per_socket: 4,
            nr_nodes: 1,
            calling_domid: 0,
            park_offline_cpus: false,
        }
    }
}

/// A simulated domain, as added to a [`SimHost`].
#[derive(Debug, Clone)]
pub struct SimDomain {
    /// Domain id.
    pub domid: u32,
    /// vCPUs allocated at creation (`max_vcpu_id + 1`).
    pub max_vcpus: u32,
    /// vCPUs online at start: `0..online`.
    pub online: u32,
    /// An HVM guest.
    pub hvm: bool,
}

#[derive(Debug, Clone)]
struct Vcpu {
    online: bool,
    hard: CpuMap,
    soft: CpuMap,
    /// A temporary pin override (`SCHEDOP_pin_override`): the vCPU runs on this CPU only,
    /// and `hard` keeps the affinity to restore (Xen's `cpu_hard_affinity_saved`).
    override_pin: Option<u32>,
    cpu: u32,
    cpu_time_ns: u64,
}

#[derive(Debug, Clone)]
struct Domain {
    hvm: bool,
    /// An HVM container without a device model (only meaningful with `hvm`).
    pvh: bool,
    /// Being destroyed: listed with `XEN_DOMINF_dying` until removed.
    dying: bool,
    /// The node affinity set by the toolstack; `None` is Xen's automatic one (here: every
    /// node of the host).
    node_affinity: Option<CpuMap>,
    vcpus: Vec<Vcpu>,
    /// Unique per creation: a domain re-created under the same id gets a new one.
    uuid: [u8; 16],
    /// The domain's CPUID featureset: its type's default at creation, clamped to its
    /// type's maximum when set.
    featureset: Vec<u32>,
    /// The cpupool it is in.
    pool: u32,
}

/// A simulated cpupool.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SimPool {
    /// `XEN_SCHEDULER_*`.
    sched_id: u32,
    /// Its CPUs (online ones only).
    cpus: CpuMap,
}

/// The simulated CPU: the six featuresets and the shape of each system policy.
#[derive(Debug, Clone)]
struct SimCpu {
    featuresets: BTreeMap<FeaturesetKind, Vec<u32>>,
}

impl SimCpu {
    fn featureset(&self, kind: FeaturesetKind) -> Vec<u32> {
        self.featuresets.get(&kind).cloned().unwrap_or_default()
    }

    /// A policy of the system policy `kind`'s shape with these words; for an AMD or Hygon
    /// domain (`domain`), word 0's common features are repeated in word 2, as Xen does.
    fn policy(&self, kind: FeaturesetKind, words: &[u32], domain: bool) -> RawCpuPolicy {
        let shape = lab_cpu_shape(kind);
        let amd = matches!(shape.vendor, CpuVendor::Amd | CpuVendor::Hygon);
        let words = if domain && amd { with_e1d_aliases(words) } else { words.to_vec() };
        encode_policy(&shape, &words)
    }
}

#[derive(Debug)]
struct State {
    config: SimConfig,
    domains: BTreeMap<u32, Domain>,
    calls: u64,
    fail_at: Option<(u64, i32)>,
    /// Domains created so far (for unique uuids).
    created: u64,
    cpu: SimCpu,
    pools: BTreeMap<u32, SimPool>,
}

/// What the toolstack can change on a [`SimHost`], at one moment: every domain (its uuid
/// and node affinity) and each vCPU's online state, hard and soft affinity and pin override, and the offline
/// host CPUs. Time passing (CPU time, the CPU a vCPU last ran on) is not part of it. For
/// comparing before and after an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSnapshot {
    domains: BTreeMap<u32, DomainSnapshot>,
    offline_cpus: CpuMap,
    pools: BTreeMap<u32, (u32, CpuMap)>,
}

/// One domain in a [`SimSnapshot`]: uuid, node affinity set (`None`: automatic), vCPUs,
/// cpupool.
type DomainSnapshot = ([u8; 16], Option<CpuMap>, Vec<VcpuSnapshot>, u32);

/// One vCPU in a [`SimSnapshot`]: online, hard, soft, pin override.
type VcpuSnapshot = (bool, CpuMap, CpuMap, bool);

/// A simulated Xen host. Thread-safe; every method is one atomic step of the model.
#[derive(Debug)]
pub struct SimHost {
    state: Mutex<State>,
}

const EINVAL: Errno = Errno::new(libc::EINVAL);

/// `physinfo.max_node_id` as Xen reports it on x86: `MAX_NUMNODES - 1`, whatever the host.
const SIM_MAX_NODE_ID: u32 = 63;
const ESRCH: Errno = Errno::new(libc::ESRCH);
const ENOENT: Errno = Errno::new(libc::ENOENT);

impl SimHost {
    /// A host with no domains.
    pub fn new(config: SimConfig) -> Self {
        let cpu = SimCpu {
            featuresets: FeaturesetKind::ALL.into_iter().zip(LAB_FEATURESETS.iter().map(|w| w.to_vec())).collect(),
        };
        let pool0 = SimPool { sched_id: xen_sys::XEN_SCHEDULER_CREDIT2, cpus: online_cpus(&config) };
        let pools = BTreeMap::from([(0, pool0)]);
        Self {
            state: Mutex::new(State {
                config,
                domains: BTreeMap::new(),
                calls: 0,
                fail_at: None,
                created: 0,
                cpu,
                pools,
            }),
        }
    }

    /// The domains of the lab's shape: dom0 (4 vCPUs), domain 1 (a PV guest with
    /// `maxvcpus = 4`, `vcpus = 2`) and domain 2 (an HVM guest with 2 vCPUs).
    pub const LAB_DOMAINS: [SimDomain; 3] = [
        SimDomain { domid: 0, max_vcpus: 4, online: 4, hvm: false },
        SimDomain { domid: 1, max_vcpus: 4, online: 2, hvm: false },
        SimDomain { domid: 2, max_vcpus: 2, online: 2, hvm: true },
    ];

    /// The lab's shape: 4 CPUs and [`SimHost::LAB_DOMAINS`] (the same host as
    /// [`crate::sim::SimPlatform::lab_like`], without its store and guest agents).
    pub fn lab_like() -> Self {
        let host = Self::new(SimConfig::default());
        for d in Self::LAB_DOMAINS {
            host.add_domain(d);
        }
        host
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates a domain (replacing any domain with its id, as a destroy and re-create
    /// would) in Pool-0; every vCPU starts with affinity to all CPUs. Each creation gets a
    /// new uuid.
    pub fn add_domain(&self, d: SimDomain) {
        let mut st = self.lock();
        st.created += 1;
        let mut uuid = [0u8; 16];
        uuid[..4].copy_from_slice(&d.domid.to_be_bytes());
        uuid[8..].copy_from_slice(&st.created.to_be_bytes());
        let all = CpuMap::all(st.config.nr_cpus as usize);
        let pool0 = st.pools.get(&0).map(|p| p.cpus.clone()).unwrap_or_default();
        let vcpus = (0..d.max_vcpus)
            .map(|v| Vcpu {
                online: v < d.online,
                hard: all.clone(),
                soft: all.clone(),
                override_pin: None,
                cpu: pool0.iter().nth(v as usize % pool0.count().max(1)).unwrap_or(0) as u32,
                cpu_time_ns: 0,
            })
            .collect();
        let default = if d.hvm { FeaturesetKind::HvmDefault } else { FeaturesetKind::PvDefault };
        let featureset = st.cpu.featureset(default);
        st.domains.insert(
            d.domid,
            Domain { hvm: d.hvm, pvh: false, dying: false, node_affinity: None, vcpus, uuid, featureset, pool: 0 },
        );
    }

    /// Makes an HVM domain PVH (`true`: Xen emulates the local APIC alone, there is no
    /// device model) or full HVM again (`false`). No effect on a PV domain or an absent one.
    pub fn set_pvh(&self, domid: u32, pvh: bool) {
        if let Some(d) = self.lock().domains.get_mut(&domid) {
            d.pvh = pvh && d.hvm;
        }
    }

    /// Sets a domain's NUMA node affinity (node ids), as `xc_domain_node_setaffinity` does:
    /// a map naming every node of the host goes back to the automatic affinity (every
    /// node, here); bits past the node map's size (64 nodes, as `physinfo.max_node_id`
    /// says) are dropped.
    ///
    /// # Errors
    /// `ESRCH` for an absent domain, `EINVAL` for a map without any node of the host (Xen
    /// refuses a node affinity disjoint from its online nodes).
    pub fn set_node_affinity(&self, domid: u32, nodes: &CpuMap) -> Result<(), Errno> {
        let mut st = self.lock();
        let host_nodes = CpuMap::all(st.config.nr_nodes as usize);
        let bits = CpuMap::all(SIM_MAX_NODE_ID as usize + 1);
        let d = st.domains.get_mut(&domid).ok_or(ESRCH)?;
        if nodes.intersection(&host_nodes).is_empty() {
            return Err(EINVAL);
        }
        d.node_affinity = (!host_nodes.is_subset(nodes)).then(|| nodes.intersection(&bits));
        Ok(())
    }

    /// Sets a domain's CPUID featureset, as libxl's `cpuid=` does when it builds the
    /// domain: Xen clamps it to the domain type's maximum (`pv_max` or `hvm_max`), silently
    /// dropping any bit beyond it, and the domain's policy then reports the clamped words.
    /// Words past the hypervisor's featureset length are dropped.
    ///
    /// # Errors
    /// `ESRCH` for an absent domain.
    pub fn set_domain_featureset(&self, domid: u32, words: &[u32]) -> Result<(), Errno> {
        let mut st = self.lock();
        let State { cpu, domains, .. } = &mut *st;
        let d = domains.get_mut(&domid).ok_or(ESRCH)?;
        let max = cpu.featureset(if d.hvm { FeaturesetKind::HvmMax } else { FeaturesetKind::PvMax });
        d.featureset = max.iter().enumerate().map(|(w, &m)| m & words.get(w).copied().unwrap_or(0)).collect();
        Ok(())
    }

    /// Replaces the simulated hypervisor's featureset `kind` (for tests of other CPUs).
    /// Domains created later start from the new default; existing ones keep theirs.
    pub fn set_host_featureset(&self, kind: FeaturesetKind, words: &[u32]) {
        self.lock().cpu.featuresets.insert(kind, words.to_vec());
    }

    /// Destroys a domain.
    pub fn remove_domain(&self, domid: u32) {
        self.lock().domains.remove(&domid);
    }

    /// Marks a domain as being destroyed, as `xl destroy` leaves it for a while on real
    /// Xen: still listed, with the dying flag (xenstored fires `@releaseDomain` then).
    pub fn set_dying(&self, domid: u32) {
        if let Some(d) = self.lock().domains.get_mut(&domid) {
            d.dying = true;
        }
    }

    /// Sets or clears a temporary pin override (`SCHEDOP_pin_override`) on a vCPU: while
    /// set, affinity changes fail with `EBUSY` unless forced, and forcing clears it.
    pub fn set_pin_override(&self, domid: u32, vcpu: u32, on: bool) {
        if let Some(v) = self.lock().domains.get_mut(&domid).and_then(|d| d.vcpus.get_mut(vcpu as usize)) {
            v.override_pin = on.then_some(v.cpu);
        }
    }

    /// Brings a vCPU up or down, as the guest kernel does.
    pub fn set_vcpu_online(&self, domid: u32, vcpu: u32, online: bool) {
        if let Some(v) = self.lock().domains.get_mut(&domid).and_then(|d| d.vcpus.get_mut(vcpu as usize)) {
            v.online = online;
        }
    }

    /// Takes a host CPU offline or brings it back, as `xen-hptool cpu-offline` /
    /// `cpu-online` (`XEN_SYSCTL_cpu_hotplug`) do on Xen 4.17 to 4.20 (`cpu_down()` /
    /// `cpu_up()` in upstream `xen/common/cpu.c`, then the CPU notifiers: the scheduler's
    /// `cpu_disable_scheduler_check()` in `xen/common/sched/core.c`, registered first, then
    /// `cpupool_cpu_remove_prologue()` in `xen/common/sched/cpupool.c`):
    /// - a CPU id past the host (`nr_cpu_ids`), or CPU 0 going offline: `EINVAL`;
    /// - a CPU already in the requested state: `EEXIST`;
    /// - going offline while a vCPU of a domain in the CPU's cpupool has a temporary pin
    ///   override: `EADDRINUSE` (whichever pool the CPU is in);
    /// - going offline while in a cpupool other than Pool-0: `ENODEV`. A CPU of Pool-0
    ///   leaves it, a free CPU (in no pool) simply goes; coming back online, a CPU joins
    ///   Pool-0 (`cpupool_cpu_add()`);
    /// - a vCPU of Pool-0 whose hard affinity names the CPU and no other CPU of the pool
    ///   has its affinity *broken*: its hard map becomes every CPU, its soft map is kept
    ///   (`cpu_disable_scheduler()`, "Breaking affinity for d0v3" in `xl dmesg`) rather than
    ///   refusing; a hard map that still has another CPU of the pool is kept as it was set,
    ///   the offline CPU included (as `xc_vcpu_getaffinity` then reports it). Nothing
    ///   restores a broken affinity when the CPU comes back;
    /// - vCPUs that ran on the CPU move to a CPU of their pool and hard affinity.
    ///
    /// # Errors
    /// The errno Xen returns in each case above.
    pub fn set_cpu_online(&self, cpu: u32, online: bool) -> Result<(), Errno> {
        let mut st = self.lock();
        let nr_cpus = st.config.nr_cpus as usize;
        let id = cpu as usize;
        if id >= nr_cpus || (!online && cpu == 0) {
            return Err(EINVAL);
        }
        if st.config.offline.contains(id) != online {
            return Err(Errno::new(libc::EEXIST));
        }
        if online {
            st.config.offline.remove(id);
            if let Some(pool0) = st.pools.get_mut(&0) {
                pool0.cpus.insert(id);
            }
            return Ok(());
        }
        let pool = pool_of_cpu(&st, id);
        if let Some(pool) = pool {
            if domains_in(&st, pool).flat_map(|d| &d.vcpus).any(|v| v.override_pin.is_some()) {
                return Err(Errno::new(libc::EADDRINUSE));
            }
        }
        if pool.is_some_and(|p| p != 0) {
            return Err(Errno::new(libc::ENODEV));
        }
        st.config.offline.insert(id);
        if pool == Some(0) {
            if let Some(pool0) = st.pools.get_mut(&0) {
                pool0.cpus.remove(id);
            }
            break_affinity(&mut st, 0, cpu);
        }
        Ok(())
    }

    /// Creates a cpupool with scheduler `sched_id` (`XEN_SCHEDULER_*`) and no CPUs, as
    /// `xc_cpupool_create(XC_CPUPOOL_POOLID_ANY)` does: its id is the highest one + 1.
    ///
    /// # Errors
    /// As [`create_pool_with_id`](Self::create_pool_with_id).
    pub fn create_pool(&self, sched_id: u32) -> Result<u32, Errno> {
        self.create_pool_with_id(xen_sys::XC_CPUPOOL_POOLID_ANY, sched_id)
    }

    /// Creates a cpupool with the id `pool` (or, for `XC_CPUPOOL_POOLID_ANY`, the highest
    /// id + 1) and scheduler `sched_id` (`XEN_SCHEDULER_*`), with no CPUs, as
    /// `xc_cpupool_create` does (`XEN_SYSCTL_CPUPOOL_OP_CREATE`, upstream
    /// `cpupool_create()`). Returns the pool's id.
    ///
    /// # Errors
    /// In Xen's order: `ENOSPC` when there are already twice as many pools as CPU ids;
    /// `EEXIST` for an id in use; `ENOENT` for a scheduler id Xen does not have
    /// (`scheduler_alloc()`; the simulated Xen has credit, credit2, arinc653, rtds and
    /// null).
    pub fn create_pool_with_id(&self, pool: u32, sched_id: u32) -> Result<u32, Errno> {
        let mut st = self.lock();
        if st.pools.len() >= 2 * st.config.nr_cpus as usize {
            return Err(Errno::new(libc::ENOSPC));
        }
        let id = if pool == xen_sys::XC_CPUPOOL_POOLID_ANY {
            st.pools.keys().next_back().map_or(0, |&last| last + 1)
        } else if st.pools.contains_key(&pool) {
            return Err(Errno::new(libc::EEXIST));
        } else {
            pool
        };
        if !(xen_sys::XEN_SCHEDULER_CREDIT..=xen_sys::XEN_SCHEDULER_NULL).contains(&sched_id) {
            return Err(ENOENT);
        }
        st.pools.insert(id, SimPool { sched_id, cpus: CpuMap::new() });
        Ok(id)
    }

    /// Destroys a cpupool (`xc_cpupool_destroy`, `XEN_SYSCTL_CPUPOOL_OP_DESTROY`, upstream
    /// `cpupool_destroy()`).
    ///
    /// # Errors
    /// `ENOENT` for no such pool; `EBUSY` while it has CPUs or domains (dying ones count
    /// until they are gone). Pool-0 always has CPU 0, so it is always `EBUSY`.
    pub fn destroy_pool(&self, pool: u32) -> Result<(), Errno> {
        let mut st = self.lock();
        let p = st.pools.get(&pool).ok_or(ENOENT)?;
        if !p.cpus.is_empty() || domains_in(&st, pool).next().is_some() {
            return Err(Errno::new(libc::EBUSY));
        }
        st.pools.remove(&pool);
        Ok(())
    }

    /// Takes a CPU out of a cpupool (`xc_cpupool_removecpu`, `xl cpupool-cpu-remove`;
    /// `XEN_SYSCTL_CPUPOOL_OP_RMCPU`, upstream `cpupool_unassign_cpu()`): it is then free,
    /// in no pool. vCPUs of the pool's domains that ran on it move to another CPU of the
    /// pool; one whose hard map names the CPU and no other CPU of the pool has its
    /// affinity broken (hard := every CPU, soft kept), as when a CPU goes offline
    /// (`cpu_disable_scheduler()`). Dying domains of a pool losing its last CPU move to
    /// Pool-0 (Xen does that for zombies).
    ///
    /// # Errors
    /// In Xen's order: `ENOENT` for no such pool; `EINVAL` for a CPU id past the host, for
    /// CPU 0 of Pool-0 (it never leaves) and for an offline CPU; `EADDRNOTAVAIL` for a CPU
    /// not in that pool; `EBUSY` for the last CPU of a pool with a live (not dying)
    /// domain; `EADDRINUSE` when a vCPU of the pool is temporarily pinned (pin override) to
    /// that CPU. (Xen has by then already taken the CPU out of the pool, where it stays
    /// half-removed until the removal is retried or the CPU added back; the model changes
    /// nothing.)
    pub fn pool_remove_cpu(&self, pool: u32, cpu: u32) -> Result<(), Errno> {
        let mut st = self.lock();
        let id = cpu as usize;
        let p = st.pools.get(&pool).ok_or(ENOENT)?;
        if cpu >= st.config.nr_cpus || (pool == 0 && cpu == 0) || st.config.offline.contains(id) {
            return Err(EINVAL);
        }
        if !p.cpus.contains(id) {
            return Err(Errno::new(libc::EADDRNOTAVAIL));
        }
        let last = p.cpus.count() == 1;
        // The last CPU: the pool's domains must all be dying, and those move to Pool-0
        // (which a vCPU under a pin override refuses with EBUSY: sched_move_domain()).
        let pinned = |d: &Domain| d.vcpus.iter().any(|v| v.override_pin.is_some());
        if last && domains_in(&st, pool).any(|d| !d.dying || pinned(d)) {
            return Err(Errno::new(libc::EBUSY));
        }
        if domains_in(&st, pool).flat_map(|d| &d.vcpus).any(|v| v.override_pin == Some(cpu)) {
            return Err(Errno::new(libc::EADDRINUSE));
        }
        if last {
            let dying: Vec<u32> = st.domains.iter().filter(|(_, d)| d.pool == pool).map(|(&id, _)| id).collect();
            for domid in dying {
                move_to(&mut st, domid, 0);
            }
        }
        if let Some(p) = st.pools.get_mut(&pool) {
            p.cpus.remove(id);
        }
        break_affinity(&mut st, pool, cpu);
        Ok(())
    }

    /// Gives a free CPU (in no pool) to a cpupool (`xc_cpupool_addcpu`,
    /// `xl cpupool-cpu-add`; `XEN_SYSCTL_CPUPOOL_OP_ADDCPU` in upstream
    /// `cpupool_do_sysctl()`).
    ///
    /// # Errors
    /// In Xen's order: `ENOENT` for no such pool; `EINVAL` for a CPU id past the host;
    /// `ENODEV` for a CPU that is offline or not free (in a pool already, this one
    /// included).
    pub fn pool_add_cpu(&self, pool: u32, cpu: u32) -> Result<(), Errno> {
        let mut st = self.lock();
        let id = cpu as usize;
        if !st.pools.contains_key(&pool) {
            return Err(ENOENT);
        }
        if cpu >= st.config.nr_cpus {
            return Err(EINVAL);
        }
        if st.config.offline.contains(id) || pool_of_cpu(&st, id).is_some() {
            return Err(Errno::new(libc::ENODEV));
        }
        if let Some(p) = st.pools.get_mut(&pool) {
            p.cpus.insert(id);
        }
        Ok(())
    }

    /// Moves a domain to a cpupool (`xc_cpupool_movedomain`, `xl cpupool-migrate`;
    /// `XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN` in upstream `cpupool_do_sysctl()`, then
    /// `sched_move_domain()`): every vCPU's hard and soft affinity become every CPU, and
    /// each runs on a CPU of the new pool.
    ///
    /// # Errors
    /// In Xen's order: `ESRCH` for no such domain; `EPERM` for the calling domain
    /// (`rcu_lock_remote_domain_by_id()`); then a domain already in `pool` is `Ok` with
    /// nothing changed, its maps not reset (checked before the pool is looked up and its
    /// CPUs counted); `ENOENT` for no such pool *or* a pool without CPUs; `EBUSY` when a
    /// vCPU of the domain has a temporary pin override.
    pub fn move_domain(&self, domid: u32, pool: u32) -> Result<(), Errno> {
        let mut st = self.lock();
        let d = st.domains.get(&domid).ok_or(ESRCH)?;
        if domid == st.config.calling_domid {
            return Err(Errno::new(libc::EPERM));
        }
        if d.pool == pool {
            return Ok(());
        }
        if st.pools.get(&pool).is_none_or(|p| p.cpus.is_empty()) {
            return Err(ENOENT);
        }
        if d.vcpus.iter().any(|v| v.override_pin.is_some()) {
            return Err(Errno::new(libc::EBUSY));
        }
        move_to(&mut st, domid, pool);
        Ok(())
    }

    /// Makes the `n`-th hypercall from now (1 = the next) fail with `errno`, without
    /// effect.
    pub fn fail_nth_call(&self, n: u64, errno: i32) {
        let mut st = self.lock();
        st.fail_at = Some((st.calls + n, errno));
    }

    /// The state of every domain now.
    pub fn snapshot(&self) -> SimSnapshot {
        let st = self.lock();
        let domains = st
            .domains
            .iter()
            .map(|(&id, d)| {
                let vcpus = d
                    .vcpus
                    .iter()
                    .map(|v| (v.online, v.hard.clone(), v.soft.clone(), v.override_pin.is_some()))
                    .collect();
                (id, (d.uuid, d.node_affinity.clone(), vcpus, d.pool))
            })
            .collect();
        let pools = st.pools.iter().map(|(&id, p)| (id, (p.sched_id, p.cpus.clone()))).collect();
        SimSnapshot { domains, offline_cpus: st.config.offline.clone(), pools }
    }

    /// The number of hypercalls made so far.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// libxenctrl's rule for the affinity calls: each map given is exactly `cpumap_size()`
    /// bytes. (Whether any map is given is checked later, after the vCPU, as Xen does.)
    fn check_maps(&self, hard: &Option<&mut [u8]>, soft: &Option<&mut [u8]>) -> Result<(), Errno> {
        let size = self.cpumap_size();
        let wrong = |m: &Option<&mut [u8]>| m.as_ref().is_some_and(|m| m.len() != size);
        if wrong(hard) || wrong(soft) {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Counts a call and applies fault injection.
    fn enter(&self) -> Result<std::sync::MutexGuard<'_, State>, Errno> {
        let mut st = self.lock();
        st.calls += 1;
        if let Some((at, errno)) = st.fail_at {
            if at == st.calls {
                st.fail_at = None;
                return Err(Errno::new(errno));
            }
        }
        Ok(st)
    }
}

/// After `cpu` left cpupool `pool` (taken out, or offline): each vCPU of a domain in
/// that pool whose hard affinity names `cpu` and no CPU left in the pool has its affinity
/// broken (hard := every CPU, soft kept: upstream `cpu_disable_scheduler()`), and a vCPU
/// that ran on `cpu` moves to a CPU of the pool and its hard map. A hard map that still
/// has a CPU of the pool is kept as it was set, `cpu` included.
fn break_affinity(st: &mut State, pool: u32, cpu: u32) {
    let all = CpuMap::all(st.config.nr_cpus as usize);
    let State { domains, pools, .. } = st;
    let pool_cpus = pools.get(&pool).map(|p| p.cpus.clone()).unwrap_or_default();
    for d in domains.values_mut().filter(|d| d.pool == pool) {
        for v in d.vcpus.iter_mut() {
            // Under a pin override Xen checks the temporary map (another CPU, or `cpu`,
            // which pool_remove_cpu refuses) and leaves the saved one alone.
            let pinned = v.override_pin.is_some();
            if !pinned && v.hard.contains(cpu as usize) && v.hard.intersection(&pool_cpus).is_empty() {
                v.hard = all.clone();
            }
            if v.cpu == cpu {
                v.cpu = v.hard.intersection(&pool_cpus).first().or(pool_cpus.first()).unwrap_or(0) as u32;
            }
        }
    }
}

/// Moves a domain to `pool` (which has CPUs), as `sched_move_domain()` does: every
/// vCPU's hard and soft affinity reset to every CPU, the vCPUs spread over the pool's CPUs.
fn move_to(st: &mut State, domid: u32, pool: u32) {
    let all = CpuMap::all(st.config.nr_cpus as usize);
    let cpus = st.pools.get(&pool).map(|p| p.cpus.clone()).unwrap_or_default();
    let n = cpus.count().max(1);
    if let Some(d) = st.domains.get_mut(&domid) {
        d.pool = pool;
        for (i, v) in d.vcpus.iter_mut().enumerate() {
            v.hard = all.clone();
            v.soft = all.clone();
            v.cpu = cpus.iter().nth(i % n).unwrap_or(0) as u32;
        }
    }
}

/// The cpupool CPU `cpu` is in, if any (a CPU is in at most one).
fn pool_of_cpu(st: &State, cpu: usize) -> Option<u32> {
    st.pools.iter().find(|(_, p)| p.cpus.contains(cpu)).map(|(&id, _)| id)
}

/// The domains in cpupool `pool`.
fn domains_in(st: &State, pool: u32) -> impl Iterator<Item = &Domain> {
    st.domains.values().filter(move |d| d.pool == pool)
}

/// The CPUs of a domain's pool.
fn pool_cpus(st: &State, domid: u32) -> Result<CpuMap, Errno> {
    let d = st.domains.get(&domid).ok_or(ESRCH)?;
    Ok(st.pools.get(&d.pool).map(|p| p.cpus.clone()).unwrap_or_default())
}

fn online_cpus(config: &SimConfig) -> CpuMap {
    CpuMap::all(config.nr_cpus as usize).difference(&config.offline)
}

fn map_from(bytes: &[u8], nr_cpus: u32) -> CpuMap {
    // Xen reads at most nr_cpu_ids bits and ignores the rest.
    CpuMap::from_libvirt_bytes(bytes).intersection(&CpuMap::all(nr_cpus as usize))
}

fn write_map(map: &CpuMap, out: &mut [u8]) {
    out.fill(0);
    let bits = out.len() * 8;
    for cpu in map.iter().filter(|&c| c < bits) {
        out[cpu / 8] |= 1 << (cpu % 8);
    }
}

fn vcpu_mut(st: &mut State, domid: u32, vcpu: u32) -> Result<&mut Vcpu, Errno> {
    let d = st.domains.get_mut(&domid).ok_or(ESRCH)?;
    d.vcpus.get_mut(vcpu as usize).ok_or(EINVAL)
}

impl Hypervisor for SimHost {
    fn cpumap_size(&self) -> usize {
        (self.lock().config.nr_cpus as usize).div_ceil(8)
    }

    fn physinfo(&self) -> Result<PhysInfo, Errno> {
        let st = self.enter()?;
        let c = &st.config;
        Ok(PhysInfo {
            threads_per_core: c.threads_per_core,
            cores_per_socket: c.cores_per_socket,
            nr_cpus: online_cpus(c).count() as u32,
            max_cpu_id: c.nr_cpus - 1,
            nr_nodes: c.nr_nodes,
            // Xen reports the highest node id it supports (MAX_NUMNODES - 1), not the
            // host's: 63 on x86 (seen in the lab on Xen 4.17, one node).
            max_node_id: SIM_MAX_NODE_ID,
            cpu_khz: 2_000_000,
        })
    }

    /// Xen 4.17's answer: an entry for every CPU up to the last present one — here every
    /// CPU, since offline CPUs stay present (`num_cpus = cpumask_last(&cpu_present_map) + 1`
    /// in `XEN_SYSCTL_cputopoinfo`, upstream `xen/common/sysctl.c`, since 780e2d3098 in
    /// 4.12; before it, up to the last *online* CPU). An offline CPU has no core and no
    /// socket (x86 `cpu_smpboot_free()` in `xen/arch/x86/smpboot.c` resets
    /// `cpu_core_id` and `phys_proc_id` when a CPU dies, offline CPUs not being parked)
    /// but keeps its node (`cpu_to_node[]` is left alone). The lab saw exactly this on Xen
    /// 4.17 with `xen-hptool cpu-offline`, for the last CPU (3) and a middle one (1): four
    /// entries, the offline CPU's (core, socket, node) = (~0, ~0, 0). With
    /// [`SimConfig::park_offline_cpus`] an offline CPU keeps its core and socket, as a
    /// parked CPU does.
    fn cpu_topology(&self, out: &mut Vec<CpuTopology>) -> Result<(), Errno> {
        let st = self.enter()?;
        let c = &st.config;
        out.clear();
        out.extend((0..c.nr_cpus).map(|cpu| {
            let node = Some(cpu * c.nr_nodes / c.nr_cpus);
            if c.offline.contains(cpu as usize) && !c.park_offline_cpus {
                return CpuTopology { core: None, socket: None, node };
            }
            let per_socket = c.threads_per_core * c.cores_per_socket;
            CpuTopology { core: Some(cpu % per_socket / c.threads_per_core), socket: Some(cpu / per_socket), node }
        }));
        Ok(())
    }

    fn domain_list(&self, first: u32, max: u32, out: &mut Vec<DomainInfo>) -> Result<(), Errno> {
        let st = self.enter()?;
        out.extend(st.domains.range(first..).take(max as usize).map(|(&id, d)| info_of(id, d)));
        Ok(())
    }

    fn domain_info(&self, domid: u32) -> Result<Option<DomainInfo>, Errno> {
        let st = self.enter()?;
        Ok(st.domains.get(&domid).map(|d| info_of(domid, d)))
    }

    fn vcpu_info(&self, domid: u32, vcpu: u32) -> Result<RawVcpuInfo, Errno> {
        let mut st = self.enter()?;
        let v = vcpu_mut(&mut st, domid, vcpu)?;
        if v.online {
            v.cpu_time_ns += 1_000_000;
        }
        // vCPU 0 is the one running; the others are blocked or, from vCPU 2, runnable.
        Ok(RawVcpuInfo {
            online: v.online,
            running: v.online && vcpu == 0,
            blocked: v.online && vcpu == 1,
            cpu_time_ns: v.cpu_time_ns,
            cpu: v.cpu,
        })
    }

    fn get_affinity(
        &self,
        domid: u32,
        vcpu: u32,
        hard: Option<&mut [u8]>,
        soft: Option<&mut [u8]>,
    ) -> Result<(), Errno> {
        self.check_maps(&hard, &soft)?;
        let mut st = self.enter()?;
        let v = vcpu_mut(&mut st, domid, vcpu)?;
        if hard.is_none() && soft.is_none() {
            return Err(EINVAL);
        }
        if let Some(h) = hard {
            // Under a pin override Xen's hard affinity *is* the temporary single-CPU map
            // (vcpu_temporary_affinity() sets it and saves the configured one aside), and
            // XEN_DOMCTL_getvcpuaffinity copies cpu_hard_affinity as it is
            // (xen/common/sched/core.c, vcpu_affinity_domctl()).
            match v.override_pin {
                Some(cpu) => write_map(&CpuMap::from_iter([cpu as usize]), h),
                None => write_map(&v.hard, h),
            }
        }
        if let Some(s) = soft {
            write_map(&v.soft, s);
        }
        Ok(())
    }

    fn set_affinity(
        &self,
        domid: u32,
        vcpu: u32,
        hard: Option<&mut [u8]>,
        soft: Option<&mut [u8]>,
        force: bool,
    ) -> Result<(), Errno> {
        self.check_maps(&hard, &soft)?;
        let mut st = self.enter()?;
        let nr_cpus = st.config.nr_cpus;
        // Xen checks and intersects with the online CPUs of the domain's cpupool.
        let online = pool_cpus(&st, domid)?;
        let v = vcpu_mut(&mut st, domid, vcpu)?;
        if hard.is_none() && soft.is_none() {
            return Err(EINVAL);
        }
        // xen/common/sched/core.c, vcpu_affinity_domctl(): FORCE undoes the override first
        // (vcpu_temporary_affinity(v, NR_CPUS, ...) restores the saved hard affinity), even
        // if the set below then fails; vcpu_set_hard_affinity() refuses a map with no
        // online CPU (EINVAL) before vcpu_set_affinity() finds the override (EBUSY).
        if force {
            v.override_pin = None;
        }
        let busy = Errno::new(libc::EBUSY);
        if let Some(h) = hard {
            let requested = map_from(h, nr_cpus);
            if requested.intersection(&online).is_empty() {
                return Err(EINVAL);
            }
            if v.override_pin.is_some() {
                return Err(busy);
            }
            write_map(&requested.intersection(&online), h);
            if !requested.contains(v.cpu as usize) {
                v.cpu = requested.intersection(&online).first().unwrap_or(0) as u32;
            }
            v.hard = requested;
        }
        if let Some(s) = soft {
            if v.override_pin.is_some() {
                return Err(busy);
            }
            let requested = map_from(s, nr_cpus);
            write_map(&requested.intersection(&v.hard).intersection(&online), s);
            v.soft = requested;
        }
        Ok(())
    }

    fn set_max_vcpus(&self, domid: u32, max: u32) -> Result<(), Errno> {
        let st = self.enter()?;
        let d = st.domains.get(&domid).ok_or(ESRCH)?;
        if max as usize != d.vcpus.len() || domid == st.config.calling_domid {
            return Err(EINVAL);
        }
        Ok(())
    }

    fn node_affinity(&self, domid: u32) -> Result<CpuMap, Errno> {
        let st = self.enter()?;
        let d = st.domains.get(&domid).ok_or(ESRCH)?;
        Ok(d.node_affinity.clone().unwrap_or_else(|| CpuMap::all(st.config.nr_nodes as usize)))
    }

    fn cpupool_info(&self, first: u32) -> Result<Option<RawPoolInfo>, Errno> {
        let st = self.enter()?;
        Ok(st.pools.range(first..).next().map(|(&id, p)| RawPoolInfo {
            id,
            sched_id: p.sched_id,
            n_dom: st.domains.values().filter(|d| d.pool == id).count() as u32,
            cpus: p.cpus.clone(),
        }))
    }

    /// The online CPUs in no pool (`cpupool_free_cpus` in upstream
    /// `xen/common/sched/cpupool.c`): taken out of a pool and not given to another.
    fn cpupool_free_cpus(&self) -> Result<CpuMap, Errno> {
        let st = self.enter()?;
        let in_pools = st.pools.values().fold(CpuMap::new(), |all, p| all.union(&p.cpus));
        Ok(online_cpus(&st.config).difference(&in_pools))
    }

    fn cpu_featureset(&self, kind: FeaturesetKind) -> Result<Vec<u32>, PolicyCallError> {
        let st = self.enter()?;
        Ok(st.cpu.featureset(kind))
    }

    fn system_cpu_policy(&self, kind: FeaturesetKind) -> Result<RawCpuPolicy, PolicyCallError> {
        let st = self.enter()?;
        Ok(st.cpu.policy(kind, &st.cpu.featureset(kind), false))
    }

    fn domain_cpu_policy(&self, domid: u32) -> Result<RawCpuPolicy, PolicyCallError> {
        let st = self.enter()?;
        let d = st.domains.get(&domid).ok_or(ESRCH)?;
        let default = if d.hvm { FeaturesetKind::HvmDefault } else { FeaturesetKind::PvDefault };
        Ok(st.cpu.policy(default, &d.featureset, true))
    }

    fn describe(&self) -> String {
        let st = self.lock();
        format!("simulated host ({} CPUs, {} domains)", st.config.nr_cpus, st.domains.len())
    }
}

fn info_of(domid: u32, d: &Domain) -> DomainInfo {
    let online = d.vcpus.iter().filter(|v| v.online).count() as u32;
    DomainInfo {
        domid: crate::DomId(domid),
        flags: DomainFlags { hvm: d.hvm, dying: d.dying, running: online > 0, ..DomainFlags::default() },
        shutdown_reason: None,
        nr_online_vcpus: online,
        max_vcpu_id: (d.vcpus.len() as u32).checked_sub(1),
        cpupool: d.pool,
        cpu_time_ns: d.vcpus.iter().map(|v| v.cpu_time_ns).sum(),
        tot_pages: 32768,
        uuid: d.uuid,
        emulation_flags: emulation_flags(d),
    }
}

/// What libxl asks Xen to emulate: nothing for PV, the local APIC for PVH, the legacy
/// platform but vPCI for HVM.
fn emulation_flags(d: &Domain) -> u32 {
    use xen_sys::{XEN_X86_EMU_LAPIC, XEN_X86_EMU_VPCI};
    match (d.hvm, d.pvh) {
        (false, _) => 0,
        (true, true) => XEN_X86_EMU_LAPIC,
        (true, false) => (XEN_X86_EMU_VPCI << 1) - 1 - XEN_X86_EMU_VPCI,
    }
}

/// The shape of the lab's system policy `kind` (Xen 4.17.5+ on QEMU TCG's `qemu64`, read by
/// `lab_cpu_policy`): AuthenticAMD, family 0xf model 0x6b stepping 1, basic leaves to 0xd;
/// extended leaves to 0x8000000a in the raw policy and to 0x80000021 in Xen's; leaf 7
/// subleaves 0, 2 in the maxima; CPUID faulting (MSR_PLATFORM_INFO bit 31) for HVM only.
fn lab_cpu_shape(kind: FeaturesetKind) -> PolicyShape {
    use FeaturesetKind::*;
    PolicyShape {
        vendor: CpuVendor::Amd,
        signature: 0x0006_0fb1,
        max_basic_leaf: 0xd,
        max_extended_leaf: if kind == Raw { 0x8000_000a } else { 0x8000_0021 },
        max_leaf7_subleaf: if matches!(kind, PvMax | HvmMax) { 2 } else { 0 },
        platform_info: if matches!(kind, HvmDefault | HvmMax) { 1 << 31 } else { 0 },
    }
}

/// The featuresets the lab's Xen 4.17 (Debian's 4.17.5+72, 19 words) reports on QEMU's
/// `qemu64`, in [`FeaturesetKind::ALL`] order: raw, host, pv_default, hvm_default, pv_max,
/// hvm_max (`xen-cpuid` printed the same). Host is *not* within raw: Xen synthesises
/// lfence-dispatch (word 11 bit 2) and drops sep (word 0 bit 11) on this AMD CPU.
const LAB_FEATURESETS: [[u32; 19]; 6] = [
    lab_words(0x178b_fbfd, 0x8000_2001, 0x2193_fbfd, 7, 0, 0),
    lab_words(0x178b_f3fd, 0x8000_2001, 0x2193_fbfd, 7, 0, 4),
    lab_words(0x1789_c3f5, 0x8000_2001, 0x2010_0800, 3, 0, 4),
    lab_words(0x178b_fbfd, 0x8020_2001, 0x2010_0800, 3, 0x0010_0000, 4),
    lab_words(0x1789_c3f5, 0x8020_2001, 0x2010_0800, 3, 0, 0x24),
    lab_words(0x178b_fbfd, 0x8020_2001, 0x2010_0800, 3, 0x0010_0000, 0x24),
];

/// 19 words with words 0-3 (1d, 1c, e1d, e1c), 8 (e8b) and 11 (e21a) given, the rest 0.
const fn lab_words(w0: u32, w1: u32, w2: u32, w3: u32, w8: u32, w11: u32) -> [u32; 19] {
    let mut words = [0; 19];
    words[0] = w0;
    words[1] = w1;
    words[2] = w2;
    words[3] = w3;
    words[8] = w8;
    words[11] = w11;
    words
}
