//! Reads `DT_SONAME` from a 64-bit little-endian ELF shared object, so that
//! [`crate::XenCtrl::soname`] reports the soname of the file actually loaded even when it was
//! found through the unversioned `libxenctrl.so` symlink or an explicit path.
//!
//! Plain safe parsing of the file's bytes; every read is bounds-checked and any surprise gives
//! `None`.

const SHT_DYNAMIC: u32 = 6;
const DT_NULL: u64 = 0;
const DT_SONAME: u64 = 14;
const SHDR_SIZE: usize = 64;
const DYN_SIZE: usize = 16;

fn bytes<const N: usize>(data: &[u8], at: usize) -> Option<[u8; N]> {
    data.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    bytes(data, at).map(u16::from_le_bytes)
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    bytes(data, at).map(u32::from_le_bytes)
}

fn usize_at(data: &[u8], at: usize) -> Option<usize> {
    bytes(data, at).map(u64::from_le_bytes).and_then(|v| usize::try_from(v).ok())
}

/// One section header: (type, file offset, size, link).
fn section(data: &[u8], shoff: usize, index: usize) -> Option<(u32, usize, usize, usize)> {
    let base = shoff.checked_add(index.checked_mul(SHDR_SIZE)?)?;
    // Checked: `shoff` comes from the file, and a wrapped offset would read the wrong bytes
    // (or panic in a debug build).
    let field = |offset: usize| base.checked_add(offset);
    Some((
        u32_at(data, field(4)?)?,
        usize_at(data, field(24)?)?,
        usize_at(data, field(32)?)?,
        usize::try_from(u32_at(data, field(40)?)?).ok()?,
    ))
}

/// The `DT_SONAME` string of the ELF image `data`, if it has one.
pub(crate) fn soname(data: &[u8]) -> Option<String> {
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB.
    if data.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = usize_at(data, 0x28)?;
    if usize::from(u16_at(data, 0x3a)?) != SHDR_SIZE {
        return None;
    }
    let shnum = usize::from(u16_at(data, 0x3c)?);
    let (_, dyn_off, dyn_size, strtab_index) =
        (0..shnum).filter_map(|i| section(data, shoff, i)).find(|s| s.0 == SHT_DYNAMIC)?;
    let (_, str_off, str_size, _) = section(data, shoff, strtab_index)?;
    let strtab = data.get(str_off..str_off.checked_add(str_size)?)?;
    let dynamic = data.get(dyn_off..dyn_off.checked_add(dyn_size)?)?;
    for entry in dynamic.chunks_exact(DYN_SIZE) {
        let tag = u64::from_le_bytes(bytes(entry, 0)?);
        if tag == DT_NULL {
            break;
        }
        if tag == DT_SONAME {
            let start = usize_at(entry, 8)?;
            let rest = strtab.get(start..)?;
            let end = rest.iter().position(|&b| b == 0)?;
            return String::from_utf8(rest[..end].to_vec()).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::{c_void, CStr};

    /// Path of the libc this test binary runs with (found through the loader, not guessed).
    fn libc_path() -> std::path::PathBuf {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: all-zero is a valid Dl_info (null pointers); dladdr overwrites it.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        let addr = libc::strlen as *const c_void;
        // SAFETY: `addr` is the address of a function in libc; `info` is a valid out-pointer.
        let ok = unsafe { libc::dladdr(addr, &mut info) };
        assert_ne!(ok, 0);
        assert!(!info.dli_fname.is_null());
        // SAFETY: dladdr succeeded, so dli_fname is a NUL-terminated path owned by the loader.
        let name = unsafe { CStr::from_ptr(info.dli_fname) };
        std::ffi::OsStr::from_bytes(name.to_bytes()).into()
    }

    #[test]
    fn reads_the_soname_of_libc() {
        let data = std::fs::read(libc_path()).unwrap();
        assert_eq!(soname(&data).as_deref(), Some("libc.so.6"));
    }

    #[test]
    fn garbage_and_truncated_images_give_none() {
        assert_eq!(soname(b""), None);
        assert_eq!(soname(b"not an elf file at all, clearly"), None);
        let data = std::fs::read(libc_path()).unwrap();
        for len in [6, 64, 1000] {
            assert_eq!(soname(&data[..len]), None, "truncated to {len}");
        }
    }

    /// A minimal image built here (the shape of the fuzz seed `minimal.so`): header, a
    /// DYNAMIC section with `DT_SONAME` and `DT_NULL`, its string table, three section
    /// headers. Its soname is found; moving `e_shoff` one byte off loses it.
    #[test]
    fn reads_the_soname_of_a_minimal_image_built_here() {
        let strtab = b"\0libxenvcpu-seed.so.1\0";
        let (dyn_off, str_off, shoff) = (64usize, 96usize, 120usize);
        let mut data = vec![0u8; shoff + 3 * SHDR_SIZE];
        data[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        data[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        data[0x3a..0x3c].copy_from_slice(&(SHDR_SIZE as u16).to_le_bytes());
        data[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        data[dyn_off..dyn_off + 8].copy_from_slice(&DT_SONAME.to_le_bytes());
        data[dyn_off + 8..dyn_off + 16].copy_from_slice(&1u64.to_le_bytes());
        data[str_off..str_off + strtab.len()].copy_from_slice(strtab);
        let mut header = |index: usize, ty: u32, off: usize, size: usize, link: u32| {
            let base = shoff + index * SHDR_SIZE;
            data[base + 4..base + 8].copy_from_slice(&ty.to_le_bytes());
            data[base + 24..base + 32].copy_from_slice(&(off as u64).to_le_bytes());
            data[base + 32..base + 40].copy_from_slice(&(size as u64).to_le_bytes());
            data[base + 40..base + 44].copy_from_slice(&link.to_le_bytes());
        };
        header(1, SHT_DYNAMIC, dyn_off, 2 * DYN_SIZE, 2);
        header(2, 3, str_off, strtab.len(), 0);
        assert_eq!(soname(&data).as_deref(), Some("libxenvcpu-seed.so.1"));
        data[0x28] += 1;
        assert_eq!(soname(&data), None);
    }

    /// Found by the `elf_soname` fuzz target: a section header offset near `usize::MAX`
    /// made `base + 4` overflow (a panic in debug builds; in release, a read of the bytes
    /// at the wrapped offset).
    #[test]
    fn section_header_offset_near_the_end_of_the_address_space_gives_none() {
        let mut data = vec![0u8; 80];
        data[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        data[0x28..0x30].copy_from_slice(&(u64::MAX - 2).to_le_bytes()); // e_shoff
        data[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        data[0x3c..0x3e].copy_from_slice(&1u16.to_le_bytes()); // e_shnum
        assert_eq!(soname(&data), None);
        // The input the fuzzer found.
        let found: &[u8] = &[
            0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0xcc, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x41, 0x00, 0x65, 0x6e, 0x76, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x32, 0x32, 0x00,
        ];
        assert_eq!(soname(found), None);
    }

    #[cfg(has_libxenctrl)]
    #[test]
    fn reads_the_soname_of_libxenctrl_4_17() {
        let data = std::fs::read("/usr/lib/x86_64-linux-gnu/libxenctrl.so.4.17").unwrap();
        assert_eq!(soname(&data).as_deref(), Some("libxenctrl.so.4.17"));
    }
}
