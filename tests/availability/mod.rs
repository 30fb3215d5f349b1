//! vCPU availability, written once and run against the simulated platform (every
//! `cargo test`: tests/availability_sim.rs) and against the lab's real xenstored and PV
//! guest (tests/lab_availability.rs). Each test restores the guest to 2 online vCPUs.

use std::time::{Duration, Instant};

use xenvcpu::sim::SimPlatform;
use xenvcpu::{DomId, Error, Host, VcpuId, VcpuMapFlag, VcpuSet, VcpuState};

/// What the tests run against.
pub struct Fixture {
    /// The host.
    pub host: Host,
    /// The PV guest (`maxvcpus = 4`, named `labguest`).
    pub guest: DomId,
    /// The guest's console log in dom0, where it prints `LABGUEST online=<cpus>`.
    pub console: Option<String>,
    /// The simulated platform, when simulated.
    #[allow(dead_code)] // read by availability_sim.rs only
    pub sim: Option<SimPlatform>,
}

#[allow(dead_code)] // lab_availability.rs uses the lab fixture only
pub fn sim_fixture() -> Fixture {
    let sim = SimPlatform::lab_like().unwrap();
    Fixture { host: sim.host.clone(), guest: DomId(1), console: None, sim: Some(sim) }
}

#[allow(dead_code)] // availability_sim.rs uses the simulated fixture only
pub fn lab_fixture() -> Fixture {
    assert_eq!(std::env::var("XENVCPU_LAB").as_deref(), Ok("1"), "run in the lab: tests/lab/lab.sh test");
    let guest = DomId(std::env::var("XENVCPU_LAB_GUEST_DOMID").expect("XENVCPU_LAB_GUEST_DOMID").parse().unwrap());
    Fixture { host: Host::open().unwrap(), guest, console: std::env::var("XENVCPU_LAB_GUEST_CONSOLE").ok(), sim: None }
}

/// Generous: a real guest under TCG emulation takes seconds.
const WAIT: Duration = Duration::from_secs(90);

fn cpus(list: &str) -> VcpuSet {
    list.parse().unwrap()
}

/// Checks every map flag against Xen's per-vCPU state.
fn check_maps(f: &Fixture, requested: &VcpuSet) {
    let dom = f.host.domain(f.guest).unwrap();
    let maps = dom.vcpu_maps().unwrap();
    let per_vcpu: VcpuSet =
        dom.vcpus().unwrap().iter().filter(|v| v.state != VcpuState::Offline).map(|v| v.vcpu).collect();
    assert_eq!(maps.possible, cpus("0-3"));
    assert_eq!(maps.online, per_vcpu, "online agrees with each vCPU's state");
    assert_eq!(maps.online, *requested, "the guest followed the request");
    assert_eq!(maps.requested.as_ref(), Some(requested));
    assert_eq!(maps.onlinable, cpus("0-3").difference(requested));
    let mut offlinable = requested.clone();
    offlinable.remove(VcpuId(0));
    assert_eq!(maps.offlinable, offlinable);
    assert_eq!(maps.to_libvirt(VcpuMapFlag::Online, 1).unwrap(), requested.as_map().to_libvirt_bytes(1).unwrap());
}

