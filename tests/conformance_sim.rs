//! The conformance suite against the simulated host, plus the checks only a simulator can
//! make (fault injection, pin overrides, offline CPUs).

mod conformance;

use std::sync::Arc;

use conformance::sim_fixture;
use xenvcpu::cpumap::CpuMap;
use xenvcpu::hypervisor::{SimConfig, SimDomain, SimHost};
use xenvcpu::{AffinityRequest, DomId, Error, Host, PhysCpu, VcpuId, VcpuSet};

suite!(conformance::sim_fixture);

#[test]
fn failure_midway_rolls_back_every_changed_vcpu() {
    let f = sim_fixture();
    let sim = f.sim.as_ref().unwrap();
    let dom0 = f.host.domain(DomId(0)).unwrap();
    dom0.set_affinity(VcpuId(0), &AffinityRequest::hard(&"0".parse().unwrap())).unwrap();
    let before = dom0.vcpus().unwrap();
    // pin() checks the hard map against dom0's cpupool (2 calls), reads the previous maps
    // of 4 vCPUs (1 call each), then checks the domain's identity and sets vCPU 0, 1, 2
    // (2 calls each): fail the third set.
    sim.fail_nth_call(2 + 4 + 3 * 2, libc::EIO);
    let map: CpuMap = "2-3".parse().unwrap();
    let err = dom0.pin(&VcpuSet::all(4), &AffinityRequest::hard(&map)).unwrap_err();
    match &err {
        Error::RolledBack { failed, restored, restore_failures } => {
            assert_eq!(failed.errno().map(|e| e.raw()), Some(libc::EIO), "{err}");
            assert_eq!(*restored, "0-1".parse().unwrap());
            assert!(restore_failures.is_empty());
        }
        e => panic!("{e}"),
    }
    assert!(err.to_string().contains("were restored"), "{err}");
    for (b, now) in before.iter().zip(dom0.vcpus().unwrap()) {
        assert_eq!((&b.hard, &b.soft), (&now.hard, &now.soft), "vCPU {} restored", b.vcpu);
    }
}

#[test]
fn pin_override_is_busy_until_forced() {
    let f = sim_fixture();
    let sim = f.sim.as_ref().unwrap();
    let dom0 = f.host.domain(DomId(0)).unwrap();
    sim.set_pin_override(0, 1, true);
    let map: CpuMap = "3".parse().unwrap();
    let err = dom0.set_affinity(VcpuId(1), &AffinityRequest::hard(&map)).unwrap_err();
    assert!(
        matches!(err, Error::Busy { domid: DomId(0), vcpu: VcpuId(1), errno } if errno.raw() == libc::EBUSY),
        "{err}"
    );
    assert_eq!(err.errno().map(|e| e.raw()), Some(libc::EBUSY));
    assert!(err.to_string().contains("force"), "{err}");
    let eff = dom0.set_affinity(VcpuId(1), &AffinityRequest::hard(&map).forced()).unwrap();
    assert_eq!(eff.hard, Some(map.clone()));
    dom0.set_affinity(VcpuId(1), &AffinityRequest::hard(&map)).unwrap();
}

