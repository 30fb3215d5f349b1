//! Migration compatibility: `CpuPolicy` decoded from leaves, its JSON file (round trips and
//! errors), and `compare` with every blocker and the accumulating/special rules.

use xenvcpu::cpu::{compare, Blocker, CpuFeatures, CpuPolicy, LeafLimit, PolicyJsonError, Vendor};
use xenvcpu::hypervisor::cpuid::{MSR_ARCH_CAPABILITIES, MSR_PLATFORM_INFO, NO_SUBLEAF};
use xenvcpu::hypervisor::{CpuidLeaf, MsrEntry, RawCpuPolicy, XenCpuPolicy};

fn set(names: &str) -> CpuFeatures {
    names.parse().unwrap()
}

fn policy(vendor: Vendor, features: &str) -> CpuPolicy {
    CpuPolicy {
        vendor,
        max_leaf: 0xd,
        max_subleaf_7: 1,
        max_ext_leaf: 0x8000_0021,
        platform_info: 0,
        features: set(features),
    }
}

#[test]
fn same_policy_is_compatible() {
    let p = policy(Vendor::Intel, "fpu sse2 avx2 hypervisor md-clear");
    let c = compare(&p, &p);
    assert!(c.is_compatible());
    assert_eq!(c.to_string(), "compatible");
    assert!(c.blocking_features().is_empty());
    // Less on the guest is fine.
    assert!(compare(&policy(Vendor::Intel, "fpu"), &p).is_compatible());
}

#[test]
fn every_blocker_is_named() {
    let mut guest = policy(Vendor::Intel, "fpu avx2 avx512f amx-tile <14:3>");
    guest.max_leaf = 0x1f;
    guest.max_subleaf_7 = 2;
    guest.max_ext_leaf = 0x8000_0028;
    guest.platform_info = 1 << 31;
    let host = policy(Vendor::Amd, "fpu avx2");
    let c = compare(&guest, &host);
    assert!(!c.is_compatible());
    assert_eq!(
        c.blockers,
        [
            Blocker::Vendor { guest: Vendor::Intel, host: Vendor::Amd },
            Blocker::LeafLimit { limit: LeafLimit::Basic, guest: 0x1f, host: 0xd },
            Blocker::LeafLimit { limit: LeafLimit::Leaf7Subleaf, guest: 2, host: 1 },
            Blocker::LeafLimit { limit: LeafLimit::Extended, guest: 0x8000_0028, host: 0x8000_0021 },
            Blocker::PlatformInfo { missing: 1 << 31 },
            Blocker::Features(set("avx512f amx-tile <14:3>")),
        ]
    );
    assert_eq!(c.blocking_features().to_string(), "avx512f amx-tile <14:3>");
    let text = c.to_string();
    assert!(
        text.starts_with(
            "incompatible: the vendor differs: the domain's is \"GenuineIntel\", the host's \"AuthenticAMD\"; "
        ),
        "{text}"
    );
    assert!(text.contains("the highest basic CPUID leaf is 0x1f for the domain, above the host's 0xd"), "{text}");
    assert!(text.ends_with("features the host cannot give: avx512f amx-tile <14:3>"), "{text}");
}

#[test]
fn accumulating_and_special_bits() {
    // md-clear is !A| (accumulates), fb-clear !A| , hypervisor and rtm are ! (special).
    let guest = policy(Vendor::Intel, "fpu md-clear fb-clear hypervisor rtm avx2");
    let host = policy(Vendor::Intel, "fpu avx2 no-lmsl");
    let c = compare(&guest, &host);
    assert!(c.is_compatible(), "{c}");
    assert_eq!(c.accumulated, set("md-clear fb-clear"));
    assert_eq!(c.special, set("hypervisor rtm"));
    assert_eq!(c.hidden_accumulating, set("no-lmsl"));
    assert_eq!(
        c.to_string(),
        "compatible\nallowed (accumulated across a pool): md-clear fb-clear\n\
         not compared (Xen decides these itself): hypervisor rtm\nthe host has, hidden from the domain: no-lmsl"
    );
    // A plain bit still blocks beside them.
    let guest = policy(Vendor::Intel, "md-clear avx512f");
    let c = compare(&guest, &host);
    assert_eq!(c.blockers, [Blocker::Features(set("avx512f"))]);
    assert_eq!(c.accumulated, set("md-clear"));
}

