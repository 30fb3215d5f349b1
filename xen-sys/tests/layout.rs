//! Proves the Rust mirrors have the layout of the C declarations.
//!
//! For each header set (our `vendor-headers/`, and Xen's real `<xenctrl.h>` when libxen-dev
//! is installed) this writes a small C program that prints, for every mirrored struct, its
//! size and alignment and every field's offset and size, plus every constant; it also
//! asserts at compile time (`__builtin_types_compatible_p`) that each libxenctrl function
//! has the prototype our function table uses. The program is compiled with the system C
//! compiler (`$CC`, default `cc`) and run; each printed line is compared with the value
//! Rust computes (`size_of`, `align_of`, `offset_of!`). Any difference fails the test, and
//! all differences are listed.
//!
//! The structs, fields, constants and prototypes are listed once below; the Rust values and
//! the C program are both generated from those lists.

use std::collections::BTreeMap;
use std::ffi::{c_int, c_uint, c_void};
use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use xen_sys::*;

type Values = BTreeMap<String, u64>;

fn field_size<T, F>(_field: fn(&T) -> &F) -> u64 {
    size_of::<F>() as u64
}

/// C program fragment and Rust values, built side by side.
#[derive(Default)]
struct Spec {
    c: String,
    rust: Values,
}

impl Spec {
    fn item(&mut self, key: String, c_expr: &str, rust: u64) {
        writeln!(self.c, "    P(\"{key}\", {c_expr});").unwrap();
        assert!(self.rust.insert(key, rust).is_none(), "duplicate key");
    }
}

/// `Rust type => "C type" { fields }`: size, alignment, and every field's offset and size.
macro_rules! structs {
    ($spec:ident; $( $ty:ident => $cty:literal { $($field:ident),* $(,)? } )*) => {$(
        $spec.item(format!("size {}", stringify!($ty)), concat!("sizeof(", $cty, ")"),
            size_of::<$ty>() as u64);
        $spec.item(format!("align {}", stringify!($ty)), concat!("_Alignof(", $cty, ")"),
            align_of::<$ty>() as u64);
        $(
            $spec.item(
                format!("offset {}.{}", stringify!($ty), stringify!($field)),
                concat!("offsetof(", $cty, ", ", stringify!($field), ")"),
                offset_of!($ty, $field) as u64,
            );
            $spec.item(
                format!("fsize {}.{}", stringify!($ty), stringify!($field)),
                concat!("sizeof(((", $cty, " *)0)->", stringify!($field), ")"),
                field_size(|s: &$ty| &s.$field),
            );
        )*
    )*};
}

/// Members of the payload union of `struct xen_domctl` (anonymous in C).
macro_rules! domctl_union {
    ($spec:ident; $($member:ident),*) => {$(
        $spec.item(
            format!("offset xen_domctl.u.{}", stringify!($member)),
            concat!("offsetof(struct xen_domctl, u.", stringify!($member), ")"),
            (offset_of!(xen_domctl, u) + offset_of!(xen_domctl_u, $member)) as u64,
        );
    )*};
}

/// Constants by name (same name in C and Rust).
macro_rules! consts {
    ($spec:ident; $($name:ident),* $(,)?) => {$(
        $spec.item(
            format!("const {}", stringify!($name)),
            stringify!($name),
            u64::try_from($name).unwrap(),
        );
    )*};
}

/// `name: Rust fn type = "C pointer type"`. The Rust side is a compile-time check that the
/// table field has that type; the C side a compile-time check that the header's function
/// has that type.
macro_rules! prototypes {
    (fn $check:ident(&$table:ty); const $list:ident; $($name:ident: $rty:ty = $cty:literal;)*) => {
        #[allow(dead_code)]
        fn $check(lib: &$table) {
            $( let _: $rty = lib.$name; )*
        }
        const $list: &[(&str, &str)] = &[$((stringify!($name), $cty)),*];
    };
}