#[test]
fn under_a_pin_override_get_returns_the_temporary_cpu_and_einval_comes_before_ebusy() {
    let sim = Arc::new(SimHost::new(SimConfig { nr_cpus: 4, offline: "3".parse().unwrap(), ..SimConfig::default() }));
    sim.add_domain(SimDomain { domid: 0, max_vcpus: 2, online: 2, hvm: false });
    let host = Host::with_shared_backend(sim.clone()).unwrap();
    let dom0 = host.domain(DomId(0)).unwrap();
    dom0.set_affinity(VcpuId(1), &AffinityRequest::hard(&"0-2".parse().unwrap())).unwrap();
    let cpu = dom0.vcpu_info(VcpuId(1)).unwrap().cpu.unwrap();
    sim.set_pin_override(0, 1, true);
    assert_eq!(dom0.vcpu_info(VcpuId(1)).unwrap().hard, CpuMap::from_iter([cpu.index()]), "the temporary map");
    // A hard map with no online CPU is EINVAL even under the override.
    let offline: CpuMap = "3".parse().unwrap();
    let err = dom0.set_affinity(VcpuId(1), &AffinityRequest::hard(&offline)).unwrap_err();
    assert!(matches!(err, Error::NoUsableCpu { .. }), "{err}");
    // A soft-only change meets the override: EBUSY.
    let err = dom0.set_affinity(VcpuId(1), &AffinityRequest::soft(&"0".parse().unwrap())).unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err}");
    // Force undoes the override before the set, even when the set then fails: the
    // configured map is back.
    let err = dom0.set_affinity(VcpuId(1), &AffinityRequest::hard(&offline).forced()).unwrap_err();
    assert!(matches!(err, Error::NoUsableCpu { .. }), "{err}");
    assert_eq!(dom0.vcpu_info(VcpuId(1)).unwrap().hard, "0-2".parse().unwrap());
    dom0.set_affinity(VcpuId(1), &AffinityRequest::hard(&"1".parse().unwrap())).unwrap();
}

#[test]
fn effective_hard_drops_offline_cpus_and_all_offline_is_refused() {
    let sim = Arc::new(SimHost::new(SimConfig { nr_cpus: 8, offline: "6-7".parse().unwrap(), ..SimConfig::default() }));
    sim.add_domain(SimDomain { domid: 0, max_vcpus: 2, online: 2, hvm: false });
    let host = Host::with_shared_backend(sim.clone()).unwrap();
    let info = host.info().unwrap();
    assert_eq!(info.nr_cpus(), 8);
    assert_eq!(info.online_cpus(), "0-5".parse().unwrap());
    assert_eq!(info.phys.nr_cpus, 6);
    let dom0 = host.domain(DomId(0)).unwrap();
    let req_map: CpuMap = "4-7".parse().unwrap();
    let req = AffinityRequest::hard(&req_map);
    let eff = dom0.set_affinity(VcpuId(0), &req).unwrap();
    assert_eq!(eff.hard, Some("4-5".parse().unwrap()));
    assert_eq!(eff.dropped(&req).0, "6-7".parse().unwrap());
    assert_eq!(dom0.vcpu_info(VcpuId(0)).unwrap().hard, req_map, "Xen keeps the map as set");
    let offline: CpuMap = "6-7".parse().unwrap();
    match dom0.set_affinity(VcpuId(0), &AffinityRequest::hard(&offline)).unwrap_err() {
        Error::NoUsableCpu { map, online, .. } => {
            assert_eq!((map, online), (offline, "0-5".parse().unwrap()));
        }
        e => panic!("{e}"),
    }
}

/// The simulator's CPU hotplug refuses what Xen 4.17's `cpu_down()` / `cpu_up()` refuse:
/// CPU 0 or an id past the host (`EINVAL`), a CPU already in that state (`EEXIST`), and
/// going offline while a vCPU has a temporary pin override (`EADDRINUSE`,
/// `cpu_disable_scheduler_check()`); a vCPU that ran on the CPU moves into its hard map.
#[test]
fn cpu_hotplug_refuses_what_xen_refuses_and_moves_vcpus_off_the_cpu() {
    let f = sim_fixture();
    let sim = f.sim.as_ref().unwrap();
    let errno = |r: Result<(), xenvcpu::hypervisor::Errno>| r.unwrap_err().raw();
    assert_eq!(errno(sim.set_cpu_online(0, false)), libc::EINVAL);
    assert_eq!(errno(sim.set_cpu_online(4, false)), libc::EINVAL);
    assert_eq!(errno(sim.set_cpu_online(4, true)), libc::EINVAL);
    assert_eq!(errno(sim.set_cpu_online(3, true)), libc::EEXIST, "already online");
    sim.set_pin_override(0, 1, true);
    assert_eq!(errno(sim.set_cpu_online(3, false)), libc::EADDRINUSE);
    assert_eq!(f.host.info().unwrap().online_cpus(), CpuMap::all(4), "nothing changed");
    sim.set_pin_override(0, 1, false);
    let dom0 = f.host.domain(DomId(0)).unwrap();
    dom0.set_affinity(VcpuId(2), &AffinityRequest::hard(&"2-3".parse().unwrap())).unwrap();
    let on3 = (0..4).map(VcpuId).find(|&v| dom0.vcpu_info(v).unwrap().cpu == Some(PhysCpu(3)));
    sim.set_cpu_online(3, false).unwrap();
    assert_eq!(errno(sim.set_cpu_online(3, false)), libc::EEXIST, "already offline");
    for v in dom0.vcpus().unwrap() {
        assert_ne!(v.cpu, Some(PhysCpu(3)), "vCPU {} still on the offline CPU", v.vcpu);
        assert!(v.hard.contains(v.cpu.unwrap().index()), "vCPU {} runs inside its hard map", v.vcpu);
    }
    assert!(on3.is_some(), "some vCPU ran on CPU 3 before, so the move was checked");
    sim.set_cpu_online(3, true).unwrap();
}

