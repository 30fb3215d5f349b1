//! Cpupools on the simulated lab-shaped host: `Host::pools`, `Domain::pool`, affinity
//! checked against the domain's pool (refused before any change by `pin`, named with the
//! pool and its CPUs), `Effective::dropped_why`, the simulator's pool rules (each refusal
//! with Xen's errno), and the online CPUs as the free CPUs and every pool's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use xenvcpu::cpumap::CpuMap;
use xenvcpu::hypervisor::{
    CpuTopology, DomainInfo, Errno, FeaturesetKind, Hypervisor, PhysInfo, PolicyCallError, RawCpuPolicy, RawPoolInfo,
    RawVcpuInfo, SimConfig, SimDomain, SimHost,
};
use xenvcpu::placement::{Placement, PlacementError};
use xenvcpu::sim::SimPlatform;
use xenvcpu::{cli, AffinityRequest, DomId, Error, Host, Op, Scheduler, VcpuId, VcpuSet};

fn cpus(list: &str) -> CpuMap {
    list.parse().unwrap()
}

fn args(line: &str) -> Vec<String> {
    std::iter::once("xenvcpu").chain(line.split_whitespace()).map(String::from).collect()
}

/// The lab's host with `pool1` (credit2, CPU 3) and `labguest` (domain 1) moved into it.
fn pooled() -> (SimPlatform, u32) {
    let sim = SimPlatform::lab_like().unwrap();
    let id = sim.create_pool("pool1", Scheduler::Credit2, &cpus("3")).unwrap();
    sim.hv.move_domain(1, id).unwrap();
    (sim, id)
}

#[test]
fn a_fresh_host_has_pool_0_with_every_cpu_and_every_domain() {
    let sim = SimPlatform::lab_like().unwrap();
    let pools = sim.host.pools().unwrap();
    assert_eq!(pools.len(), 1);
    let p = &pools[0];
    assert_eq!((p.id, p.scheduler, &p.cpus, p.domains), (0, Scheduler::Credit2, &cpus("0-3"), 3));
    assert_eq!(sim.host.pool_name(0).unwrap().as_deref(), Some("Pool-0"));
    assert_eq!(sim.host.domain(DomId(1)).unwrap().pool().unwrap(), *p);
    assert!(matches!(sim.host.pool(1), Err(Error::NoSuchPool { pool: 1 })));
}

#[test]
fn a_handle_on_a_destroyed_domain_is_domain_gone_for_its_pool_and_a_pin() {
    let sim = SimPlatform::lab_like().unwrap();
    let dom = sim.host.domain(DomId(2)).unwrap();
    sim.hv.remove_domain(2);
    assert!(matches!(dom.pool(), Err(Error::DomainGone { domid: DomId(2), .. })));
    let err = dom.pin(&VcpuSet::all(2), &AffinityRequest::hard(&cpus("1"))).unwrap_err();
    assert!(matches!(err, Error::DomainGone { domid: DomId(2), .. }), "{err}");
}

#[test]
fn a_second_pool_takes_its_cpu_from_pool_0_and_a_migrated_domain_is_in_it() {
    let (sim, id) = pooled();
    let pools = sim.host.pools().unwrap();
    let summary: Vec<_> = pools.iter().map(|p| (p.id, p.cpus.to_string(), p.domains)).collect();
    assert_eq!(summary, [(0, "0-2".to_string(), 2), (id, "3".to_string(), 1)]);
    assert_eq!(sim.host.pool_name(id).unwrap().as_deref(), Some("pool1"));
    let dom = sim.host.domain(DomId(1)).unwrap();
    assert_eq!(dom.pool().unwrap().id, id);
    assert_eq!(dom.refresh().unwrap().cpupool, id);
    // The move reset every vCPU's maps to every CPU (xl vcpu-list then prints `all`).
    assert!(dom.vcpus().unwrap().iter().all(|v| v.hard == cpus("0-3") && v.soft == cpus("0-3")));
}

