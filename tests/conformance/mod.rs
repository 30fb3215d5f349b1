//! The conformance suite: behaviour of the vCPU API, written once and run against both
//! backends — the simulated host on every `cargo test` (tests/conformance_sim.rs) and real
//! Xen in the lab (tests/lab_conformance.rs). Where they disagree, Xen is right.
//!
//! Every test that changes state saves, changes, reads back, asserts and restores.

use std::sync::Arc;

use xenvcpu::cpumap::CpuMap;
use xenvcpu::hypervisor::{AffinityCall, BatchStop, CpuTopology, SimHost, XenCtrlBackend};
use xenvcpu::{AffinityRequest, DomId, Error, Host, HostInfo, VcpuId, VcpuSet, VcpuState};

#[path = "../support/counting.rs"]
mod counting;
pub use counting::Counting;

/// What a test runs against.
pub struct Fixture {
    /// The host.
    pub host: Host,
    /// dom0's id (0) and vCPU count.
    pub dom0: DomId,
    /// dom0's vCPUs.
    pub dom0_vcpus: u32,
    /// CPUs the host has (`max_cpu_id + 1`), all online.
    pub nr_cpus: usize,
    /// A PV guest (`maxvcpus = 4`), if there is one.
    pub guest: Option<DomId>,
    /// The simulated host behind `host`, for simulator-only checks.
    #[allow(dead_code)] // read by conformance_sim.rs only
    pub sim: Option<Arc<SimHost>>,
    /// The call counter every call of `host` goes through (on both backends).
    pub counter: Arc<Counting>,
}

/// The simulated fixture: shaped like the lab (4 CPUs, dom0 with 4 vCPUs, a guest).
#[allow(dead_code)] // lab_conformance.rs uses the lab fixture only
pub fn sim_fixture() -> Fixture {
    let sim = Arc::new(SimHost::lab_like());
    let counter = Counting::new(sim.clone());
    let host = Host::with_shared_backend(counter.clone()).expect("sim host");
    Fixture { host, dom0: DomId(0), dom0_vcpus: 4, nr_cpus: 4, guest: Some(DomId(1)), sim: Some(sim), counter }
}

impl Fixture {
    /// Takes host CPU `cpu` offline (`online == false`) or brings it back: `xen-hptool
    /// cpu-offline|cpu-online` in the lab (`XEN_SYSCTL_cpu_hotplug`), the model's
    /// [`SimHost::set_cpu_online`] on the simulator. `Err` says what was refused.
    pub fn set_host_cpu_online(&self, cpu: usize, online: bool) -> Result<(), String> {
        match &self.sim {
            Some(sim) => sim.set_cpu_online(cpu as u32, online).map_err(|e| e.to_string()),
            None => {
                let op = if online { "cpu-online" } else { "cpu-offline" };
                let out = std::process::Command::new("xen-hptool")
                    .args([op, &cpu.to_string()])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|e| format!("xen-hptool: {e}"))?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "xen-hptool {op} {cpu}: {:?}: {}{}",
                        out.status.code(),
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ))
                }
            }
        }
    }

    /// Takes host CPU `cpu` offline until the guard is dropped (also when the test
    /// panics), so the tests after it find every CPU online.
    pub fn offline_host_cpu(&self, cpu: usize) -> OfflineCpu<'_> {
        self.set_host_cpu_online(cpu, false).unwrap_or_else(|e| panic!("take CPU {cpu} offline: {e}"));
        OfflineCpu { f: self, cpu }
    }
}

/// A host CPU taken offline by [`Fixture::offline_host_cpu`]; brought back when dropped.
pub struct OfflineCpu<'a> {
    f: &'a Fixture,
    cpu: usize,
}

impl Drop for OfflineCpu<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.f.set_host_cpu_online(self.cpu, true) {
            if std::thread::panicking() {
                eprintln!("could not bring CPU {} back online: {e}", self.cpu);
            } else {
                panic!("could not bring CPU {} back online: {e}", self.cpu);
            }
        }
    }
}

fn env_u32(name: &str) -> Option<u32> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|e| panic!("{name}={v:?}: {e}")))
}

