//! Real-hypercall tests of the libxenguest bindings (featuresets, CPU policies), for the Xen
//! lab (`tests/lab/lab.sh test`).
//!
//! Every test is `#[ignore]`d so a plain `cargo test` skips them visibly; in the lab each
//! first asserts `XENVCPU_LAB=1`, then uses the hypervisor unconditionally. They compare our
//! reading of the featuresets with Xen's own tools: `xen-cpuid` (xen-utils, in dom0's PATH)
//! and `xl info`'s `hw_caps`. The featuresets read are printed on stderr.

use std::collections::BTreeMap;
use std::process::Command;

use xen_sys::{
    cpu_featureset, libxenguest_soname, running_hypervisor_version, xc_physinfo_t, xenguest, CpuPolicy, Errno,
    Interface, XEN_SYSCTL_cpu_featureset_host, XEN_SYSCTL_cpu_featureset_hvm, XEN_SYSCTL_cpu_featureset_hvm_max,
    XEN_SYSCTL_cpu_featureset_pv, XEN_SYSCTL_cpu_featureset_pv_max, XEN_SYSCTL_cpu_featureset_raw,
    XEN_SYSCTL_cpu_policy_host, XenGuest, XEN_CPUID_NO_SUBLEAF,
};

fn lab() {
    assert_eq!(
        std::env::var("XENVCPU_LAB").as_deref(),
        Ok("1"),
        "this test needs the Xen lab (XENVCPU_LAB=1 is not set): run tests/lab/lab.sh test"
    );
}

fn open() -> Interface {
    Interface::open().unwrap_or_else(|e| panic!("lab: cannot open the Xen interface: {e}"))
}

fn guest(xc: &Interface) -> &'static XenGuest {
    xenguest(xc.lib()).unwrap_or_else(|e| panic!("lab: {e}"))
}

/// xen-cpuid's names of the dynamic sets, with the featureset index of each.
const SETS: [(&str, u32); 6] = [
    ("Raw", XEN_SYSCTL_cpu_featureset_raw),
    ("Host", XEN_SYSCTL_cpu_featureset_host),
    ("PV Default", XEN_SYSCTL_cpu_featureset_pv),
    ("HVM Default", XEN_SYSCTL_cpu_featureset_hvm),
    ("PV Max", XEN_SYSCTL_cpu_featureset_pv_max),
    ("HVM Max", XEN_SYSCTL_cpu_featureset_hvm_max),
];

/// `xxxxxxxx:xxxxxxxx:...` → words.
fn hex_words(text: &str) -> Option<Vec<u32>> {
    text.split(':').map(|w| u32::from_str_radix(w, 16).ok().filter(|_| w.len() == 8)).collect()
}

