//! The reconcile pair: an agent reconcile (`xenvcpu::agent::reconcile`) of some domains
//! and the raw backend calls it makes, for `reconcile.rs` (the simulator) and `affinity.rs`
//! (the lab guest on real Xen); with a counting backend to check, before measuring, that
//! both sides make the same calls.

// Included by two benches, each of which uses a part.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};

use xenvcpu::agent::reconcile;
use xenvcpu::hypervisor::{
    CpuTopology, DomainInfo, Errno, FeaturesetKind, Hypervisor, PhysInfo, PolicyCallError, RawCpuPolicy, RawVcpuInfo,
};
use xenvcpu::placement::{Placement, Resolved};
use xenvcpu::{Domain, Host};

/// A backend that counts the calls made through it, by method and by the maps given.
#[derive(Debug)]
pub struct Counting {
    inner: Arc<dyn Hypervisor>,
    calls: Mutex<BTreeMap<String, u64>>,
}

impl Counting {
    /// Counts the calls made to `inner` through it.
    pub fn new(inner: Arc<dyn Hypervisor>) -> Arc<Counting> {
        Arc::new(Counting { inner, calls: Mutex::new(BTreeMap::new()) })
    }

    fn count(&self, what: impl Into<String>) -> &dyn Hypervisor {
        *self.calls.lock().unwrap().entry(what.into()).or_default() += 1;
        &*self.inner
    }

    /// The calls counted since the last take, and a fresh count.
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

fn maps(hard: &Option<&mut [u8]>, soft: &Option<&mut [u8]>) -> &'static str {
    match (hard.is_some(), soft.is_some()) {
        (true, true) => "hard, soft",
        (true, false) => "hard",
        (false, true) => "soft",
        (false, false) => "none",
    }
}

