//! Affinity updates and vCPU listing on real Xen, each against its floor, in one run.
//!
//! Runs inside the lab's dom0 (`tests/lab/lab.sh bench`), on the lab guest's vCPU 0:
//! - `update/api`: `Domain::set_affinity_into`, the library's hot path (a);
//! - `update/raw`: `xc_vcpu_setaffinity` through xen-sys in a tight loop, the floor of
//!   the FFI path (b);
//! - `update/xl`: one `xl vcpu-pin` process per update, what admin scripts do (c);
//! - `list/api`: `Domain::vcpus()` for every vCPU of the guest, against `list/raw`: the
//!   `xc_vcpu_getinfo` + `xc_vcpu_getaffinity` calls it makes, raw;
//! - `reconcile/right` and `reconcile/repin`: an agent reconcile of the guest
//!   (`xenvcpu::agent::reconcile`) when every vCPU is already on its policy, and when every
//!   vCPU must be re-pinned, each against the backend calls it makes through the
//!   `Hypervisor` trait object (`support/reconcile_pair.rs`, also behind
//!   `benches/reconcile.rs` on the simulator; the calls of both sides are counted and
//!   compared first).
//!
//! api and raw (for updates and for the list) are measured in pairs (`support/paired.rs`):
//! blocks of the two alternate and both are timed, so drift of the emulated machine hits
//! both alike, and the headline ratio (a)/(b) is the median over the pairs of blocks of all
//! of criterion's samples. An update block is two calls, hard affinity all CPUs then CPU 0
//! (chosen by the call's place in its block, which both sides share), so each side's block
//! makes the same two changes from the same starting map. At the end it prints the paired
//! ratios with the number of pairs, and (c)/(a) from criterion's medians of this run. Times
//! under QEMU's software emulation are only meaningful as ratios. Without privcmd, the lab
//! guest or a working libxenctrl it fails (exit 1): it has nothing to measure there, and a
//! plain `cargo bench` on a host without Xen fails with it (benches/README.md).

#![allow(missing_docs)]

use std::hint::black_box;
use std::process::Command;
use std::ptr;
use std::time::Duration;

use criterion::Criterion;
use xen_sys::{Interface, XEN_VCPUAFFINITY_HARD, XEN_VCPUAFFINITY_SOFT};
use xenvcpu::cpumap::CpuMap;
use xenvcpu::hypervisor::XenCtrlBackend;
use xenvcpu::{AffinityRequest, DomId, Effective, Host, VcpuId};

#[path = "support/criterion_data.rs"]
mod criterion_data;
#[path = "support/paired.rs"]
mod paired;
#[path = "support/pairing.rs"]
mod pairing;
#[path = "support/reconcile_pair.rs"]
mod reconcile_pair;

use paired::paired;

/// Calls per block of an update pair: all CPUs, then CPU 0.
const UPDATE_BLOCK: u64 = 2;

/// Says why the bench cannot run and exits 1: a bench that measured nothing must not pass.
fn fail(why: impl std::fmt::Display) -> ! {
    eprintln!("affinity bench: {why}");
    eprintln!("affinity bench: it needs real Xen and the lab guest: run tests/lab/lab.sh bench");
    std::process::exit(1);
}

