//! An affinity-update micro-benchmark: how many hard-affinity updates per second one vCPU
//! takes through the library's allocation-free path, with the latency distribution.
//! (The criterion benchmark `benches/affinity.rs` compares this path with the raw
//! libxenctrl call and with `xl vcpu-pin`; this is the small version to copy from.)
//!
//! ```text
//! cargo run --release --example affinity_bench -- DOMAIN [VCPU] [UPDATES]   # Xen dom0
//! cargo run --release --example affinity_bench -- --sim labguest 1 100000   # simulated
//! ```

use std::time::Instant;

use xenvcpu::cpumap::CpuMap;
use xenvcpu::{AffinityRequest, DomId, Effective, Host, VcpuId};

/// What a run measured.
#[derive(Debug)]
pub struct Figures {
    /// Updates made.
    pub updates: usize,
    /// Updates per second.
    pub per_sec: f64,
    /// Median and 99th percentile latency, in ns. Both are 0 where the clock did not move
    /// during most updates: a coarse clock, or one Linux holds back (a Xen PV guest's clock
    /// without a stable TSC never runs backwards across vCPUs, so it stands still instead).
    pub p50_ns: u64,
    /// See `p50_ns`.
    pub p99_ns: u64,
    /// The whole run, in ns, by the same clock: `per_sec` is `updates` over it.
    pub total_ns: u64,
}

/// Alternates `vcpu`'s hard affinity between every CPU and CPU 0, `updates` times, then
/// puts back the affinity it had.
pub fn run(host: &Host, domain: DomId, vcpu: VcpuId, updates: usize) -> Result<Figures, xenvcpu::Error> {
    let dom = host.domain(domain)?;
    let saved = dom.vcpu_info(vcpu)?;
    let maps = [CpuMap::all(host.nr_cpus()), CpuMap::from_iter([0])];
    let mut eff = Effective { hard: Some(CpuMap::with_capacity(host.nr_cpus())), soft: None };
    let mut times = Vec::with_capacity(updates);
    let start = Instant::now();
    let mut result = Ok(());
    for i in 0..updates {
        let t = Instant::now();
        result = dom.set_affinity_into(vcpu, &AffinityRequest::hard(&maps[i % 2]), &mut eff);
        times.push(t.elapsed().as_nanos() as u64);
        if result.is_err() {
            break;
        }
    }
    let total = start.elapsed();
    dom.set_affinity(vcpu, &AffinityRequest::both(&saved.hard, &saved.soft).forced())?;
    result?;
    times.sort_unstable();
    let pct = |p: usize| times.get(times.len().saturating_sub(1) * p / 100).copied().unwrap_or(0);
    let total_ns = total.as_nanos() as u64;
    Ok(Figures {
        updates,
        per_sec: updates as f64 * 1e9 / total_ns.max(1) as f64,
        p50_ns: pct(50),
        p99_ns: pct(99),
        total_ns,
    })
}

#[allow(dead_code)] // the tests include this file for `run`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let sim = args.first().is_some_and(|a| a == "--sim");
    if sim {
        args.remove(0);
    }
    let Some(domain) = args.first() else {
        return Err("usage: affinity_bench [--sim] DOMAIN [VCPU] [UPDATES]".into());
    };
    let vcpu = VcpuId(args.get(1).map_or(Ok(0), |v| v.parse())?);
    let updates: usize = args.get(2).map_or(Ok(10_000), |n| n.parse())?;
    if updates == 0 || updates > 100_000_000 {
        return Err("UPDATES: 1 to 100000000".into());
    }
    let platform;
    let host = if sim {
        platform = xenvcpu::sim::SimPlatform::lab_like()?;
        platform.host.clone()
    } else {
        Host::open()?
    };
    let domid = match domain.parse() {
        Ok(id) => id,
        Err(_) => host.domain_id(domain)?,
    };
    let f = run(&host, domid, vcpu, updates)?;
    println!(
        "{} updates of domain {domid} vCPU {vcpu}: {:.0} updates/s, p50 {:.1} µs, p99 {:.1} µs",
        f.updates,
        f.per_sec,
        f.p50_ns as f64 / 1e3,
        f.p99_ns as f64 / 1e3
    );
    if f.p50_ns == 0 {
        println!(
            "note: the clock stood still across most updates, so the percentiles say nothing here; updates/s does"
        );
    }
    Ok(())
}
