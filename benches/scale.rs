//! The cost curve on real Xen: listing, pinning and reconciling 1 to 64 vCPUs and 1 to 8
//! domains, each against the raw calls it makes, in one run.
//!
//! Runs inside the lab's dom0, in the bigger lab (`tests/lab/lab.sh bench`, after
//! `benches/affinity.rs`), over the scale guests `tests/lab/dom0-init.sh` makes
//! (`XENVCPU_LAB_SCALE_GUESTS`): one domain of 1, 4 (`labguest`), 16 and 64 vCPUs, and 2, 4
//! and 8 domains of 4 vCPUs (`labguest`, `fleet2`..`fleet8`). For each case:
//! - `list`: `Domain::vcpus` of each domain, against `xc_vcpu_getinfo` +
//!   `xc_vcpu_getaffinity` (hard and soft) per vCPU through xen-sys;
//! - `list_into`: `Domain::vcpus_into`, the allocation-light listing, against the same;
//! - `pin`: `Domain::pin` of every vCPU of each domain (hard map 0-1, then 2-3), against the
//!   calls it makes: the domain's info and its cpupool (the pool check), each vCPU's maps
//!   (kept for a rollback), then per vCPU the domain's info (the identity check) and
//!   `xc_vcpu_setaffinity`;
//! - `reconcile_right` / `reconcile_repin`: `xenvcpu::agent::reconcile` of each domain when
//!   all is right and when every vCPU is re-pinned, against the backend calls it makes
//!   (`support/reconcile_pair.rs`, as in `affinity.rs`);
//! - `pin_aa`, a control: the raw pin against itself, measured the same way. Its ratio is
//!   what the method reads where there is no difference: how far from 1.000 a ratio can
//!   land by noise or by the order of the blocks alone;
//! - `xl_list` / `xl_pin`: `xl vcpu-list` of the case's domains (one process), and one
//!   `xl vcpu-pin NAME all MAP` process per domain.
//!
//! Before measuring, a counting backend checks that the library's list, pin and reconcile
//! make exactly the calls their raw sides make. Library and raw are paired
//! (`support/paired.rs`); xl is timed by criterion alone. At the end it prints a Markdown
//! table (per case: total and per-vCPU times, ratios, pairs) and an SVG plot of time per
//! vCPU against vCPUs, each between `@@FILE name` / `@@END` lines that `lab.sh bench` saves
//! under `target/lab-bench/`. Without the scale guests or privcmd it fails (exit 1): it has
//! nothing to measure there.

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use xen_sys::{Interface, XEN_VCPUAFFINITY_HARD, XEN_VCPUAFFINITY_SOFT};
use xenvcpu::cpumap::CpuMap;
use xenvcpu::hypervisor::XenCtrlBackend;
use xenvcpu::{AffinityRequest, Domain, Host, VcpuInfo};

#[path = "support/criterion_data.rs"]
mod criterion_data;
#[path = "support/paired.rs"]
mod paired;
#[path = "support/pairing.rs"]
mod pairing;
#[path = "support/reconcile_pair.rs"]
mod reconcile_pair;

use paired::paired;
use reconcile_pair::{lib_pass, raw_pass, Bufs, Counting, Raw};

/// The two maps every pin alternates between, and the reconcile's two policies.
const MAPS: [&str; 2] = ["0-1", "2-3"];

/// The operations measured in pairs, in table order.
const PAIRED: [&str; 6] = ["list", "list_into", "pin", "pin_aa", "reconcile_right", "reconcile_repin"];

fn fail(why: impl std::fmt::Display) -> ! {
    eprintln!("scale bench: {why}");
    eprintln!("scale bench: it needs real Xen and the bigger lab's guests: run tests/lab/lab.sh bench");
    std::process::exit(1);
}

/// One point of the curve: some domains of the same number of vCPUs.
struct Case {
    /// `domains × vCPUs`, e.g. `1x64`.
    label: String,
    names: Vec<String>,
    doms: Vec<Domain>,
    /// On the vCPU axis (one domain) or the domain axis (4-vCPU domains).
    by_vcpus: bool,
}

