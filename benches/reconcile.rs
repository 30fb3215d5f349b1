//! The cost of an agent reconcile (`xenvcpu::agent::reconcile`) against the raw backend
//! calls it makes, on the simulated host, in one run.
//!
//! A fleet of N domains × M vCPUs on a 64-CPU `SimHost`; the policy of every domain pins
//! every vCPU to CPUs 0-31 (policy A) or 32-63 (policy B). Two cases, each against its
//! floor, paired in blocks (`support/paired.rs`):
//! - `right`: every vCPU already on its policy, the common case. The library's
//!   `reconcile(&dom, &policy, false)` for each domain against the raw calls it makes,
//!   through the same `Hypervisor` trait object (`Host::hypervisor`): per vCPU
//!   `vcpu_info` and `get_affinity` (hard and soft), and a byte comparison of the hard map
//!   with the policy's. Reads only.
//! - `repin`: every vCPU on the other policy, so every vCPU is re-pinned: the same reads,
//!   then per vCPU the identity check (`domain_info`, its uuid and dying flag) and
//!   `set_affinity` (hard only). The k-th call of a block reconciles to policy A for even
//!   `k` and B for odd `k`, on both sides, so with even blocks every call of either side
//!   finds every vCPU on the other policy (the bench sets policy B before it starts).
//!
//! Before measuring, each shape is checked through a counting wrapper of the same
//! simulated host: the library's reconcile and the raw loop make exactly the same calls,
//! method by method (and with the same maps given), in both cases; and each side finds
//! what the other wrote (`right` / `changed` agree). The measurement itself runs without
//! the wrapper. The domain handles are made once, before measuring: `reconcile` takes a
//! handle and makes no `domain_info` call when everything is right (the agent's
//! `reconcile_all` makes one per domain per pass to get the handle, on both ways alike).
//!
//! The simulator answers a call in tens of nanoseconds (a mutex and a map lookup), so the
//! ratio shows the library's own work at its largest; on real Xen, where a hypercall takes
//! microseconds, the same work is a much smaller share. `cargo bench --bench reconcile`
//! takes about half a minute; it prints the paired ratios at the end.

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use xenvcpu::agent::reconcile;
use xenvcpu::hypervisor::{
    CpuTopology, DomainInfo, Errno, Hypervisor, PhysInfo, RawVcpuInfo, SimConfig, SimDomain, SimHost,
};
use xenvcpu::placement::{Placement, Resolved};
use xenvcpu::{DomId, Domain, Host};

#[path = "support/paired.rs"]
mod paired;
#[path = "support/pairing.rs"]
mod pairing;

use paired::paired;

/// Domains × vCPUs per domain.
const SHAPES: [(u32, u32); 6] = [(1, 4), (1, 32), (8, 4), (8, 32), (32, 4), (32, 32)];
/// CPUs of the simulated host.
const NR_CPUS: u32 = 64;
/// Policy A and policy B: every vCPU on these CPUs.
const CPUSETS: [&str; 2] = ["0-31", "32-63"];
/// About this many vCPUs reconciled per block (the smaller shapes get longer blocks, so
/// that reading the clock stays out of the figures); blocks are even, at least 2.
const VCPUS_PER_BLOCK: u32 = 256;

/// A backend that counts the calls made through it, by method and by the maps given.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Hypervisor>,
    calls: Mutex<BTreeMap<String, u64>>,
}

impl Counting {
    fn count(&self, what: impl Into<String>) -> &dyn Hypervisor {
        *self.calls.lock().unwrap().entry(what.into()).or_default() += 1;
        &*self.inner
    }