#[test]
fn featuresets_of_different_lengths_compare() {
    // A 4.17.0 host (14 words) and a 4.22 guest (19 words) whose extra words are empty.
    let mut guest = policy(Vendor::Amd, "");
    guest.features = CpuFeatures::from_words(vec![0x1, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut host = policy(Vendor::Amd, "");
    host.features = CpuFeatures::from_words(vec![0x1, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(compare(&guest, &host).is_compatible());
    guest.features.insert_name("tsa-l1-no").unwrap();
    assert_eq!(compare(&guest, &host).blocking_features(), set("tsa-l1-no"));
}

fn leaf(leaf: u32, subleaf: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> CpuidLeaf {
    CpuidLeaf { leaf, subleaf, eax, ebx, ecx, edx }
}

/// A serialised policy, decoded by the hypervisor layer and made portable, as `xenvcpu
/// cpu export` does.
#[test]
fn decodes_a_serialised_policy() {
    // "GenuineIntel" = EBX "Genu", EDX "ineI", ECX "ntel".
    let leaves = vec![
        leaf(0, NO_SUBLEAF, 0xd, 0x756e_6547, 0x6c65_746e, 0x4965_6e69),
        leaf(1, NO_SUBLEAF, 0x506e3, 0, 1 << 19 | 1 << 31, 1 << 0 | 1 << 19),
        leaf(7, 0, 1, 1 << 5, 1 << 11, 1 << 10),
        leaf(7, 1, 0, 0, 0, 1 << 4),
        leaf(0xd, 0, 0x7, 0, 0, 0),
        leaf(0xd, 1, 1, 0, 0, 0),
        leaf(0x4000_0000, NO_SUBLEAF, 0x4000_0005, 0, 0, 0),
        leaf(0x8000_0000, NO_SUBLEAF, 0x8000_0008, 0, 0, 0),
        leaf(0x8000_0001, NO_SUBLEAF, 0, 0, 1, 1 << 29),
        leaf(0x8000_0008, NO_SUBLEAF, 0, 1 << 12, 0, 0),
        // Beyond max_ext_leaf: ignored, as Xen ignores it.
        leaf(0x8000_0021, NO_SUBLEAF, 1 << 2, 0, 1 << 1, 0),
    ];
    let msrs = vec![
        MsrEntry { index: MSR_PLATFORM_INFO, value: 1u64 << 31 },
        MsrEntry { index: MSR_ARCH_CAPABILITIES, value: 1 << 0 | 1u64 << 62 },
    ];
    let raw = RawCpuPolicy { leaves, msrs };
    let p = XenCpuPolicy::decode(raw.clone(), 19).to_portable();
    assert_eq!(p.vendor, Vendor::Intel);
    assert_eq!((p.max_leaf, p.max_subleaf_7, p.max_ext_leaf), (0xd, 1, 0x8000_0008));
    assert_eq!(p.platform_info, 1 << 31);
    assert_eq!(p.features.nr_words(), 19);
    assert_eq!(
        p.features.to_string(),
        "fpu clflush sse4-1 hypervisor lm lahf-lm xsaveopt avx2 avx512-vnni ibpb md-clear avx-vnni-int8 rdcl-no its-no"
    );
    // A 14-word featureset (Xen 4.17.0) has no room for words 14 and up.
    let p14 = XenCpuPolicy::decode(raw, 14).to_portable();
    assert_eq!(p14.features.nr_words(), 14);
    assert!(!p14.features.contains_name("rdcl-no").unwrap());
    assert_eq!(Vendor::from_registers(0x6874_7541, 0x6974_6e65, 0x444d_4163), Vendor::Amd);
}

#[test]
fn json_round_trip() {
    let mut p = policy(Vendor::Amd, "fpu sse2 avx2 <0:10> its-no");
    p.platform_info = 1 << 31;
    let text = p.to_json();
    assert_eq!(CpuPolicy::from_json(&text).unwrap(), p);
    assert!(
        text.starts_with(
            "{\n  \"version\": 1,\n  \"vendor\": \"AuthenticAMD\",\n  \"max_leaf\": \"0x0000000d\",\n  \
         \"max_subleaf_7\": 1,\n  \"max_ext_leaf\": \"0x80000021\",\n  \"platform_info\": \"0x0000000080000000\",\n  \
         \"features\": [\n    \"fpu\",\n    \"<0:10>\",\n    \"sse2\",\n"
        ),
        "{text}"
    );
    assert!(text.contains("\"words\": [\n    \"0x04000401\",\n"), "{text}");
    // The words' length survives.
    let p19 = CpuPolicy { features: CpuFeatures::from_words(vec![0; 19]), ..policy(Vendor::Intel, "") };
    assert_eq!(CpuPolicy::from_json(&p19.to_json()).unwrap().features.nr_words(), 19);
    // Other vendors survive too.
    let other = CpuPolicy { vendor: Vendor::Other("Zhaoxin\"Xyz".into()), ..policy(Vendor::Intel, "") };
    assert_eq!(CpuPolicy::from_json(&other.to_json()).unwrap(), other);
}

#[test]
fn json_by_hand() {
    let p = CpuPolicy::from_json(
        r#"{"vendor": "GenuineIntel", "max_leaf": 13, "max_ext_leaf": "0x80000008",
            "features": ["sse4.1", "pni", "avx2"]}"#,
    )
    .unwrap();
    assert_eq!(p.features, set("sse3 sse4-1 avx2"));
    assert_eq!((p.max_leaf, p.max_subleaf_7, p.platform_info), (13, 0, 0));
    let p =
        CpuPolicy::from_json(r#"{"vendor":"GenuineIntel","max_leaf":"13","max_ext_leaf":0,"words":[1,"0x80000000"]}"#)
            .unwrap();
    assert_eq!(p.features.to_string(), "fpu hypervisor");
}

#[test]
fn json_errors() {
    let e = |t: &str| CpuPolicy::from_json(t).unwrap_err();
    assert!(matches!(e("{\n \"vendor\": }"), PolicyJsonError::Syntax { line: 2, column: 12, .. }));
    assert_eq!(e("[]"), PolicyJsonError::NotAnObject);
    let base = r#""vendor":"GenuineIntel","max_leaf":13,"max_ext_leaf":0"#;
    assert_eq!(
        e(&format!("{{{base},\n \"word\":[]}}")),
        PolicyJsonError::UnknownMember { name: "word".into(), line: 2, column: 2 }
    );
    assert!(matches!(e(&format!("{{{base},\"words\":[],\"words\":[]}}")), PolicyJsonError::DuplicateMember { .. }));
    assert_eq!(e(&format!("{{{base}}}")), PolicyJsonError::Missing { name: "words" });
    assert_eq!(
        e(r#"{"vendor":"GenuineIntel","max_leaf":13,"words":[]}"#),
        PolicyJsonError::Missing { name: "max_ext_leaf" }
    );
    assert!(matches!(e(&format!("{{\"version\":2,{base},\"words\":[]}}")), PolicyJsonError::UnsupportedVersion { .. }));
    assert!(matches!(
        e(&format!("{{{base},\"words\":[\"0x100000000\"]}}")),
        PolicyJsonError::InvalidMember { name: "words", .. }
    ));
    assert!(matches!(
        e(r#"{"vendor":1,"max_leaf":13,"max_ext_leaf":0,"words":[]}"#),
        PolicyJsonError::InvalidMember { name: "vendor", .. }
    ));
    assert!(matches!(e(&format!("{{{base},\"words\":[-1]}}")), PolicyJsonError::InvalidMember { .. }));
    let err = e(&format!("{{{base},\"features\":[\"avx5l2f\"]}}"));
    assert!(matches!(err, PolicyJsonError::Feature { .. }), "{err:?}");
    assert!(err.to_string().contains("did you mean"), "{err}");
    let err = e(&format!("{{{base},\"features\":[\"fpu\",\"avx2\"],\"words\":[\"0x3\"]}}"));
    assert_eq!(err, PolicyJsonError::FeaturesDisagree { only_in_words: set("vme"), only_in_features: set("avx2") });
    assert_eq!(err.to_string(), "\"words\" and \"features\" disagree: only in words: [vme]; only in features: [avx2]");
}
