//! Detects, for the tests only, whether Xen's development headers and the Xen 4.17
//! libxenctrl are installed. The library itself never links against or includes anything
//! from Xen; these cfgs only decide whether tests that compare with the real thing run or
//! show as ignored.

use std::path::Path;

const XEN_HEADER: &str = "/usr/include/xenctrl.h";
const INCLUDE_DIR: &str = "/usr/include";
const LIBXENCTRL_4_17: &str = "/usr/lib/x86_64-linux-gnu/libxenctrl.so.4.17";
const LIB_DIR: &str = "/usr/lib/x86_64-linux-gnu";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_xen_headers)");
    println!("cargo::rustc-check-cfg=cfg(has_libxenctrl)");
    println!("cargo::rerun-if-changed=build.rs");
    // Watch only paths that exist: a missing path would make cargo rerun this every build.
    for path in [XEN_HEADER, INCLUDE_DIR, LIBXENCTRL_4_17, LIB_DIR] {
        if Path::new(path).exists() {
            println!("cargo::rerun-if-changed={path}");
        }
    }
    if Path::new(XEN_HEADER).exists() {
        println!("cargo::rustc-cfg=has_xen_headers");
    }
    if Path::new(LIBXENCTRL_4_17).exists() {
        println!("cargo::rustc-cfg=has_libxenctrl");
    }
}