/// The lab fixture: real Xen, described by the lab harness's environment.
#[allow(dead_code)] // conformance_sim.rs uses the simulated fixture only
pub fn lab_fixture() -> Fixture {
    assert_eq!(
        std::env::var("XENVCPU_LAB").as_deref(),
        Ok("1"),
        "this test needs the Xen lab: run it with tests/lab/lab.sh test"
    );
    Host::open().expect("open the real hypervisor in the lab");
    let counter = Counting::new(Arc::new(XenCtrlBackend::open().expect("open libxenctrl in the lab")));
    let host = Host::with_shared_backend(counter.clone()).expect("the real hypervisor in the lab");
    Fixture {
        host,
        counter,
        dom0: DomId(0),
        dom0_vcpus: env_u32("XENVCPU_LAB_DOM0_VCPUS").expect("XENVCPU_LAB_DOM0_VCPUS"),
        nr_cpus: env_u32("XENVCPU_LAB_NR_CPUS").expect("XENVCPU_LAB_NR_CPUS") as usize,
        guest: Some(DomId(
            env_u32("XENVCPU_LAB_GUEST_DOMID").expect("XENVCPU_LAB_GUEST_DOMID: the lab starts its guest"),
        )),
        sim: None,
    }
}

fn cpus(list: &str) -> CpuMap {
    list.parse().unwrap()
}