impl Case {
    fn new(host: &Host, names: &[&str], by_vcpus: bool) -> Case {
        let doms: Vec<Domain> = names
            .iter()
            .map(|n| host.domain_by_name(n).unwrap_or_else(|e| fail(format!("no scale guest {n}: {e}"))))
            .collect();
        let per = doms[0].max_vcpus();
        assert!(doms.iter().all(|d| d.max_vcpus() == per), "{names:?}: one vCPU count per case");
        Case {
            label: format!("{}x{per}", doms.len()),
            names: names.iter().map(|n| n.to_string()).collect(),
            doms,
            by_vcpus,
        }
    }

    fn vcpus(&self) -> u32 {
        self.doms.iter().map(Domain::max_vcpus).sum()
    }
}

/// The raw side's handle and buffers.
struct RawXen {
    iface: Interface,
    hard: Vec<u8>,
    soft: Vec<u8>,
    /// Each map of `MAPS` in Xen's byte layout.
    maps: [Vec<u8>; 2],
    set: Vec<u8>,
}

impl RawXen {
    /// `xc_vcpu_getinfo` and `xc_vcpu_getaffinity` (hard and soft) of every vCPU: what
    /// `Domain::vcpus` calls.
    fn list(&mut self, doms: &[Domain]) {
        let (lib, xch) = (self.iface.lib(), self.iface.as_ptr());
        for dom in doms {
            for v in 0..dom.max_vcpus() {
                let mut info = xen_sys::xc_vcpuinfo_t::default();
                // SAFETY: the handle is open; `info` is a writable xc_vcpuinfo_t and both maps
                // are exactly xc_get_cpumap_size() bytes, as libxenctrl writes them.
                unsafe {
                    assert_eq!((lib.xc_vcpu_getinfo)(xch, dom.id().get(), v, &mut info), 0);
                    let flags = XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT;
                    let (h, s) = (self.hard.as_mut_ptr(), self.soft.as_mut_ptr());
                    assert_eq!((lib.xc_vcpu_getaffinity)(xch, dom.id().get(), v as i32, h, s, flags), 0);
                }
                black_box((&info, &self.hard, &self.soft));
            }
        }
    }

    /// The calls `Domain::pin` of every vCPU to `MAPS[map]` makes, per domain: its info and
    /// its cpupool's (the pool check), every vCPU's maps (kept for a rollback), then per
    /// vCPU the domain's info (the identity check) and the hard map set.
    fn pin(&mut self, doms: &[Domain], map: usize) {
        let (lib, xch) = (self.iface.lib(), self.iface.as_ptr());
        for dom in doms {
            let domid = dom.id().get();
            // SAFETY: the handle is open for both calls; the map size is the host's.
            let pool = unsafe {
                let info = xen_sys::getinfo_one(lib, xch, domid).unwrap().expect("the domain");
                xen_sys::cpupool_info(lib, xch, info.cpupool, self.hard.len()).unwrap().expect("its pool")
            };
            black_box(&pool);
            for v in 0..dom.max_vcpus() {
                let flags = XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT;
                let (h, s) = (self.hard.as_mut_ptr(), self.soft.as_mut_ptr());
                // SAFETY: the handle is open; both maps are exactly xc_get_cpumap_size()
                // bytes, as libxenctrl writes them.
                assert_eq!(unsafe { (lib.xc_vcpu_getaffinity)(xch, domid, v as i32, h, s, flags) }, 0);
                black_box((&self.hard, &self.soft));
            }
            for v in 0..dom.max_vcpus() {
                // SAFETY: as above.
                let same = unsafe { xen_sys::getinfo_one(lib, xch, domid) }.unwrap();
                assert!(same.is_some_and(|i| i.handle == dom.info().uuid), "domain {domid} replaced");
                self.set.copy_from_slice(&self.maps[map]);
                // SAFETY: the handle is open; `set` is exactly xc_get_cpumap_size() bytes, the
                // length libxenctrl reads and writes back; no soft map, its flag clear.
                let ret = unsafe {
                    (lib.xc_vcpu_setaffinity)(
                        xch,
                        domid,
                        v as i32,
                        self.set.as_mut_ptr(),
                        std::ptr::null_mut(),
                        XEN_VCPUAFFINITY_HARD,
                    )
                };
                assert_eq!(ret, 0);
            }
        }
    }
}

