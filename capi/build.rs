//! Gives the shared library its soname, `libxenvcpu.so.0`: programs linked with
//! `-lxenvcpu` then record that name and keep working across compatible releases.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libxenvcpu.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
