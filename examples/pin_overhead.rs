//! The library's own work in a pin, counted in instructions: `Domain::pin` of every vCPU
//! of one domain against the backend calls it makes, made directly, over a backend whose
//! calls do next to nothing (the simulator for the host's facts and the pool, canned
//! answers for the calls a pin repeats per vCPU). Run each side under callgrind and
//! subtract: what is left is the library's, with no hypercall to hide it.
//!
//! ```text
//! cargo build --release --example pin_overhead
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/pin.lib target/release/examples/pin_overhead lib 1000 16
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/pin.raw target/release/examples/pin_overhead raw 1000 16
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/pin.0 target/release/examples/pin_overhead lib 0 16
//! ```
//!
//! (lib − raw) / (pins × vCPUs) is the library's instructions per vCPU over its raw calls;
//! `lib 0` is the start-up both sides share. The benchmark this explains is the cost curve
//! (`benches/scale.rs`, under QEMU, where a few hundred instructions per vCPU show against
//! the hypercalls).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use xenvcpu::cpumap::CpuMap;
use xenvcpu::hypervisor::{
    CpuTopology, DomainInfo, Errno, FeaturesetKind, Hypervisor, PhysInfo, PolicyCallError, RawCpuPolicy, RawPoolInfo,
    RawVcpuInfo, SimConfig, SimDomain, SimHost,
};
use xenvcpu::{AffinityRequest, DomId, Host};

/// The domain pinned.
const DOMID: u32 = 5;

/// The simulator, with the calls a pin repeats per vCPU (and the domain's info) answered
/// from canned data, and counted.
#[derive(Debug)]
struct Cheap {
    sim: SimHost,
    /// The simulator's map size, kept as libxenctrl's backend keeps it.
    size: usize,
    info: DomainInfo,
    calls: Calls,
}

/// The calls a pin makes, counted: both sides must make the same ones.
#[derive(Debug, Default)]
struct Calls {
    /// `domain_info`.
    domain_info: AtomicU64,
    /// `domain_identity`.
    domain_identity: AtomicU64,
    /// `cpupool_info`.
    cpupool_info: AtomicU64,
    /// `get_affinity`.
    get_affinity: AtomicU64,
    /// `set_affinity`.
    set_affinity: AtomicU64,
}

impl Calls {
    /// The counts, in the order of the fields.
    fn counts(&self) -> [u64; 5] {
        [&self.domain_info, &self.domain_identity, &self.cpupool_info, &self.get_affinity, &self.set_affinity]
            .map(|c| c.load(Ordering::Relaxed))
    }

    fn reset(&self) {
        for c in [&self.domain_info, &self.domain_identity, &self.cpupool_info, &self.get_affinity, &self.set_affinity]
        {
            c.store(0, Ordering::Relaxed);
        }
    }
}

fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Hypervisor for Cheap {
    fn cpumap_size(&self) -> usize {
        self.size
    }
    fn physinfo(&self) -> Result<PhysInfo, Errno> {
        self.sim.physinfo()
    }
    fn cpu_topology(&self, out: &mut Vec<CpuTopology>) -> Result<(), Errno> {
        self.sim.cpu_topology(out)
    }
    fn domain_list(&self, first: u32, max: u32, out: &mut Vec<DomainInfo>) -> Result<(), Errno> {
        self.sim.domain_list(first, max, out)
    }
    #[inline(never)]
    fn domain_info(&self, domid: u32) -> Result<Option<DomainInfo>, Errno> {
        count(&self.calls.domain_info);
        match domid {
            DOMID => Ok(Some(black_box(self.info.clone()))),
            _ => self.sim.domain_info(domid),
        }
    }
    #[inline(never)]
    fn domain_identity(&self, _domid: u32) -> Result<Option<([u8; 16], bool)>, Errno> {
        count(&self.calls.domain_identity);
        Ok(Some((black_box(self.info.uuid), false)))
    }
    fn vcpu_info(&self, domid: u32, vcpu: u32) -> Result<RawVcpuInfo, Errno> {
        self.sim.vcpu_info(domid, vcpu)
    }
    #[inline(never)]
    fn get_affinity(&self, _: u32, _: u32, hard: Option<&mut [u8]>, soft: Option<&mut [u8]>) -> Result<(), Errno> {
        count(&self.calls.get_affinity);
        for map in [hard, soft].into_iter().flatten() {
            map.fill(black_box(0x0f));
        }
        Ok(())
    }
    #[inline(never)]
    fn set_affinity(
        &self,
        _: u32,
        _: u32,
        hard: Option<&mut [u8]>,
        soft: Option<&mut [u8]>,
        _: bool,
    ) -> Result<(), Errno> {
        count(&self.calls.set_affinity);
        black_box((hard, soft));
        Ok(())
    }
    fn set_max_vcpus(&self, domid: u32, max: u32) -> Result<(), Errno> {
        self.sim.set_max_vcpus(domid, max)
    }
    fn node_affinity(&self, domid: u32) -> Result<CpuMap, Errno> {
        self.sim.node_affinity(domid)
    }
    fn cpupool_info(&self, first: u32) -> Result<Option<RawPoolInfo>, Errno> {
        count(&self.calls.cpupool_info);
        self.sim.cpupool_info(first)
    }
    fn cpupool_free_cpus(&self) -> Result<CpuMap, Errno> {
        self.sim.cpupool_free_cpus()
    }
    fn cpu_featureset(&self, kind: FeaturesetKind) -> Result<Vec<u32>, PolicyCallError> {
        self.sim.cpu_featureset(kind)
    }
    fn system_cpu_policy(&self, kind: FeaturesetKind) -> Result<RawCpuPolicy, PolicyCallError> {
        self.sim.system_cpu_policy(kind)
    }
    fn domain_cpu_policy(&self, domid: u32) -> Result<RawCpuPolicy, PolicyCallError> {
        self.sim.domain_cpu_policy(domid)
    }
    fn describe(&self) -> String {
        "the simulator with canned per-vCPU answers".into()
    }
}