fn lib_pin(doms: &[Domain], map: &CpuMap) {
    for dom in doms {
        black_box(dom.pin(&dom.all_vcpus(), &AffinityRequest::hard(map)).unwrap());
    }
}

/// Checks through a counting backend that the library's list and pin of `case` make the
/// calls `RawXen::list` and `RawXen::pin` make (read off their code: the raw side calls
/// libxenctrl directly), and its reconcile those of `raw_pass` (counted too).
fn check_calls(case: &Case, maps: &[CpuMap; 2], policies: &[xenvcpu::placement::Resolved; 2]) {
    let backend = XenCtrlBackend::open().unwrap_or_else(|e| fail(format!("cannot open Xen: {e}")));
    let counter = Counting::new(Arc::new(backend));
    let host = Host::with_shared_backend(counter.clone()).unwrap_or_else(|e| fail(format!("cannot open Xen: {e}")));
    let doms: Vec<Domain> = case.doms.iter().map(|d| host.domain(d.id()).unwrap()).collect();
    let (n, nm) = (doms.len() as u64, u64::from(case.vcpus()));
    let reads = BTreeMap::from([("get_affinity(hard, soft)".to_string(), nm), ("vcpu_info".to_string(), nm)]);
    counter.take();
    for dom in &doms {
        black_box(dom.vcpus().unwrap());
    }
    assert_eq!(counter.take(), reads, "{}: Domain::vcpus", case.label);
    let mut bufs: Vec<Vec<VcpuInfo>> = vec![Vec::new(); doms.len()];
    for (dom, buf) in doms.iter().zip(&mut bufs) {
        dom.vcpus_into(buf).unwrap();
    }
    assert_eq!(counter.take(), reads, "{}: Domain::vcpus_into", case.label);
    lib_pin(&doms, &maps[0]);
    let mut pin = BTreeMap::from([("get_affinity(hard, soft)".to_string(), nm)]);
    pin.insert("domain_info".into(), n + nm);
    pin.insert("cpupool_info".into(), n);
    pin.insert("set_affinity(hard)".into(), nm);
    assert_eq!(counter.take(), pin, "{}: Domain::pin of every vCPU", case.label);
    let raw = Raw::new(&doms, policies, host.cpumap_size());
    let calls = reconcile_pair::check(&counter, &doms, &raw, policies, &case.label);
    println!("{}: calls per pass: list {reads:?}; pin {pin:?}; reconcile {calls:?}", case.label);
}

/// One paired measurement: criterion's group `op` (id `side`/`label`), its pairs kept under
/// `op/label`, the key [`cell`] reads them back by.
#[allow(clippy::too_many_arguments)]
fn measure<S: ?Sized>(
    c: &mut Criterion,
    op: &str,
    side: &str,
    label: &str,
    block: u64,
    state: &mut S,
    mut own: impl FnMut(&mut S, usize),
    mut baseline: impl FnMut(&mut S, usize),
) {
    let mut group = c.benchmark_group(op);
    // The pin goal (≤ 1.05×) is the tightest, and a pin of many vCPUs gets few pairs in
    // criterion's default time: its pairs and its control's get three times as long.
    if matches!(op, "pin" | "pin_aa") {
        group.measurement_time(Duration::from_secs(6));
    }
    group.bench_function(BenchmarkId::new(side, label), |b| {
        paired(b, &format!("{op}/{label}"), block, state, &mut own, &mut baseline)
    });
    group.finish();
}

