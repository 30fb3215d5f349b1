//! The hot calls allocate nothing in steady state: proven with a counting global allocator,
//! against a backend that allocates nothing itself (on the host) and against real Xen (in
//! the lab; libxenctrl's own buffers come from C, not from Rust's allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use xenvcpu::cpumap::CpuMap;
use xenvcpu::hypervisor::{
    CpuTopology, DomainInfo, Errno, FeaturesetKind, Hypervisor, PhysInfo, PolicyCallError, RawCpuPolicy, RawPoolInfo,
    RawVcpuInfo,
};
use xenvcpu::{AffinityRequest, DomId, Effective, Host, VcpuId, VcpuInfo};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

/// A backend that answers from fixed state and never allocates.
#[derive(Debug)]
struct Still;

impl Hypervisor for Still {
    fn cpumap_size(&self) -> usize {
        32
    }
    fn physinfo(&self) -> Result<PhysInfo, Errno> {
        Ok(PhysInfo {
            nr_cpus: 256,
            max_cpu_id: 255,
            threads_per_core: 1,
            cores_per_socket: 256,
            ..PhysInfo::default()
        })
    }
    fn cpu_topology(&self, out: &mut Vec<CpuTopology>) -> Result<(), Errno> {
        out.clear();
        Ok(())
    }
    fn domain_list(&self, _: u32, _: u32, _: &mut Vec<DomainInfo>) -> Result<(), Errno> {
        Ok(())
    }
    fn domain_info(&self, domid: u32) -> Result<Option<DomainInfo>, Errno> {
        Ok(Some(DomainInfo { domid: DomId(domid), max_vcpu_id: Some(7), nr_online_vcpus: 8, ..DomainInfo::default() }))
    }
    fn vcpu_info(&self, _: u32, _: u32) -> Result<RawVcpuInfo, Errno> {
        Ok(RawVcpuInfo { online: true, running: true, cpu: 3, ..RawVcpuInfo::default() })
    }
    fn get_affinity(&self, _: u32, _: u32, hard: Option<&mut [u8]>, soft: Option<&mut [u8]>) -> Result<(), Errno> {
        hard.into_iter().chain(soft).for_each(|m| m.fill(0xff));
        Ok(())
    }
    fn set_affinity(&self, _: u32, _: u32, _: Option<&mut [u8]>, _: Option<&mut [u8]>, _: bool) -> Result<(), Errno> {
        Ok(())
    }
    fn set_max_vcpus(&self, _: u32, _: u32) -> Result<(), Errno> {
        Ok(())
    }
    fn node_affinity(&self, _: u32) -> Result<CpuMap, Errno> {
        Ok(CpuMap::all(1))
    }
    // Not on the hot path this test measures: one pool with every CPU.
    fn cpupool_info(&self, first: u32) -> Result<Option<RawPoolInfo>, Errno> {
        Ok((first == 0).then(|| RawPoolInfo { id: 0, sched_id: 6, n_dom: 1, cpus: CpuMap::all(256) }))
    }
    // Not on the hot path this test measures: no free CPU (every one is in Pool-0).
    fn cpupool_free_cpus(&self) -> Result<CpuMap, Errno> {
        Ok(CpuMap::new())
    }
    // Not on the hot path this test measures: no CPU policy here.
    fn cpu_featureset(&self, _: FeaturesetKind) -> Result<Vec<u32>, PolicyCallError> {
        Err(PolicyCallError::Xen(Errno::new(libc::ENOSYS)))
    }
    fn system_cpu_policy(&self, _: FeaturesetKind) -> Result<RawCpuPolicy, PolicyCallError> {
        Err(PolicyCallError::Xen(Errno::new(libc::ENOSYS)))
    }
    fn domain_cpu_policy(&self, _: u32) -> Result<RawCpuPolicy, PolicyCallError> {
        Err(PolicyCallError::Xen(Errno::new(libc::ENOSYS)))
    }
    fn describe(&self) -> String {
        "still".into()
    }
}

/// Warms up, then counts the allocations of 100 affinity updates, vCPU reads and listings
/// of every vCPU.
fn steady_state_allocations(host: &Host, domid: DomId, vcpu: VcpuId, maps: [CpuMap; 2]) -> u64 {
    let dom = host.domain(domid).unwrap();
    let mut eff = Effective { hard: Some(CpuMap::with_capacity(host.nr_cpus())), soft: None };
    let mut info = VcpuInfo::empty();
    let mut all = Vec::new();
    let mut run = |i: usize| {
        let req = AffinityRequest::hard(&maps[i % 2]);
        dom.set_affinity_into(vcpu, &req, &mut eff).unwrap();
        dom.vcpu_info_into(vcpu, &mut info).unwrap();
        dom.vcpus_into(&mut all).unwrap();
        assert_eq!(all.len(), dom.max_vcpus() as usize);
    };
    run(0);
    run(1);
    allocations_in(|| (0..100).for_each(&mut run))
}

#[test]
fn hot_calls_allocate_nothing_in_steady_state() {
    let host = Host::with_backend(Still).unwrap();
    assert_eq!(
        steady_state_allocations(&host, DomId(0), VcpuId(5), ["0-3".parse().unwrap(), "200-255".parse().unwrap()]),
        0
    );
    // The counter does count: a convenience call that returns a new list allocates it.
    let dom = host.domain(DomId(0)).unwrap();
    assert!(allocations_in(|| drop(dom.vcpus().unwrap())) > 0);
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn hot_calls_allocate_nothing_on_real_xen() {
    assert_eq!(std::env::var("XENVCPU_LAB").as_deref(), Ok("1"), "run in the lab: tests/lab/lab.sh test");
    let host = Host::open().unwrap();
    let dom0 = host.domain(DomId(0)).unwrap();
    let saved = dom0.vcpu_info(VcpuId(1)).unwrap();
    let n = steady_state_allocations(&host, DomId(0), VcpuId(1), ["0".parse().unwrap(), "1".parse().unwrap()]);
    dom0.set_affinity(VcpuId(1), &AffinityRequest::both(&saved.hard, &saved.soft).forced()).unwrap();
    assert_eq!(n, 0);
}
