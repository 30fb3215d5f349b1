//! Applying a placement to a running domain, on the simulated platform: all online vCPUs
//! pinned as one operation, hotplugged vCPUs pinned per policy before they come online,
//! unplug dropping the vcpupin, and the emulator pinned like a real process.

use std::process::{Child, Command};
use std::time::Duration;

use xenvcpu::cpumap::CpuMap;
use xenvcpu::placement::{LivePlacement, Placement};
use xenvcpu::sim::SimPlatform;
use xenvcpu::xenstore::{TxId, XenStore};
use xenvcpu::{DomId, Error, NoEmulatorReason, VcpuId, VcpuSet, VcpuState};

fn cpus(list: &str) -> CpuMap {
    list.parse().unwrap()
}

fn vcpus(list: &str) -> VcpuSet {
    list.parse().unwrap()
}

const XML: &str = "<domain type='xen'><vcpu placement='static' cpuset='0-1' current='2'>4</vcpu>\
                   <cputune><vcpupin vcpu='1' cpuset='3'/><vcpupin vcpu='3' cpuset='2'/></cputune></domain>";

fn hard_maps(sim: &SimPlatform, domid: u32) -> Vec<CpuMap> {
    sim.host.domain(DomId(domid)).unwrap().vcpus().unwrap().into_iter().map(|v| v.hard).collect()
}

#[test]
fn apply_pins_every_online_vcpu_and_leaves_offline_ones() {
    let sim = SimPlatform::lab_like().unwrap();
    let info = sim.host.info().unwrap();
    let resolved = Placement::from_xml(XML).unwrap().resolve(&info, None).unwrap();
    let dom = sim.host.domain(DomId(1)).unwrap();
    let done = dom.apply_placement(&resolved).unwrap();
    assert_eq!(done.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [VcpuId(0), VcpuId(1)], "the online vCPUs");
    assert_eq!(hard_maps(&sim, 1), [cpus("0-1"), cpus("3"), cpus("0-3"), cpus("0-3")]);
}

#[test]
fn apply_rolls_back_on_failure() {
    let sim = SimPlatform::lab_like().unwrap();
    let info = sim.host.info().unwrap();
    let resolved = Placement::from_xml(XML).unwrap().resolve(&info, None).unwrap();
    let dom = sim.host.domain(DomId(1)).unwrap();
    let before = hard_maps(&sim, 1);
    // online_vcpus (4 calls), the hard maps against the domain's cpupool (its pool id,
    // then the pool: 2 calls), the previous maps of vCPUs 0 and 1 (1 call each), then per
    // vCPU an identity check and the set: fail the second set.
    sim.hv.fail_nth_call(4 + 2 + 2 + 2 + 2, libc::EIO);
    let err = dom.apply_placement(&resolved).unwrap_err();
    match &err {
        Error::RolledBack { failed, restored, restore_failures } => {
            assert_eq!(failed.errno().map(|e| e.raw()), Some(libc::EIO), "{err}");
            assert_eq!(*restored, vcpus("0"), "vCPU 0 was changed, so restored");
            assert!(restore_failures.is_empty(), "{err}");
        }
        e => panic!("{e}"),
    }
    assert_eq!(hard_maps(&sim, 1), before);
    let wrong = Placement::builder(2).build().unwrap().resolve(&info, None).unwrap();
    assert!(matches!(dom.apply_placement(&wrong), Err(Error::InvalidArgument(_))));
}

#[test]
fn hotplugged_vcpus_are_pinned_by_policy_and_unplug_drops_the_vcpupin() {
    let sim = SimPlatform::lab_like().unwrap();
    let info = sim.host.info().unwrap();
    let placement = Placement::from_xml(XML).unwrap();
    let mut live = LivePlacement::with_online(placement.clone(), &vcpus("0-1")).unwrap();
    let dom = sim.host.domain(DomId(1)).unwrap();
    dom.apply_placement(&placement.resolve(&info, None).unwrap()).unwrap();

    // vCPUs 2 and 3 come online: 2 inherits <vcpu cpuset>, 3 has its vcpupin.
    dom.set_vcpu_count_placed(4, &mut live, &info, None).unwrap();
    dom.wait_for_vcpus(&vcpus("0-3"), Duration::from_secs(5)).unwrap();
    assert_eq!(hard_maps(&sim, 1), [cpus("0-1"), cpus("3"), cpus("0-1"), cpus("2")]);

    // vCPU 3 goes offline and comes back: its vcpupin is gone, it inherits the cpuset.
    dom.set_vcpus_online_placed(&vcpus("3"), false, &mut live, &info, None).unwrap();
    dom.wait_for_vcpus(&vcpus("0-2"), Duration::from_secs(5)).unwrap();
    assert!(!live.placement().vcpupins.contains_key(&3));
    dom.set_vcpus_online_placed(&vcpus("3"), true, &mut live, &info, None).unwrap();
    dom.wait_for_vcpus(&vcpus("0-3"), Duration::from_secs(5)).unwrap();
    assert_eq!(hard_maps(&sim, 1)[3], cpus("0-1"));
    assert_ne!(dom.vcpu_info(VcpuId(3)).unwrap().state, VcpuState::Offline);
}

