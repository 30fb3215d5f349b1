//! CPU featuresets and CPUID policies through the library, in the lab (a real Xen under
//! QEMU TCG, `tests/lab/lab.sh test`).
//!
//! The decoding of policies into featuresets (src/hypervisor/cpuid.rs) is checked against
//! Xen's own: Xen computes each featureset from the matching system policy
//! (`x86_cpu_policy_to_featureset`), so our decoding of the six system policies must give
//! Xen's six featuresets exactly. Then the guest's and dom0's policies must lie within
//! `pv_max`, with the host's vendor. Every test asserts `XENVCPU_LAB=1` first.

use std::io::Write;

use xenvcpu::hypervisor::cpuid::{featureset_excess, featureset_is_subset, without_e1d_aliases};
use xenvcpu::{DomId, FeaturesetKind, Host, XenCpuPolicy};

fn lab() -> Host {
    assert_eq!(std::env::var("XENVCPU_LAB").as_deref(), Ok("1"), "run in the lab: tests/lab/lab.sh test");
    Host::open().unwrap_or_else(|e| panic!("lab: {e}"))
}

fn say(text: &str) {
    // Past libtest's capture, so that the figures are in the lab's output of this binary.
    let _ = writeln!(std::io::stderr(), "lab_cpu_policy: {text}");
}

fn hex(words: &[u32]) -> String {
    words.iter().map(|w| format!("{w:08x}")).collect::<Vec<_>>().join(":")
}

fn describe(p: &XenCpuPolicy) -> String {
    format!(
        "vendor {} fms {:x?} max leaves {:#x} / {:#x}, leaf 7 subleaves {}, platform_info {:x?}, {} leaves, \
         brand {:?}; featureset {}",
        p.vendor,
        p.family_model_stepping(),
        p.max_basic_leaf,
        p.max_extended_leaf,
        p.max_leaf7_subleaf,
        p.platform_info,
        p.raw.leaves.len(),
        p.brand(),
        hex(&p.featureset)
    )
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn system_policies_decode_to_xens_own_featuresets() {
    let host = lab();
    let len = host.featureset_len().unwrap();
    say(&format!("{len} featureset words"));
    for kind in FeaturesetKind::ALL {
        let words = host.featureset(kind).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let policy = host.cpu_policy(kind).unwrap_or_else(|e| panic!("{kind} policy: {e}"));
        say(&format!("{kind}: featureset {}", hex(&words)));
        say(&format!("{kind}: policy {}", describe(&policy)));
        assert_eq!(words.len(), len, "{kind}");
        assert_eq!(policy.featureset, words, "{kind}: decoded policy vs Xen's featureset");
    }
    // Not host ⊆ raw: Xen synthesises some host features (on the lab's AMD qemu64,
    // lfence-dispatch, word 11 bit 2), so only the guest sets nest.
    let raw = host.featureset(FeaturesetKind::Raw).unwrap();
    let hst = host.featureset(FeaturesetKind::Host).unwrap();
    say(&format!("host features not in raw (word, bit): {:?}", featureset_excess(&hst, &raw)));
    for (def, max) in
        [(FeaturesetKind::PvDefault, FeaturesetKind::PvMax), (FeaturesetKind::HvmDefault, FeaturesetKind::HvmMax)]
    {
        let (d, m) = (host.featureset(def).unwrap(), host.featureset(max).unwrap());
        assert!(featureset_is_subset(&d, &m), "{def} ⊆ {max}: extra {:?}", featureset_excess(&d, &m));
    }
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn pv_domains_policies_lie_within_pv_max() {
    let host = lab();
    let pv_max = host.cpu_policy(FeaturesetKind::PvMax).unwrap();
    let host_policy = host.cpu_policy(FeaturesetKind::Host).unwrap();
    let guest: u32 = std::env::var("XENVCPU_LAB_GUEST_DOMID").expect("the lab guest").parse().unwrap();
    for domid in [DomId(0), DomId(guest)] {
        let domain = host.domain(domid).unwrap();
        let policy = domain.cpu_policy().unwrap_or_else(|e| panic!("domain {domid}: {e}"));
        say(&format!("domain {domid}: {}", describe(&policy)));
        assert_eq!(policy.featureset.len(), pv_max.featureset.len());
        // An AMD domain's policy repeats word 0's common features in word 2; pv_max does
        // not: compare without those repeats.
        let ours = without_e1d_aliases(&policy.featureset);
        assert!(
            featureset_is_subset(&ours, &pv_max.featureset),
            "domain {domid} ⊆ pv_max: extra (word, bit) {:?}",
            featureset_excess(&ours, &pv_max.featureset)
        );
        assert_eq!(policy.vendor, host_policy.vendor, "domain {domid}: vendor");
        assert!(policy.max_basic_leaf <= pv_max.max_basic_leaf, "domain {domid}: basic leaves");
        assert!(policy.max_extended_leaf <= pv_max.max_extended_leaf, "domain {domid}: extended leaves");
        assert!(policy.max_leaf7_subleaf <= pv_max.max_leaf7_subleaf, "domain {domid}: leaf 7 subleaves");
        assert_ne!(policy.featureset[0], 0, "domain {domid}: leaf 1 edx has features");
    }
}
