//! Cpupools on the simulated lab-shaped host: `Host::pools`, `Domain::pool`, affinity
//! checked against the domain's pool (refused before any change by `pin`, named with the
//! pool and its CPUs), `Effective::dropped_why`, and the simulator's pool rules.

use xenvcpu::cpumap::CpuMap;
use xenvcpu::sim::SimPlatform;
use xenvcpu::{cli, AffinityRequest, DomId, Error, Scheduler, VcpuId, VcpuSet};

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
    let err = |r: Result<(), xenvcpu::hypervisor::Errno>| r.unwrap_err().raw();
    assert_eq!(err(hv.pool_remove_cpu(id, 3)), libc::EBUSY, "the last CPU of a pool with a domain");
    assert_eq!(err(hv.destroy_pool(id)), libc::EBUSY, "a pool with a domain");
    assert_eq!(err(hv.set_cpu_online(3, false)), libc::EBUSY, "a CPU of another pool stays online");
    assert_eq!(err(hv.pool_add_cpu(id, 2)), libc::EBUSY, "CPU 2 is in Pool-0");
    assert_eq!(err(hv.move_domain(0, id)), libc::EPERM, "not the calling domain");
    assert_eq!(err(hv.move_domain(1, 7)), libc::ENOENT);
    let empty = hv.create_pool(xen_sys::XEN_SCHEDULER_CREDIT).unwrap();
    assert_eq!(err(hv.move_domain(1, empty)), libc::EBUSY, "a pool without CPUs");
    hv.destroy_pool(empty).unwrap();
    assert!(sim.destroy_pool(id).is_err(), "labguest is still in it");
    hv.move_domain(1, 0).unwrap();
    sim.destroy_pool(id).unwrap();
    let pools = sim.host.pools().unwrap();
    assert_eq!(pools.iter().map(|p| (p.id, p.cpus.to_string())).collect::<Vec<_>>(), [(0, "0-3".to_string())]);
    assert_eq!(sim.host.pool_name(id).unwrap(), None);
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
    use xenvcpu::hypervisor::Hypervisor;
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