#[test]
fn a_failed_availability_write_undoes_the_pins_and_keeps_the_live_placement() {
    let sim = SimPlatform::lab_like().unwrap();
    let info = sim.host.info().unwrap();
    let placement = Placement::from_xml(XML).unwrap();
    let mut live = LivePlacement::with_online(placement.clone(), &vcpus("0-1")).unwrap();
    let dom = sim.host.domain(DomId(1)).unwrap();
    let before = hard_maps(&sim, 1);
    sim.store.inject_conflicts(1000);
    let err = dom.set_vcpu_count_placed(4, &mut live, &info, None).unwrap_err();
    sim.store.inject_conflicts(0);
    match &err {
        Error::RolledBack { failed, restored, restore_failures } => {
            assert!(matches!(&**failed, Error::XenStore(e) if e.is_again()), "{err}");
            assert_eq!(*restored, vcpus("2-3"), "{err}");
            assert!(restore_failures.is_empty(), "{err}");
        }
        e => panic!("{e}"),
    }
    assert_eq!(hard_maps(&sim, 1), before, "the pins for vCPUs 2-3 were undone");
    assert_eq!(live.online(), &vcpus("0-1"));
}

#[test]
fn a_failed_restore_after_a_failed_write_is_reported_not_dropped() {
    // The same failing write on two identical hosts: the first counts the hypercalls, of
    // which the last four are the restore (identity check + set, for vCPU 2 then 3); on
    // the second, the set restoring vCPU 2 fails.
    let failing_write = |fail_at: Option<u64>| {
        let sim = SimPlatform::lab_like().unwrap();
        let info = sim.host.info().unwrap();
        let mut live = LivePlacement::with_online(Placement::from_xml(XML).unwrap(), &vcpus("0-1")).unwrap();
        let dom = sim.host.domain(DomId(1)).unwrap();
        sim.store.inject_conflicts(1000);
        let start = sim.hv.calls();
        if let Some(n) = fail_at {
            sim.hv.fail_nth_call(n, libc::EIO);
        }
        let err = dom.set_vcpu_count_placed(4, &mut live, &info, None).unwrap_err();
        (err, sim.hv.calls() - start, hard_maps(&sim, 1))
    };
    let (_, calls, _) = failing_write(None);
    let (err, _, maps) = failing_write(Some(calls - 2));
    assert_eq!(maps[2], cpus("0-1"), "vCPU 2 kept its placed pin: its restore failed");
    match &err {
        Error::RolledBack { restored, restore_failures, .. } => {
            assert_eq!(*restored, vcpus("3"), "{err}");
            assert_eq!(restore_failures.len(), 1, "{err}");
            assert_eq!(restore_failures[0].0, VcpuId(2));
            assert_eq!(restore_failures[0].1.errno().map(|e| e.raw()), Some(libc::EIO));
        }
        e => panic!("{e}"),
    }
    assert!(err.to_string().contains("restoring failed for vCPU 2"), "{err}");
}

