//! CPU featuresets and CPUID policies on the simulator: the same checks the lab makes on
//! real Xen (`lab_cpu_policy.rs`), and the simulator's own model of `cpuid=` (Xen clamps a
//! domain's featureset to its type's maximum).
#![cfg(feature = "sim")]

use std::sync::Arc;

use xenvcpu::hypervisor::cpuid::{featureset_excess, featureset_is_subset, without_e1d_aliases, COMMON_1D_FEATURES};
use xenvcpu::hypervisor::{Hypervisor, SimHost};
use xenvcpu::{CpuVendor, DomId, Error, FeaturesetKind, Host};

fn lab_like() -> (Arc<SimHost>, Host) {
    let sim = Arc::new(SimHost::lab_like());
    let host = Host::with_shared_backend(sim.clone()).unwrap();
    (sim, host)
}

#[test]
fn featuresets_nest_as_on_xen() {
    let (_, host) = lab_like();
    let fs = |k| host.featureset(k).unwrap();
    let len = host.featureset_len().unwrap();
    assert_eq!(len, 19, "the lab's Xen 4.17 (Debian's 4.17.5+72) has 19 words");
    for kind in FeaturesetKind::ALL {
        assert_eq!(fs(kind).len(), len, "{kind}");
    }
    assert!(fs(FeaturesetKind::Raw).iter().any(|&w| w != 0), "the raw featureset has features");
    // As on the lab's Xen, host is not within raw: Xen synthesises lfence-dispatch.
    assert_eq!(featureset_excess(&fs(FeaturesetKind::Host), &fs(FeaturesetKind::Raw)), [(11, 2)]);
    let pairs =
        [(FeaturesetKind::PvDefault, FeaturesetKind::PvMax), (FeaturesetKind::HvmDefault, FeaturesetKind::HvmMax)];
    for (inner, outer) in pairs {
        let (i, o) = (fs(inner), fs(outer));
        assert!(featureset_is_subset(&i, &o), "{inner} ⊆ {outer}: extra {:?}", featureset_excess(&i, &o));
        assert_ne!(i, o, "{inner} and {outer} differ, as on the lab's Xen");
    }
}

#[test]
fn system_policies_decode_to_the_featuresets() {
    let (_, host) = lab_like();
    let hostp = host.cpu_policy(FeaturesetKind::Host).unwrap();
    for kind in FeaturesetKind::ALL {
        let p = host.cpu_policy(kind).unwrap();
        assert_eq!(p.featureset, host.featureset(kind).unwrap(), "{kind}");
        assert_eq!((p.vendor, p.max_basic_leaf), (hostp.vendor, 0xd), "{kind}");
    }
    assert_eq!(host.cpu_policy(FeaturesetKind::Raw).unwrap().max_extended_leaf, 0x8000_000a);
    assert_eq!(hostp.max_extended_leaf, 0x8000_0021);
    assert_eq!(hostp.vendor, CpuVendor::Amd, "qemu64 says AuthenticAMD");
}

#[test]
fn domains_start_with_their_types_default() {
    let (_, host) = lab_like();
    let pv = host.domain(DomId(1)).unwrap().cpu_policy().unwrap();
    let hvm = host.domain(DomId(2)).unwrap().cpu_policy().unwrap();
    let (pv_default, hvm_default) =
        (host.featureset(FeaturesetKind::PvDefault).unwrap(), host.featureset(FeaturesetKind::HvmDefault).unwrap());
    assert_eq!(without_e1d_aliases(&pv.featureset), pv_default);
    assert_eq!(without_e1d_aliases(&hvm.featureset), hvm_default);
    // As the lab's dom0 on AMD: word 2 repeats word 0's common features.
    assert_eq!(pv.featureset[2], pv_default[2] | (pv_default[0] & COMMON_1D_FEATURES));
    assert_eq!(pv.featureset[2], 0x2191_cbf5, "the lab's dom0");
    assert_eq!(hvm.platform_info, Some(1 << 31));
}

#[test]
fn a_domains_featureset_is_clamped_to_its_types_max() {
    let (sim, host) = lab_like();
    let domain = host.domain(DomId(1)).unwrap();
    let before = without_e1d_aliases(&domain.cpu_policy().unwrap().featureset);
    let pv_max = host.featureset(FeaturesetKind::PvMax).unwrap();
    // Clear the lowest feature of word 0 (as `cpuid="host,fpu=0"` would), and ask for
    // every bit of word 1 (the ones beyond pv_max are dropped).
    let bit = before[0].trailing_zeros();
    assert!(bit < 32, "word 0 has a feature");
    let mut asked = before.clone();
    asked[0] &= !(1 << bit);
    asked[1] = !0;
    sim.set_domain_featureset(1, &asked).unwrap();
    let after = without_e1d_aliases(&domain.cpu_policy().unwrap().featureset);
    assert_eq!(after[0], before[0] & !(1 << bit));
    assert_eq!(after[1], pv_max[1], "word 1: all of pv_max, nothing beyond");
    assert!(featureset_is_subset(&after, &pv_max));
    assert_eq!(sim.set_domain_featureset(99, &asked).unwrap_err().raw(), libc::ESRCH);
}

#[test]
fn a_domain_gone_and_a_failing_call_are_errors() {
    let (sim, host) = lab_like();
    let domain = host.domain(DomId(1)).unwrap();
    let _ = host.featureset_len().unwrap();
    sim.remove_domain(1);
    assert!(matches!(domain.cpu_policy().unwrap_err(), Error::NoSuchDomain { domid: DomId(1) }));
    assert_eq!(sim.domain_cpu_policy(1).unwrap_err(), libc_errno(libc::ESRCH));
    sim.fail_nth_call(1, libc::EOPNOTSUPP);
    let err = host.featureset(FeaturesetKind::PvMax).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("xc_get_cpu_featureset for the pv_max featureset"), "{err}");
    sim.fail_nth_call(1, libc::ENOMEM);
    let err = host.cpu_policy(FeaturesetKind::Host).unwrap_err();
    assert!(err.to_string().contains("xc_cpu_policy_get_system for the host policy failed"), "{err}");
}

fn libc_errno(raw: i32) -> xenvcpu::hypervisor::PolicyCallError {
    xenvcpu::hypervisor::PolicyCallError::Xen(xenvcpu::hypervisor::Errno::new(raw))
}