prototypes! {
    fn rust_prototypes(&XenCtrl);
    const PROTOTYPES;
    xc_interface_open:
        unsafe extern "C" fn(*mut xentoollog_logger, *mut xentoollog_logger, c_uint)
            -> *mut xc_interface
        = "xc_interface *(*)(xentoollog_logger *, xentoollog_logger *, unsigned)";
    xc_interface_close: unsafe extern "C" fn(*mut xc_interface) -> c_int
        = "int (*)(xc_interface *)";
    xc_version: unsafe extern "C" fn(*mut xc_interface, c_int, *mut c_void) -> c_int
        = "int (*)(xc_interface *, int, void *)";
    xc_get_cpumap_size: unsafe extern "C" fn(*mut xc_interface) -> c_int
        = "int (*)(xc_interface *)";
    xc_physinfo: unsafe extern "C" fn(*mut xc_interface, *mut xc_physinfo_t) -> c_int
        = "int (*)(xc_interface *, xc_physinfo_t *)";
    xc_cputopoinfo:
        unsafe extern "C" fn(*mut xc_interface, *mut c_uint, *mut xc_cputopo_t) -> c_int
        = "int (*)(xc_interface *, unsigned *, xc_cputopo_t *)";
    xc_domain_getinfolist:
        unsafe extern "C" fn(*mut xc_interface, u32, c_uint, *mut xc_domaininfo_t) -> c_int
        = "int (*)(xc_interface *, uint32_t, unsigned int, xc_domaininfo_t *)";
    xc_vcpu_getinfo:
        unsafe extern "C" fn(*mut xc_interface, u32, u32, *mut xc_vcpuinfo_t) -> c_int
        = "int (*)(xc_interface *, uint32_t, uint32_t, xc_vcpuinfo_t *)";
    xc_vcpu_setaffinity:
        unsafe extern "C" fn(*mut xc_interface, u32, c_int, xc_cpumap_t, xc_cpumap_t, u32)
            -> c_int
        = "int (*)(xc_interface *, uint32_t, int, xc_cpumap_t, xc_cpumap_t, uint32_t)";
    xc_vcpu_getaffinity:
        unsafe extern "C" fn(*mut xc_interface, u32, c_int, xc_cpumap_t, xc_cpumap_t, u32)
            -> c_int
        = "int (*)(xc_interface *, uint32_t, int, xc_cpumap_t, xc_cpumap_t, uint32_t)";
    xc_domain_max_vcpus: unsafe extern "C" fn(*mut xc_interface, u32, c_uint) -> c_int
        = "int (*)(xc_interface *, uint32_t, unsigned int)";
    xc_get_nodemap_size: unsafe extern "C" fn(*mut xc_interface) -> c_int
        = "int (*)(xc_interface *)";
    xc_domain_node_getaffinity: unsafe extern "C" fn(*mut xc_interface, u32, xc_nodemap_t) -> c_int
        = "int (*)(xc_interface *, uint32_t, xc_nodemap_t)";
    xc_cpupool_getinfo: unsafe extern "C" fn(*mut xc_interface, u32) -> *mut xc_cpupoolinfo_t
        = "xc_cpupoolinfo_t *(*)(xc_interface *, uint32_t)";
    xc_cpupool_infofree: unsafe extern "C" fn(*mut xc_interface, *mut xc_cpupoolinfo_t)
        = "void (*)(xc_interface *, xc_cpupoolinfo_t *)";
    xc_cpupool_freeinfo: unsafe extern "C" fn(*mut xc_interface) -> xc_cpumap_t
        = "xc_cpumap_t (*)(xc_interface *)";
}

prototypes! {
    fn rust_guest_prototypes(&XenGuest);
    const GUEST_PROTOTYPES;
    xc_get_cpu_featureset: unsafe extern "C" fn(*mut xc_interface, u32, *mut u32, *mut u32) -> c_int
        = "int (*)(xc_interface *, uint32_t, uint32_t *, uint32_t *)";
    xc_cpu_policy_init: unsafe extern "C" fn() -> *mut xc_cpu_policy_t
        = "xc_cpu_policy_t *(*)(void)";
    xc_cpu_policy_destroy: unsafe extern "C" fn(*mut xc_cpu_policy_t)
        = "void (*)(xc_cpu_policy_t *)";
    xc_cpu_policy_get_system: unsafe extern "C" fn(*mut xc_interface, c_uint, *mut xc_cpu_policy_t) -> c_int
        = "int (*)(xc_interface *, unsigned int, xc_cpu_policy_t *)";
    xc_cpu_policy_get_domain: unsafe extern "C" fn(*mut xc_interface, u32, *mut xc_cpu_policy_t) -> c_int
        = "int (*)(xc_interface *, uint32_t, xc_cpu_policy_t *)";
    xc_cpu_policy_serialise: unsafe extern "C" fn(
        *mut xc_interface,
        *const xc_cpu_policy_t,
        *mut xen_cpuid_leaf_t,
        *mut u32,
        *mut xen_msr_entry_t,
        *mut u32,
    ) -> c_int
        = "int (*)(xc_interface *, const xc_cpu_policy_t *, xen_cpuid_leaf_t *, uint32_t *, xen_msr_entry_t *, uint32_t *)";
    xc_cpu_policy_get_size: unsafe extern "C" fn(*mut xc_interface, *mut u32, *mut u32) -> c_int
        = "int (*)(xc_interface *, uint32_t *, uint32_t *)";
}

