//! vCPU availability against the lab's real xenstored and PV guest (`labguest`,
//! `vcpus = 2`, `maxvcpus = 4`), checking Xen's per-vCPU state and the guest's own view.

mod availability;

availability_suite!(
    availability::lab_fixture,
    ignore = "lab: needs a real Xen and its PV guest (run tests/lab/lab.sh test)"
);