#[test]
fn pinning_outside_the_pool_is_refused_before_any_change_naming_the_pool() {
    let (sim, id) = pooled();
    let dom = sim.host.domain(DomId(1)).unwrap();
    let before = sim.hv.snapshot();
    let outside = cpus("0-1");
    let err = dom.pin(&VcpuSet::all(4), &AffinityRequest::hard(&outside)).unwrap_err();
    match &err {
        Error::NoUsableCpu { domid, vcpu, map, pool, pool_name, online, errno } => {
            assert_eq!((*domid, *vcpu, map, *pool), (DomId(1), VcpuId(0), &outside, id));
            assert_eq!((pool_name.as_deref(), online), (Some("pool1"), &cpus("3")));
            assert_eq!(errno.raw(), libc::EINVAL);
        }
        e => panic!("{e}"),
    }
    let text = err.to_string();
    assert!(text.contains("cpupool 1 (pool1), whose CPUs are 3"), "{text}");
    assert_eq!(sim.hv.snapshot(), before, "nothing changed");
    // The hot path (one vCPU) reports the same once Xen refused.
    let err = dom.set_affinity(VcpuId(1), &AffinityRequest::hard(&outside)).unwrap_err();
    assert!(matches!(err, Error::NoUsableCpu { pool: 1, .. }), "{err}");
    assert_eq!(sim.hv.snapshot(), before, "nothing changed");
}

#[test]
fn pinning_inside_the_pool_works_and_dropped_cpus_say_why() {
    let (sim, _) = pooled();
    let dom = sim.host.domain(DomId(1)).unwrap();
    let want = cpus("2-3");
    let req = AffinityRequest::both(&want, &want);
    let done = dom.pin(&VcpuSet::all(2), &req).unwrap();
    for (_, eff) in &done {
        assert_eq!((eff.hard.as_ref(), eff.soft.as_ref()), (Some(&cpus("3")), Some(&cpus("3"))));
        let pool = dom.pool().unwrap();
        let (hard, soft) = eff.dropped_why(&req, &pool.cpus, &sim.host.info().unwrap().online_cpus());
        assert_eq!((hard.outside_pool, hard.offline, hard.outside_hard), (cpus("2"), CpuMap::new(), CpuMap::new()));
        assert_eq!(soft.outside_pool, cpus("2"));
    }
    assert_eq!(dom.vcpu_info(VcpuId(0)).unwrap().hard, want, "Xen keeps the map as set");
    // In Pool-0, an offline CPU is told from one outside the pool.
    let dom0 = sim.host.domain(DomId(0)).unwrap();
    sim.hv.set_cpu_online(2, false).unwrap();
    let map = cpus("1-3");
    let req = AffinityRequest::hard(&map);
    let eff = dom0.set_affinity(VcpuId(1), &req).unwrap();
    assert_eq!(eff.hard, Some(cpus("1")));
    let pool0 = dom0.pool().unwrap();
    assert_eq!(pool0.cpus, cpus("0-1"), "the offline CPU left Pool-0");
    let (hard, _) = eff.dropped_why(&req, &pool0.cpus, &sim.host.info().unwrap().online_cpus());
    assert_eq!((hard.outside_pool, hard.offline), (cpus("3"), cpus("2")));
    sim.hv.set_cpu_online(2, true).unwrap();
    assert_eq!(dom0.pool().unwrap().cpus, cpus("0-2"), "back in Pool-0");
}

#[test]
fn the_simulator_follows_xens_pool_rules() {
    let (sim, id) = pooled();
    let hv = &sim.hv;
    assert_eq!(err(hv.pool_remove_cpu(id, 3)), libc::EBUSY, "the last CPU of a pool with a domain");
    assert_eq!(err(hv.destroy_pool(id)), libc::EBUSY, "a pool with a domain");
    assert_eq!(err(hv.set_cpu_online(3, false)), libc::ENODEV, "a CPU of another pool stays online");
    assert_eq!(err(hv.pool_add_cpu(id, 2)), libc::ENODEV, "CPU 2 is in Pool-0");
    assert_eq!(err(hv.move_domain(0, id)), libc::EPERM, "not the calling domain");
    assert_eq!(err(hv.move_domain(1, 7)), libc::ENOENT);
    let empty = hv.create_pool(xen_sys::XEN_SCHEDULER_CREDIT).unwrap();
    assert_eq!(err(hv.move_domain(1, empty)), libc::ENOENT, "a pool without CPUs");
    hv.destroy_pool(empty).unwrap();
    assert!(sim.destroy_pool(id).is_err(), "labguest is still in it");
    hv.move_domain(1, 0).unwrap();
    sim.destroy_pool(id).unwrap();
    let pools = sim.host.pools().unwrap();
    assert_eq!(pools.iter().map(|p| (p.id, p.cpus.to_string())).collect::<Vec<_>>(), [(0, "0-3".to_string())]);
    assert_eq!(sim.host.pool_name(id).unwrap(), None);
}

