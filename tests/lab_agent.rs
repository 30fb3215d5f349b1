//! The agent on real Xen, in the lab's dom0: it places every vCPU of the lab guest (offline
//! ones too), and when `xl vcpu-set` — not us — brings vCPUs online, they are on the policy
//! at once; drift made with `xl vcpu-pin` is repaired.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xenvcpu::agent::{Agent, Event};
use xenvcpu::placement::Placement;
use xenvcpu::{AffinityRequest, Domain, Host, VcpuSet};

const POLICY: &str = "<domain><vcpu cpuset='0-1'>4</vcpu><cputune><vcpupin vcpu='3' cpuset='3'/></cputune></domain>";

fn xl(args: &[&str]) {
    let out = Command::new("xl").args(args).output().expect("xl");
    assert!(out.status.success(), "xl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn hard_maps(dom: &Domain) -> Vec<String> {
    dom.vcpus().unwrap().iter().map(|v| v.hard.to_string()).collect()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "lab: needs a real Xen and its PV guest (run tests/lab/lab.sh test)"]
fn the_agent_places_the_guest_through_xl_hotplug_and_drift() {
    assert_eq!(std::env::var("XENVCPU_LAB").as_deref(), Ok("1"), "run in the lab: tests/lab/lab.sh test");
    let name = std::env::var("XENVCPU_LAB_GUEST").expect("XENVCPU_LAB_GUEST");
    let host = Host::open().unwrap();
    let dom = host.domain_by_name(&name).unwrap();
    let saved = dom.vcpus().unwrap();
    let want = ["0-1", "0-1", "0-1", "3"];

    let mut agent = Agent::new(host.clone(), Some(Duration::from_secs(1)));
    agent.set_policy(name.clone(), Placement::from_xml(POLICY).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(Mutex::new(Vec::new()));
    let runner = {
        let (stop, events) = (stop.clone(), events.clone());
        std::thread::spawn(move || agent.run(&stop, |e: Event| events.lock().unwrap().push(e.to_string())))
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // The first pass pins all four vCPUs, the two offline ones included.
        wait_until("the first pass", || hard_maps(&dom) == want);
        assert_eq!(dom.online_vcpus().unwrap(), VcpuSet::all(2), "vCPUs 2-3 were placed while offline");
        // xl brings them online: they come up already placed.
        xl(&["vcpu-set", &name, "4"]);
        dom.wait_for_vcpus(&VcpuSet::all(4), Duration::from_secs(90)).unwrap();
        assert_eq!(hard_maps(&dom), want, "on the policy as soon as they are online");
        // Drift by xl vcpu-pin is repaired.
        xl(&["vcpu-pin", &name, "2", "3"]);
        wait_until("the drift repair", || hard_maps(&dom) == want);
    }));
    stop.store(true, Ordering::Relaxed);
    let run = runner.join().unwrap();
    xl(&["vcpu-set", &name, "2"]);
    dom.wait_for_vcpus(&VcpuSet::all(2), Duration::from_secs(90)).unwrap();
    for v in &saved {
        dom.set_affinity(v.vcpu, &AffinityRequest::both(&v.hard, &v.soft).forced()).unwrap();
    }
    let events = events.lock().unwrap();
    eprintln!("lab_agent: {} events: {events:#?}", events.len());
    outcome.unwrap_or_else(|p| std::panic::resume_unwind(p));
    run.unwrap();
    assert!(events.iter().any(|e| e.contains("vCPU 2 3 -> 0-1")), "the drift was reported: {events:#?}");
}
