//! Fuzzes the ELF `DT_SONAME` reader of xen-sys on arbitrary bytes: it must never panic (an
//! out-of-bounds index or an arithmetic overflow would), and a soname it returns must be a
//! NUL-free string that occurs in the image followed by a NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The identification bytes the reader requires: magic, 64-bit, little-endian.
const IDENT: &[u8] = b"\x7fELF\x02\x01";

fuzz_target!(|data: &[u8]| {
    check(data);
    // The same bytes behind a valid identification, so that the fuzzer need not find the
    // magic (without a sanitizer, libFuzzer does not see inside the slice comparison).
    let mut image = IDENT.to_vec();
    image.extend_from_slice(data);
    check(&image);
});

fn check(data: &[u8]) {
    if let Some(name) = xen_sys::elf_soname(data) {
        assert!(!name.contains('\0'));
        let mut needle = name.into_bytes();
        needle.push(0);
        assert!(data.windows(needle.len()).any(|w| w == needle.as_slice()), "soname not in the image");
    }
}