fn bench_case(c: &mut Criterion, host: &Host, raw: &mut RawXen, case: &Case) {
    let maps = MAPS.map(|m| m.parse::<CpuMap>().unwrap());
    let per = case.doms[0].max_vcpus();
    let policies = reconcile_pair::policies(host, per, MAPS);
    check_calls(case, &maps, &policies);
    let doms = &case.doms;
    let label = &case.label;
    let nm = case.vcpus() as usize;

    measure(
        c,
        "list",
        "api",
        label,
        1,
        raw,
        |_, _| doms.iter().for_each(|d| drop(black_box(d.vcpus().unwrap()))),
        |r, _| r.list(doms),
    );
    let mut bufs: Vec<Vec<VcpuInfo>> = vec![Vec::new(); doms.len()];
    measure(
        c,
        "list_into",
        "api",
        label,
        1,
        raw,
        |_, _| doms.iter().zip(&mut bufs).for_each(|(d, buf)| d.vcpus_into(black_box(buf)).unwrap()),
        |r, _| r.list(doms),
    );
    measure(c, "pin", "api", label, 2, raw, |_, k| lib_pin(doms, &maps[k % 2]), |r, k| r.pin(doms, k % 2));
    measure(c, "pin_aa", "raw", label, 2, raw, |r, k| r.pin(doms, k % 2), |r, k| r.pin(doms, k % 2));

    // reconcile: every vCPU on policy B first (the pin above ended on MAPS[1], which is B's
    // map: this pass finds them all right).
    let raw_rec = Raw::new(doms, &policies, host.cpumap_size());
    let hv = host.hypervisor();
    let mut b = Bufs::new(host.cpumap_size());
    assert_eq!(lib_pass(doms, &policies[1]), (nm, 0), "{label}: every vCPU on policy B before measuring");
    measure(
        c,
        "reconcile_right",
        "api",
        label,
        2,
        &mut b,
        |_, _| assert_eq!(lib_pass(doms, &policies[1]), (nm, 0)),
        |b, _| assert_eq!(raw_pass(hv, &raw_rec, 1, b), (nm, 0)),
    );
    measure(
        c,
        "reconcile_repin",
        "api",
        label,
        2,
        &mut b,
        |_, k| assert_eq!(lib_pass(doms, &policies[k % 2]), (0, nm)),
        |b, k| assert_eq!(raw_pass(hv, &raw_rec, k % 2, b), (0, nm)),
    );

    // xl, one process per command, as scripts use it.
    let names: Vec<&str> = case.names.iter().map(String::as_str).collect();
    let mut group = c.benchmark_group("xl_list");
    group.bench_function(BenchmarkId::new("xl", label), |b| {
        b.iter(|| {
            let out = Command::new("xl").arg("vcpu-list").args(&names).output().unwrap();
            assert!(out.status.success());
            assert_eq!(out.stdout.iter().filter(|&&c| c == b'\n').count(), nm + 1);
        })
    });
    group.finish();
    let mut i = 0usize;
    let mut group = c.benchmark_group("xl_pin");
    group.bench_function(BenchmarkId::new("xl", label), |b| {
        b.iter(|| {
            i += 1;
            for name in &names {
                let status = Command::new("xl").args(["vcpu-pin", name, "all", MAPS[i % 2]]).status().unwrap();
                assert!(status.success());
            }
        })
    });
    group.finish();
}

fn main() {
    criterion_data::mark_start();
    if std::env::var("XENVCPU_LAB_SCALE").as_deref() != Ok("1") {
        fail("XENVCPU_LAB_SCALE is not set (not the bigger lab)");
    }
    if !xen_sys::privcmd_present() {
        fail("no /dev/xen/privcmd (not in a Xen dom0)");
    }
    let host = Host::open().unwrap_or_else(|e| fail(format!("cannot open Xen: {e}")));
    let iface = Interface::open().unwrap_or_else(|e| fail(format!("cannot open libxenctrl: {e}")));
    let size = host.cpumap_size();
    let mut raw = RawXen {
        iface,
        hard: vec![0; size],
        soft: vec![0; size],
        maps: MAPS.map(|m| m.parse::<CpuMap>().unwrap().to_libvirt_bytes(size).unwrap()),
        set: vec![0; size],
    };
    let fleet = ["labguest", "fleet2", "fleet3", "fleet4", "fleet5", "fleet6", "fleet7", "fleet8"];
    let cases = [
        Case::new(&host, &["scale1"], true),
        Case::new(&host, &fleet[..1], true),
        Case::new(&host, &["scale16"], true),
        Case::new(&host, &["scale64"], true),
        Case::new(&host, &fleet[..2], false),
        Case::new(&host, &fleet[..4], false),
        Case::new(&host, &fleet[..8], false),
    ];
    let saved: Vec<(Domain, Vec<VcpuInfo>)> =
        cases.iter().flat_map(|c| c.doms.iter()).map(|d| (d.clone(), d.vcpus().unwrap())).collect();

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
        .configure_from_args();
    for case in &cases {
        bench_case(&mut c, &host, &mut raw, case);
    }
    c.final_summary();

    for (dom, vcpus) in &saved {
        let (_, failures) = dom.restore_affinity(vcpus);
        assert!(failures.is_empty(), "restoring domain {}: {failures:?}", dom.id());
    }
    report(&cases);
}

