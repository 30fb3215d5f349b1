//! The CPU policy suite: featuresets, a guest `<cpu>` checked against the host, a guest
//! built with the `cpuid=` xenvcpu generates, and policies compared — written once and run
//! on the simulator (tests/cpu_policy_sim.rs) and on real Xen (tests/lab_cpu_guest.rs),
//! where the guest is created by `xl` and its kernel's `/proc/cpuinfo` is read too.

#![allow(dead_code)] // each test binary uses part of the fixture

use xenvcpu::cpu::{compare, CheckRule, CpuFeatures, FeaturePolicy, GuestCpu};
use xenvcpu::{DomId, FeaturesetKind, Host};

#[path = "../support/suite_guard.rs"]
mod suite_guard;

/// What another toolstack does: `xl create` of a PV guest shaped like the lab guest with a
/// `cpuid=` line; `xl destroy`.
pub trait Toolstack {
    /// Creates and starts the guest `name` with `cpuid = "<cpuid>"`; returns its id.
    fn create_with_cpuid(&self, name: &str, cpuid: &str) -> DomId;
    /// Destroys it.
    fn destroy(&self, name: &str);
    /// The CPU flags the guest's kernel shows (`/proc/cpuinfo`), when the platform has a
    /// kernel to ask (the lab; `None` on the simulator).
    fn guest_flags(&self, name: &str) -> Option<Vec<String>>;
}

/// What a check runs against.
pub struct Fixture {
    /// The host.
    pub host: Host,
    /// The lab guest's name.
    pub guest: String,
    /// The other toolstack.
    pub xl: Box<dyn Toolstack>,
}

fn features(f: &Fixture, kind: FeaturesetKind) -> CpuFeatures {
    CpuFeatures::from_words(f.host.featureset(kind).unwrap())
}

/// The named features of `set`.
fn named(set: &CpuFeatures) -> Vec<&'static str> {
    set.names()
}

/// Every featureset reads, names round-trip, and each default lies within its maximum.
pub fn featuresets_name_round_trip_and_defaults_lie_within_maxima(f: &Fixture) {
    for kind in FeaturesetKind::ALL {
        let set = features(f, kind);
        assert!(!set.is_empty(), "{kind:?} is empty");
        let names = named(&set).join(" ");
        let again: CpuFeatures = names.parse().unwrap();
        assert_eq!(named(&again), named(&set), "{kind:?}");
    }
    for (default, max) in
        [(FeaturesetKind::PvDefault, FeaturesetKind::PvMax), (FeaturesetKind::HvmDefault, FeaturesetKind::HvmMax)]
    {
        assert!(features(f, default).is_subset(&features(f, max)), "{default:?} within {max:?}");
    }
}

/// `require` of features the host lacks is refused naming every one (and not the one it
/// has); `forbid` of one it has is refused naming it.
pub fn check_refuses_naming_every_feature_at_fault(f: &Fixture) {
    let host = features(f, FeaturesetKind::Host);
    let max = features(f, FeaturesetKind::PvMax);
    let lacking: Vec<&str> =
        ["avx2", "avx512f", "sha", "adx"].into_iter().filter(|n| !host.contains_name(n).unwrap()).collect();
    assert!(lacking.len() >= 2, "the host has {host}");
    let present = named(&host.intersection(&max))[0];
    let xml = format!(
        "<domain><cpu><feature policy='require' name='{}'/><feature policy='require' name='{}'/>\
         <feature policy='require' name='{present}'/><feature policy='forbid' name='{present}'/></cpu></domain>",
        lacking[0], lacking[1]
    );
    // One feature may not be both required and forbidden: two documents.
    let err = GuestCpu::from_xml(&xml).unwrap_err();
    assert!(err.to_string().contains(present), "{err}");
    let require = format!(
        "<cpu><feature policy='require' name='{}'/><feature policy='require' name='{}'/>\
         <feature policy='require' name='{present}'/></cpu>",
        lacking[0], lacking[1]
    );
    let err = GuestCpu::from_xml(&require).unwrap().check(&host, &max).unwrap_err();
    let missing = err.features(CheckRule::RequiredMissingOnHost);
    assert_eq!(missing, &lacking[..2], "{err}");
    assert!(!err.to_string().contains(&format!("{present} ")), "{err}");
    let forbid = format!("<cpu><feature policy='forbid' name='{present}'/></cpu>");
    let err = GuestCpu::from_xml(&forbid).unwrap().check(&host, &max).unwrap_err();
    assert_eq!(err.features(CheckRule::ForbiddenOnHost), [present], "{err}");
}

