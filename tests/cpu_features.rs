//! `CpuFeatures`: Xen's featureset words with names — the name table, aliases, set
//! algebra, display and parse round trips, and the errors for names that are no feature.

use xenvcpu::cpu::names::{self, AliasSource, ALIASES, FEATURES};
use xenvcpu::cpu::{CpuFeatures, FeatureBit, FeatureNameError};

fn set(names: &str) -> CpuFeatures {
    names.parse().unwrap_or_else(|e| panic!("{names:?}: {e}"))
}

#[test]
fn names_sit_at_xens_bits() {
    for (name, word, bit) in [
        ("fpu", 0, 0),
        ("clflush", 0, 19),
        ("sse3", 1, 0),
        ("sse4-1", 1, 19),
        ("hypervisor", 1, 31),
        ("lm", 2, 29),
        ("lahf-lm", 3, 0),
        ("xsaveopt", 4, 0),
        ("avx2", 5, 5),
        ("avx512-vnni", 6, 11),
        ("itsc", 7, 8),
        ("ibpb", 8, 12),
        ("md-clear", 9, 10),
        ("avx-vnni", 10, 4),
        ("lfence-dispatch", 11, 2),
        ("intel-ppin", 12, 0),
        ("intel-psfd", 13, 0),
        ("avx-vnni-int8", 15, 4),
        ("rdcl-no", 16, 0),
        ("its-no", 17, 30),
        ("tsa-l1-no", 18, 2),
    ] {
        let b = FeatureBit::parse(name).unwrap();
        assert_eq!((b.word(), b.bit()), (word, bit), "{name}");
        assert_eq!(b.to_string(), name);
    }
}

#[test]
fn the_table_has_xens_attributes_and_releases() {
    let f = names::lookup("md-clear").unwrap();
    assert!(f.is_special() && f.accumulates() && f.offered_to_guests());
    let f = names::lookup("ds").unwrap();
    assert!(!f.offered_to_guests() && f.attrs.is_empty());
    let f = names::lookup("avx512-bmm").unwrap();
    assert_eq!(f.since.to_string(), "4.22.0");
    let f = names::lookup("its-no").unwrap();
    assert!(f.in_4_17_7 && f.since.minor == 21);
    // Word 14 (7c1) has no named bit.
    assert!(FEATURES.iter().all(|f| f.word != 14));
    let accumulating: Vec<_> = FEATURES.iter().filter(|f| f.accumulates()).map(|f| f.name).collect();
    assert_eq!(accumulating, ["no-lmsl", "md-clear", "fs-gs-ns", "verw-clear", "fb-clear", "rfds-clear"]);
    assert_eq!(FEATURES.iter().filter(|f| f.is_special()).count(), 24);
}

#[test]
fn aliases_of_each_tool() {
    for (alias, name, source) in [
        ("sse4.1", "sse4-1", AliasSource::Libxl),
        ("clfsh", "clflush", AliasSource::Libxl),
        ("lfence+", "lfence-dispatch", AliasSource::Libxl),
        ("ppin", "amd-ppin", AliasSource::Libxl),
        ("sse41", "sse4-1", AliasSource::XenCpuid),
        ("hyper", "hypervisor", AliasSource::XenCpuid),
        ("3dnow+", "3dnowext", AliasSource::XenCpuid),
        ("energy-ctrl", "energy-filtering", AliasSource::XenCpuid),
        ("pni", "sse3", AliasSource::Libvirt),
        ("spec-ctrl", "ibrsb", AliasSource::Libvirt),
    ] {
        let a = ALIASES.iter().find(|a| a.alias == alias).unwrap();
        assert_eq!((a.name, a.source), (name, source));
        assert_eq!(FeatureBit::parse(alias).unwrap().to_string(), name);
    }
    // Case and `_` are normalised, as Xen's rule writes names.
    assert_eq!(FeatureBit::parse("SSE4_1").unwrap().to_string(), "sse4-1");
    assert_eq!(FeatureBit::parse("tsc_adjust").unwrap().to_string(), "tsc-adjust");
    assert_eq!(FeatureBit::parse(" LAHF_LM ").unwrap().to_string(), "lahf-lm");
    assert_eq!(FeatureBit::parse("sse4_2").unwrap(), FeatureBit::parse("sse4.2").unwrap());
}

#[test]
fn unknown_names_suggest_the_nearest() {
    let err = FeatureBit::parse("avx5l2f").unwrap_err();
    let FeatureNameError::Unknown { name, suggestions } = &err else { panic!("{err:?}") };
    assert_eq!(name, "avx5l2f");
    assert_eq!(suggestions.first(), Some(&"avx512f"));
    assert!(err.to_string().starts_with("unknown CPU feature \"avx5l2f\": did you mean"), "{err}");

    let FeatureNameError::Unknown { suggestions, .. } = FeatureBit::parse("sse4-3").unwrap_err() else { panic!() };
    assert!(suggestions.contains(&"sse4-1") && suggestions.contains(&"sse4-2"), "{suggestions:?}");

    // An alias typo suggests the feature it stands for.
    let FeatureNameError::Unknown { suggestions, .. } = FeatureBit::parse("hypr").unwrap_err() else { panic!() };
    assert_eq!(suggestions[0], "hypervisor");

    let err = FeatureBit::parse("qwertyuiopasdf").unwrap_err();
    assert_eq!(err, FeatureNameError::Unknown { name: "qwertyuiopasdf".into(), suggestions: vec![] });
    assert_eq!(err.to_string(), "unknown CPU feature \"qwertyuiopasdf\"");
}