// ---- Each refusal of the simulated pool calls, with Xen's errno ------------------------
//
// On the bare simulated host of the lab's shape (no store, no guest agents): dom0 (0),
// labguest (1, PV, 4 vCPUs) and hvmguest (2) in Pool-0; `pool1` (credit2) gets CPU 3 and
// labguest. Every refusal changes nothing.

/// The lab's host with pool 1 (credit2, CPU 3) holding domain 1.
fn bare_pooled() -> SimHost {
    let hv = SimHost::lab_like();
    assert_eq!(hv.create_pool(xen_sys::XEN_SCHEDULER_CREDIT2), Ok(1));
    hv.pool_remove_cpu(0, 3).unwrap();
    hv.pool_add_cpu(1, 3).unwrap();
    hv.move_domain(1, 1).unwrap();
    hv
}

fn err(r: Result<impl std::fmt::Debug, Errno>) -> i32 {
    r.unwrap_err().raw()
}

/// `(pool id, its CPUs)` of every pool, and the free CPUs.
fn layout(hv: &SimHost) -> (Vec<(u32, String)>, String) {
    let mut pools = Vec::new();
    let mut next = 0;
    while let Some(p) = hv.cpupool_info(next).unwrap() {
        next = p.id + 1;
        pools.push((p.id, p.cpus.to_string()));
    }
    (pools, hv.cpupool_free_cpus().unwrap().to_string())
}

/// The CPU a vCPU runs on.
fn cpu_of(hv: &SimHost, domid: u32, vcpu: u32) -> u32 {
    hv.vcpu_info(domid, vcpu).unwrap().cpu
}

/// A vCPU's (hard, soft) maps as Xen reports them.
fn maps(hv: &SimHost, domid: u32, vcpu: u32) -> (CpuMap, CpuMap) {
    let size = hv.cpumap_size();
    let (mut hard, mut soft) = (vec![0u8; size], vec![0u8; size]);
    hv.get_affinity(domid, vcpu, Some(&mut hard), Some(&mut soft)).unwrap();
    (CpuMap::from_libvirt_bytes(&hard), CpuMap::from_libvirt_bytes(&soft))
}

fn set_maps(hv: &SimHost, domid: u32, vcpu: u32, hard: &str, soft: &str) {
    let size = hv.cpumap_size();
    let (mut h, mut s) = (vec![0u8; size], vec![0u8; size]);
    for (list, buf) in [(hard, &mut h), (soft, &mut s)] {
        for cpu in cpus(list).iter() {
            buf[cpu / 8] |= 1 << (cpu % 8);
        }
    }
    hv.set_affinity(domid, vcpu, Some(&mut h), Some(&mut s), false).unwrap();
}

#[test]
fn create_pool_refusals_are_enospc_eexist_then_enoent_for_an_unknown_scheduler() {
    let hv = bare_pooled();
    let before = hv.snapshot();
    assert_eq!(err(hv.create_pool(4)), libc::ENOENT, "4 was SEDF, removed");
    assert_eq!(err(hv.create_pool(99)), libc::ENOENT);
    assert_eq!(err(hv.create_pool_with_id(1, xen_sys::XEN_SCHEDULER_CREDIT)), libc::EEXIST);
    assert_eq!(err(hv.create_pool_with_id(0, 99)), libc::EEXIST, "the id is checked before the scheduler");
    assert_eq!(hv.snapshot(), before, "nothing changed");
    assert_eq!(hv.create_pool_with_id(5, xen_sys::XEN_SCHEDULER_NULL), Ok(5));
    assert_eq!(hv.create_pool(xen_sys::XEN_SCHEDULER_RTDS), Ok(6), "any id: the highest + 1");
    // At most twice as many pools as CPU ids (4 here): 0, 1, 5, 6 and four more.
    for _ in 0..4 {
        hv.create_pool(xen_sys::XEN_SCHEDULER_CREDIT).unwrap();
    }
    let full = hv.snapshot();
    assert_eq!(err(hv.create_pool(xen_sys::XEN_SCHEDULER_CREDIT)), libc::ENOSPC);
    assert_eq!(err(hv.create_pool_with_id(1, 99)), libc::ENOSPC, "checked first");
    assert_eq!(hv.snapshot(), full);
}

