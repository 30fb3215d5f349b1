//! The programs in `examples/` on real Xen, in the lab's dom0: `dom0_pin` pins the lab
//! guest's vCPUs and reports the effective maps, and `affinity_bench` measures and puts
//! the affinity back. Each test restores what it changed.

use xenvcpu::{AffinityRequest, DomId, Host, VcpuId};

#[path = "../examples/affinity_bench.rs"]
mod affinity_bench;
#[path = "../examples/dom0_pin.rs"]
mod dom0_pin;

fn lab() -> (Host, DomId) {
    assert_eq!(std::env::var("XENVCPU_LAB").as_deref(), Ok("1"), "run in the lab: tests/lab/lab.sh test");
    let guest = std::env::var("XENVCPU_LAB_GUEST_DOMID").expect("XENVCPU_LAB_GUEST_DOMID").parse().unwrap();
    (Host::open().expect("the lab's Xen"), DomId(guest))
}

#[test]
#[ignore = "lab: needs a real Xen and its PV guest (run tests/lab/lab.sh test)"]
fn dom0_pin_pins_the_lab_guest_and_reports_the_effective_maps() {
    let (host, guest) = lab();
    let dom = host.domain(guest).unwrap();
    let saved = dom.vcpus().unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let out = dom0_pin::run(&host, "labguest", "1-2").unwrap();
        assert_eq!(out[0], format!("domain {guest} (4 vCPUs)"));
        assert_eq!(out.len(), 1 + 4 + 4, "{out:#?}");
        assert!(out[5..].iter().all(|l| l.ends_with("effective hard affinity 1-2")), "{out:#?}");
        for v in dom.vcpus().unwrap() {
            assert_eq!(v.hard.to_string(), "1-2", "vCPU {} as Xen reads it back", v.vcpu);
        }
    }));
    for v in &saved {
        dom.set_affinity(v.vcpu, &AffinityRequest::both(&v.hard, &v.soft).forced()).unwrap();
    }
    result.unwrap();
}

#[test]
#[ignore = "lab: needs a real Xen and its PV guest (run tests/lab/lab.sh test)"]
fn affinity_bench_runs_on_real_xen_and_puts_the_affinity_back() {
    let (host, guest) = lab();
    let before = host.domain(guest).unwrap().vcpu_info(VcpuId(0)).unwrap();
    let f = affinity_bench::run(&host, guest, VcpuId(0), 200).unwrap();
    assert_eq!(f.updates, 200);
    // The percentiles may be 0: dom0's clock here is Xen's PV clock without a stable TSC,
    // which Linux holds still rather than let it run backwards across vCPUs (CI saw p50 0).
    assert!(f.total_ns > 0 && f.p50_ns <= f.p99_ns && f.p99_ns <= f.total_ns, "{f:?}");
    let rate = f.updates as f64 * 1e9 / f.total_ns as f64;
    assert!((f.per_sec - rate).abs() <= rate * 1e-9, "{f:?}");
    let after = host.domain(guest).unwrap().vcpu_info(VcpuId(0)).unwrap();
    assert_eq!((after.hard, after.soft), (before.hard, before.soft));
}