/// Waits until the guest's own last report of its online CPUs is `want`.
fn guest_reports(f: &Fixture, want: &str) {
    let Some(path) = &f.console else { return };
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < WAIT {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = log.lines().rev().find_map(|l| l.trim().strip_prefix("LABGUEST online=")) {
            last = line.trim().to_string();
            if last == want {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the guest reports online={last:?}, not {want:?}, after {WAIT:?}");
}

fn restore(f: &Fixture) {
    let dom = f.host.domain(f.guest).unwrap();
    dom.set_vcpu_count(2).unwrap();
    dom.wait_for_vcpus(&cpus("0-1"), WAIT).unwrap();
    guest_reports(f, "0-1");
}

fn restoring(f: &Fixture, body: impl FnOnce()) {
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    restore(f);
    out.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

// ---- The tests -----------------------------------------------------------------------

pub fn set_count_to_one_then_four(f: &Fixture) {
    restoring(f, || {
        let dom = f.host.domain(f.guest).unwrap();
        let change = dom.set_vcpu_count(1).unwrap();
        assert!(change.written);
        assert_eq!(change.after, cpus("0"));
        dom.wait_for_vcpus(&cpus("0"), WAIT).unwrap();
        assert_eq!(dom.vcpu_info(VcpuId(1)).unwrap().state, VcpuState::Offline, "Xen reports vCPU 1 offline");
        guest_reports(f, "0");
        check_maps(f, &cpus("0"));

        dom.set_vcpu_count(4).unwrap();
        dom.wait_for_vcpus(&cpus("0-3"), WAIT).unwrap();
        guest_reports(f, "0-3");
        check_maps(f, &cpus("0-3"));
    });
}

pub fn sparse_online_set(f: &Fixture) {
    restoring(f, || {
        let dom = f.host.domain(f.guest).unwrap();
        dom.set_vcpus_online(&cpus("2"), true).unwrap();
        let change = dom.set_vcpus_online(&cpus("1,3"), false).unwrap();
        assert_eq!(change.after, cpus("0,2"));
        dom.wait_for_vcpus(&cpus("0,2"), WAIT).unwrap();
        guest_reports(f, "0,2");
        check_maps(f, &cpus("0,2"));
        for (v, state) in dom.vcpus().unwrap().iter().map(|v| (v.vcpu, v.state)) {
            assert_eq!(state == VcpuState::Offline, v == VcpuId(1) || v == VcpuId(3), "vCPU {v}");
        }
    });
}

pub fn the_current_count_is_a_no_op(f: &Fixture) {
    restoring(f, || {
        let dom = f.host.domain(f.guest).unwrap();
        dom.set_vcpu_count(2).unwrap();
        let change = dom.set_vcpu_count(2).unwrap();
        assert!(!change.written, "nothing to write");
        assert_eq!(change.before, Some(cpus("0-1")));
        let change = dom.set_vcpus_online(&cpus("1"), true).unwrap();
        assert!(!change.written);
    });
}

pub fn bad_requests_are_refused_before_writing(f: &Fixture) {
    let dom = f.host.domain(f.guest).unwrap();
    let before = dom.requested_vcpus().unwrap();
    let err = dom.set_vcpu_count(0).unwrap_err();
    assert!(matches!(err, Error::VcpuCountOutOfRange { requested: 0, max: 4, .. }), "{err}");
    let err = dom.set_vcpu_count(5).unwrap_err();
    assert!(matches!(err, Error::VcpuCountOutOfRange { requested: 5, max: 4, .. }), "{err}");
    assert!(err.to_string().contains("1 to 4"), "{err}");
    assert!(matches!(dom.set_vcpus_online(&cpus("0-1"), false), Err(Error::Vcpu0Offline { .. })));
    assert!(matches!(dom.set_vcpus_online(&cpus("4"), true), Err(Error::VcpuOutOfRange { vcpu: VcpuId(4), .. })));
    assert!(matches!(dom.set_vcpus_online(&VcpuSet::new(), true), Err(Error::InvalidArgument(_))));
    assert_eq!(dom.requested_vcpus().unwrap(), before, "nothing was written");
}

pub fn dom0_has_no_availability_nodes(f: &Fixture) {
    let dom0 = f.host.domain(DomId(0)).unwrap();
    let maps = dom0.vcpu_maps().unwrap();
    assert_eq!(maps.requested, None);
    assert_eq!(maps.online, maps.possible);
    assert!(!maps.offlinable.contains(VcpuId(0)));
}

pub fn names_resolve_both_ways(f: &Fixture) {
    assert_eq!(f.host.domain_id("labguest").unwrap(), f.guest);
    assert_eq!(f.host.domain_name(f.guest).unwrap().as_deref(), Some("labguest"));
    assert_eq!(f.host.domain_name(DomId(0)).unwrap().as_deref(), Some("Domain-0"));
    assert!(matches!(f.host.domain_id("no-such-guest"), Err(Error::NoSuchDomainName { .. })));
    assert_eq!(f.host.domain_name(DomId(31000)).unwrap(), None);
}

pub fn waiting_for_a_state_the_guest_never_reaches_names_the_vcpus(f: &Fixture) {
    let dom = f.host.domain(f.guest).unwrap();
    let err = dom.wait_for_vcpus(&cpus("0-2"), Duration::from_millis(300)).unwrap_err();
    match err {
        Error::VcpusDidNotFollow { vcpus, online, .. } => {
            assert_eq!(vcpus, cpus("2"));
            assert_eq!(online, cpus("0-1"));
        }
        e => panic!("{e}"),
    }
}

/// The suite's tests as this file defines them: every `pub fn NAME(f: &Fixture)`, sorted.
pub fn defined_tests() -> Vec<&'static str> {
    suite_guard::defined_tests(include_str!("mod.rs"))
}

#[path = "../support/suite_guard.rs"]
mod suite_guard;

/// Lists every test of the suite, instantiated once per backend by the caller.
#[macro_export]
macro_rules! availability_suite {
    ($fixture:path $(, $attr:meta)?) => {
        $crate::availability_suite!(@tests $fixture, [$($attr)?],
            set_count_to_one_then_four,
            sparse_online_set,
            the_current_count_is_a_no_op,
            bad_requests_are_refused_before_writing,
            dom0_has_no_availability_nodes,
            names_resolve_both_ways,
            waiting_for_a_state_the_guest_never_reaches_names_the_vcpus,
        );
    };
    (@tests $fixture:path, $attrs:tt, $($name:ident),* $(,)?) => {
        $( $crate::availability_suite!(@one $fixture, $attrs, $name); )*

        /// The list above names every test the suite defines (runs on the host).
        #[test]
        fn every_availability_test_is_listed() {
            let mut listed = vec![$(stringify!($name)),*];
            listed.sort_unstable();
            assert_eq!(listed, availability::defined_tests(), "an availability test is missing from availability_suite!");
        }
    };
    (@one $fixture:path, [$($attr:meta)?], $name:ident) => {
        #[test]
        $(#[$attr])?
        fn $name() {
            availability::$name(&$fixture());
        }
    };
}