#[test]
fn destroy_pool_refusals_are_enoent_and_ebusy_with_cpus_or_domains() {
    let hv = bare_pooled();
    let before = hv.snapshot();
    assert_eq!(err(hv.destroy_pool(9)), libc::ENOENT);
    assert_eq!(err(hv.destroy_pool(0)), libc::EBUSY, "Pool-0 always has CPU 0");
    assert_eq!(err(hv.destroy_pool(1)), libc::EBUSY, "a domain and a CPU");
    assert_eq!(hv.snapshot(), before, "nothing changed");
    // CPUs but no domain.
    hv.move_domain(1, 0).unwrap();
    assert_eq!(err(hv.destroy_pool(1)), libc::EBUSY, "a CPU");
    // A domain but no CPU cannot be made: the last CPU stays while a live domain is in the
    // pool, and a dying one moves to Pool-0 with it. Without both, it goes.
    hv.pool_remove_cpu(1, 3).unwrap();
    hv.destroy_pool(1).unwrap();
    assert_eq!(err(hv.destroy_pool(1)), libc::ENOENT, "gone");
    assert_eq!(layout(&hv), (vec![(0, "0-2".to_string())], "3".to_string()));
}

#[test]
fn pool_remove_cpu_refusals_in_xens_order() {
    let hv = bare_pooled();
    let before = hv.snapshot();
    assert_eq!(err(hv.pool_remove_cpu(9, 99)), libc::ENOENT, "the pool first");
    assert_eq!(err(hv.pool_remove_cpu(1, 4)), libc::EINVAL, "past the host");
    assert_eq!(err(hv.pool_remove_cpu(1, u32::MAX - 1)), libc::EINVAL, "past the host");
    assert_eq!(err(hv.pool_remove_cpu(0, 0)), libc::EINVAL, "CPU 0 never leaves Pool-0");
    assert_eq!(err(hv.pool_remove_cpu(1, 0)), libc::EADDRNOTAVAIL, "CPU 0 is not in pool 1");
    assert_eq!(err(hv.pool_remove_cpu(1, 1)), libc::EADDRNOTAVAIL, "CPU 1 is in Pool-0");
    assert_eq!(err(hv.pool_remove_cpu(0, 3)), libc::EADDRNOTAVAIL, "CPU 3 is in pool 1");
    assert_eq!(err(hv.pool_remove_cpu(1, 3)), libc::EBUSY, "the last CPU of a pool with a live domain");
    assert_eq!(hv.snapshot(), before, "nothing changed");
    hv.set_cpu_online(2, false).unwrap();
    let offline = hv.snapshot();
    assert_eq!(err(hv.pool_remove_cpu(0, 2)), libc::EINVAL, "an offline CPU");
    assert_eq!(err(hv.pool_remove_cpu(1, 2)), libc::EINVAL, "offline is checked before membership");
    assert_eq!(hv.snapshot(), offline);
    hv.set_cpu_online(2, true).unwrap();

    // A vCPU temporarily pinned (pin override) to the CPU: EADDRINUSE; to another: fine.
    let on1 = (0..4).find(|&v| cpu_of(&hv, 0, v) == 1).expect("a dom0 vCPU on CPU 1");
    hv.set_pin_override(0, on1, true);
    let pinned = hv.snapshot();
    assert_eq!(err(hv.pool_remove_cpu(0, 1)), libc::EADDRINUSE);
    assert_eq!(hv.snapshot(), pinned, "nothing changed");
    hv.pool_remove_cpu(0, 2).unwrap();
    assert_eq!(layout(&hv), (vec![(0, "0-1".to_string()), (1, "3".to_string())], "2".to_string()));
    hv.set_pin_override(0, on1, false);

    // The last CPU of a pool whose domains are all dying: they move to Pool-0.
    hv.set_dying(1);
    hv.pool_remove_cpu(1, 3).unwrap();
    assert_eq!(hv.domain_info(1).unwrap().unwrap().cpupool, 0, "the dying domain moved to Pool-0");
    assert_eq!(layout(&hv), (vec![(0, "0-1".to_string()), (1, String::new())], "2-3".to_string()));
}

