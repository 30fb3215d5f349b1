//! CPU maps: the [`CpuMap`] set type, translation between libvirt byte maps, Xen bitmaps
//! and `u64` words, and the cpu-list syntax.
//!
//! This module is the hot path of the crate and depends on nothing else in it.
//!
//! # Formats
//! - A **libvirt cpumap** is `maplen` bytes; CPU `i` is bit `i % 8` of byte `i / 8`. An
//!   array of per-vCPU maps stores vCPU `v`'s map at bytes `v * maplen .. (v + 1) * maplen`.
//! - A **Xen bitmap** (`xc_cpumap_t`, `xenctl_bitmap`) has the same byte layout and is
//!   `(max_cpu_id + 1 + 7) / 8` bytes for the host.
//! - A **word bitmap** is `u64`s with CPU `i` = bit `i % 64` of word `i / 64`.
//!
//! Translations never drop a CPU silently: a set bit that has no place in the
//! destination is a [`CpuMapError`] naming it, and the destination is left untouched.

mod bytes;
mod error;
mod list;
mod moves;
mod set;
mod small;

pub use bytes::{
    bytes_to_words, copy_cpumap, cpu_maplen, cpu_usable, cpu_used, get_cpumap, get_cpumap_mut, libvirt_maps_to_xen,
    libvirt_to_xen, unuse_cpu, use_cpu, words_to_bytes, xen_maps_to_libvirt, xen_to_libvirt,
};
pub use error::{CpuListError, CpuMapError, TokenPos};
pub use list::{parse_cpu_list, CpuListContext, MAX_UNBOUNDED_CPU};
pub use set::{CpuMap, Iter};

// The word bitmaps are the byte maps read as little-endian words, and the translations
// between them view the words' memory as bytes.
#[cfg(target_endian = "big")]
compile_error!("xenvcpu's word bitmaps assume a little-endian machine (as Xen's hosts are: x86 and Arm)");