impl Hypervisor for Counting {
    fn cpumap_size(&self) -> usize {
        self.inner.cpumap_size()
    }
    fn physinfo(&self) -> Result<PhysInfo, Errno> {
        self.count("physinfo").physinfo()
    }
    fn cpu_topology(&self, out: &mut Vec<CpuTopology>) -> Result<(), Errno> {
        self.count("cpu_topology").cpu_topology(out)
    }
    fn domain_list(&self, first: u32, max: u32, out: &mut Vec<DomainInfo>) -> Result<(), Errno> {
        self.count("domain_list").domain_list(first, max, out)
    }
    fn domain_info(&self, domid: u32) -> Result<Option<DomainInfo>, Errno> {
        self.count("domain_info").domain_info(domid)
    }
    fn vcpu_info(&self, domid: u32, vcpu: u32) -> Result<RawVcpuInfo, Errno> {
        self.count("vcpu_info").vcpu_info(domid, vcpu)
    }
    fn get_affinity(
        &self,
        domid: u32,
        vcpu: u32,
        hard: Option<&mut [u8]>,
        soft: Option<&mut [u8]>,
    ) -> Result<(), Errno> {
        self.count(format!("get_affinity({})", maps(&hard, &soft))).get_affinity(domid, vcpu, hard, soft)
    }
    fn set_affinity(
        &self,
        domid: u32,
        vcpu: u32,
        hard: Option<&mut [u8]>,
        soft: Option<&mut [u8]>,
        force: bool,
    ) -> Result<(), Errno> {
        let what = format!("set_affinity({}{})", maps(&hard, &soft), if force { ", force" } else { "" });
        self.count(what).set_affinity(domid, vcpu, hard, soft, force)
    }
    fn set_max_vcpus(&self, domid: u32, max: u32) -> Result<(), Errno> {
        self.count("set_max_vcpus").set_max_vcpus(domid, max)
    }
    fn node_affinity(&self, domid: u32) -> Result<xenvcpu::cpumap::CpuMap, Errno> {
        self.count("node_affinity").node_affinity(domid)
    }
    fn cpu_featureset(&self, kind: FeaturesetKind) -> Result<Vec<u32>, PolicyCallError> {
        self.count("cpu_featureset").cpu_featureset(kind)
    }
    fn system_cpu_policy(&self, kind: FeaturesetKind) -> Result<RawCpuPolicy, PolicyCallError> {
        self.count("system_cpu_policy").system_cpu_policy(kind)
    }
    fn domain_cpu_policy(&self, domid: u32) -> Result<RawCpuPolicy, PolicyCallError> {
        self.count("domain_cpu_policy").domain_cpu_policy(domid)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// What one pass found: vCPUs right, vCPUs re-pinned.
pub type Tally = (usize, usize);

/// The library's side: `reconcile` of every domain.
pub fn lib_pass(domains: &[Domain], policy: &Resolved) -> Tally {
    let mut tally = (0, 0);
    for dom in domains {
        let report = reconcile(dom, policy, false).unwrap();
        assert!(report.ok());
        tally.0 += report.right.count();
        tally.1 += report.changed.len();
        black_box(&report);
    }
    tally
}

/// The raw side's fixed data: the domains as the library's handles know them, and each
/// policy's hard map of each vCPU in Xen's byte layout.
pub struct Raw {
    /// Domain id, uuid, vCPUs.
    domains: Vec<(u32, [u8; 16], u32)>,
    /// Per policy, per vCPU.
    want: [Vec<Vec<u8>>; 2],
}

impl Raw {
    /// For these domain handles and policies, on a host with maps of `size` bytes.
    pub fn new(domains: &[Domain], policies: &[Resolved; 2], size: usize) -> Raw {
        let want = [0, 1].map(|p: usize| {
            policies[p].vcpus.iter().map(|v| v.cpus.to_libvirt_bytes(size).unwrap()).collect::<Vec<_>>()
        });
        Raw { domains: domains.iter().map(|d| (d.id().get(), d.info().uuid, d.max_vcpus())).collect(), want }
    }
}

/// The raw side's buffers, reused by every call.
pub struct Bufs {
    hard: Vec<u8>,
    soft: Vec<u8>,
    set: Vec<u8>,
}

impl Bufs {
    /// Buffers for maps of `size` bytes.
    pub fn new(size: usize) -> Bufs {
        Bufs { hard: vec![0; size], soft: vec![0; size], set: vec![0; size] }
    }
}

/// The raw side: the calls `reconcile` makes, straight to the backend, with a byte
/// comparison in place of the library's map comparison and no report.
pub fn raw_pass(hv: &dyn Hypervisor, raw: &Raw, policy: usize, b: &mut Bufs) -> Tally {
    let mut tally = (0, 0);
    for &(domid, uuid, vcpus) in &raw.domains {
        for v in 0..vcpus {
            black_box(hv.vcpu_info(domid, v).unwrap());
            hv.get_affinity(domid, v, Some(&mut b.hard), Some(&mut b.soft)).unwrap();
            let want = &raw.want[policy][v as usize];
            if b.hard == *want {
                tally.0 += 1;
                continue;
            }
            let same = matches!(hv.domain_info(domid), Ok(Some(d)) if d.uuid == uuid && !d.flags.dying);
            assert!(same, "domain {domid} replaced");
            b.set.copy_from_slice(want);
            hv.set_affinity(domid, v, Some(&mut b.set), None, false).unwrap();
            tally.1 += 1;
        }
    }
    black_box(&b.soft);
    tally
}

/// The two policies: every one of `vcpus` vCPUs on `cpusets[0]` (policy A), or on
/// `cpusets[1]` (policy B).
pub fn policies(host: &Host, vcpus: u32, cpusets: [&str; 2]) -> [Resolved; 2] {
    let info = host.info().unwrap();
    cpusets.map(|set| {
        let xml = format!("<domain><vcpu cpuset='{set}'>{vcpus}</vcpu></domain>");
        Placement::from_xml(&xml).unwrap().resolve(&info, None).unwrap()
    })
}

/// Checks, through `counter` (the backend of the handles `counted` and of `raw`'s calls
/// here), that the library's reconcile and the raw loop make the same calls, method by
/// method and map by map, and see the same state: all right (reads only), then every vCPU
/// re-pinned; and that each side finds right what the other wrote. Leaves every vCPU on
/// policy B. Returns the calls of one pass in each case, for the record.
pub fn check(
    counter: &Counting,
    counted: &[Domain],
    raw: &Raw,
    policies: &[Resolved; 2],
    what: &str,
) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let nm: usize = counted.iter().map(|d| d.max_vcpus() as usize).sum();
    let hv: &dyn Hypervisor = counter;
    let mut b = Bufs::new(counted[0].host().cpumap_size());
    let reads = BTreeMap::from([("get_affinity(hard, soft)".to_string(), nm as u64), ("vcpu_info".into(), nm as u64)]);
    let mut writes = reads.clone();
    writes.insert("domain_info".into(), nm as u64);
    writes.insert("set_affinity(hard)".into(), nm as u64);

    // From whatever the maps are to policy A.
    lib_pass(counted, &policies[0]);
    counter.take();

    // All right: both read only, the same calls.
    assert_eq!(lib_pass(counted, &policies[0]), (nm, 0), "{what}");
    assert_eq!(counter.take(), reads, "{what}: the library's reconcile, all right");
    assert_eq!(raw_pass(hv, raw, 0, &mut b), (nm, 0), "{what}");
    assert_eq!(counter.take(), reads, "{what}: the raw calls, all right");

    // Every vCPU re-pinned: the same calls.
    assert_eq!(lib_pass(counted, &policies[1]), (0, nm), "{what}");
    assert_eq!(counter.take(), writes, "{what}: the library's reconcile, every vCPU re-pinned");
    assert_eq!(raw_pass(hv, raw, 0, &mut b), (0, nm), "{what}");
    assert_eq!(counter.take(), writes, "{what}: the raw calls, every vCPU re-pinned");

    // Each side finds right what the other wrote.
    assert_eq!(lib_pass(counted, &policies[0]), (nm, 0), "{what}");
    assert_eq!(raw_pass(hv, raw, 1, &mut b), (0, nm), "{what}");
    assert_eq!(lib_pass(counted, &policies[1]), (nm, 0), "{what}");
    counter.take();
    (reads, writes)
}