#[test]
fn a_domain_replaced_under_its_id_is_never_written_to() {
    use xenvcpu::hypervisor::SimDomain;
    let sim = SimPlatform::lab_like().unwrap();
    let dom = sim.host.domain(DomId(1)).unwrap();
    let before_store = sim.store.tree("/local/domain/1");
    // Destroyed and re-created under the same id, with the same shape.
    sim.hv.remove_domain(1);
    sim.hv.add_domain(SimDomain { domid: 1, max_vcpus: 4, online: 2, hvm: false });
    let newcomer = hard_maps(&sim, 1);
    let all = CpuMap::all(4);
    let err = dom.pin(&vcpus("0-1"), &xenvcpu::AffinityRequest::hard(&cpus("3"))).unwrap_err();
    assert!(
        matches!(&err, Error::RolledBack { failed, .. } if matches!(**failed, Error::DomainReplaced { domid: DomId(1), .. })),
        "{err}"
    );
    // Refused before the first change: the message says so, not "() were restored".
    assert!(err.to_string().ends_with("nothing was written to it; nothing had been changed"), "{err}");
    let err = dom.set_vcpu_count(3).unwrap_err();
    assert!(matches!(err, Error::DomainReplaced { domid: DomId(1), .. }), "{err}");
    assert!(err.to_string().contains("nothing was written"), "{err}");
    let err = dom.wait_for_vcpus(&vcpus("0-1"), Duration::from_secs(1)).unwrap_err();
    assert!(matches!(err, Error::DomainReplaced { .. }), "{err}");
    assert_eq!(hard_maps(&sim, 1), newcomer);
    assert!(newcomer.iter().all(|m| *m == all));
    assert_eq!(sim.store.tree("/local/domain/1"), before_store, "no availability was written");
    // Destroyed for good: gone, with no errno from a hypercall (a check found it).
    sim.hv.remove_domain(1);
    let err = dom.set_vcpu_count(3).unwrap_err();
    assert!(matches!(err, Error::DomainGone { domid: DomId(1), errno: None, .. }), "{err}");
}

struct Sleeper(Child);

