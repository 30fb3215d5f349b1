//! Raw Xen ABI mirrors and the run-time loader for libxenctrl.
//!
//! This crate knows bytes and calling conventions only; the safe, policy-aware layer lives
//! in the `xenvcpu` crate.
//!
//! * [`abi`]: `#[repr(C)]` mirrors of the Xen 4.17–4.22 structures and numbers declared in
//!   `vendor-headers/` (our own C headers), with their C names. Layouts are proven equal to
//!   those headers, and to Xen's real `<xenctrl.h>` where installed, by `tests/layout.rs`.
//! * [`xenctrl`] / [`XenCtrl`]: libxenctrl, `dlopen`ed at run time by versioned soname
//!   (running hypervisor first, then 4.22 … 4.17, then `libxenctrl.so`; or
//!   `$XENVCPU_LIBXENCTRL`, ignored in set-user-ID processes: [`secure_env_var`]), as a
//!   table of `unsafe extern "C" fn` pointers. Only a library whose `DT_SONAME` names a
//!   supported release (4.17–4.22) is used, so no struct of another release's size is ever
//!   written into ours. Nothing links against libxenctrl, so the crate builds and its tests
//!   run without Xen; a missing or unsupported library is a [`LoadError`] naming every file
//!   tried ([`LoadError::kind`] gives the decisive reason).
//! * [`Interface`]: an owned `xc_interface` handle; [`OpenError`] says why opening failed
//!   (no library, not on Xen, not root, library and hypervisor of different interface
//!   versions, other), with what libxenctrl logged about it.
//! * [`logger`], [`set_log_hook`], [`take_messages`]: libxenctrl's messages are captured by
//!   our xentoollog logger and never printed; a caller who wants them installs a hook.
//! * [`xenguest`] / [`XenGuest`]: libxenguest, loaded on demand for the libxenctrl in use
//!   (same release, checked by soname), for CPU featuresets and CPUID policies
//!   ([`cpu_featureset`], [`CpuPolicy`]); a missing one is a [`LoadError`] whose
//!   [`target`](LoadError::target) is [`LoadTarget::XenGuest`].
//! * [`Errno`], and helpers that encode libxenctrl pitfalls: [`getinfo_one`] (the
//!   absent-domain check every release needs), [`cpumap_size`] (the exact size of every
//!   affinity buffer), [`nodemap_size`] (the same for the NUMA node map),
//!   [`cpupool_info`] (one cpupool, copied out of libxenctrl's allocation, which it frees)
//!   and [`cpupool_freeinfo`] (the online CPUs in no pool, copied out and freed the same
//!   way).
//!
//! Only x86_64 Linux is supported: that is the layout the mirrors state.
//!
//! # Example
//!
//! ```no_run
//! use xen_sys::{cpumap_size, Errno, Interface, XEN_VCPUAFFINITY_HARD};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let xc = Interface::open()?;
//! let lib = xc.lib();
//! // SAFETY: `xc` is open for the whole block.
//! let size = unsafe { cpumap_size(lib, xc.as_ptr()) }?;
//! let mut hard = vec![0u8; size]; // exactly xc_get_cpumap_size() bytes
//! // SAFETY: `xc` is open; `hard` is exactly `size` bytes, which libxenctrl writes; the soft
//! // map is not selected by the flags, so it may be null.
//! let ret = unsafe {
//!     (lib.xc_vcpu_getaffinity)(
//!         xc.as_ptr(),
//!         0,
//!         0,
//!         hard.as_mut_ptr(),
//!         std::ptr::null_mut(),
//!         XEN_VCPUAFFINITY_HARD,
//!     )
//! };
//! if ret < 0 {
//!     return Err(Errno::last().into());
//! }
//! println!("dom0 vCPU 0 may run on {hard:02x?} ({})", lib.soname());
//! # Ok(())
//! # }
//! ```

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!(
    "xen-sys states the x86_64 layout of the Xen ABI and loads libxenctrl with the Linux \
     dynamic loader: only x86_64 Linux (dom0) is supported"
);

pub mod abi;
mod elf;
mod errno;
mod guest;
mod helpers;
mod interface;
mod loader;
mod log;

pub use abi::*;

/// The `DT_SONAME` of a 64-bit little-endian ELF shared object given as bytes, `None` when
/// `data` is anything else or has none. Exposed for the fuzz targets (`tests/fuzz`) only;
/// not part of the crate's API.
#[doc(hidden)]
pub fn elf_soname(data: &[u8]) -> Option<String> {
    elf::soname(data)
}
pub use errno::Errno;
pub use guest::{cpu_featureset, libxenguest_soname, xenguest, CpuPolicy, XenGuest};
pub use helpers::{cpumap_size, cpupool_freeinfo, cpupool_info, getinfo_one, nodemap_size, CpupoolInfo};
pub use interface::{interface_mismatch, privcmd_present, Interface, OpenError, PRIVCMD_PATHS};
pub use loader::{
    candidates, default_candidates, running_hypervisor_version, secure_env_var, xenctrl, Attempt, AttemptFailure,
    Candidate, CandidateOrigin, LoadError, LoadErrorKind, LoadTarget, XenCtrl, LIBXENCTRL_ENV,
    SYSFS_HYPERVISOR_VERSION, UNVERSIONED_LIBXENCTRL,
};
pub use log::{logger, set_log_hook, take_messages, LogHook, LogLevel, LogMessage};
