//! Applying a placement to a running domain, on the simulated platform: all online vCPUs
//! pinned as one operation, hotplugged vCPUs pinned per policy before they come online,
//! unplug dropping the vcpupin, and the emulator pinned like a real process.

use std::process::{Child, Command};
use std::time::Duration;

use xenvcpu::cpumap::CpuMap;
use xenvcpu::placement::{LivePlacement, Placement};
use xenvcpu::sim::SimPlatform;
use xenvcpu::xenstore::{TxId, XenStore};
use xenvcpu::{Error, VcpuState};

fn cpus(list: &str) -> CpuMap {
    list.parse().unwrap()
}

const XML: &str = "<domain type='xen'><vcpu placement='static' cpuset='0-1' current='2'>4</vcpu>\
                   <cputune><vcpupin vcpu='1' cpuset='3'/><vcpupin vcpu='3' cpuset='2'/></cputune></domain>";

fn hard_maps(sim: &SimPlatform, domid: u32) -> Vec<CpuMap> {
    sim.host.domain(domid).unwrap().vcpus().unwrap().into_iter().map(|v| v.hard).collect()
}

#[test]
fn apply_pins_every_online_vcpu_and_leaves_offline_ones() {
    let sim = SimPlatform::lab_like().unwrap();
    let info = sim.host.info().unwrap();
    let resolved = Placement::from_xml(XML).unwrap().resolve(&info, None).unwrap();
    let dom = sim.host.domain(1).unwrap();
    let done = dom.apply_placement(&resolved).unwrap();
    assert_eq!(done.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [0, 1], "the online vCPUs");
    assert_eq!(hard_maps(&sim, 1), [cpus("0-1"), cpus("3"), cpus("0-3"), cpus("0-3")]);
}

#[test]
fn apply_rolls_back_on_failure() {
    let sim = SimPlatform::lab_like().unwrap();
    let info = sim.host.info().unwrap();
    let resolved = Placement::from_xml(XML).unwrap().resolve(&info, None).unwrap();
    let dom = sim.host.domain(1).unwrap();
    let before = hard_maps(&sim, 1);
    // online_vcpus (4 calls), 2 reads of previous maps, then fail the second set.
    sim.hv.fail_nth_call(4 + 2 + 2, libc::EIO);
    let err = dom.apply_placement(&resolved).unwrap_err();
    assert!(matches!(err, Error::RolledBack { .. }), "{err}");
    assert_eq!(hard_maps(&sim, 1), before);
    let wrong = Placement::builder(2).build().unwrap().resolve(&info, None).unwrap();
    assert!(matches!(dom.apply_placement(&wrong), Err(Error::InvalidArgument(_))));
}

#[test]
fn hotplugged_vcpus_are_pinned_by_policy_and_unplug_drops_the_vcpupin() {
    let sim = SimPlatform::lab_like().unwrap();
    let info = sim.host.info().unwrap();
    let placement = Placement::from_xml(XML).unwrap();
    let mut live = LivePlacement::with_online(placement.clone(), &cpus("0-1")).unwrap();
    let dom = sim.host.domain(1).unwrap();
    dom.apply_placement(&placement.resolve(&info, None).unwrap()).unwrap();

    // vCPUs 2 and 3 come online: 2 inherits <vcpu cpuset>, 3 has its vcpupin.
    dom.set_vcpu_count_placed(&sim.store, 4, &mut live, &info, None).unwrap();
    dom.wait_for_vcpus(&cpus("0-3"), Duration::from_secs(5)).unwrap();
    assert_eq!(hard_maps(&sim, 1), [cpus("0-1"), cpus("3"), cpus("0-1"), cpus("2")]);

    // vCPU 3 goes offline and comes back: its vcpupin is gone, it inherits the cpuset.
    dom.set_vcpus_online_placed(&sim.store, &cpus("3"), false, &mut live, &info, None).unwrap();
    dom.wait_for_vcpus(&cpus("0-2"), Duration::from_secs(5)).unwrap();
    assert!(!live.placement().vcpupins.contains_key(&3));
    dom.set_vcpus_online_placed(&sim.store, &cpus("3"), true, &mut live, &info, None).unwrap();
    dom.wait_for_vcpus(&cpus("0-3"), Duration::from_secs(5)).unwrap();
    assert_eq!(hard_maps(&sim, 1)[3], cpus("0-1"));
    assert_ne!(dom.vcpu_info(3).unwrap().state, VcpuState::Offline);
}

#[test]
fn a_failed_availability_write_undoes_the_pins_and_keeps_the_live_placement() {
    let sim = SimPlatform::lab_like().unwrap();
    let info = sim.host.info().unwrap();
    let placement = Placement::from_xml(XML).unwrap();
    let mut live = LivePlacement::with_online(placement.clone(), &cpus("0-1")).unwrap();
    let dom = sim.host.domain(1).unwrap();
    let before = hard_maps(&sim, 1);
    sim.store.inject_conflicts(1000);
    assert!(dom.set_vcpu_count_placed(&sim.store, 4, &mut live, &info, None).is_err());
    sim.store.inject_conflicts(0);
    assert_eq!(hard_maps(&sim, 1), before, "the pins for vCPUs 2-3 were undone");
    assert_eq!(live.online(), &cpus("0-1"));
}

struct Sleeper(Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cpus_allowed_list(pid: u32) -> CpuMap {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap();
    line.trim().parse().unwrap()
}

#[test]
fn the_emulator_is_pinned_with_sched_setaffinity() {
    let sim = SimPlatform::lab_like().unwrap();
    let child = Sleeper(Command::new("sleep").arg("30").spawn().unwrap());
    let pid = child.0.id();
    // The HVM guest's device model, as libxl records it.
    sim.store.write(TxId::NONE, "/local/domain/2/image/device-model-pid", pid.to_string().as_bytes()).unwrap();
    let hvm = sim.host.domain(2).unwrap();
    assert_eq!(hvm.emulator_pid(&sim.store).unwrap(), Some(pid));
    assert_eq!(hvm.pin_emulator(&sim.store, &cpus("0")).unwrap(), pid);
    assert_eq!(xenvcpu::process_affinity(pid).unwrap(), cpus("0"));
    assert_eq!(cpus_allowed_list(pid), cpus("0"), "as /proc shows it");

    let pv = sim.host.domain(1).unwrap();
    assert!(matches!(pv.pin_emulator(&sim.store, &cpus("0")), Err(Error::NoEmulator { domid: 1 })));
    assert!(matches!(xenvcpu::pin_process(pid, &CpuMap::new()), Err(Error::EmptyProcessMap { .. })));
    assert!(matches!(xenvcpu::process_affinity(u32::MAX >> 1), Err(Error::Process { .. })));
}

#[test]
fn placed_changes_are_checked_before_anything_is_pinned() {
    let sim = SimPlatform::lab_like().unwrap();
    let info = sim.host.info().unwrap();
    let placement = Placement::builder(2).cpuset("1").build().unwrap();
    let mut live = LivePlacement::with_online(placement, &cpus("0")).unwrap();
    let hvm = sim.host.domain(2).unwrap();
    let before = hard_maps(&sim, 2);
    let calls = sim.hv.calls();
    let err = hvm.set_vcpus_online_placed(&sim.store, &cpus("1"), true, &mut live, &info, None).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    let err = hvm.set_vcpu_count_placed(&sim.store, 2, &mut live, &info, None).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert_eq!(sim.hv.calls(), calls, "no hypercall was made");
    assert_eq!(hard_maps(&sim, 2), before);
    assert_eq!(live.online(), &cpus("0"));
}