    /// The calls counted since the last take, and a fresh count.
    fn take(&self) -> BTreeMap<String, u64> {
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
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// What one pass found: vCPUs right, vCPUs re-pinned.
type Tally = (usize, usize);

/// The library's side: `reconcile` of every domain.
fn lib_pass(domains: &[Domain], policy: &Resolved) -> Tally {
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
struct Raw {
    /// Domain id, uuid, vCPUs.
    domains: Vec<(u32, [u8; 16], u32)>,
    /// Per policy, per vCPU.
    want: [Vec<Vec<u8>>; 2],
}

/// The raw side's buffers, reused by every call.
struct Bufs {
    hard: Vec<u8>,
    soft: Vec<u8>,
    set: Vec<u8>,
}

/// The raw side: the calls `reconcile` makes, straight to the backend, with a byte
/// comparison in place of the library's map comparison and no report.
fn raw_pass(hv: &dyn Hypervisor, raw: &Raw, policy: usize, b: &mut Bufs) -> Tally {
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

/// One shape: the simulated host, a counting host and a plain host over it, the domain
/// handles on each, the two policies and the raw side's data.
struct Fleet {
    host: Host,
    domains: Vec<Domain>,
    counter: Arc<Counting>,
    counted_domains: Vec<Domain>,
    policies: [Resolved; 2],
    raw: Raw,
}

impl Fleet {
    fn new(n: u32, m: u32) -> Fleet {
        let config = SimConfig { nr_cpus: NR_CPUS, cores_per_socket: NR_CPUS, ..SimConfig::default() };
        let sim = Arc::new(SimHost::new(config));
        // Half of each domain's vCPUs online: a reconcile covers offline ones too.
        for domid in 1..=n {
            sim.add_domain(SimDomain { domid, max_vcpus: m, online: m.div_ceil(2), hvm: false });
        }
        let host = Host::with_shared_backend(sim.clone()).unwrap();
        let counter = Arc::new(Counting { inner: sim, calls: Mutex::new(BTreeMap::new()) });
        let counted = Host::with_shared_backend(counter.clone()).unwrap();
        let handles = |h: &Host| -> Vec<Domain> { (1..=n).map(|d| h.domain(DomId(d)).unwrap()).collect() };
        let (domains, counted_domains) = (handles(&host), handles(&counted));
        let info = host.info().unwrap();
        let policies = CPUSETS.map(|set| {
            let xml = format!("<domain><vcpu cpuset='{set}'>{m}</vcpu></domain>");
            Placement::from_xml(&xml).unwrap().resolve(&info, None).unwrap()
        });
        let size = host.cpumap_size();
        let want = [0, 1].map(|p| {
            policies[p as usize].vcpus.iter().map(|v| v.cpus.to_libvirt_bytes(size).unwrap()).collect::<Vec<_>>()
        });
        let raw = Raw { domains: domains.iter().map(|d| (d.id().get(), d.info().uuid, d.max_vcpus())).collect(), want };
        counter.take();
        Fleet { host, domains, counter, counted_domains, policies, raw }
    }

    fn bufs(&self) -> Bufs {
        let size = self.host.cpumap_size();
        Bufs { hard: vec![0; size], soft: vec![0; size], set: vec![0; size] }
    }

    /// Checks, through the counting host, that the library and the raw loop make the same
    /// calls and see the same state, in both cases; leaves every vCPU on policy B.
    fn check(&self, n: u32, m: u32) {
        let nm = (n * m) as usize;
        let hv: &dyn Hypervisor = &*self.counter;
        let mut b = self.bufs();
        let reads =
            BTreeMap::from([("get_affinity(hard, soft)".to_string(), nm as u64), ("vcpu_info".into(), nm as u64)]);
        let mut writes = reads.clone();
        writes.insert("domain_info".into(), nm as u64);
        writes.insert("set_affinity(hard)".into(), nm as u64);

        // From the sim's initial maps (all CPUs) to policy A.
        assert_eq!(lib_pass(&self.counted_domains, &self.policies[0]), (0, nm));
        self.counter.take();

        // right: both read only, the same calls.
        assert_eq!(lib_pass(&self.counted_domains, &self.policies[0]), (nm, 0));
        assert_eq!(self.counter.take(), reads, "{n}x{m}: the library's reconcile, all right");
        assert_eq!(raw_pass(hv, &self.raw, 0, &mut b), (nm, 0));
        assert_eq!(self.counter.take(), reads, "{n}x{m}: the raw calls, all right");

        // repin: both re-pin every vCPU, the same calls.
        assert_eq!(lib_pass(&self.counted_domains, &self.policies[1]), (0, nm));
        assert_eq!(self.counter.take(), writes, "{n}x{m}: the library's reconcile, every vCPU re-pinned");
        assert_eq!(raw_pass(hv, &self.raw, 0, &mut b), (0, nm));
        assert_eq!(self.counter.take(), writes, "{n}x{m}: the raw calls, every vCPU re-pinned");

        // Each side finds right what the other wrote.
        assert_eq!(lib_pass(&self.counted_domains, &self.policies[0]), (nm, 0));
        assert_eq!(raw_pass(hv, &self.raw, 1, &mut b), (0, nm));
        assert_eq!(lib_pass(&self.counted_domains, &self.policies[1]), (nm, 0));
        self.counter.take();
        println!("{n}x{m}: per pass, all right: {reads:?}; re-pinning every vCPU: {writes:?} (library = raw)");
    }
}

/// An even block size giving about [`VCPUS_PER_BLOCK`] vCPUs per block.
fn block_for(n: u32, m: u32) -> u64 {
    (u64::from(VCPUS_PER_BLOCK / (n * m)).max(2) + 1) & !1
}

fn label(case: &str, n: u32, m: u32) -> String {
    format!("{case}/{n}x{m}")
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
        .configure_from_args();
    let fleets: Vec<(u32, u32, Fleet)> = SHAPES
        .iter()
        .map(|&(n, m)| {
            let fleet = Fleet::new(n, m);
            fleet.check(n, m);
            (n, m, fleet)
        })
        .collect();

    for case in ["right", "repin"] {
        let mut group = c.benchmark_group(format!("reconcile_{case}"));
        for (n, m, fleet) in &fleets {
            let (n, m) = (*n, *m);
            let nm = (n * m) as usize;
            let hv = fleet.host.hypervisor();
            let mut b = fleet.bufs();
            // The vCPUs start on policy B (`check`); `right` keeps them there, `repin`
            // alternates A, B, A, B, … on both sides.
            let policy = |k: usize| if case == "right" { 1 } else { k % 2 };
            let expect = |p: Tally| assert_eq!(p, if case == "right" { (nm, 0) } else { (0, nm) });
            group.bench_with_input(BenchmarkId::new("reconcile", format!("{n}x{m}")), &(), |bch, _| {
                paired(
                    bch,
                    &label(case, n, m),
                    block_for(n, m),
                    &mut b,
                    |_, k| expect(lib_pass(&fleet.domains, &fleet.policies[policy(k)])),
                    |b, k| expect(raw_pass(hv, &fleet.raw, policy(k), b)),
                )
            });
            // Back to policy B for the next case (a repin block ends on B already).
            lib_pass(&fleet.domains, &fleet.policies[1]);
        }
        group.finish();
    }
    c.final_summary();
    report();
}

fn report() {
    println!("\nreconcile bench, on the simulated host (64 CPUs), paired: reconcile / raw backend calls");
    println!("| case | domains × vCPUs | reconcile | raw calls | per vCPU (reconcile; raw) | reconcile / raw | pairs | block |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for case in ["right", "repin"] {
        for (n, m) in SHAPES {
            let Some(p) = paired::stats(&label(case, n, m)) else { continue };
            let nm = f64::from(n * m);
            println!(
                "| {case} | {n} × {m} | {:.2} µs | {:.2} µs | {:.0} ns; {:.0} ns | **{:.2}×** | {} | {} |",
                p.own_ns / 1e3,
                p.baseline_ns / 1e3,
                p.own_ns / nm,
                p.baseline_ns / nm,
                p.ratio,
                p.pairs,
                p.block,
            );
        }
    }
}