/// Everything both header sets must agree on.
fn common_spec() -> Spec {
    let mut s = Spec::default();
    structs! { s;
        xenctl_bitmap => "struct xenctl_bitmap" { bitmap, nr_bits }
        xen_arch_domainconfig => "struct xen_arch_domainconfig" { emulation_flags, misc_flags }
        xen_domctl_getdomaininfo => "struct xen_domctl_getdomaininfo" {
            domain, pad1, flags, tot_pages, max_pages, outstanding_pages, shr_pages,
            paged_pages, shared_info_frame, cpu_time, nr_online_vcpus, max_vcpu_id, ssidref,
            handle, cpupool, gpaddr_bits, pad2, arch_config,
        }
        xen_domctl_vcpuaffinity => "struct xen_domctl_vcpuaffinity" {
            vcpu, flags, cpumap_hard, cpumap_soft,
        }
        xen_domctl_getvcpuinfo => "struct xen_domctl_getvcpuinfo" {
            vcpu, online, blocked, running, cpu_time, cpu,
        }
        xen_domctl_nodeaffinity => "struct xen_domctl_nodeaffinity" { nodemap }
        xen_domctl_max_vcpus => "struct xen_domctl_max_vcpus" { max }
        xen_domctl => "struct xen_domctl" { cmd, interface_version, domain, _pad, u }
        xen_sysctl_physinfo => "struct xen_sysctl_physinfo" {
            threads_per_core, cores_per_socket, nr_cpus, max_cpu_id, nr_nodes, max_node_id,
            cpu_khz, capabilities, arch_capabilities, pad, total_pages, free_pages,
            scrub_pages, outstanding_pages, max_mfn, hw_cap,
        }
        xen_sysctl_cputopo => "struct xen_sysctl_cputopo" { core, socket, node }
        xen_sysctl_cputopoinfo => "struct xen_sysctl_cputopoinfo" { num_cpus, cputopo }
        xc_domaininfo_t => "xc_domaininfo_t" {}
        xc_vcpuinfo_t => "xc_vcpuinfo_t" {}
        xc_physinfo_t => "xc_physinfo_t" {}
        xc_cputopo_t => "xc_cputopo_t" {}
        xc_cpupoolinfo_t => "xc_cpupoolinfo_t" { cpupool_id, sched_id, n_dom, cpumap }
        xen_cpuid_leaf => "struct xen_cpuid_leaf" { leaf, subleaf, a, b, c, d }
        xen_msr_entry => "struct xen_msr_entry" { idx, flags, val }
        xen_cpuid_leaf_t => "xen_cpuid_leaf_t" {}
        xen_msr_entry_t => "xen_msr_entry_t" {}
        xc_cpumap_t => "xc_cpumap_t" {}
        xc_nodemap_t => "xc_nodemap_t" {}
        domid_t => "domid_t" {}
    }
    domctl_union! { s; getdomaininfo, nodeaffinity, vcpuaffinity, getvcpuinfo, max_vcpus, pad }
    consts! { s;
        DOMID_FIRST_RESERVED,
        XEN_DOMCTL_getdomaininfo, XEN_DOMCTL_setvcpuaffinity, XEN_DOMCTL_getvcpuinfo,
        XEN_DOMCTL_max_vcpus, XEN_DOMCTL_getvcpuaffinity, XEN_DOMCTL_getnodeaffinity,
        XEN_SYSCTL_physinfo, XEN_SYSCTL_getdomaininfolist, XEN_SYSCTL_cputopoinfo,
        XEN_DOMINF_dying, XEN_DOMINF_hvm_guest, XEN_DOMINF_shutdown, XEN_DOMINF_paused,
        XEN_DOMINF_blocked, XEN_DOMINF_running, XEN_DOMINF_debugged, XEN_DOMINF_xs_domain,
        XEN_DOMINF_hap, XEN_DOMINF_shutdownshift, XEN_DOMINF_shutdownmask,
        XEN_INVALID_MAX_VCPU_ID,
        XEN_X86_EMU_LAPIC, XEN_X86_EMU_HPET, XEN_X86_EMU_PM, XEN_X86_EMU_RTC, XEN_X86_EMU_IOAPIC,
        XEN_X86_EMU_PIC, XEN_X86_EMU_VGA, XEN_X86_EMU_IOMMU, XEN_X86_EMU_PIT, XEN_X86_EMU_USE_PIRQ,
        XEN_X86_EMU_VPCI,
        XEN_VCPUAFFINITY_HARD, XEN_VCPUAFFINITY_SOFT, XEN_VCPUAFFINITY_FORCE,
        XEN_INVALID_CORE_ID, XEN_INVALID_SOCKET_ID, XEN_INVALID_NODE_ID,
        XENVER_version, XC_OPENFLAG_DUMMY, XC_OPENFLAG_NON_REENTRANT,
        XEN_SCHEDULER_CREDIT, XEN_SCHEDULER_CREDIT2, XEN_SCHEDULER_ARINC653, XEN_SCHEDULER_RTDS,
        XEN_SCHEDULER_NULL, XC_CPUPOOL_POOLID_ANY,
        XEN_CPUID_NO_SUBLEAF,
        XEN_SYSCTL_cpu_featureset_raw, XEN_SYSCTL_cpu_featureset_host, XEN_SYSCTL_cpu_featureset_pv,
        XEN_SYSCTL_cpu_featureset_hvm, XEN_SYSCTL_cpu_featureset_pv_max, XEN_SYSCTL_cpu_featureset_hvm_max,
        XEN_SYSCTL_cpu_policy_raw, XEN_SYSCTL_cpu_policy_host, XEN_SYSCTL_cpu_policy_pv_max,
        XEN_SYSCTL_cpu_policy_hvm_max, XEN_SYSCTL_cpu_policy_pv_default, XEN_SYSCTL_cpu_policy_hvm_default,
    }
    for (name, cty) in PROTOTYPES.iter().chain(GUEST_PROTOTYPES) {
        writeln!(
            s.c,
            "    _Static_assert(__builtin_types_compatible_p(__typeof__(&{name}), {cty}), \
             \"prototype of {name}\");"
        )
        .unwrap();
        s.item(format!("proto {name}"), "1", 1);
    }
    s
}