#[test]
fn pool_add_cpu_refusals_are_enoent_einval_then_enodev() {
    let hv = bare_pooled();
    hv.pool_remove_cpu(0, 2).unwrap();
    let before = hv.snapshot();
    assert_eq!(err(hv.pool_add_cpu(9, 99)), libc::ENOENT, "the pool first");
    assert_eq!(err(hv.pool_add_cpu(1, 4)), libc::EINVAL, "past the host");
    assert_eq!(err(hv.pool_add_cpu(1, 1)), libc::ENODEV, "in Pool-0");
    assert_eq!(err(hv.pool_add_cpu(1, 3)), libc::ENODEV, "already in this pool");
    assert_eq!(hv.snapshot(), before, "nothing changed");
    hv.set_cpu_online(2, false).unwrap();
    assert_eq!(err(hv.pool_add_cpu(1, 2)), libc::ENODEV, "offline");
    hv.set_cpu_online(2, true).unwrap();
    assert_eq!(layout(&hv).1, "", "back online, CPU 2 joined Pool-0, not the free CPUs");
    hv.pool_remove_cpu(0, 2).unwrap();
    hv.pool_add_cpu(1, 2).unwrap();
    assert_eq!(layout(&hv), (vec![(0, "0-1".to_string()), (1, "2-3".to_string())], String::new()));
}

#[test]
fn move_domain_refusals_are_esrch_eperm_then_enoent_and_its_own_pool_is_a_no_op() {
    let hv = bare_pooled();
    set_maps(&hv, 1, 0, "3", "3");
    let before = hv.snapshot();
    assert_eq!(err(hv.move_domain(9, 99)), libc::ESRCH, "the domain first");
    assert_eq!(err(hv.move_domain(0, 1)), libc::EPERM, "the calling domain");
    assert_eq!(err(hv.move_domain(0, 0)), libc::EPERM, "even to its own pool");
    assert_eq!(err(hv.move_domain(1, 7)), libc::ENOENT, "no such pool");
    let empty = hv.create_pool(xen_sys::XEN_SCHEDULER_CREDIT).unwrap();
    assert_eq!(err(hv.move_domain(1, empty)), libc::ENOENT, "a pool without CPUs");
    hv.destroy_pool(empty).unwrap();
    assert_eq!(hv.move_domain(1, 1), Ok(()), "its own pool");
    assert_eq!(hv.snapshot(), before, "nothing changed, the maps not reset");
    hv.set_pin_override(1, 0, true);
    assert_eq!(err(hv.move_domain(1, 0)), libc::EBUSY, "a vCPU under a pin override");
    hv.set_pin_override(1, 0, false);
    assert_eq!(hv.snapshot(), before);
    hv.move_domain(1, 0).unwrap();
    assert_eq!(maps(&hv, 1, 0), (CpuMap::all(4), CpuMap::all(4)), "hard and soft reset");
    assert!((0..4).all(|v| cpu_of(&hv, 1, v) <= 2), "its vCPUs run in Pool-0");
}

#[test]
fn cpu_offline_refusals_and_which_cpus_may_go() {
    let hv = bare_pooled();
    let before = hv.snapshot();
    assert_eq!(err(hv.set_cpu_online(3, false)), libc::ENODEV, "a CPU of another pool");
    hv.set_pin_override(1, 0, true);
    assert_eq!(err(hv.set_cpu_online(3, false)), libc::EADDRINUSE, "a pin override in the CPU's pool, checked first");
    hv.set_cpu_online(2, false).expect("a pin override in another pool does not matter");
    hv.set_cpu_online(2, true).unwrap();
    hv.set_pin_override(1, 0, false);
    hv.set_pin_override(0, 1, true);
    assert_eq!(err(hv.set_cpu_online(2, false)), libc::EADDRINUSE, "a pin override in Pool-0");
    hv.set_pin_override(0, 1, false);
    assert_eq!(hv.snapshot(), before, "nothing changed");
    // A free CPU may go, and comes back into Pool-0.
    hv.pool_remove_cpu(0, 2).unwrap();
    hv.set_cpu_online(2, false).unwrap();
    assert_eq!(layout(&hv), (vec![(0, "0-1".to_string()), (1, "3".to_string())], String::new()));
    hv.set_cpu_online(2, true).unwrap();
    assert_eq!(layout(&hv), (vec![(0, "0-2".to_string()), (1, "3".to_string())], String::new()));
}

