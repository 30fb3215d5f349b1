//! A backend that counts the calls made through it, by method (and by the maps given), so
//! that "no write was made" or "the same calls as the raw loop" is checked the same way
//! against real Xen and the simulator. Shared by the conformance and agent suites and the
//! reconcile benchmark.

// Each includer uses a part.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use xenvcpu::hypervisor::{
    AffinityCall, BatchStop, CpuTopology, DomainInfo, Errno, FeaturesetKind, Hypervisor, PhysInfo, PolicyCallError,
    RawCpuPolicy, RawPoolInfo, RawVcpuInfo,
};

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
        self.add(what, 1);
        &*self.inner
    }

    fn add(&self, what: impl Into<String>, n: u64) {
        if n > 0 {
            *self.calls.lock().unwrap().entry(what.into()).or_default() += n;
        }
    }

    /// The calls counted since the last take, and a fresh count.
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    /// Every call counted since the last take, of any method.
    pub fn calls(&self) -> u64 {
        self.calls.lock().unwrap().values().sum()
    }

    /// The calls since the last take of the methods whose name starts with `prefix` (e.g.
    /// `set_affinity`).
    pub fn calls_of(&self, prefix: &str) -> u64 {
        self.calls.lock().unwrap().iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, n)| n).sum()
    }
}

/// The key an affinity read is counted under: `get_affinity(hard, soft)`.
fn get_key(hard: bool, soft: bool) -> String {
    format!("get_affinity({})", which_maps(hard, soft))
}

/// The key an affinity write is counted under: `set_affinity(hard, force)`.
fn set_key(hard: bool, soft: bool, force: bool) -> String {
    format!("set_affinity({}{})", which_maps(hard, soft), if force { ", force" } else { "" })
}

fn which_maps(hard: bool, soft: bool) -> &'static str {
    match (hard, soft) {
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
        self.count(get_key(hard.is_some(), soft.is_some())).get_affinity(domid, vcpu, hard, soft)
    }
    fn set_affinity(
        &self,
        domid: u32,
        vcpu: u32,
        hard: Option<&mut [u8]>,
        soft: Option<&mut [u8]>,
        force: bool,
    ) -> Result<(), Errno> {
        self.count(set_key(hard.is_some(), soft.is_some(), force)).set_affinity(domid, vcpu, hard, soft, force)
    }
    // The batches go to the inner backend's own (libxenctrl's, in the lab), and count as
    // the calls they made: the single calls up to and including the one that failed.
    fn get_affinities(&self, domid: u32, vcpus: &[u32], soft: bool, out: &mut [u8]) -> Result<(), (usize, Errno)> {
        let result = self.inner.get_affinities(domid, vcpus, soft, out);
        let made = result.map_or_else(|(i, _)| i + 1, |()| vcpus.len());
        self.add(get_key(true, soft), made as u64);
        result
    }
    fn set_affinities(
        &self,
        domid: u32,
        uuid: &[u8; 16],
        calls: &[AffinityCall],
        maps: &mut [u8],
    ) -> Result<(), (usize, BatchStop)> {
        let result = self.inner.set_affinities(domid, uuid, calls, maps);
        let (checks, sets) = match result {
            Ok(()) => (calls.len(), calls.len()),
            Err((i, BatchStop::Identity(_))) => (i + 1, i),
            Err((i, BatchStop::Call(_))) => (i + 1, i + 1),
        };
        // The identity check is a domain_info call on every backend but libxenctrl's, which
        // reads the same hypercall's two fields: counted as the call it is.
        self.add("domain_info", checks as u64);
        for c in &calls[..sets.min(calls.len())] {
            self.add(set_key(c.hard, c.soft, c.force), 1);
        }
        result
    }
    fn set_max_vcpus(&self, domid: u32, max: u32) -> Result<(), Errno> {
        self.count("set_max_vcpus").set_max_vcpus(domid, max)
    }
    fn node_affinity(&self, domid: u32) -> Result<xenvcpu::cpumap::CpuMap, Errno> {
        self.count("node_affinity").node_affinity(domid)
    }
    fn cpupool_info(&self, first: u32) -> Result<Option<RawPoolInfo>, Errno> {
        self.count("cpupool_info").cpupool_info(first)
    }
    fn cpupool_free_cpus(&self) -> Result<xenvcpu::cpumap::CpuMap, Errno> {
        self.count("cpupool_free_cpus").cpupool_free_cpus()
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
