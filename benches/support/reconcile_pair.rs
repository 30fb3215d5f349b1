//! The reconcile pair: an agent reconcile (`xenvcpu::agent::reconcile`) of some domains
//! and the raw backend calls it makes, for `reconcile.rs` (the simulator) and `affinity.rs`
//! (the lab guest on real Xen); with a counting backend to check, before measuring, that
//! both sides make the same calls.

// Included by two benches, each of which uses a part.
#![allow(dead_code)]

#[path = "../../tests/support/counting.rs"]
mod counting;

use std::collections::BTreeMap;
use std::hint::black_box;

pub use counting::Counting;
use xenvcpu::agent::reconcile;
use xenvcpu::hypervisor::Hypervisor;
use xenvcpu::placement::{Placement, Resolved};
use xenvcpu::{Domain, Host};

/// What one pass found: vCPUs right, vCPUs re-pinned.
pub type Tally = (usize, usize);

/// The library's side: `reconcile` of every domain.
pub fn lib_pass(domains: &[Domain], policy: &Resolved) -> Tally {
    let mut tally = (0, 0);
    for dom in domains {
        let report = reconcile(dom, policy, false).unwrap();
        assert!(report.ok());
        tally.0 += report.right.count();
        tally.1 += report.changed.len();
        black_box(&report);
    }
    tally
}

/// The raw side's fixed data: the domains as the library's handles know them, and each
/// policy's hard map of each vCPU in Xen's byte layout.
pub struct Raw {
    /// Domain id, uuid, vCPUs.
    domains: Vec<(u32, [u8; 16], u32)>,
    /// Per policy, per vCPU.
    want: [Vec<Vec<u8>>; 2],
}

impl Raw {
    /// For these domain handles and policies, on a host with maps of `size` bytes.
    pub fn new(domains: &[Domain], policies: &[Resolved; 2], size: usize) -> Raw {
        let want = [0, 1].map(|p: usize| {
            policies[p].vcpus.iter().map(|v| v.cpus.to_libvirt_bytes(size).unwrap()).collect::<Vec<_>>()
        });
        Raw { domains: domains.iter().map(|d| (d.id().get(), d.info().uuid, d.max_vcpus())).collect(), want }
    }
}

/// The raw side's buffers, reused by every call.
pub struct Bufs {
    size: usize,
    hard: Vec<u8>,
    set: Vec<u8>,
}

impl Bufs {
    /// Buffers for maps of `size` bytes.
    pub fn new(size: usize) -> Bufs {
        Bufs { size, hard: Vec::new(), set: vec![0; size] }
    }
}

/// The raw side: the calls `reconcile` makes, straight to the backend, with a byte
/// comparison in place of the library's map comparison and no report: per domain every
/// vCPU's hard map, then per vCPU that differs the identity check and the write.
pub fn raw_pass(hv: &dyn Hypervisor, raw: &Raw, policy: usize, b: &mut Bufs) -> Tally {
    let mut tally = (0, 0);
    let size = b.size;
    for &(domid, uuid, vcpus) in &raw.domains {
        b.hard.resize(size * vcpus as usize, 0);
        for (v, hard) in (0..).zip(b.hard.chunks_exact_mut(size)) {
            hv.get_affinity(domid, v, Some(hard), None).unwrap();
        }
        for (v, hard) in (0..vcpus).zip(b.hard.chunks_exact(size)) {
            let want = &raw.want[policy][v as usize];
            if hard == &want[..] {
                tally.0 += 1;
                continue;
            }
            let same = matches!(hv.domain_identity(domid), Ok(Some((u, dying))) if u == uuid && !dying);
            assert!(same, "domain {domid} replaced");
            b.set.copy_from_slice(want);
            hv.set_affinity(domid, v, Some(&mut b.set), None, false).unwrap();
            tally.1 += 1;
        }
    }
    tally
}

/// The two policies: every one of `vcpus` vCPUs on `cpusets[0]` (policy A), or on
/// `cpusets[1]` (policy B).
pub fn policies(host: &Host, vcpus: u32, cpusets: [&str; 2]) -> [Resolved; 2] {
    let info = host.info().unwrap();
    cpusets.map(|set| {
        let xml = format!("<domain><vcpu cpuset='{set}'>{vcpus}</vcpu></domain>");
        Placement::from_xml(&xml).unwrap().resolve(&info, None).unwrap()
    })
}

/// Checks, through `counter` (the backend of the handles `counted` and of `raw`'s calls
/// here), that the library's reconcile and the raw loop make the same calls, method by
/// method and map by map, and see the same state: all right (reads only), then every vCPU
/// re-pinned; and that each side finds right what the other wrote. Leaves every vCPU on
/// policy B. Returns the calls of one pass in each case, for the record.
pub fn check(
    counter: &Counting,
    counted: &[Domain],
    raw: &Raw,
    policies: &[Resolved; 2],
    what: &str,
) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let nm: usize = counted.iter().map(|d| d.max_vcpus() as usize).sum();
    let hv: &dyn Hypervisor = counter;
    let mut b = Bufs::new(counted[0].host().cpumap_size());
    let reads = BTreeMap::from([("get_affinity(hard)".to_string(), nm as u64)]);
    let mut writes = reads.clone();
    writes.insert("domain_info".into(), nm as u64);
    writes.insert("set_affinity(hard)".into(), nm as u64);

    // From whatever the maps are to policy A.
    lib_pass(counted, &policies[0]);
    counter.take();

    // All right: both read only, the same calls.
    assert_eq!(lib_pass(counted, &policies[0]), (nm, 0), "{what}");
    assert_eq!(counter.take(), reads, "{what}: the library's reconcile, all right");
    assert_eq!(raw_pass(hv, raw, 0, &mut b), (nm, 0), "{what}");
    assert_eq!(counter.take(), reads, "{what}: the raw calls, all right");

    // Every vCPU re-pinned: the same calls.
    assert_eq!(lib_pass(counted, &policies[1]), (0, nm), "{what}");
    assert_eq!(counter.take(), writes, "{what}: the library's reconcile, every vCPU re-pinned");
    assert_eq!(raw_pass(hv, raw, 0, &mut b), (0, nm), "{what}");
    assert_eq!(counter.take(), writes, "{what}: the raw calls, every vCPU re-pinned");

    // Each side finds right what the other wrote.
    assert_eq!(lib_pass(counted, &policies[0]), (nm, 0), "{what}");
    assert_eq!(raw_pass(hv, raw, 1, &mut b), (0, nm), "{what}");
    assert_eq!(lib_pass(counted, &policies[1]), (nm, 0), "{what}");
    counter.take();
    (reads, writes)
}
