//! xenvcpu: manage the virtual CPUs of Xen domains from dom0.
//!
//! The crate is layered (see README.md): [`cpumap`] is the hot-path translation between
//! libvirt byte maps and Xen bitmaps, and depends on nothing else in the crate.

pub mod cpumap;
pub mod xenstore;
