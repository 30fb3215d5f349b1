//! [`Host`]: an open hypervisor, its CPUs and its domains.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::cpumap::{CpuListContext, CpuMap};
use crate::error::{Error, Op, Result};
use crate::hypervisor::{
    CpuTopology, DomainInfo, FeaturesetKind, Hypervisor, PhysInfo, PolicyCallError, XenCpuPolicy, XenCtrlBackend,
    MAX_CPUMAP_BYTES,
};
use crate::ids::{DomId, VcpuId};
use crate::xenstore::{self, paths, XenStore, XsClient, XsError};
use crate::Domain;

/// An open hypervisor and (opened on first use) its xenstore: the entry point of the
/// library.
///
/// Cheap to clone and shared by threads; every clone uses the same handle and the same
/// xenstore connection.
///
/// ```no_run
/// let host = xenvcpu::Host::open()?;
/// let dom0 = host.domain(xenvcpu::DomId::DOM0)?;
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
    hv: Arc<dyn Hypervisor>,
    nr_cpus: usize,
    cpumap_size: usize,
    /// The xenstore connection, opened on first use (or given with `set_store`); a failed
    /// open is kept, so it is not retried on every call.
    store: OnceLock<std::result::Result<Box<dyn XenStore>, StoreFailure>>,
    /// The reply deadline of the connection opened on first use.
    store_timeout: Mutex<Duration>,
    /// The number of words of the hypervisor's featuresets, once asked.
    featureset_len: OnceLock<usize>,
}

/// Why the xenstore connection could not be opened (kept to report it on every use).
#[derive(Debug, Clone)]
struct StoreFailure {
    endpoint: String,
    reason: String,
    errno: Option<xen_sys::Errno>,
}

impl StoreFailure {
    fn error(&self) -> Error {
        Error::XenStoreUnavailable { endpoint: self.endpoint.clone(), reason: self.reason.clone(), errno: self.errno }
    }
}

/// The host's CPUs: counts, the topology of every CPU id, and which are online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// The facts from `xc_physinfo`.
    pub phys: PhysInfo,
    /// Topology of CPU ids `0..=max_cpu_id`, as Xen reports it: an offline CPU has no core
    /// and no socket unless the host parks offline CPUs, and may keep its node (see
    /// [`CpuTopology`]); ids past the last one Xen reports are all `None`. Sized by
    /// `max_cpu_id + 1`, never by the online count. Not a record of which CPUs are online:
    /// that is [`online`](Self::online).
    pub cpus: Vec<CpuTopology>,
    /// The online CPUs: the free ones (in no cpupool) and every pool's, as
    /// [`Host::online_cpus`] reads them (`phys.nr_cpus` of them, unless CPUs were moving
    /// between pools or going on or offline while [`Host::info`] read them).
    pub online: CpuMap,
}

impl HostInfo {
    /// CPU ids `0..=max_cpu_id` (`max_cpu_id + 1` of them).
    pub fn nr_cpus(&self) -> usize {
        self.cpus.len()
    }

    /// The CPUs that are online ([`online`](Self::online): from the cpupools, not from the
    /// topology, whose core ids an Intel host keeps for parked offline CPUs).
    pub fn online_cpus(&self) -> CpuMap {
        self.online.clone()
    }

    /// The online CPUs with their topology.
    fn online_with_topology(&self) -> impl Iterator<Item = (usize, &CpuTopology)> {
        self.cpus.iter().enumerate().filter(|&(cpu, _)| self.online.contains(cpu))
    }

    /// The number of distinct sockets with an online CPU.
    pub fn nr_sockets(&self) -> usize {
        let sockets: std::collections::BTreeSet<u32> =
            self.online_with_topology().filter_map(|(_, t)| t.socket).collect();
        sockets.len()
    }

    /// The online CPUs of each NUMA node, indexed by node id (for `node:N` cpu-lists).
    ///
    /// Only online CPUs ([`online`](Self::online)): Xen 4.17 keeps reporting the node of a
    /// CPU taken offline (seen in the lab with `xen-hptool cpu-offline`), and on a host
    /// that parks offline CPUs its core and socket too; a `node:N` list must not name it. A
    /// node whose CPUs are all offline is an empty map (node ids stay indexes).
    pub fn node_cpus(&self) -> Vec<CpuMap> {
        let nodes = self.cpus.iter().filter_map(|t| t.node).max().map_or(0, |n| n as usize + 1);
        let mut out = vec![CpuMap::new(); nodes];
        for (cpu, t) in self.online_with_topology() {
            if let Some(node) = t.node {
                out[node as usize].insert(cpu);
            }
        }
        out
    }
}