/// Runs `f`, then restores every vCPU of `domid` to the affinity it had before.
fn preserving<T>(f: &Fixture, domid: DomId, body: impl FnOnce() -> T) -> T {
    let dom = f.host.domain(domid).unwrap();
    let saved = dom.vcpus().unwrap();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    for v in &saved {
        dom.set_affinity(v.vcpu, &AffinityRequest::both(&v.hard, &v.soft).forced()).unwrap();
    }
    out.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

// ---- The tests -----------------------------------------------------------------------

pub fn host_facts_are_sized_by_max_cpu_id(f: &Fixture) {
    let info = f.host.info().unwrap();
    assert_eq!(f.host.nr_cpus(), f.nr_cpus);
    assert_eq!(info.nr_cpus(), info.phys.max_cpu_id as usize + 1);
    assert_eq!(info.phys.nr_cpus as usize, f.nr_cpus, "all lab CPUs are online");
    assert_eq!(info.online_cpus(), CpuMap::all(f.nr_cpus));
    assert!(info.nr_sockets() >= 1);
    assert_eq!(info.node_cpus().iter().fold(CpuMap::new(), |a, n| a.union(n)), info.online_cpus());
    assert_eq!(f.host.cpumap_size(), f.nr_cpus.div_ceil(8));
}

pub fn domains_list_dom0_and_the_guest(f: &Fixture) {
    let domains = f.host.domains().unwrap();
    let dom0 = domains.iter().find(|d| d.domid == f.dom0).expect("dom0 listed");
    assert_eq!(dom0.max_vcpu_id, Some(f.dom0_vcpus - 1));
    assert_eq!(dom0.nr_online_vcpus, f.dom0_vcpus);
    assert!(!dom0.flags.hvm && !dom0.flags.dying);
    if let Some(g) = f.guest {
        let guest = domains.iter().find(|d| d.domid == g).expect("guest listed");
        assert_eq!(guest.max_vcpu_id, Some(3), "the guest has maxvcpus = 4");
    }
    assert!(domains.windows(2).all(|w| w[0].domid < w[1].domid), "in id order");
}

pub fn info_for_every_vcpu(f: &Fixture) {
    let dom0 = f.host.domain(f.dom0).unwrap();
    let vcpus = dom0.vcpus().unwrap();
    assert_eq!(vcpus.len() as u32, f.dom0_vcpus);
    for (i, v) in vcpus.iter().enumerate() {
        assert_eq!(v.vcpu.index(), i);
        assert_ne!(v.state, VcpuState::Offline, "dom0's vCPUs are all online");
        assert!(v.cpu.is_some_and(|c| c.index() < f.nr_cpus), "{v:?}");
        assert!(!v.hard.is_empty() && !v.soft.is_empty(), "{v:?}");
    }
    if let Some(g) = f.guest {
        let guest = f.host.domain(g).unwrap();
        let vcpus = guest.vcpus().unwrap();
        assert_eq!(vcpus.len(), 4);
        let online = vcpus.iter().filter(|v| v.state != VcpuState::Offline).count() as u32;
        assert_eq!(online, guest.refresh().unwrap().nr_online_vcpus);
        for v in vcpus.iter().filter(|v| v.state == VcpuState::Offline) {
            assert_eq!(v.cpu, None, "an offline vCPU has no physical CPU");
        }
        assert_ne!(vcpus[0].state, VcpuState::Offline, "vCPU 0 is always online");
    }
}

pub fn hard_affinity_round_trip(f: &Fixture) {
    preserving(f, f.dom0, || {
        let dom0 = f.host.domain(f.dom0).unwrap();
        let want = cpus("0-1");
        let eff = dom0.set_affinity(VcpuId(1), &AffinityRequest::hard(&want)).unwrap();
        assert_eq!(eff.hard.as_ref(), Some(&want));
        assert_eq!(eff.soft, None, "soft was not changed");
        // The vCPU moves into the new map at its next schedule, not at once (seen on real
        // Xen under emulation), so only the map itself is checked.
        assert_eq!(dom0.vcpu_info(VcpuId(1)).unwrap().hard, want);
    });
}

pub fn soft_affinity_round_trip(f: &Fixture) {
    preserving(f, f.dom0, || {
        let dom0 = f.host.domain(f.dom0).unwrap();
        let all = CpuMap::all(f.nr_cpus);
        dom0.set_affinity(VcpuId(2), &AffinityRequest::hard(&all)).unwrap();
        let want = cpus("1-2");
        let eff = dom0.set_affinity(VcpuId(2), &AffinityRequest::soft(&want)).unwrap();
        assert_eq!(eff.soft.as_ref(), Some(&want));
        assert_eq!(dom0.vcpu_info(VcpuId(2)).unwrap().soft, want);
    });
}

pub fn both_maps_round_trip(f: &Fixture) {
    preserving(f, f.dom0, || {
        let dom0 = f.host.domain(f.dom0).unwrap();
        let (hard, soft) = (cpus("0,2-3"), cpus("2"));
        let eff = dom0.set_affinity(VcpuId(3), &AffinityRequest::both(&hard, &soft)).unwrap();
        assert_eq!(eff.hard.as_ref(), Some(&hard));
        assert_eq!(eff.soft.as_ref(), Some(&soft));
        let now = dom0.vcpu_info(VcpuId(3)).unwrap();
        assert_eq!((now.hard, now.soft), (hard, soft));
    });
}

/// Xen writes back soft ∩ hard as the effective soft map, but keeps the soft map as set.
pub fn effective_soft_is_intersected_with_hard(f: &Fixture) {
    preserving(f, f.dom0, || {
        let dom0 = f.host.domain(f.dom0).unwrap();
        let (hard, soft) = (cpus("0-1"), cpus("1-3"));
        let req = AffinityRequest::both(&hard, &soft);
        let eff = dom0.set_affinity(VcpuId(1), &req).unwrap();
        assert_eq!(eff.soft, Some(cpus("1")), "effective soft = soft ∩ hard");
        assert_eq!(eff.dropped(&req), (CpuMap::new(), cpus("2-3")));
        assert_eq!(dom0.vcpu_info(VcpuId(1)).unwrap().soft, soft, "the soft map is kept as set");
    });
}

pub fn empty_map_is_refused_before_any_hypercall(f: &Fixture) {
    let dom0 = f.host.domain(f.dom0).unwrap();
    let before = f.counter.calls();
    let err = dom0.set_affinity(VcpuId(0), &AffinityRequest::hard(&CpuMap::new())).unwrap_err();
    assert!(matches!(err, Error::EmptyMap { vcpu: VcpuId(0), kind: xenvcpu::MapKind::Hard, .. }), "{err}");
    let err = dom0.set_affinity(VcpuId(0), &AffinityRequest::soft(&CpuMap::new())).unwrap_err();
    assert!(matches!(err, Error::EmptyMap { kind: xenvcpu::MapKind::Soft, .. }), "{err}");
    let err = dom0.set_affinity(VcpuId(0), &AffinityRequest::default()).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert_eq!(f.counter.calls(), before, "no hypercall was made");
}

pub fn cpu_beyond_the_host_is_refused_and_named(f: &Fixture) {
    let dom0 = f.host.domain(f.dom0).unwrap();
    let before = dom0.vcpu_info(VcpuId(0)).unwrap().hard;
    let map = CpuMap::from_iter([0, f.nr_cpus, f.nr_cpus + 5]);
    match dom0.set_affinity(VcpuId(0), &AffinityRequest::hard(&map)).unwrap_err() {
        Error::CpusBeyondHost { cpus, nr_cpus } => {
            assert_eq!(cpus, CpuMap::from_iter([f.nr_cpus, f.nr_cpus + 5]));
            assert_eq!(nr_cpus, f.nr_cpus);
        }
        e => panic!("{e}"),
    }
    assert_eq!(dom0.vcpu_info(VcpuId(0)).unwrap().hard, before, "nothing was applied");
    // The libvirt shape refuses the same map rather than dropping the CPU.
    let bytes = map.to_libvirt_bytes(f.nr_cpus.div_ceil(8) + 1).unwrap();
    assert!(matches!(dom0.libvirt().pin_vcpu(0, &bytes), Err(Error::CpuMap(_))));
    assert_eq!(dom0.vcpu_info(VcpuId(0)).unwrap().hard, before);
}

pub fn vcpu_out_of_range(f: &Fixture) {
    let dom0 = f.host.domain(f.dom0).unwrap();
    let n = f.dom0_vcpus;
    assert!(
        matches!(dom0.vcpu_info(VcpuId(n)), Err(Error::VcpuOutOfRange { vcpu, max_vcpu_id, .. }) if vcpu == VcpuId(n) && max_vcpu_id == VcpuId(n - 1))
    );
    let all = CpuMap::all(f.nr_cpus);
    assert!(matches!(dom0.set_affinity(VcpuId(n), &AffinityRequest::hard(&all)), Err(Error::VcpuOutOfRange { .. })));
    // What Xen itself says for one past the end: vcpu >= max_vcpus is EINVAL.
    let errno = f.host.hypervisor().vcpu_info(f.dom0.get(), n).unwrap_err().raw();
    assert_eq!(errno, libc::EINVAL);
}

pub fn absent_domain(f: &Fixture) {
    assert!(matches!(f.host.domain(DomId(31000)), Err(Error::NoSuchDomain { domid: DomId(31000) })));
    assert_eq!(f.host.hypervisor().domain_info(31000).unwrap(), None, "the returned domid is checked");
    let errno = f.host.hypervisor().vcpu_info(31000, 0).unwrap_err().raw();
    assert_eq!(errno, libc::ESRCH);
}

/// The identity check's read (a handle and whether it is dying) says what the domain's
/// info says, for every domain, and `None` for an absent one: libxenctrl's backend reads the
/// two fields alone, the simulator through `domain_info`.
pub fn domain_identity_is_the_infos_uuid_and_dying(f: &Fixture) {
    let hv = f.host.hypervisor();
    assert_eq!(hv.domain_identity(31000).unwrap(), None);
    let domains = f.host.domains().unwrap();
    assert!(domains.len() >= 2, "{domains:?}");
    for d in domains {
        let id = d.domid.get();
        assert_eq!(hv.domain_identity(id).unwrap(), Some((d.uuid, d.flags.dying)), "domain {id}");
    }
}

pub fn max_vcpus_is_fixed_and_refused_on_self(f: &Fixture) {
    let dom0 = f.host.domain(f.dom0).unwrap();
    let err = dom0.set_max_vcpus(f.dom0_vcpus + 1).unwrap_err();
    assert!(
        matches!(err, Error::MaxVcpusFixed { current, requested, .. } if current == f.dom0_vcpus && requested == f.dom0_vcpus + 1),
        "{err}"
    );
    let err = dom0.set_max_vcpus(f.dom0_vcpus).unwrap_err();
    assert!(matches!(err, Error::MaxVcpusOnSelf { domid: DomId(0), errno } if errno.raw() == libc::EINVAL), "{err}");
    assert_eq!(err.errno().map(|e| e.raw()), Some(libc::EINVAL));
}

pub fn max_vcpus_same_value_is_accepted_for_the_guest(f: &Fixture) {
    let Some(g) = f.guest else { panic!("this test needs the guest") };
    let guest = f.host.domain(g).unwrap();
    guest.set_max_vcpus(4).unwrap();
    assert!(matches!(guest.set_max_vcpus(2), Err(Error::MaxVcpusFixed { current: 4, .. })));
    // Xen itself refuses another value.
    assert_eq!(f.host.hypervisor().set_max_vcpus(g.get(), 5).unwrap_err().raw(), libc::EINVAL);
}

pub fn pin_all_vcpus_as_one_operation(f: &Fixture) {
    preserving(f, f.dom0, || {
        let dom0 = f.host.domain(f.dom0).unwrap();
        let all_vcpus = VcpuSet::all(f.dom0_vcpus);
        let map = cpus("1-2");
        let done = dom0.pin(&all_vcpus, &AffinityRequest::hard(&map)).unwrap();
        assert_eq!(done.len() as u32, f.dom0_vcpus);
        for v in dom0.vcpus().unwrap() {
            assert_eq!(v.hard, map, "vCPU {}", v.vcpu);
        }
        // An invalid request for any vCPU changes none.
        let err = dom0.pin(&VcpuSet::all(f.dom0_vcpus + 1), &AffinityRequest::hard(&cpus("0"))).unwrap_err();
        assert!(matches!(err, Error::VcpuOutOfRange { .. }), "{err}");
        assert!(dom0.vcpus().unwrap().iter().all(|v| v.hard == map));
    });
}

/// The two batches behind `pin` (libxenctrl's backend makes their hypercalls back to back)
/// read and write what their single calls do, and stop at the first failure saying where
/// and why, the calls before it made.
pub fn affinity_batches_do_what_their_single_calls_do_and_stop_at_the_first_failure(f: &Fixture) {
    preserving(f, f.dom0, || {
        let hv = f.host.hypervisor();
        let (id, n, size) = (f.dom0.get(), f.dom0_vcpus, hv.cpumap_size());
        let bytes = |list: &str| cpus(list).to_libvirt_bytes(size).unwrap();
        let single = |v: u32| {
            let (mut hard, mut soft) = (vec![0; size], vec![0; size]);
            hv.get_affinity(id, v, Some(&mut hard), Some(&mut soft)).unwrap();
            [hard, soft].concat()
        };
        f.host
            .domain(f.dom0)
            .unwrap()
            .set_affinity(VcpuId(1), &AffinityRequest::both(&cpus("0-1"), &cpus("1")))
            .unwrap();

        // Reads: hard and soft per vCPU, or hard alone; a vCPU out of range stops at its index.
        let vcpus: Vec<u32> = (0..n).collect();
        let mut both = vec![0; 2 * size * vcpus.len()];
        hv.get_affinities(id, &vcpus, true, &mut both).unwrap();
        for (&v, slot) in vcpus.iter().zip(both.chunks_exact(2 * size)) {
            assert_eq!(slot, single(v), "vCPU {v}");
        }
        let mut hard = vec![0; size * vcpus.len()];
        hv.get_affinities(id, &vcpus, false, &mut hard).unwrap();
        assert!(hard.chunks_exact(size).zip(both.chunks_exact(2 * size)).all(|(h, b)| h == &b[..size]));
        let mut three = vec![0; 2 * size * 3];
        let (at, errno) = hv.get_affinities(id, &[0, n, 1], true, &mut three).unwrap_err();
        assert_eq!((at, errno.raw()), (1, libc::EINVAL));
        assert_eq!(hv.get_affinities(id, &vcpus, true, &mut three[..1]).unwrap_err().0, 0, "a slot too small");

        // Writes: vCPU 0 hard, vCPU 1 hard and soft, then one out of range: the first two
        // are made and their slots hold the effective maps.
        let call = |vcpu, hard, soft| AffinityCall { vcpu, hard, soft, force: false };
        let calls = [call(0, true, false), call(1, true, true), call(n, true, false)];
        let mut maps = [bytes("2-3"), vec![0; size], bytes("1-2"), bytes("2"), bytes("0"), vec![0; size]].concat();
        let uuid = f.host.domain(f.dom0).unwrap().info().uuid;
        let soft0 = single(0)[size..].to_vec();
        f.counter.take();
        let (at, stop) = hv.set_affinities(id, &uuid, &calls, &mut maps).unwrap_err();
        assert_eq!((at, stop), (2, BatchStop::Call(xenvcpu::hypervisor::Errno::new(libc::EINVAL))));
        assert_eq!(&maps[..4 * size], [bytes("2-3"), vec![0; size], bytes("1-2"), bytes("2")].concat());
        assert_eq!(single(0), [bytes("2-3"), soft0].concat(), "vCPU 0: its soft map as it was");
        assert_eq!(single(1), [bytes("1-2"), bytes("2")].concat());
        let counted = f.counter.take();
        assert_eq!(counted.get("domain_info"), Some(&3), "{counted:?}");
        assert_eq!(counted.get("set_affinity(hard)"), Some(&2), "{counted:?}");
        assert_eq!(counted.get("set_affinity(hard, soft)"), Some(&1), "{counted:?}");

        // The identity check comes before each write: another uuid, or no domain, stops at
        // the first call with what was read, and nothing is written.
        let mut maps = [bytes("3"), vec![0; size]].concat();
        let other = [0xa5; 16];
        let stop = hv.set_affinities(id, &other, &calls[..1], &mut maps).unwrap_err();
        assert_eq!(stop, (0, BatchStop::Identity(Ok(Some((uuid, false))))));
        assert_eq!(
            hv.set_affinities(31000, &uuid, &calls[..1], &mut maps).unwrap_err(),
            (0, BatchStop::Identity(Ok(None)))
        );
        assert_eq!(single(0)[..size], bytes("2-3"), "unchanged");
        let stop = hv.set_affinities(id, &uuid, &calls[..1], &mut maps[..1]).unwrap_err();
        assert_eq!(stop, (0, BatchStop::Call(xenvcpu::hypervisor::Errno::new(libc::EINVAL))), "a slot too small");
    });
}

pub fn concurrent_pins_on_one_shared_handle(f: &Fixture) {
    preserving(f, f.dom0, || {
        let host = f.host.clone();
        let (nr_cpus, dom0_id) = (f.nr_cpus, f.dom0);
        let threads: Vec<_> = (0..f.dom0_vcpus.min(4))
            .map(|vcpu| {
                let host = host.clone();
                std::thread::spawn(move || {
                    let dom0 = host.domain(dom0_id).unwrap();
                    for i in 0..50 {
                        let map = CpuMap::from_iter([(vcpu as usize + i) % nr_cpus]);
                        let eff = dom0.set_affinity(VcpuId(vcpu), &AffinityRequest::hard(&map)).unwrap();
                        assert_eq!(eff.hard.as_ref(), Some(&map));
                        assert_eq!(dom0.vcpu_info(VcpuId(vcpu)).unwrap().hard, map);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let dom0 = host.domain(dom0_id).unwrap();
        for vcpu in 0..f.dom0_vcpus.min(4) {
            let want = CpuMap::from_iter([(vcpu as usize + 49) % nr_cpus]);
            assert_eq!(dom0.vcpu_info(VcpuId(vcpu)).unwrap().hard, want);
        }
    });
}

pub fn libvirt_get_vcpus(f: &Fixture) {
    let dom0 = f.host.domain(f.dom0).unwrap();
    let maplen = xenvcpu::cpumap::cpu_maplen(f.nr_cpus) + 2;
    let n = f.dom0_vcpus as usize;
    let mut maps = vec![0xeeu8; (n + 3) * maplen];
    let infos = dom0.libvirt().get_vcpus(n + 3, Some(&mut maps), maplen).unwrap();
    assert_eq!(infos.len(), n, "returns the number filled, not maxinfo");
    let vcpus = dom0.vcpus().unwrap();
    for (info, v) in infos.iter().zip(&vcpus) {
        assert_eq!(info.number, v.vcpu.get());
        // Running and blocked change from one moment to the next (real Xen showed it);
        // online dom0 vCPUs are RUNNING (also when runnable) or BLOCKED, never OFFLINE.
        assert!(info.state == 1 || info.state == 2, "state {}", info.state);
        assert!(info.cpu >= 0);
        let map = xenvcpu::cpumap::get_cpumap(&maps, maplen, v.vcpu.index());
        assert_eq!(CpuMap::from_libvirt_bytes(map), v.hard);
    }
    assert!(maps[n * maplen..].iter().all(|&b| b == 0xee), "slots past n are untouched");
    let short = dom0.libvirt().get_vcpus(2, None, 0).unwrap();
    assert_eq!(short.len(), 2);
    if let Some(g) = f.guest {
        let guest = f.host.domain(g).unwrap();
        for info in guest.libvirt().get_vcpus(4, None, 0).unwrap() {
            let offline = guest.vcpu_info(VcpuId(info.number)).unwrap().state == VcpuState::Offline;
            assert_eq!(info.state == 0, offline);
            assert_eq!(info.cpu == -1, offline);
        }
    }
}

pub fn libvirt_pin_vcpu_round_trip(f: &Fixture) {
    preserving(f, f.dom0, || {
        let dom0 = f.host.domain(f.dom0).unwrap();
        let mut map = vec![0u8; 8];
        xenvcpu::cpumap::use_cpu(&mut map, 0);
        xenvcpu::cpumap::use_cpu(&mut map, 2);
        dom0.libvirt().pin_vcpu(1, &map).unwrap();
        assert_eq!(dom0.vcpu_info(VcpuId(1)).unwrap().hard, cpus("0,2"));
    });
}

// ---- An offline host CPU ---------------------------------------------------------------
//
// The lab takes a CPU offline with `xen-hptool cpu-offline`, the simulator with its switch;
// each test brings it back (a guard, also on failure): the tests after it need every CPU.

/// With one CPU offline — the last one, then one in the middle — the host is still sized
/// by `max_cpu_id + 1`, the online CPUs and every node's CPUs leave it out, and its
/// topology entry is what Xen 4.17 reports for an offline CPU: no core, no socket, the
/// node it had (Xen keeps `cpu_to_node[]`; seen in the lab).
pub fn an_offline_cpu_is_left_out_of_online_and_node_cpus(f: &Fixture) {
    let all = CpuMap::all(f.nr_cpus);
    let before = f.host.info().unwrap();
    assert_eq!(before.online_cpus(), all, "every CPU online to begin with");
    // CPU 0 never goes offline (Xen: EINVAL; xen-hptool says "error 22").
    let refused = f.set_host_cpu_online(0, false).unwrap_err();
    assert!(refused.contains("22") || refused.contains("Invalid argument"), "{refused}");
    assert_eq!(f.host.info().unwrap().online_cpus(), all);
    for cpu in [f.nr_cpus - 1, 1] {
        let offline = f.offline_host_cpu(cpu);
        let info = f.host.info().unwrap();
        let online = all.difference(&CpuMap::from_iter([cpu]));
        assert_eq!(info.nr_cpus(), f.nr_cpus, "CPU {cpu} offline: still max_cpu_id + 1");
        assert_eq!(info.phys.max_cpu_id as usize, f.nr_cpus - 1);
        assert_eq!(info.phys.nr_cpus as usize, f.nr_cpus - 1, "physinfo counts online CPUs");
        assert_eq!(info.online_cpus(), online, "CPU {cpu} offline");
        let nodes = info.node_cpus();
        assert_eq!(nodes.iter().fold(CpuMap::new(), |a, n| a.union(n)), online, "node CPUs: {nodes:?}");
        assert_eq!(
            info.cpus[cpu],
            CpuTopology { core: None, socket: None, node: before.cpus[cpu].node },
            "CPU {cpu} offline: {:?}",
            info.cpus
        );
        for (other, t) in info.cpus.iter().enumerate().filter(|&(c, _)| c != cpu) {
            assert_eq!(*t, before.cpus[other], "CPU {other} is unchanged");
        }
        assert_eq!(f.host.nr_cpus(), f.nr_cpus);
        assert_eq!(f.host.cpumap_size(), f.nr_cpus.div_ceil(8), "maps keep their size");
        drop(offline);
        let back = HostInfo { phys: before.phys, cpus: before.cpus.clone(), online: all.clone() };
        assert_eq!(f.host.info().unwrap(), back, "back online");
    }
}

/// A hard map with an offline CPU is accepted and the CPU dropped from the effective map
/// (and named by `dropped`), while Xen keeps the map as set; a map of offline CPUs only is
/// refused with `EINVAL`, reported as `NoUsableCpu` naming Pool-0 and its CPUs (the online
/// ones: the offline CPU left the pool), and changes
/// nothing.
pub fn effective_hard_affinity_drops_an_offline_cpu(f: &Fixture) {
    let last = f.nr_cpus - 1;
    let _offline = f.offline_host_cpu(last);
    let online = CpuMap::all(f.nr_cpus).difference(&CpuMap::from_iter([last]));
    preserving(f, f.dom0, || {
        let dom0 = f.host.domain(f.dom0).unwrap();
        let want = CpuMap::from_iter([last - 1, last]);
        let req = AffinityRequest::hard(&want);
        let eff = dom0.set_affinity(VcpuId(1), &req).unwrap();
        assert_eq!(eff.hard, Some(CpuMap::from_iter([last - 1])), "effective = requested ∩ online");
        assert_eq!(eff.dropped(&req).0, CpuMap::from_iter([last]));
        assert_eq!(dom0.vcpu_info(VcpuId(1)).unwrap().hard, want, "Xen keeps the map as set");
        let only_offline = CpuMap::from_iter([last]);
        match dom0.set_affinity(VcpuId(1), &AffinityRequest::hard(&only_offline)).unwrap_err() {
            Error::NoUsableCpu { domid, vcpu, map, pool, online: named, errno, .. } => {
                assert_eq!((domid, vcpu), (f.dom0, VcpuId(1)));
                assert_eq!(pool, 0, "dom0 is in Pool-0, which the offline CPU left");
                assert_eq!(map, only_offline);
                assert_eq!(named, online, "names the online CPUs");
                assert_eq!(errno.raw(), libc::EINVAL);
            }
            e => panic!("{e}"),
        }
        assert_eq!(dom0.vcpu_info(VcpuId(1)).unwrap().hard, want, "the refused map changed nothing");
    });
}

/// Taking a CPU offline is not refused when a vCPU's hard affinity is that CPU alone:
/// Xen 4.17 *breaks* the pin (`cpu_disable_scheduler()`, "Breaking affinity for dXvY"):
/// the hard map becomes every CPU and stays so when the CPU comes back; the soft map and
/// a hard map that still has an online CPU are kept.
pub fn offlining_a_cpu_breaks_a_hard_pin_to_it_alone(f: &Fixture) {
    let last = f.nr_cpus - 1;
    preserving(f, f.dom0, || {
        let dom0 = f.host.domain(f.dom0).unwrap();
        let (alone, with_other, soft) =
            (CpuMap::from_iter([last]), CpuMap::from_iter([last - 1, last]), CpuMap::from_iter([last]));
        dom0.set_affinity(VcpuId(2), &AffinityRequest::both(&alone, &soft)).unwrap();
        dom0.set_affinity(VcpuId(3), &AffinityRequest::hard(&with_other)).unwrap();
        let offline = f.offline_host_cpu(last);
        let v2 = dom0.vcpu_info(VcpuId(2)).unwrap();
        assert_eq!(v2.hard, CpuMap::all(f.nr_cpus), "the pin to CPU {last} alone was broken");
        assert_eq!(v2.soft, soft, "the soft map is kept");
        assert_eq!(dom0.vcpu_info(VcpuId(3)).unwrap().hard, with_other, "a map with an online CPU is kept");
        drop(offline);
        assert_eq!(
            dom0.vcpu_info(VcpuId(2)).unwrap().hard,
            CpuMap::all(f.nr_cpus),
            "not restored when the CPU is back"
        );
    });
}

/// The lab's host has one NUMA node, node 0: every domain's node affinity holds it, so the
/// advisory nodeset for `placement='auto'` is every node, and resolves to every online CPU.
pub fn node_affinity_holds_node_0_and_the_advisory_nodeset_is_all_nodes(f: &Fixture) {
    let info = f.host.info().unwrap();
    assert_eq!(info.node_cpus().len(), 1, "one NUMA node");
    let mut domains = vec![f.dom0];
    domains.extend(f.guest);
    for domid in domains {
        let dom = f.host.domain(domid).unwrap();
        let affinity = dom.node_affinity().unwrap();
        assert!(affinity.contains(0), "domain {domid}: node affinity {affinity}");
        let advisory = dom.advisory_nodeset().unwrap();
        assert_eq!(advisory.nodes(), &CpuMap::from_iter([0]), "domain {domid}");
        assert!(advisory.is_all_nodes(), "domain {domid}");
        let placement = xenvcpu::placement::Placement::builder(dom.max_vcpus()).auto().build().unwrap();
        let resolved = placement.resolve(&info, Some(advisory.nodes())).unwrap();
        assert!(resolved.vcpus.iter().all(|v| v.cpus == CpuMap::all(f.nr_cpus)), "{resolved}");
    }
}

/// The suite's tests as this file defines them: every `pub fn NAME(f: &Fixture)`, sorted.
pub fn defined_tests() -> Vec<&'static str> {
    suite_guard::defined_tests(include_str!("mod.rs"))
}

#[path = "../support/suite_guard.rs"]
mod suite_guard;

/// Lists every test of the suite, instantiated once per backend by the caller:
/// `suite!(fixture_fn)` or `suite!(fixture_fn, ignore = "reason")`.
#[macro_export]
macro_rules! suite {
    ($fixture:path $(, $attr:meta)?) => {
        $crate::suite!(@tests $fixture, [$($attr)?],
            host_facts_are_sized_by_max_cpu_id,
            domains_list_dom0_and_the_guest,
            info_for_every_vcpu,
            hard_affinity_round_trip,
            soft_affinity_round_trip,
            both_maps_round_trip,
            effective_soft_is_intersected_with_hard,
            empty_map_is_refused_before_any_hypercall,
            cpu_beyond_the_host_is_refused_and_named,
            vcpu_out_of_range,
            absent_domain,
            domain_identity_is_the_infos_uuid_and_dying,
            max_vcpus_is_fixed_and_refused_on_self,
            max_vcpus_same_value_is_accepted_for_the_guest,
            pin_all_vcpus_as_one_operation,
            affinity_batches_do_what_their_single_calls_do_and_stop_at_the_first_failure,
            concurrent_pins_on_one_shared_handle,
            libvirt_get_vcpus,
            libvirt_pin_vcpu_round_trip,
            an_offline_cpu_is_left_out_of_online_and_node_cpus,
            effective_hard_affinity_drops_an_offline_cpu,
            offlining_a_cpu_breaks_a_hard_pin_to_it_alone,
            node_affinity_holds_node_0_and_the_advisory_nodeset_is_all_nodes,
        );
    };
    (@tests $fixture:path, $attrs:tt, $($name:ident),* $(,)?) => {
        $( $crate::suite!(@one $fixture, $attrs, $name); )*

        /// The list above names every test the suite defines (runs on the host).
        #[test]
        fn every_conformance_test_is_listed() {
            let mut listed = vec![$(stringify!($name)),*];
            listed.sort_unstable();
            assert_eq!(listed, conformance::defined_tests(), "a conformance test is missing from suite!");
        }
    };
    (@one $fixture:path, [$($attr:meta)?], $name:ident) => {
        #[test]
        $(#[$attr])?
        fn $name() {
            conformance::$name(&$fixture());
        }
    };
}