/// Which side a run measures.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    /// `Domain::pin` of every vCPU.
    Lib,
    /// The backend calls `Domain::pin` makes, made directly.
    Raw,
}

/// `pins` pins of every vCPU of a domain of `vcpus` vCPUs on `side`; returns the calls they
/// made ([`Calls::counts`]).
pub fn run(side: Side, pins: usize, vcpus: u32) -> Result<[u64; 5], Box<dyn std::error::Error>> {
    if !(1..=4096).contains(&vcpus) {
        return Err(format!("VCPUS: 1 to 4096, not {vcpus}").into());
    }
    let sim = SimHost::new(SimConfig::default());
    sim.add_domain(SimDomain { domid: 0, max_vcpus: 4, online: 4, hvm: false });
    sim.add_domain(SimDomain { domid: DOMID, max_vcpus: vcpus, online: vcpus, hvm: false });
    let info = sim.domain_info(DOMID)?.ok_or("the domain just made")?;
    let size = sim.cpumap_size();
    let hv = Arc::new(Cheap { sim, size, info, calls: Calls::default() });
    let host = Host::with_shared_backend(hv.clone())?;
    let dom = host.domain(DomId(DOMID))?;
    let maps: [CpuMap; 2] = ["0-1".parse()?, "2-3".parse()?];
    let bytes = [maps[0].to_libvirt_bytes(size)?, maps[1].to_libvirt_bytes(size)?];
    let uuid = dom.info().uuid;
    let (mut hard, mut soft, mut set) = (vec![0u8; size], vec![0u8; size], vec![0u8; size]);
    hv.calls.reset();
    for i in 0..pins {
        match side {
            Side::Lib => drop(black_box(dom.pin(&dom.all_vcpus(), &AffinityRequest::hard(&maps[i % 2]))?)),
            // What `Domain::pin` calls (benches/scale.rs' raw pin): the domain's info and
            // its pool, every vCPU's maps, then per vCPU the identity check and the write.
            Side::Raw => {
                let info = hv.domain_info(DOMID)?.ok_or("the domain")?;
                black_box(hv.cpupool_info(info.cpupool)?);
                for v in 0..vcpus {
                    hv.get_affinity(DOMID, v, Some(&mut hard), Some(&mut soft))?;
                    black_box((&hard, &soft));
                }
                for v in 0..vcpus {
                    let (now, _) = hv.domain_identity(DOMID)?.ok_or("the domain")?;
                    assert_eq!(now, uuid, "the same domain");
                    set.copy_from_slice(&bytes[i % 2]);
                    hv.set_affinity(DOMID, v, Some(&mut set), None, false)?;
                }
            }
        }
    }
    Ok(hv.calls.counts())
}

#[allow(dead_code)] // the tests include this file for `run`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: pin_overhead lib|raw PINS VCPUS";
    let [side, pins, vcpus] = args.as_slice() else { return Err(usage.into()) };
    let side = match side.as_str() {
        "lib" => Side::Lib,
        "raw" => Side::Raw,
        _ => return Err(usage.into()),
    };
    let pins: usize = pins.parse().map_err(|e| format!("PINS {pins:?}: {e} (a count of pins, 0 or more)"))?;
    let vcpus: u32 = vcpus.parse().map_err(|e| format!("VCPUS {vcpus:?}: {e} (1 to 4096)"))?;
    run(side, pins, vcpus)?;
    Ok(())
}