/// How many times [`Host::info`] reads `xc_physinfo` and the online map until they agree
/// on the number of online CPUs (they differ only while CPUs move between pools or go on
/// or offline in between).
const ONLINE_MAP_ATTEMPTS: usize = 3;

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

    /// Uses the given backend, e.g. a simulated host.
    ///
    /// # Errors
    /// The failure of the first `xc_physinfo`: [`Error::VersionMismatch`] for `EACCES` (the
    /// first call is where Xen reports an interface-version mismatch), else as any later
    /// call; or [`Error::HostTooLarge`].
    pub fn with_backend(hv: impl Hypervisor + 'static) -> Result<Host> {
        Host::with_shared_backend(Arc::new(hv))
    }

    /// As [`with_backend`](Self::with_backend), with a backend the caller keeps a handle
    /// on too (a test that injects faults into its simulated host, say).
    ///
    /// # Errors
    /// As [`with_backend`](Self::with_backend).
    pub fn with_shared_backend(hv: Arc<dyn Hypervisor>) -> Result<Host> {
        let phys = hv.physinfo().map_err(|errno| match errno.raw() {
            libc::EACCES => Error::VersionMismatch {
                op: Op::PhysInfo,
                library: hv.describe(),
                hypervisor: crate::hypervisor::describe_release(xen_sys::running_hypervisor_version()),
                errno: Some(errno),
            },
            _ => host_error(&*hv, Op::PhysInfo, errno),
        })?;
        let nr_cpus = phys.max_cpu_id as usize + 1;
        let cpumap_size = hv.cpumap_size();
        if cpumap_size > MAX_CPUMAP_BYTES || cpumap_size < nr_cpus.div_ceil(8) {
            return Err(Error::HostTooLarge { size: cpumap_size.max(nr_cpus.div_ceil(8)), max: MAX_CPUMAP_BYTES });
        }
        let inner = Inner {
            hv,
            nr_cpus,
            cpumap_size,
            store: OnceLock::new(),
            store_timeout: Mutex::new(xenstore::DEFAULT_TIMEOUT),
            featureset_len: OnceLock::new(),
        };
        Ok(Host { inner: Arc::new(inner) })
    }

    /// Uses `store` as this host's xenstore (instead of opening xenstored's socket or the
    /// xenbus device on first use): for embedding, and for the simulated platform.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the host already has a store (it was used, or set).
    pub fn set_store(&self, store: impl XenStore + 'static) -> Result<()> {
        self.inner
            .store
            .set(Ok(Box::new(store)))
            .map_err(|_| Error::InvalidArgument("this host already has its xenstore connection".into()))
    }

    /// As [`set_store`](Self::set_store), for a host just made.
    ///
    /// # Errors
    /// As [`set_store`](Self::set_store).
    pub fn with_store(self, store: impl XenStore + 'static) -> Result<Host> {
        self.set_store(store)?;
        Ok(self)
    }

    /// The reply deadline (and connect deadline) of the xenstore connection the host opens
    /// on first use; [`xenstore::DEFAULT_TIMEOUT`] unless set. Has no effect once the
    /// store is open.
    pub fn set_store_timeout(&self, timeout: Duration) {
        *self.inner.store_timeout.lock().unwrap_or_else(|e| e.into_inner()) = timeout;
    }

    /// This host's xenstore: the one given with [`set_store`](Self::set_store), or a
    /// connection to xenstored opened on first use ([`XsClient`] over
    /// [`xenstore::default_endpoints`], with the deadline of
    /// [`set_store_timeout`](Self::set_store_timeout)).
    ///
    /// # Errors
    /// [`Error::XenStoreUnavailable`] naming the endpoints tried, when no connection could
    /// be made (the failure is kept: later calls report it without trying again).
    pub fn store(&self) -> Result<&dyn XenStore> {
        let slot = self.inner.store.get_or_init(|| {
            let timeout = *self.inner.store_timeout.lock().unwrap_or_else(|e| e.into_inner());
            let endpoints = xenstore::default_endpoints();
            XsClient::open_any_timeout(&endpoints, timeout).map(|c| Box::new(c) as Box<dyn XenStore>).map_err(|e| {
                StoreFailure {
                    endpoint: endpoints.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                    reason: e.to_string(),
                    errno: e.raw_errno().map(xen_sys::Errno::new),
                }
            })
        });
        match slot {
            Ok(store) => Ok(&**store),
            Err(failure) => Err(failure.error()),
        }
    }

    /// The error for a failed xenstore request: [`Error::XenStoreUnavailable`] naming the
    /// endpoint when xenstored could not be reached or did not answer, else
    /// [`Error::XenStore`].
    pub fn store_error(&self, e: XsError) -> Error {
        if !e.is_unavailable() {
            return Error::XenStore(e);
        }
        let endpoint = match self.inner.store.get() {
            Some(Ok(store)) => store.endpoint(),
            Some(Err(failure)) => failure.endpoint.clone(),
            None => "xenstore".into(),
        };
        Error::xenstore_unavailable(endpoint, &e)
    }

    /// A domain's name (`/local/domain/<domid>/name`), if it has one.
    ///
    /// # Errors
    /// [`Error::XenStoreUnavailable`], or a failed xenstore read other than a missing
    /// node.
    pub fn domain_name(&self, domid: DomId) -> Result<Option<String>> {
        paths::read_name(self.store()?, domid.get()).map_err(|e| self.store_error(e))
    }

    /// The id of the domain named `name`, found as xl does (through every
    /// `/local/domain/<id>/name`).
    ///
    /// # Errors
    /// [`Error::NoSuchDomainName`], [`Error::XenStoreUnavailable`], or a failed xenstore
    /// read.
    pub fn domain_id(&self, name: &str) -> Result<DomId> {
        paths::find_name(self.store()?, name)
            .map_err(|e| self.store_error(e))?
            .map(DomId)
            .ok_or_else(|| Error::NoSuchDomainName { name: name.to_owned() })
    }

    /// A handle on the domain named `name` (see [`domain_id`](Self::domain_id)).
    ///
    /// # Errors
    /// Those of [`domain_id`](Self::domain_id) and [`domain`](Self::domain).
    pub fn domain_by_name(&self, name: &str) -> Result<Domain> {
        self.domain(self.domain_id(name)?)
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

    /// The host's CPU counts (`xc_physinfo`), per-CPU topology (`xc_cputopoinfo`) and
    /// online CPUs ([`online_cpus`](Self::online_cpus): the free CPUs and every cpupool's).
    ///
    /// The online map and physinfo's online count are read apart: if they disagree (a CPU
    /// moved between pools, or went on or offline, in between), both are read again, up
    /// to three times in all; the last online map is kept even if they still disagree.
    ///
    /// # Errors
    /// A failed hypercall, the cpupool reads included ([`Op::CpupoolFreeInfo`],
    /// [`Op::CpupoolInfo`]; [`Error::Denied`] when Xen's security policy refuses them):
    /// the online CPUs are never guessed from the topology.
    pub fn info(&self) -> Result<HostInfo> {
        let hv = self.hypervisor();
        let mut attempt = 0;
        let (phys, online) = loop {
            attempt += 1;
            let phys = hv.physinfo().map_err(|e| host_error(hv, Op::PhysInfo, e))?;
            let online = self.online_cpus()?;
            if online.count() == phys.nr_cpus as usize || attempt == ONLINE_MAP_ATTEMPTS {
                break (phys, online);
            }
        };
        let mut cpus = Vec::with_capacity(self.nr_cpus());
        hv.cpu_topology(&mut cpus).map_err(|e| host_error(hv, Op::CpuTopology, e))?;
        // Xen 4.17 reports every CPU up to the last present one (offline ones included);
        // ids past it, up to max_cpu_id, are not present: nothing is known of them.
        cpus.resize(self.nr_cpus(), CpuTopology::default());
        Ok(HostInfo { phys, cpus, online })
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
                Some(last) if out.len() - before == BATCH as usize => first = last.domid.get() + 1,
                _ => return Ok(out),
            }
        }
    }

    /// Information about one domain (the returned domid is checked).
    ///
    /// # Errors
    /// [`Error::NoSuchDomain`], or a failed hypercall.
    pub fn domain_info(&self, domid: DomId) -> Result<DomainInfo> {
        let hv = self.hypervisor();
        hv.domain_info(domid.get())
            .map_err(|e| host_error(hv, Op::DomainInfo, e))?
            .ok_or_else(|| Error::NoSuchDomain { domid })
    }

    /// A handle on one domain, for its vCPUs.
    ///
    /// # Errors
    /// [`Error::NoSuchDomain`], [`Error::NoVcpus`], or a failed hypercall.
    pub fn domain(&self, domid: DomId) -> Result<Domain> {
        let info = self.domain_info(domid)?;
        Domain::new(self.clone(), info)
    }

    /// One of the hypervisor's featuresets (libxenguest's `xc_get_cpu_featureset`): 32-bit
    /// words, word `w` bit `b` being the feature Xen numbers `w * 32 + b`, as many words as
    /// the hypervisor has (14 to 19 depending on the release, point releases included).
    /// Words 0–7 of [`FeaturesetKind::Host`] are `xl info`'s `hw_caps`.
    ///
    /// # Errors
    /// [`Error::LibraryNotFound`] when libxenguest of the loaded libxenctrl's release is
    /// missing (the message names the files tried and the package); [`Error::Unsupported`]
    /// when the hypervisor lacks this featureset (`pv_max` and `hvm_max` need Xen 4.17.2)
    /// or the call fails otherwise (with the errno in the message).
    pub fn featureset(&self, kind: FeaturesetKind) -> Result<Vec<u32>> {
        let words = self
            .hypervisor()
            .cpu_featureset(kind)
            .map_err(|e| policy_error(e, "xc_get_cpu_featureset", &format!("the {kind} featureset")))?;
        let _ = self.inner.featureset_len.set(words.len());
        Ok(words)
    }

    /// The number of words of the hypervisor's featuresets (asked once, with the host
    /// featureset, then remembered).
    ///
    /// # Errors
    /// As [`featureset`](Self::featureset).
    pub fn featureset_len(&self) -> Result<usize> {
        match self.inner.featureset_len.get() {
            Some(&len) => Ok(len),
            None => self.featureset(FeaturesetKind::Host).map(|words| words.len()),
        }
    }

    /// One of the hypervisor's system CPU policies (libxenguest's
    /// `xc_cpu_policy_get_system`), decoded: vendor, leaf limits, and the featureset in as
    /// many words as the hypervisor's featuresets have (so that it lines up with
    /// [`featureset`](Self::featureset)). The raw and host policies describe the boot CPU.
    ///
    /// # Errors
    /// As [`featureset`](Self::featureset).
    pub fn cpu_policy(&self, kind: FeaturesetKind) -> Result<XenCpuPolicy> {
        let len = self.featureset_len()?;
        let raw = self
            .hypervisor()
            .system_cpu_policy(kind)
            .map_err(|e| policy_error(e, "xc_cpu_policy_get_system", &format!("the {kind} policy")))?;
        Ok(XenCpuPolicy::decode(raw, len))
    }

    pub(crate) fn error(&self, op: Op, domid: Option<DomId>, vcpu: Option<VcpuId>, errno: xen_sys::Errno) -> Error {
        classify(self.hypervisor(), op, domid, vcpu, errno)
    }
}