fn program(prelude: &str, body: &str) -> String {
    format!(
        "{prelude}\n#include <stddef.h>\n#include <stdio.h>\n\n\
         #define P(key, value) printf(\"%s %llu\\n\", key, (unsigned long long)(value))\n\n\
         int main(void)\n{{\n{body}    return 0;\n}}\n"
    )
}

/// Compiles and runs `source`, returning the printed `key value` lines.
fn compile_and_run(name: &str, source: &str, cflags: &[&str]) -> Values {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("xen-sys-layout");
    std::fs::create_dir_all(&dir).unwrap();
    let c_file = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    std::fs::write(&c_file, source).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = Command::new(&cc)
        .args(["-std=gnu11", "-Wall", "-Werror"])
        .args(cflags)
        .arg("-o")
        .arg(&exe)
        .arg(&c_file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}"));
    assert!(out.status.success(), "{cc} failed on {}:\n{}", c_file.display(), String::from_utf8_lossy(&out.stderr));
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success(), "{} failed", exe.display());
    String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (key, value) = line.rsplit_once(' ').expect("`key value` line");
            (key.to_owned(), value.parse().expect("number"))
        })
        .collect()
}

/// Every difference between Rust and C, one line each.
fn differences(rust: &Values, c: &Values) -> Vec<String> {
    let mut diffs = Vec::new();
    for (key, r) in rust {
        match c.get(key) {
            Some(v) if v == r => {}
            Some(v) => diffs.push(format!("{key}: Rust {r}, C {v}")),
            None => diffs.push(format!("{key}: missing from the C output")),
        }
    }
    for key in c.keys().filter(|k| !rust.contains_key(*k)) {
        diffs.push(format!("{key}: only in the C output"));
    }
    diffs
}

fn assert_same(what: &str, rust: &Values, c: &Values) {
    let diffs = differences(rust, c);
    assert!(diffs.is_empty(), "{what}: {} mismatches:\n  {}", diffs.len(), diffs.join("\n  "));
}

#[test]
fn prototype_list_covers_the_whole_function_table() {
    let listed: Vec<&str> = PROTOTYPES.iter().map(|(name, _)| *name).collect();
    assert_eq!(listed, XenCtrl::SYMBOLS);
    let listed: Vec<&str> = GUEST_PROTOTYPES.iter().map(|(name, _)| *name).collect();
    assert_eq!(listed, XenGuest::SYMBOLS);
}