impl Sleeper {
    /// Starts `cmd` and waits until it has exec'd (its /proc cmdline is its own).
    fn start(cmd: &mut Command) -> Sleeper {
        let child = Sleeper(cmd.spawn().unwrap());
        let path = format!("/proc/{}/cmdline", child.0.id());
        let program = cmd.get_program().to_str().unwrap().as_bytes().to_vec();
        for _ in 0..500 {
            if std::fs::read(&path).unwrap().starts_with(&program) {
                return child;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("{path} never showed {:?}", cmd.get_program());
    }
}

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
    let hvm = sim.host.domain(DomId(2)).unwrap();
    // No device-model pid recorded yet: the message says what is missing, not "PV".
    let err = hvm.pin_emulator(&cpus("0")).unwrap_err();
    assert!(matches!(err, Error::NoEmulator { domid: DomId(2), reason: NoEmulatorReason::NoPidRecorded }), "{err}");
    assert!(err.to_string().contains("stub domain") && !err.to_string().contains("PV"), "{err}");
    // A process that is not a device model (a stale or reused pid) is refused, untouched.
    let stranger = Sleeper::start(Command::new("sleep").arg("30"));
    let before = cpus_allowed_list(stranger.0.id());
    let path = "/local/domain/2/image/device-model-pid";
    sim.store.write(TxId::NONE, path, stranger.0.id().to_string().as_bytes()).unwrap();
    let err = hvm.pin_emulator(&cpus("0")).unwrap_err();
    assert!(matches!(err, Error::NotDeviceModel { domid: DomId(2), .. }), "{err}");
    assert_eq!(cpus_allowed_list(stranger.0.id()), before, "nothing pinned");
    // The device model of another domain is refused too.
    let other = Sleeper::start(Command::new("sh").args(["-c", "sleep 30; :", "qemu", "-xen-domid", "5"]));
    sim.store.write(TxId::NONE, path, other.0.id().to_string().as_bytes()).unwrap();
    let err = hvm.pin_emulator(&cpus("0")).unwrap_err();
    assert!(err.to_string().contains("-xen-domid 5"), "{err}");
    // A process started as libxl starts QEMU for domain 2.
    let child = Sleeper::start(Command::new("sh").args(["-c", "sleep 30; :", "qemu", "-xen-domid", "2"]));
    let pid = child.0.id();
    sim.store.write(TxId::NONE, path, pid.to_string().as_bytes()).unwrap();
    assert_eq!(hvm.emulator_pid().unwrap(), Some(pid));
    assert_eq!(hvm.pin_emulator(&cpus("0")).unwrap(), (pid, cpus("0")));
    assert_eq!(xenvcpu::process::process_affinity(pid).unwrap(), cpus("0"));
    assert_eq!(cpus_allowed_list(pid), cpus("0"), "as /proc shows it");

    let pv = sim.host.domain(DomId(1)).unwrap();
    let err = pv.pin_emulator(&cpus("0")).unwrap_err();
    assert!(matches!(err, Error::NoEmulator { domid: DomId(1), reason: NoEmulatorReason::Pv }), "{err}");
    assert!(err.to_string().contains("PV domain"), "{err}");
    assert!(matches!(xenvcpu::process::pin_process(pid, &CpuMap::new()), Err(Error::EmptyProcessMap { .. })));
    assert!(matches!(xenvcpu::process::process_affinity(u32::MAX >> 1), Err(Error::Process { .. })));
}

#[test]
fn placed_changes_are_checked_before_anything_is_pinned() {
    let sim = SimPlatform::lab_like().unwrap();
    let info = sim.host.info().unwrap();
    let placement = Placement::builder(2).cpuset("1").build().unwrap();
    let mut live = LivePlacement::with_online(placement, &vcpus("0")).unwrap();
    let hvm = sim.host.domain(DomId(2)).unwrap();
    let before = hard_maps(&sim, 2);
    let calls = sim.hv.calls();
    let err = hvm.set_vcpus_online_placed(&vcpus("1"), true, &mut live, &info, None).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    let err = hvm.set_vcpu_count_placed(2, &mut live, &info, None).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert_eq!(sim.hv.calls(), calls, "no hypercall was made");
    assert_eq!(hard_maps(&sim, 2), before);
    assert_eq!(live.online(), &vcpus("0"));
}

/// `set --policy` and `state --policy`: hotplug with inheritance in one step: the vCPUs
/// brought online are pinned per the file first (their `<vcpupin>`, else `<vcpu cpuset>`);
/// a file for another domain is refused and nothing changes.
#[test]
fn set_and_state_with_a_policy_pin_the_vcpus_they_bring_online() {
    let sim = xenvcpu::sim::SimPlatform::lab_like().unwrap();
    let file = std::env::temp_dir().join(format!("xenvcpu-set-policy-{}.xml", std::process::id()));
    let xml = "<domain><name>labguest</name><vcpu cpuset='0-1'>4</vcpu>\
               <cputune><vcpupin vcpu='3' cpuset='3'/></cputune></domain>";
    std::fs::write(&file, xml).unwrap();
    let f = file.to_str().unwrap();
    let dom = sim.host.domain(DomId(1)).unwrap();
    let maps = || dom.vcpus().unwrap().iter().map(|v| v.hard.to_string()).collect::<Vec<_>>();

    let code =
        xenvcpu::cli::run(["xenvcpu", "state", "labguest", "3", "on", "--policy", f, "--wait", "10"], Some(&sim));
    assert_eq!(code, 0);
    assert_eq!(maps(), ["0-3", "0-3", "0-3", "3"], "vCPU 3 came up on its <vcpupin>");
    let code = xenvcpu::cli::run(["xenvcpu", "set", "labguest", "4", "--policy", f, "--wait", "10"], Some(&sim));
    assert_eq!(code, 0);
    assert_eq!(maps(), ["0-3", "0-3", "0-1", "3"], "vCPU 2 came up on <vcpu cpuset>");

    let other = std::env::temp_dir().join(format!("xenvcpu-set-policy-other-{}.xml", std::process::id()));
    std::fs::write(&other, "<domain><name>otherguest</name><vcpu cpuset='2'>4</vcpu></domain>").unwrap();
    let before = sim.hv.snapshot();
    let code = xenvcpu::cli::run(["xenvcpu", "set", "labguest", "2", "--policy", other.to_str().unwrap()], Some(&sim));
    assert_eq!(code, 2, "another domain's file");
    assert_eq!(sim.hv.snapshot(), before, "nothing changed");
    let _ = (std::fs::remove_file(&file), std::fs::remove_file(&other));
}

/// `xenvcpu agent --once --dry-run` reports what it would change and writes nothing;
/// without `--dry-run` the same pass pins every vCPU.
#[test]
fn agent_dry_run_writes_nothing() {
    let sim = xenvcpu::sim::SimPlatform::lab_like().unwrap();
    let dir = std::env::temp_dir().join(format!("xenvcpu-agent-dry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("labguest.xml"), "<domain><name>labguest</name><vcpu cpuset='2'>4</vcpu></domain>")
        .unwrap();
    let state = dir.join("state");
    let args = |dry: bool| {
        let mut v = vec!["xenvcpu", "agent", "--once", "--policy", dir.to_str().unwrap(), "--state-dir"];
        v.push(state.to_str().unwrap());
        if dry {
            v.push("--dry-run");
        }
        v.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let before = sim.hv.snapshot();
    assert_eq!(xenvcpu::cli::run(args(true), Some(&sim)), 0);
    assert_eq!(sim.hv.snapshot(), before, "a dry run writes nothing");
    assert_eq!(xenvcpu::cli::run(args(false), Some(&sim)), 0);
    let maps: Vec<String> =
        sim.host.domain(DomId(1)).unwrap().vcpus().unwrap().iter().map(|v| v.hard.to_string()).collect();
    assert_eq!(maps, ["2"; 4]);
    let _ = std::fs::remove_dir_all(&dir);
}