/// The "Dynamic sets" of `xen-cpuid`'s default output: name → words.
fn xen_cpuid_dynamic_sets() -> BTreeMap<String, Vec<u32>> {
    let out = Command::new("xen-cpuid").output().unwrap_or_else(|e| panic!("lab: cannot run xen-cpuid: {e}"));
    assert!(out.status.success(), "xen-cpuid: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    eprintln!("xen-cpuid says:\n{text}");
    let dynamic = text.split_once("Dynamic sets:").expect("xen-cpuid prints its dynamic sets").1;
    dynamic
        .lines()
        .filter_map(|line| {
            let (name, words) = line.trim_end().rsplit_once(char::is_whitespace)?;
            Some((name.trim().to_owned(), hex_words(words)?))
        })
        .collect()
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn libxenguest_of_the_running_release_is_loaded_for_libxenctrl() {
    lab();
    let xc = open();
    let release = running_hypervisor_version().expect("the lab runs on Xen");
    let lib = guest(&xc);
    assert_eq!(lib.soname(), libxenguest_soname(release));
    let file = lib.file().expect("the loader reports the file");
    assert_eq!(file.parent(), xc.lib().file().and_then(|f| f.parent()), "next to libxenctrl: {file:?}");
    eprintln!("libxenguest: {} ({})", lib.soname(), file.display());
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn featuresets_equal_xen_cpuids_bit_for_bit() {
    lab();
    let xc = open();
    let lib = guest(&xc);
    let theirs = xen_cpuid_dynamic_sets();
    for name in ["Raw", "Host"] {
        assert!(theirs.contains_key(name), "xen-cpuid printed no {name} set: {theirs:?}");
    }
    let mut compared = 0;
    for (name, index) in SETS {
        // SAFETY: `xc` is open and `lib` was loaded for its libxenctrl.
        let ours = unsafe { cpu_featureset(lib, xc.as_ptr(), index) };
        eprintln!("featureset {index} ({name}): {}", ours.as_ref().map_or_else(|e| e.to_string(), |w| hex(w)));
        let Some(expected) = theirs.get(name) else {
            // xen-cpuid says "<name> featureset not supported by Xen" for an index Xen lacks.
            assert!(ours.is_err(), "xen-cpuid has no {name} set but we read one");
            continue;
        };
        let ours = ours.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ours.len(), expected.len(), "{name}: word count");
        for (w, (&a, &b)) in ours.iter().zip(expected).enumerate() {
            assert_eq!(a, b, "{name} word {w}: ours {a:08x}, xen-cpuid {b:08x} (differ in {:08x})", a ^ b);
        }
        compared += 1;
    }
    assert!(compared >= 2, "at least raw and host compared");
}

fn hex(words: &[u32]) -> String {
    words.iter().map(|w| format!("{w:08x}")).collect::<Vec<_>>().join(":")
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn host_featureset_starts_with_physinfo_and_xl_infos_hw_caps() {
    lab();
    let xc = open();
    let lib = guest(&xc);
    // SAFETY: `xc` is open and `lib` was loaded for its libxenctrl.
    let host = unsafe { cpu_featureset(lib, xc.as_ptr(), XEN_SYSCTL_cpu_featureset_host) }.unwrap();
    assert!(host.len() >= 14, "Xen 4.17+ has at least 14 words: {}", host.len());
    let mut info = xc_physinfo_t::default();
    // SAFETY: `xc` is open; `info` is one writable xc_physinfo_t.
    assert_eq!(unsafe { (xc.lib().xc_physinfo)(xc.as_ptr(), &mut info) }, 0, "{}", Errno::last());
    // hw_cap is Xen's boot_cpu_data.x86_capability: the host featureset's words 0-7,
    // except that word 2 (0x80000001 edx) lacks the features AMD repeats from leaf 1 edx
    // (Xen's CPUID_COMMON_1D_FEATURES, 0x0183f3ff), which the host policy keeps. Seen in
    // the lab (qemu64, AMD): host word 2 2193fbfd, hw_cap word 2 20100800.
    const COMMON_1D_FEATURES: u32 = 0x0183_f3ff;
    let mut expected = [0u32; 8];
    expected.copy_from_slice(&host[..8]);
    expected[2] &= !COMMON_1D_FEATURES;
    eprintln!("host featureset {host:08x?}, physinfo.hw_cap {:08x?}", info.hw_cap);
    assert_eq!(info.hw_cap, expected, "physinfo.hw_cap");
    let out = Command::new("xl").arg("info").output().expect("xl info");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().find(|l| l.starts_with("hw_caps")).expect("xl info has hw_caps");
    let words = hex_words(line.split_once(':').unwrap().1.trim()).unwrap_or_else(|| panic!("{line}"));
    eprintln!("xl info {line}");
    assert_eq!(words.len(), 8, "{line}");
    assert_eq!(words, expected, "xl info hw_caps");
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn policies_serialise_with_leaf_0_and_both_msrs() {
    lab();
    let xc = open();
    let lib = guest(&xc);
    let mut host = CpuPolicy::new(lib).unwrap();
    // SAFETY: `xc` is open and `lib` was loaded for its libxenctrl.
    unsafe { host.get_system(xc.as_ptr(), XEN_SYSCTL_cpu_policy_host) }.unwrap();
    // SAFETY: as above.
    let (leaves, msrs) = unsafe { host.serialise(xc.as_ptr()) }.unwrap();
    eprintln!("host policy: {} leaves, {} MSRs", leaves.len(), msrs.len());
    for l in &leaves {
        eprintln!("  {:08x}:{:08x} -> {:08x}:{:08x}:{:08x}:{:08x}", l.leaf, l.subleaf, l.a, l.b, l.c, l.d);
    }
    for m in &msrs {
        eprintln!("  {:08x} -> {:016x}", m.idx, m.val);
    }
    assert_eq!((leaves[0].leaf, leaves[0].subleaf), (0, XEN_CPUID_NO_SUBLEAF));
    assert!(leaves.iter().any(|l| l.leaf == 0x8000_0000), "the extended range");
    let idx: Vec<u32> = msrs.iter().map(|m| m.idx).collect();
    assert_eq!(idx, [0xce, 0x10a]);

    let mut dom0 = CpuPolicy::new(lib).unwrap();
    // SAFETY: as above.
    unsafe { dom0.get_domain(xc.as_ptr(), 0) }.unwrap();
    // SAFETY: as above.
    let (dleaves, _) = unsafe { dom0.serialise(xc.as_ptr()) }.unwrap();
    assert_eq!((dleaves[0].b, dleaves[0].c, dleaves[0].d), (leaves[0].b, leaves[0].c, leaves[0].d), "vendor");
    // A domain that does not exist.
    let mut none = CpuPolicy::new(lib).unwrap();
    // SAFETY: as above.
    let err = unsafe { none.get_domain(xc.as_ptr(), 0x7ff0 - 1) }.unwrap_err();
    assert_eq!(err, Errno::new(libc::ESRCH));
}