#[test]
fn comparison_reports_every_kind_of_difference() {
    let rust: Values = [("a".to_owned(), 1), ("b".to_owned(), 2)].into();
    let c: Values = [("a".to_owned(), 1), ("b".to_owned(), 3), ("x".to_owned(), 0)].into();
    let diffs = differences(&rust, &c);
    assert_eq!(diffs, ["b: Rust 2, C 3", "x: only in the C output"]);
    assert_eq!(differences(&c, &rust).len(), 2);
}

#[test]
fn vendor_headers_match_rust_layouts() {
    let mut spec = common_spec();
    // The per-release interface versions are declared only in our header.
    for iv in INTERFACE_VERSIONS {
        let v = iv.release;
        for (kind, value) in [("DOMCTL", iv.domctl), ("SYSCTL", iv.sysctl)] {
            let name = format!("XENVCPU_XEN_{}_{}_{kind}_INTERFACE_VERSION", v.major, v.minor);
            spec.item(format!("const {name}"), &name, u64::from(value));
        }
    }
    let vendor = Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor-headers");
    let source = program("#include \"xenvcpu_xenctrl.h\"\n#include \"xenvcpu_xenguest.h\"", &spec.c);
    let include = format!("-I{}", vendor.display());
    let c = compile_and_run("vendor", &source, &[&include, "-Wextra", "-pedantic"]);
    assert_same("vendor-headers vs Rust", &spec.rust, &c);
}

/// Where the real headers are: `$XENVCPU_XEN_HEADERS_ROOT` (a libxen-dev unpacked there,
/// e.g. Xen 4.20's from Debian 13 by `tests/lab/lab.sh --xen 4.20 headers`), else the
/// installed libxen-dev under `/`.
fn headers_root() -> PathBuf {
    match std::env::var_os("XENVCPU_XEN_HEADERS_ROOT").filter(|r| !r.is_empty()) {
        Some(root) => {
            let root = PathBuf::from(root);
            assert!(
                root.join("usr/include/xenctrl.h").exists(),
                "XENVCPU_XEN_HEADERS_ROOT={} has no usr/include/xenctrl.h",
                root.display()
            );
            root
        }
        None => PathBuf::from("/"),
    }
}

/// The Xen release of the libxen-dev under `root`, from the target of its unversioned
/// `libxenctrl.so` symlink (`libxenctrl.so.4.17`).
fn installed_release(root: &Path) -> Option<XenVersion> {
    let target = std::fs::read_link(root.join("usr/lib/x86_64-linux-gnu/libxenctrl.so")).ok()?;
    let name = target.file_name()?.to_str()?;
    let mut parts = name.strip_prefix("libxenctrl.so.")?.split('.');
    Some(XenVersion::new(parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[test]
#[cfg_attr(not(has_xen_headers), ignore = "libxen-dev is not installed: apt-get install libxen-dev")]
fn real_xen_headers_match_rust_layouts() {
    let mut spec = common_spec();
    spec.c.push_str(
        "    P(\"real XEN_DOMCTL_INTERFACE_VERSION\", XEN_DOMCTL_INTERFACE_VERSION);\n\
         \x20   P(\"real XEN_SYSCTL_INTERFACE_VERSION\", XEN_SYSCTL_INTERFACE_VERSION);\n",
    );
    let source = program("#include <xenctrl.h>\n#include <xenguest.h>", &spec.c);
    let root = headers_root();
    let include = format!("-I{}", root.join("usr/include").display());
    let mut c = compile_and_run("real", &source, &["-D__XEN_TOOLS__", &include]);

    let domctl = c.remove("real XEN_DOMCTL_INTERFACE_VERSION").unwrap();
    let sysctl = c.remove("real XEN_SYSCTL_INTERFACE_VERSION").unwrap();
    let pair = |iv: &InterfaceVersions| (u64::from(iv.domctl), u64::from(iv.sysctl));
    let release = installed_release(&root);
    if root != Path::new("/") {
        assert!(release.is_some(), "{}: no libxenctrl.so link naming the release", root.display());
    }
    match release {
        Some(release) => {
            let iv = interface_versions(release)
                .unwrap_or_else(|| panic!("installed Xen {release} is not in INTERFACE_VERSIONS"));
            assert_eq!(pair(&iv), (domctl, sysctl), "interface versions of Xen {release}");
        }
        None => assert!(
            INTERFACE_VERSIONS.iter().any(|iv| pair(iv) == (domctl, sysctl)),
            "real header's interface versions ({domctl:#x}, {sysctl:#x}) are not in the table"
        ),
    }
    assert_same(
        &format!("<xenctrl.h> of {} vs Rust", release.map_or("the installed Xen".into(), |r| format!("Xen {r}"))),
        &spec.rust,
        &c,
    );
}