#[test]
fn names_that_are_not_features() {
    for name in ["maxleaf", "psn", "perfctr_core", "svm_npt", "pcommit", "family"] {
        let err = FeatureBit::parse(name).unwrap_err();
        assert!(matches!(err, FeatureNameError::NotAFeature { .. }), "{name}: {err:?}");
    }
    let err = FeatureBit::parse("nc").unwrap_err();
    assert!(err.to_string().contains("libxl's key"), "{err}");
    // `clflush` is Xen's name of the feature here (only libxl's cpuid= reads it as a key).
    assert_eq!(FeatureBit::parse("clflush").unwrap(), FeatureBit::new(0, 19));
}

#[test]
fn raw_bits_print_and_parse_like_xen_cpuid() {
    let mut s = CpuFeatures::new();
    s.insert(FeatureBit::new(0, 10)); // reserved in 1d
    s.insert(FeatureBit::new(14, 3)); // word 14 names nothing
    s.insert(FeatureBit::new(0, 0));
    assert_eq!(s.to_string(), "fpu <0:10> <14:3>");
    assert_eq!(s.to_string().parse::<CpuFeatures>().unwrap(), s);
    assert_eq!(s.unnamed(), vec![FeatureBit::new(0, 10), FeatureBit::new(14, 3)]);
    assert_eq!(s.names(), vec!["fpu"]);
    for bad in ["<0:32>", "<64:0>", "<a:1>", "<1>", "<1:>", "<:1>", "<-1:2>"] {
        assert!(matches!(FeatureBit::parse(bad), Err(FeatureNameError::InvalidBit { .. })), "{bad}");
    }
}

#[test]
fn words_keep_their_length_and_missing_words_are_zero() {
    let short = CpuFeatures::from_words(vec![1, 0, 0]);
    let long = CpuFeatures::from_words(vec![1; 19]);
    assert_eq!(short.nr_words(), 3);
    assert_eq!(long.nr_words(), 19);
    assert_eq!(short.word(18), 0);
    assert_eq!(short, CpuFeatures::from_words(vec![1]));
    assert_eq!(short, set("fpu"));
    assert_ne!(short, long);
    assert!(short.is_subset(&long));
    assert!(!long.is_subset(&short));
    let u = short.union(&long);
    assert_eq!(u.nr_words(), 19);
    assert_eq!(short.intersection(&long).nr_words(), 19);
    assert_eq!(short.intersection(&long), short);
    assert_eq!(long.to_words(14).len(), 14);
    assert_eq!(long.beyond(14).words(), &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    assert!(CpuFeatures::from_words(vec![0; 19]).is_empty());
    // Hash agrees with Eq.
    let mut h = std::collections::HashSet::new();
    h.insert(short.clone());
    assert!(h.contains(&CpuFeatures::from_words(vec![1, 0, 0, 0, 0])));
}

#[test]
fn set_algebra() {
    let a = set("fpu sse2 avx2 md-clear");
    let b = set("sse2 avx2 avx512f its-no");
    assert_eq!(a.union(&b).to_string(), "fpu sse2 avx2 avx512f md-clear its-no");
    assert_eq!(a.intersection(&b).to_string(), "sse2 avx2");
    assert_eq!(a.difference(&b).to_string(), "fpu md-clear");
    assert_eq!(b.difference(&a).to_string(), "avx512f its-no");
    assert!(!a.is_subset(&b));
    assert!(a.intersection(&b).is_subset(&a));
    assert!(set("fpu").is_disjoint(&set("sse2")));
    assert_eq!(a.len(), 4);

    let mut c = CpuFeatures::new();
    assert!(c.insert_name("avx2").unwrap());
    assert!(!c.insert_name("AVX2").unwrap());
    assert!(c.contains_name("avx2").unwrap());
    assert!(c.contains(names::lookup("avx2").unwrap()));
    assert!(c.remove_name("avx2").unwrap());
    assert!(!c.remove_name("avx2").unwrap());
    assert!(!c.remove(FeatureBit::new(40, 1)));
    assert!(c.is_empty());
    assert_eq!(c.nr_words(), 6);
    assert!(c.insert_name("nosuch").is_err());
}

#[test]
fn display_parse_round_trip_over_every_name() {
    let all: CpuFeatures = FEATURES.iter().map(FeatureBit::from).collect();
    assert_eq!(all.len(), FEATURES.len());
    let text = all.to_string();
    assert_eq!(text.split(' ').count(), FEATURES.len());
    assert_eq!(text.parse::<CpuFeatures>().unwrap(), all);
    assert_eq!(all.nr_words(), 19);
    // Commas, spaces and aliases mix.
    assert_eq!(set("sse41,  sse4.2 ,pni"), set("sse3 sse4-1 sse4-2"));
    assert_eq!(set(""), CpuFeatures::new());
    assert_eq!(CpuFeatures::from_names(["fpu", "<2:0>"]).unwrap().to_string(), "fpu <2:0>");
}

#[test]
fn debug_shows_words_and_names() {
    let s = CpuFeatures::from_words(vec![1, 0x8000_0000]);
    assert_eq!(format!("{s:?}"), "CpuFeatures(00000001:80000000 = [fpu hypervisor])");
}
