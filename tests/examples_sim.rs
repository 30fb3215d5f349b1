//! The programs in `examples/` run against the simulated lab-shaped platform: each file is
//! included here as a module and its `run` called, so what a newcomer copies is what is
//! tested.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use xenvcpu::cpumap::CpuMap;
use xenvcpu::sim::SimPlatform;
use xenvcpu::{AffinityRequest, DomId, VcpuId};

#[path = "../examples/affinity_bench.rs"]
mod affinity_bench;
#[path = "../examples/agent_repin.rs"]
mod agent_repin;
#[path = "../examples/dom0_pin.rs"]
mod dom0_pin;
#[path = "../examples/pin_overhead.rs"]
mod pin_overhead;

fn hard_maps(sim: &SimPlatform, domid: u32) -> Vec<String> {
    sim.host.domain(DomId(domid)).unwrap().vcpus().unwrap().iter().map(|v| v.hard.to_string()).collect()
}

#[test]
fn dom0_pin_lists_and_pins_every_vcpu_with_the_effective_map() {
    let sim = SimPlatform::lab_like().unwrap();
    let out = dom0_pin::run(&sim.host, "labguest", "1-2").unwrap();
    assert_eq!(out[0], "domain 1 (4 vCPUs)");
    assert_eq!(out.len(), 1 + 4 + 4, "{out:#?}");
    assert!(out[1].starts_with("vCPU  0  Running"), "{out:#?}");
    assert!(out[5..].iter().all(|l| l.ends_with("effective hard affinity 1-2")), "{out:#?}");
    assert_eq!(hard_maps(&sim, 1), ["1-2"; 4]);
    // By id, and a CPU the host lacks is refused before anything changes.
    assert!(dom0_pin::run(&sim.host, "1", "0").is_ok());
    assert!(matches!(dom0_pin::run(&sim.host, "1", "9"), Err(xenvcpu::Error::CpuList(_))));
    assert_eq!(hard_maps(&sim, 1), ["0"; 4]);
    // Xen drops an offline CPU from the effective map: the tool says so.
    sim.hv.set_cpu_online(3, false).unwrap();
    let out = dom0_pin::run(&sim.host, "labguest", "2-3").unwrap();
    assert!(out[5].ends_with("effective hard affinity 2 (Xen dropped 3)"), "{out:#?}");
}

#[test]
fn agent_repin_keeps_the_policy_as_vcpus_come_and_go() {
    let sim = Arc::new(SimPlatform::lab_like().unwrap());
    let policy = "<domain><vcpu cpuset='0-1'>4</vcpu><cputune><vcpupin vcpu='3' cpuset='3'/></cputune></domain>";
    let stop = Arc::new(AtomicBool::new(false));
    let agent = {
        let (sim, stop) = (sim.clone(), stop.clone());
        // Events: the watch's first firing, then one per availability node written (4).
        std::thread::spawn(move || agent_repin::run(&sim.host, DomId(1), policy, 5, &stop))
    };
    // The first reconcile pins every vCPU, offline ones too.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hard_maps(&sim, 1) != ["0-1", "0-1", "0-1", "3"] {
        assert!(std::time::Instant::now() < deadline, "not placed: {:?}", hard_maps(&sim, 1));
        std::thread::sleep(Duration::from_millis(20));
    }
    // Someone moves vCPU 2 away; then the guest gets all four vCPUs: the agent puts 2 back.
    let dom = sim.host.domain(DomId(1)).unwrap();
    dom.set_affinity(VcpuId(2), &AffinityRequest::hard(&CpuMap::from_iter([3]))).unwrap();
    dom.set_vcpu_count(4).unwrap();
    let log = agent.join().unwrap().unwrap();
    assert_eq!(hard_maps(&sim, 1), ["0-1", "0-1", "0-1", "3"]);
    assert!(log.iter().any(|l| l.ends_with("re-pinned vCPUs 2")), "{log:#?}");
    assert!(log.len() <= 2, "a reconcile that finds everything right writes nothing: {log:#?}");
    // A policy for another vCPU count is refused.
    let wrong = "<domain><vcpu>2</vcpu></domain>";
    let err = agent_repin::run(&sim.host, DomId(1), wrong, 1, &stop).unwrap_err();
    assert!(err.to_string().contains("the policy is for 2 vCPUs"), "{err}");
}

#[test]
fn affinity_bench_measures_and_restores() {
    let sim = SimPlatform::lab_like().unwrap();
    let before = sim.hv.snapshot();
    let f = affinity_bench::run(&sim.host, DomId(1), VcpuId(1), 1000).unwrap();
    assert_eq!(f.updates, 1000);
    assert!(f.total_ns > 0 && f.p50_ns <= f.p99_ns && f.p99_ns <= f.total_ns, "{f:?}");
    assert!((f.per_sec - 1000.0 * 1e9 / f.total_ns as f64).abs() < 1e-6 * f.per_sec, "{f:?}");
    assert_eq!(sim.hv.snapshot(), before, "the vCPU's affinity is back");
    assert!(matches!(
        affinity_bench::run(&sim.host, DomId(1), VcpuId(9), 10),
        Err(xenvcpu::Error::VcpuOutOfRange { .. })
    ));
}

/// The instruction probe's two sides make the same backend calls, so that what callgrind
/// counts between them is the library's own work: per pin the domain's info and its pool,
/// and per vCPU its maps, the identity check and the write.
#[test]
fn pin_overhead_lib_and_raw_make_the_same_calls() {
    use pin_overhead::Side;
    for vcpus in [1, 4, 16] {
        let lib = pin_overhead::run(Side::Lib, 3, vcpus).unwrap();
        let raw = pin_overhead::run(Side::Raw, 3, vcpus).unwrap();
        let v = u64::from(vcpus);
        assert_eq!(lib, [3, 3 * v, 3, 3 * v, 3 * v], "{vcpus} vCPUs: domain_info, identity, pool, get, set");
        assert_eq!(lib, raw, "{vcpus} vCPUs");
    }
    assert!(pin_overhead::run(Side::Lib, 1, 0).is_err());
}
