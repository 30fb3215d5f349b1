//! [`Host`]: an open hypervisor, its CPUs and its domains.

use std::sync::Arc;

use crate::cpumap::{CpuListContext, CpuMap};
use crate::error::{Error, Op, Result};
use crate::hypervisor::{CpuTopology, DomainInfo, Hypervisor, PhysInfo, XenCtrlBackend, MAX_CPUMAP_BYTES};
use crate::Domain;

/// An open hypervisor: the entry point of the library.
///
/// Cheap to clone and shared by threads; every clone uses the same handle.
///
/// ```no_run
/// let host = xenvcpu::Host::open()?;
/// let dom0 = host.domain(0)?;
/// for vcpu in dom0.vcpus()? {
///     println!("vCPU {} on CPU {:?}, hard affinity {}", vcpu.vcpu, vcpu.cpu, vcpu.hard);
/// }
/// # Ok::<(), xenvcpu::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    hv: Box<dyn Hypervisor>,
    nr_cpus: usize,
    cpumap_size: usize,
}

/// The host's CPUs: counts and the topology of every CPU id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// The facts from `xc_physinfo`.
    pub phys: PhysInfo,
    /// Topology of CPU ids `0..=max_cpu_id`, as Xen reports it: an offline CPU has no core
    /// and no socket but may keep its node (see [`CpuTopology`]); ids past the last one
    /// Xen reports are all `None`. Sized by `max_cpu_id + 1`, never by the online count.
    pub cpus: Vec<CpuTopology>,
}

impl HostInfo {
    /// CPU ids `0..=max_cpu_id` (`max_cpu_id + 1` of them).
    pub fn nr_cpus(&self) -> usize {
        self.cpus.len()
    }

    /// The CPUs that are online (those with a core id: see [`CpuTopology::is_online`]).
    pub fn online_cpus(&self) -> CpuMap {
        self.online().map(|(cpu, _)| cpu).collect()
    }

    /// The online CPUs with their topology.
    fn online(&self) -> impl Iterator<Item = (usize, &CpuTopology)> {
        self.cpus.iter().enumerate().filter(|(_, t)| t.is_online())
    }

    /// The number of distinct sockets with an online CPU.
    pub fn nr_sockets(&self) -> usize {
        let sockets: std::collections::BTreeSet<u32> = self.online().filter_map(|(_, t)| t.socket).collect();
        sockets.len()
    }

    /// The online CPUs of each NUMA node, indexed by node id (for `node:N` cpu-lists).
    ///
    /// Only online CPUs: Xen 4.17 keeps reporting the node of a CPU taken offline (seen in
    /// the lab with `xen-hptool cpu-offline`), and a `node:N` list must not name it. A
    /// node whose CPUs are all offline is an empty map (node ids stay indexes).
    pub fn node_cpus(&self) -> Vec<CpuMap> {
        let nodes = self.cpus.iter().filter_map(|t| t.node).max().map_or(0, |n| n as usize + 1);
        let mut out = vec![CpuMap::new(); nodes];
        for (cpu, t) in self.online() {
            if let Some(node) = t.node {
                out[node as usize].insert(cpu);
            }
        }
        out
    }
}

impl Host {
    /// Opens the real hypervisor through libxenctrl (see xen-sys for how the library is
    /// found).
    ///
    /// # Errors
    /// Those of [`XenCtrlBackend::open`]: [`Error::LibraryNotFound`] (every name tried is
    /// listed), [`Error::NoXen`] (not on Xen), [`Error::Permission`] (not root in a
    /// privileged domain), [`Error::VersionMismatch`] (the library does not match the
    /// hypervisor: decided at open); then those of [`with_backend`](Self::with_backend).
    pub fn open() -> Result<Host> {
        Host::with_backend(XenCtrlBackend::open()?)
    }

    /// Uses the given backend, e.g. a [`crate::hypervisor::SimHost`].
    ///
    /// # Errors
    /// The failure of the first `xc_physinfo`: [`Error::VersionMismatch`] for `EACCES` (the
    /// first call is where Xen reports an interface-version mismatch), else as any later
    /// call; or [`Error::HostTooLarge`].
    pub fn with_backend(hv: impl Hypervisor + 'static) -> Result<Host> {
        let phys = hv.physinfo().map_err(|errno| match errno.raw() {
            libc::EACCES => Error::VersionMismatch {
                op: Op::PhysInfo,
                library: hv.describe(),
                hypervisor: crate::hypervisor::describe_release(xen_sys::running_hypervisor_version()),
                errno: Some(errno),
            },
            _ => host_error(&hv, Op::PhysInfo, errno),
        })?;
        let nr_cpus = phys.max_cpu_id as usize + 1;
        let cpumap_size = hv.cpumap_size();
        if cpumap_size > MAX_CPUMAP_BYTES || cpumap_size < nr_cpus.div_ceil(8) {
            return Err(Error::HostTooLarge { size: cpumap_size.max(nr_cpus.div_ceil(8)), max: MAX_CPUMAP_BYTES });
        }
        Ok(Host { inner: Arc::new(Inner { hv: Box::new(hv), nr_cpus, cpumap_size }) })
    }