fn main() {
    criterion_data::mark_start();
    let domid: u32 = match std::env::var("XENVCPU_LAB_GUEST_DOMID") {
        Ok(v) => v.parse().unwrap_or_else(|_| fail(format!("XENVCPU_LAB_GUEST_DOMID={v:?} is not a domain id"))),
        Err(_) => fail("XENVCPU_LAB_GUEST_DOMID is not set (no lab guest)"),
    };
    if !xen_sys::privcmd_present() {
        fail("no /dev/xen/privcmd (not in a Xen dom0)");
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    let host = Host::open().unwrap_or_else(|e| fail(format!("cannot open Xen: {e}")));
    let dom = host.domain(DomId(domid)).unwrap_or_else(|e| fail(format!("no guest domain {domid}: {e}")));
    let saved = dom.vcpu_info(VcpuId(0)).unwrap_or_else(|e| fail(format!("guest {domid} vCPU 0: {e}")));
    // The k-th call of an update block sets maps[k % 2], on both sides of a pair.
    let maps = [CpuMap::all(host.nr_cpus()), CpuMap::from_iter([0])];

    let iface = Interface::open().unwrap_or_else(|e| fail(format!("cannot open libxenctrl: {e}")));
    let lib = iface.lib();
    let size = host.cpumap_size();
    let raw_maps: Vec<Vec<u8>> = maps.iter().map(|m| m.to_libvirt_bytes(size).unwrap()).collect();
    let mut eff = Effective { hard: Some(CpuMap::with_capacity(host.nr_cpus())), soft: None };
    let mut buf = vec![0u8; size];
    let mut api_update =
        |i: usize| dom.set_affinity_into(VcpuId(0), &AffinityRequest::hard(&maps[i % 2]), &mut eff).unwrap();
    let mut raw_update = |i: usize| {
        buf.copy_from_slice(&raw_maps[i % 2]);
        // SAFETY: the handle is open; `buf` is exactly xc_get_cpumap_size() bytes, the
        // length libxenctrl reads and writes back; the soft map is null with its flag clear.
        let ret = unsafe {
            (lib.xc_vcpu_setaffinity)(
                iface.as_ptr(),
                domid,
                0,
                buf.as_mut_ptr(),
                ptr::null_mut(),
                XEN_VCPUAFFINITY_HARD,
            )
        };
        assert_eq!(ret, 0);
    };

    // api and raw are measured in pairs of blocks of two updates (all CPUs, then CPU 0):
    // both sides make the same two changes, and slow drift of the emulated machine affects
    // both alike. `raw` is the same pairing the other way round, for criterion's own
    // median of the raw path.
    let mut group = c.benchmark_group("update");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("api", |b| {
        paired(b, "update/api", UPDATE_BLOCK, &mut (), |_, k| api_update(k), |_, k| raw_update(k))
    });
    group.bench_function("raw", |b| {
        paired(b, "update/raw", UPDATE_BLOCK, &mut (), |_, k| raw_update(k), |_, k| api_update(k))
    });

    group.sample_size(10).measurement_time(Duration::from_secs(5));
    let lists = ["all".to_string(), "0".to_string()];
    let mut i = 0usize;
    group.bench_function("xl", |b| {
        b.iter(|| {
            i += 1;
            let status =
                Command::new("xl").args(["vcpu-pin", &domid.to_string(), "0", &lists[i % 2]]).status().unwrap();
            assert!(status.success());
        })
    });
    group.finish();

    let (mut hard, mut soft) = (vec![0u8; size], vec![0u8; size]);
    let api_list = || drop(black_box(dom.vcpus().unwrap()));
    let mut raw_list = || {
        for v in 0..dom.max_vcpus() {
            let mut info = xen_sys::xc_vcpuinfo_t::default();
            // SAFETY: the handle is open; `info` is a writable xc_vcpuinfo_t and the maps
            // are exactly xc_get_cpumap_size() bytes, as libxenctrl writes them.
            unsafe {
                assert_eq!((lib.xc_vcpu_getinfo)(iface.as_ptr(), domid, v, &mut info), 0);
                let flags = XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT;
                let (h, s) = (hard.as_mut_ptr(), soft.as_mut_ptr());
                assert_eq!((lib.xc_vcpu_getaffinity)(iface.as_ptr(), domid, v as i32, h, s, flags), 0);
            }
            black_box((&info, &hard, &soft));
        }
    };
    let mut group = c.benchmark_group("list");
    group.sample_size(20).measurement_time(Duration::from_secs(3));
    group.bench_function("api", |b| paired(b, "list/api", 1, &mut (), |_, _| api_list(), |_, _| raw_list()));
    group.bench_function("raw", |b| paired(b, "list/raw", 1, &mut (), |_, _| raw_list(), |_, _| api_list()));
    group.finish();

    dom.set_affinity(VcpuId(0), &AffinityRequest::both(&saved.hard, &saved.soft).forced()).expect("restore");

    reconcile_guest(&mut c, &host, &dom);
    c.final_summary();
    report();
}

/// An agent reconcile of the guest against the backend calls it makes (policy A: CPUs
/// 0-1, B: 2-3, every vCPU), all right and every vCPU re-pinned; every vCPU's maps are
/// restored after.
fn reconcile_guest(c: &mut Criterion, host: &Host, dom: &xenvcpu::Domain) {
    use reconcile_pair::{lib_pass, raw_pass, Bufs, Counting, Raw};

    let saved = dom.vcpus().unwrap_or_else(|e| fail(format!("guest vCPUs: {e}")));
    let backend = XenCtrlBackend::open().unwrap_or_else(|e| fail(format!("cannot open Xen: {e}")));
    let counter = Counting::new(std::sync::Arc::new(backend));
    let counted = Host::with_shared_backend(counter.clone()).unwrap_or_else(|e| fail(format!("cannot open Xen: {e}")));
    let counted_dom = [counted.domain(dom.id()).unwrap_or_else(|e| fail(format!("guest: {e}")))];
    let domains = [dom.clone()];
    let policies = reconcile_pair::policies(host, dom.max_vcpus(), ["0-1", "2-3"]);
    let size = host.cpumap_size();
    let raw_counted = Raw::new(&counted_dom, &policies, size);
    let (reads, writes) = reconcile_pair::check(&counter, &counted_dom, &raw_counted, &policies, "lab guest");
    println!(
        "reconcile of the guest: per pass, all right: {reads:?}; re-pinning every vCPU: {writes:?} (library = raw)"
    );

    // Every vCPU is on policy B (`check`): `right` keeps it there; `repin` alternates A,
    // B in blocks of two on both sides.
    let raw = Raw::new(&domains, &policies, size);
    let hv = host.hypervisor();
    let nm = dom.max_vcpus() as usize;
    let mut b = Bufs::new(size);
    let mut group = c.benchmark_group("reconcile");
    group.sample_size(20).measurement_time(Duration::from_secs(3));
    group.bench_function("right", |bch| {
        paired(
            bch,
            "reconcile/right",
            2,
            &mut b,
            |_, _| assert_eq!(lib_pass(&domains, &policies[1]), (nm, 0)),
            |b, _| assert_eq!(raw_pass(hv, &raw, 1, b), (nm, 0)),
        )
    });
    group.bench_function("repin", |bch| {
        paired(
            bch,
            "reconcile/repin",
            2,
            &mut b,
            |_, k| assert_eq!(lib_pass(&domains, &policies[k % 2]), (0, nm)),
            |b, k| assert_eq!(raw_pass(hv, &raw, k % 2, b), (0, nm)),
        )
    });
    group.finish();
    for v in &saved {
        let req = AffinityRequest::both(&v.hard, &v.soft).forced();
        dom.set_affinity(v.vcpu, &req).unwrap_or_else(|e| fail(format!("restore vCPU {}: {e}", v.vcpu)));
    }
}

fn report() {
    let dir = criterion_data::criterion_dir();
    let get = |group: &str, f: &str| criterion_data::median_ns(&dir, group, f, "");
    let (api, raw, xl) = (get("update", "api"), get("update", "raw"), get("update", "xl"));
    let (list_api, list_raw) = (get("list", "api"), get("list", "raw"));
    println!("\naffinity bench (medians of this run, under QEMU TCG: compare ratios only):");
    for (label, what) in [
        ("update/api", "update api/raw"),
        ("list/api", "list api/raw"),
        ("reconcile/right", "reconcile (all right) / raw calls"),
        ("reconcile/repin", "reconcile (every vCPU re-pinned) / raw calls"),
    ] {
        if let Some(p) = paired::stats(label) {
            println!(
                "  {what}, paired: median of per-pair ratios {:.3}; medians {:.1} / {:.1} µs per call = {:.3} \
                 ({} pairs of blocks of {} calls, criterion's samples)",
                p.ratio,
                p.own_ns / 1e3,
                p.baseline_ns / 1e3,
                p.own_ns / p.baseline_ns,
                p.pairs,
                p.block,
            );
        }
    }
    if let (Some(api), Some(raw)) = (api, raw) {
        println!(
            "  update, unpaired medians: api {:.1} µs, raw libxenctrl {:.1} µs: api/raw = {:.3}",
            api / 1e3,
            raw / 1e3,
            api / raw
        );
    }
    if let (Some(api), Some(xl)) = (api, xl) {
        println!("  update: xl vcpu-pin process {:.1} ms: xl/api = {:.0}", xl / 1e6, xl / api);
    }
    if let (Some(a), Some(r)) = (list_api, list_raw) {
        println!(
            "  list of all vCPUs, unpaired medians: api {:.1} µs, raw calls {:.1} µs: api/raw = {:.3}",
            a / 1e3,
            r / 1e3,
            a / r
        );
    }
}
