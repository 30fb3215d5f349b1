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
//! takes about 20 seconds once built; it prints the paired ratios at the end.

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use xenvcpu::hypervisor::{SimConfig, SimDomain, SimHost};
use xenvcpu::placement::Resolved;
use xenvcpu::{DomId, Domain, Host};

#[path = "support/paired.rs"]
mod paired;
#[path = "support/pairing.rs"]
mod pairing;
#[path = "support/reconcile_pair.rs"]
mod reconcile_pair;

use paired::paired;
use reconcile_pair::{lib_pass, raw_pass, Bufs, Counting, Raw, Tally};

/// Domains × vCPUs per domain.
const SHAPES: [(u32, u32); 6] = [(1, 4), (1, 32), (8, 4), (8, 32), (32, 4), (32, 32)];
/// CPUs of the simulated host.
const NR_CPUS: u32 = 64;
/// Policy A and policy B: every vCPU on these CPUs.
const CPUSETS: [&str; 2] = ["0-31", "32-63"];
/// About this many vCPUs reconciled per block (the smaller shapes get longer blocks, so
/// that reading the clock stays out of the figures); blocks are even, at least 2.
const VCPUS_PER_BLOCK: u32 = 256;

/// One shape: the simulated host's plain host and its domain handles (measured), the
/// policies and the raw side's data.
struct Fleet {
    host: Host,
    domains: Vec<Domain>,
    policies: [Resolved; 2],
    raw: Raw,
}

impl Fleet {
    /// N domains of M vCPUs, checked through a counting host over the same simulated host
    /// (`reconcile_pair::check`), every vCPU left on policy B.
    fn new(n: u32, m: u32) -> Fleet {
        let config = SimConfig { nr_cpus: NR_CPUS, cores_per_socket: NR_CPUS, ..SimConfig::default() };
        let sim = Arc::new(SimHost::new(config));
        // Half of each domain's vCPUs online: a reconcile covers offline ones too.
        for domid in 1..=n {
            sim.add_domain(SimDomain { domid, max_vcpus: m, online: m.div_ceil(2), hvm: false });
        }
        let counter = Counting::new(sim.clone());
        let host = Host::with_shared_backend(sim).unwrap();
        let counted = Host::with_shared_backend(counter.clone()).unwrap();
        let handles = |h: &Host| -> Vec<Domain> { (1..=n).map(|d| h.domain(DomId(d)).unwrap()).collect() };
        let (domains, counted_domains) = (handles(&host), handles(&counted));
        let policies = reconcile_pair::policies(&host, m, CPUSETS);
        let size = host.cpumap_size();
        let (reads, writes) = reconcile_pair::check(
            &counter,
            &counted_domains,
            &Raw::new(&counted_domains, &policies, size),
            &policies,
            &format!("{n}x{m}"),
        );
        println!("{n}x{m}: per pass, all right: {reads:?}; re-pinning every vCPU: {writes:?} (library = raw)");
        let raw = Raw::new(&domains, &policies, size);
        Fleet { host, domains, policies, raw }
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
    let fleets: Vec<(u32, u32, Fleet)> = SHAPES.iter().map(|&(n, m)| (n, m, Fleet::new(n, m))).collect();

    for case in ["right", "repin"] {
        let mut group = c.benchmark_group(format!("reconcile_{case}"));
        for (n, m, fleet) in &fleets {
            let (n, m) = (*n, *m);
            let nm = (n * m) as usize;
            let hv = fleet.host.hypervisor();
            let mut b = Bufs::new(fleet.host.cpumap_size());
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