#[test]
fn domain_that_goes_away_mid_listing_is_a_typed_error() {
    let f = sim_fixture();
    let sim = f.sim.as_ref().unwrap();
    let guest = f.host.domain(DomId(1)).unwrap();
    sim.remove_domain(1);
    assert!(matches!(guest.vcpus(), Err(Error::DomainGone { domid: DomId(1), .. })));
    assert!(matches!(f.host.domain(DomId(1)), Err(Error::NoSuchDomain { domid: DomId(1) })));
}

#[test]
fn eacces_on_the_first_call_at_open_is_a_version_mismatch() {
    let sim = Arc::new(SimHost::lab_like());
    sim.fail_nth_call(1, libc::EACCES);
    let err = Host::with_shared_backend(sim.clone()).unwrap_err();
    assert!(
        matches!(err, Error::VersionMismatch { op: xenvcpu::Op::PhysInfo, errno: Some(e), .. } if e.raw() == libc::EACCES),
        "{err}"
    );
    assert_eq!(err.errno().map(|e| e.raw()), Some(libc::EACCES));
    assert!(err.to_string().contains("interface versions differ"), "{err}");
}

#[test]
fn eacces_after_open_is_a_denial_that_keeps_op_and_errno() {
    let f = sim_fixture();
    let sim = f.sim.as_ref().unwrap();
    sim.fail_nth_call(1, libc::EACCES);
    let err = f.host.info().unwrap_err();
    assert!(
        matches!(err, Error::Denied { op: xenvcpu::Op::PhysInfo, domid: None, vcpu: None, errno } if errno.raw() == libc::EACCES),
        "{err}"
    );
    assert_eq!(err.errno().map(|e| e.raw()), Some(libc::EACCES));
    let text = err.to_string();
    assert!(text.contains("xc_physinfo") && text.contains("XSM/FLASK"), "{text}");
    // EPERM is the same kind of refusal.
    sim.fail_nth_call(1, libc::EPERM);
    assert!(matches!(f.host.domain_info(DomId(0)), Err(Error::Denied { op: xenvcpu::Op::DomainInfo, .. })));
}

#[test]
fn topology_with_two_nodes_and_smt() {
    let sim = SimHost::new(SimConfig {
        nr_cpus: 8,
        offline: "7".parse().unwrap(),
        threads_per_core: 2,
        cores_per_socket: 2,
        nr_nodes: 2,
        calling_domid: 0,
        park_offline_cpus: false,
    });
    let host = Host::with_backend(sim).unwrap();
    let info = host.info().unwrap();
    assert_eq!(info.nr_sockets(), 2);
    assert_eq!(info.node_cpus(), vec!["0-3".parse::<CpuMap>().unwrap(), "4-6".parse().unwrap()]);
    assert_eq!(info.cpus[7].core, None, "offline CPUs are marked");
    let nodes = info.node_cpus();
    assert_eq!(host.cpu_list_context(&nodes).parse("node:1,^5").unwrap(), "4,6".parse().unwrap());
}

