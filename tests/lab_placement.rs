//! Placement applied to the lab's real PV guest, and a real dom0 process pinned the way the
//! emulator is.

use std::process::Command;
use std::time::Duration;

use xenvcpu::cpumap::CpuMap;
use xenvcpu::placement::{LivePlacement, Placement};
use xenvcpu::{AffinityRequest, DomId, Host, VcpuId, VcpuSet};

const XML: &str = "<vcpu placement='static' cpuset='0-1' current='2'>4</vcpu>\
                   <cputune><vcpupin vcpu='1' cpuset='3'/></cputune>";

fn lab() -> (Host, DomId) {
    assert_eq!(std::env::var("XENVCPU_LAB").as_deref(), Ok("1"), "run in the lab: tests/lab/lab.sh test");
    let guest = DomId(std::env::var("XENVCPU_LAB_GUEST_DOMID").expect("the lab guest").parse().unwrap());
    let host = Host::open().unwrap();
    host.store().expect("the lab's xenstored");
    (host, guest)
}

fn cpus(list: &str) -> CpuMap {
    list.parse().unwrap()
}

fn vcpus(list: &str) -> VcpuSet {
    list.parse().unwrap()
}

#[test]
#[ignore = "lab: needs a real Xen and its PV guest (run tests/lab/lab.sh test)"]
fn placement_applies_to_the_guest_and_to_a_vcpu_brought_online() {
    let (host, guest) = lab();
    let dom = host.domain(guest).unwrap();
    let info = host.info().unwrap();
    let placement = Placement::from_xml(XML).unwrap();
    let resolved = placement.resolve(&info, None).unwrap();
    dom.set_vcpu_count(2).unwrap();
    dom.wait_for_vcpus(&vcpus("0-1"), Duration::from_secs(90)).unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dom.apply_placement(&resolved).unwrap();
        assert_eq!(dom.vcpu_info(VcpuId(0)).unwrap().hard, cpus("0-1"));
        assert_eq!(dom.vcpu_info(VcpuId(1)).unwrap().hard, cpus("3"));

        let mut live = LivePlacement::with_online(placement.clone(), &vcpus("0-1")).unwrap();
        dom.set_vcpu_count_placed(3, &mut live, &info, None).unwrap();
        dom.wait_for_vcpus(&vcpus("0-2"), Duration::from_secs(90)).unwrap();
        let v2 = dom.vcpu_info(VcpuId(2)).unwrap();
        assert_eq!(v2.hard, cpus("0-1"), "vCPU 2 came online pinned per <vcpu cpuset>");
        assert!(v2.cpu.is_some_and(|c| c.get() <= 1), "{v2:?}");
    }));
    dom.set_vcpu_count(2).unwrap();
    dom.wait_for_vcpus(&vcpus("0-1"), Duration::from_secs(90)).unwrap();
    let all = CpuMap::all(host.nr_cpus());
    dom.pin(&VcpuSet::all(4), &AffinityRequest::hard(&all)).unwrap();
    outcome.unwrap();
}

#[test]
#[ignore = "lab: needs a real Xen and its PV guest (run tests/lab/lab.sh test)"]
fn a_real_process_is_pinned_the_way_the_emulator_is() {
    let (host, guest) = lab();
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = child.id();
    let result = xenvcpu::process::pin_process(pid, &cpus("1"));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
    let allowed = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim().to_string();
    assert_eq!(allowed, "1");
    // The PV guest has no device model: a typed error, not a silent success.
    let dom = host.domain(guest).unwrap();
    assert!(matches!(dom.pin_emulator(&cpus("0")), Err(xenvcpu::Error::NoEmulator { .. })));
}