/// A CPU leaving a pool (offline, or taken out) keeps a vCPU's hard map as set, the CPU
/// included, while the map has another CPU of the pool; a map left with none is broken:
/// hard := every CPU, soft kept. Domains of other pools are not touched.
#[test]
fn a_cpu_leaving_a_pool_breaks_only_hard_maps_left_without_a_cpu_of_the_pool() {
    // Offline, in Pool-0.
    let hv = SimHost::lab_like();
    set_maps(&hv, 0, 2, "3", "3");
    set_maps(&hv, 0, 3, "2-3", "3");
    hv.set_cpu_online(3, false).unwrap();
    assert_eq!(maps(&hv, 0, 2), (CpuMap::all(4), cpus("3")), "broken: hard := all, soft kept");
    assert_eq!(maps(&hv, 0, 3), (cpus("2-3"), cpus("3")), "kept as set, the offline CPU included");
    assert!((0..4).all(|v| cpu_of(&hv, 0, v) != 3), "no vCPU on the offline CPU");
    hv.set_cpu_online(3, true).unwrap();
    assert_eq!(maps(&hv, 0, 2).0, CpuMap::all(4), "not restored");

    // Taken out of pool 1 (CPUs 2-3), which holds domain 1.
    let hv = SimHost::lab_like();
    let id = hv.create_pool(xen_sys::XEN_SCHEDULER_CREDIT2).unwrap();
    for cpu in [2, 3] {
        hv.pool_remove_cpu(0, cpu).unwrap();
        hv.pool_add_cpu(id, cpu).unwrap();
    }
    hv.move_domain(1, id).unwrap();
    set_maps(&hv, 1, 0, "3", "3");
    set_maps(&hv, 1, 1, "2-3", "2-3");
    set_maps(&hv, 0, 0, "1,3", "1,3");
    hv.pool_remove_cpu(id, 3).unwrap();
    assert_eq!(maps(&hv, 1, 0), (CpuMap::all(4), cpus("3")), "broken");
    assert_eq!(maps(&hv, 1, 1), (cpus("2-3"), cpus("2-3")), "kept");
    assert_eq!(maps(&hv, 0, 0), (cpus("1,3"), cpus("1,3")), "dom0 is in Pool-0: untouched");
    assert!((0..4).all(|v| cpu_of(&hv, 1, v) == 2), "domain 1 runs on its pool's CPU");
}

#[test]
fn the_cli_refuses_a_pin_outside_the_pool_and_accepts_one_inside() {
    let (sim, _) = pooled();
    let before = sim.hv.snapshot();
    assert_eq!(cli::run(args("pin labguest all 0-1"), Some(&sim)), cli::EXIT_FAILED, "no usable CPU: 1, as documented");
    assert_eq!(sim.hv.snapshot(), before);
    assert_eq!(cli::run(args("pin labguest all 3"), Some(&sim)), cli::EXIT_OK);
    assert_eq!(cli::run(args("pools"), Some(&sim)), cli::EXIT_OK);
    assert_eq!(cli::run(args("pools --json"), Some(&sim)), cli::EXIT_OK);
    assert_eq!(cli::run(args("list"), Some(&sim)), cli::EXIT_OK);
}

/// `cpupool_free_cpus` (libxenctrl's `xc_cpupool_freeinfo`): the online CPUs in no pool.
/// With every pool's CPUs they are the online CPUs; an offline CPU is in neither.
#[test]
fn free_cpus_are_the_online_cpus_in_no_pool() {
    let sim = SimPlatform::lab_like().unwrap();
    let hv = &*sim.hv;
    assert_eq!(hv.cpupool_free_cpus().unwrap(), CpuMap::new(), "every CPU is in Pool-0");
    hv.pool_remove_cpu(0, 3).unwrap();
    hv.pool_remove_cpu(0, 2).unwrap();
    assert_eq!(hv.cpupool_free_cpus().unwrap(), cpus("2-3"));
    hv.set_cpu_online(2, false).unwrap();
    assert_eq!(hv.cpupool_free_cpus().unwrap(), cpus("3"), "an offline CPU is not free");
    let id = hv.create_pool(xen_sys::XEN_SCHEDULER_CREDIT2).unwrap();
    hv.pool_add_cpu(id, 3).unwrap();
    assert_eq!(hv.cpupool_free_cpus().unwrap(), CpuMap::new());
    hv.set_cpu_online(2, true).unwrap();
    assert_eq!(hv.cpupool_free_cpus().unwrap(), CpuMap::new(), "back online in Pool-0");
    let pools: Vec<_> = sim.host.pools().unwrap().iter().map(|p| (p.id, p.cpus.to_string())).collect();
    assert_eq!(pools, [(0, "0-2".to_string()), (id, "3".to_string())]);
}