#[test]
fn node_affinity_is_every_node_until_set_and_is_part_of_the_snapshot() {
    let sim = Arc::new(SimHost::new(SimConfig { nr_cpus: 8, nr_nodes: 2, ..SimConfig::default() }));
    sim.add_domain(SimDomain { domid: 0, max_vcpus: 2, online: 2, hvm: false });
    let host = Host::with_shared_backend(sim.clone()).unwrap();
    let dom0 = host.domain(DomId(0)).unwrap();
    assert_eq!(dom0.node_affinity().unwrap(), "0-1".parse().unwrap());
    let all = dom0.advisory_nodeset().unwrap();
    assert_eq!((all.nodes(), all.is_all_nodes()), (&"0-1".parse().unwrap(), true));

    let before = sim.snapshot();
    sim.set_node_affinity(0, &"1".parse().unwrap()).unwrap();
    assert_ne!(sim.snapshot(), before, "the node affinity is part of the snapshot");
    assert_eq!(dom0.node_affinity().unwrap(), "1".parse().unwrap());
    let one = dom0.advisory_nodeset().unwrap();
    assert_eq!((one.nodes(), one.is_all_nodes(), one.warning()), (&"1".parse().unwrap(), false, None));
    let resolved = xenvcpu::placement::Placement::builder(2)
        .auto()
        .build()
        .unwrap()
        .resolve(&host.info().unwrap(), Some(one.nodes()))
        .unwrap();
    assert!(resolved.vcpus.iter().all(|v| v.cpus == "4-7".parse().unwrap()), "{resolved}");

    // Xen's rules: disjoint from the host's nodes is EINVAL; every node is the automatic
    // affinity again; an absent domain is ESRCH.
    assert_eq!(sim.set_node_affinity(0, &"2-3".parse().unwrap()).map_err(|e| e.raw()), Err(libc::EINVAL));
    sim.set_node_affinity(0, &"0-7".parse().unwrap()).unwrap();
    assert_eq!(sim.snapshot(), before, "back to the automatic affinity");
    assert_eq!(sim.set_node_affinity(9, &"0".parse().unwrap()).map_err(|e| e.raw()), Err(libc::ESRCH));
    let gone = host.domain(DomId(0)).unwrap();
    sim.remove_domain(0);
    assert!(matches!(gone.node_affinity(), Err(Error::DomainGone { .. })));
}

#[test]
fn pv_pvh_and_hvm_are_told_apart_by_the_emulation_flags() {
    use xenvcpu::hypervisor::GuestType;
    let sim = Arc::new(SimHost::lab_like());
    sim.add_domain(SimDomain { domid: 3, max_vcpus: 2, online: 2, hvm: true });
    sim.set_pvh(3, true);
    sim.set_pvh(1, true); // a PV domain stays PV
    let host = Host::with_shared_backend(sim).unwrap();
    let kinds: Vec<_> = host.domains().unwrap().iter().map(|d| (d.domid.get(), d.guest_type())).collect();
    assert_eq!(kinds, [(0, GuestType::Pv), (1, GuestType::Pv), (2, GuestType::Hvm), (3, GuestType::Pvh)]);
    let pvh = host.domain_info(DomId(3)).unwrap();
    assert!(pvh.flags.hvm, "Xen reports PVH as an HVM container");
    assert_eq!(pvh.emulation_flags, xen_sys::XEN_X86_EMU_LAPIC);
}

