//! The agent's building blocks on the simulated platform: a reconcile pins every vCPU
//! (offline ones too) and a second one finds everything right; the event loop re-pins after
//! another tool's hotplug and drift, and places a domain introduced while it runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xenvcpu::agent::{reconcile, Agent, Event};
use xenvcpu::cpumap::CpuMap;
use xenvcpu::hypervisor::SimDomain;
use xenvcpu::placement::Placement;
use xenvcpu::sim::SimPlatform;
use xenvcpu::xenstore::{paths, TxId, XenStore};
use xenvcpu::{AffinityRequest, DomId, Error, VcpuId, VcpuSet};

const POLICY: &str = "<domain><vcpu cpuset='0-1'>4</vcpu><cputune><vcpupin vcpu='3' cpuset='3'/></cputune></domain>";

fn hard_maps(sim: &SimPlatform, domid: u32) -> Vec<String> {
    sim.host.domain(DomId(domid)).unwrap().vcpus().unwrap().iter().map(|v| v.hard.to_string()).collect()
}

#[test]
fn a_reconcile_pins_every_vcpu_offline_ones_too_and_a_second_finds_all_right() {
    let sim = SimPlatform::lab_like().unwrap();
    let policy = Placement::from_xml(POLICY).unwrap().resolve(&sim.host.info().unwrap(), None).unwrap();
    let dom = sim.host.domain(DomId(1)).unwrap();
    assert_eq!(dom.online_vcpus().unwrap(), "0-1".parse().unwrap(), "vCPUs 2-3 are offline");

    let dry = reconcile(&dom, &policy, true).unwrap();
    assert_eq!(dry.changed.len(), 4);
    assert_eq!(hard_maps(&sim, 1), ["0-3"; 4], "a dry run writes nothing");

    let report = reconcile(&dom, &policy, false).unwrap();
    assert!(report.ok() && report.right.is_empty(), "{report}");
    let changed: Vec<VcpuId> = report.changed.iter().map(|c| c.0).collect();
    assert_eq!(changed, [VcpuId(0), VcpuId(1), VcpuId(2), VcpuId(3)]);
    assert_eq!(hard_maps(&sim, 1), ["0-1", "0-1", "0-1", "3"]);

    let again = reconcile(&dom, &policy, false).unwrap();
    assert_eq!((again.right, again.changed.len()), (VcpuSet::all(4), 0), "already right: no writes");

    let eight = Placement::from_xml("<domain><vcpu>8</vcpu></domain>").unwrap();
    let err = reconcile(&dom, &eight.resolve(&sim.host.info().unwrap(), None).unwrap(), false).unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("for 8 vCPUs") && m.contains("has 4")), "{err}");
}

fn wait_for(sim: &SimPlatform, domid: u32, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while hard_maps(sim, domid) != want {
        assert!(Instant::now() < deadline, "domain {domid}: {:?}, want {want:?}", hard_maps(sim, domid));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_agent_repins_after_hotplug_and_drift_and_places_a_new_domain() {
    let sim = Arc::new(SimPlatform::lab_like().unwrap());
    let mut agent = Agent::new(sim.host.clone(), None);
    agent.set_policy("labguest", Placement::from_xml(POLICY).unwrap());
    agent.set_policy("second", Placement::from_xml("<domain><vcpu cpuset='2'>2</vcpu></domain>").unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let runner = {
        let (sim, stop, events) = (sim.clone(), stop.clone(), events.clone());
        std::thread::spawn(move || {
            let _keep = &sim;
            agent.run(&stop, |e: Event| events.lock().unwrap().push(e.to_string()))
        })
    };
    wait_for(&sim, 1, &["0-1", "0-1", "0-1", "3"]);

    // Another tool moves vCPU 2 and writes the availability nodes (as xl vcpu-set does).
    let dom = sim.host.domain(DomId(1)).unwrap();
    dom.set_affinity(VcpuId(2), &AffinityRequest::hard(&CpuMap::from_iter([3]))).unwrap();
    sim.store.write(TxId::NONE, &paths::availability(1, 2), b"online").unwrap();
    wait_for(&sim, 1, &["0-1", "0-1", "0-1", "3"]);

    // A domain named "second" is introduced while the agent runs.
    sim.hv.add_domain(SimDomain { domid: 5, max_vcpus: 2, online: 2, hvm: false });
    sim.store.write(TxId::NONE, &paths::name(5), b"second").unwrap();
    sim.store.fire_special("@introduceDomain");
    wait_for(&sim, 5, &["2", "2"]);

    stop.store(true, Ordering::Relaxed);
    runner.join().unwrap().unwrap();
    let events = events.lock().unwrap();
    assert!(events.iter().any(|e| e.contains("vCPU 2 3 -> 0-1")), "{events:#?}");
    assert!(events.iter().any(|e| e.starts_with("domain 5:") && e.contains("-> 2")), "{events:#?}");
}