/// The error for a failed featureset or CPU policy call. (These calls have no [`Op`]: a
/// library that is missing is [`Error::LibraryNotFound`], anything Xen refuses
/// [`Error::Unsupported`] naming the call and the errno.)
pub(crate) fn policy_error(e: PolicyCallError, call: &str, what: &str) -> Error {
    match e {
        PolicyCallError::Library(load) => Error::LibraryNotFound(load),
        PolicyCallError::Xen(errno) if matches!(errno.raw(), libc::EINVAL | libc::EOPNOTSUPP) => {
            Error::Unsupported(format!(
                "{call} for {what}: the hypervisor does not provide it ({errno}; pv_max and hvm_max need Xen 4.17.2 \
                 or later, and a PV or HVM policy needs that guest type compiled into Xen)"
            ))
        }
        PolicyCallError::Xen(errno) => Error::Unsupported(format!("{call} for {what} failed: {errno}")),
    }
}

fn host_error(hv: &dyn Hypervisor, op: Op, errno: xen_sys::Errno) -> Error {
    classify(hv, op, None, None, errno)
}

/// The error for a hypercall that failed after open. Interface-version mismatches are
/// decided at open ([`Host::open`], [`Host::with_backend`]), so here `EACCES` and `EPERM`
/// mean the call itself was refused: Xen's security policy (XSM/FLASK) or a missing
/// privilege ([`Error::Denied`]).
fn classify(_hv: &dyn Hypervisor, op: Op, domid: Option<DomId>, vcpu: Option<VcpuId>, errno: xen_sys::Errno) -> Error {
    match errno.raw() {
        libc::EACCES | libc::EPERM => Error::Denied { op, domid, vcpu, errno },
        _ => Error::Hypercall { op, domid, vcpu, errno },
    }
}