/// `pin_each` checks a map once for a run of items that share it, but every vCPU, and a
/// later item's own map in full: a bad one anywhere refuses the whole request before any
/// change.
#[test]
fn pin_each_checks_every_vcpu_and_every_distinct_map_before_writing() {
    let f = sim_fixture();
    let sim = f.sim.as_ref().unwrap();
    let dom0 = f.host.domain(DomId(0)).unwrap();
    let (good, empty, beyond): (CpuMap, CpuMap, CpuMap) =
        ("1".parse().unwrap(), CpuMap::new(), "0,64".parse().unwrap());
    let shared = AffinityRequest::hard(&good);
    let before = sim.snapshot();
    let err = dom0.pin_each(&[(VcpuId(0), shared), (VcpuId(1), shared), (VcpuId(9), shared)]).unwrap_err();
    assert!(matches!(err, Error::VcpuOutOfRange { vcpu: VcpuId(9), .. }), "{err}");
    let err = dom0
        .pin_each(&[(VcpuId(0), shared), (VcpuId(1), shared), (VcpuId(2), AffinityRequest::hard(&empty))])
        .unwrap_err();
    assert!(matches!(err, Error::EmptyMap { vcpu: VcpuId(2), .. }), "{err}");
    let err = dom0
        .pin_each(&[(VcpuId(0), shared), (VcpuId(1), AffinityRequest::hard(&beyond)), (VcpuId(2), shared)])
        .unwrap_err();
    assert!(matches!(err, Error::CpusBeyondHost { .. }), "{err}");
    assert_eq!(sim.snapshot(), before, "nothing was written");
}

/// `pin_each` with a different request per vCPU: each vCPU gets its own maps (hard, soft or
/// both, and maps that come back after another), and the effective maps it returns are
/// what Xen holds after. A later distinct hard map with no CPU of the pool refuses the
/// whole request before any change, even after a run of good ones.
#[test]
fn pin_each_gives_each_vcpu_its_own_maps_and_checks_each_distinct_map_against_the_pool() {
    let config = SimConfig { offline: "3".parse().unwrap(), ..SimConfig::default() };
    let sim = Arc::new(SimHost::new(config));
    sim.add_domain(SimDomain { domid: 0, max_vcpus: 4, online: 4, hvm: false });
    let host = Host::with_shared_backend(sim.clone()).unwrap();
    let dom0 = host.domain(DomId(0)).unwrap();
    let m = |s: &str| -> CpuMap { s.parse().unwrap() };
    let (a, b, c, offline) = (m("0-1"), m("2-3"), m("1"), m("3"));
    let items = [
        (VcpuId(0), AffinityRequest::hard(&a)),
        (VcpuId(1), AffinityRequest::hard(&b)),
        (VcpuId(2), AffinityRequest::soft(&c)),
        (VcpuId(3), AffinityRequest::hard(&a)),
    ];
    let effective = dom0.pin_each(&items).unwrap();
    let got: Vec<(u32, Option<String>, Option<String>)> = effective
        .iter()
        .map(|(v, e)| (v.get(), e.hard.as_ref().map(CpuMap::to_string), e.soft.as_ref().map(CpuMap::to_string)))
        .collect();
    let s = |x: &str| Some(x.to_string());
    // CPU 3 is offline: Xen drops it from vCPU 1's effective hard map.
    assert_eq!(got, [(0, s("0-1"), None), (1, s("2"), None), (2, None, s("1")), (3, s("0-1"), None)]);
    let now: Vec<(String, String)> =
        dom0.vcpus().unwrap().iter().map(|v| (v.hard.to_string(), v.soft.to_string())).collect();
    let all = "0-3".to_string();
    assert_eq!(
        now,
        [("0-1".into(), all.clone()), ("2-3".into(), all.clone()), (all.clone(), "1".into()), ("0-1".into(), all)],
        "Xen keeps the maps as set"
    );

    let before = sim.snapshot();
    let err = dom0
        .pin_each(&[
            (VcpuId(0), AffinityRequest::hard(&a)),
            (VcpuId(1), AffinityRequest::hard(&a)),
            (VcpuId(2), AffinityRequest::hard(&offline)),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::NoUsableCpu { vcpu: VcpuId(2), pool: 0, .. }), "{err}");
    assert_eq!(sim.snapshot(), before, "nothing was written");
}