// ---- The online CPUs come from the cpupools, not from core ids --------------------------

/// On a host that parks offline CPUs (Intel with machine-check support, Xen's default
/// there), the topology keeps an offline CPU's core and socket. The online CPUs still
/// leave it out, and so do every node's CPUs and the socket count, because they come from
/// the cpupools: an online CPU is free or in a pool, an offline one in neither.
#[test]
fn a_parked_offline_cpu_keeps_its_core_but_is_not_online() {
    let config =
        SimConfig { nr_cpus: 8, cores_per_socket: 4, nr_nodes: 2, park_offline_cpus: true, ..SimConfig::default() };
    let hv = Arc::new(SimHost::new(config));
    hv.add_domain(SimDomain { domid: 0, max_vcpus: 2, online: 2, hvm: false });
    let host = Host::with_shared_backend(hv.clone()).unwrap();
    for cpu in [3, 4, 5, 6, 7] {
        hv.set_cpu_online(cpu, false).unwrap();
    }
    let info = host.info().unwrap();
    assert_eq!(info.cpus[3], CpuTopology { core: Some(3), socket: Some(0), node: Some(0) }, "parked: still a core");
    assert!(info.cpus[7].core.is_some() && info.cpus[7].socket == Some(1));
    assert!(info.cpus.iter().all(CpuTopology::is_online), "every CPU has a core id: no online test here");
    assert_eq!(info.phys.nr_cpus, 3);
    assert_eq!(info.online_cpus(), cpus("0-2"), "from the pools");
    assert_eq!(info.online, cpus("0-2"));
    assert_eq!(host.online_cpus().unwrap(), cpus("0-2"));
    assert_eq!(info.node_cpus(), [cpus("0-2"), CpuMap::new()], "node 1's CPUs are all offline");
    assert_eq!(info.nr_sockets(), 1, "socket 1 has no online CPU");
    let nodes = info.node_cpus();
    assert_eq!(host.cpu_list_context(&nodes).parse("node:0").unwrap(), cpus("0-2"));
    // A placement on the parked CPUs alone has no online CPU.
    let placement = Placement::builder(2).cpuset("3-7").build().unwrap();
    assert!(matches!(placement.resolve(&info, None), Err(PlacementError::NoOnlineCpu { .. })));
    // A free CPU (in no pool) is online.
    hv.pool_remove_cpu(0, 2).unwrap();
    assert_eq!(host.info().unwrap().online_cpus(), cpus("0-2"), "CPU 2 is free, still online");
    // Without parking, the topology and the pools agree.
    let plain = Arc::new(SimHost::new(SimConfig { nr_cpus: 4, ..SimConfig::default() }));
    let host = Host::with_shared_backend(plain.clone()).unwrap();
    plain.set_cpu_online(3, false).unwrap();
    let info = host.info().unwrap();
    assert_eq!((info.cpus[3].core, info.online_cpus()), (None, cpus("0-2")));
}

/// The cpupool reads are part of `Host::info`: a refusal is the typed error naming the
/// call, never an online map guessed from the topology.
#[test]
fn host_info_fails_when_a_cpupool_read_fails() {
    let hv = Arc::new(SimHost::lab_like());
    let host = Host::with_shared_backend(hv.clone()).unwrap();
    // Call 1 is xc_physinfo, 2 xc_cpupool_freeinfo, 3 xc_cpupool_getinfo(0).
    hv.fail_nth_call(2, libc::EPERM);
    let err = host.info().unwrap_err();
    assert!(matches!(err, Error::Denied { op: Op::CpupoolFreeInfo, .. }), "{err}");
    assert!(err.to_string().contains("xc_cpupool_freeinfo"), "{err}");
    hv.fail_nth_call(3, libc::ENOMEM);
    let err = host.info().unwrap_err();
    assert!(matches!(err, Error::Hypercall { op: Op::CpupoolInfo, .. }), "{err}");
    assert_eq!(host.info().unwrap().online_cpus(), cpus("0-3"));
}

/// A backend over the simulator in which CPU 3 leaves Pool-0 (becoming free) between the
/// read of the free CPUs and the read of the pools, on each of the first `races` reads:
/// the union of the two misses it, as a real CPU moving at that moment would be missed.
#[derive(Debug)]
struct Racing {
    inner: Arc<SimHost>,
    races: AtomicUsize,
    physinfo_calls: AtomicUsize,
}