/// One cell: the library's time per call, the raw side's, their paired ratio, the pairs.
struct Cell {
    own_ns: f64,
    raw_ns: f64,
    ratio: f64,
    pairs: usize,
}

fn cell(op: &str, case: &Case) -> Option<Cell> {
    paired::stats(&format!("{op}/{}", case.label)).map(|p| Cell {
        own_ns: p.own_ns,
        raw_ns: p.baseline_ns,
        ratio: p.ratio,
        pairs: p.pairs,
    })
}

fn report(cases: &[Case]) {
    let dir = criterion_data::criterion_dir();
    let xl = |group: &str, case: &Case| criterion_data::median_ns(&dir, group, "xl", &case.label);
    let mut md = String::new();
    md.push_str(
        "| operation | domains × vCPUs | vCPUs | library | raw calls | per vCPU: library; raw | library / raw, paired | pairs | xl | xl / library |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for op in PAIRED {
        for case in cases {
            let Some(c) = cell(op, case) else { continue };
            let n = f64::from(case.vcpus());
            let xl_ns = match op {
                "list" => xl("xl_list", case),
                "pin" => xl("xl_pin", case),
                _ => None,
            };
            let (xl_cell, xl_ratio) = match xl_ns {
                Some(t) => (format!("{:.1} ms", t / 1e6), format!("{:.0}", t / c.own_ns)),
                None => ("–".into(), "–".into()),
            };
            let _ = writeln!(
                md,
                "| {} | {} × {} | {} | {} | {} | {}; {} | **{:.3}** | {} | {xl_cell} | {xl_ratio} |",
                if op == "pin_aa" { "pin_aa (control: raw in both columns)" } else { op },
                case.doms.len(),
                case.doms[0].max_vcpus(),
                case.vcpus(),
                time(c.own_ns),
                time(c.raw_ns),
                time(c.own_ns / n),
                time(c.raw_ns / n),
                c.ratio,
                c.pairs,
            );
        }
    }
    println!("\nscale bench (paired medians of this run, under QEMU TCG: compare ratios only):\n\n{md}");
    println!("@@FILE scale-report.md\n{md}@@END");
    println!("@@FILE scale-report.svg\n{}@@END", plot(cases));
}

fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