/// A guest built with the `cpuid=` line generated from an XML that disables `cx16` (the
/// host has it): the build is accepted, the domain's policy lacks the bit while the lab
/// guest's has it, its kernel does not show the flag (in the lab), and its policy is
/// compatible with the host's PV maximum.
pub fn a_guest_built_with_the_generated_cpuid_lacks_the_disabled_feature(f: &Fixture) {
    let host = features(f, FeaturesetKind::Host);
    assert!(host.contains_name("cx16").unwrap(), "the host has cx16: {host}");
    let cpu = GuestCpu::from_xml("<cpu mode='host-passthrough'><feature policy='disable' name='cx16'/></cpu>").unwrap();
    assert_eq!(cpu.with_policy(FeaturePolicy::Disable).names(), ["cx16"]);
    let cpuid = cpu.cpuid_string();
    assert_eq!(cpuid, "host,cx16=0");
    let name = "cpuguest";
    let domid = f.xl.create_with_cpuid(name, &cpuid);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let built = f.host.domain(domid).unwrap().cpu_policy().unwrap().to_portable();
        let labguest = f.host.domain_by_name(&f.guest).unwrap().cpu_policy().unwrap().to_portable();
        assert!(!built.features.contains_name("cx16").unwrap(), "cleared: {}", built.features);
        assert!(labguest.features.contains_name("cx16").unwrap(), "the lab guest has it: {}", labguest.features);
        assert_eq!(
            labguest.features.difference(&built.features).names(),
            ["cx16"],
            "only cx16 differs from a guest built without cpuid="
        );
        let pv_max = f.host.cpu_policy(FeaturesetKind::PvMax).unwrap().to_portable();
        let verdict = compare(&built, &pv_max);
        assert!(verdict.is_compatible(), "{verdict}");
        if let Some(flags) = f.xl.guest_flags(name) {
            let theirs = f.xl.guest_flags(&f.guest).expect("the lab guest's flags");
            assert!(theirs.iter().any(|x| x == "cx16"), "the lab guest's kernel shows cx16: {theirs:?}");
            assert!(!flags.iter().any(|x| x == "cx16"), "the cpuid= guest's kernel does not: {flags:?}");
        }
    }));
    f.xl.destroy(name);
    if let Err(p) = outcome {
        std::panic::resume_unwind(p)
    }
}

/// A domain's policy moved to a host whose maximum lacks one of its features is refused,
/// naming the feature.
pub fn compare_names_the_features_a_host_cannot_give(f: &Fixture) {
    let guest = f.host.domain_by_name(&f.guest).unwrap().cpu_policy().unwrap().to_portable();
    let mut smaller = f.host.cpu_policy(FeaturesetKind::PvMax).unwrap().to_portable();
    assert!(compare(&guest, &smaller).is_compatible(), "{}", compare(&guest, &smaller));
    let taken = ["sse3", "cx16"]; // in featureset order
    for name in taken {
        assert!(guest.features.contains_name(name).unwrap(), "the guest has {name}");
        smaller.features.remove_name(name).unwrap();
    }
    let verdict = compare(&guest, &smaller);
    assert!(!verdict.is_compatible());
    assert_eq!(verdict.blocking_features().names(), taken, "{verdict}");
}

/// Instantiates the suite: `cpu_suite!(fixture_fn)` or `cpu_suite!(fixture_fn, ignore =
/// "reason")`.
#[macro_export]
macro_rules! cpu_suite {
    ($fixture:path $(, $attr:meta)?) => {
        $crate::cpu_suite!(@tests $fixture, [$($attr)?],
            featuresets_name_round_trip_and_defaults_lie_within_maxima,
            check_refuses_naming_every_feature_at_fault,
            a_guest_built_with_the_generated_cpuid_lacks_the_disabled_feature,
            compare_names_the_features_a_host_cannot_give,
        );
    };
    (@tests $fixture:path, $attrs:tt, $($name:ident),* $(,)?) => {
        $( $crate::cpu_suite!(@one $fixture, $attrs, $name); )*

        /// The list above names every check the suite defines (runs on the host).
        #[test]
        fn every_cpu_check_is_listed() {
            let mut listed = vec![$(stringify!($name)),*];
            listed.sort_unstable();
            assert_eq!(listed, cpu_checks::defined_tests(), "a CPU check is missing from cpu_suite!");
        }
    };
    (@one $fixture:path, [$($attr:meta)?], $name:ident) => {
        #[test]
        $(#[$attr])?
        fn $name() {
            cpu_checks::$name(&$fixture());
        }
    };
}

/// Every check this file defines.
pub fn defined_tests() -> Vec<&'static str> {
    suite_guard::defined_tests(include_str!("mod.rs"))
}