impl Hypervisor for Racing {
    fn cpumap_size(&self) -> usize {
        self.inner.cpumap_size()
    }
    fn physinfo(&self) -> Result<PhysInfo, Errno> {
        self.physinfo_calls.fetch_add(1, Ordering::SeqCst);
        self.inner.physinfo()
    }
    fn cpu_topology(&self, out: &mut Vec<CpuTopology>) -> Result<(), Errno> {
        self.inner.cpu_topology(out)
    }
    fn domain_list(&self, first: u32, max: u32, out: &mut Vec<DomainInfo>) -> Result<(), Errno> {
        self.inner.domain_list(first, max, out)
    }
    fn domain_info(&self, domid: u32) -> Result<Option<DomainInfo>, Errno> {
        self.inner.domain_info(domid)
    }
    fn vcpu_info(&self, domid: u32, vcpu: u32) -> Result<RawVcpuInfo, Errno> {
        self.inner.vcpu_info(domid, vcpu)
    }
    fn get_affinity(&self, d: u32, v: u32, h: Option<&mut [u8]>, s: Option<&mut [u8]>) -> Result<(), Errno> {
        self.inner.get_affinity(d, v, h, s)
    }
    fn set_affinity(
        &self,
        d: u32,
        v: u32,
        h: Option<&mut [u8]>,
        s: Option<&mut [u8]>,
        force: bool,
    ) -> Result<(), Errno> {
        self.inner.set_affinity(d, v, h, s, force)
    }
    fn set_max_vcpus(&self, domid: u32, max: u32) -> Result<(), Errno> {
        self.inner.set_max_vcpus(domid, max)
    }
    fn node_affinity(&self, domid: u32) -> Result<CpuMap, Errno> {
        self.inner.node_affinity(domid)
    }
    fn cpupool_info(&self, first: u32) -> Result<Option<RawPoolInfo>, Errno> {
        self.inner.cpupool_info(first)
    }
    fn cpupool_free_cpus(&self) -> Result<CpuMap, Errno> {
        if self.races.load(Ordering::SeqCst) == 0 {
            return self.inner.cpupool_free_cpus();
        }
        self.races.fetch_sub(1, Ordering::SeqCst);
        // CPU 3 is in Pool-0 when the free CPUs are read (back from an earlier race if need
        // be), and leaves Pool-0 right after, before the pools are read.
        if self.inner.cpupool_free_cpus()?.contains(3) {
            self.inner.pool_add_cpu(0, 3).unwrap();
        }
        let free = self.inner.cpupool_free_cpus();
        self.inner.pool_remove_cpu(0, 3).unwrap();
        free
    }
    fn cpu_featureset(&self, kind: FeaturesetKind) -> Result<Vec<u32>, PolicyCallError> {
        self.inner.cpu_featureset(kind)
    }
    fn system_cpu_policy(&self, kind: FeaturesetKind) -> Result<RawCpuPolicy, PolicyCallError> {
        self.inner.system_cpu_policy(kind)
    }
    fn domain_cpu_policy(&self, domid: u32) -> Result<RawCpuPolicy, PolicyCallError> {
        self.inner.domain_cpu_policy(domid)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// `Host::info` reads physinfo and the online map again when they disagree on the number
/// of online CPUs (a CPU moved between the reads), up to three times, and keeps the last
/// map if they never agree.
#[test]
fn host_info_reads_again_when_a_cpu_moved_between_the_pool_reads() {
    let racing = |races| {
        let backend = Arc::new(Racing {
            inner: Arc::new(SimHost::lab_like()),
            races: AtomicUsize::new(races),
            physinfo_calls: 0.into(),
        });
        let host = Host::with_shared_backend(backend.clone()).unwrap();
        let before = backend.physinfo_calls.load(Ordering::SeqCst);
        let online = host.info().unwrap().online;
        (online, backend.physinfo_calls.load(Ordering::SeqCst) - before)
    };
    assert_eq!(racing(0), (cpus("0-3"), 1), "no race: one read");
    assert_eq!(racing(1), (cpus("0-3"), 2), "CPU 3 missed once: read again");
    assert_eq!(racing(2), (cpus("0-3"), 3));
    assert_eq!(racing(5), (cpus("0-2"), 3), "never agreeing: three reads, the last map kept");
}
