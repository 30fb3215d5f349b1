//! vCPU availability on the simulated platform, plus what only a simulation can check:
//! HVM refusal writing nothing, transaction conflicts and their retry limit.

mod availability;

use availability::sim_fixture;
use xenvcpu::{DomId, Error, VcpuId, VcpuSet};

availability_suite!(availability::sim_fixture);

#[test]
fn hvm_guests_are_refused_and_nothing_is_written() {
    let f = sim_fixture();
    let sim = f.sim.as_ref().unwrap();
    let hvm = f.host.domain(DomId(2)).unwrap();
    sim.store.take_mutations();
    let err = hvm.set_vcpu_count(1).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("HVM"), "{err}");
    assert!(err.to_string().contains("device model (QEMU, ACPI)"), "says why: {err}");
    assert!(matches!(hvm.set_vcpus_online(&VcpuSet::from_iter([VcpuId(1)]), false), Err(Error::Unsupported(_))));
    assert!(sim.store.take_mutations().is_empty(), "nothing was written");
}

#[test]
fn pvh_guests_use_the_availability_keys_as_pv_guests_do() {
    use xenvcpu::hypervisor::{GuestType, SimDomain};
    let mut sim = xenvcpu::sim::SimPlatform::lab_like().unwrap();
    sim.add_pvh_guest(SimDomain { domid: 3, max_vcpus: 4, online: 2, hvm: true }, "pvhguest").unwrap();
    let dom = sim.host.domain_by_name("pvhguest").unwrap();
    assert_eq!(dom.info().guest_type(), GuestType::Pvh);
    assert!(dom.info().flags.hvm, "an HVM container");
    let wait = std::time::Duration::from_secs(5);

    let change = dom.set_vcpu_count(3).unwrap();
    assert_eq!(
        (change.before, change.after.clone(), change.written),
        (Some("0-1".parse().unwrap()), "0-2".parse().unwrap(), true)
    );
    dom.wait_for_vcpus(&change.after, wait).unwrap();
    let change = dom.set_vcpus_online(&"1-2".parse().unwrap(), false).unwrap();
    assert_eq!(change.after, "0".parse().unwrap());
    dom.wait_for_vcpus(&change.after, wait).unwrap();
    dom.set_vcpus_online(&"3".parse().unwrap(), true).unwrap();
    dom.wait_for_vcpus(&"0,3".parse().unwrap(), wait).unwrap();
    let maps = dom.vcpu_maps().unwrap();
    assert_eq!((maps.online, maps.requested), ("0,3".parse().unwrap(), Some("0,3".parse().unwrap())));
}

#[test]
fn conflicting_writers_make_the_transaction_retry() {
    let f = sim_fixture();
    let sim = f.sim.as_ref().unwrap();
    let dom = f.host.domain(DomId(1)).unwrap();
    sim.store.inject_conflicts(3);
    let change = dom.set_vcpu_count(3).unwrap();
    assert!(change.written);
    assert_eq!(dom.requested_vcpus().unwrap(), Some("0-2".parse().unwrap()));
    dom.wait_for_vcpus(&"0-2".parse().unwrap(), std::time::Duration::from_secs(5)).unwrap();
}

#[test]
fn endless_conflicts_give_up_and_leave_no_mix() {
    let f = sim_fixture();
    let sim = f.sim.as_ref().unwrap();
    let dom = f.host.domain(DomId(1)).unwrap();
    sim.store.inject_conflicts(1000);
    let err = dom.set_vcpu_count(4).unwrap_err();
    assert!(err.to_string().contains("attempts"), "{err}");
    sim.store.inject_conflicts(0);
    assert_eq!(dom.requested_vcpus().unwrap(), Some("0-1".parse().unwrap()), "unchanged");
}