/// Two panels, time per vCPU (log) against vCPUs (log): one domain of 1–64 vCPUs, and 1–8
/// domains of 4 vCPUs; a line per operation, solid for the library, dashed for its raw
/// calls.
fn plot(cases: &[Case]) -> String {
    const SERIES: [(&str, &str); 4] =
        [("list", "#1f77b4"), ("pin", "#d62728"), ("reconcile_right", "#2ca02c"), ("reconcile_repin", "#9467bd")];
    let (pw, ph, margin) = (330.0, 260.0, 60.0);
    let (width, height) = (2.0 * (pw + margin) + 20.0, ph + 150.0);
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif' font-size='11'>\n\
         <rect width='100%' height='100%' fill='white'/>\n\
         <text x='{}' y='18' text-anchor='middle' font-size='14'>time per vCPU (paired medians, Xen under QEMU TCG) vs vCPUs</text>\n",
        width / 2.0
    );
    let per_vcpu: Vec<f64> = cases
        .iter()
        .flat_map(|c| SERIES.iter().filter_map(move |(op, _)| cell(op, c).map(|x| (x, c))))
        .flat_map(|(x, c)| [x.own_ns / f64::from(c.vcpus()), x.raw_ns / f64::from(c.vcpus())])
        .collect();
    let lo = per_vcpu.iter().copied().fold(f64::INFINITY, f64::min).max(1.0).log10().floor();
    let hi = per_vcpu.iter().copied().fold(0.0, f64::max).max(10.0).log10().ceil().max(lo + 1.0);
    for (panel, (by_vcpus, title)) in
        [(true, "one domain of N vCPUs"), (false, "N/4 domains of 4 vCPUs")].iter().enumerate()
    {
        let ox = margin + panel as f64 * (pw + margin);
        let oy = 40.0;
        let mine: Vec<&Case> = if *by_vcpus {
            cases.iter().filter(|c| c.by_vcpus).collect()
        } else {
            cases.iter().filter(|c| !c.by_vcpus || c.label == "1x4").collect()
        };
        let xs: Vec<f64> = mine.iter().map(|c| f64::from(c.vcpus())).collect();
        let (xmin, xmax) = (xs.iter().copied().fold(f64::INFINITY, f64::min), xs.iter().copied().fold(0.0, f64::max));
        let (xmin, xmax) = (xmin.log2(), xmax.log2().max(xmin.log2() + 1.0));
        let x = |n: f64| ox + (n.log2() - xmin) / (xmax - xmin) * pw;
        let y = |ns: f64| oy + ph - (ns.max(1.0).log10() - lo) / (hi - lo) * ph;
        let _ = writeln!(svg, "<rect x='{ox}' y='{oy}' width='{pw}' height='{ph}' fill='none' stroke='#999'/>");
        let _ = writeln!(
            svg,
            "<text x='{}' y='{}' text-anchor='middle' font-weight='bold'>{title}</text>",
            ox + pw / 2.0,
            oy - 6.0
        );
        for e in lo as i32..=hi as i32 {
            let yy = y(10f64.powi(e));
            let label = match e {
                0..=2 => format!("{} ns", 10i64.pow(e as u32)),
                3..=5 => format!("{} µs", 10i64.pow(e as u32 - 3)),
                _ => format!("{} ms", 10i64.pow((e - 6).max(0) as u32)),
            };
            let _ = writeln!(svg, "<line x1='{ox}' x2='{}' y1='{yy}' y2='{yy}' stroke='#eee'/>", ox + pw);
            let _ = writeln!(svg, "<text x='{}' y='{}' text-anchor='end'>{label}</text>", ox - 4.0, yy + 4.0);
        }
        for c in &mine {
            let xx = x(f64::from(c.vcpus()));
            let _ = writeln!(svg, "<text x='{xx}' y='{}' text-anchor='middle'>{}</text>", oy + ph + 14.0, c.vcpus());
        }
        let _ = writeln!(svg, "<text x='{}' y='{}' text-anchor='middle'>vCPUs</text>", ox + pw / 2.0, oy + ph + 30.0);
        for (op, color) in SERIES {
            for (own, dash) in [(true, ""), (false, " stroke-dasharray='5,4'")] {
                let points: Vec<String> = mine
                    .iter()
                    .filter_map(|c| {
                        let cl = cell(op, c)?;
                        let t = if own { cl.own_ns } else { cl.raw_ns } / f64::from(c.vcpus());
                        Some(format!("{:.1},{:.1}", x(f64::from(c.vcpus())), y(t)))
                    })
                    .collect();
                let _ = writeln!(
                    svg,
                    "<polyline fill='none' stroke='{color}' stroke-width='2'{dash} points='{}'/>",
                    points.join(" ")
                );
            }
        }
    }
    for (k, (op, color)) in SERIES.iter().enumerate() {
        let (lx, ly) = (margin + k as f64 * 175.0, height - 40.0);
        let _ =
            writeln!(svg, "<line x1='{lx}' x2='{}' y1='{ly}' y2='{ly}' stroke='{color}' stroke-width='3'/>", lx + 20.0);
        let _ = writeln!(svg, "<text x='{}' y='{}'>{op}</text>", lx + 25.0, ly + 4.0);
    }
    let _ = writeln!(
        svg,
        "<text x='{margin}' y='{}'>solid: the library; dashed: the raw calls it makes</text>",
        height - 15.0
    );
    svg.push_str("</svg>\n");
    svg
}