    /// The backend in use.
    pub fn hypervisor(&self) -> &dyn Hypervisor {
        &*self.inner.hv
    }

    /// The number of CPU ids, `max_cpu_id + 1`: every map is sized by it.
    pub fn nr_cpus(&self) -> usize {
        self.inner.nr_cpus
    }

    /// The byte length of the hypervisor's CPU maps.
    pub fn cpumap_size(&self) -> usize {
        self.inner.cpumap_size
    }

    /// The host's CPU counts and per-CPU topology (`xc_physinfo` + `xc_cputopoinfo`).
    ///
    /// # Errors
    /// A failed hypercall.
    pub fn info(&self) -> Result<HostInfo> {
        let hv = self.hypervisor();
        let phys = hv.physinfo().map_err(|e| host_error(hv, Op::PhysInfo, e))?;
        let mut cpus = Vec::with_capacity(self.nr_cpus());
        hv.cpu_topology(&mut cpus).map_err(|e| host_error(hv, Op::CpuTopology, e))?;
        // Xen 4.17 reports every CPU up to the last present one (offline ones included);
        // ids past it, up to max_cpu_id, are not present: nothing is known of them.
        cpus.resize(self.nr_cpus(), CpuTopology::default());
        Ok(HostInfo { phys, cpus })
    }

    /// A cpu-list context for this host: its size and, from `info`, its NUMA nodes.
    pub fn cpu_list_context<'a>(&self, nodes: &'a [CpuMap]) -> CpuListContext<'a> {
        CpuListContext::new().host_cpus(self.nr_cpus()).nodes(nodes)
    }

    /// Checks that `map` names only CPUs the host has.
    ///
    /// # Errors
    /// [`Error::CpusBeyondHost`] naming the CPUs that do not exist.
    pub fn check_cpus(&self, map: &CpuMap) -> Result<()> {
        match map.last() {
            Some(last) if last >= self.nr_cpus() => Err(Error::CpusBeyondHost {
                cpus: map.difference(&CpuMap::all(self.nr_cpus())),
                nr_cpus: self.nr_cpus(),
            }),
            _ => Ok(()),
        }
    }

    /// Every domain, in id order.
    ///
    /// # Errors
    /// A failed hypercall.
    pub fn domains(&self) -> Result<Vec<DomainInfo>> {
        const BATCH: u32 = 64;
        let hv = self.hypervisor();
        let mut out = Vec::new();
        let mut first = 0;
        loop {
            let before = out.len();
            hv.domain_list(first, BATCH, &mut out).map_err(|e| host_error(hv, Op::DomainInfo, e))?;
            match out.last() {
                Some(last) if out.len() - before == BATCH as usize => first = last.domid + 1,
                _ => return Ok(out),
            }
        }
    }

    /// Information about one domain (the returned domid is checked).
    ///
    /// # Errors
    /// [`Error::NoSuchDomain`], or a failed hypercall.
    pub fn domain_info(&self, domid: u32) -> Result<DomainInfo> {
        let hv = self.hypervisor();
        hv.domain_info(domid).map_err(|e| host_error(hv, Op::DomainInfo, e))?.ok_or(Error::NoSuchDomain { domid })
    }

    /// A handle on one domain, for its vCPUs.
    ///
    /// # Errors
    /// [`Error::NoSuchDomain`], [`Error::NoVcpus`], or a failed hypercall.
    pub fn domain(&self, domid: u32) -> Result<Domain> {
        let info = self.domain_info(domid)?;
        Domain::new(self.clone(), info)
    }

    pub(crate) fn error(&self, op: Op, domid: Option<u32>, vcpu: Option<u32>, errno: xen_sys::Errno) -> Error {
        classify(self.hypervisor(), op, domid, vcpu, errno)
    }
}

fn host_error(hv: &dyn Hypervisor, op: Op, errno: xen_sys::Errno) -> Error {
    classify(hv, op, None, None, errno)
}

/// The error for a hypercall that failed after open. Interface-version mismatches are
/// decided at open ([`Host::open`], [`Host::with_backend`]), so here `EACCES` and `EPERM`
/// mean the call itself was refused: Xen's security policy (XSM/FLASK) or a missing
/// privilege ([`Error::Denied`]).
fn classify(_hv: &dyn Hypervisor, op: Op, domid: Option<u32>, vcpu: Option<u32>, errno: xen_sys::Errno) -> Error {
    match errno.raw() {
        libc::EACCES | libc::EPERM => Error::Denied { op, domid, vcpu, errno },
        _ => Error::Hypercall { op, domid, vcpu, errno },
    }
}
